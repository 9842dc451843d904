"""Every kind of digest through independent MIME readers (issue 12).

18 variants -- plain, folded, masked, capped, capped + html, html,
heartbeats, non-ASCII everywhere, a 64-character host name, 20 recipients
with display names, hostile lines at soft-break positions, multi-line
records, several hosts, a named zone -- each read by Python's email with
policy.strict, Perl's Email::MIME and reformime (maildrop), and munpack
(mpack) where there is an attachment.  A variant fails on any defect, a
part one reader sees and another does not, a decoded body that differs
between readers, a header line over 78 octets that folding could have
shortened, a line starting with "From " in the raw message, or records
decoded from the mail that differ from `list --json` before the flush."""
import collections
import email
import email.policy
import gzip
import json
import os
import re
import sqlite3
import subprocess
import unittest

from common import (BIN, SpoolTest, digest_log, munpack_log,
                    reformime_sections)

PERL_WALK = r"""
use strict; use warnings; use Email::MIME;
my ($dir) = @ARGV;
local $/; my $raw = <STDIN>;
my $m = Email::MIME->new($raw);
my $i = 0;
$m->walk_parts(sub {
    my ($p) = @_;
    return if $p->subparts;
    my $ct = lc(($p->content_type // 'text/plain') =~ s/;.*//sr);
    open(my $f, '>:raw', "$dir/$i") or die;
    print $f $p->body;   # decoded from its transfer encoding
    close $f;
    print "$i\t$ct\n";
    $i++;
});
"""

ATTACH_LINE = re.compile(r"^(\S+Z) (\w+) +(.*?)(?:@(\S+))?: (.*)$")


