//! Decoding: x86 bytes to [`Insn`], the interpreter's compact form.
//!
//! `iced-x86` does the decoding (prefixes, ModR/M, SIB, every table of every
//! generation); this module turns its `Instruction` into a fixed-size record
//! whose operation ([`Op`]) is what the interpreter dispatches on, with the
//! operands already sorted into registers, one memory operand and immediates.
//! Nothing in the record depends on where the instruction sits: branch targets
//! and RIP-relative addresses are kept relative to the next instruction, so a
//! decoded page serves every segment base and IP that reach the same bytes
//! (real-mode code is often entered as both 0000:7C00 and 07C0:0000).

use iced_x86::{
    ConditionCode, Decoder, DecoderError, DecoderOptions, Instruction, Mnemonic, OpKind, Register,
};

use crate::model::{CpuModel, Features, Generation};
use crate::simd::{SimdOp, simd_op};
use crate::state::SegReg;
use crate::x87::{X87Op, x87_op};

/// What an instruction does. Operand sizes and forms are in the [`Insn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names are the instructions' mnemonics")]
pub enum Op {
    /// Not decodable here, or not implemented by this model: #UD.
    Invalid,
    /// Longer than the model allows (prefixes included): #GP(0).
    TooLong,
    Add,
    Or,
    Adc,
    Sbb,
    And,
    Sub,
    Xor,
    Cmp,
    Test,
    Inc,
    Dec,
    Neg,
    Not,
    /// One-operand multiply (into AX, DX:AX, …).
    Mul,
    /// One-operand signed multiply.
    Imul1,
    /// Two- and three-operand signed multiply (truncating).
    Imul,
    Div,
    Idiv,
    Mov,
    Movzx,
    Movsx,
    Xchg,
    Lea,
    Push,
    Pop,
    Pusha,
    Popa,
    Pushf,
    Popf,
    Sahf,
    Lahf,
    /// CBW / CWDE / CDQE: sign-extend the lower half of the accumulator.
    Cbw,
    /// CWD / CDQ / CQO: sign-extend the accumulator into DX.
    Cwd,
    Rol,
    Ror,
    Rcl,
    Rcr,
    Shl,
    Shr,
    Sar,
    /// Conditional near jump; the condition is [`Insn::cond`].
    Jcc,
    Jmp,
    /// Direct far jump (`imm` offset, `imm2` selector) or through memory.
    JmpFar,
    Call,
    CallFar,
    /// Near return, popping `imm` more bytes.
    Ret,
    /// Far return, popping `imm` more bytes.
    RetFar,
    Iret,
    /// INT imm8.
    Int,
    Int3,
    Into,
    Loop,
    Loope,
    Loopne,
    /// JCXZ / JECXZ / JRCXZ.
    Jcxz,
    Movs,
    Cmps,
    Stos,
    Lods,
    Scas,
    Ins,
    Outs,
    In,
    Out,
    Xlat,
    Daa,
    Das,
    Aaa,
    Aas,
    Aam,
    Aad,
    Salc,
    Clc,
    Stc,
    Cmc,
    Cli,
    Sti,
    Cld,
    Std,
    Hlt,
    Nop,
    /// PAUSE: a spin-wait hint.
    Pause,
    Wait,
    /// LDS, LES, LSS, LFS, LGS: the segment is [`Insn::seg2`].
    LoadFarPointer,
    Enter,
    Leave,
    Bound,
    /// An x87 instruction (D8–DF) on a model without a coprocessor.
    EscNoFpu,
    /// SETcc: the condition is [`Insn::cond`].
    Setcc,
    /// CMOVcc: the condition is [`Insn::cond`].
    Cmovcc,
    Bt,
    Bts,
    Btr,
    Btc,
    Bsf,
    Bsr,
    Tzcnt,
    Lzcnt,
    Popcnt,
    Shld,
    Shrd,
    Bswap,
    Xadd,
    Cmpxchg,
    /// CMPXCHG8B and CMPXCHG16B (the operand size says which).
    CmpxchgDouble,
    Lgdt,
    Lidt,
    Sgdt,
    Sidt,
    Lldt,
    Sldt,
    Ltr,
    Str,
    Lmsw,
    Smsw,
    Clts,
    /// MOV to or from a control register.
    MovCr,
    /// MOV to or from a debug register.
    MovDr,
    Lar,
    Lsl,
    Verr,
    Verw,
    Arpl,
    Invlpg,
    Rdmsr,
    Wrmsr,
    Rdtsc,
    Rdtscp,
    Rdpid,
    Cpuid,
    Swapgs,
    Syscall,
    Sysret,
    Sysenter,
    Sysexit,
    /// Cache and ordering operations with no effect here (WBINVD, INVD,
    /// CLFLUSH, fences, prefetches) at privilege 0.
    Wbinvd,
    Stac,
    Clac,
    /// RDFSBASE / RDGSBASE (the segment is [`Insn::seg2`]).
    ReadSegmentBase,
    /// WRFSBASE / WRGSBASE.
    WriteSegmentBase,
    Invpcid,
    Rdpkru,
    Wrpkru,
    Andn,
    Bextr,
    Blsi,
    Blsmsk,
    Blsr,
    Bzhi,
    Mulx,
    Pdep,
    Pext,
    Rorx,
    Sarx,
    Shlx,
    Shrx,
    Xgetbv,
    Xsetbv,
    /// XSAVE (XSAVE64 with REX.W, [`Insn::size`] 8).
    Xsave,
    Xrstor,
    /// An SSE to SSE4.2 instruction; its lane width is [`Insn::cond`].
    Simd(SimdOp),
    /// An x87 instruction; [`Insn::imm`] holds its 11-bit opcode (for FOP)
    /// and [`Insn::cond`] FCMOV's condition.
    X87(X87Op),
    /// CRC32 (SSE4.2, but an integer instruction).
    Crc32,
}

