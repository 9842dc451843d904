/* testhooks.c - fault injection for the tests.  Compiled only into the
 * test build of the library (-DSPONGE_TESTING: build/liblogsponge-test.a
 * and build/logsponge-test); the shipped library has none of it and
 * reads no test variable. */
#ifndef SPONGE_TESTING
#error "testhooks.c belongs to the test build only (-DSPONGE_TESTING)"
#endif
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* one counter for the whole process, safe with threads */
static atomic_ulong alloc_count, alloc_fail_at;

void sp_alloc_fail_at(unsigned long k)
{
	atomic_store(&alloc_count, 0);
	atomic_store(&alloc_fail_at, k);
}

unsigned long sp_alloc_count(void) { return atomic_load(&alloc_count); }

bool sp_alloc_should_fail(void)
{
	unsigned long k = atomic_fetch_add(&alloc_count, 1) + 1;
	return k == atomic_load(&alloc_fail_at);
}

void sp_crash_point(const char *name)
{
	const char *want = getenv("LOGSPONGE_TEST_CRASH");
	if (want && strcmp(want, name) == 0)
		raise(SIGKILL);
}

void sp_test_delay(const char *name)
{
	const char *want = getenv("LOGSPONGE_TEST_DELAY");
	struct timespec ts = {0, 300000000};
	if (want && strcmp(want, name) == 0)
		nanosleep(&ts, NULL);
}
