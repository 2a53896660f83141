/* Floating-point edge cases:
 *  - NaN-boxing: single-precision operations reading an f register whose upper
 *    32 bits are not all ones (after fmv.d.x or fld) see the canonical NaN;
 *    flw/fmv.w.x/single results write ones to bits 63:32; fmv.x.w and fsw move
 *    the low 32 bits whatever the upper bits are; fsgnj.s takes the sign of an
 *    unboxed rs2 as that of the canonical NaN (+).
 *  - canonical NaN results (0x7fc00000 / 0x7ff8000000000000): payloads and
 *    signs of input NaNs are never propagated.
 *  - rounding modes through the rm field and through frm with rm = dyn
 *    (1/3, -1/3, and fcvt.w of 2.5, -2.5, 0.5, -0.5, 1.5 under RNE, RTZ, RDN,
 *    RUP, RMM); a static rm overrides frm.
 *  - each fflags bit on its own; saturated results of out-of-range/NaN
 *    conversions; flags are sticky.
 *  - reserved rounding modes: rm field 5 or 6, or rm = dyn with frm = 5..7,
 *    raise illegal instruction (destination and fflags unchanged; mtval is 0
 *    or the instruction bits); operations without rounding still run with an
 *    invalid frm; with mstatus.FS = Off every FP instruction and FP CSR
 *    access is illegal.
 *  - fmin/fmax with signed zeros, one/two NaNs, sNaN (NV); feq quiet vs
 *    flt/fle signalling; fclass.s/fclass.d of all ten classes.
 * Expected values come from an exact IEEE 754 model, not from a run of the
 * machine (generator: tests/guest/gen/gen_fp_edge.py). Check numbers are the TEST numbers (exit code on failure). */
#include "test.h"
#include "fp.h"

/* Illegal-instruction bookkeeping (ill_trap below). */
#define CLR_ILL la t0, ill_area; li t1, -1; sd t1, 0(t0)
#define CHECK_NO_ILL la t0, ill_area; ld t1, 0(t0); CHECK(t1, -1)
/* mcause = 2, mepc = lbl, mtval = 0 or the instruction bits at lbl. */
#define CHECK_ILL(lbl) la t0, ill_area; ld t1, 0(t0); CHECK(t1, 2); ld t1, 8(t0); la t2, lbl; CHECK_EQ(t1, t2); ld t1, 16(t0); beqz t1, 9f; lwu t2, 0(t2); CHECK_EQ(t1, t2); 9:

  .text
  .globl test_main
