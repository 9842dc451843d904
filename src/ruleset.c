/* ruleset.c - the rules a handle applies: read from the rules directory
 * (*.rules in name order) and logcheck's directories, compiled into three
 * matchers (rules in the masked form against the masked line, /ERE/ rules
 * against the message, logcheck's against the record as a syslog line),
 * and the verdict on one record: the first rule whose pattern and field
 * tests match. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "match.h"
#include "rules.h"
#include "store.h"

struct sp_ruleset {
	sp_rules rules;
	sp_matcher *masked, *plain, *syslog; /* rules by what they read */
	size_t *posix; /* rules the C library's regex matches, and */
	size_t nposix; /*   how many */
	spbuf line;    /* the masked first line being judged */
	spbuf rendered;/* the record as a syslog file's line */
};

/* What a rule's field tests and its expiry say of record e. */
typedef struct judge_ctx {
	const sp_ruleset *set;
	const sponge_entry *e;
	int64_t now;
	const char *line; /* the record as a syslog file's line */
} judge_ctx;

static void set_free(sp_ruleset *s)
{
	if (!s)
		return;
	sp_rules_free(&s->rules);
	sp_matcher_free(s->masked);
	sp_matcher_free(s->plain);
	sp_matcher_free(s->syslog);
	sp_free(s->posix);
	sb_free(&s->line);
	sb_free(&s->rendered);
	sp_free(s);
}

/* The rules directory: [rules] path, else rules.d beside the config. */
static bool rules_dir(const sponge *sp, char *out, size_t size)
{
	if (sp->cfg.rules_path) {
		snprintf(out, size, "%s", sp->cfg.rules_path);
		return true;
	}
	const char *cfg = sp->cfg.path;
	if (!cfg)
		return false;
	const char *slash = strrchr(cfg, '/');
	if (!slash) /* a config named from the working directory */
		snprintf(out, size, "rules.d");
	else
		snprintf(out, size, "%.*s/rules.d", (int)(slash - cfg), cfg);
	return true;
}

static int is_rules_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 6 &&
	       strcmp(d->d_name + n - 6, ".rules") == 0;
}

typedef int (*parse_fn)(sp_rules *, const char *, const char *, size_t,
			spbuf *);

/* One file's rules, appended. */
static int read_file(sponge *sp, sp_ruleset *s, const char *path,
		     parse_fn parse)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (64 << 20)) {
		int e = fd < 0 ? errno : EINVAL;
		if (fd >= 0)
			close(fd);
		return sp_fail(sp, SPONGE_ECONFIG, "%s: %s", path,
			       e == EINVAL ? "not a regular file of at most 64M"
					   : strerror(e));
	}
	spbuf text, err;
	sb_init(&text, (size_t)st.st_size + 1);
	sb_init(&err, 0);
	char buf[65536];
	ssize_t k;
	while ((k = read(fd, buf, sizeof buf)) > 0)
		sb_add(&text, buf, (size_t)k);
	close(fd);
	int rc = k < 0 ? sp_fail(sp, SPONGE_ECONFIG, "%s: %s", path,
				 strerror(errno))
		 : text.failed ? sp_fail(sp, SPONGE_ENOMEM, "out of memory")
			       : parse(&s->rules, path,
				       text.data ? text.data : "", text.len,
				       &err);
	if (rc == SPONGE_ECONFIG && err.len)
		sp_fail(sp, rc, "%s", err.data);
	sb_free(&text);
	sb_free(&err);
	return rc;
}

/* run-parts' names: letters, digits, '_' and '-' (no editor backups,
 * no .dpkg-old), as logcheck reads its directories. */
