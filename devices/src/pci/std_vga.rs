//! QEMU's `-vga std` PCI function (1234:1111, class 0300, "VGA"): the
//! [`Vga`] adapter behind PCI. As on QEMU:
//! - BAR 0 is the linear framebuffer (all of video memory, prefetchable);
//! - BAR 2 is 4 KiB of MMIO registers: the VGA ports 0x3C0-0x3DF at 0x400,
//!   the VBE dispi registers as 16-bit words at 0x500, and QEMU's extended
//!   registers at 0x600 (their size and the framebuffer byte order);
//! - the expansion ROM holds the VGA BIOS, which SeaBIOS copies to 0xC0000;
//! - the legacy VGA ports (0x3B4/0x3B5/0x3BA, 0x3C0-0x3CF, 0x3D4/0x3D5/0x3DA)
//!   and the VBE ports (index 0x1CE, data 0x1CF and 0x1D0) answer whatever
//!   the command register says, because QEMU registers them as ISA ports: the
//!   VGA BIOS runs before anyone enables the function's I/O decoding.
//!
//! The legacy memory window at 0xA0000 is a bus device of its own
//! ([`VgaHandle::memory_window`]) sharing the adapter; this function owns the
//! adapter's lifecycle (reset, save, restore).

use serde::{Deserialize, Serialize};

use emu_core::{Device, DeviceState, StateError};

use super::config::{BarKind, PciConfigSpace, PciConfigState, PciIds, ROM_BAR};
use super::{PciError, PciFunction, host, ones64, window_offset};
use crate::state::invalid;
use crate::vga::{self, Vga, VgaHandle, vbe};

/// QEMU's vendor ID for its emulated display adapters.
pub const STD_VGA_VENDOR_ID: u16 = 0x1234;
/// The standard VGA's device ID.
pub const STD_VGA_DEVICE_ID: u16 = 0x1111;
/// The linear framebuffer BAR.
pub const LFB_BAR: usize = 0;
/// The MMIO register BAR.
pub const MMIO_BAR: usize = 2;
/// Size of the MMIO register BAR.
pub const MMIO_SIZE: u64 = 0x1000;
/// Offset of the VGA ports (0x3C0 on) in the MMIO BAR.
pub const MMIO_VGA_PORTS: u64 = 0x400;
/// Offset of the VBE dispi registers (16-bit, by index) in the MMIO BAR.
pub const MMIO_VBE: u64 = 0x500;
/// Offset of QEMU's extended registers in the MMIO BAR.
pub const MMIO_QEXT: u64 = 0x600;
/// The extended registers' size register reads this (two 32-bit registers).
pub const QEXT_SIZE: u32 = 8;
/// The byte order register's value for a little-endian framebuffer.
pub const QEXT_LITTLE_ENDIAN: u32 = 0x1e1e_1e1e;
/// The window index [`PciFunction::decode_pio`] gives the legacy VGA ports
/// (offsets from 0x3B0), above the BARs and the expansion ROM.
pub const VGA_PORT_WINDOW: usize = ROM_BAR + 1;
/// The window index of the VBE ports (offsets from 0x1CE).
pub const VBE_PORT_WINDOW: usize = ROM_BAR + 2;
/// The largest ROM image accepted (the ROM BAR's limit).
pub const MAX_ROM_SIZE: usize = 16 << 20;

const KIND: &str = "std-vga-pci";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StdVgaState {
    config: PciConfigState,
    vga: DeviceState,
}

/// The PCI function of QEMU's standard VGA.
#[derive(Debug)]
pub struct StdVga {
    config: PciConfigSpace,
    vga: VgaHandle,
    /// The expansion ROM, padded with zeros to a power of two.
    rom: Vec<u8>,
}

