//! The frames user-mode networking reads from the guest and writes to it by
//! itself, outside smoltcp's sockets: what a guest frame is, and UDP and TCP
//! reset frames from a given address.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

/// Ethernet and IPv4 headers (no options) before a UDP or TCP header.
const ETHERNET_IPV4: usize = 14 + 20;
/// A TCP header without options.
const TCP_HEADER: usize = 20;

/// An IPv4 endpoint.
pub(crate) type Endpoint = (Ipv4Addr, u16);

/// What a frame from the guest is, as far as the user network cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GuestFrame<'a> {
    /// An ARP packet asking for or telling `target`.
    Arp { target: Ipv4Addr },
    /// A UDP datagram.
    Udp {
        /// Where from.
        src: Endpoint,
        /// Where to.
        dst: Endpoint,
        /// Its payload.
        payload: &'a [u8],
    },
    /// A TCP segment.
    Tcp {
        /// Where from.
        src: Endpoint,
        /// Where to.
        dst: Endpoint,
        /// SYN without ACK: the start of a connection.
        syn: bool,
    },
    /// An ICMP message to `dst`.
    Icmp { dst: Ipv4Addr },
    /// Anything else (IPv6, fragments, bad checksums...).
    Other,
}

/// The guest's MAC address (the frame's source) and what the frame is.
pub(crate) fn classify(frame: &[u8]) -> (Option<EthernetAddress>, GuestFrame<'_>) {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return (None, GuestFrame::Other);
    };
    let source = Some(ethernet.src_addr());
    let what = match ethernet.ethertype() {
        EthernetProtocol::Arp => match smoltcp::wire::ArpPacket::new_checked(ethernet.payload()) {
            Ok(arp) => match <[u8; 4]>::try_from(arp.target_protocol_addr()) {
                Ok(target) => GuestFrame::Arp {
                    target: Ipv4Addr::from(target),
                },
                Err(_) => GuestFrame::Other,
            },
            Err(_) => GuestFrame::Other,
        },
        EthernetProtocol::Ipv4 => ipv4(ethernet.payload()),
        _ => GuestFrame::Other,
    };
    (source, what)
}

fn ipv4(bytes: &[u8]) -> GuestFrame<'_> {
    let Ok(packet) = Ipv4Packet::new_checked(bytes) else {
        return GuestFrame::Other;
    };
    if packet.more_frags() || packet.frag_offset() != 0 || !packet.verify_checksum() {
        return GuestFrame::Other;
    }
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    let header = usize::from(packet.header_len());
    let total = usize::from(packet.total_len()).min(bytes.len());
    let Some(payload) = bytes.get(header..total) else {
        return GuestFrame::Other;
    };
    match packet.next_header() {
        IpProtocol::Udp => match UdpPacket::new_checked(payload) {
            Ok(udp) => GuestFrame::Udp {
                src: (src, udp.src_port()),
                dst: (dst, udp.dst_port()),
                payload: &payload[8..usize::from(udp.len()).clamp(8, payload.len())],
            },
            Err(_) => GuestFrame::Other,
        },
        IpProtocol::Tcp => match TcpPacket::new_checked(payload) {
            Ok(tcp) => GuestFrame::Tcp {
                src: (src, tcp.src_port()),
                dst: (dst, tcp.dst_port()),
                syn: tcp.syn() && !tcp.ack(),
            },
            Err(_) => GuestFrame::Other,
        },
        IpProtocol::Icmp => GuestFrame::Icmp { dst },
        _ => GuestFrame::Other,
    }
}

/// The sequence number and payload length of a TCP segment in `frame`, for
/// answering it with a reset.
pub(crate) fn tcp_sequence(frame: &[u8]) -> Option<(u32, usize, bool)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let packet = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    let header = usize::from(packet.header_len());
    let total = usize::from(packet.total_len()).min(ethernet.payload().len());
    let tcp = TcpPacket::new_checked(ethernet.payload().get(header..total)?).ok()?;
    let len = tcp.payload().len() + usize::from(tcp.syn()) + usize::from(tcp.fin());
    Some((tcp.seq_number().0 as u32, len, tcp.syn()))
}

