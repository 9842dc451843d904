"""The sendmail and maildir transports, end to end through the CLI."""
import email
import email.policy
import mailbox
import os
import subprocess
import unittest

from common import BIN, digest_log
from smtpserver import PASSWORD, USER, Certs
from test_flush import FlushTest

EX_UNAVAILABLE, EX_TEMPFAIL, EX_IOERR = 69, 75, 74


class TransportTest(FlushTest):
    def config(self, transport, section=""):
        self.cfg = os.path.join(self.dir, "logsponge.conf")
        with open(self.cfg, "w") as f:
            f.write("[mail]\nfrom = logsponge <ls@example.org>\n"
                    "to = ops@example.org, second@example.org\n"
                    "transport = %s\n%s\n" % (transport, section))
        self.env["LOGSPONGE_CONFIG"] = self.cfg

    def script(self, body):
        path = os.path.join(self.dir, "fake-sendmail")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path

    def records_seeded(self):
        self.add("caf\u00e9\n.dot\nFrom here\nplain\n".encode(), "-t", "t")
        return ["caf\u00e9", ".dot", "From here", "plain"]

    def assertBodyHas(self, msg, records):
        body = msg.get_content().replace("\r\n", "\n")
        body = body.split("\nLog, oldest first", 1)[1]
        pos = 0
        for r in records:
            i = body.find(" " + r + "\n", pos)
            self.assertGreaterEqual(i, 0, r)
            pos = i


class SendmailTest(TransportTest):
    def test_message_piped_to_command(self):
        out = os.path.join(self.dir, "got.eml")
        args = os.path.join(self.dir, "args")
        cmd = self.script('printf "%%s\\n" "$@" > %s; cat > %s' % (args, out))
        self.config("sendmail", "[sendmail]\ncommand = %s -oi -t\n" % cmd)
        recs = self.records_seeded()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = open(out, "rb").read()
        self.assertNotIn(b"\r\n", raw)  # Unix line ends for sendmail
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg["To"], "ops@example.org, second@example.org")
        self.assertBodyHas(msg, recs)
        self.assertEqual(open(args).read(), "-oi\n-t\n")
        self.assertEqual(self.snapshot(), [])
        self.assertEqual(self.history()[-1]["outcome"], "sent")

    def assertKeptWith(self, code, outcome, needle):
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, code, p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn(needle, p.stderr.decode())
        self.assertEqual(self.snapshot(), before)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), (outcome, "sendmail"))
        return h

    def test_nonzero_exit_keeps_spool(self):
        cmd = self.script("cat >/dev/null; echo 'no such user' >&2; exit 67")
        self.config("sendmail", "[sendmail]\ncommand = %s\n" % cmd)
        self.records_seeded()
        h = self.assertKeptWith(EX_UNAVAILABLE, "permanent", "status 67")
        self.assertIn("no such user", h["reply"])

    def test_tempfail_exit_is_temporary(self):
        cmd = self.script("cat >/dev/null; exit 75")
        self.config("sendmail", "[sendmail]\ncommand = %s\n" % cmd)
        self.records_seeded()
        self.assertKeptWith(EX_TEMPFAIL, "temporary", "status 75")

    def test_killed_by_signal_keeps_spool(self):
        cmd = self.script("cat >/dev/null; kill -9 $$")
        self.config("sendmail", "[sendmail]\ncommand = %s\n" % cmd)
        self.records_seeded()
        self.assertKeptWith(EX_TEMPFAIL, "temporary", "signal 9")

    def test_write_error_keeps_spool(self):
        # exits 0 without reading: the write fails, the spool stays
        cmd = self.script("exit 0")
        self.config("sendmail", "[sendmail]\ncommand = %s\n" % cmd)
        self.add(("z" * 900 + "\n").encode() * 2000)
        self.assertKeptWith(EX_TEMPFAIL, "temporary", "Broken pipe")

    def test_timeout_kills_the_command(self):
        cmd = self.script("sleep 30")
        self.config("sendmail", "[sendmail]\ncommand = %s\ntimeout = 1s\n"
                    % cmd)
        self.records_seeded()
        self.assertKeptWith(EX_TEMPFAIL, "temporary", "sendmail.timeout")

    @unittest.skipUnless(os.geteuid() == 0, "unshare --mount needs root")
    def test_default_command_names_the_envelope_sender(self):
        """/usr/sbin/sendmail -oi -t alone made the envelope sender the
        user running the flush (root@host); now -f mail.from.  The test
        puts a fake sendmail at /usr/sbin in a private mount namespace."""
        self.config("sendmail")
        self.records_seeded()
        sbin = os.path.join(self.dir, "sbin")
        os.mkdir(sbin)
        argv = os.path.join(self.dir, "argv")
        with open(os.path.join(sbin, "sendmail"), "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$@" > %s\ncat >/dev/null\n'
                    % argv)
        os.chmod(os.path.join(sbin, "sendmail"), 0o755)
        p = subprocess.run(
            ["unshare", "--mount", "sh", "-c",
             'mount --bind "$0" /usr/sbin && exec "$@"', sbin, BIN,
             "-s", self.spool, "flush"], env=self.env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(argv) as f:
            self.assertEqual(f.read().split("\n")[:4],
                             ["-oi", "-t", "-f", "ls@example.org"])

    def test_real_msmtp_from_debian(self):
        srv = self.start()
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pw, 0o600)
        rc = os.path.join(self.dir, "msmtprc")
        with open(rc, "w") as f:
            f.write("account default\nhost localhost\nport %d\ntls on\n"
                    "tls_starttls on\ntls_trust_file %s\nauth on\n"
                    "user %s\npasswordeval head -1 %s\n"
                    "from ls@example.org\n"
                    % (srv.port, Certs.get().ca, USER, pw))
        os.chmod(rc, 0o600)
        self.config("sendmail", "[sendmail]\ncommand = /usr/bin/msmtp "
                    "-C %s -t\n" % rc)
        recs = self.records_seeded()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(srv.messages), 1)
        env, raw = srv.messages[0]
        self.assertEqual(sorted(env.rcpt_tos),
                         ["ops@example.org", "second@example.org"])
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertBodyHas(msg, recs)
        self.assertEqual(self.snapshot(), [])


