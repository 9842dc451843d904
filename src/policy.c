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

/* Would the records go now, min_interval and heartbeat aside? */
static bool due(const sponge_policy *p, const sp_policy_in *in, char *why,
		size_t n)
{
	int64_t have = at_or_above(in->by_level, p->count_level);
	if (!in->pending) {
		snprintf(why, n, "not sending: nothing pending");
		return false;
	}
	if (in->force) {
		snprintf(why, n, "sending: --force (%lld pending)",
			 (long long)in->pending);
		return true;
	}
	if (p->flush_level >= 0) {
		int64_t urgent = at_or_above(in->by_level, p->flush_level);
		if (urgent) {
			snprintf(why, n, "sending: flush_level: %lld record%s "
					 "at %s or above",
				 (long long)urgent, urgent == 1 ? "" : "s",
				 sponge_level_name(p->flush_level));
			return true;
		}
	}
	if (have >= p->threshold) {
		snprintf(why, n, "sending: threshold: %lld of %lld record%s at "
				 "%s or above",
			 (long long)have, (long long)p->threshold,
			 p->threshold == 1 ? "" : "s",
			 sponge_level_name(p->count_level));
		return true;
	}
	int64_t age = sp_sub(in->now, in->oldest_us);
	if (p->max_age_us && age > p->max_age_us) {
		snprintf(why, n, "sending: max_age: the oldest record came "
				 "%llds ago",
			 (long long)(age / 1000000));
		return true;
	}
	snprintf(why, n, "not sending: %lld of %lld record%s at %s or above",
		 (long long)have, (long long)p->threshold,
		 p->threshold == 1 ? "" : "s",
		 sponge_level_name(p->count_level));
	return false;
}

int sp_policy(const sponge_policy *p, const sp_policy_in *in, char *why,
	      size_t n)
{
	bool go = due(p, in, why, n);
	int64_t since = sp_sub(in->now, in->last_us);
	if (go && !in->force && p->min_interval_us && in->last_us &&
	    since < p->min_interval_us) {
		/* due, but held back: these records triggered a send, so
		 * they are not expired either */
		char ago[32], left[32];
		sponge_format_span(since, ago, sizeof ago);
		sponge_format_span(p->min_interval_us - since, left,
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
