//! `-netdev stream`: Ethernet frames over a TCP or UNIX stream socket, each
//! after its length as a 4-byte big-endian integer, as QEMU 7.2 frames them.
//!
//! As a server (`server=on`) the backend listens at open time, so an address
//! in use stops the machine before the guest runs, and then serves one peer at
//! a time: the link is down while no peer is connected. As a client it
//! connects at open time, and when the connection drops the link goes down
//! and, with `reconnect=SECONDS`, it tries again that often.
//!
//! Each connection has two threads: one reads frames and delivers them to the
//! NIC, one writes what the guest sent. Dropping [`StreamBackend`] shuts the
//! sockets down and waits (briefly) for every thread to end.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};

use emu_core::sync::LockRecover;

use super::spec::{NetdevArgs, SocketSpec, io_reason};
use super::{BackendPort, Frame, MAX_FRAME, POLL_INTERVAL, STOP_WAIT};

/// The options `-netdev stream` takes (besides `id` and `pcap`).
pub const OPTIONS: &[&str] = &[
    "server",
    "addr.type",
    "addr.host",
    "addr.port",
    "addr.path",
    "reconnect",
];

/// How long a TCP connect may take before the host counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `-netdev stream` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The netdev's id, for errors and logs.
    pub id: String,
    /// Listen for a peer rather than connect to one.
    pub server: bool,
    /// Where to listen or connect.
    pub addr: SocketSpec,
    /// For a client, how long to wait before connecting again after the
    /// connection dropped; `None`: stay disconnected.
    pub reconnect: Option<Duration>,
}

impl StreamConfig {
    /// Reads the options of [`OPTIONS`].
    pub fn parse(args: &NetdevArgs<'_>) -> Result<StreamConfig, String> {
        let server = args.bool("server", false)?;
        let addr = args.socket("addr", server)?;
        let reconnect = args.seconds("reconnect")?.map(Duration::from_secs);
        if server && reconnect.is_some() {
            return Err(args.error("reconnect is for a client (server=off)"));
        }
        Ok(StreamConfig {
            id: args.id().to_owned(),
            server,
            addr,
            reconnect,
        })
    }
}

/// A running `-netdev stream`; dropping it stops its threads, closes its
/// sockets and removes the UNIX socket file it listened at.
#[derive(Debug)]
pub struct StreamBackend {
    shared: Arc<Shared>,
    /// Never sent on: dropping it wakes every thread waiting on the other end.
    stop_tx: Option<Sender<()>>,
    /// Disconnects when every thread of the backend has ended.
    threads_done: Receiver<()>,
    local_addr: Option<SocketAddr>,
    /// The UNIX socket file a server created.
    socket_file: Option<PathBuf>,
}

/// What the backend's handle and its threads share.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// The connection being served, kept so that a drop can shut it down and
    /// so wake its reader.
    current: Mutex<Option<Conn>>,
}

impl StreamBackend {
    /// Listens or connects as `config` says and starts serving `port`.
    pub fn open(config: &StreamConfig, port: BackendPort) -> Result<StreamBackend, String> {
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let (done_tx, threads_done) = crossbeam_channel::bounded(0);
        let worker = Worker {
            id: config.id.clone(),
            port,
            shared: shared.clone(),
            stop_rx,
            done_tx,
        };
        let local_addr;
        let mut socket_file = None;
        let run: Box<dyn FnOnce() + Send> = if config.server {
            let listener = Listener::bind(&config.addr)
                .map_err(|e| cannot_listen(&config.id, &config.addr, &e))?;
            local_addr = listener.local_addr();
            if let SocketSpec::Unix { path } = &config.addr {
                socket_file = Some(path.clone());
            }
            tracing::info!("netdev {}: listening on {}", config.id, listener.describe());
            worker.port.set_link(false);
            Box::new(move || worker.serve_as_server(listener))
        } else {
            let conn = Conn::connect(&config.addr).map_err(|e| {
                format!(
                    "netdev {}: cannot connect to {}: {}",
                    config.id,
                    config.addr,
                    io_reason(&e)
                )
            })?;
            local_addr = conn.local_addr();
            let addr = config.addr.clone();
            let reconnect = config.reconnect;
            Box::new(move || worker.serve_as_client(conn, &addr, reconnect))
        };
        let spawned = thread::Builder::new()
            .name(format!("netdev-{}", config.id))
            .spawn(run);
        if let Err(error) = spawned {
            if let Some(path) = &socket_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(format!(
                "netdev {}: cannot start a thread: {}",
                config.id,
                io_reason(&error)
            ));
        }
        Ok(StreamBackend {
            shared,
            stop_tx: Some(stop_tx),
            threads_done,
            local_addr,
            socket_file,
        })
    }

