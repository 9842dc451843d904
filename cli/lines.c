/* lines.c - turning a byte stream into records, one per line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static int to_stderr(void *arg, const char *p, size_t n)
{
	(void)arg;
	return write_all(STDERR_FILENO, p, n) ? 0 : -1;
}

/* The spool failed with rc: say why in one line, then give the records
 * queued and not stored to stderr.  From now on lines go to out_fd. */
static void spool_failed(adder *a, int rc)
{
	*a->spool_rc = rc;
	const char *m = sponge_errmsg(a->sp);
	errorf("%s: %s; the lines not stored follow on standard error",
	       a->who, *m ? m : sponge_strerror(rc));
	sponge_discard_queue(a->sp, to_stderr, NULL);
}

/* A line the spool did not take, to out_fd as it would have been kept. */
static void pass_line(adder *a, const char *line, size_t len, uint64_t cut)
{
	write_all(a->out_fd, line, len);
	if (cut) {
		char m[64];
		int n = snprintf(m, sizeof m, " [logsponge: cut %llu bytes]",
				 (unsigned long long)cut);
		write_all(a->out_fd, m, (size_t)n);
	}
	write_all(a->out_fd, "\n", 1);
}

bool adder_pending(const adder *a)
{
	return a->jstate || a->jblank;
}

void adder_sync(adder *a)
{
	join_flush(a); /* input paused: the pending record is complete */
	if (*a->spool_rc)
		return;
	int rc = sponge_sync(a->sp);
	if (rc)
		spool_failed(a, rc);
}

void adder_record(adder *a, const char *line, size_t len, uint64_t cut)
{
	if (*a->spool_rc) {
		pass_line(a, line, len, cut);
		return;
	}
	sponge_entry e = {a->level, a->tag, a->now, a->host, line, len, cut};
	/* a structured line sets its own fields; one that does not parse is
	 * kept as plain text */
	bool parsed = a->format != SPONGE_FORMAT_TEXT && !cut &&
		      sponge_parse_line(a->sp, a->format, line, len, &e);
	if (parsed && !e.time_us)
		e.time_us = a->now;
	/* a line's own level, or (a syslog file's line has none) its
	 * message's */
	if (a->detect && (!parsed || a->format == SPONGE_FORMAT_SYSLOG)) {
		size_t skip = 0;
		int l = sponge_detect_level(e.msg, e.len, &skip);
		if (l >= 0) {
			e.level = l;
			e.msg += skip;
			e.len -= skip;
		}
	}
	if (a->judge) {
		a->judge(a->judge_arg, &e, line, len);
		return;
	}
	size_t before = sponge_queued(a->sp);
	int rc = sponge_append_entry(a->sp, &e);
	if (rc == SPONGE_OK)
		return;
	/* the queue holds this line unless it could not even be queued */
	bool queued = sponge_queued(a->sp) > before;
	spool_failed(a, rc);
	if (!queued)
		pass_line(a, line, len, cut);
}

/* Keep at most a->keep bytes of a long line; count the rest as cut. */
static bool carry_add(adder *a, const char *p, size_t n)
{
	a->in_line = true;
	size_t room = a->keep - a->carry_len;
	size_t take = n < room ? n : room;
	a->carry_cut += n - take;
	if (a->carry_len + take > a->carry_cap) {
		size_t cap = a->carry_cap ? a->carry_cap : 4096;
		while (cap < a->carry_len + take)
			cap *= 2;
		char *c = realloc(a->carry, cap);
		if (!c) {
			errorf("add: out of memory");
			return false;
		}
		a->carry = c;
		a->carry_cap = cap;
	}
	memcpy(a->carry + a->carry_len, p, take);
	a->carry_len += take;
	return true;
}

void adder_end_line(adder *a, const char *p, size_t n)
{
	if (!a->in_line) {
		join_line(a, p, n, 0);
		return;
	}
	if (carry_add(a, p, n)) {
		join_line(a, a->carry, a->carry_len, a->carry_cut);
		join_pin(a); /* carry is reused for the next long line */
	}
	a->carry_len = 0;
	a->carry_cut = 0;
	a->in_line = false;
	if (a->carry_cap > (1u << 20)) { /* do not hold on to a huge line */
		free(a->carry);
		a->carry = NULL;
		a->carry_cap = 0;
	}
}

