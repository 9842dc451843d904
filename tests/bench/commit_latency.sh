#!/bin/sh
# The latency of sponge_log() (one committed record per call) while a
# flush of 1,000,000 records removes its batch, and while `purge --all`
# empties such a spool: p50 / p99 / max of the calls made meanwhile.
# Usage: tests/bench/commit_latency.sh [build dir] [records]
set -eu
BUILD=${1:-build}
N=${2:-1000000}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-lbench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

cc -O2 -Iinclude -o "$DIR/caplat" "$HERE/caplat.c" "$BUILD/liblogsponge.a" \
	$(pkg-config --libs sqlite3 jansson inih libesmtp-1.0 openssl zlib libhs) \
	-lpthread
"$PY" "$HERE/genlogs.py" "$N" "$DIR/lines.txt" "$DIR/lines.csv"
printf '[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\nmax_size = 4G\nfold = off\n' > "$DIR/conf"
export LOGSPONGE_CONFIG="$DIR/conf"
"$BUILD/logsponge" -s "$DIR/full.db" add -t app < "$DIR/lines.txt"
# the logger starts first and keeps logging past the end of the command
during() { # during NAME CMD...
	name=$1; shift
	cp "$DIR/full.db" "$DIR/s.db"
	rm -f "$DIR/s.db-wal" "$DIR/s.db-shm"
	"$DIR/caplat" "$DIR/s.db" 8000 500 > "$DIR/$name.lat" &   # ~5 s
	lat=$!
	sleep 0.3
	"$@" >/dev/null
	wait "$lat"
	printf '  %-26s %s\n' "$name:" "$(cat "$DIR/$name.lat")"
}
echo "sponge_log latency while $N records leave the spool"
for round in 1 2; do
	during "flush (round $round)" "$BUILD/logsponge" -s "$DIR/s.db" flush --force
	during "purge --all (round $round)" "$BUILD/logsponge" -s "$DIR/s.db" purge --all
done
