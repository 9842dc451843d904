/* formats.c - structured input lines: journal JSON (with jansson), RFC
 * 5424 and RFC 3164 syslog.  Every byte here is untrusted. */
#define _DEFAULT_SOURCE /* timegm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "internal.h"

/* ---- journal JSON --------------------------------------------------- */

/* Copy a string field into sp->parsed; returns its offset or -1. */
static long keep(sponge *sp, const char *s, size_t n)
{
	size_t off = sp->parsed.len;
	if (!sb_add(&sp->parsed, s, n) || !sb_addc(&sp->parsed, '\0'))
		return -1;
	return (long)off;
}

static const char *str_field(json_t *o, const char *name, size_t *len)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

static int parse_journal(sponge *sp, const char *line, size_t len,
			 sponge_entry *e)
{
	json_error_t err;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(o)) {
		json_decref(o);
		return 0;
	}
	sb_reset(&sp->parsed);
	long msg = -1, tag = -1, host = -1;
	size_t mlen = 0, n;
	const char *s;
	json_t *m = json_object_get(o, "MESSAGE");
	if (json_is_string(m)) {
		mlen = json_string_length(m);
		msg = keep(sp, json_string_value(m), mlen);
	} else if (json_is_array(m)) {
		/* journald exports non-UTF-8 or binary messages as bytes */
		size_t off = sp->parsed.len, i;
		json_t *b;
		json_array_foreach(m, i, b) {
			json_int_t v = json_is_integer(b) ? json_integer_value(b)
							  : -1;
			if (v < 0 || v > 255)
				break;
			sb_addc(&sp->parsed, (char)v);
		}
		mlen = sp->parsed.len - off;
		sb_addc(&sp->parsed, '\0');
		msg = (long)off;
	}
	if ((s = str_field(o, "SYSLOG_IDENTIFIER", &n)) ||
	    (s = str_field(o, "_COMM", &n)))
		tag = keep(sp, s, n);
	if ((s = str_field(o, "_HOSTNAME", &n)))
		host = keep(sp, s, n);
	/* the pid a syslog line would name (logcheck's rules read it) */
	if ((s = str_field(o, "SYSLOG_PID", &n)) ||
	    (s = str_field(o, "_PID", &n))) {
		long pid = strtol(s, NULL, 10);
		sp->parsed_pid = pid > 0 && pid < 100000000 ? (int)pid : 0;
	}
	if ((s = str_field(o, "PRIORITY", &n)) && n == 1 && s[0] >= '0' &&
	    s[0] <= '7')
		e->level = s[0] - '0';
	if ((s = str_field(o, "__REALTIME_TIMESTAMP", &n))) {
		char *end;
		long long t = strtoll(s, &end, 10);
		if (end != s && *end == '\0' && t > 0)
			e->time_us = t;
	}
	json_decref(o);
	if (sp->parsed.failed)
		return 0;
	const char *base = sp->parsed.data;
	e->msg = msg >= 0 ? base + msg : "";
	e->len = msg >= 0 ? mlen : 0;
	if (tag >= 0)
		e->tag = base + tag;
	if (host >= 0)
		e->host = base + host;
	return 1;
}

/* ---- syslog --------------------------------------------------------- */

typedef struct cursor {
	const char *p, *end;
} cursor;

static bool at_end(const cursor *c) { return c->p >= c->end; }

/* "<PRI>" with PRI 0…191. */
static int read_pri(cursor *c)
{
	if (at_end(c) || *c->p != '<')
		return -1;
	const char *q = c->p + 1;
	int pri = 0, digits = 0;
	while (q < c->end && *q >= '0' && *q <= '9' && digits < 3)
		pri = pri * 10 + (*q++ - '0'), digits++;
	if (!digits || q >= c->end || *q != '>' || pri > 191)
		return -1;
	c->p = q + 1;
	return pri;
}

/* The next space-separated token; false at the end. */
static bool token(cursor *c, const char **s, size_t *n)
{
	if (at_end(c))
		return false;
	const char *q = c->p;
	while (q < c->end && *q != ' ')
		q++;
	*s = c->p;
	*n = (size_t)(q - c->p);
	c->p = q < c->end ? q + 1 : q;
	return *n > 0;
}

/* RFC 5424's structured data at c: "-" or [id k="v" …]… with \" \] \\
 * escapes, and the space after it; false when it is not. */
static bool structured_data(cursor *c)
{
	const char *sd = c->p;
	if (!at_end(c) && *c->p == '-') {
		c->p++;
	} else {
		while (!at_end(c) && *c->p == '[') {
			bool quoted = false;
			for (c->p++; !at_end(c); c->p++) {
				if (*c->p == '\\' && quoted && c->p + 1 < c->end) {
					c->p++;
					continue;
				}
				if (*c->p == '"')
					quoted = !quoted;
				else if (*c->p == ']' && !quoted)
					break;
			}
			if (at_end(c))
				return false;
			c->p++;
		}
		if (c->p == sd)
			return false;
	}
	if (at_end(c))
		return true;
	return *c->p++ == ' ';
}

