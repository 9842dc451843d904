/* flush.c - decide, compose, hand to a transport, then commit or keep. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <zlib.h>

#include "flush.h"

/* ---- small SQL helpers -------------------------------------------- */

static int64_t scalar(sponge *sp, const char *sql, int64_t arg, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int r = sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, arg);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			v = sqlite3_column_int64(st, 0);
			r = SQLITE_OK;
		} else if (r == SQLITE_DONE) {
			r = SQLITE_OK;
		}
		sqlite3_finalize(st);
	}
	if (r != SQLITE_OK && *rc == SPONGE_OK)
		*rc = sp_dberr(sp, r, "reading the batch");
	return v;
}

static int meta_get(sponge *sp, const char *key, spbuf *out)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db, "SELECT value FROM meta WHERE key=?",
				   -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "reading meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sb_reset(out);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		sb_adds(out, v ? v : "");
		r = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading meta");
}

static int exec_sql(sponge *sp, const char *sql, const char *what)
{
	int r = sqlite3_exec(sp->db, sql, NULL, NULL, NULL);
	return r == SQLITE_OK ? SPONGE_OK : sp_dberr(sp, r, what);
}

static int meta_set(sponge *sp, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		value ? "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)"
		      : "DELETE FROM meta WHERE key=?",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "writing meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "writing meta");
}

/* meta_set in a transaction of its own. */
static int meta_commit(sponge *sp, const char *key, const char *value,
		       const char *what)
{
	int rc = exec_sql(sp, "BEGIN IMMEDIATE", what);
	if (rc)
		return rc;
	rc = meta_set(sp, key, value);
	if (rc == SPONGE_OK)
		rc = exec_sql(sp, "COMMIT", what);
	if (rc != SPONGE_OK)
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* A random token naming this spool in Message-IDs (made with the schema;
 * made here for spools from before that). */
static int spool_token(sponge *sp, char tok[33])
{
	spbuf v;
	sb_init(&v, 0);
	int rc = meta_get(sp, "spool_token", &v);
	if (rc == SPONGE_OK && v.len == 32) {
		memcpy(tok, v.data, 33);
		sb_free(&v);
		return SPONGE_OK;
	}
	sb_free(&v);
	if (rc != SPONGE_OK)
		return rc;
	unsigned char r[16];
	sqlite3_randomness(sizeof r, r);
	for (int i = 0; i < 16; i++)
		snprintf(tok + 2 * i, 3, "%02x", r[i]);
	return meta_commit(sp, "spool_token", tok, "writing meta");
}

static int history_row(sponge *sp, const char *outcome, const char *stage,
		       const char *reply, const sp_batch *b)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(
		sp->db,
		"INSERT INTO history(time,outcome,stage,reply,records,first_id,"
		"last_id,message_id) VALUES(?,?,?,?,?,?,?,?)",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "writing history");
	sqlite3_bind_int64(st, 1, sponge_now());
	sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, stage ? stage : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, reply ? reply : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, b ? b->count : 0);
	if (b && b->count) {
		sqlite3_bind_int64(st, 6, b->first_id);
		sqlite3_bind_int64(st, 7, b->max_id);
	}
	sqlite3_bind_text(st, 8, b ? b->message_id : "", -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? SPONGE_OK
				: sp_dberr(sp, r, "writing history");
}

/* ---- the lock ----------------------------------------------------- */

static void journal_reserve(int fd);

static int take_lock(sponge *sp, int *fd)
{
	spbuf p;
	sb_init(&p, 0);
	sb_printf(&p, "%s.lock", sp->path);
	if (p.failed) {
		sb_free(&p);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	*fd = open(p.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int rc = sp_fail(sp, SPONGE_EIO, "%s: %s", p.data,
				 strerror(errno));
		sb_free(&p);
		return rc;
	}
	/* The lock belongs to the spool's owner, whoever made it (root
	 * flushing a user's spool must not lock the user out). */
	struct stat spst, lkst;
	if (geteuid() == 0 && stat(sp->path, &spst) == 0 &&
	    fstat(*fd, &lkst) == 0 &&
	    (lkst.st_uid != spst.st_uid || lkst.st_gid != spst.st_gid) &&
	    fchown(*fd, spst.st_uid, spst.st_gid) != 0) {
		int rc = sp_fail(sp, SPONGE_EIO, "%s: %s", p.data,
				 strerror(errno));
		close(*fd);
		*fd = -1;
		sb_free(&p);
		return rc;
	}
	journal_reserve(*fd);
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		int rc = e == EWOULDBLOCK
				 ? sp_fail(sp, SPONGE_EBUSY,
					   "%s: another flush of this spool is "
					   "running", sp->path)
				 : sp_fail(sp, SPONGE_EIO, "%s: %s", p.data,
					   strerror(e));
		sb_free(&p);
		return rc;
	}
	sb_free(&p);
	return SPONGE_OK;
}

/*
 * The lock file is also the flush's journal.  It gets JOURNAL_SIZE bytes
 * of disk when it is made, so that later writes inside them need no new
 * space: after the server's final 250 an "accepted" line goes there
 * (synced) before the bulk delete, which needs room in the WAL.  When the
 * delete fails (a full disk), the next flush finishes it from the journal
 * instead of sending the batch again.
 */
#define JOURNAL_SIZE 4096
#define JOURNAL_TAG "logsponge-accepted 1 "

static void journal_reserve(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size < JOURNAL_SIZE)
		(void)posix_fallocate(fd, 0, JOURNAL_SIZE); /* best effort */
}

/* After the server's 250: remember the batch as accepted.  Fields: max
 * id, first id, count, the reported drops, Message-ID, the reply. */
static bool journal_accept(int fd, const sp_batch *b, const char *reply)
{
	char line[JOURNAL_SIZE];
	int n = snprintf(line, sizeof line - 1,
			 JOURNAL_TAG "%lld %lld %lld", (long long)b->max_id,
			 (long long)b->first_id, (long long)b->count);
	for (int l = 0; l < 8; l++)
		n += snprintf(line + n, sizeof line - 1 - (size_t)n, " %lld",
			      (long long)b->dropped[l]);
	n += snprintf(line + n, sizeof line - 1 - (size_t)n, " %s %.1500s",
		      b->message_id, reply);
	for (int i = 0; i < n; i++) /* one line */
		if (line[i] == '\n' || line[i] == '\r' || line[i] == '\0')
			line[i] = ' ';
	line[n++] = '\n';
	return pwrite(fd, line, (size_t)n, 0) == n && fdatasync(fd) == 0;
}

