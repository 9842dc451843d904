/* query.c - `status`, `list`, `history` and `purge`. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

bool json_line(json_t *o)
{
	bool ok = o && json_dumpf(o, stdout, JSON_COMPACT) == 0 &&
		  fputc('\n', stdout) != EOF;
	json_decref(o);
	return ok;
}

static json_t *json_time(int64_t t)
{
	if (!t)
		return json_null();
	char b[32];
	sponge_format_time(t, b);
	return json_string(b);
}

int finish_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			errorf("standard output: %s", strerror(errno));
		return status ? status : EXIT_IOERR;
	}
	return status;
}

bool parse_count(const char *opt, const char *arg, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end || v < 1) {
		errorf("%s %s: not a whole number >= 1", opt, arg);
		return false;
	}
	*out = v;
	return true;
}

static bool parse_time_opt(const char *opt, const char *arg, int64_t now,
			   int64_t *out)
{
	if (sponge_parse_time(arg, now, out) == SPONGE_OK)
		return true;
	errorf("%s %s: not a time (2h, 30m, 2026-11-21, "
	       "2026-11-21T10:00:00Z)", opt, arg);
	return false;
}


static void fmt_bytes(uint64_t v, char *b, size_t n)
{
	if (v < 10240)
		snprintf(b, n, "%llu bytes", (unsigned long long)v);
	else if (v < 10u << 20)
		snprintf(b, n, "%.1f KiB", (double)v / 1024);
	else
		snprintf(b, n, "%.1f MiB", (double)v / (1 << 20));
}

/* ---- status ------------------------------------------------------- */

static const sponge_attempt *last_attempt(sponge *sp, sponge_hiter **it)
{
	const sponge_attempt *a = NULL;
	if (sponge_history(sp, 1, it) == SPONGE_OK &&
	    sponge_history_next(*it, &a) == SPONGE_ROW)
		return a;
	return NULL;
}

#define VERDICT_REFUSED (-2) /* the config cannot send: flush refuses */

static const char *verdict_name(int v)
{
	static const char *const names[] = {"unknown", "none", "send", "hold",
					    "heartbeat"};
	if (v == VERDICT_REFUSED)
		return "refused";
	return v >= 0 && v <= SPONGE_VERDICT_HEARTBEAT ? names[v] : "unknown";
}

/* The policy's part of status --json: each rule's state. */
static json_t *policy_json(const sponge_policy *pol, const sponge_decision *d)
{
	json_t *p = json_object();
	const sponge_rule *t = &d->threshold, *f = &d->flush_level;
	json_object_set_new(p, "threshold",
			    t->set ? json_pack("{s:I,s:I,s:s,s:b}", "have",
					       (json_int_t)t->have, "need",
					       (json_int_t)t->need, "level",
					       sponge_level_name(t->level),
					       "met", t->met)
				   : json_null());
	json_object_set_new(p, "flush_level",
			    f->set ? json_pack("{s:s,s:I,s:b}", "level",
					       sponge_level_name(f->level),
					       "have", (json_int_t)f->have,
					       "met", f->met)
				   : json_null());
	const sponge_rule *a = &d->max_age;
	json_object_set_new(p, "max_age",
			    a->set ? json_pack("{s:I,s:I,s:b}", "seconds",
					       (json_int_t)(a->need / 1000000),
					       "oldest_age_seconds",
					       (json_int_t)(a->have / 1000000),
					       "met", a->met)
				   : json_null());
	json_object_set_new(p, "expire",
			    pol->expire_us ? json_integer(pol->expire_us /
							   1000000)
					   : json_null());
	json_object_set_new(p, "min_interval",
			    pol->min_interval_us
				    ? json_integer(pol->min_interval_us / 1000000)
				    : json_null());
	json_object_set_new(p, "heartbeat",
			    pol->heartbeat_us
				    ? json_integer(pol->heartbeat_us / 1000000)
				    : json_null());
	return p;
}

