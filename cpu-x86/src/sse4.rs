//! SSE3, SSSE3, SSE4.1 and SSE4.2 on the XMM registers: horizontal and
//! alternating floating point, byte shuffles, absolute values and signs,
//! blends, sign and zero extension, rounding to integers, dot products,
//! and (in [`crate::sse42`]) the string compares.
//!
//! The forms that only extend an SSE2 operation to other lane widths (PMINSB,
//! PCMPEQQ, PACKUSDW, PEXTRB, …) map onto [`SimdOp`]'s existing operations;
//! what is new is here. The MMX-register forms of SSSE3 run in
//! [`crate::mmx`] on the same operations.

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Operand};
use crate::flags::{mask, sign_extend};
use crate::simd::{SimdOp, join, lanes, saturate_signed, signed, zip};
use crate::sse_float::{FloatEnv, FloatOp, Width};
use crate::state::flags::{AF, CF, OF, PF, SF, ZF};

/// The SSE3 to SSE4.2 operations that are not wider or narrower lanes of an
/// SSE2 one. The lane width is [`Insn::cond`], as for every [`SimdOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names are the instructions' mnemonics")]
pub enum Sse4Op {
    /// ADDSUBPS / ADDSUBPD: subtract in even lanes, add in odd ones.
    AddSub,
    /// HADDPS / HADDPD: sums of adjacent lanes, the destination's then the
    /// source's.
    HAdd,
    /// HSUBPS / HSUBPD: the lower lane of each pair minus the upper.
    HSub,
    /// MOVSLDUP: the even singles, each twice.
    MovSlDup,
    /// MOVSHDUP: the odd singles, each twice.
    MovShDup,
    /// MOVDDUP: the low double twice.
    MovDDup,
    PShufB,
    /// PHADDW / PHADDD, wrapping.
    PHAdd,
    /// PHADDSW, with signed saturation.
    PHAddSaturate,
    /// PHSUBW / PHSUBD, wrapping.
    PHSub,
    /// PHSUBSW, with signed saturation.
    PHSubSaturate,
    PMAddUbSw,
    PMulHrSw,
    PSign,
    PAbs,
    PAlignR,
    PMulDq,
    /// PMOVSX: the low lanes of `from` bytes, sign-extended to the lane width.
    PMovSx {
        from: u8,
    },
    /// PMOVZX: the same, zero-extended.
    PMovZx {
        from: u8,
    },
    /// PBLENDW, BLENDPS, BLENDPD: lane k from the source where immediate
    /// bit k is set.
    Blend,
    /// PBLENDVB, BLENDVPS, BLENDVPD: lane k from the source where lane k of
    /// XMM0 has its top bit set.
    BlendV,
    InsertPs,
    PTest,
    PhMinPosUw,
    MpSadBw,
    /// ROUNDPS / ROUNDPD, or (`scalar`) ROUNDSS / ROUNDSD.
    Round {
        scalar: bool,
    },
    /// DPPS / DPPD.
    DotProduct,
    /// PCMPESTRI, PCMPESTRM, PCMPISTRI, PCMPISTRM: lengths in EAX and EDX
    /// (RAX and RDX when `wide`) or up to the first null element, and the
    /// result as an index in ECX or a mask in XMM0.
    StringCompare {
        explicit: bool,
        index: bool,
        wide: bool,
    },
}

