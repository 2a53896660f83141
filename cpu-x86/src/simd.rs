//! SSE and SSE2: the XMM registers' data movement, logic and packed-integer
//! instructions, MXCSR, FXSAVE and FXRSTOR. The floating-point arithmetic is
//! in [`crate::sse_float`]; SSE3 to SSE4.2 are in [`crate::sse4`], whose
//! packed-integer forms that only widen SSE2's to other lane widths map onto
//! the operations here.

use crate::cpu::{Cpu, Fault, vector};
use crate::decode::{Insn, Operand};
use crate::flags::mask;
use crate::mmu::cr4;
use crate::sse_float::{FloatEnv, FloatOp, Width};
use crate::sse4::Sse4Op;
use crate::state::cr0;

/// The SIMD operations, by what they do (the lane width is [`Insn::cond`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names are the instructions' mnemonics")]
pub enum SimdOp {
    /// A whole-register move; `aligned` forms check 16-byte alignment.
    Move {
        aligned: bool,
    },
    /// MOVD / MOVQ between XMM and a general register or memory (zero-extends
    /// into the XMM register).
    MoveScalarInt,
    /// MOVQ xmm, xmm/m64 (zero-extends) and MOVQ m64, xmm.
    MoveLow64,
    /// MOVSS / MOVSD: a register source merges, a memory source zero-extends.
    MoveScalar,
    /// MOVLPS / MOVLPD: the low half from or to memory.
    MoveLowHalf,
    /// MOVHPS / MOVHPD: the high half from or to memory.
    MoveHighHalf,
    MovHlps,
    MovLhps,
    MovMskPs,
    MovMskPd,
    PMovMskB,
    And,
    AndN,
    Or,
    Xor,
    PAdd,
    PSub,
    PAddSigned,
    PAddUnsigned,
    PSubSigned,
    PSubUnsigned,
    PCmpEq,
    PCmpGt,
    PMulLow,
    PMulHigh,
    PMulHighUnsigned,
    PMulUdq,
    PMAddWd,
    /// Shifts of each lane by an immediate or by the low quadword of the
    /// source.
    PShiftLeft,
    PShiftRight,
    PShiftRightArithmetic,
    /// Whole-register byte shifts.
    PSllDq,
    PSrlDq,
    PUnpackLow,
    PUnpackHigh,
    PackSsWb,
    PackSsDw,
    PackUs,
    PShufD,
    PShufLw,
    PShufHw,
    PMinUnsigned,
    PMaxUnsigned,
    PMinSigned,
    PMaxSigned,
    PAvg,
    PSadBw,
    PExtr,
    PInsr,
    ShufPs,
    ShufPd,
    UnpackLowPs,
    UnpackHighPs,
    UnpackLowPd,
    UnpackHighPd,
    LdMxcsr,
    StMxcsr,
    FxSave,
    FxRstor,
    /// Floating point on the low lane (`scalar`) or every lane; the lane
    /// width is the float format's (a conversion's source format).
    Float {
        op: FloatOp,
        scalar: bool,
    },
    /// An SSE3, SSSE3, SSE4.1 or SSE4.2 operation.
    Ext(Sse4Op),
    /// EMMS: every x87 register empty again.
    Emms,
    /// PSHUFW: MMX's word shuffle.
    PShufW,
    /// MASKMOVQ: the bytes of the first register whose mask byte (in the
    /// second) has its top bit set, stored at DS:rDI.
    MaskMove,
    /// CVTPI2PS/PD, CVT(T)PS2PI, CVT(T)PD2PI: between two int32s in an MMX
    /// register (or memory) and two floats in an XMM register.
    MmxConvert(FloatOp),
}

/// MXCSR bits software may set (no DAZ-less parts are modelled).
const MXCSR_WRITABLE: u32 = 0xffff;

