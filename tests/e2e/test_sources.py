"""Records from where logs already are: `run`, journal JSON, syslog."""
import json
import os
import signal
import subprocess
import time

from common import BIN, SpoolTest, scaled


class RunTest(SpoolTest):
    def run_cmd(self, *cmd, opts=(), check=False):
        return self.run_ls("run", *opts, "--", *cmd, check=check)

    def test_both_streams_at_once_nothing_lost(self):
        n = scaled(100000, 1000)
        script = ("for i in range(%d):\n"
                  "    sys.stdout.write('out %%d\\n' %% i)\n"
                  "    sys.stderr.write('err %%d\\n' %% i)\n" % n)
        p = self.run_cmd("/usr/bin/python3", "-c", "import sys\n" + script)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual((p.stdout, p.stderr), (b"", b""))
        import sqlite3
        con = sqlite3.connect(self.spool)
        rows = con.execute("SELECT level, tag, message FROM records "
                           "ORDER BY id").fetchall()
        con.close()
        outs = [m for l, t, m in rows if l == 6 and m.startswith("out ")]
        errs = [m for l, t, m in rows if l == 3 and m.startswith("err ")]
        self.assertEqual(outs, ["out %d" % i for i in range(n)])
        self.assertEqual(errs, ["err %d" % i for i in range(n)])
        self.assertEqual({t for _, t, _ in rows}, {"python3"})
        last = rows[-1]
        self.assertEqual(last[0], 6)
        self.assertRegex(last[2], r'^"/usr/bin/python3" exited with status '
                         r'0 after \d+\.\ds$')
        self.assertEqual(len(rows), 2 * n + 1)

    def test_exit_status_passes_through(self):
        p = self.run_cmd("sh", "-c", "echo partial; echo oops >&2; exit 3",
                         opts=("-t", "backup"))
        self.assertEqual(p.returncode, 3)
        recs = self.records()
        self.assertEqual([(r["level"], r["message"]) for r in recs],
                         [("info", "partial"), ("err", "oops"),
                          ("err", '"sh" exited with status 3 after %s'
                           % recs[-1]["message"].rsplit(" ", 1)[1])])
        self.assertEqual({r["tag"] for r in recs}, {"backup"})

    def test_killed_by_signal(self):
        p = self.run_cmd("sh", "-c", "echo before; kill -TERM $$")
        self.assertEqual(p.returncode, 128 + signal.SIGTERM)
        last = self.records()[-1]
        self.assertEqual(last["level"], "err")
        self.assertIn("killed by signal 15", last["message"])

    def test_command_not_found(self):
        p = self.run_cmd("/nonexistent/cmd")
        self.assertEqual(p.returncode, 127)
        self.assertEqual(len(p.stderr.splitlines()), 1)
        self.assertTrue(p.stderr.startswith(b"logsponge: run: "))
        r = self.records()
        self.assertEqual(len(r), 1)
        self.assertEqual(r[0]["level"], "err")
        self.assertIn("cannot run", r[0]["message"])

    def test_detect_level_and_tee(self):
        p = self.run_cmd("sh", "-c", "echo 'WARNING: low'; "
                         "echo 'DEBUG: x' >&2; echo plain >&2",
                         opts=("--detect-level", "--tee"))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"WARNING: low\n")
        self.assertEqual(p.stderr, b"DEBUG: x\nplain\n")
        lv = {r["message"]: r["level"] for r in self.records()}
        self.assertEqual((lv["WARNING: low"], lv["DEBUG: x"], lv["plain"]),
                         ("warning", "debug", "err"))

    def test_sigterm_to_logsponge_reaches_the_command(self):
        p = subprocess.Popen([BIN, "-s", self.spool, "run", "--", "sh", "-c",
                              "echo started; sleep 30"], env=self.env)
        deadline = time.time() + 10
        while time.time() < deadline:
            time.sleep(0.05)
            try:
                if self.records():
                    break
            except Exception:
                pass
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        self.assertEqual(p.returncode, 128 + signal.SIGTERM)
        msgs = [r["message"] for r in self.records()]
        self.assertEqual(msgs[0], "started")
        self.assertIn("killed by signal 15", msgs[-1])

    def test_no_command(self):
        p = self.run_ls("run", check=False)
        self.assertOneLineError(p, 64, "no command")


