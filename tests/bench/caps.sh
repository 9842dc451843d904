#!/bin/sh
# Cap latency: sponge_log() (one committed record per call) on a spool of
# 1,000,000 realistic records, side by side in one run: with
# [spool] max_records = 1000000 reached (every call drops one record) and
# below the cap (max_records = 2000000).  Prints p50 / p99 / max.
# Usage: tests/bench/caps.sh [build dir] [calls]
set -eu
BUILD=${1:-build}
N=${2:-5000}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-cbench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

cc -O2 -Iinclude -o "$DIR/caplat" "$HERE/caplat.c" "$BUILD/liblogsponge.a" \
	$(pkg-config --libs sqlite3 jansson inih libesmtp-1.0 openssl zlib libhs) \
	-lpthread
"$PY" "$HERE/genlogs.py" 1000000 "$DIR/lines.txt" "$DIR/lines.csv"
printf '[spool]\nmax_records = 1000000\n' > "$DIR/at.conf"
printf '[spool]\nmax_records = 2000000\n' > "$DIR/below.conf"
for c in at below; do
	LOGSPONGE_CONFIG="$DIR/$c.conf" "$BUILD/logsponge" -s "$DIR/$c.db" \
		add -t app --detect-level < "$DIR/lines.txt"
done
echo "sponge_log latency, $N calls, spool of 1,000,000 records (mixed levels)"
for round in 1 2; do
	for c in at below; do
		printf '  %-28s' "$([ $c = at ] && echo "at max_records (drops 1):" || echo "below the cap:")"
		LOGSPONGE_CONFIG="$DIR/$c.conf" "$DIR/caplat" "$DIR/$c.db" "$N"
	done
done
n=$(sqlite3 "$DIR/at.db" "SELECT count(*) FROM records")
[ "$n" = 1000000 ] || { echo "caps: $n records at the cap, not 1000000" >&2; exit 1; }
