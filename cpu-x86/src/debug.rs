//! Debugger support: breakpoints, watchpoints and exact single steps for the
//! gdbstub, and memory as the debugger sees it.
//!
//! A CPU with no debugger state pays one `Option` check per [`Cpu::run`]
//! call; a data access tests one flag, the one the guest's own data
//! breakpoints needed already (it now also covers the debugger's
//! watchpoints), and only the processor's own accesses (descriptor tables,
//! TSS, interrupt frames) test a second. With breakpoints or watchpoints set
//! the CPU runs [`Cpu::run_debugged`], which checks the breakpoints before
//! each instruction.
//!
//! Addresses are linear, as QEMU's gdbstub has them on x86: a breakpoint is
//! compared with CS.base + RIP (RIP alone in 64-bit code), a watchpoint with
//! the linear addresses accesses touch, and memory reads go through paging
//! only. gdb's `$pc` is RIP, so outside flat segments (real mode above all) a
//! breakpoint must be given as a linear address, as with QEMU.
//!
//! Breakpoints stop before the instruction. Watchpoints stop after the
//! instruction that made the access, because that is what gdb expects of x86
//! (its data breakpoints are traps, so gdb's i386 target has no
//! "non-steppable" watchpoints and compares the old value with the new one
//! when told of a hit). Every access through the linear-address helpers
//! counts: operands, string instructions, pushes and pops, far pointers,
//! FXSAVE, and the processor's own accesses to descriptor tables, the TSS and
//! the stack of an interrupt, as in QEMU, whose watchpoints see every access
//! of its memory subsystem. Instruction fetches and page-table walks do not.
//!
//! The guest's own debug registers (DR0–DR7) and RFLAGS.TF are separate and
//! keep working under a debugger: their #DB exceptions go to the guest.

use std::collections::BTreeSet;

use emu_core::GuestPhysAddr;

use crate::cpu::{Cpu, RunExit};

pub use emu_core::debug::{DebugStop, WatchKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Watchpoint {
    addr: u64,
    len: u64,
    kind: WatchKind,
}

/// A CPU's breakpoints and watchpoints.
#[derive(Debug, Default)]
pub struct DebugState {
    /// Linear addresses.
    breakpoints: BTreeSet<u64>,
    watchpoints: Vec<Watchpoint>,
    /// Why the CPU last stopped, until the machine asks.
    stop: Option<DebugStop>,
    /// The first watchpoint the current instruction's accesses hit.
    hit: Option<DebugStop>,
    /// The breakpoint the CPU stands on (it stopped there and has not run
    /// since).
    at_breakpoint: Option<u64>,
    /// Resuming from the breakpoint at this linear address: run it once.
    resume_from: Option<u64>,
}

impl Cpu {
    fn debug_state(&mut self) -> &mut DebugState {
        self.debug.get_or_insert_with(Box::default)
    }

    /// Re-reads whether any watchpoint is set (the access helpers test it).
    fn update_watching(&mut self) {
        self.gdb_watching = self
            .debug
            .as_ref()
            .is_some_and(|d| !d.watchpoints.is_empty());
        self.update_data_watch();
    }

    /// Stops before executing the instruction at linear address `addr`.
    pub fn insert_breakpoint(&mut self, addr: u64) {
        self.debug_state().breakpoints.insert(addr);
    }

    /// Removes a breakpoint; returns whether there was one.
    pub fn remove_breakpoint(&mut self, addr: u64) -> bool {
        self.debug
            .as_mut()
            .is_some_and(|d| d.breakpoints.remove(&addr))
    }

    /// Stops after an instruction whose access of `kind` touches the linear
    /// addresses `[addr, addr + len)`.
    pub fn insert_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) {
        self.debug_state().watchpoints.push(Watchpoint {
            addr,
            len: len.max(1),
            kind,
        });
        self.update_watching();
    }

    /// Removes a watchpoint; returns whether there was one.
    pub fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        let wanted = Watchpoint {
            addr,
            len: len.max(1),
            kind,
        };
        let removed = self.debug.as_mut().is_some_and(|d| {
            let at = d.watchpoints.iter().position(|w| *w == wanted);
            at.map(|i| d.watchpoints.remove(i)).is_some()
        });
        self.update_watching();
        removed
    }

    /// Forgets every breakpoint and watchpoint (the debugger went away).
    pub fn clear_debug(&mut self) {
        self.debug = None;
        self.update_watching();
    }

    /// Why the CPU last stopped for the debugger, once.
    pub fn take_debug_stop(&mut self) -> Option<DebugStop> {
        self.debug.as_mut()?.stop.take()
    }

    /// The debugger resumes the CPU where it stopped: if that was a
    /// breakpoint, the instruction there runs without stopping again.
    /// (After a watchpoint the CPU stands on the next instruction, which has
    /// not been checked yet: a breakpoint there must still stop it.)
    pub fn resume_from_breakpoint(&mut self) {
        let pc = self.pc_linear();
        if let Some(debug) = self.debug.as_mut() {
            debug.resume_from = debug.at_breakpoint.filter(|&at| at == pc);
        }
    }

    /// Whether the instruction at CS:IP has a breakpoint to stop at; records
    /// the stop. Consumes the resume mark.
    fn breakpoint_here(&mut self) -> bool {
        let pc = self.pc_linear();
        let Some(debug) = self.debug.as_mut() else {
            return false;
        };
        if debug.resume_from.take() == Some(pc) || !debug.breakpoints.contains(&pc) {
            return false;
        }
        debug.stop = Some(DebugStop::Breakpoint(pc));
        debug.at_breakpoint = Some(pc);
        true
    }

    /// Notes an access to `[linear, linear + len)` for the debugger's
    /// watchpoints; the first hit of an instruction is the one reported.
    #[cold]
    pub(crate) fn debug_watch(&mut self, linear: u64, len: u8, write: bool) {
        let Some(debug) = self.debug.as_mut() else {
            return;
        };
        if debug.hit.is_some() {
            return;
        }
        let end = linear.wrapping_add(u64::from(len));
        debug.hit = debug.watchpoints.iter().find_map(|w| {
            let kind = match w.kind {
                WatchKind::Read if !write => WatchKind::Read,
                WatchKind::Write if write => WatchKind::Write,
                WatchKind::Access if write => WatchKind::Write,
                WatchKind::Access => WatchKind::Read,
                _ => return None,
            };
            let overlaps = linear < w.addr.wrapping_add(w.len) && w.addr < end;
            overlaps.then_some(DebugStop::Watchpoint {
                kind,
                addr: linear.max(w.addr),
            })
        });
    }

    /// After an instruction: ends the run for the machine's reasons first,
    /// then for a watchpoint the instruction hit.
    fn debugged_step_exit(&mut self) -> Option<RunExit> {
        let hit = self.debug.as_mut().and_then(|d| {
            d.at_breakpoint = None;
            d.hit.take()
        });
        if let Some(exit) = self.step_exit() {
            return Some(exit);
        }
        let hit = hit?;
        self.debug.as_mut()?.stop = Some(hit);
        Some(RunExit::Debug)
    }

    /// The run loop while a debugger has breakpoints or watchpoints set:
    /// [`Cpu::run`]'s, with a breakpoint check before each instruction and a
    /// watchpoint check after it. Kept out of [`Cpu::run`]'s body, which
    /// stays as it was without a debugger.
    #[inline(never)]
    pub(crate) fn run_debugged(&mut self, budget: u64) -> RunExit {
        for _ in 0..budget {
            if self.interrupts.is_some() {
                self.take_external_interrupt();
                if self.halted {
                    return RunExit::Halted;
                }
            }
            if self.breakpoint_here() {
                return RunExit::Debug;
            }
            self.step();
            if let Some(exit) = self.debugged_step_exit() {
                return exit;
            }
        }
        self.budget_exit()
    }

    /// Executes exactly one instruction for a debugger's single step (or
    /// takes the exception it raises), with no breakpoint check before it
    /// and watchpoints checked after it ([`RunExit::Debug`] then).
    ///
    /// Pending interrupts are not taken first, as QEMU's gdbstub steps by
    /// default (`SSTEP_NOIRQ`): a step goes to the next instruction of the
    /// program, not into an interrupt handler. A CPU waiting in HLT has no
    /// instruction to step, so there an interrupt is taken if one may be.
    pub fn debug_step(&mut self) -> RunExit {
        if self.is_shut_down() {
            return RunExit::Shutdown;
        }
        self.drop_written_code();
        if let Some(debug) = self.debug.as_mut() {
            debug.resume_from = None;
        }
        if self.is_halted() {
            return if self.take_external_interrupt() {
                RunExit::Budget
            } else {
                RunExit::Halted
            };
        }
        self.step();
        self.debugged_step_exit().unwrap_or(RunExit::Budget)
    }
}

