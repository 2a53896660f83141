//! One device position on a channel: its task file registers and the ATA
//! command state machine (ATA/ATAPI-6), with PIO blocks and DMA transfers
//! served from the image synchronously.

use serde::{Deserialize, Serialize};

use super::bmdma::{DmaError, PrdCursor};
use super::{
    ERROR_ABRT, IdeDrive, STATUS_BSY, STATUS_DRDY, STATUS_DRQ, STATUS_DSC, STATUS_ERR, reg,
};
use crate::block::BlockBackend;

/// Bytes per ATA sector.
pub const ATA_SECTOR_SIZE: u64 = 512;
/// Bytes per CD-ROM sector.
pub const CD_SECTOR_SIZE: u64 = 2048;
/// Most sectors per READ/WRITE MULTIPLE block, as QEMU (IDENTIFY word 47).
pub(super) const MAX_MULT_SECTORS: u8 = 16;
/// Sectors moved per chunk of a DMA transfer: bounds the host buffer.
const DMA_CHUNK_SECTORS: u64 = 128;
/// The firmware revision in IDENTIFY data, as QEMU reports its hardware version.
const FIRMWARE: &str = "2.5+";

/// ATA commands.
mod cmd {
    pub const DEVICE_RESET: u8 = 0x08;
    pub const RECALIBRATE: u8 = 0x10;
    pub const READ_SECTORS: u8 = 0x20;
    pub const READ_SECTORS_NORETRY: u8 = 0x21;
    pub const READ_SECTORS_EXT: u8 = 0x24;
    pub const READ_DMA_EXT: u8 = 0x25;
    pub const READ_MULTIPLE_EXT: u8 = 0x29;
    pub const WRITE_SECTORS: u8 = 0x30;
    pub const WRITE_SECTORS_NORETRY: u8 = 0x31;
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    pub const WRITE_DMA_EXT: u8 = 0x35;
    pub const WRITE_MULTIPLE_EXT: u8 = 0x39;
    pub const READ_VERIFY: u8 = 0x40;
    pub const READ_VERIFY_NORETRY: u8 = 0x41;
    pub const READ_VERIFY_EXT: u8 = 0x42;
    pub const SEEK: u8 = 0x70;
    pub const EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;
    pub const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
    pub const PACKET: u8 = 0xa0;
    pub const IDENTIFY_PACKET_DEVICE: u8 = 0xa1;
    pub const READ_MULTIPLE: u8 = 0xc4;
    pub const WRITE_MULTIPLE: u8 = 0xc5;
    pub const SET_MULTIPLE_MODE: u8 = 0xc6;
    pub const READ_DMA: u8 = 0xc8;
    pub const READ_DMA_NORETRY: u8 = 0xc9;
    pub const WRITE_DMA: u8 = 0xca;
    pub const WRITE_DMA_NORETRY: u8 = 0xcb;
    pub const STANDBY_IMMEDIATE: u8 = 0xe0;
    pub const IDLE_IMMEDIATE: u8 = 0xe1;
    pub const STANDBY: u8 = 0xe2;
    pub const IDLE: u8 = 0xe3;
    pub const CHECK_POWER_MODE: u8 = 0xe5;
    pub const SLEEP: u8 = 0xe6;
    pub const FLUSH_CACHE: u8 = 0xe7;
    pub const FLUSH_CACHE_EXT: u8 = 0xea;
    pub const IDENTIFY_DEVICE: u8 = 0xec;
    pub const SET_FEATURES: u8 = 0xef;
}

/// Size of an ATAPI command packet.
pub(super) const PACKET_BYTES: u64 = 12;
/// ATAPI interrupt reason (sector count register): command/data.
pub(super) const REASON_COD: u8 = 0x01;
/// ATAPI interrupt reason: transfer to the host.
pub(super) const REASON_IO: u8 = 0x02;

/// The storage behind a present device.
pub(super) enum Media {
    Disk {
        backend: Box<dyn BlockBackend>,
        read_only: bool,
        /// Whole 512-byte sectors of the image.
        sectors: u64,
    },
    Cd {
        medium: Option<Box<dyn BlockBackend>>,
    },
}

/// A present device: its storage and fixed identity.
pub(super) struct Drive {
    pub(super) media: Media,
    serial: String,
    /// Default CHS geometry (cylinders, heads, sectors per track).
    chs: (u16, u8, u8),
}

/// The task file, as both devices of a channel keep a copy of it: writes go
/// to both, reads come from the selected one. The `hob_` bytes hold the
/// previous value written, the high half of 48-bit addresses and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TaskFile {
    pub(super) feature: u8,
    pub(super) nsector: u8,
    pub(super) sector: u8,
    pub(super) lcyl: u8,
    pub(super) hcyl: u8,
    pub(super) hob_feature: u8,
    pub(super) hob_nsector: u8,
    pub(super) hob_sector: u8,
    pub(super) hob_lcyl: u8,
    pub(super) hob_hcyl: u8,
    pub(super) select: u8,
}