/// The SIMD operation and lane width for an iced mnemonic, or `None`.
pub fn simd_op(m: iced_x86::Mnemonic) -> Option<(SimdOp, u8)> {
    use SimdOp as S;
    use iced_x86::Mnemonic as M;
    Some(match m {
        M::Movaps | M::Movapd | M::Movdqa => (S::Move { aligned: true }, 16),
        M::Movups | M::Movupd | M::Movdqu => (S::Move { aligned: false }, 16),
        M::Movntps | M::Movntpd | M::Movntdq => (S::Move { aligned: true }, 16),
        // The non-temporal load and the "cache-line split" load are loads.
        M::Movntdqa => (S::Move { aligned: true }, 16),
        M::Lddqu => (S::Move { aligned: false }, 16),
        M::Movd => (S::MoveScalarInt, 4),
        M::Movq => (S::MoveLow64, 8),
        M::Movss => (S::MoveScalar, 4),
        M::Movsd => (S::MoveScalar, 8),
        M::Movlps | M::Movlpd => (S::MoveLowHalf, 8),
        M::Movhps | M::Movhpd => (S::MoveHighHalf, 8),
        M::Movhlps => (S::MovHlps, 8),
        M::Movlhps => (S::MovLhps, 8),
        M::Movmskps => (S::MovMskPs, 4),
        M::Movmskpd => (S::MovMskPd, 8),
        M::Pmovmskb => (S::PMovMskB, 1),
        M::Andps | M::Andpd | M::Pand => (S::And, 16),
        M::Andnps | M::Andnpd | M::Pandn => (S::AndN, 16),
        M::Orps | M::Orpd | M::Por => (S::Or, 16),
        M::Xorps | M::Xorpd | M::Pxor => (S::Xor, 16),
        M::Paddb => (S::PAdd, 1),
        M::Paddw => (S::PAdd, 2),
        M::Paddd => (S::PAdd, 4),
        M::Paddq => (S::PAdd, 8),
        M::Psubb => (S::PSub, 1),
        M::Psubw => (S::PSub, 2),
        M::Psubd => (S::PSub, 4),
        M::Psubq => (S::PSub, 8),
        M::Paddsb => (S::PAddSigned, 1),
        M::Paddsw => (S::PAddSigned, 2),
        M::Paddusb => (S::PAddUnsigned, 1),
        M::Paddusw => (S::PAddUnsigned, 2),
        M::Psubsb => (S::PSubSigned, 1),
        M::Psubsw => (S::PSubSigned, 2),
        M::Psubusb => (S::PSubUnsigned, 1),
        M::Psubusw => (S::PSubUnsigned, 2),
        M::Pcmpeqb => (S::PCmpEq, 1),
        M::Pcmpeqw => (S::PCmpEq, 2),
        M::Pcmpeqd => (S::PCmpEq, 4),
        M::Pcmpeqq => (S::PCmpEq, 8),
        M::Pcmpgtb => (S::PCmpGt, 1),
        M::Pcmpgtw => (S::PCmpGt, 2),
        M::Pcmpgtd => (S::PCmpGt, 4),
        M::Pcmpgtq => (S::PCmpGt, 8),
        M::Pmullw => (S::PMulLow, 2),
        M::Pmulld => (S::PMulLow, 4),
        M::Pmulhw => (S::PMulHigh, 2),
        M::Pmulhuw => (S::PMulHighUnsigned, 2),
        M::Pmuludq => (S::PMulUdq, 8),
        M::Pmaddwd => (S::PMAddWd, 4),
        M::Psllw => (S::PShiftLeft, 2),
        M::Pslld => (S::PShiftLeft, 4),
        M::Psllq => (S::PShiftLeft, 8),
        M::Psrlw => (S::PShiftRight, 2),
        M::Psrld => (S::PShiftRight, 4),
        M::Psrlq => (S::PShiftRight, 8),
        M::Psraw => (S::PShiftRightArithmetic, 2),
        M::Psrad => (S::PShiftRightArithmetic, 4),
        M::Pslldq => (S::PSllDq, 16),
        M::Psrldq => (S::PSrlDq, 16),
        M::Punpcklbw => (S::PUnpackLow, 1),
        M::Punpcklwd => (S::PUnpackLow, 2),
        M::Punpckldq => (S::PUnpackLow, 4),
        M::Punpcklqdq => (S::PUnpackLow, 8),
        M::Punpckhbw => (S::PUnpackHigh, 1),
        M::Punpckhwd => (S::PUnpackHigh, 2),
        M::Punpckhdq => (S::PUnpackHigh, 4),
        M::Punpckhqdq => (S::PUnpackHigh, 8),
        M::Packsswb => (S::PackSsWb, 2),
        M::Packssdw => (S::PackSsDw, 4),
        M::Packuswb => (S::PackUs, 2),
        M::Packusdw => (S::PackUs, 4),
        M::Pshufd => (S::PShufD, 4),
        M::Pshuflw => (S::PShufLw, 2),
        M::Pshufhw => (S::PShufHw, 2),
        M::Pminub => (S::PMinUnsigned, 1),
        M::Pminuw => (S::PMinUnsigned, 2),
        M::Pminud => (S::PMinUnsigned, 4),
        M::Pmaxub => (S::PMaxUnsigned, 1),
        M::Pmaxuw => (S::PMaxUnsigned, 2),
        M::Pmaxud => (S::PMaxUnsigned, 4),
        M::Pminsb => (S::PMinSigned, 1),
        M::Pminsw => (S::PMinSigned, 2),
        M::Pminsd => (S::PMinSigned, 4),
        M::Pmaxsb => (S::PMaxSigned, 1),
        M::Pmaxsw => (S::PMaxSigned, 2),
        M::Pmaxsd => (S::PMaxSigned, 4),
        M::Pavgb => (S::PAvg, 1),
        M::Pavgw => (S::PAvg, 2),
        M::Psadbw => (S::PSadBw, 1),
        M::Pextrb => (S::PExtr, 1),
        M::Pextrw => (S::PExtr, 2),
        M::Pextrd | M::Extractps => (S::PExtr, 4),
        M::Pextrq => (S::PExtr, 8),
        M::Pinsrb => (S::PInsr, 1),
        M::Pinsrw => (S::PInsr, 2),
        M::Pinsrd => (S::PInsr, 4),
        M::Pinsrq => (S::PInsr, 8),
        M::Shufps => (S::ShufPs, 4),
        M::Shufpd => (S::ShufPd, 8),
        M::Unpcklps => (S::UnpackLowPs, 4),
        M::Unpckhps => (S::UnpackHighPs, 4),
        M::Unpcklpd => (S::UnpackLowPd, 8),
        M::Unpckhpd => (S::UnpackHighPd, 8),
        M::Ldmxcsr => (S::LdMxcsr, 4),
        M::Stmxcsr => (S::StMxcsr, 4),
        // The lane width tells the REX.W forms, with 64-bit x87 pointers.
        M::Movntq => (S::MoveLow64, 8),
        M::Movq2dq | M::Movdq2q => (S::MoveLow64, 8),
        M::Emms => (S::Emms, 8),
        M::Pshufw => (S::PShufW, 2),
        M::Maskmovq => (S::MaskMove, 1),
        M::Cvtpi2ps => (S::MmxConvert(FloatOp::FromPackedInt), 4),
        M::Cvtpi2pd => (S::MmxConvert(FloatOp::FromPackedInt), 8),
        M::Cvtps2pi => (S::MmxConvert(FloatOp::ToPackedInt { truncate: false }), 4),
        M::Cvttps2pi => (S::MmxConvert(FloatOp::ToPackedInt { truncate: true }), 4),
        M::Cvtpd2pi => (S::MmxConvert(FloatOp::ToPackedInt { truncate: false }), 8),
        M::Cvttpd2pi => (S::MmxConvert(FloatOp::ToPackedInt { truncate: true }), 8),
        M::Fxsave => (S::FxSave, 16),
        M::Fxsave64 => (S::FxSave, 8),
        M::Fxrstor => (S::FxRstor, 16),
        M::Fxrstor64 => (S::FxRstor, 8),
        _ => return float_op(m).or_else(|| crate::sse4::sse4_op(m)),
    })
}