static void journal_clear(int fd)
{
	if (pwrite(fd, "\n", 1, 0) == 1)
		(void)fdatasync(fd);
}

/* A batch accepted but not yet removed, from the journal: fills b (the
 * fields the commit needs) and reply; false when there is none. */
static bool journal_pending(int fd, sp_batch *b, spbuf *reply)
{
	char line[JOURNAL_SIZE + 1];
	ssize_t n = pread(fd, line, JOURNAL_SIZE, 0);
	if (n <= (ssize_t)strlen(JOURNAL_TAG) ||
	    memcmp(line, JOURNAL_TAG, strlen(JOURNAL_TAG)) != 0)
		return false;
	line[n] = '\0';
	char *nl = strchr(line, '\n');
	if (!nl)
		return false; /* torn: the 250 was not recorded */
	*nl = '\0';
	memset(b, 0, sizeof *b);
	char *p = line + strlen(JOURNAL_TAG), *end;
	int64_t v[11];
	for (int i = 0; i < 11; i++) {
		errno = 0;
		v[i] = strtoll(p, &end, 10);
		if (end == p || errno)
			return false;
		p = end;
	}
	b->max_id = v[0];
	b->first_id = v[1];
	b->count = v[2];
	memcpy(b->dropped, v + 3, sizeof b->dropped);
	while (*p == ' ')
		p++;
	size_t mlen = strcspn(p, " ");
	if (!mlen || mlen >= sizeof b->message_id)
		return false;
	memcpy(b->message_id, p, mlen);
	b->message_id[mlen] = '\0';
	p += mlen;
	if (*p == ' ')
		p++;
	sb_reset(reply);
	sb_adds(reply, p);
	return b->max_id > 0;
}

/* ---- expire ------------------------------------------------------- */

/* Drop pending records older than policy.expire (they never triggered a
 * send).  One transaction with a history row saying how many. */
static int expire(sponge *sp, int64_t now, int64_t *dropped)
{
	*dropped = 0;
	if (!sp->cfg.policy.expire_us)
		return SPONGE_OK;
	int rc = exec_sql(sp, "BEGIN IMMEDIATE", "expiring");
	if (rc)
		return rc;
	sqlite3_stmt *st;
	int r = sqlite3_exec(sp->db, ID_FLOOR_SQL, NULL, NULL, NULL);
	if (r == SQLITE_OK)
		r = sqlite3_prepare_v2(sp->db,
				       "DELETE FROM records WHERE "
				       SP_RECEIVED_SQL " < ? AND sent IS NULL "
				       "RETURNING level, sent",
				       -1,
				       &st, NULL);
	if (r != SQLITE_OK) {
		rc = sp_dberr(sp, r, "expiring");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, sp_sub(now, sp->cfg.policy.expire_us));
	rc = sp_counts_step(sp, st, false, dropped, "expiring");
	sqlite3_finalize(st);
	if (rc)
		goto fail;
	if (*dropped) {
		char msg[96];
		snprintf(msg, sizeof msg, "%lld records older than "
					  "policy.expire dropped",
			 (long long)*dropped);
		sp_batch b;
		memset(&b, 0, sizeof b);
		b.count = *dropped;
		if ((rc = history_row(sp, "expired", "", msg, &b)))
			goto fail;
	}
	if ((rc = exec_sql(sp, "COMMIT", "expiring")))
		goto fail;
	if (*dropped)
		sp_shrink(sp);
	return SPONGE_OK;
fail:
	sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	*dropped = 0;
	return rc;
}

/* ---- the batch ---------------------------------------------------- */

static void cut_utf8(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	memcpy(s + max, "…", 4); /* 3 bytes + NUL; callers leave room */
}

/* The host name as a Message-ID domain (dot-atom characters only). */
static void message_id_domain(const sponge *sp, char host[256])
{
	size_t j = 0;
	for (const char *h = sp->host; *h && j < 255; h++)
		if ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		    (*h >= '0' && *h <= '9') || *h == '.' || *h == '-')
			host[j++] = *h;
	host[j] = '\0';
	if (!j)
		snprintf(host, 256, "localhost");
}

/* Expand the subject template: {host} {count} {records} {level} {tag}
 * {first} and the level names ({err} = count of err records). */
static void expand_subject(sponge *sp, sp_batch *b, const char *first)
{
	/* a heartbeat (no records) reads well with the default; a template
	 * of the user's applies to it too, {first} saying what it is */
	const char *tpl = sp->cfg.subject ? sp->cfg.subject
			  : b->count	  ? "[logsponge] {host}: {count} "
					    "{records}, highest {level}: {first}"
					  : "[logsponge] {host}: {first}";
	spbuf o;
	sb_init(&o, 900);
	for (const char *p = tpl; *p;) {
		const char *close = *p == '{' ? strchr(p, '}') : NULL;
		if (!close) {
			sb_addc(&o, *p++);
			continue;
		}
		size_t n = (size_t)(close - p - 1);
		char name[24] = "";
		if (n < sizeof name)
			memcpy(name, p + 1, n), name[n] = '\0';
		int lv = sponge_level_from_name(name);
		if (!strcmp(name, "host"))
			sb_adds(&o, sp->host);
		else if (!strcmp(name, "count"))
			sb_printf(&o, "%lld", (long long)b->count);
		else if (!strcmp(name, "records"))
			sb_adds(&o, b->count == 1 ? "record" : "records");
		else if (!strcmp(name, "level"))
			sb_adds(&o, sponge_level_name(b->highest));
		else if (!strcmp(name, "tag"))
			sb_adds(&o, b->first_tag[0] ? b->first_tag : "-");
		else if (!strcmp(name, "first"))
			sb_adds(&o, first);
		else if (lv >= 0 && !strcmp(name, sponge_level_name(lv)))
			sb_printf(&o, "%lld", (long long)b->by_level[lv]);
		else {
			sb_addc(&o, *p++); /* not a token: keep the text */
			continue;
		}
		p = close + 1;
	}
	snprintf(b->subject, sizeof b->subject - 4, "%s", o.data);
	cut_utf8(b->subject, 200);
	sb_free(&o);
}

/* Everything the headers and the summary need, in two scans: one over
 * levels (counts, times, the first record of each level) and one over
 * tags.  The message itself is a third scan, the commit a fourth. */
/* Tag counts for the summary: up to TAG_SLOTS distinct tags, the rest
 * counted together. */
#define TAG_SLOTS 256
typedef struct tag_count {
	char tag[72];
	int64_t n;
} tag_count;