/// The data transfer a device is in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Xfer {
    /// No transfer.
    #[default]
    Idle,
    /// PIO data in: the buffer is the current block; `left` sectors from
    /// `lba` follow, in blocks of `block` sectors.
    ReadPio {
        lba: u64,
        left: u64,
        block: u64,
        lba48: bool,
    },
    /// PIO data out: the buffer fills the block for `lba`; `left` sectors
    /// follow it, in blocks of `block` sectors.
    WritePio {
        lba: u64,
        left: u64,
        block: u64,
        lba48: bool,
    },
    /// PIO data in of the buffer alone (IDENTIFY).
    Buffer,
    /// Receiving the 12-byte ATAPI command packet.
    Packet { dma: bool },
    /// ATAPI PIO data in: `phase` bytes left in this DRQ block, `total` in the
    /// command (phase included); after the buffer, `sectors` CD sectors from
    /// `lba` are still to be read.
    AtapiPio {
        phase: u32,
        total: u64,
        lba: u64,
        sectors: u64,
    },
    /// ATA DMA waiting for the bus master.
    AtaDma {
        lba: u64,
        count: u64,
        write: bool,
        lba48: bool,
    },
    /// ATAPI DMA waiting for the bus master: the buffer, or (`sectors` > 0)
    /// CD sectors from `lba`.
    AtapiDma { lba: u64, sectors: u64 },
}

/// A device position's guest-visible state (also kept for an absent device,
/// whose task file shadows the channel's writes as QEMU's does).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UnitState {
    pub(super) tf: TaskFile,
    pub(super) status: u8,
    pub(super) error: u8,
    /// Sectors per block of READ/WRITE MULTIPLE (0: disabled).
    pub(super) mult_sectors: u8,
    /// Transfer mode set with SET FEATURES (0: PIO default).
    pub(super) xfer_mode: u8,
    pub(super) xfer: Xfer,
    #[serde(with = "crate::state::hex_bytes")]
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    /// ATAPI sense key, additional sense code and qualifier.
    pub(super) sense: [u8; 3],
    /// ATAPI medium change report: 1 = report NOT READY next, 2 = then UNIT
    /// ATTENTION, 0 = nothing to report.
    pub(super) cd_changed: u8,
    /// A new-media event awaits GET EVENT STATUS NOTIFICATION.
    pub(super) new_media: bool,
    /// PREVENT ALLOW MEDIUM REMOVAL's lock.
    pub(super) locked: bool,
}

/// One device position: the device, if any, and its state.
pub(super) struct Unit {
    pub(super) drive: Option<Drive>,
    pub(crate) state: UnitState,
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit")
            .field("shape", &self.shape())
            .field("status", &self.state.status)
            .field("xfer", &self.state.xfer)
            .finish()
    }
}

/// What a DMA transfer ended with.
#[derive(Debug, Default)]
pub(super) struct DmaOutcome {
    /// The device raised INTRQ.
    pub(super) irq: bool,
    /// A PRD or its memory was outside RAM (the engine's error bit).
    pub(super) memory_error: bool,
}

/// Writes `text` into IDENTIFY words as ATA strings are laid out: two
/// characters per word, the first in the high byte, space padded.
fn put_ata_string(data: &mut [u8], word: usize, words: usize, text: &str) {
    let bytes = text.as_bytes();
    for i in 0..2 * words {
        let c = bytes.get(i).copied().unwrap_or(b' ');
        // Character i goes to the high byte of its word when i is even.
        data[2 * word + (i ^ 1)] = c;
    }
}

fn put_word(data: &mut [u8], word: usize, value: u16) {
    data[2 * word..2 * word + 2].copy_from_slice(&value.to_le_bytes());
}

/// QEMU's geometry guess for a disk with no partition table to go by: 16
/// heads, 63 sectors per track, cylinders to match (2 to 16383).
fn guess_chs(sectors: u64) -> (u16, u8, u8) {
    let cylinders = (sectors / (16 * 63)).clamp(2, 16383) as u16;
    (cylinders, 16, 63)
}

impl Unit {
    pub(super) fn new(drive: Option<IdeDrive>, serial: u32) -> Unit {
        let drive = drive.map(|d| {
            let media = match d {
                IdeDrive::Disk { backend, read_only } => Media::Disk {
                    sectors: backend.len() / ATA_SECTOR_SIZE,
                    backend,
                    read_only,
                },
                IdeDrive::Cdrom { medium } => Media::Cd { medium },
            };
            let chs = match &media {
                Media::Disk { sectors, .. } => guess_chs(*sectors),
                Media::Cd { .. } => (0, 0, 0),
            };
            Drive {
                media,
                serial: format!("QM{serial:05}"),
                chs,
            }
        });
        Unit {
            drive,
            state: UnitState::default(),
        }
    }

    pub(super) fn present(&self) -> bool {
        self.drive.is_some()
    }

    pub(super) fn is_cd(&self) -> bool {
        matches!(
            self.drive,
            Some(Drive {
                media: Media::Cd { .. },
                ..
            })
        )
    }

    /// What the position holds, for checking a restored state against.
    pub(super) fn shape(&self) -> String {
        match &self.drive {
            None => "none".into(),
            Some(Drive {
                media: Media::Disk { sectors, .. },
                ..
            }) => format!("disk:{sectors}"),
            Some(Drive {
                media: Media::Cd { .. },
                ..
            }) => "cdrom".into(),
        }
    }

