//! ATAPI: the PACKET command and the SCSI/MMC commands of a CD-ROM drive
//! (MMC-3 subset, the one QEMU's ide-cd answers and SeaBIOS and Linux use).
//!
//! Data goes to the host in DRQ blocks no larger than the byte count limit
//! the host put in LBA mid/high, with the interrupt reason in the sector count
//! register; or, when the host set the DMA bit in the features register,
//! through the bus master. Every reply is cut to the allocation length.

use super::ata::{CD_SECTOR_SIZE, PACKET_BYTES, REASON_COD, REASON_IO, Unit, Xfer};
use super::bmdma::PrdCursor;
use super::{STATUS_DRDY, STATUS_DRQ, STATUS_DSC, STATUS_ERR};
use crate::ide::ata::{DmaFail, Media};

/// Sense keys.
mod sense {
    pub const NO_SENSE: u8 = 0x00;
    pub const NOT_READY: u8 = 0x02;
    pub const MEDIUM_ERROR: u8 = 0x03;
    pub const ILLEGAL_REQUEST: u8 = 0x05;
    pub const UNIT_ATTENTION: u8 = 0x06;
}

/// Additional sense codes.
mod asc {
    pub const INVALID_OPCODE: u8 = 0x20;
    pub const LBA_OUT_OF_RANGE: u8 = 0x21;
    pub const INVALID_FIELD: u8 = 0x24;
    pub const MEDIUM_MAY_HAVE_CHANGED: u8 = 0x28;
    pub const SAVING_NOT_SUPPORTED: u8 = 0x39;
    pub const MEDIUM_NOT_PRESENT: u8 = 0x3a;
}

/// SCSI/MMC operation codes.
mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const INQUIRY: u8 = 0x12;
    pub const START_STOP_UNIT: u8 = 0x1b;
    pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1e;
    pub const READ_CAPACITY: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const SEEK_10: u8 = 0x2b;
    pub const READ_TOC: u8 = 0x43;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4a;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const MODE_SENSE_10: u8 = 0x5a;
    pub const READ_12: u8 = 0xa8;
    pub const SET_CD_SPEED: u8 = 0xbb;
    pub const MECHANISM_STATUS: u8 = 0xbd;
}

/// Size of an ATAPI command packet.
const PACKET_SIZE: usize = PACKET_BYTES as usize;
/// Sectors of an 80-minute CD; a larger image is a DVD (as QEMU decides).
const CD_MAX_SECTORS: u64 = 80 * 60 * 75;
/// MMC profiles.
const PROFILE_DVD_ROM: u16 = 0x0010;
const PROFILE_CD_ROM: u16 = 0x0008;

