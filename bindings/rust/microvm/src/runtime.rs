//! VmRuntime / RuntimeHandle: the microvm-rs lifecycle over mvm_vm_*.
//!
//! `VmRuntime::new` creates the VM (nothing runs yet) and hands out its vsock client at once;
//! `spawn` starts the guest and wires the console channels; the handle stops it.  The C VM
//! lives in an `Arc<Vm>` shared by the runtime, the handle, every `VsockClient` and the
//! console-input thread, and is destroyed when the last of them goes (so a client never
//! outlives the VM it talks to).

use std::ffi::CString;
use std::os::raw::c_void;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use microvm_sys as sys;

use crate::{call_error, cstr, last_error, to_c, Error, Result, VsockClient};

/// How long `shutdown` lets the guest power off before killing it.
const SHUTDOWN_TIMEOUT_MS: i32 = 10_000;

/// What to boot: the fields of microvm-rs's `RuntimeConfig`.
///
/// `kernel_path` may be empty: the namespace and WSL2 backends need no kernel, and the VM
/// backend then uses the default guest kernel (the cache of `make kernel`, then
/// `$datadir/microvm/`).
#[derive(Debug)]
pub struct RuntimeConfig {
    /// Guest memory in MiB (512 by default).
    pub memory_mb: u32,
    /// vmlinux or bzImage (VM backends).
    pub kernel_path: PathBuf,
    /// initramfs.
    pub initrd_path: Option<PathBuf>,
    /// Kernel command line; the runtime appends its own device arguments.
    pub cmdline: String,
    /// vsock context id of the guest (3 when `None`).
    pub guest_cid: Option<u32>,
    /// Receives the guest's console output.  Bytes that do not fit the channel are dropped.
    pub console_tx: Option<mpsc::Sender<Vec<u8>>>,
    /// What is sent here is typed into the guest's console.
    pub console_rx: Option<mpsc::Receiver<Vec<u8>>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_mb: 512,
            kernel_path: PathBuf::new(),
            initrd_path: None,
            cmdline: String::new(),
            guest_cid: None,
            console_tx: None,
            console_rx: None,
        }
    }
}

/// Which backend runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The first backend that can run here: on Linux KVM when it can run the guest, else
    /// the namespace box; on Windows WSL2.
    Auto,
    Kvm,
    /// Linux namespaces: the guest's programs run in a box on the host kernel.
    Nsbox,
    Wsl,
}

/// A backend by the name `microvm up --backend` takes ("auto", "kvm", "nsbox", "wsl"), so an
/// app's configuration and the CLI spell it the same way.  Any other name is refused with it
/// in the error.
impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Backend, String> {
        match name {
            "auto" => Ok(Backend::Auto),
            "kvm" => Ok(Backend::Kvm),
            "nsbox" => Ok(Backend::Nsbox),
            "wsl" => Ok(Backend::Wsl),
            _ => Err(format!("unknown backend '{}' (auto, kvm, nsbox or wsl)", name)),
        }
    }
}

impl Backend {
    pub(crate) fn to_c(self) -> sys::mvm_backend_kind {
        match self {
            Backend::Auto => sys::MVM_BACKEND_AUTO,
            Backend::Kvm => sys::MVM_BACKEND_KVM,
            Backend::Nsbox => sys::MVM_BACKEND_NSBOX,
            Backend::Wsl => sys::MVM_BACKEND_WSL,
        }
    }
}

/// What microvm-rs's `RuntimeConfig` has no field for (libmicrovm's extra knobs).
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub backend: Backend,
    /// Root file system for the namespace / WSL2 backends.  `None`: on Linux the image
    /// `make image` cached for the library's build; on Windows `rootfs.tar.gz` next to the
    /// program.
    pub rootfs_path: Option<PathBuf>,
    pub cpus: u32,
    /// User-mode networking (libslirp) for VM backends.
    pub net: bool,
    /// No notices on stderr.
    pub quiet: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { backend: Backend::Auto, rootfs_path: None, cpus: 1, net: false, quiet: true }
    }
}

/// The console subscription: the sender lives here, its address is the C callback's opaque.
struct ConsoleSink {
    tx: mpsc::Sender<Vec<u8>>,
}

/// The C VM; destroyed when the last Arc goes.
pub(crate) struct Vm {
    pub(crate) ptr: *mut sys::mvm_vm,
    console: Mutex<Option<(i32, Box<ConsoleSink>)>>,
}

// SAFETY: libmicrovm's VM functions are thread-safe (include/microvm/runtime.h); the pointer
// is only freed in Drop, when nobody else holds it.
unsafe impl Send for Vm {}
unsafe impl Sync for Vm {}

