"""The program logsponge lives in: fork() while other threads log, and
logging from a signal handler, never hang it, crash it or lose a record.
For C callers (a program linking liblogsponge.a) and for the Python
handler (liblogsponge.so.0 through ctypes)."""
import os
import subprocess
import tempfile
import textwrap
import unittest

from common import BUILD, ROOT, SpoolTest, build_program, foreign_env

PYDIR = os.path.join(ROOT, "python")
FORKS = 50

# Four threads log in a loop on handles of their own; the main thread
# forks FORKS times; each child opens a handle of its own, logs one
# record and leaves.  A child that has not finished within 30 s is hung
# (its record waits for the spool behind four busy writers: 0.1 s at most
# measured on two cores).
C_FORKS = r"""
#include <logsponge.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *spool;
static volatile int stop;

static void *logger(void *arg)
{
	sponge *sp;
	if (sponge_open(&sp, spool, NULL, SPONGE_OPEN_NOCONFIG) != SPONGE_OK)
		abort();
	for (long i = 0; !stop; i++)
		sponge_log(sp, SPONGE_INFO, "thread", "thread %ld %ld",
			   (long)arg, i);
	sponge_close(sp);
	return NULL;
}

static int wait_bounded(pid_t pid)
{
	for (int i = 0; i < 3000; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 1;
}

int main(int argc, char **argv)
{
	spool = argv[1];
	int forks = atoi(argv[2]), hung = 0, failed = 0;
	(void)argc;
	sponge *mine;
	if (sponge_open(&mine, spool, NULL, SPONGE_OPEN_NOCONFIG))
		return 3;
	pthread_t t[4];
	for (long k = 0; k < 4; k++)
		pthread_create(&t[k], NULL, logger, (void *)k);
	for (int n = 0; n < forks; n++) {
		pid_t pid = fork();
		if (pid == 0) {
			/* the parent's handle is not ours: closing it here
			 * writes nothing and lets go of our copy of its
			 * connection */
			sponge_close(mine);
			sponge *sp;
			int rc = sponge_open(&sp, spool, NULL,
					     SPONGE_OPEN_NOCONFIG);
			if (rc == SPONGE_OK)
				rc = sponge_log(sp, SPONGE_ERR, "child",
						"child %d", n);
			if (rc == SPONGE_OK)
				rc = sponge_close(sp);
			_exit(rc == SPONGE_OK ? 0 : 1);
		}
		int r = wait_bounded(pid);
		hung += r == 1;
		failed += r == 2;
	}
	stop = 1;
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	/* the parent's handle still works after all those forks */
	int rc = sponge_log(mine, SPONGE_NOTICE, "parent", "parent done");
	sponge_close(mine);
	printf("hung %d failed %d rc %d\n", hung, failed, rc);
	return 0;
}
"""


