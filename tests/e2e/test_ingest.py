"""Every line in = one record out, whatever the bytes."""
import os
import random
import subprocess

from common import (BIN, MAX_RECORD, SpoolTest, expected_message, scaled,
                    split_lines)


class IngestTest(SpoolTest):
    def check_roundtrip(self, data, *args):
        # one record per line: the line contract, without joining
        # continuation lines (test_join.py tests that)
        self.add(data, "--join", "none", *args)
        want = [expected_message(l) for l in split_lines(data)]
        got = self.messages()
        self.assertEqual(len(got), len(want))
        self.assertEqual(got, want)
        return got

    def test_valid_utf8_is_byte_exact(self):
        lines = ["plain", "tab\there", "caf\u00e9 \u20ac \U0001F419",
                 "  leading and trailing spaces  ", "", ".", "..",
                 "From: not a header", "--boundary--", "\u05e9\u05dc\u05d5\u05dd",
                 "x" * 5000]
        data = "".join(l + "\n" for l in lines).encode()
        got = self.check_roundtrip(data)
        self.assertEqual(got, lines)  # unchanged, byte for byte

    def test_invalid_utf8_and_controls(self):
        data = (b"bad \xff\xfe end\n"
                b"overlong \xc0\xaf\n"
                b"surrogate \xed\xa0\x80\n"
                b"truncated \xe2\x82\n"
                b"nul \x00 bel \x07 esc \x1b[31m del \x7f\n"
                b"c1 \xc2\x85 \xc2\x9b\n")
        got = self.check_roundtrip(data)
        self.assertEqual(got[0], "bad \ufffd\ufffd end")
        self.assertEqual(got[4], "nul \u2400 bel \u2407 esc \u241b[31m del \u2421")
        self.assertEqual(got[5], "c1 <U+0085> <U+009B>")

    def test_nul_bytes_are_visible_not_dropped(self):
        got = self.check_roundtrip(b"\x00\x00a\x00\n\x00\n")
        self.assertEqual(got, ["\u2400\u2400a\u2400", "\u2400"])

    def test_line_endings(self):
        # CRLF stripped, CR-only lines, a CRLF split across reads does not
        # make an empty record, final line without newline kept
        got = self.check_roundtrip(b"a\r\nb\rc\rd\n\ne\r\n\r\nlast")
        self.assertEqual(got, ["a", "b", "c", "d", "", "e", "", "last"])

    def test_empty_stdin(self):
        self.add(b"")
        self.assertEqual(self.messages(), [])
        st = self.run_ls("status", "--json").stdout
        self.assertIn(b'"pending":0', st)

    def test_ten_megabyte_line_is_cut_with_marker(self):
        big = b"x" * (10 * 1024 * 1024)
        self.add(b"before\n" + big + b"\nafter\n")
        got = self.messages()
        self.assertEqual(len(got), 3)
        self.assertEqual(got[0], "before")
        self.assertEqual(got[2], "after")
        cut = len(big) - MAX_RECORD
        self.assertEqual(got[1], "x" * MAX_RECORD +
                         " [logsponge: cut %d bytes]" % cut)

    def test_long_multibyte_line_cut_on_character_boundary(self):
        line = ("\u20ac" * 30000).encode()  # 90000 bytes, 3 per char
        self.add(line + b"\n")
        msg = self.messages()[0]
        kept = MAX_RECORD // 3
        self.assertEqual(msg, "\u20ac" * kept + " [logsponge: cut %d bytes]"
                         % (len(line) - kept * 3))

    def test_urandom(self):
        data = os.urandom(scaled(2 * 1024 * 1024, 65536))
        p = self.add(data, "--join", "none")
        self.assertEqual(p.returncode, 0)
        want = split_lines(data)
        got = self.db_messages()
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            exp = expected_message(w)
            if len(exp.encode()) <= MAX_RECORD:
                self.assertEqual(g, exp)
            else:
                self.assertIn("[logsponge: cut ", g)
            g.encode("utf-8")  # valid UTF-8 (would raise otherwise)

    def test_each_argument_is_a_record(self):
        self.run_ls("add", "-l", "err", "-t", "cron", "disk full on /",
                    "second", "two\nlines")
        recs = self.records()
        self.assertEqual([r["message"] for r in recs],
                         ["disk full on /", "second", "two", "lines"])
        self.assertEqual({r["level"] for r in recs}, {"err"})
        self.assertEqual({r["tag"] for r in recs}, {"cron"})

    def test_default_level_and_no_tag(self):
        self.add(b"x\n")
        r = self.records()[0]
        self.assertEqual(r["level"], "info")
        self.assertIsNone(r["tag"])
        self.assertTrue(r["host"])
        self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        text = self.run_ls("list").stdout.decode()
        self.assertIn(" info    -: x", text)

    def test_detect_level(self):
        lines = [
            (b"<3>sd-daemon error", "err", "sd-daemon error"),
            (b"ERROR: failed", "err", "ERROR: failed"),
            (b"[warn] disk", "warning", "[warn] disk"),
            (b"E glog style", "err", "E glog style"),
            (b"ts=1 level=debug msg=x", "debug", "ts=1 level=debug msg=x"),
            (b'{"level":"crit","msg":"x"}', "crit", '{"level":"crit","msg":"x"}'),
            (b"2026-11-21 10:00:00 FATAL boom", "crit",
             "2026-11-21 10:00:00 FATAL boom"),
            (b"nothing here", "notice", "nothing here"),
        ]
        self.add(b"".join(l + b"\n" for l, _, _ in lines), "--detect-level",
                 "-l", "notice")
        recs = self.records()
        self.assertEqual([(r["level"], r["message"]) for r in recs],
                         [(lv, m) for _, lv, m in lines])

    def test_without_detect_level_words_are_ignored(self):
        self.add(b"ERROR: x\n", "-l", "debug")
        self.assertEqual(self.records()[0]["level"], "debug")

    def test_tee_copies_stdin_unchanged(self):
        data = os.urandom(300000) + b"\r\nend"
        p = self.add(data, "--tee", "--join", "none")
        self.assertEqual(p.stdout, data)
        self.assertEqual(len(self.db_messages()), len(split_lines(data)))

    def test_tee_to_closed_reader_still_records(self):
        n = scaled(200000, 5000)
        data = b"".join(b"line %d\n" % i for i in range(n))
        r, w = os.pipe()
        os.close(r)  # the downstream reader is gone
        p = subprocess.run([BIN, "-s", self.spool, "add", "--tee"],
                           input=data, stdout=w, stderr=subprocess.PIPE,
                           env=self.env, timeout=120)
        os.close(w)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.db_messages()), n)

    def test_slow_writer_records_are_committed_promptly(self):
        # A record must be in the spool while the writer is still open:
        # the batch is committed when input pauses, not only at EOF.
        p = subprocess.Popen([BIN, "-s", self.spool, "add"],
                             stdin=subprocess.PIPE, env=self.env)
        try:
            p.stdin.write(b"first\n")
            p.stdin.flush()
            import time
            deadline = time.time() + 10
            got = []
            while time.time() < deadline:
                time.sleep(0.05)
                if os.path.exists(self.spool):
                    try:
                        got = self.db_messages()
                    except Exception:
                        got = []
                    if got:
                        break
            self.assertEqual(got, ["first"])
        finally:
            p.stdin.close()
            p.wait(timeout=10)
        self.assertEqual(p.returncode, 0)

    def test_random_mixture_property(self):
        rnd = random.Random(1234)
        pieces = [b"a", b"\xc3\xa9", b"\xff", b"\x00", b"\r", b"\n", b"\r\n",
                  b"\t", b"\xe2\x82", b"\xf0\x9f\x90\x99", b" ", b"\x1b"]
        data = b"".join(rnd.choice(pieces) for _ in range(50000))
        self.check_roundtrip(data)
