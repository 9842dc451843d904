"""Trust at the edges (issue 9): ingestion never fails the job, one spool
is one file, every wait is bounded.  Each test names the break it
reproduces; each failed before the change that fixed it."""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from common import BIN, BUILD, SCALE, TEST_BIN, SpoolTest, scaled
from smtpserver import PASSWORD, USER
from test_flush import FlushTest

PY = "/usr/bin/python3"


class Tmpfs:
    """A real small file system (root only); None where mount is refused."""

    def __init__(self, size="4m"):
        self.dir = tempfile.mkdtemp(prefix="lstmpfs.")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                            "tmpfs", self.dir], capture_output=True)
        self.ok = p.returncode == 0
        self.why = p.stderr.decode().strip()

    def close(self):
        if self.ok:
            subprocess.run(["umount", "-l", self.dir])
        os.rmdir(self.dir)


def fill(path, leave=0):
    """Fill the file system of path with a file, leaving `leave` bytes."""
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    with open(path, "wb") as f:
        f.write(b"\0" * max(0, free - leave))


class IngestNeedsOnlyTheSpoolTest(SpoolTest):
    """Break 1: a mistake outside [spool] stopped add and run."""

    def config(self, text):
        return self.config_file(text)

    def check_ingest(self, cfg, needle):
        p = self.run_ls("-c", cfg, "add", input=b"important line\n",
                        check=False)
        self.assertOneLineError(p, 0, "warning: ", needle,
                                "records are still kept")
        marker = os.path.join(self.dir, "backup-ran")
        p = self.run_ls("-c", cfg, "run", "--", "sh", "-c",
                        "echo backup done; touch " + marker, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(marker))
        os.unlink(marker)
        self.assertEqual(self.db_messages()[-3:], [
            "important line", "backup done",
            '"sh" exited with status 0 after 0.0s'])
        p = self.run_ls("-c", cfg, "flush", "--force", check=False)
        self.assertOneLineError(p, 78, needle)

    def test_typo_in_policy(self):
        cfg = self.config("[policy]\ntreshold = 5\n")
        self.check_ingest(cfg, cfg + ":2: unknown key \"treshold\"")

    def test_password_file_readable_by_group(self):
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write("secret\n")
        os.chmod(pw, 0o640)
        cfg = self.config("[mail]\nfrom = a@b.c\nto = d@e.f\n[smtp]\n"
                          "host = localhost\nuser = u\npassword_file = %s\n"
                          % pw)
        self.check_ingest(cfg, "readable by group or others")

    def test_config_that_cannot_be_read(self):
        # root reads any file: a directory stands in for an unreadable one
        cfg = os.path.join(self.dir, "conf.d")
        os.mkdir(cfg)
        self.check_ingest(cfg, cfg)


