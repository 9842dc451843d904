"""logsponge flush against a real SMTP server (aiosmtpd, STARTTLS, AUTH,
throw-away CA): what arrives, and the spool kept on every failure."""
import email
import email.policy
import json
import os
import sqlite3
import subprocess
import threading
import time

from common import BIN, SCALE, SpoolTest, scaled
from smtpserver import PASSWORD, USER, Certs, Server, SilentServer

EX_TEMPFAIL, EX_UNAVAILABLE, EX_NOPERM, EX_CONFIG, EX_IOERR = 75, 69, 77, 78, 74


class FlushTest(SpoolTest):
    server = None

    def tearDown(self):
        if self.server:
            self.server.stop()
        super().tearDown()

    def start(self, **kw):
        self.server = Server(**kw).start()
        return self.server

    def write_config(self, port, host="localhost", to="ops@example.org",
                     user=True, smtp_extra="", policy="", mail_extra="",
                     spool_extra=""):
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pw, 0o600)
        auth = ("user = %s\npassword_file = %s\n" % (USER, pw)) if user else ""
        text = ("[spool]\n%s\n[policy]\n%s\n"
                "[mail]\nfrom = logsponge <ls@example.org>\nto = %s\n%s\n"
                "[smtp]\nhost = %s\nport = %d\nca_file = %s\ntimeout = %ds\n"
                "%s%s\n" % (spool_extra, policy, to, mail_extra, host, port,
                            Certs.get().ca, 2 if SCALE >= 1 else 20, auth,
                            smtp_extra))
        self.cfg = os.path.join(self.dir, "logsponge.conf")
        with open(self.cfg, "w") as f:
            f.write(text)
        self.env["LOGSPONGE_CONFIG"] = self.cfg
        return self.cfg

    def flush(self, *args, env=None, bin=None):
        return self.run_ls("flush", *args, check=False, env=env, bin=bin)

    def snapshot(self):
        con = sqlite3.connect(self.spool)
        try:
            return con.execute("SELECT id, level, tag, message FROM records "
                               "ORDER BY id").fetchall()
        finally:
            con.close()

    def history(self):
        out = self.run_ls("history", "--json").stdout.decode()
        return [json.loads(l) for l in out.splitlines()]

    def parse(self, raw):
        return email.message_from_bytes(raw, policy=email.policy.default)

    def seed(self, n=3):
        self.add(b"".join(b"record %d\n" % i for i in range(n)), "-t", "seed")


