#!/bin/sh
# A capped flush costs what it sends, not what waits: one flush with
# mail.max_size = 1M (a gzip attachment; the rest stays pending), each
# from a fresh copy of its spool, median of 5 interleaved rounds, and the
# instruction counts (callgrind) of one flush of each.  Two arrangements:
#  - mixed levels (tests/bench/genlogs.py): 10,000 pending against N
#    (default 1,000,000); the batch of the large spool is its most severe
#    records, spread over the whole spool;
#  - one level: 100,000 pending against N; both send the oldest records
#    that fit.
# Usage: tests/bench/capped.sh [path/to/logsponge] [N]
set -eu
BIN=${1:-build/logsponge}
N=${2:-1000000}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-capbench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
printf '[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\nmax_size = 1M\n' > "$DIR/conf"
export LOGSPONGE_CONFIG="$DIR/conf"
"$PY" "$HERE/genlogs.py" "$N" "$DIR/lines.txt" "$DIR/lines.csv"
head -n 10000 "$DIR/lines.txt" | "$BIN" -s "$DIR/m-small.db" add -t app --detect-level
"$BIN" -s "$DIR/m-large.db" add -t app --detect-level < "$DIR/lines.txt"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++)
	printf "request %08x GET /api/v1/items/%d took %dms status=200\n",
		i * 2654435761 % 4294967296, i % 999, i % 997 }' > "$DIR/lines.txt"
head -n 100000 "$DIR/lines.txt" | "$BIN" -s "$DIR/u-small.db" add -t app
"$BIN" -s "$DIR/u-large.db" add -t app < "$DIR/lines.txt"
rm -f "$DIR/lines.txt" "$DIR/lines.csv"
fresh() { cp "$DIR/$1.db" "$DIR/run.db"; }
clean() { rm -f "$DIR/run.db" "$DIR/run.db-wal" "$DIR/run.db-shm" "$DIR/run.db.lock"; }
flush() { # wall seconds of one flush of a fresh copy of spool $1, records sent
	fresh "$1"
	a=$(date +%s%N)
	"$BIN" -s "$DIR/run.db" flush >/dev/null
	b=$(date +%s%N)
	sent=$("$BIN" -s "$DIR/run.db" history --json | grep -o '"records": *[0-9]*' | head -1 | grep -o '[0-9]*$')
	clean
	echo "$a $b $sent" | awk '{ printf "%.4f %s\n", ($2 - $1) / 1e9, $3 }'
}
for r in 1 2 3 4 5; do
	for s in m-small m-large u-small u-large; do
		flush "$s" >> "$DIR/t.$s"
	done
done
cg() { # instructions of one flush of spool $1, in millions
	fresh "$1"
	valgrind --tool=callgrind --callgrind-out-file="$DIR/cg" \
		"$BIN" -s "$DIR/run.db" flush >/dev/null 2>"$DIR/vg"
	clean
	grep -o 'totals: [0-9]*' "$DIR/cg" | awk '{ printf "%.0f", $2 / 1e6 }'
}
report() { # title small-spool large-spool small-n
	a=$(sort -n "$DIR/t.$2" | sed -n 3p); b=$(sort -n "$DIR/t.$3" | sed -n 3p)
	ia=-; ib=-
	if command -v valgrind >/dev/null 2>&1; then ia=$(cg "$2"); ib=$(cg "$3"); fi
	echo "$1"
	echo "$a" | awk -v n="$4" -v i="$ia" '{ printf "  %9s pending: %.3f s, %s M instructions, %s records sent\n", n, $1, i, $2 }'
	echo "$b" | awk -v n="$N" -v i="$ib" '{ printf "  %9s pending: %.3f s, %s M instructions, %s records sent\n", n, $1, i, $2 }'
	echo "$a $b" | awk -v ia="$ia" -v ib="$ib" '{ printf "  ratio: %.2fx wall, %.2fx instructions; per record sent %.2fx\n",
		$3 / $1, (ia > 0 ? ib / ia : 0), ($3 / $4) / ($1 / $2) }'
}
echo "capped flush (max_size = 1M), median of 5, interleaved"
report "mixed levels:" m-small m-large 10000
report "one level:" u-small u-large 100000
