//! Bit-exact arithmetic for the RISC-V F (binary32) and D (binary64) extensions.
//!
//! Every operation takes raw IEEE 754 bit patterns and returns the raw result
//! together with the accrued-exception flags it raised (in `fflags` layout), so
//! the result never depends on the host FPU, its rounding mode or its NaN
//! conventions.
//!
//! # Approach
//!
//! Everything is done with integer arithmetic, in the style of Berkeley
//! SoftFloat (which QEMU and the RISC-V reference model Spike follow):
//!
//! 1. Operands are unpacked into a sign and an exact value `sig * 2^exp`
//!    (subnormals simply have a smaller `sig`).
//! 2. Each operation computes its *exact* result as `sig * 2^exp`, using
//!    `u128` (products of two 53-bit significands fit easily). Where the exact
//!    result does not fit (quotients, square roots, the far-apart addends of an
//!    addition), enough quotient/root bits are kept that the remainder only
//!    matters as a "sticky" bit below the rounding position, which is all
//!    correct rounding needs.
//! 3. One routine, `round_pack`, rounds that value to the destination format
//!    in any of the five RISC-V rounding modes and raises NX/UF/OF. Underflow
//!    uses tininess *after* rounding, and UF is only raised when the result is
//!    also inexact, exactly as RISC-V (via SoftFloat's RISC-V specialisation)
//!    requires.
//!
//! Both formats share the same code, parameterised by a small `Format`
//! descriptor; binary32 values travel in the low bits of a `u64`.
//!
//! NaN results are always the canonical quiet NaN: RISC-V does not propagate
//! NaN payloads.

use core::cmp::Ordering;

/// RISC-V rounding modes, as encoded in `frm` and in the instruction `rm` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundingMode {
    /// RNE: round to nearest, ties to even.
    NearestEven = 0,
    /// RTZ: round towards zero.
    TowardZero = 1,
    /// RDN: round down (towards negative infinity).
    Down = 2,
    /// RUP: round up (towards positive infinity).
    Up = 3,
    /// RMM: round to nearest, ties away from zero (to maximum magnitude).
    NearestMaxMagnitude = 4,
}

impl RoundingMode {
    /// Decodes a 3-bit rounding-mode encoding.
    ///
    /// Returns `None` for the reserved encodings 5 and 6 and for 7 (`DYN`),
    /// which the caller must resolve through `frm` before calling this.
    pub fn from_bits(rm: u32) -> Option<RoundingMode> {
        match rm {
            0 => Some(RoundingMode::NearestEven),
            1 => Some(RoundingMode::TowardZero),
            2 => Some(RoundingMode::Down),
            3 => Some(RoundingMode::Up),
            4 => Some(RoundingMode::NearestMaxMagnitude),
            _ => None,
        }
    }
}

/// Accrued exception flags, in the bit layout of the `fflags` CSR.
pub mod flags {
    /// Inexact.
    pub const NX: u8 = 1;
    /// Underflow.
    pub const UF: u8 = 2;
    /// Overflow.
    pub const OF: u8 = 4;
    /// Divide by zero.
    pub const DZ: u8 = 8;
    /// Invalid operation.
    pub const NV: u8 = 16;
}

use flags::{DZ, NV, NX, OF, UF};

/// The canonical quiet NaN of binary32 (positive, only the quiet bit set).
pub const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// The canonical quiet NaN of binary64 (positive, only the quiet bit set).
pub const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

// ---------------------------------------------------------------------------
// Format description, unpacking and classification
// ---------------------------------------------------------------------------

/// Shape of an IEEE binary interchange format.
#[derive(Clone, Copy, Debug)]
struct Format {
    /// Number of stored fraction bits (23 or 52).
    frac_bits: u32,
    /// Number of exponent bits (8 or 11).
    exp_bits: u32,
}

const F32: Format = Format {
    frac_bits: 23,
    exp_bits: 8,
};
const F64: Format = Format {
    frac_bits: 52,
    exp_bits: 11,
};

impl Format {
    const fn bias(self) -> i32 {
        (1 << (self.exp_bits - 1)) - 1
    }
    /// Unbiased exponent of the smallest normal number.
    const fn emin(self) -> i32 {
        1 - self.bias()
    }
    /// Unbiased exponent of the largest finite number.
    const fn emax(self) -> i32 {
        self.bias()
    }
    const fn exp_field_max(self) -> u64 {
        (1 << self.exp_bits) - 1
    }
    const fn sign_bit(self) -> u64 {
        1 << (self.frac_bits + self.exp_bits)
    }
    const fn frac_mask(self) -> u64 {
        (1 << self.frac_bits) - 1
    }
    const fn quiet_bit(self) -> u64 {
        1 << (self.frac_bits - 1)
    }
    const fn canonical_nan(self) -> u64 {
        (self.exp_field_max() << self.frac_bits) | self.quiet_bit()
    }
    const fn zero(self, sign: bool) -> u64 {
        if sign { self.sign_bit() } else { 0 }
    }
    const fn inf(self, sign: bool) -> u64 {
        self.zero(sign) | (self.exp_field_max() << self.frac_bits)
    }
    const fn max_finite(self, sign: bool) -> u64 {
        self.inf(sign) - 1
    }
}

/// What an operand is, with finite non-zero values as `sig * 2^exp` exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Zero,
    /// Non-zero finite value `sig * 2^exp` (`sig < 2^(frac_bits + 1)`).
    Finite {
        exp: i32,
        sig: u64,
    },
    Inf,
    QNaN,
    SNaN,
}

#[derive(Clone, Copy, Debug)]
struct Unpacked {
    sign: bool,
    kind: Kind,
}

impl Unpacked {
    fn is_nan(self) -> bool {
        matches!(self.kind, Kind::QNaN | Kind::SNaN)
    }
    fn is_snan(self) -> bool {
        self.kind == Kind::SNaN
    }
    fn is_inf(self) -> bool {
        self.kind == Kind::Inf
    }
    fn is_zero(self) -> bool {
        self.kind == Kind::Zero
    }
}

fn unpack(fmt: Format, bits: u64) -> Unpacked {
    let sign = bits & fmt.sign_bit() != 0;
    let exp_field = (bits >> fmt.frac_bits) & fmt.exp_field_max();
    let frac = bits & fmt.frac_mask();
    let kind = if exp_field == fmt.exp_field_max() {
        if frac == 0 {
            Kind::Inf
        } else if frac & fmt.quiet_bit() != 0 {
            Kind::QNaN
        } else {
            Kind::SNaN
        }
    } else if exp_field == 0 {
        if frac == 0 {
            Kind::Zero
        } else {
            Kind::Finite {
                exp: fmt.emin() - fmt.frac_bits as i32,
                sig: frac,
            }
        }
    } else {
        Kind::Finite {
            // exp_field < 2^11, so the cast is lossless.
            exp: exp_field as i32 - fmt.bias() - fmt.frac_bits as i32,
            sig: frac | (1 << fmt.frac_bits),
        }
    };
    Unpacked { sign, kind }
}

/// If any operand is a NaN, the canonical NaN result of an arithmetic
/// operation, with NV when any operand is signalling.
fn propagate_nan(fmt: Format, ops: &[Unpacked]) -> Option<(u64, u8)> {
    if ops.iter().any(|u| u.is_nan()) {
        let fl = if ops.iter().any(|u| u.is_snan()) {
            NV
        } else {
            0
        };
        Some((fmt.canonical_nan(), fl))
    } else {
        None
    }
}

fn classify(fmt: Format, bits: u64) -> u64 {
    let u = unpack(fmt, bits);
    let is_subnormal = (bits >> fmt.frac_bits) & fmt.exp_field_max() == 0;
    let bit = match (u.kind, u.sign) {
        (Kind::Inf, true) => 0,
        (Kind::Finite { .. }, true) if !is_subnormal => 1,
        (Kind::Finite { .. }, true) => 2,
        (Kind::Zero, true) => 3,
        (Kind::Zero, false) => 4,
        (Kind::Finite { .. }, false) if is_subnormal => 5,
        (Kind::Finite { .. }, false) => 6,
        (Kind::Inf, false) => 7,
        (Kind::SNaN, _) => 8,
        (Kind::QNaN, _) => 9,
    };
    1 << bit
}

// ---------------------------------------------------------------------------
// Rounding
// ---------------------------------------------------------------------------

/// Shifts `sig` right by `shift` bits, rounding per `rm`.
///
/// `sticky` stands for extra non-zero bits strictly below bit 0 of `sig`
/// (so it can only break ties and mark inexactness). `negative` is the sign of
/// the value, which the directed modes need. Requires `shift >= 1` when
/// `sticky` is set, and `sig < 2^127` when `shift >= 128`.
///
/// Returns the rounded integer and whether rounding was inexact.
fn round_shift(
    sig: u128,
    sticky: bool,
    shift: u32,
    rm: RoundingMode,
    negative: bool,
) -> (u128, bool) {
    if shift == 0 {
        debug_assert!(!sticky, "sticky bits need at least one shifted-out bit");
        return (sig, false);
    }
    let (q, half_cmp, inexact) = if shift >= 128 {
        // Everything is shifted out; sig < 2^127 <= half an ulp.
        debug_assert!(sig >> 127 == 0);
        (0, Ordering::Less, sig != 0 || sticky)
    } else {
        let rem = sig & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let cmp = match rem.cmp(&half) {
            // Anything below the remainder pushes an exact half above it.
            Ordering::Equal if sticky => Ordering::Greater,
            c => c,
        };
        (sig >> shift, cmp, rem != 0 || sticky)
    };
    let round_up = match rm {
        RoundingMode::NearestEven => {
            half_cmp == Ordering::Greater || (half_cmp == Ordering::Equal && q & 1 == 1)
        }
        RoundingMode::NearestMaxMagnitude => half_cmp != Ordering::Less,
        RoundingMode::TowardZero => false,
        RoundingMode::Down => inexact && negative,
        RoundingMode::Up => inexact && !negative,
    };
    (q + u128::from(round_up), inexact)
}

