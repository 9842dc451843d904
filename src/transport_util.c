/* transport_util.c - what every transport uses: the message stream
 * (CRLF, or LF for Unix mail tools) and the outcome's names and codes.
 * Each transport is a file of its own (smtp.c, transport_sendmail.c,
 * transport_maildir.c, transport_local.c); transports.c lists them. */
#include <stdio.h>
#include <string.h>

#include "flush.h"

/* ---- streaming, with CRLF turned into LF for Unix mail tools ------- */

typedef struct lf_state {
	sponge_writer out;
	void *arg;
	bool cr;    /* the previous chunk ended in CR */
} lf_state;

/* The composer only ever writes CR as part of CRLF. */
static int lf_write(lf_state *st, const char *p, size_t n)
{
	if (st->cr && n && p[0] != '\n' && st->out(st->arg, "\r", 1) != 0)
		return -1;
	st->cr = false;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\r')
			continue;
		if (i > start && st->out(st->arg, p + start, i - start) != 0)
			return -1;
		if (i + 1 == n)
			st->cr = true;
		else if (p[i + 1] != '\n' && st->out(st->arg, "\r", 1) != 0)
			return -1;
		start = i + 1;
	}
	return n > start ? st->out(st->arg, p + start, n - start) : 0;
}

int sp_send_stream(sp_composer *c, bool lf, sponge_writer out, void *arg)
{
	int rc = sp_compose_rewind(c);
	lf_state st = {out, arg, false};
	size_t n;
	const char *p;
	while (rc == SPONGE_OK && (p = sp_compose_next(c, &n)) != NULL) {
		int w = !out ? 0 : lf ? lf_write(&st, p, n) : out(arg, p, n);
		if (w != 0)
			return sp_fail(c->sp, SPONGE_EIO, "%s",
				       c->sp->err.len ? c->sp->err.data
						      : "writing the message "
							"failed");
	}
	return rc != SPONGE_OK ? rc : c->rc;
}

/* ---- outcomes -------------------------------------------------------- */

const char *sp_outcome_name(int o)
{
	static const char *const n[] = {"local", "sent", "temporary",
					"permanent", "auth", "tls", "config",
					"local", "local"};
	return o >= 0 && o <= SP_RESOURCE ? n[o] : "local";
}

int sp_outcome_code(int o)
{
	switch (o) {
	case SP_SENT: return SPONGE_OK;
	case SP_TEMPORARY: return SPONGE_ETEMPFAIL;
	case SP_PERMANENT: return SPONGE_EPERMFAIL;
	case SP_AUTH: return SPONGE_EAUTH;
	case SP_TLS_FAILED: return SPONGE_ETLS;
	case SP_RESOURCE: return SPONGE_ERESOURCE;
	case SP_CONFIG: return SPONGE_ECONFIG;
	default: return SPONGE_EIO;
	}
}

int sp_send_failed(sponge *sp, sp_send_result *r, const char *what)
{
	if (r->outcome == SP_SENT || r->outcome == SP_OUTCOME_UNKNOWN)
		r->outcome = SP_LOCAL;
	return sp_fail(sp, sp_outcome_code(r->outcome), "%s: %s", what,
		       r->reply.data);
}
