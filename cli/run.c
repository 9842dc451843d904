/* run.c - `logsponge run -- COMMAND`: record a command's output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

static volatile sig_atomic_t pending_signal;

static void on_signal(int sig) { pending_signal = sig; }

/* 0 when cmd names an executable file (itself, or found in $PATH), else
 * the errno that exec would give. */
static int findable(const char *cmd)
{
	if (strchr(cmd, '/'))
		return access(cmd, X_OK) == 0 ? 0 : errno;
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	int e = ENOENT;
	for (const char *p = path;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		char full[4096];
		if (snprintf(full, sizeof full, "%.*s%s%s", (int)n, p,
			     n ? "/" : "", cmd) < (int)sizeof full) {
			if (access(full, X_OK) == 0)
				return 0;
			if (errno == EACCES)
				e = EACCES;
		}
		if (!colon)
			return e;
		p = colon + 1;
	}
}

static void run_usage(FILE *f)
{
	usage(f, "run");
	fprintf(f,
		"options:\n"
		"  -j, --job NAME      the job this run is one of (default: "
		"the command's\n"
		"                      name); [job NAME] in the config applies\n"
		"  -t, --tag TAG       tag of the records (default: the job's "
		"name)\n"
		"  -d, --detect-level  take the level from each line when it "
		"says one\n"
		"      --tee           also copy the command's output to ours\n"
		"      --join MODE     auto (default): a traceback, stack trace "
		"or indented\n"
		"                      lines join the record of their first "
		"line; none\n"
		"      --stderr-level LEVEL  level of standard error lines "
		"(default err)\n"
		"Standard output lines are recorded at info, standard error "
		"lines at err\n(or --stderr-level), then one record with the "
		"exit status, at err when it\nis not 0; exits with the "
		"command's status.  The run is kept as one: its\nstart, end, "
		"status and output (logsponge jobs).\n");
}

/* A run under way: the spool, the two streams' adders, the command,
 * its job's timeout. */
typedef struct run_ctx {
	sponge *sp;
	adder ad[2];
	bool tee;
	pid_t pid;
	int64_t t0;
	sponge_job job;
	int64_t deadline;   /* sponge_now() past which it timed out (0: none) */
	int64_t kill_at;    /* then SIGKILL, after SIGTERM (0: not yet) */
	bool timed_out;
} run_ctx;

/* While the tee's reader is slow: pass signals on, commit what is
 * queued; after a signal stop copying (the command may be ending). */
static bool run_tee_wait(void *ctx)
{
	adder *a = ctx;
	if (pending_signal)
		return false;
	if (sponge_queued(a->sp) || adder_pending(a))
		adder_sync(a);
	return true;
}

static void pass_signal(pid_t pid)
{
	if (pending_signal) {
		kill(-pid, pending_signal);
		pending_signal = 0;
	}
}

/* Past the job's timeout: said once (at err), and with kill = yes the
 * command is sent SIGTERM, then SIGKILL 10 s later. */
static void check_timeout(run_ctx *r)
{
	int64_t now = sponge_now();
	if (!r->deadline || now < r->deadline)
		return;
	if (!r->timed_out) {
		char msg[256], span[32];
		r->timed_out = true;
		sponge_format_span(r->job.timeout_us, span, sizeof span);
		snprintf(msg, sizeof msg, "still running after %s (timeout of "
					  "[job %s])%s",
			 span, r->job.name, r->job.kill ? "; stopping it" : "");
		join_flush(&r->ad[0]);
		join_flush(&r->ad[1]);
		int level = r->ad[1].level; /* (the stream's own after it) */
		r->ad[1].level = SPONGE_ERR;
		adder_record(&r->ad[1], msg, strlen(msg), 0);
		r->ad[1].level = level;
		adder_sync(&r->ad[1]);
		if (r->job.kill) {
			kill(-r->pid, SIGTERM);
			r->kill_at = now + 10000000;
		}
	}
	if (r->kill_at && now >= r->kill_at) {
		kill(-r->pid, SIGKILL);
		r->kill_at = 0;
	}
	r->deadline = r->kill_at; /* what is left to do, if anything */
}