class DeliveryTest(FlushTest):
    def test_message_arrives_valid_mime_every_record_in_order(self):
        srv = self.start()
        self.write_config(srv.port, spool_extra="max_record = 200k")
        big = "x" * 50000 + "\u00e9" * 25000  # a 100 KB line
        lines = ["plain ascii line", "caf\u00e9 \u20ac \U0001F419 \u65e5\u672c",
                 ".", "..", ".leading dot", "From the start of a line",
                 "--boundary--", "Content-Type: text/html", "Subject: fake",
                 "=?UTF-8?B?Zm9v?=", "trailing space ", "tab\tinside", "",
                 big, "=3D not an escape", "last"]
        self.add("".join(l + "\n" for l in lines).encode(), "-t", "app")
        self.add(b"it broke\n", "-t", "db", "-l", "err")
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"")   # cron: no output on success
        self.assertEqual(p.stderr, b"")
        self.assertEqual(len(srv.messages), 1)
        env, raw = srv.messages[0]
        self.assertEqual(env.rcpt_tos, ["ops@example.org"])
        self.assertEqual(env.mail_from, "ls@example.org")
        for line in raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
            self.assertLessEqual(len(line), 78)
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))
        msg = self.parse(raw)
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_content_charset(), "utf-8")
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertIn("highest err", msg["Subject"])
        self.assertIn("17 records", msg["Subject"])
        self.assertTrue(msg["Date"])
        self.assertEqual(msg.defects, [])
        body = msg.get_content().replace("\r\n", "\n")
        log = body.split("\nLog, oldest first", 1)[1]
        pos = 0
        for rec in [m for (_, _, _, m) in before]:
            i = log.find(" " + rec + "\n", pos)
            self.assertGreaterEqual(i, 0, "record missing or out of order: "
                                    + rec[:60])
            pos = i + len(rec)
        self.assertTrue(body.startswith("logsponge on "))
        self.assertIn("Levels: err 1, info 16", body)
        # spool emptied, one history row with the same Message-ID
        self.assertEqual(self.snapshot(), [])
        h = self.history()
        self.assertEqual(len(h), 1)
        self.assertEqual(h[0]["outcome"], "sent")
        self.assertEqual(h[0]["records"], 17)
        self.assertEqual("<%s>" % h[0]["message_id"], msg["Message-ID"])

    def test_non_ascii_subject_is_rfc2047(self):
        srv = self.start()
        self.write_config(srv.port, mail_extra="subject = Sauvegarde "
                          "\u00e9chou\u00e9e sur {host}: {count} \u2014 {first}")
        self.add("\u00e9chec \u65e5\u672c\n".encode(), "-l", "err")
        self.assertEqual(self.flush().returncode, 0)
        raw = srv.messages[0][1]
        hdr = [l for l in raw.split(b"\r\n") if l.startswith(b"Subject:")][0]
        self.assertIn(b"=?UTF-8?", hdr)
        subj = self.parse(raw)["Subject"]
        self.assertTrue(subj.startswith("Sauvegarde \u00e9chou\u00e9e sur "))
        self.assertTrue(subj.endswith(": 1 \u2014 \u00e9chec \u65e5\u672c"))

    def test_header_injection_impossible(self):
        srv = self.start()
        self.write_config(srv.port, mail_extra="subject = {first} {tag}")
        self.add(b"evil\r\nBcc: victim@example.org\n", "-t",
                 "tag\nX-Injected: yes", "-l", "err")
        self.assertEqual(self.flush().returncode, 0)
        raw = srv.messages[0][1]
        head = raw.split(b"\r\n\r\n", 1)[0]
        self.assertNotIn(b"\r\nBcc:", head)
        self.assertNotIn(b"\r\nX-Injected:", head)
        self.assertEqual(srv.messages[0][0].rcpt_tos, ["ops@example.org"])

    def test_ip_literal_host_verified(self):
        srv = self.start()
        self.write_config(srv.port, host="127.0.0.1")
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(len(srv.messages), 1)
        self.assertEqual(srv.sni, [None])  # no SNI for an IP literal

    def test_sni_is_sent(self):
        srv = self.start()
        self.write_config(srv.port, host="localhost")
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(srv.sni, ["localhost"])

    def test_partial_recipients(self):
        srv = self.start()
        self.write_config(srv.port, to="ok@example.org, rcpt550@example.org")
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(srv.messages[0][0].rcpt_tos, ["ok@example.org"])
        self.assertEqual(self.snapshot(), [])
        h = self.history()[-1]
        self.assertEqual(h["outcome"], "sent")
        self.assertIn("rcpt550@example.org", h["reply"])
        self.assertIn("550", h["reply"])

    def test_records_added_during_flush_stay_pending(self):
        srv = self.start()
        self.write_config(srv.port, to="slow@example.org")
        self.seed(5)
        p = subprocess.Popen([BIN, "-s", self.spool, "flush"], env=self.env,
                             stderr=subprocess.PIPE)
        time.sleep(0.7)  # the server holds its final reply for 1.5 s
        self.add(b"late one\nlate two\n", "-t", "late")
        p.wait(timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr.read())
        p.stderr.close()
        body = self.parse(srv.messages[0][1]).get_content()
        self.assertNotIn("late one", body)
        self.assertEqual([m for (_, _, _, m) in self.snapshot()],
                         ["late one", "late two"])

    def test_two_flushes_at_once_send_one_message(self):
        srv = self.start()
        self.write_config(srv.port, to="slow@example.org")
        self.seed()
        a = subprocess.Popen([BIN, "-s", self.spool, "flush"], env=self.env,
                             stderr=subprocess.PIPE)
        time.sleep(0.5)
        b = self.flush()
        a.wait(timeout=20)
        a.stderr.close()
        self.assertEqual(a.returncode, 0)
        self.assertEqual(b.returncode, EX_TEMPFAIL)
        self.assertIn(b"another flush", b.stderr)
        self.assertEqual(len(b.stderr.splitlines()), 1)
        time.sleep(0.2)
        self.assertEqual(len(srv.messages), 1)

    def test_fifty_flushes_in_a_row_none_hangs(self):
        # the server offers TLS 1.3 (the default); libESMTP 1.1.0 could
        # hang on 1.3 session tickets, logsponge caps the client at 1.2
        srv = self.start()
        self.write_config(srv.port)
        # (a hang would run into smtp.timeout = 2s and fail the flush)
        for i in range(scaled(50, 5)):
            self.add(b"round %d\n" % i)
            p = self.flush()
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(srv.messages), scaled(50, 5))
        self.assertEqual(self.snapshot(), [])

    def test_dry_run_prints_exact_message_and_changes_nothing(self):
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        before = self.snapshot()
        p = self.flush("--dry-run")
        self.assertEqual(p.returncode, 0, p.stderr)
        msg = self.parse(p.stdout)
        self.assertIn("record 2", msg.get_content())
        self.assertIn(b"\r\n", p.stdout)
        self.assertNotIn(PASSWORD.encode(), p.stdout)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.history(), [])
        self.assertEqual(srv.messages, [])
        # the real flush sends the same Message-ID
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(self.parse(srv.messages[0][1])["Message-ID"],
                         msg["Message-ID"])

    def test_stdout_and_null_transports(self):
        self.write_config(1, mail_extra="transport = stdout", user=False)
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("record 1", self.parse(p.stdout).get_content())
        self.assertEqual(self.snapshot(), [])
        self.write_config(1, mail_extra="transport = null", user=False)
        self.seed()
        p = self.flush()
        self.assertEqual((p.returncode, p.stdout), (0, b""))
        self.assertEqual(self.snapshot(), [])
        self.assertEqual([h["outcome"] for h in self.history()],
                         ["sent", "sent"])

    def test_crash_window_resends_same_batch_same_message_id(self):
        # the connection closes after the whole message went out, before
        # the server's verdict: the server may have it
        srv = self.start()
        self.write_config(srv.port, to="noreply@example.org")
        self.seed()
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        self.assertEqual(self.snapshot(), before)
        first = self.history()[-1]
        self.add(b"newer record\n")
        self.write_config(srv.port)
        self.assertEqual(self.flush().returncode, 0)
        msg = self.parse(srv.messages[0][1])
        self.assertEqual(msg["Message-ID"], "<%s>" % first["message_id"])
        self.assertNotIn("newer record", msg.get_content())
        self.assertEqual([m for (_, _, _, m) in self.snapshot()],
                         ["newer record"])


