/* store.h - the store: every SQL statement of the library, in store*.c
 * (schema and migrations, writing records, meta, history, the batch's
 * scans, commit-or-keep, expire, forget, caps, counts, queries).  Nothing
 * else calls sqlite3_*; tests/lint/layers.sh checks that. */
#ifndef SPONGE_STORE_H
#define SPONGE_STORE_H

#include "internal.h"

struct sp_batch;
struct sp_send_result;

/* ---- the file (store.c) ---- */
/* Open sp->path (WAL, schema created or migrated forward, the insert
 * statements prepared). */
SP_HIDDEN int sp_store_open(sponge *sp);
/* Checkpoint what this handle wrote (passive), finalize, close. */
SP_HIDDEN void sp_store_close(sponge *sp);
/* A source's position (store_positions.c): written inside the caller's
 * write transaction; read (*found 0 when none). */
SP_HIDDEN int sp_store_position(sponge *sp, const char *name,
				const sponge_position *pos);
SP_HIDDEN int sp_store_position_get(sponge *sp, const char *name,
				    sponge_position *pos, int *found);
/* A forked child lets go of a connection it inherited: every statement
 * finalized and the connection closed, nothing written (its records and
 * its locks are the parent's). */
SP_HIDDEN void sp_store_let_go(sponge *sp);
/* Write every queued record in one transaction (durable: synced). */
SP_HIDDEN int sp_store_write(sponge *sp, bool durable);
/* Make what earlier commits left in the WAL durable. */
SP_HIDDEN int sp_store_sync(sponge *sp);
SP_HIDDEN int sp_store_exec(sponge *sp, const char *sql, const char *what);
/* The first column of the first row of sql (0 without rows). */
SP_HIDDEN int sp_store_int(sponge *sp, const char *sql, int64_t *v);
SP_HIDDEN void sp_store_rollback(sponge *sp);
/* End a write transaction: COMMIT when rc is SPONGE_OK, else (or when
 * the COMMIT fails) ROLLBACK; returns the outcome. */
SP_HIDDEN int sp_store_end(sponge *sp, int rc, const char *what);
/* A write transaction removes at most this many records: deleting a
 * large batch in one holds every writer back (a million records, about
 * a second); a piece of 32,768 takes about 25 ms. */
#define SP_PIECE_ROWS 32768
/* The page cache, in KiB. */
SP_HIDDEN void sp_store_cache(sponge *sp, int kib);

/* ---- meta, history, the batch (store_batch.c) ---- */
/* meta[key] into out ("" when absent). */
SP_HIDDEN int sp_meta_get(sponge *sp, const char *key, spbuf *out);
/* Set (value NULL: delete), inside the caller's transaction. */
SP_HIDDEN int sp_meta_set(sponge *sp, const char *key, const char *value);
/* sp_meta_set in a transaction of its own. */
/* meta[key] as a number (0: absent, or unreadable); set in a
 * transaction of its own. */
SP_HIDDEN int64_t sp_meta_int(sponge *sp, const char *key);
SP_HIDDEN int sp_meta_int_commit(sponge *sp, const char *key, int64_t value);
SP_HIDDEN int sp_meta_commit(sponge *sp, const char *key, const char *value,
			     const char *what);
/* The random token naming this spool in Message-IDs. */
SP_HIDDEN int sp_store_token(sponge *sp, char tok[33]);
/* Drop pending records received before `now - policy.expire`, with a
 * history row saying how many; one transaction. */
SP_HIDDEN int sp_store_expire(sponge *sp, int64_t now, int64_t *dropped);
/* Forget sent records kept past spool.keep_sent; one transaction. */
SP_HIDDEN int sp_store_forget_sent(sponge *sp, int64_t now);

/* One pending record of a batch scan (valid during the call). */
typedef struct sp_scan_row {
	int64_t id, time_us, received_us;
	int64_t bytes; /* of its message and tag */
	int level;
	bool ignored;        /* a noise rule ignores it */
	bool escalated;      /* counted: its rule passed unless= */
	const char *rule;    /* the rule that judged it, or NULL */
	const char *tag;
	const char *host;
	const char *message; /* with messages only, else NULL */
	size_t message_len;
} sp_scan_row;
/* false: stop reading (the scan still succeeds) */
typedef bool (*sp_scan_fn)(void *arg, const sp_scan_row *row);
/* Every pending record with id <= max_id at max_level or more severe,
 * oldest first, until fn says stop; with messages, their text too. */
SP_HIDDEN int sp_store_scan_batch(sponge *sp, int64_t max_id, int max_level,
				  bool messages, sp_scan_fn fn, void *arg);
/* One record's time, tag and message (empty when it is gone). */
SP_HIDDEN int sp_store_record(sponge *sp, int64_t id, int64_t *time_us,
			      spbuf *tag, spbuf *message);
