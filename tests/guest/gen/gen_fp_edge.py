"""Generates tests/guest/fp_edge.S (run: python3 tests/guest/gen/gen_fp_edge.py)."""
import os
from gen_common import *

g = Gen()
def d(x): return fbits(F64, x)
def s(x): return fbits(F32, x)
ONE, TWO, THREE, HALF, M1 = 0x3f800000, 0x40000000, 0x40400000, 0x3f000000, 0xbf800000
PZ, NZ, PINF, NINF, QNAN, SNAN = 0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001
MAXF = 0x7f7fffff
D1 = d(1.0)
DQNAN, DSNAN = 0x7ff8000000000000, 0x7ff0000000000001
CNAN_S = box(0x7fc00000)

hdr = r'''/* Floating-point edge cases:
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

  .text
  .globl test_main
test_main:
  fscsr zero
'''

def unboxed_op(op, raw, note, expect, fl, other=None, xdst=False):
    n = g.next()
    lines = [f'  TEST({n})  /* {note} */', f'  li t1, {h(raw)}', '  fmv.d.x f1, t1']
    if other is not None:
        lines.append(f'  FSET_S(f2, {h(other)})')
    lines.append('  fsflags zero')
    lines.append('  ' + op)
    lines.append(f'  CHECK_FLAGS({flname(fl)})')
    if xdst:
        lines.append(f'  CHECK(a0, {h(expect)})')
    else:
        lines.append(f'  CHECK_FREG(f3, {h(expect)})')
    g.raw('\n'.join(lines))

g.c('NaN-boxing')
n = g.next()
g.raw(f'''  TEST({n})  /* flw sets bits 63:32 to ones */
  li t1, -1
  fmv.d.x f1, zero
  la a1, edata
  flw f1, 0(a1)
  CHECK_FREG(f1, 0xffffffff3f800000)''')
n = g.next()
g.raw(f'''  TEST({n})  /* fmv.w.x and a single-precision result are boxed too */
  fmv.d.x f3, zero
  li t1, 0x40000000
  fmv.w.x f3, t1
  CHECK_FREG(f3, 0xffffffff40000000)
  fmv.d.x f4, zero
  fadd.s f4, f3, f3
  CHECK_FREG(f4, 0xffffffff40800000)''')
unboxed_op('fadd.s f3, f1, f1', 0x0000000040000000, 'unboxed 2.0 reads as canonical NaN: no NV', CNAN_S, 0)
n = g.next()
g.raw(f'''  TEST({n})  /* fld of a double, then used as a single: canonical NaN */
  la a1, edata
  fld f1, 8(a1)
  FSET_S(f2, 0x3f800000)
  fsflags zero
  fadd.s f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)''')
unboxed_op('fmul.s f3, f1, f2', 0xfffffffe3f800000, 'upper bits not all ones (bit 32 clear): NaN', CNAN_S, 0, other=ONE)
unboxed_op('fmul.s f3, f2, f1', 0x7fffffff3f800000, 'upper bits not all ones (bit 63 clear): NaN', CNAN_S, 0, other=ONE)
unboxed_op('fsqrt.s f3, f1', 0x0000000040800000, 'fsqrt.s of unboxed 4.0: canonical NaN, no NV', CNAN_S, 0)
unboxed_op('fmv.x.w a0, f1', 0x1234567887654321, 'fmv.x.w ignores the upper bits, sign-extends bit 31', 0xffffffff87654321, 0, xdst=True)
unboxed_op('fmv.x.w a0, f1', 0x0000000040000000, 'fmv.x.w of an unboxed value', 0x40000000, 0, xdst=True)
n = g.next()
g.raw(f'''  TEST({n})  /* fsw stores the low 32 bits of an unboxed register */
  li t1, 0x1234567887654321
  fmv.d.x f1, t1
  la a2, ebuf
  sd zero, 0(a2)
  fsw f1, 0(a2)
  ld t1, 0(a2)
  CHECK(t1, 0x87654321)''')
n = g.next()
g.raw(f'''  TEST({n})  /* fsw of a double loaded by fld: low 32 bits */
  la a1, edata
  fld f1, 16(a1)
  la a2, ebuf
  sd zero, 0(a2)
  fsw f1, 0(a2)
  ld t1, 0(a2)
  CHECK(t1, 0x54442d18)''')
