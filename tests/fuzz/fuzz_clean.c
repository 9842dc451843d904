/* Fuzz the UTF-8 cleaner: any bytes in, clean visible UTF-8 out. */
#include <stdint.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	spbuf out;
	sb_init(&out, 0);
	size_t used = 0;
	size_t limit = size ? data[0] * 3 + 4 : 64;
	if (!sp_clean(&out, (const char *)data, size, SIZE_MAX, &used))
		__builtin_trap();
	if (used != size || !sp_is_clean(out.data, out.len))
		__builtin_trap();
	/* clean input is kept byte for byte */
	if (sp_is_clean((const char *)data, size) &&
	    (out.len != size || memcmp(out.data, data, size) != 0))
		__builtin_trap();
	/* with a limit: never longer, never a split character */
	sb_reset(&out);
	if (!sp_clean(&out, (const char *)data, size, limit, &used))
		__builtin_trap();
	if (out.len > limit || used > size || !sp_is_clean(out.data, out.len))
		__builtin_trap();
	sb_free(&out);
	return 0;
}