    /// The TCP address the backend listens at (a server) or connected from
    /// (a client): how a server opened with port 0 tells its port.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

impl Drop for StreamBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.stop_tx.take();
        if let Some(conn) = self.shared.current.lock_recover().take() {
            conn.shutdown();
        }
        // Wait for the threads so that the listening address is free again
        // once the backend is gone, but never long.
        let _ = self.threads_done.recv_timeout(STOP_WAIT);
        if let Some(path) = &self.socket_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn cannot_listen(id: &str, addr: &SocketSpec, error: &io::Error) -> String {
    let hint = match (addr, error.kind()) {
        (SocketSpec::Unix { .. }, io::ErrorKind::AddrInUse) => {
            " (remove the file if nothing listens there)"
        }
        _ => "",
    };
    format!(
        "netdev {id}: cannot listen on {addr}: {}{hint}",
        io_reason(error)
    )
}

/// What the backend's threads work with.
struct Worker {
    id: String,
    port: BackendPort,
    shared: Arc<Shared>,
    /// Disconnects when the handle is dropped.
    stop_rx: Receiver<()>,
    /// Held by every thread; see [`StreamBackend::threads_done`].
    done_tx: Sender<()>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst) || !self.port.nic_present()
    }

    /// Waits `duration`; false if the backend is stopping.
    fn pause(&self, duration: Duration) -> bool {
        matches!(
            self.stop_rx.recv_timeout(duration),
            Err(RecvTimeoutError::Timeout)
        ) && !self.stopping()
    }

    /// A server's thread: accepts a peer, serves it until it goes, accepts
    /// the next. The listener is non-blocking so the loop sees a stop.
    fn serve_as_server(self, listener: Listener) {
        if let Err(error) = listener.set_nonblocking(true) {
            tracing::error!("netdev {}: cannot poll the listener: {error}", self.id);
            return;
        }
        while !self.stopping() {
            match listener.accept() {
                Ok(conn) => {
                    let peer = conn.describe_peer();
                    tracing::info!("netdev {}: peer {peer} connected", self.id);
                    self.serve(conn);
                    tracing::info!("netdev {}: peer {peer} disconnected", self.id);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if !self.pause(POLL_INTERVAL) {
                        break;
                    }
                }
                Err(error) => {
                    // Out of file descriptors and the like: try again later.
                    tracing::warn!("netdev {}: accept failed: {error}", self.id);
                    if !self.pause(POLL_INTERVAL * 10) {
                        break;
                    }
                }
            }
        }
        // Closed before `self` (and its `done_tx`) goes, so that the address
        // is free once the handle's drop returns.
        drop(listener);
    }

    /// A client's thread: serves the connection made at open time, then,
    /// with `reconnect`, connects again after each drop.
    fn serve_as_client(self, first: Conn, addr: &SocketSpec, reconnect: Option<Duration>) {
        let mut conn = Some(first);
        loop {
            if let Some(conn) = conn.take() {
                self.serve(conn);
                tracing::info!("netdev {}: connection to {addr} lost", self.id);
            }
            let Some(every) = reconnect else { break };
            if !self.pause(every) {
                break;
            }
            match Conn::connect(addr) {
                Ok(new) => {
                    tracing::info!("netdev {}: reconnected to {addr}", self.id);
                    conn = Some(new);
                }
                Err(error) => {
                    tracing::debug!("netdev {}: cannot reconnect to {addr}: {error}", self.id);
                }
            }
        }
    }

    /// Runs one connection to its end: the link is up meanwhile. Frames are
    /// read here; a second thread writes.
    fn serve(&self, conn: Conn) {
        let (Ok(reader), Ok(writer)) = (conn.try_clone(), conn.try_clone()) else {
            tracing::warn!(
                "netdev {}: cannot duplicate the connection's socket",
                self.id
            );
            return;
        };
        {
            // Checked under the lock a drop takes, so a drop either sees this
            // connection or this thread sees the stop.
            let mut current = self.shared.current.lock_recover();
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            *current = Some(conn);
        }
        self.port.set_link(true);
        // Disconnects when the reader is done, which stops the writer.
        let (reading_tx, reading_rx) = crossbeam_channel::bounded::<()>(0);
        let write_loop = {
            let port = self.port.clone();
            let stop_rx = self.stop_rx.clone();
            let done_tx = self.done_tx.clone();
            let id = self.id.clone();
            move || {
                write_frames(&id, &port, writer, &stop_rx, &reading_rx);
                drop(done_tx);
            }
        };
        let writer_thread = thread::Builder::new()
            .name(format!("netdev-{}-tx", self.id))
            .spawn(write_loop);
        match writer_thread {
            Ok(writer_thread) => {
                read_frames(&self.id, &self.port, reader);
                drop(reading_tx);
                self.port.set_link(false);
                if let Some(conn) = self.shared.current.lock_recover().take() {
                    conn.shutdown();
                }
                let _ = writer_thread.join();
            }
            Err(error) => {
                tracing::warn!("netdev {}: cannot start a writer thread: {error}", self.id);
                self.port.set_link(false);
                if let Some(conn) = self.shared.current.lock_recover().take() {
                    conn.shutdown();
                }
            }
        }
    }
}