/* The stated time, when the field is one (a full date). */
static void stated_time(const char *ts, size_t tsl, sponge_entry *e)
{
	if ((tsl == 1 && ts[0] == '-') || tsl >= 64)
		return;
	char buf[64];
	memcpy(buf, ts, tsl);
	buf[tsl] = '\0';
	int64_t t;
	if (sponge_parse_time(buf, 0, &t) == SPONGE_OK && buf[4] == '-')
		e->time_us = t;
}

static int parse_5424(sponge *sp, const char *line, size_t len,
		      sponge_entry *e)
{
	cursor c = {line, line + len};
	int pri = read_pri(&c);
	const char *ts, *host, *app, *procid, *msgid;
	size_t tsl, hl, al, pl, ml;
	if (pri < 0 || c.end - c.p < 2 || c.p[0] != '1' || c.p[1] != ' ')
		return 0;
	c.p += 2;
	if (!token(&c, &ts, &tsl) || !token(&c, &host, &hl) ||
	    !token(&c, &app, &al) || !token(&c, &procid, &pl) ||
	    !token(&c, &msgid, &ml))
		return 0;
	const char *sd = c.p;
	if (!structured_data(&c))
		return 0;
	size_t sdl = (size_t)(c.p - sd);
	if (sdl && sd[sdl - 1] == ' ')
		sdl--;
	const char *msg = c.p;
	size_t mlen = (size_t)(c.end - c.p);
	if (mlen >= 3 && memcmp(msg, "\xEF\xBB\xBF", 3) == 0)
		msg += 3, mlen -= 3;

	sb_reset(&sp->parsed);
	long toff = -1, hoff = -1, moff = -1;
	if (!(al == 1 && app[0] == '-'))
		toff = keep(sp, app, al);
	if (!(hl == 1 && host[0] == '-'))
		hoff = keep(sp, host, hl);
	if (!(sdl == 1 && sd[0] == '-')) { /* the data goes before the text */
		moff = (long)sp->parsed.len;
		sb_add(&sp->parsed, sd, sdl);
		if (mlen)
			sb_addc(&sp->parsed, ' ');
		sb_add(&sp->parsed, msg, mlen);
		mlen = sp->parsed.len - (size_t)moff;
		sb_addc(&sp->parsed, '\0');
	}
	stated_time(ts, tsl, e);
	if (sp->parsed.failed)
		return 0;
	e->level = pri & 7;
	if (toff >= 0)
		e->tag = sp->parsed.data + toff;
	if (hoff >= 0)
		e->host = sp->parsed.data + hoff;
	e->msg = moff >= 0 ? sp->parsed.data + moff : msg;
	e->len = mlen;
	return 1;
}

static int month(const char *s)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int i = 0; i < 12; i++)
		if (memcmp(s, names + 3 * i, 3) == 0)
			return i;
	return -1;
}

/* "Mmm dd hh:mm:ss " (day may be space-padded); local time, in the
 * current year unless that would be more than a day ahead. */
static bool read_3164_time(cursor *c, int64_t *t)
{
	if (c->end - c->p < 16)
		return false;
	const char *s = c->p;
	int mon = month(s);
	if (mon < 0 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' ||
	    s[12] != ':' || s[15] != ' ')
		return false;
	int day = (s[4] == ' ' ? 0 : s[4] - '0') * 10 + (s[5] - '0');
	int h = (s[7] - '0') * 10 + (s[8] - '0');
	int mi = (s[10] - '0') * 10 + (s[11] - '0');
	int se = (s[13] - '0') * 10 + (s[14] - '0');
	for (int i = 4; i < 15; i++)
		if (i != 6 && i != 9 && i != 12 && !(i == 4 && s[4] == ' ') &&
		    (s[i] < '0' || s[i] > '9'))
			return false;
	if (day < 1 || day > 31 || h > 23 || mi > 59 || se > 60)
		return false;
	*t = sp_yearless_time(mon, day, h, mi, se, sponge_now());
	c->p += 16;
	return true;
}

/* "2026-12-06T10:00:03.123456+01:00 ": RFC 3339 as rsyslog's file
 * format writes it (the offset kept), and a space. */
static bool read_3339_time(cursor *c, int64_t *t)
{
	cursor save = *c;
	const char *ts;
	size_t tl;
	if (c->end - c->p < 20 || c->p[4] != '-' || c->p[10] != 'T' ||
	    !token(c, &ts, &tl) || tl >= 64 || at_end(c)) {
		*c = save;
		return false;
	}
	char buf[64];
	memcpy(buf, ts, tl);
	buf[tl] = '\0';
	if (sponge_parse_time(buf, 0, t) != SPONGE_OK) {
		*c = save;
		return false;
	}
	return true;
}