static void count_tag(tag_count *t, int64_t *others, const char *tag)
{
	size_t n = strlen(tag);
	if (n >= sizeof t->tag)
		n = sizeof t->tag - 1;
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)tag[i]) * 16777619u;
	for (unsigned k = 0; k < TAG_SLOTS; k++) {
		tag_count *c = &t[(h + k) % TAG_SLOTS];
		if (!c->n) {
			memcpy(c->tag, tag, n);
			c->tag[n] = '\0';
			c->n = 1;
			return;
		}
		if (strncmp(c->tag, tag, n) == 0 && c->tag[n] == '\0') {
			c->n++;
			return;
		}
	}
	(*others)++;
}

/* "backup 80, cron 27, - 16, …": the five most frequent tags. */
static void top_tags(sp_batch *b, tag_count *t, int64_t others)
{
	spbuf o;
	sb_init(&o, sizeof b->tags - 8);
	for (int shown = 0; shown < 5; shown++) {
		tag_count *best = NULL;
		for (unsigned k = 0; k < TAG_SLOTS; k++)
			if (t[k].n > 0 && (!best || t[k].n > best->n ||
					   (t[k].n == best->n &&
					    strcmp(t[k].tag, best->tag) < 0)))
				best = &t[k];
		if (!best)
			break;
		if (!shown)
			snprintf(b->first_tag, sizeof b->first_tag, "%s",
				 best->tag);
		sb_printf(&o, "%s%s %lld", shown ? ", " : "",
			  best->tag[0] ? best->tag : "-", (long long)best->n);
		best->n = -best->n; /* taken */
	}
	bool more = others > 0;
	for (unsigned k = 0; k < TAG_SLOTS && !more; k++)
		more = t[k].n > 0;
	if (more)
		sb_adds(&o, ", …");
	snprintf(b->tags, sizeof b->tags, "%s", o.data);
	sb_free(&o);
}

/* The batch's counts, times, first record of each level and its tags, in
 * one pass over the rows (no sorting). */
static int load_levels(sponge *sp, int64_t max_id, sp_batch *b)
{
	memset(b, 0, sizeof *b);
	b->highest = 7;
	b->date_us = sponge_now();
	tag_count *tags = sp_malloc(TAG_SLOTS * sizeof *tags);
	if (!tags)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	memset(tags, 0, TAG_SLOTS * sizeof *tags);
	int64_t others = 0;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db,
				   "SELECT id, time, level, tag, "
				   "length(CAST(message AS BLOB)), "
				   SP_RECEIVED_SQL " FROM records "
				   "WHERE id <= ? AND sent IS NULL",
				   -1, &st, NULL);
	if (r != SQLITE_OK) {
		sp_free(tags);
		return sp_dberr(sp, r, "reading the batch");
	}
	sqlite3_bind_int64(st, 1, max_id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int64_t t = sqlite3_column_int64(st, 1);
		int l = sqlite3_column_int(st, 2) & 7;
		const char *tag = (const char *)sqlite3_column_text(st, 3);
		int64_t rcv = sqlite3_column_int64(st, 5);
		if (!b->count++) {
			b->first_id = id;
			b->t_first = b->t_last = t;
			b->r_first = rcv;
		}
		if (rcv < b->r_first)
			b->r_first = rcv;
		b->max_id = id;
		if (t < b->t_first)
			b->t_first = t;
		if (t > b->t_last)
			b->t_last = t;
		if (!b->by_level[l]++)
			b->first_of[l] = id;
		if (l < b->highest)
			b->highest = l;
		count_tag(tags, &others, tag ? tag : "");
		b->msg_bytes += sqlite3_column_int64(st, 4) +
				sqlite3_column_bytes(st, 3);
	}
	sqlite3_finalize(st);
	if (r == SQLITE_DONE)
		top_tags(b, tags, others);
	sp_free(tags);
	return r == SQLITE_DONE ? SPONGE_OK : sp_dberr(sp, r, "reading the batch");
}

