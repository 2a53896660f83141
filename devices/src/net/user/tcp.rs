//! TCP through the user network: each guest connection is a smoltcp socket
//! on the guest's side and a host `TcpStream` on the other, with the bytes
//! moved between them, and each end's close passed to the other.
//!
//! Guest connections start at [`Connections::accept_from_guest`], once the
//! host connection exists; forwarded host ports (`hostfwd=tcp:...`) start
//! in [`Connections::pump`], which accepts on their listeners and connects
//! to the guest from the gateway's address.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp::{Socket, SocketBuffer, State};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::frames::Endpoint;

/// Each direction's buffer in a smoltcp socket: a window large enough for
/// fast transfers on loopback.
const SOCKET_BUFFER: usize = 256 * 1024;
/// Bytes moved per read or write.
const CHUNK: usize = 64 * 1024;
/// How long a connection may take to be established before it is dropped.
const HANDSHAKE: Duration = Duration::from_secs(30);
/// Connections open at once, at most: each holds two socket buffers.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// The first local port of connections to forwarded guest ports.
const FIRST_EPHEMERAL: u16 = 49_152;

/// One connection.
struct Connection {
    handle: SocketHandle,
    stream: TcpStream,
    /// The guest's end.
    guest: Endpoint,
    /// The other end, as the guest sees it.
    other: Endpoint,
    started: Instant,
    /// The socket reached ESTABLISHED once.
    established: bool,
    /// Bytes from the guest not yet written to the host.
    to_host: Vec<u8>,
    to_host_at: usize,
    /// The host closed its sending side; the socket was closed after it.
    host_done: bool,
    /// The guest's close was passed on (the host stream's write side shut).
    guest_done: bool,
}

/// Every TCP connection of a user network, and its forwarded ports.
pub(crate) struct Connections {
    listeners: Vec<(TcpListener, Endpoint)>,
    open: Vec<Connection>,
    next_port: u16,
}

fn new_socket() -> Socket<'static> {
    let mut socket = Socket::new(
        SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    );
    // The host stream already batches; waiting for more only adds latency.
    socket.set_nagle_enabled(false);
    socket
}

fn ip(address: std::net::Ipv4Addr) -> IpAddress {
    IpAddress::Ipv4(address)
}

impl Connections {
    /// No connections yet, accepting on `listeners` (each forwarding to a
    /// guest endpoint).
    pub(crate) fn new(listeners: Vec<(TcpListener, Endpoint)>) -> Connections {
        Connections {
            listeners,
            open: Vec::new(),
            next_port: FIRST_EPHEMERAL,
        }
    }