class PolicyTest(FlushTest):
    def test_below_threshold_is_silent(self):
        srv = self.start()
        self.write_config(srv.port, policy="threshold = 3\n"
                          "count_level = warning\n")
        self.add(b"a\nb\n", "-l", "err")
        self.add(b"noise\n" * 10, "-l", "info")
        p = self.flush()
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, b"", b""))
        p = self.run_ls("-v", "flush", check=False)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"not sending: 2 of 3 records at warning or above",
                      p.stderr)
        self.assertEqual(srv.messages, [])
        self.add(b"c\n", "-l", "warning")
        p = self.run_ls("-v", "flush", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"sending: threshold: 3 records at warning or above "
                      b"(threshold 3)", p.stderr)
        self.assertEqual(len(srv.messages), 1)

    def test_flush_level_force_and_max_age(self):
        srv = self.start()
        self.write_config(srv.port, policy="threshold = 100\n"
                          "flush_level = crit\nmax_age = 1h\n")
        self.add(b"x\n")
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(srv.messages, [])
        self.add(b"disk on fire\n", "-l", "alert")
        p = self.run_ls("-v", "flush", check=False)
        self.assertIn(b"flush_level: 1 record at crit or above", p.stderr)
        self.assertEqual(len(srv.messages), 1)
        self.add(b"y\n")
        self.assertEqual(self.run_ls("flush", "--force").returncode, 0)
        self.assertEqual(len(srv.messages), 2)
        self.add(b"old\n")
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE records SET time = time - 7200000000")
        con.commit()
        con.close()
        p = self.run_ls("-v", "flush", check=False)
        self.assertIn(b"max_age", p.stderr)
        self.assertEqual(len(srv.messages), 3)

    def test_expire_drops_old_noise_with_history(self):
        srv = self.start()
        self.write_config(srv.port, policy="threshold = 100\nexpire = 1d\n")
        self.add(b"old noise\nfresh\n")
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE records SET time = time - 2*86400000000 "
                    "WHERE message = 'old noise'")
        con.commit()
        con.close()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual([m for (_, _, _, m) in self.snapshot()], ["fresh"])
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["records"]), ("expired", 1))


