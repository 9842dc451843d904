/* smtp_conn.c - our own connection to the SMTP server (see smtp_conn.h).
 *
 * Why not libESMTP's: it has no connect timeout, no implicit TLS, no SNI,
 * hangs on TLS 1.3 session tickets after STARTTLS, hides its socket and
 * reports a failed handshake with the server's last success reply
 * (shared/notes/libesmtp.md).  Here every step is ours, non-blocking
 * under poll() with a deadline, and a failure names its cause. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "smtp_conn.h"

int64_t sc_deadline(const sc_conn *c)
{
	return sponge_now() + (int64_t)c->p.timeout_ms * 1000;
}

/* ---- failures -------------------------------------------------------- */

static int failv(sc_conn *c, int outcome, const char *stage, const char *fmt,
		 va_list ap)
{
	sp_send_result *r = c->r;
	r->outcome = outcome;
	r->stage = stage;
	sb_reset(&r->reply);
	sb_vprintf(&r->reply, fmt, ap);
	return sp_outcome_code(outcome);
}

static int fail(sc_conn *c, int outcome, const char *stage, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));
static int fail(sc_conn *c, int outcome, const char *stage, const char *fmt,
		...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = failv(c, outcome, stage, fmt, ap);
	va_end(ap);
	return rc;
}

/* The server refused at `stage`: its whole reply, classified. */
static int refused(sc_conn *c, const char *stage, int outcome_5xx)
{
	int o = c->code >= 400 && c->code < 500 ? SP_TEMPORARY : outcome_5xx;
	return fail(c, o, stage, "%s", c->reply.data);
}

/* ---- I/O with deadlines ---------------------------------------------- */

int sc_wait(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = (deadline - sponge_now()) / 1000;
		if (left <= 0)
			return 0;
		struct pollfd p = {fd, ev, 0};
		int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* What went wrong with the last I/O, for messages. */
static void io_failed(sc_conn *c, const char *why)
{
	sb_reset(&c->lines); /* lines doubles as the I/O error's text */
	sb_adds(&c->lines, why);
	c->code = 0;
	c->tls_alert = false;
}

/* The TLS alert the server sent, from OpenSSL's error queue, in words;
 * NULL when the last error is not an alert. */
static const char *alert_text(unsigned long e)
{
	int r = ERR_GET_REASON(e);
	if (!e || r < SSL_AD_REASON_OFFSET || r >= SSL_AD_REASON_OFFSET + 256)
		return NULL;
	switch (r) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return "the server requires a client certificate (TLS alert "
		       "certificate required)";
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		return "the server refused the handshake (TLS alert handshake "
		       "failure: no cipher in common, or it requires a client "
		       "certificate)";
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return "the server refused the client's certificate (TLS "
		       "alert bad or unknown certificate)";
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		return "the server denied access (TLS alert access denied)";
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return "no protocol version in common (TLS alert protocol "
		       "version)";
	case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
		return "the server wants stronger security (TLS alert "
		       "insufficient security)";
	default: {
		static _Thread_local char buf[160];
		const char *s = ERR_reason_error_string(e);
		snprintf(buf, sizeof buf, "the server sent a TLS alert (%s)",
			 s ? s : "unknown");
		return buf;
	}
	}
}

/* An SSL_read/SSL_write failure: the server's alert when it sent one. */
static void ssl_io_failed(sc_conn *c, const char *otherwise)
{
	const char *a = alert_text(ERR_peek_last_error());
	io_failed(c, a ? a : otherwise);
	c->tls_alert = a != NULL;
}

static ssize_t wire_read(sc_conn *c, char *buf, size_t n, int64_t deadline)
{
	for (;;) {
		int w;
		if (c->ssl) {
			ERR_clear_error();
			int k = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
			if (k > 0)
				return k;
			int e = SSL_get_error(c->ssl, k);
			if (e == SSL_ERROR_ZERO_RETURN) {
				io_failed(c, "the server closed the connection");
				return 0;
			}
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				ssl_io_failed(c, "the connection was lost");
				return -1;
			}
			w = sc_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    deadline);
		} else {
			ssize_t k = read(c->fd, buf, n);
			if (k > 0)
				return k;
			if (k == 0) {
				io_failed(c, "the server closed the connection");
				return 0;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				io_failed(c, strerror(errno));
				return -1;
			}
			w = sc_wait(c->fd, POLLIN, deadline);
		}
		if (w <= 0) {
			io_failed(c, w == 0 ? "timed out (smtp.timeout)"
					    : strerror(errno));
			return -1;
		}
	}
}