/* ---- the runs of jobs (store_runs.c) ---- */
/* false: stop reading */
typedef bool (*sp_run_fn)(void *arg, const sponge_run *run);
/* A new run of job, begun at start_us by process pid: its id. */
SP_HIDDEN int sp_store_run_begin(sponge *sp, const char *job, int64_t pid,
				 int64_t start_us, int64_t *id);
/* Inside a write's transaction: sp->run's range of records written now,
 * its lines, and its end once set. */
SP_HIDDEN int sp_store_run_write(sponge *sp);
/* The runs with records in ids lo..hi, by start. */
SP_HIDDEN int sp_store_runs_in(sponge *sp, int64_t lo, int64_t hi,
			       sp_run_fn fn, void *arg);
/* The ended runs whose last record is pending, oldest first. */
SP_HIDDEN int sp_store_runs_ended_pending(sponge *sp, sp_run_fn fn,
					  void *arg);
/* job NULL: each job's last run (runs: its runs kept), by name; else
 * job's runs, newest first; at most limit (0: all). */
SP_HIDDEN int sp_store_jobs(sponge *sp, const char *job, int64_t limit,
			    sp_run_fn fn, void *arg);
/* The records of a run, oldest first (messages included). */
SP_HIDDEN int sp_store_run_records(sponge *sp, const sponge_run *run,
				   sp_scan_fn fn, void *arg);
/* Inside a transaction: forget runs begun before before_us whose records
 * are gone, but each job's last (a delivery forgets those older than
 * SP_RUNS_KEPT_US). */
#define SP_RUNS_KEPT_US (90 * 86400 * 1000000LL)
SP_HIDDEN int sp_store_runs_prune(sponge *sp, int64_t before_us);

/* When the last message went (0: none). */
SP_HIDDEN int sp_store_last_sent(sponge *sp, int64_t *t);
/* After the server's final 250: remove (or, with keep_sent, mark) exactly
 * the batch, write the history row, forget the in-flight marker, in one
 * transaction.  A batch history already has as sent is left alone. */
SP_HIDDEN int sp_store_commit_sent(sponge *sp, const struct sp_batch *b,
				   const char *reply);
/* A failure's history row; unless the server may have the message, the
 * in-flight marker goes too. */
SP_HIDDEN int sp_store_record_failure(sponge *sp, const struct sp_batch *b,
				      const char *outcome,
				      const struct sp_send_result *r);

/* Before deleting records: remember the highest id handed out so far,
 * so that no id is ever reused. */
#define SP_ID_FLOOR_SQL                                                          \
	"INSERT INTO meta(key, value) SELECT 'id_floor', max(id) FROM records " \
	"WHERE true ON CONFLICT(key) DO UPDATE SET value = "                  \
	"max(value, coalesce(excluded.value, 0))"

/* ---- counts and caps (store_counts.c) ---- */
/* counts.k: 0..7 pending records per level, 8 sent records kept, 9..16
 * pending ignored records per level; 17..24 (v8) pending records of new
 * kinds per level (new_kind set, level < 8), a part of 0..7 */
#define SP_COUNTS 25
#define SP_COUNT_SENT 8
#define SP_COUNT_IGNORED 9
#define SP_COUNT_NEW 17
#define SP_COUNT_RECORDS 17 /* the keys that count each record once */
/* The counts' key of a stored record (its level column, sent or not). */
static inline int sp_count_key(int stored_level, bool sent)
{
	if (sent)
		return SP_COUNT_SENT;
	return (stored_level & SP_IGNORED) ? SP_COUNT_IGNORED + (stored_level & 7)
					   : stored_level & 7;
}
/* Add d[k] to each count (inside the caller's write transaction). */
SP_HIDDEN int sp_counts_add(sponge *sp, const int64_t d[SP_COUNTS]);
/* The counts (and, when cur is not NULL, the per-level id cursors). */
SP_HIDDEN int sp_counts_get(sponge *sp, int64_t n[SP_COUNTS],
			    int64_t cur[SP_COUNTS]);
/* Step a prepared "DELETE ... RETURNING level, sent, id, new_kind" (or,
 * with to_sent, an UPDATE that makes pending records kept sent ones) to
 * its end and update the counts; *changed (may be NULL) gets how many
 * rows; *max_id (may be NULL) the highest id and its own value.  The
 * caller finalizes st. */
#define SP_COUNTS_RETURNING " RETURNING level, sent, id, new_kind"
/* The counts' key of a removed record of a new kind, or -1. */
static inline int sp_count_new_key(int stored_level, bool sent, bool new_kind)
{
	return new_kind && !sent && stored_level < 8 ? SP_COUNT_NEW + stored_level
						     : -1;
}
SP_HIDDEN int sp_counts_step(sponge *sp, sqlite3_stmt *st, bool to_sent,
			     int64_t *changed, int64_t *max_id,
			     const char *what);
