/* plan.c - the batch plan: counts, then envelope (subject, Message-ID);
 * the size plan is size.c's.  Built once per message, read-only
 * afterwards.  No SQL: the store answers. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "flush.h"
#include "store.h"

/* ---- the batch ---------------------------------------------------- */

static void cut_utf8(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	memcpy(s + max, "…", 4); /* 3 bytes + NUL; callers leave room */
}

/* The Message-ID's domain: this host's fully qualified name, else the
 * domain of mail.from (a short host name is no domain), in dot-atom
 * characters. */
static void message_id_domain(const sponge *sp, char host[256])
{
	char name[256] = "";
	const char *at = sp->cfg.from_addr ? strrchr(sp->cfg.from_addr, '@')
					   : NULL;
	if (!sp_host_fqdn(name, sizeof name))
		snprintf(name, sizeof name, "%s", at ? at + 1 : sp->host);
	size_t j = 0;
	for (const char *h = name; *h && j < 255; h++)
		if ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		    (*h >= '0' && *h <= '9') || *h == '.' || *h == '-')
			host[j++] = *h;
	host[j] = '\0';
	if (!j)
		snprintf(host, 256, "localhost");
}

/* "backup failed (exit 23)", the first failed run's (and ", 2 more
 * runs failed"); "" when none did. */
static void run_words(const sp_tally *n, char *buf, size_t size)
{
	buf[0] = '\0';
	for (int i = 0; i < n->nruns; i++) {
		sponge_run r = n->runs[i].r;
		if (!SPONGE_RUN_FAILED(&r))
			continue;
		char how[64];
		sp_run_outcome(&r, how, sizeof how);
		int64_t more = n->runs_failed - 1;
		int k = snprintf(buf, size, "%s %s", n->runs[i].job, how);
		if (more && k > 0 && (size_t)k < size)
			snprintf(buf + k, size - (size_t)k,
				 ", %lld more run%s failed", (long long)more,
				 more == 1 ? "" : "s");
		return;
	}
}

/* Expand the subject template: {host} {count} {records} {level} {tag}
 * {first} {run} and the level names ({err} = count of err records). */
static void expand_subject(sponge *sp, const sp_tally *n, sp_envelope *e,
			   const char *first)
{
	/* a heartbeat (no records) reads well with the default; a template
	 * of the user's applies to it too, {first} saying what it is; a
	 * failed run names itself */
	char run[160];
	run_words(n, run, sizeof run);
	if (!run[0] && n->count && !strncmp(e->why, "job ", 4)) /* always */
		snprintf(run, sizeof run, "%s", e->why + 4);
	const char *tpl = sp->cfg.subject ? sp->cfg.subject
			  : run[0] ? "{new}[logsponge] {run} on {host}"
			  : n->count ? "{new}[logsponge] {host}: {count} "
				       "{records}, highest {level}: {first}"
				     : "[logsponge] {host}: {first}";
	spbuf o;
	sb_init(&o, 900);
	for (const char *p = tpl; *p;) {
		const char *close = *p == '{' ? strchr(p, '}') : NULL;
		if (!close) {
			sb_addc(&o, *p++);
			continue;
		}
		size_t len = (size_t)(close - p - 1);
		char name[24] = "";
		if (len < sizeof name)
			memcpy(name, p + 1, len), name[len] = '\0';
		int lv = sponge_level_from_name(name);
		if (!strcmp(name, "host"))
			sb_adds(&o, sp->host);
		else if (!strcmp(name, "new")) /* a kind never delivered */
			sb_adds(&o, e->new_kind && n->count ? "NEW: " : "");
		else if (!strcmp(name, "count"))
			sb_printf(&o, "%lld", (long long)n->count);
		else if (!strcmp(name, "records"))
			sb_adds(&o, n->count == 1 ? "record" : "records");
		else if (!strcmp(name, "level"))
			sb_adds(&o, sponge_level_name(n->highest));
		else if (!strcmp(name, "tag"))
			sb_adds(&o, n->first_tag[0] ? n->first_tag : "-");
		else if (!strcmp(name, "first"))
			sb_adds(&o, first);
		else if (!strcmp(name, "run"))
			sb_adds(&o, run);
		else if (lv >= 0 && !strcmp(name, sponge_level_name(lv)))
			sb_printf(&o, "%lld", (long long)n->by_level[lv]);
		else {
			sb_addc(&o, *p++); /* not a token: keep the text */
			continue;
		}
		p = close + 1;
	}
	snprintf(e->subject, sizeof e->subject - 4, "%s", o.data);
	cut_utf8(e->subject, 200);
	sb_free(&o);
}

