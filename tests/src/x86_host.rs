//! The host CPU as an oracle for the x86 interpreter: random user-level
//! instruction sequences run natively (in a child process) and in the
//! interpreter from the same state, at the same addresses.
//!
//! A case is a short sequence of integer instructions with operands drawn
//! towards edge values. Each runs in a 16 KiB region at a fixed address:
//!
//! | offset | what |
//! |---|---|
//! | 0x0000 | code: (native only) a prologue loading the registers, the body, an epilogue storing them |
//! | 0x1000 | register blocks in and out, the host stack pointer |
//! | 0x1800 | FXSAVE images: the x87 state in and out, the host's own |
//! | 0x2000 | 256 data bytes that memory operands address through RBX |
//! | 0x3000 | the stack (RSP starts at 0x3800) |
//!
//! The body never writes RBX or RSP (but pushes and pops), addresses memory
//! only as `[rbx+disp8]`, and divides only after setting up operands that
//! cannot fault, so nothing in it can crash.

use cpu_x86::simd::SimdOp;
use cpu_x86::sse_float::FloatOp;
use cpu_x86::x87::X87Op;
use iced_x86::{
    Decoder, DecoderOptions, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind,
    Register, RflagsBits,
};
use opcodes::{MMX_OPCODES, OPCODES, SSE_OPCODES, X87_OPCODES};

mod opcodes;

/// Where the region sits, natively and in the guest.
pub const REGION: u64 = 0x3000_0000;
/// Its size.
pub const REGION_SIZE: usize = 0x4000;
const STATE: u64 = REGION + 0x1000;
const IN: u64 = STATE;
const OUT: u64 = STATE + 0x200;
const SAVED_RSP: u64 = STATE + 0x400;
const SAVED_MXCSR: u64 = STATE + 0x408;
/// Far pointers (offset, selector) into 32-bit code and back to 64-bit code.
const FAR_TO_32: u64 = STATE + 0x410;
const FAR_TO_64: u64 = STATE + 0x418;
/// FXSAVE images: the case's x87 state going in (loaded first, so the XMM
/// registers and MXCSR loaded after it win), coming out, and the host's.
const FX_IN: u64 = REGION + 0x1800;
const FX_OUT: u64 = REGION + 0x1a00;
const FX_SAVED: u64 = REGION + 0x1c00;
/// Linux's user code selectors: 32-bit and 64-bit; its user data selector.
const USER32_CS: u16 = 0x23;
const USER64_CS: u16 = 0x33;
const USER_DS: u16 = 0x2b;
/// Where RFLAGS, MXCSR and the XMM registers sit in a register block.
const FLAGS_AT: u64 = 128;
const MXCSR_AT: u64 = 136;
const XMM_AT: u64 = 144;
/// The data RBX points at.
pub const DATA: u64 = REGION + 0x2000;
/// Bytes of data memory operands reach.
pub const DATA_LEN: usize = 256;
/// Where the stack window compared after a run starts.
pub const STACK_LOW: u64 = REGION + 0x3000;
/// RSP at the start of the body.
pub const STACK_TOP: u64 = REGION + 0x3800;
/// End of the stack window.
pub const STACK_HIGH: u64 = REGION + 0x4000;

const RAX: usize = 0;
const RDX: usize = 2;
const RBX: usize = 3;
/// The characters of the generated strings.
const ALPHABET: [u8; 8] = [0, 1, 2, 3, 0x61, 0x7f, 0x80, 0xff];
const RSP: usize = 4;

/// Registers RAX … R15, RFLAGS, MXCSR and XMM0 … XMM15, laid out as the
/// register blocks in the region hold them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Registers {
    /// RAX … R15 in encoding order.
    pub gpr: [u64; 16],
    /// RFLAGS.
    pub rflags: u64,
    /// MXCSR.
    pub mxcsr: u32,
    /// XMM0 … XMM15.
    pub xmm: [u128; 16],
    /// The x87 state.
    pub x87: X87Registers,
}

/// The x87 state as FXSAVE lays it out (the pointers to the last
/// instruction left out: they name host addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X87Registers {
    /// The control word.
    pub fcw: u16,
    /// The status word, TOP included.
    pub fsw: u16,
    /// The abridged tag word: bit i set when physical register i is in use.
    pub tags: u8,
    /// ST(0) … ST(7), 80 bits each.
    pub st: [u128; 8],
}

impl X87Registers {
    /// Writes these into the first 160 bytes of an FXSAVE image.
    fn store(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.fcw.to_le_bytes());
        out[2..4].copy_from_slice(&self.fsw.to_le_bytes());
        out[4] = self.tags;
        for (k, v) in self.st.iter().enumerate() {
            out[32 + 16 * k..][..10].copy_from_slice(&v.to_le_bytes()[..10]);
        }
    }

    /// Reads them from an FXSAVE image.
    fn load(image: &[u8]) -> X87Registers {
        let mut x87 = X87Registers {
            fcw: u16::from_le_bytes([image[0], image[1]]),
            fsw: u16::from_le_bytes([image[2], image[3]]),
            tags: image[4],
            st: [0; 8],
        };
        for (k, v) in x87.st.iter_mut().enumerate() {
            let mut bytes = [0u8; 16];
            bytes[..10].copy_from_slice(&image[32 + 16 * k..][..10]);
            *v = u128::from_le_bytes(bytes);
        }
        x87
    }
}

