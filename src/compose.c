/* compose.c - one UTF-8 MIME message, streamed from the spool.
 *
 * Headers, then a quoted-printable text/plain body: a summary, then every
 * record of the batch in order.  Every line ends in CRLF and no encoded
 * line is longer than 76 octets, whatever the records hold.  Memory is
 * one chunk (~32 KiB) plus one record, whatever the batch size. */
#define _DEFAULT_SOURCE /* gmtime_r */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "flush.h"

#define CHUNK (32u << 10)

enum { ST_HEADERS, ST_SUMMARY, ST_RECORDS, ST_END };

static const char hexd[] = "0123456789ABCDEF";

/*
 * Quoted-printable (RFC 2045) of one line without its line end: printable
 * ASCII but "=" as is, the rest =XX, a space or tab before the end
 * encoded, soft breaks keep lines <= 76 octets.  A leading "." and the
 * "F" of a leading "From " are encoded too, so no transport can mangle
 * them.  Appends the CRLF.
 */
bool sp_qp_line(spbuf *out, const char *s, size_t n)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char tok[3];
		size_t tl = 1;
		bool enc = ch == '=' || ch > 126 || (ch < 32 && ch != '\t');
		if ((ch == ' ' || ch == '\t') && i + 1 == n)
			enc = true;
		if (i == 0 && (ch == '.' || (ch == 'F' && n >= 5 &&
					     memcmp(s, "From ", 5) == 0)))
			enc = true;
		if (enc) {
			tok[0] = '=';
			tok[1] = hexd[ch >> 4];
			tok[2] = hexd[ch & 15];
			tl = 3;
		} else {
			tok[0] = (char)ch;
		}
		/* room for the token plus a possible soft break "=" */
		size_t limit = i + 1 == n ? 76 : 75;
		if (col + tl > limit) {
			if (!sb_add(out, "=\r\n", 3))
				return false;
			col = 0;
		}
		if (!sb_add(out, tok, tl))
			return false;
		col += tl;
	}
	return sb_add(out, "\r\n", 2);
}

static bool is_ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
			return false;
	return true;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool base64(spbuf *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {b64[v >> 18], b64[(v >> 12) & 63],
			     i + 1 < n ? b64[(v >> 6) & 63] : '=',
			     i + 2 < n ? b64[v & 63] : '='};
		if (!sb_add(out, q, 4))
			return false;
	}
	return true;
}

/*
 * "Name: text\r\n" for unstructured text.  Short printable ASCII goes as
 * is; anything else as RFC 2047 "=?UTF-8?B?…?=" words of at most 75
 * octets, never splitting a character, folded onto continuation lines.
 * The caller guarantees text holds no control characters.
 */
bool sp_header_text(spbuf *out, const char *name, const char *text)
{
	if (!sb_printf(out, "%s: ", name))
		return false;
	size_t n = strlen(text);
	if (is_ascii_printable(text) && strlen(name) + 2 + n <= 78)
		return sb_add(out, text, n) && sb_add(out, "\r\n", 2);
	/* 45 input bytes -> 60 base64 chars + 12 for =?UTF-8?B??= = 72 */
	const unsigned char *p = (const unsigned char *)text;
	bool first = true;
	while (n) {
		size_t take = n < 45 ? n : 45;
		while (take < n && take > 0 && (p[take] & 0xC0) == 0x80)
			take--; /* do not split a UTF-8 character */
		if (!first && !sb_add(out, "\r\n ", 3))
			return false;
		if (!sb_adds(out, "=?UTF-8?B?") || !base64(out, p, take) ||
		    !sb_adds(out, "?="))
			return false;
		p += take;
		n -= take;
		first = false;
	}
	return sb_add(out, "\r\n", 2);
}

