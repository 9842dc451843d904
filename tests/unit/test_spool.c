/* Unit tests: the library API against a real spool in a temp directory. */
#define _GNU_SOURCE
#include <check.h>
#include <stddef.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logsponge.h"
#include "unit.h"

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/lsunit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sub/spool.db", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static sponge *open_ok(void)
{
	sponge *sp = NULL;
	int rc = sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG);
	ck_assert_msg(rc == SPONGE_OK, "open: %s", sponge_errmsg(sp));
	return sp;
}

/* Collect messages matching f, joined by '|'. */
static void collect(sponge *sp, const sponge_filter *f, char *out, size_t n)
{
	sponge_iter *it;
	const sponge_record *r;
	out[0] = '\0';
	ck_assert_int_eq(sponge_query(sp, f, &it), SPONGE_OK);
	int rc;
	while ((rc = sponge_query_next(it, &r)) == SPONGE_ROW) {
		if (out[0])
			strncat(out, "|", n - strlen(out) - 1);
		strncat(out, r->message, n - strlen(out) - 1);
	}
	ck_assert_int_eq(rc, SPONGE_DONE);
	sponge_query_close(it);
}

START_TEST(misuse_returns_codes)
{
	ck_assert_int_eq(sponge_close(NULL), SPONGE_OK);
	ck_assert_int_eq(sponge_log(NULL, SPONGE_ERR, "t", "x"), SPONGE_EINVAL);
	ck_assert_int_eq(sponge_append(NULL, 3, NULL, 0, "x", 1),
			 SPONGE_EINVAL);
	ck_assert_int_eq(sponge_open(NULL, path, NULL, 0), SPONGE_EINVAL);
	sponge *sp = open_ok();
	ck_assert_int_eq(sponge_log(sp, SPONGE_ERR, "t", NULL), SPONGE_EINVAL);
	ck_assert_str_eq(sponge_errmsg(sp), "NULL format");
	ck_assert_int_eq(sponge_log(sp, 8, "t", "x"), SPONGE_EINVAL);
	ck_assert_int_eq(sponge_log(sp, -1, "t", "x"), SPONGE_EINVAL);
	ck_assert_ptr_nonnull(strstr(sponge_errmsg(sp), "out of range"));
	ck_assert_int_eq(sponge_append(sp, 3, NULL, 0, NULL, 5), SPONGE_EINVAL);
	ck_assert_int_eq(sponge_append_entry(sp, NULL), SPONGE_EINVAL);
	sponge_filter f = {.has_level = 1, .level = 9};
	sponge_iter *it = (sponge_iter *)1;
	ck_assert_int_eq(sponge_query(sp, &f, &it), SPONGE_EINVAL);
	ck_assert_ptr_null(it);
	ck_assert_int_eq(sponge_query_next(NULL, NULL), SPONGE_EINVAL);
	sponge_query_close(NULL);
	sponge_history_close(NULL);
	ck_assert_int_eq(sponge_stats_get(NULL, NULL), SPONGE_EINVAL);
	/* nothing was stored by the failed calls */
	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(sp, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 0);
	sponge_close(sp);
	ck_assert_str_eq(sponge_strerror(SPONGE_EFULL), "disk full");
	ck_assert_str_eq(sponge_strerror(12345), "unknown error");
	ck_assert_int_eq(sponge_version_number(), SPONGE_VERSION_NUMBER);
	ck_assert_str_eq(sponge_version(), SPONGE_VERSION);
}
END_TEST

