#!/bin/sh
# bench/vsock.sh [BUILD_DIR] - vsock throughput and request latency, side by side with TCP over
# loopback on the same machine.
#
# vsock: the freestanding test guest under KVM (tests/guest), driven through libmicrovm's
# vsock client by tests/guest/vsock-driver.  TCP: the same client (mvm_vsock_new_tcp) against
# an in-process TCP server on 127.0.0.1 that serves the same four ports.  Both sides verify
# every byte of the source stream, so both pay the same host-side checking cost.
#   host->guest: "sink"   (host writes BYTES, the guest counts them)
#   guest->host: "source" (the guest sends BYTES of a pattern, the host checks them)
#   latency:     mvm_vsock_request() of {"cmd":"ping"} (connect, request, response, close)
# Needs root and /dev/kvm.  Prints a table; figures go to docs/performance.md by hand.
set -eu
build=${1:-build}
drv=$build/tests/guest/vsock-driver
elf=$build/tests/guest/vsock-guest.elf
runs=${RUNS:-3}
bytes=${BYTES:-67108864}
reqs=${REQS:-1000}

[ -x "$drv" ] && [ -f "$elf" ] || { echo "build first (ninja -C $build)" >&2; exit 1; }

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run() {	# run WHAT -> lines "sink MB/s", "source MB/s", "p50", "p99"
	if [ "$1" = vsock ]; then set -- "$drv" "$elf"; else set -- "$drv" --tcp-loopback; fi
	"$@" "sink:$bytes" "source:$bytes" "latency:$reqs" 2>/dev/null
}

for what in vsock tcp; do
	: > "/tmp/bench-vsock-$what.txt"
	i=0
	while [ $i -lt "$runs" ]; do
		run $what >> "/tmp/bench-vsock-$what.txt"
		i=$((i + 1))
	done
done

fig() {	# fig WHAT KIND FIELD
	grep "^ok $2 " "/tmp/bench-vsock-$1.txt" | awk -v f="$3" '{ print $f }' | median
}

printf '%-24s %12s %12s %8s\n' "" "vsock (KVM)" "TCP loopback" "ratio"
for row in "host->guest MB/s:sink:8" "guest->host MB/s:source:8" "request p50 us:latency:6" \
	   "request p99 us:latency:9"; do
	name=${row%%:*}; rest=${row#*:}; kind=${rest%%:*}; field=${rest#*:}
	v=$(fig vsock "$kind" "$field"); t=$(fig tcp "$kind" "$field")
	printf '%-24s %12s %12s %8s\n' "$name" "$v" "$t" \
		"$(awk -v a="$v" -v b="$t" 'BEGIN { printf "%.2f", a / b }')"
done
echo "($runs runs each, medians; $bytes bytes per stream, $reqs requests; $(nproc) cores)"
rm -f /tmp/bench-vsock-vsock.txt /tmp/bench-vsock-tcp.txt
