use std::sync::Arc;

use emu_core::GuestRam;

use super::*;
use crate::testing::assert_refuses_foreign_states;

const RAM_SIZE: u64 = 0x10000;
/// Where the tests put DMA access structures, and the buffers they point at.
const ACCESS: u64 = 0x1000;
const BUFFER: u64 = 0x2000;

fn with_ram() -> (FwCfg, Arc<GuestRam>) {
    let ram = Arc::new(GuestRam::new(RAM_SIZE).unwrap());
    let mem = GuestMemoryHandle::new(ram.clone(), 0).unwrap();
    (FwCfg::new(Some(mem)), ram)
}

fn select(fw: &mut FwCfg, key: u16) {
    fw.write(SELECTOR_PORT, 2, u32::from(key));
}

fn read_bytes(fw: &mut FwCfg, n: usize) -> Vec<u8> {
    (0..n).map(|_| fw.read(DATA_PORT, 1) as u8).collect()
}

fn guest_bytes(ram: &GuestRam, at: u64, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    assert!(ram.read_bytes(at, &mut bytes));
    bytes
}

/// Writes a DMA access at `at` (big-endian fields) and starts it the way
/// SeaBIOS does: `outl(cpu_to_be32(high))`, then the low half. Returns the
/// control word the device left.
fn dma_at(fw: &mut FwCfg, ram: &GuestRam, at: u64, control: u32, length: u32, address: u64) -> u32 {
    let mut access = Vec::new();
    access.extend_from_slice(&control.to_be_bytes());
    access.extend_from_slice(&length.to_be_bytes());
    access.extend_from_slice(&address.to_be_bytes());
    assert!(ram.write_bytes(at, &access));
    fw.write(DMA_HIGH_PORT, 4, ((at >> 32) as u32).swap_bytes());
    fw.write(DMA_LOW_PORT, 4, (at as u32).swap_bytes());
    u32::from_be_bytes(guest_bytes(ram, at, 4).try_into().unwrap())
}

fn dma(fw: &mut FwCfg, ram: &GuestRam, control: u32, length: u32, address: u64) -> u32 {
    dma_at(fw, ram, ACCESS, control, length, address)
}

fn select_control(key: u16) -> u32 {
    u32::from(key) << DMA_CTL_SELECTOR_SHIFT | DMA_CTL_SELECT
}

#[test]
fn signature_and_id_read_through_the_data_port() {
    let (mut fw, _ram) = with_ram();
    // Power-on selects the signature.
    assert_eq!(read_bytes(&mut fw, 5), b"QEMU\0");
    select(&mut fw, key::ID);
    assert_eq!(read_bytes(&mut fw, 4), [0x03, 0, 0, 0], "port and DMA");
    let mut no_dma = FwCfg::new(None);
    select(&mut no_dma, key::ID);
    assert_eq!(read_bytes(&mut no_dma, 4), [0x01, 0, 0, 0]);
    // The DMA ports read "QEMU CFG" in byte order.
    let high = fw.read(DMA_HIGH_PORT, 4).to_le_bytes();
    let low = fw.read(DMA_LOW_PORT, 4).to_le_bytes();
    assert_eq!([high, low].concat(), b"QEMU CFG");
    // Byte reads at the selector port read data too; wide data reads float.
    select(&mut fw, key::SIGNATURE);
    assert_eq!(fw.read(SELECTOR_PORT, 1), u32::from(b'Q'));
    assert_eq!(fw.read(DATA_PORT, 2), 0xffff);
    assert_eq!(fw.read(DATA_PORT, 1), u32::from(b'E'));
}

#[test]
fn numeric_items_read_little_endian_then_zeros() {
    let (mut fw, _ram) = with_ram();
    fw.set_u64(key::RAM_SIZE, 128 << 20).unwrap();
    fw.set_u16(key::NB_CPUS, 2).unwrap();
    fw.set_u32(key::KERNEL_ADDR, 0x0010_0000).unwrap();
    select(&mut fw, key::RAM_SIZE);
    assert_eq!(read_bytes(&mut fw, 10), [0, 0, 0, 8, 0, 0, 0, 0, 0, 0]);
    select(&mut fw, key::NB_CPUS);
    assert_eq!(read_bytes(&mut fw, 3), [2, 0, 0]);
    select(&mut fw, key::KERNEL_ADDR);
    assert_eq!(read_bytes(&mut fw, 4), [0, 0, 0x10, 0]);
    // An item nobody set reads zeros, as does a key beyond every table.
    select(&mut fw, key::BOOT_MENU);
    assert_eq!(read_bytes(&mut fw, 2), [0, 0]);
    select(&mut fw, 0x3fff);
    assert_eq!(read_bytes(&mut fw, 2), [0, 0]);
    // Replacing an item is allowed; generated and file keys are not.
    fw.set_u16(key::NB_CPUS, 4).unwrap();
    assert_eq!(fw.item(key::NB_CPUS), Some(&[4, 0][..]));
    for reserved in [key::SIGNATURE, key::ID, key::FILE_DIR, 0x20, 0x3fff, 0x4005] {
        assert_eq!(
            fw.set_u16(reserved, 1),
            Err(FwCfgError::ReservedKey(reserved))
        );
    }
    fw.set_item(key::X86_E820_TABLE, vec![1, 2]).unwrap();
    select(&mut fw, key::X86_E820_TABLE);
    assert_eq!(read_bytes(&mut fw, 3), [1, 2, 0]);
}

