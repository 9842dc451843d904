/* config.c - the INI config file, parsed by Debian's libinih. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "transport.h" /* the registry */

void sp_config_defaults(sp_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_record = 64 * 1024;
	c->busy_timeout_us = 60 * 1000000LL;
	c->policy.threshold = 1;
	c->policy.count_level = SPONGE_DEBUG;
	c->policy.flush_on_new = -1;
	c->policy.new_min_count = 1;
	c->policy.alarm_after_us = 86400 * 1000000LL;
	c->max_kinds = 100000;
	c->new_level = SPONGE_WARNING;
	c->quiet_after_us = 30LL * 86400 * 1000000;
	c->policy.flush_level = -1;
	c->tls = SP_TLS_STARTTLS;
	c->verify = 1;
	c->timeout_us = 30 * 1000000LL;
	c->sendmail_timeout_us = 60 * 1000000LL;
	c->max_size = 1 << 20;
}

void sp_config_free(sp_config *c)
{
	char **strs[] = {&c->path, &c->spool_path, &c->from, &c->from_addr,
			 &c->from_show, &c->subject, &c->timezone, &c->transport, &c->host, &c->ca_file,
			 &c->user, &c->password_file, &c->password_command,
			 &c->token_command, &c->helo, &c->sendmail_cmd, &c->maildir,
			 &c->rules_path, &c->rules_logcheck};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		sp_free(*strs[i]);
		*strs[i] = NULL;
	}
	for (int i = 0; i < c->nto; i++) {
		sp_free(c->to[i]);
		sp_free(c->to_addr[i]);
		sp_free(c->to_show[i]);
	}
	c->nto = 0;
	for (size_t i = 0; i < c->nsources; i++) {
		sp_source_cfg *s = &c->sources[i];
		sp_free(s->name);
		sp_free(s->path);
		sp_free(s->tag);
		sp_free(s->host);
		sp_free(s->directory);
		sp_free(s->match);
	}
	sp_free(c->sources);
	c->sources = NULL;
	c->nsources = 0;
	for (size_t i = 0; i < c->njobs; i++)
		sp_free(c->jobs[i].name);
	sp_free(c->jobs);
	c->jobs = NULL;
	c->njobs = 0;
}

typedef struct parse_ctx {
	sp_config *cfg;
	spbuf *err;    /* the line's error, without the "file:line: " part */
	spbuf all;     /* every error so far, "file:line: why" a line each */
	const char *name;
	int oom;
	/* the reader counts lines so that checks across keys can name one */
	const char *text;
	int line;
	int line_tls, line_user, line_pwfile, line_pwcmd, line_token, line_auth;
	int line_threshold, line_count_level; /* set in the file */
	int long_line;  /* a line too long for inih's buffer */
	bool to_seen;   /* later "to" lines add recipients */
} parse_ctx;

static int bad(parse_ctx *pc, const char *sec, const char *key,
	       const char *value, const char *why)
{
	if (pc->err->len == 0)
		sb_printf(pc->err, "%s.%s = \"%s\": %s", sec, key, value, why);
	return 0; /* inih: error on this line */
}

