/* faultfs.so - LD_PRELOAD shim for tests: while the file named by
 * $FAULTFS_FLAG exists, writes to files whose path ends in ".db" or
 * ".db-wal" fail with the errno in $FAULTFS_ERRNO (default ENOSPC), as a
 * full or read-only disk would make them; with FAULTFS_ONLY=db only the
 * main ".db" file fails (the WAL still takes writes, a checkpoint does
 * not).  With $FAULTFS_SOCKET_EMFILE set, every TCP socket() fails
 * with EMFILE, as in a process out of descriptors.  Test code only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int faulty(int fd)
{
	const char *flag = getenv("FAULTFS_FLAG");
	if (!flag || access(flag, F_OK) != 0)
		return 0;
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	size_t len = (size_t)n;
	const char *only = getenv("FAULTFS_ONLY");
	bool main_only = only && strcmp(only, "db") == 0;
	if ((len > 3 && strcmp(path + len - 3, ".db") == 0) ||
	    (!main_only && len > 7 && strcmp(path + len - 7, ".db-wal") == 0)) {
		const char *e = getenv("FAULTFS_ERRNO");
		errno = e ? atoi(e) : ENOSPC;
		return 1;
	}
	return 0;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite64");
	return faulty(fd) ? -1 : real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite");
	return faulty(fd) ? -1 : real(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "write");
	return faulty(fd) ? -1 : real(fd, buf, n);
}

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);
	if (getenv("FAULTFS_SOCKET_EMFILE") &&
	    (domain == AF_INET || domain == AF_INET6)) {
		errno = EMFILE;
		return -1;
	}
	if (!real)
		real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	return real(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *a, socklen_t n)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	const char *e = getenv("FAULTFS_BIND_ERRNO");
	if (e) {
		errno = atoi(e);
		return -1;
	}
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "bind");
	return real(fd, a, n);
}
