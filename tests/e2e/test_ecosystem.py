"""What users expect around the tool (issue 13): `make install` with the
Python package, the systemd units, the bash completion and the example
config; the units pass systemd-analyze verify; the completion completes;
the example passes `check`; and the CLI's sharp edges are gone."""
import email
import email.policy
import os
import pty
import select
import shutil
import signal
import subprocess
import textwrap
import time
import unittest

from common import BIN, BUILD, ROOT, SpoolTest, foreign_env


class InstallTest(SpoolTest):
    def test_make_install_destdir_puts_everything_in_place(self):
        dest = os.path.join(self.dir, "dest")
        p = subprocess.run(["make", "-s", "-C", ROOT, "install",
                            "DESTDIR=" + dest, "PREFIX=/usr",
                            "BUILD=" + os.path.abspath(BUILD)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("ldconfig", p.stdout)  # not into the live system
        for f in ["usr/bin/logsponge", "usr/lib/liblogsponge.so.0",
                  "usr/lib/python3/dist-packages/logsponge/__init__.py",
                  "usr/lib/systemd/system/logsponge-flush.service",
                  "usr/lib/systemd/system/logsponge-flush.timer",
                  "usr/lib/systemd/system/logsponge-journal.service",
                  "usr/lib/systemd/system/logsponge-tail.service",
                  "usr/lib/systemd/system/logsponge-tail.timer",
                  "usr/lib/systemd/system/logsponge-tail-follow.service",
                  "usr/share/bash-completion/completions/logsponge",
                  "usr/share/doc/logsponge/logsponge.conf.example",
                  "usr/share/man/man1/logsponge.1"]:
            self.assertTrue(os.path.exists(os.path.join(dest, f)), f)
        with open(os.path.join(
                dest, "usr/lib/systemd/system/logsponge-flush.service")) as f:
            self.assertIn("ExecStart=/usr/bin/logsponge flush", f.read())
        # the installed package works with the installed library
        env = dict(foreign_env(self.env),
                   PYTHONPATH=os.path.join(dest,
                                           "usr/lib/python3/dist-packages"),
                   LD_LIBRARY_PATH=os.path.join(dest, "usr/lib"))
        p = subprocess.run(
            ["/usr/bin/python3", "-c",
             "import logging, logsponge; l = logging.getLogger('i'); "
             "l.addHandler(logsponge.SpongeHandler(spool=%r)); "
             "l.error('installed')" % self.spool],
            capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.messages(), ["installed"])

    def test_the_example_config_passes_check(self):
        self.add(b"x\n")
        p = self.run_ls("-c", os.path.join(ROOT, "dist",
                                           "logsponge.conf.example"),
                        "check", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@unittest.skipUnless(SYSTEMD_ANALYZE, "systemd-analyze (package systemd)")
class UnitsTest(SpoolTest):
    def units(self):
        out = []
        src = os.path.join(ROOT, "dist", "systemd")
        for name in ["logsponge-flush.service", "logsponge-flush.timer",
                     "logsponge-journal.service", "logsponge-tail.service",
                     "logsponge-tail.timer", "logsponge-tail-follow.service"]:
            path = os.path.join(src, name + (".in" if name.endswith(
                ".service") else ""))
            with open(path) as f:
                text = f.read().replace("@BINDIR@", os.path.abspath(
                    os.path.dirname(BIN)))
            dst = os.path.join(self.dir, name)
            with open(dst, "w") as f:
                f.write(text)
            out.append(dst)
        return out

    def test_systemd_analyze_verify_is_clean(self):
        units = self.units()
        p = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no"] + units,
                           capture_output=True, text=True, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "")
        with open(units[1]) as f:
            timer = f.read()
        self.assertIn("OnCalendar=*:0/15", timer)
        self.assertIn("Persistent=true", timer)
        self.assertIn("RandomizedDelaySec=", timer)
        with open(units[4]) as f:
            self.assertIn("Persistent=true", f.read())
        for u in (units[0], units[2], units[3], units[5]):
            with open(u) as f:
                text = f.read()
            for key in ("NoNewPrivileges=yes", "ProtectSystem=strict",
                        "PrivateTmp=yes",
                        "ReadWritePaths=/var/lib/logsponge"):
                self.assertIn(key, text, u)

    def test_the_journal_unit_follows_the_journal_source(self):
        """(tests/e2e/test_tail.py runs its command on real journal
        files)"""
        with open(self.units()[2]) as f:
            text = f.read()
        self.assertIn("logsponge tail --follow journal\n", text)
        self.assertIn("SupplementaryGroups=systemd-journal", text)


class CompletionTest(SpoolTest):
    def complete(self, *words):
        script = textwrap.dedent("""
            source "%s"
            COMP_WORDS=(%s)
            COMP_CWORD=%d
            _logsponge
            printf '%%s\\n' "${COMPREPLY[@]}"
            """) % (os.path.join(ROOT, "dist", "completion", "logsponge"),
                    " ".join("'%s'" % w for w in words), len(words) - 1)
        p = subprocess.run(["bash", "-c", script], capture_output=True,
                           text=True, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l for l in p.stdout.splitlines() if l]

    def test_commands_options_values_and_files(self):
        self.assertEqual(self.complete("logsponge", "fl"), ["flush"])
        self.assertEqual(self.complete("logsponge", "-q", "st"), ["status"])
        self.assertEqual(self.complete("logsponge", "list", "--level", "w"),
                         ["warning"])
        self.assertEqual(self.complete("logsponge", "add", "--format", "r"),
                         ["rfc5424", "rfc3164"])
        self.assertEqual(self.complete("logsponge", "list", "--since", "y"),
                         ["yesterday"])
        self.assertIn("--dry-run", self.complete("logsponge", "flush", "--"))
        self.assertIn("--raw", self.complete("logsponge", "flush", "--r"))
        self.assertEqual(self.complete("logsponge", "ru"), ["run", "rules"])
        self.assertEqual(self.complete("logsponge", "rules", "s"),
                         ["stats", "suggest"])
        self.assertEqual(self.complete("logsponge", "rules", "a"),
                         ["apply"])
        self.assertEqual(self.complete("logsponge", "rules", "test", "--ex"),
                         ["--expect"])
        self.assertEqual(self.complete("logsponge", "run", "--stderr-l"),
                         ["--stderr-level"])
        open(os.path.join(self.dir, "spool-a.db"), "w").close()
        self.assertEqual(self.complete("logsponge", "-s", "spool-"),
                         ["spool-a.db"])
        self.assertIn("true", self.complete("logsponge", "run", "--",
                                            "tru"))


class SharpEdgesTest(SpoolTest):
    def config(self, text):
        return self.config_file(text)

    def test_global_options_after_the_command(self):
        other = os.path.join(self.dir, "other.db")
        p = subprocess.run([BIN, "add", "-s", other, "-q", "hello"],
                           capture_output=True, env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([BIN, "list", "--spool", other],
                           capture_output=True, env=self.env)
        self.assertIn(b"hello", p.stdout)
        # an option's value is never taken for a global option
        p = subprocess.run([BIN, "list", "--grep", "-v", "-s", other],
                           capture_output=True, env=self.env)
        self.assertEqual((p.returncode, p.stdout), (0, b""))
        p = subprocess.run([BIN, "list", "-s"], capture_output=True,
                           env=self.env)
        self.assertEqual(p.returncode, 64)
        self.assertEqual(p.stderr.decode().splitlines()[0],
                         "logsponge: list: option '-s' needs a value")

    def test_since_today_and_yesterday(self):
        now = time.time()
        lt = time.localtime(now)
        midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0,
                                0, 0, -1))
        y = time.localtime(midnight - 3600)
        y_mid = time.mktime((y.tm_year, y.tm_mon, y.tm_mday, 0, 0, 0, 0, 0,
                             -1))
        data = "".join(
            '{"MESSAGE":"%s","__REALTIME_TIMESTAMP":"%d"}\n' % (m, t * 1e6)
            for m, t in [("two days ago", y_mid - 60),
                         ("yesterday morning", y_mid + 60),
                         ("today early", midnight + 60)])
        self.add(data.encode(), "--format", "journal-json")
        def msgs(*a):
            return [r["message"] for r in self.records(*a)]
        self.assertEqual(msgs("--since", "today"), ["today early"])
        self.assertEqual(msgs("--since", "yesterday", "--until", "today"),
                         ["yesterday morning"])
        self.assertEqual(msgs("--until", "yesterday"), ["two days ago"])

    def read_pty(self, argv):
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(argv[0], argv, self.env)
        out = b""
        while True:
            r, _, _ = select.select([fd], [], [], 30)
            if not r:
                break
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out.replace(b"\r\n", b"\n")

    def test_dry_run_is_decoded_on_a_terminal_and_raw_on_request(self):
        self.env["LOGSPONGE_CONFIG"] = self.config(
            "[mail]\nfrom = J\u00f6rg M\u00fcller <a@b.c>\n"
            "to = \"Doe, Jane\" <d@e.f>, ops@e.f\ntransport = stdout\n"
            "html = yes\nsubject = [logsponge] \u00e9chec: {first}\n")
        self.add("caf\u00e9 = ferm\u00e9 \u2014 un tr\u00e8s long message "
                 "qui d\u00e9passe septante-six octets sans aucun "
                 "doute\n".encode(), "-l", "err")
        tty = self.read_pty([BIN, "-s", self.spool, "flush", "--dry-run"])
        self.assertIn("Subject: [logsponge] \u00e9chec: caf\u00e9".encode(),
                      tty)
        self.assertIn("caf\u00e9 = ferm\u00e9 \u2014 un tr\u00e8s long "
                      "message qui d\u00e9passe septante-six octets sans "
                      "aucun doute".encode(), tty)
        self.assertIn("From: J\u00f6rg M\u00fcller <a@b.c>\n".encode(), tty)
        self.assertIn(b'To: "Doe, Jane" <d@e.f>, ops@e.f\n', tty)
        self.assertNotIn(b"=?UTF-8?", tty)
        self.assertNotIn(b"quoted-printable", tty)
        self.assertIn(b"[a text/html alternative follows", tty)
        raw = self.read_pty([BIN, "-s", self.spool, "flush", "--dry-run",
                             "--raw"])
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable", raw)
        self.assertIn(b"=?UTF-8?", raw)
        # a pipe gets the exact message, as before
        piped = self.run_ls("flush", "--dry-run").stdout
        msg = email.message_from_bytes(piped, policy=email.policy.strict)
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        self.assertEqual(len(self.records()), 1)  # nothing changed
        p = self.run_ls("flush", "--raw", check=False)
        self.assertEqual(p.returncode, 64)

    def test_check_validates_what_flush_will_need(self):
        blocker = os.path.join(self.dir, "afile")
        open(blocker, "w").close()
        cases = [
            ("transport = smtp\n", "smtp.host is not set"),
            ("transport = maildir\n[maildir]\npath = %s/Maildir\n" % blocker,
             "is not a directory this user can write"),
            ("transport = sendmail\n[sendmail]\ncommand = /nonexistent/sm "
             "-t\n", "sendmail.command: /nonexistent/sm: No such file"),
            ("transport = sendmail\n[sendmail]\ncommand = no-such-sendmail "
             "-t\n", "no-such-sendmail: not found in PATH"),
        ]
        self.add(b"x\n")
        for body, why in cases:
            cfg = self.config("[mail]\nfrom = a@b.c\nto = d@e.f\n" + body)
            p = self.run_ls("-c", cfg, "check", check=False)
            self.assertEqual(p.returncode, 78, (body, p.stdout))
            self.assertIn(why, p.stderr.decode())
            self.assertEqual(p.stdout, b"")  # no "ok" first
        cfg = self.config("[mail]\nfrom = a@b.c\ntransport = stdout\n")
        p = self.run_ls("-c", cfg, "check", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"mail.to is not set", p.stderr)
        # a maildir that does not exist yet, under a writable directory
        cfg = self.config("[mail]\nfrom = a@b.c\nto = d@e.f\n"
                          "transport = maildir\n[maildir]\npath = %s/new/"
                          "Maildir\n" % self.dir)
        self.assertEqual(self.run_ls("-c", cfg, "check").returncode, 0)

    def test_run_stderr_level(self):
        """rsync's harmless warnings on a successful run sent mail: they
        were recorded at err."""
        sh = ("echo 'file vanished: x' >&2; exit %d")
        self.run_ls("run", "--stderr-level", "notice", "--", "sh", "-c",
                    sh % 0)
        p = self.run_ls("run", "--stderr-level", "notice", "--", "sh", "-c",
                        sh % 24, check=False)
        self.assertEqual(p.returncode, 24)
        got = [(r["level"], r["message"]) for r in self.records()]
        self.assertEqual([l for l, _ in got],
                         ["notice", "info", "notice", "err"])
        self.assertTrue(got[3][1].startswith('"sh" exited with status 24'))
        p = self.run_ls("run", "--stderr-level", "loud", "--", "true",
                        check=False)
        self.assertEqual(p.returncode, 64)
