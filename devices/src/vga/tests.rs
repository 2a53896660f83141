//! Tests of the VGA core: registers, planar memory, rendering, VBE, state.

use super::*;

const MIB: usize = 1 << 20;

fn vga() -> Vga {
    Vga::new(MIB).unwrap()
}

fn seq(v: &mut Vga, index: u8, value: u8) {
    v.port_write(port::SEQ_INDEX, index);
    v.port_write(port::SEQ_DATA, value);
}

fn gc(v: &mut Vga, index: u8, value: u8) {
    v.port_write(port::GC_INDEX, index);
    v.port_write(port::GC_DATA, value);
}

/// A CRTC write at the colour ports (misc output bit 0 must be set).
fn crtc(v: &mut Vga, index: u8, value: u8) {
    v.port_write(port::CRTC_INDEX_COLOR, index);
    v.port_write(port::CRTC_DATA_COLOR, value);
}

fn attr(v: &mut Vga, index: u8, value: u8) {
    v.port_read(port::STATUS1_COLOR);
    v.port_write(port::ATTR_WRITE, index);
    v.port_write(port::ATTR_WRITE, value);
}

fn dac(v: &mut Vga, index: u8, rgb: [u8; 3]) {
    v.port_write(port::DAC_WRITE_INDEX, index);
    for c in rgb {
        v.port_write(port::DAC_DATA, c);
    }
}

/// Palette address source on: the screen shows.
fn show(v: &mut Vga) {
    v.port_read(port::STATUS1_COLOR);
    v.port_write(port::ATTR_WRITE, 0x20);
}

fn plane_bytes(v: &Vga, addr: usize) -> [u8; 4] {
    v.vram[addr * 4..addr * 4 + 4].try_into().unwrap()
}

/// Graphics mode, window at 0xA0000 (64 KiB), planar (no chain-4, no
/// odd/even), all planes written: mode 12h's memory set-up.
fn planar(v: &mut Vga) {
    seq(v, 2, 0x0f);
    seq(v, 4, 0x06);
    gc(v, 5, 0x00);
    gc(v, 6, 0x05);
    gc(v, 8, 0xff);
}

#[test]
fn sequencer_and_graphics_registers_keep_their_writable_bits() {
    let mut v = vga();
    seq(&mut v, 2, 0xff);
    assert_eq!(v.port_read(port::SEQ_DATA), 0x0f);
    v.port_write(port::SEQ_INDEX, 0x0c);
    assert_eq!(v.port_read(port::SEQ_INDEX), 4, "the index has 3 bits");
    v.port_write(port::SEQ_DATA, 0xff);
    assert_eq!(v.port_read(port::SEQ_DATA), 0x0e);
    gc(&mut v, 5, 0xff);
    assert_eq!(v.port_read(port::GC_DATA), 0x7b);
    gc(&mut v, 0x18, 0xff);
    assert_eq!(v.port_read(port::GC_INDEX), 8);
    assert_eq!(v.port_read(port::GC_DATA), 0xff);
    v.port_write(port::GC_INDEX, 0x0b);
    v.port_write(port::GC_DATA, 0xff);
    assert_eq!(v.port_read(port::GC_DATA), 0, "no register 0x0b");
    v.port_write(port::MISC_WRITE, 0xff);
    assert_eq!(v.port_read(port::MISC_READ), 0xef);
}

#[test]
fn the_attribute_flip_flop_alternates_and_status_1_resets_it() {
    let mut v = vga();
    v.port_write(port::MISC_WRITE, 0x67);
    v.port_read(port::STATUS1_COLOR);
    v.port_write(port::ATTR_WRITE, 0x10);
    assert_eq!(v.port_read(port::ATTR_WRITE), 0, "data phase reads 0");
    v.port_write(port::ATTR_WRITE, 0xff);
    assert_eq!(v.port_read(port::ATTR_READ), 0xef);
    assert_eq!(v.port_read(port::ATTR_WRITE), 0x10, "index phase again");
    // Two writes in a row: the second is data for the first's index.
    v.port_write(port::ATTR_WRITE, 0x03);
    v.port_write(port::ATTR_WRITE, 0xff);
    assert_eq!(v.port_read(port::ATTR_READ), 0x3f);
    // A stray index write leaves the flip-flop in the data phase; reading
    // input status 1 puts it back.
    v.port_write(port::ATTR_WRITE, 0x05);
    let a = v.port_read(port::STATUS1_COLOR);
    let b = v.port_read(port::STATUS1_COLOR);
    assert_eq!(a ^ b, 0x09, "retrace and display-enable toggle");
    v.port_write(port::ATTR_WRITE, 0x32);
    v.port_write(port::ATTR_WRITE, 0x0f);
    assert_eq!(v.port_read(port::ATTR_WRITE), 0x32);
    assert_eq!(v.regs.ar[0x12], 0x0f);
    // Indexes past the registers read 0 and ignore data.
    v.port_write(port::ATTR_WRITE, 0x1f);
    v.port_write(port::ATTR_WRITE, 0xff);
    assert_eq!(v.port_read(port::ATTR_READ), 0);
}

