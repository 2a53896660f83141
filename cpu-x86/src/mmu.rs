//! Paging: the page-table walk for 32-bit, PAE and 4-level paging, and the
//! software TLB in front of it.
//!
//! The TLB is direct-mapped by linear page and keeps, per 4 KiB page, the
//! physical page and what the walk allowed. Large pages fill one entry per
//! 4 KiB page touched. MOV CR3 drops the non-global entries, INVLPG one page,
//! and changes to the paging mode everything.

use crate::cpu::{Cpu, Fault, vector};
use crate::state::{cr0, efer};

/// CR4 bits the walk looks at.
pub mod cr4 {
    /// Virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// RDTSC only at privilege 0.
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// 4 MiB pages in 32-bit paging.
    pub const PSE: u64 = 1 << 4;
    /// Physical address extension (64-bit entries).
    pub const PAE: u64 = 1 << 5;
    /// Machine-check enable.
    pub const MCE: u64 = 1 << 6;
    /// Global pages.
    pub const PGE: u64 = 1 << 7;
    /// Performance-counter enable.
    pub const PCE: u64 = 1 << 8;
    /// FXSAVE/FXRSTOR and SSE.
    pub const OSFXSR: u64 = 1 << 9;
    /// Unmasked SIMD floating-point exceptions.
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// User-mode instruction prevention.
    pub const UMIP: u64 = 1 << 11;
    /// RDFSBASE and friends.
    pub const FSGSBASE: u64 = 1 << 16;
    /// Process-context identifiers.
    pub const PCIDE: u64 = 1 << 17;
    /// XSAVE and XCR0.
    pub const OSXSAVE: u64 = 1 << 18;
    /// Supervisor-mode execution prevention.
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention.
    pub const SMAP: u64 = 1 << 21;
    /// Protection keys for user pages.
    pub const PKE: u64 = 1 << 22;
}

/// What an access wants of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load by the program.
    Read,
    /// A store by the program.
    Write,
    /// An instruction fetch.
    Fetch,
    /// A load the processor makes for itself (descriptor tables, the IDT,
    /// the TSS): always with supervisor rights.
    SystemRead,
    /// A store the processor makes for itself (accessed bits, the TSS).
    SystemWrite,
}

impl Access {
    fn is_write(self) -> bool {
        matches!(self, Access::Write | Access::SystemWrite)
    }
}

const ENTRIES: usize = 256;
const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const ACCESSED: u64 = 1 << 5;
const DIRTY: u64 = 1 << 6;
const LARGE: u64 = 1 << 7;
const GLOBAL: u64 = 1 << 8;
const NO_EXECUTE: u64 = 1 << 63;
/// The page-fault error code bit for a protection-key violation.
const PROTECTION_KEY_FAULT: u32 = 1 << 5;
/// Physical-address bits of a 64-bit entry.
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// Permission bits of a TLB entry.
const T_USER: u8 = 1 << 0;
const T_WRITABLE: u8 = 1 << 1;
const T_EXECUTABLE: u8 = 1 << 2;
const T_GLOBAL: u8 = 1 << 3;
const T_DIRTY: u8 = 1 << 4;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// Linear page number + 1; 0 is an empty entry.
    tag: u64,
    /// Physical page address.
    phys: u64,
    perms: u8,
    /// The protection key of the page (IA-32e paging).
    key: u8,
}

/// The software TLB.
#[derive(Debug)]
pub(crate) struct Tlb {
    entries: Box<[Entry]>,
}

impl Default for Tlb {
    fn default() -> Tlb {
        Tlb {
            entries: vec![Entry::default(); ENTRIES].into_boxed_slice(),
        }
    }
}

impl Tlb {
    /// Drops every entry, global ones too.
    pub(crate) fn flush_all(&mut self) {
        self.entries.fill(Entry::default());
    }

    /// Drops the entries not marked global (MOV CR3).
    pub(crate) fn flush_non_global(&mut self) {
        for e in self.entries.iter_mut() {
            if e.perms & T_GLOBAL == 0 {
                *e = Entry::default();
            }
        }
    }

    /// Drops the entry of the page holding `linear` (INVLPG).
    pub(crate) fn flush_page(&mut self, linear: u64) {
        let page = linear >> 12;
        let e = &mut self.entries[page as usize % ENTRIES];
        if e.tag == page + 1 {
            *e = Entry::default();
        }
    }
}

