"""The SMTP transport's edges (issue 11): one connection per flush that
the library owns, TLS 1.3 with STARTTLS, TLS errors that name the cause,
the server's SIZE on the first message, replies kept whole, the HELO
name, refused recipients, OAuth2, running out of descriptors."""
import errno
import os
import socket
import ssl
import subprocess
import time
import unittest

from common import BIN, SCALE, TEST_BIN, build_program, scaled
from smtpserver import TOKEN, USER, Certs, free_port
from test_flush import (EX_IOERR, EX_NOPERM, EX_UNAVAILABLE,
                        FlushTest)

TLS13 = ssl.TLSVersion.TLSv1_3


class OneConnectionTest(FlushTest):
    def test_a_flush_opens_one_connection(self):
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        # (the old flush probed reachability with a second connection)
        self.assertEqual(len(srv.handler.peers), 1, srv.handler.peers)
        self.run_ls("check", "--smtp")
        self.assertEqual(len(srv.handler.peers), 2)

    HOST_PROGRAM = r"""
#include <arpa/inet.h>
#include <logsponge.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A program with its own connection to the mail server, which also
 * links liblogsponge and checks the SMTP settings. */
int main(int argc, char **argv)
{
	char buf[512];
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    read(fd, buf, sizeof buf) < 3 || memcmp(buf, "220", 3) != 0)
		return 10;
	sponge *sp = NULL;
	if (sponge_open(&sp, argv[2], argv[3], 0) != SPONGE_OK)
		return 11;
	int rc = sponge_check_smtp(sp);
	printf("check %d %s|%s\n", rc, sponge_errmsg(sp),
	       sponge_check_report(sp));
	sponge_close(sp);
	/* our own connection must still work */
	const char ehlo[] = "EHLO host.example\r\n";
	ssize_t n;
	if (write(fd, ehlo, sizeof ehlo - 1) != (ssize_t)sizeof ehlo - 1 ||
	    (n = read(fd, buf, sizeof buf - 1)) < 3 || memcmp(buf, "250", 3))
		return 12;
	return rc == SPONGE_OK ? 0 : 13;
}
"""

    def test_check_never_touches_the_host_programs_socket(self):
        """A program that links liblogsponge and holds its own connection
        to the same server port: the old check --smtp found "its" socket
        by scanning descriptors for that peer port and shut it down (on a
        connection without TLS, where libESMTP did not show its socket;
        the host program then died of SIGPIPE)."""
        srv = self.start(starttls=False, auth=False)
        self.write_config(srv.port, user=False, smtp_extra="tls = none\n")
        self.run_ls("add", input=b"")
        exe = build_program(self.dir, self.HOST_PROGRAM, "host")
        p = subprocess.run([exe, str(srv.port), self.spool, self.cfg],
                           env=self.env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("port %d, no TLS" % srv.port, p.stdout)


class Tls13Test(FlushTest):
    def test_starttls_to_a_tls13_only_server_many_times(self):
        """libESMTP hung on TLS 1.3 session tickets, so the old client
        capped itself at TLS 1.2, and every STARTTLS to a server that
        takes only 1.3 failed."""
        srv = self.start(tls_min=TLS13)
        self.write_config(srv.port)
        n = scaled(200, 5)
        failures, slow = [], 0
        for i in range(n):
            self.add(b"round %d\n" % i)
            t0 = time.time()
            p = self.flush()
            if time.time() - t0 > (1.5 if SCALE >= 1 else 15):
                slow += 1
            if p.returncode != 0:
                failures.append((i, p.returncode, p.stderr))
        self.assertEqual(failures, [])
        self.assertEqual(slow, 0)  # no hang until a timeout
        self.assertEqual(len(srv.messages), n)
        p = self.run_ls("check", "--smtp")
        self.assertIn(b"TLSv1.3", p.stdout)


def flush_against_s_server(test, *args):
    """A flush of three records over implicit TLS to OpenSSL's own
    s_server started with args (it speaks no SMTP: what is tested is the
    handshake and the alerts)."""
    port = free_port()
    certs = Certs.get()
    srv = subprocess.Popen(
        ["openssl", "s_server", "-accept", str(port), "-cert", certs.good[0],
         "-key", certs.good[1], "-quiet"] + list(args),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        test.write_config(port, smtp_extra="tls = tls\n")
        test.seed()
        return test.flush()
    finally:
        srv.kill()
        srv.wait()


class TlsErrorsTest(FlushTest):
    def fails_with(self, reply, **kw):
        srv = self.start(**kw)
        self.write_config(srv.port, host=kw.pop("host", "localhost"))
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("tls", "tls"))
        self.assertIn(reply, h["reply"])
        self.assertIn(reply.encode(), p.stderr)
        # never a server's success reply as the cause
        self.assertNotIn("Ready to start TLS", h["reply"])
        return h

    def test_no_protocol_version_in_common(self):
        """An old server (TLS 1.1 at most): OpenSSL's own s_server, over
        implicit TLS (aiosmtpd just closes the connection there)."""
        p = flush_against_s_server(self, "-tls1_1", "-cipher",
                                   "DEFAULT@SECLEVEL=0")
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        self.assertIn(b"smtp tls: TLS handshake with localhost failed: no "
                      b"protocol version in common", p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("tls", "tls"))

    def test_a_server_that_drops_the_handshake(self):
        self.fails_with("TLS handshake with localhost failed: the server "
                        "closed the connection",
                        tls_max=ssl.TLSVersion.TLSv1_1)

    def test_unknown_issuer(self):
        self.fails_with("certificate verify failed: unable to get local "
                        "issuer certificate", cert="unknown")

    def test_wrong_name(self):
        self.fails_with("certificate is for wrong.example, not localhost",
                        cert="wrong")

    def test_wrong_address(self):
        srv = self.start(cert="wrong")
        self.write_config(srv.port, host="127.0.0.1")
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        self.assertIn("certificate is for wrong.example, not 127.0.0.1",
                      self.history()[-1]["reply"])


class ClientCertificateTest(FlushTest):
    """A server that requires a client certificate (OpenSSL's s_server
    -Verify, as OpenSMTPD's tls-require verify): over TLS 1.3 its alert
    comes after the handshake, and the flush said "smtp ehlo: the
    connection was lost" (75, so cron retried for ever); over TLS 1.2
    only "sslv3 alert handshake failure"."""

    def flush_against(self, version):
        p = flush_against_s_server(self, "-CAfile", Certs.get().ca,
                                   "-Verify", "1", "-verify_return_error",
                                   version)
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("tls", "tls"))
        return p, h

    def test_over_tls_1_3(self):
        p, h = self.flush_against("-tls1_3")
        self.assertIn("the server requires a client certificate",
                      h["reply"])
        self.assertIn(b"client certificate", p.stderr)

    def test_over_tls_1_2(self):
        p, h = self.flush_against("-tls1_2")
        self.assertIn("the server refused the handshake", h["reply"])
        self.assertIn("client certificate", h["reply"])


