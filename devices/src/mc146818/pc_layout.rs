//! The CMOS memory bytes a PC's firmware reads, filled as QEMU's `pc` machine
//! fills them (its `pc_cmos_init`): memory sizes, CPU count, boot order and
//! floppy drives. SeaBIOS reads the memory sizes when fw_cfg gives it no
//! `etc/e820`, and the boot order when there is no `bootorder` file.
//!
//! Hard-disk geometry (bytes 0x12, 0x19, 0x1a and 0x1b onwards) is not
//! filled: SeaBIOS probes ATA drives itself, and QEMU leaves those bytes 0
//! when no IDE disk is attached.

use thiserror::Error;

use super::Mc146818;

/// Shutdown status: why the CPU was reset (firmware resumes by it).
pub const SHUTDOWN_STATUS: u8 = 0x0f;
/// Floppy drive types: drive 0 in the high nibble, drive 1 in the low.
pub const FLOPPY_TYPES: u8 = 0x10;
/// Equipment byte: floppy drives present, FPU, PS/2 mouse.
pub const EQUIPMENT: u8 = 0x14;
/// Base memory in KiB (at most 640), low byte; the high byte follows.
pub const BASE_MEMORY: u8 = 0x15;
/// Memory above 1 MiB in KiB (at most 65535), low byte; the high byte follows.
pub const EXTENDED_MEMORY: u8 = 0x17;
/// A second copy of [`EXTENDED_MEMORY`], low byte; the high byte follows.
pub const EXTENDED_MEMORY_COPY: u8 = 0x30;
/// Boot device 3 (high nibble) and the floppy signature check (bit 0 set to skip it).
pub const BOOT_ORDER_THIRD: u8 = 0x38;
/// Memory between 16 MiB and 4 GiB in 64 KiB units (at most 65535), low byte;
/// the high byte follows.
pub const MEMORY_ABOVE_16M: u8 = 0x34;
/// Boot devices 1 (low nibble) and 2 (high nibble).
pub const BOOT_ORDER_FIRST: u8 = 0x3d;
/// Memory above 4 GiB in 64 KiB units, 24 bits, low byte first (0x5b-0x5d).
pub const MEMORY_ABOVE_4G: u8 = 0x5b;
/// Number of CPUs minus one.
pub const CPU_COUNT_MINUS_ONE: u8 = 0x5f;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// Base memory never exceeds 640 KiB: above it lie video memory and ROMs.
const BASE_MEMORY_MAX_KIB: u64 = 640;
/// RAM this large or larger does not all fit below the PCI hole.
const PCI_HOLE_START: u64 = 0xe000_0000;
/// Where a `pc` machine with that much RAM ends low memory instead: at 3 GiB,
/// so guest addresses aligned at 1 GiB map to host addresses aligned at 1 GiB
/// (QEMU's `gigabyte_align`, on for every current machine version).
const GIGABYTE_ALIGNED_LOW_MEMORY: u64 = 3 * GIB;
/// The 64 KiB units of bytes 0x34 and 0x5b.
const CHUNK: u64 = 64 * KIB;
/// The equipment byte's bits QEMU always sets: an FPU and a PS/2 mouse.
const EQUIPMENT_FPU_AND_MOUSE: u8 = 0x06;
/// Equipment byte: one floppy drive, ready to boot.
const EQUIPMENT_ONE_FLOPPY: u8 = 0x01;
/// Equipment byte: two floppy drives, ready to boot.
const EQUIPMENT_TWO_FLOPPIES: u8 = 0x41;
/// Boot order byte 0x38, bit 0: skip the floppy boot-signature check.
const SKIP_FLOPPY_SIGNATURE_CHECK: u8 = 0x01;
/// A PC's CMOS holds three boot devices.
const MAX_BOOT_DEVICES: usize = 3;

/// How a `pc` machine places its RAM: up to 3.5 GiB below 4 GiB, the rest at
/// 4 GiB and up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcRamSplit {
    /// Bytes of RAM from address 0.
    pub below_4g: u64,
    /// Bytes of RAM from address 4 GiB.
    pub above_4g: u64,
}

impl PcRamSplit {
    /// The split QEMU's `pc` (i440FX) machine makes of `ram_size` bytes: all
    /// of it below 4 GiB if it is less than 3.5 GiB, otherwise 3 GiB below
    /// and the rest above.
    pub fn for_ram_size(ram_size: u64) -> PcRamSplit {
        let low_limit = if ram_size >= PCI_HOLE_START {
            GIGABYTE_ALIGNED_LOW_MEMORY
        } else {
            PCI_HOLE_START
        };
        let below_4g = ram_size.min(low_limit);
        PcRamSplit {
            below_4g,
            above_4g: ram_size - below_4g,
        }
    }
}

