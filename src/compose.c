/* compose.c - one UTF-8 MIME message, streamed from the spool.
 *
 * Headers, then a quoted-printable text/plain body (what it says is
 * digest.c's: the top part, then the log), an optional text/html
 * alternative with the same, and past max_size the gzip attachment.
 * Every line ends in CRLF and no encoded line is longer than 76 octets,
 * whatever the records hold.  Memory is one chunk (~32 KiB) plus one
 * record and the survey's bounded tables, whatever the batch size. */
#define _DEFAULT_SOURCE /* gmtime_r */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "flush.h"

#define CHUNK (32u << 10)

enum {
	ST_HEADERS, ST_SUMMARY, ST_RECORDS, /* the text part */
	ST_HTML, ST_HTML_RECORDS,           /* the HTML part, if any */
	ST_ATTACH, ST_END,
	ST_PLAYBACK                         /* the kept message, again */
};



/* A structured header whose value is one word: folded after the name
 * when the line would pass 78 octets (RFC 5322 2.1.1 and 3.6.4, where
 * the fold is white space around the msg-id, not part of it). */
static void word_header(spbuf *o, const char *name, const char *pre,
			const char *word, const char *post)
{
	size_t n = strlen(name) + 2 + strlen(pre) + strlen(word) + strlen(post);
	sb_printf(o, "%s:%s%s%s%s\r\n", name, n > 78 ? "\r\n " : " ", pre,
		  word, post);
}

static bool headers(sp_composer *c)
{
	const sp_config *cfg = &c->sp->cfg;
	const sp_batch *b = c->b;
	spbuf *o = &c->out;
	char date[64];
	sp_rfc5322_date(b->env.date_us, date, sizeof date);
	if (c->readable) { /* for people: no encoding, no MIME structure */
		sb_printf(o, "From: %s\r\nTo: ",
			  cfg->from_show ? cfg->from_show : cfg->from);
		for (int i = 0; i < cfg->nto; i++)
			sb_printf(o, "%s%s",
				  cfg->to_show[i] ? cfg->to_show[i] : cfg->to[i],
				  i + 1 < cfg->nto ? ", " : "\r\n");
		sb_printf(o, "Subject: %s\r\nDate: %s\r\nMessage-ID: <%s>"
			     "\r\n\r\n", b->env.subject, date,
			  b->env.message_id);
		return !o->failed;
	}
	sb_printf(o, "From: %s\r\n", cfg->from);
	/* one recipient per line, so no header line gets long */
	sb_adds(o, "To: ");
	for (int i = 0; i < cfg->nto; i++)
		sb_printf(o, "%s%s", cfg->to[i], i + 1 < cfg->nto ? ",\r\n " : "\r\n");
	sp_header_text(o, "Subject", b->env.subject);
	sb_printf(o, "Date: %s\r\n", date);
	word_header(o, "Message-ID", "<", b->env.message_id, ">");
	sb_adds(o, "MIME-Version: 1.0\r\n");
	/* the boundaries cannot occur in the parts: quoted-printable writes
	 * every "=" as =3D, base64 has no "_"; and neither begins with the
	 * other (RFC 2046 5.1.1: "X" and "X_alt" made parsers see a phantom
	 * part), so the outer one is "X_mix" */
	bool alt = cfg->html;
	if (b->size.gz)
		sb_printf(o, "Content-Type: multipart/mixed;\r\n"
			     " boundary=\"%s_mix\"\r\n", b->env.boundary);
	else if (alt)
		sb_printf(o, "Content-Type: multipart/alternative;\r\n"
			     " boundary=\"%s_alt\"\r\n", b->env.boundary);
	/* RFC 3834, and Exchange's own way to say "no out-of-office" */
	sb_adds(o, "Auto-Submitted: auto-generated\r\n"
		   "X-Auto-Response-Suppress: OOF, AutoReply\r\n"
		   "X-Mailer: logsponge " SPONGE_VERSION "\r\n");
	/* for mail filters: where from, and how bad */
	/* (unstructured: never folded right after the name, where readers
	 * would keep the fold's space in the value) */
	sp_header_text(o, "X-Logsponge-Host", c->sp->host);
	sb_printf(o, "X-Logsponge-Level: %s\r\n",
		  b->n.count ? sponge_level_name(b->n.highest) : "none");
	if (b->size.gz || alt)
		sb_adds(o, "\r\n");
	if (b->size.gz)
		sb_printf(o, "--%s_mix\r\n", b->env.boundary);
	if (b->size.gz && alt)
		sb_printf(o, "Content-Type: multipart/alternative;\r\n"
			     " boundary=\"%s_alt\"\r\n\r\n", b->env.boundary);
	if (alt)
		sb_printf(o, "--%s_alt\r\n", b->env.boundary);
	sb_adds(o, "Content-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n");
	sb_adds(o, "\r\n");
	return !o->failed;
}