/// Rounds the exact value `(-1)^sign * (sig + ε) * 2^exp` to `fmt` and packs it.
///
/// `ε` is a positive amount below one unit of `sig` when `sticky` is set and
/// zero otherwise. `sig` must be non-zero (exact zeros have operation-specific
/// signs and are handled by the callers).
fn round_pack(
    fmt: Format,
    sign: bool,
    mut exp: i32,
    mut sig: u128,
    mut sticky: bool,
    rm: RoundingMode,
) -> (u64, u8) {
    debug_assert!(sig != 0);
    // Normalise so the leading one is at bit 126: this keeps at least 70 bits
    // below the rounding point (so sticky is always strictly below it) and
    // keeps sig < 2^127 as round_shift requires.
    let lz = sig.leading_zeros();
    if lz == 0 {
        sticky |= sig & 1 != 0;
        sig >>= 1;
        exp += 1;
    } else {
        sig <<= lz - 1;
        exp -= lz as i32 - 1;
    }
    // The value now lies in [2^e, 2^(e+1)).
    let e = exp + 126;
    let p = fmt.frac_bits;
    // Shift that keeps p+1 significant bits (the full precision).
    let full_shift = 126 - p;
    let sign_bits = fmt.zero(sign);

    if e < fmt.emin() {
        // Below the normal range: the ulp is fixed at 2^(emin - p).
        // Tininess after rounding: the value is tiny unless rounding it to the
        // full precision with an unbounded exponent range reaches 2^emin.
        let tiny = e < fmt.emin() - 1 || {
            let (r, _) = round_shift(sig, sticky, full_shift, rm, sign);
            r < 1u128 << (p + 1)
        };
        let shift = full_shift.saturating_add((fmt.emin() - e) as u32);
        let (m, inexact) = round_shift(sig, sticky, shift, rm, sign);
        let mut fl = 0;
        if inexact {
            fl |= NX;
            if tiny {
                fl |= UF;
            }
        }
        // m <= 2^p; m == 2^p carries into the exponent field and correctly
        // encodes the smallest normal number.
        return (sign_bits | m as u64, fl);
    }

    let (mut m, inexact) = round_shift(sig, sticky, full_shift, rm, sign);
    let mut e = e;
    if m == 1u128 << (p + 1) {
        // Rounding carried out of the significand.
        m >>= 1;
        e += 1;
    }
    if e > fmt.emax() {
        let to_inf = match rm {
            RoundingMode::NearestEven | RoundingMode::NearestMaxMagnitude => true,
            RoundingMode::TowardZero => false,
            RoundingMode::Down => sign,
            RoundingMode::Up => !sign,
        };
        let bits = if to_inf {
            fmt.inf(sign)
        } else {
            fmt.max_finite(sign)
        };
        return (bits, OF | NX);
    }
    let exp_field = (e + fmt.bias()) as u64;
    let bits = sign_bits | (exp_field << p) | (m as u64 & fmt.frac_mask());
    (bits, if inexact { NX } else { 0 })
}

/// The sign of an exact zero sum of operands with opposite signs (IEEE 754
/// 6.3): +0, except -0 when rounding down.
fn exact_zero_sign(rm: RoundingMode) -> bool {
    rm == RoundingMode::Down
}

// ---------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------

/// Adds two exact non-zero values `±sig * 2^exp` (each `sig < 2^107`) and
/// rounds once. Shared by add/sub and fused multiply-add.
fn add_finite(
    fmt: Format,
    a: (bool, i32, u128),
    b: (bool, i32, u128),
    rm: RoundingMode,
) -> (u64, u8) {
    // Normalise both significands to have their leading one at bit 106.
    let norm = |(s, e, m): (bool, i32, u128)| {
        debug_assert!(m != 0 && m >> 107 == 0);
        let sh = m.leading_zeros() - 21;
        (s, e - sh as i32, m << sh)
    };
    let (mut a, mut b) = (norm(a), norm(b));
    if a.1 < b.1 {
        core::mem::swap(&mut a, &mut b);
    }
    let d = (a.1 - b.1) as u32;
    let (big, small, exp) = if d <= 20 {
        // Close exponents: align exactly (at most 127 bits).
        (a.2 << d, b.2, b.1)
    } else {
        // Far apart: |b| < 2^-20 |a|. Give `a` 20 more low bits and OR the
        // bits of `b` that fall below them into its LSB ("jamming"). When any
        // were lost, the jammed sum is odd and both it and the true sum lie
        // strictly between the same two consecutive even integers (in units
        // of 2^exp). The rounding point is at least 70 bits up (the sum keeps
        // its leading one at bit 125 or 126), so both round identically and
        // both are inexact.
        let s = d - 20;
        let small = if s >= 128 {
            1
        } else {
            (b.2 >> s) | u128::from(b.2 & ((1u128 << s) - 1) != 0)
        };
        (a.2 << 20, small, a.1 - 20)
    };
    let (sign, sum) = if a.0 == b.0 {
        (a.0, big + small)
    } else if big >= small {
        (a.0, big - small)
    } else {
        (b.0, small - big)
    };
    if sum == 0 {
        return (fmt.zero(exact_zero_sign(rm)), 0);
    }
    round_pack(fmt, sign, exp, sum, false, rm)
}

fn add(fmt: Format, a: u64, b: u64, negate_b: bool, rm: RoundingMode) -> (u64, u8) {
    let ua = unpack(fmt, a);
    let mut ub = unpack(fmt, b);
    ub.sign ^= negate_b;
    if let Some(r) = propagate_nan(fmt, &[ua, ub]) {
        return r;
    }
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) if ua.sign != ub.sign => (fmt.canonical_nan(), NV),
        (Kind::Inf, _) => (fmt.inf(ua.sign), 0),
        (_, Kind::Inf) => (fmt.inf(ub.sign), 0),
        (Kind::Zero, Kind::Zero) => {
            let sign = if ua.sign == ub.sign {
                ua.sign
            } else {
                exact_zero_sign(rm)
            };
            (fmt.zero(sign), 0)
        }
        // x + 0 is exactly x (x is representable, so no rounding happens).
        (Kind::Zero, _) => (b ^ fmt.zero(negate_b), 0),
        (_, Kind::Zero) => (a, 0),
        (Kind::Finite { exp: ea, sig: sa }, Kind::Finite { exp: eb, sig: sb }) => add_finite(
            fmt,
            (ua.sign, ea, u128::from(sa)),
            (ub.sign, eb, u128::from(sb)),
            rm,
        ),
        _ => unreachable!("NaNs handled above"),
    }
}

fn mul(fmt: Format, a: u64, b: u64, rm: RoundingMode) -> (u64, u8) {
    let ua = unpack(fmt, a);
    let ub = unpack(fmt, b);
    if let Some(r) = propagate_nan(fmt, &[ua, ub]) {
        return r;
    }
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => (fmt.canonical_nan(), NV),
        (Kind::Inf, _) | (_, Kind::Inf) => (fmt.inf(sign), 0),
        (Kind::Zero, _) | (_, Kind::Zero) => (fmt.zero(sign), 0),
        (Kind::Finite { exp: ea, sig: sa }, Kind::Finite { exp: eb, sig: sb }) => {
            // A 53x53-bit product is exact in 106 bits.
            round_pack(
                fmt,
                sign,
                ea + eb,
                u128::from(sa) * u128::from(sb),
                false,
                rm,
            )
        }
        _ => unreachable!("NaNs handled above"),
    }
}

fn div(fmt: Format, a: u64, b: u64, rm: RoundingMode) -> (u64, u8) {
    let ua = unpack(fmt, a);
    let ub = unpack(fmt, b);
    if let Some(r) = propagate_nan(fmt, &[ua, ub]) {
        return r;
    }
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => (fmt.canonical_nan(), NV),
        (Kind::Inf, _) => (fmt.inf(sign), 0),
        (_, Kind::Inf) => (fmt.zero(sign), 0),
        (Kind::Zero, _) => (fmt.zero(sign), 0),
        (_, Kind::Zero) => (fmt.inf(sign), DZ),
        (Kind::Finite { exp: ea, sig: sa }, Kind::Finite { exp: eb, sig: sb }) => {
            // Put the dividend's leading one at bit 125; the divisor is below
            // 2^53, so the quotient has at least 72 significant bits, and the
            // remainder only matters as a sticky bit.
            let sa = u128::from(sa);
            let sh = sa.leading_zeros() - 2;
            let num = sa << sh;
            let den = u128::from(sb);
            let (q, r) = (num / den, num % den);
            round_pack(fmt, sign, ea - sh as i32 - eb, q, r != 0, rm)
        }
        _ => unreachable!("NaNs handled above"),
    }
}

fn sqrt(fmt: Format, a: u64, rm: RoundingMode) -> (u64, u8) {
    let ua = unpack(fmt, a);
    if let Some(r) = propagate_nan(fmt, &[ua]) {
        return r;
    }
    match ua.kind {
        // sqrt(-0) is -0.
        Kind::Zero => (a, 0),
        _ if ua.sign => (fmt.canonical_nan(), NV),
        Kind::Inf => (a, 0),
        Kind::Finite { exp, sig } => {
            // Make the exponent even so it halves exactly, then scale the
            // significand by an even power of two so its leading one is at bit
            // 124 or 125: the integer square root then has 63 bits, and
            // whether it is exact tells the sticky bit.
            let mut sig = u128::from(sig);
            let mut exp = exp;
            if exp & 1 != 0 {
                sig <<= 1;
                exp -= 1;
            }
            let sh = (sig.leading_zeros() - 2) & !1;
            sig <<= sh;
            exp -= sh as i32;
            let root = sig.isqrt();
            round_pack(fmt, false, exp / 2, root, root * root != sig, rm)
        }
        _ => unreachable!("NaNs handled above"),
    }
}

fn fma(
    fmt: Format,
    a: u64,
    b: u64,
    c: u64,
    negate_product: bool,
    negate_addend: bool,
    rm: RoundingMode,
) -> (u64, u8) {
    let ua = unpack(fmt, a);
    let ub = unpack(fmt, b);
    let uc = unpack(fmt, c);
    let inf_times_zero = (ua.is_inf() && ub.is_zero()) || (ua.is_zero() && ub.is_inf());
    if let Some((nan, fl)) = propagate_nan(fmt, &[ua, ub, uc]) {
        // The spec requires NV for inf * 0 even when the addend is a quiet NaN.
        return (nan, if inf_times_zero { NV } else { fl });
    }
    if inf_times_zero {
        return (fmt.canonical_nan(), NV);
    }
    let prod_sign = ua.sign ^ ub.sign ^ negate_product;
    let c_sign = uc.sign ^ negate_addend;
    if ua.is_inf() || ub.is_inf() {
        if uc.is_inf() && c_sign != prod_sign {
            return (fmt.canonical_nan(), NV);
        }
        return (fmt.inf(prod_sign), 0);
    }
    match (ua.kind, ub.kind, uc.kind) {
        (_, _, Kind::Inf) => (fmt.inf(c_sign), 0),
        (Kind::Zero, _, Kind::Zero) | (_, Kind::Zero, Kind::Zero) => {
            let sign = if prod_sign == c_sign {
                prod_sign
            } else {
                exact_zero_sign(rm)
            };
            (fmt.zero(sign), 0)
        }
        // 0 + c is exactly c.
        (Kind::Zero, _, _) | (_, Kind::Zero, _) => (c ^ fmt.zero(negate_addend), 0),
        (Kind::Finite { exp: ea, sig: sa }, Kind::Finite { exp: eb, sig: sb }, ck) => {
            let prod = (prod_sign, ea + eb, u128::from(sa) * u128::from(sb));
            match ck {
                // p + 0 is p rounded once (the sum cannot be an exact zero).
                Kind::Zero => round_pack(fmt, prod.0, prod.1, prod.2, false, rm),
                Kind::Finite { exp: ec, sig: sc } => {
                    add_finite(fmt, prod, (c_sign, ec, u128::from(sc)), rm)
                }
                _ => unreachable!("NaN and Inf addends handled above"),
            }
        }
        _ => unreachable!("NaN and Inf multiplicands handled above"),
    }
}

