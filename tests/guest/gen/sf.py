# Used by the gen_*.py generators of the floating-point guest tests.
# Exact reference model of RISC-V F/D semantics (IEEE 754, tininess after
# rounding, canonical NaN results), built on Fractions. Independent of QEMU.
from fractions import Fraction as Fr
import math

NX, UF, OF, DZ, NV = 1, 2, 4, 8, 16
RNE, RTZ, RDN, RUP, RMM = 0, 1, 2, 3, 4


class Fmt:
    def __init__(self, E, M):
        self.E, self.M = E, M
        self.bias = (1 << (E - 1)) - 1
        self.emin = 1 - self.bias
        self.emax = self.bias
        self.emask = (1 << E) - 1
        self.width = E + M + 1
        self.cnan = (self.emask << M) | (1 << (M - 1))
        self.inf = self.emask << M
        self.maxf = ((self.emask - 1) << M) | ((1 << M) - 1)

    def sbit(self, s):
        return s << (self.E + self.M)

    def decode(self, b):
        s = b >> (self.E + self.M)
        e = (b >> self.M) & self.emask
        f = b & ((1 << self.M) - 1)
        if e == self.emask:
            if f == 0:
                return ('inf', s, None)
            return ('snan' if not (f >> (self.M - 1)) & 1 else 'qnan', s, None)
        if e == 0:
            v = Fr(f) * Fr(2) ** (self.emin - self.M)
        else:
            v = Fr(f | (1 << self.M)) * Fr(2) ** (e - self.bias - self.M)
        return ('zero' if v == 0 else 'num', s, v)


F32 = Fmt(8, 23)
F64 = Fmt(11, 52)


def ilog2(v):
    # floor(log2(v)) for Fraction v > 0
    e = v.numerator.bit_length() - v.denominator.bit_length()
    if Fr(2) ** e > v:
        e -= 1
    if Fr(2) ** (e + 1) <= v:
        e += 1
    return e


def rnd_int(n, rm, sign):
    fl = n.numerator // n.denominator
    rem = n - fl
    if rem == 0:
        return fl
    if rm == RNE:
        if rem > Fr(1, 2) or (rem == Fr(1, 2) and fl & 1):
            return fl + 1
        return fl
    if rm == RTZ:
        return fl
    if rm == RDN:
        return fl + 1 if sign else fl
    if rm == RUP:
        return fl if sign else fl + 1
    if rm == RMM:
        return fl + 1 if rem >= Fr(1, 2) else fl
    raise ValueError(rm)


def round_pack(fmt, sign, v, rm):
    """v > 0 exact magnitude. Returns (bits, flags)."""
    M = fmt.M
    e = ilog2(v)
    # tininess after rounding: round with unbounded exponent
    q = Fr(2) ** (e - M)
    r_unb = rnd_int(v / q, rm, sign) * q
    tiny = r_unb < Fr(2) ** fmt.emin
    eb = max(e, fmt.emin)
    q = Fr(2) ** (eb - M)
    n = rnd_int(v / q, rm, sign)
    inexact = n * q != v
    if n == (1 << (M + 1)):
        eb += 1
        n >>= 1
    flags = 0
    if eb > fmt.emax:
        flags = OF | NX
        if rm in (RNE, RMM) or (rm == RDN and sign) or (rm == RUP and not sign):
            return fmt.sbit(sign) | fmt.inf, flags
        return fmt.sbit(sign) | fmt.maxf, flags
    if inexact:
        flags |= NX
        if tiny:
            flags |= UF
    if n < (1 << M):
        return fmt.sbit(sign) | n, flags
    return fmt.sbit(sign) | ((eb + fmt.bias) << M) | (n - (1 << M)), flags


def from_exact(fmt, x, rm, zero_sign=0):
    if x == 0:
        return fmt.sbit(zero_sign), 0
    return round_pack(fmt, 1 if x < 0 else 0, abs(x), rm)


def isnan(k):
    return k in ('snan', 'qnan')


def nanres(fmt, *ops):
    fl = NV if any(o[0] == 'snan' for o in ops) else 0
    return fmt.cnan, fl


def signed(o):
    return -o[2] if o[1] else o[2]


