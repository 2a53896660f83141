//! BMI1 and BMI2: the VEX-encoded bit-manipulation instructions on general
//! registers (TZCNT, BMI1's legacy-encoded member, is with the bit scans).
//! Operands arrive as iced-x86 orders them: the destination first, then the
//! sources in the order the SDM names them (VEX.vvvv where it says so).

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Op};
use crate::flags::mask;
use crate::state::flags::{CF, SF, STATUS, ZF};
use crate::state::gpr;

/// ZF and SF of `result` at `size` bytes.
fn zero_and_sign(result: u64, size: u8) -> u64 {
    let mut f = 0;
    if result & mask(size) == 0 {
        f |= ZF;
    }
    if result >> (u32::from(size) * 8 - 1) & 1 != 0 {
        f |= SF;
    }
    f
}

/// PDEP: the low bits of `source` deposited at the set bits of `selector`.
fn deposit(source: u64, selector: u64) -> u64 {
    let (mut out, mut k) = (0, 0);
    for bit in 0..64 {
        if selector >> bit & 1 != 0 {
            out |= (source >> k & 1) << bit;
            k += 1;
        }
    }
    out
}

/// PEXT: the bits of `source` at the set bits of `selector`, packed low.
fn extract(source: u64, selector: u64) -> u64 {
    let (mut out, mut k) = (0, 0);
    for bit in 0..64 {
        if selector >> bit & 1 != 0 {
            out |= (source >> bit & 1) << k;
            k += 1;
        }
    }
    out
}

impl Cpu {
    /// Executes a BMI1 or BMI2 instruction.
    pub(crate) fn bmi(&mut self, i: &Insn) -> Result<(), Fault> {
        let size = i.size;
        let bits = u64::from(size) * 8;
        let [dst, a, b] = i.operands;
        let x = self.read_operand(i, a)? & mask(size);
        let y = match b {
            crate::decode::Operand::None => 0,
            o => self.read_operand(i, o)? & mask(size),
        };
        // (result, flags written, their values); the others BMI leaves
        // undefined are cleared, as the host's silicon does.
        let (result, flags) = match i.op {
            Op::Andn => {
                let r = !x & y & mask(size);
                (r, zero_and_sign(r, size))
            }
            Op::Bextr => {
                let start = y & 0xff;
                let len = (y >> 8) & 0xff;
                let shifted = if start >= bits { 0 } else { x >> start };
                let r = if len >= bits {
                    shifted
                } else {
                    shifted & ((1u64 << len) - 1)
                };
                (r, if r == 0 { ZF } else { 0 })
            }
            Op::Blsi => {
                let r = x.wrapping_neg() & x & mask(size);
                (r, zero_and_sign(r, size) | if x != 0 { CF } else { 0 })
            }
            Op::Blsmsk => {
                let r = (x.wrapping_sub(1) ^ x) & mask(size);
                (
                    r,
                    (zero_and_sign(r, size) & SF) | if x == 0 { CF } else { 0 },
                )
            }
            Op::Blsr => {
                let r = x.wrapping_sub(1) & x & mask(size);
                (r, zero_and_sign(r, size) | if x == 0 { CF } else { 0 })
            }
            Op::Bzhi => {
                let n = y & 0xff;
                let (r, carry) = if n >= bits {
                    (x, CF)
                } else {
                    (x & ((1u64 << n) - 1), 0)
                };
                (r, zero_and_sign(r, size) | carry)
            }
            Op::Pdep => (deposit(x, y) & mask(size), u64::MAX),
            Op::Pext => (extract(x, y) & mask(size), u64::MAX),
            Op::Rorx => {
                let n = (i.imm % bits) as u32;
                let r = if n == 0 {
                    x
                } else {
                    ((x >> n) | (x << (bits as u32 - n))) & mask(size)
                };
                (r, u64::MAX)
            }
            Op::Shlx | Op::Shrx | Op::Sarx => {
                let n = y & (bits - 1);
                let r = match i.op {
                    Op::Shlx => x << n,
                    Op::Shrx => x >> n,
                    _ => (crate::flags::sign_extend(x, size) as i64 >> n) as u64,
                } & mask(size);
                (r, u64::MAX)
            }
            _ => {
                // MULX: EDX/RDX times the source, high half to the first
                // destination, low half to the second (the high half wins if
                // they are one register); no flags.
                let product = u128::from(self.gpr(gpr::DX, size)) * u128::from(y);
                self.write_operand(i, a, product as u64 & mask(size))?;
                self.write_operand(i, dst, (product >> bits) as u64 & mask(size))?;
                return Ok(());
            }
        };
        self.write_operand(i, dst, result)?;
        // u64::MAX marks the instructions that leave the flags alone.
        if flags != u64::MAX {
            self.set_status(flags, STATUS);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposit_and_extract_are_inverse_on_the_selected_bits() {
        assert_eq!(deposit(0b101, 0b1101_0000), 0b1001_0000);
        assert_eq!(extract(0b1001_0000, 0b1101_0000), 0b101);
        assert_eq!(deposit(u64::MAX, 0), 0);
        assert_eq!(
            extract(0x8000_0000_0000_0001, u64::MAX),
            0x8000_0000_0000_0001
        );
    }
}
