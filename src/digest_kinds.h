/* digest_kinds.h - a kind of problem as the digest counts it, and what
 * the spool's memory of kinds says of it (digest_kinds.c). */
#ifndef SPONGE_DIGEST_KINDS_H
#define SPONGE_DIGEST_KINDS_H

#include "flush.h"

#define KIND_TEXT 200

/* What the spool's kinds say of a kind in this message. */
enum { SP_MARK_NONE, SP_MARK_NEW, SP_MARK_BACK, SP_MARK_REGRESSED,
       SP_MARK_MUTED };

typedef struct sp_dkind {
	uint64_t key, exact;   /* masked key (with the level); exact hash of
				  the first */
	uint64_t fp;           /* tag and masked first line (no level) */
	bool varies;           /* not all its records say the same */
	bool hosts;            /* on more than one host */
	bool escalating;       /* some record passed its rule's unless= */
	int level;
	int mark;              /* SP_MARK_* */
	int64_t mark_at;       /* BACK: last seen; REGRESSED: resolved */
	int64_t count, first, last;
	char tag[48];
	char host[64];
	char text[KIND_TEXT];  /* the first one's first line, cut */
} sp_dkind;

/* Look each of k[0..n) up in the spool's kinds and mark it. */
SP_HIDDEN int sp_kinds_classify(sp_composer *c, sp_dkind *k, int n);
/* The mark as the attention block writes it before the text ("NEW ",
 * "BACK after 41d ", "REGRESSED (resolved 2026-11-02) "). */
SP_HIDDEN void sp_kind_mark(spbuf *o, const sp_dkind *k);
/* "New kinds: 3 (2 err, 1 warning)" (nothing when none). */
SP_HIDDEN void sp_kinds_new_line(sp_composer *c, const sp_dkind *k, int n);
/* The kinds of k[0..n), one per fp, into b (b->kinds, b->new_kinds). */
SP_HIDDEN int sp_kinds_to_batch(sponge *sp, const sp_dkind *k, int n,
				sp_batch *b);

#endif