// ---------------------------------------------------------------------------
// Comparisons, min/max
// ---------------------------------------------------------------------------

/// Maps a non-NaN value to an integer with the same numeric order, with
/// -0 and +0 equal.
fn numeric_key(fmt: Format, bits: u64) -> i64 {
    let mag = (bits & !fmt.sign_bit()) as i64;
    if bits & fmt.sign_bit() != 0 {
        -mag
    } else {
        mag
    }
}

/// Like [`numeric_key`], but orders -0 below +0 (as fmin/fmax require).
fn total_key(fmt: Format, bits: u64) -> i64 {
    let mag = (bits & !fmt.sign_bit()) as i64;
    if bits & fmt.sign_bit() != 0 {
        -mag - 1
    } else {
        mag
    }
}

fn min_max(fmt: Format, a: u64, b: u64, want_max: bool) -> (u64, u8) {
    let ua = unpack(fmt, a);
    let ub = unpack(fmt, b);
    let fl = if ua.is_snan() || ub.is_snan() { NV } else { 0 };
    let r = match (ua.is_nan(), ub.is_nan()) {
        (true, true) => fmt.canonical_nan(),
        (true, false) => b,
        (false, true) => a,
        (false, false) => {
            let a_is_less = total_key(fmt, a) < total_key(fmt, b);
            if a_is_less != want_max { a } else { b }
        }
    };
    (r, fl)
}

fn eq(fmt: Format, a: u64, b: u64) -> (bool, u8) {
    let ua = unpack(fmt, a);
    let ub = unpack(fmt, b);
    if ua.is_nan() || ub.is_nan() {
        let fl = if ua.is_snan() || ub.is_snan() { NV } else { 0 };
        return (false, fl);
    }
    (numeric_key(fmt, a) == numeric_key(fmt, b), 0)
}

/// Signalling comparison: `accept(order of a relative to b)`.
fn compare_signaling(fmt: Format, a: u64, b: u64, accept: impl Fn(Ordering) -> bool) -> (bool, u8) {
    if unpack(fmt, a).is_nan() || unpack(fmt, b).is_nan() {
        return (false, NV);
    }
    (accept(numeric_key(fmt, a).cmp(&numeric_key(fmt, b))), 0)
}

// ---------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------

/// Converts to a `width`-bit integer (signed or not) per the RISC-V rules:
/// round per `rm`; NaN and out-of-range values give NV and saturate (NaN to
/// the maximum). The result is returned as raw `width` bits.
fn to_int(fmt: Format, a: u64, rm: RoundingMode, signed: bool, width: u32) -> (u64, u8) {
    let u = unpack(fmt, a);
    let max_pos: u128 = if signed {
        (1 << (width - 1)) - 1
    } else {
        (1 << width) - 1
    };
    // Largest representable magnitude of a negative result.
    let max_neg_mag: u128 = if signed { 1 << (width - 1) } else { 0 };
    let mask: u128 = (1 << width) - 1;
    // The saturated minimum: -2^(width-1) as raw bits, or 0.
    let min_bits = max_neg_mag as u64;
    let (exp, sig) = match u.kind {
        Kind::QNaN | Kind::SNaN => return (max_pos as u64, NV),
        Kind::Inf if u.sign => return (min_bits, NV),
        Kind::Inf => return (max_pos as u64, NV),
        Kind::Zero => return (0, 0),
        Kind::Finite { exp, sig } => (exp, u128::from(sig)),
    };
    let (mag, inexact) = if exp >= 0 {
        if exp > 64 {
            // At least 2^65: out of range for every destination.
            (u128::MAX, false)
        } else {
            (sig << exp, false)
        }
    } else {
        round_shift(sig, false, exp.unsigned_abs(), rm, u.sign)
    };
    if u.sign {
        if mag > max_neg_mag {
            return (min_bits, NV);
        }
        let v = (mag as i128).wrapping_neg() as u128 & mask;
        (v as u64, if inexact { NX } else { 0 })
    } else {
        if mag > max_pos {
            return (max_pos as u64, NV);
        }
        (mag as u64, if inexact { NX } else { 0 })
    }
}

/// Converts an integer given as sign and magnitude.
fn from_int(fmt: Format, negative: bool, mag: u64, rm: RoundingMode) -> (u64, u8) {
    if mag == 0 {
        return (0, 0);
    }
    round_pack(fmt, negative, 0, u128::from(mag), false, rm)
}

/// Converts between formats (exact when widening).
fn convert(from: Format, to: Format, a: u64, rm: RoundingMode) -> (u64, u8) {
    let u = unpack(from, a);
    if let Some((_, fl)) = propagate_nan(from, &[u]) {
        return (to.canonical_nan(), fl);
    }
    match u.kind {
        Kind::Zero => (to.zero(u.sign), 0),
        Kind::Inf => (to.inf(u.sign), 0),
        Kind::Finite { exp, sig } => round_pack(to, u.sign, exp, u128::from(sig), false, rm),
        _ => unreachable!("NaNs handled above"),
    }
}

// ---------------------------------------------------------------------------
// Public binary32 API
// ---------------------------------------------------------------------------

/// Narrows a binary32 result carried in a `u64` back to its 32 bits.
fn n32((bits, fl): (u64, u8)) -> (u32, u8) {
    (bits as u32, fl)
}

/// `fadd.s`: a + b.
pub fn f32_add(a: u32, b: u32, rm: RoundingMode) -> (u32, u8) {
    n32(add(F32, u64::from(a), u64::from(b), false, rm))
}

/// `fsub.s`: a - b.
pub fn f32_sub(a: u32, b: u32, rm: RoundingMode) -> (u32, u8) {
    n32(add(F32, u64::from(a), u64::from(b), true, rm))
}

/// `fmul.s`: a * b.
pub fn f32_mul(a: u32, b: u32, rm: RoundingMode) -> (u32, u8) {
    n32(mul(F32, u64::from(a), u64::from(b), rm))
}

/// `fdiv.s`: a / b.
pub fn f32_div(a: u32, b: u32, rm: RoundingMode) -> (u32, u8) {
    n32(div(F32, u64::from(a), u64::from(b), rm))
}

/// `fsqrt.s`: square root of a.
pub fn f32_sqrt(a: u32, rm: RoundingMode) -> (u32, u8) {
    n32(sqrt(F32, u64::from(a), rm))
}

/// Fused multiply-add, a*b + c with a single rounding.
///
/// `negate_product` / `negate_addend` select the instruction:
/// `fmadd` = (false, false), `fmsub` = (false, true), `fnmsub` = (true, false),
/// `fnmadd` = (true, true).
pub fn f32_fma(
    a: u32,
    b: u32,
    c: u32,
    negate_product: bool,
    negate_addend: bool,
    rm: RoundingMode,
) -> (u32, u8) {
    n32(fma(
        F32,
        u64::from(a),
        u64::from(b),
        u64::from(c),
        negate_product,
        negate_addend,
        rm,
    ))
}

/// `fmin.s` (IEEE 754-2019 minimumNumber): -0 < +0, a single NaN operand
/// yields the other operand, two NaNs yield the canonical NaN; NV if either is
/// signalling.
pub fn f32_min(a: u32, b: u32) -> (u32, u8) {
    n32(min_max(F32, u64::from(a), u64::from(b), false))
}

/// `fmax.s` (IEEE 754-2019 maximumNumber); see [`f32_min`].
pub fn f32_max(a: u32, b: u32) -> (u32, u8) {
    n32(min_max(F32, u64::from(a), u64::from(b), true))
}

/// `feq.s`: quiet equality; NV only for signalling NaNs.
pub fn f32_eq(a: u32, b: u32) -> (bool, u8) {
    eq(F32, u64::from(a), u64::from(b))
}

/// `flt.s`: signalling less-than; NV for any NaN.
pub fn f32_lt(a: u32, b: u32) -> (bool, u8) {
    compare_signaling(F32, u64::from(a), u64::from(b), Ordering::is_lt)
}

/// `fle.s`: signalling less-or-equal; NV for any NaN.
pub fn f32_le(a: u32, b: u32) -> (bool, u8) {
    compare_signaling(F32, u64::from(a), u64::from(b), Ordering::is_le)
}

/// `fclass.s`: the 10-bit class mask (bit 0 = -inf ... bit 9 = quiet NaN).
pub fn f32_classify(a: u32) -> u64 {
    classify(F32, u64::from(a))
}

/// `fcvt.w.s`: to a signed 32-bit integer, returned as raw bits (the caller
/// sign-extends). Saturates with NV when out of range or NaN.
pub fn f32_to_i32(a: u32, rm: RoundingMode) -> (u32, u8) {
    n32(to_int(F32, u64::from(a), rm, true, 32))
}

/// `fcvt.wu.s`: to an unsigned 32-bit integer. Saturates with NV.
pub fn f32_to_u32(a: u32, rm: RoundingMode) -> (u32, u8) {
    n32(to_int(F32, u64::from(a), rm, false, 32))
}

/// `fcvt.l.s`: to a signed 64-bit integer. Saturates with NV.
pub fn f32_to_i64(a: u32, rm: RoundingMode) -> (u64, u8) {
    to_int(F32, u64::from(a), rm, true, 64)
}

/// `fcvt.lu.s`: to an unsigned 64-bit integer. Saturates with NV.
pub fn f32_to_u64(a: u32, rm: RoundingMode) -> (u64, u8) {
    to_int(F32, u64::from(a), rm, false, 64)
}

/// `fcvt.s.w`: from a signed 32-bit integer given as raw bits.
pub fn i32_to_f32(v: u32, rm: RoundingMode) -> (u32, u8) {
    let v = v as i32;
    n32(from_int(F32, v < 0, u64::from(v.unsigned_abs()), rm))
}

/// `fcvt.s.wu`: from an unsigned 32-bit integer.
pub fn u32_to_f32(v: u32, rm: RoundingMode) -> (u32, u8) {
    n32(from_int(F32, false, u64::from(v), rm))
}

/// `fcvt.s.l`: from a signed 64-bit integer given as raw bits.
pub fn i64_to_f32(v: u64, rm: RoundingMode) -> (u32, u8) {
    let v = v as i64;
    n32(from_int(F32, v < 0, v.unsigned_abs(), rm))
}

/// `fcvt.s.lu`: from an unsigned 64-bit integer.
pub fn u64_to_f32(v: u64, rm: RoundingMode) -> (u32, u8) {
    n32(from_int(F32, false, v, rm))
}

/// `fcvt.d.s`: exact widening; NV for a signalling NaN, NaNs become canonical.
pub fn f32_to_f64(a: u32) -> (u64, u8) {
    convert(F32, F64, u64::from(a), RoundingMode::NearestEven)
}

/// `fcvt.s.d`: narrowing with rounding.
pub fn f64_to_f32(a: u64, rm: RoundingMode) -> (u32, u8) {
    n32(convert(F64, F32, a, rm))
}

