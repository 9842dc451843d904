/* size.c - the size plan: within mail.max_size and the server's SIZE,
 * the plain message; past them the most severe records in the body and
 * the complete log as a gzip attachment; past even that, a smaller batch
 * (the rest stays pending).  Above the composer: when only composing can
 * tell, the message is composed once and the composer keeps it for
 * sending. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "flush.h"

/* Would the plain message (no attachment) stay within b->size.max_size?
 * A sure bound first; past it the composer composes the message once
 * and keeps it, so that sending plays it back instead of composing it
 * again. */
static int plain_fits(sponge *sp, sp_batch *b, sp_composer *comp,
		      bool *fits)
{
	/* quoted-printable at most triples a byte and adds a soft break per
	 * 25; a record line adds under 130 bytes of time, level, host and
	 * folding note; headers and summary under 16 KiB */
	uint64_t most = (uint64_t)b->n.msg_bytes * 3 + (uint64_t)b->n.msg_bytes / 8 +
			(uint64_t)b->n.count * 130 + (16u << 10);
	if (sp->cfg.html) /* the HTML part: escaping up to 6x, a row's tags */
		most += (uint64_t)b->n.msg_bytes * 19 + (uint64_t)b->n.count * 400;
	*fits = true;
	b->size.estimate = most < b->size.max_size ? most : b->size.max_size;
	if (most <= b->size.max_size)
		return SPONGE_OK;
	if ((uint64_t)b->n.msg_bytes > b->size.max_size) {
		*fits = false; /* the messages alone are too big */
		return SPONGE_OK;
	}
	uint64_t size;
	int rc = sp_compose_measure(comp, b->size.max_size, fits, &size);
	if (rc == SPONGE_OK && *fits)
		b->size.estimate = size; /* exact */
	return rc;
}

/* gzip the batch's log (one line per record, oldest first) into a
 * temporary file, within `budget` compressed bytes: when it does not fit,
 * stop at an earlier record and return its id in *last (else 0); the id
 * of the last record it holds in *end.  Memory is zlib's state and one
 * line. */
typedef struct gz_result {
	FILE *f;
	uint64_t bytes, raw; /* compressed; the log's own */
	int64_t last, end;
} gz_result;

static int gzip_log(sponge *sp, const sp_batch *b, uint64_t budget,
		    gz_result *g)
{
	memset(g, 0, sizeof *g);
	FILE *f = tmpfile();
	if (!f)
		return sp_fail(sp, SPONGE_EIO, "attachment: temporary file: %s",
			       strerror(errno));
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)) {
		fclose(f);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	sp_batch_source src;
	sp_batch_source_init(&src, sp, b);
	int rc = src.base.open(&src.base, SP_OLDEST_FIRST);
	spbuf line;
	sb_init(&line, 0);
	unsigned char buf[65536];
	int64_t tsec = 0, prev = 0;
	char tbuf[32];
	const sponge_record *r;
	/* deflate keeps up to ~64 KiB to itself: cut early enough */
	uint64_t margin = budget / 16 + (32u << 10);
	int zr = Z_OK, q = SPONGE_OK;
	while (rc == SPONGE_OK && (q = src.base.next(&src.base, &r)) == SPONGE_ROW) {
		if (z.total_out + margin > budget && prev) {
			g->last = prev;
			break;
		}
		sb_reset(&line);
		sp_record_line(&line, r, sp->host, &tsec, tbuf, NULL);
		sb_addc(&line, '\n');
		if (line.failed) {
			rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
			break;
		}
		z.next_in = (unsigned char *)line.data;
		z.avail_in = (unsigned)line.len;
		while (z.avail_in && rc == SPONGE_OK) {
			z.next_out = buf;
			z.avail_out = sizeof buf;
			zr = deflate(&z, Z_NO_FLUSH);
			size_t have = sizeof buf - z.avail_out;
			if (zr == Z_STREAM_ERROR ||
			    fwrite(buf, 1, have, f) != have)
				rc = sp_fail(sp, SPONGE_EIO, "attachment: %s",
					     strerror(errno));
		}
		prev = r->id;
	}
	if (rc == SPONGE_OK && q != SPONGE_ROW && q != SPONGE_DONE)
		rc = q;
	do { /* the rest */
		z.next_out = buf;
		z.avail_out = sizeof buf;
		zr = deflate(&z, Z_FINISH);
		size_t have = sizeof buf - z.avail_out;
		if (rc == SPONGE_OK && fwrite(buf, 1, have, f) != have)
			rc = sp_fail(sp, SPONGE_EIO, "attachment: %s",
				     strerror(errno));
	} while (zr == Z_OK && rc == SPONGE_OK);
	g->bytes = z.total_out;
	g->raw = z.total_in;
	g->end = prev;
	deflateEnd(&z);
	src.base.close(&src.base);
	sb_free(&line);
	if (rc == SPONGE_OK && fflush(f) != 0)
		rc = sp_fail(sp, SPONGE_EIO, "attachment: %s", strerror(errno));
	if (rc != SPONGE_OK) {
		fclose(f);
		return rc;
	}
	g->f = f;
	return SPONGE_OK;
}