ssize_t sc_read(sc_conn *c, char *buf, size_t n, int64_t deadline)
{
	if (c->in.len) {
		size_t k = c->in.len < n ? c->in.len : n;
		memcpy(buf, c->in.data, k);
		memmove(c->in.data, c->in.data + k, c->in.len - k);
		c->in.len -= k;
		c->in.data[c->in.len] = '\0';
		return (ssize_t)k;
	}
	return wire_read(c, buf, n, deadline);
}

bool sc_pending(const sc_conn *c)
{
	return c->in.len > 0 || (c->ssl && SSL_pending(c->ssl) > 0);
}

bool sc_send(sc_conn *c, const char *p, size_t n, int64_t deadline)
{
	while (n) {
		int w;
		if (c->ssl) {
			ERR_clear_error();
			int k = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
			if (k > 0) {
				p += k;
				n -= (size_t)k;
				continue;
			}
			int e = SSL_get_error(c->ssl, k);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				ssl_io_failed(c, "the connection was lost");
				return false;
			}
			w = sc_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    deadline);
		} else {
			ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
			if (k > 0) {
				p += k;
				n -= (size_t)k;
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0 && errno != EAGAIN) {
				io_failed(c, strerror(errno));
				return false;
			}
			w = sc_wait(c->fd, POLLOUT, deadline);
		}
		if (w <= 0) {
			io_failed(c, w == 0 ? "timed out (smtp.timeout)"
					    : strerror(errno));
			return false;
		}
	}
	return true;
}

