/* tail.c - the tail command: each [source NAME] read from where the spool
 * says it was read to, to its end, through the same ingest as add; the
 * position is committed in the transaction of the records it covers.  A
 * file renamed by a rotation is finished under its new name first; a
 * truncated, replaced or vanished file becomes a record at warning. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define READ_BYTES (1 << 20)     /* one read */
#define COMMIT_BYTES (8 << 20)   /* a transaction, at least */
#define HASH_SPAN 4096

#include "tail.h"

/* FNV-1a of the bytes [from, to) of fd; 0 on a read error. */
static uint64_t hash_range(int fd, int64_t from, int64_t to)
{
	unsigned char b[HASH_SPAN];
	uint64_t h = 14695981039346656037ULL;
	while (from < to) {
		size_t want = (size_t)(to - from) < sizeof b ? (size_t)(to - from)
							    : sizeof b;
		ssize_t n = pread(fd, b, want, (off_t)from);
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ b[i]) * 1099511628211ULL;
		from += n;
	}
	return h;
}

static void position_of(int fd, const struct stat *st, int64_t offset,
			sponge_position *p)
{
	memset(p, 0, sizeof *p);
	p->dev = (uint64_t)st->st_dev;
	p->ino = (uint64_t)st->st_ino;
	p->offset = offset;
	p->head = hash_range(fd, 0, offset < HASH_SPAN ? offset : HASH_SPAN);
	p->before = hash_range(fd, offset > HASH_SPAN ? offset - HASH_SPAN : 0,
			       offset);
}

/* Is fd the file p was read from, unchanged up to p's offset? */
/* Is fd p's file or a copy of it (copytruncate): the same bytes where p
 * hashed them? */
static bool same_bytes(int fd, const sponge_position *p)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < p->offset)
		return false;
	sponge_position now;
	position_of(fd, &st, p->offset, &now);
	return now.head == p->head && now.before == p->before;
}

static bool still_same(int fd, const struct stat *st, const sponge_position *p)
{
	return (uint64_t)st->st_dev == p->dev &&
	       (uint64_t)st->st_ino == p->ino && same_bytes(fd, p);
}

/* A record at warning about the source, stored with the position. */
void anomaly(tailer *t, const char *what)
{
	if (t->dry_run) {
		printf("%s: %s\n", t->src->name, what);
		return;
	}
	sponge_log(t->sp, SPONGE_WARNING, "logsponge", "source %s: %s",
		   t->src->name, what);
}

/* Commit what was read up to offset: the records and the position in
 * one transaction.  False when the spool failed (said on stderr). */
bool store_position(tailer *t, const char *name, const sponge_position *p)
{
	if (t->dry_run)
		return true;
	int rc = sponge_position_set(t->sp, name, p);
	if (rc == SPONGE_OK)
		rc = sponge_sync(t->sp);
	if (rc != SPONGE_OK)
		errorf("tail: %s: %s", name, sponge_errmsg(t->sp));
	return rc == SPONGE_OK;
}

static bool commit(tailer *t, int fd, const struct stat *st, int64_t offset)
{
	if (t->dry_run)
		return true;
	sponge_position p;
	position_of(fd, st, offset, &p);
	join_flush(&t->a); /* a record read whole is stored with it */
	return store_position(t, t->src->name, &p);
}

/* The lines of p[0..n) counted or fed to the ingest. */
static void take(tailer *t, const char *p, size_t n)
{
	t->bytes += (int64_t)n;
	if (t->dry_run) {
		for (size_t i = 0; i < n; i++)
			t->lines += p[i] == '\n';
		return;
	}
	adder_feed(&t->a, p, n);
}

/* A last line without its newline, in a file not written for
 * PARTIAL_WAIT seconds: it will not end, it is a line. */
#define PARTIAL_WAIT 5
static bool line_is_done(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec - st->st_mtim.tv_sec >= PARTIAL_WAIT;
}

/* fd from offset to its last complete line, committed every
 * COMMIT_BYTES where no record is half read, and at the end.  A last
 * line without its newline waits for the next pass. */
