//! A standard VGA adapter with the Bochs VBE extensions, the display half of
//! QEMU's `-vga std` (its PCI function is [`crate::pci::StdVga`]).
//!
//! [`Vga`] holds everything the guest sees: the VGA register file (misc
//! output, sequencer, graphics controller, attribute controller, CRTC, DAC),
//! the video memory as four interleaved planes (byte `4 * a + p` is plane `p`
//! at address `a`, as QEMU lays it out, so chain-4 and the VBE linear
//! framebuffer are the same bytes), and the VBE dispi registers ([`vbe`]).
//! It is shared through a [`VgaHandle`] by the three places that reach it:
//! the PCI function (ports, BARs and the lifecycle), the legacy memory window
//! at 0xA0000 ([`VgaMemoryWindow`], a bus device of its own) and the screen
//! ([`VgaHandle::snapshot`], which renders on demand, so guest writes cost no
//! drawing).
//!
//! Register semantics follow QEMU's `hw/display/vga.c`, including its
//! simplifications: the input status register toggles its retrace bits on
//! every read instead of following a clock, and the DAC mask register is
//! ignored.

mod render;
#[cfg(test)]
mod tests;
pub mod vbe;

use std::sync::{Arc, Mutex, MutexGuard};

use emu_core::sync::LockRecover;
use emu_core::{BusFault, Device, DeviceState, MmioDevice, StateError};
use serde::{Deserialize, Serialize};

use crate::state::{NoState, invalid};
use crate::virtio::Display;
use vbe::Vbe;

/// Where the legacy memory window starts in guest-physical memory.
pub const MEMORY_WINDOW_BASE: u64 = 0xa_0000;
/// Its size: 0xA0000 to 0xBFFFF.
pub const MEMORY_WINDOW_SIZE: u64 = 0x2_0000;
/// Video memory QEMU gives `-vga std` by default.
pub const DEFAULT_VRAM_SIZE: usize = 16 << 20;
/// The smallest video memory accepted (the VGA modes need 256 KiB; QEMU's
/// smallest `vgamem_mb` is 1).
pub const MIN_VRAM_SIZE: usize = 1 << 20;
/// The largest (QEMU's limit, 512 MiB, would not fit the 16-bit
/// VIDEO_MEMORY_64K register either).
pub const MAX_VRAM_SIZE: usize = 256 << 20;

/// First and last legacy VGA port the adapter decodes.
pub const FIRST_PORT: u16 = 0x3b0;
/// See [`FIRST_PORT`].
pub const LAST_PORT: u16 = 0x3df;

/// Port numbers of the VGA registers (those QEMU registers; the others in
/// 0x3B0-0x3DF are left to other devices).
pub mod port {
    /// CRTC index, monochrome.
    pub const CRTC_INDEX_MONO: u16 = 0x3b4;
    /// CRTC data, monochrome.
    pub const CRTC_DATA_MONO: u16 = 0x3b5;
    /// Input status 1 (read) and feature control (write), monochrome.
    pub const STATUS1_MONO: u16 = 0x3ba;
    /// Attribute controller index and data writes (the flip-flop decides).
    pub const ATTR_WRITE: u16 = 0x3c0;
    /// Attribute controller data read.
    pub const ATTR_READ: u16 = 0x3c1;
    /// Misc output write, input status 0 read.
    pub const MISC_WRITE: u16 = 0x3c2;
    /// Sequencer index.
    pub const SEQ_INDEX: u16 = 0x3c4;
    /// Sequencer data.
    pub const SEQ_DATA: u16 = 0x3c5;
    /// DAC pixel mask (ignored, as in QEMU).
    pub const DAC_MASK: u16 = 0x3c6;
    /// DAC read index (write), DAC state (read).
    pub const DAC_READ_INDEX: u16 = 0x3c7;
    /// DAC write index.
    pub const DAC_WRITE_INDEX: u16 = 0x3c8;
    /// DAC data: red, green, blue in turn.
    pub const DAC_DATA: u16 = 0x3c9;
    /// Feature control read.
    pub const FEATURE_READ: u16 = 0x3ca;
    /// Misc output read.
    pub const MISC_READ: u16 = 0x3cc;
    /// Graphics controller index.
    pub const GC_INDEX: u16 = 0x3ce;
    /// Graphics controller data.
    pub const GC_DATA: u16 = 0x3cf;
    /// CRTC index, colour.
    pub const CRTC_INDEX_COLOR: u16 = 0x3d4;
    /// CRTC data, colour.
    pub const CRTC_DATA_COLOR: u16 = 0x3d5;
    /// Input status 1 (read) and feature control (write), colour.
    pub const STATUS1_COLOR: u16 = 0x3da;

