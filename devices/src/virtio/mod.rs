//! Virtio devices (VIRTIO 1.x) over the MMIO transport, as on QEMU's riscv-virt board,
//! and over PCI.
//!
//! The parts:
//! - [`VirtioTransportCore`] ([`transport`]) is what every transport does: it
//!   negotiates features, keeps the device status and the queue registers, hands
//!   queue notifications to a [`VirtioDevice`] and raises "used buffer" and
//!   "configuration change" events. The register layouts are thin adapters on it:
//! - [`VirtioMmio`] is the MMIO transport (§4.2.2, version 2 "modern" register
//!   layout): it implements [`emu_core::MmioDevice`] over a 0x1000-byte window and
//!   turns events into InterruptStatus bits on a level line. [`VirtioMmio::empty`] is
//!   an empty slot (device ID 0), which drivers skip.
//! - [`VirtioPci`] ([`pci`]) is the modern PCI transport (§4.1), a
//!   [`crate::pci::PciFunction`] for [`crate::pci::PciHost`]: capabilities in
//!   configuration space, registers in BAR 4, MSI-X in BAR 1, INTx otherwise.
//! - [`VirtioNet`] (device ID 1) is a NIC on a network backend ([`crate::net`]);
//!   [`VirtioBlk`] (device ID 2) serves a host disk image; [`VirtioRng`] (device ID 4)
//!   serves entropy from a pluggable [`EntropySource`].
//! - [`GuestMemoryHandle`] is the devices' view of guest RAM: a `vm-memory` region over
//!   Turing's own RAM mapping (no copy), which rust-vmm's `virtio-queue` walks.
//!
//! Each device model saves its own guest-visible state ([`VirtioDevice::save_state`]);
//! the transport nests it in its own, with the queue registers and ring positions,
//! so a device restored mid-transfer goes on where it was (see [`VirtioMmio`]).
//!
//! Queues are processed synchronously, on the vCPU thread that writes `QueueNotify`.
//! A driver error in a queue (a buffer outside RAM, a looping chain, a request too
//! short to parse...) never panics: the device sets `DEVICE_NEEDS_RESET` in its status,
//! raises a configuration-change interrupt and ignores its queues until the driver
//! resets it.
//!
//! # Wiring into a machine
//!
//! ```
//! use std::sync::Arc;
//! use devices::virtio::{GuestMemoryHandle, VirtioMmio, VirtioRng, MMIO_SIZE};
//! use emu_core::{GuestRam, IrqLine, MmioDevice};
//!
//! struct Line; // in a machine: `plic.source(n)`
//! impl IrqLine for Line {
//!     fn set_level(&self, _high: bool) {}
//! }
//!
//! let ram = Arc::new(GuestRam::new(16 << 20).unwrap());
//! let mem = GuestMemoryHandle::new(ram.clone(), 0x8000_0000).unwrap();
//! // Slot 0 (0x1000_1000 on riscv-virt, PLIC source 1) gets an entropy device,
//! // the other slots stay empty.
//! let mut slot0 = VirtioMmio::new(Box::new(VirtioRng::from_host()), mem, Box::new(Line));
//! let mut slot1 = VirtioMmio::empty();
//! assert_eq!(slot0.read(0x000, 4), Ok(0x7472_6976)); // "virt"
//! assert_eq!(slot0.read(0x008, 4), Ok(4));
//! assert_eq!(slot1.read(0x008, 4), Ok(0));
//! // bus.map_mmio("virtio0", 0x1000_1000, MMIO_SIZE, Box::new(slot0))?;
//! # let _ = MMIO_SIZE;
//! ```
//!
//! A disk: `VirtioBlk::open(Path::new("disk.img"), false)?` gives a device whose
//! error, if any, names the file in one line (missing file, or locked by another
//! Turing: writable images are locked exclusively, read-only ones shared).

pub mod blk;
pub mod gpu;
pub mod input;
pub mod memory;
pub mod mmio;
pub mod net;
pub mod pci;
pub mod queue;
pub mod rng;
pub mod transport;