class AddNeverKillsTheProducerTest(SpoolTest):
    """Break 2: on a full disk add stopped reading (the job died of
    SIGPIPE), reported stored records as failed, and died of SIGXFSZ."""

    JOB = ("import sys\nfor i in range(int(sys.argv[1])):\n"
           "    sys.stdout.write('line %07d\\n' % i)\n")

    def pipeline(self, n, fsize=None):
        """`job | logsponge add`: the two exit statuses and add's stderr
        lines.  fsize: add's file size limit (ulimit -f), in bytes."""
        job = subprocess.Popen([PY, "-c", self.JOB, str(n)],
                               stdout=subprocess.PIPE)

        def limit():
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        add = subprocess.Popen([BIN, "-s", self.spool, "add"],
                               stdin=job.stdout, stderr=subprocess.PIPE,
                               env=self.env,
                               preexec_fn=limit if fsize else None)
        job.stdout.close()
        _, err = add.communicate(timeout=300)
        job.wait(timeout=60)
        return ([str(job.returncode), str(add.returncode)],
                err.decode().split("\n"))

    def check_every_line_once(self, n, status, lines, needle):
        self.assertEqual(status, ["0", "74"], lines[:2])
        self.assertTrue(lines[0].startswith("logsponge: add: "), lines[0])
        self.assertIn(needle, lines[0])
        self.assertIn("the lines not stored follow", lines[0])
        self.assertEqual(lines[-1], "")
        con = sqlite3.connect("file:%s?mode=ro" % self.spool, uri=True)
        stored = [r[0] for r in con.execute(
            "SELECT message FROM records ORDER BY id")]
        con.close()
        self.assertGreater(len(stored), 0)
        self.assertGreater(len(lines) - 2, 0)
        self.assertEqual(stored + lines[1:-1],
                         ["line %07d" % i for i in range(n)])

    def test_real_full_disk(self):
        fs = Tmpfs("4m")
        if not fs.ok:
            self.skipTest("mount -t tmpfs refused: " + fs.why)
        try:
            self.spool = os.path.join(fs.dir, "spool.db")
            n = scaled(300000, 300000)  # more than 4 MiB can hold
            status, lines = self.pipeline(n)
            self.check_every_line_once(n, status, lines, "disk is full")
        finally:
            fs.close()

    def test_file_size_limit(self):
        n = scaled(300000, 300000)
        status, lines = self.pipeline(n, fsize=2 << 20)
        self.check_every_line_once(n, status, lines, self.spool)

    def test_stored_records_are_not_reported_failed(self):
        # the main file cannot grow, the WAL can: the records are stored
        # (in the WAL) although no checkpoint can copy them
        self.add(b"first\n")
        flag = os.path.join(self.dir, "fault")
        open(flag, "w").close()
        env = dict(self.env, LD_PRELOAD=os.environ["LOGSPONGE_FAULTFS"],
                   FAULTFS_FLAG=flag, FAULTFS_ONLY="db",
                   ASAN_OPTIONS="verify_asan_link_order=0")
        data = b"".join(b"rec %d\n" % i for i in range(20000))
        p = self.run_ls("add", input=data, env=env, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")
        os.unlink(flag)
        self.assertEqual(self.db_messages(),
                         ["first"] + ["rec %d" % i for i in range(20000)])


class OneSpoolOneFileTest(SpoolTest):
    """Break 3: the flush lock was keyed by the path string, hard links
    made two WALs, a planted symlink to an existing file was followed."""

    def null_config(self):
        cfg = os.path.join(self.dir, "null.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n")
        self.env["LOGSPONGE_CONFIG"] = cfg

    def test_flush_through_a_symlink_takes_the_same_lock(self):
        import fcntl
        self.null_config()
        self.add(b"one\n")
        link = os.path.join(self.dir, "link.db")
        os.symlink(self.spool, link)
        rel = os.path.relpath(self.spool, self.dir)
        # a flush is running through the real path (we hold its lock)
        fd = os.open(self.spool + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            for path in (link, rel):
                p = subprocess.run([BIN, "-s", path, "flush", "--force"],
                                   capture_output=True, env=self.env,
                                   cwd=self.dir)
                self.assertEqual(p.returncode, 75, (path, p.stderr))
                self.assertIn(b"another flush", p.stderr)
        finally:
            os.close(fd)
        self.assertEqual(self.db_messages(), ["one"])
        # one WAL, one lock: nothing named after the link
        p = subprocess.run([BIN, "-s", link, "add", "two"], env=self.env)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.db_messages(), ["one", "two"])
        for suffix in ("-wal", "-shm", ".lock"):
            self.assertFalse(os.path.exists(link + suffix), suffix)

    def test_hard_linked_spool_is_refused(self):
        self.add(b"one\n")
        other = os.path.join(self.dir, "other.db")
        os.link(self.spool, other)
        for path in (self.spool, other):
            p = subprocess.run([BIN, "-s", path, "add", "two"],
                               capture_output=True, env=self.env)
            self.assertPassedOn(p, 73, ["two"], "2 hard links")
            p = subprocess.run([BIN, "-s", path, "status"],
                               capture_output=True, env=self.env)
            self.assertOneLineError(p, 73, "hard links")
        os.unlink(other)
        self.assertEqual(self.db_messages(), ["one"])

    def test_symlink_to_a_file_of_someone_else_is_refused(self):
        os.makedirs(os.path.dirname(self.spool))
        theirs = os.path.join(self.dir, "theirs.db")
        with open(theirs, "wb"):
            pass
        os.chown(theirs, 65534, 65534)
        os.chmod(theirs, 0o644)
        os.symlink(theirs, self.spool)
        p = self.run_ls("add", "secret", check=False)
        self.assertPassedOn(p, 73, ["secret"], "belongs to someone else")
        self.assertEqual(os.path.getsize(theirs), 0)
        for suffix in ("-wal", "-shm"):
            self.assertFalse(os.path.exists(theirs + suffix))
        # one's own 0600 spool through a symlink is fine
        mine = os.path.join(self.dir, "mine.db")
        self.run_ls("-s", mine, "add", "a", spool=False)
        os.unlink(self.spool)
        os.symlink(mine, self.spool)
        self.run_ls("add", "b")
        self.assertEqual([r["message"] for r in self.records()], ["a", "b"])


class MainFileHoldsTheDataTest(SpoolTest):
    """Break 4: without a checkpoint on close, spool.db alone had no
    table, and losing the -wal lost every record."""

    def copy_alone(self):
        copy = os.path.join(self.dir, "backup.db")
        with open(self.spool, "rb") as src, open(copy, "wb") as dst:
            dst.write(src.read())
        con = sqlite3.connect(copy)
        try:
            return con.execute("SELECT count(*) FROM records").fetchone()[0]
        finally:
            con.close()

    def test_copy_of_the_main_file_is_complete(self):
        self.run_ls("add", "first")          # a new spool, one record
        self.assertEqual(self.copy_alone(), 1)
        self.add(b"second\nthird\n")
        self.assertEqual(self.copy_alone(), 3)
        n = scaled(50000, 1000)
        self.add(b"".join(b"r %d\n" % i for i in range(n)))
        self.assertEqual(self.copy_alone(), n + 3)
        # another handle open (idle) while add runs and exits
        other = sqlite3.connect(self.spool)
        other.execute("SELECT 1").fetchone()
        self.add(b"".join(b"s %d\n" % i for i in range(n)))
        self.assertEqual(self.copy_alone(), 2 * n + 3)
        other.close()
        # losing the WAL loses nothing
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.spool + suffix):
                os.unlink(self.spool + suffix)
        self.assertEqual(len(self.db_messages()), 2 * n + 3)


