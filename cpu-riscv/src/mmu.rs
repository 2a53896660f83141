//! Address translation: Sv39, Sv48 and Sv57 page walks and the software TLB.
//!
//! The TLB is direct-mapped with separate read, write and fetch arrays. An entry
//! exists only for RAM pages whose permission was already checked for the access
//! kind under the current privilege and mstatus bits, so a hit needs no checks:
//! the host-side RAM offset is the virtual address plus the entry's delta. Anything
//! that changes permissions (satp, sfence.vma, privilege, MPRV/SUM/MXR) flushes.

use crate::hart::{Hart, PRIV_M, PRIV_S, PRIV_U};
use crate::trap::{Trap, cause};
use emu_core::GuestPhysAddr;

/// Entries per TLB array.
pub const TLB_ENTRIES: usize = 1024;
const PAGE_SHIFT: u32 = 12;

/// One TLB entry: virtual page tag and the delta to the RAM offset.
#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    /// The virtual address of the page (low 12 bits clear), or `u64::MAX` when
    /// empty. Translated code compares it with the access address masked to the
    /// page and the access's alignment bits, so one compare checks both.
    pub tag: u64,
    /// Added to the virtual address to give the offset into guest RAM.
    pub delta: u64,
}

impl TlbEntry {
    const EMPTY: TlbEntry = TlbEntry {
        tag: u64::MAX,
        delta: 0,
    };
}

/// The three TLB arrays.
#[derive(Debug)]
pub struct Tlb {
    /// Entries valid for loads.
    pub read: Box<[TlbEntry; TLB_ENTRIES]>,
    /// Entries valid for stores (never code pages, so stores to code take the slow
    /// path, which invalidates decoded instructions).
    pub write: Box<[TlbEntry; TLB_ENTRIES]>,
}

impl Default for Tlb {
    fn default() -> Tlb {
        Tlb {
            read: Box::new([TlbEntry::EMPTY; TLB_ENTRIES]),
            write: Box::new([TlbEntry::EMPTY; TLB_ENTRIES]),
        }
    }
}

impl Tlb {
    /// Forgets every entry.
    pub fn flush(&mut self) {
        self.read.fill(TlbEntry::EMPTY);
        self.write.fill(TlbEntry::EMPTY);
    }

    /// Forgets store entries only.
    pub fn flush_write(&mut self) {
        self.write.fill(TlbEntry::EMPTY);
    }

    /// Index for a virtual address.
    #[inline]
    pub fn index(va: u64) -> usize {
        (va >> PAGE_SHIFT) as usize & (TLB_ENTRIES - 1)
    }
}

/// The TLBs of the privilege levels not running now. Each level has a TLB of
/// its own, so a trap or a return between levels (every system call, every
/// timer interrupt through M-mode) swaps two boxes instead of emptying 32 KiB
/// and walking the page tables again for every page touched after it, as
/// QEMU keeps a TLB per MMU mode. Flushes reach parked TLBs lazily: each
/// remembers the flush generations it is current with and catches up when it
/// becomes the running one.
#[derive(Debug, Default)]
pub(crate) struct ParkedTlbs {
    /// Indexed by privilege level (0 U, 1 S, 3 M); the running level's slot
    /// holds whatever TLB it swapped out last.
    tlbs: [Tlb; 4],
    /// (flushes, write flushes) each slot had seen when it was parked.
    seen: [(u64, u64); 4],
    /// Full flushes so far (satp, sfence.vma, SUM/MXR/MPRV changes).
    flushes: u64,
    /// Store-entry flushes so far (a page became a code page).
    write_flushes: u64,
}

impl ParkedTlbs {
    /// Parks `active` as level `from`'s and makes it level `to`'s TLB, brought
    /// up to date with the flushes it missed.
    pub(crate) fn switch(&mut self, active: &mut Tlb, from: u8, to: u8) {
        let (from, to) = (usize::from(from & 3), usize::from(to & 3));
        std::mem::swap(active, &mut self.tlbs[from]);
        self.seen[from] = (self.flushes, self.write_flushes);
        std::mem::swap(active, &mut self.tlbs[to]);
        let (flushes, write_flushes) = self.seen[to];
        if flushes != self.flushes {
            active.flush();
        } else if write_flushes != self.write_flushes {
            active.flush_write();
        }
    }