static void rfc5322_date(int64_t t_us, char *buf, size_t n)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(t_us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool headers(sp_composer *c)
{
	const sp_config *cfg = &c->sp->cfg;
	const sp_batch *b = c->b;
	spbuf *o = &c->out;
	char date[64];
	rfc5322_date(b->date_us, date, sizeof date);
	sb_printf(o, "From: %s\r\n", cfg->from);
	/* one recipient per line, so no header line gets long */
	sb_adds(o, "To: ");
	for (int i = 0; i < cfg->nto; i++)
		sb_printf(o, "%s%s", cfg->to[i], i + 1 < cfg->nto ? ",\r\n " : "\r\n");
	sp_header_text(o, "Subject", b->subject);
	sb_printf(o, "Date: %s\r\n", date);
	sb_printf(o, "Message-ID: <%s>\r\n", b->message_id);
	sb_adds(o, "MIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n"
		   "Auto-Submitted: auto-generated\r\n"
		   "X-Mailer: logsponge " SPONGE_VERSION "\r\n\r\n");
	return !o->failed;
}

static void fmt_span(int64_t us, char *b, size_t n)
{
	int64_t s = us / 1000000;
	if (s < 60)
		snprintf(b, n, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(b, n, "%lldm %llds", (long long)(s / 60),
			 (long long)(s % 60));
	else if (s < 86400)
		snprintf(b, n, "%lldh %lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(b, n, "%lldd %lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
}

/* One body line, quoted-printable, appended to the chunk. */
static bool body_line(sp_composer *c, const char *s, size_t n)
{
	return sp_qp_line(&c->out, s, n);
}

static bool body_printf(sp_composer *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static bool body_printf(sp_composer *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_reset(&c->scratch);
	bool ok = sb_vprintf(&c->scratch, fmt, ap);
	va_end(ap);
	return ok && body_line(c, c->scratch.data, c->scratch.len);
}

static bool summary(sp_composer *c)
{
	const sp_batch *b = c->b;
	char t1[32], t2[32], span[32];
	sponge_format_time(b->t_first, t1);
	sponge_format_time(b->t_last, t2);
	fmt_span(b->t_last - b->t_first, span, sizeof span);
	body_printf(c, "logsponge on %s: %lld record%s, highest level %s",
		    c->sp->host, (long long)b->count, b->count == 1 ? "" : "s",
		    sponge_level_name(b->highest));
	body_printf(c, "From %s to %s (%s)", t1, t2, span);
	sb_reset(&c->scratch);
	sb_adds(&c->scratch, "Levels:");
	const char *sep = " ";
	for (int l = 0; l < 8; l++) {
		if (!b->by_level[l])
			continue;
		sb_printf(&c->scratch, "%s%s %lld", sep, sponge_level_name(l),
			  (long long)b->by_level[l]);
		sep = ", ";
	}
	body_line(c, c->scratch.data, c->scratch.len);

	/* the most frequent tags of the batch */
	sqlite3_stmt *st;
	sb_reset(&c->scratch);
	sb_adds(&c->scratch, "Tags:");
	if (sqlite3_prepare_v2(c->sp->db,
			       "SELECT tag, count(*) FROM records WHERE id <= ? "
			       "GROUP BY tag ORDER BY 2 DESC, 1 LIMIT 6",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, b->max_id);
		sep = " ";
		int n = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *tag = (const char *)sqlite3_column_text(st, 0);
			if (++n > 5) {
				sb_adds(&c->scratch, ", …");
				break;
			}
			sb_printf(&c->scratch, "%s%s %lld", sep,
				  tag && *tag ? tag : "-",
				  (long long)sqlite3_column_int64(st, 1));
			sep = ", ";
		}
		sqlite3_finalize(st);
	}
	body_line(c, c->scratch.data, c->scratch.len);
	if (b->waiting_after)
		body_printf(c, "%lld more record%s arrived during this flush "
			       "and wait for the next message.",
			    (long long)b->waiting_after,
			    b->waiting_after == 1 ? "" : "s");
	body_line(c, "", 0);
	body_printf(c, "Records, oldest first:");
	return !c->out.failed && !c->scratch.failed;
}

/* Append records until the chunk is full or the batch ends. */
static int records(sp_composer *c)
{
	const sponge_record *r;
	int rc;
	while (c->out.len < CHUNK &&
	       (rc = sponge_query_next(c->it, &r)) == SPONGE_ROW) {
		char tb[32];
		sponge_format_time(r->time_us, tb);
		sb_reset(&c->scratch);
		sb_printf(&c->scratch, "%s %-7s %s", tb,
			  sponge_level_name(r->level), *r->tag ? r->tag : "-");
		if (strcmp(r->host, c->sp->host) != 0)
			sb_printf(&c->scratch, "@%s", r->host);
		sb_adds(&c->scratch, ": ");
		sb_add(&c->scratch, r->message, r->message_len);
		if (c->scratch.failed || !body_line(c, c->scratch.data,
						    c->scratch.len))
			return SPONGE_ENOMEM;
	}
	if (c->out.len >= CHUNK)
		return SPONGE_ROW;
	return rc == SPONGE_DONE ? SPONGE_DONE : rc;
}

void sp_compose_init(sp_composer *c, sponge *sp, const sp_batch *b)
{
	memset(c, 0, sizeof *c);
	c->sp = sp;
	c->b = b;
	sb_init(&c->out, 0);
	sb_init(&c->scratch, 0);
	c->state = ST_END;
}

void sp_compose_free(sp_composer *c)
{
	sponge_query_close(c->it);
	c->it = NULL;
	sb_free(&c->out);
	sb_free(&c->scratch);
}

int sp_compose_rewind(sp_composer *c)
{
	sponge_query_close(c->it);
	c->it = NULL;
	c->rc = SPONGE_OK;
	c->bytes = 0;
	c->state = ST_HEADERS;
	sponge_filter f;
	memset(&f, 0, sizeof f);
	f.max_id = c->b->max_id;
	c->rc = sponge_query(c->sp, &f, &c->it);
	return c->rc;
}

const char *sp_compose_next(sp_composer *c, size_t *len)
{
	*len = 0;
	if (c->rc != SPONGE_OK)
		return NULL;
	sb_reset(&c->out);
	while (c->out.len < CHUNK && c->state != ST_END) {
		switch (c->state) {
		case ST_HEADERS:
			if (!headers(c))
				c->rc = SPONGE_ENOMEM;
			c->state = ST_SUMMARY;
			break;
		case ST_SUMMARY:
			if (!summary(c))
				c->rc = SPONGE_ENOMEM;
			c->state = ST_RECORDS;
			break;
		case ST_RECORDS: {
			int rc = records(c);
			if (rc == SPONGE_DONE)
				c->state = ST_END;
			else if (rc != SPONGE_ROW)
				c->rc = rc;
			break;
		}
		}
		if (c->rc != SPONGE_OK)
			return NULL;
	}
	*len = c->out.len;
	c->bytes += c->out.len;
	return c->out.len ? c->out.data : NULL;
}
