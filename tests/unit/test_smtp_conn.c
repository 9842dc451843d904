/* Unit tests of the SMTP connection's reply reader and EHLO parser: a
 * server's bytes written into one end of a socketpair, the connection's
 * greeting and EHLO run on the other (src/smtp_conn.c), table-driven. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_conn.h"
#include "unit.h"

typedef struct hello_case {
	const char *name;
	const char *server;     /* what the server says, all at once */
	bool hang_up;           /* the server closes after it (else silent) */
	int rc;                 /* SPONGE_OK, or the failure's code */
	int outcome;            /* on failure */
	const char *stage;      /* on failure */
	const char *reply;      /* a part of r.reply (failure) or c.reply */
	/* on success: what EHLO offered */
	int has_size;
	uint64_t size;
	int starttls;
	const char *auth;
} hello_case;

static const hello_case cases[] = {
	{"ehlo offers", "220 mx.example ESMTP\r\n250-mx.example hello\r\n"
			"250-SIZE 10485760\r\n250-STARTTLS\r\n"
			"250-AUTH PLAIN login\r\n250-PIPELINING\r\n"
			"250 8BITMIME\r\n",
	 true, SPONGE_OK, 0, NULL, "250 mx.example hello / SIZE 10485760",
	 1, 10485760, 1, " PLAIN LOGIN "},
	{"bare newlines", "220 x\n250-x\n250 SIZE\n", true, SPONGE_OK, 0, NULL,
	 "250 x / SIZE", 1, 0, 0, " "},
	{"keywords by case, AUTH=", "220 x\r\n250-x\r\n250-size 77\r\n"
				    "250-starttls\r\n250 AUTH=PLAIN\r\n",
	 true, SPONGE_OK, 0, NULL, "250 x", 1, 77, 1, " PLAIN "},
	{"a keyword's look-alike", "220 x\r\n250-x\r\n250-SIZEX 5\r\n"
				   "250-STARTTLSX\r\n250 AUTHENTICATE\r\n",
	 true, SPONGE_OK, 0, NULL, "250 x", 0, 0, 0, " "},
	{"AUTH lines past the list's room",
	 "220 x\r\n250-x\r\n"
	 "250-AUTH AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
	 "250-AUTH BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\r\n"
	 "250-AUTH CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC\r\n"
	 "250-AUTH  plain   LOGIN\r\n250 AUTH XOAUTH2\r\n",
	 true, SPONGE_OK, 0, NULL, "250 x", 0, 0, 0,
	 " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA "
	 "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB "
	 "PLAIN LOGIN "},
	{"HELO when EHLO is unknown", "220 x\r\n502 5.5.2 what\r\n250 old\r\n",
	 true, SPONGE_OK, 0, NULL, "250 old", 0, 0, 0, " "},
	{"greeting refused", "554 5.7.1 no service for you\r\n", true,
	 SPONGE_EPERMFAIL, SP_PERMANENT, "greeting",
	 "554 5.7.1 no service for you", 0, 0, 0, NULL},
	{"greeting busy", "421 4.3.2 busy\r\n", true, SPONGE_ETEMPFAIL,
	 SP_TEMPORARY, "greeting", "421 4.3.2 busy", 0, 0, 0, NULL},
	{"multi-line reply joined", "554-first line\r\n554 second line\r\n",
	 true, SPONGE_EPERMFAIL, SP_PERMANENT, "greeting",
	 "554 first line / second line", 0, 0, 0, NULL},
	{"control characters", "554 bad\x01text\x1b[31m\r\n", true,
	 SPONGE_EPERMFAIL, SP_PERMANENT, "greeting", "554 bad text [31m", 0,
	 0, 0, NULL},
	{"not SMTP", "HTTP/1.1 400 Bad Request\r\n", true, SPONGE_ETEMPFAIL,
	 SP_TEMPORARY, "greeting", "not an SMTP reply: \"HTTP/1.1 400 Bad",
	 0, 0, 0, NULL},
	{"a code out of range", "620 what\r\n", true, SPONGE_ETEMPFAIL,
	 SP_TEMPORARY, "greeting", "not an SMTP reply", 0, 0, 0, NULL},
	{"cut mid-reply", "220-one\r\n220-two", true, SPONGE_ETEMPFAIL,
	 SP_TEMPORARY, "greeting", "the server closed the connection", 0, 0,
	 0, NULL},
	{"ehlo refused", "220 x\r\n550 5.7.1 go away\r\n", true,
	 SPONGE_EPERMFAIL, SP_PERMANENT, "ehlo", "550 5.7.1 go away", 0, 0, 0,
	 NULL},
	{"silent after the greeting", "220 x\r\n", false, SPONGE_ETEMPFAIL,
	 SP_TEMPORARY, "ehlo", "timed out (smtp.timeout)", 0, 0, 0, NULL},
};

