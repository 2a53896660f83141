//! The virtio-pci transport, modern interface only (VIRTIO 1.x §4.1).
//!
//! A [`VirtioPci`] is a [`PciFunction`] for [`crate::pci::PciHost`], laid out as
//! QEMU lays out its virtio-pci devices:
//! - BAR 4, 64-bit prefetchable memory, 16 KiB: the common configuration at 0x0,
//!   the ISR at 0x1000, the device configuration at 0x2000 and the notification
//!   area at 0x3000 (queue n at `n * 4`: `queue_notify_off` is the queue index and
//!   the multiplier is 4). Vendor-specific capabilities point the driver there,
//!   plus the `VIRTIO_PCI_CAP_PCI_CFG` window for reaching BAR 4 through
//!   configuration space.
//! - BAR 1, 32-bit memory, 4 KiB: the MSI-X table (at 0) and pending bits (at
//!   0x800), one vector per queue plus one for configuration changes.
//! - IDs: vendor 0x1af4; the transitional device IDs where the device type has
//!   one (net 0x1000, block 0x1001, console 0x1003, entropy 0x1005...), as QEMU
//!   shows its default devices, with revision 0; otherwise 0x1040 + type with
//!   revision 1. Subsystem vendor 0x1af4 and subsystem ID the device type (which
//!   is how Linux tells the type of a transitional device). Interrupt pin INTA.
//!
//! There is no legacy I/O BAR: the device is modern only. Linux's virtio-pci
//! driver takes the modern interface whenever the capabilities are present (and
//! would otherwise fall back to a legacy BAR 0 that is not there), and the device
//! offers VIRTIO_F_VERSION_1 as the core always does.
//!
//! The transport work (features, status, queues, processing, NEEDS_RESET, saved
//! queues) is [`VirtioTransportCore`]'s, shared with virtio-mmio. This layout maps
//! the core's events onto interrupts: with MSI-X enabled, a used buffer raises the
//! queue's `queue_msix_vector` and a configuration change `config_msix_vector`
//! (`NO_VECTOR`: nothing); otherwise the event's bit goes into the ISR and INTx
//! stays asserted until the driver reads the ISR, which clears it.
//!
//! The device reaches guest memory, and sends MSI-X messages, only while bus
//! mastering is enabled in its command register: before that, notifications are
//! ignored and messages lost, as DMA would be on hardware.

use std::fmt;
use std::sync::Arc;

use emu_core::{Device, DeviceState, MsiTarget, StateError};
use serde::{Deserialize, Serialize};

use super::memory::GuestMemoryHandle;
use super::transport::{VirtioTransportCore, VirtioTransportState, set_high, set_low};
use super::{DEVICE_ID_BLOCK, DEVICE_ID_ENTROPY, DEVICE_ID_GPU, DEVICE_ID_INPUT, VirtioDevice};
use crate::pci::config::{BarKind, PciConfigSpace, PciConfigState, PciIds, cap_id};
use crate::pci::msix::{Msix, MsixState};
use crate::pci::{PciError, PciFunction, PciInterrupts, PciIntx, ones64};
use crate::state::invalid;

/// Vendor ID of virtio PCI devices (and their subsystem vendor ID).
pub const VIRTIO_PCI_VENDOR_ID: u16 = 0x1af4;
/// Device ID of a modern-only device of type 0; type n is `0x1040 + n`.
pub const MODERN_DEVICE_ID_BASE: u16 = 0x1040;
/// Device type of a network card.
pub const DEVICE_ID_NET: u32 = 1;
/// Device type of a console.
pub const DEVICE_ID_CONSOLE: u32 = 3;
/// Device type of a memory balloon.
pub const DEVICE_ID_BALLOON: u32 = 5;
/// Device type of a SCSI host.
pub const DEVICE_ID_SCSI: u32 = 8;
/// Device type of a 9P transport.
pub const DEVICE_ID_9P: u32 = 9;

/// The BAR holding the MSI-X table and pending bits.
pub const MSIX_BAR: usize = 1;
/// Its size.
pub const MSIX_BAR_SIZE: u64 = 0x1000;
const MSIX_TABLE_OFFSET: u32 = 0;
const MSIX_PBA_OFFSET: u32 = 0x800;
/// Most vectors the table holds (it must end before the pending bits).
const MAX_VECTORS: usize = 128;

/// The BAR holding the virtio structures.
pub const MODERN_BAR: usize = 4;
/// Its size.
pub const MODERN_BAR_SIZE: u64 = 0x4000;
/// Offset of the common configuration in [`MODERN_BAR`].
pub const COMMON_CFG_OFFSET: u64 = 0x0000;
/// Offset of the ISR.
pub const ISR_CFG_OFFSET: u64 = 0x1000;
/// Offset of the device-specific configuration.
pub const DEVICE_CFG_OFFSET: u64 = 0x2000;
/// Offset of the notification area.
pub const NOTIFY_CFG_OFFSET: u64 = 0x3000;
/// Size of each of the four structures.
pub const REGION_SIZE: u64 = 0x1000;
/// Bytes between two queues' notification addresses.
pub const NOTIFY_OFF_MULTIPLIER: u32 = 4;
/// "No MSI-X vector" in `config_msix_vector` and `queue_msix_vector`.
pub const NO_VECTOR: u16 = 0xffff;

/// `cfg_type` of the virtio vendor-specific capabilities (§4.1.4).
pub mod cfg_type {
    /// Common configuration.
    pub const COMMON: u8 = 1;
    /// Notifications.
    pub const NOTIFY: u8 = 2;
    /// ISR status.
    pub const ISR: u8 = 3;
    /// Device-specific configuration.
    pub const DEVICE: u8 = 4;
    /// Access to the BARs through configuration space.
    pub const PCI: u8 = 5;
}

/// Fields of a virtio capability, from its start (§4.1.4).
pub mod cap {
    /// Length of the capability.
    pub const LEN: u16 = 2;
    /// Its `cfg_type`.
    pub const CFG_TYPE: u16 = 3;
    /// The BAR the structure is in.
    pub const BAR: u16 = 4;
    /// Offset of the structure in the BAR (32 bits).
    pub const OFFSET: u16 = 8;
    /// Length of the structure (32 bits).
    pub const LENGTH: u16 = 12;
    /// NOTIFY_CFG: `notify_off_multiplier` (32 bits).
    pub const NOTIFY_OFF_MULTIPLIER: u16 = 16;
    /// PCI_CFG: `pci_cfg_data`, the window onto the BAR (4 bytes).
    pub const PCI_CFG_DATA: u16 = 16;
}

/// Registers of the common configuration structure (§4.1.4.3).
pub mod common {
    /// Selects a 32-bit word of the device features.
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    /// The selected device feature word.
    pub const DEVICE_FEATURE: u64 = 0x04;
    /// Selects a 32-bit word of the driver features.
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    /// The selected driver feature word.
    pub const DRIVER_FEATURE: u64 = 0x0c;
    /// MSI-X vector for configuration changes (16 bits).
    pub const CONFIG_MSIX_VECTOR: u64 = 0x10;
    /// Number of queues (16 bits).
    pub const NUM_QUEUES: u64 = 0x12;
    /// Device status (8 bits).
    pub const DEVICE_STATUS: u64 = 0x14;
    /// Configuration generation (8 bits).
    pub const CONFIG_GENERATION: u64 = 0x15;
    /// Queue selector (16 bits).
    pub const QUEUE_SELECT: u64 = 0x16;
    /// Selected queue's size (16 bits).
    pub const QUEUE_SIZE: u64 = 0x18;
    /// Selected queue's MSI-X vector (16 bits).
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    /// Selected queue's enable (16 bits).
    pub const QUEUE_ENABLE: u64 = 0x1c;
    /// Selected queue's notification offset (16 bits).
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    /// Selected queue's descriptor table (64 bits).
    pub const QUEUE_DESC: u64 = 0x20;
    /// Selected queue's driver area (64 bits).
    pub const QUEUE_DRIVER: u64 = 0x28;
    /// Selected queue's device area (64 bits).
    pub const QUEUE_DEVICE: u64 = 0x30;
    /// High half of [`QUEUE_DESC`], for 32-bit accesses.
    pub const QUEUE_DESC_HIGH: u64 = QUEUE_DESC + 4;
    /// High half of [`QUEUE_DRIVER`].
    pub const QUEUE_DRIVER_HIGH: u64 = QUEUE_DRIVER + 4;
    /// High half of [`QUEUE_DEVICE`].
    pub const QUEUE_DEVICE_HIGH: u64 = QUEUE_DEVICE + 4;
}