    /// Refuses a saved state that this device could not have produced: a
    /// transfer past the end of its storage, a buffer that does not fit the
    /// transfer. Restored states come from files, so they are checked like
    /// guest input.
    pub(super) fn check_state(&self, state: &UnitState) -> Result<(), String> {
        let bad = |what: &str| Err(format!("{what} out of range"));
        if state.pos > state.buf.len() {
            return bad("transfer buffer position");
        }
        if state.mult_sectors > MAX_MULT_SECTORS {
            return bad("multiple mode");
        }
        let disk_sectors = match &self.drive {
            Some(Drive {
                media: Media::Disk { sectors, .. },
                ..
            }) => *sectors,
            _ => 0,
        };
        let max_block = u64::from(MAX_MULT_SECTORS);
        let fits = |lba: u64, count: u64| {
            lba.checked_add(count)
                .is_some_and(|end| end <= disk_sectors)
        };
        let buf = state.buf.len() as u64;
        let ok = match state.xfer {
            Xfer::Idle => true,
            Xfer::ReadPio {
                lba, left, block, ..
            } => {
                (1..=max_block).contains(&block)
                    && fits(lba, left)
                    && buf <= block * ATA_SECTOR_SIZE
            }
            Xfer::WritePio {
                lba, left, block, ..
            } => {
                (1..=max_block).contains(&block)
                    && buf.is_multiple_of(ATA_SECTOR_SIZE)
                    && (ATA_SECTOR_SIZE..=block * ATA_SECTOR_SIZE).contains(&buf)
                    && fits(lba, left + buf / ATA_SECTOR_SIZE)
            }
            Xfer::Buffer => buf <= 512,
            Xfer::Packet { .. } => buf == PACKET_BYTES,
            Xfer::AtaDma { lba, count, .. } => (1..=0x1_0000).contains(&count) && fits(lba, count),
            Xfer::AtapiPio { lba, sectors, .. } | Xfer::AtapiDma { lba, sectors } => {
                self.is_cd()
                    && lba <= u64::from(u32::MAX)
                    && sectors <= u64::from(u32::MAX)
                    && buf <= 0x1_0000
            }
        };
        if !ok {
            return bad("saved transfer");
        }
        Ok(())
    }

    /// The status register as the guest reads it: an absent slave reads zero.
    pub(super) fn status(&self) -> u8 {
        if self.present() { self.state.status } else { 0 }
    }

    pub(super) fn read_register(&self, offset: u64, hob: bool) -> u8 {
        let tf = &self.state.tf;
        match (offset, hob) {
            (reg::ERROR_FEATURES, _) => self.state.error,
            (reg::SECTOR_COUNT, false) => tf.nsector,
            (reg::SECTOR_COUNT, true) => tf.hob_nsector,
            (reg::LBA_LOW, false) => tf.sector,
            (reg::LBA_LOW, true) => tf.hob_sector,
            (reg::LBA_MID, false) => tf.lcyl,
            (reg::LBA_MID, true) => tf.hob_lcyl,
            (reg::LBA_HIGH, false) => tf.hcyl,
            (reg::LBA_HIGH, true) => tf.hob_hcyl,
            (reg::DEVICE, _) => tf.select,
            _ => 0xff,
        }
    }

    pub(super) fn write_register(&mut self, offset: u64, value: u8) {
        let tf = &mut self.state.tf;
        let pair = match offset {
            reg::ERROR_FEATURES => (&mut tf.feature, &mut tf.hob_feature),
            reg::SECTOR_COUNT => (&mut tf.nsector, &mut tf.hob_nsector),
            reg::LBA_LOW => (&mut tf.sector, &mut tf.hob_sector),
            reg::LBA_MID => (&mut tf.lcyl, &mut tf.hob_lcyl),
            reg::LBA_HIGH => (&mut tf.hcyl, &mut tf.hob_hcyl),
            reg::DEVICE => {
                // Bits 7 and 5 are obsolete and read as one.
                tf.select = value | 0xa0;
                return;
            }
            _ => return,
        };
        *pair.1 = *pair.0;
        *pair.0 = value;
    }

    /// The signature a reset leaves: ATA 01/01/00/00, ATAPI 01/01/14/EB, an
    /// absent device FF/FF in the cylinder registers (as QEMU).
    fn set_signature(&mut self) {
        let tf = &mut self.state.tf;
        tf.select &= 0xf0;
        tf.nsector = 1;
        tf.sector = 1;
        (tf.lcyl, tf.hcyl) = match &self.drive {
            Some(Drive {
                media: Media::Cd { .. },
                ..
            }) => (0x14, 0xeb),
            Some(_) => (0, 0),
            None => (0xff, 0xff),
        };
    }

    /// The status after a reset: ATAPI devices clear DRDY until their first
    /// command; disks are ready.
    fn ready_status(&self) -> u8 {
        if self.is_cd() {
            0
        } else {
            STATUS_DRDY | STATUS_DSC
        }
    }

    /// Back to the power-on state (registers, modes, transfer, sense).
    pub(super) fn power_on(&mut self) {
        self.state = UnitState {
            mult_sectors: MAX_MULT_SECTORS,
            ..UnitState::default()
        };
        self.state.tf.select = 0xa0;
        self.soft_reset_done();
    }

    fn soft_reset_done(&mut self) {
        self.set_signature();
        self.state.error = 0x01;
        self.state.status = self.ready_status();
    }

    pub(super) fn begin_soft_reset(&mut self) {
        self.state.xfer = Xfer::Idle;
        self.state.buf.clear();
        self.state.pos = 0;
        self.state.status = STATUS_BSY | STATUS_DSC;
        self.state.error = 0x01;
    }

    pub(super) fn end_soft_reset(&mut self) {
        // As QEMU, the reset also returns the modes and the ATAPI state to
        // their defaults; the medium change report survives it, since the
        // guest has not seen it yet.
        let keep = (self.state.cd_changed, self.state.new_media);
        self.power_on();
        (self.state.cd_changed, self.state.new_media) = keep;
    }