// ---------------------------------------------------------------------------
// Public binary64 API
// ---------------------------------------------------------------------------

/// `fadd.d`: a + b.
pub fn f64_add(a: u64, b: u64, rm: RoundingMode) -> (u64, u8) {
    host_add(a, b, rm).unwrap_or_else(|| add(F64, a, b, false, rm))
}

/// `fsub.d`: a - b.
pub fn f64_sub(a: u64, b: u64, rm: RoundingMode) -> (u64, u8) {
    host_add(a, b ^ (1 << 63), rm).unwrap_or_else(|| add(F64, a, b, true, rm))
}

/// `fmul.d`: a * b.
pub fn f64_mul(a: u64, b: u64, rm: RoundingMode) -> (u64, u8) {
    host_mul(a, b, rm).unwrap_or_else(|| mul(F64, a, b, rm))
}

/// Unbiased exponent of a double whose exponent field is neither 0 nor all ones
/// (a normal number), else `None`.
fn normal_exponent(bits: u64) -> Option<i32> {
    let field = ((bits >> 52) & 0x7ff) as i32;
    (field != 0 && field != 0x7ff).then_some(field - 1023)
}

/// The common case of `fadd.d` on the host FPU: round to nearest even, normal
/// operands and a normal result far from the subnormal range. The host's
/// IEEE-754 addition rounds the same way, and the exact error of the sum (Knuth's
/// TwoSum) tells whether it was inexact, the only flag such a case can raise.
/// Everything else (`None`) goes to the soft-float path.
fn host_add(a: u64, b: u64, rm: RoundingMode) -> Option<(u64, u8)> {
    if rm != RoundingMode::NearestEven {
        return None;
    }
    normal_exponent(a)?;
    normal_exponent(b)?;
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    let sum = x + y;
    if normal_exponent(sum.to_bits())? < -1000 {
        return None;
    }
    let y_part = sum - x;
    let error = (x - (sum - y_part)) + (y - y_part);
    Some((sum.to_bits(), if error == 0.0 { 0 } else { NX }))
}

/// `fmul.d` on the host FPU under the same conditions as [`host_add`]; the exact
/// error of the product is a fused multiply-add away.
fn host_mul(a: u64, b: u64, rm: RoundingMode) -> Option<(u64, u8)> {
    if rm != RoundingMode::NearestEven {
        return None;
    }
    normal_exponent(a)?;
    normal_exponent(b)?;
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    let product = x * y;
    // The error of the product is exact unless it falls below the normal range.
    if normal_exponent(product.to_bits())? < -900 {
        return None;
    }
    let error = x.mul_add(y, -product);
    Some((product.to_bits(), if error == 0.0 { 0 } else { NX }))
}

/// `fdiv.d`: a / b.
pub fn f64_div(a: u64, b: u64, rm: RoundingMode) -> (u64, u8) {
    div(F64, a, b, rm)
}

/// `fsqrt.d`: square root of a.
pub fn f64_sqrt(a: u64, rm: RoundingMode) -> (u64, u8) {
    sqrt(F64, a, rm)
}

/// Fused multiply-add, a*b + c with a single rounding; see [`f32_fma`] for
/// the meaning of the negation flags.
pub fn f64_fma(
    a: u64,
    b: u64,
    c: u64,
    negate_product: bool,
    negate_addend: bool,
    rm: RoundingMode,
) -> (u64, u8) {
    fma(F64, a, b, c, negate_product, negate_addend, rm)
}

/// `fmin.d`; see [`f32_min`].
pub fn f64_min(a: u64, b: u64) -> (u64, u8) {
    min_max(F64, a, b, false)
}

/// `fmax.d`; see [`f32_min`].
pub fn f64_max(a: u64, b: u64) -> (u64, u8) {
    min_max(F64, a, b, true)
}

/// `feq.d`: quiet equality; NV only for signalling NaNs.
pub fn f64_eq(a: u64, b: u64) -> (bool, u8) {
    eq(F64, a, b)
}

/// `flt.d`: signalling less-than; NV for any NaN.
pub fn f64_lt(a: u64, b: u64) -> (bool, u8) {
    compare_signaling(F64, a, b, Ordering::is_lt)
}

/// `fle.d`: signalling less-or-equal; NV for any NaN.
pub fn f64_le(a: u64, b: u64) -> (bool, u8) {
    compare_signaling(F64, a, b, Ordering::is_le)
}

/// `fclass.d`: the 10-bit class mask.
pub fn f64_classify(a: u64) -> u64 {
    classify(F64, a)
}

/// `fcvt.w.d`: to a signed 32-bit integer as raw bits (caller sign-extends).
pub fn f64_to_i32(a: u64, rm: RoundingMode) -> (u32, u8) {
    n32(to_int(F64, a, rm, true, 32))
}

/// `fcvt.wu.d`: to an unsigned 32-bit integer.
pub fn f64_to_u32(a: u64, rm: RoundingMode) -> (u32, u8) {
    n32(to_int(F64, a, rm, false, 32))
}

/// `fcvt.l.d`: to a signed 64-bit integer.
pub fn f64_to_i64(a: u64, rm: RoundingMode) -> (u64, u8) {
    to_int(F64, a, rm, true, 64)
}

/// `fcvt.lu.d`: to an unsigned 64-bit integer.
pub fn f64_to_u64(a: u64, rm: RoundingMode) -> (u64, u8) {
    to_int(F64, a, rm, false, 64)
}

/// `fcvt.d.w`: from a signed 32-bit integer given as raw bits (always exact).
pub fn i32_to_f64(v: u32, rm: RoundingMode) -> (u64, u8) {
    let v = v as i32;
    from_int(F64, v < 0, u64::from(v.unsigned_abs()), rm)
}

/// `fcvt.d.wu`: from an unsigned 32-bit integer (always exact).
pub fn u32_to_f64(v: u32, rm: RoundingMode) -> (u64, u8) {
    from_int(F64, false, u64::from(v), rm)
}

/// `fcvt.d.l`: from a signed 64-bit integer given as raw bits.
pub fn i64_to_f64(v: u64, rm: RoundingMode) -> (u64, u8) {
    let v = v as i64;
    from_int(F64, v < 0, v.unsigned_abs(), rm)
}

/// `fcvt.d.lu`: from an unsigned 64-bit integer.
pub fn u64_to_f64(v: u64, rm: RoundingMode) -> (u64, u8) {
    from_int(F64, false, v, rm)
}

#[cfg(test)]
mod tests {
    use super::RoundingMode::{Down, NearestEven, NearestMaxMagnitude, TowardZero, Up};
    use super::*;

    const ALL_RM: [RoundingMode; 5] = [NearestEven, TowardZero, Down, Up, NearestMaxMagnitude];

    fn s(x: f32) -> u32 {
        x.to_bits()
    }
    fn d(x: f64) -> u64 {
        x.to_bits()
    }

    #[test]
    fn host_fast_paths_agree_with_soft_float() {
        // Random doubles over the whole exponent range (mantissas with few and
        // many bits set, so both exact and inexact results occur).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut fast = 0;
        for i in 0..200_000 {
            let mut a = next();
            let mut b = next();
            if i % 3 == 0 {
                // Short mantissas: sums and products are often exact.
                a &= !0xffff_ffff;
                b &= !0x00ff_ffff_ffff;
            }
            if i % 5 == 0 {
                // Nearby exponents: cancellation in sums.
                b = (b & !(0x7ff << 52)) | (a & (0x7ff << 52));
            }
            let soft_add = add(F64, a, b, false, NearestEven);
            let soft_sub = add(F64, a, b, true, NearestEven);
            let soft_mul = mul(F64, a, b, NearestEven);
            assert_eq!(f64_add(a, b, NearestEven), soft_add, "add {a:#x} {b:#x}");
            assert_eq!(f64_sub(a, b, NearestEven), soft_sub, "sub {a:#x} {b:#x}");
            assert_eq!(f64_mul(a, b, NearestEven), soft_mul, "mul {a:#x} {b:#x}");
            fast += usize::from(host_add(a, b, NearestEven).is_some());
            fast += usize::from(host_mul(a, b, NearestEven).is_some());
        }
        assert!(fast > 100_000, "the fast paths were rarely taken: {fast}");
        // Other rounding modes never take them.
        assert!(host_add(d(1.0), d(1e-30), TowardZero).is_none());
    }

    const S_SNAN: u32 = 0x7f80_0001;
    const S_QNAN_PAYLOAD: u32 = 0xffc0_1234;
    const S_MAX: u32 = 0x7f7f_ffff;
    const S_MIN_NORMAL: u32 = 0x0080_0000;
    const S_MIN_SUB: u32 = 0x0000_0001;
    const S_INF: u32 = 0x7f80_0000;
    const D_SNAN: u64 = 0x7ff0_0000_0000_0001;
    const D_QNAN_PAYLOAD: u64 = 0xfff8_0000_dead_beef;
    const D_MAX: u64 = 0x7fef_ffff_ffff_ffff;
    const D_MIN_SUB: u64 = 1;
    const D_INF: u64 = 0x7ff0_0000_0000_0000;
    const NEG32: u32 = 0x8000_0000;
    const NEG64: u64 = 0x8000_0000_0000_0000;

    #[test]
    fn rounding_mode_decoding() {
        for (i, rm) in ALL_RM.iter().enumerate() {
            assert_eq!(RoundingMode::from_bits(i as u32), Some(*rm));
            assert_eq!(*rm as u32, i as u32);
        }
        for bad in [5, 6, 7, 8, u32::MAX] {
            assert_eq!(RoundingMode::from_bits(bad), None);
        }
    }

    #[test]
    fn one_third_in_every_mode() {
        let one = s(1.0);
        let three = s(3.0);
        let expect32 = [
            0x3eaa_aaab,
            0x3eaa_aaaa,
            0x3eaa_aaaa,
            0x3eaa_aaab,
            0x3eaa_aaab,
        ];
        let expect32_neg = [
            0xbeaa_aaab,
            0xbeaa_aaaa,
            0xbeaa_aaab,
            0xbeaa_aaaa,
            0xbeaa_aaab,
        ];
        let expect64 = [
            0x3fd5_5555_5555_5555,
            0x3fd5_5555_5555_5555,
            0x3fd5_5555_5555_5555,
            0x3fd5_5555_5555_5556,
            0x3fd5_5555_5555_5555,
        ];
        for (i, rm) in ALL_RM.into_iter().enumerate() {
            assert_eq!(f32_div(one, three, rm), (expect32[i], NX), "{rm:?}");
            assert_eq!(
                f32_div(one | NEG32, three, rm),
                (expect32_neg[i], NX),
                "{rm:?}"
            );
            assert_eq!(f64_div(d(1.0), d(3.0), rm), (expect64[i], NX), "{rm:?}");
            // For a negative quotient Down and Up swap roles on the magnitude.
            let mirrored = match rm {
                Down => expect64[3],
                Up => expect64[2],
                _ => expect64[i],
            };
            assert_eq!(
                f64_div(d(-1.0), d(3.0), rm),
                (mirrored | NEG64, NX),
                "{rm:?}"
            );
        }
    }