static int is_run_parts_name(const struct dirent *d)
{
	const char *p = d->d_name;
	for (; *p; p++)
		if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return 0;
	return p != d->d_name;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int read_dir(sponge *sp, sp_ruleset *s, const char *dir, bool logcheck)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, logcheck ? is_run_parts_name : is_rules_file,
			by_name);
	if (n < 0)
		return errno == ENOENT ? SPONGE_OK /* no rules */
				       : sp_fail(sp, SPONGE_ECONFIG, "%s: %s",
						 dir, strerror(errno));
	int rc = SPONGE_OK;
	for (int i = 0; i < n; i++) {
		spbuf path;
		sb_init(&path, 0);
		sb_printf(&path, "%s/%s", dir, names[i]->d_name);
		if (rc == SPONGE_OK)
			rc = path.failed ? sp_fail(sp, SPONGE_ENOMEM, "out of memory")
					 : read_file(sp, s, path.data,
						     logcheck ? sp_rules_add_logcheck
							      : sp_rules_parse);
		sb_free(&path);
		free(names[i]);
	}
	free(names);
	return rc;
}

int sp_rules_expiring(sponge *sp, int64_t now, int64_t window,
		      void (*each)(void *, const char *, int64_t), void *arg)
{
	char dir[4096];
	if (!rules_dir(sp, dir, sizeof dir))
		return SPONGE_OK;
	sp_ruleset s;
	memset(&s, 0, sizeof s);
	int rc = read_dir(sp, &s, dir, false);
	for (size_t i = 0; rc == SPONGE_OK && i < s.rules.n; i++) {
		const sp_rule *r = &s.rules.r[i];
		if (r->until_us && r->until_us > now - window &&
		    r->until_us <= now + window)
			each(arg, r->name ? r->name : r->where, r->until_us);
	}
	sp_rules_free(&s.rules);
	return rc;
}

/* ---- the compiled databases, cached --------------------------------- */

/* $XDG_CACHE_HOME/logsponge (or ~/.cache/logsponge), made 0700 when
 * missing; only a directory of our own that others cannot write. */
static bool cache_dir(spbuf *dir)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (x && x[0] == '/')
		sb_printf(dir, "%s", x);
	else if (home && home[0] == '/')
		sb_printf(dir, "%s/.cache", home);
	else
		return false;
	mkdir(dir->data, 0700);
	sb_adds(dir, "/logsponge");
	mkdir(dir->data, 0700);
	struct stat st;
	return !dir->failed && lstat(dir->data, &st) == 0 &&
	       S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       !(st.st_mode & 022);
}

static bool cache_file(spbuf *path, const char *const *re,
		       const unsigned *ids, size_t n, const char *suffix)
{
	if (!cache_dir(path))
		return false;
	sb_printf(path, "/rules-%016llx.%s",
		  (unsigned long long)sp_matcher_key(re, ids, n), suffix);
	return !path->failed;
}

/* A trusted cache file's bytes into out (ours, no one else may write
 * it, not a link). */