START_TEST(log_and_query_filters)
{
	sponge *sp = open_ok();
	int64_t t0 = 1795255200000000LL;
	ck_assert_int_eq(sponge_append(sp, SPONGE_INFO, "a", t0, "one", 3), 0);
	ck_assert_int_eq(sponge_append(sp, SPONGE_ERR, "b", t0 + 1000000,
				       "two err", 7), 0);
	ck_assert_int_eq(sponge_log(sp, SPONGE_WARNING, NULL, "three %d %s", 3,
				    "warn"), 0);
	ck_assert_int_eq(sponge_append(sp, SPONGE_DEBUG, "a", t0 + 2000000,
				       "four", 4), 0);
	char got[256];
	sponge_filter f = {0};
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "one|two err|three 3 warn|four");
	f.has_level = 1;
	f.level = SPONGE_WARNING;
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "two err|three 3 warn");
	memset(&f, 0, sizeof f);
	f.tag = "a";
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "one|four");
	f.tag = "";
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "three 3 warn");
	memset(&f, 0, sizeof f);
	f.since_us = t0 + 1000000;
	f.until_us = t0 + 2000000;
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "two err");
	memset(&f, 0, sizeof f);
	f.grep = "e";
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "one|two err|three 3 warn");
	f.grep = "%"; /* fixed string: no LIKE wildcards */
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "");
	memset(&f, 0, sizeof f);
	f.limit = 2;
	collect(sp, &f, got, sizeof got);
	ck_assert_str_eq(got, "three 3 warn|four");

	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(sp, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 4);
	ck_assert_int_eq(st.by_level[SPONGE_ERR], 1);
	ck_assert_int_eq(st.by_level[SPONGE_INFO], 1);
	ck_assert_int_eq(st.by_level[SPONGE_DEBUG], 1);
	ck_assert_int_eq(st.by_level[SPONGE_WARNING], 1);
	/* oldest and newest are when the spool received them (t0 is hours
	 * from now, so its records' received times were kept) */
	ck_assert(st.oldest_us > t0 + 2000000);
	ck_assert(st.oldest_us <= st.newest_us);
	ck_assert(st.newest_us <= sponge_now());
	ck_assert(st.spool_bytes > 0);
	sponge_close(sp);
}
END_TEST

START_TEST(cleaning_and_cut_marker)
{
	sponge *sp = open_ok();
	char big[70000];
	memset(big, 'x', sizeof big);
	ck_assert_int_eq(sponge_append(sp, 6, "t\nag", 0, big, sizeof big), 0);
	sponge_entry e = {6, NULL, 0, "other\rhost", "bad\xff", 4, 100};
	ck_assert_int_eq(sponge_append_entry(sp, &e), 0);
	sponge_iter *it;
	const sponge_record *r;
	ck_assert_int_eq(sponge_query(sp, NULL, &it), SPONGE_OK);
	ck_assert_int_eq(sponge_query_next(it, &r), SPONGE_ROW);
	ck_assert_str_eq(r->tag, "t\xe2\x90\x8a" "ag");
	const char *mark = " [logsponge: cut 4464 bytes]";
	ck_assert_uint_eq(r->message_len, 65536 + strlen(mark));
	ck_assert_str_eq(r->message + 65536, mark);
	ck_assert_int_eq(sponge_query_next(it, &r), SPONGE_ROW);
	ck_assert_str_eq(r->message, "bad\xef\xbf\xbd [logsponge: cut 100 bytes]");
	ck_assert_str_eq(r->host, "other\xe2\x90\x8dhost");
	ck_assert_int_eq(sponge_query_next(it, &r), SPONGE_DONE);
	sponge_query_close(it);
	sponge_close(sp);
}
END_TEST

/* The structs can grow: a caller built against an older (smaller) or a
 * newer (larger) header gets exactly its own size written. */