impl Registers {
    /// Writes the block image of these registers at `out`.
    fn store(&self, out: &mut [u8]) {
        for (i, v) in self.gpr.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        out[FLAGS_AT as usize..][..8].copy_from_slice(&self.rflags.to_le_bytes());
        out[MXCSR_AT as usize..][..4].copy_from_slice(&self.mxcsr.to_le_bytes());
        for (i, v) in self.xmm.iter().enumerate() {
            out[XMM_AT as usize + 16 * i..][..16].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads registers from a block image.
    fn load(block: &[u8]) -> Registers {
        let u64_at = |at: usize| u64::from_le_bytes(block[at..at + 8].try_into().expect("8 bytes"));
        let mut regs = Registers::default();
        for (i, g) in regs.gpr.iter_mut().enumerate() {
            *g = u64_at(8 * i);
        }
        regs.rflags = u64_at(FLAGS_AT as usize);
        regs.mxcsr =
            u32::from_le_bytes(block[MXCSR_AT as usize..][..4].try_into().expect("4 bytes"));
        for (i, x) in regs.xmm.iter_mut().enumerate() {
            let at = XMM_AT as usize + 16 * i;
            *x = u128::from_le_bytes(block[at..at + 16].try_into().expect("16 bytes"));
        }
        regs
    }
}

/// Bytes of a register block.
const BLOCK_LEN: usize = XMM_AT as usize + 16 * 16;

/// One test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// The code's bitness: 64, or 32 (compatibility mode).
    pub bits: u32,
    /// The body's instruction bytes.
    pub body: Vec<u8>,
    /// Registers at the start.
    pub initial: Registers,
    /// Data bytes at the start.
    pub data: Vec<u8>,
    /// Stack window bytes at the start.
    pub stack: Vec<u8>,
    /// The status flags architecturally undefined at the end (x86 RFLAGS bits).
    pub undefined_flags: u64,
    /// Instructions in the body (set-up instructions included).
    pub instructions: usize,
}

/// What a run leaves behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Registers at the end.
    pub regs: Registers,
    /// The data bytes.
    pub data: Vec<u8>,
    /// The stack window.
    pub stack: Vec<u8>,
}

/// A small deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.bits() % n
    }

    /// A value drawn towards the edges: zero, all ones, sign boundaries of
    /// every width, small numbers, or anything.
    pub fn edgy(&mut self) -> u64 {
        let any = self.bits();
        match self.below(12) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << (self.below(64)),
            3 => (1 << self.below(64)) - 1,
            4 => self.below(64),
            5 => u64::MAX - self.below(64),
            6 => [0x80, 0x7f, 0x8000, 0x7fff, 0x8000_0000, 0x7fff_ffff][self.below(6) as usize],
            7 => any & 0xff,
            8 => any & 0xffff,
            9 => any & 0xffff_ffff,
            _ => any,
        }
    }
}

/// A single-precision value drawn towards the edges: zeros, infinities,
/// NaNs (quiet and signalling), denormals, the extremes, small integers.
fn edgy_single(rng: &mut Rng) -> u32 {
    let sign = (rng.below(2) as u32) << 31;
    sign | match rng.below(10) {
        0 => 0,
        1 => 0x7f80_0000,
        2 => 0x7fc0_0000 | (rng.bits() as u32 & 0x3f_ffff),
        3 => 0x7f80_0001 | (rng.bits() as u32 & 0x3f_ffff),
        4 => rng.bits() as u32 & 0x7f_ffff,
        5 => 0x7f7f_ffff - (rng.below(4) as u32),
        6 => 0x0080_0000 + (rng.below(4) as u32),
        7 => (rng.below(100) as f32).to_bits(),
        _ => rng.bits() as u32 & 0x7fff_ffff,
    }
}

/// A double-precision value drawn towards the edges.
fn edgy_double(rng: &mut Rng) -> u64 {
    let sign = rng.below(2) << 63;
    sign | match rng.below(10) {
        0 => 0,
        1 => 0x7ff0_0000_0000_0000,
        2 => 0x7ff8_0000_0000_0000 | (rng.bits() & 0x7_ffff_ffff_ffff),
        3 => 0x7ff0_0000_0000_0001 | (rng.bits() & 0x7_ffff_ffff_ffff),
        4 => rng.bits() & 0xf_ffff_ffff_ffff,
        5 => 0x7fef_ffff_ffff_ffff - rng.below(4),
        6 => 0x0010_0000_0000_0000 + rng.below(4),
        7 => (rng.below(100) as f64).to_bits(),
        8 => f64::from(rng.bits() as u32).to_bits(),
        _ => rng.bits() & 0x7fff_ffff_ffff_ffff,
    }
}

