"""Noise rules at ingest: what `add` stores, what the policy counts, what
the mail says, and that every record is accounted for."""
import email
import json
import email.policy
import mailbox
import os
import re
import sqlite3
import time
import unittest

from common import SpoolTest

LOG = b"""\
Dec  6 10:00:03 web1 sshd[555]: Accepted publickey for root from 10.0.0.5 port 51234 ssh2
Dec  6 10:00:04 web1 sshd[556]: Accepted publickey for deploy from 10.0.0.6 port 51299 ssh2
Dec  6 10:00:05 web1 sshd[557]: Connection closed by 10.0.0.7 port 40000
Dec  6 10:00:06 web1 nginx[12]: 10.0.0.1 - - "GET /healthz HTTP/1.1" 200
Dec  6 10:00:07 web1 rsync[99]: file has vanished: /srv/x
Dec  6 10:00:08 web1 kernel: ERROR: disk sda failed
Dec  6 10:00:09 web1 cron[5]: (root) CMD (run-parts /etc/cron.hourly)
Dec  6 10:01:06 web1 nginx[12]: 10.0.0.1 - - "GET /healthz HTTP/1.1" 200
Dec  6 10:01:10 web1 sshd[558]: Connection closed by 10.0.0.8 port 40001
"""

RULES = """\
ignore tag=sshd "Accepted publickey for * from # port # ssh#" name=ssh-ok
ignore tag=sshd "Connection closed by # port #" name=ssh-closed
drop tag=nginx /GET \\/healthz/ name=healthz
level tag=rsync /vanished/ to=notice name=rsync-vanished
"""


class RulesAtIngestTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.rules = os.path.join(self.dir, "rules.d")
        os.makedirs(self.rules)
        self.write_rules(RULES)
        self.md = os.path.join(self.dir, "Mail")
        self.cfg = self.config_file(
            "[mail]\nfrom = a@example.org\nto = b@example.org\n"
            "transport = maildir\n[maildir]\npath = %s\n" % self.md)
        self.env["LOGSPONGE_CONFIG"] = self.cfg

    def write_rules(self, text, name="10-base.rules"):
        with open(os.path.join(self.rules, name), "w") as f:
            f.write(text)

    def add_log(self, data=LOG):
        return self.add(data, "--format", "syslog", "-l", "err")

    def db(self, sql):
        con = sqlite3.connect(self.spool)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def mails(self):
        box = mailbox.Maildir(self.md, factory=None, create=False)
        return [email.message_from_bytes(box.get_bytes(k),
                                         policy=email.policy.default)
                for k in sorted(box.keys())]

    def test_verdicts_are_stored_and_counted_apart(self):
        p = self.add_log()
        self.assertEqual(p.stderr, b"")
        counted = self.records()
        self.assertEqual([r["tag"] for r in counted],
                         ["rsync", "kernel", "cron"])
        rsync = counted[0]
        self.assertEqual((rsync["level"], rsync["original_level"],
                          rsync["rule"]), ("notice", "err", "rsync-vanished"))
        ignored = self.records("--ignored")
        self.assertEqual([(r["tag"], r["rule"], r["ignored"])
                          for r in ignored],
                         [("sshd", "ssh-ok", True)] * 2 +
                         [("sshd", "ssh-closed", True)] * 2)
        # the drops are not stored, only counted
        self.assertEqual(self.db("SELECT count(*) FROM records "
                                 "WHERE tag = 'nginx'"), [(0,)])
        self.assertEqual(self.db("SELECT n FROM rule_dropped WHERE "
                                 "rule = 'healthz'"), [(2,)])
        hits = dict(self.db("SELECT rule, sum(n) FROM rule_hits GROUP BY 1"))
        self.assertEqual(hits, {"ssh-ok": 2, "ssh-closed": 2, "healthz": 2,
                                "rsync-vanished": 1})
        # the pid of the syslog line is kept
        self.assertEqual(self.db("SELECT pid FROM records WHERE tag = 'sshd' "
                                 "ORDER BY id LIMIT 1"), [(555,)])
        # status counts only what is not ignored, and says the rest waits
        out = self.run_ls("status").stdout.decode()
        self.assertIn("pending:  3 records", out)
        self.assertIn("ignored:  4 records", out)
        text = self.run_ls("list", "--ignored").stdout.decode()
        self.assertIn("[ignored by ssh-ok]", text)

    def test_mail_reports_rules_and_every_record_is_accounted_for(self):
        self.add_log()
        self.assertEqual(self.run_ls("flush").returncode, 0)
        [msg] = self.mails()
        body = msg.get_body(("plain",)).get_content()
        self.assertIn("logsponge on ", body)
        self.assertIn("Ignored by rules: 4 (ssh-ok 2, ssh-closed 2); "
                      "dropped 2 (healthz 2)", body)
        self.assertNotIn("Accepted publickey", body)
        self.assertNotIn("healthz HTTP", body)
        self.assertIn("file has vanished", body)
        listed = re.search(r"(\d+) records?, highest level", body)
        # in = listed + ignored + dropped + waiting
        lines_in = len(LOG.splitlines())
        self.assertEqual(int(listed.group(1)) + 4 + 2 + 0, lines_in)
        self.assertEqual(self.db("SELECT count(*) FROM records"), [(0,)])
        self.assertEqual(self.db("SELECT records FROM history"), [(7,)])
        # what a message reported is not reported again
        self.add(b"Dec  6 11:00:00 web1 app: one more\n", "--format",
                 "syslog", "-l", "err")
        self.assertEqual(self.run_ls("flush").returncode, 0)
        body = self.mails()[1].get_body(("plain",)).get_content()
        self.assertNotIn("Ignored by rules", body)

    def test_ignored_records_do_not_trigger(self):
        self.add_log(LOG.splitlines(True)[0] + LOG.splitlines(True)[2])
        p = self.run_ls("flush")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.md, "new")) and
                         os.listdir(os.path.join(self.md, "new")))
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual((st["pending"], st["ignored"]["err"]), (0, 2))
        # they go along with the next message, counted
        self.add(b"Dec  6 11:00:00 web1 app: disk full\n", "--format",
                 "syslog", "-l", "err")
        self.assertEqual(self.run_ls("flush").returncode, 0)
        body = self.mails()[0].get_body(("plain",)).get_content()
        self.assertIn("Ignored by rules: 2 (ssh-ok 1, ssh-closed 1)", body)
        self.assertEqual(self.db("SELECT count(*) FROM records"), [(0,)])

    def test_the_heartbeat_says_what_the_rules_did(self):
        with open(self.cfg, "a") as f:
            f.write("[policy]\nthreshold = 10\nheartbeat = 1h\n")
        lines = LOG.splitlines(True)
        self.add_log(lines[0] + lines[2] + lines[3])
        self.assertEqual(self.run_ls("flush").returncode, 0)  # watching
        self.assertFalse(os.path.exists(self.md))
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE meta SET value = value - 3700000000 WHERE "
                    "key = 'watch_since'")
        con.commit()
        con.close()
        self.assertEqual(self.run_ls("flush").returncode, 0)
        [msg] = self.mails()
        body = msg.get_body(("plain",)).get_content()
        self.assertIn("nothing to report since", body)
        self.assertIn("Noise rules: 2 ignored records wait in the spool; "
                      "dropped 1 (healthz 1).", body)

    def test_a_broken_rules_file_keeps_every_record(self):
        self.write_rules("ignore tag=sshd \"unterminated\n", "20-bad.rules")
        p = self.add_log()
        self.assertEqual(p.returncode, 0)
        err = p.stderr.decode()
        self.assertRegex(err, r"^logsponge: warning: .*20-bad\.rules:1: .*"
                         r"records are kept as they come\n$")
        self.assertEqual(len(self.records()), len(LOG.splitlines()))
        self.assertEqual(self.records("--ignored"), [])
        # and `rules check` says it is an error
        self.assertNotEqual(self.run_ls("rules", "check", spool=False,
                                        check=False).returncode, 0)

    def test_the_caps_drop_ignored_records_before_counted_ones(self):
        with open(self.cfg, "a") as f:
            f.write("[spool]\nmax_records = 5\n")
        self.add_log()  # 3 counted, 4 ignored: 7 > 5
        self.assertEqual(len(self.records()), 3)
        self.assertEqual(len(self.records("--ignored")), 2)
        st = self.run_ls("status").stdout.decode()
        self.assertIn("pending:  3 records", st)

    def use_logcheck(self, rule):
        """Only a logcheck rule directory (file sshd: rule)."""
        lc = os.path.join(self.dir, "logcheck")
        os.makedirs(lc)
        with open(os.path.join(lc, "sshd"), "w") as f:
            f.write(r"^\w{3} [ :[:digit:]]{11} [._[:alnum:]-]+ "
                    r"sshd\[[[:digit:]]+\]: " + rule + "\n")
        self.write_rules("")
        with open(self.cfg, "a") as f:
            f.write("[rules]\nlogcheck = %s\n" % lc)

    def test_logcheck_rules_see_the_line_with_its_pid(self):
        self.use_logcheck(r"Connection closed by [.[:digit:]]+ port "
                          r"[[:digit:]]+$")
        self.add_log()
        self.assertEqual([r["message"] for r in self.records("--ignored")],
                         ["Connection closed by 10.0.0.7 port 40000",
                          "Connection closed by 10.0.0.8 port 40001"])

    def test_rules_apply_judges_pending_records_again(self):
        self.add_log()
        self.write_rules(
            'ignore tag=sshd "Accepted publickey for * from # port # ssh#" '
            'name=ssh-ok\n'
            'drop tag=kernel /disk sda/ name=no-sda\n'
            'level tag=rsync /vanished/ to=warning name=rsync-vanished\n'
            'ignore tag=cron "(root) CMD (*)" name=cron-cmd\n')
        p = self.run_ls("rules", "apply")
        self.assertEqual(p.stdout, b"rules apply: 5 pending records "
                                   b"judged anew\n")
        counted = self.records()
        # the closed connections count again; rsync from its original err
        self.assertEqual([(r["tag"], r["level"]) for r in counted],
                         [("sshd", "err"), ("rsync", "warning"),
                          ("sshd", "err")])
        self.assertEqual(counted[1]["original_level"], "err")
        self.assertEqual(sorted(r["rule"] for r in self.records("--ignored")),
                         ["cron-cmd", "ssh-ok", "ssh-ok"])
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual((st["pending"], st["ignored"]["err"]), (3, 3))
        # the record dropped now is counted for the next message
        self.assertEqual(self.run_ls("flush").returncode, 0)
        body = self.mails()[0].get_body(("plain",)).get_content()
        self.assertIn("Ignored by rules: 3 (ssh-ok 2, cron-cmd 1); dropped 3 "
                      "(healthz 2, no-sda 1)", body)
        self.assertEqual(self.db("SELECT count(*) FROM records"), [(0,)])
        # nothing changes the second time
        self.add_log()
        self.assertEqual(self.run_ls("rules", "apply").stdout,
                         b"rules apply: 0 pending records judged anew\n")

    def test_the_mail_names_rules_that_expire_or_did(self):
        day = 86400
        soon = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * day))
        gone = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * day))
        far = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * day))
        self.write_rules(RULES +
                         'ignore tag=cron "*" name=cron-soon until=%s\n'
                         'ignore tag=ntp "*" name=ntp-gone until=%s\n'
                         'ignore tag=x "*" name=later until=%s\n'
                         % (soon, gone, far))
        self.add_log()
        self.assertEqual(self.run_ls("flush").returncode, 0)
        body = self.mails()[0].get_body(("plain",)).get_content()
        self.assertIn("Rules expiring: cron-soon on %s; expired: ntp-gone "
                      "on %s (no longer applied)" % (soon, gone), body)
        self.assertNotIn("later", body)
        # the cron line was ignored by the rule that still applies
        self.assertIn("cron-soon 1", body)

    def test_unless_counts_records_again_past_n_in_the_window(self):
        self.write_rules('ignore tag=sshd "Failed password for * from # '
                         'port # ssh#" name=ssh-fail unless=3/1h\n')
        fail = ("Dec  6 10:00:0%d web1 sshd[5%d]: Failed password for root "
                "from 10.0.0.%d port 4%d ssh2\n")
        # two runs: the spool's count carries from one to the next
        for run in (range(1, 3), range(3, 6)):
            self.add_log("".join(fail % (i, i, i, i) for i in run).encode())
        counted = self.records()
        self.assertEqual([r["message"][-21:] for r in counted],
                         ["10.0.0.4 port 44 ssh2", "10.0.0.5 port 45 ssh2"])
        self.assertEqual([(r["rule"], r.get("escalated")) for r in counted],
                         [("ssh-fail", True)] * 2)
        self.assertEqual(len(self.records("--ignored")), 3)
        self.assertEqual(self.run_ls("flush").returncode, 0)
        body = self.mails()[0].get_body(("plain",)).get_content()
        self.assertIn("ESCALATING: 2 records counted again, its rule past "
                      "unless= (ssh-fail 2)", body)
        self.assertRegex(body, r"\u00d72 err +sshd +NEW ESCALATING Failed "
                               r"password")

    def test_rules_stats(self):
        self.write_rules(RULES + 'ignore "never # matches" name=idle\n')
        self.add_log()
        rows = [json.loads(l) for l in self.run_ls(
            "rules", "stats", "--json").stdout.splitlines()]
        by = {r["rule"]: r for r in rows}
        self.assertEqual([r["rule"] for r in rows],
                         ["ssh-ok", "ssh-closed", "healthz",
                          "rsync-vanished", "idle"])
        self.assertEqual((by["healthz"]["verdict"], by["healthz"]["day"],
                          by["healthz"]["month"]), ("drop", 2, 2))
        self.assertEqual(by["idle"]["month"], 0)
        self.write_rules(RULES.splitlines(True)[0])
        text = self.run_ls("rules", "stats").stdout.decode()
        self.assertIn("healthz  (no longer loaded)", text)

    def test_logcheck_rules_read_journal_entries_with_their_pid(self):
        self.use_logcheck(r"Accepted publickey for [^ ]+ from [.[:digit:]]+ "
                          r"port [[:digit:]]+ ssh2$")
        entry = ('{"MESSAGE": "Accepted publickey for root from 10.0.0.1 '
                 'port 5555 ssh2", "SYSLOG_IDENTIFIER": "sshd", %s'
                 '"_HOSTNAME": "web1", "PRIORITY": "6"}\n')
        data = (entry % '"_PID": "777", ' + entry % '').encode()
        self.add(data, "--format", "journal-json")
        # rules test says what ingest did
        p = self.run_ls("rules", "test", "--format", "journal-json",
                        "--json", input=data, spool=False)
        self.assertEqual([json.loads(l)["verdict"] for l in
                          p.stdout.splitlines()], ["ignore", "none"])
        # with its pid the line is logcheck's; without one it is not
        self.assertEqual([r["rule"] for r in self.records("--ignored")],
                         ["logcheck/sshd:1"])
        self.assertEqual(len(self.records()), 1)

    def test_an_older_spool_is_migrated(self):
        self.add(b"before\n")
        # make it the schema before the rules (version 5)
        con = sqlite3.connect(self.spool)
        con.executescript(
            "ALTER TABLE records DROP COLUMN rule;"
            "ALTER TABLE records DROP COLUMN orig_level;"
            "ALTER TABLE records DROP COLUMN pid;"
            "ALTER TABLE records DROP COLUMN escalated;"
            "DROP TABLE rule_hits; DROP TABLE rule_dropped; DROP TABLE rule_names;"
            "DROP TABLE kinds; DROP TABLE positions; DROP TABLE runs;"
            "ALTER TABLE records DROP COLUMN run;"
            "ALTER TABLE records DROP COLUMN new_kind;"
            "DELETE FROM meta WHERE key = 'kinds_since';"
            "DELETE FROM counts WHERE k > 8; PRAGMA user_version = 5;")
        con.close()
        self.add_log()
        self.assertEqual(self.db("PRAGMA user_version"), [(10,)])
        self.assertEqual(len(self.records()), 4)
        self.assertEqual(len(self.records("--ignored")), 4)


if __name__ == "__main__":
    unittest.main()
