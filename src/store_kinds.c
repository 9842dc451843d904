/* store_kinds.c - the kinds of record delivered messages carried: what
 * a message looks up to say NEW, BACK or REGRESSED, what a delivery
 * adds, and the kinds command's list and states. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"

int sp_store_kind_get(sponge *sp, uint64_t fp, sp_kind_known *k)
{
	memset(k, 0, sizeof *k);
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT state, last_seen, "
					   "coalesce(resolved, 0), id FROM "
					   "kinds WHERE fp = ?",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading kinds");
	sqlite3_bind_int64(st, 1, (int64_t)fp);
	if ((r = sqlite3_step(st)) == SQLITE_ROW) {
		k->known = true;
		k->state = sqlite3_column_int(st, 0);
		k->last_seen = sqlite3_column_int64(st, 1);
		k->resolved = sqlite3_column_int64(st, 2);
		k->id = sqlite3_column_int64(st, 3);
		r = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading kinds");
}

/* One kind: new, or seen again (a resolved one is active again). */
static int upsert(sponge *sp, sqlite3_stmt *st, const sp_kind_seen *k,
		  int64_t now, bool delivered)
{
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (int64_t)k->fp);
	sqlite3_bind_text(st, 2, k->tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, k->sample, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, k->level);
	sqlite3_bind_int64(st, 5, k->first);
	sqlite3_bind_int64(st, 6, k->last);
	sqlite3_bind_int64(st, 7, now);
	sqlite3_bind_int64(st, 8, k->count);
	sqlite3_bind_int(st, 9, SP_MASK_VERSION);
	sqlite3_bind_int(st, 10, delivered);
	int r = sqlite3_step(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "remembering kinds");
}

/* At most max_kinds: the least recently seen go. */
static int bound(sponge *sp)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"DELETE FROM kinds WHERE id IN (SELECT id FROM kinds ORDER BY "
		"last_seen LIMIT max(0, (SELECT count(*) FROM kinds) - ?1))",
		-1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, sp->cfg.max_kinds);
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "remembering kinds");
}

int sp_store_kinds_commit(sponge *sp, const sp_kind_seen *k, size_t n,
			  int64_t now, bool delivered)
{
	if (!n)
		return SPONGE_OK;
	sp->kind_seen_at = 0; /* ingest's answers are out of date */
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"INSERT INTO kinds(fp, tag, sample, level, first_seen, last_seen, "
		"last_sent, seen, sent, mask) VALUES(?1, ?2, ?3, ?4, ?5, ?6, "
		"?7 * ?10, ?8, ?10, ?9) ON CONFLICT(fp) DO UPDATE SET level = "
		"min(level, excluded.level), first_seen = min(first_seen, "
		"excluded.first_seen), last_seen = max(last_seen, "
		"excluded.last_seen), last_sent = max(last_sent, "
		"excluded.last_sent), seen = seen + excluded.seen, sent = sent + "
		"?10, state = CASE WHEN state = 3 OR ?10 = 0 THEN state ELSE 0 END",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "remembering kinds");
	int rc = SPONGE_OK;
	for (size_t i = 0; i < n && rc == SPONGE_OK; i++)
		rc = upsert(sp, st, &k[i], now, delivered);
	sqlite3_finalize(st);
	if (rc == SPONGE_OK)
		rc = bound(sp);
	return rc ? rc : sp_store_kinds_recheck(sp);
}

/* ---- the kinds command ------------------------------------------------ */

static void kind_row(sqlite3_stmt *st, spbuf *masked, sponge_kind *k)
{
	const char *s = (const char *)sqlite3_column_text(st, 2);
	s = s ? s : "";
	sb_reset(masked);
	sp_mask(masked, s, strlen(s));
	const char *tag = (const char *)sqlite3_column_text(st, 1);
	*k = (sponge_kind){sqlite3_column_int64(st, 0),
			   tag ? tag : "",
			   s,
			   masked->data ? masked->data : "",
			   sqlite3_column_int(st, 3),
			   sqlite3_column_int64(st, 4),
			   sqlite3_column_int64(st, 5),
			   sqlite3_column_int64(st, 6),
			   sqlite3_column_int64(st, 7),
			   sqlite3_column_int64(st, 8),
			   sqlite3_column_int(st, 9),
			   sqlite3_column_int64(st, 10)};
}

int sponge_kinds(sponge *sp, int64_t limit,
		 void (*each)(void *arg, const sponge_kind *k), void *arg)
{
	SP_GUARD;
	if (!sp_usable(sp) || !each)
		return SPONGE_EINVAL;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"SELECT id, tag, sample, level, first_seen, last_seen, "
		"last_sent, seen, sent, state, coalesce(resolved, 0) FROM kinds "
		"ORDER BY last_seen DESC, id DESC LIMIT ?",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading kinds");
	sqlite3_bind_int64(st, 1, limit > 0 ? limit : -1);
	spbuf masked;
	sb_init(&masked, 0);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		sponge_kind k;
		kind_row(st, &masked, &k);
		each(arg, &k);
	}
	sqlite3_finalize(st);
	sb_free(&masked);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading kinds");
}

