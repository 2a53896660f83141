//! `-netdev dgram`: one Ethernet frame per datagram, over UDP or a UNIX
//! datagram socket, as QEMU 7.2 sends them. The socket is bound at the local
//! address and sends to the remote one; it takes datagrams from anyone.
//!
//! There is no connection, so the link is always up; a datagram that cannot
//! be sent (nobody at the remote address yet) is dropped, as on a wire.
//!
//! Not supported: a multicast remote address (QEMU's `mcast` use, several
//! VMs in one group), which needs `SO_REUSEADDR` before the bind and so a
//! socket crate or `unsafe`; it is refused with an error that says so.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, select};

use super::spec::{NetdevArgs, SocketSpec, io_reason};
use super::{BackendPort, MAX_FRAME};
use super::{POLL_INTERVAL, STOP_WAIT};

/// The options `-netdev dgram` takes (besides `id` and `pcap`).
pub const OPTIONS: &[&str] = &[
    "local.type",
    "local.host",
    "local.port",
    "local.path",
    "remote.type",
    "remote.host",
    "remote.port",
    "remote.path",
];

/// What `-netdev dgram` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DgramConfig {
    /// The netdev's id, for errors and logs.
    pub id: String,
    /// Where the socket is bound (port 0: the OS picks).
    pub local: SocketSpec,
    /// Where frames are sent.
    pub remote: SocketSpec,
}

impl DgramConfig {
    /// Reads the options of [`OPTIONS`]; both addresses are needed, and of
    /// one type.
    pub fn parse(args: &NetdevArgs<'_>) -> Result<DgramConfig, String> {
        if args.get("remote.type").is_none() && args.get("local.type").is_none() {
            return Err(args.error("missing local.type and remote.type (inet or unix)"));
        }
        let remote = args.socket("remote", false)?;
        if let SocketSpec::Inet { host, .. } = &remote
            && host.parse::<IpAddr>().is_ok_and(|ip| ip.is_multicast())
        {
            return Err(args.error(format_args!(
                "remote.host={host} is a multicast group, which dgram does not support yet"
            )));
        }
        let local = args.socket("local", true)?;
        if std::mem::discriminant(&local) != std::mem::discriminant(&remote) {
            return Err(args.error("local.type and remote.type differ"));
        }
        Ok(DgramConfig {
            id: args.id().to_owned(),
            local,
            remote,
        })
    }
}

/// A running `-netdev dgram`; dropping it stops its threads and removes the
/// UNIX socket file it bound.
#[derive(Debug)]
pub struct DgramBackend {
    stop: Arc<AtomicBool>,
    /// Never sent on: dropping it wakes the writer.
    stop_tx: Option<Sender<()>>,
    /// Disconnects when both threads have ended.
    threads_done: Receiver<()>,
    local_addr: Option<SocketAddr>,
    socket_file: Option<PathBuf>,
}

