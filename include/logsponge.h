/*
 * logsponge.h - the whole public interface of liblogsponge.
 *
 * liblogsponge soaks log records into a durable SQLite spool (one file,
 * WAL mode) from which sponge_flush() (`logsponge flush`) later sends them
 * as one email.  Only sponge_flush() and sponge_check_smtp() touch the
 * network; nothing declared here exits, aborts or prints.
 *
 * Conventions used throughout:
 *  - Structs the caller passes in or gets back (sponge_filter,
 *    sponge_stats, sponge_policy, sponge_flush_result) may grow at their
 *    end in later versions.  The functions that take them are macros
 *    over *_sized entry points that also pass the struct's size as this
 *    header had it (sizeof), so a program built against an older header
 *    keeps working with a newer library: it reads and writes only that
 *    many bytes, and a field the caller's struct lacks counts as zero.
 *    Bindings (ctypes, FFI) call the *_sized functions with their size.
 *  - Functions return an int error code: SPONGE_OK (0) on success, one of
 *    the other sponge_code values on failure.  sponge_strerror() turns a
 *    code into static text; sponge_errmsg() gives the detail of the last
 *    failure on a handle ("spool /x: disk I/O error").
 *  - Strings passed in are borrowed for the duration of the call only,
 *    unless stated otherwise; the library copies what it keeps.
 *  - Strings returned are owned by the library and valid until the stated
 *    point (usually the next call on the same handle or iterator).
 *  - Times are microseconds since the Unix epoch, UTC (int64_t).
 *  - A handle must not be used by two threads at the same time; separate
 *    handles on one spool (in one or many processes) are safe.
 *  - fork() is safe while other threads are inside the library: the fork
 *    waits until no thread is in a call that reaches SQLite or OpenSSL.
 *    A handle does not cross it: in the child, calls on an inherited
 *    handle return SPONGE_EINVAL and sponge_close() only frees it; the
 *    child opens its own.  No function is async-signal-safe.
 */
#ifndef LOGSPONGE_H
#define LOGSPONGE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define SPONGE_API __attribute__((visibility("default")))
#define SPONGE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPONGE_API
#define SPONGE_PRINTF(f, a)
#endif

/* Compile-time version; sponge_version_number() is its run-time twin. */
#define SPONGE_VERSION "0.1.0"
#define SPONGE_VERSION_NUMBER 1000 /* major*1000000 + minor*1000 + patch */

SPONGE_API const char *sponge_version(void);
SPONGE_API int sponge_version_number(void);

/* Error codes.  Append-only: values are never renumbered or removed. */
typedef enum sponge_code {
	SPONGE_OK = 0,
	SPONGE_EINVAL = 1,     /* bad argument: NULL handle/format, bad level */
	SPONGE_ENOMEM = 2,     /* out of memory */
	SPONGE_ECANTOPEN = 3,  /* spool cannot be created or opened */
	SPONGE_ENOTSPOOL = 4,  /* file is not a logsponge spool, or corrupt */
	SPONGE_EVERSION = 5,   /* spool written by a newer logsponge */
	SPONGE_EIO = 6,        /* read/write error on the spool */
	SPONGE_EFULL = 7,      /* disk or quota full */
	SPONGE_EREADONLY = 8,  /* spool is read-only */
	SPONGE_EBUSY = 9,      /* spool stayed locked past the busy timeout */
	SPONGE_ECONFIG = 10,   /* bad configuration file or value */
	SPONGE_ENOENT = 11,    /* spool does not exist (SPONGE_OPEN_NOCREATE) */
	SPONGE_ETEMPFAIL = 12, /* delivery failed for now: network, 4xx, timeout */
	SPONGE_EPERMFAIL = 13, /* delivery refused: 5xx */
	SPONGE_EAUTH = 14,     /* the server refused the credentials */
	SPONGE_ETLS = 15,      /* no STARTTLS, TLS handshake or certificate */
	SPONGE_ERESOURCE = 16, /* out of file descriptors (EMFILE, ENFILE) */
	SPONGE_ROW = 100,      /* sponge_query_next(): a record is available */
	SPONGE_DONE = 101      /* sponge_query_next(): no more records */
} sponge_code;

/* Static, never NULL; unknown codes give "unknown error". */
SPONGE_API const char *sponge_strerror(int code);

/* The eight syslog severities; a smaller number is more severe. */
typedef enum sponge_level {
	SPONGE_EMERG = 0,
	SPONGE_ALERT = 1,
	SPONGE_CRIT = 2,
	SPONGE_ERR = 3,
	SPONGE_WARNING = 4,
	SPONGE_NOTICE = 5,
	SPONGE_INFO = 6,
	SPONGE_DEBUG = 7
} sponge_level;

/* "emerg" … "debug" for 0…7; NULL for anything else. */
SPONGE_API const char *sponge_level_name(int level);

/*
 * Level from a name, case-insensitive: the eight names, their numbers
 * "0"…"7", and aliases (emergency panic fatal critical error warn
 * information trace …).  Returns the level 0…7, or -1 if unknown.
 */
SPONGE_API int sponge_level_from_name(const char *name);

/*
 * Guess the level of a log line (`add --detect-level`).  Recognises a
 * syslog / sd-daemon "<N>" prefix, a leading level word ("ERROR:",
 * "[warn]", "E ", "E1121 " glog style; after up to two leading timestamp
 * tokens), logfmt "level=error" and JSON "level":"error" (also numeric
 * bunyan/pino levels).  Returns the level, or -1 if none was found.
 * *skip (may be NULL) receives how many leading bytes are markup that
 * should be dropped from the message (only the "<N>" prefix is dropped).
 */
