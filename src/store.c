/* store.c - the store: the spool file's schema and migrations, opening
 * and closing it, writing queued records.  The store (store*.c) holds
 * every SQL statement of the library; nothing else calls sqlite3_*. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

/* "LSPO" in the SQLite header marks a logsponge spool. */
#define SPOOL_APP_ID 0x4C53504F

/* Schema steps: migrations[v] takes a spool from user_version v to v+1.
 * Append only; a new spool runs them all. */
static const char *const migrations[] = {
	/* 0 -> 1: the records */
	"CREATE TABLE records("
	" id INTEGER PRIMARY KEY," /* assigned by write_queue, never reused */
	" time INTEGER NOT NULL,"  /* microseconds since the epoch, UTC */
	" level INTEGER NOT NULL," /* 0 emerg … 7 debug */
	" tag TEXT NOT NULL,"
	" host TEXT NOT NULL,"
	" message TEXT NOT NULL);",
	/* 1 -> 2: flush attempts */
	"CREATE TABLE history("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" time INTEGER NOT NULL,"
	" outcome TEXT NOT NULL,"  /* sent, temporary, permanent, auth, … */
	" stage TEXT NOT NULL DEFAULT '',"
	" reply TEXT NOT NULL DEFAULT '',"
	" records INTEGER NOT NULL DEFAULT 0,"
	" first_id INTEGER, last_id INTEGER,"
	" message_id TEXT NOT NULL DEFAULT '');"
	/* id_floor: the highest record id ever handed out before a delete,
	 * so that ids are never reused (a Message-ID is made from them) */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	/* names this spool in Message-IDs */
	"INSERT INTO meta VALUES('spool_token', lower(hex(randomblob(16))));",
	/* 2 -> 3: [spool] keep_sent keeps sent records: the history row of
	 * the message that carried them (NULL while pending) */
	"ALTER TABLE records ADD COLUMN sent INTEGER;"
	/* only sent rows are in it: ingest never touches it */
	"CREATE INDEX records_sent ON records(sent) WHERE sent IS NOT NULL;",
	/* 3 -> 4: when the spool received the record, where that is not
	 * within a minute of the time the record states (a replayed or
	 * mis-stamped log); NULL: the stated time.  The policy (max_age,
	 * expire) and purge go by it, so a record stamped 1970 or 2999 is
	 * treated by when it came. */
	"ALTER TABLE records ADD COLUMN received INTEGER;",
	/* 4 -> 5: records per level as they come and go (k 8: sent records
	 * kept), so that the caps, status and the flush decision cost the
	 * same at any spool size; cursor: no pending record of level k has a
	 * smaller id */
	"CREATE TABLE counts(k INTEGER PRIMARY KEY, n INTEGER NOT NULL "
	"DEFAULT 0, cursor INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO counts(k, n) SELECT CASE WHEN sent IS NULL THEN level "
	"ELSE 8 END, count(*) FROM records GROUP BY 1;"
	"INSERT OR IGNORE INTO counts(k) VALUES(0),(1),(2),(3),(4),(5),(6),"
	"(7),(8);",
	/* 5 -> 6: the noise rules.  A record a rule judged names it (rule);
	 * one it re-levelled keeps its level before (orig_level); an ignored
	 * one is stored at level + 8 and counted apart (counts 9..16); the
	 * pid its syslog line named is kept for rules that read it. */
	"ALTER TABLE records ADD COLUMN rule INTEGER;" /* rule_names.id */
	"ALTER TABLE records ADD COLUMN orig_level INTEGER;"
	"ALTER TABLE records ADD COLUMN pid INTEGER;"
	/* 1: its rule's unless= threshold was passed, so it counts */
	"ALTER TABLE records ADD COLUMN escalated INTEGER;"
	"INSERT OR IGNORE INTO counts(k) VALUES(9),(10),(11),(12),(13),(14),"
	"(15),(16);"
	/* a rule's name once, however many records it judged */
	"CREATE TABLE rule_names(id INTEGER PRIMARY KEY, name TEXT NOT NULL "
	"UNIQUE);"
	/* each rule's matches per hour (rules stats) */
	"CREATE TABLE rule_hits(rule TEXT NOT NULL, hour INTEGER NOT NULL,"
	" verdict INTEGER NOT NULL, n INTEGER NOT NULL,"
	" PRIMARY KEY(rule, hour, verdict)) WITHOUT ROWID;"
	/* records each rule dropped that no message has reported yet */
	"CREATE TABLE rule_dropped(rule TEXT PRIMARY KEY, n INTEGER NOT NULL)"
	" WITHOUT ROWID;",
	/* 6 -> 7: the kinds of record delivered messages carried, so that
	 * a message can say which are new.  fp: tag and masked first line
	 * (mask: the masking's version); level: the most severe seen; seen:
	 * records, sent: messages; state 0 active, 2 resolved (at
	 * resolved), 3 muted */
	"CREATE TABLE kinds(id INTEGER PRIMARY KEY, fp INTEGER NOT NULL "
	"UNIQUE, tag TEXT NOT NULL, sample TEXT NOT NULL, level INTEGER NOT "
	"NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, "
	"last_sent INTEGER NOT NULL, seen INTEGER NOT NULL, sent INTEGER NOT "
	"NULL, state INTEGER NOT NULL DEFAULT 0, resolved INTEGER, mask "
	"INTEGER NOT NULL);"
	"CREATE INDEX kinds_last_seen ON kinds(last_seen);"
	"CREATE INDEX kinds_mask ON kinds(mask);"
	/* a pending record of a kind no delivered message carried, at or
	 * above policy.flush_on_new when it came (1; NULL otherwise): the
	 * few the decision counts (by a partial index until v8) */
	"ALTER TABLE records ADD COLUMN new_kind INTEGER;"
	"CREATE INDEX records_new_kind ON records(level) WHERE new_kind IS NOT "
	"NULL AND sent IS NULL;"
	/* when the spool began remembering kinds (policy.learn) */
	"INSERT OR IGNORE INTO meta VALUES('kinds_since', "
	"CAST(strftime('%s', 'now') AS INTEGER) * 1000000);",
	/* 7 -> 8: the pending records of new kinds are counted like the
	 * others (counts 17..24, by level) instead of by a partial index,
	 * which cost ingest a tenth */
	"DROP INDEX records_new_kind;"
	"INSERT OR IGNORE INTO counts(k) VALUES(17),(18),(19),(20),(21),(22),"
	"(23),(24);"
	"UPDATE counts SET n = (SELECT count(*) FROM records WHERE new_kind IS "
	"NOT NULL AND sent IS NULL AND level = counts.k - 17) WHERE k >= 17;",
	/* 8 -> 9: where each source was read to (its file's identity, the
	 * offset, hashes of the head and of the bytes before the offset),
	 * written in the transaction of the records it covers */
	"CREATE TABLE positions(name TEXT PRIMARY KEY, dev INTEGER NOT NULL, "
	"ino INTEGER NOT NULL, offset INTEGER NOT NULL, head INTEGER NOT NULL, "
	"before INTEGER NOT NULL, time INTEGER NOT NULL, cursor TEXT) "
	"WITHOUT ROWID;",
	/* 9 -> 10: the runs of jobs (logsponge run): one row each, begun
	 * when the command starts and updated with each write of its
	 * records (first_id, last_id: the range they lie in; lines: its
	 * output's), ended in the transaction of its last record (end, and
	 * status, or signal, or timed_out); records.run names it */
	"CREATE TABLE runs(id INTEGER PRIMARY KEY, job TEXT NOT NULL, "
	"host TEXT NOT NULL, pid INTEGER NOT NULL, start INTEGER NOT NULL, "
	"end INTEGER, status INTEGER, signal INTEGER, timed_out INTEGER, "
	"first_id INTEGER, last_id INTEGER, lines INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX runs_job ON runs(job, start);"
	"CREATE INDEX runs_last ON runs(last_id);"
	"ALTER TABLE records ADD COLUMN run INTEGER;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- schema ------------------------------------------------------- */

int sp_store_exec(sponge *sp, const char *sql, const char *what)
{
	int rc = sqlite3_exec(sp->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, rc, what);
}

int sp_store_int(sponge *sp, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sp_dberr(sp, rc, "reading the spool header");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*v = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? SPONGE_OK
			       : sp_dberr(sp, rc, "reading the spool header");
}

/* Create or migrate forward, inside one write transaction. */
static int prepare_schema(sponge *sp)
{
	int64_t app = 0, ver = 0, tables = 0;
	int rc = sp_store_int(sp, "PRAGMA application_id", &app);
	if (rc == SPONGE_OK)
		rc = sp_store_int(sp, "PRAGMA user_version", &ver);
	if (rc != SPONGE_OK)
		return rc;
	if (app == SPOOL_APP_ID && ver == SCHEMA_VERSION)
		return SPONGE_OK; /* the common case: no write lock needed */

	if ((rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "locking the spool")))
		return rc;
	/* Read again under the lock: another process may have done it. */
	if ((rc = sp_store_int(sp, "PRAGMA application_id", &app)) ||
	    (rc = sp_store_int(sp, "PRAGMA user_version", &ver)) ||
	    (rc = sp_store_int(sp, "SELECT count(*) FROM sqlite_master",
			     &tables)))
		goto fail;
	if (app != SPOOL_APP_ID) {
		if (app != 0 || tables != 0) {
			rc = sp_fail(sp, SPONGE_ENOTSPOOL,
				     "%s: file is not a logsponge spool (an "
				     "SQLite database of something else)",
				     sp->path);
			goto fail;
		}
		ver = 0;
	}
	if (ver > SCHEMA_VERSION) {
		rc = sp_fail(sp, SPONGE_EVERSION,
			     "%s: spool schema version %lld is newer than this "
			     "logsponge understands (%d)",
			     sp->path, (long long)ver, SCHEMA_VERSION);
		goto fail;
	}
	for (int64_t v = ver; v < SCHEMA_VERSION; v++)
		if ((rc = sp_store_exec(sp, migrations[v], "migrating the schema")))
			goto fail;
	char sql[96];
	snprintf(sql, sizeof sql,
		 "PRAGMA application_id=%d; PRAGMA user_version=%d;",
		 SPOOL_APP_ID, SCHEMA_VERSION);
	if ((rc = sp_store_exec(sp, sql, "migrating the schema")) ||
	    (rc = sp_store_exec(sp, "COMMIT", "migrating the schema")))
		goto fail;
	return SPONGE_OK;
fail:
	sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* WAL mode and the schema.  While other processes create or convert the
 * same new file at the same moment, these can answer SQLITE_BUSY without
 * waiting in the busy handler: the caller retries. */
static int wal_and_schema(sponge *sp)
{
	/* journal_mode=WAL is the first statement that reads the file: a
	 * file that is not SQLite fails here. */
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(sp->db, "PRAGMA journal_mode=WAL", -1, &st,
				    NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *m = (const char *)sqlite3_column_text(st, 0);
			rc = m && strcmp(m, "wal") == 0 ? SQLITE_OK : SQLITE_IOERR;
		}
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK)
		return sp_dberr(sp, rc, "cannot open");
	/* a large delete leaves a large WAL behind: a handle that stays
	 * open cuts it back to 64 MiB after a checkpoint (a lower limit
	 * would truncate the ~4 MiB WAL of every auto-checkpoint: slower
	 * ingest); the last handle to close removes it */
	int code = sp_store_exec(sp, "PRAGMA synchronous=NORMAL; "
			    "PRAGMA journal_size_limit=67108864", "cannot open");
	if (code == SPONGE_OK)
		code = prepare_schema(sp);
	return code;
}

