//! The Intel 440FX host bridge (PMC) as QEMU's `pc` machine has it at 00.0:
//! its IDs, and the Programmable Attribute Map registers (PAM0–PAM6) that
//! decide whether each block of the BIOS area (0xC0000–0xFFFFF) reads and
//! writes RAM or the ROM behind it. Firmware (SeaBIOS) copies itself to RAM
//! and write-protects it through them: a bridge made with
//! [`I440fx::with_shadow`] switches the machine's [`SwitchableMemory`] (16 KiB
//! blocks from 0xC0000) whenever they change; [`I440fx::pam`] says how each
//! block is set.

use std::sync::Arc;

use emu_core::switchable::{SwitchMode, SwitchableMemory};

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
/// Where the shadowed BIOS area starts.
pub const SHADOW_BASE: u64 = 0xc_0000;
/// The shadow memory's block size: PAM's smallest block.
pub const SHADOW_BLOCK: u64 = 0x4000;
/// 16 KiB blocks from 0xC0000 to 0xFFFFF.
pub const SHADOW_BLOCKS: usize = 16;

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
    /// The BIOS area's blocks the PAM registers switch, if wired to a machine.
    shadow: Option<Arc<SwitchableMemory>>,
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
        I440fx {
            config,
            shadow: None,
        }
    }

    /// The bridge steering `shadow`: [`SHADOW_BLOCKS`] blocks of
    /// [`SHADOW_BLOCK`] bytes from [`SHADOW_BASE`], set from the PAM
    /// registers now and after every change.
    pub fn with_shadow(shadow: Arc<SwitchableMemory>) -> I440fx {
        let mut bridge = I440fx::new();
        bridge.shadow = Some(shadow);
        bridge.apply_pam();
        bridge
    }

    /// Sets each shadow block as its PAM register says.
    fn apply_pam(&mut self) {
        let Some(shadow) = &self.shadow else {
            return;
        };
        for (k, mode) in self.pam().into_iter().enumerate() {
            let (base, len) = pam_block(k);
            let first = ((base - SHADOW_BASE) / SHADOW_BLOCK) as usize;
            let mode = SwitchMode {
                read_ram: mode.read_ram,
                write_ram: mode.write_ram,
            };
            for index in first..first + (len / SHADOW_BLOCK) as usize {
                shadow.set_mode(index, mode);
            }
        }
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

super::config_only_function!(I440fx, KIND, VERSION, I440fx::apply_pam);

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
    fn pam_writes_switch_the_shadow_memory() {
        use emu_core::switchable::SwitchableBlock;
        use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};
        let ram = Arc::new(GuestRam::new(0x20_0000).unwrap());
        let mut bus = Bus::with_backing(ram.clone(), Arc::new(RunControl::new()));
        let blocks: Vec<SwitchableBlock> = (0..SHADOW_BLOCKS as u64)
            .map(|k| SwitchableBlock {
                ram_offset: SHADOW_BASE + k * SHADOW_BLOCK,
                rom_offset: 0x10_0000 + k * SHADOW_BLOCK,
            })
            .collect();
        let shadow = bus
            .map_switchable("shadow", GuestPhysAddr(SHADOW_BASE), SHADOW_BLOCK, &blocks)
            .unwrap();
        ram.write_bytes(0x10_0000 + 0x3_fff0, &[0xea]);
        let mut b = I440fx::with_shadow(shadow.clone());
        let reset_vector = GuestPhysAddr(0xf_fff0);
        assert_eq!(bus.read(reset_vector, 1), Ok(0xea));
        // 0xF0000-0xFFFFF read/write RAM: all four of its 16 KiB blocks.
        b.config_write(PAM_OFFSET, 1, 0x30);
        for index in 12..16 {
            assert_eq!(
                shadow.mode(index),
                SwitchMode {
                    read_ram: true,
                    write_ram: true
                }
            );
        }
        assert_eq!(bus.read(reset_vector, 1), Ok(0));
        // PAM6's high nibble is 0xEC000-0xEFFFF, block 11.
        b.config_write(PAM_OFFSET + 6, 1, 0x10);
        assert!(shadow.mode(11).read_ram && !shadow.mode(11).write_ram);
        assert_eq!(shadow.mode(10), SwitchMode::default());
        b.reset();
        assert!((0..SHADOW_BLOCKS).all(|k| shadow.mode(k) == SwitchMode::default()));
    }

    #[test]
    fn smram_keeps_its_fixed_bits() {
        let mut b = I440fx::new();
        assert_eq!(b.config_read(SMRAM_OFFSET, 1), 0x02);
        b.config_write(SMRAM_OFFSET, 1, 0xff);
        assert_eq!(b.config_read(SMRAM_OFFSET, 1), 0x7a);
    }
}
