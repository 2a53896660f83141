//! The interpreter: what each [`Op`] does to the CPU.

use crate::cpu::{Cpu, Fault, vector};
use crate::decode::{Insn, NO_REG, Op, Operand, RIP_REG, prefix};
use crate::flags::{self, Shift, mask, sign_extend};
use crate::mmu::Access;
use crate::state::flags::{AF, CF, DF, IF, OF, PF, SF, STATUS, ZF};
use crate::state::{SegReg, cr0, gpr};
use crate::system::InterruptKind;

/// How many iterations of a REP string instruction run before the CPU looks
/// at interrupts again (the instruction restarts where it stopped).
const REP_CHUNK: u64 = 4096;

type Flow = Result<(), Fault>;

impl Cpu {
    /// The effective address (offset in the segment) of the memory operand.
    #[inline]
    pub(crate) fn effective_address(&self, i: &Insn) -> u64 {
        let mut ea = i.disp;
        if i.base == RIP_REG {
            ea = ea.wrapping_add(self.next_ip);
        } else if i.base != NO_REG {
            ea = ea.wrapping_add(self.state.gpr[usize::from(i.base)]);
        }
        if i.index != NO_REG {
            ea = ea.wrapping_add(
                self.state.gpr[usize::from(i.index)].wrapping_mul(u64::from(i.scale)),
            );
        }
        ea & mask(i.addr_size)
    }

    pub(crate) fn read_operand(&mut self, i: &Insn, o: Operand) -> Result<u64, Fault> {
        Ok(match o {
            Operand::Gpr { reg, size } => self.gpr(usize::from(reg), size),
            Operand::HighByte(reg) => (self.state.gpr[usize::from(reg)] >> 8) & 0xff,
            Operand::Seg(s) => u64::from(self.state.seg(s).selector),
            Operand::Mem(size) => {
                let ea = self.effective_address(i);
                self.read(i.seg, ea, size)?
            }
            Operand::Imm(_) => i.imm,
            Operand::Imm2(_) => i.imm2,
            Operand::None
            | Operand::Control(_)
            | Operand::Debug(_)
            | Operand::Xmm(_)
            | Operand::St(_)
            | Operand::Mmx(_) => {
                return Err(Fault::UD);
            }
        })
    }