    /// How many connections are open.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no connection is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Whether host ports are forwarded (their listeners need polling).
    pub(crate) fn listening(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Whether a socket already serves the guest's `guest` talking to `other`.
    pub(crate) fn knows(&self, guest: Endpoint, other: Endpoint) -> bool {
        self.open
            .iter()
            .any(|c| c.guest == guest && c.other == other)
    }

    /// A guest's connection from `guest` to `other`, whose host side is
    /// `stream`: a socket listening on `other` takes the guest's SYN next.
    pub(crate) fn accept_from_guest(
        &mut self,
        sockets: &mut SocketSet<'static>,
        guest: Endpoint,
        other: Endpoint,
        stream: TcpStream,
    ) -> Result<(), ()> {
        stream.set_nonblocking(true).map_err(|_| ())?;
        let _ = stream.set_nodelay(true);
        let mut socket = new_socket();
        socket
            .listen(IpListenEndpoint {
                addr: Some(ip(other.0)),
                port: other.1,
            })
            .map_err(|_| ())?;
        let handle = sockets.add(socket);
        self.open
            .push(Connection::new(handle, stream, guest, other));
        Ok(())
    }

    /// Accepts on the forwarded ports, moves bytes both ways, passes closes
    /// on and drops finished connections; returns whether anything moved.
    pub(crate) fn pump(
        &mut self,
        sockets: &mut SocketSet<'static>,
        iface: &mut Interface,
        gateway: std::net::Ipv4Addr,
    ) -> bool {
        let mut moved = self.accept_forwarded(sockets, iface, gateway);
        let mut buffer = vec![0u8; CHUNK];
        self.open.retain_mut(|connection| {
            let socket = sockets.get_mut::<Socket>(connection.handle);
            moved |= connection.pump(socket, &mut buffer);
            let finished = connection.finished(socket);
            if finished {
                sockets.remove(connection.handle);
            }
            !finished
        });
        moved
    }

    fn accept_forwarded(
        &mut self,
        sockets: &mut SocketSet<'static>,
        iface: &mut Interface,
        gateway: std::net::Ipv4Addr,
    ) -> bool {
        let mut accepted = Vec::new();
        for (listener, guest) in &self.listeners {
            // Past the limit, connections wait in the host's backlog.
            while self.open.len() + accepted.len() < MAX_CONNECTIONS
                && let Ok((stream, peer)) = listener.accept()
            {
                tracing::debug!("user network: {peer} connects to the guest's {guest:?}");
                accepted.push((stream, *guest));
            }
        }
        let any = !accepted.is_empty();
        for (stream, guest) in accepted {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let port = self.take_port();
            let mut socket = new_socket();
            let remote = IpEndpoint::new(ip(guest.0), guest.1);
            if socket
                .connect(iface.context(), remote, (ip(gateway), port))
                .is_err()
            {
                continue;
            }
            let handle = sockets.add(socket);
            self.open
                .push(Connection::new(handle, stream, guest, (gateway, port)));
        }
        any
    }

    /// A local port no open connection uses.
    fn take_port(&mut self) -> u16 {
        loop {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                FIRST_EPHEMERAL
            } else {
                port + 1
            };
            if !self.open.iter().any(|c| c.other.1 == port) {
                return port;
            }
        }
    }
}

impl Connection {
    fn new(
        handle: SocketHandle,
        stream: TcpStream,
        guest: Endpoint,
        other: Endpoint,
    ) -> Connection {
        Connection {
            handle,
            stream,
            guest,
            other,
            started: Instant::now(),
            established: false,
            to_host: Vec::new(),
            to_host_at: 0,
            host_done: false,
            guest_done: false,
        }
    }

    /// Moves what can move without blocking; returns whether anything did.
    fn pump(&mut self, socket: &mut Socket<'static>, buffer: &mut [u8]) -> bool {
        if socket.may_send() || socket.may_recv() {
            self.established = true;
        }
        if !self.established {
            return false;
        }
        let mut moved = false;
        // Guest to host.
        loop {
            if self.to_host_at < self.to_host.len() {
                match self.stream.write(&self.to_host[self.to_host_at..]) {
                    Ok(n) => {
                        self.to_host_at += n;
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        socket.abort();
                        return true;
                    }
                }
                continue;
            }
            self.to_host.clear();
            self.to_host_at = 0;
            if !socket.can_recv() {
                break;
            }
            self.to_host.resize(CHUNK, 0);
            let taken = socket.recv_slice(&mut self.to_host).unwrap_or(0);
            self.to_host.truncate(taken);
            if taken == 0 {
                break;
            }
        }
        // The guest closed its side: so does the host stream, once all its
        // bytes are written.
        if !self.guest_done && !socket.may_recv() && self.to_host.is_empty() {
            let _ = self.stream.shutdown(Shutdown::Write);
            self.guest_done = true;
            moved = true;
        }
        // Host to guest, no more than the socket has room for.
        while !self.host_done && socket.may_send() {
            let room = socket.send_capacity() - socket.send_queue();
            if room == 0 {
                break;
            }
            let want = room.min(buffer.len());
            match self.stream.read(&mut buffer[..want]) {
                Ok(0) => {
                    socket.close();
                    self.host_done = true;
                    moved = true;
                }
                Ok(n) => {
                    let _ = socket.send_slice(&buffer[..n]);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    socket.abort();
                    self.host_done = true;
                    return true;
                }
            }
        }
        moved
    }

    /// Whether the connection is over: the socket closed (both sides done,
    /// a reset, a time-out), or the handshake never finished.
    fn finished(&self, socket: &Socket<'static>) -> bool {
        match socket.state() {
            State::Closed | State::TimeWait => true,
            State::Listen | State::SynSent | State::SynReceived => {
                self.started.elapsed() > HANDSHAKE
            }
            _ => false,
        }
    }
}
