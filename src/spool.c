/* spool.c - opening, creating and migrating the spool; writing records. */
#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC, gethostname */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"

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
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const errtext[] = {
	[SPONGE_OK] = "success",
	[SPONGE_EINVAL] = "invalid argument",
	[SPONGE_ENOMEM] = "out of memory",
	[SPONGE_ECANTOPEN] = "cannot create or open the spool",
	[SPONGE_ENOTSPOOL] = "not a logsponge spool",
	[SPONGE_EVERSION] = "spool made by a newer logsponge",
	[SPONGE_EIO] = "spool I/O error",
	[SPONGE_EFULL] = "disk full",
	[SPONGE_EREADONLY] = "spool is read-only",
	[SPONGE_EBUSY] = "spool is locked",
	[SPONGE_ECONFIG] = "configuration error",
	[SPONGE_ENOENT] = "no such spool",
	[SPONGE_ETEMPFAIL] = "temporary delivery failure",
	[SPONGE_EPERMFAIL] = "delivery refused",
	[SPONGE_EAUTH] = "authentication refused",
	[SPONGE_ETLS] = "TLS failure",
};

const char *sponge_strerror(int code)
{
	if (code == SPONGE_ROW)
		return "another row is ready";
	if (code == SPONGE_DONE)
		return "no more rows";
	if (code < 0 || code >= (int)(sizeof errtext / sizeof errtext[0]) ||
	    !errtext[code])
		return "unknown error";
	return errtext[code];
}

const char *sponge_version(void) { return SPONGE_VERSION; }
int sponge_version_number(void) { return SPONGE_VERSION_NUMBER; }

int sp_fail(sponge *sp, int code, const char *fmt, ...)
{
	if (!sp)
		return code;
	sb_reset(&sp->err);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&sp->err, fmt, ap);
	va_end(ap);
	return code;
}

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
	const char *m = sp->db ? sqlite3_errmsg(sp->db) : sqlite3_errstr(rc);
	if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
		m = "file is not a logsponge spool (not an SQLite database, "
		    "or damaged)";
	return sp_fail(sp, code, "%s: %s: %s", sp->path ? sp->path : "spool",
		       what, m);
}

const char *sponge_errmsg(const sponge *sp)
{
	return sp ? sp->err.data : "no handle";
}
const char *sponge_path(const sponge *sp) { return sp ? sp->path : NULL; }
const char *sponge_config_path(const sponge *sp)
{
	return sp ? sp->cfg.path : NULL;
}

const char *sponge_config_error(const sponge *sp)
{
	return sp ? sp->cfg_error.data : "";
}

const char *sponge_config_warnings(sponge *sp)
{
	if (!sp)
		return "";
	sb_reset(&sp->err);
	const sp_config *c = &sp->cfg;
	const char *f = c->path ? c->path : "(no config file)";
	if (!c->verify)
		sb_printf(&sp->err, "%s: smtp.verify = no: the server's "
				    "certificate and name are not checked\n", f);
	if (c->tls == SP_TLS_NONE)
		sb_printf(&sp->err, "%s: smtp.tls = none: mail goes over the "
				    "network in clear text\n", f);
	struct stat st;
	if (c->path && c->password_command && stat(c->path, &st) == 0 &&
	    (st.st_mode & 044))
		sb_printf(&sp->err, "%s: readable by group or others, and "
				    "smtp.password_command may hold the password "
				    "(chmod 600 it)\n", f);
	return sp->err.data;
}

int sp_get_policy(const sponge *sp, sponge_policy *out)
{
	if (!sp || !out)
		return SPONGE_EINVAL;
	*out = sp->cfg.policy;
	return SPONGE_OK;
}

/* ---- paths -------------------------------------------------------- */

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_dir : NULL;
}

/* $VAR/rest, or ~/fallback/rest when $VAR is unset or not absolute. */
static bool xdg_path(spbuf *out, const char *var, const char *fallback,
		     const char *rest)
{
	const char *base = getenv(var);
	if (base && base[0] == '/')
		return sb_printf(out, "%s/%s", base, rest);
	const char *h = home_dir();
	if (!h)
		return false;
	return sb_printf(out, "%s/%s/%s", h, fallback, rest);
}

