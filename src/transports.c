/* transports.c - the transports without SMTP: sendmail, maildir, stdout,
 * null.  Each reports success or a classified failure; flush.c keeps the
 * commit-or-keep rule for all of them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flush.h"

extern char **environ;

/* ---- streaming, with CRLF turned into LF for Unix mail tools ------- */

typedef struct lf_state {
	sponge_writer out;
	void *arg;
	bool cr;    /* the previous chunk ended in CR */
} lf_state;

/* The composer only ever writes CR as part of CRLF. */
static int lf_write(lf_state *st, const char *p, size_t n)
{
	if (st->cr && n && p[0] != '\n' && st->out(st->arg, "\r", 1) != 0)
		return -1;
	st->cr = false;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\r')
			continue;
		if (i > start && st->out(st->arg, p + start, i - start) != 0)
			return -1;
		if (i + 1 == n)
			st->cr = true;
		else if (p[i + 1] != '\n' && st->out(st->arg, "\r", 1) != 0)
			return -1;
		start = i + 1;
	}
	return n > start ? st->out(st->arg, p + start, n - start) : 0;
}

int sp_send_stream(sp_composer *c, bool lf, sponge_writer out, void *arg)
{
	int rc = sp_compose_rewind(c);
	lf_state st = {out, arg, false};
	size_t n;
	const char *p;
	while (rc == SPONGE_OK && (p = sp_compose_next(c, &n)) != NULL) {
		int w = !out ? 0 : lf ? lf_write(&st, p, n) : out(arg, p, n);
		if (w != 0)
			return sp_fail(c->sp, SPONGE_EIO, "%s",
				       c->sp->err.len ? c->sp->err.data
						      : "writing the message "
							"failed");
	}
	return rc != SPONGE_OK ? rc : c->rc;
}

/* ---- null and stdout ------------------------------------------------ */

static int send_null(sponge *sp, sp_composer *c, sp_send_result *r,
		     bool probe, sponge_writer out, void *arg)
{
	(void)sp, (void)out, (void)arg;
	if (probe) { /* nothing to connect to: nothing to check */
		r->outcome = SP_SENT;
		return SPONGE_OK;
	}
	int rc = sp_send_stream(c, false, NULL, NULL);
	if (rc)
		r->outcome = SP_LOCAL, r->stage = "compose";
	else
		r->outcome = SP_SENT;
	return rc;
}

static int send_stdout(sponge *sp, sp_composer *c, sp_send_result *r,
		       bool probe, sponge_writer out, void *arg)
{
	if (probe) { /* nothing to connect to: nothing to check */
		r->outcome = SP_SENT;
		return SPONGE_OK;
	}
	if (!out)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "transport stdout: nowhere to write");
	int rc = sp_send_stream(c, false, out, arg);
	if (rc)
		r->outcome = SP_LOCAL, r->stage = "write";
	else
		r->outcome = SP_SENT;
	return rc;
}

const sp_transport sp_transport_null = {"null", NULL, send_null};
const sp_transport sp_transport_stdout = {"stdout", NULL, send_stdout};

/* ---- sendmail ------------------------------------------------------- */

typedef struct pipe_ctx {
	sponge *sp;
	int in;             /* the command's standard input */
	int err;            /* its standard output and error */
	char errbuf[512];   /* the first of what it said */
	size_t errlen;
	int64_t deadline;
	bool timed_out;
	int write_errno;
} pipe_ctx;

static void drain(pipe_ctx *pc)
{
	char b[4096];
	ssize_t n = -1;
	while (pc->err >= 0 && (n = read(pc->err, b, sizeof b)) > 0) {
		size_t room = sizeof pc->errbuf - 1 - pc->errlen;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(pc->errbuf + pc->errlen, b, take);
		pc->errlen += take;
	}
	if (pc->err >= 0 && n == 0) {
		close(pc->err);
		pc->err = -1;
	}
}

