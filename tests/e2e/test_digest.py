"""The digest: summary first, repeats folded, compared with a golden file
after the times are replaced (they change with every run)."""
import email
import email.policy
import os
import re
import json
import socket
import unittest

from common import (ROOT, SpoolTest, digest_log, munpack_log,
                    reformime_sections, scaled)

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def timeless(text):
    """text with its dates, times and day names as <date>, <time>, <day>
    (a golden file holds no clock)."""
    text = TIME.sub("<time>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d", "<date>", text)
    text = re.sub(r"\d\d:\d\d:\d\d", "<time>", text)
    return re.sub(r"(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day", "<day>",
                  text)


def message_id_domain(sender_domain="b.c"):
    """What the Message-ID's domain should be: this host's fully
    qualified name (its canonical name, when that has a dot), else the
    sender's domain."""
    import socket
    try:
        canon = socket.getaddrinfo(socket.gethostname(), None,
                                   flags=socket.AI_CANONNAME)[0][3]
    except OSError:
        canon = ""
    if "." in canon and not canon.startswith("localhost"):
        return canon
    return sender_domain


class DigestTest(SpoolTest):
    def config(self, fold=None):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = stdout\n"
                    + ("fold = %s\n" % fold if fold else ""))
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.env["TZ"] = "UTC"  # the golden files' zone

    def body(self):
        p = self.run_ls("flush", "--dry-run")
        msg = email.message_from_bytes(p.stdout, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        return msg, msg.get_content().replace("\r\n", "\n")

    def seed(self):
        """Nine records at fixed times (the golden files show them)."""
        import socket
        here = socket.gethostname()
        rows = [(3, "db", "00.120", "connection refused"),
                (3, "db", "00.513", "retrying in 5s"),
                (3, "db", "00.800", "connection refused"),
                (3, "db", "01.002", "connection refused"),
                (6, "api", "01.500", "took 12ms"),
                (6, "api", "01.700", "took 15ms"),
                (6, "api", "02.100", "took 8ms"),
                (4, "db", "02.250", "connection refused"),
                (3, "db", "04.872", "retrying in 5s")]
        self.add("".join("<%d>1 2026-11-21T10:00:%sZ %s %s - - - %s\n"
                         % (8 + lv, t, here, tag, m)
                         for lv, tag, t, m in rows).encode(),
                 "--format", "rfc5424")

    def records(self, body):
        return digest_log(body)

    def test_exact_folding(self):
        self.config("exact")
        self.seed()
        msg, body = self.body()
        self.assertEqual(self.records(body), [
            ("err", "db", 3, "connection refused"),
            ("err", "db", 2, "retrying in 5s"),
            ("info", "api", 1, "took 12ms"),
            ("info", "api", 1, "took 15ms"),
            ("info", "api", 1, "took 8ms"),
            ("warning", "db", 1, "connection refused"),
        ])
        self.assertIn("9 records", msg["Subject"])

    def test_masked_folding(self):
        self.config("masked")
        self.seed()
        _, body = self.body()
        self.assertIn(("info", "api", 3, "took 12ms"), self.records(body))
        self.assertIn(("err", "db", 2, "retrying in 5s"), self.records(body))

    def test_no_folding(self):
        self.config("off")
        self.seed()
        _, body = self.body()
        self.assertEqual(len(self.records(body)), 9)

    def test_golden_message(self):
        self.config()
        self.seed()
        msg, body = self.body()
        host = msg["X-Logsponge-Host"]
        got = body.replace(host, "<host>")
        got = re.sub(r"\(\d+[smhd]( \d+[smhd])?\)", "(<span>)", got)
        path = os.path.join(ROOT, "tests", "golden", "digest.txt")
        if os.environ.get("LOGSPONGE_UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(got, f.read())
        # a first message: every kind is new
        self.assertEqual(msg["Subject"].replace(host, "<host>"),
                         "NEW: [logsponge] <host>: 9 records, highest err: "
                         "connection refused")


class IntervalTest(SpoolTest):
    def config(self, policy):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[policy]\n%s\n[mail]\nfrom = a@b.c\nto = d@e.f\n"
                    "transport = stdout\n" % policy)
        self.env["LOGSPONGE_CONFIG"] = cfg

    def flush(self, *args):
        p = self.run_ls("-v", "flush", *args)
        msg = (email.message_from_bytes(p.stdout, policy=email.policy.default)
               if p.stdout else None)
        return msg, p.stderr.decode()

    def backdate_history(self, seconds):
        import sqlite3
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE history SET time = time - ?", (seconds * 10**6,))
        con.execute("UPDATE meta SET value = value - ? WHERE key = "
                    "'watch_since'", (seconds * 10**6,))
        con.commit()
        con.close()

    def test_no_message_yet_no_min_interval(self):
        # a first flush below the threshold starts the heartbeat's watch;
        # it is not a message, so min_interval holds nothing back
        self.config("threshold = 2\nmin_interval = 15m")
        self.add(b"first\n")
        msg, err = self.flush()
        self.assertIsNone(msg)
        self.add(b"second\n")
        msg, err = self.flush()
        self.assertIsNotNone(msg, err)
        body = msg.get_content()
        self.assertNotIn("min_interval", body)
        self.assertIn("second", body)

    def test_a_dry_run_that_sends_nothing_says_why(self):
        self.config("threshold = 2")
        self.add(b"first\n")
        p = self.run_ls("flush", "--dry-run")
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"not sending: 1 of 2 records at debug or above",
                      p.stderr)
        p = self.run_ls("-q", "flush", "--dry-run")
        self.assertEqual((p.stdout, p.stderr), (b"", b""))

    def test_min_interval_holds_records_back_never_drops_them(self):
        self.config("min_interval = 1h\nexpire = 1s")
        self.add(b"first\n")
        msg, err = self.flush()
        self.assertIsNotNone(msg)
        self.add(b"second\nthird\n")
        import time
        time.sleep(1.2)  # older than expire: still must not be dropped
        msg, err = self.flush()
        self.assertIsNone(msg)
        self.assertIn("not sending: min_interval: the last message went", err)
        self.assertIn("(2 records wait)", err)
        self.assertEqual(len(self.records()), 2)
        self.backdate_history(3700)
        msg, err = self.flush()
        body = msg.get_content()
        self.assertIn("Waited: the oldest record for", body)
        self.assertIn("second", body)
        self.assertEqual(self.records(), [])
        # --force goes through the interval
        self.add(b"urgent\n")
        msg, _ = self.flush("--force")
        self.assertIn("urgent", msg.get_content())

    def test_heartbeat(self):
        self.config("threshold = 10\nheartbeat = 1h")
        self.add(b"below threshold\n")
        msg, err = self.flush()  # starts watching
        self.assertIsNone(msg)
        self.backdate_history(3700)
        msg, err = self.flush()
        self.assertIsNotNone(msg, err)
        self.assertIn("nothing to report since", msg["Subject"])
        # the whole timestamp, to the second (it was cut at "…00.")
        import re
        self.assertRegex(msg["Subject"], r"since \d{4}-\d\d-\d\dT"
                         r"\d\d:\d\d:\d\dZ$")
        # the Message-ID's domain is a digest's, not localhost
        self.assertTrue(msg["Message-ID"].endswith("@%s>" % message_id_domain()),
                        msg["Message-ID"])
        self.assertIn("1 record below the policy's triggers", msg.get_content())
        self.assertEqual(len(self.records()), 1)  # the record stays
        msg, err = self.flush()  # just sent one: no second heartbeat
        self.assertIsNone(msg)

    def test_heartbeat_follows_the_subject_template(self):
        self.config("threshold = 10\nheartbeat = 1h")
        with open(self.env["LOGSPONGE_CONFIG"], "a") as f:
            f.write("subject = [web1 logs] {first}\n")
        self.add(b"below threshold\n")
        self.flush()  # starts watching
        self.backdate_history(3700)
        msg, err = self.flush()
        self.assertIsNotNone(msg, err)
        self.assertTrue(msg["Subject"].startswith(
            "[web1 logs] nothing to report since "), msg["Subject"])

    def test_heartbeat_with_html_is_valid_mime(self):
        self.config("threshold = 10\nheartbeat = 1h")
        with open(self.env["LOGSPONGE_CONFIG"], "a") as f:
            f.write("html = yes\n")
        self.run_ls("add", input=b"")  # an empty spool
        self.flush()  # starts watching
        self.backdate_history(3700)
        msg, err = self.flush()
        self.assertIsNotNone(msg, err)
        self.assertEqual(msg.defects, [])
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        text, html = list(msg.iter_parts())
        self.assertIn("nothing to report since", text.get_content())
        self.assertIn("<p>logsponge on ", html.get_content().replace(
            "<div>logsponge on ", "<p>logsponge on "))
        self.assertIn("nothing to report since", html.get_content())
        h = self.run_ls("history", "--json").stdout.decode().splitlines()
        self.assertEqual(len(h), 1)