static bool read_rest(tailer *t, int fd, int64_t offset)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return false;
	int64_t done = offset;
	for (;;) {
		ssize_t n = pread(fd, t->buf, READ_BYTES, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t keep = (size_t)n;
		while (keep && t->buf[keep - 1] != '\n')
			keep--;
		if (!keep && n < READ_BYTES && !line_is_done(&st))
			break; /* a line still being written */
		if (!keep && n < READ_BYTES) { /* ... and left so: a line */
			take(t, t->buf, (size_t)n);
			adder_finish(&t->a);
			offset += n;
			continue;
		}
		if (!keep)
			keep = (size_t)n; /* a huge line: the ingest cuts it */
		take(t, t->buf, keep);
		offset += (int64_t)keep;
		if (offset - done >= COMMIT_BYTES && !t->a.in_line &&
		    !adder_pending(&t->a)) {
			if (!commit(t, fd, &st, offset))
				return false;
			done = offset;
		}
	}
	if (t->a.in_line) /* a huge last line: it ends here */
		adder_finish(&t->a);
	return commit(t, fd, &st, offset);
}

static bool compressed(const char *name)
{
	static const char *const ext[] = {".gz", ".xz", ".bz2", ".zst", ".lz4",
					  ".Z"};
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t e = strlen(ext[i]);
		if (n > e && !strcmp(name + n - e, ext[i]))
			return true;
	}
	return false;
}

/* The file p was read from, under the name a rotation gave it beside
 * path (path.1, path-20261206, …; not a compressed one), or with copy,
 * a copy of it that a copytruncate left there: open, or -1. */
static int find_rotated(const char *path, const sponge_position *p, bool copy)
{
	char pat[4200];
	snprintf(pat, sizeof pat, "%s[.-]*", path);
	glob_t g;
	if (glob(pat, 0, NULL, &g) != 0)
		return -1;
	int found = -1;
	for (size_t i = 0; i < g.gl_pathc && found < 0; i++) {
		struct stat st;
		if (compressed(g.gl_pathv[i]) || stat(g.gl_pathv[i], &st) != 0 ||
		    !S_ISREG(st.st_mode) ||
		    (!copy && ((uint64_t)st.st_dev != p->dev ||
			       (uint64_t)st.st_ino != p->ino)))
			continue;
		found = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
		if (found >= 0 && copy && !same_bytes(found, p)) {
			close(found);
			found = -1;
		}
	}
	globfree(&g);
	return found;
}

/* The offset of the end of fd's last complete line (a new source read
 * from its end). */
static int64_t last_line_end(int fd, int64_t size)
{
	int64_t from = size > READ_BYTES ? size - READ_BYTES : 0;
	char *b = malloc(READ_BYTES);
	ssize_t n = b ? pread(fd, b, (size_t)(size - from), (off_t)from) : -1;
	int64_t end = size;
	while (n > 0 && b[n - 1] != '\n')
		n--;
	if (n > 0 || from == 0)
		end = from + (n > 0 ? n : 0);
	free(b);
	return end;
}

/* Nothing to read at the source's path: say so once (the position then
 * names no file), after finishing a rotated file's rest. */
static bool vanished(tailer *t, const sponge_position *pos)
{
	if (!pos->ino)
		return true; /* said before */
	int old = find_rotated(t->src->path, pos, false);
	struct stat st;
	if (old >= 0 && fstat(old, &st) == 0 && still_same(old, &st, pos) &&
	    !read_rest(t, old, pos->offset)) {
		close(old);
		return false;
	}
	if (old >= 0)
		close(old);
	char w[4200];
	snprintf(w, sizeof w, "%s is gone%s; it is read from its start when "
			      "it comes back", t->src->path,
		 old >= 0 ? "" : " (lines written after the last pass may be "
				 "missing)");
	anomaly(t, w);
	static const sponge_position none;
	return store_position(t, t->src->name, &none);
}

typedef struct later {
	char *path;
	struct timespec mtime;
} later;

static int by_mtime(const void *a, const void *b)
{
	const struct timespec *x = &((const later *)a)->mtime,
			      *y = &((const later *)b)->mtime;
	return x->tv_sec != y->tv_sec ? (x->tv_sec < y->tv_sec ? -1 : 1)
	       : x->tv_nsec != y->tv_nsec ? (x->tv_nsec < y->tv_nsec ? -1 : 1)
					  : 0;
}