class LockOwnerTest(SpoolTest):
    """Break 13: root's flush left a root-owned 0600 lock file, and the
    user's own flushes then failed (74)."""

    def test_root_flush_leaves_the_lock_to_the_owner(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        os.chmod(self.dir, 0o755)
        cfg = os.path.join(self.dir, "null.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n")
        os.chmod(cfg, 0o644)
        self.add(b"one\n")
        state = os.path.dirname(self.spool)
        for path in [state] + [os.path.join(state, n)
                               for n in os.listdir(state)]:
            os.chown(path, 65534, 65534)
        p = self.run_ls("-c", cfg, "flush", "--force", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        st = os.stat(self.spool + ".lock")
        self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))
        self.assertFalse(os.access(BIN, os.X_OK) is False)
        # the binary itself (under `make valgrind` BIN is a wrapper whose
        # log directory that user cannot write)
        as_user = ["setpriv", "--reuid=65534", "--regid=65534",
                   "--clear-groups", os.path.join(BUILD, "logsponge"),
                   "-s", self.spool, "-c", cfg]
        self.run_ls("add", "two")
        for path in [self.spool + s for s in ("", "-wal", "-shm")]:
            if os.path.exists(path):
                os.chown(path, 65534, 65534)
        p = subprocess.run(as_user + ["flush", "--force"],
                           capture_output=True, env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)


