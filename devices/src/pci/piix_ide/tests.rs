//! The PIIX3 IDE function driven through its ports as SeaBIOS and Linux's
//! ata_piix drive it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use emu_core::GuestRam;

use super::*;
use crate::block::{BlockBackend, open_raw};
use crate::ide::{CONTROL_NIEN, CONTROL_SRST, STATUS_DRDY, STATUS_DRQ, STATUS_ERR};
use crate::testing::{TestIrq, assert_refuses_foreign_states};

const RAM_SIZE: u64 = 1 << 20;
const BM_BASE: u16 = 0xc000;
const PRI: u16 = 0x1f0;
const SEC: u16 = 0x170;
const PRI_CTL: u16 = 0x3f6;
const SEC_CTL: u16 = 0x376;
/// Sectors of the test disk.
const DISK_SECTORS: u64 = 64;
/// CD sectors of the test disc.
const CD_SECTORS: u64 = 20;

/// An image in memory whose bytes the test can see, and which fails on
/// demand like a broken host disk.
#[derive(Clone, Default)]
struct MemDisk {
    data: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
}

impl MemDisk {
    fn new(bytes: Vec<u8>) -> MemDisk {
        MemDisk {
            data: Arc::new(Mutex::new(bytes)),
            fail: Arc::default(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }
}

impl BlockBackend for MemDisk {
    fn len(&self) -> u64 {
        self.data.lock().unwrap().len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected"));
        }
        let data = self.data.lock().unwrap();
        let start = offset as usize;
        buf.copy_from_slice(&data[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected"));
        }
        let mut bytes = self.data.lock().unwrap();
        let start = offset as usize;
        bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Byte `i` of a pattern image: distinct for each sector and offset.
fn pattern(len: usize, sector: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / sector) as u8).wrapping_mul(31) ^ (i as u8))
        .collect()
}

struct Rig {
    ide: PiixIde,
    irqs: [TestIrq; 2],
    ram: Arc<GuestRam>,
    disk: MemDisk,
    cd: MemDisk,
}

fn rig_with(drives: [[Option<IdeDrive>; 2]; 2], disk: MemDisk, cd: MemDisk) -> Rig {
    let ram = Arc::new(GuestRam::new(RAM_SIZE).unwrap());
    let memory = GuestMemoryHandle::new(ram.clone(), 0).unwrap();
    let irqs = [TestIrq::default(), TestIrq::default()];
    let lines: [Box<dyn IrqLine>; 2] = [Box::new(irqs[0].clone()), Box::new(irqs[1].clone())];
    let ide = PiixIde::new(drives, lines, memory).unwrap();
    let mut rig = Rig {
        ide,
        irqs,
        ram,
        disk,
        cd,
    };
    rig.firmware_setup();
    rig
}

/// A disk as primary master, a CD-ROM with a disc as secondary master.
fn rig() -> Rig {
    let disk = MemDisk::new(pattern(DISK_SECTORS as usize * 512, 512));
    let cd = MemDisk::new(pattern(CD_SECTORS as usize * 2048, 2048));
    let drives = [
        [Some(IdeDrive::disk(Box::new(disk.clone()), false)), None],
        [Some(IdeDrive::cdrom(Some(Box::new(cd.clone())))), None],
    ];
    rig_with(drives, disk, cd)
}

impl Rig {
    /// What SeaBIOS does: BAR 4, I/O space and bus master, IDETIM decode.
    fn firmware_setup(&mut self) {
        self.ide.config_write(0x20, 4, u32::from(BM_BASE));
        self.ide.config_write(0x04, 2, 0x0005);
        self.ide.config_write(0x40, 2, 0x8000);
        self.ide.config_write(0x42, 2, 0x8000);
    }

    fn read(&mut self, port: u16, size: u8) -> u32 {
        match self.ide.decode_pio(u64::from(port), u64::from(size)) {
            Some((bar, offset)) => self.ide.bar_read(bar, offset, size) as u32,
            None => u32::MAX >> (32 - 8 * u32::from(size)),
        }
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        if let Some((bar, offset)) = self.ide.decode_pio(u64::from(port), u64::from(size)) {
            self.ide.bar_write(bar, offset, size, u64::from(value));
        }
    }

    fn inb(&mut self, port: u16) -> u8 {
        self.read(port, 1) as u8
    }

    fn outb(&mut self, port: u16, value: u8) {
        self.write(port, 1, u32::from(value));
    }

    fn inw(&mut self, port: u16) -> u16 {
        self.read(port, 2) as u16
    }

    fn outw(&mut self, port: u16, value: u16) {
        self.write(port, 2, u32::from(value));
    }

