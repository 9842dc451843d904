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

static bool ensure_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST) {
		struct stat st;
		return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	}
	return false;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
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

/* dir, dir/tmp, dir/cur and dir/new exist (made 0700 when missing). */
static bool maildir_ready(const char *dir, sp_send_result *r)
{
	spbuf p;
	sb_init(&p, 0);
	errno = 0;
	bool ok = ensure_parents(dir) && ensure_dir(dir);
	static const char *const sub[] = {"tmp", "cur", "new"};
	for (int i = 0; i < 3 && ok; i++) {
		sb_reset(&p);
		ok = sb_printf(&p, "%s/%s", dir, sub[i]) && ensure_dir(p.data);
	}
	if (!ok)
		sb_printf(&r->reply, "%s: not a usable Maildir: %s", dir,
			  strerror(errno ? errno : ENOTDIR));
	sb_free(&p);
	return ok;
}

/* The Maildir way: write tmp/NAME, fsync, rename to new/NAME, fsync new/. */
static int send_maildir(sponge *sp, void *link, sp_composer *c,
			sp_send_result *r, sponge_writer out, void *arg)
{
	(void)link, (void)out, (void)arg;
	const char *dir = sp->cfg.maildir;
	spbuf tmp, nw, name;
	sb_init(&tmp, 0);
	sb_init(&nw, 0);
	sb_init(&name, 0);
	r->stage = "maildir";
	r->outcome = SP_LOCAL;
	file_ctx f = {-1, 0};
	if (!maildir_ready(dir, r))
		goto out;
	if (!maildir_name(sp, &name) ||
	    !sb_printf(&tmp, "%s/tmp/%s", dir, name.data) ||
	    !sb_printf(&nw, "%s/new/%s", dir, name.data)) {
		sb_adds(&r->reply, "out of memory");
		goto out;
	}
	f.fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				      O_CLOEXEC, 0600);
	if (f.fd < 0) {
		sb_printf(&r->reply, "%s: %s", tmp.data, strerror(errno));
		goto out;
	}
	int rc = sp_send_stream(c, true, file_write, &f);
	if (rc == SPONGE_OK && fsync(f.fd) != 0)
		f.err = errno, rc = SPONGE_EIO;
	if (close(f.fd) != 0 && rc == SPONGE_OK)
		f.err = errno, rc = SPONGE_EIO;
	f.fd = -1;
	if (rc == SPONGE_OK && rename(tmp.data, nw.data) != 0)
		f.err = errno, rc = SPONGE_EIO;
	if (rc == SPONGE_OK) {
		*strrchr(nw.data, '/') = '\0';
		fsync_dir(nw.data);
		r->outcome = SP_SENT;
		r->stage = "";
		sb_printf(&r->reply, "delivered to %s/new/%s", dir, name.data);
	} else {
		unlink(tmp.data);
		sb_printf(&r->reply, "%s: %s", tmp.data,
			  f.err ? strerror(f.err) : sponge_errmsg(sp));
	}
out:
	if (f.fd >= 0)
		close(f.fd);
	sb_free(&tmp);
	sb_free(&nw);
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