/// The operation and lane width of an SSE3 to SSE4.2 mnemonic, or `None`.
pub(crate) fn sse4_op(m: iced_x86::Mnemonic) -> Option<(SimdOp, u8)> {
    use Sse4Op as E;
    use iced_x86::Mnemonic as M;
    let (op, w) = match m {
        M::Addsubps => (E::AddSub, 4),
        M::Addsubpd => (E::AddSub, 8),
        M::Haddps => (E::HAdd, 4),
        M::Haddpd => (E::HAdd, 8),
        M::Hsubps => (E::HSub, 4),
        M::Hsubpd => (E::HSub, 8),
        M::Movsldup => (E::MovSlDup, 4),
        M::Movshdup => (E::MovShDup, 4),
        M::Movddup => (E::MovDDup, 8),
        M::Pshufb => (E::PShufB, 1),
        M::Phaddw => (E::PHAdd, 2),
        M::Phaddd => (E::PHAdd, 4),
        M::Phaddsw => (E::PHAddSaturate, 2),
        M::Phsubw => (E::PHSub, 2),
        M::Phsubd => (E::PHSub, 4),
        M::Phsubsw => (E::PHSubSaturate, 2),
        M::Pmaddubsw => (E::PMAddUbSw, 2),
        M::Pmulhrsw => (E::PMulHrSw, 2),
        M::Psignb => (E::PSign, 1),
        M::Psignw => (E::PSign, 2),
        M::Psignd => (E::PSign, 4),
        M::Pabsb => (E::PAbs, 1),
        M::Pabsw => (E::PAbs, 2),
        M::Pabsd => (E::PAbs, 4),
        M::Palignr => (E::PAlignR, 1),
        M::Pmuldq => (E::PMulDq, 8),
        M::Pmovsxbw => (E::PMovSx { from: 1 }, 2),
        M::Pmovsxbd => (E::PMovSx { from: 1 }, 4),
        M::Pmovsxbq => (E::PMovSx { from: 1 }, 8),
        M::Pmovsxwd => (E::PMovSx { from: 2 }, 4),
        M::Pmovsxwq => (E::PMovSx { from: 2 }, 8),
        M::Pmovsxdq => (E::PMovSx { from: 4 }, 8),
        M::Pmovzxbw => (E::PMovZx { from: 1 }, 2),
        M::Pmovzxbd => (E::PMovZx { from: 1 }, 4),
        M::Pmovzxbq => (E::PMovZx { from: 1 }, 8),
        M::Pmovzxwd => (E::PMovZx { from: 2 }, 4),
        M::Pmovzxwq => (E::PMovZx { from: 2 }, 8),
        M::Pmovzxdq => (E::PMovZx { from: 4 }, 8),
        M::Pblendw => (E::Blend, 2),
        M::Blendps => (E::Blend, 4),
        M::Blendpd => (E::Blend, 8),
        M::Pblendvb => (E::BlendV, 1),
        M::Blendvps => (E::BlendV, 4),
        M::Blendvpd => (E::BlendV, 8),
        M::Insertps => (E::InsertPs, 4),
        M::Ptest => (E::PTest, 16),
        M::Phminposuw => (E::PhMinPosUw, 2),
        M::Mpsadbw => (E::MpSadBw, 1),
        M::Roundps => (E::Round { scalar: false }, 4),
        M::Roundpd => (E::Round { scalar: false }, 8),
        M::Roundss => (E::Round { scalar: true }, 4),
        M::Roundsd => (E::Round { scalar: true }, 8),
        M::Dpps => (E::DotProduct, 4),
        M::Dppd => (E::DotProduct, 8),
        M::Pcmpestri | M::Pcmpestri64 | M::Pcmpestrm | M::Pcmpestrm64 => (
            E::StringCompare {
                explicit: true,
                index: matches!(m, M::Pcmpestri | M::Pcmpestri64),
                wide: matches!(m, M::Pcmpestri64 | M::Pcmpestrm64),
            },
            16,
        ),
        M::Pcmpistri | M::Pcmpistrm => (
            E::StringCompare {
                explicit: false,
                index: m == M::Pcmpistri,
                wide: false,
            },
            16,
        ),
        _ => return None,
    };
    Some((SimdOp::Ext(op), w))
}

