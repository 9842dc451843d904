"""A real SMTP server for the tests: aiosmtpd (Debian's python3-aiosmtpd)
with STARTTLS, AUTH and a throw-away CA made at test time.

Faults are chosen by recipient address (local part):
  rcpt421 / rcpt451 / rcpt452 / rcpt550   that reply at RCPT (421 closes)
  data552 / data554                        that reply after DATA
  dropdata                                 connection closed mid-DATA
  noreply                                  connection closed after the
                                           data, before the final reply
  slow                                     the final reply waits 1.5 s
  early552                                 552 in the middle of DATA,
                                           then the connection closes
  multiline                                a two-line final reply
"""
import asyncio
import logging
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

logging.getLogger("mail.log").setLevel(logging.CRITICAL)

USER, PASSWORD = "logger", "s3cret pass"
TOKEN = "ya29.test-access-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Certs:
    """A CA, a server certificate for localhost/127.0.0.1, one for the
    wrong name, and one from a CA nobody trusts."""

    _made = None

    @classmethod
    def get(cls):
        if cls._made is None:
            cls._made = cls()
        return cls._made

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lscerts.")
        d = self.dir
        self.ca = os.path.join(d, "ca.pem")
        self._ca("ca", "logsponge test CA")
        self._ca("evil", "untrusted CA")
        self.good = self._leaf("good", "ca", "DNS:localhost,IP:127.0.0.1")
        self.wrong = self._leaf("wrong", "ca", "DNS:wrong.example")
        self.unknown = self._leaf("unknown", "evil",
                                  "DNS:localhost,IP:127.0.0.1")

    def _run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True,
                       capture_output=True, cwd=self.dir)

    def _ca(self, name, cn):
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes",
                  "-keyout", name + ".key", "-out", name + ".pem",
                  "-days", "2", "-subj", "/CN=" + cn,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, name, ca, san):
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                  name + ".key", "-out", name + ".csr", "-subj",
                  "/CN=" + name)
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
        self._run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                  "-CAkey", ca + ".key", "-CAcreateserial", "-out",
                  name + ".pem", "-days", "2", "-extfile", ext)
        return (os.path.join(self.dir, name + ".pem"),
                os.path.join(self.dir, name + ".key"))


