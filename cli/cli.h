/* cli.h - shared between the logsponge command's files. */
#ifndef LOGSPONGE_CLI_H
#define LOGSPONGE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "logsponge.h"

/* sysexits(3) codes, spelled out so no header is needed */
enum {
	EX_OK_ = 0,
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_OSERR = 71,
	EXIT_CANTCREAT = 73,
	EXIT_IOERR = 74,
	EXIT_TEMPFAIL = 75,
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78,
};

typedef struct globals {
	const char *spool;   /* -s, or NULL */
	const char *config;  /* -c, or NULL */
	int verbosity;       /* -1 quiet, 0 normal, 1+ verbose */
} globals;

typedef struct command {
	const char *name;
	int (*run)(globals *g, int argc, char **argv);
	const char *args;    /* synopsis after the name */
	const char *help;    /* one line */
} command;

/* "logsponge: <what>: <why>" on stderr. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Each line of text as "logsponge: warning: LINE", tail after the last. */
void warn_lines(const char *text, const char *tail);
/* Map a library code to a sysexits exit status. */
int exit_code(int code);
/* What a command needs of the config (see open_spool). */
enum spool_use {
	USE_INGEST, /* add, run: only [spool]; other problems are warnings */
	USE_QUERY,  /* status, list, history, purge: the same, no create */
	USE_SEND,   /* flush, check: the whole config must be right */
};
/* Open the spool for a command; on failure prints the error (and `note`
 * after it on the same line, when not NULL) and returns NULL with *status
 * set to the exit status.  Only USE_INGEST creates a missing spool; the
 * others exit 66 (EX_NOINPUT) for it. */
sponge *open_spool(const globals *g, enum spool_use use, int *status,
		   const char *note);
/* Report a library failure on sp and return the exit status. */
int fail(sponge *sp, int code);
/* Print a command's usage (its table row) to f. */
void usage(FILE *f, const char *name);
/* getopt_long for a command: its options plus the global ones (-s, -c,
 * -q, -v, which it handles itself, so they may follow the command). */
struct option;
int cmd_getopt(globals *g, int argc, char **argv, const char *optstring,
	       const struct option *longopts);
/* Parse a level name for an option, printing an error when bad. */
bool parse_level_opt(const char *opt, const char *arg, int *level);

/* Lines of a byte stream into records (lines.c).  A line ends at LF, CRLF
 * or a lone CR; only the first sponge_max_record() bytes of a long line
 * are kept, the rest is counted in the cut marker. */
typedef struct adder {
	sponge *sp;
	const char *tag;
	int level;       /* default level */
	bool detect;     /* --detect-level */
	int format;      /* sponge_format */
	const char *host;/* for lines that name none (NULL: this host) */
	int rc;          /* first library error (see spool_rc) */
	int *spool_rc;   /* the error shared by the adders of one spool:
			    once set, lines go to out_fd, not the spool */
	int out_fd;      /* where lines go once the spool failed */
	const char *who; /* "add" or "run", for the message */
	int64_t now;     /* arrival time of the chunk being split */
	bool cr_pending; /* the last chunk ended in CR */
	char *carry;     /* a line that spans reads: its first bytes */
	size_t carry_len, carry_cap, keep;
	uint64_t carry_cut;
	bool in_line;
	/* joining continuation lines (join.c) */
	bool join;       /* --join auto (text input only) */
	int jstate;      /* what the pending record is (0: none) */
	char *jbuf;      /* the pending record: its lines, LF between */
	size_t jlen, jcap;
	const char *jptr;/* or, a single line, still in the caller's buffer */
	size_t jplen;
	unsigned jblank; /* blank lines held back */
	/* instead of storing each record: hand it to judge (rules test) */
	void (*judge)(void *arg, const sponge_entry *e, const char *line,
		      size_t len);
	void *judge_arg;
} adder;

/* How lines are read (add's -l, -t, -d, -f, --join), for the commands
 * that read lines as add does (rules test, kinds learn). */
typedef struct input_opts {
	int level, format;
	const char *tag;
	bool detect, join;
} input_opts;
#define INPUT_OPTS_DEFAULT {SPONGE_INFO, SPONGE_FORMAT_TEXT, NULL, false, true}
/* their long options, for a command's table ("l:t:df:" the short ones) */
#define INPUT_LONGOPTS                                                        \
	{"level", required_argument, NULL, 'l'},                              \
	{"tag", required_argument, NULL, 't'},                                \
	{"detect-level", no_argument, NULL, 'd'},                             \
	{"format", required_argument, NULL, 'f'},                             \
	{"join", required_argument, NULL, 'J'}
