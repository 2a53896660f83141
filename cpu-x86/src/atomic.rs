//! LOCK: read-modify-write instructions that stay atomic against the other
//! vCPUs' threads. The update is a compare-and-swap loop on the aligned host
//! word that holds the operand, so two CPUs incrementing one counter never
//! lose a count; bit tests and CMPXCHG8B work on that word too. Locked
//! accesses that straddle an 8-byte boundary or a page, or that reach
//! something other than RAM, run as one step of this CPU only (real parts
//! lock the bus for them; here nothing else can see them half done except
//! another vCPU doing the same rare thing).
//!
//! LOCK CMPXCHG16B has no 16-byte host compare-and-swap in stable Rust: every
//! CPU's locked CMPXCHG16B takes one process-wide lock, so they are atomic
//! against each other (how kernels use them), though not against an 8-byte
//! locked instruction another vCPU aims at half of the same 16 bytes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use emu_core::sync::LockRecover;

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
        match i.op {
            Op::Bts | Op::Btr | Op::Btc => return Some(self.locked_bit_test(i)),
            Op::CmpxchgDouble if size == 8 => return self.locked_compare_exchange_8(i),
            Op::CmpxchgDouble => {
                static SIXTEEN_BYTE_LOCK: Mutex<()> = Mutex::new(());
                let _held = SIXTEEN_BYTE_LOCK.lock_recover();
                return Some(self.compare_exchange_double(i));
            }
            _ => {}
        }
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

impl Cpu {
    /// LOCK BTS, BTR, BTC: the byte holding the bit updated atomically.
    fn locked_bit_test(&mut self, i: &Insn) -> Result<(), Fault> {
        let src = i.operands[1];
        let offset = self.read_operand(i, src)?;
        let (ea, bit) = self.bit_address(i, offset);
        // The whole operand must be writable, as without LOCK.
        let linear = self.linear(i.seg, ea, i.size, Access::Write)?;
        let byte_linear = self.wrap_linear(linear.wrapping_add(bit / 8));
        let phys = self.translate(byte_linear, Access::Write)?;
        let bus = self.bus().clone();
        let Some((word, ram_offset)) = bus_word(&bus, phys, 1) else {
            return self.bit_test(i);
        };
        let shift = (phys % 8) * 8 + bit % 8;
        let old = word
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                let v = u64::from_le(current);
                let new = match i.op {
                    Op::Bts => v | (1 << shift),
                    Op::Btr => v & !(1 << shift),
                    _ => v ^ (1 << shift),
                };
                Some(new.to_le())
            })
            .unwrap_or_else(|v| v);
        let set = (u64::from_le(old) >> shift) & 1 != 0;
        self.set_status(if set { CF } else { 0 }, CF);
        self.note_locked_write(phys, ram_offset, byte_linear, 1);
        Ok(())
    }

    /// LOCK CMPXCHG8B on an aligned quadword: one compare-and-swap.
    fn locked_compare_exchange_8(&mut self, i: &Insn) -> Option<Result<(), Fault>> {
        let ea = self.effective_address(i);
        let linear = match self.linear(i.seg, ea, 8, Access::Write) {
            Ok(linear) => linear,
            Err(fault) => return Some(Err(fault)),
        };
        let phys = match self.translate(linear, Access::Write) {
            Ok(phys) => phys,
            Err(fault) => return Some(Err(fault)),
        };
        let bus = self.bus().clone();
        let (word, ram_offset) = bus_word(&bus, phys, 8)?;
        let expected = (self.gpr(gpr::DX, 4) << 32) | self.gpr(gpr::AX, 4);
        let new = (self.gpr(gpr::CX, 4) << 32) | self.gpr(gpr::BX, 4);
        let result = word.compare_exchange(
            expected.to_le(),
            new.to_le(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        match result {
            Ok(_) => self.set_status(ZF, ZF),
            Err(current) => {
                let current = u64::from_le(current);
                self.set_gpr(gpr::AX, 4, current & 0xffff_ffff);
                self.set_gpr(gpr::DX, 4, current >> 32);
                self.set_status(0, ZF);
            }
        }
        self.note_locked_write(phys, ram_offset, linear, 8);
        Some(Ok(()))
    }
}

/// The host word holding `len` bytes at physical `phys` for a locked update,
/// and the byte offset of `phys` in RAM; `None` when the bytes straddle an
/// 8-byte boundary or are not RAM. (Borrowed from `bus` rather than the CPU,
/// which stays free to update its registers.)
fn bus_word(bus: &emu_core::Bus, phys: u64, len: u8) -> Option<(&AtomicU64, u64)> {
    if phys % 8 + u64::from(len) > 8 {
        return None;
    }
    let offset = bus.writable_offset(GuestPhysAddr(phys & !7), 8)?;
    Some((bus.ram().atomic_u64(offset)?, offset + phys % 8))
}

/// A result and its flags, and which flags the operation sets.
fn with((value, status): (u64, u64), affected: u64) -> (u64, u64, u64) {
    (value, status, affected)
}
