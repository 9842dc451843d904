/* mime.c - the MIME encoders, pure functions of their input (no handle):
 * quoted-printable lines, base64, RFC 2047 header words folded within
 * 78 octets, RFC 5322 phrases and dates, HTML escaping.  The composer
 * and the config use them; the fuzz targets call them alone. */
#define _DEFAULT_SOURCE /* gmtime_r */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

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
			for (uint64_t w; i + run + 8 <= n; run += 8) {
				memcpy(&w, s + i + run, 8); /* 8 at a time */
				if (!sp_word_printable(w) || !sp_word_lacks(w, '='))
					break;
			}
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

bool sp_base64(spbuf *out, const unsigned char *p, size_t n)
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
	return ok && (q || sp_base64(w, p, n)) && sb_adds(w, "?=");
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

void sp_rfc5322_date(int64_t t_us, char *buf, size_t n)
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

/* s[0..n) with & < > " ' as entities, into out. */
bool sp_html_escape(spbuf *out, const char *s, size_t n)
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
