/* kind_table.c - kinds gathered in memory by fingerprint: what kinds
 * learn reads from past logs, what kinds --new finds among the pending
 * records.  Open addressing, grown when half full, bounded. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The slot of fp (empty: fp 0), growing the table when half full; NULL
 * when the table may not grow (max kinds) and fp is not in it, or memory
 * ran out. */
static sp_kind_seen *slot(sp_kind_table *t, uint64_t fp, size_t max)
{
	if (t->n * 2 >= t->cap && t->n < max) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		sp_kind_seen *nt = sp_malloc(cap * sizeof *nt);
		if (!nt)
			return NULL;
		memset(nt, 0, cap * sizeof *nt);
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->t[i].fp)
				continue;
			size_t j = t->t[i].fp % cap;
			while (nt[j].fp)
				j = (j + 1) % cap;
			nt[j] = t->t[i];
		}
		sp_free(t->t);
		t->t = nt;
		t->cap = cap;
	}
	if (!t->cap)
		return NULL;
	for (size_t j = fp % t->cap;; j = (j + 1) % t->cap) {
		if (t->t[j].fp == fp)
			return &t->t[j];
		if (!t->t[j].fp)
			return t->n * 2 < t->cap && t->n < max ? &t->t[j]
							       : NULL;
	}
}

bool sp_kind_table_add(sp_kind_table *t, size_t max, const char *tag,
		       const char *line, size_t len, int level, int64_t time)
{
	uint64_t fp = sp_fold_hash(0, tag, line, len, true);
	fp = fp ? fp : 1;
	sp_kind_seen *k = slot(t, fp, max);
	if (!k)
		return t->n >= max; /* full: only the kinds in it count */
	if (!k->fp) {
		*k = (sp_kind_seen){fp, level, 0, time, time, "", ""};
		snprintf(k->tag, sizeof k->tag, "%s", tag);
		snprintf(k->sample, sizeof k->sample, "%.*s", (int)len, line);
		t->n++;
	}
	k->count++;
	k->level = level < k->level ? level : k->level;
	k->first = time < k->first ? time : k->first;
	k->last = time > k->last ? time : k->last;
	return true;
}

size_t sp_kind_table_pack(sp_kind_table *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->t[i].fp)
			t->t[n++] = t->t[i];
	return n;
}

void sp_kind_table_free(sp_kind_table *t)
{
	sp_free(t->t);
	*t = (sp_kind_table){NULL, 0, 0};
}
