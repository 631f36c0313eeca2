#!/bin/sh
# demo.sh - the VPN appliance end to end on one machine (make demo).
#
# Theory of operation
#   On a fresh Debian 12 machine, as root:
#     1. install the Debian packages, build microvm, build the guest image (rootfs.tar.gz);
#     2. start a self-contained OpenVPN server in a network namespace of its own, reachable
#        from this host over a veth pair on a private /30 (172.31.254.0/30); certificates,
#        a user (demo / demo-password) and the client profile are made on the fly;
#     3. behind that VPN only, a web page: python3's http.server bound to the server's tunnel
#        address 10.99.0.1, which nothing but a VPN client can route to;
#     4. `microvm up` with the profile: the appliance runs in the namespace backend (nsbox),
#        its traffic leaves through libslirp as ordinary sockets of this host, reaches the
#        server over the veth pair, and the SOCKS5 proxy on 127.0.0.1:1080 relays into the
#        tunnel;
#     5. curl --socks5-hostname 127.0.0.1:1080 http://10.99.0.1:8080/ prints the page;
#     6. `microvm down`, and everything the demo made is removed (also on Ctrl-C or failure).
#   Traffic stays on this machine: nothing else is contacted (apart from Debian's archive
#   when packages are missing).
#
# Environment: MICROVM_BUILD (build dir, default ./build), DEMO_KEEP=1 keeps the work
# directory for inspection.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MICROVM_BUILD:-$top/build}
export MICROVM_BUILD="$build"
microvm=$build/src/cli/microvm

ns=mvdemo-vpn-$$
veth_host=mvdemo$$h
veth_srv=mvdemo$$s
host_ip=172.31.254.1
srv_ip=172.31.254.2
vpn_net=10.99.0.0
page_ip=10.99.0.1
page_port=8080
socks=127.0.0.1:1080
work=
ovpn_pid=
http_pid=
up=0
route_added=0
step_no=0

step() {
	step_no=$((step_no + 1))
	printf '\n==> [%d] %s\n' "$step_no" "$*"
}

die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

cleanup() {
	status=$?
	trap - EXIT INT TERM
	printf '\n==> cleaning up\n'
	if [ "$up" = 1 ]; then
		"$microvm" down --control "$work/control.sock" >/dev/null 2>&1 || true
	fi
	for p in $http_pid $ovpn_pid; do
		kill "$p" 2>/dev/null || true
	done
	for p in $http_pid $ovpn_pid; do
		wait "$p" 2>/dev/null || true
	done
	[ "$route_added" = 1 ] && ip route del unreachable "$vpn_net/24" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip link del "$veth_host" 2>/dev/null || true
	if [ -n "$work" ]; then
		if [ "${DEMO_KEEP:-0}" = 1 ]; then
			echo "kept $work"
		else
			rm -rf "$work"
		fi
	fi
	if [ "$status" = 0 ]; then
		echo "demo: done, nothing left running"
	else
		echo "demo: FAILED (status $status)" >&2
	fi
	exit "$status"
}

[ "$(id -u)" = 0 ] || die "run as root (it creates a network namespace and a veth pair)"
trap cleanup EXIT
trap 'exit 130' INT TERM

step "installing the Debian packages the demo needs (scripts/install-deps.sh build image demo)"
sh "$top/scripts/install-deps.sh" build image demo

step "building microvm (meson + ninja in $build)"
[ -f "$build/build.ninja" ] || meson setup "$build" "$top" >/dev/null
ninja -C "$build" >/dev/null
[ -x "$microvm" ] || die "no $microvm after the build"

step "building the guest image (guest/image/build.sh)"
image=$(sh "$top/guest/image/build.sh" | tail -n 1)
rootfs=$image/rootfs.tar.gz
[ -f "$rootfs" ] || die "the image build gave no $rootfs"
echo "rootfs: $rootfs ($(du -k "$rootfs" | cut -f1) KiB)"

work=$(mktemp -d /tmp/microvm-demo-XXXXXX)
chmod 755 "$work"

