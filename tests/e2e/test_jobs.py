"""Cron jobs as runs: logsponge run -j NAME keeps each run (start, end,
status, its records); the digest shows a line per run and a failed run's
output; [job NAME] mail = failure mails at once (chronic's rule), every
and grace report a job that did not run, timeout stops one that hangs."""
import email
import email.policy
import json
import os
import socket
import sqlite3
import subprocess
import time
import unittest

from common import BIN, SpoolTest
from smtpserver import Server, smtp_section

SCRIPT = """#!/bin/sh
echo "starting nightly backup"
i=1
while [ $i -le ${N:-3} ]; do echo "file $i"; i=$((i+1)); done
sleep 0.3
echo "rsync warning: some files vanished" >&2
exit ${RC:-0}
"""


class JobsTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.script = os.path.join(self.dir, "backup.sh")
        with open(self.script, "w") as f:
            f.write(SCRIPT)
        os.chmod(self.script, 0o755)
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.stop()
        super().tearDown()

    def smtp_config(self, policy="", jobs=""):
        """A config for the real server (STARTTLS, AUTH)."""
        self.server = Server(keep_all=True).start()
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[policy]\n%s\n[mail]\nfrom = ls@example.org\nto = "
            "ops@example.org\n%s%s"
            % (policy, smtp_section(self.dir, self.server.port), jobs))

    def maildir_config(self, policy="", jobs=""):
        self.md = os.path.join(self.dir, "Mail")
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[policy]\n%s\n[mail]\nfrom = a@example.org\nto = b@example.org\n"
            "transport = maildir\n[maildir]\npath = %s\n%s"
            % (policy, self.md, jobs))

    def mails(self):
        if self.server:
            raw = [m[1] for m in self.server.messages]
        else:
            new = os.path.join(self.md, "new")
            names = sorted(os.listdir(new)) if os.path.isdir(new) else []
            raw = []
            for n in names:
                with open(os.path.join(new, n), "rb") as f:
                    raw.append(f.read())
        return [email.message_from_bytes(r, policy=email.policy.default)
                for r in raw]

    def backup(self, rc=0, n=3, job="backup", check=False):
        env = dict(self.env, RC=str(rc), N=str(n))
        return self.run_ls("run", "-j", job, "--", self.script, env=env,
                           check=check)

    def jobs(self, *args):
        return [json.loads(l) for l in
                self.run_ls("jobs", "--json", *args).stdout.splitlines()]

    def test_three_nights_in_one_digest_show_each_run_and_the_failed_output(self):
        self.smtp_config(policy="threshold = 100000")
        self.assertEqual(self.backup().returncode, 0)
        self.assertEqual(self.backup().returncode, 0)
        self.assertEqual(self.backup(rc=23, n=60).returncode, 23)
        self.assertEqual(self.mails(), [])  # no [job]: the policy decides
        self.run_ls("flush", "--force")
        [m] = self.mails()
        self.assertEqual(m["Subject"], "NEW: [logsponge] backup failed "
                         "(exit 23) on %s" % socket.gethostname())
        body = m.get_body(("plain",)).get_content()
        runs = [l for l in body.splitlines() if l.startswith("  backup  ")]
        self.assertEqual(len(runs), 3, body)
        self.assertRegex(runs[0], r"ended \(exit 0\)  5 lines$")
        self.assertRegex(runs[1], r"ended \(exit 0\)  5 lines$")
        self.assertRegex(runs[2], r"failed \(exit 23\)  62 lines$")
        out = body.split("backup failed (exit 23); its run of", 1)[1]
        out = out.splitlines()[1:]
        out = out[:out.index("")]
        # its head and tail whole, what is between counted
        self.assertIn("starting nightly backup", out[0])
        self.assertTrue(out[19].endswith("info    file 19"), out[19])
        self.assertIn("\u2026 23 lines \u2026", out[20])
        self.assertTrue(out[21].endswith("info    file 43"), out[21])
        self.assertIn("err     rsync warning", out[-2])
        self.assertIn('exited with status 23', out[-1])
        self.assertEqual(len(out), 41)
        # the good nights' output is not shown as a run's
        self.assertEqual(sum(l.endswith(" printed:")
                             for l in body.splitlines()), 1)

    def test_mail_failure_sends_at_once_with_the_runs_output_not_on_success(self):
        self.smtp_config(policy="threshold = 100000\nmin_interval = 1h",
                         jobs="[job backup]\nmail = failure\n")
        self.assertEqual(self.backup().returncode, 0)
        self.assertEqual(self.mails(), [])
        self.assertEqual(self.backup(rc=23).returncode, 23)
        [m] = self.mails()
        self.assertIn("backup failed (exit 23)", m["Subject"])
        body = m.get_body(("plain",)).get_content()
        self.assertIn("Sent because: job backup failed (exit 23)", body)
        self.assertIn("rsync warning: some files vanished", body)
        # the next failure goes at once too, min_interval aside; a
        # success after it sends nothing
        self.assertEqual(self.backup(rc=2).returncode, 2)
        self.assertEqual(len(self.mails()), 2)
        self.assertIn("backup failed (exit 2)", self.mails()[1]["Subject"])
        self.assertEqual(self.backup().returncode, 0)
        self.assertEqual(len(self.mails()), 2)
        # a flush from cron now has nothing due
        self.run_ls("flush")
        self.assertEqual(len(self.mails()), 2)

    def test_mail_always_sends_every_run(self):
        self.maildir_config(policy="threshold = 100000",
                            jobs="[job back*]\nmail = always\n")
        self.backup()
        self.backup()
        subjects = [m["Subject"] for m in self.mails()]
        self.assertEqual(len(subjects), 2)
        for s in subjects:  # what sent it: the run
            self.assertTrue(s.endswith("[logsponge] backup ended (exit 0) "
                                       "on %s" % socket.gethostname()), s)

    def test_a_job_that_did_not_run_is_reported(self):
        # (a glob before them: a job's own section wins all the same)
        self.maildir_config(policy="count_level = err",
                            jobs="[job *]\nmail = failure\n"
                                 "[job nightly]\nevery = 2s\ngrace = 1s\n"
                                 "[job ghost]\nevery = 2s\ngrace = 1s\n")
        self.run_ls("run", "-j", "nightly", "--", "true")
        self.run_ls("flush")  # info only: nothing goes; ghost watched now
        self.assertEqual(self.mails(), [])
        [j] = self.jobs()
        self.assertFalse(j["late"])
        time.sleep(3.5)
        self.assertTrue(self.jobs()[0]["late"])
        self.assertRegex(self.run_ls("status").stdout.decode(),
                         r"\njobs:     1; nightly late since \d{4}-\d\d-"
                         r"\d\dT\d\d:\d\dZ\n")
        self.run_ls("flush")
        [m] = self.mails()
        body = m.get_body(("plain",)).get_content()
        self.assertRegex(body, r"nightly has not run since \d{4}-\d\d-\d\dT"
                               r"\d\d:\d\dZ \(expected every 2s, grace 1s\)")
        self.assertIn("ghost has not run since logsponge began watching it",
                      body)
        # said once per every, not at every flush
        self.run_ls("flush")
        self.assertEqual(len(self.mails()), 1)
        late = [r for r in self.records() if "has not run" in r["message"]]
        self.assertEqual(late, [])
        # a run puts it right
        self.run_ls("run", "-j", "nightly", "--", "true")
        self.assertFalse(self.jobs()[0]["late"])

    def test_a_run_past_its_timeout_is_said_and_killed(self):
        self.maildir_config(policy="threshold = 100000",
                            jobs="[job slow]\ntimeout = 1s\nkill = yes\n")
        t0 = time.time()
        p = self.run_ls("run", "-j", "slow", "--", "sh", "-c",
                        "echo hi; sleep 30; echo never", check=False)
        self.assertLess(time.time() - t0, 15)
        self.assertEqual(p.returncode, 128 + 15)
        msgs = self.messages()
        self.assertEqual(msgs[0], "hi")
        self.assertIn("still running after 1s (timeout of [job slow]); "
                      "stopping it", msgs[1])
        self.assertNotIn("never", " ".join(msgs))
        [j] = self.jobs()
        self.assertEqual((j["state"], j["signal"]), ("timed out", 15))

    def test_a_run_past_its_timeout_not_killed_keeps_its_levels(self):
        self.maildir_config(policy="threshold = 100000",
                            jobs="[job slow]\ntimeout = 1s\n"
                                 "stderr_level = warning\n")
        p = self.run_ls("run", "-j", "slow", "--", "sh", "-c",
                        "sleep 1.6; echo late >&2", check=False)
        self.assertEqual(p.returncode, 0)
        got = [(r["level"], r["message"]) for r in self.records()]
        self.assertEqual(got[0][0], "err")
        self.assertIn("still running after 1s", got[0][1])
        self.assertEqual(got[1], ("warning", "late"))
        self.assertEqual(got[2][0], "err")  # timed out: a failed run
        self.assertEqual(self.jobs()[0]["state"], "timed out")

    def test_runs_at_once_keep_their_own_records(self):
        self.maildir_config()
        procs = [subprocess.Popen(
            [BIN, "-s", self.spool, "run", "-j", "job%d" % k, "--", "sh",
             "-c", "for i in $(seq 1 300); do echo job%d line $i; done"
             % k], env=self.env) for k in range(3)]
        self.assertEqual([p.wait(timeout=120) for p in procs], [0, 0, 0])
        jobs = self.jobs()
        self.assertEqual([(j["job"], j["lines"], j["state"]) for j in jobs],
                         [("job%d" % k, 300, "ok") for k in range(3)])
        db = sqlite3.connect(self.spool)
        rows = db.execute("SELECT runs.job, records.message FROM records "
                          "JOIN runs ON runs.id = records.run").fetchall()
        db.close()
        self.assertEqual(len(rows), 903)
        for job, message in rows:
            self.assertTrue(message.startswith(job + " line") or
                            "exited with status 0" in message, message)

    def test_jobs_lists_last_runs_and_a_killed_recorder(self):
        self.maildir_config()
        self.backup()
        self.backup(rc=1)
        p = subprocess.Popen([BIN, "-s", self.spool, "run", "-j", "hang",
                              "--", "sleep", "30"], env=self.env)
        time.sleep(1.0)
        [b, h] = self.jobs()
        self.assertEqual((b["job"], b["state"], b["status"], b["runs"]),
                         ("backup", "failed", 1, 2))
        self.assertEqual(h["state"], "running")
        self.assertRegex(self.run_ls("status").stdout.decode(),
                         r"\njobs:     2; backup failed \(exit 1\) at "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\dZ\n")
        p.kill()  # the recorder dies; the run never ends
        p.wait()
        self.assertEqual(self.jobs()[1]["state"], "did not end")
        text = self.run_ls("jobs", "backup").stdout.decode()
        self.assertRegex(text, r"\n +2 .* failed \(exit 1\) +5\n +1 .* ok "
                               r"\(exit 0\) +5\n$")
        p = self.run_ls("jobs", "a", "b", check=False)
        self.assertEqual(p.returncode, 64)

    def test_a_command_that_cannot_start_is_a_failed_run(self):
        self.maildir_config(jobs="[job missing]\nmail = failure\n"
                                 "[policy]\nthreshold = 1000\n")
        p = self.run_ls("run", "-j", "missing", "--", "/nonexistent/cmd",
                        check=False)
        self.assertEqual(p.returncode, 127)
        [j] = self.jobs()
        self.assertEqual((j["state"], j["status"]), ("failed", 127))
        [m] = self.mails()
        self.assertIn("missing failed (exit 127)", m["Subject"])

    def test_a_spool_from_before_runs_is_migrated(self):
        self.maildir_config()
        self.add(b"before runs\n")
        con = sqlite3.connect(self.spool)
        con.executescript("DROP TABLE runs; ALTER TABLE records DROP COLUMN "
                          "run; PRAGMA user_version = 9;")
        con.close()
        self.backup()
        self.assertEqual(self.messages()[0], "before runs")
        [j] = self.jobs()
        self.assertEqual((j["job"], j["lines"], j["state"]),
                         ("backup", 5, "ok"))
        con = sqlite3.connect(self.spool)
        self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0], 10)
        con.close()


if __name__ == "__main__":
    unittest.main()