impl Drop for Vm {
    fn drop(&mut self) {
        // SAFETY: unsubscribe first: no callback runs after it returns, then the sink can go.
        unsafe {
            if let Some((id, _sink)) = self.console.lock().unwrap().take() {
                sys::mvm_console_unsubscribe(self.ptr, id);
            }
            sys::mvm_vm_free(self.ptr);
        }
    }
}

/// Called on a libmicrovm thread with console output: hand it on, never block.
unsafe extern "C" fn console_cb(opaque: *mut c_void, data: *const u8, len: usize, _lost: u64) {
    let sink = &*(opaque as *const ConsoleSink);
    let bytes = std::slice::from_raw_parts(data, len).to_vec();
    let _ = sink.tx.try_send(bytes);
}

/// A created VM, not started yet.
pub struct VmRuntime {
    vm: Arc<Vm>,
    console_tx: Option<mpsc::Sender<Vec<u8>>>,
    console_rx: Option<mpsc::Receiver<Vec<u8>>>,
}

impl VmRuntime {
    /// Create the VM and its vsock client, with the default options (automatic backend).
    pub fn new(config: RuntimeConfig) -> Result<(VmRuntime, VsockClient)> {
        Self::with_options(config, RuntimeOptions::default())
    }

    /// Create the VM with libmicrovm's extra options (backend, rootfs, vCPUs, networking).
    pub fn with_options(config: RuntimeConfig, opts: RuntimeOptions) -> Result<(VmRuntime, VsockClient)> {
        let path_c = |p: &PathBuf, what: &str| -> Result<Option<CString>> {
            if p.as_os_str().is_empty() {
                return Ok(None);
            }
            let s = p.to_str().ok_or_else(|| Error::Invalid(format!("{} is not UTF-8", what)))?;
            to_c(s, what).map(Some)
        };
        let kernel = path_c(&config.kernel_path, "kernel_path")?;
        let initrd = match &config.initrd_path {
            Some(p) => path_c(p, "initrd_path")?,
            None => None,
        };
        let rootfs = match &opts.rootfs_path {
            Some(p) => path_c(p, "rootfs_path")?,
            None => None,
        };
        let cmdline = if config.cmdline.is_empty() { None } else { Some(to_c(&config.cmdline, "cmdline")?) };
        let opt_ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());

        // SAFETY: mvm_config_init fills every field (and the size); the strings outlive
        // mvm_vm_new, which copies what it keeps.
        let vm = unsafe {
            let mut cfg = sys::mvm_config_init();
            cfg.backend = opts.backend.to_c();
            cfg.kernel_path = opt_ptr(&kernel);
            cfg.initrd_path = opt_ptr(&initrd);
            cfg.cmdline = opt_ptr(&cmdline);
            cfg.rootfs_path = opt_ptr(&rootfs);
            cfg.mem_mib = config.memory_mb;
            cfg.cpus = opts.cpus;
            if let Some(cid) = config.guest_cid {
                cfg.guest_cid = cid;
            }
            cfg.net = opts.net;
            cfg.quiet = opts.quiet;
            sys::mvm_vm_new(&cfg)
        };
        if vm.is_null() {
            return Err(Error::Call { errno: libc::EINVAL, msg: last_error() });
        }
        let vm = Arc::new(Vm { ptr: vm, console: Mutex::new(None) });
        let client = VsockClient::of_vm(vm.clone())?;
        Ok((VmRuntime { vm, console_tx: config.console_tx, console_rx: config.console_rx }, client))
    }

    /// Start the guest; the handle stops it.  A failed start leaves the handle not running,
    /// with the reason in [`RuntimeHandle::start_error`].
    pub fn spawn(self) -> RuntimeHandle {
        let vm = self.vm;
        let mut start_error = None;
        if let Some(tx) = self.console_tx {
            let sink = Box::new(ConsoleSink { tx });
            let opaque = &*sink as *const ConsoleSink as *mut c_void;
            // SAFETY: the sink is kept in the Vm until after unsubscribe (Vm::drop).
            let id = unsafe { sys::mvm_console_subscribe(vm.ptr, Some(console_cb), opaque) };
            if id >= 0 {
                *vm.console.lock().unwrap() = Some((id, sink));
            } else {
                start_error = Some(call_error(id, "console subscribe"));
            }
        }
        // SAFETY: a created VM.
        let ret = unsafe { sys::mvm_vm_start(vm.ptr) };
        if ret < 0 {
            start_error = Some(call_error(ret, "start"));
        } else if let Some(mut rx) = self.console_rx {
            let input_vm = vm.clone();
            std::thread::spawn(move || {
                while let Some(bytes) = rx.blocking_recv() {
                    // SAFETY: the Arc keeps the VM alive.
                    let n = unsafe {
                        sys::mvm_console_write(input_vm.ptr, bytes.as_ptr() as *const c_void, bytes.len())
                    };
                    if n < 0 {
                        break;
                    }
                }
            });
        }
        RuntimeHandle { vm, start_error }
    }
}

