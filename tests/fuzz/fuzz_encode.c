/* Fuzz the quoted-printable and RFC 2047 encoders against decoders:
 * what goes in comes out, and no line is too long. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flush.h"

static int hexv(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_lines(const char *s, size_t n, size_t max)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n' || col > max)
				__builtin_trap();
			col = 0;
			i++;
		} else if (s[i] == '\n' || (unsigned char)s[i] > 126 ||
			   ((unsigned char)s[i] < 32 && s[i] != '\t')) {
			__builtin_trap();
		} else {
			col++;
		}
	}
}

/* Header lines within 78 octets, unless a line is one word that no fold
 * can split (then within 998). */
static void check_header_lines(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '\r')
			continue;
		size_t len = i - start, b = start;
		if (start == 0)
			b += 8; /* "Subject:" */
		while (b < i && s[b] == ' ')
			b++;
		if (len > 998 ||
		    (len > 78 && memchr(s + b, ' ', i - b)))
			__builtin_trap();
		start = i + 2;
		i++;
	}
	check_lines(s, n, 998);
}

static int b64v(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* QP takes any bytes but line ends */
	char *line = malloc(size + 1);
	size_t n = 0;
	for (size_t i = 0; i < size; i++)
		if (data[i] != '\r' && data[i] != '\n')
			line[n++] = (char)data[i];
	spbuf q;
	sb_init(&q, 0);
	if (!sp_qp_line(&q, line, n))
		__builtin_trap();
	check_lines(q.data, q.len, 76);
	if (q.len < 2 || memcmp(q.data + q.len - 2, "\r\n", 2) != 0)
		__builtin_trap();
	/* decode */
	char *back = malloc(q.len + 1);
	size_t b = 0;
	for (size_t i = 0; i < q.len - 2;) {
		if (q.data[i] == '=' && q.data[i + 1] == '\r') {
			i += 3;
		} else if (q.data[i] == '=') {
			int h = hexv(q.data[i + 1]), l = hexv(q.data[i + 2]);
			if (h < 0 || l < 0)
				__builtin_trap();
			back[b++] = (char)(h * 16 + l);
			i += 3;
		} else {
			back[b++] = q.data[i++];
		}
	}
	if (b != n || memcmp(back, line, n) != 0)
		__builtin_trap();
	if (n && (line[0] == '.' || (n >= 5 && memcmp(line, "From ", 5) == 0))
	    && q.data[0] != '=')
		__builtin_trap();

	/* RFC 2047 takes clean text */
	spbuf t, h;
	sb_init(&t, 0);
	sb_init(&h, 0);
	size_t used;
	sp_clean(&t, line, n, 2000, &used);
	if (!sp_header_text(&h, "Subject", t.data))
		__builtin_trap();
	check_header_lines(h.data, h.len);
	/* unfold, then decode: plain words as they are, encoded words (B or
	 * Q) decoded, the spaces between two encoded words dropped */
	spbuf u, dec;
	sb_init(&u, 0);
	sb_init(&dec, 0);
	for (const char *c = h.data + 8; *c; c++)
		if (*c != '\r' && *c != '\n')
			sb_addc(&u, *c);
	const char *v = u.data;
	bool prev_encoded = false;
	size_t gap_at = 0;
	if (*v == ' ')
		v++; /* the space after the colon */
	while (*v) {
		const char *sp = v;
		while (*v == ' ')
			v++;
		const char *tok = v;
		while (*v && *v != ' ')
			v++;
		size_t tl = (size_t)(v - tok);
		bool enc = tl >= 12 && strncmp(tok, "=?UTF-8?", 8) == 0 &&
			   tok[9] == '?' && tok[tl - 2] == '?' && tok[tl - 1] == '=';
		if (!(enc && prev_encoded))
			sb_add(&dec, sp, (size_t)(tok - sp));
		gap_at = dec.len;
		if (!enc) {
			sb_add(&dec, tok, tl);
		} else if (tok[8] == 'Q') {
			for (const char *c = tok + 10; c < tok + tl - 2; c++) {
				if (*c == '=' && hexv(c[1]) >= 0 && hexv(c[2]) >= 0) {
					sb_addc(&dec, (char)(hexv(c[1]) * 16 + hexv(c[2])));
					c += 2;
				} else {
					sb_addc(&dec, *c == '_' ? ' ' : *c);
				}
			}
		} else {
			unsigned acc = 0;
			int bits = 0;
			for (const char *c = tok + 10; c < tok + tl - 2; c++) {
				if (*c == '=')
					break;
				int x = b64v(*c);
				if (x < 0)
					__builtin_trap();
				acc = acc << 6 | (unsigned)x;
				bits += 6;
				if (bits >= 8) {
					bits -= 8;
					sb_addc(&dec, (char)(acc >> bits));
				}
			}
		}
		prev_encoded = enc;
	}
	(void)gap_at;
	/* leading and trailing spaces are not part of a header's value */
	size_t lo = 0, hi = t.len;
	while (lo < hi && t.data[lo] == ' ')
		lo++;
	while (hi > lo && t.data[hi - 1] == ' ')
		hi--;
	sb_free(&u);
	if (dec.len != hi - lo || memcmp(dec.data, t.data + lo, hi - lo) != 0)
		__builtin_trap();
	sb_free(&dec);
	sb_free(&t);
	sb_free(&h);
	sb_free(&q);
	free(back);
	free(line);
	return 0;
}
