#!/bin/sh
# socks.sh - throughput and connection-setup latency of the SOCKS5 path, side by side:
#
#   direct      client -> target                                  (all inside one netns)
#   microsocks  client -> microsocks -> target                    (all inside the netns)
#   microvm     client (host) -> microvm SOCKS5 (host, 127.0.0.1) -> agent proxy port 7602
#               (microvm-agent inside the netns, the VM's place) -> target (inside the netns)
#
# The netns stands in for the guest: targets listen on its loopback only.  Throughput: MiB/s
# receiving $MIB MiB (median of $RUNS); latency: median microseconds of connect + SOCKS
# CONNECT + 1-byte echo over $COUNT sequential connections (client: bench/socks_bench.py).
# Needs root.  Usage: sh bench/socks.sh   (MIB=512 RUNS=5 COUNT=500 by default)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MICROVM_BUILD:-$top/build}
py=/usr/bin/python3
bench="$py $top/bench/socks_bench.py"
MIB=${MIB:-512}
RUNS=${RUNS:-5}
COUNT=${COUNT:-500}
AGENT=${AGENT:-$build/guest/agent/microvm-agent}
ns=mvmbench-$$
tmp=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
	MICROVM_CONTROL=$tmp/ctl.sock "$build/src/cli/microvm" down >/dev/null 2>&1 || true
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "socks.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$AGENT" ] || { echo "socks.sh: no agent at $AGENT (build first)" >&2; exit 1; }

ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }
waitport() {
	i=0
	until inns ss -Hltn "sport = :$1" | grep -q .; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "socks.sh: port $1 not up" >&2; exit 1; }
		sleep 0.1
	done
}

# the agent on TCP needs a secret (mode 0600); `up` proves it on every connection
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/secret")
inns "$AGENT" --transport tcp --listen 127.0.0.1 --state-dir "$tmp/state" \
	--run-dir "$tmp/run" --auth-secret-file "$tmp/secret" >"$tmp/agent.log" 2>&1 &
inns $bench serve-source 9000 --mib "$MIB" >/dev/null &
inns $bench serve-echo 9001 >/dev/null &
inns microsocks -i 127.0.0.1 -p 1081 >/dev/null 2>&1 &
waitport 7602; waitport 9000; waitport 9001; waitport 1081
MICROVM_CONTROL=$tmp/ctl.sock "$build/src/cli/microvm" up --agent-netns "/run/netns/$ns" \
	--agent-secret-file "$tmp/secret" --socks "127.0.0.1:$port" --detach >/dev/null

tput() { $bench throughput 127.0.0.1 9000 --mib "$MIB" --runs "$RUNS" "$@"; }
lat() { $bench latency 127.0.0.1 9001 --count "$COUNT" "$@"; }

d_t=$(inns $bench throughput 127.0.0.1 9000 --mib "$MIB" --runs "$RUNS")
m_t=$(inns $bench throughput 127.0.0.1 9000 --mib "$MIB" --runs "$RUNS" --socks 127.0.0.1:1081)
v_t=$(tput --socks "127.0.0.1:$port")
d_l=$(inns $bench latency 127.0.0.1 9001 --count "$COUNT")
m_l=$(inns $bench latency 127.0.0.1 9001 --count "$COUNT" --socks 127.0.0.1:1081)
v_l=$(lat --socks "127.0.0.1:$port")

ratio() { $py -c "print(f'{$1/$2:.2f}')"; }
echo "| path | throughput MiB/s | vs direct | setup latency us | vs direct |"
echo "|---|---:|---:|---:|---:|"
echo "| direct | $d_t | 1.00 | $d_l | 1.00 |"
echo "| microsocks (one hop) | $m_t | $(ratio "$m_t" "$d_t") | $m_l | $(ratio "$m_l" "$d_l") |"
echo "| microvm SOCKS5 + agent proxy | $v_t | $(ratio "$v_t" "$d_t") | $v_l | $(ratio "$v_l" "$d_l") |"