/* A line of a part's body: quoted-printable, or (the readable view of
 * flush --dry-run) as it is. */
static bool out_line(sp_composer *c, const char *s, size_t n)
{
	if (c->readable)
		return sb_add(&c->out, s, n) && sb_add(&c->out, "\r\n", 2);
	return sp_qp_line(&c->out, s, n);
}

/* The body's line sink (c->say): as it is in the text part; escaped,
 * as a <div>, in the HTML part (an empty line a <br>). */
static bool body_line(sp_composer *c, const char *s, size_t n)
{
	if (!c->html)
		return out_line(c, s, n);
	if (!n)
		return out_line(c, "<br>", 4);
	spbuf h;
	sb_init(&h, 0);
	bool ok = sb_adds(&h, "<div>") && sp_html_escape(&h, s, n) &&
		  sb_adds(&h, "</div>") && out_line(c, h.data, h.len);
	sb_free(&h);
	return ok;
}

/* A heartbeat's body: nothing to report since the last message. */
static bool heartbeat_summary(sp_composer *c)
{
	const sp_batch *b = c->b;
	if (b->env.test) {
		sp_body_printf(c, "logsponge on %s: a test message, sent by "
				  "logsponge check --send through the configured "
				  "transport. Mail from this host reaches you.",
			       c->sp->host);
		return !c->out.failed;
	}
	char t1[32], span[32];
	sponge_format_time(b->env.since_us, t1);
	sponge_format_span(sp_sub(b->env.date_us, b->env.since_us), span,
			   sizeof span);
	sp_body_printf(c, "logsponge on %s: nothing to report since %s (%s).",
		    c->sp->host, t1, span);
	int64_t waiting = sp_waiting(&b->n);
	if (waiting)
		sp_body_printf(c, "%lld record%s below the policy's triggers wait "
			       "in the spool.",
			    (long long)waiting, waiting == 1 ? "" : "s");
	sp_digest_rules_heartbeat(c);
	return !c->out.failed && !c->scratch.failed;
}

static bool summary(sp_composer *c)
{
	if (c->b->n.count == 0)
		return heartbeat_summary(c);
	if (!sp_digest_title(c))
		return false;
	sp_digest_runs(c);
	return sp_digest_top(c);
}

