//! Where libmicrovm comes from.
//!
//! - `MICROVM_BUILD` set (the source tree's `make rust`): the static libmicrovm.a of that
//!   Meson build directory, plus the private libraries it needs, found with pkg-config.
//! - otherwise: the installed library, through `pkg-config microvm` (PKG_CONFIG_PATH for a
//!   non-standard prefix).

use std::env;
use std::path::PathBuf;

const PRIVATE: &[&str] = &["libcrypto", "libseccomp", "slirp", "libcjson"];

fn main() {
    println!("cargo:rerun-if-env-changed=MICROVM_BUILD");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if let Ok(build) = env::var("MICROVM_BUILD") {
        let lib = PathBuf::from(&build).join("src");
        let archive = lib.join("libmicrovm.a");
        if !archive.exists() {
            panic!("{} missing: build the C library first (make build)", archive.display());
        }
        println!("cargo:rerun-if-changed={}", archive.display());
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=static=microvm");
        for p in PRIVATE {
            pkg_config::Config::new()
                .probe(p)
                .unwrap_or_else(|e| panic!("libmicrovm needs {}: {}", p, e));
        }
        println!("cargo:rustc-link-lib=pthread");
        return;
    }
    pkg_config::Config::new()
        .atleast_version("0.1")
        .probe("microvm")
        .unwrap_or_else(|e| panic!("libmicrovm not found (install it, or set MICROVM_BUILD): {}", e));
}
