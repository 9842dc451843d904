"""Realistic syslog file lines from the daemons Debian's logcheck rules
name (sshd, CRON, postfix, systemd, kernel, su, sudo, dhclient, ntpd,
named, dovecot, rsyslogd, anacron, smartd ...): everyday lines those rules
ignore, variants they should not, and hostile lines (odd spacing,
brackets, backslashes, bytes past ASCII, long lines).  Deterministic for
a seed.  Usage: syslog_corpus.py N SEED > lines"""
import random
import sys
import time

DAEMON_LINES = [
    ("sshd", True, "Accepted publickey for {user} from {ip} port {port} ssh2: "
                   "ED25519 SHA256:{b64}"),
    ("sshd", True, "Accepted password for {user} from {ip} port {port} ssh2"),
    ("sshd", True, "pam_unix(sshd:session): session opened for user {user}(uid="
                   "{uid}) by (uid=0)"),
    ("sshd", True, "pam_unix(sshd:session): session closed for user {user}"),
    ("sshd", True, "Received disconnect from {ip} port {port}:11: disconnected "
                   "by user"),
    ("sshd", True, "Disconnected from user {user} {ip} port {port}"),
    ("sshd", True, "Connection closed by {ip} port {port} [preauth]"),
    ("sshd", True, "Invalid user {user} from {ip} port {port}"),
    ("sshd", True, "Failed password for invalid user {user} from {ip} port "
                   "{port} ssh2"),
    ("sshd", True, "Server listening on 0.0.0.0 port 22."),
    ("CRON", True, "pam_unix(cron:session): session opened for user root(uid=0)"
                   " by (uid=0)"),
    ("CRON", True, "pam_unix(cron:session): session closed for user root"),
    ("CRON", True, "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)"),
    ("CRON", True, "({user}) CMD (/usr/local/bin/backup.sh --quiet)"),
    ("postfix/smtpd", True, "connect from {host}[{ip}]"),
    ("postfix/smtpd", True, "disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt=1 "
                            "data=1 quit=1 commands=5"),
    ("postfix/smtpd", True, "{qid}: client={host}[{ip}]"),
    ("postfix/cleanup", True, "{qid}: message-id=<{qid}@{host}>"),
    ("postfix/qmgr", True, "{qid}: from=<{user}@{host}>, size={n}, nrcpt=1 "
                           "(queue active)"),
    ("postfix/smtp", True, "{qid}: to=<{user}@example.org>, relay={host}[{ip}]"
                           ":25, delay=0.{n}, delays=0.01/0/0.02/0.03, dsn=2.0.0,"
                           " status=sent (250 2.0.0 Ok: queued as {qid})"),
    ("postfix/qmgr", True, "{qid}: removed"),
    ("postfix/smtpd", False, "warning: hostname {host} does not resolve to "
                             "address {ip}: Name or service not known"),
    ("systemd", True, "Started Session {n} of User {user}."),
    ("systemd", True, "Starting Daily apt upgrade and clean activities..."),
    ("systemd", True, "Finished Daily apt upgrade and clean activities."),
    ("systemd", True, "{unit}.service: Succeeded."),
    ("systemd", True, "{unit}.service: Deactivated successfully."),
    ("systemd", True, "Created slice User Slice of UID {uid}."),
    ("systemd", False, "{unit}.service: Main process exited, code=exited, "
                       "status=1/FAILURE"),
    ("systemd", False, "{unit}.service: Failed with result 'exit-code'."),
    ("systemd-logind", True, "New session {n} of user {user}."),
    ("systemd-logind", True, "Session {n} logged out. Waiting for processes to "
                             "exit."),
    ("systemd-logind", True, "Removed session {n}."),
    ("kernel", False, "[{n}.{n}] EXT4-fs error (device sda1): ext4_find_entry:"
                      "1455: inode #{n}: comm find: reading directory lblock 0"),
    ("kernel", False, "[{n}.{n}] Out of memory: Killed process {n} (java)"),
    ("kernel", True, "[{n}.{n}] e1000e: eth0 NIC Link is Up 1000 Mbps Full "
                     "Duplex, Flow Control: None"),
    ("su", True, "(to root) {user} on pts/{n}"),
    ("su", True, "pam_unix(su:session): session opened for user root(uid=0) by "
                 "{user}(uid={uid})"),
    ("sudo", True, "{user} : TTY=pts/{n} ; PWD=/home/{user} ; USER=root ; "
                   "COMMAND=/usr/bin/apt update"),
    ("sudo", True, "pam_unix(sudo:session): session closed for user root"),
    ("dhclient", True, "DHCPREQUEST for {ip} on eth0 to {ip} port 67"),
    ("dhclient", True, "DHCPACK of {ip} from {ip}"),
    ("dhclient", True, "bound to {ip} -- renewal in {n} seconds."),
    ("ntpd", True, "Listen normally on {n} eth0 {ip}:123"),
    ("named", True, "client @0x7f{hex} {ip}#{port} ({host}): query (cache) "
                    "'{host}/A/IN' denied"),
    ("dovecot", True, "imap-login: Login: user=<{user}>, method=PLAIN, "
                      "rip={ip}, lip={ip}, mpid={n}, TLS, session=<{b64}>"),
    ("rsyslogd", True, "[origin software=\"rsyslogd\" swVersion=\"8.2302.0\" "
                       "x-pid=\"{n}\" x-info=\"https://www.rsyslog.com\"] rsyslogd "
                       "was HUPed"),
    ("anacron", True, "Job `cron.daily' terminated"),
    ("anacron", True, "Normal exit ({n} jobs run)"),
    ("smartd", True, "Device: /dev/sda [SAT], SMART Usage Attribute: 194 "
                     "Temperature_Celsius changed from {n} to {n}"),
    ("app", False, "ERROR: could not connect to database at {ip}:5432"),
    ("app", False, "user {user} logged in from {ip}"),
]

