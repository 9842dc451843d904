"""Hardening: a flush killed at every step, I/O faults during add, hostile
header input, and a long load run against the real server."""
import email
import json
import email.policy
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

from common import BIN, TEST_BIN, SpoolTest, digest_log, scaled
from smtpserver import Server
from test_flush import FlushTest

CRASH_POINTS = ["after-lock", "after-batch", "starttls", "auth", "mid-data",
                "after-250", "during-commit"]


class CrashTest(FlushTest):
    def integrity(self):
        con = sqlite3.connect(self.spool)
        try:
            return con.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            con.close()

    def test_flush_killed_at_every_step(self):
        srv = self.start()
        self.write_config(srv.port)
        seen = 0
        for point in CRASH_POINTS:
            with self.subTest(point=point):
                self.add(b"".join(b"%s record %05d\n" % (point.encode(), i)
                                  for i in range(2000)))
                before = self.snapshot()
                env = dict(self.env, LOGSPONGE_TEST_CRASH=point)
                p = self.flush(env=env, bin=TEST_BIN)
                self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
                time.sleep(0.2)  # let the server notice the dead client
                # the spool opens, is intact, and lost nothing
                self.assertEqual(self.run_ls("status").returncode, 0)
                self.assertEqual(self.integrity(), "ok")
                self.assertEqual(self.snapshot(), before)
                # the next flush delivers everything
                p = self.flush()
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(self.snapshot(), [])
                new = srv.messages[seen:]
                seen = len(srv.messages)
                last = self.parse(new[-1][1])
                body = last.get_content().replace("\r\n", "\n")
                listed = [r[3] for r in digest_log(body)]
                for (_, _, _, m) in before:
                    self.assertIn(m, listed)
                if point == "after-250":
                    # the server had it, and the flush died before it
                    # could note that: one duplicate, same Message-ID.
                    # (Killed during the commit, the flush had noted the
                    # server's 250 in its journal: no duplicate.)
                    self.assertEqual(len(new), 2)
                    first = self.parse(new[0][1])
                    self.assertEqual(first["Message-ID"], last["Message-ID"])
                else:
                    self.assertEqual(len(new), 1)


class AddFaultTest(SpoolTest):
    def faulty_env(self, flag, errno_value):
        return dict(self.env, LD_PRELOAD=os.environ["LOGSPONGE_FAULTFS"],
                    FAULTFS_FLAG=flag, FAULTFS_ERRNO=str(errno_value),
                    ASAN_OPTIONS="verify_asan_link_order=0")

    def check_fault_mid_stream(self, errno_value, needle):
        self.add(b"".join(b"before %d\n" % i for i in range(1000)))
        flag = os.path.join(self.dir, "fault")
        p = subprocess.Popen([BIN, "-s", self.spool, "add"],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.faulty_env(flag, errno_value))
        # a first part goes in, and is committed when the input pauses
        p.stdin.write(b"".join(b"acked %d\n" % i for i in range(500)))
        p.stdin.flush()
        deadline = time.time() + 10
        while time.time() < deadline and len(self.db_messages()) < 1500:
            time.sleep(0.05)
        self.assertEqual(len(self.db_messages()), 1500)
        open(flag, "w").close()  # the disk fills / turns read-only
        # the producer is never cut off: it writes everything it has
        late = [b"late %d" % i for i in range(scaled(20000, 500))]
        got_err = []
        reader = threading.Thread(
            target=lambda: got_err.append(p.stderr.read()))
        reader.start()
        p.stdin.write(b"".join(l + b"\n" for l in late))
        p.stdin.close()
        reader.join(timeout=60)
        err = got_err[0].decode()
        p.stderr.close()
        p.wait(timeout=20)
        os.unlink(flag)
        # exit 74, one line saying why, then each line not stored
        lines = err.split("\n")
        self.assertEqual(p.returncode, 74, lines[0])
        self.assertTrue(lines[0].startswith("logsponge: add: "), lines[0])
        self.assertIn(needle, lines[0])
        self.assertIn("the lines not stored follow", lines[0])
        passed = lines[1:-1]
        # every acknowledged record is intact; every late line is either
        # stored or passed on, exactly once, in order
        got = self.db_messages()
        self.assertEqual(got[:1500], ["before %d" % i for i in range(1000)] +
                         ["acked %d" % i for i in range(500)])
        self.assertEqual(got[1500:] + passed, [l.decode() for l in late])
        self.assertGreater(len(passed), 0)
        con = sqlite3.connect(self.spool)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0],
                         "ok")
        con.close()
        # and the spool works again afterwards
        self.add(b"after\n")
        self.assertEqual(self.db_messages()[-1], "after")

    def test_disk_full_during_add(self):
        self.check_fault_mid_stream(28, "disk is full")

    def test_read_only_during_add(self):
        self.check_fault_mid_stream(30, "spool")


