//! Bit tests, bit scans, double shifts and the double-width compare-exchange.

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Op, Operand};
use crate::flags::{self, mask, sign_extend};
use crate::state::flags::{CF, OF, PF, STATUS, ZF};
use crate::state::gpr;

impl Cpu {
    /// BT, BTS, BTR, BTC. With a register bit offset and a memory operand the
    /// offset is signed and reaches beyond the addressed word.
    pub(crate) fn bit_test(&mut self, i: &Insn) -> Result<(), Fault> {
        let size = i.size;
        let bits = u64::from(size) * 8;
        let [dst, src, _] = i.operands;
        let offset = self.read_operand(i, src)?;
        let (value, bit, at) = match dst {
            Operand::Mem(_) => {
                let (ea, bit) = self.bit_address(i, offset);
                (self.read(i.seg, ea, size)?, bit, Some(ea))
            }
            _ => (self.read_operand(i, dst)?, offset & (bits - 1), None),
        };
        let set = (value >> bit) & 1 != 0;
        let new = match i.op {
            Op::Bts => value | (1 << bit),
            Op::Btr => value & !(1 << bit),
            Op::Btc => value ^ (1 << bit),
            _ => value,
        };
        if i.op != Op::Bt {
            match at {
                Some(ea) => self.write(i.seg, ea, size, new)?,
                None => self.write_operand(i, dst, new)?,
            }
        }
        self.set_status(if set { CF } else { 0 }, CF);
        Ok(())
    }

    /// Where a bit test on memory reaches: the offset of the operand-sized
    /// word holding the bit, and the bit's index in it. A register bit
    /// offset is signed and reaches beyond the addressed word; an immediate
    /// one wraps inside it.
    pub(crate) fn bit_address(&self, i: &Insn, offset: u64) -> (u64, u64) {
        let size = i.size;
        let bits = u64::from(size) * 8;
        if !matches!(i.operands[1], Operand::Gpr { .. }) {
            return (self.effective_address(i), offset & (bits - 1));
        }
        let signed = sign_extend(offset, size) as i64;
        let word = signed.div_euclid(bits as i64);
        let ea = self
            .effective_address(i)
            .wrapping_add((word * i64::from(size)) as u64)
            & mask(i.addr_size);
        (ea, signed.rem_euclid(bits as i64) as u64)
    }

    /// BSF, BSR, TZCNT, LZCNT, POPCNT.
    pub(crate) fn bit_scan(&mut self, i: &Insn) -> Result<(), Fault> {
        let size = i.size;
        let bits = u32::from(size) * 8;
        let [dst, src, _] = i.operands;
        let v = self.read_operand(i, src)? & mask(size);
        match i.op {
            Op::Bsf | Op::Bsr => {
                // A zero source keeps the destination, as current parts do.
                // Intel's silicon sets PF from the index found (and sets it
                // when there is none) and clears the other undefined flags.
                let result = if v == 0 {
                    self.read_operand(i, dst)?
                } else {
                    let index = if i.op == Op::Bsf {
                        v.trailing_zeros()
                    } else {
                        63 - v.leading_zeros()
                    };
                    self.write_operand(i, dst, u64::from(index))?;
                    u64::from(index)
                };
                let mut f = if v == 0 {
                    ZF | PF
                } else {
                    flags::szp(result, 1) & PF
                };
                if v == 0 {
                    f |= ZF;
                }
                self.set_status(f, STATUS);
            }
            Op::Popcnt => {
                self.write_operand(i, dst, u64::from(v.count_ones()))?;
                self.set_status(if v == 0 { ZF } else { 0 }, STATUS);
            }
            _ => {
                let count = if i.op == Op::Tzcnt {
                    v.trailing_zeros().min(bits)
                } else {
                    v.leading_zeros() - (64 - bits)
                };
                self.write_operand(i, dst, u64::from(count))?;
                let mut f = 0;
                if v == 0 {
                    f |= CF;
                }
                if count == 0 {
                    f |= ZF;
                }
                // The undefined flags come out clear on Intel's silicon.
                self.set_status(f, STATUS);
            }
        }
        Ok(())
    }

    /// SHLD and SHRD.
    pub(crate) fn double_shift(&mut self, i: &Insn) -> Result<(), Fault> {
        let size = i.size;
        let bits = u32::from(size) * 8;
        let [dst, src, count] = i.operands;
        let count_mask = if size == 8 { 0x3f } else { 0x1f };
        let n = (self.read_operand(i, count)? & count_mask) as u32;
        let a = self.read_operand(i, dst)? & mask(size);
        if n == 0 {
            // A 32-bit register is written (zero-extended) even by a zero count.
            if size == 4 {
                self.write_operand(i, dst, a)?;
            }
            return Ok(());
        }
        let b = self.read_operand(i, src)? & mask(size);
        let (r, cf) = if size == 2 {
            // A 16-bit count past 16 pulls the destination in again, as
            // current parts do: shift within destination:source:destination.
            let value = u128::from((a << 32) | (b << 16) | a);
            if i.op == Op::Shld {
                let shifted = value << n;
                (((shifted >> 32) as u64) & 0xffff, (shifted >> 48) & 1 != 0)
            } else {
                (((value >> n) as u64) & 0xffff, (value >> (n - 1)) & 1 != 0)
            }
        } else if i.op == Op::Shld {
            let r = ((a << n) | (b >> (bits - n))) & mask(size);
            (r, (a >> (bits - n)) & 1 != 0)
        } else {
            let r = ((a >> n) | (b << (bits - n))) & mask(size);
            (r, (a >> (n - 1)) & 1 != 0)
        };
        self.write_operand(i, dst, r)?;
        let mut f = flags::szp(r, size);
        if cf {
            f |= CF;
        }
        // OF: the sign changed in the first one-bit step (defined for a
        // count of one; Intel's parts give this for every count).
        let first = if i.op == Op::Shld {
            (a << 1) ^ a
        } else {
            a ^ (b << (u32::from(size) * 8 - 1))
        };
        if first & flags::sign(size) != 0 {
            f |= OF;
        }
        self.set_status(f, STATUS);
        Ok(())
    }

    /// CMPXCHG8B and CMPXCHG16B.
    pub(crate) fn compare_exchange_double(&mut self, i: &Insn) -> Result<(), Fault> {
        let half = i.size / 2;
        let ea = self.effective_address(i);
        if half == 8 && !ea.is_multiple_of(16) {
            return Err(Fault::gp(0));
        }
        let high_at = ea.wrapping_add(u64::from(half)) & mask(i.addr_size);
        let low = self.read(i.seg, ea, half)?;
        let high = self.read(i.seg, high_at, half)?;
        let equal = low == self.gpr(gpr::AX, half) && high == self.gpr(gpr::DX, half);
        let (new_low, new_high) = if equal {
            (self.gpr(gpr::BX, half), self.gpr(gpr::CX, half))
        } else {
            (low, high)
        };
        self.write(i.seg, ea, half, new_low)?;
        self.write(i.seg, high_at, half, new_high)?;
        if !equal {
            self.set_gpr(gpr::AX, half, low);
            self.set_gpr(gpr::DX, half, high);
        }
        self.set_status(if equal { ZF } else { 0 }, ZF);
        Ok(())
    }
}