static json_t *status_json(sponge *sp, const sponge_stats *st,
			   const sponge_policy *pol, const sponge_attempt *last,
			   const sponge_decision *d)
{
	json_t *o = json_object(), *lv = json_object();
	json_object_set_new(o, "spool", json_string(sponge_path(sp)));
	json_object_set_new(o, "pending", json_integer(st->pending));
	for (int l = 0; l < 8; l++)
		json_object_set_new(lv, sponge_level_name(l),
				    json_integer(st->by_level[l]));
	json_object_set_new(o, "levels", lv);
	json_object_set_new(o, "oldest", json_time(st->oldest_us));
	json_object_set_new(o, "newest", json_time(st->newest_us));
	json_object_set_new(o, "spool_bytes",
			    json_integer((json_int_t)st->spool_bytes));
	json_t *dr = json_object();
	for (int l = 0; l < 8; l++)
		json_object_set_new(dr, sponge_level_name(l),
				    json_integer(st->dropped[l]));
	json_object_set_new(o, "dropped", dr);
	json_t *ig = json_object();
	for (int l = 0; l < 8; l++)
		json_object_set_new(ig, sponge_level_name(l),
				    json_integer(st->ignored[l]));
	json_object_set_new(o, "ignored", ig);
	json_object_set_new(o, "new_kinds", json_integer(st->new_kinds));

	json_object_set_new(o, "policy", policy_json(pol, d));
	json_object_set_new(o, "next_flush",
			    json_pack("{s:s,s:s}", "verdict",
				      verdict_name(d->verdict), "reason",
				      d->reason));
	if (last)
		json_object_set_new(
			o, "last_attempt",
			json_pack("{s:o,s:s,s:s,s:s,s:I}", "time",
				  json_time(last->time_us), "outcome",
				  last->outcome, "stage", last->stage, "reply",
				  last->reply, "records",
				  (json_int_t)last->records));
	else
		json_object_set_new(o, "last_attempt", json_null());
	json_object_set_new(o, "last_sent", st->last_sent_us
						    ? json_time(st->last_sent_us)
						    : json_null());
	char quiet[256];
	json_object_set_new(o, "alarm", silent_since(st, pol, d->now, quiet,
						     sizeof quiet)
						? json_string(quiet)
						: json_null());
	return o;
}

/* The spool's part of status: pending, by level, oldest and newest,
 * dropped. */
static void status_spool(sponge *sp, const sponge_stats *st, int64_t now)
{
	char b1[32], b2[32], age[32];
	fmt_bytes(st->spool_bytes, b1, sizeof b1);
	printf("spool:    %s (%s)\n", sponge_path(sp), b1);
	if (!st->pending) {
		printf("pending:  none\n");
	} else {
		printf("pending:  %lld record%s\n", (long long)st->pending,
		       st->pending == 1 ? "" : "s");
		printf("levels:  ");
		for (int l = 0; l < 8; l++)
			printf(" %s %lld", sponge_level_name(l),
			       (long long)st->by_level[l]);
		printf("\n");
		sponge_format_time(st->oldest_us, b1);
		sponge_format_time(st->newest_us, b2);
		sponge_format_span(now - st->oldest_us, age, sizeof age);
		printf("oldest:   %s (%s ago)\nnewest:   %s\n", b1, age, b2);
	}
	if (st->new_kinds)
		printf("new:      %lld record%s of kinds no message carried "
		       "yet (kinds --new)\n",
		       (long long)st->new_kinds, st->new_kinds == 1 ? "" : "s");
	int64_t ignored = 0;
	for (int l = 0; l < 8; l++)
		ignored += st->ignored[l];
	if (ignored)
		printf("ignored:  %lld record%s the noise rules ignore, to go "
		       "with the next message (list --ignored)\n",
		       (long long)ignored, ignored == 1 ? "" : "s");
	int64_t dropped = 0;
	for (int l = 0; l < 8; l++)
		dropped += st->dropped[l];
	if (!dropped)
		return;
	printf("dropped:  %lld record%s since the last message, the spool "
	       "being full:", (long long)dropped, dropped == 1 ? "" : "s");
	for (int l = 0; l < 8; l++)
		if (st->dropped[l])
			printf(" %s %lld", sponge_level_name(l),
			       (long long)st->dropped[l]);
	printf("\n");
}