def leaves(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


def log_records(text):
    """(level, tag, times, message) of every record a text part's log
    lists, with a multi-line record's other lines joined by LF."""
    out = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        got = digest_log(("\nLog, oldest first\n" + line))
        if not got:
            continue
        level, tag, times, first = got[0]
        rest = []
        for nxt in lines[i + 1:]:
            if not nxt.startswith("    "):
                break
            rest.append(nxt[4:])
        out.append((level, tag, times, "\n".join([first] + rest)))
    return out


def attachment_records(log):
    """(level, tag, message) of the attachment's lines (full UTC times,
    continuation lines indented by four spaces)."""
    out = []
    for line in log.split("\n"):
        if line.startswith("    ") and out:
            lv, tag, msg = out[-1]
            out[-1] = (lv, tag, msg + "\n" + line[4:])
            continue
        m = ATTACH_LINE.match(line)
        if m:
            out.append((m.group(2), m.group(3), m.group(5)))
    return out


class MimeMatrixTest(SpoolTest):

    # ---- building a variant ---------------------------------------------

    def write_config(self, mail="", policy="", extra=""):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("[policy]\n" + policy + "[mail]\n" +
                    (mail if "from =" in mail else
                     "from = a@b.c\nto = d@e.f\n" + mail) +
                    "transport = stdout\n" + extra)
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.env["TZ"] = "UTC"

    def flush(self, argv_prefix=()):
        p = subprocess.run(list(argv_prefix) + [BIN, "-s", self.spool,
                                                "flush"],
                           env=self.env, capture_output=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout, p.stderr)
        # stdout gives LF line ends; the wire has CRLF
        return p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def pending(self):
        if not os.path.exists(self.spool):
            return []
        con = sqlite3.connect("file:%s?mode=ro" % self.spool, uri=True)
        try:
            return [r[0] for r in con.execute(
                "SELECT id FROM records WHERE sent IS NULL")]
        finally:
            con.close()

    # ---- the readers ------------------------------------------------------

    def perl_parts(self, path):
        out = os.path.join(self.dir, "perl")
        os.makedirs(out, exist_ok=True)
        p = subprocess.run(["perl", "-e", PERL_WALK, out],
                           stdin=open(path, "rb"), capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        parts = []
        for line in p.stdout.splitlines():
            i, ct = line.split("\t")
            with open(os.path.join(out, i), "rb") as f:
                parts.append((ct, f.read()))
        return parts

    def reformime_parts(self, path):
        parts = []
        for sec, ct in reformime_sections(path):
            if ct.startswith("multipart/"):
                continue
            body = subprocess.run(["reformime", "-e", "-s", sec],
                                  stdin=open(path, "rb"),
                                  capture_output=True, check=True).stdout
            parts.append((ct, body))
        return parts


    # ---- the checks -------------------------------------------------------

    def assertHeadersFolded(self, raw):
        blocks = [raw.split(b"\r\n\r\n", 1)[0]]
        for part in raw.split(b"\r\n--")[1:]:
            blocks.append(part.split(b"\r\n\r\n", 1)[0])
        for block in blocks:
            for line in block.split(b"\r\n"):
                if len(line) <= 78:
                    continue
                # longer only when it is one word (no fold could help)
                value = re.sub(rb"^[A-Za-z-]+:", b"", line).strip()
                self.assertNotRegex(value, rb"[ \t]", line)
                # and in a structured field (where the fold's space is
                # not part of the value) a fold after the name would not
                # have helped
                if re.match(rb"^(Message-ID|In-Reply-To|References):",
                            line, re.I):
                    self.assertGreater(len(value) + 1, 78, line)

    def check(self, raw, variant, before, heartbeat=False):
        path = os.path.join(self.dir, variant + ".eml")
        with open(path, "wb") as f:
            f.write(raw)
        # no line a transport could turn into ">From"
        self.assertNotRegex(raw, rb"(^|\r\n)From ", variant)
        self.assertHeadersFolded(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.strict)
        self.assertEqual(msg.defects, [], variant)
        py = []
        for p in leaves(msg):
            self.assertEqual(p.defects, [], variant)
            py.append((p.get_content_type(), p.get_payload(decode=True)))
        # every reader sees the same parts with the same decoded bytes
        perl = self.perl_parts(path)
        refo = self.reformime_parts(path)
        self.assertEqual([c for c, _ in py], [c for c, _ in perl], variant)
        self.assertEqual([c for c, _ in py], [c for c, _ in refo], variant)
        for (ct, a), (_, b), (_, c) in zip(py, perl, refo):
            norm = (lambda x: x.replace(b"\r\n", b"\n")) \
                if ct.startswith("text/") else (lambda x: x)
            self.assertEqual(norm(a), norm(b), (variant, ct, "perl"))
            self.assertEqual(norm(a), norm(c), (variant, ct, "reformime"))
        text = next(b for c, b in py if c == "text/plain").decode("utf-8")
        text = text.replace("\r\n", "\n")
        if heartbeat:
            self.assertIn("nothing to report since", text)
            self.assertEqual(len(py), 2 if "html" in variant else 1)
            return msg, text
        # the records: what the mail holds equals list --json before
        gz = [b for c, b in py if c == "application/gzip"]
        left = set(self.pending())
        sent = [r for r in before if r["id"] not in left]
        want = [(r["level"], r["tag"] or "-", r["message"]) for r in sent]
        if gz:
            self.assertEqual(gz[0], munpack_log(
                self, path, os.path.join(self.dir, "munpack")), variant)
            got = attachment_records(gzip.decompress(gz[0]).decode())
            self.assertEqual(sorted(got), sorted(want), variant)
        else:
            got = log_records(text)
            if all(t == 1 for _, _, t, _ in got):
                self.assertEqual(collections.Counter(
                    (lv, tg, m) for lv, tg, _, m in got),
                    collections.Counter(want), variant)
            elif variant == "masked":  # merged by masked first line
                self.assertEqual(sum(t for _, _, t, _ in got), len(want))
                self.assertLessEqual({(lv, tg, m) for lv, tg, _, m in got},
                                     set(want), variant)
            else:  # folded: by first line, with the counts
                first = collections.Counter()
                for lv, tg, t, m in got:
                    first[(lv, tg, m.split("\n")[0])] += t
                self.assertEqual(first, collections.Counter(
                    (lv, tg, m.split("\n")[0]) for lv, tg, m in want),
                    variant)
        return msg, text

    def run_variant(self, variant, mail="", policy="", data=b"",
                    add_args=(), extra="", argv_prefix=()):
        self.write_config(mail, policy, extra)
        if data:
            self.add(data, *add_args)
        before = self.records()
        raw = self.flush(argv_prefix)
        return self.check(raw, variant, before)

    # ---- the variants -----------------------------------------------------

    SAMPLE = (b"disk full on /srv\nretrying in 5s\ndisk full on /srv\n"
              b"took 12ms\ntook 15ms\n")

    def test_01_plain(self):
        self.run_variant("plain", data=self.SAMPLE, extra="fold = off\n")

    def test_02_folded(self):
        _, text = self.run_variant("folded", data=self.SAMPLE * 40)
        self.assertIn("\u00d780 disk full on /srv", text)

    def test_03_masked(self):
        self.run_variant("masked", data=self.SAMPLE * 3,
                         extra="fold = masked\n")

    def big(self):
        return b"".join(b"entry %06d %x with enough text to matter\n"
                        % (i, i * 2654435761) for i in range(30000))

    def test_04_capped(self):
        self.run_variant("capped", data=self.big(),
                         extra="max_size = 256k\n")

    def test_05_capped_html(self):
        self.run_variant("capped-html", data=self.big(),
                         extra="max_size = 256k\nhtml = yes\n")

    def test_06_html(self):
        self.run_variant("html", data=self.SAMPLE + b"<b>&amp;</b>\n",
                         extra="html = yes\n")

    def heartbeat(self, variant, extra=""):
        self.write_config(policy="threshold = 10\nheartbeat = 1h\n",
                          extra=extra)
        self.add(b"", "-l", "info")
        p = self.run_ls("flush")  # starts watching
        self.assertEqual(p.stdout, b"")
        con = sqlite3.connect(self.spool)
        con.execute("UPDATE meta SET value = value - ? WHERE key = "
                    "'watch_since'", (3700 * 10**6,))
        con.commit()
        con.close()
        raw = self.flush()
        self.check(raw, variant, [], heartbeat=True)

    def test_07_heartbeat(self):
        self.heartbeat("heartbeat")

    def test_08_heartbeat_html(self):
        self.heartbeat("heartbeat-html", "html = yes\n")

    NON_ASCII = ("\u00e9chec de la sauvegarde \u65e5\u672c\u8a9e \u20ac "
                 "\U0001F419 Gr\u00fc\u00dfe").encode()

    def non_ascii(self, variant, extra=""):
        _, text = self.run_variant(
            variant,
            mail="from = J\u00f6rg M\u00fcller <j@b.c>\n"
                 "to = \u00c9lodie Dupr\u00e9 <e@d.e>, \"Doe, Jane\" <j@f.g>\n"
                 "subject = [logsponge] \u00e9chec {host}: {first}\n",
            data=self.NON_ASCII + b"\n" + self.NON_ASCII * 9 + b"\n",
            add_args=("-t", "sauvegarde-\u00e9t\u00e9", "-l", "err"),
            extra=extra)
        self.assertIn(self.NON_ASCII.decode(), text)

    def test_09_non_ascii_everywhere(self):
        self.non_ascii("non-ascii")

    def test_10_non_ascii_html(self):
        self.non_ascii("non-ascii-html", "html = yes\n")

    @unittest.skipUnless(os.geteuid() == 0, "unshare --uts needs root")
    def test_11_a_64_character_host_name(self):
        msg, _ = self.run_variant(
            "long-host", data=self.SAMPLE, extra="max_size = 256k\n",
            argv_prefix=("unshare", "--uts", "sh", "-c",
                         'hostname "$0" && exec "$@"', "h" * 63))
        self.assertEqual(msg["X-Logsponge-Host"], "h" * 63)

    def test_12_twenty_recipients_with_display_names(self):
        # (inih reads lines of up to 198 characters: "to" repeats)
        to = ["to = " + ", ".join('"Ops %02d, on call" <ops%02d@example.org>'
                                  % (i, i) for i in range(k, k + 5))
              for k in (0, 5)]
        to += ["to = " + ", ".join("Team M\u00fcller %02d <t%02d@example.org>"
                                   % (i, i) for i in range(k, k + 5))
               for k in (0, 5)]
        msg, _ = self.run_variant(
            "twenty-recipients",
            mail="from = a@b.c\n" + "\n".join(to) + "\n",
            data=self.SAMPLE)
        got = [(a.display_name, a.addr_spec) for a in msg["To"].addresses]
        self.assertEqual(len(got), 20)
        self.assertEqual(got[0], ("Ops 00, on call", "ops00@example.org"))
        self.assertEqual(got[19], ("Team M\u00fcller 09",
                                   "t09@example.org"))

    def hostile(self):
        # "From " and "." where quoted-printable soft breaks fall (the
        # line is cut near 76 octets), and at the start of records
        lines = [b"From the start", b".dot first", b"..two dots"]
        for pad in range(60, 80):
            lines.append(b"x" * pad + b"From here on")
            lines.append(b"y" * pad + b".end")
            lines.append(b"z" * pad + b"=3D not an escape \t ")
        return b"\n".join(lines) + b"\n"

    def test_13_hostile_lines(self):
        self.run_variant("hostile", data=self.hostile(),
                         add_args=("--join", "none"), extra="fold = off\n")

    def test_14_hostile_html(self):
        self.run_variant("hostile-html", data=self.hostile(),
                         add_args=("--join", "none"),
                         extra="fold = off\nhtml = yes\n")

    TRACE = (b"ERROR job failed\nTraceback (most recent call last):\n"
             b'  File "/srv/job.py", line 3, in <module>\n    run()\n'
             b"ValueError: bad row 7\n")

    def test_15_multi_line_records(self):
        self.run_variant("multi-line", data=self.TRACE * 2 + b"done\n",
                         add_args=("--detect-level",), extra="fold = off\n")

    def test_16_multi_line_html(self):
        self.run_variant("multi-line-html", data=self.TRACE + b"done\n",
                         add_args=("--detect-level",),
                         extra="fold = off\nhtml = yes\n")

    def test_17_several_hosts(self):
        data = b"".join(
            b"<11>1 2026-11-21T10:00:%02dZ %s app - - - failure %d\n"
            % (i, b"web%d" % (i % 3), i) for i in range(12))
        _, text = self.run_variant("hosts", data=data,
                                   add_args=("--format", "rfc5424"))
        self.assertIn("\nHosts: ", text)

    def test_18_named_zone(self):
        data = (b"<11>1 2026-11-21T04:59:59Z web1 app - - - before\n"
                b"<11>1 2026-11-21T05:00:01Z web1 app - - - after\n")
        _, text = self.run_variant("zone", data=data,
                                   add_args=("--format", "rfc5424"),
                                   extra="timezone = America/New_York\n")
        self.assertIn("Friday 2026-11-20 (EST, UTC-05:00)", text)