/// Memory as a debugger sees it: RAM and ROM only (a debugger reading a
/// device register must not pop a UART byte), at linear addresses through
/// the current paging, without the side effects of the CPU's own walks
/// (no accessed or dirty bits, no CR2, no TLB fill) and without the rights
/// checks, as QEMU's debug accesses.
impl Cpu {
    /// Reads RAM or ROM at linear address `linear`; returns how many bytes
    /// could be read (stopping at the first unmapped or non-memory byte).
    pub fn debug_read(&self, linear: u64, buf: &mut [u8]) -> usize {
        emu_core::debug::read_by_pages(linear, buf, |at, part| {
            self.debug_walk(at)
                .phys
                .is_some_and(|phys| self.debug_read_phys(phys, part) == part.len())
        })
    }

    /// Writes `data` to RAM (or ROM, as a debugger patching firmware may) at
    /// linear address `linear`; false if some byte is not mapped memory
    /// (nothing is written then). Decoded instructions there are dropped.
    pub fn debug_write(&mut self, linear: u64, data: &[u8]) -> bool {
        let plan = emu_core::debug::plan_write_by_pages(linear, data.len(), |at, len| {
            let phys = self.debug_walk(at).phys?;
            let memory = self
                .bus()
                .ram_offset(GuestPhysAddr(phys), len as u64)
                .is_some();
            memory.then_some(phys)
        });
        plan.is_some_and(|parts| {
            parts
                .into_iter()
                .all(|(phys, range)| self.debug_write_phys(phys, &data[range]))
        })
    }

    /// Reads RAM or ROM at physical address `phys`; returns the bytes read
    /// (0 if not all of it is memory).
    pub fn debug_read_phys(&self, phys: u64, buf: &mut [u8]) -> usize {
        let bus = self.bus();
        match bus.ram_offset(GuestPhysAddr(phys), buf.len() as u64) {
            Some(offset) if bus.ram().read_bytes(offset, buf) => buf.len(),
            _ => 0,
        }
    }

    /// Writes RAM or ROM at physical address `phys`, dropping code decoded
    /// from it; false (nothing written) if not all of it is memory.
    pub fn debug_write_phys(&mut self, phys: u64, data: &[u8]) -> bool {
        let bus = self.bus().clone();
        let Some(offset) = bus.ram_offset(GuestPhysAddr(phys), data.len() as u64) else {
            return false;
        };
        if !bus.ram().write_bytes(offset, data) {
            return false;
        }
        self.note_debug_write(phys, offset, data.len() as u64);
        true
    }
}
