"""Many writers at once, and kill -9 in the middle of a stream."""
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

from common import BIN, SpoolTest, scaled

BATCH_RECORDS = 10000      # cli/add.c BATCH_RECORDS
READ_SIZE = 256 * 1024     # cli/add.c READ_SIZE


class ConcurrencyTest(SpoolTest):
    def test_four_writers_while_status_and_list_loop(self):
        writers, per = 4, scaled(50000, 500)
        # create the spool first so the readers have something to open
        self.run_ls("add", "--tee", input=b"")
        procs = []
        for w in range(writers):
            data = b"".join(b"w%d %06d\n" % (w, i) for i in range(per))
            p = subprocess.Popen([BIN, "-s", self.spool, "add", "-t",
                                  "w%d" % w], stdin=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=self.env)
            procs.append((p, data))
        def feed(p, data):
            # in bursts with pauses, so that commits on pause, on count and
            # at exit all interleave with the other writers and readers
            step = 60000
            for i in range(0, len(data), step):
                p.stdin.write(data[i:i + step])
                p.stdin.flush()
                time.sleep(0.01)
            p.stdin.close()
            p.stderr_text = p.stderr.read()
            p.wait()

        feeders = [threading.Thread(target=feed, args=(p, d))
                   for p, d in procs]
        reader_failures, loops = [], [0]

        def readers():
            while any(p.poll() is None for p, _ in procs):
                for args in (["status"], ["status", "--json"],
                             ["list", "--limit", "5"], ["list", "--json",
                                                        "--tag", "w1",
                                                        "--limit", "3"]):
                    r = subprocess.run([BIN, "-s", self.spool] + args,
                                       capture_output=True, env=self.env)
                    if r.returncode != 0 or r.stderr:
                        reader_failures.append((args, r.returncode,
                                                r.stderr))
                loops[0] += 1

        rt = threading.Thread(target=readers)
        for f in feeders:
            f.start()
        rt.start()
        for f in feeders:
            f.join()
        rt.join()
        for p, _ in procs:
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.stderr_text, b"")  # no "database is locked"
            p.stderr.close()
        self.assertEqual(reader_failures, [])
        self.assertGreater(loops[0], 0)
        msgs = self.db_messages()
        self.assertEqual(len(msgs), writers * per)
        want = {"w%d %06d" % (w, i) for w in range(writers)
                for i in range(per)}
        self.assertEqual(set(msgs), want)  # none lost, none duplicated
        self.assertEqual(len(set(msgs)), len(msgs))
        # each writer's records are in its own order
        for w in range(writers):
            mine = [m for m in msgs if m.startswith("w%d " % w)]
            self.assertEqual(mine, sorted(mine))


class CreateRaceTest(SpoolTest):
    def test_many_processes_create_one_spool_at_once(self):
        # the first writers race to create the file, switch it to WAL
        # and write the schema: every one must wait its turn, none fail
        for round_ in range(scaled(20, 2)):
            spool = os.path.join(self.dir, "race%d" % round_, "spool.db")
            procs = [subprocess.Popen([BIN, "-s", spool, "add", "-t",
                                       "p%d" % i, "hello %d" % i],
                                      stderr=subprocess.PIPE, env=self.env)
                     for i in range(8)]
            for p in procs:
                p.wait(timeout=120)
                err = p.stderr.read()
                p.stderr.close()
                self.assertEqual((p.returncode, err), (0, b""))
            con = sqlite3.connect(spool)
            n = con.execute("SELECT count(*) FROM records").fetchone()[0]
            con.close()
            self.assertEqual(n, 8)