class MaildirTest(TransportTest):
    def test_maildir_read_back_by_python(self):
        md = os.path.join(self.dir, "Mail", "logs")
        self.config("maildir", "[maildir]\npath = %s\n" % md)
        recs = self.records_seeded()
        self.assertEqual(self.flush().returncode, 0)
        self.add(b"second batch\n")
        self.assertEqual(self.flush().returncode, 0)
        box = mailbox.Maildir(md, factory=None, create=False)
        msgs = [email.message_from_bytes(box.get_bytes(k),
                                         policy=email.policy.default)
                for k in box.keys()]
        self.assertEqual(len(msgs), 2)
        msgs.sort(key=lambda m: m["Message-ID"])
        listed = [r[3] for m in msgs for r in digest_log(m.get_content())]
        for r in recs + ["second batch"]:
            self.assertIn(r, listed)
        self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), 2)
        for name in os.listdir(os.path.join(md, "new")):
            st = os.stat(os.path.join(md, "new", name))
            self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(self.snapshot(), [])

    def test_unusable_maildir_keeps_spool(self):
        md = os.path.join(self.dir, "afile")
        open(md, "w").close()
        self.config("maildir", "[maildir]\npath = %s\n" % md)
        self.records_seeded()
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_IOERR, p.stderr)
        self.assertIn(b"not a usable Maildir", p.stderr)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.history()[-1]["outcome"], "local")

    def test_missing_path_is_a_config_error(self):
        self.config("maildir")
        self.records_seeded()
        p = self.flush()
        self.assertOneLineError(p, 78, "maildir.path")


class StdoutTest(TransportTest):
    def test_write_failure_keeps_spool(self):
        self.config("stdout")
        self.records_seeded()
        before = self.snapshot()
        with open("/dev/full", "wb") as full:
            p = subprocess.run([BIN, "-s", self.spool, "flush"], env=self.env,
                               stdout=full, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, EX_IOERR, p.stderr)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.history()[-1]["outcome"], "local")
