/* check.c - what a flush needs, checked without sending records: the
 * config (sponge_check_config), the SMTP server (sponge_check_smtp), and
 * a short test message through the configured transport
 * (sponge_check_send).  None needs a spool. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "flush.h"
#include "transport.h"

int sp_check_mail_config(sponge *sp, const sp_transport *t)
{
	const sp_config *c = &sp->cfg;
	const char *where = c->path ? c->path : "(no config file)";
	if (!t)
		return sp_fail(sp, SPONGE_ECONFIG, "%s: unknown transport",
			       where);
	if (!c->from)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "%s: mail.from is not set", where);
	if (!c->nto)
		return sp_fail(sp, SPONGE_ECONFIG, "%s: mail.to is not set",
			       where);
	spbuf why;
	sb_init(&why, 256);
	int rc = SPONGE_OK;
	if (t->config_ok && !t->config_ok(c, &why))
		rc = sp_fail(sp, SPONGE_ECONFIG, "%s: %s", where, why.data);
	sb_free(&why);
	return rc;
}

int sponge_check_config(sponge *sp)
{
	SP_GUARD;
	if (!sp_alive(sp)) /* (the config alone: no spool needed) */
		return SPONGE_EINVAL;
	sb_reset(&sp->err);
	if (sp->cfg_error.len)
		return sp_fail(sp, SPONGE_ECONFIG, "%s", sp->cfg_error.data);
	const sp_transport *t = sp_transport_of(&sp->cfg);
	int rc = sp_check_mail_config(sp, t);
	if (rc || !t->ready)
		return rc;
	spbuf why;
	sb_init(&why, 256);
	if (!t->ready(&sp->cfg, &why))
		rc = sp_fail(sp, SPONGE_ECONFIG, "%s: %s",
			     sp->cfg.path ? sp->cfg.path : "(no config file)",
			     why.data);
	sb_free(&why);
	return rc;
}

int sponge_check_smtp(sponge *sp)
{
	SP_GUARD;
	if (!sp_alive(sp))
		return SPONGE_EINVAL;
	sb_reset(&sp->err);
	sb_reset(&sp->info);
	if (sp->cfg_error.len)
		return sp_fail(sp, SPONGE_ECONFIG, "%s", sp->cfg_error.data);
	const char *where = sp->cfg.path ? sp->cfg.path : "(no config file)";
	if (sp->cfg.transport && strcmp(sp->cfg.transport, "smtp") != 0)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "%s: mail.transport is %s: checking an SMTP "
			       "server applies to transport = smtp only",
			       where, sp->cfg.transport);
	if (!sp->cfg.host)
		return sp_fail(sp, SPONGE_ECONFIG, "%s: smtp.host is not set",
			       where);
	const sp_transport *t = &sp_transport_smtp;
	sp_send_result sr;
	memset(&sr, 0, sizeof sr);
	sb_init(&sr.reply, 2048);
	void *link = NULL;
	uint64_t max = 0;
	int rc = t->open(sp, &sr, &link, &max);
	if (rc == SPONGE_OK)
		t->describe(link, &sp->info);
	t->close(link);
	sb_free(&sr.reply);
	return rc;
}

const char *sponge_check_report(const sponge *sp)
{
	return sp && sp->info.data ? sp->info.data : "";
}

/* Compose the test message and hand it over through t. */
static int send_test(sponge *sp, const sp_transport *t, sp_send_result *sr,
		     sponge_writer out, void *arg)
{
	sp_batch b;
	memset(&b, 0, sizeof b);
	b.n.highest = 7;
	b.env.date_us = sponge_now();
	sp_plan_test_envelope(sp, &b.env);
	sp_composer comp;
	sp_compose_init(&comp, sp, &b, NULL);
	void *link = NULL;
	uint64_t max = 0;
	int rc = t->open ? t->open(sp, sr, &link, &max) : SPONGE_OK;
	if (rc == SPONGE_OK)
		rc = t->send(sp, link, &comp, sr, out, arg);
	if (t->close)
		t->close(link);
	sp_compose_free(&comp);
	if (rc == SPONGE_OK)
		sb_printf(&sp->info, "sent <%s> to %s%s: %s", b.env.message_id,
			  sp->cfg.to_addr[0], sp->cfg.nto > 1 ? " and others" : "",
			  sr->reply.len ? sr->reply.data : "accepted");
	return rc;
}

int sponge_check_send(sponge *sp, sponge_writer out, void *arg)
{
	SP_GUARD;
	if (!sp_alive(sp))
		return SPONGE_EINVAL;
	sb_reset(&sp->err);
	sb_reset(&sp->info);
	int rc = sponge_check_config(sp);
	if (rc)
		return rc;
	const sp_transport *t = sp_transport_of(&sp->cfg);
	sp_send_result sr;
	memset(&sr, 0, sizeof sr);
	sb_init(&sr.reply, 2048);
	sb_init(&sr.refused, 4096);
	rc = send_test(sp, t, &sr, out, arg);
	if (rc && !sp->err.len)
		sp_fail(sp, rc, "%s%s%s", sr.stage ? sr.stage : "",
			sr.stage ? ": " : "", sr.reply.data);
	sb_free(&sr.reply);
	sb_free(&sr.refused);
	return rc;
}
