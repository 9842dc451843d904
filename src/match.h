/* match.h - many patterns against one line at once (match.c). */
#ifndef SPONGE_MATCH_H
#define SPONGE_MATCH_H

#include "internal.h"

typedef struct sp_matcher sp_matcher;

/* Compile n patterns (Vectorscan's regular expressions: PCRE syntax
 * without back-references or look-around; anchor them as wanted) into
 * one matcher, pattern i reported as ids[i] (NULL: i).  On a pattern the
 * engine cannot
 * take: SPONGE_ECONFIG, *bad its position in patterns (-1: the set as a
 * whole) and why the engine's words.  n == 0 gives SPONGE_OK and *out
 * NULL, a matcher that matches nothing. */
SP_HIDDEN int sp_matcher_build(const char *const *patterns,
			       const unsigned *ids, size_t n,
			       sp_matcher **out, spbuf *why, long *bad);
/* The lowest id of a pattern that matches anywhere in text[0..len) and
 * that ok(arg, id) accepts (ok NULL: every one), or -1 (none, no
 * matcher, or a text the engine refuses). */
typedef bool (*sp_match_ok)(void *arg, long index);
SP_HIDDEN long sp_matcher_first(sp_matcher *m, const char *text, size_t len,
				sp_match_ok ok, void *arg);
/* Every pattern that matches text[0..len), each once, to each(arg, id)
 * (its answer is not used). */
SP_HIDDEN void sp_matcher_all(sp_matcher *m, const char *text, size_t len,
			      sp_match_ok each, void *arg);
/* What a compiled set is known by: the engine's version, the patterns
 * and their ids (a cache's key). */
SP_HIDDEN uint64_t sp_matcher_key(const char *const *patterns,
				  const unsigned *ids, size_t n);
/* The compiled database as bytes (free() them), and back: a matcher
 * from bytes the engine checks (SPONGE_EINVAL when not its). */
SP_HIDDEN int sp_matcher_save(const sp_matcher *m, char **bytes, size_t *len);
SP_HIDDEN int sp_matcher_load(const char *bytes, size_t len,
			      sp_matcher **out);
/* Would the engine take this pattern (alone)? */
SP_HIDDEN bool sp_matcher_accepts(const char *pattern);
SP_HIDDEN void sp_matcher_free(sp_matcher *m);

#endif