static int pick_config(sponge *sp, const char *explicit_path, unsigned flags)
{
	spbuf p;
	sb_init(&p, 0);
	int rc = SPONGE_OK;
	bool must_exist = false;

	if (flags & SPONGE_OPEN_NOCONFIG)
		return SPONGE_OK;
	if (explicit_path) {
		sb_adds(&p, explicit_path);
		must_exist = true;
	} else if (getenv("LOGSPONGE_CONFIG") && *getenv("LOGSPONGE_CONFIG")) {
		sb_adds(&p, getenv("LOGSPONGE_CONFIG"));
		must_exist = true;
	} else {
		if (xdg_path(&p, "XDG_CONFIG_HOME", ".config",
			     "logsponge/config") &&
		    access(p.data, F_OK) != 0) {
			sb_reset(&p);
		}
		if (p.len == 0 && access("/etc/logsponge.conf", F_OK) == 0)
			sb_adds(&p, "/etc/logsponge.conf");
	}
	if (p.failed) {
		rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	} else if (p.len) {
		if (!must_exist && access(p.data, F_OK) != 0) {
			/* vanished: nothing to read */
		} else {
			rc = sp_config_load(&sp->cfg, p.data, &sp->err,
					    &sp->cfg_error);
		}
	}
	sb_free(&p);
	return rc;
}

static int pick_spool(sponge *sp, const char *explicit_path)
{
	spbuf p;
	sb_init(&p, 0);
	const char *env = getenv("LOGSPONGE_SPOOL");
	if (explicit_path && *explicit_path)
		sb_adds(&p, explicit_path);
	else if (env && *env)
		sb_adds(&p, env);
	else if (sp->cfg.spool_path) {
		const char *c = sp->cfg.spool_path;
		if (c[0] == '~' && c[1] == '/') {
			const char *h = home_dir();
			if (!h)
				return sp_fail(sp, SPONGE_ECONFIG,
					       "spool.path: no home directory "
					       "to expand ~ in");
			sb_printf(&p, "%s%s", h, c + 1);
		} else {
			sb_adds(&p, c);
		}
	} else if (!xdg_path(&p, "XDG_STATE_HOME", ".local/state",
			     "logsponge/spool.db")) {
		return sp_fail(sp, SPONGE_ECANTOPEN,
			       "no spool path: set LOGSPONGE_SPOOL, HOME or "
			       "XDG_STATE_HOME");
	}
	if (p.failed) {
		sb_free(&p);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	sp->path = sp_strdup(p.data);
	sb_free(&p);
	return sp->path ? SPONGE_OK : sp_fail(sp, SPONGE_ENOMEM, "out of memory");
}

/* mkdir -p of path's parent; directories we create are 0700. */
static int make_parents(sponge *sp)
{
	char *dir = sp_strdup(sp->path);
	if (!dir)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	char *slash = strrchr(dir, '/');
	int rc = SPONGE_OK;
	if (!slash || slash == dir)
		goto out;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		bool last = *p == '\0';
		if (*p == '/' || last) {
			char keep = *p;
			*p = '\0';
			if (mkdir(dir, 0700) == 0) {
				if (chmod(dir, 0700) != 0) {
					rc = sp_fail(sp, SPONGE_ECANTOPEN,
						     "%s: %s", dir,
						     strerror(errno));
					goto out;
				}
			} else if (errno != EEXIST) {
				rc = sp_fail(sp, SPONGE_ECANTOPEN,
					     "%s: cannot create directory: %s",
					     dir, strerror(errno));
				goto out;
			}
			*p = keep;
		}
		if (last)
			break;
	}
out:
	sp_free(dir);
	return rc;
}

/* Create the spool file 0600 without following a symlink planted at its
 * path; an existing file is left as it is. */
