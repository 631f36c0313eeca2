//! Raw FFI declarations of libmicrovm, written by hand from `include/microvm/*.h`.
//!
//! Every `MVM_API` function of the public headers is declared here with the same name and
//! argument types, and the structs have the headers' layout; `tests/abi.rs` checks both
//! against the headers (names by parsing them, sizes and offsets by compiling a C probe).
//! The config structs carry the `size` of docs/library.md's ABI rules: fill them with the
//! `*_init()` functions below (they pass this crate's `size_of`), never by hand.
//! The safe API is the `microvm` crate; docs/library.md documents the C side, including
//! which thread runs each callback.
#![allow(non_camel_case_types)]

use libc::{c_char, c_int, c_long, c_uint, c_void, size_t};

// ------------------------------------------------------------------ contract.h

pub const MVM_AGENT_PORT: u32 = 1025;
pub const MVM_PROXY_PORT: u32 = 7602;

// ------------------------------------------------------------------ opaque handles

#[repr(C)]
pub struct mvm_vm {
    _private: [u8; 0],
}
#[repr(C)]
pub struct mvm_vsock {
    _private: [u8; 0],
}
#[repr(C)]
pub struct mvm_manager {
    _private: [u8; 0],
}
#[repr(C)]
pub struct mvm_socks {
    _private: [u8; 0],
}

// ------------------------------------------------------------------ runtime.h

pub type mvm_backend_kind = c_uint;
pub const MVM_BACKEND_AUTO: mvm_backend_kind = 0;
pub const MVM_BACKEND_KVM: mvm_backend_kind = 1;
pub const MVM_BACKEND_NSBOX: mvm_backend_kind = 2;
pub const MVM_BACKEND_WSL: mvm_backend_kind = 3;
pub const MVM_BACKEND_HVF: mvm_backend_kind = 4;

pub type mvm_state = c_uint;
pub const MVM_STATE_CREATED: mvm_state = 0;
pub const MVM_STATE_RUNNING: mvm_state = 1;
pub const MVM_STATE_STOPPING: mvm_state = 2;
pub const MVM_STATE_STOPPED: mvm_state = 3;

pub type mvm_exit_reason = c_uint;
pub const MVM_EXIT_NONE: mvm_exit_reason = 0;
pub const MVM_EXIT_POWEROFF: mvm_exit_reason = 1;
pub const MVM_EXIT_REBOOT: mvm_exit_reason = 2;
pub const MVM_EXIT_PANIC: mvm_exit_reason = 3;
pub const MVM_EXIT_ERROR: mvm_exit_reason = 4;
pub const MVM_EXIT_KILLED: mvm_exit_reason = 5;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mvm_config {
    /// sizeof as these declarations define it; set by mvm_config_init_sized().
    pub size: size_t,
    pub backend: mvm_backend_kind,
    pub kernel_path: *const c_char,
    pub initrd_path: *const c_char,
    pub cmdline: *const c_char,
    pub rootfs_path: *const c_char,
    pub mem_mib: u32,
    pub cpus: u32,
    pub guest_cid: u32,
    pub net: bool,
    pub vsock_uds_path: *const c_char,
    pub quiet: bool,
    pub box_argv: *const *const c_char,
    pub net_host_loopback: bool,
}

pub type mvm_console_cb =
    Option<unsafe extern "C" fn(opaque: *mut c_void, data: *const u8, len: size_t, lost: u64)>;

/// Bytes of the most recent console output a VM keeps (what `mvm_console_read()` can give).
pub const MVM_CONSOLE_KEPT: usize = 64 * 1024;

// ------------------------------------------------------------------ vsock.h

pub type mvm_vsock_accept_cb = Option<unsafe extern "C" fn(opaque: *mut c_void, port: u32, fd: c_int)>;

pub const MVM_VSOCK_MAX_RESPONSE: u32 = 16 * 1024 * 1024;

// ------------------------------------------------------------------ socks.h