/// An 80-bit value drawn towards the cases the x87 treats specially.
fn edgy_extended(rng: &mut Rng) -> u128 {
    let sign = u128::from(rng.below(2) == 1) << 79;
    let integer = 1u64 << 63;
    let (exp, significand): (u128, u64) = match rng.below(14) {
        0 => (0, 0),
        1 => (0x7fff, integer),
        2 => (0x7fff, integer | (1 << 62) | (rng.bits() >> 2)),
        3 => (0x7fff, integer | (rng.bits() >> 2).max(1)),
        4 => (0, rng.bits() >> 1),
        5 => (0x3fff, integer),
        6 => (
            0x3fff + u128::from(rng.below(64)),
            integer | (rng.bits() >> (1 + rng.below(63))),
        ),
        7 => (
            0x3fbf + u128::from(rng.below(64)),
            integer | (rng.bits() >> 1),
        ),
        8 => (1, integer | (rng.bits() >> 1)),
        9 => (0x7ffe, integer | (rng.bits() >> 1)),
        10 => {
            // A double widened exactly.
            let d = f64::from_bits(edgy_double(rng));
            if d.is_finite() && d != 0.0 && !d.is_subnormal() {
                let bits = d.to_bits();
                let e = u128::from((bits >> 52) & 0x7ff) + 0x3fff - 0x3ff;
                (e, integer | ((bits & ((1 << 52) - 1)) << 11))
            } else {
                (0x4000, integer)
            }
        }
        11 => (
            0x3ffe + u128::from(rng.below(4)),
            integer | (rng.below(1 << 20) << 43),
        ),
        12 => (0x403e, integer | (rng.bits() >> 1)),
        _ => (
            1 + u128::from(rng.below(0x7ffd)),
            integer | (rng.bits() >> 1),
        ),
    };
    sign | (exp << 64) | u128::from(significand)
}

/// An x87 state to start from: any TOP, registers in use or not with edgy
/// values, flags already raised or not, any rounding and precision
/// control, every exception masked (a native trap would end the run).
fn edgy_x87(rng: &mut Rng) -> X87Registers {
    let precision = [0u16, 2, 3, 3][rng.below(4) as usize];
    let fcw = 0x7f | (precision << 8) | ((rng.below(4) as u16) << 10);
    let top = rng.below(8) as u16;
    let fsw = (rng.bits() as u16 & 0x477f & !0x80) | (top << 11);
    let tags = match rng.below(4) {
        0 => 0,
        1 => 0xff,
        _ => rng.bits() as u8,
    };
    let mut st = [0u128; 8];
    for v in st.iter_mut() {
        *v = edgy_extended(rng);
    }
    X87Registers { fcw, fsw, tags, st }
}

/// Whether the instruction is one the generator may use.
fn allowed(instr: &Instruction) -> bool {
    use Mnemonic as M;
    matches!(
        instr.mnemonic(),
        M::Add
            | M::Or
            | M::Adc
            | M::Sbb
            | M::And
            | M::Sub
            | M::Xor
            | M::Cmp
            | M::Test
            | M::Inc
            | M::Dec
            | M::Neg
            | M::Not
            | M::Mul
            | M::Imul
            | M::Mov
            | M::Movzx
            | M::Movsx
            | M::Movsxd
            | M::Xchg
            | M::Lea
            | M::Push
            | M::Pop
            | M::Cbw
            | M::Cwde
            | M::Cdqe
            | M::Cwd
            | M::Cdq
            | M::Cqo
            | M::Rol
            | M::Ror
            | M::Rcl
            | M::Rcr
            | M::Shl
            | M::Sal
            | M::Shr
            | M::Sar
            | M::Clc
            | M::Stc
            | M::Cmc
            | M::Cld
            | M::Std
            | M::Sahf
            | M::Lahf
            | M::Pushfq
            | M::Pushfd
            | M::Nop
            | M::Bt
            | M::Bts
            | M::Btr
            | M::Btc
            | M::Bsf
            | M::Bsr
            | M::Tzcnt
            | M::Lzcnt
            | M::Popcnt
            | M::Crc32
            | M::Shld
            | M::Shrd
            | M::Bswap
            | M::Xadd
            | M::Cmpxchg
            | M::Cmpxchg8b
            | M::Cmpxchg16b
            | M::Andn
            | M::Bextr
            | M::Blsi
            | M::Blsmsk
            | M::Blsr
            | M::Bzhi
            | M::Mulx
            | M::Pdep
            | M::Pext
            | M::Rorx
            | M::Sarx
            | M::Shlx
            | M::Shrx
    ) || {
        let name = format!("{:?}", instr.mnemonic());
        name.starts_with("Set") || name.starts_with("Cmov")
    } || matches!(
        cpu_x86::x87::x87_op(instr.mnemonic()),
        Some((op, _)) if !matches!(
            op,
            // They load control words that may unmask exceptions, or store
            // the last instruction's host address.
            X87Op::LoadControl
                | X87Op::LoadEnvironment
                | X87Op::Restore
                | X87Op::StoreEnvironment
                | X87Op::Save
                // Undefined for digits above 9.
                | X87Op::LoadBcd
                // 53 bits here, 64 on silicon (see x87_float).
                | X87Op::Transcendental(_)
                | X87Op::SinCos
        )
    ) || matches!(
        cpu_x86::simd::simd_op(instr.mnemonic()),
        Some((op, _)) if !matches!(
            op,
            SimdOp::LdMxcsr
                // It stores through RDI, which points anywhere.
                | SimdOp::MaskMove
                | SimdOp::StMxcsr
                | SimdOp::FxSave
                | SimdOp::FxRstor
                // The approximations differ between vendors and parts.
                | SimdOp::Float {
                    op: FloatOp::Reciprocal | FloatOp::ReciprocalSqrt,
                    ..
                }
        )
    )
}

