//! The user network against a guest made of a second smoltcp stack: DHCP,
//! DNS, TCP out to a host server, a forwarded host port in, refusals.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp::{Socket, SocketBuffer, State};
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, HardwareAddress, IpAddress, IpCidr,
};

use super::frames::{self, GuestFrame};
use super::*;
use crate::net::{NetPort, port_pair};

const GUEST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

/// The guest's NIC as smoltcp sees it: frames through the NIC's port.
struct GuestNic<'a>(&'a NetPort);

struct Rx(Frame);
impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct Tx<'a>(&'a NetPort);
impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        self.0.send(frame);
        result
    }
}

impl phy::Device for GuestNic<'_> {
    type RxToken<'b>
        = Rx
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        self.0.try_recv().map(|frame| (Rx(frame), Tx(self.0)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(self.0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// A guest at 10.0.2.15 on a user network with `options`.
struct Guest {
    nic: NetPort,
    iface: Interface,
    sockets: SocketSet<'static>,
    _network: UserNetwork,
}

impl Guest {
    fn new(options: &[(&str, &str)]) -> Guest {
        let options: Vec<(String, String)> = options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (nic, backend) = port_pair(None);
        let network = open(&options, backend).expect("start the user network");
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ethernet(GUEST_MAC)),
            &mut GuestNic(&nic),
            smoltcp::time::Instant::now(),
        );
        iface.update_ip_addrs(|addrs| {
            addrs.push(IpCidr::new(IpAddress::Ipv4(GUEST), 24)).unwrap();
        });
        iface.routes_mut().add_default_ipv4_route(GATEWAY).unwrap();
        Guest {
            nic,
            iface,
            sockets: SocketSet::new(Vec::new()),
            _network: network,
        }
    }

    fn poll(&mut self) {
        let now = smoltcp::time::Instant::now();
        self.iface
            .poll(now, &mut GuestNic(&self.nic), &mut self.sockets);
    }

    /// Polls until `done` holds, for at most ten seconds.
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Guest) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.poll();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A socket from the guest's `local` port to the gateway's `port`.
    fn connect_to_gateway(&mut self, port: u16, local: u16) -> smoltcp::iface::SocketHandle {
        let handle = self.tcp_socket();
        let context = self.iface.context();
        self.sockets
            .get_mut::<Socket>(handle)
            .connect(context, (IpAddress::Ipv4(GATEWAY), port), local)
            .unwrap();
        handle
    }

    fn tcp_socket(&mut self) -> smoltcp::iface::SocketHandle {
        self.sockets.add(Socket::new(
            SocketBuffer::new(vec![0; 65536]),
            SocketBuffer::new(vec![0; 65536]),
        ))
    }

    /// Sends a raw UDP datagram from the guest and returns the first UDP
    /// payload that comes back to `port`.
    fn udp_exchange(&mut self, port: u16, to: Endpoint, payload: &[u8]) -> Vec<u8> {
        let source = if to.0.is_broadcast() {
            Ipv4Addr::UNSPECIFIED
        } else {
            GUEST
        };
        self.nic.send(frames::udp_frame(
            GUEST_MAC,
            EthernetAddress::BROADCAST,
            (source, port),
            to,
            payload,
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no UDP answer from {to:?}");
            if let Some(frame) = self.nic.try_recv()
                && let (_, GuestFrame::Udp { dst, payload, .. }) = frames::classify(&frame)
                && dst.1 == port
            {
                return payload.to_vec();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn dhcp_gives_the_guest_qemus_addresses() {
    let mut guest = Guest::new(&[]);
    let discover = DhcpRepr {
        message_type: DhcpMessageType::Discover,
        transaction_id: 7,
        secs: 0,
        client_hardware_address: GUEST_MAC,
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: None,
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut bytes = vec![0u8; discover.buffer_len()];
    discover
        .emit(&mut DhcpPacket::new_unchecked(&mut bytes[..]))
        .unwrap();
    let offer = guest.udp_exchange(68, (Ipv4Addr::BROADCAST, 67), &bytes);
    let packet = DhcpPacket::new_checked(&offer[..]).unwrap();
    let repr = DhcpRepr::parse(&packet).unwrap();
    assert_eq!(repr.message_type, DhcpMessageType::Offer);
    assert_eq!(repr.your_ip, GUEST);
    assert_eq!(repr.router, Some(GATEWAY));
    assert_eq!(repr.dns_servers.as_deref(), Some(&[RESOLVER][..]));
}

#[test]
fn the_resolver_answers_from_the_hosts_resolver() {
    let mut guest = Guest::new(&[]);
    let query = [
        0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, b'l', b'o', b'c', b'a', b'l', b'h', b'o',
        b's', b't', 0, 0, 1, 0, 1,
    ];
    let answer = guest.udp_exchange(5353, (RESOLVER, 53), &query);
    assert_eq!(answer[..2], [0x12, 0x34]);
    assert_eq!(answer[3] & 0xf, 0, "NOERROR");
    assert_eq!(answer[answer.len() - 4..], [127, 0, 0, 1]);
}

#[test]
fn guest_tcp_reaches_a_host_server_through_the_gateway_and_both_close() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        stream.write_all(&got).unwrap();
        got.len()
    });
    let mut guest = Guest::new(&[]);
    let handle = guest.connect_to_gateway(port, 40_000);
    // 1 MiB out, then the guest closes its side; the echo comes back and the
    // host closes.
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    let mut sent = 0;
    let mut back = Vec::new();
    guest.until("the echo and the host's close", |g| {
        let socket = g.sockets.get_mut::<Socket>(handle);
        if socket.can_send() && sent < data.len() {
            sent += socket.send_slice(&data[sent..]).unwrap();
            if sent == data.len() {
                socket.close();
            }
        }
        if socket.can_recv() {
            socket
                .recv(|bytes| {
                    back.extend_from_slice(bytes);
                    (bytes.len(), ())
                })
                .unwrap();
        }
        !socket.may_recv() && back.len() == data.len()
    });
    assert_eq!(echo.join().unwrap(), data.len());
    assert!(back == data, "the echo differs");
}

#[test]
fn a_refused_connection_resets_the_guests_syn() {
    let closed_port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut guest = Guest::new(&[]);
    let handle = guest.connect_to_gateway(closed_port, 40_001);
    guest.until("the reset", |g| {
        g.sockets.get_mut::<Socket>(handle).state() == State::Closed
    });
}

#[test]
fn restrict_keeps_the_guest_off_the_host() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port();
    let mut guest = Guest::new(&[("restrict", "on")]);
    let handle = guest.connect_to_gateway(port, 40_002);
    guest.until("the reset", |g| {
        g.sockets.get_mut::<Socket>(handle).state() == State::Closed
    });
    assert!(server.accept().is_err(), "the host saw a connection");
}

#[test]
fn a_forwarded_host_port_reaches_a_guest_server() {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let rule = format!("tcp:127.0.0.1:{port}-:80");
    let mut guest = Guest::new(&[("hostfwd", &rule)]);
    let handle = guest.tcp_socket();
    guest.sockets.get_mut::<Socket>(handle).listen(80).unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    });
    let mut request = Vec::new();
    let mut answered = false;
    guest.until("the host's request and its close", |g| {
        let socket = g.sockets.get_mut::<Socket>(handle);
        if socket.can_recv() {
            socket
                .recv(|bytes| {
                    request.extend_from_slice(bytes);
                    (bytes.len(), ())
                })
                .unwrap();
        }
        if !answered && request.ends_with(b"\r\n\r\n") && socket.can_send() {
            // The peer is the gateway, as on QEMU.
            assert_eq!(
                socket.remote_endpoint().map(|e| e.addr),
                Some(IpAddress::Ipv4(GATEWAY))
            );
            socket.send_slice(b"HTTP/1.0 200 OK\r\n\r\nhello").unwrap();
            socket.close();
            answered = true;
        }
        answered && matches!(socket.state(), State::Closed | State::TimeWait)
    });
    assert_eq!(client.join().unwrap(), "HTTP/1.0 200 OK\r\n\r\nhello");
}

