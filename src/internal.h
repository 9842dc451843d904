/* internal.h - private declarations shared by the library's files. */
#ifndef SPONGE_INTERNAL_H
#define SPONGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "logsponge.h"

#define SP_HIDDEN __attribute__((visibility("hidden")))

/* ---- allocation: every allocation of the library goes through these ---- */
SP_HIDDEN void *sp_malloc(size_t n);
SP_HIDDEN void *sp_realloc(void *p, size_t n);
SP_HIDDEN void sp_free(void *p);
SP_HIDDEN char *sp_strdup(const char *s);

/* ---- fork safety (guard.c) ---- */
/* SP_GUARD; first in an entry point that reaches SQLite, OpenSSL or
 * state shared by the process: a fork() in another thread waits until
 * the call returns.  sp_fork_generation(): how many forks this process
 * descends from (a handle opened in an older generation is a parent's). */
SP_HIDDEN int sp_guard_enter(void);
SP_HIDDEN void sp_guard_leave(int *unused);
SP_HIDDEN unsigned sp_fork_generation(void);
/* A handle this process may use: open, and not inherited over a fork. */
#define sp_usable(sp) \
	((sp) && (sp)->db && (sp)->generation == sp_fork_generation())
/* The handles open in this process (handles.c): added before a handle
 * opens its connection (a forked child first lets go of the ones it
 * inherited), removed when it closes (an inherited one let go of). */
SP_HIDDEN void sp_handles_add(sponge *sp);
SP_HIDDEN void sp_handles_remove(sponge *sp);
/* The same for calls that need no spool (SPONGE_OPEN_NOSPOOL). */
#define sp_alive(sp) ((sp) && (sp)->generation == sp_fork_generation())
#define SP_GUARD \
	__attribute__((cleanup(sp_guard_leave), unused)) int sp_guard_ = \
		sp_guard_enter()

/* ---- fault injection, in the test build only (testhooks.c) ---- */
/*
 * sp_crash_point("name"): when $LOGSPONGE_TEST_CRASH names this point,
 * the process kills itself with SIGKILL there (the crash tests stop a
 * flush at every step this way).
 * sp_alloc_fail_at(k): make the k-th allocation from now fail (0: off);
 * sp_alloc_count(): allocations so far.  Used by the unit tests.
 * A release build (no SPONGE_TESTING) compiles these to nothing.
 */
#ifdef SPONGE_TESTING
SP_HIDDEN void sp_crash_point(const char *name);
/* sp_test_delay("name"): a 300 ms pause when $LOGSPONGE_TEST_DELAY names
 * this point (a race a test must be able to lose on purpose). */
SP_HIDDEN void sp_test_delay(const char *name);
SP_HIDDEN void sp_alloc_fail_at(unsigned long k);
SP_HIDDEN unsigned long sp_alloc_count(void);
SP_HIDDEN bool sp_alloc_should_fail(void);
#else
#define sp_crash_point(name) ((void)0)
#define sp_test_delay(name) ((void)0)
static inline bool sp_alloc_should_fail(void) { return false; }
#endif

/* ---- growable, always NUL-terminated byte buffer with a size cap ---- */
typedef struct spbuf {
	char *data;  /* never NULL after sb_init: points at "" when empty */
	size_t len;
	size_t cap;  /* allocated bytes (0 while data points at the static "") */
	size_t max;  /* refuse to grow past this many bytes (0 = SIZE_MAX) */
	bool failed; /* a grow failed: contents are truncated */
} spbuf;

