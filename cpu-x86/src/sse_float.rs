//! SSE and SSE2 floating point: scalar and packed arithmetic, square root,
//! minimum and maximum, compares, conversions and (for SSE4.1) rounding to
//! integers, with MXCSR's rounding,
//! DAZ and FTZ, its sticky flags and its masks.
//!
//! The arithmetic is `rustc_apfloat` (IEEE 754 in software, any rounding mode,
//! with the status of every operation), so results do not depend on the host;
//! the x86 rules around it (which NaN comes out, the "indefinite" results,
//! denormal inputs) are applied here. Square roots use the host's correctly
//! rounded square root and an exact residual to honour the rounding mode.

use rustc_apfloat::ieee::{Double, Quad, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status};

/// MXCSR bits.
pub mod mxcsr {
    /// Invalid operation.
    pub const IE: u32 = 1 << 0;
    /// Denormal operand.
    pub const DE: u32 = 1 << 1;
    /// Divide by zero.
    pub const ZE: u32 = 1 << 2;
    /// Overflow.
    pub const OE: u32 = 1 << 3;
    /// Underflow.
    pub const UE: u32 = 1 << 4;
    /// Precision (inexact).
    pub const PE: u32 = 1 << 5;
    /// Denormal inputs are zeros.
    pub const DAZ: u32 = 1 << 6;
    /// Where the masks start (the flag bits shifted left by 7).
    pub const MASK_SHIFT: u32 = 7;
    /// Where the rounding control starts.
    pub const RC_SHIFT: u32 = 13;
    /// Tiny results flush to zero.
    pub const FTZ: u32 = 1 << 15;
}

/// The floating-point operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names are the instructions'")]
pub enum FloatOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Sqrt,
    /// CMPPS and friends; the predicate is the immediate.
    Compare,
    /// COMISS / COMISD: QNaNs signal too.
    OrderedCompare,
    /// UCOMISS / UCOMISD.
    UnorderedCompare,
    /// CVTSI2SS / CVTSI2SD.
    FromInt,
    /// CVTSS2SI / CVTSD2SI (`truncate`: the CVTT forms).
    ToInt {
        truncate: bool,
    },
    /// CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS.
    Convert,
    /// CVTDQ2PS, CVTDQ2PD.
    FromPackedInt,
    /// CVTPS2DQ, CVTPD2DQ and their truncating forms.
    ToPackedInt {
        truncate: bool,
    },
    /// RCPPS / RCPSS: 1/x to 12 bits.
    Reciprocal,
    /// RSQRTPS / RSQRTSS: 1/sqrt(x) to 12 bits.
    ReciprocalSqrt,
}

/// A lane's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// Single precision (4 bytes).
    S,
    /// Double precision (8 bytes).
    D,
}

impl Width {
    /// The format of `w`-byte lanes.
    pub fn of_bytes(w: u8) -> Width {
        if w == 8 { Width::D } else { Width::S }
    }

    fn bits(self) -> u32 {
        match self {
            Width::S => 32,
            Width::D => 64,
        }
    }

    fn fraction_bits(self) -> u32 {
        match self {
            Width::S => 23,
            Width::D => 52,
        }
    }

    fn exponent_mask(self) -> u64 {
        match self {
            Width::S => 0x7f80_0000,
            Width::D => 0x7ff0_0000_0000_0000,
        }
    }

    fn fraction_mask(self) -> u64 {
        (1u64 << self.fraction_bits()) - 1
    }

    fn sign_bit(self) -> u64 {
        1u64 << (self.bits() - 1)
    }

    fn quiet_bit(self) -> u64 {
        1u64 << (self.fraction_bits() - 1)
    }

    /// The "QNaN floating-point indefinite": negative, quiet, no payload.
    pub fn indefinite(self) -> u64 {
        self.sign_bit() | self.exponent_mask() | self.quiet_bit()
    }

    fn is_nan(self, v: u64) -> bool {
        v & self.exponent_mask() == self.exponent_mask() && v & self.fraction_mask() != 0
    }

    fn is_signaling(self, v: u64) -> bool {
        self.is_nan(v) && v & self.quiet_bit() == 0
    }