/// Layout version of a saved transport (its kind is `virtio-pci/<device name>`).
const STATE_VERSION: u32 = 1;

/// The PCI IDs of a virtio device of `device_type`, as QEMU shows its default
/// devices.
pub fn virtio_pci_ids(device_type: u32) -> PciIds {
    let transitional = match device_type {
        DEVICE_ID_NET => Some(0x1000),
        DEVICE_ID_BLOCK => Some(0x1001),
        DEVICE_ID_BALLOON => Some(0x1002),
        DEVICE_ID_CONSOLE => Some(0x1003),
        DEVICE_ID_SCSI => Some(0x1004),
        DEVICE_ID_ENTROPY => Some(0x1005),
        DEVICE_ID_9P => Some(0x1009),
        _ => None,
    };
    let (device_id, revision_id) = match transitional {
        Some(id) => (id, 0),
        // Device types are small; anything past u16 is nonsense anyway.
        None => (MODERN_DEVICE_ID_BASE.wrapping_add(device_type as u16), 1),
    };
    let class_code = match device_type {
        DEVICE_ID_NET => 0x02_00_00,
        DEVICE_ID_BLOCK | DEVICE_ID_SCSI => 0x01_00_00,
        DEVICE_ID_CONSOLE => 0x07_80_00,
        DEVICE_ID_GPU => 0x03_80_00,
        DEVICE_ID_INPUT => 0x09_80_00,
        _ => 0x00_ff_00,
    };
    PciIds {
        vendor_id: VIRTIO_PCI_VENDOR_ID,
        device_id,
        class_code,
        revision_id,
        subsystem_vendor_id: VIRTIO_PCI_VENDOR_ID,
        subsystem_id: device_type as u16,
    }
}

/// The MSI-X vectors the driver chose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtioPciVectors {
    /// `config_msix_vector`.
    pub config: u16,
    /// `queue_msix_vector` of each queue.
    pub queues: Vec<u16>,
}

impl VirtioPciVectors {
    fn none(queues: usize) -> VirtioPciVectors {
        VirtioPciVectors {
            config: NO_VECTOR,
            queues: vec![NO_VECTOR; queues],
        }
    }
}

/// What a virtio-pci function saves: its configuration space, MSI-X table,
/// vectors, the transport registers with ring positions, and the device model.
#[derive(Serialize, Deserialize)]
struct SavedVirtioPci {
    config: PciConfigState,
    /// `None` for a function without MSI-X.
    msix: Option<MsixState>,
    vectors: VirtioPciVectors,
    registers: VirtioTransportState,
    device: DeviceState,
}

/// A virtio device behind the modern virtio-pci interface.
pub struct VirtioPci {
    config: PciConfigSpace,
    /// `None` with QEMU's `vectors=0`: no MSI-X capability, INTx only.
    msix: Option<Msix>,
    core: VirtioTransportCore,
    vectors: VirtioPciVectors,
    /// Offset of the PCI_CFG capability.
    pci_cfg_cap: u16,
    intx: PciIntx,
    msi: Option<Arc<dyn MsiTarget>>,
}

impl fmt::Debug for VirtioPci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtioPci")
            .field("device", &self.core.device().name())
            .field("state", &self.core.state())
            .field("vectors", &self.vectors)
            .finish_non_exhaustive()
    }
}

/// Appends a virtio vendor-specific capability; `extra` follows the common
/// 16 bytes.
fn add_virtio_cap(
    config: &mut PciConfigSpace,
    cfg_type: u8,
    bar: usize,
    offset: u64,
    length: u64,
    extra: &[u8],
) -> Result<u16, PciError> {
    // 16 or 20 bytes; BAR below 6; offsets and lengths within a 16 KiB BAR.
    let mut body = vec![(16 + extra.len()) as u8, cfg_type, bar as u8, 0, 0, 0];
    body.extend_from_slice(&(offset as u32).to_le_bytes());
    body.extend_from_slice(&(length as u32).to_le_bytes());
    body.extend_from_slice(extra);
    config.add_capability(cap_id::VENDOR_SPECIFIC, &body)
}

fn valid_size(size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8)
}

impl VirtioPci {
    /// `device` behind a virtio-pci function; it reaches guest RAM through `mem`.
    /// Interrupts are wired when the function is added to a host. The layout is
    /// fixed and always fits; the error only passes on what the configuration
    /// space builders could refuse.
    pub fn new(
        device: Box<dyn VirtioDevice>,
        mem: GuestMemoryHandle,
    ) -> Result<VirtioPci, PciError> {
        VirtioPci::build(device, mem, true)
    }

    /// The same function without MSI-X (no capability, no BAR 1), as QEMU's
    /// `vectors=0` makes it: the device interrupts through INTx alone. For a
    /// machine whose interrupt controllers cannot take MSI messages, where a
    /// driver would otherwise try MSI-X first and fail.
    pub fn without_msix(
        device: Box<dyn VirtioDevice>,
        mem: GuestMemoryHandle,
    ) -> Result<VirtioPci, PciError> {
        VirtioPci::build(device, mem, false)
    }

    fn build(
        device: Box<dyn VirtioDevice>,
        mem: GuestMemoryHandle,
        with_msix: bool,
    ) -> Result<VirtioPci, PciError> {
        let mut config = PciConfigSpace::new(virtio_pci_ids(device.device_type()));
        config.set_interrupt_pin(1);
        if with_msix {
            config.add_bar(
                MSIX_BAR,
                BarKind::Memory32 {
                    prefetchable: false,
                },
                MSIX_BAR_SIZE,
            )?;
        }
        config.add_bar(
            MODERN_BAR,
            BarKind::Memory64 { prefetchable: true },
            MODERN_BAR_SIZE,
        )?;
        let regions = [
            (cfg_type::COMMON, COMMON_CFG_OFFSET),
            (cfg_type::ISR, ISR_CFG_OFFSET),
            (cfg_type::DEVICE, DEVICE_CFG_OFFSET),
        ];
        for (kind, offset) in regions {
            add_virtio_cap(&mut config, kind, MODERN_BAR, offset, REGION_SIZE, &[])?;
        }
        add_virtio_cap(
            &mut config,
            cfg_type::NOTIFY,
            MODERN_BAR,
            NOTIFY_CFG_OFFSET,
            REGION_SIZE,
            &NOTIFY_OFF_MULTIPLIER.to_le_bytes(),
        )?;
        let pci_cfg_cap = add_virtio_cap(&mut config, cfg_type::PCI, 0, 0, 0, &[0; 4])?;
        config.set_writable(pci_cfg_cap + cap::BAR, &[0xff]);
        config.set_writable(pci_cfg_cap + cap::OFFSET, &[0xff; 12]);
        let queues = device.queue_max_sizes().len();
        // At most MAX_VECTORS (128).
        let vectors = (queues + 1).min(MAX_VECTORS) as u16;
        let msix = if with_msix {
            Some(Msix::new(
                &mut config,
                vectors,
                (MSIX_BAR, MSIX_TABLE_OFFSET),
                (MSIX_BAR, MSIX_PBA_OFFSET),
            )?)
        } else {
            None
        };
        let mut core = VirtioTransportCore::new(device, Some(mem));
        core.set_dma_enabled(false);
        Ok(VirtioPci {
            config,
            msix,
            core,
            vectors: VirtioPciVectors::none(queues),
            pci_cfg_cap,
            intx: PciIntx::default(),
            msi: None,
        })
    }

