//! The x87 floating-point unit: its register stack, tags, status and control
//! words, exceptions, and every x87 instruction (the numbers themselves are
//! in [`crate::x87_float`]).
//!
//! Exceptions follow the 387 and later: a flag is always set in the status
//! word; a masked one gets the default response (the indefinite, infinity,
//! the rounded result), an unmasked invalid, zero-divide or denormal leaves
//! the destination alone and sets ES, and the next waiting x87 instruction
//! raises #MF when CR0.NE is set. (With CR0.NE clear a PC signals FERR# on
//! IRQ 13; no machine wires it yet, so the error is only recorded.) Unmasked
//! overflow and underflow store the masked result rather than the
//! exponent-adjusted one.

use crate::cpu::{Cpu, Fault, vector};
use crate::decode::{Insn, Operand};
use crate::flags::mask;
use crate::state::flags::{CF, PF, ZF};
use crate::state::{SegReg, X87State, cr0, fsw};
use crate::x87_float::{
    self as num, Arith, Class, Compared, Constant, INDEFINITE, Outcome, Transcendental,
};

/// The x87 operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X87Op {
    /// FLD: push a float from memory or a copy of ST(i).
    Load,
    /// FST / FSTP to memory or ST(i).
    Store {
        /// Pop afterwards.
        pop: bool,
    },
    /// FILD.
    LoadInt,
    /// FIST, FISTP, FISTTP.
    StoreInt {
        /// Pop afterwards.
        pop: bool,
        /// Round toward zero whatever the control word says (FISTTP).
        truncate: bool,
    },
    /// FBLD.
    LoadBcd,
    /// FBSTP.
    StoreBcd,
    /// FXCH.
    Exchange,
    /// FLD1, FLDPI, … FLDZ.
    Constant(Constant),
    /// FADD, FSUB(R), FMUL, FDIV(R) in all their forms.
    Arith {
        /// The operation.
        op: Arith,
        /// The R forms: the operands swap.
        reverse: bool,
        /// The P forms.
        pop: bool,
        /// The FI forms (integer memory operand).
        int: bool,
    },
    /// FCOM, FCOMP, FCOMPP, FUCOM*, FICOM*: C3, C2, C0.
    Compare {
        /// How many registers to pop afterwards.
        pops: u8,
        /// The FUCOM forms: quiet NaNs do not raise IE.
        unordered: bool,
        /// The FICOM forms.
        int: bool,
    },
    /// FCOMI, FCOMIP, FUCOMI, FUCOMIP: ZF, PF, CF.
    CompareFlags {
        /// Pop afterwards.
        pop: bool,
        /// The FUCOMI forms.
        unordered: bool,
    },
    /// FTST.
    Test,
    /// FXAM.
    Examine,
    /// FCHS.
    ChangeSign,
    /// FABS.
    Abs,
    /// FSQRT.
    Sqrt,
    /// FRNDINT.
    RoundToInteger,
    /// FSCALE.
    Scale,
    /// FXTRACT.
    Extract,
    /// FPREM (`nearest` false) and FPREM1.
    Remainder {
        /// FPREM1.
        nearest: bool,
    },
    /// F2XM1, FYL2X, FYL2XP1, FPATAN, FSIN, FCOS, FPTAN.
    Transcendental(Transcendental),
    /// FSINCOS.
    SinCos,
    /// FDECSTP.
    DecrementTop,
    /// FINCSTP.
    IncrementTop,
    /// FFREE and FFREEP.
    Free {
        /// FFREEP.
        pop: bool,
    },
    /// FNOP, and the 287's FENI, FDISI and FSETPM (no-ops since the 387).
    Nop,
    /// FNINIT.
    Init,
    /// FNCLEX.
    ClearExceptions,
    /// FLDCW.
    LoadControl,
    /// FNSTCW.
    StoreControl,
    /// FNSTSW to memory or AX.
    StoreStatus,
    /// FNSTENV.
    StoreEnvironment,
    /// FLDENV.
    LoadEnvironment,
    /// FNSAVE.
    Save,
    /// FRSTOR.
    Restore,
    /// FCMOVcc (the condition is [`Insn::cond`]).
    ConditionalMove,
}