/// SSE and SSE2 opcodes: the mandatory prefix, then 0F and the opcode.
/// A three-byte VEX prefix and the opcode of a BMI1 or BMI2 instruction
/// (the ModR/M byte and the rest follow as for any instruction).
fn bmi_prefix_and_opcode(rng: &mut Rng, bits: u32, out: &mut Vec<u8>) {
    // (opcode map, implied prefix pp, opcode): ANDN, BEXTR, BLSR/BLSMSK/BLSI,
    // BZHI, PDEP, PEXT, MULX, RORX, SARX, SHLX, SHRX.
    const FORMS: [(u8, u8, u8); 11] = [
        (2, 0, 0xf2),
        (2, 0, 0xf7),
        (2, 0, 0xf3),
        (2, 0, 0xf5),
        (2, 3, 0xf5),
        (2, 2, 0xf5),
        (2, 3, 0xf6),
        (3, 3, 0xf0),
        (2, 2, 0xf7),
        (2, 1, 0xf7),
        (2, 3, 0xf7),
    ];
    let (map, pp, opcode) = FORMS[rng.below(FORMS.len() as u64) as usize];
    // Outside 64-bit code the inverted R and X bits must be set (else the
    // bytes are LES) and only registers 0-7 exist.
    let rxb = if bits == 64 {
        rng.below(8) as u8
    } else {
        0b111
    };
    let vvvv = if bits == 64 {
        rng.below(16) as u8
    } else {
        rng.below(8) as u8
    };
    let w = rng.below(2) as u8;
    out.push(0xc4);
    out.push((rxb << 5) | map);
    out.push((w << 7) | ((!vvvv & 0xf) << 3) | pp);
    out.push(opcode);
}

/// Converts iced's flag bits to RFLAGS bits.
fn rflags_of(bits: u32) -> u64 {
    let mut f = 0;
    for (iced, x86) in [
        (RflagsBits::CF, 1u64),
        (RflagsBits::PF, 1 << 2),
        (RflagsBits::AF, 1 << 4),
        (RflagsBits::ZF, 1 << 6),
        (RflagsBits::SF, 1 << 7),
        (RflagsBits::DF, 1 << 10),
        (RflagsBits::OF, 1 << 11),
    ] {
        if bits & iced != 0 {
            f |= x86;
        }
    }
    f
}

/// Whether the decoded instruction keeps to the rules: memory only as
/// `[rbx+disp8]` inside the data, RBX and RSP never written but by pushes
/// and pops.
fn keeps_rules(instr: &Instruction, info: &mut InstructionInfoFactory) -> bool {
    if instr.is_invalid() || !allowed(instr) || instr.has_lock_prefix() {
        return false;
    }
    for i in 0..instr.op_count() {
        match instr.op_kind(i) {
            OpKind::Memory => {
                let disp = instr.memory_displacement64();
                if instr.memory_base().full_register() != Register::RBX
                    || instr.memory_index() != Register::None
                    || disp > (DATA_LEN - 16) as u64
                {
                    return false;
                }
            }
            OpKind::Register if instr.op_register(i).full_register() == Register::RSP => {
                return false;
            }
            _ => {}
        }
    }
    if matches!(instr.mnemonic(), Mnemonic::Cmpxchg16b)
        && !instr.memory_displacement64().is_multiple_of(16)
    {
        return false;
    }
    // Legacy SSE wants its 16-byte memory operands aligned (but for the
    // unaligned moves).
    let unaligned_ok = matches!(
        instr.mnemonic(),
        Mnemonic::Movups
            | Mnemonic::Movupd
            | Mnemonic::Movdqu
            | Mnemonic::Lddqu
            | Mnemonic::Pcmpestri
            | Mnemonic::Pcmpestri64
            | Mnemonic::Pcmpestrm
            | Mnemonic::Pcmpestrm64
            | Mnemonic::Pcmpistri
            | Mnemonic::Pcmpistrm
    );
    let wide = (0..instr.op_count()).any(|i| instr.op_kind(i) == OpKind::Memory)
        && instr.memory_size().size() == 16;
    if wide && !unaligned_ok && !instr.memory_displacement64().is_multiple_of(16) {
        return false;
    }
    // A register bit offset reaches memory far from the operand.
    let bit_test = matches!(
        instr.mnemonic(),
        Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
    );
    if bit_test && instr.op0_kind() == OpKind::Memory && instr.op1_kind() == OpKind::Register {
        return false;
    }
    let stack_op = matches!(
        instr.mnemonic(),
        Mnemonic::Push | Mnemonic::Pop | Mnemonic::Pushfq | Mnemonic::Pushfd
    );
    info.info(instr).used_registers().iter().all(|used| {
        let writes = !matches!(
            used.access(),
            OpAccess::Read | OpAccess::CondRead | OpAccess::None
        );
        let full = used.register().full_register();
        !writes || (full != Register::RBX && (full != Register::RSP || stack_op))
    })
}

