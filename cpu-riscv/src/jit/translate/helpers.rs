//! Calls from translated code back into Rust: instructions the translator
//! leaves to the interpreter (system instructions, atomics, FP cases off the
//! fast path), the memory slow path, and the jump-cache lookup of chained
//! exits.

use super::*;
use crate::trap::Trap;

impl Emitter<'_, '_> {
    /// Writes the registers back and runs the instruction at `index` in the
    /// interpreter; returns its status (see `jit_exec`).
    pub(super) fn call_interpreter(&mut self, pc: u64, index: u64) -> Value {
        self.spill();
        // SAFETY: (pointer arithmetic only) `index` is within the block's
        // instructions, which `insns` points at.
        let insn_at = unsafe { self.insns.add(index as usize) } as i64;
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_exec as *const () as i64);
        let insn_v = self.b.ins().iconst(types::I64, insn_at);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        let call = self
            .b
            .ins()
            .call_indirect(self.exec_sig, callee, &[self.hart, insn_v, pc_v]);
        self.b.inst_results(call)[0]
    }

    /// Runs the instruction at `index` in the interpreter. With `ends` the block
    /// returns to dispatch after it; otherwise it goes on unless the instruction
    /// jumped, trapped or asked the machine to look up.
    pub(super) fn helper(&mut self, insn: &Insn, pc: u64, index: u64, ends: bool) {
        self.sync_instret(index);
        let status = self.call_interpreter(pc, index);
        // Memory now holds every register; the instruction changed at most its
        // integer destination.
        self.dirty = [false; 32];
        if insn.rd != 0 && writes_integer_rd(insn.op) {
            let v = self.b.ins().load(
                types::I64,
                flags(),
                self.hart,
                OFF_X + 8 * i32::from(insn.rd),
            );
            self.b.def_var(self.vars[usize::from(insn.rd)], v);
            self.shifts[usize::from(insn.rd)] = None;
        }
        let fault = self.b.create_block();
        let go_on = self.b.create_block();
        let is_fault = self.b.ins().icmp_imm_s(IntCC::Equal, status, 1);
        self.b.ins().brif(is_fault, fault, &[], go_on, &[]);

        self.b.switch_to_block(fault);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        self.leave(Some(pc_v), index, 1);

        self.b.switch_to_block(go_on);
        if ends {
            self.leave(None, index + 1, 0);
            return;
        }
        let leave = self.b.create_block();
        let next = self.b.create_block();
        self.b.ins().brif(status, leave, &[], next, &[]);

        self.b.switch_to_block(leave);
        self.leave(None, index + 1, 0);

        self.b.switch_to_block(next);
    }
}

/// The translation to chain to at `state.pc`, if the jump cache holds a current
/// one (null otherwise: the dispatch loop will look, compile or interpret).
pub(super) extern "C" fn jit_next_block(hart: *mut Hart) -> *const u8 {
    // SAFETY: as for `jit_load`.
    let hart = unsafe { &mut *hart };
    hart.cached_block(hart.state.pc)
        .map_or(std::ptr::null(), |block| block.0)
}

/// Runs one instruction of a block in the interpreter (FP, atomics, system).
/// Returns 0 to go on with the block, 1 when a fault is parked in the hart, 2 when
/// the block must return to dispatch (the pc changed, or the machine wants to look
/// at interrupts or stop).
pub(super) extern "C" fn jit_exec(hart: *mut Hart, insn: *const Insn, pc: u64) -> u64 {
    // SAFETY: translated code passes the hart pointer it was called with (derived
    // from `&mut Hart` by the dispatch loop, exclusive during the call) and a
    // pointer into the engine's instruction arena, which outlives the code.
    let (hart, insn) = unsafe { (&mut *hart, *insn) };
    hart.state.pc = pc;
    match hart.execute(insn) {
        Ok(()) => {
            let next = pc.wrapping_add(u64::from(insn.len));
            u64::from(hart.state.pc != next || hart.exit.is_some() || hart.irq_check) * 2
        }
        Err(trap) => {
            hart.jit_trap = Some(trap);
            1
        }
    }
}

/// Where a memory slow path's access stands in its block, so that when the
/// block must leave at it the helper itself sets the pc and retired count
/// (translated code then only returns, which keeps the exits of its many
/// accesses small). Packed into one argument: the instructions retired since
/// `instret` was last written in bits 15..8, the instruction's length in bits
/// 7..4 and the access size in bits 3..0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlowAccess {
    pub(super) unsynced: u8,
    pub(super) len: u8,
    pub(super) size: u8,
}

impl SlowAccess {
    pub(super) fn pack(self) -> u64 {
        debug_assert!(self.len <= 15 && self.size <= 15);
        u64::from(self.unsynced) << 8 | u64::from(self.len) << 4 | u64::from(self.size)
    }

    fn unpack(packed: u64) -> SlowAccess {
        SlowAccess {
            unsynced: (packed >> 8) as u8,
            len: ((packed >> 4) & 15) as u8,
            size: (packed & 15) as u8,
        }
    }
}

impl Hart {
    /// Leaves a translated block at the access at `pc` (which faulted with
    /// `trap`, or, with `None`, asked the machine to look up after it):
    /// sets the pc and retired count the translation would have.
    fn leave_block_at(&mut self, pc: u64, at: SlowAccess, trap: Option<Trap>) {
        let after = u64::from(trap.is_none());
        self.state.pc = pc.wrapping_add(after * u64::from(at.len));
        self.state.instret = self
            .state
            .instret
            .wrapping_add(u64::from(at.unsynced) + after);
        self.jit_fault = 1;
        self.jit_trap = trap;
    }
}

/// Slow-path load called from translated code: the interpreter's memory path.
/// On a fault the block must leave: the trap is parked in the hart, the pc
/// and retired count set, and `jit_fault` flagged; the registers were written
/// back before the call.
pub(super) extern "C" fn jit_load(hart: *mut Hart, va: u64, pc: u64, packed: u64) -> u64 {
    // SAFETY: translated code passes the pointer it was called with, which the
    // dispatch loop derived from `&mut Hart` and keeps exclusive during the call.
    let hart = unsafe { &mut *hart };
    let at = SlowAccess::unpack(packed);
    match hart.load(va, at.size) {
        Ok(value) => value,
        Err(trap) => {
            hart.leave_block_at(pc, at, Some(trap));
            0
        }
    }
}

/// Slow-path store called from translated code (misses, MMIO, code pages).
/// Returns 0 to go on, else the status the block returns: 1 after a fault, 0
/// with the pc after the store when the machine must look up (a device
/// interrupt, power-off), as `jit_load` leaves it.
pub(super) extern "C" fn jit_store(
    hart: *mut Hart,
    va: u64,
    value: u64,
    pc: u64,
    packed: u64,
) -> u64 {
    // SAFETY: as for `jit_load`.
    let hart = unsafe { &mut *hart };
    let at = SlowAccess::unpack(packed);
    match hart.store(va, at.size, value) {
        Ok(()) => {
            if hart.exit.is_some() || hart.irq_check {
                hart.leave_block_at(pc, at, None);
                return 2;
            }
            0
        }
        Err(trap) => {
            hart.leave_block_at(pc, at, Some(trap));
            1
        }
    }
}
