"""The Python package (issue 13): logsponge.SpongeHandler, a logging
handler over liblogsponge.so.0 with ctypes, used from the build tree by
Debian's /usr/bin/python3."""
import json
import os
import shutil
import subprocess
import textwrap
import unittest

from common import BUILD, ROOT, SpoolTest, foreign_env

PYDIR = os.path.join(ROOT, "python")


class PythonHandlerTest(SpoolTest):

    def py(self, code, check=True, env=None):
        """Run code with /usr/bin/python3, the package from the build tree;
        $SPOOL is this test's spool."""
        e = foreign_env(env or self.env)
        e["PYTHONPATH"] = PYDIR
        e["LD_LIBRARY_PATH"] = os.path.abspath(BUILD)
        e["SPOOL"] = self.spool
        p = subprocess.run(["/usr/bin/python3", "-c", textwrap.dedent(code)],
                           capture_output=True, env=e, timeout=300)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p

    def test_levels_tags_and_times(self):
        self.py("""
            import logging, os, logsponge
            log = logging.getLogger("feeds.rss")
            log.setLevel(1)
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            for lv in (60, 50, 40, 30, 25, 20, 10, 5):
                log.log(lv, "at %d", lv)
            other = logging.getLogger("x")
            other.addHandler(logsponge.SpongeHandler(
                spool=os.environ["SPOOL"], tag="backup"))
            other.error("tagged")
            """)
        recs = self.records()
        self.assertEqual([(r["level"], r["tag"], r["message"]) for r in recs],
                         [("alert", "feeds.rss", "at 60"),
                          ("crit", "feeds.rss", "at 50"),
                          ("err", "feeds.rss", "at 40"),
                          ("warning", "feeds.rss", "at 30"),
                          ("notice", "feeds.rss", "at 25"),
                          ("info", "feeds.rss", "at 20"),
                          ("debug", "feeds.rss", "at 10"),
                          ("debug", "feeds.rss", "at 5"),
                          ("err", "backup", "tagged")])
        # the record's own time, to the microsecond
        self.assertRegex(recs[0]["time"], r"\.\d{6}Z$")

    def test_the_noise_rules_judge_what_the_handler_logs(self):
        rules = os.path.join(self.dir, "rules.d")
        os.makedirs(rules)
        with open(os.path.join(rules, "10.rules"), "w") as f:
            f.write('ignore tag=feeds.* "fetched # items from *" name=fetched\n'
                    'drop /heartbeat/ name=beat\n')
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[mail]\nfrom = a@example.org\nto = b@example.org\n")
        self.py("""
            import logging, os, logsponge
            log = logging.getLogger("feeds.rss")
            log.setLevel(1)
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            log.info("fetched 12 items from https://example.org/feed")
            log.info("heartbeat")
            log.error("feed https://example.org/feed: 503")
            """)
        self.assertEqual(self.messages(),
                         ["feed https://example.org/feed: 503"])
        self.assertEqual([(r["message"], r["rule"]) for r in
                          self.records("--ignored")],
                         [("fetched 12 items from https://example.org/feed",
                           "fetched")])

    def test_the_exception_line_is_near_the_top_of_the_mail(self):
        md = os.path.join(self.dir, "Mail")
        self.env["LOGSPONGE_CONFIG"] = self.config_file(
            "[mail]\nfrom = a@example.org\nto = b@example.org\n"
            "transport = maildir\n[maildir]\npath = %s\n" % md)
        # a deep traceback, as a program's stderr gives it to `add`, and
        # the same through the handler (its message line names it)
        self.py("""
            import logging, os, sys, logsponge, urllib.error
            def fetch(n):
                if n == 0:
                    raise urllib.error.URLError("[Errno 111] Connection "
                                                "refused")
                return fetch(n - 1) if n % 2 else [fetch(n - 1)][0]
            log = logging.getLogger("feeds")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            sys.setrecursionlimit(200)
            try:
                fetch(40)
            except Exception:
                log.exception("fetching https://example.org/feed failed")
            """)
        p = subprocess.run([os.environ.get("LOGSPONGE_BIN"), "-s",
                            self.spool, "flush"], env=self.env,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        import email, email.policy, mailbox
        box = mailbox.Maildir(md, factory=None, create=False)
        [key] = box.keys()
        body = email.message_from_bytes(
            box.get_bytes(key), policy=email.policy.default).get_body(
                ("plain",)).get_content().splitlines()
        exc = "URLError: <urlopen error [Errno 111] Connection refused>"
        self.assertTrue(any(exc in l for l in body[:15]), body[:15])
        self.assertIn("NEW fetching https://example.org/feed failed",
                      body[3])
        self.assertIn(" lines \u2026", "\n".join(body[:15]))

    def test_a_traceback_is_one_record(self):
        self.py("""
            import logging, os, logsponge
            log = logging.getLogger("job")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            try:
                {}["missing"]
            except KeyError:
                log.exception("row %d failed", 7)
            log.warning("where am I", stack_info=True)
            """)
        recs = self.records()
        self.assertEqual(len(recs), 2)
        lines = recs[0]["message"].split("\n")
        self.assertEqual(lines[0], "row 7 failed")
        self.assertEqual(lines[1], "Traceback (most recent call last):")
        self.assertEqual(lines[-1], "KeyError: 'missing'")
        self.assertEqual(recs[0]["level"], "err")
        self.assertIn("\nStack (most recent call last):\n",
                      recs[1]["message"])
        # and list --level err shows the whole trace
        p = self.run_ls("list", "--level", "err")
        self.assertIn(b"KeyError: 'missing'", p.stdout)

    def test_never_raises_into_the_application(self):
        blocker = os.path.join(self.dir, "file")
        open(blocker, "w").close()
        p = self.py("""
            import logging, logsponge
            log = logging.getLogger("app")
            log.addHandler(logsponge.SpongeHandler(
                spool="%s/under-a-file/spool.db"))
            log.error("one")
            log.error("two")
            logging.shutdown()
            print("still running")
            """ % blocker)
        self.assertEqual(p.stdout, b"still running\n")
        err = p.stderr.decode()
        self.assertIn("--- Logging error ---", err)
        self.assertIn("logsponge: spool:", err)

    def test_threads(self):
        self.py("""
            import logging, os, threading, logsponge
            log = logging.getLogger("t")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            def work(k):
                for i in range(300):
                    log.warning("thread %d record %03d", k, i)
            ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
            [t.start() for t in ts]
            [t.join() for t in ts]
            """)
        got = sorted(self.messages())
        self.assertEqual(got, sorted("thread %d record %03d" % (k, i)
                                     for k in range(8) for i in range(300)))

    def test_fork_each_record_once(self):
        # the parent holds 5 records in its batch when it forks: the child
        # must neither write them again nor use the parent's connection
        self.py("""
            import logging, os, logsponge
            h = logsponge.SpongeHandler(spool=os.environ["SPOOL"], batch=50)
            log = logging.getLogger("f")
            log.addHandler(h)
            for i in range(5):
                log.warning("before fork %d", i)
            pid = os.fork()
            if pid == 0:
                for i in range(20):
                    log.warning("child %d", i)
                logging.shutdown()
                os._exit(0)
            for i in range(20):
                log.warning("parent %d", i)
            _, status = os.waitpid(pid, 0)
            assert status == 0, status
            """)
        got = sorted(self.messages())
        want = sorted(["before fork %d" % i for i in range(5)] +
                      ["child %d" % i for i in range(20)] +
                      ["parent %d" % i for i in range(20)])
        self.assertEqual(got, want)

    def test_batch_writes_on_flush_close_and_exit(self):
        self.py("""
            import logging, os, subprocess, json, logsponge
            h = logsponge.SpongeHandler(spool=os.environ["SPOOL"], batch=100)
            log = logging.getLogger("b")
            log.addHandler(h)
            def count():
                out = subprocess.run([os.environ["BIN"], "-s",
                                      os.environ["SPOOL"], "list", "--json"],
                                     capture_output=True).stdout
                return len(out.splitlines())
            for i in range(10):
                log.warning("held %d", i)
            assert count() == 0, count()      # held in memory
            h.flush()
            assert count() == 10, count()     # written
            for i in range(7):
                log.warning("at exit %d", i)  # no flush: logging's exit
            """, env=dict(self.env, BIN=os.path.abspath(
                os.environ.get("LOGSPONGE_BIN") or
                os.path.join(BUILD, "logsponge"))))
        self.assertEqual(len(self.records()), 17)

    def test_dict_config_and_the_blog_posts_case(self):
        """Feeds fail now and then; mail only once five failures piled
        up (threshold = 5 at warning), one digest holding them all."""
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[policy]\nthreshold = 5\ncount_level = warning\n"
                    "[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = stdout\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        code = """
            import logging.config, os
            logging.config.dictConfig({
                "version": 1,
                "handlers": {"sponge": {
                    "class": "logsponge.SpongeHandler",
                    "spool": os.environ["SPOOL"],
                    "level": "WARNING",
                }},
                "root": {"handlers": ["sponge"], "level": "INFO"},
            })
            log = logging.getLogger("feeds")
            log.info("fetched 12 feeds")           # below WARNING: not kept
            log.warning("feed %s timed out", os.environ["FEED"])
            """
        for k in range(4):
            self.py(code, env=dict(self.env, FEED="f%d" % k))
            self.assertEqual(self.run_ls("flush").stdout, b"")  # not yet
        self.py(code, env=dict(self.env, FEED="f4"))
        mail = self.run_ls("flush").stdout
        self.assertIn(b"Subject: NEW: [logsponge] ", mail)
        self.assertIn(b"5 records", mail)
        for k in range(5):
            self.assertIn(b"feed f%d timed out" % k, mail)
        self.assertEqual(self.records(), [])


WHEELS = "/usr/share/python-wheels"


@unittest.skipUnless(os.path.isdir(WHEELS) and any(
    w.startswith("wheel-") for w in os.listdir(WHEELS)),
    "Debian's wheels (python3-wheel-whl, python3-setuptools-whl)")
class PipInstallTest(SpoolTest):
    def test_pip_installs_the_package_into_a_venv(self):
        """An interpreter other than Debian's (a venv here): pip installs
        the package from the source tree (a copy: nothing is built in
        it), offline, and the handler logs."""
        src = os.path.join(self.dir, "src")
        shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        venv = os.path.join(self.dir, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True)
        pip = subprocess.run(
            [os.path.join(venv, "bin", "pip"), "install", "--no-index",
             "--find-links", WHEELS, src], capture_output=True, text=True)
        self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
        e = foreign_env(self.env)
        e["LD_LIBRARY_PATH"] = os.path.abspath(BUILD)
        e["SPOOL"] = self.spool
        e.pop("PYTHONPATH", None)
        # the guide's dictConfig, as a program in the venv would say it
        code = ("import logging, logging.config, os, logsponge\n"
                "assert logsponge.__file__.startswith(%r)\n"
                "logging.config.dictConfig({\n"
                "    'version': 1,\n"
                "    'handlers': {'sponge': {'class': "
                "'logsponge.SpongeHandler',\n"
                "                            'level': 'WARNING', 'tag': "
                "'feeds',\n"
                "                            'spool': os.environ['SPOOL']}},\n"
                "    'root': {'handlers': ['sponge'], 'level': 'INFO'},\n"
                "})\n"
                "logging.getLogger('v').info('not kept: below WARNING')\n"
                "logging.getLogger('v').error('from a venv')\n" % venv)
        p = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code],
                           capture_output=True, env=e, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(self.db_messages(), ["from a venv"])
        # the library from LOGSPONGE_LIBRARY, not from the linker's path
        del e["LD_LIBRARY_PATH"]
        e["LOGSPONGE_LIBRARY"] = os.path.join(os.path.abspath(BUILD),
                                              "liblogsponge.so.0")
        p = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code],
                           capture_output=True, env=e, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(self.db_messages(), ["from a venv"] * 2)
        # none found: one line saying how
        e["LOGSPONGE_LIBRARY"] = os.path.join(self.dir, "nowhere.so")
        p = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code],
                           capture_output=True, env=e, timeout=120)
        self.assertRegex(p.stderr.decode(), r"cannot load .*nowhere\.so "
                         r"\(.*\): install logsponge's library \(make "
                         r"install; ldconfig\) or set LOGSPONGE_LIBRARY")