START_TEST(abi_sizes)
{
	sponge *sp = open_ok();
	ck_assert_int_eq(sponge_log(sp, SPONGE_ERR, "t", "one"), SPONGE_OK);
	unsigned char buf[sizeof(sponge_stats) + 64];
	size_t older = offsetof(sponge_stats, dropped);
	memset(buf, 0xAB, sizeof buf);
	ck_assert_int_eq(sponge_stats_get_sized(sp, (sponge_stats *)buf, older),
			 SPONGE_OK);
	ck_assert_int_eq(((sponge_stats *)buf)->pending, 1);
	for (size_t i = older; i < sizeof buf; i++)
		ck_assert_uint_eq(buf[i], 0xAB); /* nothing past its size */
	memset(buf, 0xAB, sizeof buf);
	ck_assert_int_eq(sponge_stats_get_sized(sp, (sponge_stats *)buf,
						sizeof buf),
			 SPONGE_OK);
	for (size_t i = sizeof(sponge_stats); i < sizeof buf; i++)
		ck_assert_uint_eq(buf[i], 0); /* fields it does not know: 0 */
	/* a filter from an older header: the fields it lacks are 0 */
	sponge_filter f;
	memset(&f, 0x7F, sizeof f); /* garbage where the old struct ends */
	f.has_level = 0;
	f.tag = NULL;
	f.since_us = f.until_us = 0;
	f.grep = NULL;
	f.limit = 0;
	sponge_iter *it = NULL;
	ck_assert_int_eq(sponge_query_sized(sp, &f, offsetof(sponge_filter,
							     max_id), &it),
			 SPONGE_OK);
	const sponge_record *r;
	ck_assert_int_eq(sponge_query_next(it, &r), SPONGE_ROW);
	ck_assert_str_eq(r->message, "one");
	sponge_query_close(it);
	sponge_close(sp);
}
END_TEST