/* One line of a reply: its text, control characters made spaces. */
static void add_text(spbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_addc(b, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
}

bool sc_reply(sc_conn *c, int64_t deadline, spbuf *raw)
{
	sb_reset(&c->reply);
	sb_reset(&c->lines);
	c->code = 0;
	for (bool first = true;;) {
		/* a server that keeps talking is bounded like a silent one */
		if (sponge_now() > deadline) {
			io_failed(c, "timed out (smtp.timeout): the reply did "
				     "not end");
			return false;
		}
		if (c->reply.len + c->lines.len > (1u << 20)) {
			io_failed(c, "a reply longer than 1 MiB");
			return false;
		}
		char *nl = memchr(c->in.data, '\n', c->in.len);
		if (!nl) {
			if (c->in.len > (64u << 10)) {
				io_failed(c, "a reply line longer than 64 KiB");
				return false;
			}
			char buf[16384];
			ssize_t k = wire_read(c, buf, sizeof buf, deadline);
			if (k <= 0)
				return false;
			sb_add(&c->in, buf, (size_t)k);
			continue;
		}
		size_t n = (size_t)(nl - c->in.data) + 1, len = n - 1;
		const char *l = c->in.data;
		if (raw)
			sb_add(raw, l, n);
		if (len && l[len - 1] == '\r')
			len--;
		if (len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' ||
		    l[1] > '9' || l[2] < '0' || l[2] > '9') {
			spbuf bad;
			sb_init(&bad, 0);
			add_text(&bad, l, len > 60 ? 60 : len);
			io_failed(c, "");
			sb_printf(&c->lines, "not an SMTP reply: \"%s\"", bad.data);
			sb_free(&bad);
			return false;
		}
		int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
		bool last = len == 3 || l[3] != '-';
		const char *text = len > 4 ? l + 4 : "";
		size_t tn = len > 4 ? len - 4 : 0;
		if (first) {
			c->code = code;
			sb_printf(&c->reply, "%d", code);
		}
		if (tn) {
			sb_adds(&c->reply, first ? " " : " / ");
			add_text(&c->reply, text, tn);
		}
		add_text(&c->lines, text, tn);
		sb_addc(&c->lines, '\n');
		memmove(c->in.data, c->in.data + n, c->in.len - n);
		c->in.len -= n;
		c->in.data[c->in.len] = '\0';
		first = false;
		if (last)
			return true;
	}
}

/* Write a command and read its reply.  A failed exchange fills r: the
 * I/O error, at `stage`, as a temporary failure. */
static int exchange(sc_conn *c, const char *stage, const char *cmd, size_t n)
{
	int64_t d = sc_deadline(c);
	if ((n && !sc_send(c, cmd, n, d)) || !sc_reply(c, d, NULL))
		return c->tls_alert /* refused, not a network fault */
			       ? fail(c, SP_TLS_FAILED, "tls", "%s", c->lines.data)
			       : fail(c, SP_TEMPORARY, stage, "%s",
				      c->lines.data);
	return SPONGE_OK;
}

static int command(sc_conn *c, const char *stage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int command(sc_conn *c, const char *stage, const char *fmt, ...)
{
	spbuf line;
	sb_init(&line, 0);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&line, fmt, ap);
	va_end(ap);
	sb_adds(&line, "\r\n");
	int rc = line.failed ? fail(c, SP_LOCAL, stage, "out of memory")
			     : exchange(c, stage, line.data, line.len);
	OPENSSL_cleanse(line.data, line.len); /* AUTH lines hold secrets */
	sb_free(&line);
	return rc;
}

/* ---- TCP ------------------------------------------------------------- */

/* Each address of the host in turn, each within smtp.timeout. */
static int tcp_connect(sc_conn *c)
{
	char port[8];
	snprintf(port, sizeof port, "%d", c->p.port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	int g = getaddrinfo(c->p.host, port, &hints, &res);
	if (g != 0)
		return fail(c, g == EAI_MEMORY ? SP_LOCAL : SP_TEMPORARY,
			    "connect", "%s: %s", c->p.host,
			    g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
	int err = ETIMEDOUT;
	bool local = false;
	for (struct addrinfo *a = res; a && c->fd < 0; a = a->ai_next) {
		int fd = socket(a->ai_family,
				a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				a->ai_protocol);
		if (fd < 0) { /* out of descriptors or memory: ours */
			err = errno;
			local = true;
			continue;
		}
		local = false;
		int k = connect(fd, a->ai_addr, a->ai_addrlen);
		if (k != 0 && errno == EINPROGRESS) {
			int w = sc_wait(fd, POLLOUT, sc_deadline(c));
			socklen_t sl = sizeof err;
			if (w == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0)
				k = err ? -1 : 0;
			else
				err = ETIMEDOUT;
		} else if (k != 0) {
			err = errno;
		}
		if (k != 0) {
			close(fd);
			continue;
		}
		int one = 1; /* no Nagle stall on a command's short write */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
	}
	freeaddrinfo(res);
	if (c->fd >= 0)
		return SPONGE_OK;
	if (local)
		return fail(c, err == EMFILE || err == ENFILE ? SP_RESOURCE
							       : SP_LOCAL,
			    "connect", "socket: %s", strerror(err));
	return fail(c, SP_TEMPORARY, "connect", "%s port %d: %s", c->p.host,
		    c->p.port, strerror(err));
}

/* The name to greet with: smtp.helo, else this host's fully qualified
 * name, else (RFC 5321 4.1.3) the address literal of our end. */
static void helo_name(sc_conn *c)
{
	if (c->p.helo) {
		snprintf(c->helo, sizeof c->helo, "%s", c->p.helo);
		return;
	}
	if (sp_host_fqdn(c->helo, sizeof c->helo))
		return;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char a[INET6_ADDRSTRLEN] = "127.0.0.1";
	bool v6 = false;
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
		v6 = ss.ss_family == AF_INET6;
		inet_ntop(ss.ss_family,
			  v6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
			     : (void *)&((struct sockaddr_in *)&ss)->sin_addr,
			  a, sizeof a);
	}
	snprintf(c->helo, sizeof c->helo, "[%s%s]", v6 ? "IPv6:" : "", a);
}

/* ---- TLS ------------------------------------------------------------- */

/* The names a certificate is for: its DNS and IP alternative names, else
 * its common name. */
static void cert_names(X509 *cert, char *out, size_t n)
{
	spbuf b;
	sb_init(&b, n - 1);
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name,
						 NULL, NULL);
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		char ip[INET6_ADDRSTRLEN];
		const char *s = NULL;
		if (g->type == GEN_DNS) {
			s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d =
				ASN1_STRING_get0_data(g->d.iPAddress);
			if ((len == 4 || len == 16) &&
			    inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip,
				      sizeof ip))
				s = ip;
		}
		if (s)
			sb_printf(&b, "%s%s", b.len ? ", " : "", s);
	}
	GENERAL_NAMES_free(names);
	if (!b.len)
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					  NID_commonName, out, (int)n);
	else
		snprintf(out, n, "%s", b.data);
	sb_free(&b);
}

static int verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		store, SSL_get_ex_data_X509_STORE_CTX_idx());
	sc_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	if (ok || !c || c->verify_err)
		return ok;
	c->verify_err = X509_STORE_CTX_get_error(store);
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	if (cert) {
		X509_NAME_oneline(X509_get_subject_name(cert), c->cert_subject,
				  sizeof c->cert_subject);
		cert_names(cert, c->cert_names, sizeof c->cert_names);
	}
	return ok;
}

