/* smtp_relay.h - libESMTP runs the mail transaction (MAIL, RCPT, DATA,
 * dot-stuffing) over our connection through this relay (smtp_relay.c):
 * a thread that takes one loopback connection -- the one whose EHLO
 * names a random token only this process knows -- answers its greeting
 * and EHLO itself (no AUTH, STARTTLS, PIPELINING or CHUNKING offered;
 * SIZE when the server has one), then passes each command to the server
 * and its whole reply back, and records them.  It watches the server
 * during DATA, so an early refusal stops the transfer at once. */
#ifndef SPONGE_SMTP_RELAY_H
#define SPONGE_SMTP_RELAY_H

#include <pthread.h>
#include <stdatomic.h>

#include "smtp_conn.h"

typedef struct smtp_relay {
	sc_conn *c;             /* the server side (the caller's) */
	int listen_fd, fd;      /* our loopback listener; libESMTP's end */
	int stop[2];            /* a pipe: the caller says "stop" */
	int port;               /* where libESMTP connects */
	char token[40];         /* libESMTP's EHLO name */
	pthread_t thread;
	bool running;
	atomic_bool abort_data; /* the composer failed: no final dot */
	/* what the transaction saw (read after sr_stop) */
	const char *stage;      /* the command that got the last reply */
	int mail_code;
	int rcpt_ok, rcpt_temp, rcpt_perm;
	spbuf refused;          /* "RCPT <a>: 550 5.1.1 …; RCPT <b>: …" */
	int data_code;          /* the reply to DATA, then to the dot */
	bool data_started;      /* 354 came */
	bool data_sent;         /* the final dot went out */
	bool aborted;           /* the dot was withheld (abort_data) */
	spbuf reply;            /* the last reply, whole */
	spbuf broke;            /* the server side failed: why ("" no) */
	bool out_of_fds;        /* it failed for want of a descriptor */
} smtp_relay;

/* Listen on 127.0.0.1 and start the thread.  False on failure (errno). */
SP_HIDDEN bool sr_start(smtp_relay *rl, sc_conn *c);
/* Wait for the thread to end (telling it to), close what it opened. */
SP_HIDDEN void sr_stop(smtp_relay *rl);
/* The record's buffers, once read. */
SP_HIDDEN void sr_free(smtp_relay *rl);

#endif
