/* digest_kinds.c - the digest's kinds and the spool's memory of them: a
 * kind no delivered message carried is NEW; one unseen for quiet_after
 * is BACK; one resolved and seen again is REGRESSED; a muted one is
 * never marked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest_kinds.h"
#include "store.h"

int sp_kinds_classify(sp_composer *c, sp_dkind *k, int n)
{
	int64_t quiet = c->sp->cfg.quiet_after_us;
	for (int i = 0; i < n; i++) {
		sp_kind_known kn;
		int rc = sp_store_kind_get(c->sp, k[i].fp, &kn);
		if (rc)
			return rc;
		k[i].mark = SP_MARK_NONE;
		if (!kn.known) {
			k[i].mark = SP_MARK_NEW;
		} else if (kn.state == SP_KIND_MUTED) {
			k[i].mark = SP_MARK_MUTED;
		} else if (kn.state == SP_KIND_RESOLVED) {
			k[i].mark = SP_MARK_REGRESSED;
			k[i].mark_at = kn.resolved;
		} else if (quiet && k[i].first - kn.last_seen >= quiet) {
			k[i].mark = SP_MARK_BACK;
			k[i].mark_at = kn.last_seen;
		}
	}
	return SPONGE_OK;
}

void sp_kind_mark(spbuf *o, const sp_dkind *k)
{
	char t[32];
	switch (k->mark) {
	case SP_MARK_NEW:
		sb_adds(o, "NEW ");
		break;
	case SP_MARK_BACK: /* "BACK after 41d" (days: quiet_after is long) */
		sb_printf(o, "BACK after %lldd ",
			  (long long)(sp_sub(k->first, k->mark_at) /
				      86400000000LL));
		break;
	case SP_MARK_REGRESSED:
		sponge_format_time(k->mark_at, t);
		sb_printf(o, "REGRESSED (resolved %.10s) ", t);
		break;
	default:
		break;
	}
}

/* Is k the first of k[0..i] with its fp (the one that speaks for it)? */
static bool first_of_fp(const sp_dkind *k, int i)
{
	for (int j = 0; j < i; j++)
		if (k[j].fp == k[i].fp)
			return false;
	return true;
}

void sp_kinds_new_line(sp_composer *c, const sp_dkind *k, int n)
{
	int by[8] = {0}, total = 0;
	for (int i = 0; i < n; i++)
		if (k[i].mark == SP_MARK_NEW && first_of_fp(k, i)) {
			by[k[i].level & 7]++;
			total++;
		}
	const sp_envelope *e = &c->b->env;
	if (!total && !e->learn_days)
		return;
	spbuf *o = &c->line;
	sb_reset(o);
	sb_printf(o, "New kinds: %d", total);
	const char *sep = " (";
	for (int l = 0; l < 8; l++)
		if (by[l]) {
			sb_printf(o, "%s%d %s", sep, by[l], sponge_level_name(l));
			sep = ", ";
		}
	if (total)
		sb_adds(o, ")");
	if (e->learn_days) /* flush_on_new waits until it has learnt */
		sb_printf(o, "; learning, day %d of %d", e->learn_day,
			  e->learn_days);
	c->say(c, o->data, o->len);
}

static int by_fp(const void *pa, const void *pb)
{
	const sp_dkind *a = *(const sp_dkind *const *)pa;
	const sp_dkind *b = *(const sp_dkind *const *)pb;
	if (a->fp != b->fp)
		return a->fp < b->fp ? -1 : 1;
	return a->level - b->level; /* the most severe first */
}

/* k (sorted by fp) merged into one sp_kind_seen per fp. */
static size_t merge(const sp_dkind **k, int n, sp_kind_seen *out, int nb[8])
{
	size_t m = 0;
	for (int i = 0; i < n; i++) {
		if (i && k[i]->fp == k[i - 1]->fp) {
			sp_kind_seen *s = &out[m - 1];
			s->count += k[i]->count;
			s->first = k[i]->first < s->first ? k[i]->first : s->first;
			s->last = k[i]->last > s->last ? k[i]->last : s->last;
			continue;
		}
		sp_kind_seen *s = &out[m++];
		*s = (sp_kind_seen){k[i]->fp, k[i]->level, k[i]->count,
				    k[i]->first, k[i]->last, "", ""};
		snprintf(s->tag, sizeof s->tag, "%s", k[i]->tag);
		snprintf(s->sample, sizeof s->sample, "%s", k[i]->text);
		if (k[i]->mark == SP_MARK_NEW || k[i]->mark == SP_MARK_REGRESSED)
			nb[k[i]->level & 7]++;
	}
	return m;
}

int sp_kinds_to_batch(sponge *sp, const sp_dkind *k, int n, sp_batch *b)
{
	sp_free(b->kinds);
	b->kinds = NULL;
	b->nkinds = 0;
	memset(b->new_kinds, 0, sizeof b->new_kinds);
	if (n <= 0)
		return SPONGE_OK;
	const sp_dkind **p = sp_malloc((size_t)n * sizeof *p);
	sp_kind_seen *out = sp_malloc((size_t)n * sizeof *out);
	if (!p || !out) {
		sp_free(p);
		sp_free(out);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++)
		p[i] = &k[i];
	qsort(p, (size_t)n, sizeof *p, by_fp);
	b->nkinds = merge(p, n, out, b->new_kinds);
	b->kinds = out;
	sp_free(p);
	return SPONGE_OK;
}