impl StdVga {
    /// The function with `vram_size` bytes of video memory (a power of two,
    /// see [`vga::MIN_VRAM_SIZE`]; QEMU's default is
    /// [`vga::DEFAULT_VRAM_SIZE`]) and `rom` as its expansion ROM (the VGA
    /// BIOS, such as Debian's `vgabios-stdvga.bin`; empty for none).
    pub fn new(rom: Vec<u8>, vram_size: usize) -> Result<StdVga, PciError> {
        let bad = |index, reason: &str| PciError::BadBar {
            index,
            reason: reason.to_owned(),
        };
        let vga = Vga::new(vram_size).ok_or_else(|| {
            bad(
                LFB_BAR,
                "video memory is not a power of two from 1 MiB to 256 MiB",
            )
        })?;
        let mut config = PciConfigSpace::new(PciIds {
            vendor_id: STD_VGA_VENDOR_ID,
            device_id: STD_VGA_DEVICE_ID,
            class_code: 0x03_0000,
            revision_id: 2,
            subsystem_vendor_id: host::QEMU_SUBSYSTEM_VENDOR_ID,
            subsystem_id: host::QEMU_SUBSYSTEM_ID,
        });
        config.add_bar(
            LFB_BAR,
            BarKind::Memory32 { prefetchable: true },
            vram_size as u64,
        )?;
        config.add_bar(
            MMIO_BAR,
            BarKind::Memory32 {
                prefetchable: false,
            },
            MMIO_SIZE,
        )?;
        let mut rom = rom;
        if !rom.is_empty() {
            if rom.len() > MAX_ROM_SIZE {
                return Err(bad(ROM_BAR, "VGA BIOS image larger than 16 MiB"));
            }
            let size = rom
                .len()
                .next_power_of_two()
                .max(super::config::MIN_ROM_SIZE as usize);
            rom.resize(size, 0);
            config.add_expansion_rom(size as u64)?;
        }
        Ok(StdVga {
            config,
            vga: VgaHandle::new(vga),
            rom,
        })
    }

    /// The shared adapter: for the legacy memory window
    /// ([`VgaHandle::memory_window`]) and the screen ([`VgaHandle::snapshot`]).
    pub fn handle(&self) -> VgaHandle {
        self.vga.clone()
    }

    /// A read in BAR 2, split into the byte or word registers it covers.
    fn mmio_read(&mut self, offset: u64, size: u8) -> u64 {
        let mut vga = self.vga.lock();
        match offset {
            o if (MMIO_VGA_PORTS..MMIO_VGA_PORTS + 0x20).contains(&o) => (0..u64::from(size))
                .map(|k| {
                    let port = 0x3c0 + (o + k - MMIO_VGA_PORTS);
                    u16::try_from(port).map_or(0xff, |p| {
                        if p <= vga::LAST_PORT {
                            vga.port_read(p)
                        } else {
                            0xff
                        }
                    })
                })
                .enumerate()
                .fold(0, |v, (k, b)| v | u64::from(b) << (8 * k)),
            o if (MMIO_VBE..MMIO_VBE + 0x18).contains(&o) => {
                // Each register is a word; reading one selects it, as in QEMU.
                let mut value = 0;
                let mut k = 0;
                while k < u64::from(size) {
                    let at = o + k - MMIO_VBE;
                    vga.vbe_write(false, (at >> 1) as u16);
                    let word = u64::from(vga.vbe_read(true));
                    let shift = 8 * (at & 1);
                    value |= (word >> shift) << (8 * k);
                    k += 2 - (at & 1);
                }
                value & ones64(size)
            }
            o if o == MMIO_QEXT => u64::from(QEXT_SIZE),
            o if o == MMIO_QEXT + 4 => u64::from(QEXT_LITTLE_ENDIAN),
            _ => 0,
        }
    }

    fn mmio_write(&mut self, offset: u64, size: u8, value: u64) {
        let mut vga = self.vga.lock();
        if (MMIO_VGA_PORTS..MMIO_VGA_PORTS + 0x20).contains(&offset) {
            for k in 0..u64::from(size) {
                if let Ok(port) = u16::try_from(0x3c0 + offset + k - MMIO_VGA_PORTS)
                    && port <= vga::LAST_PORT
                {
                    vga.port_write(port, (value >> (8 * k)) as u8);
                }
            }
        } else if (MMIO_VBE..MMIO_VBE + 0x18).contains(&offset) {
            let mut k = 0;
            while k < u64::from(size) {
                let at = offset + k - MMIO_VBE;
                let shift = 8 * (at & 1);
                let word = ((value >> (8 * k)) << shift) as u16;
                vga.vbe_write(false, (at >> 1) as u16);
                vga.vbe_write(true, word);
                k += 2 - (at & 1);
            }
        }
        // The byte order register stays little-endian: the framebuffer is
        // only ever read as little-endian here.
    }
}

impl Device for StdVga {
    fn reset(&mut self) {
        self.config.reset();
        self.vga.lock().reset();
    }

