/* match.c - many patterns against one line at once, with Vectorscan
 * (Debian's libvectorscan, Hyperscan's maintained portable fork): all
 * patterns compile into one database and one scan of a line finds every
 * pattern that matches; the first of them (the lowest index) is the
 * answer, as "first rule wins" needs.  No handle, no I/O. */
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

#include "match.h"

struct sp_matcher {
	hs_database_t *db;
	hs_scratch_t *scratch;
};

/* Every pattern reports once (SINGLEMATCH); a '.' crosses line ends (a
 * record may hold several lines); an empty match counts (a rule "*"). */
#define FLAGS (HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL | HS_FLAG_ALLOWEMPTY)

int sp_matcher_build(const char *const *patterns, const unsigned *ids_in,
		     size_t n, sp_matcher **out, spbuf *why, long *bad)
{
	*out = NULL;
	*bad = -1;
	if (!n || n > 1000000)
		return n ? SPONGE_EINVAL : SPONGE_OK; /* nothing to match */
	sp_matcher *m = sp_malloc(sizeof *m);
	unsigned *flags = sp_malloc(n * sizeof *flags);
	unsigned *ids = sp_malloc(n * sizeof *ids);
	if (!m || !flags || !ids) {
		sp_free(m);
		sp_free(flags);
		sp_free(ids);
		return SPONGE_ENOMEM;
	}
	memset(m, 0, sizeof *m);
	for (size_t i = 0; i < n; i++) {
		flags[i] = FLAGS;
		ids[i] = ids_in ? ids_in[i] : (unsigned)i;
	}
	hs_compile_error_t *err = NULL;
	int rc = SPONGE_OK;
	if (hs_compile_multi(patterns, flags, ids, (unsigned)n, HS_MODE_BLOCK,
			     NULL, &m->db, &err) != HS_SUCCESS) {
		rc = SPONGE_ECONFIG;
		*bad = err && err->expression >= 0 ? err->expression : -1;
		sb_adds(why, err && err->message ? err->message : "cannot compile");
		hs_free_compile_error(err);
	} else if (hs_alloc_scratch(m->db, &m->scratch) != HS_SUCCESS) {
		rc = SPONGE_ENOMEM;
	}
	sp_free(flags);
	sp_free(ids);
	if (rc) {
		sp_matcher_free(m);
		return rc;
	}
	*out = m;
	return SPONGE_OK;
}

typedef struct scan_ctx {
	long first;
	sp_match_ok ok;
	void *arg;
	bool all;  /* every match to ok, the scan never stopped */
} scan_ctx;

/* A match: keep the lowest pattern index the caller accepts; index 0
 * cannot be beaten.  (Matches come in the order they end, not by
 * index.) */
static int on_match(unsigned int id, unsigned long long from,
		    unsigned long long to, unsigned int flags, void *ctx)
{
	(void)from, (void)to, (void)flags;
	scan_ctx *s = ctx;
	if (s->all) {
		s->ok(s->arg, (long)id);
		return 0;
	}
	if ((s->first < 0 || (long)id < s->first) &&
	    (!s->ok || s->ok(s->arg, (long)id)))
		s->first = (long)id;
	return s->first == 0; /* non-zero stops the scan */
}

long sp_matcher_first(sp_matcher *m, const char *text, size_t len,
		      sp_match_ok ok, void *arg)
{
	scan_ctx s = {-1, ok, arg, false};
	if (!m || len > 0xFFFFFFFFu)
		return -1;
	hs_error_t e = hs_scan(m->db, text, (unsigned)len, 0, m->scratch,
			       on_match, &s);
	if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED)
		return -1;
	return s.first;
}

void sp_matcher_all(sp_matcher *m, const char *text, size_t len,
		    sp_match_ok each, void *arg)
{
	scan_ctx s = {-1, each, arg, true};
	if (m && len <= 0xFFFFFFFFu)
		hs_scan(m->db, text, (unsigned)len, 0, m->scratch, on_match, &s);
}

uint64_t sp_matcher_key(const char *const *patterns, const unsigned *ids,
			size_t n)
{
	uint64_t h = SP_FNV_BASIS;
	for (const char *v = hs_version(); *v; v++)
		h = sp_fnv_byte(h, (unsigned char)*v);
	for (size_t i = 0; i < n; i++) {
		for (const char *p = patterns[i]; *p; p++)
			h = sp_fnv_byte(h, (unsigned char)*p);
		unsigned id = ids ? ids[i] : (unsigned)i;
		for (int b = 0; b < 4; b++)
			h = sp_fnv_byte(h, (unsigned char)(id >> (8 * b)));
		h = sp_fnv_byte(h, 0xFF);
	}
	return sp_fnv_byte(h, (unsigned char)FLAGS);
}

int sp_matcher_save(const sp_matcher *m, char **bytes, size_t *len)
{
	return m && hs_serialize_database(m->db, bytes, len) == HS_SUCCESS
		       ? SPONGE_OK : SPONGE_ENOMEM;
}

int sp_matcher_load(const char *bytes, size_t len, sp_matcher **out)
{
	*out = NULL;
	sp_matcher *m = sp_malloc(sizeof *m);
	if (!m)
		return SPONGE_ENOMEM;
	memset(m, 0, sizeof *m);
	if (hs_deserialize_database(bytes, len, &m->db) != HS_SUCCESS ||
	    hs_alloc_scratch(m->db, &m->scratch) != HS_SUCCESS) {
		sp_matcher_free(m);
		return SPONGE_EINVAL;
	}
	*out = m;
	return SPONGE_OK;
}

bool sp_matcher_accepts(const char *pattern)
{
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *err = NULL;
	bool ok = hs_expression_info(pattern, FLAGS, &info, &err) == HS_SUCCESS;
	free(info); /* allocated with the default allocator, malloc */
	hs_free_compile_error(err);
	return ok;
}

void sp_matcher_free(sp_matcher *m)
{
	if (!m)
		return;
	hs_free_scratch(m->scratch);
	hs_free_database(m->db);
	sp_free(m);
}