    /// Whether QEMU's VGA answers `port`.
    pub fn decoded(port: u16) -> bool {
        matches!(
            port,
            0x3b4 | 0x3b5 | 0x3ba | 0x3c0..=0x3cf | 0x3d4 | 0x3d5 | 0x3da
        )
    }
}

/// Sequencer registers (index into SR).
pub(crate) mod sr {
    pub(crate) const CLOCK_MODE: usize = 1;
    pub(crate) const PLANE_WRITE: usize = 2;
    pub(crate) const CHAR_MAP: usize = 3;
    pub(crate) const MEMORY_MODE: usize = 4;
    /// Memory mode: chain 4.
    pub(crate) const CHAIN4: u8 = 0x08;
    /// Clock mode: 8-dot characters.
    pub(crate) const DOTS8: u8 = 0x01;
    /// Clock mode: halved dot clock (pixels twice as wide).
    pub(crate) const DOUBLE_DOT: u8 = 0x08;
}

/// Graphics controller registers.
pub(crate) mod gr {
    pub(crate) const SR_VALUE: usize = 0;
    pub(crate) const SR_ENABLE: usize = 1;
    pub(crate) const COMPARE_VALUE: usize = 2;
    pub(crate) const DATA_ROTATE: usize = 3;
    pub(crate) const READ_PLANE: usize = 4;
    pub(crate) const MODE: usize = 5;
    pub(crate) const MISC: usize = 6;
    pub(crate) const DONT_CARE: usize = 7;
    pub(crate) const BIT_MASK: usize = 8;
    /// Mode: host odd/even addressing.
    pub(crate) const ODD_EVEN: u8 = 0x10;
    /// Mode: read mode 1 (colour compare).
    pub(crate) const READ_MODE1: u8 = 0x08;
    /// Misc: graphics (not text) mode.
    pub(crate) const GRAPHICS: u8 = 0x01;
}

/// Attribute controller registers.
pub(crate) mod ar {
    pub(crate) const MODE: usize = 0x10;
    pub(crate) const PLANE_ENABLE: usize = 0x12;
    pub(crate) const COLOR_SELECT: usize = 0x14;
    /// The number of attribute registers.
    pub(crate) const COUNT: usize = 0x15;
    /// Index bit 5: palette address source; clear, the screen is blanked.
    pub(crate) const PAS: u8 = 0x20;
}

/// CRTC registers.
pub(crate) mod cr {
    pub(crate) const H_DISP: usize = 0x01;
    pub(crate) const OVERFLOW: usize = 0x07;
    pub(crate) const MAX_SCAN: usize = 0x09;
    pub(crate) const CURSOR_START: usize = 0x0a;
    pub(crate) const CURSOR_END: usize = 0x0b;
    pub(crate) const START_HI: usize = 0x0c;
    pub(crate) const START_LO: usize = 0x0d;
    pub(crate) const CURSOR_HI: usize = 0x0e;
    pub(crate) const CURSOR_LO: usize = 0x0f;
    pub(crate) const V_SYNC_END: usize = 0x11;
    pub(crate) const V_DISP_END: usize = 0x12;
    pub(crate) const OFFSET: usize = 0x13;
    pub(crate) const MODE: usize = 0x17;
    pub(crate) const LINE_COMPARE: usize = 0x18;
}

/// Writable bits of the sequencer registers (QEMU's `sr_mask`).
const SR_MASK: [u8; 8] = [0x03, 0x3d, 0x0f, 0x3f, 0x0e, 0x00, 0x00, 0xff];
/// Writable bits of the graphics controller registers (QEMU's `gr_mask`).
const GR_MASK: [u8; 16] = [
    0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff, 0, 0, 0, 0, 0, 0, 0,
];
/// Misc output bit 0: CRTC and status at 0x3Dx (colour) rather than 0x3Bx.
const MISC_COLOR: u8 = 0x01;
/// Input status 1: display disabled (blanking) and vertical retrace.
const ST01_TOGGLE: u8 = 0x09;