static bool cache_read(const char *path, spbuf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	bool ok = false;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && !(st.st_mode & 022) &&
	    st.st_size < (256 << 20)) {
		char buf[65536];
		ssize_t k;
		while ((k = read(fd, buf, sizeof buf)) > 0)
			sb_add(out, buf, (size_t)k);
		ok = k == 0 && !out->failed && out->len;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Write a cache file whole (a temporary file renamed over it); a
 * failure costs only the next compile. */
static void cache_write(const char *path, const char *bytes, size_t len)
{
	spbuf tmp;
	sb_init(&tmp, 0);
	sb_printf(&tmp, "%s.XXXXXX", path);
	int fd = tmp.failed ? -1 : mkostemp(tmp.data, O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, bytes, len) == (ssize_t)len &&
		  fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	if (fd >= 0 && (!ok || rename(tmp.data, path) != 0))
		unlink(tmp.data);
	sb_free(&tmp);
}

/* The database compiled before for these patterns, if a trusted cache
 * file has it (the engine checks the bytes are a database of its own). */
static bool cache_load(const char *const *re, const unsigned *ids, size_t n,
		       sp_matcher **out)
{
	spbuf path, bytes;
	sb_init(&path, 0);
	sb_init(&bytes, 0);
	bool ok = cache_file(&path, re, ids, n, "hsdb") &&
		  cache_read(path.data, &bytes) &&
		  sp_matcher_load(bytes.data, bytes.len, out) == SPONGE_OK;
	sb_free(&path);
	sb_free(&bytes);
	return ok;
}

/* The cache keeps the CACHE_KEEP newest files (each rules edit makes
 * new ones): the older go when a new one is written. */
#define CACHE_KEEP 8
typedef struct aged {
	char name[64];
	time_t mtime;
} aged;

static int newest_first(const void *a, const void *b)
{
	const aged *x = a, *y = b;
	return x->mtime != y->mtime ? (x->mtime < y->mtime ? 1 : -1)
				    : strcmp(x->name, y->name);
}

static void cache_trim(void)
{
	spbuf dir;
	sb_init(&dir, 0);
	DIR *d = cache_dir(&dir) ? opendir(dir.data) : NULL;
	aged *a = NULL;
	size_t n = 0, cap = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		struct stat st;
		if (strncmp(e->d_name, "rules-", 6) != 0 ||
		    strlen(e->d_name) >= sizeof a->name ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			aged *b = sp_realloc(a, (cap = cap ? cap * 2 : 16) * sizeof *a);
			if (!b)
				break;
			a = b;
		}
		snprintf(a[n].name, sizeof a[n].name, "%s", e->d_name);
		a[n++].mtime = st.st_mtime;
	}
	if (a && n > CACHE_KEEP) {
		qsort(a, n, sizeof *a, newest_first);
		for (size_t i = CACHE_KEEP; i < n; i++)
			unlinkat(dirfd(d), a[i].name, 0);
	}
	sp_free(a);
	if (d)
		closedir(d);
	sb_free(&dir);
}

static void cache_save(const char *const *re, const unsigned *ids, size_t n,
		       const sp_matcher *m)
{
	spbuf path;
	sb_init(&path, 0);
	char *bytes = NULL;
	size_t len = 0;
	if (cache_file(&path, re, ids, n, "hsdb") &&
	    sp_matcher_save(m, &bytes, &len) == SPONGE_OK) {
		cache_write(path.data, bytes, len);
		cache_trim();
	}
	free(bytes);
	sb_free(&path);
}

/* What a rule reads: 0 the masked first line, 1 the message, 2 the
 * record as a syslog file's line. */
static int reads(const sp_rule *r)
{
	return r->logcheck ? 2 : r->masked ? 0 : 1;
}

/* One matcher for the rules that read the same text, each reported by
 * its index (a rule left to the C library's regex is not in it). */
static int compile(sponge *sp, const sp_rules *rs, int kind,
		   sp_matcher **out)
{
	bool masked = kind == 0;
	const char **re = sp_malloc((rs->n + 1) * sizeof *re);
	unsigned *ids = sp_malloc((rs->n + 1) * sizeof *ids);
	size_t n = 0;
	int rc = re && ids ? SPONGE_OK : sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	for (size_t i = 0; rc == SPONGE_OK && i < rs->n; i++)
		if (reads(&rs->r[i]) == kind && rs->r[i].regex) {
			re[n] = rs->r[i].regex;
			ids[n++] = (unsigned)i;
		}
	spbuf why;
	sb_init(&why, 0);
	long bad = -1;
	if (rc == SPONGE_OK && n && cache_load(re, ids, n, out))
		n = 0; /* compiled before: the cached database */
	if (rc == SPONGE_OK && n &&
	    (rc = sp_matcher_build(re, ids, n, out, &why, &bad)) == SPONGE_OK)
		cache_save(re, ids, n, *out);
	if (rc != SPONGE_OK)
		rc = bad >= 0 ? sp_fail(sp, rc, "%s: the pattern %s%s%s: %s",
					rs->r[ids[bad]].where, masked ? "\"" : "/",
					rs->r[ids[bad]].pattern,
					masked ? "\"" : "/", why.data)
			      : sp_fail(sp, rc, "rules: %s", why.len ? why.data
							       : "out of memory");
	sb_free(&why);
	sp_free(re);
	sp_free(ids);
	return rc;
}

