"""Records of several lines (issue 12): a traceback or a stack trace piped
into `add` (or printed by a command under `run`) is one record at the
level of its first line, not one record per line at info."""
import email
import email.policy
import json
import os
import subprocess

from common import ROOT, SpoolTest, scaled

PYTHON_CHAINED = """\
ERROR:feeds:fetch https://example.org/feed failed
Traceback (most recent call last):
  File "/srv/feeds.py", line 12, in fetch
    data = urlopen(url, timeout=5).read()
TimeoutError: timed out

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/feeds.py", line 40, in main
    fetch(url)
RuntimeError: feed https://example.org/feed unavailable
"""

JAVA = """\
2026-11-21 10:00:00 ERROR [main] c.e.App - request failed
java.lang.IllegalStateException: pool exhausted
\tat com.example.Pool.take(Pool.java:42)
\tat com.example.App.handle(App.java:17)
Caused by: java.util.concurrent.TimeoutException: 5000 ms
\tat com.example.Pool.wait(Pool.java:88)
\t... 2 more
"""

GO = """\
panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/src/app/main.go:12
main.main()
\t/src/app/main.go:20 +0x1d
"""


class JoinTest(SpoolTest):
    def records_json(self):
        out = self.run_ls("list", "--json").stdout.decode()
        return [json.loads(l) for l in out.splitlines()]

    def test_python_traceback_chained_is_one_record(self):
        text = "INFO:feeds:starting\n" + PYTHON_CHAINED + "INFO:feeds:done\n"
        self.add(text.encode(), "-t", "feeds", "--detect-level")
        r = self.records_json()
        self.assertEqual([x["level"] for x in r], ["info", "err", "info"])
        self.assertIn("\nTraceback (most recent call last):\n", r[1]["message"])
        self.assertTrue(r[1]["message"].endswith(
            "RuntimeError: feed https://example.org/feed unavailable"))
        self.assertEqual(r[1]["message"].count("\n"),
                         PYTHON_CHAINED.count("\n") - 1)
        # list --level err shows the whole trace, --grep finds a frame
        out = self.run_ls("list", "--level", "err").stdout.decode()
        self.assertIn("\n      File \"/srv/feeds.py\", line 40, in main\n",
                      out)
        out = self.run_ls("list", "--grep", "line 40, in main").stdout
        self.assertEqual(out.decode().count("Traceback"), 2)

    def test_two_tracebacks_stay_two_records(self):
        """The old folding merged the second traceback's frames (info
        records) into the first one's."""
        one = PYTHON_CHAINED.split("\n\nDuring")[0] + "\n"
        self.add((one + one).encode(), "--detect-level")
        r = self.records_json()
        self.assertEqual(len(r), 2)
        self.assertEqual(r[0]["message"], r[1]["message"])
        self.assertEqual([x["level"] for x in r], ["err", "err"])

    def test_java_and_go(self):
        self.add((JAVA + "after java\n" + GO + "after go\n").encode())
        r = self.records_json()
        self.assertEqual(len(r), 4, [x["message"] for x in r])
        self.assertEqual(r[0]["message"], JAVA.rstrip("\n"))
        self.assertEqual(r[1]["message"], "after java")
        self.assertEqual(r[2]["message"], GO.rstrip("\n"))
        self.assertEqual(r[3]["message"], "after go")

    def test_join_none_keeps_every_line(self):
        self.add(JAVA.encode(), "--join", "none")
        self.assertEqual(len(self.records_json()), JAVA.count("\n"))
        p = self.run_ls("add", "--join", "sometimes", input=b"x\n",
                        check=False)
        self.assertEqual(p.returncode, 64)
        self.assertIn(b"--join sometimes: must be auto or none", p.stderr)

    def test_run_joins_a_commands_stderr(self):
        script = os.path.join(self.dir, "fail.py")
        with open(script, "w") as f:
            f.write("import sys\nprint('working')\n"
                    "raise SystemExit(sys.exit(1/0))\n")
        self.run_ls("run", "-t", "job", "--", "/usr/bin/python3", script,
                    check=False)
        r = self.records_json()
        trace = [x for x in r if x["message"].startswith("Traceback")]
        self.assertEqual(len(trace), 1, [x["message"] for x in r])
        self.assertEqual(trace[0]["level"], "err")
        self.assertTrue(trace[0]["message"].endswith(
            "ZeroDivisionError: division by zero"))

    def test_a_million_ordinary_lines_stay_a_million_records(self):
        n = scaled(1000000, 20000)
        lines = os.path.join(self.dir, "lines.txt")
        subprocess.run(["/usr/bin/python3",
                        os.path.join(ROOT, "tests", "bench", "genlogs.py"),
                        str(n), lines, os.path.join(self.dir, "x.csv")],
                       check=True)
        with open(lines, "rb") as f:
            self.add(f.read())
        import sqlite3
        con = sqlite3.connect(self.spool)
        count, joined = con.execute(
            "SELECT count(*), sum(instr(message, char(10)) > 0) "
            "FROM records").fetchone()
        con.close()
        self.assertEqual((count, joined), (n, 0))

    def test_the_mail_shows_the_lines_indented(self):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = stdout\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.add((JAVA + JAVA).encode())
        p = self.run_ls("flush", "--dry-run")
        msg = email.message_from_bytes(p.stdout, policy=email.policy.strict)
        body = msg.get_content().replace("\r\n", "\n")
        summary, body = body.split("\nLog, oldest first", 1)
        first = JAVA.splitlines()
        # the attention block names the first line only, once for both
        attention = summary.split("\n\n")[1]
        self.assertEqual(attention.count(first[0]), 1)
        self.assertNotIn(first[1], attention)
        self.assertNotIn("\n", msg["Subject"])
        # one line for both (folded by the first line), the others under it
        self.assertEqual(body.count(first[0]), 1)
        self.assertIn("\u00d72 " + first[0] + "  (last ", body)
        at = body.index(first[0])
        tail = body[at:].split("\n")
        self.assertEqual(tail[1:1 + len(first) - 1],
                         ["    " + l for l in first[1:]])