class CrashTest(SpoolTest):
    def test_kill_9_mid_stream_loses_at_most_a_batch(self):
        total = scaled(1000000, 20000)
        enough = scaled(200000, 2000)
        p = subprocess.Popen([BIN, "-s", self.spool, "add", "--tee"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=self.env)
        teed = [0]

        def drain():  # count what add has read (it tees before storing)
            while True:
                b = p.stdout.read(65536)
                if not b:
                    return
                teed[0] += b.count(b"\n")

        def feed():
            try:
                for start in range(0, total, 1000):
                    p.stdin.write(b"".join(b"line %07d\n" % i for i in
                                           range(start, start + 1000)))
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass

        dt = threading.Thread(target=drain)
        ft = threading.Thread(target=feed)
        dt.start()
        ft.start()
        # wait until a good part is committed, then kill -9
        deadline = time.time() + 60
        committed = 0
        while time.time() < deadline and committed < enough:
            time.sleep(0.02)
            try:
                con = sqlite3.connect("file:%s?mode=ro" % self.spool,
                                      uri=True, timeout=5)
                committed = con.execute(
                    "SELECT count(*) FROM records").fetchone()[0]
                con.close()
            except sqlite3.Error:
                pass
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        ft.join()
        dt.join()
        p.stdout.close()
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        self.assertEqual(p.returncode, -signal.SIGKILL)

        # the spool opens cleanly and is consistent
        st = self.run_ls("status", "--json")
        self.assertEqual(st.stderr, b"")
        con = sqlite3.connect(self.spool)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0],
                         "ok")
        con.close()
        msgs = self.db_messages()
        k = len(msgs)
        self.assertGreaterEqual(k, enough)
        self.assertLess(k, total, "the kill came after the end")
        # every committed record intact: exactly the first k lines, in order
        self.assertEqual(msgs, ["line %07d" % i for i in range(k)])
        # read but not committed: at most one batch, plus the rest of the
        # chunk being split when the signal came.  (--tee copies a chunk
        # after storing it, so the commit may be one chunk ahead.)
        lost = teed[0] - k
        self.assertGreaterEqual(lost, -(READ_SIZE // 13 + 1))
        self.assertLessEqual(lost, BATCH_RECORDS + READ_SIZE // 13 + 1)
        # and a new add after the crash works and continues the ids
        self.add(b"after crash\n")
        self.assertEqual(self.db_messages()[-1], "after crash")


class SpoolCapTest(SpoolTest):
    def config(self, spool_settings):
        cfg = os.path.join(self.dir, "c.conf")
        with open(cfg, "w") as f:
            f.write("[spool]\n%s\n[mail]\nfrom = a@b.c\nto = d@e.f\n"
                    "transport = stdout\n" % spool_settings)
        self.env["LOGSPONGE_CONFIG"] = cfg

    def test_max_records_from_four_writers_kept_plus_dropped_is_written(self):
        cap = scaled(20000, 3000) * 4 // 10 + 2000  # room for every error
        self.config("max_records = %d" % cap)
        writers, per = 4, scaled(20000, 3000)
        self.run_ls("add", input=b"")
        procs = []
        for w in range(writers):
            # every 10th line is an error: errors must survive
            data = b"".join(b"%s w%d %06d\n" % (b"ERROR" if i % 10 == 0
                                                 else b"info", w, i)
                            for i in range(per))
            p = subprocess.Popen([BIN, "-s", self.spool, "add",
                                  "--detect-level"], stdin=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=self.env)
            procs.append((p, data))
        threads = [threading.Thread(target=p.communicate, args=(d,))
                   for p, d in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p, _ in procs:
            self.assertEqual(p.returncode, 0)
        st = json.loads(self.run_ls("status", "--json").stdout)
        kept = st["pending"]
        dropped = sum(st["dropped"].values())
        self.assertLessEqual(kept, cap)
        self.assertEqual(kept + dropped, writers * per)  # exactly
        self.assertCountsMatch()
        self.assertEqual(st["dropped"]["err"], 0)        # lowest first
        self.assertEqual(st["levels"]["err"], writers * per // 10)
        self.assertIn(b"the spool being full",
                      self.run_ls("status").stdout)
        # the next message says so, and then the count starts again
        p = self.run_ls("flush")
        body = p.stdout.decode()
        self.assertIn("Dropped because the spool was full", body)
        self.assertIn("info %d" % dropped, body.replace("=\r\n", ""))
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertEqual(sum(st["dropped"].values()), 0)

    def test_max_bytes(self):
        self.config("max_bytes = 2M")
        line = b"x" * 300
        self.add(b"".join(line + b" %d\n" % i for i in range(20000)))
        st = json.loads(self.run_ls("status", "--json").stdout)
        self.assertGreater(st["pending"], 1000)
        self.assertEqual(st["pending"] + sum(st["dropped"].values()), 20000)
        self.assertCountsMatch()
        con = sqlite3.connect(self.spool)
        used = con.execute("SELECT (page_count - freelist_count) * "
                           "page_size FROM pragma_page_count, "
                           "pragma_freelist_count, pragma_page_size"
                           ).fetchone()[0]
        con.close()
        self.assertLessEqual(used, 2 * 1024 * 1024)
        # the newest survive: drops are oldest first
        self.assertEqual(self.db_messages()[-1], "x" * 300 + " 19999")
