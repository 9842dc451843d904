/* Allocation failure injection: run a scenario that uses every part of the
 * library, failing the k-th allocation (the library's own, SQLite's and
 * jansson's) for k = 1, 2, ... until a run sees no injected failure.
 * Every run must end with a code, not a crash; the sanitizer build checks
 * for leaks; the spool must be intact afterwards. */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static sqlite3_mem_methods real_mem;

static void *f_malloc(int n)
{
	return sp_alloc_should_fail() ? NULL : real_mem.xMalloc(n);
}
static void *f_realloc(void *p, int n)
{
	return sp_alloc_should_fail() ? NULL : real_mem.xRealloc(p, n);
}
static void *j_malloc(size_t n)
{
	return sp_alloc_should_fail() ? NULL : malloc(n);
}

/* Route SQLite's and jansson's allocations through the same counter.
 * Must run before SQLite is first used in the process. */
void faults_install(void)
{
	sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem);
	sqlite3_mem_methods m = real_mem;
	m.xMalloc = f_malloc;
	m.xRealloc = f_realloc;
	sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
	json_set_alloc_funcs(j_malloc, free);
}

static char dir[64], spool[128], conf[128];

static int writer(void *arg, const char *buf, size_t len)
{
	(void)arg, (void)buf, (void)len;
	return 0;
}

/* Everything a user does, with every return code checked for sense. */
static int scenario(void)
{
	sponge *sp = NULL;
	int rc = sponge_open(&sp, spool, conf, 0);
	if (rc != SPONGE_OK) {
		ck_assert_int_ne(rc, SPONGE_ROW);
		sponge_close(sp);
		return rc;
	}
	int r[16] = {0}, n = 0;
	r[n++] = sponge_log(sp, SPONGE_ERR, "t", "first %d", 1);
	r[n++] = sponge_set_batch(sp, 50, 0, 0);
	for (int i = 0; i < 5; i++)
		sponge_log(sp, SPONGE_INFO, "b", "batched %d", i);
	r[n++] = sponge_sync(sp);
	sponge_entry e = {SPONGE_INFO, NULL, 0, NULL, NULL, 0, 0};
	const char *j = "{\"MESSAGE\":\"from json\",\"PRIORITY\":\"4\"}";
	if (sponge_parse_line(sp, SPONGE_FORMAT_JOURNAL_JSON, j, strlen(j),
			      &e))
		r[n++] = sponge_append_entry(sp, &e);
	sponge_iter *it = NULL;
	if ((r[n++] = sponge_query(sp, NULL, &it)) == SPONGE_OK) {
		const sponge_record *rec;
		int q;
		while ((q = sponge_query_next(it, &rec)) == SPONGE_ROW)
			ck_assert_ptr_nonnull(rec->message);
		sponge_query_close(it);
	}
	sponge_stats st;
	r[n++] = sponge_stats_get(sp, &st);
	sponge_flush_result res;
	r[n++] = sponge_flush(sp, SPONGE_FLUSH_DRY_RUN, writer, NULL, &res);
	r[n++] = sponge_flush(sp, SPONGE_FLUSH_FORCE, NULL, NULL, &res);
	sponge_hiter *h = NULL;
	if ((r[n++] = sponge_history(sp, 5, &h)) == SPONGE_OK) {
		const sponge_attempt *a;
		while (sponge_history_next(h, &a) == SPONGE_ROW)
			;
		sponge_history_close(h);
	}
	r[n++] = sponge_purge(sp, 0, NULL);
	int c = sponge_close(sp);
	for (int i = 0; i < n; i++)
		if (r[i] != SPONGE_OK)
			return r[i];
	return c;
}

START_TEST(every_allocation_can_fail)
{
	snprintf(dir, sizeof dir, "/tmp/lsfault.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(spool, sizeof spool, "%s/spool.db", dir);
	snprintf(conf, sizeof conf, "%s/conf", dir);
	FILE *f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n", f);
	fclose(f);

	unsigned long k, failed_runs = 0;
	for (k = 1;; k++) {
		unlink(spool);
		char p[160];
		snprintf(p, sizeof p, "%s-wal", spool);
		unlink(p);
		snprintf(p, sizeof p, "%s-shm", spool);
		unlink(p);
		snprintf(p, sizeof p, "%s.lock", spool);
		unlink(p);
		sp_alloc_fail_at(k);
		int rc = scenario();
		unsigned long used = sp_alloc_count();
		sp_alloc_fail_at(0);
		if (used < k) {
			/* no failure was injected: everything must work */
			ck_assert_msg(rc == SPONGE_OK, "clean run failed: %d", rc);
			break;
		}
		if (rc != SPONGE_OK)
			failed_runs++;
		/* the spool, if it was made, opens and is intact */
		if (access(spool, F_OK) == 0) {
			sponge *sp = NULL;
			int orc = sponge_open(&sp, spool, NULL,
					      SPONGE_OPEN_NOCONFIG);
			ck_assert_msg(orc == SPONGE_OK,
				      "spool does not open after a failure at "
				      "allocation %lu: %s",
				      k, sponge_errmsg(sp));
			sponge_stats st;
			ck_assert_int_eq(sponge_stats_get(sp, &st), 0);
			sponge_close(sp);
			sqlite3 *db;
			ck_assert_int_eq(sqlite3_open(spool, &db), SQLITE_OK);
			sqlite3_stmt *s;
			ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA "
							    "integrity_check",
							    -1, &s, NULL),
					 SQLITE_OK);
			ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
			ck_assert_str_eq((const char *)sqlite3_column_text(s, 0),
					 "ok");
			sqlite3_finalize(s);
			sqlite3_close(db);
		}
	}
	fprintf(stderr, "allocation failures injected: %lu (of which %lu "
			"ended the scenario with an error code)\n",
		k - 1, failed_runs);
	ck_assert_uint_gt(k, 100);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *t = tcase_create("alloc");
	tcase_set_timeout(t, 600);
	tcase_add_test(t, every_allocation_can_fail);
	suite_add_tcase(s, t);
	return s;
}
