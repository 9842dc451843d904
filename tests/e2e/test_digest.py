"""The digest: summary first, repeats folded, compared with a golden file
after the times are replaced (they change with every run)."""
import email
import email.policy
import os
import re

from common import ROOT, SpoolTest

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class DigestTest(SpoolTest):
    def config(self, fold=None):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = stdout\n"
                    + ("fold = %s\n" % fold if fold else ""))
        self.env["LOGSPONGE_CONFIG"] = cfg

    def body(self):
        p = self.run_ls("flush", "--dry-run")
        msg = email.message_from_bytes(p.stdout, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        return msg, msg.get_content().replace("\r\n", "\n")

    def seed(self):
        self.add(b"connection refused\nretrying in 5s\nconnection refused\n"
                 b"connection refused\n", "-t", "db", "-l", "err")
        self.add(b"took 12ms\ntook 15ms\ntook 8ms\n", "-t", "api")
        self.add(b"connection refused\n", "-t", "db", "-l", "warning")
        self.add(b"retrying in 5s\n", "-t", "db", "-l", "err")

    def records(self, body):
        part = body.split("Records, oldest first", 1)[1].split("\n", 1)[1]
        return [TIME.sub("T", l) for l in part.splitlines()]

    def test_exact_folding(self):
        self.config()
        self.seed()
        msg, body = self.body()
        self.assertEqual(self.records(body), [
            "T err     db: connection refused  \u00d73 (last T)",
            "T err     db: retrying in 5s  \u00d72 (last T)",
            "T info    api: took 12ms",
            "T info    api: took 15ms",
            "T info    api: took 8ms",
            "T warning db: connection refused",
        ])
        self.assertIn("9 records", msg["Subject"])

    def test_masked_folding(self):
        self.config("masked")
        self.seed()
        _, body = self.body()
        self.assertIn("T info    api: took 12ms  \u00d73 (last T)",
                      self.records(body))
        self.assertIn("T err     db: retrying in 5s  \u00d72 (last T)",
                      self.records(body))

    def test_no_folding(self):
        self.config("off")
        self.seed()
        _, body = self.body()
        self.assertEqual(len(self.records(body)), 9)

    def test_golden_message(self):
        self.config()
        self.seed()
        msg, body = self.body()
        host = msg["Subject"].split(" ")[1].rstrip(":")
        got = TIME.sub("<time>", body).replace(host, "<host>")
        got = re.sub(r"\(\d+[smhd]( \d+[smhd])?\)", "(<span>)", got)
        path = os.path.join(ROOT, "tests", "golden", "digest.txt")
        if os.environ.get("LOGSPONGE_UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(got, f.read())
        self.assertEqual(msg["Subject"].replace(host, "<host>"),
                         "[logsponge] <host>: 9 records, highest err: "
                         "connection refused")
