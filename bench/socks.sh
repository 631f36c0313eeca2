#!/bin/sh
# socks.sh - throughput and connection-setup latency of the SOCKS5 path, side by side:
#
#   direct      client -> target                       (client in the guest netns)
#   microsocks  client -> microsocks -> target         (client and microsocks in the guest netns)
#   microvm     client (host) -> microvm SOCKS5 (host, 127.0.0.1) -> agent proxy port 7602
#               (microvm-agent inside the guest netns, the VM's place) -> target
#
# One netns stands in for the guest; the targets listen in a second one ("the internet"),
# on 10.77.0.2 behind a veth pair: the agent refuses its own addresses and loopback as
# destinations (guest/agent/policy.c), so they cannot share its namespace.  $RUNS rounds, each
# measuring every path once: throughput, MiB/s receiving $MIB MiB; latency, the median
# microseconds of connect + SOCKS CONNECT + 1-byte echo over $COUNT sequential connections
# (client: bench/socks_bench.py).  Printed: the median of the rounds for each path.
#
# Other builds of `microvm up` (an A/B against an older commit) run in the same run, each with
# its own `up` on its own port in front of the same agent: name them LABEL=BUILD_DIR.  The
# agent is the first build's (AGENT= to choose).
# Needs root.  Usage: sh bench/socks.sh [LABEL=BUILD_DIR ...]
#   (MIB=512 RUNS=5 COUNT=500 by default; no argument: microvm=build)
#   e.g. sh bench/socks.sh new=build old=../socks-old/build
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MICROVM_BUILD:-$top/build}
[ $# -gt 0 ] || set -- "microvm=$build"
build=${1#*=}
py=/usr/bin/python3
bench="$py $top/bench/socks_bench.py"
MIB=${MIB:-512}
RUNS=${RUNS:-5}
COUNT=${COUNT:-500}
AGENT=${AGENT:-$build/guest/agent/microvm-agent}
ns=mvmbench-$$
nt=mvmbench-t-$$
dst=10.77.0.2
tmp=$(mktemp -d)
. "$top/bench/socks_places.sh"

cleanup() {
	for b in "$@"; do
		MICROVM_CONTROL=$tmp/ctl.${b%%=*}.sock "${b#*=}/src/cli/microvm" down >/dev/null 2>&1 || true
	done
	places_down
}
trap 'cleanup "$@"' EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "socks.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$AGENT" ] || { echo "socks.sh: no agent at $AGENT (build first)" >&2; exit 1; }
for b in "$@"; do
	[ -x "${b#*=}/src/cli/microvm" ] || { echo "socks.sh: no ${b#*=}/src/cli/microvm" >&2; exit 1; }
done

places_up
inns() { ip netns exec "$ns" "$@"; }
innt() { ip netns exec "$nt" "$@"; }

# the agent on TCP needs a secret (mode 0600); `up` proves it on every connection
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/secret")
inns "$AGENT" --transport tcp --listen 127.0.0.1 --state-dir "$tmp/state" \
	--run-dir "$tmp/run" --auth-secret-file "$tmp/secret" >"$tmp/agent.log" 2>&1 &
innt $bench serve-source 9000 --mib "$MIB" --bind "$dst" >/dev/null &
innt $bench serve-echo 9001 --bind "$dst" >/dev/null &
inns microsocks -i 127.0.0.1 -p 1081 >/dev/null 2>&1 &
waitport "$ns" 7602; waitport "$nt" 9000; waitport "$nt" 9001; waitport "$ns" 1081
for b in "$@"; do
	port=$(freeport)
	echo "$port" >"$tmp/port.${b%%=*}"
	MICROVM_CONTROL=$tmp/ctl.${b%%=*}.sock "${b#*=}/src/cli/microvm" up \
		--agent-netns "/run/netns/$ns" --agent-secret-file "$tmp/secret" \
		--socks "127.0.0.1:$port" --detach >/dev/null
done

# RUNS rounds; each measures every path once (one transfer, COUNT latency connections), so
# that a change of the machine's load hits all paths alike; the figures are medians of rounds
ratio() { $py -c "print(f'{$1/$2:.2f}')"; }
median() { $py -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.stdin):.1f}")' <"$1"; }
measure() { # measure NAME NETNS-OR-- [--socks ADDR]
	name=$1; where=$2; shift 2
	if [ "$where" = - ]; then run=""; else run="ip netns exec $where"; fi
	$run $bench throughput "$dst" 9000 --mib "$MIB" --runs 1 "$@" >>"$tmp/t.$name"
	$run $bench latency "$dst" 9001 --count "$COUNT" "$@" >>"$tmp/l.$name"
}
r=0
while [ $r -lt "$RUNS" ]; do
	measure direct "$ns"
	measure microsocks "$ns" --socks 127.0.0.1:1081
	for b in "$@"; do
		measure "vm.${b%%=*}" - --socks "127.0.0.1:$(cat "$tmp/port.${b%%=*}")"
	done
	r=$((r + 1))
done
d_t=$(median "$tmp/t.direct"); d_l=$(median "$tmp/l.direct")
m_t=$(median "$tmp/t.microsocks"); m_l=$(median "$tmp/l.microsocks")

echo "| path | throughput MiB/s | vs direct | setup latency us | vs direct |"
echo "|---|---:|---:|---:|---:|"
echo "| direct | $d_t | 1.00 | $d_l | 1.00 |"
echo "| microsocks (one hop) | $m_t | $(ratio "$m_t" "$d_t") | $m_l | $(ratio "$m_l" "$d_l") |"
for b in "$@"; do
	l=${b%%=*}
	v_t=$(median "$tmp/t.vm.$l")
	v_l=$(median "$tmp/l.vm.$l")
	name="microvm SOCKS5 + agent proxy"
	[ $# -eq 1 ] || name="$name ($l)"
	echo "| $name | $v_t | $(ratio "$v_t" "$d_t") | $v_l | $(ratio "$v_l" "$d_l") |"
done
# an A/B: every round's figures too, to pair them (the same round shared the same load)
if [ $# -gt 1 ]; then
	for b in "$@"; do
		l=${b%%=*}
		echo "$l per round: MiB/s $(tr '\n' ' ' <"$tmp/t.vm.$l")- latency us $(tr '\n' ' ' <"$tmp/l.vm.$l")"
	done
fi
