/* spool_path.c - the spool's path as the kernel resolves it, one
 * component at a time, so that nobody else's link is followed.
 *
 * Each directory is opened relative to the one before (O_PATH |
 * O_NOFOLLOW), never by a path string that could change meanwhile.  A
 * symlink met on the way (a directory or the spool file itself) is
 * followed only when it belongs to the caller or to root and what it
 * points to does too; the spool file reached through a symlink must also
 * be the caller's and mode 0600.  Missing directories are made 0700, the
 * spool file 0600 (renamed into place, replacing nothing).  The result
 * is the canonical path (no symlink, no "." or ".."), which SQLite then
 * opens with SQLITE_OPEN_NOFOLLOW: one spool file, one name, one WAL and
 * one lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define MAX_LINKS 40

typedef struct walk {
	sponge *sp;
	unsigned flags;
	int dir;       /* the directory reached so far */
	spbuf canon;   /* its canonical path */
	spbuf rest;    /* what is left to resolve */
	int links;
} walk;

static bool trusted(uid_t uid) { return uid == geteuid() || uid == 0; }

static int fail_at(walk *w, const char *name, const char *why)
{
	return sp_fail(w->sp, sp_errno_code(errno, SPONGE_ECANTOPEN), "%s: %s%s%s: %s", w->sp->path,
		       w->canon.data, w->canon.len > 1 ? "/" : "", name, why);
}

static int set_dir(walk *w, int fd)
{
	if (fd < 0)
		return -1;
	if (w->dir >= 0)
		close(w->dir);
	w->dir = fd;
	return 0;
}

/* Start over at "/" (an absolute path or link) or at the working
 * directory. */
