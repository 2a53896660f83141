//! F and D instructions in translated code.
//!
//! Each instruction runs inline for its common case and goes to the
//! interpreter's soft float (the oracle) for everything else, decided at run
//! time per execution: a guard checks the rounding mode and the operands (and
//! for rounding operations the result) and branches to the inline code or to a
//! helper call. Inline results are bit-exact and the accrued flags exact:
//! - bit operations (sign injection, moves) and comparisons, minimum and maximum
//!   of non-NaN operands, and conversions whose result is exact need no rounding;
//! - add, subtract and multiply run on the host in round-to-nearest-even with
//!   normal operands and a normal result well above the subnormal range, where
//!   the exact error (TwoSum, Dekker's product) decides the inexact flag;
//! - divide and square root do the same with the remainder `a - q*b` (or
//!   `a - s*s`), which a fused multiply-add computes exactly in that range;
//! - conversions to integers (round to nearest even, or toward zero as C casts
//!   do) compare the rounded value with the operand for the inexact flag.
//!
//! - fused multiply-adds in round to nearest even with no NaN operand call the
//!   host's fused multiply-add, which reports exact flags (see `host_fma`).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};

use super::{Emitter, MSTATUS_FS, NAN_BOX, OFF_F, OFF_FCSR, OFF_MSTATUS, flags};
use crate::decode::{Insn, Op};
use crate::jit::host_fma;

/// The canonical NaN of single precision, which an improperly boxed single reads as.
const CANONICAL_NAN_S: i64 = 0x7fc0_0000;

/// An IEEE binary format as the translator handles it.
#[derive(Clone, Copy)]
struct Format {
    /// The float type.
    float: Type,
    /// The integer type of the same width (the register's bits).
    int: Type,
    /// Fraction bits.
    fraction: i64,
    /// Biased exponent of the largest finite numbers.
    max_exponent: i64,
    /// Biased exponent below which the remainders of divide and square root
    /// may fall under the subnormal range (so are not exact).
    remainder_floor: i64,
    /// Biased exponent limit of factors for Dekker's split (c = (2^s + 1) x
    /// must not overflow).
    split_ceiling: i64,
    /// Dekker's splitting constant, 2^ceil(p/2) + 1.
    split: f64,
    /// Lowest biased exponent of an inline product (its error terms exact).
    product_floor: i64,
    /// Lowest biased exponent of an inline sum (no underflow anywhere near).
    sum_floor: i64,
}

const SINGLE: Format = Format {
    float: types::F32,
    int: types::I32,
    fraction: 23,
    max_exponent: 0xfe,
    remainder_floor: 127 - 100,
    split_ceiling: 127 + 112,
    split: 4097.0,
    product_floor: 127 - 60,
    sum_floor: 127 - 100,
};

const DOUBLE: Format = Format {
    float: types::F64,
    int: types::I64,
    fraction: 52,
    max_exponent: 0x7fe,
    remainder_floor: 1023 - 960,
    split_ceiling: 1023 + 994,
    split: 134_217_729.0,
    product_floor: 1023 - 960,
    sum_floor: 1023 - 1000,
};

/// What an instruction's rounding mode allows inline.
enum Rounding {
    /// Always (a static mode that the operation cannot need).
    Static,
    /// When this run-time condition holds (dynamic mode, read from frm).
    When(Value),
    /// Never: the interpreter handles it (other modes, or an illegal one).
    Never,
}

