//! Parallel ATA (IDE): a channel with a master and a slave device, each an ATA
//! hard disk or an ATAPI CD-ROM, as QEMU's `ide-hd` and `ide-cd` behave.
//!
//! The parts:
//! - [`IdeChannel`]: the command block registers (eight ports: data, error /
//!   features, sector count, LBA low/mid/high, device, status / command), the
//!   control block register (alternate status / device control), the INTRQ
//!   line and the channel's bus-master DMA registers ([`bmdma`]). It knows
//!   nothing of where it is mapped; [`crate::pci::PiixIde`] maps two of them.
//! - `ata`: the task file and the ATA command state machine (PIO and DMA data
//!   transfers, IDENTIFY, the signature after a reset).
//! - `atapi`: the PACKET command and the SCSI/MMC commands a CD-ROM answers.
//!
//! Transfers complete synchronously: a PIO block is read from the image when
//! the device raises DRQ, and a DMA transfer runs whole when the guest starts
//! the bus master, in bounded chunks. So a saved state never has I/O in flight,
//! only a half-read or half-written PIO block, which it keeps.
//!
//! The register and bit names follow the ATA/ATAPI-6 specification; where it
//! leaves room (what an absent device reads as, when a medium change is
//! reported) the behaviour is QEMU's, which SeaBIOS and Linux are tested on.

mod ata;
mod atapi;
pub mod bmdma;

use serde::{Deserialize, Serialize};

use emu_core::IrqLine;

use crate::block::BlockBackend;
use crate::virtio::GuestMemoryHandle;
use bmdma::{BM_CMD_START, BM_STATUS_ACTIVE, BM_STATUS_INTERRUPT, BmDmaRegs, PrdCursor};

pub use ata::{ATA_SECTOR_SIZE, CD_SECTOR_SIZE};

/// Status register: busy.
pub const STATUS_BSY: u8 = 0x80;
/// Status register: device ready.
pub const STATUS_DRDY: u8 = 0x40;
/// Status register: device fault.
pub const STATUS_DF: u8 = 0x20;
/// Status register: seek complete (obsolete, still set as drives did).
pub const STATUS_DSC: u8 = 0x10;
/// Status register: data request.
pub const STATUS_DRQ: u8 = 0x08;
/// Status register: error.
pub const STATUS_ERR: u8 = 0x01;
/// Error register: command aborted.
pub const ERROR_ABRT: u8 = 0x04;
/// Error register: address not found.
pub const ERROR_IDNF: u8 = 0x10;
/// Device control: interrupts disabled (nIEN).
pub const CONTROL_NIEN: u8 = 0x02;
/// Device control: software reset.
pub const CONTROL_SRST: u8 = 0x04;
/// Device control: read the previous ("high order byte") register contents.
pub const CONTROL_HOB: u8 = 0x80;

/// Command block register offsets.
pub mod reg {
    /// Data (16 or 32 bits).
    pub const DATA: u64 = 0;
    /// Error (read) / features (write).
    pub const ERROR_FEATURES: u64 = 1;
    /// Sector count; ATAPI interrupt reason.
    pub const SECTOR_COUNT: u64 = 2;
    /// LBA low / sector number.
    pub const LBA_LOW: u64 = 3;
    /// LBA mid / cylinder low; ATAPI byte count low.
    pub const LBA_MID: u64 = 4;
    /// LBA high / cylinder high; ATAPI byte count high.
    pub const LBA_HIGH: u64 = 5;
    /// Device / head: DEV (bit 4), LBA (bit 6), LBA 27:24 or head.
    pub const DEVICE: u64 = 6;
    /// Status (read) / command (write).
    pub const STATUS_COMMAND: u64 = 7;
}

/// A device on an IDE channel, with its host storage.
pub enum IdeDrive {
    /// An ATA hard disk over a raw image (512-byte sectors).
    Disk {
        /// The image.
        backend: Box<dyn BlockBackend>,
        /// Whether writes fail (the image was opened read-only).
        read_only: bool,
    },
    /// An ATAPI CD-ROM drive, with a disc image (2048-byte sectors) or an
    /// empty tray.
    Cdrom {
        /// The disc, read-only.
        medium: Option<Box<dyn BlockBackend>>,
    },
}

