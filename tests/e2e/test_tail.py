"""logsponge tail: log files read where they are, each line exactly once,
through real rotations by Debian's logrotate and kills at random points."""
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from common import BIN, ROOT, SpoolTest

LOGROTATE = "/usr/sbin/logrotate"


class Writer(threading.Thread):
    """Appends numbered lines to a log file, opening it for each batch as
    a program that reopens its log after a rotation does; pause() holds
    it (copytruncate loses what is written between its copy and its
    truncate: logrotate's documented race)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.n = path, 0
        self.stop = threading.Event()
        self.hold = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            with self.hold:
                with open(self.path, "a") as f:
                    for _ in range(random.randint(1, 40)):
                        f.write("line %d of the writer\n" % self.n)
                        self.n += 1
            time.sleep(0.002)


class TailTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.log = os.path.join(self.dir, "app.log")
        self.conf = self.config_file(
            "[source app]\npath = %s\ntag = app\n" % self.log)
        self.env["LOGSPONGE_CONFIG"] = self.conf

    def tail(self, *args, check=True):
        return self.run_ls("tail", *args, check=check)

    def messages(self, tag="app"):
        con = sqlite3.connect(self.spool)
        rows = con.execute("SELECT message FROM records WHERE tag = ? "
                           "ORDER BY id", (tag,)).fetchall()
        con.close()
        return [r[0] for r in rows]

    def rotate(self, how):
        state = os.path.join(self.dir, "logrotate.state")
        conf = os.path.join(self.dir, "logrotate.conf")
        with open(conf, "w") as f:
            f.write("%s {\n  rotate 3\n  missingok\n  %s\n}\n" % (self.log, how))
        subprocess.run([LOGROTATE, "-f", "-s", state, conf], check=True,
                       capture_output=True)

    def test_a_new_source_starts_at_the_end_and_holds_a_partial_line(self):
        with open(self.log, "w") as f:
            f.write("last year\n")
        self.tail()
        self.assertEqual(self.messages(), [])
        with open(self.log, "a") as f:
            f.write("one\ntwo\nthr")
        p = self.tail("--dry-run")
        self.assertIn("app: %s: 2 lines (8 bytes) to read" % self.log,
                      p.stdout.decode())
        self.assertEqual(self.messages(), [])
        self.tail()
        self.assertEqual(self.messages(), ["one", "two"])
        with open(self.log, "a") as f:
            f.write("ee\n")
        self.tail()
        self.tail()
        self.assertEqual(self.messages(), ["one", "two", "three"])
        # a last line left without its newline for 5 s is a line
        with open(self.log, "a") as f:
            f.write("four")
        old = time.time() - 6
        os.utime(self.log, (old, old))
        self.tail()
        self.assertEqual(self.messages(), ["one", "two", "three", "four"])

    def test_from_start_and_unknown_names(self):
        with open(self.log, "w") as f:
            f.write("old\n")
        self.tail("--from-start", "app")
        self.assertEqual(self.messages(), ["old"])
        p = self.tail("nope", check=False)
        self.assertEqual(p.returncode, 64)
        self.assertIn(b"tail: nope: no such source", p.stderr)
        self.env["LOGSPONGE_CONFIG"] = self.config_file("[policy]\n",
                                                        "other.conf")
        self.assertEqual(self.tail(check=False).returncode, 78)

    def test_a_gap_becomes_a_warning(self):
        with open(self.log, "w") as f:
            f.write("a\n")
        self.tail("--from-start")
        with open(self.log, "a") as f:
            f.write("b\n")
        os.rename(self.log, self.log + ".1")
        subprocess.run(["gzip", self.log + ".1"], check=True)
        with open(self.log, "w") as f:
            f.write("c\n")
        self.tail()
        self.assertEqual(self.messages(), ["a", "c"])
        # (the new file may have the old one's inode again: then it looks
        # truncated; either way a warning says lines may be missing)
        [w] = self.messages("logsponge")
        self.assertIn("may be missing", w)
        os.unlink(self.log)
        self.tail()
        self.tail()
        self.assertEqual(len(self.messages("logsponge")), 2)
        with open(self.log, "w") as f:
            f.write("d\n")
        self.tail()
        self.assertEqual(self.messages(), ["a", "c", "d"])

    def test_every_line_once_through_rotations_and_kills(self):
        with open(self.log, "w") as f:
            pass
        self.tail()
        w = Writer(self.log)
        w.start()
        kills = rotations = 0
        hows = ["create", "copytruncate", "compress\n  delaycompress\n  "
                "create"]
        deadline = time.monotonic() + 240
        while (rotations < 21 or kills < 200) and time.monotonic() < deadline:
            p = subprocess.Popen([BIN, "-s", self.spool, "tail"], env=self.env,
                                 stderr=subprocess.PIPE)
            if random.random() < 0.6:
                time.sleep(random.uniform(0, 0.03))
                p.send_signal(signal.SIGKILL)
                kills += 1
            _, err = p.communicate(timeout=60)
            self.assertIn(p.returncode, (0, -9), err)
            if random.random() < 0.3:
                how = hows[rotations % 3]
                if "compress" in how:
                    # a compressed file is not read again: its lines
                    # must have been read (a pass ran since the last
                    # rotations, as a timer's would)
                    self.tail()
                with w.hold:
                    self.rotate(how)
                rotations += 1
        w.stop.set()
        w.join()
        self.tail()
        got = self.messages()
        want = ["line %d of the writer" % i for i in range(w.n)]
        self.assertEqual(len(got), len(want), (rotations, kills,
                                               self.messages("logsponge")))
        self.assertEqual(got, want)
        self.assertEqual(self.messages("logsponge"), [])
        self.assertGreaterEqual(rotations, 21)
        self.assertGreaterEqual(kills, 200)

    def test_follow_stores_as_lines_come_and_stops_after_a_commit(self):
        with open(self.log, "w") as f:
            pass
        p = subprocess.Popen([BIN, "-s", self.spool, "tail", "--follow"],
                             env=self.env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(self.spool) or not self.positioned():
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            with open(self.log, "a") as f:
                f.write("one\ntwo\nthree without its newline")
            while len(self.messages()) < 2:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            self.assertEqual(self.messages(), ["one", "two"])
            # left unfinished for 5 s, the last line is a line
            while len(self.messages()) < 3:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
            self.assertEqual(self.messages()[2], "three without its newline")
        finally:
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        with open(self.log, "a") as f:
            f.write("four\n")
        self.tail()
        self.assertEqual(self.messages(), ["one", "two",
                                           "three without its newline",
                                           "four"])

    def test_a_glob_makes_each_file_a_source(self):
        logs = os.path.join(self.dir, "logs")
        os.makedirs(logs)
        for name, text in (("a.log", "a1\n"), ("b.log", "b1\n"),
                           ("a.log.1", "rotated\n"),
                           ("b.log-20261205", "rotated too\n")):
            with open(os.path.join(logs, name), "w") as f:
                f.write(text)
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[source web]\npath = %s/*.log*\ntag = web\n" % logs)
        self.tail("--from-start")
        self.assertEqual(sorted(self.messages("web")), ["a1", "b1"])
        with open(os.path.join(logs, "b.log"), "a") as f:
            f.write("b2\n")
        with open(os.path.join(logs, "c.log"), "w") as f:
            f.write("c1\n")
        self.tail()  # a file that came later: from its start
        self.assertEqual(sorted(self.messages("web")),
                         ["a1", "b1", "b2", "c1"])
        con = sqlite3.connect(self.spool)
        names = sorted(r[0] for r in con.execute("SELECT name FROM positions"))
        con.close()
        self.assertEqual(names, ["web"] + ["web:%s/%s" % (logs, n)
                                           for n in ("a.log", "b.log",
                                                     "c.log")])

    def test_killed_inside_the_commit_stores_nothing_twice(self):
        from common import TEST_BIN
        with open(self.log, "w") as f:
            pass
        self.tail()
        for point in ("before-position", "after-position"):
            with open(self.log, "a") as f:
                f.write("at %s\n" % point)
            env = dict(self.env, LOGSPONGE_TEST_CRASH=point)
            p = subprocess.run([TEST_BIN, "-s", self.spool, "tail"], env=env,
                               capture_output=True)
            self.assertEqual(p.returncode, -9, (point, p.stderr))
        self.tail()
        self.assertEqual(self.messages(), ["at before-position",
                                           "at after-position"])

    def test_binary_junk_and_a_huge_line(self):
        with open(self.log, "wb") as f:
            pass
        self.tail()
        with open(self.log, "ab") as f:
            f.write(b"\x00\xff\xfe junk \x1b[31m\n")
            f.write(b"x" * (3 << 20) + b"\n")
            f.write(b"after\n")
        self.tail()
        got = self.messages()
        self.assertEqual(len(got), 3)
        self.assertIn("junk", got[0])
        self.assertIn("[logsponge: cut", got[1])
        self.assertEqual(got[2], "after")
        self.tail()
        self.assertEqual(len(self.messages()), 3)

    def positioned(self):
        con = sqlite3.connect(self.spool)
        try:
            return con.execute("SELECT count(*) FROM positions").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            con.close()


JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"


@unittest.skipUnless(os.path.exists(JOURNAL_REMOTE),
                     "systemd-journal-remote (package systemd-journal-remote)")
class JournalTest(SpoolTest):
    """Real journal files, written by systemd-journal-remote from export
    format the test makes (no journald needed)."""

    def setUp(self):
        super().setUp()
        self.jdir = os.path.join(self.dir, "journal")
        os.makedirs(self.jdir)
        self.n = 0

    def configure(self, extra=""):
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[source j]\ntype = journal\ndirectory = %s\n%s"
            % (self.jdir, extra))

    def write_journal(self, count, name, tag="app"):
        """count entries (every third at err) into a new journal file."""
        out = []
        for _ in range(count):
            i = self.n
            out.append("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n"
                       "_BOOT_ID=%s\n_HOSTNAME=web1\nSYSLOG_IDENTIFIER=%s\n"
                       "_PID=42\nPRIORITY=%d\nMESSAGE=entry %d\n\n"
                       % (1796600000000000 + i * 1000, 1000000 + i, BOOT, tag,
                          3 if i % 3 == 0 else 6, i))
            self.n += 1
        subprocess.run([JOURNAL_REMOTE, "-o",
                        os.path.join(self.jdir, name + ".journal"), "-"],
                       input="".join(out).encode(), check=True,
                       capture_output=True)

    def messages(self):
        con = sqlite3.connect(self.spool)
        try:
            rows = con.execute("SELECT message FROM records ORDER BY id"
                               ).fetchall()
        except sqlite3.OperationalError:  # made, its schema not yet
            rows = []
        con.close()
        return [r[0] for r in rows]

    def test_each_entry_once_across_kills_and_new_files(self):
        self.configure()
        kills = 0
        for k in range(8):
            self.write_journal(2000, "f%d" % k)
            for _ in range(6):
                p = subprocess.Popen([BIN, "-s", self.spool, "tail",
                                      "--from-start"], env=self.env,
                                     stderr=subprocess.PIPE)
                time.sleep(random.uniform(0, 0.02))
                p.send_signal(signal.SIGKILL)
                _, err = p.communicate(timeout=60)
                self.assertIn(p.returncode, (0, -9), err)
                kills += p.returncode == -9
            if k % 2:
                self.run_ls("tail", "--from-start")
        self.run_ls("tail", "--from-start")
        self.assertGreaterEqual(kills, 20)
        self.assertEqual(self.messages(),
                         ["entry %d" % i for i in range(self.n)])
        self.run_ls("tail")
        self.assertEqual(len(self.messages()), self.n)

    def unit_command(self):
        """The journal unit's ExecStart, for this build and spool."""
        with open(os.path.join(ROOT, "dist", "systemd",
                               "logsponge-journal.service.in")) as f:
            [line] = [l for l in f if l.startswith("ExecStart=")]
        argv = line.split("=", 1)[1].split()
        self.assertEqual(argv[0], "@BINDIR@/logsponge")
        return [BIN, "-s", self.spool] + argv[1:]

    def test_the_journal_unit_stops_after_a_commit_and_resumes(self):
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[source journal]\ntype = journal\ndirectory = %s\n"
            % self.jdir)
        self.write_journal(500, "a")
        # where journalctl --cursor-file left the earlier unit: entry 99
        os.makedirs(os.path.dirname(self.spool), exist_ok=True)
        cursors = subprocess.run(
            ["journalctl", "-D", self.jdir, "-o", "json", "--no-pager"],
            capture_output=True, text=True, check=True).stdout.splitlines()
        import json
        with open(os.path.join(os.path.dirname(self.spool),
                               "journal.cursor"), "w") as f:
            f.write(json.loads(cursors[99])["__CURSOR"] + "\n")
        p = subprocess.Popen(self.unit_command(), env=self.env,
                             stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.spool) or len(self.messages()) < 400:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.write_journal(300, "b")
        while len(self.messages()) < 700:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.write_journal(100, "c")
        self.run_ls("tail", "journal")
        self.assertEqual(self.messages(),
                         ["entry %d" % i for i in range(100, self.n)])

    def test_a_new_source_starts_at_the_end_and_matches_filter(self):
        self.configure("match = SYSLOG_IDENTIFIER=app\npriority = warning\n")
        self.write_journal(30, "a")
        self.run_ls("tail")
        self.assertFalse(os.path.exists(self.spool) and self.messages())
        self.write_journal(30, "b")
        self.write_journal(30, "c", tag="other")
        self.run_ls("tail")
        self.assertEqual(self.messages(),
                         ["entry %d" % i for i in range(30, 60, 3)])


if __name__ == "__main__":
    unittest.main()