    /// A copy of the transport registers (with each queue's ring positions).
    pub fn state(&self) -> VirtioTransportState {
        self.core.state()
    }

    /// The MSI-X vectors the driver chose.
    pub fn vectors(&self) -> &VirtioPciVectors {
        &self.vectors
    }

    /// Whether the device broke on a driver error and waits for a reset.
    pub fn needs_reset(&self) -> bool {
        self.core.needs_reset()
    }

    fn kind(&self) -> String {
        format!("virtio-pci/{}", self.core.device().name())
    }

    /// Where MSI-X messages go now: nowhere without bus mastering.
    fn msi_target(
        config: &PciConfigSpace,
        msi: &Option<Arc<dyn MsiTarget>>,
    ) -> Option<Arc<dyn MsiTarget>> {
        if config.bus_master() {
            msi.clone()
        } else {
            None
        }
    }

    /// Whether MSI-X is there and enabled.
    fn msix_enabled(&self) -> bool {
        self.msix.as_ref().is_some_and(|m| m.enabled(&self.config))
    }

    /// Signals what the core raised: MSI-X vectors when enabled, else ISR bits.
    fn signal(&mut self) {
        let events = self.core.take_events();
        if !events.is_empty() {
            if let Some(msix) = self.msix.as_mut().filter(|m| m.enabled(&self.config)) {
                let target = VirtioPci::msi_target(&self.config, &self.msi);
                let queue_vectors = events
                    .used_queues
                    .iter()
                    .filter_map(|&q| self.vectors.queues.get(q).copied());
                let config_vector = events.config_changed.then_some(self.vectors.config);
                let raised: Vec<u16> = queue_vectors.chain(config_vector).collect();
                for vector in raised {
                    if vector != NO_VECTOR {
                        msix.notify(vector, &self.config, target.as_deref());
                    }
                }
            } else {
                self.core.raise_interrupt(events.interrupt_bits());
            }
        }
        self.update_intx();
    }

    /// INTx is asserted while the ISR holds bits and MSI-X is off.
    fn update_intx(&mut self) {
        let pending = self.core.interrupt_status() != 0 && !self.msix_enabled();
        self.intx.update(&mut self.config, pending);
    }

    fn valid_vector(&self, vector: u16) -> u16 {
        if vector < self.msix.as_ref().map_or(0, Msix::vectors) {
            vector
        } else {
            NO_VECTOR
        }
    }

    fn read_common(&self, offset: u64) -> u64 {
        let core = &self.core;
        let queue = core.queue();
        let selected = core.selected();
        match offset {
            common::DEVICE_FEATURE_SELECT => u64::from(core.device_features_sel()),
            common::DEVICE_FEATURE => u64::from(core.device_features_word()),
            common::DRIVER_FEATURE_SELECT => u64::from(core.driver_features_sel()),
            common::DRIVER_FEATURE => u64::from(core.driver_features_word()),
            common::CONFIG_MSIX_VECTOR => u64::from(self.vectors.config),
            common::NUM_QUEUES => core.num_queues() as u64,
            common::DEVICE_STATUS => u64::from(core.status() & 0xff),
            common::CONFIG_GENERATION => u64::from(core.config_generation() & 0xff),
            common::QUEUE_SELECT => u64::from(core.queue_sel() & 0xffff),
            common::QUEUE_SIZE => queue.map_or(0, |q| u64::from(q.size)),
            common::QUEUE_MSIX_VECTOR => selected
                .and_then(|i| self.vectors.queues.get(i))
                .map_or(u64::from(NO_VECTOR), |&v| u64::from(v)),
            common::QUEUE_ENABLE => queue.map_or(0, |q| u64::from(q.ready)),
            // Queue n notifies at n * multiplier.
            common::QUEUE_NOTIFY_OFF => selected.map_or(0, |i| i as u64),
            common::QUEUE_DESC => queue.map_or(0, |q| q.desc),
            common::QUEUE_DESC_HIGH => queue.map_or(0, |q| q.desc >> 32),
            common::QUEUE_DRIVER => queue.map_or(0, |q| q.driver),
            common::QUEUE_DRIVER_HIGH => queue.map_or(0, |q| q.driver >> 32),
            common::QUEUE_DEVICE => queue.map_or(0, |q| q.device),
            common::QUEUE_DEVICE_HIGH => queue.map_or(0, |q| q.device >> 32),
            _ => 0,
        }
    }

    /// A write to the common configuration. Registers are matched by offset, as
    /// QEMU does; 64-bit registers take one 8-byte or two 4-byte writes.
    fn write_common(&mut self, offset: u64, size: u8, value: u64) {
        let core = &mut self.core;
        match offset {
            common::DEVICE_FEATURE_SELECT => core.set_device_features_sel(value as u32),
            common::DRIVER_FEATURE_SELECT => core.set_driver_features_sel(value as u32),
            common::DRIVER_FEATURE => core.write_driver_features(value as u32),
            common::CONFIG_MSIX_VECTOR => {
                self.vectors.config = self.valid_vector(value as u16);
            }
            common::DEVICE_STATUS => {
                let status = (value & 0xff) as u32;
                core.write_status(status);
                if status == 0 {
                    self.vectors = VirtioPciVectors::none(core.num_queues());
                }
            }
            common::QUEUE_SELECT => core.set_queue_sel((value & 0xffff) as u32),
            common::QUEUE_SIZE => {
                if let Some(regs) = core.queue_setup() {
                    regs.size = value as u16;
                }
            }
            common::QUEUE_MSIX_VECTOR => {
                if let Some(index) = core.selected() {
                    let vector = self.valid_vector(value as u16);
                    if let Some(slot) = self.vectors.queues.get_mut(index) {
                        *slot = vector;
                    }
                }
            }
            // The driver never writes 0 (§4.1.4.3.2); ignore it rather than break.
            common::QUEUE_ENABLE if value & 1 != 0 => core.set_queue_ready(true),
            common::QUEUE_DESC..=common::QUEUE_DEVICE_HIGH if offset.is_multiple_of(4) => {
                let Some(regs) = core.queue_setup() else {
                    return;
                };
                let field = match offset & !0x7 {
                    common::QUEUE_DESC => &mut regs.desc,
                    common::QUEUE_DRIVER => &mut regs.driver,
                    _ => &mut regs.device,
                };
                match (offset % 8, size) {
                    (0, 8) => *field = value,
                    (0, _) => set_low(field, value as u32),
                    _ => set_high(field, value as u32),
                }
            }
            _ => {}
        }
    }

    /// A read in BAR 4.
    fn read_modern(&mut self, offset: u64, size: u8) -> u64 {
        match offset {
            o if o < ISR_CFG_OFFSET => self.read_common(o - COMMON_CFG_OFFSET),
            ISR_CFG_OFFSET => {
                // Reading the ISR acknowledges it and lowers INTx.
                let isr = self.core.interrupt_status();
                self.core.ack_interrupt(isr);
                self.update_intx();
                u64::from(isr & 0xff)
            }
            o if (DEVICE_CFG_OFFSET..NOTIFY_CFG_OFFSET).contains(&o) => {
                let mut bytes = [0u8; 8];
                let width = usize::from(size).min(8);
                self.core
                    .read_config(o - DEVICE_CFG_OFFSET, &mut bytes[..width]);
                u64::from_le_bytes(bytes)
            }
            _ => 0,
        }
    }