class BoundedWaitsTest(FlushTest):
    """Break 5: a password_command that waits, prints forever or leaves a
    child holding its stdout hung the flush forever, holding the lock."""

    def flush_with(self, command):
        srv = self.start()
        self.write_config(srv.port, user=False, smtp_extra=(
            "user = %s\npassword_command = %s\n" % (USER, command)))
        self.seed()
        t0 = time.time()
        try:
            p = subprocess.run([BIN, "-s", self.spool, "flush"],
                               capture_output=True, env=self.env,
                               timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("flush still running after 30 s: %s" % command)
        return p, time.time() - t0, srv

    def gone(self, pattern):
        deadline = time.time() + 5
        while time.time() < deadline:
            if subprocess.run(["pgrep", "-f", pattern],
                              capture_output=True).returncode != 0:
                return True
            time.sleep(0.05)
        return False

    def test_command_that_waits(self):
        p, took, srv = self.flush_with("sleep 987; echo late")
        limit = 2 if SCALE >= 1 else 20  # smtp.timeout of write_config
        self.assertOneLineError(p, 75, "smtp.password_command",
                                "did not finish within %ds" % limit,
                                "killed")
        self.assertLess(took, limit + 8)
        self.assertTrue(self.gone("sleep 987"), "its process lived on")
        self.assertEqual(srv.messages, [])
        self.assertEqual(len(self.snapshot()), 3)
        # the lock is free again: the next flush is not "another flush"
        p2, _, _ = self.flush_with("echo " + PASSWORD)
        self.assertEqual(p2.returncode, 0, p2.stderr)

    def test_command_that_prints_forever(self):
        p, took, srv = self.flush_with("yes")
        self.assertOneLineError(p, 78, "smtp.password_command",
                                "printed more than 4096 bytes")
        self.assertLess(took, 10)
        self.assertEqual(srv.messages, [])

    def test_command_that_leaves_a_child_holding_its_output(self):
        try:
            p, took, srv = self.flush_with("echo %s; sleep 986 &" % PASSWORD)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertLess(took, 10)
            self.assertEqual(len(srv.messages), 1)
        finally:
            subprocess.run(["pkill", "-f", "sleep 986"])


class AcceptedIsNeverResentTest(FlushTest):
    """Break 6: on a nearly full disk the commit after the server's 250
    failed and every later flush sent the whole batch again.  Break 7: a
    resent batch got a new Message-ID when its first record was purged."""

    def test_nearly_full_disk_after_the_250(self):
        fs = Tmpfs("16m")
        if not fs.ok:
            self.skipTest("mount -t tmpfs refused: " + fs.why)
        filler = os.path.join(fs.dir, "filler")
        try:
            self.spool = os.path.join(fs.dir, "spool.db")
            srv = self.start(bulk=True, keep_all=True)
            self.write_config(srv.port, mail_extra="max_size = 16M\n")
            n = 30001
            self.add(b"".join(b"record %06d of the batch\n" % i
                              for i in range(n)))
            self.run_ls("flush", "--dry-run")  # makes the lock file
            # room for the small writes before sending, not for the
            # bulk delete after it
            fill(filler, leave=96 << 10)
            runs = [self.flush() for _ in range(3)]
            codes = [r.returncode for r in runs]
            self.assertEqual(codes[0], 74, self.history())
            for r in runs:  # one line each, saying it will not resend
                self.assertOneLineError(r, 74, "will not be sent again")
            print("\n" + runs[0].stderr.decode().strip() + "\n" +
                  runs[1].stderr.decode().strip(), end=" ")
            self.assertEqual(len(srv.messages), 1, codes)
            self.assertEqual(codes, [74, 74, 74])
            os.unlink(filler)
            p = self.flush()
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(srv.messages), 1)  # never sent again
            self.assertEqual(self.snapshot(), [])
            sent = [h for h in self.history() if h["outcome"] == "sent"]
            self.assertEqual(len(sent), 1)
            self.assertEqual(sent[0]["records"], n)
            # and the next batch goes normally
            self.add(b"next\n")
            self.assertEqual(self.flush().returncode, 0)
            self.assertEqual(len(srv.messages), 2)
        finally:
            if os.path.exists(filler):
                os.unlink(filler)
            fs.close()

    def test_resent_batch_keeps_its_message_id_after_a_purge(self):
        srv = self.start()
        self.write_config(srv.port)
        self.seed(5)
        env = dict(self.env, LOGSPONGE_TEST_CRASH="after-250")
        self.assertLess(self.flush(env=env, bin=TEST_BIN).returncode, 0)
        first = self.parse(srv.messages[0][1])["Message-ID"]
        # the batch's first record is purged before the resend
        con = sqlite3.connect(self.spool)
        con.execute("DELETE FROM records WHERE id = (SELECT min(id) "
                    "FROM records)")
        con.commit()
        con.close()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(len(srv.messages), 2)
        again = self.parse(srv.messages[1][1])
        self.assertEqual(again["Message-ID"], first)
        self.assertNotIn("record 0\n", again.get_content())