class FloodServer:
    """Greets, then answers EHLO with 250- lines that never end."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        conn.sendall(b"220 flood ESMTP\r\n")
        conn.recv(1000)
        line = b"250-" + b"x" * 60 + b"\r\n"
        end = time.monotonic() + 60
        try:
            while not self.stop and time.monotonic() < end:
                conn.sendall(line * 2000)
        except OSError:
            pass
        conn.close()

    def close(self):
        self.stop = True
        self.sock.close()


class EndlessReplyTest(FlushTest):
    def test_ehlo_flood_is_bounded_by_the_timeout(self):
        """250- lines without end stretched a 5 s timeout to 11 s."""
        srv = FloodServer()
        self.addCleanup(srv.close)
        self.write_config(srv.port, user=False, smtp_extra="tls = none\n")
        self.seed()
        t0 = time.monotonic()
        p = self.flush()
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn(b"timed out", p.stderr)
        self.assertLess(took, 4, p.stderr)  # 2 s, with room for a busy CI


SQUATTER = r"""
import os, signal, socket, sys, time
os.setgroups([]); os.setgid(65534); os.setuid(65534)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))

def listeners():
    ports = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        addr, port = f[1].split(":")
        if addr == "0100007F" and f[3] == "0A":
            ports.add(int(port, 16))
    return ports

