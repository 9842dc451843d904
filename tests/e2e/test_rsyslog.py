"""The guide's rsyslog recipe (docs/guide.md), tested with a real rsyslogd from Debian:
an unprivileged-style instance listening on UDP 127.0.0.1, feeding
`logsponge add --format rfc5424` through omprog."""
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from common import BIN, SpoolTest
from smtpserver import free_port

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

# The guide's recipe's template: RFC 5424 with exactly one space before MSG
# (RFC 3164 input keeps the space after "tag:" in %msg%)
TEMPLATE = ('template(name="logsponge" type="string" string="<%PRI%>1 '
            '%TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% '
            '%PROCID% %MSGID% %STRUCTURED-DATA%%msg:::sp-if-no-1st-sp'
            '%%msg:::drop-last-lf%\\n")')


def start_rsyslogd(work, text, env, stderr=subprocess.DEVNULL):
    """rsyslogd in the foreground with config text (its workDirectory is
    work, which it gets as %(work)s)."""
    os.makedirs(work, exist_ok=True)
    conf = os.path.join(work, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(text.replace("%(work)s", work))
    return subprocess.Popen([RSYSLOGD, "-n", "-f", conf, "-i",
                             os.path.join(work, "pid")],
                            stdout=subprocess.DEVNULL, stderr=stderr, env=env)


def stop_rsyslogd(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@unittest.skipUnless(os.path.exists(RSYSLOGD), "rsyslogd is not installed")
class RsyslogTest(SpoolTest):
    def test_omprog_feeds_logsponge(self):
        port = free_port()
        p = start_rsyslogd(os.path.join(self.dir, "rsyslog"), """
global(workDirectory="%%(work)s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%(port)d")
# --- the guide's recipe ---
module(load="omprog")
%(template)s
# warnings and worse go to the spool
if $syslogseverity <= 4 then {
  action(type="omprog"
         binary="%(bin)s -s %(spool)s add --format rfc5424"
         template="logsponge")
}
""" % dict(port=port, bin=BIN, spool=self.spool, template=TEMPLATE),
            self.env, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            self.assertIsNone(p.poll(), p.stderr.read() if p.poll() else "")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            msgs = [
                b"<11>1 2026-11-21T10:00:00.5Z web1 backup 42 - - "
                b"disk \xc3\xa9 full",            # user.err
                b"<14>1 2026-11-21T10:00:01Z web1 backup 42 - - just info",
                b"<28>Nov 21 10:00:02 web1 nginx[7]: upstream slow",  # warn
            ]
            for m in msgs:
                s.sendto(m, ("127.0.0.1", port))
            s.close()
            recs = []
            deadline = time.time() + 15
            while time.time() < deadline and len(recs) < 2:
                time.sleep(0.2)
                if os.path.exists(self.spool):
                    try:
                        recs = self.records()
                    except AssertionError:
                        recs = []
            got = {(r["level"], r["tag"], r["host"], r["message"])
                   for r in recs}
            self.assertEqual(got, {
                ("err", "backup", "web1", "disk \u00e9 full"),
                ("warning", "nginx", "web1", "upstream slow"),
            })
            times = sorted(r["time"] for r in recs)
            self.assertEqual(times[0], "2026-11-21T10:00:00.500000Z")
        finally:
            stop_rsyslogd(p)
            p.stderr.close()


RELP = os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so") or \
    os.path.exists("/usr/lib/rsyslog/omrelp.so")


@unittest.skipUnless(os.path.exists(RSYSLOGD), "rsyslogd is not installed")
class FleetTest(SpoolTest):
    """One digest for many hosts, the guide's recipe: each host's
    rsyslog forwards over RELP (TCP without rsyslog-relp) to a central
    rsyslog that feeds logsponge through omprog.  Two rsyslogd on
    127.0.0.1, each with its own port and work directory; the central one
    is stopped and started again while the edge keeps sending."""

    CENTRAL = """
global(workDirectory="%%(work)s")
module(load="%(inmod)s")
input(type="%(inmod)s" port="%(port)d" address="127.0.0.1")
module(load="omprog")
%(template)s
if $syslogseverity <= 4 then {
  action(type="omprog" binary="%(bin)s -s %(spool)s add --format rfc5424"
         template="logsponge"
         queue.type="LinkedList" queue.filename="to-logsponge"
         queue.saveOnShutdown="on" action.resumeRetryCount="-1")
}
"""
    EDGE = """
global(workDirectory="%%(work)s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%(udp)d")
%(outload)s
if $syslogseverity <= 4 then {
  action(type="%(outmod)s" target="127.0.0.1" port="%(port)d" %(proto)s
         template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.filename="to-central"
         queue.saveOnShutdown="on" action.resumeRetryCount="-1"
         action.resumeInterval="1")
}
"""

    def start(self, name, text):
        p = start_rsyslogd(os.path.join(self.dir, name),
                           text % dict(self.params, template=TEMPLATE),
                           self.env)
        self.procs.append(p)
        return p

    def send(self, host, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"<11>1 2026-11-21T10:00:%02dZ %s backup 42 - - "
                 b"disk full %d" % (i % 60, host.encode(), i),
                 ("127.0.0.1", self.params["udp"]))
        s.close()

    def wait_for(self, n):
        recs = []
        deadline = time.time() + 30
        while time.time() < deadline and len(recs) < n:
            time.sleep(0.3)
            if os.path.exists(self.spool):
                recs = self.records()
        return recs

    def test_one_digest_for_two_hosts_across_a_central_restart(self):
        self.procs = []
        self.params = dict(
            port=free_port(), udp=free_port(), bin=BIN, spool=self.spool,
            inmod="imrelp" if RELP else "imtcp",
            outmod="omrelp" if RELP else "omfwd",
            outload='module(load="omrelp")' if RELP else "",
            proto="" if RELP else 'protocol="tcp"')
        try:
            central = self.start("central", self.CENTRAL)
            self.start("edge", self.EDGE)
            time.sleep(1.5)
            for i in range(6):
                self.send("web%d" % (1 + i % 2), i)
            self.assertEqual(len(self.wait_for(6)), 6)
            # the central rsyslog goes away; the hosts keep logging
            stop_rsyslogd(central)
            for i in range(6, 12):
                self.send("web%d" % (1 + i % 2), i)
            time.sleep(1)
            self.start("central", self.CENTRAL)
            recs = self.wait_for(12)
        finally:
            for p in self.procs:
                if p.poll() is None:
                    stop_rsyslogd(p)
        got = sorted((r["host"], r["message"]) for r in recs)
        self.assertEqual(got, sorted(("web%d" % (1 + i % 2),
                                      "disk full %d" % i)
                                     for i in range(12)))
        # one digest that names each host
        cfg = self.config_file("[mail]\nfrom = a@b.c\nto = d@e.f\n"
                               "transport = stdout\n")
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.env["TZ"] = "UTC"
        import email
        import email.policy
        raw = self.run_ls("flush").stdout
        msg = email.message_from_bytes(raw, policy=email.policy.strict)
        text = msg.get_content().replace("\r\n", "\n")
        self.assertIn("\nHosts: web1 6, web2 6\n", text)
        self.assertIn("\nHost web1\n", text)
        self.assertIn("\nHost web2\n", text)
        self.assertEqual(self.records(), [])