impl std::fmt::Debug for IdeDrive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdeDrive::Disk { backend, read_only } => f
                .debug_struct("Disk")
                .field("bytes", &backend.len())
                .field("read_only", read_only)
                .finish(),
            IdeDrive::Cdrom { medium } => f
                .debug_struct("Cdrom")
                .field("bytes", &medium.as_ref().map(|m| m.len()))
                .finish(),
        }
    }
}

impl IdeDrive {
    /// A hard disk over `backend`.
    pub fn disk(backend: Box<dyn BlockBackend>, read_only: bool) -> IdeDrive {
        IdeDrive::Disk { backend, read_only }
    }

    /// A CD-ROM drive holding `medium` (or an empty tray).
    pub fn cdrom(medium: Option<Box<dyn BlockBackend>>) -> IdeDrive {
        IdeDrive::Cdrom { medium }
    }
}

/// The guest-visible state of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdeChannelState {
    units: [ata::UnitState; 2],
    /// What each position holds (`"disk:<sectors>"`, `"cdrom"`, `"none"`), checked
    /// on restore: a state saved with other drives does not fit.
    shape: [String; 2],
    selected: u8,
    control: u8,
    pending: bool,
    bm: BmDmaRegs,
}

/// One IDE channel: two device positions, their shared registers, INTRQ and
/// the bus-master DMA engine.
pub struct IdeChannel {
    units: [ata::Unit; 2],
    /// The device the DEV bit selects (0 = master).
    selected: usize,
    /// Device control register.
    control: u8,
    /// The selected device asked for an interrupt; INTRQ shows it unless nIEN.
    pending: bool,
    irq: Box<dyn IrqLine>,
    level: bool,
    bm: BmDmaRegs,
}

impl std::fmt::Debug for IdeChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdeChannel")
            .field("units", &self.units)
            .field("selected", &self.selected)
            .field("control", &self.control)
            .field("pending", &self.pending)
            .field("bm", &self.bm)
            .finish()
    }
}

impl IdeChannel {
    /// A channel with `drives` (master, slave) raising `irq`. The drives'
    /// serial numbers are `QM000nn` from `first_serial` on, counting only
    /// present drives, as QEMU numbers them in creation order.
    pub fn new(
        drives: [Option<IdeDrive>; 2],
        irq: Box<dyn IrqLine>,
        first_serial: u32,
    ) -> IdeChannel {
        let mut serial = first_serial;
        let units = drives.map(|drive| {
            let present = drive.is_some();
            let unit = ata::Unit::new(drive, serial);
            if present {
                serial += 1;
            }
            unit
        });
        let mut channel = IdeChannel {
            units,
            selected: 0,
            control: 0,
            pending: false,
            irq,
            level: false,
            bm: BmDmaRegs::default(),
        };
        channel.reset();
        channel
    }

    /// How many drives the channel has.
    pub fn drive_count(&self) -> u32 {
        self.units.iter().filter(|u| u.present()).count() as u32
    }

    /// Back to power-on: both devices reset with their signatures, INTRQ low,
    /// the bus master stopped.
    pub fn reset(&mut self) {
        for unit in &mut self.units {
            unit.power_on();
        }
        self.selected = 0;
        self.control = 0;
        self.pending = false;
        self.bm = BmDmaRegs::default();
        self.drive_irq(true);
    }

    fn drive_irq(&mut self, force: bool) {
        let level = self.pending && self.control & CONTROL_NIEN == 0;
        if force || level != self.level {
            self.level = level;
            self.irq.set_level(level);
        }
    }

    fn raise(&mut self) {
        self.pending = true;
        self.bm.status |= BM_STATUS_INTERRUPT;
        self.drive_irq(false);
    }

    fn lower(&mut self) {
        self.pending = false;
        self.drive_irq(false);
    }

    /// Whether INTRQ is asserted now.
    pub fn irq_level(&self) -> bool {
        self.level
    }

    /// No device at all: QEMU floats every register to zero then.
    fn empty(&self) -> bool {
        !self.units[0].present() && !self.units[1].present()
    }