/// Delivers the frames the peer sends until it closes, fails or sends
/// something that is not a frame.
fn read_frames(id: &str, port: &BackendPort, conn: Conn) {
    let mut reader = BufReader::with_capacity(MAX_FRAME + 4, conn);
    loop {
        match read_frame(&mut reader) {
            Ok(Some(frame)) => {
                port.deliver(frame);
            }
            Ok(None) => return,
            Err(error) => {
                if error.kind() == io::ErrorKind::InvalidData {
                    tracing::warn!("netdev {id}: {error}; dropping the connection");
                } else {
                    tracing::debug!("netdev {id}: read failed: {error}");
                }
                return;
            }
        }
    }
}

/// Writes what the guest sends until the connection or the backend ends.
fn write_frames(
    id: &str,
    port: &BackendPort,
    mut conn: Conn,
    stop_rx: &Receiver<()>,
    reading_rx: &Receiver<()>,
) {
    let mut buffer = Vec::with_capacity(MAX_FRAME + 4);
    loop {
        select! {
            recv(port.frames_from_nic()) -> frame => {
                let Ok(frame) = frame else { return };
                if let Err(error) = write_frame(&mut conn, &frame, &mut buffer) {
                    tracing::debug!("netdev {id}: write failed: {error}");
                    // Wakes the reader, which ends the connection.
                    conn.shutdown();
                    return;
                }
            }
            recv(stop_rx) -> _ => return,
            recv(reading_rx) -> _ => return,
        }
    }
}

/// Reads one length-prefixed frame; `None` at a clean end of stream. A length
/// over [`MAX_FRAME`] is an `InvalidData` error, found before anything is
/// allocated for it. Empty frames carry nothing and are skipped.
pub(crate) fn read_frame(reader: &mut impl Read) -> io::Result<Option<Frame>> {
    loop {
        let mut header = [0; 4];
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the peer sent a frame of {len} bytes (at most {MAX_FRAME}): not a frame stream"
                ),
            ));
        }
        if len == 0 {
            continue;
        }
        let mut frame = vec![0; len];
        reader.read_exact(&mut frame)?;
        return Ok(Some(frame));
    }
}