/// The x87 operation for an iced mnemonic, and the FCMOV condition in
/// encoding order, or `None`.
pub fn x87_op(m: iced_x86::Mnemonic) -> Option<(X87Op, u8)> {
    use X87Op as X;
    use iced_x86::Mnemonic as M;
    let arith = |op, reverse, pop, int| X::Arith {
        op,
        reverse,
        pop,
        int,
    };
    let compare = |pops, unordered, int| X::Compare {
        pops,
        unordered,
        int,
    };
    let trans = X::Transcendental;
    Some((
        match m {
            M::Fld => X::Load,
            M::Fst => X::Store { pop: false },
            M::Fstp => X::Store { pop: true },
            M::Fild => X::LoadInt,
            M::Fist => X::StoreInt {
                pop: false,
                truncate: false,
            },
            M::Fistp => X::StoreInt {
                pop: true,
                truncate: false,
            },
            M::Fisttp => X::StoreInt {
                pop: true,
                truncate: true,
            },
            M::Fbld => X::LoadBcd,
            M::Fbstp => X::StoreBcd,
            M::Fxch => X::Exchange,
            M::Fld1 => X::Constant(Constant::One),
            M::Fldl2t => X::Constant(Constant::Log2Ten),
            M::Fldl2e => X::Constant(Constant::Log2E),
            M::Fldpi => X::Constant(Constant::Pi),
            M::Fldlg2 => X::Constant(Constant::Log10Two),
            M::Fldln2 => X::Constant(Constant::LnTwo),
            M::Fldz => X::Constant(Constant::Zero),
            M::Fadd => arith(Arith::Add, false, false, false),
            M::Faddp => arith(Arith::Add, false, true, false),
            M::Fiadd => arith(Arith::Add, false, false, true),
            M::Fsub => arith(Arith::Sub, false, false, false),
            M::Fsubp => arith(Arith::Sub, false, true, false),
            M::Fisub => arith(Arith::Sub, false, false, true),
            M::Fsubr => arith(Arith::Sub, true, false, false),
            M::Fsubrp => arith(Arith::Sub, true, true, false),
            M::Fisubr => arith(Arith::Sub, true, false, true),
            M::Fmul => arith(Arith::Mul, false, false, false),
            M::Fmulp => arith(Arith::Mul, false, true, false),
            M::Fimul => arith(Arith::Mul, false, false, true),
            M::Fdiv => arith(Arith::Div, false, false, false),
            M::Fdivp => arith(Arith::Div, false, true, false),
            M::Fidiv => arith(Arith::Div, false, false, true),
            M::Fdivr => arith(Arith::Div, true, false, false),
            M::Fdivrp => arith(Arith::Div, true, true, false),
            M::Fidivr => arith(Arith::Div, true, false, true),
            M::Fcom => compare(0, false, false),
            M::Fcomp => compare(1, false, false),
            M::Fcompp => compare(2, false, false),
            M::Fucom => compare(0, true, false),
            M::Fucomp => compare(1, true, false),
            M::Fucompp => compare(2, true, false),
            M::Ficom => compare(0, false, true),
            M::Ficomp => compare(1, false, true),
            M::Fcomi => X::CompareFlags {
                pop: false,
                unordered: false,
            },
            M::Fcomip => X::CompareFlags {
                pop: true,
                unordered: false,
            },
            M::Fucomi => X::CompareFlags {
                pop: false,
                unordered: true,
            },
            M::Fucomip => X::CompareFlags {
                pop: true,
                unordered: true,
            },
            M::Ftst => X::Test,
            M::Fxam => X::Examine,
            M::Fchs => X::ChangeSign,
            M::Fabs => X::Abs,
            M::Fsqrt => X::Sqrt,
            M::Frndint => X::RoundToInteger,
            M::Fscale => X::Scale,
            M::Fxtract => X::Extract,
            M::Fprem => X::Remainder { nearest: false },
            M::Fprem1 => X::Remainder { nearest: true },
            M::F2xm1 => trans(Transcendental::Exp2MinusOne),
            M::Fyl2x => trans(Transcendental::YLog2X),
            M::Fyl2xp1 => trans(Transcendental::YLog2XPlusOne),
            M::Fpatan => trans(Transcendental::Atan),
            M::Fsin => trans(Transcendental::Sin),
            M::Fcos => trans(Transcendental::Cos),
            M::Fptan => trans(Transcendental::Tan),
            M::Fsincos => X::SinCos,
            M::Fdecstp => X::DecrementTop,
            M::Fincstp => X::IncrementTop,
            M::Ffree => X::Free { pop: false },
            M::Ffreep => X::Free { pop: true },
            M::Fnop | M::Fneni | M::Fndisi | M::Fnsetpm | M::Feni | M::Fdisi | M::Fsetpm => X::Nop,
            M::Fninit | M::Finit => X::Init,
            M::Fnclex | M::Fclex => X::ClearExceptions,
            M::Fldcw => X::LoadControl,
            M::Fnstcw | M::Fstcw => X::StoreControl,
            M::Fnstsw | M::Fstsw => X::StoreStatus,
            M::Fnstenv | M::Fstenv => X::StoreEnvironment,
            M::Fldenv => X::LoadEnvironment,
            M::Fnsave | M::Fsave => X::Save,
            M::Frstor => X::Restore,
            M::Fcmovb => return Some((X::ConditionalMove, 2)),
            M::Fcmovnb => return Some((X::ConditionalMove, 3)),
            M::Fcmove => return Some((X::ConditionalMove, 4)),
            M::Fcmovne => return Some((X::ConditionalMove, 5)),
            M::Fcmovbe => return Some((X::ConditionalMove, 6)),
            M::Fcmovnbe => return Some((X::ConditionalMove, 7)),
            M::Fcmovu => return Some((X::ConditionalMove, 10)),
            M::Fcmovnu => return Some((X::ConditionalMove, 11)),
            _ => return None,
        },
        0,
    ))
}

