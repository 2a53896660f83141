//! `--netdev user`: networking that needs no privileges, as QEMU's user mode
//! (slirp) gives it. The guest sits on 10.0.2.0/24 behind a host that is
//! 10.0.2.2 (the gateway, and the host's own loopback), with a resolver at
//! 10.0.2.3 and its address, 10.0.2.15, from DHCP. Its TCP connections and
//! UDP datagrams leave through the host's sockets (NAT); `hostfwd=` rules
//! bring host ports in.
//!
//! The TCP/IP side is smoltcp, a pure-Rust stack: it needs neither a C
//! library (libslirp would, and unsafe callbacks with it) nor privileges,
//! and its any-IP mode lets one interface answer for every address the
//! guest talks to. What smoltcp does not do is done here beside it:
//! - DHCP (`dhcp.rs`) and DNS (`dns.rs`) servers, answered from frames the
//!   guest sends to 10.0.2.2:67 and 10.0.2.3:53;
//! - UDP, relayed datagram by datagram through a host socket per guest port;
//! - the start of each TCP connection: the guest's SYN waits until the host
//!   connection is made; then a smoltcp socket takes it, or the guest gets a
//!   reset, as from a host that refuses.
//!
//! Everything runs on one thread per netdev, which sleeps on the NIC's frames
//! and polls the host sockets (non-blocking) at most `IDLE_POLL` (2 ms) apart.

mod dhcp;
mod dns;
mod frames;
mod tcp;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};

use self::dhcp::Lease;
use self::frames::{Endpoint, GuestFrame};
use self::tcp::Connections;
use super::{BackendPort, Frame};

/// The gateway's (the host's) MAC address, QEMU's.
const HOST_MAC: EthernetAddress = EthernetAddress([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
const NETWORK: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 0);
const PREFIX: u8 = 24;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const DNS_PORT: u16 = 53;
/// The longest the thread sleeps while host sockets may have news.
const IDLE_POLL: Duration = Duration::from_millis(2);
/// A UDP mapping nothing used for this long is closed.
const UDP_IDLE: Duration = Duration::from_secs(120);
/// Limits on what a guest can make the host hold, so that a guest flooding
/// SYNs, DNS queries or UDP ports costs it refusals, not the host threads,
/// descriptors and memory without bound. Beyond them, SYNs are refused,
/// queries dropped and the least recently used UDP mapping closed.
const MAX_CONNECTS_IN_FLIGHT: usize = 64;
const MAX_DNS_IN_FLIGHT: usize = 16;
const MAX_UDP_MAPPINGS: usize = 256;

/// A `hostfwd=` rule: `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostForward {
    /// TCP (the default) or UDP.
    pub udp: bool,
    /// Where the host listens (all addresses by default, as on QEMU).
    pub host: SocketAddr,
    /// Where in the guest it leads (10.0.2.15 by default).
    pub guest: Endpoint,
}

impl HostForward {
    /// Parses QEMU's spelling.
    pub fn parse(text: &str) -> Result<HostForward, String> {
        let bad = |why: &str| {
            format!(
                "hostfwd '{text}': {why} (expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)"
            )
        };
        let (protocol, rest) = text.split_once(':').ok_or_else(|| bad("no protocol"))?;
        let udp = match protocol {
            "" | "tcp" => false,
            "udp" => true,
            _ => return Err(bad("the protocol is not tcp or udp")),
        };
        let (host, guest) = rest
            .split_once('-')
            .ok_or_else(|| bad("no '-' between host and guest"))?;
        let (host_addr, host_port) = host.split_once(':').ok_or_else(|| bad("no host port"))?;
        let (guest_addr, guest_port) = guest.split_once(':').ok_or_else(|| bad("no guest port"))?;
        let address = |text: &str, default: Ipv4Addr| -> Result<Ipv4Addr, String> {
            if text.is_empty() {
                Ok(default)
            } else {
                text.parse()
                    .map_err(|_| bad(&format!("'{text}' is not an IPv4 address")))
            }
        };
        let port = |text: &str| -> Result<u16, String> {
            text.parse()
                .map_err(|_| bad(&format!("'{text}' is not a port number")))
        };
        let guest_port = port(guest_port)?;
        if guest_port == 0 {
            return Err(bad("the guest port is 0"));
        }
        Ok(HostForward {
            udp,
            host: SocketAddr::new(
                address(host_addr, Ipv4Addr::UNSPECIFIED)?.into(),
                port(host_port)?,
            ),
            guest: (address(guest_addr, GUEST)?, guest_port),
        })
    }
}

