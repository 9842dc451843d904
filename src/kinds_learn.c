/* kinds_learn.c - kinds learnt from past logs (kinds learn): each entry
 * judged by the rules as ingest would, its kind kept in a table of the
 * handle by fingerprint, written in one transaction at the end. */
#define _GNU_SOURCE /* CLOCK_REALTIME_COARSE */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define TAG_MAX 64

/* The slot of fp in the table (empty: fp 0), growing it when half full;
 * NULL when the table may not grow (max_kinds) or memory ran out. */
static sp_kind_seen *slot(sponge *sp, uint64_t fp)
{
	if (sp->nlearn * 2 >= sp->learn_cap) {
		if (sp->nlearn >= (size_t)sp->cfg.max_kinds)
			goto find; /* full: only known ones count */
		size_t cap = sp->learn_cap ? sp->learn_cap * 2 : 1024;
		sp_kind_seen *t = sp_malloc(cap * sizeof *t);
		if (!t)
			return NULL;
		memset(t, 0, cap * sizeof *t);
		for (size_t i = 0; i < sp->learn_cap; i++) {
			if (!sp->learn[i].fp)
				continue;
			size_t j = sp->learn[i].fp % cap;
			while (t[j].fp)
				j = (j + 1) % cap;
			t[j] = sp->learn[i];
		}
		sp_free(sp->learn);
		sp->learn = t;
		sp->learn_cap = cap;
	}
find:
	for (size_t j = fp % sp->learn_cap;; j = (j + 1) % sp->learn_cap) {
		if (sp->learn[j].fp == fp)
			return &sp->learn[j];
		if (!sp->learn[j].fp)
			return sp->nlearn * 2 < sp->learn_cap ? &sp->learn[j]
							      : NULL;
	}
}

/* The level the rules leave e at, or -1 when they ignore or drop it. */
static int judged_level(sponge *sp, const sponge_entry *e)
{
	if (!sp->rules_tried)
		sponge_rules_load(sp);
	if (!sp->nhits)
		return e->level;
	bool parsed = sp->parsed_msg && e->msg == sp->parsed_msg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	sponge_judgement j;
	if (sp_rules_judge_ingest(sp, e, parsed ? sp->parsed_line : NULL,
				  parsed ? sp->parsed_len : 0,
				  parsed ? sp->parsed_pid : 0,
				  (int64_t)ts.tv_sec * 1000000, &j) != SPONGE_OK)
		return e->level;
	if (j.verdict == SPONGE_RULE_IGNORE || j.verdict == SPONGE_RULE_DROP)
		return -1;
	return j.level;
}

int sponge_kind_learn(sponge *sp, const sponge_entry *e)
{
	SP_GUARD;
	if (!sp_usable(sp) || !e || (!e->msg && e->len))
		return SPONGE_EINVAL;
	int level = judged_level(sp, e);
	if (level < 0 || level > sp->cfg.policy.count_level)
		return SPONGE_OK;
	/* tag and text as the spool would store them */
	spbuf b;
	sb_init(&b, 0);
	size_t used, tl;
	const char *msg = e->msg ? e->msg : "";
	bool ok = sp_clean(&b, e->tag ? e->tag : "", strlen(e->tag ? e->tag : ""),
			   TAG_MAX, &used);
	tl = b.len;
	ok = ok && sp_clean_text(&b, msg, e->len, sp->cfg.max_record, &used,
				 true);
	if (!ok || b.failed) {
		sb_free(&b);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	char tag[TAG_MAX + 8];
	memcpy(tag, b.data, tl < sizeof tag ? tl : sizeof tag - 1);
	tag[tl < sizeof tag ? tl : sizeof tag - 1] = '\0';
	const char *m = b.data + tl;
	size_t off, n = sp_summary(m, b.len - tl, &off);
	uint64_t fp = sp_fold_hash(0, tag, m + off, n, true);
	fp = fp ? fp : 1;
	int64_t t = e->time_us ? e->time_us : sponge_now();
	sp_kind_seen *k = slot(sp, fp);
	if (k && !k->fp) {
		*k = (sp_kind_seen){fp, level, 0, t, t, "", ""};
		snprintf(k->tag, sizeof k->tag, "%.*s", (int)sizeof k->tag - 1, tag);
		snprintf(k->sample, sizeof k->sample, "%.*s", (int)n, m + off);
		sp->nlearn++;
	}
	if (k) {
		k->count++;
		k->level = level < k->level ? level : k->level;
		k->first = t < k->first ? t : k->first;
		k->last = t > k->last ? t : k->last;
	}
	sb_free(&b);
	return SPONGE_OK;
}

int sponge_kinds_learn_end(sponge *sp, int64_t *kinds)
{
	SP_GUARD;
	if (kinds)
		*kinds = 0;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	size_t n = 0;
	for (size_t i = 0; i < sp->learn_cap; i++) /* packed */
		if (sp->learn[i].fp)
			sp->learn[n++] = sp->learn[i];
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "remembering kinds");
	if (rc == SPONGE_OK)
		rc = sp_store_kinds_commit(sp, sp->learn, n, sponge_now(), false);
	rc = sp_store_end(sp, rc, "remembering kinds");
	if (rc == SPONGE_OK && kinds)
		*kinds = (int64_t)n;
	sp_free(sp->learn);
	sp->learn = NULL;
	sp->nlearn = sp->learn_cap = 0;
	return rc;
}
