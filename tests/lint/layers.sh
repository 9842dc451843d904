#!/bin/sh
# The library's layers, checked on the source (make check runs it):
#  - only the store (src/store*.c) calls sqlite3_*;
#  - the composer and the plan read records through a source, never SQL;
#  - the CLI sees the public header only;
#  - the shipped library names no test variable (those are in testhooks.c,
#    compiled into the test builds only).
# Exit 1 with one line per breach.
cd "$(dirname "$0")/../.." || exit 2
bad=0
for f in src/*.c; do
	case $f in src/store*.c) continue ;; esac
	if grep -n 'sqlite3_[a-z_]*(' "$f" >/dev/null; then
		grep -n 'sqlite3_[a-z_]*(' "$f" | sed "s|^|$f:|; s|$| (SQL outside the store)|"
		bad=1
	fi
	if grep -n '#include <sqlite3.h>' "$f" >/dev/null; then
		echo "$f: includes sqlite3.h outside the store"
		bad=1
	fi
done
for f in cli/*.c cli/*.h; do
	[ -e "$f" ] || continue
	if grep -n '#include "\(internal\|store\|flush\|transport\)\.h"' "$f"; then
		echo "$f: the CLI includes a private header"
		bad=1
	fi
done
for f in src/*.c; do
	[ "$f" = src/testhooks.c ] && continue
	if grep -n 'getenv("LOGSPONGE_TEST' "$f"; then
		echo "$f: the library reads a test variable"
		bad=1
	fi
done
[ $bad = 0 ] && echo "layers: SQL only in the store, CLI on the public header, no test variables in the library"
exit $bad
