//! Debugger support: breakpoints, watchpoints and exact single steps, for the
//! gdbstub. A hart with no debug state pays one `Option` check per run call.
//!
//! Breakpoints work with the JIT on: the dispatch loop stops before a block that
//! starts at a breakpoint, blocks are cut so none runs through one, chains never
//! lead into one, and inserting one drops only the translations that cover its
//! address. Watchpoints need every data access checked, so while any is set the
//! hart runs instruction by instruction, checking each access before it is made.

use emu_core::GuestPhysAddr;
use std::collections::BTreeSet;

use crate::hart::{Hart, RunExit};

pub use emu_core::debug::{DebugStop, WatchKind};

#[derive(Clone, Copy, Debug)]
struct Watchpoint {
    addr: u64,
    len: u64,
    kind: WatchKind,
}

/// A hart's breakpoints and watchpoints.
#[derive(Debug, Default)]
pub struct DebugState {
    breakpoints: BTreeSet<u64>,
    watchpoints: Vec<Watchpoint>,
    stop: Option<DebugStop>,
    /// Resuming from a breakpoint at this pc: run it once without stopping.
    resume_from: Option<u64>,
}

impl Hart {
    fn debug_state(&mut self) -> &mut DebugState {
        self.debug.get_or_insert_with(Box::default)
    }

    /// Stops before executing the instruction at virtual address `pc`.
    pub fn insert_breakpoint(&mut self, pc: u64) {
        self.debug_state().breakpoints.insert(pc);
        if let Some(jit) = self.jit.as_mut() {
            jit.cache.invalidate_pc(pc);
        }
    }

    /// Removes a breakpoint; returns whether there was one. Translations made
    /// while it was set stay valid (they just end before it).
    pub fn remove_breakpoint(&mut self, pc: u64) -> bool {
        self.debug
            .as_mut()
            .is_some_and(|d| d.breakpoints.remove(&pc))
    }

    /// Stops before an access of `kind` touching `[addr, addr + len)`.
    pub fn insert_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) {
        self.debug_state().watchpoints.push(Watchpoint {
            addr,
            len: len.max(1),
            kind,
        });
    }

    /// Removes a watchpoint; returns whether there was one.
    pub fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        let Some(debug) = self.debug.as_mut() else {
            return false;
        };
        let len = len.max(1);
        match debug
            .watchpoints
            .iter()
            .position(|w| w.addr == addr && w.len == len && w.kind == kind)
        {
            Some(i) => {
                debug.watchpoints.remove(i);
                true
            }
            None => false,
        }
    }

    /// Forgets every breakpoint and watchpoint (the debugger went away).
    pub fn clear_debug(&mut self) {
        self.debug = None;
    }

    /// Why the hart last stopped for the debugger, once.
    pub fn take_debug_stop(&mut self) -> Option<DebugStop> {
        self.debug.as_mut()?.stop.take()
    }

    /// The debugger resumes the hart where it stopped: the instruction at the pc
    /// runs without stopping again for its breakpoint or watchpoint.
    pub fn resume_from_breakpoint(&mut self) {
        let pc = self.state.pc;
        if let Some(debug) = self.debug.as_mut() {
            debug.resume_from = Some(pc);
        }
    }

    /// Executes exactly one instruction (or takes one trap or interrupt), whatever
    /// the engine, checking watchpoints.
    pub fn debug_step(&mut self) -> RunExit {
        self.exit = None;
        self.irq_check = false;
        self.note_irq_epoch();
        self.take_pending_interrupt();
        self.step_one();
        self.clock.retire(1);
        if let Some(debug) = self.debug.as_mut() {
            debug.resume_from = None;
        }
        self.exit.take().unwrap_or(RunExit::Budget)
    }

    /// Whether any watchpoint is set (the run loops then go one instruction at a
    /// time with the TLB fast path off).
    pub(crate) fn watching(&self) -> bool {
        self.debug
            .as_ref()
            .is_some_and(|d| !d.watchpoints.is_empty())
    }

    /// Whether the dispatch must stop before executing at `pc`; consumes the
    /// resume-from mark.
    pub(crate) fn breakpoint_at(&mut self, pc: u64) -> bool {
        let Some(debug) = self.debug.as_mut() else {
            return false;
        };
        if debug.resume_from.take() == Some(pc) {
            return false;
        }
        if debug.breakpoints.contains(&pc) {
            debug.stop = Some(DebugStop::Breakpoint(pc));
            return true;
        }
        false
    }

    /// Whether a block may include the instruction at `pc` after its first.
    pub(crate) fn breakpoint_inside_block(&self, pc: u64) -> bool {
        self.debug
            .as_ref()
            .is_some_and(|d| d.breakpoints.contains(&pc))
    }

    /// The data access the instruction at the pc is about to make:
    /// (address, size, reads, writes).
    fn next_access(&mut self) -> Option<(u64, u64, bool, bool)> {
        use crate::decode::Op::*;
        let insn = self.fetch(self.state.pc).ok()?;
        let base = self.state.x[usize::from(insn.rs1)];
        let at = base.wrapping_add(i64::from(insn.imm) as u64);
        Some(match insn.op {
            Lb | Lbu => (at, 1, true, false),
            Lh | Lhu => (at, 2, true, false),
            Lw | Lwu | Flw => (at, 4, true, false),
            Ld | Fld => (at, 8, true, false),
            Sb => (at, 1, false, true),
            Sh => (at, 2, false, true),
            Sw | Fsw => (at, 4, false, true),
            Sd | Fsd => (at, 8, false, true),
            LrW => (base, 4, true, false),
            LrD => (base, 8, true, false),
            ScW => (base, 4, false, true),
            ScD => (base, 8, false, true),
            AmoSwapW | AmoAddW | AmoXorW | AmoAndW | AmoOrW | AmoMinW | AmoMaxW | AmoMinuW
            | AmoMaxuW => (base, 4, true, true),
            AmoSwapD | AmoAddD | AmoXorD | AmoAndD | AmoOrD | AmoMinD | AmoMaxD | AmoMinuD
            | AmoMaxuD => (base, 8, true, true),
            _ => return None,
        })
    }

    /// Whether the next instruction's access hits a watchpoint; records the stop.
    /// The stop comes before the access, as RISC-V debug triggers fire and as gdb
    /// expects (it then steps over the access with the watchpoint removed).
    fn watchpoint_before(&mut self) -> bool {
        let Some((addr, size, reads, writes)) = self.next_access() else {
            return false;
        };
        let Some(debug) = self.debug.as_mut() else {
            return false;
        };
        let end = addr.wrapping_add(size);
        let hit = debug.watchpoints.iter().find_map(|w| {
            let kind = match w.kind {
                WatchKind::Read if reads => WatchKind::Read,
                WatchKind::Write if writes => WatchKind::Write,
                WatchKind::Access if reads || writes => {
                    if writes {
                        WatchKind::Write
                    } else {
                        WatchKind::Read
                    }
                }
                _ => return None,
            };
            (addr < w.addr.wrapping_add(w.len) && w.addr < end).then_some((kind, addr.max(w.addr)))
        });
        match hit {
            Some((kind, addr)) => {
                debug.stop = Some(DebugStop::Watchpoint { kind, addr });
                true
            }
            None => false,
        }
    }

    /// The run loop while watchpoints are set: one instruction at a time.
    pub(crate) fn run_watched(&mut self, budget: u64) -> RunExit {
        for _ in 0..budget {
            let resuming = self
                .debug
                .as_ref()
                .is_some_and(|d| d.resume_from == Some(self.state.pc));
            if self.breakpoint_at(self.state.pc) || (!resuming && self.watchpoint_before()) {
                return RunExit::Debug;
            }
            match self.debug_step() {
                RunExit::Budget => {}
                exit => return exit,
            }
        }
        if self.bus.control().stop_requested() {
            return RunExit::Stopped;
        }
        RunExit::Budget
    }
}