/// The floating-point operations among these, on destination `a` and
/// source `b` with immediate `imm`; flags go into `env`.
pub fn float_ext(env: &mut FloatEnv, op: Sse4Op, a: u128, b: u128, w: u8, imm: u8) -> u128 {
    let fw = Width::of_bytes(w);
    let count = 16 / usize::from(w);
    let la: Vec<u64> = lanes(a, w).collect();
    let lb: Vec<u64> = lanes(b, w).collect();
    let mut out = Vec::with_capacity(count);
    match op {
        Sse4Op::AddSub => {
            for k in 0..count {
                let f = if k % 2 == 0 {
                    FloatOp::Sub
                } else {
                    FloatOp::Add
                };
                out.push(env.arithmetic(f, la[k], lb[k], fw));
            }
        }
        Sse4Op::HAdd | Sse4Op::HSub => {
            let f = if op == Sse4Op::HAdd {
                FloatOp::Add
            } else {
                FloatOp::Sub
            };
            let all: Vec<u64> = la.iter().chain(&lb).copied().collect();
            for pair in all.chunks(2) {
                out.push(env.arithmetic(f, pair[0], pair[1], fw));
            }
        }
        Sse4Op::Round { scalar } => {
            // Immediate bit 2 defers to MXCSR; bit 3 suppresses PE.
            let mode = (imm & 4 == 0).then_some(imm & 3);
            let suppress = imm & 8 != 0;
            if scalar {
                let r = env.round_integral(lb[0], fw, mode, suppress);
                return (a & !u128::from(mask(w))) | u128::from(r);
            }
            for &v in &lb {
                out.push(env.round_integral(v, fw, mode, suppress));
            }
        }
        Sse4Op::DotProduct => {
            // Lanes outside the high mask contribute +0.0 (and raise
            // nothing); the sum goes pairwise (lanes 0+1, 2+3, then the two
            // sums), each step rounded. The numbers are the same in every
            // output lane, but the operand order, which decides which NaN
            // comes out, is the silicon's: in DPPS lane k's pair sum is
            // p[k^1] + p[k], and its total that plus lane k^2's pair sum;
            // in DPPD lane k's is p[k] + p[k^1].
            let mut p = Vec::with_capacity(count);
            for k in 0..count {
                p.push(if imm >> (4 + k) & 1 != 0 {
                    env.arithmetic(FloatOp::Mul, la[k], lb[k], fw)
                } else {
                    0
                });
            }
            let add = |env: &mut FloatEnv, x: u64, y: u64| env.arithmetic(FloatOp::Add, x, y, fw);
            let sums: Vec<u64> = if count == 4 {
                let pairs: Vec<u64> = (0..4).map(|k| add(env, p[k ^ 1], p[k])).collect();
                (0..4).map(|k| add(env, pairs[k], pairs[k ^ 2])).collect()
            } else {
                (0..2).map(|k| add(env, p[k], p[k ^ 1])).collect()
            };
            for (k, &sum) in sums.iter().enumerate() {
                out.push(if imm >> k & 1 != 0 { sum } else { 0 });
            }
        }
        _ => return a,
    }
    join(out.into_iter(), w)
}

/// PSHUFB: byte k is the destination's byte at the low four bits of the
/// source's byte k, or zero where that byte has its top bit set.
fn shuffle_bytes(a: u128, b: u128) -> u128 {
    let bytes = a.to_le_bytes();
    join(
        lanes(b, 1).map(|s| {
            if s & 0x80 != 0 {
                0
            } else {
                u64::from(bytes[(s & 15) as usize])
            }
        }),
        1,
    )
}

/// PALIGNR: the destination above the source as 32 bytes, shifted right by
/// `n` bytes, the low 16 kept.
fn align_right(a: u128, b: u128, n: u8) -> u128 {
    let mut both = [0u8; 32];
    both[..16].copy_from_slice(&b.to_le_bytes());
    both[16..].copy_from_slice(&a.to_le_bytes());
    let mut out = [0u8; 16];
    for (k, o) in out.iter_mut().enumerate() {
        *o = both.get(usize::from(n) + k).copied().unwrap_or(0);
    }
    u128::from_le_bytes(out)
}

/// PHADD / PHSUB and their saturating forms: adjacent lanes of the
/// destination, then of the source, combined.
fn horizontal(a: u128, b: u128, w: u8, subtract: bool, saturate: bool) -> u128 {
    let all: Vec<u64> = lanes(a, w).chain(lanes(b, w)).collect();
    join(
        all.chunks(2).map(|p| {
            let (x, y) = (signed(p[0], w), signed(p[1], w));
            let r = if subtract { x - y } else { x + y };
            if saturate {
                saturate_signed(r, w)
            } else {
                r as u64
            }
        }),
        w,
    )
}

/// MPSADBW: eight sums of absolute differences between a four-byte block
/// of the source (immediate bits 0–1) and sliding blocks of the destination
/// starting at byte 0 or 4 (immediate bit 2).
fn multiple_sad(a: u128, b: u128, imm: u8) -> u128 {
    let (x, y) = (a.to_le_bytes(), b.to_le_bytes());
    let from_a = usize::from((imm >> 2) & 1) * 4;
    let from_b = usize::from(imm & 3) * 4;
    join(
        (0..8).map(|k| {
            (0..4)
                .map(|j| u64::from(x[from_a + k + j].abs_diff(y[from_b + j])))
                .sum::<u64>()
        }),
        2,
    )
}

/// PHMINPOSUW: the smallest unsigned word and (in bits 16–18) the lowest
/// index holding it.
fn min_position(b: u128) -> u128 {
    let (index, min) = lanes(b, 2)
        .enumerate()
        .min_by_key(|&(k, v)| (v, k))
        .unwrap_or((0, 0));
    u128::from(min) | ((index as u128) << 16)
}

