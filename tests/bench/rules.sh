#!/bin/sh
# Noise rules at logcheck's job: Debian's logcheck rules (ignore.d.paranoid
# + ignore.d.server) over N syslog lines (default 200,000, from
# tests/e2e/syslog_corpus.py), side by side in one run, median of 3,
# interleaved: logcheck's own way (one `grep -E -v -f` per cleaned rule
# file, in the machine's locale and with LC_ALL=C) against `logsponge
# rules test` with the compiled rules cached, and its first, compiling
# run reported apart.  The lines each leaves unmatched must agree.
# Usage: tests/bench/rules.sh [path/to/logsponge] [N]
set -eu
BIN=${1:-build/logsponge}
N=${2:-200000}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-rbench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
LC="/etc/logcheck/ignore.d.paranoid /etc/logcheck/ignore.d.server"
"$PY" "$HERE/../e2e/syslog_corpus.py" "$N" 3 > "$DIR/lines"
mkdir "$DIR/clean"
for d in $LC; do
	for f in $(run-parts --list "$d"); do
		grep -E --text -v '^[[:space:]]*$|^#' "$f" >> "$DIR/clean/$(basename "$f")" || true
	done
done
printf '[rules]\npath = %s/none\nlogcheck = %s\n' "$DIR" "$LC" > "$DIR/conf"
export XDG_CACHE_HOME="$DIR/cache"
grep_way() { # the lines logcheck keeps, into $DIR/kept
	cp "$DIR/lines" "$DIR/kept"
	for f in "$DIR"/clean/*; do
		grep -E --text -v -f "$f" "$DIR/kept" > "$DIR/kept.1" || true
		mv "$DIR/kept.1" "$DIR/kept"
	done
}
secs() { # secs NAME CMD...: append the wall seconds to DIR/t.NAME
	name=$1; shift
	a=$(date +%s%N)
	"$@" > /dev/null
	b=$(date +%s%N)
	echo "$a $b" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }' >> "$DIR/t.$name"
}
lsp() { "$BIN" -c "$DIR/conf" rules test --format syslog "$DIR/lines"; }
secs first lsp
for r in 1 2 3; do
	secs grep grep_way
	( export LC_ALL=C; secs grepc grep_way )
	secs logsponge lsp
done
med() { sort -n "$DIR/t.$1" | sed -n 2p; }
kept=$(wc -l < "$DIR/kept")
ours=$("$BIN" -c "$DIR/conf" rules test --format syslog "$DIR/lines" | sed -n 's/.*no rule \([0-9]*\)$/\1/p')
[ "$kept" = "$ours" ] || { echo "rules: grep keeps $kept lines, rules test $ours" >&2; exit 1; }
g=$(med grep); gc=$(med grepc); l=$(med logsponge); f=$(cat "$DIR/t.first")
echo "logcheck's rules (paranoid + server) over $N syslog lines, median of 3:"
awk -v g="$g" -v gc="$gc" -v l="$l" -v f="$f" -v k="$kept" 'BEGIN {
	printf "  grep -E -v -f per rule file:        %7.3f s\n", g
	printf "  the same, LC_ALL=C:                 %7.3f s\n", gc
	printf "  logsponge rules test (cached):      %7.3f s  (%.1fx, %.1fx with C)\n", l, g / l, gc / l
	printf "  its first run (compiles the rules): %7.3f s\n", f
	printf "  lines no rule matched: %d, the same for both\n", k }'
