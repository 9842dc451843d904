/* error.c - error codes and messages: one code, one message, set where
 * a failure happens (sp_fail) and read by the caller (sponge_errmsg). */
#include <stdarg.h>

#include "internal.h"

static const char *const errtext[] = {
	[SPONGE_OK] = "success",
	[SPONGE_EINVAL] = "invalid argument",
	[SPONGE_ENOMEM] = "out of memory",
	[SPONGE_ECANTOPEN] = "cannot create or open the spool",
	[SPONGE_ENOTSPOOL] = "not a logsponge spool",
	[SPONGE_EVERSION] = "spool made by a newer logsponge",
	[SPONGE_EIO] = "spool I/O error",
	[SPONGE_EFULL] = "disk full",
	[SPONGE_EREADONLY] = "spool is read-only",
	[SPONGE_EBUSY] = "spool is locked",
	[SPONGE_ECONFIG] = "configuration error",
	[SPONGE_ENOENT] = "no such spool",
	[SPONGE_ETEMPFAIL] = "temporary delivery failure",
	[SPONGE_EPERMFAIL] = "delivery refused",
	[SPONGE_EAUTH] = "authentication refused",
	[SPONGE_ETLS] = "TLS failure",
	[SPONGE_ERESOURCE] = "out of file descriptors",
};

const char *sponge_strerror(int code)
{
	if (code == SPONGE_ROW)
		return "another row is ready";
	if (code == SPONGE_DONE)
		return "no more rows";
	if (code < 0 || code >= (int)(sizeof errtext / sizeof errtext[0]) ||
	    !errtext[code])
		return "unknown error";
	return errtext[code];
}

const char *sponge_version(void) { return SPONGE_VERSION; }
int sponge_version_number(void) { return SPONGE_VERSION_NUMBER; }

int sp_fail(sponge *sp, int code, const char *fmt, ...)
{
	if (!sp)
		return code;
	sb_reset(&sp->err);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&sp->err, fmt, ap);
	va_end(ap);
	return code;
}

const char *sponge_errmsg(const sponge *sp)
{
	return sp ? sp->err.data : "no handle";
}