unboxed_op('fsgnj.s f3, f1, f2', 0x0000000040000000, 'fsgnj.s: unboxed rs1 is the canonical NaN', CNAN_S, 0, other=ONE)
unboxed_op('fsgnjn.s f3, f1, f2', 0x0000000040000000, 'fsgnjn.s: unboxed rs1 is the canonical NaN, sign from ~rs2', box(0xffc00000), 0, other=ONE)
unboxed_op('fsgnj.s f3, f2, f1', 0x00000000c0000000, 'fsgnj.s: unboxed rs2 (bit 31 set) gives the sign of the canonical NaN (+)', box(ONE), 0, other=M1)
unboxed_op('fsgnjx.s f3, f2, f1', 0x00000000c0000000, 'fsgnjx.s: unboxed rs2 has sign +', box(M1), 0, other=M1)
unboxed_op('fcvt.d.s f3, f1', 0x000000003f800000, 'fcvt.d.s of unboxed 1.0: canonical double NaN', DQNAN, 0)
unboxed_op('fclass.s a0, f1', 0x000000003f800000, 'fclass.s of an unboxed value: quiet NaN', 0x200, 0, xdst=True)
unboxed_op('fclass.s a0, f1', 0x00000000ff800001, 'fclass.s of an unboxed "sNaN": still the canonical quiet NaN', 0x200, 0, xdst=True)
unboxed_op('feq.s a0, f1, f1', 0x000000003f800000, 'feq.s of an unboxed value with itself: 0, quiet', 0, 0, xdst=True)
unboxed_op('flt.s a0, f1, f2', 0x000000003f800000, 'flt.s with an unboxed operand: 0, NV', 0, NV, other=TWO, xdst=True)
unboxed_op('fcvt.w.s a0, f1', 0x0000000041200000, 'fcvt.w.s of unboxed 10.0: NaN -> 2^31-1, NV', 0x7fffffff, NV, xdst=True)
unboxed_op('fmin.s f3, f1, f2', 0x000000003f800000, 'fmin.s(unboxed, 2.0) = 2.0: the NaN is quiet', box(TWO), 0, other=TWO)
n = g.next()
g.raw(f'''  TEST({n})  /* fmadd.s with an unboxed addend: canonical NaN */
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40000000)
  li t1, 0x3f800000
  fmv.d.x f4, t1
  fsflags zero
  fmadd.s f3, f1, f2, f4
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0xffffffff7fc00000)''')
n = g.next()
g.raw(f'''  TEST({n})  /* a double op on a boxed single sees a quiet double NaN */
  FSET_S(f1, 0x3f800000)
  FSET_D(f2, 0x3ff0000000000000)
  fsflags zero
  fadd.d f3, f1, f2
  CHECK_FLAGS(0)
  CHECK_FREG(f3, 0x7ff8000000000000)''')

g.c('canonical NaN results')
g.s_rr('fadd.s', 0x7fc12345, ONE, note='qNaN payload not propagated')
g.s_rr('fadd.s', 0xffc00000, ONE, note='negative qNaN -> positive canonical NaN')
g.s_rr('fmul.s', 0x7f812345, ONE, note='sNaN with payload: canonical, NV')
g.s_rr('fsub.s', ONE, 0xff812345, note='negative sNaN in rs2: canonical, NV')
g.s_rr('fdiv.s', PZ, NZ, note='0/-0')
g.s_sqrt(M1, note='sqrt(-1)')
g.d_rr('fadd.d', 0x7ff8000000012345, D1, note='double payload not propagated')
g.d_rr('fmul.d', 0xfff0000000000001, D1, note='negative double sNaN')
g.d_rr('fsub.d', d(float('inf')), d(float('inf')), note='inf - inf')
g.d2s(0x7ff8000012345678, note='fcvt.s.d drops the payload')
g.d2s(0xfff8000000000000, note='fcvt.s.d of negative qNaN')
g.s2d(0x7fc12345, note='fcvt.d.s drops the payload')
g.d_fma('fmadd.d', d(float('inf')), 0, D1, note='inf*0 + 1: NV')
g.s_fma('fnmadd.s', QNAN, ONE, ONE, note='NaN in fnmadd: canonical, not negated')

g.c('rounding through the rm field')
for a, nm in [(s(2.5), '2.5'), (s(-2.5), '-2.5'), (s(0.5), '0.5'), (s(-0.5), '-0.5'), (s(1.5), '1.5')]:
    for rm in (RNE, RTZ, RDN, RUP, RMM):
        g.s_f2i('fcvt.w.s', a, rm, note=f'{nm} {RMN[rm]}')

def dyn_line(frm, body, note):
    n = g.next()
    g.raw(f'  TEST({n})  /* {note} */\n  fsrmi {frm}\n' + body)