    #[test]
    fn ties_in_nearest_modes() {
        // 1 + 2^-24 is exactly halfway between 1 and 1 + 2^-23.
        let a = s(1.0);
        let half_ulp = s(2f32.powi(-24));
        assert_eq!(f32_add(a, half_ulp, NearestEven), (s(1.0), NX));
        assert_eq!(f32_add(a, half_ulp, NearestMaxMagnitude), (0x3f80_0001, NX));
        // 1 + 3*2^-24 is halfway between odd and even neighbours: both round up.
        let b = 0x3f80_0001;
        assert_eq!(f32_add(b, half_ulp, NearestEven), (0x3f80_0002, NX));
        assert_eq!(f32_add(b, half_ulp, NearestMaxMagnitude), (0x3f80_0002, NX));
        // Negative ties go away from zero in RMM.
        assert_eq!(
            f32_sub(a | NEG32, half_ulp, NearestMaxMagnitude),
            (0xbf80_0001, NX)
        );
        assert_eq!(f32_sub(a | NEG32, half_ulp, NearestEven), (0xbf80_0000, NX));
        let dh = d(2f64.powi(-53));
        assert_eq!(f64_add(d(1.0), dh, NearestEven), (d(1.0), NX));
        assert_eq!(f64_add(d(1.0), dh, NearestMaxMagnitude), (d(1.0) + 1, NX));
        assert_eq!(f64_add(d(1.0), dh, Up), (d(1.0) + 1, NX));
        assert_eq!(f64_add(d(1.0), dh, Down), (d(1.0), NX));
    }

    #[test]
    fn overflow_depends_on_mode() {
        let two = s(2.0);
        // (rm, result for +max*2, result for -max*2)
        let cases32 = [
            (NearestEven, S_INF, S_INF | NEG32),
            (TowardZero, S_MAX, S_MAX | NEG32),
            (Down, S_MAX, S_INF | NEG32),
            (Up, S_INF, S_MAX | NEG32),
            (NearestMaxMagnitude, S_INF, S_INF | NEG32),
        ];
        for (rm, pos, neg) in cases32 {
            assert_eq!(f32_mul(S_MAX, two, rm), (pos, OF | NX), "{rm:?}");
            assert_eq!(f32_mul(S_MAX | NEG32, two, rm), (neg, OF | NX), "{rm:?}");
            assert_eq!(f32_add(S_MAX, S_MAX, rm), (pos, OF | NX), "{rm:?}");
        }
        let cases64 = [
            (NearestEven, D_INF, D_INF | NEG64),
            (TowardZero, D_MAX, D_MAX | NEG64),
            (Down, D_MAX, D_INF | NEG64),
            (Up, D_INF, D_MAX | NEG64),
            (NearestMaxMagnitude, D_INF, D_INF | NEG64),
        ];
        for (rm, pos, neg) in cases64 {
            assert_eq!(f64_mul(D_MAX, d(2.0), rm), (pos, OF | NX), "{rm:?}");
            assert_eq!(f64_div(D_MAX | NEG64, d(0.5), rm), (neg, OF | NX), "{rm:?}");
            assert_eq!(f64_to_f32(D_MAX, rm).0, pos_f32_for(rm), "{rm:?}");
        }
        // Rounding up into overflow: max + half an ulp in RNE ties to even = inf.
        let half_ulp_of_max = s(2f32.powi(103));
        assert_eq!(
            f32_add(S_MAX, half_ulp_of_max, NearestEven),
            (S_INF, OF | NX)
        );
        assert_eq!(f32_add(S_MAX, half_ulp_of_max, TowardZero), (S_MAX, NX));
        // Infinity itself is exact: no OF.
        assert_eq!(f32_mul(S_INF, two, NearestEven), (S_INF, 0));
    }

    fn pos_f32_for(rm: RoundingMode) -> u32 {
        match rm {
            NearestEven | Up | NearestMaxMagnitude => S_INF,
            TowardZero | Down => S_MAX,
        }
    }

    #[test]
    fn subnormals_and_underflow() {
        let half = s(0.5);
        // Exact subnormal results raise nothing.
        assert_eq!(f32_mul(S_MIN_NORMAL, half, NearestEven), (0x0040_0000, 0));
        assert_eq!(
            f32_sub(S_MIN_NORMAL, 0x0000_0001, NearestEven),
            (0x007f_ffff, 0)
        );
        // Half of the smallest subnormal: a tie between 0 and min-subnormal.
        let cases = [
            (NearestEven, 0),
            (TowardZero, 0),
            (Down, 0),
            (Up, S_MIN_SUB),
            (NearestMaxMagnitude, S_MIN_SUB),
        ];
        for (rm, r) in cases {
            assert_eq!(f32_mul(S_MIN_SUB, half, rm), (r, UF | NX), "{rm:?}");
            let neg = f32_mul(S_MIN_SUB | NEG32, half, rm);
            let expect_neg = match rm {
                Down => S_MIN_SUB | NEG32,
                Up => NEG32,
                _ => r | NEG32,
            };
            assert_eq!(neg, (expect_neg, UF | NX), "{rm:?}");
        }
        assert_eq!(f64_mul(D_MIN_SUB, d(0.5), NearestEven), (0, UF | NX));
        assert_eq!(
            f64_mul(D_MIN_SUB, d(0.75), NearestEven),
            (D_MIN_SUB, UF | NX)
        );
        assert_eq!(f64_div(D_MIN_SUB, d(3.0), Up), (D_MIN_SUB, UF | NX));
        // 1 / (2^1024 (1 - 2^-53)) is slightly above 2^-1024: inexact and tiny.
        assert_eq!(
            f64_div(d(1.0), D_MAX, NearestEven),
            (0x0004_0000_0000_0000, UF | NX)
        );
        assert_eq!(
            f64_div(d(1.0), d(2f64.powi(1023)), NearestEven),
            (0x0008_0000_0000_0000, 0)
        );
    }

    #[test]
    fn tininess_is_detected_after_rounding() {
        // (1 - 2^-25) * 2^-126: rounding to 24 bits with an unbounded exponent
        // gives exactly 2^-126 in RNE, so it is not tiny: NX but no UF.
        let just_below = 0x380f_ffff_f000_0000;
        assert_eq!(f64_to_f32(just_below, NearestEven), (S_MIN_NORMAL, NX));
        assert_eq!(f64_to_f32(just_below, Up), (S_MIN_NORMAL, NX));
        // Rounding towards zero stays below 2^-126: tiny, so UF.
        assert_eq!(f64_to_f32(just_below, TowardZero), (0x007f_ffff, UF | NX));
        // (1 - 2^-24) * 2^-126 is exact at 24 bits and below 2^-126 (tiny),
        // yet rounds up to the smallest normal in the subnormal grid.
        let tiny_tie = 0x380f_ffff_e000_0000;
        assert_eq!(f64_to_f32(tiny_tie, NearestEven), (S_MIN_NORMAL, UF | NX));
        // The same through multiplication: (1 - 2^-24) * 2^-126.
        assert_eq!(
            f32_mul(0x3f7f_ffff, S_MIN_NORMAL, NearestEven),
            (S_MIN_NORMAL, UF | NX)
        );
        // binary64 through fma: max_subnormal + k * min_subnormal.
        let max_sub = 0x000f_ffff_ffff_ffffu64;
        let min_normal = 0x0010_0000_0000_0000u64;
        // k = 3/4: 2^-1022 - 2^-1076 is half an ulp (at 53 bits) below
        // 2^-1022, so it rounds to 2^-1022 before the exponent is bounded:
        // not tiny.
        for rm in [NearestEven, Up, NearestMaxMagnitude] {
            let r = f64_fma(d(0.75), D_MIN_SUB, max_sub, false, false, rm);
            assert_eq!(r, (min_normal, NX), "{rm:?}");
        }
        assert_eq!(
            f64_fma(d(0.75), D_MIN_SUB, max_sub, false, false, TowardZero),
            (max_sub, UF | NX)
        );
        // k = 1/2: 2^-1022 - 2^-1075 is exact at 53 bits, hence tiny, but
        // rounds (ties to even) up to 2^-1022 on the subnormal grid.
        let r = f64_fma(d(0.5), D_MIN_SUB, max_sub, false, false, NearestEven);
        assert_eq!(r, (min_normal, UF | NX));
        // Exact subnormal result from fma: no flags.
        assert_eq!(
            f64_fma(d(0.5), 2, max_sub, false, false, NearestEven),
            (0x0010_0000_0000_0000, 0)
        );
    }

    #[test]
    fn nan_inputs() {
        for rm in ALL_RM {
            assert_eq!(f32_add(S_SNAN, s(1.0), rm), (F32_CANONICAL_NAN, NV));
            assert_eq!(f32_add(S_QNAN_PAYLOAD, s(1.0), rm), (F32_CANONICAL_NAN, 0));
            assert_eq!(f32_mul(s(1.0), S_SNAN | NEG32, rm), (F32_CANONICAL_NAN, NV));
            assert_eq!(f32_div(S_QNAN_PAYLOAD, S_SNAN, rm), (F32_CANONICAL_NAN, NV));
            assert_eq!(f32_sqrt(S_SNAN, rm), (F32_CANONICAL_NAN, NV));
            assert_eq!(f32_sqrt(S_QNAN_PAYLOAD, rm), (F32_CANONICAL_NAN, 0));
            assert_eq!(f64_sub(D_QNAN_PAYLOAD, d(1.0), rm), (F64_CANONICAL_NAN, 0));
            assert_eq!(f64_sub(d(1.0), D_SNAN, rm), (F64_CANONICAL_NAN, NV));
            assert_eq!(
                f64_fma(d(1.0), d(1.0), D_SNAN, false, false, rm),
                (F64_CANONICAL_NAN, NV)
            );
            assert_eq!(
                f64_fma(D_QNAN_PAYLOAD, d(1.0), d(1.0), true, true, rm),
                (F64_CANONICAL_NAN, 0)
            );
        }
        // NaN-producing invalid operations.
        assert_eq!(
            f32_add(S_INF, S_INF | NEG32, NearestEven),
            (F32_CANONICAL_NAN, NV)
        );
        assert_eq!(f32_sub(S_INF, S_INF, NearestEven), (F32_CANONICAL_NAN, NV));
        assert_eq!(f32_add(S_INF, S_INF, NearestEven), (S_INF, 0));
        assert_eq!(f32_mul(S_INF, NEG32, NearestEven), (F32_CANONICAL_NAN, NV));
        assert_eq!(f32_div(0, NEG32, NearestEven), (F32_CANONICAL_NAN, NV));
        assert_eq!(f32_div(S_INF, S_INF, NearestEven), (F32_CANONICAL_NAN, NV));
        assert_eq!(f64_mul(0, D_INF, NearestEven), (F64_CANONICAL_NAN, NV));
        assert_eq!(f64_div(0, 0, NearestEven), (F64_CANONICAL_NAN, NV));
        assert_eq!(
            f64_sub(D_INF | NEG64, D_INF | NEG64, Down),
            (F64_CANONICAL_NAN, NV)
        );
    }

