/* store_error.c - a SQLite result as a sponge code and a message on the
 * handle: the lowest piece of the store, used by all its files. */
#include <errno.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"

int sp_dberr(sponge *sp, int rc, const char *what)
{
	int code;
	switch (rc & 0xff) {
	case SQLITE_NOMEM: code = SPONGE_ENOMEM; break;
	case SQLITE_FULL: code = SPONGE_EFULL; break;
	case SQLITE_READONLY: code = SPONGE_EREADONLY; break;
	case SQLITE_BUSY: case SQLITE_LOCKED: code = SPONGE_EBUSY; break;
	case SQLITE_NOTADB: case SQLITE_CORRUPT: code = SPONGE_ENOTSPOOL; break;
	case SQLITE_CANTOPEN: code = SPONGE_ECANTOPEN; break;
	case SQLITE_PERM: case SQLITE_AUTH: code = SPONGE_ECANTOPEN; break;
	default: code = SPONGE_EIO; break;
	}
	int e = sp->db ? sqlite3_system_errno(sp->db) : 0;
	if ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_IOERR)
		code = sp_errno_code(e, code);
	const char *m = sp->db ? sqlite3_errmsg(sp->db) : sqlite3_errstr(rc);
	if (code == SPONGE_ERESOURCE)
		m = strerror(e);
	if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
		m = "file is not a logsponge spool (not an SQLite database, "
		    "or damaged)";
	return sp_fail(sp, code, "%s: %s: %s", sp->path ? sp->path : "spool",
		       what, m);
}