    fn save_state(&self) -> DeviceState {
        let state = StdVgaState {
            config: self.config.state(),
            vga: self.vga.lock().save_state(),
        };
        DeviceState::encode(KIND, VERSION, &state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let state: StdVgaState = state.decode(KIND, VERSION)?;
        let mut config = self.config.clone();
        config
            .restore(&state.config)
            .map_err(|reason| invalid(KIND, reason))?;
        self.vga.lock().restore_state(&state.vga)?;
        self.config = config;
        Ok(())
    }
}

impl PciFunction for StdVga {
    fn config(&self) -> &PciConfigSpace {
        &self.config
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.config.write(offset, size, value);
    }

    fn decode_pio(&self, port: u64, len: u64) -> Option<(usize, u64)> {
        let first = u64::from(vga::FIRST_PORT);
        let count = u64::from(vga::LAST_PORT) + 1 - first;
        if let Some(into) = window_offset(port, len, first, count)
            && (port..port + len).all(|p| vga::port::decoded(p as u16))
        {
            return Some((VGA_PORT_WINDOW, into));
        }
        if let Some(into) = window_offset(port, len, u64::from(vbe::INDEX_PORT), 3) {
            return Some((VBE_PORT_WINDOW, into));
        }
        self.config.decode_pio(port, len)
    }

    fn bar_read(&mut self, bar: usize, offset: u64, size: u8) -> u64 {
        match bar {
            LFB_BAR => self.vga.lock().lfb_read(offset, size),
            MMIO_BAR => self.mmio_read(offset, size),
            ROM_BAR => {
                let at = offset as usize;
                (0..usize::from(size.clamp(1, 8)))
                    .map(|k| self.rom.get(at.wrapping_add(k)).copied().unwrap_or(0xff))
                    .enumerate()
                    .fold(0, |v, (k, b)| v | u64::from(b) << (8 * k))
            }
            VGA_PORT_WINDOW => {
                let mut vga = self.vga.lock();
                (0..u64::from(size.clamp(1, 8)))
                    .map(|k| vga.port_read(vga::FIRST_PORT.wrapping_add((offset + k) as u16)))
                    .enumerate()
                    .fold(0, |v, (k, b)| v | u64::from(b) << (8 * k))
            }
            VBE_PORT_WINDOW => u64::from(self.vga.lock().vbe_read(offset != 0)) & ones64(size),
            _ => ones64(size),
        }
    }

