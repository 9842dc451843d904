/* tail.h - what the tail command's readers share (tail.c: files,
 * tail_journal.c: the journal). */
#ifndef LOGSPONGE_TAIL_H
#define LOGSPONGE_TAIL_H

#include "cli.h"

typedef struct tailer {
	sponge *sp;
	const sponge_source *src;
	adder a;
	bool dry_run, from_start, follow;
	char *buf;
	int64_t lines, bytes; /* read this pass (for --dry-run) */
} tailer;

/* A record at warning about the source, stored with the position. */
void anomaly(tailer *t, const char *what);
/* Position p of source name, stored with the records queued since the
 * last one, in one transaction (nothing with --dry-run); false when the
 * spool failed (said on stderr). */
bool store_position(tailer *t, const char *name, const sponge_position *p);
/* One pass over a journal source; an exit status. */
int journal_pass(tailer *t);
/* --follow: one(t, source) for each source wanted, again whenever their
 * directories change (or each second), until a stop signal; an exit
 * status. */
int tail_follow(tailer *t, const bool *want, size_t n,
		int (*one)(tailer *, size_t i));

#endif
