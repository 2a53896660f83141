//! Integer arithmetic with its flags: pure functions of the operands, the
//! operand size (1, 2, 4 or 8 bytes) and the incoming flags.
//!
//! Each returns the result and the new arithmetic flags (only bits of
//! [`STATUS`]); the caller merges them into RFLAGS. Flags the manuals leave
//! undefined get what the recorded silicon shows where the conformance data pins
//! it, and otherwise what the same formula gives for a one-step operation.

use crate::state::flags::{AF, CF, OF, PF, SF, STATUS, ZF};

/// All ones in the low `size` bytes.
#[inline]
pub fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}

/// The sign bit of a `size`-byte value.
#[inline]
pub fn sign(size: u8) -> u64 {
    1u64 << (u32::from(size) * 8 - 1)
}

/// `value`'s low `size` bytes, sign-extended to 64 bits.
#[inline]
pub fn sign_extend(value: u64, size: u8) -> u64 {
    let shift = 64 - u32::from(size) * 8;
    (((value << shift) as i64) >> shift) as u64
}

/// SF, ZF and PF of a `size`-byte result.
#[inline]
pub fn szp(result: u64, size: u8) -> u64 {
    let r = result & mask(size);
    let mut f = 0;
    if r == 0 {
        f |= ZF;
    }
    if r & sign(size) != 0 {
        f |= SF;
    }
    if (r as u8).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// `a + b + carry`.
#[inline]
pub fn add(a: u64, b: u64, carry: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let wide = u128::from(a) + u128::from(b) + u128::from(carry);
    let r = (wide as u64) & m;
    let mut f = szp(r, size);
    if wide > u128::from(m) {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (a ^ r) & (b ^ r) & sign(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// `a - b - borrow`.
#[inline]
pub fn sub(a: u64, b: u64, borrow: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let r = a.wrapping_sub(b).wrapping_sub(u64::from(borrow)) & m;
    let mut f = szp(r, size);
    if u128::from(a) < u128::from(b) + u128::from(borrow) {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (a ^ b) & (a ^ r) & sign(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// Flags of AND, OR, XOR and TEST: CF and OF clear, AF clear (undefined).
#[inline]
pub fn logic(result: u64, size: u8) -> (u64, u64) {
    let r = result & mask(size);
    (r, szp(r, size))
}

/// Shift and rotate operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    /// Rotate left.
    Rol,
    /// Rotate right.
    Ror,
    /// Rotate left through carry.
    Rcl,
    /// Rotate right through carry.
    Rcr,
    /// Shift left.
    Shl,
    /// Logical shift right.
    Shr,
    /// Arithmetic shift right.
    Sar,
}

/// How OF comes out of a shift or rotate by more than one bit, which the
/// architecture leaves undefined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftOverflow {
    /// As the last one-bit step leaves it: the 286's microcode loops.
    LastStep,
    /// As a one-bit shift of the original operand would set it: Intel's
    /// current parts.
    FirstStep,
}

/// Shifts or rotates `a` by `count` (already masked as the CPU masks it).
/// Returns the result and the new flags, or `None` when the count is zero and
/// nothing changes. Rotates change only CF and OF; the others keep the old
/// flags, so `flags` (the incoming RFLAGS) is merged in. `overflow` says how
/// OF comes out for counts above one.
pub fn shift(
    op: Shift,
    a: u64,
    count: u32,
    flags: u64,
    size: u8,
    overflow: ShiftOverflow,
) -> Option<(u64, u64)> {
    if count == 0 {
        return None;
    }
    let bits = u32::from(size) * 8;
    let m = mask(size);
    let a = a & m;
    let msb = |v: u64| v & sign(size) != 0;
    let msb2 = |v: u64| v & (sign(size) >> 1) != 0;
    let cf_in = flags & CF != 0;
    // Rotating through carry by a multiple of the width plus one changes
    // nothing, flags included, on current parts.
    let through_carry = matches!(op, Shift::Rcl | Shift::Rcr);
    if overflow == ShiftOverflow::FirstStep && through_carry && count.is_multiple_of(bits + 1) {
        return None;
    }
    if overflow == ShiftOverflow::FirstStep && count > 1 {
        let (r, f) = shift(op, a, count, flags, size, ShiftOverflow::LastStep)?;
        let (_, first) = shift(op, a, 1, flags, size, ShiftOverflow::LastStep)?;
        return Some((r, (f & !OF) | (first & OF)));
    }
    let rotate_flags = |r: u64, cf: bool, of: bool| {
        let mut f = flags & STATUS & !(CF | OF);
        if cf {
            f |= CF;
        }
        if of {
            f |= OF;
        }
        (r, f)
    };
    Some(match op {
        Shift::Rol => {
            let n = count % bits;
            let r = if n == 0 {
                a
            } else {
                ((a << n) | (a >> (bits - n))) & m
            };
            let cf = r & 1 != 0;
            rotate_flags(r, cf, msb(r) != cf)
        }
        Shift::Ror => {
            let n = count % bits;
            let r = if n == 0 {
                a
            } else {
                ((a >> n) | (a << (bits - n))) & m
            };
            rotate_flags(r, msb(r), msb(r) != msb2(r))
        }
        Shift::Rcl => {
            let mut r = a;
            let mut cf = cf_in;
            for _ in 0..count % (bits + 1) {
                let out = msb(r);
                r = ((r << 1) | u64::from(cf)) & m;
                cf = out;
            }
            rotate_flags(r, cf, msb(r) != cf)
        }
        Shift::Rcr => {
            let mut r = a;
            let mut cf = cf_in;
            for _ in 0..count % (bits + 1) {
                let out = r & 1 != 0;
                r = (r >> 1) | if cf { sign(size) } else { 0 };
                cf = out;
            }
            rotate_flags(r, cf, msb(r) != msb2(r))
        }
        Shift::Shl => {
            let wide = u128::from(a) << count.min(127);
            let r = (wide as u64) & m;
            let cf = (wide >> bits) & 1 != 0;
            let mut f = szp(r, size);
            if cf {
                f |= CF;
            }
            if msb(r) != cf {
                f |= OF;
            }
            (r, f)
        }
        Shift::Shr => {
            let r = if count >= 64 { 0 } else { a >> count };
            let cf = count <= 64 && (a >> (count - 1)) & 1 != 0;
            let mut f = szp(r, size);
            if cf {
                f |= CF;
            }
            if msb(r) != msb2(r) {
                f |= OF;
            }
            (r, f)
        }
        Shift::Sar => {
            let s = sign_extend(a, size) as i64;
            let r = (s >> count.min(63)) as u64 & m;
            let cf = (s >> (count - 1).min(63)) & 1 != 0;
            let mut f = szp(r, size);
            if cf {
                f |= CF;
            }
            (r, f)
        }
    })
}

/// SF and PF of a multiply's low half, with ZF and AF clear: what Intel's
/// multipliers leave in the flags the architecture calls undefined.
fn multiply_flags(lo: u64, size: u8) -> u64 {
    szp(lo, size) & !ZF
}

/// Unsigned multiply: (low half, high half, flags). CF = OF = the high half
/// is not zero; the undefined flags as [`multiply_flags`] says.
pub fn mul(a: u64, b: u64, size: u8) -> (u64, u64, u64) {
    let m = mask(size);
    let wide = u128::from(a & m) * u128::from(b & m);
    let bits = u32::from(size) * 8;
    let lo = (wide as u64) & m;
    let hi = ((wide >> bits) as u64) & m;
    let mut f = multiply_flags(lo, size);
    if hi != 0 {
        f |= CF | OF;
    }
    (lo, hi, f)
}

/// Signed multiply: (low half, high half, flags). CF = OF = the product does
/// not fit the low half.
pub fn imul(a: u64, b: u64, size: u8) -> (u64, u64, u64) {
    let m = mask(size);
    let wide = i128::from(sign_extend(a, size) as i64) * i128::from(sign_extend(b, size) as i64);
    let bits = u32::from(size) * 8;
    let lo = (wide as u64) & m;
    let hi = ((wide >> bits) as u64) & m;
    let mut f = multiply_flags(lo, size);
    if i128::from(sign_extend(lo, size) as i64) != wide {
        f |= CF | OF;
    }
    (lo, hi, f)
}

/// Unsigned divide of `hi:lo` by `divisor`: (quotient, remainder), or `None`
/// for #DE (zero divisor or a quotient that does not fit).
pub fn div(hi: u64, lo: u64, divisor: u64, size: u8) -> Option<(u64, u64)> {
    let m = mask(size);
    let divisor = u128::from(divisor & m);
    if divisor == 0 {
        return None;
    }
    let bits = u32::from(size) * 8;
    let dividend = (u128::from(hi & m) << bits) | u128::from(lo & m);
    let q = dividend / divisor;
    if q > u128::from(m) {
        return None;
    }
    Some((q as u64, (dividend % divisor) as u64))
}

/// Signed divide of `hi:lo` by `divisor`: (quotient, remainder), or `None`
/// for #DE. The quotient may be the most negative value (the 286 and later
/// allow it; the 8086 did not).
pub fn idiv(hi: u64, lo: u64, divisor: u64, size: u8) -> Option<(u64, u64)> {
    let m = mask(size);
    let bits = u32::from(size) * 8;
    let divisor = i128::from(sign_extend(divisor, size) as i64);
    if divisor == 0 {
        return None;
    }
    let raw = (u128::from(hi & m) << bits) | u128::from(lo & m);
    // Sign-extend the 2×size-byte dividend.
    let shift = 128 - 2 * bits;
    let dividend = ((raw << shift) as i128) >> shift;
    let q = dividend.checked_div(divisor)?;
    let r = dividend.checked_rem(divisor)?;
    let min = -(1i128 << (bits - 1));
    let max = (1i128 << (bits - 1)) - 1;
    if q < min || q > max {
        return None;
    }
    Some(((q as u64) & m, (r as u64) & m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sets_carry_overflow_and_auxiliary() {
        assert_eq!(add(0xff, 1, false, 1), (0, ZF | CF | AF | PF));
        assert_eq!(add(0x7f, 1, false, 1).1 & (OF | SF), OF | SF);
        assert_eq!(add(0xffff_ffff, 0, true, 4).0, 0);
        assert_eq!(add(u64::MAX, 1, false, 8).1 & CF, CF);
    }

    #[test]
    fn sub_borrows() {
        assert_eq!(sub(0, 1, false, 2), (0xffff, CF | SF | AF | PF));
        assert_eq!(sub(0x80, 1, false, 1).1 & OF, OF);
        assert_eq!(sub(5, 4, true, 1).1 & ZF, ZF);
    }

    fn shift_last(op: Shift, a: u64, count: u32, flags: u64, size: u8) -> Option<(u64, u64)> {
        shift(op, a, count, flags, size, ShiftOverflow::LastStep)
    }

    #[test]
    fn shifts_follow_the_last_step() {
        // shl al,1 of 0x80: result 0, carry out, OF = msb ^ cf = 1.
        let (r, f) = shift_last(Shift::Shl, 0x80, 1, 0, 1).unwrap();
        assert_eq!((r, f & (CF | OF | ZF)), (0, CF | OF | ZF));
        // A count past the width clears everything.
        assert_eq!(shift_last(Shift::Shl, 0xff, 20, 0, 1).unwrap().1 & CF, 0);
        assert_eq!(shift_last(Shift::Sar, 0x80, 20, 0, 1).unwrap().0, 0xff);
        assert_eq!(shift_last(Shift::Rcl, 0x80, 1, 0, 1).unwrap().0, 0);
        assert_eq!(shift_last(Shift::Rcr, 0x01, 1, CF, 1).unwrap().0, 0x80);
        assert_eq!(shift_last(Shift::Rol, 0x81, 8, 0, 1).unwrap(), (0x81, CF));
        assert!(shift_last(Shift::Shr, 1, 0, 0, 2).is_none());
    }

    #[test]
    fn divide_overflow_and_negative_quotients() {
        assert_eq!(div(0, 7, 2, 1), Some((3, 1)));
        assert_eq!(div(1, 0, 1, 1), None);
        assert_eq!(div(0, 1, 0, 4), None);
        // -128 / 1 fits; 128 / 1 does not.
        assert_eq!(idiv(0xff, 0x80, 1, 1), Some((0x80, 0)));
        assert_eq!(idiv(0, 0x80, 1, 1), None);
        assert_eq!(idiv(0xffff, 0xfff9, 2, 2), Some((0xfffd, 0xffff)));
    }

    #[test]
    fn multiply_flags() {
        assert_eq!(mul(0x10, 0x10, 1).1, 1);
        assert_eq!(mul(0x10, 0x10, 1).2 & CF, CF);
        assert_eq!(imul(0xff, 0xff, 1).2 & CF, 0);
        assert_eq!(imul(0x40, 2, 1).2 & OF, OF);
    }
}