/* "HOST TAG[PID]: " or "HOST TAG: " after the time: the host's and the
 * tag's offsets in sp->parsed (-1: none); c past them. */
static void host_and_tag(sponge *sp, cursor *c, long *hoff, long *toff)
{
	cursor save = *c;
	const char *host;
	size_t hl;
	if (!token(c, &host, &hl)) {
		*c = save;
		return;
	}
	*hoff = keep(sp, host, hl);
	const char *q = c->p;
	while (q < c->end && q - c->p < 48 &&
	       (((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z') ||
		(*q >= '0' && *q <= '9') || strchr("-_./", *q)))
		q++;
	const char *tend = q;
	if (q < c->end && *q == '[') {
		int pid = 0;
		while (++q < c->end && *q >= '0' && *q <= '9' && pid < 100000000)
			pid = pid * 10 + (*q - '0');
		sp->parsed_pid = q < c->end && *q == ']' ? pid : 0;
		while (q < c->end && *q != ']')
			q++;
		if (q < c->end)
			q++;
	}
	if (tend > c->p && q < c->end && *q == ':') {
		*toff = keep(sp, c->p, (size_t)(tend - c->p));
		c->p = q + 1;
		if (!at_end(c) && *c->p == ' ')
			c->p++;
	}
}

/* What a line's fields were kept as, into e. */
static int parsed(sponge *sp, const cursor *c, int level, int64_t t,
		  long hoff, long toff, sponge_entry *e)
{
	if (sp->parsed.failed)
		return 0;
	if (level >= 0)
		e->level = level;
	if (t)
		e->time_us = t;
	if (hoff >= 0)
		e->host = sp->parsed.data + hoff;
	if (toff >= 0)
		e->tag = sp->parsed.data + toff;
	e->msg = c->p;
	e->len = (size_t)(c->end - c->p);
	return 1;
}

static int parse_3164(sponge *sp, const char *line, size_t len,
		      sponge_entry *e)
{
	cursor c = {line, line + len};
	int pri = read_pri(&c);
	if (pri < 0)
		return 0;
	int64_t t = 0;
	long hoff = -1, toff = -1;
	sb_reset(&sp->parsed);
	if (read_3164_time(&c, &t))
		host_and_tag(sp, &c, &hoff, &toff);
	return parsed(sp, &c, pri & 7, t, hoff, toff, e);
}

/* A syslog file's line: no PRI (the level stays the caller's), a classic
 * or an RFC 3339 time, the host, the tag (the pid after it is not kept). */
static int parse_syslog(sponge *sp, const char *line, size_t len,
			sponge_entry *e)
{
	cursor c = {line, line + len};
	int64_t t = 0;
	long hoff = -1, toff = -1;
	sb_reset(&sp->parsed);
	if (!read_3164_time(&c, &t) && !read_3339_time(&c, &t))
		return 0;
	host_and_tag(sp, &c, &hoff, &toff);
	if (hoff < 0)
		return 0; /* a time alone is not a syslog line */
	return parsed(sp, &c, -1, t, hoff, toff, e);
}

static int parse(sponge *sp, int format, const char *line, size_t len,
		 sponge_entry *e);

int sponge_parse_line(sponge *sp, int format, const char *line, size_t len,
		      sponge_entry *e)
{
	if (!sp || !e || (!line && len))
		return 0;
	sp->parsed_msg = NULL;
	sp->parsed_pid = 0;
	int ok = parse(sp, format, line, len, e);
	if (ok && (format == SPONGE_FORMAT_SYSLOG ||
		   format == SPONGE_FORMAT_RFC3164 ||
		   format == SPONGE_FORMAT_JOURNAL_JSON)) {
		/* for the rules that read a record as a syslog file's line */
		sp->parsed_msg = e->msg;
		sp->parsed_line = format == SPONGE_FORMAT_SYSLOG ? line : NULL;
		sp->parsed_len = format == SPONGE_FORMAT_SYSLOG ? len : 0;
	}
	return ok;
}

static int parse(sponge *sp, int format, const char *line, size_t len,
		 sponge_entry *e)
{
	switch (format) {
	case SPONGE_FORMAT_JOURNAL_JSON:
		return parse_journal(sp, line, len, e);
	case SPONGE_FORMAT_RFC5424:
		return parse_5424(sp, line, len, e);
	case SPONGE_FORMAT_RFC3164:
		return parse_3164(sp, line, len, e);
	case SPONGE_FORMAT_SYSLOG:
		return parse_syslog(sp, line, len, e);
	default:
		return 0;
	}
}
