"""The ceiling of a flush: smtplib sending a message that is already
built (the bytes logsponge composed), over STARTTLS+AUTH, nothing else.
Usage: ceiling.py MESSAGE HOST PORT CA USER PASSWORD FROM TO"""
import smtplib
import ssl
import sys


def main():
    path, host, port, ca, user, pw, frm, to = sys.argv[1:9]
    with open(path, "rb") as f:
        msg = f.read()
    ctx = ssl.create_default_context(cafile=ca)
    smtp = smtplib.SMTP(host, int(port), timeout=60)
    smtp.ehlo()
    smtp.starttls(context=ctx)
    smtp.ehlo()
    smtp.login(user, pw)
    smtp.sendmail(frm, [to], msg)
    smtp.quit()


if __name__ == "__main__":
    main()
