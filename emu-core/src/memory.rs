//! Guest RAM: one anonymous host mapping per RAM region.
//!
//! Every access is bounds-checked and goes through a raw pointer, never through a
//! Rust reference into guest memory, because other vCPUs and DMA may change any byte
//! at any time. Naturally aligned accesses use host atomics (relaxed), so concurrent
//! vCPUs see whole values, never torn ones, and the code stays free of data races.
//! A bitmap of code pages lets CPUs learn which writes hit memory they decoded:
//! a CPU's own stores see the bit and drop what it decoded there, and every other
//! write (another CPU's store, device DMA, a loader, a debugger) is passed to each
//! CPU's [`CodeWriteInbox`], which the CPU empties before it runs more code.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use memmap2::{MmapOptions, MmapRaw};
use thiserror::Error;

use crate::sync::LockRecover;

/// Size of a guest page for dirty and code tracking.
pub const PAGE_SIZE: u64 = 4096;
const PAGE_SHIFT: u32 = 12;

/// Errors creating guest memory.
#[derive(Debug, Error)]
pub enum MemoryError {
    /// RAM size zero or beyond what the host can map.
    #[error("invalid RAM size {0} bytes")]
    InvalidSize(u64),
    /// The host refused the mapping.
    #[error("cannot map {size} bytes of guest RAM: {source}")]
    Map {
        /// Requested size.
        size: u64,
        /// The host error.
        source: std::io::Error,
    },
}

/// Most pages an inbox lists before it gives up and asks for a full flush.
const INBOX_PAGES: usize = 256;

/// Code pages that someone else wrote since one CPU last looked: the CPU drops
/// what it decoded or translated from them before it runs on.
#[derive(Debug)]
pub struct CodeWriteInbox {
    pending: AtomicBool,
    /// Page-aligned RAM offsets; `None` after an overflow (drop everything).
    pages: Mutex<Option<Vec<u64>>>,
}

impl Default for CodeWriteInbox {
    fn default() -> CodeWriteInbox {
        CodeWriteInbox {
            pending: AtomicBool::new(false),
            pages: Mutex::new(Some(Vec::new())),
        }
    }
}

impl CodeWriteInbox {
    /// Whether writes arrived since the last [`CodeWriteInbox::take`]: one relaxed
    /// load, cheap enough for every dispatch.
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// The pages written since the last call (page-aligned RAM offsets), or
    /// `None` when too many arrived to list and the CPU must drop all its code.
    pub fn take(&self) -> Option<Vec<u64>> {
        let mut pages = self.pages.lock_recover();
        self.pending.store(false, Ordering::Release);
        pages.replace(Vec::new())
    }

    /// Asks the CPU to drop all the code it decoded.
    fn post_everything(&self) {
        *self.pages.lock_recover() = None;
        self.pending.store(true, Ordering::Release);
    }

    fn post(&self, written: &[u64]) {
        let mut pages = self.pages.lock_recover();
        if let Some(list) = pages.as_mut() {
            for &page in written {
                if !list.contains(&page) {
                    list.push(page);
                }
            }
            if list.len() > INBOX_PAGES {
                *pages = None;
            }
        }
        self.pending.store(true, Ordering::Release);
    }
}

/// A block of guest RAM backed by an anonymous host mapping.
#[derive(Debug)]
pub struct GuestRam {
    map: MmapRaw,
    len: u64,
    /// One bit per page: set when some CPU holds decoded instructions for the page.
    code_pages: Box<[AtomicU64]>,
    /// The CPUs that decode from this RAM, told of writes to code pages.
    watchers: Mutex<Vec<Weak<CodeWriteInbox>>>,
    /// How many CPUs registered (some may be gone): with one, a CPU's own store
    /// has nobody to tell, which [`GuestRam::note_write`] sees without a lock.
    watcher_count: std::sync::atomic::AtomicUsize,
}

