//! virtio-net (VIRTIO 1.x §5.1, device ID 1): an Ethernet NIC whose frames go
//! to a network backend ([`crate::net`]) through a [`NetPort`].
//!
//! One receive queue (0) and one transmit queue (1). Offered features: the MAC
//! address in configuration space, the link status (a backend whose peer is
//! gone shows the link down, with a configuration-change interrupt) and
//! mergeable receive buffers. No checksum or segmentation offload is offered,
//! as QEMU does not offer it over its socket and user-mode backends either:
//! every frame on the wire is complete.
//!
//! Transmit runs on the vCPU that notifies: each chain is a 12-byte header and
//! a frame, handed to the backend without blocking (a full backend queue drops
//! the frame and counts it). Receive runs at the device tick and whenever the
//! driver adds buffers: a frame that finds no buffer waits in the device
//! (one frame) and in the port's bounded queue (the rest).

use emu_core::{DeviceState, StateError};
use serde::{Deserialize, Serialize};

use super::queue::{Chain, QueueAccess};
use super::{DeviceError, VIRTIO_RING_F_INDIRECT_DESC, VirtioDevice, copy_config};
use crate::net::{Frame, NetPort};
use crate::state::invalid;

/// Device type of a network card.
pub const DEVICE_ID_NET: u32 = 1;

/// Feature: the MAC address is in configuration space.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// Feature: the driver can merge receive buffers.
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// Feature: the link status is in configuration space.
pub const VIRTIO_NET_F_STATUS: u64 = 1 << 16;

/// Configuration status bit: the link is up.
const S_LINK_UP: u16 = 1;

/// The header before every frame (`struct virtio_net_hdr` with
/// `num_buffers`, always 12 bytes under VIRTIO 1.x).
const HEADER_LEN: usize = 12;
/// Offset of `num_buffers` in the header.
const NUM_BUFFERS_AT: usize = 10;

const QUEUE_SIZE: u16 = 256;
const RX: usize = 0;
const TX: usize = 1;
/// Frames taken from the backend in one pass, so that a flood cannot keep a
/// vCPU in the device.
const RX_BATCH: usize = 256;
const STATE_VERSION: u32 = 1;

/// QEMU's first default MAC address (52:54:00:12:34:56); the n-th NIC without
/// `mac=` gets the last byte plus n, as on QEMU.
pub const QEMU_DEFAULT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// Parses `aa:bb:cc:dd:ee:ff`; a multicast address is refused (bit 0 of the
/// first byte), as a NIC cannot own one.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bad =
        || format!("invalid MAC address '{text}': expected six hex bytes as 52:54:00:12:34:56");
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 != 0 {
        return Err(format!("MAC address '{text}' is a multicast address"));
    }
    Ok(mac)
}

/// What a saved NIC holds besides its transport.
#[derive(Serialize, Deserialize)]
struct SavedNet {
    mac: [u8; 6],
    features: u64,
    /// A received frame that waited for buffers.
    held: Option<Frame>,
}

/// A virtio network card.
#[derive(Debug)]
pub struct VirtioNet {
    mac: [u8; 6],
    port: NetPort,
    /// Features the driver accepted.
    features: u64,
    /// A frame from the backend that found no room yet.
    held: Option<Frame>,
    /// The port's link epoch the driver last heard of.
    link_epoch: u64,
}