static int load_details(sponge *sp, sp_batch *b)
{
	int64_t max_id = b->max_id;
	sqlite3_stmt *st;
	int rc = sp_dropped(sp, b->dropped);
	/* ids are a rowid range: these two are lookups, not scans */
	b->waiting_after = scalar(
		sp, "SELECT count(*) FROM records WHERE id > ? AND sent IS NULL",
		max_id, &rc);
	char first[256] = "";
	if (sqlite3_prepare_v2(sp->db,
			       "SELECT substr(message, 1, 200) FROM records "
			       "WHERE id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, b->first_of[b->highest]);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(first, sizeof first - 4, "%s",
				 (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	cut_utf8(first, 60);
	expand_subject(sp, b, first);

	char tok[33];
	if (rc == SPONGE_OK)
		rc = spool_token(sp, tok);
	if (rc == SPONGE_OK) {
		/* same batch, same Message-ID: a retry after a crash between
		 * the server's 250 and our commit is recognisable */
		char host[256];
		message_id_domain(sp, host);
		snprintf(b->message_id, sizeof b->message_id,
			 "logsponge.%lld-%lld.%s@%s", (long long)b->first_id,
			 (long long)b->max_id, tok, host);
	}
	return rc;
}

/* A heartbeat: no records, a subject and Message-ID like a digest's. */
static int heartbeat_details(sponge *sp, sp_batch *b, int64_t now)
{
	char tok[33], since[32], first[96];
	int rc = spool_token(sp, tok);
	if (rc)
		return rc;
	sponge_format_time(b->since_us, since);
	/* to the second: "2026-11-21T10:00:00Z" */
	snprintf(first, sizeof first, "nothing to report since %.19sZ", since);
	expand_subject(sp, b, first);
	char host[256];
	message_id_domain(sp, host);
	snprintf(b->message_id, sizeof b->message_id,
		 "logsponge.heartbeat.%lld.%s@%s", (long long)now, tok, host);
	return SPONGE_OK;
}

static int check_mail_config(sponge *sp, const sp_transport *t)
{
	const sp_config *c = &sp->cfg;
	const char *where = c->path ? c->path : "(no config file)";
	if (!t)
		return sp_fail(sp, SPONGE_ECONFIG, "%s: unknown transport",
			       where);
	if (!c->from)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "%s: mail.from is not set", where);
	if (!c->nto)
		return sp_fail(sp, SPONGE_ECONFIG, "%s: mail.to is not set",
			       where);
	spbuf why;
	sb_init(&why, 256);
	int rc = SPONGE_OK;
	if (t->config_ok && !t->config_ok(c, &why))
		rc = sp_fail(sp, SPONGE_ECONFIG, "%s: %s", where, why.data);
	sb_free(&why);
	return rc;
}

/* Read the SMTP password: password_file, password_command, or
 * $LOGSPONGE_SMTP_PASSWORD (first line only).  The caller wipes it. */
int sp_password(sponge *sp, spbuf *out)
{
	const sp_config *c = &sp->cfg;
	sb_reset(out);
	if (c->password_file) {
		FILE *f = fopen(c->password_file, "re");
		if (!f)
			return sp_fail(sp, SPONGE_ECONFIG, "%s: %s",
				       c->password_file, strerror(errno));
		int ch;
		while ((ch = fgetc(f)) != EOF && ch != '\n' && out->len < 1024)
			sb_addc(out, (char)ch);
		fclose(f);
	} else if (c->password_command) {
		/* bounded like every wait of a flush: smtp.timeout, a few
		 * KiB of output, and the whole process group killed on
		 * timeout (a pinentry waiting for a human, a command that
		 * prints forever, a child left holding the pipe) */
		spbuf why;
		sb_init(&why, 512);
		int rc = sp_run_command(c->password_command, c->timeout_us,
					SP_COMMAND_OUTPUT_MAX, out, &why);
		if (rc != SPONGE_OK) {
			sp_fail(sp, rc, "smtp.password_command: %s", why.data);
			sb_free(&why);
			return rc;
		}
		sb_free(&why);
		char *nl = memchr(out->data, '\n', out->len);
		if (nl) { /* the first line is the password */
			out->len = (size_t)(nl - out->data);
			out->data[out->len] = '\0';
		}
	} else {
		const char *e = getenv("LOGSPONGE_SMTP_PASSWORD");
		if (!e)
			return sp_fail(sp, SPONGE_ECONFIG,
				       "smtp.user is set but there is no "
				       "password: set smtp.password_file, "
				       "smtp.password_command or "
				       "LOGSPONGE_SMTP_PASSWORD");
		sb_adds(out, e);
	}
	if (out->len && out->data[out->len - 1] == '\r')
		out->data[--out->len] = '\0';
	if (out->len > 255)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "the SMTP password is longer than 255 bytes");
	return out->failed ? sp_fail(sp, SPONGE_ENOMEM, "out of memory")
			   : SPONGE_OK;
}

/* ---- the size cap --------------------------------------------------- */

/* Would the plain message (no attachment) stay within mail.max_size?
 * Composes it without sending, and stops counting past the cap. */
static int plain_fits(sponge *sp, sp_batch *b, bool *fits)
{
	/* sure bounds first: quoted-printable at most triples a byte and
	 * adds a soft break per 25; a record line adds under 130 bytes of
	 * time, level, host and folding note; headers and summary under
	 * 16 KiB */
	uint64_t most = (uint64_t)b->msg_bytes * 3 + (uint64_t)b->msg_bytes / 8 +
			(uint64_t)b->count * 130 + (16u << 10);
	if (sp->cfg.html) /* the HTML part: escaping up to 6x, a row's tags */
		most += (uint64_t)b->msg_bytes * 19 + (uint64_t)b->count * 400;
	*fits = true;
	if (most <= b->max_size)
		return SPONGE_OK;
	if ((uint64_t)b->msg_bytes > b->max_size) {
		*fits = false; /* the messages alone are too big */
		return SPONGE_OK;
	}
	sp_composer cc;
	sp_compose_init(&cc, sp, b);
	int rc = sp_compose_rewind(&cc);
	uint64_t total = 0;
	size_t n;
	while (rc == SPONGE_OK && total <= b->max_size &&
	       sp_compose_next(&cc, &n))
		total += n;
	if (rc == SPONGE_OK)
		rc = cc.rc;
	sp_compose_free(&cc);
	*fits = total <= b->max_size;
	return rc;
}

/* gzip the batch's log (one line per record, oldest first) into a
 * temporary file, within `budget` compressed bytes: when it does not fit,
 * stop at an earlier record and return its id in *last (else 0).  Memory
 * is zlib's state and one line. */
static int gzip_log(sponge *sp, const sp_batch *b, uint64_t budget,
		    FILE **out, uint64_t *bytes, int64_t *last)
{
	*out = NULL;
	*last = 0;
	FILE *f = tmpfile();
	if (!f)
		return sp_fail(sp, SPONGE_EIO, "attachment: temporary file: %s",
			       strerror(errno));
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)) {
		fclose(f);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	sponge_filter flt;
	memset(&flt, 0, sizeof flt);
	flt.max_id = b->max_id;
	sponge_iter *it = NULL;
	int rc = sponge_query(sp, &flt, &it);
	spbuf line;
	sb_init(&line, 0);
	unsigned char buf[65536];
	int64_t tsec = 0, prev = 0;
	char tbuf[32];
	const sponge_record *r;
	/* deflate keeps up to ~64 KiB to itself: cut early enough */
	uint64_t margin = budget / 16 + (32u << 10);
	int zr = Z_OK, q = SPONGE_OK;
	while (rc == SPONGE_OK && (q = sponge_query_next(it, &r)) == SPONGE_ROW) {
		if (z.total_out + margin > budget && prev) {
			*last = prev;
			break;
		}
		sb_reset(&line);
		sp_record_line(&line, r, sp->host, &tsec, tbuf);
		sb_addc(&line, '\n');
		if (line.failed) {
			rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
			break;
		}
		z.next_in = (unsigned char *)line.data;
		z.avail_in = (unsigned)line.len;
		while (z.avail_in && rc == SPONGE_OK) {
			z.next_out = buf;
			z.avail_out = sizeof buf;
			zr = deflate(&z, Z_NO_FLUSH);
			size_t have = sizeof buf - z.avail_out;
			if (zr == Z_STREAM_ERROR ||
			    fwrite(buf, 1, have, f) != have)
				rc = sp_fail(sp, SPONGE_EIO, "attachment: %s",
					     strerror(errno));
		}
		prev = r->id;
	}
	if (rc == SPONGE_OK && q != SPONGE_ROW && q != SPONGE_DONE)
		rc = q;
	do { /* the rest */
		z.next_out = buf;
		z.avail_out = sizeof buf;
		zr = deflate(&z, Z_FINISH);
		size_t have = sizeof buf - z.avail_out;
		if (rc == SPONGE_OK && fwrite(buf, 1, have, f) != have)
			rc = sp_fail(sp, SPONGE_EIO, "attachment: %s",
				     strerror(errno));
	} while (zr == Z_OK && rc == SPONGE_OK);
	*bytes = z.total_out;
	deflateEnd(&z);
	sponge_query_close(it);
	sb_free(&line);
	if (rc == SPONGE_OK && fflush(f) != 0)
		rc = sp_fail(sp, SPONGE_EIO, "attachment: %s", strerror(errno));
	if (rc != SPONGE_OK) {
		fclose(f);
		return rc;
	}
	*out = f;
	return SPONGE_OK;
}

