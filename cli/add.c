/* add.c - `logsponge add`: one record per argument or per input line. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Ingest batching: a kill -9 loses at most this much that was read. */
#define BATCH_RECORDS 10000
#define BATCH_BYTES (1u << 20)
#define BATCH_MS 100
#define READ_SIZE (256u << 10)

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

typedef struct adder {
	sponge *sp;
	const char *tag;
	int level;       /* default level */
	bool detect;
	int rc;          /* first library error */
	int64_t now;     /* arrival time of the chunk being split */
	/* a line that spans reads: its first `keep` bytes, and how many
	 * bytes beyond those were dropped */
	char *carry;
	size_t carry_len, carry_cap, keep;
	uint64_t carry_cut;
	bool in_line;
} adder;

static void record(adder *a, const char *line, size_t len, uint64_t cut)
{
	if (a->rc)
		return;
	int level = a->level;
	size_t skip = 0;
	if (a->detect) {
		int l = sponge_detect_level(line, len, &skip);
		if (l >= 0)
			level = l;
	}
	sponge_entry e = {level, a->tag, a->now, NULL, line + skip, len - skip,
			  cut};
	a->rc = sponge_append_entry(a->sp, &e);
}

/* Keep at most a->keep bytes of a long line; count the rest as cut. */
static bool carry_add(adder *a, const char *p, size_t n)
{
	a->in_line = true;
	size_t room = a->keep - a->carry_len;
	size_t take = n < room ? n : room;
	a->carry_cut += n - take;
	if (a->carry_len + take > a->carry_cap) {
		size_t cap = a->carry_cap ? a->carry_cap : 4096;
		while (cap < a->carry_len + take)
			cap *= 2;
		char *c = realloc(a->carry, cap);
		if (!c) {
			errorf("add: out of memory");
			return false;
		}
		a->carry = c;
		a->carry_cap = cap;
	}
	memcpy(a->carry + a->carry_len, p, take);
	a->carry_len += take;
	return true;
}

static void end_line(adder *a, const char *p, size_t n)
{
	if (!a->in_line) {
		record(a, p, n, 0);
		return;
	}
	if (carry_add(a, p, n))
		record(a, a->carry, a->carry_len, a->carry_cut);
	a->carry_len = 0;
	a->carry_cut = 0;
	a->in_line = false;
	if (a->carry_cap > (1u << 20)) { /* do not hold on to a huge line */
		free(a->carry);
		a->carry = NULL;
		a->carry_cap = 0;
	}
}

/* Split a chunk into lines ending in LF, CRLF or a lone CR.  *cr_pending
 * says the previous chunk ended in CR, so a leading LF belongs to it. */
static void split(adder *a, const char *p, size_t n, bool *cr_pending)
{
	const char *end = p + n;
	if (*cr_pending && p < end) {
		*cr_pending = false;
		if (*p == '\n')
			p++;
	}
	while (p < end && !a->rc) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *stop = lf ? lf : end;
		const char *cr = memchr(p, '\r', (size_t)(stop - p));
		const char *eol = cr ? cr : lf;
		if (!eol) {
			carry_add(a, p, (size_t)(end - p));
			return;
		}
		end_line(a, p, (size_t)(eol - p));
		p = eol + 1;
		if (*eol == '\r') {
			if (p < end && *p == '\n')
				p++;
			else if (p == end)
				*cr_pending = true;
		}
	}
}

static bool tee_out(const char *p, size_t n, bool *tee)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (errno != EPIPE)
				errorf("add: --tee: standard output: %s "
				       "(still recording)", strerror(errno));
			*tee = false; /* keep recording, stop copying */
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static int read_stdin(adder *a, bool tee)
{
	char *buf = malloc(READ_SIZE);
	if (!buf) {
		errorf("add: out of memory");
		return EXIT_OSERR;
	}
	bool cr_pending = false;
	struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
	while (!a->rc && !stop_signal) {
		/* Input paused with records queued: commit them now rather
		 * than holding them while we wait. */
		if (sponge_queued(a->sp)) {
			int r = poll(&pfd, 1, BATCH_MS);
			if (r == 0) {
				a->rc = sponge_sync(a->sp);
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
		if (tee)
			tee_out(buf, (size_t)n, &tee);
		a->now = sponge_now(); /* all lines of a read arrived together */
		split(a, buf, (size_t)n, &cr_pending);
	}
	if (a->in_line && !stop_signal) {
		a->now = sponge_now();
		end_line(a, "", 0); /* a final line without a newline */
	}
	free(buf);
	return 0;
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
		"      --tee           copy standard input to standard output "
		"unchanged\n");
}

int cmd_add(const globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"level", required_argument, NULL, 'l'},
		{"tag", required_argument, NULL, 't'},
		{"detect-level", no_argument, NULL, 'd'},
		{"tee", no_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	adder a;
	memset(&a, 0, sizeof a);
	a.level = SPONGE_INFO;
	bool tee = false;
	int c;
	while ((c = getopt_long(argc, argv, "+l:t:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (!parse_level_opt("add: --level", optarg, &a.level))
				return EXIT_USAGE;
			break;
		case 't': a.tag = optarg; break;
		case 'd': a.detect = true; break;
		case 'T': tee = true; break;
		case 'h': add_usage(stdout); return 0;
		default: add_usage(stderr); return EXIT_USAGE;
		}
	}

	int status = 0;
	a.sp = open_spool(g, 0, &status);
	if (!a.sp)
		return status;
	a.keep = sponge_max_record(a.sp);

	if (optind < argc) {
		/* Each argument is a record (each of its lines, if several). */
		bool cr = false;
		for (int i = optind; i < argc && !a.rc; i++) {
			split(&a, argv[i], strlen(argv[i]), &cr);
			cr = false;
			if (a.in_line || !argv[i][0])
				end_line(&a, "", 0);
		}
	} else {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal; /* no SA_RESTART: wake read/poll */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sponge_set_batch(a.sp, BATCH_RECORDS, BATCH_BYTES, BATCH_MS);
		status = read_stdin(&a, tee);
	}
	size_t lost = sponge_queued(a.sp);
	if (!a.rc)
		a.rc = sponge_sync(a.sp);
	if (a.rc) {
		status = fail(a.sp, a.rc);
		if (lost)
			errorf("add: %zu records read but not stored", lost);
	}
	sponge_close(a.sp);
	free(a.carry);
	if (stop_signal && !status) {
		signal(stop_signal, SIG_DFL);
		raise(stop_signal);
	}
	return status;
}