def add(fmt, a, b, rm, negb=False):
    A, B = fmt.decode(a), fmt.decode(b)
    if negb:
        B = (B[0], B[1] ^ 1, B[2])
    if isnan(A[0]) or isnan(B[0]):
        return nanres(fmt, A, B)
    if A[0] == 'inf' and B[0] == 'inf':
        if A[1] != B[1]:
            return fmt.cnan, NV
        return fmt.sbit(A[1]) | fmt.inf, 0
    if A[0] == 'inf':
        return fmt.sbit(A[1]) | fmt.inf, 0
    if B[0] == 'inf':
        return fmt.sbit(B[1]) | fmt.inf, 0
    s = signed(A) + signed(B)
    if s == 0:
        if A[0] == 'zero' and B[0] == 'zero' and A[1] == B[1]:
            return fmt.sbit(A[1]), 0
        return fmt.sbit(1 if rm == RDN else 0), 0
    return from_exact(fmt, s, rm)


def sub(fmt, a, b, rm):
    return add(fmt, a, b, rm, negb=True)


def mul(fmt, a, b, rm):
    A, B = fmt.decode(a), fmt.decode(b)
    if isnan(A[0]) or isnan(B[0]):
        return nanres(fmt, A, B)
    s = A[1] ^ B[1]
    if (A[0] == 'inf' and B[0] == 'zero') or (A[0] == 'zero' and B[0] == 'inf'):
        return fmt.cnan, NV
    if A[0] == 'inf' or B[0] == 'inf':
        return fmt.sbit(s) | fmt.inf, 0
    if A[0] == 'zero' or B[0] == 'zero':
        return fmt.sbit(s), 0
    return round_pack(fmt, s, A[2] * B[2], rm)


def div(fmt, a, b, rm):
    A, B = fmt.decode(a), fmt.decode(b)
    if isnan(A[0]) or isnan(B[0]):
        return nanres(fmt, A, B)
    s = A[1] ^ B[1]
    if A[0] == 'inf' and B[0] == 'inf':
        return fmt.cnan, NV
    if A[0] == 'zero' and B[0] == 'zero':
        return fmt.cnan, NV
    if A[0] == 'inf':
        return fmt.sbit(s) | fmt.inf, 0
    if B[0] == 'inf':
        return fmt.sbit(s), 0
    if B[0] == 'zero':
        return fmt.sbit(s) | fmt.inf, DZ
    if A[0] == 'zero':
        return fmt.sbit(s), 0
    return round_pack(fmt, s, A[2] / B[2], rm)


def sqrt(fmt, a, rm):
    A = fmt.decode(a)
    if isnan(A[0]):
        return nanres(fmt, A)
    if A[0] == 'zero':
        return a, 0
    if A[1]:
        return fmt.cnan, NV
    if A[0] == 'inf':
        return a, 0
    G = 1200
    N = A[2] * Fr(4) ** G
    assert N.denominator == 1
    N = N.numerator
    S = math.isqrt(N)
    if S * S == N:
        v = Fr(S, 2 ** G)
    else:
        v = Fr(2 * S + 1, 2 ** (G + 1))
    return round_pack(fmt, 0, v, rm)


def fma(fmt, a, b, c, rm, negp=False, negc=False):
    A, B, C = fmt.decode(a), fmt.decode(b), fmt.decode(c)
    inv = (A[0] == 'inf' and B[0] == 'zero') or (A[0] == 'zero' and B[0] == 'inf')
    if isnan(A[0]) or isnan(B[0]) or isnan(C[0]):
        r, fl = nanres(fmt, A, B, C)
        return r, fl | (NV if inv else 0)
    if inv:
        return fmt.cnan, NV
    sp = A[1] ^ B[1] ^ (1 if negp else 0)
    sc = C[1] ^ (1 if negc else 0)
    pinf = A[0] == 'inf' or B[0] == 'inf'
    if pinf and C[0] == 'inf' and sp != sc:
        return fmt.cnan, NV
    if pinf:
        return fmt.sbit(sp) | fmt.inf, 0
    if C[0] == 'inf':
        return fmt.sbit(sc) | fmt.inf, 0
    p = A[2] * B[2] * (-1 if sp else 1)
    cv = C[2] * (-1 if sc else 1)
    s = p + cv
    if s == 0:
        if p == 0 and cv == 0 and sp == sc:
            return fmt.sbit(sp), 0
        return fmt.sbit(1 if rm == RDN else 0), 0
    return from_exact(fmt, s, rm)


