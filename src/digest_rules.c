/* digest_rules.c - what the noise rules did, in a message: records
 * ignored and dropped by rule, records counted again past a rule's
 * unless= (ESCALATING), rules that expire or did; in a heartbeat, what
 * waits and what was dropped. */
#include <string.h>

#include "flush.h"

/* Records the rules dropped since the last message. */
static int64_t drops(const sp_tally *n)
{
	int64_t k = 0;
	for (int i = 0; i < n->nrule_drops; i++)
		k += n->rule_drops[i].n;
	return k;
}

/* " (ssh-ok 1180, cron-cmd 24, …)": the five largest of t[0..n) */
static void rule_names(spbuf *o, const sp_rule_count *t, int n,
		       int64_t others)
{
	bool taken[SP_RULE_SLOTS] = {false};
	sb_adds(o, " (");
	for (int shown = 0; shown < 5 && shown < n; shown++) {
		int best = -1;
		for (int i = 0; i < n; i++)
			if (!taken[i] && (best < 0 || t[i].n > t[best].n))
				best = i;
		taken[best] = true;
		sb_printf(o, "%s%s %lld", shown ? ", " : "", t[best].name,
			  (long long)t[best].n);
	}
	sb_adds(o, n > 5 || others ? ", …)" : ")");
}

/* "; dropped 9310 (healthz 9310)" */
static void drops_part(spbuf *o, const sp_tally *n, int64_t dropped)
{
	if (!dropped)
		return;
	sb_printf(o, "; dropped %lld", (long long)dropped);
	rule_names(o, n->rule_drops, n->nrule_drops, 0);
}

/* "Ignored by rules: 1204 (ssh-ok 1180, cron-cmd 24); dropped 9310
 * (healthz 9310)": what the noise rules kept out of this message. */
static void rules_line(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	int64_t dropped = drops(n);
	if (!n->ignored && !dropped)
		return;
	spbuf *o = &c->line;
	sb_reset(o);
	sb_printf(o, "Ignored by rules: %lld", (long long)n->ignored);
	if (n->ignored)
		rule_names(o, n->rule_ignored, n->nrule_ignored,
			   n->ignored_others);
	drops_part(o, n, dropped);
	c->say(c, o->data, o->len);
}

void sp_digest_rules_heartbeat(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	int64_t dropped = drops(n);
	if (!n->ignored_waiting && !dropped)
		return;
	spbuf *o = &c->line;
	sb_reset(o);
	sb_printf(o, "Noise rules: %lld ignored record%s wait in the spool",
		  (long long)n->ignored_waiting,
		  n->ignored_waiting == 1 ? "" : "s");
	drops_part(o, n, dropped);
	sb_adds(o, ".");
	c->say(c, o->data, o->len);
}

/* "ESCALATING: 250 records counted again, their rules past unless=
 * (ssh-fail 250)" */
static void escalating_line(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	int64_t k = 0;
	for (int i = 0; i < n->nrule_escalated; i++)
		k += n->rule_escalated[i].n;
	if (!k)
		return;
	spbuf *o = &c->line;
	sb_reset(o);
	sb_printf(o, "ESCALATING: %lld record%s counted again, %s rule%s past "
		     "unless=", (long long)k, k == 1 ? "" : "s",
		  n->nrule_escalated == 1 ? "its" : "their",
		  n->nrule_escalated == 1 ? "" : "s");
	rule_names(o, n->rule_escalated, n->nrule_escalated, 0);
	c->say(c, o->data, o->len);
}

/* The rules of n that expire (past: expired) by `now`, as
 * "a on 2026-12-10, b on 2026-12-11" after head; false: none. */
static bool expiry_list(spbuf *o, const sp_tally *n, int64_t now, bool past,
			const char *head)
{
	bool any = false;
	for (int i = 0; i < n->nexpiring; i++) {
		const sp_rule_count *e = &n->expiring[i];
		if ((e->n <= now) != past)
			continue;
		char t[32];
		sponge_format_time(e->n, t);
		sb_printf(o, "%s%s on %.10s", any ? ", " : head, e->name, t);
		any = true;
	}
	return any;
}

/* "Rules expiring: ssh-ok on 2026-12-10; expired: old on 2026-12-01
 * (no longer applies)": until= within a week, before or after */
static void expiry_line(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	if (!n->nexpiring)
		return;
	spbuf *o = &c->line;
	sb_reset(o);
	int64_t now = c->b->env.date_us;
	bool coming = expiry_list(o, n, now, false, "Rules expiring: ");
	if (expiry_list(o, n, now, true, coming ? "; expired: "
						: "Rules expired: "))
		sb_adds(o, " (no longer applied)");
	c->say(c, o->data, o->len);
}

void sp_digest_rules(sp_composer *c)
{
	rules_line(c);
	escalating_line(c);
	expiry_line(c);
}
