//! x87 arithmetic on 80-bit extended values: the basic operations under the
//! control word's precision and rounding control, compares, conversions to
//! and from memory formats, and the partial remainder.
//!
//! `rustc_apfloat` does the IEEE arithmetic. An x87 result is rounded once, to
//! the precision the control word selects (24, 53 or 64 bits) but with the
//! extended exponent range, which no apfloat format has. So each operation is
//! first done in binary128 rounding to odd (toward zero, then the last bit set
//! if anything was lost): 113 bits hold every sum and quotient of 64-bit
//! significands to within that last bit, and rounding to odd with at least two
//! spare bits makes the second rounding, to the target precision in the
//! caller's mode, the correctly rounded result (Boldo and Melquiond). The
//! target precisions are formats of our own ([`Extended53`], [`Extended24`]).
//!
//! Transcendental instructions are computed on the host's `f64` and so carry
//! 53 bits, not the 64 a real x87 delivers; see [`transcendental`].

use std::cmp::Ordering;

use rustc_apfloat::ieee::{Double, Quad, Semantics, Single, X87DoubleExtended};
use rustc_apfloat::{Float, FloatConvert, Round, Status};

use crate::state::fsw;

/// An 80-bit extended value as software sees it.
pub type F80 = X87DoubleExtended;

/// A 53-bit significand with the extended exponent range: what precision
/// control "double" rounds to.
#[derive(Debug)]
pub struct Extended53S;
impl Semantics for Extended53S {
    const BITS: usize = 1 + 15 + 52;
    const EXP_BITS: usize = 15;
}
/// A 24-bit significand with the extended exponent range.
#[derive(Debug)]
pub struct Extended24S;
impl Semantics for Extended24S {
    const BITS: usize = 1 + 15 + 23;
    const EXP_BITS: usize = 15;
}
type Extended53 = rustc_apfloat::ieee::IeeeFloat<Extended53S>;
type Extended24 = rustc_apfloat::ieee::IeeeFloat<Extended24S>;

const SIGN: u128 = 1 << 79;
const EXP_MASK: u128 = 0x7fff << 64;
const INTEGER_BIT: u64 = 1 << 63;
const QUIET_BIT: u64 = 1 << 62;

/// The "real indefinite": negative, quiet, integer bit set, no payload.
pub const INDEFINITE: u128 = SIGN | EXP_MASK | (0xc000_0000_0000_0000);
/// +0.
pub const ZERO: u128 = 0;
/// +1.
pub const ONE: u128 = (0x3fff << 64) | INTEGER_BIT as u128;

/// What an 80-bit register holds, as the tag word and FXAM see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// ±0.
    Zero,
    /// A denormal, or a pseudo-denormal (exponent 0, integer bit set).
    Denormal,
    /// A normal number.
    Normal,
    /// ±∞.
    Infinity,
    /// A quiet NaN.
    QuietNan,
    /// A signaling NaN.
    SignalingNan,
    /// An encoding the 387 and later reject: pseudo-NaN, pseudo-infinity,
    /// unnormal. Operations on it are invalid.
    Unsupported,
}

/// The class of `v`.
pub fn classify(v: u128) -> Class {
    let exp = exponent(v);
    let sig = significand(v);
    let integer = sig & INTEGER_BIT != 0;
    match exp {
        0 if sig == 0 => Class::Zero,
        0 => Class::Denormal,
        0x7fff if !integer => Class::Unsupported,
        0x7fff if sig << 1 == 0 => Class::Infinity,
        0x7fff if sig & QUIET_BIT != 0 => Class::QuietNan,
        0x7fff => Class::SignalingNan,
        _ if !integer => Class::Unsupported,
        _ => Class::Normal,
    }
}

/// The biased exponent.
pub fn exponent(v: u128) -> u16 {
    ((v >> 64) & 0x7fff) as u16
}

/// The 64-bit significand, integer bit included.
pub fn significand(v: u128) -> u64 {
    v as u64
}

/// Whether the sign bit is set.
pub fn negative(v: u128) -> bool {
    v & SIGN != 0
}

/// `v` with the sign bit cleared.
pub fn abs(v: u128) -> u128 {
    v & !SIGN & ((1 << 80) - 1)
}

/// `v` with the sign flipped.
pub fn negate(v: u128) -> u128 {
    (v ^ SIGN) & ((1 << 80) - 1)
}

/// Whether `v` is a number: neither a NaN nor an unsupported encoding.
pub fn is_number(v: u128) -> bool {
    !matches!(
        classify(v),
        Class::QuietNan | Class::SignalingNan | Class::Unsupported
    )
}

/// Whether `v` is a NaN (quiet or signaling).
pub fn is_nan(v: u128) -> bool {
    matches!(classify(v), Class::QuietNan | Class::SignalingNan)
}

/// `v` with its quiet bit set.
pub fn quiet(v: u128) -> u128 {
    v | u128::from(QUIET_BIT)
}

