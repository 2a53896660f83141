//! A user-mode process's address space: guest virtual addresses are offsets into
//! one sparse host mapping ([`GuestRam::new_sparse`]), so translated code reaches
//! guest memory with one add, and a map of areas (like Linux's VMAs) says which
//! pages exist with which permissions. The MMU consults it on TLB misses; the
//! syscall layer checks it before touching guest memory for the guest.
//!
//! The host mapping's protection mirrors the map (unmapped pages are `PROT_NONE`,
//! read-only pages read-only), so translated code may access guest memory without
//! any check and let the host fault on what the guest may not touch (see
//! [`crate::fault`]). Writable pages the hart has decoded instructions from are
//! kept read-only too: a store to them faults, and the fault handler drops the
//! page's translations before letting the store go on.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use emu_core::sync::{LockRecover, RwLockRecover};
use emu_core::{GuestRam, SharedPages};

use cpu_riscv::hart::UserAddressSpace;
use cpu_riscv::mmu::Access;

/// Size of the user address space: the lower half of Sv39, as riscv64 Linux gives
/// processes.
pub const USER_SPACE_SIZE: u64 = 1 << 38;
/// log2 of [`USER_SPACE_SIZE`]: translated code checks `va >> USER_SPACE_BITS == 0`.
pub const USER_SPACE_BITS: u32 = 38;
/// The page size.
pub const PAGE: u64 = 4096;
/// The lowest address `mmap` maps at (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;

/// Readable.
pub const PROT_READ: u8 = 1;
/// Writable.
pub const PROT_WRITE: u8 = 2;
/// Executable.
pub const PROT_EXEC: u8 = 4;

/// Rounds up to a page boundary.
pub fn page_up(value: u64) -> u64 {
    value.saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// Rounds down to a page boundary.
pub fn page_down(value: u64) -> u64 {
    value & !(PAGE - 1)
}

/// One mapped area: `[start, end)` with one protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Area {
    end: u64,
    prot: u8,
}

/// The page map of a process.
#[derive(Debug, Default)]
pub struct AreaMap {
    /// Areas by start address; they never overlap.
    areas: RwLock<BTreeMap<u64, Area>>,
}

impl UserAddressSpace for AreaMap {
    fn permits(&self, va: u64, access: Access) -> bool {
        let need = match access {
            Access::Read => PROT_READ,
            Access::Write => PROT_WRITE,
            Access::Execute => PROT_EXEC,
        };
        self.prot_at(va).is_some_and(|prot| prot & need != 0)
    }
}

impl AreaMap {
    /// The protection of the page holding `va`, if it is mapped.
    pub fn prot_at(&self, va: u64) -> Option<u8> {
        let areas = self.areas.read_recover();
        let (_, area) = areas.range(..=va).next_back()?;
        (va < area.end).then_some(area.prot)
    }

    /// `[start, end)` cut into runs of one protection (None: unmapped).
    fn runs(&self, start: u64, end: u64) -> Vec<(u64, u64, Option<u8>)> {
        let areas = self.areas.read_recover();
        let mut runs = Vec::new();
        let mut at = start;
        let first = areas.range(..=start).next_back().map_or(start, |(&s, _)| s);
        for (&s, area) in areas.range(first..end) {
            if area.end <= at {
                continue;
            }
            if s > at {
                runs.push((at, s, None));
            }
            let from = s.max(at);
            let to = area.end.min(end);
            runs.push((from, to, Some(area.prot)));
            at = to;
        }
        if at < end {
            runs.push((at, end, None));
        }
        runs
    }