SPONGE_API int sponge_detect_level(const char *line, size_t len, size_t *skip);

/*
 * Parse a duration such as "90s", "15m", "24h", "7d", "2w", "500ms" or a
 * bare number of seconds, into microseconds.  Returns SPONGE_OK or
 * SPONGE_EINVAL.
 */
SPONGE_API int sponge_parse_duration(const char *text, int64_t *out_us);

/* A size such as "64k", "10M", "1G" or a number of bytes (k = 1024). */
SPONGE_API int sponge_parse_size(const char *text, uint64_t *out_bytes);

/*
 * A point in time for --since/--until: ISO 8601 ("2026-11-21T10:00:00Z",
 * "2026-11-21 10:00", "2026-11-21", with optional fraction and a Z or
 * ±HH:MM offset; no offset means UTC), "now", "today" or "yesterday"
 * (local midnight, by the process's TZ, that begins the day of now_us or
 * the day before), or a duration meaning that long before now_us ("2h").
 * Returns SPONGE_OK or SPONGE_EINVAL.
 */
SPONGE_API int sponge_parse_time(const char *text, int64_t now_us,
				 int64_t *out_us);

/* Writes "2026-11-21T10:00:00.123456Z" (28 bytes with the NUL) into buf. */
SPONGE_API void sponge_format_time(int64_t t_us, char buf[32]);

/* A duration for people: "40s", "2m 5s", "3h 10m", "2d 4h" into buf of
 * n bytes (negative counts as 0). */
SPONGE_API void sponge_format_span(int64_t us, char *buf, size_t n);

/* Current time in microseconds since the epoch (CLOCK_REALTIME). */
SPONGE_API int64_t sponge_now(void);

/* ---------------------------------------------------------------------- */
/* Opening a spool                                                        */

typedef struct sponge sponge;

/* Flags for sponge_open(). */
#define SPONGE_OPEN_NOCREATE 0x1u  /* fail with SPONGE_ENOENT if missing */
#define SPONGE_OPEN_NOCONFIG 0x2u  /* read no config file at all */
#define SPONGE_OPEN_NOSPOOL 0x4u   /* read the config only, open no spool:
				      for sponge_rules_*, the config's
				      accessors, sponge_check_config and
				      sponge_check_smtp; other calls give
				      SPONGE_EINVAL */

/*
 * Open (and create, mode 0600 in a 0700 directory) a spool.
 *
 * spool_path: NULL chooses $LOGSPONGE_SPOOL, else the config's spool.path,
 *   else $XDG_STATE_HOME/logsponge/spool.db (~/.local/state/...).
 * config_path: NULL chooses $LOGSPONGE_CONFIG, else
 *   $XDG_CONFIG_HOME/logsponge/config (~/.config/...), else
 *   /etc/logsponge.conf; a default file that does not exist is fine.
 *
 * Writing needs only the spool and the config's [spool] section: only an
 * error there (or in choosing the spool) makes sponge_open fail with
 * SPONGE_ECONFIG.  Any other problem -- an unknown key or section, a bad
 * value elsewhere, a password file readable by others, a config file
 * that cannot be read (an explicitly named one that does not exist
 * included) -- leaves a working handle: records are kept, and
 * sponge_config_error() says what is wrong; sponge_flush() and
 * sponge_check_smtp() refuse such a handle with SPONGE_ECONFIG.
 *
 * On success *out is a new handle.  On failure *out is still set to a
 * handle that carries only the error detail for sponge_errmsg(), unless
 * memory ran out (then *out is NULL); either way close it with
 * sponge_close().  Opening never blocks on another writer for longer than
 * the busy timeout (config spool.busy_timeout, default 60 s).
 */
SPONGE_API int sponge_open(sponge **out, const char *spool_path,
			   const char *config_path, unsigned flags);

/*
 * Write any queued records (see sponge_set_batch), then free everything.
 * Returns the result of that last write (SPONGE_OK when nothing was
 * queued).  NULL is a no-op returning SPONGE_OK.  The handle is gone
 * afterwards whatever the result.
 */
SPONGE_API int sponge_close(sponge *sp);

/* A config problem outside [spool] found at sponge_open ("file:line:
 * what"), or "" when there is none.  Never NULL; owned by sp, valid until
 * sponge_close(). */
SPONGE_API const char *sponge_config_error(const sponge *sp);

/* Detail of the last failure on sp (static "" if none; never NULL). Valid
 * until the next call on sp. */
SPONGE_API const char *sponge_errmsg(const sponge *sp);

/* The spool file path in use, and the config file read (NULL if none).
 * Owned by sp. */
SPONGE_API const char *sponge_path(const sponge *sp);
SPONGE_API const char *sponge_config_path(const sponge *sp);
/* The host name this handle's records carry. */
SPONGE_API const char *sponge_host(const sponge *sp);

/* ---------------------------------------------------------------------- */
/* Writing records                                                        */

/* Receives output: the --dry-run message, the stdout transport, the
 * records of sponge_discard_queue().  Returns 0 on success, non-zero to
 * abort. */
typedef int (*sponge_writer)(void *arg, const char *buf, size_t len);