/// Where an operand lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// No operand.
    None,
    /// A general-purpose register (its low `size` bytes).
    Gpr {
        /// Register number, 0–15.
        reg: u8,
        /// Bytes: 1, 2, 4 or 8.
        size: u8,
    },
    /// AH, CH, DH or BH: bits 8–15 of register `reg` (0–3).
    HighByte(u8),
    /// A segment register.
    Seg(SegReg),
    /// The instruction's memory operand, `size` bytes.
    Mem(u8),
    /// The immediate [`Insn::imm`], `size` bytes (already sign- or
    /// zero-extended as the encoding says).
    Imm(u8),
    /// The second immediate [`Insn::imm2`] (ENTER's nesting level).
    Imm2(u8),
    /// Control register CRn.
    Control(u8),
    /// Debug register DRn.
    Debug(u8),
    /// XMMn.
    Xmm(u8),
    /// The x87 stack register ST(n).
    St(u8),
    /// MMn.
    Mmx(u8),
}

/// No register (for [`Insn::base`] and [`Insn::index`]).
pub const NO_REG: u8 = 0xff;
/// The base register of a RIP-relative operand.
pub const RIP_REG: u8 = 0xfe;

/// Prefix bits of [`Insn::prefixes`].
pub mod prefix {
    /// REP / REPE (F3).
    pub const REP: u8 = 1 << 0;
    /// REPNE (F2).
    pub const REPNE: u8 = 1 << 1;
    /// LOCK (F0).
    pub const LOCK: u8 = 1 << 2;
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// The operation.
    pub op: Op,
    /// Length in bytes, prefixes included.
    pub len: u8,
    /// Operand size in bytes (for string, stack and implicit-operand
    /// instructions the size they move).
    pub size: u8,
    /// Address size in bytes (2, 4 or 8).
    pub addr_size: u8,
    /// [`prefix`] bits.
    pub prefixes: u8,
    /// Condition code of Jcc / SETcc / CMOVcc, in encoding order (0 = O … 15 = G).
    pub cond: u8,
    /// Segment of the memory operand (string sources too), after overrides.
    pub seg: SegReg,
    /// LoadFarPointer's segment register.
    pub seg2: SegReg,
    /// Explicit operands, destination first.
    pub operands: [Operand; 3],
    /// Memory operand base register, [`NO_REG`] or [`RIP_REG`].
    pub base: u8,
    /// Memory operand index register or [`NO_REG`].
    pub index: u8,
    /// Index scale: 1, 2, 4 or 8.
    pub scale: u8,
    /// Displacement (for RIP-relative operands, from the next instruction).
    pub disp: u64,
    /// Immediate; for near branches the displacement from the next instruction;
    /// for direct far branches the offset.
    pub imm: u64,
    /// Second immediate: a direct far branch's selector, ENTER's level.
    pub imm2: u64,
}

