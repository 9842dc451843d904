"""logsponge flush against a production MTA: Postfix 3.7 with Dovecot
SASL on 127.0.0.1 (tests/e2e/postfix.py), one instance for the class."""
import gzip
import os
import subprocess
import unittest

import postfix
from common import BIN, scaled
from test_flush import EX_NOPERM, EX_UNAVAILABLE, FlushTest


@unittest.skipUnless(postfix.available(),
                     "Postfix and Dovecot (make deps) and root needed")
class PostfixTest(FlushTest):
    mta = None

    @classmethod
    def setUpClass(cls):
        cls.mta = postfix.Postfix().start()

    @classmethod
    def tearDownClass(cls):
        cls.mta.stop()

    def setUp(self):
        super().setUp()
        self.seen = self.mta.files()
        self.log_from = len(self.mta.log())

    def new_messages(self, n=1):
        return self.mta.delivered(n, since=self.seen)

    def new_log(self):
        return self.mta.log()[self.log_from:]

    def test_delivers_1000_records_over_tls13_with_sasl(self):
        self.write_config(self.mta.submission)
        n = scaled(1000, 50)
        self.add(b"".join(b"record %d\n" % i for i in range(n)))
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = self.new_messages()
        self.assertEqual(len(raw), 1, self.mta.log()[-2000:])
        msg = self.parse(raw[0])
        body = msg.get_content()
        for i in (0, n // 2, n - 1):
            self.assertIn("record %d\n" % i, body)
        self.assertIn("TLSv1.3", msg["Received"])
        h = self.history()[-1]
        self.assertEqual(h["outcome"], "sent")
        self.assertRegex(h["reply"], r"^250 2\.0\.0 Ok: queued as \w+$")
        self.assertEqual(self.snapshot(), [])

    def test_delivers_100000_records(self):
        self.write_config(self.mta.submission)
        n = scaled(100000, 2000)
        self.add(b"".join(b"line %06d of the big batch\n" % i
                          for i in range(n)))
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = self.new_messages()
        self.assertEqual(len(raw), 1)
        msg = self.parse(raw[0])
        if msg.get_content_type() == "multipart/mixed":
            log = gzip.decompress(list(msg.iter_parts())[1].get_content())
            self.assertEqual(len(log.splitlines()) + len(self.snapshot()), n)
        else:
            self.assertIn("line %06d" % (n - 1), msg.get_content())
        self.assertEqual(self.history()[-1]["outcome"], "sent")

    def test_wrong_password(self):
        self.write_config(self.mta.submission)
        with open(os.path.join(self.dir, "pw"), "w") as f:
            f.write("not the password\n")
        self.seed()
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("auth", "auth"))
        self.assertIn("535 5.7.8", h["reply"])
        self.assertEqual(self.snapshot(), before)

    def test_unknown_recipient(self):
        self.write_config(self.mta.submission, to="nobody@example.org")
        self.seed()
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("permanent", "rcpt"))
        self.assertIn("RCPT <nobody@example.org>: 550 5.1.1", h["reply"])
        self.assertEqual(self.snapshot(), before)

    def test_over_size_fits_the_first_time(self):
        """message_size_limit = 200000, advertised as SIZE: the first
        message fits (the old flush sent ~700 KB, got 552, resent)."""
        self.write_config(self.mta.small)
        self.add(b"".join(b"line %06d with some text to make it longer %x\n"
                          % (i, i * 7919) for i in range(12000)))
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = self.new_messages()
        self.assertEqual(len(raw), 1)
        self.assertLessEqual(len(raw[0]), 200000)
        self.assertNotIn("reject", self.new_log())
        self.assertNotIn(" 552 ", self.new_log())
        msg = self.parse(raw[0])
        log = gzip.decompress(list(msg.iter_parts())[1].get_content())
        self.assertEqual(len(log.splitlines()) + len(self.snapshot()), 12000)

    def test_tls13_only_listener(self):
        self.write_config(self.mta.tls13)
        for i in range(scaled(10, 2)):
            self.add(b"round %d\n" % i)
            p = self.flush()
            self.assertEqual(p.returncode, 0, p.stderr)
        raw = self.new_messages(scaled(10, 2))
        self.assertEqual(len(raw), scaled(10, 2))
        self.assertIn("TLSv1.3", self.parse(raw[-1])["Received"])

    def test_implicit_tls(self):
        self.write_config(self.mta.smtps, smtp_extra="tls = tls\n")
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.new_messages()), 1)

    def test_helo_without_a_dotted_host_name(self):
        """reject_non_fqdn_helo_hostname answered the old short EHLO name
        with 504; the address literal passes."""
        self.write_config(self.mta.submission)
        self.seed()
        p = subprocess.run(
            ["unshare", "--uts", "sh", "-c",
             'hostname nodots && exec "$@"', "sh", BIN, "-s", self.spool,
             "flush"], env=self.env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.new_messages()), 1)
        # Postfix's Received line starts with the EHLO name
        received = self.parse(self.new_messages()[0])["Received"]
        self.assertTrue(received.startswith("from [127.0.0.1] (localhost"),
                        received)
