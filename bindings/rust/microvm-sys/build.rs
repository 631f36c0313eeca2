//! Where libmicrovm comes from.
//!
//! - `MICROVM_BUILD` set (the source tree's `make rust` and `make windows`): the static
//!   libmicrovm.a of that Meson build directory (`build/`, or `build-win/` when cross-building
//!   for `x86_64-pc-windows-gnu`), plus what it needs, read from the pkg-config file Meson
//!   generated there (`meson-private/microvm.pc`): its `Requires` and `Requires.private`
//!   packages through pkg-config, the flags of its `Libs` (beyond libmicrovm itself) and
//!   `Libs.private` as they are (`-lfdt`, `-lws2_32`, `-lbcrypt`, `-pthread`...).  So the link list has one source, the library's meson.build.
//! - otherwise: the installed library, through `pkg-config microvm` (PKG_CONFIG_PATH for a
//!   non-standard prefix).

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=MICROVM_BUILD");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if let Ok(build) = env::var("MICROVM_BUILD") {
        link_build_tree(Path::new(&build));
        return;
    }
    pkg_config::Config::new()
        .atleast_version("0.2")
        .probe("microvm")
        .unwrap_or_else(|e| panic!("libmicrovm not found (install it, or set MICROVM_BUILD): {}", e));
}

/// One field of a .pc file (`Libs`, `Libs.private`, `Requires.private`), with `${var}`
/// references left alone (the flags used here have none but libmicrovm's own -L).
fn pc_field(pc: &str, field: &str) -> String {
    pc.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn link_build_tree(build: &Path) {
    let lib = PathBuf::from(build).join("src");
    let archive = lib.join("libmicrovm.a");
    if !archive.exists() {
        panic!("{} missing: build the C library first (make build, or make windows)", archive.display());
    }
    let pc_path = build.join("meson-private/microvm.pc");
    let pc = std::fs::read_to_string(&pc_path)
        .unwrap_or_else(|e| panic!("{}: {} (configure the build with meson first)", pc_path.display(), e));
    println!("cargo:rerun-if-changed={}", archive.display());
    println!("cargo:rerun-if-changed={}", pc_path.display());
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=static=microvm");

    let windows = env::var("CARGO_CFG_TARGET_OS").map(|t| t == "windows").unwrap_or(false);
    // its packages (Requires on a static-only build such as Windows, Requires.private beside a
    // shared library) through pkg-config; a cross build needs PKG_CONFIG_ALLOW_CROSS=1 and
    // PKG_CONFIG_LIBDIR naming the target's .pc files (scripts/test-rust-windows.sh sets both
    // from the build's machine file)
    let reqs = format!("{},{}", pc_field(&pc, "Requires"), pc_field(&pc, "Requires.private"));
    for req in reqs.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        // "name >= version": the name is enough here, the build tree was configured with it
        let name = req.split_whitespace().next().unwrap();
        pkg_config::Config::new()
            .statik(windows)
            .probe(name)
            .unwrap_or_else(|e| panic!("libmicrovm needs {}: {}", name, e));
    }
    // a static-only build (Windows) lists its dependencies in Libs, after -lmicrovm itself
    let libs = format!("{} {}", pc_field(&pc, "Libs"), pc_field(&pc, "Libs.private"));
    for flag in libs.split_whitespace() {
        if flag == "-lmicrovm" || flag.starts_with("-L${") {
            continue;
        } else if flag == "-pthread" {
            // winpthreads on Windows: static (found by the linker, not bundled), so that the
            // .exe needs no libwinpthread DLL beside it
            println!("cargo:rustc-link-lib={}pthread", if windows { "static:-bundle=" } else { "" });
        } else if let Some(l) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={}", l);
        } else if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
        } else if flag.ends_with(".a") || flag.ends_with(".lib") {
            // a library named by its path (Meson writes such for found-by-path libraries)
            let p = Path::new(flag);
            let dir = p.parent().unwrap_or(Path::new("."));
            let stem = p.file_stem().unwrap().to_str().unwrap();
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=static={}", stem.strip_prefix("lib").unwrap_or(stem));
        } else {
            panic!("{}: Libs.private flag {} not understood", pc_path.display(), flag);
        }
    }
}
