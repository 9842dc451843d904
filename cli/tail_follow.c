/* tail_follow.c - tail --follow: a pass over the sources whenever one of
 * their directories changes, or each second (the journal; a change
 * inotify cannot see), until SIGTERM, SIGINT or SIGHUP, which end the
 * loop after the pass in progress has committed. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "tail.h"

#define WAIT_MS 1000

static volatile sig_atomic_t stop;

static void on_stop(int sig) { stop = sig; }

static void catch_stop(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop; /* no SA_RESTART: the wait wakes */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* An inotify descriptor watching the directory of each file source
 * wanted (-1 when inotify is not there: each second then). */
static int watch(sponge *sp, const bool *want)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	for (size_t i = 0; fd >= 0 && i < sponge_sources(sp); i++) {
		sponge_source s;
		if (!want[i] || sponge_source_get(sp, i, &s) != SPONGE_OK ||
		    s.type != SPONGE_SOURCE_FILE)
			continue;
		char dir[PATH_MAX];
		const char *slash = strrchr(s.path, '/');
		size_t n = slash && slash > s.path ? (size_t)(slash - s.path) : 1;
		if (n >= sizeof dir)
			continue;
		memcpy(dir, s.path, n);
		dir[n] = '\0';
		inotify_add_watch(fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO |
						   IN_MOVED_FROM | IN_DELETE |
						   IN_CLOSE_WRITE);
	}
	return fd;
}

/* Until a change or WAIT_MS; the events read and dropped. */
static void wait_change(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	if (fd < 0 || poll(&p, 1, WAIT_MS) <= 0)
		return;
	char buf[4096];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

int tail_follow(tailer *t, const bool *want, size_t n,
		int (*one)(tailer *, size_t i))
{
	catch_stop();
	t->follow = true;
	int fd = watch(t->sp, want);
	if (fd < 0 && t->dry_run)
		return 0;
	int status = 0;
	while (!stop && !status) {
		for (size_t i = 0; i < n && !status; i++)
			if (want[i])
				status = one(t, i);
		if (!stop && !status) {
			if (fd < 0)
				poll(NULL, 0, WAIT_MS);
			else
				wait_change(fd);
		}
	}
	if (fd >= 0)
		close(fd);
	return status;
}