/* [rules] logcheck: each directory, as logcheck reads it. */
static int read_logcheck(sponge *sp, sp_ruleset *s)
{
	const char *p = sp->cfg.rules_logcheck;
	int rc = SPONGE_OK;
	while (rc == SPONGE_OK && p && *(p += strspn(p, " \t"))) {
		size_t n = strcspn(p, " \t");
		spbuf dir;
		sb_init(&dir, 0);
		sb_add(&dir, p, n);
		struct stat st;
		rc = dir.failed ? sp_fail(sp, SPONGE_ENOMEM, "out of memory")
		     : stat(dir.data, &st) != 0 || !S_ISDIR(st.st_mode)
			     ? sp_fail(sp, SPONGE_ECONFIG, "[rules] logcheck: %s: "
						 "not a directory", dir.data)
			     : read_dir(sp, s, dir.data, true);
		sb_free(&dir);
		p += n;
	}
	return rc;
}

/* Which logcheck rules' patterns the engine refuses: asking it costs a
 * partial compile each, so the answer is cached with the databases
 * ("ok" and the refused rules' indexes, one a line).  refused[i] set for
 * those. */
static bool refused_rules(const sp_rules *rs, bool *refused)
{
	const char **re = sp_malloc((rs->n + 1) * sizeof *re);
	if (!re)
		return false;
	for (size_t i = 0; i < rs->n; i++)
		re[i] = rs->r[i].logcheck && rs->r[i].regex ? rs->r[i].regex : "";
	spbuf path, list;
	sb_init(&path, 0);
	sb_init(&list, 0);
	bool cached = cache_file(&path, re, NULL, rs->n, "refused") &&
		      cache_read(path.data, &list) &&
		      !strncmp(list.data, "ok\n", 3);
	if (cached) {
		for (const char *p = list.data + 3; *p;) {
			char *end;
			unsigned long i = strtoul(p, &end, 10);
			if (end == p || i >= rs->n)
				break;
			refused[i] = true;
			p = *end ? end + 1 : end;
		}
	} else {
		sb_reset(&list);
		sb_adds(&list, "ok\n");
		for (size_t i = 0; i < rs->n; i++)
			if (*re[i] && (refused[i] = !sp_matcher_accepts(re[i])))
				sb_printf(&list, "%zu\n", i);
		if (path.len && !list.failed)
			cache_write(path.data, list.data, list.len);
	}
	sb_free(&path);
	sb_free(&list);
	sp_free(re);
	return true;
}

/* A logcheck rule the engine cannot take goes to the C library's regex
 * (grep's own), matched one by one. */
static int fall_back(sponge *sp, sp_ruleset *s)
{
	sp_rules *rs = &s->rules;
	s->posix = sp_malloc((rs->n + 1) * sizeof *s->posix);
	bool *refused = sp_malloc((rs->n + 1) * sizeof *refused);
	if (refused)
		memset(refused, 0, (rs->n + 1) * sizeof *refused);
	if (!s->posix || !refused || !refused_rules(rs, refused)) {
		sp_free(refused);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	int rc = SPONGE_OK;
	for (size_t i = 0; rc == SPONGE_OK && i < rs->n; i++) {
		sp_rule *r = &rs->r[i];
		if (!r->logcheck)
			continue;
		if (r->regex && refused[i]) {
			spbuf why;
			sb_init(&why, 0);
			rc = sp_rule_posix(r, &why);
			if (rc)
				rc = sp_fail(sp, rc, "%s", why.len ? why.data
								   : "out of memory");
			sb_free(&why);
			sp_free(r->regex);
			r->regex = NULL;
		}
		if (r->posix && !r->regex) /* no prefilter: tried one by one */
			s->posix[s->nposix++] = i;
	}
	sp_free(refused);
	return rc;
}

static int load(sponge *sp);

/* The hits the store counts for set s (names owned by s). */
static int make_hits(sponge *sp, sp_ruleset *s)
{
	size_t n = s->rules.n;
	sp_rule_hit *h = n ? sp_malloc(n * sizeof *h) : NULL;
	if (n && !h)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const sp_rule *r = &s->rules.r[i];
		h[i] = (sp_rule_hit){r->name ? r->name : r->where, r->verb + 1,
				     0, r->unless_n, r->unless_us, 0, 0, 0};
	}
	sp_free(sp->hits);
	sp->hits = h;
	sp->nhits = n;
	return SPONGE_OK;
}