static int create_file(sponge *sp, unsigned flags)
{
	struct stat st;
	if (stat(sp->path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return sp_fail(sp, SPONGE_ECANTOPEN,
				       "%s: not a regular file", sp->path);
		return SPONGE_OK;
	}
	if (errno != ENOENT)
		return sp_fail(sp, SPONGE_ECANTOPEN, "%s: %s", sp->path,
			       strerror(errno));
	if (lstat(sp->path, &st) == 0 && S_ISLNK(st.st_mode))
		return sp_fail(sp, SPONGE_ECANTOPEN,
			       "%s: a symlink to a file that does not exist: "
			       "not creating the spool through it", sp->path);
	if (flags & SPONGE_OPEN_NOCREATE)
		return sp_fail(sp, SPONGE_ENOENT,
			       "%s: no such spool (nothing recorded yet?)",
			       sp->path);
	int rc = make_parents(sp);
	if (rc != SPONGE_OK)
		return rc;
	int fd = open(sp->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST && lstat(sp->path, &st) == 0 &&
		    S_ISREG(st.st_mode))
			return SPONGE_OK; /* another process won the race */
		return sp_fail(sp, SPONGE_ECANTOPEN, "%s: cannot create: %s",
			       sp->path, strerror(errno));
	}
	/* 0600 whatever the umask was */
	if (fchmod(fd, 0600) != 0) {
		rc = sp_fail(sp, SPONGE_ECANTOPEN, "%s: %s", sp->path,
			     strerror(errno));
	}
	close(fd);
	return rc;
}

/*
 * One spool file, one identity: whatever path reaches it (a symlink, a
 * relative path, a directory reached two ways), the spool is opened by
 * its canonical path, so its WAL and its flush lock are the same for
 * every opener.  A symlink is followed only to a regular file owned by
 * the caller and not open to group or others; a planted symlink is
 * refused.  A file with several hard links is refused: SQLite names the
 * WAL after the path, so two names would mean two WALs and lost records.
 */
static int canonical_path(sponge *sp)
{
	struct stat lst, st;
	if (lstat(sp->path, &lst) != 0)
		return sp_fail(sp, SPONGE_ECANTOPEN, "%s: %s", sp->path,
			       strerror(errno));
	char *real = realpath(sp->path, NULL);
	if (!real)
		return sp_fail(sp, SPONGE_ECANTOPEN, "%s: %s", sp->path,
			       strerror(errno));
	int rc = SPONGE_OK;
	if (stat(real, &st) != 0) {
		rc = sp_fail(sp, SPONGE_ECANTOPEN, "%s: %s", real,
			     strerror(errno));
		goto out;
	}
	if (S_ISLNK(lst.st_mode) &&
	    (st.st_uid != geteuid() || (st.st_mode & 077))) {
		rc = sp_fail(sp, SPONGE_ECANTOPEN,
			     "%s: a symlink to %s, which %s: not following "
			     "it (a spool reached by a symlink must be yours "
			     "and mode 0600)",
			     sp->path, real,
			     st.st_uid != geteuid() ? "belongs to someone else"
						   : "others may read");
		goto out;
	}
	if (st.st_nlink > 1) {
		rc = sp_fail(sp, SPONGE_ECANTOPEN,
			     "%s: has %lu hard links; a spool must have one "
			     "name (each name would get a write-ahead log of "
			     "its own, and records would be lost)",
			     real, (unsigned long)st.st_nlink);
		goto out;
	}
	sp_free(sp->path);
	sp->path = sp_strdup(real);
	if (!sp->path)
		rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
out:
	free(real); /* realpath's malloc, not ours */
	return rc;
}

/* ---- schema ------------------------------------------------------- */

static int exec(sponge *sp, const char *sql, const char *what)
{
	int rc = sqlite3_exec(sp->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, rc, what);
}

