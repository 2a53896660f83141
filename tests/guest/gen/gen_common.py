from sf import *

RMN = {RNE: 'rne', RTZ: 'rtz', RDN: 'rdn', RUP: 'rup', RMM: 'rmm'}
FLN = [(NV, 'FL_NV'), (DZ, 'FL_DZ'), (OF, 'FL_OF'), (UF, 'FL_UF'), (NX, 'FL_NX')]


def flname(fl):
    if fl == 0:
        return '0'
    return '|'.join(n for b, n in FLN if fl & b)


def box(r):
    return 0xFFFFFFFF00000000 | r


def h(v):
    return '0x%x' % v


class Gen:
    def __init__(self, limit=254):
        self.n = 0
        self.lines = []
        self.limit = limit

    def next(self):
        self.n += 1
        assert self.n <= self.limit, 'too many checks'
        return self.n

    def raw(self, s):
        self.lines.append(s)

    def c(self, s):
        self.lines.append('  /* %s */' % s)

    # ---- single ----
    def s_rr(self, op, a, b, rm=None, note=''):
        fn = {'fadd.s': add, 'fsub.s': sub, 'fmul.s': mul, 'fdiv.s': div}[op]
        r, fl = fn(F32, a, b, RNE if rm is None else rm)
        n = self.next()
        if rm is None:
            self.raw('  TS_RR(%d, %s, %s, %s, %s, %s)%s' % (n, op, h(a), h(b), h(box(r)), flname(fl), cm(note)))
        else:
            self.raw('  TS_RR_RM(%d, %s, %s, %s, %s, %s, %s)%s' % (n, op, RMN[rm], h(a), h(b), h(box(r)), flname(fl), cm(note)))
        return r, fl

    def s_minmax(self, op, a, b, note=''):
        r, fl = fminmax(F32, a, b, op == 'fmax.s')
        self.raw('  TS_RR(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, h(a), h(b), h(box(r)), flname(fl), cm(note)))

    def s_sgnj(self, op, a, b, note=''):
        r = sgnj(F32, a, b, op[5:-2] or 'j')
        self.raw('  TS_RR(%d, %s, %s, %s, %s, 0)%s' % (self.next(), op, h(a), h(b), h(box(r)), cm(note)))

    def s_sqrt(self, a, rm=RNE, note=''):
        r, fl = sqrt(F32, a, rm)
        self.raw('  TS_R_RM(%d, fsqrt.s, %s, %s, %s, %s)%s' % (self.next(), RMN[rm], h(a), h(box(r)), flname(fl), cm(note)))

    def s_fma(self, op, a, b, c, rm=RNE, note=''):
        negp, negc = {'fmadd.s': (0, 0), 'fmsub.s': (0, 1), 'fnmsub.s': (1, 0), 'fnmadd.s': (1, 1)}[op]
        r, fl = fma(F32, a, b, c, rm, negp, negc)
        self.raw('  TS_RRR_RM(%d, %s, %s, %s, %s, %s, %s, %s)%s' % (self.next(), op, RMN[rm], h(a), h(b), h(c), h(box(r)), flname(fl), cm(note)))

    def s_cmp(self, op, a, b, note=''):
        r, fl = cmp(F32, a, b, op[1:3])
        self.raw('  TS_X_RR(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, h(a), h(b), h(r), flname(fl), cm(note)))

    def s_class(self, a, note=''):
        self.raw('  TS_X_R(%d, fclass.s, %s, %s, 0)%s' % (self.next(), h(a), h(fclass(F32, a)), cm(note)))

    def s_f2i(self, op, a, rm=RNE, note=''):
        w, uns = {'fcvt.w.s': (32, 0), 'fcvt.wu.s': (32, 1), 'fcvt.l.s': (64, 0), 'fcvt.lu.s': (64, 1)}[op]
        r, fl = f2i(F32, a, w, uns, rm)
        self.raw('  TS_X_R_RM(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, RMN[rm], h(a), h(r), flname(fl), cm(note)))

    def i2s(self, op, x, rm=RNE, note=''):
        w, uns = {'fcvt.s.w': (32, 0), 'fcvt.s.wu': (32, 1), 'fcvt.s.l': (64, 0), 'fcvt.s.lu': (64, 1)}[op]
        r, fl = i2f(F32, x, w, uns, rm)
        self.raw('  TF_I_RM(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, RMN[rm], h(x), h(box(r)), flname(fl), cm(note)))

    # ---- double ----
    def d_rr(self, op, a, b, rm=None, note=''):
        fn = {'fadd.d': add, 'fsub.d': sub, 'fmul.d': mul, 'fdiv.d': div}[op]
        r, fl = fn(F64, a, b, RNE if rm is None else rm)
        n = self.next()
        if rm is None:
            self.raw('  TD_RR(%d, %s, %s, %s, %s, %s)%s' % (n, op, h(a), h(b), h(r), flname(fl), cm(note)))
        else:
            self.raw('  TD_RR_RM(%d, %s, %s, %s, %s, %s, %s)%s' % (n, op, RMN[rm], h(a), h(b), h(r), flname(fl), cm(note)))
        return r, fl

    def d_minmax(self, op, a, b, note=''):
        r, fl = fminmax(F64, a, b, op == 'fmax.d')
        self.raw('  TD_RR(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, h(a), h(b), h(r), flname(fl), cm(note)))

    def d_sgnj(self, op, a, b, note=''):
        r = sgnj(F64, a, b, op[5:-2] or 'j')
        self.raw('  TD_RR(%d, %s, %s, %s, %s, 0)%s' % (self.next(), op, h(a), h(b), h(r), cm(note)))

    def d_sqrt(self, a, rm=RNE, note=''):
        r, fl = sqrt(F64, a, rm)
        self.raw('  TD_R_RM(%d, fsqrt.d, %s, %s, %s, %s)%s' % (self.next(), RMN[rm], h(a), h(r), flname(fl), cm(note)))

    def d_fma(self, op, a, b, c, rm=RNE, note=''):
        negp, negc = {'fmadd.d': (0, 0), 'fmsub.d': (0, 1), 'fnmsub.d': (1, 0), 'fnmadd.d': (1, 1)}[op]
        r, fl = fma(F64, a, b, c, rm, negp, negc)
        self.raw('  TD_RRR_RM(%d, %s, %s, %s, %s, %s, %s, %s)%s' % (self.next(), op, RMN[rm], h(a), h(b), h(c), h(r), flname(fl), cm(note)))

    def d_cmp(self, op, a, b, note=''):
        r, fl = cmp(F64, a, b, op[1:3])
        self.raw('  TD_X_RR(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, h(a), h(b), h(r), flname(fl), cm(note)))

    def d_class(self, a, note=''):
        self.raw('  TD_X_R(%d, fclass.d, %s, %s, 0)%s' % (self.next(), h(a), h(fclass(F64, a)), cm(note)))

    def d_f2i(self, op, a, rm=RNE, note=''):
        w, uns = {'fcvt.w.d': (32, 0), 'fcvt.wu.d': (32, 1), 'fcvt.l.d': (64, 0), 'fcvt.lu.d': (64, 1)}[op]
        r, fl = f2i(F64, a, w, uns, rm)
        self.raw('  TD_X_R_RM(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, RMN[rm], h(a), h(r), flname(fl), cm(note)))

    def i2d(self, op, x, rm=RNE, note=''):
        w, uns = {'fcvt.d.w': (32, 0), 'fcvt.d.wu': (32, 1), 'fcvt.d.l': (64, 0), 'fcvt.d.lu': (64, 1)}[op]
        r, fl = i2f(F64, x, w, uns, rm)
        if w == 32:
            self.raw('  TF_I(%d, %s, %s, %s, %s)%s' % (self.next(), op, h(x), h(r), flname(fl), cm(note)))
        else:
            self.raw('  TF_I_RM(%d, %s, %s, %s, %s, %s)%s' % (self.next(), op, RMN[rm], h(x), h(r), flname(fl), cm(note)))

    def s2d(self, a, rm=RNE, note=''):
        r, fl = cvt_f2f(F32, F64, a, rm)
        self.raw('  TS_R(%d, fcvt.d.s, %s, %s, %s)%s' % (self.next(), h(a), h(r), flname(fl), cm(note)))

    def d2s(self, a, rm=RNE, note=''):
        r, fl = cvt_f2f(F64, F32, a, rm)
        self.raw('  TD_R_RM(%d, fcvt.s.d, %s, %s, %s, %s)%s' % (self.next(), RMN[rm], h(a), h(box(r)), flname(fl), cm(note)))


def cm(note):
    return ('  /* %s */' % note) if note else ''