#[test]
fn misc_output_bit_0_chooses_the_crtc_ports() {
    let mut v = vga();
    // Monochrome at power-on: 0x3Bx answers, 0x3Dx floats.
    v.port_write(port::CRTC_INDEX_MONO, 0x0a);
    v.port_write(port::CRTC_DATA_MONO, 0x0d);
    assert_eq!(v.port_read(port::CRTC_DATA_MONO), 0x0d);
    assert_eq!(v.port_read(port::CRTC_INDEX_COLOR), 0xff);
    v.port_write(port::CRTC_DATA_COLOR, 0x55);
    assert_eq!(v.regs.cr[0x0a], 0x0d);
    v.port_write(port::MISC_WRITE, 0x01);
    assert_eq!(v.port_read(port::CRTC_DATA_MONO), 0xff);
    assert_eq!(v.port_read(port::STATUS1_MONO), 0xff);
    assert_eq!(v.port_read(port::CRTC_INDEX_COLOR), 0x0a);
    crtc(&mut v, 0xe7, 0x99);
    assert_eq!(
        v.port_read(port::CRTC_DATA_COLOR),
        0x99,
        "a full byte index"
    );
    // CR11 bit 7 protects CR0-CR7 except the line compare bit.
    crtc(&mut v, 0x00, 0x5f);
    crtc(&mut v, 0x11, 0x80);
    crtc(&mut v, 0x00, 0x22);
    crtc(&mut v, 0x07, 0xff);
    assert_eq!(v.regs.cr[0], 0x5f);
    assert_eq!(v.regs.cr[7], 0x10);
}

#[test]
fn the_dac_auto_increments_over_triples() {
    let mut v = vga();
    v.port_write(port::DAC_WRITE_INDEX, 0xfe);
    for c in [1, 2, 3, 4, 5, 6, 7, 8, 9] {
        v.port_write(port::DAC_DATA, c);
    }
    assert_eq!(v.port_read(port::DAC_WRITE_INDEX), 0x01, "wrapped past 255");
    assert_eq!(v.port_read(port::DAC_READ_INDEX), 0, "write state");
    assert_eq!(&v.regs.palette[0xfe * 3..], &[1, 2, 3, 4, 5, 6]);
    assert_eq!(&v.regs.palette[..3], &[7, 8, 9]);
    v.port_write(port::DAC_READ_INDEX, 0xff);
    assert_eq!(v.port_read(port::DAC_READ_INDEX), 3, "read state");
    let read: Vec<u8> = (0..6).map(|_| v.port_read(port::DAC_DATA)).collect();
    assert_eq!(read, vec![4, 5, 6, 7, 8, 9]);
    // A partial triple is dropped when the index is rewritten.
    v.port_write(port::DAC_WRITE_INDEX, 0);
    v.port_write(port::DAC_DATA, 0x3f);
    v.port_write(port::DAC_WRITE_INDEX, 1);
    assert_eq!(&v.regs.palette[..3], &[7, 8, 9]);
}

