/* rules.c - `logsponge rules test`: lines read exactly as `add` reads
 * them, judged by the rules, nothing stored; hits per rule, the rules
 * that matched nothing, and the lines no rule matched, grouped by their
 * masked form and written as rules ready to paste. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

static const char *const verdict_names[] = {"none", "ignore", "drop",
					    "level", "keep"};

/* A line no rule matched: its tag and masked first line, counted. */
typedef struct kind {
	char *key;   /* "tag\tmasked" */
	int64_t n;
} kind;

typedef struct tester {
	sponge *sp;
	bool json;
	int format;
	int64_t now;      /* when the rules are judged (until=) */
	int64_t n, by_verdict[5];
	int64_t *hits;    /* per rule */
	int64_t *would;   /* per rule: records it matched, first or not */
	kind *kinds;
	size_t nkinds, cap;
	bool failed;
	/* --expect: the verdict each record must get (NULL: none) */
	const char *want;
	bool mismatch;
} tester;

static void remember_kind(tester *t, const sponge_entry *e, const char *m)
{
	if (t->nkinds == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		kind *k = realloc(t->kinds, cap * sizeof *k);
		if (!k) {
			t->failed = true;
			return;
		}
		t->kinds = k;
		t->cap = cap;
	}
	char *key = NULL;
	if (asprintf(&key, "%s\t%s", e->tag ? e->tag : "", m) < 0) {
		t->failed = true;
		return;
	}
	t->kinds[t->nkinds++] = (kind){key, 1};
}

static void count_would(void *arg, size_t i)
{
	((tester *)arg)->would[i]++;
}

static void judge(void *arg, const sponge_entry *e, const char *line,
		  size_t len)
{
	tester *t = arg;
	sponge_judgement j;
	/* logcheck's rules read a syslog file's line as it is */
	bool raw = t->format == SPONGE_FORMAT_SYSLOG;
	/* every rule a record meets, for the shadowed ones (text output) */
	bool all = !t->json && !t->want;
	if (sponge_rules_judge_all(t->sp, e, raw ? line : NULL, raw ? len : 0,
				   t->now, all ? count_would : NULL, t,
				   &j) != SPONGE_OK) {
		t->failed = true;
		return;
	}
	t->n++;
	t->by_verdict[j.verdict]++;
	if (j.rule >= 0)
		t->hits[j.rule]++;
	else if (all) /* the summary groups what no rule matched */
		remember_kind(t, e, j.masked);
	if (t->want && strcmp(t->want, verdict_names[j.verdict]) != 0) {
		t->mismatch = true;
		printf("expected %s, got %s (%s): %.*s\n", t->want,
		       verdict_names[j.verdict],
		       j.rule >= 0 ? sponge_rule_name(t->sp, (size_t)j.rule) : "no rule",
		       (int)e->len, e->msg);
	}
	if (t->json) {
		json_t *o = json_pack("{s:I,s:s,s:s?}", "n", (json_int_t)t->n,
				      "verdict", verdict_names[j.verdict],
				      "rule", j.rule >= 0
						      ? sponge_rule_name(t->sp,
								(size_t)j.rule)
						      : NULL);
		if (!o || !json_line(o))
			t->failed = true;
	}
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const kind *)a)->key, ((const kind *)b)->key);
}

static int by_count(const void *a, const void *b)
{
	const kind *x = a, *y = b;
	return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->key, y->key);
}

/* The unmatched lines' kinds, most frequent first, as rules (each line
 * starting with prefix; kinds seen fewer than min_n times left out). */
static void print_kinds(tester *t, size_t most, const char *prefix,
			int64_t min_n)
{
	if (!t->nkinds)
		return; /* (qsort takes no NULL, even for nothing) */
	qsort(t->kinds, t->nkinds, sizeof *t->kinds, by_key);
	size_t n = 0;
	for (size_t i = 0; i < t->nkinds; i++) {
		if (n && strcmp(t->kinds[n - 1].key, t->kinds[i].key) == 0) {
			t->kinds[n - 1].n++;
			free(t->kinds[i].key);
			continue;
		}
		t->kinds[n++] = t->kinds[i];
	}
	t->nkinds = n;
	qsort(t->kinds, n, sizeof *t->kinds, by_count);
	for (size_t i = 0; i < n && i < most && t->kinds[i].n >= min_n; i++) {
		char *tab = strchr(t->kinds[i].key, '\t');
		*tab = '\0';
		if (*prefix) /* commented out: the count apart, so that
			      * uncommenting the rule gives a rule */
			printf("%s%lld records:\n%signore ", prefix,
			       (long long)t->kinds[i].n, prefix);
		else
			printf("%8lld  ignore ", (long long)t->kinds[i].n);
		if (*t->kinds[i].key)
			printf("tag=%s ", t->kinds[i].key);
		putchar('"');
		for (const char *p = tab + 1; *p; p++)
			printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
		printf("\"\n");
		*tab = '\t';
	}
	if (n > most)
		printf("%s%8s  … and %zu more kinds\n", prefix, "", n - most);
}