    /// Reads `n` bytes from the data port, 32 bits at a time (as Linux).
    fn read_data(&mut self, base: u16, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() + 4 <= n {
            out.extend_from_slice(&self.read(base, 4).to_le_bytes());
        }
        while out.len() < n {
            out.extend_from_slice(&self.inw(base).to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn write_data(&mut self, base: u16, data: &[u8]) {
        for w in data.chunks(2) {
            self.outw(base, u16::from_le_bytes([w[0], w[1]]));
        }
    }

    /// LBA28 task file and command.
    fn ata28(&mut self, base: u16, command: u8, lba: u32, count: u8) {
        let [b0, b1, b2, b3] = lba.to_le_bytes();
        self.outb(base + 6, 0xe0 | (b3 & 0x0f));
        self.outb(base + 2, count);
        self.outb(base + 3, b0);
        self.outb(base + 4, b1);
        self.outb(base + 5, b2);
        self.outb(base + 7, command);
    }

    /// LBA48 task file (high bytes first) and command.
    fn ata48(&mut self, base: u16, command: u8, lba: u64, count: u16) {
        let b = lba.to_le_bytes();
        let [c0, c1] = count.to_le_bytes();
        self.outb(base + 6, 0x40);
        self.outb(base + 2, c1);
        self.outb(base + 3, b[3]);
        self.outb(base + 4, b[4]);
        self.outb(base + 5, b[5]);
        self.outb(base + 2, c0);
        self.outb(base + 3, b[0]);
        self.outb(base + 4, b[1]);
        self.outb(base + 5, b[2]);
        self.outb(base + 7, command);
    }

    fn identify(&mut self, base: u16, command: u8) -> Vec<u8> {
        self.outb(base + 6, 0xa0);
        self.outb(base + 7, command);
        // The alternate status, which leaves the interrupt pending.
        assert_ne!(self.inb(base + 0x206) & STATUS_DRQ, 0);
        self.read_data(base, 512)
    }

    /// Sends an ATAPI packet to the secondary master.
    fn packet(&mut self, cdb: &[u8], byte_count: u16, dma: bool) {
        let mut packet = [0u8; 12];
        packet[..cdb.len()].copy_from_slice(cdb);
        self.outb(SEC + 6, 0xa0);
        self.outb(SEC + 1, u8::from(dma));
        let [lo, hi] = byte_count.to_le_bytes();
        self.outb(SEC + 4, lo);
        self.outb(SEC + 5, hi);
        self.outb(SEC + 7, 0xa0);
        assert_eq!(self.inb(SEC_CTL) & (STATUS_DRQ | 0x80), STATUS_DRQ);
        assert_eq!(self.inb(SEC + 2) & 3, 1, "C/D for the packet");
        self.write_data(SEC, &packet);
    }

    /// Reads every DRQ block of an ATAPI data-in command; the data and the
    /// final status. Each block's interrupt is checked and acknowledged.
    fn atapi_data(&mut self) -> (Vec<u8>, u8) {
        let mut data = Vec::new();
        loop {
            assert!(self.irqs[1].level(), "an interrupt for each block");
            let status = self.inb(SEC + 7);
            assert!(!self.irqs[1].level(), "status read acknowledges");
            if status & STATUS_DRQ == 0 {
                assert_eq!(self.inb(SEC + 2) & 3, 3, "I/O and C/D at the end");
                return (data, status);
            }
            assert_eq!(self.inb(SEC + 2) & 3, 2, "I/O for data");
            let n = usize::from(u16::from_le_bytes([self.inb(SEC + 4), self.inb(SEC + 5)]));
            data.extend(self.read_data(SEC, n));
        }
    }

    fn sense(&mut self) -> [u8; 3] {
        self.packet(&[0x03, 0, 0, 0, 18], 18, false);
        let (d, status) = self.atapi_data();
        assert_eq!(status & STATUS_ERR, 0);
        [d[2] & 0x0f, d[12], d[13]]
    }

    /// Lays out a PRD table at `table` with (address, bytes) regions.
    fn prd(&self, table: u64, regions: &[(u32, u32)]) {
        for (i, &(addr, len)) in regions.iter().enumerate() {
            let eot = if i + 1 == regions.len() { 1 << 31 } else { 0 };
            let at = table + 8 * i as u64;
            assert!(self.ram.write_u32(at, addr));
            assert!(self.ram.write_u32(at + 4, (len & 0xffff) | eot));
        }
    }

    /// Programs channel `ch`'s bus master (table, direction) as Linux does
    /// before the command.
    fn bm_setup(&mut self, ch: u16, table: u32, to_memory: bool) {
        let base = BM_BASE + 8 * ch;
        self.write(base + 4, 4, table);
        self.outb(base, if to_memory { 0x08 } else { 0 });
        let status = self.inb(base + 2);
        self.outb(base + 2, status | 0x06);
    }

    fn bm_start(&mut self, ch: u16, to_memory: bool) {
        let base = BM_BASE + 8 * ch;
        self.outb(base, if to_memory { 0x09 } else { 0x01 });
    }

    fn ram_bytes(&self, at: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        assert!(self.ram.read_bytes(at, &mut v));
        v
    }
}

fn word(d: &[u8], w: usize) -> u16 {
    u16::from_le_bytes([d[2 * w], d[2 * w + 1]])
}

/// An ATA string out of IDENTIFY data, bytes swapped back.
fn ata_string(d: &[u8], w: usize, words: usize) -> String {
    let mut s = Vec::new();
    for i in w..w + words {
        s.push(d[2 * i + 1]);
        s.push(d[2 * i]);
    }
    String::from_utf8(s).unwrap().trim_end().to_owned()
}

#[test]
fn ids_and_header_are_qemus() {
    let r = rig();
    let mut f = r.ide;
    f.reset();
    assert_eq!(f.config_read(0, 4), 0x7010_8086);
    assert_eq!(f.config_read(0x08, 4), 0x0101_8000);
    assert_eq!(f.config_read(0x0e, 1), 0, "single-function header");
    assert_eq!(f.config_read(0x3d, 1), 0, "no INTx pin");
    assert_eq!(f.config_read(0x04, 4), 0x0280_0000);
    assert_eq!(f.config_read(0x20, 4), 1, "BAR 4 is I/O");
    f.config_write(0x20, 4, u32::MAX);
    assert_eq!(f.config_read(0x20, 4), 0xffff_fff1, "16 bytes");
    assert_eq!(f.config_read(0x40, 4), 0, "IDETIM at reset");
}

#[test]
fn legacy_ports_decode_with_io_space_and_idetim() {
    let mut r = rig();
    r.ide.reset();
    assert_eq!(r.ide.decode_pio(0x1f7, 1), None);
    r.ide.config_write(0x40, 2, 0x8000);
    assert_eq!(r.ide.decode_pio(0x1f7, 1), None, "I/O space still off");
    r.ide.config_write(0x04, 2, 1);
    assert_eq!(
        r.ide.decode_pio(0x1f7, 1),
        Some((PRIMARY_COMMAND_WINDOW, 7))
    );
    assert_eq!(
        r.ide.decode_pio(0x1f0, 4),
        Some((PRIMARY_COMMAND_WINDOW, 0))
    );
    assert_eq!(
        r.ide.decode_pio(0x3f6, 1),
        Some((PRIMARY_CONTROL_WINDOW, 0))
    );
    assert_eq!(r.ide.decode_pio(0x3f7, 1), None, "the floppy's");
    assert_eq!(r.ide.decode_pio(0x177, 1), None, "secondary still off");
    assert_eq!(r.ide.config_read(0x40, 2), 0x8000);
    r.ide.config_write(0x42, 2, 0x8000);
    assert_eq!(
        r.ide.decode_pio(0x170, 2),
        Some((SECONDARY_COMMAND_WINDOW, 0))
    );
    assert_eq!(
        r.ide.decode_pio(0x376, 1),
        Some((SECONDARY_CONTROL_WINDOW, 0))
    );
    r.ide.config_write(0x04, 2, 0);
    assert_eq!(r.ide.decode_pio(0x170, 2), None);
    // A firmware-less machine can have them on from power-on.
    let ide = rig().ide.enable_legacy_decode();
    let mut ide = ide;
    ide.reset();
    assert!(ide.legacy_decode(0) && ide.legacy_decode(1));
}

#[test]
fn signatures_after_reset_and_srst() {
    let mut r = rig();
    for _ in 0..2 {
        assert_eq!(r.inb(PRI + 7), 0x50);
        assert_eq!(
            [
                r.inb(PRI + 2),
                r.inb(PRI + 3),
                r.inb(PRI + 4),
                r.inb(PRI + 5)
            ],
            [1, 1, 0, 0]
        );
        assert_eq!(r.inb(PRI + 1), 1, "diagnostics passed");
        assert_eq!(r.inb(SEC + 7), 0, "ATAPI clears DRDY after reset");
        assert_eq!(
            [
                r.inb(SEC + 2),
                r.inb(SEC + 3),
                r.inb(SEC + 4),
                r.inb(SEC + 5)
            ],
            [1, 1, 0x14, 0xeb]
        );
        // The absent slave: status 0, so probes find nothing.
        r.outb(PRI + 6, 0xb0);
        assert_eq!(r.inb(PRI + 7), 0);
        assert_eq!(r.inb(PRI_CTL), 0);
        // Its registers shadow the channel's writes, as Linux's probe expects.
        r.outb(PRI + 2, 0x55);
        assert_eq!(r.inb(PRI + 2), 0x55);
        // Software reset of both channels.
        r.outb(PRI + 6, 0xa0);
        for ctl in [PRI_CTL, SEC_CTL] {
            r.outb(ctl, CONTROL_SRST | CONTROL_NIEN);
            assert_ne!(r.inb(ctl) & 0x80, 0, "busy during reset");
            r.outb(ctl, CONTROL_NIEN);
        }
        assert_eq!(r.inb(PRI + 6) & 0x10, 0, "master selected after reset");
    }
}

#[test]
fn a_channel_without_drives_reads_zero() {
    let disk = MemDisk::new(vec![0; 512]);
    let drives = [
        [Some(IdeDrive::disk(Box::new(disk.clone()), false)), None],
        [None, None],
    ];
    let mut r = rig_with(drives, disk, MemDisk::default());
    for port in SEC + 1..=SEC + 7 {
        assert_eq!(r.inb(port), 0, "port {port:#x}");
    }
    r.outb(SEC + 7, 0xec);
    assert!(!r.irqs[1].level());
    assert_eq!(r.inb(SEC_CTL), 0);
}

#[test]
fn identify_device_describes_the_disk() {
    let mut r = rig();
    let d = r.identify(PRI, 0xec);
    assert!(r.irqs[0].level());
    assert_eq!(r.inb(PRI + 7), 0x50, "DRQ ends with the block");
    assert!(!r.irqs[0].level());
    assert_eq!(word(&d, 0), 0x0040);
    assert_eq!(ata_string(&d, 27, 20), "QEMU HARDDISK");
    assert_eq!(&d[54..58], b"EQUM", "byte-swapped as ATA lays strings out");
    assert_eq!(ata_string(&d, 10, 10), "QM00001");
    assert_eq!(ata_string(&d, 23, 4), "2.5+");
    assert_eq!(word(&d, 47), 0x8010);
    assert_eq!(word(&d, 49) & 0x0300, 0x0300, "LBA and DMA");
    assert_eq!(
        u32::from(word(&d, 60)) | u32::from(word(&d, 61)) << 16,
        DISK_SECTORS as u32
    );
    assert_eq!(word(&d, 100), DISK_SECTORS as u16);
    assert_ne!(word(&d, 83) & 1 << 10, 0, "LBA48");
    assert_eq!([word(&d, 1), word(&d, 3), word(&d, 6)], [2, 16, 63]);
    assert_eq!(word(&d, 88) & 0x3f, 0x3f, "UDMA 0-5");
    // SET FEATURES: UDMA mode 5 shows as selected.
    r.outb(PRI + 1, 0x03);
    r.outb(PRI + 2, 0x45);
    r.outb(PRI + 7, 0xef);
    assert_eq!(r.inb(PRI + 7), 0x50);
    let d = r.identify(PRI, 0xec);
    assert_eq!(word(&d, 88), 0x203f);
    assert_eq!(word(&d, 63) & 0xff00, 0);
}

#[test]
fn the_cd_aborts_identify_device_and_answers_identify_packet() {
    let mut r = rig();
    r.outb(SEC + 6, 0xa0);
    r.outb(SEC + 4, 0);
    r.outb(SEC + 5, 0);
    r.outb(SEC + 7, 0xec);
    assert_eq!(r.inb(SEC + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(r.inb(SEC + 1), 0x04);
    assert_eq!([r.inb(SEC + 4), r.inb(SEC + 5)], [0x14, 0xeb]);
    let d = r.identify(SEC, 0xa1);
    assert_eq!(word(&d, 0) >> 8, 0x85);
    assert_eq!(ata_string(&d, 27, 20), "QEMU DVD-ROM");
    assert_eq!(ata_string(&d, 10, 10), "QM00002");
    // The disk refuses the ATAPI commands.
    r.outb(PRI + 6, 0xa0);
    r.outb(PRI + 7, 0xa1);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    r.outb(PRI + 7, 0x08);
    assert_eq!(r.inb(PRI + 1), 0x04, "DEVICE RESET is for packet devices");
}

#[test]
fn pio_write_then_read_round_trips_lba28_and_lba48_on_a_file() {
    let path = std::env::temp_dir().join(format!("turing-ide-{}.img", std::process::id()));
    std::fs::write(&path, vec![0u8; 64 * 512]).unwrap();
    let backend = open_raw(&path, false).unwrap();
    let drives = [[Some(IdeDrive::disk(backend, false)), None], [None, None]];
    let mut r = rig_with(drives, MemDisk::default(), MemDisk::default());
    let data = pattern(3 * 512, 512);
    // WRITE SECTORS: DRQ without an interrupt, then one per block.
    r.ata28(PRI, 0x30, 5, 3);
    assert!(!r.irqs[0].level());
    for (i, block) in data.chunks(512).enumerate() {
        assert_ne!(r.inb(PRI_CTL) & STATUS_DRQ, 0, "block {i}");
        r.write_data(PRI, block);
        assert!(r.irqs[0].level());
        r.inb(PRI + 7);
    }
    assert_eq!(r.inb(PRI + 7), 0x50);
    // The registers show the last sector.
    assert_eq!(r.inb(PRI + 3), 7);
    // READ SECTORS EXT of the same sectors.
    r.ata48(PRI, 0x24, 5, 3);
    let mut back = Vec::new();
    for _ in 0..3 {
        assert!(r.irqs[0].level());
        assert_eq!(r.inb(PRI + 7), STATUS_DRDY | 0x10 | STATUS_DRQ);
        back.extend(r.read_data(PRI, 512));
    }
    assert_eq!(r.inb(PRI + 7), 0x50);
    assert_eq!(back, data);
    // WRITE SECTORS EXT at a 48-bit address, then flush.
    r.ata48(PRI, 0x34, 60, 1);
    r.write_data(PRI, &[0xa5; 512]);
    r.outb(PRI + 7, 0xea);
    assert_eq!(r.inb(PRI + 7), 0x50);
    drop(r);
    let file = std::fs::read(&path).unwrap();
    assert_eq!(&file[5 * 512..8 * 512], &data[..]);
    assert!(file[60 * 512..61 * 512].iter().all(|&b| b == 0xa5));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn chs_addressing_and_out_of_range_requests() {
    let mut r = rig();
    // C/H/S 0/1/2 is LBA 64? No: 16 heads x 63 sectors, so 0/0/5 is LBA 4.
    r.outb(PRI + 6, 0xa0);
    r.outb(PRI + 2, 1);
    r.outb(PRI + 3, 5);
    r.outb(PRI + 4, 0);
    r.outb(PRI + 5, 0);
    r.outb(PRI + 7, 0x20);
    let d = r.read_data(PRI, 512);
    assert_eq!(d, r.disk.bytes()[4 * 512..5 * 512]);
    // Past the end of the disk.
    r.ata28(PRI, 0x20, DISK_SECTORS as u32 - 1, 2);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(r.inb(PRI + 1), 0x04);
}

#[test]
fn read_multiple_moves_blocks_of_the_multiple_count() {
    let mut r = rig();
    r.outb(PRI + 2, 3);
    r.outb(PRI + 7, 0xc6);
    assert_eq!(
        r.inb(PRI + 7),
        STATUS_DRDY | STATUS_ERR,
        "not a power of two"
    );
    r.outb(PRI + 2, 4);
    r.outb(PRI + 7, 0xc6);
    assert_eq!(r.inb(PRI + 7), 0x50);
    assert_eq!(word(&r.identify(PRI, 0xec), 59), 0x104);
    r.ata28(PRI, 0xc4, 10, 10);
    let mut blocks = Vec::new();
    let mut data = Vec::new();
    while r.irqs[0].level() {
        assert_ne!(r.inb(PRI + 7) & STATUS_DRQ, 0);
        let mut n = 0;
        while r.inb(PRI_CTL) & STATUS_DRQ != 0 && !r.irqs[0].level() {
            data.extend(r.read_data(PRI, 2));
            n += 2;
        }
        blocks.push(n / 512);
    }
    assert_eq!(blocks, [4, 4, 2]);
    assert_eq!(data, r.disk.bytes()[10 * 512..20 * 512]);
    // With multiple mode off, READ MULTIPLE aborts.
    r.outb(PRI + 2, 0);
    r.outb(PRI + 7, 0xc6);
    r.ata28(PRI, 0xc4, 0, 1);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
}

#[test]
fn dma_write_and_read_through_prd_tables() {
    let mut r = rig();
    let data = pattern(8 * 512, 100);
    assert!(r.ram.write_bytes(0x1_0000, &data[..0x600]));
    assert!(r.ram.write_bytes(0x2_0000, &data[0x600..]));
    r.prd(0x8000, &[(0x1_0000, 0x600), (0x2_0000, 0xa00)]);
    r.bm_setup(0, 0x8000, false);
    r.ata28(PRI, 0xca, 20, 8);
    assert_eq!(
        r.inb(PRI_CTL) & STATUS_DRQ,
        STATUS_DRQ,
        "waiting for the bus master"
    );
    assert!(!r.irqs[0].level());
    r.bm_start(0, false);
    assert!(r.irqs[0].level());
    assert_eq!(
        r.inb(BM_BASE + 2) & 0x07,
        0x04,
        "interrupt, inactive, no error"
    );
    assert_eq!(r.inb(PRI + 7), 0x50);
    r.outb(BM_BASE, 0);
    assert_eq!(r.disk.bytes()[20 * 512..28 * 512], data[..]);
    // READ DMA EXT into one region of 64 KiB (count 0).
    r.prd(0x8000, &[(0x4_0000, 0)]);
    r.bm_setup(0, 0x8000, true);
    r.ata48(PRI, 0x25, 20, 8);
    r.bm_start(0, true);
    assert!(r.irqs[0].level());
    assert_eq!(r.inb(PRI + 7), 0x50);
    assert_eq!(r.ram_bytes(0x4_0000, 8 * 512), data);
    // A command issued after the engine started runs at once.
    r.bm_setup(0, 0x8000, true);
    r.bm_start(0, true);
    r.ata28(PRI, 0xc8, 0, 1);
    assert_eq!(r.inb(PRI + 7), 0x50);
    assert_eq!(r.ram_bytes(0x4_0000, 512), r.disk.bytes()[..512]);
}

#[test]
fn atapi_inquiry_capacity_and_read_in_pio() {
    let mut r = rig();
    r.packet(&[0x12, 0, 0, 0, 36], 0xfffe, false);
    let (d, status) = r.atapi_data();
    assert_eq!(status, 0x50);
    assert_eq!(d.len(), 36);
    assert_eq!(d[0], 5);
    assert_eq!(&d[8..16], b"QEMU    ");
    assert_eq!(&d[16..32], b"QEMU DVD-ROM    ");
    r.packet(&[0x25], 8, false);
    let (d, _) = r.atapi_data();
    assert_eq!(d, [0, 0, 0, CD_SECTORS as u8 - 1, 0, 0, 8, 0]);
    // READ(10) of 3 sectors with a 0x1000 byte limit: blocks of 4096, 2048.
    r.packet(&[0x28, 0, 0, 0, 0, 2, 0, 0, 3], 0x1000, false);
    let (d, status) = r.atapi_data();
    assert_eq!(status, 0x50);
    assert_eq!(d, r.cd.bytes()[2 * 2048..5 * 2048]);
    // An odd-sized limit: the blocks stay even and words straddle sectors.
    r.packet(&[0xa8, 0, 0, 0, 0, 1, 0, 0, 0, 2], 0x0ffb, false);
    let (d, _) = r.atapi_data();
    assert_eq!(d, r.cd.bytes()[2048..3 * 2048]);
    // Data by PIO needs a byte count limit.
    r.packet(&[0x12, 0, 0, 0, 36], 0, false);
    assert_eq!(r.inb(SEC + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(r.inb(SEC + 1), 0x04, "aborted at the ATA level");
    // READ TOC: one data track and the lead-out.
    r.packet(&[0x43, 0, 0, 0, 0, 0, 0, 0, 100], 100, false);
    let (d, _) = r.atapi_data();
    assert_eq!(d.len(), 20);
    assert_eq!(&d[..4], &[0, 18, 1, 1]);
    assert_eq!(d[14], 0xaa);
    assert_eq!(&d[16..20], &(CD_SECTORS as u32).to_be_bytes());
    // MODE SENSE(10) of the capabilities page.
    r.packet(&[0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64], 64, false);
    let (d, _) = r.atapi_data();
    assert_eq!(d[8], 0x2a);
    assert_eq!(usize::from(d[1]) + 2, d.len());
    // GET CONFIGURATION: a CD-sized image is a CD-ROM.
    r.packet(&[0x46, 0, 0, 0, 0, 0, 0, 0, 64], 64, false);
    let (d, _) = r.atapi_data();
    assert_eq!(&d[6..8], &[0, 8]);
}

#[test]
fn atapi_read_by_dma() {
    let mut r = rig();
    r.prd(0x9000, &[(0x3_0000, 0x1000), (0x5_0000, 0x800)]);
    r.bm_setup(1, 0x9000, true);
    r.packet(&[0x28, 0, 0, 0, 0, 4, 0, 0, 3], 0, true);
    assert!(!r.irqs[1].level());
    r.bm_start(1, true);
    assert!(r.irqs[1].level());
    assert_eq!(r.inb(BM_BASE + 8 + 2) & 7, 4);
    assert_eq!(r.inb(SEC + 7), 0x50);
    assert_eq!(r.inb(SEC + 2) & 3, 3);
    let cd = r.cd.bytes();
    assert_eq!(r.ram_bytes(0x3_0000, 0x1000), cd[4 * 2048..6 * 2048]);
    assert_eq!(r.ram_bytes(0x5_0000, 0x800), cd[6 * 2048..7 * 2048]);
    // A small reply by DMA too.
    r.bm_setup(1, 0x9000, true);
    r.packet(&[0x25], 8, true);
    r.bm_start(1, true);
    assert_eq!(r.ram_bytes(0x3_0000, 8), [0, 0, 0, 19, 0, 0, 8, 0]);
}

#[test]
fn illegal_commands_leave_sense_data() {
    let mut r = rig();
    r.packet(&[0xff], 0, false);
    assert!(r.irqs[1].level());
    assert_eq!(r.inb(SEC + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(
        r.inb(SEC + 1),
        0x50,
        "ILLEGAL REQUEST in the error register"
    );
    assert_eq!(r.sense(), [5, 0x20, 0]);
    assert_eq!(r.sense(), [0, 0, 0], "cleared by the next good command");
    // Out of range.
    r.packet(&[0x28, 0, 0, 0, 0, CD_SECTORS as u8, 0, 0, 1], 0, false);
    assert_eq!(r.inb(SEC + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(r.sense(), [5, 0x21, 0]);
}

#[test]
fn an_empty_tray_is_not_ready_and_a_new_disc_is_announced() {
    let drives = [[None, None], [Some(IdeDrive::cdrom(None)), None]];
    let mut r = rig_with(drives, MemDisk::default(), MemDisk::default());
    r.packet(&[0x00], 0, false);
    assert_eq!(r.inb(SEC + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(r.sense(), [2, 0x3a, 0]);
    // INQUIRY works without a disc.
    r.packet(&[0x12, 0, 0, 0, 36], 36, false);
    assert_eq!(r.atapi_data().1, 0x50);
    let disc = MemDisk::new(vec![0; 4 * 2048]);
    assert!(
        r.ide
            .channel_mut(1)
            .unwrap()
            .change_medium(0, Some(Box::new(disc)))
    );
    // GET EVENT STATUS NOTIFICATION sees the new medium once.
    for event in [2, 0] {
        r.packet(&[0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8], 8, false);
        let (d, _) = r.atapi_data();
        assert_eq!(&d[..6], &[0, 6, 4, 0x10, event, 2]);
    }
    // TEST UNIT READY: NOT READY, then UNIT ATTENTION, then ready.
    r.packet(&[0x00], 0, false);
    assert_eq!(r.sense(), [2, 0x3a, 0]);
    r.packet(&[0x00], 0, false);
    assert_eq!(r.sense(), [6, 0x28, 0]);
    r.packet(&[0x00], 0, false);
    assert_eq!(r.inb(SEC + 7), 0x50);
}

#[test]
fn interrupts_follow_nien_status_reads_and_commands() {
    let mut r = rig();
    r.outb(PRI_CTL, CONTROL_NIEN);
    r.outb(PRI + 7, 0xe5);
    assert!(!r.irqs[0].level(), "masked");
    r.outb(PRI_CTL, 0);
    assert!(r.irqs[0].level(), "pending shows once unmasked");
    assert_eq!(
        r.inb(PRI_CTL),
        0x50,
        "alternate status does not acknowledge"
    );
    assert!(r.irqs[0].level());
    r.outb(PRI + 7, 0xe5);
    assert!(r.irqs[0].level(), "a new command's interrupt");
    r.inb(PRI + 7);
    assert!(!r.irqs[0].level());
    assert_eq!(r.inb(PRI + 2), 0xff, "CHECK POWER MODE: active");
    // The bus master's interrupt bit mirrors INTRQ and is cleared by writing one.
    assert_ne!(r.inb(BM_BASE + 2) & 4, 0);
    r.outb(BM_BASE + 2, 4);
    assert_eq!(r.inb(BM_BASE + 2) & 4, 0);
    // SRST drops a pending interrupt.
    r.outb(PRI + 7, 0xe5);
    assert!(r.irqs[0].level());
    r.outb(PRI_CTL, CONTROL_SRST);
    assert!(!r.irqs[0].level());
    r.outb(PRI_CTL, 0);
    // Reset drops it too.
    r.outb(PRI + 7, 0xe5);
    r.ide.reset();
    assert!(!r.irqs[0].level());
}

#[test]
fn state_round_trips_mid_transfer() {
    let mut r = rig();
    r.ata28(PRI, 0x20, 3, 2);
    let first = r.read_data(PRI, 100);
    let saved = r.ide.save_state();
    let rest = r.read_data(PRI, 1024 - 100);
    let mut fresh = rig();
    fresh.ide.restore_state(&saved).unwrap();
    assert!(fresh.irqs[0].level(), "INTRQ redriven");
    let again = fresh.read_data(PRI, 1024 - 100);
    assert_eq!(again, rest);
    assert_eq!([first, rest].concat(), r.disk.bytes()[3 * 512..5 * 512]);
    assert_refuses_foreign_states(&mut fresh.ide);
    // A state edited to read past the disk, or with an impossible block, is
    // refused like guest input, not trusted.
    assert!(saved.data["channels"][0]["units"][0]["xfer"]["ReadPio"].is_object());
    for (field, value) in [("lba", u64::MAX - 1), ("block", 0), ("left", 1 << 40)] {
        let mut hostile = saved.clone();
        hostile.data["channels"][0]["units"][0]["xfer"]["ReadPio"][field] = value.into();
        let before = fresh.ide.save_state();
        assert!(fresh.ide.restore_state(&hostile).is_err(), "{field}");
        assert_eq!(fresh.ide.save_state(), before);
    }
    // Another set of drives refuses the state and keeps its own.
    let drives = [[None, None], [Some(IdeDrive::cdrom(None)), None]];
    let mut other = rig_with(drives, MemDisk::default(), MemDisk::default());
    let before = other.ide.save_state();
    assert!(other.ide.restore_state(&saved).is_err());
    assert_eq!(other.ide.save_state(), before);
}

#[test]
fn host_errors_complete_with_err() {
    let mut r = rig();
    r.disk.fail.store(true, Ordering::SeqCst);
    r.ata28(PRI, 0x20, 0, 1);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    r.ata28(PRI, 0x30, 0, 1);
    r.write_data(PRI, &[0; 512]);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    r.prd(0x8000, &[(0x1_0000, 512)]);
    r.bm_setup(0, 0x8000, true);
    r.ata28(PRI, 0xc8, 0, 1);
    r.bm_start(0, true);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    r.cd.fail.store(true, Ordering::SeqCst);
    r.packet(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1], 2048, false);
    assert_eq!(r.inb(SEC + 7) & STATUS_DRQ, STATUS_DRQ);
    r.read_data(SEC, 2);
    assert_eq!(r.inb(SEC + 7), STATUS_DRDY | STATUS_ERR);
    assert_eq!(r.sense()[0], 3);
    // A read-only disk refuses writes.
    let disk = MemDisk::new(vec![0; 4096]);
    let drives = [
        [Some(IdeDrive::disk(Box::new(disk.clone()), true)), None],
        [None, None],
    ];
    let mut r = rig_with(drives, disk, MemDisk::default());
    r.ata28(PRI, 0x30, 0, 1);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
}

#[test]
fn hostile_dma_and_phases_do_not_hurt_the_host() {
    let mut r = rig();
    // A PRD pointing past RAM: error bit, command aborted.
    r.prd(0x8000, &[(0xfff0_0000, 512)]);
    r.bm_setup(0, 0x8000, true);
    r.ata28(PRI, 0xc8, 0, 1);
    r.bm_start(0, true);
    assert_eq!(r.inb(BM_BASE + 2) & 7, 0x06);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    // The table itself past RAM.
    r.bm_setup(0, 0xffff_fff0, true);
    r.ata28(PRI, 0xc8, 0, 1);
    r.bm_start(0, true);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    // A table too short for the transfer: stops, no interrupt (as QEMU).
    r.prd(0x8000, &[(0x1_0000, 512)]);
    r.bm_setup(0, 0x8000, true);
    r.ata28(PRI, 0xc8, 0, 4);
    r.bm_start(0, true);
    assert!(!r.irqs[0].level());
    assert_eq!(r.inb(BM_BASE + 2) & 1, 0);
    assert_eq!(r.inb(PRI + 7), 0x50);
    // The largest 48-bit read (32 MiB) through a table of zeros (each entry
    // 64 KiB at address 0, no EOT): bounded work, in chunks.
    assert!(r.ram.write_bytes(0x8000, &[0; 0x100]));
    let mut big = rig_with(
        [
            [
                Some(IdeDrive::disk(
                    Box::new(MemDisk::new(vec![0; 0x1_0000 * 512])),
                    false,
                )),
                None,
            ],
            [None, None],
        ],
        MemDisk::default(),
        MemDisk::default(),
    );
    big.bm_setup(0, 0xf_0000, true);
    big.ata48(PRI, 0x25, 0, 0);
    big.bm_start(0, true);
    assert_eq!(big.inb(PRI + 7) & (0x80 | STATUS_DRQ), 0);
    // Bus mastering off: the transfer fails.
    r.ide.config_write(0x04, 2, 0x0001);
    r.prd(0x8000, &[(0x1_0000, 512)]);
    r.bm_setup(0, 0x8000, true);
    r.ata28(PRI, 0xc8, 0, 1);
    r.bm_start(0, true);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    // The data port without DRQ reads zero and writes go nowhere.
    assert_eq!(r.inw(PRI), 0);
    assert_eq!(r.read(PRI, 4), 0);
    r.outw(PRI, 0x1234);
    assert_eq!(r.inb(PRI + 7), STATUS_DRDY | STATUS_ERR);
    // A command while DRQ is up is ignored.
    r.ata28(PRI, 0x20, 0, 2);
    r.outb(PRI + 7, 0xec);
    assert_eq!(r.read_data(PRI, 512), r.disk.bytes()[..512]);
    // Byte and odd-sized accesses everywhere.
    for port in [
        PRI,
        PRI + 1,
        PRI + 7,
        BM_BASE + 1,
        BM_BASE + 3,
        BM_BASE + 15,
    ] {
        r.read(port, 1);
        r.write(port, 1, 0xff);
    }
    r.read(PRI + 6, 2);
    r.write(PRI + 5, 2, 0xffff);
}

/// Random accesses to every port and PRD tables of random bytes: nothing
/// panics, every access returns. `TURING_IDE_FUZZ_ITERATIONS` runs longer and
/// `TURING_IDE_FUZZ_SEED` replays a seed.
#[test]
fn random_port_traffic_never_panics() {
    let (mut rng, iterations) = crate::testing::FuzzRng::from_env("IDE", 0x1de_5eed, 20_000);
    let seed = rng.seed();
    let mut r = rig();
    let mut junk = vec![0u8; 0x2000];
    for b in &mut junk {
        *b = rng.next() as u8;
    }
    assert!(r.ram.write_bytes(0x8000, &junk));
    let ports = [PRI, SEC, PRI_CTL, SEC_CTL, BM_BASE];
    let commands: [u8; 17] = [
        0x20, 0x24, 0x30, 0xc4, 0xc5, 0xc6, 0xc8, 0xca, 0x25, 0x35, 0xa0, 0xa1, 0xec, 0xef, 0x90,
        0x08, 0xe7,
    ];
    for i in 0..iterations {
        let x = rng.next();
        let base = ports[(x % 5) as usize];
        let span = if base == BM_BASE {
            16
        } else if base == PRI_CTL || base == SEC_CTL {
            1
        } else {
            8
        };
        let port = base + ((x >> 8) % span) as u16;
        let size = [1u8, 2, 4][((x >> 16) % 3) as usize];
        let value = (x >> 32) as u32;
        match (x >> 20) % 8 {
            0..=2 => {
                r.read(port, size);
            }
            3 if port & 7 == 7 && base != BM_BASE => {
                let command = commands[((x >> 24) as usize) % commands.len()];
                r.write(port, 1, u32::from(command));
            }
            4 if base == BM_BASE => {
                // Point the engine at the junk table sometimes.
                r.write(BM_BASE + (port & 8) + 4, 4, 0x8000 + (value & 0x1ff8));
                r.write(BM_BASE + (port & 8), 1, value & 9);
            }
            // Software resets now and then only, so commands get to run.
            _ if (base == PRI_CTL || base == SEC_CTL) && !(x >> 40).is_multiple_of(16) => {
                r.write(port, 1, value & !u32::from(CONTROL_SRST));
            }
            _ => r.write(port, size, value),
        }
        if i % 1000 == 0 {
            let saved = r.ide.save_state();
            r.ide
                .restore_state(&saved)
                .unwrap_or_else(|e| panic!("seed {seed:#x}: {e}"));
        }
    }
}