/// What `--netdev user,...` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserOptions {
    /// Host ports brought into the guest.
    pub forwards: Vec<HostForward>,
    /// `restrict=on`: the guest reaches only the built-in services and
    /// forwarded ports, never the host or the world.
    pub restrict: bool,
}

impl UserOptions {
    /// Reads the options after `user,id=ID`; errors name the option.
    pub fn parse(options: &[(String, String)]) -> Result<UserOptions, String> {
        let mut parsed = UserOptions::default();
        for (key, value) in options {
            match key.as_str() {
                "hostfwd" => parsed.forwards.push(HostForward::parse(value)?),
                "restrict" => {
                    parsed.restrict = match value.as_str() {
                        "on" | "yes" | "true" => true,
                        "off" | "no" | "false" => false,
                        _ => return Err(format!("restrict={value}: expected on or off")),
                    }
                }
                _ => {
                    return Err(format!(
                        "user has no option '{key}' (it takes hostfwd, restrict, pcap)"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// The running user network: dropping it stops the thread.
#[derive(Debug)]
pub struct UserNetwork {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for UserNetwork {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds the forwarded ports (a port in use is an error now, before the
/// guest runs) and starts the network's thread on `port`.
pub fn start(options: &UserOptions, port: BackendPort) -> Result<UserNetwork, String> {
    let mut tcp_listeners = Vec::new();
    let mut udp_forwards = Vec::new();
    for forward in &options.forwards {
        let kind = if forward.udp { "udp" } else { "tcp" };
        let fail =
            |e: std::io::Error| format!("hostfwd {kind} {}: cannot listen: {e}", forward.host);
        if forward.udp {
            let socket = UdpSocket::bind(forward.host).map_err(fail)?;
            socket.set_nonblocking(true).map_err(fail)?;
            udp_forwards.push((socket, forward.guest));
        } else {
            let listener = TcpListener::bind(forward.host).map_err(fail)?;
            listener.set_nonblocking(true).map_err(fail)?;
            tcp_listeners.push((listener, forward.guest));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut network = Network::new(port, options.restrict, tcp_listeners, udp_forwards);
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("netdev-user".into())
        .spawn(move || network.run(&stopped))
        .map_err(|e| format!("cannot start the user network's thread: {e}"))?;
    Ok(UserNetwork {
        stop,
        thread: Some(thread),
    })
}

/// smoltcp's view of the NIC: frames the guest sent, waiting for the stack,
/// and frames the stack sends, collected for delivery.
#[derive(Default)]
struct FrameQueues {
    to_stack: std::collections::VecDeque<Frame>,
    from_stack: Vec<Frame>,
}

impl phy::Device for FrameQueues {
    type RxToken<'a> = StackRx;
    type TxToken<'a> = StackTx<'a>;

    fn receive(
        &mut self,
        _timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.to_stack.pop_front()?;
        Some((StackRx(frame), StackTx(&mut self.from_stack)))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(StackTx(&mut self.from_stack))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

struct StackRx(Frame);

impl phy::RxToken for StackRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct StackTx<'a>(&'a mut Vec<Frame>);

impl phy::TxToken for StackTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        self.0.push(frame);
        result
    }
}

/// A guest UDP port's host socket.
struct UdpMapping {
    socket: UdpSocket,
    last_used: Instant,
}

/// A guest TCP connection waiting for its host side.
struct PendingConnect {
    syn: Frame,
}

/// Both ends of a channel from helper threads to the network thread.
type Channel<T> = (Sender<T>, Receiver<T>);

/// A guest TCP connection: the guest's endpoint and the one it connects to.
type ConnectionKey = (Endpoint, Endpoint);

/// The network thread's state.
struct Network {
    port: BackendPort,
    restrict: bool,
    iface: Interface,
    sockets: SocketSet<'static>,
    queues: FrameQueues,
    guest_mac: Option<EthernetAddress>,
    lease: Lease,
    udp: HashMap<u16, UdpMapping>,
    udp_forwards: Vec<(UdpSocket, Endpoint)>,
    /// Guest connections (guest endpoint, destination) whose host side is
    /// being connected, and the channel the connecting threads answer on.
    pending: HashMap<ConnectionKey, PendingConnect>,
    connected: Channel<(ConnectionKey, std::io::Result<std::net::TcpStream>)>,
    /// DNS answers from the resolving threads, with the guest endpoint asking.
    dns_answers: Channel<(Endpoint, Vec<u8>)>,
    /// Queries whose threads have not answered yet.
    dns_in_flight: usize,
    connections: Connections,
}

impl Network {
    fn new(
        port: BackendPort,
        restrict: bool,
        tcp_listeners: Vec<(TcpListener, Endpoint)>,
        udp_forwards: Vec<(UdpSocket, Endpoint)>,
    ) -> Network {
        let mut queues = FrameQueues::default();
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ethernet(HOST_MAC)),
            &mut queues,
            smoltcp::time::Instant::now(),
        );
        iface.update_ip_addrs(|addrs| {
            for address in [GATEWAY, RESOLVER] {
                // Two addresses always fit.
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(address), PREFIX));
            }
        });
        // Any-IP: the interface answers for the whole Internet, as the NAT's
        // inside face.
        let _ = iface.routes_mut().add_default_ipv4_route(GATEWAY);
        iface.set_any_ip(true);
        Network {
            port,
            restrict,
            iface,
            sockets: SocketSet::new(Vec::new()),
            queues,
            guest_mac: None,
            lease: Lease {
                guest: GUEST,
                router: GATEWAY,
                dns: RESOLVER,
                mask: Ipv4Cidr::new(NETWORK, PREFIX).netmask(),
            },
            udp: HashMap::new(),
            udp_forwards,
            pending: HashMap::new(),
            connected: crossbeam_channel::unbounded(),
            dns_answers: crossbeam_channel::unbounded(),
            dns_in_flight: 0,
            connections: Connections::new(tcp_listeners),
        }
    }

    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) && self.port.nic_present() {
            let wait = if self.busy() {
                IDLE_POLL
            } else {
                Duration::from_millis(50)
            };
            match self.port.recv_timeout(wait) {
                Ok(frame) => self.take_guest_frame(frame),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(frame) = self.port.frames_from_nic().try_recv() {
                self.take_guest_frame(frame);
            }
            self.host_side();
            self.poll_stack();
        }
    }

    /// Whether host sockets may have news that only polling finds.
    fn busy(&self) -> bool {
        !self.udp.is_empty()
            || !self.udp_forwards.is_empty()
            || !self.pending.is_empty()
            || !self.connections.is_empty()
            || self.connections.listening()
    }

    fn deliver(&self, frame: Frame) {
        self.port.deliver(frame);
    }

    fn take_guest_frame(&mut self, frame: Frame) {
        let (mac, what) = frames::classify(&frame);
        if let Some(mac) = mac
            && mac.is_unicast()
        {
            self.guest_mac = Some(mac);
        }
        match what {
            GuestFrame::Arp { target } => {
                // Only the built-in hosts exist on the guest's link.
                if target == GATEWAY || target == RESOLVER {
                    self.queues.to_stack.push_back(frame);
                }
            }
            GuestFrame::Icmp { dst } => {
                if dst == GATEWAY || dst == RESOLVER {
                    self.queues.to_stack.push_back(frame);
                }
            }
            GuestFrame::Udp { src, dst, payload } => {
                let payload = payload.to_vec();
                self.udp_from_guest(src, dst, &payload);
            }
            GuestFrame::Tcp { src, dst, syn } => {
                if syn && !self.connections.knows(src, dst) {
                    self.start_connect(src, dst, frame);
                } else {
                    self.queues.to_stack.push_back(frame);
                }
            }
            GuestFrame::Other => {}
        }
    }

    /// Where a guest's packet for `dst` goes on the host: the gateway is the
    /// host itself; the resolver and the rest of the guest's network are no
    /// one; with `restrict=on`, nothing leaves.
    fn host_destination(&self, dst: Endpoint) -> Option<SocketAddr> {
        if self.restrict {
            return None;
        }
        let ip = dst.0;
        if ip == GATEWAY {
            return Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dst.1));
        }
        if Ipv4Cidr::new(NETWORK, PREFIX).contains_addr(&ip)
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_unspecified()
        {
            return None;
        }
        Some(SocketAddr::new(ip.into(), dst.1))
    }

    fn udp_from_guest(&mut self, src: Endpoint, dst: Endpoint, payload: &[u8]) {
        if dst.1 == DHCP_SERVER_PORT && src.1 == DHCP_CLIENT_PORT {
            if let Some(answer) = dhcp::answer(payload, &self.lease) {
                self.send_udp(
                    (GATEWAY, DHCP_SERVER_PORT),
                    (Ipv4Addr::BROADCAST, DHCP_CLIENT_PORT),
                    &answer,
                );
            }
            return;
        }
        if dst == (RESOLVER, DNS_PORT) {
            match dns::parse(payload) {
                Ok(Some(_)) if self.dns_in_flight >= MAX_DNS_IN_FLIGHT => {}
                Ok(Some(query)) => {
                    self.dns_in_flight += 1;
                    let answers = self.dns_answers.0.clone();
                    let message = payload.to_vec();
                    // getaddrinfo blocks: off this thread, one per query.
                    let spawned = std::thread::Builder::new()
                        .name("netdev-user-dns".into())
                        .spawn(move || {
                            let _ = answers.send((src, dns::resolve(&message, &query)));
                        });
                    if let Err(error) = spawned {
                        self.dns_in_flight -= 1;
                        tracing::warn!("user network: no thread for a DNS query: {error}");
                    }
                }
                Ok(None) => {}
                Err(answer) => self.send_udp((RESOLVER, DNS_PORT), src, &answer),
            }
            return;
        }
        // A reply to a forwarded host port goes back out of its socket.
        if let Some((socket, _)) = self.udp_forwards.iter().find(|(_, guest)| *guest == src) {
            let _ = socket.send_to(payload, Network::host_view(dst));
            return;
        }
        let Some(target) = self.host_destination(dst) else {
            return;
        };
        if !self.udp.contains_key(&src.1)
            && self.udp.len() >= MAX_UDP_MAPPINGS
            && let Some((&oldest, _)) = self.udp.iter().min_by_key(|(_, m)| m.last_used)
        {
            self.udp.remove(&oldest);
        }
        let mapping = match self.udp.entry(src.1) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                    return;
                };
                if socket.set_nonblocking(true).is_err() {
                    return;
                }
                entry.insert(UdpMapping {
                    socket,
                    last_used: Instant::now(),
                })
            }
        };
        mapping.last_used = Instant::now();
        let _ = mapping.socket.send_to(payload, target);
    }

    /// A datagram to the guest from `src`, addressed to `dst`.
    fn send_udp(&self, src: Endpoint, dst: Endpoint, payload: &[u8]) {
        // Until the guest has sent a frame its MAC is unknown: an Ethernet
        // broadcast still reaches it.
        let to_mac = if dst.0.is_broadcast() {
            EthernetAddress::BROADCAST
        } else {
            self.guest_mac.unwrap_or(EthernetAddress::BROADCAST)
        };
        self.deliver(frames::udp_frame(HOST_MAC, to_mac, src, dst, payload));
    }

    /// The host address seen from the guest: the host's loopback is the
    /// gateway.
    fn guest_view(address: SocketAddr) -> Option<Endpoint> {
        match address {
            SocketAddr::V4(v4) if v4.ip().is_loopback() => Some((GATEWAY, v4.port())),
            SocketAddr::V4(v4) => Some((*v4.ip(), v4.port())),
            SocketAddr::V6(_) => None,
        }
    }

    /// The host address the guest's `endpoint` stands for: the gateway is the
    /// host's loopback.
    fn host_view(endpoint: Endpoint) -> SocketAddr {
        let ip = if endpoint.0 == GATEWAY {
            Ipv4Addr::LOCALHOST
        } else {
            endpoint.0
        };
        SocketAddr::new(ip.into(), endpoint.1)
    }

    fn start_connect(&mut self, src: Endpoint, dst: Endpoint, syn: Frame) {
        let key = (src, dst);
        if self.pending.contains_key(&key) {
            return; // a retransmitted SYN
        }
        let Some(target) = self.host_destination(dst) else {
            self.refuse(src, dst, &syn);
            return;
        };
        if self.pending.len() >= MAX_CONNECTS_IN_FLIGHT
            || self.connections.len() >= tcp::MAX_CONNECTIONS
        {
            self.refuse(src, dst, &syn);
            return;
        }
        self.pending.insert(key, PendingConnect { syn });
        let answer = self.connected.0.clone();
        let spawned = std::thread::Builder::new()
            .name("netdev-user-connect".into())
            .spawn(move || {
                let result = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(15));
                let _ = answer.send((key, result));
            });
        if spawned.is_err()
            && let Some(pending) = self.pending.remove(&key)
        {
            self.refuse(src, dst, &pending.syn);
        }
    }

