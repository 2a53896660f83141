//! Fused multiply-add for translated code, computed by the host with the host's
//! IEEE exception flags. No short sequence of host operations gives the exact
//! error of a fused multiply-add (which the inexact flag needs), but the host
//! FPU's own status flags are exact: on x86-64, MXCSR records invalid, overflow,
//! underflow (tiny after rounding and inexact, as RISC-V detects it) and
//! inexact for the operation, in round to nearest even, the default mode.
//!
//! Translated code calls these only for round to nearest even and operands that
//! are not NaNs, so the host's NaN results (x86's default NaN is negative) only
//! come from invalid operations, where RISC-V's canonical NaN is substituted.
//! On other hosts the translator leaves fused multiply-adds to the interpreter.

/// Whether this host has fused multiply-add helpers (see the module docs).
pub(crate) const AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// fflags bits.
const NX: u32 = 1;
const UF: u32 = 2;
const OF: u32 = 4;
const NV: u32 = 16;

/// `a * b + c` on doubles (bits in, bits out), rounded to nearest even; ORs
/// the exception flags into `*fcsr`.
pub(crate) extern "C" fn jit_fma_d(fcsr: *mut u32, a: u64, b: u64, c: u64) -> u64 {
    let (bits, status) = with_host_flags(a, |a| {
        let r = f64::from_bits(a).mul_add(f64::from_bits(b), f64::from_bits(c));
        if r.is_nan() {
            0x7ff8_0000_0000_0000
        } else {
            r.to_bits()
        }
    });
    accrue(fcsr, status);
    bits
}

/// `a * b + c` on singles (the low 32 bits in and out), as [`jit_fma_d`].
pub(crate) extern "C" fn jit_fma_s(fcsr: *mut u32, a: u64, b: u64, c: u64) -> u64 {
    let single = |v: u64| f32::from_bits(v as u32);
    let (bits, status) = with_host_flags(a, |a| {
        let r = single(a).mul_add(single(b), single(c));
        if r.is_nan() {
            0x7fc0_0000
        } else {
            u64::from(r.to_bits())
        }
    });
    accrue(fcsr, status);
    bits
}

fn accrue(fcsr: *mut u32, flags: u32) {
    // SAFETY: translated code passes the address of the calling hart's fcsr,
    // which is live and not otherwise accessed during the call.
    unsafe { *fcsr |= flags };
}

/// MXCSR as Rust code runs: every exception masked, round to nearest even,
/// no flush to zero, and the status flags clear.
#[cfg(target_arch = "x86_64")]
const MXCSR_DEFAULT: u32 = 0x1f80;

/// Runs `op` on `input` with the host's exception flags cleared, and returns
/// its result and the RISC-V flags it raised. The status flags stay set
/// afterwards: they are sticky, and nothing on the host reads them.
#[cfg(target_arch = "x86_64")]
fn with_host_flags(input: u64, op: impl FnOnce(u64) -> u64) -> (u64, u32) {
    use std::arch::asm;
    let default = MXCSR_DEFAULT;
    let mut input = input;
    // SAFETY: loads MXCSR with the value it has while Rust code runs, status
    // flags cleared (a valid MXCSR). `input` passes through the asm, so the
    // operation on it cannot move before this point.
    unsafe {
        asm!("ldmxcsr [{m}] /* {v} */", m = in(reg) &raw const default, v = inout(reg) input,
             options(nostack, readonly))
    };
    let result = op(input);
    let mut status = 0u32;
    // SAFETY: stmxcsr stores the 4-byte MXCSR into a valid local. The result is
    // an operand, so the operation completes before the flags are read.
    unsafe {
        asm!("stmxcsr [{m}] /* {v} */", m = in(reg) &raw mut status, v = in(reg) result,
             options(nostack));
    }
    let mut flags = 0;
    for (mxcsr, riscv) in [(1 << 0, NV), (1 << 3, OF), (1 << 4, UF), (1 << 5, NX)] {
        if status & mxcsr != 0 {
            flags |= riscv;
        }
    }
    (result, flags)
}

/// Never called: [`AVAILABLE`] is false here.
#[cfg(not(target_arch = "x86_64"))]
fn with_host_flags(input: u64, op: impl FnOnce(u64) -> u64) -> (u64, u32) {
    (op(input), NV)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn fma_d(a: f64, b: f64, c: f64) -> (f64, u32) {
        let mut fcsr = 0;
        let r = jit_fma_d(&raw mut fcsr, a.to_bits(), b.to_bits(), c.to_bits());
        (f64::from_bits(r), fcsr)
    }

    #[test]
    fn flags_follow_the_operation() {
        assert_eq!(fma_d(2.0, 3.0, 1.0), (7.0, 0));
        // 0.1 * 3 + 0 is not exact.
        assert_eq!(fma_d(0.1, 3.0, 0.0).1, NX);
        // The error of a product is exact: fma(a, b, -RN(ab)).
        let (a, b) = (0.1f64, 0.7f64);
        assert_eq!(fma_d(a, b, -(a * b)).1, 0);
        assert_eq!(fma_d(f64::MAX, 2.0, 0.0), (f64::INFINITY, OF | NX));
        let (r, flags) = fma_d(f64::INFINITY, 0.0, 1.0);
        assert_eq!((r.to_bits(), flags), (0x7ff8_0000_0000_0000, NV));
        let (r, flags) = fma_d(f64::MIN_POSITIVE, 0.3, 0.0);
        assert!(r.is_subnormal());
        assert_eq!(flags, UF | NX);
    }

    #[test]
    fn singles_round_as_singles() {
        let mut fcsr = 0;
        let r = jit_fma_s(
            &raw mut fcsr,
            u64::from(1.5f32.to_bits()),
            u64::from(2.0f32.to_bits()),
            u64::from(0.25f32.to_bits()),
        );
        assert_eq!((f32::from_bits(r as u32), fcsr), (3.25, 0));
    }
}
