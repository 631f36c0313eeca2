#!/bin/sh
# socks_count.sh - what one SOCKS5 connection costs, in counts the machine's load does not move:
# system calls (strace -c -f attached to the running process, all its threads) and user-space
# instructions (valgrind --tool=callgrind, its counters zeroed before the connections and
# dumped after them), per connection, for one or more builds of `microvm up` side by side,
# plus the same two counts for the agent's inbound proxy (each build's own agent).
#
# The places are those of socks.sh: a network namespace stands in for the guest (the agent
# serves port 7602 there over TCP with a secret), the 1-byte echo target
# listens in a second one on 10.77.0.2; `microvm up --agent-netns` serves SOCKS5 on the host's
# 127.0.0.1.  Each connection is the one socks.sh times: connect, SOCKS greeting, CONNECT,
# reply, one byte echoed, close (bench/socks_bench.py latency, sequential).  Per build:
#
#   0. its agent (AGENT= to use one for all builds) started in the guest's namespace;
#   1. `up --detach`, $WARM connections, strace attached to it and to the agent, $COUNT
#      connections, strace detached: calls per connection (total, and per system call);
#   2. the agent restarted under callgrind, `up` in the foreground under callgrind, $WARM
#      connections, both counters zeroed, $COUNT connections, both dumped: instructions per
#      connection (every thread, user space) of `up` and of the agent.
#
# What else the process does meanwhile (the manager's watchdog pings the agent every 2 s) is
# counted too; it is a few calls per second, well under 0.1 per connection here.  Under
# callgrind the threads run one at a time and no seccomp filter is installed (valgrind has no
# seccomp(): bench/nofilter.c, preloaded into `up` and the agent, makes libseccomp's calls
# succeed without a filter, which runs in the kernel and costs no user-space instruction); the
# system-call counts come from the normal, filtered run.
#
# Needs root, strace and valgrind.  Usage:
#   sh bench/socks_count.sh [LABEL=BUILD_DIR ...]    (default: new=build; COUNT=1000 WARM=50)
# e.g. an A/B against a build of an older commit in another worktree:
#   sh bench/socks_count.sh old=../socks-old/build new=build
# KEEP=DIR keeps the raw files there (strace summaries, callgrind dumps for callgrind_annotate).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
bench="$py $top/bench/socks_bench.py"
COUNT=${COUNT:-1000}
WARM=${WARM:-50}
[ $# -gt 0 ] || set -- "new=${MICROVM_BUILD:-$top/build}"
agent_of() { echo "${AGENT:-$1/guest/agent/microvm-agent}"; }
NOFILTER=${NOFILTER:-${MICROVM_BUILD:-$top/build}/bench/nofilter.so}
ns=mvmcount-$$
nt=mvmcount-t-$$
dst=10.77.0.2
tmp=$(mktemp -d)
. "$top/bench/socks_places.sh"
ctl=$tmp/ctl.sock

cleanup() {
	[ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$tmp"/sys.* "$tmp"/agent.* "$tmp"/cg.* "$tmp"/cga.* "$KEEP"/ 2>/dev/null; } || true
	for b in "$@"; do
		MICROVM_CONTROL=$ctl "${b#*=}/src/cli/microvm" down >/dev/null 2>&1 || true
	done
	places_down
}
trap 'cleanup "$@"' EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "socks_count.sh: needs root (network namespaces)" >&2; exit 1; }
for t in strace valgrind callgrind_control; do
	command -v $t >/dev/null || { echo "socks_count.sh: needs $t" >&2; exit 1; }
done
[ -f "$NOFILTER" ] || { echo "socks_count.sh: no $NOFILTER (build first)" >&2; exit 1; }
for b in "$@"; do
	[ -x "${b#*=}/src/cli/microvm" ] || { echo "socks_count.sh: no ${b#*=}/src/cli/microvm" >&2; exit 1; }
	[ -x "$(agent_of "${b#*=}")" ] || { echo "socks_count.sh: no agent in ${b#*=}" >&2; exit 1; }
done

places_up
conns() { $bench latency "$dst" 9001 --count "$1" --socks "127.0.0.1:$2" >/dev/null; }

(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/secret")
ip netns exec "$nt" $bench serve-echo 9001 --bind "$dst" >/dev/null &
waitport "$nt" 9001
up_args="--agent-netns /run/netns/$ns --agent-secret-file $tmp/secret"

# strace_on FILE PID: attach (every thread); strace_off: detach, the summary is written
strace_on() {
	strace -f -c -U name,calls -S calls -o "$1" -p "$2" 2>"$1.err" &
	echo $! >"$1.pid"
	i=0
	until grep -q "attached" "$1.err" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || break
		sleep 0.1
	done
	sleep 0.5
}
strace_off() {
	kill -INT "$(cat "$1.pid")"
	wait "$(cat "$1.pid")" 2>/dev/null || true
}

# agent_start LABEL BUILD [WRAPPER...]: the build's agent in the guest's namespace; apid=its pid
agent_start() {
	label_=$1 build_=$2
	shift 2
	ip netns exec "$ns" "$@" "$(agent_of "$build_")" --transport tcp --listen 127.0.0.1 \
		--state-dir "$tmp/state" --run-dir "$tmp/run" --auth-secret-file "$tmp/secret" \
		>>"$tmp/agent.$label_.log" 2>&1 &
	waitport "$ns" 7602
	apid=$(ip netns pids "$ns" | head -1)
}
agent_stop() {
	kill "$apid"
	while kill -0 "$apid" 2>/dev/null; do sleep 0.1; done
}

for b in "$@"; do
	label=${b%%=*}
	mvm=${b#*=}/src/cli/microvm
	# 0. the agent
	agent_start "$label" "${b#*=}"
	# 1. system calls
	port=$(freeport)
	MICROVM_CONTROL=$ctl "$mvm" up $up_args --socks "127.0.0.1:$port" --detach >/dev/null
	upid=$(pgrep -n -f "microvm up $up_args --socks 127.0.0.1:$port")
	conns "$WARM" "$port"
	strace_on "$tmp/sys.$label" "$upid"
	strace_on "$tmp/agent.$label" "$apid"
	conns "$COUNT" "$port"
	strace_off "$tmp/sys.$label"
	strace_off "$tmp/agent.$label"
	MICROVM_CONTROL=$ctl "$mvm" down >/dev/null
	agent_stop
	# 2. instructions
	agent_start "$label" "${b#*=}" env LD_PRELOAD="$NOFILTER" valgrind --tool=callgrind -q \
		--callgrind-out-file="$tmp/cga.$label.%p"
	port=$(freeport)
	LD_PRELOAD=$NOFILTER MICROVM_CONTROL=$ctl valgrind --tool=callgrind -q \
		--callgrind-out-file="$tmp/cg.$label.%p" "$mvm" up $up_args \
		--socks "127.0.0.1:$port" >"$tmp/up.$label.log" 2>&1 &
	vpid=$!
	waitport - "$port"
	conns "$WARM" "$port"
	callgrind_control -z "$vpid" >/dev/null
	callgrind_control -z "$apid" >/dev/null
	conns "$COUNT" "$port"
	callgrind_control -d "$vpid" >/dev/null
	callgrind_control -d "$apid" >/dev/null
	MICROVM_CONTROL=$ctl "$mvm" down >/dev/null
	wait "$vpid" || true
	agent_stop
	# the dumps callgrind_control asked for (the file without a suffix is the one at exit)
	ls "$tmp"/cg."$label".*.[0-9]* "$tmp"/cga."$label".*.[0-9]* >/dev/null
	cat "$tmp"/cg."$label".*.[0-9]* | sed -n 's/^summary: *//p' | head -1 >"$tmp/ins.$label"
	cat "$tmp"/cga."$label".*.[0-9]* | sed -n 's/^summary: *//p' | head -1 >"$tmp/ains.$label"
done

$py - "$tmp" "$COUNT" "$@" <<'EOF'
import sys
tmp, count, builds = sys.argv[1], int(sys.argv[2]), [b.split("=", 1)[0] for b in sys.argv[3:]]

def calls(path):
    out = {}
    for line in open(path):
        f = line.split()
        if len(f) == 2 and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out

sysc = {b: calls(f"{tmp}/sys.{b}") for b in builds}
agent = {b: calls(f"{tmp}/agent.{b}") for b in builds}
ins = {b: int(open(f"{tmp}/ins.{b}").read().split()[0]) for b in builds}
ains = {b: int(open(f"{tmp}/ains.{b}").read().split()[0]) for b in builds}
per = lambda n: f"{n / count:.2f}"
print(f"per SOCKS connection ({count} connections):\n")
print("| build | instructions (microvm up) | system calls (microvm up) "
      "| instructions (agent) | system calls (agent) |")
print("|---|---:|---:|---:|---:|")
for b in builds:
    print(f"| {b} | {ins[b] / count:,.0f} | {per(sysc[b].get('total', 0))} "
          f"| {ains[b] / count:,.0f} | {per(agent[b].get('total', 0))} |")


def per_call(title, counts):
    """one row per system call made at least once per 100 connections by any build"""
    names = sorted({n for b in builds for n in counts[b] if n != "total"},
                   key=lambda n: -max(counts[b].get(n, 0) for b in builds))
    print(f"\n{title}:\n")
    print("| system call | " + " | ".join(builds) + " |")
    print("|---|" + "---:|" * len(builds))
    for n in names:
        if max(counts[b].get(n, 0) for b in builds) >= count / 100:
            print(f"| {n} | " + " | ".join(per(counts[b].get(n, 0)) for b in builds) + " |")


per_call("system calls of microvm up per connection", sysc)
per_call("system calls of the agent per connection", agent)
EOF
