/* transport_sendmail.c - pipe the message to a sendmail command (by
 * default /usr/sbin/sendmail -oi -t), bounded by sendmail.timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sigpipe.h"
#include "flush.h"

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

/* Start "/bin/sh -c cmd" in a process group of its own (a timeout kills
 * all it started), its stdin and stdout+stderr on non-blocking pipes in
 * pc.  Returns 0 or an errno (what failed in r->reply). */
static int spawn_command(const char *cmd, pipe_ctx *pc, pid_t *pid,
			 sp_send_result *r)
{
	int in[2] = {-1, -1}, err[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		int e = errno;
		sb_printf(&r->reply, "pipe: %s", strerror(e));
		for (int i = 0; i < 2; i++)
			if (in[i] >= 0)
				close(in[i]);
		return e;
	}
	int e = sp_spawn_sh(cmd, (const int[3]){in[0], err[1], err[1]}, pid);
	close(in[0]);
	close(err[1]);
	if (e != 0) {
		close(in[1]);
		close(err[0]);
		sb_printf(&r->reply, "cannot run /bin/sh: %s", strerror(e));
		return e;
	}
	pc->in = in[1];
	pc->err = err[0];
	fcntl(pc->in, F_SETFL, O_NONBLOCK);
	fcntl(pc->err, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Stream the message into the command; one that exits early is an error,
 * not SIGPIPE. */
static int write_message(sp_composer *c, pipe_ctx *pc)
{
	sp_pipe_guard g;
	sp_pipe_block(&g);
	int rc = sp_send_stream(c, true, pipe_write, pc);
	close(pc->in);
	pc->in = -1;
	sp_pipe_restore(&g);
	return rc;
}

/* Read what the command says until it exits, within the deadline (then
 * its process group is killed); its exit status, and what it said on one
 * line in pc->errbuf. */
static int wait_command(pipe_ctx *pc, pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		int left = (int)((pc->deadline - sponge_now()) / 1000);
		if (left <= 0) {
			pc->timed_out = true;
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		struct pollfd f = {pc->err, POLLIN, 0};
		if (pc->err >= 0 && poll(&f, 1, left < 50 ? left : 50) > 0)
			drain(pc);
		else if (pc->err < 0)
			usleep(10000);
	}
	drain(pc);
	while (pc->errlen && (pc->errbuf[pc->errlen - 1] == '\n' ||
			      pc->errbuf[pc->errlen - 1] == '\r'))
		pc->errlen--;
	pc->errbuf[pc->errlen] = '\0';
	for (char *q = pc->errbuf; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	return status;
}

/* What the command's end means: sent, or a classified failure. */
static void judge(sponge *sp, sp_composer *c, const pipe_ctx *pc,
		  const char *cmd, int status, int rc, sp_send_result *r)
{
	r->outcome = SP_TEMPORARY;
	if (pc->timed_out) {
		sb_printf(&r->reply, "\"%s\" did not finish within "
				     "sendmail.timeout (killed)", cmd);
	} else if (WIFSIGNALED(status)) {
		sb_printf(&r->reply, "\"%s\" was killed by signal %d", cmd,
			  WTERMSIG(status));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
		   WEXITSTATUS(status) < 128 + 65) {
		/* the shell's way of saying its command died of a signal */
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
			  pc->write_errno ? strerror(pc->write_errno)
					  : sponge_errmsg(sp));
	} else {
		r->outcome = SP_SENT;
		r->stage = "";
		sb_printf(&r->reply, "\"%s\" exited with status 0", cmd);
	}
	if (r->outcome != SP_SENT && pc->errlen)
		sb_printf(&r->reply, ": %s", pc->errbuf);
}

static int send_sendmail(sponge *sp, void *link, sp_composer *c,
			 sp_send_result *r, sponge_writer out, void *arg)
{
	(void)link, (void)out, (void)arg;
	/* the default command gets the envelope sender (-f), else it would
	 * be the user running the flush; quoted for the shell */
	spbuf def;
	sb_init(&def, 0);
	sb_adds(&def, "/usr/sbin/sendmail -oi -t");
	if (sp->cfg.from_addr) {
		sb_adds(&def, " -f '");
		for (const char *a = sp->cfg.from_addr; *a; a++)
			sb_adds(&def, *a == '\'' ? "'\\''" : (char[]){*a, 0});
		sb_addc(&def, '\'');
	}
	const char *cmd = sp->cfg.sendmail_cmd ? sp->cfg.sendmail_cmd
					       : def.data;
	pipe_ctx pc;
	memset(&pc, 0, sizeof pc);
	pc.sp = sp;
	pc.in = pc.err = -1;
	r->stage = "sendmail";
	pid_t pid;
	if (def.failed || spawn_command(cmd, &pc, &pid, r) != 0) {
		r->outcome = SP_LOCAL;
		sb_free(&def);
		return sp_send_failed(sp, r, "sendmail");
	}
	pc.deadline = sponge_now() + sp->cfg.sendmail_timeout_us;
	int rc = write_message(c, &pc);
	int status = wait_command(&pc, pid);
	if (pc.err >= 0)
		close(pc.err);
	judge(sp, c, &pc, cmd, status, rc, r);
	sb_free(&def);
	return r->outcome == SP_SENT ? SPONGE_OK
				     : sp_send_failed(sp, r, "sendmail");
}

/* The command's program exists and may be run: an absolute or relative
 * path as it is, a bare name along PATH (what /bin/sh -c would find).  A
 * first word that is a shell construct (VAR=x, a builtin) is left to the
 * shell. */
static bool sendmail_ready(const sp_config *c, spbuf *why)
{
	const char *cmd = c->sendmail_cmd ? c->sendmail_cmd
					  : "/usr/sbin/sendmail";
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	size_t n = strcspn(cmd, " \t");
	char prog[512];
	if (!n || n >= sizeof prog || memchr(cmd, '=', n) ||
	    strpbrk(cmd, "'\"$`\\;|&<>(){}") == cmd)
		return true;
	memcpy(prog, cmd, n);
	prog[n] = '\0';
	if (strchr(prog, '/')) {
		if (access(prog, X_OK) == 0)
			return true;
		sb_printf(why, "sendmail.command: %s: %s", prog, strerror(errno));
		return false;
	}
	const char *path = getenv("PATH");
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t k = strcspn(p, ":");
		char full[1024];
		snprintf(full, sizeof full, "%.*s/%s", (int)k, k ? p : ".", prog);
		if (access(full, X_OK) == 0)
			return true;
		p += k + (p[k] == ':');
	}
	sb_printf(why, "sendmail.command: %s: not found in PATH", prog);
	return false;
}

const sp_transport sp_transport_sendmail = {
	.name = "sendmail", .ready = sendmail_ready, .send = send_sendmail};