impl Emitter<'_, '_> {
    /// Emits `op` inline when this module handles it; false leaves it to a helper.
    pub(super) fn fp_inline(&mut self, insn: &Insn, pc: u64, index: u64) -> bool {
        use Op::*;
        let (format, other) = match insn.op {
            FsgnjS | FsgnjnS | FsgnjxS | FminS | FmaxS | FeqS | FltS | FleS | FaddS | FsubS
            | FmulS | FdivS | FsqrtS | FcvtWS | FcvtWuS | FcvtLS | FcvtLuS | FcvtSW | FcvtSWu
            | FcvtSL | FcvtSLu | FcvtDS => (SINGLE, DOUBLE),
            FsgnjD | FsgnjnD | FsgnjxD | FminD | FmaxD | FeqD | FltD | FleD | FaddD | FsubD
            | FmulD | FdivD | FsqrtD | FcvtWD | FcvtWuD | FcvtLD | FcvtLuD | FcvtDW | FcvtDWu
            | FcvtDL | FcvtDLu | FcvtSD => (DOUBLE, SINGLE),
            FmvXD | FmvDX | FmvXW | FmvWX => (DOUBLE, SINGLE),
            FmaddS | FmsubS | FnmsubS | FnmaddS if host_fma::AVAILABLE => (SINGLE, DOUBLE),
            FmaddD | FmsubD | FnmsubD | FnmaddD if host_fma::AVAILABLE => (DOUBLE, SINGLE),
            _ => return false,
        };
        self.fpu_enabled(pc, index);
        // Sync before any guard branches, so both paths agree on memory.
        self.sync_instret(index);
        match insn.op {
            FsgnjS | FsgnjnS | FsgnjxS | FsgnjD | FsgnjnD | FsgnjxD => {
                self.sign_injection(insn, format)
            }
            FmvXD => {
                let v = self.f_bits(insn.rs1);
                self.set(insn.rd, v);
            }
            FmvXW => {
                let v = self.f_bits(insn.rs1);
                let low = self.b.ins().ireduce(types::I32, v);
                let v = self.b.ins().sextend(types::I64, low);
                self.set(insn.rd, v);
            }
            FmvDX => {
                let v = self.reg(insn.rs1);
                self.store_f(insn.rd, v);
                self.mark_fs_dirty();
            }
            FmvWX => {
                let v = self.reg(insn.rs1);
                let low = self.b.ins().ireduce(types::I32, v);
                self.set_f(insn.rd, low, SINGLE);
            }
            FeqS | FltS | FleS | FeqD | FltD | FleD => self.compare(insn, pc, index, format),
            FminS | FmaxS | FminD | FmaxD => self.min_max(insn, pc, index, format),
            FaddS | FsubS | FmulS | FaddD | FsubD | FmulD => self.add_mul(insn, pc, index, format),
            FdivS | FdivD | FsqrtS | FsqrtD => self.div_sqrt(insn, pc, index, format),
            FcvtWS | FcvtWuS | FcvtLS | FcvtLuS | FcvtWD | FcvtWuD | FcvtLD | FcvtLuD => {
                self.convert_to_int(insn, pc, index, format)
            }
            FcvtSW | FcvtSWu | FcvtSL | FcvtSLu | FcvtDW | FcvtDWu | FcvtDL | FcvtDLu => {
                self.convert_from_int(insn, pc, index, format)
            }
            FcvtDS | FcvtSD => self.convert(insn, pc, index, format, other),
            FmaddS | FmsubS | FnmsubS | FnmaddS | FmaddD | FmsubD | FnmsubD | FnmaddD => {
                self.fused(insn, pc, index, format)
            }
            _ => unreachable!("filtered above"),
        }
        // Every path through an instruction that writes an FP register (the
        // interpreter's too) made FS dirty.
        let integer_result = matches!(
            insn.op,
            FmvXD
                | FmvXW
                | FeqS
                | FltS
                | FleS
                | FeqD
                | FltD
                | FleD
                | FcvtWS
                | FcvtWuS
                | FcvtLS
                | FcvtLuS
                | FcvtWD
                | FcvtWuD
                | FcvtLD
                | FcvtLuD
        );
        if !integer_result {
            self.fs_dirty = true;
        }
        true
    }

    /// The 64 bits of FP register `r`.
    fn f_bits(&mut self, r: u8) -> Value {
        self.b
            .ins()
            .load(types::I64, flags(), self.hart, OFF_F + 8 * i32::from(r))
    }

    fn store_f(&mut self, r: u8, bits: Value) {
        self.b
            .ins()
            .store(flags(), bits, self.hart, OFF_F + 8 * i32::from(r));
    }

    /// Register `r` as an operand of `format`: a single that is not properly
    /// NaN-boxed reads as the canonical NaN.
    fn f_operand(&mut self, r: u8, format: Format) -> Value {
        let bits = self.f_bits(r);
        if format.int == types::I64 {
            return bits;
        }
        let high = self.b.ins().ushr_imm_s(bits, 32);
        let boxed = self.b.ins().icmp_imm_s(IntCC::Equal, high, 0xffff_ffff);
        let low = self.b.ins().ireduce(types::I32, bits);
        let nan = self.b.ins().iconst(types::I32, CANONICAL_NAN_S);
        self.b.ins().select(boxed, low, nan)
    }

    /// Writes `bits` (of `format`'s width) to FP register `r`, NaN-boxing a
    /// single, and marks the FP state dirty.
    fn set_f(&mut self, r: u8, bits: Value, format: Format) {
        let bits = if format.int == types::I64 {
            bits
        } else {
            let wide = self.b.ins().uextend(types::I64, bits);
            self.b.ins().bor_imm_s(wide, NAN_BOX as i64)
        };
        self.store_f(r, bits);
        self.mark_fs_dirty();
    }