    fn bar_write(&mut self, bar: usize, offset: u64, size: u8, value: u64) {
        match bar {
            LFB_BAR => self.vga.lock().lfb_write(offset, size, value),
            MMIO_BAR => self.mmio_write(offset, size, value),
            VGA_PORT_WINDOW => {
                let mut vga = self.vga.lock();
                for k in 0..u64::from(size.clamp(1, 8)) {
                    let port = vga::FIRST_PORT.wrapping_add((offset + k) as u16);
                    vga.port_write(port, (value >> (8 * k)) as u8);
                }
            }
            VBE_PORT_WINDOW => self.vga.lock().vbe_write(offset != 0, value as u16),
            // The ROM is read-only.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use emu_core::IrqLine;

    use super::super::PciHost;
    use super::super::config::{bar_offset, command, reg};
    use super::*;
    use crate::vga::port;

    /// A ROM the size of Debian's vgabios-stdvga.bin (about 38 KiB), with the
    /// option ROM signature.
    fn rom() -> Vec<u8> {
        let mut rom: Vec<u8> = (0..38_912u32).map(|i| (i * 7 + 3) as u8).collect();
        rom[..3].copy_from_slice(&[0x55, 0xaa, (38_912u32 / 512) as u8]);
        rom
    }

    fn function() -> StdVga {
        StdVga::new(rom(), vga::DEFAULT_VRAM_SIZE).unwrap()
    }

    fn sized(f: &mut StdVga, offset: u16, probe: u32) -> u32 {
        f.config_write(offset, 4, probe);
        f.config_read(offset, 4)
    }

    fn outb(f: &mut StdVga, port: u16, value: u8) {
        let (bar, offset) = f.decode_pio(u64::from(port), 1).unwrap();
        f.bar_write(bar, offset, 1, u64::from(value));
    }

    fn inb(f: &mut StdVga, port: u16) -> u8 {
        let (bar, offset) = f.decode_pio(u64::from(port), 1).unwrap();
        f.bar_read(bar, offset, 1) as u8
    }

    fn outw(f: &mut StdVga, port: u16, value: u16) {
        let (bar, offset) = f.decode_pio(u64::from(port), 2).unwrap();
        f.bar_write(bar, offset, 2, u64::from(value));
    }

    fn inw(f: &mut StdVga, port: u16) -> u16 {
        let (bar, offset) = f.decode_pio(u64::from(port), 2).unwrap();
        f.bar_read(bar, offset, 2) as u16
    }

    fn dispi(f: &mut StdVga, index: u16, value: u16) {
        outw(f, vbe::INDEX_PORT, index);
        outw(f, vbe::DATA_PORT, value);
    }

    #[test]
    fn ids_class_and_bars_are_qemus() {
        let mut f = function();
        assert_eq!(f.config_read(0, 4), 0x1111_1234);
        assert_eq!(f.config_read(8, 4), 0x0300_0002);
        assert_eq!(f.config_read(0x2c, 4), 0x1100_1af4);
        assert_eq!(f.config_read(u16::from(0x3du8), 1), 0, "no interrupt pin");
        assert_eq!(sized(&mut f, bar_offset(LFB_BAR), u32::MAX), 0xff00_0008);
        assert_eq!(sized(&mut f, bar_offset(1), u32::MAX), 0);
        assert_eq!(sized(&mut f, bar_offset(MMIO_BAR), u32::MAX), 0xffff_f000);
        // 38 KiB of ROM in a 64 KiB BAR.
        assert_eq!(sized(&mut f, reg::EXPANSION_ROM, 0xffff_f800), 0xffff_0000);
        let small = StdVga::new(vec![0x55, 0xaa], 4 << 20).unwrap();
        assert_eq!(small.config().expansion_rom_size(), Some(0x800));
        assert_eq!(small.handle().lock().vram_size(), 4 << 20);
        let none = StdVga::new(Vec::new(), 1 << 20).unwrap();
        assert_eq!(none.config().expansion_rom_size(), None);
        assert!(StdVga::new(Vec::new(), 3 << 20).is_err());
        assert!(StdVga::new(Vec::new(), 512 << 20).is_err());
    }

    struct Line;
    impl IrqLine for Line {
        fn set_level(&self, _high: bool) {}
    }

    #[test]
    fn firmware_finds_the_vga_bios_in_the_expansion_rom() {
        let lines: [Box<dyn IrqLine>; 4] =
            std::array::from_fn(|_| Box::new(Line) as Box<dyn IrqLine>);
        let mut host = PciHost::new(lines, None);
        let slot = host.add(Box::new(function())).unwrap();
        // SeaBIOS: size the ROM BAR, place it, enable it and memory decoding.
        host.config_write(0, slot, 0, reg::EXPANSION_ROM, 4, 0xffff_f800);
        assert_eq!(
            host.config_read(0, slot, 0, reg::EXPANSION_ROM, 4),
            0xffff_0000
        );
        host.config_write(0, slot, 0, reg::EXPANSION_ROM, 4, 0xfebe_0001);
        assert_eq!(host.mmio_read(0xfebe_0000, 2), 0xffff, "decoding off");
        host.config_write(
            0,
            slot,
            0,
            reg::COMMAND,
            2,
            u32::from(command::MEMORY_SPACE),
        );
        let image = rom();
        let copied: Vec<u8> = (0..0x1_0000)
            .map(|i| host.mmio_read(0xfebe_0000 + i, 1) as u8)
            .collect();
        assert_eq!(&copied[..image.len()], &image[..]);
        assert!(
            copied[image.len()..].iter().all(|&b| b == 0),
            "zero padding"
        );
        assert_eq!(host.mmio_read(0xfebe_0000, 4), 0x184c_aa55);
        // Writes to the ROM are dropped.
        host.mmio_write(0xfebe_0000, 1, 0);
        assert_eq!(host.mmio_read(0xfebe_0000, 1), 0x55);
    }

    #[test]
    fn legacy_ports_answer_without_io_decoding() {
        let mut f = function();
        assert_eq!(f.config().command() & command::IO_SPACE, 0);
        assert_eq!(f.decode_pio(0x3c4, 2), Some((VGA_PORT_WINDOW, 0x14)));
        assert_eq!(f.decode_pio(0x3da, 1), Some((VGA_PORT_WINDOW, 0x2a)));
        assert_eq!(f.decode_pio(0x3b0, 1), None, "not a VGA register");
        assert_eq!(f.decode_pio(0x3bc, 1), None, "the parallel port's");
        assert_eq!(f.decode_pio(0x3ba, 2), None, "runs into 0x3bb");
        assert_eq!(f.decode_pio(0x3df, 2), None);
        assert_eq!(f.decode_pio(0x1ce, 2), Some((VBE_PORT_WINDOW, 0)));
        assert_eq!(f.decode_pio(0x1cf, 2), Some((VBE_PORT_WINDOW, 1)));
        assert_eq!(f.decode_pio(0x1d0, 2), None);
        assert_eq!(f.decode_pio(0x1cd, 2), None);
        // A word write is an index and a data byte, as the BIOS uses it.
        outw(&mut f, port::SEQ_INDEX, 0x0f02);
        outb(&mut f, port::SEQ_INDEX, 2);
        assert_eq!(inb(&mut f, port::SEQ_DATA), 0x0f);
        outw(&mut f, vbe::INDEX_PORT, vbe::index::ID);
        assert_eq!(inw(&mut f, vbe::DATA_PORT), vbe::ID5);
        assert_eq!(inw(&mut f, vbe::INDEX_PORT), vbe::index::ID);
    }

    #[test]
    fn a_1024x768x32_lfb_mode_shows_pixels_written_through_bar_0() {
        let mut f = function();
        let vga = f.handle();
        dispi(&mut f, vbe::index::ENABLE, 0);
        dispi(&mut f, vbe::index::XRES, 1024);
        dispi(&mut f, vbe::index::YRES, 768);
        dispi(&mut f, vbe::index::BPP, 32);
        dispi(
            &mut f,
            vbe::index::ENABLE,
            vbe::enable::ENABLED | vbe::enable::LFB_ENABLED,
        );
        inb(&mut f, port::STATUS1_MONO);
        outb(&mut f, port::ATTR_WRITE, 0x20);
        // The OS programs BAR 0 and enables memory decoding.
        f.config_write(bar_offset(LFB_BAR), 4, 0xfd00_0000);
        f.config_write(reg::COMMAND, 2, u32::from(command::MEMORY_SPACE));
        let pixel = |x: u64, y: u64| 0xfd00_0000 + (y * 1024 + x) * 4;
        for (x, y, rgb) in [
            (0, 0, 0x11_2233),
            (1023, 767, 0xff_ffff),
            (17, 300, 0x80_4020),
        ] {
            let (bar, offset) = f.config().decode_mmio(pixel(x, y), 4).unwrap();
            assert_eq!(bar, LFB_BAR);
            f.bar_write(bar, offset, 4, rgb);
            assert_eq!(f.bar_read(bar, offset, 4), rgb);
        }
        let d = vga.snapshot();
        assert_eq!((d.width, d.height), (1024, 768));
        assert_eq!(d.pixels[0], 0x11_2233);
        assert_eq!(d.pixels[300 * 1024 + 17], 0x80_4020);
        assert_eq!(d.pixels[1024 * 768 - 1], 0xff_ffff);
        assert_eq!(d.pixels[1], 0);
        // Past the end of video memory: all ones, writes dropped.
        assert_eq!(f.bar_read(LFB_BAR, (16 << 20) - 2, 4), 0xffff_ffff);
        f.bar_write(LFB_BAR, (16 << 20) - 2, 4, 0);
        // A frame counter viewers can poll.
        let before = vga.snapshot().frames;
        f.bar_write(LFB_BAR, 8, 4, 1);
        assert!(vga.snapshot().frames > before);
    }

    #[test]
    fn the_mmio_bar_reaches_vga_and_vbe_registers() {
        let mut f = function();
        // VGA port 0x3c4 is at 0x404; a word is index then data.
        f.bar_write(MMIO_BAR, MMIO_VGA_PORTS + 4, 2, 0x0f02);
        assert_eq!(f.bar_read(MMIO_BAR, MMIO_VGA_PORTS + 5, 1), 0x0f);
        assert_eq!(f.bar_read(MMIO_BAR, MMIO_VGA_PORTS + 4, 2), 0x0f02);
        // Dispi register n is the word at 0x500 + 2n.
        let reg = |i: u16| MMIO_VBE + 2 * u64::from(i);
        assert_eq!(f.bar_read(MMIO_BAR, reg(vbe::index::ID), 2), 0xb0c5);
        f.bar_write(MMIO_BAR, reg(vbe::index::XRES), 2, 800);
        f.bar_write(MMIO_BAR, reg(vbe::index::YRES), 2, 600);
        f.bar_write(MMIO_BAR, reg(vbe::index::BPP), 2, 16);
        f.bar_write(MMIO_BAR, reg(vbe::index::ENABLE), 2, 0x41);
        assert_eq!(
            f.bar_read(MMIO_BAR, reg(vbe::index::XRES), 4),
            600 << 16 | 800
        );
        assert_eq!(
            f.bar_read(MMIO_BAR, reg(vbe::index::VIDEO_MEMORY_64K), 2),
            256
        );
        assert_eq!(f.bar_read(MMIO_BAR, reg(vbe::index::VIRT_WIDTH), 2), 800);
        assert_eq!(f.bar_read(MMIO_BAR, MMIO_QEXT, 4), u64::from(QEXT_SIZE));
        assert_eq!(f.bar_read(MMIO_BAR, MMIO_QEXT + 4, 4), 0x1e1e_1e1e);
        assert_eq!(f.bar_read(MMIO_BAR, 0x100, 4), 0);
        assert_eq!(f.handle().lock().vbe.mode(), (800, 600, 16));
    }

    #[test]
    fn reset_and_state_cover_the_configuration_and_the_adapter() {
        let mut f = function();
        f.config_write(bar_offset(LFB_BAR), 4, 0xfd00_0000);
        f.config_write(reg::COMMAND, 2, 3);
        dispi(&mut f, vbe::index::XRES, 640);
        f.bar_write(LFB_BAR, 0x100, 4, 0xdead_beef);
        let saved = f.save_state();
        let mut g = function();
        g.restore_state(&saved).unwrap();
        assert_eq!(g.config().bar_address(LFB_BAR), Some(0xfd00_0000));
        assert_eq!(g.bar_read(LFB_BAR, 0x100, 4), 0xdead_beef);
        outw(&mut g, vbe::INDEX_PORT, vbe::index::XRES);
        assert_eq!(inw(&mut g, vbe::DATA_PORT), 640);
        let mut small = StdVga::new(rom(), 1 << 20).unwrap();
        assert!(small.restore_state(&saved).is_err());
        assert_eq!(small.config().bar_address(LFB_BAR), Some(0));
        g.reset();
        assert_eq!(g.config().command(), 0);
        assert_eq!(g.bar_read(LFB_BAR, 0x100, 4), 0);
        // The memory window follows the function and saves nothing itself.
        let mut window = g.handle().memory_window();
        assert_eq!(
            emu_core::MmioDevice::read(&mut window, 0, 1),
            Ok(0),
            "planar read of zeroed memory"
        );
        let empty = window.save_state();
        window.restore_state(&empty).unwrap();
    }

    /// Random configuration, port, MMIO-register, framebuffer and ROM accesses
    /// through the function: nothing panics. `TURING_VGA_FUZZ_SEED` replays
    /// a seed.
    #[test]
    fn random_function_accesses_never_panic() {
        let (mut rng, iterations) = crate::testing::FuzzRng::from_env("VGA", 0x0bad_5eed, 20_000);
        let seed = rng.seed();
        let mut next = move || rng.next();
        let mut f = StdVga::new(rom(), 1 << 20).unwrap();
        let vga = f.handle();
        let mut window = vga.memory_window();
        for step in 0..iterations {
            let x = next();
            let size = [1u8, 2, 4, 8][(x >> 60) as usize & 3];
            let value = next();
            match x % 8 {
                0 => f.config_write((x >> 8) as u16 & 0xff, size.min(4), value as u32),
                1 | 2 => {
                    let port = 0x1c0 + (x >> 8) % 0x240;
                    if let Some((bar, offset)) = f.decode_pio(port, u64::from(size.min(4))) {
                        if x & 0x100 != 0 {
                            f.bar_write(bar, offset, size.min(4), value);
                        } else {
                            f.bar_read(bar, offset, size.min(4));
                        }
                    }
                }
                3 => f.bar_write(MMIO_BAR, (x >> 8) % 0x1000, size, value),
                4 => {
                    f.bar_read(MMIO_BAR, (x >> 8) % 0x1000, size);
                }
                5 => {
                    let bar = [LFB_BAR, ROM_BAR, 1, 9][(x >> 8) as usize & 3];
                    f.bar_write(bar, (x >> 16) % (2 << 20), size, value);
                    f.bar_read(bar, (x >> 16) % (2 << 20), size);
                }
                6 => {
                    let _ =
                        emu_core::MmioDevice::write(&mut window, (x >> 8) % 0x2_0010, size, value);
                }
                _ => {
                    let _ = emu_core::MmioDevice::read(&mut window, (x >> 8) % 0x2_0010, size);
                }
            }
            if step % 1024 == 0 {
                let d = vga.snapshot();
                assert_eq!(
                    d.pixels.len() as u64,
                    u64::from(d.width) * u64::from(d.height),
                    "seed {seed:#x} step {step}"
                );
            }
        }
    }
}