/*
 * Record one message.  level 0…7; tag may be NULL or "" (no tag); a time
 * of 0 means now; a time outside the years 0001-9999 is clamped to them.
 * When the time is more than a minute from now, the spool also keeps when
 * it received the record: the policy's ages (max_age, expire) and purge
 * go by that.  msg is len bytes and may hold any bytes: invalid UTF-8
 * becomes U+FFFD, control characters other than tab become visible
 * (U+2400 "control pictures" for C0 and DEL, "<U+0085>" for C1), and a
 * message longer than spool.max_record (default 64 KiB) is cut with a
 * marker saying how many bytes were cut.  The tag is cleaned the same way
 * and limited to 64 bytes.
 *
 * Without batching (the default) the record is committed when this
 * returns SPONGE_OK.  With batching it is queued; see sponge_set_batch.
 */
SPONGE_API int sponge_append(sponge *sp, int level, const char *tag,
			     int64_t time_us, const char *msg, size_t len);

/*
 * The full form of sponge_append.  host NULL means this machine's name.
 * cut_bytes: bytes of the original message the caller already dropped
 * (for example because a line was longer than it wanted to buffer); they
 * are added to the count in the cut marker.  With cut_bytes > 0 the
 * marker is always added.  Cleaning and batching as for sponge_append.
 */
typedef struct sponge_entry {
	int level;
	const char *tag;
	int64_t time_us;
	const char *host;
	const char *msg;
	size_t len;
	uint64_t cut_bytes;
} sponge_entry;

SPONGE_API int sponge_append_entry(sponge *sp, const sponge_entry *e);

/* Input formats understood by sponge_parse_line(). */
typedef enum sponge_format {
	SPONGE_FORMAT_TEXT = 0,         /* a plain line: nothing to parse */
	SPONGE_FORMAT_JOURNAL_JSON = 1, /* one `journalctl -o json` object */
	SPONGE_FORMAT_RFC5424 = 2,      /* <PRI>1 TIMESTAMP HOST APP … MSG */
	SPONGE_FORMAT_RFC3164 = 3,      /* <PRI>Mmm dd hh:mm:ss HOST TAG: MSG */
	SPONGE_FORMAT_SYSLOG = 4        /* a syslog file's line (no PRI):
					   Mmm dd hh:mm:ss HOST TAG[PID]: MSG
					   or RFC3339-TIME HOST TAG[PID]: MSG */
} sponge_format;

/*
 * Parse one line (without its line end) of a structured format into *e:
 * level, tag, time, host and message, where the line has them.  Fields
 * the line lacks are left as the caller set them (set e->level to the
 * default first).  Returns 1 when the line was understood, 0 when it was
 * not (e is then untouched: record the line as plain text).  Pointers put
 * into *e point into `line` or into storage of sp, valid until the next
 * call on sp.  JSON is parsed with jansson.
 *   journal-json: MESSAGE (a string, or an array of bytes), PRIORITY,
 *     SYSLOG_IDENTIFIER or _COMM, _HOSTNAME, __REALTIME_TIMESTAMP.
 *   rfc5424: PRI, TIMESTAMP, HOSTNAME, APP-NAME (the tag), MSG (a BOM is
 *     removed); structured data other than "-" is kept in front of MSG.
 *   rfc3164: PRI, the timestamp (local time, this year or the last),
 *     HOSTNAME, TAG (without [pid]), MSG.
 *   syslog: a syslog file's line, no PRI (the level is left as set): the
 *     timestamp as rfc3164's or RFC 3339 (its offset kept), HOSTNAME, TAG
 *     (without [pid]), MSG.  A line without a host is not one.
 */
SPONGE_API int sponge_parse_line(sponge *sp, int format, const char *line,
				 size_t len, sponge_entry *e);

/* ---- noise rules ------------------------------------------------------ */

/* What a rule does (sponge_judgement.verdict). */
typedef enum sponge_rule_verb {
	SPONGE_RULE_NONE = 0,   /* no rule matched */
	SPONGE_RULE_IGNORE = 1, /* kept, out of the triggers and the log */
	SPONGE_RULE_DROP = 2,   /* not stored */
	SPONGE_RULE_LEVEL = 3,  /* re-levelled */
	SPONGE_RULE_KEEP = 4    /* exempt from every later rule */
} sponge_rule_verb;

/* What the rules say of one record. */
typedef struct sponge_judgement {
	int verdict;          /* a sponge_rule_verb */
	int level;            /* the record's level after the rule */
	long rule;            /* the rule's index (sponge_rule_name), or -1 */
	const char *masked;   /* the record's first line in the digest's
				 masked form (fold = masked) when no rule
				 matched or a rule reads that form, else "";
				 owned by sp, valid until the next call on sp */
} sponge_judgement;

/*
 * Read the rules: the files *.rules of [rules] path (default: rules.d
 * beside the config file), in name order, first match wins.  A missing
 * directory is no rules.  A file that does not parse, or a pattern the
 * engine cannot take: SPONGE_ECONFIG, and sponge_errmsg() names the file
 * and line.  Called again, it reads them again.
 */
SPONGE_API int sponge_rules_load(sponge *sp);
/* Records are judged as they are added, by the rules the first of them
 * reads (or those sponge_rules_load() read before).  When those do not
 * read, nothing is judged and every record is kept as it came; this says
 * why ("" when they read, or have not been read yet). */
SPONGE_API const char *sponge_rules_error(const sponge *sp);
/* How many rules are loaded; rule i's name (name=, else FILE:LINE), its
 * verb, and where it is written (FILE:LINE); NULL past the end. */