#[test]
fn write_mode_0_rotates_sets_resets_combines_and_masks() {
    let mut v = vga();
    planar(&mut v);
    v.mem_write(0, 0xa5);
    assert_eq!(plane_bytes(&v, 0), [0xa5; 4]);
    // Set/reset: planes 0 and 2 take their set/reset bit (1 and 0).
    gc(&mut v, 1, 0x05);
    gc(&mut v, 0, 0x01);
    v.mem_write(1, 0x3c);
    assert_eq!(plane_bytes(&v, 1), [0xff, 0x3c, 0x00, 0x3c]);
    gc(&mut v, 1, 0);
    // Rotate right by one.
    gc(&mut v, 3, 0x01);
    v.mem_write(2, 0x81);
    assert_eq!(plane_bytes(&v, 2), [0xc0; 4]);
    // AND with the latches (loaded by a read of address 0).
    gc(&mut v, 3, 0x08);
    v.mem_read(0);
    v.mem_write(3, 0x0f);
    assert_eq!(plane_bytes(&v, 3), [0x05; 4]);
    // OR, XOR.
    gc(&mut v, 3, 0x10);
    v.mem_write(3, 0x0f);
    assert_eq!(plane_bytes(&v, 3), [0xaf; 4]);
    gc(&mut v, 3, 0x18);
    v.mem_write(3, 0xff);
    assert_eq!(plane_bytes(&v, 3), [0x5a; 4]);
    // The bit mask keeps the latched bits outside it.
    gc(&mut v, 3, 0);
    gc(&mut v, 8, 0xf0);
    v.mem_write(3, 0x00);
    assert_eq!(plane_bytes(&v, 3), [0x05; 4]);
    // The map mask keeps planes from being written at all.
    gc(&mut v, 8, 0xff);
    seq(&mut v, 2, 0x06);
    v.mem_write(4, 0x77);
    assert_eq!(plane_bytes(&v, 4), [0, 0x77, 0x77, 0]);
}

#[test]
fn write_modes_1_2_and_3() {
    let mut v = vga();
    planar(&mut v);
    v.vram[..4].copy_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    // Mode 1 copies the latches.
    gc(&mut v, 5, 0x01);
    v.mem_read(0);
    v.mem_write(7, 0xff);
    assert_eq!(plane_bytes(&v, 7), [0x11, 0x22, 0x33, 0x44]);
    // Mode 2: the value's low nibble is a colour, spread over the bit mask.
    gc(&mut v, 5, 0x02);
    gc(&mut v, 8, 0x81);
    v.mem_read(0);
    v.mem_write(8, 0xfa);
    assert_eq!(
        plane_bytes(&v, 8),
        [0x11 & 0x7e, 0x22 | 0x81, 0x33 & 0x7e, 0x44 | 0x81]
    );
    // Mode 3: set/reset is the colour, the rotated value ANDs the bit mask.
    gc(&mut v, 5, 0x03);
    gc(&mut v, 0, 0x0c);
    gc(&mut v, 8, 0xf0);
    gc(&mut v, 3, 0x04);
    v.mem_read(0);
    v.mem_write(9, 0xc3); // rotated right by 4: 0x3c; mask 0x30
    assert_eq!(
        plane_bytes(&v, 9),
        [0x11 & !0x30, 0x22 & !0x30, 0x33 | 0x30, 0x44 | 0x30]
    );
}

#[test]
fn read_modes_0_and_1() {
    let mut v = vga();
    planar(&mut v);
    v.vram[40..44].copy_from_slice(&[0b1100_1010, 0b1010_0110, 0b1111_0000, 0b0000_1111]);
    for plane in 0..4 {
        gc(&mut v, 4, plane);
        assert_eq!(v.mem_read(10), v.vram[40 + usize::from(plane)]);
    }
    // Read mode 1: which pixels have colour 0b0101 (planes 0 and 2 set)?
    gc(&mut v, 5, 0x08);
    gc(&mut v, 2, 0x05);
    gc(&mut v, 7, 0x0f);
    let expect = (0..8).fold(0u8, |m, bit| {
        let colour = (0..4).fold(0, |c, p| c | ((v.vram[40 + p] >> bit) & 1) << p);
        m | u8::from(colour == 0b0101) << bit
    });
    assert_eq!(v.mem_read(10), expect);
    // Planes that don't count: only plane 2 compared.
    gc(&mut v, 7, 0x04);
    assert_eq!(v.mem_read(10), 0b1111_0000);
}

