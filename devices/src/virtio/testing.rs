//! A hand-written virtio driver for unit tests: it lays out split queues in a test
//! RAM and drives the MMIO registers the way Linux's virtio-mmio driver does.

use std::sync::Arc;

use emu_core::{GuestRam, MmioDevice};

use super::{GuestMemoryHandle, VirtioMmio};

/// Guest physical address of the test RAM.
pub(crate) const RAM_BASE: u64 = 0x8000_0000;
/// Size of the test RAM.
pub(crate) const RAM_SIZE: u64 = 1 << 20;
/// Queue size the driver picks (capped by QueueNumMax).
const QUEUE_SIZE: u16 = 16;
/// RAM offset of queue 0's descriptor table; each queue takes 0x3000 bytes.
const RINGS: u64 = 0x1000;

/// A test RAM and the device view of it.
pub(crate) fn test_memory() -> (GuestMemoryHandle, Arc<GuestRam>) {
    let ram = Arc::new(GuestRam::new(RAM_SIZE).unwrap());
    let mem = GuestMemoryHandle::new(ram.clone(), RAM_BASE).unwrap();
    (mem, ram)
}

/// A second test RAM holding a copy of `ram`, and the device view of it.
pub(crate) fn copy_memory(ram: &GuestRam) -> (GuestMemoryHandle, Arc<GuestRam>) {
    let (mem, copy) = test_memory();
    let mut bytes = vec![0u8; RAM_SIZE as usize];
    assert!(ram.read_bytes(0, &mut bytes));
    assert!(copy.write_bytes(0, &bytes));
    (mem, copy)
}

pub(crate) use crate::testing::TestIrq;

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// The driver side of one device.
pub(crate) struct Driver {
    pub(crate) dev: VirtioMmio,
    ram: Arc<GuestRam>,
    sizes: Vec<u16>,
    next_desc: Vec<u16>,
    avail_idx: Vec<u16>,
}

impl Driver {
    pub(crate) fn new(dev: VirtioMmio, ram: &Arc<GuestRam>) -> Driver {
        Driver {
            dev,
            ram: ram.clone(),
            sizes: Vec::new(),
            next_desc: Vec::new(),
            avail_idx: Vec::new(),
        }
    }

    /// A driver in this one's state (queue layout, next free descriptors, available
    /// indices) for `dev` over `ram`: a restored device, over this driver's RAM or
    /// a copy of it.
    pub(crate) fn fork(&self, dev: VirtioMmio, ram: &Arc<GuestRam>) -> Driver {
        Driver {
            dev,
            ram: ram.clone(),
            sizes: self.sizes.clone(),
            next_desc: self.next_desc.clone(),
            avail_idx: self.avail_idx.clone(),
        }
    }

    pub(crate) fn base(&self) -> u64 {
        RAM_BASE
    }

    pub(crate) fn ram_len(&self) -> u64 {
        RAM_SIZE
    }

    pub(crate) fn read(&mut self, offset: u64) -> u32 {
        self.dev.read(offset, 4).unwrap() as u32
    }

    pub(crate) fn write(&mut self, offset: u64, value: u32) {
        self.dev.write(offset, 4, u64::from(value)).unwrap();
    }

    pub(crate) fn status(&mut self) -> u32 {
        self.read(0x070)
    }

    /// Reads the device's 64-bit feature word.
    pub(crate) fn device_features(&mut self) -> u64 {
        self.write(0x014, 0);
        let low = u64::from(self.read(0x010));
        self.write(0x014, 1);
        low | u64::from(self.read(0x010)) << 32
    }

    /// Resets the device and negotiates `features`; panics (the test fails) when the
    /// device refuses them.
    pub(crate) fn negotiate(&mut self, features: u64) {
        self.write(0x070, 0);
        self.write(0x070, 1);
        self.write(0x070, 1 | 2);
        let offered = self.device_features();
        assert_eq!(features & !offered, 0, "asking for features not offered");
        self.write(0x024, 0);
        self.write(0x020, features as u32);
        self.write(0x024, 1);
        self.write(0x020, (features >> 32) as u32);
        self.write(0x070, 1 | 2 | 8);
        assert_ne!(self.status() & 8, 0, "FEATURES_OK refused");
    }

    fn desc_table(&self, queue: usize) -> u64 {
        RINGS + queue as u64 * 0x3000
    }

    fn avail_ring(&self, queue: usize) -> u64 {
        self.desc_table(queue) + 0x1000
    }

    fn used_ring(&self, queue: usize) -> u64 {
        self.desc_table(queue) + 0x2000
    }