g.c('rounding through frm (rm = dyn)')
for a, nm in [(ONE, '1/3'), (M1, '-1/3')]:
    for rm in (RNE, RTZ, RDN, RUP, RMM):
        r, fl = div(F32, a, THREE, rm)
        dyn_line(rm, f'''  FSET_S(f1, {h(a)})
  FSET_S(f2, {h(THREE)})
  fsflags zero
  fdiv.s f3, f1, f2, dyn
  CHECK_FLAGS({flname(fl)})
  CHECK_FREG(f3, {h(box(r))})''', f'fdiv.s {nm}, frm = {RMN[rm]}')
for rm in (RNE, RTZ, RDN, RUP, RMM):
    r, fl = div(F64, d(1.0), d(3.0), rm)
    dyn_line(rm, f'''  FSET_D(f1, {h(d(1.0))})
  FSET_D(f2, {h(d(3.0))})
  fsflags zero
  fdiv.d f3, f1, f2, dyn
  CHECK_FLAGS({flname(fl)})
  CHECK_FREG(f3, {h(r)})''', f'fdiv.d 1/3, frm = {RMN[rm]}')
for a, nm in [(d(2.5), '2.5'), (d(-2.5), '-2.5'), (d(-0.5), '-0.5')]:
    for rm in (RNE, RTZ, RDN, RUP, RMM):
        r, fl = f2i(F64, a, 32, 0, rm)
        dyn_line(rm, f'''  FSET_D(f1, {h(a)})
  fsflags zero
  fcvt.w.d a0, f1, dyn
  CHECK_FLAGS({flname(fl)})
  CHECK(a0, {h(r)})''', f'fcvt.w.d {nm}, frm = {RMN[rm]}')
for rm in (RNE, RUP, RDN):
    r, fl = i2f(F32, 16777217, 32, 0, rm)
    dyn_line(rm, f'''  li a0, 16777217
  fsflags zero
  fcvt.s.w f3, a0, dyn
  CHECK_FLAGS({flname(fl)})
  CHECK_FREG(f3, {h(box(r))})''', f'fcvt.s.w 2^24+1, frm = {RMN[rm]}')
r, fl = div(F32, ONE, THREE, RTZ)
dyn_line(RUP, f'''  FSET_S(f1, {h(ONE)})
  FSET_S(f2, {h(THREE)})
  fsflags zero
  fdiv.s f3, f1, f2, rtz
  CHECK_FLAGS({flname(fl)})
  CHECK_FREG(f3, {h(box(r))})''', 'a static rm (rtz) overrides frm (rup)')
r, fl = fma(F32, ONE, THREE, 0x33800000, RUP)
dyn_line(RUP, f'''  FSET_S(f1, {h(ONE)})
  FSET_S(f2, {h(THREE)})
  FSET_S(f4, 0x33800000)
  fsflags zero
  fmadd.s f3, f1, f2, f4, dyn
  CHECK_FLAGS({flname(fl)})
  CHECK_FREG(f3, {h(box(r))})''', 'fmadd.s with frm = rup')
g.raw('  fsrmi 0')

g.c('each fflags bit')
g.s_rr('fadd.s', ONE, ONE, note='exact: no flags')
g.s_rr('fdiv.s', ONE, THREE, note='NX')
g.s_rr('fdiv.s', ONE, PZ, note='DZ')
g.s_rr('fmul.s', MAXF, TWO, note='OF (with NX)')
g.s_rr('fmul.s', 0x0d800000, 0x0d800000, note='UF (with NX)')
g.s_sqrt(M1, note='NV')
g.d_rr('fdiv.d', d(1.0), 0, note='DZ (double)')
g.d_rr('fmul.d', d(1e-200), d(1e-200), note='UF (double)')
g.s_f2i('fcvt.w.s', QNAN, note='NaN -> 0x7fffffff, NV')
g.s_f2i('fcvt.w.s', s(3e9), note='3e9 -> 0x7fffffff, NV')
g.s_f2i('fcvt.w.s', s(-3e9), note='-3e9 -> -2^31, NV')
g.s_f2i('fcvt.wu.s', s(-3.0), note='-3 -> 0, NV')
g.s_f2i('fcvt.wu.s', s(5e9), note='5e9 -> 0xffffffff sign-extended, NV')
g.s_f2i('fcvt.l.s', s(1e19), note='1e19 -> 2^63-1, NV')
g.s_f2i('fcvt.l.s', s(-1e19), note='-1e19 -> -2^63, NV')
g.s_f2i('fcvt.lu.s', NINF, note='-inf -> 0, NV')
g.s_f2i('fcvt.lu.s', SNAN, note='sNaN -> 2^64-1, NV')
g.d_f2i('fcvt.wu.d', DQNAN, note='NaN -> 0xffffffff sign-extended, NV')
g.d_f2i('fcvt.l.d', d(-1e300), note='-1e300 -> -2^63, NV')
n = g.next()
g.raw(f'''  TEST({n})  /* flags are sticky: an exact op does not clear them */
  li t1, 0x1f
  fsflags t1
  FSET_S(f1, 0x3f800000)
  fadd.s f3, f1, f1
  CHECK_FLAGS(0x1f)
  fsflags zero''')
