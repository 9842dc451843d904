/* Unit tests: the [policy] rules, one table row per case (sp_policy is
 * pure: counts, config, now and the last message in, verdict out). */
#include <stdio.h>
#include <check.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define S 1000000LL /* a second */
#define NOW (1795255200LL * S)

static const struct policy_case {
	const char *name;
	/* policy */
	int64_t threshold;
	int count_level, flush_level;
	int64_t max_age, min_interval, heartbeat;
	/* input */
	int64_t by_level[8];
	int64_t oldest_ago, last_ago; /* -1: no last message */
	bool force;
	/* expected */
	int verdict;
	const char *reason; /* substring */
} cases[] = {
	{"empty", 1, 7, -1, 0, 0, 0, {0}, 0, -1, false,
	 SPONGE_VERDICT_NONE, "not sending: nothing pending"},
	{"one record, threshold 1", 1, 7, -1, 0, 0, 0,
	 {0, 0, 0, 0, 0, 0, 1, 0}, 5, -1, false, SPONGE_VERDICT_SEND,
	 "sending: threshold: 1 record at debug or above (threshold 1)"},
	{"below threshold", 5, 4, -1, 0, 0, 0, {0, 0, 0, 1, 1, 0, 9, 0}, 5,
	 -1, false, SPONGE_VERDICT_NONE,
	 "not sending: 2 of 5 records at warning or above"},
	{"threshold met at count_level", 2, 4, -1, 0, 0, 0,
	 {0, 0, 0, 1, 1, 0, 0, 0}, 5, -1, false, SPONGE_VERDICT_SEND,
	 "threshold: 2 records at warning or above (threshold 2)"},
	{"flush_level wins over the count", 100, 7, 2, 0, 0, 0,
	 {0, 0, 1, 0, 0, 0, 3, 0}, 5, -1, false, SPONGE_VERDICT_SEND,
	 "flush_level: 1 record at crit or above"},
	{"flush_level not reached", 100, 7, 2, 0, 0, 0,
	 {0, 0, 0, 4, 0, 0, 3, 0}, 5, -1, false, SPONGE_VERDICT_NONE,
	 "not sending"},
	{"max_age", 100, 7, -1, 3600 * S, 0, 0, {0, 0, 0, 0, 0, 0, 1, 0},
	 3601, -1, false, SPONGE_VERDICT_SEND, "max_age: the oldest record "
					     "came 3601s ago"},
	{"max_age not yet", 100, 7, -1, 3600 * S, 0, 0,
	 {0, 0, 0, 0, 0, 0, 1, 0}, 3599, -1, false, SPONGE_VERDICT_NONE,
	 "not sending"},
	{"force", 100, 7, -1, 0, 0, 0, {0, 0, 0, 0, 0, 0, 1, 0}, 1, -1, true,
	 SPONGE_VERDICT_SEND, "--force (1 pending)"},
	{"min_interval holds", 1, 7, -1, 0, 900 * S, 0,
	 {1, 0, 0, 0, 0, 0, 0, 0}, 1, 60, false, SPONGE_VERDICT_HOLD,
	 "min_interval: the last message went 1m 0s ago, the next may go in "
	 "14m 0s (1 records wait)"},
	{"min_interval passed", 1, 7, -1, 0, 900 * S, 0,
	 {1, 0, 0, 0, 0, 0, 0, 0}, 1, 901, false, SPONGE_VERDICT_SEND,
	 "sending"},
	{"force goes through min_interval", 1, 7, -1, 0, 900 * S, 0,
	 {1, 0, 0, 0, 0, 0, 0, 0}, 1, 60, true, SPONGE_VERDICT_SEND,
	 "--force"},
	{"heartbeat", 100, 7, -1, 0, 0, 3600 * S, {0, 0, 0, 0, 0, 0, 2, 0},
	 10, 3600, false, SPONGE_VERDICT_HEARTBEAT,
	 "heartbeat: no message for 3600s"},
	{"heartbeat not yet", 100, 7, -1, 0, 0, 3600 * S, {0}, 0, 3599,
	 false, SPONGE_VERDICT_NONE, "nothing pending"},
	{"heartbeat without a last message", 100, 7, -1, 0, 0, 3600 * S,
	 {0}, 0, -1, false, SPONGE_VERDICT_NONE, "nothing pending"},
	{"a last message in the future holds at most min_interval", 1, 7,
	 -1, 0, 900 * S, 0, {1, 0, 0, 0, 0, 0, 0, 0}, 1, -30 * 86400, false,
	 SPONGE_VERDICT_HOLD, "min_interval"},
	{"extreme times do not overflow", 100, 7, -1, 3600 * S, 0, 0,
	 {0, 0, 0, 0, 0, 0, 1, 0}, INT64_MIN / S, -1, false,
	 SPONGE_VERDICT_SEND, "max_age"},
};

