"""The command line: errors, exit codes, help, files and modes."""
import json
import os
import re
import sqlite3
import stat
import subprocess

from common import BIN, BUILD, ROOT, SpoolTest, build_program

COMMANDS = ["add", "run", "status", "list", "history", "purge", "flush", "check",
            "rules"]


class ErrorsTest(SpoolTest):
    def test_spool_path_that_cannot_be_created(self):
        blocker = os.path.join(self.dir, "file")
        open(blocker, "w").close()
        self.spool = os.path.join(blocker, "spool.db")  # under a file
        p = self.run_ls("add", "x", check=False)
        self.assertPassedOn(p, 73, ["x"], blocker)

    def test_not_a_spool(self):
        os.makedirs(os.path.dirname(self.spool))
        with open(self.spool, "wb") as f:
            f.write(os.urandom(8192))
        before = open(self.spool, "rb").read()
        p = self.run_ls("add", input=b"x\ny\n", check=False)
        self.assertPassedOn(p, 65, ["x", "y"], "not a logsponge spool")
        for args in (["status"], ["list"]):
            p = self.run_ls(*args, check=False)
            self.assertOneLineError(p, 65, "not a logsponge spool")
        self.assertEqual(open(self.spool, "rb").read(), before)  # untouched

    def test_other_sqlite_database(self):
        os.makedirs(os.path.dirname(self.spool))
        con = sqlite3.connect(self.spool)
        con.execute("CREATE TABLE accounts(x)")
        con.commit()
        con.close()
        p = self.run_ls("add", "x", check=False)
        self.assertPassedOn(p, 65, ["x"], "not a logsponge spool")

    def test_spool_is_a_directory(self):
        os.makedirs(self.spool)
        p = self.run_ls("add", "x", check=False)
        self.assertPassedOn(p, 73, ["x"], "not a regular file")
        # run still runs the job, passes its output through unchanged and
        # exits with its status (it used to exit 73 without running it)
        marker = os.path.join(self.dir, "ran")
        p = self.run_ls("run", "--", "sh", "-c", "echo out; echo err >&2; "
                        "touch %s; exit 3" % marker, check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertTrue(os.path.exists(marker))
        self.assertEqual(p.stdout, b"out\n")
        err = p.stderr.decode().splitlines()
        self.assertEqual(len(err), 2, err)
        self.assertIn("not a regular file", err[0])
        self.assertIn("passed through, not recorded", err[0])
        self.assertEqual(err[1], "err")

    def test_missing_spool_for_flush_and_check(self):
        cfg = self.write_config("[mail]\nfrom = a@b.c\nto = d@e.f\n"
                                "transport = null\n")
        for args in (["flush"], ["flush", "--force"]):
            p = self.run_ls("-c", cfg, *args, check=False)
            self.assertOneLineError(p, 66, "no such spool")
        # before the first record, check checks the config and says so
        p = self.run_ls("-c", cfg, "check", check=False)
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        self.assertIn(b"no such spool (nothing recorded yet?); the first "
                      b"record makes it: ok", p.stdout)
        bad = self.write_config("[mail]\nfrom = a@b.c\n")
        p = self.run_ls("-c", bad, "check", check=False)
        self.assertOneLineError(p, 78, "mail.to is not set")
        self.assertFalse(os.path.exists(self.spool))

    def test_missing_spool_for_queries(self):
        for args in (["status"], ["list"], ["history"], ["purge", "--all"]):
            p = self.run_ls(*args, check=False)
            self.assertOneLineError(p, 66, "no such spool")
        self.assertFalse(os.path.exists(self.spool))

    def test_usage_errors(self):
        self.run_ls("add", "x")
        cases = [
            (["frobnicate"], "unknown command"),
            (["add", "-l", "loud", "x"], "unknown level"),
            (["list", "--since", "last tuesday"], "not a time"),
            (["list", "--limit", "0"], "not a whole number"),
            (["purge"], "exactly one of"),
            (["purge", "--all", "--older-than", "1d"], "exactly one of"),
            (["purge", "--older-than", "soon"], "not a duration"),
            (["status", "extra"], "unexpected argument"),
        ]
        for args, needle in cases:
            p = self.run_ls(*args, check=False)
            self.assertOneLineError(p, 64, needle)
        p = self.run_ls("--bogus", check=False)
        self.assertEqual(p.returncode, 64)

    def test_an_unknown_option_names_itself(self):
        """It printed the whole usage instead (issue 13)."""
        cases = [
            (["list", "--foo"], "list: unknown option '--foo'", "list"),
            (["flush", "--dryrun"], "flush: unknown option '--dryrun'",
             "flush"),
            (["run", "-l", "warning", "--", "true"],
             "run: unknown option '-l'", "run"),
            (["list", "--level"], "list: option '--level' needs a value",
             "list"),
            # (-q is a global option, also after the command)
            (["add", "-qx", "a"], "add: unknown option '-x'", "add"),
        ]
        for args, first, cmd in cases:
            p = self.run_ls(*args, check=False)
            self.assertEqual(p.returncode, 64, args)
            self.assertEqual(p.stderr.decode().splitlines(),
                             ["logsponge: " + first,
                              "logsponge: %s: see 'logsponge %s --help'"
                              % (cmd, cmd)])

    def test_check_smtp_with_another_transport(self):
        cfg = self.write_config("[mail]\nfrom = a@b.c\nto = d@e.f\n"
                                "transport = maildir\n[maildir]\n"
                                "path = %s/md\n" % self.dir)
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.run_ls("add", "x")
        p = self.run_ls("check", "--smtp", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"mail.transport is maildir: checking an SMTP server "
                      b"applies to transport = smtp only", p.stderr)
        self.assertNotIn(b"smtp.host", p.stderr)

    def write_config(self, text):
        return self.config_file(text)

    def test_config_errors_name_file_and_line(self):
        # outside [spool]: ingestion warns and keeps the records; flush
        # and check refuse
        cfg = self.write_config("[spool]\nmax_record = 1k\n\n[policy]\n"
                                "threshold = five\n")
        p = self.run_ls("-c", cfg, "add", "x", check=False)
        self.assertOneLineError(p, 0, "warning: " + cfg + ":5:",
                                "policy.threshold", "records are still kept")
        self.assertEqual(self.db_messages(), ["x"])
        p = self.run_ls("-c", cfg, "status", check=False)
        self.assertEqual(p.returncode, 0)
        self.assertIn("flush refuses this config", p.stderr.decode())
        for args in (["flush"], ["check"]):
            p = self.run_ls("-c", cfg, *args, check=False)
            self.assertOneLineError(p, 78, cfg + ":5:", "policy.threshold")
        # in [spool]: nothing can be stored where it was meant to go
        cfg = self.write_config("[spool]\ncolour = blue\n")
        p = self.run_ls("-c", cfg, "add", "y", check=False)
        self.assertPassedOn(p, 78, ["y"], cfg + ":2:",
                            'unknown key "colour"')
        # a config file that cannot be read: a warning for add
        p = self.run_ls("-c", os.path.join(self.dir, "nope.conf"), "add",
                        "z", check=False)
        self.assertOneLineError(p, 0, "warning:", "nope.conf")
        self.assertEqual(self.db_messages(), ["x", "z"])
        p = self.run_ls("-c", os.path.join(self.dir, "nope.conf"), "flush",
                        check=False)
        self.assertOneLineError(p, 78, "nope.conf")

    def test_config_chosen_by_env_and_xdg(self):
        spool2 = os.path.join(self.dir, "cfgspool.db")
        cfg = self.write_config("[spool]\npath = %s\n" % spool2)
        env = dict(self.env, LOGSPONGE_CONFIG=cfg)
        self.run_ls("add", "via env config", spool=False, env=env)
        self.assertTrue(os.path.exists(spool2))
        # LOGSPONGE_SPOOL wins over the config's path, -s over both
        spool3 = os.path.join(self.dir, "envspool.db")
        env["LOGSPONGE_SPOOL"] = spool3
        self.run_ls("add", "x", spool=False, env=env)
        self.assertTrue(os.path.exists(spool3))
        # XDG config home, then the XDG state default
        os.makedirs(os.path.join(self.env["XDG_CONFIG_HOME"], "logsponge"))
        with open(os.path.join(self.env["XDG_CONFIG_HOME"], "logsponge",
                               "config"), "w") as f:
            f.write("[policy]\nthreshold = 7\n")
        p = self.run_ls("status", "--json", spool=False, check=False)
        self.assertOneLineError(p, 66, os.path.join(
            self.env["XDG_STATE_HOME"], "logsponge", "spool.db"))
        self.run_ls("add", "x", spool=False)
        st = json.loads(self.run_ls("status", "--json", spool=False).stdout)
        self.assertEqual(st["policy"]["threshold"]["need"], 7)

    def test_roots_default_spool_is_the_units_one(self):
        # cron's environment: HOME, no XDG_STATE_HOME
        env = dict(self.env)
        env.pop("XDG_STATE_HOME")
        p = self.run_ls("status", spool=False, env=env, check=False)
        out = (p.stdout + p.stderr).decode()
        if os.geteuid() == 0:
            self.assertIn("/var/lib/logsponge/spool.db", out)
        else:
            self.assertIn(os.path.join(self.dir, ".local", "state",
                                       "logsponge", "spool.db"), out)
        # a user who sets XDG_STATE_HOME keeps it, root too
        p = self.run_ls("status", spool=False, check=False)
        self.assertIn(os.path.join(self.env["XDG_STATE_HOME"], "logsponge",
                                   "spool.db"), p.stderr.decode())

    def test_relative_spool_path_in_config_is_an_error(self):
        cfg = self.write_config("[spool]\npath = spool.db\n")
        p = self.run_ls("-c", cfg, "add", "x", spool=False, check=False)
        self.assertPassedOn(p, 78, ["x"], cfg + ":2:", "absolute")


class FilesTest(SpoolTest):
    def test_modes_whatever_the_umask(self):
        env = dict(self.env)
        p = subprocess.run(["sh", "-c", 'umask 000; "$0" -s "$1" add hi; '
                            'ls -l "$(dirname "$1")" >/dev/null',
                            BIN, self.spool], env=env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.spool).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(
            self.spool)).st_mode), 0o700)
        # WAL and SHM, while a connection holds them open
        con = sqlite3.connect(self.spool)
        con.execute("SELECT count(*) FROM records").fetchone()
        for suffix in ("-wal", "-shm"):
            self.assertEqual(stat.S_IMODE(os.stat(self.spool + suffix)
                                          .st_mode), 0o600, suffix)
        con.close()

    def test_existing_directory_mode_left_alone(self):
        d = os.path.dirname(self.spool)
        os.makedirs(d)
        os.chmod(d, 0o755)
        self.run_ls("add", "x")
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o755)

    def test_planted_symlink_is_not_followed(self):
        os.makedirs(os.path.dirname(self.spool))
        target = os.path.join(self.dir, "elsewhere")
        os.symlink(target, self.spool)
        p = self.run_ls("add", "x", check=False)
        self.assertPassedOn(p, 73, ["x"])
        self.assertFalse(os.path.exists(target))


