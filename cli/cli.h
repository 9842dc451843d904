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
	int (*run)(const globals *g, int argc, char **argv);
	const char *args;    /* synopsis after the name */
	const char *help;    /* one line */
} command;

/* "logsponge: <what>: <why>" on stderr. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Map a library code to a sysexits exit status. */
int exit_code(int code);
/* Open the spool for a command; on failure prints the error and returns
 * NULL with *status set to the exit status. */
sponge *open_spool(const globals *g, unsigned flags, int *status);
/* Report a library failure on sp and return the exit status. */
int fail(sponge *sp, int code);
/* Print a command's usage (its table row) to f. */
void usage(FILE *f, const char *name);
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
	int rc;          /* first library error */
	int64_t now;     /* arrival time of the chunk being split */
	bool cr_pending; /* the last chunk ended in CR */
	char *carry;     /* a line that spans reads: its first bytes */
	size_t carry_len, carry_cap, keep;
	uint64_t carry_cut;
	bool in_line;
} adder;

void adder_init(adder *a, sponge *sp, const char *tag, int level, bool detect,
		int format);
void adder_feed(adder *a, const char *p, size_t n);
void adder_finish(adder *a);
void adder_free(adder *a);
void adder_split(adder *a, const char *p, size_t n, bool *cr_pending);
void adder_end_line(adder *a, const char *p, size_t n);

/* Ingest batching: a kill -9 loses at most this much that was read. */
#define BATCH_RECORDS 10000
#define BATCH_BYTES (1u << 20)
#define BATCH_MS 100
#define READ_SIZE (256u << 10)

/* add.c helpers shared with run.c */
bool tee_out(int fd, const char *p, size_t n, bool *tee);
bool parse_format_opt(const char *arg, int *format);
/* Write what is queued; report a failure; returns the exit status. */
int finish_adding(adder *a, int status);

int cmd_add(const globals *g, int argc, char **argv);
int cmd_run(const globals *g, int argc, char **argv);
int cmd_status(const globals *g, int argc, char **argv);
int cmd_list(const globals *g, int argc, char **argv);
int cmd_history(const globals *g, int argc, char **argv);
int cmd_purge(const globals *g, int argc, char **argv);
int cmd_flush(const globals *g, int argc, char **argv);
int cmd_check(const globals *g, int argc, char **argv);

#endif
