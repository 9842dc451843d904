#!/bin/sh
# Build the logsponge of a git commit into DIR (for side-by-side
# benchmarks: BASELINE=DIR/build/logsponge tests/bench/ingest.sh).
# Usage: tools/build-ref.sh COMMIT DIR
set -eu
REF=$1
DIR=$2
rm -rf "$DIR"
mkdir -p "$DIR"
git archive "$REF" | tar -x -C "$DIR"
make -C "$DIR" -j2 all >/dev/null
echo "$DIR/build/logsponge"
