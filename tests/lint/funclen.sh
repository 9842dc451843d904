#!/bin/sh
# No function of the library or the CLI is longer than a screen: 80 lines
# between its opening line and its closing brace (make check runs it).
# A function starts at a line that begins with a letter and holds '(' but
# does not end with ';', and ends at the next line that is just '}'.
# Exit 1 with one line per function over.
cd "$(dirname "$0")/../.." || exit 2
MAX=80
out=$(for f in src/*.c cli/*.c; do
	awk -v F="$f" -v max="$MAX" '
		/^[A-Za-z].*\(/ && !/;[ \t]*$/ { name = $0; start = NR }
		/^}/ { if (start && NR - start - 1 > max)
			printf "%s:%d: %d lines: %s\n", F, start, NR - start - 1, name
			start = 0 }' "$f"
done)
if [ -n "$out" ]; then
	echo "$out"
	echo "funclen: functions over $MAX lines"
	exit 1
fi
echo "funclen: no function in src/ or cli/ over $MAX lines"