class FailureMatrixTest(FlushTest):
    def assertKept(self, p, code, stage, before, outcome=None, reply=None):
        self.assertEqual(p.returncode, code, p.stderr)
        err = p.stderr.decode()
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("logsponge: flush: "), err)
        self.assertEqual(self.snapshot(), before)
        h = self.history()
        self.assertEqual(len(h), 1)
        self.assertEqual(h[0]["stage"], stage, h[0])
        if outcome:
            self.assertEqual(h[0]["outcome"], outcome)
        if reply:
            self.assertIn(reply, h[0]["reply"])
        self.assertRegex(h[0]["time"], r"Z$")
        self.assertNotIn(PASSWORD, json.dumps(h))
        self.assertNotIn(PASSWORD, err)
        return h[0]

    def fail_case(self, code, stage, outcome=None, reply=None, **cfg):
        self.seed()
        before = self.snapshot()
        p = self.flush()
        return self.assertKept(p, code, stage, before, outcome, reply)

    def test_connection_refused(self):
        s = SilentServer(close_at_once=True)
        port = s.port
        s.sock.close()  # nothing listens there now
        self.write_config(port)
        self.fail_case(EX_TEMPFAIL, "connect", "temporary", "refused")

    def test_server_down_closes_at_once(self):
        s = SilentServer(close_at_once=True).start()
        try:
            self.write_config(s.port)
            self.fail_case(EX_TEMPFAIL, "greeting", "temporary")
        finally:
            s.stop()

    def test_greeting_timeout(self):
        s = SilentServer().start()
        try:
            self.write_config(s.port)
            t0 = time.time()
            self.fail_case(EX_TEMPFAIL, "greeting", "temporary")
            # within smtp.timeout (2s, or 20s under valgrind) and change
            self.assertLess(time.time() - t0, 10 if SCALE >= 1 else 60)
        finally:
            s.stop()

    def test_no_starttls_offered(self):
        srv = self.start(starttls=False, auth=False)
        self.write_config(srv.port, user=False)
        self.fail_case(EX_UNAVAILABLE, "starttls", "tls", "STARTTLS")
        self.assertEqual(srv.messages, [])

    def test_certificate_from_unknown_ca(self):
        srv = self.start(cert="unknown")
        self.write_config(srv.port)
        self.fail_case(EX_UNAVAILABLE, "tls", "tls", "certificate")
        self.assertEqual(srv.messages, [])

    def test_certificate_for_wrong_host(self):
        srv = self.start(cert="wrong")
        self.write_config(srv.port)
        self.fail_case(EX_UNAVAILABLE, "tls", "tls", "certificate")

    def test_certificate_wrong_ip(self):
        srv = self.start(cert="wrong")
        self.write_config(srv.port, host="127.0.0.1")
        self.fail_case(EX_UNAVAILABLE, "tls", "tls")

    def test_wrong_password(self):
        srv = self.start()
        self.write_config(srv.port)
        with open(os.path.join(self.dir, "pw"), "w") as f:
            f.write("not the password\n")
        self.fail_case(EX_NOPERM, "auth", "auth", "535")
        self.assertEqual(srv.messages, [])

    def test_421_at_rcpt(self):
        srv = self.start()
        self.write_config(srv.port, to="rcpt421@example.org")
        self.fail_case(EX_TEMPFAIL, "rcpt", "temporary", "421")

    def test_451_at_rcpt(self):
        srv = self.start()
        self.write_config(srv.port, to="rcpt451@example.org")
        self.fail_case(EX_TEMPFAIL, "rcpt", "temporary", "451")

    def test_452_at_rcpt(self):
        srv = self.start()
        self.write_config(srv.port, to="rcpt452@example.org")
        self.fail_case(EX_TEMPFAIL, "rcpt", "temporary", "452")

    def test_550_at_rcpt_for_every_recipient(self):
        srv = self.start()
        self.write_config(srv.port, to="rcpt550@example.org, "
                          "rcpt550@example.net")
        h = self.fail_case(EX_UNAVAILABLE, "rcpt", "permanent", "550")
        self.assertIn("rcpt550@example.net", h["reply"])

    def test_552_after_data(self):
        srv = self.start()
        self.write_config(srv.port, to="data552@example.org")
        self.fail_case(EX_UNAVAILABLE, "data", "permanent", "552")

    def test_554_after_data(self):
        srv = self.start()
        self.write_config(srv.port, to="data554@example.org")
        self.fail_case(EX_UNAVAILABLE, "data", "permanent", "554")

    def test_connection_dropped_mid_data(self):
        srv = self.start()
        self.write_config(srv.port, to="dropdata@example.org")
        self.add(("y" * 1000 + "\n").encode() * 300)
        self.fail_case(EX_TEMPFAIL, "data", "temporary")
        self.assertEqual(srv.messages, [])

    def fault_at_commit(self, errno_name, errno_value):
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        before = self.snapshot()
        flag = os.path.join(self.dir, "fault-now")
        env = dict(self.env, LD_PRELOAD=os.environ["LOGSPONGE_FAULTFS"],
                   FAULTFS_FLAG=flag, FAULTFS_ERRNO=str(errno_value),
                   ASAN_OPTIONS="verify_asan_link_order=0")
        orig = srv.handler.handle_DATA

        async def data_then_break_disk(server, session, envelope):
            open(flag, "w").close()  # the disk "fills" before our 250
            return await orig(server, session, envelope)

        srv.handler.handle_DATA = data_then_break_disk
        p = self.flush(env=env)
        self.assertEqual(p.returncode, EX_IOERR, p.stderr)
        self.assertIn(b"will not be sent again", p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertEqual(len(srv.messages), 1)
        os.unlink(flag)
        self.assertEqual(self.snapshot(), before)  # nothing lost
        # the next flush finishes the removal; the server had the
        # message, so it is not sent again (issue 9)
        srv.handler.handle_DATA = orig
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(len(srv.messages), 1)
        self.assertEqual(self.snapshot(), [])
        sent = [h for h in self.history() if h["outcome"] == "sent"]
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["message_id"],
                         self.parse(srv.messages[0][1])["Message-ID"]
                         .strip("<>"))

    def test_disk_full_at_commit(self):
        self.fault_at_commit("ENOSPC", 28)

    def test_read_only_spool_at_commit(self):
        self.fault_at_commit("EROFS", 30)


