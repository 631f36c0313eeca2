//! app_flow - the desktop app's flow through the `microvm` crate: start the VM, ping the
//! agent, connect the VPN with a password (or web authentication), fetch a page through the
//! SOCKS5 proxy, stop the VM.
//!
//!   app_flow [--backend auto|kvm|nsbox|wsl] [--rootfs FILE] --profile FILE --user NAME --url URL
//!
//! The password is read from the first line of stdin (never from the command line), without
//! a buffer of std's in between, and wiped once used (`microvm::wipe_string`), as is every
//! copy of the SOCKS5 password here.  URL is
//! `http://HOST:PORT/PATH`; the body of the answer goes to stdout, byte for byte, progress
//! to stderr; the exit status is 1 at the first step that fails (the VM is stopped then too).
//! The same program on every OS: tests/integration/test_rust.py runs it on the namespace
//! backend, tests/windows/test_win_rust.py under Wine on WSL2 (behind the wsl.exe double),
//! both against a real OpenVPN server.

use std::fs::File;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use microvm::{Backend, ManagerConfig, VpnManager, VpnState};

struct Args {
    backend: Backend,
    rootfs: Option<PathBuf>,
    profile: PathBuf,
    user: String,
    url: String,
}

fn usage() -> ! {
    eprintln!("usage: app_flow [--backend auto|kvm|nsbox|wsl] [--rootfs FILE] --profile FILE --user NAME --url URL");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args { backend: Backend::Auto, rootfs: None, profile: PathBuf::new(), user: String::new(), url: String::new() };
    let mut it = std::env::args().skip(1);
    while let Some(opt) = it.next() {
        let val = it.next().unwrap_or_else(|| usage());
        match opt.as_str() {
            "--backend" => a.backend = val.parse().unwrap_or_else(|_| usage()),
            "--rootfs" => a.rootfs = Some(PathBuf::from(val)),
            "--profile" => a.profile = PathBuf::from(val),
            "--user" => a.user = val,
            "--url" => a.url = val,
            _ => usage(),
        }
    }
    if a.profile.as_os_str().is_empty() || a.user.is_empty() || a.url.is_empty() {
        usage();
    }
    a
}

/// How long one read or write of the SOCKS5 exchange may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A SOCKS5 CONNECT (RFC 1928, with RFC 1929 username/password when `auth` is given) to
/// `host`:`port`, by name: the name is resolved inside the VPN.  Blocking std::net calls,
/// run on tokio's blocking pool (see `fetch`): the same code on every OS, Windows included,
/// where Debian's tokio has no network reactor.
fn socks5_connect(proxy: (&str, u16), auth: Option<(&str, &str)>, host: &str, port: u16) -> Result<TcpStream, String> {
    let io = |e: std::io::Error| format!("SOCKS proxy: {}", e);
    let mut s = TcpStream::connect(proxy).map_err(io)?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let method = if auth.is_some() { 2u8 } else { 0u8 };
    s.write_all(&[5, 1, method]).map_err(io)?;
    let mut rep = [0u8; 2];
    s.read_exact(&mut rep).map_err(io)?;
    if rep != [5, method] {
        return Err(format!("SOCKS method refused: {:?}", rep));
    }
    if let Some((u, p)) = auth {
        let mut msg = vec![1, u.len() as u8];
        msg.extend_from_slice(u.as_bytes());
        msg.push(p.len() as u8);
        msg.extend_from_slice(p.as_bytes());
        let sent = s.write_all(&msg);
        microvm::wipe(&mut msg);
        sent.map_err(io)?;
        s.read_exact(&mut rep).map_err(io)?;
        if rep[1] != 0 {
            return Err("SOCKS authentication failed".into());
        }
    }
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).map_err(io)?;
    if head[1] != 0 {
        return Err(format!("SOCKS CONNECT failed: reply {}", head[1]));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).map_err(io)?;
            l[0] as usize + 2
        }
        t => return Err(format!("SOCKS reply address type {}", t)),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).map_err(io)?;
    Ok(s)
}

/// GET `url` through the SOCKS5 proxy at `proxy`: the body of a 200 answer, byte for byte.
/// The blocking exchange runs on tokio's blocking pool.
async fn fetch(proxy: (String, u16), auth: Option<(String, String)>, url: &str) -> Result<Vec<u8>, String> {
    let (host, port, path) = split_url(url).ok_or("URL must be http://HOST[:PORT]/PATH")?;
    tokio::task::spawn_blocking(move || {
        let mut auth = auth;
        let conn = socks5_connect((proxy.0.as_str(), proxy.1),
                                  auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str())), &host, port);
        if let Some((_, p)) = auth.as_mut() {
            microvm::wipe_string(p);
        }
        let mut s = conn?;
        let req = format!("GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", path, host);
        s.write_all(req.as_bytes()).map_err(|e| format!("HTTP: {}", e))?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).map_err(|e| format!("HTTP: {}", e))?;
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP answer")?;
        let head = String::from_utf8_lossy(&resp[..split]).into_owned();
        if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
            return Err(format!("HTTP: {}", head.lines().next().unwrap_or("")));
        }
        Ok(resp[split + 4..].to_vec())
    })
    .await
    .map_err(|e| format!("fetch: {}", e))?
}

