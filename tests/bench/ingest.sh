#!/bin/sh
# Ingest benchmark: `logsponge add` against sqlite3's own `.import` of the
# same 1,000,000 lines (as CSV into an equivalent table), in one run.
# Prints lines/s for both, the ratio, and the peak RSS of `add`.  With
# BASELINE=path/to/an/older/logsponge, that build's `add` runs in the same
# rounds too, and the ratio of the two is printed (tools/build-ref.sh
# builds a git commit into a directory for this).
# Usage: [BASELINE=...] tests/bench/ingest.sh [path/to/logsponge] [lines]
set -eu
BIN=${1:-build/logsponge}
N=${2:-1000000}
PY=${PYTHON:-/usr/bin/python3}
DIR=$(mktemp -d /tmp/logsponge-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
HERE=$(dirname "$0")

"$PY" "$HERE/genlogs.py" "$N" "$DIR/lines.txt" "$DIR/lines.csv"
BYTES=$(wc -c < "$DIR/lines.txt")

# run NAME CMD... : runs CMD 3 times (fresh output each time) and keeps
# the median "seconds peak_kb" in $DIR/NAME.time.  Runs alternate between
# the contenders so that background writeback hits them alike.
one() { # one NAME ROUND CMD...
	name=$1; round=$2; shift 2
	rm -f "$DIR/$name.db" "$DIR/$name.db-wal" "$DIR/$name.db-shm"
	sync
	/usr/bin/time -f '%e %M' -o "$DIR/$name.$round" "$@"
}
median() { sort -n "$DIR/$1".[123] | sed -n 2p > "$DIR/$1.time"; }

IMPORT_SQL="CREATE TABLE records(time INTEGER NOT NULL, level INTEGER NOT NULL, tag TEXT NOT NULL, host TEXT NOT NULL, message TEXT NOT NULL);"
BASELINE=${BASELINE:-}
for r in 1 2 3; do
	if [ -n "$BASELINE" ]; then
		one base $r sh -c "LOGSPONGE_CONFIG=/dev/null '$BASELINE' -s '$DIR/base.db' add -t bench < '$DIR/lines.txt'"
		one basedetect $r sh -c "LOGSPONGE_CONFIG=/dev/null '$BASELINE' -s '$DIR/basedetect.db' add -t bench --detect-level < '$DIR/lines.txt'"
	fi
	# (a) logsponge add: batched commits in WAL mode (synchronous=NORMAL
	# for the batches, FULL for the last commit before it exits)
	one add $r sh -c "LOGSPONGE_CONFIG=/dev/null '$BIN' -s '$DIR/add.db' add -t bench < '$DIR/lines.txt'"
	# (a') the same with --detect-level
	one detect $r sh -c "LOGSPONGE_CONFIG=/dev/null '$BIN' -s '$DIR/detect.db' add -t bench --detect-level < '$DIR/lines.txt'"
	# (b) sqlite3 .import of the same lines as CSV into a table with the
	# same columns, WAL mode; it commits once at the end (fewer commits
	# than add makes)
	one import $r sqlite3 "$DIR/import.db" "PRAGMA journal_mode=WAL;" \
		"$IMPORT_SQL" ".mode csv" ".import '$DIR/lines.csv' records" >/dev/null
done
median add; median detect; median import
[ -z "$BASELINE" ] || { median base; median basedetect; }

got=$(sqlite3 "$DIR/add.db" "SELECT count(*) FROM records")
imp=$(sqlite3 "$DIR/import.db" "SELECT count(*) FROM records")
[ "$got" = "$N" ] || { echo "bench: add stored $got of $N records" >&2; exit 1; }
[ "$imp" = "$N" ] || { echo "bench: .import stored $imp of $N rows" >&2; exit 1; }

read -r at am < "$DIR/add.time"
read -r dt dm < "$DIR/detect.time"
read -r it im < "$DIR/import.time"
awk -v n="$N" -v b="$BYTES" -v at="$at" -v am="$am" -v dt="$dt" -v dm="$dm" \
    -v it="$it" -v im="$im" 'BEGIN {
	printf "median of 3 runs each\n"
	printf "ingest of %d lines (%.1f MB, avg %.0f bytes/line)\n", n, b / 1e6, b / n
	printf "  logsponge add                 %6.2f s  %9.0f lines/s  peak RSS %5.1f MiB\n", at, n / at, am / 1024
	printf "  logsponge add --detect-level  %6.2f s  %9.0f lines/s  peak RSS %5.1f MiB\n", dt, n / dt, dm / 1024
	printf "  sqlite3 .import (CSV)         %6.2f s  %9.0f lines/s  peak RSS %5.1f MiB\n", it, n / it, im / 1024
	printf "  ratio add / .import: %.2fx faster; add --detect-level / .import: %.2fx\n", it / at, it / dt
}'
if [ -n "$BASELINE" ]; then
	read -r bt bm < "$DIR/base.time"
	read -r bdt bdm < "$DIR/basedetect.time"
	awk -v at="$at" -v bt="$bt" -v bm="$bm" -v dt="$dt" -v bdt="$bdt" -v n="$N" 'BEGIN {
		printf "  baseline add (%s)         %6.2f s  %9.0f lines/s  peak RSS %5.1f MiB\n", "older", bt, n / bt, bm / 1024
		printf "  add / baseline: %.3f (%+.1f%% time)\n", at / bt, (at / bt - 1) * 100
		printf "  add --detect-level / baseline: %.3f (%+.1f%% time; its warnings and errors have their kinds looked up)\n", dt / bdt, (dt / bdt - 1) * 100
	}'
fi
