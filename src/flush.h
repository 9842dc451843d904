/* flush.h - private interfaces between flush.c, compose.c, transports. */
#ifndef SPONGE_FLUSH_H
#define SPONGE_FLUSH_H

#include <stdio.h>

#include "internal.h"
#include "transport.h"

/*
 * The plan of one message, built in three steps, each once and read-only
 * afterwards (the composer and the transports get it const):
 *   1. the tally: what the batch holds, from the store (sp_plan_tally);
 *   2. the envelope: subject, Message-ID, date, boundary (sp_plan_envelope);
 *   3. the size plan: past mail.max_size, the attachment (size.c).
 * A heartbeat has an empty tally and goes through the same steps.  When
 * the size plan narrows the batch (its log does not fit even compressed),
 * the smaller batch gets a tally and an envelope of its own.  The tally's
 * scan also feeds the digest's survey (sp_plan_tally_each), so a batch
 * that goes whole is read twice: once for both, once to compose.
 */
/* Records of the top record's tag shown before it (its context). */
#define SP_CONTEXT 3

/* A noise rule and how many records it ignored or dropped. */
#define SP_RULE_SLOTS 32
typedef struct sp_rule_count {
	char name[72];
	int64_t n;
} sp_rule_count;

/* A run of a job with records in the batch (the digest's line). */
#define SP_RUNS_SHOWN 16
typedef struct sp_run_seen {
	sponge_run r;           /* job, host: NULL (here below) */
	char job[65], host[64];
} sp_run_seen;

typedef struct sp_tally {
	int64_t max_id, first_id;  /* the batch: pending records <= max_id */
	int level_cap;          /* 0: at every level; else only the levels
				   below it (more severe): a batch that had
				   to shrink keeps its most severe records */
	int64_t bytes_by_level[8]; /* of messages and tags, by level */
	int64_t count;
	int64_t by_level[8];
	int64_t first_of[8];    /* first record id at each level */
	int highest;            /* most severe level present (0…7) */
	int64_t t_first, t_last;   /* stated times: shown to people */
	int64_t r_first;           /* received time of the oldest: policy */
	char first_tag[72];     /* most frequent tag ("" none) */
	char tags[512];         /* "backup 80, cron 27, - 16" (top 5) */
	int64_t msg_bytes;      /* bytes of the batch's messages and tags */
	int64_t waiting[8];     /* pending records left out, by level
				   (arrived later, or past a level cap) */
	int nhosts;             /* hosts the records come from */
	char hosts[512];        /* "web1 9000, web2 1000" (top 5) */
	int64_t dropped[8];     /* dropped by the spool caps, reported here */
	/* what the noise rules did: ignored records of the batch (in it, not
	 * in count or the log), by rule (past SP_RULE_SLOTS rules: others);
	 * records dropped since the last message, by rule */
	int64_t ignored, ignored_others;
	int64_t ignored_waiting; /* ignored records left in the spool */
	sp_rule_count rule_ignored[SP_RULE_SLOTS];
	int nrule_ignored;
	sp_rule_count rule_drops[SP_RULE_SLOTS];
	int nrule_drops;
	/* records counted because their rule passed its unless=, by rule */
	sp_rule_count rule_escalated[SP_RULE_SLOTS];
	int nrule_escalated;
	/* rules whose until= is within a week, before or after (n: the
	 * time, in microseconds) */
	sp_rule_count expiring[8];
	int nexpiring;
	/* the first record of the most severe level (the summary's) */
	int64_t top_time;
	char top_tag[72];
	char *top_msg;          /* NULL: none */
	size_t top_len;
	/* the records its tag logged just before the first of the most
	 * severe (the digest's context), oldest first */
	int64_t ctx_ids[SP_CONTEXT];
	int nctx;
	/* Read only in part: its messages passed the byte limit, so the
	 * batch (every pending record, max_id INT64_MAX) cannot go as it is.
	 * Its counts are the kept counts, its bytes by level estimated from
	 * what was read; times, tags, hosts and the top record are not
	 * known.  The size plan shrinks it to an exact tally. */
	bool partial;
	/* the runs of jobs with records in it, by start (past
	 * SP_RUNS_SHOWN: counted in runs_more); how many failed */
	sp_run_seen runs[SP_RUNS_SHOWN];
	int nruns;
	int64_t runs_more, runs_failed;
} sp_tally;