    /// A write in BAR 4.
    fn write_modern(&mut self, offset: u64, size: u8, value: u64) {
        match offset {
            o if o < ISR_CFG_OFFSET => self.write_common(o - COMMON_CFG_OFFSET, size, value),
            o if (DEVICE_CFG_OFFSET..NOTIFY_CFG_OFFSET).contains(&o) => {
                let width = usize::from(size).min(8);
                self.core
                    .write_config(o - DEVICE_CFG_OFFSET, &value.to_le_bytes()[..width]);
            }
            o if (NOTIFY_CFG_OFFSET..MODERN_BAR_SIZE).contains(&o) => {
                // The address names the queue, whatever is written.
                let queue = (o - NOTIFY_CFG_OFFSET) / u64::from(NOTIFY_OFF_MULTIPLIER);
                self.core.notify(queue as usize);
            }
            // The ISR is read-only.
            _ => {}
        }
        self.signal();
    }

    /// Whether a configuration access overlaps the PCI_CFG data window.
    fn touches_pci_cfg_data(&self, offset: u16, size: u8) -> bool {
        let data = self.pci_cfg_cap + cap::PCI_CFG_DATA;
        offset < data + 4 && data < offset.saturating_add(u16::from(size))
    }

    /// The BAR access the PCI_CFG capability describes: BAR, offset and a
    /// length of 1, 2 or 4.
    fn pci_cfg_access(&self) -> Option<(usize, u64, u8)> {
        let bar = usize::from(self.config.get_u8(self.pci_cfg_cap + cap::BAR));
        let offset = u64::from(self.config.get_u32(self.pci_cfg_cap + cap::OFFSET));
        let length = self.config.get_u32(self.pci_cfg_cap + cap::LENGTH);
        matches!(length, 1 | 2 | 4).then_some((bar, offset, length as u8))
    }
}

impl Device for VirtioPci {
    /// Power-on: configuration space (BARs unprogrammed, decoding and bus
    /// mastering off, MSI-X disabled), MSI-X table, vectors, the transport and
    /// the device model; INTx low.
    fn reset(&mut self) {
        self.config.reset();
        if let Some(msix) = &mut self.msix {
            msix.reset();
        }
        self.core.reset();
        self.core.set_dma_enabled(false);
        self.vectors = VirtioPciVectors::none(self.core.num_queues());
        self.intx.update(&mut self.config, false);
    }

    fn save_state(&self) -> DeviceState {
        let saved = SavedVirtioPci {
            config: self.config.state(),
            msix: self.msix.as_ref().map(Msix::state),
            vectors: self.vectors.clone(),
            registers: self.core.state(),
            device: self.core.save_device(),
        };
        DeviceState::encode(&self.kind(), STATE_VERSION, &saved)
    }

    /// Checks everything before changing anything (configuration space against
    /// this function's layout, MSI-X table size, queues, rings in RAM, the device
    /// model's state), then drives INTx to the restored level.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let kind = self.kind();
        let saved: SavedVirtioPci = state.decode(&kind, STATE_VERSION)?;
        let mut config = self.config.clone();
        config
            .restore(&saved.config)
            .map_err(|reason| invalid(&kind, reason))?;
        let mut msix = self.msix.clone();
        match (&mut msix, &saved.msix) {
            (Some(msix), Some(saved)) => msix
                .restore(saved)
                .map_err(|reason| invalid(&kind, reason))?,
            (None, None) => {}
            _ => return Err(invalid(&kind, "MSI-X on one side only")),
        }
        if saved.vectors.queues.len() != self.core.num_queues() {
            return Err(invalid(&kind, "MSI-X vectors for another number of queues"));
        }
        self.core.restore(saved.registers, &saved.device, &kind)?;
        self.config = config;
        self.msix = msix;
        self.vectors = saved.vectors;
        self.core.set_dma_enabled(self.config.bus_master());
        let pending = self.core.interrupt_status() != 0 && !self.msix_enabled();
        self.intx.redrive(&mut self.config, pending);
        Ok(())
    }
}

impl PciFunction for VirtioPci {
    fn config(&self) -> &PciConfigSpace {
        &self.config
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        if self.touches_pci_cfg_data(offset, size)
            && let Some((bar, at, length)) = self.pci_cfg_access()
        {
            let value = self.bar_read(bar, at, length);
            let bytes = value.to_le_bytes();
            self.config.set_bytes(
                self.pci_cfg_cap + cap::PCI_CFG_DATA,
                &bytes[..usize::from(length)],
            );
        }
        self.config.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.config.write(offset, size, value);
        if self.touches_pci_cfg_data(offset, size)
            && let Some((bar, at, length)) = self.pci_cfg_access()
        {
            let data = self.config.get_u32(self.pci_cfg_cap + cap::PCI_CFG_DATA);
            self.bar_write(bar, at, length, u64::from(data));
        }
        self.core.set_dma_enabled(self.config.bus_master());
        let target = VirtioPci::msi_target(&self.config, &self.msi);
        if let Some(msix) = &mut self.msix {
            msix.config_written(&self.config, target.as_deref());
        }
        self.update_intx();
    }

    fn bar_read(&mut self, bar: usize, offset: u64, size: u8) -> u64 {
        if !valid_size(size) {
            return ones64(size);
        }
        let value = match bar {
            MSIX_BAR => match &self.msix {
                Some(msix) => msix.read(bar, offset, size).unwrap_or(0),
                None => ones64(size),
            },
            MODERN_BAR => self.read_modern(offset, size),
            _ => ones64(size),
        };
        value & ones64(size)
    }

    fn bar_write(&mut self, bar: usize, offset: u64, size: u8, value: u64) {
        if !valid_size(size) {
            return;
        }
        let value = value & ones64(size);
        match bar {
            MSIX_BAR => {
                let target = VirtioPci::msi_target(&self.config, &self.msi);
                if let Some(msix) = &mut self.msix {
                    msix.write(bar, offset, size, value, &self.config, target.as_deref());
                }
            }
            MODERN_BAR => self.write_modern(offset, size, value),
            _ => {}
        }
    }

    fn tick(&mut self, _now: u64) -> Option<u64> {
        self.core.tick();
        self.signal();
        None
    }

    fn connect_interrupts(&mut self, interrupts: PciInterrupts) {
        self.intx.connect(interrupts.intx);
        self.msi = interrupts.msi;
    }
}

#[cfg(test)]
mod tests {
    use emu_core::GuestPhysAddr;
    use std::sync::Arc;

    use emu_core::{Bus, GuestRam, MsiMessage};

    use super::*;
    use crate::pci::config::{bar_offset, command, reg};
    use crate::pci::host::tests::{MMIO_BASE, MMIO64_BASE, PIO_BASE, Toy, bus_with, ecam, lines};
    use crate::pci::msix::tests::RecordingTarget;
    use crate::pci::{PciHost, SharedPciHost};
    use crate::testing::{TestIrq, assert_refuses_foreign_states};
    use crate::virtio::testing::{Driver, TestTransport, copy_memory, test_memory};
    use crate::virtio::{INT_USED_BUFFER, VIRTIO_F_VERSION_1, VirtioRng};

    /// Where the test firmware puts a slot's BARs.
    fn msix_bar(slot: u8) -> u64 {
        MMIO_BASE + u64::from(slot) * 0x1_0000
    }

    fn modern_bar(slot: u8) -> u64 {
        MMIO64_BASE + u64::from(slot) * 0x1_0000
    }

    /// A driver's view of one virtio-pci function: the bus, and what it found
    /// walking the capability list.
    struct PciTransport {
        bus: Bus,
        slot: u8,
        common: u64,
        isr: u64,
        notify: u64,
        multiplier: u64,
        pci_cfg: u16,
        msix: u16,
    }

