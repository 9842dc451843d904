/* store_rules.c - what the noise rules did: each rule's matches per hour
 * (rule_hits, for rules stats) and the records rules dropped that no
 * message has reported yet (rule_dropped). */
#include <string.h>

#include <sqlite3.h>

#include "store.h"

/* rule_hits older than this are forgotten (rules stats looks 30 days
 * back). */
#define HITS_KEPT_US (31LL * 86400 * 1000000)

static int upsert(sponge *sp, const char *sql, const sp_rule_hit *h,
		  int64_t hour)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, h->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, h->n);
		sqlite3_bind_int64(st, 3, hour);
		sqlite3_bind_int(st, 4, h->verdict);
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "counting rule matches");
}

int sp_store_hits(sponge *sp, int64_t now)
{
	int64_t hour = now / 3600000000LL;
	int rc = SPONGE_OK;
	for (size_t i = 0; i < sp->nhits && rc == SPONGE_OK; i++) {
		const sp_rule_hit *h = &sp->hits[i];
		if (!h->n)
			continue;
		rc = upsert(sp, "INSERT INTO rule_hits(rule, n, hour, verdict) "
				"VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE "
				"SET n = n + excluded.n", h, hour);
		if (rc == SPONGE_OK && h->verdict == SPONGE_RULE_DROP)
			rc = sp_store_rule_dropped(sp, h->name, h->n);
	}
	return rc;
}

int sp_store_rule_dropped(sponge *sp, const char *rule, int64_t n)
{
	sp_rule_hit h = {rule, SPONGE_RULE_DROP, n, 0, 0, 0, 0, 0};
	return upsert(sp, "INSERT INTO rule_dropped(rule, n) VALUES(?1, ?2) "
			  "ON CONFLICT DO UPDATE SET n = n + excluded.n",
		      &h, 0);
}

int sp_store_rule_drops(sponge *sp,
			void (*each)(void *, const char *, int64_t), void *arg)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT rule, n FROM rule_dropped "
					   "WHERE n > 0 ORDER BY n DESC, rule",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading rule drops");
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		each(arg, (const char *)sqlite3_column_text(st, 0),
		     sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "reading rule drops");
}

int sp_store_forget_hits(sponge *sp, int64_t now)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "DELETE FROM rule_hits WHERE hour < ?",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (now - HITS_KEPT_US) / 3600000000LL);
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "forgetting rule matches");
}

int sp_store_unreport_rule_drops(sponge *sp, const char *rule, int64_t n)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "UPDATE rule_dropped SET n = "
					   "max(0, n - ?2) WHERE rule = ?1",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, n);
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "committing the flush");
}

int sp_store_rule_window(sponge *sp, const char *rule, int64_t from_us,
			 int64_t *n)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT total(n) FROM rule_hits "
					   "WHERE rule = ?1 AND hour >= ?2",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, from_us / 3600000000LL);
		if ((r = sqlite3_step(st)) == SQLITE_ROW) {
			*n = (int64_t)sqlite3_column_double(st, 0);
			r = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "counting rule matches");
}

int sp_store_rule_id(sponge *sp, const char *name, int64_t *id)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "INSERT INTO rule_names(name) "
					   "VALUES(?1) ON CONFLICT(name) DO "
					   "UPDATE SET name = name RETURNING id",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			*id = sqlite3_column_int64(st, 0);
			r = sqlite3_step(st);
		}
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "naming a rule");
}

int sponge_rule_stats(sponge *sp, int64_t now_us,
		      void (*each)(void *arg, const sponge_rule_stat *s),
		      void *arg)
{
	SP_GUARD;
	if (!sp_usable(sp) || !each)
		return SPONGE_EINVAL;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"SELECT rule, verdict, total(n) FILTER (WHERE hour >= ?1), "
		"total(n) FILTER (WHERE hour >= ?2), total(n), max(hour) FROM "
		"rule_hits WHERE hour >= ?3 GROUP BY rule, verdict ORDER BY 5 "
		"DESC, rule",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading rule matches");
	int64_t hour = now_us / 3600000000LL;
	sqlite3_bind_int64(st, 1, hour - 23);
	sqlite3_bind_int64(st, 2, hour - 7 * 24 + 1);
	sqlite3_bind_int64(st, 3, hour - 30 * 24 + 1);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		sponge_rule_stat s = {
			(const char *)sqlite3_column_text(st, 0),
			sqlite3_column_int(st, 1),
			(int64_t)sqlite3_column_double(st, 2),
			(int64_t)sqlite3_column_double(st, 3),
			(int64_t)sqlite3_column_double(st, 4),
			sqlite3_column_int64(st, 5) * 3600000000LL};
		if (s.rule)
			each(arg, &s);
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "reading rule matches");
}