/// The x87 control word's rounding control as an apfloat mode.
pub fn rounding(fcw: u16) -> Round {
    match (fcw >> 10) & 3 {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

/// The x87 exception flags an apfloat status stands for.
fn flags_of(status: Status) -> u16 {
    let mut f = 0;
    if status.contains(Status::INVALID_OP) {
        f |= fsw::IE;
    }
    if status.contains(Status::DIV_BY_ZERO) {
        f |= fsw::ZE;
    }
    if status.contains(Status::OVERFLOW) {
        f |= fsw::OE;
    }
    if status.contains(Status::UNDERFLOW) {
        f |= fsw::UE;
    }
    if status.contains(Status::INEXACT) {
        f |= fsw::PE;
    }
    f
}

/// A result and what producing it raised: exception flags ([`fsw`] bits)
/// and C1, which says the result was rounded up in magnitude.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The 80-bit result.
    pub value: u128,
    /// [`fsw::EXCEPTIONS`] bits raised.
    pub flags: u16,
    /// The rounding increased the magnitude.
    pub rounded_up: bool,
}

impl Outcome {
    fn exact(value: u128) -> Outcome {
        Outcome {
            value,
            flags: 0,
            rounded_up: false,
        }
    }

    fn invalid() -> Outcome {
        Outcome {
            value: INDEFINITE,
            flags: fsw::IE,
            rounded_up: false,
        }
    }
}

/// The four basic operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// a + b.
    Add,
    /// a − b.
    Sub,
    /// a × b.
    Mul,
    /// a ÷ b.
    Div,
}

fn to_quad(v: u128) -> Quad {
    let mut loses = false;
    let x = F80::from_bits(v);
    x.convert_r(Round::NearestTiesToEven, &mut loses).value
}

/// The NaN an operation on `a` and `b` gives when either is a NaN: a quiet
/// one over a signaling one, else the one with the larger significand (the
/// positive one on a tie), quieted; a signaling NaN raises IE.
fn nan_operands(a: u128, b: u128) -> Option<Outcome> {
    let (na, nb) = (is_nan(a), is_nan(b));
    if !na && !nb {
        return None;
    }
    let signaling = classify(a) == Class::SignalingNan || classify(b) == Class::SignalingNan;
    let (qa, qb) = (
        classify(a) == Class::QuietNan,
        classify(b) == Class::QuietNan,
    );
    let pick = match (na, nb) {
        (true, true) if qa != qb => {
            if qa {
                a
            } else {
                b
            }
        }
        (true, true) => {
            let (sa, sb) = (significand(a) | QUIET_BIT, significand(b) | QUIET_BIT);
            match sa.cmp(&sb) {
                Ordering::Less => b,
                Ordering::Greater => a,
                // Equal significands: the positive one.
                Ordering::Equal if negative(a) => b,
                Ordering::Equal => a,
            }
        }
        (true, false) => a,
        _ => b,
    };
    Some(Outcome {
        value: quiet(pick),
        flags: if signaling { fsw::IE } else { 0 },
        rounded_up: false,
    })
}

/// The denormal-operand flag for the inputs.
fn denormal_flag(values: &[u128]) -> u16 {
    if values.iter().any(|&v| classify(v) == Class::Denormal) {
        fsw::DE
    } else {
        0
    }
}

/// Rounds an exact-to-odd binary128 value to the precision and mode of
/// `fcw`, with the x87 overflow and underflow rules. `inexact` says the
/// binary128 value already lost bits; `overflowed` that the exact result was
/// beyond binary128's range.
fn round_to_control(q: Quad, inexact: bool, overflowed: bool, fcw: u16) -> Outcome {
    round_to(q, inexact, overflowed, (fcw >> 8) & 3, rounding(fcw))
}

fn round_to(q: Quad, inexact: bool, overflowed: bool, precision: u16, round: Round) -> Outcome {
    let negative_result = q.is_negative();
    if overflowed {
        // Beyond every finite value: infinity, or the largest finite value of
        // the precision when the mode rounds toward zero.
        let toward_zero = match round {
            Round::TowardZero => true,
            Round::TowardPositive => negative_result,
            Round::TowardNegative => !negative_result,
            _ => false,
        };
        let value = if toward_zero {
            largest(precision) | if negative_result { SIGN } else { 0 }
        } else {
            (SIGN * u128::from(negative_result)) | EXP_MASK | u128::from(INTEGER_BIT)
        };
        return Outcome {
            value,
            flags: fsw::OE | fsw::PE,
            rounded_up: !toward_zero,
        };
    }
    let mut loses = false;
    let r: rustc_apfloat::StatusAnd<F80> = match precision {
        0 => {
            let r: rustc_apfloat::StatusAnd<Extended24> = q.convert_r(round, &mut loses);
            r.status.and(r.value.convert(&mut loses).value)
        }
        2 => {
            let r: rustc_apfloat::StatusAnd<Extended53> = q.convert_r(round, &mut loses);
            r.status.and(r.value.convert(&mut loses).value)
        }
        _ => q.convert_r(round, &mut loses),
    };
    let mut status = r.status;
    if inexact {
        status |= Status::INEXACT;
    }
    // Tininess is detected before rounding: the exact value is below the
    // smallest normal (binary128 has the same exponent range).
    let tiny = q.is_finite_non_zero() && q.abs() < Quad::smallest_normalized();
    status &= !Status::UNDERFLOW;
    if tiny && status.contains(Status::INEXACT) {
        status |= Status::UNDERFLOW;
    }
    let value = r.value.to_bits();
    let rounded_up = status.contains(Status::INEXACT) && to_quad(value).abs() > q.abs();
    Outcome {
        value,
        flags: flags_of(status),
        rounded_up,
    }
}

