"""Helpers for the end-to-end tests: run the real logsponge binary."""
import json
import os
import sqlite3
import subprocess
import tempfile
import unittest

BIN = os.environ.get("LOGSPONGE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "logsponge")
BUILD = os.environ.get("LOGSPONGE_BUILD") or os.path.dirname(BIN)
# the same command with the test hooks (LOGSPONGE_TEST_CRASH), which the
# shipped one does not have
TEST_BIN = os.environ.get("LOGSPONGE_TEST_BIN") or BIN + "-test"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

MAX_RECORD = 64 * 1024

# `make valgrind` runs the same tests with less data (LOGSPONGE_TEST_SCALE)
SCALE = float(os.environ.get("LOGSPONGE_TEST_SCALE", "1"))


def build_program(directory, source, name):
    """Compile a C program that links liblogsponge.a (with the sanitizer
    flags of the build under test); returns its path."""
    c = os.path.join(directory, name + ".c")
    with open(c, "w") as f:
        f.write(source)
    exe = os.path.join(directory, name)
    libs = subprocess.run(["pkg-config", "--libs", "sqlite3", "jansson",
                           "inih", "libesmtp-1.0", "openssl", "zlib", "libhs"],
                          capture_output=True, text=True).stdout.split()
    cflags = os.environ.get("LOGSPONGE_CFLAGS", "").split()
    subprocess.run(["cc", "-std=c11", "-D_DEFAULT_SOURCE", "-Wall",
                    "-Werror", "-pthread"] + cflags +
                   ["-I", os.path.join(ROOT, "include"), c,
                    os.path.join(BUILD, "liblogsponge.a"), "-o", exe]
                   + libs, check=True)
    return exe


def foreign_env(env):
    """env for a program that is not ours but loads liblogsponge.so
    (Debian's python3 with ctypes): under the sanitizers the ASan runtime
    must come first, so it is preloaded, and the interpreter's own
    allocations at exit are not our leaks (ASan still checks every
    access the library makes).  The C++ runtime comes with it: Vectorscan
    (C++) throws inside its compiler, and ASan's interceptor of
    __cxa_throw finds the real one only if libstdc++ was there when ASan
    started."""
    e = dict(env)
    if "sanitize=" in os.environ.get("LOGSPONGE_CFLAGS", ""):
        def lib(name):
            return subprocess.run(["cc", "-print-file-name=" + name],
                                  capture_output=True,
                                  text=True).stdout.strip()
        e["LD_PRELOAD"] = lib("libasan.so") + ":" + lib("libstdc++.so.6")
        e["ASAN_OPTIONS"] = "detect_leaks=0"
    return e


def reformime_sections(path):
    """[(section, content type)] of a message as reformime (maildrop)
    sees it."""
    p = subprocess.run(["reformime", "-i"], stdin=open(path, "rb"),
                       capture_output=True, text=True, check=True)
    return [(sec.split("section: ")[1].split("\n")[0],
             sec.split("content-type: ")[1].split("\n")[0])
            for sec in p.stdout.split("\n\n") if "section:" in sec]


def munpack_log(test, path, out):
    """The .log.gz attachment of a message as munpack (mpack) extracts it
    into directory out (one, or the test fails)."""
    os.makedirs(out, exist_ok=True)
    p = subprocess.run(["munpack", "-q", "-C", out, path],
                       capture_output=True, text=True)
    test.assertEqual(p.returncode, 0, p.stderr)
    files = [f for f in os.listdir(out) if f.endswith(".log.gz")]
    test.assertEqual(len(files), 1, os.listdir(out))
    with open(os.path.join(out, files[0]), "rb") as f:
        return f.read()


def scaled(n, least=1):
    return max(least, int(n * SCALE))


def control_visible(text):
    """The cleaning rule of PRODUCT.md, written independently in Python."""
    out = []
    for ch in text:
        c = ord(ch)
        if c == 9:
            out.append(ch)
        elif c < 0x20:
            out.append(chr(0x2400 + c))
        elif c == 0x7F:
            out.append("\u2421")
        elif 0x80 <= c < 0xA0:
            out.append("<U+%04X>" % c)
        else:
            out.append(ch)
    return "".join(out)


def split_lines(data):
    """Lines end at LF, CRLF or a lone CR; a final partial line counts."""
    lines, cur, i, n = [], bytearray(), 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x0A or b == 0x0D:
            lines.append(bytes(cur))
            cur = bytearray()
            if b == 0x0D and i + 1 < n and data[i + 1] == 0x0A:
                i += 1
        else:
            cur.append(b)
        i += 1
    if cur:
        lines.append(bytes(cur))
    return lines


def expected_message(line):
    """What a short (un-cut) line becomes."""
    return control_visible(line.decode("utf-8", "replace"))


class SpoolTest(unittest.TestCase):
    """Each test gets a fresh directory and spool path, no config."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="lse2e.")
        self.dir = self.tmp.name
        self.spool = os.path.join(self.dir, "state", "spool.db")
        self.env = dict(os.environ)
        self.env.pop("LOGSPONGE_SPOOL", None)
        self.env["LOGSPONGE_CONFIG"] = ""
        self.env["HOME"] = self.dir
        self.env["XDG_CONFIG_HOME"] = os.path.join(self.dir, "config")
        self.env["XDG_STATE_HOME"] = os.path.join(self.dir, "xdgstate")

    def tearDown(self):
        self.tmp.cleanup()

    def run_ls(self, *args, input=None, spool=True, check=True, env=None,
               bin=None):
        argv = [bin or BIN] + (["-s", self.spool] if spool else []) + \
            list(args)
        p = subprocess.run(argv, input=input, capture_output=True,
                           env=env or self.env, timeout=600)
        if check and p.returncode != 0:
            self.fail("%s exited %d: %s" % (argv, p.returncode,
                                             p.stderr.decode(errors="replace")))
        return p

    def add(self, data, *args):
        return self.run_ls("add", *args, input=data)

    def config_file(self, text, name="logsponge.conf"):
        """Write a config file in the test's directory; its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def records(self, *args):
        p = self.run_ls("list", "--json", *args)
        return [json.loads(l) for l in p.stdout.decode().splitlines()]

    def messages(self, *args):
        return [r["message"] for r in self.records(*args)]

    def db_messages(self):
        """Read the spool directly (fast, for large counts)."""
        con = sqlite3.connect("file:%s?mode=ro" % self.spool, uri=True)
        try:
            return [r[0] for r in con.execute(
                "SELECT message FROM records ORDER BY id")]
        finally:
            con.close()

    def assertCountsMatch(self):
        """The counts kept as records come and go equal a real count."""
        con = sqlite3.connect("file:%s?mode=ro" % self.spool, uri=True)
        try:
            kept = dict(con.execute("SELECT k, n FROM counts"))
            real = dict(con.execute(
                "SELECT CASE WHEN sent IS NULL THEN level ELSE 8 END, "
                "count(*) FROM records GROUP BY 1"))
            # of the pending ones, those of kinds no message carried yet
            real.update(con.execute(
                "SELECT 17 + level, count(*) FROM records WHERE new_kind "
                "IS NOT NULL AND sent IS NULL AND level < 8 GROUP BY 1"))
        finally:
            con.close()
        self.assertEqual({k: n for k, n in kept.items() if n}, real)

    def assertPassedOn(self, p, code, lines, *needles):
        """add could not store: one error line saying why, then exactly
        the lines not stored, on stderr."""
        err = p.stderr.decode().split("\n")
        self.assertEqual(p.returncode, code, p.stderr)
        self.assertTrue(err[0].startswith("logsponge: "), err[0])
        self.assertIn("the lines not stored follow on standard error",
                      err[0])
        for n in needles:
            self.assertIn(n, err[0])
        self.assertEqual(err[1:], list(lines) + [""])

    def assertOneLineError(self, p, code, *needles):
        err = p.stderr.decode()
        self.assertEqual(p.returncode, code, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("logsponge: "), err)
        for n in needles:
            self.assertIn(n, err)


# A record's line in a digest's log: "03:12:07 err     db    ×3 message
# (last 03:12:09)" (past max_size the time has its date)
import re as _re
LOG_LINE = _re.compile(r"^(?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d "
                       r"(emerg|alert|crit|err|warning|notice|info|debug) +"
                       r"(\S+) (?: *)(?:\u00d7(\d+) )?(.*?)"
                       r"(?:  \(last [^)]*\))?$")


def digest_log(body):
    """The records a digest's log lists, as (level, tag, times, message
    first line) -- times 1 when not folded -- after the log's heading
    (the attention block and context above it are not the log)."""
    for head in ("\nLog, oldest first", "\nThe most severe records first"):
        if head in body:
            body = body.split(head, 1)[1]
            break
    else:
        raise AssertionError("no log in the digest")
    out = []
    for line in body.splitlines():
        m = LOG_LINE.match(line)
        if m:
            out.append((m.group(1), m.group(2), int(m.group(3) or 1),
                        m.group(4)))
    return out