/* Waiting for another writer: SQLite's own handler sleeps longer the
 * longer it waits (up to 100 ms a try), so a writer that arrives while
 * others write back to back polls ten times a second and finds the lock
 * free only by luck (a forked child's first record waited 2 s behind
 * four busy threads).  Short sleeps of 1-4 ms keep its chances even;
 * the whole wait is bounded by spool.busy_timeout. */
static int busy_wait(void *arg, int count)
{
	sponge *sp = arg;
	int64_t now = sponge_now();
	if (count == 0)
		sp->busy_since = now;
	if (now - sp->busy_since >= sp->cfg.busy_timeout_us)
		return 0;
	usleep(1000u + (unsigned)(count & 3) * 1000u);
	return 1;
}

int sp_store_open(sponge *sp)
{
	int rc = sqlite3_open_v2(sp->path, &sp->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
					 SQLITE_OPEN_NOFOLLOW,
				 NULL);
	if (rc != SQLITE_OK)
		return sp_dberr(sp, rc, "cannot open");
	sqlite3_extended_result_codes(sp->db, 1);
	sqlite3_busy_handler(sp->db, busy_wait, sp);

	int code;
	int64_t deadline = sponge_now() + sp->cfg.busy_timeout_us;
	for (unsigned attempt = 1;; attempt++) {
		code = wal_and_schema(sp);
		if (code != SPONGE_EBUSY || sponge_now() > deadline)
			break;
		usleep(500 * (attempt < 20 ? attempt : 20));
	}
	if (code != SPONGE_OK)
		return code;
	/* One statement for a single row and one for SP_MULTI_ROWS rows at a
	 * time: per-statement overhead is a large part of ingest cost.  Each
	 * in four shapes: the six columns, all the extra ones (received,
	 * rule, orig_level, pid, escalated, run: rarely needed without rules; a
	 * column more in every row costs ingest about a tenth), new_kind
	 * alone (the warnings of a spool that knows few kinds yet), and run
	 * with new_kind (a job's output: the full shape cost it a quarter). */
	static const char *const cols[SP_INSERT_SHAPES] = {
		"", ",received,rule,orig_level,pid,escalated,new_kind,run",
		",new_kind", ",new_kind,run"};
	static const char *const row[SP_INSERT_SHAPES] = {
		"(?,?,?,?,?,?)", "(?,?,?,?,?,?,?,?,?,?,?,?,?)", "(?,?,?,?,?,?,?)",
		"(?,?,?,?,?,?,?,?)"};
	for (int r = 0; r < SP_INSERT_SHAPES && rc == SQLITE_OK; r++) {
		spbuf sql;
		sb_init(&sql, 0);
		sb_printf(&sql, "INSERT INTO records(id,time,level,tag,host,"
				"message%s) VALUES%s", cols[r], row[r]);
		rc = sqlite3_prepare_v3(sp->db, sql.data, -1,
					SQLITE_PREPARE_PERSISTENT, &sp->ins[r],
					NULL);
		for (int i = 1; i < SP_MULTI_ROWS; i++)
			sb_printf(&sql, ",%s", row[r]);
		if (rc == SQLITE_OK)
			rc = sql.failed ? SQLITE_NOMEM
					: sqlite3_prepare_v3(
						  sp->db, sql.data, -1,
						  SQLITE_PREPARE_PERSISTENT,
						  &sp->ins_multi[r], NULL);
		sb_free(&sql);
	}
	return rc == SQLITE_OK ? SPONGE_OK
			       : sp_dberr(sp, rc, "preparing statements");
}