/// Bytes of the most recent console output a VM keeps: the most a [`ConsoleSnapshot`] holds.
pub const CONSOLE_KEPT: usize = sys::MVM_CONSOLE_KEPT;

/// What the guest's console holds at one moment ([`RuntimeHandle::console_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSnapshot {
    /// The most recent console output, oldest byte first: at most [`CONSOLE_KEPT`] bytes.
    pub bytes: Vec<u8>,
    /// Bytes the guest has written to the console since the VM was made; more than
    /// `bytes.len()` once older output was dropped.
    pub total: u64,
}

/// A started guest.
pub struct RuntimeHandle {
    vm: Arc<Vm>,
    start_error: Option<Error>,
}

impl RuntimeHandle {
    /// Ask the guest to power off; kill it when it has not after 10 s.
    pub async fn shutdown(&self) -> Result<()> {
        self.blocking(|p| unsafe { sys::mvm_vm_stop(p, SHUTDOWN_TIMEOUT_MS) }, "shutdown").await
    }

    /// Stop the guest now.
    pub async fn kill(&self) -> Result<()> {
        self.blocking(|p| unsafe { sys::mvm_vm_kill(p) }, "kill").await
    }

    /// Whether the guest runs (started and not stopped).
    pub fn is_running(&self) -> bool {
        // SAFETY: the Arc keeps the VM alive.
        let st = unsafe { sys::mvm_vm_state(self.vm.ptr) };
        st == sys::MVM_STATE_RUNNING || st == sys::MVM_STATE_STOPPING
    }

    /// Why `spawn` could not start the guest, if it could not.
    pub fn start_error(&self) -> Option<&Error> {
        self.start_error.as_ref()
    }

    /// "KVM", "nsbox", "WSL2", "HVF": the backend running this guest.
    pub fn hypervisor(&self) -> String {
        // SAFETY: a string valid while the VM lives.
        unsafe { cstr(sys::mvm_vm_hypervisor(self.vm.ptr)) }
    }

    /// What the console holds now (its last [`CONSOLE_KEPT`] bytes), without subscribing:
    /// for a look at the boot messages when `RuntimeConfig::console_tx` was not set, or
    /// after a stop.  One step under the console's lock (`mvm_console_read()`): output
    /// arriving meanwhile is wholly in or wholly out; it never waits for the guest.
    pub fn console_snapshot(&self) -> Result<ConsoleSnapshot> {
        let mut bytes = vec![0u8; CONSOLE_KEPT];
        let mut total = 0u64;
        // SAFETY: the Arc keeps the VM alive; the buffer holds CONSOLE_KEPT bytes.
        let n = unsafe {
            sys::mvm_console_read(self.vm.ptr, bytes.as_mut_ptr() as *mut c_void, bytes.len(), &mut total)
        };
        if n < 0 {
            return Err(call_error(n as i32, "console snapshot"));
        }
        bytes.truncate(n as usize);
        Ok(ConsoleSnapshot { bytes, total })
    }

    /// Why the guest stopped ("poweroff", "killed", ...) with the backend's detail, or
    /// `None` while it runs.
    pub fn exit_reason(&self) -> Option<String> {
        let mut reason: sys::mvm_exit_reason = sys::MVM_EXIT_NONE;
        // SAFETY: a zero timeout only polls.
        if unsafe { sys::mvm_vm_wait(self.vm.ptr, 0, &mut reason) } < 0 {
            return None;
        }
        let name = unsafe { cstr(sys::mvm_exit_reason_name(reason)) };
        let detail = unsafe { cstr(sys::mvm_vm_exit_detail(self.vm.ptr)) };
        Some(if detail.is_empty() { name } else { format!("{}: {}", name, detail) })
    }

    async fn blocking(&self, f: fn(*mut sys::mvm_vm) -> i32, what: &'static str) -> Result<()> {
        let vm = self.vm.clone();
        let r = tokio::task::spawn_blocking(move || {
            let ret = f(vm.ptr);
            if ret < 0 {
                Err(call_error(ret, what))
            } else {
                Ok(())
            }
        })
        .await;
        r.unwrap_or_else(|e| Err(Error::Invalid(format!("{}: {}", what, e))))
    }
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn backend_names_are_the_cli_ones() {
        for (name, b) in [("auto", Backend::Auto), ("kvm", Backend::Kvm), ("nsbox", Backend::Nsbox),
                          ("wsl", Backend::Wsl)] {
            assert_eq!(name.parse::<Backend>(), Ok(b));
        }
        let err = "hvf".parse::<Backend>().unwrap_err();
        assert!(err.contains("'hvf'") && err.contains("nsbox"), "{}", err);
    }
}