/* Before the rules change: what the handle holds that names the old
 * ones (queued records, hits) goes to the spool. */
static int write_held(sponge *sp)
{
	if (!sp->db || (!sp->qn && !sp->hits_pending))
		return SPONGE_OK;
	return sp_store_write(sp, false);
}

int sponge_rules_load(sponge *sp)
{
	SP_GUARD;
	if (!sp_alive(sp))
		return SPONGE_EINVAL;
	sp->rules_tried = true;
	int rc = load(sp);
	sb_reset(&sp->rules_error);
	if (rc != SPONGE_OK)
		sb_adds(&sp->rules_error, sponge_errmsg(sp));
	return rc;
}

const char *sponge_rules_error(const sponge *sp)
{
	return sp && sp->rules_error.data ? sp->rules_error.data : "";
}

static int load(sponge *sp)
{
	int rc = write_held(sp);
	if (rc)
		return rc;
	sp_ruleset *s = sp_malloc(sizeof *s);
	if (!s)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	memset(s, 0, sizeof *s);
	sb_init(&s->line, 0);
	sb_init(&s->rendered, 0);
	char dir[4096];
	rc = rules_dir(sp, dir, sizeof dir) ? read_dir(sp, s, dir, false)
					    : SPONGE_OK;
	if (rc == SPONGE_OK)
		rc = read_logcheck(sp, s);
	if (rc == SPONGE_OK)
		rc = fall_back(sp, s);
	for (int kind = 0; rc == SPONGE_OK && kind < 3; kind++)
		rc = compile(sp, &s->rules, kind,
			     kind == 0 ? &s->masked : kind == 1 ? &s->plain
							: &s->syslog);
	if (rc == SPONGE_OK)
		rc = make_hits(sp, s);
	if (rc) {
		set_free(s);
		return rc;
	}
	set_free(sp->rules);
	sp->rules = s;
	return SPONGE_OK;
}

void sp_ruleset_free(sponge *sp)
{
	set_free(sp->rules);
	sp->rules = NULL;
	sp_free(sp->hits);
	sp->hits = NULL;
	sp->nhits = 0;
}

size_t sponge_rules_count(const sponge *sp)
{
	return sp && sp->rules ? sp->rules->rules.n : 0;
}

static const sp_rule *rule_at(const sponge *sp, size_t i)
{
	return i < sponge_rules_count(sp) ? &sp->rules->rules.r[i] : NULL;
}

const char *sponge_rule_name(const sponge *sp, size_t i)
{
	const sp_rule *r = rule_at(sp, i);
	return r ? r->name : NULL;
}

int sponge_rule_verb_of(const sponge *sp, size_t i)
{
	const sp_rule *r = rule_at(sp, i);
	return r ? r->verb + 1 : SPONGE_RULE_NONE;
}

int64_t sponge_rule_until(const sponge *sp, size_t i)
{
	const sp_rule *r = rule_at(sp, i);
	return r ? r->until_us : 0;
}