int sp_shrink(sponge *sp)
{
	int64_t freel = 0, pages = 0;
	if (sp_store_int(sp, "PRAGMA freelist_count", &freel) ||
	    sp_store_int(sp, "PRAGMA page_count", &pages))
		return SPONGE_OK; /* not worth an error: nothing was lost */
	/* Half or more free: rewrite the file (a VACUUM copies the live
	 * half at most, so its cost is bounded by what was just freed).
	 * auto_vacuum would do it in steps but costs every insert (its
	 * pointer map: about 3% of ingest). */
	if (freel >= 256 && freel * 2 >= pages)
		sqlite3_exec(sp->db, "VACUUM", NULL, NULL, NULL);
	return SPONGE_OK;
}

/* ---- writing ------------------------------------------------------ */

static void bind_or_null(sqlite3_stmt *st, int k, bool has, int64_t v)
{
	if (has)
		sqlite3_bind_int64(st, k, v);
	else
		sqlite3_bind_null(st, k);
}

/* received, rule, orig_level, pid, escalated, new_kind, run from parameter
 * k on; the rule's id in
 * rule_names is looked up (or made) once per write, in ids[] */
static int bind_extras(sponge *sp, sqlite3_stmt *st, int k,
		       const sp_queued *q, int64_t *ids)
{
	bind_or_null(st, k, q->received_us != 0, q->received_us);
	bool rule = q->rule >= 0 && (size_t)q->rule < sp->nhits && ids;
	if (rule && !ids[q->rule]) {
		int rc = sp_store_rule_id(sp, sp->hits[q->rule].name,
					  &ids[q->rule]);
		if (rc)
			return rc;
	}
	bind_or_null(st, k + 1, rule, rule ? ids[q->rule] : 0);
	bind_or_null(st, k + 2, q->orig_level >= 0, q->orig_level);
	bind_or_null(st, k + 3, q->pid != 0, q->pid);
	bind_or_null(st, k + 4, q->escalated, 1);
	bind_or_null(st, k + 5, q->new_kind, 1);
	bind_or_null(st, k + 6, q->run != 0, q->run);
	return SPONGE_OK;
}