/* One case: the server's bytes in, the greeting and EHLO out. */
static void run_case(const hello_case *k, int timeout_ms, sc_conn *c,
		     sp_send_result *r, int *rc, char said[256])
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	size_t n = strlen(k->server);
	ck_assert_int_eq(write(sv[1], k->server, n), (ssize_t)n);
	if (k->hang_up)
		shutdown(sv[1], SHUT_WR); /* our EHLO still fits the buffer */
	sc_params p = {.host = "mx.example", .timeout_ms = timeout_ms,
		       .helo = "client.example"};
	memset(r, 0, sizeof *r);
	sb_init(&r->reply, 0);
	sb_init(&r->refused, 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL,
			       fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
	sc_attach(c, &p, r, sv[0]);
	*rc = sc_hello(c);
	/* what the client said: EHLO (and HELO after a 502) */
	ck_assert_int_eq(fcntl(sv[1], F_SETFL,
			       fcntl(sv[1], F_GETFL) | O_NONBLOCK), 0);
	ssize_t got = read(sv[1], said, 255);
	said[got > 0 ? got : 0] = '\0';
	close(sv[1]);
}

START_TEST(hello_table)
{
	const hello_case *k = &cases[_i];
	sc_conn c;
	sp_send_result r;
	int rc;
	char said[256];
	run_case(k, 300, &c, &r, &rc, said);
	bool greeted = rc == SPONGE_OK || !strcmp(r.stage, "ehlo");
	ck_assert_msg(!greeted == !strstr(said, "EHLO client.example\r\n"),
		      "%s: the client said '%s'", k->name, said);
	if (strstr(k->server, "\n502 "))
		ck_assert_ptr_nonnull(strstr(said, "\r\nHELO client.example\r\n"));
	ck_assert_msg(rc == k->rc, "%s: rc %d, want %d (%s)", k->name, rc,
		      k->rc, r.reply.data ? r.reply.data : "");
	if (rc == SPONGE_OK) {
		ck_assert_msg(strstr(c.reply.data, k->reply), "%s: reply '%s'",
			      k->name, c.reply.data);
		ck_assert_int_eq(c.has_size, k->has_size);
		ck_assert_uint_eq(c.size, k->size);
		ck_assert_int_eq(c.starttls, k->starttls);
		ck_assert_str_eq(c.auth, k->auth);
	} else {
		ck_assert_int_eq(r.outcome, k->outcome);
		ck_assert_str_eq(r.stage, k->stage);
		ck_assert_msg(strstr(r.reply.data, k->reply),
			      "%s: reply '%s', want '%s'", k->name,
			      r.reply.data, k->reply);
	}
	sc_close(&c, false);
	sb_free(&r.reply);
	sb_free(&r.refused);
}
END_TEST

/* A line that never ends is bounded by its length, not only by time. */
START_TEST(hello_endless_line)
{
	static char big[70000];
	memset(big, 'x', sizeof big - 1);
	memcpy(big, "220-", 4);
	hello_case k = {"endless line", big, false, 0, 0, NULL, NULL,
			0, 0, 0, NULL};
	sc_conn c;
	sp_send_result r;
	int rc;
	char said[256];
	run_case(&k, 5000, &c, &r, &rc, said);
	ck_assert_int_eq(rc, SPONGE_ETEMPFAIL);
	ck_assert_ptr_nonnull(strstr(r.reply.data, "longer than 64 KiB"));
	sc_close(&c, false);
	sb_free(&r.reply);
	sb_free(&r.refused);
}
END_TEST

Suite *smtp_conn_suite(void)
{
	Suite *s = suite_create("smtp_conn");
	TCase *t = tcase_create("smtp_conn");
	tcase_add_loop_test(t, hello_table, 0,
			    (int)(sizeof cases / sizeof cases[0]));
	tcase_add_test(t, hello_endless_line);
	suite_add_tcase(s, t);
	return s;
}