    impl PciTransport {
        fn config_read(&self, register: u16, size: u8) -> u32 {
            self.bus
                .read(GuestPhysAddr(ecam(self.slot, register)), size)
                .unwrap() as u32
        }

        fn config_write(&self, register: u16, size: u8, value: u32) {
            self.bus
                .write(
                    GuestPhysAddr(ecam(self.slot, register)),
                    size,
                    u64::from(value),
                )
                .unwrap();
        }

        fn read_common(&self, offset: u64, size: u8) -> u64 {
            self.bus
                .read(GuestPhysAddr(self.common + offset), size)
                .unwrap()
        }

        fn write_common(&self, offset: u64, size: u8, value: u64) {
            self.bus
                .write(GuestPhysAddr(self.common + offset), size, value)
                .unwrap();
        }

        fn read_isr(&self) -> u8 {
            self.bus.read(GuestPhysAddr(self.isr), 1).unwrap() as u8
        }

        /// Programs the function's BARs as firmware would (after sizing them),
        /// enables memory decoding and bus mastering, and walks the
        /// capabilities like Linux's virtio_pci_modern probe.
        fn discover(bus: Bus, slot: u8) -> PciTransport {
            let config = |register: u16, size: u8| -> u32 {
                bus.read(GuestPhysAddr(ecam(slot, register)), size).unwrap() as u32
            };
            let set = |register: u16, value: u32| {
                bus.write(GuestPhysAddr(ecam(slot, register)), 4, u64::from(value))
                    .unwrap();
            };
            assert_eq!(config(reg::VENDOR_ID, 2), 0x1af4);
            for (index, expected) in [(0, 0), (1, 0xffff_f000), (4, 0xffff_c00c), (5, u32::MAX)] {
                set(bar_offset(index), u32::MAX);
                assert_eq!(config(bar_offset(index), 4), expected, "BAR {index} size");
            }
            set(bar_offset(1), msix_bar(slot) as u32);
            set(bar_offset(4), modern_bar(slot) as u32);
            set(bar_offset(5), (modern_bar(slot) >> 32) as u32);
            bus.write(
                GuestPhysAddr(ecam(slot, reg::COMMAND)),
                2,
                u64::from(command::MEMORY_SPACE | command::BUS_MASTER),
            )
            .unwrap();
            assert_ne!(config(reg::STATUS, 2) & 0x10, 0, "capability list");
            let mut found = [None; 6];
            let mut msix = 0;
            let mut at = config(reg::CAPABILITIES_POINTER, 1) as u16;
            while at != 0 {
                match config(at, 1) as u8 {
                    cap_id::VENDOR_SPECIFIC => {
                        let kind = config(at + cap::CFG_TYPE, 1) as usize;
                        let bar = config(at + cap::BAR, 1);
                        let offset = u64::from(config(at + cap::OFFSET, 4));
                        let len = config(at + cap::LEN, 1);
                        found[kind] = Some((at, bar, offset, len));
                    }
                    cap_id::MSIX => msix = at,
                    other => panic!("unexpected capability {other:#x}"),
                }
                at = config(at + 1, 1) as u16;
            }
            let region = |kind: u8| {
                let (at, bar, offset, _) = found[usize::from(kind)].unwrap();
                assert_eq!(bar, 4, "in BAR 4");
                assert_eq!(config(at + cap::LENGTH, 4), 0x1000);
                (at, modern_bar(slot) + offset)
            };
            let (_, common) = region(cfg_type::COMMON);
            let (_, isr) = region(cfg_type::ISR);
            let (_, device) = region(cfg_type::DEVICE);
            assert_eq!(
                bus.read(GuestPhysAddr(device), 4),
                Ok(0),
                "no rng configuration"
            );
            let (notify_cap, notify) = region(cfg_type::NOTIFY);
            assert_eq!(
                [common, isr, device, notify].map(|a| a - modern_bar(slot)),
                [0, 0x1000, 0x2000, 0x3000],
                "QEMU's layout"
            );
            assert_eq!(found[usize::from(cfg_type::NOTIFY)].unwrap().3, 20);
            let multiplier = u64::from(config(notify_cap + cap::NOTIFY_OFF_MULTIPLIER, 4));
            let pci_cfg = found[usize::from(cfg_type::PCI)].unwrap();
            assert_eq!(pci_cfg.3, 20);
            assert_ne!(msix, 0, "an MSI-X capability");
            PciTransport {
                slot,
                common,
                isr,
                notify,
                multiplier,
                pci_cfg: pci_cfg.0,
                msix,
                bus,
            }
        }
    }

    impl TestTransport for PciTransport {
        fn status(&mut self) -> u32 {
            self.read_common(common::DEVICE_STATUS, 1) as u32
        }

        fn set_status(&mut self, status: u32) {
            self.write_common(common::DEVICE_STATUS, 1, u64::from(status));
        }

        fn device_features(&mut self) -> u64 {
            self.write_common(common::DEVICE_FEATURE_SELECT, 4, 0);
            let low = self.read_common(common::DEVICE_FEATURE, 4);
            self.write_common(common::DEVICE_FEATURE_SELECT, 4, 1);
            low | self.read_common(common::DEVICE_FEATURE, 4) << 32
        }

        fn set_driver_features(&mut self, features: u64) {
            self.write_common(common::DRIVER_FEATURE_SELECT, 4, 0);
            self.write_common(common::DRIVER_FEATURE, 4, features & 0xffff_ffff);
            self.write_common(common::DRIVER_FEATURE_SELECT, 4, 1);
            self.write_common(common::DRIVER_FEATURE, 4, features >> 32);
        }

        fn queue_max(&mut self, queue: usize) -> u16 {
            if queue as u64 >= self.read_common(common::NUM_QUEUES, 2) {
                return 0;
            }
            self.write_common(common::QUEUE_SELECT, 2, queue as u64);
            self.read_common(common::QUEUE_SIZE, 2) as u16
        }

        fn setup_queue(&mut self, size: u16, desc: u64, avail: u64, used: u64) -> bool {
            self.write_common(common::QUEUE_SIZE, 2, u64::from(size));
            // Two 32-bit halves, as Linux's vp_iowrite64_twopart.
            for (offset, value) in [
                (common::QUEUE_DESC, desc),
                (common::QUEUE_DRIVER, avail),
                (common::QUEUE_DEVICE, used),
            ] {
                self.write_common(offset, 4, value & 0xffff_ffff);
                self.write_common(offset + 4, 4, value >> 32);
            }
            self.write_common(common::QUEUE_ENABLE, 2, 1);
            self.read_common(common::QUEUE_ENABLE, 2) == 1
        }

        fn notify(&mut self, queue: usize) {
            self.write_common(common::QUEUE_SELECT, 2, queue as u64);
            let off = self.read_common(common::QUEUE_NOTIFY_OFF, 2);
            self.bus
                .write(
                    GuestPhysAddr(self.notify + off * self.multiplier),
                    2,
                    queue as u64,
                )
                .unwrap();
        }
    }

    /// A host with a seeded virtio-rng at slot 1 (INTA there is INTB), on a bus
    /// over fresh test RAM, found and driven like a guest would.
    fn rng_setup(
        msi: Option<Arc<dyn MsiTarget>>,
    ) -> (
        Driver<PciTransport>,
        Arc<GuestRam>,
        [TestIrq; 4],
        SharedPciHost,
    ) {
        let (mem, ram) = test_memory();
        let (irqs, wires) = lines();
        let mut host = PciHost::new(wires, msi);
        let rng = VirtioPci::new(Box::new(VirtioRng::seeded(1)), mem).unwrap();
        assert_eq!(host.add(Box::new(rng)).unwrap(), 1);
        let host = SharedPciHost::new(host);
        let bus = bus_with(&host, ram.clone());
        let transport = PciTransport::discover(bus, 1);
        (Driver::new(transport, &ram), ram, irqs, host)
    }

