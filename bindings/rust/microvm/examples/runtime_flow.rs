//! runtime_flow - the microvm-rs runtime flow of the desktop app, on any backend: start the
//! guest, ping its agent through `VsockClient::request`, the same by hand over a
//! `VsockConnection` (`connect`, `send`, `recv`, `close`), shut down, the console's
//! snapshot.
//!
//!   runtime_flow [--backend auto|nsbox|wsl] [--rootfs FILE]
//!
//! Each step prints one line; the last is "runtime_flow: ok", and the exit status is 1 at
//! the first step that fails.  `make windows` runs it under Wine on the WSL2 backend, behind
//! the wsl.exe double (scripts/test-rust-windows.sh); on Linux `--backend nsbox` (root) runs
//! the same flow in the namespace box.

use std::path::PathBuf;
use std::time::Duration;

use microvm::{RuntimeConfig, RuntimeOptions, VmRuntime, VsockClient};
use tokio::sync::mpsc;

fn usage() -> ! {
    eprintln!("usage: runtime_flow [--backend auto|nsbox|wsl] [--rootfs FILE]");
    std::process::exit(2);
}

fn fail(what: &str, why: impl std::fmt::Display) -> ! {
    println!("runtime_flow: FAILED: {}: {}", what, why);
    std::process::exit(1);
}

/// The agent boots in the background: ask until it answers (60 s).
async fn ping_until_up(client: &VsockClient) -> Result<Vec<u8>, String> {
    let mut last = String::new();
    for _ in 0..300 {
        match client.request(1025, br#"{"cmd":"ping"}"#).await {
            Ok(r) => return Ok(r),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

#[tokio::main]
async fn main() {
    let mut opts = RuntimeOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(opt) = args.next() {
        let val = args.next().unwrap_or_else(|| usage());
        match opt.as_str() {
            "--backend" => opts.backend = val.parse().unwrap_or_else(|_| usage()),
            "--rootfs" => opts.rootfs_path = Some(PathBuf::from(val)),
            _ => usage(),
        }
    }
    println!("libmicrovm {}, backend {} (supported: {})", microvm::version(), microvm::backend_name(),
             microvm::is_supported());

    let (console_tx, mut console) = mpsc::channel::<Vec<u8>>(1024);
    let config = RuntimeConfig { console_tx: Some(console_tx), ..Default::default() };
    let (runtime, client) = VmRuntime::with_options(config, opts).unwrap_or_else(|e| fail("create", e));
    let handle = runtime.spawn();
    if let Some(e) = handle.start_error() {
        fail("start", e);
    }
    println!("started on {}", handle.hypervisor());

    let pong = ping_until_up(&client).await.unwrap_or_else(|e| fail("ping", e));
    let pong = String::from_utf8_lossy(&pong).into_owned();
    if !pong.contains("pong") {
        fail("ping", format!("unexpected answer {}", pong));
    }
    println!("request(1025, ping): {}", pong);

    let mut conn = client.connect(1025).await.unwrap_or_else(|e| fail("connect", e));
    conn.send(b"{\"cmd\":\"ping\"}\n").await.unwrap_or_else(|e| fail("send", e));
    let mut answer = Vec::new();
    while !answer.ends_with(b"\n") {
        let chunk = conn.recv().await.unwrap_or_else(|e| fail("recv", e));
        if chunk.is_empty() {
            fail("recv", format!("end of stream before the answer ({:?})", String::from_utf8_lossy(&answer)));
        }
        answer.extend_from_slice(&chunk);
    }
    let answer = String::from_utf8_lossy(&answer).trim_end().to_string();
    if !answer.contains("pong") {
        fail("recv", format!("unexpected answer {}", answer));
    }
    conn.close().await.unwrap_or_else(|e| fail("close", e));
    if conn.send(b"x").await.is_ok() {
        fail("close", "a closed connection still sends");
    }
    println!("connect(1025), send, recv: {}", answer);

    handle.shutdown().await.unwrap_or_else(|e| fail("shutdown", e));
    if handle.is_running() {
        fail("shutdown", "still running");
    }
    println!("shut down: {}", handle.exit_reason().unwrap_or_default());
    if client.request(1025, br#"{"cmd":"ping"}"#).await.is_ok() {
        fail("shutdown", "the agent still answers");
    }
    let mut seen = 0;
    while let Ok(chunk) = console.try_recv() {
        seen += chunk.len();
    }
    println!("console: {} bytes", seen);
    // what the console still holds after the stop: the agent's start-up line among it
    let snap = handle.console_snapshot().unwrap_or_else(|e| fail("console_snapshot", e));
    let text = String::from_utf8_lossy(&snap.bytes);
    if !text.contains("microvm-agent") {
        fail("console_snapshot", format!("no line of the agent in {:?}", text));
    }
    println!("console_snapshot: {} bytes of {} written", snap.bytes.len(), snap.total);
    println!("runtime_flow: ok");
}
