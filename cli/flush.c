/* flush.c - `logsponge flush` and `logsponge check`. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Unbuffered, so that a failed write (a full disk, a closed pipe) is
 * known before the flush commits: the stdout transport counts as sent
 * only when every byte was written. */
static int write_stdout(void *arg, const char *buf, size_t len)
{
	*(bool *)arg = true; /* a message was printed */
	fflush(stdout);
	return write_all(STDOUT_FILENO, buf, len) ? 0 : -1;
}

bool silent_since(const sponge_stats *st, const sponge_policy *p,
		  int64_t now, char *line, size_t n)
{
	int64_t a = p->alarm_after_us;
	if (!a || !st->pending || now - st->oldest_us < a ||
	    (st->last_sent_us && now - st->last_sent_us < a))
		return false;
	char t[32], span[32];
	int64_t since = st->last_sent_us ? st->last_sent_us : st->oldest_us;
	sponge_format_time(since, t);
	sponge_format_span(now - since, span, sizeof span);
	snprintf(line, n, "no message delivered since %.16sZ (%s ago%s); %lld "
			  "record%s wait (policy.alarm_after)",
		 t, span, st->last_sent_us ? "" : ": none ever, the oldest "
						  "record came then",
		 (long long)st->pending, st->pending == 1 ? "" : "s");
	return true;
}

/* A flush that failed while nothing has gone out for alarm_after: 69,
 * not 75, so that a timer's unit fails and cron mails it. */
static int loud_failure(sponge *sp, int status)
{
	sponge_stats st;
	sponge_policy p;
	char line[256];
	if (status != EXIT_TEMPFAIL || sponge_stats_get(sp, &st) ||
	    sponge_get_policy(sp, &p) ||
	    !silent_since(&st, &p, sponge_now(), line, sizeof line))
		return status;
	errorf("flush: %s", line);
	return EXIT_UNAVAILABLE;
}

static void flush_usage(FILE *f)
{
	usage(f, "flush");
	fprintf(f,
		"options:\n"
		"      --force     send whatever the policy says\n"
		"  -n, --dry-run   print the message that would be sent; change "
		"nothing (on a\n"
		"                  terminal decoded for reading: headers and "
		"text as they are)\n"
		"      --raw       with --dry-run: the exact message, as sent, "
		"even on a terminal\n"
		"Prints nothing when there is nothing to send (for cron); -v "
		"says why.\n");
}

int cmd_flush(globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, 'n'},
		{"raw", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned flags = 0;
	bool raw = false;
	int c, status = 0;
	while ((c = cmd_getopt(g, argc, argv, "+nh", opts)) != -1) {
		switch (c) {
		case 'f': flags |= SPONGE_FLUSH_FORCE; break;
		case 'n': flags |= SPONGE_FLUSH_DRY_RUN; break;
		case 'R': raw = true; break;
		case 'h': flush_usage(stdout); return 0;
		default: return option_error("flush", "+nh", argv);
		}
	}
	if (optind < argc) {
		errorf("flush: %s: unexpected argument", argv[optind]);
		return EXIT_USAGE;
	}
	if (raw && !(flags & SPONGE_FLUSH_DRY_RUN)) {
		errorf("flush: --raw goes with --dry-run");
		return EXIT_USAGE;
	}
	/* a person at a terminal reads it decoded; a pipe gets the bytes */
	if ((flags & SPONGE_FLUSH_DRY_RUN) && !raw && isatty(STDOUT_FILENO))
		flags |= SPONGE_FLUSH_READABLE;
	sponge *sp = open_spool(g, USE_SEND, &status, NULL);
	if (!sp)
		return status;
	sponge_flush_result res;
	bool printed = false;
	int rc = sponge_flush(sp, flags, write_stdout, &printed, &res);
	if (res.insecure && g->verbosity >= 0)
		errorf("warning: smtp.verify = no: the server's certificate "
		       "is not checked");
	if (res.warning[0] && g->verbosity >= 0)
		errorf("warning: %s", res.warning);
	/* (a dry run that prints no message says why, unless -q) */
	bool dry_says = (flags & SPONGE_FLUSH_DRY_RUN) && !printed &&
			 g->verbosity >= 0;
	if ((g->verbosity > 0 || dry_says) && res.reason[0])
		fprintf(stderr, "logsponge: %s\n", res.reason);
	if (res.expired && g->verbosity > 0)
		fprintf(stderr, "logsponge: expired %lld records older than "
				"policy.expire\n", (long long)res.expired);
	if (rc != SPONGE_OK) {
		errorf("flush: %s", *sponge_errmsg(sp) ? sponge_errmsg(sp)
						      : sponge_strerror(rc));
		status = loud_failure(sp, exit_code(rc));
	} else if (res.sent && g->verbosity > 0) {
		fprintf(stderr, "logsponge: sent %lld record%s as <%s>\n",
			(long long)res.records, res.records == 1 ? "" : "s",
			res.message_id);
	}
	/* sent, but not to everyone: one line per refused recipient, even
	 * with -q (cron mails it; the records are gone from the spool) */
	for (const char *p = res.refused; rc == SPONGE_OK && res.sent && *p;) {
		const char *end = strstr(p, "; RCPT ");
		int n = end ? (int)(end - p) : (int)strlen(p);
		errorf("flush: sent, but refused: %.*s", n, p);
		p = end ? end + 2 : p + n;
	}
	sponge_close(sp);
	if (fflush(stdout) != 0 && !status)
		status = EXIT_IOERR;
	return status;
}

