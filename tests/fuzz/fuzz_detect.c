/* Fuzz level detection: a level or -1, a skip inside the line. */
#include <stdint.h>

#include "logsponge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t skip = 12345;
	int l = sponge_detect_level((const char *)data, size, &skip);
	if (l < -1 || l > 7 || skip > size || (l < 0 && skip != 0))
		__builtin_trap();
	return 0;
}
