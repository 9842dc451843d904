/* kinds.c - the kinds command: the kinds of record delivered messages
 * carried, most recently seen first, and their states (resolve, mute,
 * unmute). */
#define _GNU_SOURCE /* O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

/* kinds --new says "regressed" where kinds says "resolved" */
static const char *state_name(const sponge_kind *k, bool waiting)
{
	int s = k->state;
	return s == SPONGE_KIND_NEW ? "new"
	       : s == SPONGE_KIND_RESOLVED ? (waiting ? "regressed"
						       : "resolved")
	       : s == SPONGE_KIND_MUTED ? "muted"
					: "active";
}

static void kind_json(void *arg, const sponge_kind *k)
{
	const bool *waiting = arg;
	char f[32], l[32];
	sponge_format_time(k->first_seen_us, f);
	sponge_format_time(k->last_seen_us, l);
	json_line(json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "id",
			    (json_int_t)k->id, "state", state_name(k, *waiting),
			    "level", sponge_level_name(k->level), "tag", k->tag,
			    "seen", (json_int_t)k->seen, "sent",
			    (json_int_t)k->sent, "first_seen", f, "last_seen", l,
			    "kind", k->masked, "sample", k->sample));
}

static void kind_text(void *arg, const sponge_kind *k)
{
	const bool *waiting = arg;
	char f[32], l[32], id[24] = "-";
	sponge_format_time(k->first_seen_us, f);
	sponge_format_time(k->last_seen_us, l);
	if (k->id)
		snprintf(id, sizeof id, "%lld", (long long)k->id);
	printf("%5s  %-9s %-7s %7lld %5lld  %.10s  %.10s  %s: %s\n",
	       id, state_name(k, *waiting),
	       sponge_level_name(k->level), (long long)k->seen,
	       (long long)k->sent, f, l, *k->tag ? k->tag : "-", k->masked);
}

/* kinds, or (waiting) kinds --new: the kinds of the pending records the
 * next message marks NEW or REGRESSED, "seen" counting those records */
static int kinds_list(globals *g, bool json, bool waiting, int64_t limit)
{
	int status = 0;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	if (!json)
		printf("%5s  %-9s %-7s %7s %5s  %-10s  %-10s  %s\n", "id",
		       "state", "level", waiting ? "pending" : "seen", "sent",
		       "first seen", "last seen", "kind");
	void (*each)(void *, const sponge_kind *) = json ? kind_json
							 : kind_text;
	int rc = waiting ? sponge_kinds_new(sp, limit, each, &waiting)
			 : sponge_kinds(sp, limit, each, &waiting);
	if (rc != SPONGE_OK)
		status = fail(sp, rc);
	sponge_close(sp);
	return finish_output(status);
}

/* kinds resolve|mute|unmute ID...: 65 naming an id that is not there */
static int kinds_set(globals *g, int state, int argc, char **argv)
{
	if (argc < 2) {
		errorf("kinds %s: which kind? (an id that `logsponge kinds` "
		       "shows)", argv[0]);
		return EXIT_USAGE;
	}
	int status = 0;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	for (int i = 1; i < argc && !status; i++) {
		char *end;
		long long id = strtoll(argv[i], &end, 10);
		if (end == argv[i] || *end || id <= 0) {
			errorf("kinds %s: %s: not a kind's id", argv[0], argv[i]);
			status = EXIT_USAGE;
		} else if (sponge_kind_set_state(sp, id, state) != SPONGE_OK) {
			errorf("kinds %s: %s", argv[0], sponge_errmsg(sp));
			status = EXIT_DATAERR;
		}
	}
	sponge_close(sp);
	return status;
}

/* kinds learn: each line of the files (else of standard input) read as
 * add reads it, its kind learnt; nothing stored as a record. */
typedef struct learner {
	sponge *sp;
	int rc;
} learner;

static void learn_one(void *arg, const sponge_entry *e, const char *line,
		      size_t len)
{
	(void)line;
	(void)len;
	learner *l = arg;
	if (l->rc == SPONGE_OK)
		l->rc = sponge_kind_learn(l->sp, e);
}

static int learn_options(globals *g, int argc, char **argv, input_opts *o)
{
	static const struct option opts[] = {
		INPUT_LONGOPTS,
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (input_opts)INPUT_OPTS_DEFAULT;
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+l:t:df:h", opts)) != -1) {
		int took = input_option("kinds learn", c, optarg, o);
		if (took < 0)
			return EXIT_USAGE;
		if (took)
			continue;
		if (c == 'h') {
			usage(stdout, "kinds");
			return 0;
		}
		return option_error("kinds learn", "+l:t:df:h", argv);
	}
	return -1;
}

static int kinds_learn(globals *g, int argc, char **argv)
{
	input_opts o;
	int status = learn_options(g, argc, argv, &o);
	if (status >= 0)
		return status;
	status = 0;
	sponge *sp = open_spool(g, USE_INGEST, &status, NULL);
	if (!sp)
		return status;
	learner l = {sp, SPONGE_OK};
	adder a;
	adder_init_input(&a, sp, &o, "kinds learn");
	a.judge = learn_one;
	a.judge_arg = &l;
	status = feed_files(&a, argc, argv, "kinds learn");
	int64_t n = 0;
	int rc = l.rc;
	if (rc == SPONGE_OK && !status)
		rc = sponge_kinds_learn_end(sp, &n);
	if (rc != SPONGE_OK && !status)
		status = fail(sp, rc);
	if (!status)
		printf("kinds learn: %lld kind%s known now\n", (long long)n,
		       n == 1 ? "" : "s");
	adder_free(&a);
	sponge_close(sp);
	return finish_output(status);
}

int cmd_kinds(globals *g, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "resolve"))
		return kinds_set(g, SPONGE_KIND_RESOLVED, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "mute"))
		return kinds_set(g, SPONGE_KIND_MUTED, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "unmute"))
		return kinds_set(g, SPONGE_KIND_ACTIVE, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "learn"))
		return kinds_learn(g, argc - 1, argv + 1);
	bool json = false, waiting = false;
	int64_t limit = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--new")) {
			waiting = true;
		} else if ((!strcmp(argv[i], "-n") || !strcmp(argv[i], "--limit")) &&
			   i + 1 < argc) {
			if (!parse_count("kinds: --limit", argv[++i], &limit))
				return EXIT_USAGE;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout, "kinds");
			return 0;
		} else {
			errorf("kinds: %s: unexpected argument (resolve, mute, "
			       "unmute, learn, --new, --json, --limit N)",
			       argv[i]);
			return EXIT_USAGE;
		}
	}
	return kinds_list(g, json, waiting, limit);
}
