/* rules.c - the rules files' syntax: one rule per line,
 *
 *   VERB [FIELD-TEST…] PATTERN [OPTION…]
 *
 *   VERB        ignore | drop | level | keep
 *   FIELD-TEST  tag=GLOB  host=GLOB  level>=L  level<=L
 *   PATTERN     "text in the digest's masked form" (# one value, * any
 *               text, whole line) or /ERE/ (anywhere in the message)
 *   OPTION      to=L  name=NAME  until=DATE  unless=N/WINDOW
 *
 * Blank lines and lines starting with '#' are comments.  Parsing only:
 * no handle, no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <regex.h>
#include <string.h>

#include "rules.h"

typedef struct line_ctx {
	const char *p, *end;
	const char *file;
	int line;
	spbuf *err;
} line_ctx;

static int failf(line_ctx *lc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int failf(line_ctx *lc, const char *fmt, ...)
{
	if (!lc->err->len) {
		sb_printf(lc->err, "%s:%d: ", lc->file, lc->line);
		va_list ap;
		va_start(ap, fmt);
		sb_vprintf(lc->err, fmt, ap);
		va_end(ap);
	}
	return SPONGE_ECONFIG;
}

static void skip_spaces(line_ctx *lc)
{
	while (lc->p < lc->end && (*lc->p == ' ' || *lc->p == '\t'))
		lc->p++;
}

/* The next word (up to a blank) into w (cut to its size). */
static size_t word(line_ctx *lc, char *w, size_t size)
{
	skip_spaces(lc);
	const char *s = lc->p;
	while (lc->p < lc->end && *lc->p != ' ' && *lc->p != '\t')
		lc->p++;
	size_t n = (size_t)(lc->p - s);
	snprintf(w, size, "%.*s", (int)n, s);
	return n;
}

static const char *const verbs[] = {"ignore", "drop", "level", "keep"};

static int parse_verb(line_ctx *lc, sp_rule *r)
{
	char w[32];
	word(lc, w, sizeof w);
	for (int v = 0; v < 4; v++)
		if (strcmp(w, verbs[v]) == 0) {
			r->verb = v;
			return SPONGE_OK;
		}
	return failf(lc, "unknown verb \"%s\" (ignore, drop, level, keep)", w);
}

static int level_value(line_ctx *lc, const char *v, int *out)
{
	*out = sponge_level_from_name(v);
	return *out < 0 ? failf(lc, "\"%s\" is not a level (emerg … debug)", v)
			: SPONGE_OK;
}

static int set_text(line_ctx *lc, char **dst, const char *v)
{
	sp_free(*dst);
	*dst = sp_strdup(v);
	return *dst ? SPONGE_OK : failf(lc, "%s", "out of memory");
}

/* tag=, host=, level>=, level<=: SPONGE_OK, SPONGE_DONE when w is none
 * of them, or an error. */
static int field_test(line_ctx *lc, sp_rule *r, const char *w)
{
	if (!strncmp(w, "tag=", 4))
		return set_text(lc, &r->tag, w + 4);
	if (!strncmp(w, "host=", 5))
		return set_text(lc, &r->host, w + 5);
	if (!strncmp(w, "level>=", 7))
		return level_value(lc, w + 7, &r->most);
	if (!strncmp(w, "level<=", 7))
		return level_value(lc, w + 7, &r->least);
	return SPONGE_DONE;
}

/* "…" (with \" and \\) or /…/ (with \/), into r->pattern. */
static int parse_pattern(line_ctx *lc, sp_rule *r)
{
	skip_spaces(lc);
	if (lc->p >= lc->end)
		return failf(lc, "%s", "no pattern (\"text\" or /ERE/)");
	char q = *lc->p;
	if (q != '"' && q != '/')
		return failf(lc, "\"%c…\" is not a pattern (\"text\" or /ERE/) "
				 "nor a field test (tag= host= level>= level<=)",
			     *lc->p);
	r->masked = q == '"';
	spbuf b;
	sb_init(&b, 0);
	for (lc->p++; lc->p < lc->end && *lc->p != q; lc->p++) {
		if (*lc->p == '\\' && lc->p + 1 < lc->end &&
		    (lc->p[1] == q || (q == '"' && lc->p[1] == '\\')))
			lc->p++; /* the escaped quote or backslash itself */
		sb_addc(&b, *lc->p);
	}
	if (lc->p >= lc->end) {
		sb_free(&b);
		return failf(lc, "%s", q == '"' ? "no closing \"" : "no closing /");
	}
	lc->p++;
	if (b.failed || (!b.len && !r->masked)) {
		sb_free(&b);
		return failf(lc, "%s", b.failed ? "out of memory" : "an empty /ERE/");
	}
	/* (an empty buffer holds no allocation of its own) */
	r->pattern = b.cap ? b.data : sp_strdup("");
	return r->pattern ? SPONGE_OK : failf(lc, "%s", "out of memory");
}

