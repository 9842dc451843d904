#!/bin/sh
# tail against add: the same N syslog file lines (default 1,000,000) read
# by `logsponge tail --from-start` (a [source] in the config) and piped
# into `logsponge add --format syslog`, fresh spools, interleaved, median
# of 3 each; then how long a second `tail` takes on the unchanged file
# (the position is checked, nothing is read again).  With BIG=1 the
# resume is timed on a file of about 1 GB as well.
# Usage: [BIG=1] tests/bench/tail.sh [path/to/logsponge] [N]
set -eu
BIN=${1:-build/logsponge}
N=${2:-1000000}
DIR=$(mktemp -d /tmp/logsponge-tbench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
gen() { # gen N FILE: classic syslog file lines
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
		printf "Dec  6 10:%02d:%02d web1 app[%d]: request %08x GET /api/v1/items/%d took %dms status=200\n",
			(i / 60) % 60, i % 60, 1000 + i % 97, i * 2654435761 % 4294967296, i % 999, i % 997 }' > "$2"
}
gen "$N" "$DIR/syslog"
printf '[source s]\npath = %s/syslog\nformat = syslog\n' "$DIR" > "$DIR/conf"
export LOGSPONGE_CONFIG="$DIR/conf"
secs() { # secs CMD...: wall seconds of one run
	a=$(date +%s%N); "$@"; b=$(date +%s%N)
	echo "$a $b" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }'
}
for r in 1 2 3; do
	rm -f "$DIR"/t.db* "$DIR"/a.db*
	secs "$BIN" -s "$DIR/t.db" tail --from-start >> "$DIR/tail.t"
	secs sh -c "'$BIN' -s '$DIR/a.db' add --format syslog < '$DIR/syslog'" >> "$DIR/add.t"
	secs "$BIN" -s "$DIR/t.db" tail >> "$DIR/resume.t"
done
med() { sort -n "$DIR/$1" | sed -n 2p; }
got=$(sqlite3 "$DIR/t.db" "SELECT count(*) FROM records")
[ "$got" = "$N" ] || { echo "bench: tail stored $got of $N" >&2; exit 1; }
t=$(med tail.t); a=$(med add.t); r=$(med resume.t)
printf 'syslog file of %d lines (%s bytes), median of 3\n' "$N" "$(wc -c < "$DIR/syslog")"
printf '  tail --from-start        %8.3f s\n' "$t"
printf '  add --format syslog      %8.3f s\n' "$a"
printf '  ratio tail / add: %.3f\n' "$(echo "$t $a" | awk '{ print $1 / $2 }')"
printf '  second tail, unchanged   %8.4f s\n' "$r"
if [ "${BIG:-}" = 1 ]; then
	rm -f "$DIR"/t.db* "$DIR"/a.db*
	for k in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do cat "$DIR/syslog"; done > "$DIR/big"
	mv "$DIR/big" "$DIR/syslog"
	"$BIN" -s "$DIR/t.db" tail            # a new source: at its end
	printf '  a file of %s bytes: second tail %.4f s\n' \
		"$(wc -c < "$DIR/syslog")" "$(secs "$BIN" -s "$DIR/t.db" tail)"
fi