#[test]
fn chain_4_writes_land_in_the_plane_of_the_low_address_bits() {
    let mut v = vga();
    planar(&mut v);
    seq(&mut v, 4, 0x0e);
    for i in 0..8u8 {
        v.mem_write(u64::from(i), 0x10 + i);
    }
    assert_eq!(plane_bytes(&v, 0), [0x10, 0x11, 0x12, 0x13]);
    assert_eq!(plane_bytes(&v, 1), [0x14, 0x15, 0x16, 0x17]);
    seq(&mut v, 2, 0x0b);
    v.mem_write(6, 0xee);
    v.mem_write(7, 0xee);
    assert_eq!(
        plane_bytes(&v, 1),
        [0x14, 0x15, 0x16, 0xee],
        "plane 2 masked"
    );
    assert_eq!(v.mem_read(5), 0x15);
}

#[test]
fn odd_even_and_the_memory_map_select() {
    let mut v = vga();
    // Mode 3: window at 0xB8000, even bytes to plane 0, odd to plane 1.
    seq(&mut v, 2, 0x03);
    seq(&mut v, 4, 0x02);
    gc(&mut v, 5, 0x10);
    gc(&mut v, 6, 0x0e);
    v.mem_write(0x1_8000, b'A');
    v.mem_write(0x1_8001, 0x1f);
    v.mem_write(0x1_8002, b'B');
    assert_eq!(plane_bytes(&v, 0), [b'A', 0x1f, 0, 0]);
    assert_eq!(plane_bytes(&v, 1), [b'B', 0, 0, 0]);
    assert_eq!(v.mem_read(0x1_8001), 0x1f);
    assert_eq!(v.mem_read(0x0_0000), 0xff, "0xA0000 is not mapped");
    v.mem_write(0x1_0000, 0x77);
    assert_eq!(plane_bytes(&v, 0)[0], b'A');
    // 0xB0000, 32 KiB.
    gc(&mut v, 6, 0x0a);
    assert_eq!(v.mem_read(0x1_0000), b'A');
    assert_eq!(v.mem_read(0x1_8000), 0xff);
    // 0xA0000, 128 KiB: the whole window.
    gc(&mut v, 6, 0x02);
    assert_eq!(v.mem_read(0x0), b'A');
    assert_eq!(v.mem_read(0x1_ffff), 0);
}

/// 80x25 text with 16-line characters, the colour ports, identity attribute
/// palette: what the VGA BIOS leaves for mode 3, minus the font.
fn text_mode(v: &mut Vga, dots8: bool) {
    v.port_write(port::MISC_WRITE, 0x67);
    seq(v, 1, u8::from(dots8));
    seq(v, 2, 0x03);
    seq(v, 3, 0x00);
    seq(v, 4, 0x02);
    gc(v, 5, 0x10);
    gc(v, 6, 0x0e);
    gc(v, 8, 0xff);
    for (i, x) in [
        (0x01, 0x4f),
        (0x07, 0x1f),
        (0x09, 0x4f),
        (0x0a, 0x0d),
        (0x0b, 0x0e),
        (0x12, 0x8f),
        (0x13, 0x28),
        (0x17, 0xa3),
    ] {
        crtc(v, i, x);
    }
    for i in 0..16 {
        attr(v, i, i);
    }
    attr(v, 0x10, 0x04);
    attr(v, 0x12, 0x0f);
    show(v);
    dac(v, 1, [0, 0, 0x2a]);
    dac(v, 15, [0x3f, 0x3f, 0x3f]);
}

fn at(d: &Display, x: u32, y: u32) -> u32 {
    d.pixels[(y * d.width + x) as usize]
}

