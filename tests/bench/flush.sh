#!/bin/sh
# Flush benchmark: N pending records (~100 bytes) sent as one message over
# STARTTLS+AUTH to a local sink that reads DATA in bulk, by logsponge and,
# in the same run, by the Python BufferingHandler+smtplib approach of
# shared/seeds/001.  Then logsponge's peak RSS at 10,000 and 1,000,000.
# Usage: tests/bench/flush.sh [path/to/logsponge] [N]
set -eu
BIN=${1:-build/logsponge}
N=${2:-100000}
PY=/usr/bin/python3
HERE=$(dirname "$0")
DIR=$(mktemp -d /tmp/logsponge-fbench.XXXXXX)
SINK=""
trap '[ -n "$SINK" ] && kill "$SINK" 2>/dev/null; rm -rf "$DIR"' EXIT

"$PY" "$HERE/genlogs.py" 1000000 "$DIR/lines.txt" "$DIR/lines.csv"
mkdir "$DIR/sink"
"$PY" "$HERE/sink.py" "$DIR/sink" &
SINK=$!
i=0
while [ ! -f "$DIR/sink/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(cat "$DIR/sink/port")
USER=logger
PASS="s3cret pass"
printf '%s\n' "$PASS" > "$DIR/pw"
chmod 600 "$DIR/pw"
cat > "$DIR/conf" <<CONF
[mail]
from = bench@localhost
to = sink@example.org
# one message with every record line, like the peer: no cap (the capped
# case is below) and no folding (timed separately below)
max_size = 4G
fold = off
[smtp]
host = localhost
port = $PORT
ca_file = $DIR/sink/ca.pem
user = $USER
password_file = $DIR/pw
CONF
export LOGSPONGE_CONFIG="$DIR/conf"

fill() { # fill SPOOL COUNT
	head -n "$2" "$DIR/lines.txt" | "$BIN" -s "$1" add -t bench
}
timed() { # timed NAME CMD...
	name=$1; shift
	/usr/bin/time -f '%e %M' -o "$DIR/$name.time" "$@"
}

# the same N records for both, prepared once and copied before each run;
# 3 runs each, alternating, median kept
fill "$DIR/a0.db" "$N"
"$PY" "$HERE/flush_peer.py" prepare "$DIR/lines.txt" "$N" "$DIR/buffer0.pickle"
for r in 1 2 3; do
	cp "$DIR/a0.db" "$DIR/a.db"
	rm -f "$DIR/a.db-wal" "$DIR/a.db-shm"
	cp "$DIR/buffer0.pickle" "$DIR/buffer.pickle"
	timed logsponge.$r "$BIN" -s "$DIR/a.db" flush --force
	left=$(sqlite3 "$DIR/a.db" "SELECT count(*) FROM records")
	[ "$left" = 0 ] || { echo "bench: $left records left after flush" >&2; exit 1; }
	timed peer.$r "$PY" "$HERE/flush_peer.py" flush "$DIR/buffer.pickle" \
		localhost "$PORT" "$DIR/sink/ca.pem" "$USER" "$PASS" \
		bench@localhost sink@example.org
done
for name in logsponge peer; do
	sort -n "$DIR/$name.1.time" "$DIR/$name.2.time" "$DIR/$name.3.time" |
		sed -n 2p > "$DIR/$name.time"
done

# the same 100,000 with repeats folded (fold = exact, the default)
sed 's/^fold = off$/fold = exact/' "$DIR/conf" > "$DIR/conf.fold"
cp "$DIR/a0.db" "$DIR/f.db"
rm -f "$DIR/f.db-wal" "$DIR/f.db-shm"
LOGSPONGE_CONFIG="$DIR/conf.fold" timed folded "$BIN" -s "$DIR/f.db" flush --force

fill "$DIR/s.db" 10000
timed small "$BIN" -s "$DIR/s.db" flush --force
fill "$DIR/l.db" 1000000
timed large "$BIN" -s "$DIR/l.db" flush --force

# 1,000,000 records with mail.max_size = 1M: flush until the spool is
# empty; count the messages, the slowest and the largest flush
sed 's/^max_size = 4G$/max_size = 1M/' "$DIR/conf" > "$DIR/conf.cap"
LOGSPONGE_CONFIG="$DIR/conf.cap" fill "$DIR/cap.db" 1000000
msgs=0; capmax=0; capsecs=0
while [ "$(sqlite3 "$DIR/cap.db" 'SELECT count(*) FROM records')" != 0 ]; do
	LOGSPONGE_CONFIG="$DIR/conf.cap" /usr/bin/time -f '%e %M' \
		-o "$DIR/cap.time" "$BIN" -s "$DIR/cap.db" flush --force
	read -r t m < "$DIR/cap.time"
	msgs=$((msgs + 1))
	[ "$m" -gt "$capmax" ] && capmax=$m
	capsecs=$(awk -v a="$capsecs" -v b="$t" 'BEGIN { print a + b }')
	[ "$msgs" -lt 500 ] || { echo "bench: the spool does not drain" >&2; exit 1; }
done

read -r ft fm < "$DIR/folded.time"
read -r lt lm < "$DIR/logsponge.time"
read -r pt pm < "$DIR/peer.time"
read -r st sm < "$DIR/small.time"
read -r bt bm < "$DIR/large.time"
awk -v ft="$ft" -v fm="$fm" -v msgs="$msgs" -v capsecs="$capsecs" -v capmax="$capmax" -v n="$N" -v lt="$lt" -v lm="$lm" -v pt="$pt" -v pm="$pm" -v st="$st" \
    -v sm="$sm" -v bt="$bt" -v bm="$bm" 'BEGIN {
	printf "flush of %d records (~100 bytes) over STARTTLS+AUTH to a bulk sink (median of 3)\n", n
	printf "  logsponge flush                  %6.2f s  peak RSS %6.1f MiB\n", lt, lm / 1024
	printf "  Python BufferingHandler+smtplib  %6.2f s  peak RSS %6.1f MiB\n", pt, pm / 1024
	printf "  ratio: logsponge %.1fx faster, %.1fx less memory\n", pt / lt, pm / lm
	printf "  logsponge flush, fold = exact      %6.2f s  peak RSS %6.1f MiB (one run)\n", ft, fm / 1024
	printf "logsponge flush peak RSS by batch size\n"
	printf "  10,000 records     %6.2f s  peak RSS %5.1f MiB\n", st, sm / 1024
	printf "  1,000,000 records  %6.2f s  peak RSS %5.1f MiB\n", bt, bm / 1024
	printf "1,000,000 records with mail.max_size = 1M (gzip attachments)\n"
	printf "  %d messages, %.2f s of flushing in all, peak RSS of any flush %.1f MiB\n", msgs, capsecs, capmax / 1024
}'
