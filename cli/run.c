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
		"  -t, --tag TAG       tag of the records (default: the "
		"command's name)\n"
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
		"command's status.\n");
}

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

/* Read both pipes until both end; commit when the output pauses.  After a
 * spool error the adders pass lines on instead, and reading goes on, so
 * the command is never blocked on a full pipe. */
static void pump(sponge *sp, int fds[2], adder ad[2], bool tee, pid_t pid)
{
	char *buf = malloc(READ_SIZE);
	if (!buf) {
		errorf("run: out of memory");
		return;
	}
	while (fds[0] >= 0 || fds[1] >= 0) {
		pass_signal(pid);
		struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
		bool held = sponge_queued(sp) || adder_pending(&ad[0]) ||
			    adder_pending(&ad[1]);
		int r = poll(p, 2, held ? BATCH_MS : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) { /* a pause: what is held is complete */
			join_flush(&ad[1]);
			adder_sync(&ad[0]);
			continue;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP |
							     POLLERR)))
				continue;
			ssize_t n = read(fds[i], buf, READ_SIZE);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(fds[i]);
				fds[i] = -1;
				adder_finish(&ad[i]);
				continue;
			}
			/* records keep the order their lines came in, across
			 * the two streams: what the other one holds is done */
			join_flush(&ad[1 - i]);
			adder_feed(&ad[i], buf, (size_t)n);
			if (tee && !*ad[i].spool_rc)
				tee_out(i ? STDERR_FILENO : STDOUT_FILENO, buf,
					(size_t)n, &tee, run_tee_wait, &ad[i]);
		}
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

static int wait_status(pid_t pid)
{
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		pass_signal(pid);
	return ws;
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
	return exit_status_of(wait_status(pid));
}

typedef struct run_opts {
	const char *tag;
	bool detect, tee, join;
	int err_level;
} run_opts;

/* run's options into o: -1, or the exit status to return at once. */
static int run_options(globals *g, int argc, char **argv, run_opts *o)
{
	static const struct option opts[] = {
		{"tag", required_argument, NULL, 't'},
		{"detect-level", no_argument, NULL, 'd'},
		{"tee", no_argument, NULL, 'T'},
		{"join", required_argument, NULL, 'J'},
		{"stderr-level", required_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (run_opts){NULL, false, false, true, SPONGE_ERR};
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+t:dh", opts)) != -1) {
		switch (c) {
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
		default: return option_error("run", "+t:dh", argv);
		}
	}
	if (optind >= argc) {
		errorf("run: no command given (logsponge run -- COMMAND "
		       "[ARG...])");
		return EXIT_USAGE;
	}
	return -1;
}

/* The command could not start: said, recorded at err; 127 or 126. */
static int not_started(adder *err_ad, const char *prog, int e)
{
	char msg[512];
	snprintf(msg, sizeof msg, "cannot run \"%s\": %s", prog, strerror(e));
	errorf("run: %s: %s", prog, strerror(e));
	err_ad->level = SPONGE_ERR;
	adder_record(err_ad, msg, strlen(msg), 0);
	return e == ENOENT ? 127 : 126;
}

/* The command ran: how it ended, recorded after its output (at err when
 * it failed, whatever --stderr-level says); its exit status. */
static int ended(adder ad[2], const char *prog, int ws, int64_t t0)
{
	char msg[512];
	double secs = (double)(sponge_now() - t0) / 1e6;
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
	adder *st = exit_status ? &ad[1] : &ad[0];
	st->now = 0;
	st->detect = false;
	join_flush(&ad[0]); /* the output's last records first */
	join_flush(&ad[1]);
	if (exit_status)
		st->level = SPONGE_ERR;
	adder_record(st, msg, strlen(msg), 0);
	return exit_status;
}

/* Run cmd with its stdout and stderr read into ad[0] and ad[1]. */
static int run_recorded(sponge *sp, char **cmd, adder ad[2], bool tee)
{
	/* Find the command first: posix_spawnp reports a missing program only
	 * as exit status 127 on some systems (valgrind, older libcs). */
	int e = findable(cmd[0]);
	int out[2] = {-1, -1}, err[2] = {-1, -1};
	int64_t t0 = sponge_now();
	pid_t pid = -1;
	if (!e && (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)))
		e = errno;
	if (!e)
		e = spawn(cmd, out[1], err[1], &pid);
	if (out[1] >= 0)
		close(out[1]);
	if (err[1] >= 0)
		close(err[1]);
	if (e) {
		if (out[0] >= 0)
			close(out[0]);
		if (err[0] >= 0)
			close(err[0]);
		return not_started(&ad[1], cmd[0], e);
	}
	catch_signals();
	int fds[2] = {out[0], err[0]};
	pump(sp, fds, ad, tee, pid);
	return ended(ad, cmd[0], wait_status(pid), t0);
}

int cmd_run(globals *g, int argc, char **argv)
{
	run_opts o;
	int status = run_options(g, argc, argv, &o);
	if (status >= 0)
		return status;
	status = 0;
	char **cmd = argv + optind;
	if (!o.tag) {
		const char *slash = strrchr(cmd[0], '/');
		o.tag = slash ? slash + 1 : cmd[0];
	}
	sponge *sp = open_spool(g, USE_INGEST, &status,
				"; running the command with its output passed "
				"through, not recorded");
	if (!sp)
		return run_unrecorded(cmd);
	sponge_set_batch(sp, BATCH_RECORDS, BATCH_BYTES, BATCH_MS);
	adder ad[2];
	adder_init(&ad[0], sp, o.tag, SPONGE_INFO, o.detect,
		   SPONGE_FORMAT_TEXT, STDOUT_FILENO, "run");
	adder_init(&ad[1], sp, o.tag, o.err_level, o.detect,
		   SPONGE_FORMAT_TEXT, STDERR_FILENO, "run");
	ad[1].spool_rc = &ad[0].rc; /* one spool: one failure for both */
	ad[0].join = ad[1].join = o.join;
	int exit_status = run_recorded(sp, cmd, ad, o.tee);
	join_flush(&ad[1]);
	finish_adding(&ad[0], 0);
	adder_free(&ad[0]);
	adder_free(&ad[1]);
	sponge_close(sp);
	/* the command's status goes through, whatever became of the spool
	 * (a failure of the spool was said on stderr) */
	return exit_status;
}
