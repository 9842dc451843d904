/* main.c - global options and the command table of `logsponge`. */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const command commands[] = {
	{"add", cmd_add,
	 "[-l LEVEL] [-t TAG] [--detect-level] [--format FMT] [--tee] "
	 "[--join MODE] "
	 "[MESSAGE...]",
	 "record each MESSAGE, or every line of standard input"},
	{"run", cmd_run,
	 "[-j NAME] [-t TAG] [--detect-level] [--tee] [--join MODE] "
	 "[--stderr-level LEVEL] -- COMMAND [ARG...]",
	 "run a command, record its output and exit status"},
	{"jobs", cmd_jobs, "[--json] [--limit N] [NAME]",
	 "each job's last run and the next expected; or one job's runs"},
	{"tail", cmd_tail,
	 "[--follow] [--dry-run] [--from-start | --from-end] [NAME...]",
	 "read the config's log files from where the spool says to their end"},
	{"status", cmd_status, "[--json]",
	 "pending records by level, policy progress, spool size"},
	{"list", cmd_list,
	 "[--level L] [--tag T] [--since T] [--until T] [--grep S] "
	 "[--limit N] [--sent] [--ignored] [--json]",
	 "show records, oldest first"},
	{"history", cmd_history, "[--limit N] [--json]",
	 "past flush attempts and their outcomes"},
	{"purge", cmd_purge, "(--older-than D | --all)",
	 "delete pending records on purpose"},
	{"flush", cmd_flush, "[--force] [--dry-run [--raw]]",
	 "if the policy says so, send pending records as one email"},
	{"check", cmd_check, "[--smtp] [--send]",
	 "validate the config; --smtp: connect, TLS, AUTH, QUIT; --send: mail "
	 "a test message"},
	{"rules", cmd_rules,
	 "(check | stats [--json] | suggest | apply | test [-l LEVEL] [-t TAG] "
	 "[--detect-level] [--format FMT] [--join MODE] [--json] "
	 "[--expect FILE] [FILE...])",
	 "check the noise rules, count, suggest or apply them, or judge lines "
	 "by them"},
	{"kinds", cmd_kinds,
	 "[--new] [--json] [--limit N] | (resolve | mute | unmute) ID... | learn "
	 "[-l LEVEL] [-t TAG] [--detect-level] [--format FMT] [--join MODE] "
	 "[FILE...]",
	 "the kinds of record delivered messages carried; mark them, or learn "
	 "them from past logs"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

void errorf(const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) { /* (no memory: the format at least) */
		fprintf(stderr, "logsponge: %s\n", fmt);
		return;
	}
	/* a message of several lines (every error of a config file): each
	 * its own "logsponge: " line */
	for (const char *p = msg;;) {
		const char *nl = strchr(p, '\n');
		fprintf(stderr, "logsponge: %.*s\n",
			(int)(nl ? nl - p : (ptrdiff_t)strlen(p)), p);
		if (!nl)
			break;
		p = nl + 1;
	}
	free(msg);
}

void warn_lines(const char *text, const char *tail)
{
	for (const char *p = text;;) {
		const char *nl = strchr(p, '\n');
		if (nl)
			errorf("warning: %.*s", (int)(nl - p), p);
		else
			errorf("warning: %s%s", p, tail);
		if (!nl)
			return;
		p = nl + 1;
	}
}

int exit_code(int code)
{
	switch (code) {
	case SPONGE_OK: return 0;
	case SPONGE_EINVAL: return EXIT_USAGE;
	case SPONGE_ENOMEM: return EXIT_OSERR;
	case SPONGE_ERESOURCE: return EXIT_OSERR;
	case SPONGE_ECANTOPEN: return EXIT_CANTCREAT;
	case SPONGE_ENOTSPOOL: return EXIT_DATAERR;
	case SPONGE_EVERSION: return EXIT_DATAERR;
	case SPONGE_EBUSY: return EXIT_TEMPFAIL;
	case SPONGE_ECONFIG: return EXIT_CONFIG;
	case SPONGE_ENOENT: return EXIT_NOINPUT;
	case SPONGE_ETEMPFAIL: return EXIT_TEMPFAIL;
	case SPONGE_EPERMFAIL: return EXIT_UNAVAILABLE;
	case SPONGE_ETLS: return EXIT_UNAVAILABLE;
	case SPONGE_EAUTH: return EXIT_NOPERM;
	default: return EXIT_IOERR; /* EIO, EFULL, EREADONLY */
	}
}

static int fail_note(sponge *sp, int code, const char *note)
{
	const char *m = sponge_errmsg(sp);
	errorf("%s%s", m && *m ? m : sponge_strerror(code), note ? note : "");
	return exit_code(code);
}

int fail(sponge *sp, int code) { return fail_note(sp, code, NULL); }

sponge *open_spool(const globals *g, enum spool_use use, int *status,
		   const char *note)
{
	sponge *sp = NULL;
	int rc = sponge_open(&sp, g->spool, g->config,
			     use == USE_INGEST ? 0 : SPONGE_OPEN_NOCREATE);
	if (rc != SPONGE_OK && use == USE_SEND && sp &&
	    *sponge_config_error(sp)) {
		/* a config that cannot send says so before a missing spool */
		errorf("%s", sponge_config_error(sp));
		*status = EXIT_CONFIG;
		sponge_close(sp);
		return NULL;
	}
	if (rc != SPONGE_OK) {
		*status = fail_note(sp, rc, note);
		sponge_close(sp);
		return NULL;
	}
	/* records are judged as they come; rules that do not read judge
	 * nothing, and lose nothing */
	if (use == USE_INGEST && sponge_rules_load(sp) != SPONGE_OK)
		errorf("warning: %s; records are kept as they come",
		       sponge_rules_error(sp));
	const char *ce = sponge_config_error(sp);
	if (!*ce)
		return sp;
	if (use == USE_SEND) {
		errorf("%s", ce);
		*status = EXIT_CONFIG;
		sponge_close(sp);
		return NULL;
	}
	if (g->verbosity >= 0 || use == USE_INGEST)
		warn_lines(ce, use == USE_INGEST ? "; records are still kept"
						 : "; flush refuses this config");
	return sp;
}

bool parse_level_opt(const char *opt, const char *arg, int *level)
{
	*level = sponge_level_from_name(arg);
	if (*level >= 0)
		return true;
	errorf("%s %s: unknown level (emerg alert crit err warning notice "
	       "info debug)", opt, arg);
	return false;
}

/* The global options, also accepted after the command. */
static const struct option global_opts[] = {
	{"spool", required_argument, NULL, 's'},
	{"config", required_argument, NULL, 'c'},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
};
#define NGLOBAL (sizeof global_opts / sizeof global_opts[0])

static bool global_option(globals *g, int c, const char *arg)
{
	switch (c) {
	case 's': g->spool = arg; return true;
	case 'c': g->config = arg; return true;
	case 'q': g->verbosity = -1; return true;
	case 'v': g->verbosity++; return true;
	default: return false;
	}
}

int cmd_getopt(globals *g, int argc, char **argv, const char *optstring,
	       const struct option *longopts)
{
	struct option all[40];
	size_t n = 0;
	/* (a command's long option must not answer to -s, -c, -q or -v:
	 * --sent and --smtp did, and were taken for --spool) */
	while (longopts[n].name && n < 40 - NGLOBAL - 1)
		n++;
	memcpy(all, longopts, n * sizeof *all);
	memcpy(all + n, global_opts, sizeof global_opts);
	memset(&all[n + NGLOBAL], 0, sizeof all[0]);
	char shorts[64];
	snprintf(shorts, sizeof shorts, "%ss:c:qv", optstring);
	int c;
	while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1 &&
	       global_option(g, c, optarg))
		;
	return c;
}

