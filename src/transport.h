/* transport.h - the interface every transport implements, and the
 * registry that config parsing, check and flush look them up in. */
#ifndef SPONGE_TRANSPORT_H
#define SPONGE_TRANSPORT_H

#include "internal.h"

typedef struct sp_composer sp_composer; /* flush.h */

/* What a transport reports.  Zero is "unknown": a transport that returns
 * without saying what happened has not sent anything. */
enum sp_outcome {
	SP_OUTCOME_UNKNOWN = 0,
	SP_SENT,       /* the server (or command, or file) took it */
	SP_TEMPORARY,  /* try again later: network, 4xx, timeout */
	SP_PERMANENT,  /* 5xx */
	SP_AUTH,       /* AUTH refused */
	SP_TLS_FAILED, /* no STARTTLS, handshake or certificate failure */
	SP_CONFIG,     /* the configuration cannot work */
	SP_LOCAL,      /* local failure (memory, spool read) */
	SP_RESOURCE,   /* out of file descriptors: a local failure too */
};

typedef struct sp_send_result {
	int outcome;         /* enum sp_outcome */
	const char *stage;   /* static: "connect", "tls", "auth", "rcpt", … */
	spbuf reply;         /* the server's whole reply, or the cause */
	bool maybe_delivered;/* the data went out but no reply came back */
	spbuf refused;       /* sent, but these recipients were refused:
				"RCPT <a>: 550 5.1.1 …; RCPT <b>: …" */
} sp_send_result;

/*
 * A transport: its name in [mail] transport, what it needs of the config
 * (NULL: nothing; else it writes "what is missing" to why and returns
 * false), and how it sends.  All of them are in one registry
 * (transports.c); adding one is a file, a registry line, docs and tests.
 *
 * A flush calls open (when there is one) before the message is planned,
 * so that the plan fits what the peer takes; then send with what open
 * made; then close, whatever happened.  check --smtp is open + close.
 */
typedef struct sp_transport {
	const char *name;
	bool (*config_ok)(const sp_config *c, spbuf *why);
	/* What `check` looks at beyond the config's own values (a
	 * directory writable, a command found); NULL: nothing more. */
	bool (*ready)(const sp_config *c, spbuf *why);
	/* Connect.  *link is the transport's own; *max_size gets the
	 * largest message the peer takes (0: it did not say).  On failure r
	 * says how and the outcome's code is returned.  NULL: nothing to
	 * open (link stays NULL). */
	int (*open)(sponge *sp, sp_send_result *r, void **link,
		    uint64_t *max_size);
	/* Hand the message over: SPONGE_OK with r->outcome SP_SENT, or the
	 * failure's code with r saying how (sp_send_failed). */
	int (*send)(sponge *sp, void *link, sp_composer *c, sp_send_result *r,
		    sponge_writer out, void *arg);
	/* End what open made (link may be NULL). */
	void (*close)(void *link);
	/* One line on what open found, for check (NULL: none). */
	void (*describe)(void *link, spbuf *out);
} sp_transport;

/* "sent", "temporary", … as history shows it (static). */
SP_HIDDEN const char *sp_outcome_name(int outcome);
/* The SPONGE_* code of an outcome (SP_SENT: SPONGE_OK). */
SP_HIDDEN int sp_outcome_code(int outcome);
/* A send failed as r says: the handle's message becomes "what: reply"
 * and the outcome's code is returned (an outcome still unknown or "sent"
 * becomes SP_LOCAL).  Transports end every failure with it. */
SP_HIDDEN int sp_send_failed(sponge *sp, sp_send_result *r, const char *what);

/* The transport named so, or NULL. */
SP_HIDDEN const sp_transport *sp_transport_find(const char *name);
/* The transport mail.transport names (smtp when it names none). */
SP_HIDDEN const sp_transport *sp_transport_of(const sp_config *c);
/* "smtp, sendmail, maildir, stdout, null" (static). */
SP_HIDDEN const char *sp_transport_names(void);

SP_HIDDEN extern const sp_transport sp_transport_smtp;
SP_HIDDEN extern const sp_transport sp_transport_sendmail;
SP_HIDDEN extern const sp_transport sp_transport_maildir;
SP_HIDDEN extern const sp_transport sp_transport_stdout;
SP_HIDDEN extern const sp_transport sp_transport_null;
#endif