static int set_str(parse_ctx *pc, char **dst, const char *v)
{
	char *p = sp_strdup(v);
	if (!p) {
		pc->oom = 1;
		return 0;
	}
	sp_free(*dst);
	*dst = p;
	return 1;
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

static int set_bool(parse_ctx *pc, const char *sec, const char *key,
		    const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") ||
		 !strcmp(v, "0"))
		*out = 0;
	else
		return bad(pc, sec, key, v, "not yes or no");
	return 1;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * One mailbox: "a@b.c" or "Display Name <a@b.c>", n bytes at in.  Fills
 * the header form and the bare address (both allocated).  No control
 * characters, no quotes in the name, no spaces or specials in the
 * address, exactly one @ with text on both sides.
 */
/* The end of the list item that starts at p: the first comma outside a
 * quoted string and outside <...>, or the end of the text. */
static const char *item_end(const char *p)
{
	bool quoted = false, angle = false;
	for (; *p; p++) {
		if (quoted && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '<')
			angle = true;
		else if (!quoted && *p == '>')
			angle = false;
		else if (*p == ',' && !quoted && !angle)
			return p;
	}
	return p;
}

/* One mailbox: "a@b.c", "Name <a@b.c>", "\"Doe, Jane\" <a@b.c>" or
 * "<a@b.c>".  *addr gets the address, *hdr the header form, the display
 * name written so that no reader takes it for something else (quoted
 * when it holds specials, RFC 2047 words when it is not ASCII). */
/* *hdr: the header form (a name quoted or RFC 2047-encoded as needed);
 * *addr: the address; *show: the two as people read them. */
static bool parse_mailbox(const char *in, size_t n, char **hdr, char **addr,
			  char **show)
{
	*hdr = *addr = *show = NULL;
	while (n && (*in == ' ' || *in == '\t'))
		in++, n--;
	while (n && (in[n - 1] == ' ' || in[n - 1] == '\t'))
		n--;
	if (!n || n > 320)
		return false;
	const char *a = in, *lt = NULL;
	size_t alen = n;
	spbuf name, b;
	sb_init(&name, 0);
	sb_init(&b, 0);
	bool ok = true;
	if (in[n - 1] == '>') { /* Name <addr>: the last '<' outside quotes */
		bool quoted = false;
		for (size_t i = 0; i < n; i++) {
			if (quoted && in[i] == '\\' && i + 1 < n)
				sb_addc(&name, in[++i]);
			else if (in[i] == '"')
				quoted = !quoted;
			else if (!quoted && in[i] == '<') {
				lt = in + i;
				break;
			} else
				sb_addc(&name, in[i]);
		}
		ok = lt && !quoted;
		if (ok) {
			a = lt + 1;
			alen = (size_t)(in + n - 1 - a);
		}
		while (name.len && (name.data[name.len - 1] == ' ' ||
				    name.data[name.len - 1] == '\t'))
			name.data[--name.len] = '\0';
	}
	sb_add(&b, a, alen);
	const char *at = strchr(b.data, '@');
	ok = ok && !b.failed && alen && at && at != b.data && at[1] &&
	     !strchr(at + 1, '@') && !has_ctl(b.data) &&
	     !strpbrk(b.data, " \t<>(),;:\"[]\\") &&
	     sp_is_clean(name.data, name.len) && !name.failed;
	if (ok) {
		*addr = sp_strdup(b.data);
		sb_reset(&b);
		if (name.len) {
			sp_phrase(&b, name.data);
			sb_printf(&b, " <%s>", *addr ? *addr : "");
		} else {
			sb_adds(&b, *addr ? *addr : "");
		}
		*hdr = b.failed ? NULL : sp_strdup(b.data);
		sb_reset(&b);
		if (name.len && strpbrk(name.data, ",;:<>@\"()[]\\"))
			sb_printf(&b, "\"%s\" <%s>", name.data, *addr ? *addr : "");
		else if (name.len) /* (a '"' inside shows as it is: for reading) */
			sb_printf(&b, "%s <%s>", name.data, *addr ? *addr : "");
		else
			sb_adds(&b, *addr ? *addr : "");
		*show = b.failed ? NULL : sp_strdup(b.data);
		ok = *hdr && *addr && *show;
	}
	sb_free(&b);
	sb_free(&name);
	return ok;
}

/* "to" may repeat, or continue on indented lines: each adds recipients. */
static int set_to(parse_ctx *pc, const char *v)
{
	sp_config *c = pc->cfg;
	pc->to_seen = true;
	int before = c->nto;
	for (const char *p = v;;) {
		const char *end = item_end(p);
		const char *comma = *end ? end : NULL;
		size_t n = (size_t)(end - p);
		size_t k = 0;
		while (k < n && (p[k] == ' ' || p[k] == '\t'))
			k++;
		if (k == n) { /* empty item, as after a trailing comma */
			if (!comma)
				break;
			p = comma + 1;
			continue;
		}
		if (c->nto == SP_MAX_RCPT)
			return bad(pc, "mail", "to", v, "more than 64 recipients");
		char *h, *a, *w;
		if (!parse_mailbox(p, n, &h, &a, &w)) {
			sp_free(h);
			sp_free(a);
			sp_free(w);
			return bad(pc, "mail", "to", v,
				   "not a list of addresses (a@b.c, "
				   "Name <d@e.f>, \"Doe, Jane\" <g@h.i>)");
		}
		c->to[c->nto] = h;
		c->to_show[c->nto] = w;
		c->to_addr[c->nto++] = a;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (c->nto == before)
		return bad(pc, "mail", "to", v, "no address");
	return 1;
}

/* What `transport =` accepts: the names of transports.c's registry (a
 * unit test holds the two lists equal; the registry sits above the
 * config, which names transports without knowing them). */
static const char *const transport_names[] = {"smtp", "sendmail", "maildir",
					      "stdout", "null"};
#define NTRANSPORT_NAMES (sizeof transport_names / sizeof transport_names[0])

static bool transport_known(const char *v)
{
	for (size_t i = 0; i < NTRANSPORT_NAMES; i++)
		if (strcmp(v, transport_names[i]) == 0)
			return true;
	return false;
}

/* ---- keys that need more than a type ------------------------------- */

static int set_spool_path(parse_ctx *pc, const char *sec, const char *key,
			  const char *v)
{
	if (v[0] != '/' && !(v[0] == '~' && v[1] == '/'))
		return bad(pc, sec, key, v,
			   "must be an absolute path or start with ~/");
	return set_str(pc, &pc->cfg->spool_path, v);
}

static int set_from(parse_ctx *pc, const char *sec, const char *key,
		    const char *v)
{
	sp_config *c = pc->cfg;
	char *h, *a, *w;
	if (!parse_mailbox(v, strlen(v), &h, &a, &w)) {
		sp_free(h);
		sp_free(a);
		sp_free(w);
		return bad(pc, sec, key, v,
			   "not an address (a@b.c, Name <a@b.c> or "
			   "\"Doe, Jane\" <a@b.c>)");
	}
	sp_free(c->from);
	sp_free(c->from_addr);
	sp_free(c->from_show);
	c->from = h;
	c->from_addr = a;
	c->from_show = w;
	return 1;
}

static int set_to_key(parse_ctx *pc, const char *sec, const char *key,
		      const char *v)
{
	(void)sec, (void)key;
	return set_to(pc, v);
}

static int set_timezone(parse_ctx *pc, const char *sec, const char *key,
			const char *v)
{
	const char *why = sp_zone_problem(v);
	return why ? bad(pc, sec, key, v, why)
		   : set_str(pc, &pc->cfg->timezone, v);
}

static int set_transport(parse_ctx *pc, const char *sec, const char *key,
			 const char *v)
{
	if (transport_known(v))
		return set_str(pc, &pc->cfg->transport, v);
	char why[160];
	size_t n = (size_t)snprintf(why, sizeof why, "unknown transport (");
	for (size_t i = 0; i < NTRANSPORT_NAMES; i++)
		n += (size_t)snprintf(why + n, sizeof why - n, "%s%s",
				      i ? ", " : "", transport_names[i]);
	snprintf(why + n, sizeof why - n, ")");
	return bad(pc, sec, key, v, why);
}

static int set_host(parse_ctx *pc, const char *sec, const char *key,
		    const char *v)
{
	if (!*v || strpbrk(v, " \t/:@") || has_ctl(v))
		return bad(pc, sec, key, v, "not a host name or address");
	return set_str(pc, &pc->cfg->host, v);
}

static int set_port(parse_ctx *pc, const char *sec, const char *key,
		    const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (end == v || *end || n < 1 || n > 65535)
		return bad(pc, sec, key, v, "not a port (1-65535)");
	pc->cfg->port = (int)n;
	return 1;
}

/* A whole number >= 1, or none (0: the threshold decides nothing). */
static int set_threshold(parse_ctx *pc, const char *sec, const char *key,
			 const char *v)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (!strcmp(v, "none"))
		n = 0;
	else if (errno || end == v || *end || n < 1)
		return bad(pc, sec, key, v, "not a whole number >= 1 (or none)");
	pc->cfg->policy.threshold = n;
	return 1;
}

static int set_ca_file(parse_ctx *pc, const char *sec, const char *key,
		       const char *v)
{
	if (access(v, R_OK) != 0)
		return bad(pc, sec, key, v, strerror(errno));
	return set_str(pc, &pc->cfg->ca_file, v);
}

static int set_user(parse_ctx *pc, const char *sec, const char *key,
		    const char *v)
{
	if (strlen(v) > 255 || has_ctl(v))
		return bad(pc, sec, key, v,
			   "longer than 255 bytes or control characters");
	return set_str(pc, &pc->cfg->user, v);
}

static int set_password_file(parse_ctx *pc, const char *sec, const char *key,
			     const char *v)
{
	struct stat st;
	if (stat(v, &st) != 0)
		return bad(pc, sec, key, v, strerror(errno));
	if (st.st_mode & 077)
		return bad(pc, sec, key, v,
			   "readable by group or others (chmod 600 it)");
	return set_str(pc, &pc->cfg->password_file, v);
}

static int set_helo(parse_ctx *pc, const char *sec, const char *key,
		    const char *v)
{
	if (!*v || strpbrk(v, " \t") || has_ctl(v))
		return bad(pc, sec, key, v, "not a host name");
	return set_str(pc, &pc->cfg->helo, v);
}

/* [rules] logcheck: directories, absolute, blank-separated. */
static int set_logcheck(parse_ctx *pc, const char *sec, const char *key,
			const char *v)
{
	for (const char *p = v; *p;) {
		p += strspn(p, " \t");
		if (*p && *p != '/')
			return bad(pc, sec, key, v, "directories with absolute paths");
		p += strcspn(p, " \t");
	}
	return set_str(pc, &pc->cfg->rules_logcheck, v);
}

/* ---- the table of keys ------------------------------------------------ */

typedef enum key_kind {
	K_STR,      /* char *; why: refused when empty (NULL: allowed) */
	K_TEXT,     /* char *, no control characters */
	K_ABSPATH,  /* char *, an absolute path */
	K_BOOL,     /* int */
	K_LEVEL,    /* int; `none` (-1) when allowed */
	K_DURATION, /* int64_t; `none` (0) when allowed; at least min µs */
	K_COUNT,    /* int64_t, a whole number >= 1 */
	K_SIZE,     /* uint64_t, min..max bytes */
	K_CHOICE,   /* int: the value of one of choices */
	K_FN,       /* its own function */
} key_kind;

typedef struct choice {
	const char *name;
	int value;
} choice;

typedef struct key_def {
	const char *sec, *key;
	key_kind kind;
	size_t off;             /* of the field in sp_config */
	bool none;              /* K_LEVEL, K_DURATION: `none` allowed */
	uint64_t min, max;      /* K_SIZE bytes, K_DURATION µs */
	const char *why;        /* what a bad value is told */
	const choice *choices;  /* K_CHOICE, ending with a NULL name */
	int (*fn)(parse_ctx *, const char *, const char *, const char *);
	size_t line;            /* offsetof(parse_ctx, line_…) to note, or 0 */
} key_def;

#define F(field) offsetof(sp_config, field)
#define L(field) offsetof(parse_ctx, field)
static const choice fold_choices[] = {
	{"exact", SP_FOLD_EXACT}, {"masked", SP_FOLD_MASKED},
	{"off", SP_FOLD_OFF}, {NULL, 0}};
static const choice tls_choices[] = {
	{"starttls", SP_TLS_STARTTLS}, {"none", SP_TLS_NONE},
	{"tls", SP_TLS_IMPLICIT}, {NULL, 0}};
static const choice auth_choices[] = { /* any case */
	{"plain", SP_AUTH_PLAIN}, {"login", SP_AUTH_LOGIN},
	{"xoauth2", SP_AUTH_XOAUTH2}, {"oauthbearer", SP_AUTH_OAUTHBEARER},
	{NULL, 0}};
#define SIZE_WHY(at_least) "not a size of at least " at_least
static const key_def keys[] = {
	{"spool", "path", K_FN, 0, 0, 0, 0, NULL, NULL, set_spool_path, 0},
	{"spool", "max_record", K_SIZE, F(max_record), 0, 256, 64ULL << 20,
	 "must be between 256 and 64M", NULL, NULL, 0},
	{"spool", "busy_timeout", K_DURATION, F(busy_timeout_us), false, 0, 0,
	 NULL, NULL, NULL, 0},
	{"spool", "keep_sent", K_DURATION, F(keep_sent_us), true, 0, 0, NULL,
	 NULL, NULL, 0},
	{"spool", "max_records", K_COUNT, F(max_records), 0, 0, 0, NULL, NULL,
	 NULL, 0},
	{"spool", "max_bytes", K_SIZE, F(max_bytes), 0, 65536, 0,
	 SIZE_WHY("64k (like 100M)"), NULL, NULL, 0},
	{"spool", "max_kinds", K_COUNT, F(max_kinds), 0, 0, 0, NULL, NULL, NULL,
	 0},
	{"policy", "new_level", K_LEVEL, F(new_level), true, 0, 0, NULL, NULL,
	 NULL, 0},
	{"policy", "flush_on_new", K_LEVEL, F(policy.flush_on_new), true, 0, 0,
	 NULL, NULL, NULL, 0},
	{"policy", "new_min_count", K_COUNT, F(policy.new_min_count), 0, 0, 0,
	 NULL, NULL, NULL, 0},
	{"policy", "learn", K_DURATION, F(policy.learn_us), true, 0, 0, NULL,
	 NULL, NULL, 0},
	{"policy", "quiet_after", K_DURATION, F(quiet_after_us), false, 0, 0,
	 NULL, NULL, NULL, 0},
	{"policy", "threshold", K_FN, 0, 0, 0, 0, NULL, NULL, set_threshold,
	 L(line_threshold)},
	{"policy", "count_level", K_LEVEL, F(policy.count_level), false, 0, 0,
	 NULL, NULL, NULL, L(line_count_level)},
	{"policy", "flush_level", K_LEVEL, F(policy.flush_level), true, 0, 0,
	 NULL, NULL, NULL, 0},
	{"policy", "max_age", K_DURATION, F(policy.max_age_us), true, 0, 0,
	 NULL, NULL, NULL, 0},
	{"policy", "expire", K_DURATION, F(policy.expire_us), true, 0, 0, NULL,
	 NULL, NULL, 0},
	{"policy", "min_interval", K_DURATION, F(policy.min_interval_us), true,
	 0, 0, NULL, NULL, NULL, 0},
	{"policy", "alarm_after", K_DURATION, F(policy.alarm_after_us), true, 0,
	 0, NULL, NULL, NULL, 0},
	{"policy", "heartbeat", K_DURATION, F(policy.heartbeat_us), true, 0, 0,
	 NULL, NULL, NULL, 0},
	{"mail", "from", K_FN, 0, 0, 0, 0, NULL, NULL, set_from, 0},
	{"mail", "to", K_FN, 0, 0, 0, 0, NULL, NULL, set_to_key, 0},
	{"mail", "subject", K_TEXT, F(subject), 0, 0, 0, NULL, NULL, NULL, 0},
	{"mail", "html", K_BOOL, F(html), 0, 0, 0, NULL, NULL, NULL, 0},
	{"mail", "timezone", K_FN, 0, 0, 0, 0, NULL, NULL, set_timezone, 0},
	{"mail", "max_size", K_SIZE, F(max_size), 0, 256u << 10, 0,
	 SIZE_WHY("256k (like 1M)"), NULL, NULL, 0},
	{"mail", "fold", K_CHOICE, F(fold), 0, 0, 0,
	 "must be exact, masked or off", fold_choices, NULL, 0},
	{"mail", "transport", K_FN, 0, 0, 0, 0, NULL, NULL, set_transport, 0},
	{"smtp", "host", K_FN, 0, 0, 0, 0, NULL, NULL, set_host, 0},
	{"smtp", "port", K_FN, 0, 0, 0, 0, NULL, NULL, set_port, 0},
	{"smtp", "tls", K_CHOICE, F(tls), 0, 0, 0,
	 "must be starttls, tls or none", tls_choices, NULL, L(line_tls)},
	{"smtp", "ca_file", K_FN, 0, 0, 0, 0, NULL, NULL, set_ca_file, 0},
	{"smtp", "verify", K_BOOL, F(verify), 0, 0, 0, NULL, NULL, NULL, 0},
	{"smtp", "user", K_FN, 0, 0, 0, 0, NULL, NULL, set_user, L(line_user)},
	{"smtp", "password_file", K_FN, 0, 0, 0, 0, NULL, NULL,
	 set_password_file, L(line_pwfile)},
	{"smtp", "password_command", K_STR, F(password_command), 0, 0, 0, NULL,
	 NULL, NULL, L(line_pwcmd)},
	{"smtp", "token_command", K_STR, F(token_command), 0, 0, 0, NULL, NULL,
	 NULL, L(line_token)},
	{"smtp", "auth", K_CHOICE, F(auth), 0, 0, 0,
	 "must be plain, login, xoauth2 or oauthbearer", auth_choices, NULL,
	 L(line_auth)},
	{"smtp", "helo", K_FN, 0, 0, 0, 0, NULL, NULL, set_helo, 0},
	{"smtp", "timeout", K_DURATION, F(timeout_us), false, 1000000, 0,
	 "at least 1s", NULL, NULL, 0},
	{"sendmail", "command", K_STR, F(sendmail_cmd), 0, 0, 0,
	 "empty command", NULL, NULL, 0},
	{"sendmail", "timeout", K_DURATION, F(sendmail_timeout_us), false, 0, 0,
	 NULL, NULL, NULL, 0},
	{"maildir", "path", K_ABSPATH, F(maildir), 0, 0, 0,
	 "must be an absolute path", NULL, NULL, 0},
	{"rules", "path", K_ABSPATH, F(rules_path), 0, 0, 0,
	 "must be an absolute path", NULL, NULL, 0},
	{"rules", "logcheck", K_FN, 0, 0, 0, 0, NULL, NULL, set_logcheck, 0},
};
#undef F
#undef L
#undef SIZE_WHY
#define NKEYS (sizeof keys / sizeof keys[0])

static int set_key(parse_ctx *pc, const key_def *k, const char *v, void *base);

/* The keys of a [source NAME] section, into its sp_source_cfg. */
#define S(field) offsetof(sp_source_cfg, field)
static const choice format_choices[] = {
	{"text", SPONGE_FORMAT_TEXT}, {"syslog", SPONGE_FORMAT_SYSLOG},
	{"rfc5424", SPONGE_FORMAT_RFC5424}, {"rfc3164", SPONGE_FORMAT_RFC3164},
	{"journal-json", SPONGE_FORMAT_JOURNAL_JSON}, {NULL, 0}};
static const choice join_choices[] = {
	{"auto", 1}, {"none", 0}, {NULL, 0}};
static const choice type_choices[] = {
	{"file", SPONGE_SOURCE_FILE}, {"journal", SPONGE_SOURCE_JOURNAL},
	{NULL, 0}};
static const key_def source_keys[] = {
	{"source", "type", K_CHOICE, S(type), 0, 0, 0, "not file or journal",
	 type_choices, NULL, 0},
	{"source", "directory", K_ABSPATH, S(directory), 0, 0, 0,
	 "not an absolute path", NULL, NULL, 0},
	{"source", "match", K_TEXT, S(match), 0, 0, 0, NULL, NULL, NULL, 0},
	{"source", "priority", K_LEVEL, S(priority), true, 0, 0, NULL, NULL,
	 NULL, 0},
	{"source", "path", K_ABSPATH, S(path), 0, 0, 0, "not an absolute path",
	 NULL, NULL, 0},
	{"source", "format", K_CHOICE, S(format), 0, 0, 0,
	 "not a format (text, syslog, rfc5424, rfc3164, journal-json)",
	 format_choices, NULL, 0},
	{"source", "tag", K_TEXT, S(tag), 0, 0, 0, NULL, NULL, NULL, 0},
	{"source", "host", K_TEXT, S(host), 0, 0, 0, NULL, NULL, NULL, 0},
	{"source", "level", K_LEVEL, S(level), false, 0, 0, NULL, NULL, NULL, 0},
	{"source", "detect_level", K_BOOL, S(detect_level), 0, 0, 0, NULL, NULL,
	 NULL, 0},
	{"source", "join", K_CHOICE, S(join), 0, 0, 0, "not auto or none",
	 join_choices, NULL, 0},
};
#undef S

/* The source of section "source NAME", made at its first key. */
static sp_source_cfg *source_named(parse_ctx *pc, const char *name)
{
	sp_config *c = pc->cfg;
	for (size_t i = 0; i < c->nsources; i++)
		if (!strcmp(c->sources[i].name, name))
			return &c->sources[i];
	sp_source_cfg *n = sp_realloc(c->sources,
				      (c->nsources + 1) * sizeof *n);
	if (!n) {
		pc->oom = 1;
		return NULL;
	}
	c->sources = n;
	sp_source_cfg *s = &n[c->nsources];
	*s = (sp_source_cfg){sp_strdup(name), NULL, NULL, NULL,
			     SPONGE_FORMAT_TEXT, SPONGE_INFO, 0, 1, pc->line,
			     SPONGE_SOURCE_FILE, NULL, NULL, -1};
	if (!s->name) {
		pc->oom = 1;
		return NULL;
	}
	c->nsources++;
	return s;
}

/* Is a [what NAME] section's name letters, digits and `more`?  Else
 * said. */
static bool section_name_ok(parse_ctx *pc, const char *what,
			    const char *name, const char *more)
{
	bool ok = *name && strlen(name) <= 64;
	for (const char *p = name; *p && ok; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || strchr(more, *p);
	if (!ok && pc->err->len == 0)
		sb_printf(pc->err, "[%s %s]: a %s's name is letters, digits "
				   "and \"%s\" (at most 64)",
			  what, name, what, more);
	return ok;
}

static int source_key(parse_ctx *pc, const char *name, const char *key,
		      const char *v)
{
	if (!section_name_ok(pc, "source", name, "._-"))
		return 0;
	sp_source_cfg *s = source_named(pc, name);
	if (!s)
		return 0;
	for (size_t i = 0; i < sizeof source_keys / sizeof source_keys[0]; i++)
		if (!strcmp(key, source_keys[i].key))
			return set_key(pc, &source_keys[i], v, s);
	if (pc->err->len == 0)
		sb_printf(pc->err, "unknown key \"%s\" in [source %s] (type, "
				   "path, format, tag, host, level, "
				   "detect_level, join, directory, match, "
				   "priority)", key, name);
	return 0;
}

/* The keys of a [job NAME] section, into its sp_job_cfg. */
#define J(field) offsetof(sp_job_cfg, field)
static const choice mail_choices[] = {
	{"never", SPONGE_JOB_MAIL_NEVER}, {"failure", SPONGE_JOB_MAIL_FAILURE},
	{"always", SPONGE_JOB_MAIL_ALWAYS}, {NULL, 0}};
static const key_def job_keys[] = {
	{"job", "mail", K_CHOICE, J(mail), 0, 0, 0,
	 "not failure, always or never", mail_choices, NULL, 0},
	{"job", "stderr_level", K_LEVEL, J(stderr_level), false, 0, 0, NULL,
	 NULL, NULL, 0},
	{"job", "every", K_DURATION, J(every_us), true, 1000000, 0,
	 "not a duration of at least 1s (or none)", NULL, NULL, 0},
	{"job", "grace", K_DURATION, J(grace_us), false, 0, 0, NULL, NULL,
	 NULL, 0},
	{"job", "timeout", K_DURATION, J(timeout_us), true, 1000000, 0,
	 "not a duration of at least 1s (or none)", NULL, NULL, 0},
	{"job", "kill", K_BOOL, J(kill), 0, 0, 0, NULL, NULL, NULL, 0},
};
#undef J

/* The job of section "job NAME", made at its first key. */
static sp_job_cfg *job_named(parse_ctx *pc, const char *name)
{
	sp_config *c = pc->cfg;
	for (size_t i = 0; i < c->njobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	sp_job_cfg *n = sp_realloc(c->jobs, (c->njobs + 1) * sizeof *n);
	if (!n) {
		pc->oom = 1;
		return NULL;
	}
	c->jobs = n;
	sp_job_cfg *j = &n[c->njobs];
	*j = (sp_job_cfg){sp_strdup(name), SPONGE_JOB_MAIL_NEVER, -1, 0, -1,
			  0, 0, pc->line};
	if (!j->name) {
		pc->oom = 1;
		return NULL;
	}
	c->njobs++;
	return j;
}

static int job_key(parse_ctx *pc, const char *name, const char *key,
		   const char *v)
{
	if (!section_name_ok(pc, "job", name, "._-@+:*?[]"))
		return 0;
	sp_job_cfg *j = job_named(pc, name);
	if (!j)
		return 0;
	for (size_t i = 0; i < sizeof job_keys / sizeof job_keys[0]; i++)
		if (!strcmp(key, job_keys[i].key))
			return set_key(pc, &job_keys[i], v, j);
	if (pc->err->len == 0)
		sb_printf(pc->err, "unknown key \"%s\" in [job %s] (mail, "
				   "stderr_level, every, grace, timeout, kill)",
			  key, name);
	return 0;
}

static int set_choice(parse_ctx *pc, const key_def *k, const char *v,
		      int *out)
{
	for (const choice *c = k->choices; c->name; c++)
		if (strcasecmp(v, c->name) == 0 &&
		    (k->choices == auth_choices || strcmp(v, c->name) == 0)) {
			*out = c->value;
			return 1;
		}
	return bad(pc, k->sec, k->key, v, k->why);
}

static int set_count(parse_ctx *pc, const key_def *k, const char *v,
		     int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < 1)
		return bad(pc, k->sec, k->key, v, "not a whole number >= 1");
	*out = n;
	return 1;
}

static int set_size(parse_ctx *pc, const key_def *k, const char *v,
		    uint64_t *out)
{
	uint64_t n;
	bool parsed = sponge_parse_size(v, &n) == SPONGE_OK;
	if (!k->max && (!parsed || n < k->min))
		return bad(pc, k->sec, k->key, v, k->why);
	if (!parsed)
		return bad(pc, k->sec, k->key, v, "not a size (like 64k, 1M)");
	if (n < k->min || (k->max && n > k->max))
		return bad(pc, k->sec, k->key, v, k->why);
	*out = n;
	return 1;
}

/* One key by its kind, into its field. */
/* Key k's value v into the field at k->off of base. */
static int set_key(parse_ctx *pc, const key_def *k, const char *v, void *base)
{
	char *f = (char *)base + k->off;
	int rc;
	switch (k->kind) {
	case K_STR:
		if (k->why && !*v)
			return bad(pc, k->sec, k->key, v, k->why);
		return set_str(pc, (char **)(void *)f, v);
	case K_TEXT:
		return has_ctl(v) ? bad(pc, k->sec, k->key, v, "control characters")
				  : set_str(pc, (char **)(void *)f, v);
	case K_ABSPATH:
		return v[0] != '/' ? bad(pc, k->sec, k->key, v, k->why)
				   : set_str(pc, (char **)(void *)f, v);
	case K_BOOL: return set_bool(pc, k->sec, k->key, v, (int *)(void *)f);
	case K_LEVEL:
		return set_level(pc, k->sec, k->key, v, (int *)(void *)f, k->none);
	case K_DURATION:
		rc = set_duration(pc, k->sec, k->key, v, (int64_t *)(void *)f,
				  k->none);
		if (rc && *(int64_t *)(void *)f < (int64_t)k->min)
			return bad(pc, k->sec, k->key, v, k->why);
		return rc;
	case K_COUNT: return set_count(pc, k, v, (int64_t *)(void *)f);
	case K_SIZE: return set_size(pc, k, v, (uint64_t *)(void *)f);
	case K_CHOICE: return set_choice(pc, k, v, (int *)(void *)f);
	case K_FN: return k->fn(pc, k->sec, k->key, v);
	}
	return 0;
}

/* The sections the table names, for "unknown section". */
static bool section_known(const char *sec)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(sec, keys[i].sec) == 0)
			return true;
	return false;
}

