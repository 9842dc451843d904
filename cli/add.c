/* add.c - `logsponge add`: one record per argument or per input line. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

/* Copy to fd; on failure stop copying (recording goes on).  EPIPE (the
 * reader went away) is not worth a message.  A reader that does not read
 * must not hold us: the copy goes out in pieces no larger than a pipe
 * takes at once, and while fd is not ready `wait(ctx)` runs every
 * BATCH_MS (it commits what is queued); when it returns false (a signal
 * came) the copying stops. */
bool tee_out(int fd, const char *p, size_t n, bool *tee, tee_wait_fn wait,
	     void *ctx)
{
	while (n) {
		struct pollfd pfd = {fd, POLLOUT, 0};
		int r = poll(&pfd, 1, BATCH_MS);
		if (r <= 0) {
			if (r < 0 && errno != EINTR)
				break;
			if (!wait(ctx)) {
				*tee = false;
				return false;
			}
			continue;
		}
		size_t piece = n < PIPE_BUF ? n : PIPE_BUF;
		ssize_t w = write(fd, p, piece);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
	if (!n)
		return true;
	if (errno != EPIPE)
		errorf("--tee: %s: %s (still recording)",
		       fd == STDOUT_FILENO ? "standard output" : "standard error",
		       strerror(errno));
	*tee = false;
	return false;
}

/* While the tee's reader is slow: commit, and stop on a signal. */
static bool add_tee_wait(void *ctx)
{
	adder *a = ctx;
	if (sponge_queued(a->sp) || adder_pending(a))
		adder_sync(a);
	return !stop_signal;
}

static int read_stdin(adder *a, bool tee)
{
	char *buf = malloc(READ_SIZE);
	if (!buf) {
		errorf("add: out of memory");
		return EXIT_OSERR;
	}
	struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
	while (!stop_signal) {
		/* Input paused with records queued: commit them now rather
		 * than holding them while we wait.  The queue's age is
		 * checked before each read too, so a reader of --tee that
		 * blocks us cannot hold records back for long either. */
		if (a->sp && (sponge_queued(a->sp) || adder_pending(a))) {
			int r = poll(&pfd, 1, BATCH_MS);
			if (r == 0) {
				adder_sync(a);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
		}
		ssize_t n = read(STDIN_FILENO, buf, READ_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errorf("add: standard input: %s", strerror(errno));
			free(buf);
			return EXIT_IOERR;
		}
		if (n == 0)
			break;
		if (!a->sp) { /* no spool at all: pass everything on */
			write_all(STDERR_FILENO, buf, (size_t)n);
			continue;
		}
		adder_feed(a, buf, (size_t)n);
		/* after storing: a tee reader that stops reading must not
		 * keep this read's records from being committed on time */
		if (tee)
			tee_out(STDOUT_FILENO, buf, (size_t)n, &tee,
				add_tee_wait, a);
	}
	if (!stop_signal && a->sp)
		adder_finish(a);
	free(buf);
	return 0;
}

bool parse_format_opt(const char *arg, int *format)
{
	static const struct {
		const char *name;
		int format;
	} formats[] = {
		{"text", SPONGE_FORMAT_TEXT},
		{"journal-json", SPONGE_FORMAT_JOURNAL_JSON},
		{"rfc5424", SPONGE_FORMAT_RFC5424},
		{"rfc3164", SPONGE_FORMAT_RFC3164},
		{"syslog", SPONGE_FORMAT_SYSLOG},
	};
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
		if (strcmp(arg, formats[i].name) == 0) {
			*format = formats[i].format;
			return true;
		}
	errorf("add: --format %s: unknown format (text, journal-json, "
	       "rfc5424, rfc3164, syslog)", arg);
	return false;
}

static void add_usage(FILE *f)
{
	usage(f, "add");
	fprintf(f,
		"options:\n"
		"  -l, --level LEVEL   level of the records (default info)\n"
		"  -t, --tag TAG       tag, e.g. the program's name (default "
		"none)\n"
		"  -d, --detect-level  take the level from each line when it "
		"says one\n"
		"                      (<3>, ERROR:, [warn], level=error, "
		"\"level\":\"error\")\n"
		"  -f, --format FMT    text (default), journal-json "
		"(journalctl -o json),\n"
		"                      rfc5424 or rfc3164 (syslog messages), "
		"syslog (a\n"
		"                      syslog file's lines: Dec  6 10:00:03 "
		"host tag[pid]: …)\n"
		"      --tee           copy standard input to standard output "
		"unchanged\n"
		"      --join MODE     auto (default): a traceback, stack trace "
		"or indented\n"
		"                      lines join the record of their first "
		"line; none\n");
}

bool parse_join_opt(const char *who, const char *arg, bool *join)
{
	if (strcmp(arg, "auto") == 0 || strcmp(arg, "none") == 0) {
		*join = strcmp(arg, "auto") == 0;
		return true;
	}
	errorf("%s: --join %s: must be auto or none", who, arg);
	return false;
}

typedef struct add_opts {
	int level, format;
	const char *tag;
	bool tee, detect, join;
} add_opts;

/* add's options into o: -1, or the exit status to return at once. */
static int add_options(globals *g, int argc, char **argv, add_opts *o)
{
	static const struct option opts[] = {
		{"level", required_argument, NULL, 'l'},
		{"tag", required_argument, NULL, 't'},
		{"detect-level", no_argument, NULL, 'd'},
		{"format", required_argument, NULL, 'f'},
		{"tee", no_argument, NULL, 'T'},
		{"join", required_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (add_opts){SPONGE_INFO, SPONGE_FORMAT_TEXT, NULL, false, false,
			true};
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+l:t:df:h", opts)) != -1) {
		bool ok = true;
		switch (c) {
		case 'l': ok = parse_level_opt("add: --level", optarg, &o->level); break;
		case 't': o->tag = optarg; break;
		case 'd': o->detect = true; break;
		case 'f': ok = parse_format_opt(optarg, &o->format); break;
		case 'T': o->tee = true; break;
		case 'J': ok = parse_join_opt("add", optarg, &o->join); break;
		case 'h': add_usage(stdout); return 0;
		default: return option_error("add", "+l:t:df:h", argv);
		}
		if (!ok)
			return EXIT_USAGE;
	}
	return -1;
}

/* Nothing can be stored: the records go to stderr, and the producer
 * still gets to write all it has. */
static void add_unstored(int argc, char **argv)
{
	for (int i = optind; i < argc; i++) {
		write_all(STDERR_FILENO, argv[i], strlen(argv[i]));
		write_all(STDERR_FILENO, "\n", 1);
	}
	if (optind >= argc) {
		adder none;
		memset(&none, 0, sizeof none);
		read_stdin(&none, false);
	}
}

/* Each argument is a record (each of its lines, if several). */
static void add_arguments(adder *a, int argc, char **argv)
{
	for (int i = optind; i < argc; i++) {
		bool cr = false;
		a->now = 0;
		adder_split(a, argv[i], strlen(argv[i]), &cr);
		if (a->in_line || !argv[i][0])
			adder_end_line(a, "", 0);
		join_flush(a); /* an argument ends its record */
	}
}

/* SIGINT, SIGTERM and SIGHUP end the reading (after a commit); a signal
 * ignored by whoever started us stays ignored (a pipeline's `trap ""
 * TERM`: read on to the end of input, so nothing its writer printed is
 * lost). */
static void catch_stop_signals(void)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: wake read/poll */
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
}

int cmd_add(globals *g, int argc, char **argv)
{
	add_opts o;
	int status = add_options(g, argc, argv, &o);
	if (status >= 0)
		return status;
	status = 0;
	sponge *sp = open_spool(g, USE_INGEST, &status,
				"; the lines not stored follow on standard "
				"error");
	if (!sp) {
		add_unstored(argc, argv);
		return status;
	}
	adder a;
	adder_init(&a, sp, o.tag, o.level, o.detect, o.format, STDERR_FILENO,
		   "add");
	a.join = a.join && o.join;
	if (optind < argc) {
		add_arguments(&a, argc, argv);
	} else {
		catch_stop_signals();
		sponge_set_batch(sp, BATCH_RECORDS, BATCH_BYTES, BATCH_MS);
		status = read_stdin(&a, o.tee);
	}
	status = finish_adding(&a, status);
	adder_free(&a);
	sponge_close(sp);
	if (stop_signal && !status) {
		signal(stop_signal, SIG_DFL);
		raise(stop_signal);
	}
	return status;
}

int finish_adding(adder *a, int status)
{
	adder_sync(a);
	return *a->spool_rc ? (status ? status : EXIT_IOERR) : status;
}