/* The statement shape rows q[0..n) need: 0 the six columns, 1 all,
 * 2 the six and new_kind, 3 the six, new_kind and run. */
static int shape(const sp_queued *q, int n)
{
	bool new_kind = false, run = false;
	for (int i = 0; i < n; i++) {
		if (q[i].received_us != 0 || q[i].rule >= 0 || q[i].pid)
			return 1;
		new_kind |= q[i].new_kind;
		run |= q[i].run != 0;
	}
	return run ? 3 : new_kind ? 2 : 0;
}

/* Insert n queued records (1 or SP_MULTI_ROWS); the first gets id `id` when
 * id > 0, the others the next ids. */
static int insert_rows(sponge *sp, int n, int64_t id, const sp_queued *q,
		       int64_t *ids)
{
	static const int stride[SP_INSERT_SHAPES] = {6, 13, 7, 8};
	const char *d = sp->qdata.data;
	int rcv = shape(q, n);
	sqlite3_stmt *st = n == 1 ? sp->ins[rcv] : sp->ins_multi[rcv];
	for (int i = 0, k = 1; i < n; i++, q++, k += stride[rcv]) {
		/* Only the first id of a batch is given (it may have to skip
		 * over deleted ids); SQLite gives the rest max(id)+1 without
		 * the uniqueness lookup an explicit id costs. */
		if (id > 0 && i == 0)
			sqlite3_bind_int64(st, k, id);
		else
			sqlite3_bind_null(st, k);
		sqlite3_bind_int64(st, k + 1, q->time_us);
		sqlite3_bind_int(st, k + 2, q->level);
		sqlite3_bind_text(st, k + 3, d + q->tag_off, (int)q->tag_len,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, k + 4, d + q->host_off, (int)q->host_len,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, k + 5, d + q->msg_off, (int)q->msg_len,
				  SQLITE_STATIC);
		int rc = SPONGE_OK;
		if (rcv == 1)
			rc = bind_extras(sp, st, k + 6, q, ids);
		if (rcv >= 2)
			bind_or_null(st, k + 6, q->new_kind, 1);
		if (rcv == 3)
			bind_or_null(st, k + 7, q->run != 0, q->run);
		if (rc) {
			sqlite3_reset(st);
			return rc;
		}
	}
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SPONGE_OK
				 : sp_dberr(sp, rc, "writing a record");
}