/* How long poll may wait: until a pause commits what is held, or the
 * deadline (-1: for ever). */
static int poll_wait(const run_ctx *r, bool held)
{
	int ms = held ? BATCH_MS : -1;
	if (r->deadline) {
		int64_t left = (r->deadline - sponge_now()) / 1000 + 1;
		if (left < 0)
			left = 0;
		if (ms < 0 || left < ms)
			ms = left > 60000 ? 60000 : (int)left;
	}
	return ms;
}

/* Read one stream's ready bytes into its adder (and the tee). */
static void read_stream(run_ctx *r, int fds[2], int i, char *buf)
{
	adder *ad = r->ad;
	ssize_t n = read(fds[i], buf, READ_SIZE);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(fds[i]);
		fds[i] = -1;
		adder_finish(&ad[i]);
		return;
	}
	/* records keep the order their lines came in, across the two
	 * streams: what the other one holds is done */
	join_flush(&ad[1 - i]);
	adder_feed(&ad[i], buf, (size_t)n);
	if (r->tee && !*ad[i].spool_rc)
		tee_out(i ? STDERR_FILENO : STDOUT_FILENO, buf, (size_t)n,
			&r->tee, run_tee_wait, &ad[i]);
}

/* Read both pipes until both end; commit when the output pauses.  After a
 * spool error the adders pass lines on instead, and reading goes on, so
 * the command is never blocked on a full pipe. */