    pub(super) fn change_medium(&mut self, medium: Option<Box<dyn BlockBackend>>) -> bool {
        let Some(Drive {
            media: Media::Cd { medium: slot },
            ..
        }) = &mut self.drive
        else {
            return false;
        };
        let inserted = medium.is_some();
        *slot = medium;
        if inserted {
            self.state.cd_changed = 1;
            self.state.new_media = true;
        }
        true
    }

    /// Ends a command successfully, no data: ready, interrupt.
    fn done(&mut self) -> bool {
        self.state.status = STATUS_DRDY | STATUS_DSC;
        self.state.xfer = Xfer::Idle;
        true
    }

    /// Aborts the command: ERR with ABRT, interrupt.
    pub(super) fn abort(&mut self) -> bool {
        self.state.error = ERROR_ABRT;
        self.state.status = STATUS_DRDY | STATUS_ERR;
        self.state.xfer = Xfer::Idle;
        self.state.buf.clear();
        self.state.pos = 0;
        true
    }

    // ---- addressing ----

    fn lba48(&self) -> u64 {
        let tf = &self.state.tf;
        u64::from_le_bytes([
            tf.sector,
            tf.lcyl,
            tf.hcyl,
            tf.hob_sector,
            tf.hob_lcyl,
            tf.hob_hcyl,
            0,
            0,
        ])
    }

    /// The start sector of a 28-bit command, from LBA or CHS registers.
    fn lba28(&self) -> Option<u64> {
        let tf = &self.state.tf;
        if tf.select & 0x40 != 0 {
            return Some(u64::from_le_bytes([
                tf.sector,
                tf.lcyl,
                tf.hcyl,
                tf.select & 0x0f,
                0,
                0,
                0,
                0,
            ]));
        }
        let (_, heads, sectors) = self.drive.as_ref()?.chs;
        let cylinder = u64::from(u16::from_le_bytes([tf.lcyl, tf.hcyl]));
        let head = u64::from(tf.select & 0x0f);
        let sector = u64::from(tf.sector);
        if sector == 0 || sector > u64::from(sectors) || head >= u64::from(heads) {
            return None;
        }
        Some((cylinder * u64::from(heads) + head) * u64::from(sectors) + sector - 1)
    }

    /// Leaves the address of the next sector in the registers, as drives do
    /// after a transfer (and as the count of sectors left, zero when done).
    fn set_sector(&mut self, lba: u64, lba48: bool) {
        let chs = self.drive.as_ref().map(|d| d.chs);
        let tf = &mut self.state.tf;
        let b = lba.to_le_bytes();
        if lba48 {
            (tf.sector, tf.lcyl, tf.hcyl) = (b[0], b[1], b[2]);
            (tf.hob_sector, tf.hob_lcyl, tf.hob_hcyl) = (b[3], b[4], b[5]);
        } else if tf.select & 0x40 != 0 {
            (tf.sector, tf.lcyl, tf.hcyl) = (b[0], b[1], b[2]);
            tf.select = (tf.select & 0xf0) | (b[3] & 0x0f);
        } else if let Some((_, heads, sectors)) = chs {
            let per_cylinder = u64::from(heads) * u64::from(sectors);
            let cylinder = lba / per_cylinder.max(1);
            let rest = lba % per_cylinder.max(1);
            let [lo, hi, ..] = cylinder.to_le_bytes();
            (tf.lcyl, tf.hcyl) = (lo, hi);
            tf.select = (tf.select & 0xf0) | ((rest / u64::from(sectors.max(1))) as u8 & 0x0f);
            tf.sector = (rest % u64::from(sectors.max(1)) + 1) as u8;
        }
    }

    /// The (start, count) of a read/write command, when it is on the disk.
    fn range(&self, lba48: bool) -> Option<(u64, u64)> {
        let tf = &self.state.tf;
        let (lba, count) = if lba48 {
            let n = u64::from(u16::from_le_bytes([tf.nsector, tf.hob_nsector]));
            (self.lba48(), if n == 0 { 0x1_0000 } else { n })
        } else {
            let n = u64::from(tf.nsector);
            (self.lba28()?, if n == 0 { 256 } else { n })
        };
        let Some(Drive {
            media: Media::Disk { sectors, .. },
            ..
        }) = &self.drive
        else {
            return None;
        };
        (lba.checked_add(count)? <= *sectors).then_some((lba, count))
    }

    fn disk(&mut self) -> Option<(&mut Box<dyn BlockBackend>, bool)> {
        match &mut self.drive {
            Some(Drive {
                media: Media::Disk {
                    backend, read_only, ..
                },
                ..
            }) => Some((backend, *read_only)),
            _ => None,
        }
    }

    // ---- commands ----

