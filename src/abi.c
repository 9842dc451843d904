/* abi.c - the entry points that take a struct's size, so that the
 * structs callers pass in or get back can grow at their end without
 * breaking a program built against an older header: the library reads
 * and writes only as many bytes as the caller's struct has, and treats a
 * field the caller's struct lacks as zero. */
#include <string.h>

#include "internal.h"

/* Copy what both sides have; zero what only the caller has. */
static void give(void *to, size_t to_size, const void *from, size_t size)
{
	size_t n = to_size < size ? to_size : size;
	memcpy(to, from, n);
	if (to_size > n)
		memset((char *)to + n, 0, to_size - n);
}

int sponge_query_sized(sponge *sp, const sponge_filter *f, size_t f_size,
		       sponge_iter **out)
{
	SP_GUARD;
	if (!f)
		return sp_query(sp, NULL, out);
	sponge_filter full;
	memset(&full, 0, sizeof full);
	memcpy(&full, f, f_size < sizeof full ? f_size : sizeof full);
	return sp_query(sp, &full, out);
}

int sponge_stats_get_sized(sponge *sp, sponge_stats *out, size_t size)
{
	SP_GUARD;
	if (!out)
		return SPONGE_EINVAL;
	sponge_stats full;
	int rc = sp_stats_get(sp, &full);
	if (rc == SPONGE_OK)
		give(out, size, &full, sizeof full);
	return rc;
}

int sponge_get_policy_sized(const sponge *sp, sponge_policy *out,
			    size_t size)
{
	if (!out)
		return SPONGE_EINVAL;
	sponge_policy full;
	int rc = sp_get_policy(sp, &full);
	if (rc == SPONGE_OK)
		give(out, size, &full, sizeof full);
	return rc;
}

int sponge_flush_sized(sponge *sp, unsigned flags, sponge_writer out,
		       void *arg, sponge_flush_result *res, size_t res_size)
{
	SP_GUARD;
	sponge_flush_result full;
	int rc = sp_flush(sp, flags, out, arg, &full);
	if (res)
		give(res, res_size, &full, sizeof full);
	return rc;
}

int sponge_decide_rules_sized(sponge *sp, unsigned flags,
			      sponge_decision *out, size_t size)
{
	SP_GUARD;
	if (!out)
		return SPONGE_EINVAL;
	sponge_decision full;
	int rc = sp_decide(sp, flags, &full);
	give(out, size, &full, sizeof full);
	return rc;
}