static void pump(run_ctx *r, int fds[2])
{
	char *buf = malloc(READ_SIZE);
	if (!buf) {
		errorf("run: out of memory");
		return;
	}
	while (fds[0] >= 0 || fds[1] >= 0) {
		pass_signal(r->pid);
		check_timeout(r);
		struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
		bool held = sponge_queued(r->sp) || adder_pending(&r->ad[0]) ||
			    adder_pending(&r->ad[1]);
		int n = poll(p, 2, poll_wait(r, held));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) { /* a pause: what is held is complete */
			join_flush(&r->ad[1]);
			adder_sync(&r->ad[0]);
			continue;
		}
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0 &&
			    (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				read_stream(r, fds, i, buf);
	}
	free(buf);
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Start cmd in its own process group (so that a signal passed on reaches
 * everything it started, a shell script's children too), its stdout and
 * stderr on out and err when they are >= 0.  Returns 0 or an errno. */
static int spawn(char **cmd, int out, int err, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (out >= 0)
		posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (err >= 0)
		posix_spawn_file_actions_adddup2(&fa, err, 2);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	int e = posix_spawnp(pid, cmd[0], &fa, &at, cmd, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

/* The command's wait status; the timeout is kept while it ends (a
 * command may close its output and go on). */
static int wait_status(run_ctx *r)
{
	int ws = 0;
	for (;;) {
		pid_t got = waitpid(r->pid, &ws, r->deadline ? WNOHANG : 0);
		if (got == r->pid || (got < 0 && errno != EINTR))
			return ws;
		pass_signal(r->pid);
		check_timeout(r);
		if (got == 0)
			usleep(20000);
	}
}

static int exit_status_of(int ws)
{
	return WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
}

/* The spool cannot be used: run the command all the same, its output
 * going where ours goes (cron mails it), and exit with its status. */
static int run_unrecorded(char **cmd)
{
	int e = findable(cmd[0]);
	pid_t pid = -1;
	if (!e)
		e = spawn(cmd, -1, -1, &pid);
	if (e) {
		errorf("run: %s: %s", cmd[0], strerror(e));
		return e == ENOENT ? 127 : 126;
	}
	catch_signals();
	run_ctx r = {.pid = pid};
	return exit_status_of(wait_status(&r));
}

typedef struct run_opts {
	const char *tag;
	char job[65];
	bool detect, tee, join;
	int err_level;      /* -1: the job's, else err */
} run_opts;

/* The job's name: -j, else the command's base name, its characters
 * that a job's name cannot hold as '_'. */
static void job_name(run_opts *o, const char *given, const char *cmd)
{
	const char *slash = strrchr(cmd, '/');
	snprintf(o->job, sizeof o->job, "%s",
		 given ? given : slash ? slash + 1 : cmd);
	for (char *p = o->job; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-@+:", *p)))
			*p = '_';
	if (!o->job[0])
		snprintf(o->job, sizeof o->job, "run");
}

/* run's options into o: -1, or the exit status to return at once. */
static int run_options(globals *g, int argc, char **argv, run_opts *o)
{
	static const struct option opts[] = {
		{"job", required_argument, NULL, 'j'},
		{"tag", required_argument, NULL, 't'},
		{"detect-level", no_argument, NULL, 'd'},
		{"tee", no_argument, NULL, 'T'},
		{"join", required_argument, NULL, 'J'},
		{"stderr-level", required_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (run_opts){NULL, "", false, false, true, -1};
	const char *job = NULL;
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+j:t:dh", opts)) != -1) {
		switch (c) {
		case 'j': job = optarg; break;
		case 't': o->tag = optarg; break;
		case 'd': o->detect = true; break;
		case 'T': o->tee = true; break;
		case 'J':
			if (!parse_join_opt("run", optarg, &o->join))
				return EXIT_USAGE;
			break;
		case 'E':
			if (!parse_level_opt("run: --stderr-level", optarg,
					     &o->err_level))
				return EXIT_USAGE;
			break;
		case 'h': run_usage(stdout); return 0;
		default: return option_error("run", "+j:t:dh", argv);
		}
	}
	if (optind >= argc) {
		errorf("run: no command given (logsponge run -- COMMAND "
		       "[ARG...])");
		return EXIT_USAGE;
	}
	job_name(o, job, argv[optind]);
	if (!o->tag)
		o->tag = o->job;
	return -1;
}

/* The command could not start: said, recorded at err; 127 or 126. */
static int not_started(run_ctx *r, const char *prog, int e)
{
	char msg[512];
	int status = e == ENOENT ? 127 : 126;
	snprintf(msg, sizeof msg, "cannot run \"%s\": %s", prog, strerror(e));
	errorf("run: %s: %s", prog, strerror(e));
	sponge_run_end(r->sp, status, 0, 0);
	r->ad[1].level = SPONGE_ERR;
	adder_record(&r->ad[1], msg, strlen(msg), 0);
	return status;
}

/* The command ran: how it ended, recorded after its output (at err when
 * it failed, whatever --stderr-level says), its run ended with it; its
 * exit status. */
static int ended(run_ctx *r, const char *prog, int ws)
{
	char msg[512];
	double secs = (double)(sponge_now() - r->t0) / 1e6;
	int exit_status = exit_status_of(ws);
	if (WIFSIGNALED(ws))
		snprintf(msg, sizeof msg,
			 "\"%s\" was killed by signal %d (%s) after %.1fs",
			 prog, WTERMSIG(ws), strsignal(WTERMSIG(ws)), secs);
	else
		snprintf(msg, sizeof msg,
			 "\"%s\" exited with status %d after %.1fs", prog,
			 exit_status, secs);
	/* once the spool has failed the line goes to stderr with the rest */
	adder *st = exit_status || r->timed_out ? &r->ad[1] : &r->ad[0];
	st->now = 0;
	st->detect = false;
	join_flush(&r->ad[0]); /* the output's last records first */
	join_flush(&r->ad[1]);
	sponge_run_end(r->sp, WIFSIGNALED(ws) ? 0 : exit_status,
		       WIFSIGNALED(ws) ? WTERMSIG(ws) : 0, r->timed_out);
	if (exit_status || r->timed_out)
		st->level = SPONGE_ERR;
	adder_record(st, msg, strlen(msg), 0);
	return exit_status;
}

/* Run cmd with its stdout and stderr read into r->ad[0] and r->ad[1]. */
static int run_recorded(run_ctx *r, char **cmd)
{
	/* Find the command first: posix_spawnp reports a missing program only
	 * as exit status 127 on some systems (valgrind, older libcs). */
	int e = findable(cmd[0]);
	int out[2] = {-1, -1}, err[2] = {-1, -1};
	r->t0 = sponge_now();
	if (!e && (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)))
		e = errno;
	if (!e)
		e = spawn(cmd, out[1], err[1], &r->pid);
	if (out[1] >= 0)
		close(out[1]);
	if (err[1] >= 0)
		close(err[1]);
	if (e) {
		if (out[0] >= 0)
			close(out[0]);
		if (err[0] >= 0)
			close(err[0]);
		return not_started(r, cmd[0], e);
	}
	catch_signals();
	if (r->job.timeout_us)
		r->deadline = r->t0 + r->job.timeout_us;
	int fds[2] = {out[0], err[0]};
	pump(r, fds);
	return ended(r, cmd[0], wait_status(r));
}

/* transport = stdout: the message on our standard output (where cron
 * mails it). */
static int write_message(void *arg, const char *buf, size_t len)
{
	(void)arg;
	fflush(stdout);
	return write_all(STDOUT_FILENO, buf, len) ? 0 : -1;
}

/* A job whose runs mail at once ([job] mail = failure or always): the
 * flush, as the policy decides with this run in; a failure is said, the
 * records stay for the next flush. */
static void mail_now(run_ctx *r, int exit_status)
{
	bool failed = exit_status || r->timed_out;
	if (r->job.mail == SPONGE_JOB_MAIL_NEVER ||
	    (r->job.mail == SPONGE_JOB_MAIL_FAILURE && !failed))
		return;
	sponge_flush_result res;
	int rc = sponge_flush(r->sp, 0, write_message, NULL, &res);
	if (rc != SPONGE_OK)
		errorf("run: mailing the run: %s; its records wait in the "
		       "spool", sponge_errmsg(r->sp));
}

int cmd_run(globals *g, int argc, char **argv)
{
	run_opts o;
	int status = run_options(g, argc, argv, &o);
	if (status >= 0)
		return status;
	status = 0;
	char **cmd = argv + optind;
	sponge *sp = open_spool(g, USE_INGEST, &status,
				"; running the command with its output passed "
				"through, not recorded");
	if (!sp)
		return run_unrecorded(cmd);
	run_ctx r = {.sp = sp, .tee = o.tee};
	sponge_job_get(sp, o.job, &r.job, NULL);
	if (o.err_level < 0)
		o.err_level = r.job.stderr_level >= 0 ? r.job.stderr_level
						      : SPONGE_ERR;
	sponge_set_batch(sp, BATCH_RECORDS, BATCH_BYTES, BATCH_MS);
	adder *ad = r.ad;
	adder_init(&ad[0], sp, o.tag, SPONGE_INFO, o.detect,
		   SPONGE_FORMAT_TEXT, STDOUT_FILENO, "run");
	adder_init(&ad[1], sp, o.tag, o.err_level, o.detect,
		   SPONGE_FORMAT_TEXT, STDERR_FILENO, "run");
	ad[1].spool_rc = &ad[0].rc; /* one spool: one failure for both */
	ad[0].join = ad[1].join = o.join;
	if (sponge_run_begin(sp, o.job, (int64_t)getpid(), NULL) != SPONGE_OK)
		errorf("run: the run of %s is not kept as one: %s", o.job,
		       sponge_errmsg(sp));
	int exit_status = run_recorded(&r, cmd);
	join_flush(&ad[1]);
	finish_adding(&ad[0], 0);
	if (!ad[0].rc)
		mail_now(&r, exit_status);
	adder_free(&ad[0]);
	adder_free(&ad[1]);
	sponge_close(sp);
	/* the command's status goes through, whatever became of the spool
	 * (a failure of the spool was said on stderr) */
	return exit_status;
}
