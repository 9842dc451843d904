#!/bin/sh
# `make valgrind`, second half: the end-to-end tests with every logsponge
# process under valgrind memcheck (with less data: LOGSPONGE_TEST_SCALE).
# Any memcheck error or definite/indirect leak fails the run.
set -eu
BUILD=$1
shift
VG="$*"
dir="$BUILD/vg"
rm -rf "$dir"
mkdir -p "$dir"
for b in logsponge logsponge-test; do
	cat > "$dir/$b" <<WRAP
#!/bin/sh
exec $VG --log-file=$dir/memcheck.%p.log $BUILD/$b "\$@"
WRAP
	chmod +x "$dir/$b"
done
status=0
LOGSPONGE_BIN="$dir/logsponge" LOGSPONGE_TEST_BIN="$dir/logsponge-test" \
LOGSPONGE_BUILD="$BUILD" \
LOGSPONGE_FAULTFS="$BUILD/faultfs.so" LOGSPONGE_TEST_SCALE=0.02 \
	/usr/bin/python3 -m unittest discover -s tests/e2e -p 'test_*.py' || status=$?
runs=$(ls "$dir"/memcheck.*.log 2>/dev/null | wc -l)
bad=$(find "$dir" -name 'memcheck.*.log' -size +0 | wc -l)
if [ "$bad" -ne 0 ]; then
	echo "valgrind: $bad of $runs logsponge processes reported errors:" >&2
	find "$dir" -name 'memcheck.*.log' -size +0 -exec head -30 {} \; >&2
	exit 1
fi
echo "valgrind: $runs logsponge processes, no memcheck error, no leak"
exit $status
