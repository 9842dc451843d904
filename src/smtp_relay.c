/* smtp_relay.c - the transaction relay between libESMTP and our
 * connection (see smtp_relay.h).  Only descriptors this file opened are
 * read, written or closed here. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "sigpipe.h"
#include "smtp_relay.h"

/* Ready to read from fd, or told to stop, or out of time: 1, 0, -1. */
static int wait_in(smtp_relay *rl, int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = (deadline - sponge_now()) / 1000;
		if (left <= 0)
			return 0;
		struct pollfd p[2] = {{fd, POLLIN, 0}, {rl->stop[0], POLLIN, 0}};
		int r = poll(p, 2, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[1].revents)
			return -1;
		if (p[0].revents)
			return 1;
	}
}

/* ---- libESMTP's side ------------------------------------------------- */

typedef struct lside {
	smtp_relay *rl;
	spbuf in;      /* read, not yet used */
	int64_t deadline;
} lside;

static bool l_send(lside *l, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(l->rl->fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			if (sc_wait(l->rl->fd, POLLOUT, l->deadline) != 1)
				return false;
			continue;
		}
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* More bytes from libESMTP into l->in: false at its end or on timeout. */
static bool l_fill(lside *l)
{
	char buf[32768];
	for (;;) {
		ssize_t k = read(l->rl->fd, buf, sizeof buf);
		if (k > 0)
			return sb_add(&l->in, buf, (size_t)k);
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			return false;
		if (errno == EAGAIN && wait_in(l->rl, l->rl->fd, l->deadline) != 1)
			return false;
	}
}

/* One command line (CRLF kept) into line. */
static bool l_line(lside *l, spbuf *line)
{
	char *nl;
	while (!(nl = memchr(l->in.data, '\n', l->in.len)))
		if (l->in.len > 4096 || !l_fill(l))
			return false;
	size_t n = (size_t)(nl - l->in.data) + 1;
	sb_reset(line);
	sb_add(line, l->in.data, n);
	memmove(l->in.data, l->in.data + n, l->in.len - n);
	l->in.len -= n;
	return !line->failed;
}

/* ---- the session ------------------------------------------------------ */

/* Admission: every local connection to the relay's port is greeted and
 * waited on at the same time; the first whose first line is the EHLO
 * naming our token is libESMTP's.  A silent or wrong one never holds the
 * others back (at most CANDIDATES wait at once, the oldest giving way). */
#define CANDIDATES 8

typedef struct candidate {
	int fd;
	size_t n;
	char line[96];
} candidate;

static void drop(candidate *cs, int *nc, int i)
{
	close(cs[i].fd);
	memmove(cs + i, cs + i + 1, (size_t)(*nc - i - 1) * sizeof *cs);
	(*nc)--;
}

/* A new connection: greeted, and waited on. */
static void take(smtp_relay *rl, candidate *cs, int *nc)
{
	int fd = accept4(rl->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* the connection stays pending: waiting would spin */
		rl->out_of_fds = true;
		sb_reset(&rl->broke);
		sb_printf(&rl->broke, "accepting libESMTP's connection: %s",
			  strerror(errno));
		return;
	}
	if (fd < 0)
		return;
	static const char hello[] = "220 logsponge relay\r\n";
	if (send(fd, hello, sizeof hello - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof hello - 1) {
		close(fd);
		return;
	}
	if (*nc == CANDIDATES)
		drop(cs, nc, 0);
	cs[(*nc)++] = (candidate){fd, 0, ""};
}

/* Bytes from candidate i: true when it sent the line we wait for (any
 * bytes after it go to l->in); a wrong line, or its end, drops it. */
static bool hear(lside *l, candidate *cs, int *nc, int i, const char *want)
{
	candidate *c = &cs[i];
	ssize_t k = read(c->fd, c->line + c->n, sizeof c->line - 1 - c->n);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (k <= 0) {
		drop(cs, nc, i);
		return false;
	}
	c->n += (size_t)k;
	c->line[c->n] = '\0';
	char *nl = memchr(c->line, '\n', c->n);
	size_t wl = strlen(want);
	if (!nl) {
		if (c->n == sizeof c->line - 1)
			drop(cs, nc, i); /* too long for the line we want */
		return false;
	}
	if ((size_t)(nl - c->line) + 1 != wl || memcmp(c->line, want, wl)) {
		drop(cs, nc, i);
		return false;
	}
	l->rl->fd = c->fd;
	sb_add(&l->in, nl + 1, c->n - wl);
	memmove(cs + i, cs + i + 1, (size_t)(*nc - i - 1) * sizeof *cs);
	(*nc)--;
	return true;
}

/* Wait on the listener, the stop pipe and every candidate at once. */
static int wait_any(smtp_relay *rl, const candidate *cs, int nc,
		    struct pollfd *p, int64_t deadline)
{
	for (;;) {
		int64_t left = (deadline - sponge_now()) / 1000;
		if (left <= 0)
			return 0;
		p[0] = (struct pollfd){rl->listen_fd, POLLIN, 0};
		p[1] = (struct pollfd){rl->stop[0], POLLIN, 0};
		for (int i = 0; i < nc; i++)
			p[2 + i] = (struct pollfd){cs[i].fd, POLLIN, 0};
		int r = poll(p, (nfds_t)(2 + nc), left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[1].revents)
			return -1;
		return 1;
	}
}

static bool admit(smtp_relay *rl, lside *l)
{
	char want[64];
	snprintf(want, sizeof want, "EHLO %s\r\n", rl->token);
	candidate cs[CANDIDATES];
	struct pollfd p[2 + CANDIDATES];
	int nc = 0;
	while (rl->fd < 0 && !rl->out_of_fds &&
	       wait_any(rl, cs, nc, p, l->deadline) == 1) {
		int had = nc;
		/* candidates first (indexes shift as they go), newest down */
		for (int i = had - 1; i >= 0 && rl->fd < 0; i--)
			if (p[2 + i].revents && hear(l, cs, &nc, i, want))
				break;
		if (rl->fd < 0 && p[0].revents)
			take(rl, cs, &nc);
	}
	while (nc > 0)
		drop(cs, &nc, nc - 1);
	if (rl->fd < 0)
		return false;
	int one = 1;
	setsockopt(rl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	spbuf line;
	sb_init(&line, 0);
	sb_adds(&line, "250-logsponge relay\r\n");
	if (rl->c->has_size && rl->c->size)
		sb_printf(&line, "250-SIZE %llu\r\n",
			  (unsigned long long)rl->c->size);
	sb_adds(&line, "250 ENHANCEDSTATUSCODES\r\n");
	bool ok = l_send(l, line.data, line.len);
	sb_free(&line);
	return ok;
}

/* The server side failed at the current stage. */
static void broke(smtp_relay *rl, const char *why)
{
	sb_reset(&rl->broke);
	sb_adds(&rl->broke, why && *why ? why : "the connection was lost");
}

/* The server's reply to what was just sent, recorded and passed on. */
static bool pass_reply(smtp_relay *rl, lside *l)
{
	spbuf raw;
	sb_init(&raw, 0);
	bool ok = sc_reply(rl->c, sc_deadline(rl->c), &raw);
	if (ok) {
		sb_reset(&rl->reply);
		sb_adds(&rl->reply, rl->c->reply.data);
		ok = l_send(l, raw.data, raw.len);
	} else {
		broke(rl, rl->c->lines.data);
	}
	sb_free(&raw);
	return ok;
}

static void note_rcpt(smtp_relay *rl, const char *cmd)
{
	int code = rl->c->code;
	if (code >= 200 && code < 300) {
		rl->rcpt_ok++;
		return;
	}
	if (code >= 500)
		rl->rcpt_perm++;
	else
		rl->rcpt_temp++;
	const char *a = strchr(cmd, '<'), *z = a ? strchr(a, '>') : NULL;
	sb_printf(&rl->refused, "%sRCPT %.*s: %s", rl->refused.len ? "; " : "",
		  z ? (int)(z - a + 1) : 0, a ? a : "", rl->c->reply.data);
}

/* The message, from after the 354 to the final dot; stops at once when
 * the server answers early (a refusal) or the composer failed. */
static bool pass_body(smtp_relay *rl, lside *l)
{
	char tail[5];
	size_t tl = 0;
	for (;;) {
		if (!l->in.len && !l_fill(l))
			return false; /* libESMTP gave up */
		struct pollfd pf = {rl->c->fd, POLLIN, 0};
		if (sc_pending(rl->c) || poll(&pf, 1, 0) == 1) {
			/* the server speaks before the dot: its refusal */
			if (sc_reply(rl->c, sponge_now() + 200000, NULL)) {
				rl->data_code = rl->c->code;
				sb_reset(&rl->reply);
				sb_adds(&rl->reply, rl->c->reply.data);
				return false;
			}
		}
		const char *p = l->in.data;
		size_t n = l->in.len;
		/* the dot ends the message only at the end of what libESMTP
		 * wrote (it waits for the reply then) */
		char last[5];
		size_t have;
		if (n >= 5) {
			memcpy(last, p + n - 5, 5);
			have = 5;
		} else {
			size_t from = tl < 5 - n ? tl : 5 - n;
			memcpy(last, tail + tl - from, from);
			memcpy(last + from, p, n);
			have = from + n;
		}
		bool end = have == 5 && memcmp(last, "\r\n.\r\n", 5) == 0;
		memcpy(tail, last, have);
		tl = have;
		if (end && atomic_load(&rl->abort_data)) {
			rl->aborted = true; /* never let a short message count */
			return false;
		}
		if (!sc_send(rl->c, p, n, sc_deadline(rl->c))) {
			broke(rl, rl->c->lines.data);
			return false;
		}
		sp_crash_point("mid-data"); /* a first piece is out */
		sb_reset(&l->in);
		if (end) {
			rl->data_sent = true;
			return true;
		}
	}
}

/* One command from libESMTP: passed on, or answered here. */
static bool one_command(smtp_relay *rl, lside *l, spbuf *cmd)
{
	const char *v = cmd->data;
	if (!strncasecmp(v, "QUIT", 4)) { /* the caller says QUIT itself */
		static const char bye[] = "221 2.0.0 bye\r\n";
		l_send(l, bye, sizeof bye - 1);
		return false;
	}
	bool mail = !strncasecmp(v, "MAIL", 4), rcpt = !strncasecmp(v, "RCPT", 4);
	bool data = !strncasecmp(v, "DATA", 4);
	if (!mail && !rcpt && !data && strncasecmp(v, "RSET", 4) &&
	    strncasecmp(v, "NOOP", 4)) {
		static const char no[] = "502 5.5.1 not relayed\r\n";
		return l_send(l, no, sizeof no - 1);
	}
	rl->stage = mail ? "mail" : rcpt ? "rcpt" : data ? "data" : rl->stage;
	if (!sc_send(rl->c, cmd->data, cmd->len, sc_deadline(rl->c))) {
		broke(rl, rl->c->lines.data);
		return false;
	}
	/* the reply counts even when libESMTP is gone before it gets it */
	bool passed = pass_reply(rl, l);
	if (rl->broke.len)
		return false;
	if (mail)
		rl->mail_code = rl->c->code;
	if (rcpt)
		note_rcpt(rl, cmd->data);
	if (data)
		rl->data_code = rl->c->code;
	if (!passed || !data || rl->c->code != 354)
		return passed;
	rl->data_started = true;
	if (!pass_body(rl, l))
		return false;
	passed = pass_reply(rl, l);
	if (!rl->broke.len)
		rl->data_code = rl->c->code;
	return passed;
}

static void *relay_main(void *arg)
{
	smtp_relay *rl = arg;
	lside l = {rl, {0}, 0};
	sb_init(&l.in, 0);
	spbuf cmd;
	sb_init(&cmd, 0);
	l.deadline = sc_deadline(rl->c);
	if (admit(rl, &l)) {
		for (;;) {
			l.deadline = sc_deadline(rl->c);
			if (!l_line(&l, &cmd) || !one_command(rl, &l, &cmd))
				break;
		}
	}
	if (rl->fd >= 0) /* libESMTP sees the end of the connection */
		shutdown(rl->fd, SHUT_RDWR);
	sb_free(&cmd);
	sb_free(&l.in);
	return NULL;
}

bool sr_start(smtp_relay *rl, sc_conn *c)
{
	memset(rl, 0, sizeof *rl);
	rl->c = c;
	rl->listen_fd = rl->fd = rl->stop[0] = rl->stop[1] = -1;
	atomic_init(&rl->abort_data, false);
	sb_init(&rl->refused, 4096);
	sb_init(&rl->reply, 8192);
	sb_init(&rl->broke, 1024);
	unsigned char rnd[16];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return false;
	for (int i = 0; i < 16; i++)
		snprintf(rl->token + 2 * i, 3, "%02x", rnd[i]);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (pipe2(rl->stop, O_CLOEXEC) != 0 ||
	    (rl->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
						     SOCK_NONBLOCK, 0)) < 0 ||
	    bind(rl->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(rl->listen_fd, 16) != 0 ||
	    getsockname(rl->listen_fd, (struct sockaddr *)&a, &al) != 0)
		return false;
	rl->port = ntohs(a.sin_port);
	sp_test_delay("relay-listening");
	/* SIGPIPE stays blocked in the thread (it inherits the mask) */
	sp_pipe_guard g;
	sp_pipe_block(&g);
	int e = pthread_create(&rl->thread, NULL, relay_main, rl);
	sp_pipe_restore(&g);
	if (e != 0) {
		errno = e;
		return false;
	}
	rl->running = true;
	return true;
}

void sr_stop(smtp_relay *rl)
{
	if (rl->running) {
		if (write(rl->stop[1], "x", 1) != 1) {
			/* the pipe is empty and ours: this cannot fail */
		}
		pthread_join(rl->thread, NULL);
		rl->running = false;
	}
	int *fds[] = {&rl->fd, &rl->listen_fd, &rl->stop[0], &rl->stop[1]};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

void sr_free(smtp_relay *rl)
{
	sb_free(&rl->refused);
	sb_free(&rl->reply);
	sb_free(&rl->broke);
}