/// The floating-point instructions' operation and format.
fn float_op(m: iced_x86::Mnemonic) -> Option<(SimdOp, u8)> {
    use FloatOp as F;
    use iced_x86::Mnemonic as M;
    let packed = |op, w| Some((SimdOp::Float { op, scalar: false }, w));
    let scalar = |op, w| Some((SimdOp::Float { op, scalar: true }, w));
    match m {
        M::Addps => packed(F::Add, 4),
        M::Addpd => packed(F::Add, 8),
        M::Addss => scalar(F::Add, 4),
        M::Addsd => scalar(F::Add, 8),
        M::Subps => packed(F::Sub, 4),
        M::Subpd => packed(F::Sub, 8),
        M::Subss => scalar(F::Sub, 4),
        M::Subsd => scalar(F::Sub, 8),
        M::Mulps => packed(F::Mul, 4),
        M::Mulpd => packed(F::Mul, 8),
        M::Mulss => scalar(F::Mul, 4),
        M::Mulsd => scalar(F::Mul, 8),
        M::Divps => packed(F::Div, 4),
        M::Divpd => packed(F::Div, 8),
        M::Divss => scalar(F::Div, 4),
        M::Divsd => scalar(F::Div, 8),
        M::Minps => packed(F::Min, 4),
        M::Minpd => packed(F::Min, 8),
        M::Minss => scalar(F::Min, 4),
        M::Minsd => scalar(F::Min, 8),
        M::Maxps => packed(F::Max, 4),
        M::Maxpd => packed(F::Max, 8),
        M::Maxss => scalar(F::Max, 4),
        M::Maxsd => scalar(F::Max, 8),
        M::Sqrtps => packed(F::Sqrt, 4),
        M::Sqrtpd => packed(F::Sqrt, 8),
        M::Sqrtss => scalar(F::Sqrt, 4),
        M::Sqrtsd => scalar(F::Sqrt, 8),
        M::Cmpps => packed(F::Compare, 4),
        M::Cmppd => packed(F::Compare, 8),
        M::Cmpss => scalar(F::Compare, 4),
        M::Cmpsd => scalar(F::Compare, 8),
        M::Comiss => scalar(F::OrderedCompare, 4),
        M::Comisd => scalar(F::OrderedCompare, 8),
        M::Ucomiss => scalar(F::UnorderedCompare, 4),
        M::Ucomisd => scalar(F::UnorderedCompare, 8),
        M::Cvtsi2ss => scalar(F::FromInt, 4),
        M::Cvtsi2sd => scalar(F::FromInt, 8),
        M::Cvtss2si => scalar(F::ToInt { truncate: false }, 4),
        M::Cvtsd2si => scalar(F::ToInt { truncate: false }, 8),
        M::Cvttss2si => scalar(F::ToInt { truncate: true }, 4),
        M::Cvttsd2si => scalar(F::ToInt { truncate: true }, 8),
        M::Cvtss2sd => scalar(F::Convert, 4),
        M::Cvtsd2ss => scalar(F::Convert, 8),
        M::Cvtps2pd => packed(F::Convert, 4),
        M::Cvtpd2ps => packed(F::Convert, 8),
        M::Cvtdq2ps => packed(F::FromPackedInt, 4),
        M::Cvtdq2pd => packed(F::FromPackedInt, 8),
        M::Cvtps2dq => packed(F::ToPackedInt { truncate: false }, 4),
        M::Cvttps2dq => packed(F::ToPackedInt { truncate: true }, 4),
        M::Cvtpd2dq => packed(F::ToPackedInt { truncate: false }, 8),
        M::Cvttpd2dq => packed(F::ToPackedInt { truncate: true }, 8),
        M::Rcpps => packed(F::Reciprocal, 4),
        M::Rcpss => scalar(F::Reciprocal, 4),
        M::Rsqrtps => packed(F::ReciprocalSqrt, 4),
        M::Rsqrtss => scalar(F::ReciprocalSqrt, 4),
        _ => None,
    }
}