/* unless=N/WINDOW: more than N matches within WINDOW. */
static int parse_unless(line_ctx *lc, sp_rule *r, const char *v)
{
	char *slash;
	long long n = strtoll(v, &slash, 10);
	int64_t d;
	if (slash == v || *slash != '/' || n < 1 ||
	    sponge_parse_duration(slash + 1, &d) != SPONGE_OK || d <= 0)
		return failf(lc, "unless=%s: not N/WINDOW (like 100/1h)", v);
	r->unless_n = n;
	r->unless_us = d;
	return SPONGE_OK;
}

static int option(line_ctx *lc, sp_rule *r, const char *w)
{
	if (!strncmp(w, "to=", 3))
		return level_value(lc, w + 3, &r->to);
	if (!strncmp(w, "name=", 5))
		return w[5] ? set_text(lc, &r->name, w + 5)
			    : failf(lc, "%s", "name= without a name");
	if (!strncmp(w, "until=", 6))
		return sponge_parse_time(w + 6, 0, &r->until_us) == SPONGE_OK &&
				       w[6] >= '0' && w[6] <= '9'
			       ? SPONGE_OK
			       : failf(lc, "until=%s: not a date (like 2027-01-31)",
				       w + 6);
	if (!strncmp(w, "unless=", 7))
		return parse_unless(lc, r, w + 7);
	return failf(lc, "unknown option \"%s\" (to= name= until= unless=)", w);
}

/* What the verb needs of the options. */
static int coherent(line_ctx *lc, sp_rule *r)
{
	if (r->verb == SP_VERB_LEVEL && r->to < 0)
		return failf(lc, "%s", "level needs to=LEVEL");
	if ((r->verb == SP_VERB_IGNORE || r->verb == SP_VERB_DROP) && r->to >= 0)
		return failf(lc, "%s", "to= is for level and keep");
	if (r->unless_n && r->verb != SP_VERB_IGNORE && r->verb != SP_VERB_DROP)
		return failf(lc, "%s", "unless= is for ignore and drop");
	if (!r->name) {
		char at[200];
		snprintf(at, sizeof at, "%s:%d", lc->file, lc->line);
		return set_text(lc, &r->name, at);
	}
	return SPONGE_OK;
}

static void rule_free(sp_rule *r)
{
	if (r->posix) {
		regfree(r->posix);
		sp_free(r->posix);
	}
	sp_free(r->tag);
	sp_free(r->host);
	sp_free(r->pattern);
	sp_free(r->regex);
	sp_free(r->name);
	memset(r, 0, sizeof *r);
}

/* One rule from the line at lc. */
static int parse_rule(line_ctx *lc, sp_rule *r)
{
	memset(r, 0, sizeof *r);
	r->to = r->most = r->least = -1;
	snprintf(r->where, sizeof r->where, "%s:%d", lc->file, lc->line);
	int rc = parse_verb(lc, r);
	char w[512];
	for (;;) { /* field tests, up to the pattern */
		if (rc)
			return rc;
		skip_spaces(lc);
		if (lc->p < lc->end && (*lc->p == '"' || *lc->p == '/'))
			break;
		const char *at = lc->p;
		if (!word(lc, w, sizeof w))
			break;
		rc = field_test(lc, r, w);
		if (rc == SPONGE_DONE) {
			lc->p = at;
			break;
		}
	}
	if ((rc = parse_pattern(lc, r)))
		return rc;
	while (rc == SPONGE_OK && word(lc, w, sizeof w))
		rc = option(lc, r, w);
	if (rc == SPONGE_OK)
		rc = coherent(lc, r);
	spbuf re;
	sb_init(&re, 0);
	if (rc == SPONGE_OK) {
		bool ok = r->masked ? sp_rules_masked_regex(&re, r->pattern)
				    : sb_adds(&re, r->pattern);
		r->regex = ok && re.cap ? re.data : NULL;
		if (!r->regex) {
			sb_free(&re);
			rc = failf(lc, "%s", "out of memory");
		}
	}
	return rc;
}