/// The largest finite magnitude at precision control `precision`.
fn largest(precision: u16) -> u128 {
    let bits = match precision {
        0 => 24,
        2 => 53,
        _ => 64,
    };
    (0x7ffe << 64) | u128::from(u64::MAX << (64 - bits))
}

/// A binary128 result rounded to odd: toward zero, then the last bit set if
/// anything was lost. Returns it, whether it is inexact, and whether the
/// exact result overflowed.
fn odd(r: rustc_apfloat::StatusAnd<Quad>) -> (Quad, bool, bool) {
    let inexact = r.status.contains(Status::INEXACT);
    // Rounding toward zero stops at the largest finite value without always
    // calling it overflow; no quotient, product or sum of 64-bit
    // significands lands exactly there, so it means overflow.
    let overflowed =
        r.status.contains(Status::OVERFLOW) || (inexact && r.value.abs() == Quad::largest());
    let mut v = r.value;
    if inexact && v.is_finite() {
        // A zero that lost bits becomes the smallest denormal, still tiny
        // and inexact.
        v = Quad::from_bits(v.to_bits() | 1);
    }
    (v, inexact, overflowed)
}

/// Rejects unsupported encodings: the result is the indefinite, IE.
fn unsupported(values: &[u128]) -> bool {
    values.iter().any(|&v| classify(v) == Class::Unsupported)
}

/// `a op b` as the x87 computes it under control word `fcw`.
pub fn arithmetic(op: Arith, a: u128, b: u128, fcw: u16) -> Outcome {
    if unsupported(&[a, b]) {
        return Outcome::invalid();
    }
    if let Some(nan) = nan_operands(a, b) {
        return nan;
    }
    let (ca, cb) = (classify(a), classify(b));
    let infinite = |c| c == Class::Infinity;
    let zero = |c| c == Class::Zero;
    let invalid = match op {
        Arith::Add => infinite(ca) && infinite(cb) && negative(a) != negative(b),
        Arith::Sub => infinite(ca) && infinite(cb) && negative(a) == negative(b),
        Arith::Mul => (infinite(ca) && zero(cb)) || (zero(ca) && infinite(cb)),
        Arith::Div => (infinite(ca) && infinite(cb)) || (zero(ca) && zero(cb)),
    };
    if invalid {
        return Outcome::invalid();
    }
    let denormal = denormal_flag(&[a, b]);
    if op == Arith::Div && zero(cb) && !infinite(ca) {
        // A denormal dividend goes unreported beside the zero divisor.
        return Outcome {
            value: EXP_MASK
                | u128::from(INTEGER_BIT)
                | if negative(a) != negative(b) { SIGN } else { 0 },
            flags: fsw::ZE,
            rounded_up: false,
        };
    }
    let (x, y) = (to_quad(a), to_quad(b));
    let round = Round::TowardZero;
    let exact = match op {
        Arith::Add => x.add_r(y, round),
        Arith::Sub => x.sub_r(y, round),
        Arith::Mul => x.mul_r(y, round),
        Arith::Div => x.div_r(y, round),
    };
    let (mut q, inexact, overflowed) = odd(exact);
    // An exact zero's sign depends on the rounding mode (x − x is −0 when
    // rounding down): redo it in the real mode, which is exact.
    if q.is_zero() {
        let round = rounding(fcw);
        q = match op {
            Arith::Add => x.add_r(y, round).value,
            Arith::Sub => x.sub_r(y, round).value,
            Arith::Mul => x.mul_r(y, round).value,
            Arith::Div => x.div_r(y, round).value,
        };
    }
    let mut out = round_to_control(q, inexact, overflowed, fcw);
    out.flags |= denormal;
    out
}

/// The square root of `v`.
pub fn sqrt(v: u128, fcw: u16) -> Outcome {
    if unsupported(&[v]) {
        return Outcome::invalid();
    }
    if let Some(nan) = nan_operands(v, v) {
        return nan;
    }
    match classify(v) {
        Class::Zero => return Outcome::exact(v),
        Class::Infinity if !negative(v) => return Outcome::exact(v),
        _ if negative(v) => return Outcome::invalid(),
        _ => {}
    }
    let denormal = denormal_flag(&[v]);
    // v = m × 2^e with m the 64-bit significand as an integer; make e even.
    let mut m = significand(v);
    let mut e = i32::from(exponent(v).max(1)) - 16383 - 63;
    let shift = m.leading_zeros() as i32;
    m <<= shift;
    e -= shift;
    let mut radicand = u128::from(m) << 64;
    e -= 64;
    if e % 2 != 0 {
        radicand >>= 1;
        e += 1;
    }
    // Four more digit pairs of zeros give a root of 67 or 68 bits: more
    // than the 66 rounding to odd needs for a 64-bit result.
    const EXTRA: i32 = 4;
    let (root, rest) = isqrt_with_remainder(radicand, EXTRA as u32);
    let mut bits = root;
    if rest != 0 {
        bits |= 1;
    }
    // The binary128 value root × 2^(e/2 − EXTRA), exact and rounded to odd.
    let q = Quad::from_u128(bits).value.scalbn(e / 2 - EXTRA);
    let mut out = round_to_control(q, rest != 0, false, fcw);
    out.flags |= denormal;
    out
}

