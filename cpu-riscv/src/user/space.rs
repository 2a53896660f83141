//! A user-mode process's address space: guest virtual addresses are offsets into
//! one sparse host mapping ([`GuestRam::new_sparse`]), so translated code reaches
//! guest memory with one add, and a map of areas (like Linux's VMAs) says which
//! pages exist with which permissions. The MMU consults it on TLB misses; the
//! syscall layer checks it before touching guest memory for the guest.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use emu_core::GuestRam;

use crate::hart::UserAddressSpace;
use crate::mmu::Access;

/// Size of the user address space: the lower half of Sv39, as riscv64 Linux gives
/// processes.
pub const USER_SPACE_SIZE: u64 = 1 << 38;
/// The page size.
pub const PAGE: u64 = 4096;

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
        let areas = self.areas.read().unwrap_or_else(|e| e.into_inner());
        let (_, area) = areas.range(..=va).next_back()?;
        (va < area.end).then_some(area.prot)
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
    /// was there.
    pub fn map(&self, start: u64, len: u64, prot: u8) {
        let mut areas = self.areas.write().unwrap_or_else(|e| e.into_inner());
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
    pub fn unmap(&self, start: u64, len: u64) {
        let mut areas = self.areas.write().unwrap_or_else(|e| e.into_inner());
        Self::cut(&mut areas, start, start + len);
    }

    /// Whether every page of `[start, start + len)` is mapped.
    pub fn is_mapped(&self, start: u64, len: u64) -> bool {
        let areas = self.areas.read().unwrap_or_else(|e| e.into_inner());
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
    pub fn protect(&self, start: u64, len: u64, prot: u8) -> bool {
        if !self.is_mapped(start, len) {
            return false;
        }
        self.map(start, len, prot);
        true
    }

    /// The highest free gap of `len` bytes that ends at or below `top`, at or above
    /// `bottom`.
    pub fn find_free(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        let areas = self.areas.read().unwrap_or_else(|e| e.into_inner());
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
    /// The whole address space as host memory.
    pub ram: Arc<GuestRam>,
    /// Which pages exist.
    pub areas: Arc<AreaMap>,
}

/// A guest address that the guest may not access: the syscall returns EFAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

impl UserMemory {
    /// Reserves the address space.
    pub fn new() -> Result<UserMemory, String> {
        let ram = GuestRam::new_sparse(USER_SPACE_SIZE)
            .map_err(|e| format!("cannot reserve the guest address space: {e}"))?;
        Ok(UserMemory {
            ram: Arc::new(ram),
            areas: Arc::new(AreaMap::default()),
        })
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
        self.ram.write_bytes(va, data).then_some(()).ok_or(Fault)
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
        self.ram.discard(start, len);
        self.areas.map(start, len, prot);
    }

    /// Unmaps pages and gives their memory back.
    pub fn unmap(&self, start: u64, len: u64) {
        self.areas.unmap(start, len);
        self.ram.discard(start, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        memory
            .areas
            .protect(0x21000, 0x1000, PROT_READ | PROT_WRITE);
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
}