#[test]
fn selecting_rewinds_the_item() {
    let (mut fw, _ram) = with_ram();
    fw.add_file("etc/a", b"abcdef".to_vec()).unwrap();
    let a = fw.file_key("etc/a").unwrap();
    select(&mut fw, a);
    assert_eq!(read_bytes(&mut fw, 2), b"ab");
    select(&mut fw, key::SIGNATURE);
    assert_eq!(read_bytes(&mut fw, 1), b"Q");
    select(&mut fw, a);
    assert_eq!(read_bytes(&mut fw, 3), b"abc");
    // An 8-bit selector write selects too; the write-channel bit is ignored.
    fw.write(SELECTOR_PORT, 1, u32::from(a));
    assert_eq!(read_bytes(&mut fw, 1), b"a");
    select(&mut fw, a | WRITE_CHANNEL);
    assert_eq!(read_bytes(&mut fw, 1), b"a");
}

/// One directory entry as QEMU lays it out.
fn dir_entry(size: u32, select: u16, name: &str) -> Vec<u8> {
    let mut entry = Vec::new();
    entry.extend_from_slice(&size.to_be_bytes());
    entry.extend_from_slice(&select.to_be_bytes());
    entry.extend_from_slice(&[0, 0]);
    let mut padded = name.as_bytes().to_vec();
    padded.resize(FILE_NAME_SIZE, 0);
    entry.extend_from_slice(&padded);
    entry
}

#[test]
fn the_file_directory_is_sorted_with_keys_in_name_order() {
    let (mut fw, _ram) = with_ram();
    fw.add_file("etc/e820", vec![0xee; 0x28]).unwrap();
    fw.add_file("bootorder", Vec::new()).unwrap();
    fw.add_file("bios-geometry", Vec::new()).unwrap();
    // As QEMU 8's pc lists its first entries (read from port 0x511 with a
    // probe BIOS): count, then size, select, reserved, name[56], big-endian.
    let mut expected = vec![0, 0, 0, 3];
    expected.extend(dir_entry(0, 0x20, "bios-geometry"));
    expected.extend(dir_entry(0, 0x21, "bootorder"));
    expected.extend(dir_entry(0x28, 0x22, "etc/e820"));
    assert_eq!(
        &expected[4..8 + 6],
        [0, 0, 0, 0, 0x00, 0x20, 0, 0, b'b', b'i']
    );
    select(&mut fw, key::FILE_DIR);
    assert_eq!(read_bytes(&mut fw, expected.len()), expected);
    assert_eq!(fw.read(DATA_PORT, 1), 0, "the directory ends there");
    assert_eq!(fw.file_key("etc/e820"), Some(0x22));
    select(&mut fw, 0x22);
    assert_eq!(read_bytes(&mut fw, 0x29)[0x27..], [0xee, 0]);

    // Names must fit 55 bytes plus NUL, and be unique.
    let long = "x".repeat(FILE_NAME_SIZE);
    assert_eq!(
        fw.add_file(&long, Vec::new()),
        Err(FwCfgError::BadName(long.clone()))
    );
    fw.add_file(&long[..FILE_NAME_SIZE - 1], Vec::new())
        .unwrap();
    assert!(matches!(
        fw.add_file("bootorder", vec![1]),
        Err(FwCfgError::DuplicateFile(_))
    ));
    assert!(matches!(
        fw.add_file("", vec![1]),
        Err(FwCfgError::BadName(_))
    ));
    assert!(matches!(
        fw.add_file("a\0b", vec![1]),
        Err(FwCfgError::BadName(_))
    ));
}

