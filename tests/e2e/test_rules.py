"""Noise rules: `logsponge rules test` judges lines as `add` reads them,
stores nothing, and names a broken rule by file and line."""
import json
import os
import subprocess
import sys
import unittest

from common import SpoolTest

HERE = os.path.dirname(os.path.abspath(__file__))

LOG = b"""\
Dec  6 10:00:03 web1 sshd[555]: Accepted publickey for root from 10.0.0.5 port 51234 ssh2
Dec  6 10:00:04 web1 sshd[556]: Accepted publickey for deploy from 10.0.0.6 port 51299 ssh2
Dec  6 10:00:05 web1 sshd[557]: Connection closed by 10.0.0.7 port 40000
Dec  6 10:00:06 web1 nginx[12]: 10.0.0.1 - - "GET /healthz HTTP/1.1" 200
Dec  6 10:00:07 web1 rsync[99]: file has vanished: /srv/x
Dec  6 10:00:08 web1 kernel: ERROR: disk sda failed
Dec  6 10:00:09 web1 cron[5]: (root) CMD (run-parts /etc/cron.hourly)
Dec  6 10:01:09 web1 cron[6]: (root) CMD (run-parts /etc/cron.hourly)
Dec  6 10:01:10 web1 sshd[558]: Connection closed by 10.0.0.8 port 40001
"""

RULES = {
    "10-ssh.rules": """\
# sshd's everyday lines (a user name is a word: *)
ignore tag=sshd "Accepted publickey for * from # port # ssh#" name=ssh-ok
ignore tag=sshd "Connection closed by # port #"
drop tag=nginx /GET \\/healthz/ name=healthz
""",
    "20-misc.rules": """\
level tag=rsync /vanished/ to=warning
keep level>=err "*"
ignore "never matches anything #"
ignore tag=cron "old rule" until=2020-01-01
""",
    "README": "not a rules file: ignored\n",
}


