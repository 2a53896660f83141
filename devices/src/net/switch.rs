//! `turing switch SOCKET`: a learning Ethernet switch on a UNIX stream
//! socket, which VMs (Turing's or QEMU's) join with
//! `-netdev stream,addr.type=unix,addr.path=SOCKET`. It speaks the stream
//! backend's framing, a 4-byte big-endian length before each frame.
//!
//! Like a hardware switch it learns which port each source MAC is behind,
//! sends a unicast frame only to its destination's port once learned, and
//! floods broadcast, multicast and unknown destinations to every other port.
//! A port that disconnects takes its MACs with it. Each client has a bounded
//! queue of frames waiting to be written: a client that does not read loses
//! frames rather than stall the others.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use crossbeam_channel::{Sender, TrySendError};

use emu_core::sync::LockRecover;

use super::POLL_INTERVAL;
use super::spec::io_reason;
use super::stream::{read_frame, write_frame};
use super::{Frame, MAX_FRAME};

/// Frames each client's queue holds before the switch drops new ones for it.
pub const CLIENT_QUEUE_FRAMES: usize = 256;

/// A MAC address.
type Mac = [u8; 6];

/// A switch bound to its socket, not yet (or no longer) running.
#[derive(Debug)]
pub struct Switch {
    path: PathBuf,
    listener: UnixListener,
    ports: Mutex<Ports>,
    /// Frames dropped because a client's queue was full.
    dropped: AtomicU64,
    socket_removed: AtomicBool,
}

/// The connected clients and what the switch learned about them.
#[derive(Debug, Default)]
struct Ports {
    next_id: u64,
    clients: HashMap<u64, Client>,
    /// Which port each learned source MAC is behind.
    macs: HashMap<Mac, u64>,
}

#[derive(Debug)]
struct Client {
    /// The client's queue; its writer thread takes from the other end.
    queue: Sender<Frame>,
    /// Kept to shut the connection down when the switch stops.
    conn: UnixStream,
}

/// Binds a switch at `path` and runs it until `stop` is set; the socket file
/// is removed when it returns.
pub fn run_switch(path: &Path, stop: &AtomicBool) -> Result<(), String> {
    Switch::bind(path)?.run(stop)
}