impl Insn {
    /// An instruction that raises #UD, `len` bytes long.
    pub fn invalid(len: u8) -> Insn {
        Insn {
            op: Op::Invalid,
            len,
            size: 0,
            addr_size: 2,
            prefixes: 0,
            cond: 0,
            seg: SegReg::Ds,
            seg2: SegReg::Ds,
            operands: [Operand::None; 3],
            base: NO_REG,
            index: NO_REG,
            scale: 1,
            disp: 0,
            imm: 0,
            imm2: 0,
        }
    }

    /// Whether the instruction has a memory operand.
    pub fn has_memory_operand(&self) -> bool {
        self.operands.iter().any(|o| matches!(o, Operand::Mem(_)))
    }
}

/// Why bytes did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the instruction does: fetch more (the fetch that
    /// could not is the fault to raise).
    NeedMoreBytes,
}

/// Bitness of the code segment: 16, 32 or 64.
pub type CodeBits = u32;

/// Decodes the instruction at the start of `bytes` for `model` in code of
/// `bits` (16, 32 or 64). Encodings that are invalid, or that this model does
/// not have, decode to [`Op::Invalid`].
pub fn decode(bytes: &[u8], bits: CodeBits, model: &CpuModel) -> Result<Insn, DecodeError> {
    let mut decoder = Decoder::with_ip(bits, bytes, 0, DecoderOptions::NONE);
    let mut instr = decoder.decode();
    if instr.is_invalid() {
        match decoder.last_error() {
            DecoderError::NoMoreBytes => return Err(DecodeError::NeedMoreBytes),
            // The 286 ignores a LOCK prefix it cannot honour; iced rejects it.
            _ if model.generation == Generation::I286 && has_lock_byte(bytes, bits) => {
                let mut lenient =
                    Decoder::with_ip(bits, bytes, 0, DecoderOptions::NO_INVALID_CHECK);
                instr = lenient.decode();
                if instr.is_invalid() {
                    return Ok(Insn::invalid(instr.len().max(1) as u8));
                }
            }
            _ => return Ok(Insn::invalid(instr.len().max(1) as u8)),
        }
    }
    Ok(convert(&instr, bytes, bits, model))
}

/// The legacy prefix bytes at the start of `bytes`, and the first byte after them.
fn prefix_bytes(bytes: &[u8], bits: CodeBits) -> (&[u8], Option<u8>) {
    let n = bytes
        .iter()
        .take_while(|&&b| {
            matches!(
                b,
                0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3
            ) || (bits == 64 && (0x40..=0x4f).contains(&b))
        })
        .count();
    (&bytes[..n], bytes.get(n).copied())
}

/// Whether these bytes are a VEX, EVEX or XOP prefix on a model that has
/// none: there C4, C5 and 62 with a register ModR/M are the 286's LES, LDS
/// and BOUND forms that raise #UD before their length counts.
fn vex_on_286(bytes: &[u8], bits: CodeBits, model: &CpuModel) -> bool {
    if model.generation != Generation::I286 {
        return false;
    }
    let (prefixes, opcode) = prefix_bytes(bytes, bits);
    let modrm = bytes.get(prefixes.len() + 1).copied().unwrap_or(0);
    matches!(opcode, Some(0xc4 | 0xc5 | 0x62)) && modrm >> 6 == 3
}

fn has_lock_byte(bytes: &[u8], bits: CodeBits) -> bool {
    prefix_bytes(bytes, bits).0.contains(&0xf0)
}

/// Whether the instruction needs a later generation than `model`'s.
fn beyond_model(instr: &Instruction, bytes: &[u8], bits: CodeBits, model: &CpuModel) -> bool {
    if model.generation != Generation::I286 {
        // An optional feature the model does not have.
        return instr
            .cpuid_features()
            .iter()
            .any(|&f| feature_of(f).is_some_and(|needed| !model.features.has(needed)));
    }
    let (prefixes, _) = prefix_bytes(bytes, bits);
    // FS, GS, operand- and address-size prefixes arrived with the 386.
    if prefixes.iter().any(|b| (0x64..=0x67).contains(b)) {
        return true;
    }
    let fs_or_gs = (0..instr.op_count()).any(|i| {
        instr.op_kind(i) == OpKind::Register
            && matches!(instr.op_register(i), Register::FS | Register::GS)
    });
    if fs_or_gs {
        return true;
    }
    instr.cpuid_features().iter().any(|f| {
        use iced_x86::CpuidFeature as F;
        !matches!(
            f,
            F::INTEL8086 | F::INTEL8086_ONLY | F::INTEL186 | F::INTEL286 | F::INTEL286_ONLY
        ) && !is_x87_feature(*f)
    })
}

