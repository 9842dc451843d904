/* policy.c - the [policy] rules: one pure function from the counts, the
 * config, the time and the last message to a verdict and its reason.
 * sponge_flush() acts on it; sponge_decide() (status) shows it. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int64_t at_or_above(const int64_t by_level[8], int level)
{
	int64_t n = 0;
	for (int l = 0; l <= level && l < 8; l++)
		n += by_level[l];
	return n;
}

void sp_policy_rules(const sponge_policy *p, const sp_policy_in *in,
		     sponge_decision *d)
{
	sponge_rule *t = &d->threshold, *f = &d->flush_level, *a = &d->max_age;
	*t = (sponge_rule){p->threshold > 0, 0, p->count_level,
			   at_or_above(in->by_level, p->count_level),
			   p->threshold};
	t->met = t->set && in->pending && t->have >= t->need;
	*f = (sponge_rule){p->flush_level >= 0, 0, p->flush_level, 0, 1};
	if (f->set)
		f->have = at_or_above(in->by_level, p->flush_level);
	f->met = f->set && f->have > 0;
	*a = (sponge_rule){p->max_age_us > 0, 0, -1,
			   in->pending ? sp_sub(in->now, in->oldest_us) : 0,
			   p->max_age_us};
	a->met = a->set && in->pending && a->have > a->need;
}

/* Would the records go now, min_interval and heartbeat aside? */
static bool due(const sponge_policy *p, const sp_policy_in *in, char *why,
		size_t n)
{
	sponge_decision d;
	sp_policy_rules(p, in, &d);
	const sponge_rule *t = &d.threshold;
	if (!in->pending) {
		snprintf(why, n, "not sending: nothing pending");
		return false;
	}
	if (in->force) {
		snprintf(why, n, "sending: --force (%lld pending)",
			 (long long)in->pending);
		return true;
	}
	if (p->flush_on_new >= 0 && !in->learning &&
	    in->new_pending >= (p->new_min_count > 0 ? p->new_min_count : 1)) {
		snprintf(why, n, "sending: flush_on_new: %lld record%s of a new "
				 "kind at %s or above",
			 (long long)in->new_pending,
			 in->new_pending == 1 ? "" : "s",
			 sponge_level_name(p->flush_on_new));
		return true;
	}
	if (in->runs_due) {
		snprintf(why, n, "sending: job %s%s", in->run_why,
			 in->runs_due > 1 ? " (and other runs)" : "");
		return true;
	}
	if (d.flush_level.met) {
		snprintf(why, n, "sending: flush_level: %lld record%s at %s or "
				 "above",
			 (long long)d.flush_level.have,
			 d.flush_level.have == 1 ? "" : "s",
			 sponge_level_name(p->flush_level));
		return true;
	}
	if (t->met) { /* ("6 of 5 records" read oddly) */
		snprintf(why, n, "sending: threshold: %lld record%s at %s or "
				 "above (threshold %lld)",
			 (long long)t->have, t->have == 1 ? "" : "s",
			 sponge_level_name(t->level), (long long)t->need);
		return true;
	}
	if (t->set)
		snprintf(why, n, "not sending: %lld of %lld record%s at %s or "
				 "above",
			 (long long)t->have, (long long)t->need,
			 t->need == 1 ? "" : "s", sponge_level_name(t->level));
	else /* flush_level (or max_age) alone decides */
		snprintf(why, n, "not sending: %lld record%s wait, none at "
				 "flush_level %s or above",
			 (long long)in->pending, in->pending == 1 ? "" : "s",
			 p->flush_level >= 0 ? sponge_level_name(p->flush_level)
					     : "(none)");
	if (d.max_age.met) {
		snprintf(why, n, "sending: max_age: the oldest record came "
				 "%llds ago",
			 (long long)(d.max_age.have / 1000000));
		return true;
	}
	return false;
}

int sp_policy(const sponge_policy *p, const sp_policy_in *in, char *why,
	      size_t n)
{
	bool go = due(p, in, why, n);
	int64_t since = sp_sub(in->now, in->last_us);
	int64_t sent = sp_sub(in->now, in->sent_us);
	/* a job's failed run mails at once, as --force would */
	if (go && !in->force && !in->runs_due && p->min_interval_us &&
	    in->sent_us &&
	    sent < p->min_interval_us) {
		/* due, but held back: these records triggered a send, so
		 * they are not expired either */
		char ago[32], left[32];
		sponge_format_span(sent, ago, sizeof ago);
		sponge_format_span(p->min_interval_us - sent, left,
				   sizeof left);
		snprintf(why, n,
			 "not sending: min_interval: the last message went %s "
			 "ago, the next may go in %s (%lld records wait)",
			 ago, left, (long long)in->pending);
		return SPONGE_VERDICT_HOLD;
	}
	if (go)
		return SPONGE_VERDICT_SEND;
	if (p->heartbeat_us && in->last_us && since >= p->heartbeat_us) {
		snprintf(why, n, "sending: heartbeat: no message for %llds",
			 (long long)(since / 1000000));
		return SPONGE_VERDICT_HEARTBEAT;
	}
	return SPONGE_VERDICT_NONE;
}