#[test]
fn text_mode_draws_glyphs_from_plane_2_in_attribute_colours() {
    let mut v = vga();
    text_mode(&mut v, true);
    // 'A' white on blue at (0,0), a box-drawing 0xC4 at (1,0).
    v.vram[0..2].copy_from_slice(&[0x41, 0x1f]);
    v.vram[4..6].copy_from_slice(&[0xc4, 0x1f]);
    let glyph = |ch: usize, line: usize| (ch * 32 + line) * 4 + 2;
    v.vram[glyph(0x41, 0)] = 0x80;
    v.vram[glyph(0x41, 1)] = 0x01;
    v.vram[glyph(0xc4, 3)] = 0xff;
    let d = v.snapshot();
    assert_eq!((d.width, d.height), (640, 400));
    let (white, blue) = (0xff_ffff, 0x00_00a8);
    assert_eq!(at(&d, 0, 0), white);
    assert_eq!(at(&d, 1, 0), blue);
    assert_eq!(at(&d, 7, 1), white);
    assert_eq!(at(&d, 6, 1), blue);
    assert_eq!(at(&d, 0, 2), blue);
    assert_eq!(at(&d, 20, 20), 0, "blank cells are black on black");
    assert!(d.frames > 0);

    // 9-dot cells: line-graphics characters extend into the ninth column,
    // others leave it background.
    seq(&mut v, 1, 0x00);
    let d = v.snapshot();
    assert_eq!((d.width, d.height), (720, 400));
    assert_eq!(at(&d, 9 + 7, 3), white);
    assert_eq!(at(&d, 9 + 8, 3), white);
    assert_eq!(at(&d, 8, 1), blue, "'A' has no ninth column");
    attr(&mut v, 0x10, 0x00);
    show(&mut v);
    assert_eq!(at(&v.snapshot(), 9 + 8, 3), blue);

    // The cursor: lines 13 and 14 of the cell at CR0E:CR0F.
    crtc(&mut v, 0x0f, 1);
    let d = v.snapshot();
    assert_eq!(at(&d, 9 + 4, 13), white);
    assert_eq!(at(&d, 9 + 4, 14), white);
    assert_eq!(at(&d, 9 + 4, 12), blue);
    crtc(&mut v, 0x0a, 0x2d);
    assert_eq!(at(&v.snapshot(), 9 + 4, 13), blue, "cursor disabled");

    // Bright background versus blink: attribute 0x9f.
    v.vram[1] = 0x9f;
    dac(&mut v, 9, [0x3f, 0, 0]);
    assert_eq!(at(&v.snapshot(), 1, 0), 0xff_0000);
    attr(&mut v, 0x10, 0x08);
    show(&mut v);
    assert_eq!(at(&v.snapshot(), 1, 0), blue);

    // Blanked while the palette address source bit is clear.
    v.port_read(port::STATUS1_COLOR);
    v.port_write(port::ATTR_WRITE, 0x00);
    assert!(v.snapshot().pixels.iter().all(|&p| p == 0));
}

#[test]
fn text_written_through_the_window_and_a_font_loaded_like_the_bios() {
    let mut v = vga();
    text_mode(&mut v, true);
    // Font load: plane 2 only, sequential, window at 0xA0000.
    seq(&mut v, 2, 0x04);
    seq(&mut v, 4, 0x06);
    gc(&mut v, 4, 0x02);
    gc(&mut v, 5, 0x00);
    gc(&mut v, 6, 0x04);
    for line in 0..16 {
        v.mem_write(0x41 * 32 + line, 0xff);
    }
    // Back to text.
    seq(&mut v, 2, 0x03);
    seq(&mut v, 4, 0x02);
    gc(&mut v, 4, 0x00);
    gc(&mut v, 5, 0x10);
    gc(&mut v, 6, 0x0e);
    // Second cell of the second row.
    let cell = 0x1_8000 + 2 * (80 + 1);
    v.mem_write(cell, 0x41);
    v.mem_write(cell + 1, 0x0f);
    let d = v.snapshot();
    assert_eq!(at(&d, 8 + 3, 16 + 5), 0xff_ffff);
    assert_eq!(at(&d, 3, 16 + 5), 0);
}

#[test]
fn mode_13h_shows_chain_4_bytes_through_the_dac() {
    let mut v = vga();
    v.port_write(port::MISC_WRITE, 0x63);
    seq(&mut v, 1, 0x01);
    seq(&mut v, 2, 0x0f);
    seq(&mut v, 4, 0x0e);
    gc(&mut v, 5, 0x40);
    gc(&mut v, 6, 0x05);
    for (i, x) in [
        (0x01, 0x4f),
        (0x07, 0x1f),
        (0x09, 0x41),
        (0x12, 0x8f),
        (0x13, 0x28),
        (0x17, 0xa3),
    ] {
        crtc(&mut v, i, x);
    }
    attr(&mut v, 0x10, 0x41);
    show(&mut v);
    dac(&mut v, 7, [0x3f, 0x20, 0x00]);
    v.mem_write(320 * 10 + 5, 7);
    let d = v.snapshot();
    assert_eq!((d.width, d.height), (640, 400), "QEMU's size for mode 13h");
    for (x, y) in [(10, 20), (11, 20), (10, 21), (11, 21)] {
        assert_eq!(at(&d, x, y), 0xff_8000, "({x},{y})");
    }
    assert_eq!(at(&d, 12, 20), 0);
    assert_eq!(at(&d, 10, 22), 0);
    // 6-bit components scale by 4 with the low bit repeated.
    assert_eq!(c6_to_8_for_test(0x20), 0x80);
    assert_eq!(c6_to_8_for_test(0x21), 0x87);
    assert_eq!(c6_to_8_for_test(0x3f), 0xff);
}

