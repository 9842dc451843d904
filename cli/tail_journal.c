/* tail_journal.c - a journal source: the systemd journal (or the journal
 * files of a directory) read with sd-journal from the cursor the spool
 * keeps, each entry written as journalctl -o json writes it and stored
 * through add's journal-json ingest; the cursor is committed in the
 * transaction of the entries it covers. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <systemd/sd-journal.h>

#include "tail.h"

#define COMMIT_ENTRIES 20000

static const char *const fields[] = {
	"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "_COMM", "_HOSTNAME",
	"SYSLOG_PID", "_PID"};

/* The current entry as one JSON line into the ingest. */
static void take_entry(tailer *t, sd_journal *j)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < sizeof fields / sizeof fields[0]; i++) {
		const void *d;
		size_t n, k = strlen(fields[i]);
		if (sd_journal_get_data(j, fields[i], &d, &n) < 0 || n <= k)
			continue;
		/* (a value that is not UTF-8 is kept as jansson can) */
		json_t *v = json_stringn((const char *)d + k + 1, n - k - 1);
		if (v)
			json_object_set_new(o, fields[i], v);
	}
	uint64_t us;
	if (o && sd_journal_get_realtime_usec(j, &us) >= 0) {
		char b[24];
		snprintf(b, sizeof b, "%llu", (unsigned long long)us);
		json_object_set_new(o, "__REALTIME_TIMESTAMP", json_string(b));
	}
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	t->lines++;
	if (line && !t->dry_run) {
		size_t n = strlen(line);
		line[n] = '\n'; /* (json_dumps' NUL: the line's end) */
		adder_feed(&t->a, line, n + 1);
	}
	free(line);
}

/* The entries and the cursor that covers them, in one transaction. */
static bool commit_cursor(tailer *t, const char *cursor)
{
	if (t->dry_run || !cursor)
		return true;
	sponge_position p;
	memset(&p, 0, sizeof p);
	p.cursor = cursor;
	join_flush(&t->a);
	return store_position(t, t->src->name, &p);
}

/* The source's matches (FIELD=value, by spaces: fields ANDed, values of
 * one field ORed) and priority floor. */
static int add_matches(sd_journal *j, const sponge_source *s)
{
	int r = 0;
	if (s->match) {
		char *m = strdup(s->match), *save = NULL;
		for (char *w = m ? strtok_r(m, " \t", &save) : NULL; w && r >= 0;
		     w = strtok_r(NULL, " \t", &save))
			r = sd_journal_add_match(j, w, 0);
		free(m);
	}
	for (int p = 0; r >= 0 && p <= s->priority; p++) {
		char b[24];
		snprintf(b, sizeof b, "PRIORITY=%d", p);
		r = sd_journal_add_match(j, b, 0);
	}
	return r;
}

/* The cursor the journal unit's journalctl kept beside the spool
 * (--cursor-file, before the unit read the journal with tail): where the
 * built-in source `journal` starts when the spool has none; NULL. */
static char *old_cursor(tailer *t)
{
	const char *spool = sponge_path(t->sp);
	const char *slash = spool ? strrchr(spool, '/') : NULL;
	if (!slash || strcmp(t->src->name, "journal"))
		return NULL;
	char path[4200], *c = NULL;
	snprintf(path, sizeof path, "%.*s/journal.cursor",
		 (int)(slash - spool), spool);
	FILE *f = fopen(path, "re");
	size_t cap = 0;
	ssize_t n = f ? getline(&c, &cap, f) : -1;
	if (f)
		fclose(f);
	while (n > 0 && (c[n - 1] == '\n' || c[n - 1] == '\r'))
		c[--n] = '\0';
	if (n <= 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* Where to start: after the stored cursor (*after, to skip the entry it
 * names), at the head (--from-start), or (a new source) past the last
 * entry, storing nothing. */
static int seek(tailer *t, sd_journal *j, char **after, bool *done)
{
	sponge_position pos;
	int found = 0;
	*after = NULL;
	*done = false;
	if (sponge_position_get(t->sp, t->src->name, &pos, &found) != SPONGE_OK)
		return -1;
	*after = found && pos.cursor ? strdup(pos.cursor)
				     : found ? NULL : old_cursor(t);
	if (*after)
		return sd_journal_seek_cursor(j, *after);
	if (t->from_start)
		return sd_journal_seek_head(j);
	int r = sd_journal_seek_tail(j);
	char *c = NULL;
	if (r >= 0 && sd_journal_previous(j) > 0 &&
	    sd_journal_get_cursor(j, &c) >= 0 && !commit_cursor(t, c))
		r = -1;
	free(c);
	*done = true;
	return r;
}

static sd_journal *open_journal(const sponge_source *s, int *r)
{
	sd_journal *j = NULL;
	*r = s->directory ? sd_journal_open_directory(&j, s->directory, 0)
			  : sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (*r >= 0)
		*r = add_matches(j, s);
	return j;
}

int journal_pass(tailer *t)
{
	int r;
	bool done = false;
	char *after = NULL;
	sd_journal *j = open_journal(t->src, &r);
	if (r >= 0)
		r = seek(t, j, &after, &done);
	if (r < 0) {
		errorf("tail: %s: the journal%s%s: %s", t->src->name,
		       t->src->directory ? " in " : "",
		       t->src->directory ? t->src->directory : "", strerror(-r));
		sd_journal_close(j);
		free(after);
		return EXIT_NOINPUT;
	}
	char *cursor = NULL;
	bool ok = true;
	int64_t since = 0;
	while (!done && ok && (r = sd_journal_next(j)) > 0) {
		char *c = NULL;
		if (sd_journal_get_cursor(j, &c) < 0)
			continue;
		free(cursor);
		cursor = c;
		bool stored = after && sd_journal_test_cursor(j, after) > 0;
		free(after);
		after = NULL;
		if (stored)
			continue; /* the entry the cursor names: stored */
		take_entry(t, j);
		if (++since >= COMMIT_ENTRIES) {
			ok = commit_cursor(t, cursor);
			since = 0;
		}
	}
	if (!done && ok && since)
		ok = commit_cursor(t, cursor);
	free(cursor);
	free(after);
	sd_journal_close(j);
	if (t->dry_run)
		printf("%s: the journal: %lld entr%s to read\n", t->src->name,
		       (long long)t->lines, t->lines == 1 ? "y" : "ies");
	return ok ? 0 : EXIT_IOERR;
}
