/* compose.c - one UTF-8 MIME message, streamed from the spool.
 *
 * Headers, then a quoted-printable text/plain body (what it says is
 * digest.c's: the top part, then the log), an optional text/html
 * alternative with the same, and past max_size the gzip attachment.
 * Every line ends in CRLF and no encoded line is longer than 76 octets,
 * whatever the records hold.  Memory is one chunk (~32 KiB) plus one
 * record and the survey's bounded tables, whatever the batch size. */
#define _DEFAULT_SOURCE /* gmtime_r */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "flush.h"

#define CHUNK (32u << 10)

enum {
	ST_HEADERS, ST_SUMMARY, ST_RECORDS, /* the text part */
	ST_HTML, ST_HTML_RECORDS,           /* the HTML part, if any */
	ST_ATTACH, ST_END
};

static const char hexd[] = "0123456789ABCDEF";

/*
 * Quoted-printable (RFC 2045) of one line without its line end: printable
 * ASCII but "=" as is, the rest =XX, a space or tab before the end
 * encoded, soft breaks keep lines <= 76 octets.  A leading "." and the
 * "F" of a leading "From " are encoded too, so no transport can mangle
 * them.  Appends the CRLF.
 */
/* Bytes that quoted-printable keeps as they are (blanks too: only a
 * final one is encoded). */
static inline bool qp_plain(char c)
{
	unsigned char u = (unsigned char)c;
	return (u >= 32 && u <= 126 && u != '=') || u == '\t';
}

/* Would s[i] at the start of an output line be read as something else:
 * "." (SMTP's end of data, dot-stuffed by some and not by others) or
 * "From " (mbox writers turn it into ">From ")? */
static bool unsafe_at_line_start(const char *s, size_t i, size_t n)
{
	return s[i] == '.' ||
	       (s[i] == 'F' && n - i >= 5 && memcmp(s + i, "From ", 5) == 0);
}

bool sp_qp_line(spbuf *out, const char *s, size_t n)
{
	/* worst case: every byte =XX, a soft break per 25 of those, CRLF */
	if (!sb_grow(out, n * 3 + n / 8 + 8))
		return false;
	char *o = out->data + out->len, *line = o;
	for (size_t i = 0; i < n; i++) {
		/* fast path: a run of bytes that stand for themselves (not
		 * the first, which may be "." or "From "; not a final blank) */
		size_t run = 0;
		if (i > 0) {
			while (i + run < n && qp_plain(s[i + run]))
				run++;
			if (run && i + run == n &&
			    (s[n - 1] == ' ' || s[n - 1] == '\t'))
				run--;
		}
		while (run) {
			if (o == line && unsafe_at_line_start(s, i, n))
				break; /* encoded one by one below */
			size_t col = (size_t)(o - line), take;
			if (i + run == n && col + run <= 76)
				take = run; /* the last byte may use column 76 */
			else
				take = col < 75 ? (75 - col < run ? 75 - col : run)
						: 0;
			if (!take) {
				memcpy(o, "=\r\n", 3);
				o += 3;
				line = o;
				continue;
			}
			memcpy(o, s + i, take);
			o += take;
			i += take;
			run -= take;
		}
		if (i >= n)
			break;
		unsigned char ch = (unsigned char)s[i];
		bool enc = ch == '=' || ch > 126 || (ch < 32 && ch != '\t');
		if ((ch == ' ' || ch == '\t') && i + 1 == n)
			enc = true;
		size_t tl = enc ? 3 : 1;
		/* room for the token plus a possible soft break "=" */
		size_t limit = i + 1 == n ? 76 : 75;
		if ((size_t)(o - line) + tl > limit) {
			memcpy(o, "=\r\n", 3);
			o += 3;
			line = o;
		}
		/* a line of the record's first, or one after a soft break */
		if (o == line && !enc && unsafe_at_line_start(s, i, n))
			enc = true;
		if (enc) {
			o[0] = '=';
			o[1] = hexd[ch >> 4];
			o[2] = hexd[ch & 15];
			o += 3;
		} else {
			*o++ = (char)ch;
		}
	}
	memcpy(o, "\r\n", 2);
	o += 2;
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
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
/* Header lines are folded to stay within this many octets where a space
 * allows (RFC 5322 2.1.1). */
#define HDR_LINE 78

typedef struct hdr_line {
	spbuf *out;
	size_t col;     /* octets on the current line */
	bool empty;     /* nothing but the name on it yet */
} hdr_line;

/* Append one token after `gap` spaces (0: none), folded onto a new line
 * when it would pass the limit: the fold's CRLF goes before the spaces,
 * so unfolding gives them back exactly. */
static bool hdr_token(hdr_line *h, const char *tok, size_t n, size_t gap)
{
	/* (not right after the name: a reader may keep the fold's space as
	 * part of the value) */
	if (gap && !h->empty && h->col + gap + n > HDR_LINE) {
		if (!sb_add(h->out, "\r\n", 2))
			return false;
		h->col = 0;
	}
	for (size_t i = 0; i < gap; i++)
		if (!sb_addc(h->out, ' '))
			return false;
	h->col += gap + n;
	h->empty = false;
	return sb_add(h->out, tok, n);
}

/* A word a reader shows as written: printable ASCII, nothing that looks
 * like an encoded word. */
static bool plain_word(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)w[i] < 33 || (unsigned char)w[i] > 126 ||
		    (w[i] == '=' && i + 1 < n && w[i + 1] == '?'))
			return false;
	return true;
}

