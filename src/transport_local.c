/* transport_local.c - the transports that leave the process: stdout (the
 * caller's writer) and null (composed, then discarded; for tests). */
#include "flush.h"

static int send_null(sponge *sp, void *link, sp_composer *c,
		     sp_send_result *r, sponge_writer out, void *arg)
{
	(void)sp, (void)link, (void)out, (void)arg;
	int rc = sp_send_stream(c, false, NULL, NULL);
	if (rc)
		r->outcome = SP_LOCAL, r->stage = "compose";
	else
		r->outcome = SP_SENT;
	return rc;
}

static int send_stdout(sponge *sp, void *link, sp_composer *c,
		       sp_send_result *r, sponge_writer out, void *arg)
{
	(void)link;
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

const sp_transport sp_transport_null = {
	.name = "null", .send = send_null};
const sp_transport sp_transport_stdout = {
	.name = "stdout", .send = send_stdout};