/// The model feature an instruction's CPUID feature stands for, if models
/// differ in it.
fn feature_of(f: iced_x86::CpuidFeature) -> Option<Features> {
    use iced_x86::CpuidFeature as F;
    Some(match f {
        F::FPU | F::FPU287 | F::FPU387 => Features::FPU,
        F::TSC => Features::TSC,
        F::CX8 => Features::CX8,
        F::SEP => Features::SEP,
        F::CMOV => Features::CMOV,
        F::CLFSH => Features::CLFSH,
        F::MMX => Features::MMX,
        F::FXSR => Features::FXSR,
        F::SSE => Features::SSE,
        F::SSE2 => Features::SSE2,
        F::SSE3 => Features::SSE3,
        F::SSSE3 => Features::SSSE3,
        F::SSE4_1 => Features::SSE4_1,
        F::SSE4_2 => Features::SSE4_2,
        F::CMPXCHG16B => Features::CX16,
        F::POPCNT => Features::POPCNT,
        F::SYSCALL => Features::SYSCALL,
        F::RDTSCP => Features::RDTSCP,
        F::RDPID => Features::RDPID,
        F::SMAP => Features::SMAP,
        F::FSGSBASE => Features::FSGSBASE,
        F::INVPCID => Features::PCID,
        F::XSAVE => Features::XSAVE,
        F::PKU => Features::PKU,
        F::BMI2 => Features::BMI2,
        _ => return None,
    })
}

fn is_x87_feature(f: iced_x86::CpuidFeature) -> bool {
    use iced_x86::CpuidFeature as F;
    matches!(
        f,
        F::FPU | F::FPU287 | F::FPU287XL_ONLY | F::FPU387 | F::FPU387SL_ONLY
    )
}

fn segment_of(reg: Register) -> SegReg {
    match reg {
        Register::ES => SegReg::Es,
        Register::CS => SegReg::Cs,
        Register::SS => SegReg::Ss,
        Register::FS => SegReg::Fs,
        Register::GS => SegReg::Gs,
        _ => SegReg::Ds,
    }
}

fn gpr_number(reg: Register) -> u8 {
    if reg == Register::None {
        NO_REG
    } else if reg == Register::RIP || reg == Register::EIP {
        RIP_REG
    } else {
        reg.full_register().number() as u8
    }
}

/// The operand form of register `reg`, or `None` for registers the
/// interpreter does not have yet.
fn register_operand(reg: Register) -> Option<Operand> {
    if reg.is_gpr8() {
        let n = reg.number() as u8;
        return Some(match n {
            4..=7 => Operand::HighByte(n - 4),
            8..=11 => Operand::Gpr {
                reg: n - 4,
                size: 1,
            },
            _ if n >= 12 => Operand::Gpr {
                reg: n - 4,
                size: 1,
            },
            _ => Operand::Gpr { reg: n, size: 1 },
        });
    }
    if reg.is_gpr() {
        return Some(Operand::Gpr {
            reg: reg.number() as u8,
            size: reg.size() as u8,
        });
    }
    if reg.is_xmm() {
        return Some(Operand::Xmm(reg.number() as u8));
    }
    if reg.is_mm() {
        return Some(Operand::Mmx(reg.number() as u8));
    }
    if reg.is_st() {
        return Some(Operand::St(reg.number() as u8));
    }
    if reg.is_cr() {
        return Some(Operand::Control(reg.number() as u8));
    }
    if reg.is_dr() {
        return Some(Operand::Debug(reg.number() as u8));
    }
    if reg.is_segment_register() {
        // FS and GS arrived with the 386; `beyond_model` turns them away on a 286.
        return Some(Operand::Seg(segment_of(reg)));
    }
    None
}

