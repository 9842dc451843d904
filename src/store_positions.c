/* store_positions.c - where each source was read to: one row per source,
 * written in the transaction of the records it covers. */
#include <string.h>

#include <sqlite3.h>

#include "store.h"

int sp_store_position(sponge *sp, const char *name, const sponge_position *p)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"INSERT OR REPLACE INTO positions(name, dev, ino, offset, head, "
		"before, time, cursor) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		-1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)p->dev);
		sqlite3_bind_int64(st, 3, (int64_t)p->ino);
		sqlite3_bind_int64(st, 4, p->offset);
		sqlite3_bind_int64(st, 5, (int64_t)p->head);
		sqlite3_bind_int64(st, 6, (int64_t)p->before);
		sqlite3_bind_int64(st, 7, sponge_now());
		if (p->cursor)
			sqlite3_bind_text(st, 8, p->cursor, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		r = r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "storing a source's position");
}

int sp_store_position_get(sponge *sp, const char *name, sponge_position *p,
			  int *found)
{
	memset(p, 0, sizeof *p);
	*found = 0;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT dev, ino, offset, head, "
					   "before, time, cursor FROM positions "
					   "WHERE name = ?",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			*p = (sponge_position){
				(uint64_t)sqlite3_column_int64(st, 0),
				(uint64_t)sqlite3_column_int64(st, 1),
				sqlite3_column_int64(st, 2),
				(uint64_t)sqlite3_column_int64(st, 3),
				(uint64_t)sqlite3_column_int64(st, 4),
				sqlite3_column_int64(st, 5), NULL};
			const char *c = (const char *)sqlite3_column_text(st, 6);
			sp_free(sp->pos_read);
			sp->pos_read = c ? sp_strdup(c) : NULL;
			if (c && !sp->pos_read)
				r = SQLITE_NOMEM;
			p->cursor = sp->pos_read;
			*found = 1;
		}
		r = r == SQLITE_ROW || r == SQLITE_DONE ? SQLITE_OK : r;
	}
	sqlite3_finalize(st);
	return r == SQLITE_OK ? SPONGE_OK
			      : sp_dberr(sp, r, "reading a source's position");
}