SPONGE_API size_t sponge_rules_count(const sponge *sp);
SPONGE_API const char *sponge_rule_name(const sponge *sp, size_t i);
SPONGE_API int sponge_rule_verb_of(const sponge *sp, size_t i);
SPONGE_API const char *sponge_rule_where(const sponge *sp, size_t i);
/* Rule i's until= (0: none); past it the rule no longer applies. */
SPONGE_API int64_t sponge_rule_until(const sponge *sp, size_t i);
/* The loaded rules' verdict on entry e (as sponge_append_entry would get
 * it: its level, tag, host and message), at the time now_us (a rule
 * past its until= no longer applies).  logcheck's rules read line[0..len)
 * (the record as a syslog file has it); line NULL: the record written as
 * one, "Mmm dd hh:mm:ss HOST TAG: MESSAGE", local time, or, for the entry
 * sponge_parse_line() just made, as ingest judges it (the line it parsed,
 * or with its pid). */
SPONGE_API int sponge_rules_judge_sized(sponge *sp, const sponge_entry *e,
					const char *line, size_t len,
					int64_t now_us, sponge_judgement *out,
					size_t size);
/* The same, and every rule that matches e (not only the first) to
 * each(arg, i), in no particular order, in the same scan: for showing
 * the rules that earlier ones shadow. */
SPONGE_API int sponge_rules_judge_all_sized(sponge *sp, const sponge_entry *e,
					    const char *line, size_t len,
					    int64_t now_us,
					    void (*each)(void *arg, size_t i),
					    void *arg, sponge_judgement *out,
					    size_t size);
#define sponge_rules_judge_all(sp, e, line, len, now, each, arg, out)         \
	sponge_rules_judge_all_sized((sp), (e), (line), (len), (now), (each), \
				     (arg), (out), sizeof(sponge_judgement))
#define sponge_rules_judge(sp, e, line, len, now, out)                        \
	sponge_rules_judge_sized((sp), (e), (line), (len), (now), (out),      \
				 sizeof(sponge_judgement))

/* What one rule did, as the spool counted it (sponge_rule_stats). */
typedef struct sponge_rule_stat {
	const char *rule;  /* its name */
	int verdict;       /* a sponge_rule_verb */
	int64_t day, week, month; /* matches in the last 24 h, 7 d, 30 d */
	int64_t last_us;   /* the hour of its last match (0: none) */
} sponge_rule_stat;
/* Each rule that matched a record in the last 30 days (most matches
 * first) to each(arg, s); s is valid during the call. */
SPONGE_API int sponge_rule_stats(sponge *sp, int64_t now_us,
				 void (*each)(void *arg,
					      const sponge_rule_stat *s),
				 void *arg);
/* Judge the pending records again by the loaded rules (after an edit):
 * each gets the verdict it would get now, from its original level; a
 * record a drop rule now takes is removed and counted by the rule.
 * *changed (may be NULL): how many records changed. */
SPONGE_API int sponge_rules_apply(sponge *sp, int64_t now_us,
				  int64_t *changed);

/* ---- kinds ------------------------------------------------------------ */

/* A kind of record (its tag and first line, values masked) as delivered
 * messages carried it.  Strings valid during the callback. */
typedef struct sponge_kind {
	int64_t id;
	const char *tag;
	const char *sample;   /* the first one's first line */
	const char *masked;   /* the same, values masked as # */
	int level;            /* the most severe seen */
	int64_t first_seen_us, last_seen_us, last_sent_us;
	int64_t seen;         /* records, in delivered messages */
	int64_t sent;         /* messages that carried it */
	int state;            /* SPONGE_KIND_ACTIVE, _RESOLVED, _MUTED */
	int64_t resolved_us;  /* when it was resolved (0: never) */
} sponge_kind;

#define SPONGE_KIND_ACTIVE 0
#define SPONGE_KIND_RESOLVED 2 /* seen again: REGRESSED */
#define SPONGE_KIND_MUTED 3    /* never marked NEW, BACK or REGRESSED */
#define SPONGE_KIND_NEW 4      /* no delivered message carried it */

/* Each kind the spool remembers, most recently seen first, to each(arg,
 * k); at most limit (0: all). */
SPONGE_API int sponge_kinds(sponge *sp, int64_t limit,
			    void (*each)(void *arg, const sponge_kind *k),
			    void *arg);
/* The kinds of the pending records that the next message will mark NEW
 * (state SPONGE_KIND_NEW, id 0) or REGRESSED (SPONGE_KIND_RESOLVED, with
 * its id): those at policy.new_level or policy.flush_on_new or above,
 * most recently seen first, to each(arg, k); at most limit (0: all).
 * seen: their pending records; first and last seen: theirs. */
SPONGE_API int sponge_kinds_new(sponge *sp, int64_t limit,
				void (*each)(void *arg, const sponge_kind *k),
				void *arg);
/* Learn the kind of entry e from a past log, as if a delivered message
 * had carried it: judged by the noise rules first (an ignored or dropped
 * record teaches nothing), counted at policy.count_level or above.  Kept
 * in the handle (at most spool.max_kinds kinds) until
 * sponge_kinds_learn_end() writes them in one transaction; *kinds (may
 * be NULL): how many it wrote. */
SPONGE_API int sponge_kind_learn(sponge *sp, const sponge_entry *e);
SPONGE_API int sponge_kinds_learn_end(sponge *sp, int64_t *kinds);
/* Set kind id's state (SPONGE_KIND_*); SPONGE_EINVAL when there is no
 * such kind. */