int option_error(const char *cmd, const char *optstring, char **argv)
{
	/* getopt left the offending argument just before optind, and the
	 * option's letter in optopt (0 for an unknown long option) */
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	const char *at = optopt ? strchr(optstring, optopt) : NULL;
	/* (-s and -c, the global options, need one too) */
	bool needs_value = (at && at[1] == ':') || optopt == 's' ||
			   optopt == 'c';
	char shown[64];
	if (optopt && strncmp(arg, "--", 2) != 0) /* "-x", or in "-qx" */
		snprintf(shown, sizeof shown, "-%c", optopt);
	else
		snprintf(shown, sizeof shown, "%.60s", arg);
	if (needs_value)
		errorf("%s: option '%s' needs a value", cmd, shown);
	else
		errorf("%s: unknown option '%s'", cmd, shown);
	errorf("%s: see 'logsponge %s --help'", cmd, cmd);
	return EXIT_USAGE;
}

void usage(FILE *f, const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			fprintf(f, "usage: logsponge [options] %s %s\n  %s\n",
				commands[i].name, commands[i].args,
				commands[i].help);
}

static void main_usage(FILE *f)
{
	fprintf(f,
		"usage: logsponge [-s SPOOL] [-c CONFIG] [-q|-v] COMMAND "
		"[ARGS]\n"
		"       logsponge --help | --version\n\n"
		"Soak log records into a durable spool; send them as one "
		"email.\n\n"
		"options:\n"
		"  -s, --spool SPOOL    spool file (default $LOGSPONGE_SPOOL, "
		"config spool.path,\n"
		"                       ~/.local/state/logsponge/spool.db; "
		"root's:\n"
		"                       /var/lib/logsponge/spool.db)\n"
		"  -c, --config CONFIG  config file (default "
		"$LOGSPONGE_CONFIG,\n"
		"                       ~/.config/logsponge/config, "
		"/etc/logsponge.conf)\n"
		"  -q, --quiet          print only errors\n"
		"  -v, --verbose        say more\n"
		"  -h, --help           this help; COMMAND --help for a "
		"command's\n"
		"  -V, --version        print the version\n\n"
		"commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nSee logsponge(1) and logsponge.conf(5).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"spool", required_argument, NULL, 's'},
		{"config", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	globals g = {NULL, NULL, 0};
	_Static_assert(sizeof opts / sizeof opts[0] == NGLOBAL + 3,
		       "the global options, and -h, -V");
	int c;

	/* A closed reader must show up as a write error, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit (ulimit -f) a write must fail with EFBIG,
	 * not kill us with the records in hand. */
	signal(SIGXFSZ, SIG_IGN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+s:c:qvhV", opts, NULL)) != -1) {
		if (global_option(&g, c, optarg))
			continue;
		switch (c) {
		case 'h': main_usage(stdout); return 0;
		case 'V':
			printf("logsponge %s (library %s)\n", SPONGE_VERSION,
			       sponge_version());
			return 0;
		default:
			if (optopt)
				errorf("-%c: unknown option or missing "
				       "argument (see logsponge --help)",
				       optopt);
			else
				errorf("%s: unknown option (see logsponge "
				       "--help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			optind++; /* getopt in the command starts after it */
			int sub_argc = argc - optind + 1;
			char **sub_argv = argv + optind - 1;
			optind = 0; /* full reset of getopt's state */
			return commands[i].run(&g, sub_argc, sub_argv);
		}
	}
	if (strcmp(name, "help") == 0) {
		if (optind + 1 < argc)
			usage(stdout, argv[optind + 1]);
		else
			main_usage(stdout);
		return 0;
	}
	errorf("%s: unknown command (see logsponge --help)", name);
	return EXIT_USAGE;
}
