/* Unit tests of the rules' syntax (rules.c) and of the many-pattern
 * matcher (match.c, Vectorscan): a line copied from a digest's masked
 * form is a rule that matches the lines it stands for, first match wins,
 * and a pattern the engine cannot take is named. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "match.h"
#include "rules.h"
#include "unit.h"

static const struct parse_case {
	const char *line;
	int verb, to, most, least, masked;
	const char *tag, *pattern, *name;
} parse_cases[] = {
	{"ignore \"session opened for user #\"", SP_VERB_IGNORE, -1, -1, -1, 1,
	 NULL, "session opened for user #", "t.rules:1"},
	{"  drop tag=nginx \"GET /healthz * 200\" name=healthz", SP_VERB_DROP,
	 -1, -1, -1, 1, "nginx", "GET /healthz * 200", "healthz"},
	{"level tag=rsync* level<=err /vanished/ to=warning", SP_VERB_LEVEL,
	 SPONGE_WARNING, -1, SPONGE_ERR, 0, "rsync*", "vanished", "t.rules:1"},
	{"keep level>=crit \"*\"", SP_VERB_KEEP, -1, SPONGE_CRIT, -1, 1, NULL,
	 "*", "t.rules:1"},
	{"ignore /a\\/b \\d+/ until=2027-01-31 unless=100/1h", SP_VERB_IGNORE, -1,
	 -1, -1, 0, NULL, "a/b \\d+", "t.rules:1"},
	{"ignore \"say \\\"hi\\\" \\\\ bye\"", SP_VERB_IGNORE, -1, -1, -1, 1, NULL,
	 "say \"hi\" \\ bye", "t.rules:1"},
	/* an empty masked pattern (an empty first line); freeing it was a
	 * bad free (fuzz_rules) */
	{"ignore \"\"", SP_VERB_IGNORE, -1, -1, -1, 1, NULL, "", "t.rules:1"},
};

START_TEST(parse_table)
{
	const struct parse_case *k = &parse_cases[_i];
	sp_rules rs = {0};
	spbuf err;
	sb_init(&err, 0);
	int rc = sp_rules_parse(&rs, "t.rules", k->line, strlen(k->line), &err);
	ck_assert_msg(rc == SPONGE_OK, "%s: %s", k->line, err.data);
	ck_assert_uint_eq(rs.n, 1);
	const sp_rule *r = &rs.r[0];
	ck_assert_int_eq(r->verb, k->verb);
	ck_assert_int_eq(r->to, k->to);
	ck_assert_int_eq(r->most, k->most);
	ck_assert_int_eq(r->least, k->least);
	ck_assert_int_eq(r->masked, k->masked);
	if (k->tag)
		ck_assert_str_eq(r->tag, k->tag);
	else
		ck_assert_ptr_null(r->tag);
	ck_assert_str_eq(r->pattern, k->pattern);
	ck_assert_str_eq(r->name, k->name);
	sp_rules_free(&rs);
	sb_free(&err);
}
END_TEST

static const struct bad_case {
	const char *text, *why;
} bad_cases[] = {
	{"# a comment\n\nsilence \"x\"\n", "t.rules:3: unknown verb \"silence\""},
	{"ignore\n", "t.rules:1: no pattern"},
	{"ignore tag=x \"open\n", "t.rules:1: no closing \""},
	{"ignore /x\n", "t.rules:1: no closing /"},
	{"ignore //\n", "t.rules:1: an empty /ERE/"},
	{"level \"x\"\n", "t.rules:1: level needs to=LEVEL"},
	{"drop \"x\" to=err\n", "t.rules:1: to= is for level and keep"},
	{"ignore level>=loud \"x\"\n", "\"loud\" is not a level"},
	{"ignore \"x\" until=soon\n", "until=soon: not a date"},
	{"ignore \"x\" unless=5\n", "unless=5: not N/WINDOW"},
	{"ignore \"x\" colour=red\n", "unknown option \"colour=red\""},
	{"ignore x \"y\"\n", "\"x…\" is not a pattern"},
};

