/* smtp.c - the SMTP transport: libESMTP over a verified STARTTLS.
 *
 * libESMTP 1.1.0 traps handled here (see shared/notes/libesmtp.md):
 * its own SSL_CTX never verifies, so we pass ours (chain + host name,
 * SNI, TLS 1.2 at most against the TLS 1.3 ticket hang, TCP_NODELAY);
 * smtp_start_session() says little, so the outcome is read from the
 * message, reverse-path and recipient statuses and from the protocol
 * monitor (a refused AUTH is otherwise silent); there is no connect
 * timeout, so reachability is probed first within smtp.timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
/* order matters: libesmtp.h declares the TLS and AUTH hooks only when
 * these came first */
#include <auth-client.h>
#include <libesmtp.h>

#include "flush.h"

typedef struct smtp_run {
	sponge *sp;
	sp_composer *comp;
	sp_send_result *r;
	const sp_config *cfg;
	bool is_ip;
	spbuf pass;
	/* what the protocol monitor saw */
	char verb[12];          /* last command verb the client wrote */
	char reply[512];        /* last complete reply line of the server */
	char auth_reply[512];   /* the server's answer that ended AUTH */
	bool auth_failed, auth_ok, tls_up, no_starttls, starttls_refused;
	bool started_data;
	bool probed;            /* the reachability probe connected */
	bool probe;             /* check --smtp: QUIT instead of MAIL */
	bool probe_done;        /* ... and it did */
	SSL *ssl;               /* the session's TLS object, once up */
	int fd;                 /* its socket, once known (-1 before) */
	int port;               /* the server's port */
	int peer_port;          /* the port libESMTP connects to */
	struct relay *relay;    /* implicit TLS: our relay, or NULL */
	/* what TLS verification saw */
	long verify_err;        /* X509_V_* of the first failure, or 0 */
	char verify_depth_subject[256];
	bool cert_rejected;
	spbuf inbuf;            /* partial reply lines */
} smtp_run;

static pthread_once_t auth_once = PTHREAD_ONCE_INIT;
static void auth_init(void) { auth_client_init(); }

struct relay;
static void relay_quit(struct relay *rl, int libesmtp_fd);

/* ---- protocol monitor ------------------------------------------- */

/* The connected socket to the server, for a session without TLS (whose
 * socket libESMTP does not show): the one TCP socket of ours whose peer
 * port is the server's. */
static int find_socket(const smtp_run *x)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
			continue;
		int port = ss.ss_family == AF_INET
				   ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
			   : ss.ss_family == AF_INET6
				   ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
				   : -1;
		if (port == x->peer_port)
			return fd;
	}
	return -1;
}

/*
 * check --smtp: libESMTP 1.1.0 cannot end a session after AUTH without a
 * message (it dereferences the missing message), so the probe carries
 * one and, when libESMTP is about to write MAIL (the monitor sees the
 * buffer before it goes out), sends QUIT itself and closes the socket:
 * the server sees a clean QUIT and never a MAIL.
 */
static void probe_quit(smtp_run *x)
{
	if (x->probe_done)
		return;
	x->probe_done = true;
	if (x->relay) {
		relay_quit(x->relay, find_socket(x));
		return;
	}
	int fd = x->fd >= 0 ? x->fd : find_socket(x);
	if (x->ssl)
		SSL_write(x->ssl, "QUIT\r\n", 6);
	else if (fd >= 0 && write(fd, "QUIT\r\n", 6) != 6) {
		/* the shutdown below ends the session anyway */
	}
	if (fd >= 0) {
		struct pollfd pfd = {fd, POLLIN, 0};
		poll(&pfd, 1, 1000); /* let the server answer 221 */
		shutdown(fd, SHUT_RDWR);
	}
}

static void on_reply_line(smtp_run *x, const char *line, size_t n)
{
	/* "250-SIZE 10240000" in the EHLO reply: the server's limit */
	if (n > 9 && strncmp(line, "250", 3) == 0 &&
	    strncasecmp(line + 4, "SIZE ", 5) == 0) {
		unsigned long long v = strtoull(line + 9, NULL, 10);
		if (v)
			x->r->server_size = v;
	}
	if (n < 4 || line[3] == '-')
		return; /* continuation of a multi-line reply */
	snprintf(x->reply, sizeof x->reply, "%.*s", (int)(n > 400 ? 400 : n),
		 line);
	if (strcmp(x->verb, "AUTH") == 0 && line[0] != '3') {
		if (line[0] == '2')
			x->auth_ok = true;
		else {
			x->auth_failed = true;
			snprintf(x->auth_reply, sizeof x->auth_reply, "%s",
				 x->reply);
		}
	}
	if (strcmp(x->verb, "STARTTLS") == 0 && line[0] != '2')
		x->starttls_refused = true;
}

