/* Unit tests: UTF-8 cleaning, level detection, durations, sizes, times. */
#define _DEFAULT_SOURCE /* setenv, tzset */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static const struct clean_case {
	const char *in;
	size_t len;
	const char *out;
} clean_cases[] = {
	{"plain ascii", 11, "plain ascii"},
	{"tab\tkept", 8, "tab\tkept"},
	{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x99", 14,
	 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x99"},
	{"nul\0here", 8, "nul\xe2\x90\x80here"},          /* U+2400 */
	{"esc\x1b[31m", 8, "esc\xe2\x90\x9b[31m"},        /* U+241B */
	{"del\x7f", 4, "del\xe2\x90\xa1"},                /* U+2421 */
	{"cr\rlf\n", 6, "cr\xe2\x90\x8dlf\xe2\x90\x8a"},
	{"c1\xc2\x85!", 5, "c1<U+0085>!"},
	{"nbsp\xc2\xa0", 6, "nbsp\xc2\xa0"},              /* not C1 */
	{"bad\xff", 4, "bad\xef\xbf\xbd"},
	{"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},       /* overlong */
	{"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
	{"\xf4\x90\x80\x80", 4,
	 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
	{"\xe2\x82", 2, "\xef\xbf\xbd"},                  /* truncated */
	{"\xe2\x82x", 3, "\xef\xbf\xbdx"},
	{"\xf0\x9f\x90", 3, "\xef\xbf\xbd"},
	{"", 0, ""},
};

START_TEST(clean_table)
{
	const struct clean_case *c = &clean_cases[_i];
	spbuf b;
	sb_init(&b, 0);
	size_t used;
	ck_assert(sp_clean(&b, c->in, c->len, SIZE_MAX, &used));
	ck_assert_uint_eq(used, c->len);
	ck_assert_uint_eq(b.len, strlen(c->out));
	ck_assert_mem_eq(b.data, c->out, b.len);
	/* the cleaner's output is itself clean, and clean input is kept */
	ck_assert(sp_is_clean(b.data, b.len));
	ck_assert(sp_is_clean(c->in, c->len) ==
		  (c->len == b.len && memcmp(c->in, b.data, b.len) == 0));
	sb_free(&b);
}
END_TEST

START_TEST(clean_limit_never_splits)
{
	/* "é" is 2 bytes: a limit of 4 on "aéé" keeps "aé" (3 bytes) */
	spbuf b;
	sb_init(&b, 0);
	size_t used;
	ck_assert(sp_clean(&b, "a\xc3\xa9\xc3\xa9", 5, 4, &used));
	ck_assert_str_eq(b.data, "a\xc3\xa9");
	ck_assert_uint_eq(used, 3);
	sb_reset(&b);
	/* a control picture (3 bytes) does not fit in 2 */
	ck_assert(sp_clean(&b, "a\x01", 2, 2, &used));
	ck_assert_str_eq(b.data, "a");
	ck_assert_uint_eq(used, 1);
	sb_free(&b);
}
END_TEST

static const struct detect_case {
	const char *line;
	int level;
	size_t skip;
} detect_cases[] = {
	{"<3>disk failed", SPONGE_ERR, 3},
	{"<7>x", SPONGE_DEBUG, 3},
	{"<134>syslog pri", SPONGE_INFO, 5},
	{"<192>too big", -1, 0},
	{"ERROR: it broke", SPONGE_ERR, 0},
	{"error it broke", SPONGE_ERR, 0},
	{"[warn] low disk", SPONGE_WARNING, 0},
	{"[WARNING] low disk", SPONGE_WARNING, 0},
	{"<crit> x", SPONGE_CRIT, 0},
	{"FATAL: boom", SPONGE_CRIT, 0},
	{"CRITICAL:root:boom", SPONGE_CRIT, 0},
	{"WARNING:root:python logging", SPONGE_WARNING, 0},
	{"E something", SPONGE_ERR, 0},
	{"W0101 12:00:00.000 glog", SPONGE_WARNING, 0},
	{"E1121 10:00:00.123456 1 main.cc:1] glog", SPONGE_ERR, 0},
	{"2026-11-21T10:00:00Z ERROR worker: x", SPONGE_ERR, 0},
	{"2026-11-21 10:00:00,123 WARN x", SPONGE_WARNING, 0},
	{"[2026-11-21 10:00:00] notice: x", SPONGE_NOTICE, 0},
	{"time=1 level=error msg=x", SPONGE_ERR, 0},
	{"ts=1 lvl=warn", SPONGE_WARNING, 0},
	{"msg=\"a\" level=\"debug\"", SPONGE_DEBUG, 0},
	{"{\"level\":\"error\",\"msg\":\"x\"}", SPONGE_ERR, 0},
	{"{\"msg\":\"x\", \"level\" : \"warning\"}", SPONGE_WARNING, 0},
	{"{\"level\":50,\"msg\":\"bunyan\"}", SPONGE_ERR, 0},
	{"{\"level\":30}", SPONGE_INFO, 0},
	{"{\"severity\":\"CRITICAL\"}", SPONGE_CRIT, 0},
	{"Errors were found", -1, 0},     /* not a level word */
	{"everything fine", -1, 0},
	{"Everything is an error", -1, 0}, /* level word not leading */
	{"mylevel=error", -1, 0},          /* not a logfmt key */
	{"", -1, 0},
	{"<", -1, 0},
	{"<3", -1, 0},
};

START_TEST(detect_table)
{
	const struct detect_case *c = &detect_cases[_i];
	size_t skip = 99;
	int l = sponge_detect_level(c->line, strlen(c->line), &skip);
	ck_assert_msg(l == c->level, "\"%s\": got %d want %d", c->line, l,
		      c->level);
	ck_assert_uint_eq(skip, c->skip);
}
END_TEST

START_TEST(level_names)
{
	for (int l = 0; l < 8; l++)
		ck_assert_int_eq(sponge_level_from_name(sponge_level_name(l)),
				 l);
	static const struct { const char *name; int level; } every[] = {
		{"emerg", 0}, {"EMERGENCY", 0}, {"Panic", 0}, {"alert", 1},
		{"crit", 2}, {"CRITICAL", 2}, {"fatal", 2}, {"err", 3},
		{"Error", 3}, {"warning", 4}, {"warn", 4}, {"NOTICE", 5},
		{"info", 6}, {"Information", 6}, {"informational", 6},
		{"debug", 7}, {"TRACE", 7}, {"0", 0}, {"7", 7},
		{"8", -1}, {"er", -1}, {"errors", -1}, {"informationals", -1},
		{"", -1}, {"xyz", -1}, {"@rror", -1}, {"[rror", -1},
	};
	for (size_t i = 0; i < sizeof every / sizeof every[0]; i++)
		ck_assert_msg(sponge_level_from_name(every[i].name) ==
				      every[i].level,
			      "%s", every[i].name);
	ck_assert_int_eq(sponge_level_from_name("WARN"), SPONGE_WARNING);
	ck_assert_int_eq(sponge_level_from_name("Fatal"), SPONGE_CRIT);
	ck_assert_int_eq(sponge_level_from_name("trace"), SPONGE_DEBUG);
	ck_assert_int_eq(sponge_level_from_name("3"), SPONGE_ERR);
	ck_assert_int_eq(sponge_level_from_name("8"), -1);
	ck_assert_int_eq(sponge_level_from_name("bogus"), -1);
	ck_assert_int_eq(sponge_level_from_name(NULL), -1);
	ck_assert_ptr_null(sponge_level_name(8));
	ck_assert_ptr_null(sponge_level_name(-1));
}
END_TEST

static const struct dur_case {
	const char *text;
	int ok;
	int64_t us;
} dur_cases[] = {
	{"90s", 1, 90000000LL},   {"15m", 1, 900000000LL},
	{"24h", 1, 86400000000LL}, {"7d", 1, 604800000000LL},
	{"2w", 1, 1209600000000LL}, {"500ms", 1, 500000LL},
	{"1h30m", 1, 5400000000LL}, {"45", 1, 45000000LL},
	{"0s", 1, 0},             {"", 0, 0},
	{"h", 0, 0},              {"10x", 0, 0},
	{"-5s", 0, 0},            {"1.5h", 0, 0},
	{"99999999999999999999s", 0, 0}, {"9999999999999d", 0, 0},
};

START_TEST(duration_table)
{
	const struct dur_case *c = &dur_cases[_i];
	int64_t v = -1;
	int rc = sponge_parse_duration(c->text, &v);
	ck_assert_msg((rc == SPONGE_OK) == c->ok, "\"%s\"", c->text);
	if (c->ok)
		ck_assert_int_eq(v, c->us);
}
END_TEST

static const struct size_case {
	const char *text;
	int ok;
	uint64_t bytes;
} size_cases[] = {
	{"64k", 1, 65536},  {"64K", 1, 65536}, {"10M", 1, 10485760},
	{"1G", 1, 1073741824ULL}, {"512", 1, 512}, {"64KiB", 1, 65536},
	{"2MB", 1, 2097152}, {"", 0, 0}, {"k", 0, 0}, {"5x", 0, 0},
	{"-1", 0, 0}, {"99999999999999999999", 0, 0},
};

START_TEST(size_table)
{
	const struct size_case *c = &size_cases[_i];
	uint64_t v = 0;
	int rc = sponge_parse_size(c->text, &v);
	ck_assert_msg((rc == SPONGE_OK) == c->ok, "\"%s\"", c->text);
	if (c->ok)
		ck_assert_uint_eq(v, c->bytes);
}
END_TEST

#define NOW 1795000000000000LL /* 2026-11-18T… */

static const struct time_case {
	const char *text;
	int ok;
	int64_t us;
} time_cases[] = {
	{"2026-11-21T10:00:00Z", 1, 1795255200000000LL},
	{"2026-11-21T10:00:00.5Z", 1, 1795255200500000LL},
	{"2026-11-21 10:00", 1, 1795255200000000LL},
	{"2026-11-21", 1, 1795219200000000LL},
	{"2026-11-21T12:00:00+02:00", 1, 1795255200000000LL},
	{"2026-11-21T05:00:00-0500", 1, 1795255200000000LL},
	{"now", 1, NOW},
	{"2h", 1, NOW - 7200000000LL},
	{"2026-02-30", 0, 0},
	{"2026-13-01", 0, 0},
	{"2026-11-21T25:00", 0, 0},
	{"2026-11-21Tnoon", 0, 0},
	{"tomorrow", 0, 0},
};

START_TEST(time_table)
{
	const struct time_case *c = &time_cases[_i];
	int64_t v = 0;
	int rc = sponge_parse_time(c->text, NOW, &v);
	ck_assert_msg((rc == SPONGE_OK) == c->ok, "\"%s\"", c->text);
	if (c->ok)
		ck_assert_int_eq(v, c->us);
}
END_TEST

/* --since today / yesterday: local midnight, by TZ, across a DST end */
START_TEST(time_today_yesterday)
{
	int64_t v;
	setenv("TZ", "Asia/Kolkata", 1); /* UTC+05:30 */
	tzset();
	/* 2026-11-21T10:00:00Z is 15:30 there */
	ck_assert_int_eq(sponge_parse_time("today", 1795255200000000LL, &v),
			 SPONGE_OK);
	ck_assert_int_eq(v, 1795255200000000LL - 15 * 3600000000LL -
				    30 * 60000000LL);
	ck_assert_int_eq(sponge_parse_time("yesterday", 1795255200000000LL,
					   &v), SPONGE_OK);
	ck_assert_int_eq(v, 1795255200000000LL - 39 * 3600000000LL -
				    30 * 60000000LL);
	/* New York, 2026-11-02T12:00Z (07:00 EST): today began at 05:00Z;
	 * yesterday, before DST ended on Nov 1 at 02:00, at 04:00Z */
	setenv("TZ", "America/New_York", 1);
	tzset();
	const int64_t now = 1793620800000000LL;
	ck_assert_int_eq(sponge_parse_time("today", now, &v), SPONGE_OK);
	ck_assert_int_eq(v, now - 7 * 3600000000LL);
	ck_assert_int_eq(sponge_parse_time("yesterday", now, &v), SPONGE_OK);
	ck_assert_int_eq(v, now - 32 * 3600000000LL);
}
END_TEST

START_TEST(time_format_roundtrip)
{
	char b[32];
	sponge_format_time(1795255200123456LL, b);
	ck_assert_str_eq(b, "2026-11-21T10:00:00.123456Z");
	int64_t v;
	ck_assert_int_eq(sponge_parse_time(b, 0, &v), SPONGE_OK);
	ck_assert_int_eq(v, 1795255200123456LL);
}
END_TEST

static const struct mask_case {
	const char *in, *out;
} mask_cases[] = {
	{"took 12ms", "took #ms"},
	{"request id=000f423e path=/api/v1/items/998", "request id=# path=/api/v#/items/#"},
	{"uuid 123e4567-e89b-12d3-a456-426614174000 done", "uuid # done"},
	/* a UUID whose groups are letters only (masked missed them) */
	{"req deadbeef-cafe-babe-face-0123456789ab ok", "req # ok"},
	/* no digit at all, but groups of eight hex letters: an id */
	{"req deadbeef-cafe-babe-face-abcdefabcdef ok", "req # ok"},
	/* one address is one value, whatever its digits ("#x#", "#xd#") */
	{"segfault at 0x7f3a9c ip 0xd7f3 sp 0xcd12", "segfault at # ip # sp #"},
	{"at 7f3a9c00 deadbeef cafebabe0", "at # # #"},
	{"decade defaced deadbeefy fade", "decade defaced deadbeefy fade"},
	{"0x 0xg 0x1", "#x #xg #"},
	{"from 10.0.0.5:5432 and 192.168.1.20", "from # and #"},
	{"peer fe80::1ff:fe23:4567:890a port 22", "peer # port #"},
	{"at 2026-11-21 10:00:00.5, done.", "at # #, done."},
	{"worker-3 thread42 beef12 xbeef12", "worker-# thread# # xbeef#"},
	{"took 12ms.", "took #ms."},
	{"dead beef cafe", "dead beef cafe"}, /* no digit: a word */
	{"", ""},
	{"42", "#"},
	{"caf\xc3\xa9 7", "caf\xc3\xa9 #"},
};

START_TEST(mask_table)
{
	spbuf b;
	sb_init(&b, 0);
	ck_assert(sp_mask(&b, mask_cases[_i].in, strlen(mask_cases[_i].in)));
	ck_assert_str_eq(b.data, mask_cases[_i].out);
	/* folding hashes what sp_mask writes, without writing it */
	const char *in = mask_cases[_i].in;
	ck_assert(sp_fold_hash(3, "t", in, strlen(in), true) ==
		  sp_fold_hash(3, "t", b.data, b.len, true));
	sb_free(&b);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- a syslog file's lines (--format syslog) ---- */

static const struct syslog_case {
	const char *line;
	int ok;
	const char *host, *tag, *msg;
	const char *time; /* UTC, as sponge_format_time writes it; NULL: any */
} syslog_cases[] = {
	/* rsyslog's traditional file format and syslog-ng's default */
	{"Dec  6 10:00:03 web1 sshd[555]: Accepted publickey for root", 1,
	 "web1", "sshd", "Accepted publickey for root", NULL},
	{"Nov 21 09:59:59 db1 postgres: checkpoint complete", 1, "db1",
	 "postgres", "checkpoint complete", NULL},
	{"Dec  6 10:00:03 mx postfix/smtpd[1234]: connect from x[10.0.0.1]", 1,
	 "mx", "postfix/smtpd", "connect from x[10.0.0.1]", NULL},
	/* rsyslog's RSYSLOG_FileFormat (Debian 12's default): the offset */
	{"2026-12-06T10:00:03.123456+01:00 web1 CRON[77]: (root) CMD (x)", 1,
	 "web1", "CRON", "(root) CMD (x)", "2026-12-06T09:00:03.123456Z"},
	{"2026-12-06T10:00:03Z web2 kernel: [ 1.5] eth0: link up", 1, "web2",
	 "kernel", "[ 1.5] eth0: link up", "2026-12-06T10:00:03.000000Z"},
	/* no tag: the host, then the message whole */
	{"Dec  6 10:00:03 web1 -- MARK --", 1, "web1", NULL, "-- MARK --", NULL},
	{"Dec  6 10:00:03 web1 message repeated 3 times: [ x]", 1, "web1",
	 NULL, "message repeated 3 times: [ x]", NULL},
	/* not a syslog file's line: kept as plain text by the caller */
	{"Dec  6 10:00:03", 0, NULL, NULL, NULL, NULL},
	{"Dec 32 10:00:03 web1 x: y", 0, NULL, NULL, NULL, NULL},
	{"<13>Dec  6 10:00:03 web1 x: y", 0, NULL, NULL, NULL, NULL},
	{"2026-12-06 10:00:03 web1 x: y", 0, NULL, NULL, NULL, NULL},
	{"just a line", 0, NULL, NULL, NULL, NULL},
	{"", 0, NULL, NULL, NULL, NULL},
};

START_TEST(syslog_table)
{
	const struct syslog_case *k = &syslog_cases[_i];
	sponge *sp = NULL;
	char path[] = "/tmp/lssyslogXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(path);
	ck_assert_int_eq(sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG), 0);
	sponge_entry e = {SPONGE_WARNING, "given", 7, "here", "x", 1, 0};
	int ok = sponge_parse_line(sp, SPONGE_FORMAT_SYSLOG, k->line,
				   strlen(k->line), &e);
	ck_assert_msg(ok == k->ok, "%s: %d", k->line, ok);
	ck_assert_int_eq(e.level, SPONGE_WARNING); /* a file line has none */
	if (ok) {
		ck_assert_str_eq(e.host, k->host);
		ck_assert_str_eq(e.tag, k->tag ? k->tag : "given");
		ck_assert_int_eq((int)e.len, (int)strlen(k->msg));
		ck_assert(memcmp(e.msg, k->msg, e.len) == 0);
		char t[32];
		sponge_format_time(e.time_us, t);
		if (k->time)
			ck_assert_str_eq(t, k->time);
		ck_assert_int_ne(e.time_us, 7);
	} else {
		ck_assert_str_eq(e.tag, "given");
		ck_assert_int_eq(e.time_us, 7);
	}
	sponge_close(sp);
	char wal[64];
	unlink(path);
	snprintf(wal, sizeof wal, "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof wal, "%s-shm", path);
	unlink(wal);
}
END_TEST

/* A classic line has no year: the one that puts it nearest before now,
 * a day ahead still this year (clocks differ). */
START_TEST(yearless_across_new_year)
{
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	setenv("TZ", "UTC", 1);
	tzset();
	int64_t now = 1798763400000000LL; /* 2027-01-01T00:30:00Z */
	char t[32];
	sponge_format_time(sp_yearless_time(11, 31, 23, 59, 59, now), t);
	ck_assert_str_eq(t, "2026-12-31T23:59:59.000000Z");
	sponge_format_time(sp_yearless_time(0, 1, 0, 10, 0, now), t);
	ck_assert_str_eq(t, "2027-01-01T00:10:00.000000Z");
	sponge_format_time(sp_yearless_time(0, 2, 0, 10, 0, now), t);
	ck_assert_str_eq(t, "2027-01-02T00:10:00.000000Z"); /* 23h40m ahead */
	sponge_format_time(sp_yearless_time(1, 1, 0, 0, 0, now), t);
	ck_assert_str_eq(t, "2026-02-01T00:00:00.000000Z");
	/* and in the middle of a year, this year */
	now = 1795255200000000LL; /* 2026-11-21T10:00:00Z */
	sponge_format_time(sp_yearless_time(10, 21, 9, 0, 0, now), t);
	ck_assert_str_eq(t, "2026-11-21T09:00:00.000000Z");
	/* a zone ahead of UTC: its new year came while UTC's is still old */
	setenv("TZ", "<+14>-14", 1);
	tzset();
	now = 1798714800000000LL; /* 2026-12-31T11:00:00Z, local 01:00 Jan 1 */
	sponge_format_time(sp_yearless_time(0, 1, 0, 30, 0, now), t);
	ck_assert_str_eq(t, "2026-12-31T10:30:00.000000Z");
	setenv("TZ", "UTC", 1);
	tzset();
	now = 1795255200000000LL;
	/* the same hour asked again under another zone: not the kept one */
	setenv("TZ", "EST5", 1);
	tzset();
	sponge_format_time(sp_yearless_time(10, 21, 9, 0, 0, now), t);
	ck_assert_str_eq(t, "2026-11-21T14:00:00.000000Z");
	if (old) {
		setenv("TZ", old, 1);
		free(old);
	} else {
		unsetenv("TZ");
	}
	tzset();
}
END_TEST

Suite *text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *t = tcase_create("core");
	tcase_add_loop_test(t, clean_table, 0, N(clean_cases));
	tcase_add_test(t, clean_limit_never_splits);
	tcase_add_loop_test(t, detect_table, 0, N(detect_cases));
	tcase_add_test(t, level_names);
	tcase_add_loop_test(t, duration_table, 0, N(dur_cases));
	tcase_add_loop_test(t, size_table, 0, N(size_cases));
	tcase_add_loop_test(t, time_table, 0, N(time_cases));
	tcase_add_test(t, time_format_roundtrip);
	tcase_add_test(t, time_today_yesterday);
	tcase_add_loop_test(t, mask_table, 0, N(mask_cases));
	tcase_add_loop_test(t, syslog_table, 0, N(syslog_cases));
	tcase_add_test(t, yearless_across_new_year);
	suite_add_tcase(s, t);
	return s;
}