    /// Notes a full flush of every level's TLB (the caller flushes the running one).
    pub(crate) fn note_flush(&mut self) {
        self.flushes += 1;
    }

    /// Notes a flush of every level's store entries.
    pub(crate) fn note_write_flush(&mut self) {
        self.write_flushes += 1;
    }
}

/// Kind of memory access, for permission checks and fault causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Load (also LR).
    Read,
    /// Store (also SC and AMOs).
    Write,
    /// Instruction fetch.
    Execute,
}

impl Access {
    fn page_fault(self, va: u64) -> Trap {
        let code = match self {
            Access::Read => cause::LOAD_PAGE_FAULT,
            Access::Write => cause::STORE_PAGE_FAULT,
            Access::Execute => cause::INSTRUCTION_PAGE_FAULT,
        };
        Trap::new(code, va)
    }

    /// The access-fault trap for this kind of access.
    pub fn access_fault(self, va: u64) -> Trap {
        let code = match self {
            Access::Read => cause::LOAD_ACCESS_FAULT,
            Access::Write => cause::STORE_ACCESS_FAULT,
            Access::Execute => cause::INSTRUCTION_ACCESS_FAULT,
        };
        Trap::new(code, va)
    }
}

const PTE_V: u64 = 1 << 0;
const PTE_R: u64 = 1 << 1;
const PTE_W: u64 = 1 << 2;
const PTE_X: u64 = 1 << 3;
const PTE_U: u64 = 1 << 4;
const PTE_A: u64 = 1 << 6;
const PTE_D: u64 = 1 << 7;
const PTE_PPN_MASK: u64 = (1 << 44) - 1;
/// Bits 63:54 (N, PBMT and reserved) must be zero without Svnapot/Svpbmt.
const PTE_HIGH_MASK: u64 = 0xffc0_0000_0000_0000;

/// satp.MODE values.
pub mod satp_mode {
    /// No translation.
    pub const BARE: u64 = 0;
    /// Three-level paging.
    pub const SV39: u64 = 8;
    /// Four-level paging.
    pub const SV48: u64 = 9;
    /// Five-level paging.
    pub const SV57: u64 = 10;
}

impl Hart {
    /// The privilege level that loads and stores run at (MPRV applies MPP in M-mode).
    #[inline]
    pub(crate) fn data_privilege(&self) -> u8 {
        let mstatus = self.state.mstatus;
        if self.state.privilege == PRIV_M && mstatus & crate::csr::MSTATUS_MPRV != 0 {
            ((mstatus >> 11) & 3) as u8
        } else {
            self.state.privilege
        }
    }