/// The result of a walk: the physical page and what it allows.
struct Walk {
    phys: u64,
    perms: u8,
    key: u8,
}

impl Cpu {
    /// The physical address of `linear` for `access`, through the TLB and
    /// the page tables; #PF (with CR2 set) when the tables forbid it.
    #[inline]
    pub(crate) fn translate(&mut self, linear: u64, access: Access) -> Result<u64, Fault> {
        if self.state.cr0 & cr0::PG == 0 {
            return Ok(self.physical(linear));
        }
        self.translate_paged(linear, access)
    }

    fn translate_paged(&mut self, linear: u64, access: Access) -> Result<u64, Fault> {
        let user = self.cpl() == 3 && !matches!(access, Access::SystemRead | Access::SystemWrite);
        let page = linear >> 12;
        let slot = page as usize % ENTRIES;
        let entry = self.tlb.entries[slot];
        let (phys, perms, key) = if entry.tag == page + 1 && self.allowed(entry.perms, access, user)
        {
            (entry.phys, entry.perms, entry.key)
        } else {
            let walk = self.walk(linear, access, user)?;
            self.tlb.entries[slot] = Entry {
                tag: page + 1,
                phys: walk.phys,
                perms: walk.perms,
                key: walk.key,
            };
            (walk.phys, walk.perms, walk.key)
        };
        if self.key_blocks(perms, key, access, user) {
            let mut fault = self.page_fault(linear, access, user, true);
            fault.error = fault.error.map(|code| code | PROTECTION_KEY_FAULT);
            return Err(fault);
        }
        Ok(self.physical(phys | (linear & 0xfff)))
    }

    /// Whether a TLB entry's rights cover the access without a new walk
    /// (a store to a page not yet dirty walks again to set D).
    fn allowed(&self, perms: u8, access: Access, user: bool) -> bool {
        if user && perms & T_USER == 0 {
            return false;
        }
        match access {
            Access::Write | Access::SystemWrite => {
                perms & T_DIRTY != 0
                    && (perms & T_WRITABLE != 0 || (!user && self.state.cr0 & cr0::WP == 0))
                    && !self.smap_blocks(perms, access, user)
            }
            Access::Fetch => {
                perms & T_EXECUTABLE != 0
                    && !(!user && perms & T_USER != 0 && self.state.cr4 & cr4::SMEP != 0)
            }
            _ => !self.smap_blocks(perms, access, user),
        }
    }

    /// Protection keys: with CR4.PKE in IA-32e paging, a data access to a
    /// user page whose key PKRU disables faults, and so does a store to a
    /// key PKRU write-disables (at privilege 3, or anywhere with CR0.WP).
    fn key_blocks(&self, perms: u8, key: u8, access: Access, user: bool) -> bool {
        if self.state.cr4 & cr4::PKE == 0
            || perms & T_USER == 0
            || access == Access::Fetch
            || self.state.efer & efer::LMA == 0
        {
            return false;
        }
        let rights = self.state.pkru >> (2 * u32::from(key));
        let write_disabled = rights & 2 != 0 && (user || self.state.cr0 & cr0::WP != 0);
        rights & 1 != 0 || (access.is_write() && write_disabled)
    }

    /// SMAP: supervisor data accesses to user pages fault unless RFLAGS.AC
    /// allows explicit ones.
    fn smap_blocks(&self, perms: u8, access: Access, user: bool) -> bool {
        if user || perms & T_USER == 0 || self.state.cr4 & cr4::SMAP == 0 {
            return false;
        }
        let implicit = matches!(access, Access::SystemRead | Access::SystemWrite);
        implicit || self.state.rflags & crate::state::flags::AC == 0
    }

    fn page_fault(&mut self, linear: u64, access: Access, user: bool, present: bool) -> Fault {
        self.state.cr2 = linear;
        let mut code = 0;
        if present {
            code |= 1;
        }
        if access.is_write() {
            code |= 2;
        }
        if user {
            code |= 4;
        }
        let nx = self.state.efer & efer::NXE != 0 || self.state.cr4 & cr4::SMEP != 0;
        if access == Access::Fetch && nx {
            code |= 16;
        }
        Fault {
            vector: vector::PF,
            error: Some(code),
        }
    }