/* The rules as the decision read them, then the other settings. */
static void status_policy(const sponge_policy *pol, const sponge_decision *d,
			  bool pending)
{
	char b1[32], age[32];
	const sponge_rule *t = &d->threshold, *f = &d->flush_level,
			  *a = &d->max_age;
	printf("policy:\n");
	if (t->set)
		printf("  threshold:   %lld of %lld record%s at %s or above%s\n",
		       (long long)(t->have < t->need ? t->have : t->need),
		       (long long)t->need, t->need == 1 ? "" : "s",
		       sponge_level_name(t->level), t->met ? " (met)" : "");
	else
		printf("  threshold:   none\n");
	if (f->set)
		printf("  flush_level: %lld record%s at %s or above%s\n",
		       (long long)f->have, f->have == 1 ? "" : "s",
		       sponge_level_name(f->level), f->met ? " (met)" : "");
	else
		printf("  flush_level: none\n");
	sponge_format_span(a->need, b1, sizeof b1);
	sponge_format_span(a->have, age, sizeof age);
	if (!a->set)
		printf("  max_age:     none\n");
	else if (pending)
		printf("  max_age:     oldest is %s old of %s%s\n", age, b1,
		       a->met ? " (met)" : "");
	else
		printf("  max_age:     %s (nothing pending)\n", b1);
	sponge_format_span(pol->expire_us, b1, sizeof b1);
	if (pol->expire_us)
		printf("  expire:      records older than %s are dropped\n", b1);
	else
		printf("  expire:      none\n");
	sponge_format_span(pol->min_interval_us, b1, sizeof b1);
	if (pol->min_interval_us)
		printf("  min_interval: at most one message every %s\n", b1);
	sponge_format_span(pol->heartbeat_us, b1, sizeof b1);
	if (pol->heartbeat_us)
		printf("  heartbeat:   a \"nothing to report\" message after %s "
		       "without one\n", b1);
}

static void status_text(sponge *sp, const sponge_stats *st,
			const sponge_policy *pol, const sponge_attempt *last,
			const sponge_decision *d)
{
	status_spool(sp, st, d->now);
	status_policy(pol, d, st->pending > 0);
	if (last) {
		char b1[32];
		sponge_format_time(last->time_us, b1);
		printf("last flush: %s %s, %lld record%s%s%s%s%s\n", b1,
		       last->outcome, (long long)last->records,
		       last->records == 1 ? "" : "s", *last->stage ? " at " : "",
		       last->stage, *last->reply ? ": " : "", last->reply);
	} else {
		printf("last flush: never\n");
	}
	jobs_status(sp, d->now);
	char quiet[256];
	if (silent_since(st, pol, d->now, quiet, sizeof quiet))
		printf("warning:  %s\n", quiet);
	printf("next flush: %s\n", d->reason);
}

int cmd_status(globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int c, status = 0;
	while ((c = cmd_getopt(g, argc, argv, "+jh", opts)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': usage(stdout, "status"); return 0;
		default: return option_error("status", "+jh", argv);
		}
	}
	if (optind < argc) {
		errorf("status: %s: unexpected argument", argv[optind]);
		return EXIT_USAGE;
	}
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	sponge_stats st;
	sponge_policy pol;
	sponge_get_policy(sp, &pol);
	int rc = sponge_stats_get(sp, &st);
	if (rc) {
		status = fail(sp, rc);
		sponge_close(sp);
		return status;
	}
	sponge_hiter *hit = NULL;
	const sponge_attempt *last = last_attempt(sp, &hit);
	/* the flush's own decision and the rules it read, so that the two
	 * never disagree */
	sponge_decision d;
	if (sponge_decide_rules(sp, 0, &d) != SPONGE_OK) {
		snprintf(d.reason, sizeof d.reason, "unknown: %s",
			 sponge_errmsg(sp));
		d.now = sponge_now();
	}
	/* a config that cannot send: flush refuses, whatever the policy */
	if (sponge_check_config(sp) != SPONGE_OK) {
		snprintf(d.reason, sizeof d.reason, "refused: %s",
			 sponge_errmsg(sp));
		d.verdict = VERDICT_REFUSED;
	}
	if (json)
		json_line(status_json(sp, &st, &pol, last, &d));
	else
		status_text(sp, &st, &pol, last, &d);
	warn_other_spool(g, sp);
	sponge_history_close(hit);
	sponge_close(sp);
	return finish_output(0);
}

/* ---- list --------------------------------------------------------- */

static void list_usage(FILE *f)
{
	usage(f, "list");
	fprintf(f,
		"options:\n"
		"  -l, --level L   records at L or above (err shows emerg…err)\n"
		"  -t, --tag T     records with exactly this tag\n"
		"  -S, --since T   at or after T: 2h (ago), 2026-11-21, "
		"2026-11-21T10:00Z\n"
		"  -U, --until T   before T (same forms)\n"
		"  -g, --grep S    message contains S (fixed string, "
		"case-sensitive)\n"
		"  -n, --limit N   only the newest N matches\n"
		"      --sent      sent records kept by spool.keep_sent, "
		"instead of pending ones\n"
		"      --ignored   records the noise rules ignore, instead of "
		"the others\n"
		"      --json      one JSON object per line\n");
}