static void monitor(const char *buf, int len, int writing, void *arg)
{
	smtp_run *x = arg;
	if (writing == SMTP_CB_HEADERS || len <= 0)
		return;
	if (writing == SMTP_CB_WRITING) {
		static const char *const verbs[] = {
			"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT",
			"DATA", "ETRN", "BDAT"}; /* not QUIT/RSET: the stage
						    is where it failed */
		/* pipelined commands: the last verb in the buffer counts */
		for (const char *p = buf; p < buf + len;) {
			for (size_t i = 0; i < sizeof verbs / sizeof verbs[0];
			     i++) {
				size_t vl = strlen(verbs[i]);
				if ((size_t)(buf + len - p) >= vl &&
				    strncasecmp(p, verbs[i], vl) == 0) {
					snprintf(x->verb, sizeof x->verb, "%s",
						 verbs[i]);
					if (i == 2)
						sp_crash_point("starttls");
					if (i == 3)
						sp_crash_point("auth");
					if (i == 6)
						x->started_data = true;
					if (i == 4 && x->probe)
						probe_quit(x);
				}
			}
			const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
			p = nl ? nl + 1 : buf + len;
		}
		return;
	}
	sb_add(&x->inbuf, buf, (size_t)len);
	char *start = x->inbuf.data, *nl;
	while ((nl = memchr(start, '\n',
			    x->inbuf.len - (size_t)(start - x->inbuf.data)))) {
		size_t n = (size_t)(nl - start);
		if (n && start[n - 1] == '\r')
			n--;
		on_reply_line(x, start, n);
		start = nl + 1;
	}
	size_t rest = x->inbuf.len - (size_t)(start - x->inbuf.data);
	memmove(x->inbuf.data, start, rest);
	x->inbuf.len = rest;
	x->inbuf.data[rest] = '\0';
}

/* ---- TLS -------------------------------------------------------- */

static int verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		store, SSL_get_ex_data_X509_STORE_CTX_idx());
	smtp_run *x = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	if (!x)
		return ok;
	if (!x->cfg->verify)
		return 1;
	if (!ok && !x->verify_err) {
		x->verify_err = X509_STORE_CTX_get_error(store);
		X509 *c = X509_STORE_CTX_get_current_cert(store);
		if (c)
			X509_NAME_oneline(X509_get_subject_name(c),
					  x->verify_depth_subject,
					  sizeof x->verify_depth_subject);
	}
	return ok;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	smtp_run *x = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!x)
		return;
	/* SNI (libESMTP sends none); only for names, never IP literals */
	SSL *mut; /* OpenSSL hands the callback a const SSL; SNI needs it */
	memcpy(&mut, &ssl, sizeof mut);
	if (!x->is_ip)
		SSL_set_tlsext_host_name(mut, x->cfg->host);
	/* no Nagle stall on the short last piece of DATA */
	int fd = SSL_get_fd(ssl), one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	x->fd = fd;
}

static SSL_CTX *make_ctx(smtp_run *x)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* TLS 1.3 session tickets make libESMTP 1.1.0 wait for an EHLO
	 * reply it never asked for (seen 5 in 40 runs); 1.2 does not.  Our
	 * own relay (implicit TLS) reads them itself: no cap there. */
	if (x->cfg->tls == SP_TLS_STARTTLS)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_app_data(ctx, x);
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (x->cfg->verify) {
		int ok = x->cfg->ca_file
				 ? SSL_CTX_load_verify_locations(
					   ctx, x->cfg->ca_file, NULL)
				 : SSL_CTX_set_default_verify_paths(ctx);
		X509_VERIFY_PARAM *p = SSL_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_hostflags(
			p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = ok && (x->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(
					       p, x->cfg->host)
				     : X509_VERIFY_PARAM_set1_host(
					       p, x->cfg->host, 0));
		if (!ok) {
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, verify_cb);
	}
	return ctx;
}