#[test]
fn a_forwarded_port_in_use_and_bad_rules_are_one_line_errors() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (_, backend) = port_pair(None);
    let options = vec![("hostfwd".to_owned(), format!("tcp:127.0.0.1:{port}-:22"))];
    let error = open(&options, backend).unwrap_err();
    assert!(error.contains("cannot listen"), "{error}");
    for bad in [
        "tcp:1-:2:3",
        "icmp::1-:2",
        "tcp::1-:0",
        "::x-:2",
        "tcp::1-10.0.2.300:2",
    ] {
        let error = HostForward::parse(bad).unwrap_err();
        assert!(error.starts_with(&format!("hostfwd '{bad}'")), "{error}");
    }
    assert_eq!(
        HostForward::parse("udp:127.0.0.1:5555-10.0.2.15:53").unwrap(),
        HostForward {
            udp: true,
            host: "127.0.0.1:5555".parse().unwrap(),
            guest: (GUEST, 53),
        }
    );
    let error = UserOptions::parse(&[("net".to_owned(), "10.0.3.0/24".to_owned())]).unwrap_err();
    assert!(error.contains("no option 'net'"), "{error}");
}

#[test]
fn the_gateway_and_the_resolver_answer_pings_and_others_do_not() {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        ArpOperation, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
        IpProtocol, Ipv4Packet, Ipv4Repr,
    };
    let guest = Guest::new(&[]);
    let ping = |to: Ipv4Addr| {
        let echo = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: b"turing",
        };
        let ip = Ipv4Repr {
            src_addr: GUEST,
            dst_addr: to,
            next_header: IpProtocol::Icmp,
            payload_len: echo.buffer_len(),
            hop_limit: 64,
        };
        let mut frame = vec![0u8; 14 + 20 + echo.buffer_len()];
        EthernetRepr {
            src_addr: GUEST_MAC,
            dst_addr: HOST_MAC,
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
        let caps = ChecksumCapabilities::default();
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), &caps);
        echo.emit(&mut Icmpv4Packet::new_unchecked(&mut frame[34..]), &caps);
        frame
    };
    for (to, answered) in [
        (GATEWAY, true),
        (RESOLVER, true),
        (Ipv4Addr::new(10, 0, 2, 77), false),
    ] {
        // As a guest kernel does, it asks for the address first; the
        // network learns the guest's MAC from the question.
        guest.nic.send(arp_frame(
            ArpOperation::Request,
            GUEST_MAC,
            GUEST,
            EthernetAddress::BROADCAST,
            to,
        ));
        std::thread::sleep(Duration::from_millis(20));
        while guest.nic.try_recv().is_some() {}
        guest.nic.send(ping(to));
        let deadline = Instant::now() + Duration::from_millis(if answered { 5000 } else { 300 });
        let mut replied = false;
        while Instant::now() < deadline && !replied {
            if let Some(frame) = guest.nic.try_recv() {
                answer_arp(&guest.nic, &frame);
                let ip = Ipv4Packet::new_checked(&frame[14..]);
                replied =
                    ip.is_ok_and(|ip| ip.src_addr() == to && ip.next_header() == IpProtocol::Icmp);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(replied, answered, "echo reply from {to}");
    }
}

/// Answers an ARP request for the guest's address, as its kernel would.
fn answer_arp(nic: &NetPort, frame: &[u8]) {
    use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol};
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return;
    };
    if ethernet.ethertype() != EthernetProtocol::Arp {
        return;
    }
    let Ok(ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    }) = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap())
    else {
        return;
    };
    if target_protocol_addr != GUEST {
        return;
    }
    nic.send(arp_frame(
        ArpOperation::Reply,
        GUEST_MAC,
        GUEST,
        source_hardware_addr,
        source_protocol_addr,
    ));
}

