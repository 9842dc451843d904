/* kinds.c - the kinds command: the kinds of record delivered messages
 * carried, most recently seen first, and their states (resolve, mute,
 * unmute). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static const char *state_name(int s)
{
	return s == SPONGE_KIND_RESOLVED ? "resolved"
	       : s == SPONGE_KIND_MUTED  ? "muted"
					 : "active";
}

static void kind_json(void *arg, const sponge_kind *k)
{
	(void)arg;
	char f[32], l[32];
	sponge_format_time(k->first_seen_us, f);
	sponge_format_time(k->last_seen_us, l);
	json_line(json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "id",
			    (json_int_t)k->id, "state", state_name(k->state),
			    "level", sponge_level_name(k->level), "tag", k->tag,
			    "seen", (json_int_t)k->seen, "sent",
			    (json_int_t)k->sent, "first_seen", f, "last_seen", l,
			    "kind", k->masked, "sample", k->sample));
}

static void kind_text(void *arg, const sponge_kind *k)
{
	(void)arg;
	char f[32], l[32];
	sponge_format_time(k->first_seen_us, f);
	sponge_format_time(k->last_seen_us, l);
	printf("%5lld  %-8s %-7s %7lld %5lld  %.10s  %.10s  %s: %s\n",
	       (long long)k->id, state_name(k->state),
	       sponge_level_name(k->level), (long long)k->seen,
	       (long long)k->sent, f, l, *k->tag ? k->tag : "-", k->masked);
}

static int kinds_list(globals *g, bool json, int64_t limit)
{
	int status = 0;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	if (!json)
		printf("%5s  %-8s %-7s %7s %5s  %-10s  %-10s  %s\n", "id",
		       "state", "level", "seen", "sent", "first seen",
		       "last seen", "kind");
	int rc = sponge_kinds(sp, limit, json ? kind_json : kind_text, NULL);
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

int cmd_kinds(globals *g, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "resolve"))
		return kinds_set(g, SPONGE_KIND_RESOLVED, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "mute"))
		return kinds_set(g, SPONGE_KIND_MUTED, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "unmute"))
		return kinds_set(g, SPONGE_KIND_ACTIVE, argc - 1, argv + 1);
	bool json = false;
	int64_t limit = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if ((!strcmp(argv[i], "-n") || !strcmp(argv[i], "--limit")) &&
			   i + 1 < argc) {
			if (!parse_count("kinds: --limit", argv[++i], &limit))
				return EXIT_USAGE;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout, "kinds");
			return 0;
		} else {
			errorf("kinds: %s: unexpected argument (resolve, mute, "
			       "unmute, --json, --limit N)", argv[i]);
			return EXIT_USAGE;
		}
	}
	return kinds_list(g, json, limit);
}
