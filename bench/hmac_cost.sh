#!/bin/sh
# hmac_cost.sh - instructions (callgrind) per HMAC-SHA256 of the handshake's size through each
# of libcrypto's ways (bench/hmac_cost.c), and per whole handshake, host and agent side
# (common/mvm_auth.c): each mode run with N iterations and with none, the difference / N.
#
# Needs valgrind.  Usage: sh bench/hmac_cost.sh [N]   (default 1000; MICROVM_BUILD as usual)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
prog=${MICROVM_BUILD:-$top/build}/bench/hmac-cost
n=${1:-1000}
[ -x "$prog" ] || { echo "hmac_cost.sh: no $prog (build first)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "hmac_cost.sh: needs valgrind" >&2; exit 1; }
count() {
	# hmac-cost aborts when a libcrypto call fails or the MAC is wrong: no figure then
	out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$prog" "$1" "$2" 2>&1) ||
		{ echo "hmac_cost.sh: hmac-cost $1 $2 failed" >&2; exit 1; }
	printf '%s\n' "$out" | sed -n 's/.*Collected : *//p'
}
echo "| way | instructions |"
echo "|---|---:|"
for m in hmac q-mac new-ctx dup hmac-ctx-copy dup-reset reuse handshake; do
	a=$(count "$m" 0)
	b=$(count "$m" "$n")
	what="per MAC"
	[ "$m" = handshake ] && what="per handshake, both sides"
	echo "| $m ($what) | $(( (b - a) / n )) |"
done
