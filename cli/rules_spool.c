/* rules_spool.c - the rules commands that read the spool: stats (what
 * each rule did over 24 h, 7 d, 30 d) and apply (judge the pending
 * records again after an edit). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static const char *const verbs[] = {"none", "ignore", "drop", "level", "keep"};

static const char *verb_name(int v)
{
	return v >= 0 && v <= 4 ? verbs[v] : "?";
}

/* What the spool counted, rule by rule. */
typedef struct stat_list {
	sponge_rule_stat *s;
	char **names;
	size_t n, cap;
	bool failed;
} stat_list;

static void keep_stat(void *arg, const sponge_rule_stat *s)
{
	stat_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		sponge_rule_stat *ns = realloc(l->s, cap * sizeof *ns);
		char **nn = ns ? realloc(l->names, cap * sizeof *nn) : NULL;
		if (ns)
			l->s = ns;
		if (!nn) {
			l->failed = true;
			return;
		}
		l->names = nn;
		l->cap = cap;
	}
	l->names[l->n] = strdup(s->rule);
	l->s[l->n] = *s;
	l->failed |= !l->names[l->n];
	l->n++;
}

static const sponge_rule_stat *find_stat(const stat_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->names[i] && strcmp(l->names[i], name) == 0)
			return &l->s[i];
	return NULL;
}

static void stat_row(const char *name, int verb, const sponge_rule_stat *s,
		     bool loaded, bool json)
{
	static const sponge_rule_stat none;
	if (!s)
		s = &none;
	char last[32] = "";
	if (s->last_us)
		sponge_format_time(s->last_us, last);
	if (json) {
		json_line(json_pack("{s:s,s:s,s:I,s:I,s:I,s:s?,s:b}", "rule", name,
				    "verdict", verb_name(verb), "day",
				    (json_int_t)s->day, "week",
				    (json_int_t)s->week, "month",
				    (json_int_t)s->month, "last",
				    s->last_us ? last : NULL, "loaded", loaded));
		return;
	}
	printf("%8lld %8lld %8lld  %-6s  %s%s%s\n", (long long)s->day,
	       (long long)s->week, (long long)s->month, verb_name(verb), name,
	       !s->month && loaded ? "  (no match in 30 days)" : "",
	       loaded ? "" : "  (no longer loaded)");
}

/* The loaded rules in their order, then rules the spool counted that
 * are no longer loaded. */
static void print_stats(sponge *sp, const stat_list *l, bool json)
{
	if (!json)
		printf("%8s %8s %8s  %-6s  %s\n", "24h", "7d", "30d", "verb",
		       "rule");
	size_t n = sponge_rules_count(sp);
	for (size_t i = 0; i < n; i++)
		stat_row(sponge_rule_name(sp, i), sponge_rule_verb_of(sp, i),
			 find_stat(l, sponge_rule_name(sp, i)), true, json);
	for (size_t k = 0; k < l->n; k++) {
		bool loaded = false;
		for (size_t i = 0; i < n && !loaded; i++)
			loaded = !strcmp(sponge_rule_name(sp, i), l->names[k]);
		if (!loaded)
			stat_row(l->names[k], l->s[k].verdict, &l->s[k], false,
				 json);
	}
}

/* A muted kind is a rule of its own: the messages never mark it (its
 * records are counted as ever, so no window of matches: how many records
 * delivered messages carried, and when last). */
static void muted_row(void *arg, const sponge_kind *k)
{
	const bool *json = arg;
	if (k->state != SPONGE_KIND_MUTED)
		return;
	char last[32], name[48];
	sponge_format_time(k->last_seen_us, last);
	snprintf(name, sizeof name, "kind %lld", (long long)k->id);
	if (*json) {
		json_line(json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:b}", "rule", name,
				    "verdict", "mute", "tag", k->tag, "kind",
				    k->masked, "seen", (json_int_t)k->seen,
				    "last", last, "loaded", 1));
		return;
	}
	printf("%8s %8s %8s  %-6s  %s (%s: %s), %lld seen, last %.10s\n", "-",
	       "-", "-", "mute", name, *k->tag ? k->tag : "-", k->masked,
	       (long long)k->seen, last);
}

static bool help_or_json(int argc, char **argv, const char *what, bool *json,
			 int *status)
{
	*json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: logsponge rules %s%s\n", what,
			       strcmp(what, "stats") ? "" : " [--json]");
			*status = 0;
			return false;
		}
		if (!strcmp(what, "stats") && !strcmp(argv[i], "--json")) {
			*json = true;
			continue;
		}
		errorf("rules %s: %s: unexpected argument", what, argv[i]);
		*status = EXIT_USAGE;
		return false;
	}
	return true;
}

int rules_stats(globals *g, int argc, char **argv)
{
	bool json;
	int status = 0;
	if (!help_or_json(argc, argv, "stats", &json, &status))
		return status;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	stat_list l;
	memset(&l, 0, sizeof l);
	int rc = sponge_rules_load(sp);
	if (rc == SPONGE_OK)
		rc = sponge_rule_stats(sp, sponge_now(), keep_stat, &l);
	if (rc == SPONGE_OK && l.failed)
		rc = SPONGE_ENOMEM;
	if (rc == SPONGE_OK)
		print_stats(sp, &l, json);
	if (rc == SPONGE_OK)
		rc = sponge_kinds(sp, 0, muted_row, &json);
	if (rc != SPONGE_OK)
		status = fail(sp, rc);
	for (size_t i = 0; i < l.n; i++)
		free(l.names[i]);
	free(l.names);
	free(l.s);
	sponge_close(sp);
	return finish_output(status);
}

int rules_apply(globals *g, int argc, char **argv)
{
	bool json;
	int status = 0;
	if (!help_or_json(argc, argv, "apply", &json, &status))
		return status;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	int64_t changed = 0;
	int rc = sponge_rules_apply(sp, sponge_now(), &changed);
	if (rc == SPONGE_OK)
		printf("rules apply: %lld pending record%s judged anew\n",
		       (long long)changed, changed == 1 ? "" : "s");
	else
		status = fail(sp, rc);
	sponge_close(sp);
	return finish_output(status);
}