SPONGE_API int sponge_kind_set_state(sponge *sp, int64_t id, int state);

/* The longest message kept (spool.max_record); longer ones are cut.  A
 * caller streaming a long line needs to keep only this many bytes of it. */
SPONGE_API size_t sponge_max_record(const sponge *sp);

/* printf-style sponge_append at the current time. */
SPONGE_API int sponge_log(sponge *sp, int level, const char *tag,
			  const char *fmt, ...) SPONGE_PRINTF(4, 5);
SPONGE_API int sponge_vlog(sponge *sp, int level, const char *tag,
			   const char *fmt, va_list ap) SPONGE_PRINTF(4, 0);

/*
 * Batch writes.  With max_records > 1, sponge_append queues records in
 * memory and writes them in one transaction when max_records are queued,
 * when the queue holds max_bytes, or when the oldest queued record is
 * max_ms old at the time of an append.  A queued record is lost if the
 * process dies before it is written; call sponge_sync() when input pauses.
 * max_records <= 1 turns batching off (and writes the queue).
 */
SPONGE_API int sponge_set_batch(sponge *sp, unsigned max_records,
				size_t max_bytes, unsigned max_ms);

/* Records queued and not yet written (0 without batching). */
SPONGE_API size_t sponge_queued(const sponge *sp);

/*
 * Give up the queued records, as after a write failed (the queue is kept
 * then, so nothing is dropped unseen): each one's cleaned message and a
 * "\n" go to out, oldest first, when out is not NULL (a write returning
 * non-zero stops the writing, not the discarding).  The queue is empty
 * afterwards.  Returns how many records were queued.  A caller whose
 * spool failed can so pass the lines on, to stderr say.
 */
SPONGE_API size_t sponge_discard_queue(sponge *sp, sponge_writer out,
				       void *arg);

/*
 * Write the queue now, and make every record written so far durable even
 * against power loss (the commit, or the write-ahead log, is synced to
 * disk).  Batched writes in between are durable against a crash of any
 * process.  SPONGE_OK means every record written so far is stored.
 */
SPONGE_API int sponge_sync(sponge *sp);

/*
 * Where a source has been read to, kept in the spool beside the records
 * that came from it.  The position set with sponge_position_set() is
 * written with the handle's next write of its queue, in the same
 * transaction as the records queued before it (sponge_sync() writes it
 * even with no record queued): records and position are stored together
 * or not at all, so a reader that starts again from the stored position
 * reads each line exactly once.  A reader that sets positions should
 * batch (sponge_set_batch) so that no write happens between a record
 * and the position that covers it.
 */
typedef struct sponge_position {
	uint64_t dev, ino;  /* the file's identity */
	int64_t offset;     /* bytes read and stored */
	uint64_t head;      /* a hash of its first min(offset, 4096) bytes */
	uint64_t before;    /* a hash of the 4096 bytes (or fewer) before
			       offset */
	int64_t time_us;    /* when it was stored (from the spool) */
	const char *cursor; /* a journal's cursor instead (NULL: none; from
			       sponge_position_get, valid until its next call
			       or sponge_close) */
} sponge_position;
/* The stored position of source name; *found 0 when there is none
 * (pos zeroed). */
SPONGE_API int sponge_position_get(sponge *sp, const char *name,
				   sponge_position *pos, int *found);
SPONGE_API int sponge_position_set(sponge *sp, const char *name,
				   const sponge_position *pos);

/* A [source NAME] section of the config: a log file (or the journal) to
 * read.  Strings owned by the handle. */
#define SPONGE_SOURCE_FILE 0
#define SPONGE_SOURCE_JOURNAL 1
typedef struct sponge_source {
	const char *name, *path;
	const char *tag;        /* NULL: none */
	const char *host;       /* NULL: as the line says, else this host */
	int format;             /* SPONGE_FORMAT_* */
	int level;              /* for lines that name none */
	int detect_level, join; /* 0 or 1 */
	int type;               /* SPONGE_SOURCE_* */
	const char *directory;  /* journal files' directory (NULL: the
				   system's journal) */
	const char *match;      /* journal matches, FIELD=value, by spaces */
	int priority;           /* the journal's least severe (-1: all) */
} sponge_source;
/* How many sources the config names; the i-th (in the config's order). */
SPONGE_API size_t sponge_sources(const sponge *sp);
SPONGE_API int sponge_source_get(const sponge *sp, size_t i,
				 sponge_source *out);

/* ---- runs of jobs ------------------------------------------------------- */

/*
 * A run: one execution of a job's command (logsponge run -j NAME), its
 * output's records, and how it ended.  After sponge_run_begin() every
 * record this handle appends belongs to the run; sponge_run_end() says
 * how it ended, written with the handle's next write (sponge_sync()
 * writes it) in the transaction of the records queued before it and
 * after it (its closing line); records appended after that write belong
 * to no run.  A record of a run can be found by it: a digest shows a
 * line per run and a failed run's output whole.
 */