impl DgramBackend {
    /// Binds the local address and starts passing frames.
    pub fn open(config: &DgramConfig, port: BackendPort) -> Result<DgramBackend, String> {
        let id = &config.id;
        let socket = Socket::open(config).map_err(|(what, error)| {
            format!("netdev {id}: cannot {what}: {}", io_reason(&error))
        })?;
        let socket_file = match &config.local {
            SocketSpec::Unix { path } => Some(path.clone()),
            SocketSpec::Inet { .. } => None,
        };
        let local_addr = socket.local_addr();
        let fail = |error: io::Error| {
            if let Some(path) = &socket_file {
                let _ = std::fs::remove_file(path);
            }
            format!("netdev {id}: cannot start: {}", io_reason(&error))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (done_tx, threads_done) = crossbeam_channel::bounded::<()>(0);
        // The reader cannot be woken from its wait, so it waits in slices.
        socket.set_read_timeout(POLL_INTERVAL).map_err(fail)?;
        let reader_socket = socket.try_clone().map_err(fail)?;
        let reader = {
            let (port, stop, done_tx, id) =
                (port.clone(), stop.clone(), done_tx.clone(), id.clone());
            move || {
                read_datagrams(&id, &port, &reader_socket, &stop);
                // Closed before the drop is told the thread is done, so that
                // the address is free once the drop returns.
                drop(reader_socket);
                drop(done_tx);
            }
        };
        let writer = {
            let id = id.clone();
            move || {
                write_datagrams(&id, &port, &socket, &stop_rx);
                drop(socket);
                drop(done_tx);
            }
        };
        let reader = thread::Builder::new()
            .name(format!("netdev-{id}-rx"))
            .spawn(reader)
            .map_err(fail)?;
        if let Err(error) = thread::Builder::new()
            .name(format!("netdev-{id}-tx"))
            .spawn(writer)
        {
            stop.store(true, Ordering::SeqCst);
            let _ = reader.join();
            return Err(fail(error));
        }
        Ok(DgramBackend {
            stop,
            stop_tx: Some(stop_tx),
            threads_done,
            local_addr,
            socket_file,
        })
    }

    /// The UDP address the socket is bound at: how a backend opened with
    /// `local.port=0` tells its port.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

impl Drop for DgramBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stop_tx.take();
        let _ = self.threads_done.recv_timeout(STOP_WAIT);
        if let Some(path) = &self.socket_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Delivers each datagram that arrives as a frame.
fn read_datagrams(id: &str, port: &BackendPort, socket: &Socket, stop: &AtomicBool) {
    // One byte more than a frame may have, to tell an oversized datagram
    // from one that just fits.
    let mut buffer = vec![0; MAX_FRAME + 1];
    while !stop.load(Ordering::SeqCst) && port.nic_present() {
        match socket.recv(&mut buffer) {
            Ok(0) => {}
            Ok(len) if len > MAX_FRAME => {
                tracing::debug!("netdev {id}: dropped a datagram of more than {MAX_FRAME} bytes");
            }
            Ok(len) => {
                port.deliver(buffer[..len].to_vec());
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => {
                // An ICMP error for an earlier send, say: not fatal, but do
                // not spin on a socket that keeps failing.
                tracing::trace!("netdev {id}: receive failed: {error}");
                thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

/// Sends each frame the guest sends as one datagram.
fn write_datagrams(id: &str, port: &BackendPort, socket: &Socket, stop_rx: &Receiver<()>) {
    loop {
        select! {
            recv(port.frames_from_nic()) -> frame => {
                let Ok(frame) = frame else { return };
                if let Err(error) = socket.send(&frame) {
                    // Nobody at the remote address: a wire with no one on
                    // the other end loses the frame too.
                    tracing::trace!("netdev {id}: send failed: {error}");
                }
            }
            recv(stop_rx) -> _ => return,
        }
    }
}

/// A bound datagram socket and where it sends.
#[derive(Debug)]
enum Socket {
    Udp(UdpSocket, SocketAddr),
    Unix(UnixDatagram, PathBuf),
}

impl Socket {
    /// Binds and resolves; an error says what could not be done.
    fn open(config: &DgramConfig) -> Result<Socket, (String, io::Error)> {
        match (&config.local, &config.remote) {
            (local @ SocketSpec::Inet { .. }, remote @ SocketSpec::Inet { .. }) => {
                let remote_addr = remote
                    .resolve()
                    .map_err(|error| (format!("resolve {remote}"), error))?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        (
                            format!("resolve {remote}"),
                            io::Error::new(io::ErrorKind::NotFound, "no address"),
                        )
                    })?;
                // Bind in the remote's family, so that sends can reach it.
                let local_addrs: Vec<SocketAddr> = local
                    .resolve()
                    .map_err(|error| (format!("resolve {local}"), error))?
                    .into_iter()
                    .filter(|addr| addr.is_ipv4() == remote_addr.is_ipv4())
                    .collect();
                let socket = UdpSocket::bind(&local_addrs[..])
                    .map_err(|error| (format!("bind {local}"), error))?;
                Ok(Socket::Udp(socket, remote_addr))
            }
            (SocketSpec::Unix { path: local }, SocketSpec::Unix { path: remote }) => {
                let socket = UnixDatagram::bind(local)
                    .map_err(|error| (format!("bind {}", local.display()), error))?;
                Ok(Socket::Unix(socket, remote.clone()))
            }
            _ => Err((
                "open".to_owned(),
                io::Error::new(io::ErrorKind::InvalidInput, "local and remote types differ"),
            )),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Udp(socket, _) => socket.local_addr().ok(),
            Socket::Unix(..) => None,
        }
    }

    fn try_clone(&self) -> io::Result<Socket> {
        match self {
            Socket::Udp(socket, remote) => Ok(Socket::Udp(socket.try_clone()?, *remote)),
            Socket::Unix(socket, remote) => Ok(Socket::Unix(socket.try_clone()?, remote.clone())),
        }
    }

    fn set_read_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        match self {
            Socket::Udp(socket, _) => socket.set_read_timeout(Some(timeout)),
            Socket::Unix(socket, _) => socket.set_read_timeout(Some(timeout)),
        }
    }

    fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Udp(socket, _) => socket.recv_from(buffer).map(|(len, _)| len),
            Socket::Unix(socket, _) => socket.recv(buffer),
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Udp(socket, remote) => socket.send_to(frame, remote),
            Socket::Unix(socket, remote) => socket.send_to(frame, remote),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::open::open_netdev;
    use crate::net::stream::tests::{eventually, recv_within, spec};
    use std::time::Duration;

    /// A UDP port free a moment ago: both ends must know each other's port
    /// before either opens.
    fn free_udp_port() -> String {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port().to_string()
    }

    fn exchange(a: &crate::net::NetPort, b: &crate::net::NetPort) {
        for (from, to) in [(a, b), (b, a)] {
            for frame in [vec![0x11; 60], vec![0x22; 1514]] {
                assert!(from.send(frame.clone()));
                assert_eq!(recv_within(to, Duration::from_secs(2)), Some(frame));
            }
        }
        assert!(a.link_up() && b.link_up());
    }

    #[test]
    fn two_backends_exchange_frames_over_udp() {
        let (port_a, port_b) = (free_udp_port(), free_udp_port());
        let end = |id: &str, local: &str, remote: &str| {
            open_netdev(&spec(
                id,
                "dgram",
                &[
                    ("local.type", "inet"),
                    ("local.host", "127.0.0.1"),
                    ("local.port", local),
                    ("remote.type", "inet"),
                    ("remote.host", "127.0.0.1"),
                    ("remote.port", remote),
                ],
            ))
            .unwrap()
        };
        let a = end("ua", &port_a, &port_b);
        let b = end("ub", &port_b, &port_a);
        exchange(&a, &b);
        // Frames to a peer that went away are lost, quietly.
        drop(b);
        assert!(a.send(vec![0x33; 60]));
        // The dropped end's port is free again at once.
        UdpSocket::bind(format!("127.0.0.1:{port_b}")).unwrap();
    }

    #[test]
    fn two_backends_exchange_frames_over_unix_datagrams() {
        let dir =
            std::env::temp_dir().join(format!("turing-net-{}-dgram-unix", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (path_a, path_b) = (dir.join("a"), dir.join("b"));
        let capture = dir.join("a.pcap");
        let end = |id: &str, local: &std::path::Path, remote: &std::path::Path| {
            let mut options = spec(
                id,
                "dgram",
                &[
                    ("local.type", "unix"),
                    ("local.path", local.to_str().unwrap()),
                    ("remote.type", "unix"),
                    ("remote.path", remote.to_str().unwrap()),
                ],
            );
            if id == "xa" {
                options
                    .options
                    .push(("pcap".into(), capture.to_str().unwrap().into()));
            }
            open_netdev(&options)
        };
        let a = end("xa", &path_a, &path_b).unwrap();
        // Sent before the peer exists: dropped, not an error.
        assert!(a.send(vec![0x44; 60]));
        thread::sleep(Duration::from_millis(50));
        let b = end("xb", &path_b, &path_a).unwrap();
        assert_eq!(recv_within(&b, Duration::from_millis(100)), None);
        exchange(&a, &b);
        // A's capture holds what it sent (three frames) and received (two).
        let captured = std::fs::metadata(&capture).unwrap().len();
        assert_eq!(captured, 24 + 5 * 16 + 60 + 60 + 1514 + 60 + 1514);
        // A second bind of a path in use fails, and leaves the file.
        let error = end("xc", &path_a, &path_b).unwrap_err();
        assert!(
            error.starts_with(&format!("netdev xc: cannot bind {}: ", path_a.display())),
            "{error}"
        );
        assert!(path_a.exists());
        drop(a);
        drop(b);
        assert!(eventually(|| !path_a.exists() && !path_b.exists()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dgram_options_are_checked() {
        let error = open_netdev(&spec("d0", "dgram", &[])).unwrap_err();
        assert_eq!(
            error,
            "netdev d0: missing local.type and remote.type (inet or unix)"
        );
        let error = open_netdev(&spec(
            "d1",
            "dgram",
            &[
                ("remote.type", "inet"),
                ("remote.host", "230.0.0.1"),
                ("remote.port", "1234"),
            ],
        ))
        .unwrap_err();
        assert_eq!(
            error,
            "netdev d1: remote.host=230.0.0.1 is a multicast group, which dgram does not support yet"
        );
        let error = open_netdev(&spec(
            "d2",
            "dgram",
            &[
                ("remote.type", "inet"),
                ("remote.host", "127.0.0.1"),
                ("remote.port", "1234"),
                ("local.type", "unix"),
                ("local.path", "/nonexistent/x"),
            ],
        ))
        .unwrap_err();
        assert_eq!(error, "netdev d2: local.type and remote.type differ");
        let error = open_netdev(&spec(
            "d3",
            "dgram",
            &[
                ("remote.type", "inet"),
                ("remote.host", "127.0.0.1"),
                ("remote.port", "1234"),
            ],
        ))
        .unwrap_err();
        assert_eq!(error, "netdev d3: missing local.type (inet or unix)");
    }
}