/* Option c of those (getopt's value 'l', 't', 'd', 'f' or 'J') into o:
 * 1 taken, 0 not one of them, -1 a bad value (said, as who). */
int input_option(const char *who, int c, const char *arg, input_opts *o);
/* An adder that reads as o says. */
void adder_init_input(adder *a, sponge *sp, const input_opts *o,
		      const char *who);

/* out_fd: where lines go when the spool fails (the lines queued and not
 * stored go to stderr, with one line saying why, first). */
void adder_init(adder *a, sponge *sp, const char *tag, int level, bool detect,
		int format, int out_fd, const char *who);
/* A record (or blank lines) held by the joiner, waiting for the next line
 * or a pause. */
bool adder_pending(const adder *a);
/* Commit what is queued (input paused); on failure pass it on. */
void adder_sync(adder *a);
/* Write all of p to fd (EINTR retried); false on failure. */
bool write_all(int fd, const char *p, size_t n);
void adder_feed(adder *a, const char *p, size_t n);
void adder_finish(adder *a);
/* Every line of fd to a; false on a read error (errno). */
bool feed_fd(adder *a, int fd);
/* Each file named from optind on (else standard input) through a, then
 * its end; an exit status (66 a file, 74 standard input; said as who). */
int feed_files(adder *a, int argc, char **argv, const char *who);
void adder_free(adder *a);
void adder_split(adder *a, const char *p, size_t n, bool *cr_pending);
void adder_end_line(adder *a, const char *p, size_t n);
/* One record to the spool (or, once it failed, to out_fd). */
void adder_record(adder *a, const char *line, size_t len, uint64_t cut);
/* join.c: a complete line, joined to the pending record or starting one;
 * join_flush records the pending one (input paused, or at the end). */
void join_line(adder *a, const char *l, size_t n, uint64_t cut);
void join_flush(adder *a);
/* The pending record copied out of the caller's buffer (before it is
 * reused: at the end of a chunk, after a line built in carry). */
void join_pin(adder *a);

/* Ingest batching: a kill -9 loses at most this much that was read. */
#define BATCH_RECORDS 10000
#define BATCH_BYTES (1u << 20)
#define BATCH_MS 100
#define READ_SIZE (256u << 10)

/* add.c helpers shared with run.c */
typedef bool (*tee_wait_fn)(void *ctx);
bool tee_out(int fd, const char *p, size_t n, bool *tee, tee_wait_fn wait,
	     void *ctx);
bool parse_format_opt(const char *arg, int *format);
/* getopt found an unknown option or one without its value: say which,
 * in one line, and one more pointing to --help; returns EXIT_USAGE. */
int option_error(const char *cmd, const char *optstring, char **argv);
/* --join auto|none; false (with a message) for anything else. */
bool parse_join_opt(const char *who, const char *arg, bool *join);
/* Write what is queued; returns the exit status: 74 (EX_IOERR) when a
 * line went elsewhere because the spool failed, else `status`. */
int finish_adding(adder *a, int status);

int cmd_add(globals *g, int argc, char **argv);
int cmd_run(globals *g, int argc, char **argv);
int cmd_status(globals *g, int argc, char **argv);
int cmd_list(globals *g, int argc, char **argv);
int cmd_history(globals *g, int argc, char **argv);
int cmd_purge(globals *g, int argc, char **argv);
int cmd_rules(globals *g, int argc, char **argv);
int cmd_kinds(globals *g, int argc, char **argv);
int cmd_tail(globals *g, int argc, char **argv);
int cmd_jobs(globals *g, int argc, char **argv);
/* status's line on jobs (jobs.c): how many; those failed or late. */
void jobs_status(sponge *sp, int64_t now);
/* A spool at the other default path (root's XDG one, or the units') with
 * pending records: a warning (spools.c); nothing with -s. */
void warn_other_spool(const globals *g, sponge *sp);
/* A whole number >= 1 for option opt, else false (said in one line). */
bool parse_count(const char *opt, const char *arg, int64_t *out);
/* rules stats and rules apply (rules_spool.c) */
int rules_stats(globals *g, int argc, char **argv);
int rules_apply(globals *g, int argc, char **argv);
/* Write one JSON object (jansson's, taken) as a line; false when stdout
 * failed (query.c). */
struct json_t;
bool json_line(struct json_t *o);
/* Flush stdout; a reader that went away (EPIPE) is not worth a message. */
int finish_output(int status);
int cmd_flush(globals *g, int argc, char **argv);
/* Records have waited and no message was delivered for policy.alarm_after
 * (flush.c): true, and the line that says so. */
bool silent_since(const sponge_stats *st, const sponge_policy *p,
		  int64_t now, char *line, size_t n);
int cmd_check(globals *g, int argc, char **argv);

#endif
