#!/bin/sh
# `make demo`: pipe sample logs (mixed levels, junk bytes) into a spool in
# a temporary directory, then show `status` and `list --level warning`.
set -e
BIN=${1:-build/logsponge}
DIR=$(mktemp -d /tmp/logsponge-demo.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export LOGSPONGE_SPOOL="$DIR/state/spool.db"
export LOGSPONGE_CONFIG=/dev/null

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
