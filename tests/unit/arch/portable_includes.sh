#!/bin/sh
# portable_includes.sh TOP - the arm64 machine model (src/arch/arm64) is shared with the macOS
# (Hypervisor.framework) backend, which no machine here builds: check that it includes only
# standard C headers, libfdt and the project's own portable headers (docs/macos.md).  Fails
# naming each other include.
set -eu
top=$1
allowed='<errno.h> <inttypes.h> <stddef.h> <stdint.h> <stdio.h> <stdlib.h> <string.h> <libfdt.h>
"arch/arm64/machine.h" "runtime/error.h" "microvm/error.h" "microvm/export.h"'
bad=0
for f in "$top"/src/arch/arm64/*.[ch] "$top"/src/runtime/error.h "$top"/include/microvm/error.h "$top"/include/microvm/export.h; do
	for inc in $(sed -n 's/^#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1/p' "$f"); do
		case " $(echo $allowed) " in
		*" $inc "*) ;;
		*) echo "$f: includes $inc, not known to build on macOS"; bad=1 ;;
		esac
	done
done
[ "$bad" -eq 0 ] && echo "portable: src/arch/arm64 includes only standard C, libfdt and portable headers"
exit "$bad"