static bool grow(sp_rules *rs)
{
	if (rs->n < rs->cap)
		return true;
	size_t cap = rs->cap ? rs->cap * 2 : 16;
	sp_rule *r = sp_realloc(rs->r, cap * sizeof *r);
	if (!r)
		return false;
	rs->r = r;
	rs->cap = cap;
	return true;
}

int sp_rules_parse(sp_rules *rs, const char *file, const char *text,
		   size_t len, spbuf *err)
{
	line_ctx lc = {text, text, file, 0, err};
	const char *end = text + len;
	while (lc.p < end) {
		const char *nl = memchr(lc.p, '\n', (size_t)(end - lc.p));
		lc.end = nl ? nl : end;
		lc.line++;
		if (lc.end > lc.p && lc.end[-1] == '\r')
			lc.end--;
		skip_spaces(&lc);
		if (lc.p < lc.end && *lc.p != '#') {
			if (!grow(rs))
				return failf(&lc, "%s", "out of memory");
			sp_rule *r = &rs->r[rs->n];
			int rc = parse_rule(&lc, r);
			if (rc) {
				rule_free(r);
				return rc;
			}
			rs->n++;
		}
		lc.p = nl ? nl + 1 : end;
	}
	return SPONGE_OK;
}

void sp_rules_free(sp_rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->r[i]);
	sp_free(rs->r);
	memset(rs, 0, sizeof *rs);
}

bool sp_rules_masked_regex(spbuf *out, const char *pattern)
{
	sb_addc(out, '^');
	for (const unsigned char *p = (const unsigned char *)pattern; *p; p++) {
		if (*p == '*')
			sb_adds(out, ".*");
		else if (*p == '#')
			sb_addc(out, '#'); /* as the masked line has it */
		else if (*p < 0x20 || *p == 0x7f)
			sb_printf(out, "\\x%02x", *p);
		else if (strchr("\\^$.|?+()[]{}/-", *p))
			sb_addc(out, '\\'), sb_addc(out, (char)*p);
		else
			sb_addc(out, (char)*p);
	}
	sb_addc(out, '$');
	return !out->failed;
}

/* A bracket expression of a POSIX ERE starting at p ('['), copied for
 * Vectorscan; the end past its ']' in *end.  False: leave it to regex. */
static bool copy_bracket(const char *p, spbuf *out, const char **end)
{
	const char *q = p + 1;
	sb_addc(out, '[');
	if (*q == '^')
		sb_addc(out, *q++);
	if (*q == ']')
		sb_adds(out, "\\]"), q++;
	else if (*q == ':' || *q == '-')
		sb_addc(out, '\\'), sb_addc(out, *q++);
	for (; *q && *q != ']'; q++) {
		if (*q == '[' && (q[1] == '=' || q[1] == '.'))
			return false;
		if (*q == '[' && q[1] == ':') { /* a class: [:alpha:] */
			const char *c = strstr(q + 2, ":]");
			if (!c)
				return false;
			sb_add(out, q, (size_t)(c + 2 - q));
			q = c + 1;
			continue;
		}
		if (*q == '\\' || *q == '[')
			sb_addc(out, '\\');
		sb_addc(out, *q);
	}
	if (*q != ']')
		return false;
	sb_addc(out, ']');
	*end = q + 1;
	return true;
}

static bool rewrite(const char *ere, spbuf *out, bool superset)
{
	for (const char *p = ere; *p;) {
		if (*p == '[') {
			if (!copy_bracket(p, out, &p))
				return false;
		} else if (*p == '\\' && p[1]) {
			char c = p[1];
			if ((c >= '1' && c <= '9') || c == '<' || c == '>' || c == '`' ||
			    c == '\'') { /* back-reference, word edges */
				if (!superset)
					return false;
				if (c >= '1' && c <= '9')
					sb_adds(out, ".*");
				p += 2;
				continue;
			}
			bool alnum = ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
				     (c >= '0' && c <= '9');
			if (strchr("wWsSbB", c) || !alnum)
				sb_addc(out, '\\'); /* GNU's meaning, or a symbol */
			sb_addc(out, c);
			p += 2;
		} else if (*p == '{' && p[1] == ',') {
			sb_adds(out, "{0");
			p++;
		} else {
			sb_addc(out, *p++);
		}
	}
	return !out->failed;
}

bool sp_posix_to_pcre(const char *ere, spbuf *out)
{
	return rewrite(ere, out, false);
}

bool sp_posix_superset(const char *ere, spbuf *out)
{
	return rewrite(ere, out, true);
}

