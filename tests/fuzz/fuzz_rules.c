/* Fuzz the rules files' syntax and the POSIX ERE rewrites: any bytes as a
 * rules file (every rule parsed has a pattern, a regex and a name), the
 * same bytes as a logcheck file, and as one ERE rewritten for the engine
 * (exactly, or as a prefilter). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	sp_rules rs = {0};
	spbuf err;
	sb_init(&err, 0);
	int rc = sp_rules_parse(&rs, "f.rules", text, size, &err);
	if (rc != SPONGE_OK && rc != SPONGE_ECONFIG && rc != SPONGE_ENOMEM)
		__builtin_trap();
	if (rc == SPONGE_ECONFIG && strncmp(err.data, "f.rules:", 8) != 0)
		__builtin_trap(); /* an error names the file and line */
	for (size_t i = 0; i < rs.n; i++)
		if (!rs.r[i].pattern || !rs.r[i].regex || !rs.r[i].name ||
		    rs.r[i].verb < SP_VERB_IGNORE || rs.r[i].verb > SP_VERB_KEEP)
			__builtin_trap();
	sp_rules_free(&rs);
	sb_reset(&err);
	sp_rules_add_logcheck(&rs, "lc", text, size, &err);
	sp_rules_free(&rs);
	sb_free(&err);
	/* one ERE, NUL-terminated */
	char *ere = malloc(size + 1);
	if (!ere)
		return 0;
	memcpy(ere, data, size);
	ere[size] = '\0';
	spbuf a, b;
	sb_init(&a, 0);
	sb_init(&b, 0);
	bool exact = sp_posix_to_pcre(ere, &a);
	bool super = sp_posix_superset(ere, &b);
	if (exact && !super)
		__builtin_trap(); /* what rewrites exactly has a prefilter */
	sb_free(&a);
	sb_free(&b);
	free(ere);
	return 0;
}