    #[test]
    fn division_by_zero() {
        assert_eq!(f32_div(s(1.0), 0, NearestEven), (S_INF, DZ));
        assert_eq!(f32_div(s(-1.0), 0, NearestEven), (S_INF | NEG32, DZ));
        assert_eq!(f32_div(s(1.0), NEG32, NearestEven), (S_INF | NEG32, DZ));
        assert_eq!(f32_div(S_MIN_SUB, 0, TowardZero), (S_INF, DZ));
        // inf / 0 is an exact infinity, not a division by zero.
        assert_eq!(f32_div(S_INF, 0, NearestEven), (S_INF, 0));
        assert_eq!(f64_div(d(-3.0), 0, Up), (D_INF | NEG64, DZ));
        assert_eq!(f64_div(d(1.0), D_INF, NearestEven), (0, 0));
        assert_eq!(f64_div(d(-1.0), D_INF, NearestEven), (NEG64, 0));
    }

    #[test]
    fn square_root() {
        assert_eq!(f32_sqrt(s(4.0), NearestEven), (s(2.0), 0));
        assert_eq!(f32_sqrt(NEG32, NearestEven), (NEG32, 0));
        assert_eq!(f32_sqrt(0, NearestEven), (0, 0));
        assert_eq!(f32_sqrt(s(-1.0), NearestEven), (F32_CANONICAL_NAN, NV));
        assert_eq!(
            f32_sqrt(S_INF | NEG32, NearestEven),
            (F32_CANONICAL_NAN, NV)
        );
        assert_eq!(
            f32_sqrt(S_MIN_SUB | NEG32, NearestEven),
            (F32_CANONICAL_NAN, NV)
        );
        assert_eq!(f32_sqrt(S_INF, NearestEven), (S_INF, 0));
        // sqrt(2) = 1.41421356..., between 0x3fb504f3 and 0x3fb504f4 (nearer the first).
        let expect = [
            0x3fb5_04f3,
            0x3fb5_04f3,
            0x3fb5_04f3,
            0x3fb5_04f4,
            0x3fb5_04f3,
        ];
        for (rm, e) in ALL_RM.into_iter().zip(expect) {
            assert_eq!(f32_sqrt(s(2.0), rm), (e, NX), "{rm:?}");
        }
        // binary64 sqrt(2) lies just below 0x3ff6a09e667f3bcd.
        let expect = [
            0x3ff6_a09e_667f_3bcd,
            0x3ff6_a09e_667f_3bcc,
            0x3ff6_a09e_667f_3bcc,
            0x3ff6_a09e_667f_3bcd,
            0x3ff6_a09e_667f_3bcd,
        ];
        for (rm, e) in ALL_RM.into_iter().zip(expect) {
            assert_eq!(f64_sqrt(d(2.0), rm), (e, NX), "{rm:?}");
        }
        // Subnormal inputs: sqrt(2^-149) = 2^-74.5, sqrt(2^-1074) = 2^-537.
        assert_eq!(f32_sqrt(S_MIN_SUB, NearestEven), (0x1a35_04f3, NX));
        assert_eq!(f64_sqrt(D_MIN_SUB, NearestEven), (d(2f64.powi(-537)), 0));
        assert_eq!(f64_sqrt(D_MAX, NearestEven).1, NX);
    }

    #[test]
    fn signed_zero_results() {
        for rm in ALL_RM {
            let z = if rm == Down { NEG32 } else { 0 };
            let z64 = if rm == Down { NEG64 } else { 0 };
            assert_eq!(f32_add(s(1.0), s(-1.0), rm), (z, 0), "{rm:?}");
            assert_eq!(f32_sub(s(1.5), s(1.5), rm), (z, 0), "{rm:?}");
            assert_eq!(f32_add(0, NEG32, rm), (z, 0), "{rm:?}");
            assert_eq!(f32_add(NEG32, NEG32, rm), (NEG32, 0), "{rm:?}");
            assert_eq!(f32_sub(NEG32, 0, rm), (NEG32, 0), "{rm:?}");
            assert_eq!(f32_add(0, 0, rm), (0, 0), "{rm:?}");
            assert_eq!(f64_sub(d(2.0), d(2.0), rm), (z64, 0), "{rm:?}");
            assert_eq!(
                f64_fma(d(1.0), d(1.0), d(-1.0), false, false, rm),
                (z64, 0),
                "{rm:?}"
            );
            assert_eq!(
                f32_fma(s(2.0), s(3.0), s(6.0), false, true, rm),
                (z, 0),
                "{rm:?}"
            );
            // Zero product plus zero addend: same signs keep the sign.
            assert_eq!(f64_fma(NEG64, d(1.0), NEG64, false, false, rm), (NEG64, 0));
            // fnmadd: -(0*1) - 0 = -0 - 0 = -0.
            assert_eq!(f64_fma(0, d(1.0), 0, true, true, rm), (NEG64, 0));
            // fnmsub: -(0*1) + 0: opposite signs.
            assert_eq!(f64_fma(0, d(1.0), 0, true, false, rm), (z64, 0));
            // x + 0 keeps x, including -0 + x.
            assert_eq!(f32_add(NEG32, s(-3.0), rm), (s(-3.0), 0));
            assert_eq!(f64_sub(d(5.0), NEG64, rm), (d(5.0), 0));
        }
        // Products are signed: -0 * 5 = -0; underflow keeps the sign.
        assert_eq!(f32_mul(NEG32, s(5.0), NearestEven), (NEG32, 0));
        assert_eq!(
            f64_mul(D_MIN_SUB | NEG64, D_MIN_SUB, NearestEven),
            (NEG64, UF | NX)
        );
    }

    #[test]
    fn fused_multiply_add() {
        // (1 + 2^-23)^2 - (1 + 2^-22) = 2^-46 exactly: only one rounding.
        let a = 0x3f80_0001;
        assert_eq!(
            f32_fma(a, a, 0xbf80_0002, false, false, NearestEven),
            (s(2f32.powi(-46)), 0)
        );
        let (p, fl) = f32_mul(a, a, NearestEven);
        assert_eq!((p, fl), (0x3f80_0002, NX));
        let a64 = d(1.0) + 1;
        let sq = f64_mul(a64, a64, NearestEven).0;
        assert_eq!(
            f64_fma(a64, a64, sq | NEG64, false, false, NearestEven),
            (d(2f64.powi(-104)), 0)
        );
        // The four instruction variants.
        let (two, three, one) = (s(2.0), s(3.0), s(1.0));
        assert_eq!(
            f32_fma(two, three, one, false, false, NearestEven),
            (s(7.0), 0)
        );
        assert_eq!(
            f32_fma(two, three, one, false, true, NearestEven),
            (s(5.0), 0)
        );
        assert_eq!(
            f32_fma(two, three, one, true, false, NearestEven),
            (s(-5.0), 0)
        );
        assert_eq!(
            f32_fma(two, three, one, true, true, NearestEven),
            (s(-7.0), 0)
        );
        assert_eq!(
            f64_fma(d(2.0), d(3.0), d(1.0), true, true, Up),
            (d(-7.0), 0)
        );
        // inf * 0 is invalid even when the addend is a quiet NaN.
        assert_eq!(
            f32_fma(S_INF, 0, F32_CANONICAL_NAN, false, false, NearestEven),
            (F32_CANONICAL_NAN, NV)
        );
        assert_eq!(
            f64_fma(0, D_INF | NEG64, d(1.0), false, false, NearestEven),
            (F64_CANONICAL_NAN, NV)
        );
        // inf - inf inside fma.
        assert_eq!(
            f32_fma(S_INF, one, S_INF, false, true, NearestEven),
            (F32_CANONICAL_NAN, NV)
        );
        assert_eq!(
            f32_fma(S_INF, one, S_INF, false, false, NearestEven),
            (S_INF, 0)
        );
        assert_eq!(
            f32_fma(S_INF, one, S_INF, true, true, NearestEven),
            (S_INF | NEG32, 0)
        );
        assert_eq!(
            f64_fma(d(1.0), d(1.0), D_INF | NEG64, false, false, NearestEven),
            (D_INF | NEG64, 0)
        );
        // Tiny addend far below the product still affects directed rounding.
        assert_eq!(
            f64_fma(d(1.0), d(1.0), D_MIN_SUB, false, false, Up),
            (d(1.0) + 1, NX)
        );
        assert_eq!(
            f64_fma(d(1.0), d(1.0), D_MIN_SUB, false, false, NearestEven),
            (d(1.0), NX)
        );
        assert_eq!(
            f64_fma(d(1.0), d(1.0), D_MIN_SUB, false, true, TowardZero),
            (0x3fef_ffff_ffff_ffff, NX)
        );
        // Product overflowing the format but cancelled by the addend is exact.
        assert_eq!(
            f32_fma(S_MAX, two, S_MAX, false, true, NearestEven),
            (S_MAX, 0)
        );
        // Zero product: result is exactly the addend.
        assert_eq!(
            f32_fma(0, three, S_MIN_SUB, false, false, NearestEven),
            (S_MIN_SUB, 0)
        );
        assert_eq!(
            f32_fma(0, three, S_MIN_SUB, false, true, NearestEven),
            (S_MIN_SUB | NEG32, 0)
        );
    }

    #[test]
    fn min_max() {
        let one = s(1.0);
        assert_eq!(f32_min(one, s(2.0)), (one, 0));
        assert_eq!(f32_max(one, s(2.0)), (s(2.0), 0));
        assert_eq!(f32_min(s(-1.0), s(2.0)), (s(-1.0), 0));
        assert_eq!(f32_min(0, NEG32), (NEG32, 0));
        assert_eq!(f32_min(NEG32, 0), (NEG32, 0));
        assert_eq!(f32_max(0, NEG32), (0, 0));
        assert_eq!(f32_max(NEG32, 0), (0, 0));
        assert_eq!(f32_min(F32_CANONICAL_NAN, one), (one, 0));
        assert_eq!(f32_max(one, S_QNAN_PAYLOAD), (one, 0));
        assert_eq!(f32_min(S_SNAN, one), (one, NV));
        assert_eq!(f32_max(one, S_SNAN), (one, NV));
        assert_eq!(
            f32_min(S_QNAN_PAYLOAD, S_QNAN_PAYLOAD),
            (F32_CANONICAL_NAN, 0)
        );
        assert_eq!(f32_max(S_SNAN, F32_CANONICAL_NAN), (F32_CANONICAL_NAN, NV));
        assert_eq!(f32_max(S_INF | NEG32, S_MAX | NEG32), (S_MAX | NEG32, 0));
        assert_eq!(f64_min(NEG64, 0), (NEG64, 0));
        assert_eq!(f64_max(NEG64, 0), (0, 0));
        assert_eq!(f64_max(D_SNAN, d(-3.0)), (d(-3.0), NV));
        assert_eq!(f64_min(D_QNAN_PAYLOAD, D_SNAN), (F64_CANONICAL_NAN, NV));
        assert_eq!(f64_min(d(-2.0), d(-3.0)), (d(-3.0), 0));
        assert_eq!(f64_max(D_INF, D_MAX), (D_INF, 0));
    }