class FormatTest(SpoolTest):
    def add_fmt(self, fmt, lines, *opts):
        data = b"".join(l + b"\n" for l in lines)
        self.add(data, "--format", fmt, *opts)
        return self.records()

    def test_journal_json(self):
        lines = [
            {"MESSAGE": "Started Session 3 of user root.", "PRIORITY": "6",
             "SYSLOG_IDENTIFIER": "systemd", "_HOSTNAME": "web1",
             "__REALTIME_TIMESTAMP": "1795255200123456", "_PID": "1"},
            {"MESSAGE": [72, 105, 255, 0, 33], "PRIORITY": "3",
             "_COMM": "rawprog", "_HOSTNAME": "web1",
             "__REALTIME_TIMESTAMP": "1795255201000000"},
            {"MESSAGE": "no priority", "_COMM": "x"},
        ]
        recs = self.add_fmt("journal-json",
                            [json.dumps(l).encode() for l in lines] +
                            [b"not json at all {", b'{"MESSAGE": 5}'],
                            "-l", "notice")
        self.assertEqual(len(recs), 5)
        r = recs[0]
        self.assertEqual((r["level"], r["tag"], r["host"], r["time"],
                          r["message"]),
                         ("info", "systemd", "web1",
                          "2026-11-21T10:00:00.123456Z",
                          "Started Session 3 of user root."))
        r = recs[1]
        self.assertEqual((r["level"], r["tag"], r["message"]),
                         ("err", "rawprog", "Hi\ufffd\u2400!"))
        self.assertEqual((recs[2]["level"], recs[2]["tag"]), ("notice", "x"))
        self.assertEqual(recs[3]["message"], "not json at all {")
        self.assertEqual(recs[3]["level"], "notice")
        self.assertEqual(recs[4]["message"], "")

    def test_rfc5424(self):
        lines = [
            b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog'
            b' - ID47 [exampleSDID@32473 iut="3" eventSource="App\\]x"] '
            b'\xef\xbb\xbfAn application event log entry',
            b"<34>1 2026-11-21T12:00:00+02:00 host2 su 77 - - 'su root' "
            b"failed",
            b"<13>1 - - - - - -",
            b"<999>1 broken",
        ]
        recs = self.add_fmt("rfc5424", lines)
        r = recs[0]
        self.assertEqual((r["level"], r["tag"], r["host"], r["time"]),
                         ("notice", "evntslog", "mymachine.example.com",
                          "2003-10-11T22:14:15.003000Z"))
        self.assertEqual(r["message"], '[exampleSDID@32473 iut="3" '
                         'eventSource="App\\]x"] An application event log '
                         'entry')
        r = recs[1]
        self.assertEqual((r["level"], r["tag"], r["host"], r["time"],
                          r["message"]),
                         ("crit", "su", "host2", "2026-11-21T10:00:00.000000Z",
                          "'su root' failed"))
        r = recs[2]
        self.assertEqual((r["level"], r["tag"], r["message"]),
                         ("notice", None, ""))
        self.assertEqual((recs[3]["level"], recs[3]["message"]),
                         ("info", "<999>1 broken"))

    def test_rfc3164(self):
        lines = [b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for "
                 b"lonvick on /dev/pts/8",
                 b"<13>Nov  1 01:02:03 host cron[1234]: (root) CMD (run)",
                 b"<30>just a message without header"]
        recs = self.add_fmt("rfc3164", lines)
        r = recs[0]
        self.assertEqual((r["level"], r["tag"], r["host"], r["message"]),
                         ("crit", "su", "mymachine",
                          "'su root' failed for lonvick on /dev/pts/8"))
        t = time.localtime(time.mktime(time.strptime(
            "%d Oct 11 22:14:15" % time.localtime().tm_year,
            "%Y %b %d %H:%M:%S")))
        expect = time.mktime(t)
        if expect > time.time() + 86400:
            expect = time.mktime(time.strptime(
                "%d Oct 11 22:14:15" % (time.localtime().tm_year - 1),
                "%Y %b %d %H:%M:%S"))
        got = time.mktime(time.strptime(r["time"][:19], "%Y-%m-%dT%H:%M:%S")
                          ) - time.timezone
        self.assertEqual(int(got), int(expect))
        r = recs[1]
        self.assertEqual((r["level"], r["tag"], r["host"], r["message"]),
                         ("notice", "cron", "host", "(root) CMD (run)"))
        r = recs[2]
        self.assertEqual((r["level"], r["message"]),
                         ("info", "just a message without header"))

    def test_syslog_file_lines(self):
        """A syslog file's lines (no <PRI>): host, tag and time parsed, the
        level detected in the message part; they were untagged info
        records that kept the timestamp, host and tag in their text."""
        lines = [b"Dec  6 10:00:03 web1 sshd[555]: Accepted publickey",
                 b"2026-12-06T10:00:03.123456+01:00 web1 app[9]: ERROR: "
                 b"disk full",
                 b"Dec  6 10:00:04 web1 kernel: [warn] link down",
                 b"a plain line"]
        recs = self.add_fmt("syslog", lines, "--detect-level")
        got = [(r["level"], r["tag"], r["host"], r["message"]) for r in recs]
        self.assertEqual(got[0], ("info", "sshd", "web1", "Accepted publickey"))
        self.assertEqual(got[1], ("err", "app", "web1", "ERROR: disk full"))
        self.assertEqual(recs[1]["time"], "2026-12-06T09:00:03.123456Z")
        self.assertEqual(got[2], ("warning", "kernel", "web1",
                                  "[warn] link down"))
        self.assertEqual((got[3][0], got[3][1], got[3][3]),
                         ("info", None, "a plain line"))

    def test_unknown_format(self):
        p = self.run_ls("add", "--format", "xml", check=False, input=b"")
        self.assertOneLineError(p, 64, "unknown format")