START_TEST(purge_never_reuses_ids)
{
	sponge *sp = open_ok();
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(sponge_log(sp, 6, "t", "m%d", i), 0);
	int64_t n = -1;
	ck_assert_int_eq(sponge_purge(sp, 0, &n), SPONGE_OK);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(sponge_log(sp, 6, "t", "after"), 0);
	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(sp, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 1);
	ck_assert_int_eq(st.max_id, 6);
	/* purge by age goes by when records came: one stamped 1970 that
	 * came just now is young */
	ck_assert_int_eq(sponge_append(sp, 6, "t", 1000000, "ancient", 7), 0);
	ck_assert_int_eq(sponge_purge(sp, sponge_now() - 3600000000LL, &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(sponge_purge(sp, sponge_now() + 1, &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(sponge_stats_get(sp, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 0);
	sponge_close(sp);
}
END_TEST

START_TEST(batching_queues_until_sync)
{
	sponge *sp = open_ok();
	sponge *other = open_ok();
	ck_assert_int_eq(sponge_set_batch(sp, 1000, 0, 0), SPONGE_OK);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(sponge_log(sp, 6, NULL, "q%d", i), 0);
	ck_assert_uint_eq(sponge_queued(sp), 10);
	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(other, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 0); /* not written yet */
	ck_assert_int_eq(sponge_sync(sp), SPONGE_OK);
	ck_assert_uint_eq(sponge_queued(sp), 0);
	ck_assert_int_eq(sponge_stats_get(other, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 10);
	/* the count bound writes by itself */
	ck_assert_int_eq(sponge_set_batch(sp, 3, 0, 0), SPONGE_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(sponge_log(sp, 6, NULL, "c%d", i), 0);
	ck_assert_uint_eq(sponge_queued(sp), 0);
	/* close writes what is queued */
	ck_assert_int_eq(sponge_log(sp, 6, NULL, "last"), 0);
	ck_assert_uint_eq(sponge_queued(sp), 1);
	ck_assert_int_eq(sponge_close(sp), SPONGE_OK);
	ck_assert_int_eq(sponge_stats_get(other, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 14);
	sponge_close(other);
}
END_TEST

START_TEST(modes_0600_and_0700)
{
	mode_t old = umask(0);
	sponge *sp = open_ok();
	ck_assert_int_eq(sponge_log(sp, 6, NULL, "x"), 0);
	struct stat st;
	char p[160];
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	snprintf(p, sizeof p, "%s-wal", path);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	snprintf(p, sizeof p, "%s-shm", path);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	snprintf(p, sizeof p, "%s/sub", dir);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	sponge_close(sp);
	umask(old);
}
END_TEST

START_TEST(symlink_not_followed_on_create)
{
	char target[160], sub[160];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(target, sizeof target, "%s/victim", dir);
	ck_assert_int_eq(symlink(target, path), 0); /* dangling */
	sponge *sp = NULL;
	int rc = sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG);
	ck_assert_int_eq(rc, SPONGE_ECANTOPEN);
	ck_assert_ptr_nonnull(sp);
	ck_assert_ptr_nonnull(strstr(sponge_errmsg(sp), path));
	sponge_close(sp);
	ck_assert_int_eq(access(target, F_OK), -1); /* nothing created */
}
END_TEST

static void write_file(const char *p, const char *data, size_t n)
{
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

START_TEST(not_a_spool)
{
	snprintf(path, sizeof path, "%s/junk", dir);
	char junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 7 + 3);
	write_file(path, junk, sizeof junk);
	sponge *sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG),
			 SPONGE_ENOTSPOOL);
	ck_assert_ptr_nonnull(strstr(sponge_errmsg(sp), "not a logsponge"));
	sponge_close(sp);

	/* an SQLite database of something else */
	snprintf(path, sizeof path, "%s/other.db", dir);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t(x)", 0, 0, 0), 0);
	sqlite3_close(db);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG),
			 SPONGE_ENOTSPOOL);
	sponge_close(sp);

	/* a directory */
	snprintf(path, sizeof path, "%s", dir);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG),
			 SPONGE_ECANTOPEN);
	sponge_close(sp);

	/* missing, with NOCREATE */
	snprintf(path, sizeof path, "%s/none.db", dir);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, NULL,
				     SPONGE_OPEN_NOCONFIG | SPONGE_OPEN_NOCREATE),
			 SPONGE_ENOENT);
	sponge_close(sp);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(migrates_v1_and_refuses_newer)
{
	/* a version-1 spool: records only, as the first release wrote it */
	snprintf(path, sizeof path, "%s/v1.db", dir);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(
		sqlite3_exec(db,
			     "CREATE TABLE records(id INTEGER PRIMARY KEY, time "
			     "INTEGER NOT NULL, level INTEGER NOT NULL, tag TEXT "
			     "NOT NULL, host TEXT NOT NULL, message TEXT NOT "
			     "NULL);"
			     "INSERT INTO records VALUES(7,1,3,'t','h','kept');"
			     "PRAGMA application_id=1280528463;"
			     "PRAGMA user_version=1;",
			     0, 0, 0),
		SQLITE_OK);
	sqlite3_close(db);
	sponge *sp = open_ok();
	char got[64];
	collect(sp, NULL, got, sizeof got);
	ck_assert_str_eq(got, "kept");
	sponge_hiter *h;
	const sponge_attempt *a;
	ck_assert_int_eq(sponge_history(sp, 0, &h), SPONGE_OK);
	ck_assert_int_eq(sponge_history_next(h, &a), SPONGE_DONE);
	sponge_history_close(h);
	ck_assert_int_eq(sponge_log(sp, 6, NULL, "new"), 0);
	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(sp, &st), 0);
	ck_assert_int_eq(st.max_id, 8);
	sponge_close(sp);

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version=99", 0, 0, 0), 0);
	sqlite3_close(db);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG),
			 SPONGE_EVERSION);
	sponge_close(sp);
}
END_TEST