test_main:
  fscsr zero
  /* NaN-boxing */
  TEST(1)  /* flw sets bits 63:32 to ones */
  li t1, -1
  fmv.d.x f1, zero
  la a1, edata
  flw f1, 0(a1)
  CHECK_FREG(f1, 0xffffffff3f800000)
  TEST(2)  /* fmv.w.x and a single-precision result are boxed too */
  fmv.d.x f3, zero
  li t1, 0x40000000
  fmv.w.x f3, t1
  CHECK_FREG(f3, 0xffffffff40000000)
  fmv.d.x f4, zero
  fadd.s f4, f3, f3
  CHECK_FREG(f4, 0xffffffff40800000)
  TEST(3)  /* unboxed 2.0 reads as canonical NaN: no NV */
  li t1, 0x40000000
  fmv.d.x f1, t1
  fsflags zero
  fadd.s f3, f1, f1
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(4)  /* fld of a double, then used as a single: canonical NaN */
  la a1, edata
  fld f1, 8(a1)
  FSET_S(f2, 0x3f800000)
  fsflags zero
  fadd.s f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(5)  /* upper bits not all ones (bit 32 clear): NaN */
  li t1, 0xfffffffe3f800000
  fmv.d.x f1, t1
  FSET_S(f2, 0x3f800000)
  fsflags zero
  fmul.s f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(6)  /* upper bits not all ones (bit 63 clear): NaN */
  li t1, 0x7fffffff3f800000
  fmv.d.x f1, t1
  FSET_S(f2, 0x3f800000)
  fsflags zero
  fmul.s f3, f2, f1
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(7)  /* fsqrt.s of unboxed 4.0: canonical NaN, no NV */
  li t1, 0x40800000
  fmv.d.x f1, t1
  fsflags zero
  fsqrt.s f3, f1
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(8)  /* fmv.x.w ignores the upper bits, sign-extends bit 31 */
  li t1, 0x1234567887654321
  fmv.d.x f1, t1
  fsflags zero
  fmv.x.w a0, f1
  CHECK_FLAGS(0)
  CHECK(a0, 0xffffffff87654321)
  TEST(9)  /* fmv.x.w of an unboxed value */
  li t1, 0x40000000
  fmv.d.x f1, t1
  fsflags zero
  fmv.x.w a0, f1
  CHECK_FLAGS(0)
  CHECK(a0, 0x40000000)
  TEST(10)  /* fsw stores the low 32 bits of an unboxed register */
  li t1, 0x1234567887654321
  fmv.d.x f1, t1
  la a2, ebuf
  sd zero, 0(a2)
  fsw f1, 0(a2)
  ld t1, 0(a2)
  CHECK(t1, 0x87654321)
  TEST(11)  /* fsw of a double loaded by fld: low 32 bits */
  la a1, edata
  fld f1, 16(a1)
  la a2, ebuf
  sd zero, 0(a2)
  fsw f1, 0(a2)
  ld t1, 0(a2)
  CHECK(t1, 0x54442d18)
  TEST(12)  /* fsgnj.s: unboxed rs1 is the canonical NaN */
  li t1, 0x40000000
  fmv.d.x f1, t1
  FSET_S(f2, 0x3f800000)
  fsflags zero
  fsgnj.s f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(13)  /* fsgnjn.s: unboxed rs1 is the canonical NaN, sign from ~rs2 */
  li t1, 0x40000000
  fmv.d.x f1, t1
  FSET_S(f2, 0x3f800000)
  fsflags zero
  fsgnjn.s f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffffffc00000)
  TEST(14)  /* fsgnj.s: unboxed rs2 (bit 31 set) gives the sign of the canonical NaN (+) */
  li t1, 0xc0000000
  fmv.d.x f1, t1
  FSET_S(f2, 0xbf800000)
  fsflags zero
  fsgnj.s f3, f2, f1
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff3f800000)
  TEST(15)  /* fsgnjx.s: unboxed rs2 has sign + */
  li t1, 0xc0000000
  fmv.d.x f1, t1
  FSET_S(f2, 0xbf800000)
  fsflags zero
  fsgnjx.s f3, f2, f1
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffffbf800000)
  TEST(16)  /* fcvt.d.s of unboxed 1.0: canonical double NaN */
  li t1, 0x3f800000
  fmv.d.x f1, t1
  fsflags zero
  fcvt.d.s f3, f1
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0x7ff8000000000000)
  TEST(17)  /* fclass.s of an unboxed value: quiet NaN */
  li t1, 0x3f800000
  fmv.d.x f1, t1
  fsflags zero
  fclass.s a0, f1
  CHECK_FLAGS(0)
  CHECK(a0, 0x200)
  TEST(18)  /* fclass.s of an unboxed "sNaN": still the canonical quiet NaN */
  li t1, 0xff800001
  fmv.d.x f1, t1
  fsflags zero
  fclass.s a0, f1
  CHECK_FLAGS(0)
  CHECK(a0, 0x200)
  TEST(19)  /* feq.s of an unboxed value with itself: 0, quiet */
  li t1, 0x3f800000
  fmv.d.x f1, t1
  fsflags zero
  feq.s a0, f1, f1
  CHECK_FLAGS(0)
  CHECK(a0, 0x0)
  TEST(20)  /* flt.s with an unboxed operand: 0, NV */
  li t1, 0x3f800000
  fmv.d.x f1, t1
  FSET_S(f2, 0x40000000)
  fsflags zero
  flt.s a0, f1, f2
  CHECK_FLAGS(FL_NV)
  CHECK(a0, 0x0)
  TEST(21)  /* fcvt.w.s of unboxed 10.0: NaN -> 2^31-1, NV */
  li t1, 0x41200000
  fmv.d.x f1, t1
  fsflags zero
  fcvt.w.s a0, f1
  CHECK_FLAGS(FL_NV)
  CHECK(a0, 0x7fffffff)
  TEST(22)  /* fmin.s(unboxed, 2.0) = 2.0: the NaN is quiet */
  li t1, 0x3f800000
  fmv.d.x f1, t1
  FSET_S(f2, 0x40000000)
  fsflags zero
  fmin.s f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff40000000)
  TEST(23)  /* fmadd.s with an unboxed addend: canonical NaN */
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40000000)
  li t1, 0x3f800000
  fmv.d.x f4, t1
  fsflags zero
  fmadd.s f3, f1, f2, f4
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)
  TEST(24)  /* a double op on a boxed single sees a quiet double NaN */
  FSET_S(f1, 0x3f800000)
  FSET_D(f2, 0x3ff0000000000000)
  fsflags zero
  fadd.d f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0x7ff8000000000000)
  /* canonical NaN results */
  TS_RR(25, fadd.s, 0x7fc12345, 0x3f800000, 0xffffffff7fc00000, 0)  /* qNaN payload not propagated */
  TS_RR(26, fadd.s, 0xffc00000, 0x3f800000, 0xffffffff7fc00000, 0)  /* negative qNaN -> positive canonical NaN */
  TS_RR(27, fmul.s, 0x7f812345, 0x3f800000, 0xffffffff7fc00000, FL_NV)  /* sNaN with payload: canonical, NV */
  TS_RR(28, fsub.s, 0x3f800000, 0xff812345, 0xffffffff7fc00000, FL_NV)  /* negative sNaN in rs2: canonical, NV */
  TS_RR(29, fdiv.s, 0x0, 0x80000000, 0xffffffff7fc00000, FL_NV)  /* 0/-0 */
  TS_R_RM(30, fsqrt.s, rne, 0xbf800000, 0xffffffff7fc00000, FL_NV)  /* sqrt(-1) */
  TD_RR(31, fadd.d, 0x7ff8000000012345, 0x3ff0000000000000, 0x7ff8000000000000, 0)  /* double payload not propagated */
  TD_RR(32, fmul.d, 0xfff0000000000001, 0x3ff0000000000000, 0x7ff8000000000000, FL_NV)  /* negative double sNaN */
  TD_RR(33, fsub.d, 0x7ff0000000000000, 0x7ff0000000000000, 0x7ff8000000000000, FL_NV)  /* inf - inf */
  TD_R_RM(34, fcvt.s.d, rne, 0x7ff8000012345678, 0xffffffff7fc00000, 0)  /* fcvt.s.d drops the payload */
  TD_R_RM(35, fcvt.s.d, rne, 0xfff8000000000000, 0xffffffff7fc00000, 0)  /* fcvt.s.d of negative qNaN */
  TS_R(36, fcvt.d.s, 0x7fc12345, 0x7ff8000000000000, 0)  /* fcvt.d.s drops the payload */
  TD_RRR_RM(37, fmadd.d, rne, 0x7ff0000000000000, 0x0, 0x3ff0000000000000, 0x7ff8000000000000, FL_NV)  /* inf*0 + 1: NV */
  TS_RRR_RM(38, fnmadd.s, rne, 0x7fc00000, 0x3f800000, 0x3f800000, 0xffffffff7fc00000, 0)  /* NaN in fnmadd: canonical, not negated */
  /* rounding through the rm field */
  TS_X_R_RM(39, fcvt.w.s, rne, 0x40200000, 0x2, FL_NX)  /* 2.5 rne */
  TS_X_R_RM(40, fcvt.w.s, rtz, 0x40200000, 0x2, FL_NX)  /* 2.5 rtz */
  TS_X_R_RM(41, fcvt.w.s, rdn, 0x40200000, 0x2, FL_NX)  /* 2.5 rdn */
  TS_X_R_RM(42, fcvt.w.s, rup, 0x40200000, 0x3, FL_NX)  /* 2.5 rup */
  TS_X_R_RM(43, fcvt.w.s, rmm, 0x40200000, 0x3, FL_NX)  /* 2.5 rmm */
  TS_X_R_RM(44, fcvt.w.s, rne, 0xc0200000, 0xfffffffffffffffe, FL_NX)  /* -2.5 rne */
  TS_X_R_RM(45, fcvt.w.s, rtz, 0xc0200000, 0xfffffffffffffffe, FL_NX)  /* -2.5 rtz */
  TS_X_R_RM(46, fcvt.w.s, rdn, 0xc0200000, 0xfffffffffffffffd, FL_NX)  /* -2.5 rdn */
  TS_X_R_RM(47, fcvt.w.s, rup, 0xc0200000, 0xfffffffffffffffe, FL_NX)  /* -2.5 rup */
  TS_X_R_RM(48, fcvt.w.s, rmm, 0xc0200000, 0xfffffffffffffffd, FL_NX)  /* -2.5 rmm */
  TS_X_R_RM(49, fcvt.w.s, rne, 0x3f000000, 0x0, FL_NX)  /* 0.5 rne */
  TS_X_R_RM(50, fcvt.w.s, rtz, 0x3f000000, 0x0, FL_NX)  /* 0.5 rtz */
  TS_X_R_RM(51, fcvt.w.s, rdn, 0x3f000000, 0x0, FL_NX)  /* 0.5 rdn */
  TS_X_R_RM(52, fcvt.w.s, rup, 0x3f000000, 0x1, FL_NX)  /* 0.5 rup */
  TS_X_R_RM(53, fcvt.w.s, rmm, 0x3f000000, 0x1, FL_NX)  /* 0.5 rmm */
  TS_X_R_RM(54, fcvt.w.s, rne, 0xbf000000, 0x0, FL_NX)  /* -0.5 rne */
  TS_X_R_RM(55, fcvt.w.s, rtz, 0xbf000000, 0x0, FL_NX)  /* -0.5 rtz */
  TS_X_R_RM(56, fcvt.w.s, rdn, 0xbf000000, 0xffffffffffffffff, FL_NX)  /* -0.5 rdn */
  TS_X_R_RM(57, fcvt.w.s, rup, 0xbf000000, 0x0, FL_NX)  /* -0.5 rup */
  TS_X_R_RM(58, fcvt.w.s, rmm, 0xbf000000, 0xffffffffffffffff, FL_NX)  /* -0.5 rmm */
  TS_X_R_RM(59, fcvt.w.s, rne, 0x3fc00000, 0x2, FL_NX)  /* 1.5 rne */
  TS_X_R_RM(60, fcvt.w.s, rtz, 0x3fc00000, 0x1, FL_NX)  /* 1.5 rtz */
  TS_X_R_RM(61, fcvt.w.s, rdn, 0x3fc00000, 0x1, FL_NX)  /* 1.5 rdn */
  TS_X_R_RM(62, fcvt.w.s, rup, 0x3fc00000, 0x2, FL_NX)  /* 1.5 rup */
  TS_X_R_RM(63, fcvt.w.s, rmm, 0x3fc00000, 0x2, FL_NX)  /* 1.5 rmm */
  /* rounding through frm (rm = dyn) */
  TEST(64)  /* fdiv.s 1/3, frm = rne */
  fsrmi 0
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff3eaaaaab)
  TEST(65)  /* fdiv.s 1/3, frm = rtz */
  fsrmi 1
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff3eaaaaaa)
  TEST(66)  /* fdiv.s 1/3, frm = rdn */
  fsrmi 2
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff3eaaaaaa)
  TEST(67)  /* fdiv.s 1/3, frm = rup */
  fsrmi 3
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff3eaaaaab)
  TEST(68)  /* fdiv.s 1/3, frm = rmm */
  fsrmi 4
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff3eaaaaab)
  TEST(69)  /* fdiv.s -1/3, frm = rne */
  fsrmi 0
  FSET_S(f1, 0xbf800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffffbeaaaaab)
  TEST(70)  /* fdiv.s -1/3, frm = rtz */
  fsrmi 1
  FSET_S(f1, 0xbf800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffffbeaaaaaa)
  TEST(71)  /* fdiv.s -1/3, frm = rdn */
  fsrmi 2
  FSET_S(f1, 0xbf800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffffbeaaaaab)
  TEST(72)  /* fdiv.s -1/3, frm = rup */
  fsrmi 3
  FSET_S(f1, 0xbf800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffffbeaaaaaa)
  TEST(73)  /* fdiv.s -1/3, frm = rmm */
  fsrmi 4
  FSET_S(f1, 0xbf800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffffbeaaaaab)
  TEST(74)  /* fdiv.d 1/3, frm = rne */
  fsrmi 0
  FSET_D(f1, 0x3ff0000000000000)
  FSET_D(f2, 0x4008000000000000)
  fsflags zero
  fdiv.d f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0x3fd5555555555555)
  TEST(75)  /* fdiv.d 1/3, frm = rtz */
  fsrmi 1
  FSET_D(f1, 0x3ff0000000000000)
  FSET_D(f2, 0x4008000000000000)
  fsflags zero
  fdiv.d f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0x3fd5555555555555)
  TEST(76)  /* fdiv.d 1/3, frm = rdn */
  fsrmi 2
  FSET_D(f1, 0x3ff0000000000000)
  FSET_D(f2, 0x4008000000000000)
  fsflags zero
  fdiv.d f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0x3fd5555555555555)
  TEST(77)  /* fdiv.d 1/3, frm = rup */
  fsrmi 3
  FSET_D(f1, 0x3ff0000000000000)
  FSET_D(f2, 0x4008000000000000)
  fsflags zero
  fdiv.d f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0x3fd5555555555556)
  TEST(78)  /* fdiv.d 1/3, frm = rmm */
  fsrmi 4
  FSET_D(f1, 0x3ff0000000000000)
  FSET_D(f2, 0x4008000000000000)
  fsflags zero
  fdiv.d f3, f1, f2, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0x3fd5555555555555)
  TEST(79)  /* fcvt.w.d 2.5, frm = rne */
  fsrmi 0
  FSET_D(f1, 0x4004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x2)
  TEST(80)  /* fcvt.w.d 2.5, frm = rtz */
  fsrmi 1
  FSET_D(f1, 0x4004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x2)
  TEST(81)  /* fcvt.w.d 2.5, frm = rdn */
  fsrmi 2
  FSET_D(f1, 0x4004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x2)
  TEST(82)  /* fcvt.w.d 2.5, frm = rup */
  fsrmi 3
  FSET_D(f1, 0x4004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x3)
  TEST(83)  /* fcvt.w.d 2.5, frm = rmm */
  fsrmi 4
  FSET_D(f1, 0x4004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x3)
  TEST(84)  /* fcvt.w.d -2.5, frm = rne */
  fsrmi 0
  FSET_D(f1, 0xc004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xfffffffffffffffe)
  TEST(85)  /* fcvt.w.d -2.5, frm = rtz */
  fsrmi 1
  FSET_D(f1, 0xc004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xfffffffffffffffe)
  TEST(86)  /* fcvt.w.d -2.5, frm = rdn */
  fsrmi 2
  FSET_D(f1, 0xc004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xfffffffffffffffd)
  TEST(87)  /* fcvt.w.d -2.5, frm = rup */
  fsrmi 3
  FSET_D(f1, 0xc004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xfffffffffffffffe)
  TEST(88)  /* fcvt.w.d -2.5, frm = rmm */
  fsrmi 4
  FSET_D(f1, 0xc004000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xfffffffffffffffd)
  TEST(89)  /* fcvt.w.d -0.5, frm = rne */
  fsrmi 0
  FSET_D(f1, 0xbfe0000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x0)
  TEST(90)  /* fcvt.w.d -0.5, frm = rtz */
  fsrmi 1
  FSET_D(f1, 0xbfe0000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x0)
  TEST(91)  /* fcvt.w.d -0.5, frm = rdn */
  fsrmi 2
  FSET_D(f1, 0xbfe0000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xffffffffffffffff)
  TEST(92)  /* fcvt.w.d -0.5, frm = rup */
  fsrmi 3
  FSET_D(f1, 0xbfe0000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0x0)
  TEST(93)  /* fcvt.w.d -0.5, frm = rmm */
  fsrmi 4
  FSET_D(f1, 0xbfe0000000000000)
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS(FL_NX)
  CHECK(a0, 0xffffffffffffffff)
  TEST(94)  /* fcvt.s.w 2^24+1, frm = rne */
  fsrmi 0
  li a0, 16777217
  fsflags zero
  fcvt.s.w f3, a0, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff4b800000)
  TEST(95)  /* fcvt.s.w 2^24+1, frm = rup */
  fsrmi 3
  li a0, 16777217
  fsflags zero
  fcvt.s.w f3, a0, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff4b800001)
  TEST(96)  /* fcvt.s.w 2^24+1, frm = rdn */
  fsrmi 2
  li a0, 16777217
  fsflags zero
  fcvt.s.w f3, a0, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff4b800000)
  TEST(97)  /* a static rm (rtz) overrides frm (rup) */
  fsrmi 3
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fsflags zero
  fdiv.s f3, f1, f2, rtz
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff3eaaaaaa)
  TEST(98)  /* fmadd.s with frm = rup */
  fsrmi 3
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x33800000)
  fsflags zero
  fmadd.s f3, f1, f2, f4, dyn
  CHECK_FLAGS(FL_NX)
  CHECK_FREG(f3, 0xffffffff40400001)
  fsrmi 0
  /* each fflags bit */
  TS_RR(99, fadd.s, 0x3f800000, 0x3f800000, 0xffffffff40000000, 0)  /* exact: no flags */
  TS_RR(100, fdiv.s, 0x3f800000, 0x40400000, 0xffffffff3eaaaaab, FL_NX)  /* NX */
  TS_RR(101, fdiv.s, 0x3f800000, 0x0, 0xffffffff7f800000, FL_DZ)  /* DZ */
  TS_RR(102, fmul.s, 0x7f7fffff, 0x40000000, 0xffffffff7f800000, FL_OF|FL_NX)  /* OF (with NX) */
  TS_RR(103, fmul.s, 0xd800000, 0xd800000, 0xffffffff00000000, FL_UF|FL_NX)  /* UF (with NX) */
  TS_R_RM(104, fsqrt.s, rne, 0xbf800000, 0xffffffff7fc00000, FL_NV)  /* NV */
  TD_RR(105, fdiv.d, 0x3ff0000000000000, 0x0, 0x7ff0000000000000, FL_DZ)  /* DZ (double) */
  TD_RR(106, fmul.d, 0x16687e92154ef7ac, 0x16687e92154ef7ac, 0x0, FL_UF|FL_NX)  /* UF (double) */
  TS_X_R_RM(107, fcvt.w.s, rne, 0x7fc00000, 0x7fffffff, FL_NV)  /* NaN -> 0x7fffffff, NV */
  TS_X_R_RM(108, fcvt.w.s, rne, 0x4f32d05e, 0x7fffffff, FL_NV)  /* 3e9 -> 0x7fffffff, NV */
  TS_X_R_RM(109, fcvt.w.s, rne, 0xcf32d05e, 0xffffffff80000000, FL_NV)  /* -3e9 -> -2^31, NV */
  TS_X_R_RM(110, fcvt.wu.s, rne, 0xc0400000, 0x0, FL_NV)  /* -3 -> 0, NV */
  TS_X_R_RM(111, fcvt.wu.s, rne, 0x4f9502f9, 0xffffffffffffffff, FL_NV)  /* 5e9 -> 0xffffffff sign-extended, NV */
  TS_X_R_RM(112, fcvt.l.s, rne, 0x5f0ac723, 0x7fffffffffffffff, FL_NV)  /* 1e19 -> 2^63-1, NV */
  TS_X_R_RM(113, fcvt.l.s, rne, 0xdf0ac723, 0x8000000000000000, FL_NV)  /* -1e19 -> -2^63, NV */
  TS_X_R_RM(114, fcvt.lu.s, rne, 0xff800000, 0x0, FL_NV)  /* -inf -> 0, NV */
  TS_X_R_RM(115, fcvt.lu.s, rne, 0x7f800001, 0xffffffffffffffff, FL_NV)  /* sNaN -> 2^64-1, NV */
  TD_X_R_RM(116, fcvt.wu.d, rne, 0x7ff8000000000000, 0xffffffffffffffff, FL_NV)  /* NaN -> 0xffffffff sign-extended, NV */
  TD_X_R_RM(117, fcvt.l.d, rne, 0xfe37e43c8800759c, 0x8000000000000000, FL_NV)  /* -1e300 -> -2^63, NV */
  TEST(118)  /* flags are sticky: an exact op does not clear them */
  li t1, 0x1f
  fsflags t1
  FSET_S(f1, 0x3f800000)
  fadd.s f3, f1, f1
  CHECK_FLAGS(0x1f)
  fsflags zero
  TEST(119)  /* flags accumulate across operations */
  FSET_S(f1, 0x7f7fffff)
  FSET_S(f2, 0x40000000)
  fmul.s f3, f1, f2
  fmv.w.x f2, zero
  fdiv.s f3, f1, f2
  CHECK_FLAGS(FL_OF | FL_NX | FL_DZ)
  fsflags zero
  /* reserved rounding modes (illegal instruction) */
  la t0, ill_trap
  csrw mtvec, t0
  TEST(120)  /* fadd.s with rm field 5 */
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill120:
  .insn r 0x53, 5, 0x00, f3, f1, f2
  .option pop
  CHECK_ILL(.Lill120)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(121)  /* fadd.s with rm field 6 */
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill121:
  .insn r 0x53, 6, 0x00, f3, f1, f2
  .option pop
  CHECK_ILL(.Lill121)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(122)  /* fmul.d with rm field 5 */
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill122:
  .insn r 0x53, 5, 0x09, f3, f1, f2
  .option pop
  CHECK_ILL(.Lill122)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(123)  /* fcvt.w.s with rm field 6 */
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill123:
  .insn r 0x53, 6, 0x60, a0, f1, x0
  .option pop
  CHECK_ILL(.Lill123)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(124)  /* fmadd.s with rm field 5 */
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill124:
  .insn r4 0x43, 5, 0, f3, f1, f2, f4
  .option pop
  CHECK_ILL(.Lill124)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(125)  /* dyn with frm = 5 */
  fsrmi 5
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill125:
  fadd.s f3, f1, f2, dyn
  .option pop
  CHECK_ILL(.Lill125)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(126)  /* dyn with frm = 6 */
  fsrmi 6
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill126:
  fdiv.s f3, f1, f2, dyn
  .option pop
  CHECK_ILL(.Lill126)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(127)  /* dyn with frm = 7 */
  fsrmi 7
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill127:
  fsqrt.d f3, f1, dyn
  .option pop
  CHECK_ILL(.Lill127)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(128)  /* fcvt.s.d dyn with frm = 5 */
  fsrmi 5
  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill128:
  fcvt.s.d f3, f1, dyn
  .option pop
  CHECK_ILL(.Lill128)
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)
  TEST(129)  /* a static rm still works while frm = 5 */
  fsrmi 5
  CLR_ILL
  fsflags zero
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  .option push
  .option norvc
  fadd.s f3, f1, f2, rne
  .option pop
  CHECK_NO_ILL
  CHECK_FREG(f3, 0xffffffff40800000)
  TEST(130)  /* fsgnjn.s has no rm: runs while frm = 7 */
  fsrmi 7
  CLR_ILL
  fsflags zero
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  .option push
  .option norvc
  fsgnjn.s f3, f1, f2
  .option pop
  CHECK_NO_ILL
  CHECK_FREG(f3, 0xffffffffbf800000)
  TEST(131)  /* fmax.s has no rm: runs while frm = 6 */
  fsrmi 6
  CLR_ILL
  fsflags zero
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  .option push
  .option norvc
  fmax.s f3, f1, f2
  .option pop
  CHECK_NO_ILL
  CHECK_FREG(f3, 0xffffffff40400000)
  TEST(132)  /* flt.s has no rm: runs while frm = 5 */
  fsrmi 5
  CLR_ILL
  fsflags zero
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  .option push
  .option norvc
  flt.s a0, f1, f2
  .option pop
  CHECK_NO_ILL
  CHECK(a0, 1)
  TEST(133)  /* an invalid frm is still readable and replaceable */
  fsrmi 6
  frrm t1
  CHECK(t1, 6)
  fsrmi 0
  frcsr t1
  CHECK(t1, 0)
  TEST(134)  /* FS = Off: fadd.s is illegal */
  CLR_ILL
  li t1, (3 << 13)
  csrc mstatus, t1
  li a0, 0x77
  .option push
  .option norvc