const KIND: &str = "std-vga";
const VERSION: u32 = 1;

/// Expands the four bits of `planes` to a byte mask per plane in a dword.
fn plane_mask(planes: u8) -> u32 {
    (0..4)
        .filter(|p| planes & (1 << p) != 0)
        .fold(0, |m, p| m | 0xff << (8 * p))
}

/// The VGA register file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Regs {
    pub(crate) misc: u8,
    pub(crate) st00: u8,
    pub(crate) st01: u8,
    pub(crate) fcr: u8,
    pub(crate) sr_index: u8,
    pub(crate) sr: [u8; 8],
    pub(crate) gr_index: u8,
    pub(crate) gr: [u8; 16],
    pub(crate) ar_index: u8,
    pub(crate) ar: [u8; ar::COUNT],
    /// false: the next 0x3C0 write is an index; true: data.
    pub(crate) ar_flip_flop: bool,
    pub(crate) cr_index: u8,
    /// 256 CRTC registers: QEMU keeps a full byte index.
    #[serde(with = "crate::state::hex_bytes")]
    pub(crate) cr: Vec<u8>,
    pub(crate) dac_state: u8,
    pub(crate) dac_sub_index: u8,
    pub(crate) dac_read_index: u8,
    pub(crate) dac_write_index: u8,
    pub(crate) dac_cache: [u8; 3],
    /// 256 RGB triples as written (6 bits, or 8 with the VBE 8-bit DAC).
    #[serde(with = "crate::state::hex_bytes")]
    pub(crate) palette: Vec<u8>,
    /// The four plane bytes the last planar read latched.
    pub(crate) latch: u32,
}

