/* Fuzz durations, sizes and times; a parsed ISO time formats and parses
 * back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logsponge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t d;
	uint64_t z;
	if (sponge_parse_duration(s, &d) == 0 && d < 0)
		__builtin_trap();
	(void)sponge_parse_size(s, &z);
	int64_t t;
	if (sponge_parse_time(s, 1795255200000000LL, &t) == 0 &&
	    t > -62135596800000000LL && t < 253402300800000000LL) {
		char buf[32], again[32];
		sponge_format_time(t, buf);
		int64_t t2;
		if (sponge_parse_time(buf, 0, &t2) != 0 || t2 != t)
			__builtin_trap();
		sponge_format_time(t2, again);
		if (strcmp(buf, again) != 0)
			__builtin_trap();
	}
	free(s);
	return 0;
}