/* flush_on_new sends for records of a new kind below the threshold,
 * once new_min_count wait, and not while learning. */
START_TEST(flush_on_new)
{
	sponge_policy p = {100, 7, -1, 0, 0, 0, 0, SPONGE_ERR, 2, 0, 0};
	sp_policy_in in;
	memset(&in, 0, sizeof in);
	in.pending = in.by_level[SPONGE_ERR] = 3;
	in.now = NOW;
	char why[256];
	in.new_pending = 1; /* under the floor */
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_NONE);
	in.new_pending = 2;
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_SEND);
	ck_assert_str_eq(why, "sending: flush_on_new: 2 records of a new kind "
			      "at err or above");
	in.learning = true;
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_NONE);
	in.learning = false;
	p.flush_on_new = -1;
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_NONE);
}
END_TEST

/* A job's failed run sends below the threshold, min_interval aside. */
START_TEST(failed_run_sends_at_once)
{
	sponge_policy p = {100, 7, -1, 0, 0, 3600 * S, 0, -1, 1, 0, 0};
	sp_policy_in in;
	memset(&in, 0, sizeof in);
	in.pending = in.by_level[SPONGE_INFO] = 4;
	in.now = NOW;
	in.sent_us = in.last_us = NOW - 60 * S; /* a message a minute ago */
	char why[256];
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_NONE);
	in.runs_due = 2;
	snprintf(in.run_why, sizeof in.run_why, "backup failed (exit 23)");
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_SEND);
	ck_assert_str_eq(why, "sending: job backup failed (exit 23) (and "
			      "other runs)");
	in.pending = in.by_level[SPONGE_INFO] = 0; /* its records gone */
	ck_assert_int_eq(sp_policy(&p, &in, why, sizeof why),
			 SPONGE_VERDICT_NONE);
}
END_TEST

START_TEST(policy_table)
{
	const struct policy_case *c = &cases[_i];
	sponge_policy p = {c->threshold, c->count_level, c->flush_level,
			   c->max_age,	 0,	 c->min_interval,
			   c->heartbeat, -1,	 1,
			   0,		 0};
	sp_policy_in in;
	memset(&in, 0, sizeof in);
	for (int l = 0; l < 8; l++) {
		in.by_level[l] = c->by_level[l];
		in.pending += c->by_level[l];
	}
	in.now = NOW;
	in.oldest_us = c->oldest_ago == INT64_MIN / S
			       ? INT64_MIN
			       : NOW - c->oldest_ago * S;
	in.last_us = c->last_ago == -1 ? 0 : NOW - c->last_ago * S;
	in.sent_us = in.last_us; /* (a message went then) */
	in.force = c->force;
	char why[256];
	int v = sp_policy(&p, &in, why, sizeof why);
	ck_assert_msg(v == c->verdict, "%s: verdict %d, want %d (%s)", c->name,
		      v, c->verdict, why);
	ck_assert_msg(strstr(why, c->reason), "%s: reason \"%s\"", c->name,
		      why);
	/* the rules status shows say the same */
	sponge_decision d;
	sp_policy_rules(&p, &in, &d);
	bool any = d.threshold.met || d.flush_level.met || d.max_age.met;
	bool due = v == SPONGE_VERDICT_SEND || v == SPONGE_VERDICT_HOLD;
	ck_assert_msg(c->force || any == due, "%s: a rule met %d, verdict %d",
		      c->name, any, v);
	ck_assert(!strstr(why, "sending: threshold") || d.threshold.met);
	ck_assert(!strstr(why, "sending: flush_level") || d.flush_level.met);
	ck_assert(!strstr(why, "sending: max_age") || d.max_age.met);
	int64_t have = 0;
	for (int l = 0; l <= c->count_level; l++)
		have += c->by_level[l];
	ck_assert_int_eq(d.threshold.have, have);
	ck_assert_int_eq(d.threshold.need, c->threshold);
	ck_assert_int_eq(d.flush_level.set, c->flush_level >= 0);
	ck_assert_int_eq(d.max_age.set, c->max_age > 0);
}
END_TEST

Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *t = tcase_create("core");
	tcase_add_test(t, flush_on_new);
	tcase_add_test(t, failed_run_sends_at_once);
	tcase_add_loop_test(t, policy_table, 0,
			    (int)(sizeof cases / sizeof cases[0]));
	suite_add_tcase(s, t);
	return s;
}
