//! Turns the adapter's state into pixels, the way QEMU's `vga_update_display`
//! reads it: blank while the attribute controller's palette address source
//! bit is clear, else the VBE mode when one is on, else graphics or text by
//! the graphics controller's misc register. Output pixels are 0x00RRGGBB.
//!
//! Sizes follow QEMU's too: VGA graphics modes come out at their CRTC size
//! (mode 13h is 640x400: its 320x200 pixels doubled both ways), text modes at
//! columns times character width by rows times character height.

use super::{Vga, ar, cr, gr, sr};
use crate::virtio::Display;

/// Text screens larger than this many cells are transient garbage while a
/// mode is being set (QEMU's limit too): shown as nothing.
const MAX_TEXT_CELLS: u32 = 160 * 100;

/// A 6-bit DAC component to 8 bits, as QEMU scales it (the low bit repeated).
fn c6_to_8(v: u8) -> u32 {
    let v = u32::from(v & 0x3f);
    let b = v & 1;
    v << 2 | b << 1 | b
}

fn rgb(r: u32, g: u32, b: u32) -> u32 {
    r << 16 | g << 8 | b
}

/// The 256 DAC entries as pixels, in 6- or 8-bit DAC mode.
fn palette256(vga: &Vga) -> Vec<u32> {
    // As in QEMU, the 8-bit DAC bit counts whether or not VBE is on.
    let eight = vga.vbe.dac_8bit();
    vga.regs
        .palette
        .chunks_exact(3)
        .map(|c| {
            if eight {
                rgb(u32::from(c[0]), u32::from(c[1]), u32::from(c[2]))
            } else {
                rgb(c6_to_8(c[0]), c6_to_8(c[1]), c6_to_8(c[2]))
            }
        })
        .collect()
}

/// The 16 attribute palette entries through the colour select register to
/// the DAC.
fn palette16(vga: &Vga) -> [u32; 16] {
    let r = &vga.regs;
    std::array::from_fn(|i| {
        let v = r.ar[i];
        let index = if r.ar[ar::MODE] & 0x80 != 0 {
            ((r.ar[ar::COLOR_SELECT] & 0x0f) << 4) | (v & 0x0f)
        } else {
            ((r.ar[ar::COLOR_SELECT] & 0x0c) << 4) | (v & 0x3f)
        };
        let at = usize::from(index) * 3;
        rgb(
            c6_to_8(r.palette[at]),
            c6_to_8(r.palette[at + 1]),
            c6_to_8(r.palette[at + 2]),
        )
    })
}

/// Renders `vga` (see the module comment).
pub(crate) fn render(vga: &Vga) -> Display {
    let mut display = if vga.vbe.enabled() || vga.regs.gr[gr::MISC] & gr::GRAPHICS != 0 {
        graphics(vga)
    } else {
        text(vga)
    };
    if vga.regs.ar_index & ar::PAS == 0 {
        display.pixels.fill(0);
    }
    display
}

fn byte(vga: &Vga, at: usize) -> u8 {
    vga.vram.get(at).copied().unwrap_or(0)
}

/// The vertical display end from the CRTC: the number of scan lines.
fn crtc_height(vga: &Vga) -> u32 {
    let c = &vga.regs.cr;
    let h = u32::from(c[cr::V_DISP_END])
        | (u32::from(c[cr::OVERFLOW]) & 0x02) << 7
        | (u32::from(c[cr::OVERFLOW]) & 0x40) << 3;
    h + 1
}