int sponge_kind_set_state(sponge *sp, int64_t id, int state)
{
	SP_GUARD;
	if (!sp_usable(sp) || (state != SPONGE_KIND_ACTIVE &&
			       state != SPONGE_KIND_RESOLVED &&
			       state != SPONGE_KIND_MUTED))
		return SPONGE_EINVAL;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "UPDATE kinds SET state = ?2, "
					   "resolved = CASE WHEN ?2 = 2 THEN ?3 "
					   "ELSE resolved END WHERE id = ?1",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, state);
		sqlite3_bind_int64(st, 3, sponge_now());
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "changing a kind");
	sp->kind_seen_at = 0;
	return sqlite3_changes(sp->db)
		       ? SPONGE_OK
		       : sp_fail(sp, SPONGE_EINVAL, "no kind %lld", (long long)id);
}

/* ---- records of new kinds, for policy.flush_on_new ----------------- */

/* Is kind fp new: unknown, or resolved? */
static int lookup(sponge *sp, sqlite3_stmt *st, uint64_t fp, bool *yes)
{
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (int64_t)fp);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*yes = sqlite3_column_int(st, 0) == SP_KIND_RESOLVED;
		return SPONGE_OK;
	}
	*yes = true;
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading kinds");
}

/* Is the kind of (tag, message) new: unknown, or resolved?  With seen:
 * the answers remembered by fingerprint. */
#define SEEN_SLOTS (sizeof ((sponge *)0)->kind_seen / \
		    sizeof ((sponge *)0)->kind_seen[0])
typedef struct sp_seen_fp seen_fp;

static int is_new(sponge *sp, sqlite3_stmt *st, const char *tag,
		  const char *msg, size_t len, bool *yes, seen_fp *seen)
{
	size_t off, n = sp_summary(msg, len, &off);
	uint64_t fp = sp_fold_hash(0, tag, msg + off, n, true);
	seen_fp *s = seen ? &seen[fp % SEEN_SLOTS] : NULL;
	if (s && s->fp == fp && fp) {
		*yes = s->yes;
		return SPONGE_OK;
	}
	int rc = lookup(sp, st, fp, yes);
	if (s && rc == SPONGE_OK)
		*s = (seen_fp){fp, *yes};
	return rc;
}

int sp_new_kind_level(const sponge *sp)
{
	int top = sp->cfg.policy.flush_on_new > sp->cfg.new_level
			  ? sp->cfg.policy.flush_on_new
			  : sp->cfg.new_level;
	/* kinds are counted at count_level and above */
	return top > sp->cfg.policy.count_level ? sp->cfg.policy.count_level
						: top;
}

int sp_store_mark_new_kinds(sponge *sp, sp_queued *q, size_t n)
{
	int top = sp_new_kind_level(sp);
	sqlite3_stmt *st = NULL;
	int rc = SPONGE_OK;
	const char *d = sp->qdata.data;
	for (size_t i = 0; i < n && rc == SPONGE_OK; i++) {
		q[i].new_kind = false;
		if (q[i].level > top) /* less severe, or ignored (8…15) */
			continue;
		if (!st) {
			int r = sqlite3_prepare_v2(sp->db, "SELECT state FROM "
							   "kinds WHERE fp = ?",
						   -1, &st, NULL);
			if (r != SQLITE_OK)
				return sp_dberr(sp, r, "reading kinds");
			int64_t now = sponge_now();
			if (now - sp->kind_seen_at > 60 * 1000000LL ||
			    now < sp->kind_seen_at) {
				memset(sp->kind_seen, 0, sizeof sp->kind_seen);
				sp->kind_seen_at = now;
			}
		}
		char tag[80];
		size_t tl = q[i].tag_len < sizeof tag ? q[i].tag_len
						      : sizeof tag - 1;
		memcpy(tag, d + q[i].tag_off, tl);
		tag[tl] = '\0';
		rc = is_new(sp, st, tag, d + q[i].msg_off, q[i].msg_len,
			    &q[i].new_kind, sp->kind_seen);
	}
	sqlite3_finalize(st);
	return rc;
}