fn split_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 80),
    };
    Some((host.to_string(), port, path.to_string()))
}

async fn run(a: Args, password: &str) -> Result<Vec<u8>, String> {
    split_url(&a.url).ok_or("URL must be http://HOST[:PORT]/PATH")?;
    let profile = std::fs::read_to_string(&a.profile).map_err(|e| format!("{}: {}", a.profile.display(), e))?;
    let name = a.profile.file_name().and_then(|n| n.to_str()).unwrap_or("profile.ovpn").to_string();

    // start_vm
    let cfg = ManagerConfig {
        backend: a.backend,
        rootfs_path: a.rootfs,
        socks_port: 0,
        socks_generate_secret: true,
        ..Default::default()
    };
    let m = VpnManager::new(&cfg)?;
    m.start_vm().await?;
    eprintln!("app_flow: VM started ({})", m.status().await.hypervisor);

    let result = async {
        // ping
        let st = m.status().await;
        if !st.agent_reachable {
            return Err(format!("agent not reachable: {}", st.fault));
        }
        eprintln!("app_flow: agent answers");

        // vpn_connect, with web authentication if the server asks for it
        let mut info = m.vpn_connect(&name, Some(&profile), Some(&a.user), Some(password)).await?;
        if info.state == VpnState::WebAuth {
            eprintln!("app_flow: open {} to authenticate", info.auth_url);
            for _ in 0..120 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                info = m.check_webauth().await?;
                if info.state != VpnState::WebAuth {
                    break;
                }
            }
        }
        if info.state != VpnState::Connected {
            return Err(format!("VPN not connected ({:?}): {}", info.state, info.error));
        }
        eprintln!("app_flow: VPN connected, tunnel address {}", info.tun_ip);

        // SOCKS5
        let st = m.status().await;
        // the mode only: the password is never printed
        eprintln!("app_flow: SOCKS5 proxy {}:{}, authentication: {}", st.socks_addr, st.socks_port,
                  if st.socks_auth { "username/password" } else { "none" });
        let auth = if st.socks_auth { Some(m.socks_credentials()) } else { None };
        let body = fetch((st.socks_addr.clone(), st.socks_port), auth, &a.url).await?;
        eprintln!("app_flow: fetched {} through SOCKS5", a.url);
        m.vpn_disconnect().await?;
        eprintln!("app_flow: VPN disconnected");
        Ok(body)
    }
    .await;

    // stop_vm, whatever happened
    m.stop_vm(10_000).await?;
    eprintln!("app_flow: VM stopped");
    result
}

/// The longest password read; its buffer never grows, so no copy is left behind by a move.
const PASSWORD_MAX: usize = 1024;

/// The first line of stdin (without its "\n" or "\r\n"), read a byte at a time straight from
/// the file descriptor (handle on Windows): std's Stdin would keep a copy in its buffer.
fn read_password() -> Result<String, &'static str> {
    // SAFETY: stdin's descriptor / handle, borrowed: ManuallyDrop never closes it.
    #[cfg(unix)]
    let mut f = ManuallyDrop::new(unsafe {
        <File as std::os::unix::io::FromRawFd>::from_raw_fd(std::os::unix::io::AsRawFd::as_raw_fd(&std::io::stdin()))
    });
    #[cfg(windows)]
    let mut f = ManuallyDrop::new(unsafe {
        <File as std::os::windows::io::FromRawHandle>::from_raw_handle(
            std::os::windows::io::AsRawHandle::as_raw_handle(&std::io::stdin()))
    });
    let mut buf = Vec::with_capacity(PASSWORD_MAX);
    let mut b = [0u8; 1];
    let res = loop {
        match f.read(&mut b) {
            Ok(0) => break Ok(()),
            Ok(_) if b[0] == b'\n' => break Ok(()),
            Ok(_) if buf.len() == PASSWORD_MAX => break Err("the password is too long"),
            Ok(_) => buf.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break Err("cannot read the password from stdin"),
        }
    };
    b[0] = 0;
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if let Err(e) = res {
        microvm::wipe(&mut buf);
        return Err(e);
    }
    String::from_utf8(buf).map_err(|e| {
        microvm::wipe(&mut e.into_bytes());
        "the password is not UTF-8"
    })
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut password = read_password().unwrap_or_else(|e| {
        eprintln!("app_flow: {}", e);
        std::process::exit(2);
    });
    let result = run(args, &password).await;
    microvm::wipe_string(&mut password);
    match result {
        Ok(body) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&body).and_then(|_| out.flush()).is_err() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("app_flow: {}", e);
            std::process::exit(1);
        }
    }
}