HOSTILE = [
    "Dec  6 10:00:03 web1 sshd[1]: Accepted publickey for r\\oot from "
    "1.2.3.4 port 1 ssh2",
    "Dec  6 10:00:03 web1 sshd[]: Accepted publickey for root from 1.2.3.4 "
    "port 22 ssh2",
    "Dec 06 10:00:03 web1 CRON[5]: (root) CMD (x)",
    "Dec  6 10:00:03  web1 CRON[5]: (root) CMD (x)",
    "Dec  6 10:00:03 web1 CRON[5]:  (root) CMD (x)",
    "Dec  6 10:00:03 web1 systemd[1]: Started Session 3 of User r\u00f6ot.",
    "Dec  6 10:00:03 web1 kernel: [ 1.0] " + "x" * 3000,
    "Dec  6 10:00:03 web1 sshd[9]: [[[[]]]] \\ \\\\ ^$ .* (( ))",
    "Dec  6 10:00:03 web1 su[9]: (to root) a b c on pts/1 extra",
    "",
    "not a syslog line at all",
]

USERS = ["root", "deploy", "alice", "bob", "www-data", "backup", "nagios",
         "x.y", "user_1"]
HOSTS = ["mail.example.org", "web1", "db-2.internal", "unknown", "a.b.c.d.e"]
UNITS = ["apt-daily", "logrotate", "man-db", "nginx", "postgresql@15-main",
         "systemd-tmpfiles-clean"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]


def fill(rnd, text):
    def ip():
        return "%d.%d.%d.%d" % tuple(rnd.randint(1, 254) for _ in range(4))
    values = {
        "user": rnd.choice(USERS), "ip": ip(), "port": rnd.randint(1, 65535),
        "uid": rnd.randint(0, 65534), "host": rnd.choice(HOSTS),
        "qid": "%X" % rnd.getrandbits(40), "n": rnd.randint(1, 99999),
        "unit": rnd.choice(UNITS), "hex": "%x" % rnd.getrandbits(40),
        "b64": "".join(rnd.choice("ABCDEFGHabcdefgh0123456789+/")
                       for _ in range(43)),
    }
    return text.format(**values)


class Clock:
    """A log's time: it only moves forward, a few seconds a line."""

    def __init__(self):
        self.t = 1796083200  # 2026-12-01T00:00:00Z

    def stamp(self, rnd):
        self.t += rnd.randint(0, 3)
        tm = time.gmtime(self.t)
        if rnd.random() < 0.8:
            return "%s %2d %02d:%02d:%02d" % (
                MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour, tm.tm_min,
                tm.tm_sec)
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06d+01:00" % (
            tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec, rnd.randint(0, 999999))


CLOCK = Clock()


def line(rnd):
    if rnd.random() < 0.02:
        return rnd.choice(HOSTILE)
    tag, _, text = rnd.choice(DAEMON_LINES)
    pid = "" if tag == "kernel" or rnd.random() < 0.05 else \
        "[%d]" % rnd.randint(1, 99999)
    msg = fill(rnd, text)
    if rnd.random() < 0.05:  # a variant: something appended
        msg += rnd.choice([" (extra)", " retry", ":", " \\"])
    return "%s %s %s%s: %s" % (CLOCK.stamp(rnd),
                               rnd.choice(["web1", "mx", "db-2"]),
                               tag, pid, msg)


def main():
    n, seed = int(sys.argv[1]), int(sys.argv[2])
    rnd = random.Random(seed)
    out = sys.stdout.buffer
    for _ in range(n):
        out.write(line(rnd).encode("utf-8") + b"\n")


if __name__ == "__main__":
    main()
