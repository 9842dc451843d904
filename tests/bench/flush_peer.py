"""The peer of the flush benchmark: the approach of the blog post
"Squeezing the sponge" (shared/seeds/001): a logging.handlers.
BufferingHandler whose buffer of LogRecords is pickled between runs; the
flush unpickles it, formats every record into one MIMEText body and sends
it with smtplib (STARTTLS, login), one message.

One favour to the peer: the body is built with "".join() instead of the
post's `body = body + ... `, which is quadratic and would take hours at
100,000 records.

usage: flush_peer.py prepare LINES N PICKLE
       flush_peer.py flush PICKLE HOST PORT CAFILE USER PASSWORD FROM TO
"""
import logging
import logging.handlers
import pickle
import smtplib
import ssl
import sys
from email.header import Header
from email.mime.text import MIMEText


class BufferSMTPHandler(logging.handlers.BufferingHandler):
    def __init__(self, path, email):
        super().__init__(capacity=5)
        self.path = path
        try:
            with open(path, "rb") as f:
                self.buffer = pickle.load(f)
        except FileNotFoundError:
            self.buffer = []
        self.email = email
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s",
                                            datefmt="%Y-%m-%d %H:%M"))

    def shouldFlush(self, record):
        return False

    def save(self):
        with open(self.path, "wb") as f:
            pickle.dump(self.buffer, f)

    def flush(self):
        if len(self.buffer) < self.capacity:
            self.save()
            return
        body = "".join(self.format(r) + "\r\n" for r in self.buffer)
        msg = MIMEText(body, _charset="utf-8")
        msg["From"] = self.email["from"]
        msg["To"] = self.email["to"]
        msg["Subject"] = Header("logsponge peer log")
        ctx = ssl.create_default_context(cafile=self.email["ca"])
        smtp = smtplib.SMTP(self.email["host"], self.email["port"],
                            timeout=30)
        smtp.ehlo()
        smtp.starttls(context=ctx)
        smtp.ehlo()
        smtp.login(self.email["user"], self.email["password"])
        smtp.sendmail(self.email["from"], [self.email["to"]],
                      msg.as_string())
        smtp.quit()
        self.buffer = []
        self.save()


def main():
    if sys.argv[1] == "prepare":
        lines, n, path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        h = BufferSMTPHandler(path, {})
        with open(lines) as f:
            for i, line in enumerate(f):
                if i >= n:
                    break
                h.buffer.append(logging.LogRecord(
                    "app", logging.INFO, __file__, 1, line.rstrip("\n"),
                    None, None))
        h.save()
        return
    path, host, port, ca, user, pw, frm, to = sys.argv[2:10]
    h = BufferSMTPHandler(path, dict(host=host, port=int(port), ca=ca,
                                     user=user, password=pw, to=to,
                                     **{"from": frm}))
    h.flush()


main()
