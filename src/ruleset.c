/* ruleset.c - the rules a handle applies: read from the rules directory
 * (*.rules in name order), compiled into two matchers (rules in the
 * masked form against the masked line, /ERE/ rules against the message),
 * and the verdict on one record: the first rule whose pattern and field
 * tests match. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "match.h"
#include "rules.h"

struct sp_ruleset {
	sp_rules rules;
	sp_matcher *masked, *plain;
	spbuf line;   /* the masked first line being judged */
};

/* What a rule's field tests and its expiry say of record e. */
typedef struct judge_ctx {
	const sp_ruleset *set;
	const sponge_entry *e;
	int64_t now;
} judge_ctx;

static void set_free(sp_ruleset *s)
{
	if (!s)
		return;
	sp_rules_free(&s->rules);
	sp_matcher_free(s->masked);
	sp_matcher_free(s->plain);
	sb_free(&s->line);
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
	const char *slash = cfg ? strrchr(cfg, '/') : NULL;
	if (!slash)
		return false;
	snprintf(out, size, "%.*s/rules.d", (int)(slash - cfg), cfg);
	return true;
}

static int is_rules_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 6 &&
	       strcmp(d->d_name + n - 6, ".rules") == 0;
}

/* One file's rules, appended. */
static int read_file(sponge *sp, sp_ruleset *s, const char *path)
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
			       : sp_rules_parse(&s->rules, path,
						text.data ? text.data : "",
						text.len, &err);
	if (rc == SPONGE_ECONFIG && err.len)
		sp_fail(sp, rc, "%s", err.data);
	sb_free(&text);
	sb_free(&err);
	return rc;
}

static int read_dir(sponge *sp, sp_ruleset *s, const char *dir)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, is_rules_file, alphasort);
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
					 : read_file(sp, s, path.data);
		sb_free(&path);
		free(names[i]);
	}
	free(names);
	return rc;
}

/* One matcher for the rules of one form, each reported by its index. */
static int compile(sponge *sp, const sp_rules *rs, bool masked,
		   sp_matcher **out)
{
	const char **re = sp_malloc((rs->n + 1) * sizeof *re);
	unsigned *ids = sp_malloc((rs->n + 1) * sizeof *ids);
	size_t n = 0;
	int rc = re && ids ? SPONGE_OK : sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	for (size_t i = 0; rc == SPONGE_OK && i < rs->n; i++)
		if (rs->r[i].masked == masked) {
			re[n] = rs->r[i].regex;
			ids[n++] = (unsigned)i;
		}
	spbuf why;
	sb_init(&why, 0);
	long bad = -1;
	if (rc == SPONGE_OK &&
	    (rc = sp_matcher_build(re, ids, NULL, n, out, &why, &bad)) != SPONGE_OK)
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

int sponge_rules_load(sponge *sp)
{
	SP_GUARD;
	if (!sp_alive(sp))
		return SPONGE_EINVAL;
	sp_ruleset *s = sp_malloc(sizeof *s);
	if (!s)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	memset(s, 0, sizeof *s);
	sb_init(&s->line, 0);
	char dir[4096];
	int rc = rules_dir(sp, dir, sizeof dir) ? read_dir(sp, s, dir)
						: SPONGE_OK;
	if (rc == SPONGE_OK)
		rc = compile(sp, &s->rules, true, &s->masked);
	if (rc == SPONGE_OK)
		rc = compile(sp, &s->rules, false, &s->plain);
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
	return !r->host || fnmatch(r->host, e->host ? e->host : "", 0) == 0;
}

static long lowest(long a, long b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int sponge_rules_judge_sized(sponge *sp, const sponge_entry *e,
			     int64_t now_us, sponge_judgement *out, size_t size)
{
	SP_GUARD;
	if (!sp_alive(sp) || !e || !out || (!e->msg && e->len))
		return SPONGE_EINVAL;
	sponge_judgement j = {SPONGE_RULE_NONE, e->level, -1, ""};
	sp_ruleset *s = sp->rules;
	const char *msg = e->msg ? e->msg : "";
	const char *nl = memchr(msg, '\n', e->len);
	size_t first = nl ? (size_t)(nl - msg) : e->len;
	sb_reset(s ? &s->line : &sp->parsed);
	spbuf *line = s ? &s->line : &sp->parsed;
	if (!sp_mask(line, msg, first))
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	j.masked = line->data ? line->data : "";
	if (s) {
		judge_ctx ctx = {s, e, now_us};
		j.rule = lowest(sp_matcher_first(s->masked, j.masked, line->len,
						 applies, &ctx),
				sp_matcher_first(s->plain, msg, e->len, applies,
						 &ctx));
	}
	if (j.rule >= 0) {
		const sp_rule *r = &s->rules.r[j.rule];
		j.verdict = r->verb + 1;
		if (r->verb == SP_VERB_LEVEL ||
		    (r->verb == SP_VERB_KEEP && r->to >= 0 && r->to < j.level))
			j.level = r->to;
	}
	size_t n = size < sizeof j ? size : sizeof j;
	memcpy(out, &j, n);
	return SPONGE_OK;
}