seen, held, end = listeners(), [], time.monotonic() + float(sys.argv[1])
print("ready", flush=True)
while time.monotonic() < end and not stop:
    for port in listeners() - seen:
        seen.add(port)
        try:  # connect and say nothing
            held.append(socket.create_connection(("127.0.0.1", port), 1))
        except OSError:
            pass
    time.sleep(0.002)
print(len(held), flush=True)
"""


class RelayAdmissionTest(FlushTest):
    """Another user connects to every new listener on 127.0.0.1 as soon
    as it appears and stays silent: the relay's port among them.  The
    relay greeted one connection at a time and waited for its EHLO until
    the step's deadline, so a squatter that came first stalled the flush
    until it failed; now every connection is waited on at once.  The test
    build pauses 300 ms after the relay listens, so the squatter always
    comes first."""

    def test_a_silent_squatter_changes_nothing(self):
        srv = self.start()
        self.write_config(srv.port)
        sq = subprocess.Popen(["/usr/bin/python3", "-c", SQUATTER, "120"],
                              stdout=subprocess.PIPE, text=True)
        self.addCleanup(sq.kill)
        self.assertEqual(sq.stdout.readline().strip(), "ready")
        env = dict(self.env, LOGSPONGE_TEST_DELAY="relay-listening")
        n = scaled(20, 5)
        slow = []
        for i in range(n):
            self.add(b"record %d\n" % i)
            t0 = time.monotonic()
            p = self.flush(env=env, bin=TEST_BIN)
            took = time.monotonic() - t0
            self.assertEqual(p.returncode, 0, p.stderr)
            if took > 1.5:  # the pause is 0.3 s; smtp.timeout 2 s
                slow.append(took)
        sq.terminate()
        squatted = int(sq.communicate(timeout=30)[0].strip())
        self.assertEqual(slow, [])
        self.assertEqual(len(srv.messages), n)
        self.assertGreaterEqual(squatted, n, "the squatter came too late")


class RepliesTest(FlushTest):
    def test_enhanced_status_codes_are_kept(self):
        srv = self.start()
        self.write_config(srv.port, to="rcpt550@example.org")
        self.seed()
        self.assertEqual(self.flush().returncode, EX_UNAVAILABLE)
        h = self.history()[-1]
        self.assertIn("RCPT <rcpt550@example.org>: 550 5.1.1", h["reply"])
        self.assertEqual(h["stage"], "rcpt")
        srv.stop()
        srv = self.server = self.start()
        self.write_config(srv.port, to="data554@example.org")
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE)
        self.assertIn(b"smtp data: 554 5.7.1 rejected for the test",
                      p.stderr)
        self.assertEqual(self.history()[-1]["reply"],
                         "554 5.7.1 rejected for the test")

    def test_a_multi_line_reply_is_one_line(self):
        srv = self.start()
        self.write_config(srv.port, to="multiline@example.org")
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        h = self.history()[-1]
        self.assertEqual(h["reply"], "250 2.0.0 first line of two / "
                                     "2.0.0 queued as 1")
        self.assertNotIn("\r", h["reply"])

    def test_refusal_in_the_middle_of_data_stops_the_transfer(self):
        srv = self.start()
        self.write_config(srv.port, to="early552@example.org")
        self.add(("z" * 900 + "\n").encode() * 3000)  # ~2.7 MB
        t0 = time.time()
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("permanent", "data"))
        self.assertIn("552 5.3.4 Message size exceeds fixed limit",
                      h["reply"])
        self.assertIn(b"552 5.3.4", p.stderr)
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(len(self.snapshot()), 3000)


class HeloTest(FlushTest):
    @unittest.skipUnless(os.geteuid() == 0, "unshare --uts needs root")
    def test_helo_is_a_domain_or_an_address_literal(self):
        """Postfix with reject_non_fqdn_helo_hostname refuses a short
        name; without a fully qualified name, RFC 5321 wants [address]."""
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        p = subprocess.run(
            ["unshare", "--uts", "sh", "-c",
             'hostname nodots && exec "$@"', "sh", self.bin_path(),
             "-s", self.spool, "flush"], env=self.env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(srv.handler.helos[-1], "[127.0.0.1]")

    def test_helo_setting_wins(self):
        srv = self.start()
        self.write_config(srv.port, smtp_extra="helo = mx1.example.org\n")
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual(srv.handler.helos[-1], "mx1.example.org")

    def bin_path(self):
        from common import BIN
        return BIN


class RefusedRecipientTest(FlushTest):
    def test_one_refused_recipient_is_said(self):
        srv = self.start()
        self.write_config(srv.port, to="ok@example.org, rcpt550@example.org")
        self.seed()
        p = self.run_ls("-q", "flush", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode()
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("logsponge: flush: sent, but refused: "
                      "RCPT <rcpt550@example.org>: 550 5.1.1", err)
        st = self.run_ls("status").stdout.decode()
        self.assertIn("rcpt550@example.org", st)


class OAuth2Test(FlushTest):
    def oauth_config(self, srv, extra=""):
        tok = os.path.join(self.dir, "token.sh")
        with open(tok, "w") as f:
            f.write("#!/bin/sh\necho '%s'\n" % TOKEN)
        os.chmod(tok, 0o700)
        self.write_config(srv.port, user=False,
                          smtp_extra="user = %s\ntoken_command = %s\n%s"
                          % (USER, tok, extra))

    def test_oauthbearer_is_preferred(self):
        srv = self.start()
        self.oauth_config(srv)
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([m for m, _ in srv.handler.auth], ["OAUTHBEARER"])
        self.assertEqual(len(srv.messages), 1)
        self.assertNotIn(TOKEN, str(self.history()))

    def test_xoauth2_when_asked_or_only_offered(self):
        srv = self.start(mechanisms=["XOAUTH2"])
        self.oauth_config(srv)
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual([m for m, _ in srv.handler.auth], ["XOAUTH2"])
        p = self.run_ls("check", "--smtp")
        self.assertIn(b"AUTH XOAUTH2 as " + USER.encode(), p.stdout)
        srv.stop()
        srv = self.server = self.start()
        self.oauth_config(srv, "auth = xoauth2\n")
        self.seed()
        self.assertEqual(self.flush().returncode, 0)
        self.assertEqual([m for m, _ in srv.handler.auth], ["XOAUTH2"])

    def test_a_refused_token_is_an_auth_failure(self):
        srv = self.start()
        self.oauth_config(srv)
        with open(os.path.join(self.dir, "token.sh"), "w") as f:
            f.write("#!/bin/sh\necho expired-token\n")
        self.seed()
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertEqual(self.snapshot(), before)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("auth", "auth"))
        self.assertNotIn("expired-token", p.stderr.decode() + str(h))

    def test_mechanism_not_offered(self):
        srv = self.start(mechanisms=["PLAIN", "LOGIN"])
        self.oauth_config(srv)
        self.seed()
        p = self.flush()
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertIn(b"does not offer AUTH XOAUTH2", p.stderr)

    def test_config_mistakes(self):
        srv = self.start()
        self.oauth_config(srv, "auth = plain\n")
        self.run_ls("add", input=b"")
        p = self.run_ls("check", check=False)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(b"smtp.auth = plain takes a password", p.stderr)


class DescriptorsTest(FlushTest):
    def test_out_of_descriptors_is_not_an_auth_failure(self):
        """The old code reported EMFILE as "no usable AUTH mechanism"."""
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        env = dict(self.env, LD_PRELOAD=os.environ["LOGSPONGE_FAULTFS"],
                   FAULTFS_SOCKET_EMFILE="1",
                   ASAN_OPTIONS="verify_asan_link_order=0")
        p = self.flush(env=env)
        self.assertNotEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertEqual(p.returncode, 71, p.stderr)  # EX_OSERR
        self.assertIn(b"Too many open files", p.stderr)
        self.assertEqual(self.history()[-1]["outcome"], "local")


class SandboxTest(FlushTest):
    def test_no_loopback_listener_says_so(self):
        """A sandbox that forbids listening (bind fails with EPERM) is
        named as such, a configuration error, and nothing is lost."""
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        env = dict(self.env, LD_PRELOAD=os.environ["LOGSPONGE_FAULTFS"],
                   FAULTFS_BIND_ERRNO=str(errno.EPERM),
                   ASAN_OPTIONS="verify_asan_link_order=0")
        p = self.flush(env=env)
        self.assertEqual(p.returncode, 78, p.stderr)  # EX_CONFIG
        self.assertIn(b"listening on 127.0.0.1 is not allowed here", p.stderr)
        self.assertEqual(len(p.stderr.strip().split(b"\n")), 1, p.stderr)
        self.assertEqual(self.history()[-1]["stage"], "relay")
        self.assertEqual(srv.messages, [])
        p = self.flush()  # the sandbox lifted: it goes
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(srv.messages), 1)


class FewDescriptorsTest(FlushTest):
    def test_every_limit_is_a_resource_error_or_a_send(self):
        """Under ulimit -n 7 the flush said "cannot set up TLS" as a
        configuration error (78): EMFILE is the system's, 71."""
        import resource
        srv = self.start()
        self.write_config(srv.port)
        self.seed()
        codes = {}
        for n in range(4, 40):
            def limit(n=n):
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            p = subprocess.run([BIN, "-s", self.spool, "flush"],
                               capture_output=True, env=self.env,
                               preexec_fn=limit)
            codes[n] = p.returncode
            if p.returncode == 0:
                break
            self.assertEqual(p.returncode, 71, (n, p.stderr))
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertIn(b"Too many open files", p.stderr)
        self.assertIn(0, codes.values(), codes)
        self.assertIn(71, codes.values(), codes)
        self.assertEqual(len(srv.messages), 1)
        self.assertEqual(self.snapshot(), [])