/* The edit distance of a and b (each up to 31 bytes; longer: far). */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[32];
	if (la > 31 || lb > 31)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			best = up + 1 < best ? up + 1 : best;
			best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* The key of [sec] nearest to key, when a typo away (2 edits), or NULL. */
static const char *nearest_key(const char *sec, const char *key)
{
	const char *best = NULL;
	size_t d = 3;
	for (size_t i = 0; i < NKEYS; i++) {
		size_t k = strcmp(sec, keys[i].sec) ? 99
						   : distance(key, keys[i].key);
		if (k < d) {
			d = k;
			best = keys[i].key;
		}
	}
	return best;
}

static int handle_key(parse_ctx *pc, const char *sec, const char *key,
		      const char *v)
{
	if (!strncmp(sec, "source ", 7))
		return source_key(pc, sec + 7, key, v);
	if (!strncmp(sec, "job ", 4))
		return job_key(pc, sec + 4, key, v);
	for (size_t i = 0; i < NKEYS; i++) {
		const key_def *k = &keys[i];
		if (strcmp(sec, k->sec) != 0 || strcmp(key, k->key) != 0)
			continue;
		if (k->line)
			*(int *)(void *)((char *)pc + k->line) = pc->line;
		return set_key(pc, k, v, pc->cfg);
	}
	if (pc->err->len == 0) {
		const char *near = nearest_key(sec, key);
		if (section_known(sec))
			sb_printf(pc->err, "unknown key \"%s\" in [%s]%s%s%s", key,
				  sec, near ? " (did you mean \"" : "",
				  near ? near : "", near ? "\"?)" : "");
		else
			sb_printf(pc->err, "unknown section [%s]",
				  *sec ? sec : "(none: key before any section)");
	}
	return 0;
}

