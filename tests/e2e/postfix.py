"""A production MTA for the tests: Postfix 3.7 with Dovecot SASL (Debian's
postfix and dovecot-core, installed by `make deps`), started on 127.0.0.1
from private configuration and queue directories made here.  Nothing in
/etc is read or changed (no alternate_config_directories needed: the
master runs with -c), no system service is enabled, and stop() ends every
process.  Mail for ops@example.org is delivered into a Maildir.

Listeners (attributes):
  submission  STARTTLS required, AUTH (Dovecot) only inside TLS,
              CHUNKING and SIZE offered, reject_non_fqdn_helo_hostname
  smtps       TLS from the first byte (smtpd_tls_wrappermode)
  tls13       like submission, but TLS 1.3 only
  small       like submission, message_size_limit = 200000
"""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

from smtpserver import PASSWORD, USER, Certs, free_port

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"


def available():
    return (os.geteuid() == 0 and os.path.exists(POSTFIX) and
            os.path.exists(DOVECOT))


class Postfix:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lspostfix.")
        os.chmod(self.dir, 0o755)
        d = self.dir
        self.etc = os.path.join(d, "etc")
        self.queue = os.path.join(d, "queue")
        self.maildir = os.path.join(d, "mail", "ops")
        for sub in ("etc", "queue", "data", "mail", "dovecot"):
            os.mkdir(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "data"), "postfix")
        shutil.chown(os.path.join(d, "mail"), 65534, 65534)
        certs = Certs.get()
        self.cert = os.path.join(d, "cert.pem")
        self.key = os.path.join(d, "key.pem")
        shutil.copy(certs.good[0], self.cert)
        shutil.copy(certs.good[1], self.key)
        os.chmod(self.key, 0o600)
        self.submission, self.smtps = free_port(), free_port()
        self.tls13, self.small = free_port(), free_port()
        self._write_postfix()
        self._write_dovecot()

    def _write_postfix(self):
        d = self.dir
        shutil.copy("/etc/postfix/master.cf", self.etc)
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            f.write("ops@example.org ops/\n")
        main = """compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.logsponge.test
mydestination =
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
virtual_mailbox_domains = example.org
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
message_size_limit = 50000000
virtual_mailbox_limit = 0
smtpd_tls_cert_file = {d}/cert.pem
smtpd_tls_key_file = {d}/key.pem
smtpd_tls_received_header = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_non_fqdn_helo_hostname
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient
""".format(d=d)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(main)
        sub = ("-o smtpd_tls_security_level=encrypt "
               "-o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes")
        services = [
            (self.submission, sub),
            (self.smtps, "-o smtpd_tls_wrappermode=yes "
             "-o smtpd_sasl_auth_enable=yes"),
            (self.tls13, sub + " -o smtpd_tls_protocols=>=TLSv1.3"
             " -o smtpd_tls_mandatory_protocols=>=TLSv1.3"),
            (self.small, sub + " -o message_size_limit=200000"),
        ]
        self._postconf("-MX", "smtp/inet")
        for port, opts in services:
            self._postconf("-M", "127.0.0.1:%d/inet=127.0.0.1:%d inet n - n "
                           "- - smtpd %s" % (port, port, opts))
        # no chroot: the private queue directory holds no /etc copies
        self._postconf("-F", "*/*/chroot = n")

    def _postconf(self, *args):
        subprocess.run(["postconf", "-c", self.etc] + list(args), check=True,
                       capture_output=True)

    def _write_dovecot(self):
        d = self.dir
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (USER, PASSWORD))
        self.dovecot_conf = os.path.join(d, "dovecot.conf")
        with open(self.dovecot_conf, "w") as f:
            f.write("""base_dir = {d}/dovecot
protocols =
ssl = no
log_path = {d}/dovecot.log
auth_mechanisms = plain login
# (the default 2 s delay after a failure is longer than the tests'
# smtp.timeout)
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  unix_listener {d}/queue/private/auth {{
    user = postfix
    group = postfix
    mode = 0660
  }}
}}
""".format(d=d, users=users))

    def start(self):
        # postfix check makes the queue's subdirectories (private/ too)
        subprocess.run([POSTFIX, "-c", self.etc, "check"],
                       capture_output=True)
        # (daemons: their output must not hold our pipes open)
        quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
        subprocess.run([DOVECOT, "-c", self.dovecot_conf], check=True,
                       **quiet)
        p = subprocess.run([POSTFIX, "-c", self.etc, "start"], **quiet)
        if p.returncode != 0:
            self.stop()
            raise RuntimeError("postfix did not start: %s" % self.log())
        for port in (self.submission, self.smtps, self.tls13, self.small):
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        return self

    def stop(self):
        quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
        subprocess.run([POSTFIX, "-c", self.etc, "stop"], **quiet)
        subprocess.run([DOVECOT, "-c", self.dovecot_conf, "stop"], **quiet)
        for _ in range(100):
            if not os.path.exists(os.path.join(self.dir, "data",
                                               "master.lock")) or \
                    subprocess.run(["pgrep", "-f", "-c", self.etc],
                                   capture_output=True).returncode != 0:
                break
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "maillog")) as f:
                return f.read()
        except OSError:
            return ""

    def files(self):
        return set(glob.glob(os.path.join(self.maildir, "new", "*")))

    def delivered(self, count=1, since=frozenset(), timeout=20):
        """The raw messages in ops@example.org's Maildir that are not in
        `since` (a files() set), oldest first, once `count` arrived
        (local delivery follows the 250 within moments)."""
        deadline = time.time() + timeout
        while True:
            files = self.files() - set(since)
            if len(files) >= count or time.time() > deadline:
                break
            time.sleep(0.1)
        out = []
        for p in sorted(files, key=os.path.getmtime):
            with open(p, "rb") as f:
                out.append(f.read())
        return out