/// INSERTPS: a single (the source register's lane `imm[7:6]`, or the memory
/// operand) into lane `imm[5:4]`, then the lanes in `imm[3:0]` zeroed.
fn insert_single(a: u128, value: u64, imm: u8) -> u128 {
    let at = u32::from((imm >> 4) & 3) * 32;
    let r = (a & !(0xffff_ffffu128 << at)) | (u128::from(value & 0xffff_ffff) << at);
    join(
        lanes(r, 4)
            .enumerate()
            .map(|(k, v)| if imm >> k & 1 != 0 { 0 } else { v }),
        4,
    )
}

/// The SSSE3 integer operations as functions of the destination `a`, the
/// source `b` (lanes of `w` bytes) and the immediate (shared by the XMM and
/// MMX forms); `None` for the other operations.
pub(crate) fn ssse3_integer(op: Sse4Op, w: u8, a: u128, b: u128, imm: u8) -> Option<u128> {
    use Sse4Op as E;
    Some(match op {
        E::PShufB => shuffle_bytes(a, b),
        E::PHAdd => horizontal(a, b, w, false, false),
        E::PHAddSaturate => horizontal(a, b, w, false, true),
        E::PHSub => horizontal(a, b, w, true, false),
        E::PHSubSaturate => horizontal(a, b, w, true, true),
        E::PMAddUbSw => {
            // Unsigned bytes of the destination times signed bytes of
            // the source, adjacent products summed and saturated.
            let products: Vec<i64> = lanes(a, 1)
                .zip(lanes(b, 1))
                .map(|(x, y)| x as i64 * signed(y, 1))
                .collect();
            join(
                products.chunks(2).map(|p| saturate_signed(p[0] + p[1], 2)),
                2,
            )
        }
        E::PMulHrSw => zip(a, b, 2, |x, y| {
            ((((signed(x, 2) * signed(y, 2)) >> 14) + 1) >> 1) as u64
        }),
        E::PSign => zip(a, b, w, |x, y| match signed(y, w) {
            0 => 0,
            s if s < 0 => x.wrapping_neg(),
            _ => x,
        }),
        E::PAbs => join(lanes(b, w).map(|x| signed(x, w).unsigned_abs()), w),
        E::PAlignR => align_right(a, b, imm),
        _ => return None,
    })
}

impl Cpu {
    /// Executes an SSE3 to SSE4.2 instruction (SSE is known available).
    pub(crate) fn sse4(&mut self, i: &Insn, op: Sse4Op) -> Result<(), Fault> {
        let [dst, src, _] = i.operands;
        let w = i.cond;
        let imm = i.imm as u8;
        if let Sse4Op::StringCompare {
            explicit,
            index,
            wide,
        } = op
        {
            return self.string_compare(i, explicit, index, wide);
        }
        let Operand::Xmm(d) = dst else {
            return Err(Fault::UD);
        };
        let d = usize::from(d);
        let a = self.state.xmm[d];
        // 16-byte memory operands must be aligned; narrower ones (PMOVSX,
        // MOVDDUP, INSERTPS, the scalar rounds) need not be.
        let b = self.float_source(i, src)?;
        use Sse4Op as E;
        let r = match op {
            E::AddSub | E::HAdd | E::HSub | E::Round { .. } | E::DotProduct => {
                let mut env = FloatEnv::new(self.state.mxcsr);
                let r = float_ext(&mut env, op, a, b, w, imm);
                self.float_exceptions(&env)?;
                r
            }
            E::MovSlDup | E::MovShDup => {
                let l: Vec<u64> = lanes(b, 4).collect();
                let k = usize::from(op == E::MovShDup);
                join([l[k], l[k], l[k + 2], l[k + 2]].into_iter(), 4)
            }
            E::MovDDup => u128::from(b as u64) * ((1u128 << 64) | 1),
            E::PMulDq => zip(a, b, 8, |x, y| {
                (i64::from(x as u32 as i32) * i64::from(y as u32 as i32)) as u64
            }),
            E::PMovSx { from } | E::PMovZx { from } => {
                let sign = matches!(op, E::PMovSx { .. });
                join(
                    lanes(b, from)
                        .take(16 / usize::from(w))
                        .map(|x| if sign { sign_extend(x, from) } else { x }),
                    w,
                )
            }
            E::Blend => join(
                lanes(a, w)
                    .zip(lanes(b, w))
                    .enumerate()
                    .map(|(k, (x, y))| if imm >> k & 1 != 0 { y } else { x }),
                w,
            ),
            E::BlendV => {
                let top = u32::from(w) * 8 - 1;
                join(
                    lanes(a, w)
                        .zip(lanes(b, w))
                        .zip(lanes(self.state.xmm[0], w))
                        .map(|((x, y), m)| if m >> top & 1 != 0 { y } else { x }),
                    w,
                )
            }
            E::InsertPs => {
                let value = match src {
                    Operand::Xmm(_) => (b >> (u32::from(imm >> 6) * 32)) as u64,
                    _ => b as u64,
                };
                insert_single(a, value, imm)
            }
            E::PTest => {
                let zf = if a & b == 0 { ZF } else { 0 };
                let cf = if !a & b == 0 { CF } else { 0 };
                let all = ZF | CF | AF | OF | PF | SF;
                self.state.rflags = (self.state.rflags & !all) | zf | cf;
                return Ok(());
            }
            E::PhMinPosUw => min_position(b),
            E::MpSadBw => multiple_sad(a, b, imm),
            E::StringCompare { .. } => return Err(Fault::UD),
            _ => ssse3_integer(op, w, a, b, imm).ok_or(Fault::UD)?,
        };
        self.state.xmm[d] = r;
        Ok(())
    }