/* The spool for check.  Before the first record there is none, and
 * that is no error: the config alone is checked (*none: what the
 * library said of the spool). */
static sponge *check_open(globals *g, int *status, char *none, size_t n)
{
	sponge *sp = NULL;
	int rc = sponge_open(&sp, g->spool, g->config, SPONGE_OPEN_NOCREATE);
	if (rc != SPONGE_ENOENT) {
		sponge_close(sp);
		return open_spool(g, USE_SEND, status, NULL);
	}
	/* (the handle read the config before it found no spool: once, so
	 * that a config read from a pipe is read whole) */
	snprintf(none, n, "%s", sponge_errmsg(sp));
	if (*sponge_config_error(sp)) {
		errorf("%s", sponge_config_error(sp));
		*status = EXIT_CONFIG;
		sponge_close(sp);
		return NULL;
	}
	return sp;
}

/* What a check step found ("smtp: connected: …: ok"), or why it failed:
 * the exit status. */
static int check_step(globals *g, sponge *sp, int rc, const char *what)
{
	if (rc != SPONGE_OK) {
		errorf("check: %s", sponge_errmsg(sp));
		return exit_code(rc);
	}
	if (g->verbosity >= 0)
		printf("%s: %s: ok\n", what, sponge_check_report(sp));
	return 0;
}

/* Records waited and nothing was delivered for policy.alarm_after: said
 * (a warning; the config may be right and the server down). */
static void check_silence(sponge *sp)
{
	sponge_stats st;
	sponge_policy p;
	char line[256];
	if (sponge_stats_get(sp, &st) == SPONGE_OK &&
	    sponge_get_policy(sp, &p) == SPONGE_OK &&
	    silent_since(&st, &p, sponge_now(), line, sizeof line))
		errorf("warning: %s", line);
}

int cmd_check(globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"send", no_argument, NULL, 'S'},
		{"smtp", no_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool smtp = false, send = false;
	int c, status = 0;
	while ((c = cmd_getopt(g, argc, argv, "+h", opts)) != -1) {
		switch (c) {
		case 'M': smtp = true; break;
		case 'S': send = true; break;
		case 'h': usage(stdout, "check"); return 0;
		default: return option_error("check", "+h", argv);
		}
	}
	if (optind < argc) {
		errorf("check: %s: unexpected argument", argv[optind]);
		return EXIT_USAGE;
	}
	char none[4200] = "";
	sponge *sp = check_open(g, &status, none, sizeof none);
	if (!sp)
		return status;
	/* what a flush will need for this transport, before saying ok */
	int crc = sponge_check_config(sp);
	if (crc != SPONGE_OK) {
		errorf("check: %s", sponge_errmsg(sp));
		sponge_close(sp);
		return exit_code(crc);
	}
	/* the noise rules compile (a broken file fails the check) */
	if ((crc = sponge_rules_load(sp)) != SPONGE_OK) {
		errorf("check: %s", sponge_errmsg(sp));
		sponge_close(sp);
		return exit_code(crc);
	}
	const char *cfg = sponge_config_path(sp);
	if (g->verbosity >= 0 && *none)
		printf("config: %s: ok\nspool: %s; the first record makes it: "
		       "ok\nrules: %zu\n", cfg ? cfg : "(none, defaults)", none,
		       sponge_rules_count(sp));
	else if (g->verbosity >= 0)
		printf("config: %s: ok\nspool: %s: ok\nrules: %zu\n",
		       cfg ? cfg : "(none, defaults)", sponge_path(sp),
		       sponge_rules_count(sp));
	/* allowed but unwise: warnings, not errors */
	const char *w = sponge_config_warnings(sp);
	for (const char *nl; *w && (nl = strchr(w, '\n')); w = nl + 1)
		errorf("warning: %.*s", (int)(nl - w), w);
	if (!*none)
		check_silence(sp);
	warn_other_spool(g, sp);
	if (smtp)
		status = check_step(g, sp, sponge_check_smtp(sp),
				    "smtp: connected");
	if (send && !status) {
		bool printed = false;
		fflush(stdout);
		status = check_step(g, sp, sponge_check_send(sp, write_stdout,
							      &printed),
				    "mail: test message");
	}
	sponge_close(sp);
	return status;
}