typedef struct sponge_run {
	int64_t id;
	const char *job, *host;
	int64_t pid;
	int64_t start_us;
	int64_t end_us;       /* 0: not ended (running, or its recorder died) */
	int status;           /* exit status; -1 killed by a signal, or not
				 ended */
	int signal;           /* the signal that ended it, or 0 */
	int timed_out;        /* it ran past its job's timeout */
	int64_t lines;        /* lines of output */
	int64_t first_id, last_id; /* its records lie in this range (0: none) */
	int64_t runs;         /* sponge_jobs(): the job's runs kept */
} sponge_run;
/* Ended, and not well: a status other than 0, a signal, or a timeout. */
#define SPONGE_RUN_FAILED(r)                                                  \
	((r)->end_us && ((r)->status != 0 || (r)->signal || (r)->timed_out))

/* Begin a run of job (its name: letters, digits and ._-@+:, at most 64
 * bytes) in this handle, begun now by process pid; *run_id (may be NULL)
 * its id.  The queue is written first.  SPONGE_EINVAL when a run is
 * under way in the handle or the name is not one. */
SPONGE_API int sponge_run_begin(sponge *sp, const char *job, int64_t pid,
				int64_t *run_id);
/* How the handle's run ended: exit status (signal 0), or the signal that
 * killed it; timed_out when it ran past its timeout. */
SPONGE_API int sponge_run_end(sponge *sp, int status, int signal,
			      int timed_out);

/* When a job's run mails at once (a [job NAME] section's mail). */
#define SPONGE_JOB_MAIL_NEVER 0   /* its records wait for the policy */
#define SPONGE_JOB_MAIL_FAILURE 1 /* when a run fails */
#define SPONGE_JOB_MAIL_ALWAYS 2  /* when a run ends */
/* The [job NAME] section that applies to job: its own (NAME is job),
 * else the first whose glob matches it; *found 0 and the defaults when
 * none does.  Strings owned by the handle. */
typedef struct sponge_job {
	const char *name;     /* the section's NAME (NULL: none) */
	int mail;             /* SPONGE_JOB_MAIL_* */
	int stderr_level;     /* -1: not set */
	int64_t every_us;     /* a run is expected this often (0: no check) */
	int64_t grace_us;     /* and may be this late */
	int64_t timeout_us;   /* 0: none */
	int kill;             /* a run past its timeout is killed */
} sponge_job;
SPONGE_API int sponge_job_get(const sponge *sp, const char *job,
			      sponge_job *out, int *found);
/* Each job's last run, by name (runs: how many the spool keeps), to
 * each(arg, r); or with job, that job's runs, newest first; at most limit
 * (0: all). */
SPONGE_API int sponge_jobs(sponge *sp, const char *job, int64_t limit,
			   void (*each)(void *arg, const sponge_run *r),
			   void *arg);
/* The dead man's switch: each [job NAME] with every whose last run
 * began more than every + grace ago (or, never run, whose watch began
 * that long ago) gets a record at err, tag NAME, "NAME has not run
 * since …", once per every.  *late (may be NULL): how many such jobs.
 * sponge_flush() does this first. */
SPONGE_API int sponge_jobs_check(sponge *sp, int64_t now_us, int64_t *late);

/* ---------------------------------------------------------------------- */
/* Reading records                                                        */

/* One record.  All pointers owned by the iterator, valid until the next
 * sponge_query_next() or sponge_query_close(). */
typedef struct sponge_record {
	int64_t id;          /* increasing, never reused in a spool */
	int64_t time_us;
	int level;
	const char *tag;     /* "" when none */
	const char *host;
	const char *message; /* valid UTF-8, NUL-terminated */
	size_t message_len;
	int64_t sent_in;     /* history id of the message that carried it
				(records kept by spool.keep_sent), or 0 */
	int ignored;         /* 1: a noise rule ignores it (it goes with
				the next message, counted, not listed) */
	const char *rule;    /* the rule that judged it (its name), or NULL */
	int orig_level;      /* its level before a rule changed it, or -1 */
	int escalated;       /* 1: its ignore or drop rule had matched its
				unless=N times in the window, so it counts */
} sponge_record;

/* Filters; zero-initialise and set what you need ({0} = everything). */
typedef struct sponge_filter {
	int has_level;       /* if set, only records at or above `level`  */
	int level;           /*   (i.e. with a number <= level)           */
	const char *tag;     /* exact tag, or NULL */
	int64_t since_us;    /* time >= since_us, when non-zero */
	int64_t until_us;    /* time < until_us, when non-zero */
	const char *grep;    /* fixed substring, case-sensitive, or NULL */
	int64_t limit;       /* > 0: only the newest `limit` matches */
	int64_t max_id;      /* > 0: only ids <= max_id */
	int sent;            /* SPONGE_PENDING (0): pending records only;
				SPONGE_SENT_ONLY or SPONGE_SENT_TOO */
	int ignored;         /* SPONGE_COUNTED (0): records no rule ignores;
				SPONGE_IGNORED_ONLY or SPONGE_IGNORED_TOO */
} sponge_filter;

#define SPONGE_COUNTED 0
#define SPONGE_IGNORED_ONLY 1
#define SPONGE_IGNORED_TOO 2

#define SPONGE_PENDING 0
#define SPONGE_SENT_ONLY 1 /* sent records kept by spool.keep_sent */
#define SPONGE_SENT_TOO 2  /* both */

typedef struct sponge_iter sponge_iter;

/* Matches come oldest first (by id, which follows arrival order).  The
 * filter's strings are copied.  On failure *out is NULL. */
SPONGE_API int sponge_query_sized(sponge *sp, const sponge_filter *f,
				  size_t f_size, sponge_iter **out);
#define sponge_query(sp, f, out)                                              \
	sponge_query_sized((sp), (f), sizeof(sponge_filter), (out))
