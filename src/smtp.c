/* smtp.c - the SMTP transport.
 *
 * open: our own connection (smtp_conn.c) -- connect within smtp.timeout,
 * TLS verified, EHLO, AUTH -- which also tells the plan the server's SIZE.
 * send: libESMTP runs the transaction (MAIL with SIZE=, RCPT, DATA,
 * dot-stuffing) through the relay (smtp_relay.c), which records every
 * reply whole; the outcome's codes are libESMTP's status API's (the
 * relay's where that API has nothing or a known quirk), its words the
 * relay's record.
 * close: QUIT when the connection is between transactions. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
/* order matters: libesmtp.h declares the TLS and AUTH hooks only when
 * these came first */
#include <auth-client.h>
#include <libesmtp.h>

#include "sigpipe.h"
#include "flush.h"
#include "smtp_relay.h"

typedef struct smtp_link {
	sc_conn c;
	bool started;  /* sc_open was called (c holds what to free) */
	bool open;     /* sc_open succeeded */
	bool clean;    /* between transactions: QUIT may be said */
	sp_pipe_guard pipe; /* SIGPIPE blocked in this thread until close:
			       OpenSSL and libESMTP write with write() */
} smtp_link;

/* ---- credentials ---------------------------------------------------- */

/* First line of a command's output (bounded like every wait of a flush:
 * smtp.timeout, capped output, its process group killed on timeout). */
static int run_secret(sponge *sp, const char *key, const char *cmd,
		      size_t cap, spbuf *out)
{
	spbuf why;
	sb_init(&why, 512);
	int rc = sp_run_command(cmd, sp->cfg.timeout_us, cap, out, &why);
	if (rc != SPONGE_OK)
		sp_fail(sp, rc, "smtp.%s: %s", key, why.data);
	sb_free(&why);
	char *nl = memchr(out->data, '\n', out->len);
	if (nl) {
		out->len = (size_t)(nl - out->data);
		out->data[out->len] = '\0';
	}
	return rc;
}

/* The secret for AUTH: an access token from token_command, or the
 * password from password_file, password_command or
 * $LOGSPONGE_SMTP_PASSWORD (first line only).  The caller wipes it. */
static int smtp_secret(sponge *sp, spbuf *out)
{
	const sp_config *c = &sp->cfg;
	sb_reset(out);
	int rc = SPONGE_OK;
	if (c->token_command) {
		rc = run_secret(sp, "token_command", c->token_command,
				16384, out);
	} else if (c->password_file) {
		FILE *f = fopen(c->password_file, "re");
		if (!f)
			return sp_fail(sp, sp_errno_code(errno, SPONGE_ECONFIG),
				       "%s: %s", c->password_file,
				       strerror(errno));
		int ch;
		while ((ch = fgetc(f)) != EOF && ch != '\n' && out->len < 1024)
			sb_addc(out, (char)ch);
		fclose(f);
	} else if (c->password_command) {
		rc = run_secret(sp, "password_command", c->password_command,
				SP_COMMAND_OUTPUT_MAX, out);
	} else {
		const char *e = getenv("LOGSPONGE_SMTP_PASSWORD");
		if (!e)
			return sp_fail(sp, SPONGE_ECONFIG,
				       "smtp.user is set but there is no "
				       "password: set smtp.password_file, "
				       "smtp.password_command, "
				       "smtp.token_command or "
				       "LOGSPONGE_SMTP_PASSWORD");
		sb_adds(out, e);
	}
	if (rc)
		return rc;
	if (out->len && out->data[out->len - 1] == '\r')
		out->data[--out->len] = '\0';
	if (c->token_command && !out->len)
		return sp_fail(sp, SPONGE_ECONFIG,
			       "smtp.token_command printed no token");
	return out->failed ? sp_fail(sp, SPONGE_ENOMEM, "out of memory")
			   : SPONGE_OK;
}

/* ---- open, close, describe ------------------------------------------ */