/// The integer square root of `n × 4^extra` and its remainder, digit by
/// digit (the remainder stays below twice the root, so it fits).
fn isqrt_with_remainder(n: u128, extra: u32) -> (u128, u128) {
    let mut root = 0u128;
    let mut rest = 0u128;
    for k in (0..64 + extra).rev() {
        let pair = if k >= extra {
            (n >> (2 * (k - extra))) & 3
        } else {
            0
        };
        rest = (rest << 2) | pair;
        let trial = (root << 2) | 1;
        root <<= 1;
        if rest >= trial {
            rest -= trial;
            root |= 1;
        }
    }
    (root, rest)
}

/// The result of comparing two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compared {
    /// a > b.
    Greater,
    /// a < b.
    Less,
    /// a = b.
    Equal,
    /// A NaN was involved.
    Unordered,
}

/// Compares `a` with `b`; `quiet_nans_signal` for FCOM (every NaN raises IE)
/// rather than FUCOM (only signaling ones do). Returns the relation and the
/// flags.
pub fn compare(a: u128, b: u128, quiet_nans_signal: bool) -> (Compared, u16) {
    if unsupported(&[a, b]) {
        return (Compared::Unordered, fsw::IE);
    }
    if is_nan(a) || is_nan(b) {
        let signaling = classify(a) == Class::SignalingNan || classify(b) == Class::SignalingNan;
        let flags = if signaling || quiet_nans_signal {
            fsw::IE
        } else {
            0
        };
        return (Compared::Unordered, flags);
    }
    let flags = denormal_flag(&[a, b]);
    let relation = match F80::from_bits(a).partial_cmp(&F80::from_bits(b)) {
        Some(Ordering::Greater) => Compared::Greater,
        Some(Ordering::Less) => Compared::Less,
        _ => Compared::Equal,
    };
    (relation, flags)
}

/// A single (`bytes` 4) or double (8) from memory as an extended value. A
/// NaN keeps its quiet bit (so a signaling one is still seen as such by the
/// operation using it); a denormal raises DE.
pub fn from_memory_float(bits: u64, bytes: u8) -> Outcome {
    let mut loses = false;
    let (value, denormal) = if bytes == 4 {
        let x = Single::from_bits(u128::from(bits as u32));
        let r: F80 = if x.is_nan() {
            return Outcome {
                value: nan_widened(bits, 23, 31),
                flags: 0,
                rounded_up: false,
            };
        } else {
            x.convert_r(Round::NearestTiesToEven, &mut loses).value
        };
        (r, x.is_denormal())
    } else {
        let x = Double::from_bits(u128::from(bits));
        if x.is_nan() {
            return Outcome {
                value: nan_widened(bits, 52, 63),
                flags: 0,
                rounded_up: false,
            };
        }
        let r: F80 = x.convert_r(Round::NearestTiesToEven, &mut loses).value;
        (r, x.is_denormal())
    };
    Outcome {
        value: value.to_bits(),
        flags: if denormal { fsw::DE } else { 0 },
        rounded_up: false,
    }
}

/// A NaN of a narrower format widened: its fraction (quiet bit included)
/// moves to the top of the significand.
fn nan_widened(bits: u64, fraction_bits: u32, sign_at: u32) -> u128 {
    let fraction = bits & ((1 << fraction_bits) - 1);
    let sign = (bits >> sign_at) & 1;
    (u128::from(sign) << 79)
        | EXP_MASK
        | u128::from(INTEGER_BIT | (fraction << (63 - fraction_bits)))
}

/// An extended value stored as a single (`bytes` 4) or double (8), rounded by
/// the control word's rounding control (precision control does not apply).
pub fn to_memory_float(v: u128, bytes: u8, fcw: u16) -> (u64, u16, bool) {
    let (fraction_bits, exp_bits) = if bytes == 4 { (23, 8) } else { (52, 11) };
    let width = 1 + exp_bits + fraction_bits;
    let sign = u64::from(negative(v)) << (width - 1);
    let exp_all = ((1u64 << exp_bits) - 1) << fraction_bits;
    match classify(v) {
        Class::Unsupported => {
            let indefinite = sign_bit(width) | exp_all | (1 << (fraction_bits - 1));
            return (indefinite, fsw::IE, false);
        }
        Class::QuietNan | Class::SignalingNan => {
            let fraction = (significand(v) & !INTEGER_BIT) >> (63 - fraction_bits);
            let flags = if classify(v) == Class::SignalingNan {
                fsw::IE
            } else {
                0
            };
            return (
                sign | exp_all | fraction | (1 << (fraction_bits - 1)),
                flags,
                false,
            );
        }
        _ => {}
    }
    // Stores do not report denormal operands.
    let denormal = 0;
    let q = to_quad(v);
    let round = rounding(fcw);
    let mut loses = false;
    let (bits, status) = if bytes == 4 {
        let r: rustc_apfloat::StatusAnd<Single> = q.convert_r(round, &mut loses);
        (r.value.to_bits() as u64, r.status)
    } else {
        let r: rustc_apfloat::StatusAnd<Double> = q.convert_r(round, &mut loses);
        (r.value.to_bits() as u64, r.status)
    };
    let mut status = status;
    // apfloat stops at the largest finite value under a mode toward zero
    // without always calling it overflow; x86 does when the exact value is
    // at or beyond 2^(emax+1).
    let largest = exp_all - 1;
    let emax = (1i32 << (exp_bits - 1)) - 1;
    let beyond = q.abs() >= Quad::from_u128(1).value.scalbn(emax + 1);
    if bits & !sign_bit(width) == largest && beyond {
        status |= Status::OVERFLOW | Status::INEXACT;
    }
    let tiny = q.is_finite_non_zero() && below_normal(q, exp_bits);
    status &= !Status::UNDERFLOW;
    if tiny && status.contains(Status::INEXACT) {
        status |= Status::UNDERFLOW;
    }
    let widened = from_memory_float(bits, bytes).value;
    let rounded_up = status.contains(Status::INEXACT) && to_quad(widened).abs() > q.abs();
    (bits, flags_of(status) | denormal, rounded_up)
}