    #[test]
    fn comparisons() {
        let (one, two) = (s(1.0), s(2.0));
        assert_eq!(f32_eq(one, one), (true, 0));
        assert_eq!(f32_eq(0, NEG32), (true, 0));
        assert_eq!(f32_lt(NEG32, 0), (false, 0));
        assert_eq!(f32_le(NEG32, 0), (true, 0));
        assert_eq!(f32_lt(one, two), (true, 0));
        assert_eq!(f32_lt(two, one), (false, 0));
        assert_eq!(f32_le(one, one), (true, 0));
        assert_eq!(f32_lt(s(-2.0), s(-1.0)), (true, 0));
        assert_eq!(f32_lt(S_INF | NEG32, S_INF), (true, 0));
        // Quiet NaN: feq is quiet, flt/fle signal.
        assert_eq!(f32_eq(F32_CANONICAL_NAN, one), (false, 0));
        assert_eq!(f32_eq(F32_CANONICAL_NAN, F32_CANONICAL_NAN), (false, 0));
        assert_eq!(f32_lt(F32_CANONICAL_NAN, one), (false, NV));
        assert_eq!(f32_le(one, S_QNAN_PAYLOAD), (false, NV));
        assert_eq!(f32_eq(S_SNAN, one), (false, NV));
        assert_eq!(f32_le(S_SNAN, S_SNAN), (false, NV));
        assert_eq!(f64_eq(NEG64, 0), (true, 0));
        assert_eq!(f64_lt(d(-1.0), d(-0.5)), (true, 0));
        assert_eq!(f64_le(d(3.0), d(-3.0)), (false, 0));
        assert_eq!(f64_eq(D_SNAN, D_SNAN), (false, NV));
        assert_eq!(f64_eq(F64_CANONICAL_NAN, d(1.0)), (false, 0));
        assert_eq!(f64_lt(F64_CANONICAL_NAN, d(1.0)), (false, NV));
        assert_eq!(f64_lt(D_MIN_SUB | NEG64, NEG64), (true, 0));
    }

    #[test]
    fn classify_all_ten_classes() {
        let cases32: [(u32, u64); 10] = [
            (S_INF | NEG32, 1 << 0),
            (s(-1.0), 1 << 1),
            (S_MIN_SUB | NEG32, 1 << 2),
            (NEG32, 1 << 3),
            (0, 1 << 4),
            (0x007f_ffff, 1 << 5),
            (S_MIN_NORMAL, 1 << 6),
            (S_INF, 1 << 7),
            (S_SNAN | NEG32, 1 << 8),
            (F32_CANONICAL_NAN, 1 << 9),
        ];
        for (v, c) in cases32 {
            assert_eq!(f32_classify(v), c, "{v:#x}");
        }
        let cases64: [(u64, u64); 10] = [
            (D_INF | NEG64, 1 << 0),
            (D_MAX | NEG64, 1 << 1),
            (0x800f_ffff_ffff_ffff, 1 << 2),
            (NEG64, 1 << 3),
            (0, 1 << 4),
            (D_MIN_SUB, 1 << 5),
            (d(1.0), 1 << 6),
            (D_INF, 1 << 7),
            (0x7ff7_ffff_ffff_ffff, 1 << 8),
            (D_QNAN_PAYLOAD, 1 << 9),
        ];
        for (v, c) in cases64 {
            assert_eq!(f64_classify(v), c, "{v:#x}");
        }
    }

    #[test]
    fn float_to_int_rounding() {
        // (rm, 2.5 ->, -2.5 ->)
        let cases = [
            (NearestEven, 2, -2),
            (TowardZero, 2, -2),
            (Down, 2, -3),
            (Up, 3, -2),
            (NearestMaxMagnitude, 3, -3),
        ];
        for (rm, p, n) in cases {
            assert_eq!(f32_to_i32(s(2.5), rm), (p as u32, NX), "{rm:?}");
            assert_eq!(f32_to_i32(s(-2.5), rm), (n as u32, NX), "{rm:?}");
            assert_eq!(f64_to_i64(d(2.5), rm), (p as u64, NX), "{rm:?}");
            assert_eq!(f64_to_i64(d(-2.5), rm), (n as u64, NX), "{rm:?}");
            assert_eq!(f64_to_u32(d(2.5), rm), (p as u32, NX), "{rm:?}");
            assert_eq!(f32_to_u64(s(2.5), rm), (p as u64, NX), "{rm:?}");
        }
        assert_eq!(f32_to_i32(s(-7.0), NearestEven), (-7i32 as u32, 0));
        assert_eq!(f64_to_i32(NEG64, NearestEven), (0, 0));
        assert_eq!(f64_to_i32(D_MIN_SUB, Up), (1, NX));
        assert_eq!(f64_to_i32(D_MIN_SUB | NEG64, Down), (u32::MAX, NX));
        assert_eq!(f64_to_i32(D_MIN_SUB, NearestEven), (0, NX));
        assert_eq!(
            f32_to_i64(s(-2f32.powi(40)), TowardZero),
            ((-(1i64 << 40)) as u64, 0)
        );
    }

    #[test]
    fn float_to_int_saturation() {
        let i32max = i32::MAX as u32;
        let i32min = i32::MIN as u32;
        // 2^31 is just out of range; -2^31 is in range.
        assert_eq!(f32_to_i32(s(2147483648.0), TowardZero), (i32max, NV));
        assert_eq!(f32_to_i32(s(-2147483648.0), TowardZero), (i32min, 0));
        assert_eq!(f64_to_i32(d(2147483647.0), NearestEven), (i32max, 0));
        // 2^31 - 0.5: nearest-even rounds to 2^31 (out of range).
        assert_eq!(f64_to_i32(d(2147483647.5), NearestEven), (i32max, NV));
        assert_eq!(f64_to_i32(d(2147483647.5), TowardZero), (i32max, NX));
        // -2^31 - 0.5 (raw 0xc1e0_0000_0010_0000).
        let x = d(-2147483648.5);
        assert_eq!(x, 0xc1e0_0000_0010_0000);
        assert_eq!(f64_to_i32(x, NearestEven), (i32min, NX));
        assert_eq!(f64_to_i32(x, TowardZero), (i32min, NX));
        assert_eq!(f64_to_i32(x, Up), (i32min, NX));
        assert_eq!(f64_to_i32(x, Down), (i32min, NV));
        assert_eq!(f64_to_i32(x, NearestMaxMagnitude), (i32min, NV));
        // NaN saturates to the maximum, infinities to the matching end.
        for rm in ALL_RM {
            assert_eq!(f32_to_i32(F32_CANONICAL_NAN | NEG32, rm), (i32max, NV));
            assert_eq!(f32_to_i32(S_SNAN, rm), (i32max, NV));
            assert_eq!(f32_to_u32(F32_CANONICAL_NAN, rm), (u32::MAX, NV));
            assert_eq!(f32_to_i64(F32_CANONICAL_NAN, rm), (i64::MAX as u64, NV));
            assert_eq!(f32_to_u64(S_SNAN, rm), (u64::MAX, NV));
            assert_eq!(f64_to_i32(D_INF | NEG64, rm), (i32min, NV));
            assert_eq!(f64_to_u32(D_INF | NEG64, rm), (0, NV));
            assert_eq!(f64_to_u64(D_INF, rm), (u64::MAX, NV));
            assert_eq!(f64_to_i64(D_INF, rm), (i64::MAX as u64, NV));
            assert_eq!(f64_to_i64(D_QNAN_PAYLOAD, rm), (i64::MAX as u64, NV));
            assert_eq!(f64_to_u64(D_MAX | NEG64, rm), (0, NV));
        }
        // Unsigned 32-bit: 2^32 - 0.5 = 4294967295.5.
        let y = d(4294967295.5);
        assert_eq!(f64_to_u32(y, NearestEven), (u32::MAX, NV));
        assert_eq!(f64_to_u32(y, TowardZero), (u32::MAX, NX));
        assert_eq!(f64_to_u32(y, Down), (u32::MAX, NX));
        assert_eq!(f64_to_u32(y, Up), (u32::MAX, NV));
        assert_eq!(f64_to_u32(d(4294967296.0), TowardZero), (u32::MAX, NV));
        // Negative inputs to unsigned conversions: fine if they round to 0.
        let cases = [
            (NearestEven, (0, NX)),
            (TowardZero, (0, NX)),
            (Down, (0, NV)),
            (Up, (0, NX)),
            (NearestMaxMagnitude, (0, NV)),
        ];
        for (rm, e) in cases {
            assert_eq!(f32_to_u32(s(-0.5), rm), e, "{rm:?}");
            assert_eq!(f64_to_u64(d(-0.5), rm), (u64::from(e.0), e.1), "{rm:?}");
        }
        assert_eq!(f32_to_u32(s(-1.0), TowardZero), (0, NV));
        assert_eq!(f32_to_u32(NEG32, TowardZero), (0, 0));
        assert_eq!(f64_to_u32(d(-0.9), TowardZero), (0, NX));
        // 64-bit boundaries.
        assert_eq!(
            f64_to_i64(d(9223372036854775808.0), TowardZero),
            (i64::MAX as u64, NV)
        );
        assert_eq!(
            f64_to_i64(d(-9223372036854775808.0), TowardZero),
            (i64::MIN as u64, 0)
        );
        assert_eq!(
            f64_to_i64(0xc3e0_0000_0000_0001, TowardZero),
            (i64::MIN as u64, NV)
        );
        assert_eq!(
            f64_to_i64(0x43df_ffff_ffff_ffff, TowardZero),
            (0x7fff_ffff_ffff_fc00, 0)
        );
        assert_eq!(
            f32_to_i64(s(-9223372036854775808.0), Up),
            (i64::MIN as u64, 0)
        );
        assert_eq!(
            f64_to_u64(d(18446744073709551616.0), TowardZero),
            (u64::MAX, NV)
        );
        assert_eq!(
            f64_to_u64(0x43ef_ffff_ffff_ffff, TowardZero),
            (0xffff_ffff_ffff_f800, 0)
        );
        assert_eq!(
            f32_to_u64(s(9223372036854775808.0), TowardZero),
            (1 << 63, 0)
        );
        assert_eq!(f32_to_u64(S_MAX, TowardZero), (u64::MAX, NV));
        assert_eq!(f32_to_i32(S_MAX | NEG32, TowardZero), (i32min, NV));
    }

