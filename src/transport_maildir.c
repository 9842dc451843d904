/* transport_maildir.c - write the message into a Maildir (tmp/, then a
 * rename into new/), where mutt and Dovecot read it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flush.h"

typedef struct file_ctx {
	int fd;
	int err;
} file_ctx;

static int file_write(void *arg, const char *p, size_t n)
{
	file_ctx *f = arg;
	while (n) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			f->err = errno;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* mkdir -p, 0700 for what it creates. */
static bool ensure_parents(const char *path)
{
	char *p = sp_strdup(path);
	if (!p)
		return false;
	bool ok = true;
	for (char *q = p + 1; *q && ok; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			ok = false;
		*q = '/';
	}
	sp_free(p);
	return ok;
}

/* dir/sub as a directory descriptor, made 0700 when missing; a link
 * there (the maildir's owner could plant one) is never followed. */
static int open_sub(int dir, const char *sub)
{
	if (mkdirat(dir, sub, 0700) != 0 && errno != EEXIST)
		return -1;
	int fd = openat(dir, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		errno = ENOTDIR;
	return fd;
}

/* A file name unique on this host: time.MusecPpidQcount.host ("/" and
 * ":" cannot be in it). */
static bool maildir_name(const sponge *sp, spbuf *name)
{
	static unsigned counter;
	int64_t now = sponge_now();
	char host[256];
	size_t j = 0;
	for (const char *h = sp->host; *h && j < sizeof host - 1; h++)
		host[j++] = *h == '/' || *h == ':' ? '_' : *h;
	host[j] = '\0';
	return sb_printf(name, "%lld.M%06lldP%dQ%u.%s",
			 (long long)(now / 1000000), (long long)(now % 1000000),
			 (int)getpid(),
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), host);
}

/* dir, dir/tmp, dir/cur and dir/new exist (made 0700 when missing):
 * fd[0] tmp/, fd[1] new/, opened without following links. */
static bool maildir_ready(const char *dir, int fd[2], sp_send_result *r)
{
	errno = 0;
	const char *bad = dir;
	int top = ensure_parents(dir) && (mkdir(dir, 0700) == 0 ||
					  errno == EEXIST)
			  ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
			  : -1;
	int cur = -1;
	if (top >= 0) {
		bad = "tmp";
		if ((fd[0] = open_sub(top, "tmp")) >= 0)
			bad = "cur";
		if (fd[0] >= 0 && (cur = open_sub(top, "cur")) >= 0)
			bad = "new";
		if (cur >= 0)
			fd[1] = open_sub(top, "new");
	}
	int e = errno ? errno : ENOTDIR;
	bool ok = top >= 0 && fd[0] >= 0 && fd[1] >= 0;
	if (!ok)
		sb_printf(&r->reply, "%s%s%s: not a usable Maildir: %s", dir,
			  bad == dir ? "" : "/", bad == dir ? "" : bad,
			  e == ENOTDIR ? "not a directory (a link there is "
					 "not followed)" : strerror(e));
	if (top >= 0)
		close(top);
	if (cur >= 0)
		close(cur);
	return ok;
}

/* The Maildir way: write tmp/NAME, fsync, rename to new/NAME, fsync new/. */
static int send_maildir(sponge *sp, void *link, sp_composer *c,
			sp_send_result *r, sponge_writer out, void *arg)
{
	(void)link, (void)out, (void)arg;
	const char *dir = sp->cfg.maildir;
	spbuf name;
	sb_init(&name, 0);
	r->stage = "maildir";
	r->outcome = SP_LOCAL;
	file_ctx f = {-1, 0};
	int fd[2] = {-1, -1};
	if (!maildir_ready(dir, fd, r))
		goto out;
	if (!maildir_name(sp, &name)) {
		sb_adds(&r->reply, "out of memory");
		goto out;
	}
	f.fd = openat(fd[0], name.data, O_WRONLY | O_CREAT | O_EXCL |
						O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f.fd < 0) {
		sb_printf(&r->reply, "%s/tmp/%s: %s", dir, name.data,
			  strerror(errno));
		goto out;
	}
	int rc = sp_send_stream(c, true, file_write, &f);
	if (rc == SPONGE_OK && fsync(f.fd) != 0)
		f.err = errno, rc = SPONGE_EIO;
	if (close(f.fd) != 0 && rc == SPONGE_OK)
		f.err = errno, rc = SPONGE_EIO;
	f.fd = -1;
	if (rc == SPONGE_OK && renameat(fd[0], name.data, fd[1], name.data))
		f.err = errno, rc = SPONGE_EIO;
	if (rc == SPONGE_OK) {
		(void)fsync(fd[1]);
		r->outcome = SP_SENT;
		r->stage = "";
		sb_printf(&r->reply, "delivered to %s/new/%s", dir, name.data);
	} else {
		unlinkat(fd[0], name.data, 0);
		sb_printf(&r->reply, "%s/tmp/%s: %s", dir, name.data,
			  f.err ? strerror(f.err) : sponge_errmsg(sp));
	}
out:
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	sb_free(&name);
	return r->outcome == SP_SENT ? SPONGE_OK
				     : sp_send_failed(sp, r, "maildir");
}

static bool maildir_config_ok(const sp_config *c, spbuf *why)
{
	if (c->maildir)
		return true;
	sb_adds(why, "maildir.path is not set");
	return false;
}

/* The maildir, or the nearest directory above it that exists (the flush
 * creates the rest), must be a directory we can write. */
static bool maildir_writable(const sp_config *c, spbuf *why)
{
	spbuf d;
	sb_init(&d, 0);
	sb_adds(&d, c->maildir);
	bool ok = false;
	struct stat st;
	while (d.len && !d.failed) {
		if (stat(d.data, &st) == 0) {
			ok = S_ISDIR(st.st_mode) && access(d.data, W_OK | X_OK) == 0;
			if (!ok)
				sb_printf(why, "maildir.path %s: %s is not a "
					       "directory this user can write",
					  c->maildir, d.data);
			break;
		}
		char *slash = strrchr(d.data, '/');
		if (!slash) { /* a relative name: the working directory */
			sb_reset(&d);
			sb_adds(&d, ".");
			continue;
		}
		d.len = slash == d.data ? 1 : (size_t)(slash - d.data);
		d.data[d.len] = '\0';
	}
	sb_free(&d);
	return ok;
}

const sp_transport sp_transport_maildir = {
	.name = "maildir", .config_ok = maildir_config_ok,
	.ready = maildir_writable, .send = send_maildir};