/* Everything the headers and the summary need, in two scans: one over
 * levels (counts, times, the first record of each level) and one over
 * tags.  The message itself is a third scan, the commit a fourth. */
/* Tag counts for the summary: up to TAG_SLOTS distinct tags, the rest
 * counted together. */
#define TAG_SLOTS 256
typedef struct tag_count {
	char tag[72];
	int64_t n;
	int64_t last[SP_CONTEXT]; /* its last records' ids, a ring */
} tag_count;

/* The tag's slot (NULL: past TAG_SLOTS distinct tags, counted as
 * others). */
static tag_count *count_tag(tag_count *t, int64_t *others, const char *tag)
{
	size_t n = strlen(tag);
	if (n >= sizeof t->tag)
		n = sizeof t->tag - 1;
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)tag[i]) * 16777619u;
	for (unsigned k = 0; k < TAG_SLOTS; k++) {
		tag_count *c = &t[(h + k) % TAG_SLOTS];
		if (!c->n) {
			memcpy(c->tag, tag, n);
			c->tag[n] = '\0';
			c->n = 1;
			return c;
		}
		if (strncmp(c->tag, tag, n) == 0 && c->tag[n] == '\0') {
			c->n++;
			return c;
		}
	}
	(*others)++;
	return NULL;
}

/* The context of the most severe record so far: its tag's last records
 * (before it), oldest first; then it joins its tag's ring. */
static void track_context(sp_tally *n, tag_count *t, const sp_scan_row *r,
			  bool new_top)
{
	if (!t)
		return;
	int64_t seen = t->n - 1; /* records of the tag before this one */
	if (new_top) {
		n->nctx = seen < SP_CONTEXT ? (int)seen : SP_CONTEXT;
		for (int i = 0; i < n->nctx; i++)
			n->ctx_ids[i] = t->last[(seen - n->nctx + i) % SP_CONTEXT];
	}
	t->last[seen % SP_CONTEXT] = r->id;
}

/* "backup 80, cron 27, - 16, …": the five most frequent tags (or
 * hosts) into out; the most frequent into first (or NULL); how many
 * distinct ones (at most TAG_SLOTS, plus one for the others) into
 * *distinct.  Takes the counts (they are negative afterwards). */
static void top_five(tag_count *t, int64_t others, char *out, size_t size,
		     char *first, size_t first_size, int *distinct)
{
	spbuf o;
	sb_init(&o, size - 8);
	*distinct = others > 0;
	for (unsigned k = 0; k < TAG_SLOTS; k++)
		*distinct += t[k].n > 0;
	for (int shown = 0; shown < 5; shown++) {
		tag_count *best = NULL;
		for (unsigned k = 0; k < TAG_SLOTS; k++)
			if (t[k].n > 0 && (!best || t[k].n > best->n ||
					   (t[k].n == best->n &&
					    strcmp(t[k].tag, best->tag) < 0)))
				best = &t[k];
		if (!best)
			break;
		if (!shown && first)
			snprintf(first, first_size, "%s", best->tag);
		sb_printf(&o, "%s%s %lld", shown ? ", " : "",
			  best->tag[0] ? best->tag : "-", (long long)best->n);
		best->n = -best->n; /* taken */
	}
	bool more = others > 0;
	for (unsigned k = 0; k < TAG_SLOTS && !more; k++)
		more = t[k].n > 0;
	if (more)
		sb_adds(&o, ", …");
	snprintf(out, size, "%s", o.data ? o.data : "");
	sb_free(&o);
}

/* The batch's counts, times, first record of each level and its tags, in
 * one pass over the rows (no sorting). */
typedef struct level_scan {
	sp_tally *n;
	tag_count *tags, *hosts;
	int64_t others, other_hosts;
	uint64_t limit; /* stop past this many bytes of messages (0: none) */
	sp_record_fn each; /* and hand each record on (NULL: none) */
	void *arg;
} level_scan;