pub use blk::{BlkError, VirtioBlk};
pub use gpu::{DEVICE_ID_GPU, Display, DisplayHandle, VirtioGpu};
pub use input::{DEVICE_ID_INPUT, HostInput, InputHandle, InputKind, VirtioInput};
pub use memory::{GuestMemoryHandle, MemoryHandleError, VirtioMemory};
pub use mmio::{MMIO_SIZE, VirtioMmio, VirtioMmioState};
pub use net::{DEVICE_ID_NET, VirtioNet};
pub use pci::VirtioPci;
pub use queue::{Chain, DescBuf, QueueAccess, QueueError};
pub use rng::{EntropySource, VirtioRng, host_entropy, seeded_entropy};
pub use transport::{QueueRegs, TransportEvents, VirtioTransportCore, VirtioTransportState};

use emu_core::{DeviceState, StateError};
use thiserror::Error;

/// Device type of an empty slot: drivers skip it.
pub const DEVICE_ID_NONE: u32 = 0;
/// Device type of a block device.
pub const DEVICE_ID_BLOCK: u32 = 2;
/// Device type of an entropy source.
pub const DEVICE_ID_ENTROPY: u32 = 4;

/// Feature bit: the device supports indirect descriptor tables (§2.7.5.3).
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
/// Feature bit: the device follows VIRTIO 1.x (mandatory here; legacy is not offered).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Device status bits (§2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready: the device may use its queues.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 0x80;
}

/// InterruptStatus bit: the device used buffers in a queue.
pub const INT_USED_BUFFER: u32 = 1;
/// InterruptStatus bit: the configuration (or device status) changed.
pub const INT_CONFIG_CHANGE: u32 = 2;

/// Why a device stopped processing its queues: a driver error, never a host one.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DeviceError {
    /// The queue itself or a descriptor chain is malformed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The chain is well formed but cannot hold a request of this device.
    #[error("malformed request: {0}")]
    BadRequest(String),
}

/// A virtio device model, independent of the transport it sits behind.
pub trait VirtioDevice: Send {
    /// Device type (§5): [`DEVICE_ID_BLOCK`], [`DEVICE_ID_ENTROPY`]...
    fn device_type(&self) -> u32;

    /// A short name for log messages ("virtio-blk").
    fn name(&self) -> &'static str;

    /// Feature bits offered; the transport always adds [`VIRTIO_F_VERSION_1`].
    fn features(&self) -> u64;

    /// The maximum size of each queue (powers of two up to 32768); one entry per queue.
    fn queue_max_sizes(&self) -> &[u16];

    /// Reads device configuration space at `offset`; bytes past its end read as 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes device configuration space; by default writes are ignored.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    /// The driver set DRIVER_OK after accepting `features`.
    fn activate(&mut self, _features: u64) {}

    /// The driver reset the device (or the device is being put back to power-on).
    fn reset(&mut self) {}

    /// The model's guest-visible state, apart from its host handles (an image
    /// file, an entropy source, a display or input queue shared with the host).
    /// The transport nests it inside its own saved state.
    fn save_state(&self) -> DeviceState;

    /// Replaces the guest-visible state with one saved by the same model; on an
    /// error the device is unchanged.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError>;

    /// Queues (a bit per index) with work that arrived from the host side, for
    /// the transport to run at its next tick (input events, for example).
    fn pending_queues(&self) -> u32 {
        0
    }

    /// Whether the device's configuration changed by itself since the last
    /// call (a NIC's link went up or down), for the transport to raise a
    /// configuration-change interrupt at its next tick.
    fn poll_config_change(&mut self) -> bool {
        false
    }

    /// Handles a notification of queue `index`: takes available chains, does the
    /// work and returns them through [`QueueAccess::add_used`]. An error marks the
    /// device broken until reset; chains already used stay used.
    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut QueueAccess<'_>,
    ) -> Result<(), DeviceError>;
}

/// Copies the bytes of `config` at `offset` into `data`, zero past the end.
pub(crate) fn copy_config(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = offset
            .checked_add(i as u64)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| config.get(at).copied())
            .unwrap_or(0);
    }
}

#[cfg(test)]
pub(crate) mod testing;
