//! The hand-written FFI against the C headers it copies.
//!
//! - every function the headers export (MVM_API) is declared in src/lib.rs, and nothing
//!   else is: names parsed from include/microvm/*.h (Windows-only ones, in `#ifdef _WIN32`,
//!   left out);
//! - every struct has the C layout: a C probe compiled against the headers prints sizeof
//!   and offsetof of each field; the Rust side computes the same from its types;
//! - the constants the crate copies equal the headers'.
//!
//! Needs a C compiler (`cc`) and the tree's headers (MICROVM_BUILD for the generated
//! version.h).  Cross-built for Windows (`make windows`), only the last test runs (under
//! Wine): the header checks above are the build machine's.

#![cfg_attr(windows, allow(dead_code, unused_imports, unused_macros))]

use std::collections::BTreeSet;
use std::mem::{align_of, size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;

use microvm_sys::*;

fn top() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..").canonicalize().unwrap()
}

fn build_dir() -> PathBuf {
    std::env::var("MICROVM_BUILD").map(PathBuf::from).unwrap_or_else(|_| top().join("build"))
}

fn header_functions() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = top().join("include/microvm");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".h") || name == "version.h.in") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Windows-only declarations (#ifdef _WIN32 ... #endif) are not in this crate
        let mut depth = 0; // conditional nesting inside a _WIN32 block
        for line in text.lines() {
            let t = line.trim_start();
            if depth > 0 {
                if t.starts_with("#if") {
                    depth += 1;
                } else if t.starts_with("#endif") {
                    depth -= 1;
                }
                continue;
            }
            if t.starts_with("#ifdef _WIN32") || t.starts_with("#if defined(_WIN32)") {
                depth = 1;
                continue;
            }
            if let Some(decl) = line.strip_prefix("MVM_API ") {
                let head = decl.split('(').next().unwrap();
                let f = head.rsplit(|c: char| c == ' ' || c == '*').next().unwrap();
                out.insert(f.to_string());
            }
        }
    }
    out
}

fn rust_functions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    // the extern block only: the safe *_init() helpers above it are Rust, not C
    let externs = &text[text.find("extern \"C\" {").expect("extern block")..];
    externs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub fn "))
        .map(|l| l.split('(').next().unwrap().to_string())
        .collect()
}

// the header and layout checks run on the build machine (Unix paths, `cc`); under Wine
// the library's answers are checked below
#[cfg(unix)]
#[test]
fn every_exported_function_is_declared() {
    let c = header_functions();
    let r = rust_functions();
    assert!(c.len() > 50, "parsed only {:?}", c);
    let missing: Vec<_> = c.difference(&r).collect();
    let extra: Vec<_> = r.difference(&c).collect();
    assert!(missing.is_empty(), "exported by the headers, not declared here: {:?}", missing);
    assert!(extra.is_empty(), "declared here, not exported by the headers: {:?}", extra);
}

/// (struct, field) pairs whose offsets are compared; sizes of every struct too.
macro_rules! layout {
    ($($s:ident { $($f:ident),* })*) => {{
        let mut rust = Vec::new();
        let mut c = String::new();
        $(
            rust.push(format!("{} size {} align {}", stringify!($s), size_of::<$s>(), align_of::<$s>()));
            c += &format!("printf(\"{0} size %zu align %zu\\n\", sizeof(struct {0}), _Alignof(struct {0}));\n",
                          stringify!($s));
            $(
                let u = MaybeUninit::<$s>::uninit();
                let base = u.as_ptr() as usize;
                // SAFETY: only the address of the field is taken.
                let field = unsafe { std::ptr::addr_of!((*u.as_ptr()).$f) } as usize;
                rust.push(format!("{}.{} {}", stringify!($s), stringify!($f), field - base));
                c += &format!("printf(\"{0}.{1} %zu\\n\", offsetof(struct {0}, {1}));\n",
                              stringify!($s), stringify!($f));
            )*
        )*
        (rust, c)
    }};
}