pub type mvm_log_cb = Option<unsafe extern "C" fn(opaque: *mut c_void, line: *const c_char)>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mvm_socks_config {
    /// set by mvm_socks_config_init_sized().
    pub size: size_t,
    pub addr: *const c_char,
    pub port: u16,
    pub allow_remote: bool,
    pub username: *const c_char,
    pub password: *const c_char,
    pub agent_port: u32,
    pub handshake_timeout_ms: c_int,
    pub connect_timeout_ms: c_int,
    pub idle_timeout_ms: c_int,
    pub max_conns: c_uint,
    pub workers: c_uint,
    pub log: mvm_log_cb,
    pub log_opaque: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct mvm_socks_stats {
    pub active: u64,
    pub accepted: u64,
    pub relayed: u64,
    pub refused: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

// ------------------------------------------------------------------ manager.h

pub type mvm_vpn_state = c_uint;
pub const MVM_VPN_UNKNOWN: mvm_vpn_state = 0;
pub const MVM_VPN_DISCONNECTED: mvm_vpn_state = 1;
pub const MVM_VPN_CONNECTING: mvm_vpn_state = 2;
pub const MVM_VPN_WEBAUTH: mvm_vpn_state = 3;
pub const MVM_VPN_CONNECTED: mvm_vpn_state = 4;
pub const MVM_VPN_ERROR: mvm_vpn_state = 5;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mvm_manager_config {
    /// set by mvm_manager_config_init_sized().
    pub size: size_t,
    /// NULL: the defaults of mvm_config_init_sized().
    pub vm: *const mvm_config,
    /// NULL: the defaults of mvm_socks_config_init_sized().
    pub socks: *const mvm_socks_config,
    pub socks_generate_secret: bool,
    pub no_socks: bool,
    pub boot_timeout_ms: c_int,
    pub request_timeout_ms: c_int,
    pub connect_timeout_ms: c_int,
    pub log: mvm_log_cb,
    pub log_opaque: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct mvm_vpn_info {
    pub state: mvm_vpn_state,
    pub tun_ip: [c_char; 64],
    pub auth_url: [c_char; 1024],
    pub profile: [c_char; 256],
    pub error: [c_char; 512],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct mvm_manager_status {
    pub vm_running: bool,
    pub attached: bool,
    pub hypervisor: [c_char; 32],
    pub agent_reachable: bool,
    pub vpn: mvm_vpn_info,
    pub socks_running: bool,
    pub socks_addr: [c_char; 64],
    pub socks_port: u16,
    pub socks_auth: bool,
    pub last_error: [c_char; 512],
    pub fault: [c_char; 512],
}

/// A `mvm_config` with the library's defaults (C's `mvm_config_init()` macro).
#[inline] // built where used: a library without the call links without it
pub fn mvm_config_init() -> mvm_config {
    let mut cfg = std::mem::MaybeUninit::<mvm_config>::zeroed();
    // SAFETY: the library writes size_of::<mvm_config>() bytes, all of them plain data.
    unsafe {
        mvm_config_init_sized(cfg.as_mut_ptr(), std::mem::size_of::<mvm_config>());
        cfg.assume_init()
    }
}

/// A `mvm_socks_config` with the library's defaults (C's `mvm_socks_config_init()`).
#[inline] // built where used: a library without the call links without it
pub fn mvm_socks_config_init() -> mvm_socks_config {
    let mut cfg = std::mem::MaybeUninit::<mvm_socks_config>::zeroed();
    // SAFETY: as above.
    unsafe {
        mvm_socks_config_init_sized(cfg.as_mut_ptr(), std::mem::size_of::<mvm_socks_config>());
        cfg.assume_init()
    }
}

/// A `mvm_manager_config` with the library's defaults (C's `mvm_manager_config_init()`):
/// `vm` and `socks` NULL.
#[inline] // built where used: a library without the call links without it
pub fn mvm_manager_config_init() -> mvm_manager_config {
    let mut cfg = std::mem::MaybeUninit::<mvm_manager_config>::zeroed();
    // SAFETY: as above.
    unsafe {
        mvm_manager_config_init_sized(cfg.as_mut_ptr(), std::mem::size_of::<mvm_manager_config>());
        cfg.assume_init()
    }
}

extern "C" {
    // version.h, error.h
    pub fn mvm_version() -> *const c_char;
    pub fn mvm_last_error() -> *const c_char;

    // runtime.h
    pub fn mvm_config_init_sized(cfg: *mut mvm_config, size: size_t);
    pub fn mvm_backend_default() -> *const c_char;
    pub fn mvm_vm_new(cfg: *const mvm_config) -> *mut mvm_vm;
    pub fn mvm_vm_start(vm: *mut mvm_vm) -> c_int;
    pub fn mvm_vm_stop(vm: *mut mvm_vm, timeout_ms: c_int) -> c_int;
    pub fn mvm_vm_kill(vm: *mut mvm_vm) -> c_int;
    pub fn mvm_vm_wait(vm: *mut mvm_vm, timeout_ms: c_int, reason: *mut mvm_exit_reason) -> c_int;
    pub fn mvm_vm_state(vm: *mut mvm_vm) -> mvm_state;
    pub fn mvm_vm_exit_detail(vm: *mut mvm_vm) -> *const c_char;
    pub fn mvm_vm_stats(vm: *mut mvm_vm, buf: *mut c_char, len: size_t) -> c_int;
    pub fn mvm_vm_hypervisor(vm: *mut mvm_vm) -> *const c_char;
    pub fn mvm_vm_vsock(vm: *mut mvm_vm) -> *mut mvm_vsock;
    pub fn mvm_vm_free(vm: *mut mvm_vm);
    pub fn mvm_exit_reason_name(reason: mvm_exit_reason) -> *const c_char;
    pub fn mvm_console_subscribe(vm: *mut mvm_vm, cb: mvm_console_cb, opaque: *mut c_void) -> c_int;
    pub fn mvm_console_subscribe_fd(vm: *mut mvm_vm, fd: c_int) -> c_int;
    pub fn mvm_console_unsubscribe(vm: *mut mvm_vm, id: c_int);
    pub fn mvm_console_drain(vm: *mut mvm_vm, timeout_ms: c_int) -> c_int;
    pub fn mvm_console_read(vm: *mut mvm_vm, buf: *mut c_void, size: size_t, total: *mut u64) -> c_long;
    pub fn mvm_console_write(vm: *mut mvm_vm, data: *const c_void, len: size_t) -> c_long;

    // vsock.h
    pub fn mvm_vsock_new_tcp(host: *const c_char) -> *mut mvm_vsock;
    pub fn mvm_vsock_new_tcp_netns(netns_path: *const c_char, host: *const c_char) -> *mut mvm_vsock;
    pub fn mvm_vsock_set_secret(vs: *mut mvm_vsock, secret: *const c_char) -> c_int;
    pub fn mvm_vsock_free(vs: *mut mvm_vsock);
    pub fn mvm_vsock_connect(vs: *mut mvm_vsock, port: u32, timeout_ms: c_int) -> c_int;
    pub fn mvm_vsock_close_stream(fd: c_int);
    pub fn mvm_vsock_request(
        vs: *mut mvm_vsock,
        port: u32,
        req: *const c_void,
        req_len: size_t,
        resp: *mut *mut c_char,
        resp_len: *mut size_t,
        timeout_ms: c_int,
    ) -> c_int;
    pub fn mvm_vsock_listen(vs: *mut mvm_vsock, port: u32, cb: mvm_vsock_accept_cb, opaque: *mut c_void) -> c_int;
    pub fn mvm_vsock_unlisten(vs: *mut mvm_vsock, port: u32);

    // socks.h
    pub fn mvm_socks_config_init_sized(cfg: *mut mvm_socks_config, size: size_t);
    pub fn mvm_socks_new(cfg: *const mvm_socks_config, vs: *mut mvm_vsock) -> *mut mvm_socks;
    pub fn mvm_socks_start(s: *mut mvm_socks) -> c_int;
    pub fn mvm_socks_port(s: *mut mvm_socks) -> u16;
    pub fn mvm_socks_stats(s: *mut mvm_socks, st: *mut mvm_socks_stats);
    pub fn mvm_socks_stop(s: *mut mvm_socks);
    pub fn mvm_socks_free(s: *mut mvm_socks);
    pub fn mvm_socks_parse_listen(spec: *const c_char, addr: *mut c_char, addr_cap: size_t, port: *mut u16) -> c_int;
    pub fn mvm_socks_generate_secret(out: *mut c_char, cap: size_t) -> c_int;

    // manager.h
    pub fn mvm_manager_format_fault(
        buf: *mut c_char,
        len: size_t,
        guest_stopped: bool,
        reason: mvm_exit_reason,
        detail: *const c_char,
        agent_reachable: bool,
        vpn: *const mvm_vpn_info,
    );
    pub fn mvm_manager_config_init_sized(cfg: *mut mvm_manager_config, size: size_t);
    pub fn mvm_manager_new(cfg: *const mvm_manager_config) -> *mut mvm_manager;
    pub fn mvm_manager_start_vm(m: *mut mvm_manager) -> c_int;
    pub fn mvm_manager_attach(m: *mut mvm_manager, vs: *mut mvm_vsock) -> c_int;
    pub fn mvm_manager_stop_vm(m: *mut mvm_manager, timeout_ms: c_int) -> c_int;
    pub fn mvm_manager_get_status(m: *mut mvm_manager, st: *mut mvm_manager_status);
    pub fn mvm_manager_upload_profile(m: *mut mvm_manager, name: *const c_char, content: *const c_char) -> c_int;
    pub fn mvm_manager_vpn_connect(
        m: *mut mvm_manager,
        name: *const c_char,
        content: *const c_char,
        username: *const c_char,
        password: *const c_char,
        info: *mut mvm_vpn_info,
    ) -> c_int;
    pub fn mvm_manager_vpn_disconnect(m: *mut mvm_manager) -> c_int;
    pub fn mvm_manager_vpn_status(m: *mut mvm_manager, info: *mut mvm_vpn_info) -> c_int;
    pub fn mvm_manager_check_webauth(m: *mut mvm_manager, info: *mut mvm_vpn_info) -> c_int;
    pub fn mvm_manager_list_profiles(m: *mut mvm_manager, names: *mut *mut *mut c_char, count: *mut size_t) -> c_int;
    pub fn mvm_manager_free_list(names: *mut *mut c_char, count: size_t);
    pub fn mvm_manager_socks_credentials(m: *mut mvm_manager, user: *mut c_char, pass: *mut c_char);
    pub fn mvm_manager_console_subscribe(m: *mut mvm_manager, cb: mvm_console_cb, opaque: *mut c_void) -> c_int;
    pub fn mvm_manager_console_write(m: *mut mvm_manager, data: *const c_void, len: size_t) -> c_long;
    pub fn mvm_manager_console_read(m: *mut mvm_manager, buf: *mut c_void, size: size_t, total: *mut u64) -> c_long;
    pub fn mvm_manager_console_unsubscribe(m: *mut mvm_manager, id: c_int);
    pub fn mvm_manager_free(m: *mut mvm_manager);
    pub fn mvm_vpn_state_name(state: mvm_vpn_state) -> *const c_char;
}