/* SPONGE_ROW with *rec set, SPONGE_DONE at the end, or an error code. */
SPONGE_API int sponge_query_next(sponge_iter *it, const sponge_record **rec);
/* NULL is a no-op. */
SPONGE_API void sponge_query_close(sponge_iter *it);

/* Pending records: how many there are, per level, oldest and newest. */
typedef struct sponge_stats {
	int64_t pending;
	int64_t by_level[8];
	int64_t oldest_us;    /* when the spool received the oldest pending
				 record (what max_age and expire go by);
				 0 when nothing is pending */
	int64_t newest_us;    /* and the newest */
	int64_t max_id;       /* highest id present (0 if none) */
	uint64_t spool_bytes; /* database + WAL file sizes */
	int64_t dropped[8];   /* records dropped by spool.max_records or
				 max_bytes since the last message, by level */
	int64_t ignored[8];   /* pending records noise rules ignore, by
				 level (not in pending or by_level) */
	int64_t new_kinds;    /* pending records of kinds no delivered
				 message carried, at policy.new_level or
				 flush_on_new or above (as they came) */
	int64_t last_sent_us; /* when the last message was delivered (0:
				 never) */
} sponge_stats;

SPONGE_API int sponge_stats_get_sized(sponge *sp, sponge_stats *out,
				      size_t size);
#define sponge_stats_get(sp, out)                                             \
	sponge_stats_get_sized((sp), (out), sizeof(sponge_stats))

/* One past flush attempt (history). Strings owned by the iterator. */
typedef struct sponge_attempt {
	int64_t id;
	int64_t time_us;
	int sent;             /* 1 if the message was accepted */
	const char *outcome;  /* "sent", "temporary", "permanent", "auth", … */
	const char *stage;    /* "connect", "tls", "data", … or "" */
	const char *reply;    /* server reply or error detail, or "" */
	int64_t records;      /* records in the batch */
	const char *message_id;
} sponge_attempt;

typedef struct sponge_hiter sponge_hiter;

/* Newest `limit` attempts (all when limit <= 0), oldest first. */
SPONGE_API int sponge_history(sponge *sp, int64_t limit, sponge_hiter **out);
SPONGE_API int sponge_history_next(sponge_hiter *it,
				   const sponge_attempt **att);
SPONGE_API void sponge_history_close(sponge_hiter *it);

/*
 * Delete records the spool received before before_us (all of them when
 * before_us <= 0): pending ones and sent ones kept by spool.keep_sent
 * alike, in pieces of 32,768 records (a transaction each: writers never
 * wait long).  *deleted (may be NULL) receives how many went.
 */
SPONGE_API int sponge_purge(sponge *sp, int64_t before_us, int64_t *deleted);

/* ---------------------------------------------------------------------- */
/* Flushing: decide, compose one message, send, then remove the batch     */


#define SPONGE_FLUSH_FORCE 0x1u   /* send whatever the policy says */
#define SPONGE_FLUSH_DRY_RUN 0x2u /* write the message to `out`, change
				     nothing, take no lock */
#define SPONGE_FLUSH_READABLE 0x4u /* with DRY_RUN: the message for
					people to read: headers and the text
					part as they are (no transfer
					encoding, LF line ends), a note for
					the HTML part and the attachment */

typedef struct sponge_flush_result {
	int decided;          /* 1 if a message was (or would be) sent */
	int sent;             /* 1 if the server accepted it */
	int64_t records;      /* records in the batch */
	int64_t expired;      /* records dropped by policy.expire */
	char reason[256];     /* one line: why (not) sending */
	char stage[32];       /* failure stage, "" on success */
	char message_id[320];
	int insecure;         /* smtp.verify = no was in effect */
	/* sent, but the server refused these recipients (one line:
	   "RCPT <a@b>: 550 5.1.1 …; RCPT <c@d>: …"), or "" */
	char refused[1024];
	/* something the flush set right on its way that its user should
	   know of (one line, e.g. a journal note of another spool it
	   ignored), or "" */
	char warning[512];
} sponge_flush_result;

/*
 * Evaluate [policy] on the pending records and, when it says so (or with
 * SPONGE_FLUSH_FORCE), send them as one message through [mail] transport.
 * Only after the server accepted the message are exactly those records
 * removed and a history row written, in one transaction; on any failure
 * the spool is untouched and the history row records stage and reply.
 * Holds an exclusive lock on "<spool>.lock": a second flush of the same
 * spool fails with SPONGE_EBUSY at once.
 *
 * out/arg: where SPONGE_FLUSH_DRY_RUN and the "stdout" transport write
 * (may be NULL otherwise).  res (may be NULL) is filled in any case.
 * Returns SPONGE_OK when sent or when there was nothing to do;
 * SPONGE_ETEMPFAIL, SPONGE_EPERMFAIL, SPONGE_EAUTH, SPONGE_ETLS,
 * SPONGE_ECONFIG, SPONGE_EBUSY or a spool error otherwise, with the detail
 * in sponge_errmsg().  Never blocks longer than smtp.timeout per network
 * step.
 */
SPONGE_API int sponge_flush_sized(sponge *sp, unsigned flags,
				  sponge_writer out, void *arg,
				  sponge_flush_result *res, size_t res_size);
#define sponge_flush(sp, flags, out, arg, res)                                \
	sponge_flush_sized((sp), (flags), (out), (arg), (res),                \
			   sizeof(sponge_flush_result))