START_TEST(bad_table)
{
	const struct bad_case *k = &bad_cases[_i];
	sp_rules rs = {0};
	spbuf err;
	sb_init(&err, 0);
	ck_assert_int_eq(sp_rules_parse(&rs, "t.rules", k->text, strlen(k->text),
					&err),
			 SPONGE_ECONFIG);
	ck_assert_msg(strstr(err.data, k->why), "%s: \"%s\"", k->text, err.data);
	sp_rules_free(&rs);
	sb_free(&err);
}
END_TEST

/* Rules in the masked form against lines, through the mask scanner and
 * the engine: the first rule that matches each line. */
static const char rules_text[] =
	"ignore \"session opened for user # by (uid=#)\"\n"
	"ignore \"took #ms status=#\"\n"
	"drop \"GET /healthz *\"\n"
	"ignore /(disk|volume) almost full/\n"
	"keep \"*\"\n";

static const struct match_case {
	const char *line;
	long rule; /* -1: none */
} match_cases[] = {
	{"session opened for user 1000 by (uid=0)", 0},
	{"session opened for user 7f3a by (uid=0)", 0},
	{"session opened for user root by (uid=0)", 4}, /* a word, not a value */
	{"took 12ms status=200", 1},
	{"took 12.5ms status=503", 1},
	{"took ms status=200", 4},
	{"GET /healthz HTTP/1.1 200 3ms", 2},
	{"xGET /healthz", 4}, /* a masked rule is the whole line */
	{"warning: disk almost full on /srv", 3},
	{"", 4},
};

static sp_matcher *build(const sp_rules *rs)
{
	const char *re[16];
	for (size_t i = 0; i < rs->n; i++)
		re[i] = rs->r[i].regex;
	sp_matcher *m = NULL;
	spbuf why;
	sb_init(&why, 0);
	long bad;
	ck_assert_int_eq(sp_matcher_build(re, NULL, rs->n, &m, &why, &bad),
			 SPONGE_OK);
	sb_free(&why);
	return m;
}

/* The line a rule sees: the masked line for a masked rule, the message
 * for an /ERE/ one (so each rule's own form decides). */
static long first_rule(sp_matcher *masked, sp_matcher *plain,
		       const char *line)
{
	spbuf ml;
	sb_init(&ml, 0);
	sp_mask(&ml, line, strlen(line));
	long a = sp_matcher_first(masked, ml.data ? ml.data : "", ml.len, NULL,
				  NULL);
	long b = sp_matcher_first(plain, line, strlen(line), NULL, NULL);
	sb_free(&ml);
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

START_TEST(match_table)
{
	sp_rules rs = {0};
	spbuf err;
	sb_init(&err, 0);
	ck_assert_int_eq(sp_rules_parse(&rs, "t.rules", rules_text,
					sizeof rules_text - 1, &err),
			 SPONGE_OK);
	/* one engine per form, each pattern reported as its rule's index */
	const char *rm[8], *rp[8];
	unsigned im[8], ip[8];
	size_t nm = 0, np = 0;
	for (size_t i = 0; i < rs.n; i++) {
		if (rs.r[i].masked)
			rm[nm] = rs.r[i].regex, im[nm++] = (unsigned)i;
		else
			rp[np] = rs.r[i].regex, ip[np++] = (unsigned)i;
	}
	sp_matcher *m = NULL, *p = NULL;
	spbuf why;
	sb_init(&why, 0);
	long bad;
	ck_assert_msg(sp_matcher_build(rm, im, nm, &m, &why, &bad) ==
			      SPONGE_OK,
		      "%ld %s", bad, why.data);
	ck_assert_msg(sp_matcher_build(rp, ip, np, &p, &why, &bad) ==
			      SPONGE_OK,
		      "%ld %s", bad, why.data);
	for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
		const struct match_case *k = &match_cases[i];
		long got = first_rule(m, p, k->line);
		ck_assert_msg(got == k->rule, "\"%s\": rule %ld, want %ld",
			      k->line, got, k->rule);
	}
	sp_matcher_free(m);
	sp_matcher_free(p);
	sb_free(&why);
	sp_rules_free(&rs);
	sb_free(&err);
}
END_TEST