fn text(vga: &Vga) -> Display {
    let r = &vga.regs;
    let dots8 = r.sr[sr::CLOCK_MODE] & sr::DOTS8 != 0;
    let cell_width: u32 = if dots8 { 8 } else { 9 };
    let wide = r.sr[sr::CLOCK_MODE] & sr::DOUBLE_DOT != 0;
    let cell_height = u32::from(r.cr[cr::MAX_SCAN] & 0x1f) + 1;
    let cols = u32::from(r.cr[cr::H_DISP]) + 1;
    let rows = crtc_height(vga) / cell_height;
    // A screen of one cell or none is a CRTC not yet programmed (QEMU draws
    // nothing for it either).
    if cols * rows > MAX_TEXT_CELLS || cols * rows <= 1 {
        return Display::default();
    }
    let scale = if wide { 2 } else { 1 };
    let width = cols * cell_width * scale;
    let height = rows * cell_height;
    let mut pixels = vec![0u32; (width * height) as usize];

    let palette = palette16(vga);
    let start = usize::from(r.cr[cr::START_HI]) << 8 | usize::from(r.cr[cr::START_LO]);
    let line_offset = usize::from(r.cr[cr::OFFSET]) << 3;
    // Character map select: maps A (attribute bit 3 set) and B, each 8 KiB of
    // plane-2 dwords; byte 2 of a dword is plane 2.
    let map = |select: u8| usize::from(select) * 8192 * 4 + 2;
    let s = r.sr[sr::CHAR_MAP];
    let font_a = map(((s >> 5) & 1) | ((s >> 1) & 6));
    let font_b = map(((s >> 4) & 1) | ((s << 1) & 6));
    let blink = r.ar[ar::MODE] & 0x08 != 0;
    let line_graphics = r.ar[ar::MODE] & 0x04 != 0;
    let cursor = usize::from(r.cr[cr::CURSOR_HI]) << 8 | usize::from(r.cr[cr::CURSOR_LO]);
    let cursor_on = r.cr[cr::CURSOR_START] & 0x20 == 0;
    let cursor_first = u32::from(r.cr[cr::CURSOR_START] & 0x1f);
    let cursor_last = u32::from(r.cr[cr::CURSOR_END] & 0x1f).min(cell_height - 1);

    for row in 0..rows as usize {
        for col in 0..cols as usize {
            let cell = start * 4 + row * line_offset + col * 4;
            let ch = byte(vga, cell);
            let attr = byte(vga, cell + 1);
            let fg = palette[usize::from(attr & 0x0f)];
            // With blinking enabled bit 7 blinks instead of brightening the
            // background; a snapshot shows the visible phase.
            let bg = palette[usize::from(if blink { (attr >> 4) & 7 } else { attr >> 4 })];
            let font = if attr & 0x08 != 0 { font_a } else { font_b };
            let glyph = font + usize::from(ch) * 32 * 4;
            let dup9 = !dots8 && line_graphics && (0xb0..=0xdf).contains(&ch);
            let has_cursor = cursor_on && cell / 4 == cursor;
            for line in 0..cell_height {
                let mut bits = u16::from(byte(vga, glyph + line as usize * 4)) << 1;
                if dup9 {
                    bits |= bits >> 1 & 1;
                }
                if has_cursor && line >= cursor_first && line <= cursor_last {
                    bits = 0x1ff;
                }
                let y = row as u32 * cell_height + line;
                for dot in 0..cell_width {
                    let on = bits >> (8 - dot) & 1 != 0;
                    let color = if on { fg } else { bg };
                    for k in 0..scale {
                        let x = (col as u32 * cell_width + dot) * scale + k;
                        pixels[(y * width + x) as usize] = color;
                    }
                }
            }
        }
    }
    Display {
        width,
        height,
        pixels,
        frames: 0,
    }
}

/// How a graphics line turns bytes into pixels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// 16 colours, one bit per plane (modes 0Dh-12h).
    Planar,
    /// 4 colours, CGA-style pairs of bits (modes 4 and 5).
    Cga,
    /// 256 colours, one byte per pixel.
    Indexed,
    Rgb555,
    Rgb565,
    Rgb888,
    Xrgb8888,
}