class ForkWhileThreadsLogTest(SpoolTest):
    """A child forked while other threads were inside the library hung
    for ever in sponge_open (SQLite's memory mutex, held by a thread that
    does not exist in the child), and its record was lost."""

    def child_records(self):
        return sorted(m for m in self.db_messages() if m.startswith("child"))

    @unittest.skipIf("sanitize=" in os.environ.get("LOGSPONGE_CFLAGS", ""),
                     "GCC 12's ASan allocator takes no lock around fork(): "
                     "a child of this program can find one of its locks "
                     "held (about half of the runs since the spool's "
                     "schema 7, in the child's free(); 0 of 28 with "
                     "glibc's allocator); the normal build runs it")
    def test_c_program(self):
        d = tempfile.mkdtemp(dir=self.dir)
        exe = build_program(d, C_FORKS, "forks")
        p = subprocess.run([exe, self.spool, str(FORKS)], capture_output=True,
                           text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual(p.stdout.strip(), "hung 0 failed 0 rc 0")
        self.assertEqual(self.child_records(),
                         sorted("child %d" % n for n in range(FORKS)))
        self.assertIn("parent done", self.db_messages())

    def test_python_handler(self):
        code = """
            import logging, os, signal, sys, threading, time, logsponge
            log = logging.getLogger("t")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            log.setLevel(logging.INFO)
            stop = False
            def loop(k):
                i = 0
                while not stop:
                    log.info("thread %d %d", k, i)
                    i += 1
            ts = [threading.Thread(target=loop, args=(k,)) for k in range(4)]
            for t in ts:
                t.start()
            hung = failed = 0
            for n in range(FORKS):
                pid = os.fork()
                if pid == 0:
                    log.error("child %d", n)
                    logging.shutdown()
                    os._exit(0)
                for _ in range(3000):
                    got, status = os.waitpid(pid, os.WNOHANG)
                    if got:
                        failed += status != 0
                        break
                    time.sleep(0.01)
                else:
                    hung += 1
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            stop = True
            for t in ts:
                t.join()
            print("hung", hung, "failed", failed)
            """.replace("FORKS", str(FORKS))
        p = run_python(self, code)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual(p.stdout.decode().strip(), "hung 0 failed 0")
        self.assertEqual(self.child_records(),
                         sorted("child %d" % n for n in range(FORKS)))


def run_python(test, code, timeout=600):
    """Run code with Debian's python3 and the package from the build
    tree; $SPOOL is the test's spool."""
    e = foreign_env(test.env)
    e["PYTHONPATH"] = PYDIR
    e["LD_LIBRARY_PATH"] = os.path.abspath(BUILD)
    e["SPOOL"] = test.spool
    return subprocess.run(["/usr/bin/python3", "-c", textwrap.dedent(code)],
                          capture_output=True, env=e, timeout=timeout)


class SignalHandlerLogsTest(SpoolTest):
    """A SIGTERM handler that logs, arriving while the first record
    loaded the library, waited for ever on the handler's own lock; with
    a 1 ms repeating timer whose handler logs, the process crashed."""

    def test_one_shot_while_the_library_loads(self):
        # the signal arrives inside the first load, every time: CDLL
        # sends it to the process before it loads
        code = """
            import ctypes, logging, os, signal, logsponge
            log = logging.getLogger("app")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            signal.signal(signal.SIGTERM,
                          lambda *a: log.warning("shutting down"))
            real = ctypes.CDLL
            def cdll(*a, **k):
                os.kill(os.getpid(), signal.SIGTERM)
                return real(*a, **k)
            ctypes.CDLL = cdll
            log.warning("first record")
            """
        for _ in range(3):
            p = run_python(self, code, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual(sorted(self.db_messages()),
                         ["first record"] * 3 + ["shutting down"] * 3)

    def test_repeating_1ms_timer_for_10s(self):
        code = """
            import logging, os, signal, time, logsponge
            log = logging.getLogger("app")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"]))
            ticks = 0
            def tick(*a):
                global ticks
                ticks += 1
                log.warning("tick %d", ticks)
            signal.signal(signal.SIGALRM, tick)
            signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
            end, n = time.monotonic() + 10, 0
            while time.monotonic() < end:
                n += 1
                log.warning("main %d", n)
            signal.setitimer(signal.ITIMER_REAL, 0)
            print(ticks, n)
            """
        p = run_python(self, code, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        ticks, n = map(int, p.stdout.split())
        self.assertGreater(ticks, 100)
        got = self.db_messages()
        self.assertEqual(sorted(m for m in got if m.startswith("tick")),
                         sorted("tick %d" % i for i in range(1, ticks + 1)))
        self.assertEqual(sum(m.startswith("main") for m in got), n)


class LoggedAtExitTest(SpoolTest):
    """A record logged from __del__ at interpreter exit, after logging's
    shutdown, was held in the batch and lost."""

    def test_del_at_exit_with_a_batch(self):
        p = run_python(self, """
            import logging, os, logsponge
            log = logging.getLogger("app")
            log.addHandler(logsponge.SpongeHandler(spool=os.environ["SPOOL"],
                                                   batch=100))
            class Conn:
                def __del__(self):
                    log.warning("connection closed at exit")
            keep = Conn()
            log.warning("running")
            """)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual(sorted(self.db_messages()),
                         ["connection closed at exit", "running"])