fn c6_to_8_for_test(v: u8) -> u32 {
    let d = {
        let mut v2 = vga();
        v2.regs.gr[gr::MISC] = 1;
        v2.regs.gr[gr::MODE] = 0x40;
        v2.regs.cr[cr::H_DISP] = 0;
        v2.regs.ar_index = 0x20;
        v2.regs.palette[..3].copy_from_slice(&[v, 0, 0]);
        v2.snapshot()
    };
    d.pixels[0] >> 16
}

#[test]
fn mode_12h_shows_four_planes() {
    let mut v = vga();
    v.port_write(port::MISC_WRITE, 0xe3);
    planar(&mut v);
    seq(&mut v, 1, 0x01);
    for (i, x) in [
        (0x01, 0x4f),
        (0x07, 0x3e),
        (0x09, 0x40),
        (0x12, 0xdf),
        (0x13, 0x28),
        (0x17, 0xe3),
    ] {
        crtc(&mut v, i, x);
    }
    for i in 0..16 {
        attr(&mut v, i, i);
    }
    attr(&mut v, 0x10, 0x01);
    attr(&mut v, 0x12, 0x0f);
    show(&mut v);
    dac(&mut v, 12, [0x3f, 0x00, 0x3f]);
    // Write mode 2, colour 12 into the first pixel of line 1.
    gc(&mut v, 5, 0x02);
    gc(&mut v, 8, 0x80);
    v.mem_read(80);
    v.mem_write(80, 12);
    let d = v.snapshot();
    assert_eq!((d.width, d.height), (640, 480));
    assert_eq!(at(&d, 0, 1), 0xff_00ff);
    assert_eq!(at(&d, 1, 1), 0);
    assert_eq!(at(&d, 0, 0), 0);
    // The colour plane enable register hides planes from the display.
    attr(&mut v, 0x12, 0x03);
    show(&mut v);
    assert_eq!(at(&v.snapshot(), 0, 1), 0);
}

fn vbe_set(v: &mut Vga, index: u16, value: u16) {
    v.vbe_write(false, index);
    v.vbe_write(true, value);
}

fn vbe_get(v: &mut Vga, index: u16) -> u16 {
    v.vbe_write(false, index);
    v.vbe_read(true)
}

#[test]
fn vbe_id_negotiation_and_capabilities() {
    let mut v = Vga::new(16 * MIB).unwrap();
    assert_eq!(vbe_get(&mut v, vbe::index::ID), vbe::ID5);
    vbe_set(&mut v, vbe::index::ID, 0xb0c2);
    assert_eq!(vbe_get(&mut v, vbe::index::ID), 0xb0c2);
    vbe_set(&mut v, vbe::index::ID, 0xb0c6);
    assert_eq!(vbe_get(&mut v, vbe::index::ID), 0xb0c2, "unknown version");
    assert_eq!(vbe_get(&mut v, vbe::index::VIDEO_MEMORY_64K), 256);
    assert_eq!(vbe_get(&mut v, 0x0b), 0);
    assert_eq!(v.vbe_read(false), 0x0b);
    vbe_set(&mut v, vbe::index::ENABLE, vbe::enable::GETCAPS);
    assert_eq!(vbe_get(&mut v, vbe::index::XRES), vbe::MAX_XRES);
    assert_eq!(vbe_get(&mut v, vbe::index::YRES), vbe::MAX_YRES);
    assert_eq!(vbe_get(&mut v, vbe::index::BPP), 32);
    vbe_set(&mut v, vbe::index::ENABLE, 0);
    assert_eq!(vbe_get(&mut v, vbe::index::XRES), 0);
}