impl X87Op {
    /// The control instructions, which neither wait for a pending error nor
    /// record themselves as the last instruction.
    fn is_control(self) -> bool {
        matches!(
            self,
            X87Op::Init
                | X87Op::ClearExceptions
                | X87Op::LoadControl
                | X87Op::StoreControl
                | X87Op::StoreStatus
                | X87Op::StoreEnvironment
                | X87Op::LoadEnvironment
                | X87Op::Save
                | X87Op::Restore
        )
    }

    /// Whether the instruction checks for a pending unmasked exception first
    /// (the FN forms do not).
    fn waits(self) -> bool {
        !matches!(
            self,
            X87Op::Init
                | X87Op::ClearExceptions
                | X87Op::StoreControl
                | X87Op::StoreStatus
                | X87Op::StoreEnvironment
                | X87Op::Save
        )
    }
}

/// The full two-bit tag of physical register `n`: 0 valid, 1 zero, 2
/// special, 3 empty.
pub fn full_tag(x87: &X87State, n: usize) -> u16 {
    if x87.used & (1 << n) == 0 {
        return 3;
    }
    match num::classify(x87.regs[n]) {
        Class::Normal => 0,
        Class::Zero => 1,
        _ => 2,
    }
}

/// The full tag word.
pub fn tag_word(x87: &X87State) -> u16 {
    (0..8).fold(0, |w, n| w | (full_tag(x87, n) << (2 * n)))
}

/// Which C bits a compare sets: (C3, C2, C0).
fn condition_bits(c: Compared) -> u16 {
    match c {
        Compared::Greater => 0,
        Compared::Less => fsw::C0,
        Compared::Equal => fsw::C3,
        Compared::Unordered => fsw::C3 | fsw::C2 | fsw::C0,
    }
}

const CONDITION: u16 = fsw::C0 | fsw::C1 | fsw::C2 | fsw::C3;

impl Cpu {
    fn st_physical(&self, i: u8) -> usize {
        usize::from((self.state.x87.top + i) & 7)
    }

    fn is_empty(&self, i: u8) -> bool {
        self.state.x87.used & (1 << self.st_physical(i)) == 0
    }

    /// ST(i), or `None` when the register is empty.
    fn st(&self, i: u8) -> Option<u128> {
        if self.is_empty(i) {
            None
        } else {
            Some(self.state.x87.regs[self.st_physical(i)])
        }
    }

    fn set_st(&mut self, i: u8, v: u128) {
        let p = self.st_physical(i);
        self.state.x87.regs[p] = v;
        self.state.x87.used |= 1 << p;
    }

    fn fpop(&mut self) {
        let p = self.st_physical(0);
        self.state.x87.used &= !(1 << p);
        self.state.x87.top = (self.state.x87.top + 1) & 7;
    }

    /// Raises exception flags; true when one of them is unmasked.
    fn raise(&mut self, flags: u16) -> bool {
        let x87 = &mut self.state.x87;
        x87.fsw |= flags;
        let unmasked = flags & !x87.fcw & fsw::EXCEPTIONS != 0;
        if x87.fsw & !x87.fcw & fsw::EXCEPTIONS != 0 {
            x87.fsw |= fsw::ES | fsw::B;
        }
        unmasked
    }

    /// Raises the flags of an outcome and sets C1 from its rounding; true
    /// when the result may be stored (no unmasked IE, ZE or DE).
    fn raise_outcome(&mut self, o: &Outcome) -> bool {
        self.state.x87.fsw &= !fsw::C1;
        if o.rounded_up {
            self.state.x87.fsw |= fsw::C1;
        }
        let pre = o.flags & (fsw::IE | fsw::ZE | fsw::DE);
        self.raise(o.flags);
        pre & !self.state.x87.fcw == 0
    }

    /// A stack underflow (an empty register read): IE with SF, C1 clear.
    /// True when masked, so the indefinite goes to the destination.
    fn underflow(&mut self) -> bool {
        self.state.x87.fsw &= !fsw::C1;
        !self.raise(fsw::IE | fsw::SF)
    }

    /// Pushes `v`; a full stack is a stack overflow (IE, SF, C1 set), which
    /// pushes the indefinite when masked.
    fn fpush(&mut self, v: u128) {
        let top = (self.state.x87.top + 7) & 7;
        if self.state.x87.used & (1 << top) != 0 {
            self.state.x87.fsw |= fsw::C1;
            if self.raise(fsw::IE | fsw::SF) {
                return;
            }
            self.state.x87.top = top;
            self.set_st(0, INDEFINITE);
            return;
        }
        self.state.x87.top = top;
        self.set_st(0, v);
    }

