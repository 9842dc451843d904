#!/bin/sh
# add with noise rules loaded against add without: N syslog lines
# (default 1,000,000, from tests/e2e/syslog_corpus.py) into a fresh spool,
# `add --format syslog`, Debian's logcheck rules (paranoid + server)
# loaded from their cached compiled database, side by side in one run,
# median of 3, interleaved.  The first, compiling run is reported apart.
# Every line must be accounted for: stored (counted or ignored) or
# dropped.
# Usage: tests/bench/rules_ingest.sh [path/to/logsponge] [N]
set -eu
BIN=${1:-build/logsponge}
N=${2:-1000000}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-ribench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
LC="/etc/logcheck/ignore.d.paranoid /etc/logcheck/ignore.d.server"
"$PY" "$HERE/../e2e/syslog_corpus.py" "$N" 3 > "$DIR/lines"
printf '[rules]\npath = %s/none\nlogcheck = %s\n' "$DIR" "$LC" > "$DIR/with"
printf '[rules]\npath = %s/none\n' "$DIR" > "$DIR/without"
export XDG_CACHE_HOME="$DIR/cache"
secs() { # secs NAME CONF: add the lines into a fresh spool, wall seconds
	rm -f "$DIR/spool.db" "$DIR/spool.db-wal" "$DIR/spool.db-shm"
	a=$(date +%s%N)
	"$BIN" -c "$DIR/$2" -s "$DIR/spool.db" add --format syslog -l info \
		< "$DIR/lines"
	b=$(date +%s%N)
	echo "$a $b" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }' >> "$DIR/t.$1"
}
secs first with
for r in 1 2 3; do
	secs without without
	secs with with
done
stored=$(sqlite3 "$DIR/spool.db" "SELECT count(*) FROM records")
ignored=$(sqlite3 "$DIR/spool.db" "SELECT count(*) FROM records WHERE level >= 8")
dropped=$(sqlite3 "$DIR/spool.db" "SELECT coalesce(sum(n), 0) FROM rule_dropped")
[ $((stored + dropped)) = "$N" ] || { echo "rules_ingest: $stored stored + $dropped dropped of $N" >&2; exit 1; }
med() { sort -n "$DIR/t.$1" | sed -n 2p; }
wo=$(med without); w=$(med with); f=$(cat "$DIR/t.first")
echo "add --format syslog of $N lines, median of 3:"
awk -v wo="$wo" -v w="$w" -v f="$f" -v i="$ignored" -v s="$stored" 'BEGIN {
	printf "  without rules:                        %7.3f s\n", wo
	printf "  with logcheck rules (cached):         %7.3f s  (%.2fx)\n", w, w / wo
	printf "  its first run (compiles the rules):   %7.3f s\n", f
	printf "  stored %d, of them ignored %d\n", s, i }'
