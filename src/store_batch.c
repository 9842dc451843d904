/* store_batch.c - the store's part of a flush: meta, history, expire,
 * the batch's scans and lookups, commit-or-keep. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "flush.h"
#include "store.h"

/* ---- small SQL helpers -------------------------------------------- */

static int64_t scalar(sponge *sp, const char *sql, int64_t arg, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int r = sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, arg);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			v = sqlite3_column_int64(st, 0);
			r = SQLITE_OK;
		} else if (r == SQLITE_DONE) {
			r = SQLITE_OK;
		}
		sqlite3_finalize(st);
	}
	if (r != SQLITE_OK && *rc == SPONGE_OK)
		*rc = sp_dberr(sp, r, "reading the batch");
	return v;
}

int sp_meta_get(sponge *sp, const char *key, spbuf *out)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT value FROM meta WHERE key=?",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sb_reset(out);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		sb_adds(out, v ? v : "");
		r = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading meta");
}

int sp_meta_set(sponge *sp, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		value ? "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)"
		      : "DELETE FROM meta WHERE key=?",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "writing meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "writing meta");
}

/* meta_set in a transaction of its own. */
int sp_meta_commit(sponge *sp, const char *key, const char *value,
		       const char *what)
{
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", what);
	if (rc)
		return rc;
	rc = sp_meta_set(sp, key, value);
	if (rc == SPONGE_OK)
		rc = sp_store_exec(sp, "COMMIT", what);
	if (rc != SPONGE_OK)
		sp_store_rollback(sp);
	return rc;
}

int64_t sp_meta_int(sponge *sp, const char *key)
{
	spbuf v;
	sb_init(&v, 0);
	int64_t t = 0;
	if (sp_meta_get(sp, key, &v) == SPONGE_OK && v.len)
		t = strtoll(v.data, NULL, 10);
	sb_free(&v);
	return t;
}

int sp_meta_int_commit(sponge *sp, const char *key, int64_t value)
{
	char s[32];
	snprintf(s, sizeof s, "%lld", (long long)value);
	return sp_meta_commit(sp, key, s, "writing meta");
}

/* A random token naming this spool in Message-IDs (made with the schema;
 * made here for spools from before that). */
int sp_store_token(sponge *sp, char tok[33])
{
	spbuf v;
	sb_init(&v, 0);
	int rc = sp_meta_get(sp, "spool_token", &v);
	if (rc == SPONGE_OK && v.len == 32) {
		memcpy(tok, v.data, 33);
		sb_free(&v);
		return SPONGE_OK;
	}
	sb_free(&v);
	if (rc != SPONGE_OK)
		return rc;
	unsigned char r[16];
	sqlite3_randomness(sizeof r, r);
	for (int i = 0; i < 16; i++)
		snprintf(tok + 2 * i, 3, "%02x", r[i]);
	return sp_meta_commit(sp, "spool_token", tok, "writing meta");
}

static int history_row(sponge *sp, const char *outcome, const char *stage,
		       const char *reply, const sp_batch *b)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"INSERT INTO history(time,outcome,stage,reply,records,first_id,"
		"last_id,message_id) VALUES(?,?,?,?,?,?,?,?)",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "writing history");
	sqlite3_bind_int64(st, 1, sponge_now());
	sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, stage ? stage : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, reply ? reply : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, b ? b->n.count + b->n.ignored : 0);
	if (b && b->n.count) {
		sqlite3_bind_int64(st, 6, b->n.first_id);
		sqlite3_bind_int64(st, 7, b->n.max_id);
	}
	sqlite3_bind_text(st, 8, b ? b->env.message_id : "", -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "writing history");
}

/* ---- expire ------------------------------------------------------- */

/* Drop pending records older than policy.expire (they never triggered a
 * send).  One transaction with a history row saying how many. */
int sp_store_expire(sponge *sp, int64_t now, int64_t *dropped)
{
	*dropped = 0;
	if (!sp->cfg.policy.expire_us)
		return SPONGE_OK;
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "expiring");
	if (rc)
		return rc;
	sqlite3_stmt *st;
	int r = sqlite3_exec(sp->db, SP_ID_FLOOR_SQL, NULL, NULL, NULL);
	if (r == SQLITE_OK)
		r = sqlite3_prepare_v2(sp->db,
				       "DELETE FROM records WHERE "
				       SP_RECEIVED_SQL " < ? AND sent IS NULL"
				       SP_COUNTS_RETURNING,
				       -1,
				       &st, NULL);
	if (r != SQLITE_OK) {
		rc = sp_dberr(sp, r, "expiring");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, sp_sub(now, sp->cfg.policy.expire_us));
	rc = sp_counts_step(sp, st, false, dropped, NULL, "expiring");
	sqlite3_finalize(st);
	if (rc)
		goto fail;
	if (*dropped) {
		char msg[96];
		snprintf(msg, sizeof msg, "%lld records older than "
					  "policy.expire dropped",
			 (long long)*dropped);
		sp_batch b;
		memset(&b, 0, sizeof b);
		b.n.count = *dropped;
		if ((rc = history_row(sp, "expired", "", msg, &b)))
			goto fail;
	}
	if ((rc = sp_store_exec(sp, "COMMIT", "expiring")))
		goto fail;
	if (*dropped)
		sp_shrink(sp);
	return SPONGE_OK;