    /// #NM when CR0.EM or CR0.TS, and #MF for a pending error before a
    /// waiting instruction.
    fn x87_available(&self, op: X87Op) -> Result<(), Fault> {
        if self.state.cr0 & (cr0::EM | cr0::TS) != 0 {
            return Err(Fault {
                vector: vector::NM,
                error: None,
            });
        }
        if op.waits() {
            self.pending_x87_error()?;
        }
        Ok(())
    }

    /// #MF if an unmasked x87 exception is pending and CR0.NE asks for it.
    pub(crate) fn pending_x87_error(&self) -> Result<(), Fault> {
        if self.state.x87.fsw & fsw::ES != 0 && self.state.cr0 & cr0::NE != 0 {
            return Err(Fault {
                vector: vector::MF,
                error: None,
            });
        }
        Ok(())
    }

    /// Reads a memory operand of `bytes` bytes (up to 10).
    fn read_wide(&mut self, i: &Insn, bytes: u8) -> Result<u128, Fault> {
        let ea = self.effective_address(i);
        self.linear(i.seg, ea, bytes, crate::mmu::Access::Read)?;
        let low = self.read(i.seg, ea, bytes.min(8))?;
        let high = if bytes > 8 {
            self.read(i.seg, ea.wrapping_add(8) & mask(i.addr_size), bytes - 8)?
        } else {
            0
        };
        Ok(u128::from(low) | (u128::from(high) << 64))
    }

    fn write_wide(&mut self, i: &Insn, bytes: u8, v: u128) -> Result<(), Fault> {
        let ea = self.effective_address(i);
        self.linear(i.seg, ea, bytes, crate::mmu::Access::Write)?;
        let high_at = ea.wrapping_add(8) & mask(i.addr_size);
        if bytes > 8 {
            self.linear(i.seg, high_at, bytes - 8, crate::mmu::Access::Write)?;
        }
        self.write(i.seg, ea, bytes.min(8), v as u64)?;
        if bytes > 8 {
            self.write(i.seg, high_at, bytes - 8, (v >> 64) as u64)?;
        }
        Ok(())
    }

    /// A float memory operand (4, 8 or 10 bytes) as an extended value, with
    /// the flags loading it raises.
    fn load_float(&mut self, i: &Insn, bytes: u8) -> Result<Outcome, Fault> {
        let raw = self.read_wide(i, bytes)?;
        Ok(if bytes == 10 {
            Outcome {
                value: raw,
                flags: 0,
                rounded_up: false,
            }
        } else {
            num::from_memory_float(raw as u64, bytes)
        })
    }

    /// The source operand of a two-operand instruction: ST(i) or memory
    /// (float or integer).
    fn x87_source(&mut self, i: &Insn, o: Operand, int: bool) -> Result<Option<Outcome>, Fault> {
        Ok(match o {
            Operand::St(n) => self.st(n).map(|value| Outcome {
                value,
                flags: 0,
                rounded_up: false,
            }),
            Operand::Mem(bytes) if int => {
                let raw = self.read_operand(i, o)?;
                Some(Outcome {
                    value: num::from_int(crate::flags::sign_extend(raw, bytes) as i64),
                    flags: 0,
                    rounded_up: false,
                })
            }
            Operand::Mem(bytes) => Some(self.load_float(i, bytes)?),
            _ => return Err(Fault::UD),
        })
    }