    /// mstatus.FS = Dirty (once per basic block).
    fn mark_fs_dirty(&mut self) {
        if self.fs_dirty {
            return;
        }
        let mstatus = self
            .b
            .ins()
            .load(types::I64, flags(), self.hart, OFF_MSTATUS);
        let dirty = self.b.ins().bor_imm_s(mstatus, MSTATUS_FS as i64);
        self.b.ins().store(flags(), dirty, self.hart, OFF_MSTATUS);
    }

    /// Accrues NX (fflags bit 0, so the truth value itself) when `inexact`
    /// holds; with `dirty`, also marks the FP state dirty then (instructions
    /// whose result is an integer change FP state only through the flags).
    fn accrue_inexact(&mut self, inexact: Value, dirty: bool) {
        let nx = self.b.ins().uextend(types::I32, inexact);
        let fcsr = self.b.ins().load(types::I32, flags(), self.hart, OFF_FCSR);
        let fcsr = self.b.ins().bor(fcsr, nx);
        self.b.ins().store(flags(), fcsr, self.hart, OFF_FCSR);
        if dirty {
            let mstatus = self
                .b
                .ins()
                .load(types::I64, flags(), self.hart, OFF_MSTATUS);
            let fs = self.b.ins().iconst(types::I64, MSTATUS_FS as i64);
            let zero = self.b.ins().iconst(types::I64, 0);
            let set = self.b.ins().select(inexact, fs, zero);
            let mstatus = self.b.ins().bor(mstatus, set);
            self.b.ins().store(flags(), mstatus, self.hart, OFF_MSTATUS);
        }
    }

