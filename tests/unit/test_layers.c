/* Unit tests of the flush core's layers, each on its own: the composer
 * fed from an in-memory record source (no spool rows at all), the plan's
 * three steps, the store's counts against a real count, and the transport
 * registry and outcomes. */
#define _GNU_SOURCE
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flush.h"
#include "store.h"
#include "unit.h"

static char dir[64];
static char path[128];
static char cfgpath[160];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/lslayer.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/spool.db", dir);
	snprintf(cfgpath, sizeof cfgpath, "%s/conf", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A spool with a config of `extra` lines besides From/To. */
static sponge *open_with(const char *extra)
{
	FILE *f = fopen(cfgpath, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[mail]\nfrom = logs@example.org\nto = ops@example.org\n"
		   "transport = null\n%s",
		extra);
	fclose(f);
	sponge *sp = NULL;
	int rc = sponge_open(&sp, path, cfgpath, 0);
	ck_assert_msg(rc == SPONGE_OK, "open: %s", sponge_errmsg(sp));
	return sp;
}

/* ---- an in-memory record source ------------------------------------ */

typedef struct array_source {
	sp_source base;
	sponge *sp;
	const sponge_record *rec;
	size_t n, at;
	size_t fail_at; /* next() fails at this index (0: never) */
	int opens;
	sp_order order;
} array_source;

static int arr_open(sp_source *s, sp_order order)
{
	array_source *a = (array_source *)s;
	a->at = 0;
	a->opens++;
	a->order = order;
	return SPONGE_OK;
}

static int arr_next(sp_source *s, const sponge_record **r)
{
	array_source *a = (array_source *)s;
	if (a->fail_at && a->at == a->fail_at)
		return sp_fail(a->sp, SPONGE_EIO, "disk went away");
	if (a->at >= a->n)
		return SPONGE_DONE;
	*r = &a->rec[a->at++];
	return SPONGE_ROW;
}

static void arr_close(sp_source *s) { (void)s; }

static int arr_get(sp_source *s, int64_t id, const sponge_record **r)
{
	array_source *a = (array_source *)s;
	for (size_t i = 0; i < a->n; i++)
		if (a->rec[i].id == id) {
			*r = &a->rec[i];
			return SPONGE_ROW;
		}
	return SPONGE_DONE;
}

static void array_init(array_source *a, sponge *sp, const sponge_record *r,
		       size_t n)
{
	memset(a, 0, sizeof *a);
	a->base.open = arr_open;
	a->base.next = arr_next;
	a->base.close = arr_close;
	a->base.get = arr_get;
	a->sp = sp;
	a->rec = r;
	a->n = n;
}

#define T0 1795000000000000LL /* 2026-11-18 */

static const sponge_record recs[] = {
	{1, T0, SPONGE_INFO, "cron", "", "backup started", 14, 0, 0, NULL, -1, 0},
	{2, T0 + 1000000, SPONGE_ERR, "cron", "", "disk full on /srv", 17, 0, 0, NULL, -1, 0},
	{3, T0 + 2000000, SPONGE_ERR, "cron", "", "disk full on /srv", 17, 0, 0, NULL, -1, 0},
};

/* A plan for recs made by hand: no store involved. */
static void hand_plan(sp_batch *b)
{
	memset(b, 0, sizeof *b);
	b->n.max_id = 3;
	b->n.first_id = 1;
	b->n.count = 3;
	b->n.by_level[SPONGE_INFO] = 1;
	b->n.by_level[SPONGE_ERR] = 2;
	b->n.highest = SPONGE_ERR;
	b->n.t_first = T0;
	b->n.t_last = T0 + 2000000;
	snprintf(b->n.tags, sizeof b->n.tags, "cron 3");
	snprintf(b->env.message_id, sizeof b->env.message_id, "unit@example.org");
	snprintf(b->env.subject, sizeof b->env.subject, "unit subject");
	snprintf(b->env.boundary, sizeof b->env.boundary, "=_unit");
	b->env.date_us = T0 + 3000000;
	b->size.max_size = 10u << 20;
}

static int collect_out(void *arg, const char *p, size_t n)
{
	spbuf *b = arg;
	return sb_add(b, p, n) ? 0 : -1;
}

START_TEST(composer_reads_only_its_source)
{
	sponge *sp = open_with("");
	sp_batch b;
	hand_plan(&b);
	array_source src;
	array_init(&src, sp, recs, 3);
	sp_composer c;
	sp_compose_init(&c, sp, &b, &src.base);
	spbuf out, again;
	sb_init(&out, 0);
	sb_init(&again, 0);
	ck_assert_int_eq(sp_send_stream(&c, true, collect_out, &out), SPONGE_OK);
	ck_assert(sp_compose_done(&c));
	/* the spool holds nothing: every record line came from the array */
	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(sp, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 0);
	ck_assert_ptr_nonnull(strstr(out.data, "Subject: unit subject"));
	ck_assert_ptr_nonnull(strstr(out.data, "Message-ID: <unit@example.org>"));
	ck_assert_ptr_nonnull(strstr(out.data, "backup started"));
	/* the two identical errors fold into one line of the log, x2 (QP:
	 * =C3=972), and are one kind of problem in the attention block */
	const char *log = strstr(out.data, "Log, oldest first");
	ck_assert_ptr_nonnull(log);
	const char *first = strstr(log, "=C3=972 disk full on /srv");
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_null(strstr(first + 10, "disk full on /srv"));
	const char *kind = strstr(out.data, "=C3=972 err     cron NEW disk full "
					    "on /srv");
	ck_assert_ptr_nonnull(kind);
	ck_assert(kind < log);
	ck_assert_int_eq(src.order, SP_OLDEST_FIRST);
	/* composing again gives the same bytes */
	ck_assert_int_eq(sp_send_stream(&c, true, collect_out, &again),
			 SPONGE_OK);
	ck_assert_str_eq(out.data, again.data);
	sp_compose_free(&c);
	sb_free(&out);
	sb_free(&again);
	sponge_close(sp);
}
END_TEST

START_TEST(composer_stops_on_a_source_error)
{
	sponge *sp = open_with("[mail]\nfold = off\n");
	sp_batch b;
	hand_plan(&b);
	array_source src;
	array_init(&src, sp, recs, 3);
	src.fail_at = 2;
	sp_composer c;
	sp_compose_init(&c, sp, &b, &src.base);
	spbuf out;
	sb_init(&out, 0);
	ck_assert_int_eq(sp_send_stream(&c, true, collect_out, &out), SPONGE_EIO);
	ck_assert(!sp_compose_done(&c)); /* never a short message as whole */
	ck_assert_str_eq(sponge_errmsg(sp), "disk went away");
	ck_assert_ptr_null(strstr(out.data, "--=_unit--"));
	sp_compose_free(&c);
	sb_free(&out);
	sponge_close(sp);
}
END_TEST

/* ---- the plan ---------------------------------------------------------- */

START_TEST(plan_tally_counts_the_batch)
{
	sponge *sp = open_with("");
	ck_assert_int_eq(sponge_log(sp, SPONGE_INFO, "web", "one"), 0);
	ck_assert_int_eq(sponge_log(sp, SPONGE_ERR, "db", "first error"), 0);
	ck_assert_int_eq(sponge_log(sp, SPONGE_INFO, "web", "two"), 0);
	ck_assert_int_eq(sponge_log(sp, SPONGE_ERR, "db", "second error"), 0);
	ck_assert_int_eq(sponge_log(sp, SPONGE_INFO, "web", "three"), 0);
	ck_assert_int_eq(sponge_sync(sp), 0);
	sp_tally n;
	memset(&n, 0, sizeof n);
	ck_assert_int_eq(sp_plan_tally(sp, INT64_MAX, 0, &n), SPONGE_OK);
	ck_assert_int_eq(n.count, 5);
	ck_assert_int_eq(n.by_level[SPONGE_ERR], 2);
	ck_assert_int_eq(n.by_level[SPONGE_INFO], 3);
	ck_assert_int_eq(n.highest, SPONGE_ERR);
	ck_assert_str_eq(n.first_tag, "web");
	ck_assert_str_eq(n.tags, "web 3, db 2");
	ck_assert_str_eq(n.top_tag, "db");
	ck_assert_ptr_nonnull(n.top_msg);
	ck_assert_str_eq(n.top_msg, "first error");
	ck_assert_int_eq(sp_waiting(&n), 0);
	int64_t top = n.max_id;
	/* a batch that ends at the third record: two wait after it */
	ck_assert_int_eq(sp_plan_tally(sp, top - 2, 0, &n), SPONGE_OK);
	ck_assert_int_eq(n.count, 3);
	ck_assert_int_eq(n.max_id, top - 2);
	ck_assert_int_eq(sp_waiting(&n), 2);
	/* a heartbeat's tally: nothing in it, everything waits */
	ck_assert_int_eq(sp_plan_tally(sp, 0, 0, &n), SPONGE_OK);
	ck_assert_int_eq(n.count, 0);
	ck_assert_int_eq(sp_waiting(&n), 5);
	ck_assert_ptr_null(n.top_msg);
	sponge_close(sp);
}
END_TEST

START_TEST(plan_envelope_from_a_tally)
{
	sponge *sp = open_with("subject = {count} {records}, {err} err, "
			       "highest {level}, {tag}: {first}\n");
	snprintf(sp->host, sizeof sp->host, "web1.example.org");
	sp_batch b;
	hand_plan(&b);
	char top[] = "disk full on /srv";
	b.n.top_msg = top;
	snprintf(b.n.first_tag, sizeof b.n.first_tag, "cron");
	memset(&b.env, 0, sizeof b.env);
	b.env.date_us = T0;
	ck_assert_int_eq(sp_plan_envelope(sp, &b.n, &b.env, NULL), SPONGE_OK);
	ck_assert_str_eq(b.env.subject,
			 "3 records, 2 err, highest err, cron: disk full on /srv");
	ck_assert_int_eq(strncmp(b.env.message_id, "logsponge.1-3.", 14), 0);
	/* the domain: this host's FQDN, else the sender's domain */
	char fqdn[256], want[260];
	snprintf(want, sizeof want, "@%s",
		 sp_host_fqdn(fqdn, sizeof fqdn) ? fqdn : "example.org");
	const char *at = strchr(b.env.message_id, '@');
	ck_assert_ptr_nonnull(at);
	ck_assert_str_eq(at, want);
	ck_assert_int_eq(strncmp(b.env.boundary, "=_logsponge_1_", 14), 0);
	/* the same batch again: the same Message-ID */
	char mid[320];
	snprintf(mid, sizeof mid, "%s", b.env.message_id);
	ck_assert_int_eq(sp_plan_envelope(sp, &b.n, &b.env, NULL), SPONGE_OK);
	ck_assert_str_eq(b.env.message_id, mid);
	/* a pinned batch keeps the Message-ID it went out with */
	ck_assert_int_eq(sp_plan_envelope(sp, &b.n, &b.env, "old@x"), 0);
	ck_assert_str_eq(b.env.message_id, "old@x");

	/* a heartbeat: the same template, {first} says what it is */
	sp_tally none;
	memset(&none, 0, sizeof none);
	none.highest = 7;
	memset(&b.env, 0, sizeof b.env);
	b.env.date_us = T0 + 86400000000LL;
	b.env.since_us = T0;
	ck_assert_int_eq(sp_plan_envelope(sp, &none, &b.env, NULL), 0);
	ck_assert_str_eq(b.env.subject, "0 records, 0 err, highest debug, -: "
					"nothing to report since "
					"2026-11-18T11:06:40Z");
	ck_assert_int_eq(strncmp(b.env.message_id, "logsponge.heartbeat.", 20),
			 0);
	ck_assert_str_eq(strchr(b.env.message_id, '@'), want);
	b.n.top_msg = NULL; /* the array above is not the plan's */
	sponge_close(sp);
}
END_TEST

START_TEST(plan_size_attaches_past_the_cap)
{
	sponge *sp = open_with("max_size = 256k\n");
	char msg[1001];
	for (int i = 0; i < 1200; i++) {
		for (int k = 0; k < 1000; k++) /* incompressible enough */
			msg[k] = (char)('a' + (unsigned)(i * 7919 + k * k) % 26);
		msg[1000] = '\0';
		ck_assert_int_eq(sponge_log(sp, i == 600 ? SPONGE_CRIT
							: SPONGE_INFO,
					    "t", "%s", msg),
				 0);
	}
	ck_assert_int_eq(sponge_sync(sp), 0);
	sp_batch b;
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(sp_plan_tally(sp, INT64_MAX, 0, &b.n), SPONGE_OK);
	b.env.date_us = sponge_now();
	ck_assert_int_eq(sp_plan_envelope(sp, &b.n, &b.env, NULL), SPONGE_OK);
	ck_assert_str_eq(sponge_config_error(sp), "");
	sp_batch_source src;
	sp_batch_source_init(&src, sp, &b);
	sp_composer c;
	sp_compose_init(&c, sp, &b, &src.base);
	ck_assert_int_eq(sp_plan_size(sp, &b, &c, 0), SPONGE_OK);
	ck_assert_ptr_nonnull(b.size.gz);
	ck_assert_ptr_null(c.kept); /* the measured plain message is moot */
	ck_assert_uint_eq(b.size.max_size, 256u << 10);
	ck_assert_uint_gt(b.size.gz_bytes, 0);
	/* the message it plans fits the cap */
	spbuf out;
	sb_init(&out, 0);
	ck_assert_int_eq(sp_send_stream(&c, false, collect_out, &out),
			 SPONGE_OK);
	ck_assert_uint_le(out.len, 256u << 10);
	ck_assert_ptr_nonnull(strstr(out.data, "may not exceed 256 KiB"));
	ck_assert_ptr_nonnull(strstr(out.data, "The most severe records first"));
	sp_compose_free(&c);
	sb_free(&out);
	sp_plan_free(&b);
	sponge_close(sp);
}
END_TEST

/* SQLite's virtual machine steps on the spool, counted. */
static int count_steps(void *arg)
{
	(*(long *)arg)++;
	return 0;
}

static int64_t count_rows(sponge *sp, const char *where)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM records WHERE %s",
		 where);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* 20,000 records of 200 letters, one in a hundred an err: random
 * letters (4 MB that gzip keeps above 2 MB), or 26 lines over and over
 * (4 MB that gzip makes 30 KB); mail.max_size 128 KiB. */