/* libESMTP's own post-handshake checks use the name it connected to;
 * answer them with our verification of the configured name. */
static bool peer_ok(smtp_run *x, SSL *ssl)
{
	if (!x->cfg->verify)
		return true;
	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return false;
	int ok = x->is_ip ? X509_check_ip_asc(cert, x->cfg->host, 0)
			  : X509_check_host(cert, x->cfg->host, 0,
					    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
					    NULL);
	X509_free(cert);
	return ok == 1;
}

static void event_cb(smtp_session_t s, int ev, void *arg, ...)
{
	(void)s;
	smtp_run *x = arg;
	va_list ap;
	va_start(ap, arg);
	switch (ev) {
	case SMTP_EV_EXTNA_STARTTLS:
		x->no_starttls = true;
		break;
	case SMTP_EV_STARTTLS_OK:
		x->tls_up = true;
		x->ssl = va_arg(ap, SSL *);
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long vfy = va_arg(ap, long);
		int *ok = va_arg(ap, int *);
		SSL *ssl = va_arg(ap, SSL *);
		*ok = !x->cfg->verify || (vfy == X509_V_OK && peer_ok(x, ssl));
		x->cert_rejected |= !*ok;
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE: {
		int *ok = va_arg(ap, int *);
		*ok = !x->cfg->verify;
		x->cert_rejected |= !*ok;
		break;
	}
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		int *ok = va_arg(ap, int *);
		(void)va_arg(ap, const char *);
		SSL *ssl = va_arg(ap, SSL *);
		*ok = peer_ok(x, ssl);
		x->cert_rejected |= !*ok;
		break;
	}
	case SMTP_EV_WEAK_CIPHER: {
		(void)va_arg(ap, int);
		int *ok = va_arg(ap, int *);
		*ok = 1; /* TLS 1.2+ with OpenSSL 3 defaults */
		break;
	}
	case SMTP_EV_NO_CLIENT_CERTIFICATE: {
		int *ok = va_arg(ap, int *);
		*ok = 1;
		break;
	}
	default:
		break;
	}
	va_end(ap);
}

/* ---- AUTH ------------------------------------------------------- */

static int interact(auth_client_request_t req, char **result, int fields,
		    void *arg)
{
	smtp_run *x = arg;
	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = x->cfg->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = x->pass.data;
		else
			result[i] = NULL;
		if (!result[i])
			return 0;
	}
	return 1;
}

/* ---- message source -------------------------------------------- */

static const char *message_cb(void **ctx, int *len, void *arg)
{
	(void)ctx;
	smtp_run *x = arg;
	if (!len) {
		sp_compose_rewind(x->comp);
		return NULL;
	}
	size_t n = 0;
	const char *p = sp_compose_next(x->comp, &n);
	if (x->comp->bytes > n)
		sp_crash_point("mid-data"); /* the first chunk is out */
	*len = (int)n;
	return p;
}

/* The probe's message: never reached, since the probe quits at MAIL. */
static const char *empty_cb(void **ctx, int *len, void *arg)
{
	(void)ctx, (void)arg;
	if (len)
		*len = 0;
	return NULL;
}

/* ---- reachability within the timeout ----------------------------- */

/* A TCP connection to the server within the timeout: the socket, or -1
 * with r filled in. */
static int tcp_connect(smtp_run *x, int timeout_ms)
{
	char port[8];
	snprintf(port, sizeof port, "%d", x->port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	int g = getaddrinfo(x->cfg->host, port, &hints, &res);
	if (g != 0) {
		sb_printf(&x->r->reply, "%s: %s", x->cfg->host, gai_strerror(g));
		x->r->stage = "connect";
		x->r->outcome = SP_TEMPORARY;
		return -1;
	}
	int err = ETIMEDOUT;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
						      SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int c = connect(fd, a->ai_addr, a->ai_addrlen);
		if (c != 0 && errno == EINPROGRESS) {
			struct pollfd pfd = {fd, POLLOUT, 0};
			int pr = poll(&pfd, 1, timeout_ms);
			socklen_t sl = sizeof err;
			if (pr == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0)
				c = err ? -1 : 0;
			else
				err = ETIMEDOUT;
		} else if (c != 0) {
			err = errno;
		}
		if (c == 0) {
			freeaddrinfo(res);
			int flags = fcntl(fd, F_GETFL);
			fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
			return fd;
		}
		close(fd);
	}
	freeaddrinfo(res);
	sb_printf(&x->r->reply, "%s port %d: %s", x->cfg->host, x->port,
		  strerror(err));
	x->r->stage = "connect";
	x->r->outcome = SP_TEMPORARY;
	return -1;
}

