/* RV64D: every double-precision instruction, checked as bit patterns with
 * the exact fflags each operation accrues: fld/fsd, fmv.x.d/fmv.d.x,
 * fadd/fsub/fmul/fdiv/fsqrt.d, fmadd/fmsub/fnmsub/fnmadd.d, fsgnj/fsgnjn/
 * fsgnjx.d, fmin/fmax.d, feq/flt/fle.d, fclass.d, fcvt.{w,wu,l,lu}.d,
 * fcvt.d.{w,wu,l,lu}, fcvt.s.d (rounding, overflow, underflow, NaN; result
 * NaN-boxed) and fcvt.d.s (exact; NaN canonicalised).
 * Expected values come from an exact IEEE 754 model (tininess after rounding,
 * canonical NaN results), not from a run of the machine. Check numbers are
 * the TEST numbers (exit code on failure). */
#include "test.h"
#include "fp.h"

  .text
  .globl test_main
test_main:
  fscsr zero
  /* fld/fsd and moves */
  TEST(1)  /* fld */
  la a1, ddata
  fld f1, 0(a1)
  CHECK_FREG(f1, 0x400921fb54442d18)
  TEST(2)  /* fld of a signaling NaN keeps the payload, no flags */
  fsflags zero
  fld f2, 8(a1)
  CHECK_FREG(f2, 0x7ff0000000000001)
  CHECK_FLAGS(0)
  TEST(3)  /* fsd, negative offset */
  la a2, dbuf
  fsd f1, 0(a2)
  addi a3, a2, 16
  fsd f2, -8(a3)
  ld t1, 0(a2)
  CHECK(t1, 0x400921fb54442d18)
  ld t1, 8(a2)
  CHECK(t1, 0x7ff0000000000001)
  TEST(4)  /* fmv.d.x / fmv.x.d move all 64 bits unchanged */
  li t1, 0xfff0000000000123
  fmv.d.x f3, t1
  fmv.x.d a0, f3
  CHECK(a0, 0xfff0000000000123)
  li t1, 0x0000000012345678
  fmv.d.x f3, t1
  fmv.x.d a0, f3
  CHECK(a0, 0x12345678)
  CHECK_FLAGS(0)
  TEST(5)  /* fld/fsd of a single-precision boxed value are plain 64-bit moves */
  FSET_S(f4, 0x3f800000)
  fsd f4, 0(a2)
  ld t1, 0(a2)
  CHECK(t1, 0xffffffff3f800000)
  /* fadd.d */
  TD_RR(6, fadd.d, 0x3ff0000000000000, 0x4000000000000000, 0x4008000000000000, 0)
  TD_RR(7, fadd.d, 0x3ff0000000000000, 0x3ca0000000000000, 0x3ff0000000000000, FL_NX)  /* 1 + 2^-53: tie to even */
  TD_RR(8, fadd.d, 0x3ff0000000000000, 0x3ca0000000000001, 0x3ff0000000000001, FL_NX)  /* just above the tie */
  TD_RR(9, fadd.d, 0x3fb999999999999a, 0x3fc999999999999a, 0x3fd3333333333334, FL_NX)  /* 0.1 + 0.2 */
  TD_RR(10, fadd.d, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RR(11, fadd.d, 0x0, 0x8000000000000000, 0x0, 0)
  TD_RR(12, fadd.d, 0x8000000000000000, 0x8000000000000000, 0x8000000000000000, 0)
  TD_RR(13, fadd.d, 0x7fefffffffffffff, 0x7fefffffffffffff, 0x7ff0000000000000, FL_OF|FL_NX)  /* overflow */
  TD_RR_RM(14, fadd.d, rdn, 0x7fefffffffffffff, 0x7fefffffffffffff, 0x7fefffffffffffff, FL_OF|FL_NX)  /* overflow RDN -> max */
  TD_RR(15, fadd.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x7ff8000000000000, 0)
  TD_RR(16, fadd.d, 0x7ff0000000000001, 0x3ff0000000000000, 0x7ff8000000000000, FL_NV)  /* sNaN: NV */
  TD_RR_RM(17, fadd.d, rdn, 0x3ff0000000000000, 0xbff0000000000000, 0x8000000000000000, 0)  /* -0 under RDN */
  TD_RR_RM(18, fadd.d, rmm, 0x3ff0000000000000, 0x3ca0000000000000, 0x3ff0000000000001, FL_NX)  /* tie RMM */
  TD_RR_RM(19, fadd.d, rup, 0x3ff0000000000000, 0x3c30000000000000, 0x3ff0000000000001, FL_NX)
  TD_RR_RM(20, fadd.d, rdn, 0xbff0000000000000, 0xbc30000000000000, 0xbff0000000000001, FL_NX)
  TD_RR(21, fadd.d, 0x1, 0x1, 0x2, 0)
  /* fsub.d */
  TD_RR(22, fsub.d, 0x4008000000000000, 0x4014000000000000, 0xc000000000000000, 0)
  TD_RR(23, fsub.d, 0x3ff0000000000000, 0x3ff0000000000000, 0x0, 0)
  TD_RR_RM(24, fsub.d, rdn, 0x3ff0000000000000, 0x3ff0000000000000, 0x8000000000000000, 0)
  TD_RR(25, fsub.d, 0x7ff0000000000000, 0x7ff0000000000000, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RR(26, fsub.d, 0x10000000000000, 0x1, 0xfffffffffffff, 0)  /* exact subnormal, no UF */
  TD_RR_RM(27, fsub.d, rtz, 0x3ff0000000000000, 0x3ca0000000000000, 0x3fefffffffffffff, 0)
  /* fmul.d */
  TD_RR(28, fmul.d, 0x4008000000000000, 0xc000000000000000, 0xc018000000000000, 0)
  TD_RR(29, fmul.d, 0x8000000000000000, 0x7ff0000000000000, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RR(30, fmul.d, 0x1a70000000000000, 0x1a70000000000000, 0x0, FL_UF|FL_NX)  /* UF|NX -> +0 */
  TD_RR(31, fmul.d, 0x7fefffffffffffff, 0x4000000000000000, 0x7ff0000000000000, FL_OF|FL_NX)  /* overflow */
  TD_RR_RM(32, fmul.d, rtz, 0x7fefffffffffffff, 0x4000000000000000, 0x7fefffffffffffff, FL_OF|FL_NX)
  TD_RR(33, fmul.d, 0x3ff0000000000001, 0xfffffffffffff, 0x10000000000000, FL_NX)  /* rounds to 2^-1022: NX only (tininess after rounding) */
  TD_RR_RM(34, fmul.d, rtz, 0x3ff0000000000001, 0xfffffffffffff, 0xfffffffffffff, FL_UF|FL_NX)  /* UF|NX */
  TD_RR(35, fmul.d, 0x10000000000000, 0x3fe0000000000000, 0x8000000000000, 0)  /* exact subnormal, no flags */
  TD_RR(36, fmul.d, 0x3ff199999999999a, 0x3ff199999999999a, 0x3ff35c28f5c28f5d, FL_NX)
  TD_RR(37, fmul.d, 0x8000000000000000, 0x4014000000000000, 0x8000000000000000, 0)
  /* fdiv.d */
  TD_RR_RM(38, fdiv.d, rne, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555, FL_NX)  /* 1/3 rne */
  TD_RR_RM(39, fdiv.d, rtz, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555, FL_NX)  /* 1/3 rtz */
  TD_RR_RM(40, fdiv.d, rdn, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555, FL_NX)  /* 1/3 rdn */
  TD_RR_RM(41, fdiv.d, rup, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555556, FL_NX)  /* 1/3 rup */
  TD_RR_RM(42, fdiv.d, rmm, 0x3ff0000000000000, 0x4008000000000000, 0x3fd5555555555555, FL_NX)  /* 1/3 rmm */
  TD_RR_RM(43, fdiv.d, rne, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555, FL_NX)  /* -1/3 rne */
  TD_RR_RM(44, fdiv.d, rtz, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555, FL_NX)  /* -1/3 rtz */
  TD_RR_RM(45, fdiv.d, rdn, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555556, FL_NX)  /* -1/3 rdn */
  TD_RR_RM(46, fdiv.d, rup, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555, FL_NX)  /* -1/3 rup */
  TD_RR_RM(47, fdiv.d, rmm, 0xbff0000000000000, 0x4008000000000000, 0xbfd5555555555555, FL_NX)  /* -1/3 rmm */
  TD_RR(48, fdiv.d, 0x3ff0000000000000, 0x0, 0x7ff0000000000000, FL_DZ)  /* DZ */
  TD_RR(49, fdiv.d, 0xbff0000000000000, 0x0, 0xfff0000000000000, FL_DZ)  /* DZ */
  TD_RR(50, fdiv.d, 0x0, 0x0, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RR(51, fdiv.d, 0x7ff0000000000000, 0x7ff0000000000000, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RR(52, fdiv.d, 0x4018000000000000, 0x4008000000000000, 0x4000000000000000, 0)
  TD_RR(53, fdiv.d, 0x3ff0000000000000, 0xfff0000000000000, 0x8000000000000000, 0)
  TD_RR(54, fdiv.d, 0xfff0000000000000, 0x0, 0xfff0000000000000, 0)  /* no DZ */
  TD_RR(55, fdiv.d, 0x10000000000000, 0x4008000000000000, 0x5555555555555, FL_UF|FL_NX)  /* subnormal result */
  /* fsqrt.d */
  TD_R_RM(56, fsqrt.d, rne, 0x4010000000000000, 0x4000000000000000, 0)
  TD_R_RM(57, fsqrt.d, rne, 0x4000000000000000, 0x3ff6a09e667f3bcd, FL_NX)
  TD_R_RM(58, fsqrt.d, rtz, 0x4000000000000000, 0x3ff6a09e667f3bcc, FL_NX)
  TD_R_RM(59, fsqrt.d, rup, 0x4000000000000000, 0x3ff6a09e667f3bcd, FL_NX)
  TD_R_RM(60, fsqrt.d, rne, 0xbff0000000000000, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_R_RM(61, fsqrt.d, rne, 0x8000000000000000, 0x8000000000000000, 0)  /* -0 */
  TD_R_RM(62, fsqrt.d, rne, 0x7ff0000000000000, 0x7ff0000000000000, 0)
  TD_R_RM(63, fsqrt.d, rne, 0xfff0000000000000, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_R_RM(64, fsqrt.d, rne, 0x1, 0x1e60000000000000, 0)
  TD_R_RM(65, fsqrt.d, rne, 0x7ff0000000000001, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_R_RM(66, fsqrt.d, rne, 0x7e37e43c8800759c, 0x5f138d352e5096af, FL_NX)
  /* fused multiply-add */
  TD_RRR_RM(67, fmadd.d, rne, 0x4000000000000000, 0x4008000000000000, 0x3ff0000000000000, 0x401c000000000000, 0)
  TD_RRR_RM(68, fmsub.d, rne, 0x4000000000000000, 0x4008000000000000, 0x3ff0000000000000, 0x4014000000000000, 0)
  TD_RRR_RM(69, fnmsub.d, rne, 0x4000000000000000, 0x4008000000000000, 0x3ff0000000000000, 0xc014000000000000, 0)
  TD_RRR_RM(70, fnmadd.d, rne, 0x4000000000000000, 0x4008000000000000, 0x3ff0000000000000, 0xc01c000000000000, 0)
  TD_RRR_RM(71, fmadd.d, rne, 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000, 0x3cc0000000000000, FL_NX)  /* single rounding */
  TD_RRR_RM(72, fmadd.d, rne, 0x3fb999999999999a, 0x4024000000000000, 0xbff0000000000000, 0x3c90000000000000, 0)  /* 0.1*10-1 exposes the rounding error of 0.1 */
  TD_RRR_RM(73, fmadd.d, rne, 0x7fefffffffffffff, 0x4000000000000000, 0xffefffffffffffff, 0x7fefffffffffffff, 0)  /* no intermediate overflow */
  TD_RRR_RM(74, fmadd.d, rne, 0x0, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff8000000000000, FL_NV)  /* 0*inf + qNaN: NV */
  TD_RRR_RM(75, fmadd.d, rne, 0x4000000000000000, 0x4008000000000000, 0xc018000000000000, 0x0, 0)  /* +0 */
  TD_RRR_RM(76, fmadd.d, rdn, 0x4000000000000000, 0x4008000000000000, 0xc018000000000000, 0x8000000000000000, 0)  /* -0 under RDN */
  TD_RRR_RM(77, fnmadd.d, rne, 0x0, 0x3ff0000000000000, 0x0, 0x8000000000000000, 0)  /* -0 */
  TD_RRR_RM(78, fmsub.d, rne, 0x3ff0000000000000, 0x3ff0000000000000, 0x7ff0000000000001, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RRR_RM(79, fnmsub.d, rdn, 0x3ff0000000000000, 0x4008000000000000, 0x3cb0000000000000, 0xc008000000000000, FL_NX)
  TD_RRR_RM(80, fmadd.d, rup, 0x1a70000000000000, 0x1a70000000000000, 0x3ff0000000000000, 0x3ff0000000000001, FL_NX)  /* tiny product still rounds up */
  /* sign injection */
  TD_RR(81, fsgnj.d, 0x3ff0000000000000, 0xc000000000000000, 0xbff0000000000000, 0)
  TD_RR(82, fsgnjn.d, 0x3ff0000000000000, 0xc000000000000000, 0x3ff0000000000000, 0)
  TD_RR(83, fsgnjx.d, 0xbff0000000000000, 0xc000000000000000, 0x3ff0000000000000, 0)
  TD_RR(84, fsgnjx.d, 0xbff0000000000000, 0x4000000000000000, 0xbff0000000000000, 0)
  TD_RR(85, fsgnjn.d, 0x7ff0000000000001, 0x3ff0000000000000, 0xfff0000000000001, 0)  /* NaN payload kept */
  TD_RR(86, fsgnj.d, 0x7ff8000000012345, 0xbff0000000000000, 0xfff8000000012345, 0)
  /* fmin.d / fmax.d */
  TD_RR(87, fmin.d, 0x3ff0000000000000, 0x4000000000000000, 0x3ff0000000000000, 0)
  TD_RR(88, fmax.d, 0x3ff0000000000000, 0x4000000000000000, 0x4000000000000000, 0)
  TD_RR(89, fmin.d, 0x0, 0x8000000000000000, 0x8000000000000000, 0)
  TD_RR(90, fmax.d, 0x8000000000000000, 0x0, 0x0, 0)
  TD_RR(91, fmin.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x3ff0000000000000, 0)
  TD_RR(92, fmax.d, 0x3ff0000000000000, 0x7ff0000000000001, 0x3ff0000000000000, FL_NV)  /* NV */
  TD_RR(93, fmin.d, 0x7ff8000000000000, 0x7ff8000000000000, 0x7ff8000000000000, 0)
  TD_RR(94, fmax.d, 0x7ff0000000000001, 0x7ff0000000000001, 0x7ff8000000000000, FL_NV)  /* NV */
  TD_RR(95, fmin.d, 0xfff0000000000000, 0x7fefffffffffffff, 0xfff0000000000000, 0)
  /* comparisons */
  TD_X_RR(96, feq.d, 0x3ff0000000000000, 0x3ff0000000000000, 0x1, 0)
  TD_X_RR(97, flt.d, 0x3ff0000000000000, 0x4000000000000000, 0x1, 0)
  TD_X_RR(98, fle.d, 0x4000000000000000, 0x3ff0000000000000, 0x0, 0)
  TD_X_RR(99, feq.d, 0x8000000000000000, 0x0, 0x1, 0)
  TD_X_RR(100, flt.d, 0x8000000000000000, 0x0, 0x0, 0)
  TD_X_RR(101, fle.d, 0x8000000000000000, 0x0, 0x1, 0)
  TD_X_RR(102, feq.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x0, 0)  /* quiet */
  TD_X_RR(103, flt.d, 0x7ff8000000000000, 0x3ff0000000000000, 0x0, FL_NV)  /* signals */
  TD_X_RR(104, fle.d, 0x7ff8000000000000, 0x7ff8000000000000, 0x0, FL_NV)  /* signals */
  TD_X_RR(105, feq.d, 0x7ff0000000000001, 0x3ff0000000000000, 0x0, FL_NV)  /* signals */
  TD_X_RR(106, flt.d, 0x1, 0x10000000000000, 0x1, 0)
  /* fclass.d */
  TD_X_R(107, fclass.d, 0xfff0000000000000, 0x1, 0)  /* -inf */
  TD_X_R(108, fclass.d, 0xbff0000000000000, 0x2, 0)  /* -normal */
  TD_X_R(109, fclass.d, 0x8000000000000001, 0x4, 0)  /* -subnormal */
  TD_X_R(110, fclass.d, 0x8000000000000000, 0x8, 0)  /* -0 */
  TD_X_R(111, fclass.d, 0x0, 0x10, 0)  /* +0 */
  TD_X_R(112, fclass.d, 0xfffffffffffff, 0x20, 0)  /* +subnormal */
  TD_X_R(113, fclass.d, 0x3ff0000000000000, 0x40, 0)  /* +normal */
  TD_X_R(114, fclass.d, 0x7ff0000000000000, 0x80, 0)  /* +inf */
  TD_X_R(115, fclass.d, 0x7ff0000000000001, 0x100, 0)  /* sNaN */
  TD_X_R(116, fclass.d, 0x7ff8000000000000, 0x200, 0)  /* qNaN */
  /* double -> integer */
  TD_X_R_RM(117, fcvt.w.d, rne, 0x3ff8000000000000, 0x2, FL_NX)
  TD_X_R_RM(118, fcvt.w.d, rne, 0xc004000000000000, 0xfffffffffffffffe, FL_NX)
  TD_X_R_RM(119, fcvt.w.d, rtz, 0xc004000000000000, 0xfffffffffffffffe, FL_NX)
  TD_X_R_RM(120, fcvt.w.d, rdn, 0xc004000000000000, 0xfffffffffffffffd, FL_NX)
  TD_X_R_RM(121, fcvt.w.d, rup, 0xc004000000000000, 0xfffffffffffffffe, FL_NX)
  TD_X_R_RM(122, fcvt.w.d, rmm, 0xc004000000000000, 0xfffffffffffffffd, FL_NX)
  TD_X_R_RM(123, fcvt.w.d, rne, 0x41dfffffffc00000, 0x7fffffff, 0)  /* 2^31-1 exact */
  TD_X_R_RM(124, fcvt.w.d, rtz, 0x41dfffffffe00000, 0x7fffffff, FL_NX)  /* truncates into range */
  TD_X_R_RM(125, fcvt.w.d, rne, 0x41dfffffffe00000, 0x7fffffff, FL_NV)  /* rounds out of range: NV */
  TD_X_R_RM(126, fcvt.w.d, rtz, 0xc1e00000001ccccd, 0xffffffff80000000, FL_NX)  /* truncates to -2^31 */
  TD_X_R_RM(127, fcvt.w.d, rne, 0xc1e0000000200000, 0xffffffff80000000, FL_NV)  /* NV */
  TD_X_R_RM(128, fcvt.w.d, rne, 0x7ff8000000000000, 0x7fffffff, FL_NV)  /* NV */
  TD_X_R_RM(129, fcvt.w.d, rne, 0xfff0000000000000, 0xffffffff80000000, FL_NV)  /* NV */
  TD_X_R_RM(130, fcvt.wu.d, rne, 0x41efffffffe00000, 0xffffffffffffffff, 0)  /* 2^32-1 -> sign-extended all ones, exact */
  TD_X_R_RM(131, fcvt.wu.d, rne, 0x41f0000000000000, 0xffffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(132, fcvt.wu.d, rtz, 0xbfeccccccccccccd, 0x0, FL_NX)  /* -> 0 NX */
  TD_X_R_RM(133, fcvt.wu.d, rne, 0xbff0000000000000, 0x0, FL_NV)  /* NV */
  TD_X_R_RM(134, fcvt.wu.d, rne, 0x7ff8000000000000, 0xffffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(135, fcvt.wu.d, rne, 0x40c81c8000000000, 0x3039, 0)
  TD_X_R_RM(136, fcvt.l.d, rne, 0x43d0000000000000, 0x4000000000000000, 0)
  TD_X_R_RM(137, fcvt.l.d, rne, 0x43dfffffffffffff, 0x7ffffffffffffc00, 0)  /* largest double below 2^63 */
  TD_X_R_RM(138, fcvt.l.d, rne, 0x43e0000000000000, 0x7fffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(139, fcvt.l.d, rne, 0xc3e0000000000000, 0x8000000000000000, 0)
  TD_X_R_RM(140, fcvt.l.d, rne, 0x7ff8000000000000, 0x7fffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(141, fcvt.l.d, rne, 0x7ff0000000000000, 0x7fffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(142, fcvt.l.d, rdn, 0xbfe0000000000000, 0xffffffffffffffff, FL_NX)  /* -1 */
  TD_X_R_RM(143, fcvt.lu.d, rne, 0x43e0000000000000, 0x8000000000000000, 0)
  TD_X_R_RM(144, fcvt.lu.d, rne, 0x43efffffffffffff, 0xfffffffffffff800, 0)  /* largest double below 2^64 */
  TD_X_R_RM(145, fcvt.lu.d, rne, 0x43f0000000000000, 0xffffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(146, fcvt.lu.d, rne, 0xbff0000000000000, 0x0, FL_NV)  /* NV */
  TD_X_R_RM(147, fcvt.lu.d, rne, 0xfff0000000000000, 0x0, FL_NV)  /* NV */
  TD_X_R_RM(148, fcvt.lu.d, rne, 0x7ff8000000000000, 0xffffffffffffffff, FL_NV)  /* NV */
  TD_X_R_RM(149, fcvt.lu.d, rmm, 0x3fe0000000000000, 0x1, FL_NX)
  /* integer -> double */
  TF_I(150, fcvt.d.w, 0x12345678fffffffb, 0xc014000000000000, 0)  /* upper 32 bits ignored: -5 */
  TF_I(151, fcvt.d.w, 0x80000000, 0xc1e0000000000000, 0)  /* -2^31 */
  TF_I(152, fcvt.d.w, 0x7fffffff, 0x41dfffffffc00000, 0)
  TF_I(153, fcvt.d.wu, 0xffffffffffffffff, 0x41efffffffe00000, 0)  /* upper bits ignored: 2^32-1 */
  TF_I(154, fcvt.d.wu, 0x80000000, 0x41e0000000000000, 0)
  TF_I_RM(155, fcvt.d.l, rne, 0x7fffffffffffffff, 0x43e0000000000000, FL_NX)  /* rounds to 2^63 */
  TF_I_RM(156, fcvt.d.l, rtz, 0x7fffffffffffffff, 0x43dfffffffffffff, FL_NX)
  TF_I_RM(157, fcvt.d.l, rne, 0x8000000000000000, 0xc3e0000000000000, 0)
  TF_I_RM(158, fcvt.d.l, rne, 0x20000000000001, 0x4340000000000000, FL_NX)  /* 2^53+1: tie to even */
  TF_I_RM(159, fcvt.d.l, rup, 0x20000000000001, 0x4340000000000001, FL_NX)
  TF_I_RM(160, fcvt.d.l, rmm, 0xffdfffffffffffff, 0xc340000000000001, FL_NX)  /* -(2^53+1) RMM */
  TF_I_RM(161, fcvt.d.l, rne, 0x0, 0x0, 0)  /* +0 */
  TF_I_RM(162, fcvt.d.lu, rne, 0xffffffffffffffff, 0x43f0000000000000, FL_NX)
  TF_I_RM(163, fcvt.d.lu, rtz, 0xffffffffffffffff, 0x43efffffffffffff, FL_NX)
  TF_I_RM(164, fcvt.d.lu, rne, 0x20000000000003, 0x4340000000000002, FL_NX)  /* 2^53+3: tie to even */
  /* fcvt.s.d / fcvt.d.s */
  TD_R_RM(165, fcvt.s.d, rne, 0x3fd5555555555555, 0xffffffff3eaaaaab, FL_NX)  /* 1/3 */
  TD_R_RM(166, fcvt.s.d, rtz, 0x3fd5555555555555, 0xffffffff3eaaaaaa, FL_NX)
  TD_R_RM(167, fcvt.s.d, rup, 0x3fd5555555555555, 0xffffffff3eaaaaab, FL_NX)
  TD_R_RM(168, fcvt.s.d, rdn, 0xbfd5555555555555, 0xffffffffbeaaaaab, FL_NX)
  TD_R_RM(169, fcvt.s.d, rne, 0x7e37e43c8800759c, 0xffffffff7f800000, FL_OF|FL_NX)  /* overflow -> inf */
  TD_R_RM(170, fcvt.s.d, rtz, 0x7e37e43c8800759c, 0xffffffff7f7fffff, FL_OF|FL_NX)  /* overflow RTZ -> max */
  TD_R_RM(171, fcvt.s.d, rup, 0xfe37e43c8800759c, 0xffffffffff7fffff, FL_OF|FL_NX)  /* overflow RUP -> -max */
  TD_R_RM(172, fcvt.s.d, rne, 0x1a56e1fc2f8f359, 0xffffffff00000000, FL_UF|FL_NX)  /* underflow -> +0 */
  TD_R_RM(173, fcvt.s.d, rup, 0x1a56e1fc2f8f359, 0xffffffff00000001, FL_UF|FL_NX)  /* underflow RUP -> min subnormal */
  TD_R_RM(174, fcvt.s.d, rne, 0x3730000000000000, 0xffffffff00000200, 0)  /* exact subnormal single, no flags */
  TD_R_RM(175, fcvt.s.d, rne, 0x380ffffff0000000, 0xffffffff00800000, FL_NX)  /* rounds to 2^-126: NX only (after rounding) */
  TD_R_RM(176, fcvt.s.d, rne, 0x7ff8000000000000, 0xffffffff7fc00000, 0)  /* NaN -> canonical single */
  TD_R_RM(177, fcvt.s.d, rne, 0x7ff0000000000001, 0xffffffff7fc00000, FL_NV)  /* sNaN -> NV */
  TD_R_RM(178, fcvt.s.d, rne, 0xfff0000000000000, 0xffffffffff800000, 0)
  TD_R_RM(179, fcvt.s.d, rne, 0x8000000000000000, 0xffffffff80000000, 0)
  TD_R_RM(180, fcvt.s.d, rne, 0x3ff0000010000000, 0xffffffff3f800000, FL_NX)  /* 1 + 2^-24: tie to even */
  TD_R_RM(181, fcvt.s.d, rne, 0x3ff0000030000000, 0xffffffff3f800002, FL_NX)  /* 1 + 3*2^-24: tie to even (up) */
  TS_R(182, fcvt.d.s, 0x3eaaaaab, 0x3fd5555560000000, 0)  /* exact widening */
  TS_R(183, fcvt.d.s, 0x1, 0x36a0000000000000, 0)  /* single subnormal becomes a normal double */
  TS_R(184, fcvt.d.s, 0x7f800001, 0x7ff8000000000000, FL_NV)  /* sNaN -> canonical double, NV */
  TS_R(185, fcvt.d.s, 0xffc12345, 0x7ff8000000000000, 0)  /* qNaN with payload -> canonical double */
  TS_R(186, fcvt.d.s, 0xff800000, 0xfff0000000000000, 0)
  TS_R(187, fcvt.d.s, 0x80000000, 0x8000000000000000, 0)

  fscsr zero
  ret

  .data
  .align 3
ddata:
  .dword 0x400921fb54442d18, 0x7ff0000000000001
dbuf:
  .dword 0, 0, 0