START_TEST(config_file_applies)
{
	char cfg[160];
	snprintf(cfg, sizeof cfg, "%s/conf", dir);
	char text[512];
	int n = snprintf(text, sizeof text,
			 "[spool]\npath = %s\nmax_record = 256\n"
			 "[policy]\nthreshold = 3\nflush_level = err\n",
			 path);
	write_file(cfg, text, (size_t)n);
	sponge *sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, NULL, cfg, 0), SPONGE_OK);
	ck_assert_str_eq(sponge_path(sp), path);
	ck_assert_str_eq(sponge_config_path(sp), cfg);
	ck_assert_uint_eq(sponge_max_record(sp), 256);
	sponge_policy pol;
	ck_assert_int_eq(sponge_get_policy(sp, &pol), 0);
	ck_assert_int_eq(pol.threshold, 3);
	ck_assert_int_eq(pol.flush_level, SPONGE_ERR);
	sponge_close(sp);

	write_file(cfg, "[spool]\nnope = 1\n", 17);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, NULL, cfg, 0), SPONGE_ECONFIG);
	char want[200];
	snprintf(want, sizeof want, "%s:2: unknown key", cfg);
	ck_assert_ptr_nonnull(strstr(sponge_errmsg(sp), want));
	sponge_close(sp);

	/* outside [spool] a problem does not stop writing; flush refuses */
	write_file(cfg, "[policy]\ntreshold = 5\n", 22);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, cfg, 0), SPONGE_OK);
	snprintf(want, sizeof want, "%s:2: unknown key \"treshold\"", cfg);
	ck_assert_ptr_nonnull(strstr(sponge_config_error(sp), want));
	ck_assert_int_eq(sponge_log(sp, SPONGE_ERR, "t", "kept"), SPONGE_OK);
	ck_assert_int_eq(sponge_flush(sp, 0, NULL, NULL, NULL), SPONGE_ECONFIG);
	ck_assert_ptr_nonnull(strstr(sponge_errmsg(sp), want));
	ck_assert_int_eq(sponge_check_smtp(sp), SPONGE_ECONFIG);
	sponge_close(sp);

	snprintf(cfg, sizeof cfg, "%s/missing.conf", dir);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, cfg, 0), SPONGE_OK);
	ck_assert_ptr_nonnull(strstr(sponge_config_error(sp), "missing.conf: "
							      "No such file"));
	ck_assert_int_eq(sponge_flush(sp, 0, NULL, NULL, NULL), SPONGE_ECONFIG);
	sponge_close(sp);

	/* a good config: no error */
	write_file(cfg, "[policy]\nthreshold = 5\n", 23);
	sp = NULL;
	ck_assert_int_eq(sponge_open(&sp, path, cfg, 0), SPONGE_OK);
	ck_assert_str_eq(sponge_config_error(sp), "");
	sponge_close(sp);
}
END_TEST

static void *open_new_spool(void *arg)
{
	return (void *)(intptr_t)sponge_open(arg, path, NULL,
					      SPONGE_OPEN_NOCONFIG);
}

static void log_n(sponge *sp, const char *who, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(sponge_log(sp, 6, who, "%s %d", who, i), 0);
}

static int64_t records_in(const char *file)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM records",
					    -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* A process of its own, forked before anything is open: on a byte from
 * `go` it opens the spool, logs n records as `who`, closes, and writes a
 * byte to `done`. */
typedef struct peer {
	pid_t pid;
	int go[2], done[2];
} peer;

static void peer_start(peer *p, const char *who, int n)
{
	ck_assert_int_eq(pipe(p->go), 0);
	ck_assert_int_eq(pipe(p->done), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid > 0)
		return;
	char x;
	if (read(p->go[0], &x, 1) != 1)
		_exit(2);
	sponge *c = open_ok();
	log_n(c, who, n);
	int rc = sponge_close(c);
	_exit(write(p->done[1], &x, 1) == 1 && rc == SPONGE_OK ? 0 : 1);
}

static void peer_run(peer *p)
{
	char x = 0;
	ck_assert_int_eq(write(p->go[1], &x, 1), 1);
	ck_assert_int_eq(read(p->done[0], &x, 1), 1);
	int status;
	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	ck_assert_int_eq(status, 0);
	for (int i = 0; i < 2; i++) {
		close(p->go[i]);
		close(p->done[i]);
	}
}