/// Debugger memory access: RAM only (a debugger reading a device register must
/// not pop a UART byte), through the current translation for virtual addresses.
impl Hart {
    /// The physical address `va` maps to for a load now, if it does.
    pub fn debug_translate(&mut self, va: u64) -> Result<u64, crate::Trap> {
        self.translate(va, crate::mmu::Access::Read)
    }

    /// Reads RAM at virtual address `va` into `buf`; returns how many bytes could
    /// be read (stopping at the first unmapped or non-RAM byte).
    pub fn debug_read(&mut self, va: u64, buf: &mut [u8]) -> usize {
        emu_core::debug::read_by_pages(va, buf, |at, part| {
            self.debug_translate(at)
                .is_ok_and(|pa| self.debug_read_phys(pa, part) == part.len())
        })
    }

    /// Writes `data` to RAM at virtual address `va`; false if some byte is not
    /// mapped RAM (nothing is written then). Decoded and translated code there
    /// is dropped.
    pub fn debug_write(&mut self, va: u64, data: &[u8]) -> bool {
        let plan = emu_core::debug::plan_write_by_pages(va, data.len(), |at, len| {
            let pa = self.debug_translate(at).ok()?;
            let memory = self.bus.ram_offset(GuestPhysAddr(pa), len as u64).is_some();
            memory.then_some(pa)
        });
        plan.is_some_and(|parts| {
            parts
                .into_iter()
                .all(|(pa, range)| self.debug_write_phys(pa, &data[range]))
        })
    }

    /// Reads RAM at physical address `pa`; returns the bytes read (0 if not RAM).
    pub fn debug_read_phys(&self, pa: u64, buf: &mut [u8]) -> usize {
        match self.bus.ram_offset(GuestPhysAddr(pa), buf.len() as u64) {
            Some(off) if self.ram.read_bytes(off, buf) => buf.len(),
            _ => 0,
        }
    }

    /// Writes RAM at physical address `pa`, dropping code decoded from it.
    pub fn debug_write_phys(&mut self, pa: u64, data: &[u8]) -> bool {
        let Some(off) = self.bus.ram_offset(GuestPhysAddr(pa), data.len() as u64) else {
            return false;
        };
        if !self.ram.write_bytes(off, data) {
            return false;
        }
        if !data.is_empty() {
            self.invalidate_code(off, data.len() as u64);
        }
        true
    }
}
