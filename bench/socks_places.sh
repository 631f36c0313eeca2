# socks_places.sh - the places of the SOCKS benchmarks, sourced by socks.sh and socks_count.sh
# (not run on its own).
#
# The caller sets $ns (stands in for the guest), $nt (the targets' "internet"), $dst (the
# targets' address, 10.77.0.2) and $tmp; places_up makes the two namespaces joined by a veth
# pair; places_down (from the caller's exit trap) kills what runs in them, removes them and
# $tmp; waitport NS PORT waits until a TCP port listens (NS "-": the host's namespace);
# freeport prints a free port of 127.0.0.1.

places_up() {
	ip netns add "$ns"
	ip netns add "$nt"
	ip -n "$ns" link set lo up
	ip -n "$nt" link set lo up
	ip -n "$ns" link add veth0 type veth peer name veth1 netns "$nt"
	ip -n "$ns" addr add 10.77.0.1/24 dev veth0
	ip -n "$nt" addr add "$dst/24" dev veth1
	ip -n "$ns" link set veth0 up
	ip -n "$nt" link set veth1 up
}

places_down() {
	for p in $(ip netns pids "$ns" 2>/dev/null) $(ip netns pids "$nt" 2>/dev/null); do
		kill "$p" 2>/dev/null || true
	done
	sleep 0.3
	ip netns del "$ns" 2>/dev/null || true
	ip netns del "$nt" 2>/dev/null || true
	rm -rf "$tmp"
}

waitport() {
	i=0
	while :; do
		if [ "$1" = - ]; then ss -Hltn "sport = :$2" | grep -q . && return 0
		else ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0; fi
		i=$((i + 1)); [ $i -lt 600 ] || { echo "$0: port $2 not up" >&2; exit 1; }
		sleep 0.1
	done
}

freeport() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