def fminmax(fmt, a, b, ismax):
    A, B = fmt.decode(a), fmt.decode(b)
    fl = NV if (A[0] == 'snan' or B[0] == 'snan') else 0
    if isnan(A[0]) and isnan(B[0]):
        return fmt.cnan, fl
    if isnan(A[0]):
        return b, fl
    if isnan(B[0]):
        return a, fl
    def key(o, bits):
        if o[0] == 'inf':
            v = Fr(10) ** 400
        else:
            v = o[2]
        v = -v if o[1] else v
        return (v, 0 if o[1] else 1)  # -0 < +0
    ka, kb = key(A, a), key(B, b)
    if ismax:
        return (a if ka >= kb else b), fl
    return (a if ka <= kb else b), fl


def cmp(fmt, a, b, op):
    A, B = fmt.decode(a), fmt.decode(b)
    if isnan(A[0]) or isnan(B[0]):
        if op == 'eq':
            fl = NV if (A[0] == 'snan' or B[0] == 'snan') else 0
        else:
            fl = NV
        return 0, fl
    def val(o):
        if o[0] == 'inf':
            return Fr(10) ** 400 * (-1 if o[1] else 1)
        return signed(o)
    x, y = val(A), val(B)
    return int({'eq': x == y, 'lt': x < y, 'le': x <= y}[op]), 0


def fclass(fmt, a):
    k, s, v = fmt.decode(a)
    if k == 'inf':
        return 1 << (0 if s else 7)
    if k == 'snan':
        return 1 << 8
    if k == 'qnan':
        return 1 << 9
    if k == 'zero':
        return 1 << (3 if s else 4)
    sub = v < Fr(2) ** fmt.emin
    if s:
        return 1 << (2 if sub else 1)
    return 1 << (5 if sub else 6)


def sext(v, w):
    v &= (1 << w) - 1
    if v >> (w - 1):
        v -= 1 << w
    return v & 0xFFFFFFFFFFFFFFFF


def f2i(fmt, a, w, uns, rm):
    """Returns 64-bit register value (32-bit results sign-extended), flags."""
    A = fmt.decode(a)
    lo = 0 if uns else -(1 << (w - 1))
    hi = (1 << w) - 1 if uns else (1 << (w - 1)) - 1
    if isnan(A[0]):
        r, fl = hi, NV
    elif A[0] == 'inf':
        r, fl = (lo if A[1] else hi), NV
    else:
        v = signed(A) if A[0] == 'num' else Fr(0)
        mag = rnd_int(abs(v), rm, A[1])
        r = -mag if A[1] else mag
        if r < lo:
            r, fl = lo, NV
        elif r > hi:
            r, fl = hi, NV
        else:
            fl = NX if Fr(r) != v else 0
    return sext(r, w) if w == 32 else r & 0xFFFFFFFFFFFFFFFF, fl


def i2f(fmt, x, w, uns, rm):
    x &= (1 << w) - 1
    if not uns and x >> (w - 1):
        x -= 1 << w
    return from_exact(fmt, Fr(x), rm)


def cvt_f2f(src, dst, a, rm):
    A = src.decode(a)
    if isnan(A[0]):
        return dst.cnan, (NV if A[0] == 'snan' else 0)
    if A[0] == 'inf':
        return dst.sbit(A[1]) | dst.inf, 0
    if A[0] == 'zero':
        return dst.sbit(A[1]), 0
    return round_pack(dst, A[1], A[2], rm)


def sgnj(fmt, a, b, kind):
    sb = fmt.width - 1
    mag = a & ((1 << sb) - 1)
    sa_, sb_ = a >> sb, b >> sb
    s = {'j': sb_, 'n': sb_ ^ 1, 'x': sa_ ^ sb_}[kind]
    return (s << sb) | mag


def fbits(fmt, x):
    import struct
    if fmt is F64:
        return struct.unpack('<Q', struct.pack('<d', x))[0]
    return struct.unpack('<I', struct.pack('<f', x))[0]
