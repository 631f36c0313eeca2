//! app_flow - the desktop app's flow through the `microvm` crate: start the VM, ping the
//! agent, connect the VPN with a password (or web authentication), fetch a page through the
//! SOCKS5 proxy, stop the VM.
//!
//!   app_flow [--backend auto|kvm|nsbox] [--rootfs FILE] --profile FILE --user NAME --url URL
//!
//! The password is read from the first line of stdin (never from the command line).  URL is
//! `http://HOST:PORT/PATH`; the body of the answer goes to stdout, progress to stderr.
//! tests/integration/test_rust.py runs it against a real OpenVPN server.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use microvm::{Backend, ManagerConfig, VpnManager, VpnState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    backend: Backend,
    rootfs: Option<PathBuf>,
    profile: PathBuf,
    user: String,
    url: String,
}

fn usage() -> ! {
    eprintln!("usage: app_flow [--backend auto|kvm|nsbox] [--rootfs FILE] --profile FILE --user NAME --url URL");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args { backend: Backend::Auto, rootfs: None, profile: PathBuf::new(), user: String::new(), url: String::new() };
    let mut it = std::env::args().skip(1);
    while let Some(opt) = it.next() {
        let val = it.next().unwrap_or_else(|| usage());
        match opt.as_str() {
            "--backend" => {
                a.backend = match val.as_str() {
                    "auto" => Backend::Auto,
                    "kvm" => Backend::Kvm,
                    "nsbox" => Backend::Nsbox,
                    _ => usage(),
                }
            }
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

/// A SOCKS5 CONNECT (RFC 1928, with RFC 1929 username/password when `auth` is given) to
/// `host`:`port`, by name: the name is resolved inside the VPN.
async fn socks5_connect(proxy: (&str, u16), auth: Option<(&str, &str)>, host: &str, port: u16) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(proxy).await.map_err(|e| format!("SOCKS proxy: {}", e))?;
    let method = if auth.is_some() { 2u8 } else { 0u8 };
    s.write_all(&[5, 1, method]).await.map_err(|e| e.to_string())?;
    let mut rep = [0u8; 2];
    s.read_exact(&mut rep).await.map_err(|e| e.to_string())?;
    if rep != [5, method] {
        return Err(format!("SOCKS method refused: {:?}", rep));
    }
    if let Some((u, p)) = auth {
        let mut msg = vec![1, u.len() as u8];
        msg.extend_from_slice(u.as_bytes());
        msg.push(p.len() as u8);
        msg.extend_from_slice(p.as_bytes());
        s.write_all(&msg).await.map_err(|e| e.to_string())?;
        s.read_exact(&mut rep).await.map_err(|e| e.to_string())?;
        if rep[1] != 0 {
            return Err("SOCKS authentication failed".into());
        }
    }
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(|e| e.to_string())?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    if head[1] != 0 {
        return Err(format!("SOCKS CONNECT failed: reply {}", head[1]));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await.map_err(|e| e.to_string())?;
            l[0] as usize + 2
        }
        t => return Err(format!("SOCKS reply address type {}", t)),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).await.map_err(|e| e.to_string())?;
    Ok(s)
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

async fn run(a: Args, password: String) -> Result<String, String> {
    let (host, port, path) = split_url(&a.url).ok_or("URL must be http://HOST[:PORT]/PATH")?;
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
        let mut info = m.vpn_connect(&name, Some(&profile), Some(&a.user), Some(&password)).await?;
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
        let (user, pass) = m.socks_credentials();
        let auth = if st.socks_auth { Some((user.as_str(), pass.as_str())) } else { None };
        let mut s = socks5_connect((st.socks_addr.as_str(), st.socks_port), auth, &host, port).await?;
        let req = format!("GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", path, host);
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.map_err(|e| e.to_string())?;
        let resp = String::from_utf8_lossy(&resp).into_owned();
        let (head, body) = resp.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
            return Err(format!("HTTP: {}", head.lines().next().unwrap_or("")));
        }
        eprintln!("app_flow: fetched {} through SOCKS5", a.url);
        m.vpn_disconnect().await?;
        Ok(body.to_string())
    }
    .await;

    // stop_vm, whatever happened
    m.stop_vm(10_000).await?;
    eprintln!("app_flow: VM stopped");
    result
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut password = String::new();
    if std::io::stdin().lock().read_line(&mut password).is_err() {
        eprintln!("app_flow: cannot read the password from stdin");
        std::process::exit(2);
    }
    let password = password.trim_end_matches(&['\r', '\n'][..]).to_string();
    match run(args, password).await {
        Ok(body) => print!("{}", body),
        Err(e) => {
            eprintln!("app_flow: {}", e);
            std::process::exit(1);
        }
    }
}