fn be16(b: &[u8]) -> u64 {
    u64::from(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// An LBA as MSF (minutes, seconds, frames; 2 s of lead-in), 4 bytes.
fn msf(lba: u64) -> [u8; 4] {
    let f = lba + 150;
    [
        0,
        (f / 4500).min(255) as u8,
        (f / 75 % 60) as u8,
        (f % 75) as u8,
    ]
}

fn address(lba: u64, as_msf: bool) -> [u8; 4] {
    if as_msf {
        msf(lba)
    } else {
        (lba as u32).to_be_bytes()
    }
}

impl Unit {
    /// CD sectors on the medium, when there is one.
    fn cd_sectors(&self) -> Option<u64> {
        match &self.drive.as_ref()?.media {
            Media::Cd { medium: Some(m) } => Some(m.len() / CD_SECTOR_SIZE),
            _ => None,
        }
    }

    /// PACKET: DRQ for the command packet, interrupt reason C/D, no INTRQ.
    pub(super) fn start_packet(&mut self) -> bool {
        // Overlapped commands are not supported.
        if self.state.tf.feature & 0x02 != 0 {
            return self.abort();
        }
        let dma = self.state.tf.feature & 0x01 != 0;
        self.state.buf = vec![0; PACKET_SIZE];
        self.state.pos = 0;
        self.state.xfer = Xfer::Packet { dma };
        self.state.tf.nsector = (self.state.tf.nsector & !7) | REASON_COD;
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        false
    }

    /// Ends an ATAPI command well: sense cleared, reason I/O + C/D, INTRQ.
    pub(super) fn atapi_ok(&mut self) -> bool {
        self.state.error = 0;
        self.state.sense = [sense::NO_SENSE, 0, 0];
        self.state.status = STATUS_DRDY | STATUS_DSC;
        self.state.tf.nsector = (self.state.tf.nsector & !7) | REASON_IO | REASON_COD;
        self.state.xfer = Xfer::Idle;
        self.state.buf.clear();
        self.state.pos = 0;
        true
    }

    /// Ends an ATAPI command whose medium could not be read (MEDIUM ERROR,
    /// unrecovered read error), as when the image file fails under DMA.
    pub(super) fn atapi_read_error(&mut self) -> bool {
        self.atapi_error(sense::MEDIUM_ERROR, 0x11, 0)
    }

    /// Ends an ATAPI command with CHECK CONDITION: the sense key in the error
    /// register's high nibble, the sense kept for REQUEST SENSE.
    pub(super) fn atapi_error(&mut self, key: u8, code: u8, qualifier: u8) -> bool {
        self.state.error = key << 4;
        self.state.sense = [key, code, qualifier];
        self.state.status = STATUS_DRDY | STATUS_ERR;
        self.state.tf.nsector = (self.state.tf.nsector & !7) | REASON_IO | REASON_COD;
        self.state.xfer = Xfer::Idle;
        self.state.buf.clear();
        self.state.pos = 0;
        true
    }

    fn invalid_field(&mut self) -> bool {
        self.atapi_error(sense::ILLEGAL_REQUEST, asc::INVALID_FIELD, 0)
    }

    /// Sends `data`, cut to `alloc` bytes, to the host by PIO or DMA.
    fn reply(&mut self, mut data: Vec<u8>, alloc: u64, dma: bool) -> bool {
        data.truncate(alloc.min(data.len() as u64) as usize);
        if data.is_empty() {
            return self.atapi_ok();
        }
        let total = data.len() as u64;
        self.state.buf = data;
        self.state.pos = 0;
        self.start_data(total, 0, 0, dma)
    }

    /// Starts a data-in phase of `total` bytes: the buffer, then `sectors`
    /// sectors from `lba` read as the host takes them.
    fn start_data(&mut self, total: u64, lba: u64, sectors: u64, dma: bool) -> bool {
        if dma {
            self.state.xfer = Xfer::AtapiDma { lba, sectors };
            self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
            return false;
        }
        if self.state.tf.lcyl == 0 && self.state.tf.hcyl == 0 {
            // A PIO data transfer needs a byte count limit: without one the
            // command aborts at the ATA level (ATA8-ACS 7.17.6.49), as QEMU.
            self.state.tf.nsector = (self.state.tf.nsector & !7) | REASON_IO | REASON_COD;
            return self.abort();
        }
        self.state.xfer = Xfer::AtapiPio {
            phase: 0,
            total,
            lba,
            sectors,
        };
        self.next_phase()
    }

    /// The next DRQ block: as many bytes as the byte count limit allows (an
    /// even number unless it is the last), shown in LBA mid/high.
    fn next_phase(&mut self) -> bool {
        let Xfer::AtapiPio {
            total,
            lba,
            sectors,
            ..
        } = self.state.xfer
        else {
            return false;
        };
        if total == 0 {
            return self.atapi_ok();
        }
        let limit = u16::from_le_bytes([self.state.tf.lcyl, self.state.tf.hcyl]);
        let limit = match limit {
            0xffff => 0xfffe,
            n => u32::from(n & !1).max(2),
        };
        let n = total.min(u64::from(limit)) as u32;
        self.state.xfer = Xfer::AtapiPio {
            phase: n,
            total,
            lba,
            sectors,
        };
        [self.state.tf.lcyl, self.state.tf.hcyl] = (n as u16).to_le_bytes();
        self.state.tf.nsector = (self.state.tf.nsector & !7) | REASON_IO;
        self.state.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        true
    }

    /// A data register read during ATAPI PIO data in.
    pub(super) fn atapi_read_data(&mut self, size: usize) -> (u32, bool) {
        let Xfer::AtapiPio {
            phase,
            total,
            lba,
            sectors,
        } = self.state.xfer
        else {
            return (0, false);
        };
        let (mut lba, mut sectors) = (lba, sectors);
        let want = size.min(phase as usize);
        let mut bytes = [0u8; 4];
        for byte in bytes.iter_mut().take(want) {
            if self.state.pos >= self.state.buf.len() && sectors > 0 {
                // The next sector of a READ, one at a time; a word may
                // straddle two sectors.
                let mut buf = std::mem::take(&mut self.state.buf);
                buf.resize(CD_SECTOR_SIZE as usize, 0);
                if !self.read_cd(lba, &mut buf) {
                    return (0, self.atapi_error(sense::MEDIUM_ERROR, 0x11, 0));
                }
                self.state.buf = buf;
                self.state.pos = 0;
                lba += 1;
                sectors -= 1;
            }
            *byte = self.take(1).0 as u8;
        }
        let value = u32::from_le_bytes(bytes);
        // A short buffer still counts the bytes (as zeros), so the phase ends.
        let phase = phase - want as u32;
        let total = total.saturating_sub(want as u64);
        self.state.xfer = Xfer::AtapiPio {
            phase,
            total,
            lba,
            sectors,
        };
        if phase == 0 {
            return (value, self.next_phase());
        }
        (value, false)
    }

    /// Reads CD sector `lba` into `buf` (2048 bytes); false on a host error.
    fn read_cd(&mut self, lba: u64, buf: &mut [u8]) -> bool {
        let Some(Media::Cd { medium: Some(m) }) = self.drive.as_mut().map(|d| &mut d.media) else {
            return false;
        };
        match m.read_at(lba * CD_SECTOR_SIZE, buf) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("ide: CD read at sector {lba}: {e}");
                false
            }
        }
    }

    /// Runs an ATAPI DMA transfer: the buffer, or sectors from the medium.
    pub(super) fn atapi_dma(
        &mut self,
        cursor: &mut PrdCursor<'_>,
        lba: u64,
        sectors: u64,
    ) -> Result<(), DmaFail> {
        if sectors == 0 {
            let buf = std::mem::take(&mut self.state.buf);
            return cursor.scatter(&buf).map_err(DmaFail::Dma);
        }
        const CHUNK: u64 = 32;
        let mut staging = vec![0u8; (sectors.min(CHUNK) * CD_SECTOR_SIZE) as usize];
        let mut done = 0;
        while done < sectors {
            let n = (sectors - done).min(CHUNK);
            let buf = &mut staging[..(n * CD_SECTOR_SIZE) as usize];
            if !self.read_cd(lba + done, buf) {
                return Err(DmaFail::Io);
            }
            cursor.scatter(buf).map_err(DmaFail::Dma)?;
            done += n;
        }
        Ok(())
    }

    /// The 12-byte packet arrived: runs the command; whether INTRQ rises.
    pub(super) fn packet(&mut self, dma: bool) -> bool {
        let mut cdb = [0u8; PACKET_SIZE];
        let n = self.state.buf.len().min(PACKET_SIZE);
        cdb[..n].copy_from_slice(&self.state.buf[..n]);
        self.state.buf.clear();
        self.state.pos = 0;
        let opcode = cdb[0];
        let present = self.cd_sectors().is_some();
        let allows_attention = matches!(
            opcode,
            op::INQUIRY
                | op::REQUEST_SENSE
                | op::GET_CONFIGURATION
                | op::GET_EVENT_STATUS_NOTIFICATION
        );
        // A medium that appeared is reported as QEMU does: once NOT READY
        // (the tray seen open), then UNIT ATTENTION, then business as usual.
        if !allows_attention && present && self.state.cd_changed != 0 {
            if self.state.cd_changed == 1 {
                self.state.cd_changed = 2;
                return self.atapi_error(sense::NOT_READY, asc::MEDIUM_NOT_PRESENT, 0);
            }
            self.state.cd_changed = 0;
            return self.atapi_error(sense::UNIT_ATTENTION, asc::MEDIUM_MAY_HAVE_CHANGED, 0);
        }
        let needs_medium = matches!(
            opcode,
            op::TEST_UNIT_READY
                | op::READ_CAPACITY
                | op::READ_10
                | op::READ_12
                | op::SEEK_10
                | op::READ_TOC
                | op::READ_DISC_INFORMATION
        );
        if needs_medium && !present {
            return self.atapi_error(sense::NOT_READY, asc::MEDIUM_NOT_PRESENT, 0);
        }
        let sectors = self.cd_sectors().unwrap_or(0);
        match opcode {
            op::TEST_UNIT_READY | op::START_STOP_UNIT | op::SET_CD_SPEED => self.atapi_ok(),
            op::PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.state.locked = cdb[4] & 1 != 0;
                self.atapi_ok()
            }
            op::REQUEST_SENSE => {
                let mut d = vec![0u8; 18];
                d[0] = 0x70;
                d[2] = self.state.sense[0];
                d[7] = 10;
                d[12] = self.state.sense[1];
                d[13] = self.state.sense[2];
                self.reply(d, u64::from(cdb[4]), dma)
            }
            op::INQUIRY => {
                if cdb[1] & 1 != 0 {
                    // No vital product data pages.
                    return self.invalid_field();
                }
                let mut d = vec![0u8; 36];
                d[0] = 0x05; // CD/DVD device
                d[1] = 0x80; // removable
                d[3] = 0x21; // ATAPI, response format 1
                d[4] = 31;
                put_padded(&mut d[8..16], "QEMU");
                put_padded(&mut d[16..32], "QEMU DVD-ROM");
                put_padded(&mut d[32..36], "2.5+");
                self.reply(d, u64::from(cdb[4]), dma)
            }
            op::READ_CAPACITY => {
                let mut d = vec![0u8; 8];
                d[..4].copy_from_slice(&(sectors.saturating_sub(1) as u32).to_be_bytes());
                d[4..].copy_from_slice(&(CD_SECTOR_SIZE as u32).to_be_bytes());
                self.reply(d, 8, dma)
            }
            op::READ_10 | op::READ_12 => {
                let lba = be32(&cdb[2..6]);
                let count = if opcode == op::READ_10 {
                    be16(&cdb[7..9])
                } else {
                    be32(&cdb[6..10])
                };
                if count == 0 {
                    return self.atapi_ok();
                }
                if lba + count > sectors {
                    return self.atapi_error(sense::ILLEGAL_REQUEST, asc::LBA_OUT_OF_RANGE, 0);
                }
                self.start_data(count * CD_SECTOR_SIZE, lba, count, dma)
            }
            op::SEEK_10 => {
                if be32(&cdb[2..6]) >= sectors {
                    return self.atapi_error(sense::ILLEGAL_REQUEST, asc::LBA_OUT_OF_RANGE, 0);
                }
                self.atapi_ok()
            }
            op::READ_TOC => self.read_toc(&cdb, sectors, dma),
            op::MODE_SENSE_10 => self.mode_sense(&cdb, dma),
            op::GET_CONFIGURATION => {
                if cdb[1] & 3 == 3 {
                    return self.invalid_field();
                }
                let profile = match self.cd_sectors() {
                    Some(n) if n > CD_MAX_SECTORS => PROFILE_DVD_ROM,
                    Some(_) => PROFILE_CD_ROM,
                    None => 0,
                };
                let mut d = vec![0u8; 8];
                d[6..8].copy_from_slice(&profile.to_be_bytes());
                // Profile list: DVD-ROM and CD-ROM, the current one flagged.
                d.extend_from_slice(&[0x00, 0x00, 0x03, 0x08]);
                for p in [PROFILE_DVD_ROM, PROFILE_CD_ROM] {
                    d.extend_from_slice(&p.to_be_bytes());
                    d.extend_from_slice(&[u8::from(p == profile), 0]);
                }
                // Core: ATAPI interface, device busy events.
                d.extend_from_slice(&[0x00, 0x01, 0x0b, 0x08, 0, 0, 0, 2, 1, 0, 0, 0]);
                // Removable medium: tray, eject, lock.
                d.extend_from_slice(&[0x00, 0x03, 0x03, 0x04, 0x29, 0, 0, 0]);
                let len = (d.len() - 4) as u32;
                d[..4].copy_from_slice(&len.to_be_bytes());
                self.reply(d, be16(&cdb[7..9]), dma)
            }
            op::GET_EVENT_STATUS_NOTIFICATION => {
                if cdb[1] & 1 == 0 {
                    // Only polled notification.
                    return self.invalid_field();
                }
                let mut d = vec![0u8; 4];
                d[3] = 0x10; // supports the media class
                if cdb[4] & 0x10 != 0 {
                    d[1] = 6;
                    d[2] = 4;
                    let event = if self.state.new_media { 2 } else { 0 };
                    self.state.new_media = false;
                    d.extend_from_slice(&[event, if present { 2 } else { 0 }, 0, 0]);
                } else {
                    d[1] = 2;
                    d[2] = 0x80; // no event available
                }
                self.reply(d, be16(&cdb[7..9]), dma)
            }
            op::READ_DISC_INFORMATION => {
                if cdb[1] & 7 != 0 {
                    return self.invalid_field();
                }
                let mut d = vec![0u8; 34];
                d[1] = 32;
                d[2] = 0x0e; // complete session, finalized disc
                d[3] = 1; // first track
                d[4] = 1; // sessions
                d[5] = 1; // first track of the last session
                d[6] = 1; // last track of the last session
                d[7] = 0x20; // unrestricted use
                self.reply(d, be16(&cdb[7..9]), dma)
            }
            op::MECHANISM_STATUS => {
                let mut d = vec![0u8; 8];
                d[5] = 1; // one slot
                self.reply(d, be16(&cdb[8..10]), dma)
            }
            _ => self.atapi_error(sense::ILLEGAL_REQUEST, asc::INVALID_OPCODE, 0),
        }
    }

    /// READ TOC/PMA/ATIP formats 0 (tracks) and 1 (sessions): one data track.
    fn read_toc(&mut self, cdb: &[u8; PACKET_SIZE], sectors: u64, dma: bool) -> bool {
        let as_msf = cdb[1] & 2 != 0;
        let format = match cdb[2] & 0x0f {
            // Old drivers put the format in the control byte's top bits.
            0 => cdb[9] >> 6,
            f => f,
        };
        let alloc = be16(&cdb[7..9]);
        let mut d = vec![0u8, 0, 1, 1];
        match format {
            0 => {
                let start = cdb[6];
                if start > 1 && start != 0xaa {
                    return self.invalid_field();
                }
                if start <= 1 {
                    d.extend_from_slice(&[0, 0x14, 1, 0]);
                    d.extend_from_slice(&address(0, as_msf));
                }
                d.extend_from_slice(&[0, 0x14, 0xaa, 0]);
                d.extend_from_slice(&address(sectors, as_msf));
            }
            1 => {
                d.extend_from_slice(&[0, 0x14, 1, 0]);
                d.extend_from_slice(&address(0, as_msf));
            }
            _ => return self.invalid_field(),
        }
        let len = (d.len() - 2) as u16;
        d[..2].copy_from_slice(&len.to_be_bytes());
        self.reply(d, alloc, dma)
    }

    /// MODE SENSE(10): the error recovery page (0x01) and the capabilities
    /// page (0x2A), or both (0x3F).
    fn mode_sense(&mut self, cdb: &[u8; PACKET_SIZE], dma: bool) -> bool {
        let control = cdb[2] >> 6;
        let page = cdb[2] & 0x3f;
        if control == 3 {
            return self.atapi_error(sense::ILLEGAL_REQUEST, asc::SAVING_NOT_SUPPORTED, 0);
        }
        let changeable = control == 1;
        let recovery: Vec<u8> = if changeable {
            vec![0x01, 0x06, 0, 0, 0, 0, 0, 0]
        } else {
            vec![0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0]
        };
        let mut caps = vec![0u8; 22];
        caps[0] = 0x2a;
        caps[1] = 20;
        if !changeable {
            caps[2] = 0x3b; // reads CD-R, CD-RW, method 2, DVD-ROM
            caps[4] = 0x71; // audio play, composite, digital ports, multi-session
            caps[5] = 0xff; // CD-DA and sub-channel capabilities
            // Tray loading, eject, lock, and whether it is locked.
            caps[6] = 0x2d | u8::from(self.state.locked) << 1;
            caps[8..10].copy_from_slice(&706u16.to_be_bytes()); // max speed, kB/s
            caps[10..12].copy_from_slice(&2u16.to_be_bytes()); // volume levels
            caps[12..14].copy_from_slice(&512u16.to_be_bytes()); // buffer, KiB
            caps[14..16].copy_from_slice(&706u16.to_be_bytes()); // current speed
        }
        let mut d = vec![0u8; 8];
        d[2] = 0x70; // medium type, as QEMU
        match page {
            0x01 => d.extend_from_slice(&recovery),
            0x2a => d.extend_from_slice(&caps),
            0x3f => {
                d.extend_from_slice(&recovery);
                d.extend_from_slice(&caps);
            }
            _ => return self.invalid_field(),
        }
        let len = (d.len() - 2) as u16;
        d[..2].copy_from_slice(&len.to_be_bytes());
        self.reply(d, be16(&cdb[7..9]), dma)
    }
}

/// `text` left-aligned in `field`, space padded (SCSI ASCII fields).
fn put_padded(field: &mut [u8], text: &str) {
    for (i, b) in field.iter_mut().enumerate() {
        *b = text.as_bytes().get(i).copied().unwrap_or(b' ');
    }
}