    /// PCMPESTRI, PCMPESTRM, PCMPISTRI, PCMPISTRM. The memory operand needs
    /// no alignment.
    fn string_compare(
        &mut self,
        i: &Insn,
        explicit: bool,
        index: bool,
        wide: bool,
    ) -> Result<(), Fault> {
        use crate::sse42;
        use crate::state::gpr;
        let [dst, src, _] = i.operands;
        let Operand::Xmm(d) = dst else {
            return Err(Fault::UD);
        };
        let a = self.state.xmm[usize::from(d)];
        let b = self.xmm_source(i, src, false)?;
        let imm = i.imm as u8;
        let words = imm & 1 != 0;
        let (len_a, len_b) = if explicit {
            let length = |v: u64| {
                let v = if wide {
                    v as i64
                } else {
                    i64::from(v as u32 as i32)
                };
                sse42::explicit_length(v, words)
            };
            (
                length(self.state.gpr[gpr::AX]),
                length(self.state.gpr[gpr::DX]),
            )
        } else {
            (
                sse42::implicit_length(a, words),
                sse42::implicit_length(b, words),
            )
        };
        let found = sse42::compare_strings(a, b, imm, len_a, len_b);
        if index {
            self.set_gpr(gpr::CX, 4, u64::from(sse42::index_of(found.result, imm)));
        } else {
            self.state.xmm[0] = sse42::mask_of(found.result, imm);
        }
        let all = ZF | CF | AF | OF | PF | SF;
        self.state.rflags = (self.state.rflags & !all) | found.flags;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse_float::mxcsr;

    const DEFAULT: u32 = 0x1f80;

    fn singles(v: [f32; 4]) -> u128 {
        join(v.iter().map(|x| u64::from(x.to_bits())), 4)
    }

    #[test]
    fn byte_shuffles_and_alignment() {
        let a = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
        // Indices 15, 0, then 0x80 (zero) and 0x11 (wraps to 1).
        let b = 0x0000_0000_0000_0000_0000_0000_1180_000fu128;
        assert_eq!(shuffle_bytes(a, b) & 0xffff_ffff, 0x0100_000f);
        let src = 0x1f1e_1d1c_1b1a_1918_1716_1514_1312_1110u128;
        assert_eq!(align_right(a, src, 0), src);
        assert_eq!(align_right(a, src, 16), a);
        assert_eq!(align_right(a, src, 31), 0x0f);
        assert_eq!(align_right(a, src, 32), 0);
        assert_eq!(align_right(a, src, 1) >> 120, 0x00);
        assert_eq!(align_right(a, src, 1) & 0xff, 0x11);
    }

    #[test]
    fn horizontal_integer_sums_and_saturation() {
        let a = join([0x7fff, 1, 5, 6, 0, 0, 0x8000, 0xffff].into_iter(), 2);
        let r = horizontal(a, 0, 2, false, false);
        assert_eq!(r & 0xffff_ffff, (11 << 16) | 0x8000);
        let s = horizontal(a, 0, 2, false, true);
        assert_eq!(s & 0xffff, 0x7fff);
        assert_eq!((s >> 48) & 0xffff, 0x8000);
        let ws = join([9, 3, 7, 3, 8, 8, 8, 8].into_iter(), 2);
        assert_eq!(min_position(ws), 3 | (1 << 16));
    }

    #[test]
    fn dot_products_sum_pairwise_and_broadcast() {
        let mut env = FloatEnv::new(DEFAULT);
        let a = singles([1.0, 2.0, 3.0, 4.0]);
        let b = singles([10.0, 100.0, 1000.0, 10000.0]);
        // Lanes 0, 1 and 3 multiplied; the sum to lanes 0 and 2.
        let r = float_ext(&mut env, Sse4Op::DotProduct, a, b, 4, 0b1011_0101);
        assert_eq!(r, singles([40210.0, 0.0, 40210.0, 0.0]));
        assert_eq!(env.flags, 0);
        // Pairwise, (1 + 1e30) + (-1e30 + 1) is 0 (both sums inexact);
        // summing lane by lane would have given 1.
        let mut env = FloatEnv::new(DEFAULT);
        let a = singles([1.0, 1e30, -1e30, 1.0]);
        let b = singles([1.0, 1.0, 1.0, 1.0]);
        let r = float_ext(&mut env, Sse4Op::DotProduct, a, b, 4, 0xf1);
        assert_eq!(r, 0);
        assert_eq!(env.flags, mxcsr::PE);
        // Overflow in a product raises OE and PE.
        let mut env = FloatEnv::new(DEFAULT);
        let big = singles([1e30, 0.0, 0.0, 0.0]);
        let r = float_ext(&mut env, Sse4Op::DotProduct, big, big, 4, 0x11);
        assert_eq!(r as u32, f32::INFINITY.to_bits());
        assert_eq!(env.flags, mxcsr::OE | mxcsr::PE);
    }

    #[test]
    fn dot_product_nans_come_out_in_the_silicons_order() {
        // Two quiet NaNs in the products of lanes 0 and 1 (lanes 2 and 3
        // masked off): lanes 0 and 2 get lane 1's NaN, lane 1 lane 0's, as
        // a Xeon does.
        let (x, y) = (0xffff_ffd2u64, 0xffff_ffffu64);
        let a = join([x, y, 0, 0].into_iter(), 4);
        let b = singles([1.0, 1.0, 1.0, 1.0]);
        let mut env = FloatEnv::new(DEFAULT);
        let r = float_ext(&mut env, Sse4Op::DotProduct, a, b, 4, 0x37);
        assert_eq!(r, join([y, x, y, 0].into_iter(), 4));
        // DPPD: each lane adds its own product first.
        let a = (u128::from(0xfff8_0000_0000_0001u64) << 64) | 0xfff8_0000_0000_0002;
        let b = (u128::from(1.0f64.to_bits()) << 64) | u128::from(1.0f64.to_bits());
        let r = float_ext(&mut env, Sse4Op::DotProduct, a, b, 8, 0x33);
        assert_eq!(r, a);
        assert_eq!(env.flags, 0);
    }

    #[test]
    fn alternating_and_horizontal_float() {
        let mut env = FloatEnv::new(DEFAULT);
        let a = singles([1.0, 2.0, 3.0, 4.0]);
        let b = singles([0.5, 0.25, 8.0, 16.0]);
        let r = float_ext(&mut env, Sse4Op::AddSub, a, b, 4, 0);
        assert_eq!(r, singles([0.5, 2.25, -5.0, 20.0]));
        let r = float_ext(&mut env, Sse4Op::HSub, a, b, 4, 0);
        assert_eq!(r, singles([-1.0, -1.0, 0.25, -8.0]));
        let r = float_ext(&mut env, Sse4Op::HAdd, a, b, 4, 0);
        assert_eq!(r, singles([3.0, 7.0, 0.75, 24.0]));
        assert_eq!(env.flags, 0);
    }

    #[test]
    fn blends_inserts_and_sads() {
        let a = singles([1.0, 2.0, 3.0, 4.0]);
        // Lane 2 takes 9.0, lane 0 zeroed.
        let r = insert_single(a, u64::from(9.0f32.to_bits()), 0b0010_0001);
        assert_eq!(r, singles([0.0, 2.0, 9.0, 4.0]));
        let x = u128::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        let y = u128::from_le_bytes([0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Block 1 of the source (all ones) against x from byte 0.
        let r = multiple_sad(x, y, 1);
        // |0-1| + |1-1| + |2-1| + |3-1|, then from byte 1.
        assert_eq!(r & 0xffff, 4);
        assert_eq!((r >> 16) & 0xffff, 6);
    }
}