/// Operands of a division that cannot fault: the dividend's upper half
/// follows from the lower, the divisor is odd (so not zero) with bit 1
/// clear (so not −1).
fn division(rng: &mut Rng, out: &mut Vec<u8>, bits: u32) -> usize {
    let long = bits == 64;
    let size = if long {
        [1u8, 2, 4, 8][rng.below(4) as usize]
    } else {
        [1u8, 2, 4][rng.below(3) as usize]
    };
    let signed = rng.below(2) == 1;
    // The divisor: a register other than RAX, RDX, RBX and RSP, or memory
    // (in 32-bit code a byte divisor is CL or memory).
    let memory = rng.below(3) == 0;
    let reg = if long {
        [1u8, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15][rng.below(12) as usize]
    } else if size == 1 {
        1
    } else {
        [1u8, 5, 6, 7][rng.below(4) as usize]
    };
    let disp = (rng.below((DATA_LEN - 16) as u64) as u8) & !7;
    let (rex_b, modrm_rm, tail): (u8, u8, Vec<u8>) = if memory {
        (0, 0x40 | 3, vec![disp])
    } else {
        (reg >> 3, 0xc0 | (reg & 7), vec![])
    };
    // and r/m64, -3; or r/m64, 1 (r/m32 in 32-bit code)
    for (ext, imm) in [(4u8, 0xfdu8), (1, 1)] {
        if long {
            out.push(0x48 | rex_b);
        }
        out.extend_from_slice(&[0x83, modrm_rm | (ext << 3)]);
        out.extend_from_slice(&tail);
        out.push(imm);
    }
    // The dividend: zero or the sign of the accumulator in its upper half.
    match (signed, size) {
        (false, 1) => out.extend_from_slice(&[0x30, 0xe4]), // xor ah, ah
        (false, _) => out.extend_from_slice(&[0x31, 0xd2]), // xor edx, edx
        (true, 1) => out.extend_from_slice(&[0x66, 0x98]),  // cbw
        (true, 2) => out.extend_from_slice(&[0x66, 0x99]),  // cwd
        (true, 4) => out.push(0x99),                        // cdq
        (true, _) => out.extend_from_slice(&[0x48, 0x99]),  // cqo
    }
    let ext = if signed { 7u8 } else { 6 };
    if size == 2 {
        out.push(0x66);
    }
    let rex = if size == 8 { 0x48 } else { 0x40 } | rex_b;
    if long && (rex != 0x40 || (size == 1 && !memory && reg >= 4)) {
        out.push(rex);
    }
    out.push(if size == 1 { 0xf6 } else { 0xf7 });
    out.push(modrm_rm | (ext << 3));
    out.extend_from_slice(&tail);
    4
}

