//! Guest memory as virtio devices see it: a `vm-memory` view of Turing's RAM mapping.
//!
//! [`GuestMemoryHandle`] wraps the existing host mapping of [`GuestRam`] in a
//! `vm_memory` region without copying it, so the `virtio-queue` crate can walk rings
//! and descriptor chains with its bounds-checked, volatile accessors. Every clone of
//! the view, and every region inside it, holds an `Arc<GuestRam>`, so the mapping
//! cannot go away while anything can still reach it.

use std::fmt;
use std::sync::Arc;

use emu_core::GuestRam;
use thiserror::Error;
use vm_memory::GuestMemoryBackend;
use vm_memory::bitmap::BS;
use vm_memory::{
    GuestAddress, GuestMemoryError, GuestMemoryRegion, GuestMemoryRegionBytes,
    GuestRegionCollection, GuestRegionMmap, GuestUsize, MemoryRegionAddress, MmapRegion,
    VolatileSlice,
};

/// Errors building a [`GuestMemoryHandle`].
#[derive(Debug, Error)]
pub enum MemoryHandleError {
    /// RAM would end past the top of the guest physical address space.
    #[error("guest RAM at {base:#x} with size {len:#x} wraps the address space")]
    Wraps {
        /// Guest physical address of RAM.
        base: u64,
        /// RAM size in bytes.
        len: u64,
    },
    /// `vm-memory` refused the host mapping (for example an unaligned pointer).
    #[error("cannot describe guest RAM to vm-memory: {0}")]
    Region(String),
}

/// One RAM region: the `vm-memory` view plus the `Arc` that keeps its mapping alive.
///
/// The inner region never escapes this type (there is no accessor for it), so no
/// `Arc<MmapRegion>` built over the borrowed mapping can outlive `ram`.
pub struct RamRegion {
    inner: GuestRegionMmap<()>,
    ram: Arc<GuestRam>,
}

impl fmt::Debug for RamRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RamRegion")
            .field("start", &self.inner.start_addr())
            .field("len", &GuestMemoryRegion::len(&self.inner))
            .finish()
    }
}

impl GuestMemoryRegion for RamRegion {
    type B = ();

    fn len(&self) -> GuestUsize {
        GuestMemoryRegion::len(&self.inner)
    }

    fn start_addr(&self) -> GuestAddress {
        self.inner.start_addr()
    }

    fn bitmap(&self) -> BS<'_, ()> {
        self.inner.bitmap()
    }

    fn get_host_address(&self, addr: MemoryRegionAddress) -> Result<*mut u8, GuestMemoryError> {
        self.inner.get_host_address(addr)
    }

    fn get_slice(
        &self,
        offset: MemoryRegionAddress,
        count: usize,
    ) -> Result<VolatileSlice<'_, BS<'_, ()>>, GuestMemoryError> {
        self.inner.get_slice(offset, count)
    }
}

impl GuestMemoryRegionBytes for RamRegion {}

impl RamRegion {
    /// Tells the CPUs that `len` bytes at `offset` into this region were written
    /// behind their back, so they drop code decoded from there.
    fn note_write(&self, offset: u64, len: u64) {
        self.ram.note_write(offset, len, None);
    }
}

/// Tells the CPUs that a device wrote `len` bytes at guest physical `addr`
/// through `mem` (DMA), so code decoded from those bytes is dropped before it
/// runs again. Bytes outside RAM are ignored (the write failed there anyway).
pub fn note_dma_write(mem: &VirtioMemory, addr: u64, len: usize) {
    let mut addr = addr;
    let mut left = len as u64;
    while left > 0 {
        let Some(region) = mem.find_region(GuestAddress(addr)) else {
            return;
        };
        let offset = addr - region.start_addr().0;
        let n = left.min(GuestMemoryRegion::len(region) - offset);
        region.note_write(offset, n);
        addr += n;
        left -= n;
    }
}

/// Guest memory in the form the `virtio-queue` crate walks.
pub type VirtioMemory = GuestRegionCollection<RamRegion>;

/// Shared access to guest RAM for virtio devices; cheap to clone.
#[derive(Clone, Debug)]
pub struct GuestMemoryHandle {
    mem: VirtioMemory,
    base: u64,
    len: u64,
}

impl GuestMemoryHandle {
    /// A view of `ram`, which the guest sees at physical address `base`.
    pub fn new(ram: Arc<GuestRam>, base: u64) -> Result<GuestMemoryHandle, MemoryHandleError> {
        let len = ram.len();
        GuestMemoryHandle::with_len(ram, base, len)
    }