    /// Executes `command` on this device; true when it raises INTRQ now.
    pub(super) fn command(&mut self, command: u8) -> bool {
        let Some(drive) = &self.drive else {
            // Commands to an absent device go nowhere.
            return false;
        };
        let cd = matches!(drive.media, Media::Cd { .. });
        if self.state.status & (STATUS_BSY | STATUS_DRQ) != 0
            && !(cd && command == cmd::DEVICE_RESET)
        {
            // Only DEVICE RESET may interrupt an ATAPI device's command.
            return false;
        }
        self.state.error = 0;
        if cd {
            return self.cd_command(command);
        }
        match command {
            cmd::IDENTIFY_DEVICE => {
                let data = self.identify_disk();
                self.start_buffer(data.to_vec())
            }
            cmd::READ_SECTORS | cmd::READ_SECTORS_NORETRY => self.start_read(false, 1),
            cmd::READ_SECTORS_EXT => self.start_read(true, 1),
            cmd::READ_MULTIPLE | cmd::READ_MULTIPLE_EXT => match self.state.mult_sectors {
                0 => self.abort(),
                n => self.start_read(command == cmd::READ_MULTIPLE_EXT, u64::from(n)),
            },
            cmd::WRITE_SECTORS | cmd::WRITE_SECTORS_NORETRY => self.start_write(false, 1),
            cmd::WRITE_SECTORS_EXT => self.start_write(true, 1),
            cmd::WRITE_MULTIPLE | cmd::WRITE_MULTIPLE_EXT => match self.state.mult_sectors {
                0 => self.abort(),
                n => self.start_write(command == cmd::WRITE_MULTIPLE_EXT, u64::from(n)),
            },
            cmd::READ_DMA | cmd::READ_DMA_NORETRY => self.start_dma(false, false),
            cmd::READ_DMA_EXT => self.start_dma(true, false),
            cmd::WRITE_DMA | cmd::WRITE_DMA_NORETRY => self.start_dma(false, true),
            cmd::WRITE_DMA_EXT => self.start_dma(true, true),
            cmd::READ_VERIFY | cmd::READ_VERIFY_NORETRY | cmd::READ_VERIFY_EXT => {
                let lba48 = command == cmd::READ_VERIFY_EXT;
                match self.range(lba48) {
                    Some((lba, count)) => {
                        self.set_sector(lba + count - 1, lba48);
                        self.done()
                    }
                    None => self.abort(),
                }
            }
            cmd::SET_MULTIPLE_MODE => {
                let n = self.state.tf.nsector;
                if n > MAX_MULT_SECTORS || !(n == 0 || n.is_power_of_two()) {
                    self.abort()
                } else {
                    self.state.mult_sectors = n;
                    self.done()
                }
            }
            cmd::FLUSH_CACHE | cmd::FLUSH_CACHE_EXT => {
                let flushed = self.disk().map(|(b, _)| b.flush());
                match flushed {
                    Some(Ok(())) => self.done(),
                    Some(Err(e)) => {
                        tracing::warn!("ide: flush: {e}");
                        self.abort()
                    }
                    None => self.abort(),
                }
            }
            cmd::SET_FEATURES => self.set_features(),
            cmd::CHECK_POWER_MODE => {
                // Always active.
                self.state.tf.nsector = 0xff;
                self.done()
            }
            cmd::EXECUTE_DEVICE_DIAGNOSTIC => {
                self.soft_reset_done();
                true
            }
            cmd::STANDBY_IMMEDIATE
            | cmd::IDLE_IMMEDIATE
            | cmd::STANDBY
            | cmd::IDLE
            | cmd::SLEEP
            | cmd::SEEK
            | cmd::INITIALIZE_DEVICE_PARAMETERS => self.done(),
            c if c & 0xf0 == cmd::RECALIBRATE => self.done(),
            // DEVICE RESET, PACKET, IDENTIFY PACKET DEVICE are ATAPI's; the
            // rest is not implemented.
            _ => self.abort(),
        }
    }

    /// The ATA commands a CD-ROM drive takes besides PACKET.
    fn cd_command(&mut self, command: u8) -> bool {
        match command {
            cmd::IDENTIFY_PACKET_DEVICE => {
                let data = self.identify_cd();
                self.start_buffer(data.to_vec())
            }
            cmd::PACKET => self.start_packet(),
            cmd::DEVICE_RESET => {
                // The device keeps its place on the channel (DEV bit).
                let select = self.state.tf.select;
                self.end_soft_reset();
                self.state.tf.select = select & 0xf0;
                false
            }
            cmd::EXECUTE_DEVICE_DIAGNOSTIC => {
                self.soft_reset_done();
                true
            }
            cmd::SET_FEATURES => self.set_features(),
            cmd::CHECK_POWER_MODE => {
                self.state.tf.nsector = 0xff;
                self.done()
            }
            cmd::IDLE_IMMEDIATE | cmd::STANDBY_IMMEDIATE | cmd::SLEEP => self.done(),
            // ATA 8.x: a packet device aborts IDENTIFY DEVICE and the read
            // commands, showing its signature so the host learns what it is.
            _ => {
                self.set_signature();
                self.abort()
            }
        }
    }

    fn set_features(&mut self) -> bool {
        match self.state.tf.feature {
            // Set transfer mode: PIO (0x00, 0x01, 0x08|n), multiword DMA
            // (0x20|n), Ultra DMA (0x40|n).
            0x03 => {
                let mode = self.state.tf.nsector;
                let valid = match mode >> 3 {
                    0 => mode <= 1,
                    1 => mode & 7 <= 4,
                    // Single-word and multiword DMA modes 0-2.
                    2 | 4 => mode & 7 <= 2,
                    8 => mode & 7 <= 5,
                    _ => false,
                };
                if valid {
                    self.state.xfer_mode = mode;
                    self.done()
                } else {
                    self.abort()
                }
            }
            // Write cache, read look-ahead, reverting to defaults, and other
            // settings without an effect here.
            0x02 | 0x82 | 0xaa | 0x55 | 0xcc | 0x66 | 0x05 | 0x85 | 0x42 | 0xc2 => self.done(),
            _ => self.abort(),
        }
    }