/* The rotated files beside the path written after the file `done` (by
 * their times), other than it and the file at the path: rotations since
 * the last pass left them (or a copytruncate's copies).  Each read
 * whole, oldest first; a compressed one is said to be skipped. */
static bool read_later(tailer *t, int done, int cur)
{
	struct stat ds, cs, st;
	if (fstat(done, &ds) != 0 || fstat(cur, &cs) != 0)
		return false;
	char pat[4200];
	snprintf(pat, sizeof pat, "%s[.-]*", t->src->path);
	glob_t g;
	if (glob(pat, 0, NULL, &g) != 0)
		return true;
	later *l = calloc(g.gl_pathc, sizeof *l);
	size_t n = 0;
	for (size_t i = 0; l && i < g.gl_pathc; i++)
		if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_ino != ds.st_ino && st.st_ino != cs.st_ino &&
		    by_mtime(&(later){NULL, st.st_mtim},
			     &(later){NULL, ds.st_mtim}) > 0)
			l[n++] = (later){g.gl_pathv[i], st.st_mtim};
	qsort(l, n, sizeof *l, by_mtime);
	bool ok = l != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		int fd = compressed(l[i].path) ? -1
						: open(l[i].path, O_RDONLY |
								  O_CLOEXEC);
		if (fd < 0) {
			snprintf(pat, sizeof pat, "%s was rotated again and "
						  "compressed before it was read: "
						  "its lines are missing",
				 l[i].path);
			anomaly(t, pat);
			continue;
		}
		ok = read_rest(t, fd, 0);
		close(fd);
	}
	free(l);
	globfree(&g);
	return ok;
}

/* The file at the path is not the one the position names: a rotation.
 * The old file's rest first, under its new name, then the new file. */
static bool rotated(tailer *t, int fd, const sponge_position *pos)
{
	int old = find_rotated(t->src->path, pos, false);
	char w[4200];
	if (old < 0) {
		snprintf(w, sizeof w, "%s was rotated and its old file is gone "
				      "(compressed or removed): lines written "
				      "to it after the last pass may be missing",
			 t->src->path);
		anomaly(t, w);
	} else {
		struct stat st;
		if (fstat(old, &st) != 0 || !still_same(old, &st, pos)) {
			/* truncated by a copytruncate before it was renamed:
			 * its copy, if one is there, holds the rest */
			int copy = find_rotated(t->src->path, pos, true);
			close(old);
			old = copy;
		}
		bool ok = old < 0 || (read_rest(t, old, pos->offset) &&
				      read_later(t, old, fd));
		if (old >= 0)
			close(old);
		if (!ok)
			return false;
		if (old < 0) {
			snprintf(w, sizeof w, "the file rotated from %s changed "
					      "before the position and no copy "
					      "of it is beside it: lines "
					      "written to it after the last "
					      "pass may be missing",
				 t->src->path);
			anomaly(t, w);
		}
	}
	return read_rest(t, fd, 0);
}

/* The file at the path was truncated below the position: by a
 * copytruncate rotation, when a copy of it up to the position lies
 * beside it (its rest is read first), else by someone else. */
static bool truncated(tailer *t, int fd, const struct stat *st,
		      const sponge_position *pos)
{
	int copy = find_rotated(t->src->path, pos, true);
	if (copy >= 0) {
		bool ok = read_rest(t, copy, pos->offset) &&
			  read_later(t, copy, fd);
		close(copy);
		return ok && read_rest(t, fd, 0);
	}
	char w[4200];
	snprintf(w, sizeof w, "%s was truncated or rewritten before the "
			      "position %lld (it has %lld bytes) and no copy "
			      "of it is beside it: read from its start; lines "
			      "written to it after the last pass may be missing",
		 t->src->path, (long long)pos->offset, (long long)st->st_size);
	anomaly(t, w);
	return read_rest(t, fd, 0);
}

