#!/bin/sh
# bench/boot-nested.sh - bench/boot.sh inside the nested-KVM machine (scripts/nested.sh): a
# real KVM even where /dev/kvm is missing or PVM-backed.
#
# Usage: bench/boot-nested.sh [RUNS]    (default 3; AGENT=1 by default: boot the project's image
#                                        and time until the agent listens; AGENT=0: Run /init;
#                                        QUIET=0: without the appliance's `quiet`;
#                                        EXTRA_ARGS: appended to both command lines)
#
# microvm and `qemu-system-x86_64 -M microvm -accel kvm -cpu host` boot the same kernel,
# initramfs and command line, alternating, in the same L1 machine (1 emulated vCPU, QEMU TCG
# with nested SVM). Absolute times are those of that emulated machine (much slower than a real
# host); compare the two VMMs with each other, in one run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
export AGENT="${AGENT:-1}"
export MICROVM_BUILD="${MICROVM_BUILD:-$top/build}"
exec sh "$top/scripts/nested.sh" -- \
	"AGENT=$AGENT QUIET=${QUIET:-1} EXTRA_ARGS='${EXTRA_ARGS:-}' sh '$top/bench/boot.sh' $runs"