fn operation(instr: &Instruction) -> Op {
    use Mnemonic as M;
    let string = |op| {
        if is_string_operand(instr.op0_kind()) || instr.op_count() == 0 {
            op
        } else {
            Op::Invalid
        }
    };
    // MOVSD and CMPSD are string instructions too.
    let string_form =
        matches!(instr.mnemonic(), M::Movsd | M::Cmpsd) && is_string_operand(instr.op0_kind());
    if let Some((op, _)) = simd_op(instr.mnemonic())
        && !string_form
    {
        return Op::Simd(op);
    }
    if let Some((op, _)) = x87_op(instr.mnemonic()) {
        return Op::X87(op);
    }
    match instr.mnemonic() {
        M::Add => Op::Add,
        M::Or => Op::Or,
        M::Adc => Op::Adc,
        M::Sbb => Op::Sbb,
        M::And => Op::And,
        M::Sub => Op::Sub,
        M::Xor => Op::Xor,
        M::Cmp => Op::Cmp,
        M::Test => Op::Test,
        M::Inc => Op::Inc,
        M::Dec => Op::Dec,
        M::Neg => Op::Neg,
        M::Not => Op::Not,
        M::Mul => Op::Mul,
        M::Imul if instr.op_count() == 1 => Op::Imul1,
        M::Imul => Op::Imul,
        M::Div => Op::Div,
        M::Idiv => Op::Idiv,
        M::Mov => mov_kind(instr),
        M::Movzx => Op::Movzx,
        M::Movsx => Op::Movsx,
        M::Xchg => Op::Xchg,
        M::Lea => Op::Lea,
        M::Push => Op::Push,
        M::Pop => Op::Pop,
        M::Pusha | M::Pushad => Op::Pusha,
        M::Popa | M::Popad => Op::Popa,
        M::Pushf | M::Pushfd | M::Pushfq => Op::Pushf,
        M::Popf | M::Popfd | M::Popfq => Op::Popf,
        M::Sahf => Op::Sahf,
        M::Lahf => Op::Lahf,
        M::Cbw | M::Cwde | M::Cdqe => Op::Cbw,
        M::Cwd | M::Cdq | M::Cqo => Op::Cwd,
        M::Rol => Op::Rol,
        M::Ror => Op::Ror,
        M::Rcl => Op::Rcl,
        M::Rcr => Op::Rcr,
        M::Shl | M::Sal => Op::Shl,
        M::Shr => Op::Shr,
        M::Sar => Op::Sar,
        M::Jo
        | M::Jno
        | M::Jb
        | M::Jae
        | M::Je
        | M::Jne
        | M::Jbe
        | M::Ja
        | M::Js
        | M::Jns
        | M::Jp
        | M::Jnp
        | M::Jl
        | M::Jge
        | M::Jle
        | M::Jg => Op::Jcc,
        M::Jmp if is_far(instr) => Op::JmpFar,
        M::Jmp => Op::Jmp,
        M::Call if is_far(instr) => Op::CallFar,
        M::Call => Op::Call,
        M::Ret => Op::Ret,
        M::Retf => Op::RetFar,
        M::Iret | M::Iretd | M::Iretq => Op::Iret,
        M::Int => Op::Int,
        M::Int3 => Op::Int3,
        M::Into => Op::Into,
        M::Loop => Op::Loop,
        M::Loope => Op::Loope,
        M::Loopne => Op::Loopne,
        M::Jcxz | M::Jecxz | M::Jrcxz => Op::Jcxz,
        M::Movsb | M::Movsw | M::Movsq => Op::Movs,
        M::Movsd => string(Op::Movs),
        M::Cmpsb | M::Cmpsw | M::Cmpsq => Op::Cmps,
        M::Cmpsd => string(Op::Cmps),
        M::Stosb | M::Stosw | M::Stosd | M::Stosq => Op::Stos,
        M::Lodsb | M::Lodsw | M::Lodsd | M::Lodsq => Op::Lods,
        M::Scasb | M::Scasw | M::Scasd | M::Scasq => Op::Scas,
        M::Insb | M::Insw | M::Insd => Op::Ins,
        M::Outsb | M::Outsw | M::Outsd => Op::Outs,
        M::In => Op::In,
        M::Out => Op::Out,
        M::Xlatb => Op::Xlat,
        M::Daa => Op::Daa,
        M::Das => Op::Das,
        M::Aaa => Op::Aaa,
        M::Aas => Op::Aas,
        M::Aam => Op::Aam,
        M::Aad => Op::Aad,
        M::Salc => Op::Salc,
        M::Clc => Op::Clc,
        M::Stc => Op::Stc,
        M::Cmc => Op::Cmc,
        M::Cli => Op::Cli,
        M::Sti => Op::Sti,
        M::Cld => Op::Cld,
        M::Std => Op::Std,
        M::Hlt => Op::Hlt,
        M::Nop => Op::Nop,
        M::Wait => Op::Wait,
        M::Lds | M::Les | M::Lss | M::Lfs | M::Lgs => Op::LoadFarPointer,
        M::Enter => Op::Enter,
        M::Leave => Op::Leave,
        M::Bound => Op::Bound,
        M::Movsxd => Op::Movsx,
        // ENDBR is a NOP on parts without CET.
        M::Pause => Op::Pause,
        M::Endbr64 | M::Endbr32 => Op::Nop,
        M::Seto
        | M::Setno
        | M::Setb
        | M::Setae
        | M::Sete
        | M::Setne
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg => Op::Setcc,
        M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmove
        | M::Cmovne
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => Op::Cmovcc,
        M::Bt => Op::Bt,
        M::Bts => Op::Bts,
        M::Btr => Op::Btr,
        M::Btc => Op::Btc,
        M::Bsf => Op::Bsf,
        M::Bsr => Op::Bsr,
        M::Tzcnt => Op::Tzcnt,
        M::Lzcnt => Op::Lzcnt,
        M::Popcnt => Op::Popcnt,
        M::Crc32 => Op::Crc32,
        M::Shld => Op::Shld,
        M::Shrd => Op::Shrd,
        M::Bswap => Op::Bswap,
        M::Xadd => Op::Xadd,
        M::Cmpxchg => Op::Cmpxchg,
        M::Cmpxchg8b | M::Cmpxchg16b => Op::CmpxchgDouble,
        M::Lgdt => Op::Lgdt,
        M::Lidt => Op::Lidt,
        M::Sgdt => Op::Sgdt,
        M::Sidt => Op::Sidt,
        M::Lldt => Op::Lldt,
        M::Sldt => Op::Sldt,
        M::Ltr => Op::Ltr,
        M::Str => Op::Str,
        M::Lmsw => Op::Lmsw,
        M::Smsw => Op::Smsw,
        M::Clts => Op::Clts,
        M::Lar => Op::Lar,
        M::Lsl => Op::Lsl,
        M::Verr => Op::Verr,
        M::Verw => Op::Verw,
        M::Arpl => Op::Arpl,
        M::Invlpg => Op::Invlpg,
        M::Rdmsr => Op::Rdmsr,
        M::Wrmsr => Op::Wrmsr,
        M::Rdtsc => Op::Rdtsc,
        M::Rdtscp => Op::Rdtscp,
        M::Rdpid => Op::Rdpid,
        M::Cpuid => Op::Cpuid,
        M::Swapgs => Op::Swapgs,
        M::Syscall => Op::Syscall,
        M::Sysret | M::Sysretq => Op::Sysret,
        M::Sysenter => Op::Sysenter,
        M::Sysexit | M::Sysexitq => Op::Sysexit,
        M::Wbinvd | M::Invd => Op::Wbinvd,
        M::Clflush
        | M::Lfence
        | M::Mfence
        | M::Sfence
        | M::Prefetchnta
        | M::Prefetcht0
        | M::Prefetcht1
        | M::Prefetcht2
        | M::Prefetchw => Op::Nop,
        M::Rdfsbase | M::Rdgsbase => Op::ReadSegmentBase,
        M::Wrfsbase | M::Wrgsbase => Op::WriteSegmentBase,
        M::Invpcid => Op::Invpcid,
        M::Rdpkru => Op::Rdpkru,
        M::Andn => Op::Andn,
        M::Bextr => Op::Bextr,
        M::Blsi => Op::Blsi,
        M::Blsmsk => Op::Blsmsk,
        M::Blsr => Op::Blsr,
        M::Bzhi => Op::Bzhi,
        M::Mulx => Op::Mulx,
        M::Pdep => Op::Pdep,
        M::Pext => Op::Pext,
        M::Rorx => Op::Rorx,
        M::Sarx => Op::Sarx,
        M::Shlx => Op::Shlx,
        M::Shrx => Op::Shrx,
        M::Wrpkru => Op::Wrpkru,
        M::Xgetbv => Op::Xgetbv,
        M::Xsetbv => Op::Xsetbv,
        M::Xsave | M::Xsave64 => Op::Xsave,
        M::Xrstor | M::Xrstor64 => Op::Xrstor,
        M::Stac => Op::Stac,
        M::Clac => Op::Clac,
        _ => Op::Invalid,
    }
}