class ShippedLibraryTest(SpoolTest):
    """Issue 10: the shipped command reads no test variable."""

    def test_crash_variable_is_ignored(self):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n")
        self.add(b"x\n")
        env = dict(self.env, LOGSPONGE_TEST_CRASH="after-lock")
        p = self.run_ls("-c", cfg, "flush", env=env, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_ls("-c", cfg, "flush", "--force", env=env,
                        bin=TEST_BIN, check=False)
        self.assertLess(p.returncode, 0)  # the test build does crash
        for lib in ("liblogsponge.a", "logsponge"):
            with open(os.path.join(BUILD, lib), "rb") as f:
                self.assertNotIn(b"LOGSPONGE_TEST_CRASH", f.read())


class StatusAgreesWithFlushTest(SpoolTest):
    """Issue 10: status and flush decide with one function."""

    def test_next_flush_is_what_flush_does(self):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[policy]\nthreshold = 3\ncount_level = warning\n"
                    "flush_level = crit\n[mail]\nfrom = a@b.c\nto = d@e.f"
                    "\ntransport = null\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        steps = [(["-l", "warning", "one"], "not sending: 1 of 3"),
                 (["-l", "info", "two"], "not sending: 1 of 3"),
                 (["-l", "crit", "three"], "sending: flush_level: 1 record")]
        for args, want in steps:
            self.run_ls("add", *args)
            st = json_lines(self.run_ls("status", "--json"))[0]
            self.assertIn(want, st["next_flush"]["reason"])
            text = self.run_ls("status").stdout.decode()
            self.assertIn("next flush: " + st["next_flush"]["reason"], text)
            # a dry run decides the same, and says so under -v
            p = self.run_ls("-v", "flush", "--dry-run")
            self.assertIn(st["next_flush"]["reason"], p.stderr.decode())
        self.assertEqual(st["next_flush"]["verdict"], "send")

    def test_a_config_flush_refuses_is_refused_in_status_too(self):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.run_ls("add", "x")
        st = json_lines(self.run_ls("status", "--json"))[0]
        self.assertEqual(st["next_flush"]["verdict"], "refused")
        self.assertIn("mail.to is not set", st["next_flush"]["reason"])
        self.assertIn("next flush: refused: %s: mail.to is not set" % cfg,
                      self.run_ls("status").stdout.decode())
        p = self.run_ls("flush", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"mail.to is not set", p.stderr)


class ShrunkBatchTest(SpoolTest):
    """Issue 10, while there: a capped batch that had to shrink said "may
    not exceed 0 MiB" and lost its "Waited" line."""

    def test_shrunk_batch_keeps_its_cap_and_wait(self):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[policy]\nmin_interval = 1s\n[mail]\nfrom = a@b.c\n"
                    "to = d@e.f\ntransport = stdout\nmax_size = 256k\n"
                    "fold = off\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.run_ls("add", "first")
        self.assertEqual(self.run_ls("flush").returncode, 0)  # last message
        # ~2 MB of incompressible lines: even gzipped they need more than
        # one 256 KiB message, so the batch shrinks
        rnd = os.urandom(1000000).hex().encode()
        self.add(b"".join(rnd[i:i + 200] + b"\n"
                          for i in range(0, len(rnd), 200)))
        time.sleep(1.1)
        out = self.run_ls("flush").stdout.decode().replace("=\r\n", "")
        self.assertIn("may not exceed 256 KiB", out)
        self.assertIn("Waited: the oldest record for", out)
        self.assertNotIn("0 MiB", out)


