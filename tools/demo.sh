#!/bin/sh
# `make demo`: pipe sample logs (mixed levels, junk bytes) into a spool in
# a temporary directory, then show `status` and `list --level warning`.
set -e
BIN=${1:-build/logsponge}
DIR=$(mktemp -d /tmp/logsponge-demo.XXXXXX)
MTA=""
trap '[ -n "$MTA" ] && kill "$MTA" 2>/dev/null; rm -rf "$DIR"' EXIT
export LOGSPONGE_SPOOL="$DIR/state/spool.db"
export LOGSPONGE_CONFIG="$DIR/logsponge.conf"
: > "$LOGSPONGE_CONFIG"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "backup.sh 2>&1 | logsponge add -t backup --detect-level"
printf '%s\n' \
  "2026-11-21 02:00:01 INFO starting nightly backup of /srv" \
  "2026-11-21 02:00:02 INFO snapshot created: srv@nightly" \
  "2026-11-21 02:03:17 WARN /srv/cache changed while reading" \
  "rsync: [sender] read errors mapping \"/srv/db/pg.wal\": Input/output error (5)" \
  "ERROR: rsync exited with code 23 (partial transfer)" \
  '{"level":"notice","msg":"retention: 3 old snapshots removed"}' \
  "level=debug msg=\"cleanup done\" took=12ms" \
  "<2>backup: giving up after 3 attempts" |
  "$BIN" add -t backup --detect-level
say "printf 'junk: \\377\\376 NUL:\\000 ESC:\\033[31m red\\r\\n' | logsponge add -t junk -l warning"
printf 'junk: \377\376 NUL:\000 ESC:\033[31m red\r\n' | "$BIN" add -t junk -l warning
say "logsponge add -l err -t cron \"disk /var 97% full\""
"$BIN" add -l err -t cron "disk /var 97% full"
say "logsponge status"
"$BIN" status
say "logsponge list --level warning"
"$BIN" list --level warning
say "logsponge list --json --tag junk"
"$BIN" list --json --tag junk

# --- the flush: a local SMTP server with STARTTLS + AUTH, throw-away CA ---
mkdir "$DIR/mta"
/usr/bin/python3 "$(dirname "$0")/demo-mta.py" "$DIR/mta" &
MTA=$!
i=0
while [ ! -f "$DIR/mta/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cat > "$LOGSPONGE_CONFIG" <<CONF
[policy]
threshold = 3
count_level = warning
flush_level = crit

[mail]
from = logsponge demo <logsponge@localhost>
to = oncall@example.org

[smtp]
host = localhost
port = $(cat "$DIR/mta/port")
ca_file = $DIR/mta/ca.pem
user = $(cat "$DIR/mta/user")
password_file = $DIR/mta/password
timeout = 10s
CONF
say "cat \$LOGSPONGE_CONFIG   # a local aiosmtpd with STARTTLS+AUTH, a CA made just now"
cat "$LOGSPONGE_CONFIG"
say "logsponge check --smtp"
"$BIN" check --smtp
say "logsponge -v flush"
"$BIN" -v flush
say "logsponge history"
"$BIN" history
say "logsponge status"
"$BIN" status
sleep 0.3
say "the message the server received (decoded with Python's email package)"
/usr/bin/python3 - "$DIR/mta/received-1.eml" <<'PY'
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read(),
                             policy=email.policy.default)
for h in ("From", "To", "Subject", "Date", "Message-ID", "Content-Type",
          "Content-Transfer-Encoding", "Auto-Submitted"):
    print("%s: %s" % (h, m[h]))
print()
print(m.get_content().replace("\r\n", "\n"), end="")
PY