/* The error of line `line` (in pc->err) into the list of all errors. */
static void note_error(parse_ctx *pc, int line, const char *why)
{
	sb_printf(&pc->all, "%s%s:%d: %s", pc->all.len ? "\n" : "", pc->name,
		  line, why);
	sb_reset(pc->err);
}

/* A key's error is noted and the file read on, so that every error of
 * the file is said at once. */
static int handler(void *user, const char *sec, const char *key,
		   const char *v)
{
	parse_ctx *pc = user;
	if (handle_key(pc, sec, key, v) || pc->oom)
		return !pc->oom;
	note_error(pc, pc->line, pc->err->len ? pc->err->data : "bad value");
	return 1;
}

/* A line inih cannot read: not blank, a comment, a [section], key = value
 * or an indented continuation. */
static bool bad_syntax(const char *s, size_t n)
{
	if (!n || *s == ' ' || *s == '\t' || *s == ';' || *s == '#' ||
	    *s == '\n' || *s == '\r')
		return false;
	if (*s == '[')
		return !memchr(s, ']', n);
	return !memchr(s, '=', n) && !memchr(s, ':', n);
}

/* inih reader over a string that counts lines. */
static char *reader(char *str, int num, void *stream)
{
	parse_ctx *pc = stream;
	if (!*pc->text || pc->long_line)
		return NULL;
	int i = 0;
	while (i < num - 1 && pc->text[i] && pc->text[i] != '\n')
		i++;
	if (i == num - 1 && pc->text[i] && pc->text[i] != '\n') {
		/* inih's line buffer is fixed; stop with a clear error */
		pc->long_line = pc->line + 1;
		return NULL;
	}
	if (pc->text[i] == '\n' && i < num - 1)
		i++;
	memcpy(str, pc->text, (size_t)i);
	str[i] = '\0';
	pc->text += i;
	if (i > 0 && str[i - 1] == '\n')
		pc->line++;
	else if (!*pc->text)
		pc->line++; /* last line without a newline */
	if (bad_syntax(str, (size_t)i))
		note_error(pc, pc->line, "syntax error (expected [section] or "
					 "key = value)");
	return str;
}