/// A random case of up to `max_len` instructions of `bits`-bit code (64, or
/// 32 for compatibility mode).
pub fn generate(rng: &mut Rng, max_len: usize, bits: u32) -> Case {
    let mut info = InstructionInfoFactory::new();
    let mut body = Vec::new();
    let mut undefined = 0u64;
    let mut instructions = 0;
    let count = 1 + rng.below(max_len as u64) as usize;
    while instructions < count {
        if rng.below(12) == 0 {
            instructions += division(rng, &mut body, bits);
            // Division leaves every status flag undefined.
            undefined = STATUS;
            continue;
        }
        let mut bytes = Vec::with_capacity(16);
        if rng.below(16) == 0 {
            bmi_prefix_and_opcode(rng, bits, &mut bytes);
        } else if rng.below(5) == 0 {
            bytes.push(0x66);
        }
        let opcode: &[u8] = if !bytes.is_empty() && bytes[0] == 0xc4 {
            &[]
        } else if rng.below(4) == 0 {
            X87_OPCODES[rng.below(X87_OPCODES.len() as u64) as usize]
        } else if rng.below(3) == 0 {
            let sse = SSE_OPCODES[rng.below(SSE_OPCODES.len() as u64) as usize];
            match rng.below(4) {
                // The MMX form of a 66-prefixed SSE2 or SSSE3 instruction.
                0 if sse[0] == 0x66 => &sse[1..],
                1 => MMX_OPCODES[rng.below(MMX_OPCODES.len() as u64) as usize],
                _ => sse,
            }
        } else {
            OPCODES[rng.below(OPCODES.len() as u64) as usize]
        };
        // A mandatory prefix goes before REX.
        let (mandatory, rest) = match opcode {
            [p @ (0x66 | 0xf2 | 0xf3), rest @ ..] => (Some(*p), rest),
            _ => (None, opcode),
        };
        bytes.extend(mandatory);
        if bits == 64 && !opcode.is_empty() && rng.below(2) == 0 {
            bytes.push(0x40 | (rng.below(16) as u8 & 0b1101));
        }
        bytes.extend_from_slice(rest);
        let modrm = match rng.below(10) {
            0..=6 => 0xc0 | (rng.below(64) as u8),
            7 => (rng.below(8) as u8) << 3 | 3,
            _ => 0x40 | (rng.below(8) as u8) << 3 | 3,
        };
        bytes.push(modrm);
        bytes.push(rng.below(DATA_LEN as u64 - 16) as u8);
        for _ in 0..8 {
            bytes.push(rng.edgy() as u8);
        }
        let mut decoder = Decoder::with_ip(bits, &bytes, 0, DecoderOptions::NONE);
        let instr = decoder.decode();
        if !keeps_rules(&instr, &mut info) {
            continue;
        }
        body.extend_from_slice(&bytes[..instr.len()]);
        let written = rflags_of(instr.rflags_modified());
        undefined = (undefined & !written) | rflags_of(instr.rflags_undefined());
        instructions += 1;
    }
    let mut initial = Registers::default();
    for (i, r) in initial.gpr.iter_mut().enumerate() {
        *r = match i {
            RBX => DATA,
            RSP => STACK_TOP,
            // PCMPESTRx's lengths: around 0, 8 and 16 and negative, with
            // and without the upper half's sign.
            RAX | RDX if rng.below(3) == 0 => {
                let v = rng.below(41) as i64 - 20;
                if rng.below(2) == 0 {
                    v as u64
                } else {
                    u64::from(v as u32)
                }
            }
            _ => rng.edgy(),
        };
    }
    initial.rflags = 0x202 | (rng.bits() & STATUS) | if rng.below(8) == 0 { 1 << 10 } else { 0 };
    // Every exception masked (a native trap would end the run), any
    // rounding mode, sometimes DAZ and FTZ, flags already raised or not.
    initial.mxcsr = 0x1f80
        | ((rng.below(4) as u32) << 13)
        | if rng.below(4) == 0 { 1 << 6 } else { 0 }
        | if rng.below(4) == 0 { 1 << 15 } else { 0 }
        | (rng.bits() as u32 & 0x3f);
    for x in initial.xmm.iter_mut() {
        *x = match rng.below(5) {
            0 => u128::from(rng.edgy()) | (u128::from(rng.edgy()) << 64),
            1 => (0..4).fold(0, |acc, k| acc | (u128::from(edgy_single(rng)) << (32 * k))),
            2 => u128::from(edgy_double(rng)) | (u128::from(edgy_double(rng)) << 64),
            // Strings for the SSE4.2 compares: a few characters that often
            // match, nulls among them, as bytes or words.
            3 => (0..16).fold(0, |acc, k| {
                acc | (u128::from(ALPHABET[rng.below(8) as usize]) << (8 * k))
            }),
            _ => (0..8).fold(0, |acc, k| {
                let c = u128::from(ALPHABET[rng.below(8) as usize]);
                let word = if rng.below(2) == 0 { c } else { c * 0x101 };
                acc | (word << (16 * k))
            }),
        };
    }
    initial.x87 = edgy_x87(rng);
    let mut data: Vec<u8> = (0..DATA_LEN).map(|_| rng.edgy() as u8).collect();
    // Some float-shaped data for the x87's memory operands.
    for _ in 0..4 {
        let at = rng.below((DATA_LEN - 16) as u64) as usize;
        match rng.below(3) {
            0 => data[at..at + 4].copy_from_slice(&edgy_single(rng).to_le_bytes()),
            1 => data[at..at + 8].copy_from_slice(&edgy_double(rng).to_le_bytes()),
            _ => data[at..at + 10].copy_from_slice(&edgy_extended(rng).to_le_bytes()[..10]),
        }
    }
    let stack = (0..(STACK_HIGH - STACK_LOW))
        .map(|_| rng.bits() as u8)
        .collect();
    Case {
        bits,
        body,
        initial,
        data,
        stack,
        undefined_flags: undefined,
        instructions,
    }
}

/// The arithmetic status flags in RFLAGS.
pub const STATUS: u64 = 0x8d5;
/// The flags a comparison looks at: the status flags and DF.
pub const COMPARED_FLAGS: u64 = STATUS | 1 << 10;

/// Emits x86-64 machine code for the native prologue and epilogue.
struct Emitter {
    code: Vec<u8>,
}

impl Emitter {
    fn at(&self) -> u64 {
        REGION + self.code.len() as u64
    }

    /// `bytes` followed by a RIP-relative disp32 to `target`.
    fn rip_relative(&mut self, bytes: &[u8], target: u64, trailing: usize) {
        self.code.extend_from_slice(bytes);
        let next = self.at() + 4 + trailing as u64;
        let disp = target.wrapping_sub(next) as i64 as i32;
        self.code.extend_from_slice(&disp.to_le_bytes());
    }

    fn load(&mut self, reg: usize, from: u64) {
        let rex = 0x48 | (((reg >> 3) as u8) << 2);
        self.rip_relative(&[rex, 0x8b, (((reg & 7) as u8) << 3) | 5], from, 0);
    }

    /// MOVDQU between XMMn and memory: opcode 0x6F loads, 0x7F stores.
    fn xmm(&mut self, opcode: u8, n: u8, at: u64) {
        let mut bytes = vec![0xf3];
        if n >= 8 {
            bytes.push(0x44);
        }
        bytes.extend_from_slice(&[0x0f, opcode, ((n & 7) << 3) | 5]);
        self.rip_relative(&bytes, at, 0);
    }

    fn store(&mut self, reg: usize, to: u64) {
        let rex = 0x48 | (((reg >> 3) as u8) << 2);
        self.rip_relative(&[rex, 0x89, (((reg & 7) as u8) << 3) | 5], to, 0);
    }
}