bool sp_record_line(spbuf *out, const sponge_record *r,
		    const char *local_host, int64_t *tsec, char tbuf[32],
		    const char *suffix)
{
	/* the date and time are formatted once per second */
	if (r->time_us / 1000000 != *tsec || !*tsec) {
		*tsec = r->time_us / 1000000;
		sponge_format_time(*tsec * 1000000, tbuf);
	}
	char us[8];
	int64_t frac = r->time_us % 1000000;
	for (int k = 5; k >= 0; k--, frac /= 10)
		us[k] = (char)('0' + (frac < 0 ? 0 : frac % 10));
	sb_add(out, tbuf, 20);
	sb_add(out, us, 6);
	sb_add(out, "Z ", 2);
	sb_add(out, sp_level_column(r->level), SP_LEVEL_COLUMN);
	sb_addc(out, ' ');
	sb_adds(out, *r->tag ? r->tag : "-");
	if (strcmp(r->host, local_host) != 0) {
		sb_addc(out, '@');
		sb_adds(out, r->host);
	}
	sb_add(out, ": ", 2);
	/* a record of several lines: the first here, then (after suffix,
	 * if any) the others on lines of their own, indented */
	const char *m = r->message, *end = m + r->message_len;
	const char *nl = memchr(m, '\n', r->message_len);
	sb_add(out, m, (size_t)((nl ? nl : end) - m));
	if (suffix)
		sb_adds(out, suffix);
	while (nl) {
		m = nl + 1;
		nl = memchr(m, '\n', (size_t)(end - m));
		sb_add(out, "\n    ", 5);
		sb_add(out, m, (size_t)((nl ? nl : end) - m));
	}
	return !out->failed;
}

/* A heading row (host, day) across the table. */
static bool html_heading(sp_composer *c, const spbuf *h, bool host)
{
	if (!h->len)
		return true;
	spbuf *o = &c->scratch;
	sb_reset(o);
	sb_printf(o, "<tr><td colspan=\"4\" style=\"padding-top:8px;"
		     "font-weight:bold%s\">", host ? ";font-size:110%" : "");
	sp_html_escape(o, h->data, h->len);
	sb_adds(o, "</td></tr>");
	return !o->failed && out_line(c, o->data, o->len);
}

/* A record as a table row, level in colour, everything escaped. */
static bool html_row(sp_composer *c, const sponge_record *r, int64_t times,
		     int64_t last)
{
	/* level badges: white on a colour dark enough for 4.5:1 contrast */
	static const char *const colour[8] = {
		"#8e0019", "#8e0019", "#b00020", "#c62828",
		"#a84300", "#1565c0", "#4a4a4a", "#616161"};
	char t[32];
	sp_digest_hms(c, r->time_us, t);
	spbuf *o = &c->scratch;
	sb_reset(o);
	sb_printf(o, "<tr><td>%s</td><td><span style=\"background:%s;"
		     "color:#ffffff;padding:0 4px;border-radius:3px%s\">%s"
		     "</span></td><td>", t, colour[r->level & 7],
		  r->level <= SPONGE_CRIT ? ";font-weight:bold" : "",
		  sponge_level_name(r->level & 7));
	sp_html_escape(o, *r->tag ? r->tag : "-", strlen(*r->tag ? r->tag : "-"));
	sb_adds(o, "</td><td class=\"m\">");
	if (times > 1)
		sb_printf(o, "<b>\xC3\x97%lld</b> ", (long long)times);
	sp_html_escape(o, r->message, r->message_len);
	if (times > 1) {
		char lt[32];
		sp_digest_hms(c, last, lt);
		sb_printf(o, " (last %s)", lt);
	}
	sb_adds(o, "</td></tr>");
	return !o->failed && out_line(c, o->data, o->len);
}

/*
 * Past the size cap, may the body show one more record?  The text part
 * decides; the HTML part lists exactly the records the text part did
 * (they once differed: 346 against 172).  With an HTML part the text
 * part also keeps that part's estimate (escaping and quoted-printable:
 * at most 18 bytes a byte, and a row's markup) within its half.
 */
static bool body_has_room(sp_composer *c, const sponge_record *r)
{
	if (c->html)
		return c->listed < c->text_listed;
	int64_t budget = c->b->size.body_budget / (c->sp->cfg.html ? 2 : 1);
	int64_t text = (int64_t)(c->bytes + c->out.len - c->part_start) +
		       (int64_t)r->message_len * 3 + 300;
	int64_t html = c->html_est + (int64_t)r->message_len * 18 + 400;
	if (text > budget || (c->sp->cfg.html && html > budget))
		return false;
	c->html_est = html;
	return true;
}