static int pragma_int(sponge *sp, const char *sql, int64_t *v)
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
	int rc = pragma_int(sp, "PRAGMA application_id", &app);
	if (rc == SPONGE_OK)
		rc = pragma_int(sp, "PRAGMA user_version", &ver);
	if (rc != SPONGE_OK)
		return rc;
	if (app == SPOOL_APP_ID && ver == SCHEMA_VERSION)
		return SPONGE_OK; /* the common case: no write lock needed */

	if ((rc = exec(sp, "BEGIN IMMEDIATE", "locking the spool")))
		return rc;
	/* Read again under the lock: another process may have done it. */
	if ((rc = pragma_int(sp, "PRAGMA application_id", &app)) ||
	    (rc = pragma_int(sp, "PRAGMA user_version", &ver)) ||
	    (rc = pragma_int(sp, "SELECT count(*) FROM sqlite_master",
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
		if ((rc = exec(sp, migrations[v], "migrating the schema")))
			goto fail;
	char sql[96];
	snprintf(sql, sizeof sql,
		 "PRAGMA application_id=%d; PRAGMA user_version=%d;",
		 SPOOL_APP_ID, SCHEMA_VERSION);
	if ((rc = exec(sp, sql, "migrating the schema")) ||
	    (rc = exec(sp, "COMMIT", "migrating the schema")))
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
	int code = exec(sp, "PRAGMA synchronous=NORMAL; "
			    "PRAGMA journal_size_limit=67108864", "cannot open");
	if (code == SPONGE_OK)
		code = prepare_schema(sp);
	return code;
}

static int open_db(sponge *sp)
{
	int rc = sqlite3_open_v2(sp->path, &sp->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK)
		return sp_dberr(sp, rc, "cannot open");
	sqlite3_extended_result_codes(sp->db, 1);
	sqlite3_busy_timeout(sp->db,
			     (int)(sp->cfg.busy_timeout_us / 1000 > 0x7fffffff
					   ? 0x7fffffff
					   : sp->cfg.busy_timeout_us / 1000));

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
	/* One statement for a single row and one for MULTI_ROWS rows at a
	 * time: per-statement overhead is a large part of ingest cost.  Each
	 * without and with the received column (rarely needed: a column
	 * more in every row costs ingest about a tenth). */
	for (int r = 0; r < 2 && rc == SQLITE_OK; r++) {
		spbuf sql;
		sb_init(&sql, 0);
		sb_adds(&sql, r ? "INSERT INTO records(id,time,level,tag,host,"
				  "message,received) VALUES(?,?,?,?,?,?,?)"
				: "INSERT INTO records(id,time,level,tag,host,"
				  "message) VALUES(?,?,?,?,?,?)");
		rc = sqlite3_prepare_v3(sp->db, sql.data, -1,
					SQLITE_PREPARE_PERSISTENT, &sp->ins[r],
					NULL);
		for (int i = 1; i < MULTI_ROWS; i++)
			sb_adds(&sql, r ? ",(?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?)");
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

int sponge_open(sponge **out, const char *spool_path, const char *config_path,
		unsigned flags)
{
	if (!out)
		return SPONGE_EINVAL;
	sponge *sp = sp_malloc(sizeof *sp);
	*out = sp;
	if (!sp)
		return SPONGE_ENOMEM;
	memset(sp, 0, sizeof *sp);
	sb_init(&sp->err, 4096);
	sb_init(&sp->cfg_error, 4096);
	sb_init(&sp->clean, 0);
	sb_init(&sp->parsed, 0);
	sb_init(&sp->qdata, 0);
	sp_config_defaults(&sp->cfg);

	int rc = pick_config(sp, config_path, flags);
	if (rc == SPONGE_OK)
		rc = pick_spool(sp, spool_path);
	if (rc == SPONGE_OK)
		rc = create_file(sp, flags);
	if (rc == SPONGE_OK)
		rc = canonical_path(sp);
	if (rc == SPONGE_OK)
		rc = open_db(sp);
	if (rc != SPONGE_OK)
		return rc;
	if (gethostname(sp->host, sizeof sp->host - 1) != 0 || !sp->host[0])
		snprintf(sp->host, sizeof sp->host, "localhost");
	sb_reset(&sp->err);
	return SPONGE_OK;
}

static int write_queue(sponge *sp, bool durable);

int sponge_close(sponge *sp)
{
	if (!sp)
		return SPONGE_OK;
	int rc = SPONGE_OK;
	if (sp->db && sp->qn)
		rc = write_queue(sp, true);
	/* The main file holds the data once a handle closes: copy the WAL
	 * into it (without waiting for readers or writers of other handles;
	 * the last handle to close also removes the WAL).  A checkpoint that
	 * fails, on a full disk say, loses nothing: the WAL keeps it all. */
	if (sp->db)
		sqlite3_wal_checkpoint_v2(sp->db, NULL,
					  SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	for (int r = 0; r < 2; r++) {
		sqlite3_finalize(sp->ins[r]);
		sqlite3_finalize(sp->ins_multi[r]);
	}
	sqlite3_close_v2(sp->db);
	sp_config_free(&sp->cfg);
	sp_free(sp->path);
	sp_free(sp->q);
	sb_free(&sp->qdata);
	sb_free(&sp->clean);
	sb_free(&sp->parsed);
	sb_free(&sp->err);
	sb_free(&sp->cfg_error);
	sp_free(sp);
	return rc;
}

int sp_shrink(sponge *sp)
{
	int64_t freel = 0, pages = 0;
	if (pragma_int(sp, "PRAGMA freelist_count", &freel) ||
	    pragma_int(sp, "PRAGMA page_count", &pages))
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

/* Insert n queued records (1 or MULTI_ROWS); the first gets id `id` when
 * id > 0, the others the next ids. */
static int insert_rows(sponge *sp, int n, int64_t id, const sp_queued *q)
{
	const char *d = sp->qdata.data;
	int rcv = 0;
	for (int i = 0; i < n && !rcv; i++)
		rcv = q[i].received_us != 0;
	sqlite3_stmt *st = n == 1 ? sp->ins[rcv] : sp->ins_multi[rcv];
	for (int i = 0, k = 1; i < n; i++, q++, k += 6 + rcv) {
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
		if (rcv && q->received_us)
			sqlite3_bind_int64(st, k + 6, q->received_us);
		else if (rcv)
			sqlite3_bind_null(st, k + 6);
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

/* Write every queued record in one transaction.  On failure the queue is
 * kept so nothing acknowledged-as-queued is silently dropped. */
static int write_queue(sponge *sp, bool durable)
{
	int rc;
	if (durable &&
	    (rc = exec(sp, "PRAGMA synchronous=FULL", "writing records")))
		return rc;
	if ((rc = exec(sp, "BEGIN IMMEDIATE", "writing records")))
		goto out;
	int64_t next = 0;
	bool caps = sp->cfg.max_records || sp->cfg.max_bytes;
	int64_t before[SP_COUNTS] = {0};
	if (caps)
		rc = sp_counts_get(sp, before, NULL);
	if (rc == SPONGE_OK &&
	    (rc = pragma_int(sp, NEXT_ID_SQL, &next)) == SPONGE_OK) {
		size_t i = 0;
		for (; rc == SPONGE_OK && i + MULTI_ROWS <= sp->qn;
		     i += MULTI_ROWS)
			rc = insert_rows(sp, MULTI_ROWS, i ? 0 : next,
					 &sp->q[i]);
		for (; rc == SPONGE_OK && i < sp->qn; i++)
			rc = insert_rows(sp, 1, i ? 0 : next, &sp->q[i]);
	}
	/* the counts, and for the caps the one record they must keep: the
	 * newest of the batch's most severe level, when that level is more
	 * severe than every pending record before the batch (ids follow the
	 * queue: one writer, SQLite's max(id)+1 after the first) */
	int64_t add[SP_COUNTS] = {0}, prot = 0;
	int top = 8, present = 8;
	for (size_t i = 0; i < sp->qn; i++) {
		int l = sp->q[i].level;
		add[l]++;
		if (l <= top) {
			top = l;
			prot = next + (int64_t)i;
		}
	}
	for (int l = 7; l >= 0; l--)
		if (before[l])
			present = l;
	if (rc == SPONGE_OK)
		rc = sp_counts_add(sp, add);
	if (rc == SPONGE_OK && caps)
		rc = sp_enforce_caps(sp, top < present ? prot : 0);
	if (rc == SPONGE_OK)
		rc = exec(sp, "COMMIT", "writing records");
	if (rc != SPONGE_OK) {
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	sp->qn = 0;
	sb_reset(&sp->qdata);
out:
	if (durable)
		sqlite3_exec(sp->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
			     NULL);
	return rc;
}

/* A clock for the batch age: a few ms resolution is plenty, and it costs
 * a fraction of a precise one (this runs once per record). */
static int64_t coarse_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int enqueue(sponge *sp, int64_t t, int64_t received, int level,
		   const char *tag,
		   size_t tlen, const char *host, size_t hlen, const char *msg,
		   size_t mlen)
{
	if (sp->qn == sp->qcap) {
		size_t ncap = sp->qcap ? sp->qcap * 2 : 256;
		sp_queued *nq = sp_realloc(sp->q, ncap * sizeof *nq);
		if (!nq)
			return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		sp->q = nq;
		sp->qcap = ncap;
	}
	size_t before = sp->qdata.len;
	if (!sb_add(&sp->qdata, tag, tlen) || !sb_add(&sp->qdata, host, hlen) ||
	    !sb_add(&sp->qdata, msg, mlen)) {
		sp->qdata.len = before;
		sp->qdata.data[before] = '\0';
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	if (sp->qn == 0)
		sp->q_first_us = coarse_now();
	sp->q[sp->qn++] = (sp_queued){t,	  received,	     level,
				      before,	  tlen,		     before + tlen,
				      hlen,	  before + tlen + hlen, mlen};
	return SPONGE_OK;
}

static bool queue_due(const sponge *sp)
{
	if (sp->batch_max <= 1 ||sp->qn >= sp->batch_max || sp->qdata.len >= sp->batch_bytes_max)
		return true;
	return sp->batch_ms &&
	       coarse_now() - sp->q_first_us >= (int64_t)sp->batch_ms * 1000;
}

#define TAG_MAX 64
#define HOST_MAX 255

size_t sponge_max_record(const sponge *sp)
{
	return sp ? (size_t)sp->cfg.max_record : 0;
}

/* Clean a short field (tag, host) into sp->clean; returns its length. */
static bool clean_field(sponge *sp, const char *s, size_t limit, size_t *len)
{
	size_t before = sp->clean.len, used;
	if (!sp_clean(&sp->clean, s, strlen(s), limit, &used))
		return false;
	*len = sp->clean.len - before;
	return true;
}

int sponge_append_entry(sponge *sp, const sponge_entry *e)
{
	if (!sp || !sp->db || !e)
		return SPONGE_EINVAL;
	if (e->level < 0 || e->level > 7)
		return sp_fail(sp, SPONGE_EINVAL, "level %d out of range 0…7",
			       e->level);
	if (!e->msg && e->len)
		return sp_fail(sp, SPONGE_EINVAL, "NULL message");
	const char *msg = e->msg ? e->msg : "";
	size_t len = e->len;
	/* A stated time is kept (clamped to years 0001-9999, so that no
	 * difference of two times overflows); when it is more than a minute
	 * away from now, when it was received is kept too. */
	int64_t t = e->time_us ? sp_clamp_time(e->time_us) : sponge_now();
	int64_t received = 0;
	if (e->time_us) {
		/* a minute's precision is all this needs: the clock is read
		 * once per batch (and every 1024 records) */
		if (!sp->qn || !(++sp->rcv_reads & 1023)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME_COARSE, &ts);
			sp->rcv_now = (int64_t)ts.tv_sec * 1000000 +
				      ts.tv_nsec / 1000;
		}
		if (t - sp->rcv_now > SP_RECEIVED_SLACK_US ||
		    sp->rcv_now - t > SP_RECEIVED_SLACK_US)
			received = sp->rcv_now;
	}

	/* Clean tag, host and (if needed) message into one scratch buffer. */
	sb_reset(&sp->clean);
	size_t tlen, hlen;
	if (!clean_field(sp, e->tag ? e->tag : "", TAG_MAX, &tlen) ||
	    !clean_field(sp, e->host ? e->host : sp->host, HOST_MAX, &hlen))
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	const char *m = msg;
	size_t mlen = len, moff = 0;
	size_t limit = sp->cfg.max_record;
	if (len > limit || e->cut_bytes || !sp_is_clean(msg, len)) {
		size_t used;
		moff = sp->clean.len;
		if (!sp_clean(&sp->clean, msg, len, limit, &used))
			return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		uint64_t cut = (uint64_t)(len - used) + e->cut_bytes;
		if (cut && !sb_printf(&sp->clean,
				      " [logsponge: cut %llu bytes]",
				      (unsigned long long)cut))
			return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		m = NULL; /* the buffer may have moved: set below */
		mlen = sp->clean.len - moff;
	}
	const char *tag = sp->clean.data, *host = sp->clean.data + tlen;
	if (!m)
		m = sp->clean.data + moff;

	int rc = enqueue(sp, t, received, e->level, tag, tlen, host, hlen, m,
			 mlen);
	if (rc == SPONGE_OK && queue_due(sp))
		rc = write_queue(sp, false);
	if (rc != SPONGE_OK && sp->batch_max <= 1 && sp->qn) {
		/* unbatched: the caller sees the failure; keep no queue */
		sp->qn = 0;
		sb_reset(&sp->qdata);
	}
	return rc;
}

int sponge_append(sponge *sp, int level, const char *tag, int64_t time_us,
		  const char *msg, size_t len)
{
	sponge_entry e = {level, tag, time_us, NULL, msg, len, 0};
	return sponge_append_entry(sp, &e);
}

int sponge_vlog(sponge *sp, int level, const char *tag, const char *fmt,
		va_list ap)
{
	if (!sp || !sp->db)
		return SPONGE_EINVAL;
	if (!fmt)
		return sp_fail(sp, SPONGE_EINVAL, "NULL format");
	spbuf b;
	sb_init(&b, 0);
	if (!sb_vprintf(&b, fmt, ap)) {
		sb_free(&b);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	int rc = sponge_append(sp, level, tag, 0, b.data, b.len);
	sb_free(&b);
	return rc;
}

int sponge_log(sponge *sp, int level, const char *tag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sponge_vlog(sp, level, tag, fmt, ap);
	va_end(ap);
	return rc;
}

int sponge_set_batch(sponge *sp, unsigned max_records, size_t max_bytes,
		     unsigned max_ms)
{
	if (!sp || !sp->db)
		return SPONGE_EINVAL;
	sp->batch_max = max_records;
	sp->batch_bytes_max = max_bytes ? max_bytes : SIZE_MAX;
	sp->batch_ms = max_ms;
	if (max_records <= 1 && sp->qn)
		return write_queue(sp, false);
	return SPONGE_OK;
}

size_t sponge_queued(const sponge *sp) { return sp ? sp->qn : 0; }

int sponge_sync(sponge *sp)
{
	if (!sp || !sp->db)
		return SPONGE_EINVAL;
	if (sp->qn)
		return write_queue(sp, true);
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

size_t sponge_discard_queue(sponge *sp, sponge_writer out, void *arg)
{
	if (!sp)
		return 0;
	size_t n = sp->qn;
	const char *d = sp->qdata.data;
	bool ok = out != NULL;
	for (size_t i = 0; i < n && ok; i++)
		ok = out(arg, d + sp->q[i].msg_off, sp->q[i].msg_len) == 0 &&
		     out(arg, "\n", 1) == 0;
	sp->qn = 0;
	sb_reset(&sp->qdata);
	return n;
}