# peak RSS is a property of the normal build: ASan's shadow memory and
# quarantine multiply it, and valgrind (make valgrind) is its own process
SANITIZED = ("sanitize" in os.environ.get("LOGSPONGE_CFLAGS", "") or
             os.environ.get("LOGSPONGE_TEST_SCALE", "1") != "1")


class SizeCapTest(SpoolTest):
    """mail.max_size: the body keeps the most severe records, the complete
    log of the batch goes along gzip-compressed, and a batch too big even
    compressed shrinks: the rest waits for the next message."""

    def config(self, extra=""):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = stdout\n"
                    + extra)
        self.env["LOGSPONGE_CONFIG"] = cfg

    def flush_timed(self):
        """One flush; the message, and the flush's peak RSS in KiB."""
        import subprocess
        from common import BIN
        rss = os.path.join(self.dir, "rss")
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, BIN,
                            "-s", self.spool, "flush"], env=self.env,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(rss) as f:
            return p.stdout, int(f.read().split()[-1])

    def logged(self, raw):
        """(records in the body, records in the attachment) of a message."""
        import gzip
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        if msg.get_content_type() == "text/plain":
            body = msg.get_content().replace("\r\n", "\n")
            return [r[3] for r in digest_log(body)], None
        text, gz = list(msg.iter_parts())
        self.assertEqual(text.get_content_type(), "text/plain")
        self.assertEqual(gz.get_content_type(), "application/gzip")
        self.assertTrue(gz.get_filename().endswith(".log.gz"))
        body = text.get_content().replace("\r\n", "\n")
        shown = [r[3] for r in digest_log(body)]
        log = gzip.decompress(gz.get_content()).decode().splitlines()
        return shown, [l.split(": ", 1)[1] for l in log]

    def test_200000_short_records_one_message_under_the_cap(self):
        n = scaled(200000, 20000)
        self.config()
        self.add(b"".join(b"job %d ok\n" % i for i in range(n)))
        raw, rss = self.flush_timed()
        self.assertLessEqual(len(raw), 1 << 20)
        shown, log = self.logged(raw)
        self.assertIsNotNone(log)
        self.assertEqual(log, ["job %d ok" % i for i in range(n)])
        self.assertGreater(len(shown), 1000)
        self.assertEqual(self.records(), [])
        if not SANITIZED:
            self.assertLessEqual(rss, 16 * 1024)

    def test_1000000_records_drain_in_capped_messages(self):
        n = scaled(1000000, 20000)
        self.config("max_size = 1M\nfold = off\n")
        import random
        rnd = random.Random(7)
        words = ["GET", "POST", "timeout", "retry", "ok", "cache", "miss"]
        want = ["r%07d %s /api/v1/items/%d took %dms from 10.0.%d.%d" % (
            i, rnd.choice(words), rnd.randint(1, 99999), rnd.randint(1, 999),
            rnd.randint(0, 255), rnd.randint(0, 255)) for i in range(n)]
        levels = [b"ERROR", b"WARN", b"INFO", b"DEBUG"]
        self.add(b"".join(b"%s %s\n" % (levels[i % 4], w.encode())
                          for i, w in enumerate(want)), "--detect-level")
        seen, messages, peak = {}, 0, 0
        while True:
            raw, rss = self.flush_timed()
            if not raw:
                break
            messages += 1
            peak = max(peak, rss)
            self.assertLessEqual(len(raw), 1 << 20)
            shown, log = self.logged(raw)
            for line in (log if log is not None else shown):
                m = line.split(" ", 1)[1] if line.split(" ", 1)[0] in (
                    "ERROR", "WARN", "INFO", "DEBUG") else line
                seen[m] = seen.get(m, 0) + 1
            self.assertLess(messages, 200)
        self.assertEqual(len(seen), n)                       # none lost
        self.assertEqual([m for m, k in seen.items() if k != 1], [])
        self.assertEqual(set(seen), set(want))
        self.assertEqual(self.records(), [])                  # drained
        if not SANITIZED:
            self.assertLessEqual(peak, 16 * 1024)
        print("\nsize cap: %d records in %d messages of at most 1 MiB, "
              "peak RSS %.1f MiB" % (n, messages, peak / 1024), end=" ")