/* Split a chunk into lines ending in LF, CRLF or a lone CR.  *cr_pending
 * says the previous chunk ended in CR, so a leading LF belongs to it. */
void adder_split(adder *a, const char *p, size_t n, bool *cr_pending)
{
	const char *end = p + n;
	if (*cr_pending && p < end) {
		*cr_pending = false;
		if (*p == '\n')
			p++;
	}
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *stop = lf ? lf : end;
		const char *cr = memchr(p, '\r', (size_t)(stop - p));
		const char *eol = cr ? cr : lf;
		if (!eol) {
			join_pin(a); /* the chunk's buffer is read into next */
			carry_add(a, p, (size_t)(end - p));
			return;
		}
		adder_end_line(a, p, (size_t)(eol - p));
		p = eol + 1;
		if (*eol == '\r') {
			if (p < end && *p == '\n')
				p++;
			else if (p == end)
				*cr_pending = true;
		}
	}
	join_pin(a); /* the chunk's buffer is read into next */
}


void adder_init(adder *a, sponge *sp, const char *tag, int level, bool detect,
		int format, int out_fd, const char *who)
{
	memset(a, 0, sizeof *a);
	a->sp = sp;
	a->spool_rc = &a->rc;
	a->out_fd = out_fd;
	a->who = who;
	a->tag = tag;
	a->level = level;
	a->detect = detect;
	a->format = format;
	a->keep = sponge_max_record(sp);
	a->join = format == SPONGE_FORMAT_TEXT; /* --join none turns it off */
}

void adder_feed(adder *a, const char *p, size_t n)
{
	a->now = sponge_now(); /* all lines of a read arrived together */
	adder_split(a, p, n, &a->cr_pending);
}

void adder_finish(adder *a)
{
	if (a->in_line) {
		a->now = sponge_now();
		adder_end_line(a, "", 0); /* a final line without a newline */
	}
	join_flush(a);
}

void adder_free(adder *a)
{
	free(a->carry);
	a->carry = NULL;
	free(a->jbuf);
	a->jbuf = NULL;
}

int input_option(const char *who, int c, const char *arg, input_opts *o)
{
	char what[64];
	bool ok = true;
	switch (c) {
	case 'l':
		snprintf(what, sizeof what, "%s: --level", who);
		ok = parse_level_opt(what, arg, &o->level);
		break;
	case 't': o->tag = arg; break;
	case 'd': o->detect = true; break;
	case 'f': ok = parse_format_opt(arg, &o->format); break;
	case 'J': ok = parse_join_opt(who, arg, &o->join); break;
	default: return 0;
	}
	return ok ? 1 : -1;
}

void adder_init_input(adder *a, sponge *sp, const input_opts *o,
		      const char *who)
{
	adder_init(a, sp, o->tag, o->level, o->detect, o->format,
		   STDERR_FILENO, who);
	a->join = a->join && o->join;
}

bool feed_fd(adder *a, int fd)
{
	char buf[65536];
	ssize_t k;
	while ((k = read(fd, buf, sizeof buf)) > 0)
		adder_feed(a, buf, (size_t)k);
	return k == 0;
}

int feed_files(adder *a, int argc, char **argv, const char *who)
{
	int status = 0;
	for (int i = optind; i < argc && !status; i++) {
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || !feed_fd(a, fd)) {
			errorf("%s: %s: %s", who, argv[i], strerror(errno));
			status = EXIT_NOINPUT;
		}
		if (fd >= 0)
			close(fd);
	}
	if (optind >= argc && !feed_fd(a, STDIN_FILENO)) {
		errorf("%s: standard input: %s", who, strerror(errno));
		status = EXIT_IOERR;
	}
	adder_finish(a);
	return status;
}