fn sign_bit(width: u32) -> u64 {
    1u64 << (width - 1)
}

fn below_normal(q: Quad, exp_bits: u32) -> bool {
    let emin = 2 - (1i32 << (exp_bits - 1));
    q.abs() < Quad::from_u128(1).value.scalbn(emin)
}

/// An integer as an extended value (always exact).
pub fn from_int(v: i64) -> u128 {
    F80::from_i128(i128::from(v)).value.to_bits()
}

/// An extended value rounded to an integer of `bytes` bytes (`truncate`:
/// toward zero, as FISTTP does). Out of range, NaN or unsupported: the
/// "integer indefinite" (the most negative value) with IE.
pub fn to_int(v: u128, bytes: u8, fcw: u16, truncate: bool) -> (u64, u16, bool) {
    let indefinite = 1u64 << (u32::from(bytes) * 8 - 1);
    match classify(v) {
        Class::Unsupported | Class::QuietNan | Class::SignalingNan | Class::Infinity => {
            return (indefinite, fsw::IE, false);
        }
        _ => {}
    }
    // Integer stores do not report denormal operands.
    let denormal = 0;
    let round = if truncate {
        Round::TowardZero
    } else {
        rounding(fcw)
    };
    let x = F80::from_bits(v);
    let r = x.round_to_integral(round);
    let integral = r.value;
    let mut exact = false;
    let n = integral.to_i128_r(128, Round::TowardZero, &mut exact).value;
    let bits = u32::from(bytes) * 8;
    let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
    if n < min || n > max {
        return (indefinite, fsw::IE | denormal, false);
    }
    let inexact = r.status.contains(Status::INEXACT);
    let rounded_up = inexact && integral.abs() > x.abs();
    let flags = if inexact { fsw::PE } else { 0 } | denormal;
    (
        (n as i64 as u64) & (u64::MAX >> (64 - bits)),
        flags,
        rounded_up,
    )
}

/// FRNDINT: `v` rounded to an integer by the rounding control.
pub fn round_to_integer(v: u128, fcw: u16) -> Outcome {
    if unsupported(&[v]) {
        return Outcome::invalid();
    }
    if let Some(nan) = nan_operands(v, v) {
        return nan;
    }
    if matches!(classify(v), Class::Zero | Class::Infinity) {
        return Outcome::exact(v);
    }
    let x = F80::from_bits(v);
    let r = x.round_to_integral(rounding(fcw));
    let inexact = r.status.contains(Status::INEXACT);
    Outcome {
        value: r.value.to_bits(),
        flags: denormal_flag(&[v]) | if inexact { fsw::PE } else { 0 },
        rounded_up: inexact && r.value.abs() > x.abs(),
    }
}

/// FSCALE: `a` × 2^trunc(`b`).
pub fn scale(a: u128, b: u128, fcw: u16) -> Outcome {
    if unsupported(&[a, b]) {
        return Outcome::invalid();
    }
    if let Some(nan) = nan_operands(a, b) {
        return nan;
    }
    let (ca, cb) = (classify(a), classify(b));
    let denormal = denormal_flag(&[a, b]);
    if cb == Class::Infinity {
        let out = match (ca, negative(b)) {
            // 0 × 2^+∞ and ∞ × 2^−∞ are invalid.
            (Class::Zero, false) | (Class::Infinity, true) => return Outcome::invalid(),
            (Class::Zero | Class::Infinity, _) => a,
            (_, false) => EXP_MASK | u128::from(INTEGER_BIT) | (a & SIGN),
            (_, true) => a & SIGN,
        };
        return Outcome {
            value: out,
            flags: denormal,
            rounded_up: false,
        };
    }
    if matches!(ca, Class::Zero | Class::Infinity) {
        return Outcome {
            value: a,
            flags: denormal,
            rounded_up: false,
        };
    }
    let factor = F80::from_bits(b).round_to_integral(Round::TowardZero).value;
    let mut exact = false;
    let n = factor
        .to_i128_r(32, Round::TowardZero, &mut exact)
        .value
        .clamp(-70000, 70000) as i32;
    // Scaling in binary128 is exact until it leaves the range; rounding to
    // the precision control then gives the x87 result and flags.
    let q = to_quad(a);
    let scaled = q.scalbn(n);
    let overflowed = scaled.is_infinite();
    let underflowed_to_zero = scaled.is_zero();
    let (q2, inexact) = if underflowed_to_zero {
        // Lost below binary128's range: binary128's smallest denormal, far
        // below the extended one, stands in with the sign and the
        // stickiness.
        (Quad::SMALLEST.copy_sign(q), true)
    } else {
        (scaled, false)
    };
    let mut out = round_to_control(q2, inexact, overflowed, fcw | 0x300);
    out.flags |= denormal;
    out
}