.Lill134:
  fadd.s f3, f1, f2
  .option pop
  li t1, (1 << 13)
  csrs mstatus, t1
  CHECK_ILL(.Lill134)
  CHECK(a0, 0x77)
  TEST(135)  /* FS = Off: fld is illegal */
  CLR_ILL
  li t1, (3 << 13)
  csrc mstatus, t1
  li a0, 0x77
  .option push
  .option norvc
.Lill135:
  fld f3, 0(sp)
  .option pop
  li t1, (1 << 13)
  csrs mstatus, t1
  CHECK_ILL(.Lill135)
  CHECK(a0, 0x77)
  TEST(136)  /* FS = Off: fmv.x.d is illegal */
  CLR_ILL
  li t1, (3 << 13)
  csrc mstatus, t1
  li a0, 0x77
  .option push
  .option norvc
.Lill136:
  fmv.x.d a0, f1
  .option pop
  li t1, (1 << 13)
  csrs mstatus, t1
  CHECK_ILL(.Lill136)
  CHECK(a0, 0x77)
  TEST(137)  /* FS = Off: reading fflags is illegal */
  CLR_ILL
  li t1, (3 << 13)
  csrc mstatus, t1
  li a0, 0x77
  .option push
  .option norvc
.Lill137:
  csrr a0, fflags
  .option pop
  li t1, (1 << 13)
  csrs mstatus, t1
  CHECK_ILL(.Lill137)
  CHECK(a0, 0x77)
  TEST(138)  /* FS = Off: writing fcsr is illegal */
  CLR_ILL
  li t1, (3 << 13)
  csrc mstatus, t1
  li a0, 0x77
  .option push
  .option norvc