    /// A read of `size` bytes (1, 2 or 4) at `offset` (0..8) of the command
    /// block. Only the data register is wider than a byte; wider reads of the
    /// others read each byte's register in turn.
    pub fn read(&mut self, offset: u64, size: u8) -> u32 {
        if offset == reg::DATA && size > 1 {
            let unit = &mut self.units[self.selected];
            let (value, irq) = unit.read_data(usize::from(size));
            if irq {
                self.raise();
            }
            return value;
        }
        let mut value = 0u32;
        for i in 0..u64::from(size.clamp(1, 4)) {
            let byte = match offset.checked_add(i) {
                Some(at) if at < 8 => self.read_byte(at),
                _ => 0xff,
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    fn read_byte(&mut self, offset: u64) -> u8 {
        if self.empty() {
            return 0;
        }
        let hob = self.control & CONTROL_HOB != 0;
        let unit = &self.units[self.selected];
        match offset {
            // Byte reads of the data register do not move data, as in QEMU.
            reg::DATA => 0xff,
            reg::STATUS_COMMAND => {
                let status = unit.status();
                // Reading the status acknowledges the interrupt.
                self.lower();
                status
            }
            _ => unit.read_register(offset, hob),
        }
    }

    /// A write of `size` bytes at `offset` (0..8) of the command block. A DMA
    /// command written here waits for the bus master to start; a machine
    /// with a bus master uses [`IdeChannel::write_with_dma`], which also runs
    /// it when the engine was started first.
    pub fn write(&mut self, offset: u64, size: u8, value: u32) {
        if offset == reg::DATA && size > 1 {
            let unit = &mut self.units[self.selected];
            if unit.write_data(usize::from(size), value) {
                self.raise();
            }
            return;
        }
        for i in 0..u64::from(size.clamp(1, 4)) {
            if let Some(at) = offset.checked_add(i).filter(|&at| at < 8) {
                self.write_byte(at, (value >> (8 * i)) as u8);
            }
        }
    }

    fn write_byte(&mut self, offset: u64, value: u8) {
        // Any command block write clears HOB.
        self.control &= !CONTROL_HOB;
        match offset {
            reg::DATA => {}
            reg::STATUS_COMMAND => {
                // Writing a command acknowledges any earlier interrupt.
                self.lower();
                let irq = self.units[self.selected].command(value);
                if irq {
                    self.raise();
                }
            }
            reg::DEVICE => {
                self.selected = usize::from(value >> 4 & 1);
                for unit in &mut self.units {
                    unit.write_register(offset, value);
                }
            }
            _ => {
                for unit in &mut self.units {
                    unit.write_register(offset, value);
                }
            }
        }
    }

    /// The alternate status register: status without acknowledging INTRQ.
    pub fn read_control(&self) -> u8 {
        if self.empty() {
            return 0;
        }
        self.units[self.selected].status()
    }

    /// A write of the device control register: nIEN masks INTRQ; SRST held
    /// and released resets both devices, which then show their signatures.
    pub fn write_control(&mut self, value: u8) {
        let was_reset = self.control & CONTROL_SRST != 0;
        let reset = value & CONTROL_SRST != 0;
        self.control = value;
        if reset && !was_reset {
            for unit in &mut self.units {
                unit.begin_soft_reset();
            }
            self.pending = false;
        } else if was_reset && !reset {
            for unit in &mut self.units {
                unit.end_soft_reset();
            }
            self.selected = 0;
        }
        self.drive_irq(false);
    }

    /// A read of the channel's bus-master registers (`offset` 0..8).
    pub fn bm_read(&self, offset: u64, size: u8) -> u32 {
        self.bm.read(offset, size)
    }

    /// A write of the channel's bus-master registers. Setting the start bit
    /// runs the DMA transfer the selected device waits for, through `memory`;
    /// `bus_master` is the PCI command register's bus-master enable, without
    /// which every access fails.
    pub fn bm_write(
        &mut self,
        offset: u64,
        size: u8,
        value: u32,
        memory: &GuestMemoryHandle,
        bus_master: bool,
    ) {
        match (offset, size) {
            (bmdma::BM_REG_COMMAND, 1) => {
                let value = value as u8;
                let start = value & BM_CMD_START != 0;
                self.bm.command = value & (BM_CMD_START | bmdma::BM_CMD_WRITE_MEMORY);
                if !start {
                    // Stopping the engine ends a transfer; ours are never in flight.
                    self.bm.status &= !BM_STATUS_ACTIVE;
                } else if self.bm.status & BM_STATUS_ACTIVE == 0 {
                    self.bm.status |= BM_STATUS_ACTIVE;
                    self.try_dma(memory, bus_master);
                }
            }
            (bmdma::BM_REG_STATUS, 1) => self.bm.write_status(value as u8),
            (4..=7, _) => self.bm.write_prd(offset, size, value),
            _ => {}
        }
    }

    /// Runs the selected device's DMA transfer when the bus master is started
    /// and the device waits for it.
    fn try_dma(&mut self, memory: &GuestMemoryHandle, bus_master: bool) {
        if self.bm.status & BM_STATUS_ACTIVE == 0 {
            return;
        }
        let unit = &mut self.units[self.selected];
        if !unit.dma_waiting() {
            return;
        }
        let mut cursor = PrdCursor::new(memory, self.bm.prd_table);
        let outcome = unit.run_dma(&mut cursor, bus_master);
        // QEMU's engine goes inactive when the device is done, whether the
        // table had room left or not.
        self.bm.status &= !BM_STATUS_ACTIVE;
        if outcome.memory_error {
            self.bm.status |= bmdma::BM_STATUS_ERROR;
        }
        if outcome.irq {
            self.raise();
        }
    }

    /// A command block write that may start DMA (the engine may already be
    /// running when the guest issues the command).
    pub fn write_with_dma(
        &mut self,
        offset: u64,
        size: u8,
        value: u32,
        memory: &GuestMemoryHandle,
        bus_master: bool,
    ) {
        self.write(offset, size, value);
        if offset <= reg::STATUS_COMMAND && offset + u64::from(size) > reg::STATUS_COMMAND {
            self.try_dma(memory, bus_master);
        }
    }

    /// Inserts `medium` into (or with `None`, empties) the CD-ROM at `unit`
    /// (0 = master); the drive reports the change as QEMU's does: NOT READY,
    /// then UNIT ATTENTION, and a new-media event. False when that position
    /// holds no CD-ROM drive.
    pub fn change_medium(&mut self, unit: usize, medium: Option<Box<dyn BlockBackend>>) -> bool {
        match self.units.get_mut(unit) {
            Some(u) => u.change_medium(medium),
            None => false,
        }
    }

    /// The guest-visible state.
    pub fn state(&self) -> IdeChannelState {
        IdeChannelState {
            units: [self.units[0].state.clone(), self.units[1].state.clone()],
            shape: [self.units[0].shape(), self.units[1].shape()],
            selected: self.selected as u8,
            control: self.control,
            pending: self.pending,
            bm: self.bm.clone(),
        }
    }

    /// Whether `state` fits this channel: saved with the same drives, and
    /// consistent.
    pub fn check(&self, state: &IdeChannelState) -> Result<(), String> {
        for (i, unit) in self.units.iter().enumerate() {
            if state.shape[i] != unit.shape() {
                return Err(format!(
                    "device {i} saved as {}, this one is {}",
                    state.shape[i],
                    unit.shape()
                ));
            }
            unit.check_state(&state.units[i])?;
        }
        Ok(())
    }

    /// Takes `state`, saved from a channel with the same drives; on an error
    /// nothing changes. INTRQ is driven to the restored level.
    pub fn restore(&mut self, state: &IdeChannelState) -> Result<(), String> {
        self.check(state)?;
        self.apply(state);
        Ok(())
    }

    /// Takes a `state` that [`IdeChannel::check`] accepted.
    pub fn apply(&mut self, state: &IdeChannelState) {
        for (unit, saved) in self.units.iter_mut().zip(&state.units) {
            unit.state = saved.clone();
        }
        self.selected = usize::from(state.selected & 1);
        self.control = state.control;
        self.pending = state.pending;
        self.bm = state.bm.clone();
        self.drive_irq(true);
    }
}
