# Top-level entry points.  The real build is Meson; this file strings the steps together so
# that a fresh Debian 12 machine needs exactly two commands: `make demo` and `make check`.
#
#   make deps     install every Debian package any target needs (scripts/install-deps.sh)
#   make build    configure and build into build/
#
# Each target installs only the package group it needs (scripts/install-deps.sh GROUP):
# `make build` the compilers and libraries, `make check` everything; see the README.
#   make unit     unit tests; make asan: unit tests with ASan+UBSan; make fuzz: short fuzz runs
#   make kernel   build (or fetch from cache) the guest kernel
#   make image    build (or fetch from cache) the guest initramfs and rootfs
#   make kernel-arm64, make image-arm64   the same for arm64 guests (cross-built; docs/kvm.md)
#   make integration   pytest integration tests (root and /dev/kvm tests say when skipped)
#   make nested   the VM path on a real KVM, inside a QEMU TCG machine (scripts/nested.sh)
#   make nested-arm64  the arm64 KVM backend (build-arm64's microvm) on a real arm64 KVM, inside
#                 a QEMU TCG arm64 machine with EL2 (scripts/nested.sh --arch arm64)
#   make windows  cross-build libmicrovm and the Rust crates for Windows (mingw-w64; libuv and
#                 cJSON built from Debian's source packages, cached), make the Windows
#                 package, and run their tests under Wine
#   make windows-package  only the package: build-win/microvm-VERSION-windows-x86_64.zip
#                 (microvm.exe, rootfs.tar.gz, libmicrovm with headers and microvm.pc;
#                 docs/windows.md "Installing on Windows")
#   make arm64    cross-build libmicrovm, microvm and the agent for Linux/arm64 and run the unit
#                 tests under qemu-user (docs/kvm.md, arm64)
#   make check    all of the above
#   make demo     the VPN appliance end to end
#   make bench    the benchmarks (figures go into docs/performance.md)
#   make rust     the Rust crates (bindings/rust/) with Debian's cargo, offline: their tests
#                 run a VM flow on the namespace backend (root)

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_WIN  ?= build-win
BUILD_ARM64 ?= build-arm64
PYTHON     ?= /usr/bin/python3
FUZZ_SECONDS ?= 15
DEPS       := sh scripts/install-deps.sh
export MICROVM_BUILD := $(abspath $(BUILD))

FORCE:

.PHONY: FORCE all deps build unit asan fuzz windows windows-package arm64 kernel image \
	kernel-arm64 image-arm64 \
	integration nested nested-arm64 rust check demo bench clean

all: build

deps:
	@$(DEPS)

