/* Fuzz the journal-json, RFC 5424, RFC 3164 and syslog-file parsers
 * (the first byte picks one), and store what they return. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h" /* sp_clamp_time, sp_sub */

static sponge *sp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!sp) {
		char path[64];
		snprintf(path, sizeof path, "/tmp/lsfuzz.%d.db", (int)getpid());
		if (sponge_open(&sp, path, NULL, SPONGE_OPEN_NOCONFIG))
			abort();
		sponge_set_batch(sp, 100000, 0, 0); /* keep it in memory */
	}
	if (!size)
		return 0;
	int fmt = 1 + data[0] % 4;
	const char *line = (const char *)data + 1;
	size_t len = size - 1;
	sponge_entry e = {SPONGE_INFO, NULL, 0, NULL, NULL, 0, 0};
	if (sponge_parse_line(sp, fmt, line, len, &e)) {
		if (e.level < 0 || e.level > 7 || (!e.msg && e.len))
			__builtin_trap();
		if (e.tag)
			(void)strlen(e.tag);
		if (e.host)
			(void)strlen(e.host);
		if (sponge_append_entry(sp, &e) != SPONGE_OK)
			__builtin_trap();
		/* the time arithmetic of a digest, on whatever was parsed
		 * (UBSan stops at a signed overflow) */
		static int64_t prev;
		char tb[32], sb[64];
		sponge_format_time(e.time_us, tb);
		int64_t t = sp_clamp_time(e.time_us);
		sponge_format_span(sp_sub(t, prev), sb, sizeof sb);
		sponge_format_span(sp_sub(sponge_now(), t), sb, sizeof sb);
		prev = t;
	}
	if (sponge_queued(sp) > 50000)
		sponge_set_batch(sp, 100000, 0, 0);
	return 0;
}
