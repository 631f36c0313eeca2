//! microvm - the safe Rust API of libmicrovm.
//!
//! Two layers, both over the C library (`microvm-sys`):
//!
//! - the API of microvm-rs, names and signatures, so that an application written against it
//!   switches its dependency and keeps its code: [`RuntimeConfig`], [`VmRuntime::new`] giving
//!   the runtime and its [`VsockClient`], [`VmRuntime::spawn`] giving a [`RuntimeHandle`]
//!   (`shutdown`, `kill`, `is_running`), [`VsockClient::request`] / [`VsockClient::connect`],
//!   [`VsockConnection`] (`send`, `recv`, `close`), [`backend_name`], [`is_supported`];
//!   beyond it, [`RuntimeHandle::console_snapshot`] (what the console holds now);
//! - [`VpnManager`], the VPN appliance of `microvm up`: start/stop the VM, status, profiles,
//!   connect (with a password, or web authentication), the SOCKS5 proxy (crate feature
//!   `manager`, on by default, on Linux and Windows alike).
//!
//! Threads: the async functions run the blocking C calls on tokio's blocking pool
//! (`spawn_blocking`), so they need a tokio runtime; the console callback runs on a
//! libmicrovm thread and only does a `try_send` (a full channel loses bytes, the guest never
//! waits).  docs/library.md has the quick start and the C side's rules.

#[cfg(feature = "manager")]
mod manager;
mod runtime;
mod vsock;

#[cfg(feature = "manager")]
pub use manager::{ManagerConfig, ManagerStatus, VpnInfo, VpnManager, VpnState};
pub use runtime::{Backend, ConsoleSnapshot, RuntimeConfig, RuntimeHandle, RuntimeOptions, VmRuntime, CONSOLE_KEPT};
pub use vsock::{VsockClient, VsockConnection};

use std::ffi::CStr;
use std::os::raw::c_char;

/// What can go wrong in libmicrovm; the text is the library's (`mvm_last_error()`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A libmicrovm call failed: the negative errno and the library's explanation.
    #[error("{msg}")]
    Call { errno: i32, msg: String },
    /// Bad input from the caller (a NUL byte in a path, ...).
    #[error("{0}")]
    Invalid(String),
}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The library's explanation of the last failure on this thread.
pub(crate) fn last_error() -> String {
    // SAFETY: mvm_last_error() always returns a NUL-terminated thread-local string.
    unsafe { cstr(microvm_sys::mvm_last_error()) }
}

/// An error from a negative return value, with the library's text (or strerror's).
pub(crate) fn call_error(ret: i32, what: &str) -> Error {
    let mut msg = last_error();
    if msg.is_empty() {
        msg = errno_message(what, -ret);
    }
    Error::Call { errno: -ret, msg }
}

/// "WHAT: TEXT (errno N)", TEXT the C runtime's `strerror(errno)`: the library returns the
/// C runtime's errno values on every OS (on Windows compat_win.c maps Winsock's codes to
/// them), which are not Win32 error codes, so not `std::io::Error::from_raw_os_error`'s
/// (there ENOTCONN, 126, would read "The specified module could not be found").  The number
/// stays in the text: the Windows CRT knows no words for the POSIX codes above 42.
pub(crate) fn errno_message(what: &str, errno: i32) -> String {
    // SAFETY: strerror returns a NUL-terminated string (static, or this thread's buffer for
    // an unknown code), copied at once.
    let text = unsafe { cstr(libc::strerror(errno)) };
    format!("{}: {} (errno {})", what, text, errno)
}

/// Overwrite a secret (a password) with zeros before its memory is freed: volatile writes,
/// which the compiler may not drop as dead stores.  The crate wipes the passwords it copies
/// (`VpnManager::vpn_connect`, `VpnManager::socks_credentials`); an application can wipe
/// its own the same way (examples/app_flow.rs).
pub fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: a valid, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// [`wipe`] a String's bytes, then empty it (its allocation stays, zeroed).
pub fn wipe_string(s: &mut String) {
    // SAFETY: zero bytes are valid UTF-8, so the String stays valid throughout.
    wipe(unsafe { s.as_bytes_mut() });
    s.clear();
}

/// Copy a C string (NULL: "").
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub(crate) unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

/// A C string from a char array field (up to its first NUL).
#[cfg(feature = "manager")]
pub(crate) fn carray(a: &[c_char]) -> String {
    let bytes: Vec<u8> = a.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    // valid UTF-8 (always, for a password) becomes the String without a second copy; the
    // lossy copy of anything else leaves the original bytes wiped, not just freed
    String::from_utf8(bytes).unwrap_or_else(|e| {
        let mut raw = e.into_bytes();
        let s = String::from_utf8_lossy(&raw).into_owned();
        wipe(&mut raw);
        s
    })
}

/// A CString for the C side, or Error::Invalid when `s` holds a NUL byte.
pub(crate) fn to_c(s: &str, what: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error::Invalid(format!("{} contains a NUL byte", what)))
}

/// The version of the libmicrovm in use ("0.1.0").
pub fn version() -> String {
    // SAFETY: a static string.
    unsafe { cstr(microvm_sys::mvm_version()) }
}

/// The backend an automatic choice would use here: "KVM", "nsbox", "WSL2", "HVF"; "none"
/// when nothing can run.
pub fn backend_name() -> &'static str {
    // SAFETY: NULL or a static string of the library.
    let p = unsafe { microvm_sys::mvm_backend_default() };
    if p.is_null() {
        return "none";
    }
    match unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("none") {
        "KVM" => "KVM",
        "nsbox" => "nsbox",
        "WSL2" => "WSL2",
        "HVF" => "HVF",
        _ => "unknown",
    }
}

/// Whether any backend can run a guest on this machine.
pub fn is_supported() -> bool {
    // SAFETY: no arguments; NULL or a static string.
    !unsafe { microvm_sys::mvm_backend_default() }.is_null()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of an errno value is the C runtime's on every OS, not a Win32 error's: the
    /// same words on Linux and under Wine (Win32's 2, 13 and 22 would read "The system cannot
    /// find the file specified.", "The data is invalid.", "The parameter is incorrect.").
    #[test]
    fn errno_message_is_the_c_runtimes() {
        assert_eq!(errno_message("open", libc::ENOENT), "open: No such file or directory (errno 2)");
        assert_eq!(errno_message("x", libc::EACCES), "x: Permission denied (errno 13)");
        assert_eq!(errno_message("x", libc::EINVAL), "x: Invalid argument (errno 22)");
        // ENOTCONN: 107 on Linux, 126 in the Windows CRT (Win32's 126 is "The specified
        // module could not be found.")
        let m = errno_message("vpn_status", libc::ENOTCONN);
        assert!(m.starts_with("vpn_status: ") && m.ends_with(&format!(" (errno {})", libc::ENOTCONN)), "{}", m);
        assert!(!m.contains("module"), "{}", m);
        #[cfg(unix)]
        assert_eq!(m, "vpn_status: Transport endpoint is not connected (errno 107)");
    }

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut b = *b"secret";
        wipe(&mut b);
        assert_eq!(b, [0u8; 6]);
        let mut s = String::from("pa ss\"w\\rd");
        let (ptr, len) = (s.as_ptr(), s.len());
        wipe_string(&mut s);
        assert!(s.is_empty());
        // the same allocation, still owned by `s`: its old bytes are zeros now
        // SAFETY: `s` keeps its buffer (clear() frees nothing) of at least `len` bytes.
        let old = unsafe { std::slice::from_raw_parts(ptr, len) };
        assert!(old.iter().all(|&c| c == 0), "{:?}", old);
    }
}