#[test]
fn dma_reads_select_then_fill_zeros_past_the_end() {
    let (mut fw, ram) = with_ram();
    fw.add_file("etc/table-loader", b"0123456789".to_vec())
        .unwrap();
    let file = fw.file_key("etc/table-loader").unwrap();
    assert!(ram.write_bytes(BUFFER, &[0xaa; 16]));
    let status = dma(
        &mut fw,
        &ram,
        select_control(file) | DMA_CTL_READ,
        4,
        BUFFER,
    );
    assert_eq!(status, 0, "completion clears the control word");
    assert_eq!(guest_bytes(&ram, BUFFER, 5), b"0123\xaa");
    // Without SELECT the transfer goes on from the offset; past the end the
    // buffer is zeroed.
    let status = dma(&mut fw, &ram, DMA_CTL_READ, 8, BUFFER);
    assert_eq!(status, 0);
    assert_eq!(guest_bytes(&ram, BUFFER, 9), b"456789\0\0\xaa");
    // The port reads where DMA left off: at the end.
    assert_eq!(fw.read(DATA_PORT, 1), 0);
}

#[test]
fn dma_skip_moves_the_offset_and_a_plain_select_reads_nothing() {
    let (mut fw, ram) = with_ram();
    fw.add_file("bootorder", b"/pci@i0cf8/ide@1,1\n".to_vec())
        .unwrap();
    let file = fw.file_key("bootorder").unwrap();
    assert_eq!(
        dma(&mut fw, &ram, select_control(file) | DMA_CTL_SKIP, 5, 0),
        0
    );
    assert_eq!(read_bytes(&mut fw, 4), b"i0cf");
    // SELECT alone rewinds and moves no bytes (the length is ignored).
    assert!(ram.write_bytes(BUFFER, &[0xaa; 4]));
    assert_eq!(dma(&mut fw, &ram, select_control(file), 4, BUFFER), 0);
    assert_eq!(guest_bytes(&ram, BUFFER, 4), [0xaa; 4]);
    assert_eq!(read_bytes(&mut fw, 4), b"/pci");
    // Skipping past the end is no error.
    assert_eq!(dma(&mut fw, &ram, DMA_CTL_SKIP, 100, 0), 0);
}

#[test]
fn dma_writes_only_whole_into_writable_files() {
    let (mut fw, ram) = with_ram();
    fw.add_writable_file("etc/smi/features-ok", vec![0; 4])
        .unwrap();
    fw.add_file("etc/e820", vec![0; 4]).unwrap();
    let writable = fw.file_key("etc/smi/features-ok").unwrap();
    let read_only = fw.file_key("etc/e820").unwrap();
    assert!(ram.write_bytes(BUFFER, b"wxyz"));
    let write = DMA_CTL_WRITE;
    assert_eq!(
        dma(&mut fw, &ram, select_control(writable) | write, 2, BUFFER),
        0
    );
    assert_eq!(dma(&mut fw, &ram, write, 2, BUFFER + 2), 0);
    assert_eq!(fw.file("etc/smi/features-ok"), Some(&b"wxyz"[..]));
    // Past the end, or running over it, is an error and writes nothing more.
    let status = dma(&mut fw, &ram, select_control(writable) | DMA_CTL_SKIP, 3, 0);
    assert_eq!(status, 0);
    assert_eq!(dma(&mut fw, &ram, write, 2, BUFFER), DMA_CTL_ERROR);
    assert_eq!(fw.file("etc/smi/features-ok"), Some(&b"wxyz"[..]));
    // Read-only items refuse writes.
    let status = dma(&mut fw, &ram, select_control(read_only) | write, 4, BUFFER);
    assert_eq!(status, DMA_CTL_ERROR);
    assert_eq!(fw.file("etc/e820"), Some(&[0u8; 4][..]));
    // READ wins when both are set, as in QEMU.
    let status = dma(
        &mut fw,
        &ram,
        select_control(writable) | write | DMA_CTL_READ,
        4,
        BUFFER + 8,
    );
    assert_eq!(status, 0);
    assert_eq!(guest_bytes(&ram, BUFFER + 8, 4), b"wxyz");
}