/* libESMTP has no connect timeout: check reachability first. */
static int probe_connect(smtp_run *x, int timeout_ms)
{
	int fd = tcp_connect(x, timeout_ms);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* ---- implicit TLS: an in-process relay ---------------------------- */

/*
 * libESMTP 1.1.0 cannot speak TLS from the first byte (SMTPS, RFC 8314).
 * We connect and verify the TLS connection ourselves, then let libESMTP
 * talk plain SMTP over loopback to a thread that forwards bytes both
 * ways.  The listening socket takes one connection, and only one whose
 * other end is a socket of this very process.
 */
typedef struct relay {
	int listen_fd, plain_fd, tls_fd;
	SSL *ssl;
	int timeout_ms;
	volatile int quit;      /* check --smtp: say QUIT, then stop */
	pthread_t thread;
	bool running;
} relay;

/* Is the peer of fd a socket of this process?  Returns that socket (the
 * one libESMTP connected), or -1. */
static int peer_is_us(int fd)
{
	struct sockaddr_storage peer, mine;
	socklen_t pl = sizeof peer;
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0)
		return -1;
	for (int other = 3; other < 4096; other++) {
		socklen_t ml = sizeof mine;
		if (other == fd ||
		    getsockname(other, (struct sockaddr *)&mine, &ml) != 0)
			continue;
		if (ml == pl && memcmp(&mine, &peer, pl) == 0)
			return other;
	}
	return -1;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void *relay_main(void *arg)
{
	relay *rl = arg;
	/* SIGPIPE stays blocked in this thread */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int64_t deadline = sponge_now() + (int64_t)rl->timeout_ms * 1000;
	while (rl->plain_fd < 0) {
		int left = (int)((deadline - sponge_now()) / 1000);
		struct pollfd p = {rl->listen_fd, POLLIN, 0};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return NULL;
		int fd = accept4(rl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		int theirs = peer_is_us(fd);
		if (theirs < 0) {
			close(fd); /* someone else on this host: no */
			continue;
		}
		/* no Nagle stall on either end of the loopback hop */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(theirs, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		rl->plain_fd = fd;
	}
	char buf[16384];
	for (;;) {
		if (!SSL_pending(rl->ssl)) {
			struct pollfd p[2] = {{rl->plain_fd, POLLIN, 0},
					      {rl->tls_fd, POLLIN, 0}};
			int r = poll(p, 2, rl->timeout_ms);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (p[0].revents) {
				ssize_t n = read(rl->plain_fd, buf, sizeof buf);
				if (n <= 0 || SSL_write(rl->ssl, buf, (int)n) <= 0)
					break;
			}
			if (!(p[1].revents))
				continue;
		}
		int n = SSL_read(rl->ssl, buf, sizeof buf);
		if (n <= 0 || !write_all(rl->plain_fd, buf, (size_t)n))
			break;
	}
	if (rl->quit) {
		SSL_write(rl->ssl, "QUIT\r\n", 6);
		struct pollfd p = {rl->tls_fd, POLLIN, 0};
		if (poll(&p, 1, 1000) > 0)
			SSL_read(rl->ssl, buf, sizeof buf); /* the 221 */
	}
	SSL_shutdown(rl->ssl);
	return NULL;
}

static void relay_quit(relay *rl, int libesmtp_fd)
{
	rl->quit = 1;
	if (libesmtp_fd >= 0)
		shutdown(libesmtp_fd, SHUT_RDWR);
}

/* Connect, verify TLS, listen on loopback, start the thread.  Returns the
 * port libESMTP should use, or -1 with x->r filled in. */
static int relay_start(smtp_run *x, relay *rl, SSL_CTX *ctx, int timeout_ms)
{
	memset(rl, 0, sizeof *rl);
	rl->listen_fd = rl->plain_fd = -1;
	rl->timeout_ms = timeout_ms;
	rl->tls_fd = tcp_connect(x, timeout_ms);
	if (rl->tls_fd < 0)
		return -1;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	setsockopt(rl->tls_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(rl->tls_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	rl->ssl = SSL_new(ctx);
	if (!rl->ssl || !SSL_set_fd(rl->ssl, rl->tls_fd)) {
		x->r->outcome = SP_LOCAL;
		sb_adds(&x->r->reply, "TLS: out of memory");
		return -1;
	}
	if (SSL_connect(rl->ssl) != 1) {
		x->r->outcome = SP_TLS;
		x->r->stage = "tls";
		if (x->verify_err) {
			sb_printf(&x->r->reply,
				  "certificate of %s not accepted: %s%s%s%s",
				  x->cfg->host,
				  X509_verify_cert_error_string(x->verify_err),
				  x->verify_depth_subject[0] ? " (" : "",
				  x->verify_depth_subject,
				  x->verify_depth_subject[0] ? ")" : "");
		} else {
			char e[256];
			ERR_error_string_n(ERR_peek_last_error(), e, sizeof e);
			sb_printf(&x->r->reply, "TLS handshake with %s failed: %s",
				  x->cfg->host, e);
		}
		return -1;
	}
	x->tls_up = true;
	x->fd = -1; /* the socket libESMTP uses is the loopback one */
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	rl->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rl->listen_fd < 0 ||
	    bind(rl->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(rl->listen_fd, 1) != 0 ||
	    getsockname(rl->listen_fd, (struct sockaddr *)&a, &al) != 0 ||
	    pthread_create(&rl->thread, NULL, relay_main, rl) != 0) {
		x->r->outcome = SP_LOCAL;
		sb_printf(&x->r->reply, "TLS relay: %s", strerror(errno));
		return -1;
	}
	rl->running = true;
	return ntohs(a.sin_port);
}

static void relay_stop(relay *rl)
{
	if (rl->running) {
		if (rl->plain_fd >= 0)
			shutdown(rl->plain_fd, SHUT_RDWR);
		shutdown(rl->listen_fd, SHUT_RDWR);
		pthread_join(rl->thread, NULL);
	}
	if (rl->plain_fd >= 0)
		close(rl->plain_fd);
	if (rl->listen_fd >= 0)
		close(rl->listen_fd);
	SSL_free(rl->ssl);
	if (rl->tls_fd >= 0)
		close(rl->tls_fd);
	rl->running = false;
	rl->plain_fd = rl->listen_fd = rl->tls_fd = -1;
	rl->ssl = NULL;
}

/* ---- outcome ------------------------------------------------------ */

static int class_of(int code, int otherwise)
{
	if (code >= 200 && code < 300)
		return SP_SENT;
	if (code >= 400 && code < 500)
		return SP_TEMPORARY;
	if (code >= 500)
		return SP_PERMANENT;
	return otherwise;
}

typedef struct rcpt_tally {
	int ok, temp, perm, unanswered;
	spbuf *rejected;
} rcpt_tally;

static void tally_rcpt(smtp_recipient_t r, const char *mailbox, void *arg)
{
	rcpt_tally *t = arg;
	const smtp_status_t *st = smtp_recipient_status(r);
	int code = st ? st->code : 0;
	if (code >= 200 && code < 300) {
		t->ok++;
		return;
	}
	if (code == 0) {
		t->unanswered++;
		return;
	}
	if (code >= 500)
		t->perm++;
	else
		t->temp++;
	char text[200] = "";
	if (st && st->text)
		snprintf(text, sizeof text, "%s", st->text);
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	sb_printf(t->rejected, "%sRCPT <%s>: %d %s",
		  t->rejected->len ? "; " : "", mailbox, code, text);
}

static const char *stage_of(const smtp_run *x)
{
	if (!x->verb[0])
		return "greeting";
	if (!strcmp(x->verb, "EHLO") || !strcmp(x->verb, "HELO"))
		return "ehlo";
	if (!strcmp(x->verb, "STARTTLS"))
		return x->tls_up ? "ehlo" : "tls";
	if (!strcmp(x->verb, "AUTH"))
		return "auth";
	if (!strcmp(x->verb, "MAIL"))
		return "mail";
	if (!strcmp(x->verb, "RCPT"))
		return "rcpt";
	if (!strcmp(x->verb, "DATA") || !strcmp(x->verb, "BDAT"))
		return "data";
	if (!strcmp(x->verb, "ETRN"))
		return "etrn";
	return "quit";
}

static void set_reply_status(sp_send_result *r, const smtp_status_t *st)
{
	char text[400] = "";
	if (st && st->text)
		snprintf(text, sizeof text, "%s", st->text);
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	sb_printf(&r->reply, "%d %s", st ? st->code : 0, text);
}

/* A failure before the transaction (connect, greeting, TLS, STARTTLS,
 * AUTH): classified into x->r, and true; false when the session got as
 * far as MAIL (or, probing, as far as it should). */
static bool session_failed(smtp_run *x, int started, int smtp_err, bool probe)
{
	sp_send_result *r = x->r;
	char ebuf[128];
	if (!started && !x->verb[0] && !x->reply[0]) {
		r->outcome = SP_TEMPORARY;
		/* the reachability probe connected: the server went away
		 * before its greeting */
		r->stage = x->probed ? "greeting" : "connect";
		sb_printf(&r->reply, "%s",
			  smtp_strerror(smtp_err, ebuf, sizeof ebuf));
		return true;
	}
	if (x->verify_err || x->cert_rejected) {
		r->outcome = SP_TLS;
		r->stage = "tls";
		sb_printf(&r->reply, "certificate of %s not accepted: %s%s%s",
			  x->cfg->host,
			  x->verify_err
				  ? X509_verify_cert_error_string(x->verify_err)
				  : "does not match the host name",
			  x->verify_depth_subject[0] ? " (" : "",
			  x->verify_depth_subject);
		if (x->verify_depth_subject[0])
			sb_adds(&r->reply, ")");
		return true;
	}
	if (x->no_starttls) {
		r->outcome = SP_TLS;
		r->stage = "starttls";
		sb_printf(&r->reply, "%s does not offer STARTTLS (and "
				     "smtp.tls = starttls requires it)",
			  x->cfg->host);
		return true;
	}
	if (x->starttls_refused || (x->cfg->tls == SP_TLS_STARTTLS &&
				    !x->tls_up && x->verb[0] &&
				    strcmp(x->verb, "EHLO") != 0)) {
		r->outcome = SP_TLS;
		r->stage = "tls";
		sb_printf(&r->reply, "STARTTLS failed: %s",
			  x->reply[0] ? x->reply
				      : smtp_strerror(smtp_err, ebuf,
						      sizeof ebuf));
		return true;
	}
	if (x->auth_failed || (x->cfg->user && !x->auth_ok &&
			       strcmp(stage_of(x), "greeting") &&
			       strcmp(stage_of(x), "ehlo"))) {
		r->outcome = SP_AUTH;
		r->stage = "auth";
		sb_printf(&r->reply, "%s",
			  x->auth_reply[0] ? x->auth_reply
					   : "the server offered no usable AUTH "
					     "mechanism");
		return true;
	}
	const char *stage = stage_of(x);
	if (probe && x->probe_done) {
		/* connected, TLS verified, AUTH done, QUIT: success */
		r->outcome = SP_SENT;
		return true;
	}
	if (probe || !strcmp(stage, "greeting") || !strcmp(stage, "ehlo")) {
		/* no greeting, or the connection ended before MAIL */
		r->outcome = x->reply[0] == '5' ? SP_PERMANENT : SP_TEMPORARY;
		r->stage = stage;
		sb_printf(&r->reply, "%s", x->reply[0] ? x->reply
			  : smtp_strerror(smtp_err, ebuf, sizeof ebuf));
		return true;
	}
	return false;
}

/* The transaction's outcome: MAIL, each RCPT, DATA and its reply. */
static void transaction_outcome(smtp_run *x, smtp_message_t m, int smtp_err)
{
	sp_send_result *r = x->r;
	char ebuf[128];
	const smtp_status_t *mail = smtp_reverse_path_status(m);
	if (mail && mail->code >= 400) {
		r->outcome = mail->code == 530 ? SP_AUTH
					       : class_of(mail->code, SP_TEMPORARY);
		r->stage = "mail";
		set_reply_status(r, mail);
		return;
	}
	spbuf rejected;
	sb_init(&rejected, 1500);
	rcpt_tally t = {0, 0, 0, 0, &rejected};
	smtp_enumerate_recipients(m, tally_rcpt, &t);
	const smtp_status_t *msg = smtp_message_transfer_status(m);
	int code = msg ? msg->code : 0;
	if (t.ok == 0 && (t.temp || t.perm)) {
		r->outcome = t.temp ? SP_TEMPORARY : SP_PERMANENT;
		r->stage = "rcpt";
		sb_adds(&r->reply, rejected.data);
	} else if (code >= 200 && code < 300) {
		r->outcome = SP_SENT;
		set_reply_status(r, msg);
		if (rejected.len)
			sb_printf(&r->reply, "; not accepted: %s",
				  rejected.data);
	} else if (code >= 400) {
		r->outcome = class_of(code, SP_TEMPORARY);
		r->stage = "data";
		set_reply_status(r, msg);
	} else {
		/* no reply: timeout or connection lost */
		r->outcome = SP_TEMPORARY;
		r->stage = stage_of(x);
		sb_printf(&r->reply, "%s%s%s",
			  smtp_strerror(smtp_err, ebuf, sizeof ebuf),
			  x->reply[0] ? "; last reply: " : "", x->reply);
		/* the whole message went out and no verdict came back: the
		 * server may have it */
		r->maybe_delivered = x->started_data &&
				     sp_compose_done(x->comp);
	}
	sb_free(&rejected);
}

/* ---- the transport ------------------------------------------------ */

/* The libESMTP session for this run: server, timeouts, callbacks,
 * STARTTLS, AUTH (a context in *auth, the caller's to destroy), the
 * envelope. */
static int configure_session(smtp_run *x, smtp_session_t s, smtp_message_t m,
			     SSL_CTX *ctx, auth_context_t *auth)
{
	const sp_config *cfg = x->cfg;
	long timeout_ms = (long)(cfg->timeout_us / 1000);
	char hostport[300];
	if (x->relay)
		snprintf(hostport, sizeof hostport, "127.0.0.1:%d", x->peer_port);
	else
		snprintf(hostport, sizeof hostport, "%s%s%s:%d",
			 strchr(cfg->host, ':') ? "[" : "", cfg->host,
			 strchr(cfg->host, ':') ? "]" : "", x->port);
	smtp_set_server(s, hostport);
	if (cfg->helo)
		smtp_set_hostname(s, cfg->helo);
	for (int w = Timeout_GREETING; w <= Timeout_DATA2; w++)
		smtp_set_timeout(s, w | Timeout_OVERRIDE_RFC2822_MINIMUM,
				 timeout_ms);
	smtp_set_eventcb(s, event_cb, x);
	smtp_set_monitorcb(s, monitor, x, 0);
	if (cfg->tls == SP_TLS_STARTTLS) {
		smtp_starttls_set_ctx(s, ctx);
		smtp_starttls_enable(s, Starttls_REQUIRED);
	}
	if (cfg->user) {
		pthread_once(&auth_once, auth_init);
		*auth = auth_create_context();
		if (!*auth) {
			x->r->outcome = SP_LOCAL;
			return sp_fail(x->sp, SPONGE_ENOMEM,
				       "smtp: out of memory");
		}
		auth_set_mechanism_flags(*auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(*auth, interact, x);
		smtp_auth_set_context(s, *auth);
	}
	smtp_set_reverse_path(m, cfg->from_addr);
	for (int i = 0; i < cfg->nto; i++)
		smtp_add_recipient(m, cfg->to_addr[i]);
	smtp_set_messagecb(m, x->probe ? empty_cb : message_cb, x);
	return SPONGE_OK;
}

/* Run the session with SIGPIPE blocked in this thread (a closed
 * connection must be an error, not a signal; any that became pending is
 * swallowed), then classify what happened into x->r. */
static void run_session(smtp_run *x, smtp_session_t s, smtp_message_t m)
{
	sigset_t pipe_set, old_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	bool masked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set) == 0;
	int started = smtp_start_session(s);
	int smtp_err = smtp_errno();
	if (!session_failed(x, started, smtp_err, x->probe))
		transaction_outcome(x, m, smtp_err);
	if (x->comp && x->comp->rc != SPONGE_OK) {
		/* a failed read ends the stream early, and a short message
		 * must not count as delivered */
		x->r->outcome = SP_LOCAL;
		x->r->stage = "compose";
		sb_printf(&x->r->reply, " (reading the spool failed: %s)",
			  sponge_errmsg(x->sp));
	}
	if (masked) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
			;
		pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	}
}

static int smtp_send(sponge *sp, sp_composer *comp, sp_send_result *r,
		     bool probe, sponge_writer out, void *arg)
{
	(void)out, (void)arg;
	const sp_config *cfg = &sp->cfg;
	smtp_run x;
	memset(&x, 0, sizeof x);
	x.sp = sp;
	x.comp = comp;
	x.r = r;
	x.cfg = cfg;
	x.probe = probe;
	x.fd = -1;
	x.port = cfg->port ? cfg->port
			   : cfg->tls == SP_TLS_IMPLICIT ? 465 : 587;
	x.peer_port = x.port;
	relay rl;
	memset(&rl, 0, sizeof rl);
	rl.listen_fd = rl.plain_fd = rl.tls_fd = -1;
	sb_init(&x.pass, 1024);
	sb_init(&x.inbuf, 64 * 1024);
	unsigned char ipbuf[16];
	x.is_ip = inet_pton(AF_INET, cfg->host, ipbuf) == 1 ||
		  inet_pton(AF_INET6, cfg->host, ipbuf) == 1;

	int rc = SPONGE_OK;
	smtp_session_t s = NULL;
	auth_context_t auth = NULL;
	SSL_CTX *ctx = NULL;

	if (cfg->user && (rc = sp_password(sp, &x.pass)) != SPONGE_OK) {
		/* a password command that timed out may work next time */
		r->outcome = rc == SPONGE_ETEMPFAIL ? SP_TEMPORARY : SP_CONFIG;
		r->stage = "password";
		goto out;
	}
	long timeout_ms = (long)(cfg->timeout_us / 1000);
	if (cfg->tls != SP_TLS_IMPLICIT && probe_connect(&x, (int)timeout_ms))
		goto out; /* r filled in */
	x.probed = true;
	if (cfg->tls != SP_TLS_NONE && !(ctx = make_ctx(&x))) {
		rc = sp_fail(sp, SPONGE_ECONFIG,
			     "smtp: cannot set up TLS (ca_file %s)",
			     cfg->ca_file ? cfg->ca_file : "system");
		r->outcome = SP_CONFIG;
		r->stage = "config";
		goto out;
	}
	if (cfg->tls == SP_TLS_IMPLICIT) {
		int port = relay_start(&x, &rl, ctx, (int)timeout_ms);
		if (port < 0)
			goto out; /* r filled in */
		x.relay = &rl;
		x.peer_port = port;
	}

	s = smtp_create_session();
	smtp_message_t m = s ? smtp_add_message(s) : NULL;
	if (!m) {
		rc = sp_fail(sp, SPONGE_ENOMEM, "smtp: out of memory");
		r->outcome = SP_LOCAL;
		goto out;
	}
	if ((rc = configure_session(&x, s, m, ctx, &auth)) != SPONGE_OK)
		goto out;
	run_session(&x, s, m);
out:
	if (s) {
		smtp_destroy_session(s);
		s = NULL;
	}
	relay_stop(&rl);
	if (auth)
		auth_destroy_context(auth);
	SSL_CTX_free(ctx);
	/* wipe the password */
	if (x.pass.cap)
		OPENSSL_cleanse(x.pass.data, x.pass.cap);
	sb_free(&x.pass);
	sb_free(&x.inbuf);
	if (rc == SPONGE_OK && r->outcome != SP_SENT) {
		char what[48];
		snprintf(what, sizeof what, "smtp %s", r->stage ? r->stage : "");
		rc = sp->err.len ? sp_outcome_code(r->outcome)
				 : sp_send_failed(sp, r, what);
	}
	return rc;
}

static bool smtp_config_ok(const sp_config *c, spbuf *why)
{
	if (c->host)
		return true;
	sb_adds(why, "smtp.host is not set");
	return false;
}

const sp_transport sp_transport_smtp = {"smtp", smtp_config_ok, smtp_send};