static sponge *fill_20000(bool repeat)
{
	sponge *sp = open_with("max_size = 128k\n");
	char msg[201];
	unsigned x = 12345;
	for (int i = 0; i < 20000; i++) {
		for (int k = 0; k < 200; k++) {
			x = x * 1103515245u + 12345u;
			msg[k] = (char)('a' + (repeat ? (unsigned)(i * 15 + k * k)
						      : x >> 16) % 26);
		}
		msg[200] = '\0';
		ck_assert_int_eq(sponge_log(sp, i % 100 ? SPONGE_INFO
							: SPONGE_ERR,
					    "t", "%s", msg),
				 0);
	}
	ck_assert_int_eq(sponge_sync(sp), 0);
	return sp;
}

/* The envelope and the size plan of a batch past the cap: an exact
 * batch with an attachment. */
static void plan_capped(sponge *sp, sp_batch *b, sp_batch_source *src,
			sp_composer *c)
{
	b->env.date_us = T0;
	ck_assert_int_eq(sp_plan_envelope(sp, &b->n, &b->env, NULL), SPONGE_OK);
	sp_batch_source_init(src, sp, b);
	sp_compose_init(c, sp, b, &src->base);
	ck_assert_int_eq(sp_plan_size(sp, b, c, 0), SPONGE_OK);
	ck_assert(!b->n.partial);
	ck_assert_ptr_nonnull(b->size.gz);
}