class RulesTestTest(SpoolTest):
    def setUp(self):
        super().setUp()
        self.rules = os.path.join(self.dir, "rules.d")
        os.makedirs(self.rules)
        for name, text in RULES.items():
            with open(os.path.join(self.rules, name), "w") as f:
                f.write(text)
        self.cfg = os.path.join(self.dir, "logsponge.conf")
        with open(self.cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\n")
        self.env["LOGSPONGE_CONFIG"] = self.cfg

    def rules_test(self, *args, input=LOG, check=True):
        return self.run_ls("rules", "test", "--format", "syslog",
                           "--detect-level", *args, input=input, check=check,
                           spool=False)

    def test_verdicts_hits_and_suggestions(self):
        out = self.rules_test().stdout.decode()
        self.assertIn("9 records: ignore 4, drop 1, level 1, keep 1, "
                      "no rule 2", out)
        lines = out.splitlines()
        hits = {l.split()[2]: int(l.split()[0]) for l in lines
                if l.startswith("  ") and ("rules:" in l or "ssh-ok" in l
                                           or "healthz" in l)}
        self.assertEqual(hits["ssh-ok"], 2)
        self.assertEqual(hits["healthz"], 1)
        self.assertTrue(any("never matches" not in l and "matched nothing" in l
                            and "20-misc.rules:3" in l for l in lines), out)
        # the expired rule applies no more
        self.assertTrue(any("20-misc.rules:4" in l and "matched nothing" in l
                            for l in lines), out)
        # what no rule matched, as rules to paste, most frequent first
        i = lines.index("unmatched, by kind (most frequent first), as rules:")
        self.assertEqual(lines[i + 1].split(None, 1),
                         ["2", 'ignore tag=cron "(root) CMD (run-parts '
                               '/etc/cron.hourly)"'])

    def test_shadowed_rules_are_named(self):
        """A rule whose records all went to earlier rules says so."""
        with open(os.path.join(self.rules, "05-first.rules"), "w") as f:
            f.write('ignore tag=sshd /closed/ name=broad\n')
        out = self.rules_test().stdout.decode().splitlines()
        broad = [l for l in out if " broad " in l][0]
        self.assertEqual(broad.split()[0], "2")
        later = [l for l in out if "10-ssh.rules:3" in l][0]
        self.assertIn("shadowed: its 2 records went to earlier rules", later)
        self.assertEqual(later.split()[0], "0")

    def test_suggest_from_the_spool(self):
        """The most frequent unmatched low kinds of the spool, as rules
        commented out; one uncommented is a working rule."""
        self.add(LOG, "--format", "syslog", "--detect-level")
        self.add(b"Dec  6 10:02:00 web1 kernel: ERROR: disk sda failed\n",
                 "--format", "syslog", "--detect-level")
        out = self.run_ls("rules", "suggest").stdout.decode().splitlines()
        self.assertTrue(all(l.startswith("#") for l in out), out)
        rules = [l[2:] for l in out if l.startswith("# ignore ")]
        # the cron line, twice; the err lines are never suggested
        self.assertEqual(rules, ['ignore tag=cron "(root) CMD (run-parts '
                                 '/etc/cron.hourly)"'])
        with open(os.path.join(self.rules, "30-new.rules"), "w") as f:
            f.write(rules[0] + "\n")
        out = self.run_ls("rules", "suggest").stdout.decode()
        self.assertNotIn("# ignore ", out)

    def test_cache_is_kept_bounded_and_checked(self):
        """Compiled rules are cached (the eight newest files kept); a
        damaged cache file, or one others may write, is not used."""
        cache = os.path.join(self.dir, "cache")
        env = dict(self.env, XDG_CACHE_HOME=cache)
        for i in range(10):
            with open(os.path.join(self.rules, "90-x.rules"), "w") as f:
                f.write("ignore /unique%d/\n" % i)
            self.run_ls("rules", "check", spool=False, env=env)
        files = os.listdir(os.path.join(cache, "logsponge"))
        self.assertTrue(files)
        self.assertLessEqual(len(files), 8)
        # damage every cached database: the rules compile again, alike
        for name in files:
            with open(os.path.join(cache, "logsponge", name), "wb") as f:
                f.write(b"not a database")
        args = ("rules", "test", "--format", "syslog", "--detect-level",
                "--json")
        got = self.run_ls(*args, input=LOG, spool=False, env=env).stdout
        want = self.rules_test("--json").stdout
        self.assertEqual(got, want)
        # a cache directory others may write is not used at all
        os.chmod(os.path.join(cache, "logsponge"), 0o777)
        got = self.run_ls(*args, input=LOG, spool=False, env=env).stdout
        self.assertEqual(got, want)

    def test_json_one_object_per_record(self):
        out = self.rules_test("--json").stdout.decode().splitlines()
        got = [json.loads(l) for l in out]
        self.assertEqual([g["n"] for g in got], list(range(1, 10)))
        self.assertEqual([g["verdict"] for g in got],
                         ["ignore", "ignore", "ignore", "drop", "level",
                          "keep", "none", "none", "ignore"])
        self.assertEqual(got[0]["rule"], "ssh-ok")
        self.assertEqual(got[3]["rule"], "healthz")
        self.assertIsNone(got[6]["rule"])
        self.assertTrue(got[2]["rule"].endswith("10-ssh.rules:3"))

    def test_a_suggested_rule_works(self):
        out = self.rules_test().stdout.decode().splitlines()
        i = out.index("unmatched, by kind (most frequent first), as rules:")
        rule = out[i + 1].split(None, 1)[1]
        with open(os.path.join(self.rules, "30-new.rules"), "w") as f:
            f.write(rule + " name=cron-hourly\n")
        got = [json.loads(l)["rule"]
               for l in self.rules_test("--json").stdout.decode().splitlines()]
        self.assertEqual(got[6:8], ["cron-hourly", "cron-hourly"])

    def test_expect(self):
        exp = os.path.join(self.dir, "expect")
        with open(exp, "wb") as f:
            f.write(b"ignore\tDec  6 10:00:05 web1 sshd[557]: Connection "
                    b"closed by 10.0.0.7 port 40000\n"
                    b"drop\tDec  6 10:00:06 web1 nginx[1]: GET /healthz x\n"
                    b"none\tDec  6 10:00:09 web1 cron[5]: anything\n")
        p = self.rules_test("--expect", exp, input=b"")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(exp, "ab") as f:
            f.write(b"ignore\tDec  6 10:00:09 web1 cron[5]: anything\n")
        p = self.rules_test("--expect", exp, input=b"", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"expected ignore, got none (no rule): anything",
                      p.stdout)

    def test_stores_nothing(self):
        self.rules_test()
        self.assertFalse(os.path.exists(self.spool))

    def test_broken_rules_file_is_named(self):
        with open(os.path.join(self.rules, "15-bad.rules"), "w") as f:
            f.write("# fine\nignore \"ok\"\nsilence \"x\"\n")
        p = self.rules_test(check=False)
        self.assertOneLineError(p, 78, "15-bad.rules:3",
                                'unknown verb "silence"')

    def test_pattern_the_engine_refuses_is_named(self):
        with open(os.path.join(self.rules, "15-bad.rules"), "w") as f:
            f.write("ignore /(a)\\1/\n")
        p = self.rules_test(check=False)
        self.assertOneLineError(p, 78, "15-bad.rules:1", "/(a)\\1/")

    def test_no_rules_directory(self):
        with open(self.cfg, "a") as f:
            f.write("[rules]\npath = %s\n" % os.path.join(self.dir, "none"))
        out = self.rules_test().stdout.decode()
        self.assertIn("9 records: ignore 0, drop 0, level 0, keep 0, "
                      "no rule 9", out)

    def test_rules_check(self):
        p = self.run_ls("rules", "check", spool=False)
        self.assertIn(b"rules: 7, ok (some expired)", p.stdout)
        self.assertIn(b"20-misc.rules:4: expired 2020-01-01", p.stderr)
        with open(os.path.join(self.rules, "15-bad.rules"), "w") as f:
            f.write("level \"x\"\n")
        p = self.run_ls("rules", "check", spool=False, check=False)
        self.assertOneLineError(p, 78, "15-bad.rules:1",
                                "level needs to=LEVEL")

    def test_check_refuses_broken_rules(self):
        with open(self.cfg, "a") as f:
            f.write("transport = null\n")
        self.add(b"x\n")
        p = self.run_ls("check", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"rules: 7", p.stdout)
        with open(os.path.join(self.rules, "15-bad.rules"), "w") as f:
            f.write("ignore /(a)\\1/\n")
        p = self.run_ls("check", check=False)
        self.assertOneLineError(p, 78, "15-bad.rules:1")


LOGCHECK = ["/etc/logcheck/ignore.d.paranoid", "/etc/logcheck/ignore.d.server"]


@unittest.skipUnless(all(os.path.isdir(d) for d in LOGCHECK),
                     "Debian's logcheck-database (make deps)")
class LogcheckTest(SpoolTest):
    """Debian's logcheck rules as they are: the same verdict as logcheck's
    own `grep -E -v -f` (one grep per cleaned rule file) on every line of
    a corpus of the daemons those rules name, hostile lines included."""

    def cleaned(self):
        """The rule files as logcheck's cleanrules makes them."""
        out = os.path.join(self.dir, "clean")
        os.makedirs(out)
        for d in LOGCHECK:
            names = subprocess.run(["run-parts", "--list", d],
                                   capture_output=True, text=True,
                                   check=True).stdout.split()
            for path in names:
                kept = subprocess.run(
                    ["grep", "-E", "--text", "-v", r"^[[:space:]]*$|^#", path],
                    capture_output=True, env={"LC_ALL": "C"}).stdout
                with open(os.path.join(out, os.path.basename(path)),
                          "ab") as f:
                    f.write(kept)
        return [os.path.join(out, n) for n in sorted(os.listdir(out))]

    def test_same_verdict_as_grep_on_every_line(self):
        corpus = subprocess.run(
            [sys.executable, os.path.join(HERE, "syslog_corpus.py"),
             "20000", "7"], capture_output=True, check=True).stdout
        # logcheck's way: each cleaned file takes away what it matches
        left = corpus
        for f in self.cleaned():
            left = subprocess.run(["grep", "-E", "--text", "-v", "-f", f],
                                  input=left, capture_output=True,
                                  env={"LC_ALL": "C"}).stdout
        kept = set(left.split(b"\n"))
        cfg = os.path.join(self.dir, "lc.conf")
        with open(cfg, "w") as f:
            f.write("[rules]\npath = %s\nlogcheck = %s\n"
                    % (os.path.join(self.dir, "none"), " ".join(LOGCHECK)))
        src = os.path.join(self.dir, "corpus")
        with open(src, "wb") as f:
            f.write(corpus)
        out = self.run_ls("-c", cfg, "rules", "test", "--format", "syslog",
                          "--json", src, spool=False).stdout.decode()
        got = [json.loads(l)["verdict"] for l in out.splitlines()]
        lines = corpus.split(b"\n")[:-1]
        self.assertEqual(len(got), len(lines))
        diff = [(v, l) for v, l in zip(got, lines)
                if (v == "ignore") == (l in kept)]
        self.assertEqual(diff[:5], [])
        ignored = sum(v == "ignore" for v in got)
        self.assertGreater(ignored, 5000)  # the corpus meets the rules
        self.assertGreater(len(lines) - ignored, 2000)