n = g.next()
g.raw(f'''  TEST({n})  /* flags accumulate across operations */
  FSET_S(f1, 0x7f7fffff)
  FSET_S(f2, 0x40000000)
  fmul.s f3, f1, f2
  fmv.w.x f2, zero
  fdiv.s f3, f1, f2
  CHECK_FLAGS(FL_OF | FL_NX | FL_DZ)
  fsflags zero''')

g.c('reserved rounding modes (illegal instruction)')
g.raw('''  la t0, ill_trap
  csrw mtvec, t0''')

def illegal(insn, note, frm=None):
    n = g.next()
    pre = f'  fsrmi {frm}\n' if frm is not None else ''
    g.raw(f'''  TEST({n})  /* {note} */
{pre}  CLR_ILL
  li t1, 0x5
  fsflags t1
  FSET_S(f3, 0x12345678)
  li a0, 0x77
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  FSET_S(f4, 0x40400000)
  .option push
  .option norvc
.Lill{n}:
  {insn}
  .option pop
  CHECK_ILL(.Lill{n})
  CHECK_FLAGS(0x5)
  CHECK_FREG(f3, 0xffffffff12345678)
  CHECK(a0, 0x77)''')

def legal(insn, note, check, frm):
    n = g.next()
    g.raw(f'''  TEST({n})  /* {note} */
  fsrmi {frm}
  CLR_ILL
  fsflags zero
  FSET_S(f1, 0x3f800000)
  FSET_S(f2, 0x40400000)
  .option push
  .option norvc
  {insn}
  .option pop
  CHECK_NO_ILL
{check}''')

illegal('.insn r 0x53, 5, 0x00, f3, f1, f2', 'fadd.s with rm field 5')
illegal('.insn r 0x53, 6, 0x00, f3, f1, f2', 'fadd.s with rm field 6')
illegal('.insn r 0x53, 5, 0x09, f3, f1, f2', 'fmul.d with rm field 5')
illegal('.insn r 0x53, 6, 0x60, a0, f1, x0', 'fcvt.w.s with rm field 6')
illegal('.insn r4 0x43, 5, 0, f3, f1, f2, f4', 'fmadd.s with rm field 5')
illegal('fadd.s f3, f1, f2, dyn', 'dyn with frm = 5', frm=5)
illegal('fdiv.s f3, f1, f2, dyn', 'dyn with frm = 6', frm=6)
illegal('fsqrt.d f3, f1, dyn', 'dyn with frm = 7', frm=7)
illegal('fcvt.s.d f3, f1, dyn', 'fcvt.s.d dyn with frm = 5', frm=5)
legal('fadd.s f3, f1, f2, rne', 'a static rm still works while frm = 5', '  CHECK_FREG(f3, 0xffffffff40800000)', 5)
legal('fsgnjn.s f3, f1, f2', 'fsgnjn.s has no rm: runs while frm = 7', '  CHECK_FREG(f3, 0xffffffffbf800000)', 7)
legal('fmax.s f3, f1, f2', 'fmax.s has no rm: runs while frm = 6', '  CHECK_FREG(f3, 0xffffffff40400000)', 6)
legal('flt.s a0, f1, f2', 'flt.s has no rm: runs while frm = 5', '  CHECK(a0, 1)', 5)
n = g.next()
g.raw(f'''  TEST({n})  /* an invalid frm is still readable and replaceable */
  fsrmi 6
  frrm t1
  CHECK(t1, 6)
  fsrmi 0
  frcsr t1
  CHECK(t1, 0)''')

