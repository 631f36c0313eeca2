//! VpnManager without a guest, on every OS (`make rust` on Linux, `make windows` under Wine):
//! the configuration reaches the C manager (status, SOCKS5 credentials), calls that need a
//! running VM fail with the same errno and text everywhere, bad input is refused before it
//! reaches the agent.  No root, no VM: the flows with a guest are vm_flow.rs (Linux) and
//! examples/app_flow.rs (tests/integration/test_rust.py, tests/windows/test_win_rust.py).
#![cfg(feature = "manager")]

use microvm::{Error, ManagerConfig, VpnManager, VpnState};

fn manager(generate_secret: bool) -> VpnManager {
    let cfg = ManagerConfig { socks_port: 0, socks_generate_secret: generate_secret, ..Default::default() };
    VpnManager::new(&cfg).expect("manager")
}

/// The error of a call that needs a running VM: ENOTCONN and the library's own words.
fn assert_not_running<T: std::fmt::Debug>(r: microvm::Result<T>) {
    match r {
        Err(Error::Call { errno, msg }) => {
            assert_eq!(errno, libc::ENOTCONN, "{}", msg);
            assert!(msg.contains("no VM running"), "{}", msg);
        }
        other => panic!("expected ENOTCONN, got {:?}", other),
    }
}

#[tokio::test]
async fn status_before_start() {
    let m = manager(false);
    let st = m.status().await;
    assert!(!st.vm_running && !st.agent_reachable && !st.socks_running, "{:?}", st);
    assert!(!st.socks_auth, "{:?}", st);
    // nobody asked the agent: unknown, not "disconnected"
    assert_eq!(st.vpn.state, VpnState::Unknown, "{:?}", st);
    assert_eq!(m.socks_credentials(), (String::new(), String::new()));
}

#[tokio::test]
async fn generated_socks_secret() {
    let (a, b) = (manager(true), manager(true));
    let (user, pass) = a.socks_credentials();
    assert_eq!(user, "microvm");
    assert!(pass.len() == 64 && pass.bytes().all(|c| c.is_ascii_hexdigit()), "{}", pass);
    // a new secret per manager; a clone is the same manager
    assert_ne!(b.socks_credentials().1, pass);
    assert_eq!(a.clone().socks_credentials().1, pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_vm_fail_clearly() {
    let m = manager(false);
    assert_not_running(m.vpn_status().await);
    assert_not_running(m.check_webauth().await);
    assert_not_running(m.list_profiles().await);
    assert_not_running(m.vpn_disconnect().await);
    assert_not_running(m.upload_profile("corp.ovpn", "client\n").await);
    assert_not_running(m.vpn_connect("corp.ovpn", None, Some("alice"), Some("pw")).await);
    // from several tasks at once: the C manager is thread-safe
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.vpn_status().await })
        })
        .collect();
    for t in tasks {
        assert_not_running(t.await.unwrap());
    }
    // stopping what does not run is no error
    m.stop_vm(1000).await.expect("stop_vm without a VM");
}

#[tokio::test]
async fn bad_input_is_refused() {
    let m = manager(false);
    // not a plain file name: the C manager's check, before any request
    for name in ["../x", "a/b", "", ".."] {
        match m.upload_profile(name, "client\n").await {
            Err(Error::Call { errno, msg }) => {
                assert_eq!(errno, libc::EINVAL, "{}", msg);
                assert!(msg.contains("bad profile name"), "{}", msg);
            }
            other => panic!("{:?}: {:?}", name, other),
        }
    }
    // a NUL byte cannot cross into C
    assert!(matches!(m.upload_profile("a\0b", "x").await, Err(Error::Invalid(_))));
    assert!(matches!(m.vpn_connect("a.ovpn", None, None, Some("p\0w")).await, Err(Error::Invalid(_))));
    let cfg = ManagerConfig { socks_addr: "127.0.0.1\0".into(), ..Default::default() };
    assert!(matches!(VpnManager::new(&cfg), Err(Error::Invalid(_))));
}