class SizeTest(FlushTest):
    def test_69_only_when_even_one_record_cannot_fit(self):
        """SIZE 70000 and one incompressible 64 KB record: the batch
        cannot shrink below one record, so nothing is sent, 69, and
        history says why (the server never sees a transfer)."""
        import base64
        srv = self.start(size_limit=70000)
        self.write_config(srv.port)
        self.add(base64.b64encode(os.urandom(48000)) + b"\n")
        before = self.snapshot()
        p = self.flush()
        self.assertEqual(p.returncode, EX_UNAVAILABLE, p.stderr)
        self.assertIn(b"not even the first record fits in", p.stderr)
        h = self.history()[-1]
        self.assertEqual((h["outcome"], h["stage"]), ("permanent", "size"))
        self.assertEqual(srv.messages, [])
        self.assertEqual(self.snapshot(), before)

    def test_a_batch_shrinks_to_fit_the_servers_size(self):
        import base64
        srv = self.start(size_limit=200000)
        self.write_config(srv.port)
        for i in range(8):  # 8 incompressible 45 KB records
            self.add(base64.b64encode(os.urandom(34000)) + b"\n")
        p = self.flush()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLessEqual(len(srv.messages[0][1]), 200000)
        left = len(self.snapshot())
        self.assertGreater(left, 0)  # the rest waits for the next message
        while self.snapshot():
            self.assertEqual(self.flush("--force").returncode, 0)
        self.assertTrue(all(len(m[1]) <= 200000 for m in srv.messages))