    /// Whether the biased exponent field of `bits` (of `format`) lies in
    /// `[low, high]` (normal numbers are 1..=max_exponent).
    fn exponent_within(&mut self, bits: Value, format: Format, low: i64, high: i64) -> Value {
        let field = self.b.ins().ushr_imm_s(bits, format.fraction);
        let field = self.b.ins().band_imm_s(field, format.max_exponent + 1);
        let from_low = self.b.ins().iadd_imm_s(field, -low);
        self.b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, from_low, high - low)
    }

    fn float_of(&mut self, bits: Value, format: Format) -> Value {
        self.b
            .ins()
            .bitcast(format.float, MemFlagsData::new(), bits)
    }

    fn bits_of(&mut self, value: Value, format: Format) -> Value {
        self.b.ins().bitcast(format.int, MemFlagsData::new(), value)
    }

    /// Round to nearest even: static (rm 0), or dynamic with frm = 0.
    fn nearest_even(&mut self, insn: &Insn) -> Rounding {
        match insn.rm {
            0 => Rounding::Static,
            7 => {
                let fcsr = self.b.ins().load(types::I32, flags(), self.hart, OFF_FCSR);
                let frm = self.b.ins().band_imm_s(fcsr, 7 << 5);
                Rounding::When(self.b.ins().icmp_imm_s(IntCC::Equal, frm, 0))
            }
            _ => Rounding::Never,
        }
    }

    /// Any valid rounding mode (for operations whose result is exact): a
    /// static 0-4, or dynamic with frm 0-4; 5 and 6 are illegal.
    fn any_valid_rounding(&mut self, insn: &Insn) -> Rounding {
        match insn.rm {
            0..=4 => Rounding::Static,
            7 => {
                let fcsr = self.b.ins().load(types::I32, flags(), self.hart, OFF_FCSR);
                let frm = self.b.ins().ushr_imm_s(fcsr, 5);
                let frm = self.b.ins().band_imm_s(frm, 7);
                Rounding::When(
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, frm, 4),
                )
            }
            _ => Rounding::Never,
        }
    }

    /// Runs `fast` when `ok` holds and the interpreter otherwise, then goes on.
    fn guarded(
        &mut self,
        insn: &Insn,
        pc: u64,
        index: u64,
        rounding: Rounding,
        ok: Value,
        fast: impl FnOnce(&mut Self),
    ) {
        let ok = match rounding {
            Rounding::Static => ok,
            Rounding::When(mode) => self.b.ins().band(ok, mode),
            Rounding::Never => {
                self.helper(insn, pc, index, false);
                return;
            }
        };
        self.either(ok, fast, |e| e.helper(insn, pc, index, false));
    }

    /// Emits `then` for when `ok` holds and `otherwise` for when it does not,
    /// and goes on after both.
    fn either(
        &mut self,
        ok: Value,
        then: impl FnOnce(&mut Self),
        otherwise: impl FnOnce(&mut Self),
    ) {
        let then_block = self.b.create_block();
        let otherwise_block = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(ok, then_block, &[], otherwise_block, &[]);

        // What may need writing back after the join is what may after either.
        let before = self.dirty;
        self.b.switch_to_block(then_block);
        then(self);
        self.b.ins().jump(join, &[]);
        let after_then = std::mem::replace(&mut self.dirty, before);

        self.b.switch_to_block(otherwise_block);
        otherwise(self);
        self.b.ins().jump(join, &[]);
        for (dirty, then) in self.dirty.iter_mut().zip(after_then) {
            *dirty |= then;
        }

        self.b.switch_to_block(join);
    }

    /// fsgnj, fsgnjn, fsgnjx: the first operand with a sign made from both.
    fn sign_injection(&mut self, insn: &Insn, format: Format) {
        use Op::*;
        let a = self.f_operand(insn.rs1, format);
        let b = self.f_operand(insn.rs2, format);
        let width = if format.int == types::I64 { 64 } else { 32 };
        let sign_bit = 1i64 << (width - 1);
        let sign = match insn.op {
            FsgnjS | FsgnjD => b,
            FsgnjnS | FsgnjnD => self.b.ins().bnot(b),
            _ => self.b.ins().bxor(a, b),
        };
        let sign = self.b.ins().band_imm_s(sign, sign_bit);
        let magnitude = self.b.ins().band_imm_s(a, !sign_bit);
        let result = self.b.ins().bor(magnitude, sign);
        self.set_f(insn.rd, result, format);
    }

    /// feq, flt, fle: inline when neither operand is a NaN (no flags then).
    fn compare(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        use Op::*;
        let a = self.f_operand(insn.rs1, format);
        let b = self.f_operand(insn.rs2, format);
        let x = self.float_of(a, format);
        let y = self.float_of(b, format);
        let ordered = self.b.ins().fcmp(FloatCC::Ordered, x, y);
        let cc = match insn.op {
            FeqS | FeqD => FloatCC::Equal,
            FltS | FltD => FloatCC::LessThan,
            _ => FloatCC::LessThanOrEqual,
        };
        self.guarded(insn, pc, index, Rounding::Static, ordered, |e| {
            let holds = e.b.ins().fcmp(cc, x, y);
            let v = e.b.ins().uextend(types::I64, holds);
            e.set(insn.rd, v);
        });
    }

    /// fmin, fmax: inline when neither operand is a NaN. Equal operands differ
    /// at most in the sign of zero: the minimum takes a set sign bit, the
    /// maximum a clear one.
    fn min_max(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        let want_max = matches!(insn.op, Op::FmaxS | Op::FmaxD);
        let a = self.f_operand(insn.rs1, format);
        let b = self.f_operand(insn.rs2, format);
        let x = self.float_of(a, format);
        let y = self.float_of(b, format);
        let ordered = self.b.ins().fcmp(FloatCC::Ordered, x, y);
        self.guarded(insn, pc, index, Rounding::Static, ordered, |e| {
            let equal = e.b.ins().fcmp(FloatCC::Equal, x, y);
            let (first, tie) = if want_max {
                (
                    e.b.ins().fcmp(FloatCC::GreaterThan, x, y),
                    e.b.ins().band(a, b),
                )
            } else {
                (e.b.ins().fcmp(FloatCC::LessThan, x, y), e.b.ins().bor(a, b))
            };
            let pick = e.b.ins().select(first, a, b);
            let result = e.b.ins().select(equal, tie, pick);
            e.set_f(insn.rd, result, format);
        });
    }

    /// fadd, fsub, fmul in round to nearest even with normal operands and a
    /// normal result well above the subnormal range: the host's IEEE arithmetic
    /// gives the same bits and the exact error (TwoSum, or Dekker's product)
    /// decides the inexact flag.
    fn add_mul(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        let rounding = self.nearest_even(insn);
        if matches!(rounding, Rounding::Never) {
            self.helper(insn, pc, index, false);
            return;
        }
        let multiply = matches!(insn.op, Op::FmulS | Op::FmulD);
        let a = self.f_operand(insn.rs1, format);
        let b = self.f_operand(insn.rs2, format);
        // Factors small enough that Dekker's splitting cannot overflow.
        let high = if multiply {
            format.split_ceiling
        } else {
            format.max_exponent
        };
        let a_ok = self.exponent_within(a, format, 1, high);
        let b_ok = self.exponent_within(b, format, 1, high);
        let operands_ok = self.b.ins().band(a_ok, b_ok);
        let x = self.float_of(a, format);
        let mut y = self.float_of(b, format);
        if matches!(insn.op, Op::FsubS | Op::FsubD) {
            y = self.b.ins().fneg(y);
        }
        let (result, error) = if multiply {
            let p = self.b.ins().fmul(x, y);
            let split = |e: &mut Self, v: Value| {
                let factor = if format.float == types::F64 {
                    e.b.ins().f64const(format.split)
                } else {
                    e.b.ins().f32const(format.split as f32)
                };
                let c = e.b.ins().fmul(factor, v);
                let c_minus_v = e.b.ins().fsub(c, v);
                let hi = e.b.ins().fsub(c, c_minus_v);
                let lo = e.b.ins().fsub(v, hi);
                (hi, lo)
            };
            let (xh, xl) = split(self, x);
            let (yh, yl) = split(self, y);
            let hh = self.b.ins().fmul(xh, yh);
            let t1 = self.b.ins().fsub(hh, p);
            let hl = self.b.ins().fmul(xh, yl);
            let t2 = self.b.ins().fadd(t1, hl);
            let lh = self.b.ins().fmul(xl, yh);
            let t3 = self.b.ins().fadd(t2, lh);
            let ll = self.b.ins().fmul(xl, yl);
            (p, self.b.ins().fadd(t3, ll))
        } else {
            self.two_sum(x, y)
        };
        let bits = self.bits_of(result, format);
        let low = if multiply {
            format.product_floor
        } else {
            format.sum_floor
        };
        let result_ok = self.exponent_within(bits, format, low, format.max_exponent);
        let ok = self.b.ins().band(operands_ok, result_ok);
        self.guarded(insn, pc, index, rounding, ok, |e| {
            e.set_f(insn.rd, bits, format);
            let inexact = e.nonzero(error, format);
            e.accrue_inexact(inexact, false);
        });
    }

    /// TwoSum (Knuth): `x + y` rounded, and its exact error (without overflow).
    fn two_sum(&mut self, x: Value, y: Value) -> (Value, Value) {
        let sum = self.b.ins().fadd(x, y);
        let y_part = self.b.ins().fsub(sum, x);
        let x_part = self.b.ins().fsub(sum, y_part);
        let x_err = self.b.ins().fsub(x, x_part);
        let y_err = self.b.ins().fsub(y, y_part);
        (sum, self.b.ins().fadd(x_err, y_err))
    }

    /// Whether float `v` is not zero.
    fn nonzero(&mut self, v: Value, format: Format) -> Value {
        let zero = if format.float == types::F64 {
            self.b.ins().f64const(0.0)
        } else {
            self.b.ins().f32const(0.0)
        };
        self.b.ins().fcmp(FloatCC::NotEqual, v, zero)
    }

    /// fdiv, fsqrt in round to nearest even: the remainder `a - q*b` (or
    /// `a - s*s`) of the correctly rounded result is representable when nothing
    /// comes near the subnormal range, so a fused multiply-add computes it
    /// exactly, and it is zero exactly when the result is exact.
    fn div_sqrt(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        let rounding = self.nearest_even(insn);
        if matches!(rounding, Rounding::Never) {
            self.helper(insn, pc, index, false);
            return;
        }
        let a = self.f_operand(insn.rs1, format);
        let x = self.float_of(a, format);
        let a_ok = self.exponent_within(a, format, format.remainder_floor, format.max_exponent);
        let (result, remainder, ok) = if matches!(insn.op, Op::FsqrtS | Op::FsqrtD) {
            let positive = self
                .b
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, a, 0);
            let ok = self.b.ins().band(a_ok, positive);
            let s = self.b.ins().sqrt(x);
            let minus_s = self.b.ins().fneg(s);
            let remainder = self.b.ins().fma(minus_s, s, x);
            (s, remainder, ok)
        } else {
            let b = self.f_operand(insn.rs2, format);
            let y = self.float_of(b, format);
            let b_ok = self.exponent_within(b, format, 1, format.max_exponent);
            let q = self.b.ins().fdiv(x, y);
            let q_bits = self.bits_of(q, format);
            let q_ok = self.exponent_within(q_bits, format, 1, format.max_exponent);
            let ok = self.b.ins().band(a_ok, b_ok);
            let ok = self.b.ins().band(ok, q_ok);
            let minus_q = self.b.ins().fneg(q);
            let remainder = self.b.ins().fma(minus_q, y, x);
            (q, remainder, ok)
        };
        let bits = self.bits_of(result, format);
        self.guarded(insn, pc, index, rounding, ok, |e| {
            e.set_f(insn.rd, bits, format);
            let inexact = e.nonzero(remainder, format);
            e.accrue_inexact(inexact, false);
        });
    }

    /// fcvt.{w,wu,l,lu}.{s,d} rounding toward zero (C's casts) or to nearest
    /// even, when the rounded value is in the target's range: the result is
    /// the host's conversion of it, inexact when it differs from the operand.
    fn convert_to_int(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        use Op::*;
        let toward_zero = insn.rm == 1;
        let rounding = if toward_zero {
            Rounding::Static
        } else {
            self.nearest_even(insn)
        };
        if matches!(rounding, Rounding::Never) {
            self.helper(insn, pc, index, false);
            return;
        }
        let a = self.f_operand(insn.rs1, format);
        let mut x = self.float_of(a, format);
        if format.float == types::F32 {
            // Exact, and every range bound below is a double.
            x = self.b.ins().fpromote(types::F64, x);
        }
        let rounded = if toward_zero {
            self.b.ins().trunc(x)
        } else {
            self.b.ins().nearest(x)
        };
        let (low, high, high_inclusive) = match insn.op {
            FcvtWS | FcvtWD => (-2_147_483_648.0, 2_147_483_647.0, true),
            FcvtWuS | FcvtWuD => (0.0, 4_294_967_295.0, true),
            FcvtLS | FcvtLD => (
                -9_223_372_036_854_775_808.0,
                9_223_372_036_854_775_808.0,
                false,
            ),
            _ => (0.0, 18_446_744_073_709_551_616.0, false),
        };
        let low_v = self.b.ins().f64const(low);
        let high_v = self.b.ins().f64const(high);
        // Comparisons with a NaN are false, so NaNs take the slow path.
        let above_low = self
            .b
            .ins()
            .fcmp(FloatCC::GreaterThanOrEqual, rounded, low_v);
        let high_cc = if high_inclusive {
            FloatCC::LessThanOrEqual
        } else {
            FloatCC::LessThan
        };
        let below_high = self.b.ins().fcmp(high_cc, rounded, high_v);
        let ok = self.b.ins().band(above_low, below_high);
        self.guarded(insn, pc, index, rounding, ok, |e| {
            let value = match insn.op {
                FcvtWS | FcvtWD => {
                    let v = e.b.ins().fcvt_to_sint_sat(types::I32, rounded);
                    e.b.ins().sextend(types::I64, v)
                }
                FcvtWuS | FcvtWuD => {
                    // Sign-extended, as RV64 keeps 32-bit results.
                    let v = e.b.ins().fcvt_to_uint_sat(types::I32, rounded);
                    e.b.ins().sextend(types::I64, v)
                }
                FcvtLS | FcvtLD => e.b.ins().fcvt_to_sint_sat(types::I64, rounded),
                _ => e.b.ins().fcvt_to_uint_sat(types::I64, rounded),
            };
            e.set(insn.rd, value);
            let inexact = e.b.ins().fcmp(FloatCC::NotEqual, rounded, x);
            e.accrue_inexact(inexact, true);
        });
    }

    /// fcvt.{s,d}.{w,wu,l,lu} when the integer converts exactly: always from
    /// 32 bits to double, and while it fits the format's significand otherwise.
    fn convert_from_int(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        use Op::*;
        let rounding = self.any_valid_rounding(insn);
        let rs1 = self.reg(insn.rs1);
        let signed = matches!(insn.op, FcvtSW | FcvtSL | FcvtDW | FcvtDL);
        let word = matches!(insn.op, FcvtSW | FcvtSWu | FcvtDW | FcvtDWu);
        let source = if word {
            let low = self.b.ins().ireduce(types::I32, rs1);
            if signed {
                self.b.ins().sextend(types::I64, low)
            } else {
                self.b.ins().uextend(types::I64, low)
            }
        } else {
            rs1
        };
        // |source| <= 2^(p) converts exactly (p = significand bits).
        let limit = 1i64 << (format.fraction + 1);
        let ok = if signed {
            let shifted = self.b.ins().iadd_imm_s(source, limit);
            self.b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, shifted, 2 * limit)
        } else {
            self.b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, source, limit)
        };
        self.guarded(insn, pc, index, rounding, ok, |e| {
            let value = if signed {
                e.b.ins().fcvt_from_sint(format.float, source)
            } else {
                e.b.ins().fcvt_from_uint(format.float, source)
            };
            let bits = e.bits_of(value, format);
            e.set_f(insn.rd, bits, format);
        });
    }

    /// fcvt.d.s (exact but for NaNs) and fcvt.s.d (round to nearest even,
    /// inline for zeros and for normal results, inexact when converting back
    /// differs).
    fn convert(&mut self, insn: &Insn, pc: u64, index: u64, from: Format, to: Format) {
        let a = self.f_operand(insn.rs1, from);
        let x = self.float_of(a, from);
        if to.float == types::F64 {
            let rounding = self.any_valid_rounding(insn);
            let not_nan = self.b.ins().fcmp(FloatCC::Ordered, x, x);
            self.guarded(insn, pc, index, rounding, not_nan, |e| {
                let wide = e.b.ins().fpromote(types::F64, x);
                let bits = e.bits_of(wide, to);
                e.set_f(insn.rd, bits, to);
            });
            return;
        }
        let rounding = self.nearest_even(insn);
        if matches!(rounding, Rounding::Never) {
            self.helper(insn, pc, index, false);
            return;
        }
        let narrow = self.b.ins().fdemote(types::F32, x);
        let bits = self.bits_of(narrow, to);
        let a_normal = self.exponent_within(a, from, 1, from.max_exponent);
        let result_normal = self.exponent_within(bits, to, 1, to.max_exponent);
        let normal = self.b.ins().band(a_normal, result_normal);
        let magnitude = self.b.ins().band_imm_s(a, i64::MAX);
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, magnitude, 0);
        let ok = self.b.ins().bor(normal, zero);
        self.guarded(insn, pc, index, rounding, ok, |e| {
            e.set_f(insn.rd, bits, to);
            let back = e.b.ins().fpromote(types::F64, narrow);
            let inexact = e.b.ins().fcmp(FloatCC::NotEqual, back, x);
            e.accrue_inexact(inexact, false);
        });
    }

    /// fmadd, fmsub, fnmsub, fnmadd in round to nearest even with no NaN
    /// operand, on the operands with the signs the instruction asks for
    /// (negation is exact, and rounding to nearest is symmetric, so -(ab) - c
    /// rounds as the negated sum). Inline when the operands are in a range
    /// where the product's error `e = ab - RN(ab)` is exact (a fused
    /// multiply-add gives it) and TwoSum splits `RN(ab) + c` into `s + t`
    /// exactly: then `ab + c = s + t + e`, and when `s` is the result `r`, the
    /// result is exact if and only if `t = -e`. Otherwise the host's fused
    /// multiply-add with its exact flags decides (see `host_fma`).
    fn fused(&mut self, insn: &Insn, pc: u64, index: u64, format: Format) {
        use Op::*;
        let rounding = self.nearest_even(insn);
        if matches!(rounding, Rounding::Never) {
            self.helper(insn, pc, index, false);
            return;
        }
        let mut a = self.f_operand(insn.rs1, format);
        let b = self.f_operand(insn.rs2, format);
        let mut c = self.f_operand(insn.rs3, format);
        let width = if format.int == types::I64 { 64 } else { 32 };
        let sign_bit = 1i64 << (width - 1);
        if matches!(insn.op, FnmsubS | FnmsubD | FnmaddS | FnmaddD) {
            a = self.b.ins().bxor_imm_s(a, sign_bit);
        }
        if matches!(insn.op, FmsubS | FmsubD | FnmaddS | FnmaddD) {
            c = self.b.ins().bxor_imm_s(c, sign_bit);
        }
        let x = self.float_of(a, format);
        let y = self.float_of(b, format);
        let z = self.float_of(c, format);
        let xy = self.b.ins().fcmp(FloatCC::Ordered, x, y);
        let zz = self.b.ins().fcmp(FloatCC::Ordered, z, z);
        let no_nan = self.b.ins().band(xy, zz);
        let no_nan = match rounding {
            Rounding::When(mode) => self.b.ins().band(no_nan, mode),
            _ => no_nan,
        };

        // The inline case. Factors within 2^±(span) keep the product's error
        // exact and far from overflow; the addend within twice that, or zero.
        let bias = (format.max_exponent + 1) / 2;
        let span = if format.int == types::I64 { 450 } else { 30 };
        let a_ok = self.exponent_within(a, format, bias - span, bias + span);
        let b_ok = self.exponent_within(b, format, bias - span, bias + span);
        let c_ok = self.exponent_within(c, format, bias - 2 * span, bias + 2 * span);
        let c_magnitude = self.b.ins().band_imm_s(c, !sign_bit);
        let c_zero = self.b.ins().icmp_imm_s(IntCC::Equal, c_magnitude, 0);
        let c_ok = self.b.ins().bor(c_ok, c_zero);
        let r = self.b.ins().fma(x, y, z);
        let r_bits = self.bits_of(r, format);
        let r_ok = self.exponent_within(r_bits, format, 1, format.max_exponent);
        let p = self.b.ins().fmul(x, y);
        let minus_p = self.b.ins().fneg(p);
        let product_error = self.b.ins().fma(x, y, minus_p);
        let (sum, t) = self.two_sum(p, z);
        let s_is_r = self.b.ins().fcmp(FloatCC::Equal, sum, r);
        let mut inline_ok = self.b.ins().band(no_nan, s_is_r);
        for ok in [a_ok, b_ok, c_ok, r_ok] {
            inline_ok = self.b.ins().band(inline_ok, ok);
        }
        let inline = |e: &mut Self| {
            e.set_f(insn.rd, r_bits, format);
            let minus_e = e.b.ins().fneg(product_error);
            let inexact = e.b.ins().fcmp(FloatCC::NotEqual, t, minus_e);
            e.accrue_inexact(inexact, false);
        };
        let host = |e: &mut Self| e.host_fused(insn, [a, b, c], format);
        self.either(inline_ok, inline, |e| {
            e.guarded(insn, pc, index, Rounding::Static, no_nan, host)
        });
    }

    /// The host's fused multiply-add of `a * b + c` (bits of `format`, signs
    /// already applied) into rd, with its exact flags (see `host_fma`).
    fn host_fused(&mut self, insn: &Insn, [a, b, c]: [Value; 3], format: Format) {
        let helper = if format.int == types::I64 {
            host_fma::jit_fma_d as *const () as i64
        } else {
            host_fma::jit_fma_s as *const () as i64
        };
        let wide = |e: &mut Self, v: Value| {
            if format.int == types::I64 {
                v
            } else {
                e.b.ins().uextend(types::I64, v)
            }
        };
        let (a, b, c) = (wide(self, a), wide(self, b), wide(self, c));
        let fcsr = self.b.ins().iadd_imm_s(self.hart, i64::from(OFF_FCSR));
        let callee = self.b.ins().iconst(types::I64, helper);
        let call = self
            .b
            .ins()
            .call_indirect(self.fma_sig, callee, &[fcsr, a, b, c]);
        let mut bits = self.b.inst_results(call)[0];
        if format.int != types::I64 {
            bits = self.b.ins().ireduce(types::I32, bits);
        }
        self.set_f(insn.rd, bits, format);
    }

    /// Goes on when the FPU is on (mstatus.FS not Off); otherwise runs the
    /// instruction in the interpreter, which traps, and leaves the block.
    pub(super) fn fpu_enabled(&mut self, pc: u64, index: u64) {
        if self.fpu_checked {
            return;
        }
        self.fpu_checked = true;
        let mstatus = self
            .b
            .ins()
            .load(types::I64, flags(), self.hart, OFF_MSTATUS);
        let fs = self.b.ins().band_imm_s(mstatus, MSTATUS_FS as i64);
        let on = self.b.create_block();
        let off = self.b.create_block();
        self.b.ins().brif(fs, on, &[], off, &[]);

        // The interpreter raises the illegal-instruction trap; this path never
        // goes on with the block.
        self.b.switch_to_block(off);
        let status = self.call_interpreter(pc, index);
        let trapped = self.b.create_block();
        let ran = self.b.create_block();
        let is_trap = self.b.ins().icmp_imm_s(IntCC::Equal, status, 1);
        self.b.ins().brif(is_trap, trapped, &[], ran, &[]);
        self.b.switch_to_block(trapped);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        self.leave(Some(pc_v), index, 1);
        self.b.switch_to_block(ran);
        self.leave(None, index + 1, 0);

        self.b.switch_to_block(on);
    }

    /// flw/fld: the load, NaN-boxing singles, and mstatus.FS = Dirty.
    pub(super) fn fp_load(&mut self, insn: &Insn, pc: u64, index: u64, size: u8) {
        self.fpu_enabled(pc, index);
        let mut value = self.load_value(insn, pc, index, size, false);
        if size == 4 {
            value = self.b.ins().bor_imm_s(value, NAN_BOX as i64);
        }
        self.store_f(insn.rd, value);
        self.mark_fs_dirty();
        self.fs_dirty = true;
    }

    /// fsw/fsd: the low `size` bytes of an FP register.
    pub(super) fn fp_store(&mut self, insn: &Insn, pc: u64, index: u64, size: u8) {
        self.fpu_enabled(pc, index);
        let value = self.f_bits(insn.rs2);
        self.store_value(insn, pc, index, size, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_constants_match_ieee() {
        assert_eq!(SINGLE.max_exponent, (1 << 8) - 2);
        assert_eq!(DOUBLE.max_exponent, (1 << 11) - 2);
        // Dekker's constant is 2^ceil(p/2) + 1 (p = 24 and 53).
        assert_eq!(SINGLE.split, f64::from((1u32 << 12) + 1));
        assert_eq!(DOUBLE.split, ((1u64 << 27) + 1) as f64);
    }
}