int sp_store_new_pending(sponge *sp, int level, int64_t *n)
{
	sqlite3_stmt *st;
	*n = 0;
	int r = sqlite3_prepare_v2(sp->db, "SELECT coalesce(sum(n), 0) FROM "
					   "counts WHERE k >= ?1 AND k <= ?2",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int(st, 1, SP_COUNT_NEW);
		sqlite3_bind_int(st, 2, SP_COUNT_NEW + level);
		if ((r = sqlite3_step(st)) == SQLITE_ROW) {
			*n = sqlite3_column_int64(st, 0);
			r = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, r, "reading kinds");
}

int sp_store_kinds_recheck(sponge *sp)
{
	int64_t waiting = 0;
	int rc = sp_store_new_pending(sp, 7, &waiting);
	if (rc || !waiting) /* (else a walk through the pending records) */
		return rc;
	sqlite3_stmt *sel, *kst = NULL, *clr = NULL;
	int r = sqlite3_prepare_v2(sp->db, "SELECT id, tag, message, level "
					   "FROM records WHERE new_kind IS NOT "
					   "NULL AND sent IS NULL AND level < 8",
				   -1, &sel, NULL);
	if (r == SQLITE_OK)
		r = sqlite3_prepare_v2(sp->db, "SELECT state FROM kinds WHERE "
					       "fp = ?", -1, &kst, NULL);
	if (r == SQLITE_OK)
		r = sqlite3_prepare_v2(sp->db, "UPDATE records SET new_kind = "
					       "NULL WHERE id = ?", -1, &clr, NULL);
	rc = r == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, r, "reading kinds");
	int64_t d[SP_COUNTS] = {0};
	while (rc == SPONGE_OK && (r = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(sel, 1);
		const char *m = (const char *)sqlite3_column_text(sel, 2);
		bool yes = true;
		rc = is_new(sp, kst, tag ? tag : "", m ? m : "",
			    (size_t)sqlite3_column_bytes(sel, 2), &yes, NULL);
		if (rc == SPONGE_OK && !yes) {
			sqlite3_reset(clr);
			sqlite3_bind_int64(clr, 1, sqlite3_column_int64(sel, 0));
			if (sqlite3_step(clr) != SQLITE_DONE)
				rc = sp_dberr(sp, sqlite3_errcode(sp->db),
					      "remembering kinds");
			d[SP_COUNT_NEW + (sqlite3_column_int(sel, 3) & 7)]--;
		}
	}
	if (rc == SPONGE_OK && r != SQLITE_DONE)
		rc = sp_dberr(sp, r, "reading kinds");
	if (rc == SPONGE_OK)
		rc = sp_counts_add(sp, d);
	sqlite3_finalize(sel);
	sqlite3_finalize(kst);
	sqlite3_finalize(clr);
	return rc;
}

/* ---- a new masking: the kinds' fingerprints made again ------------- */

/* (store.c's sp_store_exec would make a cycle: store.c calls here) */
static int exec(sponge *sp, const char *sql)
{
	int r = sqlite3_exec(sp->db, sql, NULL, NULL, NULL);
	return r == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, r, "remasking kinds");
}

/* Kind id (tag, sample) under the current masking: its fingerprint and
 * version updated, or, when another kind has that fingerprint already,
 * merged into it. */
static int remask_one(sponge *sp, int64_t id, const char *tag,
		      const char *sample)
{
	size_t off, n = sp_summary(sample, strlen(sample), &off);
	uint64_t fp = sp_fold_hash(0, tag, sample + off, n, true);
	fp = fp ? fp : 1;
	char sql[512];
	snprintf(sql, sizeof sql,
		 "UPDATE kinds SET seen = seen + (SELECT seen FROM kinds WHERE "
		 "id = %lld), sent = sent + (SELECT sent FROM kinds WHERE id = "
		 "%lld) WHERE fp = %lld AND id != %lld",
		 (long long)id, (long long)id, (long long)fp, (long long)id);
	int rc = exec(sp, sql);
	if (rc)
		return rc;
	snprintf(sql, sizeof sql,
		 sqlite3_changes(sp->db)
			 ? "DELETE FROM kinds WHERE id = %lld"
			 : "UPDATE kinds SET fp = %lld, mask = %d WHERE id = %lld",
		 (long long)(sqlite3_changes(sp->db) ? id : (int64_t)fp),
		 SP_MASK_VERSION, (long long)id);
	return exec(sp, sql);
}

static int remask_id(sponge *sp, int64_t id)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT tag, sample FROM kinds "
					   "WHERE id = ?",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "remasking kinds");
	sqlite3_bind_int64(st, 1, id);
	int rc = SPONGE_OK;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(st, 0);
		const char *sample = (const char *)sqlite3_column_text(st, 1);
		char t[80], m[256];
		snprintf(t, sizeof t, "%s", tag ? tag : "");
		snprintf(m, sizeof m, "%s", sample ? sample : "");
		sqlite3_finalize(st);
		return remask_one(sp, id, t, m);
	}
	sqlite3_finalize(st);
	return rc;
}

int sp_store_kinds_remask(sponge *sp)
{
	sp->kind_seen_at = 0;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT id, tag, sample FROM kinds "
					   "WHERE mask < ? ORDER BY id",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "remasking kinds");
	sqlite3_bind_int(st, 1, SP_MASK_VERSION);
	/* one pass over a snapshot of the old ones: ids first */
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			int64_t *g = sp_realloc(ids, cap * sizeof *g);
			if (!g)
				break;
			ids = g;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	int rc = n ? exec(sp, "BEGIN IMMEDIATE") : SPONGE_OK;
	for (size_t i = 0; i < n && rc == SPONGE_OK; i++)
		rc = remask_id(sp, ids[i]);
	if (n && rc == SPONGE_OK)
		rc = exec(sp, "COMMIT");
	if (n && rc != SPONGE_OK)
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	sp_free(ids);
	return rc;
}
