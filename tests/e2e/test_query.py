"""status, list, history and purge through the CLI."""
import json
import sqlite3
import time

from common import SpoolTest

LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info",
          "debug"]


class QueryTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.add(b"boot ok\n", "-t", "init", "-l", "info")
        self.add(b"disk 91% full\n", "-t", "df", "-l", "warning")
        self.add(b"backup failed: EIO\n", "-t", "backup", "-l", "err")
        self.add(b"verbose noise\n", "-t", "backup", "-l", "debug")

    def set_time(self, message, iso):
        """Backdate a record (tests of --since/--until)."""
        con = sqlite3.connect(self.spool)
        t = int(time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
                - time.timezone) * 1000000
        con.execute("UPDATE records SET time=? WHERE message=?", (t, message))
        con.commit()
        con.close()

    def test_status_json(self):
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual(st["pending"], 4)
        self.assertEqual(list(st["levels"]), LEVELS)
        self.assertEqual(st["levels"]["err"], 1)
        self.assertEqual(st["levels"]["warning"], 1)
        self.assertEqual(st["levels"]["emerg"], 0)
        self.assertEqual(sum(st["levels"].values()), 4)
        self.assertRegex(st["oldest"], r"Z$")
        self.assertLessEqual(st["oldest"], st["newest"])
        self.assertGreater(st["spool_bytes"], 0)
        self.assertEqual(st["policy"]["threshold"],
                         {"have": 4, "need": 1, "level": "debug", "met": True})
        self.assertIsNone(st["last_attempt"])

    def test_status_empty_spool(self):
        self.run_ls("purge", "--all")
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual(st["pending"], 0)
        self.assertIsNone(st["oldest"])
        self.assertIsNone(st["newest"])
        self.assertIn("pending:  none", self.run_ls("status").stdout.decode())

    def test_status_policy_progress(self):
        cfg = self.dir + "/c.conf"
        with open(cfg, "w") as f:
            f.write("[policy]\nthreshold = 5\ncount_level = warning\n"
                    "flush_level = crit\nmax_age = 1h\n")
        out = self.run_ls("-c", cfg, "status").stdout.decode()
        self.assertIn("threshold:   2 of 5 records at warning or above\n", out)
        self.assertIn("flush_level: 0 records at crit or above\n", out)
        self.assertIn("max_age:     oldest is", out)
        st = json.loads(self.run_ls("-c", cfg, "status", "--json").stdout)
        self.assertEqual(st["policy"]["threshold"]["have"], 2)
        self.assertFalse(st["policy"]["threshold"]["met"])
        self.assertFalse(st["policy"]["flush_level"]["met"])

    def test_list_filters(self):
        self.assertEqual(self.messages("--level", "warning"),
                         ["disk 91% full", "backup failed: EIO"])
        self.assertEqual(self.messages("--level", "ERROR"),
                         ["backup failed: EIO"])
        self.assertEqual(self.messages("--tag", "backup"),
                         ["backup failed: EIO", "verbose noise"])
        self.assertEqual(self.messages("--grep", "full"), ["disk 91% full"])
        self.assertEqual(self.messages("--grep", "FULL"), [])
        self.assertEqual(self.messages("--limit", "2"),
                         ["backup failed: EIO", "verbose noise"])
        self.assertEqual(self.messages("--tag", "backup", "--level", "err"),
                         ["backup failed: EIO"])

    def test_list_json_fields(self):
        r = self.records("--tag", "df")[0]
        self.assertEqual(set(r), {"id", "time", "level", "tag", "host",
                                  "message"})
        self.assertEqual(r["level"], "warning")
        self.assertIsInstance(r["id"], int)

    def test_since_until(self):
        self.set_time("boot ok", "2020-01-01T00:00:00Z")
        self.set_time("disk 91% full", "2020-06-01T12:00:00Z")
        self.assertEqual(self.messages("--until", "2020-03-01"), ["boot ok"])
        self.assertEqual(self.messages("--since", "2020-03-01", "--until",
                                       "2021-01-01T00:00:00Z"),
                         ["disk 91% full"])
        self.assertEqual(self.messages("--since", "1h"),
                         ["backup failed: EIO", "verbose noise"])
        self.assertEqual(self.messages("--since", "2020-06-01T14:00+02:00",
                                       "--until", "2020-06-01T12:00:01Z"),
                         ["disk 91% full"])

    def test_history_empty(self):
        self.assertEqual(self.run_ls("history").stdout,
                         b"no flush attempts yet\n")
        self.assertEqual(self.run_ls("history", "--json").stdout, b"")
        self.assertEqual(self.run_ls("-q", "history").stdout, b"")

    def test_purge(self):
        self.set_time("boot ok", "2020-01-01T00:00:00Z")
        p = self.run_ls("purge", "--older-than", "30d")
        self.assertEqual(p.stdout, b"purged 1 record\n")
        self.assertEqual(len(self.messages()), 3)
        p = self.run_ls("purge", "--all")
        self.assertEqual(p.stdout, b"purged 3 records\n")
        self.assertEqual(self.messages(), [])
        # ids are never reused after a purge
        self.add(b"new\n")
        self.assertEqual(self.records()[0]["id"], 5)

    def test_list_to_closed_pipe(self):
        self.add(b"".join(b"r%d\n" % i for i in range(50000)))
        import subprocess
        from common import BIN
        p = subprocess.run("'%s' -s '%s' list | head -1" % (BIN, self.spool),
                           shell=True, capture_output=True)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stderr, b"")