/* A batch past mail.max_size cannot go whole: its tally stops reading
 * once the messages pass the cap (counts from the kept counts), and the
 * size plan turns it into an exact tally of what the attachment holds. */
START_TEST(plan_capped_reads_what_it_sends)
{
	sponge *sp = fill_20000(false);
	long whole = 0, part = 0;
	sp_batch b;
	memset(&b, 0, sizeof b);
	sqlite3_progress_handler(sp->db, 64, count_steps, &whole);
	ck_assert_int_eq(sp_plan_tally(sp, INT64_MAX, 0, &b.n), SPONGE_OK);
	ck_assert(!b.n.partial);
	int64_t all_bytes = b.n.msg_bytes;
	sqlite3_progress_handler(sp->db, 64, count_steps, &part);
	ck_assert_int_eq(sp_plan_tally(sp, INT64_MAX, 128u << 10, &b.n),
			 SPONGE_OK);
	sqlite3_progress_handler(sp->db, 0, NULL, NULL);
	ck_assert(b.n.partial);
	ck_assert_msg(part * 20 < whole, "read %ld of %ld steps", part, whole);
	/* what it stands for: every pending record */
	ck_assert_int_eq(b.n.count, 20000);
	ck_assert_int_eq(b.n.by_level[SPONGE_ERR], 200);
	ck_assert_int_eq(b.n.by_level[SPONGE_INFO], 19800);
	ck_assert_int_eq(b.n.highest, SPONGE_ERR);
	ck_assert_int_eq(b.n.max_id, INT64_MAX);
	ck_assert_int_le(b.n.msg_bytes, all_bytes + all_bytes / 10);
	ck_assert_int_ge(b.n.msg_bytes, all_bytes - all_bytes / 10);
	ck_assert_ptr_null(b.n.top_msg);
	/* the size plan: an exact batch, the errors first */
	sp_batch_source src;
	sp_composer c;
	plan_capped(sp, &b, &src, &c);
	ck_assert_int_lt(b.n.max_id, INT64_MAX);
	ck_assert_int_gt(b.n.count, 0);
	ck_assert_int_lt(b.n.count, 20000);
	ck_assert_int_eq(b.n.by_level[SPONGE_ERR], 200);
	char where[96];
	snprintf(where, sizeof where, "id <= %lld AND level <= %d",
		 (long long)b.n.max_id, sp_batch_max_level(&b.n));
	ck_assert_int_eq(b.n.count, count_rows(sp, where));
	ck_assert_int_eq(sp_waiting(&b.n), 20000 - b.n.count);
	ck_assert_ptr_nonnull(b.n.top_msg);
	sp_compose_free(&c);
	sp_plan_free(&b);
	sponge_close(sp);
}
END_TEST