/// FXTRACT: (exponent, significand) of `v`, as two extended values.
pub fn extract(v: u128) -> (Outcome, u128) {
    match classify(v) {
        Class::Unsupported => return (Outcome::invalid(), INDEFINITE),
        Class::QuietNan | Class::SignalingNan => {
            let nan = nan_operands(v, v).expect("a NaN");
            return (nan, nan.value);
        }
        Class::Zero => {
            let minus_infinity = SIGN | EXP_MASK | u128::from(INTEGER_BIT);
            return (
                Outcome {
                    value: minus_infinity,
                    flags: fsw::ZE,
                    rounded_up: false,
                },
                v,
            );
        }
        Class::Infinity => {
            return (Outcome::exact(abs(v)), v);
        }
        _ => {}
    }
    let x = F80::from_bits(v);
    let e = x.ilogb();
    let significand = x.scalbn(-e).to_bits();
    (
        Outcome {
            value: from_int(i64::from(e)),
            flags: denormal_flag(&[v]),
            rounded_up: false,
        },
        significand,
    )
}

/// FPREM (`nearest` false: the quotient truncated, as fmod) and FPREM1
/// (`nearest`: IEEE remainder). Returns the partial remainder, the flags, the
/// low three quotient bits and whether the reduction is incomplete (C2).
pub fn partial_remainder(a: u128, b: u128, nearest: bool) -> (Outcome, u8, bool) {
    if unsupported(&[a, b]) {
        return (Outcome::invalid(), 0, false);
    }
    if let Some(nan) = nan_operands(a, b) {
        return (nan, 0, false);
    }
    let (ca, cb) = (classify(a), classify(b));
    if ca == Class::Infinity || cb == Class::Zero {
        return (Outcome::invalid(), 0, false);
    }
    let denormal = denormal_flag(&[a, b]);
    if ca == Class::Zero || cb == Class::Infinity {
        return (
            Outcome {
                value: a,
                flags: denormal,
                rounded_up: false,
            },
            0,
            false,
        );
    }
    let (x, y) = (F80::from_bits(a), F80::from_bits(b));
    let (ex, ey) = (x.ilogb(), y.ilogb());
    let d = ex - ey;
    if d >= 64 {
        // Partial: reduce by y × 2^(d − k) with k between 32 and 63, as the
        // hardware does, so the remainder is exact.
        let k = 32 + (d % 32);
        let n = d - k;
        let y_scaled = y.scalbn(n);
        let r = x.c_fmod(y_scaled).value;
        return (
            Outcome {
                value: r.to_bits(),
                flags: denormal,
                rounded_up: false,
            },
            0,
            true,
        );
    }
    // Complete: the quotient fits in 64 bits, so integer arithmetic on the
    // significands gives the remainder and quotient exactly.
    let r = if nearest {
        x.ieee_rem(y).value
    } else {
        x.c_fmod(y).value
    };
    // Quotient bits from (x − r) / y, exact as an integer of at most 64 bits.
    let quotient = (x - r).value / y;
    let mut exact = false;
    let qn = quotient
        .value
        .abs()
        .round_to_integral(Round::NearestTiesToEven)
        .value
        .to_u128_r(128, Round::TowardZero, &mut exact)
        .value;
    // A zero remainder takes the dividend's sign.
    let value = if r.is_zero() {
        r.to_bits() & !SIGN | (a & SIGN)
    } else {
        r.to_bits()
    };
    (
        Outcome {
            value,
            flags: denormal,
            rounded_up: false,
        },
        (qn & 7) as u8,
        false,
    )
}

/// The transcendental instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transcendental {
    /// 2^x − 1 (F2XM1).
    Exp2MinusOne,
    /// y × log2(x) (FYL2X).
    YLog2X,
    /// y × log2(x + 1) (FYL2XP1).
    YLog2XPlusOne,
    /// atan(y / x) with the quadrant (FPATAN).
    Atan,
    /// sin x.
    Sin,
    /// cos x.
    Cos,
    /// tan x (FPTAN pushes 1 after it).
    Tan,
}