    /// Cuts `[start, end)` out of every area (splitting those that straddle it).
    fn cut(areas: &mut BTreeMap<u64, Area>, start: u64, end: u64) {
        let overlapping: Vec<(u64, Area)> = areas
            .range(..end)
            .filter(|(s, a)| a.end > start && **s < end)
            .map(|(s, a)| (*s, *a))
            .collect();
        for (s, area) in overlapping {
            areas.remove(&s);
            if s < start {
                areas.insert(
                    s,
                    Area {
                        end: start,
                        prot: area.prot,
                    },
                );
            }
            if area.end > end {
                areas.insert(
                    end,
                    Area {
                        end: area.end,
                        prot: area.prot,
                    },
                );
            }
        }
    }

    /// Maps `[start, start + len)` (page-aligned) with `prot`, replacing whatever
    /// was there. Private, as are `unmap` and `protect`: [`UserMemory`] changes
    /// the map and the host protection together.
    fn map(&self, start: u64, len: u64, prot: u8) {
        let mut areas = self.areas.write_recover();
        Self::cut(&mut areas, start, start + len);
        areas.insert(
            start,
            Area {
                end: start + len,
                prot,
            },
        );
    }

    /// Unmaps `[start, start + len)`.
    fn unmap(&self, start: u64, len: u64) {
        let mut areas = self.areas.write_recover();
        Self::cut(&mut areas, start, start + len);
    }

    /// Whether every page of `[start, start + len)` is mapped.
    pub fn is_mapped(&self, start: u64, len: u64) -> bool {
        let areas = self.areas.read_recover();
        let mut at = start;
        let end = start.saturating_add(len);
        while at < end {
            match areas.range(..=at).next_back() {
                Some((_, area)) if at < area.end => at = area.end,
                _ => return false,
            }
        }
        true
    }

    /// Changes the protection of `[start, start + len)`; false (ENOMEM) if part of
    /// it is not mapped.
    fn protect(&self, start: u64, len: u64, prot: u8) -> bool {
        if !self.is_mapped(start, len) {
            return false;
        }
        self.map(start, len, prot);
        true
    }

    /// The highest free gap of `len` bytes that ends at or below `top`, at or above
    /// `bottom`.
    pub fn find_free(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        let areas = self.areas.read_recover();
        let mut ceiling = top;
        for (&start, area) in areas.range(..top).rev() {
            if area.end <= ceiling && ceiling - area.end >= len {
                return Some(ceiling - len);
            }
            ceiling = ceiling.min(start);
            if ceiling < bottom.saturating_add(len) {
                return None;
            }
        }
        (ceiling >= bottom.saturating_add(len)).then(|| ceiling - len)
    }
}

/// A process's memory: the host mapping and its page map.
#[derive(Clone, Debug)]
pub struct UserMemory {
    /// The whole address space as host memory, and one guard page above it that
    /// is never accessible (an access straddling the top faults).
    pub ram: Arc<GuestRam>,
    /// Which pages exist.
    pub areas: Arc<AreaMap>,
    /// Set once the guest handles SIGSEGV or SIGBUS itself: from then on
    /// translated code checks every access through the TLB, so a fault stops at
    /// the exact instruction with every register stored, as the handler's
    /// `ucontext` must show. Until then a fault in translated code can only end
    /// the process, and the registers it leaves do not matter.
    precise_faults: Arc<AtomicBool>,
    /// The ranges mapped shared (`MAP_SHARED`), start to end: their host pages
    /// are a file's or shared anonymous memory, not the private reservation.
    shared: Arc<Mutex<BTreeMap<u64, u64>>>,
}

/// The host protection for a guest protection (None: unmapped) on a page that
/// does or does not hold decoded code.
fn host_prot(prot: Option<u8>, code: bool) -> libc::c_int {
    match prot {
        // Execute-only pages stay readable: the hart reads instructions through
        // the host mapping.
        Some(p) if p & PROT_WRITE != 0 && !code => libc::PROT_READ | libc::PROT_WRITE,
        Some(p) if p != 0 => libc::PROT_READ,
        _ => libc::PROT_NONE,
    }
}

impl UserAddressSpace for UserMemory {
    fn permits(&self, va: u64, access: Access) -> bool {
        self.areas.permits(va, access)
    }

