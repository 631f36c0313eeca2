//! VsockClient / VsockConnection: the microvm-rs client over mvm_vsock_*.
//!
//! One client type whatever the backend (virtio-vsock under KVM, TCP for the namespace box
//! and WSL2, authenticated where the backend requires it): `request` is one newline-framed
//! exchange (the agent's JSON on port 1025), `connect` a byte stream (the inbound proxy on
//! port 7602).  The blocking C calls run on tokio's blocking pool.  A connection's reads and
//! writes: on Unix, tokio's reactor on the stream's file descriptor (a socket or one end of
//! a socketpair); on Windows, where the stream is a Winsock socket and Debian's tokio has no
//! reactor (its mio lacks the Windows backend), blocking socket calls on tokio's blocking
//! pool.

use std::os::raw::{c_char, c_void};
use std::sync::Arc;

use microvm_sys as sys;

use crate::runtime::Vm;
use crate::{call_error, last_error, to_c, Error, Result};

/// Timeout of one request: the agent's slowest answer (vpn_start) takes up to 90 s.
const REQUEST_TIMEOUT_MS: i32 = 120_000;
/// Timeout of opening a stream.
const CONNECT_TIMEOUT_MS: i32 = 10_000;
/// Most bytes one `recv` returns.
const RECV_CHUNK: usize = 64 * 1024;

/// Who owns the C client: a VM (which frees it) or this crate (a TCP client).
enum Owner {
    Vm(Arc<Vm>),
    Own(OwnedClient),
}

struct OwnedClient(*mut sys::mvm_vsock);

impl Drop for OwnedClient {
    fn drop(&mut self) {
        // SAFETY: created by mvm_vsock_new_tcp, freed once.
        unsafe { sys::mvm_vsock_free(self.0) }
    }
}

struct Inner {
    vs: *mut sys::mvm_vsock,
    _owner: Owner,
}

// SAFETY: the vsock client's functions are thread-safe (include/microvm/vsock.h); the owner
// keeps the pointer valid as long as this exists.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

/// The host's way to the guest's ports.  Cheap to clone; keeps its VM alive.
#[derive(Clone)]
pub struct VsockClient {
    inner: Arc<Inner>,
}

impl VsockClient {
    pub(crate) fn of_vm(vm: Arc<Vm>) -> Result<VsockClient> {
        // SAFETY: a live VM; the client is owned by it.
        let vs = unsafe { sys::mvm_vm_vsock(vm.ptr) };
        if vs.is_null() {
            return Err(Error::Call { errno: libc::ENOTSUP, msg: last_error() });
        }
        Ok(VsockClient { inner: Arc::new(Inner { vs, _owner: Owner::Vm(vm) }) })
    }

    /// A client whose port N is TCP `host`:N (an agent run outside a VM, or a WSL2 distro);
    /// `secret` is the agent's 64-hex-character auth secret, when it requires one.
    pub fn tcp(host: &str, secret: Option<&str>) -> Result<VsockClient> {
        let h = to_c(host, "host")?;
        // SAFETY: the string is copied by the library.
        let vs = unsafe { sys::mvm_vsock_new_tcp(h.as_ptr()) };
        if vs.is_null() {
            return Err(Error::Call { errno: libc::EINVAL, msg: last_error() });
        }
        let own = OwnedClient(vs);
        if let Some(s) = secret {
            let s = to_c(s, "secret")?;
            // SAFETY: copied by the library.
            let ret = unsafe { sys::mvm_vsock_set_secret(vs, s.as_ptr()) };
            if ret < 0 {
                return Err(call_error(ret, "secret"));
            }
        }
        Ok(VsockClient { inner: Arc::new(Inner { vs, _owner: Owner::Own(own) }) })
    }

    /// Send one request to guest port `port` and return the answer line (without its
    /// newline).  A newline is appended to `data` when it has none.
    pub async fn request(&self, port: u32, data: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let inner = self.inner.clone();
        let req = data.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut resp: *mut c_char = std::ptr::null_mut();
            let mut len: usize = 0;
            // SAFETY: valid buffers; on success resp is malloc'd and ours to free.
            let ret = unsafe {
                sys::mvm_vsock_request(inner.vs, port, req.as_ptr() as *const c_void, req.len(),
                                       &mut resp, &mut len, REQUEST_TIMEOUT_MS)
            };
            if ret < 0 {
                return Err(call_error(ret, "request").to_string());
            }
            // SAFETY: resp holds len bytes.
            let out = unsafe { std::slice::from_raw_parts(resp as *const u8, len).to_vec() };
            unsafe { libc::free(resp as *mut c_void) };
            Ok(out)
        })
        .await
        .map_err(|e| format!("request: {}", e))?
    }

    /// Open a byte stream to guest port `port`.
    pub async fn connect(&self, port: u32) -> std::result::Result<VsockConnection, String> {
        let inner = self.inner.clone();
        let fd = tokio::task::spawn_blocking(move || {
            // SAFETY: a live client.
            let fd = unsafe { sys::mvm_vsock_connect(inner.vs, port, CONNECT_TIMEOUT_MS) };
            if fd < 0 {
                Err(call_error(fd, "connect").to_string())
            } else {
                Ok(fd)
            }
        })
        .await
        .map_err(|e| format!("connect: {}", e))??;
        // SAFETY: the stream is ours from here on.
        let stream = unsafe { Stream::from_c(fd) }.map_err(|e| format!("connect: {}", e))?;
        Ok(VsockConnection { stream: Some(stream) })
    }
}

