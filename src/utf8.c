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

/* Byte classes for masking values: one lookup per byte. */
enum { V_DIGIT = 1, V_HEX = 2, V_ALNUM = 4, V_SEP = 8 };
#define V_D (V_DIGIT | V_HEX | V_ALNUM)
#define V_X (V_HEX | V_ALNUM)
#define V_A V_ALNUM
static const unsigned char vcls[256] = {
	['0'] = V_D, ['1'] = V_D, ['2'] = V_D, ['3'] = V_D, ['4'] = V_D,
	['5'] = V_D, ['6'] = V_D, ['7'] = V_D, ['8'] = V_D, ['9'] = V_D,
	['a'] = V_X, ['b'] = V_X, ['c'] = V_X, ['d'] = V_X, ['e'] = V_X,
	['f'] = V_X, ['A'] = V_X, ['B'] = V_X, ['C'] = V_X, ['D'] = V_X,
	['E'] = V_X, ['F'] = V_X,
	['g'] = V_A, ['h'] = V_A, ['i'] = V_A, ['j'] = V_A, ['k'] = V_A,
	['l'] = V_A, ['m'] = V_A, ['n'] = V_A, ['o'] = V_A, ['p'] = V_A,
	['q'] = V_A, ['r'] = V_A, ['s'] = V_A, ['t'] = V_A, ['u'] = V_A,
	['v'] = V_A, ['w'] = V_A, ['x'] = V_A, ['y'] = V_A, ['z'] = V_A,
	['G'] = V_A, ['H'] = V_A, ['I'] = V_A, ['J'] = V_A, ['K'] = V_A,
	['L'] = V_A, ['M'] = V_A, ['N'] = V_A, ['O'] = V_A, ['P'] = V_A,
	['Q'] = V_A, ['R'] = V_A, ['S'] = V_A, ['T'] = V_A, ['U'] = V_A,
	['V'] = V_A, ['W'] = V_A, ['X'] = V_A, ['Y'] = V_A, ['Z'] = V_A,
	['.'] = V_SEP, [':'] = V_SEP, ['-'] = V_SEP,
};
#undef V_D
#undef V_X
#undef V_A
#define V(c, f) ((vcls[(c)] & (f)) != 0)

/* Can a value start at s[i]?  At a hex digit, but inside a word only at
 * a decimal digit ("thread42": "thread#"). */
static inline bool value_may_start(const unsigned char *s, size_t i)
{
	return V(s[i], V_HEX) &&
	       (i == 0 || !V(s[i - 1], V_ALNUM) || V(s[i], V_DIGIT));
}

/*
 * The end of the value that starts at s[i] (value_may_start), or i when
 * none does: a run of hex digits holding at least one decimal digit,
 * numbers, hex ids, UUIDs whose groups are letters only
 * ("deadbeef-cafe-…-0123"), IPv4 and IPv6 addresses: hex groups joined by
 * '.', ':' or '-' count as one value when the whole holds a decimal
 * digit.  "0x" and the hex digits after it are one value ("0xcd12"), and
 * so is a word of eight or more hex letters ("deadbeef"); a shorter run
 * of hex letters alone is a word ("dead beef cafe", "decade").
 */
static size_t value_end(const unsigned char *s, size_t i, size_t n)
{
	size_t j = i, end = i, longest = 0;
	bool digit = false;
	if (s[i] == '0' && i + 2 < n && (s[i + 1] | 0x20) == 'x' &&
	    V(s[i + 2], V_HEX)) { /* "0x…" */
		j = i + 2;
		digit = true;
	}
	while (j < n) {
		size_t k = j;
		while (k < n && V(s[k], V_HEX))
			digit |= V(s[k], V_DIGIT), k++;
		if (k == j)
			break;
		end = k;
		longest = k - j > longest ? k - j : longest;
		/* a separator continues the value only before another group */
		size_t sep = k;
		while (sep < n && sep - k < 2 && V(s[sep], V_SEP))
			sep++;
		if (sep == k || sep >= n || !V(s[sep], V_HEX))
			break;
		j = sep;
	}
	if (digit)
		return end;
	return longest >= 8 && (end == n || !V(s[end], V_ALNUM)) ? end : i;
}

/* The end of the value at s[i], or i.  A hex letter followed by a byte
 * that neither continues its run nor joins another group ("connection",
 * "a b") starts a word: decided without the walk. */
static inline size_t value_at(const unsigned char *s, size_t i, size_t n)
{
	if (!value_may_start(s, i))
		return i;
	if (!V(s[i], V_DIGIT) && (i + 1 >= n || !V(s[i + 1], V_HEX | V_SEP)))
		return i;
	return value_end(s, i, n);
}

bool sp_mask(spbuf *out, const char *s, size_t n)
{
	/* a value becomes one '#': never longer than what it masks */
	if (!sb_grow(out, n))
		return false;
	const unsigned char *u = (const unsigned char *)s;
	char *o = out->data + out->len;
	for (size_t i = 0; i < n;) {
		size_t j = value_at(u, i, n);
		if (j > i) {
			*o++ = '#';
			i = j;
		} else {
			*o++ = s[i++];
		}
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
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
	if (!masked) { /* exact: the length too, one more way for a collision
			  to fail */
		for (size_t i = 0; i < n; i++)
			h = sp_fnv_byte(h, s[i]);
		return (h ^ (uint64_t)n) * SP_FNV_PRIME;
	}
	for (size_t i = 0; i < n;) {
		size_t j = value_at(s, i, n);
		if (j > i) { /* as sp_mask writes it: "#" */
			h = sp_fnv_byte(h, '#');
			i = j;
			continue;
		}
		h = sp_fnv_byte(h, s[i++]);
	}
	return h;
}

bool sp_is_clean(const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, bad;
	while (i < len) {
		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (sp_word_printable(w)) {
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