class TimeTest(SpoolTest):
    """Break 8: the policy ran on the time a record states, a future
    "last message" blocked mail for as long as the clock had been ahead,
    purge --older-than 3000w deleted everything, extreme timestamps
    overflowed (UBSan)."""

    def config(self, policy):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[policy]\n%s\n[mail]\nfrom = a@b.c\nto = d@e.f\n"
                    "transport = null\n" % policy)
        self.env["LOGSPONGE_CONFIG"] = cfg

    def sent(self):
        return [h for h in json_lines(self.run_ls("history", "--json"))
                if h["outcome"] == "sent"]

    def syslog(self, stamp, msg):
        self.add(("<11>1 %s host app - - - %s\n" % (stamp, msg)).encode(),
                 "--format", "rfc5424")

    def test_clock_once_ahead_holds_mail_at_most_min_interval(self):
        self.config("flush_level = emerg\nthreshold = 100\n"
                    "min_interval = 2s")
        self.add(b"x\n")
        con = sqlite3.connect(self.spool)  # a message sent 30 days ahead
        con.execute("INSERT INTO history(time, outcome) VALUES(?, 'sent')",
                    (int((time.time() + 30 * 86400) * 1e6),))
        con.commit()
        con.close()
        self.add(b"disk on fire\n", "-l", "emerg")
        p = self.run_ls("-v", "flush")
        self.assertIn(b"min_interval", p.stderr)
        self.assertEqual(len(self.sent()), 1)
        time.sleep(2.2)
        p = self.run_ls("-v", "flush")
        self.assertIn(b"sending: flush_level", p.stderr)
        self.assertEqual(len(self.sent()), 2)

    def test_stamped_1970_is_not_expired_at_once(self):
        self.config("threshold = 100\nexpire = 1h")
        self.syslog("1970-01-02T00:00:00Z", "replayed old line")
        self.run_ls("flush")
        self.assertEqual(self.db_messages(), ["replayed old line"])

    def test_stamped_2999_still_ages(self):
        self.config("threshold = 100\nmax_age = 1s")
        self.syslog("2999-01-01T00:00:00Z", "from the future")
        time.sleep(1.2)
        p = self.run_ls("-v", "flush")
        self.assertIn(b"sending: max_age", p.stderr)
        self.assertEqual(self.db_messages(), [])
        self.config("threshold = 100\nexpire = 1s")
        self.syslog("2999-01-01T00:00:00Z", "from the future")
        time.sleep(1.2)
        self.run_ls("flush")
        self.assertEqual(self.db_messages(), [])  # expired

    def test_purge_beyond_the_epoch_deletes_nothing(self):
        self.add(b"a\nb\n")
        p = self.run_ls("purge", "--older-than", "3000w")
        self.assertEqual(p.stdout, b"purged 0 records\n")
        self.assertEqual(self.db_messages(), ["a", "b"])

    def test_extreme_timestamps(self):
        self.config("threshold = 1")
        self.add(b'{"MESSAGE":"max","__REALTIME_TIMESTAMP":'
                 b'"9223372036854775807","PRIORITY":"3"}\n',
                 "--format", "journal-json")
        self.syslog("0001-01-01T00:00:00Z", "year one")
        recs = self.records()
        self.assertEqual([r["time"][:19] for r in recs],
                         ["9999-12-31T23:59:59", "0001-01-01T00:00:00"])
        p = self.run_ls("flush", "--dry-run")  # under UBSan in CI
        self.assertIn(b"0001-01-01 00:00:00", p.stdout)
        self.assertIn(b"9999-12-31 23:59:59", p.stdout)
        self.assertEqual(self.run_ls("flush").returncode, 0)
        self.assertEqual(self.db_messages(), [])


class CapsTest(SpoolTest):
    """Break 9: max_bytes dropped every record, the err just added too;
    at max_records every write scanned the table."""

    def caps(self, text):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[spool]\n%s\n" % text)
        self.env["LOGSPONGE_CONFIG"] = cfg

    def test_max_bytes_drops_only_what_it_must(self):
        self.caps("max_bytes = 1M")
        for i in range(16):
            self.run_ls("add", "info %02d " % i + "x" * 64000)
        self.run_ls("add", "-l", "err", "the one that matters")
        msgs = [m[:7] for m in self.db_messages()]
        self.assertEqual(msgs[-1], "the one")          # the err stays
        infos = [m for m in msgs if m.startswith("info")]
        # the oldest infos went, and only as many as needed: 16 x 64 kB
        # and the err fit in 1 MiB with at most two infos gone
        self.assertGreaterEqual(len(infos), 14, msgs)
        self.assertEqual(infos, ["info %02d" % i
                                 for i in range(16 - len(infos), 16)])
        st = json_lines(self.run_ls("status", "--json"))[0]
        self.assertEqual(st["dropped"]["info"], 16 - len(infos))
        self.assertCountsMatch()

    def test_never_a_record_while_a_less_severe_one_remains(self):
        self.caps("max_records = 10")
        self.add(b"".join(b"warn %d\n" % i for i in range(5)), "-l",
                 "warning")
        self.add(b"".join(b"debug %d\n" % i for i in range(5)), "-l",
                 "debug")
        self.add(b"".join(b"err %d\n" % i for i in range(3)), "-l", "err")
        # three had to go: the three oldest debug records
        self.assertEqual(self.db_messages(),
                         ["warn %d" % i for i in range(5)] +
                         ["debug 3", "debug 4"] +
                         ["err %d" % i for i in range(3)])
        # the newest record above all present is kept even past the cap
        self.caps("max_records = 1")
        self.run_ls("add", "-l", "crit", "above everything")
        self.assertEqual(self.db_messages(), ["above everything"])
        self.assertCountsMatch()


