//! VsockClient over TCP (`VsockClient::tcp`), against a fake agent on 127.0.0.1: request,
//! a stream (send, recv, EOF, close), the errors.  No root, no VM.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;

use microvm::VsockClient;

/// Serves `n` connections: each line read is answered with `{"echo":LINE}`, then the
/// connection is closed after `bye` when the line is "bye".
fn fake_agent(n: usize) -> u32 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port() as u32;
    thread::spawn(move || {
        for conn in l.incoming().take(n) {
            let mut conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let t = line.trim_end().to_string();
                conn.write_all(format!("{{\"echo\":\"{}\"}}\n", t).as_bytes()).unwrap();
                line.clear();
                if t == "bye" {
                    break;
                }
            }
        }
    });
    port
}

#[tokio::test]
async fn request_and_stream_over_tcp() {
    let port = fake_agent(2);
    let client = VsockClient::tcp("127.0.0.1", None).unwrap();

    let r = client.request(port, b"ping").await.unwrap();
    assert_eq!(r, br#"{"echo":"ping"}"#.to_vec());

    let mut c = client.connect(port).await.unwrap();
    c.send(b"one\n").await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"\n") {
        got.extend(c.recv().await.unwrap());
    }
    assert_eq!(got, b"{\"echo\":\"one\"}\n".to_vec());
    c.send(b"bye\n").await.unwrap();
    let mut rest = Vec::new();
    loop {
        let chunk = c.recv().await.unwrap();
        if chunk.is_empty() {
            break; // EOF: the peer closed
        }
        rest.extend(chunk);
    }
    assert_eq!(rest, b"{\"echo\":\"bye\"}\n".to_vec());
    c.close().await.unwrap();
    assert!(c.recv().await.is_err());
}

#[tokio::test]
async fn errors_are_clear() {
    // nothing listens there
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port() as u32;
    drop(l);
    let client = VsockClient::tcp("127.0.0.1", None).unwrap();
    let e = client.request(port, b"ping").await.unwrap_err();
    assert!(!e.is_empty());
    assert!(client.connect(port).await.is_err());

    // a secret that is not 64 hex characters
    assert!(VsockClient::tcp("127.0.0.1", Some("short")).is_err());
    // a NUL byte in the host name
    assert!(VsockClient::tcp("127.0.0.1\0x", None).is_err());

    // a peer that cannot prove the secret (it answers the handshake with junk) is refused
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port() as u32;
    thread::spawn(move || {
        if let Ok((mut conn, _)) = l.accept() {
            let _ = conn.write_all(&[0x5a; 200]);
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    });
    let secret = "ab".repeat(32);
    let client = VsockClient::tcp("127.0.0.1", Some(&secret)).unwrap();
    let e = client.request(port, b"ping").await.unwrap_err();
    assert!(e.contains("authentication"), "{}", e);
}
