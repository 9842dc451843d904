#!/bin/sh
# The cost of a decision at any spool size: `status`, `flush` below its
# threshold and `list --level emerg --limit 20` (no such records) on a
# spool of 1,000 pending records and on one of N (default 10,000,000),
# median of 3 each, side by side in one run.  LEVEL=warning stores the
# records at warning: each is then of a kind no message carried, marked
# and counted as such.
# Usage: [LEVEL=...] tests/bench/scale.sh [path/to/logsponge] [N]
set -eu
BIN=${1:-build/logsponge}
N=${2:-10000000}
DIR=$(mktemp -d /tmp/logsponge-sbench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
printf '[policy]\nthreshold = 1000000000\n[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = null\n' > "$DIR/conf"
export LOGSPONGE_CONFIG="$DIR/conf"
for n in 1000 "$N"; do
	awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
		printf "request %08x GET /api/v1/items/%d took %dms status=200\n",
			i * 2654435761 % 4294967296, i % 999, i % 997 }' |
		"$BIN" -s "$DIR/s$n.db" add -t app -l "${LEVEL:-info}"
done
t() { # median wall seconds of 3 runs of: logsponge -s SPOOL ARGS...
	spool=$1; shift
	for r in 1 2 3; do
		a=$(date +%s%N)
		"$BIN" -s "$spool" "$@" >/dev/null
		b=$(date +%s%N)
		echo "$a $b" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }' > "$DIR/t$r"
	done
	cat "$DIR/t1" "$DIR/t2" "$DIR/t3" | sort -n | sed -n 2p
}
printf '%-30s %10s %10s  ratio\n' "pending records:" 1000 "$N"
for cmd in "status" "flush" "list --level emerg --limit 20"; do
	# shellcheck disable=SC2086
	a=$(t "$DIR/s1000.db" $cmd)
	# shellcheck disable=SC2086
	b=$(t "$DIR/s$N.db" $cmd)
	awk -v c="$cmd" -v a="$a" -v b="$b" 'BEGIN {
		printf "%-30s %8.4f s %8.4f s %6.1fx\n", c, a, b, (a > 0 ? b / a : 0) }'
done
ls -l "$DIR/s$N.db" | awk '{ printf "(spool of %.0f MiB)\n", $5 / 1048576 }'