/*
 * Past mail.max_size the body keeps the summary and the most severe
 * records that fit, and the complete log goes along as a gzip attachment.
 * When even that would not fit, the batch shrinks to the oldest records
 * whose log fits; the rest stays pending.
 */
static int fit_size(sponge *sp, sp_batch *b)
{
	/* the server's SIZE, seen in its EHLO reply by an earlier flush,
	 * lowers the cap (less 4 KiB for what libESMTP and the server add) */
	b->max_size = sp->cfg.max_size;
	spbuf v;
	sb_init(&v, 0);
	if (meta_get(sp, "server_size", &v) == SPONGE_OK && v.len) {
		uint64_t ss = strtoull(v.data, NULL, 10);
		if (ss > (64u << 10) && ss - 4096 < b->max_size)
			b->max_size = ss - 4096;
	}
	sb_free(&v);
	bool fits;
	int rc = plain_fits(sp, b, &fits);
	if (rc || fits)
		return rc;
	uint64_t max = b->max_size;
	/* base64 turns 57 bytes into a 78-byte line; keep 24 KiB for the
	 * headers, the summary and a few records in the body */
	uint64_t budget = (max - (24u << 10)) / 78 * 57;
	int64_t arrivals = b->waiting_after;
	for (int attempt = 0; attempt < 6; attempt++) {
		FILE *f;
		uint64_t bytes;
		int64_t last;
		if ((rc = gzip_log(sp, b, budget, &f, &bytes, &last)))
			return rc;
		if (bytes > (max - (24u << 10)) / 78 * 57) {
			fclose(f); /* over after all: aim lower */
			budget = budget / 10 * 8;
			continue;
		}
		if (last) { /* the batch shrinks to what the log holds */
			/* what the plan decided stays (reloading the counts
			 * once lost the size cap and the min_interval wait) */
			uint64_t cap = b->max_size;
			int64_t waited = b->min_interval_us;
			if ((rc = load_levels(sp, last, b)) ||
			    (rc = load_details(sp, b))) {
				fclose(f);
				return rc;
			}
			b->max_size = cap;
			b->min_interval_us = waited;
			/* records past the new end: cut, or arrived late */
			b->cut = b->waiting_after - arrivals;
			b->waiting_after = arrivals;
		}
		b->gz = f;
		b->gz_bytes = bytes;
		uint64_t b64 = (bytes + 56) / 57 * 78;
		b->body_budget = (int64_t)(max - b64) - 2048;
		char t[32];
		sponge_format_time(b->date_us, t);
		t[4] = t[7] = t[13] = t[16] = '_';
		t[19] = '\0';
		snprintf(b->gz_name, sizeof b->gz_name, "logsponge-%.60s-%s.log.gz",
			 sp->host, t);
		for (char *p = b->gz_name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || strchr(".-_", *p)))
				*p = '_';
		return SPONGE_OK;
	}
	return sp_fail(sp, SPONGE_EIO, "the batch does not fit in "
				       "mail.max_size even compressed");
}

/* ---- flush -------------------------------------------------------- */


/* When the last message went out; with none yet, when logsponge first
 * looked (remembered in meta), so a heartbeat has a start. */
/* A last message "in the future" (it went while the clock was ahead)
 * counts from when a flush first saw it there, so that min_interval holds
 * mail back for at most min_interval after the clock came back. */
static int64_t not_in_future(sponge *sp, int64_t t, int64_t now, bool dry)
{
	if (t <= now)
		return t;
	spbuf v;
	sb_init(&v, 0);
	int64_t seen = 0, was = 0;
	if (meta_get(sp, "future_last", &v) == SPONGE_OK && v.len) {
		char *end;
		was = strtoll(v.data, &end, 10);
		seen = was == t ? strtoll(end, NULL, 10) : 0;
	}
	if (!seen || seen > now) {
		seen = now;
		char s[64];
		snprintf(s, sizeof s, "%lld %lld", (long long)t, (long long)now);
		if (!dry)
			meta_commit(sp, "future_last", s, "writing meta");
	}
	sb_free(&v);
	return seen;
}

static int64_t last_message(sponge *sp, int64_t now, bool dry)
{
	int rc = SPONGE_OK;
	int64_t t = scalar(sp, "SELECT coalesce(max(time), 0) FROM history "
			       "WHERE outcome = 'sent' AND time > ?", 0, &rc);
	if (t || rc)
		return rc ? t : not_in_future(sp, t, now, dry);
	spbuf v;
	sb_init(&v, 0);
	if (meta_get(sp, "watch_since", &v) == SPONGE_OK && v.len)
		t = strtoll(v.data, NULL, 10);
	sb_free(&v);
	if (!t && !dry) {
		char s[32];
		snprintf(s, sizeof s, "%lld", (long long)now);
		meta_commit(sp, "watch_since", s, "writing meta");
	}
	return t > now ? now : t;
}

static const char *outcome_name(int o)
{
	static const char *const n[] = {"local", "sent", "temporary",
					"permanent", "auth", "tls", "config",
					"local"};
	return o >= 0 && o <= SP_LOCAL ? n[o] : "local";
}

static int outcome_code(int o)
{
	switch (o) {
	case SP_SENT: return SPONGE_OK;
	case SP_TEMPORARY: return SPONGE_ETEMPFAIL;
	case SP_PERMANENT: return SPONGE_EPERMFAIL;
	case SP_AUTH: return SPONGE_EAUTH;
	case SP_TLS: return SPONGE_ETLS;
	case SP_CONFIG: return SPONGE_ECONFIG;
	default: return SPONGE_EIO;
	}
}

/* [spool] keep_sent: forget sent records once their message is older
 * than the retention time (inside the caller's transaction). */
static int forget_sent(sponge *sp, int64_t now)
{
	if (!sp->cfg.keep_sent_us)
		return SPONGE_OK;
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(sp->db,
				   "DELETE FROM records WHERE sent IN (SELECT id "
				   "FROM history WHERE time < ?) RETURNING level, "
				   "sent", -1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "forgetting sent records");
	sqlite3_bind_int64(st, 1, sp_sub(now, sp->cfg.keep_sent_us));
	int rc = sp_counts_step(sp, st, false, NULL, "forgetting sent records");
	sqlite3_finalize(st);
	return rc;
}

