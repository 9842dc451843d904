/* tzif.c - is a TZif file (RFC 8536) whole and consistent?  GLib reads
 * a zone file trusting its counts; a damaged one (counts of 0xFF…) made
 * it read past its buffer.  This checks every count against the file's
 * size and every index against what it indexes, before GLib sees it. */
#define _GNU_SOURCE /* O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define TZIF_MAX (1u << 20) /* real ones are a few KiB */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* One header and its data block at *off (time size tsz: 4 or 8);
 * moves *off past them.  NULL when whole, else what is wrong. */
static const char *block(const unsigned char *f, size_t n, size_t *off,
			 size_t tsz)
{
	if (n - *off < 44 || memcmp(f + *off, "TZif", 4) != 0)
		return "no TZif header";
	const unsigned char *h = f + *off;
	uint32_t isut = be32(h + 20), isstd = be32(h + 24),
		 leap = be32(h + 28), times = be32(h + 32),
		 types = be32(h + 36), chars = be32(h + 40);
	if (types == 0 || types > 256 || chars == 0 || times > 1000000 ||
	    leap > 100000 || chars > 100000 || (isut && isut != types) ||
	    (isstd && isstd != types))
		return "impossible counts in its header";
	size_t need = (size_t)times * (tsz + 1) + (size_t)types * 6 + chars +
		      (size_t)leap * (tsz + 4) + isstd + isut;
	*off += 44;
	if (n - *off < need)
		return "shorter than its header says";
	const unsigned char *idx = f + *off + (size_t)times * tsz;
	for (uint32_t i = 0; i < times; i++)
		if (idx[i] >= types)
			return "a transition to a type that does not exist";
	const unsigned char *tt = idx + times;
	for (uint32_t i = 0; i < types; i++) {
		int32_t utoff = (int32_t)be32(tt + 6 * i);
		if (utoff < -89999 || utoff > 93599 || tt[6 * i + 4] > 1 ||
		    tt[6 * i + 5] >= chars)
			return "a local time type out of range";
	}
	if (tt[6 * types + chars - 1] != '\0')
		return "time zone names not terminated";
	*off += need;
	return NULL;
}

const char *sp_tzif_check(const char *path)
{
	static _Thread_local char why[160];
	unsigned char *f = sp_malloc(TZIF_MAX);
	if (!f)
		return "out of memory";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, f, TZIF_MAX) : -1;
	int e = errno;
	if (fd >= 0)
		close(fd);
	const char *bad = NULL;
	size_t off = 0;
	if (n < 0) {
		snprintf(why, sizeof why, "%s", strerror(e));
		bad = why;
	} else if ((size_t)n == TZIF_MAX) {
		bad = "too large for a zone file";
	} else if ((bad = block(f, (size_t)n, &off, 4)) == NULL && f[4] >= '2') {
		bad = block(f, (size_t)n, &off, 8);
		/* the footer: a TZ string between two newlines */
		if (!bad && ((size_t)n - off < 2 || f[off] != '\n' ||
			     f[n - 1] != '\n'))
			bad = "no footer";
	}
	sp_free(f);
	return bad;
}