class Handler:
    def __init__(self):
        self.messages = []      # (envelope, raw bytes)
        self.sessions = 0
        self.helos = []         # the name of each EHLO
        self.peers = set()      # the client ends of all connections
        self.auth = []          # (mechanism, initial response) of OAuth2

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        self.sessions += 1
        self.helos.append(hostname)
        # as Postfix and Exim do (libESMTP then dropped "5.1.1" from the
        # replies it reported)
        responses.insert(len(responses) - 1, "250-ENHANCEDSTATUSCODES")
        return responses

    def _oauth(self, server, args, mech, want):
        import base64
        ir = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        self.auth.append((mech, ir))
        return AuthResult(success=(ir == want), handled=False,
                          auth_data=ir)

    async def auth_XOAUTH2(self, server, args):
        return self._oauth(server, args, "XOAUTH2",
                           "user=%s\x01auth=Bearer %s\x01\x01"
                           % (USER, TOKEN))

    async def auth_OAUTHBEARER(self, server, args):
        return self._oauth(server, args, "OAUTHBEARER",
                           "n,a=%s,\x01auth=Bearer %s\x01\x01"
                           % (USER, TOKEN))

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        local = address.split("@")[0]
        if local == "rcpt421":
            server.loop.call_soon(server.transport.close)
            return "421 4.3.2 service shutting down"
        for code in ("451", "452", "550"):
            if local == "rcpt" + code:
                return "%s %s.1.1 <%s> refused for the test" % (
                    code, code[0], address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        locals_ = {a.split("@")[0] for a in envelope.rcpt_tos}
        if "data552" in locals_:
            return "552 5.3.4 message too big for the test"
        if "data554" in locals_:
            return "554 5.7.1 rejected for the test"
        if "noreply" in locals_:
            server.transport.close()
            return None
        if "slow" in locals_:
            await asyncio.sleep(1.5)
        self.messages.append((envelope, bytes(envelope.original_content)))
        if "multiline" in locals_:
            return ("250-2.0.0 first line of two\r\n250 2.0.0 queued as %d"
                    % len(self.messages))
        return "250 2.0.0 queued as %d" % len(self.messages)


class FaultySMTP(SMTP):
    def connection_made(self, transport):
        # (called again after STARTTLS: a set counts each connection once)
        self.event_handler.peers.add(transport.get_extra_info("peername"))
        return super().connection_made(transport)

    async def smtp_DATA(self, arg):
        rcpts = self.envelope.rcpt_tos if self.envelope else []
        if any(r.startswith("early552@") for r in rcpts):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            for _ in range(20):
                await self._reader.readline()
            await self.push("552 5.3.4 Message size exceeds fixed limit")
            self.transport.close()
            return
        if any(r.startswith("dropdata@") for r in rcpts):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readline()
            self.transport.close()
            return
        return await super().smtp_DATA(arg)


class BulkSMTP(FaultySMTP):
    """For benchmarks: aiosmtpd reads DATA one line at a time in Python
    (15-20 MB/s), which would dominate the timing; this reads it in large
    blocks and only counts it (it keeps the last message)."""

    async def smtp_DATA(self, arg):
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        tail, size, parts = b"", 0, []
        while True:
            chunk = await self._reader.read(1 << 20)
            if not chunk:
                return
            size += len(chunk)
            parts.append(chunk)
            tail = (tail + chunk)[-5:]
            if tail == b"\r\n.\r\n":
                break
        data = b"".join(parts)[:-5] + b"\r\n"
        # undo dot-stuffing as a real server would
        data = data.replace(b"\r\n..", b"\r\n.")
        self.event_handler.messages.append((self.envelope, data))
        if not getattr(self.event_handler, "keep_all", False):
            del self.event_handler.messages[:-1]
        self.event_handler.bytes_received = getattr(
            self.event_handler, "bytes_received", 0) + size
        self._set_post_data_state()
        await self.push("250 2.0.0 OK %d bytes" % size)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (getattr(auth_data, "login", None) == USER.encode() and
          getattr(auth_data, "password", None) == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class TestController(Controller):
    def __init__(self, handler, port, bulk=False, ssl_context=None, **kw):
        self.smtp_kw = kw
        self.cls = BulkSMTP if bulk else FaultySMTP
        super().__init__(handler, hostname="127.0.0.1", port=port,
                         ssl_context=ssl_context)

    def factory(self):
        return self.cls(self.handler, **self.smtp_kw)


def smtp_section(directory, port, timeout="10s"):
    """A client's [smtp] section for a Server on port: STARTTLS verified
    by the test CA, AUTH with a password file made in directory."""
    pw = os.path.join(directory, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return ("[smtp]\nhost = localhost\nport = %d\nca_file = %s\nuser = %s\n"
            "password_file = %s\ntimeout = %s\n"
            % (port, Certs.get().ca, USER, pw, timeout))


class Server:
    """start(): a listening server; .port, .handler.messages."""

    def __init__(self, cert="good", starttls=True, auth=True, bulk=False,
                 implicit=False, keep_all=False, size_limit=None,
                 tls_min=None, tls_max=None, mechanisms=None,
                 client_cert=False):
        self.handler = Handler()
        self.handler.keep_all = keep_all
        self.port = free_port()
        kw = dict(hostname="testmx.localhost", ident="logsponge-test",
                  timeout=30)
        if size_limit:
            kw["data_size_limit"] = size_limit  # advertised as SIZE
        self.sni = []
        if implicit:
            # SMTPS (RFC 8314): TLS from the first byte, AUTH inside it
            certs = Certs.get()
            crt, key = getattr(certs, cert)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(crt, key)
            ctx.sni_callback = lambda o, name, c: self.sni.append(name)
            kw["ssl_context"] = ctx
            if auth:
                kw.update(auth_required=True, authenticator=authenticator,
                          auth_require_tls=False)
        elif starttls:
            certs = Certs.get()
            crt, key = getattr(certs, cert)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(crt, key)
            if tls_min:  # e.g. TLS 1.3 only
                ctx.minimum_version = tls_min
            if tls_max:  # an old server: TLS 1.1 at most
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                ctx.maximum_version = tls_max

            if client_cert:  # OpenSMTPD's tls-require verify
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(certs.ca)

            def sni(sslobj, name, context):
                self.sni.append(name)
            ctx.sni_callback = sni
            kw.update(tls_context=ctx, require_starttls=True)
        if auth and not implicit:
            kw.update(auth_required=True, authenticator=authenticator,
                      auth_require_tls=starttls)
        if mechanisms is not None:  # offer only these
            every = {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}
            kw["auth_exclude_mechanism"] = sorted(every - set(mechanisms))
        self.controller = TestController(self.handler, self.port, bulk=bulk,
                                         **kw)

    def start(self):
        self.controller.start()
        self.handler.peers.clear()  # the Controller's own first check
        return self

    def stop(self):
        self.controller.stop()

    @property
    def messages(self):
        return self.handler.messages


class SilentServer:
    """Accepts connections and never says anything (greeting timeout), or
    closes them at once (a server that is going down)."""

    def __init__(self, close_at_once=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.close_at_once = close_at_once
        self.conns = []
        self.stopped = False
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.close_at_once:
                c.close()
            else:
                self.conns.append(c)

    def start(self):
        self.t.start()
        return self

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()
