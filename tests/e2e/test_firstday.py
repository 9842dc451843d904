"""The first day and the days after: a mail server down for long fails
the flush loudly (policy.alarm_after), check works before the first
record and sends a test message, config errors come all at once."""
import json
import os
import time
import unittest

from common import SpoolTest
from smtpserver import Server, free_port, smtp_section

EX_TEMPFAIL, EX_UNAVAILABLE = 75, 69


class SilenceTest(SpoolTest):
    def config(self, port, policy="alarm_after = 2s\n"):
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[policy]\n%s[mail]\nfrom = ls@example.org\nto = "
            "ops@example.org\n%s"
            % (policy, smtp_section(self.dir, port, timeout="5s")))

    def test_a_server_down_past_alarm_after_fails_the_flush_loudly(self):
        port = free_port()  # nothing listens there
        self.config(port)
        self.add(b"disk almost full\n", "-l", "warning")
        p = self.run_ls("flush", check=False)
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertIsNone(st["alarm"])
        time.sleep(2.3)
        p = self.run_ls("flush", check=False)
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        err = p.stderr.decode()
        self.assertIn("logsponge: flush: no message delivered since ", err)
        self.assertIn("none ever, the oldest record came then); 1 record "
                      "wait (policy.alarm_after)", err)
        text = self.run_ls("status").stdout.decode()
        self.assertIn("warning:  no message delivered since", text)
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertIn("no message delivered", st["alarm"])
        self.assertIsNone(st["last_sent"])
        # the server back: delivered, and quiet again
        srv = Server().start()
        try:
            self.config(srv.port)
            self.run_ls("flush")
            self.assertEqual(len(srv.messages), 1)
        finally:
            srv.stop()
        self.add(b"another\n", "-l", "warning")
        self.config(port)
        time.sleep(2.3)
        p = self.run_ls("flush", check=False)
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        self.assertRegex(p.stderr.decode(), r"since \d{4}-\d\d-\d\dT\d\d:"
                                            r"\d\dZ \(\d+s ago\); 1 record")
        # alarm_after = none: a temporary failure stays temporary
        self.config(port, policy="alarm_after = none\n")
        p = self.run_ls("flush", check=False)
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)


class CheckTest(SilenceTest):
    def test_check_send_before_the_first_record_mails_a_test_message(self):
        srv = Server(keep_all=True).start()
        try:
            self.config(srv.port)
            p = self.run_ls("check", "--send")
            out = p.stdout.decode()
            self.assertIn("the first record makes it: ok", out)
            self.assertRegex(out, r"mail: test message: sent <logsponge\.test"
                                  r"\.[^>]+> to ops@example\.org: 250 .*: ok")
            self.assertEqual(len(srv.messages), 1)
            msg = srv.messages[0][1].decode()
            self.assertIn("Subject: [logsponge] %s: a test message "
                          "(logsponge check --send)" % os.uname().nodename,
                          msg)
            self.assertIn("a test message, sent by logsponge check --send",
                          msg.replace("=\r\n", ""))
        finally:
            srv.stop()
        self.assertFalse(os.path.exists(self.spool))  # nothing made
        # the server gone: one line, the flush's exit code for it
        p = self.run_ls("check", "--send", check=False)
        self.assertEqual(p.returncode, EX_TEMPFAIL)
        self.assertOneLineError(p, EX_TEMPFAIL, "check: ")

    def test_check_warns_of_silence(self):
        self.config(free_port())
        self.add(b"x\n", "-l", "err")
        time.sleep(2.3)
        p = self.run_ls("check")
        self.assertIn("logsponge: warning: no message delivered since",
                      p.stderr.decode())


class ConfigErrorsTest(SpoolTest):
    def test_every_error_of_the_file_is_said_at_once(self):
        cfg = self.config_file(
            "[policy]\ntreshold = 5\ncount_level = warnin\n"
            "this is not a line\n[mail]\nfrom = a@example.org\n"
            "to = b@example.org\n[smtp]\nport = 99999\n")
        p = self.run_ls("-c", cfg, "check", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertEqual(p.stderr.decode().splitlines(), [
            'logsponge: %s:2: unknown key "treshold" in [policy] (did you '
            'mean "threshold"?)' % cfg,
            'logsponge: %s:3: policy.count_level = "warnin": not a level '
            '(emerg \u2026 debug)' % cfg,
            "logsponge: %s:4: syntax error (expected [section] or key = "
            "value)" % cfg,
            'logsponge: %s:9: smtp.port = "99999": not a port (1-65535)'
            % cfg])
        # ingest keeps the records and warns of each, the last line saying so
        p = self.run_ls("-c", cfg, "add", "hello")
        err = p.stderr.decode().splitlines()
        self.assertEqual(len(err), 4)
        self.assertTrue(all(l.startswith("logsponge: warning: %s:" % cfg)
                            for l in err), err)
        self.assertTrue(err[-1].endswith("; records are still kept"))
        self.assertEqual(self.messages(), ["hello"])


class DefaultsTest(SpoolTest):
    def test_flush_level_alone_does_not_mail_info_records(self):
        md = os.path.join(self.dir, "Mail")
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[policy]\nflush_level = err\n[mail]\nfrom = a@example.org\n"
            "to = b@example.org\ntransport = maildir\n[maildir]\n"
            "path = %s\n" % md)
        self.add(b"backup started\nbackup done\n", "-l", "info")
        p = self.run_ls("-v", "flush")
        self.assertIn("not sending: 2 records wait, none at flush_level err "
                      "or above", p.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(md, "new")))
        self.assertIn("threshold:   none",
                      self.run_ls("status").stdout.decode())
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertIsNone(st["policy"]["threshold"])
        self.add(b"backup failed\n", "-l", "err")
        self.run_ls("flush")
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), 1)


@unittest.skipUnless(os.geteuid() == 0, "root's default spool")
class OtherSpoolTest(SpoolTest):
    def test_roots_old_default_spool_with_pending_records_is_said(self):
        old = os.path.join(self.dir, ".local", "state", "logsponge",
                           "spool.db")
        self.run_ls("-s", old, "add", "from an old root crontab",
                    spool=False)
        env = dict(self.env, LOGSPONGE_SPOOL=self.spool,
                   LOGSPONGE_CONFIG=self.config_file(
                       "[mail]\nfrom = a@b.c\nto = d@e.f\n"
                       "transport = null\n"))
        env.pop("XDG_STATE_HOME")
        self.run_ls("add", "x", spool=False, env=env)
        p = self.run_ls("status", spool=False, env=env)
        self.assertIn("logsponge: warning: %s also holds 1 pending record, "
                      "which a flush of %s does not send (logsponge -s %s "
                      "flush --force sends them)" % (old, self.spool, old),
                      p.stderr.decode())
        p = self.run_ls("check", spool=False, env=env, check=False)
        self.assertIn("also holds 1 pending record", p.stderr.decode())
        # -s names the spool on purpose: nothing said; nor once it is sent
        p = self.run_ls("status", env=env)
        self.assertNotIn("also holds", p.stderr.decode())
        self.run_ls("-s", old, "purge", "--all", spool=False)
        p = self.run_ls("status", spool=False, env=env)
        self.assertNotIn("also holds", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
