#!/bin/sh
# fuzz-agent.sh [BUILD_FUZZ] [SECONDS] - the longer run of the guest agent's fuzz targets
# (make check runs each for ~20 s; this runs each for SECONDS, default 300).
#   CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false && ninja -C build-fuzz
#   sh bench/fuzz-agent.sh build-fuzz 300
set -eu
build=${1:-build-fuzz}
secs=${2:-300}
top=$(cd "$(dirname "$0")/.." && pwd)
fail=0
for name in fuzz-agent-request fuzz-agent-handshake fuzz-agent-mgmt fuzz-agent-auth; do
	t=$build/fuzz/$name
	[ -x "$t" ] || { echo "$t: not built" >&2; exit 1; }
	work=$(mktemp -d)
	cp -r "$top/fuzz/corpus/$name/." "$work/"
	echo "fuzz: $name for ${secs}s"
	if "$t" -max_total_time="$secs" -print_final_stats=1 "$work" >"$work.log" 2>&1; then
		grep -E "^stat::number_of_executed_units|^Done" "$work.log" || true
	else
		fail=$((fail + 1))
		tail -n 40 "$work.log"
	fi
	rm -rf "$work" "$work.log"
done
[ "$fail" -eq 0 ]