.Lill138:
  fscsr zero
  .option pop
  li t1, (1 << 13)
  csrs mstatus, t1
  CHECK_ILL(.Lill138)
  CHECK(a0, 0x77)
  la t0, unexpected_trap
  csrw mtvec, t0
  fscsr zero
  /* fmin/fmax: signed zeros and NaNs */
  TS_RR(139, fmin.s, 0x80000000, 0x0, 0xffffffff80000000, 0)
  TS_RR(140, fmin.s, 0x0, 0x80000000, 0xffffffff80000000, 0)
  TS_RR(141, fmax.s, 0x80000000, 0x0, 0xffffffff00000000, 0)
  TS_RR(142, fmax.s, 0x0, 0x80000000, 0xffffffff00000000, 0)
  TS_RR(143, fmin.s, 0x7fc00000, 0x3f800000, 0xffffffff3f800000, 0)  /* qNaN, number: the number, no flag */
  TS_RR(144, fmax.s, 0x3f800000, 0xffc00000, 0xffffffff3f800000, 0)  /* number, negative qNaN */
  TS_RR(145, fmin.s, 0x7f800001, 0x3f800000, 0xffffffff3f800000, FL_NV)  /* sNaN: the number, NV */
  TS_RR(146, fmax.s, 0xbf800000, 0x7f800001, 0xffffffffbf800000, FL_NV)  /* sNaN: the number, NV */
  TS_RR(147, fmin.s, 0x7fc12345, 0x7fc54321, 0xffffffff7fc00000, 0)  /* two qNaNs: canonical */
  TS_RR(148, fmax.s, 0x7f800001, 0x7f800001, 0xffffffff7fc00000, FL_NV)  /* two sNaNs: canonical, NV */
  TD_RR(149, fmin.d, 0x8000000000000000, 0x0, 0x8000000000000000, 0)
  TD_RR(150, fmax.d, 0x8000000000000000, 0x0, 0x0, 0)
  TD_RR(151, fmin.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x3ff0000000000000, 0)
  TD_RR(152, fmax.d, 0x7ff0000000000001, 0x3ff0000000000000, 0x3ff0000000000000, FL_NV)  /* NV */
  TD_RR(153, fmin.d, 0x7ff0000000000001, 0x7ff8000000000000, 0x7ff8000000000000, FL_NV)  /* canonical, NV */
  /* feq quiet / flt, fle signalling */
  TS_X_RR(154, feq.s, 0x7fc00000, 0x7fc00000, 0x0, 0)
  TS_X_RR(155, feq.s, 0x7fc00000, 0x3f800000, 0x0, 0)
  TS_X_RR(156, flt.s, 0x7fc00000, 0x3f800000, 0x0, FL_NV)
  TS_X_RR(157, fle.s, 0x3f800000, 0x7fc00000, 0x0, FL_NV)
  TS_X_RR(158, feq.s, 0x7f800001, 0x7f800001, 0x0, FL_NV)
  TS_X_RR(159, flt.s, 0x7f800001, 0x3f800000, 0x0, FL_NV)
  TD_X_RR(160, feq.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x0, 0)
  TD_X_RR(161, flt.d, 0x3ff0000000000000, 0x7ff8000000000000, 0x0, FL_NV)
  TD_X_RR(162, fle.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x0, FL_NV)
  TD_X_RR(163, feq.d, 0x7ff0000000000001, 0x3ff0000000000000, 0x0, FL_NV)
  /* fclass: all ten classes */
  TS_X_R(164, fclass.s, 0xff800000, 0x1, 0)  /* -inf */
  TS_X_R(165, fclass.s, 0xbf800000, 0x2, 0)  /* -normal */
  TS_X_R(166, fclass.s, 0x807fffff, 0x4, 0)  /* -subnormal */
  TS_X_R(167, fclass.s, 0x80000000, 0x8, 0)  /* -0 */
  TS_X_R(168, fclass.s, 0x0, 0x10, 0)  /* +0 */
  TS_X_R(169, fclass.s, 0x7fffff, 0x20, 0)  /* +subnormal (largest) */
  TS_X_R(170, fclass.s, 0x800000, 0x40, 0)  /* +normal (smallest) */
  TS_X_R(171, fclass.s, 0x7f800000, 0x80, 0)  /* +inf */
  TS_X_R(172, fclass.s, 0x7fbfffff, 0x100, 0)  /* sNaN (largest) */
  TS_X_R(173, fclass.s, 0xffc00000, 0x200, 0)  /* negative qNaN */
  TD_X_R(174, fclass.d, 0xfff0000000000000, 0x1, 0)  /* -inf */
  TD_X_R(175, fclass.d, 0xfe37e43c8800759c, 0x2, 0)  /* -normal */
  TD_X_R(176, fclass.d, 0x8000000000000001, 0x4, 0)  /* -subnormal */
  TD_X_R(177, fclass.d, 0x8000000000000000, 0x8, 0)  /* -0 */
  TD_X_R(178, fclass.d, 0x0, 0x10, 0)  /* +0 */
  TD_X_R(179, fclass.d, 0xfffffffffffff, 0x20, 0)  /* +subnormal */
  TD_X_R(180, fclass.d, 0x10000000000000, 0x40, 0)  /* +normal */
  TD_X_R(181, fclass.d, 0x7ff0000000000000, 0x80, 0)  /* +inf */
  TD_X_R(182, fclass.d, 0xfff0000000000001, 0x100, 0)  /* negative sNaN */
  TD_X_R(183, fclass.d, 0x7fffffffffffffff, 0x200, 0)  /* qNaN */

  fscsr zero
  ret

  /* Illegal-instruction handler for this file: record mcause/mepc/mtval in
   * ill_area and resume after the (4-byte) instruction. */
  .align 2
ill_trap:
  csrw mscratch, t0
  la t0, ill_area
  sd t1, 24(t0)
  csrr t1, mcause
  sd t1, 0(t0)
  csrr t1, mepc
  sd t1, 8(t0)
  addi t1, t1, 4
  csrw mepc, t1
  csrr t1, mtval
  sd t1, 16(t0)
  ld t1, 24(t0)
  csrr t0, mscratch
  mret

  .data
  .align 3
edata:
  .word 0x3f800000, 0
  .dword 0x3ff0000000000000
  .dword 0x400921fb54442d18
ebuf:
  .dword 0
ill_area:
  .dword 0, 0, 0, 0