/// `v` split into lanes of `w` bytes, low lane first.
pub(crate) fn lanes(v: u128, w: u8) -> impl Iterator<Item = u64> {
    let bits = u32::from(w) * 8;
    (0..16 / u32::from(w)).map(move |i| ((v >> (i * bits)) as u64) & mask(w))
}

/// Builds a register from lanes of `w` bytes.
pub(crate) fn join(values: impl Iterator<Item = u64>, w: u8) -> u128 {
    let bits = u32::from(w) * 8;
    values.enumerate().fold(0, |acc, (i, v)| {
        acc | (u128::from(v & mask(w)) << (i as u32 * bits))
    })
}

/// Applies `f` lane by lane.
pub(crate) fn zip(a: u128, b: u128, w: u8, f: impl Fn(u64, u64) -> u64) -> u128 {
    join(lanes(a, w).zip(lanes(b, w)).map(|(x, y)| f(x, y)), w)
}

pub(crate) fn signed(v: u64, w: u8) -> i64 {
    crate::flags::sign_extend(v, w) as i64
}

pub(crate) fn saturate_signed(v: i64, w: u8) -> u64 {
    let bits = u32::from(w) * 8;
    let max = (1i64 << (bits - 1)) - 1;
    let min = -(1i64 << (bits - 1));
    (v.clamp(min, max) as u64) & mask(w)
}

pub(crate) fn saturate_unsigned(v: i64, w: u8) -> u64 {
    v.clamp(0, mask(w) as i64) as u64
}

/// Interleaves the low (or high) halves of `a` and `b`, lane by lane.
fn unpack(a: u128, b: u128, w: u8, high: bool) -> u128 {
    let half = 8 / usize::from(w);
    let skip = if high { half } else { 0 };
    let la: Vec<u64> = lanes(a, w).skip(skip).take(half).collect();
    let lb: Vec<u64> = lanes(b, w).skip(skip).take(half).collect();
    join(la.into_iter().zip(lb).flat_map(|(x, y)| [x, y]), w)
}

/// PSLL, PSRL and PSRA: every `w`-byte lane of `a` shifted by `count`
/// (logical shifts past the lane width give zero, arithmetic ones the sign).
pub(crate) fn shift_lanes(op: SimdOp, w: u8, a: u128, count: u64) -> u128 {
    let bits = u64::from(w) * 8;
    match op {
        SimdOp::PShiftLeft | SimdOp::PShiftRight if count >= bits => 0,
        SimdOp::PShiftLeft => zip(a, 0, w, |x, _| x << count),
        SimdOp::PShiftRight => zip(a, 0, w, |x, _| x >> count),
        _ => zip(a, 0, w, |x, _| (signed(x, w) >> count.min(bits - 1)) as u64),
    }
}

/// The two-operand packed-integer operations as functions of the
/// destination `a` and the source `b` with lanes of `w` bytes (shared by the
/// XMM and MMX forms); `None` for the other operations.
pub(crate) fn packed_integer(op: SimdOp, w: u8, a: u128, b: u128) -> Option<u128> {
    use SimdOp as S;
    Some(match op {
        S::And => a & b,
        S::AndN => !a & b,
        S::Or => a | b,
        S::Xor => a ^ b,
        S::PAdd => zip(a, b, w, u64::wrapping_add),
        S::PSub => zip(a, b, w, u64::wrapping_sub),
        S::PAddSigned => zip(a, b, w, |x, y| {
            saturate_signed(signed(x, w) + signed(y, w), w)
        }),
        S::PSubSigned => zip(a, b, w, |x, y| {
            saturate_signed(signed(x, w) - signed(y, w), w)
        }),
        S::PAddUnsigned => zip(a, b, w, |x, y| saturate_unsigned(x as i64 + y as i64, w)),
        S::PSubUnsigned => zip(a, b, w, |x, y| saturate_unsigned(x as i64 - y as i64, w)),
        S::PCmpEq => zip(a, b, w, |x, y| if x == y { u64::MAX } else { 0 }),
        S::PCmpGt => zip(a, b, w, |x, y| {
            if signed(x, w) > signed(y, w) {
                u64::MAX
            } else {
                0
            }
        }),
        S::PMulLow => zip(a, b, w, |x, y| (signed(x, w) * signed(y, w)) as u64),
        S::PMulHigh => zip(a, b, w, |x, y| ((signed(x, w) * signed(y, w)) >> 16) as u64),
        S::PMulHighUnsigned => zip(a, b, w, |x, y| (x * y) >> 16),
        S::PMulUdq => zip(a, b, 8, |x, y| (x & 0xffff_ffff) * (y & 0xffff_ffff)),
        S::PMAddWd => {
            let products: Vec<i64> = lanes(a, 2)
                .zip(lanes(b, 2))
                .map(|(x, y)| signed(x, 2) * signed(y, 2))
                .collect();
            join(products.chunks(2).map(|p| (p[0] + p[1]) as u64), 4)
        }
        S::PUnpackLow | S::UnpackLowPs | S::UnpackLowPd => unpack(a, b, w, false),
        S::PUnpackHigh | S::UnpackHighPs | S::UnpackHighPd => unpack(a, b, w, true),
        S::PackSsWb | S::PackSsDw | S::PackUs => {
            let out = w / 2;
            let narrow = |v: u64| {
                let s = signed(v, w);
                if op == S::PackUs {
                    saturate_unsigned(s, out)
                } else {
                    saturate_signed(s, out)
                }
            };
            join(lanes(a, w).chain(lanes(b, w)).map(narrow), out)
        }
        S::PMinUnsigned => zip(a, b, w, u64::min),
        S::PMaxUnsigned => zip(a, b, w, u64::max),
        S::PMinSigned => zip(
            a,
            b,
            w,
            |x, y| if signed(x, w) <= signed(y, w) { x } else { y },
        ),
        S::PMaxSigned => zip(
            a,
            b,
            w,
            |x, y| if signed(x, w) >= signed(y, w) { x } else { y },
        ),
        S::PAvg => zip(a, b, w, |x, y| (x + y + 1) >> 1),
        S::PSadBw => {
            let sum = |half: usize| {
                lanes(a, 1)
                    .zip(lanes(b, 1))
                    .skip(half * 8)
                    .take(8)
                    .map(|(x, y)| x.abs_diff(y))
                    .sum::<u64>()
            };
            u128::from(sum(0)) | (u128::from(sum(1)) << 64)
        }
        _ => return None,
    })
}