    /// Executes an x87 instruction.
    pub(crate) fn x87(&mut self, i: &Insn, op: X87Op) -> Result<(), Fault> {
        self.x87_available(op)?;
        let [dst, src, _] = i.operands;
        if !op.is_control() {
            let cs = self.state.seg(SegReg::Cs).selector;
            let (rip, ds) = (self.state.rip, self.state.seg(i.seg).selector);
            let ea = self.effective_address(i);
            let x87 = &mut self.state.x87;
            x87.fop = i.imm as u16 & 0x7ff;
            x87.fip = rip;
            x87.fcs = cs;
            if let Operand::Mem(_) = dst {
                x87.fdp = ea;
                x87.fds = ds;
            }
        }
        use X87Op as X;
        match op {
            X::Load => {
                let loaded = match dst {
                    Operand::St(n) => match self.st(n) {
                        Some(v) => Outcome {
                            value: v,
                            flags: 0,
                            rounded_up: false,
                        },
                        None => {
                            // The indefinite takes the new top, whatever
                            // was there.
                            if self.underflow() {
                                self.state.x87.top = (self.state.x87.top + 7) & 7;
                                self.set_st(0, INDEFINITE);
                            }
                            return Ok(());
                        }
                    },
                    Operand::Mem(bytes) => {
                        let mut loaded = self.load_float(i, bytes)?;
                        // A signaling single or double is quieted on the way
                        // in (an extended one is loaded as it is).
                        if bytes != 10 && num::classify(loaded.value) == Class::SignalingNan {
                            loaded.value = num::quiet(loaded.value);
                            loaded.flags |= fsw::IE;
                        }
                        loaded
                    }
                    _ => return Err(Fault::UD),
                };
                // A full stack is an overflow whatever the value.
                if !self.is_empty(7) || self.raise_outcome(&loaded) {
                    self.state.x87.fsw &= !fsw::C1;
                    self.fpush(loaded.value);
                }
            }
            X::Store { pop } => {
                let Some(v) = self.st(0) else {
                    if self.underflow() {
                        match dst {
                            Operand::St(n) => self.set_st(n, INDEFINITE),
                            Operand::Mem(bytes) => {
                                let fcw = self.state.x87.fcw;
                                let bits = match bytes {
                                    10 => INDEFINITE,
                                    _ => u128::from(num::to_memory_float(INDEFINITE, bytes, fcw).0),
                                };
                                self.write_wide(i, bytes, bits)?;
                            }
                            _ => return Err(Fault::UD),
                        }
                        if pop {
                            self.fpop();
                        }
                    }
                    return Ok(());
                };
                match dst {
                    Operand::St(n) => self.set_st(n, v),
                    Operand::Mem(10) => self.write_wide(i, 10, v)?,
                    Operand::Mem(bytes) => {
                        let (bits, flags, up) = num::to_memory_float(v, bytes, self.state.x87.fcw);
                        let outcome = Outcome {
                            value: 0,
                            flags,
                            rounded_up: up,
                        };
                        // The store itself may fault before anything is raised.
                        let ea = self.effective_address(i);
                        self.linear(i.seg, ea, bytes, crate::mmu::Access::Write)?;
                        self.raise_outcome(&outcome);
                        // An unmasked exception other than precision leaves
                        // memory and the stack alone.
                        let blocking = fsw::IE | fsw::DE | fsw::OE | fsw::UE;
                        if flags & blocking & !self.state.x87.fcw != 0 {
                            return Ok(());
                        }
                        self.write_wide(i, bytes, u128::from(bits))?;
                    }
                    _ => return Err(Fault::UD),
                }
                if !matches!(dst, Operand::Mem(4 | 8)) {
                    self.state.x87.fsw &= !fsw::C1;
                }
                if pop {
                    self.fpop();
                }
            }
            X::LoadInt => {
                let Operand::Mem(bytes) = dst else {
                    return Err(Fault::UD);
                };
                let raw = self.read_operand(i, dst)?;
                self.state.x87.fsw &= !fsw::C1;
                self.fpush(num::from_int(crate::flags::sign_extend(raw, bytes) as i64));
            }
            X::StoreInt { pop, truncate } => {
                let Operand::Mem(bytes) = dst else {
                    return Err(Fault::UD);
                };
                let (bits, flags, up) = match self.st(0) {
                    Some(v) => num::to_int(v, bytes, self.state.x87.fcw, truncate),
                    None => {
                        self.state.x87.fsw &= !fsw::C1;
                        (1u64 << (u32::from(bytes) * 8 - 1), fsw::IE | fsw::SF, false)
                    }
                };
                let ea = self.effective_address(i);
                self.linear(i.seg, ea, bytes, crate::mmu::Access::Write)?;
                let outcome = Outcome {
                    value: 0,
                    flags,
                    rounded_up: up,
                };
                if self.raise_outcome(&outcome) {
                    self.write_operand(i, dst, bits)?;
                    if pop {
                        self.fpop();
                    }
                }
            }
            X::LoadBcd => {
                let raw = self.read_wide(i, 10)?;
                self.state.x87.fsw &= !fsw::C1;
                self.fpush(num::from_bcd(raw));
            }
            X::StoreBcd => {
                let (bits, flags, rounded_up) = match self.st(0) {
                    Some(v) => num::to_bcd(v, self.state.x87.fcw),
                    None => (0xffff_c000_0000_0000_0000, fsw::IE | fsw::SF, false),
                };
                let ea = self.effective_address(i);
                self.linear(i.seg, ea, 10, crate::mmu::Access::Write)?;
                self.state.x87.fsw &= !fsw::C1;
                if rounded_up {
                    self.state.x87.fsw |= fsw::C1;
                }
                if !self.raise(flags) || flags & fsw::IE == 0 {
                    self.write_wide(i, 10, bits)?;
                    self.fpop();
                }
            }
            X::Exchange => {
                let n = match (dst, src) {
                    (_, Operand::St(n)) | (Operand::St(n), Operand::None) => n,
                    _ => 1,
                };
                let (a, b) = (self.st(0), self.st(n));
                self.state.x87.fsw &= !fsw::C1;
                match (a, b) {
                    (Some(a), Some(b)) => {
                        self.set_st(0, b);
                        self.set_st(n, a);
                    }
                    _ => {
                        if self.underflow() {
                            self.set_st(0, b.unwrap_or(INDEFINITE));
                            self.set_st(n, a.unwrap_or(INDEFINITE));
                        }
                    }
                }
            }
            X::Constant(c) => {
                self.state.x87.fsw &= !fsw::C1;
                self.fpush(num::constant(c, self.state.x87.fcw));
            }
            X::Arith {
                op,
                reverse,
                pop,
                int,
            } => {
                // Memory forms: ST(0) op m. Register forms: op0 op= op1.
                let (target, a, b) = match (dst, src) {
                    (Operand::Mem(_), _) => (0, self.st(0), self.x87_source(i, dst, int)?),
                    (Operand::St(d), Operand::St(_)) => {
                        (d, self.st(d), self.x87_source(i, src, false)?)
                    }
                    _ => return Err(Fault::UD),
                };
                let (Some(a), Some(b)) = (a, b) else {
                    if self.underflow() {
                        self.set_st(target, INDEFINITE);
                        if pop {
                            self.fpop();
                        }
                    }
                    return Ok(());
                };
                let (x, y) = if reverse { (b.value, a) } else { (a, b.value) };
                let mut out = num::arithmetic(op, x, y, self.state.x87.fcw);
                // Loading the memory operand: a signaling NaN is invalid; a
                // denormal counts unless a NaN decides the result.
                out.flags |= b.flags & fsw::IE;
                if num::is_number(a) && num::is_number(b.value) && out.flags & fsw::ZE == 0 {
                    out.flags |= b.flags & fsw::DE;
                }
                if self.raise_outcome(&out) {
                    self.set_st(target, out.value);
                    if pop {
                        self.fpop();
                    }
                }
            }
            X::Compare {
                pops,
                unordered,
                int,
            } => {
                // FCOM m, FCOM ST(i), FCOM ST(0), ST(i) and plain FCOM (ST(1)).
                let source = match (dst, src) {
                    (_, Operand::St(_)) => src,
                    (Operand::None, _) => Operand::St(1),
                    (o, _) => o,
                };
                let b = self.x87_source(i, source, int)?;
                let (relation, flags) = match (self.st(0), b) {
                    (Some(a), Some(b)) => {
                        let (r, f) = num::compare(a, b.value, !unordered);
                        let numbers = num::is_number(a) && num::is_number(b.value);
                        (r, f | if numbers { b.flags & fsw::DE } else { 0 })
                    }
                    _ => (Compared::Unordered, fsw::IE | fsw::SF),
                };
                let x87 = &mut self.state.x87;
                x87.fsw &= !CONDITION;
                if !self.raise(flags) || flags & (fsw::IE | fsw::DE) == 0 {
                    self.state.x87.fsw |= condition_bits(relation);
                    for _ in 0..pops {
                        self.fpop();
                    }
                }
            }
            X::CompareFlags { pop, unordered } => {
                let n = match src {
                    Operand::St(n) => n,
                    _ => 1,
                };
                let (relation, flags) = match (self.st(0), self.st(n)) {
                    (Some(a), Some(b)) => num::compare(a, b, !unordered),
                    _ => {
                        self.state.x87.fsw &= !fsw::C1;
                        (Compared::Unordered, fsw::IE | fsw::SF)
                    }
                };
                // C1 stays as it was (an underflow above cleared it).
                if !self.raise(flags) || flags & (fsw::IE | fsw::DE) == 0 {
                    let bits = match relation {
                        Compared::Greater => 0,
                        Compared::Less => CF,
                        Compared::Equal => ZF,
                        Compared::Unordered => ZF | PF | CF,
                    };
                    self.set_status(
                        bits,
                        ZF | PF
                            | CF
                            | crate::state::flags::OF
                            | crate::state::flags::SF
                            | crate::state::flags::AF,
                    );
                    if pop {
                        self.fpop();
                    }
                }
            }
            X::Test => {
                let (relation, flags) = match self.st(0) {
                    Some(a) => num::compare(a, num::ZERO, true),
                    None => (Compared::Unordered, fsw::IE | fsw::SF),
                };
                self.state.x87.fsw &= !CONDITION;
                if !self.raise(flags) || flags & (fsw::IE | fsw::DE) == 0 {
                    self.state.x87.fsw |= condition_bits(relation);
                }
            }
            X::Examine => {
                let v = self.state.x87.regs[self.st_physical(0)];
                let c = if self.is_empty(0) {
                    fsw::C3 | fsw::C0
                } else {
                    match num::classify(v) {
                        Class::Unsupported => 0,
                        Class::QuietNan | Class::SignalingNan => fsw::C0,
                        Class::Normal => fsw::C2,
                        Class::Infinity => fsw::C2 | fsw::C0,
                        Class::Zero => fsw::C3,
                        Class::Denormal => fsw::C3 | fsw::C2,
                    }
                };
                let sign = if num::negative(v) { fsw::C1 } else { 0 };
                let x87 = &mut self.state.x87;
                x87.fsw = (x87.fsw & !CONDITION) | c | sign;
            }
            X::ChangeSign | X::Abs => {
                let Some(v) = self.st(0) else {
                    if self.underflow() {
                        self.set_st(0, INDEFINITE);
                    }
                    return Ok(());
                };
                self.state.x87.fsw &= !fsw::C1;
                self.set_st(
                    0,
                    if op == X::Abs {
                        num::abs(v)
                    } else {
                        num::negate(v)
                    },
                );
            }
            X::Sqrt => self.unary(num::sqrt),
            X::RoundToInteger => self.unary(num::round_to_integer),
            X::Scale => {
                let (Some(a), Some(b)) = (self.st(0), self.st(1)) else {
                    if self.underflow() {
                        self.set_st(0, INDEFINITE);
                    }
                    return Ok(());
                };
                let out = num::scale(a, b, self.state.x87.fcw);
                if self.raise_outcome(&out) {
                    self.set_st(0, out.value);
                }
            }
            X::Extract => {
                let Some(v) = self.st(0) else {
                    if self.underflow() {
                        self.set_st(0, INDEFINITE);
                        self.state.x87.top = (self.state.x87.top + 7) & 7;
                        self.set_st(0, INDEFINITE);
                    }
                    return Ok(());
                };
                let (exponent, significand) = num::extract(v);
                if self.overflows_with_two_results() {
                    return Ok(());
                }
                if self.raise_outcome(&exponent) {
                    self.set_st(0, exponent.value);
                    self.fpush(significand);
                }
            }
            X::Remainder { nearest } => {
                let (Some(a), Some(b)) = (self.st(0), self.st(1)) else {
                    self.state.x87.fsw &= !fsw::C2;
                    if self.underflow() {
                        self.set_st(0, INDEFINITE);
                    }
                    return Ok(());
                };
                let (out, quotient, partial) = num::partial_remainder(a, b, nearest);
                if out.flags & fsw::IE != 0 || num::is_nan(out.value) {
                    // No quotient: C0 and C3 stay as they were, C1 and C2
                    // clear.
                    self.state.x87.fsw &= !(fsw::C1 | fsw::C2);
                    if !self.raise(out.flags) {
                        self.set_st(0, out.value);
                    }
                    return Ok(());
                }
                self.state.x87.fsw &= !CONDITION;
                if self.raise_outcome(&out) {
                    self.state.x87.fsw &= !fsw::C1;
                    self.set_st(0, out.value);
                    let q = u16::from(quotient);
                    let mut c = if partial { fsw::C2 } else { 0 };
                    if !partial {
                        if q & 4 != 0 {
                            c |= fsw::C0;
                        }
                        if q & 2 != 0 {
                            c |= fsw::C3;
                        }
                        if q & 1 != 0 {
                            c |= fsw::C1;
                        }
                    }
                    self.state.x87.fsw |= c;
                }
            }
            X::Transcendental(f) => self.transcendental(f)?,
            X::SinCos => {
                let Some(x) = self.st(0) else {
                    if self.underflow() {
                        self.set_st(0, INDEFINITE);
                        self.fpush(INDEFINITE);
                    }
                    return Ok(());
                };
                if out_of_range(x) {
                    self.state.x87.fsw |= fsw::C2;
                    return Ok(());
                }
                self.state.x87.fsw &= !(fsw::C2 | fsw::C1);
                if self.overflows_with_two_results() {
                    return Ok(());
                }
                let fcw = self.state.x87.fcw;
                let sin = num::transcendental(Transcendental::Sin, x, 0, fcw);
                let cos = num::transcendental(Transcendental::Cos, x, 0, fcw);
                if self.raise_outcome(&sin) && self.raise_outcome(&cos) {
                    self.set_st(0, sin.value);
                    self.fpush(cos.value);
                }
            }
            X::DecrementTop => {
                self.state.x87.fsw &= !fsw::C1;
                self.state.x87.top = (self.state.x87.top + 7) & 7;
            }
            X::IncrementTop => {
                self.state.x87.fsw &= !fsw::C1;
                self.state.x87.top = (self.state.x87.top + 1) & 7;
            }
            X::Free { pop } => {
                let n = match dst {
                    Operand::St(n) => n,
                    _ => 0,
                };
                let p = self.st_physical(n);
                self.state.x87.used &= !(1 << p);
                self.state.x87.fsw &= !fsw::C1;
                if pop {
                    self.fpop();
                }
            }
            X::Nop => {}
            X::Init => self.initialize_x87(),
            X::ClearExceptions => {
                self.state.x87.fsw &= !(fsw::EXCEPTIONS | fsw::SF | fsw::ES | fsw::B);
            }
            X::LoadControl => {
                let v = self.read_operand(i, dst)? as u16;
                self.set_control_word(v);
            }
            X::StoreControl => self.write_operand(i, dst, u64::from(self.state.x87.fcw))?,
            X::StoreStatus => {
                let word = self.state.x87.status_word();
                self.write_operand(i, dst, u64::from(word))?;
            }
            X::StoreEnvironment => {
                self.store_environment(i)?;
                // FNSTENV masks every exception afterwards.
                self.state.x87.fcw |= 0x3f;
            }
            X::LoadEnvironment => {
                self.load_environment(i)?;
            }
            X::Save => {
                let at = self.store_environment(i)?;
                let ea = self.effective_address(i);
                for k in 0..8u8 {
                    let v = self.state.x87.regs[self.st_physical(k)];
                    let offset = ea.wrapping_add(at + 10 * u64::from(k)) & mask(i.addr_size);
                    self.write(i.seg, offset, 8, v as u64)?;
                    self.write(
                        i.seg,
                        offset.wrapping_add(8) & mask(i.addr_size),
                        2,
                        (v >> 64) as u64,
                    )?;
                }
                self.initialize_x87();
            }
            X::Restore => {
                let ea = self.effective_address(i);
                let at = self.environment_size(i);
                let mut regs = [0u128; 8];
                for (k, r) in regs.iter_mut().enumerate() {
                    let offset = ea.wrapping_add(at + 10 * k as u64) & mask(i.addr_size);
                    let low = self.read(i.seg, offset, 8)?;
                    let high = self.read(i.seg, offset.wrapping_add(8) & mask(i.addr_size), 2)?;
                    *r = u128::from(low) | (u128::from(high) << 64);
                }
                self.load_environment(i)?;
                for (k, v) in regs.into_iter().enumerate() {
                    let p = self.st_physical(k as u8);
                    self.state.x87.regs[p] = v;
                }
            }
            X::ConditionalMove => {
                let Operand::St(n) = src else {
                    return Err(Fault::UD);
                };
                match (self.st(0), self.st(n)) {
                    (Some(_), Some(v)) => {
                        if self.condition(i.cond) {
                            self.set_st(0, v);
                        }
                    }
                    _ => {
                        if self.underflow() {
                            self.set_st(0, INDEFINITE);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// For the instructions that replace ST(0) and push a second result
    /// (FXTRACT, FSINCOS, FPTAN): when the stack is full, a stack overflow
    /// whose masked response makes both results the indefinite. True when
    /// that happened.
    fn overflows_with_two_results(&mut self) -> bool {
        if self.is_empty(7) {
            return false;
        }
        self.state.x87.fsw |= fsw::C1;
        if !self.raise(fsw::IE | fsw::SF) {
            self.set_st(0, INDEFINITE);
            self.state.x87.top = (self.state.x87.top + 7) & 7;
            self.set_st(0, INDEFINITE);
        }
        true
    }

    /// FNINIT: the control, status and tag words as at FNINIT, the
    /// registers' contents kept.
    fn initialize_x87(&mut self) {
        let regs = self.state.x87.regs;
        self.state.x87 = X87State {
            regs,
            ..X87State::INIT
        };
    }

    /// A one-operand instruction on ST(0).
    fn unary(&mut self, f: impl Fn(u128, u16) -> Outcome) {
        let Some(v) = self.st(0) else {
            if self.underflow() {
                self.set_st(0, INDEFINITE);
            }
            return;
        };
        let out = f(v, self.state.x87.fcw);
        if self.raise_outcome(&out) {
            self.set_st(0, out.value);
        }
    }

    fn transcendental(&mut self, f: Transcendental) -> Result<(), Fault> {
        let fcw = self.state.x87.fcw;
        let two = matches!(
            f,
            Transcendental::YLog2X | Transcendental::YLog2XPlusOne | Transcendental::Atan
        );
        let (Some(x), y) = (self.st(0), self.st(1)) else {
            if self.underflow() {
                self.set_st(0, INDEFINITE);
            }
            return Ok(());
        };
        if two {
            let Some(y) = y else {
                if self.underflow() {
                    self.set_st(1, INDEFINITE);
                    self.fpop();
                }
                return Ok(());
            };
            // FPATAN: ST(1) = atan(ST(1) / ST(0)); FYL2X(P1): ST(1) × log2(…).
            let out = num::transcendental(f, x, y, fcw);
            if self.raise_outcome(&out) {
                self.set_st(1, out.value);
                self.fpop();
            }
            return Ok(());
        }
        let trig = matches!(
            f,
            Transcendental::Sin | Transcendental::Cos | Transcendental::Tan
        );
        if trig {
            if out_of_range(x) {
                self.state.x87.fsw |= fsw::C2;
                return Ok(());
            }
            self.state.x87.fsw &= !fsw::C2;
        }
        let out = num::transcendental(f, x, 0, fcw);
        if f == Transcendental::Tan && self.overflows_with_two_results() {
            return Ok(());
        }
        if self.raise_outcome(&out) {
            self.set_st(0, out.value);
            if f == Transcendental::Tan {
                self.fpush(num::ONE);
            }
        }
        Ok(())
    }
}

/// Whether a trigonometric operand is beyond ±2^63, where FSIN and friends
/// leave it alone and set C2.
fn out_of_range(x: u128) -> bool {
    matches!(num::classify(x), Class::Normal | Class::Denormal) && num::exponent(x) >= 0x3fff + 63
}
