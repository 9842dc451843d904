#!/bin/sh
# `make fuzz`: run every libFuzzer target for FUZZ_SECONDS, starting from
# the seed corpus in tests/fuzz/corpus (copied, so the repository stays as
# it is), and print the executions each ran without a crash.
set -eu
BUILD=$1
SECONDS_EACH=${2:-60}
TARGETS="clean detect formats config time encode smtp rules"
total=0
for t in $TARGETS; do
	work=$(mktemp -d /tmp/lsfuzz-corpus.XXXXXX)
	cp tests/fuzz/corpus/$t/* "$work"/ 2>/dev/null || true
	log="$BUILD/fuzz_$t.log"
	if ! "$BUILD/fuzz_$t" -max_total_time="$SECONDS_EACH" \
		-print_final_stats=1 -max_len=4096 "$work" >"$log" 2>&1; then
		echo "fuzz: fuzz_$t found a problem (see $log):" >&2
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" >&2 || tail "$log" >&2
		rm -rf "$work"
		exit 1
	fi
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	printf 'fuzz_%-8s %10s executions in %ss, no crash\n' "$t" "$n" "$SECONDS_EACH"
	total=$((total + n))
	rm -rf "$work"
	rm -f /tmp/lsfuzz.*.db /tmp/lsfuzz.*.db-wal /tmp/lsfuzz.*.db-shm
done
echo "fuzz: $total executions in all, no crash"
