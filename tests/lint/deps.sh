#!/bin/sh
# Dependencies run one way.  Reads who calls whom from the compiled
# objects (each object's undefined symbols mapped to the object that
# defines them, nm) and holds the edges against the layer table below:
# an object may call into a lower layer, or into its own layer as long as
# that makes no cycle.  Edges still owed are listed in DEBT; an edge not
# allowed and not listed fails, and so does a listed edge that is gone
# (the list only shrinks).  Usage: deps.sh BUILD_DIR
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}

# layer rank per object, lowest first
LAYERS='
0 buf error host utf8 summary kind_table level timeutil tzif zone guard command
1 mime match rules
2 config
3 store_error store store_counts store_rules store_rejudge store_kinds store_newkinds store_positions store_runs store_batch store_query
4 spool sources handles spool_path formats ruleset rules_apply kinds_learn runs
5 policy
6 plan digest_rules digest_kinds digest_runs digest
7 compose
8 size
9 transport_util
10 transport_local transport_sendmail transport_maildir
10 smtp smtp_conn smtp_relay
11 transports
12 check flush
13 abi
'
# upward edges not yet untied: "caller callee"
DEBT='
'
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
for o in "$build"/src/*.o; do
	n=$(basename "$o" .o)
	nm -g --defined-only "$o" | awk -v n="$n" 'NF == 3 {print $3, n}'
done | sort >"$tmp/defs"
for o in "$build"/src/*.o; do
	n=$(basename "$o" .o)
	nm -u "$o" | awk -v n="$n" '{print $NF, n}'
done | sort >"$tmp/uses"
join "$tmp/uses" "$tmp/defs" | awk '$2 != $3 {print $2, $3}' | sort -u \
	>"$tmp/edges"
echo "$DEBT" | sed '/^$/d' | sort >"$tmp/debt"
bad=0
# every object has a layer
for o in "$build"/src/*.o; do
	n=$(basename "$o" .o)
	[ "$n" = testhooks ] && continue
	echo "$LAYERS" | grep -qw "$n" ||
		{ echo "deps: $n has no layer in tests/lint/deps.sh"; bad=1; }
done
# edges against the table
echo "$LAYERS" | awk 'NF {for (i = 2; i <= NF; i++) print $i, $1}' |
	sort >"$tmp/rank"
awk 'NR == FNR {rank[$1] = $2; next}
     ($1 in rank) && ($2 in rank) && rank[$2] > rank[$1] {print}' \
	"$tmp/rank" "$tmp/edges" | sort >"$tmp/up"
comm -23 "$tmp/up" "$tmp/debt" | sed 's/^\(.*\) \(.*\)$/deps: \1 calls up into \2/'
comm -23 "$tmp/up" "$tmp/debt" | grep -q . && bad=1
# no cycle among the edges that are not debt
comm -23 "$tmp/edges" "$tmp/debt" >"$tmp/fwd"
if ! tsort "$tmp/fwd" >/dev/null 2>"$tmp/loop"; then
	echo "deps: a cycle:" $(grep -v 'contains a loop' "$tmp/loop" |
				 sed 's/^tsort: //')
	bad=1
fi
# paid debt is struck off (and debt is only ever an upward call)
comm -13 "$tmp/up" "$tmp/debt" | sed 's/^/deps: not an upward call, strike from DEBT: /'
comm -13 "$tmp/up" "$tmp/debt" | grep -q . && bad=1
[ $bad = 0 ] && echo "deps: $(wc -l <"$tmp/edges") calls between \
$(ls "$build"/src/*.o | wc -l) objects run one way ($(wc -l <"$tmp/debt") \
upward ones still listed as debt)"
exit $bad
