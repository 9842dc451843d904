/* kinds_learn.c - kinds learnt from past logs (kinds learn): each entry
 * judged by the rules as ingest would, its kind kept in a table of the
 * handle by fingerprint, written in one transaction at the end. */
#define _GNU_SOURCE /* CLOCK_REALTIME_COARSE */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define TAG_MAX 64

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
	int64_t t = e->time_us ? e->time_us : sponge_now();
	ok = sp_kind_table_add(&sp->learn, (size_t)sp->cfg.max_kinds, tag,
			       m + off, n, level, t);
	sb_free(&b);
	return ok ? SPONGE_OK : sp_fail(sp, SPONGE_ENOMEM, "out of memory");
}

int sponge_kinds_learn_end(sponge *sp, int64_t *kinds)
{
	SP_GUARD;
	if (kinds)
		*kinds = 0;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	size_t n = sp_kind_table_pack(&sp->learn);
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "remembering kinds");
	if (rc == SPONGE_OK)
		rc = sp_store_kinds_commit(sp, sp->learn.t, n, sponge_now(),
					   false);
	rc = sp_store_end(sp, rc, "remembering kinds");
	if (rc == SPONGE_OK && kinds)
		*kinds = (int64_t)n;
	sp_kind_table_free(&sp->learn);
	return rc;
}