$(BUILD)/build.ninja:
	@$(DEPS) build
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	@$(DEPS) build
	ninja -C $(BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

$(BUILD_ASAN)/build.ninja:
	@$(DEPS) build test
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false

asan: $(BUILD_ASAN)/build.ninja
	@$(DEPS) build test
	ninja -C $(BUILD_ASAN)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(BUILD_ASAN) --suite unit --print-errorlogs

$(BUILD_FUZZ)/build.ninja:
	@$(DEPS) build test
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_lundef=false

fuzz: $(BUILD_FUZZ)/build.ninja
	@$(DEPS) build test
	ninja -C $(BUILD_FUZZ)
	sh scripts/run-fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

# libuv and cJSON for mingw-w64, from Debian's source packages (scripts/build-win-deps.sh;
# cached, seconds once built).  The machine file it writes points the cross build's
# pkg-config at them; it lives beside BUILD_WIN (a --wipe empties BUILD_WIN) and changes only
# with their cache key, and then BUILD_WIN is set up anew.
WIN_DEPS_INI := $(BUILD_WIN).deps.ini

$(WIN_DEPS_INI): FORCE
	@$(DEPS) build windows
	sh scripts/build-win-deps.sh --machine-file $@ >/dev/null

$(BUILD_WIN)/build.ninja: $(WIN_DEPS_INI)
	meson setup $(if $(wildcard $(BUILD_WIN)/meson-private),--wipe) $(BUILD_WIN) \
	  --cross-file cross/x86_64-w64-mingw32.txt --cross-file $(WIN_DEPS_INI)

# the self-contained package: `meson install` of the cross build plus the guest image's
# rootfs, zipped (scripts/windows-package.sh; a few seconds)
windows-package: $(BUILD_WIN)/build.ninja image
	@$(DEPS) build windows
	ninja -C $(BUILD_WIN)
	sh scripts/windows-package.sh $(BUILD_WIN)

# the WSL2 tests run the real agent from the guest image behind a wsl.exe double, and
# test_win_package.py installs and uses the package; then the Rust crates, cross-built
# against $(BUILD_WIN), run their tests and the WSL2 flow under Wine.  The crates' cross
# build comes first, untimed (minutes when fresh): test_win_rust.py, in test-windows.sh's
# timed run, uses its examples/app_flow.exe.
windows: windows-package
	@$(DEPS) build windows rust
	ninja -C $(BUILD_WIN)
	sh scripts/test-rust-windows.sh $(BUILD_WIN) --build-only
	sh scripts/test-windows.sh $(BUILD_WIN)
	sh scripts/test-rust-windows.sh $(BUILD_WIN)

$(BUILD_ARM64)/build.ninja:
	@$(DEPS) build arm64
	meson setup $(BUILD_ARM64) --cross-file cross/aarch64-linux-gnu.txt

# The unit tests run under qemu-user (the cross file's exe_wrapper), so they really execute;
# suite native-only needs what qemu-user does not emulate (seccomp filters, namespaces).
arm64: $(BUILD_ARM64)/build.ninja
	@$(DEPS) build arm64
	ninja -C $(BUILD_ARM64)
	meson test -C $(BUILD_ARM64) --suite unit --no-suite native-only --print-errorlogs

kernel:
	@$(DEPS) kernel
	sh guest/kernel/build.sh

image: build
	@$(DEPS) image
	sh guest/image/build.sh

kernel-arm64:
	@$(DEPS) kernel kernel-arm64
	sh guest/kernel/build.sh --arch arm64

# init and the agent from the arm64 cross build (only those two: `make arm64` runs the tests)
image-arm64: $(BUILD_ARM64)/build.ninja
	@$(DEPS) build arm64 image image-arm64
	ninja -C $(BUILD_ARM64) guest/init/microvm-init guest/agent/microvm-agent
	MICROVM_BUILD_ARM64=$(abspath $(BUILD_ARM64)) sh guest/image/build.sh --arch arm64

# the arm64 guest too: test_image.py boots it under qemu-system-aarch64 (TCG)
integration: build kernel image kernel-arm64 image-arm64
	@$(DEPS) test
	$(PYTHON) -m pytest -v -rs tests/integration

# One boot of the nested machine runs every check (tests/nested/l1_checks.py).
nested: build kernel image
	@$(DEPS) test
	$(PYTHON) -m pytest -v -rs tests/nested/test_nested_kvm.py tests/nested/test_nested_stall.py

# One boot of the arm64 nested machine runs every check (tests/nested/l1_checks_arm64.sh).
nested-arm64: arm64 kernel-arm64 image-arm64
	@$(DEPS) test nested-arm64
	MICROVM_BUILD_ARM64=$(abspath $(BUILD_ARM64)) $(PYTHON) -m pytest -v -rs tests/nested/test_nested_arm64.py

# Debian's cargo and rustc (/usr/bin), not a rustup toolchain that may come first on PATH;
# the crates come from Debian's librust-*-dev through bindings/rust/.cargo/config.toml.
rust: build image
	@$(DEPS) rust
	cd bindings/rust && PATH=/usr/bin:$$PATH \
	  MICROVM_ROOTFS=$$(sh $(CURDIR)/guest/image/build.sh | tail -n 1)/rootfs.tar.gz \
	  /usr/bin/cargo test --offline

check: deps build unit asan fuzz windows arm64 rust integration nested nested-arm64

demo: build
	sh scripts/demo.sh

bench: build
	@$(DEPS) bench
	sh bench/run-all.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_WIN) $(WIN_DEPS_INI) $(BUILD_ARM64)
