/* Unit tests: the config file, good and bad, with file:line errors. */
#include <check.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

static const struct cfg_case {
	const char *text;
	int code;
	const char *err; /* substring of the error, or NULL */
} cfg_cases[] = {
	{"", SPONGE_OK, NULL},
	{"# comment\n[spool]\npath = /var/tmp/x.db\nmax_record = 1k\n"
	 "busy_timeout = 5s\n[policy]\nthreshold = 5\ncount_level = warning\n"
	 "flush_level = crit\nmax_age = 1h\nexpire = 7d\n",
	 SPONGE_OK, NULL},
	{"[policy]\nflush_level = none\nmax_age = none\n", SPONGE_OK, NULL},
	{"[spool]\npath = /x\nbogus = 1\n", SPONGE_ECONFIG,
	 "t.conf:3: unknown key \"bogus\" in [spool]"},
	{"[mystery]\nkey = 1\n", SPONGE_ECONFIG,
	 "t.conf:2: unknown section [mystery]"},
	{"key = 1\n", SPONGE_ECONFIG, "t.conf:1: unknown section"},
	{"[policy]\n\nthreshold = 0\n", SPONGE_ECONFIG,
	 "t.conf:3: policy.threshold = \"0\": not a whole number >= 1"},
	{"[policy]\nthreshold = 5x\n", SPONGE_ECONFIG, "t.conf:2:"},
	{"[policy]\ncount_level = loud\n", SPONGE_ECONFIG,
	 "t.conf:2: policy.count_level = \"loud\": not a level"},
	{"[policy]\nmax_age = soon\n", SPONGE_ECONFIG,
	 "t.conf:2: policy.max_age = \"soon\": not a duration"},
	{"[spool]\nmax_record = 12\n", SPONGE_ECONFIG,
	 "t.conf:2: spool.max_record = \"12\": must be between"},
	{"[spool]\nmax_record = big\n", SPONGE_ECONFIG, "not a size"},
	{"[spool]\nthis line is junk\n", SPONGE_ECONFIG,
	 "t.conf:2: syntax error"},
	{"[spool\n", SPONGE_ECONFIG, "t.conf:1: syntax error"},
	{"[mail]\nfrom = Log Sponge <ls@example.org>\nto = a@b.c, "
	 "Jane <j@d.e>,\n  more@x.y\nto = last@z.z\nsubject = {host}\n"
	 "transport = stdout\n[smtp]\nhost = mail.example.org\nport = 2525\n"
	 "tls = starttls\nverify = no\nhelo = me.example\ntimeout = 5s\n",
	 SPONGE_OK, NULL},
	{"[mail]\nfrom = not an address\n", SPONGE_ECONFIG,
	 "t.conf:2: mail.from"},
	{"[mail]\nfrom = a@b.c\r\nBcc: x@y.z\n", SPONGE_ECONFIG, "t.conf:3:"},
	{"[mail]\nto = a@b.c, bad\n", SPONGE_ECONFIG, "t.conf:2: mail.to"},
	{"[mail]\nto = ,\n", SPONGE_ECONFIG, "no address"},
	/* quoted display names are RFC 5322 (they were refused) */
	{"[mail]\nto = \"Q\" <a@b.c>\n", SPONGE_OK, NULL},
	{"[mail]\nfrom = \"Doe, Jane\" <j@d.e>\nto = \"Doe, Jane\" <j@d.e>, "
	 "x@y.z\n", SPONGE_OK, NULL},
	{"[mail]\nto = \"unterminated <a@b.c>\n", SPONGE_ECONFIG, "mail.to"},
	{"[mail]\nfrom = J\xf6rg <j@d.e>\n", SPONGE_ECONFIG, "mail.from"},
	{"[mail]\ntransport = pigeon\n", SPONGE_ECONFIG, "unknown transport"},
	{"[smtp]\nport = 70000\n", SPONGE_ECONFIG, "not a port"},
	{"[smtp]\ntls = maybe\n", SPONGE_ECONFIG, "must be starttls, tls or none"},
	{"[smtp]\nverify = perhaps\n", SPONGE_ECONFIG, "not yes or no"},
	{"[smtp]\ntimeout = 10ms\n", SPONGE_ECONFIG, "at least 1s"},
	{"[smtp]\nhost = a b\n", SPONGE_ECONFIG, "not a host"},
	{"[smtp]\nuser = u\n\ntls = none\n", SPONGE_ECONFIG,
	 "t.conf:4: smtp.tls = none with smtp.user"},
	{"[smtp]\ntls = none\nuser = u\n", SPONGE_ECONFIG, "t.conf:3:"},
	{"[smtp]\npassword_file = /nonexistent/pw\n", SPONGE_ECONFIG,
	 "t.conf:2: smtp.password_file"},
	{"[spool]\n# long\npath = /x"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	 SPONGE_ECONFIG, "t.conf:3: line too long"},
	/* a typo is named with what was meant */
	{"[policy]\ntreshold = 5\n", SPONGE_ECONFIG,
	 "t.conf:2: unknown key \"treshold\" in [policy] (did you mean "
	 "\"threshold\"?)"},
	{"[policy]\nfrobnicate = 5\n", SPONGE_ECONFIG,
	 "unknown key \"frobnicate\" in [policy]"},
	/* log files for tail */
	{"[source app]\npath = /var/log/app.log\nformat = syslog\n"
	 "tag = app\nhost = web1\nlevel = notice\ndetect_level = yes\n"
	 "join = none\n[source b.2-x]\npath = /b\n", SPONGE_OK, NULL},
	{"[source j]\ntype = journal\ndirectory = /var/log/journal\n"
	 "match = _SYSTEMD_UNIT=ssh.service\npriority = warning\n", SPONGE_OK,
	 NULL},
	{"[source j]\ntype = pipe\n", SPONGE_ECONFIG,
	 "t.conf:2: source.type = \"pipe\": not file or journal"},
	{"[source app]\ntag = a\n", SPONGE_ECONFIG,
	 "t.conf:2: [source app] has no path"},
	{"[source app]\npath = relative.log\n", SPONGE_ECONFIG,
	 "t.conf:2: source.path = \"relative.log\": not an absolute path"},
	{"[source app]\npath = /a\nformat = xml\n", SPONGE_ECONFIG,
	 "t.conf:3: source.format"},
	{"[source app]\npath = /a\nfollow = yes\n", SPONGE_ECONFIG,
	 "t.conf:3: unknown key \"follow\" in [source app]"},
	{"[source a b]\npath = /a\n", SPONGE_ECONFIG,
	 "t.conf:2: [source a b]: a source's name is letters"},
	/* the first error is the one reported */
	{"[policy]\nthreshold = 2\nexpire = x\nbad = 1\n", SPONGE_ECONFIG,
	 "t.conf:3:"},
};