/* The batch shrinks to the records up to `last` at levels below
 * level_cap: a tally and an envelope of its own; the date, wait, reason
 * and size cap stay. */
static int shrink(sponge *sp, sp_batch *b, int64_t last, int level_cap)
{
	int rc = sp_plan_tally_capped(sp, last, level_cap, sp->cfg.max_size,
				      &b->n);
	return rc ? rc : sp_plan_envelope(sp, &b->n, &b->env, NULL);
}

/* The least severe level batch n holds records of. */
static int least_severe(const sp_tally *n)
{
	int l = sp_batch_max_level(n);
	while (l > n->highest && !n->by_level[l])
		l--;
	return l;
}

/* The least severe level whose records, with all the more severe ones,
 * take no more than `raw` bytes of log (a line is its message and tag
 * and about 40 bytes of time and level); at least the highest. */
static int levels_that_fit(const sp_tally *n, uint64_t raw)
{
	uint64_t sum = 0;
	int keep = n->highest;
	for (int l = 0; l <= sp_batch_max_level(n); l++) {
		sum += (uint64_t)n->bytes_by_level[l] + 40u * (uint64_t)n->by_level[l];
		if (sum > raw)
			break;
		if (l >= n->highest)
			keep = l;
	}
	return keep;
}


/*
 * Past mail.max_size the body keeps the summary and the most severe
 * records that fit, and the complete log goes along as a gzip attachment.
 * When even that would not fit, the batch shrinks to the oldest records
 * whose log fits; the rest stays pending.
 */
int sp_plan_size(sponge *sp, sp_batch *b, sp_composer *comp,
		 uint64_t server_max)
{
	/* the server's SIZE, from its EHLO on this very connection, lowers
	 * the cap (less 4 KiB for the Received lines and envelope a server
	 * counts too) */
	b->size.max_size = sp->cfg.max_size;
	if (server_max > (64u << 10) && server_max - 4096 < b->size.max_size)
		b->size.max_size = server_max - 4096;
	bool fits;
	int rc = plain_fits(sp, b, comp, &fits);
	if (rc || fits)
		return rc;
	sp_compose_replan(comp); /* what it composed or surveyed is moot */
	uint64_t max = b->size.max_size;
	/* base64 turns 57 bytes into a 78-byte line; keep 24 KiB for the
	 * headers, the summary and a few records in the body */
	uint64_t budget = (max - (24u << 10)) / 78 * 57;
	int64_t before = sp_waiting(&b->n);
	for (int attempt = 0; attempt < 16; attempt++) {
		gz_result g;
		if ((rc = gzip_log(sp, b, budget, &g)))
			return rc;
		if (g.bytes > (max - (24u << 10)) / 78 * 57) {
			fclose(g.f); /* over after all: aim lower */
			budget = budget / 10 * 8;
			continue;
		}
		/* too much even compressed: keep the most severe levels whose
		 * log fits (an err never waits behind 51,557 info records),
		 * and of the highest level alone, the oldest records */
		int cur = least_severe(&b->n);
		int keep = g.last ? levels_that_fit(&b->n, g.raw) : cur;
		if (g.last && cur > b->n.highest) {
			fclose(g.f);
			if ((rc = shrink(sp, b, b->n.max_id,
					 (keep < cur ? keep : b->n.highest) + 1)))
				return rc;
			continue;
		}
		/* the batch is what the attachment holds: a partial tally
		 * that fits whole becomes exact up to its last record */
		int64_t upto = g.last ? g.last : b->n.partial ? g.end : 0;
		if (upto && (rc = shrink(sp, b, upto, cur + 1)) != SPONGE_OK) {
			fclose(g.f);
			return rc;
		}
		if (sp_waiting(&b->n) > before) /* left for the next one */
			b->size.cut = sp_waiting(&b->n) - before;
		b->size.gz = g.f;
		b->size.gz_bytes = g.bytes;
		uint64_t b64 = (g.bytes + 56) / 57 * 78;
		b->size.body_budget = (int64_t)(max - b64) - 2048;
		/* logsponge-HOST-20261121T100000Z.log.gz: the host cut to 24
		 * characters keeps " filename=\"…\"" within 78 octets */
		char t[32];
		sponge_format_time(b->env.date_us, t);
		snprintf(b->size.gz_name, sizeof b->size.gz_name,
			 "logsponge-%.24s-%.4s%.2s%.2sT%.2s%.2s%.2sZ.log.gz",
			 sp->host, t, t + 5, t + 8, t + 11, t + 14, t + 17);
		for (char *p = b->size.gz_name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || strchr(".-_", *p)))
				*p = '_';
		return SPONGE_OK;
	}
	return sp_fail(sp, SPONGE_EPERMFAIL,
		       "not even the first record fits in %llu bytes "
		       "(mail.max_size, or the server's SIZE), compressed",
		       (unsigned long long)max);
}