    #[test]
    fn ids_and_classes_as_qemu_shows_them() {
        let ids = |t| {
            let ids = virtio_pci_ids(t);
            (
                ids.device_id,
                ids.revision_id,
                ids.class_code,
                ids.subsystem_id,
            )
        };
        assert_eq!(ids(DEVICE_ID_NET), (0x1000, 0, 0x02_00_00, 1));
        assert_eq!(ids(DEVICE_ID_BLOCK), (0x1001, 0, 0x01_00_00, 2));
        assert_eq!(ids(DEVICE_ID_ENTROPY), (0x1005, 0, 0x00_ff_00, 4));
        assert_eq!(ids(DEVICE_ID_CONSOLE), (0x1003, 0, 0x07_80_00, 3));
        assert_eq!(ids(DEVICE_ID_GPU), (0x1050, 1, 0x03_80_00, 16));
        assert_eq!(ids(DEVICE_ID_INPUT), (0x1052, 1, 0x09_80_00, 18));
        assert_eq!(ids(26), (0x105a, 1, 0x00_ff_00, 26));
        assert_eq!(virtio_pci_ids(2).vendor_id, 0x1af4);
        assert_eq!(virtio_pci_ids(2).subsystem_vendor_id, 0x1af4);

        let (driver, _ram, _irqs, _host) = rng_setup(None);
        let t = &driver.dev;
        assert_eq!(t.config_read(reg::VENDOR_ID, 4), 0x1005_1af4);
        assert_eq!(t.config_read(reg::REVISION_ID, 4), 0x00ff_0000);
        assert_eq!(t.config_read(reg::SUBSYSTEM_VENDOR_ID, 4), 0x0004_1af4);
        assert_eq!(t.config_read(reg::INTERRUPT_PIN, 1), 1, "INTA");
        // The MSI-X capability: 2 vectors (config + one queue) in BAR 1.
        assert_eq!(t.config_read(t.msix + 2, 2), 1);
        assert_eq!(t.config_read(t.msix + 4, 4), 1);
        assert_eq!(t.config_read(t.msix + 8, 4), 0x801);
        assert_eq!(t.read_common(common::NUM_QUEUES, 2), 1);
        assert_eq!(t.read_common(common::CONFIG_MSIX_VECTOR, 2), 0xffff);
    }

    #[test]
    fn rng_request_with_intx() {
        let (mut driver, ram, irqs, _host) = rng_setup(None);
        driver.init(VIRTIO_F_VERSION_1);
        assert_eq!(driver.status(), 0xf);
        let head = driver.submit(0, &[(0x1_0000, 32, true)]);
        assert_eq!(driver.used(0, 0), Some((u32::from(head), 32)));
        let mut got = [0u8; 32];
        assert!(ram.read_bytes(0x1_0000, &mut got));
        assert!(got.iter().any(|&b| b != 0));
        // Slot 1, INTA: line INTB. The status register shows it too.
        assert_eq!(
            irqs.each_ref().map(TestIrq::level),
            [false, true, false, false]
        );
        assert_ne!(driver.dev.config_read(reg::STATUS, 2) & 0x8, 0);
        // Reading the ISR clears it and lowers the line.
        assert_eq!(driver.dev.read_isr(), INT_USED_BUFFER as u8);
        assert!(!irqs[1].level());
        assert_eq!(driver.dev.read_isr(), 0);
        assert_eq!(driver.dev.config_read(reg::STATUS, 2) & 0x8, 0);
        // INTX_DISABLE masks the pin; the ISR still collects.
        driver.dev.config_write(
            reg::COMMAND,
            2,
            u32::from(command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE),
        );
        driver.submit(0, &[(0x1_0100, 8, true)]);
        assert!(!irqs[1].level());
        driver.dev.config_write(
            reg::COMMAND,
            2,
            u32::from(command::MEMORY_SPACE | command::BUS_MASTER),
        );
        assert!(irqs[1].level());
        assert_eq!(driver.dev.read_isr(), 1);
        assert!(!irqs[1].level());
    }

    /// Programs MSI-X entry `vector` with `data` at a doorbell, unmasked.
    fn program_vector(t: &PciTransport, vector: u64, data: u32) {
        let entry = msix_bar(t.slot) + 16 * vector;
        t.bus.write(GuestPhysAddr(entry), 4, 0xfee0_0000).unwrap();
        t.bus.write(GuestPhysAddr(entry + 4), 4, 0).unwrap();
        t.bus
            .write(GuestPhysAddr(entry + 8), 4, u64::from(data))
            .unwrap();
        t.bus.write(GuestPhysAddr(entry + 12), 4, 0).unwrap();
    }

    #[test]
    fn rng_request_with_msix() {
        let target = Arc::new(RecordingTarget::default());
        let (mut driver, _ram, irqs, _host) = rng_setup(Some(target.clone()));
        driver.init_without_driver_ok(VIRTIO_F_VERSION_1);
        let t = &driver.dev;
        program_vector(t, 0, 0x30);
        program_vector(t, 1, 0x31);
        // Vectors read back; one past the table does not stick.
        t.write_common(common::CONFIG_MSIX_VECTOR, 2, 0);
        assert_eq!(t.read_common(common::CONFIG_MSIX_VECTOR, 2), 0);
        t.write_common(common::QUEUE_SELECT, 2, 0);
        t.write_common(common::QUEUE_MSIX_VECTOR, 2, 2);
        assert_eq!(t.read_common(common::QUEUE_MSIX_VECTOR, 2), 0xffff);
        t.write_common(common::QUEUE_MSIX_VECTOR, 2, 1);
        assert_eq!(t.read_common(common::QUEUE_MSIX_VECTOR, 2), 1);
        // Enable MSI-X, and INTx with it as Linux does.
        t.config_write(t.msix + 2, 2, 0x8000);
        driver.dev.set_status(0xf);
        let head = driver.submit(0, &[(0x1_0000, 16, true)]);
        assert_eq!(driver.used(0, 0), Some((u32::from(head), 16)));
        let message = MsiMessage {
            address: 0xfee0_0000,
            data: 0x31,
        };
        assert_eq!(target.take(), vec![message]);
        assert!(irqs.iter().all(|l| !l.level()), "no INTx with MSI-X");
        assert_eq!(driver.dev.read_isr(), 0);
        // Masked by the function mask: pending, then delivered on unmask.
        let t = &driver.dev;
        t.config_write(t.msix + 2, 2, 0xc000);
        driver.submit(0, &[(0x1_0100, 16, true)]);
        assert!(target.take().is_empty());
        let t = &driver.dev;
        assert_eq!(
            t.bus.read(GuestPhysAddr(msix_bar(1) + 0x800), 8),
            Ok(0b10),
            "vector 1 pending"
        );
        t.config_write(t.msix + 2, 2, 0x8000);
        assert_eq!(target.take(), vec![message]);
        assert_eq!(t.bus.read(GuestPhysAddr(msix_bar(1) + 0x800), 8), Ok(0));
        // Masked entry, same story.
        t.bus
            .write(GuestPhysAddr(msix_bar(1) + 16 + 12), 4, 1)
            .unwrap();
        driver.submit(0, &[(0x1_0200, 16, true)]);
        assert!(target.take().is_empty());
        driver
            .dev
            .bus
            .write(GuestPhysAddr(msix_bar(1) + 16 + 12), 4, 0)
            .unwrap();
        assert_eq!(target.take(), vec![message]);
        // Without bus mastering the device does nothing at all.
        let t = &driver.dev;
        t.config_write(reg::COMMAND, 2, u32::from(command::MEMORY_SPACE));
        let used = driver.used_idx(0);
        driver.submit(0, &[(0x1_0300, 16, true)]);
        assert_eq!(driver.used_idx(0), used);
        assert!(target.take().is_empty());
        // A NEEDS_RESET goes to the config vector.
        let t = &driver.dev;
        t.config_write(
            reg::COMMAND,
            2,
            u32::from(command::MEMORY_SPACE | command::BUS_MASTER),
        );
        driver.submit(0, &[(0x1_0400, 16, false)]);
        assert_ne!(driver.status() & 0x40, 0);
        let config_message = MsiMessage {
            address: 0xfee0_0000,
            data: 0x30,
        };
        assert_eq!(target.take(), vec![message, config_message]);
    }