/* A partial tally whose log compresses within the cap becomes the exact
 * tally of everything the attachment holds. */
START_TEST(plan_capped_that_fits_whole)
{
	sponge *sp = fill_20000(true);
	sp_batch b;
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(sp_plan_tally(sp, INT64_MAX, 128u << 10, &b.n),
			 SPONGE_OK);
	ck_assert(b.n.partial);
	sp_batch_source src;
	sp_composer c;
	plan_capped(sp, &b, &src, &c);
	ck_assert_int_eq(b.n.count, 20000);
	ck_assert_int_eq(b.n.max_id, count_rows(sp, "1"));
	ck_assert_int_eq(sp_waiting(&b.n), 0);
	ck_assert_str_eq(b.n.tags, "t 20000");
	ck_assert_ptr_nonnull(b.n.top_msg);
	ck_assert_ptr_nonnull(strstr(b.env.subject, "20000 records"));
	sp_compose_free(&c);
	sp_plan_free(&b);
	sponge_close(sp);
}
END_TEST

/* Where only composing tells whether the message fits, it is composed
 * once: sending plays the kept message back, byte for byte what
 * composing afresh gives, and its size is the estimate MAIL FROM states. */
START_TEST(plan_size_composes_once)
{
	sponge *sp = open_with("max_size = 512k\nhtml = true\n");
	for (int i = 0; i < 3000; i++)
		ck_assert_int_eq(sponge_log(sp, i % 7 ? SPONGE_INFO : SPONGE_ERR,
					    "t", "record %d =\xc3\xa9 %s", i,
					    i % 3 ? "" : "again"), 0);
	ck_assert_int_eq(sponge_sync(sp), 0);
	sp_batch b;
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(sp_plan_tally(sp, INT64_MAX, 0, &b.n), SPONGE_OK);
	b.env.date_us = T0;
	ck_assert_int_eq(sp_plan_envelope(sp, &b.n, &b.env, NULL), SPONGE_OK);
	sp_batch_source src, src2;
	sp_batch_source_init(&src, sp, &b);
	sp_batch_source_init(&src2, sp, &b);
	sp_composer c, fresh;
	sp_compose_init(&c, sp, &b, &src.base);
	sp_compose_init(&fresh, sp, &b, &src2.base);
	ck_assert_int_eq(sp_plan_size(sp, &b, &c, 0), SPONGE_OK);
	ck_assert_ptr_null(b.size.gz);
	ck_assert_ptr_nonnull(c.kept); /* the sure bound said "maybe" */
	spbuf a, f;
	sb_init(&a, 0);
	sb_init(&f, 0);
	for (int pass = 0; pass < 2; pass++) { /* libESMTP may rewind */
		sb_reset(&a);
		ck_assert_int_eq(sp_send_stream(&c, false, collect_out, &a),
				 SPONGE_OK);
	}
	ck_assert_int_eq(sp_send_stream(&fresh, false, collect_out, &f),
			 SPONGE_OK);
	ck_assert_uint_gt(a.len, 100000);
	ck_assert_uint_eq(a.len, f.len);
	ck_assert_int_eq(memcmp(a.data, f.data, a.len), 0);
	ck_assert_uint_eq(b.size.estimate, a.len);
	/* for people (flush --dry-run) it composes afresh */
	c.readable = true;
	sb_reset(&a);
	ck_assert_int_eq(sp_send_stream(&c, true, collect_out, &a), SPONGE_OK);
	ck_assert_ptr_null(strstr(a.data, "Content-Transfer-Encoding"));
	sp_compose_free(&c);
	sp_compose_free(&fresh);
	sb_free(&a);
	sb_free(&f);
	sp_plan_free(&b);
	sponge_close(sp);
}
END_TEST

