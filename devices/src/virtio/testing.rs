//! A hand-written virtio driver for unit tests: it lays out split queues in a test
//! RAM and drives a transport's registers the way Linux's virtio drivers do; the
//! virtio-mmio transport by default, any other through [`TestTransport`].

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

/// The transport side of a device, as the test driver works it.
pub(crate) trait TestTransport {
    /// Reads the device status.
    fn status(&mut self) -> u32;
    /// Writes the device status.
    fn set_status(&mut self, status: u32);
    /// Reads the device's 64-bit feature word.
    fn device_features(&mut self) -> u64;
    /// Writes the driver's 64-bit feature word.
    fn set_driver_features(&mut self, features: u64);
    /// Selects `queue` and returns its maximum size (0: no such queue).
    fn queue_max(&mut self, queue: usize) -> u16;
    /// Sets up the selected queue and enables it; whether it reads back ready.
    fn setup_queue(&mut self, size: u16, desc: u64, avail: u64, used: u64) -> bool;
    /// Notifies `queue`.
    fn notify(&mut self, queue: usize);
}

impl TestTransport for VirtioMmio {
    fn status(&mut self) -> u32 {
        self.read(0x070, 4).unwrap() as u32
    }

    fn set_status(&mut self, status: u32) {
        self.write(0x070, 4, u64::from(status)).unwrap();
    }

    fn device_features(&mut self) -> u64 {
        self.write(0x014, 4, 0).unwrap();
        let low = self.read(0x010, 4).unwrap();
        self.write(0x014, 4, 1).unwrap();
        low | self.read(0x010, 4).unwrap() << 32
    }

    fn set_driver_features(&mut self, features: u64) {
        self.write(0x024, 4, 0).unwrap();
        self.write(0x020, 4, features & 0xffff_ffff).unwrap();
        self.write(0x024, 4, 1).unwrap();
        self.write(0x020, 4, features >> 32).unwrap();
    }

    fn queue_max(&mut self, queue: usize) -> u16 {
        self.write(0x030, 4, queue as u64).unwrap();
        self.read(0x034, 4).unwrap() as u16
    }

    fn setup_queue(&mut self, size: u16, desc: u64, avail: u64, used: u64) -> bool {
        let regs = [
            (0x038, u64::from(size)),
            (0x080, desc & 0xffff_ffff),
            (0x084, desc >> 32),
            (0x090, avail & 0xffff_ffff),
            (0x094, avail >> 32),
            (0x0a0, used & 0xffff_ffff),
            (0x0a4, used >> 32),
            (0x044, 1),
        ];
        for (offset, value) in regs {
            self.write(offset, 4, value).unwrap();
        }
        self.read(0x044, 4).unwrap() == 1
    }

    fn notify(&mut self, queue: usize) {
        self.write(0x050, 4, queue as u64).unwrap();
    }
}

/// The driver side of one device, over any transport (virtio-mmio by default).
pub(crate) struct Driver<T: TestTransport = VirtioMmio> {
    pub(crate) dev: T,
    ram: Arc<GuestRam>,
    sizes: Vec<u16>,
    next_desc: Vec<u16>,
    avail_idx: Vec<u16>,
}

impl Driver<VirtioMmio> {
    pub(crate) fn read(&mut self, offset: u64) -> u32 {
        self.dev.read(offset, 4).unwrap() as u32
    }

    pub(crate) fn write(&mut self, offset: u64, value: u32) {
        self.dev.write(offset, 4, u64::from(value)).unwrap();
    }
}

impl<T: TestTransport> Driver<T> {
    pub(crate) fn new(dev: T, ram: &Arc<GuestRam>) -> Driver<T> {
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
    pub(crate) fn fork<U: TestTransport>(&self, dev: U, ram: &Arc<GuestRam>) -> Driver<U> {
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

    pub(crate) fn status(&mut self) -> u32 {
        self.dev.status()
    }

    /// Reads the device's 64-bit feature word.
    pub(crate) fn device_features(&mut self) -> u64 {
        self.dev.device_features()
    }

    /// Resets the device and negotiates `features`; panics (the test fails) when the
    /// device refuses them.
    pub(crate) fn negotiate(&mut self, features: u64) {
        self.dev.set_status(0);
        self.dev.set_status(1);
        self.dev.set_status(1 | 2);
        let offered = self.device_features();
        assert_eq!(features & !offered, 0, "asking for features not offered");
        self.dev.set_driver_features(features);
        self.dev.set_status(1 | 2 | 8);
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
            let max = self.dev.queue_max(queue);
            if max == 0 {
                break;
            }
            let size = QUEUE_SIZE.min(max);
            let table = self.desc_table(queue);
            assert!(self.ram.write_bytes(table, &[0; 0x3000]));
            let ready = self.dev.setup_queue(
                size,
                RAM_BASE + table,
                RAM_BASE + self.avail_ring(queue),
                RAM_BASE + self.used_ring(queue),
            );
            assert!(ready, "queue {queue} not ready");
            self.sizes.push(size);
        }
        self.next_desc = vec![0; self.sizes.len()];
        self.avail_idx = vec![0; self.sizes.len()];
    }

    /// Negotiates `features`, sets up the queues and sets DRIVER_OK.
    pub(crate) fn init(&mut self, features: u64) {
        self.init_without_driver_ok(features);
        self.dev.set_status(1 | 2 | 8 | 4);
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
        self.dev.notify(queue);
    }

    /// Builds a chain from `(ram offset, len, device-writable)` buffers on consecutive
    /// descriptors, publishes it and returns its head.
    pub(crate) fn submit(&mut self, queue: usize, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.offer(queue, bufs);
        self.dev.notify(queue);
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
