#!/bin/sh
# A flush of N records (~100 bytes, fold off, no cap) over STARTTLS+AUTH
# to two servers: one offering SIZE 64 MiB and one SIZE 32 MiB (where the
# sure bound cannot tell whether the message fits and it is composed to
# measure).  Side by side, interleaved, median of ROUNDS: logsponge, the
# Python BufferingHandler+smtplib peer (shared/seeds/001), and the
# ceiling: smtplib sending the very message logsponge composed, prebuilt.
# Then logsponge's instruction count (callgrind) for each server.
# Usage: tests/bench/flush_sizes.sh [path/to/logsponge] [N] [ROUNDS]
set -eu
BIN=${1:-build/logsponge}
N=${2:-100000}
ROUNDS=${3:-5}
PY=/usr/bin/python3
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-sbench.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$DIR"' EXIT

"$PY" "$HERE/genlogs.py" "$N" "$DIR/lines.txt" "$DIR/lines.csv"
for s in 64 32; do
	mkdir "$DIR/sink$s"
	"$PY" "$HERE/sink.py" "$DIR/sink$s" $((s << 20)) &
	PIDS="$PIDS $!"
	i=0
	while [ ! -f "$DIR/sink$s/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
done
printf 's3cret pass\n' > "$DIR/pw"
chmod 600 "$DIR/pw"
conf() { # conf SIZE TRANSPORT
	cat <<CONF
[mail]
from = bench@localhost
to = sink@example.org
max_size = 4G
fold = off
transport = $2
[smtp]
host = localhost
port = $(cat "$DIR/sink$1/port")
ca_file = $DIR/sink$1/ca.pem
user = logger
password_file = $DIR/pw
CONF
}
head -n "$N" "$DIR/lines.txt" | LOGSPONGE_CONFIG=/dev/null "$BIN" -s "$DIR/a0.db" add -t bench
"$PY" "$HERE/flush_peer.py" prepare "$DIR/lines.txt" "$N" "$DIR/buffer0.pickle"
fresh() { cp "$DIR/a0.db" "$DIR/a.db"; rm -f "$DIR/a.db-wal" "$DIR/a.db-shm"; }
secs() { # secs NAME CMD...: append the wall seconds to DIR/NAME
	name=$1; shift
	a=$(date +%s%N)
	"$@" >/dev/null
	b=$(date +%s%N)
	echo "$a $b" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }' >> "$DIR/$name"
}
for s in 64 32; do
	conf $s smtp > "$DIR/conf$s"
	# the message logsponge sends this server, prebuilt for the ceiling
	conf $s stdout > "$DIR/confout"
	fresh
	LOGSPONGE_CONFIG="$DIR/confout" "$BIN" -s "$DIR/a.db" flush --force > "$DIR/msg$s"
done
for r in $(seq "$ROUNDS"); do
	for s in 64 32; do
		port=$(cat "$DIR/sink$s/port")
		fresh
		LOGSPONGE_CONFIG="$DIR/conf$s" secs ls$s "$BIN" -s "$DIR/a.db" flush --force
		left=$(sqlite3 "$DIR/a.db" "SELECT count(*) FROM records")
		[ "$left" = 0 ] || { echo "bench: $left records left" >&2; exit 1; }
		cp "$DIR/buffer0.pickle" "$DIR/buffer.pickle"
		secs peer$s "$PY" "$HERE/flush_peer.py" flush "$DIR/buffer.pickle" \
			localhost "$port" "$DIR/sink$s/ca.pem" logger "s3cret pass" \
			bench@localhost sink@example.org
		secs ceil$s "$PY" "$HERE/ceiling.py" "$DIR/msg$s" localhost "$port" \
			"$DIR/sink$s/ca.pem" logger "s3cret pass" bench@localhost \
			sink@example.org
	done
done
median() { sort -n "$DIR/$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
insns() { # instructions of one flush to server $1
	fresh
	LOGSPONGE_CONFIG="$DIR/conf$1" valgrind --tool=callgrind \
		--callgrind-out-file="$DIR/cg.$1" "$BIN" -s "$DIR/a.db" flush --force \
		>/dev/null 2>"$DIR/cg.$1.err"
	grep -o 'Collected : [0-9]*' "$DIR/cg.$1.err" | awk '{ print $3 }'
}
printf 'flush of %d records over STARTTLS+AUTH, median of %d interleaved rounds\n' "$N" "$ROUNDS"
printf '%-10s %9s %9s %9s %12s %12s %14s\n' server logsponge peer ceiling "peer/ls" "ls/ceiling" "instructions"
for s in 64 32; do
	l=$(median ls$s); p=$(median peer$s); c=$(median ceil$s)
	i=$(insns $s)
	awk -v s="$s" -v l="$l" -v p="$p" -v c="$c" -v i="$i" 'BEGIN {
		printf "SIZE %2dM  %8.3fs %8.3fs %8.3fs %11.2fx %11.2fx %13.0fM\n",
			s, l, p, c, p / l, l / c, i / 1e6 }'
done