/* The HTML part stops listing records past this size (Gmail clips a
 * message at about 102 KB); the text part lists them all. */
#define HTML_MAX (96u << 10)

/* The text part's lines for r: headings due, then its own lines. */
static bool text_record(sp_composer *c, const sponge_record *r, int64_t times,
			int64_t last)
{
	if (c->head_host.len) {
		sp_body_line(c, "", 0);
		sp_body_line(c, c->head_host.data, c->head_host.len);
	}
	if (c->head_day.len) {
		sp_body_line(c, "", 0);
		sp_body_line(c, c->head_day.data, c->head_day.len);
	}
	sb_reset(&c->line);
	if (!sp_digest_line(c, &c->line, r, times, last))
		return false;
	/* one body line per line of the record */
	for (const char *l = c->line.data, *e = l + c->line.len; l < e;) {
		const char *nl = memchr(l, '\n', (size_t)(e - l));
		size_t n = (size_t)((nl ? nl : e) - l);
		if (!sp_body_line(c, l, n))
			return false;
		l += n + 1;
	}
	return !c->out.failed;
}

static int records(sp_composer *c)
{
	const sponge_record *r;
	int64_t times = 1, last = 0;
	int rc;
	while (c->out.len < CHUNK &&
	       (rc = c->src->next(c->src, &r)) == SPONGE_ROW) {
		if (!sp_digest_fold(c, r, &times, &last))
			continue; /* shown at its first */
		if (c->b->size.gz && !body_has_room(c, r))
			return SPONGE_DONE; /* the rest is in the attachment */
		if (c->html && !c->b->size.gz &&
		    c->bytes + c->out.len - c->part_start > HTML_MAX) {
			c->html_cut = true;
			return SPONGE_DONE; /* the rest: in the text part */
		}
		c->listed++;
		c->in_body += times;
		sp_digest_headings(c, r, &c->head_host, &c->head_day);
		if (c->html) {
			if (!html_heading(c, &c->head_host, true) ||
			    !html_heading(c, &c->head_day, false) ||
			    !html_row(c, r, times, last))
				return SPONGE_ENOMEM;
			continue;
		}
		c->text_listed = c->listed;
		if (!text_record(c, r, times, last))
			return SPONGE_ENOMEM;
	}
	if (c->out.len >= CHUNK)
		return SPONGE_ROW;
	return rc == SPONGE_DONE ? SPONGE_DONE : rc;
}

static int open_records(sp_composer *c);

