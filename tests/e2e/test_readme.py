"""The README's cron recipe as a newcomer follows it: its commands, copied
from the README, with the example config's three EDIT lines filled in,
from nothing to a mail in the test server's mailbox that names the job
and its failure.  What the test changes, and only that: the installed
paths point into the build, the spool and the config into the test's
directory, and the config also names the test server's port, CA and
login."""
import email
import email.policy
import os
import re
import shlex
import socket
import subprocess
import unittest

from common import BIN, ROOT, SpoolTest
from smtpserver import PASSWORD, USER, Certs, Server


def recipe(name):
    """The command lines of the README's block marked <!-- recipe: name -->"""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = text.split("<!-- recipe: %s -->" % name, 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [l for l in block.splitlines() if l.strip()]


class CronRecipeTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.server = Server(keep_all=True).start()
        self.conf = os.path.join(self.dir, "etc", "logsponge.conf")
        os.makedirs(os.path.dirname(self.conf))
        self.env["LOGSPONGE_SPOOL"] = self.spool
        # /etc/logsponge.conf is the test's: LOGSPONGE_CONFIG names it
        self.backup = os.path.join(self.dir, "backup.sh")
        with open(self.backup, "w") as f:
            f.write("#!/bin/sh\necho starting nightly backup\n"
                    "echo 'rsync: some files vanished' >&2\nexit 23\n")
        os.chmod(self.backup, 0o755)

    def tearDown(self):
        self.server.stop()
        super().tearDown()

    def local(self, line):
        """The line with the installed paths made the test's."""
        line = re.sub(r"^sudo ", "", line)
        return (line.replace("/usr/local/share/doc/logsponge/",
                             os.path.join(ROOT, "dist") + "/")
                .replace("/etc/logsponge.conf", self.conf)
                .replace("/usr/local/bin/logsponge", BIN)
                .replace("/usr/local/bin/backup.sh", self.backup))

    def edit(self):
        """sudoedit: the three lines marked EDIT, and the test server."""
        with open(self.conf) as f:
            lines = f.read().splitlines()
        edits = {"from": "from = logsponge <ls@example.org>",
                 "to": "to = ops@example.org",
                 "host": "host = localhost"}
        made = 0
        for i, l in enumerate(lines):
            key = l.split("=")[0].strip()
            if "; EDIT" in l and key in edits:
                lines[i] = edits.pop(key)
                made += 1
        self.assertEqual((made, edits), (3, {}))
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pw, 0o600)
        text = "\n".join(lines).replace(
            "port = 587", "port = %d\nca_file = %s\nuser = %s\n"
            "password_file = %s" % (self.server.port, Certs.get().ca, USER,
                                    pw))
        with open(self.conf, "w") as f:
            f.write(text + "\n")

    def logsponge(self, line):
        argv = shlex.split(self.local(line).split("#")[0])
        argv[0] = BIN if argv[0] == "logsponge" else argv[0]
        env = dict(self.env, LOGSPONGE_CONFIG=self.conf)
        return subprocess.run(argv, capture_output=True, env=env,
                              timeout=120)

    def test_from_nothing_to_the_mail_that_names_the_failure(self):
        lines = recipe("cron")
        self.assertLessEqual(len(lines), 10)
        cp, edit, check, crontab, job, flush = lines
        subprocess.run(shlex.split(self.local(cp).split("#")[0]),
                       check=True)
        self.assertTrue(edit.startswith("sudoedit /etc/logsponge.conf"))
        self.edit()
        p = self.logsponge(check)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"mail: test message: sent", p.stdout)
        self.assertEqual(len(self.server.messages), 1)
        self.assertTrue(crontab.startswith("sudo crontab -e"))
        # the crontab's lines, as cron runs them (after the five fields)
        p = self.logsponge(" ".join(job.split()[5:]))
        self.assertEqual(p.returncode, 23, p.stderr)
        self.assertEqual(len(self.server.messages), 2)
        m = email.message_from_bytes(self.server.messages[1][1],
                                     policy=email.policy.default)
        self.assertEqual(m["Subject"], "NEW: [logsponge] backup failed "
                         "(exit 23) on %s" % socket.gethostname())
        body = m.get_body(("plain",)).get_content()
        self.assertIn("backup failed (exit 23); its run of", body)
        self.assertIn("warning rsync: some files vanished", body)
        p = self.logsponge(" ".join(flush.split()[5:]))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.server.messages), 2)


if __name__ == "__main__":
    unittest.main()