/// The whole native program of a case, the offset of its body, and (for
/// 32-bit cases) of the 64-bit code the body's epilogue returns to.
fn native_code(case: &Case) -> (Vec<u8>, usize, usize) {
    let mut e = Emitter { code: Vec::new() };
    let compat = case.bits == 32;
    // Save the host's callee-saved registers and stack pointer.
    e.code
        .extend_from_slice(&[0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]);
    e.store(RSP, SAVED_RSP);
    // fxsave [host's]; fxrstor [case's]
    e.rip_relative(&[0x0f, 0xae, 0x05], FX_SAVED, 0);
    e.rip_relative(&[0x0f, 0xae, 0x0d], FX_IN, 0);
    // stmxcsr [saved]; ldmxcsr [in]; movdqu xmmN, [in]
    e.rip_relative(&[0x0f, 0xae, 0x1d], SAVED_MXCSR, 0);
    e.rip_relative(&[0x0f, 0xae, 0x15], IN + MXCSR_AT, 0);
    for n in 0..16u8 {
        e.xmm(0x6f, n, IN + XMM_AT + 16 * u64::from(n));
    }
    if compat {
        // 64-bit processes run with null DS and ES; 32-bit code needs them.
        // mov eax, USER_DS; mov ds, eax; mov es, eax
        e.code.push(0xb8);
        e.code.extend_from_slice(&u32::from(USER_DS).to_le_bytes());
        e.code.extend_from_slice(&[0x8e, 0xd8, 0x8e, 0xc0]);
    }
    e.load(RSP, IN + 8 * RSP as u64);
    // push qword [rip+flags]; popfq
    e.rip_relative(&[0xff, 0x35], IN + FLAGS_AT, 0);
    e.code.push(0x9d);
    for reg in (0..16).filter(|&r| r != RSP) {
        e.load(reg, IN + 8 * reg as u64);
    }
    if !compat {
        let body = e.code.len();
        e.code.extend_from_slice(&case.body);
        for reg in 0..16 {
            e.store(reg, OUT + 8 * reg as u64);
        }
        e.rip_relative(&[0x0f, 0xae, 0x05], FX_OUT, 0);
        // pushfq; pop qword [rip+flags]; cld
        e.code.push(0x9c);
        e.rip_relative(&[0x8f, 0x05], OUT + FLAGS_AT, 0);
        e.code.push(0xfc);
        for n in 0..16u8 {
            e.xmm(0x7f, n, OUT + XMM_AT + 16 * u64::from(n));
        }
        e.rip_relative(&[0x0f, 0xae, 0x1d], OUT + MXCSR_AT, 0);
        e.rip_relative(&[0x0f, 0xae, 0x0d], FX_SAVED, 0);
        e.rip_relative(&[0x0f, 0xae, 0x15], SAVED_MXCSR, 0);
        e.load(RSP, SAVED_RSP);
        e.code.extend_from_slice(&[
            0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3,
        ]);
        return (e.code, body, 0);
    }
    // jmp far [rip+FAR_TO_32]: into the 32-bit body.
    e.rip_relative(&[0xff, 0x2d], FAR_TO_32, 0);
    let body = e.code.len();
    e.code.extend_from_slice(&case.body);
    // 32-bit code from here: absolute addresses (ModR/M 00 reg 101 disp32).
    let absolute = |e: &mut Emitter, bytes: &[u8], at: u64| {
        e.code.extend_from_slice(bytes);
        e.code.extend_from_slice(&(at as u32).to_le_bytes());
    };
    for reg in 0..8u8 {
        absolute(&mut e, &[0x89, (reg << 3) | 5], OUT + 8 * u64::from(reg));
    }
    absolute(&mut e, &[0x0f, 0xae, 0x05], FX_OUT);
    // pushfd; pop dword [flags]; cld
    e.code.push(0x9c);
    absolute(&mut e, &[0x8f, 0x05], OUT + FLAGS_AT);
    e.code.push(0xfc);
    for n in 0..8u8 {
        absolute(
            &mut e,
            &[0xf3, 0x0f, 0x7f, (n << 3) | 5],
            OUT + XMM_AT + 16 * u64::from(n),
        );
    }
    absolute(&mut e, &[0x0f, 0xae, 0x1d], OUT + MXCSR_AT);
    // jmp far [FAR_TO_64]: back to 64-bit code.
    absolute(&mut e, &[0xff, 0x2d], FAR_TO_64);
    let back = e.code.len();
    // xor eax, eax; mov ds, eax; mov es, eax
    e.code
        .extend_from_slice(&[0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0]);
    e.rip_relative(&[0x0f, 0xae, 0x0d], FX_SAVED, 0);
    e.rip_relative(&[0x0f, 0xae, 0x15], SAVED_MXCSR, 0);
    e.load(RSP, SAVED_RSP);
    e.code.extend_from_slice(&[
        0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3,
    ]);
    (e.code, body, back)
}

