/* transports.c - the registry that config parsing, check and flush look
 * transports up in, by name: one row per transport, each a file of its
 * own (smtp.c, transport_sendmail.c, transport_maildir.c,
 * transport_local.c for stdout and null). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "flush.h"

/* ---- the registry --------------------------------------------------- */

static const sp_transport *const registry[] = {
	&sp_transport_smtp, &sp_transport_sendmail, &sp_transport_maildir,
	&sp_transport_stdout, &sp_transport_null,
};
#define NTRANSPORTS (sizeof registry / sizeof registry[0])

const sp_transport *sp_transport_find(const char *name)
{
	for (size_t i = 0; name && i < NTRANSPORTS; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const sp_transport *sp_transport_of(const sp_config *c)
{
	return sp_transport_find(c->transport ? c->transport : "smtp");
}

static char names[128];

static void make_names(void)
{
	size_t n = 0;
	for (size_t i = 0; i < NTRANSPORTS; i++)
		n += (size_t)snprintf(names + n, sizeof names - n, "%s%s",
				      i ? ", " : "", registry[i]->name);
}

const char *sp_transport_names(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, make_names);
	return names;
}