    /// The IDENTIFY DEVICE data of a disk, laid out as QEMU's ide-hd.
    pub(super) fn identify_disk(&self) -> [u8; 512] {
        let mut d = [0u8; 512];
        let Some(drive) = &self.drive else { return d };
        let sectors = match &drive.media {
            Media::Disk { sectors, .. } => *sectors,
            Media::Cd { .. } => 0,
        };
        let (cyls, heads, secs) = drive.chs;
        put_word(&mut d, 0, 0x0040);
        put_word(&mut d, 1, cyls);
        put_word(&mut d, 3, u16::from(heads));
        put_word(&mut d, 4, 512 * u16::from(secs));
        put_word(&mut d, 5, 512);
        put_word(&mut d, 6, u16::from(secs));
        put_ata_string(&mut d, 10, 10, &drive.serial);
        put_word(&mut d, 20, 3);
        put_word(&mut d, 21, 512);
        put_word(&mut d, 22, 4);
        put_ata_string(&mut d, 23, 4, FIRMWARE);
        put_ata_string(&mut d, 27, 20, "QEMU HARDDISK");
        put_word(&mut d, 47, 0x8000 | u16::from(MAX_MULT_SECTORS));
        put_word(&mut d, 48, 1);
        // IORDY, LBA and DMA supported.
        put_word(&mut d, 49, 1 << 11 | 1 << 9 | 1 << 8);
        put_word(&mut d, 51, 0x200);
        put_word(&mut d, 52, 0x200);
        put_word(&mut d, 53, 1 | 2 | 4);
        put_word(&mut d, 54, cyls);
        put_word(&mut d, 55, u16::from(heads));
        put_word(&mut d, 56, u16::from(secs));
        let current = u32::from(cyls) * u32::from(heads) * u32::from(secs);
        put_word(&mut d, 57, current as u16);
        put_word(&mut d, 58, (current >> 16) as u16);
        if self.state.mult_sectors != 0 {
            put_word(&mut d, 59, 0x100 | u16::from(self.state.mult_sectors));
        }
        let lba28 = sectors.min(0x0fff_ffff) as u32;
        put_word(&mut d, 60, lba28 as u16);
        put_word(&mut d, 61, (lba28 >> 16) as u16);
        self.put_transfer_modes(&mut d);
        put_word(&mut d, 65, 120);
        put_word(&mut d, 66, 120);
        put_word(&mut d, 67, 120);
        put_word(&mut d, 68, 120);
        // ATA/ATAPI-4 to -7.
        put_word(&mut d, 80, 0xf0);
        put_word(&mut d, 81, 0x16);
        // Write cache; FLUSH CACHE (EXT) and 48-bit addressing.
        put_word(&mut d, 82, 1 << 14 | 1 << 5);
        put_word(&mut d, 83, 1 << 14 | 1 << 13 | 1 << 12 | 1 << 10);
        put_word(&mut d, 84, 1 << 14);
        put_word(&mut d, 85, 1 << 14 | 1 << 5);
        put_word(&mut d, 86, 1 << 13 | 1 << 12 | 1 << 10);
        put_word(&mut d, 87, 1 << 14);
        // Hardware reset result, with an 80-conductor cable detected.
        put_word(&mut d, 93, 1 | 1 << 14 | 0x2000);
        for (i, w) in sectors.to_le_bytes().chunks(2).enumerate() {
            put_word(&mut d, 100 + i, u16::from_le_bytes([w[0], w[1]]));
        }
        d
    }

    /// Words 62–64 and 88: the DMA and PIO modes offered, and the one chosen.
    fn put_transfer_modes(&self, d: &mut [u8]) {
        let mode = self.state.xfer_mode;
        let selected = |class: u8| {
            if mode >> 3 == class {
                1u16 << (8 + (mode & 7))
            } else {
                0
            }
        };
        put_word(d, 62, 0x07 | selected(2));
        put_word(d, 63, 0x07 | selected(4));
        put_word(d, 64, 0x03);
        put_word(d, 88, 0x3f | selected(8));
    }

    /// The IDENTIFY PACKET DEVICE data of a CD-ROM, laid out as QEMU's ide-cd.
    pub(super) fn identify_cd(&self) -> [u8; 512] {
        let mut d = [0u8; 512];
        let Some(drive) = &self.drive else { return d };
        // ATAPI, CD-ROM, removable, 50 µs to DRQ, 12-byte packets.
        put_word(&mut d, 0, 2 << 14 | 5 << 8 | 1 << 7 | 2 << 5);
        put_ata_string(&mut d, 10, 10, &drive.serial);
        put_word(&mut d, 20, 3);
        put_word(&mut d, 21, 512);
        put_word(&mut d, 22, 4);
        put_ata_string(&mut d, 23, 4, FIRMWARE);
        put_ata_string(&mut d, 27, 20, "QEMU DVD-ROM");
        put_word(&mut d, 48, 1);
        put_word(&mut d, 49, 1 << 9 | 1 << 8);
        put_word(&mut d, 53, 7);
        self.put_transfer_modes(&mut d);
        put_word(&mut d, 65, 0xb4);
        put_word(&mut d, 66, 0xb4);
        put_word(&mut d, 67, 0x12c);
        put_word(&mut d, 68, 0xb4);
        put_word(&mut d, 71, 30);
        put_word(&mut d, 72, 30);
        put_word(&mut d, 80, 0x1e);
        put_word(&mut d, 93, 1 | 1 << 14 | 0x2000);
        d
    }