/// Writes `frame` after its length, in one write so that the peer rarely
/// sees half a frame and small frames take one segment. `buffer` is scratch.
pub(crate) fn write_frame(
    writer: &mut impl Write,
    frame: &[u8],
    buffer: &mut Vec<u8>,
) -> io::Result<()> {
    let Ok(len) = u32::try_from(frame.len()) else {
        return Ok(());
    };
    if frame.len() > MAX_FRAME {
        // The peer would take it for a corrupt stream and hang up.
        return Ok(());
    }
    buffer.clear();
    buffer.extend_from_slice(&len.to_be_bytes());
    buffer.extend_from_slice(frame);
    writer.write_all(buffer)
}

/// A connected stream socket of either family.
#[derive(Debug)]
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn connect(addr: &SocketSpec) -> io::Result<Conn> {
        match addr {
            SocketSpec::Inet { .. } => {
                let mut last_error = io::Error::new(
                    io::ErrorKind::NotFound,
                    "the host name resolves to no address",
                );
                for candidate in addr.resolve()? {
                    match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
                        Ok(stream) => {
                            // Frames are whole messages; waiting to fill a
                            // segment only adds latency.
                            stream.set_nodelay(true)?;
                            return Ok(Conn::Tcp(stream));
                        }
                        Err(error) => last_error = error,
                    }
                }
                Err(last_error)
            }
            SocketSpec::Unix { path } => UnixStream::connect(path).map(Conn::Unix),
        }
    }

    fn try_clone(&self) -> io::Result<Conn> {
        match self {
            Conn::Tcp(stream) => stream.try_clone().map(Conn::Tcp),
            Conn::Unix(stream) => stream.try_clone().map(Conn::Unix),
        }
    }

    /// Ends both directions, waking a thread blocked reading or writing.
    fn shutdown(&self) {
        let _ = match self {
            Conn::Tcp(stream) => stream.shutdown(Shutdown::Both),
            Conn::Unix(stream) => stream.shutdown(Shutdown::Both),
        };
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Conn::Tcp(stream) => stream.local_addr().ok(),
            Conn::Unix(_) => None,
        }
    }

    fn describe_peer(&self) -> String {
        match self {
            Conn::Tcp(stream) => stream
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |addr| addr.to_string()),
            Conn::Unix(_) => "(unix)".to_owned(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(stream) => stream.read(buf),
            Conn::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(stream) => stream.write(buf),
            Conn::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening stream socket of either family.
#[derive(Debug)]
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    fn bind(addr: &SocketSpec) -> io::Result<Listener> {
        match addr {
            SocketSpec::Inet { .. } => {
                let addrs = addr.resolve()?;
                TcpListener::bind(&addrs[..]).map(Listener::Tcp)
            }
            SocketSpec::Unix { path } => {
                UnixListener::bind(path).map(|l| Listener::Unix(l, path.clone()))
            }
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Listener::Tcp(listener) => listener
                .local_addr()
                .map_or_else(|_| "?".to_owned(), |addr| addr.to_string()),
            Listener::Unix(_, path) => path.display().to_string(),
        }
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(listener) => listener.set_nonblocking(nonblocking),
            Listener::Unix(listener, _) => listener.set_nonblocking(nonblocking),
        }
    }

    /// The next peer, its socket blocking whatever the listener is.
    fn accept(&self) -> io::Result<Conn> {
        let conn = match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                Conn::Tcp(stream)
            }
            Listener::Unix(listener, _) => {
                let (stream, _) = listener.accept()?;
                stream.set_nonblocking(false)?;
                Conn::Unix(stream)
            }
        };
        Ok(conn)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::net::open::open_netdev;
    use crate::net::{NetPort, port_pair};
    use emu_core::config::NetdevSpec;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Whether `condition` holds within two seconds.
    pub(crate) fn eventually(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        condition()
    }

    /// The next frame `nic` receives within `timeout`.
    pub(crate) fn recv_within(nic: &NetPort, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = nic.try_recv() {
                return Some(frame);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    pub(crate) fn spec(id: &str, kind: &str, pairs: &[(&str, &str)]) -> NetdevSpec {
        NetdevSpec {
            id: id.into(),
            kind: kind.into(),
            options: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Opens a stream netdev, returning its NIC port and its TCP address.
    fn open(id: &str, pairs: &[(&str, &str)]) -> Result<(NetPort, Option<SocketAddr>), String> {
        let options = spec(id, "stream", pairs);
        let args = NetdevArgs::new(&options, OPTIONS)?;
        let config = StreamConfig::parse(&args)?;
        let (mut nic, port) = port_pair(None);
        let backend = StreamBackend::open(&config, port)?;
        let addr = backend.local_addr();
        nic.hold_backend(Box::new(backend));
        Ok((nic, addr))
    }

    fn server() -> (NetPort, SocketAddr) {
        let (nic, addr) = open(
            "srv",
            &[
                ("server", "on"),
                ("addr.type", "inet"),
                ("addr.host", "127.0.0.1"),
                ("addr.port", "0"),
            ],
        )
        .unwrap();
        (nic, addr.unwrap())
    }

    fn client_of(addr: SocketAddr, extra: &[(&str, &str)]) -> Result<NetPort, String> {
        let port = addr.port().to_string();
        let mut pairs = vec![
            ("addr.type", "inet"),
            ("addr.host", "127.0.0.1"),
            ("addr.port", port.as_str()),
        ];
        pairs.extend_from_slice(extra);
        open("cli", &pairs).map(|(nic, _)| nic)
    }

    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("turing-net-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Frame `index` of a sequence: lengths from 60 to 1514, its index in
    /// the first bytes and a pattern after.
    fn numbered_frame(index: usize) -> Frame {
        let len = match index % 3 {
            0 => 60,
            1 => 1514,
            _ => 60 + (index * 7) % 1455,
        };
        let mut frame: Frame = (0..len).map(|at| (at * 31 + index) as u8).collect();
        frame[..4].copy_from_slice(&(index as u32).to_be_bytes());
        frame
    }

    #[test]
    fn frames_cross_between_server_and_client_whole_and_in_order() {
        let (server_nic, addr) = server();
        assert!(!server_nic.link_up(), "no peer yet");
        let client_nic = client_of(addr, &[]).unwrap();
        assert!(client_nic.link_up());
        assert!(eventually(|| server_nic.link_up()));

        // Each way, a 60-byte and a 1514-byte frame, byte-exact.
        for (from, to) in [(&server_nic, &client_nic), (&client_nic, &server_nic)] {
            for frame in [vec![0x5a; 60], numbered_frame(1)] {
                assert!(from.send(frame.clone()));
                assert_eq!(recv_within(to, Duration::from_secs(2)), Some(frame));
            }
        }

        // Many frames in order, the sender keeping at most a window in
        // flight so that no queue on the way overflows.
        const COUNT: usize = 10_000;
        const WINDOW: usize = 256;
        let received = AtomicUsize::new(0);
        let sent = thread::scope(|scope| {
            let received = &received;
            let receiver = scope.spawn(move || {
                for index in 0..COUNT {
                    match recv_within(&server_nic, Duration::from_secs(10)) {
                        Some(frame) if frame == numbered_frame(index) => {}
                        other => {
                            return Err(format!(
                                "frame {index}: got {:?}; server {}, link {}",
                                other.map(|frame| frame.len()),
                                server_nic.stats().summary(),
                                server_nic.link_up()
                            ));
                        }
                    }
                    received.store(index + 1, Ordering::Release);
                }
                Ok(server_nic.stats().rx_dropped.load(Ordering::Relaxed))
            });
            for index in 0..COUNT {
                while index >= received.load(Ordering::Acquire) + WINDOW {
                    if receiver.is_finished() {
                        break;
                    }
                    thread::yield_now();
                }
                while !client_nic.send(numbered_frame(index)) && !receiver.is_finished() {
                    thread::sleep(Duration::from_micros(100));
                }
            }
            let result = receiver.join().unwrap();
            (result, client_nic.stats().summary(), client_nic.link_up())
        });
        assert_eq!(sent.0, Ok(0), "client {}, link {}", sent.1, sent.2);
    }

    #[test]
    fn the_server_link_follows_its_peer_and_takes_the_next_one() {
        let (server_nic, addr) = server();
        let client_nic = client_of(addr, &[]).unwrap();
        assert!(eventually(|| server_nic.link_up()));
        drop(client_nic);
        assert!(eventually(|| !server_nic.link_up()));
        let second = client_of(addr, &[]).unwrap();
        assert!(eventually(|| server_nic.link_up()));
        assert!(second.send(vec![7; 60]));
        assert_eq!(
            recv_within(&server_nic, Duration::from_secs(2)),
            Some(vec![7; 60])
        );
    }

    #[test]
    fn a_client_reconnects_to_a_server_that_comes_back() {
        let (server_nic, addr) = server();
        let client_nic = client_of(addr, &[("reconnect", "1")]).unwrap();
        assert!(eventually(|| server_nic.link_up()));
        drop(server_nic);
        assert!(eventually(|| !client_nic.link_up()));
        // The dropped server's port is free again at once.
        let port = addr.port().to_string();
        let (server_nic, _) = open(
            "srv2",
            &[
                ("server", "on"),
                ("addr.type", "inet"),
                ("addr.host", "127.0.0.1"),
                ("addr.port", port.as_str()),
            ],
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(client_nic.link_up() && server_nic.link_up()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(client_nic.link_up() && server_nic.link_up());
        assert!(client_nic.send(vec![9; 70]));
        assert_eq!(
            recv_within(&server_nic, Duration::from_secs(2)),
            Some(vec![9; 70])
        );
    }

    #[test]
    fn the_wire_format_is_a_big_endian_length_then_the_frame() {
        let (server_nic, addr) = server();
        let mut peer = TcpStream::connect(addr).unwrap();
        assert!(eventually(|| server_nic.link_up()));
        let frame = numbered_frame(2);
        assert!(server_nic.send(frame.clone()));
        let mut header = [0; 4];
        peer.read_exact(&mut header).unwrap();
        assert_eq!(header, (frame.len() as u32).to_be_bytes());
        let mut body = vec![0; frame.len()];
        peer.read_exact(&mut body).unwrap();
        assert_eq!(body, frame);

        // And the other way, split across writes as a peer may.
        peer.write_all(&[0, 0]).unwrap();
        peer.write_all(&[0, 60, 1, 2]).unwrap();
        peer.write_all(&[3; 58]).unwrap();
        let mut expected = vec![1, 2];
        expected.extend_from_slice(&[3; 58]);
        assert_eq!(
            recv_within(&server_nic, Duration::from_secs(2)),
            Some(expected)
        );
    }

    #[test]
    fn an_oversized_length_drops_the_connection_without_allocating_it() {
        let (server_nic, addr) = server();
        let mut peer = TcpStream::connect(addr).unwrap();
        assert!(eventually(|| server_nic.link_up()));
        peer.write_all(&u32::MAX.to_be_bytes()).unwrap();
        assert!(eventually(|| !server_nic.link_up()));
        // The server closed its end.
        let mut rest = Vec::new();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(peer.read_to_end(&mut rest).map_err(|e| e.kind()), Ok(0));
    }

    #[test]
    fn open_errors_are_one_line_each() {
        let (_server_nic, addr) = server();
        let port = addr.port().to_string();
        let in_use = open(
            "n1",
            &[
                ("server", "on"),
                ("addr.type", "inet"),
                ("addr.host", "127.0.0.1"),
                ("addr.port", port.as_str()),
            ],
        )
        .unwrap_err();
        assert_eq!(
            in_use,
            format!("netdev n1: cannot listen on 127.0.0.1:{port}: Address already in use")
        );

        // A port no one listens on: bind one, note it, close it.
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let refused = client_of(free, &[]).unwrap_err();
        assert_eq!(
            refused,
            format!("netdev cli: cannot connect to {free}: Connection refused")
        );

        let error = open_netdev(&spec(
            "n2",
            "stream",
            &[("addr.type", "inet"), ("addr.host", "h")],
        ))
        .unwrap_err();
        assert_eq!(error, "netdev n2: missing addr.port");
        let error = open_netdev(&spec("n3", "stream", &[("addr.kind", "inet")])).unwrap_err();
        assert_eq!(
            error,
            "netdev n3: unknown option 'addr.kind' for stream (it takes server, addr.type, \
             addr.host, addr.port, addr.path, reconnect, pcap)"
        );
        let error = open_netdev(&spec(
            "n4",
            "stream",
            &[
                ("server", "on"),
                ("reconnect", "2"),
                ("addr.type", "unix"),
                ("addr.path", "/nonexistent/x"),
            ],
        ))
        .unwrap_err();
        assert_eq!(error, "netdev n4: reconnect is for a client (server=off)");
        let error = open_netdev(&spec("n5", "stream", &[("server", "maybe")])).unwrap_err();
        assert_eq!(error, "netdev n5: bad server=maybe (on or off)");
    }

    #[test]
    fn a_unix_server_and_client_link_and_the_socket_file_goes_with_the_server() {
        let dir = temp_dir("stream-unix");
        let path = dir.join("sock");
        let path_text = path.to_str().unwrap();
        let server_nic = open_netdev(&spec(
            "srv",
            "stream",
            &[
                ("server", "on"),
                ("addr.type", "unix"),
                ("addr.path", path_text),
            ],
        ))
        .unwrap();
        assert!(path.exists());
        // A second server on the same path is refused, and leaves the file.
        let error = open_netdev(&spec(
            "srv2",
            "stream",
            &[
                ("server", "on"),
                ("addr.type", "unix"),
                ("addr.path", path_text),
            ],
        ))
        .unwrap_err();
        assert!(
            error.starts_with(&format!("netdev srv2: cannot listen on {path_text}: ")),
            "{error}"
        );
        assert!(!error.contains('\n'));
        let client_nic = open_netdev(&spec(
            "cli",
            "stream",
            &[("addr.type", "unix"), ("addr.path", path_text)],
        ))
        .unwrap();
        assert!(eventually(|| server_nic.link_up()));
        assert!(client_nic.send(vec![4; 1514]));
        assert_eq!(
            recv_within(&server_nic, Duration::from_secs(2)),
            Some(vec![4; 1514])
        );
        assert!(server_nic.send(vec![5; 60]));
        assert_eq!(
            recv_within(&client_nic, Duration::from_secs(2)),
            Some(vec![5; 60])
        );
        drop(server_nic);
        assert!(!path.exists());
        assert!(eventually(|| !client_nic.link_up()));
        drop(client_nic);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The names of this process's threads that start with `prefix`.
    fn threads_named(prefix: &str) -> Vec<String> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_owned())
            .filter(|name| name.starts_with(prefix))
            .collect()
    }

    #[test]
    fn dropping_a_backend_ends_its_threads() {
        let (server_nic, addr) = open(
            "ds",
            &[
                ("server", "on"),
                ("addr.type", "inet"),
                ("addr.host", "127.0.0.1"),
                ("addr.port", "0"),
            ],
        )
        .unwrap();
        let addr = addr.unwrap();
        let port = addr.port().to_string();
        let (client_nic, _) = open(
            "dc",
            &[
                ("addr.type", "inet"),
                ("addr.host", "127.0.0.1"),
                ("addr.port", port.as_str()),
                ("reconnect", "1"),
            ],
        )
        .unwrap();
        assert!(eventually(|| server_nic.link_up()));
        assert_eq!(threads_named("netdev-ds").len(), 2);
        assert_eq!(threads_named("netdev-dc").len(), 2);
        let started = Instant::now();
        drop(client_nic);
        drop(server_nic);
        assert!(eventually(|| threads_named("netdev-d").is_empty()));
        assert!(started.elapsed() < Duration::from_millis(300));
        // Its port can be listened on again at once.
        TcpListener::bind(addr).unwrap();
    }
}