/* Checks that involve several keys; returns the offending line or 0. */
static int cross_checks(parse_ctx *pc)
{
	sp_config *c = pc->cfg;
	for (size_t i = 0; i < c->nsources; i++)
		if (!c->sources[i].path &&
		    c->sources[i].type == SPONGE_SOURCE_FILE) {
			sb_printf(pc->err, "[source %s] has no path (or type = "
					   "journal)", c->sources[i].name);
			return c->sources[i].line;
		}
	/* flush_level alone: it decides, not the default threshold (one
	 * record of any level) */
	if (c->policy.flush_level >= 0 && !pc->line_threshold &&
	    !pc->line_count_level)
		c->policy.threshold = 0;
	for (size_t i = 0; i < c->njobs; i++) { /* grace: an hour, or half
						   of every when less */
		sp_job_cfg *j = &c->jobs[i];
		if (j->grace_us < 0)
			j->grace_us = j->every_us / 2 < 3600000000LL
					      ? j->every_us / 2
					      : 3600000000LL;
	}
	if (c->user && c->tls == SP_TLS_NONE) {
		sb_printf(pc->err, "smtp.tls = none with smtp.user: AUTH "
				   "would send the password in clear text");
		return pc->line_tls > pc->line_user ? pc->line_tls
						     : pc->line_user;
	}
	if (c->password_file && c->password_command) {
		sb_printf(pc->err, "smtp.password_file and "
				   "smtp.password_command: give only one");
		return pc->line_pwcmd > pc->line_pwfile ? pc->line_pwcmd
							 : pc->line_pwfile;
	}
	if (c->token_command && (c->password_file || c->password_command)) {
		sb_printf(pc->err, "smtp.token_command and a password: give "
				   "only one");
		return pc->line_token;
	}
	if (c->token_command && !c->user) {
		sb_printf(pc->err, "smtp.token_command needs smtp.user (the "
				   "account the token is for)");
		return pc->line_token;
	}
	bool oauth = c->auth == SP_AUTH_XOAUTH2 || c->auth == SP_AUTH_OAUTHBEARER;
	if (c->auth && oauth != (c->token_command != NULL)) {
		sb_printf(pc->err, oauth ? "smtp.auth = %s needs smtp.token_command"
					 : "smtp.auth = %s takes a password, not "
					   "smtp.token_command",
			  oauth ? (c->auth == SP_AUTH_XOAUTH2 ? "xoauth2"
							      : "oauthbearer")
				: (c->auth == SP_AUTH_PLAIN ? "plain" : "login"));
		return pc->line_auth;
	}
	return 0;
}

