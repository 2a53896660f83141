//! MMX: the packed-integer instructions on the eight 64-bit MM registers,
//! which are the x87 registers' significands.
//!
//! The operations are SSE2's and SSSE3's ([`packed_integer`],
//! [`ssse3_integer`]) on half-width registers: each MM value runs through
//! them zero-extended to 128 bits and the low half is kept. The few whose
//! lanes move across the register (unpacking the high halves, packing,
//! horizontal sums, byte shuffles and alignment) get their operands arranged
//! first so that the low half is MMX's answer.
//!
//! Every MMX instruction but EMMS puts the x87 in MMX state: TOP is 0 and
//! every register is in use (EMMS empties them all); a write sets the register's exponent bits to
//! all ones. #UD under CR0.EM, #NM under CR0.TS, #MF for a pending x87
//! error, as for x87 instructions.

use crate::cpu::{Cpu, Fault, vector};
use crate::decode::{Insn, Operand};
use crate::flags::mask;
use crate::simd::{SimdOp, packed_integer, shift_lanes};
use crate::sse_float::{FloatEnv, FloatOp, Width};
use crate::sse4::{Sse4Op, ssse3_integer};
use crate::state::cr0;

/// MMX's result of an SSE2 or SSSE3 integer operation on `a` (the
/// destination) and `b` (the source), or `None` if it has no MMX form.
fn mmx_integer(op: SimdOp, w: u8, a: u64, b: u64, imm: u8) -> Option<u64> {
    let (a128, b128) = (u128::from(a), u128::from(b));
    // Both operands side by side: the operations that read the destination's
    // lanes and then the source's put MMX's result in the low half.
    let side_by_side = a128 | (b128 << 64);
    let r = match op {
        SimdOp::PUnpackHigh => packed_integer(SimdOp::PUnpackLow, w, a128 >> 32, b128 >> 32)?,
        SimdOp::PackSsWb | SimdOp::PackSsDw | SimdOp::PackUs => {
            packed_integer(op, w, side_by_side, 0)?
        }
        SimdOp::Ext(e) => match e {
            Sse4Op::PHAdd | Sse4Op::PHAddSaturate | Sse4Op::PHSub | Sse4Op::PHSubSaturate => {
                ssse3_integer(e, w, side_by_side, 0, imm)?
            }
            // Indices wrap at eight bytes.
            Sse4Op::PShufB => ssse3_integer(e, w, a128, b128 & 0x8787_8787_8787_8787, imm)?,
            Sse4Op::PAlignR => {
                let both = (a128 << 64) | b128;
                let shift = u32::from(imm) * 8;
                if shift >= 128 { 0 } else { both >> shift }
            }
            _ => ssse3_integer(e, w, a128, b128, imm)?,
        },
        _ => packed_integer(op, w, a128, b128)?,
    };
    Some(r as u64)
}

impl Cpu {
    /// MMn.
    fn mm(&self, n: u8) -> u64 {
        self.state.x87.mmx(usize::from(n))
    }

    /// The 64-bit value of an MMX source: a register or memory (of the
    /// operand's size, zero-extended; no alignment needed).
    fn mmx_source(&mut self, i: &Insn, o: Operand) -> Result<u64, Fault> {
        match o {
            Operand::Mmx(n) => Ok(self.mm(n)),
            Operand::Mem(_) | Operand::Gpr { .. } => self.read_operand(i, o),
            _ => Err(Fault::UD),
        }
    }

    /// #UD under CR0.EM, #NM under CR0.TS, #MF for a pending x87 error.
    fn mmx_available(&self) -> Result<(), Fault> {
        if self.state.cr0 & cr0::EM != 0 {
            return Err(Fault::UD);
        }
        if self.state.cr0 & cr0::TS != 0 {
            return Err(Fault {
                vector: vector::NM,
                error: None,
            });
        }
        self.pending_x87_error()
    }