    /// Negotiates and sets up every queue, without DRIVER_OK.
    pub(crate) fn init_without_driver_ok(&mut self, features: u64) {
        self.negotiate(features);
        self.sizes.clear();
        for queue in 0..8 {
            self.write(0x030, queue as u32);
            let max = self.read(0x034);
            if max == 0 {
                break;
            }
            let size = QUEUE_SIZE.min(max as u16);
            let table = self.desc_table(queue);
            assert!(self.ram.write_bytes(table, &[0; 0x3000]));
            self.write(0x038, u32::from(size));
            let (desc, avail, used) = (
                RAM_BASE + table,
                RAM_BASE + self.avail_ring(queue),
                RAM_BASE + self.used_ring(queue),
            );
            self.write(0x080, desc as u32);
            self.write(0x084, (desc >> 32) as u32);
            self.write(0x090, avail as u32);
            self.write(0x094, (avail >> 32) as u32);
            self.write(0x0a0, used as u32);
            self.write(0x0a4, (used >> 32) as u32);
            self.write(0x044, 1);
            assert_eq!(self.read(0x044), 1, "queue {queue} not ready");
            self.sizes.push(size);
        }
        self.next_desc = vec![0; self.sizes.len()];
        self.avail_idx = vec![0; self.sizes.len()];
    }

    /// Negotiates `features`, sets up the queues and sets DRIVER_OK.
    pub(crate) fn init(&mut self, features: u64) {
        self.init_without_driver_ok(features);
        self.write(0x070, 1 | 2 | 8 | 4);
    }

    /// Writes a descriptor anywhere in RAM (for indirect tables); `addr` is a RAM
    /// offset, turned into a guest physical address (wrapping) here.
    pub(crate) fn write_raw_desc(&mut self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        assert!(self.ram.write_u64(at, RAM_BASE.wrapping_add(addr)));
        assert!(self.ram.write_u32(at + 8, len));
        assert!(self.ram.write_u16(at + 12, flags));
        assert!(self.ram.write_u16(at + 14, next));
    }

    /// Writes descriptor `index` of `queue`'s table.
    pub(crate) fn write_desc(
        &mut self,
        queue: usize,
        index: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = self.desc_table(queue) + 16 * u64::from(index);
        self.write_raw_desc(at, addr, len, flags, next);
    }

    /// Puts `head` in the available ring without notifying.
    pub(crate) fn add_avail(&mut self, queue: usize, head: u16) {
        let idx = self.avail_idx[queue];
        let slot = u64::from(idx % self.sizes[queue]);
        let avail = self.avail_ring(queue);
        assert!(self.ram.write_u16(avail + 4 + 2 * slot, head));
        self.avail_idx[queue] = idx.wrapping_add(1);
        self.write_avail_idx(queue, idx.wrapping_add(1));
    }

    /// Overwrites the available ring's index.
    pub(crate) fn write_avail_idx(&mut self, queue: usize, idx: u16) {
        let avail = self.avail_ring(queue);
        assert!(self.ram.write_u16(avail + 2, idx));
    }

    /// Makes `head` available and notifies.
    pub(crate) fn publish(&mut self, queue: usize, head: u16) {
        self.add_avail(queue, head);
        self.write(0x050, queue as u32);
    }

    /// Builds a chain from `(ram offset, len, device-writable)` buffers on consecutive
    /// descriptors, publishes it and returns its head.
    pub(crate) fn submit(&mut self, queue: usize, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.offer(queue, bufs);
        self.write(0x050, queue as u32);
        head
    }

    /// Builds a chain as [`Driver::submit`] does and makes it available, without
    /// notifying the device.
    pub(crate) fn offer(&mut self, queue: usize, bufs: &[(u64, u32, bool)]) -> u16 {
        let size = self.sizes[queue];
        let head = self.next_desc[queue];
        for (i, &(addr, len, writable)) in bufs.iter().enumerate() {
            let index = (head + i as u16) % size;
            let last = i + 1 == bufs.len();
            let flags = if writable { F_WRITE } else { 0 } | if last { 0 } else { F_NEXT };
            let next = (index + 1) % size;
            self.write_desc(queue, index, addr, len, flags, next);
        }
        self.next_desc[queue] = (head + bufs.len() as u16) % size;
        self.add_avail(queue, head);
        head
    }

    /// The used ring's index.
    pub(crate) fn used_idx(&self, queue: usize) -> u16 {
        self.ram.read_u16(self.used_ring(queue) + 2).unwrap()
    }

    /// Used-ring entry number `n` (counting from 0 since init) as `(id, len)`, if the
    /// device has written that many.
    pub(crate) fn used(&self, queue: usize, n: u16) -> Option<(u32, u32)> {
        if n >= self.used_idx(queue) {
            return None;
        }
        let slot = u64::from(n % self.sizes[queue]);
        let at = self.used_ring(queue) + 4 + 8 * slot;
        Some((self.ram.read_u32(at)?, self.ram.read_u32(at + 4)?))
    }
}