impl Regs {
    fn new() -> Regs {
        Regs {
            misc: 0,
            st00: 0,
            st01: 0,
            fcr: 0,
            sr_index: 0,
            sr: [0; 8],
            gr_index: 0,
            gr: [0; 16],
            ar_index: 0,
            ar: [0; ar::COUNT],
            ar_flip_flop: false,
            cr_index: 0,
            cr: vec![0; 256],
            dac_state: 0,
            dac_sub_index: 0,
            dac_read_index: 0,
            dac_write_index: 0,
            dac_cache: [0; 3],
            palette: vec![0; 768],
            latch: 0,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct VgaState {
    regs: Regs,
    vbe: Vbe,
    #[serde(with = "crate::state::hex_bytes")]
    vram: Vec<u8>,
}

/// The adapter's guest-visible state: registers and video memory.
#[derive(Debug)]
pub struct Vga {
    pub(crate) regs: Regs,
    pub(crate) vbe: Vbe,
    pub(crate) vram: Vec<u8>,
    /// Counts guest writes, so a viewer can tell a changed screen.
    frames: u64,
}

impl Vga {
    /// An adapter with `vram_size` bytes of video memory: a power of two from
    /// [`MIN_VRAM_SIZE`] to [`MAX_VRAM_SIZE`], or `None`.
    pub fn new(vram_size: usize) -> Option<Vga> {
        if !vram_size.is_power_of_two() || !(MIN_VRAM_SIZE..=MAX_VRAM_SIZE).contains(&vram_size) {
            return None;
        }
        Some(Vga {
            regs: Regs::new(),
            vbe: Vbe::new(),
            vram: vec![0; vram_size],
            frames: 1,
        })
    }

    /// The size of video memory in bytes.
    pub fn vram_size(&self) -> usize {
        self.vram.len()
    }

    /// Video memory as the linear framebuffer (BAR 0) sees it.
    pub fn vram(&self) -> &[u8] {
        &self.vram
    }

    fn touch(&mut self) {
        self.frames = self.frames.wrapping_add(1).max(1);
    }

    /// Back to power-on: registers zero, VBE off, video memory cleared.
    pub fn reset(&mut self) {
        self.regs = Regs::new();
        self.vbe = Vbe::new();
        self.vram.fill(0);
        self.touch();
    }

    /// The CRTC ports answer at 0x3Bx or 0x3Dx by misc output bit 0; the
    /// other block reads as all ones and ignores writes.
    fn port_unanswered(&self, port: u16) -> bool {
        if self.regs.misc & MISC_COLOR != 0 {
            (0x3b0..=0x3bf).contains(&port)
        } else {
            (0x3d0..=0x3df).contains(&port)
        }
    }

    /// A byte read of legacy VGA port `port` (0x3B0-0x3DF).
    pub fn port_read(&mut self, port: u16) -> u8 {
        if self.port_unanswered(port) {
            return 0xff;
        }
        let r = &mut self.regs;
        match port {
            port::ATTR_WRITE => {
                if r.ar_flip_flop {
                    0
                } else {
                    r.ar_index
                }
            }
            port::ATTR_READ => {
                r.ar.get(usize::from(r.ar_index & 0x1f))
                    .copied()
                    .unwrap_or(0)
            }
            port::MISC_WRITE => r.st00,
            port::SEQ_INDEX => r.sr_index,
            port::SEQ_DATA => r.sr[usize::from(r.sr_index & 7)],
            port::DAC_READ_INDEX => r.dac_state,
            port::DAC_WRITE_INDEX => r.dac_write_index,
            port::DAC_DATA => {
                let at = usize::from(r.dac_read_index) * 3 + usize::from(r.dac_sub_index);
                let value = r.palette[at];
                r.dac_sub_index += 1;
                if r.dac_sub_index == 3 {
                    r.dac_sub_index = 0;
                    r.dac_read_index = r.dac_read_index.wrapping_add(1);
                }
                value
            }
            port::FEATURE_READ => r.fcr,
            port::MISC_READ => r.misc,
            port::GC_INDEX => r.gr_index,
            port::GC_DATA => r.gr[usize::from(r.gr_index & 0x0f)],
            port::CRTC_INDEX_MONO | port::CRTC_INDEX_COLOR => r.cr_index,
            port::CRTC_DATA_MONO | port::CRTC_DATA_COLOR => r.cr[usize::from(r.cr_index)],
            port::STATUS1_MONO | port::STATUS1_COLOR => {
                // No clock drives retrace: toggling lets polling loops end.
                r.st01 ^= ST01_TOGGLE;
                r.ar_flip_flop = false;
                r.st01
            }
            _ => 0,
        }
    }

    /// A byte write of legacy VGA port `port`.
    pub fn port_write(&mut self, port: u16, value: u8) {
        if self.port_unanswered(port) {
            return;
        }
        self.touch();
        let r = &mut self.regs;
        match port {
            port::ATTR_WRITE => {
                if r.ar_flip_flop {
                    let index = usize::from(r.ar_index & 0x1f);
                    let masked = match index {
                        0x00..=0x0f => value & 0x3f,
                        ar::MODE => value & !0x10,
                        0x11 => value,
                        ar::PLANE_ENABLE => value & !0xc0,
                        0x13 | ar::COLOR_SELECT => value & !0xf0,
                        _ => 0,
                    };
                    if let Some(slot) = r.ar.get_mut(index) {
                        *slot = masked;
                    }
                } else {
                    r.ar_index = value & 0x3f;
                }
                r.ar_flip_flop = !r.ar_flip_flop;
            }
            port::MISC_WRITE => r.misc = value & !0x10,
            port::SEQ_INDEX => r.sr_index = value & 7,
            port::SEQ_DATA => {
                let i = usize::from(r.sr_index & 7);
                r.sr[i] = value & SR_MASK[i];
            }
            port::DAC_READ_INDEX => {
                r.dac_read_index = value;
                r.dac_sub_index = 0;
                r.dac_state = 3;
            }
            port::DAC_WRITE_INDEX => {
                r.dac_write_index = value;
                r.dac_sub_index = 0;
                r.dac_state = 0;
            }
            port::DAC_DATA => {
                r.dac_cache[usize::from(r.dac_sub_index)] = value;
                r.dac_sub_index += 1;
                if r.dac_sub_index == 3 {
                    let at = usize::from(r.dac_write_index) * 3;
                    r.palette[at..at + 3].copy_from_slice(&r.dac_cache);
                    r.dac_sub_index = 0;
                    r.dac_write_index = r.dac_write_index.wrapping_add(1);
                }
            }
            port::GC_INDEX => r.gr_index = value & 0x0f,
            port::GC_DATA => {
                let i = usize::from(r.gr_index & 0x0f);
                r.gr[i] = value & GR_MASK[i];
                self.vbe_update_vga_regs();
            }
            port::CRTC_INDEX_MONO | port::CRTC_INDEX_COLOR => r.cr_index = value,
            port::CRTC_DATA_MONO | port::CRTC_DATA_COLOR => {
                let i = usize::from(r.cr_index);
                // CR11 bit 7 write-protects CR0-CR7, all but the line
                // compare's bit 8 in the overflow register.
                if r.cr[cr::V_SYNC_END] & 0x80 != 0 && i <= cr::OVERFLOW {
                    if i == cr::OVERFLOW {
                        r.cr[i] = (r.cr[i] & !0x10) | (value & 0x10);
                    }
                } else {
                    r.cr[i] = value;
                }
            }
            port::STATUS1_MONO | port::STATUS1_COLOR => r.fcr = value & 0x10,
            _ => {}
        }
    }

    /// A read of the VBE index (`data` false) or data register.
    pub fn vbe_read(&self, data: bool) -> u16 {
        if data {
            self.vbe.read_data(self.vram.len())
        } else {
            self.vbe.index
        }
    }

    /// A write of the VBE index (`data` false) or data register.
    pub fn vbe_write(&mut self, data: bool, value: u16) {
        self.touch();
        if !data {
            self.vbe.index = value;
            return;
        }
        let clear = self.vbe.write_data(value, self.vram.len());
        self.vram[..clear].fill(0);
        if matches!(
            self.vbe.index,
            vbe::index::XRES
                | vbe::index::YRES
                | vbe::index::BPP
                | vbe::index::VIRT_WIDTH
                | vbe::index::X_OFFSET
                | vbe::index::Y_OFFSET
                | vbe::index::ENABLE
        ) {
            self.vbe_update_vga_regs();
        }
    }

    /// While a VBE mode is on, keeps the VGA registers in a state that shows
    /// it: graphics mode with the 64 KiB window at 0xA0000 (the bank), chain-4
    /// for the packed depths, and CRTC values describing the mode. QEMU does
    /// this so software reading the VGA registers sees a consistent mode.
    fn vbe_update_vga_regs(&mut self) {
        if !self.vbe.enabled() {
            return;
        }
        let (xres, yres, bpp) = self.vbe.mode();
        let r = &mut self.regs;
        r.gr[gr::MISC] = (r.gr[gr::MISC] & !0x0c) | 0x04 | gr::GRAPHICS;
        r.cr[cr::MODE] |= 3;
        r.cr[cr::OFFSET] = (self.vbe.line_offset >> 3) as u8;
        r.cr[cr::H_DISP] = ((xres >> 3) as u8).wrapping_sub(1);
        let h = yres.wrapping_sub(1);
        r.cr[cr::V_DISP_END] = h as u8;
        r.cr[cr::OVERFLOW] =
            (r.cr[cr::OVERFLOW] & !0x42) | ((h >> 7) & 0x02) as u8 | ((h >> 3) & 0x40) as u8;
        r.cr[cr::LINE_COMPARE] = 0xff;
        r.cr[cr::OVERFLOW] |= 0x10;
        r.cr[cr::MAX_SCAN] |= 0x40;
        let shift_control = if bpp == 4 {
            r.sr[sr::CLOCK_MODE] &= !sr::DOUBLE_DOT;
            0
        } else {
            r.sr[sr::MEMORY_MODE] |= sr::CHAIN4;
            r.sr[sr::PLANE_WRITE] |= 0x0f;
            2
        };
        r.gr[gr::MODE] = (r.gr[gr::MODE] & !0x60) | (shift_control << 5);
        r.cr[cr::MAX_SCAN] &= !0x9f;
    }

    /// Where a legacy window offset lands: its address in plane terms, or
    /// `None` outside the part the memory map select opens.
    fn window_address(&self, offset: u64) -> Option<usize> {
        let offset = (offset & 0x1_ffff) as usize;
        match (self.regs.gr[gr::MISC] >> 2) & 3 {
            0 => Some(offset),
            1 => (offset < 0x1_0000).then(|| offset + self.vbe.bank_offset()),
            2 => offset.checked_sub(0x1_0000).filter(|&a| a < 0x8000),
            _ => offset.checked_sub(0x1_8000).filter(|&a| a < 0x8000),
        }
    }

    fn dword(&self, addr: usize) -> Option<u32> {
        let at = addr.checked_mul(4)?;
        let bytes = self.vram.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    /// A byte read at `offset` into the legacy window (0 is 0xA0000).
    pub fn mem_read(&mut self, offset: u64) -> u8 {
        let Some(addr) = self.window_address(offset) else {
            return 0xff;
        };
        let r = &self.regs;
        if r.sr[sr::MEMORY_MODE] & sr::CHAIN4 != 0 {
            return self.vram.get(addr).copied().unwrap_or(0xff);
        }
        if r.gr[gr::MODE] & gr::ODD_EVEN != 0 {
            let plane = usize::from(r.gr[gr::READ_PLANE] & 2) | (addr & 1);
            let at = ((addr & !1) << 1) | plane;
            return self.vram.get(at).copied().unwrap_or(0xff);
        }
        let Some(latch) = self.dword(addr) else {
            return 0xff;
        };
        self.regs.latch = latch;
        let r = &self.regs;
        if r.gr[gr::MODE] & gr::READ_MODE1 == 0 {
            (latch >> (8 * u32::from(r.gr[gr::READ_PLANE] & 3))) as u8
        } else {
            // Colour compare: a bit is set where every plane that is not a
            // "don't care" matches the compare colour.
            let mut diff =
                (latch ^ plane_mask(r.gr[gr::COMPARE_VALUE])) & plane_mask(r.gr[gr::DONT_CARE]);
            diff |= diff >> 16;
            diff |= diff >> 8;
            !(diff as u8)
        }
    }

    /// A byte write at `offset` into the legacy window.
    pub fn mem_write(&mut self, offset: u64, value: u8) {
        let Some(addr) = self.window_address(offset) else {
            return;
        };
        self.touch();
        let r = &self.regs;
        let enabled = r.sr[sr::PLANE_WRITE];
        if r.sr[sr::MEMORY_MODE] & sr::CHAIN4 != 0 {
            if enabled & (1 << (addr & 3)) != 0
                && let Some(byte) = self.vram.get_mut(addr)
            {
                *byte = value;
            }
            return;
        }
        if r.gr[gr::MODE] & gr::ODD_EVEN != 0 {
            let plane = usize::from(r.gr[gr::READ_PLANE] & 2) | (addr & 1);
            if enabled & (1 << plane) != 0
                && let Some(byte) = self.vram.get_mut(((addr & !1) << 1) | plane)
            {
                *byte = value;
            }
            return;
        }
        let Some(old) = self.dword(addr) else {
            return;
        };
        let latch = r.latch;
        let rotate = |v: u8| v.rotate_right(u32::from(r.gr[gr::DATA_ROTATE] & 7));
        let fill = |b: u8| u32::from_le_bytes([b; 4]);
        let (data, bit_mask) = match r.gr[gr::MODE] & 3 {
            0 => {
                let set = plane_mask(r.gr[gr::SR_ENABLE]);
                let data = (fill(rotate(value)) & !set) | (plane_mask(r.gr[gr::SR_VALUE]) & set);
                (Some(data), r.gr[gr::BIT_MASK])
            }
            // Write mode 1 copies the latches, bypassing the ALU and bit mask.
            1 => (None, 0),
            2 => (Some(plane_mask(value & 0x0f)), r.gr[gr::BIT_MASK]),
            _ => (
                Some(plane_mask(r.gr[gr::SR_VALUE])),
                r.gr[gr::BIT_MASK] & rotate(value),
            ),
        };
        let new = match data {
            None => latch,
            Some(data) => {
                let data = match r.gr[gr::DATA_ROTATE] >> 3 {
                    0 => data,
                    1 => data & latch,
                    2 => data | latch,
                    _ => data ^ latch,
                };
                let bits = fill(bit_mask);
                (data & bits) | (latch & !bits)
            }
        };
        let write = plane_mask(enabled);
        let value = (old & !write) | (new & write);
        let at = addr * 4;
        self.vram[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// A read at `offset` into the linear framebuffer (BAR 0), little-endian;
    /// past the end reads as all ones.
    pub fn lfb_read(&self, offset: u64, size: u8) -> u64 {
        let size = usize::from(size.clamp(1, 8));
        let Some(bytes) = usize::try_from(offset)
            .ok()
            .and_then(|at| self.vram.get(at..at.checked_add(size)?))
        else {
            return u64::MAX >> (64 - 8 * size);
        };
        bytes.iter().rev().fold(0, |v, &b| v << 8 | u64::from(b))
    }

    /// A write into the linear framebuffer.
    pub fn lfb_write(&mut self, offset: u64, size: u8, value: u64) {
        let size = usize::from(size.clamp(1, 8));
        self.touch();
        if let Some(bytes) = usize::try_from(offset)
            .ok()
            .and_then(|at| self.vram.get_mut(at..at.checked_add(size)?))
        {
            bytes.copy_from_slice(&value.to_le_bytes()[..size]);
        }
    }

    /// What the screen shows now, rendered from the registers and memory.
    pub fn snapshot(&self) -> Display {
        let mut display = render::render(self);
        display.frames = self.frames;
        display
    }

    /// The guest-visible state.
    pub fn save_state(&self) -> DeviceState {
        DeviceState::encode(
            KIND,
            VERSION,
            &VgaState {
                regs: self.regs.clone(),
                vbe: self.vbe.clone(),
                vram: self.vram.clone(),
            },
        )
    }

    /// Takes a state saved from an adapter with the same video memory size;
    /// on an error nothing changes.
    pub fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let state: VgaState = state.decode(KIND, VERSION)?;
        if state.vram.len() != self.vram.len() {
            return Err(invalid(
                KIND,
                format!(
                    "{} bytes of video memory saved, the adapter has {}",
                    state.vram.len(),
                    self.vram.len()
                ),
            ));
        }
        if state.regs.cr.len() != 256 || state.regs.palette.len() != 768 {
            return Err(invalid(KIND, "CRTC or palette of the wrong size"));
        }
        if state.regs.dac_sub_index > 2 {
            return Err(invalid(KIND, "DAC component index past blue"));
        }
        state
            .vbe
            .check(self.vram.len())
            .map_err(|reason| invalid(KIND, reason))?;
        self.regs = state.regs;
        self.vbe = state.vbe;
        self.vram = state.vram;
        self.touch();
        Ok(())
    }
}

/// A shared [`Vga`]: the PCI function, the legacy memory window and the screen
/// each hold one.
///
/// Lock order: the PCI host's lock (held while the host calls the function)
/// comes before this one; nothing holding this lock takes the host's.
#[derive(Clone, Debug)]
pub struct VgaHandle(Arc<Mutex<Vga>>);

impl VgaHandle {
    /// Shares `vga`.
    pub fn new(vga: Vga) -> VgaHandle {
        VgaHandle(Arc::new(Mutex::new(vga)))
    }

    /// Locks the adapter (taking over a lock poisoned by a panic elsewhere).
    pub fn lock(&self) -> MutexGuard<'_, Vga> {
        self.0.lock_recover()
    }

    /// What the screen shows now (for a window's polling or a screenshot).
    pub fn snapshot(&self) -> Display {
        self.lock().snapshot()
    }

    /// The legacy memory window, to map at [`MEMORY_WINDOW_BASE`] with
    /// [`MEMORY_WINDOW_SIZE`].
    pub fn memory_window(&self) -> VgaMemoryWindow {
        VgaMemoryWindow { vga: self.clone() }
    }
}

/// The legacy video memory window 0xA0000-0xBFFFF as a bus device (offset 0 is
/// 0xA0000). Accesses wider than a byte are split into bytes, low address
/// first, as the ISA bus does.
///
/// The PCI function owns the adapter's lifecycle; this window's `reset`,
/// `save_state` and `restore_state` do nothing (an empty state), like the PCI
/// host's follower windows.
#[derive(Debug)]
pub struct VgaMemoryWindow {
    vga: VgaHandle,
}

impl Device for VgaMemoryWindow {
    fn reset(&mut self) {}

    fn save_state(&self) -> DeviceState {
        DeviceState::encode("std-vga-window", 1, &NoState {})
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let NoState {} = state.decode("std-vga-window", 1)?;
        Ok(())
    }
}

impl MmioDevice for VgaMemoryWindow {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let mut vga = self.vga.lock();
        // Lowest address first, so the latches hold what a byte-wise CPU
        // access would leave.
        let mut value = 0;
        for i in 0..u64::from(size.clamp(1, 8)) {
            value |= u64::from(vga.mem_read(offset.wrapping_add(i))) << (8 * i);
        }
        Ok(value)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let mut vga = self.vga.lock();
        for i in 0..u64::from(size.clamp(1, 8)) {
            vga.mem_write(offset.wrapping_add(i), (value >> (8 * i)) as u8);
        }
        Ok(())
    }
}