impl VirtioNet {
    /// A NIC with address `mac` on `port`.
    pub fn new(mac: [u8; 6], port: NetPort) -> VirtioNet {
        let link_epoch = port.link_epoch();
        VirtioNet {
            mac,
            port,
            features: 0,
            held: None,
            link_epoch,
        }
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The backend's counters.
    pub fn stats(&self) -> &crate::net::NetStats {
        self.port.stats()
    }

    fn mergeable(&self) -> bool {
        self.features & VIRTIO_NET_F_MRG_RXBUF != 0
    }

    /// Sends every frame the driver made available.
    fn transmit(&mut self, queue: &mut QueueAccess<'_>) -> Result<(), DeviceError> {
        let mem = queue.memory();
        while let Some(chain) = queue.pop()? {
            let len = chain.readable_len();
            if !chain.writable.is_empty() || len < HEADER_LEN as u64 {
                return Err(DeviceError::BadRequest(format!(
                    "transmit chain of {len} readable bytes (a header is {HEADER_LEN})"
                )));
            }
            let frame_len = len - HEADER_LEN as u64;
            if frame_len > crate::net::MAX_FRAME as u64 {
                // Larger than any frame a backend passes: dropped, not an error.
                self.port
                    .stats()
                    .tx_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                let mut frame = vec![0u8; frame_len as usize];
                chain.read_at(mem, HEADER_LEN as u64, &mut frame)?;
                self.port.send(frame);
            }
            queue.add_used(chain.head, 0)?;
        }
        Ok(())
    }

    /// Fills receive buffers with waiting frames while both last.
    fn receive(&mut self, queue: &mut QueueAccess<'_>) -> Result<(), DeviceError> {
        for _ in 0..RX_BATCH {
            let Some(frame) = self.held.take().or_else(|| self.port.try_recv()) else {
                return Ok(());
            };
            if !self.port.link_up() {
                // Stale: the link went down after the frame was queued.
                continue;
            }
            match self.place(&frame, queue)? {
                Placed::Done => {}
                Placed::NoBuffers => {
                    self.held = Some(frame);
                    return Ok(());
                }
                Placed::TooLarge => self.port.count_rx_dropped(),
            }
        }
        Ok(())
    }

    /// Writes one frame into as many chains as it needs (one without
    /// mergeable buffers); gives the chains back when there are too few.
    fn place(&self, frame: &[u8], queue: &mut QueueAccess<'_>) -> Result<Placed, DeviceError> {
        let mem = queue.memory();
        let total = HEADER_LEN + frame.len();
        let mut chains: Vec<(Chain, usize)> = Vec::new();
        let mut room = 0usize;
        while room < total {
            let Some(chain) = queue.pop()? else {
                queue.give_back(chains.len() as u16);
                return Ok(Placed::NoBuffers);
            };
            if !chain.readable.is_empty() {
                return Err(DeviceError::BadRequest(
                    "receive chain has device-readable buffers".into(),
                ));
            }
            let len = usize::try_from(chain.writable_len()).unwrap_or(usize::MAX);
            let take = len.min(total - room);
            room += take;
            chains.push((chain, take));
            if !self.mergeable() && room < total {
                // Without merging, one chain must hold the whole frame: this
                // one is used, empty, and the frame is dropped.
                if let Some((chain, _)) = chains.pop() {
                    queue.add_used(chain.head, 0)?;
                }
                return Ok(Placed::TooLarge);
            }
            if chains.len() > usize::from(QUEUE_SIZE) {
                queue.give_back(chains.len() as u16);
                return Ok(Placed::TooLarge);
            }
        }
        let mut header = [0u8; HEADER_LEN];
        header[NUM_BUFFERS_AT..].copy_from_slice(&(chains.len() as u16).to_le_bytes());
        let mut stream = header.iter().chain(frame).copied();
        for (chain, take) in &chains {
            let piece: Vec<u8> = stream.by_ref().take(*take).collect();
            chain.write_at(mem, 0, &piece)?;
            queue.add_used(chain.head, *take as u32)?;
        }
        Ok(Placed::Done)
    }
}

/// What became of a received frame.
enum Placed {
    Done,
    /// The ring holds too few buffers; the frame waits.
    NoBuffers,
    /// No set of buffers can hold it: dropped.
    TooLarge,
}

impl VirtioDevice for VirtioNet {
    fn device_type(&self) -> u32 {
        DEVICE_ID_NET
    }

    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn features(&self) -> u64 {
        VIRTIO_NET_F_MAC
            | VIRTIO_NET_F_STATUS
            | VIRTIO_NET_F_MRG_RXBUF
            | VIRTIO_RING_F_INDIRECT_DESC
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // mac[6], status (le16), max_virtqueue_pairs (le16).
        let mut config = [0u8; 10];
        config[..6].copy_from_slice(&self.mac);
        let status = if self.port.link_up() { S_LINK_UP } else { 0 };
        config[6..8].copy_from_slice(&status.to_le_bytes());
        config[8..10].copy_from_slice(&1u16.to_le_bytes());
        copy_config(&config, offset, data);
    }