/* First match wins among those the caller accepts (a field test). */
static bool odd_only(void *arg, long i)
{
	(void)arg;
	return i % 2 == 1;
}

START_TEST(first_accepted_wins)
{
	sp_rules rs = {0};
	spbuf err;
	sb_init(&err, 0);
	const char text[] = "ignore /a/\nignore /b/\nignore /c/\nignore /d/\n";
	ck_assert_int_eq(sp_rules_parse(&rs, "t", text, sizeof text - 1, &err),
			 SPONGE_OK);
	sp_matcher *m = build(&rs);
	ck_assert_int_eq(sp_matcher_first(m, "dcba", 4, NULL, NULL), 0);
	ck_assert_int_eq(sp_matcher_first(m, "dcba", 4, odd_only, NULL), 1);
	ck_assert_int_eq(sp_matcher_first(m, "xdx", 3, odd_only, NULL), 3);
	ck_assert_int_eq(sp_matcher_first(m, "xcx", 3, odd_only, NULL), -1);
	ck_assert_int_eq(sp_matcher_first(m, "zzz", 3, NULL, NULL), -1);
	sp_matcher_free(m);
	sp_rules_free(&rs);
	sb_free(&err);
}
END_TEST

/* A pattern the engine cannot take is named, by its index. */
START_TEST(engine_refusal_named)
{
	const char *re[] = {"fine", "(a)\\1", "also fine"};
	sp_matcher *m = NULL;
	spbuf why;
	sb_init(&why, 0);
	long bad = 99;
	ck_assert_int_eq(sp_matcher_build(re, NULL, 3, &m, &why, &bad),
			 SPONGE_ECONFIG);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(bad, 1);
	ck_assert_uint_gt(why.len, 0);
	sb_free(&why);
	/* no patterns: a matcher that matches nothing */
	ck_assert_int_eq(sp_matcher_build(re, NULL, 0, &m, &why, &bad), SPONGE_OK);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(sp_matcher_first(m, "fine", 4, NULL, NULL), -1);
}
END_TEST

/* Any line's masked form, written as a rule, matches that line: a rule
 * copied from a digest and fold = masked cannot disagree. */