/// The region's bytes at the start of `case`, and the offset of the body.
pub fn region_image(case: &Case) -> (Vec<u8>, usize) {
    let mut image = vec![0u8; REGION_SIZE];
    let (code, body, back) = native_code(case);
    image[..code.len()].copy_from_slice(&code);
    let at = |addr: u64| (addr - REGION) as usize;
    for (slot, target, selector) in [(FAR_TO_32, body, USER32_CS), (FAR_TO_64, back, USER64_CS)] {
        image[at(slot)..][..4].copy_from_slice(&((REGION + target as u64) as u32).to_le_bytes());
        image[at(slot) + 4..][..2].copy_from_slice(&selector.to_le_bytes());
    }
    case.initial.store(&mut image[at(IN)..at(IN) + BLOCK_LEN]);
    case.initial.x87.store(&mut image[at(FX_IN)..]);
    image[at(FX_IN) + 24..][..4].copy_from_slice(&case.initial.mxcsr.to_le_bytes());
    image[at(DATA)..][..DATA_LEN].copy_from_slice(&case.data);
    image[at(STACK_LOW)..at(STACK_HIGH)].copy_from_slice(&case.stack);
    // The native prologue loads RFLAGS through the stack slot below the top.
    image[at(STACK_TOP) - 8..at(STACK_TOP)].copy_from_slice(&case.initial.rflags.to_le_bytes());
    (image, body)
}

/// The outcome a region image holds after a run.
pub fn outcome_of(image: &[u8], regs: Registers) -> Outcome {
    let at = |addr: u64| (addr - REGION) as usize;
    Outcome {
        regs,
        data: image[at(DATA)..][..DATA_LEN].to_vec(),
        stack: image[at(STACK_LOW)..at(STACK_HIGH)].to_vec(),
    }
}

/// How a native run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NativeError {
    /// The host would not map, fork or run.
    Host(String),
    /// The child died (a signal or exit status) in case `case`.
    Died {
        /// The case it was running.
        case: usize,
        /// Its wait status.
        status: i32,
    },
}

/// Runs every case natively, in a child process so a mistake cannot take the
/// test down.
pub fn run_native(cases: &[Case]) -> Result<Vec<Outcome>, NativeError> {
    let slot = REGION_SIZE + BLOCK_LEN;
    let shared_len = slot * cases.len() + 8;
    // SAFETY: a fresh anonymous shared mapping; nothing else refers to it.
    let shared = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            shared_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if shared == libc::MAP_FAILED {
        return Err(NativeError::Host("mmap of the result area failed".into()));
    }
    let shared = shared.cast::<u8>();
    let images: Vec<(Vec<u8>, usize)> = cases.iter().map(region_image).collect();
    // SAFETY: fork; the child only maps memory, copies bytes, runs the
    // generated code and leaves with _exit, touching no lock another thread
    // may hold.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(NativeError::Host("fork failed".into()));
    }
    if pid == 0 {
        // SAFETY: in the child, as above.
        unsafe { native_child(&images, shared, slot) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let result = if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        let mut outcomes = Vec::with_capacity(cases.len());
        for k in 0..cases.len() {
            // SAFETY: inside the shared mapping, which the child filled.
            let bytes = unsafe { std::slice::from_raw_parts(shared.add(8 + k * slot), slot) };
            let mut regs = Registers::load(&bytes[REGION_SIZE..]);
            regs.x87 = X87Registers::load(&bytes[(FX_OUT - REGION) as usize..]);
            outcomes.push(outcome_of(&bytes[..REGION_SIZE], regs));
        }
        Ok(outcomes)
    } else {
        // SAFETY: the first 8 bytes hold the index of the case the child was at.
        let at = unsafe { shared.cast::<u64>().read() };
        Err(NativeError::Died {
            case: at as usize,
            status,
        })
    };
    // SAFETY: unmapping what we mapped; no references into it remain.
    unsafe { libc::munmap(shared.cast(), shared_len) };
    result
}

/// The child's side of [`run_native`]; never returns.
///
/// # Safety
/// Only in a freshly forked child; `shared` must hold `8 + slot * images.len()` bytes.
unsafe fn native_child(images: &[(Vec<u8>, usize)], shared: *mut u8, slot: usize) -> ! {
    // SAFETY: a fixed mapping at an address nothing in this process uses
    // (MAP_FIXED_NOREPLACE fails rather than replace anything).
    let region = unsafe {
        libc::mmap(
            REGION as *mut libc::c_void,
            REGION_SIZE,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if region as u64 != REGION {
        // SAFETY: leaving the child.
        unsafe { libc::_exit(3) };
    }
    let region = region.cast::<u8>();
    for (k, (image, _)) in images.iter().enumerate() {
        // SAFETY: the region and the shared area are ours and large enough;
        // the generated code keeps to the region (see the module notes) and
        // returns with the host's registers restored.
        unsafe {
            shared.cast::<u64>().write(k as u64);
            std::ptr::copy_nonoverlapping(image.as_ptr(), region, REGION_SIZE);
            let entry: extern "sysv64" fn() = std::mem::transmute(region);
            entry();
            let out = shared.add(8 + k * slot);
            std::ptr::copy_nonoverlapping(region, out, REGION_SIZE);
            std::ptr::copy_nonoverlapping(
                region.add((OUT - REGION) as usize),
                out.add(REGION_SIZE),
                BLOCK_LEN,
            );
        }
    }
    // SAFETY: leaving the child.
    unsafe { libc::_exit(0) }
}

/// Whether the host CPU is an Intel part (whose undefined flags the
/// interpreter follows).
pub fn host_is_intel() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|s| s.contains("GenuineIntel"))
}