/* rule's slot in t (n of them used, up to SP_RULE_SLOTS), counted;
 * false when the slots are full and it has none */
static bool count_rule(sp_rule_count *t, int *n, const char *rule,
		       int64_t k)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(t[i].name, rule) == 0) {
			t[i].n += k;
			return true;
		}
	if (*n == SP_RULE_SLOTS)
		return false;
	snprintf(t[*n].name, sizeof t[*n].name, "%s", rule);
	t[(*n)++].n = k;
	return true;
}

/* An ignored record goes with the batch, counted by its rule, and is
 * neither listed nor surveyed. */
static void add_ignored(sp_tally *n, const sp_scan_row *r)
{
	n->ignored++;
	if (r->id > n->max_id)
		n->max_id = r->id;
	if (!count_rule(n->rule_ignored, &n->nrule_ignored,
			r->rule ? r->rule : "?", 1))
		n->ignored_others++;
}

static bool add_row(void *arg, const sp_scan_row *r)
{
	level_scan *ls = arg;
	sp_tally *n = ls->n;
	if (r->ignored) {
		add_ignored(n, r);
		return true;
	}
	if (r->escalated)
		count_rule(n->rule_escalated, &n->nrule_escalated,
			   r->rule ? r->rule : "?", 1);
	if (!n->count++) {
		n->first_id = r->id;
		n->t_first = n->t_last = r->time_us;
		n->r_first = r->received_us;
	}
	if (r->received_us < n->r_first)
		n->r_first = r->received_us;
	n->max_id = r->id;
	if (r->time_us < n->t_first)
		n->t_first = r->time_us;
	if (r->time_us > n->t_last)
		n->t_last = r->time_us;
	bool new_top = !n->by_level[r->level] &&
		       (r->level < n->highest || n->count == 1);
	if (!n->by_level[r->level]++)
		n->first_of[r->level] = r->id;
	if (r->level < n->highest)
		n->highest = r->level;
	track_context(n, count_tag(ls->tags, &ls->others, r->tag), r, new_top);
	count_tag(ls->hosts, &ls->other_hosts, r->host);
	if (ls->each) {
		sponge_record rec = {r->id,	    r->time_us, r->level,
				     r->tag,	    r->host,	r->message,
				     r->message_len, 0,	 0,
				     r->rule,	    -1, r->escalated};
		ls->each(ls->arg, &rec);
	}
	n->msg_bytes += r->bytes;
	n->bytes_by_level[r->level] += r->bytes;
	if (ls->limit && (uint64_t)n->msg_bytes > ls->limit) {
		n->partial = true;
		return false;
	}
	return true;
}

static int scan_levels(sponge *sp, int64_t max_id, uint64_t limit,
		       sp_tally *n, sp_record_fn each, void *arg)
{
	level_scan ls = {n, sp_malloc(2 * TAG_SLOTS * sizeof *ls.tags), NULL,
			 0, 0, limit, each, arg};
	if (!ls.tags)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	memset(ls.tags, 0, 2 * TAG_SLOTS * sizeof *ls.tags);
	ls.hosts = ls.tags + TAG_SLOTS;
	int rc = sp_store_scan_batch(sp, max_id, sp_batch_max_level(n),
				     each != NULL, add_row, &ls);
	int ntags;
	if (rc == SPONGE_OK) {
		top_five(ls.tags, ls.others, n->tags, sizeof n->tags,
			 n->first_tag, sizeof n->first_tag, &ntags);
		top_five(ls.hosts, ls.other_hosts, n->hosts, sizeof n->hosts,
			 NULL, 0, &n->nhosts);
	}
	sp_free(ls.tags);
	return rc;
}

/* The first record of the most severe level present (the summary shows
 * it; the subject its first 60 characters). */
static int load_top(sponge *sp, sp_tally *n)
{
	spbuf tag, msg;
	sb_init(&tag, 0);
	sb_init(&msg, 0);
	int rc = sp_store_record(sp, n->first_of[n->highest], &n->top_time,
				 &tag, &msg);
	if (rc == SPONGE_OK && msg.len) {
		snprintf(n->top_tag, sizeof n->top_tag, "%s", tag.data);
		n->top_len = msg.len;
		n->top_msg = msg.data; /* the tally owns it now */
		sb_init(&msg, 0);
	}
	sb_free(&tag);
	sb_free(&msg);
	return rc;
}