/* One thread makes the spool file while another thread of the process
 * opens it.  POSIX locks belong to the process: had the maker closed a
 * descriptor of the spool after the other connection locked it, the
 * process would hold no lock while SQLite believes it does; another
 * process closing would remove the write-ahead log under it, and the
 * next would start a new one: two logs, and records lost without an
 * error (as a forked child's were, now and then, beside four threads). */
START_TEST(making_the_spool_keeps_the_locks_of_others)
{
	peer c, d;
	peer_start(&c, "second", 100);
	peer_start(&d, "fourth", 100);
	sponge *maker = NULL, *sp;
	pthread_t t;
	struct stat st;
	setenv("LOGSPONGE_TEST_DELAY", "spool-made", 1);
	ck_assert_int_eq(pthread_create(&t, NULL, open_new_spool, &maker), 0);
	while (stat(path, &st) != 0)
		usleep(500);
	sp = open_ok(); /* while the maker pauses after making the file */
	log_n(sp, "first", 100);
	void *rc;
	ck_assert_int_eq(pthread_join(t, &rc), 0);
	unsetenv("LOGSPONGE_TEST_DELAY");
	ck_assert_int_eq((intptr_t)rc, SPONGE_OK);

	peer_run(&c);
	log_n(sp, "third", 100);
	peer_run(&d);
	log_n(maker, "fifth", 100);
	ck_assert_int_eq(sponge_close(sp), SPONGE_OK);
	ck_assert_int_eq(sponge_close(maker), SPONGE_OK);
	ck_assert_int_eq(records_in(path), 500);
}
END_TEST

/* A child forked while its parent has the spool open opens its own
 * handle.  SQLite's table of the locks its process holds came with the
 * fork, but the locks did not (POSIX locks are not inherited): had the
 * child trusted that table, it would hold no lock on the spool, its
 * parent closing last would remove the write-ahead log under it, a third
 * process would start a new one, and what the child wrote into the old
 * one would be lost without an error. */
START_TEST(child_opens_its_own_beside_its_parent)
{
	peer d;
	peer_start(&d, "third", 100);
	sponge *sp = open_ok();
	log_n(sp, "parent", 100);
	int go[2], ready[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		sponge *c = open_ok();
		log_n(c, "child", 100);
		char x = 0;
		if (write(ready[1], &x, 1) != 1 || read(go[0], &x, 1) != 1)
			_exit(2);
		log_n(c, "child later", 100);
		_exit(sponge_close(c) == SPONGE_OK ? 0 : 1);
	}
	char x = 0;
	ck_assert_int_eq(read(ready[0], &x, 1), 1);
	ck_assert_int_eq(sponge_close(sp), SPONGE_OK);
	peer_run(&d);
	ck_assert_int_eq(write(go[1], &x, 1), 1);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(ready[i]);
	}
	ck_assert_int_eq(records_in(path), 400);
}
END_TEST

Suite *spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *t = tcase_create("core");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, misuse_returns_codes);
	tcase_add_test(t, log_and_query_filters);
	tcase_add_test(t, cleaning_and_cut_marker);
	tcase_add_test(t, purge_never_reuses_ids);
	tcase_add_test(t, abi_sizes);
	tcase_add_test(t, batching_queues_until_sync);
	tcase_add_test(t, modes_0600_and_0700);
	tcase_add_test(t, symlink_not_followed_on_create);
	tcase_add_test(t, not_a_spool);
	tcase_add_test(t, migrates_v1_and_refuses_newer);
	tcase_add_test(t, config_file_applies);
	tcase_add_test(t, making_the_spool_keeps_the_locks_of_others);
	tcase_add_test(t, child_opens_its_own_beside_its_parent);
	suite_add_tcase(s, t);
	return s;
}