    #[test]
    fn int_to_float() {
        // 2^24 + 1 is not representable in binary32.
        assert_eq!(i32_to_f32(16_777_217, NearestEven), (0x4b80_0000, NX));
        assert_eq!(i32_to_f32(16_777_217, Up), (0x4b80_0001, NX));
        assert_eq!(i32_to_f32(-16_777_217i32 as u32, Up), (0xcb80_0000, NX));
        assert_eq!(i32_to_f32(-16_777_217i32 as u32, Down), (0xcb80_0001, NX));
        assert_eq!(i32_to_f32(i32::MIN as u32, NearestEven), (0xcf00_0000, 0));
        assert_eq!(i32_to_f32(0, Down), (0, 0));
        assert_eq!(i32_to_f32(u32::MAX, NearestEven), (s(-1.0), 0));
        assert_eq!(u32_to_f32(u32::MAX, NearestEven), (0x4f80_0000, NX));
        assert_eq!(u32_to_f32(u32::MAX, TowardZero), (0x4f7f_ffff, NX));
        assert_eq!(i64_to_f32(i64::MIN as u64, NearestEven), (0xdf00_0000, 0));
        assert_eq!(u64_to_f32(u64::MAX, NearestEven), (0x5f80_0000, NX));
        assert_eq!(u64_to_f32(u64::MAX, Down), (0x5f7f_ffff, NX));
        assert_eq!(
            i32_to_f64(i32::MIN as u32, NearestEven),
            (d(-2147483648.0), 0)
        );
        assert_eq!(u32_to_f64(u32::MAX, Up), (d(4294967295.0), 0));
        assert_eq!(
            i64_to_f64((1 << 53) + 1, NearestEven),
            (d(9007199254740992.0), NX)
        );
        assert_eq!(
            i64_to_f64((1 << 53) + 1, NearestMaxMagnitude),
            (d(9007199254740994.0), NX)
        );
        assert_eq!(
            i64_to_f64((1 << 53) + 3, NearestEven),
            (d(9007199254740996.0), NX)
        );
        assert_eq!(
            i64_to_f64(i64::MIN as u64, NearestEven),
            (0xc3e0_0000_0000_0000, 0)
        );
        assert_eq!(i64_to_f64(u64::MAX, NearestEven), (d(-1.0), 0));
        assert_eq!(
            u64_to_f64(u64::MAX, NearestEven),
            (0x43f0_0000_0000_0000, NX)
        );
        assert_eq!(
            u64_to_f64(u64::MAX, TowardZero),
            (0x43ef_ffff_ffff_ffff, NX)
        );
        assert_eq!(u64_to_f64(0, Down), (0, 0));
    }

    #[test]
    fn float_to_float() {
        assert_eq!(f32_to_f64(s(1.0)), (d(1.0), 0));
        assert_eq!(f32_to_f64(NEG32), (NEG64, 0));
        assert_eq!(f32_to_f64(S_INF | NEG32), (D_INF | NEG64, 0));
        assert_eq!(f32_to_f64(S_MIN_SUB), (d(2f64.powi(-149)), 0));
        assert_eq!(f32_to_f64(S_MAX), (d(f64::from(f32::MAX)), 0));
        assert_eq!(f32_to_f64(S_SNAN), (F64_CANONICAL_NAN, NV));
        assert_eq!(f32_to_f64(S_QNAN_PAYLOAD), (F64_CANONICAL_NAN, 0));
        let one_plus = d(1.0) + 1;
        assert_eq!(f64_to_f32(one_plus, NearestEven), (s(1.0), NX));
        assert_eq!(f64_to_f32(one_plus, Up), (0x3f80_0001, NX));
        assert_eq!(f64_to_f32(one_plus | NEG64, Down), (0xbf80_0001, NX));
        assert_eq!(f64_to_f32(D_MAX, NearestEven), (S_INF, OF | NX));
        assert_eq!(f64_to_f32(D_MAX, TowardZero), (S_MAX, OF | NX));
        assert_eq!(f64_to_f32(D_INF, TowardZero), (S_INF, 0));
        assert_eq!(f64_to_f32(D_MIN_SUB, NearestEven), (0, UF | NX));
        assert_eq!(f64_to_f32(D_MIN_SUB, Up), (S_MIN_SUB, UF | NX));
        assert_eq!(f64_to_f32(D_MIN_SUB | NEG64, Up), (NEG32, UF | NX));
        assert_eq!(f64_to_f32(D_SNAN, NearestEven), (F32_CANONICAL_NAN, NV));
        assert_eq!(
            f64_to_f32(D_QNAN_PAYLOAD, NearestEven),
            (F32_CANONICAL_NAN, 0)
        );
        assert_eq!(f64_to_f32(d(2f64.powi(-149)), NearestEven), (S_MIN_SUB, 0));
    }

    /// Deterministic splitmix64 for the randomised cross-checks.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        /// Random bits biased towards small, large and subnormal exponents.
        fn f64_bits(&mut self) -> u64 {
            let r = self.next();
            match r % 4 {
                0 => r,
                1 => (r & 0x800f_ffff_ffff_ffff) | ((self.next() % 8) << 52),
                _ => (r & 0x800f_ffff_ffff_ffff) | ((1023 - 60 + self.next() % 120) << 52),
            }
        }
        fn f32_bits(&mut self) -> u32 {
            let r = self.next() as u32;
            match r % 4 {
                0 => r,
                1 => (r & 0x807f_ffff) | ((self.next() as u32 % 8) << 23),
                _ => (r & 0x807f_ffff) | ((127 - 30 + self.next() as u32 % 60) << 23),
            }
        }
    }

    /// A host NaN must correspond to our canonical NaN; otherwise bits match.
    fn same64(ours: u64, host: f64) -> bool {
        if host.is_nan() {
            ours == F64_CANONICAL_NAN
        } else {
            ours == host.to_bits()
        }
    }
    fn same32(ours: u32, host: f32) -> bool {
        if host.is_nan() {
            ours == F32_CANONICAL_NAN
        } else {
            ours == host.to_bits()
        }
    }

    /// Round-to-nearest-even results must match the host's IEEE arithmetic.
    #[test]
    fn nearest_even_matches_host_arithmetic() {
        let mut rng = Rng(0x5eed);
        for _ in 0..50_000 {
            let (a, b, c) = (rng.f64_bits(), rng.f64_bits(), rng.f64_bits());
            let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
            let rm = NearestEven;
            assert!(same64(f64_add(a, b, rm).0, x + y), "add {a:#x} {b:#x}");
            assert!(same64(f64_sub(a, b, rm).0, x - y), "sub {a:#x} {b:#x}");
            assert!(same64(f64_mul(a, b, rm).0, x * y), "mul {a:#x} {b:#x}");
            assert!(same64(f64_div(a, b, rm).0, x / y), "div {a:#x} {b:#x}");
            assert!(same64(f64_sqrt(a, rm).0, x.sqrt()), "sqrt {a:#x}");
            assert!(
                same64(f64_fma(a, b, c, false, false, rm).0, x.mul_add(y, z)),
                "fma {a:#x}"
            );
            assert!(same32(f64_to_f32(a, rm).0, x as f32), "f64->f32 {a:#x}");
            assert!(
                same64(i64_to_f64(a, rm).0, a as i64 as f64),
                "i64->f64 {a:#x}"
            );
            assert!(same64(u64_to_f64(a, rm).0, a as f64), "u64->f64 {a:#x}");
            if !x.is_nan() {
                // Rust's `as` truncates and saturates like RTZ (except NaN).
                assert_eq!(
                    f64_to_i64(a, TowardZero).0,
                    x as i64 as u64,
                    "f64->i64 {a:#x}"
                );
                assert_eq!(f64_to_u32(a, TowardZero).0, x as u32, "f64->u32 {a:#x}");
            }

            let (a, b, c) = (rng.f32_bits(), rng.f32_bits(), rng.f32_bits());
            let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
            assert!(same32(f32_add(a, b, rm).0, x + y), "add {a:#x} {b:#x}");
            assert!(same32(f32_sub(a, b, rm).0, x - y), "sub {a:#x} {b:#x}");
            assert!(same32(f32_mul(a, b, rm).0, x * y), "mul {a:#x} {b:#x}");
            assert!(same32(f32_div(a, b, rm).0, x / y), "div {a:#x} {b:#x}");
            assert!(same32(f32_sqrt(a, rm).0, x.sqrt()), "sqrt {a:#x}");
            assert!(
                same32(f32_fma(a, b, c, false, false, rm).0, x.mul_add(y, z)),
                "fma {a:#x}"
            );
            assert!(same64(f32_to_f64(a).0, f64::from(x)), "f32->f64 {a:#x}");
            let v = rng.next();
            assert!(
                same32(i64_to_f32(v, rm).0, v as i64 as f32),
                "i64->f32 {v:#x}"
            );
            assert!(
                same32(u32_to_f32(v as u32, rm).0, v as u32 as f32),
                "u32->f32 {v:#x}"
            );
            if !x.is_nan() {
                assert_eq!(
                    f32_to_i32(a, TowardZero).0,
                    x as i32 as u32,
                    "f32->i32 {a:#x}"
                );
                assert_eq!(f32_to_u64(a, TowardZero).0, x as u64, "f32->u64 {a:#x}");
                let host_lt = x < y;
                assert_eq!(f32_lt(a, b).0, host_lt && !y.is_nan());
                assert_eq!(f32_eq(a, b).0, x == y);
            }
        }
    }

    /// Directed results must bracket the exact value: RDN <= RNE/RMM <= RUP,
    /// RTZ equals one of RDN/RUP, and all agree (with no NX) when exact.
    #[test]
    fn directed_modes_bracket_nearest() {
        let mut rng = Rng(0xdead_beef);
        let key = |bits: u64| -> i64 {
            let mag = (bits & !NEG64) as i64;
            if bits & NEG64 != 0 { -mag } else { mag }
        };
        for _ in 0..20_000 {
            let (a, b, c) = (rng.f64_bits(), rng.f64_bits(), rng.f64_bits());
            let ops: [&dyn Fn(RoundingMode) -> (u64, u8); 5] = [
                &|rm| f64_add(a, b, rm),
                &|rm| f64_mul(a, b, rm),
                &|rm| f64_div(a, b, rm),
                &|rm| f64_sqrt(a, rm),
                &|rm| f64_fma(a, b, c, false, false, rm),
            ];
            for op in ops {
                let [rne, rtz, rdn, rup, rmm] = ALL_RM.map(op);
                if rne.0 == F64_CANONICAL_NAN {
                    continue;
                }
                assert!(
                    key(rdn.0) <= key(rne.0) && key(rne.0) <= key(rup.0),
                    "{a:#x} {b:#x}"
                );
                assert!(
                    key(rdn.0) <= key(rmm.0) && key(rmm.0) <= key(rup.0),
                    "{a:#x} {b:#x}"
                );
                assert!(rtz.0 == rdn.0 || rtz.0 == rup.0);
                let exact = rne.1 & NX == 0;
                for r in [rtz, rdn, rup, rmm] {
                    assert_eq!(r.1 & NX == 0, exact, "{a:#x} {b:#x}");
                    if exact {
                        assert_eq!(r.0 & !NEG64, rne.0 & !NEG64);
                    }
                }
            }
        }
    }
}
