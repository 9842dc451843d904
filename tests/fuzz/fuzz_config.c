/* Fuzz the config parser: an error with file:line, or a config. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	sp_config c;
	sp_config_defaults(&c);
	spbuf err;
	sb_init(&err, 0);
	int rc = sp_config_load_string(&c, text, "f", &err, NULL);
	if (rc != SPONGE_OK && rc != SPONGE_ECONFIG && rc != SPONGE_ENOMEM)
		__builtin_trap();
	if (rc == SPONGE_ECONFIG && strncmp(err.data, "f:", 2) != 0)
		__builtin_trap();
	if (rc == SPONGE_OK && (c.nto < 0 || c.nto > SP_MAX_RCPT ||
				c.policy.threshold < 1))
		__builtin_trap();
	sp_config_free(&c);
	sb_free(&err);
	free(text);
	return 0;
}