impl Cpu {
    /// #UD or #NM unless SSE may run: CR0.EM clear, CR4.OSFXSR set, CR0.TS
    /// clear.
    pub(crate) fn sse_available(&self) -> Result<(), Fault> {
        if self.state.cr0 & cr0::EM != 0 || self.state.cr4 & cr4::OSFXSR == 0 {
            return Err(Fault::UD);
        }
        if self.state.cr0 & cr0::TS != 0 {
            return Err(Fault {
                vector: vector::NM,
                error: None,
            });
        }
        Ok(())
    }

    /// Reads a 16-byte memory operand; `aligned` forms raise #GP(0) off a
    /// 16-byte boundary.
    pub(crate) fn read128(&mut self, i: &Insn, aligned: bool) -> Result<u128, Fault> {
        let ea = self.effective_address(i);
        let linear = self.linear(i.seg, ea, 16, crate::mmu::Access::Read)?;
        if aligned && linear % 16 != 0 {
            return Err(Fault::gp(0));
        }
        let low = self.read(i.seg, ea, 8)?;
        let high = self.read(i.seg, ea.wrapping_add(8) & mask(i.addr_size), 8)?;
        Ok(u128::from(low) | (u128::from(high) << 64))
    }

    fn write128(&mut self, i: &Insn, aligned: bool, value: u128) -> Result<(), Fault> {
        let ea = self.effective_address(i);
        let linear = self.linear(i.seg, ea, 16, crate::mmu::Access::Write)?;
        if aligned && linear % 16 != 0 {
            return Err(Fault::gp(0));
        }
        // Both halves are checked before either is written.
        let high_at = ea.wrapping_add(8) & mask(i.addr_size);
        self.linear(i.seg, high_at, 8, crate::mmu::Access::Write)?;
        self.write(i.seg, ea, 8, value as u64)?;
        self.write(i.seg, high_at, 8, (value >> 64) as u64)
    }

    /// The 128-bit value of an XMM or memory source.
    pub(crate) fn xmm_source(
        &mut self,
        i: &Insn,
        o: Operand,
        aligned: bool,
    ) -> Result<u128, Fault> {
        match o {
            Operand::Xmm(n) => Ok(self.state.xmm[usize::from(n)]),
            Operand::Mem(_) => self.read128(i, aligned),
            _ => Err(Fault::UD),
        }
    }