/* Inside the commit's transaction: remove the batch (or, with keep_sent,
 * mark it as carried by history row `hist`) and keep the counts. */
static int remove_batch(sponge *sp, const sp_batch *b, int64_t hist)
{
	int rc = SPONGE_OK;
	bool keep = sp->cfg.keep_sent_us != 0;
	/* Under the write lock: when nothing else is in the table, an
	 * unqualified DELETE (SQLite's truncate optimisation) frees the
	 * pages without visiting every row. */
	bool all = !keep &&
		   scalar(sp, "SELECT count(*) FROM records WHERE id > ?",
			  b->max_id, &rc) == 0 &&
		   scalar(sp, "SELECT EXISTS (SELECT 1 FROM records WHERE "
			      "sent IS NOT NULL AND sent > ?)", 0, &rc) == 0;
	if (rc)
		return rc;
	/* the batch's counts by level, when its plan has them (a batch
	 * finished from the journal has not: count them first) */
	int64_t planned = 0;
	for (int l = 0; l < 8; l++)
		planned += b->by_level[l];
	bool known = planned == b->count && b->count > 0;
	if (!all && !known &&
	    (rc = sp_counts_batch_gone(sp, b->max_id, keep)))
		return rc;
	sqlite3_stmt *st = NULL;
	int r = sqlite3_prepare_v2(
		sp->db,
		keep  ? "UPDATE records SET sent = ?2 WHERE id <= ?1 AND sent "
			"IS NULL"
		: all ? "DELETE FROM records"
		      : "DELETE FROM records WHERE id <= ?1 AND sent IS NULL",
		-1, &st, NULL);
	if (r != SQLITE_OK)
		return sp_dberr(sp, r, "committing the flush");
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, b->max_id);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, hist);
	r = sqlite3_step(st);
	if (r != SQLITE_DONE)
		rc = sp_dberr(sp, r, "committing the flush");
	sqlite3_finalize(st);
	if (rc == SPONGE_OK && !all && known) {
		if (sqlite3_changes64(sp->db) == b->count) {
			int64_t d[SP_COUNTS] = {0};
			for (int l = 0; l < 8; l++)
				d[l] = -b->by_level[l];
			d[SP_COUNT_SENT] = keep ? b->count : 0;
			rc = sp_counts_add(sp, d);
		} else {
			/* a purge or a cap took some meanwhile */
			rc = sp_counts_recount(sp);
		}
	}
	if (rc == SPONGE_OK && all)
		rc = exec_sql(sp, "UPDATE counts SET n = 0",
			      "committing the flush");
	if (rc == SPONGE_OK)
		rc = sp_counts_moved_past(sp, b->max_id);
	return rc;
}

/* The drops this message reported are reported: take them off. */
static int unreport_drops(sponge *sp, const sp_batch *b)
{
	int rc = SPONGE_OK;
	for (int l = 0; l < 8 && rc == SPONGE_OK; l++) {
		if (!b->dropped[l])
			continue;
		char sql[128];
		snprintf(sql, sizeof sql,
			 "UPDATE meta SET value = value - %lld WHERE key = "
			 "'dropped_%d'", (long long)b->dropped[l], l);
		rc = exec_sql(sp, sql, "committing the flush");
	}
	return rc;
}

/* True when history already has this batch as sent (a commit finished
 * from the journal that had in fact gone through). */
