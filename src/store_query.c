/* query.c - reading the spool: record iterators, stats, history, purge. */
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "flush.h"
#include "store.h"

struct sponge_iter {
	sponge *sp;
	sqlite3_stmt *st;
	sponge_record rec;
};

struct sponge_hiter {
	sponge *sp;
	sqlite3_stmt *st;
	sponge_attempt att;
};

/* The columns sponge_query_next() reads. */
#define RECORD_SELECT                                                         \
	"SELECT id,time,level,tag,host,message,sent,(SELECT name FROM "        \
	"rule_names WHERE rule_names.id = rule),orig_level,escalated "

static int prepare(sponge *sp, const char *sql, sqlite3_stmt **st,
		   const char *what)
{
	int rc = sqlite3_prepare_v2(sp->db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, rc, what);
}

/* The SELECT for filter f, its values as named parameters. */
static bool query_sql(const sponge_filter *f, spbuf *sql)
{
	sb_adds(sql, RECORD_SELECT "FROM records WHERE ");
	sb_adds(sql, f->sent == SPONGE_SENT_ONLY ? "sent IS NOT NULL"
		     : f->sent == SPONGE_SENT_TOO ? "1"
						  : "sent IS NULL");
	sb_adds(sql, f->ignored == SPONGE_IGNORED_ONLY ? " AND level >= 8"
		     : f->ignored == SPONGE_IGNORED_TOO    ? ""
							   : " AND level < 8");
	if (f->has_level)
		sb_adds(sql, " AND (level & 7) <= :level AND id >= :from");
	if (f->tag)
		sb_adds(sql, " AND tag = :tag");
	if (f->since_us)
		sb_adds(sql, " AND time >= :since");
	if (f->until_us)
		sb_adds(sql, " AND time < :until");
	if (f->grep)
		sb_adds(sql, " AND instr(message, :grep) > 0");
	if (f->max_id > 0)
		sb_adds(sql, " AND id <= :maxid");
	if (f->limit > 0) {
		/* newest `limit` matches, still printed oldest first */
		spbuf wrap;
		sb_init(&wrap, 0);
		sb_printf(&wrap, "SELECT * FROM (%s ORDER BY id DESC LIMIT "
				 ":limit) ORDER BY id", sql->data);
		wrap.failed |= sql->failed;
		sb_free(sql);
		*sql = wrap;
	} else {
		sb_adds(sql, " ORDER BY id");
	}
	return !sql->failed;
}

/* Pending records at or above a level start at the lowest id cursor of
 * those levels (none there: nothing to read at all). */
static int64_t level_start(sponge *sp, const sponge_filter *f)
{
	if (!f->has_level || f->sent != SPONGE_PENDING)
		return 0;
	int64_t n[SP_COUNTS], cur[SP_COUNTS], from = INT64_MAX;
	if (sp_counts_get(sp, n, cur) != SPONGE_OK)
		return 0;
	for (int l = 0; l <= f->level; l++) {
		int k = SP_COUNT_IGNORED + l;
		if (f->ignored != SPONGE_IGNORED_ONLY && n[l] && cur[l] < from)
			from = cur[l];
		if (f->ignored != SPONGE_COUNTED && n[k] && cur[k] < from)
			from = cur[k];
	}
	return from;
}

static void query_bind(sponge *sp, sqlite3_stmt *st, const sponge_filter *f)
{
#define BIND(name, call)                                                      \
	do {                                                                  \
		int ix_ = sqlite3_bind_parameter_index(st, name);             \
		if (ix_)                                                      \
			call;                                                 \
	} while (0)
	BIND(":level", sqlite3_bind_int(st, ix_, f->level));
	BIND(":tag", sqlite3_bind_text(st, ix_, f->tag, -1, SQLITE_TRANSIENT));
	BIND(":since", sqlite3_bind_int64(st, ix_, f->since_us));
	BIND(":until", sqlite3_bind_int64(st, ix_, f->until_us));
	BIND(":grep",
	     sqlite3_bind_text(st, ix_, f->grep, -1, SQLITE_TRANSIENT));
	BIND(":maxid", sqlite3_bind_int64(st, ix_, f->max_id));
	BIND(":limit", sqlite3_bind_int64(st, ix_, f->limit));
	BIND(":from", sqlite3_bind_int64(st, ix_, level_start(sp, f)));
#undef BIND
}