static int parse_text(sp_config *c, const char *text, const char *name,
		      spbuf *err)
{
	spbuf detail;
	sb_init(&detail, 4096);
	parse_ctx pc;
	memset(&pc, 0, sizeof pc);
	pc.cfg = c;
	pc.err = &detail;
	pc.text = text;
	pc.name = name;
	sb_init(&pc.all, 1 << 16);
	int rc = ini_parse_stream(reader, &pc, handler, &pc);
	if (rc > 0 && !pc.all.len) /* (one the reader did not see) */
		note_error(&pc, rc, "syntax error (expected [section] or key = "
				    "value)");
	if (pc.long_line) {
		char why[128];
		snprintf(why, sizeof why, "line too long (the limit is %d "
					  "characters; split a long \"to\" over "
					  "several lines)", INI_MAX_LINE - 2);
		note_error(&pc, pc.long_line, why);
	}
	if (!pc.all.len && !pc.oom && rc >= 0 && (rc = cross_checks(&pc)))
		note_error(&pc, rc, detail.data);
	int code = SPONGE_OK;
	sb_reset(err);
	if (pc.oom || rc == -2 || pc.all.failed) {
		code = SPONGE_ENOMEM;
		sb_adds(err, "out of memory");
	} else if (pc.all.len) {
		code = SPONGE_ECONFIG;
		sb_adds(err, pc.all.data);
	}
	sb_free(&pc.all);
	sb_free(&detail);
	return code;
}