#[cfg(unix)]
#[test]
fn structs_have_the_c_layout() {
    let (rust, body) = layout! {
        mvm_config { size, backend, kernel_path, initrd_path, cmdline, rootfs_path, mem_mib, cpus,
                     guest_cid, net, vsock_uds_path, quiet, box_argv, net_host_loopback }
        mvm_socks_config { size, addr, port, allow_remote, username, password, agent_port,
                           handshake_timeout_ms, connect_timeout_ms, idle_timeout_ms,
                           max_conns, workers, log, log_opaque }
        mvm_socks_stats { active, accepted, relayed, refused, bytes_up, bytes_down }
        mvm_manager_config { size, vm, socks, socks_generate_secret, no_socks, boot_timeout_ms,
                             request_timeout_ms, connect_timeout_ms, log, log_opaque }
        mvm_vpn_info { state, tun_ip, auth_url, profile, error }
        mvm_manager_status { vm_running, attached, hypervisor, agent_reachable, vpn,
                             socks_running, socks_addr, socks_port, socks_auth, last_error, fault }
    };
    let src = format!(
        "#include <stddef.h>\n#include <stdio.h>\n#include <microvm/microvm.h>\n\
         int main(void) {{\n{}\
         printf(\"consts %d %d %u %d %d %d %d\\n\", MVM_AGENT_PORT, MVM_PROXY_PORT, MVM_VSOCK_MAX_RESPONSE,\n\
                (int)MVM_BACKEND_HVF, (int)MVM_EXIT_KILLED, (int)MVM_VPN_ERROR, MVM_CONSOLE_KEPT);\n\
         return 0; }}\n",
        body
    );
    let dir = std::env::temp_dir().join(format!("microvm-sys-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c_file, exe) = (dir.join("probe.c"), dir.join("probe"));
    std::fs::write(&c_file, src).unwrap();
    let st = Command::new("cc")
        .arg("-std=c11")
        .arg(format!("-I{}", top().join("include").display()))
        .arg(format!("-I{}", build_dir().join("include").display()))
        .arg(&c_file)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("cc");
    assert!(st.success(), "the C probe does not compile");
    let out = Command::new(&exe).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut c_lines: Vec<&str> = text.lines().collect();
    let consts = c_lines.pop().unwrap();
    assert_eq!(c_lines, rust.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(
        consts,
        format!("consts {} {} {} {} {} {} {}", MVM_AGENT_PORT, MVM_PROXY_PORT, MVM_VSOCK_MAX_RESPONSE,
                MVM_BACKEND_HVF, MVM_EXIT_KILLED, MVM_VPN_ERROR, MVM_CONSOLE_KEPT)
    );
}

#[test]
fn the_library_links_and_answers() {
    // SAFETY: static strings.
    let v = unsafe { std::ffi::CStr::from_ptr(mvm_version()) }.to_str().unwrap().to_string();
    let manifest = std::fs::read_to_string(top().join("meson.build")).unwrap();
    assert!(manifest.contains(&format!("version : '{}'", v)), "library version {}", v);
    let cfg = mvm_config_init();
    assert_eq!((cfg.mem_mib, cfg.cpus, cfg.guest_cid, cfg.backend), (256, 1, 3, MVM_BACKEND_AUTO));
    assert_eq!(cfg.size, size_of::<mvm_config>());
    // the SOCKS server and the manager (in the Windows library too)
    assert_eq!(mvm_socks_config_init().size, size_of::<mvm_socks_config>());
    let m = mvm_manager_config_init();
    assert_eq!((m.size, m.vm, m.socks), (size_of::<mvm_manager_config>(), std::ptr::null(), std::ptr::null()));
    // a config from newer declarations than the library is refused, not misread
    let mut big = [0u64; 64];
    // SAFETY: 512 bytes of plain data, more than any mvm_config.
    unsafe { mvm_config_init_sized(big.as_mut_ptr() as *mut mvm_config, std::mem::size_of_val(&big)) };
    assert!(unsafe { mvm_vm_new(big.as_ptr() as *const mvm_config) }.is_null());
    let err = unsafe { std::ffi::CStr::from_ptr(mvm_last_error()) }.to_string_lossy().into_owned();
    assert!(err.contains("newer headers"), "{}", err);
    // the console snapshot: no VM is the library's -EINVAL (a c_long), its text names the call
    let mut buf = [0u8; 16];
    let mut total = 7u64;
    // SAFETY: a NULL VM is refused before anything is read or written.
    let n = unsafe { mvm_console_read(std::ptr::null_mut(), buf.as_mut_ptr().cast(), buf.len(), &mut total) };
    assert_eq!(n, -(libc::EINVAL as libc::c_long));
    let err = unsafe { std::ffi::CStr::from_ptr(mvm_last_error()) }.to_string_lossy().into_owned();
    assert!(err.contains("mvm_console_read"), "{}", err);
}