int sp_query(sponge *sp, const sponge_filter *f, sponge_iter **out)
{
	static const sponge_filter all;
	if (out)
		*out = NULL;
	if (!sp_usable(sp) || !out)
		return SPONGE_EINVAL;
	if (!f)
		f = &all;
	if (f->has_level && (f->level < 0 || f->level > 7))
		return sp_fail(sp, SPONGE_EINVAL, "level %d out of range 0…7",
			       f->level);
	spbuf sql;
	sb_init(&sql, 0);
	sponge_iter *it = query_sql(f, &sql) ? sp_malloc(sizeof *it) : NULL;
	if (!it) {
		sb_free(&sql);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	memset(it, 0, sizeof *it);
	it->sp = sp;
	int rc = prepare(sp, sql.data, &it->st, "querying records");
	sb_free(&sql);
	if (rc != SPONGE_OK) {
		sp_free(it);
		return rc;
	}
	query_bind(sp, it->st, f);
	*out = it;
	return SPONGE_OK;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

int sponge_query_next(sponge_iter *it, const sponge_record **rec)
{
	SP_GUARD;
	if (!it || !rec || !sp_usable(it->sp))
		return SPONGE_EINVAL;
	*rec = NULL;
	int rc = sqlite3_step(it->st);
	if (rc == SQLITE_DONE)
		return SPONGE_DONE;
	if (rc != SQLITE_ROW)
		return sp_dberr(it->sp, rc, "reading records");
	sqlite3_stmt *st = it->st;
	it->rec.id = sqlite3_column_int64(st, 0);
	it->rec.time_us = sqlite3_column_int64(st, 1);
	it->rec.level = sqlite3_column_int(st, 2) & 7;
	it->rec.ignored = (sqlite3_column_int(st, 2) & SP_IGNORED) != 0;
	it->rec.rule = (const char *)sqlite3_column_text(st, 7);
	it->rec.orig_level = sqlite3_column_type(st, 8) == SQLITE_NULL
				     ? -1
				     : sqlite3_column_int(st, 8);
	it->rec.escalated = sqlite3_column_int(st, 9) != 0;
	it->rec.tag = col_text(st, 3);
	it->rec.host = col_text(st, 4);
	it->rec.message = col_text(st, 5);
	it->rec.message_len = (size_t)sqlite3_column_bytes(st, 5);
	it->rec.sent_in = sqlite3_column_int64(st, 6);
	*rec = &it->rec;
	return SPONGE_ROW;
}

void sponge_query_close(sponge_iter *it)
{
	if (!it)
		return;
	SP_GUARD;
	if (sp_usable(it->sp))
		sqlite3_finalize(it->st);
	sp_free(it);
}

static uint64_t file_size(const char *path, const char *suffix)
{
	spbuf p;
	sb_init(&p, 0);
	sb_printf(&p, "%s%s", path, suffix);
	struct stat st;
	uint64_t n = !p.failed && stat(p.data, &st) == 0 ? (uint64_t)st.st_size
							 : 0;
	sb_free(&p);
	return n;
}

/* The received time and id of the first or last pending record (ids
 * from `from` on); 0 when none. */
static int edge(sponge *sp, bool last, int64_t from, int64_t *t, int64_t *id)
{
	sqlite3_stmt *st;
	*t = *id = 0;
	int rc = prepare(sp, last ? "SELECT " SP_RECEIVED_SQL ", id FROM records "
				    "WHERE sent IS NULL AND level < 8 ORDER BY id "
				    "DESC LIMIT 1"
				  : "SELECT " SP_RECEIVED_SQL ", id FROM records "
				    "WHERE id >= ?1 AND sent IS NULL AND level < "
				    "8 ORDER BY id LIMIT 1",
			 &st, "reading counts");
	if (rc)
		return rc;
	if (!last)
		sqlite3_bind_int64(st, 1, from);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		*t = sqlite3_column_int64(st, 0);
		*id = sqlite3_column_int64(st, 1);
		s = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return s == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, s, "reading counts");
}

/*
 * From the counts kept as records come and go, and two lookups by id: the
 * cost is the same for 1,000 pending records and for 10,000,000.  The
 * oldest is the first pending record in arrival (id) order, whose
 * received time is within a minute of the earliest.
 */
int sp_stats_get(sponge *sp, sponge_stats *out)
{
	if (!sp_usable(sp) || !out)
		return SPONGE_EINVAL;
	memset(out, 0, sizeof *out);
	/* one read transaction: the counts and the edges agree */
	int s = sqlite3_exec(sp->db, "BEGIN", NULL, NULL, NULL);
	if (s != SQLITE_OK)
		return sp_dberr(sp, s, "reading counts");
	int64_t n[SP_COUNTS], cur[SP_COUNTS], from = INT64_MAX, id;
	int rc = sp_counts_get(sp, n, cur);
	for (int l = 0; l < 8 && rc == SPONGE_OK; l++) {
		out->by_level[l] = n[l];
		out->ignored[l] = n[SP_COUNT_IGNORED + l];
		out->pending += n[l];
		if (n[l] && cur[l] < from)
			from = cur[l];
	}
	if (rc == SPONGE_OK && out->pending)
		rc = edge(sp, false, from, &out->oldest_us, &id);
	if (rc == SPONGE_OK && out->pending)
		rc = edge(sp, true, 0, &out->newest_us, &out->max_id);
	if (rc == SPONGE_OK)
		rc = sp_dropped(sp, out->dropped);
	if (rc == SPONGE_OK && sp_new_kind_level(sp) >= 0)
		rc = sp_store_new_pending(sp, sp_new_kind_level(sp),
					  &out->new_kinds);
	if (rc == SPONGE_OK)
		rc = sp_store_last_sent(sp, &out->last_sent_us);
	sqlite3_exec(sp->db, "COMMIT", NULL, NULL, NULL);
	out->spool_bytes = file_size(sp->path, "") + file_size(sp->path, "-wal");
	return rc;
}

/* One piece of a purge, a transaction of its own: up to SP_PIECE_ROWS
 * records past id *after received before before_us (any, when <= 0);
 * *after moves to the last one, *n counts them. */
static int purge_piece(sponge *sp, int64_t before_us, int64_t *after,
		       int64_t *n)
{
	*n = 0;
	int rc = sp_store_exec(sp, "BEGIN IMMEDIATE", "purging");
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	if ((rc = sp_store_exec(sp, SP_ID_FLOOR_SQL, "purging")) == SPONGE_OK) {
		int r = sqlite3_prepare_v2(
			sp->db,
			"DELETE FROM records WHERE id IN (SELECT id FROM records "
			"WHERE id > ?1 AND (?2 <= 0 OR " SP_RECEIVED_SQL
			" < ?2) ORDER BY id LIMIT ?3)" SP_COUNTS_RETURNING,
			-1, &st, NULL);
		if (r != SQLITE_OK)
			rc = sp_dberr(sp, r, "purging");
	}
	if (rc == SPONGE_OK) {
		sqlite3_bind_int64(st, 1, *after);
		sqlite3_bind_int64(st, 2, before_us);
		sqlite3_bind_int(st, 3, SP_PIECE_ROWS);
		rc = sp_counts_step(sp, st, false, n, after, "purging");
	}
	sqlite3_finalize(st);
	return sp_store_end(sp, rc, "purging");
}

int sponge_purge(sponge *sp, int64_t before_us, int64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	SP_GUARD;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	/* in pieces, so that no writer waits long; each piece is whole */
	int64_t after = 0, n, total = 0;
	int rc;
	do {
		rc = purge_piece(sp, before_us, &after, &n);
		if (rc == SPONGE_OK)
			total += n;
		if (deleted && rc == SPONGE_OK)
			*deleted = total;
	} while (rc == SPONGE_OK && n == SP_PIECE_ROWS);
	if (total)
		sp_shrink(sp);
	return rc;
}

int sponge_history(sponge *sp, int64_t limit, sponge_hiter **out)
{
	if (out)
		*out = NULL;
	SP_GUARD;
	if (!sp_usable(sp) || !out)
		return SPONGE_EINVAL;
	sponge_hiter *it = sp_malloc(sizeof *it);
	if (!it)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	memset(it, 0, sizeof *it);
	it->sp = sp;
	int rc = prepare(sp,
			 "SELECT * FROM (SELECT id,time,outcome,stage,reply,"
			 "records,message_id FROM history ORDER BY id DESC "
			 "LIMIT ?) ORDER BY id",
			 &it->st, "reading history");
	if (rc) {
		sp_free(it);
		return rc;
	}
	sqlite3_bind_int64(it->st, 1, limit > 0 ? limit : -1);
	*out = it;
	return SPONGE_OK;
}

int sponge_history_next(sponge_hiter *it, const sponge_attempt **att)
{
	SP_GUARD;
	if (!it || !att || !sp_usable(it->sp))
		return SPONGE_EINVAL;
	*att = NULL;
	int rc = sqlite3_step(it->st);
	if (rc == SQLITE_DONE)
		return SPONGE_DONE;
	if (rc != SQLITE_ROW)
		return sp_dberr(it->sp, rc, "reading history");
	sqlite3_stmt *st = it->st;
	it->att.id = sqlite3_column_int64(st, 0);
	it->att.time_us = sqlite3_column_int64(st, 1);
	it->att.outcome = col_text(st, 2);
	it->att.sent = strcmp(it->att.outcome, "sent") == 0;
	it->att.stage = col_text(st, 3);
	it->att.reply = col_text(st, 4);
	it->att.records = sqlite3_column_int64(st, 5);
	it->att.message_id = col_text(st, 6);
	*att = &it->att;
	return SPONGE_ROW;
}

void sponge_history_close(sponge_hiter *it)
{
	if (!it)
		return;
	SP_GUARD;
	if (sp_usable(it->sp))
		sqlite3_finalize(it->st);
	sp_free(it);
}

/* ---- a batch as the composer's record source ------------------------- */

static void batch_close(sp_source *s)
{
	sp_batch_source *bs = (sp_batch_source *)s;
	sponge_query_close(bs->it);
	sponge_query_close(bs->one);
	bs->it = bs->one = NULL;
}

/* An iterator over the given SELECT (its columns those of
 * sponge_query's), not yet bound. */
static int select_iter(sp_batch_source *bs, const char *sql,
		       sponge_iter **out)
{
	*out = NULL;
	sponge_iter *it = sp_malloc(sizeof *it);
	if (!it)
		return sp_fail(bs->sp, SPONGE_ENOMEM, "out of memory");
	memset(it, 0, sizeof *it);
	it->sp = bs->sp;
	int rc = prepare(bs->sp, sql, &it->st, "reading records");
	if (rc) {
		sp_free(it);
		return rc;
	}
	*out = it;
	return SPONGE_OK;
}

static int batch_get(sp_source *s, int64_t id, const sponge_record **r)
{
	sp_batch_source *bs = (sp_batch_source *)s;
	sponge_query_close(bs->one);
	int rc = select_iter(bs, RECORD_SELECT
				 "FROM records WHERE id = ?1",
			     &bs->one);
	if (rc)
		return rc;
	sqlite3_bind_int64(bs->one->st, 1, id);
	return sponge_query_next(bs->one, r);
}

/* An iterator over the batch in an order of the given SELECT's (?1 the
 * batch's max id, ?2 this host's name, ?3 its least severe level). */
static int batch_sorted(sp_batch_source *bs, const char *sql)
{
	sponge_iter *it;
	int rc = select_iter(bs, sql, &it);
	if (rc)
		return rc;
	sqlite3_bind_int64(it->st, 1, bs->b->n.max_id);
	/* (?2 unused in one of them: binding it is harmless) */
	sqlite3_bind_text(it->st, 2, bs->sp->host, -1, SQLITE_STATIC);
	sqlite3_bind_int(it->st, 3, sp_batch_max_level(&bs->b->n));
	bs->it = it;
	return SPONGE_OK;
}

static int batch_open(sp_source *s, sp_order order)
{
	sp_batch_source *bs = (sp_batch_source *)s;
	batch_close(s);
	if (order == SP_OLDEST_FIRST) {
		sponge_filter f;
		memset(&f, 0, sizeof f);
		f.max_id = bs->b->n.max_id;
		if (sp_batch_max_level(&bs->b->n) < 7) { /* at or above */
			f.has_level = 1;
			f.level = sp_batch_max_level(&bs->b->n);
		}
		return sp_query(bs->sp, &f, &bs->it);
	}
	/* the log grouped by host, this host's first; or most severe first
	 * (the body of a message past mail.max_size) */
	return batch_sorted(bs, order == SP_BY_HOST
				    ? RECORD_SELECT
				      "FROM records WHERE id <= ?1 AND level <= ?3 "
				      "AND sent IS NULL ORDER BY host <> ?2, "
				      "host, id"
				    : RECORD_SELECT
				      "FROM records WHERE id <= ?1 AND level <= ?3 "
				      "AND sent IS NULL ORDER BY level, id");
}

static int batch_next(sp_source *s, const sponge_record **r)
{
	sp_batch_source *bs = (sp_batch_source *)s;
	return bs->it ? sponge_query_next(bs->it, r) : SPONGE_DONE;
}

void sp_batch_source_init(sp_batch_source *s, sponge *sp, const sp_batch *b)
{
	memset(s, 0, sizeof *s);
	s->base.open = batch_open;
	s->base.next = batch_next;
	s->base.close = batch_close;
	s->base.get = batch_get;
	s->sp = sp;
	s->b = b;
}