/*
 * The text with every line outside [spool] sections made empty, so that
 * line numbers stay.  A section starts at a line whose first non-blank
 * character is '[' (as inih reads it).  NULL when memory ran out.
 */
static char *spool_only(const char *text)
{
	spbuf o;
	sb_init(&o, 0);
	bool in_spool = false;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		const char *s = p;
		while (s < p + n && (*s == ' ' || *s == '\t'))
			s++;
		if (*s == '[') {
			const char *close = memchr(s, ']', (size_t)(p + n - s));
			in_spool = close && close - s == 6 &&
				   memcmp(s + 1, "spool", 5) == 0;
			if (in_spool)
				sb_add(&o, p, n);
			else
				sb_addc(&o, '\n');
		} else if (in_spool) {
			sb_add(&o, p, n);
		} else if (nl) {
			sb_addc(&o, '\n');
		}
		p += n;
	}
	if (o.failed) {
		sb_free(&o);
		return NULL;
	}
	char *r = sp_strdup(o.data);
	sb_free(&o);
	return r;
}

/* Parse text; with `deferred`, only [spool] errors fail (the rest is
 * reported in *deferred), else every error fails. */
static int parse_split(sp_config *c, const char *text, const char *name,
		       spbuf *err, spbuf *deferred)
{
	if (!deferred)
		return parse_text(c, text, name, err);
	char *spool = spool_only(text);
	if (!spool) {
		sb_reset(err);
		sb_adds(err, "out of memory");
		return SPONGE_ENOMEM;
	}
	int code = parse_text(c, spool, name, err);
	sp_free(spool);
	if (code != SPONGE_OK)
		return code;
	/* the whole file: what goes wrong outside [spool] is deferred */
	code = parse_text(c, text, name, deferred);
	if (code == SPONGE_ECONFIG)
		code = SPONGE_OK;
	else
		sb_reset(deferred);
	if (code == SPONGE_ENOMEM) {
		sb_reset(err);
		sb_adds(err, "out of memory");
	}
	return code;
}