class SpoolShrinksTest(SpoolTest):
    """Break 10: after purging 5 M records the file stayed 1.1 GiB."""

    def size(self):
        return sum(os.path.getsize(self.spool + s) for s in ("", "-wal")
                   if os.path.exists(self.spool + s))

    def test_purge_gives_the_space_back(self):
        n = scaled(1000000, 20000)
        self.add(b"".join(b"a realistic log line number %07d with some "
                          b"words in it\n" % i for i in range(n)))
        peak = self.size()
        self.assertGreater(peak, n * 50)
        self.run_ls("purge", "--all")
        self.assertLessEqual(self.size(), peak // 10, (self.size(), peak))

    def test_flush_gives_the_space_back(self):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n"
                    "max_size = 64M\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        # enough that the freed pages pass the 1 MiB vacuum threshold
        n = scaled(200000, 100000)
        self.add(b"".join(b"line %07d\n" % i for i in range(n)))
        peak = self.size()
        self.run_ls("flush")
        self.assertEqual(self.db_messages(), [])
        self.assertLessEqual(self.size(), peak // 10, (self.size(), peak))


class TeeNeverHoldsRecordsTest(SpoolTest):
    """Break 12: add --tee to a reader that stops reading held ~4,700
    records uncommitted and ignored SIGTERM; run --tee did not pass
    signals on."""

    def stalled_pipe(self):
        """A pipe whose reader never reads, 4 KiB deep."""
        import fcntl
        r, w = os.pipe()
        fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
        return r, w

    def test_stalled_tee_reader(self):
        import signal
        r, w = self.stalled_pipe()
        p = subprocess.Popen([BIN, "-s", self.spool, "add", "--tee"],
                             stdin=subprocess.PIPE, stdout=w,
                             stderr=subprocess.PIPE, env=self.env)
        os.close(w)
        # 4,000 lines fit in the input pipe: add reads them all at once,
        # and its copy to the stalled reader stops after 4 KiB
        lines = [b"line %06d" % i for i in range(4000)]
        p.stdin.write(b"".join(l + b"\n" for l in lines))
        p.stdin.flush()
        # every record read is committed within a moment all the same
        deadline = time.time() + 10
        got = 0
        while time.time() < deadline:
            try:
                got = len(self.db_messages())
            except sqlite3.Error:
                pass
            if got == len(lines):
                break
            time.sleep(0.05)
        self.assertEqual(got, len(lines))
        # SIGTERM ends it cleanly, at once
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            self.fail("add --tee ignored SIGTERM")
        p.stderr.close()
        p.stdin.close()
        os.close(r)
        self.assertEqual(p.returncode, -signal.SIGTERM)
        self.assertEqual(len(self.db_messages()), len(lines))

    def test_run_tee_passes_signals_on(self):
        import signal
        r, w = self.stalled_pipe()
        marker = os.path.join(self.dir, "got-term")
        script = ("trap 'touch %s; exit 7' TERM; i=0; while [ $i -lt 20000 ];"
                  " do echo line $i; i=$((i+1)); done; sleep 30 & wait"
                  % marker)
        p = subprocess.Popen([BIN, "-s", self.spool, "run", "--tee", "--",
                              "sh", "-c", script], stdout=w,
                             stderr=subprocess.PIPE, env=self.env)
        os.close(w)
        time.sleep(1.5)  # its output fills the pipe to our stalled reader
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            self.fail("run --tee did not end after SIGTERM")
        p.stderr.close()
        os.close(r)
        self.assertTrue(os.path.exists(marker), "the command got no TERM")
        self.assertEqual(p.returncode, 7)
        self.assertIn('"sh" exited with status 7', self.db_messages()[-1])


def json_lines(p):
    import json
    return [json.loads(l) for l in p.stdout.decode().splitlines()]


if __name__ == "__main__":
    unittest.main()


class JournalBelongsToItsSpoolTest(FlushTest):
    """A flush whose removal failed after the 250 leaves an "accepted"
    note in spool.db.lock.  A user who then moved spool.db* aside and
    started afresh, keeping the lock file, had the old note applied to
    the new spool: its unsent records deleted, history saying "sent".
    And a first flush on a disk already full (the lock file made empty)
    sent the same batch on every flush, having nowhere to note it."""

    def fs(self, size):
        fs = Tmpfs(size)
        if not fs.ok:
            self.skipTest("mount -t tmpfs refused: " + fs.why)
        self.addCleanup(fs.close)
        self.spool = os.path.join(fs.dir, "spool.db")
        return fs

    def test_a_note_of_another_spool_removes_nothing(self):
        fs = self.fs("16m")
        filler = os.path.join(fs.dir, "filler")
        srv = self.start(bulk=True, keep_all=True)
        self.write_config(srv.port, mail_extra="max_size = 16M\n")
        self.add(b"".join(b"old record %06d\n" % i for i in range(30001)))
        self.run_ls("flush", "--dry-run")  # makes the lock file
        fill(filler, leave=96 << 10)
        self.assertEqual(self.flush().returncode, 74)  # sent, not removed
        self.assertEqual(len(srv.messages), 1)
        # the user starts afresh, keeping spool.db.lock
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.spool + suffix):
                os.unlink(self.spool + suffix)
        os.unlink(filler)
        self.add(b"".join(b"fresh %03d\n" % i for i in range(500)))
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"belongs to another spool", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertEqual(len(srv.messages), 2)  # the fresh ones went
        body = self.parse(srv.messages[1][1])
        self.assertIn("fresh 499", body.get_body(("plain",)).get_content())
        sent = [h for h in self.history() if h["outcome"] == "sent"]
        self.assertEqual([h["records"] for h in sent], [500])
        self.assertEqual(self.snapshot(), [])
        # the note is gone: the next flush says nothing of it
        self.add(b"later\n")
        p = self.flush()
        self.assertEqual((p.returncode, p.stderr), (0, b""))

    def test_first_flush_on_a_full_disk_sends_nothing(self):
        fs = self.fs("4m")
        filler = os.path.join(fs.dir, "filler")
        srv = self.start(keep_all=True)
        self.write_config(srv.port)
        # the spool stays open meanwhile, as under a program that logs:
        # its write-ahead log keeps its size, with room for small writes
        self.add(b"first\n")
        con = sqlite3.connect(self.spool)
        self.addCleanup(con.close)
        con.execute("SELECT count(*) FROM records").fetchall()
        self.add(b"".join(b"record %04d\n" % i for i in range(2000)))
        fill(filler, leave=1024)
        runs = [self.flush() for _ in range(3)]
        for r in runs:
            self.assertOneLineError(r, 75, "cannot reserve", "journal")
        self.assertEqual(srv.messages, [])
        os.unlink(filler)
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(len(srv.messages), 1)
        self.assertEqual(self.snapshot(), [])


class DamagedZoneTest(SpoolTest):
    """[mail] timezone naming a TZif file whose counts are 0xFF crashed
    every flush inside GLib (SIGSEGV); the records stayed, unsent."""

    def test_damaged_zone_is_a_config_error(self):
        tzdir = os.path.join(self.dir, "zoneinfo")
        os.makedirs(os.path.join(tzdir, "Bad"))
        with open("/usr/share/zoneinfo/Europe/Berlin", "rb") as f:
            data = bytearray(f.read())
        data[20:44] = b"\xff" * 24
        with open(os.path.join(tzdir, "Bad", "Zone"), "wb") as f:
            f.write(data)
        cfg = os.path.join(self.dir, "tz.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n"
                    "timezone = Bad/Zone\n")
        self.env.update(LOGSPONGE_CONFIG=cfg, TZDIR=tzdir)
        self.add(b"kept\n")
        p = self.run_ls("flush", "--force", check=False)
        self.assertOneLineError(p, 78, "Bad/Zone", "damaged")
        p = self.run_ls("check", check=False)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(b"Bad/Zone", p.stderr)
        self.assertEqual(self.db_messages(), ["kept"])