    /// A one-block PIO data-in transfer of `data` (IDENTIFY).
    fn start_buffer(&mut self, data: Vec<u8>) -> bool {
        self.state.buf = data;
        self.state.pos = 0;
        self.state.xfer = Xfer::Buffer;
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        true
    }

    fn start_read(&mut self, lba48: bool, block: u64) -> bool {
        let Some((lba, count)) = self.range(lba48) else {
            return self.abort();
        };
        self.state.xfer = Xfer::ReadPio {
            lba,
            left: count,
            block,
            lba48,
        };
        self.next_read_block()
    }

    /// Loads the next block of a PIO read and raises DRQ with INTRQ; after
    /// the last block, ends the command (no interrupt: the host already had
    /// the last block's).
    fn next_read_block(&mut self) -> bool {
        let Xfer::ReadPio {
            lba,
            left,
            block,
            lba48,
        } = self.state.xfer
        else {
            return false;
        };
        if left == 0 {
            self.state.status = STATUS_DRDY | STATUS_DSC;
            self.state.xfer = Xfer::Idle;
            self.state.buf.clear();
            self.state.pos = 0;
            return false;
        }
        let n = left.min(block);
        let mut buf = std::mem::take(&mut self.state.buf);
        buf.resize((n * ATA_SECTOR_SIZE) as usize, 0);
        let result = match self.disk() {
            Some((backend, _)) => backend.read_at(lba * ATA_SECTOR_SIZE, &mut buf),
            None => return self.abort(),
        };
        if let Err(e) = result {
            tracing::warn!("ide: read at sector {lba}: {e}");
            self.set_sector(lba, lba48);
            return self.abort();
        }
        self.state.buf = buf;
        self.state.pos = 0;
        self.state.xfer = Xfer::ReadPio {
            lba: lba + n,
            left: left - n,
            block,
            lba48,
        };
        self.set_sector(lba + n - 1, lba48);
        self.state.tf.nsector = (left - n) as u8;
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        true
    }

    fn start_write(&mut self, lba48: bool, block: u64) -> bool {
        let Some((lba, count)) = self.range(lba48) else {
            return self.abort();
        };
        if matches!(self.disk(), Some((_, true))) {
            return self.abort();
        }
        let n = count.min(block);
        self.state.buf = vec![0; (n * ATA_SECTOR_SIZE) as usize];
        self.state.pos = 0;
        self.state.xfer = Xfer::WritePio {
            lba,
            left: count - n,
            block,
            lba48,
        };
        // DRQ for the first block comes without an interrupt.
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        false
    }

    /// A full PIO write block: to the image, then DRQ for the next block or
    /// the end of the command, with INTRQ either way.
    fn write_block_done(&mut self) -> bool {
        let Xfer::WritePio {
            lba,
            left,
            block,
            lba48,
        } = self.state.xfer
        else {
            return false;
        };
        let buf = std::mem::take(&mut self.state.buf);
        let n = buf.len() as u64 / ATA_SECTOR_SIZE;
        let result = match self.disk() {
            Some((backend, _)) => backend.write_at(lba * ATA_SECTOR_SIZE, &buf),
            None => return self.abort(),
        };
        if let Err(e) = result {
            tracing::warn!("ide: write at sector {lba}: {e}");
            self.set_sector(lba, lba48);
            return self.abort();
        }
        self.set_sector(lba + n - 1, lba48);
        self.state.tf.nsector = left as u8;
        if left == 0 {
            return self.done();
        }
        let next = left.min(block);
        self.state.buf = buf;
        self.state.buf.resize((next * ATA_SECTOR_SIZE) as usize, 0);
        self.state.pos = 0;
        self.state.xfer = Xfer::WritePio {
            lba: lba + n,
            left: left - next,
            block,
            lba48,
        };
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        true
    }

    fn start_dma(&mut self, lba48: bool, write: bool) -> bool {
        let Some((lba, count)) = self.range(lba48) else {
            return self.abort();
        };
        if write && matches!(self.disk(), Some((_, true))) {
            return self.abort();
        }
        self.state.xfer = Xfer::AtaDma {
            lba,
            count,
            write,
            lba48,
        };
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        false
    }

    // ---- the data register ----

    /// A data register read of `size` (2 or 4) bytes; also whether INTRQ
    /// rises (the next DRQ block). Without DRQ nothing moves and it reads 0.
    pub(super) fn read_data(&mut self, size: usize) -> (u32, bool) {
        if self.state.status & STATUS_DRQ == 0 || !self.present() {
            return (0, false);
        }
        match self.state.xfer {
            Xfer::ReadPio { .. } | Xfer::Buffer => {
                let (value, _) = self.take(size);
                if self.state.pos >= self.state.buf.len() {
                    if let Xfer::Buffer = self.state.xfer {
                        self.state.status = STATUS_DRDY | STATUS_DSC;
                        self.state.xfer = Xfer::Idle;
                        self.state.buf.clear();
                        self.state.pos = 0;
                        return (value, false);
                    }
                    let irq = self.next_read_block();
                    return (value, irq);
                }
                (value, false)
            }
            Xfer::AtapiPio { .. } => self.atapi_read_data(size),
            _ => (0, false),
        }
    }