/* ---- the store: counts kept equal a real count ------------------------ */

static void assert_counts_match(sponge *sp)
{
	int64_t kept[SP_COUNTS];
	ck_assert_int_eq(sp_counts_get(sp, kept, NULL), SPONGE_OK);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT CASE WHEN sent IS NULL THEN "
					    "level ELSE 8 END, count(*) FROM "
					    "records GROUP BY 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	int64_t real[SP_COUNTS] = {0};
	while (sqlite3_step(st) == SQLITE_ROW)
		real[sqlite3_column_int(st, 0)] = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	/* of those, the records of new kinds */
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT level, count(*) FROM records "
					    "WHERE new_kind IS NOT NULL AND sent "
					    "IS NULL AND level < 8 GROUP BY 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		real[SP_COUNT_NEW + sqlite3_column_int(st, 0)] =
			sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (int k = 0; k < SP_COUNTS; k++)
		ck_assert_msg(kept[k] == real[k], "k=%d kept %lld real %lld", k,
			      (long long)kept[k], (long long)real[k]);
}

START_TEST(store_counts_follow_every_change)
{
	sponge *sp = open_with("[spool]\nmax_records = 50\nkeep_sent = 1d\n"
			       "[policy]\nthreshold = 1\ncount_level = debug\n");
	for (int i = 0; i < 80; i++)
		ck_assert_int_eq(sponge_log(sp, i % 8, "t", "record %d", i), 0);
	ck_assert_int_eq(sponge_sync(sp), 0);
	assert_counts_match(sp); /* after cap drops */
	sponge_flush_result res;
	ck_assert_int_eq(sponge_flush(sp, SPONGE_FLUSH_FORCE, NULL, NULL, &res),
			 SPONGE_OK);
	ck_assert_int_eq(res.sent, 1);
	assert_counts_match(sp); /* after a flush keeping sent records */
	for (int i = 0; i < 30; i++)
		ck_assert_int_eq(sponge_log(sp, SPONGE_WARNING, "t", "w %d", i),
				 0);
	ck_assert_int_eq(sponge_sync(sp), 0);
	assert_counts_match(sp); /* caps dropped kept sent ones first */
	int64_t purged = 0;
	ck_assert_int_eq(sponge_purge(sp, sponge_now() + 1000000, &purged),
			 SPONGE_OK);
	ck_assert_int_gt(purged, 0);
	assert_counts_match(sp); /* after a purge */
	sponge_close(sp);
}
END_TEST