step "making demo certificates, a VPN user and the client profile in $work"
(
	cd "$work"
	q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }
	q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj /CN=microvm-demo-ca -keyout ca.key -out ca.crt
	q openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj /CN=microvm-demo-server -keyout server.key -out server.csr
	printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
		>srv.ext
	q openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
		-extfile srv.ext -out server.crt
)
cat >"$work/check-user.sh" <<'EOF'
#!/bin/sh
# OpenVPN auth-user-pass-verify via-file: line 1 user, line 2 password.
{ read -r user; read -r pass; } <"$1"
[ "$user" = demo ] && [ "$pass" = demo-password ]
EOF
chmod 755 "$work/check-user.sh"
mkdir -p "$work/tmp" "$work/www"
cat >"$work/server.conf" <<EOF
dev mvdemo-tun
dev-type tun
topology subnet
server $vpn_net 255.255.255.0
local $srv_ip
port 1194
proto udp
ca $work/ca.crt
cert $work/server.crt
key $work/server.key
dh none
verify-client-cert none
username-as-common-name
script-security 2
auth-user-pass-verify $work/check-user.sh via-file
tmp-dir $work/tmp
disable-dco
keepalive 10 60
verb 3
EOF
{
	printf 'client\ndev tun\nproto udp\nremote %s 1194\nnobind\n' "$srv_ip"
	printf 'remote-cert-tls server\nauth-user-pass\nverb 3\n<ca>\n'
	cat "$work/ca.crt"
	printf '</ca>\n'
} >"$work/demo.ovpn"
echo "profile: $work/demo.ovpn (user demo, password demo-password)"

step "starting the VPN server in network namespace $ns ($srv_ip, reachable from here over a veth pair)"
# The demo's private addresses must be free on this machine.
[ -z "$(ip -4 addr show to "$host_ip/30")" ] && [ -z "$(ip route show "$vpn_net/24")" ] ||
	die "$host_ip/30 or $vpn_net/24 is already in use here (another demo running?)"
ip netns add "$ns"
ip link add "$veth_host" type veth peer name "$veth_srv"
ip link set "$veth_srv" netns "$ns"
ip addr add "$host_ip/30" dev "$veth_host"
ip link set "$veth_host" up
ip -n "$ns" addr add "$srv_ip/30" dev "$veth_srv"
ip -n "$ns" link set "$veth_srv" up
ip -n "$ns" link set lo up
ip netns exec "$ns" openvpn --config "$work/server.conf" >"$work/server.log" 2>&1 &
ovpn_pid=$!
i=0
until grep -q 'Initialization Sequence Completed' "$work/server.log"; do
	i=$((i + 1))
	[ $i -le 100 ] && kill -0 "$ovpn_pid" 2>/dev/null || {
		cat "$work/server.log" >&2
		die "the OpenVPN server did not start"
	}
	sleep 0.1
done
echo "OpenVPN server up: $srv_ip udp/1194, tunnel network $vpn_net/24"

step "serving a page only reachable through the VPN: http://$page_ip:$page_port/"
cat >"$work/www/index.html" <<'EOF'
<html><body><h1>Hello from behind the VPN</h1>
<p>This page is served on the VPN server's tunnel address only: you reached it through the
microvm appliance's SOCKS5 proxy.</p></body></html>
EOF
ip netns exec "$ns" python3 -m http.server "$page_port" --bind "$page_ip" \
	--directory "$work/www" >"$work/http.log" 2>&1 &
http_pid=$!
i=0
until ip netns exec "$ns" curl -s -o /dev/null --max-time 1 "http://$page_ip:$page_port/"; do
	i=$((i + 1))
	[ $i -le 50 ] || die "the web server did not start"
	sleep 0.1
done
# The VPN network is unreachable from this host's own stack (so nothing for it can ever leave
# the machine, even with the tunnel down): the page exists only behind the VPN.
ip route add unreachable "$vpn_net/24"
route_added=1
echo "$vpn_net/24 is unreachable from this host: only a VPN client can reach the page"

step "microvm up --backend nsbox with the demo profile"
printf 'demo-password\n' | "$microvm" up --backend nsbox --rootfs "$rootfs" \
	--profile "$work/demo.ovpn" --user demo --password-stdin \
	--socks "$socks" --control "$work/control.sock" --detach
up=1
"$microvm" status --control "$work/control.sock" || true
"$microvm" vpn status --control "$work/control.sock" || true

step "curl --socks5-hostname $socks http://$page_ip:$page_port/"
curl -sS --max-time 20 --socks5-hostname "$socks" "http://$page_ip:$page_port/" | tee "$work/page.html"
grep -q 'Hello from behind the VPN' "$work/page.html" || die "the page did not come through the VPN"
echo
echo "the page came through the VPN"

step "microvm down"
"$microvm" down --control "$work/control.sock"
up=0
i=0
while "$microvm" status --control "$work/control.sock" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -le 50 ] || die "the appliance did not stop"
	sleep 0.1
done
echo "the appliance has stopped (box, agent and OpenVPN client gone)"
