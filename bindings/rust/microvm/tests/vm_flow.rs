//! The microvm-rs flow on this machine, on the namespace backend: create the VM and its
//! client, spawn, ping the agent on port 1025 through `VsockClient::request`, talk to it over
//! a `VsockConnection`, see the console (its channel and a snapshot), shut down.  Then the
//! same through `VpnManager`.
//!
//! Needs root (the box's namespaces) and the guest image's rootfs: MICROVM_ROOTFS (`make
//! rust` sets it), else guest/image/build.sh's for the build in MICROVM_BUILD.  Linux only:
//! the Windows flows are examples/runtime_flow.rs and examples/app_flow.rs (VpnManager) on
//! WSL2 under Wine (docs/windows.md, "The Rust crates on Windows").
#![cfg(all(unix, feature = "manager"))]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use microvm::{Backend, ManagerConfig, RuntimeConfig, RuntimeOptions, VmRuntime, VpnManager, VpnState};
use tokio::sync::mpsc;

fn require_root() {
    // SAFETY: plain getter.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root: the namespace box");
}

/// The image of this tree's build: MICROVM_ROOTFS, else what guest/image/build.sh gives
/// (cached by its inputs; built once when missing).  Not just the newest image in the cache:
/// that may hold another tree's agent.
fn rootfs() -> Option<PathBuf> {
    static ROOTFS: Mutex<Option<PathBuf>> = Mutex::new(None);
    if let Some(p) = std::env::var_os("MICROVM_ROOTFS") {
        return Some(PathBuf::from(p));
    }
    let mut cached = ROOTFS.lock().unwrap();
    if cached.is_none() {
        let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let out = Command::new("sh").arg(top.join("guest/image/build.sh")).output().expect("sh");
        assert!(out.status.success(), "guest/image/build.sh: {}", String::from_utf8_lossy(&out.stderr));
        let dir = String::from_utf8(out.stdout).unwrap().lines().last().expect("image dir").to_string();
        *cached = Some(PathBuf::from(dir).join("rootfs.tar.gz"));
    }
    cached.clone()
}

