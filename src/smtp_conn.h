/* smtp_conn.h - our own connection to an SMTP server (smtp_conn.c): TCP
 * to each address of the host in turn, TLS (STARTTLS or implicit; any
 * version from 1.2 that both sides speak; chain and host name or IP
 * verified; SNI for names), EHLO, AUTH (PLAIN, LOGIN, XOAUTH2,
 * OAUTHBEARER), every reply read whole, every step within smtp.timeout.
 * libESMTP runs the mail transaction over it through the relay
 * (smtp_relay.c); nothing else touches its socket. */
#ifndef SPONGE_SMTP_CONN_H
#define SPONGE_SMTP_CONN_H

#include <openssl/ssl.h>

#include "transport.h"

/* What a connection needs to know: the [smtp] settings it uses, and
 * nothing of the handle. */
typedef struct sc_params {
	const char *host;
	int port;               /* 0: 587, or 465 with implicit TLS */
	int tls;                /* enum sp_tls */
	bool verify;            /* the chain and the host name or IP */
	const char *ca_file;    /* NULL: the system's CAs */
	const char *helo;       /* NULL: this host's name */
	int timeout_ms;         /* each step's bound */
	const char *user;       /* NULL: no AUTH */
	int auth;               /* enum sp_auth (0: the best offered) */
	const char *secret;     /* a password, or with token an OAuth2
				   access token; used by sc_open only */
	bool token;
} sc_params;

typedef struct sc_conn {
	sc_params p;            /* secret NULL once open */
	sp_send_result *r;      /* where failures are described */
	int fd;                 /* -1: not connected */
	SSL_CTX *ctx;
	SSL *ssl;               /* NULL until TLS is up */
	bool is_ip;             /* p.host is an address literal */
	char helo[300];         /* the name we greet with */
	/* what the server's last EHLO offered */
	bool has_size, starttls, chunking, pipelining, enhanced, eightbit;
	uint64_t size;          /* its SIZE limit (0: none given) */
	char auth[256];         /* its AUTH mechanisms, " PLAIN LOGIN " */
	/* the last reply: code, text (multi-line joined with " / "), and
	 * each line's text after the code, '\n'-separated (EHLO's list) */
	int code;
	spbuf reply, lines;
	spbuf in;               /* bytes read and not yet consumed */
	/* TLS */
	char tls_version[16];   /* "TLSv1.3" once up */
	long verify_err;        /* X509_V_* of the first failure, or 0 */
	char cert_names[256];   /* the certificate's names (a mismatch) */
	char cert_subject[256]; /* the subject that failed verification */
	const char *mech;       /* the AUTH mechanism used, or NULL */
	bool tls_alert;         /* the last I/O failure was the server's
				   TLS alert (a refusal, not a network
				   fault) */
} sc_conn;

/* Connect, read the greeting, EHLO, STARTTLS (or implicit TLS) and EHLO
 * again, AUTH (p->user NULL: none).  On failure r says how (outcome,
 * stage, the server's whole reply or the cause) and the outcome's code
 * is returned (sp_outcome_code); the handle's message is the caller's. */
SP_HIDDEN int sc_open(sc_conn *c, const sc_params *p, sp_send_result *r);
/* The same steps over a connected socket fd (c owns it from now on):
 * sc_attach sets c up, sc_hello reads the greeting and EHLOs.  sc_open
 * is connect + attach + hello + TLS + AUTH; the tests and the fuzz
 * target speak to the parsers through a socketpair. */
SP_HIDDEN void sc_attach(sc_conn *c, const sc_params *p, sp_send_result *r,
			 int fd);
SP_HIDDEN int sc_hello(sc_conn *c);
/* QUIT (its 221 waited for at most a second), close; c can be reused. */
SP_HIDDEN void sc_close(sc_conn *c, bool quit);

/* For the relay: raw I/O with a deadline (sponge_now() microseconds).
 * sc_read gives buffered bytes first; 0 at end of stream, -1 on error or
 * timeout.  sc_reply reads one whole reply into code/reply/lines; the
 * raw bytes of it are appended to raw (may be NULL).  sc_send writes. */
SP_HIDDEN ssize_t sc_read(sc_conn *c, char *buf, size_t n, int64_t deadline);
SP_HIDDEN bool sc_send(sc_conn *c, const char *p, size_t n, int64_t deadline);
SP_HIDDEN bool sc_reply(sc_conn *c, int64_t deadline, spbuf *raw);
/* Bytes the connection has read ahead (buffered or inside TLS). */
SP_HIDDEN bool sc_pending(const sc_conn *c);
/* Wait until fd is ready for ev (POLLIN, POLLOUT): 1, or 0 on timeout,
 * -1 on error. */
SP_HIDDEN int sc_wait(int fd, short ev, int64_t deadline);
/* The deadline of one step from now. */
SP_HIDDEN int64_t sc_deadline(const sc_conn *c);

#endif