class HeaderInjectionTest(FlushTest):
    def test_no_header_from_tag_host_subject_or_data(self):
        srv = self.start()
        self.write_config(srv.port, mail_extra="subject = {tag} {first} "
                          "{host} \u00e9" + "\u65e5" * 45)
        evil = "x\r\nBcc: victim@example.org\r\n\x00Subject: owned"
        self.add(evil.encode() + b"\n", "-t", "t\r\nX-Evil: 1\x01" +
                 "\u00e9" * 40, "-l", "err")
        self.add(b'{"MESSAGE":"m","_HOSTNAME":"h\\r\\nX-Host: 1",'
                 b'"PRIORITY":"2","SYSLOG_IDENTIFIER":"a\\nB: c"}\n',
                 "--format", "journal-json")
        self.assertEqual(self.flush().returncode, 0)
        raw = srv.messages[0][1]
        head = raw.split(b"\r\n\r\n", 1)[0]
        names = [l.split(b":", 1)[0] for l in head.split(b"\r\n")
                 if l and l[:1] not in (b" ", b"\t")]
        self.assertEqual(sorted(names), sorted([
            b"From", b"To", b"Subject", b"Date", b"Message-ID",
            b"MIME-Version", b"Content-Type", b"Content-Transfer-Encoding",
            b"Auto-Submitted", b"X-Mailer", b"X-Auto-Response-Suppress",
            b"X-Logsponge-Host", b"X-Logsponge-Level"]))
        self.assertNotIn(b"\x00", raw)
        for line in head.split(b"\r\n"):
            self.assertLessEqual(len(line), 78)
        msg = self.parse(raw)
        self.assertEqual(msg.defects, [])
        self.assertIn("\u65e5" * 10, msg["Subject"])
        self.assertEqual(srv.messages[0][0].rcpt_tos, ["ops@example.org"])

    def test_addresses_with_line_breaks_are_config_errors(self):
        for bad in ("a@b.c\rBcc: x@y.z", "a@b.c\x00", "Name\x01 <a@b.c>"):
            cfg = os.path.join(self.dir, "c")
            with open(cfg, "wb") as f:
                f.write(b"[mail]\nfrom = " + bad.encode() + b"\n")
            p = self.run_ls("-c", cfg, "add", "x", check=False)
            self.assertEqual(p.returncode, 0, (bad, p.stderr))
            self.assertIn(b"warning: " + cfg.encode(), p.stderr)
            p = self.run_ls("-c", cfg, "flush", check=False)
            self.assertEqual(p.returncode, 78, (bad, p.stderr))


class LoadTest(FlushTest):
    def load(self, writers, per, flush_paths):
        """writers x per lines while a flush loop runs through each of
        flush_paths at the same time, against the real server: every
        record ends in exactly one received message, or pending."""
        srv = Server(bulk=True, keep_all=True).start()
        self.server = srv
        self.write_config(srv.port)
        self.run_ls("add", input=b"")
        procs = []
        for w in range(writers):
            p = subprocess.Popen([BIN, "-s", self.spool, "add", "-t",
                                  "w%d" % w], stdin=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=self.env)
            procs.append(p)

        def feed(w, p):
            step = min(5000, per)
            for start in range(0, per, step):
                p.stdin.write(b"".join(b"w%d %06d\n" % (w, i) for i in
                                       range(start, start + step)))
                p.stdin.flush()
                time.sleep(0.05)  # keep the writers going for a while
            p.stdin.close()

        counts, failures = [0] * len(flush_paths), []

        def flusher(k, path):
            while any(p.poll() is None for p in procs) or counts[k] < 3:
                r = subprocess.run([BIN, "-s", path, "flush", "--force"],
                                   capture_output=True, env=self.env)
                counts[k] += 1
                # 75: another flush of the same spool holds the lock
                if r.returncode not in (0, 75) or (
                        r.returncode == 75 and len(flush_paths) == 1):
                    failures.append((path, r.returncode, r.stderr))
                time.sleep(0.2)

        threads = [threading.Thread(target=feed, args=(w, p))
                   for w, p in enumerate(procs)]
        threads += [threading.Thread(target=flusher, args=(k, path))
                    for k, path in enumerate(flush_paths)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in procs:
            p.wait()
            self.assertEqual(p.returncode, 0, p.stderr.read())
            p.stderr.close()
        self.assertEqual(failures, [])
        # a last flush sends what arrived after the loops' last flush
        self.assertEqual(self.flush("--force").returncode, 0)
        # every record is in exactly one received message, or pending
        seen = {}
        # record lines only (not the summary's "First info: ..." line)
        rx = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \w+ +w\d: "
                        r"(w\d \d{6})$", re.M)
        import gzip
        for _, raw in srv.messages:
            msg = self.parse(raw)
            if msg.get_content_type() == "multipart/mixed":
                # past mail.max_size: the complete log is the attachment
                log = list(msg.iter_parts())[1].get_content()
                body = gzip.decompress(log).decode()
            else:
                # the log of the text part: "03:12:07 info    w3 w3 000042"
                body = "\n".join(
                    "2000-01-01T00:00:00Z %s %s: %s" % (r[0], r[1], r[3])
                    for r in digest_log(
                        msg.get_content().replace("\r\n", "\n")))
            for m in rx.findall(body):
                seen[m] = seen.get(m, 0) + 1
        pending = [m for (_, _, _, m) in self.snapshot()]
        for m in pending:
            seen[m] = seen.get(m, 0) + 1
        want = {"w%d %06d" % (w, i) for w in range(writers)
                for i in range(per)}
        self.assertEqual(set(seen), want)
        self.assertEqual([m for m, n in seen.items() if n != 1], [])
        self.assertCountsMatch()
        self.assertGreaterEqual(len(srv.messages), 2)
        print("\nload: %d records, %s flushes, %d messages, %d pending at "
              "the end" % (len(want), "+".join(map(str, counts)),
                           len(srv.messages), len(pending)), end=" ")

    def test_eight_writers_while_flushing_every_200ms(self):
        self.load(8, scaled(250000, 5000), [self.spool])

    def test_flushes_through_a_symlink_and_the_real_path(self):
        # issue 9, break 3: two flushes through a symlink and the real
        # path delivered every record twice
        link = os.path.join(self.dir, "link.db")
        os.symlink(self.spool, link)
        self.load(4, scaled(50000, 2000), [self.spool, link])