/* A run with records in the batch, into the tally. */
static bool add_run(void *arg, const sponge_run *r)
{
	sp_tally *n = arg;
	if (SPONGE_RUN_FAILED(r))
		n->runs_failed++;
	if (n->nruns == SP_RUNS_SHOWN) {
		n->runs_more++;
		return true;
	}
	sp_run_seen *s = &n->runs[n->nruns++];
	s->r = *r;
	s->r.job = s->r.host = NULL;
	snprintf(s->job, sizeof s->job, "%s", r->job);
	snprintf(s->host, sizeof s->host, "%s", r->host);
	return true;
}

/* A partial tally stands for every pending record within its level cap:
 * the kept counts, and bytes by level in the proportion of what was read
 * (a level not met yet: the average record).  The size plan only needs
 * these to choose the levels that go first; it checks what it chose. */
static int estimate_rest(sponge *sp, sp_tally *n)
{
	sponge_stats st;
	int rc = sp_stats_get(sp, &st);
	if (rc)
		return rc;
	int64_t avg = n->count ? n->msg_bytes / n->count : 0;
	n->count = n->msg_bytes = 0;
	n->max_id = INT64_MAX;
	n->highest = 7;
	for (int l = 0; l <= sp_batch_max_level(n); l++) {
		int64_t seen = n->by_level[l], all = st.by_level[l];
		if (all < seen)
			all = seen;
		n->bytes_by_level[l] =
			seen ? (int64_t)((double)n->bytes_by_level[l] * all / seen)
			     : avg * all;
		n->by_level[l] = all;
		n->count += all;
		n->msg_bytes += n->bytes_by_level[l];
		if (all && l < n->highest)
			n->highest = l;
	}
	return SPONGE_OK;
}

/* What stays pending, by level: the kept counts less the batch's. */
static int count_waiting(sponge *sp, sp_tally *n)
{
	sponge_stats st;
	int rc = sp_stats_get(sp, &st);
	for (int l = 0; rc == SPONGE_OK && l < 8; l++) {
		n->waiting[l] = st.by_level[l] > n->by_level[l]
					? st.by_level[l] - n->by_level[l]
					: 0;
		n->ignored_waiting += st.ignored[l];
	}
	n->ignored_waiting -= n->ignored;
	if (n->ignored_waiting < 0)
		n->ignored_waiting = 0;
	return rc;
}

static void tally_free(sp_tally *n)
{
	sp_free(n->top_msg);
	n->top_msg = NULL;
}

int sp_plan_tally(sponge *sp, int64_t max_id, uint64_t byte_limit,
		  sp_tally *n)
{
	return sp_plan_tally_capped(sp, max_id, 0, byte_limit, n);
}

static int tally(sponge *sp, int64_t max_id, int level_cap,
		 uint64_t byte_limit, sp_tally *n, sp_record_fn each,
		 void *arg);

int sp_plan_tally_capped(sponge *sp, int64_t max_id, int level_cap,
			 uint64_t byte_limit, sp_tally *n)
{
	return tally(sp, max_id, level_cap, byte_limit, n, NULL, NULL);
}

int sp_plan_tally_each(sponge *sp, int64_t max_id, uint64_t byte_limit,
		       sp_tally *n, sp_record_fn each, void *arg)
{
	return tally(sp, max_id, 0, byte_limit, n, each, arg);
}

/* The drops rules made since the last message (those past the slots
 * wait for the next one). */
static void add_rule_drop(void *arg, const char *rule, int64_t k)
{
	sp_tally *n = arg;
	count_rule(n->rule_drops, &n->nrule_drops, rule ? rule : "?", k);
}

/* A rule that expires within a week, or did in the last one. */
static void add_expiring(void *arg, const char *rule, int64_t until)
{
	sp_tally *n = arg;
	if (n->nexpiring < (int)(sizeof n->expiring / sizeof n->expiring[0])) {
		sp_rule_count *e = &n->expiring[n->nexpiring++];
		snprintf(e->name, sizeof e->name, "%s", rule);
		e->n = until;
	}
}

