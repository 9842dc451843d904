/* utf8.c - make any bytes into clean, visible UTF-8 (PRODUCT "Records"). */
#include <string.h>

#include "internal.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Bytes that can be copied as they are: printable ASCII and tab. */
static inline bool plain_ascii(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

/*
 * Length of the well-formed UTF-8 sequence starting at s (Unicode table
 * 3-7), or 0 when it is ill-formed; *bad receives the length of the
 * maximal ill-formed subpart to replace with one U+FFFD.
 */
static size_t utf8_seq(const unsigned char *s, size_t avail, size_t *bad)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		*bad = 1;
		return 0;
	}
	for (size_t j = 1; j < need; j++) {
		if (j >= avail || s[j] < lo || s[j] > hi) {
			*bad = j;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need;
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* True when all 8 bytes of w are in 0x20..0x7E (SWAR; see "Bit Twiddling
 * Hacks", hasless/haszero). */
static inline bool word_printable(uint64_t w)
{
	uint64_t lt20 = (w - ONES * 0x20) & ~w & HIGH;
	uint64_t x = w ^ (ONES * 0x7F);
	uint64_t is7f = (x - ONES) & ~x & HIGH;
	return ((w & HIGH) | lt20 | is7f) == 0;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/*
 * The end of the value that starts at s[i], or i when none does: a run
 * of hex digits holding at least one decimal digit, numbers, hex ids,
 * UUIDs whose groups are letters only ("deadbeef-cafe-…-0123"), IPv4 and
 * IPv6 addresses: hex groups joined by '.', ':' or '-' count as one value
 * when the whole holds a decimal digit.  A run of hex letters alone is a
 * word ("dead beef cafe").
 */
static size_t value_end(const unsigned char *s, size_t i, size_t n)
{
	/* inside a word a value starts at a digit ("thread42": "thread#") */
	bool alnum_before = i > 0 && ((s[i - 1] >= '0' && s[i - 1] <= '9') ||
				      ((s[i - 1] | 0x20) >= 'a' &&
				       (s[i - 1] | 0x20) <= 'z'));
	if (alnum_before && !(s[i] >= '0' && s[i] <= '9'))
		return i;
	size_t j = i, end = i;
	bool digit = false;
	while (j < n) {
		size_t k = j;
		while (k < n && is_hex(s[k]))
			digit |= s[k] >= '0' && s[k] <= '9', k++;
		if (k == j)
			break;
		end = k;
		/* a separator continues the value only before another group */
		size_t sep = k;
		while (sep < n && sep - k < 2 &&
		       (s[sep] == '.' || s[sep] == ':' || s[sep] == '-'))
			sep++;
		if (sep == k || sep >= n || !is_hex(s[sep]))
			break;
		j = sep;
	}
	return digit ? end : i;
}

bool sp_mask(spbuf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		size_t j = value_end(u, i, n);
		if (j > i) {
			if (!sb_addc(out, '#'))
				return false;
			i = j;
			continue;
		}
		if (!sb_addc(out, s[i++]))
			return false;
	}
	return true;
}

uint64_t sp_fold_hash(int level, const char *tag, const char *msg, size_t n,
		      bool masked)
{
	uint64_t h = sp_fnv_byte(SP_FNV_BASIS, (unsigned char)(level & 7));
	for (const char *t = tag; *t; t++)
		h = sp_fnv_byte(h, (unsigned char)*t);
	h = sp_fnv_byte(h, 0xFF); /* no tag/message ambiguity: 0xFF is not UTF-8 */
	const unsigned char *s = (const unsigned char *)msg;
	for (size_t i = 0; i < n;) {
		/* a value starts at a hex digit: other bytes at once */
		if (!masked || !is_hex(s[i])) {
			h = sp_fnv_byte(h, s[i++]);
			continue;
		}
		size_t j = value_end(s, i, n);
		if (j > i) { /* as sp_mask writes it: "#" */
			h = sp_fnv_byte(h, '#');
			i = j;
			continue;
		}
		h = sp_fnv_byte(h, s[i++]);
	}
	/* exact: the length too, one more way for a collision to fail */
	return masked ? h : (h ^ (uint64_t)n) * SP_FNV_PRIME;
}

bool sp_is_clean(const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, bad;
	while (i < len) {
		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (word_printable(w)) {
				i += 8;
				continue;
			}
		}
		if (plain_ascii(s[i])) {
			i++;
			continue;
		}
		if (s[i] < 0x80)
			return false;
		size_t n = utf8_seq(s + i, len - i, &bad);
		if (n == 0 || (n == 2 && s[i] == 0xC2 && s[i + 1] < 0xA0))
			return false;
		i += n;
	}
	return true;
}

bool sp_clean(spbuf *out, const char *in, size_t len, size_t limit,
	      size_t *consumed)
{
	return sp_clean_text(out, in, len, limit, consumed, false);
}

bool sp_clean_text(spbuf *out, const char *in, size_t len, size_t limit,
		   size_t *consumed, bool lines)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, made = 0, bad;
	char vis[16];

	while (i < len) {
		/* Copy a run of plain ASCII in one go. */
		size_t run = i;
		while (run < len && plain_ascii(s[run]))
			run++;
		if (run > i) {
			size_t n = run - i;
			if (n > limit - made)
				n = limit - made;
			if (!sb_add(out, s + i, n))
				return false;
			made += n;
			i += n;
			if (i < run)
				break; /* limit reached */
			continue;
		}

		const char *rep;
		size_t rlen, take;
		unsigned char c = s[i];
		if (lines && (c == '\n' || (c == '\r' && i + 1 < len &&
					    s[i + 1] == '\n'))) {
			/* a record of several lines: LF kept, CRLF as LF */
			rep = "\n";
			rlen = 1;
			take = c == '\r' ? 2 : 1;
		} else if (c < 0x20 || c == 0x7f) {
			/* C0 control or DEL: U+2400 + c, U+2421 for DEL */
			unsigned cp = c == 0x7f ? 0x2421 : 0x2400 + c;
			vis[0] = (char)(0xE0 | (cp >> 12));
			vis[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
			vis[2] = (char)(0x80 | (cp & 0x3F));
			rep = vis;
			rlen = 3;
			take = 1;
		} else {
			size_t n = utf8_seq(s + i, len - i, &bad);
			if (n == 0) {
				rep = REPLACEMENT;
				rlen = 3;
				take = bad;
			} else if (n == 2 && c == 0xC2 && s[i + 1] < 0xA0) {
				/* C1 control: spell it out */
				static const char hex[] = "0123456789ABCDEF";
				memcpy(vis, "<U+00", 5);
				vis[5] = hex[s[i + 1] >> 4];
				vis[6] = hex[s[i + 1] & 15];
				vis[7] = '>';
				rep = vis;
				rlen = 8;
				take = 2;
			} else {
				rep = in + i;
				rlen = n;
				take = n;
			}
		}
		if (rlen > limit - made)
			break;
		if (!sb_add(out, rep, rlen))
			return false;
		made += rlen;
		i += take;
	}
	if (consumed)
		*consumed = i;
	return true;
}