    fn read_table(&mut self, addr: u64, wide: bool) -> u64 {
        let addr = self.physical(addr);
        self.read_physical(addr, if wide { 8 } else { 4 })
    }

    fn write_table(&mut self, addr: u64, wide: bool, value: u64) {
        let addr = self.physical(addr);
        self.write_physical(addr, if wide { 8 } else { 4 }, value);
    }

    /// Walks the page tables for `linear`.
    fn walk(&mut self, linear: u64, access: Access, user: bool) -> Result<Walk, Fault> {
        let long = self.state.efer & efer::LMA != 0;
        let pae = self.state.cr4 & cr4::PAE != 0;
        let nxe = self.state.efer & efer::NXE != 0;
        // (table entry address, entries are 8 bytes)
        let mut levels: Vec<(u64, bool)> = Vec::with_capacity(4);
        let mut writable = true;
        let mut user_ok = true;
        let mut executable = true;
        let (phys, leaf_at, leaf, wide) = if long || pae {
            let (mut table, mut shift) = if long {
                (self.state.cr3 & ADDRESS, 39u32)
            } else {
                // The four PDPTEs: present bits only, no rights.
                let at = (self.state.cr3 & 0xffff_ffe0) + ((linear >> 30) & 3) * 8;
                let pdpte = self.read_table(at, true);
                if pdpte & PRESENT == 0 {
                    return Err(self.page_fault(linear, access, user, false));
                }
                (pdpte & ADDRESS, 21u32)
            };
            loop {
                let at = table + ((linear >> shift) & 0x1ff) * 8;
                let entry = self.read_table(at, true);
                if entry & PRESENT == 0 {
                    return Err(self.page_fault(linear, access, user, false));
                }
                writable &= entry & WRITABLE != 0;
                user_ok &= entry & USER != 0;
                if nxe && entry & NO_EXECUTE != 0 {
                    executable = false;
                }
                levels.push((at, true));
                let large = shift < 39 && shift > 12 && entry & LARGE != 0;
                if shift == 12 || large {
                    let offset_mask = (1u64 << shift) - 1;
                    let phys = (entry & ADDRESS & !offset_mask) | (linear & offset_mask & !0xfff);
                    break (phys, at, entry, true);
                }
                table = entry & ADDRESS;
                shift -= 9;
            }
        } else {
            // One level of a 32-bit walk: the entry, present or #PF.
            let mut level = |cpu: &mut Cpu, at: u64| -> Result<u64, Fault> {
                let entry = cpu.read_table(at, false);
                if entry & PRESENT == 0 {
                    return Err(cpu.page_fault(linear, access, user, false));
                }
                writable &= entry & WRITABLE != 0;
                user_ok &= entry & USER != 0;
                levels.push((at, false));
                Ok(entry)
            };
            let pde_at = (self.state.cr3 & 0xffff_f000) + ((linear >> 22) & 0x3ff) * 4;
            let pde = level(self, pde_at)?;
            if pde & LARGE != 0 && self.state.cr4 & cr4::PSE != 0 {
                // PSE-36: bits 13–20 of the entry are physical bits 32–39.
                let high = ((pde >> 13) & 0xff) << 32;
                let phys = (pde & 0xffc0_0000) | high | (linear & 0x003f_f000);
                (phys, pde_at, pde, false)
            } else {
                let pte_at = (pde & 0xffff_f000) + ((linear >> 12) & 0x3ff) * 4;
                let pte = level(self, pte_at)?;
                (pte & 0xffff_f000, pte_at, pte, false)
            }
        };
        let mut perms = T_DIRTY * u8::from(access.is_write() || leaf & DIRTY != 0);
        if writable {
            perms |= T_WRITABLE;
        }
        if user_ok {
            perms |= T_USER;
        }
        if executable {
            perms |= T_EXECUTABLE;
        }
        if leaf & GLOBAL != 0 && self.state.cr4 & cr4::PGE != 0 {
            perms |= T_GLOBAL;
        }
        // The rights, as a TLB hit would check them (D is set below).
        if !self.allowed(perms | T_DIRTY, access, user) {
            return Err(self.page_fault(linear, access, user, true));
        }
        // Accessed bits on every level; dirty on the leaf for a store.
        for &(at, wide) in &levels {
            let entry = self.read_table(at, wide);
            let mut new = entry | ACCESSED;
            if at == leaf_at && access.is_write() {
                new |= DIRTY;
            }
            if new != entry {
                self.write_table(at, wide, new);
            }
        }
        let _ = wide;
        let key = if long { ((leaf >> 59) & 0xf) as u8 } else { 0 };
        Ok(Walk {
            phys: phys & !0xfff,
            perms,
            key,
        })
    }
}