static int tally(sponge *sp, int64_t max_id, int level_cap,
		 uint64_t byte_limit, sp_tally *n, sp_record_fn each,
		 void *arg)
{
	tally_free(n);
	memset(n, 0, sizeof *n);
	n->highest = 7;
	n->level_cap = level_cap > 0 && level_cap < 8 ? level_cap : 0;
	if (max_id <= 0) { /* a heartbeat: only what waits, and drops */
		int rc = sp_store_rule_drops(sp, add_rule_drop, n);
		return rc ? rc : count_waiting(sp, n);
	}
	int rc = scan_levels(sp, max_id, max_id == INT64_MAX ? byte_limit : 0,
			     n, each, arg);
	if (rc == SPONGE_OK && n->partial)
		rc = estimate_rest(sp, n);
	if (rc == SPONGE_OK)
		rc = sp_dropped(sp, n->dropped);
	if (rc == SPONGE_OK)
		rc = sp_store_rule_drops(sp, add_rule_drop, n);
	if (rc == SPONGE_OK) /* rules that do not read name nothing here */
		sp_rules_expiring(sp, sponge_now(), 7 * 86400 * 1000000LL,
				  add_expiring, n);
	if (rc == SPONGE_OK)
		rc = count_waiting(sp, n);
	if (rc == SPONGE_OK && n->count && !n->partial &&
	    n->first_of[n->highest])
		rc = load_top(sp, n);
	if (rc == SPONGE_OK && n->count && !n->partial)
		rc = sp_store_runs_in(sp, n->first_id, n->max_id, add_run, n);
	return rc;
}

int sp_plan_envelope(sponge *sp, const sp_tally *n, sp_envelope *e,
		     const char *pinned_mid)
{
	char tok[33], host[256], first[256] = "";
	int rc = sp_store_token(sp, tok);
	if (rc)
		return rc;
	message_id_domain(sp, host);
	if (n->count) {
		if (n->top_msg) { /* the line that names it */
			size_t off, len = sp_summary(n->top_msg,
						     strlen(n->top_msg), &off);
			snprintf(first, sizeof first - 4, "%.*s", (int)len,
				 n->top_msg + off);
		}
		cut_utf8(first, 60);
		/* same batch, same Message-ID: a retry after a crash between
		 * the server's 250 and our commit is recognisable */
		snprintf(e->message_id, sizeof e->message_id,
			 "logsponge.%lld-%lld.%s@%s", (long long)n->first_id,
			 (long long)n->max_id, tok, host);
	} else { /* a heartbeat */
		char since[32];
		sponge_format_time(e->since_us, since);
		/* to the second: "2026-11-21T10:00:00Z" */
		snprintf(first, sizeof first, "nothing to report since %.19sZ",
			 since);
		snprintf(e->message_id, sizeof e->message_id,
			 "logsponge.heartbeat.%lld.%s@%s",
			 (long long)e->date_us, tok, host);
	}
	if (pinned_mid && pinned_mid[0])
		snprintf(e->message_id, sizeof e->message_id, "%s", pinned_mid);
	expand_subject(sp, n, e, first);
	snprintf(e->boundary, sizeof e->boundary, "=_logsponge_%lld_%lld",
		 (long long)n->first_id, (long long)(e->date_us % 1000000007));
	return SPONGE_OK;
}

void sp_plan_test_envelope(sponge *sp, sp_envelope *e)
{
	char host[256];
	message_id_domain(sp, host);
	e->test = true;
	snprintf(e->subject, sizeof e->subject,
		 "[logsponge] %s: a test message (logsponge check --send)",
		 sp->host);
	snprintf(e->message_id, sizeof e->message_id,
		 "logsponge.test.%lld.%d@%s", (long long)e->date_us,
		 (int)getpid(), host);
	snprintf(e->boundary, sizeof e->boundary, "=_logsponge_test_%lld",
		 (long long)(e->date_us % 1000000007));
}

int64_t sp_waiting(const sp_tally *n)
{
	int64_t w = 0;
	for (int l = 0; l < 8; l++)
		w += n->waiting[l];
	return w;
}

void sp_plan_free(sp_batch *b)
{
	if (b->size.gz)
		fclose(b->size.gz);
	b->size.gz = NULL;
	tally_free(&b->n);
	sp_free(b->kinds);
	b->kinds = NULL;
	b->nkinds = 0;
}