    #[test]
    fn device_status_zero_resets_the_device() {
        let target = Arc::new(RecordingTarget::default());
        let (mut driver, _ram, irqs, _host) = rng_setup(Some(target.clone()));
        driver.init(VIRTIO_F_VERSION_1);
        driver.dev.write_common(common::CONFIG_MSIX_VECTOR, 2, 0);
        driver.submit(0, &[(0x1_0000, 16, true)]);
        assert!(irqs[1].level());
        driver.dev.set_status(0);
        let t = &driver.dev;
        assert_eq!(t.read_common(common::DEVICE_STATUS, 1), 0);
        assert_eq!(t.read_common(common::QUEUE_ENABLE, 2), 0);
        assert_eq!(
            t.read_common(common::QUEUE_SIZE, 2),
            64,
            "back to the maximum"
        );
        assert_eq!(t.read_common(common::QUEUE_DESC, 8), 0);
        assert_eq!(t.read_common(common::CONFIG_MSIX_VECTOR, 2), 0xffff);
        assert_eq!(t.read_common(common::DRIVER_FEATURE, 4), 0);
        assert!(!irqs[1].level(), "the ISR is clear");
        assert_eq!(t.read_isr(), 0);
        // The PCI side is untouched: BARs still decode.
        assert_ne!(t.config_read(reg::COMMAND, 2) & 2, 0);
        // And a driver can start over.
        driver.init(VIRTIO_F_VERSION_1);
        driver.submit(0, &[(0x1_0000, 8, true)]);
        assert_eq!(driver.used(0, 0), Some((0, 8)));
    }

    #[test]
    fn pci_cfg_capability_reaches_bar_4() {
        let (mut driver, _ram, _irqs, _host) = rng_setup(None);
        driver.init(VIRTIO_F_VERSION_1);
        let t = &driver.dev;
        let window = |bar: u32, offset: u32, length: u32| {
            t.config_write(t.pci_cfg + cap::BAR, 1, bar);
            t.config_write(t.pci_cfg + cap::OFFSET, 4, offset);
            t.config_write(t.pci_cfg + cap::LENGTH, 4, length);
        };
        let data = t.pci_cfg + cap::PCI_CFG_DATA;
        window(4, common::DEVICE_STATUS as u32, 1);
        assert_eq!(t.config_read(data, 1), 0xf);
        window(4, common::DEVICE_FEATURE_SELECT as u32, 4);
        t.config_write(data, 4, 1);
        assert_eq!(t.read_common(common::DEVICE_FEATURE_SELECT, 4), 1);
        window(4, common::DEVICE_FEATURE as u32, 4);
        assert_eq!(t.config_read(data, 4), 1, "VERSION_1, bit 32");
        // Bad lengths and BARs do nothing.
        window(4, common::DEVICE_STATUS as u32, 3);
        t.config_write(data, 4, 0);
        assert_eq!(t.read_common(common::DEVICE_STATUS, 1), 0xf);
        window(2, 0, 4);
        assert_eq!(t.config_read(data, 4), u32::MAX);
    }

    #[test]
    fn host_restored_mid_transfer_finishes_the_work() {
        let (mut a, ram, irqs_a, _host_a) = rng_setup(None);
        a.init(VIRTIO_F_VERSION_1);
        a.submit(0, &[(0x1_0000, 16, true)]);
        let waiting = a.offer(0, &[(0x1_1000, 24, true)]);
        assert!(irqs_a[1].level());
        let saved = a.dev.bus.save_devices();

        // A fresh machine over a copy of memory, its devices restored.
        let (mem_b, ram_b) = copy_memory(&ram);
        let (irqs_b, wires) = lines();
        let mut host = PciHost::new(wires, None);
        let rng = VirtioPci::new(Box::new(VirtioRng::seeded(2)), mem_b).unwrap();
        host.add(Box::new(rng)).unwrap();
        let host_b = SharedPciHost::new(host);
        let bus_b = bus_with(&host_b, ram_b.clone());
        bus_b.restore_devices(&saved).unwrap();
        assert!(irqs_b[1].level(), "the pending INTx is raised again");
        assert_eq!(bus_b.save_devices(), saved);
        // Its BARs decode where the guest put them: no re-discovery.
        let transport_b = PciTransport {
            bus: bus_b,
            ..PciTransport::discover_addresses(&a.dev)
        };
        let mut b = a.fork(transport_b, &ram_b);
        for driver in [&mut a, &mut b] {
            assert_eq!(driver.dev.read_isr(), 1);
            driver.dev.notify(0);
            assert_eq!(driver.used(0, 1), Some((u32::from(waiting), 24)));
            driver.submit(0, &[(0x1_2000, 8, true)]);
            assert_eq!(driver.used_idx(0), 3);
        }
        assert_eq!(irqs_a[1].level(), irqs_b[1].level());
        let (host_state_a, host_state_b) = (a.dev.bus.save_devices(), b.dev.bus.save_devices());
        assert_eq!(host_state_a, host_state_b);
    }

    impl PciTransport {
        /// The addresses `other` found, for a transport over another bus.
        fn discover_addresses(other: &PciTransport) -> PciTransport {
            let bus = Bus::new(
                GuestPhysAddr(0x8000_0000),
                Arc::new(GuestRam::new(0x1000).unwrap()),
                Arc::new(emu_core::RunControl::new()),
            )
            .unwrap();
            PciTransport {
                bus,
                slot: other.slot,
                common: other.common,
                isr: other.isr,
                notify: other.notify,
                multiplier: other.multiplier,
                pci_cfg: other.pci_cfg,
                msix: other.msix,
            }
        }
    }

    #[test]
    fn host_reset_returns_to_power_on() {
        let target = Arc::new(RecordingTarget::default());
        let (mut driver, _ram, irqs, host) = rng_setup(Some(target));
        driver.init(VIRTIO_F_VERSION_1);
        driver.submit(0, &[(0x1_0000, 16, true)]);
        let t = &driver.dev;
        t.config_write(t.msix + 2, 2, 0x4000);
        assert!(irqs[1].level());
        let power_on = {
            let (mem, _ram) = test_memory();
            let fresh = VirtioPci::new(Box::new(VirtioRng::seeded(1)), mem).unwrap();
            fresh.save_state()
        };
        t.bus.reset_devices();
        assert!(!irqs[1].level());
        assert_eq!(t.config_read(reg::COMMAND, 2), 0);
        assert_eq!(t.config_read(bar_offset(1), 4), 0);
        assert_eq!(t.config_read(bar_offset(4), 4), 0xc);
        assert_eq!(t.config_read(bar_offset(5), 4), 0);
        assert_eq!(t.config_read(t.msix + 2, 2), 1, "MSI-X disabled, unmasked");
        assert_eq!(
            t.bus.read(GuestPhysAddr(t.common), 4),
            Ok(0xffff_ffff),
            "nothing decodes"
        );
        assert_eq!(host.lock().function(1).unwrap().save_state(), power_on);
    }