/// A transcendental function of `x` (and `y` for the two-operand ones),
/// computed on the host's `f64`: 53 significant bits rather than the x87's
/// 64. (No well-kept crate offers extended-precision transcendental
/// functions; a real x87 is itself only accurate to about one unit in the
/// last place, so software depending on exact bits does not exist.)
pub fn transcendental(f: Transcendental, x: u128, y: u128, fcw: u16) -> Outcome {
    let two = matches!(
        f,
        Transcendental::YLog2X | Transcendental::YLog2XPlusOne | Transcendental::Atan
    );
    let operands: &[u128] = if two { &[x, y] } else { &[x] };
    if unsupported(operands) {
        return Outcome::invalid();
    }
    if let Some(nan) = nan_operands(x, if two { y } else { x }) {
        return nan;
    }
    let denormal = denormal_flag(operands);
    let to_f64 = |v: u128| -> f64 {
        let mut loses = false;
        let d: Double = F80::from_bits(v)
            .convert_r(Round::NearestTiesToEven, &mut loses)
            .value;
        f64::from_bits(d.to_bits() as u64)
    };
    let (fx, fy) = (to_f64(x), to_f64(y));
    let result = match f {
        Transcendental::Exp2MinusOne => {
            if fx.abs() > 1.0 {
                // Outside −1..1 the result is undefined; the hardware still
                // gives something, this is the mathematical value.
            }
            (fx * std::f64::consts::LN_2).exp_m1()
        }
        Transcendental::YLog2X => {
            if fx < 0.0 || (fx == 0.0 && fy == 0.0) || (fx.is_infinite() && fy == 0.0) {
                return Outcome::invalid();
            }
            if fx == 0.0 && fy != 0.0 && fy.is_finite() {
                let inf = EXP_MASK | u128::from(INTEGER_BIT);
                return Outcome {
                    value: if fy > 0.0 { inf | SIGN } else { inf },
                    flags: fsw::ZE | denormal,
                    rounded_up: false,
                };
            }
            if fx == 1.0 && fy.is_infinite() {
                return Outcome::invalid();
            }
            fy * fx.log2()
        }
        Transcendental::YLog2XPlusOne => fy * fx.ln_1p() / std::f64::consts::LN_2,
        Transcendental::Atan => fy.atan2(fx),
        Transcendental::Sin => fx.sin(),
        Transcendental::Cos => fx.cos(),
        Transcendental::Tan => fx.tan(),
    };
    if result.is_nan() {
        return Outcome::invalid();
    }
    let value = from_memory_float(result.to_bits(), 8).value;
    // Zero in, zero out (sin, tan, 2^x − 1) is exact; everything else a
    // real part reports as inexact.
    let exact = result == 0.0 || (f == Transcendental::Cos && fx == 0.0);
    let _ = fcw;
    Outcome {
        value,
        flags: denormal | if exact { 0 } else { fsw::PE },
        rounded_up: false,
    }
}

/// An 18-digit packed BCD value (10 bytes) as an extended value.
pub fn from_bcd(bytes: u128) -> u128 {
    let mut n: i64 = 0;
    for k in (0..9).rev() {
        let byte = (bytes >> (8 * k)) as u8;
        n = n * 100 + i64::from(byte >> 4) * 10 + i64::from(byte & 15);
    }
    let v = from_int(n);
    if bytes >> 79 & 1 != 0 { v | SIGN } else { v }
}

/// An extended value as 18-digit packed BCD, rounded by the rounding control;
/// out of range or not a number: the BCD indefinite with IE.
pub fn to_bcd(v: u128, fcw: u16) -> (u128, u16, bool) {
    let indefinite = 0xffff_c000_0000_0000_0000u128;
    let (n, flags, rounded_up) = to_int(v, 8, fcw, false);
    let n = n as i64;
    if flags & fsw::IE != 0 || n.unsigned_abs() > 999_999_999_999_999_999 {
        return (indefinite, fsw::IE, false);
    }
    let mut magnitude = n.unsigned_abs();
    let mut out = 0u128;
    for k in 0..9 {
        let low = magnitude % 10;
        let high = (magnitude / 10) % 10;
        magnitude /= 100;
        out |= u128::from((high << 4) | low) << (8 * k);
    }
    if negative(v) {
        out |= 1 << 79;
    }
    (out, flags, rounded_up)
}

/// The constants FLD1 … FLDZ load, as 66-bit-exact extended values: the
/// value rounded to nearest and, where it differs, the value rounding down
/// (toward zero) gives.
pub fn constant(which: Constant, fcw: u16) -> u128 {
    // (nearest, rounded down) significands with their exponents.
    let (exp, nearest, down): (u16, u64, u64) = match which {
        Constant::One => (0x3fff, INTEGER_BIT, INTEGER_BIT),
        Constant::Zero => return ZERO,
        Constant::Pi => (0x4000, 0xc90f_daa2_2168_c235, 0xc90f_daa2_2168_c234),
        Constant::Log2Ten => (0x4000, 0xd49a_784b_cd1b_8afe, 0xd49a_784b_cd1b_8afe),
        Constant::Log2E => (0x3fff, 0xb8aa_3b29_5c17_f0bc, 0xb8aa_3b29_5c17_f0bb),
        Constant::Log10Two => (0x3ffd, 0x9a20_9a84_fbcf_f799, 0x9a20_9a84_fbcf_f798),
        Constant::LnTwo => (0x3ffe, 0xb172_17f7_d1cf_79ac, 0xb172_17f7_d1cf_79ab),
    };
    let round = rounding(fcw);
    let sig = match round {
        Round::NearestTiesToEven => nearest,
        Round::TowardPositive => {
            // Rounding up: the next value above the truncated one (all are
            // irrational but one and zero).
            if which == Constant::One {
                nearest
            } else {
                down + 1
            }
        }
        _ => down,
    };
    (u128::from(exp) << 64) | u128::from(sig)
}