static bool already_committed(sponge *sp, const sp_batch *b)
{
	sqlite3_stmt *st = NULL;
	bool done = false;
	if (sqlite3_prepare_v2(sp->db, "SELECT 1 FROM history WHERE outcome = "
				       "'sent' AND message_id = ? AND last_id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, b->message_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, b->max_id);
		done = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return done;
}

/* After the server's final 250: remove (or, with keep_sent, mark) exactly
 * the batch, write the history row, forget the in-flight marker, all in
 * one transaction. */
static int commit_sent(sponge *sp, const sp_batch *b, const char *reply)
{
	int rc = exec_sql(sp, "BEGIN IMMEDIATE", "committing the flush");
	if (rc)
		return rc;
	if (already_committed(sp, b))
		return exec_sql(sp, "COMMIT", "committing the flush");
	if ((rc = exec_sql(sp, ID_FLOOR_SQL, "committing the flush")) ==
		    SPONGE_OK &&
	    (rc = history_row(sp, "sent", "", reply, b)) == SPONGE_OK &&
	    (rc = remove_batch(sp, b, sqlite3_last_insert_rowid(sp->db))) ==
		    SPONGE_OK &&
	    (rc = unreport_drops(sp, b)) == SPONGE_OK &&
	    (rc = forget_sent(sp, sponge_now())) == SPONGE_OK)
		rc = meta_set(sp, "inflight", NULL);
	sp_crash_point("during-commit");
	if (rc == SPONGE_OK)
		rc = exec_sql(sp, "COMMIT", "committing the flush");
	if (rc != SPONGE_OK)
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int record_failure(sponge *sp, const sp_batch *b,
			  const sp_send_result *r)
{
	int rc = exec_sql(sp, "BEGIN IMMEDIATE", "writing history");
	if (rc)
		return rc;
	rc = history_row(sp, outcome_name(r->outcome), r->stage, r->reply.data,
			 b);
	/* A definite refusal means the server does not have the message:
	 * the next flush may build a new batch.  When the data went out and
	 * no answer came, keep the batch so a resend has the same
	 * Message-ID. */
	if (rc == SPONGE_OK && !r->maybe_delivered)
		rc = meta_set(sp, "inflight", NULL);
	if (rc == SPONGE_OK)
		rc = exec_sql(sp, "COMMIT", "writing history");
	if (rc != SPONGE_OK)
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Pin the batch: "<max id> <Message-ID>", so that a resend is the same
 * batch with the same Message-ID, whatever was purged in between. */
static int mark_inflight(sponge *sp, const sp_batch *b)
{
	char v[400];
	snprintf(v, sizeof v, "%lld %s", (long long)b->max_id, b->message_id);
	return meta_commit(sp, "inflight", v, "marking the batch");
}

/* The policy's verdict now, from the kept counts (*st) and the last
 * message (in->last_us); dry: change nothing (no "watching since" note). */
static int verdict_now(sponge *sp, unsigned flags, bool dry, int64_t now,
		       sponge_stats *st, sp_policy_in *in, int *verdict,
		       char *why, size_t n)
{
	int rc = sponge_stats_get(sp, st);
	if (rc)
		return rc;
	const sponge_policy *pol = &sp->cfg.policy;
	memset(in, 0, sizeof *in);
	in->pending = st->pending;
	memcpy(in->by_level, st->by_level, sizeof in->by_level);
	in->oldest_us = st->oldest_us;
	in->now = now;
	in->force = flags & SPONGE_FLUSH_FORCE;
	if (pol->min_interval_us || pol->heartbeat_us)
		in->last_us = last_message(sp, now, dry);
	*verdict = sp_policy(pol, in, why, n);
	return SPONGE_OK;
}

/* One flush, step by step (sponge_flush reads as the steps). */
typedef struct flush_run {
	sponge *sp;
	unsigned flags;
	bool dry;
	sponge_flush_result *res;
	const sp_transport *t;
	int lockfd;
	int64_t now;
	sp_batch b;
	int64_t inflight;        /* a pinned batch's max id, or 0 */
	char pinned_mid[320];    /* and its Message-ID */
	bool resend;             /* the pinned batch goes again */
	int64_t waited;          /* min_interval held it back this long */
} flush_run;

/* Check the config, pick the transport, take the lock. */
static int flush_start(flush_run *f)
{
	sponge *sp = f->sp;
	sb_reset(&sp->err);
	if (sp->cfg_error.len)
		return sp_fail(sp, SPONGE_ECONFIG, "%s", sp->cfg_error.data);
	f->t = sp_transport_find(sp->cfg.transport ? sp->cfg.transport
						   : "smtp");
	int rc = check_mail_config(sp, f->t);
	if (rc)
		return rc;
	f->res->insecure = !sp->cfg.verify && f->t == &sp_transport_smtp;
	if (!f->dry && (rc = take_lock(sp, &f->lockfd)))
		return rc;
	if (!f->dry)
		sp_crash_point("after-lock");
	/* A flush reads the whole batch a few times in order: a page cache
	 * larger than this does not help it, and a small one keeps its
	 * memory the same for 10,000 records and for 10,000,000. */
	sqlite3_exec(sp->db, "PRAGMA cache_size=-512", NULL, NULL, NULL);
	f->now = sponge_now();
	return SPONGE_OK;
}

/* A batch the server accepted whose removal failed: finish that, never
 * send it again. */
static int finish_accepted(flush_run *f)
{
	spbuf reply;
	sb_init(&reply, 0);
	sp_batch done;
	int rc = SPONGE_OK;
	if (!f->dry && journal_pending(f->lockfd, &done, &reply)) {
		rc = commit_sent(f->sp, &done, reply.data);
		if (rc == SPONGE_OK)
			journal_clear(f->lockfd);
		else
			sb_printf(&f->sp->err, " (finishing the removal of a "
					       "sent message's records, <%s>; "
					       "they will not be sent again)",
				  done.message_id);
	}
	sb_free(&reply);
	return rc;
}

/* Nothing goes: expire what is old enough (no scan otherwise) and
 * forget sent records past spool.keep_sent. */
static int tidy(flush_run *f, const sponge_stats *st)
{
	sponge *sp = f->sp;
	const sponge_policy *pol = &sp->cfg.policy;
	int rc = SPONGE_OK;
	if (f->dry)
		return rc;
	if (st->pending && pol->expire_us &&
	    st->oldest_us < sp_sub(f->now, pol->expire_us))
		rc = expire(sp, f->now, &f->res->expired);
	if (rc == SPONGE_OK && sp->cfg.keep_sent_us &&
	    (rc = exec_sql(sp, "BEGIN IMMEDIATE",
			   "forgetting sent records")) == SPONGE_OK) {
		rc = forget_sent(sp, f->now);
		rc = rc ? rc : exec_sql(sp, "COMMIT", "forgetting sent records");
		if (rc)
			sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

/* A pinned batch (it may have reached the server) goes again, whatever
 * the policy says; else the policy decides from the kept counts.  *go:
 * a message is to be composed. */
static int select_batch(flush_run *f, bool *go)
{
	sponge *sp = f->sp;
	*go = false;
	spbuf v;
	sb_init(&v, 0);
	int rc = meta_get(sp, "inflight", &v);
	char *mid_at = NULL;
	f->inflight = rc == SPONGE_OK && v.len ? strtoll(v.data, &mid_at, 10)
					       : 0;
	if (mid_at && *mid_at == ' ')
		snprintf(f->pinned_mid, sizeof f->pinned_mid, "%s", mid_at + 1);
	sb_free(&v);
	if (rc == SPONGE_OK && f->inflight > 0 &&
	    (rc = load_levels(sp, f->inflight, &f->b)) == SPONGE_OK &&
	    f->b.count > 0) {
		f->resend = true;
		*go = true;
		snprintf(f->res->reason, sizeof f->res->reason,
			 "sending: resending a batch that may not have been "
			 "delivered");
		return SPONGE_OK;
	}
	sponge_stats st;
	sp_policy_in in;
	int verdict;
	if (rc || (rc = verdict_now(sp, f->flags, f->dry, f->now, &st, &in,
				    &verdict, f->res->reason,
				    sizeof f->res->reason)))
		return rc;
	if (verdict == SPONGE_VERDICT_HOLD)
		return SPONGE_OK; /* due, held back: not expired either */
	if (verdict == SPONGE_VERDICT_NONE)
		return tidy(f, &st);
	*go = true;
	memset(&f->b, 0, sizeof f->b);
	if (verdict == SPONGE_VERDICT_HEARTBEAT) {
		/* nothing to report for that long: say so */
		f->b.highest = 7;
		f->b.date_us = f->now;
		f->b.since_us = in.last_us;
		f->b.waiting_after = st.pending;
	} else if (sp->cfg.policy.min_interval_us && in.last_us) {
		f->waited = sp->cfg.policy.min_interval_us;
	}
	return SPONGE_OK;
}

/* The message's plan: the batch's counts (read now, once a message
 * goes), subject and Message-ID, size plan, boundary. */
static int plan(flush_run *f)
{
	sponge *sp = f->sp;
	sp_batch *b = &f->b;
	int rc;
	if (!b->since_us && !f->resend &&
	    (rc = load_levels(sp, INT64_MAX, b)))
		return rc;
	b->min_interval_us = f->waited;
	if (b->count == 0 && b->since_us)
		rc = heartbeat_details(sp, b, f->now);
	else if ((rc = load_details(sp, b)) == SPONGE_OK)
		rc = fit_size(sp, b);
	if (rc)
		return rc;
	if (f->pinned_mid[0] && b->max_id == f->inflight)
		snprintf(b->message_id, sizeof b->message_id, "%s",
			 f->pinned_mid);
	/* MIME boundaries: "=_" cannot occur in quoted-printable or base64 */
	snprintf(b->boundary, sizeof b->boundary, "=_logsponge_%lld_%lld",
		 (long long)b->first_id, (long long)(b->date_us % 1000000007));
	f->res->decided = 1;
	f->res->records = b->count;
	snprintf(f->res->message_id, sizeof f->res->message_id, "%s",
		 b->message_id);
	return SPONGE_OK;
}

/* Pin the batch, hand the message to the transport. */
static int deliver(flush_run *f, sp_composer *comp, sp_send_result *sr,
		   sponge_writer out, void *arg)
{
	sponge *sp = f->sp;
	sp_crash_point("after-batch");
	int rc = mark_inflight(sp, &f->b);
	if (rc)
		return rc;
	rc = f->t->send(sp, comp, sr, false, out, arg);
	sp_compose_stop(comp);
	if (sr->server_size) {
		/* the next message will respect it */
		char sz[32];
		snprintf(sz, sizeof sz, "%llu",
			 (unsigned long long)sr->server_size);
		meta_commit(sp, "server_size", sz, "writing meta");
	}
	return rc;
}

/* Accepted: note it in the journal, then remove the batch.  Else keep
 * it and write the failure's history row. */
static int settle(flush_run *f, int rc, sp_send_result *sr)
{
	sponge *sp = f->sp;
	if (rc == SPONGE_OK && sr->outcome == SP_SENT) {
		sp_crash_point("after-250");
		bool noted = journal_accept(f->lockfd, &f->b, sr->reply.data);
		rc = commit_sent(sp, &f->b, sr->reply.data);
		if (rc == SPONGE_OK) {
			f->res->sent = 1;
			journal_clear(f->lockfd);
		} else {
			sb_adds(&sp->err,
				noted ? " (the message was sent; its records "
					"stay until a later flush can remove "
					"them, and will not be sent again)"
				      : " (the message was sent; its records "
					"stay and will be sent again, with the "
					"same Message-ID)");
		}
		return rc;
	}
	if (rc != SPONGE_OK && sr->outcome == SP_OUTCOME_UNKNOWN && !sr->stage)
		return rc; /* nothing was attempted (pinning the batch failed) */
	if (sr->outcome == SP_SENT || sr->outcome == SP_OUTCOME_UNKNOWN)
		sr->outcome = SP_LOCAL; /* transport failed without saying how */
	if (!sr->stage)
		sr->stage = "";
	snprintf(f->res->stage, sizeof f->res->stage, "%s", sr->stage);
	if (!sr->reply.len)
		sb_adds(&sr->reply, sp->err.data);
	/* the error message must survive writing the history row */
	spbuf keep;
	sb_init(&keep, 0);
	sb_adds(&keep, sp->err.len ? sp->err.data : sr->reply.data);
	int hrc = record_failure(sp, &f->b, sr);
	rc = outcome_code(sr->outcome);
	sp_fail(sp, rc, "%s%s", keep.data,
		hrc ? " (and the history row could not be written)" : "");
	sb_free(&keep);
	return rc;
}

int sp_flush(sponge *sp, unsigned flags, sponge_writer out, void *arg,
	     sponge_flush_result *res)
{
	sponge_flush_result dummy;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	if (!sp || !sp->db)
		return SPONGE_EINVAL;
	flush_run f;
	memset(&f, 0, sizeof f);
	f.sp = sp;
	f.flags = flags;
	f.dry = flags & SPONGE_FLUSH_DRY_RUN;
	f.res = res;
	f.lockfd = -1;
	if (f.dry && !out)
		return sp_fail(sp, SPONGE_EINVAL, "dry run needs a writer");
	int rc = flush_start(&f);
	if (rc) {
		if (f.lockfd >= 0)
			close(f.lockfd);
		return rc;
	}
	sp_composer comp;
	sp_compose_init(&comp, sp, &f.b);
	sp_send_result sr;
	memset(&sr, 0, sizeof sr);
	sb_init(&sr.reply, 2048);

	bool go = false;
	if ((rc = finish_accepted(&f)) == SPONGE_OK &&
	    (rc = select_batch(&f, &go)) == SPONGE_OK && go &&
	    (rc = plan(&f)) == SPONGE_OK) {
		if (f.dry)
			rc = sp_send_stream(&comp, false, out, arg);
		else
			rc = settle(&f, deliver(&f, &comp, &sr, out, arg), &sr);
	}

	if (f.b.gz)
		fclose(f.b.gz);
	sqlite3_exec(sp->db, "PRAGMA cache_size=-2000", NULL, NULL, NULL);
	sp_compose_free(&comp);
	sb_free(&sr.reply);
	if (f.lockfd >= 0)
		close(f.lockfd);
	/* give freed space back, after the lock: a VACUUM's time depends on
	 * the spool's size, and another flush may go meanwhile (it waits
	 * for the spool at most spool.busy_timeout) */
	if (res->sent)
		sp_shrink(sp);
	return rc;
}

int sponge_decide(sponge *sp, unsigned flags, int *verdict, char *reason,
		  size_t n)
{
	if (!sp || !sp->db || !verdict)
		return SPONGE_EINVAL;
	*verdict = SPONGE_VERDICT_UNKNOWN;
	sponge_stats st;
	sp_policy_in in;
	char why[256];
	int rc = verdict_now(sp, flags, true, sponge_now(), &st, &in, verdict,
			     why, sizeof why);
	if (rc == SPONGE_OK && reason && n)
		snprintf(reason, n, "%s", why);
	return rc;
}

int sponge_check_smtp(sponge *sp)
{
	if (!sp || !sp->db)
		return SPONGE_EINVAL;
	sb_reset(&sp->err);
	if (sp->cfg_error.len)
		return sp_fail(sp, SPONGE_ECONFIG, "%s", sp->cfg_error.data);
	if (!sp->cfg.host)
		return sp_fail(sp, SPONGE_ECONFIG, "%s: smtp.host is not set",
			       sp->cfg.path ? sp->cfg.path
					    : "(no config file)");
	sp_send_result sr;
	memset(&sr, 0, sizeof sr);
	sb_init(&sr.reply, 2048);
	int rc = sp_transport_smtp.send(sp, NULL, &sr, true, NULL, NULL);
	if (rc == SPONGE_OK && sr.outcome != SP_SENT)
		rc = outcome_code(sr.outcome);
	if (rc != SPONGE_OK && !sp->err.len)
		sp_fail(sp, rc, "%s: %s", sr.stage ? sr.stage : "smtp",
			sr.reply.data);
	sb_free(&sr.reply);
	return rc;
}