class ModesTest(FlushTest):
    def test_every_file_0600_every_dir_0700_whatever_the_umask(self):
        md = os.path.join(self.dir, "mail", "box")
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = maildir\n"
                    "[maildir]\npath = %s\n" % md)
        script = ('umask 000; "$0" -s "$1" -c "$2" add one two && '
                  '"$0" -s "$1" -c "$2" flush')
        p = subprocess.run(["sh", "-c", script, BIN, self.spool, cfg],
                           env=self.env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        con = sqlite3.connect(self.spool)  # hold WAL and SHM open
        con.execute("SELECT count(*) FROM records").fetchone()
        files = [self.spool, self.spool + "-wal", self.spool + "-shm",
                 self.spool + ".lock"]
        new = os.path.join(md, "new")
        files += [os.path.join(new, n) for n in os.listdir(new)]
        self.assertEqual(len(files), 5)
        for path in files:
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, path)
        for d in (os.path.dirname(self.spool), md, new,
                  os.path.join(md, "tmp"), os.path.join(md, "cur"),
                  os.path.join(self.dir, "mail")):
            self.assertEqual(os.stat(d).st_mode & 0o777, 0o700, d)
        con.close()


class PiecewiseCommitTest(FlushTest):
    """A large batch leaves the spool a piece per transaction (a single
    DELETE of a million records held every writer back for a second).
    Killed between two pieces, the flush has recorded the message as
    sent; the next one finishes the removal from its journal, sends
    nothing again and leaves later records alone."""

    def pending(self):
        return json.loads(self.run_ls("status", "--json").stdout)["pending"]

    def test_killed_between_pieces(self):
        self.check_killed_between_pieces("")

    def test_killed_between_pieces_keeping_sent_records(self):
        self.check_killed_between_pieces("keep_sent = 30d\n")

    def check_killed_between_pieces(self, keep):
        srv = self.start()
        self.write_config(srv.port, spool_extra=keep)
        n = 140000  # five pieces (one line, folded: a small message)
        self.add(b"big\n" * n)
        env = dict(self.env, LOGSPONGE_TEST_CRASH="between-pieces")
        p = self.flush(env=env, bin=TEST_BIN)
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        self.assertEqual(len(srv.messages), 1)
        # the first piece is gone, counted; history says sent
        left = self.pending()
        self.assertGreater(left, 0)
        self.assertLess(left, n)
        con = sqlite3.connect(self.spool)
        self.assertEqual(con.execute(
            "SELECT count(*) FROM records WHERE sent IS NULL").fetchone()[0],
            left)
        con.close()
        self.assertEqual([h["outcome"] for h in self.history()], ["sent"])
        self.add(b"later\n")
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        # the rest went without a second copy; "later" in a message of its own
        self.assertEqual(len(srv.messages), 2)
        second = self.parse(srv.messages[1][1]).get_content()
        self.assertIn("later", second)
        self.assertNotIn("big", second)
        self.assertEqual(self.pending(), 0)
        self.assertEqual([h["outcome"] for h in self.history()],
                         ["sent", "sent"])
        con = sqlite3.connect(self.spool)
        kept = con.execute("SELECT count(*) FROM records").fetchone()[0]
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0],
                         "ok")
        con.close()
        self.assertEqual(kept, n + 1 if keep else 0)