fail:
	sp_store_rollback(sp);
	*dropped = 0;
	return rc;
}

static int forget_sent_in(sponge *sp, int64_t now)
{
	if (!sp->cfg.keep_sent_us)
		return SPONGE_OK;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db,
				   "DELETE FROM records WHERE sent IN (SELECT id "
				   "FROM history WHERE time < ?)"
				   SP_COUNTS_RETURNING, -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "forgetting sent records");
	sqlite3_bind_int64(st, 1, sp_sub(now, sp->cfg.keep_sent_us));
	int rc = sp_counts_step(sp, st, false, NULL, NULL,
				"forgetting sent records");
	sqlite3_finalize(st);
	return rc;
}

/* The next piece of the batch: its first SP_PIECE_ROWS remaining
 * records, counted by level into d; *hi is where the piece ends (the
 * batch's end when fewer remain). */
static int next_piece(sponge *sp, const sp_batch *b, bool to_sent,
		      int64_t d[SP_COUNTS], int64_t *hi)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db,
				   "SELECT id, level, new_kind FROM records WHERE "
				   "id <= ?1 AND (level & 7) <= ?2 AND sent IS "
				   "NULL ORDER BY id LIMIT ?3",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "committing the flush");
	sqlite3_bind_int64(st, 1, b->n.max_id);
	sqlite3_bind_int(st, 2, sp_batch_max_level(&b->n));
	sqlite3_bind_int(st, 3, SP_PIECE_ROWS);
	int64_t n = 0, last = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		last = sqlite3_column_int64(st, 0);
		int level = sqlite3_column_int(st, 1);
		d[sp_count_key(level, false)]--;
		int nk = sp_count_new_key(level, false,
					  sqlite3_column_type(st, 2) !=
						  SQLITE_NULL);
		if (nk >= 0)
			d[nk]--;
		n++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return sp_dberr(sp, r, "committing the flush");
	if (to_sent)
		d[SP_COUNT_SENT] += n;
	*hi = n < SP_PIECE_ROWS ? b->n.max_id : last;
	return SPONGE_OK;
}

/* True when nothing but the batch is in the table and it is not too
 * large: an unqualified DELETE (SQLite's truncate optimisation) then
 * frees the pages without visiting every row, at about 0.3 µs a record
 * (within the piece's time up to four pieces' worth). */
static bool batch_is_all(sponge *sp, const sp_batch *b, int *rc)
{
	return !sp->cfg.keep_sent_us && sp_batch_max_level(&b->n) == 7 &&
	       b->n.count > 0 && b->n.count <= 4 * SP_PIECE_ROWS &&
	       scalar(sp, "SELECT count(*) FROM records WHERE id > ?",
		      b->n.max_id, rc) == 0 &&
	       scalar(sp, "SELECT EXISTS (SELECT 1 FROM records WHERE "
			  "sent IS NOT NULL AND sent > ?)", 0, rc) == 0;
}

/* Inside a write transaction: remove a piece of the batch (or, with
 * keep_sent, mark it as carried by history row `hist`) and keep the
 * counts; *more: some of the batch remains for the next piece. */
static int remove_piece(sponge *sp, const sp_batch *b, int64_t hist,
			bool *more)
{
	bool keep = sp->cfg.keep_sent_us != 0;
	int rc = SPONGE_OK;
	*more = false;
	if (batch_is_all(sp, b, &rc))
		return sp_store_exec(sp, "DELETE FROM records; UPDATE counts "
				     "SET n = 0", "committing the flush");
	int64_t d[SP_COUNTS] = {0}, hi = 0;
	if (rc || (rc = next_piece(sp, b, keep, d, &hi)))
		return rc;
	sqlite3_stmt *st = NULL;
	int r = sqlite3_prepare_v2(
		sp->db,
		keep ? "UPDATE records SET sent = ?2 WHERE id <= ?1 AND "
		       "(level & 7) <= ?3 AND sent IS NULL"
		     : "DELETE FROM records WHERE id <= ?1 AND (level & 7) <= "
		       "?3 AND sent IS NULL",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "committing the flush");
	sqlite3_bind_int64(st, 1, hi);
	sqlite3_bind_int64(st, 2, hist); /* ?2 unused by the DELETE */
	sqlite3_bind_int(st, 3, sp_batch_max_level(&b->n));
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return sp_dberr(sp, r, "committing the flush");
	*more = hi < b->n.max_id;
	return sp_counts_add(sp, d);
}

