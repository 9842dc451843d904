/* Unit tests: quoted-printable lines and RFC 2047 header text. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "flush.h"
#include "unit.h"

/* Decode one QP-encoded line group (soft breaks joined) back to bytes. */
static size_t qp_decode(const char *in, char *out)
{
	size_t o = 0;
	for (const char *p = in; *p;) {
		if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
			p += 3;
		} else if (p[0] == '=') {
			char h[3] = {p[1], p[2], 0};
			out[o++] = (char)strtol(h, NULL, 16);
			p += 3;
		} else if (p[0] == '\r' && p[1] == '\n') {
			break;
		} else {
			out[o++] = *p++;
		}
	}
	return o;
}

/* No output line starts with "." or "From " (soft breaks included), and
 * the encoding decodes back to in. */
static void assert_qp_safe(const spbuf *b, const char *in)
{
	for (size_t i = 0; i < b->len; i++)
		if (i == 0 || b->data[i - 1] == '\n') {
			ck_assert_msg(b->data[i] != '.', "%s", in);
			ck_assert_msg(strncmp(b->data + i, "From ", 5) != 0, "%s",
				      in);
		}
	char back[512];
	size_t n = qp_decode(b->data, back);
	ck_assert_uint_eq(n, strlen(in));
	ck_assert_mem_eq(back, in, n);
}

static const char *const qp_cases[] = {
	"plain",
	"",
	"trailing space ",
	"trailing tab\t",
	".leading dot",
	".",
	"From the start",
	"a=b",
	"caf\xc3\xa9 \xe2\x82\xac",
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	"=========================================================================",
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
};

START_TEST(qp_roundtrip_and_line_length)
{
	const char *in = qp_cases[_i];
	spbuf b;
	sb_init(&b, 0);
	ck_assert(sp_qp_line(&b, in, strlen(in)));
	/* ends in CRLF, no line over 76 octets, only printable ASCII */
	ck_assert_uint_ge(b.len, 2);
	ck_assert_mem_eq(b.data + b.len - 2, "\r\n", 2);
	size_t col = 0;
	for (size_t i = 0; i < b.len; i++) {
		unsigned char c = (unsigned char)b.data[i];
		if (c == '\r') {
			ck_assert_int_eq(b.data[i + 1], '\n');
			ck_assert_uint_le(col, 76);
			col = 0;
			i++;
			continue;
		}
		ck_assert(c >= 32 && c < 127);
		col++;
	}
	/* a space or tab never ends an encoded line */
	for (size_t i = 1; i < b.len; i++)
		if (b.data[i] == '\r')
			ck_assert(b.data[i - 1] != ' ' && b.data[i - 1] != '\t');
	assert_qp_safe(&b, in);
	sb_free(&b);
}
END_TEST

/* "." and "From " where a soft break puts them at a line's start: the
 * line lengths before them cover every column near the break. */
START_TEST(hostile_text_at_soft_breaks)
{
	for (int k = 60; k < 80; k++)
		for (int which = 0; which < 2; which++) {
			char in[200];
			memset(in, 'x', (size_t)k);
			strcpy(in + k, which ? "From me" : ".dot");
			spbuf b;
			sb_init(&b, 0);
			ck_assert(sp_qp_line(&b, in, strlen(in)));
			assert_qp_safe(&b, in);
			sb_free(&b);
		}
}
END_TEST

/* Display names: one row per case. */
static const struct {
	const char *name, *want;
} phrases[] = {
	{"Log Sponge", "Log Sponge"},
	{"Doe, Jane", "\"Doe, Jane\""},
	{"ops: on call", "\"ops: on call\""},
	{"Jane Q. Doe", "\"Jane Q. Doe\""},
	{"say \"hi\" \\ bye", "\"say \\\"hi\\\" \\\\ bye\""},
	{"J\xc3\xb6rg M\xc3\xbcller", "=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?="},
	{"=?UTF-8?B?eA==?=", "\"=?UTF-8?B?eA==?=\""},
};

START_TEST(display_names)
{
	spbuf b;
	sb_init(&b, 0);
	ck_assert(sp_phrase(&b, phrases[_i].name));
	ck_assert_str_eq(b.data, phrases[_i].want);
	sb_free(&b);
}
END_TEST