/* r's failure as the handle's message: "smtp <stage>: <reply>". */
static int failed(sponge *sp, sp_send_result *r)
{
	char what[48];
	snprintf(what, sizeof what, "smtp %s", r->stage ? r->stage : "");
	return sp_send_failed(sp, r, what);
}

static int smtp_open(sponge *sp, sp_send_result *r, void **link,
		     uint64_t *max_size)
{
	*link = NULL;
	*max_size = 0;
	smtp_link *l = sp_malloc(sizeof *l);
	if (!l)
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	memset(l, 0, sizeof *l);
	l->c.fd = -1;
	*link = l;
	sp_pipe_block(&l->pipe);
	spbuf secret;
	sb_init(&secret, 0);
	int rc = SPONGE_OK;
	if (sp->cfg.user && (rc = smtp_secret(sp, &secret)) != SPONGE_OK) {
		/* a command that timed out may work next time */
		r->outcome = rc == SPONGE_ETEMPFAIL	? SP_TEMPORARY
			     : rc == SPONGE_ERESOURCE	? SP_RESOURCE
							: SP_CONFIG;
		r->stage = "password";
		sb_adds(&r->reply, sponge_errmsg(sp));
	}
	if (rc == SPONGE_OK) {
		const sp_config *cfg = &sp->cfg;
		sc_params p = {
			.host = cfg->host, .port = cfg->port, .tls = cfg->tls,
			.verify = cfg->verify, .ca_file = cfg->ca_file,
			.helo = cfg->helo,
			.timeout_ms = (int)(cfg->timeout_us / 1000),
			.user = cfg->user, .auth = cfg->auth,
			.secret = secret.data,
			.token = cfg->token_command != NULL,
		};
		l->started = true;
		if (sc_open(&l->c, &p, r) != SPONGE_OK)
			rc = failed(sp, r);
	}
	if (secret.cap)
		OPENSSL_cleanse(secret.data, secret.cap);
	sb_free(&secret);
	l->open = l->clean = rc == SPONGE_OK;
	if (rc == SPONGE_OK && l->c.has_size)
		*max_size = l->c.size;
	return rc;
}

static void smtp_close(void *link)
{
	smtp_link *l = link;
	if (!l)
		return;
	if (l->started)
		sc_close(&l->c, l->open && l->clean);
	sp_pipe_restore(&l->pipe);
	sp_free(l);
}

static void smtp_describe(void *link, spbuf *out)
{
	const smtp_link *l = link;
	const sc_conn *c = &l->c;
	sb_printf(out, "%s port %d, %s, EHLO %s", c->p.host, c->p.port,
		  c->tls_version[0] ? c->tls_version : "no TLS", c->helo);
	if (c->mech)
		sb_printf(out, ", AUTH %s as %s", c->mech, c->p.user);
	if (c->has_size && c->size)
		sb_printf(out, ", SIZE %llu", (unsigned long long)c->size);
}

/* ---- send -------------------------------------------------------------- */

typedef struct msg_ctx {
	sp_composer *comp;
	smtp_relay *rl;
} msg_ctx;

static const char *message_cb(void **ctx, int *len, void *arg)
{
	(void)ctx;
	msg_ctx *m = arg;
	if (!len) {
		sp_compose_rewind(m->comp);
		return NULL;
	}
	size_t n = 0;
	const char *p = sp_compose_next(m->comp, &n);
	if (!p && m->comp->rc != SPONGE_OK) /* no final dot for this one */
		atomic_store(&m->rl->abort_data, true);
	*len = (int)n;
	return p;
}

static int class_of(int code)
{
	return code >= 500 ? SP_PERMANENT : SP_TEMPORARY;
}

/* The transaction's reply codes.  libESMTP's own status API says what it
 * saw: MAIL's reply, each recipient's, the message's.  The relay's record
 * stands in where that API has nothing to say or its notes list a quirk:
 * with every recipient refused the message's status is the answer to
 * DATA (a 503), a 421 at RCPT leaves it 0, and a refusal before the dot
 * (the relay stops the transfer) never reaches libESMTP. */
