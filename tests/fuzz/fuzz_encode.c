/* Fuzz the quoted-printable and RFC 2047 encoders against decoders:
 * what goes in comes out, and no line is too long. */
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
	check_lines(h.data, h.len, 78);
	/* decode the encoded words (or take the plain text) */
	const char *v = h.data + 9;
	spbuf dec;
	sb_init(&dec, 0);
	if (strncmp(v, "=?UTF-8?B?", 10) != 0) {
		sb_add(&dec, v, strlen(v) - 2);
	} else {
		while ((v = strstr(v, "=?UTF-8?B?"))) {
			v += 10;
			const char *end = strstr(v, "?=");
			unsigned acc = 0;
			int bits = 0;
			for (; v < end; v++) {
				if (*v == '=')
					break;
				int x = b64v(*v);
				if (x < 0)
					__builtin_trap();
				acc = acc << 6 | (unsigned)x;
				bits += 6;
				if (bits >= 8) {
					bits -= 8;
					sb_addc(&dec, (char)(acc >> bits));
				}
			}
			v = end + 2;
		}
	}
	if (dec.len != t.len || memcmp(dec.data, t.data, t.len) != 0)
		__builtin_trap();
	sb_free(&dec);
	sb_free(&t);
	sb_free(&h);
	sb_free(&q);
	free(back);
	free(line);
	return 0;
}