/* The next record id: above every id present and every id deleted. */
#define NEXT_ID_SQL                                                           \
	"SELECT max(coalesce((SELECT max(id) FROM records), 0),"              \
	" coalesce((SELECT value FROM meta WHERE key = 'id_floor'), 0)) + 1"

/* What goes with a write's records, in its transaction: the rules'
 * hits, a source's position. */
static int write_extras(sponge *sp)
{
	int rc = SPONGE_OK;
	if (sp->hits_pending)
		rc = sp_store_hits(sp, sponge_now());
	if (rc == SPONGE_OK && sp->run.id)
		rc = sp_store_run_write(sp);
	if (rc == SPONGE_OK && sp->pos_name) {
		sp_crash_point("before-position"); /* the records written */
		rc = sp_store_position(sp, sp->pos_name, &sp->pos);
		if (rc == SPONGE_OK)
			sp_crash_point("after-position"); /* not committed */
	}
	return rc;
}

/* The queue's records by counts key into add[]; the run's range of
 * them; for the caps the one record they must keep (*prot): the newest
 * of the batch's most severe level, returned (ids follow the queue from
 * next: one writer, SQLite's max(id)+1 after the first). */
static int queue_counts(sponge *sp, int64_t next, int64_t add[SP_COUNTS],
			int64_t *prot)
{
	int top = 8;
	for (size_t i = 0; i < sp->qn; i++) {
		int l = sp->q[i].level;
		int64_t id = next + (int64_t)i;
		add[sp_count_key(l, false)]++;
		if (sp->q[i].new_kind && l < 8)
			add[SP_COUNT_NEW + l]++;
		if (l < SP_IGNORED && l <= top) {
			top = l;
			*prot = id;
		}
		if (sp->q[i].run && sp->q[i].run == sp->run.id) {
			if (!sp->run.first)
				sp->run.first = id;
			sp->run.last = id;
		}
	}
	return top;
}

/* Write every queued record in one transaction.  On failure the queue is
 * kept so nothing acknowledged-as-queued is silently dropped. */