/* Every pending record with id <= max_id is gone: move the cursors. */
SP_HIDDEN int sp_counts_moved_past(sponge *sp, int64_t max_id, int max_level);
/* Keep the spool within [spool] max_records and max_bytes, inside the
 * caller's write transaction: drop exactly as many records as needed,
 * kept sent ones first, then ignored ones, then the oldest of the least
 * severe level; never prot_id (0: none). */
SP_HIDDEN int sp_enforce_caps(sponge *sp, int64_t prot_id);
/* Records dropped by the caps, per level (meta dropped_0 … dropped_7). */
SP_HIDDEN int sp_dropped(sponge *sp, int64_t out[8]);

/* ---- the kinds delivered messages carried (store_kinds.c) ---- */
/* What the spool knows of kind fp. */
SP_HIDDEN int sp_store_kind_get(sponge *sp, uint64_t fp, sp_kind_known *k);
/* The kinds a delivered message carried (k[0..n), at `now`), inside the
 * caller's write transaction; then at most [spool] max_kinds are kept,
 * the least recently seen going first.  Not delivered: kinds learnt from
 * past logs (no message counted, a resolved one stays resolved). */
SP_HIDDEN int sp_store_kinds_commit(sponge *sp, const sp_kind_seen *k,
				    size_t n, int64_t now, bool delivered);

/* The least severe level whose records are marked when of a new kind:
 * policy.flush_on_new or new_level, whichever is less severe, within
 * count_level; -1 none. */
SP_HIDDEN int sp_new_kind_level(const sponge *sp);
/* Mark the queued records q[0..n) of kinds no delivered message carried
 * (or resolved ones), at sp_new_kind_level() or above, inside the
 * caller's write transaction. */
SP_HIDDEN int sp_store_mark_new_kinds(sponge *sp, sp_queued *q, size_t n);
/* Pending records so marked at `level` or above (the decision's count,
 * from the counts: one query whatever the spool holds). */
SP_HIDDEN int sp_store_new_pending(sponge *sp, int level, int64_t *n);
/* After a delivery: pending records still marked whose kind is now
 * known are marked no more (inside the caller's transaction; a walk
 * through the pending records when any is marked). */
SP_HIDDEN int sp_store_kinds_recheck(sponge *sp);

/* Kinds made under an older masking get their fingerprints made again
 * from their samples (merged where two become one), in a transaction of
 * its own; nothing to do costs one query. */
SP_HIDDEN int sp_store_kinds_remask(sponge *sp);

/* ---- what the noise rules did (store_rules.c) ---- */
/* Write the handle's rule hits (sp->hits) into rule_hits (per rule and
 * hour) and drops into rule_dropped, inside the caller's transaction. */
SP_HIDDEN int sp_store_hits(sponge *sp, int64_t now);
/* n more records rule dropped, for the next message to report. */
SP_HIDDEN int sp_store_rule_dropped(sponge *sp, const char *rule, int64_t n);
/* Each rule's drops not yet reported by a message: each(arg, name, n). */
SP_HIDDEN int sp_store_rule_drops(sponge *sp,
				  void (*each)(void *, const char *, int64_t),
				  void *arg);
/* After a message reported n of rule's drops, inside the caller's
 * transaction. */
SP_HIDDEN int sp_store_unreport_rule_drops(sponge *sp, const char *rule,
					   int64_t n);
/* How many times rule matched from from_us on, as rule_hits counts
 * (by the hour: the hour from_us falls in counts whole). */
SP_HIDDEN int sp_store_rule_window(sponge *sp, const char *rule,
				   int64_t from_us, int64_t *n);
/* The id of the rule named name in rule_names (made when new), inside
 * the caller's write transaction. */
SP_HIDDEN int sp_store_rule_id(sponge *sp, const char *name, int64_t *id);
/* One pending record judged again (rules apply). */
typedef struct sp_rejudge_row {
	sponge_entry e;   /* at its original level */
	int pid;
} sp_rejudge_row;
/* What the rules make of it now: the level to store, the rule (an index
 * into sp->hits, -1 none), the original level (-1), or drop. */
typedef struct sp_rejudged {
	int stored, rule, orig_level;
	bool drop;
} sp_rejudged;
typedef void (*sp_rejudge_fn)(void *arg, const sp_rejudge_row *r,
			      sp_rejudged *out);
/* Judge the next SP_PIECE_ROWS pending records after id *after by fn and
 * store what changed (drops removed, counted in rule_dropped), in one
 * transaction; *after moves on; *changed adds the records changed;
 * *more: records remain. */
SP_HIDDEN int sp_store_rejudge(sponge *sp, int64_t *after, sp_rejudge_fn fn,
			       void *arg, int64_t *changed, bool *more);
/* Forget rule_hits older than 31 days, inside the caller's transaction. */
SP_HIDDEN int sp_store_forget_hits(sponge *sp, int64_t now);

/* After a large delete (outside any transaction): when half or more of
 * the file is free pages (at least 1 MiB), give them back to the file
 * system (VACUUM).  Best effort. */
SP_HIDDEN int sp_shrink(sponge *sp);

#endif