/// A stream to a guest port.  Dropping it closes it too.
pub struct VsockConnection {
    stream: Option<Stream>,
}

impl VsockConnection {
    fn stream(&self) -> std::result::Result<&Stream, String> {
        self.stream.as_ref().ok_or_else(|| "connection closed".to_string())
    }

    /// Write all of `data`.
    pub async fn send(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        self.stream()?.send(data).await.map_err(|e| format!("send: {}", e))
    }

    /// The next bytes from the guest; empty at end of stream.
    pub async fn recv(&mut self) -> std::result::Result<Vec<u8>, String> {
        self.stream()?.recv().await.map_err(|e| format!("recv: {}", e))
    }

    /// Close the stream (the guest reads EOF).
    pub async fn close(&mut self) -> std::result::Result<(), String> {
        self.stream.take();
        Ok(())
    }
}

#[cfg(unix)]
use unix::Stream;
#[cfg(windows)]
use windows::Stream;

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::raw::c_void;
    use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    use super::RECV_CHUNK;

    /// A stream's descriptor, non-blocking, in tokio's reactor.
    pub(super) struct Stream(AsyncFd<OwnedFd>);

    impl Stream {
        /// # Safety
        /// `fd` is an open stream from mvm_vsock_connect(), owned by nobody else.
        pub(super) unsafe fn from_c(fd: i32) -> io::Result<Stream> {
            let owned = OwnedFd::from_raw_fd(fd);
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Stream(AsyncFd::with_interest(owned, Interest::READABLE | Interest::WRITABLE)?))
        }

        pub(super) async fn send(&self, data: &[u8]) -> io::Result<()> {
            let mut off = 0;
            while off < data.len() {
                let mut guard = self.0.writable().await?;
                let rest = &data[off..];
                // SAFETY: writes from a valid slice; MSG_NOSIGNAL: EPIPE instead of SIGPIPE.
                let res = guard.try_io(|fd| {
                    let n = unsafe {
                        libc::send(fd.as_raw_fd(), rest.as_ptr() as *const c_void, rest.len(), libc::MSG_NOSIGNAL)
                    };
                    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
                });
                match res {
                    Ok(Ok(n)) => off += n,
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            }
            Ok(())
        }

        pub(super) async fn recv(&self) -> io::Result<Vec<u8>> {
            let mut buf = vec![0u8; RECV_CHUNK];
            loop {
                let mut guard = self.0.readable().await?;
                // SAFETY: reads into a buffer of RECV_CHUNK bytes.
                let res = guard.try_io(|fd| {
                    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr() as *mut c_void, buf.len()) };
                    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
                });
                match res {
                    Ok(Ok(n)) => {
                        buf.truncate(n);
                        return Ok(buf);
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(windows)]
mod windows {
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::os::windows::io::{FromRawSocket, RawSocket};
    use std::sync::Arc;

    use super::RECV_CHUNK;

    /// A Winsock stream (the C side's int holds the SOCKET); each call blocks on tokio's
    /// blocking pool.
    pub(super) struct Stream(Arc<TcpStream>);

    impl Stream {
        /// # Safety
        /// `fd` is an open stream from mvm_vsock_connect(), owned by nobody else.
        pub(super) unsafe fn from_c(fd: i32) -> io::Result<Stream> {
            let s = TcpStream::from_raw_socket(fd as u32 as RawSocket);
            s.set_nonblocking(false)?;
            Ok(Stream(Arc::new(s)))
        }

        async fn blocking<T: Send + 'static>(
            &self,
            f: impl FnOnce(&TcpStream) -> io::Result<T> + Send + 'static,
        ) -> io::Result<T> {
            let s = self.0.clone();
            tokio::task::spawn_blocking(move || f(&s))
                .await
                .unwrap_or_else(|e| Err(io::Error::new(io::ErrorKind::Other, e.to_string())))
        }

        pub(super) async fn send(&self, data: &[u8]) -> io::Result<()> {
            let data = data.to_vec();
            self.blocking(move |mut s| s.write_all(&data)).await
        }

        pub(super) async fn recv(&self) -> io::Result<Vec<u8>> {
            self.blocking(|mut s| {
                let mut buf = vec![0u8; RECV_CHUNK];
                let n = s.read(&mut buf)?;
                buf.truncate(n);
                Ok(buf)
            })
            .await
        }
    }
}
