/* store_newkinds.c - the kinds waiting: the pending records of kinds no
 * delivered message carried (marked when written), gathered by kind for
 * kinds --new. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"

static int gather(sponge *sp, sp_kind_table *t)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT time, level, tag, message "
					   "FROM records WHERE new_kind IS NOT "
					   "NULL AND sent IS NULL AND level < 8",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading kinds");
	int rc = SPONGE_OK;
	while (rc == SPONGE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(st, 2);
		const char *m = (const char *)sqlite3_column_text(st, 3);
		size_t off, n = sp_summary(m ? m : "",
					   (size_t)sqlite3_column_bytes(st, 3),
					   &off);
		if (!sp_kind_table_add(t, SIZE_MAX, tag ? tag : "",
				       (m ? m : "") + off, n,
				       sqlite3_column_int(st, 1),
				       sqlite3_column_int64(st, 0)))
			rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	if (rc == SPONGE_OK && r != SQLITE_DONE)
		rc = sp_dberr(sp, r, "reading kinds");
	return rc;
}

static int by_last_seen(const void *a, const void *b)
{
	const sp_kind_seen *x = a, *y = b;
	return x->last < y->last ? 1 : x->last > y->last ? -1 : 0;
}

/* Tell each about kind k, unless a delivery made it known since its
 * records were marked; *told counts those told. */
static int tell(sponge *sp, const sp_kind_seen *k, spbuf *masked,
		void (*each)(void *, const sponge_kind *), void *arg,
		int64_t *told)
{
	sp_kind_known known;
	int rc = sp_store_kind_get(sp, k->fp, &known);
	if (rc != SPONGE_OK || (known.known && known.state != SP_KIND_RESOLVED))
		return rc;
	sb_reset(masked);
	sp_mask(masked, k->sample, strlen(k->sample));
	bool back = known.known;
	sponge_kind out = {back ? known.id : 0,
			   k->tag,
			   k->sample,
			   masked->data ? masked->data : "",
			   k->level,
			   k->first,
			   k->last,
			   0,
			   k->count,
			   0,
			   back ? SPONGE_KIND_RESOLVED : SPONGE_KIND_NEW,
			   back ? known.resolved : 0};
	each(arg, &out);
	(*told)++;
	return SPONGE_OK;
}

int sponge_kinds_new(sponge *sp, int64_t limit,
		     void (*each)(void *arg, const sponge_kind *k), void *arg)
{
	SP_GUARD;
	if (!sp_usable(sp) || !each)
		return SPONGE_EINVAL;
	sp_kind_table t = {NULL, 0, 0};
	int64_t waiting = 0;
	int rc = sp_store_exec(sp, "BEGIN", "reading kinds");
	if (rc == SPONGE_OK)
		rc = sp_store_new_pending(sp, 7, &waiting);
	if (rc == SPONGE_OK && waiting) /* a walk through the pending */
		rc = gather(sp, &t);
	size_t n = sp_kind_table_pack(&t);
	if (n)
		qsort(t.t, n, sizeof *t.t, by_last_seen);
	spbuf masked;
	sb_init(&masked, 0);
	int64_t told = 0;
	for (size_t i = 0; rc == SPONGE_OK && i < n && (limit <= 0 ||
							 told < limit); i++)
		rc = tell(sp, &t.t[i], &masked, each, arg, &told);
	sb_free(&masked);
	sp_kind_table_free(&t);
	sp_store_rollback(sp);
	return rc;
}