fn graphics(vga: &Vga) -> Display {
    let r = &vga.regs;
    let vbe = vga.vbe.enabled();
    let shift_control = (r.gr[gr::MODE] >> 5) & 3;
    let double_dot = r.sr[sr::CLOCK_MODE] & sr::DOUBLE_DOT != 0;
    let (width, height, line_offset, start, format) = if vbe {
        let (xres, yres, bpp) = vga.vbe.mode();
        let format = match bpp {
            4 => Format::Planar,
            15 => Format::Rgb555,
            16 => Format::Rgb565,
            24 => Format::Rgb888,
            32 => Format::Xrgb8888,
            _ => Format::Indexed,
        };
        let start = vga.vbe.start as usize;
        (xres, yres, vga.vbe.line_offset as usize, start, format)
    } else {
        let width = (u32::from(r.cr[cr::H_DISP]) + 1) * 8;
        let start = usize::from(r.cr[cr::START_HI]) << 8 | usize::from(r.cr[cr::START_LO]);
        let format = match shift_control {
            0 => Format::Planar,
            1 => Format::Cga,
            _ => Format::Indexed,
        };
        let line_offset = usize::from(r.cr[cr::OFFSET]) << 3;
        (width, crtc_height(vga), line_offset, start * 4, format)
    };
    // Output columns per source pixel: VGA 256-colour modes show each pixel
    // twice as wide (the CRTC counts 640 for mode 13h's 320), planar and CGA
    // modes when the dot clock is halved.
    let (source_width, out_width) = match format {
        Format::Indexed if !vbe => (width / 2, width),
        Format::Planar | Format::Cga if !vbe && double_dot => (width, width * 2),
        _ => (width, width),
    };
    let double_scan = u32::from(r.cr[cr::MAX_SCAN] >> 7);
    let multi_scan = if vbe {
        0
    } else if shift_control != 1 {
        ((u32::from(r.cr[cr::MAX_SCAN] & 0x1f) + 1) << double_scan) - 1
    } else {
        double_scan
    };
    let line_compare = u32::from(r.cr[cr::LINE_COMPARE])
        | (u32::from(r.cr[cr::OVERFLOW]) & 0x10) << 4
        | (u32::from(r.cr[cr::MAX_SCAN]) & 0x40) << 3;
    let plane_enable = r.ar[ar::PLANE_ENABLE] & 0x0f;
    let palette16 = palette16(vga);
    let palette256 = palette256(vga);

    let mut pixels = vec![0u32; out_width as usize * height as usize];
    let mut line = vec![0u32; source_width as usize];
    let mut base = start;
    let mut repeat = multi_scan;
    let mut source_y = 0u32;
    for y in 0..height {
        let mut addr = base;
        if !vbe {
            // CGA-compatible interleaving: scan line bits pick 8 KiB banks.
            if r.cr[cr::MODE] & 1 == 0 {
                let shift = 14 + ((r.cr[cr::MODE] >> 6) & 1);
                addr = (addr & !(1 << shift)) | ((source_y as usize & 1) << shift);
            }
            if r.cr[cr::MODE] & 2 == 0 {
                addr = (addr & !0x8000) | ((source_y as usize & 2) << 14);
            }
        }
        for (x, px) in line.iter_mut().enumerate() {
            *px = pixel(vga, format, addr, x, plane_enable, &palette16, &palette256);
        }
        let row = &mut pixels[(y * out_width) as usize..((y + 1) * out_width) as usize];
        let stretch = (out_width / source_width.max(1)).max(1) as usize;
        for (x, px) in row.iter_mut().enumerate() {
            *px = line.get(x / stretch).copied().unwrap_or(0);
        }
        if repeat == 0 {
            let mask = u32::from(r.cr[cr::MODE] & 3) ^ 3;
            if vbe || source_y & mask == mask {
                base = base.wrapping_add(line_offset);
            }
            source_y += 1;
            repeat = multi_scan;
        } else {
            repeat -= 1;
        }
        if !vbe && y == line_compare {
            base = 0;
        }
    }
    Display {
        width: out_width,
        height,
        pixels,
        frames: 0,
    }
}

fn pixel(
    vga: &Vga,
    format: Format,
    addr: usize,
    x: usize,
    plane_enable: u8,
    palette16: &[u32; 16],
    palette256: &[u32],
) -> u32 {
    let at = |i: usize| byte(vga, addr.wrapping_add(i));
    let plane = |p: usize| {
        if plane_enable & (1 << p) != 0 {
            at(x / 8 * 4 + p)
        } else {
            0
        }
    };
    match format {
        Format::Planar => {
            let bit = 7 - (x % 8);
            let index = (0..4).fold(0, |v, p| v | ((plane(p) >> bit) & 1) << p);
            palette16[usize::from(index)]
        }
        Format::Cga => {
            // Pixels 0-3 of a group of 8 come from planes 0 and 2, 4-7 from
            // planes 1 and 3; two bits each, most significant first.
            let j = x % 8;
            let (low, high) = if j < 4 { (0, 2) } else { (1, 3) };
            let shift = 6 - 2 * (j % 4);
            let index = ((plane(low) >> shift) & 3) | ((plane(high) >> shift) & 3) << 2;
            palette16[usize::from(index)]
        }
        Format::Indexed => palette256[usize::from(at(x))],
        Format::Rgb555 | Format::Rgb565 => {
            let v = u32::from(u16::from_le_bytes([at(2 * x), at(2 * x + 1)]));
            if format == Format::Rgb555 {
                rgb((v >> 7) & 0xf8, (v >> 2) & 0xf8, (v << 3) & 0xf8)
            } else {
                rgb((v >> 8) & 0xf8, (v >> 3) & 0xfc, (v << 3) & 0xf8)
            }
        }
        Format::Rgb888 => rgb(
            u32::from(at(3 * x + 2)),
            u32::from(at(3 * x + 1)),
            u32::from(at(3 * x)),
        ),
        Format::Xrgb8888 => rgb(
            u32::from(at(4 * x + 2)),
            u32::from(at(4 * x + 1)),
            u32::from(at(4 * x)),
        ),
    }
}
