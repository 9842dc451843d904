"""The README's rsyslog recipe, tested with a real rsyslogd from Debian:
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


@unittest.skipUnless(os.path.exists(RSYSLOGD), "rsyslogd is not installed")
class RsyslogTest(SpoolTest):
    def test_omprog_feeds_logsponge(self):
        port = free_port()
        work = os.path.join(self.dir, "rsyslog")
        os.makedirs(work)
        conf = os.path.join(work, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write("""
global(workDirectory="%(work)s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%(port)d")
# --- the README recipe ---
module(load="omprog")
# RFC 5424 with exactly one space before MSG (RFC 3164 input keeps the
# space after "tag:" in %%msg%%)
template(name="logsponge" type="string"
         string="<%%PRI%%>1 %%TIMESTAMP:::date-rfc3339%% %%HOSTNAME%% %%APP-NAME%% %%PROCID%% %%MSGID%% %%STRUCTURED-DATA%%%%msg:::sp-if-no-1st-sp%%%%msg:::drop-last-lf%%\n")
# warnings and worse go to the spool
if $syslogseverity <= 4 then {
  action(type="omprog"
         binary="%(bin)s -s %(spool)s add --format rfc5424"
         template="logsponge")
}
""" % dict(work=work, port=port, bin=BIN, spool=self.spool))
        p = subprocess.Popen([RSYSLOGD, "-n", "-f", conf, "-i",
                              os.path.join(work, "pid")],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=self.env)
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
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stderr.close()