#[test]
fn vbe_modes_are_clamped_to_video_memory() {
    let mut v = vga();
    vbe_set(&mut v, vbe::index::XRES, 16001);
    vbe_set(&mut v, vbe::index::YRES, 12000);
    vbe_set(&mut v, vbe::index::BPP, 7);
    vbe_set(&mut v, vbe::index::ENABLE, vbe::enable::ENABLED);
    assert_eq!(vbe_get(&mut v, vbe::index::BPP), 8);
    assert_eq!(vbe_get(&mut v, vbe::index::XRES), 16000);
    assert_eq!(vbe_get(&mut v, vbe::index::YRES), (MIB / 16000) as u16);
    assert_eq!(
        vbe_get(&mut v, vbe::index::VIRT_HEIGHT),
        (MIB / 16000) as u16
    );
    vbe_set(&mut v, vbe::index::BPP, 32);
    assert_eq!(vbe_get(&mut v, vbe::index::YRES), (MIB / 64000) as u16);
    // Panning past the end of memory falls back to the top.
    vbe_set(&mut v, vbe::index::Y_OFFSET, 5000);
    assert_eq!(vbe_get(&mut v, vbe::index::Y_OFFSET), 0);
    vbe_set(&mut v, vbe::index::XRES, 0);
    assert_eq!(vbe_get(&mut v, vbe::index::XRES), 8);
    show(&mut v);
    let d = v.snapshot();
    assert_eq!(d.pixels.len(), (d.width * d.height) as usize);
}

#[test]
fn vbe_banks_move_the_legacy_window_without_the_lfb() {
    let mut v = vga();
    v.vram[..16].fill(0x5a);
    vbe_set(&mut v, vbe::index::XRES, 640);
    vbe_set(&mut v, vbe::index::YRES, 480);
    vbe_set(&mut v, vbe::index::BPP, 8);
    vbe_set(&mut v, vbe::index::ENABLE, vbe::enable::ENABLED);
    assert_eq!(v.vram[0], 0, "enabling clears the screen");
    v.mem_write(0x10, 0xab);
    assert_eq!(v.vram[0x10], 0xab);
    vbe_set(&mut v, vbe::index::BANK, 3);
    v.mem_write(0x20, 0xcd);
    assert_eq!(v.vram[0x3_0020], 0xcd);
    assert_eq!(v.mem_read(0x20), 0xcd);
    assert_eq!(v.mem_read(0x1_0000), 0xff, "64 KiB window");
    vbe_set(&mut v, vbe::index::BANK, 0xffff);
    assert_eq!(vbe_get(&mut v, vbe::index::BANK), 15, "1 MiB: 16 banks");
    // The palette, 6 bits then 8.
    show(&mut v);
    dac(&mut v, 0xcd, [0x3f, 0x10, 0x01]);
    let d = v.snapshot();
    assert_eq!((d.width, d.height), (640, 480));
    vbe_set(&mut v, vbe::index::BANK, 0);
    v.mem_write(5, 0xcd);
    assert_eq!(at(&v.snapshot(), 5, 0), 0xff_4007);
    vbe_set(
        &mut v,
        vbe::index::ENABLE,
        vbe::enable::ENABLED | vbe::enable::DAC_8BIT,
    );
    assert_eq!(at(&v.snapshot(), 5, 0), 0x3f_1001);
    // NOCLEARMEM keeps memory across a re-enable; disabling resets the bank.
    vbe_set(&mut v, vbe::index::BANK, 2);
    vbe_set(&mut v, vbe::index::ENABLE, 0);
    assert_eq!(vbe_get(&mut v, vbe::index::BANK), 0);
    vbe_set(
        &mut v,
        vbe::index::ENABLE,
        vbe::enable::ENABLED | vbe::enable::NOCLEARMEM,
    );
    assert_eq!(v.vram[5], 0xcd);
}

