"""Writes N realistic log lines (~100 bytes, mixed levels) and the same
lines as 5-column CSV (time, level, tag, host, message) for .import."""
import csv
import random
import sys

n, txt, csvp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rnd = random.Random(42)
levels = [("INFO", 6, 60), ("DEBUG", 7, 20), ("WARN", 4, 10),
          ("ERROR", 3, 7), ("NOTICE", 5, 2), ("CRITICAL", 2, 1)]
weights = [w for _, _, w in levels]
comps = ["api", "worker", "scheduler", "db.pool", "auth", "cache", "mailer"]
msgs = [
    "request {id} GET /api/v1/items/{n} took {ms}ms status=200",
    "job {id} finished in {ms}ms, {n} rows updated",
    "connection pool at {n}/64, waiting {ms}ms for a slot",
    "cache miss for key user:{n}:profile, refilled in {ms}ms",
    "login failed for user{n} from 10.0.{n}.{ms}: bad password",
    "retrying upstream call {id} (attempt {n}) after {ms}ms backoff",
]
with open(txt, "w") as f, open(csvp, "w", newline="") as g:
    w = csv.writer(g)
    t0 = 1795255200
    for i in range(n):
        name, num, _ = rnd.choices(levels, weights)[0]
        msg = rnd.choice(msgs).format(id="%08x" % rnd.getrandbits(32),
                                      n=rnd.randint(1, 999),
                                      ms=rnd.randint(1, 999))
        ts = t0 + i // 100
        line = "2026-11-21T%02d:%02d:%02dZ %s %s[%d]: %s" % (
            ts // 3600 % 24, ts // 60 % 60, ts % 60, name,
            rnd.choice(comps), rnd.randint(100, 9999), msg)
        f.write(line + "\n")
        w.writerow([ts * 1000000, num, "bench", "benchhost", line])
