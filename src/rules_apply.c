/* rules_apply.c - rules apply: the pending records judged again by the
 * rules as they are now (after an edit), each from its original level. */
#include "store.h"

typedef struct apply_ctx {
	sponge *sp;
	int64_t now;
} apply_ctx;

static void rejudge(void *arg, const sp_rejudge_row *r, sp_rejudged *out)
{
	apply_ctx *c = arg;
	sponge_judgement j;
	*out = (sp_rejudged){r->e.level, -1, -1, false};
	if (sp_rules_judge_ingest(c->sp, &r->e, NULL, 0, r->pid, c->now, &j) !=
		    SPONGE_OK ||
	    j.rule < 0 || (size_t)j.rule >= c->sp->nhits)
		return;
	out->rule = (int)j.rule;
	out->stored = sp_verdict_level(&j, r->e.level, &out->orig_level,
				       &out->drop);
}

int sponge_rules_apply(sponge *sp, int64_t now_us, int64_t *changed)
{
	SP_GUARD;
	if (changed)
		*changed = 0;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	int rc = sponge_rules_load(sp);
	apply_ctx c = {sp, now_us};
	int64_t after = 0, n = 0;
	bool more = rc == SPONGE_OK;
	while (rc == SPONGE_OK && more)
		rc = sp_store_rejudge(sp, &after, rejudge, &c, &n, &more);
	if (changed)
		*changed = n;
	return rc;
}
