/* host.c - this host's names. */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

bool sp_host_fqdn(char *out, size_t n)
{
	char host[256] = "";
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_CANONNAME;
	hints.ai_socktype = SOCK_STREAM;
	bool ok = gethostname(host, sizeof host - 1) == 0 &&
		  getaddrinfo(host, NULL, &hints, &res) == 0 &&
		  res->ai_canonname && strchr(res->ai_canonname, '.') &&
		  strncmp(res->ai_canonname, "localhost", 9) != 0 &&
		  strlen(res->ai_canonname) < n;
	if (ok)
		snprintf(out, n, "%s", res->ai_canonname);
	if (res)
		freeaddrinfo(res);
	return ok;
}