class HeadersTest(DigestTest):
    """Header lines as readers and filters need them (issue 12)."""

    def message(self, subject=None, lines=b"disk full\n", env=None):
        if not self.env.get("LOGSPONGE_CONFIG"):
            self.config()
        if subject:
            with open(self.env["LOGSPONGE_CONFIG"], "a") as f:
                f.write("subject = %s\n" % subject)
        self.add(lines, "-l", "err")
        import subprocess
        from common import BIN
        p = subprocess.run([BIN, "-s", self.spool, "flush"],
                           env=env or self.env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        head = raw.split(b"\r\n\r\n", 1)[0]
        msg = email.message_from_bytes(raw, policy=email.policy.strict)
        return head, msg

    def assertFolded(self, head):
        for line in head.split(b"\r\n"):
            # (the host is one 63-character word: no fold can shorten
            # that line without changing the value for some readers)
            if not line.startswith(b"X-Logsponge-Host:"):
                self.assertLessEqual(len(line), 78, line)

    def test_filters_and_autoresponders(self):
        import socket
        head, msg = self.message()
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        self.assertEqual(msg["X-Auto-Response-Suppress"], "OOF, AutoReply")
        self.assertEqual(msg["X-Logsponge-Host"], socket.gethostname())
        self.assertEqual(msg["X-Logsponge-Level"], "err")
        self.assertTrue(msg["Message-ID"].endswith(
            "@%s>" % message_id_domain()), msg["Message-ID"])

    def test_long_ascii_subject_is_folded_not_encoded(self):
        """Encoded, "[logsponge]" no longer matched procmail rules."""
        subj = ("[logsponge] {host}: {count} {records}, highest {level}, "
                "and a long tail of words to pass seventy-eight octets")
        head, msg = self.message(subj)
        self.assertNotIn(b"=?", head)
        self.assertIn(b"Subject: [logsponge] ", head)
        self.assertFolded(head)
        self.assertTrue(msg["Subject"].endswith("seventy-eight octets"))

    def test_non_ascii_subject_decodes_exactly(self):
        text = ("\u00e9chec de la sauvegarde \u65e5\u672c \u20ac" * 3 +
                " \U0001F419 fin")
        head, msg = self.message("[logsponge] {first}",
                                 (text + "\n").encode())
        self.assertIn(b"Subject: [logsponge] =?UTF-8?", head)
        self.assertFolded(head)
        first = text[:60].rstrip() if len(text) > 60 else text
        self.assertTrue(msg["Subject"].startswith("[logsponge] " +
                                                  first[:40]),
                        msg["Subject"])
        # no encoded word ends in base64 padding but the last
        words = re.findall(rb"=\?UTF-8\?B\?([^?]*)\?=", head)
        for w in words[:-1]:
            self.assertNotIn(b"=", w, head)

    def test_display_names_reach_readers_as_written(self):
        """Display names were written raw: "Doe, Jane" made two
        mailboxes, ":" a group, non-ASCII went out as 8-bit, and the
        correctly quoted form was refused."""
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write('[mail]\nfrom = "Doe, Jane" <jane@b.c>\n'
                    'to = J\u00f6rg M\u00fcller <j@d.e>, "ops: on call" '
                    '<ops@e.f>, plain@g.h\nto = Log Sponge <ls@i.j>\n'
                    'transport = stdout\n')
        self.env["LOGSPONGE_CONFIG"] = cfg
        head, msg = self.message()
        self.assertTrue(all(b < 128 for b in head), head)
        frm = msg["From"].addresses
        self.assertEqual([(a.display_name, a.addr_spec) for a in frm],
                         [("Doe, Jane", "jane@b.c")])
        to = msg["To"].addresses
        self.assertEqual([(a.display_name, a.addr_spec) for a in to],
                         [("J\u00f6rg M\u00fcller", "j@d.e"),
                          ("ops: on call", "ops@e.f"), ("", "plain@g.h"),
                          ("Log Sponge", "ls@i.j")])
        self.assertFolded(head)

    @unittest.skipUnless(os.geteuid() == 0, "unshare --uts needs root")
    def test_a_64_character_host_name(self):
        """The Message-ID was 122 octets with a 64-character host name;
        it takes the sender's domain when the host has no FQDN."""
        import subprocess
        from common import BIN
        long_host = "h" * 63
        self.config()
        self.add(b"disk full\n", "-l", "err")
        p = subprocess.run(["unshare", "--uts", "sh", "-c",
                            'hostname "$0" && exec "$@"', long_host, BIN,
                            "-s", self.spool, "flush"],
                           env=self.env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        raw = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        head = raw.split(b"\r\n\r\n", 1)[0]
        msg = email.message_from_bytes(raw, policy=email.policy.strict)
        self.assertTrue(msg["Message-ID"].endswith("@b.c>"), head)
        self.assertEqual(msg["X-Logsponge-Host"], long_host)
        for line in head.split(b"\r\n"):
            # (the host is one 63-character word: no fold can shorten
            # that line without changing the value for some readers)
            if not line.startswith(b"X-Logsponge-Host:"):
                self.assertLessEqual(len(line), 78, line)


class IndependentParsersTest(SpoolTest):
    """The capped message with an HTML alternative as other MIME parsers
    see it (reformime from maildrop, munpack from mpack): the inner
    boundary once began with the outer one, and reformime saw a phantom
    part."""
    config = SizeCapTest.config
    flush_timed = SizeCapTest.flush_timed

    def capped_html(self):
        self.config("max_size = 256k\nhtml = yes\n")
        self.add(b"".join(b"entry %06d %x with enough text to matter\n"
                          % (i, i * 2654435761) for i in range(30000)))
        raw, _ = self.flush_timed()
        path = os.path.join(self.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(raw)
        return raw, path

    def test_reformime_sees_the_parts_that_are_there(self):
        raw, path = self.capped_html()
        self.assertEqual(reformime_sections(path), [("1", "multipart/mixed"),
                                 ("1.1", "multipart/alternative"),
                                 ("1.1.1", "text/plain"),
                                 ("1.1.2", "text/html"),
                                 ("1.2", "application/gzip")])

    def test_munpack_extracts_the_attachment(self):
        import gzip
        raw, path = self.capped_html()
        log = gzip.decompress(munpack_log(
            self, path, os.path.join(self.dir, "out"))).splitlines()
        self.assertEqual(len(log) + len(self.records()), 30000)

    def test_header_lines_fit_78_octets(self):
        raw, _ = self.capped_html()
        head = raw.split(b"\r\n\r\n", 1)[0]
        parts = raw.split(b"\r\n--")
        for block in [head] + [p.split(b"\r\n\r\n", 1)[0] for p in parts[1:]]:
            for line in block.split(b"\r\n"):
                if line.startswith((b"Message-ID:", b"Subject:")):
                    continue  # (issue 12: folded and shortened next)
                self.assertLessEqual(len(line), 78, line)


class CappedBodyTest(SpoolTest):
    """A message past mail.max_size (issue 12): repeats folded there too
    (500 identical warnings were listed 500 times), and the text and HTML
    parts list the same records (they listed 346 and 172)."""
    config = SizeCapTest.config
    flush_timed = SizeCapTest.flush_timed

    def test_repeats_fold_and_both_parts_agree(self):
        import html as htmlmod
        self.config("max_size = 256k\nhtml = yes\n")
        self.add(b"".join(b"info %06d %x with enough text to matter\n"
                          % (i, i * 2654435761) for i in range(8000)))
        self.add(b"disk almost full on /srv\n" * 500, "-l", "warning")
        raw, _ = self.flush_timed()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        alt = next(p for p in msg.iter_parts()
                   if p.get_content_type() == "multipart/alternative")
        text, page = [p.get_content() for p in alt.iter_parts()]
        lines = digest_log(text.replace("\r\n", "\n"))
        warn = [l for l in lines if "disk almost full" in l[3]]
        self.assertEqual(len(warn), 1, warn[:3])
        self.assertEqual(warn[0][2], 500)
        # the most severe first: the warning heads the list
        self.assertEqual(lines[0], warn[0])
        rows = re.findall(r"<tr><td>.*?</tr>", page)
        self.assertEqual(len(rows), len(lines))
        self.assertIn("<b>\u00d7500</b> disk almost full",
                      [r for r in rows if "disk almost full" in r][0])
        # the same records, in the same order
        cells = [htmlmod.unescape(re.sub(
            r"^<b>\u00d7\d+</b> | \(last [^)]*\)$", "",
            re.findall(r'<td class="m">(.*?)</td>', r)[0])) for r in rows]
        self.assertEqual([l[3] for l in lines], cells)
        more = re.search(r"\.\.\. and (\d+) more records?", text)
        self.assertIsNotNone(more)
        self.assertIn("... and %s more record" % more.group(1), page)
        self.assertLessEqual(len(raw), 256 << 10)
        self.assertNotIn("did not fit even compressed", text)

    def test_repeats_fold_after_many_other_records(self):
        """60,000 different info lines, then 500 identical warnings, past
        max_size: the fold table had filled with the infos before the
        warnings came, and the body that lists the most severe first
        showed the warning 500 times."""
        self.config("max_size = 1M\n")
        self.add(b"".join(b"info %06d %x\n" % (i, i * 2654435761)
                          for i in range(60000)))
        self.add(b"disk almost full on /srv\n" * 500, "-l", "warning")
        raw, _ = self.flush_timed()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertTrue(any(p.get_content_type() == "application/gzip"
                            for p in msg.walk()))
        text = next(p for p in msg.walk()
                    if p.get_content_type() == "text/plain").get_content()
        self.assertIn("The most severe records first", text)
        lines = digest_log(text.replace("\r\n", "\n"))
        warn = [l for l in lines if "disk almost full" in l[3]]
        self.assertEqual(len(warn), 1, warn[:3])
        self.assertEqual(warn[0][2], 500)


CHROMIUM = "/usr/bin/chromium"


@unittest.skipUnless(os.path.exists(CHROMIUM), "chromium (make deps)")
class HtmlRenderTest(SpoolTest):
    """The HTML part in Debian's Chromium, headless, at 1200 and 400 px:
    one long token made the table 313,519 px wide; the page must fit the
    window.  Screenshots are kept in build/artefacts/ to look at."""
    config = DigestTest.config

    def render(self, page, width, name):
        import subprocess
        from common import BUILD
        probe = page.replace("</body>", "<script>var d = document."
                             "documentElement; document.body.setAttribute("
                             "'data-sw', d.scrollWidth + ' ' + d.clientWidth)"
                             "</script></body>")
        path = os.path.join(self.dir, name + ".html")
        with open(path, "w") as f:
            f.write(probe)
        flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars",
                 "--user-data-dir=" + os.path.join(self.dir, "chrome"),
                 "--window-size=%d,900" % width, "--virtual-time-budget=2000"]
        dom = subprocess.run(flags + ["--dump-dom", "file://" + path],
                             capture_output=True, text=True, timeout=120)
        art = os.path.join(BUILD, "artefacts")
        os.makedirs(art, exist_ok=True)
        shot = os.path.join(art, "digest-%s-%d.png" % (name, width))
        subprocess.run(flags + ["--screenshot=" + shot, "file://" + path],
                       capture_output=True, timeout=120)
        m = re.search(r'data-sw="(\d+) (\d+)"', dom.stdout)
        self.assertIsNotNone(m, dom.stderr[-2000:])
        return int(m.group(1)), int(m.group(2))

    def test_fits_the_window_at_1200_and_400_px(self):
        self.config()
        with open(self.env["LOGSPONGE_CONFIG"], "a") as f:
            f.write("html = yes\n")
        self.add(b"backup of /srv/data failed: " + b"x" * 20000 + b"\n",
                 "-l", "err", "-t", "backup")
        self.add(b"a long line with spaces " * 80 + b"\n", "-t", "cron")
        self.add(b"https://example.org/" + b"a/b?c=d&" * 400 + b"\n",
                 "-l", "warning", "-t", "web")
        p = self.run_ls("flush", "--dry-run")
        msg = email.message_from_bytes(p.stdout, policy=email.policy.default)
        page = [part for part in msg.walk()
                if part.get_content_type() == "text/html"][0].get_content()
        self.assertIn('name="viewport"', page)
        self.assertIn("background:#ffffff", page)
        for width in (1200, 400):
            # (headless Chromium's window is at least 500 px wide: the
            # page must fit the window it got)
            sw, cw = self.render(page, width, "long-tokens")
            self.assertLessEqual(cw, max(width, 500))
            self.assertLessEqual(sw, cw, "page %d px wide in a %d px "
                                 "window" % (sw, cw))


class HtmlTest(DigestTest):
    def test_html_alternative_same_content_escaped(self):
        self.config()
        with open(self.env["LOGSPONGE_CONFIG"], "a") as f:
            f.write("html = yes\n")
        self.seed()
        self.add(b'<script>alert("x")</script> & \'quotes\'\n', "-t",
                 "<b>tag</b>", "-l", "crit")
        p = self.run_ls("flush", "--dry-run")
        msg = email.message_from_bytes(p.stdout, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        text, html = list(msg.iter_parts())
        self.assertEqual(text.get_content_type(), "text/plain")  # first
        self.assertEqual(html.get_content_type(), "text/html")
        h = html.get_content()
        self.assertNotIn("<script>", h)
        self.assertNotIn("<b>tag", h)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
                      "&amp; &#39;quotes&#39;", h)
        self.assertIn("&lt;b&gt;tag&lt;/b&gt;", h)
        self.assertEqual(h.count("<tr><td>"), 7)  # 6 folded rows + 1
        self.assertIn("<b>\u00d73</b> connection refused (last ", h)
        self.assertIn("background:#b00020;color:#ffffff;padding:0 4px;"
                      "border-radius:3px;font-weight:bold\">crit</span>", h)
        # the same records as the text part
        body = text.get_content().replace("\r\n", "\n")
        self.assertIn(("err", "db", 3, "connection refused"),
                      digest_log(body))
        got = timeless(h.replace("\r\n", "\n"))
        got = re.sub(r"\(\d+[smhd]( \d+[smhd])?\)", "(<span>)", got)
        host = msg["X-Logsponge-Host"]
        got = got.replace(host, "<host>")
        path = os.path.join(ROOT, "tests", "golden", "digest.html")
        if os.environ.get("LOGSPONGE_UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(got, f.read())

    def test_html_with_attachment_stays_under_the_cap(self):
        import gzip
        self.config("masked")
        with open(self.env["LOGSPONGE_CONFIG"], "a") as f:
            f.write("html = yes\nmax_size = 256k\n")
        n = scaled(50000, 5000)
        pad = b" padding" * 12  # ~130 bytes a line: over 256k even scaled
        self.add(b"".join(b"event %d <x> & y%s\n" % (i, pad)
                          for i in range(n)))
        p = self.run_ls("flush")
        self.assertLessEqual(len(p.stdout), 256 * 1024)
        msg = email.message_from_bytes(p.stdout, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        alt, gz = list(msg.iter_parts())
        self.assertEqual(alt.get_content_type(), "multipart/alternative")
        self.assertEqual([p.get_content_type() for p in alt.iter_parts()],
                         ["text/plain", "text/html"])
        log = gzip.decompress(gz.get_content()).decode().splitlines()
        pending = len(SpoolTest.records(self))
        self.assertEqual(len(log) + pending, n)
        self.assertTrue(log[0].endswith(": event 0 <x> & y" + pad.decode()))
        self.assertNotIn("<x>", list(alt.iter_parts())[1].get_content())


class KeepSentTest(SpoolTest):
    def test_sent_records_stay_queryable_then_go(self):
        import json
        import sqlite3
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[spool]\nkeep_sent = 1d\n[mail]\nfrom = a@b.c\n"
                    "to = d@e.f\ntransport = null\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.add(b"one\ntwo\n")
        self.run_ls("flush")
        self.add(b"three\n")
        self.assertEqual(self.messages(), ["three"])        # pending only
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual(st["pending"], 1)
        sent = [json.loads(l) for l in self.run_ls(
            "list", "--sent", "--json").stdout.decode().splitlines()]
        self.assertEqual([r["message"] for r in sent], ["one", "two"])
        hist = [json.loads(l) for l in self.run_ls(
            "history", "--json").stdout.decode().splitlines()]
        self.assertEqual({r["sent_in"] for r in sent}, {hist[0]["id"]})
        self.assertIn(b"[sent in #%d]" % hist[0]["id"],
                      self.run_ls("list", "--sent").stdout)
        # the next message carries only the new record
        self.run_ls("flush")
        sent = self.run_ls("list", "--sent", "--json").stdout.splitlines()
        self.assertEqual(len(sent), 3)
        hist = self.run_ls("history", "--json").stdout.splitlines()
        self.assertEqual([json.loads(h)["records"] for h in hist], [2, 1])
        # a day later they are forgotten (at the next flush)
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE history SET time = time - 2 * 86400000000")
        con.commit()
        con.close()
        self.run_ls("flush")
        self.assertEqual(self.run_ls("list", "--sent").stdout, b"")
        self.assertEqual(json.loads(self.run_ls("status", "--json").stdout)
                         ["pending"], 0)


def syslog(level, host, tag, when, msg):
    """An RFC 5424 line: level as a severity number, time as
    2026-11-21T<when>Z."""
    return b"<%d>1 2026-11-21T%sZ %s %s - - - %s\n" % (
        8 + level, when.encode(), host.encode(), tag.encode(), msg.encode())


class AttentionTest(SpoolTest):
    """The top of the digest (issue 12): the kinds of problem most severe
    first, the first of the most severe with what led to it, why the
    message went and what waits; times in the reader's zone; hosts."""

    def config(self, extra="", policy="count_level = warning\n"):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[policy]\n" + policy + "[mail]\nfrom = a@b.c\n"
                    "to = d@e.f\ntransport = stdout\n" + extra)
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.env["TZ"] = "UTC"

    def text(self, *args):
        p = self.run_ls("flush", "--dry-run", *args)
        msg = email.message_from_bytes(p.stdout, policy=email.policy.strict)
        self.assertEqual(msg.defects, [])
        part = msg if msg.get_content_type() == "text/plain" else next(
            p for p in msg.walk() if p.get_content_type() == "text/plain")
        return part.get_content().replace("\r\n", "\n")

    def test_the_crit_comes_first_in_100000_records(self):
        # the one crit arrives last, after 100,000 info lines and errs:
        # it was at the bottom (below Gmail's clipping point)
        n = scaled(100000, 5000)
        self.config()
        lines = [syslog(6, "web1", "api", "10:%02d:%02d" % (i // 6000 % 60,
                                                          i // 100 % 60),
                        "GET /items/%d took %dms" % (i, i % 97))
                 for i in range(n)]
        lines[n // 2] = syslog(3, "web1", "api", "10:30:00",
                               "upstream timeout after 5012ms")
        lines[n // 2 + 1] = syslog(3, "web1", "api", "10:30:01",
                                   "upstream timeout after 5007ms")
        lines.append(syslog(4, "web1", "db", "10:59:58",
                            "pool at 61/64 connections"))
        lines.append(syslog(4, "web1", "db", "10:59:59",
                            "pool at 64/64 connections"))
        lines.append(syslog(2, "web1", "db", "11:00:00",
                            "could not extend file: No space left"))
        self.add(b"".join(lines), "--format", "rfc5424")
        body = self.text()
        head = body.split("\nLog, oldest first", 1)[0].split(
            "\nThe most severe records first", 1)[0]
        self.assertLess(len(head.encode()), 100 * 1024)
        top = body.splitlines()
        crit = next(i for i, l in enumerate(top) if " crit " in l)
        self.assertLess(crit, 10, top[:12])
        # most severe first, then most frequent; values masked when
        # they vary, the count before the message, first and last seen
        kinds = [l for l in head.split("most severe first:\n", 1)[1]
                 .split("\n\n", 1)[0].splitlines()]
        self.assertEqual(kinds, [
            "  \u00d71 crit    db  NEW could not extend file: No space left  "
            "at 11:00:00",
            "  \u00d72 err     api NEW upstream timeout after #ms  "
            "10:30:00\u201310:30:01",
            "  \u00d72 warning db  NEW pool at #/# connections  "
            "10:59:58\u201310:59:59",
            "New kinds: 3 (1 crit, 1 err, 1 warning)"])
        # the first crit, after what its tag logged before it
        self.assertIn("The first crit, after what db logged before it:\n"
                      "  10:59:58 warning db: pool at 61/64 connections\n"
                      "  10:59:59 warning db: pool at 64/64 connections\n"
                      "* 11:00:00 crit    db: could not extend file: No "
                      "space left\n", head)
        self.assertIn("Sent because: threshold: 5 records at warning or "
                      "above (threshold 1)", head)

    def test_at_most_20_kinds_then_how_many_more(self):
        self.config()
        self.add(b"".join(syslog(3, "web1", "t%02d" % i, "10:00:%02d" % i,
                                 "failure %d" % i) for i in range(25)),
                 "--format", "rfc5424")
        body = self.text()
        kinds = body.split("most severe first:\n", 1)[1].split("\n\n")[0]
        self.assertEqual(len(kinds.splitlines()), 22)
        self.assertTrue(kinds.splitlines()[-2].startswith(
            "  and 5 more kinds"), kinds)
        self.assertEqual(kinds.splitlines()[-1], "New kinds: 25 (25 err)")
        self.assertIn("Needs attention: 25 kinds of record at warning", body)

    def test_times_in_the_configured_zone_with_day_headings(self):
        self.config("timezone = America/New_York\n")
        self.add(syslog(3, "web1", "db", "04:59:59", "before midnight") +
                 syslog(3, "web1", "db", "05:00:01", "after midnight"),
                 "--format", "rfc5424")
        body = self.text()
        log = body.split("\nLog, oldest first", 1)[1]
        self.assertIn("\nFriday 2026-11-20 (EST, UTC-05:00)\n"
                      "23:59:59 err     db before midnight\n\n"
                      "Saturday 2026-11-21 (EST, UTC-05:00)\n"
                      "00:00:01 err     db after midnight\n", log)
        self.assertIn("From 2026-11-20 23:59:59 to 2026-11-21 00:00:01 "
                      "EST, UTC-05:00 (2s)", body)
        # list --json keeps UTC with microseconds
        rec = json.loads(self.run_ls("list", "--json").stdout.splitlines()[0])
        self.assertEqual(rec["time"], "2026-11-21T04:59:59.000000Z")
        # local: the flush's TZ
        self.config("timezone = local\n")
        self.env["TZ"] = "Asia/Kolkata"
        self.assertIn("\nSaturday 2026-11-21 (IST, UTC+05:30)\n"
                      "10:29:59 err     db before midnight\n",
                      self.text())

    def test_an_unknown_zone_is_a_config_error(self):
        self.config("timezone = Mars/Olympus_Mons\n")
        p = self.run_ls("check", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"timezone", p.stderr)
        self.assertIn(b"Mars/Olympus_Mons", p.stderr)

    def test_several_hosts_a_hosts_line_and_the_log_by_host(self):
        self.config()
        here = socket.gethostname()
        self.add(syslog(6, here, "cron", "10:00:00", "backup started") +
                 syslog(3, "web2", "nginx", "10:00:01", "upstream down") +
                 syslog(6, here, "cron", "10:00:02", "backup done") +
                 syslog(3, "web3", "nginx", "10:00:03", "upstream down") +
                 syslog(4, "web2", "tls", "10:00:04", "certificate expires"),
                 "--format", "rfc5424")
        body = self.text()
        self.assertIn("\nHosts: web2 2, %s 2, web3 1\n" % here
                      if "web2" < here else
                      "\nHosts: %s 2, web2 2, web3 1\n" % here, body)
        log = body.split("\nLog, oldest first, by host:", 1)[1]
        self.assertEqual(
            [l for l in log.splitlines() if l.startswith("Host ")],
            ["Host " + here, "Host web2", "Host web3"])
        # the two hosts' identical errors stay apart in the log
        self.assertEqual(log.count("upstream down"), 2)
        self.assertIn("nginx NEW upstream down  10:00:01\u201310:00:03 "
                      "(several hosts)", body)
        self.assertIn("tls   NEW certificate expires  at 10:00:04 (web2)",
                      body)
        # the first err came from web2, and the context says so
        self.assertIn("\nThe first err (on web2):\n", body)

    def test_context_names_other_hosts(self):
        self.config()
        self.add(syslog(4, "web3", "nginx", "10:00:00", "slow upstream") +
                 syslog(4, "web2", "nginx", "10:00:01", "slower upstream") +
                 syslog(3, "web2", "nginx", "10:00:02", "upstream down"),
                 "--format", "rfc5424")
        body = self.text()
        self.assertIn("The first err (on web2), after what nginx logged "
                      "before it:\n"
                      "  10:00:00 warning nginx@web3: slow upstream\n"
                      "  10:00:01 warning nginx: slower upstream\n"
                      "* 10:00:02 err     nginx: upstream down\n", body)

    def test_folded_records_are_counted(self):
        self.config(policy="count_level = warning\n")
        self.add(b"disk almost full\n" * 7 + b"other\n", "-l", "warning")
        body = self.text()
        self.assertIn("Folded: 6 repeated records shown once each with "
                      "\u00d7N (fold = exact)", body)
        self.assertEqual(digest_log(body)[0][2], 7)


class SevereFirstTest(SpoolTest):
    """A batch too big even compressed keeps its most severe records
    (issue 12): the err waited behind 51,557 info records while the
    subject said "highest info"."""
    config = SizeCapTest.config
    flush_timed = SizeCapTest.flush_timed
    logged = SizeCapTest.logged

    def test_the_err_goes_first_and_the_rest_drains(self):
        import binascii
        self.config("max_size = 256k\n")
        infos = ["info %06d %s" % (i, binascii.hexlify(os.urandom(40))
                                   .decode()) for i in range(8000)]
        self.add("".join(l + "\n" for l in infos).encode())
        self.add(b"disk full on /srv\n", "-l", "err", "-t", "db")
        self.add(b"disk at 97%\n", "-l", "warning", "-t", "db")
        raw, _ = self.flush_timed()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertIn("highest err: disk full on /srv", msg["Subject"])
        self.assertEqual(msg["X-Logsponge-Level"], "err")
        shown, log = self.logged(raw)
        self.assertIsNotNone(log)
        # the err and the warning went, most severe first, in both parts
        self.assertEqual(shown[:2], ["disk full on /srv", "disk at 97%"])
        self.assertIn("disk full on /srv", log)
        self.assertIn("disk at 97%", log)
        self.assertLessEqual(len(raw), 256 << 10)
        text = next(p for p in msg.walk()
                    if p.get_content_type() == "text/plain").get_content()
        # what did not fit waits, and the message says so by level
        pending = SpoolTest.records(self)
        self.assertGreater(len(pending), 0)
        self.assertIn("Waiting for the next message: %d records: info %d"
                      % (len(pending), len(pending)), text)
        # the rest drains in later messages: each record exactly once
        seen = list(log)
        for _ in range(20):
            raw, _ = self.flush_timed()
            if not raw:
                break
            s, l = self.logged(raw)
            seen += l if l is not None else s
        self.assertEqual(SpoolTest.records(self), [])
        self.assertEqual(sorted(seen), sorted(infos + ["disk full on /srv",
                                                       "disk at 97%"]))
