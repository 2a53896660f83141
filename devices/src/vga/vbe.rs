//! The Bochs VBE "dispi" interface: an index register at port 0x1CE and a data
//! register at 0x1CF (and, on the PCI card, the same registers as 16-bit words
//! at 0x500 of the MMIO BAR). Through it the VGA BIOS and drivers (Linux's
//! `bochs-drm`, SeaVGABIOS's `bochsvga`) set a linear-framebuffer mode by
//! resolution and depth, skipping the VGA timing registers altogether.
//!
//! The checks follow what QEMU does with impossible values: a depth it does not
//! know becomes 8, widths round down to multiples of 8, the height is cut to
//! what fits in video memory, and a panning offset that runs past it is
//! dropped. So whatever a guest writes, the visible area lies inside VRAM.

use serde::{Deserialize, Serialize};

/// The index port.
pub const INDEX_PORT: u16 = 0x1ce;
/// The data port.
pub const DATA_PORT: u16 = 0x1cf;

/// Register indexes.
pub mod index {
    /// Interface version: the BIOS writes the version it speaks and reads back
    /// what the card agreed to.
    pub const ID: u16 = 0;
    /// Width in pixels.
    pub const XRES: u16 = 1;
    /// Height in pixels.
    pub const YRES: u16 = 2;
    /// Bits per pixel: 4, 8, 15, 16, 24 or 32.
    pub const BPP: u16 = 3;
    /// Enable bits, see [`super::enable`].
    pub const ENABLE: u16 = 4;
    /// The 64 KiB bank the legacy window shows when the LFB is off.
    pub const BANK: u16 = 5;
    /// Width of the virtual screen (the line pitch, in pixels).
    pub const VIRT_WIDTH: u16 = 6;
    /// Height of the virtual screen: read-only, what fits in VRAM.
    pub const VIRT_HEIGHT: u16 = 7;
    /// Horizontal panning offset.
    pub const X_OFFSET: u16 = 8;
    /// Vertical panning offset.
    pub const Y_OFFSET: u16 = 9;
    /// Video memory in 64 KiB units (read-only).
    pub const VIDEO_MEMORY_64K: u16 = 10;
}

/// Bits of the ENABLE register.
pub mod enable {
    /// The VBE mode is on (the VGA timing registers no longer matter).
    pub const ENABLED: u16 = 0x01;
    /// While set, XRES, YRES and BPP read as the card's maximums.
    pub const GETCAPS: u16 = 0x02;
    /// The DAC takes 8-bit rather than 6-bit colour components.
    pub const DAC_8BIT: u16 = 0x20;
    /// The linear framebuffer is in use (informational for the card).
    pub const LFB_ENABLED: u16 = 0x40;
    /// Enabling leaves VRAM as it is instead of clearing the visible part.
    pub const NOCLEARMEM: u16 = 0x80;
}

/// The first interface version.
pub const ID0: u16 = 0xb0c0;
/// The newest interface version QEMU speaks (and what reads back after reset).
pub const ID5: u16 = 0xb0c5;
/// The widest mode the card offers.
pub const MAX_XRES: u16 = 16000;
/// The tallest mode.
pub const MAX_YRES: u16 = 12000;
/// The deepest mode.
pub const MAX_BPP: u16 = 32;
/// Registers 0 to 9 are stored; VIDEO_MEMORY_64K is computed.
const STORED: usize = 10;

/// The dispi registers and what follows from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Vbe {
    /// The index register.
    pub(crate) index: u16,
    /// Registers [`index::ID`] to [`index::Y_OFFSET`].
    pub(crate) regs: [u16; STORED],
    /// Bytes per line of the virtual screen.
    pub(crate) line_offset: u32,
    /// Byte offset of the top-left visible pixel.
    pub(crate) start: u32,
}

impl Vbe {
    /// Power-on: everything zero but the version, as QEMU resets it.
    pub(crate) fn new() -> Vbe {
        let mut regs = [0; STORED];
        regs[usize::from(index::ID)] = ID5;
        Vbe {
            index: 0,
            regs,
            line_offset: 0,
            start: 0,
        }
    }

    fn reg(&self, i: u16) -> u16 {
        self.regs[usize::from(i)]
    }

    fn set(&mut self, i: u16, value: u16) {
        self.regs[usize::from(i)] = value;
    }

    /// Whether a VBE mode is on.
    pub(crate) fn enabled(&self) -> bool {
        self.reg(index::ENABLE) & enable::ENABLED != 0
    }

    /// Whether the DAC is in 8-bit mode.
    pub(crate) fn dac_8bit(&self) -> bool {
        self.reg(index::ENABLE) & enable::DAC_8BIT != 0
    }

