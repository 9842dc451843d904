/* store_runs.c - the runs of jobs: a row per run of a command that
 * logsponge run records, begun when it starts, its range of records and
 * lines written with each write of them, ended with its last record. */
#include <string.h>

#include <sqlite3.h>

#include "store.h"

#define RUN_COLS                                                              \
	"id, job, host, pid, start, coalesce(end, 0), coalesce(status, -1), " \
	"coalesce(signal, 0), coalesce(timed_out, 0), lines, "               \
	"coalesce(first_id, 0), coalesce(last_id, 0)"

/* The lowest id a pending record (not ignored) may have. */
#define PENDING_FLOOR "(SELECT min(cursor) FROM counts WHERE k < 8)"

static void run_of(sqlite3_stmt *st, sponge_run *r)
{
	*r = (sponge_run){sqlite3_column_int64(st, 0),
			  (const char *)sqlite3_column_text(st, 1),
			  (const char *)sqlite3_column_text(st, 2),
			  sqlite3_column_int64(st, 3),
			  sqlite3_column_int64(st, 4),
			  sqlite3_column_int64(st, 5),
			  sqlite3_column_int(st, 6),
			  sqlite3_column_int(st, 7),
			  sqlite3_column_int(st, 8),
			  sqlite3_column_int64(st, 9),
			  sqlite3_column_int64(st, 10),
			  sqlite3_column_int64(st, 11),
			  0};
	if (!r->job)
		r->job = "";
	if (!r->host)
		r->host = "";
}

/* Each row of st (its parameters bound) to fn until it says stop;
 * st finalized.  With `counted`, column 12 is the job's runs. */
static int each_run(sponge *sp, sqlite3_stmt *st, bool counted,
		    sp_run_fn fn, void *arg, const char *what)
{
	int r;
	sponge_run run;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		run_of(st, &run);
		if (counted)
			run.runs = sqlite3_column_int64(st, 12);
		if (!fn(arg, &run)) {
			r = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, what);
}

static int prepare(sponge *sp, const char *sql, sqlite3_stmt **st,
		   const char *what)
{
	int r = sqlite3_prepare_v2(sp->db, sql, -1, st, NULL);
	return r == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, r, what);
}

/* Run st to its end (a write); finalized. */
static int step_done(sponge *sp, sqlite3_stmt *st, const char *what)
{
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, what);
}

int sp_store_run_begin(sponge *sp, const char *job, int64_t pid,
		       int64_t start_us, int64_t *id)
{
	sqlite3_stmt *st;
	int rc = prepare(sp, "INSERT INTO runs(job, host, pid, start) "
			     "VALUES(?, ?, ?, ?)", &st, "beginning a run");
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sp->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, pid);
	sqlite3_bind_int64(st, 4, start_us);
	rc = step_done(sp, st, "beginning a run");
	*id = rc ? 0 : sqlite3_last_insert_rowid(sp->db);
	return rc;
}

int sp_store_run_write(sponge *sp)
{
	const struct sp_run_state *r = &sp->run;
	sqlite3_stmt *st;
	int rc = prepare(sp, "UPDATE runs SET first_id = coalesce(first_id, "
			     "?2), last_id = coalesce(?3, last_id), lines = "
			     "lines + ?4 WHERE id = ?1", &st, "writing a run");
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, r->id);
	if (r->first) {
		sqlite3_bind_int64(st, 2, r->first);
		sqlite3_bind_int64(st, 3, r->last);
	}
	sqlite3_bind_int64(st, 4, r->lines);
	if ((rc = step_done(sp, st, "writing a run")) || !r->ended)
		return rc;
	if ((rc = prepare(sp, "UPDATE runs SET end = ?2, status = ?3, signal "
			      "= ?4, timed_out = ?5 WHERE id = ?1", &st,
			  "ending a run")))
		return rc;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int64(st, 2, r->end_us);
	if (r->signal)
		sqlite3_bind_null(st, 3);
	else
		sqlite3_bind_int(st, 3, r->status);
	if (r->signal)
		sqlite3_bind_int(st, 4, r->signal);
	if (r->timed_out)
		sqlite3_bind_int(st, 5, 1);
	return step_done(sp, st, "ending a run");
}

void sp_run_written(sponge *sp)
{
	if (sp->run.ended)
		sp->run = (struct sp_run_state){0};
	sp->run.first = sp->run.last = sp->run.lines = 0;
}

int sp_store_runs_in(sponge *sp, int64_t lo, int64_t hi, sp_run_fn fn,
		     void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(sp, "SELECT " RUN_COLS " FROM runs WHERE last_id >= "
			     "?1 AND first_id <= ?2 ORDER BY start, id", &st,
			 "reading runs");
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	return each_run(sp, st, false, fn, arg, "reading runs");
}

int sp_store_runs_ended_pending(sponge *sp, sp_run_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(sp, "SELECT " RUN_COLS " FROM runs WHERE last_id >= "
			     PENDING_FLOOR " AND end IS NOT NULL AND EXISTS "
			     "(SELECT 1 FROM records WHERE id = runs.last_id "
			     "AND sent IS NULL) ORDER BY last_id", &st,
			 "reading runs");
	return rc ? rc : each_run(sp, st, false, fn, arg, "reading runs");
}

int sp_store_jobs(sponge *sp, const char *job, int64_t limit, sp_run_fn fn,
		  void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(
		sp,
		job ? "SELECT " RUN_COLS ", 0 FROM runs WHERE job = ?1 ORDER "
		      "BY start DESC, id DESC LIMIT ?2"
		    : "SELECT " RUN_COLS ", (SELECT count(*) FROM runs AS o "
		      "WHERE o.job = runs.job) FROM runs WHERE id IN (SELECT "
		      "max(id) FROM runs GROUP BY job) ORDER BY job LIMIT ?2",
		&st, "reading jobs");
	if (rc)
		return rc;
	if (job)
		sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	return each_run(sp, st, job == NULL, fn, arg, "reading jobs");
}

int sp_store_run_records(sponge *sp, const sponge_run *run, sp_scan_fn fn,
			 void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(sp, "SELECT id, time, level, tag, message, host FROM "
			     "records WHERE id BETWEEN ?1 AND ?2 AND run = ?3 "
			     "ORDER BY id", &st, "reading a run");
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, run->first_id);
	sqlite3_bind_int64(st, 2, run->last_id);
	sqlite3_bind_int64(st, 3, run->id);
	int r;
	sp_scan_row row;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof row);
		row.id = sqlite3_column_int64(st, 0);
		row.time_us = sqlite3_column_int64(st, 1);
		row.level = sqlite3_column_int(st, 2) & 7;
		row.ignored = (sqlite3_column_int(st, 2) & SP_IGNORED) != 0;
		const char *t = (const char *)sqlite3_column_text(st, 3);
		const char *m = (const char *)sqlite3_column_text(st, 4);
		const char *h = (const char *)sqlite3_column_text(st, 5);
		row.tag = t ? t : "";
		row.message = m ? m : "";
		row.message_len = (size_t)sqlite3_column_bytes(st, 4);
		row.host = h ? h : "";
		if (!fn(arg, &row)) {
			r = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading a run");
}

int sp_store_runs_prune(sponge *sp, int64_t before_us)
{
	sqlite3_stmt *st;
	int rc = prepare(sp, "DELETE FROM runs WHERE start < ?1 AND "
			     "coalesce(last_id, 0) < " PENDING_FLOOR " AND id "
			     "NOT IN (SELECT max(id) FROM runs GROUP BY job)",
			 &st, "forgetting runs");
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, before_us);
	return step_done(sp, st, "forgetting runs");
}