#[test]
fn vbe_depths_render() {
    let mut v = vga();
    show(&mut v);
    for (bpp, bytes, expect) in [
        (15u16, vec![0x1f, 0x7c], 0xf8_00f8u32),
        (16, vec![0xe0, 0x07], 0x00_fc00),
        (24, vec![0x01, 0x02, 0x03], 0x03_0201),
        (32, vec![0x01, 0x02, 0x03, 0xff], 0x03_0201),
    ] {
        vbe_set(&mut v, vbe::index::ENABLE, 0);
        vbe_set(&mut v, vbe::index::XRES, 64);
        vbe_set(&mut v, vbe::index::YRES, 8);
        vbe_set(&mut v, vbe::index::BPP, bpp);
        vbe_set(
            &mut v,
            vbe::index::ENABLE,
            vbe::enable::ENABLED | vbe::enable::LFB_ENABLED,
        );
        let line = v.vbe.line_offset as usize;
        let at_px = line + bytes.len() * 2;
        v.vram[at_px..at_px + bytes.len()].copy_from_slice(&bytes);
        let d = v.snapshot();
        assert_eq!((d.width, d.height), (64, 8));
        assert_eq!(at(&d, 2, 1), expect, "{bpp} bpp");
        assert_eq!(at(&d, 1, 1), 0, "{bpp} bpp");
    }
}

#[test]
fn state_round_trips_and_refuses_other_sizes() {
    let mut v = vga();
    text_mode(&mut v, false);
    v.vram[0..2].copy_from_slice(&[0x41, 0x1f]);
    v.vram[(0x41 * 32) * 4 + 2] = 0xaa;
    vbe_set(&mut v, vbe::index::XRES, 320);
    v.port_write(port::DAC_READ_INDEX, 1);
    v.port_read(port::DAC_DATA);
    let saved = v.save_state();
    let mut w = vga();
    w.restore_state(&saved).unwrap();
    assert_eq!(w.regs, v.regs);
    assert_eq!(w.vbe, v.vbe);
    assert_eq!(w.vram, v.vram);
    assert_eq!(w.snapshot().pixels, v.snapshot().pixels);
    assert_eq!(w.port_read(port::DAC_DATA), v.port_read(port::DAC_DATA));
    let mut big = Vga::new(2 * MIB).unwrap();
    assert!(big.restore_state(&saved).is_err());
    w.reset();
    assert_eq!(w.regs, Regs::new());
    assert!(w.vram.iter().all(|&b| b == 0));
}

/// Random port, VBE, window and framebuffer accesses with snapshots between:
/// nothing panics and every snapshot has as many pixels as it claims.
/// `TURING_VGA_FUZZ_ITERATIONS` runs longer and `TURING_VGA_FUZZ_SEED`
/// replays a seed.
#[test]
fn random_register_traffic_never_panics() {
    let (mut rng, iterations) = crate::testing::FuzzRng::from_env("VGA", 0x5eed_0f76, 20_000);
    let seed = rng.seed();
    let mut v = vga();
    for step in 0..iterations {
        let x = rng.next();
        let value = (x >> 32) as u8;
        match x % 16 {
            0..=5 => {
                let port = FIRST_PORT + (x >> 8) as u16 % 0x30;
                v.port_write(port, value);
            }
            6..=7 => {
                let port = FIRST_PORT + (x >> 8) as u16 % 0x30;
                v.port_read(port);
            }
            8 => v.vbe_write(false, (x >> 8) as u16 % 12),
            9 => {
                // Mostly plausible values, sometimes anything.
                let word = if x & 0x100 != 0 {
                    (x >> 40) as u16
                } else {
                    (x >> 40) as u16 % 2048
                };
                v.vbe_write(true, word);
            }
            10 => {
                v.vbe_read(true);
            }
            11 | 12 => v.mem_write((x >> 8) % 0x2_0000, value),
            13 => {
                v.mem_read((x >> 8) % 0x2_0000);
            }
            14 => v.lfb_write((x >> 8) % (MIB as u64 + 16), 4, x >> 40),
            _ => {
                v.lfb_read((x >> 8) % (MIB as u64 + 16), 8);
            }
        }
        if step % 512 == 0 {
            let d = v.snapshot();
            assert_eq!(
                d.pixels.len() as u64,
                u64::from(d.width) * u64::from(d.height),
                "seed {seed:#x} step {step}"
            );
        }
        if step % 4096 == 0 {
            let saved = v.save_state();
            let mut w = vga();
            w.restore_state(&saved)
                .unwrap_or_else(|e| panic!("seed {seed:#x} step {step}: {e}"));
        }
    }
}