class ConfigTest(FlushTest):
    def test_auth_without_tls_is_refused(self):
        self.seed()
        self.write_config(25, smtp_extra="tls = none\n")
        p = self.flush()
        self.assertOneLineError(p, EX_CONFIG, self.cfg + ":", "smtp.tls = none")

    def test_password_file_readable_by_others(self):
        self.seed()
        self.write_config(25)
        os.chmod(os.path.join(self.dir, "pw"), 0o644)
        p = self.flush()
        self.assertOneLineError(p, EX_CONFIG, self.cfg + ":", "chmod 600")

    def test_missing_mail_settings(self):
        cfg = os.path.join(self.dir, "c")
        with open(cfg, "w") as f:
            f.write("[smtp]\nhost = localhost\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.seed()
        p = self.flush()
        self.assertOneLineError(p, EX_CONFIG, "mail.from")

    def test_password_from_command_and_env(self):
        srv = self.start()
        self.write_config(srv.port, user=False,
                          smtp_extra="user = %s\npassword_command = echo '%s'\n"
                          % (USER, PASSWORD))
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.write_config(srv.port, user=False, smtp_extra="user = %s\n" % USER)
        self.seed()
        env = dict(self.env, LOGSPONGE_SMTP_PASSWORD=PASSWORD)
        self.assertEqual(self.flush(env=env).returncode, 0)
        self.seed()
        p = self.flush()
        self.assertOneLineError(p, EX_CONFIG, "no password")
        self.assertEqual(len(srv.messages), 2)

    def test_verify_no_warns_every_time(self):
        srv = self.start(cert="unknown")
        self.write_config(srv.port, smtp_extra="verify = no\n")
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"certificate is not checked", p.stderr)
        self.assertEqual(len(srv.messages), 1)

    def test_check_smtp(self):
        srv = self.start()
        self.write_config(srv.port)
        self.run_ls("add", input=b"")  # check needs a spool
        p = self.run_ls("check", "--smtp", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"smtp: connected", p.stdout)
        self.assertEqual(srv.messages, [])
        self.assertGreaterEqual(srv.handler.sessions, 1)
        with open(os.path.join(self.dir, "pw"), "w") as f:
            f.write("wrong\n")
        p = self.run_ls("check", "--smtp", check=False)
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        srv2 = Server(cert="wrong").start()
        try:
            self.write_config(srv2.port)
            p = self.run_ls("check", "--smtp", check=False)
            self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        finally:
            srv2.stop()