START_TEST(header_text)
{
	spbuf b;
	sb_init(&b, 0);
	ck_assert(sp_header_text(&b, "Subject", "short ascii"));
	ck_assert_str_eq(b.data, "Subject: short ascii\r\n");
	sb_reset(&b);
	ck_assert(sp_header_text(&b, "Subject", "caf\xc3\xa9"));
	ck_assert_str_eq(b.data, "Subject: =?UTF-8?B?Y2Fmw6k=?=\r\n");
	sb_reset(&b);
	/* long: several encoded words, each line short, no split UTF-8 */
	char longs[400] = "";
	for (int i = 0; i < 60; i++)
		strcat(longs, "\xe2\x82\xac\xc3\xa9");
	ck_assert(sp_header_text(&b, "Subject", longs));
	size_t col = 0;
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\r') {
			ck_assert_uint_le(col, 78);
			col = 0;
			i++;
			continue;
		}
		col++;
	}
	ck_assert_ptr_nonnull(strstr(b.data, "?=\r\n =?UTF-8?B?"));
	sb_free(&b);
}
END_TEST

/* Every line of a header within 78 octets; encoded words with padding
 * only in the last one. */
static void assert_header_shape(const char *h)
{
	size_t col = 0;
	for (const char *p = h; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			ck_assert_msg(col <= 78, "line of %zu: %s", col, h);
			col = 0;
			p++;
			continue;
		}
		col++;
	}
	const char *last = NULL;
	for (const char *w = h; (w = strstr(w, "=?UTF-8?B?")); w += 10)
		last = w;
	for (const char *w = h; (w = strstr(w, "=?UTF-8?B?")) && w != last;
	     w += 10) {
		const char *end = strstr(w + 10, "?=");
		ck_assert_ptr_nonnull(end);
		ck_assert_msg(!memchr(w + 10, '=', (size_t)(end - w - 10)),
			      "padding inside: %s", h);
	}
}

START_TEST(header_folding)
{
	spbuf b;
	sb_init(&b, 0);
	/* plain ASCII longer than a line: folded at spaces, not encoded */
	const char *ascii = "[logsponge] web1.example.org: 1234 records, "
			    "highest err: backup of /srv/data failed after "
			    "3 retries (rsync exit 23)";
	ck_assert(sp_header_text(&b, "Subject", ascii));
	ck_assert_ptr_null(strstr(b.data, "=?"));
	ck_assert_ptr_nonnull(strstr(b.data, "\r\n "));
	assert_header_shape(b.data);
	/* unfolded, it is the text again */
	spbuf u;
	sb_init(&u, 0);
	for (const char *p = b.data + 9; *p; p++)
		if (!(p[0] == '\r' || p[0] == '\n'))
			sb_addc(&u, *p);
	ck_assert_str_eq(u.data, ascii);
	sb_free(&u);
	/* mixed: ASCII words stay readable, the others are encoded */
	sb_reset(&b);
	ck_assert(sp_header_text(&b, "Subject",
				 "[logsponge] h\xc3\xb4te: 3 records, highest "
				 "err: \xc3\xa9" "chec de la sauvegarde \xe6\x97"
				 "\xa5\xe6\x9c\xac \xe2\x82\xac\xe2\x82\xac"
				 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2"
				 "\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82"
				 "\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
				 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"));
	ck_assert_int_eq(strncmp(b.data, "Subject: [logsponge] =?UTF-8?B?", 31),
			 0);
	assert_header_shape(b.data);
	sb_init(&u, 0);
	for (const char *p = b.data; *p; p++)
		if (!(p[0] == '\r' || p[0] == '\n'))
			sb_addc(&u, *p);
	ck_assert_ptr_nonnull(strstr(u.data, " records, highest err: =?UTF-8?B?"));
	ck_assert_ptr_nonnull(strstr(u.data, "?= de la sauvegarde =?UTF-8?B?"));
	sb_free(&u);
	sb_free(&b);
}
END_TEST

Suite *compose_suite(void)
{
	Suite *s = suite_create("compose");
	TCase *t = tcase_create("core");
	tcase_add_loop_test(t, qp_roundtrip_and_line_length, 0,
			    (int)(sizeof qp_cases / sizeof qp_cases[0]));
	tcase_add_test(t, header_text);
	tcase_add_test(t, hostile_text_at_soft_breaks);
	tcase_add_test(t, header_folding);
	tcase_add_loop_test(t, display_names, 0,
			    sizeof phrases / sizeof phrases[0]);
	suite_add_tcase(s, t);
	return s;
}
