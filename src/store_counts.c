/* store_counts.c - records counted per level as they come and go, and the
 * spool caps that use those counts. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"

/* The counts table (schema v5): k 0..7 = pending records at that level,
 * k 8 = sent records kept by spool.keep_sent, k 9..16 (v6) = pending
 * records a noise rule ignores, at level k - 9, k 17..24 (v8) = those of
 * 0..7 whose kind no delivered message carried.  cursor: no pending record
 * of level k has a smaller id (so that looking for the oldest ones never
 * scans the same rows twice). */

static int step_done(sponge *sp, sqlite3_stmt *st, int r, const char *what)
{
	if (r == SQLITE_OK) {
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, r, what);
}

int sp_counts_add(sponge *sp, const int64_t d[SP_COUNTS])
{
	for (int k = 0; k < SP_COUNTS; k++) {
		if (!d[k])
			continue;
		sqlite3_stmt *st;
		int r = sqlite3_prepare_v2(sp->db, "UPDATE counts SET n = n + ?1 "
						   "WHERE k = ?2", -1, &st, NULL);
		if (r == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, d[k]);
			sqlite3_bind_int(st, 2, k);
		}
		int rc = step_done(sp, st, r, "counting records");
		if (rc)
			return rc;
	}
	return SPONGE_OK;
}

int sp_counts_get(sponge *sp, int64_t n[SP_COUNTS], int64_t cur[SP_COUNTS])
{
	memset(n, 0, SP_COUNTS * sizeof n[0]);
	if (cur)
		memset(cur, 0, SP_COUNTS * sizeof cur[0]);
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT k, n, cursor FROM counts",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading counts");
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int k = sqlite3_column_int(st, 0);
		if (k < 0 || k >= SP_COUNTS)
			continue;
		n[k] = sqlite3_column_int64(st, 1);
		if (cur)
			cur[k] = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading counts");
}

static int set_cursor(sponge *sp, int k, int64_t id)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "UPDATE counts SET cursor = "
					   "max(cursor, ?1) WHERE k = ?2",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, k);
	}
	return step_done(sp, st, r, "counting records");
}

int sp_counts_step(sponge *sp, sqlite3_stmt *st, bool to_sent,
		   int64_t *changed, int64_t *max_id, const char *what)
{
	int64_t d[SP_COUNTS] = {0}, total = 0;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int level = sqlite3_column_int(st, 0);
		bool was_sent = sqlite3_column_type(st, 1) != SQLITE_NULL;
		if (max_id && sqlite3_column_int64(st, 2) > *max_id)
			*max_id = sqlite3_column_int64(st, 2);
		d[sp_count_key(level, was_sent)]--;
		int nk = sp_count_new_key(level, was_sent,
					  sqlite3_column_type(st, 3) !=
						  SQLITE_NULL);
		if (nk >= 0)
			d[nk]--;
		if (to_sent)
			d[SP_COUNT_SENT]++;
		total++;
	}
	if (r != SQLITE_DONE)
		return sp_dberr(sp, r, what);
	if (changed)
		*changed = total;
	return sp_counts_add(sp, d);
}

int sp_counts_moved_past(sponge *sp, int64_t max_id, int max_level)
{
	/* less severe levels than the batch's keep their records */
	for (int k = 0; k <= max_level && k < 8; k++) {
		int rc = set_cursor(sp, k, max_id + 1);
		if (rc == SPONGE_OK)
			rc = set_cursor(sp, SP_COUNT_IGNORED + k, max_id + 1);
		if (rc)
			return rc;
	}
	return SPONGE_OK;
}

/* ---- the caps ------------------------------------------------------ */

static int64_t used_bytes(sponge *sp, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int r = sqlite3_prepare_v2(sp->db,
				   "SELECT (page_count - freelist_count) * "
				   "page_size FROM pragma_page_count, "
				   "pragma_freelist_count, pragma_page_size",
				   -1, &st, NULL);
	if (r == SQLITE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		r = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_OK && *rc == SPONGE_OK)
		*rc = sp_dberr(sp, r, "keeping the spool within its caps");
	return v;
}

static int count_dropped(sponge *sp, int level, int64_t k)
{
	char sql[160];
	snprintf(sql, sizeof sql,
		 "INSERT INTO meta(key, value) VALUES('dropped_%d', %lld) "
		 "ON CONFLICT(key) DO UPDATE SET value = value + %lld",
		 level, (long long)k, (long long)k);
	int r = sqlite3_exec(sp->db, sql, NULL, NULL, NULL);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "keeping the spool within its caps");
}

typedef struct cap_state {
	int64_t n[SP_COUNTS], cur[SP_COUNTS];
	int64_t prot_id;   /* never dropped (0: none) */
	bool floor_set;
} cap_state;

/* Drop kept sent records first (they were delivered): up to `want`
 * records, or records holding up to `bytes` (when > 0).  Returns how many
 * went. */
static int64_t drop_sent(sponge *sp, cap_state *cs, int64_t want,
			 int64_t bytes, int *rc)
{
	if (!cs->n[SP_COUNT_SENT] || *rc)
		return 0;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"DELETE FROM records WHERE id IN (SELECT id FROM records WHERE "
		"sent IS NOT NULL ORDER BY sent, id LIMIT ?1)"
		SP_COUNTS_RETURNING,
		-1, &st, NULL);
	if (r != SQLITE_OK) {
		*rc = sp_dberr(sp, r, "keeping the spool within its caps");
		return 0;
	}
	/* by bytes: a page's worth at a time, measured again after */
	sqlite3_bind_int64(st, 1, bytes > 0 ? 16 : want);
	int64_t gone = 0;
	*rc = sp_counts_step(sp, st, false, &gone, NULL, "keeping the spool within "
						   "its caps");
	sqlite3_finalize(st);
	cs->n[SP_COUNT_SENT] -= gone;
	return gone;
}