def roff_text(path):
    """The man page's text with the common font escapes removed."""
    t = open(path).read()
    t = re.sub(r"\\f[BIRP]", "", t)
    t = t.replace("\\-", "-").replace("\\|", "").replace("\\&", "")
    return re.sub(r"^\.[A-Z]+ ?", "", t, flags=re.M)


class HelpTest(SpoolTest):
    def test_version(self):
        p = self.run_ls("--version", spool=False)
        self.assertRegex(p.stdout.decode(), r"^logsponge \d+\.\d+\.\d+")

    def test_help_for_every_command_matches_man_synopsis(self):
        man = roff_text(os.path.join(ROOT, "man", "logsponge.1"))
        main = self.run_ls("--help", spool=False).stdout.decode()
        self.assertIn("usage: logsponge [-s SPOOL] [-c CONFIG] [-q|-v] "
                      "COMMAND [ARGS]", main)
        self.assertIn("logsponge [-s SPOOL] [-c CONFIG] [-q|-v] COMMAND",
                      " ".join(man.split()))
        for cmd in COMMANDS:
            self.assertIn(cmd, main)
            p = self.run_ls(cmd, "--help", spool=False)
            first = p.stdout.decode().splitlines()[0]
            prefix = "usage: logsponge [options] "
            self.assertTrue(first.startswith(prefix + cmd), first)
            synopsis = first[len(prefix):]
            self.assertIn(synopsis, " ".join(man.split()),
                          "man page SYNOPSIS lacks: " + synopsis)

    def test_man_pages_render_cleanly(self):
        for page in ("logsponge.1", "logsponge.conf.5", "logsponge.3"):
            p = subprocess.run(["man", "--warnings", "-l",
                                os.path.join(ROOT, "man", page)],
                               capture_output=True,
                               env=dict(self.env, MANWIDTH="80",
                                        LC_ALL="C.UTF-8", MANPAGER="cat",
                                        PAGER="cat"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, b"", page)
            self.assertGreater(len(p.stdout), 1000)


class LibraryTest(SpoolTest):
    def test_only_sponge_symbols_are_exported(self):
        so = os.path.join(BUILD, "liblogsponge.so")
        p = subprocess.run(["nm", "-D", "--defined-only", so],
                           capture_output=True, check=True)
        names = [l.split()[-1] for l in p.stdout.decode().splitlines()
                 if l.split() and l.split()[-2] in ("T", "D", "B", "R")]
        self.assertTrue(names)
        self.assertEqual([n for n in names if not n.startswith("sponge_")],
                         [])
        soname = subprocess.run(["objdump", "-p", so], capture_output=True,
                                check=True).stdout.decode()
        self.assertRegex(soname, r"SONAME\s+liblogsponge\.so\.\d+")


def man_examples():
    """The C programs in logsponge(3)'s EXAMPLE section."""
    text = open(os.path.join(ROOT, "man", "logsponge.3")).read()
    section = text.split(".SH EXAMPLE\n", 1)[1].split("\n.SH ", 1)[0]
    blocks = [b.split("\n.fi", 1)[0] for b in section.split(".nf\n")[1:]]
    return [b.replace("\\en", "\\n").replace("\\-", "-") for b in blocks]


class ManExampleTest(SpoolTest):
    def build(self, src, name):
        return build_program(self.dir, src, name)

    def test_threads_and_fork_example_loses_nothing(self):
        exe = self.build(man_examples()[1], "threads")
        env = dict(self.env, LOGSPONGE_SPOOL=self.spool)
        subprocess.run([exe], env=env, check=True, timeout=300)
        import sqlite3
        con = sqlite3.connect(self.spool)
        rows = con.execute("SELECT tag, level, message FROM records").fetchall()
        con.close()
        want = {("worker", 6, "thread %d line %d" % (t, i))
                for t in range(4) for i in range(1000)}
        want |= {("child", 5, "child line %d" % i) for i in range(1000)}
        self.assertEqual(len(rows), 5000)
        self.assertEqual(set(rows), want)

    def test_logsponge3_example_compiles_and_logs(self):
        exe = self.build(man_examples()[0], "ex")
        env = dict(self.env, LOGSPONGE_SPOOL=self.spool)
        subprocess.run([exe], env=env, check=True)
        r = self.records()
        self.assertEqual(len(r), 1)
        self.assertEqual((r[0]["level"], r[0]["tag"], r[0]["message"]),
                         ("err", "feeds", "fetch https://example.org/feed "
                          "failed: timeout"))


class InstallTest(SpoolTest):
    def test_install_then_build_against_pkg_config(self):
        dest = os.path.join(self.dir, "dest")
        build = os.path.relpath(BUILD, ROOT)
        subprocess.run(["make", "-s", "-C", ROOT, "install", "BUILD=" + build,
                        "PREFIX=/usr", "DESTDIR=" + dest],
                       check=True, capture_output=True)
        for f in ("usr/bin/logsponge", "usr/include/logsponge.h",
                  "usr/lib/liblogsponge.a", "usr/lib/liblogsponge.so.0",
                  "usr/lib/pkgconfig/logsponge.pc",
                  "usr/share/man/man1/logsponge.1",
                  "usr/share/man/man3/logsponge.3",
                  "usr/share/man/man5/logsponge.conf.5"):
            self.assertTrue(os.path.exists(os.path.join(dest, f)), f)
        pc = open(os.path.join(dest, "usr/lib/pkgconfig/logsponge.pc")).read()
        self.assertIn("Libs: -L${libdir} -llogsponge", pc)
        # a program linked with the installed shared library
        src = os.path.join(self.dir, "p.c")
        with open(src, "w") as f:
            f.write('#include <logsponge.h>\n#include <string.h>\n'
                    'int main(void){sponge*sp=0;'
                    'if(sponge_open(&sp,0,0,0))return 2;'
                    'int rc=sponge_append(sp,SPONGE_NOTICE,"so",0,"via .so",7);'
                    'return sponge_close(sp)||rc;}\n')
        exe = os.path.join(self.dir, "p")
        cflags = os.environ.get("LOGSPONGE_CFLAGS", "").split()
        subprocess.run(["cc"] + cflags + ["-I", dest + "/usr/include", src,
                        "-L", dest + "/usr/lib", "-llogsponge", "-o", exe],
                       check=True)
        env = dict(self.env, LOGSPONGE_SPOOL=self.spool,
                   LD_LIBRARY_PATH=dest + "/usr/lib")
        subprocess.run([exe], env=env, check=True)
        self.assertEqual(self.messages(), ["via .so"])
        ldd = subprocess.run(["ldd", exe], env=env, capture_output=True,
                             text=True).stdout
        self.assertIn(dest + "/usr/lib/liblogsponge.so.0", ldd)
