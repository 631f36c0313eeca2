#!/bin/sh
# l1_checks_arm64.sh - the checks of the arm64 nested tier, run INSIDE the arm64 nested machine
# (L1) by scripts/nested.sh --arch arm64.
#
# Usage (in L1): l1_checks_arm64.sh OUTDIR [CHECK ...]      (no CHECK: all of them)
#
# L1's root is arm64 (busybox, openvpn, curl from Debian's arm64 packages): no Python, so this
# is a busybox sh script. Like l1_checks.py it asserts nothing: each step records what a user
# sees as OUTDIR/<check>.<step>.{stdout,stderr,rc,seconds} and test_nested_arm64.py asserts on
# the records, so one L1 boot serves every test. Inputs (environment, set by the test):
#   MICROVM       build-arm64's microvm          L2_KERNEL   the arm64 guest kernel (Image)
#   L2_INITRD     a tiny initramfs whose /init says hello and powers off
#   L2_RESTART    the same whose /init reboots instead
#   L2_IMAGE      the arm64 guest image (initramfs with the agent) for `up`
#   IN            the test's input directory (VPN certificates, profile)
set -u

out=${1:?usage: l1_checks_arm64.sh OUTDIR [CHECK ...]}
shift
mkdir -p "$out"
checks=${*:-run up vpn}

now() { cut -d' ' -f1 /proc/uptime; }

# rec NAME SECONDS CMD...: run CMD (stdin /dev/null, at most SECONDS) and record its output,
# exit status (124 or more: timed out) and duration as $out/NAME.*
rec() {
	name=$1 t=$2
	shift 2
	rec_in "$name" "$t" /dev/null "$@"
}

# rec_in NAME SECONDS INPUT CMD...: the same with stdin from the file INPUT
rec_in() {
	name=$1 t=$2 input=$3
	shift 3
	s=$(now)
	timeout "$t" "$@" <"$input" >"$out/$name.stdout" 2>"$out/$name.stderr"
	echo $? >"$out/$name.rc"
	echo "$s $(now)" | awk '{ printf "%.2f\n", $2 - $1 }' >"$out/$name.seconds"
}

# left NAME: microvm processes still running after up to 20 s (L1 is private: the name is ours)
left() {
	i=0
	while pidof microvm >/dev/null && [ $i -lt 100 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	pidof microvm >"$out/$1.pids"
}

check_run() {
	# one verbose boot on two vCPUs: `Run /init` and both CPUs up (PSCI CPU_ON)
	rec run.smp 600 "$MICROVM" run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --mem 256 \
		--cpus 2
	# PSCI SYSTEM_OFF and SYSTEM_RESET: with loglevel=0 the kernel prints nothing (its
	# "reboot: Power down" line would end the VM first), so the end must be KVM's system event
	rec run.off 300 "$MICROVM" run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --mem 128 \
		--cmdline "console=ttyS0 panic=-1 loglevel=0"
	rec run.reset 300 "$MICROVM" run --kernel "$L2_KERNEL" --initrd "$L2_RESTART" --mem 128 \
		--cmdline "console=ttyS0 panic=-1 loglevel=0"
	left run.left
}

# vm_opts: the arm64 guest for `up` (the default lookup knows the x86 kernel only), with time
# for a boot under emulation
vm_opts() {
	echo --kernel "$L2_KERNEL" --initrd "$L2_IMAGE" --boot-timeout 300
}

check_up() {
	# `up` without a profile: the VM boots and the agent answers over virtio-vsock
	export MICROVM_CONTROL=/tmp/up/control.sock
	# shellcheck disable=SC2046 # vm_opts is a list of arguments without blanks
	rec up.up 400 "$MICROVM" up --detach $(vm_opts)
	rec up.status 60 "$MICROVM" status --json
	rec up.console 8 "$MICROVM" console    # live: ends by the timeout
	rec up.down 90 "$MICROVM" down
	left up.left
	unset MICROVM_CONTROL
}

# wait_for FILE TEXT SECONDS: until FILE contains TEXT (0) or SECONDS passed (1)
wait_for() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		[ $i -ge $(($3 * 5)) ] && return 1
		sleep 0.2
		i=$((i + 1))
	done
}

check_vpn() {
	# An OpenVPN server on L1's loopback (the guest reaches it as 10.0.2.2 through libslirp
	# with --net-host-loopback) and a web page on its tunnel address 10.77.8.1 that says who
	# asked: reached through SOCKS5, the asker must be the guest's tunnel address.
	d=/tmp/vpn
	mkdir -p "$d/www/cgi-bin" "$d/tmp"
	cat >"$d/verify.sh" <<EOF
#!/bin/sh
[ "\$(sed -n 1p "\$1")" = alice ] && [ "\$(sed -n 2p "\$1")" = "\$(cat '$IN/alice.pw')" ]
EOF
	cat >"$d/www/cgi-bin/page" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\nonly behind the VPN, reached from an arm64 KVM guest at %s\n' "$REMOTE_ADDR"
EOF
	chmod 755 "$d/verify.sh" "$d/www/cgi-bin/page"
	openvpn --dev tunsrv0 --dev-type tun --proto udp --local 127.0.0.1 --port 1194 \
		--topology subnet --server 10.77.8.0 255.255.255.0 --ca "$IN/ca.crt" \
		--cert "$IN/server.crt" --key "$IN/server.key" --dh none --verify-client-cert none \
		--username-as-common-name --script-security 2 \
		--auth-user-pass-verify "$d/verify.sh" via-file --tmp-dir "$d/tmp" --disable-dco \
		--keepalive 5 30 --hand-window 120 --verb 3 >"$out/vpn.server.log" 2>&1 &
	server=$!
	wait_for "$out/vpn.server.log" "Initialization Sequence Completed" 120
	httpd -f -p 10.77.8.1:8080 -h "$d/www" &
	web=$!
	export MICROVM_CONTROL=/tmp/vpn/control.sock
	# shellcheck disable=SC2046 # vm_opts is a list of arguments without blanks
	rec_in vpn.up 400 "$IN/alice.pw" "$MICROVM" up --detach $(vm_opts) --net-host-loopback \
		--profile "$IN/corp.ovpn" --user alice --password-stdin
	rec vpn.status 60 "$MICROVM" status --json
	rec vpn.curl 120 curl -sS --max-time 90 --socks5-hostname 127.0.0.1:1080 \
		http://10.77.8.1:8080/cgi-bin/page
	rec vpn.down 90 "$MICROVM" down
	left vpn.left
	unset MICROVM_CONTROL
	kill "$server" "$web" 2>/dev/null
	wait "$server" "$web" 2>/dev/null
}

echo "l1_checks_arm64: L1 up $(now) s; checks: $checks"
for c in $checks; do
	t0=$(now)
	"check_$c"
	echo "l1_checks_arm64: $c done in $(echo "$t0 $(now)" | awk '{ printf "%.1f", $2 - $1 }') s"
done