class ImplicitTLSTest(FlushTest):
    """smtp.tls = tls (SMTPS, RFC 8314) against aiosmtpd's implicit-TLS
    listener, through logsponge's in-process relay."""

    def test_delivers_over_implicit_tls(self):
        srv = self.start(implicit=True)
        self.write_config(srv.port, smtp_extra="tls = tls\n")
        self.seed(5)
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(srv.messages), 1)
        body = self.parse(srv.messages[0][1]).get_content()
        self.assertIn("record 4", body)
        # (the first handshake, without SNI, is aiosmtpd's own start-up)
        self.assertEqual(srv.sni[-1], "localhost")
        self.assertEqual(self.snapshot(), [])

    def test_ip_literal_over_implicit_tls(self):
        srv = self.start(implicit=True)
        self.write_config(srv.port, host="127.0.0.1",
                          smtp_extra="tls = tls\n")
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(len(srv.messages), 1)

    def test_unknown_ca_and_wrong_host_are_refused(self):
        for cert, host in (("unknown", "localhost"), ("wrong", "localhost"),
                           ("wrong", "127.0.0.1")):
            srv = Server(cert=cert, implicit=True).start()
            try:
                self.write_config(srv.port, host=host,
                                  smtp_extra="tls = tls\n")
                self.seed()
                before = self.snapshot()
                p = self.flush()
                self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
                self.assertIn(b"certificate", p.stderr)
                self.assertEqual(self.snapshot(), before)
                self.assertEqual(srv.messages, [])
                h = self.history()[-1]
                self.assertEqual((h["outcome"], h["stage"]), ("tls", "tls"))
            finally:
                srv.stop()

    def test_wrong_password_over_implicit_tls(self):
        srv = self.start(implicit=True)
        self.write_config(srv.port, smtp_extra="tls = tls\n")
        with open(os.path.join(self.dir, "pw"), "w") as f:
            f.write("wrong\n")
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertEqual(srv.messages, [])

    def test_plain_server_is_not_tls(self):
        srv = self.start()  # STARTTLS server: its first bytes are not TLS
        self.write_config(srv.port, smtp_extra="tls = tls\n")
        self.seed()
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        self.assertEqual(self.snapshot(), before)

    def test_check_smtp_over_implicit_tls(self):
        srv = self.start(implicit=True)
        self.write_config(srv.port, smtp_extra="tls = tls\n")
        self.run_ls("add", input=b"")
        p = self.run_ls("check", "--smtp", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(srv.messages, [])

    def test_twenty_flushes_in_a_row(self):
        srv = self.start(implicit=True)
        self.write_config(srv.port, smtp_extra="tls = tls\n")
        for i in range(scaled(20, 3)):
            self.add(b"round %d\n" % i)
            p = self.flush()
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(srv.messages), scaled(20, 3))


class CheckWarningsTest(FlushTest):
    def test_check_warns_about_unwise_settings(self):
        self.write_config(25, user=False, smtp_extra="verify = no\n"
                          "password_command = echo hunter2\nuser = u\n")
        os.chmod(self.cfg, 0o644)
        self.run_ls("add", input=b"")
        p = self.run_ls("check", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode()
        self.assertIn("warning: " + self.cfg + ": smtp.verify = no", err)
        self.assertIn("readable by group or others", err)
        self.assertNotIn("hunter2", err + p.stdout.decode())
        os.chmod(self.cfg, 0o600)
        p = self.run_ls("check", check=False)
        self.assertNotIn("readable by group", p.stderr.decode())
        self.write_config(25, user=False)
        p = self.run_ls("check", check=False)
        self.assertEqual(p.stderr, b"")


class ServerSizeTest(FlushTest):
    def test_the_first_message_fits_the_servers_size(self):
        """The server's SIZE is learnt on the connection, before the
        message is planned: never a 552 from a server that advertised
        SIZE (the old flush sent ~700 KB and was refused first)."""
        import gzip
        srv = self.start(size_limit=300000)
        self.write_config(srv.port)
        self.add(b"".join(b"line %06d with some text to make it longer %x\n"
                          % (i, i * 7919) for i in range(12000)))
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = srv.messages[0][1]
        self.assertLessEqual(len(raw), 300000)
        # MAIL FROM said how big it is: within the limit
        opts = srv.messages[0][0].mail_options
        size = [int(o[5:]) for o in opts if o.upper().startswith("SIZE=")]
        self.assertEqual(len(size), 1, opts)
        self.assertLessEqual(size[0], 300000)
        self.assertGreaterEqual(size[0], len(raw) - 4096)
        msg = self.parse(raw)
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        log = gzip.decompress(list(msg.iter_parts())[1].get_content())
        self.assertEqual(len(log.splitlines()) + len(self.snapshot()), 12000)
        self.assertEqual(self.history()[-1]["outcome"], "sent")