static void print_summary(tester *t)
{
	printf("%lld record%s: ignore %lld, drop %lld, level %lld, keep %lld, "
	       "no rule %lld\n",
	       (long long)t->n, t->n == 1 ? "" : "s", (long long)t->by_verdict[1],
	       (long long)t->by_verdict[2], (long long)t->by_verdict[3],
	       (long long)t->by_verdict[4], (long long)t->by_verdict[0]);
	size_t nr = sponge_rules_count(t->sp), idle = 0;
	for (size_t i = 0; i < nr; i++)
		idle += !t->hits[i] && !t->would[i];
	bool list_idle = idle <= 20; /* a big set (logcheck's): count them */
	if (nr)
		printf("hits per rule:\n");
	for (size_t i = 0; i < nr; i++) {
		bool shadowed = !t->hits[i] && t->would[i];
		if (!t->hits[i] && !list_idle && !shadowed)
			continue;
		const char *name = sponge_rule_name(t->sp, i);
		const char *where = sponge_rule_where(t->sp, i);
		printf("%8lld  %-6s %s", (long long)t->hits[i],
		       verdict_names[sponge_rule_verb_of(t->sp, i)], name);
		if (strcmp(name, where) != 0)
			printf(" (%s)", where);
		if (shadowed)
			printf("  shadowed: its %lld record%s went to earlier "
			       "rules\n", (long long)t->would[i],
			       t->would[i] == 1 ? "" : "s");
		else
			printf("%s\n", t->hits[i] ? "" : "  matched nothing");
	}
	if (!list_idle)
		printf("%8s  and %zu rules that matched nothing\n", "", idle);
	if (t->nkinds) {
		printf("unmatched, by kind (most frequent first), as rules:\n");
		print_kinds(t, 50, "", 1);
	}
}

static void rules_usage(FILE *f)
{
	usage(f, "rules");
	fprintf(f,
		"  test [FILE...]    judge each line (of the files, else of "
		"standard input)\n"
		"                    as add would read it; store nothing\n"
		"  check             load and compile the rules; say which "
		"expired\n"
		"  stats [--json]    each rule's matches in 24 h, 7 d, 30 d\n"
		"  suggest           the most frequent unmatched kinds of "
		"pending record\n"
		"                    at notice or below, as rules commented "
		"out\n"
		"  apply             judge the pending records again by the "
		"rules as they are\n"
		"options of test:\n"
		"  -l, --level LEVEL, -t, --tag TAG, -d, --detect-level, "
		"-f, --format FMT,\n"
		"      --join MODE   as for add\n"
		"      --json        one object per record: n, verdict, rule\n"
		"      --expect FILE lines VERDICT<TAB>LINE: exit 1 on a "
		"different verdict\n");
}

typedef struct test_opts {
	input_opts in;
	const char *expect;
	bool json;
} test_opts;

