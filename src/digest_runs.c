/* digest_runs.c - the digest's runs of jobs: a line per run whose
 * records the message carries ("backup  Tue 04:00:00  3s  failed (exit
 * 23)  12 lines"), and what a failed run printed, its head and tail. */
#include <stdio.h>
#include <string.h>

#include "flush.h"
#include "store.h"

#define HEAD_RECORDS 20
#define TAIL_RECORDS 20
#define FAILED_SHOWN 3

/* "backup  2026-12-06 04:00:00  3s  failed (exit 23)  12 lines" */
static void run_line(sp_composer *c, const sp_run_seen *s, int jw)
{
	char t[40], span[32], how[64];
	const sponge_run *r = &s->r;
	sp_digest_clock(c, r->start_us, t, sizeof t, true);
	if (r->end_us)
		sponge_format_span(sp_sub(r->end_us, r->start_us), span,
				   sizeof span);
	else
		snprintf(span, sizeof span, "-");
	sp_run_outcome(r, how, sizeof how);
	bool other = c->b->n.nhosts > 1 || strcmp(s->host, c->sp->host);
	sp_body_printf(c, "  %-*s  %s  %6s  %s  %lld line%s%s%s%s", jw, s->job,
		       t, span, how,
		       (long long)r->lines, r->lines == 1 ? "" : "s",
		       other ? "  (on " : "", other ? s->host : "",
		       other ? ")" : "");
}

/* The failed run's records as they are read: the first HEAD_RECORDS
 * said at once, the last TAIL_RECORDS kept in a ring. */
typedef struct output {
	sp_composer *c;
	int64_t seen, skipped_lines;
	spbuf ring[TAIL_RECORDS];
} output;

static void record_text(sp_composer *c, spbuf *o, const sp_scan_row *row)
{
	char t[32];
	sp_digest_hms(c, row->time_us, t);
	sb_reset(o);
	sb_printf(o, "  %s %s ", t, sp_level_column(row->level));
	/* its other lines indented */
	for (const char *m = row->message, *e = m + row->message_len; m < e;) {
		const char *nl = memchr(m, '\n', (size_t)(e - m));
		sb_add(o, m, (size_t)((nl ? nl : e) - m));
		if (!nl)
			break;
		sb_adds(o, "\n      ");
		m = nl + 1;
	}
}

/* A record's text, a body line per line. */
static void say_text(sp_composer *c, const spbuf *o)
{
	for (const char *m = o->data, *e = m + o->len; m <= e;) {
		const char *nl = memchr(m, '\n', (size_t)(e - m));
		sp_body_line(c, m, (size_t)((nl ? nl : e) - m));
		if (!nl)
			break;
		m = nl + 1;
	}
}

static int64_t lines_of(const spbuf *o)
{
	int64_t n = 1;
	for (const char *m = o->data; (m = memchr(m, '\n', o->len -
					 (size_t)(m - o->data))); m++)
		n++;
	return n;
}

static bool output_row(void *arg, const sp_scan_row *row)
{
	output *o = arg;
	int64_t i = o->seen++;
	spbuf *slot = &o->ring[i % TAIL_RECORDS];
	if (i >= HEAD_RECORDS + TAIL_RECORDS) /* it leaves the ring */
		o->skipped_lines += lines_of(slot);
	record_text(o->c, slot, row);
	if (i < HEAD_RECORDS) {
		say_text(o->c, slot);
		sb_reset(slot);
	}
	return true;
}

/* What failed run s printed: its head, "… N lines …", its tail. */
static int failed_output(sp_composer *c, const sp_run_seen *s)
{
	char t[40], how[64];
	sponge_run r = s->r;
	r.job = s->job;
	r.host = s->host;
	sp_run_outcome(&r, how, sizeof how);
	sp_digest_clock(c, r.start_us, t, sizeof t, true);
	sp_body_line(c, "", 0);
	sp_body_printf(c, "%s %s; its run of %s printed:", s->job,
		       how, t);
	output o = {c, 0, 0, {{0}}};
	for (int i = 0; i < TAIL_RECORDS; i++)
		sb_init(&o.ring[i], 0);
	int rc = sp_store_run_records(c->sp, &r, output_row, &o);
	int64_t from = o.seen > HEAD_RECORDS + TAIL_RECORDS
			       ? o.seen - TAIL_RECORDS
			       : HEAD_RECORDS;
	if (o.skipped_lines)
		sp_body_printf(c, "  \xE2\x80\xA6 %lld line%s \xE2\x80\xA6",
			       (long long)o.skipped_lines,
			       o.skipped_lines == 1 ? "" : "s");
	for (int64_t i = from; i < o.seen; i++)
		say_text(c, &o.ring[i % TAIL_RECORDS]);
	if (!o.seen && rc == SPONGE_OK)
		sp_body_line(c, "  (nothing; its records are gone)", 33);
	for (int i = 0; i < TAIL_RECORDS; i++)
		sb_free(&o.ring[i]);
	return rc;
}

void sp_digest_runs(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	if (!n->nruns)
		return;
	int jw = 1, failed = 0;
	for (int i = 0; i < n->nruns; i++) {
		int w = (int)strlen(n->runs[i].job);
		jw = w > jw ? w : jw;
	}
	sp_body_printf(c, "Runs of jobs: %lld%s", (long long)(n->nruns +
							   n->runs_more),
		       n->runs_failed ? "" : ", none failed");
	for (int i = 0; i < n->nruns; i++)
		run_line(c, &n->runs[i], jw);
	if (n->runs_more)
		sp_body_printf(c, "  and %lld more", (long long)n->runs_more);
	for (int i = 0; i < n->nruns && failed < FAILED_SHOWN; i++)
		if (SPONGE_RUN_FAILED(&n->runs[i].r)) {
			failed++;
			if (failed_output(c, &n->runs[i]) != SPONGE_OK &&
			    c->rc == SPONGE_OK)
				c->rc = SPONGE_EIO;
		}
	if (n->runs_failed > failed)
		sp_body_printf(c, "(%lld more failed runs: their records are "
				  "in the log below)",
			       (long long)(n->runs_failed - failed));
	sp_body_line(c, "", 0);
}