    #[test]
    fn without_msix_there_is_no_capability_and_intx_signals() {
        let (mem, _ram) = test_memory();
        let mut dev = VirtioPci::without_msix(Box::new(VirtioRng::seeded(1)), mem.clone()).unwrap();
        let mut at = dev.config_read(reg::CAPABILITIES_POINTER, 1) as u16;
        let mut ids = Vec::new();
        while at != 0 {
            ids.push(dev.config_read(at, 1) as u8);
            at = dev.config_read(at + 1, 1) as u16;
        }
        assert!(!ids.is_empty() && !ids.contains(&cap_id::MSIX), "{ids:x?}");
        // BAR 1 is not implemented: sizing it reads back zero.
        dev.config_write(bar_offset(MSIX_BAR), 4, 0xffff_ffff);
        assert_eq!(dev.config_read(bar_offset(MSIX_BAR), 4), 0);
        assert_eq!(dev.bar_read(MSIX_BAR, 0, 4), 0xffff_ffff);
        // Vectors cannot be chosen: the common configuration reads NO_VECTOR.
        assert_eq!(dev.valid_vector(0), NO_VECTOR);
        // A state saved without MSI-X goes back into such a function only.
        let saved = dev.save_state();
        dev.restore_state(&saved).unwrap();
        let mut with = VirtioPci::new(Box::new(VirtioRng::seeded(1)), mem).unwrap();
        assert!(with.restore_state(&saved).is_err());
    }

    #[test]
    fn foreign_and_damaged_states_are_refused() {
        let (mem, _ram) = test_memory();
        let mut dev = VirtioPci::new(Box::new(VirtioRng::seeded(1)), mem.clone()).unwrap();
        assert_refuses_foreign_states(&mut dev);
        let before = dev.save_state();
        assert_eq!(before.kind, "virtio-pci/virtio-rng");
        let tampered = |change: &dyn Fn(&mut SavedVirtioPci)| {
            let mut saved: SavedVirtioPci = before.decode(&before.kind, STATE_VERSION).unwrap();
            change(&mut saved);
            DeviceState::encode(&before.kind, STATE_VERSION, &saved)
        };
        let bad = [
            tampered(&|s| s.config.bytes[0] = 0),
            tampered(&|s| s.config.bytes.truncate(64)),
            tampered(&|s| {
                s.msix.as_mut().unwrap().entries.pop();
            }),
            tampered(&|s| s.msix = None),
            tampered(&|s| s.vectors.queues.push(0)),
            tampered(&|s| {
                let queue = &mut s.registers.queues[0];
                (queue.ready, queue.size) = (true, 3);
                (queue.desc, queue.driver, queue.device) = (0x8000_1000, 0x8000_2000, 0x8000_3000);
            }),
            tampered(&|s| {
                s.registers.queues[0].ready = true;
                s.registers.queues[0].desc = 0x10_0000_0000;
            }),
        ];
        for state in bad {
            assert!(matches!(
                dev.restore_state(&state),
                Err(StateError::Invalid { .. })
            ));
            assert_eq!(dev.save_state(), before);
        }
        // Another device model behind the same transport.
        let mmio = crate::virtio::VirtioMmio::new(
            Box::new(VirtioRng::seeded(1)),
            mem,
            Box::new(TestIrq::default()),
        );
        assert!(matches!(
            dev.restore_state(&Device::save_state(&mmio)),
            Err(StateError::Mismatch { .. })
        ));
    }

    /// xorshift64*, for the access fuzzer.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// Random configuration, BAR and port accesses from a guest gone mad, with
    /// garbage in its rings, occasional resets and save/restore round trips:
    /// nothing may panic. Set TURING_PCI_FUZZ_STEPS for a longer run.
    #[test]
    fn random_accesses_never_panic() {
        let steps: u64 = std::env::var("TURING_PCI_FUZZ_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000);
        for seed in 1..=4u64 {
            eprintln!("fuzz seed {seed} ({steps} steps)");
            let (mem, ram) = test_memory();
            let (_irqs, wires) = lines();
            let target: Arc<dyn MsiTarget> = Arc::new(RecordingTarget::default());
            let mut host = PciHost::new(wires, Some(target));
            host.add(Box::new(Toy::new(2))).unwrap();
            let rng = VirtioPci::new(Box::new(VirtioRng::seeded(seed)), mem).unwrap();
            host.add(Box::new(rng)).unwrap();
            let host = SharedPciHost::new(host);
            let bus = bus_with(&host, ram.clone());
            let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let values = [
                0,
                1,
                0xf,
                0xff,
                0xffff,
                0xffff_ffff,
                u64::MAX,
                0x8000,
                0xc000,
            ];
            let sizes = [1, 2, 4, 8, 3, 0];
            for _ in 0..steps {
                let size = r.pick(&sizes);
                let value = if r.below(2) == 0 {
                    r.pick(&values)
                } else {
                    r.next()
                };
                let op = r.below(100);
                let slot = r.below(4) as u8;
                match op {
                    0..=29 => {
                        let register = if r.below(4) == 0 {
                            r.below(0x1000) as u16
                        } else {
                            r.below(0x100) as u16
                        };
                        let addr = ecam(slot, register);
                        if op < 12 {
                            let _ = bus.read(GuestPhysAddr(addr), size);
                        } else {
                            let _ = bus.write(GuestPhysAddr(addr), size, value);
                        }
                    }
                    30..=34 => {
                        // Firmware-like: sane BARs and decoding on.
                        for (index, addr) in [
                            (0, MMIO_BASE as u32),
                            (1, msix_bar(slot) as u32),
                            (4, 0x1000),
                        ] {
                            let _ = bus.write(
                                GuestPhysAddr(ecam(slot, bar_offset(index))),
                                4,
                                u64::from(addr),
                            );
                        }
                        let _ = bus.write(GuestPhysAddr(ecam(slot, bar_offset(2))), 4, 0);
                        let _ = bus.write(GuestPhysAddr(ecam(slot, bar_offset(3))), 4, 4);
                        let _ = bus.write(
                            GuestPhysAddr(ecam(slot, bar_offset(4))),
                            4,
                            modern_bar(slot) & 0xffff_ffff,
                        );
                        let _ = bus.write(
                            GuestPhysAddr(ecam(slot, bar_offset(5))),
                            4,
                            modern_bar(slot) >> 32,
                        );
                        let _ = bus.write(GuestPhysAddr(ecam(slot, reg::COMMAND)), 2, 7);
                    }
                    35..=79 => {
                        let base = r.pick(&[
                            MMIO_BASE,
                            msix_bar(slot),
                            modern_bar(slot),
                            modern_bar(slot) + 0x3000,
                            MMIO64_BASE,
                            PIO_BASE + 0x1000,
                            PIO_BASE,
                        ]);
                        let addr = base + r.below(0x4010);
                        if op < 55 {
                            let _ = bus.read(GuestPhysAddr(addr), size);
                        } else {
                            let _ = bus.write(GuestPhysAddr(addr), size, value);
                        }
                    }
                    80..=94 => {
                        // Garbage where the rings and buffers may be.
                        let at = r.below(0x2_0000) & !7;
                        ram.write_u64(at, value);
                    }
                    95..=97 => {
                        let saved = bus.save_devices();
                        bus.restore_devices(&saved).unwrap();
                    }
                    _ => bus.reset_devices(),
                }
                let _ = bus.tick_devices(0);
            }
        }
    }

    #[test]
    fn intx_line_is_released_when_the_function_is_reset_alone() {
        // A function reset through the host keeps the shared line consistent.
        let (mut driver, _ram, irqs, host) = rng_setup(None);
        driver.init(VIRTIO_F_VERSION_1);
        driver.submit(0, &[(0x1_0000, 16, true)]);
        assert!(irqs[1].level());
        if let Some(f) = host.lock().function_mut(1) {
            f.reset();
        }
        assert!(!irqs[1].level());
        assert!(!host.lock().intx_level(1));
    }
}
