//! The user network's DHCP server: the guest asks, it gets QEMU's lease
//! (10.0.2.15 on 10.0.2.0/24, router 10.0.2.2, DNS 10.0.2.3, a day long).

use std::net::Ipv4Addr;

use smoltcp::wire::{DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr};

/// Seconds a lease lasts, as on QEMU.
const LEASE_SECONDS: u32 = 86_400;
/// DHCP option: domain name servers.
const OPTION_DNS: u8 = 6;

/// The addresses the server hands out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lease {
    /// The guest's address.
    pub guest: Ipv4Addr,
    /// The router, which is also the server.
    pub router: Ipv4Addr,
    /// The resolver.
    pub dns: Ipv4Addr,
    /// The network's mask.
    pub mask: Ipv4Addr,
}

/// The server's answer to a DHCP message from the guest, as a UDP payload to
/// broadcast, if the message calls for one: an offer for a discover, an
/// acknowledgement for a request of the leased address, a refusal for a
/// request of another.
pub(crate) fn answer(request: &[u8], lease: &Lease) -> Option<Vec<u8>> {
    let packet = DhcpPacket::new_checked(request).ok()?;
    let asked = DhcpRepr::parse(&packet).ok()?;
    let message_type = match asked.message_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => {
            let wanted = asked.requested_ip.unwrap_or(asked.client_ip);
            let for_us = asked.server_identifier.is_none_or(|s| s == lease.router);
            if !for_us {
                return None;
            }
            if wanted == lease.guest {
                DhcpMessageType::Ack
            } else {
                DhcpMessageType::Nak
            }
        }
        _ => return None,
    };
    let acked = message_type != DhcpMessageType::Nak;
    let dns = lease.dns.octets();
    let options = [DhcpOption {
        kind: OPTION_DNS,
        data: &dns,
    }];
    let reply = DhcpRepr {
        message_type,
        transaction_id: asked.transaction_id,
        secs: 0,
        client_hardware_address: asked.client_hardware_address,
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: if acked {
            lease.guest
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        server_ip: lease.router,
        router: acked.then_some(lease.router),
        subnet_mask: acked.then_some(lease.mask),
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: asked.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(lease.router),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: acked.then_some(LEASE_SECONDS),
        renew_duration: None,
        rebind_duration: None,
        additional_options: if acked { &options } else { &[] },
    };
    let mut bytes = vec![0u8; reply.buffer_len()];
    reply
        .emit(&mut DhcpPacket::new_unchecked(&mut bytes[..]))
        .ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::EthernetAddress;

    const LEASE: Lease = Lease {
        guest: Ipv4Addr::new(10, 0, 2, 15),
        router: Ipv4Addr::new(10, 0, 2, 2),
        dns: Ipv4Addr::new(10, 0, 2, 3),
        mask: Ipv4Addr::new(255, 255, 255, 0),
    };
    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 1, 2, 3]);

    fn message(kind: DhcpMessageType, requested: Option<Ipv4Addr>) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: 0x1234_5678,
            secs: 0,
            client_hardware_address: MAC,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: requested,
            client_identifier: Some(MAC),
            server_identifier: None,
            parameter_request_list: Some(&[1, 3, 6]),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut bytes[..]))
            .unwrap();
        bytes
    }

    fn read<R>(bytes: &[u8], look: impl FnOnce(&DhcpRepr<'_>) -> R) -> R {
        let packet = DhcpPacket::new_checked(bytes).unwrap();
        look(&DhcpRepr::parse(&packet).unwrap())
    }

    #[test]
    fn a_discover_gets_qemus_lease_and_a_request_is_acknowledged() {
        let offer = answer(&message(DhcpMessageType::Discover, None), &LEASE).unwrap();
        read(&offer, |repr| {
            assert_eq!(repr.message_type, DhcpMessageType::Offer);
            assert_eq!(repr.transaction_id, 0x1234_5678);
            assert_eq!(repr.your_ip, LEASE.guest);
            assert_eq!(repr.router, Some(LEASE.router));
            assert_eq!(repr.subnet_mask, Some(LEASE.mask));
            assert_eq!(repr.lease_duration, Some(LEASE_SECONDS));
            assert_eq!(repr.dns_servers.as_deref(), Some(&[LEASE.dns][..]));
            assert_eq!(repr.client_hardware_address, MAC);
        });
        let ack = answer(
            &message(DhcpMessageType::Request, Some(LEASE.guest)),
            &LEASE,
        )
        .unwrap();
        assert_eq!(read(&ack, |r| r.message_type), DhcpMessageType::Ack);
    }

    #[test]
    fn a_request_for_another_address_is_refused_and_junk_ignored() {
        let other = Some(Ipv4Addr::new(10, 0, 2, 99));
        let nak = answer(&message(DhcpMessageType::Request, other), &LEASE).unwrap();
        assert_eq!(read(&nak, |r| r.message_type), DhcpMessageType::Nak);
        assert!(answer(&message(DhcpMessageType::Release, None), &LEASE).is_none());
        assert!(answer(&[0u8; 10], &LEASE).is_none());
        assert!(answer(&[0xffu8; 400], &LEASE).is_none());
    }
}