/// Whether an operand is a string instruction's [E]SI or [E]DI operand.
fn is_string_operand(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::MemoryESDI
            | OpKind::MemoryESEDI
            | OpKind::MemoryESRDI
            | OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
    )
}

/// MOV to or from a control or debug register, or an ordinary MOV.
fn mov_kind(instr: &Instruction) -> Op {
    let register = |test: fn(Register) -> bool| {
        (0..instr.op_count())
            .any(|i| instr.op_kind(i) == OpKind::Register && test(instr.op_register(i)))
    };
    if register(Register::is_cr) {
        Op::MovCr
    } else if register(Register::is_dr) {
        Op::MovDr
    } else {
        Op::Mov
    }
}

fn is_far(instr: &Instruction) -> bool {
    matches!(instr.op0_kind(), OpKind::FarBranch16 | OpKind::FarBranch32)
        || (instr.op0_kind() == OpKind::Memory
            && matches!(
                instr.memory_size(),
                iced_x86::MemorySize::SegPtr16
                    | iced_x86::MemorySize::SegPtr32
                    | iced_x86::MemorySize::SegPtr64
            ))
}

fn far_pointer_segment(m: Mnemonic) -> SegReg {
    match m {
        Mnemonic::Rdfsbase | Mnemonic::Wrfsbase => SegReg::Fs,
        Mnemonic::Rdgsbase | Mnemonic::Wrgsbase => SegReg::Gs,
        Mnemonic::Les => SegReg::Es,
        Mnemonic::Lss => SegReg::Ss,
        Mnemonic::Lfs => SegReg::Fs,
        Mnemonic::Lgs => SegReg::Gs,
        _ => SegReg::Ds,
    }
}