/// One level of a debugger's page walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkLevel {
    /// The table's name (PML4E, PDPTE, PDE, PTE).
    pub name: &'static str,
    /// The physical address of the entry.
    pub at: u64,
    /// The entry (`None` when it is not in memory).
    pub entry: Option<u64>,
}

/// A debugger's walk of the page tables for one linear address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugWalk {
    /// The entries read, from the root down.
    pub levels: Vec<WalkLevel>,
    /// The physical address, when the tables map it.
    pub phys: Option<u64>,
}

impl Cpu {
    /// Translates `linear` as the CPU would now, for a debugger: no
    /// accessed or dirty bits, no CR2, no TLB fill, and no rights checks
    /// (a debugger reads supervisor pages from user code too).
    pub fn debug_walk(&self, linear: u64) -> DebugWalk {
        let mut walk = DebugWalk::default();
        let long = self.state.efer & efer::LMA != 0;
        let linear = if long { linear } else { linear & 0xffff_ffff };
        if self.state.cr0 & cr0::PG == 0 {
            walk.phys = Some(self.physical(linear));
            return walk;
        }
        if long && !crate::cpu::canonical(linear) {
            return walk;
        }
        let entry_at = |walk: &mut DebugWalk, name, at: u64, wide: bool| {
            let at = self.physical(at);
            let size = if wide { 8 } else { 4 };
            let entry = self
                .bus()
                .ram_offset(emu_core::GuestPhysAddr(at), size)
                .and_then(|offset| match wide {
                    true => self.bus().ram().read_u64(offset),
                    false => self.bus().ram().read_u32(offset).map(u64::from),
                });
            walk.levels.push(WalkLevel { name, at, entry });
            entry.filter(|e| e & PRESENT != 0)
        };
        const NAMES: [&str; 4] = ["PTE", "PDE", "PDPTE", "PML4E"];
        let phys = if long || self.state.cr4 & cr4::PAE != 0 {
            let (mut table, mut shift) = if long {
                (self.state.cr3 & ADDRESS, 39u32)
            } else {
                let at = (self.state.cr3 & 0xffff_ffe0) + ((linear >> 30) & 3) * 8;
                let Some(pdpte) = entry_at(&mut walk, "PDPTE", at, true) else {
                    return walk;
                };
                (pdpte & ADDRESS, 21u32)
            };
            loop {
                let at = table + ((linear >> shift) & 0x1ff) * 8;
                let name = NAMES[((shift - 12) / 9) as usize];
                let Some(entry) = entry_at(&mut walk, name, at, true) else {
                    return walk;
                };
                if shift == 12 || (shift < 39 && entry & LARGE != 0) {
                    let offset_mask = (1u64 << shift) - 1;
                    break (entry & ADDRESS & !offset_mask) | (linear & offset_mask);
                }
                table = entry & ADDRESS;
                shift -= 9;
            }
        } else {
            let pde_at = (self.state.cr3 & 0xffff_f000) + ((linear >> 22) & 0x3ff) * 4;
            let Some(pde) = entry_at(&mut walk, "PDE", pde_at, false) else {
                return walk;
            };
            if pde & LARGE != 0 && self.state.cr4 & cr4::PSE != 0 {
                let high = ((pde >> 13) & 0xff) << 32;
                (pde & 0xffc0_0000) | high | (linear & 0x003f_ffff)
            } else {
                let pte_at = (pde & 0xffff_f000) + ((linear >> 12) & 0x3ff) * 4;
                let Some(pte) = entry_at(&mut walk, "PTE", pte_at, false) else {
                    return walk;
                };
                (pte & 0xffff_f000) | (linear & 0xfff)
            }
        };
        walk.phys = Some(self.physical(phys));
        walk
    }
}