    fn activate(&mut self, features: u64) {
        self.features = features;
    }

    fn reset(&mut self) {
        self.features = 0;
        self.held = None;
        self.link_epoch = self.port.link_epoch();
    }

    fn save_state(&self) -> DeviceState {
        let saved = SavedNet {
            mac: self.mac,
            features: self.features,
            held: self.held.clone(),
        };
        DeviceState::encode(self.name(), STATE_VERSION, &saved)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let saved: SavedNet = state.decode(self.name(), STATE_VERSION)?;
        if saved
            .held
            .as_ref()
            .is_some_and(|f| f.len() > crate::net::MAX_FRAME)
        {
            return Err(invalid(self.name(), "a held frame larger than any frame"));
        }
        self.mac = saved.mac;
        self.features = saved.features;
        self.held = saved.held;
        Ok(())
    }

    fn pending_queues(&self) -> u32 {
        u32::from(self.held.is_some() || self.port.has_frames()) << RX
    }

    fn poll_config_change(&mut self) -> bool {
        let epoch = self.port.link_epoch();
        let changed = epoch != self.link_epoch;
        self.link_epoch = epoch;
        changed
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut QueueAccess<'_>,
    ) -> Result<(), DeviceError> {
        match index {
            RX => self.receive(queue),
            TX => self.transmit(queue),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{BackendPort, port_pair};
    use crate::virtio::testing::{Driver, TestIrq, test_memory};
    use crate::virtio::{VIRTIO_F_VERSION_1, VirtioMmio};
    use emu_core::MmioDevice;
    use std::sync::Arc;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];

    fn nic(features: u64) -> (Driver, Arc<emu_core::GuestRam>, BackendPort, TestIrq) {
        let (mem, ram) = test_memory();
        let (port, backend) = port_pair(None);
        let irq = TestIrq::default();
        let mut driver = Driver::new(
            VirtioMmio::new(
                Box::new(VirtioNet::new(MAC, port)),
                mem,
                Box::new(irq.clone()),
            ),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1 | features);
        (driver, ram, backend, irq)
    }

    fn frame(len: usize, seed: u8) -> Frame {
        (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
    }

    #[test]
    fn the_configuration_holds_the_mac_and_the_link() {
        let (mut driver, _, backend, irq) = nic(VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS);
        assert_eq!(driver.read(0x008), DEVICE_ID_NET);
        let config: Vec<u8> = (0..8)
            .map(|i| driver.dev.read(0x100 + i, 1).unwrap() as u8)
            .collect();
        assert_eq!(config[..6], MAC);
        assert_eq!(config[6], 1, "link up");
        backend.set_link(false);
        driver.dev.tick(0);
        assert_eq!(driver.dev.read(0x106, 2).unwrap(), 0, "link down");
        assert!(irq.level(), "a configuration change interrupt");
        assert_eq!(driver.read(0x060) & 2, 2);
    }

    #[test]
    fn transmitted_frames_reach_the_backend_without_their_header() {
        let (mut driver, ram, backend, _) = nic(VIRTIO_NET_F_MAC);
        let sent = frame(1514, 1);
        assert!(ram.write_bytes(0x1_0000, &[0; HEADER_LEN]));
        assert!(ram.write_bytes(0x1_0100, &sent[..100]));
        assert!(ram.write_bytes(0x1_1000, &sent[100..]));
        let head = driver.submit(
            TX,
            &[
                (0x1_0000, HEADER_LEN as u32, false),
                (0x1_0100, 100, false),
                (0x1_1000, 1414, false),
            ],
        );
        assert_eq!(driver.used(TX, 0), Some((u32::from(head), 0)));
        assert_eq!(backend.recv(), Some(sent));
    }

    #[test]
    fn received_frames_fill_buffers_with_a_header_and_wait_for_buffers() {
        let (mut driver, ram, backend, irq) = nic(VIRTIO_NET_F_MAC);
        let first = frame(60, 2);
        backend.deliver(first.clone());
        // No buffer yet: the frame waits.
        driver.dev.tick(0);
        assert_eq!(driver.used_idx(RX), 0);
        let head = driver.submit(RX, &[(0x2_0000, 1526, true)]);
        assert_eq!(
            driver.used(RX, 0),
            Some((u32::from(head), (HEADER_LEN + 60) as u32))
        );
        assert!(irq.level());
        let mut got = vec![0u8; HEADER_LEN + 60];
        assert!(ram.read_bytes(0x2_0000, &mut got));
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1, "num_buffers");
        assert_eq!(got[HEADER_LEN..], first[..]);
        // A frame arriving while a buffer waits is placed at the tick.
        driver.offer(RX, &[(0x3_0000, 1526, true)]);
        backend.deliver(frame(1514, 3));
        driver.dev.tick(0);
        assert_eq!(
            driver.used(RX, 1).map(|u| u.1),
            Some((HEADER_LEN + 1514) as u32)
        );
    }

    #[test]
    fn mergeable_buffers_take_a_large_frame_in_pieces() {
        let (mut driver, ram, backend, _) = nic(VIRTIO_NET_F_MRG_RXBUF);
        let big = frame(3000, 4);
        backend.deliver(big.clone());
        driver.offer(RX, &[(0x2_0000, 1500, true)]);
        // Two buffers are too few: nothing is used, the frame waits.
        driver.submit(RX, &[(0x2_1000, 1000, true)]);
        assert_eq!(driver.used_idx(RX), 0);
        driver.submit(RX, &[(0x2_2000, 2000, true)]);
        assert_eq!(driver.used_idx(RX), 3);
        assert_eq!(driver.used(RX, 0).map(|u| u.1), Some(1500));
        assert_eq!(driver.used(RX, 1).map(|u| u.1), Some(1000));
        assert_eq!(
            driver.used(RX, 2).map(|u| u.1),
            Some((HEADER_LEN + 3000 - 2500) as u32)
        );
        let mut got = vec![0u8; 4500];
        assert!(ram.read_bytes(0x2_0000, &mut got[..1500]));
        assert!(ram.read_bytes(0x2_1000, &mut got[1500..2500]));
        assert!(ram.read_bytes(0x2_2000, &mut got[2500..]));
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 3);
        assert_eq!(got[HEADER_LEN..HEADER_LEN + 3000], big[..]);
    }

