/* caplat.c - the latency of sponge_log(), one committed record per call:
 * N calls, each timed; prints p50, p99 and the maximum in milliseconds.
 * Usage: caplat SPOOL N [PAUSE_US] (the config comes from
 * $LOGSPONGE_CONFIG); PAUSE_US: a pause between calls, so that N calls
 * span a command that runs meanwhile. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "logsponge.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return 64;
	int n = atoi(argv[2]);
	long pause_us = argc == 4 ? atol(argv[3]) : 0;
	double *ms = malloc((size_t)n * sizeof *ms);
	sponge *sp = NULL;
	if (!ms || sponge_open(&sp, argv[1], NULL, 0) != SPONGE_OK) {
		fprintf(stderr, "caplat: %s\n", sponge_errmsg(sp));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int rc = sponge_log(sp, SPONGE_INFO, "bench",
				    "request %d took %d ms", i, i % 997);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rc != SPONGE_OK) {
			fprintf(stderr, "caplat: %s\n", sponge_errmsg(sp));
			return 1;
		}
		ms[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 +
			(double)(b.tv_nsec - a.tv_nsec) / 1e6;
		if (pause_us) {
			struct timespec p = {pause_us / 1000000,
					     pause_us % 1000000 * 1000};
			nanosleep(&p, NULL);
		}
	}
	qsort(ms, (size_t)n, sizeof *ms, cmp);
	printf("p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", ms[n / 2],
	       ms[n * 99 / 100], ms[n - 1]);
	sponge_close(sp);
	free(ms);
	return 0;
}