/*
 * Connect to [smtp] host, STARTTLS (or implicit TLS), verify the
 * certificate, EHLO, AUTH and QUIT without sending anything.  Returns as
 * sponge_flush() does; on failure sponge_errmsg() says why.
 */
SPONGE_API int sponge_check_smtp(sponge *sp);

/* What sponge_flush() will need, without sending: mail.from and mail.to,
 * and the transport's own needs (smtp.host; a maildir.path that is, or
 * can be made under, a directory this user can write; a sendmail command
 * that exists).  SPONGE_OK, or SPONGE_ECONFIG with sponge_errmsg(). */
SPONGE_API int sponge_check_config(sponge *sp);
/* What the last successful sponge_check_smtp() found, one line: "host
 * port 587, TLSv1.3, EHLO name, AUTH PLAIN as user, SIZE n" ("" before).
 * Owned by sp, valid until the next call on sp. */
SPONGE_API const char *sponge_check_report(const sponge *sp);
/* Send a short test message (no records: its subject and body say what
 * it is) through the configured transport, as sponge_flush() would
 * (transport = stdout: to out); nothing in the spool changes and no
 * spool is needed.  On success sponge_check_report() says what the
 * server replied ("sent <id> to a@b: 250 2.0.0 Ok: queued as …"); on
 * failure sponge_errmsg() says why. */
SPONGE_API int sponge_check_send(sponge *sp, sponge_writer out, void *arg);

/* ---------------------------------------------------------------------- */
/* Configuration, as read at sponge_open()                                */

typedef struct sponge_policy {
	int64_t threshold;    /* send when >= threshold records at/above  */
	int count_level;      /*   count_level are pending (default 1, debug) */
	int flush_level;      /* any record at/above sends at once; -1 none */
	int64_t max_age_us;   /* oldest pending older than this sends; 0 none */
	int64_t expire_us;    /* pending older than this is dropped; 0 none */
	int64_t min_interval_us; /* at most one message per interval; 0 none */
	int64_t heartbeat_us; /* "nothing to report" after this long; 0 none */
	int flush_on_new;     /* a record of a new kind at/above sends at
				 once; -1 none */
	int64_t new_min_count;/*   once this many such records wait */
	int64_t learn_us;     /* flush_on_new waits this long after the spool
				 began remembering kinds; 0 none */
	int64_t alarm_after_us; /* records waited and nothing was delivered
				 for this long: flush fails loudly; 0 none */
} sponge_policy;

/* What the policy says (sponge_decide); zero is never a verdict. */
typedef enum sponge_verdict {
	SPONGE_VERDICT_UNKNOWN = 0,
	SPONGE_VERDICT_NONE = 1,      /* nothing is due */
	SPONGE_VERDICT_SEND = 2,      /* a message is due */
	SPONGE_VERDICT_HOLD = 3,      /* due, but min_interval holds it back */
	SPONGE_VERDICT_HEARTBEAT = 4  /* nothing due for heartbeat: say so */
} sponge_verdict;

/*
 * What sponge_flush() would decide now, without sending or changing
 * anything: *verdict (a sponge_verdict) and the one-line reason (reason
 * may be NULL; n bytes, always NUL-terminated).  flags: 0 or
 * SPONGE_FLUSH_FORCE.  The same function decides in sponge_flush(), so
 * the two agree; it reads the kept counts, not the records.  A batch
 * pinned for a resend is not considered (sponge_flush resends it first).
 */
SPONGE_API int sponge_decide(sponge *sp, unsigned flags, int *verdict,
			     char *reason, size_t n);

/* One [policy] rule as the decision read it. */
typedef struct sponge_rule {
	int set;         /* configured (threshold always is) */
	int met;         /* on its own, it would send now */
	int level;       /* the level it counts at or above; -1: none */
	int64_t have;    /* threshold, flush_level: pending records at level
			    or above; max_age: the oldest pending record's
			    age in microseconds (0: nothing pending) */
	int64_t need;    /* threshold: the threshold; flush_level: 1;
			    max_age: max_age in microseconds */
} sponge_rule;

/* sponge_decide() with the rules it read, for showing them (status):
 * the verdict and reason, the time it decided at, and each rule's state,
 * all from one reading of the kept counts by the same function. */
typedef struct sponge_decision {
	int verdict;          /* a sponge_verdict */
	char reason[256];
	int64_t now;
	sponge_rule threshold, flush_level, max_age;
} sponge_decision;

SPONGE_API int sponge_decide_rules_sized(sponge *sp, unsigned flags,
					 sponge_decision *out, size_t size);
#define sponge_decide_rules(sp, flags, out)                                   \
	sponge_decide_rules_sized((sp), (flags), (out),                       \
				  sizeof(sponge_decision))

/*
 * What is allowed but unwise in the configuration, one line each ending
 * in "\n" ("" when nothing is): smtp.verify = no, smtp.tls = none, a
 * config file readable by group or others that names a password command
 * (which may hold the password).  Owned by sp, valid until the next call
 * on sp.
 */
SPONGE_API const char *sponge_config_warnings(sponge *sp);

/* Copies the effective [policy] settings into *out. */
SPONGE_API int sponge_get_policy_sized(const sponge *sp, sponge_policy *out,
				       size_t size);
#define sponge_get_policy(sp, out)                                            \
	sponge_get_policy_sized((sp), (out), sizeof(sponge_policy))

#ifdef __cplusplus
}
#endif
#endif /* LOGSPONGE_H */
