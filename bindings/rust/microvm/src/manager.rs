//! VpnManager: the VPN appliance (mvm_manager_*), as `microvm up` runs it.
//!
//! The manager starts the VM (or box), waits for the agent, runs the SOCKS5 proxy on the
//! host, and speaks the agent's control protocol: profiles, connect with credentials or web
//! authentication, status.  Every call is a blocking C call run on tokio's blocking pool;
//! the C manager is thread-safe (src/manager/manager.c, "Locking").  The SOCKS5 proxy is the
//! C library's (libuv), so nothing here needs tokio's network reactor: the same code, API
//! and errors on Linux and on Windows (WSL2 backend), where Debian's tokio has no reactor.

use std::ffi::CString;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::sync::Arc;

use microvm_sys as sys;

use crate::{call_error, carray, cstr, last_error, to_c, wipe, Backend, Error, Result};

/// How the appliance runs.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub backend: Backend,
    /// Guest kernel (VM backends; `None`: the default one).
    pub kernel_path: Option<PathBuf>,
    /// Root file system (namespace / WSL2 backends).  `None`: on Linux the image `make
    /// image` cached for the library's build; on Windows `rootfs.tar.gz` next to the
    /// program (the Windows package puts it beside microvm.exe).
    pub rootfs_path: Option<PathBuf>,
    pub memory_mb: u32,
    /// Run the SOCKS5 proxy.
    pub socks: bool,
    /// Its listen address and port (127.0.0.1:1080; port 0 picks a free one).
    pub socks_addr: String,
    pub socks_port: u16,
    /// Require SOCKS authentication with a generated password (see
    /// [`VpnManager::socks_credentials`]).
    pub socks_generate_secret: bool,
    /// How long start_vm waits for the agent, in milliseconds.
    pub boot_timeout_ms: i32,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            backend: Backend::Auto,
            kernel_path: None,
            rootfs_path: None,
            memory_mb: 512,
            socks: true,
            socks_addr: "127.0.0.1".into(),
            socks_port: 1080,
            socks_generate_secret: false,
            boot_timeout_ms: 60_000,
        }
    }
}

/// The VPN's state as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpnState {
    Unknown,
    Disconnected,
    Connecting,
    /// Waiting for the user to finish web authentication at [`VpnInfo::auth_url`].
    WebAuth,
    Connected,
    Error,
}

/// The VPN, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnInfo {
    pub state: VpnState,
    pub tun_ip: String,
    pub auth_url: String,
    pub profile: String,
    pub error: String,
}

/// Everything `status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerStatus {
    pub vm_running: bool,
    pub hypervisor: String,
    pub agent_reachable: bool,
    pub vpn: VpnInfo,
    pub socks_running: bool,
    pub socks_addr: String,
    pub socks_port: u16,
    pub socks_auth: bool,
    pub last_error: String,
    /// Why the guest side is not working right now ("" when it is).
    pub fault: String,
}

fn vpn_info(i: &sys::mvm_vpn_info) -> VpnInfo {
    VpnInfo {
        state: match i.state {
            sys::MVM_VPN_DISCONNECTED => VpnState::Disconnected,
            sys::MVM_VPN_CONNECTING => VpnState::Connecting,
            sys::MVM_VPN_WEBAUTH => VpnState::WebAuth,
            sys::MVM_VPN_CONNECTED => VpnState::Connected,
            sys::MVM_VPN_ERROR => VpnState::Error,
            _ => VpnState::Unknown,
        },
        tun_ip: carray(&i.tun_ip),
        auth_url: carray(&i.auth_url),
        profile: carray(&i.profile),
        error: carray(&i.error),
    }
}

struct Inner {
    m: *mut sys::mvm_manager,
    // strings handed to the C config, kept for the manager's life
    _strings: Vec<CString>,
}

// SAFETY: the C manager is thread-safe; the pointer is freed once, in Drop.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: stops everything and frees the manager.
        unsafe { sys::mvm_manager_free(self.m) }
    }
}

/// The VPN appliance.
#[derive(Clone)]
pub struct VpnManager {
    inner: Arc<Inner>,
}