/* The drops this message reported are reported: take them off. */
static int unreport_drops(sponge *sp, const sp_batch *b)
{
	int rc = SPONGE_OK;
	for (int l = 0; l < 8 && rc == SPONGE_OK; l++) {
		if (!b->n.dropped[l])
			continue;
		char sql[128];
		snprintf(sql, sizeof sql,
			 "UPDATE meta SET value = value - %lld WHERE key = "
			 "'dropped_%d'", (long long)b->n.dropped[l], l);
		rc = sp_store_exec(sp, sql, "committing the flush");
	}
	for (int i = 0; i < b->n.nrule_drops && rc == SPONGE_OK; i++)
		rc = sp_store_unreport_rule_drops(sp, b->n.rule_drops[i].name,
						  b->n.rule_drops[i].n);
	return rc;
}

/* The history row of this batch when it is already there as sent (a
 * commit that had gone through, whole or in part, finished from the
 * journal); else 0. */
static int64_t committed_row(sponge *sp, const sp_batch *b)
{
	sqlite3_stmt *st = NULL;
	int64_t row = 0;
	if (sqlite3_prepare_v2(sp->db, "SELECT id FROM history WHERE outcome "
				       "= 'sent' AND message_id = ? AND "
				       "last_id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, b->env.message_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, b->n.max_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			row = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return row;
}

/* The first transaction: the history row, the first piece of the batch,
 * the drops it reported, the counts' cursors, the in-flight marker. */
static int commit_first(sponge *sp, const sp_batch *b, const char *reply,
			int64_t *hist, bool *more)
{
	int rc;
	if ((rc = sp_store_exec(sp, SP_ID_FLOOR_SQL, "committing the flush")) ||
	    (rc = history_row(sp, "sent", "", reply, b)))
		return rc;
	*hist = sqlite3_last_insert_rowid(sp->db);
	if ((rc = remove_piece(sp, b, *hist, more)) == SPONGE_OK &&
	    (rc = unreport_drops(sp, b)) == SPONGE_OK &&
	    (rc = sp_store_forget_hits(sp, sponge_now())) == SPONGE_OK &&
	    (rc = sp_store_kinds_commit(sp, b->kinds, b->nkinds,
					sponge_now(), true)) == SPONGE_OK &&
	    (rc = forget_sent_in(sp, sponge_now())) == SPONGE_OK &&
	    (rc = sp_store_runs_prune(sp, sponge_now() - SP_RUNS_KEPT_US)) ==
		    SPONGE_OK &&
	    (rc = sp_counts_moved_past(sp, b->n.max_id,
				       sp_batch_max_level(&b->n))) == SPONGE_OK)
		rc = sp_meta_set(sp, "inflight", NULL);
	return rc;
}

/* After the server's final 250: history says sent and the batch is
 * removed (or, with keep_sent, marked), a piece per transaction so that
 * no writer waits long.  Until the last piece commits, the journal's
 * note stays, and a later flush finishes the rest from it. */
int sp_store_commit_sent(sponge *sp, const sp_batch *b, const char *reply)
{
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "committing the flush");
	if (rc)
		return rc;
	int64_t hist = committed_row(sp, b);
	bool more = hist != 0;
	if (!hist)
		rc = commit_first(sp, b, reply, &hist, &more);
	sp_crash_point("during-commit");
	rc = sp_store_end(sp, rc, "committing the flush");
	while (rc == SPONGE_OK && more) {
		sp_crash_point("between-pieces");
		if ((rc = sp_store_exec(sp, "BEGIN IMMEDIATE",
					"committing the flush")) == SPONGE_OK)
			rc = sp_store_end(sp, remove_piece(sp, b, hist, &more),
					  "committing the flush");
	}
	return rc;
}

int sp_store_record_failure(sponge *sp, const sp_batch *b, const char *outcome,
			    const sp_send_result *r)
{
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "writing history");
	if (rc)
		return rc;
	rc = history_row(sp, outcome, r->stage, r->reply.data,
			 b);
	/* A definite refusal means the server does not have the message:
	 * the next flush may build a new batch.  When the data went out and
	 * no answer came, keep the batch so a resend has the same
	 * Message-ID. */
	if (rc == SPONGE_OK && !r->maybe_delivered)
		rc = sp_meta_set(sp, "inflight", NULL);
	if (rc == SPONGE_OK)
		rc = sp_store_exec(sp, "COMMIT", "writing history");
	if (rc != SPONGE_OK)
		sp_store_rollback(sp);
	return rc;
}