    /// Translates a virtual address to a physical one, walking the page table and
    /// updating A/D bits as needed.
    pub fn translate(&mut self, va: u64, access: Access) -> Result<u64, Trap> {
        let privilege = match access {
            Access::Execute => self.state.privilege,
            _ => self.data_privilege(),
        };
        if privilege == PRIV_U
            && let Some(space) = &self.user_space
        {
            // A page the dispatch found executable since the last flush of
            // fetch translations still is: no look-up in the process's map
            // (the interpreter fetches through here at every page change).
            let vpn = va >> 12;
            let slot = (vpn as usize) & (crate::hart::EXEC_CACHE - 1);
            if access == Access::Execute && self.exec_cache[slot] == (vpn, vpn) {
                return Ok(va);
            }
            if !space.permits(va, access) {
                return Err(access.page_fault(va));
            }
            if access == Access::Execute {
                // User mode: a virtual address is its RAM offset.
                self.fill_exec_cache(vpn, vpn);
            }
            return Ok(va);
        }
        let satp = self.state.satp;
        let mode = satp >> 60;
        if privilege == PRIV_M || mode == satp_mode::BARE {
            return Ok(va);
        }
        let levels: u32 = match mode {
            satp_mode::SV39 => 3,
            satp_mode::SV48 => 4,
            _ => 5,
        };
        let va_bits = 12 + 9 * levels;
        // The address must be the sign extension of its low va_bits bits.
        let shift = 64 - va_bits;
        if (((va << shift) as i64) >> shift) as u64 != va {
            return Err(access.page_fault(va));
        }
        let mstatus = self.state.mstatus;
        let sum = mstatus & crate::csr::MSTATUS_SUM != 0;
        let mxr = mstatus & crate::csr::MSTATUS_MXR != 0;
        let mut table = (satp & PTE_PPN_MASK) << PAGE_SHIFT;
        let mut level = levels;
        loop {
            level -= 1;
            let vpn = (va >> (PAGE_SHIFT + 9 * level)) & 0x1ff;
            let pte_addr = table + vpn * 8;
            let pte = self
                .read_phys_u64(pte_addr)
                .ok_or(access.access_fault(va))?;
            if pte & PTE_V == 0
                || (pte & PTE_R == 0 && pte & PTE_W != 0)
                || pte & PTE_HIGH_MASK != 0
            {
                return Err(access.page_fault(va));
            }
            let ppn = (pte >> 10) & PTE_PPN_MASK;
            if pte & (PTE_R | PTE_X) == 0 {
                // Pointer to the next level; A, D and U must be clear on non-leaves.
                if level == 0 || pte & (PTE_A | PTE_D | PTE_U) != 0 {
                    return Err(access.page_fault(va));
                }
                table = ppn << PAGE_SHIFT;
                continue;
            }
            // A leaf: check permissions.
            let allowed = match access {
                Access::Execute => pte & PTE_X != 0,
                Access::Read => pte & PTE_R != 0 || (mxr && pte & PTE_X != 0),
                Access::Write => pte & PTE_W != 0,
            };
            let user_page = pte & PTE_U != 0;
            let user_ok = match privilege {
                PRIV_U => user_page,
                PRIV_S => !user_page || (sum && access != Access::Execute),
                _ => true,
            };
            if !allowed || !user_ok {
                return Err(access.page_fault(va));
            }
            // Superpages need their low PPN fields clear.
            let low_ppn_mask = (1u64 << (9 * level)) - 1;
            if ppn & low_ppn_mask != 0 {
                return Err(access.page_fault(va));
            }
            // Hardware A/D update (Svadu behaviour, as QEMU): set A, and D on stores.
            let mut wanted = PTE_A;
            if access == Access::Write {
                wanted |= PTE_D;
            }
            if pte & wanted != wanted && !self.set_pte_bits(pte_addr, wanted) {
                return Err(access.access_fault(va));
            }
            let offset_mask = (1u64 << (PAGE_SHIFT + 9 * level)) - 1;
            return Ok(((ppn << PAGE_SHIFT) & !offset_mask) | (va & offset_mask));
        }
    }

    fn read_phys_u64(&self, pa: u64) -> Option<u64> {
        match self.bus.ram_offset(GuestPhysAddr(pa), 8) {
            Some(off) => self.ram.read_u64(off),
            None => self.bus.read(GuestPhysAddr(pa), 8).ok(),
        }
    }

    /// Sets A/D bits in a PTE atomically, so a concurrent change by another hart
    /// (or the OS) is not overwritten. Returns false when the PTE is not in RAM.
    fn set_pte_bits(&mut self, pte_addr: u64, bits: u64) -> bool {
        let Some(off) = self.bus.writable_offset(GuestPhysAddr(pte_addr), 8) else {
            return false;
        };
        let Some(cell) = self.ram.atomic_u64(off) else {
            return false;
        };
        cell.fetch_or(bits.to_le(), std::sync::atomic::Ordering::AcqRel);
        if self.ram.is_code_page(off) {
            self.invalidate_code(off, 8);
        }
        true
    }

    /// Flushes every privilege level's TLB.
    pub(crate) fn flush_tlbs(&mut self) {
        self.tlb.flush();
        self.parked_tlbs.note_flush();
    }

    /// Flushes every privilege level's store entries.
    pub(crate) fn flush_tlb_writes(&mut self) {
        self.tlb.flush_write();
        self.parked_tlbs.note_write_flush();
    }

    /// Flushes all cached translations (every level's TLB and the fetch page).
    pub fn flush_translations(&mut self) {
        self.flush_tlbs();
        self.flush_fetch_translations();
    }

    /// Forgets the fetch page and the dispatch's fetch translations.
    pub(crate) fn flush_fetch_translations(&mut self) {
        self.fetch_vpn = u64::MAX;
        self.flush_exec_cache();
    }
}