    /// Takes up to `size` bytes from the buffer, little-endian; bytes past
    /// its end read as zero. Returns the value and how many bytes it took.
    pub(super) fn take(&mut self, size: usize) -> (u32, usize) {
        let start = self.state.pos.min(self.state.buf.len());
        let end = (start + size).min(self.state.buf.len());
        let mut bytes = [0u8; 4];
        bytes[..end - start].copy_from_slice(&self.state.buf[start..end]);
        self.state.pos = end;
        (u32::from_le_bytes(bytes), end - start)
    }

    /// A data register write of `size` bytes; whether INTRQ rises.
    pub(super) fn write_data(&mut self, size: usize, value: u32) -> bool {
        if self.state.status & STATUS_DRQ == 0 || !self.present() {
            return false;
        }
        if !matches!(self.state.xfer, Xfer::WritePio { .. } | Xfer::Packet { .. }) {
            return false;
        }
        let start = self.state.pos.min(self.state.buf.len());
        let end = (start + size).min(self.state.buf.len());
        self.state.buf[start..end].copy_from_slice(&value.to_le_bytes()[..end - start]);
        self.state.pos = end;
        if end < self.state.buf.len() {
            return false;
        }
        match self.state.xfer {
            Xfer::WritePio { .. } => self.write_block_done(),
            Xfer::Packet { dma } => self.packet(dma),
            _ => false,
        }
    }

    // ---- DMA ----

    pub(super) fn dma_waiting(&self) -> bool {
        matches!(self.state.xfer, Xfer::AtaDma { .. } | Xfer::AtapiDma { .. })
    }

    /// Runs the waiting DMA transfer through the PRD table at `cursor`.
    pub(super) fn run_dma(&mut self, cursor: &mut PrdCursor<'_>, bus_master: bool) -> DmaOutcome {
        let xfer = std::mem::take(&mut self.state.xfer);
        let result = if !bus_master {
            // With bus mastering off every memory cycle fails.
            Err(DmaFail::Dma(DmaError::Memory))
        } else {
            match xfer {
                Xfer::AtaDma {
                    lba,
                    count,
                    write,
                    lba48,
                } => {
                    let r = self.ata_dma(cursor, lba, count, write);
                    let at = match r {
                        Ok(()) => lba + count - 1,
                        Err(_) => lba,
                    };
                    self.set_sector(at, lba48);
                    if r.is_ok() {
                        self.state.tf.nsector = 0;
                    }
                    r
                }
                Xfer::AtapiDma { lba, sectors } => self.atapi_dma(cursor, lba, sectors),
                _ => return DmaOutcome::default(),
            }
        };
        self.state.buf.clear();
        self.state.pos = 0;
        let cd = self.is_cd();
        match result {
            Ok(()) => DmaOutcome {
                irq: if cd { self.atapi_ok() } else { self.done() },
                memory_error: false,
            },
            // The table ran out first: QEMU stops without an interrupt.
            Err(DmaFail::Dma(DmaError::TableShort)) => {
                self.state.status = STATUS_DRDY | STATUS_DSC;
                DmaOutcome::default()
            }
            Err(DmaFail::Dma(DmaError::Memory)) => DmaOutcome {
                irq: self.abort(),
                memory_error: true,
            },
            Err(DmaFail::Io) => DmaOutcome {
                irq: if cd {
                    self.atapi_read_error()
                } else {
                    self.abort()
                },
                memory_error: false,
            },
        }
    }

    fn ata_dma(
        &mut self,
        cursor: &mut PrdCursor<'_>,
        lba: u64,
        count: u64,
        write: bool,
    ) -> Result<(), DmaFail> {
        let Some((backend, _)) = self.disk() else {
            return Err(DmaFail::Io);
        };
        let mut staging = vec![0u8; (count.min(DMA_CHUNK_SECTORS) * ATA_SECTOR_SIZE) as usize];
        let mut done = 0;
        while done < count {
            let n = (count - done).min(DMA_CHUNK_SECTORS);
            let buf = &mut staging[..(n * ATA_SECTOR_SIZE) as usize];
            let offset = (lba + done) * ATA_SECTOR_SIZE;
            if write {
                cursor.gather(buf).map_err(DmaFail::Dma)?;
                backend.write_at(offset, buf).map_err(|e| {
                    tracing::warn!("ide: DMA write at byte {offset}: {e}");
                    DmaFail::Io
                })?;
            } else {
                backend.read_at(offset, buf).map_err(|e| {
                    tracing::warn!("ide: DMA read at byte {offset}: {e}");
                    DmaFail::Io
                })?;
                cursor.scatter(buf).map_err(DmaFail::Dma)?;
            }
            done += n;
        }
        Ok(())
    }
}

/// Why a DMA transfer failed.
#[derive(Debug)]
pub(super) enum DmaFail {
    /// Guest memory or the PRD table.
    Dma(DmaError),
    /// The image.
    Io,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ata_strings_swap_bytes_in_each_word() {
        let mut d = [0u8; 8];
        put_ata_string(&mut d, 0, 4, "QEMU H");
        assert_eq!(&d, b"EQUMH   ");
    }

    #[test]
    fn geometry_guess_is_qemus() {
        assert_eq!(guess_chs(16), (2, 16, 63));
        assert_eq!(guess_chs(16 * 63 * 100), (100, 16, 63));
        assert_eq!(guess_chs(u64::MAX), (16383, 16, 63));
    }
}