/* Pin the batch: "<max id> <Message-ID>", so that a resend is the same
 * batch with the same Message-ID, whatever was purged in between. */

/* ---- lookups for the plan and the policy ------------------------------ */

/* A record's rule, by name */
#define RULE_NAME_SQL "(SELECT name FROM rule_names WHERE rule_names.id = rule)"

int sp_store_scan_batch(sponge *sp, int64_t max_id, int max_level,
			bool messages, sp_scan_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db,
				   messages
					   ? "SELECT id, time, level, tag, message, "
					     SP_RECEIVED_SQL ", host, " RULE_NAME_SQL ", "
					     "escalated FROM records WHERE id <= ?1 "
					     "AND (level & 7) <= ?2 AND sent IS NULL "
					     "ORDER BY id"
					   : "SELECT id, time, level, tag, "
					     "length(CAST(message AS BLOB)), "
					     SP_RECEIVED_SQL ", host, " RULE_NAME_SQL ", "
					     "escalated FROM records WHERE id <= ?1 "
					     "AND (level & 7) <= ?2 AND sent IS NULL "
					     "ORDER BY id",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading the batch");
	sqlite3_bind_int64(st, 1, max_id);
	sqlite3_bind_int(st, 2, max_level);
	sp_scan_row row;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		row.id = sqlite3_column_int64(st, 0);
		row.time_us = sqlite3_column_int64(st, 1);
		row.level = sqlite3_column_int(st, 2) & 7;
		row.ignored = (sqlite3_column_int(st, 2) & SP_IGNORED) != 0;
		row.rule = (const char *)sqlite3_column_text(st, 7);
		row.escalated = sqlite3_column_int(st, 8) != 0;
		row.tag = (const char *)sqlite3_column_text(st, 3);
		if (!row.tag)
			row.tag = "";
		row.message = NULL;
		row.message_len = 0;
		if (messages) {
			row.message = (const char *)sqlite3_column_text(st, 4);
			row.message_len = (size_t)sqlite3_column_bytes(st, 4);
			if (!row.message)
				row.message = "";
			row.bytes = (int64_t)row.message_len;
		} else {
			row.bytes = sqlite3_column_int64(st, 4);
		}
		row.bytes += sqlite3_column_bytes(st, 3);
		row.received_us = sqlite3_column_int64(st, 5);
		row.host = (const char *)sqlite3_column_text(st, 6);
		if (!row.host)
			row.host = "";
		if (!fn(arg, &row)) {
			r = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "reading the batch");
}

int sp_store_record(sponge *sp, int64_t id, int64_t *time_us, spbuf *tag,
		    spbuf *message)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT time, tag, message FROM "
					   "records WHERE id = ?",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading a record");
	sqlite3_bind_int64(st, 1, id);
	sb_reset(tag);
	sb_reset(message);
	*time_us = 0;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*time_us = sqlite3_column_int64(st, 0);
		const char *t = (const char *)sqlite3_column_text(st, 1);
		const char *m = (const char *)sqlite3_column_text(st, 2);
		sb_adds(tag, t ? t : "");
		sb_add(message, m ? m : "", (size_t)sqlite3_column_bytes(st, 2));
		r = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return sp_dberr(sp, r, "reading a record");
	return tag->failed || message->failed
		       ? sp_fail(sp, SPONGE_ENOMEM, "out of memory")
		       : SPONGE_OK;
}

int sp_store_last_sent(sponge *sp, int64_t *t)
{
	int rc = SPONGE_OK;
	*t = scalar(sp, "SELECT coalesce(max(time), 0) FROM history WHERE "
			"outcome = 'sent' AND time > ?", 0, &rc);
	return rc;
}

int sp_store_forget_sent(sponge *sp, int64_t now)
{
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "forgetting sent records");
	if (rc)
		return rc;
	rc = forget_sent_in(sp, now);
	if (rc == SPONGE_OK)
		rc = sp_store_exec(sp, "COMMIT", "forgetting sent records");
	if (rc)
		sp_store_rollback(sp);
	return rc;
}