fn convert(instr: &Instruction, bytes: &[u8], bits: CodeBits, model: &CpuModel) -> Insn {
    let len = instr.len() as u8;
    if vex_on_286(bytes, bits, model) {
        return Insn::invalid(len);
    }
    if len > model.max_instruction_len {
        let mut insn = Insn::invalid(len);
        insn.op = Op::TooLong;
        return insn;
    }
    if beyond_model(instr, bytes, bits, model) {
        return Insn::invalid(len);
    }
    let (legacy, opcode) = prefix_bytes(bytes, bits);
    let escape = opcode.is_some_and(|b| (0xd8..=0xdf).contains(&b)) && !model.has_fpu;
    let mut insn = Insn::invalid(len);
    insn.op = if escape {
        Op::EscNoFpu
    } else {
        operation(instr)
    };
    if insn.op == Op::Invalid {
        return insn;
    }
    // LZCNT is REP BSR to a part without it.
    if insn.op == Op::Lzcnt && !model.features.has(Features::LZCNT) {
        insn.op = Op::Bsr;
    }
    // And TZCNT is REP BSF to a part without BMI1; BMI1's VEX instructions
    // are #UD there.
    if !model.features.has(Features::BMI1) {
        match insn.op {
            Op::Tzcnt => insn.op = Op::Bsf,
            Op::Andn | Op::Bextr | Op::Blsi | Op::Blsmsk | Op::Blsr => return Insn::invalid(len),
            _ => {}
        }
    }
    let a32 = legacy.contains(&0x67);
    insn.addr_size = match (bits, a32) {
        (64, false) => 8,
        (16, false) | (32, true) => 2,
        _ => 4,
    };
    let mut prefixes = 0;
    if instr.has_rep_prefix() || instr.has_repe_prefix() {
        prefixes |= prefix::REP;
    }
    if instr.has_repne_prefix() {
        prefixes |= prefix::REPNE;
    }
    if instr.has_lock_prefix() {
        prefixes |= prefix::LOCK;
    }
    insn.prefixes = prefixes;
    insn.cond = match instr.condition_code() {
        ConditionCode::None => 0,
        cc => cc as u8 - 1,
    };
    if let Op::Simd(_) = insn.op {
        insn.cond = simd_op(instr.mnemonic()).map_or(16, |(_, lane)| lane);
    }
    if let Op::X87(_) = insn.op {
        insn.cond = x87_op(instr.mnemonic()).map_or(0, |(_, cond)| cond);
        // FOP: the low three bits of the escape opcode and the ModR/M byte.
        let at = legacy.len();
        let escape = u64::from(bytes.get(at).copied().unwrap_or(0) & 7);
        insn.imm = (escape << 8) | u64::from(bytes.get(at + 1).copied().unwrap_or(0));
    }
    insn.seg2 = far_pointer_segment(instr.mnemonic());
    insn.size = operation_size(instr, insn.op, legacy, bits);
    let next = u64::from(len);
    for i in 0..instr.op_count().min(3) {
        let operand = match instr.op_kind(i) {
            // Without a coprocessor only the memory operand matters.
            OpKind::Register if escape => Operand::None,
            OpKind::Register => match register_operand(instr.op_register(i)) {
                Some(o) => o,
                None => return Insn::invalid(len),
            },
            OpKind::Memory => {
                insn.seg = segment_of(instr.memory_segment());
                insn.base = gpr_number(instr.memory_base());
                insn.index = gpr_number(instr.memory_index());
                insn.scale = instr.memory_index_scale() as u8;
                insn.disp = if insn.base == RIP_REG {
                    instr.memory_displacement64().wrapping_sub(next)
                } else {
                    instr.memory_displacement64()
                };
                Operand::Mem(instr.memory_size().size() as u8)
            }
            OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
            | OpKind::MemorySegDI
            | OpKind::MemorySegEDI
            | OpKind::MemorySegRDI => {
                insn.seg = segment_of(instr.memory_segment());
                Operand::None
            }
            OpKind::MemoryESDI | OpKind::MemoryESEDI | OpKind::MemoryESRDI => Operand::None,
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                insn.imm = instr.near_branch_target().wrapping_sub(next);
                Operand::Imm(insn.size)
            }
            OpKind::FarBranch16 => {
                insn.imm = u64::from(instr.far_branch16());
                insn.imm2 = u64::from(instr.far_branch_selector());
                Operand::Imm(2)
            }
            OpKind::FarBranch32 => {
                insn.imm = u64::from(instr.far_branch32());
                insn.imm2 = u64::from(instr.far_branch_selector());
                Operand::Imm(4)
            }
            OpKind::Immediate8_2nd => {
                insn.imm2 = u64::from(instr.immediate8_2nd());
                Operand::Imm2(1)
            }
            kind => {
                insn.imm = instr.immediate(i);
                Operand::Imm(immediate_size(kind))
            }
        };
        insn.operands[i as usize] = operand;
    }
    if matches!(insn.op, Op::Xlat) {
        insn.seg = segment_of(instr.memory_segment());
    }
    insn
}