SP_HIDDEN void sb_init(spbuf *b, size_t max);
SP_HIDDEN void sb_free(spbuf *b);
SP_HIDDEN void sb_reset(spbuf *b);
SP_HIDDEN bool sb_grow(spbuf *b, size_t extra);
SP_HIDDEN bool sb_add(spbuf *b, const void *p, size_t n);
SP_HIDDEN bool sb_addc(spbuf *b, char c);
SP_HIDDEN bool sb_adds(spbuf *b, const char *s);
SP_HIDDEN bool sb_printf(spbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
SP_HIDDEN bool sb_vprintf(spbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* ---- text cleaning (utf8.c) ---- */
/*
 * Append a cleaned copy of in[0..len) to out: valid UTF-8 is copied
 * byte for byte except control characters (C0 but tab, DEL, C1), which
 * become visible; each maximal ill-formed subsequence becomes U+FFFD.
 * At most `limit` bytes of cleaned text are produced (never splitting a
 * character); *consumed receives how many input bytes that covered.
 * Returns false only when out could not grow.
 */
SP_HIDDEN bool sp_clean(spbuf *out, const char *in, size_t len, size_t limit,
			size_t *consumed);
/* The same for a message: with `lines`, LF (and CRLF, as LF) stays, for
 * a record of several lines (a traceback); other controls are made
 * visible as always. */
SP_HIDDEN bool sp_clean_text(spbuf *out, const char *in, size_t len,
			     size_t limit, size_t *consumed, bool lines);
/* True when in[0..len) is valid UTF-8 without control characters but tab. */
SP_HIDDEN bool sp_is_clean(const char *in, size_t len);

/* ---- configuration (config.c) ---- */
enum sp_tls { SP_TLS_STARTTLS, SP_TLS_NONE, SP_TLS_IMPLICIT };
enum sp_fold { SP_FOLD_EXACT, SP_FOLD_MASKED, SP_FOLD_OFF };
/* [smtp] auth: 0 picks the best the server offers for the credentials */
enum sp_auth { SP_AUTH_AUTO, SP_AUTH_PLAIN, SP_AUTH_LOGIN, SP_AUTH_XOAUTH2,
	       SP_AUTH_OAUTHBEARER };

/* A level's name padded to SP_LEVEL_COLUMN characters ("err    "). */
#define SP_LEVEL_COLUMN 7
SP_HIDDEN const char *sp_level_column(int level);

/* The folding key of [mail] fold = masked: every run of hex digits that
 * holds a decimal digit (numbers, hex ids, UUID parts) becomes "#". */
SP_HIDDEN bool sp_mask(spbuf *out, const char *s, size_t n);
/* 64-bit FNV-1a: the offset basis and prime, and one byte more into h. */
#define SP_FNV_BASIS 14695981039346656037ULL
#define SP_FNV_PRIME 1099511628211ULL
/* True when all 8 bytes of w are in 0x20..0x7E (SWAR; see "Bit Twiddling
 * Hacks", hasless/haszero). */
#define SP_ONES 0x0101010101010101ULL
#define SP_HIGH 0x8080808080808080ULL
static inline bool sp_word_printable(uint64_t w)
{
	uint64_t lt20 = (w - SP_ONES * 0x20) & ~w & SP_HIGH;
	uint64_t x = w ^ (SP_ONES * 0x7F);
	uint64_t is7f = (x - SP_ONES) & ~x & SP_HIGH;
	return ((w & SP_HIGH) | lt20 | is7f) == 0;
}
/* True when no byte of w is c. */
static inline bool sp_word_lacks(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (SP_ONES * c);
	return ((x - SP_ONES) & ~x & SP_HIGH) == 0;
}
static inline uint64_t sp_fnv_byte(uint64_t h, unsigned char b)
{
	return (h ^ b) * SP_FNV_PRIME;
}
/* 64-bit FNV-1a of (level, tag, message), the message masked when asked
 * (hashing what sp_mask would write, without writing it). */
SP_HIDDEN uint64_t sp_fold_hash(int level, const char *tag, const char *msg,
				size_t n, bool masked);

#define SP_MAX_RCPT 64

/* The line that names message m[0..len) (summary.c): its first, but a
 * Python traceback's last (the exception); its length, *off where it
 * starts. */
SP_HIDDEN size_t sp_summary(const char *m, size_t len, size_t *off);

/* The masking's version (sp_mask), kept with each kind: 2 masks "0x…"
 * and words of eight hex letters or more. */
#define SP_MASK_VERSION 2

/* A kind of record a message carries: its tag and masked first line
 * (fp), the most severe level, how many, when (the digest's, for the
 * store to remember once the message is delivered). */
typedef struct sp_kind_seen {
	uint64_t fp;
	int level;
	int64_t count, first, last;
	char tag[48];
	char sample[200];       /* the first one's first line */
} sp_kind_seen;

/* Kinds gathered in memory by fingerprint (kind_table.c). */
typedef struct sp_kind_table {
	sp_kind_seen *t; /* cap slots, empty ones fp 0 */
	size_t n, cap;
} sp_kind_table;
/* Count one record of kind (tag, summary line[0..len)) at level and
 * time; false when memory ran out.  Once the table holds max kinds, only
 * those are counted. */
SP_HIDDEN bool sp_kind_table_add(sp_kind_table *t, size_t max,
				 const char *tag, const char *line, size_t len,
				 int level, int64_t time);
/* The kinds moved to the front of t->t, in no order; how many. */
SP_HIDDEN size_t sp_kind_table_pack(sp_kind_table *t);
SP_HIDDEN void sp_kind_table_free(sp_kind_table *t);

/* What the spool knows of a kind (kinds table). */
enum { SP_KIND_ACTIVE = 0, SP_KIND_RESOLVED = 2, SP_KIND_MUTED = 3 };
typedef struct sp_kind_known {
	bool known;
	int state;
	int64_t last_seen, resolved, id;
} sp_kind_known;

/* A [source NAME] section: a log file logsponge tail reads. */
typedef struct sp_source_cfg {
	char *name, *path, *tag, *host;
	int format;             /* SPONGE_FORMAT_* */
	int level;              /* lines without one */
	int detect_level, join; /* 0 or 1 */
	int line;               /* where its section starts */
	int type;               /* SPONGE_SOURCE_* */
	char *directory, *match;
	int priority;           /* -1: all */
} sp_source_cfg;

/* A [job NAME] section (NAME may be a glob): what a run of a job that
 * logsponge run records does. */
typedef struct sp_job_cfg {
	char *name;
	int mail;               /* SPONGE_JOB_MAIL_* */
	int stderr_level;       /* -1: run's --stderr-level, else err */
	int64_t every_us;       /* a run expected this often (0: no check) */
	int64_t grace_us;       /* and late by at most this */
	int64_t timeout_us;     /* a run longer than this is said (0: none) */
	int kill;               /* and killed */
	int line;               /* where its section starts */
} sp_job_cfg;

typedef struct sp_config {
	char *path;             /* file read, or NULL */
	char *spool_path;       /* [spool] path, or NULL */
	uint64_t max_record;    /* [spool] max_record, bytes */
	int64_t busy_timeout_us;/* [spool] busy_timeout */
	int64_t max_records;    /* [spool] max_records, 0 none */
	uint64_t max_bytes;     /* [spool] max_bytes, 0 none */
	int64_t keep_sent_us;   /* [spool] keep_sent, 0: delete when sent */
	int64_t max_kinds;      /* [spool] max_kinds */
	sponge_policy policy;
	int new_level;          /* [policy] new_level: NEW: in the subject */
	int64_t quiet_after_us; /* [policy] quiet_after: BACK after this */
	/* [mail] */
	char *from;             /* header form, "Name <a@b>" or "a@b" */
	char *from_addr;        /* envelope form, "a@b" */
	char *to[SP_MAX_RCPT];  /* header forms */
	char *to_addr[SP_MAX_RCPT];
	char *from_show;        /* as people read them: "Jörg Müller <j@x>" */
	char *to_show[SP_MAX_RCPT];
	int nto;
	char *subject;          /* template, or NULL for the default */
	char *timezone;         /* [mail] timezone: NULL/"local", "UTC", a name */
	char *transport;        /* "smtp", "stdout", "null" */
	int fold;               /* enum sp_fold */
	int html;               /* [mail] html: add a text/html alternative */
	uint64_t max_size;      /* [mail] max_size, bytes */
	/* [smtp] */
	char *host;
	int port;               /* 0: 587, or 465 with implicit TLS */
	int tls;                /* enum sp_tls */
	char *ca_file;
	int verify;
	char *user;
	char *password_file;
	char *password_command;
	char *token_command;    /* an OAuth2 access token on its stdout */
	int auth;               /* enum sp_auth */
	char *helo;
	int64_t timeout_us;
	/* [sendmail] */
	char *sendmail_cmd;     /* NULL: /usr/sbin/sendmail -oi -t */
	int64_t sendmail_timeout_us;
	/* [maildir] */
	char *maildir;
	/* [rules] */
	char *rules_path;       /* the rules directory; NULL: rules.d beside
				   the config file */
	char *rules_logcheck;   /* logcheck rule directories, blank-separated */
	sp_source_cfg *sources; /* [source NAME] sections, in order */
	size_t nsources;
	sp_job_cfg *jobs;       /* [job NAME] sections, in order */
	size_t njobs;
} sp_config;

SP_HIDDEN void sp_config_defaults(sp_config *c);
SP_HIDDEN void sp_config_free(sp_config *c);
/*
 * Parse file `path` into c; on error fills err ("file:line: why").  With
 * `deferred` (ingestion needs only [spool]): only a [spool] error fails;
 * any other problem -- a bad key or value elsewhere, a file that cannot
 * be read -- is written to *deferred and the call succeeds (c then holds
 * what could be read; flush refuses it).  Without it every error fails.
 */
SP_HIDDEN int sp_config_load(sp_config *c, const char *path, spbuf *err,
			     spbuf *deferred);
/* The same from a string (tests); name is used in messages. */
SP_HIDDEN int sp_config_load_string(sp_config *c, const char *text,
				    const char *name, spbuf *err,
				    spbuf *deferred);

/* ---- time (timeutil.c) ---- */
/* Stored times lie in years 0001-9999, so no difference overflows. */
#define SP_TIME_MIN (-62135596800000000LL) /* 0001-01-01T00:00:00Z */
#define SP_TIME_MAX (253402300799999999LL) /* 9999-12-31T23:59:59.999999Z */
/* A record's received time is stored when it is further than this from
 * the time the record states. */
#define SP_RECEIVED_SLACK_US (60 * 1000000LL)
/* When the spool received a record, in SQL (the column may be NULL). */
#define SP_RECEIVED_SQL "coalesce(received, time)"
SP_HIDDEN int64_t sp_clamp_time(int64_t t);
/* A syslog time without a year (month 0-11, day, h:m:s, local time): in
 * the year that puts it nearest before now_us (a day ahead is still this
 * year: clocks differ), in microseconds. */
SP_HIDDEN int64_t sp_yearless_time(int mon, int day, int h, int mi, int se,
				   int64_t now_us);
/* a - b, saturating at the int64 range. */
SP_HIDDEN int64_t sp_sub(int64_t a, int64_t b);

/* ---- the zone of the times a digest shows (zone.c) ---- */
typedef struct sp_zone sp_zone;
typedef struct sp_civil {
	int year, mon, mday, wday, hour, min, sec;
	int off_s;       /* east of UTC, seconds */
	char abbr[16];   /* "CET", "UTC", "+0530", or "" */
} sp_civil;
/* NULL for local (NULL or "local"), "UTC" or an IANA name of the
 * system's tzdata whose file is whole; else why not (static text).  The
 * config checks names with it. */
SP_HIDDEN const char *sp_zone_problem(const char *spec);
/* NULL when the TZif file at path is whole and consistent, else what is
 * wrong with it (static text). */
SP_HIDDEN const char *sp_tzif_check(const char *path);
/* SPONGE_ECONFIG with *why when a named zone cannot be loaded. */
SP_HIDDEN int sp_zone_open(const char *spec, sp_zone **z, spbuf *why);
SP_HIDDEN void sp_zone_close(sp_zone *z);
SP_HIDDEN void sp_zone_civil(const sp_zone *z, int64_t t_us, sp_civil *c);
/* "CET, UTC+01:00", "UTC+05:30" or "UTC". */
SP_HIDDEN void sp_zone_label(const sp_civil *c, char *buf, size_t n);

/* ---- the public functions whose structs may grow (abi.c wraps them:
 * these take and fill the library's own, full-size structs) ---- */
SP_HIDDEN int sp_query(sponge *sp, const sponge_filter *f, sponge_iter **out);
SP_HIDDEN int sp_stats_get(sponge *sp, sponge_stats *out);
SP_HIDDEN int sp_get_policy(const sponge *sp, sponge_policy *out);
SP_HIDDEN int sp_flush(sponge *sp, unsigned flags, sponge_writer out,
		       void *arg, sponge_flush_result *res);
/* sponge_decide_rules (flush.c): the verdict with the rules it read. */
SP_HIDDEN int sp_decide(sponge *sp, unsigned flags, sponge_decision *d);

/* ---- the policy (policy.c) ---- */
typedef struct sp_policy_in {
	int64_t pending;
	int64_t by_level[8];
	int64_t oldest_us; /* received time of the oldest pending record */
	int64_t now;
	int64_t last_us;   /* the last message went then, or (none yet)
			      the spool was first watched: the heartbeat's
			      start (0: neither) */
	int64_t sent_us;   /* the last message went then (0: none yet):
			      min_interval's start */
	bool force;
	int64_t new_pending; /* records of new kinds at/above flush_on_new */
	bool learning;       /* within policy.learn */
	int64_t runs_due;    /* ended runs whose job mails at once */
	char run_why[160];   /* the first: "backup failed (exit 23)" */
} sp_policy_in;
/* The verdict (a sponge_verdict) of the [policy] rules, and the one-line
 * reason in why[0..n).  Pure: no I/O, no clock. */
SP_HIDDEN int sp_policy(const sponge_policy *p, const sp_policy_in *in,
			char *why, size_t n);
/* Each rule's state: what sp_policy decides by (d's rules only). */
SP_HIDDEN void sp_policy_rules(const sponge_policy *p, const sp_policy_in *in,
			       sponge_decision *d);

/* ---- commands of the config (command.c) ---- */
#define SP_COMMAND_OUTPUT_MAX 4096
/*
 * Run `/bin/sh -c cmd` in a process group of its own, stdin /dev/null,
 * and collect at most `cap` bytes of its standard output in *out.  Waits
 * until the command exits (not for the end of its output: a child it
 * left may hold the pipe), at most timeout_us; on timeout, or when it
 * prints more than cap, its whole process group is killed.  Returns
 * SPONGE_OK when it exited 0; SPONGE_ETEMPFAIL on timeout; SPONGE_ECONFIG
 * when it failed or printed too much; *why says what happened.
 */
SP_HIDDEN int sp_run_command(const char *cmd, int64_t timeout_us, size_t cap,
			     spbuf *out, spbuf *why);
/* Start `/bin/sh -c cmd` in a process group of its own (a timeout can
 * kill all it started), fds[k] as its descriptor k (-1: /dev/null).
 * Returns 0 or an errno. */
SP_HIDDEN int sp_spawn_sh(const char *cmd, const int fds[3], pid_t *pid);

/* ---- the handle (spool.c) ---- */
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

#define SP_MULTI_ROWS 32

typedef struct sp_queued {
	int64_t time_us;
	int64_t received_us; /* 0: within SP_RECEIVED_SLACK_US of time_us */
	int level;
	size_t tag_off, tag_len;
	size_t host_off, host_len;
	size_t msg_off, msg_len;
	int rule;       /* the rule that judged it (index), or -1 */
	int orig_level; /* its level before a rule changed it, or -1 */
	int pid;        /* the pid its syslog line named, or 0 */
	bool escalated; /* its rule's unless= threshold was passed */
	bool new_kind;  /* of a kind no delivered message carried (set when
			   written, for policy.flush_on_new) */
	int64_t run;    /* the run (runs.id) that printed it, or 0 */
} sp_queued;

/* How often a loaded rule matched since the handle last wrote (the store
 * adds it to rule_hits, and drops to rule_dropped, with the next write). */
typedef struct sp_rule_hit {
	const char *name; /* owned by the ruleset */
	int verdict;      /* a sponge_rule_verb */
	int64_t n;
	/* unless=N/WINDOW (N 0: none): matches in the window are what the
	 * spool counted when last asked (base, at base_at), what this handle
	 * wrote since (since_base), and n */
	int64_t unless_n, unless_us;
	int64_t base, since_base, base_at;
} sp_rule_hit;

/* The rules a handle applies (ruleset.c); freed with the handle. */
typedef struct sp_ruleset sp_ruleset;
SP_HIDDEN void sp_ruleset_free(sponge *sp);
/* sponge_rules_judge for a record on its way in: out->masked is "" unless
 * a rule reads the masked line. */
SP_HIDDEN int sp_rules_judge_ingest(sponge *sp, const sponge_entry *e,
				    const char *line, size_t len, int pid,
				    int64_t now_us, sponge_judgement *out);
/* The rules of [rules] path whose until= falls within `window` of now,
 * before or after, to each(arg, name, until): read, not compiled. */
SP_HIDDEN int sp_rules_expiring(sponge *sp, int64_t now, int64_t window,
				void (*each)(void *, const char *, int64_t),
				void *arg);
/* A record a noise rule ignores is stored at level + SP_IGNORED (8…15):
 * kept and sent along with the next message, but out of the counts the
 * policy reads, the digest's attention block and its log. */
#define SP_IGNORED 8
/* What judgement j makes of a record at `level`: the level to store (an
 * ignored record's + 8), *orig its level before a rule changed it (-1:
 * unchanged), *drop when it is not to be stored. */
static inline int sp_verdict_level(const sponge_judgement *j, int level,
				   int *orig, bool *drop)
{
	*orig = -1;
	*drop = j->verdict == SPONGE_RULE_DROP;
	if (j->verdict == SPONGE_RULE_IGNORE)
		return level + SP_IGNORED;
	if (j->rule >= 0 && j->level != level) {
		*orig = level;
		return j->level;
	}
	return level;
}

#define SP_INSERT_SHAPES 4

struct sponge {
	sp_ruleset *rules;      /* loaded by sponge_rules_load (ruleset.c) */
	sp_rule_hit *hits;      /* per loaded rule (NULL: no rules) */
	size_t nhits;
	bool hits_pending;      /* some hit is not written yet */
	bool rules_tried;       /* ingest loaded the rules (or failed to) */
	spbuf rules_error;      /* why ingest judges nothing ("" none) */
	/* the line sponge_parse_line() parsed last: its raw text and pid, for
	 * the rules that read a record as its syslog line */
	const char *parsed_line, *parsed_msg;
	size_t parsed_len;
	int parsed_pid;
	/* kinds learnt from past logs, until sponge_kinds_learn_end()
	 * (kinds_learn.c) */
	sp_kind_table learn;
	sqlite3 *db;
	char *path;
	sp_config cfg;
	char host[256];
	spbuf err;
	spbuf warnings;         /* sponge_config_warnings' text */
	spbuf info;        /* what the last sponge_check_smtp() found */
	spbuf cfg_error;   /* a config problem outside [spool] ("" none):
			      ingestion goes on, flush refuses */
	sqlite3_stmt *ins[SP_INSERT_SHAPES]; /* insert one record (in
						shapes: store.c) */
	sqlite3_stmt *ins_multi[SP_INSERT_SHAPES]; /* SP_MULTI_ROWS records */
	spbuf clean;       /* scratch for cleaning one message */
	spbuf parsed;      /* storage for sponge_parse_line() results */
	/* batching */
	unsigned batch_max;
	size_t batch_bytes_max;
	unsigned batch_ms;
	sp_queued *q;
	size_t qn, qcap;
	spbuf qdata;       /* tags and messages of queued records */
	int64_t q_first_us;
	int64_t rcv_now;   /* wall clock for received times (coarse) */
	unsigned rcv_reads;
	int64_t busy_since;       /* when the current wait for a lock began */
	unsigned generation; /* sp_fork_generation() when it was opened */
	/* a source's position, written with the next write (sources.c) */
	char *pos_name, *pos_cursor, *pos_read;
	sponge_position pos;
	/* kinds looked up at ingest, by fingerprint: new or not (a log
	 * repeats its kinds); forgotten each minute, as other processes
	 * deliver and resolve (store_kinds.c) */
	struct sp_seen_fp {
		uint64_t fp; /* 0: empty */
		bool yes;
	} kind_seen[256];
	int64_t kind_seen_at;
	/* the run records appended now belong to (runs.c): written with
	 * the records, in their transaction, its end once it is set */
	struct sp_run_state {
		int64_t id;         /* 0: none */
		int64_t first, last; /* ids of its records this write (0) */
		int64_t lines;      /* output lines queued, not yet written */
		bool ended;
		int64_t end_us;
		int status, signal, timed_out;
	} run;
	sponge *open_prev, *open_next; /* the process's open handles (handles.c) */
};

/* After a write committed (store_runs.c): the run's range and lines are
 * written; an ended run is over (records appended later belong to none). */
SP_HIDDEN void sp_run_written(sponge *sp);
/* How a run ended, in a few words: "failed (exit 23)", "ended (exit 0)",
 * "was killed by signal 9", "timed out", "did not end". */
SP_HIDDEN void sp_run_outcome(const sponge_run *r, char *buf, size_t n);

/* ---- the MIME encoders (mime.c), pure ---- */
/* A display name as an RFC 5322 phrase: as written when it is atoms, a
 * quoted string when it holds specials ("Doe, Jane"), RFC 2047 words
 * when it is not ASCII. */
SP_HIDDEN bool sp_phrase(spbuf *out, const char *name);
/* One line, quoted-printable, its CRLF appended (no line over 76). */
SP_HIDDEN bool sp_qp_line(spbuf *out, const char *s, size_t n);
/* "Name: text" CRLF for unstructured text, folded within 78 octets. */
SP_HIDDEN bool sp_header_text(spbuf *out, const char *name, const char *text);
SP_HIDDEN bool sp_base64(spbuf *out, const unsigned char *p, size_t n);
/* "Sun, 06 Dec 2026 10:00:00 +0000" */
SP_HIDDEN void sp_rfc5322_date(int64_t t_us, char *buf, size_t n);
/* s[0..n) with & < > " ' as entities. */
SP_HIDDEN bool sp_html_escape(spbuf *out, const char *s, size_t n);

/* This host's fully qualified name (its canonical name, when that has a
 * dot and is not localhost…) into out; false when there is none. */
SP_HIDDEN bool sp_host_fqdn(char *out, size_t n);

/* Resolve sp->path one component at a time (spool_path.c): make what
 * is missing (unless SPONGE_OPEN_NOCREATE), refuse links that are not
 * the caller's or root's, and leave the canonical path in sp->path. */
SP_HIDDEN int sp_spool_resolve(sponge *sp, unsigned flags);

/* SPONGE_ERESOURCE for EMFILE and ENFILE, else `otherwise`. */
#define sp_errno_code(e, otherwise) \
	((e) == EMFILE || (e) == ENFILE ? SPONGE_ERESOURCE : (otherwise))

/* Record an error on sp (sprintf-style detail) and return code. */
SP_HIDDEN int sp_fail(sponge *sp, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Map a SQLite result to a sponge code and record its message. */
SP_HIDDEN int sp_dberr(sponge *sp, int rc, const char *what);

#endif
