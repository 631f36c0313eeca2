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
# destinations (guest/agent/policy.c), so they cannot share its namespace.  Throughput: MiB/s
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
nt=mvmbench-t-$$
dst=10.77.0.2
tmp=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
	MICROVM_CONTROL=$tmp/ctl.sock "$build/src/cli/microvm" down >/dev/null 2>&1 || true
	for p in $(ip netns pids "$ns" 2>/dev/null) $(ip netns pids "$nt" 2>/dev/null); do
		kill "$p" 2>/dev/null || true
	done
	sleep 0.3
	ip netns del "$ns" 2>/dev/null || true
	ip netns del "$nt" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "socks.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$AGENT" ] || { echo "socks.sh: no agent at $AGENT (build first)" >&2; exit 1; }

ip netns add "$ns"
ip netns add "$nt"
ip -n "$ns" link set lo up
ip -n "$nt" link set lo up
ip -n "$ns" link add veth0 type veth peer name veth1 netns "$nt"
ip -n "$ns" addr add 10.77.0.1/24 dev veth0
ip -n "$nt" addr add "$dst/24" dev veth1
ip -n "$ns" link set veth0 up
ip -n "$nt" link set veth1 up
inns() { ip netns exec "$ns" "$@"; }
innt() { ip netns exec "$nt" "$@"; }
waitport() { # waitport NS PORT
	i=0
	until ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q .; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "socks.sh: port $2 not up" >&2; exit 1; }
		sleep 0.1
	done
}

# the agent on TCP needs a secret (mode 0600); `up` proves it on every connection
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/secret")
inns "$AGENT" --transport tcp --listen 127.0.0.1 --state-dir "$tmp/state" \
	--run-dir "$tmp/run" --auth-secret-file "$tmp/secret" >"$tmp/agent.log" 2>&1 &
innt $bench serve-source 9000 --mib "$MIB" --bind "$dst" >/dev/null &
innt $bench serve-echo 9001 --bind "$dst" >/dev/null &
inns microsocks -i 127.0.0.1 -p 1081 >/dev/null 2>&1 &
waitport "$ns" 7602; waitport "$nt" 9000; waitport "$nt" 9001; waitport "$ns" 1081
MICROVM_CONTROL=$tmp/ctl.sock "$build/src/cli/microvm" up --agent-netns "/run/netns/$ns" \
	--agent-secret-file "$tmp/secret" --socks "127.0.0.1:$port" --detach >/dev/null

tput() { $bench throughput "$dst" 9000 --mib "$MIB" --runs "$RUNS" "$@"; }
lat() { $bench latency "$dst" 9001 --count "$COUNT" "$@"; }

d_t=$(inns $bench throughput "$dst" 9000 --mib "$MIB" --runs "$RUNS")
m_t=$(inns $bench throughput "$dst" 9000 --mib "$MIB" --runs "$RUNS" --socks 127.0.0.1:1081)
v_t=$(tput --socks "127.0.0.1:$port")
d_l=$(inns $bench latency "$dst" 9001 --count "$COUNT")
m_l=$(inns $bench latency "$dst" 9001 --count "$COUNT" --socks 127.0.0.1:1081)
v_l=$(lat --socks "127.0.0.1:$port")

ratio() { $py -c "print(f'{$1/$2:.2f}')"; }
echo "| path | throughput MiB/s | vs direct | setup latency us | vs direct |"
echo "|---|---:|---:|---:|---:|"
echo "| direct | $d_t | 1.00 | $d_l | 1.00 |"
echo "| microsocks (one hop) | $m_t | $(ratio "$m_t" "$d_t") | $m_l | $(ratio "$m_l" "$d_l") |"
echo "| microvm SOCKS5 + agent proxy | $v_t | $(ratio "$v_t" "$d_t") | $v_l | $(ratio "$v_l" "$d_l") |"