def fs_off(insn, note):
    n = g.next()
    g.raw(f'''  TEST({n})  /* FS = Off: {note} is illegal */
  CLR_ILL
  li t1, (3 << 13)
  csrc mstatus, t1
  li a0, 0x77
  .option push
  .option norvc
.Lill{n}:
  {insn}
  .option pop
  li t1, (1 << 13)
  csrs mstatus, t1
  CHECK_ILL(.Lill{n})
  CHECK(a0, 0x77)''')

fs_off('fadd.s f3, f1, f2', 'fadd.s')
fs_off('fld f3, 0(sp)', 'fld')
fs_off('fmv.x.d a0, f1', 'fmv.x.d')
fs_off('csrr a0, fflags', 'reading fflags')
fs_off('fscsr zero', 'writing fcsr')
g.raw('''  la t0, unexpected_trap
  csrw mtvec, t0
  fscsr zero''')

g.c('fmin/fmax: signed zeros and NaNs')
g.s_minmax('fmin.s', NZ, PZ)
g.s_minmax('fmin.s', PZ, NZ)
g.s_minmax('fmax.s', NZ, PZ)
g.s_minmax('fmax.s', PZ, NZ)
g.s_minmax('fmin.s', QNAN, ONE, note='qNaN, number: the number, no flag')
g.s_minmax('fmax.s', ONE, 0xffc00000, note='number, negative qNaN')
g.s_minmax('fmin.s', SNAN, ONE, note='sNaN: the number, NV')
g.s_minmax('fmax.s', M1, SNAN, note='sNaN: the number, NV')
g.s_minmax('fmin.s', 0x7fc12345, 0x7fc54321, note='two qNaNs: canonical')
g.s_minmax('fmax.s', SNAN, SNAN, note='two sNaNs: canonical, NV')
g.d_minmax('fmin.d', 0x8000000000000000, 0)
g.d_minmax('fmax.d', 0x8000000000000000, 0)
g.d_minmax('fmin.d', DQNAN, D1)
g.d_minmax('fmax.d', DSNAN, D1, note='NV')
g.d_minmax('fmin.d', DSNAN, DQNAN, note='canonical, NV')

g.c('feq quiet / flt, fle signalling')
g.s_cmp('feq.s', QNAN, QNAN)
g.s_cmp('feq.s', QNAN, ONE)
g.s_cmp('flt.s', QNAN, ONE)
g.s_cmp('fle.s', ONE, QNAN)
g.s_cmp('feq.s', SNAN, SNAN)
g.s_cmp('flt.s', SNAN, ONE)
g.d_cmp('feq.d', DQNAN, D1)
g.d_cmp('flt.d', D1, DQNAN)
g.d_cmp('fle.d', DQNAN, D1)
g.d_cmp('feq.d', DSNAN, D1)

g.c('fclass: all ten classes')
for a, nm in [(NINF, '-inf'), (M1, '-normal'), (0x807fffff, '-subnormal'), (NZ, '-0'), (PZ, '+0'),
              (0x007fffff, '+subnormal (largest)'), (0x00800000, '+normal (smallest)'), (PINF, '+inf'),
              (0x7fbfffff, 'sNaN (largest)'), (0xffc00000, 'negative qNaN')]:
    g.s_class(a, note=nm)
for a, nm in [(0xfff0000000000000, '-inf'), (d(-1e300), '-normal'), (0x8000000000000001, '-subnormal'),
              (0x8000000000000000, '-0'), (0, '+0'), (0x000fffffffffffff, '+subnormal'), (0x0010000000000000, '+normal'),
              (0x7ff0000000000000, '+inf'), (0xfff0000000000001, 'negative sNaN'), (0x7fffffffffffffff, 'qNaN')]:
    g.d_class(a, note=nm)

tail = r'''
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
'''
macros = r'''
/* Illegal-instruction bookkeeping (ill_trap below). */
#define CLR_ILL la t0, ill_area; li t1, -1; sd t1, 0(t0)
#define CHECK_NO_ILL la t0, ill_area; ld t1, 0(t0); CHECK(t1, -1)
/* mcause = 2, mepc = lbl, mtval = 0 or the instruction bits at lbl. */
#define CHECK_ILL(lbl) la t0, ill_area; ld t1, 0(t0); CHECK(t1, 2); ld t1, 8(t0); la t2, lbl; CHECK_EQ(t1, t2); ld t1, 16(t0); beqz t1, 9f; lwu t2, 0(t2); CHECK_EQ(t1, t2); 9:
'''
hdr = hdr.replace('#include "fp.h"\n', '#include "fp.h"\n' + macros)
out = hdr + '\n'.join(g.lines) + '\n' + tail
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fp_edge.S'), 'w').write(out)
print('checks', g.n)