/* Drop the oldest pending records of `level` (skipping cs->prot_id): up
 * to `want` records, or (bytes > 0) records holding at least `bytes`.
 * Returns how many went. */
static int64_t drop_level(sponge *sp, cap_state *cs, int level, int64_t want,
			  int64_t bytes, int *rc)
{
	int k = sp_count_key(level, false);
	if (!cs->n[k] || *rc)
		return 0;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"SELECT id, length(CAST(message AS BLOB)) + length(tag) + "
		"length(host) + 24 FROM records WHERE id >= ?1 AND level = ?2 "
		"AND sent IS NULL ORDER BY id",
		-1, &st, NULL);
	if (r != SQLITE_OK) {
		*rc = sp_dberr(sp, r, "keeping the spool within its caps");
		return 0;
	}
	sqlite3_bind_int64(st, 1, cs->cur[k]);
	sqlite3_bind_int(st, 2, level);
	int64_t found = 0, held = 0, last = 0;
	bool prot_seen = false;
	while ((bytes > 0 ? held < bytes : found < want) &&
	       (r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id == cs->prot_id) {
			prot_seen = true;
			continue;
		}
		last = id;
		found++;
		held += sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		*rc = sp_dberr(sp, r, "keeping the spool within its caps");
		return 0;
	}
	if (!found) {
		/* none left below the count's word: trust the rows */
		if (!prot_seen) {
			int64_t fix[SP_COUNTS] = {0};
			fix[k] = -cs->n[k];
			*rc = sp_counts_add(sp, fix);
			cs->n[k] = 0;
		}
		return 0;
	}
	r = sqlite3_prepare_v2(sp->db,
			       "DELETE FROM records WHERE id >= ?1 AND id <= ?2 "
			       "AND level = ?3 AND sent IS NULL AND id != ?4"
			       SP_COUNTS_RETURNING,
			       -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cs->cur[k]);
		sqlite3_bind_int64(st, 2, last);
		sqlite3_bind_int(st, 3, level);
		sqlite3_bind_int64(st, 4, cs->prot_id);
	}
	int64_t gone = 0;
	*rc = r == SQLITE_OK ? sp_counts_step(sp, st, false, &gone, NULL,
					      "keeping the spool within its "
					      "caps")
			     : sp_dberr(sp, r, "keeping the spool within its "
						"caps");
	sqlite3_finalize(st);
	if (*rc)
		return 0;
	cs->n[k] -= gone; /* (the step counted them out) */
	/* the protected record, if passed, keeps the cursor at itself */
	int64_t next = prot_seen && cs->prot_id < last ? cs->prot_id : last + 1;
	cs->cur[k] = next;
	if ((*rc = set_cursor(sp, k, next)) == SPONGE_OK)
		*rc = count_dropped(sp, level & 7, gone);
	return gone;
}

/* Drop up to `want` records (or records holding `bytes`), least severe
 * and oldest first; returns how many went. */
static int64_t drop(sponge *sp, cap_state *cs, int64_t want, int64_t bytes,
		    int *rc)
{
	if (!cs->floor_set) {
		int r = sqlite3_exec(sp->db, SP_ID_FLOOR_SQL, NULL, NULL, NULL);
		if (r != SQLITE_OK) {
			*rc = sp_dberr(sp, r, "keeping the spool small");
			return 0;
		}
		cs->floor_set = true;
	}
	/* sent ones, then ignored ones, then the least severe */
	int64_t gone = drop_sent(sp, cs, want, bytes, rc);
	for (int l = 7 + SP_IGNORED;
	     l >= 0 && !*rc && (bytes > 0 ? !gone : gone < want); l--)
		gone += drop_level(sp, cs, l, want - gone, bytes, rc);
	return gone;
}

int sp_enforce_caps(sponge *sp, int64_t prot_id)
{
	cap_state cs;
	memset(&cs, 0, sizeof cs);
	cs.prot_id = prot_id;
	int rc = sp_counts_get(sp, cs.n, cs.cur);
	if (rc)
		return rc;
	if (sp->cfg.max_records) {
		int64_t total = 0;
		for (int k = 0; k < SP_COUNT_RECORDS; k++)
			total += cs.n[k];
		if (total > sp->cfg.max_records)
			drop(sp, &cs, total - sp->cfg.max_records, 0, &rc);
	}
	while (rc == SPONGE_OK && sp->cfg.max_bytes) {
		int64_t used = used_bytes(sp, &rc);
		if (rc != SPONGE_OK || used <= (int64_t)sp->cfg.max_bytes)
			break;
		if (drop(sp, &cs, 0, used - (int64_t)sp->cfg.max_bytes, &rc) ==
		    0)
			break; /* nothing left that may go */
	}
	return rc;
}

int sp_dropped(sponge *sp, int64_t out[8])
{
	memset(out, 0, 8 * sizeof out[0]);
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db,
				   "SELECT key, value FROM meta WHERE key LIKE "
				   "'dropped_%'", -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading counts");
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		if (k && k[8] >= '0' && k[8] <= '7' && !k[9])
			out[k[8] - '0'] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading counts");
}
