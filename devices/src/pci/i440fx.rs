//! The Intel 440FX host bridge (PMC) as QEMU's `pc` machine has it at 00.0:
//! its IDs, and the Programmable Attribute Map registers (PAM0–PAM6) that
//! decide whether each block of the BIOS area (0xC0000–0xFFFFF) reads and
//! writes RAM or the ROM behind it. Firmware (SeaBIOS) copies itself to RAM
//! and write-protects it through them, so the machine must remap those
//! blocks when they change: [`I440fx::pam`] says how each block is set.

use super::config::{PciConfigSpace, PciIds};

/// Intel's vendor ID.
pub const INTEL_VENDOR_ID: u16 = 0x8086;
/// The 82441FX PMC's device ID.
pub const I440FX_DEVICE_ID: u16 = 0x1237;
/// Where PAM0 starts in configuration space; PAM0–PAM6 are seven bytes.
pub const PAM_OFFSET: u16 = 0x59;
/// The SMRAM control register.
pub const SMRAM_OFFSET: u16 = 0x72;
/// The blocks the PAM registers map: 0xF0000–0xFFFFF (64 KiB, PAM0's high
/// nibble), then twelve 16 KiB blocks from 0xC0000 to 0xEFFFF (PAM1–PAM6,
/// low nibble first).
pub const PAM_BLOCKS: usize = 13;

const KIND: &str = "i440fx";
const VERSION: u32 = 1;

/// How one block of the BIOS area is decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PamMode {
    /// Reads come from RAM (else from the ROM or the bus behind it).
    pub read_ram: bool,
    /// Writes go to RAM (else to the ROM side, where they are dropped).
    pub write_ram: bool,
}

impl PamMode {
    fn from_bits(bits: u8) -> PamMode {
        PamMode {
            read_ram: bits & 1 != 0,
            write_ram: bits & 2 != 0,
        }
    }
}

/// The start and length of PAM block `index` (see [`PAM_BLOCKS`]).
pub fn pam_block(index: usize) -> (u64, u64) {
    if index == 0 {
        (0xf_0000, 0x1_0000)
    } else {
        (0xc_0000 + 0x4000 * (index as u64 - 1), 0x4000)
    }
}

/// The i440FX host bridge function.
#[derive(Debug)]
pub struct I440fx {
    config: PciConfigSpace,
}

impl Default for I440fx {
    fn default() -> I440fx {
        I440fx::new()
    }
}

impl I440fx {
    /// The bridge at power-on: 8086:1237 revision 2, class 0600, QEMU's
    /// subsystem IDs, every PAM block decoding the ROM, SMRAM closed.
    pub fn new() -> I440fx {
        let mut config = PciConfigSpace::new(PciIds {
            vendor_id: INTEL_VENDOR_ID,
            device_id: I440FX_DEVICE_ID,
            class_code: 0x06_0000,
            revision_id: 0x02,
            subsystem_vendor_id: super::host::QEMU_SUBSYSTEM_VENDOR_ID,
            subsystem_id: super::host::QEMU_SUBSYSTEM_ID,
        });
        // PAM0's low nibble is reserved; each other nibble has RE and WE.
        config.set_writable(PAM_OFFSET, &[0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        // SMRAM: D_OPEN, D_CLS, D_LCK, G_SMRAME; the low bits read 0b010.
        config.set_initial(SMRAM_OFFSET, &[0x02]);
        config.set_writable(SMRAM_OFFSET, &[0x78]);
        I440fx { config }
    }

    /// How each of the [`PAM_BLOCKS`] blocks is decoded now.
    pub fn pam(&self) -> [PamMode; PAM_BLOCKS] {
        let mut modes = [PamMode::default(); PAM_BLOCKS];
        modes[0] = PamMode::from_bits(self.config.get_u8(PAM_OFFSET) >> 4);
        for (k, mode) in modes.iter_mut().enumerate().skip(1) {
            let byte = self.config.get_u8(PAM_OFFSET + 1 + (k as u16 - 1) / 2);
            let nibble = if (k - 1) % 2 == 0 { byte } else { byte >> 4 };
            *mode = PamMode::from_bits(nibble & 3);
        }
        modes
    }
}

super::config_only_function!(I440fx, KIND, VERSION);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::PciFunction;
    use emu_core::Device;

    #[test]
    fn ids_are_qemus() {
        let mut b = I440fx::new();
        assert_eq!(b.config_read(0, 4), 0x1237_8086);
        assert_eq!(b.config_read(8, 4) >> 8, 0x06_0000);
        assert_eq!(b.config_read(8, 1), 0x02);
    }

    #[test]
    fn pam_nibbles_map_the_bios_blocks() {
        let mut b = I440fx::new();
        assert!(b.pam().iter().all(|m| *m == PamMode::default()));
        // SeaBIOS's make_bios_writable: 0xF0000 read/write RAM (PAM0 = 0x30),
        // 0xC0000-0xC3FFF read-only RAM (PAM1 low nibble = 1).
        b.config_write(PAM_OFFSET, 1, 0x3f);
        b.config_write(PAM_OFFSET + 1, 1, 0x21);
        let pam = b.pam();
        assert_eq!(
            pam[0],
            PamMode {
                read_ram: true,
                write_ram: true
            }
        );
        assert_eq!(
            pam[1],
            PamMode {
                read_ram: true,
                write_ram: false
            }
        );
        assert_eq!(
            pam[2],
            PamMode {
                read_ram: false,
                write_ram: true
            }
        );
        // PAM0's reserved low nibble stays zero.
        assert_eq!(b.config_read(PAM_OFFSET, 1), 0x30);
        assert_eq!(pam_block(0), (0xf_0000, 0x1_0000));
        assert_eq!(pam_block(12), (0xe_c000, 0x4000));
        b.reset();
        assert_eq!(b.config_read(PAM_OFFSET, 1), 0);
    }

    #[test]
    fn smram_keeps_its_fixed_bits() {
        let mut b = I440fx::new();
        assert_eq!(b.config_read(SMRAM_OFFSET, 1), 0x02);
        b.config_write(SMRAM_OFFSET, 1, 0xff);
        assert_eq!(b.config_read(SMRAM_OFFSET, 1), 0x7a);
    }
}