    /// Executes an instruction with an MMX register operand, or EMMS.
    pub(crate) fn mmx(&mut self, i: &Insn, op: SimdOp) -> Result<(), Fault> {
        self.mmx_available()?;
        let [dst, src, _] = i.operands;
        let w = i.cond;
        let imm = i.imm as u8;
        use SimdOp as S;
        match op {
            S::Emms => {
                // Every register empty; TOP becomes 0 too (the SDM names only
                // the tags, the host's silicon zeroes TOP as well).
                self.state.x87.used = 0;
                self.state.x87.top = 0;
                return Ok(());
            }
            S::MmxConvert(f) => return self.mmx_convert(i, f),
            S::MoveScalarInt | S::MoveLow64 | S::Move { .. } => match (dst, src) {
                (Operand::Mmx(d), Operand::Xmm(s)) => {
                    let v = self.state.xmm[usize::from(s)] as u64;
                    self.set_mm(d, v);
                }
                (Operand::Xmm(d), Operand::Mmx(s)) => {
                    self.sse_available()?;
                    self.state.xmm[usize::from(d)] = u128::from(self.mm(s));
                }
                (Operand::Mmx(d), _) => {
                    let v = self.mmx_source(i, src)?;
                    self.set_mm(d, v);
                }
                (_, Operand::Mmx(s)) => {
                    let v = self.mm(s);
                    self.write_operand(i, dst, v)?;
                }
                _ => return Err(Fault::UD),
            },
            S::PShiftLeft | S::PShiftRight | S::PShiftRightArithmetic => {
                let Operand::Mmx(d) = dst else {
                    return Err(Fault::UD);
                };
                let count = match src {
                    Operand::Imm(_) => i.imm & 0xff,
                    o => self.mmx_source(i, o)?,
                };
                let r = shift_lanes(op, w, u128::from(self.mm(d)), count) as u64;
                self.set_mm(d, r);
            }
            S::PShufW => {
                let Operand::Mmx(d) = dst else {
                    return Err(Fault::UD);
                };
                let v = self.mmx_source(i, src)?;
                let r = (0..4).fold(0u64, |acc, k| {
                    let from = (imm >> (2 * k)) & 3;
                    acc | (((v >> (16 * from)) & 0xffff) << (16 * k))
                });
                self.set_mm(d, r);
            }
            S::PExtr => {
                let Operand::Mmx(s) = src else {
                    return Err(Fault::UD);
                };
                let v = (self.mm(s) >> (16 * u32::from(imm & 3))) & 0xffff;
                self.write_operand(i, dst, v)?;
            }
            S::PInsr => {
                let Operand::Mmx(d) = dst else {
                    return Err(Fault::UD);
                };
                let v = self.read_operand(i, src)? & 0xffff;
                let shift = 16 * u32::from(imm & 3);
                let r = (self.mm(d) & !(0xffff << shift)) | (v << shift);
                self.set_mm(d, r);
            }
            S::PMovMskB => {
                let Operand::Mmx(s) = src else {
                    return Err(Fault::UD);
                };
                let v = self.mm(s);
                let bits = (0..8).fold(0u64, |m, k| m | (((v >> (8 * k + 7)) & 1) << k));
                self.write_operand(i, dst, bits)?;
            }
            S::MaskMove => {
                let (Operand::Mmx(data), Operand::Mmx(selector)) = (dst, src) else {
                    return Err(Fault::UD);
                };
                let (v, m) = (self.mm(data), self.mm(selector));
                let base = self.state.gpr[crate::state::gpr::DI] & mask(i.addr_size);
                for k in 0..8u64 {
                    if (m >> (8 * k + 7)) & 1 != 0 {
                        let at = base.wrapping_add(k) & mask(i.addr_size);
                        self.write(i.seg, at, 1, (v >> (8 * k)) & 0xff)?;
                    }
                }
            }
            _ => {
                let Operand::Mmx(d) = dst else {
                    return Err(Fault::UD);
                };
                let b = self.mmx_source(i, src)?;
                let r = mmx_integer(op, w, self.mm(d), b, imm).ok_or(Fault::UD)?;
                self.set_mm(d, r);
            }
        }
        self.state.x87.enter_mmx();
        Ok(())
    }