    /// Executes an SSE or SSE2 instruction.
    pub(crate) fn simd(&mut self, i: &Insn, op: SimdOp) -> Result<(), Fault> {
        let mmx_register = i.operands.iter().any(|o| matches!(o, Operand::Mmx(_)));
        if mmx_register || matches!(op, SimdOp::Emms | SimdOp::MaskMove | SimdOp::MmxConvert(_)) {
            return self.mmx(i, op);
        }
        self.sse_available()?;
        let [dst, src, third] = i.operands;
        let w = i.cond;
        let xmm = |o: Operand| match o {
            Operand::Xmm(n) => Some(usize::from(n)),
            _ => None,
        };
        use SimdOp as S;
        match op {
            S::Move { aligned } => {
                let v = self.xmm_source(i, src, aligned)?;
                match dst {
                    Operand::Xmm(n) => self.state.xmm[usize::from(n)] = v,
                    Operand::Mem(_) => self.write128(i, aligned, v)?,
                    _ => return Err(Fault::UD),
                }
            }
            S::MoveScalarInt | S::MoveLow64 => {
                let size = if op == S::MoveScalarInt {
                    i.size.min(8)
                } else {
                    8
                };
                match (xmm(dst), xmm(src)) {
                    (Some(d), Some(s)) => {
                        self.state.xmm[d] = self.state.xmm[s] & u128::from(u64::MAX);
                    }
                    (Some(d), None) => {
                        let v = self.read_operand(i, src)? & mask(size);
                        self.state.xmm[d] = u128::from(v);
                    }
                    (None, Some(s)) => {
                        let v = self.state.xmm[s] as u64 & mask(size);
                        self.write_operand(i, dst, v)?;
                    }
                    (None, None) => return Err(Fault::UD),
                }
            }
            S::MoveScalar => {
                let lane = u128::from(mask(w));
                match (xmm(dst), xmm(src)) {
                    (Some(d), Some(s)) => {
                        self.state.xmm[d] =
                            (self.state.xmm[d] & !lane) | (self.state.xmm[s] & lane);
                    }
                    (Some(d), None) => {
                        let v = self.read_operand(i, src)? & mask(w);
                        self.state.xmm[d] = u128::from(v);
                    }
                    (None, Some(s)) => {
                        self.write_operand(i, dst, self.state.xmm[s] as u64 & mask(w))?;
                    }
                    (None, None) => return Err(Fault::UD),
                }
            }
            S::MoveLowHalf | S::MoveHighHalf => {
                let shift = if op == S::MoveHighHalf { 64 } else { 0 };
                let half = u128::from(u64::MAX) << shift;
                match (xmm(dst), xmm(src)) {
                    (Some(d), None) => {
                        let v = self.read_operand(i, src)?;
                        self.state.xmm[d] = (self.state.xmm[d] & !half) | (u128::from(v) << shift);
                    }
                    (None, Some(s)) => {
                        self.write_operand(i, dst, (self.state.xmm[s] >> shift) as u64)?;
                    }
                    _ => return Err(Fault::UD),
                }
            }
            S::MovHlps | S::MovLhps => {
                let (d, s) = (xmm(dst).ok_or(Fault::UD)?, xmm(src).ok_or(Fault::UD)?);
                let (a, b) = (self.state.xmm[d], self.state.xmm[s]);
                self.state.xmm[d] = if op == S::MovHlps {
                    (a & !u128::from(u64::MAX)) | (b >> 64)
                } else {
                    (a & u128::from(u64::MAX)) | (b << 64)
                };
            }
            S::MovMskPs | S::MovMskPd | S::PMovMskB => {
                let s = xmm(src).ok_or(Fault::UD)?;
                let bits = lanes(self.state.xmm[s], w)
                    .enumerate()
                    .fold(0u64, |m, (k, v)| {
                        m | (((v >> (u32::from(w) * 8 - 1)) & 1) << k)
                    });
                self.write_operand(i, dst, bits)?;
            }
            S::PShiftLeft | S::PShiftRight | S::PShiftRightArithmetic => {
                let d = xmm(dst).ok_or(Fault::UD)?;
                let count = match src {
                    Operand::Imm(_) => i.imm & 0xff,
                    o => self.xmm_source(i, o, true)? as u64,
                };
                self.state.xmm[d] = shift_lanes(op, w, self.state.xmm[d], count);
            }
            S::PSllDq | S::PSrlDq => {
                let d = xmm(dst).ok_or(Fault::UD)?;
                let n = (i.imm & 0xff).min(16) as u32 * 8;
                let a = self.state.xmm[d];
                self.state.xmm[d] = match (op, n) {
                    (_, 128) => 0,
                    (S::PSllDq, n) => a << n,
                    (_, n) => a >> n,
                };
            }
            S::PShufD | S::PShufLw | S::PShufHw => {
                let d = xmm(dst).ok_or(Fault::UD)?;
                let v = self.xmm_source(i, src, true)?;
                let order = i.imm & 0xff;
                let pick = |ls: &[u64], k: usize| ls[((order >> (2 * k)) & 3) as usize];
                let all: Vec<u64> = lanes(v, w).collect();
                self.state.xmm[d] = match op {
                    S::PShufD => join((0..4).map(|k| pick(&all, k)), 4),
                    S::PShufLw => {
                        let low: Vec<u64> = (0..4).map(|k| pick(&all[..4], k)).collect();
                        join(low.into_iter().chain(all[4..].iter().copied()), 2)
                    }
                    _ => {
                        let high: Vec<u64> = (0..4).map(|k| pick(&all[4..], k)).collect();
                        join(all[..4].iter().copied().chain(high), 2)
                    }
                };
            }
            // The lane index wraps at the lane count; a wider general
            // register is zero-extended.
            S::PExtr => {
                let s = xmm(src).ok_or(Fault::UD)?;
                let shift = (i.imm as u32 % (16 / u32::from(w))) * u32::from(w) * 8;
                let v = (self.state.xmm[s] >> shift) as u64 & mask(w);
                self.write_operand(i, dst, v)?;
            }
            S::PInsr => {
                let d = xmm(dst).ok_or(Fault::UD)?;
                let v = self.read_operand(i, src)? & mask(w);
                let shift = (i.imm as u32 % (16 / u32::from(w))) * u32::from(w) * 8;
                let lane = u128::from(mask(w)) << shift;
                self.state.xmm[d] = (self.state.xmm[d] & !lane) | (u128::from(v) << shift);
                let _ = third;
            }
            S::ShufPs | S::ShufPd => {
                let d = xmm(dst).ok_or(Fault::UD)?;
                let b = self.xmm_source(i, src, true)?;
                let a = self.state.xmm[d];
                let order = i.imm & 0xff;
                self.state.xmm[d] = if op == S::ShufPs {
                    let la: Vec<u64> = lanes(a, 4).collect();
                    let lb: Vec<u64> = lanes(b, 4).collect();
                    let at = |k: u32| ((order >> (2 * k)) & 3) as usize;
                    join([la[at(0)], la[at(1)], lb[at(2)], lb[at(3)]].into_iter(), 4)
                } else {
                    let la: Vec<u64> = lanes(a, 8).collect();
                    let lb: Vec<u64> = lanes(b, 8).collect();
                    join(
                        [la[(order & 1) as usize], lb[((order >> 1) & 1) as usize]].into_iter(),
                        8,
                    )
                };
            }
            S::LdMxcsr => {
                let v = self.read_operand(i, dst)? as u32;
                if v & !MXCSR_WRITABLE != 0 {
                    return Err(Fault::gp(0));
                }
                self.state.mxcsr = v;
            }
            S::StMxcsr => self.write_operand(i, dst, u64::from(self.state.mxcsr))?,
            S::FxSave => self.fxsave(i)?,
            S::FxRstor => self.fxrstor(i)?,
            S::Float { op, scalar } => self.float(i, op, scalar)?,
            S::Ext(op) => self.sse4(i, op)?,
            // The lanewise and interleaving operations.
            _ => {
                let d = xmm(dst).ok_or(Fault::UD)?;
                let b = self.xmm_source(i, src, true)?;
                self.state.xmm[d] = packed_integer(op, w, self.state.xmm[d], b).ok_or(Fault::UD)?;
            }
        }
        Ok(())
    }

