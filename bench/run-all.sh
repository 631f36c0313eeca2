#!/bin/sh
# run-all.sh - every benchmark, one after the other (`make bench`).  Each prints its own table;
# copy the figures into docs/performance.md with the command that produced them.  Needs root
# (namespaces) and /dev/kvm (boot, vsock).  Not part of `make check`: figures come from here,
# never from timed tests.
set -eu
cd "$(dirname "$0")/.."
build=${MICROVM_BUILD:-build}
for b in boot vsock socks socks_count hmac_cost nsbox; do
	echo "=== bench/$b.sh"
	case $b in
	vsock) sh bench/vsock.sh "$build" ;;
	*) sh bench/$b.sh ;;
	esac
done
echo "=== bench/fuzz-agent.sh (longer fuzz run of the agent's parsers)"
sh bench/fuzz-agent.sh build-fuzz "${FUZZ_SECONDS:-300}"