    fn direct_window(&self) -> Option<u64> {
        (!self.precise_faults.load(Ordering::Acquire)).then_some(USER_SPACE_SIZE)
    }

    fn holds_code(&self, va: u64) {
        if self.areas.prot_at(va).is_some_and(|p| p & PROT_WRITE != 0) {
            self.mirror(page_down(va), PAGE);
        }
    }
}

/// A guest address that the guest may not access: the syscall returns EFAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

impl UserMemory {
    /// Reserves the address space, all of it inaccessible until mapped.
    pub fn new() -> Result<UserMemory, String> {
        let ram = GuestRam::new_sparse(USER_SPACE_SIZE + PAGE)
            .map_err(|e| format!("cannot reserve the guest address space: {e}"))?;
        if !ram.protect(0, USER_SPACE_SIZE + PAGE, libc::PROT_NONE) {
            return Err(format!(
                "cannot protect the guest address space: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(UserMemory {
            ram: Arc::new(ram),
            areas: Arc::new(AreaMap::default()),
            precise_faults: Arc::new(AtomicBool::new(false)),
            shared: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// Makes the host protection of `[start, start + len)` (page-aligned) match
    /// the map again, with writable code pages read-only.
    /// False if the host refused (it may run out of mappings).
    pub fn mirror(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len).min(USER_SPACE_SIZE);
        let mut done = true;
        for (from, to, prot) in self.areas.runs(start, end) {
            done &= self.ram.protect(from, to - from, host_prot(prot, false));
            if prot.is_some_and(|p| p & PROT_WRITE != 0) {
                for page in self.ram.code_pages_in(from, to - from) {
                    done &= self.ram.protect(page, PAGE, host_prot(prot, true));
                }
            }
        }
        // Page 0 never opens: translated code relies on no access below 4 KiB
        // succeeding (Linux keeps the lowest 64 KiB unmappable too).
        if start < PAGE {
            done &= self.ram.protect(0, PAGE, libc::PROT_NONE);
        }
        done
    }

    /// An access faulted on the page at `va`. If the guest may write the page
    /// (it was kept read-only because it holds code, or another thread just
    /// released it), forgets that it holds code, tells every thread's CPU and
    /// makes it writable: true, and the access may go on once the page's
    /// translations are dropped. False for a fault the guest must see.
    pub fn release_code_page(&self, va: u64) -> bool {
        let page = page_down(va);
        if va >= USER_SPACE_SIZE || self.areas.prot_at(page).is_none_or(|p| p & PROT_WRITE == 0) {
            return false;
        }
        // Every thread's CPU drops what it decoded from the page before it
        // next runs it (the writer's own learns from the fault handler too).
        self.ram.note_write(page, PAGE, None);
        self.ram.unmark_code_page(page);
        self.mirror(page, PAGE)
    }

    /// From now on, guest faults must be precise (the guest handles SIGSEGV or
    /// SIGBUS): translations made after this check every access.
    /// True if it was not so already (translations must be made again).
    pub fn require_precise_faults(&self) -> bool {
        !self.precise_faults.swap(true, Ordering::AcqRel)
    }

    fn check(&self, va: u64, len: u64, need: u8) -> Result<(), Fault> {
        if len == 0 {
            return Ok(());
        }
        let end = va.checked_add(len).ok_or(Fault)?;
        if end > USER_SPACE_SIZE {
            return Err(Fault);
        }
        let mut page = page_down(va);
        while page < end {
            match self.areas.prot_at(page) {
                Some(prot) if prot & need != 0 => page += PAGE,
                _ => return Err(Fault),
            }
        }
        Ok(())
    }

    /// The host address of guest memory the guest may access with `need`, for
    /// host calls that work on guest memory in place (futex).
    pub fn host_pointer(&self, va: u64, len: u64, need: u8) -> Result<*mut u8, Fault> {
        self.check(va, len, need)?;
        // `check` kept [va, va+len) inside the mapping of USER_SPACE_SIZE bytes.
        Ok(self.ram.host_base_ptr().wrapping_add(va as usize))
    }

    /// Copies guest memory out, as the guest could read it.
    pub fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.check(va, buf.len() as u64, PROT_READ)?;
        self.ram.read_bytes(va, buf).then_some(()).ok_or(Fault)
    }

    /// Copies `data` into guest memory the guest may write.
    pub fn write(&self, va: u64, data: &[u8]) -> Result<(), Fault> {
        self.check(va, data.len() as u64, PROT_WRITE)?;
        self.ram.write_bytes(va, data).then_some(()).ok_or(Fault)
    }

    /// Writes regardless of protection (the loader filling read-only segments).
    pub fn poke(&self, va: u64, data: &[u8]) -> Result<(), Fault> {
        let (start, len) = self.open_host(va, data.len() as u64)?;
        let written = self.ram.write_bytes(va, data);
        self.mirror(start, len);
        written.then_some(()).ok_or(Fault)
    }

    /// Reads regardless of protection (mremap moving pages).
    pub fn peek(&self, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let (start, len) = self.open_host(va, buf.len() as u64)?;
        let read = self.ram.read_bytes(va, buf);
        self.mirror(start, len);
        read.then_some(()).ok_or(Fault)
    }

    /// Makes the pages under `[va, va + len)` readable and writable on the host
    /// for a moment; returns the page range to mirror again afterwards.
    fn open_host(&self, va: u64, len: u64) -> Result<(u64, u64), Fault> {
        let end = va
            .checked_add(len)
            .filter(|&e| e <= USER_SPACE_SIZE)
            .ok_or(Fault)?;
        if len == 0 {
            return Ok((page_down(va), PAGE));
        }
        let (start, span) = (page_down(va), page_up(end) - page_down(va));
        if !self
            .ram
            .protect(start, span, libc::PROT_READ | libc::PROT_WRITE)
        {
            return Err(Fault);
        }
        Ok((start, span))
    }

    /// Reads a u64.
    pub fn read_u64(&self, va: u64) -> Result<u64, Fault> {
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(&self, va: u64, max: usize) -> Result<Vec<u8>, Fault> {
        let mut out = Vec::new();
        let mut at = va;
        while out.len() < max {
            if at >= USER_SPACE_SIZE {
                return Err(Fault);
            }
            let chunk_end = page_down(at) + PAGE;
            let mut chunk = vec![0u8; (chunk_end - at) as usize];
            self.read(at, &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            at = chunk_end;
        }
        Err(Fault)
    }

    /// Maps fresh zeroed pages.
    pub fn map_zeroed(&self, start: u64, len: u64, prot: u8) {
        self.drop_shared(start, len);
        self.ram.discard(start, len);
        self.areas.map(start, len, prot);
        self.mirror(start, len);
    }

    /// Gives `[start, start + len)` protection `prot`, mapped or not, keeping
    /// its contents.
    pub fn set_prot(&self, start: u64, len: u64, prot: u8) {
        self.areas.map(start, len, prot);
        self.mirror(start, len);
    }

    /// Changes the protection of mapped pages (`mprotect`); false (ENOMEM) if
    /// part of the range is not mapped.
    pub fn protect(&self, start: u64, len: u64, prot: u8) -> bool {
        let done = self.areas.protect(start, len, prot);
        if done {
            self.mirror(start, len);
        }
        done
    }

    /// Unmaps pages and gives their memory back.
    pub fn unmap(&self, start: u64, len: u64) {
        self.areas.unmap(start, len);
        self.drop_shared(start, len);
        self.mirror(start, len);
        self.ram.discard(start, len);
    }

    /// Maps `pages` shared at `[start, start + len)` with protection `prot`
    /// (`MAP_SHARED`); the errno if the host refuses.
    pub fn map_shared(
        &self,
        start: u64,
        len: u64,
        prot: u8,
        pages: SharedPages,
    ) -> Result<(), i32> {
        self.drop_shared(start, len);
        if !self.ram.share(start, len, pages) {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::ENOMEM);
            // What was there is gone either way: leave private zeroed pages.
            self.ram.unshare(start, len);
            self.areas.unmap(start, len);
            self.mirror(start, len);
            return Err(errno);
        }
        self.shared.lock_recover().insert(start, start + len);
        self.areas.map(start, len, prot);
        self.mirror(start, len);
        Ok(())
    }

    /// Writes the shared file pages in `[start, start + len)` back (`msync`).
    pub fn sync_shared(&self, start: u64, len: u64, flags: libc::c_int) {
        let end = start.saturating_add(len);
        let shared = self.shared.lock_recover();
        for (&from, &to) in shared.range(..end) {
            let (lo, hi) = (from.max(start), to.min(end));
            if lo < hi {
                self.ram.sync(lo, hi - lo, flags);
            }
        }
    }

    /// Puts private pages back where `[start, start + len)` overlaps shared
    /// mappings, keeping the parts of those outside it.
    fn drop_shared(&self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        let mut shared = self.shared.lock_recover();
        let overlapping: Vec<(u64, u64)> = shared
            .range(..end)
            .filter(|&(_, &to)| to > start)
            .map(|(&from, &to)| (from, to))
            .collect();
        for (from, to) in overlapping {
            shared.remove(&from);
            let (lo, hi) = (from.max(start), to.min(end));
            self.ram.unshare(lo, hi - lo);
            if from < lo {
                shared.insert(from, lo);
            }
            if hi < to {
                shared.insert(hi, to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store to a code page, caught by its write protection, reaches every
    /// thread's CPU: each is told to drop the page's code, not only the writer.
    #[test]
    fn a_released_code_page_is_posted_to_every_cpu() {
        let memory = UserMemory::new().expect("reserve");
        memory.map_zeroed(0x50000, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
        let other_thread = memory.ram.watch_code_writes();
        let writer = memory.ram.watch_code_writes();
        memory.ram.mark_code_page(0x50000);
        memory.holds_code(0x50000);
        assert!(memory.release_code_page(0x50010));
        for inbox in [&other_thread, &writer] {
            assert!(inbox.has_pending());
            assert_eq!(inbox.take(), Some(vec![0x50000]));
        }
        assert!(!memory.ram.is_code_page(0x50000));
        // A page the guest may not write is a fault, told to nobody.
        memory.map_zeroed(0x60000, PAGE, PROT_READ | PROT_EXEC);
        assert!(!memory.release_code_page(0x60000));
        assert!(!other_thread.has_pending());
    }

    /// Shared pages stay shared where they are still mapped, and turn back
    /// into fresh private pages where something else is mapped over them.
    #[test]
    fn shared_mappings_split_and_give_way_to_private_pages() {
        let memory = UserMemory::new().expect("reserve");
        let rw = PROT_READ | PROT_WRITE;
        memory
            .map_shared(0x40000, 3 * PAGE, rw, SharedPages::Anonymous)
            .expect("shared map");
        for page in 0..3 {
            memory.write(0x40000 + page * PAGE, &[7]).unwrap();
        }
        memory.map_zeroed(0x40000 + PAGE, PAGE, rw);
        let shared: Vec<(u64, u64)> = memory
            .shared
            .lock_recover()
            .iter()
            .map(|(&a, &b)| (a, b))
            .collect();
        assert_eq!(
            shared,
            [
                (0x40000, 0x40000 + PAGE),
                (0x40000 + 2 * PAGE, 0x40000 + 3 * PAGE)
            ]
        );
        let mut byte = [0u8];
        memory.read(0x40000 + PAGE, &mut byte).unwrap();
        assert_eq!(byte, [0], "the page mapped over is fresh");
        memory.read(0x40000 + 2 * PAGE, &mut byte).unwrap();
        assert_eq!(byte, [7], "the rest keeps its contents");
        memory.unmap(0x40000, 3 * PAGE);
        assert!(memory.shared.lock_recover().is_empty());
        memory.map_zeroed(0x40000, PAGE, rw);
        memory.read(0x40000, &mut byte).unwrap();
        assert_eq!(byte, [0]);
    }

    #[test]
    fn areas_split_and_merge_like_vmas() {
        let map = AreaMap::default();
        map.map(0x10000, 0x4000, PROT_READ | PROT_WRITE);
        assert!(map.permits(0x10000, Access::Write));
        assert!(!map.permits(0x10000, Access::Execute));
        assert!(!map.permits(0x14000, Access::Read));
        // Protect the middle page read-only: three areas.
        assert!(map.protect(0x11000, 0x1000, PROT_READ));
        assert!(map.permits(0x10fff, Access::Write));
        assert!(!map.permits(0x11000, Access::Write));
        assert!(map.permits(0x12000, Access::Write));
        // Unmap across the split.
        map.unmap(0x10800 & !0xfff, 0x2000);
        assert!(map.prot_at(0x10000).is_none());
        assert!(map.prot_at(0x11000).is_none());
        assert!(map.prot_at(0x12000).is_some());
        assert!(!map.is_mapped(0x10000, 0x3000));
        assert!(map.is_mapped(0x12000, 0x2000));
        assert!(!map.protect(0x11000, 0x2000, PROT_READ));
    }

    #[test]
    fn free_gaps_are_found_from_the_top() {
        let map = AreaMap::default();
        map.map(0x9000, 0x1000, PROT_READ);
        assert_eq!(map.find_free(0x1000, 0x1000, 0xa000), Some(0x8000));
        assert_eq!(map.find_free(0x2000, 0x1000, 0x9000), Some(0x7000));
        map.map(0x1000, 0x8000, PROT_READ);
        assert_eq!(map.find_free(0x1000, 0x1000, 0xa000), None);
    }

    #[test]
    fn guest_accesses_are_checked_against_the_map() {
        let memory = UserMemory::new().expect("reserve");
        memory.map_zeroed(0x20000, 0x2000, PROT_READ);
        assert_eq!(memory.write(0x20000, b"x"), Err(Fault));
        assert!(memory.protect(0x21000, 0x1000, PROT_READ | PROT_WRITE));
        memory.write(0x21ffe, b"hi").unwrap();
        // Crossing into an unmapped page faults, as does the end of the space.
        assert_eq!(memory.write(0x21fff, b"hi"), Err(Fault));
        assert_eq!(memory.read(USER_SPACE_SIZE - 1, &mut [0; 2]), Err(Fault));
        assert_eq!(memory.read(u64::MAX, &mut [0; 2]), Err(Fault));
        memory.poke(0x21000, b"abc\0").unwrap();
        assert_eq!(memory.read_cstr(0x21000, 16).unwrap(), b"abc");
        // Strings anywhere, the top of the 64-bit space included, fail cleanly.
        assert_eq!(memory.read_cstr(u64::MAX - 2, 16), Err(Fault));
        assert_eq!(memory.read_cstr(0xffff_ff9c, 16), Err(Fault));
    }

    /// What the host lets happen at `va`: (readable, writable), asked of the
    /// kernel, whose copies through a pipe fail with EFAULT instead of faulting.
    fn host_access(memory: &UserMemory, va: u64) -> (bool, bool) {
        let ptr = memory.ram.host_base_ptr().wrapping_add(va as usize);
        let mut fds = [0; 2];
        // SAFETY: pipe fills two fds; the copies are checked by the kernel, which
        // returns EFAULT for pages the process may not access that way; a
        // readable page gets its own byte back.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let readable = libc::write(fds[1], ptr.cast(), 1) == 1;
            if !readable {
                libc::write(fds[1], [0u8].as_ptr().cast(), 1);
            }
            let writable = libc::read(fds[0], ptr.cast(), 1) == 1;
            libc::close(fds[0]);
            libc::close(fds[1]);
            (readable, writable)
        }
    }

    #[test]
    fn host_protection_follows_the_guest_map() {
        let memory = UserMemory::new().expect("reserve");
        let page = 0x40000;
        assert_eq!(host_access(&memory, page), (false, false));
        memory.map_zeroed(page, 2 * PAGE, PROT_READ | PROT_WRITE);
        assert_eq!(host_access(&memory, page), (true, true));
        assert!(memory.protect(page, PAGE, PROT_READ));
        assert_eq!(host_access(&memory, page), (true, false));
        assert_eq!(host_access(&memory, page + PAGE), (true, true));
        // Execute-only stays readable: the hart reads instructions from it.
        assert!(memory.protect(page, PAGE, PROT_EXEC));
        assert_eq!(host_access(&memory, page), (true, false));
        assert!(memory.protect(page, PAGE, 0));
        assert_eq!(host_access(&memory, page), (false, false));
        // The loader writes whatever the protection, and leaves it as it was.
        memory.poke(page + 8, b"elf").unwrap();
        assert_eq!(host_access(&memory, page), (false, false));
        let mut back = [0u8; 3];
        memory.peek(page + 8, &mut back).unwrap();
        assert_eq!(&back, b"elf");
        memory.unmap(page, 2 * PAGE);
        assert_eq!(host_access(&memory, page + PAGE), (false, false));
        // The guard page above the space never opens.
        memory.map_zeroed(USER_SPACE_SIZE - PAGE, PAGE, PROT_READ | PROT_WRITE);
        assert_eq!(host_access(&memory, USER_SPACE_SIZE - PAGE), (true, true));
        assert_eq!(host_access(&memory, USER_SPACE_SIZE), (false, false));
    }

    #[test]
    fn writable_code_pages_are_write_protected_until_released() {
        let memory = UserMemory::new().expect("reserve");
        let page = 0x80000;
        memory.map_zeroed(page, 2 * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
        memory.ram.mark_code_page(page);
        memory.holds_code(page + 0x10);
        assert_eq!(host_access(&memory, page), (true, false));
        assert_eq!(host_access(&memory, page + PAGE), (true, true));
        // mprotect keeps the code page read-only while it holds code.
        assert!(memory.protect(page, 2 * PAGE, PROT_READ | PROT_WRITE));
        assert_eq!(host_access(&memory, page), (true, false));
        // A store faulted on it: released, writable, no longer code.
        assert!(memory.release_code_page(page + 0x123));
        assert_eq!(host_access(&memory, page), (true, true));
        assert!(!memory.ram.is_code_page(page));
        // A fault the guest must see is not released.
        assert!(memory.protect(page, PAGE, PROT_READ));
        assert!(!memory.release_code_page(page));
        assert!(!memory.release_code_page(0x1000));
        assert!(!memory.release_code_page(USER_SPACE_SIZE + 8));
        // Read-only code needs no protection of its own.
        memory.ram.mark_code_page(page);
        memory.holds_code(page);
        assert_eq!(host_access(&memory, page), (true, false));
    }

    #[test]
    fn runs_cover_a_range_with_its_gaps() {
        let map = AreaMap::default();
        map.map(0x2000, 0x2000, PROT_READ);
        map.map(0x6000, 0x1000, PROT_WRITE);
        assert_eq!(
            map.runs(0x1000, 0x8000),
            [
                (0x1000, 0x2000, None),
                (0x2000, 0x4000, Some(PROT_READ)),
                (0x4000, 0x6000, None),
                (0x6000, 0x7000, Some(PROT_WRITE)),
                (0x7000, 0x8000, None),
            ]
        );
        assert_eq!(
            map.runs(0x3000, 0x3800),
            [(0x3000, 0x3800, Some(PROT_READ))]
        );
    }
}