typedef struct codes {
	int mail, data;
	int rcpt_ok, rcpt_temp, rcpt_perm;
} codes;

static void count_rcpt(smtp_recipient_t r, const char *mailbox, void *arg)
{
	(void)mailbox;
	codes *k = arg;
	const smtp_status_t *st = smtp_recipient_status(r);
	int code = st ? st->code : 0;
	if (code >= 200 && code < 300)
		k->rcpt_ok++;
	else if (code >= 500)
		k->rcpt_perm++;
	else if (code >= 400)
		k->rcpt_temp++;
}

/* What libESMTP says, read before its session goes. */
static void esmtp_codes(smtp_message_t m, codes *k)
{
	memset(k, 0, sizeof *k);
	const smtp_status_t *st = smtp_reverse_path_status(m);
	k->mail = st ? st->code : 0;
	smtp_enumerate_recipients(m, count_rcpt, k);
	st = smtp_message_transfer_status(m);
	k->data = st ? st->code : 0;
}

/* libESMTP's codes, the relay's where libESMTP has none or a quirk. */
static void merge_codes(codes *k, const smtp_relay *rl)
{
	if (!k->mail)
		k->mail = rl->mail_code;
	if (!k->rcpt_ok && !k->rcpt_temp && !k->rcpt_perm) {
		k->rcpt_ok = rl->rcpt_ok;
		k->rcpt_temp = rl->rcpt_temp;
		k->rcpt_perm = rl->rcpt_perm;
	}
	if (!k->rcpt_ok || !rl->data_sent || !k->data)
		k->data = rl->data_code;
}

/* What the relay's record says happened. */
static void outcome(sponge *sp, smtp_relay *rl, sp_composer *comp,
		    sp_send_result *r, codes k, int smtp_err)
{
	char ebuf[128];
	merge_codes(&k, rl);
	r->stage = rl->stage ? rl->stage : "mail";
	if (rl->aborted || comp->rc != SPONGE_OK) {
		r->outcome = SP_LOCAL;
		r->stage = "compose";
		sb_printf(&r->reply, "reading the spool failed: %s",
			  sponge_errmsg(sp));
	} else if (k.mail >= 400) {
		r->outcome = k.mail == 530 ? SP_AUTH : class_of(k.mail);
		r->stage = "mail";
		sb_adds(&r->reply, rl->reply.data);
	} else if (k.mail && !k.rcpt_ok &&
		   (k.rcpt_temp || k.rcpt_perm)) {
		r->outcome = k.rcpt_temp ? SP_TEMPORARY : SP_PERMANENT;
		r->stage = "rcpt";
		sb_adds(&r->reply, rl->refused.data);
	} else if (rl->data_sent && k.data >= 200 && k.data < 300) {
		r->outcome = SP_SENT;
		r->stage = "";
		sb_adds(&r->reply, rl->reply.data);
		sb_adds(&r->refused, rl->refused.data);
		if (rl->refused.len)
			sb_printf(&r->reply, "; not accepted: %s",
				  rl->refused.data);
	} else if (k.data >= 400) {
		r->outcome = class_of(k.data);
		r->stage = "data";
		sb_adds(&r->reply, rl->reply.data);
	} else { /* no verdict: the connection broke or timed out */
		/* libESMTP gives a system error as its errno negated */
		r->outcome = rl->out_of_fds || smtp_err == -EMFILE ||
					     smtp_err == -ENFILE
				     ? SP_RESOURCE : SP_TEMPORARY;
		sb_adds(&r->reply, rl->broke.len ? rl->broke.data
			: smtp_strerror(smtp_err, ebuf, sizeof ebuf));
		if (rl->reply.len)
			sb_printf(&r->reply, "; last reply: %s", rl->reply.data);
		/* the whole message went out and no verdict came back: the
		 * server may have it */
		r->maybe_delivered = rl->data_sent;
	}
}