static bool html_start(sp_composer *c)
{
	const sp_batch *b = c->b;
	sb_printf(&c->out, "\r\n--%s_alt\r\n"
			   "Content-Type: text/html; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		  b->env.boundary);
	c->part_start = c->bytes + c->out.len;
	c->html = true;
	/* a phone's width; colours of our own on a background of our own,
	 * so a reader's dark mode cannot leave grey text on black; long
	 * tokens wrap instead of widening the page */
	static const char *const top[] = {
		"<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
		"<meta name=\"viewport\" content=\"width=device-width, "
		"initial-scale=1\">",
		"<meta name=\"color-scheme\" content=\"light only\">",
		"<style>body{background:#ffffff;color:#1a1a1a;margin:8px;"
		"font-family:sans-serif;overflow-wrap:anywhere;"
		"word-break:break-word}table{border-collapse:collapse;"
		"width:100%;table-layout:fixed;font-family:monospace}"
		"td,th{padding:3px;text-align:left;vertical-align:top;"
		"overflow-wrap:anywhere;word-break:break-word}"
		"td.m{white-space:pre-wrap}div.top{font-family:monospace}"
		"div.top div{white-space:pre-wrap}</style>"};
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		out_line(c, top[i], strlen(top[i]));
	spbuf t;
	sb_init(&t, 0);
	sb_adds(&t, "<title>");
	sp_html_escape(&t, b->env.subject, strlen(b->env.subject));
	sb_adds(&t, "</title></head><body style=\"background:#ffffff;"
		    "color:#1a1a1a\">");
	out_line(c, t.data, t.len);
	sb_free(&t);
	/* the same top as the text part's, as it is written there */
	out_line(c, "<div class=\"top\">", 17);
	if (!summary(c))
		return false;
	out_line(c, "</div>", 6);
	if (b->n.count) {
		/* the time column: "03:12:07", or the date too past max_size */
		const char *h = b->size.gz
			? "<table><colgroup><col style=\"width:21ch\"><col "
			  "style=\"width:10ch\"><col style=\"width:12ch\"><col>"
			  "</colgroup>"
			: "<table><colgroup><col style=\"width:10ch\"><col "
			  "style=\"width:10ch\"><col style=\"width:12ch\"><col>"
			  "</colgroup>";
		out_line(c, h, strlen(h));
		h = "<tr><th>time</th><th>level</th><th>tag</th>"
		    "<th>message</th></tr>";
		out_line(c, h, strlen(h));
	}
	/* the records again, from the start */
	c->rc = open_records(c);
	return c->rc == SPONGE_OK && !c->out.failed;
}

static void html_end(sp_composer *c)
{
	const char *t = c->b->n.count ? "</table></body></html>"
				    : "</body></html>";
	if ((c->b->size.gz || c->html_cut) && c->in_body < c->b->n.count) {
		spbuf m;
		sb_init(&m, 0);
		sb_printf(&m, "<p>... and %lld more record%s, %s.</p>",
			  (long long)(c->b->n.count - c->in_body),
			  c->b->n.count - c->in_body == 1 ? "" : "s",
			  c->b->size.gz ? "in the attachment"
					: "in the plain-text part of this "
					  "message");
		out_line(c, "</table>", 8);
		out_line(c, m.data, m.len);
		sb_free(&m);
		t = "</body></html>";
	}
	out_line(c, t, strlen(t));
	sb_printf(&c->out, "--%s_alt--\r\n", c->b->env.boundary);
	c->html = false;
}

/* The attachment part, base64 in lines of 76, read from the temporary
 * file a chunk at a time.  Returns true when it is all out. */
static bool attachment(sp_composer *c)
{
	const sp_batch *b = c->b;
	if (!c->att_started) { /* first call: the part's headers */
		sb_printf(&c->out,
			  "\r\n--%s_mix\r\n"
			  "Content-Type: application/gzip;\r\n name=\"%s\"\r\n"
			  "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\n",
			  b->env.boundary, b->size.gz_name, b->size.gz_name);
		c->att_started = true;
	}
	unsigned char in[57 * 256];
	size_t n = fread(in, 1, sizeof in, b->size.gz);
	for (size_t i = 0; i < n; i += 57) {
		size_t k = n - i < 57 ? n - i : 57;
		sp_base64(&c->out, in + i, k);
		sb_add(&c->out, "\r\n", 2);
	}
	if (n == sizeof in)
		return false;
	if (ferror(b->size.gz))
		c->rc = sp_fail(c->sp, SPONGE_EIO, "attachment: read error");
	sb_printf(&c->out, "--%s_mix--\r\n", b->env.boundary);
	return true;
}

/* The readable view's note for a part it does not show. */
static void readable_note(sp_composer *c, const char *note)
{
	sb_adds(&c->out, "\r\n");
	sb_adds(&c->out, note);
	sb_adds(&c->out, "\r\n");
}

bool sp_compose_done(const sp_composer *c) { return c->state == ST_END; }

void sp_compose_stop(sp_composer *c)
{
	if (c->src)
		c->src->close(c->src);
}

void sp_compose_init(sp_composer *c, sponge *sp, const sp_batch *b,
		     sp_source *src)
{
	memset(c, 0, sizeof *c);
	c->sp = sp;
	c->b = b;
	c->src = src;
	c->say = body_line;
	sb_init(&c->out, 0);
	sb_init(&c->scratch, 0);
	sb_init(&c->line, 0);
	sb_init(&c->head_host, 0);
	sb_init(&c->head_day, 0);
	c->state = ST_END;
}

void sp_compose_free(sp_composer *c)
{
	sp_zone_close(c->zone);
	c->zone = NULL;
	sp_compose_stop(c);
	sp_compose_replan(c);
	sb_free(&c->out);
	sb_free(&c->scratch);
	sb_free(&c->line);
	sb_free(&c->head_host);
	sb_free(&c->head_day);
}

int sp_compose_rewind(sp_composer *c)
{
	sp_compose_stop(c);
	c->rc = SPONGE_OK;
	c->bytes = 0;
	if (c->kept && !c->readable) {
		c->state = ST_PLAYBACK;
		if (fseek(c->kept, 0, SEEK_SET) != 0)
			c->rc = sp_fail(c->sp, SPONGE_EIO, "rewinding the "
					"composed message: %s", strerror(errno));
		return c->rc;
	}
	c->state = ST_HEADERS;
	c->att_started = false;
	c->html = false;
	c->part_start = 0;
	c->text_listed = c->html_est = 0;
	c->html_cut = false;
	if (c->b->size.gz && fseek(c->b->size.gz, 0, SEEK_SET) != 0)
		return c->rc = sp_fail(c->sp, SPONGE_EIO, "attachment: rewind");
	if (!c->zone) {
		spbuf why;
		sb_init(&why, 0);
		int rc = sp_zone_open(c->sp->cfg.timezone, &c->zone, &why);
		if (rc)
			rc = sp_fail(c->sp, rc, "mail.%s", why.len ? why.data
							    : "out of memory");
		sb_free(&why);
		if (rc)
			return c->rc = rc;
	}
	if (!c->dg && c->b->n.count && (c->rc = sp_digest_survey(c)) != SPONGE_OK)
		return c->rc;
	return c->rc = open_records(c);
}

/* Start listing the batch's records (again): oldest first, or past
 * max_size most severe first. */
static int open_records(sp_composer *c)
{
	sp_compose_stop(c);
	c->in_body = c->listed = 0;
	c->generation++;
	c->cur_host[0] = '\0';
	c->cur_day = 0;
	if (!c->src) /* a message without records (check --send's) */
		return SPONGE_OK;
	return c->src->open(c->src, c->b->size.gz    ? SP_SEVERE_FIRST
				    : c->b->n.nhosts > 1 ? SP_BY_HOST
							 : SP_OLDEST_FIRST);
}

/* The kept message, a chunk at a time. */
static const char *play_back(sp_composer *c, size_t *len)
{
	if (!sb_grow(&c->out, CHUNK)) {
		c->rc = sp_fail(c->sp, SPONGE_ENOMEM, "out of memory");
		return NULL;
	}
	size_t n = fread(c->out.data, 1, CHUNK, c->kept);
	if (n < CHUNK) {
		c->state = ST_END;
		if (ferror(c->kept))
			c->rc = sp_fail(c->sp, SPONGE_EIO, "reading the "
					"composed message back: %s",
					strerror(errno));
	}
	c->out.len = n;
	c->out.data[n] = '\0';
	*len = c->rc == SPONGE_OK ? n : 0;
	c->bytes += *len;
	return *len ? c->out.data : NULL;
}

/* What follows the text part's records, and the HTML part's. */
static int after_text(const sp_composer *c)
{
	return c->sp->cfg.html ? ST_HTML : c->b->size.gz ? ST_ATTACH : ST_END;
}

static int after_html(const sp_composer *c)
{
	return c->b->size.gz ? ST_ATTACH : ST_END;
}

/* The text part's records, then what the attachment holds beyond them. */
static void step_records(sp_composer *c)
{
	if (c->b->n.count == 0) { /* a heartbeat: no records */
		c->state = after_text(c);
		return;
	}
	int rc = records(c);
	if (rc != SPONGE_DONE) {
		if (rc != SPONGE_ROW)
			c->rc = rc;
		return;
	}
	c->state = after_text(c);
	if (c->b->size.gz && c->in_body < c->b->n.count) {
		int64_t more = c->b->n.count - c->in_body;
		sp_body_line(c, "", 0);
		sp_body_printf(c, "... and %lld more record%s, in the "
				  "attachment.",
			       (long long)more, more == 1 ? "" : "s");
	}
}

static void step_html(sp_composer *c)
{
	if (c->readable) {
		readable_note(c, "[a text/html alternative follows: the same, "
				 "as a table]");
		c->state = after_html(c);
		return;
	}
	/* the same content again, as HTML */
	if (!html_start(c))
		c->rc = c->rc ? c->rc : SPONGE_ENOMEM;
	c->state = ST_HTML_RECORDS;
}

static void step_html_records(sp_composer *c)
{
	int rc = c->b->n.count ? records(c) : SPONGE_DONE;
	if (rc == SPONGE_DONE) {
		html_end(c);
		c->state = after_html(c);
	} else if (rc != SPONGE_ROW) {
		c->rc = rc;
	}
}

static void step_attach(sp_composer *c)
{
	if (!c->readable) {
		if (attachment(c))
			c->state = ST_END;
		return;
	}
	spbuf *o = &c->scratch;
	sb_reset(o);
	sb_printf(o, "[attached: %s, %llu bytes, gzip]", c->b->size.gz_name,
		  (unsigned long long)c->b->size.gz_bytes);
	readable_note(c, o->data);
	c->state = ST_END;
}

/* One step of the message, by state. */
static void step(sp_composer *c)
{
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
	case ST_RECORDS: step_records(c); break;
	case ST_HTML: step_html(c); break;
	case ST_HTML_RECORDS: step_html_records(c); break;
	case ST_ATTACH: step_attach(c); break;
	default: c->state = ST_END; break;
	}
}