    /// Width, height and depth (bits per pixel as set, 15 kept apart from 16).
    pub(crate) fn mode(&self) -> (u32, u32, u16) {
        (
            u32::from(self.reg(index::XRES)),
            u32::from(self.reg(index::YRES)),
            self.reg(index::BPP),
        )
    }

    /// Byte offset of the bank the legacy window shows.
    pub(crate) fn bank_offset(&self) -> usize {
        usize::from(self.reg(index::BANK)) << 16
    }

    /// A read of the data register.
    pub(crate) fn read_data(&self, vram_size: usize) -> u16 {
        let caps = self.reg(index::ENABLE) & enable::GETCAPS != 0;
        match self.index {
            index::XRES if caps => MAX_XRES,
            index::YRES if caps => MAX_YRES,
            index::BPP if caps => MAX_BPP,
            i if usize::from(i) < STORED => self.reg(i),
            index::VIDEO_MEMORY_64K => u16::try_from(vram_size >> 16).unwrap_or(u16::MAX),
            _ => 0,
        }
    }

    /// A write of the data register. Returns how many bytes at the start of
    /// VRAM to clear (when a mode is switched on without NOCLEARMEM).
    pub(crate) fn write_data(&mut self, value: u16, vram_size: usize) -> usize {
        match self.index {
            // Versions the card does not speak are ignored.
            index::ID if (ID0..=ID5).contains(&value) => self.set(index::ID, value),
            index::XRES
            | index::YRES
            | index::BPP
            | index::VIRT_WIDTH
            | index::X_OFFSET
            | index::Y_OFFSET => {
                self.set(self.index, value);
                self.fixup(vram_size);
            }
            index::BANK => {
                // As many banks as VRAM has 64 KiB blocks (a power of two).
                let banks = (vram_size >> 16).max(1);
                let mask = u16::try_from(banks - 1).unwrap_or(u16::MAX);
                self.set(index::BANK, value & mask);
            }
            index::ENABLE => {
                let mut clear = 0;
                if value & enable::ENABLED != 0 && !self.enabled() {
                    self.set(index::VIRT_WIDTH, 0);
                    self.set(index::X_OFFSET, 0);
                    self.set(index::Y_OFFSET, 0);
                    self.set(index::ENABLE, self.reg(index::ENABLE) | enable::ENABLED);
                    self.fixup(vram_size);
                    if value & enable::NOCLEARMEM == 0 {
                        clear = self.line_offset as usize * usize::from(self.reg(index::YRES));
                    }
                } else if value & enable::ENABLED == 0 {
                    self.set(index::BANK, 0);
                }
                self.set(index::ENABLE, value);
                return clear.min(vram_size);
            }
            _ => {}
        }
        0
    }

    /// Brings the mode registers into range of the card and of VRAM, as QEMU
    /// does; only while enabled (the BIOS programs them in any order first).
    fn fixup(&mut self, vram_size: usize) {
        if !self.enabled() {
            return;
        }
        let bits = match self.reg(index::BPP) {
            b @ (4 | 8 | 16 | 24 | 32) => u32::from(b),
            15 => 16,
            _ => {
                self.set(index::BPP, 8);
                8
            }
        };
        let mut xres = self.reg(index::XRES) & !7;
        if xres == 0 {
            xres = 8;
        }
        xres = xres.min(MAX_XRES);
        self.set(index::XRES, xres);
        let virt_width = (self.reg(index::VIRT_WIDTH) & !7).min(MAX_XRES).max(xres);
        self.set(index::VIRT_WIDTH, virt_width);

        let line = u32::from(virt_width) * bits / 8;
        let vram = u32::try_from(vram_size).unwrap_or(u32::MAX);
        let max_y = u16::try_from(vram / line.max(1)).unwrap_or(u16::MAX);
        let yres = self.reg(index::YRES).clamp(1, MAX_YRES).min(max_y);
        self.set(index::YRES, yres);

        let x_offset = self.reg(index::X_OFFSET).min(MAX_XRES);
        let mut y_offset = self.reg(index::Y_OFFSET).min(MAX_YRES);
        let mut start = u32::from(x_offset) * bits / 8 + u32::from(y_offset) * line;
        if u64::from(start) + u64::from(yres) * u64::from(line) > u64::from(vram) {
            // Panned past the end of VRAM: show the top instead.
            y_offset = 0;
            start = 0;
        }
        self.set(index::X_OFFSET, x_offset);
        self.set(index::Y_OFFSET, y_offset);
        self.set(index::VIRT_HEIGHT, max_y);
        self.line_offset = line;
        self.start = start;
    }

    /// Whether a restored state is one this model could have reached with
    /// `vram_size` bytes of VRAM (the renderer relies on it).
    pub(crate) fn check(&self, vram_size: usize) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let mut copy = self.clone();
        copy.fixup(vram_size);
        if copy != *self {
            return Err("VBE registers out of range for the video memory".to_owned());
        }
        Ok(())
    }
}