    fn set_mm(&mut self, n: u8, v: u64) {
        self.state.x87.set_mmx(usize::from(n), v);
    }

    /// CVTPI2PS/PD (two int32s to floats in the low lanes of an XMM
    /// register) and CVT(T)PS2PI, CVT(T)PD2PI (two floats to int32s in an
    /// MMX register). They need SSE, and enter MMX state only when an MMX
    /// register takes part.
    fn mmx_convert(&mut self, i: &Insn, f: FloatOp) -> Result<(), Fault> {
        self.sse_available()?;
        let [dst, src, _] = i.operands;
        let w = i.cond;
        let fw = Width::of_bytes(w);
        let mut env = FloatEnv::new(self.state.mxcsr);
        match (f, dst) {
            (FloatOp::FromPackedInt, Operand::Xmm(d)) => {
                let v = self.mmx_source(i, src)?;
                let lanes = [v as u32, (v >> 32) as u32];
                let converted = lanes.map(|x| env.from_int(i64::from(x as i32), fw));
                self.float_exceptions(&env)?;
                let d = usize::from(d);
                self.state.xmm[d] = if w == 4 {
                    // The upper half of the destination stays.
                    (self.state.xmm[d] & !u128::from(u64::MAX))
                        | u128::from(converted[0])
                        | (u128::from(converted[1]) << 32)
                } else {
                    u128::from(converted[0]) | (u128::from(converted[1]) << 64)
                };
            }
            (FloatOp::ToPackedInt { truncate }, Operand::Mmx(d)) => {
                let v = match src {
                    Operand::Xmm(s) => self.state.xmm[usize::from(s)],
                    Operand::Mem(16) => self.read128(i, true)?,
                    o => u128::from(self.read_operand(i, o)?),
                };
                let bits = u32::from(w) * 8;
                let lanes = [v as u64 & mask(w), (v >> bits) as u64 & mask(w)];
                let ints = lanes.map(|x| env.to_int(x, fw, 32, truncate) & 0xffff_ffff);
                self.float_exceptions(&env)?;
                self.set_mm(d, ints[0] | (ints[1] << 32));
            }
            _ => return Err(Fault::UD),
        }
        if i.operands.iter().any(|o| matches!(o, Operand::Mmx(_))) {
            self.state.x87.enter_mmx();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_lane_operations_give_mmx_layouts() {
        let (a, b) = (0x0807_0605_0403_0201u64, 0x1817_1615_1413_1211u64);
        assert_eq!(
            mmx_integer(SimdOp::PUnpackLow, 1, a, b, 0),
            Some(0x1404_1303_1202_1101)
        );
        assert_eq!(
            mmx_integer(SimdOp::PUnpackHigh, 1, a, b, 0),
            Some(0x1808_1707_1606_1505)
        );
        // Words 1, 2 of a and b packed to bytes: a's first.
        assert_eq!(
            mmx_integer(
                SimdOp::PackUs,
                2,
                0x0004_0003_0002_0001,
                0x00ff_0100_ffff_0007,
                0
            ),
            Some(0xff_ff_00_07_04_03_02_01)
        );
        assert_eq!(
            mmx_integer(SimdOp::Ext(Sse4Op::PAlignR), 1, a, b, 3),
            Some(0x0302_0118_1716_1514)
        );
        assert_eq!(
            mmx_integer(SimdOp::Ext(Sse4Op::PShufB), 1, a, 0x8009_0000_0000_0000, 0),
            Some(0x0002_0101_0101_0101)
        );
    }
}