/// A floppy drive type, as byte 0x10 encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloppyDrive {
    /// 5¼" 1.2 MB.
    Size1200K,
    /// 3½" 1.44 MB.
    Size1440K,
    /// 3½" 2.88 MB.
    Size2880K,
}

impl FloppyDrive {
    fn cmos_type(self) -> u8 {
        match self {
            FloppyDrive::Size1200K => 2,
            FloppyDrive::Size1440K => 4,
            FloppyDrive::Size2880K => 5,
        }
    }
}

/// Why a boot order cannot go into the CMOS.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BootOrderError {
    /// More than three devices.
    #[error("boot order {0:?} names more than 3 devices, all a PC's CMOS holds")]
    TooMany(String),
    /// A letter other than a (floppy), c (disk), d (CD-ROM), n (network).
    #[error("boot device {0:?} is none of a, c, d, n")]
    Unknown(char),
}

/// The CMOS nibble for a QEMU `-boot order=` letter.
fn boot_nibble(device: char) -> Result<u8, BootOrderError> {
    match device {
        'a' => Ok(1),
        'c' => Ok(2),
        'd' => Ok(3),
        'n' => Ok(4),
        other => Err(BootOrderError::Unknown(other)),
    }
}

impl Mc146818 {
    fn set_u16(&mut self, index: u8, value: u64) {
        let value = value.min(u64::from(u16::MAX));
        self.set_byte(index, value as u8);
        self.set_byte(index + 1, (value >> 8) as u8);
    }

    /// Fills the memory-size bytes (0x15-0x18, 0x30-0x31, 0x34-0x35,
    /// 0x5b-0x5d) for RAM placed as `ram` says, each clamped to what its
    /// bytes can count, as QEMU's `pc` does.
    pub fn set_pc_memory(&mut self, ram: PcRamSplit) {
        let below = ram.below_4g;
        self.set_u16(BASE_MEMORY, (below / KIB).min(BASE_MEMORY_MAX_KIB));
        let extended = below.saturating_sub(MIB) / KIB;
        self.set_u16(EXTENDED_MEMORY, extended);
        self.set_u16(EXTENDED_MEMORY_COPY, extended);
        self.set_u16(MEMORY_ABOVE_16M, below.saturating_sub(16 * MIB) / CHUNK);
        let high = ram.above_4g / CHUNK;
        for (i, index) in (MEMORY_ABOVE_4G..MEMORY_ABOVE_4G + 3).enumerate() {
            self.set_byte(index, (high >> (8 * i)) as u8);
        }
    }

    /// Records the number of CPUs (byte 0x5f holds it minus one).
    pub fn set_pc_cpu_count(&mut self, cpus: u32) {
        self.set_byte(CPU_COUNT_MINUS_ONE, cpus.saturating_sub(1) as u8);
    }

    /// Records the boot order, as QEMU's `-boot order=` letters (`"cad"` is
    /// QEMU's default: disk, floppy, CD-ROM), and whether the BIOS checks a
    /// floppy's boot signature.
    pub fn set_pc_boot_order(
        &mut self,
        order: &str,
        check_floppy_signature: bool,
    ) -> Result<(), BootOrderError> {
        if order.chars().count() > MAX_BOOT_DEVICES {
            return Err(BootOrderError::TooMany(order.to_owned()));
        }
        let mut nibbles = [0u8; MAX_BOOT_DEVICES];
        for (slot, device) in nibbles.iter_mut().zip(order.chars()) {
            *slot = boot_nibble(device)?;
        }
        self.set_byte(BOOT_ORDER_FIRST, nibbles[1] << 4 | nibbles[0]);
        let check = if check_floppy_signature {
            0
        } else {
            SKIP_FLOPPY_SIGNATURE_CHECK
        };
        self.set_byte(BOOT_ORDER_THIRD, nibbles[2] << 4 | check);
        Ok(())
    }

    /// Records the floppy drives (byte 0x10) and the equipment byte (0x14),
    /// which also announces an FPU and a PS/2 mouse, as QEMU's always does.
    pub fn set_pc_floppy_drives(&mut self, drives: [Option<FloppyDrive>; 2]) {
        let kind = |d: Option<FloppyDrive>| d.map_or(0, FloppyDrive::cmos_type);
        self.set_byte(FLOPPY_TYPES, kind(drives[0]) << 4 | kind(drives[1]));
        let floppies = match drives.iter().flatten().count() {
            0 => 0,
            1 => EQUIPMENT_ONE_FLOPPY,
            _ => EQUIPMENT_TWO_FLOPPIES,
        };
        self.set_byte(EQUIPMENT, EQUIPMENT_FPU_AND_MOUSE | floppies);
    }
}