/// An ARP frame from `mac`/`ip` about `target_ip`.
fn arp_frame(
    operation: smoltcp::wire::ArpOperation,
    mac: EthernetAddress,
    ip: Ipv4Addr,
    target_mac: EthernetAddress,
    target_ip: Ipv4Addr,
) -> Frame {
    use smoltcp::wire::{ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, EthernetRepr};
    let repr = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: if target_mac == EthernetAddress::BROADCAST {
            EthernetAddress([0; 6])
        } else {
            target_mac
        },
        target_protocol_addr: target_ip,
    };
    let mut out = vec![0u8; 14 + repr.buffer_len()];
    EthernetRepr {
        src_addr: mac,
        dst_addr: target_mac,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[14..]));
    out
}

#[test]
fn guest_udp_goes_out_through_the_nat_and_replies_come_back() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        if let Ok((len, from)) = echo.recv_from(&mut buffer) {
            buffer[..len].reverse();
            let _ = echo.send_to(&buffer[..len], from);
        }
    });
    let mut guest = Guest::new(&[]);
    let reply = guest.udp_exchange(40_100, (GATEWAY, port), b"abc");
    assert_eq!(reply, b"cba");
}

#[test]
fn a_forwarded_udp_port_reaches_the_guest_and_its_reply_goes_back() {
    let port = {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let rule = format!("udp:127.0.0.1:{port}-:5353");
    let guest = Guest::new(&[("hostfwd", &rule)]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    peer.send_to(b"question", ("127.0.0.1", port)).unwrap();
    // The datagram reaches the guest's port 5353 from the host's loopback,
    // which the guest sees as the gateway.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (from, payload) = loop {
        assert!(Instant::now() < deadline, "the datagram did not arrive");
        if let Some(frame) = guest.nic.try_recv()
            && let (_, GuestFrame::Udp { src, dst, payload }) = frames::classify(&frame)
            && dst == (GUEST, 5353)
        {
            break (src, payload.to_vec());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(payload, b"question");
    assert_eq!(from.0, GATEWAY);
    guest.nic.send(frames::udp_frame(
        GUEST_MAC,
        HOST_MAC,
        (GUEST, 5353),
        from,
        b"answer",
    ));
    let mut buffer = [0u8; 64];
    let (len, _) = peer.recv_from(&mut buffer).expect("the guest's reply");
    assert_eq!(&buffer[..len], b"answer");
}