typedef struct sp_envelope {
	char message_id[320];   /* without <> */
	char subject[1024];     /* expanded, UTF-8, one line */
	char boundary[64];      /* MIME: "=_" never occurs in QP or base64 */
	int64_t date_us;
	int64_t since_us;       /* heartbeat: the last message (count 0) */
	int64_t min_interval_us;/* waited for min_interval (0: it did not) */
	char why[256];          /* the policy's reason ("" none) */
	bool new_kind;          /* a new or regressed kind at or above
				   policy.new_level is in it: "NEW: " */
	int learn_day, learn_days; /* within policy.learn: day d of n */
	bool test;              /* check --send's test message */
} sp_envelope;

/* Past the size cap the complete log goes along, gzip-compressed, and the
 * body keeps the most severe records that fit (gz NULL: no attachment). */
typedef struct sp_size_plan {
	uint64_t max_size;      /* mail.max_size, or less: the server's SIZE */
	FILE *gz;               /* the compressed log (a temporary file) */
	uint64_t gz_bytes;
	char gz_name[160];
	int64_t body_budget;    /* bytes the body's records may take */
	int64_t cut;            /* records left for the next message */
	uint64_t estimate;      /* the message's size, or a bound within
				   max_size (MAIL FROM's SIZE=) */
} sp_size_plan;

typedef struct sp_batch {
	sp_tally n;
	sp_envelope env;
	sp_size_plan size;
	/* the kinds its message carries (owned; the store remembers them
	 * when it is delivered) */
	sp_kind_seen *kinds;
	size_t nkinds;
	int new_kinds[8];       /* new (or regressed) kinds among them, by
				   level */
} sp_batch;

/* ---- the plan (plan.c) ---- */
/* Step 1: the tally of every pending record with id <= max_id (with
 * INT64_MAX: all of them), and the top record.  With INT64_MAX and a
 * byte_limit (0: none), reading stops once the messages pass it and the
 * tally is partial (see sp_tally.partial): a capped flush reads what it
 * sends, not what waits. */
SP_HIDDEN int sp_plan_tally(sponge *sp, int64_t max_id, uint64_t byte_limit,
			    sp_tally *n);
/* The same within a level cap (see sp_tally.level_cap). */
SP_HIDDEN int sp_plan_tally_capped(sponge *sp, int64_t max_id, int level_cap,
				   uint64_t byte_limit, sp_tally *n);
/* sp_plan_tally, handing each record read to each(arg, r) as well (the
 * digest's survey shares the scan); a partial tally stops handing them
 * on where it stops reading. */
typedef void (*sp_record_fn)(void *arg, const sponge_record *r);
SP_HIDDEN int sp_plan_tally_each(sponge *sp, int64_t max_id,
				 uint64_t byte_limit, sp_tally *n,
				 sp_record_fn each, void *arg);
/* Pending records that are not in batch n (its waiting, summed). */
SP_HIDDEN int64_t sp_waiting(const sp_tally *n);
/* The least severe level batch n holds: 7 (debug) unless capped. */
static inline int sp_batch_max_level(const sp_tally *n)
{
	return n->level_cap > 0 && n->level_cap <= 8 ? n->level_cap - 1 : 7;
}
/* Step 2: the envelope for tally n (a heartbeat's when n->count is 0 and
 * e->since_us is set); e->date_us, since_us and min_interval_us are the
 * caller's.  pinned_mid: a Message-ID the batch had before (or NULL). */
SP_HIDDEN int sp_plan_envelope(sponge *sp, const sp_tally *n,
			       sp_envelope *e, const char *pinned_mid);
/* What a plan holds (the attachment's file, the top record). */
SP_HIDDEN void sp_plan_free(sp_batch *b);

/* ---- the record source ---- */
/* Where the composer reads a batch's records from: the store (below) or,
 * in tests, an array.  open (re)starts; next gives SPONGE_ROW with *r
 * valid until the next call, SPONGE_DONE, or an error with the handle's
 * message set; close stops reading (the store's read transaction ends). */
/* SP_BY_HOST: this host's records first, then each other host's, each
 * oldest first. */
typedef enum sp_order { SP_OLDEST_FIRST, SP_SEVERE_FIRST, SP_BY_HOST } sp_order;
typedef struct sp_source sp_source;
struct sp_source {
	int (*open)(sp_source *s, sp_order order);
	int (*next)(sp_source *s, const sponge_record **r);
	void (*close)(sp_source *s);
	/* one record by id, whatever is open: SPONGE_ROW (*r valid until
	 * the next get or close), SPONGE_DONE when it is not there */
	int (*get)(sp_source *s, int64_t id, const sponge_record **r);
};

