/* config.c - the INI config file ([spool], [policy]), parsed by inih. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "internal.h"

void sp_config_defaults(sp_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_record = 64 * 1024;
	c->busy_timeout_us = 60 * 1000000LL;
	c->policy.threshold = 1;
	c->policy.count_level = SPONGE_DEBUG;
	c->policy.flush_level = -1;
}

void sp_config_free(sp_config *c)
{
	sp_free(c->path);
	sp_free(c->spool_path);
	c->path = c->spool_path = NULL;
}

typedef struct parse_ctx {
	sp_config *cfg;
	spbuf *err;   /* first error, without the "file:line: " part */
	int oom;
} parse_ctx;

static int bad(parse_ctx *pc, const char *sec, const char *key,
	       const char *value, const char *why)
{
	if (pc->err->len == 0)
		sb_printf(pc->err, "%s.%s = \"%s\": %s", sec, key, value, why);
	return 0; /* inih: error on this line */
}

static int set_level(parse_ctx *pc, const char *sec, const char *key,
		     const char *v, int *out, bool allow_none)
{
	if (allow_none && strcmp(v, "none") == 0) {
		*out = -1;
		return 1;
	}
	int l = sponge_level_from_name(v);
	if (l < 0)
		return bad(pc, sec, key, v,
			   allow_none ? "not a level (emerg … debug, or none)"
				      : "not a level (emerg … debug)");
	*out = l;
	return 1;
}

static int set_duration(parse_ctx *pc, const char *sec, const char *key,
			const char *v, int64_t *out, bool allow_none)
{
	if (allow_none && strcmp(v, "none") == 0) {
		*out = 0;
		return 1;
	}
	int64_t d;
	if (sponge_parse_duration(v, &d) != SPONGE_OK || (allow_none && d == 0))
		return bad(pc, sec, key, v,
			   "not a duration (like 90s, 15m, 24h, 7d)");
	*out = d;
	return 1;
}

static int handler(void *user, const char *sec, const char *key,
		   const char *v)
{
	parse_ctx *pc = user;
	sp_config *c = pc->cfg;

	if (strcmp(sec, "spool") == 0) {
		if (strcmp(key, "path") == 0) {
			if (v[0] != '/' && !(v[0] == '~' && v[1] == '/'))
				return bad(pc, sec, key, v,
					   "must be an absolute path or start "
					   "with ~/");
			char *p = sp_strdup(v);
			if (!p) {
				pc->oom = 1;
				return 0;
			}
			sp_free(c->spool_path);
			c->spool_path = p;
			return 1;
		}
		if (strcmp(key, "max_record") == 0) {
			uint64_t n;
			if (sponge_parse_size(v, &n) != SPONGE_OK)
				return bad(pc, sec, key, v,
					   "not a size (like 64k, 1M)");
			if (n < 256 || n > 64ULL << 20)
				return bad(pc, sec, key, v,
					   "must be between 256 and 64M");
			c->max_record = n;
			return 1;
		}
		if (strcmp(key, "busy_timeout") == 0)
			return set_duration(pc, sec, key, v,
					    &c->busy_timeout_us, false);
	} else if (strcmp(sec, "policy") == 0) {
		if (strcmp(key, "threshold") == 0) {
			char *end;
			errno = 0;
			long long n = strtoll(v, &end, 10);
			if (errno || end == v || *end || n < 1)
				return bad(pc, sec, key, v,
					   "not a whole number >= 1");
			c->policy.threshold = n;
			return 1;
		}
		if (strcmp(key, "count_level") == 0)
			return set_level(pc, sec, key, v,
					 &c->policy.count_level, false);
		if (strcmp(key, "flush_level") == 0)
			return set_level(pc, sec, key, v,
					 &c->policy.flush_level, true);
		if (strcmp(key, "max_age") == 0)
			return set_duration(pc, sec, key, v,
					    &c->policy.max_age_us, true);
		if (strcmp(key, "expire") == 0)
			return set_duration(pc, sec, key, v,
					    &c->policy.expire_us, true);
	} else {
		if (pc->err->len == 0)
			sb_printf(pc->err, "unknown section [%s]",
				  *sec ? sec : "(none: key before any section)");
		return 0;
	}
	if (pc->err->len == 0)
		sb_printf(pc->err, "unknown key \"%s\" in [%s]", key, sec);
	return 0;
}

static int finish(int rc, parse_ctx *pc, const char *name, spbuf *err)
{
	if (pc->oom)
		return SPONGE_ENOMEM;
	if (rc == 0)
		return SPONGE_OK;
	spbuf detail = *pc->err;
	spbuf out;
	sb_init(&out, 0);
	if (rc < 0)
		sb_printf(&out, "%s: %s", name,
			  rc == -1 ? strerror(errno) : "out of memory");
	else if (detail.len)
		sb_printf(&out, "%s:%d: %s", name, rc, detail.data);
	else
		sb_printf(&out, "%s:%d: syntax error (expected [section] or "
				"key = value)", name, rc);
	sb_reset(err);
	sb_add(err, out.data, out.len);
	sb_free(&out);
	return rc == -2 ? SPONGE_ENOMEM : SPONGE_ECONFIG;
}

int sp_config_load(sp_config *c, const char *path, spbuf *err)
{
	spbuf detail;
	sb_init(&detail, 4096);
	parse_ctx pc = {c, &detail, 0};
	errno = 0;
	int rc = ini_parse(path, handler, &pc);
	int code = finish(rc, &pc, path, err);
	sb_free(&detail);
	if (code == SPONGE_OK) {
		sp_free(c->path);
		c->path = sp_strdup(path);
		if (!c->path)
			code = SPONGE_ENOMEM;
	}
	return code;
}

int sp_config_load_string(sp_config *c, const char *text, const char *name,
			  spbuf *err)
{
	spbuf detail;
	sb_init(&detail, 4096);
	parse_ctx pc = {c, &detail, 0};
	int rc = ini_parse_string(text, handler, &pc);
	int code = finish(rc, &pc, name, err);
	sb_free(&detail);
	return code;
}
