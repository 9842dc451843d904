/* store_rejudge.c - the pending records judged again by the rules (rules
 * apply): read a piece, let the caller judge each, store what changed
 * with the counts kept right. */
#include <string.h>

#include <sqlite3.h>

#include "store.h"

/* A record whose verdict changed. */
typedef struct change {
	int64_t id;
	int old_key;
	int old_new_key; /* its counts' key as of a new kind, or -1 */
	bool new_kind;
	sp_rejudged now;
} change;

typedef struct piece {
	change *c;
	size_t n;
	int64_t last;   /* the last id read */
	size_t read;
} piece;

static int64_t col_or(sqlite3_stmt *st, int i, int64_t otherwise)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
		       ? otherwise
		       : sqlite3_column_int64(st, i);
}

/* Does the row (stored level, rule id, original level) already say
 * what j says? */
static bool same(sponge *sp, sqlite3_stmt *st, const sp_rejudged *j)
{
	const char *name = (const char *)sqlite3_column_text(st, 9);
	const char *want = j->rule >= 0 ? sp->hits[j->rule].name : NULL;
	return !j->drop && sqlite3_column_int(st, 2) == j->stored &&
	       col_or(st, 3, -1) == j->orig_level &&
	       (name && want ? strcmp(name, want) == 0 : name == want);
}

/* Read a piece and judge it: the changes into p. */
static int judge_piece(sponge *sp, int64_t after, sp_rejudge_fn fn,
		       void *arg, piece *p)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"SELECT id, time, level, orig_level, tag, host, message, pid, "
		"rule, (SELECT name FROM rule_names WHERE rule_names.id = rule), "
		"escalated, new_kind FROM records WHERE id > ?1 AND sent IS NULL "
		"ORDER BY id LIMIT ?2",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "judging records again");
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, SP_PIECE_ROWS);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int stored = sqlite3_column_int(st, 2);
		sp_rejudge_row row = {
			{(int)col_or(st, 3, stored & 7),
			 (const char *)sqlite3_column_text(st, 4),
			 sqlite3_column_int64(st, 1),
			 (const char *)sqlite3_column_text(st, 5),
			 (const char *)sqlite3_column_text(st, 6),
			 (size_t)sqlite3_column_bytes(st, 6), 0},
			(int)col_or(st, 7, 0)};
		sp_rejudged j;
		fn(arg, &row, &j);
		p->last = sqlite3_column_int64(st, 0);
		p->read++;
		/* an escalated record keeps what its rule's count said */
		if (sqlite3_column_int(st, 10) || same(sp, st, &j))
			continue;
		bool nk = sqlite3_column_type(st, 11) != SQLITE_NULL;
		p->c[p->n++] = (change){p->last, sp_count_key(stored, false),
					sp_count_new_key(stored, false, nk),
					nk, j};
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "judging records again");
}

static int exec_id(sponge *sp, const char *sql, int64_t a, int64_t b,
		   int64_t c, int64_t d)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL);
	if (r == SQLITE_OK) {
		int64_t v[4] = {a, b, c, d};
		for (int i = 0; i < sqlite3_bind_parameter_count(st); i++)
			if (v[i] >= 0)
				sqlite3_bind_int64(st, i + 1, v[i]);
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "judging records again");
}

/* Store one change; its counts into d. */
static int store_change(sponge *sp, const change *c, int64_t *ids,
			int64_t d[SP_COUNTS])
{
	const sp_rejudged *j = &c->now;
	int rc = SPONGE_OK;
	if (j->rule >= 0 && !ids[j->rule])
		rc = sp_store_rule_id(sp, sp->hits[j->rule].name, &ids[j->rule]);
	if (rc)
		return rc;
	d[c->old_key]--;
	if (c->old_new_key >= 0)
		d[c->old_new_key]--;
	if (j->drop) { /* gone, and counted for the next message */
		rc = exec_id(sp, "DELETE FROM records WHERE id = ?1", c->id, -1,
			     -1, -1);
		return rc ? rc
			  : sp_store_rule_dropped(sp, sp->hits[j->rule].name, 1);
	}
	int k = sp_count_key(j->stored, false);
	d[k]++;
	int nk = sp_count_new_key(j->stored, false, c->new_kind);
	if (nk >= 0)
		d[nk]++;
	rc = exec_id(sp, "UPDATE records SET level = ?2, rule = ?3, "
			 "orig_level = ?4 WHERE id = ?1",
		     c->id, j->stored, j->rule >= 0 ? ids[j->rule] : -1,
		     j->orig_level);
	if (rc == SPONGE_OK) /* no record of key k before it */
		rc = exec_id(sp, "UPDATE counts SET cursor = min(cursor, ?1) "
				 "WHERE k = ?2", c->id, k, -1, -1);
	return rc;
}

int sp_store_rejudge(sponge *sp, int64_t *after, sp_rejudge_fn fn, void *arg,
		     int64_t *changed, bool *more)
{
	*more = false;
	piece p = {sp_malloc(SP_PIECE_ROWS * sizeof(change)), 0, *after, 0};
	int64_t *ids = sp->nhits ? sp_malloc(sp->nhits * sizeof *ids) : NULL;
	if (!p.c || (sp->nhits && !ids)) {
		sp_free(p.c);
		sp_free(ids);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	if (ids)
		memset(ids, 0, sp->nhits * sizeof *ids);
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "judging records again");
	if (rc == SPONGE_OK)
		rc = sp_store_exec(sp, SP_ID_FLOOR_SQL, "judging records again");
	if (rc == SPONGE_OK)
		rc = judge_piece(sp, *after, fn, arg, &p);
	int64_t d[SP_COUNTS] = {0};
	for (size_t i = 0; i < p.n && rc == SPONGE_OK; i++)
		rc = store_change(sp, &p.c[i], ids, d);
	if (rc == SPONGE_OK)
		rc = sp_counts_add(sp, d);
	rc = sp_store_end(sp, rc, "judging records again");
	if (rc == SPONGE_OK) {
		*after = p.last;
		*changed += (int64_t)p.n;
		*more = p.read == SP_PIECE_ROWS;
	}
	sp_free(p.c);
	sp_free(ids);
	return rc;
}