async fn ping_until_up(client: &microvm::VsockClient) -> Vec<u8> {
    let mut last = String::new();
    for _ in 0..200 {
        match client.request(1025, br#"{"cmd":"ping"}"#).await {
            Ok(r) => return r,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the agent never answered a ping: {}", last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_runtime_flow() {
    require_root();
    assert!(microvm::is_supported());
    assert_ne!(microvm::backend_name(), "none");
    assert_eq!(RuntimeConfig::default().memory_mb, 512);

    let (console_tx, mut console_out) = mpsc::channel::<Vec<u8>>(1024);
    let (_console_in, console_rx) = mpsc::channel::<Vec<u8>>(16);
    let config = RuntimeConfig {
        memory_mb: 512,
        kernel_path: PathBuf::new(),
        initrd_path: None,
        cmdline: String::new(),
        guest_cid: Some(3),
        console_tx: Some(console_tx),
        console_rx: Some(console_rx),
    };
    let opts = RuntimeOptions { backend: Backend::Nsbox, rootfs_path: rootfs(), ..Default::default() };
    let (runtime, client) = VmRuntime::with_options(config, opts).expect("create");
    let handle = runtime.spawn();
    assert!(handle.start_error().is_none(), "{:?}", handle.start_error());
    assert!(handle.is_running());
    assert_eq!(handle.hypervisor(), "nsbox");

    // the app's health check
    let pong = String::from_utf8(ping_until_up(&client).await).unwrap();
    assert!(pong.contains("\"status\""), "{}", pong);
    assert!(pong.contains("pong"), "{}", pong);
    assert!(!pong.ends_with('\n'));

    // the console snapshot holds the agent's start-up line (the box's console is read on a
    // thread of its own: the line may land a moment after the agent answers)
    let start_line = b"microvm-agent: listening";
    let mut snap = handle.console_snapshot().expect("console snapshot");
    for _ in 0..100 {
        if contains(&snap.bytes, start_line) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        snap = handle.console_snapshot().expect("console snapshot");
    }
    assert!(contains(&snap.bytes, start_line), "{}", String::from_utf8_lossy(&snap.bytes));
    assert!(snap.bytes.len() <= microvm::CONSOLE_KEPT);
    assert!(snap.total >= snap.bytes.len() as u64, "{} < {}", snap.total, snap.bytes.len());

    // the same exchange by hand over a stream: send, recv until the newline, close
    let mut conn = client.connect(1025).await.expect("connect 1025");
    conn.send(b"{\"cmd\":\"vpn_status\"}\n").await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\n") {
        let chunk = conn.recv().await.unwrap();
        assert!(!chunk.is_empty(), "EOF before the answer: {:?}", answer);
        answer.extend_from_slice(&chunk);
    }
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.contains("disconnected"), "{}", answer);
    conn.close().await.unwrap();
    assert!(conn.send(b"x").await.is_err(), "a closed connection still sends");

    // a bad request gets the agent's error, not a hang
    let err = String::from_utf8(client.request(1025, b"not json").await.unwrap()).unwrap();
    assert!(err.contains("error"), "{}", err);
    // nothing listens on port 9: a clear error
    assert!(client.request(9, b"x").await.is_err());

    handle.shutdown().await.expect("shutdown");
    assert!(!handle.is_running());
    let reason = handle.exit_reason().expect("stopped");
    assert!(reason.starts_with("poweroff") || reason.starts_with("killed"), "{}", reason);
    assert!(client.request(1025, br#"{"cmd":"ping"}"#).await.is_err(), "ping after shutdown");

    // the box's console output reached the channel
    let mut seen = 0;
    while let Ok(chunk) = console_out.try_recv() {
        seen += chunk.len();
    }
    assert!(seen > 0, "no console output");
    // the console outlives the guest: a snapshot after the stop still has the start-up
    // line, and nothing written earlier is uncounted
    let after = handle.console_snapshot().expect("console snapshot after shutdown");
    assert!(contains(&after.bytes, start_line), "{}", String::from_utf8_lossy(&after.bytes));
    assert!(after.total >= snap.total, "{} < {}", after.total, snap.total);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpn_manager_flow() {
    require_root();
    let cfg = ManagerConfig {
        backend: Backend::Nsbox,
        rootfs_path: rootfs(),
        socks_port: 0,
        socks_generate_secret: true,
        boot_timeout_ms: 30_000,
        ..Default::default()
    };
    let m = VpnManager::new(&cfg).expect("manager");
    let st = m.status().await;
    assert!(!st.vm_running);
    m.start_vm().await.expect("start_vm");
    let st = m.status().await;
    assert!(st.vm_running && st.agent_reachable, "{:?}", st);
    assert_eq!(st.hypervisor, "nsbox");
    assert!(st.socks_running && st.socks_port != 0 && st.socks_auth, "{:?}", st);
    assert_eq!(st.vpn.state, VpnState::Disconnected);
    let (user, pass) = m.socks_credentials();
    assert_eq!(user, "microvm");
    assert_eq!(pass.len(), 64);

    m.upload_profile("lib-test.ovpn", "client\ndev tun\nremote 192.0.2.1 1194\n").await.expect("upload");
    assert!(m.list_profiles().await.unwrap().contains(&"lib-test.ovpn".to_string()));
    // a bad name is the agent's clear error, and nothing is lost
    let e = m.upload_profile("../x", "client\n").await.unwrap_err();
    assert!(!e.to_string().is_empty());
    assert!(m.vpn_status().await.unwrap().state == VpnState::Disconnected);

    m.stop_vm(10_000).await.expect("stop_vm");
    let st = m.status().await;
    assert!(!st.vm_running && !st.socks_running, "{:?}", st);
}