/* Where to start in the file at the path, its position known. */
static bool resume(tailer *t, int fd, const struct stat *st,
		   const sponge_position *pos)
{
	if (!pos->ino) /* it was gone and is back */
		return read_rest(t, fd, 0);
	if ((uint64_t)st->st_dev != pos->dev ||
	    (uint64_t)st->st_ino != pos->ino)
		return rotated(t, fd, pos);
	if (!still_same(fd, st, pos)) /* truncated (and written again?) */
		return truncated(t, fd, st, pos);
	return read_rest(t, fd, pos->offset);
}

/* One pass over the source; an exit status. */
static int pass(tailer *t)
{
	if (t->src->type == SPONGE_SOURCE_JOURNAL)
		return journal_pass(t);
	sponge_position pos;
	int found = 0;
	if (sponge_position_get(t->sp, t->src->name, &pos, &found) != SPONGE_OK)
		return fail(t->sp, SPONGE_EIO);
	int fd = open(t->src->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno != ENOENT) {
		errorf("tail: %s: %s: %s", t->src->name, t->src->path,
		       strerror(errno));
		return EXIT_NOINPUT;
	}
	bool ok;
	struct stat st;
	if (fd < 0) {
		ok = !found || vanished(t, &pos);
	} else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		errorf("tail: %s: %s: not a regular file", t->src->name,
		       t->src->path);
		close(fd);
		return EXIT_NOINPUT;
	} else if (found) {
		ok = resume(t, fd, &st, &pos);
	} else if (t->from_start) {
		ok = read_rest(t, fd, 0);
	} else { /* a new source: from its end, so no old news is mailed */
		ok = commit(t, fd, &st, last_line_end(fd, st.st_size));
	}
	if (fd >= 0)
		close(fd);
	if (t->dry_run)
		printf("%s: %s: %lld line%s (%lld bytes) to read\n",
		       t->src->name, t->src->path, (long long)t->lines,
		       t->lines == 1 ? "" : "s", (long long)t->bytes);
	return ok ? 0 : EXIT_IOERR;
}

static int tail_options(globals *g, int argc, char **argv, tailer *t)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"from-start", no_argument, NULL, 'S'},
		{"from-end", no_argument, NULL, 'E'},
		{"follow", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = cmd_getopt(g, argc, argv, "+h", opts)) != -1) {
		switch (c) {
		case 'n': t->dry_run = true; break;
		case 'S': t->from_start = true; break;
		case 'E': t->from_start = false; break;
		case 'f': t->follow = true; break;
		case 'h': usage(stdout, "tail"); return 0;
		default: return option_error("tail", "+h", argv);
		}
	}
	return -1;
}

/* The sources named (all when none is): their indexes into want[]. */
/* The system journal, at info and more severe: the source `journal`
 * names when the config has no [source journal] (the journal unit's). */
static const sponge_source builtin_journal = {
	"journal", NULL, NULL, NULL, SPONGE_FORMAT_JOURNAL_JSON, SPONGE_INFO,
	0, 0, SPONGE_SOURCE_JOURNAL, NULL, NULL, SPONGE_INFO};

/* Source i: the config's, or past them the built-in journal. */
static bool source_at(tailer *t, size_t i, sponge_source *s)
{
	if (i < sponge_sources(t->sp))
		return sponge_source_get(t->sp, i, s) == SPONGE_OK;
	*s = builtin_journal;
	return true;
}

/* The sources named (all the config's when none is) into want[0..n]
 * (want[n]: the built-in journal). */
