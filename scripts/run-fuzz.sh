#!/bin/sh
# run-fuzz.sh BUILD_DIR SECONDS - run every libFuzzer target in BUILD_DIR/fuzz for SECONDS each,
# starting from its seed corpus in fuzz/corpus/NAME (copied, so the tree is never written).
set -eu
build=$1
secs=$2
top=$(cd "$(dirname "$0")/.." && pwd)
n=0
fail=0
for t in "$build"/fuzz/fuzz-*; do
	[ -f "$t" ] && [ -x "$t" ] || continue	# skip meson's NAME.p object dirs
	name=$(basename "$t")
	work=$(mktemp -d)
	[ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$work/"
	echo "fuzz: $name for ${secs}s"
	art="$build/fuzz-artifacts/$name/"
	mkdir -p "$art"
	if "$t" -max_total_time="$secs" -print_final_stats=0 -artifact_prefix="$art" "$work" \
		>"$work.log" 2>&1; then
		n=$((n + 1))
	else
		fail=$((fail + 1))
		tail -n 40 "$work.log"
		echo "fuzz: $name failed; reproducer in $art"
	fi
	rm -rf "$work" "$work.log"
done
echo "fuzz: $n passed, $fail failed"
[ "$fail" -eq 0 ]