macro_rules! ram_access {
    ($read:ident, $write:ident, $atomic:ident, $ty:ty) => {
        /// Reads a little-endian value at `offset`, or `None` when out of range.
        #[inline]
        pub fn $read(&self, offset: u64) -> Option<$ty> {
            const N: u64 = std::mem::size_of::<$ty>() as u64;
            let ptr = self.host_ptr(offset, N)?;
            let raw = if offset.is_multiple_of(N) {
                // SAFETY: `host_ptr` checked that [offset, offset+N) lies inside the
                // live mapping, and the address is aligned to N because the mapping is
                // page-aligned and offset is a multiple of N.
                unsafe { $atomic::from_ptr(ptr.cast::<$ty>()) }.load(Ordering::Relaxed)
            } else {
                // SAFETY: in bounds as above; read_unaligned has no alignment needs.
                unsafe { ptr::read_unaligned(ptr.cast::<$ty>()) }
            };
            Some(<$ty>::from_le(raw))
        }

        /// Writes a little-endian value at `offset`; false when out of range.
        #[inline]
        pub fn $write(&self, offset: u64, value: $ty) -> bool {
            const N: u64 = std::mem::size_of::<$ty>() as u64;
            let Some(ptr) = self.host_ptr(offset, N) else {
                return false;
            };
            if offset.is_multiple_of(N) {
                // SAFETY: in bounds of the live mapping and N-aligned (see the read).
                unsafe { $atomic::from_ptr(ptr.cast::<$ty>()) }
                    .store(value.to_le(), Ordering::Relaxed);
            } else {
                // SAFETY: in bounds; write_unaligned has no alignment needs.
                unsafe { ptr::write_unaligned(ptr.cast::<$ty>(), value.to_le()) };
            }
            true
        }
    };
}

/// What [`GuestRam::share`] maps over RAM pages.
#[derive(Clone, Copy, Debug)]
pub enum SharedPages {
    /// A file's pages from `offset`, through the open descriptor `fd`.
    File {
        /// The open file.
        fd: libc::c_int,
        /// Where in the file the pages start (page-aligned).
        offset: u64,
        /// Whether stores may go through (the file is open for writing).
        writable: bool,
    },
    /// Anonymous memory shared with forked children.
    Anonymous,
}

impl GuestRam {
    /// Maps `size` bytes of zeroed anonymous memory.
    pub fn new(size: u64) -> Result<GuestRam, MemoryError> {
        GuestRam::map(size, false)
    }

    /// Maps `size` bytes like [`GuestRam::new`] without reserving swap for them:
    /// for a sparse address space (a user-mode process's) that is far larger than
    /// what the guest will ever touch. Only touched pages cost host memory.
    pub fn new_sparse(size: u64) -> Result<GuestRam, MemoryError> {
        GuestRam::map(size, true)
    }