/// The constants of FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2 and FLDZ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "named by what they are")]
pub enum Constant {
    One,
    Log2Ten,
    Log2E,
    Pi,
    Log10Two,
    LnTwo,
    Zero,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> u128 {
        from_memory_float(v.to_bits(), 8).value
    }

    fn back(v: u128) -> f64 {
        f64::from_bits(to_memory_float(v, 8, 0x37f).0)
    }

    #[test]
    fn basic_operations_round_like_doubles_at_double_precision() {
        let pc53 = 0x27f;
        for (a, b) in [(1.0, 3.0), (2.0, 7.0), (1e300, 1e-300), (0.1, 0.2)] {
            assert_eq!(back(arithmetic(Arith::Div, f(a), f(b), pc53).value), a / b);
            assert_eq!(back(arithmetic(Arith::Add, f(a), f(b), pc53).value), a + b);
            assert_eq!(back(arithmetic(Arith::Mul, f(a), f(b), pc53).value), a * b);
        }
    }

    #[test]
    fn extended_division_keeps_64_bits_and_reports_rounding_up() {
        let third = arithmetic(Arith::Div, ONE, f(3.0), 0x37f);
        assert_eq!(third.value, 0x3ffd_aaaa_aaaa_aaaa_aaab);
        assert_eq!(third.flags, fsw::PE);
        assert!(third.rounded_up);
        let down = arithmetic(Arith::Div, ONE, f(3.0), 0x37f | 0xc00);
        assert_eq!(down.value, 0x3ffd_aaaa_aaaa_aaaa_aaaa);
        assert!(!down.rounded_up);
    }

    #[test]
    fn invalid_operations_give_the_indefinite() {
        let inf = EXP_MASK | u128::from(INTEGER_BIT);
        assert_eq!(arithmetic(Arith::Sub, inf, inf, 0x37f), Outcome::invalid());
        assert_eq!(
            arithmetic(Arith::Div, ZERO, ZERO, 0x37f),
            Outcome::invalid()
        );
        assert_eq!(sqrt(f(-1.0), 0x37f), Outcome::invalid());
        let by_zero = arithmetic(Arith::Div, ONE, ZERO, 0x37f);
        assert_eq!((by_zero.value, by_zero.flags), (inf, fsw::ZE));
    }

    #[test]
    fn square_roots_are_exact_or_correctly_rounded() {
        assert_eq!(sqrt(f(16.0), 0x37f), Outcome::exact(f(4.0)));
        let two = sqrt(f(2.0), 0x37f);
        assert_eq!(two.value, 0x3fff_b504_f333_f9de_6484);
        assert_eq!(two.flags, fsw::PE);
        assert_eq!(back(sqrt(f(2.0), 0x27f).value), 2f64.sqrt());
    }

    #[test]
    fn integers_and_bcd_round_trip() {
        for n in [0i64, 1, -1, 123_456_789, i64::MIN, i64::MAX] {
            assert_eq!(to_int(from_int(n), 8, 0x37f, false).0 as i64, n);
        }
        assert_eq!(to_int(f(2.5), 4, 0x37f, false).0, 2);
        assert_eq!(to_int(f(-2.5), 4, 0x37f, true).0 as u32, (-2i32) as u32);
        assert_eq!(
            to_int(f(1e10), 4, 0x37f, false),
            (0x8000_0000, fsw::IE, false)
        );
        let (bcd, flags, up) = to_bcd(f(-1234.0), 0x37f);
        assert_eq!((bcd, flags, up), ((1 << 79) | 0x1234, 0, false));
        assert_eq!(from_bcd(bcd), f(-1234.0));
    }

    #[test]
    fn remainders_give_quotient_bits() {
        let (r, q, partial) = partial_remainder(f(17.0), f(5.0), false);
        assert_eq!((back(r.value), q, partial), (2.0, 3, false));
        let (r, q, _) = partial_remainder(f(17.0), f(5.0), true);
        assert_eq!((back(r.value), q), (2.0, 3));
        let (r, q, _) = partial_remainder(f(18.0), f(5.0), true);
        assert_eq!((back(r.value), q), (-2.0, 4));
        let (_, _, partial) = partial_remainder(f(1e300), f(3.0), false);
        assert!(partial);
    }

    #[test]
    fn single_and_double_stores_flag_overflow_in_every_mode() {
        let big = f(1e300);
        for rc in 0..4u16 {
            let (_, flags, _) = to_memory_float(big, 4, 0x37f | (rc << 10));
            assert_eq!(flags, fsw::OE | fsw::PE, "rc {rc}");
        }
        let (bits, flags, _) = to_memory_float(f(1.5), 4, 0x37f);
        assert_eq!((bits, flags), (1.5f32.to_bits().into(), 0));
    }
}
