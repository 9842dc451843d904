/* buf.c - allocation hooks and the growable string buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Every library allocation passes here, so that the test build can fail
 * the k-th one (testhooks.c; in a release build the check is constant
 * false and this is malloc). */
void *sp_malloc(size_t n)
{
	return sp_alloc_should_fail() ? NULL : malloc(n ? n : 1);
}

void *sp_realloc(void *p, size_t n)
{
	return sp_alloc_should_fail() ? NULL : realloc(p, n ? n : 1);
}

void sp_free(void *p) { free(p); }

char *sp_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = sp_malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static char sb_empty[1];

void sb_init(spbuf *b, size_t max)
{
	b->data = sb_empty;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : SIZE_MAX;
	b->failed = false;
}

void sb_free(spbuf *b)
{
	if (b->cap)
		sp_free(b->data);
	sb_init(b, b->max);
}

void sb_reset(spbuf *b)
{
	b->len = 0;
	b->data[0] = '\0';
	b->failed = false;
}

/* Make room for `extra` more bytes plus the NUL. */
bool sb_grow(spbuf *b, size_t extra)
{
	if (extra > b->max - b->len || b->len + extra + 1 < b->len) {
		b->failed = true;
		return false;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	char *p = sp_realloc(b->cap ? b->data : NULL, ncap);
	if (!p) {
		b->failed = true;
		return false;
	}
	if (!b->cap)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return true;
}

bool sb_add(spbuf *b, const void *p, size_t n)
{
	if (!sb_grow(b, n))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

bool sb_addc(spbuf *b, char c) { return sb_add(b, &c, 1); }
bool sb_adds(spbuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

bool sb_vprintf(spbuf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	char small[256];
	int n = vsnprintf(small, sizeof small, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->failed = true;
		return false;
	}
	if ((size_t)n < sizeof small)
		return sb_add(b, small, (size_t)n);
	if (!sb_grow(b, (size_t)n))
		return false;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return true;
}

bool sb_printf(spbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool ok = sb_vprintf(b, fmt, ap);
	va_end(ap);
	return ok;
}
