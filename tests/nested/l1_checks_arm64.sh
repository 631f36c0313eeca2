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
	left run.left
}

echo "l1_checks_arm64: L1 up $(now) s; checks: $checks"
for c in $checks; do
	s=$(now)
	"check_$c"
	echo "l1_checks_arm64: $c done in $(echo "$s $(now)" | awk '{ printf "%.1f", $2 - $1 }') s"
done
