/* summary.c - the line that names a record of several lines: what the
 * attention block, the kinds, the subject and folding go by. */
#include <string.h>

#include "internal.h"

#define TRACEBACK "Traceback (most recent call last):"

size_t sp_summary(const char *m, size_t len, size_t *off)
{
	const char *nl = memchr(m, '\n', len);
	size_t first = nl ? (size_t)(nl - m) : len;
	*off = 0;
	/* a Python traceback says what happened on its last line; a Java
	 * stack trace, a Go panic, a log line with its traceback after it:
	 * on the first */
	if (!nl || first != strlen(TRACEBACK) ||
	    memcmp(m, TRACEBACK, first) != 0)
		return first;
	size_t end = len;
	while (end > 0) {
		while (end > 0 && (m[end - 1] == '\n' || m[end - 1] == ' '))
			end--;
		size_t start = end;
		while (start > 0 && m[start - 1] != '\n')
			start--;
		if (end > start) {
			*off = start;
			return end - start;
		}
	}
	return first;
}