/* Would the C library's regcomp build a huge automaton for it?  It copies
 * a repeated group once per count ({200}{200}: 40,000 copies): bound the
 * product of the repetition counts of an expression. */
static bool too_repetitive(const char *ere)
{
	double product = 1;
	int stacked = 0; /* quantifiers one after another: a++++ */
	for (const char *p = ere; *p; p++) {
		bool escaped = p > ere && p[-1] == '\\';
		if (escaped || !strchr("+*?{", *p)) {
			stacked = 0;
			continue;
		}
		if (++stacked > 2)
			return true;
		if (*p != '{')
			continue;
		char *end;
		unsigned long lo = strtoul(p + 1, &end, 10);
		unsigned long hi = lo;
		if (*end == ',')
			hi = end[1] == '}' ? 255 : strtoul(end + 1, &end, 10);
		if (hi > lo)
			lo = hi;
		if (lo > 1)
			product *= (double)lo;
		const char *close = strchr(p, '}');
		if (close)
			p = close;
	}
	return product > 100000;
}

int sp_rule_posix(sp_rule *r, spbuf *err)
{
	if (r->posix)
		return SPONGE_OK;
	if (!r->pattern)
		return SPONGE_ENOMEM;
	if (too_repetitive(r->pattern)) {
		sb_printf(err, "%s: too many repetitions for the C library's "
			       "regex: %s", r->where, r->pattern);
		return SPONGE_ECONFIG;
	}
	r->posix = sp_malloc(sizeof(regex_t));
	if (!r->posix)
		return SPONGE_ENOMEM;
	if (regcomp(r->posix, r->pattern, REG_EXTENDED | REG_NOSUB)) {
		sp_free(r->posix);
		r->posix = NULL;
		sb_printf(err, "%s: not a regular expression: %s", r->where,
			  r->pattern);
		return SPONGE_ECONFIG;
	}
	return SPONGE_OK;
}

/* One logcheck line as a rule: the engine's pattern, or the C library's
 * regex when the engine cannot take it (decided later, by the matcher:
 * regex NULL and posix set). */
static int logcheck_rule(sp_rules *rs, const char *file, int line,
			 const char *ere, spbuf *err)
{
	if (!grow(rs))
		return SPONGE_ENOMEM;
	sp_rule *r = &rs->r[rs->n];
	memset(r, 0, sizeof *r);
	r->verb = SP_VERB_IGNORE;
	r->to = r->most = r->least = -1;
	r->logcheck = true;
	snprintf(r->where, sizeof r->where, "%s:%d", file, line);
	r->pattern = sp_strdup(ere);
	/* named by its directory and file: "ignore.d.server/ssh:12" */
	const char *base = file + strlen(file);
	for (int slashes = 0; base > file; base--)
		if (base[-1] == '/' && ++slashes == 2)
			break;
	char name[sizeof r->where];
	snprintf(name, sizeof name, "%s:%d", base, line);
	r->name = sp_strdup(name);
	spbuf re;
	sb_init(&re, 0);
	bool exact = sp_posix_to_pcre(ere, &re);
	if (!exact) { /* a prefilter, confirmed by the C library's regex */
		sb_reset(&re);
		if (!sp_posix_superset(ere, &re))
			sb_reset(&re);
	}
	if (re.len)
		r->regex = re.data;
	else
		sb_free(&re);
	if (!exact) { /* the C library's, as grep's */
		int rc = sp_rule_posix(r, err);
		if (rc) {
			rule_free(r);
			return rc;
		}
	}
	if (!r->pattern || !r->name || (!r->regex && !r->posix)) {
		rule_free(r);
		return SPONGE_ENOMEM;
	}
	rs->n++;
	return SPONGE_OK;
}

int sp_rules_add_logcheck(sp_rules *rs, const char *file, const char *text,
			  size_t len, spbuf *err)
{
	const char *p = text, *end = text + len;
	int line = 0, rc = SPONGE_OK;
	spbuf l;
	sb_init(&l, 0);
	while (rc == SPONGE_OK && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		line++;
		size_t i = 0, n = (size_t)(e - p);
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
				 p[i] == '\f' || p[i] == '\v'))
			i++;
		if (i < n && p[0] != '#') {
			sb_reset(&l);
			sb_add(&l, p, n);
			rc = l.failed ? SPONGE_ENOMEM
				      : logcheck_rule(rs, file, line, l.data, err);
		}
		p = nl ? nl + 1 : end;
	}
	sb_free(&l);
	return rc;
}