int sp_store_write(sponge *sp, bool durable)
{
	int rc;
	if (durable &&
	    (rc = sp_store_exec(sp, "PRAGMA synchronous=FULL", "writing records")))
		return rc;
	if ((rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "writing records")))
		goto out;
	int64_t next = 0;
	bool caps = sp->cfg.max_records || sp->cfg.max_bytes;
	int64_t before[SP_COUNTS] = {0};
	if (caps)
		rc = sp_counts_get(sp, before, NULL);
	int64_t *ids = sp->nhits ? sp_malloc(sp->nhits * sizeof *ids) : NULL;
	if (sp->nhits && !ids)
		rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	else if (ids)
		memset(ids, 0, sp->nhits * sizeof *ids);
	if (rc == SPONGE_OK && sp_new_kind_level(sp) >= 0)
		rc = sp_store_mark_new_kinds(sp, sp->q, sp->qn);
	if (rc == SPONGE_OK &&
	    (rc = sp_store_int(sp, NEXT_ID_SQL, &next)) == SPONGE_OK) {
		size_t i = 0;
		for (; rc == SPONGE_OK && i + SP_MULTI_ROWS <= sp->qn;
		     i += SP_MULTI_ROWS)
			rc = insert_rows(sp, SP_MULTI_ROWS, i ? 0 : next,
					 &sp->q[i], ids);
		for (; rc == SPONGE_OK && i < sp->qn; i++)
			rc = insert_rows(sp, 1, i ? 0 : next, &sp->q[i], ids);
	}
	sp_free(ids);
	int64_t add[SP_COUNTS] = {0}, prot = 0;
	int top = queue_counts(sp, next, add, &prot), present = 8;
	for (int l = 7; l >= 0; l--)
		if (before[l])
			present = l;
	if (rc == SPONGE_OK)
		rc = sp_counts_add(sp, add);
	if (rc == SPONGE_OK)
		rc = write_extras(sp);
	if (rc == SPONGE_OK && caps)
		rc = sp_enforce_caps(sp, top < present ? prot : 0);
	if (rc == SPONGE_OK)
		rc = sp_store_exec(sp, "COMMIT", "writing records");
	if (rc != SPONGE_OK) {
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
		sp->run.first = sp->run.last = 0;
		goto out;
	}
	sp->qn = 0;
	sb_reset(&sp->qdata);
	sp_run_written(sp);
	for (size_t i = 0; sp->hits_pending && i < sp->nhits; i++) {
		sp->hits[i].since_base += sp->hits[i].n;
		sp->hits[i].n = 0;
	}
	sp->hits_pending = false;
	sp_free(sp->pos_name);
	sp_free(sp->pos_cursor);
	sp->pos_name = sp->pos_cursor = NULL;
out:
	if (durable)
		sqlite3_exec(sp->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
			     NULL);
	return rc;
}

void sp_store_close(sponge *sp)
{
	/* The main file holds the data once a handle closes: copy the WAL
	 * into it (without waiting for readers or writers of other handles;
	 * the last handle to close also removes the WAL).  A checkpoint that
	 * fails, on a full disk say, loses nothing: the WAL keeps it all. */
	if (sp->db)
		sqlite3_wal_checkpoint_v2(sp->db, NULL,
					  SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	for (int r = 0; r < SP_INSERT_SHAPES; r++) {
		sqlite3_finalize(sp->ins[r]);
		sqlite3_finalize(sp->ins_multi[r]);
	}
	sqlite3_close_v2(sp->db);
	sp->db = NULL;
}

void sp_store_let_go(sponge *sp)
{
	sqlite3_stmt *st;
	if (!sp->db)
		return;
	while ((st = sqlite3_next_stmt(sp->db, NULL)))
		sqlite3_finalize(st);
	sqlite3_close_v2(sp->db);
	sp->db = NULL;
	for (int r = 0; r < SP_INSERT_SHAPES; r++)
		sp->ins[r] = sp->ins_multi[r] = NULL;
}

int sp_store_sync(sponge *sp)
{
	/* Nothing queued: what earlier NORMAL commits left in the WAL is
	 * made durable by syncing the WAL itself.  (Not by a checkpoint: one
	 * that fails, as on a full disk, would say nothing about the records,
	 * which are stored already.) */
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(sp->db, "main",
				      SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc == SQLITE_OK && wal && wal->pMethods)
		rc = wal->pMethods->xSync(wal, SQLITE_SYNC_FULL);
	return rc == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, rc, "syncing");
}

void sp_store_rollback(sponge *sp)
{
	sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
}

int sp_store_end(sponge *sp, int rc, const char *what)
{
	if (rc == SPONGE_OK)
		rc = sp_store_exec(sp, "COMMIT", what);
	if (rc != SPONGE_OK)
		sp_store_rollback(sp);
	return rc;
}

void sp_store_cache(sponge *sp, int kib)
{
	char sql[48];
	snprintf(sql, sizeof sql, "PRAGMA cache_size=%d", -kib);
	sqlite3_exec(sp->db, sql, NULL, NULL, NULL);
}