impl Switch {
    /// Listens at `path`. A socket file there that nothing listens on (left
    /// by a switch that was killed) is replaced; one that something listens
    /// on, or a file that is not a socket, is an error.
    pub fn bind(path: &Path) -> Result<Switch, String> {
        let shown = path.display();
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(format!("switch {shown}: exists and is not a socket"));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "switch {shown}: something is already listening there"
                ));
            }
            std::fs::remove_file(path).map_err(|e| {
                format!(
                    "switch {shown}: cannot remove the stale socket: {}",
                    io_reason(&e)
                )
            })?;
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("switch {shown}: cannot listen: {}", io_reason(&e)))?;
        Ok(Switch {
            path: path.to_owned(),
            listener,
            ports: Mutex::new(Ports::default()),
            dropped: AtomicU64::new(0),
            socket_removed: AtomicBool::new(false),
        })
    }

    /// The socket the switch listens at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.ports.lock_recover().clients.len()
    }

    /// Frames dropped so far because a client did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Accepts clients and switches their frames until `stop` is set (by a
    /// signal handler, say), then disconnects them all and removes the socket.
    pub fn run(&self, stop: &AtomicBool) -> Result<(), String> {
        let shown = self.path.display();
        self.listener
            .set_nonblocking(true)
            .map_err(|e| format!("switch {shown}: {}", io_reason(&e)))?;
        tracing::info!("switch {shown}: listening");
        thread::scope(|scope| {
            while !stop.load(Ordering::SeqCst) {
                match self.listener.accept() {
                    Ok((conn, _)) => {
                        if let Err(error) = self.connect(scope, conn) {
                            tracing::warn!("switch {shown}: cannot take a client: {error}");
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(POLL_INTERVAL);
                    }
                    Err(error) => {
                        // Out of file descriptors and the like.
                        tracing::warn!("switch {shown}: accept failed: {error}");
                        thread::sleep(POLL_INTERVAL * 10);
                    }
                }
            }
            // Wakes every reader, which unregisters its port, which ends
            // its writer; the scope then joins them all.
            for client in self.ports.lock_recover().clients.values() {
                let _ = client.conn.shutdown(Shutdown::Both);
            }
        });
        self.remove_socket();
        tracing::info!("switch {shown}: stopped");
        Ok(())
    }

    /// Registers a new client and starts its reader and writer.
    fn connect<'scope>(
        &'scope self,
        scope: &'scope thread::Scope<'scope, '_>,
        conn: UnixStream,
    ) -> io::Result<()> {
        conn.set_nonblocking(false)?;
        let reader = conn.try_clone()?;
        let mut writer = conn.try_clone()?;
        let (queue, frames) = crossbeam_channel::bounded(CLIENT_QUEUE_FRAMES);
        let port = {
            let mut ports = self.ports.lock_recover();
            let port = ports.next_id;
            ports.next_id += 1;
            ports.clients.insert(port, Client { queue, conn });
            port
        };
        tracing::info!("switch {}: port {port} connected", self.path.display());
        // The writer ends when its queue's sender goes (the port is
        // unregistered) or the client stops taking frames.
        let write_loop = move || {
            let mut buffer = Vec::with_capacity(MAX_FRAME + 4);
            for frame in frames {
                if write_frame(&mut writer, &frame, &mut buffer).is_err() {
                    let _ = writer.shutdown(Shutdown::Both);
                    break;
                }
            }
        };
        let read_loop = move || {
            let mut reader = BufReader::with_capacity(MAX_FRAME + 4, reader);
            loop {
                match read_frame(&mut reader) {
                    Ok(Some(frame)) => self.forward(port, frame),
                    Ok(None) => break,
                    Err(error) => {
                        tracing::debug!("switch {}: port {port}: {error}", self.path.display());
                        break;
                    }
                }
            }
            self.disconnect(port);
        };
        let started = thread::Builder::new()
            .name(format!("switch-{port}-tx"))
            .spawn_scoped(scope, write_loop)
            .and_then(|_| {
                thread::Builder::new()
                    .name(format!("switch-{port}-rx"))
                    .spawn_scoped(scope, read_loop)
            });
        if let Err(error) = started {
            self.disconnect(port);
            return Err(error);
        }
        Ok(())
    }

    /// Forgets `port` and the MACs learned behind it, and closes it.
    fn disconnect(&self, port: u64) {
        let mut ports = self.ports.lock_recover();
        if let Some(client) = ports.clients.remove(&port) {
            let _ = client.conn.shutdown(Shutdown::Both);
        }
        ports.macs.retain(|_, behind| *behind != port);
        tracing::info!("switch {}: port {port} disconnected", self.path.display());
    }

    /// Learns the frame's source and passes it on to where its destination is.
    fn forward(&self, from: u64, frame: Frame) {
        // Too short for two MACs and a type: not Ethernet.
        if frame.len() < 14 {
            return;
        }
        let mut destination: Mac = [0; 6];
        let mut source: Mac = [0; 6];
        destination.copy_from_slice(&frame[0..6]);
        source.copy_from_slice(&frame[6..12]);
        let is_group = |mac: &Mac| mac[0] & 1 != 0;
        let mut ports = self.ports.lock_recover();
        // A group address is never a source; a frame claiming one is not learned from.
        if !is_group(&source) {
            ports.macs.insert(source, from);
        }
        let learned = if is_group(&destination) {
            None
        } else {
            ports.macs.get(&destination).copied()
        };
        match learned {
            // The destination is on the sender's own side: nothing to do.
            Some(port) if port == from => {}
            Some(port) => {
                if let Some(client) = ports.clients.get(&port) {
                    self.enqueue(client, frame);
                }
            }
            None => {
                for (_, client) in ports.clients.iter().filter(|(port, _)| **port != from) {
                    self.enqueue(client, frame.clone());
                }
            }
        }
    }

    fn enqueue(&self, client: &Client, frame: Frame) {
        match client.queue.try_send(frame) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn remove_socket(&self) {
        if !self.socket_removed.swap(true, Ordering::SeqCst) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.remove_socket();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetPort;
    use crate::net::open::open_netdev;
    use crate::net::stream::tests::{eventually, recv_within, spec};
    use std::time::Duration;

    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("turing-net-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn join(id: &str, path: &Path) -> NetPort {
        open_netdev(&spec(
            id,
            "stream",
            &[("addr.type", "unix"), ("addr.path", path.to_str().unwrap())],
        ))
        .unwrap()
    }

    fn mac(last: u8) -> Mac {
        [0x52, 0x54, 0, 0x12, 0x34, last]
    }

    fn frame(to: Mac, from: Mac, fill: u8) -> Frame {
        let mut frame = Vec::with_capacity(60);
        frame.extend_from_slice(&to);
        frame.extend_from_slice(&from);
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.resize(60, fill);
        frame
    }

    const ARRIVES: Duration = Duration::from_secs(2);
    /// How long a frame that should not arrive is waited for.
    const ABSENT: Duration = Duration::from_millis(150);

    #[test]
    fn the_switch_floods_then_learns_then_forgets() {
        let dir = temp_dir("switch-learns");
        let path = dir.join("switch.sock");
        let switch = Switch::bind(&path).unwrap();
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let running = scope.spawn(|| switch.run(&stop));
            let (a, b, c) = (join("sa", &path), join("sb", &path), join("sc", &path));
            assert!(eventually(|| switch.clients() == 3));

            // A broadcast from A reaches B and C, not A.
            let hello = frame([0xff; 6], mac(0xa), 1);
            assert!(a.send(hello.clone()));
            assert_eq!(recv_within(&b, ARRIVES).as_ref(), Some(&hello));
            assert_eq!(recv_within(&c, ARRIVES).as_ref(), Some(&hello));
            assert_eq!(recv_within(&a, ABSENT), None);

            // A is learned: B's answer goes to A only; then B is learned.
            let answer = frame(mac(0xa), mac(0xb), 2);
            assert!(b.send(answer.clone()));
            assert_eq!(recv_within(&a, ARRIVES).as_ref(), Some(&answer));
            assert_eq!(recv_within(&c, ABSENT), None);
            let to_b = frame(mac(0xb), mac(0xa), 3);
            assert!(a.send(to_b.clone()));
            assert_eq!(recv_within(&b, ARRIVES).as_ref(), Some(&to_b));
            assert_eq!(recv_within(&c, ABSENT), None);

            // B leaves: its MAC is forgotten, so a frame to it is flooded.
            drop(b);
            assert!(eventually(|| switch.clients() == 2));
            let to_gone = frame(mac(0xb), mac(0xa), 4);
            assert!(a.send(to_gone.clone()));
            assert_eq!(recv_within(&c, ARRIVES).as_ref(), Some(&to_gone));

            // Runts are not switched.
            assert!(a.send(vec![0xff; 10]));
            assert_eq!(recv_within(&c, ABSENT), None);

            stop.store(true, Ordering::SeqCst);
            assert_eq!(running.join().unwrap(), Ok(()));
            assert!(eventually(|| !a.link_up() && !c.link_up()));
        });
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_live_switch_is_not_replaced_but_a_stale_socket_is() {
        let dir = temp_dir("switch-stale");
        let path = dir.join("switch.sock");
        let live = UnixListener::bind(&path).unwrap();
        let error = Switch::bind(&path).unwrap_err();
        assert_eq!(
            error,
            format!(
                "switch {}: something is already listening there",
                path.display()
            )
        );
        // A listener that went away leaves its file behind.
        drop(live);
        assert!(path.exists());
        let switch = Switch::bind(&path).unwrap();
        drop(switch);
        assert!(!path.exists());

        std::fs::write(&path, b"not a socket").unwrap();
        let error = Switch::bind(&path).unwrap_err();
        assert!(error.ends_with("exists and is not a socket"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_client_that_does_not_read_does_not_stall_the_others() {
        let dir = temp_dir("switch-slow");
        let path = dir.join("switch.sock");
        let switch = Switch::bind(&path).unwrap();
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| switch.run(&stop));
            // A raw client that never reads.
            let _deaf = UnixStream::connect(&path).unwrap();
            let (a, b) = (join("sd", &path), join("se", &path));
            assert!(eventually(|| switch.clients() == 3));
            // Enough broadcasts to fill the deaf client's socket buffer and queue.
            let mut received = 0u32;
            for index in 0..4000u32 {
                let mut hello = frame([0xff; 6], mac(0xd), 0);
                hello.resize(1514, index as u8);
                while !a.send(hello.clone()) {
                    thread::sleep(Duration::from_micros(100));
                }
                while b.try_recv().is_some() {
                    received += 1;
                }
                if index % 64 == 63 {
                    // Let B catch up so that its own NIC queue does not overflow.
                    while received + 64 < index && recv_within(&b, ARRIVES).is_some() {
                        received += 1;
                    }
                }
            }
            while recv_within(&b, Duration::from_millis(200)).is_some() {
                received += 1;
            }
            assert!(received >= 3900, "B got {received} of 4000");
            assert!(switch.dropped() > 0);
            stop.store(true, Ordering::SeqCst);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