/* One record as a JSON line. */
static bool list_json(const sponge_record *r, const char *tb)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "time", json_string(tb));
	json_object_set_new(o, "level", json_string(sponge_level_name(r->level)));
	json_object_set_new(o, "tag", *r->tag ? json_string(r->tag) : json_null());
	json_object_set_new(o, "host", json_string(r->host));
	json_object_set_new(o, "message", json_stringn(r->message, r->message_len));
	if (r->sent_in)
		json_object_set_new(o, "sent_in", json_integer(r->sent_in));
	if (r->rule)
		json_object_set_new(o, "rule", json_string(r->rule));
	if (r->ignored)
		json_object_set_new(o, "ignored", json_true());
	if (r->escalated)
		json_object_set_new(o, "escalated", json_true());
	if (r->orig_level >= 0)
		json_object_set_new(o, "original_level", json_string(
				sponge_level_name(r->orig_level)));
	return json_line(o);
}

/* One record as text: a record of several lines has its other lines
 * indented under the first. */
static bool list_text(const sponge_record *r, const char *tb)
{
	const char *m = r->message;
	const char *nl = strchr(m, '\n');
	bool ok = printf("%s %-7s %s: %.*s", tb, sponge_level_name(r->level),
			 *r->tag ? r->tag : "-",
			 (int)(nl ? nl - m : (ptrdiff_t)strlen(m)), m) >= 0;
	while (ok && nl) {
		m = nl + 1;
		nl = strchr(m, '\n');
		ok = printf("\n    %.*s",
			    (int)(nl ? nl - m : (ptrdiff_t)strlen(m)), m) >= 0;
	}
	if (ok && r->sent_in)
		ok = printf("  [sent in #%lld]", (long long)r->sent_in) >= 0;
	if (ok && r->rule && r->escalated)
		ok = printf("  [ESCALATING: %s past unless=]", r->rule) >= 0;
	else if (ok && r->rule && r->orig_level >= 0)
		ok = printf("  [%s, was %s]", r->rule,
			    sponge_level_name(r->orig_level)) >= 0;
	else if (ok && r->rule)
		ok = printf("  [%s by %s]", r->ignored ? "ignored" : "kept",
			    r->rule) >= 0;
	return ok && putchar('\n') != EOF;
}