    /// The value of a floating-point source: an XMM register, or memory of
    /// the operand's size (16-byte operands aligned).
    pub(crate) fn float_source(&mut self, i: &Insn, o: Operand) -> Result<u128, Fault> {
        match o {
            Operand::Xmm(n) => Ok(self.state.xmm[usize::from(n)]),
            Operand::Mem(16) => self.read128(i, true),
            Operand::Mem(_) | Operand::Gpr { .. } => Ok(u128::from(self.read_operand(i, o)?)),
            _ => Err(Fault::UD),
        }
    }

    /// A floating-point instruction. Flags go into MXCSR; an exception MXCSR
    /// does not mask raises #XM (or #UD without CR4.OSXMMEXCPT) and leaves
    /// the destination alone.
    fn float(&mut self, i: &Insn, op: FloatOp, scalar: bool) -> Result<(), Fault> {
        let [dst, src, _] = i.operands;
        let w = i.cond;
        let fw = Width::of_bytes(w);
        let mut env = FloatEnv::new(self.state.mxcsr);
        let b = self.float_source(i, src)?;
        let d = match dst {
            Operand::Xmm(n) => Some(usize::from(n)),
            _ => None,
        };
        let a = d.map_or(0, |d| self.state.xmm[d]);
        let lane_mask = u128::from(mask(w));
        enum Out {
            Xmm(u128),
            Gpr(u64),
            Flags(u64),
        }
        let predicate = (i.imm & 7) as u8;
        let lanewise = |env: &mut FloatEnv, x: u64, y: u64| -> u64 {
            match op {
                FloatOp::Add | FloatOp::Sub | FloatOp::Mul | FloatOp::Div => {
                    env.arithmetic(op, x, y, fw)
                }
                FloatOp::Min => env.min_max(false, x, y, fw),
                FloatOp::Max => env.min_max(true, x, y, fw),
                FloatOp::Sqrt => env.sqrt(y, fw),
                FloatOp::Reciprocal => env.approximate(false, y),
                FloatOp::ReciprocalSqrt => env.approximate(true, y),
                _ => {
                    if env.compare_predicate(predicate, x, y, fw) {
                        mask(w)
                    } else {
                        0
                    }
                }
            }
        };
        let out = match op {
            FloatOp::OrderedCompare | FloatOp::UnorderedCompare => {
                let signal_quiet = op == FloatOp::OrderedCompare;
                let (x, y) = (a as u64 & mask(w), b as u64 & mask(w));
                Out::Flags(env.compare_flags(signal_quiet, x, y, fw))
            }
            FloatOp::FromInt => {
                let size = match src {
                    Operand::Gpr { size, .. } | Operand::Mem(size) => size,
                    _ => 4,
                };
                let v = crate::flags::sign_extend(b as u64, size) as i64;
                let r = env.from_int(v, fw);
                Out::Xmm((a & !lane_mask) | u128::from(r))
            }
            FloatOp::ToInt { truncate } => {
                let bits = match dst {
                    Operand::Gpr { size, .. } => u32::from(size) * 8,
                    _ => 32,
                };
                Out::Gpr(env.to_int(b as u64 & mask(w), fw, bits, truncate))
            }
            FloatOp::Convert => {
                let to = if fw == Width::S { Width::D } else { Width::S };
                if scalar {
                    let r = env.convert(b as u64 & mask(w), fw, to);
                    let out_mask = if to == Width::D {
                        u128::from(u64::MAX)
                    } else {
                        0xffff_ffff
                    };
                    Out::Xmm((a & !out_mask) | u128::from(r))
                } else if fw == Width::S {
                    let lo = env.convert(b as u64 & 0xffff_ffff, fw, to);
                    let hi = env.convert((b >> 32) as u64 & 0xffff_ffff, fw, to);
                    Out::Xmm(u128::from(lo) | (u128::from(hi) << 64))
                } else {
                    let lo = env.convert(b as u64, fw, to);
                    let hi = env.convert((b >> 64) as u64, fw, to);
                    Out::Xmm(u128::from(lo) | (u128::from(hi) << 32))
                }
            }
            FloatOp::FromPackedInt => {
                let count = 16 / usize::from(w);
                let ints: Vec<u64> = lanes(b, 4).take(count).collect();
                let values = ints
                    .into_iter()
                    .map(|v| env.from_int(i64::from(v as u32 as i32), fw));
                Out::Xmm(join(values, w))
            }
            FloatOp::ToPackedInt { truncate } => {
                let values: Vec<u64> = lanes(b, w)
                    .map(|v| env.to_int(v, fw, 32, truncate))
                    .collect();
                Out::Xmm(join(values.into_iter(), 4))
            }
            _ if scalar => {
                let r = lanewise(&mut env, a as u64 & mask(w), b as u64 & mask(w));
                Out::Xmm((a & !lane_mask) | u128::from(r))
            }
            _ => {
                let values: Vec<u64> = lanes(a, w)
                    .zip(lanes(b, w))
                    .map(|(x, y)| lanewise(&mut env, x, y))
                    .collect();
                Out::Xmm(join(values.into_iter(), w))
            }
        };
        self.float_exceptions(&env)?;
        match out {
            Out::Xmm(v) => self.state.xmm[d.ok_or(Fault::UD)?] = v,
            Out::Gpr(v) => self.write_operand(i, dst, v)?,
            Out::Flags(f) => {
                use crate::state::flags::{AF, CF, OF, PF, SF, ZF};
                let all = ZF | PF | CF | OF | AF | SF;
                self.state.rflags = (self.state.rflags & !all) | f;
            }
        }
        Ok(())
    }