static SSL_CTX *make_ctx(const sc_params *par)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	/* any version both sides speak, 1.2 at least */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (par->verify) {
		if (!(par->ca_file
			      ? SSL_CTX_load_verify_locations(ctx, par->ca_file,
							      NULL)
			      : SSL_CTX_set_default_verify_paths(ctx))) {
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

/* Why a handshake failed, in words. */
static int tls_failed(sc_conn *c, int wait)
{
	const char *host = c->p.host;
	long v = c->verify_err;
	if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
		return fail(c, SP_TLS_FAILED, "tls", "certificate is for %s, not %s",
			    c->cert_names[0] ? c->cert_names : "no name", host);
	if (v)
		return fail(c, SP_TLS_FAILED, "tls", "certificate verify failed: %s (%s)",
			    X509_verify_cert_error_string(v), c->cert_subject);
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_REASON(e);
	const char *why;
	if (wait != 0 && alert_text(e))
		why = alert_text(e);
	else if (wait == 0)
		why = "timed out (smtp.timeout)";
	else if (!e || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		why = "the server closed the connection";
	else if (reason == SSL_R_UNSUPPORTED_PROTOCOL ||
		 reason == SSL_R_NO_PROTOCOLS_AVAILABLE ||
		 reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)
		why = "no protocol version in common";
	else if (reason == SSL_R_WRONG_VERSION_NUMBER ||
		 reason == SSL_R_PACKET_LENGTH_TOO_LONG)
		why = "the server does not speak TLS here (smtp.tls = tls on a "
		      "STARTTLS port?)";
	else
		why = ERR_reason_error_string(e) ? ERR_reason_error_string(e)
						 : "unknown error";
	return fail(c, SP_TLS_FAILED, "tls", "TLS handshake with %s failed: %s", host,
		    why);
}

static int tls_start(sc_conn *c)
{
	const sc_params *par = &c->p;
	errno = 0;
	if (!c->ctx && !(c->ctx = make_ctx(par)) &&
	    (errno == EMFILE || errno == ENFILE)) /* not the config's fault */
		return fail(c, SP_RESOURCE, "tls", "cannot set up TLS: %s",
			    strerror(errno));
	if (!c->ctx)
		return fail(c, SP_CONFIG, "config",
			    "cannot set up TLS (ca_file %s)",
			    par->ca_file ? par->ca_file : "system");
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		return fail(c, SP_LOCAL, "tls", "TLS: out of memory");
	SSL_set_app_data(c->ssl, c);
	X509_VERIFY_PARAM *p = SSL_get0_param(c->ssl);
	X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (!c->is_ip) /* SNI for names, never for address literals */
		SSL_set_tlsext_host_name(c->ssl, par->host);
	if (par->verify && !(c->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, par->host)
				      : X509_VERIFY_PARAM_set1_host(p, par->host, 0)))
		return fail(c, SP_CONFIG, "config", "%s: not a usable host name",
			    par->host);
	int64_t d = sc_deadline(c);
	for (;;) {
		ERR_clear_error();
		int k = SSL_connect(c->ssl);
		if (k == 1)
			break;
		int e = SSL_get_error(c->ssl, k);
		int w = -1;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			w = sc_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    d);
		if (w != 1)
			return tls_failed(c, w);
	}
	snprintf(c->tls_version, sizeof c->tls_version, "%s",
		 SSL_get_version(c->ssl));
	return SPONGE_OK;
}

/* ---- EHLO, STARTTLS -------------------------------------------------- */

static bool keyword(const char *line, const char *kw, const char **rest)
{
	size_t n = strlen(kw);
	if (strncasecmp(line, kw, n) != 0 ||
	    (line[n] && line[n] != ' ' && line[n] != '=' && line[n] != '\n'))
		return false;
	*rest = line[n] ? line + n + 1 : line + n;
	return true;
}

/* The mechanisms of an AUTH line, upper case, each followed by a space,
 * appended to list (" PLAIN LOGIN "); those that do not fit whole are
 * left out. */
static void add_mechs(char *list, size_t size, const char *rest)
{
	size_t at = strlen(list);
	for (const char *w = rest; *w && *w != '\n';) {
		size_t n = strcspn(w, " \n");
		if (n && at + n + 1 < size) { /* the word, its space, the NUL */
			for (size_t i = 0; i < n; i++)
				list[at++] = (char)(w[i] >= 'a' && w[i] <= 'z'
							    ? w[i] - 32 : w[i]);
			list[at++] = ' ';
		}
		w += n;
		while (*w == ' ')
			w++;
	}
	list[at] = '\0';
}

static void parse_ehlo(sc_conn *c)
{
	c->has_size = c->starttls = c->chunking = c->pipelining = false;
	c->enhanced = c->eightbit = false;
	c->size = 0;
	snprintf(c->auth, sizeof c->auth, " ");
	const char *l = strchr(c->lines.data, '\n'); /* after the greeting */
	for (; l && *++l; l = strchr(l, '\n')) {
		const char *rest;
		if (keyword(l, "SIZE", &rest)) {
			c->has_size = true;
			c->size = strtoull(rest, NULL, 10);
		} else if (keyword(l, "STARTTLS", &rest)) {
			c->starttls = true;
		} else if (keyword(l, "CHUNKING", &rest)) {
			c->chunking = true;
		} else if (keyword(l, "PIPELINING", &rest)) {
			c->pipelining = true;
		} else if (keyword(l, "ENHANCEDSTATUSCODES", &rest)) {
			c->enhanced = true;
		} else if (keyword(l, "8BITMIME", &rest)) {
			c->eightbit = true;
		} else if (keyword(l, "AUTH", &rest)) {
			add_mechs(c->auth, sizeof c->auth, rest);
		}
	}
}

static int ehlo(sc_conn *c)
{
	int rc = command(c, "ehlo", "EHLO %s", c->helo);
	if (rc == SPONGE_OK && (c->code == 500 || c->code == 502))
		rc = command(c, "ehlo", "HELO %s", c->helo); /* no extensions */
	if (rc)
		return rc;
	if (c->code != 250)
		return refused(c, "ehlo", SP_PERMANENT);
	parse_ehlo(c);
	return SPONGE_OK;
}

static int starttls(sc_conn *c)
{
	if (!c->starttls)
		return fail(c, SP_TLS_FAILED, "starttls",
			    "%s does not offer STARTTLS (and smtp.tls = starttls "
			    "requires it)", c->p.host);
	sp_crash_point("starttls");
	int rc = command(c, "starttls", "STARTTLS");
	if (rc)
		return rc;
	if (c->code != 220)
		return fail(c, SP_TLS_FAILED, "starttls", "STARTTLS refused: %s",
			    c->reply.data);
	if (c->in.len) /* bytes sent before TLS must not count as after it */
		return fail(c, SP_TLS_FAILED, "starttls", "the server sent data after "
						   "its STARTTLS reply");
	if ((rc = tls_start(c)))
		return rc;
	return ehlo(c);
}

/* ---- AUTH ------------------------------------------------------------ */

static const char *const mech_names[] = {NULL, "PLAIN", "LOGIN", "XOAUTH2",
					 "OAUTHBEARER"};

static bool offers(const sc_conn *c, int mech)
{
	char w[24];
	snprintf(w, sizeof w, " %s ", mech_names[mech]);
	return strstr(c->auth, w) != NULL;
}

/* smtp.auth, or the best the server offers for the credentials given. */
static int pick_mech(const sc_conn *c, bool token)
{
	if (c->p.auth)
		return c->p.auth;
	if (token)
		return offers(c, SP_AUTH_OAUTHBEARER) ? SP_AUTH_OAUTHBEARER
						       : SP_AUTH_XOAUTH2;
	return offers(c, SP_AUTH_PLAIN) || !offers(c, SP_AUTH_LOGIN)
		       ? SP_AUTH_PLAIN : SP_AUTH_LOGIN;
}

/* AUTH <mech> <initial response>, then the continuations of LOGIN, or
 * the empty answer to an OAuth2 error challenge. */
static int auth_exchange(sc_conn *c, int mech, const char *user,
			 const char *secret)
{
	spbuf ir, line;
	sb_init(&ir, 0);
	sb_init(&line, 0);
	if (mech == SP_AUTH_PLAIN)
		sb_add(&ir, "", 1), sb_adds(&ir, user), sb_add(&ir, "", 1),
			sb_adds(&ir, secret);
	else if (mech == SP_AUTH_XOAUTH2)
		sb_printf(&ir, "user=%s\001auth=Bearer %s\001\001", user, secret);
	else if (mech == SP_AUTH_OAUTHBEARER)
		sb_printf(&ir, "n,a=%s,\001auth=Bearer %s\001\001", user, secret);
	sb_printf(&line, "AUTH %s", mech_names[mech]);
	if (ir.len) {
		sb_addc(&line, ' ');
		sp_base64(&line, (const unsigned char *)ir.data, ir.len);
	}
	sp_crash_point("auth");
	int rc = ir.failed || line.failed
			 ? fail(c, SP_LOCAL, "auth", "out of memory")
			 : command(c, "auth", "%s", line.data);
	for (int step = 0; rc == SPONGE_OK && c->code == 334 && step < 2;
	     step++) {
		sb_reset(&line);
		if (mech == SP_AUTH_LOGIN)
			sp_base64(&line,
				  (const unsigned char *)(step ? secret : user),
				  strlen(step ? secret : user));
		else if (mech == SP_AUTH_OAUTHBEARER)
			sb_adds(&line, "AQ=="); /* %x01: end the failed try */
		/* XOAUTH2's error challenge, PLAIN asked again: empty */
		rc = command(c, "auth", "%s", line.data);
	}
	OPENSSL_cleanse(ir.data, ir.len);
	OPENSSL_cleanse(line.data, line.len);
	sb_free(&ir);
	sb_free(&line);
	return rc;
}

static int authenticate(sc_conn *c, const char *secret, bool token)
{
	const char *user = c->p.user;
	int mech = pick_mech(c, token);
	if (!strcmp(c->auth, " "))
		return fail(c, SP_AUTH, "auth", "%s offers no AUTH (smtp.user "
						"is set)", c->p.host);
	if (!offers(c, mech))
		return fail(c, SP_AUTH, "auth", "%s does not offer AUTH %s (it "
						"offers%s)", c->p.host,
			    mech_names[mech], c->auth);
	int rc = auth_exchange(c, mech, user, secret);
	if (rc)
		return rc;
	if (c->code != 235)
		return refused(c, "auth", SP_AUTH);
	c->mech = mech_names[mech];
	return SPONGE_OK;
}

/* ---- the whole opening ------------------------------------------------ */

static int greeting(sc_conn *c)
{
	int rc = exchange(c, "greeting", "", 0);
	if (rc)
		return rc;
	return c->code == 220 ? SPONGE_OK : refused(c, "greeting", SP_PERMANENT);
}

static void init(sc_conn *c, const sc_params *p, sp_send_result *r)
{
	memset(c, 0, sizeof *c);
	c->p = *p;
	c->r = r;
	c->fd = -1;
	if (!c->p.port)
		c->p.port = p->tls == SP_TLS_IMPLICIT ? 465 : 587;
	unsigned char ip[16];
	c->is_ip = inet_pton(AF_INET, p->host, ip) == 1 ||
		   inet_pton(AF_INET6, p->host, ip) == 1;
	sb_init(&c->reply, 8192);
	sb_init(&c->lines, 16384);
	sb_init(&c->in, 0);
}

void sc_attach(sc_conn *c, const sc_params *p, sp_send_result *r, int fd)
{
	init(c, p, r);
	c->p.secret = NULL;
	c->fd = fd;
	snprintf(c->helo, sizeof c->helo, "%s", p->helo ? p->helo : "[127.0.0.1]");
}

int sc_hello(sc_conn *c)
{
	int rc = greeting(c);
	return rc ? rc : ehlo(c);
}

int sc_open(sc_conn *c, const sc_params *p, sp_send_result *r)
{
	init(c, p, r);
	int rc = tcp_connect(c);
	if (rc == SPONGE_OK)
		helo_name(c);
	if (rc == SPONGE_OK && p->tls == SP_TLS_IMPLICIT)
		rc = tls_start(c);
	if (rc == SPONGE_OK)
		rc = sc_hello(c);
	if (rc == SPONGE_OK && p->tls == SP_TLS_STARTTLS)
		rc = starttls(c);
	if (rc == SPONGE_OK && p->user)
		rc = authenticate(c, p->secret, p->token);
	c->p.secret = NULL; /* the caller's, and wiped by it */
	return rc;
}

void sc_close(sc_conn *c, bool quit)
{
	if (c->fd >= 0 && quit) {
		int64_t d = sponge_now() + 1000000; /* a polite, short QUIT */
		if (sc_send(c, "QUIT\r\n", 6, d))
			sc_reply(c, d, NULL);
	}
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* one try: the socket is non-blocking */
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
	sb_free(&c->reply);
	sb_free(&c->lines);
	sb_free(&c->in);
}