fn immediate_size(kind: OpKind) -> u8 {
    match kind {
        OpKind::Immediate8 => 1,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
        OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
        _ => 8,
    }
}

/// The operand-size attribute the prefixes give: 2, 4 or 8.
fn operand_size_attribute(prefixes: &[u8], bits: CodeBits) -> u8 {
    let o16 = prefixes.contains(&0x66);
    // REX counts only as the last prefix before the opcode.
    let rex_w = bits == 64 && prefixes.last().is_some_and(|b| b & 0xf8 == 0x48);
    match bits {
        64 if rex_w => 8,
        16 if !o16 => 2,
        16 => 4,
        _ if o16 => 2,
        _ => 4,
    }
}

/// The operand size that the operation works at: the destination's for most,
/// the moved size for strings, the stack slot for pushes and pops, the
/// instruction-pointer width for near branches.
fn operation_size(instr: &Instruction, op: Op, prefixes: &[u8], bits: CodeBits) -> u8 {
    let attribute = operand_size_attribute(prefixes, bits);
    match op {
        // Near branches and stack operations default to 64 bits in long mode,
        // and only 0x66 shrinks them.
        Op::Push
        | Op::Pop
        | Op::Pushf
        | Op::Popf
        | Op::Call
        | Op::Ret
        | Op::Jmp
        | Op::Jcc
        | Op::Loop
        | Op::Loope
        | Op::Loopne
        | Op::Jcxz
        | Op::Enter
        | Op::Leave => {
            if bits == 64 {
                if attribute == 2 { 2 } else { 8 }
            } else {
                attribute
            }
        }
        // The string moves the memory operand's size (OUTS names DX first).
        Op::Outs | Op::Ins => match instr.memory_size().size() as u8 {
            0 => attribute,
            n => n,
        },
        Op::Pusha
        | Op::Popa
        | Op::CallFar
        | Op::JmpFar
        | Op::RetFar
        | Op::Iret
        | Op::Cbw
        | Op::Cwd
        | Op::LoadFarPointer => attribute,
        _ if instr.op_count() == 0 => attribute,
        _ => match instr.op0_kind() {
            OpKind::Register => instr.op0_register().size() as u8,
            OpKind::Memory
            | OpKind::MemoryESDI
            | OpKind::MemoryESEDI
            | OpKind::MemoryESRDI
            | OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI => match instr.memory_size().size() as u8 {
                0 => attribute,
                n => n,
            },
            _ => attribute,
        },
    }
}