/* libESMTP's session: to the relay, greeting with its token, the
 * envelope, SIZE= (the relay offers SIZE when the server does), the
 * message from the composer.  Its timeouts outlast the relay's, so the
 * relay, which talks to the server, decides. */
static int run_libesmtp(const sp_config *cfg, smtp_relay *rl,
			sp_composer *comp, codes *k, int *smtp_err)
{
	smtp_session_t s = smtp_create_session();
	smtp_message_t m = s ? smtp_add_message(s) : NULL;
	if (!m) {
		if (s)
			smtp_destroy_session(s);
		return SPONGE_ENOMEM;
	}
	char hostport[32];
	snprintf(hostport, sizeof hostport, "127.0.0.1:%d", rl->port);
	smtp_set_server(s, hostport);
	smtp_set_hostname(s, rl->token);
	long ms = (long)rl->c->p.timeout_ms * 2 + 1000;
	for (int w = Timeout_GREETING; w <= Timeout_DATA2; w++)
		smtp_set_timeout(s, w | Timeout_OVERRIDE_RFC2822_MINIMUM, ms);
	smtp_set_reverse_path(m, cfg->from_addr);
	for (int i = 0; i < cfg->nto; i++)
		smtp_add_recipient(m, cfg->to_addr[i]);
	smtp_size_set_estimate(m, (unsigned long)comp->b->size.estimate);
	msg_ctx mc = {comp, rl};
	smtp_set_messagecb(m, message_cb, &mc);
	smtp_start_session(s);
	*smtp_err = smtp_errno();
	esmtp_codes(m, k);
	smtp_destroy_session(s);
	return SPONGE_OK;
}

/* The relay could not start: out of descriptors, a sandbox that forbids
 * listening on loopback (a setting to change, so a configuration error),
 * or else a local failure. */
static void relay_failed(sp_send_result *r, int e)
{
	r->stage = "relay";
	if (e == EPERM || e == EACCES || e == EADDRNOTAVAIL || e == EAFNOSUPPORT) {
		r->outcome = SP_CONFIG;
		sb_printf(&r->reply, "listening on 127.0.0.1 is not allowed here "
				     "(%s): the SMTP transport passes the message "
				     "through a loopback listener of its own; "
				     "allow it in the sandbox (or use transport "
				     "= sendmail)", strerror(e));
		return;
	}
	r->outcome = e == EMFILE || e == ENFILE ? SP_RESOURCE : SP_LOCAL;
	sb_printf(&r->reply, "starting the relay: %s", strerror(e));
}

static int smtp_send(sponge *sp, void *link, sp_composer *comp,
		     sp_send_result *r, sponge_writer out, void *arg)
{
	(void)out, (void)arg;
	smtp_link *l = link;
	smtp_relay rl;
	if (!sr_start(&rl, &l->c)) {
		relay_failed(r, errno);
		sr_stop(&rl);
		sr_free(&rl);
		return sp_send_failed(sp, r, "smtp relay");
	}
	int smtp_err = 0;
	codes k;
	memset(&k, 0, sizeof k);
	int rc = run_libesmtp(&sp->cfg, &rl, comp, &k, &smtp_err);
	sr_stop(&rl);
	if (rc == SPONGE_OK)
		outcome(sp, &rl, comp, r, k, smtp_err);
	/* QUIT only between transactions: inside DATA it would be text */
	l->clean = !rl.broke.len && (!rl.data_started || rl.data_sent);
	sr_free(&rl);
	if (rc != SPONGE_OK)
		return sp_fail(sp, rc, "smtp: out of memory");
	return r->outcome == SP_SENT ? SPONGE_OK : failed(sp, r);
}

static bool smtp_config_ok(const sp_config *c, spbuf *why)
{
	if (c->host)
		return true;
	sb_adds(why, "smtp.host is not set");
	return false;
}

const sp_transport sp_transport_smtp = {
	.name = "smtp",
	.config_ok = smtp_config_ok,
	.open = smtp_open,
	.send = smtp_send,
	.close = smtp_close,
	.describe = smtp_describe,
};