static int test_options(globals *g, int argc, char **argv, test_opts *o)
{
	static const struct option opts[] = {
		INPUT_LONGOPTS,
		{"json", no_argument, NULL, 'j'},
		{"expect", required_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (test_opts){INPUT_OPTS_DEFAULT, NULL, false};
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+l:t:df:h", opts)) != -1) {
		int took = input_option("rules test", c, optarg, &o->in);
		if (took < 0)
			return EXIT_USAGE;
		if (took)
			continue;
		switch (c) {
		case 'j': o->json = true; break;
		case 'E': o->expect = optarg; break;
		case 'h': rules_usage(stdout); return 0;
		default: return option_error("rules test", "+l:t:df:h", argv);
		}
	}
	return -1;
}

/* --expect FILE: each line VERDICT<TAB>LINE, judged as a record alone. */
static int run_expect(tester *t, adder *a, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		errorf("rules test: %s: %s", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	a->join = false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *tab = memchr(line, '\t', (size_t)n);
		if (!tab) {
			errorf("rules test: %s: a line without VERDICT<TAB>", path);
			status = EXIT_DATAERR;
			break;
		}
		*tab = '\0';
		t->want = line;
		adder_feed(a, tab + 1, (size_t)(line + n - tab - 1));
		adder_finish(a);
	}
	free(line);
	fclose(f);
	t->want = NULL;
	return status ? status : t->mismatch ? 1 : 0;
}

static int rules_test(globals *g, int argc, char **argv)
{
	test_opts o;
	int status = test_options(g, argc, argv, &o);
	if (status >= 0)
		return status;
	status = 0;
	sponge *sp = NULL;
	int rc = sponge_open(&sp, NULL, g->config, SPONGE_OPEN_NOSPOOL);
	if (rc == SPONGE_OK)
		rc = sponge_rules_load(sp);
	if (rc != SPONGE_OK) {
		status = fail(sp, rc);
		sponge_close(sp);
		return status;
	}
	tester t;
	memset(&t, 0, sizeof t);
	t.sp = sp;
	t.json = o.json;
	t.format = o.in.format;
	t.now = sponge_now();
	t.hits = calloc(sponge_rules_count(sp) + 1, sizeof *t.hits);
	t.would = calloc(sponge_rules_count(sp) + 1, sizeof *t.would);
	adder a;
	adder_init_input(&a, sp, &o.in, "rules test");
	a.judge = judge;
	a.judge_arg = &t;
	if (o.expect)
		status = run_expect(&t, &a, o.expect);
	else
		status = feed_files(&a, argc, argv, "rules test");
	if (!status && !o.json && !o.expect)
		print_summary(&t);
	if (t.failed && !status) {
		errorf("rules test: %s", *sponge_errmsg(sp) ? sponge_errmsg(sp)
							  : "out of memory");
		status = EXIT_SOFTWARE;
	}
	for (size_t i = 0; i < t.nkinds; i++)
		free(t.kinds[i].key);
	free(t.kinds);
	free(t.hits);
	free(t.would);
	adder_free(&a);
	sponge_close(sp);
	return finish_output(status);
}

/* rules check: the rules load and compile; rules past their until= are
 * said (a warning each). */
static int rules_check(globals *g, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		rules_usage(stdout);
		return 0;
	}
	if (argc > 1) {
		errorf("rules check: %s: unexpected argument", argv[1]);
		return EXIT_USAGE;
	}
	sponge *sp = NULL;
	int rc = sponge_open(&sp, NULL, g->config, SPONGE_OPEN_NOSPOOL);
	if (rc == SPONGE_OK)
		rc = sponge_rules_load(sp);
	if (rc != SPONGE_OK) {
		int status = fail(sp, rc);
		sponge_close(sp);
		return status;
	}
	size_t n = sponge_rules_count(sp), expired = 0;
	int64_t now = sponge_now();
	for (size_t i = 0; i < n; i++) {
		int64_t until = sponge_rule_until(sp, i);
		if (until && until <= now) {
			char t[32];
			sponge_format_time(until, t);
			errorf("warning: %s: expired %.10s: it no longer applies",
			       sponge_rule_where(sp, i), t);
			expired++;
		}
	}
	if (g->verbosity >= 0)
		printf("rules: %zu, ok%s\n", n, expired ? " (some expired)" : "");
	sponge_close(sp);
	return finish_output(0);
}

/* rules suggest: the most frequent kinds of pending record at notice or
 * below that no rule matches, as rules commented out. */
static int rules_suggest(globals *g, int argc, char **argv)
{
	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			rules_usage(stdout);
			return 0;
		}
		errorf("rules suggest: %s: unexpected argument", argv[1]);
		return EXIT_USAGE;
	}
	int status = 0;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	int rc = sponge_rules_load(sp);
	sponge_iter *it = NULL;
	sponge_filter f;
	memset(&f, 0, sizeof f);
	if (rc == SPONGE_OK)
		rc = sponge_query(sp, &f, &it);
	tester t;
	memset(&t, 0, sizeof t);
	t.sp = sp;
	const sponge_record *r;
	int64_t now = sponge_now();
	while (rc == SPONGE_OK && (rc = sponge_query_next(it, &r)) == SPONGE_ROW) {
		rc = SPONGE_OK;
		if (r->level < SPONGE_NOTICE)
			continue; /* worth reading: never suggested */
		sponge_entry e = {r->level, r->tag, r->time_us, r->host,
				  r->message, r->message_len, 0};
		sponge_judgement j;
		if ((rc = sponge_rules_judge(sp, &e, NULL, 0, now, &j)) == SPONGE_OK &&
		    j.rule < 0)
			remember_kind(&t, &e, j.masked);
	}
	sponge_query_close(it);
	if (rc != SPONGE_DONE && rc != SPONGE_OK)
		status = fail(sp, rc);
	else if (t.failed)
		status = fail(sp, SPONGE_ENOMEM);
	else {
		printf("# the most frequent kinds of pending record at notice or "
		       "below that no rule\n# matches (seen twice or more); "
		       "uncomment a rule to use it\n");
		print_kinds(&t, 20, "# ", 2);
	}
	for (size_t i = 0; i < t.nkinds; i++)
		free(t.kinds[i].key);
	free(t.kinds);
	sponge_close(sp);
	return finish_output(status);
}

int cmd_rules(globals *g, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "suggest") == 0)
		return rules_suggest(g, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return rules_test(g, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return rules_check(g, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "stats") == 0)
		return rules_stats(g, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "apply") == 0)
		return rules_apply(g, argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		rules_usage(stdout);
		return 0;
	}
	errorf("rules: %s: not a subcommand (test, check, stats, suggest, "
	       "apply)",
	       argc >= 2 ? argv[1] : "(none)");
	return EXIT_USAGE;
}