START_TEST(config_table)
{
	const struct cfg_case *c = &cfg_cases[_i];
	sp_config cfg;
	sp_config_defaults(&cfg);
	spbuf err;
	sb_init(&err, 0);
	int rc = sp_config_load_string(&cfg, c->text, "t.conf", &err, NULL);
	ck_assert_msg(rc == c->code, "case %d: rc %d (%s)", _i, rc, err.data);
	if (c->err)
		ck_assert_msg(strstr(err.data, c->err), "case %d: got \"%s\"",
			      _i, err.data);
	sp_config_free(&cfg);
	sb_free(&err);
}
END_TEST

START_TEST(config_values)
{
	sp_config cfg;
	sp_config_defaults(&cfg);
	ck_assert_int_eq(cfg.policy.threshold, 1);
	ck_assert_int_eq(cfg.policy.count_level, SPONGE_DEBUG);
	ck_assert_int_eq(cfg.policy.flush_level, -1);
	ck_assert_uint_eq(cfg.max_record, 65536);
	spbuf err;
	sb_init(&err, 0);
	ck_assert_int_eq(sp_config_load_string(&cfg, cfg_cases[1].text, "t",
					       &err, NULL),
			 SPONGE_OK);
	ck_assert_str_eq(cfg.spool_path, "/var/tmp/x.db");
	ck_assert_uint_eq(cfg.max_record, 1024);
	ck_assert_int_eq(cfg.busy_timeout_us, 5000000);
	ck_assert_int_eq(cfg.policy.threshold, 5);
	ck_assert_int_eq(cfg.policy.count_level, SPONGE_WARNING);
	ck_assert_int_eq(cfg.policy.flush_level, SPONGE_CRIT);
	ck_assert_int_eq(cfg.policy.max_age_us, 3600000000LL);
	ck_assert_int_eq(cfg.policy.expire_us, 7 * 86400000000LL);
	sp_config_free(&cfg);
	sp_config_defaults(&cfg);
	ck_assert_int_eq(sp_config_load_string(&cfg, cfg_cases[14].text,
					       "t", &err, NULL),
			 SPONGE_OK);
	ck_assert_str_eq(cfg.from, "Log Sponge <ls@example.org>");
	ck_assert_str_eq(cfg.from_addr, "ls@example.org");
	ck_assert_int_eq(cfg.nto, 4);
	ck_assert_str_eq(cfg.to[1], "Jane <j@d.e>");
	ck_assert_str_eq(cfg.to_addr[1], "j@d.e");
	ck_assert_str_eq(cfg.to_addr[2], "more@x.y");
	ck_assert_str_eq(cfg.to_addr[3], "last@z.z");
	ck_assert_str_eq(cfg.transport, "stdout");
	ck_assert_str_eq(cfg.host, "mail.example.org");
	ck_assert_int_eq(cfg.port, 2525);
	ck_assert_int_eq(cfg.verify, 0);
	ck_assert_int_eq(cfg.timeout_us, 5000000);
	sp_config_free(&cfg);
	sb_free(&err);
}
END_TEST

