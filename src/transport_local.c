/* transport_local.c - the transports that leave the process: stdout (the
 * caller's writer) and null (composed, then discarded; for tests). */
#include "flush.h"

static int send_null(sponge *sp, sp_composer *c, sp_send_result *r,
		     bool probe, sponge_writer out, void *arg)
{
	(void)sp, (void)out, (void)arg;
	if (probe) { /* nothing to connect to: nothing to check */
		r->outcome = SP_SENT;
		return SPONGE_OK;
	}
	int rc = sp_send_stream(c, false, NULL, NULL);
	if (rc)
		r->outcome = SP_LOCAL, r->stage = "compose";
	else
		r->outcome = SP_SENT;
	return rc;
}

static int send_stdout(sponge *sp, sp_composer *c, sp_send_result *r,
		       bool probe, sponge_writer out, void *arg)
{
	if (probe) { /* nothing to connect to: nothing to check */
		r->outcome = SP_SENT;
		return SPONGE_OK;
	}
	if (!out)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "transport stdout: nowhere to write");
	int rc = sp_send_stream(c, false, out, arg);
	if (rc)
		r->outcome = SP_LOCAL, r->stage = "write";
	else
		r->outcome = SP_SENT;
	return rc;
}

const sp_transport sp_transport_null = {"null", NULL, send_null};
const sp_transport sp_transport_stdout = {"stdout", NULL, send_stdout};