    /// Answers the guest's SYN with a reset, as a host refusing would.
    fn refuse(&self, src: Endpoint, dst: Endpoint, syn: &[u8]) {
        let Some((seq, len, _)) = frames::tcp_sequence(syn) else {
            return;
        };
        let guest_mac = self.guest_mac.unwrap_or(EthernetAddress::BROADCAST);
        self.deliver(frames::tcp_reset(HOST_MAC, guest_mac, dst, src, seq, len));
    }

    /// Host sockets: connections made, DNS answers, UDP replies, forwarded
    /// ports, and data both ways on every TCP connection.
    fn host_side(&mut self) {
        while let Ok(((src, dst), result)) = self.connected.1.try_recv() {
            let Some(pending) = self.pending.remove(&(src, dst)) else {
                continue;
            };
            match result {
                Ok(stream) => {
                    if self
                        .connections
                        .accept_from_guest(&mut self.sockets, src, dst, stream)
                        .is_ok()
                    {
                        self.queues.to_stack.push_back(pending.syn);
                        // Let the socket take its SYN before another listens
                        // on the same address.
                        self.poll_stack();
                    } else {
                        self.refuse(src, dst, &pending.syn);
                    }
                }
                Err(_) => self.refuse(src, dst, &pending.syn),
            }
        }
        while let Ok((to, answer)) = self.dns_answers.1.try_recv() {
            self.dns_in_flight = self.dns_in_flight.saturating_sub(1);
            self.send_udp((RESOLVER, DNS_PORT), to, &answer);
        }
        let mut buffer = [0u8; 65_536];
        let mut replies = Vec::new();
        self.udp.retain(|&guest_port, mapping| {
            while let Ok((len, from)) = mapping.socket.recv_from(&mut buffer) {
                mapping.last_used = Instant::now();
                if let Some(from) = Network::guest_view(from) {
                    replies.push((from, (GUEST, guest_port), buffer[..len].to_vec()));
                }
            }
            mapping.last_used.elapsed() < UDP_IDLE
        });
        for (socket, guest) in &self.udp_forwards {
            while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                if let Some(outside) = Network::guest_view(from) {
                    replies.push((outside, *guest, buffer[..len].to_vec()));
                }
            }
        }
        for (src, dst, payload) in replies {
            self.send_udp(src, dst, &payload);
        }
        self.connections
            .pump(&mut self.sockets, &mut self.iface, GATEWAY);
    }

    /// Runs smoltcp on what the guest sent and delivers what it sends, until
    /// nothing moves.
    fn poll_stack(&mut self) {
        for _ in 0..8 {
            let now = smoltcp::time::Instant::now();
            self.iface.poll(now, &mut self.queues, &mut self.sockets);
            let out = std::mem::take(&mut self.queues.from_stack);
            let moved = !out.is_empty();
            for frame in out {
                self.deliver(frame);
            }
            let pumped = self
                .connections
                .pump(&mut self.sockets, &mut self.iface, GATEWAY);
            if !moved && !pumped && self.queues.to_stack.is_empty() {
                break;
            }
        }
    }
}

/// Opens a user network on `port` with `options`.
pub fn open(options: &[(String, String)], port: BackendPort) -> Result<UserNetwork, String> {
    let parsed = UserOptions::parse(options)?;
    start(&parsed, port)
}

#[cfg(test)]
mod tests;