/* A purge larger than a piece goes in pieces, each whole: all of it
 * goes, counted, and a purge of nothing older deletes nothing. */
START_TEST(store_purge_in_pieces)
{
	sponge *sp = open_with("");
	ck_assert_int_eq(sponge_set_batch(sp, 4096, 0, 0), 0);
	int n = 2 * SP_PIECE_ROWS + 1000;
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(sponge_log(sp, i % 8, "t", "r %d", i), 0);
	ck_assert_int_eq(sponge_sync(sp), 0);
	int64_t purged = -1;
	ck_assert_int_eq(sponge_purge(sp, sponge_now() - 3600000000LL, &purged),
			 SPONGE_OK);
	ck_assert_int_eq(purged, 0);
	ck_assert_int_eq(sponge_purge(sp, 0, &purged), SPONGE_OK);
	ck_assert_int_eq(purged, n);
	assert_counts_match(sp);
	sponge_stats st;
	ck_assert_int_eq(sponge_stats_get(sp, &st), SPONGE_OK);
	ck_assert_int_eq(st.pending, 0);
	sponge_close(sp);
}
END_TEST

/* ---- transports --------------------------------------------------------- */

START_TEST(transport_registry)
{
	char names[128];
	snprintf(names, sizeof names, "%s", sp_transport_names());
	ck_assert_str_eq(names, "smtp, sendmail, maildir, stdout, null");
	int found = 0;
	for (char *save = NULL, *t = strtok_r(names, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save)) {
		const sp_transport *tr = sp_transport_find(t);
		ck_assert_ptr_nonnull(tr);
		ck_assert_str_eq(tr->name, t);
		ck_assert_ptr_nonnull(tr->send);
		found++;
	}
	ck_assert_int_eq(found, 5);
	ck_assert_ptr_null(sp_transport_find("smtps"));
	/* the config accepts exactly the registry's names, and lists them */
	snprintf(names, sizeof names, "%s", sp_transport_names());
	for (char *save = NULL, *t = strtok_r(names, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save)) {
		char extra[64];
		snprintf(extra, sizeof extra, "transport = %s\n", t);
		FILE *f = fopen(cfgpath, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(f, "[mail]\nfrom = a@b.c\nto = d@e.f\n%s", extra);
		fclose(f);
		sponge *sp = NULL;
		ck_assert_int_eq(sponge_open(&sp, path, cfgpath, 0), SPONGE_OK);
		ck_assert_ptr_null(strstr(sponge_config_error(sp), "transport"));
		sponge_close(sp);
	}
	FILE *f = fopen(cfgpath, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = smtps\n");
	fclose(f);
	sponge *bad = NULL;
	sponge_open(&bad, path, cfgpath, 0);
	char want[160];
	snprintf(want, sizeof want, "unknown transport (%s)",
		 sp_transport_names());
	ck_assert_ptr_nonnull(bad);
	ck_assert_ptr_nonnull(strstr(sponge_errmsg(bad)[0] ? sponge_errmsg(bad)
						       : sponge_config_error(bad),
				     want));
	sponge_close(bad);
	ck_assert_ptr_null(sp_transport_find(NULL));

	sp_config c;
	memset(&c, 0, sizeof c);
	spbuf why;
	sb_init(&why, 0);
	ck_assert(!sp_transport_smtp.config_ok(&c, &why));
	ck_assert_str_eq(why.data, "smtp.host is not set");
	sb_reset(&why);
	ck_assert(!sp_transport_maildir.config_ok(&c, &why));
	ck_assert_str_eq(why.data, "maildir.path is not set");
	sb_free(&why);
}
END_TEST

START_TEST(outcome_unknown_is_not_sent)
{
	ck_assert_int_eq(SP_OUTCOME_UNKNOWN, 0);
	ck_assert_int_ne(sp_outcome_code(SP_OUTCOME_UNKNOWN), SPONGE_OK);
	ck_assert_int_eq(sp_outcome_code(SP_SENT), SPONGE_OK);
	ck_assert_int_eq(sp_outcome_code(SP_TEMPORARY), SPONGE_ETEMPFAIL);
	ck_assert_int_eq(sp_outcome_code(SP_PERMANENT), SPONGE_EPERMFAIL);
	ck_assert_int_eq(sp_outcome_code(SP_AUTH), SPONGE_EAUTH);
	ck_assert_str_eq(sp_outcome_name(SP_OUTCOME_UNKNOWN), "local");
	sponge *sp = open_with("");
	sp_send_result r;
	memset(&r, 0, sizeof r);
	sb_init(&r.reply, 0);
	sb_adds(&r.reply, "it said nothing");
	/* a transport that fails without saying how: a local failure, with
	 * its message and code, never success */
	ck_assert_int_eq(sp_send_failed(sp, &r, "x"), SPONGE_EIO);
	ck_assert_int_eq(r.outcome, SP_LOCAL);
	ck_assert_str_eq(sponge_errmsg(sp), "x: it said nothing");
	r.outcome = SP_PERMANENT;
	ck_assert_int_eq(sp_send_failed(sp, &r, "y"), SPONGE_EPERMFAIL);
	sb_free(&r.reply);
	sponge_close(sp);
}
END_TEST

/* The config's warnings have a buffer of their own: asking for them
 * leaves the last error's message as it was. */
START_TEST(warnings_keep_the_error)
{
	sponge *sp = open_with("[smtp]\nverify = no\n");
	sponge_flush_result res;
	ck_assert_int_eq(sponge_flush(sp, SPONGE_FLUSH_DRY_RUN, NULL, NULL, &res),
			 SPONGE_EINVAL);
	ck_assert_str_eq(sponge_errmsg(sp), "dry run needs a writer");
	ck_assert_ptr_nonnull(strstr(sponge_config_warnings(sp),
				     "smtp.verify = no"));
	ck_assert_str_eq(sponge_errmsg(sp), "dry run needs a writer");
	sponge_close(sp);
}
END_TEST

Suite *layers_suite(void)
{
	Suite *s = suite_create("layers");
	TCase *t = tcase_create("layers");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, composer_reads_only_its_source);
	tcase_add_test(t, composer_stops_on_a_source_error);
	tcase_add_test(t, plan_tally_counts_the_batch);
	tcase_add_test(t, plan_envelope_from_a_tally);
	tcase_add_test(t, plan_size_attaches_past_the_cap);
	tcase_add_test(t, plan_size_composes_once);
	tcase_add_test(t, plan_capped_reads_what_it_sends);
	tcase_add_test(t, plan_capped_that_fits_whole);
	tcase_add_test(t, warnings_keep_the_error);
	tcase_add_test(t, store_counts_follow_every_change);
	tcase_add_test(t, store_purge_in_pieces);
	tcase_add_test(t, transport_registry);
	tcase_add_test(t, outcome_unknown_is_not_sent);
	suite_add_tcase(s, t);
	return s;
}
