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

int cmd_add(const globals *g, int argc, char **argv);
int cmd_status(const globals *g, int argc, char **argv);
int cmd_list(const globals *g, int argc, char **argv);
int cmd_history(const globals *g, int argc, char **argv);
int cmd_purge(const globals *g, int argc, char **argv);
int cmd_flush(const globals *g, int argc, char **argv);
int cmd_check(const globals *g, int argc, char **argv);

#endif