    fn is_denormal(self, v: u64) -> bool {
        v & self.exponent_mask() == 0 && v & self.fraction_mask() != 0
    }

    /// Whether `v` is the smallest normal magnitude.
    fn is_smallest_normal(self, v: u64) -> bool {
        v & !self.sign_bit() == 1u64 << self.fraction_bits()
    }

    /// Whether `v` is the largest finite magnitude.
    fn is_largest(self, v: u64) -> bool {
        v & !self.sign_bit() == self.exponent_mask() - 1
    }

    fn quiet(self, v: u64) -> u64 {
        v | self.quiet_bit()
    }
}

/// The rounding mode MXCSR selects.
fn rounding(control: u32) -> Round {
    match (control >> mxcsr::RC_SHIFT) & 3 {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

/// The x86 flags an apfloat status stands for.
fn flags_of(status: Status) -> u32 {
    let mut f = 0;
    if status.contains(Status::INVALID_OP) {
        f |= mxcsr::IE;
    }
    if status.contains(Status::DIV_BY_ZERO) {
        f |= mxcsr::ZE;
    }
    if status.contains(Status::OVERFLOW) {
        f |= mxcsr::OE;
    }
    if status.contains(Status::UNDERFLOW) {
        f |= mxcsr::UE;
    }
    if status.contains(Status::INEXACT) {
        f |= mxcsr::PE;
    }
    f
}

/// The floating-point environment of one instruction: MXCSR's controls and
/// the flags it raises.
#[derive(Debug)]
pub struct FloatEnv {
    control: u32,
    /// Flags raised so far.
    pub flags: u32,
}

macro_rules! with_format {
    ($w:expr, $t:ident => $body:expr) => {
        match $w {
            Width::S => {
                type $t = Single;
                $body
            }
            Width::D => {
                type $t = Double;
                $body
            }
        }
    };
}

impl FloatEnv {
    /// The environment MXCSR `control` gives.
    pub fn new(control: u32) -> FloatEnv {
        FloatEnv { control, flags: 0 }
    }

    fn round(&self) -> Round {
        rounding(self.control)
    }

    /// An input as the operation sees it: DAZ makes denormals zeros, and
    /// otherwise a denormal raises DE.
    fn input(&mut self, v: u64, w: Width) -> u64 {
        if w.is_denormal(v) {
            if self.control & mxcsr::DAZ != 0 {
                return v & w.sign_bit();
            }
            self.flags |= mxcsr::DE;
        }
        v
    }

    /// `v`, or zero (with its sign) when it is a denormal and DAZ is on.
    fn zero_if_daz(&self, v: u64, w: Width) -> u64 {
        if w.is_denormal(v) && self.control & mxcsr::DAZ != 0 {
            v & w.sign_bit()
        } else {
            v
        }
    }

    /// A result as it is stored: FTZ flushes tiny results to zero when
    /// underflow is masked.
    fn output(&mut self, v: u64, w: Width, status: Status) -> u64 {
        let mut f = flags_of(status);
        let underflow_masked = self.control & (mxcsr::UE << mxcsr::MASK_SHIFT) != 0;
        let mut v = v;
        let tiny = w.is_denormal(v) || status.contains(Status::UNDERFLOW);
        if self.control & mxcsr::FTZ != 0 && underflow_masked && tiny {
            v &= w.sign_bit();
            f |= mxcsr::UE | mxcsr::PE;
        }
        // NaN inputs never get here: an invalid operation on numbers gives
        // the indefinite NaN.
        if f & mxcsr::IE != 0 {
            v = w.indefinite();
        }
        self.flags |= f;
        v
    }

    /// The NaN result of a two-input operation with a NaN input: the first
    /// operand's if it is one, else the second's, made quiet; SNaNs raise IE.
    fn nan_result(&mut self, a: u64, b: u64, w: Width) -> Option<u64> {
        if !w.is_nan(a) && !w.is_nan(b) {
            return None;
        }
        if w.is_signaling(a) || w.is_signaling(b) {
            self.flags |= mxcsr::IE;
        }
        Some(w.quiet(if w.is_nan(a) { a } else { b }))
    }

    /// `a op b` for the four basic operations.
    pub fn arithmetic(&mut self, op: FloatOp, a: u64, b: u64, w: Width) -> u64 {
        if let Some(bits) = self.arithmetic_on_host(op, a, b, w) {
            return bits;
        }
        if let Some(nan) = self.nan_result(a, b, w) {
            return nan;
        }
        let before = self.flags;
        let (a, b) = (self.input(a, w), self.input(b, w));
        let round = self.round();
        let (bits, status) = with_format!(w, F => {
            let (x, y) = (F::from_bits(u128::from(a)), F::from_bits(u128::from(b)));
            let r = match op {
                FloatOp::Add => x.add_r(y, round),
                FloatOp::Sub => x.sub_r(y, round),
                FloatOp::Mul => x.mul_r(y, round),
                _ => x.div_r(y, round),
            };
            (r.value.to_bits() as u64, r.status)
        });
        // Invalid and divide-by-zero outrank a denormal operand.
        if status.intersects(Status::INVALID_OP | Status::DIV_BY_ZERO) {
            self.flags = before | (self.flags & !mxcsr::DE);
        }
        let status = if w.is_largest(bits) && status == Status::INEXACT {
            status | overflow_toward_zero(op, a, b, w)
        } else if w.is_smallest_normal(bits)
            && status == Status::INEXACT
            && tiny_before_denormal_rounding(op, a, b, w, round)
        {
            status | Status::UNDERFLOW
        } else {
            status
        };
        self.output(bits, w, status)
    }

    /// The common case on the host's own floating point: rounding to nearest
    /// without DAZ, normal (or zero) operands and a normal result, where IEEE
    /// arithmetic is the same everywhere and the only flag is PE, found
    /// exactly from the rounding error. Anything else (`None`) goes to the
    /// software path.
    fn arithmetic_on_host(&mut self, op: FloatOp, a: u64, b: u64, w: Width) -> Option<u64> {
        let plain = |v: u64| v & w.exponent_mask() != w.exponent_mask() && !w.is_denormal(v);
        if self.control & ((3 << mxcsr::RC_SHIFT) | mxcsr::DAZ) != 0 || !plain(a) || !plain(b) {
            return None;
        }
        let (bits, exact) = match w {
            Width::S => {
                let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
                let (xd, yd) = (f64::from(x), f64::from(y));
                let (r, exact) = match op {
                    FloatOp::Add | FloatOp::Sub => {
                        let y = if op == FloatOp::Sub { -y } else { y };
                        let r = x + y;
                        (r, sum_is_exact_f32(x, y, r))
                    }
                    // A product of singles, and a quotient times a single,
                    // are exact in a double.
                    FloatOp::Mul => {
                        let r = x * y;
                        (r, f64::from(r) == xd * yd)
                    }
                    _ => {
                        let r = x / y;
                        (r, f64::from(r) * yd == xd)
                    }
                };
                if !r.is_normal() {
                    return None;
                }
                (u64::from(r.to_bits()), exact)
            }
            Width::D => {
                let (x, y) = (f64::from_bits(a), f64::from_bits(b));
                let (r, exact) = match op {
                    FloatOp::Add | FloatOp::Sub => {
                        let y = if op == FloatOp::Sub { -y } else { y };
                        let r = x + y;
                        (r, sum_is_exact_f64(x, y, r))
                    }
                    // The fused multiply-add gives the rounding error
                    // exactly (and the remainder of a division).
                    FloatOp::Mul => {
                        let r = x * y;
                        (r, x.mul_add(y, -r) == 0.0)
                    }
                    _ => {
                        let r = x / y;
                        (r, (-r).mul_add(y, x) == 0.0)
                    }
                };
                // The residuals above are exact only while they stay clear of
                // the denormal range.
                let tiny = 2f64.powi(-900);
                let small = match op {
                    FloatOp::Mul => r.abs() < tiny,
                    FloatOp::Div => x.abs() < tiny || r.abs() < tiny,
                    _ => false,
                };
                if !r.is_normal() || small {
                    return None;
                }
                (r.to_bits(), exact)
            }
        };
        if !exact {
            self.flags |= mxcsr::PE;
        }
        Some(bits)
    }

    /// MIN and MAX: the second operand unless the first is strictly smaller
    /// (larger); any NaN raises IE and gives the second operand.
    pub fn min_max(&mut self, max: bool, a: u64, b: u64, w: Width) -> u64 {
        if w.is_nan(a) || w.is_nan(b) {
            self.flags |= mxcsr::IE;
            return self.zero_if_daz(b, w);
        }
        let (x, y) = (self.input(a, w), self.input(b, w));
        let ordering = compare(x, y, w);
        let first = if max {
            ordering == Some(std::cmp::Ordering::Greater)
        } else {
            ordering == Some(std::cmp::Ordering::Less)
        };
        if first { x } else { y }
    }

    /// The square root, correctly rounded in MXCSR's mode.
    pub fn sqrt(&mut self, a: u64, w: Width) -> u64 {
        if w.is_nan(a) {
            if w.is_signaling(a) {
                self.flags |= mxcsr::IE;
            }
            return w.quiet(a);
        }
        let before = self.flags;
        let a = self.input(a, w);
        let negative = a & w.sign_bit() != 0 && a & !w.sign_bit() != 0;
        if negative {
            // Invalid outranks a denormal operand.
            self.flags = before | mxcsr::IE;
            return w.indefinite();
        }
        let round = self.round();
        let (bits, inexact) = match w {
            Width::S => {
                let x = f32::from_bits(a as u32);
                let mut r = (f64::from(x)).sqrt() as f32;
                // The square of a single fits a double exactly.
                let square = f64::from(r) * f64::from(r);
                let exact = square == f64::from(x);
                if !exact {
                    let above = square > f64::from(x);
                    r = adjust_single(r, above, round);
                }
                (u64::from(r.to_bits()), !exact)
            }
            Width::D => {
                // Tiny inputs are scaled up by an even power of two first, so
                // the residual below cannot underflow; every square root of a
                // double is a normal number, so scaling back is exact.
                let x = f64::from_bits(a);
                let tiny = x != 0.0 && x < f64::from_bits(0x0700_0000_0000_0000);
                let scaled = if tiny { x * 2f64.powi(600) } else { x };
                let mut r = scaled.sqrt();
                let residual = r.mul_add(r, -scaled);
                let exact = residual == 0.0 || x.is_infinite();
                if !exact {
                    r = adjust_double(r, residual > 0.0, round);
                }
                if tiny {
                    r *= 2f64.powi(-300);
                }
                (r.to_bits(), !exact)
            }
        };
        if inexact {
            self.flags |= mxcsr::PE;
        }
        bits
    }

    /// The CMPPS predicate `predicate` (0–7) on `a` and `b`: all ones or zero.
    pub fn compare_predicate(&mut self, predicate: u8, a: u64, b: u64, w: Width) -> bool {
        let unordered = w.is_nan(a) || w.is_nan(b);
        let signals_on_quiet = matches!(predicate & 3, 1 | 2);
        if w.is_signaling(a) || w.is_signaling(b) || (unordered && signals_on_quiet) {
            self.flags |= mxcsr::IE;
        }
        let (x, y) = if unordered {
            (a, b)
        } else {
            (self.input(a, w), self.input(b, w))
        };
        let ordering = if unordered { None } else { compare(x, y, w) };
        use std::cmp::Ordering as O;
        let base = match predicate & 3 {
            0 => ordering == Some(O::Equal),
            1 => ordering == Some(O::Less),
            2 => matches!(ordering, Some(O::Less | O::Equal)),
            _ => unordered,
        };
        if predicate & 4 != 0 { !base } else { base }
    }

    /// COMIS / UCOMIS: ZF, PF, CF as RFLAGS bits.
    pub fn compare_flags(&mut self, signal_quiet: bool, a: u64, b: u64, w: Width) -> u64 {
        let unordered = w.is_nan(a) || w.is_nan(b);
        if w.is_signaling(a) || w.is_signaling(b) || (unordered && signal_quiet) {
            self.flags |= mxcsr::IE;
        }
        if unordered {
            return 0x45;
        }
        let (x, y) = (self.input(a, w), self.input(b, w));
        match compare(x, y, w) {
            Some(std::cmp::Ordering::Less) => 0x01,
            Some(std::cmp::Ordering::Equal) => 0x40,
            _ => 0,
        }
    }

    /// A signed integer of `int_bits` to a float.
    pub fn from_int(&mut self, v: i64, w: Width) -> u64 {
        let round = self.round();
        let (bits, status) = with_format!(w, F => {
            let r = F::from_i128_r(i128::from(v), round);
            (r.value.to_bits() as u64, r.status)
        });
        self.flags |= flags_of(status);
        bits
    }

    /// A float to a signed integer of `int_bits` (32 or 64): NaNs and values
    /// out of range give the integer indefinite (the most negative value).
    pub fn to_int(&mut self, a: u64, w: Width, int_bits: u32, truncate: bool) -> u64 {
        let indefinite = 1u64 << (int_bits - 1);
        if w.is_nan(a) {
            self.flags |= mxcsr::IE;
            return indefinite;
        }
        // Conversions to integers report no denormal operands.
        let a = self.zero_if_daz(a, w);
        let round = if truncate {
            Round::TowardZero
        } else {
            self.round()
        };
        let mut exact = true;
        let (value, status) = with_format!(w, F => {
            let r = F::from_bits(u128::from(a)).to_i128_r(int_bits as usize, round, &mut exact);
            (r.value, r.status)
        });
        if status.contains(Status::INVALID_OP) {
            self.flags |= mxcsr::IE;
            return indefinite;
        }
        if !exact {
            self.flags |= mxcsr::PE;
        }
        (value as u64)
            & if int_bits == 64 {
                u64::MAX
            } else {
                0xffff_ffff
            }
    }

    /// Single to double or double to single.
    pub fn convert(&mut self, a: u64, from: Width, to: Width) -> u64 {
        if from == to {
            return a;
        }
        if from.is_nan(a) {
            if from.is_signaling(a) {
                self.flags |= mxcsr::IE;
            }
            let sign = if a & from.sign_bit() != 0 {
                to.sign_bit()
            } else {
                0
            };
            let fraction = a & from.fraction_mask();
            let fraction = if to == Width::D {
                fraction << 29
            } else {
                fraction >> 29
            };
            return sign | to.exponent_mask() | to.quiet_bit() | fraction;
        }
        let a = self.input(a, from);
        let round = self.round();
        let mut loses = false;
        let (bits, status) = match from {
            Width::S => {
                let r: rustc_apfloat::StatusAnd<Double> =
                    Single::from_bits(u128::from(a)).convert_r(round, &mut loses);
                (r.value.to_bits() as u64, r.status)
            }
            Width::D => {
                let r: rustc_apfloat::StatusAnd<Single> =
                    Double::from_bits(u128::from(a)).convert_r(round, &mut loses);
                (r.value.to_bits() as u64, r.status)
            }
        };
        // Rounding toward zero, apfloat gives the largest finite number
        // without calling it an overflow; x86 calls it one when even the
        // truncated value is out of range.
        let status = if to.is_largest(bits) && status == Status::INEXACT {
            let huge = f64::from_bits(a).abs() >= 2f64.powi(128);
            if huge {
                status | Status::OVERFLOW
            } else {
                status
            }
        } else if to.is_smallest_normal(bits) && status == Status::INEXACT {
            // Tiny before rounding in the denormal range (see
            // `tiny_before_denormal_rounding`); the source is exact here.
            let gap = if round == Round::NearestTiesToEven {
                2f64.powi(-151)
            } else {
                2f64.powi(-150)
            };
            if f64::from_bits(a).abs() < 2f64.powi(-126) - gap {
                status | Status::UNDERFLOW
            } else {
                status
            }
        } else {
            status
        };
        self.output(bits, to, status)
    }

    /// ROUNDPS and friends: `a` rounded to an integral value in the
    /// rounding control `mode` (0–3, as MXCSR.RC), or MXCSR's when `None`.
    /// Only an SNaN (IE) and an inexact result (PE, unless `suppress_precision`)
    /// raise flags: a denormal operand is no exception here, though DAZ still
    /// applies.
    pub fn round_integral(
        &mut self,
        a: u64,
        w: Width,
        mode: Option<u8>,
        suppress_precision: bool,
    ) -> u64 {
        if w.is_nan(a) {
            if w.is_signaling(a) {
                self.flags |= mxcsr::IE;
            }
            return w.quiet(a);
        }
        let a = self.zero_if_daz(a, w);
        let round = match mode {
            Some(m) => rounding(u32::from(m & 3) << mxcsr::RC_SHIFT),
            None => self.round(),
        };
        let (bits, status) = with_format!(w, F => {
            let r = F::from_bits(u128::from(a)).round_to_integral(round);
            (r.value.to_bits() as u64, r.status)
        });
        if status.contains(Status::INEXACT) && !suppress_precision {
            self.flags |= mxcsr::PE;
        }
        bits
    }

    /// RCP and RSQRT: the reciprocal (of the square root) to at least 12
    /// bits, as the architecture promises; the exact table a given part uses
    /// differs between vendors and generations.
    pub fn approximate(&mut self, sqrt: bool, a: u64) -> u64 {
        let x = f32::from_bits(a as u32);
        let r = if sqrt { 1.0 / x.sqrt() } else { 1.0 / x };
        if r.is_nan() {
            return Width::S.indefinite();
        }
        // Keep 12 fraction bits, rounded: within the promised 1.5 × 2^-12.
        let bits = r.to_bits();
        let rounded = if r.is_finite() && r != 0.0 && !r.is_subnormal() {
            (bits + (1 << 10)) & !((1 << 11) - 1)
        } else {
            bits
        };
        u64::from(rounded)
    }

    /// Whether the flags raised include one MXCSR does not mask.
    pub fn unmasked(&self) -> bool {
        let masks = (self.control >> mxcsr::MASK_SHIFT) & 0x3f;
        self.flags & !masks & 0x3f != 0
    }
}

/// Whether `a op b`, which rounded to the largest finite number, overflowed
/// as x86 counts it: rounding toward zero, that is when even the truncated
/// result is out of range. apfloat reports no overflow there, so the
/// operation runs again in a wider format.
fn overflow_toward_zero(op: FloatOp, a: u64, b: u64, w: Width) -> Status {
    macro_rules! wide {
        ($narrow:ty, $wide:ty, $limit:expr) => {{
            let mut loses = false;
            let x: $wide = <$narrow>::from_bits(u128::from(a))
                .convert_r(Round::TowardZero, &mut loses)
                .value;
            let y: $wide = <$narrow>::from_bits(u128::from(b))
                .convert_r(Round::TowardZero, &mut loses)
                .value;
            let r = match op {
                FloatOp::Add => x.add_r(y, Round::TowardZero),
                FloatOp::Sub => x.sub_r(y, Round::TowardZero),
                FloatOp::Mul => x.mul_r(y, Round::TowardZero),
                _ => x.div_r(y, Round::TowardZero),
            }
            .value
            .abs();
            let limit: $wide = $limit;
            r >= limit
        }};
    }
    let huge = match w {
        Width::S => wide!(Single, Double, Double::from_bits(0x47f0_0000_0000_0000)),
        Width::D => wide!(
            Double,
            Quad,
            Quad::from_bits(0x43ff_0000_0000_0000_0000_0000_0000_0000)
        ),
    };
    if huge { Status::OVERFLOW } else { Status::OK }
}

/// Whether `a op b`, which apfloat rounded up to the smallest normal number,
/// is tiny as x86 judges it: after rounding to the format's precision with an
/// unbounded exponent, still below the smallest normal. apfloat rounds such
/// results in the denormal range's precision instead, so the operation runs
/// again in a wider format and the exact result is compared with the least
/// value that rounds up to the smallest normal in this rounding mode.
fn tiny_before_denormal_rounding(op: FloatOp, a: u64, b: u64, w: Width, round: Round) -> bool {
    let nearest = round == Round::NearestTiesToEven;
    match w {
        Width::S => {
            let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
            let (x, y) = (f64::from(x), f64::from(y));
            // Exact for +, - and ×; the quotient's rounding cannot reach the
            // threshold's granularity.
            let v = match op {
                FloatOp::Add => x + y,
                FloatOp::Sub => x - y,
                FloatOp::Mul => x * y,
                _ => x / y,
            }
            .abs();
            let gap = if nearest {
                2f64.powi(-151)
            } else {
                2f64.powi(-150)
            };
            v < 2f64.powi(-126) - gap
        }
        Width::D => {
            let q = |bits: u64| -> Quad {
                let mut loses = false;
                Double::from_bits(u128::from(bits))
                    .convert_r(Round::NearestTiesToEven, &mut loses)
                    .value
            };
            let (x, y) = (q(a), q(b));
            let v = match op {
                FloatOp::Add => x.add_r(y, Round::NearestTiesToEven),
                FloatOp::Sub => x.sub_r(y, Round::NearestTiesToEven),
                FloatOp::Mul => x.mul_r(y, Round::NearestTiesToEven),
                _ => x.div_r(y, Round::NearestTiesToEven),
            }
            .value
            .abs();
            // 2^e in binary128: the exponent field is e + 16383.
            let power = |e: i32| Quad::from_bits(((16383 + e) as u128) << 112);
            let gap = if nearest { power(-1076) } else { power(-1075) };
            let threshold = power(-1022).sub_r(gap, Round::NearestTiesToEven).value;
            v < threshold
        }
    }
}

/// Whether `s`, the rounded sum of `a` and `b`, is exact: Knuth's TwoSum
/// error term, exact in round-to-nearest without overflow, is zero.
fn sum_is_exact_f64(a: f64, b: f64, s: f64) -> bool {
    let bb = s - a;
    (a - (s - bb)) + (b - bb) == 0.0
}

/// [`sum_is_exact_f64`] for singles.
fn sum_is_exact_f32(a: f32, b: f32, s: f32) -> bool {
    let bb = s - a;
    (a - (s - bb)) + (b - bb) == 0.0
}

/// How `a` compares with `b` (neither a NaN).
fn compare(a: u64, b: u64, w: Width) -> Option<std::cmp::Ordering> {
    with_format!(w, F => F::from_bits(u128::from(a)).partial_cmp(&F::from_bits(u128::from(b))))
}

fn adjust_single(r: f32, above: bool, round: Round) -> f32 {
    let toward_zero_or_down = matches!(round, Round::TowardZero | Round::TowardNegative);
    if above && toward_zero_or_down {
        f32::from_bits(r.to_bits() - 1)
    } else if !above && round == Round::TowardPositive {
        f32::from_bits(r.to_bits() + 1)
    } else {
        r
    }
}

fn adjust_double(r: f64, above: bool, round: Round) -> f64 {
    let toward_zero_or_down = matches!(round, Round::TowardZero | Round::TowardNegative);
    if above && toward_zero_or_down {
        f64::from_bits(r.to_bits() - 1)
    } else if !above && round == Round::TowardPositive {
        f64::from_bits(r.to_bits() + 1)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: u32 = 0x1f80;

    #[test]
    fn arithmetic_flags_and_nans() {
        let mut env = FloatEnv::new(DEFAULT);
        let one = 1.0f64.to_bits();
        let three = 3.0f64.to_bits();
        let third = env.arithmetic(FloatOp::Div, one, three, Width::D);
        assert_eq!(f64::from_bits(third), 1.0 / 3.0);
        assert_eq!(env.flags, mxcsr::PE);
        let mut env = FloatEnv::new(DEFAULT);
        let zero = 0.0f64.to_bits();
        assert_eq!(
            env.arithmetic(FloatOp::Div, zero, zero, Width::D),
            Width::D.indefinite()
        );
        assert_eq!(env.flags, mxcsr::IE);
        let mut env = FloatEnv::new(DEFAULT);
        assert_eq!(
            f64::from_bits(env.arithmetic(FloatOp::Div, one, zero, Width::D)),
            f64::INFINITY
        );
        assert_eq!(env.flags, mxcsr::ZE);
        // The first NaN operand wins, quieted.
        let mut env = FloatEnv::new(DEFAULT);
        let snan = 0x7ff0_0000_0000_0001;
        let qnan = 0x7ff8_0000_0000_0002;
        assert_eq!(
            env.arithmetic(FloatOp::Add, snan, qnan, Width::D),
            0x7ff8_0000_0000_0001
        );
        assert_eq!(env.flags, mxcsr::IE);
    }

    #[test]
    fn square_roots_honour_the_rounding_mode() {
        let two = 2.0f64.to_bits();
        let nearest = FloatEnv::new(DEFAULT).sqrt(two, Width::D);
        let down = FloatEnv::new(DEFAULT | (1 << mxcsr::RC_SHIFT)).sqrt(two, Width::D);
        let up = FloatEnv::new(DEFAULT | (2 << mxcsr::RC_SHIFT)).sqrt(two, Width::D);
        assert_eq!(f64::from_bits(nearest), 2f64.sqrt());
        assert!(down < up && (down == nearest || up == nearest));
        assert_eq!(up - down, 1);
        let mut env = FloatEnv::new(DEFAULT);
        assert_eq!(
            env.sqrt(u64::from(4.0f32.to_bits()), Width::S),
            u64::from(2.0f32.to_bits())
        );
        assert_eq!(env.flags, 0);
    }

    #[test]
    fn rounding_to_integers_takes_the_immediate_or_mxcsr_mode() {
        let value = |x: f64| x.to_bits();
        // -2.5 in each immediate mode: nearest-even, down, up, toward zero.
        for (mode, want) in [(0, -2.0), (1, -3.0), (2, -2.0), (3, -2.0)] {
            let mut env = FloatEnv::new(DEFAULT);
            let r = env.round_integral(value(-2.5), Width::D, Some(mode), false);
            assert_eq!(f64::from_bits(r), want, "mode {mode}");
            assert_eq!(env.flags, mxcsr::PE);
        }
        // MXCSR's mode (up) when the immediate defers to it; PE suppressed.
        let mut env = FloatEnv::new(DEFAULT | (2 << mxcsr::RC_SHIFT));
        let r = env.round_integral(u64::from(1.25f32.to_bits()), Width::S, None, true);
        assert_eq!(r, u64::from(2.0f32.to_bits()));
        assert_eq!(env.flags, 0);
        // Small negatives keep their sign; integers are exact.
        let mut env = FloatEnv::new(DEFAULT);
        let r = env.round_integral(value(-0.25), Width::D, Some(0), false);
        assert_eq!(r, value(-0.0));
        assert_eq!(
            env.round_integral(value(7.0), Width::D, Some(1), false),
            value(7.0)
        );
        // A denormal with DAZ is a zero (no DE either way); an SNaN is
        // quieted with IE.
        let mut env = FloatEnv::new(DEFAULT | mxcsr::DAZ);
        assert_eq!(env.round_integral(1, Width::D, Some(2), false), 0);
        assert_eq!(env.flags, 0);
        let mut env = FloatEnv::new(DEFAULT);
        assert_eq!(env.round_integral(1, Width::D, Some(2), false), value(1.0));
        assert_eq!(env.flags, mxcsr::PE);
        let snan = 0x7f80_0001;
        assert_eq!(
            env.round_integral(snan, Width::S, Some(0), false),
            0x7fc0_0001
        );
        assert_eq!(env.flags, mxcsr::PE | mxcsr::IE);
    }

    #[test]
    fn conversions_give_indefinite_out_of_range() {
        let mut env = FloatEnv::new(DEFAULT);
        assert_eq!(
            env.to_int(1e20f64.to_bits(), Width::D, 32, false),
            0x8000_0000
        );
        assert_eq!(env.flags, mxcsr::IE);
        let mut env = FloatEnv::new(DEFAULT);
        assert_eq!(env.to_int(2.5f64.to_bits(), Width::D, 32, false), 2);
        assert_eq!(env.to_int(2.5f64.to_bits(), Width::D, 32, true), 2);
        assert_eq!(
            env.to_int((-2.5f64).to_bits(), Width::D, 64, false),
            (-2i64) as u64
        );
        assert_eq!(env.flags, mxcsr::PE);
        let mut env = FloatEnv::new(DEFAULT);
        assert_eq!(
            env.convert(u64::from(1.5f32.to_bits()), Width::S, Width::D),
            1.5f64.to_bits()
        );
        assert_eq!(env.flags, 0);
    }
}