    /// Records the flags `env` raised in MXCSR; an exception MXCSR does not
    /// mask raises #XM (#UD without CR4.OSXMMEXCPT), and the caller then
    /// leaves its destination alone.
    pub(crate) fn float_exceptions(&mut self, env: &FloatEnv) -> Result<(), Fault> {
        self.state.mxcsr |= env.flags & 0x3f;
        if env.unmasked() {
            return Err(if self.state.cr4 & cr4::OSXMMEXCPT != 0 {
                Fault {
                    vector: vector::XM,
                    error: None,
                }
            } else {
                Fault::UD
            });
        }
        Ok(())
    }

    /// FXSAVE: the 512-byte image (the x87 state, MXCSR, the XMM registers).
    fn fxsave(&mut self, i: &Insn) -> Result<(), Fault> {
        let ea = self.effective_address(i);
        let linear = self.linear(i.seg, ea, 16, crate::mmu::Access::Write)?;
        if linear % 16 != 0 {
            return Err(Fault::gp(0));
        }
        let at = |k: u64| ea.wrapping_add(k) & mask(i.addr_size);
        for (offset, size, value) in self.fxsave_x87(i.cond == 8) {
            self.write(i.seg, at(offset), size, value)?;
        }
        self.write(i.seg, at(24), 4, u64::from(self.state.mxcsr))?;
        self.write(i.seg, at(28), 4, u64::from(MXCSR_WRITABLE))?;
        let count = if self.code_bits() == 64 { 16 } else { 8 };
        for k in 0..count {
            let v = self.state.xmm[k as usize];
            self.write(i.seg, at(160 + 16 * k), 8, v as u64)?;
            self.write(i.seg, at(168 + 16 * k), 8, (v >> 64) as u64)?;
        }
        Ok(())
    }

    /// FXRSTOR: the x87 state, MXCSR and the XMM registers from a 512-byte
    /// image.
    fn fxrstor(&mut self, i: &Insn) -> Result<(), Fault> {
        let ea = self.effective_address(i);
        let linear = self.linear(i.seg, ea, 16, crate::mmu::Access::Read)?;
        if linear % 16 != 0 {
            return Err(Fault::gp(0));
        }
        let at = |k: u64| ea.wrapping_add(k) & mask(i.addr_size);
        let mxcsr = self.read(i.seg, at(24), 4)? as u32;
        if mxcsr & !MXCSR_WRITABLE != 0 {
            return Err(Fault::gp(0));
        }
        let count = if self.code_bits() == 64 { 16 } else { 8 };
        let mut xmm = self.state.xmm;
        for k in 0..count {
            let low = self.read(i.seg, at(160 + 16 * k), 8)?;
            let high = self.read(i.seg, at(168 + 16 * k), 8)?;
            xmm[k as usize] = u128::from(low) | (u128::from(high) << 64);
        }
        let mut x87 = [0u8; 160];
        for (k, chunk) in x87.chunks_mut(8).enumerate() {
            let v = self.read(i.seg, at(8 * k as u64), 8)?;
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        self.fxrstor_x87(&x87, i.cond == 8);
        self.state.xmm = xmm;
        self.state.mxcsr = mxcsr;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_round_trip_and_saturate() {
        let v = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeffu128;
        for w in [1, 2, 4, 8] {
            assert_eq!(join(lanes(v, w), w), v);
        }
        assert_eq!(saturate_signed(300, 1), 0x7f);
        assert_eq!(saturate_signed(-300, 1), 0x80);
        assert_eq!(saturate_unsigned(-5, 2), 0);
        assert_eq!(saturate_unsigned(70000, 2), 0xffff);
        // Low bytes interleaved: a0 b0 a1 b1 ...
        assert_eq!(unpack(0x0201, 0x0403, 1, false) & 0xffff_ffff, 0x0402_0301);
    }
}
