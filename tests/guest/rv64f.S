/* RV64F: every single-precision instruction, checked as bit patterns
 * (results read back as the full 64-bit f register, so NaN-boxing of results
 * is checked too) together with the exact fflags each operation accrues:
 * flw/fsw, fmv.w.x/fmv.x.w (sign extension, upper bits ignored),
 * fadd/fsub/fmul/fdiv/fsqrt.s, fmadd/fmsub/fnmsub/fnmadd.s, fsgnj/fsgnjn/
 * fsgnjx.s, fmin/fmax.s, feq/flt/fle.s, fclass.s, fcvt.{w,wu,l,lu}.s and
 * fcvt.s.{w,wu,l,lu}, and the fcsr/frm/fflags CSRs with frcsr/fscsr/frrm/
 * fsrm/fsrmi/frflags/fsflags/fsflagsi, plus mstatus.FS becoming Dirty.
 * Expected values come from an exact IEEE 754 model (tininess after rounding,
 * canonical NaN results), not from a run of the machine. Check numbers are
 * the TEST numbers (exit code on failure). */
#include "test.h"
#include "fp.h"

  .text
  .globl test_main
test_main:
  fscsr zero
  /* flw/fsw and moves */
  TEST(1)  /* flw: value loaded, upper 32 bits all ones */
  la a1, fdata
  flw f1, 0(a1)
  CHECK_FREG(f1, 0xffffffff40490fdb)
  TEST(2)  /* flw of a signaling NaN keeps its payload (no canonicalisation) */
  flw f2, 4(a1)
  CHECK_FREG(f2, 0xffffffff7f800001)
  CHECK_FLAGS(0)
  TEST(3)  /* fsw stores exactly 4 bytes */
  la a2, fbuf
  li t1, -1
  sd t1, 0(a2)
  fsw f1, 0(a2)
  ld t1, 0(a2)
  CHECK(t1, 0xffffffff40490fdb)
  TEST(4)  /* fsw of the sNaN keeps its payload, negative offset */
  fsw f2, 8(a2)
  addi a3, a2, 16
  fsw f1, -4(a3)
  ld t1, 8(a2)
  CHECK(t1, 0x40490fdb7f800001)
  CHECK_FLAGS(0)
  TEST(5)  /* fmv.w.x uses the low 32 bits and NaN-boxes them */
  li t1, 0x123456783f800000
  fmv.w.x f3, t1
  CHECK_FREG(f3, 0xffffffff3f800000)
  TEST(6)  /* fmv.x.w sign-extends bit 31 */
  FSET_S(f3, 0xbf800000)
  fmv.x.w a0, f3
  CHECK(a0, 0xffffffffbf800000)
  FSET_S(f3, 0x3f800000)
  fmv.x.w a0, f3
  CHECK(a0, 0x3f800000)
  TEST(7)  /* fmv.x.w of a signaling NaN: bits unchanged, no flags */
  fsflags zero
  FSET_S(f3, 0xff800001)
  fmv.x.w a0, f3
  CHECK(a0, 0xffffffffff800001)
  CHECK_FLAGS(0)
  /* fcsr, frm, fflags */
  TEST(8)  /* fscsr swaps; frm and fflags are views of fcsr */
  li t1, 0xff
  fscsr t2, t1
  CHECK(t2, 0)
  frcsr t2
  CHECK(t2, 0xff)
  csrr t2, fflags
  CHECK(t2, 0x1f)
  csrr t2, frm
  CHECK(t2, 7)
  csrr t2, fcsr
  CHECK(t2, 0xff)
  TEST(9)  /* fcsr bits 31:8 are reserved: written as 1, read as 0 */
  li t1, 0xffffff25
  fscsr t1
  frcsr t2
  CHECK(t2, 0x25)
  TEST(10)  /* fsrm returns the old frm, leaves fflags alone */
  li t1, 3
  fsrm t2, t1
  CHECK(t2, 1)
  frrm t2
  CHECK(t2, 3)
  frcsr t2
  CHECK(t2, 0x65)
  TEST(11)  /* fsflags returns the old flags, leaves frm alone */
  li t1, 0x1a
  fsflags t2, t1
  CHECK(t2, 0x05)
  frflags t2
  CHECK(t2, 0x1a)
  frcsr t2
  CHECK(t2, 0x7a)
  TEST(12)  /* fsrmi / fsflagsi */
  fsrmi t2, 4
  CHECK(t2, 3)
  fsflagsi t2, 0x01
  CHECK(t2, 0x1a)
  frcsr t2
  CHECK(t2, 0x81)
  TEST(13)  /* fflags and frm ignore bits above their width */
  li t1, 0xff
  csrw fflags, t1
  csrr t2, fflags
  CHECK(t2, 0x1f)
  li t1, 0xfa
  csrw frm, t1
  csrr t2, frm
  CHECK(t2, 2)
  frcsr t2
  CHECK(t2, 0x5f)
  TEST(14)  /* csrs/csrc on fflags */
  csrw fflags, zero
  csrsi fflags, 0x9
  csrci fflags, 0x1
  csrr t2, fflags
  CHECK(t2, 0x8)
  fscsr zero
  TEST(15)  /* fflags are sticky: 1/3 (NX) then 1/0 (DZ) accumulate */
  fsflags zero
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  fdiv.s f3, f1, f2
  fmv.w.x f2, zero
  fdiv.s f3, f1, f2
  CHECK_FLAGS(FL_NX | FL_DZ)
  fsflags zero
  TEST(16)  /* mstatus.FS: Initial -> Dirty (and SD set) after an FP op */
  li t1, (3 << 13)
  csrc mstatus, t1
  li t1, (1 << 13)
  csrs mstatus, t1
  csrr t2, mstatus
  srli t2, t2, 13
  andi t2, t2, 3
  CHECK(t2, 1)
  fadd.s f3, f1, f1
  csrr t2, mstatus
  srli t3, t2, 13
  andi t3, t3, 3
  CHECK(t3, 3)
  srli t3, t2, 63
  CHECK(t3, 1)
  /* fadd.s */
  TS_RR(17, fadd.s, 0x3f800000, 0x40000000, 0xffffffff40400000, 0)  /* 1 + 2 */
  TS_RR(18, fadd.s, 0x3f800000, 0x33800000, 0xffffffff3f800000, FL_NX)  /* 1 + 2^-24: tie to even -> 1, NX */
  TS_RR(19, fadd.s, 0x3f800000, 0x33800001, 0xffffffff3f800001, FL_NX)  /* just above the tie -> next up */
  TS_RR(20, fadd.s, 0x3dcccccd, 0x3e4ccccd, 0xffffffff3e99999a, FL_NX)  /* 0.1 + 0.2 */
  TS_RR(21, fadd.s, 0x7f800000, 0xff800000, 0xffffffff7fc00000, FL_NV)  /* inf - inf: NV, canonical NaN */
  TS_RR(22, fadd.s, 0x0, 0x80000000, 0xffffffff00000000, 0)  /* +0 + -0 = +0 */
  TS_RR(23, fadd.s, 0x80000000, 0x80000000, 0xffffffff80000000, 0)  /* -0 + -0 = -0 */
  TS_RR(24, fadd.s, 0x7f7fffff, 0x7f7fffff, 0xffffffff7f800000, FL_OF|FL_NX)  /* overflow */
  TS_RR(25, fadd.s, 0x7fc00000, 0x3f800000, 0xffffffff7fc00000, 0)  /* qNaN: canonical, no flag */
  TS_RR(26, fadd.s, 0x7f800001, 0x3f800000, 0xffffffff7fc00000, FL_NV)  /* sNaN: canonical, NV */
  TS_RR(27, fadd.s, 0x7f800000, 0x3f800000, 0xffffffff7f800000, 0)  /* inf + 1 */
  TS_RR(28, fadd.s, 0x3f800000, 0xbf800000, 0xffffffff00000000, 0)  /* 1 + -1 = +0 */
  TS_RR_RM(29, fadd.s, rdn, 0x3f800000, 0xbf800000, 0xffffffff80000000, 0)  /* 1 + -1 = -0 under RDN */
  TS_RR_RM(30, fadd.s, rtz, 0x3f800000, 0x33800001, 0xffffffff3f800000, FL_NX)  /* RTZ truncates */
  TS_RR_RM(31, fadd.s, rup, 0x3f800000, 0x30800000, 0xffffffff3f800001, FL_NX)  /* 1 + 2^-30 RUP */
  TS_RR_RM(32, fadd.s, rdn, 0xbf800000, 0xb0800000, 0xffffffffbf800001, FL_NX)  /* -1 - 2^-30 RDN */
  TS_RR_RM(33, fadd.s, rmm, 0x3f800000, 0x33800000, 0xffffffff3f800001, FL_NX)  /* tie RMM: away from zero */
  TS_RR(34, fadd.s, 0x1, 0x1, 0xffffffff00000002, 0)  /* subnormals add exactly */
  TS_RR_RM(35, fadd.s, rdn, 0x3fc00000, 0xbfc00000, 0xffffffff80000000, 0)  /* 1.5 - 1.5 RDN -> -0 */
  /* fsub.s */
  TS_RR(36, fsub.s, 0x40400000, 0x40a00000, 0xffffffffc0000000, 0)  /* 3 - 5 */
  TS_RR(37, fsub.s, 0x3f800000, 0x3f800000, 0xffffffff00000000, 0)  /* 1 - 1 = +0 */
  TS_RR_RM(38, fsub.s, rdn, 0x3f800000, 0x3f800000, 0xffffffff80000000, 0)  /* 1 - 1 = -0 under RDN */
  TS_RR(39, fsub.s, 0x7f800000, 0x7f800000, 0xffffffff7fc00000, FL_NV)  /* inf - inf NV */
  TS_RR(40, fsub.s, 0x800000, 0x1, 0xffffffff007fffff, 0)  /* exact subnormal result, no UF */
  TS_RR(41, fsub.s, 0x0, 0x7fc00000, 0xffffffff7fc00000, 0)  /* NaN operand */
  TS_RR(42, fsub.s, 0x80000000, 0x0, 0xffffffff80000000, 0)  /* -0 - +0 = -0 */
  /* fmul.s */
  TS_RR(43, fmul.s, 0x40400000, 0xc0000000, 0xffffffffc0c00000, 0)  /* 3 * -2 */
  TS_RR(44, fmul.s, 0x0, 0x7f800000, 0xffffffff7fc00000, FL_NV)  /* 0 * inf NV */
  TS_RR(45, fmul.s, 0xff800000, 0xc0000000, 0xffffffff7f800000, 0)  /* -inf * -2 */
  TS_RR(46, fmul.s, 0xd800000, 0xd800000, 0xffffffff00000000, FL_UF|FL_NX)  /* 2^-100 squared: UF|NX, +0 */
  TS_RR(47, fmul.s, 0x80000000, 0x40a00000, 0xffffffff80000000, 0)  /* -0 * 5 = -0 */
  TS_RR(48, fmul.s, 0x7f7fffff, 0x40000000, 0xffffffff7f800000, FL_OF|FL_NX)  /* overflow -> inf */
  TS_RR_RM(49, fmul.s, rtz, 0x7f7fffff, 0x40000000, 0xffffffff7f7fffff, FL_OF|FL_NX)  /* overflow RTZ -> max finite */
  TS_RR_RM(50, fmul.s, rup, 0xff7fffff, 0x40000000, 0xffffffffff7fffff, FL_OF|FL_NX)  /* negative overflow RUP -> -max */
  TS_RR(51, fmul.s, 0x3f800001, 0x7fffff, 0xffffffff00800000, FL_NX)  /* rounds up to 2^-126: NX only (tininess after rounding) */
  TS_RR_RM(52, fmul.s, rtz, 0x3f800001, 0x7fffff, 0xffffffff007fffff, FL_UF|FL_NX)  /* RTZ stays subnormal: UF|NX */
  TS_RR(53, fmul.s, 0x800000, 0x3f000000, 0xffffffff00400000, 0)  /* exact subnormal, no flags */
  TS_RR(54, fmul.s, 0x3fc00000, 0x3fc00000, 0xffffffff40100000, 0)  /* 1.5 * 1.5 */
  TS_RR(55, fmul.s, 0x400001, 0x3f000000, 0xffffffff00200000, FL_UF|FL_NX)  /* subnormal halved: tie, NX|UF */
  /* fdiv.s */
  TS_RR_RM(56, fdiv.s, rne, 0x3f800000, 0x40400000, 0xffffffff3eaaaaab, FL_NX)  /* 1/3 rne */
  TS_RR_RM(57, fdiv.s, rtz, 0x3f800000, 0x40400000, 0xffffffff3eaaaaaa, FL_NX)  /* 1/3 rtz */
  TS_RR_RM(58, fdiv.s, rdn, 0x3f800000, 0x40400000, 0xffffffff3eaaaaaa, FL_NX)  /* 1/3 rdn */
  TS_RR_RM(59, fdiv.s, rup, 0x3f800000, 0x40400000, 0xffffffff3eaaaaab, FL_NX)  /* 1/3 rup */
  TS_RR_RM(60, fdiv.s, rmm, 0x3f800000, 0x40400000, 0xffffffff3eaaaaab, FL_NX)  /* 1/3 rmm */
  TS_RR_RM(61, fdiv.s, rne, 0xbf800000, 0x40400000, 0xffffffffbeaaaaab, FL_NX)  /* -1/3 rne */
  TS_RR_RM(62, fdiv.s, rtz, 0xbf800000, 0x40400000, 0xffffffffbeaaaaaa, FL_NX)  /* -1/3 rtz */
  TS_RR_RM(63, fdiv.s, rdn, 0xbf800000, 0x40400000, 0xffffffffbeaaaaab, FL_NX)  /* -1/3 rdn */
  TS_RR_RM(64, fdiv.s, rup, 0xbf800000, 0x40400000, 0xffffffffbeaaaaaa, FL_NX)  /* -1/3 rup */
  TS_RR_RM(65, fdiv.s, rmm, 0xbf800000, 0x40400000, 0xffffffffbeaaaaab, FL_NX)  /* -1/3 rmm */
  TS_RR(66, fdiv.s, 0x3f800000, 0x0, 0xffffffff7f800000, FL_DZ)  /* 1/+0 = +inf, DZ */
  TS_RR(67, fdiv.s, 0xbf800000, 0x0, 0xffffffffff800000, FL_DZ)  /* -1/+0 = -inf, DZ */
  TS_RR(68, fdiv.s, 0x3f800000, 0x80000000, 0xffffffffff800000, FL_DZ)  /* 1/-0 = -inf, DZ */
  TS_RR(69, fdiv.s, 0x0, 0x0, 0xffffffff7fc00000, FL_NV)  /* 0/0 NV */
  TS_RR(70, fdiv.s, 0x7f800000, 0xff800000, 0xffffffff7fc00000, FL_NV)  /* inf/inf NV */
  TS_RR(71, fdiv.s, 0x40c00000, 0x40400000, 0xffffffff40000000, 0)  /* 6/3 */
  TS_RR(72, fdiv.s, 0x3f800000, 0x7f800000, 0xffffffff00000000, 0)  /* 1/inf = +0 */
  TS_RR(73, fdiv.s, 0x7f800000, 0x0, 0xffffffff7f800000, 0)  /* inf/0 = inf, no DZ */
  TS_RR(74, fdiv.s, 0x7fc00000, 0x0, 0xffffffff7fc00000, 0)  /* NaN/0: no DZ */
  TS_RR(75, fdiv.s, 0x7f7fffff, 0x3f000000, 0xffffffff7f800000, FL_OF|FL_NX)  /* overflow */
  TS_RR(76, fdiv.s, 0x800000, 0x40400000, 0xffffffff002aaaab, FL_UF|FL_NX)  /* underflow, subnormal result */
  /* fsqrt.s */
  TS_R_RM(77, fsqrt.s, rne, 0x40800000, 0xffffffff40000000, 0)  /* sqrt 4 */
  TS_R_RM(78, fsqrt.s, rne, 0x40000000, 0xffffffff3fb504f3, FL_NX)  /* sqrt 2 RNE */
  TS_R_RM(79, fsqrt.s, rtz, 0x40000000, 0xffffffff3fb504f3, FL_NX)  /* sqrt 2 RTZ */
  TS_R_RM(80, fsqrt.s, rup, 0x40000000, 0xffffffff3fb504f4, FL_NX)  /* sqrt 2 RUP */
  TS_R_RM(81, fsqrt.s, rne, 0xbf800000, 0xffffffff7fc00000, FL_NV)  /* sqrt -1: NV */
  TS_R_RM(82, fsqrt.s, rne, 0x80000000, 0xffffffff80000000, 0)  /* sqrt -0 = -0 */
  TS_R_RM(83, fsqrt.s, rne, 0x7f800000, 0xffffffff7f800000, 0)  /* sqrt inf */
  TS_R_RM(84, fsqrt.s, rne, 0xff800000, 0xffffffff7fc00000, FL_NV)  /* sqrt -inf: NV */
  TS_R_RM(85, fsqrt.s, rne, 0x1, 0xffffffff1a3504f3, FL_NX)  /* sqrt of the smallest subnormal */
  TS_R_RM(86, fsqrt.s, rne, 0x3e800000, 0xffffffff3f000000, 0)  /* sqrt 0.25 */
  TS_R_RM(87, fsqrt.s, rne, 0x7f800001, 0xffffffff7fc00000, FL_NV)  /* sqrt sNaN: NV */
  TS_R_RM(88, fsqrt.s, rne, 0x7fc12345, 0xffffffff7fc00000, 0)  /* sqrt of a qNaN with payload: canonical */
  /* fused multiply-add */
  TS_RRR_RM(89, fmadd.s, rne, 0x40000000, 0x40400000, 0x3f800000, 0xffffffff40e00000, 0)  /* 2*3+1 */
  TS_RRR_RM(90, fmsub.s, rne, 0x40000000, 0x40400000, 0x3f800000, 0xffffffff40a00000, 0)  /* 2*3-1 */
  TS_RRR_RM(91, fnmsub.s, rne, 0x40000000, 0x40400000, 0x3f800000, 0xffffffffc0a00000, 0)  /* -(2*3)+1 */
  TS_RRR_RM(92, fnmadd.s, rne, 0x40000000, 0x40400000, 0x3f800000, 0xffffffffc0e00000, 0)  /* -(2*3)-1 */
  TS_RRR_RM(93, fmadd.s, rne, 0x3f800001, 0x3f800001, 0xbf800000, 0xffffffff34800000, FL_NX)  /* single rounding: (1+2^-23)^2 - 1 */
  TS_RRR_RM(94, fmadd.s, rne, 0x3f800001, 0x3f7fffff, 0xbf800000, 0xffffffff337ffffe, 0)  /* (1+2^-23)(1-2^-24) - 1, exact tiny result */
  TS_RRR_RM(95, fmadd.s, rne, 0x7f7fffff, 0x40000000, 0xff7fffff, 0xffffffff7f7fffff, 0)  /* 2*max - max: no intermediate overflow */
  TS_RRR_RM(96, fmadd.s, rne, 0x7f800000, 0x0, 0x7fc00000, 0xffffffff7fc00000, FL_NV)  /* inf*0 + qNaN: NV */
  TS_RRR_RM(97, fmadd.s, rne, 0x7f800000, 0x3f800000, 0xff800000, 0xffffffff7fc00000, FL_NV)  /* inf - inf: NV */
  TS_RRR_RM(98, fmadd.s, rne, 0x40000000, 0x40400000, 0xc0c00000, 0xffffffff00000000, 0)  /* exact zero sum: +0 */
  TS_RRR_RM(99, fmadd.s, rdn, 0x40000000, 0x40400000, 0xc0c00000, 0xffffffff80000000, 0)  /* exact zero sum under RDN: -0 */
  TS_RRR_RM(100, fnmadd.s, rne, 0x40000000, 0x40400000, 0xc0c00000, 0xffffffff00000000, 0)  /* -(6)-(-6) = +0 */
  TS_RRR_RM(101, fnmsub.s, rne, 0x40000000, 0x40400000, 0x40c00000, 0xffffffff00000000, 0)  /* -(6)+6 = +0 */
  TS_RRR_RM(102, fmsub.s, rne, 0x80000000, 0x3f800000, 0x0, 0xffffffff80000000, 0)  /* -0*1 - +0 = -0 */
  TS_RRR_RM(103, fnmadd.s, rne, 0x0, 0x3f800000, 0x0, 0xffffffff80000000, 0)  /* -(+0) - (+0) = -0 */
  TS_RRR_RM(104, fmadd.s, rne, 0x3f800000, 0x3f800000, 0x7f800001, 0xffffffff7fc00000, FL_NV)  /* sNaN addend: NV */
  TS_RRR_RM(105, fmadd.s, rne, 0x7fc00000, 0x3f800000, 0x3f800000, 0xffffffff7fc00000, 0)  /* qNaN: canonical, no flag */
  TS_RRR_RM(106, fmadd.s, rup, 0x3f800000, 0x40400000, 0x33800000, 0xffffffff40400001, FL_NX)  /* 3 + 2^-24 RUP */
  TS_RRR_RM(107, fnmsub.s, rdn, 0x3f800000, 0x40400000, 0x33800000, 0xffffffffc0400000, FL_NX)  /* -3 + 2^-24 RDN */
  /* sign injection */
  TS_RR(108, fsgnj.s, 0x3f800000, 0xc0000000, 0xffffffffbf800000, 0)
  TS_RR(109, fsgnj.s, 0xbf800000, 0x40000000, 0xffffffff3f800000, 0)
  TS_RR(110, fsgnjn.s, 0x3f800000, 0xc0000000, 0xffffffff3f800000, 0)
  TS_RR(111, fsgnjn.s, 0x3f800000, 0x40000000, 0xffffffffbf800000, 0)
  TS_RR(112, fsgnjx.s, 0xbf800000, 0xc0000000, 0xffffffff3f800000, 0)
  TS_RR(113, fsgnjx.s, 0xbf800000, 0x40000000, 0xffffffffbf800000, 0)
  TS_RR(114, fsgnjn.s, 0x7f800001, 0x3f800000, 0xffffffffff800001, 0)  /* NaN payload kept, no NV */
  TS_RR(115, fsgnj.s, 0x7fc12345, 0xbf800000, 0xffffffffffc12345, 0)  /* qNaN payload kept */
  TS_RR(116, fsgnjx.s, 0xff800000, 0xbf800000, 0xffffffff7f800000, 0)
  /* fmin.s / fmax.s */
  TS_RR(117, fmin.s, 0x3f800000, 0x40000000, 0xffffffff3f800000, 0)
  TS_RR(118, fmax.s, 0x3f800000, 0x40000000, 0xffffffff40000000, 0)
  TS_RR(119, fmin.s, 0xbf800000, 0x40000000, 0xffffffffbf800000, 0)
  TS_RR(120, fmin.s, 0x0, 0x80000000, 0xffffffff80000000, 0)  /* min(+0,-0) = -0 */
  TS_RR(121, fmax.s, 0x0, 0x80000000, 0xffffffff00000000, 0)  /* max(+0,-0) = +0 */
  TS_RR(122, fmin.s, 0x80000000, 0x0, 0xffffffff80000000, 0)
  TS_RR(123, fmax.s, 0x80000000, 0x0, 0xffffffff00000000, 0)
  TS_RR(124, fmin.s, 0x7fc00000, 0x3f800000, 0xffffffff3f800000, 0)  /* one qNaN: the number, no flag */
  TS_RR(125, fmax.s, 0x3f800000, 0x7f800001, 0xffffffff3f800000, FL_NV)  /* one sNaN: the number, NV */
  TS_RR(126, fmin.s, 0x7fc00000, 0x7fc12345, 0xffffffff7fc00000, 0)  /* two NaNs: canonical */
  TS_RR(127, fmax.s, 0x7f800001, 0x7fc00000, 0xffffffff7fc00000, FL_NV)  /* two NaNs, one signaling: canonical, NV */
  TS_RR(128, fmin.s, 0xff800000, 0x7f7fffff, 0xffffffffff800000, 0)
  TS_RR(129, fmax.s, 0xff800000, 0x7f7fffff, 0xffffffff7f7fffff, 0)
  /* comparisons */
  TS_X_RR(130, feq.s, 0x3f800000, 0x3f800000, 0x1, 0)
  TS_X_RR(131, feq.s, 0x3f800000, 0x40000000, 0x0, 0)
  TS_X_RR(132, flt.s, 0x3f800000, 0x40000000, 0x1, 0)
  TS_X_RR(133, flt.s, 0x40000000, 0x3f800000, 0x0, 0)
  TS_X_RR(134, fle.s, 0x3f800000, 0x3f800000, 0x1, 0)
  TS_X_RR(135, fle.s, 0x40000000, 0x3f800000, 0x0, 0)
  TS_X_RR(136, feq.s, 0x80000000, 0x0, 0x1, 0)  /* -0 == +0 */
  TS_X_RR(137, flt.s, 0x80000000, 0x0, 0x0, 0)  /* -0 < +0 is false */
  TS_X_RR(138, fle.s, 0x0, 0x80000000, 0x1, 0)
  TS_X_RR(139, feq.s, 0x7fc00000, 0x3f800000, 0x0, 0)  /* feq is quiet on qNaN */
  TS_X_RR(140, flt.s, 0x7fc00000, 0x3f800000, 0x0, FL_NV)  /* flt signals on qNaN */
  TS_X_RR(141, fle.s, 0x3f800000, 0x7fc00000, 0x0, FL_NV)  /* fle signals on qNaN */
  TS_X_RR(142, feq.s, 0x7f800001, 0x3f800000, 0x0, FL_NV)  /* feq signals on sNaN */
  TS_X_RR(143, feq.s, 0x7fc00000, 0x7fc00000, 0x0, 0)  /* NaN != NaN */
  TS_X_RR(144, flt.s, 0xff800000, 0x7f800000, 0x1, 0)
  TS_X_RR(145, flt.s, 0x0, 0x1, 0x1, 0)
  TS_X_RR(146, flt.s, 0xbf800000, 0xbf000000, 0x1, 0)
  /* fclass.s */
  TS_X_R(147, fclass.s, 0xff800000, 0x1, 0)  /* -inf */
  TS_X_R(148, fclass.s, 0xbf800000, 0x2, 0)  /* -normal */
  TS_X_R(149, fclass.s, 0x80000001, 0x4, 0)  /* -subnormal */
  TS_X_R(150, fclass.s, 0x80000000, 0x8, 0)  /* -0 */
  TS_X_R(151, fclass.s, 0x0, 0x10, 0)  /* +0 */
  TS_X_R(152, fclass.s, 0x1, 0x20, 0)  /* +subnormal */
  TS_X_R(153, fclass.s, 0x3f800000, 0x40, 0)  /* +normal */
  TS_X_R(154, fclass.s, 0x7f800000, 0x80, 0)  /* +inf */
  TS_X_R(155, fclass.s, 0x7f800001, 0x100, 0)  /* sNaN */
  TS_X_R(156, fclass.s, 0x7fc00000, 0x200, 0)  /* qNaN */
  /* float -> integer */
  TS_X_R_RM(157, fcvt.w.s, rne, 0x3fc00000, 0x2, FL_NX)  /* 1.5 -> 2 */
  TS_X_R_RM(158, fcvt.w.s, rne, 0xbfc00000, 0xfffffffffffffffe, FL_NX)  /* -1.5 -> -2 */
  TS_X_R_RM(159, fcvt.w.s, rtz, 0x40200000, 0x2, FL_NX)  /* 2.5 RTZ */
  TS_X_R_RM(160, fcvt.w.s, rdn, 0xc0200000, 0xfffffffffffffffd, FL_NX)  /* -2.5 RDN */
  TS_X_R_RM(161, fcvt.w.s, rup, 0x40200000, 0x3, FL_NX)  /* 2.5 RUP */
  TS_X_R_RM(162, fcvt.w.s, rmm, 0x40200000, 0x3, FL_NX)  /* 2.5 RMM */
  TS_X_R_RM(163, fcvt.w.s, rne, 0x4f000000, 0x7fffffff, FL_NV)  /* 2^31: NV, saturates */
  TS_X_R_RM(164, fcvt.w.s, rne, 0xcf000000, 0xffffffff80000000, 0)  /* -2^31 exact */
  TS_X_R_RM(165, fcvt.w.s, rne, 0xcf000001, 0xffffffff80000000, FL_NV)  /* below -2^31: NV */
  TS_X_R_RM(166, fcvt.w.s, rne, 0x7fc00000, 0x7fffffff, FL_NV)  /* NaN -> 2^31-1, NV */
  TS_X_R_RM(167, fcvt.w.s, rne, 0x7f800000, 0x7fffffff, FL_NV)  /* +inf */
  TS_X_R_RM(168, fcvt.w.s, rne, 0xff800000, 0xffffffff80000000, FL_NV)  /* -inf */
  TS_X_R_RM(169, fcvt.w.s, rne, 0x80000000, 0x0, 0)  /* -0 -> 0 */
  TS_X_R_RM(170, fcvt.w.s, rne, 0x3dcccccd, 0x0, FL_NX)  /* 0.1 -> 0 NX */
  TS_X_R_RM(171, fcvt.w.s, rtz, 0xc7f12000, 0xfffffffffffe1dc0, 0)  /* negative result is sign-extended */
  TS_X_R_RM(172, fcvt.wu.s, rne, 0x40400000, 0x3, 0)
  TS_X_R_RM(173, fcvt.wu.s, rne, 0xbf800000, 0x0, FL_NV)  /* -1: NV -> 0 */
  TS_X_R_RM(174, fcvt.wu.s, rtz, 0xbf000000, 0x0, FL_NX)  /* -0.5 RTZ -> 0, NX only */
  TS_X_R_RM(175, fcvt.wu.s, rdn, 0xbf400000, 0x0, FL_NV)  /* -0.75 RDN -> -1: NV -> 0 */
  TS_X_R_RM(176, fcvt.wu.s, rne, 0x4f000000, 0xffffffff80000000, 0)  /* 2^31: result sign-extended */
  TS_X_R_RM(177, fcvt.wu.s, rne, 0x4f7fffff, 0xffffffffffffff00, 0)  /* largest float below 2^32 */
  TS_X_R_RM(178, fcvt.wu.s, rne, 0x4f800000, 0xffffffffffffffff, FL_NV)  /* 2^32: NV, all ones */
  TS_X_R_RM(179, fcvt.wu.s, rne, 0x7fc00000, 0xffffffffffffffff, FL_NV)  /* NaN: all ones, NV */
  TS_X_R_RM(180, fcvt.wu.s, rne, 0xff800000, 0x0, FL_NV)  /* -inf: 0, NV */
  TS_X_R_RM(181, fcvt.l.s, rne, 0x53800000, 0x10000000000, 0)  /* 2^40 */
  TS_X_R_RM(182, fcvt.l.s, rne, 0xbfc00000, 0xfffffffffffffffe, FL_NX)  /* -1.5 -> -2 */
  TS_X_R_RM(183, fcvt.l.s, rne, 0x5f000000, 0x7fffffffffffffff, FL_NV)  /* 2^63: NV */
  TS_X_R_RM(184, fcvt.l.s, rne, 0xdf000000, 0x8000000000000000, 0)  /* -2^63 exact */
  TS_X_R_RM(185, fcvt.l.s, rne, 0x7fc00000, 0x7fffffffffffffff, FL_NV)  /* NaN: NV */
  TS_X_R_RM(186, fcvt.l.s, rne, 0xff800000, 0x8000000000000000, FL_NV)  /* -inf: NV */
  TS_X_R_RM(187, fcvt.l.s, rmm, 0x40200000, 0x3, FL_NX)  /* 2.5 RMM */
  TS_X_R_RM(188, fcvt.lu.s, rne, 0x5f000000, 0x8000000000000000, 0)  /* 2^63 */
  TS_X_R_RM(189, fcvt.lu.s, rne, 0x5f800000, 0xffffffffffffffff, FL_NV)  /* 2^64: NV */
  TS_X_R_RM(190, fcvt.lu.s, rne, 0xbf800000, 0x0, FL_NV)  /* -1: NV */
  TS_X_R_RM(191, fcvt.lu.s, rup, 0xbf400000, 0x0, FL_NX)  /* -0.75 RUP -> 0, NX */
  TS_X_R_RM(192, fcvt.lu.s, rne, 0x7fc00000, 0xffffffffffffffff, FL_NV)  /* NaN: NV, all ones */
  TS_X_R_RM(193, fcvt.lu.s, rne, 0x5f7fffff, 0xffffff0000000000, 0)  /* largest float below 2^64 */
  /* integer -> float */
  TF_I_RM(194, fcvt.s.w, rne, 0x12345678fffffffb, 0xffffffffc0a00000, 0)  /* upper 32 bits ignored: -5 */
  TF_I_RM(195, fcvt.s.w, rne, 0x7fffffff, 0xffffffff4f000000, FL_NX)  /* 2^31-1 rounds to 2^31 */
  TF_I_RM(196, fcvt.s.w, rtz, 0x7fffffff, 0xffffffff4effffff, FL_NX)
  TF_I_RM(197, fcvt.s.w, rne, 0x80000000, 0xffffffffcf000000, 0)  /* -2^31 */
  TF_I_RM(198, fcvt.s.w, rne, 0x1000001, 0xffffffff4b800000, FL_NX)  /* 2^24+1: tie to even */
  TF_I_RM(199, fcvt.s.w, rup, 0x1000001, 0xffffffff4b800001, FL_NX)
  TF_I_RM(200, fcvt.s.w, rne, 0x0, 0xffffffff00000000, 0)  /* 0 -> +0 */
  TF_I_RM(201, fcvt.s.wu, rne, 0x1ffffffff, 0xffffffff4f800000, FL_NX)  /* upper bits ignored: 2^32-1 */
  TF_I_RM(202, fcvt.s.wu, rne, 0x80000000, 0xffffffff4f000000, 0)
  TF_I_RM(203, fcvt.s.wu, rtz, 0xffffffff, 0xffffffff4f7fffff, FL_NX)
  TF_I_RM(204, fcvt.s.l, rne, 0x7fffffffffffffff, 0xffffffff5f000000, FL_NX)
  TF_I_RM(205, fcvt.s.l, rne, 0xffffffffffffffff, 0xffffffffbf800000, 0)  /* -1 */
  TF_I_RM(206, fcvt.s.l, rne, 0x8000000000000000, 0xffffffffdf000000, 0)
  TF_I_RM(207, fcvt.s.l, rtz, 0x100000001, 0xffffffff4f800000, FL_NX)
  TF_I_RM(208, fcvt.s.l, rdn, 0xfffffffefffffffd, 0xffffffffcf800001, FL_NX)  /* -(2^32+3) RDN */
  TF_I_RM(209, fcvt.s.lu, rne, 0xffffffffffffffff, 0xffffffff5f800000, FL_NX)
  TF_I_RM(210, fcvt.s.lu, rtz, 0xffffffffffffffff, 0xffffffff5f7fffff, FL_NX)
  TF_I_RM(211, fcvt.s.lu, rne, 0x8000000000000000, 0xffffffff5f000000, 0)

  fscsr zero
  ret

  .data
  .align 3
fdata:
  .word 0x40490fdb, 0x7f800001
fbuf:
  .dword 0, 0, 0