const char *sponge_rule_where(const sponge *sp, size_t i)
{
	const sp_rule *r = rule_at(sp, i);
	return r ? r->where : NULL;
}

/* Do rule i's field tests and expiry let it apply to the record? */
static bool applies(void *arg, long i)
{
	const judge_ctx *j = arg;
	const sp_rule *r = &j->set->rules.r[i];
	const sponge_entry *e = j->e;
	if (r->until_us && j->now >= r->until_us)
		return false;
	if ((r->most >= 0 && e->level > r->most) ||
	    (r->least >= 0 && e->level < r->least))
		return false;
	if (r->tag && fnmatch(r->tag, e->tag ? e->tag : "", 0) != 0)
		return false;
	if (r->host && fnmatch(r->host, e->host ? e->host : "", 0) != 0)
		return false;
	/* a prefilter's match, confirmed by the C library's regex */
	return !r->posix || !r->regex || regexec(r->posix, j->line, 0, NULL, 0) == 0;
}

static long lowest(long a, long b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The record as a syslog file's line, into out: the line as read, or
 * "Mmm dd hh:mm:ss HOST TAG[PID]: MESSAGE" (local time; no [PID] when
 * pid is 0). */
static bool syslog_line(spbuf *out, const sponge_entry *e, const char *line,
			size_t len, int pid)
{
	sb_reset(out);
	if (line)
		return sb_add(out, line, len);
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t t = (time_t)(e->time_us / 1000000);
	struct tm tm;
	if (!localtime_r(&t, &tm))
		memset(&tm, 0, sizeof tm);
	sb_printf(out, "%.3s %2d %02d:%02d:%02d %s ", mon + 3 * (tm.tm_mon % 12),
		  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		  e->host && *e->host ? e->host : "localhost");
	if (e->tag && *e->tag && pid > 0)
		sb_printf(out, "%s[%d]: ", e->tag, pid);
	else if (e->tag && *e->tag)
		sb_printf(out, "%s: ", e->tag);
	return sb_add(out, e->msg ? e->msg : "", e->len);
}

/* The first rule that matches e, or -1. */
static long first_match(sp_ruleset *s, const sponge_entry *e,
			const char *masked, size_t mlen, int64_t now)
{
	judge_ctx ctx = {s, e, now, s->rendered.data ? s->rendered.data : ""};
	long best = lowest(sp_matcher_first(s->masked, masked, mlen, applies,
					    &ctx),
			   sp_matcher_first(s->plain, e->msg ? e->msg : "",
					    e->len, applies, &ctx));
	if (!s->syslog && !s->nposix)
		return best;
	const spbuf *l = &s->rendered;
	best = lowest(best, sp_matcher_first(s->syslog, l->data ? l->data : "",
					     l->len, applies, &ctx));
	for (size_t k = 0; k < s->nposix; k++) { /* in rule order */
		size_t i = s->posix[k];
		if (best >= 0 && (long)i >= best)
			break;
		if (applies(&ctx, (long)i) &&
		    regexec(s->rules.r[i].posix, l->data ? l->data : "", 0, NULL,
			    0) == 0)
			return (long)i;
	}
	return best;
}

/* Every rule that matches e, each(arg, i), and the first of them. */
typedef struct all_ctx {
	judge_ctx j;
	void (*each)(void *, size_t);
	void *arg;
	long first;
} all_ctx;

static bool each_applies(void *arg, long i)
{
	all_ctx *c = arg;
	if (applies(&c->j, i)) {
		c->each(c->arg, (size_t)i);
		c->first = lowest(c->first, i);
	}
	return false;
}

static long all_matches(sp_ruleset *s, const sponge_entry *e,
			const char *masked, size_t mlen, int64_t now,
			void (*each)(void *, size_t), void *arg)
{
	const spbuf *l = &s->rendered;
	all_ctx c = {{s, e, now, l->data ? l->data : ""}, each, arg, -1};
	sp_matcher_all(s->masked, masked, mlen, each_applies, &c);
	sp_matcher_all(s->plain, e->msg ? e->msg : "", e->len, each_applies, &c);
	sp_matcher_all(s->syslog, c.j.line, l->len, each_applies, &c);
	for (size_t k = 0; k < s->nposix; k++) {
		size_t i = s->posix[k];
		if (applies(&c.j, (long)i) &&
		    regexec(s->rules.r[i].posix, c.j.line, 0, NULL, 0) == 0) {
			each(arg, i);
			c.first = lowest(c.first, (long)i);
		}
	}
	return c.first;
}

/* The verdict on e into *j; the masked first line only when a rule
 * reads it or want_masked. */
static int judge(sponge *sp, const sponge_entry *e, const char *line,
		 size_t len, int pid, int64_t now_us,
		 void (*each)(void *arg, size_t i), void *arg, bool want_masked,
		 sponge_judgement *out)
{
	sponge_judgement j = {SPONGE_RULE_NONE, e->level, -1, ""};
	sp_ruleset *s = sp->rules;
	const char *msg = e->msg ? e->msg : "";
	spbuf *masked = s ? &s->line : &sp->parsed;
	const char *nl = memchr(msg, '\n', e->len);
	size_t first = nl ? (size_t)(nl - msg) : e->len;
	sb_reset(masked);
	bool mask_now = !s || s->masked; /* else only if no rule matches */
	if ((mask_now && !sp_mask(masked, msg, first)) ||
	    (s && (s->syslog || s->nposix) &&
	     !syslog_line(&s->rendered, e, line, len, pid)))
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	if (s)
		j.rule = each ? all_matches(s, e, masked->data ? masked->data : "",
					    masked->len, now_us, each, arg)
			      : first_match(s, e, masked->data ? masked->data : "",
					    masked->len, now_us);
	if (want_masked && !mask_now && j.rule < 0 &&
	    !sp_mask(masked, msg, first))
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	j.masked = masked->data ? masked->data : "";
	if (j.rule >= 0) {
		const sp_rule *r = &s->rules.r[j.rule];
		j.verdict = r->verb + 1;
		if (r->verb == SP_VERB_LEVEL ||
		    (r->verb == SP_VERB_KEEP && r->to >= 0 && r->to < j.level))
			j.level = r->to;
	}
	*out = j;
	return SPONGE_OK;
}

int sp_rules_judge_ingest(sponge *sp, const sponge_entry *e, const char *line,
			  size_t len, int pid, int64_t now_us,
			  sponge_judgement *out)
{
	return judge(sp, e, line, len, pid, now_us, NULL, NULL, false, out);
}

int sponge_rules_judge_all_sized(sponge *sp, const sponge_entry *e,
				 const char *line, size_t len, int64_t now_us,
				 void (*each)(void *arg, size_t i), void *arg,
				 sponge_judgement *out, size_t size)
{
	SP_GUARD;
	if (!sp_alive(sp) || !e || !out || (!e->msg && e->len) ||
	    (!line && len))
		return SPONGE_EINVAL;
	int pid = 0;
	if (!line && sp->parsed_msg && e->msg == sp->parsed_msg) {
		/* the entry sponge_parse_line() just made: as ingest has it */
		line = sp->parsed_line;
		len = sp->parsed_len;
		pid = sp->parsed_pid;
	}
	sponge_judgement j;
	int rc = judge(sp, e, line, len, pid, now_us, each, arg, true, &j);
	if (rc == SPONGE_OK)
		memcpy(out, &j, size < sizeof j ? size : sizeof j);
	return rc;
}

int sponge_rules_judge_sized(sponge *sp, const sponge_entry *e,
			     const char *line, size_t len, int64_t now_us,
			     sponge_judgement *out, size_t size)
{
	return sponge_rules_judge_all_sized(sp, e, line, len, now_us, NULL,
					    NULL, out, size);
}