fn ethernet_ipv4(
    from_mac: EthernetAddress,
    to_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload_len: usize,
) -> (Vec<u8>, Ipv4Repr) {
    let mut frame = vec![0u8; ETHERNET_IPV4 + payload_len];
    let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
    EthernetRepr {
        src_addr: from_mac,
        dst_addr: to_mac,
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut ethernet);
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len,
        hop_limit: 64,
    };
    ip.emit(
        &mut Ipv4Packet::new_unchecked(&mut frame[14..]),
        &ChecksumCapabilities::default(),
    );
    (frame, ip)
}

/// A UDP datagram from `src` (with MAC `from_mac`) to the guest's `dst`.
pub(crate) fn udp_frame(
    from_mac: EthernetAddress,
    to_mac: EthernetAddress,
    src: Endpoint,
    dst: Endpoint,
    payload: &[u8],
) -> Vec<u8> {
    let (mut frame, _) = ethernet_ipv4(
        from_mac,
        to_mac,
        src.0,
        dst.0,
        IpProtocol::Udp,
        8 + payload.len(),
    );
    UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut frame[ETHERNET_IPV4..]),
        &IpAddress::Ipv4(src.0),
        &IpAddress::Ipv4(dst.0),
        payload.len(),
        |buffer| buffer.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    frame
}

/// A TCP reset from `src` answering a segment of the guest's `dst` that had
/// sequence number `seq` and occupied `len` sequence numbers: what a host
/// refusing a connection sends.
pub(crate) fn tcp_reset(
    from_mac: EthernetAddress,
    to_mac: EthernetAddress,
    src: Endpoint,
    dst: Endpoint,
    seq: u32,
    len: usize,
) -> Vec<u8> {
    let (mut frame, _) = ethernet_ipv4(from_mac, to_mac, src.0, dst.0, IpProtocol::Tcp, TCP_HEADER);
    TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control: TcpControl::Rst,
        seq_number: TcpSeqNumber(0),
        ack_number: Some(TcpSeqNumber(seq.wrapping_add(len as u32) as i32)),
        window_len: 0,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    }
    .emit(
        &mut TcpPacket::new_unchecked(&mut frame[ETHERNET_IPV4..]),
        &IpAddress::Ipv4(src.0),
        &IpAddress::Ipv4(dst.0),
        &ChecksumCapabilities::default(),
    );
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const HOST: EthernetAddress = EthernetAddress([0x52, 0x55, 10, 0, 2, 2]);

    #[test]
    fn a_udp_frame_reads_back_as_what_was_written() {
        let frame = udp_frame(
            HOST,
            GUEST,
            (Ipv4Addr::new(10, 0, 2, 3), 53),
            (Ipv4Addr::new(10, 0, 2, 15), 40000),
            b"answer",
        );
        // Seen from the other side, it classifies as that datagram.
        let (mac, what) = classify(&frame);
        assert_eq!(mac, Some(HOST));
        assert_eq!(
            what,
            GuestFrame::Udp {
                src: (Ipv4Addr::new(10, 0, 2, 3), 53),
                dst: (Ipv4Addr::new(10, 0, 2, 15), 40000),
                payload: b"answer",
            }
        );
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum(
            &IpAddress::Ipv4(ip.src_addr()),
            &IpAddress::Ipv4(ip.dst_addr())
        ));
    }

    #[test]
    fn a_reset_acknowledges_the_refused_syn() {
        let frame = tcp_reset(
            HOST,
            GUEST,
            (Ipv4Addr::new(10, 0, 2, 2), 80),
            (Ipv4Addr::new(10, 0, 2, 15), 40000),
            1000,
            1,
        );
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.rst() && tcp.ack());
        assert_eq!(tcp.ack_number(), TcpSeqNumber(1001));
        assert!(tcp.verify_checksum(
            &IpAddress::Ipv4(ip.src_addr()),
            &IpAddress::Ipv4(ip.dst_addr())
        ));
        assert_eq!(tcp_sequence(&frame), Some((0, 0, false)));
    }

    #[test]
    fn garbage_is_other_never_a_panic() {
        for len in 0..80 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let _ = classify(&bytes);
            let _ = tcp_sequence(&bytes);
        }
        let mut frame = udp_frame(
            HOST,
            GUEST,
            (Ipv4Addr::new(1, 2, 3, 4), 1),
            (Ipv4Addr::new(5, 6, 7, 8), 2),
            b"x",
        );
        frame[14 + 10] ^= 0xff; // the IPv4 header checksum
        assert_eq!(classify(&frame).1, GuestFrame::Other);
    }
}