/* Ingestion reads the config with errors outside [spool] deferred: the
 * [spool] settings still apply, the rest is reported, nothing fails. */
static const struct deferred_case {
	const char *text;
	int code;
	const char *err;      /* substring of the fatal error, or NULL */
	const char *deferred; /* substring of the deferred one, or NULL */
	const char *path;     /* spool.path expected, or NULL */
} deferred_cases[] = {
	{"[policy]\ntreshold = 5\n[spool]\npath = /x/s.db\n", SPONGE_OK,
	 NULL, "t.conf:2: unknown key \"treshold\" in [policy]", "/x/s.db"},
	{"[spool]\npath = /x/s.db\n[smtp]\nport = 70000\n", SPONGE_OK,
	 NULL, "t.conf:4: smtp.port", "/x/s.db"},
	{"junk before any section\n[spool]\npath = /y.db\n", SPONGE_OK,
	 NULL, "t.conf:1:", "/y.db"},
	{"[mystery]\nk = v\n[spool]\npath = /z.db\n[mail]\nbad\n", SPONGE_OK,
	 NULL, "t.conf:2: unknown section [mystery]", "/z.db"},
	{"[smtp]\nuser = u\ntls = none\n", SPONGE_OK, NULL,
	 "smtp.tls = none with smtp.user", NULL},
	/* [spool] itself is still checked: ingestion needs it */
	{"[policy]\nthreshold = 0\n[spool]\nmax_record = 1\n",
	 SPONGE_ECONFIG, "t.conf:4: spool.max_record", NULL, NULL},
	{"[spool]\npath = relative.db\n", SPONGE_ECONFIG, "t.conf:2:", NULL,
	 NULL},
	{"  [spool]\nbogus = 1\n[policy]\nthreshold = 2\n", SPONGE_ECONFIG,
	 "t.conf:2: unknown key", NULL, NULL},
	{"[spool]\npath = /ok.db\n[policy]\nthreshold = 2\n", SPONGE_OK, NULL,
	 NULL, "/ok.db"},
};

START_TEST(config_deferred)
{
	const struct deferred_case *c = &deferred_cases[_i];
	sp_config cfg;
	sp_config_defaults(&cfg);
	spbuf err, def;
	sb_init(&err, 0);
	sb_init(&def, 0);
	int rc = sp_config_load_string(&cfg, c->text, "t.conf", &err, &def);
	ck_assert_msg(rc == c->code, "case %d: code %d (%s)", _i, rc, err.data);
	if (c->err)
		ck_assert_msg(strstr(err.data, c->err), "case %d: err \"%s\"",
			      _i, err.data);
	if (c->deferred)
		ck_assert_msg(strstr(def.data, c->deferred),
			      "case %d: deferred \"%s\"", _i, def.data);
	else if (rc == SPONGE_OK)
		ck_assert_str_eq(def.data, "");
	if (c->path)
		ck_assert_str_eq(cfg.spool_path, c->path);
	sp_config_free(&cfg);
	sb_free(&err);
	sb_free(&def);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t = tcase_create("core");
	tcase_add_loop_test(t, config_table, 0,
			    (int)(sizeof cfg_cases / sizeof cfg_cases[0]));
	tcase_add_test(t, config_values);
	tcase_add_loop_test(t, config_deferred, 0,
			    (int)(sizeof deferred_cases /
				  sizeof deferred_cases[0]));
	suite_add_tcase(s, t);
	return s;
}