START_TEST(masked_form_matches_its_lines)
{
	static const char alphabet[] = "ab1Z9 .:-_/=()[]{}|?+^$\\x#f0\t";
	unsigned seed = 7;
	for (int round = 0; round < 300; round++) {
		char line[48];
		size_t n = (size_t)(seed % 40);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			line[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		line[n] = '\0';
		seed = seed * 1103515245u + 12345u;
		spbuf ml, re;
		sb_init(&ml, 0);
		sb_init(&re, 0);
		sp_mask(&ml, line, n);
		ck_assert(sp_rules_masked_regex(&re, ml.data ? ml.data : ""));
		const char *p[] = {re.data};
		sp_matcher *m = NULL;
		spbuf why;
		sb_init(&why, 0);
		long bad;
		ck_assert_msg(sp_matcher_build(p, NULL, 1, &m, &why, &bad) ==
				      SPONGE_OK,
			      "%s -> %s: %s", line, re.data, why.data);
		ck_assert_msg(sp_matcher_first(m, ml.data ? ml.data : "", ml.len,
					       NULL, NULL) == 0,
			      "\"%s\" (masked \"%s\") not matched by %s", line,
			      ml.data, re.data);
		sp_matcher_free(m);
		sb_free(&why);
		sb_free(&ml);
		sb_free(&re);
	}
}
END_TEST


/* POSIX EREs as GNU grep reads them, for Vectorscan. */
static const struct posix_case {
	const char *ere, *pcre; /* pcre NULL: left to the C library */
} posix_cases[] = {
	{"^\\w{3} [ :[:digit:]]{11}", "^\\w{3} [ :[:digit:]]{11}"},
	{"[:[:digit:]]+", "[\\:[:digit:]]+"},
	{"a[\\]b", "a[\\\\]b"},      /* a backslash is itself in a bracket */
	{"[]x]", "[\\]x]"},
	{"[^]x]", "[^\\]x]"},
	{"x{,3}", "x{0,3}"},
	{"\\d\\.", "d\\."},          /* GNU: \d is d */
	{"\\s+\\S \\w\\b", "\\s+\\S \\w\\b"},
	{"sshd\\[[[:digit:]]+\\]: ", "sshd\\[[[:digit:]]+\\]: "},
	{"(a)\\1", NULL},
	{"\\<word\\>", NULL},
	{"[[=a=]]", NULL},
	{"[abc", NULL},
};

START_TEST(posix_table)
{
	const struct posix_case *k = &posix_cases[_i];
	spbuf out;
	sb_init(&out, 0);
	bool ok = sp_posix_to_pcre(k->ere, &out);
	if (!k->pcre) {
		ck_assert_msg(!ok, "%s -> %s", k->ere, out.data);
	} else {
		ck_assert_msg(ok, "%s", k->ere);
		ck_assert_str_eq(out.data, k->pcre);
		ck_assert(sp_matcher_accepts(out.data));
	}
	sb_free(&out);
}
END_TEST

/* What the engine lacks becomes a prefilter that matches at least as
 * much (each match confirmed by the C library's regex). */
START_TEST(posix_superset)
{
	static const char *const in[] = {"(a+)-\\1$", "\\<word\\>", "x"};
	static const char *const want[] = {"(a+)-.*$", "word", "x"};
	for (int i = 0; i < 3; i++) {
		spbuf out;
		sb_init(&out, 0);
		ck_assert(sp_posix_superset(in[i], &out));
		ck_assert_str_eq(out.data, want[i]);
		ck_assert(sp_matcher_accepts(out.data));
		sb_free(&out);
	}
	spbuf out;
	sb_init(&out, 0);
	ck_assert(!sp_posix_superset("[[=a=]]", &out));
	sb_free(&out);
}
END_TEST

/* logcheck lines that would make the C library's regcomp build a huge
 * automaton are refused, not compiled (fuzz_rules ran it out of memory
 * with a++++…). */
START_TEST(logcheck_too_repetitive)
{
	static const char *const bad[] = {"(a\\>)++++b", "x\\1{300}{400}"};
	for (int i = 0; i < 2; i++) {
		sp_rules rs = {0};
		spbuf err;
		sb_init(&err, 0);
		ck_assert_int_eq(sp_rules_add_logcheck(&rs, "lc", bad[i],
						       strlen(bad[i]), &err),
				 SPONGE_ECONFIG);
		ck_assert_ptr_nonnull(strstr(err.data, "too many repetitions"));
		ck_assert_uint_eq(rs.n, 0);
		sp_rules_free(&rs);
		sb_free(&err);
	}
	/* and a plain one, with a comment and a blank line, is taken */
	const char ok[] = "# c\n\n^(\\w{3} [ :[:digit:]]{11}) x\\[[0-9]+\\]: y$\n";
	sp_rules rs = {0};
	spbuf err;
	sb_init(&err, 0);
	ck_assert_int_eq(sp_rules_add_logcheck(&rs, "lc", ok, sizeof ok - 1, &err),
			 SPONGE_OK);
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_str_eq(rs.r[0].where, "lc:3");
	ck_assert(rs.r[0].logcheck && rs.r[0].regex && !rs.r[0].posix);
	sp_rules_free(&rs);
	sb_free(&err);
}
END_TEST

Suite *rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *t = tcase_create("rules");
	tcase_add_loop_test(t, parse_table, 0,
			    (int)(sizeof parse_cases / sizeof parse_cases[0]));
	tcase_add_loop_test(t, bad_table, 0,
			    (int)(sizeof bad_cases / sizeof bad_cases[0]));
	tcase_add_loop_test(t, posix_table, 0,
			    (int)(sizeof posix_cases / sizeof posix_cases[0]));
	tcase_add_test(t, posix_superset);
	tcase_add_test(t, logcheck_too_repetitive);
	tcase_add_test(t, match_table);
	tcase_add_test(t, first_accepted_wins);
	tcase_add_test(t, engine_refusal_named);
	tcase_add_test(t, masked_form_matches_its_lines);
	suite_add_tcase(s, t);
	return s;
}