    fn map(size: u64, sparse: bool) -> Result<GuestRam, MemoryError> {
        let len = usize::try_from(size).map_err(|_| MemoryError::InvalidSize(size))?;
        if len == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::InvalidSize(size));
        }
        let mut options = MmapOptions::new();
        options.len(len);
        if sparse {
            options.no_reserve_swap();
        }
        let map = options
            .map_anon()
            .map_err(|source| MemoryError::Map { size, source })?;
        let map = MmapRaw::from(map);
        let words = (size >> PAGE_SHIFT).div_ceil(64);
        let code_pages = (0..words).map(|_| AtomicU64::new(0)).collect();
        Ok(GuestRam {
            map,
            len: size,
            code_pages,
            watchers: Mutex::new(Vec::new()),
            watcher_count: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Gives the pages of `[offset, offset + len)` back to the host: they read as
    /// zero afterwards (a guest `munmap` or a fresh anonymous `mmap`). Both must be
    /// page-aligned; false when the range is outside RAM or the host refused.
    pub fn discard(&self, offset: u64, len: u64) -> bool {
        let Some((ptr, size)) = self.host_pages(offset, len) else {
            return false;
        };
        // SAFETY: [ptr, ptr+len) lies inside our private anonymous mapping (checked
        // by host_ptr) and is page-aligned; MADV_DONTNEED on such memory only
        // replaces the pages with zero-filled ones, which every reader of guest RAM
        // (raw-pointer and atomic accesses only, never references) tolerates.
        unsafe { libc::madvise(ptr.cast(), size, libc::MADV_DONTNEED) == 0 }
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: RAM has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The host address of RAM offset 0, for device models that access guest memory
    /// through another library (virtio's `vm-memory` regions).
    ///
    /// The mapping behind it is `len()` bytes long, page-aligned, readable and
    /// writable, private and anonymous, and stays at this address, never moved or
    /// unmapped, for as long as this `GuestRam` lives.
    ///
    /// Getting the pointer is safe; using it is not. Whoever dereferences it must
    /// (1) stay inside `[ptr, ptr + len())`; (2) keep this `GuestRam` alive while the
    /// pointer is in use, for example by holding an `Arc<GuestRam>` next to it;
    /// (3) never form `&`/`&mut` references to the bytes, because vCPUs and devices
    /// change them concurrently: use raw-pointer, volatile or atomic accesses, as this
    /// module does. Writes through the pointer skip code-page tracking: whoever
    /// writes through it calls [`GuestRam::note_write`] afterwards, so CPUs drop
    /// code they decoded from the written pages.
    pub fn host_base_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// The host pointer and length of the whole pages `[offset, offset+len)`,
    /// when both are page-aligned, `len` is not zero and the range is inside RAM.
    fn host_pages(&self, offset: u64, len: u64) -> Option<(*mut u8, usize)> {
        if !offset.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 {
            return None;
        }
        Some((self.host_ptr(offset, len)?, usize::try_from(len).ok()?))
    }

    /// The host pointer for `[offset, offset+len)`, when that range is inside RAM.
    #[inline]
    fn host_ptr(&self, offset: u64, len: u64) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // `offset < len <= usize::MAX` was established in `new`, so the cast is exact.
        Some(self.map.as_mut_ptr().wrapping_add(offset as usize))
    }

    ram_access!(read_u8, write_u8, AtomicU8, u8);
    ram_access!(read_u16, write_u16, AtomicU16, u16);
    ram_access!(read_u32, write_u32, AtomicU32, u32);
    ram_access!(read_u64, write_u64, AtomicU64, u64);

    /// Copies bytes out of RAM; false (and nothing copied) when out of range.
    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> bool {
        let Some(ptr) = self.host_ptr(offset, buf.len() as u64) else {
            return false;
        };
        // SAFETY: the source range is inside the mapping; `buf` is a distinct host
        // buffer, so the ranges cannot overlap.
        unsafe { ptr::copy_nonoverlapping(ptr, buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copies bytes into RAM; false (and nothing written) when out of range.
    /// Every CPU that decoded code from the written pages is told (loaders,
    /// debuggers and devices write through here).
    pub fn write_bytes(&self, offset: u64, data: &[u8]) -> bool {
        let Some(ptr) = self.host_ptr(offset, data.len() as u64) else {
            return false;
        };
        // SAFETY: the destination range is inside the mapping; `data` is host memory
        // outside it, so the ranges cannot overlap.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
        self.note_write(offset, data.len() as u64, None);
        true
    }

    /// Whether at most one CPU watches this RAM for code writes: then a CPU
    /// that holds no code from a page may drop its code-page mark, since no
    /// other CPU can hold any.
    pub fn has_one_watcher(&self) -> bool {
        self.watcher_count.load(Ordering::Relaxed) <= 1
    }

    /// A new inbox of code writes for one CPU, which it keeps for its lifetime.
    pub fn watch_code_writes(&self) -> Arc<CodeWriteInbox> {
        let inbox = Arc::new(CodeWriteInbox::default());
        let mut watchers = self.watchers.lock_recover();
        watchers.retain(|w| w.strong_count() > 0);
        watchers.push(Arc::downgrade(&inbox));
        self.watcher_count.store(watchers.len(), Ordering::Relaxed);
        inbox
    }

    /// Tells every CPU but `writer` that `[offset, offset + len)` was written,
    /// when that touched a code page. Writers that reach RAM other than through
    /// [`GuestRam::write_bytes`] (a CPU's own stores, DMA through another library)
    /// call this after writing.
    pub fn note_write(&self, offset: u64, len: u64, writer: Option<&CodeWriteInbox>) {
        // A CPU's own store on a single-CPU machine: nobody else to tell.
        if len == 0 || (writer.is_some() && self.watcher_count.load(Ordering::Relaxed) <= 1) {
            return;
        }
        let pages = self.code_pages_in(offset, len);
        if pages.is_empty() {
            return;
        }
        let watchers = self.watchers.lock_recover();
        for inbox in watchers.iter().filter_map(Weak::upgrade) {
            if writer.is_some_and(|w| ptr::eq(w, &*inbox)) {
                continue;
            }
            inbox.post(&pages);
        }
    }

    /// Tells every CPU to drop all the code it decoded: the bytes behind some
    /// addresses changed without a store (a chipset remapped memory).
    pub fn drop_all_code(&self) {
        let watchers = self.watchers.lock_recover();
        for inbox in watchers.iter().filter_map(Weak::upgrade) {
            inbox.post_everything();
        }
    }

    /// The 32-bit atomic at `offset` for AMOs and LR/SC, when in range and aligned.
    pub fn atomic_u32(&self, offset: u64) -> Option<&AtomicU32> {
        if !offset.is_multiple_of(4) {
            return None;
        }
        let ptr = self.host_ptr(offset, 4)?;
        // SAFETY: in bounds and 4-aligned; the mapping lives as long as `self`, which
        // bounds the returned reference, and all other accesses to these bytes are
        // atomic or raw-pointer copies, never Rust references.
        Some(unsafe { AtomicU32::from_ptr(ptr.cast::<u32>()) })
    }

    /// The 64-bit atomic at `offset` for AMOs and LR/SC, when in range and aligned.
    pub fn atomic_u64(&self, offset: u64) -> Option<&AtomicU64> {
        if !offset.is_multiple_of(8) {
            return None;
        }
        let ptr = self.host_ptr(offset, 8)?;
        // SAFETY: as for `atomic_u32`, with 8-byte alignment.
        Some(unsafe { AtomicU64::from_ptr(ptr.cast::<u64>()) })
    }

    /// Records that a CPU decoded instructions from the page holding `offset`.
    pub fn mark_code_page(&self, offset: u64) {
        let page = offset >> PAGE_SHIFT;
        if let Some(word) = self.code_pages.get((page / 64) as usize) {
            word.fetch_or(1 << (page % 64), Ordering::Relaxed);
        }
    }

    /// Whether some CPU decoded instructions from the page holding `offset`.
    #[inline]
    pub fn is_code_page(&self, offset: u64) -> bool {
        let page = offset >> PAGE_SHIFT;
        match self.code_pages.get((page / 64) as usize) {
            Some(word) => word.load(Ordering::Relaxed) & (1 << (page % 64)) != 0,
            None => false,
        }
    }

    /// Forgets the code-page mark of the page holding `offset`; true if it was set.
    pub fn unmark_code_page(&self, offset: u64) -> bool {
        let page = offset >> PAGE_SHIFT;
        match self.code_pages.get((page / 64) as usize) {
            Some(word) => {
                let bit = 1 << (page % 64);
                word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
            }
            None => false,
        }
    }

    /// The page-aligned offsets of the code pages in `[offset, offset + len)`.
    pub fn code_pages_in(&self, offset: u64, len: u64) -> Vec<u64> {
        let first = offset >> PAGE_SHIFT;
        let end = offset
            .saturating_add(len)
            .div_ceil(PAGE_SIZE)
            .min(self.len >> PAGE_SHIFT);
        let mut pages = Vec::new();
        let mut page = first;
        while page < end {
            let Some(word) = self.code_pages.get((page / 64) as usize) else {
                break;
            };
            let bits = word.load(Ordering::Relaxed) >> (page % 64);
            if bits == 0 {
                page = (page / 64 + 1) * 64;
                continue;
            }
            let next = page + u64::from(bits.trailing_zeros());
            if next < end {
                pages.push(next << PAGE_SHIFT);
            }
            page = next + 1;
        }
        pages
    }

    /// Sets the host protection (`libc::PROT_*`) of the page-aligned range
    /// `[offset, offset + len)`; false if it is not page-aligned RAM or the host
    /// refuses. Every access to RAM from Rust goes through bounds-checked raw
    /// pointers, so the caller must make sure nothing it runs reads or writes pages
    /// it protected against that (user-mode emulation: the guest's own protection,
    /// enforced by host faults in translated code).
    pub fn protect(&self, offset: u64, len: u64, prot: libc::c_int) -> bool {
        let Some((ptr, size)) = self.host_pages(offset, len) else {
            return false;
        };
        // SAFETY: [ptr, ptr+len) is page-aligned and inside our own anonymous
        // mapping (checked by host_ptr); changing its protection cannot affect any
        // other host memory.
        unsafe { libc::mprotect(ptr.cast(), size, prot) == 0 }
    }

    /// Replaces the page-aligned RAM range `[offset, offset + len)` with a
    /// shared mapping, for user-mode emulation's `MAP_SHARED`: a file's pages
    /// (stores reach the file, and other processes mapping it see them) or
    /// anonymous memory a forked child keeps sharing. The host protection is
    /// readable (and writable with `writable`) until the caller sets it.
    /// [`GuestRam::unshare`] puts private pages back. False if the host refused
    /// (the reason is in `errno`).
    ///
    /// The bytes at these offsets change meaning at once, so the caller must
    /// make sure no CPU still runs code it decoded from them.
    pub fn share(&self, offset: u64, len: u64, pages: SharedPages) -> bool {
        let Some((ptr, size)) = self.host_pages(offset, len) else {
            return false;
        };
        let (flags, fd, file_offset, prot) = match pages {
            SharedPages::File {
                fd,
                offset,
                writable,
            } => (
                libc::MAP_SHARED,
                fd,
                offset,
                if writable {
                    libc::PROT_READ | libc::PROT_WRITE
                } else {
                    libc::PROT_READ
                },
            ),
            SharedPages::Anonymous => (
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
                libc::PROT_READ | libc::PROT_WRITE,
            ),
        };
        let Ok(file_offset) = libc::off_t::try_from(file_offset) else {
            return false;
        };
        // SAFETY: [ptr, ptr+size) is page-aligned and inside our own mapping
        // (checked by host_pages); MAP_FIXED replaces exactly those pages, so no
        // other host memory is touched, and the range stays mapped at the same
        // address for every raw-pointer reader.
        let mapped = unsafe {
            libc::mmap(
                ptr.cast(),
                size,
                prot,
                flags | libc::MAP_FIXED,
                fd,
                file_offset,
            )
        };
        mapped == ptr.cast()
    }

    /// Puts zeroed private pages back in place of a range [`GuestRam::share`]
    /// mapped (a guest `munmap`); they read as zero, inaccessible until the
    /// caller sets their protection. False if the host refused.
    pub fn unshare(&self, offset: u64, len: u64) -> bool {
        let Some((ptr, size)) = self.host_pages(offset, len) else {
            return false;
        };
        // SAFETY: as in `share`: only our own pages are replaced, in place.
        let mapped = unsafe {
            libc::mmap(
                ptr.cast(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        mapped == ptr.cast()
    }

    /// Writes a shared file range back to its file (`msync` with `flags`).
    pub fn sync(&self, offset: u64, len: u64, flags: libc::c_int) -> bool {
        let Some((ptr, size)) = self.host_pages(offset, len) else {
            return false;
        };
        // SAFETY: msync only reads the page-aligned range inside our mapping.
        unsafe { libc::msync(ptr.cast(), size, flags) == 0 }
    }

    /// Forgets all code-page marks (after the CPUs dropped their decoded code).
    pub fn clear_code_pages(&self) {
        for word in self.code_pages.iter() {
            word.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written_at_every_width() {
        let ram = GuestRam::new(2 * PAGE_SIZE).unwrap();
        assert!(ram.write_u64(8, 0x1122_3344_5566_7788));
        assert_eq!(ram.read_u64(8), Some(0x1122_3344_5566_7788));
        assert_eq!(ram.read_u32(8), Some(0x5566_7788));
        assert_eq!(ram.read_u16(14), Some(0x1122));
        assert_eq!(ram.read_u8(9), Some(0x77));
        // Misaligned accesses work and see little-endian bytes.
        assert!(ram.write_u32(3, 0xdead_beef));
        assert_eq!(ram.read_u8(3), Some(0xef));
        assert_eq!(ram.read_u32(3), Some(0xdead_beef));
    }

    #[test]
    fn out_of_range_accesses_fail_without_touching_memory() {
        let ram = GuestRam::new(PAGE_SIZE).unwrap();
        assert_eq!(ram.read_u64(PAGE_SIZE - 4), None);
        assert_eq!(ram.read_u8(PAGE_SIZE), None);
        assert_eq!(ram.read_u64(u64::MAX - 3), None);
        assert!(!ram.write_u16(PAGE_SIZE - 1, 1));
        assert!(!ram.write_bytes(PAGE_SIZE - 2, &[1, 2, 3]));
        assert_eq!(ram.read_u8(PAGE_SIZE - 2), Some(0));
        assert!(ram.atomic_u64(PAGE_SIZE).is_none());
        assert!(ram.atomic_u32(2).is_none());
    }

    #[test]
    fn rejects_sizes_that_are_not_whole_pages() {
        assert!(GuestRam::new(0).is_err());
        assert!(GuestRam::new(100).is_err());
    }

    #[test]
    fn code_page_marks() {
        let ram = GuestRam::new(256 * PAGE_SIZE).unwrap();
        assert!(!ram.is_code_page(70 * PAGE_SIZE));
        ram.mark_code_page(70 * PAGE_SIZE + 12);
        assert!(ram.is_code_page(70 * PAGE_SIZE));
        assert!(!ram.is_code_page(71 * PAGE_SIZE));
        ram.mark_code_page(130 * PAGE_SIZE);
        assert_eq!(
            ram.code_pages_in(0, 200 * PAGE_SIZE),
            [70 * PAGE_SIZE, 130 * PAGE_SIZE]
        );
        assert!(ram.code_pages_in(71 * PAGE_SIZE, 59 * PAGE_SIZE).is_empty());
        assert_eq!(ram.code_pages_in(130 * PAGE_SIZE, 1), [130 * PAGE_SIZE]);
        assert!(ram.unmark_code_page(130 * PAGE_SIZE + 5));
        assert!(!ram.unmark_code_page(130 * PAGE_SIZE));
        assert!(!ram.is_code_page(130 * PAGE_SIZE));
        ram.clear_code_pages();
        assert!(!ram.is_code_page(70 * PAGE_SIZE));
    }

    #[test]
    fn writes_to_code_pages_reach_every_other_cpus_inbox() {
        let ram = GuestRam::new(16 * PAGE_SIZE).unwrap();
        let hart0 = ram.watch_code_writes();
        let hart1 = ram.watch_code_writes();
        assert!(ram.write_bytes(3 * PAGE_SIZE, &[1; 8]));
        assert!(!hart0.has_pending(), "no code there yet");
        ram.mark_code_page(3 * PAGE_SIZE);
        ram.mark_code_page(4 * PAGE_SIZE);
        // A DMA write across both code pages tells both CPUs.
        assert!(ram.write_bytes(4 * PAGE_SIZE - 2, &[7; 4]));
        assert!(hart0.has_pending() && hart1.has_pending());
        assert_eq!(hart0.take(), Some(vec![3 * PAGE_SIZE, 4 * PAGE_SIZE]));
        assert!(!hart0.has_pending());
        assert_eq!(hart0.take(), Some(vec![]));
        // A CPU's own store is not posted back to it.
        ram.note_write(3 * PAGE_SIZE + 8, 8, Some(&hart0));
        assert!(!hart0.has_pending());
        assert_eq!(hart1.take(), Some(vec![3 * PAGE_SIZE, 4 * PAGE_SIZE]));
        // Too many pages to list: the inbox asks for a full flush.
        for page in 0..16 {
            ram.mark_code_page(page * PAGE_SIZE);
        }
        for _ in 0..40 {
            for page in 0..16 {
                ram.note_write(page * PAGE_SIZE, 1, None);
            }
        }
        assert_eq!(
            hart1.take().map(|p| p.len()),
            Some(16),
            "pages are listed once"
        );
        let many = GuestRam::new(512 * PAGE_SIZE).unwrap();
        let inbox = many.watch_code_writes();
        for page in 0..300 {
            many.mark_code_page(page * PAGE_SIZE);
        }
        many.note_write(0, 300 * PAGE_SIZE, None);
        assert_eq!(inbox.take(), None);
        // A CPU that went away is forgotten.
        drop(hart1);
        ram.note_write(3 * PAGE_SIZE, 1, None);
        assert_eq!(
            ram.watchers
                .lock()
                .unwrap()
                .iter()
                .filter(|w| w.strong_count() > 0)
                .count(),
            1
        );
    }
}