/* How many of p[0..n) the next encoded word takes, at most max: a whole
 * number of characters, a multiple of 3 unless it is the very end (ends)
 * -- base64 padding inside made mu show a subject cut off -- and, when
 * no such length exists, one character in Q form (*q). */
static size_t word_bytes(const unsigned char *p, size_t n, size_t max,
			 bool ends, bool *q)
{
	*q = false;
	if (n <= max && (n % 3 == 0 || ends))
		return n;
	if (max > n)
		max = n;
	for (size_t t = max; t > 0; t--)
		if (t % 3 == 0 && (p[t] & 0xC0) != 0x80)
			return t;
	size_t take = 1;
	while (take < n && (p[take] & 0xC0) == 0x80)
		take++;
	*q = true;
	return take;
}

/* "=?UTF-8?B?…?=" (or Q) for p[0..n) appended to w. */
static bool encoded_word(spbuf *w, const unsigned char *p, size_t n, bool q)
{
	bool ok = sb_adds(w, q ? "=?UTF-8?Q?" : "=?UTF-8?B?");
	for (size_t i = 0; q && i < n; i++)
		ok = ok && sb_printf(w, "=%02X", p[i]);
	return ok && (q || base64(w, p, n)) && sb_adds(w, "?=");
}

bool sp_phrase(spbuf *out, const char *name)
{
	size_t n = strlen(name);
	bool atext = n && name[0] != ' ' && name[n - 1] != ' ' &&
		     !strstr(name, "=?"), ascii = true;
	for (const char *c = name; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		ascii = ascii && ch < 0x80;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-/=?^_`{|}~ ", ch)))
			atext = false;
	}
	if (atext)
		return sb_adds(out, name);
	if (ascii) { /* a quoted string: "Doe, Jane" */
		bool ok = sb_addc(out, '"');
		for (const char *c = name; *c; c++)
			ok = ok && (*c == '"' || *c == '\\' ? sb_addc(out, '\\') : true) &&
			     sb_addc(out, *c);
		return ok && sb_addc(out, '"');
	}
	const unsigned char *p = (const unsigned char *)name;
	bool ok = true;
	while (ok && n) {
		bool q;
		size_t take = word_bytes(p, n, 45, true, &q);
		ok = (p == (const unsigned char *)name || sb_addc(out, ' ')) &&
		     encoded_word(out, p, take, q);
		p += take;
		n -= take;
	}
	return ok;
}

/* p[0..n) as RFC 2047 encoded words, each at most 75 octets, split on
 * character boundaries, padding only at the very end of the run. */
static bool hdr_encoded(hdr_line *h, const unsigned char *p, size_t n,
			size_t gap, bool ends)
{
	while (n) {
		/* 45 bytes: 60 base64 + 12 = 72 octets; less when the word
		 * fills the rest of the current line */
		size_t max = 45;
		size_t room = HDR_LINE > h->col + 13 ? HDR_LINE - h->col - 13 : 0;
		if (room / 4 * 3 >= 6 && room / 4 * 3 < max)
			max = room / 4 * 3;
		bool q;
		size_t take = word_bytes(p, n, max, ends, &q);
		spbuf w;
		sb_init(&w, 0);
		bool ok = encoded_word(&w, p, take, q) &&
			  hdr_token(h, w.data, w.len, gap);
		sb_free(&w);
		if (!ok)
			return false;
		p += take;
		n -= take;
		gap = 1; /* between encoded words: ignored by readers */
	}
	return true;
}

bool sp_header_text(spbuf *out, const char *name, const char *text)
{
	if (!sb_printf(out, "%s:", name))
		return false;
	hdr_line h = {out, strlen(name) + 1, true};
	/* words of printable ASCII stay as they are (so "[logsponge]" still
	 * matches procmail, Sieve and grep); each run of other words, with
	 * the spaces between them, becomes encoded words; the spaces between
	 * words are kept as they are (leading and trailing ones are not) */
	const char *s = text;
	while (*s == ' ')
		s++;
	bool ok = true;
	size_t gap = 1; /* after "Name:" */
	while (ok && *s) {
		const char *w = s;
		while (*s && *s != ' ')
			s++;
		const char *run_end = s;
		if (!plain_word(w, (size_t)(s - w))) {
			/* extend over the following words that need encoding */
			for (const char *q = s; *q;) {
				while (*q == ' ')
					q++;
				const char *v = q;
				while (*q && *q != ' ')
					q++;
				if (q == v || plain_word(v, (size_t)(q - v)))
					break;
				run_end = q;
			}
		}
		const char *next = run_end;
		while (*next == ' ')
			next++;
		if (run_end == s && plain_word(w, (size_t)(s - w)))
			ok = hdr_token(&h, w, (size_t)(s - w), gap);
		else
			ok = hdr_encoded(&h, (const unsigned char *)w,
					 (size_t)(run_end - w), gap, !*next);
		gap = (size_t)(next - run_end);
		s = next;
	}
	return ok && sb_add(out, "\r\n", 2);
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
	rfc5322_date(b->env.date_us, date, sizeof date);
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
	sb_printf(o, "Message-ID: <%s>\r\n", b->env.message_id);
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


/* One body line, quoted-printable, appended to the chunk. */
/* s[0..n) with & < > " ' as entities, into out. */
static bool html_escape(spbuf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *e = NULL;
		switch (s[i]) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		default: break;
		}
		if (!(e ? sb_adds(out, e) : sb_addc(out, s[i])))
			return false;
	}
	return true;
}

/* A line of a part's body: quoted-printable, or (the readable view of
 * flush --dry-run) as it is. */
static bool out_line(sp_composer *c, const char *s, size_t n)
{
	if (c->readable)
		return sb_add(&c->out, s, n) && sb_add(&c->out, "\r\n", 2);
	return sp_qp_line(&c->out, s, n);
}

/* One line of the body: as it is in the text part; escaped, as a <div>,
 * in the HTML part (an empty line a <br>). */
bool sp_body_line(sp_composer *c, const char *s, size_t n)
{
	if (!c->html)
		return out_line(c, s, n);
	if (!n)
		return out_line(c, "<br>", 4);
	spbuf h;
	sb_init(&h, 0);
	bool ok = sb_adds(&h, "<div>") && html_escape(&h, s, n) &&
		  sb_adds(&h, "</div>") && out_line(c, h.data, h.len);
	sb_free(&h);
	return ok;
}

bool sp_body_printf(sp_composer *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_reset(&c->scratch);
	bool ok = sb_vprintf(&c->scratch, fmt, ap);
	va_end(ap);
	return ok && sp_body_line(c, c->scratch.data, c->scratch.len);
}

/* A heartbeat's body: nothing to report since the last message. */
static bool heartbeat_summary(sp_composer *c)
{
	const sp_batch *b = c->b;
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
	return !c->out.failed && !c->scratch.failed;
}

static bool summary(sp_composer *c)
{
	if (c->b->n.count == 0)
		return heartbeat_summary(c);
	return sp_digest_top(c);
}

bool sp_record_line(spbuf *out, const sponge_record *r,
		    const char *local_host, int64_t *tsec, char tbuf[32],
		    const char *suffix)
{
	static const char *const padded[8] = {
		"emerg   ", "alert   ", "crit    ", "err     ",
		"warning ", "notice  ", "info    ", "debug   "};
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
	sb_add(out, padded[r->level & 7], 8);
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
	html_escape(o, h->data, h->len);
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
	html_escape(o, *r->tag ? r->tag : "-", strlen(*r->tag ? r->tag : "-"));
	sb_adds(o, "</td><td class=\"m\">");
	if (times > 1)
		sb_printf(o, "<b>\xC3\x97%lld</b> ", (long long)times);
	html_escape(o, r->message, r->message_len);
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
	html_escape(&t, b->env.subject, strlen(b->env.subject));
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
		base64(&c->out, in + i, k);
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
	sb_init(&c->out, 0);
	sb_init(&c->scratch, 0);
	sb_init(&c->line, 0);
	sb_init(&c->head_host, 0);
	sb_init(&c->head_day, 0);
	c->state = ST_END;
}

void sp_compose_free(sp_composer *c)
{
	sp_digest_free(c);
	sp_zone_close(c->zone);
	c->zone = NULL;
	sp_compose_stop(c);
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
	return c->src->open(c->src, c->b->size.gz    ? SP_SEVERE_FIRST
				    : c->b->n.nhosts > 1 ? SP_BY_HOST
							 : SP_OLDEST_FIRST);
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
			if (c->b->n.count == 0) { /* a heartbeat: no records */
				c->state = c->sp->cfg.html ? ST_HTML : ST_END;
				break;
			}
			int rc = records(c);
			if (rc == SPONGE_DONE)
				c->state = c->sp->cfg.html ? ST_HTML
				   : c->b->size.gz ? ST_ATTACH : ST_END;
			else if (rc != SPONGE_ROW)
				c->rc = rc;
			if (rc == SPONGE_DONE && c->b->size.gz &&
			    c->in_body < c->b->n.count) {
				sp_body_line(c, "", 0);
				sp_body_printf(c, "... and %lld more record%s, in "
					       "the attachment.",
					    (long long)(c->b->n.count - c->in_body),
					    c->b->n.count - c->in_body == 1 ? ""
									  : "s");
			}
			break;
		}
		case ST_HTML:
			if (c->readable) {
				readable_note(c, "[a text/html alternative "
						 "follows: the same, as a "
						 "table]");
				c->state = c->b->size.gz ? ST_ATTACH : ST_END;
				break;
			}
			/* the same content again, as HTML */
			if (!html_start(c))
				c->rc = c->rc ? c->rc : SPONGE_ENOMEM;
			c->state = ST_HTML_RECORDS;
			break;
		case ST_HTML_RECORDS: {
			if (c->b->n.count == 0) {
				html_end(c);
				c->state = c->b->size.gz ? ST_ATTACH : ST_END;
				break;
			}
			int rc = records(c);
			if (rc == SPONGE_DONE) {
				html_end(c);
				c->state = c->b->size.gz ? ST_ATTACH : ST_END;
			} else if (rc != SPONGE_ROW) {
				c->rc = rc;
			}
			break;
		}
		case ST_ATTACH:
			if (c->readable) {
				spbuf *o = &c->scratch;
				sb_reset(o);
				sb_printf(o, "[attached: %s, %llu bytes, gzip]",
					  c->b->size.gz_name,
					  (unsigned long long)c->b->size.gz_bytes);
				readable_note(c, o->data);
				c->state = ST_END;
				break;
			}
			if (attachment(c))
				c->state = ST_END;
			break;
		}
		if (c->rc != SPONGE_OK)
			return NULL;
	}
	*len = c->out.len;
	c->bytes += c->out.len;
	return c->out.len ? c->out.data : NULL;
}
