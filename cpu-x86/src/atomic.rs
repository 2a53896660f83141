//! LOCK: read-modify-write instructions that stay atomic against the other
//! vCPUs' threads. The update is a compare-and-swap loop on the aligned host
//! word that holds the operand, so two CPUs incrementing one counter never
//! lose a count. Locked accesses that straddle an 8-byte boundary or a page,
//! or that reach something other than RAM, run as one step of this CPU only
//! (real parts lock the bus for them; here nothing else can see them half
//! done except another vCPU doing the same rare thing).

use std::sync::atomic::Ordering;

use emu_core::GuestPhysAddr;

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Op, Operand};
use crate::exec::binary;
use crate::flags::{self, mask};
use crate::mmu::Access;
use crate::state::flags::{CF, STATUS, ZF};
use crate::state::gpr;

impl Cpu {
    /// Runs `i` as an atomic read-modify-write if it is one (LOCK prefix, or
    /// XCHG with memory) on an operand a host atomic can cover; `None` when
    /// the ordinary path should run it.
    pub(crate) fn locked(&mut self, i: &Insn) -> Option<Result<(), Fault>> {
        let [dst, src, _] = i.operands;
        let Operand::Mem(size) = dst else {
            return None;
        };
        // `execute` calls this for LOCK prefixes and XCHG only.
        let supported = matches!(
            i.op,
            Op::Add
                | Op::Or
                | Op::Adc
                | Op::Sbb
                | Op::And
                | Op::Sub
                | Op::Xor
                | Op::Inc
                | Op::Dec
                | Op::Neg
                | Op::Not
                | Op::Xadd
                | Op::Cmpxchg
                | Op::Xchg
        );
        if !supported {
            return None;
        }
        let ea = self.effective_address(i);
        let linear = match self.linear(i.seg, ea, size, Access::Write) {
            Ok(linear) => linear,
            Err(fault) => return Some(Err(fault)),
        };
        let phys = match self.translate(linear, Access::Write) {
            Ok(phys) => phys,
            Err(fault) => return Some(Err(fault)),
        };
        let within = phys % 8 + u64::from(size) <= 8;
        if !within {
            return None;
        }
        let bus = self.bus().clone();
        let offset = bus.writable_offset(GuestPhysAddr(phys & !7), 8)?;
        let word = bus.ram().atomic_u64(offset)?;
        let shift = (phys % 8) * 8;
        let m = mask(size);
        let operand = match src {
            Operand::None => 0,
            o => match self.read_operand(i, o) {
                Ok(v) => v,
                Err(fault) => return Some(Err(fault)),
            },
        };
        let carry = self.state.rflags & CF != 0;
        let accumulator = self.gpr(gpr::AX, size);
        let (old, status, affected) = loop {
            let current = u64::from_le(word.load(Ordering::SeqCst));
            let old = (current >> shift) & m;
            let (new, status, affected) = match i.op {
                Op::Add | Op::Adc | Op::Sub | Op::Sbb | Op::And | Op::Or | Op::Xor => {
                    with(binary(i.op, old, operand, carry, size), STATUS)
                }
                Op::Inc => with(flags::add(old, 1, false, size), STATUS & !CF),
                Op::Dec => with(flags::sub(old, 1, false, size), STATUS & !CF),
                Op::Neg => with(flags::sub(0, old, false, size), STATUS),
                Op::Not => (!old & m, 0, 0),
                Op::Xadd => with(flags::add(old, operand, false, size), STATUS),
                Op::Cmpxchg => {
                    let (_, f) = flags::sub(accumulator, old, false, size);
                    let new = if f & ZF != 0 { operand } else { old };
                    (new, f, STATUS)
                }
                // XCHG
                _ => (operand, 0, 0),
            };
            let next = (current & !(m << shift)) | ((new & m) << shift);
            let swapped = word.compare_exchange(
                current.to_le(),
                next.to_le(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            if swapped.is_ok() {
                break (old, status, affected);
            }
        };
        // What the instruction leaves in registers and flags.
        match i.op {
            Op::Xadd | Op::Xchg => {
                if let Err(fault) = self.write_operand(i, src, old) {
                    return Some(Err(fault));
                }
            }
            Op::Cmpxchg if status & ZF == 0 => self.set_gpr(gpr::AX, size, old),
            _ => {}
        }
        self.set_status(status, affected);
        // A locked cycle writes even when the value stays (CMPXCHG that
        // fails): code and watchpoints hear of it either way.
        self.note_locked_write(phys, offset + phys % 8, linear, size);
        Some(Ok(()))
    }
}

/// A result and its flags, and which flags the operation sets.
fn with((value, status): (u64, u64), affected: u64) -> (u64, u64, u64) {
    (value, status, affected)
}
