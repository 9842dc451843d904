"""Kinds with a memory: a kind no delivered message carried is NEW; one
unseen for quiet_after is BACK; one resolved and seen again REGRESSED."""
import email
import email.policy
import json
import mailbox
import os
import sqlite3
import unittest

from common import SpoolTest

SEGFAULTS = b"".join(b"app[%d]: segfault at %s ip 0x400\n" % (i, a)
                     for i, a in enumerate((b"0x7f3a9c", b"0xd7f3a1",
                                            b"0xcd1200", b"0x11aa")))


class KindsTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.md = os.path.join(self.dir, "Mail")
        self.write_config()

    def write_config(self, transport="transport = maildir\n", extra=""):
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[mail]\nfrom = a@example.org\nto = b@example.org\n%s"
            "[maildir]\npath = %s\n%s" % (transport, self.md, extra))

    def mails(self):
        if not os.path.exists(self.md):
            return []
        box = mailbox.Maildir(self.md, factory=None, create=False)
        return [email.message_from_bytes(box.get_bytes(k),
                                         policy=email.policy.default)
                for k in sorted(box.keys(), key=lambda k: box.get_file(k).
                                _file.name)]

    def flush_one(self):
        before = len(self.mails())
        p = self.run_ls("flush")
        self.assertEqual(p.returncode, 0, p.stderr)
        msgs = self.mails()
        self.assertEqual(len(msgs), before + 1)
        new = [m for m in msgs][-1]
        return new["Subject"], new.get_body(("plain",)).get_content()

    def attention(self, body):
        return [l for l in body.splitlines() if l.startswith("  \u00d7")]

    def kinds(self):
        return [json.loads(l) for l in
                self.run_ls("kinds", "--json").stdout.splitlines()]

    def test_one_crash_is_one_kind_and_new_only_once(self):
        self.add(SEGFAULTS, "-l", "err", "-t", "kernel")
        subject, body = self.flush_one()
        self.assertTrue(subject.startswith("NEW: "), subject)
        [line] = self.attention(body)
        self.assertRegex(line, r"\u00d74 err +kernel NEW app\[#\]: segfault "
                               r"at # ip #")
        self.assertIn("New kinds: 1 (1 err)", body)
        [k] = self.kinds()
        self.assertEqual((k["seen"], k["sent"], k["level"]), (4, 1, "err"))
        # other values, same mask: known now; at crit too (no level in it)
        self.add(b"app[9]: segfault at 0xdeadbeef ip 0x999\n", "-l", "crit",
                 "-t", "kernel")
        self.add(b"disk full on /srv\n", "-l", "warning", "-t", "app")
        subject, body = self.flush_one()
        self.assertTrue(subject.startswith("NEW: "), subject)
        lines = self.attention(body)
        self.assertNotIn("NEW", lines[0])
        self.assertIn("NEW disk full on /srv", lines[1])
        self.assertEqual([(k["tag"], k["seen"], k["sent"], k["level"])
                          for k in self.kinds()],
                         [("app", 1, 1, "warning"), ("kernel", 5, 2, "crit")])

    def test_a_template_of_ones_own_says_new_with_its_token(self):
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[mail]\nfrom = a@example.org\nto = b@example.org\n"
            "subject = [web1] {new}{count} {level}\ntransport = maildir\n"
            "[maildir]\npath = %s\n" % self.md)
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        subject, _ = self.flush_one()
        self.assertEqual(subject, "[web1] NEW: 1 err")
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        subject, _ = self.flush_one()
        self.assertEqual(subject, "[web1] 1 err")

    def test_below_new_level_no_new_in_the_subject(self):
        self.add(b"fetched 12 items\n", "-l", "info", "-t", "feeds")
        subject, body = self.flush_one()
        self.assertFalse(subject.startswith("NEW"), subject)
        self.assertIn("NEW fetched # items", body.replace("12", "#"))
        self.write_config(extra="[policy]\nnew_level = info\n")
        self.add(b"fetched nothing\n", "-l", "info", "-t", "feeds")
        subject, _ = self.flush_one()
        self.assertTrue(subject.startswith("NEW: "), subject)

    def test_a_kind_first_seen_while_mail_failed_is_still_new(self):
        self.write_config(transport="transport = sendmail\n[sendmail]\n"
                          "command = exit 75\n")
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        p = self.run_ls("flush", check=False)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertEqual(self.kinds(), [])
        self.write_config()
        subject, body = self.flush_one()
        self.assertIn("NEW disk sda failed", body)
        self.assertEqual(len(self.kinds()), 1)

    def test_resolved_then_seen_again_is_regressed_muted_is_never_marked(self):
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        self.add(b"fan 2 slow\n", "-l", "warning", "-t", "hw")
        self.flush_one()
        ids = {k["tag"]: k["id"] for k in self.kinds()}
        self.run_ls("kinds", "resolve", str(ids["kernel"]))
        self.run_ls("kinds", "mute", str(ids["hw"]))
        self.assertEqual(self.run_ls("kinds", "resolve", "999",
                                     check=False).returncode, 65)
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        self.add(b"fan 3 slow\n", "-l", "warning", "-t", "hw")
        subject, body = self.flush_one()
        self.assertTrue(subject.startswith("NEW: "), subject)
        lines = self.attention(body)
        self.assertRegex(lines[0], r"kernel REGRESSED \(resolved "
                                   r"\d{4}-\d\d-\d\d\) disk sda failed")
        self.assertRegex(lines[1], r"hw +fan 3 slow")
        states = {k["tag"]: k["state"] for k in self.kinds()}
        self.assertEqual(states, {"kernel": "active", "hw": "muted"})
        # a muted kind shows in rules stats as a rule of its own
        stats = self.run_ls("rules", "stats").stdout.decode().splitlines()
        self.assertRegex(stats[-1], r"^ +- +- +- +mute +kind %d \(hw: fan # "
                                    r"slow\), 2 seen, last \d{4}-" % ids["hw"])
        [row] = [json.loads(l) for l in self.run_ls(
            "rules", "stats", "--json").stdout.splitlines()]
        self.assertEqual((row["verdict"], row["kind"], row["seen"]),
                         ("mute", "fan # slow", 2))

    def test_unseen_for_quiet_after_is_back(self):
        self.add(b"backup: disk nearly full\n", "-l", "warning", "-t", "bk")
        self.flush_one()
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE kinds SET last_seen = last_seen - "
                    "41 * 86400 * 1000000")
        con.commit()
        con.close()
        self.add(b"backup: disk nearly full\n", "-l", "warning", "-t", "bk")
        subject, body = self.flush_one()
        self.assertIn("bk BACK after 41d backup: disk nearly full", body)
        self.assertFalse(subject.startswith("NEW"), subject)

    def test_flush_on_new_sends_at_once_for_a_new_kind_only(self):
        self.write_config(extra="[policy]\nthreshold = 100\n"
                          "flush_on_new = err\n")
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        self.add(b"fan slow\n", "-l", "warning", "-t", "hw")
        st = self.run_ls("status").stdout.decode()
        self.assertIn("next flush: sending: flush_on_new: 1 record of a new "
                      "kind at err or above", st)
        subject, body = self.flush_one()
        self.assertTrue(subject.startswith("NEW: "), subject)
        self.assertIn("Sent because: flush_on_new: 1 record of a new kind",
                      body)
        # known now: the same error waits for the threshold
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        p = self.run_ls("-v", "flush")
        self.assertIn(b"not sending", p.stderr + p.stdout)
        # a new one sends; one that arrived meanwhile of a kind the
        # message made known is no longer counted
        self.add(b"disk sdb failed\n", "-l", "err", "-t", "kernel")
        self.flush_one()
        self.add(b"disk sdb failed\n", "-l", "err", "-t", "kernel")
        p = self.run_ls("-v", "flush")
        self.assertIn(b"not sending", p.stderr + p.stdout)

    def test_learning_holds_flush_on_new_back(self):
        self.write_config(extra="[policy]\nthreshold = 100\n"
                          "flush_on_new = err\nlearn = 7d\n")
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        p = self.run_ls("-v", "flush")
        self.assertIn(b"not sending", p.stderr + p.stdout)
        _, body = self.flush_one_forced()
        self.assertIn("New kinds: 1 (1 err); learning, day 1 of 7", body)
        # a week later the spool has learnt
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE meta SET value = value - 8 * 86400 * 1000000 "
                    "WHERE key = 'kinds_since'")
        con.commit()
        con.close()
        self.add(b"disk sdc failed\n", "-l", "err", "-t", "kernel")
        subject, body = self.flush_one()
        self.assertNotIn("learning", body)

    def flush_one_forced(self):
        p = self.run_ls("flush", "--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.mails()[-1]
        return m["Subject"], m.get_body(("plain",)).get_content()

    def test_kinds_learnt_from_past_logs_are_not_new(self):
        rules = os.path.join(self.dir, "rules.d")
        os.makedirs(rules)
        with open(os.path.join(rules, "10.rules"), "w") as f:
            f.write('ignore tag=cron "*"\n')
        past = os.path.join(self.dir, "past.log")
        with open(past, "w") as f:
            f.write("Dec  1 03:00:01 web1 kernel: disk sda failed\n"
                    "Dec  1 03:00:02 web1 app[4]: fetch 12 failed\n"
                    "Dec  2 03:00:02 web1 app[5]: fetch 13 failed\n"
                    "Dec  2 03:00:03 web1 cron[6]: job 7 failed\n")
        p = self.run_ls("kinds", "learn", "--format", "syslog", "-l", "err",
                        past)
        self.assertEqual(p.stdout, b"kinds learn: 2 kinds known now\n")
        self.assertEqual(self.records("--ignored"), [])  # nothing stored
        self.assertEqual(self.records(), [])
        self.assertEqual([(k["tag"], k["seen"], k["sent"])
                          for k in self.kinds()],
                         [("app", 2, 0), ("kernel", 1, 0)])
        # (the cron line the rules ignore taught nothing)
        self.add(b"fetch 99 failed\n", "-l", "err", "-t", "app")
        subject, body = self.flush_one()
        self.assertFalse(subject.startswith("NEW"), subject)
        [line] = self.attention(body)
        self.assertRegex(line, r"err +app +fetch 99 failed")

    def test_kinds_of_an_older_masking_are_made_again_not_new(self):
        self.add(b"app[1]: segfault at 0x7f3a9c ip 0x400\n", "-l", "err",
                 "-t", "kernel")
        self.flush_one()
        # as an older masking left them: two kinds (#x# and #xd#) of
        # what is one now, their fingerprints of then
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE kinds SET fp = 11, mask = 1")
        con.execute("INSERT INTO kinds(fp, tag, sample, level, first_seen, "
                    "last_seen, last_sent, seen, sent, mask) SELECT 12, tag, "
                    "'app[2]: segfault at 0xd7f3a1 ip 0x400', level, "
                    "first_seen, last_seen, last_sent, 3, 1, 1 FROM kinds")
        con.commit()
        con.close()
        self.add(b"app[3]: segfault at 0xcd1200 ip 0x400\n", "-l", "err",
                 "-t", "kernel")
        subject, body = self.flush_one()
        self.assertNotIn("NEW", body)
        self.assertFalse(subject.startswith("NEW"), subject)
        [k] = self.kinds()
        self.assertEqual((k["seen"], k["sent"]), (5, 3))
        self.assertEqual(self.run_ls("kinds").returncode, 0)
        con = sqlite3.connect(self.spool)
        self.assertEqual(con.execute("SELECT mask FROM kinds").fetchall(),
                         [(2,)])
        con.close()

    def test_status_counts_records_of_new_kinds(self):
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        self.add(b"fetched 3 items\n", "-l", "info", "-t", "feeds")
        st = self.run_ls("status").stdout.decode()
        self.assertIn("new:      1 record of kinds no message carried yet",
                      st)
        self.flush_one()
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual((st["pending"], st["new_kinds"]), (1, 0))

    def test_kinds_new_lists_the_kinds_waiting(self):
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        self.add(b"fan 2 slow\n", "-l", "warning", "-t", "hw")
        self.flush_one()
        ids = {k["tag"]: k["id"] for k in self.kinds()}
        self.run_ls("kinds", "resolve", str(ids["kernel"]))
        self.assertEqual(self.run_ls("kinds", "--new").stdout.decode()
                         .splitlines()[1:], [])
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")  # back
        self.add(b"fan 7 slow\n", "-l", "warning", "-t", "hw")      # known
        self.add(SEGFAULTS, "-l", "crit", "-t", "kernel")            # new
        self.add(b"fetched 3 items\n", "-l", "info", "-t", "feeds")  # below
        got = [json.loads(l) for l in
               self.run_ls("kinds", "--new", "--json").stdout.splitlines()]
        self.assertEqual([(k["state"], k["tag"], k["level"], k["seen"],
                           k["kind"]) for k in got],
                         [("new", "kernel", "crit", 4,
                           "app[#]: segfault at # ip #"),
                          ("regressed", "kernel", "err", 1,
                           "disk sda failed")])
        self.assertEqual((got[0]["id"], got[1]["id"]), (0, ids["kernel"]))
        text = self.run_ls("kinds", "--new", "--limit", "1").stdout.decode()
        head, row = text.splitlines()
        self.assertIn("pending", head)
        self.assertRegex(row, r"^ +- +new +crit +4 +0 .*kernel: app\[#\]: "
                              r"segfault at # ip #$")
        self.flush_one()
        self.assertEqual(self.run_ls("kinds", "--new", "--json").stdout, b"")

    def new_counted(self):
        """status's count of pending records of new kinds, and the same
        counted from the records."""
        st = json.loads(self.run_ls("status", "--json").stdout)
        con = sqlite3.connect(self.spool)
        n = con.execute("SELECT count(*) FROM records WHERE new_kind IS NOT "
                        "NULL AND sent IS NULL AND level < 8").fetchone()[0]
        con.close()
        return st["new_kinds"], n

    def test_new_kinds_stay_counted_through_every_way_out(self):
        rules = os.path.join(self.dir, "rules.d")
        os.makedirs(rules)
        self.write_config(extra="[spool]\nmax_records = 40\n")
        lines = b"".join(b"job %d failed: disk %d\n" % (i, i)
                         for i in range(30))
        self.add(lines, "-l", "err", "-t", "a")
        self.add(b"fan slow\n" * 5, "-l", "err", "-t", "hw")
        self.add(b"fine\n" * 20, "-t", "b")  # caps drop infos first
        self.assertEqual(self.new_counted(), (35, 35))
        self.add(b"x\n" * 30, "-l", "warning", "-t", "c")  # caps take 25
        got, want = self.new_counted()
        self.assertEqual((got, want), (40, 40))
        # rules apply: ignored ones leave the count, re-levelled ones move
        with open(os.path.join(rules, "10.rules"), "w") as f:
            f.write('ignore tag=hw "*"\nlevel tag=c "*" to=err\n')
        self.run_ls("rules", "apply")
        self.assertEqual(self.new_counted(), (got - 5, got - 5))
        self.run_ls("purge", "--all")
        self.assertEqual(self.new_counted(), (0, 0))
        self.add(b"job 99 failed: disk 1\n", "-l", "err", "-t", "a")
        self.assertEqual(self.new_counted(), (1, 1))
        self.flush_one_forced()
        self.assertEqual(self.new_counted(), (0, 0))

    def test_a_spool_counting_by_index_is_migrated(self):
        self.add(b"disk sda failed\n", "-l", "err", "-t", "kernel")
        self.add(b"fan slow\n", "-l", "warning", "-t", "hw")
        con = sqlite3.connect(self.spool)
        con.executescript(
            "CREATE INDEX records_new_kind ON records(level) WHERE new_kind "
            "IS NOT NULL AND sent IS NULL; DELETE FROM counts WHERE k >= 17;"
            "DROP TABLE positions; DROP TABLE runs;"
            "ALTER TABLE records DROP COLUMN run;"
            "PRAGMA user_version = 7;")
        con.close()
        self.assertEqual(self.new_counted(), (2, 2))
        con = sqlite3.connect(self.spool)
        self.assertEqual(con.execute(
            "SELECT name FROM sqlite_master WHERE name = 'records_new_kind'"
        ).fetchall(), [])
        con.close()

    def test_kinds_are_bounded(self):
        self.write_config(extra="[spool]\nmax_kinds = 2\n")
        for i, word in enumerate((b"alpha", b"beta", b"gamma")):
            self.add(b"%s failed\n" % word, "-l", "err", "-t", "t%d" % i)
            self.flush_one()
        self.assertEqual([k["tag"] for k in self.kinds()], ["t2", "t1"])


if __name__ == "__main__":
    unittest.main()