static int start(walk *w, bool absolute)
{
	sb_reset(&w->canon);
	if (absolute) {
		sb_adds(&w->canon, "/");
		return set_dir(w, open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return -1;
	sb_adds(&w->canon, cwd);
	return set_dir(w, open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
}

/* Take the next component of w->rest into name; false at the end. */
static bool next_name(walk *w, char *name, size_t n, bool *last)
{
	char *p = w->rest.data;
	while (*p == '/')
		p++;
	size_t len = strcspn(p, "/");
	if (!len)
		return false;
	snprintf(name, n, "%.*s", (int)len, p);
	char *after = p + len;
	while (*after == '/')
		after++;
	*last = *after == '\0';
	memmove(w->rest.data, after, strlen(after) + 1);
	w->rest.len = strlen(w->rest.data);
	return true;
}

static void canon_up(walk *w)
{
	char *slash = strrchr(w->canon.data, '/');
	w->canon.len = slash && slash != w->canon.data
			       ? (size_t)(slash - w->canon.data) : 1;
	w->canon.data[w->canon.len] = '\0';
}

static void canon_add(walk *w, const char *name)
{
	if (w->canon.len > 1)
		sb_adds(&w->canon, "/");
	sb_adds(&w->canon, name);
}

/* A symlink at name: check who owns it and its target, then put its
 * text in front of what is left. */
static int follow(walk *w, const char *name, const struct stat *lst,
		  bool last)
{
	char target[PATH_MAX];
	struct stat st;
	if (++w->links > MAX_LINKS)
		return fail_at(w, name, "too many levels of symbolic links");
	if (!trusted(lst->st_uid))
		return fail_at(w, name, "a symlink owned by someone else "
					"(another user could point it "
					"anywhere): not following it");
	if (fstatat(w->dir, name, &st, 0) != 0) {
		if (errno == ENOENT && last)
			return fail_at(w, name, "a symlink to a file that does "
						"not exist: not creating the "
						"spool through it");
		return fail_at(w, name, strerror(errno));
	}
	if (!trusted(st.st_uid))
		return fail_at(w, name, "a symlink to something that belongs "
					"to someone else: not following it");
	if (last && S_ISREG(st.st_mode) &&
	    (st.st_uid != geteuid() || (st.st_mode & 077)))
		return fail_at(w, name, st.st_uid != geteuid()
				? "a symlink to a file that belongs to someone "
				  "else: not following it"
				: "a symlink to a file that others may read: "
				  "not following it (a spool reached by a "
				  "symlink must be yours and mode 0600)");
	ssize_t n = readlinkat(w->dir, name, target, sizeof target - 1);
	if (n <= 0)
		return fail_at(w, name, strerror(n < 0 ? errno : ENOENT));
	target[n] = '\0';
	spbuf rest;
	sb_init(&rest, 0);
	sb_printf(&rest, "%s/%s", target, w->rest.data);
	sb_reset(&w->rest);
	sb_adds(&w->rest, rest.data);
	sb_free(&rest);
	if (target[0] == '/' && start(w, true) != 0)
		return fail_at(w, name, strerror(errno));
	return SPONGE_OK;
}

/* Make the spool file, mode 0600 whatever the umask, without ever closing
 * a descriptor of it.  POSIX locks belong to the process, and closing any
 * descriptor of a file drops every lock the process holds on it: those of
 * a connection that another thread opened on the new file a moment
 * before.  SQLite would then believe it holds locks it does not, another
 * process would remove the write-ahead log under it, and records would be
 * lost.  So a file of another name is made and closed first, then renamed
 * into place unless the name exists by then (where the file system cannot
 * rename so, linked and unlinked: a spool opened in between has two names
 * for a moment and is refused).  0, EEXIST or an errno. */
static int make_file(int dir, const char *name)
{
	static atomic_uint seq;
	char tmp[NAME_MAX + 1];
	snprintf(tmp, sizeof tmp, ".%.200s.new-%ld-%u", name, (long)getpid(),
		 atomic_fetch_add(&seq, 1));
	int fd = openat(dir, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				   O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	int e = fchmod(fd, 0600) == 0 ? 0 : errno;
	sp_test_delay("spool-made");
	close(fd);
	bool linked = false;
	if (!e && renameat2(dir, tmp, dir, name, RENAME_NOREPLACE) != 0) {
		e = errno;
		if (e == EINVAL || e == ENOSYS) {
			e = linkat(dir, tmp, dir, name, 0) == 0 ? 0 : errno;
			linked = true;
		}
	}
	if (e || linked)
		unlinkat(dir, tmp, 0);
	return e;
}

/* The spool file itself: made 0600 when missing (unless NOCREATE). */
static int leaf(walk *w, const char *name, const struct stat *lst, int serr)
{
	if (serr == 0) {
		if (!S_ISREG(lst->st_mode))
			return fail_at(w, name, "not a regular file");
		/* SQLite names the WAL after the path: two names, two WALs */
		if (lst->st_nlink > 1)
			return sp_fail(w->sp, SPONGE_ECANTOPEN,
				       "%s: has %lu hard links; a spool must "
				       "have one name (each name would get a "
				       "write-ahead log of its own, and records "
				       "would be lost)", w->sp->path,
				       (unsigned long)lst->st_nlink);
		canon_add(w, name);
		return SPONGE_OK;
	}
	if (serr != ENOENT)
		return fail_at(w, name, strerror(serr));
	if (w->flags & SPONGE_OPEN_NOCREATE)
		return sp_fail(w->sp, SPONGE_ENOENT,
			       "%s: no such spool (nothing recorded yet?)",
			       w->sp->path);
	int e = make_file(w->dir, name);
	if (e && e != EEXIST) {
		errno = e;
		return fail_at(w, name, strerror(e));
	}
	if (e == EEXIST) { /* another process made it first: look again */
		struct stat st;
		if (fstatat(w->dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			return fail_at(w, name, "not a regular file");
	}
	canon_add(w, name);
	return SPONGE_OK;
}

/* One directory on the way: entered, or made 0700 when missing. */
static int enter(walk *w, const char *name, int serr)
{
	if (serr == ENOENT && !(w->flags & SPONGE_OPEN_NOCREATE) &&
	    mkdirat(w->dir, name, 0700) != 0 && errno != EEXIST)
		return fail_at(w, name, "cannot create directory");
	int fd = openat(w->dir, name,
			O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && (w->flags & SPONGE_OPEN_NOCREATE))
			return sp_fail(w->sp, SPONGE_ENOENT,
				       "%s: no such spool (nothing recorded "
				       "yet?)", w->sp->path);
		return fail_at(w, name, errno == ELOOP || errno == ENOTDIR
					 ? "not a directory"
					 : strerror(errno));
	}
	set_dir(w, fd);
	canon_add(w, name);
	return SPONGE_OK;
}

static int step(walk *w, const char *name, bool last)
{
	if (strcmp(name, ".") == 0)
		return last ? fail_at(w, name, "not a regular file")
			    : SPONGE_OK;
	if (strcmp(name, "..") == 0) {
		if (last)
			return fail_at(w, name, "not a regular file");
		canon_up(w);
		int fd = openat(w->dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		return set_dir(w, fd) == 0 ? SPONGE_OK
					   : fail_at(w, name, strerror(errno));
	}
	struct stat lst;
	int serr = fstatat(w->dir, name, &lst, AT_SYMLINK_NOFOLLOW) == 0
			   ? 0 : errno;
	if (serr == 0 && S_ISLNK(lst.st_mode))
		return follow(w, name, &lst, last);
	if (last)
		return leaf(w, name, &lst, serr);
	return enter(w, name, serr);
}

/* The write-ahead log and shared memory SQLite will open by name: a link
 * planted there is refused as well. */
static int no_side_links(walk *w, const char *base)
{
	static const char *const side[] = {"-wal", "-shm", ".lock"};
	char name[NAME_MAX + 8];
	for (int i = 0; i < 3; i++) {
		struct stat st;
		snprintf(name, sizeof name, "%s%s", base, side[i]);
		if (fstatat(w->dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISREG(st.st_mode)) {
			canon_up(w);
			return fail_at(w, name, "not a regular file (a link "
						"here is not followed)");
		}
	}
	return SPONGE_OK;
}

int sp_spool_resolve(sponge *sp, unsigned flags)
{
	walk w = {sp, flags, -1, {0}, {0}, 0};
	sb_init(&w.canon, 0);
	sb_init(&w.rest, 0);
	sb_adds(&w.rest, sp->path);
	int rc = SPONGE_OK;
	char name[NAME_MAX + 1];
	bool last = false;
	if (start(&w, sp->path[0] == '/') != 0)
		rc = sp_fail(sp, sp_errno_code(errno, SPONGE_ECANTOPEN), "%s: %s", sp->path,
			     strerror(errno));
	while (rc == SPONGE_OK && next_name(&w, name, sizeof name, &last))
		rc = step(&w, name, last);
	if (rc == SPONGE_OK && !last)
		rc = sp_fail(sp, SPONGE_ECANTOPEN, "%s: not a file name",
			     sp->path);
	if (rc == SPONGE_OK && (w.canon.failed || w.rest.failed))
		rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	if (rc == SPONGE_OK)
		rc = no_side_links(&w, strrchr(w.canon.data, '/') + 1);
	if (rc == SPONGE_OK) {
		char *canon = sp_strdup(w.canon.data);
		if (!canon)
			rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		else {
			sp_free(sp->path);
			sp->path = canon;
		}
	}
	if (w.dir >= 0)
		close(w.dir);
	sb_free(&w.canon);
	sb_free(&w.rest);
	return rc;
}