    pub(crate) fn write_operand(&mut self, i: &Insn, o: Operand, value: u64) -> Flow {
        match o {
            Operand::Gpr { reg, size } => self.set_gpr(usize::from(reg), size, value),
            Operand::HighByte(reg) => {
                let r = &mut self.state.gpr[usize::from(reg)];
                *r = (*r & !0xff00) | ((value & 0xff) << 8);
            }
            Operand::Seg(SegReg::Cs) => return Err(Fault::UD),
            Operand::Seg(s) => {
                self.load_segment(s, value as u16)?;
                // Loading SS holds interrupts and traps off for one
                // instruction (so SS:SP can be set as a pair).
                if s == SegReg::Ss {
                    self.shadow_next = true;
                }
            }
            Operand::Mem(size) => {
                let ea = self.effective_address(i);
                self.write(i.seg, ea, size, value)?;
            }
            Operand::Imm(_)
            | Operand::Imm2(_)
            | Operand::None
            | Operand::Control(_)
            | Operand::Debug(_)
            | Operand::Xmm(_)
            | Operand::St(_)
            | Operand::Mmx(_) => return Err(Fault::UD),
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn set_status(&mut self, new: u64, affected: u64) {
        self.state.rflags = (self.state.rflags & !affected) | (new & affected);
    }

    #[inline]
    fn flag(&self, f: u64) -> bool {
        self.state.rflags & f != 0
    }

    /// Whether condition `cc` (encoding order: O, NO, B, AE, E, NE, BE, A, S,
    /// NS, P, NP, L, GE, LE, G) holds.
    pub(crate) fn condition(&self, cc: u8) -> bool {
        let f = |bit| self.flag(bit);
        let holds = match cc >> 1 {
            0 => f(OF),
            1 => f(CF),
            2 => f(ZF),
            3 => f(CF) || f(ZF),
            4 => f(SF),
            5 => f(PF),
            6 => f(SF) != f(OF),
            _ => f(ZF) || f(SF) != f(OF),
        };
        holds != (cc & 1 != 0)
    }

    /// A near branch to `target`, cut to the operand size.
    fn jump_near(&mut self, target: u64, size: u8) {
        self.next_ip = target & mask(size);
    }

    /// The target of a relative branch.
    fn relative_target(&self, i: &Insn) -> u64 {
        self.next_ip.wrapping_add(i.imm)
    }

    /// Executes one instruction; `self.next_ip` is already past it.
    pub(crate) fn execute(&mut self, i: &Insn) -> Flow {
        if (i.prefixes & prefix::LOCK != 0 || i.op == Op::Xchg)
            && let Some(result) = self.locked(i)
        {
            return result;
        }
        let size = i.size;
        let [dst, src, third] = i.operands;
        match i.op {
            Op::Invalid => return Err(Fault::UD),
            Op::TooLong => return Err(Fault::gp(0)),
            Op::Add
            | Op::Or
            | Op::Adc
            | Op::Sbb
            | Op::And
            | Op::Sub
            | Op::Xor
            | Op::Cmp
            | Op::Test => {
                let a = self.read_operand(i, dst)?;
                let b = self.read_operand(i, src)?;
                let (r, f) = binary(i.op, a, b, self.flag(CF), size);
                if !matches!(i.op, Op::Cmp | Op::Test) {
                    self.write_operand(i, dst, r)?;
                }
                self.set_status(f, STATUS);
            }
            Op::Inc | Op::Dec => {
                let a = self.read_operand(i, dst)?;
                let (r, f) = if i.op == Op::Inc {
                    flags::add(a, 1, false, size)
                } else {
                    flags::sub(a, 1, false, size)
                };
                self.write_operand(i, dst, r)?;
                self.set_status(f, STATUS & !CF);
            }
            Op::Neg => {
                let a = self.read_operand(i, dst)?;
                let (r, f) = flags::sub(0, a, false, size);
                self.write_operand(i, dst, r)?;
                self.set_status(f, STATUS);
            }
            Op::Not => {
                let a = self.read_operand(i, dst)?;
                self.write_operand(i, dst, !a)?;
            }
            Op::Mul | Op::Imul1 => {
                let b = self.read_operand(i, dst)?;
                let a = self.gpr(gpr::AX, size);
                let (lo, hi, f) = if i.op == Op::Mul {
                    flags::mul(a, b, size)
                } else {
                    flags::imul(a, b, size)
                };
                if size == 1 {
                    self.set_gpr(gpr::AX, 2, lo | (hi << 8));
                } else {
                    self.set_gpr(gpr::AX, size, lo);
                    self.set_gpr(gpr::DX, size, hi);
                }
                self.set_status(f, STATUS);
            }
            Op::Imul => {
                let (a, b) = if third == Operand::None {
                    (self.read_operand(i, dst)?, self.read_operand(i, src)?)
                } else {
                    (self.read_operand(i, src)?, self.read_operand(i, third)?)
                };
                let (lo, _, f) = flags::imul(a, b, size);
                self.write_operand(i, dst, lo)?;
                self.set_status(f, STATUS);
            }
            Op::Div | Op::Idiv => {
                let divisor = self.read_operand(i, dst)?;
                let (hi, lo) = if size == 1 {
                    let ax = self.gpr(gpr::AX, 2);
                    (ax >> 8, ax & 0xff)
                } else {
                    (self.gpr(gpr::DX, size), self.gpr(gpr::AX, size))
                };
                let result = if i.op == Op::Div {
                    flags::div(hi, lo, divisor, size)
                } else {
                    flags::idiv(hi, lo, divisor, size)
                };
                let (q, r) = result.ok_or(Fault::DE)?;
                if size == 1 {
                    self.set_gpr(gpr::AX, 2, q | (r << 8));
                } else {
                    self.set_gpr(gpr::AX, size, q);
                    self.set_gpr(gpr::DX, size, r);
                }
            }
            // MOVZX: the source operand reads zero-extended already.
            Op::Mov | Op::Movzx => {
                let v = self.read_operand(i, src)?;
                self.write_operand(i, dst, v)?;
            }
            Op::Movsx => {
                let v = self.read_operand(i, src)?;
                let from = operand_size(src);
                self.write_operand(i, dst, sign_extend(v, from))?;
            }
            Op::Xchg => {
                let a = self.read_operand(i, dst)?;
                let b = self.read_operand(i, src)?;
                self.write_operand(i, dst, b)?;
                self.write_operand(i, src, a)?;
            }
            Op::Lea => {
                let ea = self.effective_address(i);
                self.write_operand(i, dst, ea)?;
            }
            Op::Push => {
                let v = self.read_operand(i, dst)?;
                self.push(v, size)?;
            }
            Op::Pop => {
                let sp = self.state.gpr[gpr::SP];
                let v = self.pop(size)?;
                if let Err(fault) = self.write_operand(i, dst, v) {
                    self.state.gpr[gpr::SP] = sp;
                    return Err(fault);
                }
            }
            Op::Pusha => {
                let sp = self.gpr(gpr::SP, size);
                for reg in [gpr::AX, gpr::CX, gpr::DX, gpr::BX] {
                    self.push(self.gpr(reg, size), size)?;
                }
                self.push(sp, size)?;
                for reg in [gpr::BP, gpr::SI, gpr::DI] {
                    self.push(self.gpr(reg, size), size)?;
                }
            }
            Op::Popa => {
                for reg in [gpr::DI, gpr::SI, gpr::BP] {
                    let v = self.pop(size)?;
                    self.set_gpr(reg, size, v);
                }
                self.pop(size)?;
                for reg in [gpr::BX, gpr::DX, gpr::CX, gpr::AX] {
                    let v = self.pop(size)?;
                    self.set_gpr(reg, size, v);
                }
            }
            Op::Pushf => {
                let image = self.state.rflags
                    & mask(size)
                    & !(crate::state::flags::RF | crate::state::flags::VM);
                self.push(image, size)?;
            }
            Op::Popf => {
                if self.v86() && (self.state.rflags >> 12) & 3 != 3 {
                    return Err(Fault::gp(0));
                }
                let v = self.pop(size)?;
                let writable = mask(size) & !(crate::state::flags::VM | crate::state::flags::RF);
                self.set_flags_at(v, writable, self.cpl());
            }
            Op::Sahf => {
                let ah = (self.state.gpr[gpr::AX] >> 8) & 0xff;
                self.set_status(ah, SF | ZF | AF | PF | CF);
            }
            Op::Lahf => {
                let image = (self.state.rflags & (SF | ZF | AF | PF | CF)) | 2;
                let ax = &mut self.state.gpr[gpr::AX];
                *ax = (*ax & !0xff00) | (image << 8);
            }
            Op::Cbw => {
                let half = size / 2;
                let v = sign_extend(self.gpr(gpr::AX, half), half);
                self.set_gpr(gpr::AX, size, v);
            }
            Op::Cwd => {
                let negative = self.gpr(gpr::AX, size) & flags::sign(size) != 0;
                self.set_gpr(gpr::DX, size, if negative { u64::MAX } else { 0 });
            }
            Op::Rol | Op::Ror | Op::Rcl | Op::Rcr | Op::Shl | Op::Shr | Op::Sar => {
                let a = self.read_operand(i, dst)?;
                let count_mask = if size == 8 { 0x3f } else { 0x1f };
                let count = (self.read_operand(i, src)? & count_mask) as u32;
                let kind = match i.op {
                    Op::Rol => Shift::Rol,
                    Op::Ror => Shift::Ror,
                    Op::Rcl => Shift::Rcl,
                    Op::Rcr => Shift::Rcr,
                    Op::Shl => Shift::Shl,
                    Op::Shr => Shift::Shr,
                    _ => Shift::Sar,
                };
                let overflow = self.model().shift_overflow();
                match flags::shift(kind, a, count, self.state.rflags, size, overflow) {
                    Some((r, mut f)) => {
                        // Intel's parts leave OF alone when ROL or ROR of a
                        // register take a count above one from an immediate.
                        let immediate = matches!(src, Operand::Imm(_));
                        let register = !matches!(dst, Operand::Mem(_));
                        if overflow == flags::ShiftOverflow::FirstStep
                            && immediate
                            && register
                            && count > 1
                            && matches!(kind, Shift::Rol | Shift::Ror)
                        {
                            f = (f & !OF) | (self.state.rflags & OF);
                        }
                        self.write_operand(i, dst, r)?;
                        self.set_status(f, STATUS);
                    }
                    // A 32-bit register is written (zero-extended) even by a
                    // zero count.
                    None if size == 4 => self.write_operand(i, dst, a)?,
                    None => {}
                }
            }
            Op::Jcc => {
                if self.condition(i.cond) {
                    self.jump_near(self.relative_target(i), size);
                }
            }
            Op::Jmp => {
                let target = match dst {
                    Operand::Imm(_) => self.relative_target(i),
                    o => self.read_operand(i, o)?,
                };
                self.jump_near(target, size);
            }
            Op::Call => {
                let target = match dst {
                    Operand::Imm(_) => self.relative_target(i),
                    o => self.read_operand(i, o)?,
                };
                self.push(self.next_ip, size)?;
                self.jump_near(target, size);
            }
            Op::JmpFar | Op::CallFar => {
                let (offset, selector) = self.far_pointer(i, dst)?;
                self.far_transfer(selector, offset, i.op == Op::CallFar, size)?;
            }
            Op::Ret => {
                let target = self.pop(size)?;
                let extra = i.imm & 0xffff;
                self.release_stack(extra);
                self.jump_near(target, size);
            }
            Op::RetFar => self.far_return(size, i.imm & 0xffff)?,
            Op::Iret => self.interrupt_return(size)?,
            Op::Int => {
                // INT n in virtual-8086 mode needs IOPL 3 (without VME).
                if self.v86() && (self.state.rflags >> 12) & 3 != 3 {
                    return Err(Fault::gp(0));
                }
                self.interrupt(i.imm as u8, self.next_ip, None, InterruptKind::Software)?;
            }
            Op::Int3 => self.interrupt(vector::BP, self.next_ip, None, InterruptKind::Software)?,
            Op::Into => {
                if self.flag(OF) {
                    self.interrupt(vector::OF, self.next_ip, None, InterruptKind::Software)?;
                }
            }
            Op::Loop | Op::Loope | Op::Loopne => {
                let count = self.gpr(gpr::CX, i.addr_size).wrapping_sub(1) & mask(i.addr_size);
                self.set_gpr(gpr::CX, i.addr_size, count);
                let taken = count != 0
                    && match i.op {
                        Op::Loope => self.flag(ZF),
                        Op::Loopne => !self.flag(ZF),
                        _ => true,
                    };
                if taken {
                    self.jump_near(self.relative_target(i), size);
                }
            }
            Op::Jcxz => {
                if self.gpr(gpr::CX, i.addr_size) == 0 {
                    self.jump_near(self.relative_target(i), size);
                }
            }
            Op::Ins | Op::Outs => {
                self.io_allowed(self.gpr(gpr::DX, 2) as u16, size)?;
                self.string(i)?
            }
            Op::Movs | Op::Cmps | Op::Stos | Op::Lods | Op::Scas => self.string(i)?,
            Op::In => {
                let port = self.read_operand(i, src)? as u16;
                let len = operand_size(dst);
                self.io_allowed(port, len)?;
                let value = self.bus().pio_read(emu_core::PioPort(port), len);
                self.write_operand(i, dst, u64::from(value))?;
            }
            Op::Out => {
                let port = self.read_operand(i, dst)? as u16;
                let len = operand_size(src);
                self.io_allowed(port, len)?;
                let value = self.read_operand(i, src)?;
                self.bus()
                    .pio_write(emu_core::PioPort(port), len, value as u32);
                self.note_device_stop();
            }
            Op::Xlat => {
                let al = self.state.gpr[gpr::AX] & 0xff;
                let ea = self.gpr(gpr::BX, i.addr_size).wrapping_add(al) & mask(i.addr_size);
                let v = self.read(i.seg, ea, 1)?;
                self.set_gpr(gpr::AX, 1, v);
            }
            Op::Daa | Op::Das => self.decimal_adjust(i.op == Op::Das),
            Op::Aaa | Op::Aas => self.ascii_adjust(i.op == Op::Aas),
            Op::Aam => {
                let base = i.imm & 0xff;
                if base == 0 {
                    return Err(Fault::DE);
                }
                let al = self.state.gpr[gpr::AX] & 0xff;
                let (q, r) = (al / base, al % base);
                self.set_gpr(gpr::AX, 2, (q << 8) | r);
                self.set_status(flags::szp(r, 1), STATUS);
            }
            Op::Aad => {
                let ax = self.state.gpr[gpr::AX];
                let (al, ah) = (ax & 0xff, (ax >> 8) & 0xff);
                // The 286 computes AL + AH × base as an addition, flags and all.
                let (r, f) = flags::add(al, (ah * (i.imm & 0xff)) & 0xff, false, 1);
                self.set_gpr(gpr::AX, 2, r);
                self.set_status(f, STATUS);
            }
            Op::Salc => {
                let v = if self.flag(CF) { 0xff } else { 0 };
                self.set_gpr(gpr::AX, 1, v);
            }
            Op::Clc => self.state.rflags &= !CF,
            Op::Stc => self.state.rflags |= CF,
            Op::Cmc => self.state.rflags ^= CF,
            Op::Cli | Op::Sti => {
                let iopl = ((self.state.rflags >> 12) & 3) as u8;
                if !self.real_mode() && self.cpl() > iopl {
                    return Err(Fault::gp(0));
                }
                if i.op == Op::Cli {
                    self.state.rflags &= !IF;
                } else {
                    // STI enables interrupts after the next instruction.
                    if self.state.rflags & IF == 0 {
                        self.shadow_next = true;
                    }
                    self.state.rflags |= IF;
                }
            }
            Op::Cld => self.state.rflags &= !DF,
            Op::Std => self.state.rflags |= DF,
            Op::Hlt => {
                if self.cpl() != 0 {
                    return Err(Fault::gp(0));
                }
                self.halt();
            }
            Op::Nop => {}
            // A CPU spinning on a lock another CPU holds: when CPUs take
            // turns on one host thread, its turn ends here so the holder
            // can run (QEMU's round-robin TCG does the same).
            Op::Pause => {
                if self.yield_on_pause {
                    self.yielded = true;
                    self.device_stop = true;
                }
            }
            Op::Wait => {
                if self.state.cr0 & (cr0::MP | cr0::TS) == cr0::MP | cr0::TS {
                    return Err(Fault {
                        vector: vector::NM,
                        error: None,
                    });
                }
                if self.model().has_fpu {
                    self.pending_x87_error()?;
                }
            }
            Op::X87(op) => self.x87(i, op)?,
            Op::EscNoFpu => {
                if self.state.cr0 & (cr0::EM | cr0::TS) != 0 {
                    return Err(Fault {
                        vector: vector::NM,
                        error: None,
                    });
                }
                // With no coprocessor to take it, the operand is still
                // checked against its segment's limit.
                if let Operand::Mem(len) = dst {
                    let ea = self.effective_address(i);
                    self.linear(i.seg, ea, len.max(1), Access::Read)?;
                }
            }
            Op::LoadFarPointer => {
                let (offset, selector) = self.far_pointer(i, src)?;
                self.load_segment(i.seg2, selector)?;
                self.write_operand(i, dst, offset)?;
            }
            Op::Enter => self.enter(i)?,
            Op::Leave => {
                let width = self.stack_size();
                let bp = self.gpr(gpr::BP, width);
                let sp = self.state.gpr[gpr::SP];
                self.set_gpr(gpr::SP, width, bp);
                match self.pop(size) {
                    Ok(v) => self.set_gpr(gpr::BP, size, v),
                    Err(fault) => {
                        self.state.gpr[gpr::SP] = sp;
                        return Err(fault);
                    }
                }
            }
            Op::Setcc => {
                let v = u64::from(self.condition(i.cond));
                self.write_operand(i, dst, v)?;
            }
            Op::Cmovcc => {
                // The source is read (and may fault) whatever the condition.
                let v = self.read_operand(i, src)?;
                if self.condition(i.cond) {
                    self.write_operand(i, dst, v)?;
                } else if size == 4 {
                    // A 32-bit destination is written (zero-extended) anyway.
                    let old = self.read_operand(i, dst)?;
                    self.write_operand(i, dst, old)?;
                }
            }
            Op::Bt | Op::Bts | Op::Btr | Op::Btc => self.bit_test(i)?,
            Op::Bsf | Op::Bsr | Op::Tzcnt | Op::Lzcnt | Op::Popcnt => self.bit_scan(i)?,
            Op::Andn
            | Op::Bextr
            | Op::Blsi
            | Op::Blsmsk
            | Op::Blsr
            | Op::Bzhi
            | Op::Mulx
            | Op::Pdep
            | Op::Pext
            | Op::Rorx
            | Op::Sarx
            | Op::Shlx
            | Op::Shrx => self.bmi(i)?,
            Op::Shld | Op::Shrd => self.double_shift(i)?,
            Op::Bswap => {
                let v = self.read_operand(i, dst)?;
                let r = match size {
                    8 => v.swap_bytes(),
                    4 => u64::from((v as u32).swap_bytes()),
                    // Undefined for 16 bits; current parts clear the word.
                    _ => 0,
                };
                self.write_operand(i, dst, r)?;
            }
            Op::Xadd => {
                let a = self.read_operand(i, dst)?;
                let b = self.read_operand(i, src)?;
                let (r, f) = flags::add(a, b, false, size);
                self.write_operand(i, src, a)?;
                self.write_operand(i, dst, r)?;
                self.set_status(f, STATUS);
            }
            Op::Cmpxchg => {
                let current = self.read_operand(i, dst)?;
                let acc = self.gpr(gpr::AX, size);
                let (_, f) = flags::sub(acc, current, false, size);
                if f & ZF != 0 {
                    let v = self.read_operand(i, src)?;
                    self.write_operand(i, dst, v)?;
                } else {
                    // Memory is written back unchanged (a locked cycle
                    // always writes); a register destination is not.
                    if matches!(dst, Operand::Mem(_)) {
                        self.write_operand(i, dst, current)?;
                    }
                    self.set_gpr(gpr::AX, size, current);
                }
                self.set_status(f, STATUS);
            }
            Op::CmpxchgDouble => self.compare_exchange_double(i)?,
            Op::Lgdt
            | Op::Lidt
            | Op::Sgdt
            | Op::Sidt
            | Op::Lldt
            | Op::Sldt
            | Op::Ltr
            | Op::Str
            | Op::Lmsw
            | Op::Smsw
            | Op::Clts
            | Op::MovCr
            | Op::MovDr
            | Op::Lar
            | Op::Lsl
            | Op::Verr
            | Op::Verw
            | Op::Arpl
            | Op::Invlpg
            | Op::Rdmsr
            | Op::Wrmsr
            | Op::Rdtsc
            | Op::Rdtscp
            | Op::Rdpid
            | Op::Cpuid
            | Op::Swapgs
            | Op::Syscall
            | Op::Sysret
            | Op::Sysenter
            | Op::Sysexit
            | Op::Wbinvd
            | Op::Stac
            | Op::Clac
            | Op::ReadSegmentBase
            | Op::WriteSegmentBase
            | Op::Invpcid
            | Op::Rdpkru
            | Op::Wrpkru => self.system_instruction(i)?,
            Op::Xgetbv | Op::Xsetbv | Op::Xsave | Op::Xrstor => self.xsave_instruction(i)?,
            Op::Simd(op) => self.simd(i, op)?,
            Op::Crc32 => self.crc32(i)?,
            Op::Bound => {
                let index = sign_extend(self.read_operand(i, dst)?, size) as i64;
                let ea = self.effective_address(i);
                let lower = sign_extend(self.read(i.seg, ea, size)?, size) as i64;
                let upper_at = ea.wrapping_add(u64::from(size)) & mask(i.addr_size);
                let upper = sign_extend(self.read(i.seg, upper_at, size)?, size) as i64;
                if index < lower || index > upper {
                    return Err(Fault {
                        vector: vector::BR,
                        error: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Releases `bytes` of stack (RET imm16).
    fn release_stack(&mut self, bytes: u64) {
        let width = self.stack_size();
        let sp = self.gpr(gpr::SP, width).wrapping_add(bytes);
        self.set_gpr(gpr::SP, width, sp);
    }

    /// The offset and selector of a far branch or far-pointer load: the
    /// instruction's immediates, or memory (offset first, then selector).
    fn far_pointer(&mut self, i: &Insn, o: Operand) -> Result<(u64, u16), Fault> {
        match o {
            Operand::Imm(_) => Ok((i.imm, i.imm2 as u16)),
            Operand::Mem(_) => {
                let ea = self.effective_address(i);
                let offset_size = i.size.min(8);
                let offset = self.read(i.seg, ea, offset_size)?;
                let at = ea.wrapping_add(u64::from(offset_size)) & mask(i.addr_size);
                let selector = self.read(i.seg, at, 2)? as u16;
                Ok((offset, selector))
            }
            _ => Err(Fault::UD),
        }
    }

    fn enter(&mut self, i: &Insn) -> Flow {
        let size = i.size;
        let width = self.stack_size();
        let alloc = i.imm & 0xffff;
        let level = i.imm2 & 0x1f;
        let saved_sp = self.state.gpr[gpr::SP];
        let saved_bp = self.state.gpr[gpr::BP];
        let result = (|| {
            self.push(self.gpr(gpr::BP, size), size)?;
            let frame = self.gpr(gpr::SP, width);
            let mut bp = self.gpr(gpr::BP, width);
            for _ in 1..level {
                bp = bp.wrapping_sub(u64::from(size)) & mask(width);
                let v = self.read(SegReg::Ss, bp, size)?;
                self.push(v, size)?;
            }
            if level > 0 {
                self.push(frame, size)?;
            }
            let sp = self.gpr(gpr::SP, width).wrapping_sub(alloc) & mask(width);
            // The new stack top must be writable.
            self.linear(SegReg::Ss, sp, 1, Access::Write)?;
            self.set_gpr(gpr::BP, size, frame);
            self.set_gpr(gpr::SP, width, sp);
            Ok(())
        })();
        if result.is_err() {
            self.state.gpr[gpr::SP] = saved_sp;
            self.state.gpr[gpr::BP] = saved_bp;
        }
        result
    }

    /// DAA and DAS.
    fn decimal_adjust(&mut self, subtract: bool) {
        let old_al = self.state.gpr[gpr::AX] & 0xff;
        let old_cf = self.flag(CF);
        let mut al = old_al;
        let mut f = 0;
        if al & 0xf > 9 || self.flag(AF) {
            if subtract {
                if al < 6 || old_cf {
                    f |= CF;
                }
                al = al.wrapping_sub(6) & 0xff;
            } else {
                if al + 6 > 0xff || old_cf {
                    f |= CF;
                }
                al = (al + 6) & 0xff;
            }
            f |= AF;
        }
        if old_al > 0x99 || old_cf {
            al = if subtract {
                al.wrapping_sub(0x60) & 0xff
            } else {
                (al + 0x60) & 0xff
            };
            f |= CF;
        }
        self.set_gpr(gpr::AX, 1, al);
        let (_, szp_of) = flags::logic(al, 1);
        // OF is undefined; the 286 leaves what the last addition gives.
        let of = if subtract {
            (old_al & !al) & 0x80 != 0
        } else {
            (!old_al & al) & 0x80 != 0
        };
        self.set_status(szp_of | f | if of { OF } else { 0 }, STATUS);
    }

    /// AAA and AAS.
    fn ascii_adjust(&mut self, subtract: bool) {
        let ax = self.state.gpr[gpr::AX] & 0xffff;
        let adjust = ax & 0xf > 9 || self.flag(AF);
        let mut new = ax;
        let mut f = 0;
        if adjust {
            new = if subtract {
                // The 286 subtracts 6 from all of AX (AL's borrow reaches
                // AH), then 1 from AH.
                ax.wrapping_sub(6).wrapping_sub(0x100) & 0xffff
            } else {
                ax.wrapping_add(0x106) & 0xffff
            };
            f |= AF | CF;
        }
        new &= 0xff0f;
        self.set_gpr(gpr::AX, 2, new);
        let (_, szp) = flags::logic(new & 0xff, 1);
        self.set_status(szp | f, STATUS);
    }

    /// One string instruction, with its REP prefix.
    fn string(&mut self, i: &Insn) -> Flow {
        let asz = i.addr_size;
        let rep = i.prefixes & (prefix::REP | prefix::REPNE) != 0;
        let mut done = 0;
        loop {
            if rep && self.gpr(gpr::CX, asz) == 0 {
                return Ok(());
            }
            let saved = (self.state.gpr[gpr::SI], self.state.gpr[gpr::DI]);
            if let Err((fault, index)) = self.string_iteration(i) {
                if self.model().generation == crate::model::Generation::I286 {
                    // The 286's microcode has already stepped the index of
                    // the faulting access, and the count, when the fault
                    // is recognised.
                    self.step_index(index, i);
                    // REP INS even counts twice; CMPS, whose first access
                    // is ES:DI, has not counted yet when that one faults.
                    let counted = !(i.op == Op::Cmps && index == gpr::DI);
                    if rep && counted {
                        let steps = if i.op == Op::Ins { 2 } else { 1 };
                        let count = self.gpr(gpr::CX, asz).wrapping_sub(steps) & mask(asz);
                        self.set_gpr(gpr::CX, asz, count);
                    }
                } else {
                    (self.state.gpr[gpr::SI], self.state.gpr[gpr::DI]) = saved;
                }
                return Err(fault);
            }
            if !rep {
                return Ok(());
            }
            let count = self.gpr(gpr::CX, asz).wrapping_sub(1) & mask(asz);
            self.set_gpr(gpr::CX, asz, count);
            if matches!(i.op, Op::Cmps | Op::Scas) {
                let zf = self.flag(ZF);
                let repne = i.prefixes & prefix::REPNE != 0;
                if zf == repne {
                    return Ok(());
                }
            }
            if count == 0 {
                return Ok(());
            }
            done += 1;
            if done == REP_CHUNK {
                // Come back to this instruction: interrupts get their turn.
                self.next_ip = self.state.rip;
                return Ok(());
            }
        }
    }

    /// Steps SI or DI by the element size, in the direction DF says.
    fn step_index(&mut self, index: usize, i: &Insn) {
        let step = if self.flag(DF) {
            u64::from(i.size).wrapping_neg()
        } else {
            u64::from(i.size)
        };
        let v = self.gpr(index, i.addr_size).wrapping_add(step) & mask(i.addr_size);
        self.set_gpr(index, i.addr_size, v);
    }

    /// One element of a string instruction; each index register steps once
    /// its access is done. A fault names the index register of the access
    /// that raised it.
    fn string_iteration(&mut self, i: &Insn) -> Result<(), (Fault, usize)> {
        let size = i.size;
        let asz = i.addr_size;
        let from_si = |cpu: &mut Cpu| -> Result<u64, (Fault, usize)> {
            let si = cpu.gpr(gpr::SI, asz);
            let v = cpu.read(i.seg, si, size).map_err(|f| (f, gpr::SI))?;
            cpu.step_index(gpr::SI, i);
            Ok(v)
        };
        let di = self.gpr(gpr::DI, asz);
        let at_di = |f| (f, gpr::DI);
        match i.op {
            Op::Movs => {
                let v = from_si(self)?;
                self.write(SegReg::Es, di, size, v).map_err(at_di)?;
            }
            Op::Cmps => {
                // ES:DI is read first, as the 286 does (its faults show it).
                let b = self.read(SegReg::Es, di, size).map_err(at_di)?;
                self.step_index(gpr::DI, i);
                let a = from_si(self)?;
                let (_, f) = flags::sub(a, b, false, size);
                self.set_status(f, STATUS);
                return Ok(());
            }
            Op::Stos => {
                let v = self.gpr(gpr::AX, size);
                self.write(SegReg::Es, di, size, v).map_err(at_di)?;
            }
            Op::Lods => {
                let v = from_si(self)?;
                self.set_gpr(gpr::AX, size, v);
                return Ok(());
            }
            Op::Scas => {
                let b = self.read(SegReg::Es, di, size).map_err(at_di)?;
                let (_, f) = flags::sub(self.gpr(gpr::AX, size), b, false, size);
                self.set_status(f, STATUS);
            }
            Op::Ins => {
                let port = emu_core::PioPort(self.gpr(gpr::DX, 2) as u16);
                // The destination is checked before the port is read.
                self.linear(SegReg::Es, di, size, Access::Write)
                    .map_err(at_di)?;
                let v = self.bus().pio_read(port, size);
                self.write(SegReg::Es, di, size, u64::from(v))
                    .map_err(at_di)?;
            }
            _ => {
                let port = emu_core::PioPort(self.gpr(gpr::DX, 2) as u16);
                let v = from_si(self)?;
                self.bus().pio_write(port, size, v as u32);
                self.note_device_stop();
                return Ok(());
            }
        }
        self.step_index(gpr::DI, i);
        Ok(())
    }
}

/// The two-operand arithmetic and logic operations (ADD … XOR, CMP, TEST)
/// on `a` and `b`: the result and the new status flags.
pub(crate) fn binary(op: Op, a: u64, b: u64, carry: bool, size: u8) -> (u64, u64) {
    match op {
        Op::Add => flags::add(a, b, false, size),
        Op::Adc => flags::add(a, b, carry, size),
        Op::Sub | Op::Cmp => flags::sub(a, b, false, size),
        Op::Sbb => flags::sub(a, b, carry, size),
        Op::And | Op::Test => flags::logic(a & b, size),
        Op::Or => flags::logic(a | b, size),
        _ => flags::logic(a ^ b, size),
    }
}

/// The size of a register or memory operand in bytes.
fn operand_size(o: Operand) -> u8 {
    match o {
        Operand::Gpr { size, .. }
        | Operand::Mem(size)
        | Operand::Imm(size)
        | Operand::Imm2(size) => size,
        Operand::HighByte(_) => 1,
        Operand::Seg(_) => 2,
        Operand::Control(_) | Operand::Debug(_) | Operand::Mmx(_) => 8,
        Operand::Xmm(_) => 16,
        Operand::St(_) => 10,
        Operand::None => 0,
    }
}