    /// A view of the first `len` bytes of `ram` (a machine's RAM, when the same
    /// backing also holds its ROM after the RAM), seen at physical `base`.
    pub fn with_len(
        ram: Arc<GuestRam>,
        base: u64,
        len: u64,
    ) -> Result<GuestMemoryHandle, MemoryHandleError> {
        let wraps = || MemoryHandleError::Wraps { base, len };
        if len == 0 || len > ram.len() {
            return Err(MemoryHandleError::Region(format!(
                "{len:#x} bytes of a {:#x}-byte backing",
                ram.len()
            )));
        }
        base.checked_add(len).ok_or_else(wraps)?;
        let size = usize::try_from(len).map_err(|_| wraps())?;
        // SAFETY: `host_base_ptr` points at a live anonymous mapping of at least
        // `len` bytes (checked above against `ram.len()`), page-aligned, readable and writable (PROT_READ |
        // PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, as memmap2 maps it). The region is
        // built unowned, so dropping it never unmaps, and it lives only inside the
        // `RamRegion` below, next to an `Arc<GuestRam>` that keeps the mapping mapped
        // for as long as the region (and every clone of the collection, which shares
        // the region through an `Arc`) exists. vm-memory reaches the bytes only with
        // raw volatile copies and atomics, never with Rust references, which is what
        // `GuestRam` requires of anyone sharing its mapping with running vCPUs.
        let mapping = unsafe {
            MmapRegion::<()>::build_raw(
                ram.host_base_ptr(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            )
        }
        .map_err(|e| MemoryHandleError::Region(e.to_string()))?;
        let inner = GuestRegionMmap::new(mapping, GuestAddress(base)).ok_or_else(wraps)?;
        let region = RamRegion { inner, ram };
        let mem = GuestRegionCollection::from_regions(vec![region])
            .map_err(|e| MemoryHandleError::Region(e.to_string()))?;
        Ok(GuestMemoryHandle { mem, base, len })
    }

    /// The `vm-memory` view, for walking queues.
    pub fn memory(&self) -> &VirtioMemory {
        &self.mem
    }

    /// Guest physical address of the first byte of RAM.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// RAM size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: RAM has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend};

    #[test]
    fn sees_the_same_bytes_as_guest_ram() {
        let ram = Arc::new(GuestRam::new(0x4000).unwrap());
        let handle = GuestMemoryHandle::new(ram.clone(), 0x8000_0000).unwrap();
        let mem = handle.memory();
        ram.write_u32(0x10, 0xdead_beef);
        let value: u32 = mem.read_obj(GuestAddress(0x8000_0010)).unwrap();
        assert_eq!(value, 0xdead_beef);
        mem.write_slice(&[1, 2, 3], GuestAddress(0x8000_3ffd))
            .unwrap();
        assert_eq!(ram.read_u8(0x3fff), Some(3));
        // Outside RAM, on either side and across the end.
        assert!(mem.read_obj::<u8>(GuestAddress(0x7fff_ffff)).is_err());
        assert!(mem.write_slice(&[0; 4], GuestAddress(0x8000_3ffe)).is_err());
        assert!(!mem.check_range(GuestAddress(0x8000_3000), 0x1001));
        assert_eq!(handle.len(), 0x4000);
    }

    #[test]
    fn the_view_keeps_ram_alive() {
        let ram = Arc::new(GuestRam::new(0x1000).unwrap());
        let handle = GuestMemoryHandle::new(ram, 0x1000).unwrap();
        let view = handle.memory().clone();
        drop(handle);
        view.write_obj(7u64, GuestAddress(0x1008)).unwrap();
        assert_eq!(view.read_obj::<u64>(GuestAddress(0x1008)).unwrap(), 7);
    }

    #[test]
    fn rejects_ram_that_wraps() {
        let ram = Arc::new(GuestRam::new(0x2000).unwrap());
        assert!(matches!(
            GuestMemoryHandle::new(ram, u64::MAX - 0xfff),
            Err(MemoryHandleError::Wraps { .. })
        ));
    }

    #[test]
    fn dma_writes_reach_the_cpus_code_inboxes() {
        let ram = Arc::new(GuestRam::new(0x4000).unwrap());
        let handle = GuestMemoryHandle::new(ram.clone(), 0x8000_0000).unwrap();
        let cpu = ram.watch_code_writes();
        note_dma_write(handle.memory(), 0x8000_1000, 16);
        assert!(!cpu.has_pending(), "no code on that page");
        ram.mark_code_page(0x1000);
        note_dma_write(handle.memory(), 0x8000_0ff0, 32);
        assert_eq!(cpu.take(), Some(vec![0x1000]));
        // Past the end of RAM: nothing to tell, and no panic.
        note_dma_write(handle.memory(), 0x8000_3ff0, 0x100);
        note_dma_write(handle.memory(), 0x9000_0000, 8);
        assert!(!cpu.has_pending());
    }
}