static int pipe_write(void *arg, const char *p, size_t n)
{
	pipe_ctx *pc = arg;
	while (n) {
		int left = (int)((pc->deadline - sponge_now()) / 1000);
		if (left <= 0) {
			pc->timed_out = true;
			return -1;
		}
		struct pollfd f[2] = {{pc->in, POLLOUT, 0}, {pc->err, POLLIN, 0}};
		if (poll(f, pc->err >= 0 ? 2 : 1, left) < 0 && errno != EINTR)
			return -1;
		if (pc->err >= 0 && f[1].revents)
			drain(pc); /* it may block on a full stderr pipe */
		if (!(f[0].revents & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		ssize_t w = write(pc->in, p, n);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w < 0) {
			pc->write_errno = errno;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_sendmail(sponge *sp, sp_composer *c, sp_send_result *r,
			 bool probe, sponge_writer out, void *arg)
{
	(void)out, (void)arg;
	if (probe) { /* nothing to connect to: nothing to check */
		r->outcome = SP_SENT;
		return SPONGE_OK;
	}
	const char *cmd = sp->cfg.sendmail_cmd ? sp->cfg.sendmail_cmd
					       : "/usr/sbin/sendmail -oi -t";
	int in[2] = {-1, -1}, err[2] = {-1, -1};
	pipe_ctx pc;
	memset(&pc, 0, sizeof pc);
	pc.sp = sp;
	pc.in = pc.err = -1;
	r->stage = "sendmail";
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		r->outcome = SP_LOCAL;
		sb_printf(&r->reply, "pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, err[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = {sh, dash_c, NULL, NULL};
	char *cmdcopy = sp_strdup(cmd);
	argv[2] = cmdcopy;
	/* its own process group: a timeout kills all it started */
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	pid_t pid;
	int e = cmdcopy ? posix_spawn(&pid, "/bin/sh", &fa, &at, argv,
				      environ)
			: ENOMEM;
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	sp_free(cmdcopy);
	close(in[0]);
	close(err[1]);
	in[0] = err[1] = -1;
	if (e != 0) {
		r->outcome = SP_LOCAL;
		sb_printf(&r->reply, "cannot run /bin/sh: %s", strerror(e));
		goto out;
	}
	pc.in = in[1];
	pc.err = err[0];
	in[1] = err[0] = -1;
	fcntl(pc.in, F_SETFL, O_NONBLOCK);
	fcntl(pc.err, F_SETFL, O_NONBLOCK);
	pc.deadline = sponge_now() + sp->cfg.sendmail_timeout_us;

	/* a command that exits early must be an error, not SIGPIPE */
	sigset_t pipe_set, old_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	bool masked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set) == 0;
	int rc = sp_send_stream(c, true, pipe_write, &pc);
	close(pc.in);
	pc.in = -1;
	if (masked) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
			;
		pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	}
	/* read what it says until it exits, within the deadline */
	int status = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0) {
		int left = (int)((pc.deadline - sponge_now()) / 1000);
		if (left <= 0) {
			pc.timed_out = true;
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		struct pollfd f = {pc.err, POLLIN, 0};
		if (pc.err >= 0 && poll(&f, 1, left < 50 ? left : 50) > 0)
			drain(&pc);
		else if (pc.err < 0)
			usleep(10000);
	}
	drain(&pc);
	while (pc.errlen && (pc.errbuf[pc.errlen - 1] == '\n' ||
			     pc.errbuf[pc.errlen - 1] == '\r'))
		pc.errlen--;
	pc.errbuf[pc.errlen] = '\0';
	for (char *q = pc.errbuf; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';

	if (pc.timed_out) {
		r->outcome = SP_TEMPORARY;
		sb_printf(&r->reply, "\"%s\" did not finish within "
				     "sendmail.timeout (killed)", cmd);
	} else if (WIFSIGNALED(status)) {
		r->outcome = SP_TEMPORARY;
		sb_printf(&r->reply, "\"%s\" was killed by signal %d", cmd,
			  WTERMSIG(status));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
		   WEXITSTATUS(status) < 128 + 65) {
		/* the shell's way of saying its command died of a signal */
		r->outcome = SP_TEMPORARY;
		sb_printf(&r->reply, "\"%s\" was killed by signal %d", cmd,
			  WEXITSTATUS(status) - 128);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		int code = WEXITSTATUS(status);
		/* sendmail speaks sysexits: 75 means try again later */
		r->outcome = code == 75 ? SP_TEMPORARY : SP_PERMANENT;
		sb_printf(&r->reply, "\"%s\" exited with status %d", cmd, code);
	} else if (rc != SPONGE_OK) {
		r->outcome = c->rc ? SP_LOCAL : SP_TEMPORARY;
		sb_printf(&r->reply, "writing to \"%s\": %s", cmd,
			  pc.write_errno ? strerror(pc.write_errno)
					 : sponge_errmsg(sp));
	} else {
		r->outcome = SP_SENT;
		r->stage = "";
		sb_printf(&r->reply, "\"%s\" exited with status 0", cmd);
	}
	if (r->outcome != SP_SENT && pc.errlen)
		sb_printf(&r->reply, ": %s", pc.errbuf);
	if (r->outcome != SP_SENT)
		sp_fail(sp, SPONGE_OK, "sendmail: %s", r->reply.data);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (pc.in >= 0)
		close(pc.in);
	if (pc.err >= 0)
		close(pc.err);
	return SPONGE_OK;
}

const sp_transport sp_transport_sendmail = {"sendmail", NULL,
					     send_sendmail};

/* ---- maildir -------------------------------------------------------- */

typedef struct file_ctx {
	int fd;
	int err;
} file_ctx;

static int file_write(void *arg, const char *p, size_t n)
{
	file_ctx *f = arg;
	while (n) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			f->err = errno;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* mkdir -p, 0700 for what it creates. */
static bool ensure_parents(const char *path)
{
	char *p = sp_strdup(path);
	if (!p)
		return false;
	bool ok = true;
	for (char *q = p + 1; *q && ok; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			ok = false;
		*q = '/';
	}
	sp_free(p);
	return ok;
}

static bool ensure_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST) {
		struct stat st;
		return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	}
	return false;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* The Maildir way: write tmp/NAME, fsync, rename to new/NAME, fsync new/.
 * NAME is time.MusecPpidQcount.host, unique on this host. */
static int send_maildir(sponge *sp, sp_composer *c, sp_send_result *r,
			bool probe, sponge_writer out, void *arg)
{
	(void)out, (void)arg;
	if (probe) { /* nothing to connect to: nothing to check */
		r->outcome = SP_SENT;
		return SPONGE_OK;
	}
	static unsigned counter;
	const char *dir = sp->cfg.maildir;
	spbuf tmp, cur, nw, name;
	sb_init(&tmp, 0);
	sb_init(&cur, 0);
	sb_init(&nw, 0);
	sb_init(&name, 0);
	r->stage = "maildir";
	file_ctx f = {-1, 0};
	int64_t now = sponge_now();
	char host[256];
	size_t j = 0;
	/* "/" and ":" cannot be in a Maildir name */
	for (const char *h = sp->host; *h && j < sizeof host - 1; h++)
		host[j++] = *h == '/' || *h == ':' ? '_' : *h;
	host[j] = '\0';
	sb_printf(&name, "%lld.M%06lldP%dQ%u.%s", (long long)(now / 1000000),
		  (long long)(now % 1000000), (int)getpid(),
		  __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), host);
	sb_printf(&tmp, "%s/tmp", dir);
	sb_printf(&cur, "%s/cur", dir);
	sb_printf(&nw, "%s/new", dir);
	if (tmp.failed || nw.failed || name.failed) {
		r->outcome = SP_LOCAL;
		sb_adds(&r->reply, "out of memory");
		goto out;
	}
	errno = 0;
	if (!ensure_parents(dir) || !ensure_dir(dir) || !ensure_dir(tmp.data) || !ensure_dir(cur.data) ||
	    !ensure_dir(nw.data)) {
		r->outcome = SP_LOCAL;
		sb_printf(&r->reply, "%s: not a usable Maildir: %s", dir,
			  strerror(errno ? errno : ENOTDIR));
		goto out;
	}
	sb_printf(&tmp, "/%s", name.data);
	sb_printf(&nw, "/%s", name.data);
	f.fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				      O_CLOEXEC, 0600);
	if (f.fd < 0) {
		r->outcome = SP_LOCAL;
		sb_printf(&r->reply, "%s: %s", tmp.data, strerror(errno));
		goto out;
	}
	int rc = sp_send_stream(c, true, file_write, &f);
	if (rc == SPONGE_OK && fsync(f.fd) != 0)
		f.err = errno, rc = SPONGE_EIO;
	if (close(f.fd) != 0 && rc == SPONGE_OK)
		f.err = errno, rc = SPONGE_EIO;
	f.fd = -1;
	if (rc == SPONGE_OK && rename(tmp.data, nw.data) != 0)
		f.err = errno, rc = SPONGE_EIO;
	if (rc == SPONGE_OK) {
		*strrchr(nw.data, '/') = '\0';
		fsync_dir(nw.data);
		r->outcome = SP_SENT;
		r->stage = "";
		sb_printf(&r->reply, "delivered to %s/new/%s", dir, name.data);
	} else {
		unlink(tmp.data);
		r->outcome = SP_LOCAL;
		sb_printf(&r->reply, "%s: %s", tmp.data,
			  f.err ? strerror(f.err) : sponge_errmsg(sp));
	}
out:
	if (f.fd >= 0)
		close(f.fd);
	if (r->outcome != SP_SENT)
		sp_fail(sp, SPONGE_OK, "maildir: %s", r->reply.data);
	sb_free(&tmp);
	sb_free(&cur);
	sb_free(&nw);
	sb_free(&name);
	return SPONGE_OK;
}

static bool maildir_config_ok(const sp_config *c, spbuf *why)
{
	if (c->maildir)
		return true;
	sb_adds(why, "maildir.path is not set");
	return false;
}

const sp_transport sp_transport_maildir = {"maildir", maildir_config_ok,
					    send_maildir};

/* ---- the registry --------------------------------------------------- */

static const sp_transport *const registry[] = {
	&sp_transport_smtp, &sp_transport_sendmail, &sp_transport_maildir,
	&sp_transport_stdout, &sp_transport_null,
};
#define NTRANSPORTS (sizeof registry / sizeof registry[0])

const sp_transport *sp_transport_find(const char *name)
{
	for (size_t i = 0; name && i < NTRANSPORTS; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const char *sp_transport_names(void)
{
	static char names[128];
	if (!names[0]) {
		size_t n = 0;
		for (size_t i = 0; i < NTRANSPORTS; i++)
			n += (size_t)snprintf(names + n, sizeof names - n,
					      "%s%s", i ? ", " : "",
					      registry[i]->name);
	}
	return names;
}