    #[test]
    fn a_frame_too_large_for_a_buffer_is_dropped_without_merging() {
        let (mut driver, _, backend, _) = nic(0);
        backend.deliver(frame(2000, 5));
        backend.deliver(frame(100, 6));
        driver.submit(RX, &[(0x2_0000, 1526, true)]);
        driver.submit(RX, &[(0x2_1000, 1526, true)]);
        assert_eq!(driver.used(RX, 0).map(|u| u.1), Some(0));
        assert_eq!(
            driver.used(RX, 1).map(|u| u.1),
            Some((HEADER_LEN + 100) as u32)
        );
        let dropped = backend
            .stats()
            .rx_dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(dropped, 1);
    }

    #[test]
    fn bad_chains_break_the_device_not_the_host() {
        let (mut driver, _, _, _) = nic(0);
        // A transmit chain shorter than the header.
        driver.submit(TX, &[(0x1_0000, 4, false)]);
        assert_ne!(driver.status() & 0x40, 0, "DEVICE_NEEDS_RESET");
        let (mut driver, _, backend, _) = nic(0);
        backend.deliver(frame(60, 7));
        // A receive chain the device would have to read.
        driver.submit(RX, &[(0x1_0000, 1526, false)]);
        assert_ne!(driver.status() & 0x40, 0, "DEVICE_NEEDS_RESET");
    }

    #[test]
    fn mac_addresses_parse_as_qemu_writes_them() {
        assert_eq!(parse_mac("52:54:00:12:34:56"), Ok(QEMU_DEFAULT_MAC));
        assert_eq!(parse_mac("52:54:00:AB:cd:EF"), Ok(MAC));
        for bad in [
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52-54-00-12-34-56",
            "5:54:00:12:34:567",
            "zz:54:00:12:34:56",
        ] {
            assert!(
                parse_mac(bad)
                    .unwrap_err()
                    .starts_with("invalid MAC address"),
                "{bad}"
            );
        }
        assert!(
            parse_mac("01:00:5e:00:00:01")
                .unwrap_err()
                .contains("multicast")
        );
    }
}
