/* command.c - running a command of the config with every wait bounded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sigpipe.h"
#include "internal.h"

extern char **environ;

/* Read what is there now (fd non-blocking) into out, counting every byte
 * in *total; false once more than cap came. */
static bool take(int *fd, spbuf *out, size_t *total, size_t cap)
{
	char b[1024];
	for (;;) {
		ssize_t n = read(*fd, b, sizeof b);
		if (n > 0) {
			*total += (size_t)n;
			if (*total > cap)
				return false;
			sb_add(out, b, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			close(*fd); /* end of output, or an error: stop */
			*fd = -1;
		}
		return true;
	}
}

/* The first line of what the command said on stderr, for the message. */
static void add_said(spbuf *why, const spbuf *err)
{
	size_t n = 0;
	while (n < err->len && n < 200 && err->data[n] != '\n')
		n++;
	if (!n)
		return;
	sb_adds(why, ": ");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)err->data[i];
		sb_addc(why, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
	}
}

int sp_spawn_sh(const char *cmd, const int fds[3], pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int k = 0; k < 3; k++)
		if (fds[k] < 0)
			posix_spawn_file_actions_addopen(&fa, k, "/dev/null",
							 k ? O_WRONLY : O_RDONLY,
							 0);
		else
			posix_spawn_file_actions_adddup2(&fa, fds[k], k);
	/* its own process group: a timeout kills all it started */
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	char sh[] = "sh", dash_c[] = "-c";
	char *copy = sp_strdup(cmd);
	char *argv[] = {sh, dash_c, copy, NULL};
	int e = copy ? posix_spawn(pid, "/bin/sh", &fa, &at, argv, environ)
		     : ENOMEM;
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	sp_free(copy);
	return e;
}

/* Start `/bin/sh -c cmd` in a process group of its own, stdin
 * /dev/null, stdout and stderr on two pipes (fd[0], fd[1]: the read
 * ends, non-blocking).  Returns 0 or an errno. */
static int start(const char *cmd, pid_t *pid, int fd[2])
{
	int p[2], q[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	if (pipe2(q, O_CLOEXEC) != 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	/* its stderr is ours to read too: never the caller's, which a
	 * child it leaves behind would hold open (cron waits for it) */
	int e = sp_spawn_sh(cmd, (const int[3]){-1, p[1], q[1]}, pid);
	close(p[1]);
	close(q[1]);
	fd[0] = p[0];
	fd[1] = q[0];
	if (e) {
		close(fd[0]);
		close(fd[1]);
		return e;
	}
	fcntl(fd[0], F_SETFL, O_NONBLOCK);
	fcntl(fd[1], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Collect its output until it exits (not until the end of its output: a
 * child it left behind may hold the pipes), at most until `deadline`
 * or past `cap` bytes on either pipe (*over).  True when it exited. */
static bool collect(pid_t pid, int fd[2], spbuf *into[2], size_t cap,
		    int64_t deadline, int *status, bool *over)
{
	size_t total[2] = {0, 0};
	*over = false;
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR)) {
			/* it ended: what it wrote is in the pipes now */
			for (int i = 0; i < 2; i++)
				if (fd[i] >= 0 &&
				    !take(&fd[i], into[i], &total[i], cap))
					*over = true;
			return true;
		}
		int64_t left = (deadline - sponge_now()) / 1000;
		if (left <= 0 || *over)
			return false;
		struct pollfd f[2] = {{fd[0], POLLIN, 0}, {fd[1], POLLIN, 0}};
		if (poll(f, 2, left < 20 ? (int)left : 20) > 0)
			for (int i = 0; i < 2; i++)
				if (fd[i] >= 0 && f[i].revents &&
				    !take(&fd[i], into[i], &total[i], cap))
					*over = true;
	}
}

int sp_run_command(const char *cmd, int64_t timeout_us, size_t cap,
		   spbuf *out, spbuf *why)
{
	sb_reset(out);
	sb_reset(why);
	pid_t pid;
	int fd[2];
	int e = start(cmd, &pid, fd);
	if (e) {
		sb_printf(why, "cannot run /bin/sh: %s", strerror(e));
		return sp_errno_code(e, SPONGE_EIO);
	}
	spbuf err;
	sb_init(&err, cap);
	spbuf *into[2] = {out, &err};
	int status = 0, rc = SPONGE_OK;
	bool over;
	bool exited = collect(pid, fd, into, cap, sponge_now() + timeout_us,
			      &status, &over);
	if (!exited || over) {
		kill(-pid, SIGKILL);
		if (!exited)
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
	}
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	char t[32];
	sponge_format_span(timeout_us, t, sizeof t);
	if (over) {
		sb_printf(why, "printed more than %zu bytes (killed)", cap);
		rc = SPONGE_ECONFIG;
	} else if (!exited) {
		sb_printf(why, "did not finish within %s (killed with the "
			       "processes it started)", t);
		rc = SPONGE_ETEMPFAIL;
	} else if (WIFSIGNALED(status)) {
		sb_printf(why, "killed by signal %d", WTERMSIG(status));
		rc = SPONGE_ECONFIG;
	} else if (WEXITSTATUS(status) != 0) {
		sb_printf(why, "exited with status %d", WEXITSTATUS(status));
		add_said(why, &err);
		rc = SPONGE_ECONFIG;
	}
	sb_free(&err);
	if (out->failed && rc == SPONGE_OK) {
		sb_adds(why, "out of memory");
		rc = SPONGE_ENOMEM;
	}
	return rc;
}

void sp_pipe_block(sp_pipe_guard *g)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	g->blocked = pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0;
}

void sp_pipe_restore(sp_pipe_guard *g)
{
	if (!g->blocked)
		return;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	g->blocked = false;
}