/* The pending records of batch b (id <= b->max_id at each open). */
typedef struct sp_batch_source {
	sp_source base;
	sponge *sp;
	const sp_batch *b;
	sponge_iter *it;
	sponge_iter *one;       /* get's */
} sp_batch_source;
SP_HIDDEN void sp_batch_source_init(sp_batch_source *s, sponge *sp,
				    const sp_batch *b);

/* A streaming composer of the whole message (headers + body, CRLF). */
struct sp_composer {
	sponge *sp;
	const sp_batch *b;
	int state;
	sp_source *src;        /* the records */
	struct sp_digest *dg;   /* what the survey found (digest.c) */
	sp_zone *zone;          /* [mail] timezone */
	int64_t generation;     /* rewinds so far (a slot's printed mark) */
	spbuf out;              /* the chunk being handed out */
	spbuf scratch;
	spbuf line;             /* digest.c's line being built */
	spbuf head_host, head_day; /* headings before the next record */
	char cur_host[256];     /* the log's host and day so far */
	int64_t cur_day;
	char dbuf[96];
	int64_t civ_sec;        /* the second civ holds (civ_ok) */
	sp_civil civ;
	bool civ_ok;
	int64_t hms_sec;        /* and the time hms shows */
	char hms[32];
	bool hms_ok;
	int rc;                 /* first error (SPONGE_*) */
	uint64_t bytes;         /* bytes handed out since rewind */
	int64_t tsec;           /* second formatted in tbuf */
	int64_t in_body;        /* records shown in this part (×N counts N) */
	int64_t listed;         /* lines listed in this part */
	int64_t text_listed;    /* lines the text part listed */
	int64_t html_est;       /* the HTML part's size for them, at most */
	bool att_started;       /* the attachment's part headers are out */
	bool html;              /* writing the text/html part */
	bool html_cut;          /* it stopped at HTML_MAX */
	bool readable;          /* flush --dry-run for people: no transfer
				   encoding, no MIME structure */
	uint64_t part_start;    /* bytes before the current part */
	char tbuf[32];
	FILE *kept;             /* the message composed once (measure) */
	/* the body's line sink, set by the composer: the digest writes
	 * its lines through it (sp_body_line) */
	bool (*say)(sp_composer *c, const char *s, size_t n);
};

/* sp: the config, host name and error message; the records come from src
 * only (the composer has no SQL of its own). */
SP_HIDDEN void sp_compose_init(sp_composer *c, sponge *sp, const sp_batch *b,
			       sp_source *src);
SP_HIDDEN void sp_compose_free(sp_composer *c);
/* Start over (libESMTP rewinds before every DATA). */
SP_HIDDEN int sp_compose_rewind(sp_composer *c);
/* Next chunk; *len 0 and NULL at the end or on error (see c->rc).  The
 * chunk is valid until the next call. */
SP_HIDDEN const char *sp_compose_next(sp_composer *c, size_t *len);
/* Compose the whole message once, counting, and stop past `limit`
 * bytes: *fits says whether it stayed within, *size how big it is (when
 * it fits).  A message that fits is kept (in a temporary file) and every
 * later rewind plays it back instead of composing it again; for people
 * (c->readable) it is composed afresh. */
SP_HIDDEN int sp_compose_measure(sp_composer *c, uint64_t limit, bool *fits,
				 uint64_t *size);
/* The plan changed (a size plan with an attachment, a smaller batch):
 * drop the kept message and the survey. */
SP_HIDDEN void sp_compose_replan(sp_composer *c);

/* ---- the size plan (size.c) ---- */
/* Step 3: the size plan within mail.max_size and the server's limit
 * (server_max, 0: none known); when the batch must shrink, b->n and
 * b->env are replaced by the smaller batch's.  comp is the composer that
 * will send b: when only composing tells whether the message fits, it
 * composes it once and keeps it. */
SP_HIDDEN int sp_plan_size(sponge *sp, sp_batch *b, sp_composer *comp,
			   uint64_t server_max);

/* ---- what the digest says (digest.c) ---- */
typedef struct sp_digest sp_digest;
/* The pass over the batch before composing: folding counts, kinds of
 * problem, the context of the first most severe record. */
