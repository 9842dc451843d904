/* spools.c - a spool left where an earlier default put it: root's cron
 * jobs once wrote ~/.local/state/logsponge/spool.db, which no timer
 * flushes now that root's default is the units' /var/lib one.  status
 * and check say so when it holds pending records. */
#define _GNU_SOURCE
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* The default spool of the other rule: root's XDG one when the units'
 * is in use, the units' when XDG_STATE_HOME chose another ("" none). */
static void other_default(char *buf, size_t n)
{
	buf[0] = '\0';
	if (geteuid() != 0)
		return;
	const char *xdg = getenv("XDG_STATE_HOME");
	if (xdg && xdg[0] == '/') {
		snprintf(buf, n, "/var/lib/logsponge/spool.db");
		return;
	}
	const char *home = getenv("HOME");
	struct passwd *pw = home && *home ? NULL : getpwuid(0);
	if (pw)
		home = pw->pw_dir;
	if (home && *home)
		snprintf(buf, n, "%s/.local/state/logsponge/spool.db", home);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void warn_other_spool(const globals *g, sponge *sp)
{
	char other[4096];
	const char *mine = sponge_path(sp);
	other_default(other, sizeof other);
	if (g->spool || !other[0] || access(other, F_OK) != 0 ||
	    (mine && same_file(other, mine)))
		return;
	sponge *o = NULL;
	sponge_stats st;
	if (sponge_open(&o, other, NULL, SPONGE_OPEN_NOCREATE |
					     SPONGE_OPEN_NOCONFIG) == SPONGE_OK &&
	    sponge_stats_get(o, &st) == SPONGE_OK && st.pending)
		errorf("warning: %s also holds %lld pending record%s, which a "
		       "flush of %s does not send (logsponge -s %s flush "
		       "--force sends them)",
		       other, (long long)st.pending, st.pending == 1 ? "" : "s",
		       mine ? mine : "the default spool", other);
	sponge_close(o);
}