const char *sp_compose_next(sp_composer *c, size_t *len)
{
	*len = 0;
	if (c->rc != SPONGE_OK)
		return NULL;
	sb_reset(&c->out);
	if (c->state == ST_PLAYBACK)
		return play_back(c, len);
	while (c->out.len < CHUNK && c->state != ST_END) {
		step(c);
		if (c->rc != SPONGE_OK)
			return NULL;
	}
	*len = c->out.len;
	c->bytes += c->out.len;
	return c->out.len ? c->out.data : NULL;
}

/* The kept message goes (the survey stays: the batch is the same). */
static void drop_kept(sp_composer *c)
{
	if (c->kept)
		fclose(c->kept);
	c->kept = NULL;
	if (c->state == ST_PLAYBACK)
		c->state = ST_END;
}

int sp_compose_measure(sp_composer *c, uint64_t limit, bool *fits,
		       uint64_t *size)
{
	drop_kept(c);
	/* without a temporary file it only counts (and composes again to
	 * send) */
	FILE *f = tmpfile();
	int rc = sp_compose_rewind(c);
	uint64_t total = 0;
	size_t n;
	const char *p;
	while (rc == SPONGE_OK && total <= limit &&
	       (p = sp_compose_next(c, &n)) != NULL) {
		total += n;
		if (f && total <= limit && fwrite(p, 1, n, f) != n) {
			fclose(f);
			f = NULL;
		}
	}
	if (rc == SPONGE_OK)
		rc = c->rc;
	sp_compose_stop(c);
	*fits = rc == SPONGE_OK && total <= limit;
	*size = total;
	if (*fits && f && fflush(f) == 0)
		c->kept = f;
	else if (f)
		fclose(f);
	return rc;
}

void sp_compose_replan(sp_composer *c)
{
	drop_kept(c);
	sp_digest_free(c);
}