/* list's options into f and *json: -1, or the exit status to return. */
static int list_options(globals *g, int argc, char **argv, sponge_filter *f,
			bool *json)
{
	static const struct option opts[] = {
		{"level", required_argument, NULL, 'l'},
		{"tag", required_argument, NULL, 't'},
		{"since", required_argument, NULL, 'S'},
		{"until", required_argument, NULL, 'U'},
		{"grep", required_argument, NULL, 'g'},
		{"limit", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"sent", no_argument, NULL, 'X'},
		{"ignored", no_argument, NULL, 'I'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int64_t now = sponge_now();
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+l:t:S:U:g:n:jh", opts)) != -1) {
		bool ok = true;
		switch (c) {
		case 'l':
			ok = parse_level_opt("list: --level", optarg, &f->level);
			f->has_level = 1;
			break;
		case 't': f->tag = optarg; break;
		case 'S':
			ok = parse_time_opt("list: --since", optarg, now,
					    &f->since_us);
			break;
		case 'U':
			ok = parse_time_opt("list: --until", optarg, now,
					    &f->until_us);
			break;
		case 'g': f->grep = optarg; break;
		case 'n': ok = parse_count("list: --limit", optarg, &f->limit); break;
		case 'j': *json = true; break;
		case 'X': f->sent = SPONGE_SENT_ONLY; break;
		case 'I': f->ignored = SPONGE_IGNORED_ONLY; break;
		case 'h': list_usage(stdout); return 0;
		default: return option_error("list", "+l:t:S:U:g:n:jh", argv);
		}
		if (!ok)
			return EXIT_USAGE;
	}
	if (optind < argc) {
		errorf("list: %s: unexpected argument", argv[optind]);
		return EXIT_USAGE;
	}
	if (f->tag && strcmp(f->tag, "-") == 0)
		f->tag = ""; /* `--tag -` selects records without a tag */
	return -1;
}

int cmd_list(globals *g, int argc, char **argv)
{
	sponge_filter f;
	memset(&f, 0, sizeof f);
	bool json = false;
	int status = list_options(g, argc, argv, &f, &json);
	if (status >= 0)
		return status;
	status = 0;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	sponge_iter *it;
	int rc = sponge_query(sp, &f, &it);
	const sponge_record *r;
	while (rc == SPONGE_OK && (rc = sponge_query_next(it, &r)) == SPONGE_ROW) {
		char tb[32];
		sponge_format_time(r->time_us, tb);
		if (!(json ? list_json(r, tb) : list_text(r, tb)))
			break;
		rc = SPONGE_OK;
	}
	if (rc != SPONGE_OK && rc != SPONGE_DONE && rc != SPONGE_ROW)
		status = fail(sp, rc);
	sponge_query_close(it);
	sponge_close(sp);
	return finish_output(status);
}

/* ---- history ------------------------------------------------------ */

int cmd_history(globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"limit", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int64_t limit = 20;
	int c, status = 0;
	while ((c = cmd_getopt(g, argc, argv, "+n:jh", opts)) != -1) {
		switch (c) {
		case 'n':
			if (!parse_count("history: --limit", optarg, &limit))
				return EXIT_USAGE;
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout, "history"); return 0;
		default: return option_error("history", "+n:jh", argv);
		}
	}
	if (optind < argc) {
		errorf("history: %s: unexpected argument", argv[optind]);
		return EXIT_USAGE;
	}
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	sponge_hiter *it;
	const sponge_attempt *a;
	int rc = sponge_history(sp, limit, &it), n = 0;
	while (rc == SPONGE_OK && (rc = sponge_history_next(it, &a)) == SPONGE_ROW) {
		char tb[32];
		sponge_format_time(a->time_us, tb);
		bool ok;
		if (json)
			ok = json_line(json_pack(
				"{s:I,s:s,s:s,s:s,s:s,s:I,s:s}", "id",
				(json_int_t)a->id, "time", tb, "outcome",
				a->outcome, "stage", a->stage, "reply",
				a->reply, "records", (json_int_t)a->records,
				"message_id", a->message_id));
		else
			ok = printf("#%-4lld %s %-9s %6lld record%s%s%s%s%s\n",
				    (long long)a->id, tb, a->outcome,
				    (long long)a->records,
				    a->records == 1 ? "" : "s",
				    *a->stage ? " at " : "", a->stage,
				    *a->reply ? ": " : "", a->reply) >= 0;
		if (!ok)
			break;
		n++;
		rc = SPONGE_OK;
	}
	if (rc != SPONGE_OK && rc != SPONGE_DONE && rc != SPONGE_ROW)
		status = fail(sp, rc);
	else if (!n && !json && g->verbosity >= 0)
		printf("no flush attempts yet\n");
	sponge_history_close(it);
	sponge_close(sp);
	return finish_output(status);
}

/* ---- purge -------------------------------------------------------- */

int cmd_purge(globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"older-than", required_argument, NULL, 'o'},
		{"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int64_t older = -1;
	bool all = false;
	int c, status = 0;
	while ((c = cmd_getopt(g, argc, argv, "+o:ah", opts)) != -1) {
		switch (c) {
		case 'o':
			if (sponge_parse_duration(optarg, &older) != SPONGE_OK ||
			    older <= 0) {
				errorf("purge: --older-than %s: not a duration "
				       "(like 90s, 15m, 24h, 7d)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a': all = true; break;
		case 'h': usage(stdout, "purge"); return 0;
		default: return option_error("purge", "+o:ah", argv);
		}
	}
	if (optind < argc || all == (older > 0)) {
		errorf("purge: give exactly one of --older-than D or --all");
		return EXIT_USAGE;
	}
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	int64_t n = 0;
	/* a duration reaching back past the epoch is clamped: it means
	 * "nothing that old", never "everything" (0 or less is --all) */
	int64_t now = sponge_now();
	int64_t before = all ? 0 : older >= now ? 1 : now - older;
	int rc = sponge_purge(sp, before, &n);
	if (rc)
		status = fail(sp, rc);
	else if (g->verbosity >= 0)
		printf("purged %lld record%s\n", (long long)n, n == 1 ? "" : "s");
	sponge_close(sp);
	return finish_output(status);
}
