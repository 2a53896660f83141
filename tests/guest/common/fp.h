/* Macros for the floating-point guest tests (rv64f.S, rv64d.S, fp_edge.S).
 * Operands and results are raw bit patterns. Every arithmetic check clears
 * fflags first and compares both the result and the accrued fflags.
 * Results of single-precision operations are compared as the full 64-bit
 * register (read with fmv.x.d), so NaN-boxing of results is checked too:
 * pass the boxed value 0xffffffff_xxxxxxxx as the expected result.
 * Scratch registers: t0, t6, a0, f1, f2, f3, f4. */
#ifndef TURING_GUEST_FP_H
#define TURING_GUEST_FP_H

#define FL_NX 0x01
#define FL_UF 0x02
#define FL_OF 0x04
#define FL_DZ 0x08
#define FL_NV 0x10

/* Load a single (NaN-boxed by fmv.w.x) / a double / raw 64 bits into fr. */
#define FSET_S(fr, bits) li t0, bits; fmv.w.x fr, t0
#define FSET_D(fr, bits) li t0, bits; fmv.d.x fr, t0
/* Fail unless all 64 bits of fr equal `bits`. */
#define CHECK_FREG(fr, bits) fmv.x.d t0, fr; CHECK(t0, bits)
/* Fail unless fflags equals v. */
#define CHECK_FLAGS(v) frflags t0; CHECK(t0, v)

/* Single precision: rd = op(rs1[, rs2[, rs3]])[, rm]. r = expected 64-bit register. */
#define TS_RR(n, op, a, b, r, fl) TEST(n); FSET_S(f1, a); FSET_S(f2, b); fsflags zero; op f3, f1, f2; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TS_RR_RM(n, op, rm, a, b, r, fl) TEST(n); FSET_S(f1, a); FSET_S(f2, b); fsflags zero; op f3, f1, f2, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TS_R_RM(n, op, rm, a, r, fl) TEST(n); FSET_S(f1, a); fsflags zero; op f3, f1, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TS_RRR_RM(n, op, rm, a, b, c, r, fl) TEST(n); FSET_S(f1, a); FSET_S(f2, b); FSET_S(f4, c); fsflags zero; op f3, f1, f2, f4, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
/* Single -> integer register (compare, class, convert). */
#define TS_X_RR(n, op, a, b, r, fl) TEST(n); FSET_S(f1, a); FSET_S(f2, b); fsflags zero; op a0, f1, f2; CHECK_FLAGS(fl); CHECK(a0, r)
#define TS_X_R(n, op, a, r, fl) TEST(n); FSET_S(f1, a); fsflags zero; op a0, f1; CHECK_FLAGS(fl); CHECK(a0, r)
#define TS_X_R_RM(n, op, rm, a, r, fl) TEST(n); FSET_S(f1, a); fsflags zero; op a0, f1, rm; CHECK_FLAGS(fl); CHECK(a0, r)
/* Single -> float register without an rm operand (fcvt.d.s is exact). */
#define TS_R(n, op, a, r, fl) TEST(n); FSET_S(f1, a); fsflags zero; op f3, f1; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
/* Integer register -> float register (either precision), with / without rm. */
#define TF_I_RM(n, op, rm, x, r, fl) TEST(n); li a0, x; fsflags zero; op f3, a0, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TF_I(n, op, x, r, fl) TEST(n); li a0, x; fsflags zero; op f3, a0; CHECK_FLAGS(fl); CHECK_FREG(f3, r)

/* The same for double precision operands. */
#define TD_RR(n, op, a, b, r, fl) TEST(n); FSET_D(f1, a); FSET_D(f2, b); fsflags zero; op f3, f1, f2; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TD_RR_RM(n, op, rm, a, b, r, fl) TEST(n); FSET_D(f1, a); FSET_D(f2, b); fsflags zero; op f3, f1, f2, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TD_R_RM(n, op, rm, a, r, fl) TEST(n); FSET_D(f1, a); fsflags zero; op f3, f1, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TD_RRR_RM(n, op, rm, a, b, c, r, fl) TEST(n); FSET_D(f1, a); FSET_D(f2, b); FSET_D(f4, c); fsflags zero; op f3, f1, f2, f4, rm; CHECK_FLAGS(fl); CHECK_FREG(f3, r)
#define TD_X_RR(n, op, a, b, r, fl) TEST(n); FSET_D(f1, a); FSET_D(f2, b); fsflags zero; op a0, f1, f2; CHECK_FLAGS(fl); CHECK(a0, r)
#define TD_X_R(n, op, a, r, fl) TEST(n); FSET_D(f1, a); fsflags zero; op a0, f1; CHECK_FLAGS(fl); CHECK(a0, r)
#define TD_X_R_RM(n, op, rm, a, r, fl) TEST(n); FSET_D(f1, a); fsflags zero; op a0, f1, rm; CHECK_FLAGS(fl); CHECK(a0, r)

#endif