int sp_config_load(sp_config *c, const char *path, spbuf *err,
		   spbuf *deferred)
{
	/* without `deferred` a file that cannot be read is an error; with
	 * it, the defaults apply and the reason is deferred */
	spbuf *why = deferred ? deferred : err;
	FILE *f = fopen(path, "rb");
	if (!f) {
		sb_reset(why);
		sb_printf(why, "%s: %s", path, strerror(errno));
		return deferred ? SPONGE_OK : SPONGE_ECONFIG;
	}
	spbuf text;
	sb_init(&text, 1 << 20);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (!sb_add(&text, chunk, n))
			break;
	bool rerr = ferror(f);
	fclose(f);
	int code;
	if (text.failed || rerr) {
		sb_reset(why);
		sb_printf(why, "%s: %s", path,
			  rerr ? "read error" : "larger than 1 MiB");
		code = deferred ? SPONGE_OK : SPONGE_ECONFIG;
	} else if (memchr(text.data, '\0', text.len)) {
		sb_reset(why);
		sb_printf(why, "%s: contains NUL bytes", path);
		code = deferred ? SPONGE_OK : SPONGE_ECONFIG;
	} else {
		code = parse_split(c, text.data, path, err, deferred);
	}
	sb_free(&text);
	if (code == SPONGE_OK) {
		sp_free(c->path);
		c->path = sp_strdup(path);
		if (!c->path)
			code = SPONGE_ENOMEM;
	}
	return code;
}

int sp_config_load_string(sp_config *c, const char *text, const char *name,
			  spbuf *err, spbuf *deferred)
{
	return parse_split(c, text, name, err, deferred);
}
