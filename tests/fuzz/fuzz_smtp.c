/* Fuzz the SMTP connection's reply reader and EHLO parser: the input is
 * what a server says (greeting, EHLO reply, then more replies), written
 * into a socketpair whose other end the connection reads. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (size > 65536 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	if (write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR); /* the server has said all it says */
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	sp_send_result r;
	memset(&r, 0, sizeof r);
	sb_init(&r.reply, 0);
	sb_init(&r.refused, 0);
	sc_params p = {.host = "mx.example", .timeout_ms = 2000,
		       .helo = "client.example"};
	sc_conn c;
	sc_attach(&c, &p, &r, sv[0]);
	int rc = sc_hello(&c);
	if (rc == SPONGE_OK) {
		/* an EHLO that succeeded: its code, and the AUTH list as
		 * " MECH MECH " */
		size_t n = strlen(c.auth);
		if ((c.code != 250) || n < 1 || c.auth[0] != ' ' ||
		    c.auth[n - 1] != ' ')
			__builtin_trap();
		for (int k = 0; k < 64 && sc_reply(&c, sc_deadline(&c), NULL); k++)
			if (c.code < 200 || c.code > 599)
				__builtin_trap();
	} else if (!r.stage || !r.reply.data || r.outcome == SP_SENT) {
		__builtin_trap(); /* a failure always says where and why */
	}
	sc_close(&c, false);
	close(sv[1]);
	sb_free(&r.reply);
	sb_free(&r.refused);
	return 0;
}