#[test]
fn bad_guest_addresses_are_reported_not_fatal() {
    let (mut fw, ram) = with_ram();
    fw.add_writable_file("opt/w", vec![7; 8]).unwrap();
    let file = fw.file_key("opt/w").unwrap();
    // A data address past RAM, straddling its end, or wrapping the address
    // space: ERROR in the control word.
    for address in [RAM_SIZE, RAM_SIZE - 4, u64::MAX - 3] {
        let status = dma(
            &mut fw,
            &ram,
            select_control(file) | DMA_CTL_READ,
            8,
            address,
        );
        assert_eq!(status, DMA_CTL_ERROR, "read to {address:#x}");
        let status = dma(
            &mut fw,
            &ram,
            select_control(file) | DMA_CTL_WRITE,
            8,
            address,
        );
        assert_eq!(status, DMA_CTL_ERROR, "write from {address:#x}");
    }
    // Zero-filling off the end of RAM (a read past the item).
    let status = dma(
        &mut fw,
        &ram,
        select_control(key::SIGNATURE) | DMA_CTL_READ,
        0x20000,
        0,
    );
    assert_eq!(status, DMA_CTL_ERROR);
    assert_eq!(fw.file("opt/w"), Some(&[7u8; 8][..]));
    // An access structure outside RAM: nothing to read it from or report to.
    fw.write(DMA_HIGH_PORT, 4, 0x0100_0000); // 1 << 32, big-endian
    fw.write(DMA_LOW_PORT, 4, 0);
    fw.write(DMA_HIGH_PORT, 4, 0);
    fw.write(DMA_LOW_PORT, 4, ((RAM_SIZE - 8) as u32).swap_bytes());
    // One straddling the end of RAM gets ERROR in the control word it has.
    assert_eq!(
        guest_bytes(&ram, RAM_SIZE - 8, 4),
        [0, 0, 0, DMA_CTL_ERROR as u8]
    );
}

#[test]
fn the_dma_high_half_applies_to_one_access() {
    let (mut fw, ram) = with_ram();
    // A high half of 1 puts the access at 4 GiB + ACCESS, outside RAM, so
    // nothing happens at ACCESS.
    assert!(ram.write_bytes(
        ACCESS,
        &(select_control(key::ID) | DMA_CTL_READ).to_be_bytes()
    ));
    fw.write(DMA_HIGH_PORT, 4, 1u32.swap_bytes());
    fw.write(DMA_LOW_PORT, 4, (ACCESS as u32).swap_bytes());
    assert_ne!(guest_bytes(&ram, ACCESS, 4), [0; 4]);
    // The next access, with no high half written, is below 4 GiB.
    fw.write(DMA_LOW_PORT, 4, (ACCESS as u32).swap_bytes());
    assert_eq!(guest_bytes(&ram, ACCESS, 4), [0; 4]);
    // Without memory, the DMA ports do nothing and the ID says so.
    let mut no_dma = FwCfg::new(None);
    no_dma.write(DMA_LOW_PORT, 4, (ACCESS as u32).swap_bytes());
}

#[test]
fn reset_selects_the_signature_and_state_round_trips() {
    let (mut a, ram) = with_ram();
    a.add_writable_file("etc/w", vec![0; 3]).unwrap();
    a.add_file("etc/r", b"read".to_vec()).unwrap();
    assert!(ram.write_bytes(BUFFER, b"new"));
    let w = a.file_key("etc/w").unwrap();
    assert_eq!(
        dma(&mut a, &ram, select_control(w) | DMA_CTL_WRITE, 3, BUFFER),
        0
    );
    let r = a.file_key("etc/r").unwrap();
    select(&mut a, r);
    assert_eq!(read_bytes(&mut a, 1), b"r");
    a.write(DMA_HIGH_PORT, 4, 0x1234_5678);

    let mut b = FwCfg::new(Some(GuestMemoryHandle::new(ram.clone(), 0).unwrap()));
    b.add_writable_file("etc/w", vec![0; 3]).unwrap();
    b.add_file("etc/r", b"read".to_vec()).unwrap();
    let saved = a.save_state();
    b.restore_state(&saved).unwrap();
    assert_eq!(b.save_state(), saved);
    assert_eq!(b.file("etc/w"), Some(&b"new"[..]));
    assert_eq!(read_bytes(&mut b, 3), b"ead");

    // A machine without that writable file cannot take the state.
    let mut c = FwCfg::new(None);
    c.add_writable_file("etc/w", vec![0; 4]).unwrap();
    assert!(matches!(
        c.restore_state(&saved),
        Err(StateError::Invalid { .. })
    ));
    assert_refuses_foreign_states(&mut c);

    b.reset();
    assert_eq!(read_bytes(&mut b, 4), b"QEMU");
    assert_eq!(b.save_state().data["dma_high"], 0);
    assert_eq!(b.file("etc/w"), Some(&b"new"[..]), "kept across reset");
}