static int pick_sources(sponge *sp, int argc, char **argv, bool *want)
{
	size_t n = sponge_sources(sp);
	if (!n && optind >= argc) {
		errorf("tail: the config names no source ([source NAME] with a "
		       "path)");
		return EXIT_CONFIG;
	}
	for (size_t i = 0; i < n; i++)
		want[i] = optind >= argc;
	for (int k = optind; k < argc; k++) {
		bool known = false;
		for (size_t i = 0; i < n; i++) {
			sponge_source s;
			sponge_source_get(sp, i, &s);
			if (!strcmp(s.name, argv[k]))
				known = want[i] = true;
		}
		if (!known && !strcmp(argv[k], builtin_journal.name))
			known = want[n] = true;
		if (!known) {
			errorf("tail: %s: no such source in the config",
			       argv[k]);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static int tail_source(tailer *t, const sponge_source *s)
{
	t->src = s;
	t->lines = t->bytes = 0;
	adder_init(&t->a, t->sp, s->tag, s->level, s->detect_level != 0,
		   s->type == SPONGE_SOURCE_JOURNAL ? SPONGE_FORMAT_JOURNAL_JSON
						    : s->format,
		   STDERR_FILENO, "tail");
	t->a.join = t->a.join && s->join;
	t->a.host = s->host;
	int status = pass(t);
	adder_free(&t->a);
	return status;
}

/* A file a rotation made (name.1, name-20261206) or compressed: a glob
 * that matches it does not make it a source of its own. */
static bool rotated_name(const char *p)
{
	size_t n = strlen(p), d = 0;
	while (d < n && p[n - 1 - d] >= '0' && p[n - 1 - d] <= '9')
		d++;
	return compressed(p) ||
	       (d && d < n && (p[n - 1 - d] == '.' || (d >= 8 &&
						     p[n - 1 - d] == '-')));
}

/* A source whose path is a glob: each file it matches is a source of
 * its own, its position kept as NAME:PATH. */
static int tail_glob(tailer *t, const sponge_source *s)
{
	glob_t g;
	int r = glob(s->path, 0, NULL, &g);
	if (r == GLOB_NOMATCH)
		g.gl_pathc = 0;
	else if (r != 0) {
		errorf("tail: %s: %s: cannot list the files", s->name, s->path);
		return EXIT_NOINPUT;
	}
	/* once the source has begun (a position under its own name marks
	 * it), a file that comes later is read from its start */
	sponge_position mark;
	int begun = 0, status = 0;
	bool from_start = t->from_start;
	if (sponge_position_get(t->sp, s->name, &mark, &begun) != SPONGE_OK)
		status = fail(t->sp, SPONGE_EIO);
	t->from_start = from_start || begun;
	for (size_t i = 0; i < g.gl_pathc && !status; i++) {
		struct stat st;
		if (rotated_name(g.gl_pathv[i]) || stat(g.gl_pathv[i], &st) ||
		    !S_ISREG(st.st_mode))
			continue;
		char name[4200];
		snprintf(name, sizeof name, "%s:%s", s->name, g.gl_pathv[i]);
		sponge_source one = *s;
		one.name = name;
		one.path = g.gl_pathv[i];
		status = tail_source(t, &one);
	}
	t->from_start = from_start;
	globfree(&g);
	t->src = s; /* (no longer the last file's) */
	if (!status && !begun) {
		memset(&mark, 0, sizeof mark);
		if (!store_position(t, s->name, &mark))
			status = EXIT_IOERR;
	}
	return status;
}

static int tail_one(tailer *t, const sponge_source *s)
{
	if (s->type == SPONGE_SOURCE_FILE && strpbrk(s->path, "*?["))
		return tail_glob(t, s);
	return tail_source(t, s);
}

static int tail_nth(tailer *t, size_t i)
{
	sponge_source s;
	return source_at(t, i, &s) ? tail_one(t, &s) : 0;
}

int cmd_tail(globals *g, int argc, char **argv)
{
	tailer t;
	memset(&t, 0, sizeof t);
	int status = tail_options(g, argc, argv, &t);
	if (status >= 0)
		return status;
	t.sp = open_spool(g, USE_INGEST, &status, NULL);
	if (!t.sp)
		return status;
	size_t n = sponge_sources(t.sp);
	bool *want = calloc(n + 1, sizeof *want);
	t.buf = malloc(READ_BYTES);
	if (!want || !t.buf) {
		errorf("tail: out of memory");
		status = EXIT_OSERR;
	} else {
		status = pick_sources(t.sp, argc, argv, want);
	}
	/* nothing is written but with the position that covers it */
	sponge_set_batch(t.sp, ~0u, 0, 0);
	if (!status && t.follow) {
		status = tail_follow(&t, want, n + 1, tail_nth);
	} else {
		for (size_t i = 0; i <= n && !status; i++)
			if (want[i])
				status = tail_nth(&t, i);
	}
	free(want);
	free(t.buf);
	/* what a failed pass queued is read again from its position */
	sponge_discard_queue(t.sp, NULL, NULL);
	sponge_close(t.sp);
	return finish_output(status);
}