SP_HIDDEN int sp_digest_survey(sp_composer *c);
/* The survey in steps, for a scan that is not the composer's own:
 * begin; add each record of the batch, oldest first (sp_digest_each is
 * the same as an sp_record_fn, arg the composer); end, once the batch's
 * tally is complete (it loads the top record and its context through
 * the source). */
SP_HIDDEN int sp_digest_begin(sp_composer *c);
SP_HIDDEN void sp_digest_add(sp_composer *c, const sponge_record *r);
SP_HIDDEN void sp_digest_each(void *composer, const sponge_record *r);
SP_HIDDEN int sp_digest_end(sp_composer *c);
SP_HIDDEN void sp_digest_free(sp_composer *c);
/* The body's first line ("logsponge on web1: 75 records, …"). */
SP_HIDDEN bool sp_digest_title(sp_composer *c);
/* The top of the body after it (and the runs): attention, context, why,
 * counts, log heading. */
SP_HIDDEN bool sp_digest_top(sp_composer *c);
/* The kinds the survey found, into b (for the subject and for the store
 * to remember once the message is delivered). */
SP_HIDDEN int sp_digest_kinds(sp_composer *c, sp_batch *b);
/* The digest's lines on the noise rules (digest_rules.c): ignored and
 * dropped by rule, ESCALATING, expiring rules (nothing when none). */
SP_HIDDEN void sp_digest_rules(sp_composer *c);
/* A heartbeat's line on the noise rules: ignored records waiting, drops
 * since the last message (nothing when there are none). */
SP_HIDDEN void sp_digest_rules_heartbeat(sp_composer *c);
/* false: r repeats one already listed (skip it); else *times (and *last
 * when > 1) for its line. */
SP_HIDDEN bool sp_digest_fold(sp_composer *c, const sponge_record *r,
			      int64_t *times, int64_t *last);
/* The runs of jobs in the batch: a line each, and a failed one's
 * output (digest_runs.c; nothing when there are none). */
SP_HIDDEN void sp_digest_runs(sp_composer *c);
/* t as "2026-11-21 03:12:07" in the digest's zone, or without the date. */
SP_HIDDEN void sp_digest_clock(sp_composer *c, int64_t t, char *buf, size_t n,
			       bool with_date);
/* "03:12:07 err     db  ×3 message  (last 03:12:09)" into o, the
 * record's other lines after "\n    ". */
SP_HIDDEN bool sp_digest_line(sp_composer *c, spbuf *o,
			      const sponge_record *r, int64_t times,
			      int64_t last);
/* Host and day headings due before r ("" none). */
SP_HIDDEN void sp_digest_headings(sp_composer *c, const sponge_record *r,
				  spbuf *host, spbuf *day);
/* r's time as the log shows it: "03:12:07" (or with the date). */
SP_HIDDEN void sp_digest_hms(sp_composer *c, int64_t t, char buf[32]);
/* One body line, into the composer's line sink (c->say: quoted-
 * printable, or HTML in that part); printf-style. */
SP_HIDDEN bool sp_body_line(sp_composer *c, const char *s, size_t n);
SP_HIDDEN bool sp_body_printf(sp_composer *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "2026-11-21T10:00:00.123456Z level   tag: message" (with "@host" after
 * the tag when it is not local_host) appended to out, without a line end;
 * suffix (or NULL) after the message's first line, its other lines after
 * "\n    ".
 * *tsec and tbuf cache the formatted second between calls. */
SP_HIDDEN bool sp_record_line(spbuf *out, const sponge_record *r,
			      const char *local_host, int64_t *tsec,
			      char tbuf[32], const char *suffix);

/* Stop reading the source (and so the read transaction) before the
 * commit: a reader left open would make the commit's write fail. */
SP_HIDDEN void sp_compose_stop(sp_composer *c);
/* True once the whole message was handed out. */
SP_HIDDEN bool sp_compose_done(const sp_composer *c);



/* Stream the whole message to out (CRLF, or LF when lf is set). */
SP_HIDDEN int sp_send_stream(sp_composer *c, bool lf, sponge_writer out,
			     void *arg);

/* ---- checks (check.c) ---- */
/* mail.from, mail.to and the transport's own keys: SPONGE_OK, or
 * SPONGE_ECONFIG naming the config file. */
SP_HIDDEN int sp_check_mail_config(sponge *sp, const struct sp_transport *t);
/* The envelope of check --send's test message (plan.c). */
SP_HIDDEN void sp_plan_test_envelope(sponge *sp, sp_envelope *e);

#endif