impl VpnManager {
    /// A manager; nothing runs until [`VpnManager::start_vm`].
    pub fn new(config: &ManagerConfig) -> Result<VpnManager> {
        let mut strings = Vec::new();
        let path = |p: &Option<PathBuf>, what: &str, strings: &mut Vec<CString>| -> Result<*const c_char> {
            match p {
                None => Ok(std::ptr::null()),
                Some(p) => {
                    let s = p.to_str().ok_or_else(|| Error::Invalid(format!("{} is not UTF-8", what)))?;
                    let c = to_c(s, what)?;
                    let ptr = c.as_ptr();
                    strings.push(c);
                    Ok(ptr)
                }
            }
        };
        let kernel = path(&config.kernel_path, "kernel_path", &mut strings)?;
        let rootfs = path(&config.rootfs_path, "rootfs_path", &mut strings)?;
        let addr = to_c(&config.socks_addr, "socks_addr")?;
        // SAFETY: the *_init() functions fill every field; the strings live in `strings`,
        // `vm` and `socks` until mvm_manager_new returns, which copies all of them.
        let m = unsafe {
            let mut vm = sys::mvm_config_init();
            vm.backend = config.backend.to_c();
            vm.kernel_path = kernel;
            vm.rootfs_path = rootfs;
            vm.mem_mib = config.memory_mb;
            vm.quiet = true;
            let mut socks = sys::mvm_socks_config_init();
            socks.addr = addr.as_ptr();
            socks.port = config.socks_port;
            let mut cfg = sys::mvm_manager_config_init();
            cfg.vm = &vm;
            cfg.socks = &socks;
            cfg.no_socks = !config.socks;
            cfg.socks_generate_secret = config.socks_generate_secret;
            cfg.boot_timeout_ms = config.boot_timeout_ms;
            sys::mvm_manager_new(&cfg)
        };
        strings.push(addr);
        if m.is_null() {
            return Err(Error::Call { errno: libc::EINVAL, msg: last_error() });
        }
        Ok(VpnManager { inner: Arc::new(Inner { m, _strings: strings }) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(*mut sys::mvm_manager) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(inner.m))
            .await
            .unwrap_or_else(|e| Err(Error::Invalid(format!("manager task: {}", e))))
    }

    /// Create and start the VM, wait for the agent, start the SOCKS5 proxy.
    pub async fn start_vm(&self) -> Result<()> {
        self.run(|m| check(unsafe { sys::mvm_manager_start_vm(m) }, "start_vm")).await
    }

    /// Stop the proxy, shut the agent down, stop the VM (killed after `timeout_ms`).
    pub async fn stop_vm(&self, timeout_ms: i32) -> Result<()> {
        self.run(move |m| check(unsafe { sys::mvm_manager_stop_vm(m, timeout_ms) }, "stop_vm")).await
    }

    /// Ping the agent, ask the VPN state.
    pub async fn status(&self) -> ManagerStatus {
        self.run(|m| {
            // SAFETY: the struct is plain data; get_status fills it.
            let st = unsafe {
                let mut st = std::mem::MaybeUninit::<sys::mvm_manager_status>::zeroed();
                sys::mvm_manager_get_status(m, st.as_mut_ptr());
                st.assume_init()
            };
            Ok(ManagerStatus {
                vm_running: st.vm_running,
                hypervisor: carray(&st.hypervisor),
                agent_reachable: st.agent_reachable,
                vpn: vpn_info(&st.vpn),
                socks_running: st.socks_running,
                socks_addr: carray(&st.socks_addr),
                socks_port: st.socks_port,
                socks_auth: st.socks_auth,
                last_error: carray(&st.last_error),
                fault: carray(&st.fault),
            })
        })
        .await
        .expect("status cannot fail")
    }

    /// Store an OpenVPN profile in the guest under `name` ("corp.ovpn").
    pub async fn upload_profile(&self, name: &str, content: &str) -> Result<()> {
        let (n, c) = (to_c(name, "name")?, to_c(content, "profile")?);
        self.run(move |m| check(unsafe { sys::mvm_manager_upload_profile(m, n.as_ptr(), c.as_ptr()) }, "upload"))
            .await
    }

    /// The profile names stored in the guest.
    pub async fn list_profiles(&self) -> Result<Vec<String>> {
        self.run(|m| {
            let mut names: *mut *mut c_char = std::ptr::null_mut();
            let mut count = 0usize;
            // SAFETY: on success names holds count malloc'd strings, freed below.
            let ret = unsafe { sys::mvm_manager_list_profiles(m, &mut names, &mut count) };
            if ret < 0 {
                return Err(call_error(ret, "list_profiles"));
            }
            let out = (0..count).map(|i| unsafe { cstr(*names.add(i)) }).collect();
            unsafe { sys::mvm_manager_free_list(names, count) };
            Ok(out)
        })
        .await
    }

    /// Start profile `name` (uploading `content` first when given) with optional
    /// credentials; the result says connected, web authentication required (with the URL)
    /// or the agent's error.
    pub async fn vpn_connect(
        &self,
        name: &str,
        content: Option<&str>,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<VpnInfo> {
        let n = to_c(name, "name")?;
        let c = content.map(|s| to_c(s, "profile")).transpose()?;
        let u = username.map(|s| to_c(s, "username")).transpose()?;
        let p = password.map(|s| to_c(s, "password").map(WipedCString)).transpose()?;
        self.run(move |m| {
            let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
            let pw = p.as_ref().map_or(std::ptr::null(), |p| p.0.as_ptr());
            // SAFETY: plain data filled by the call; the strings outlive it.
            let mut info = unsafe { std::mem::zeroed::<sys::mvm_vpn_info>() };
            let ret = unsafe {
                sys::mvm_manager_vpn_connect(m, n.as_ptr(), ptr(&c), ptr(&u), pw, &mut info)
            };
            check(ret, "vpn_connect")?;
            Ok(vpn_info(&info))
        })
        .await
    }

    /// Stop OpenVPN.
    pub async fn vpn_disconnect(&self) -> Result<()> {
        self.run(|m| check(unsafe { sys::mvm_manager_vpn_disconnect(m) }, "vpn_disconnect")).await
    }

    /// Ask the agent for the VPN state.
    pub async fn vpn_status(&self) -> Result<VpnInfo> {
        self.info_call(sys::mvm_manager_vpn_status, "vpn_status").await
    }

    /// Has the web authentication completed?  (Poll after `vpn_connect` said WebAuth.)
    pub async fn check_webauth(&self) -> Result<VpnInfo> {
        self.info_call(sys::mvm_manager_check_webauth, "check_webauth").await
    }

    /// A manager call that fills a `mvm_vpn_info`.
    async fn info_call(
        &self,
        f: unsafe extern "C" fn(*mut sys::mvm_manager, *mut sys::mvm_vpn_info) -> i32,
        what: &'static str,
    ) -> Result<VpnInfo> {
        self.run(move |m| {
            // SAFETY: plain data, filled by the call.
            let mut info = unsafe { std::mem::zeroed::<sys::mvm_vpn_info>() };
            check(unsafe { f(m, &mut info) }, what)?;
            Ok(vpn_info(&info))
        })
        .await
    }

    /// The SOCKS5 username and password in force (empty strings without authentication).
    pub fn socks_credentials(&self) -> (String, String) {
        let mut user = [0 as c_char; 256];
        let mut pass = [0 as c_char; 256];
        // SAFETY: two buffers of 256 bytes, as the call requires.
        unsafe { sys::mvm_manager_socks_credentials(self.inner.m, user.as_mut_ptr(), pass.as_mut_ptr()) };
        let out = (carray(&user), carray(&pass));
        // the password should not linger on the stack
        // SAFETY: c_char and u8 have the same size and alignment.
        wipe(unsafe { std::slice::from_raw_parts_mut(pass.as_mut_ptr().cast::<u8>(), pass.len()) });
        out
    }
}

/// The copy of a password handed to the C side, wiped ([`wipe`]) when dropped, on every
/// path: after the call, on an error, or unused when the task never ran.
struct WipedCString(CString);

impl Drop for WipedCString {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes_with_nul();
        wipe(&mut bytes);
    }
}

fn check(ret: i32, what: &str) -> Result<()> {
    if ret < 0 {
        Err(call_error(ret, what))
    } else {
        Ok(())
    }
}
