//! CPU models: which generation of x86 a [`crate::Cpu`] behaves as.
//!
//! The instruction set grew over forty years and some behaviour changed on the
//! way (what PUSHF stores in bits 12–15, how long an instruction may be, which
//! opcodes exist). A model names those differences; the interpreter asks the
//! model rather than hard-coding one generation.

/// The generation a model belongs to, for behaviour that changed between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generation {
    /// The 80286: 24-bit physical addresses, 16-bit registers, real and 16-bit
    /// protected mode.
    I286,
    /// A 64-bit processor of today.
    X86_64,
}

/// Who made the part: CPUID's vendor string, and the few places where AMD and
/// Intel processors behave differently (SYSCALL and SYSRET outside 64-bit
/// mode, SYSENTER in long mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// GenuineIntel.
    Intel,
    /// AuthenticAMD.
    Amd,
}

/// The optional features a model has: CPUID advertises exactly these, and
/// an instruction of a feature the model lacks raises #UD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features(u64);

#[allow(missing_docs, reason = "named as in CPUID and the SDM")]
impl Features {
    pub const FPU: Features = Features(1 << 0);
    pub const TSC: Features = Features(1 << 1);
    pub const CX8: Features = Features(1 << 2);
    pub const SEP: Features = Features(1 << 3);
    pub const CMOV: Features = Features(1 << 4);
    pub const CLFSH: Features = Features(1 << 5);
    pub const MMX: Features = Features(1 << 6);
    pub const FXSR: Features = Features(1 << 7);
    pub const SSE: Features = Features(1 << 8);
    pub const SSE2: Features = Features(1 << 9);
    pub const SSE3: Features = Features(1 << 10);
    pub const SSSE3: Features = Features(1 << 11);
    pub const SSE4_1: Features = Features(1 << 12);
    pub const SSE4_2: Features = Features(1 << 13);
    pub const CX16: Features = Features(1 << 14);
    pub const POPCNT: Features = Features(1 << 15);
    pub const LZCNT: Features = Features(1 << 16);
    pub const LAHF_LM: Features = Features(1 << 17);
    pub const SYSCALL: Features = Features(1 << 18);
    pub const NX: Features = Features(1 << 19);
    pub const PAGE1GB: Features = Features(1 << 20);
    pub const RDTSCP: Features = Features(1 << 21);
    pub const LM: Features = Features(1 << 22);
    pub const SMEP: Features = Features(1 << 23);
    pub const SMAP: Features = Features(1 << 24);
    pub const UMIP: Features = Features(1 << 25);
    pub const RDPID: Features = Features(1 << 26);
    /// PSE, MSR, PAE, MTRR, PGE, PAT, PSE-36: the paging and MSR features
    /// every 64-bit part has.
    pub const PAGING: Features = Features(1 << 27);
    pub const FSGSBASE: Features = Features(1 << 28);
    /// Process-context identifiers (CR4.PCIDE) with INVPCID.
    pub const PCID: Features = Features(1 << 29);
    /// XSAVE, XRSTOR, XGETBV, XSETBV for the x87 and SSE state.
    pub const XSAVE: Features = Features(1 << 30);
    /// Protection keys for user pages (CR4.PKE, PKRU, RDPKRU/WRPKRU).
    pub const PKU: Features = Features(1 << 31);
    /// ANDN, BEXTR, BLSI, BLSMSK, BLSR and TZCNT (which is REP BSF without it).
    pub const BMI1: Features = Features(1 << 32);
    /// BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX.
    pub const BMI2: Features = Features(1 << 33);
    pub const NONE: Features = Features(0);

    /// Both sets.
    pub const fn with(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// Whether every feature of `other` is here.
    pub const fn has(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The x86-64 baseline every 64-bit part has (psABI level 1).
    pub const X86_64_V1: Features = Features::FPU
        .with(Features::TSC)
        .with(Features::CX8)
        .with(Features::SEP)
        .with(Features::CMOV)
        .with(Features::CLFSH)
        .with(Features::MMX)
        .with(Features::FXSR)
        .with(Features::SSE)
        .with(Features::SSE2)
        .with(Features::SYSCALL)
        .with(Features::NX)
        .with(Features::LM)
        .with(Features::PAGING);

    /// psABI level 2, the baseline current distributions build for.
    pub const X86_64_V2: Features = Features::X86_64_V1
        .with(Features::CX16)
        .with(Features::LAHF_LM)
        .with(Features::POPCNT)
        .with(Features::SSE3)
        .with(Features::SSSE3)
        .with(Features::SSE4_1)
        .with(Features::SSE4_2);
}

/// A CPU model, chosen with `--cpu NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// The name `--cpu` takes.
    pub name: &'static str,
    /// Its generation.
    pub generation: Generation,
    /// Its maker.
    pub vendor: Vendor,
    /// CPUID's family, model and stepping.
    pub signature: (u8, u8, u8),
    /// What it has beyond the base instruction set of its generation.
    pub features: Features,
    /// Physical address lines (24 on the 286).
    pub address_bits: u8,
    /// Longest instruction, prefixes included (10 bytes on the 286, 15
    /// later); longer ones raise #GP, as the recorded 286 does too.
    pub max_instruction_len: u8,
    /// Whether an x87 is attached; without one, ESC instructions do nothing
    /// (unless CR0.EM asks for #NM), as on a 286 board with an empty socket.
    pub has_fpu: bool,
}

impl CpuModel {
    /// An 80286 (the Harris 80C286 the conformance data was recorded on),
    /// without a coprocessor.
    pub const I286: CpuModel = CpuModel {
        name: "286",
        generation: Generation::I286,
        vendor: Vendor::Intel,
        signature: (2, 0, 0),
        features: Features::NONE,
        address_bits: 24,
        max_instruction_len: 10,
        has_fpu: false,
    };

    /// The default: an Intel part with the x86-64-v2 baseline (what current
    /// distributions require) and the protection features kernels probe
    /// for, as QEMU's `x86-64-v2` model.
    pub const X86_64_V2: CpuModel = CpuModel {
        name: "x86-64-v2",
        generation: Generation::X86_64,
        vendor: Vendor::Intel,
        // Family 6, model 0x1a: a Nehalem, the first part with SSE4.2.
        signature: (6, 0x1a, 3),
        features: Features::X86_64_V2,
        address_bits: 40,
        max_instruction_len: 15,
        has_fpu: true,
    };

    /// Everything this interpreter implements, as QEMU's `max` is everything
    /// its accelerator can do. It grows as the interpreter does.
    pub const MAX: CpuModel = CpuModel {
        name: "max",
        generation: Generation::X86_64,
        vendor: Vendor::Intel,
        // Family 6, model 0x55 (a Xeon-class part), stepping 4.
        signature: (6, 0x55, 4),
        features: Features::X86_64_V2
            .with(Features::LZCNT)
            .with(Features::PAGE1GB)
            .with(Features::RDTSCP)
            .with(Features::SMEP)
            .with(Features::SMAP)
            .with(Features::UMIP)
            .with(Features::RDPID)
            .with(Features::FSGSBASE)
            .with(Features::PCID)
            .with(Features::XSAVE)
            .with(Features::PKU)
            .with(Features::BMI1)
            .with(Features::BMI2),
        address_bits: 40,
        max_instruction_len: 15,
        has_fpu: true,
    };

    /// An AMD part (a Phenom-class Opteron): AMD's vendor string and its
    /// system-call rules (SYSCALL and SYSRET outside 64-bit mode, no
    /// SYSENTER in long mode), the x86-64-v2 features plus LZCNT, 1 GiB
    /// pages and RDTSCP.
    pub const OPTERON: CpuModel = CpuModel {
        name: "opteron",
        generation: Generation::X86_64,
        vendor: Vendor::Amd,
        // Family 0x10 (K10), model 2, stepping 3.
        signature: (0x10, 2, 3),
        features: Features::X86_64_V2
            .with(Features::LZCNT)
            .with(Features::PAGE1GB)
            .with(Features::RDTSCP),
        address_bits: 40,
        max_instruction_len: 15,
        has_fpu: true,
    };

    /// The model a machine gets without `--cpu`.
    pub const DEFAULT: CpuModel = CpuModel::X86_64_V2;

    /// Every model, by name.
    pub const ALL: &'static [CpuModel] = &[
        CpuModel::I286,
        CpuModel::X86_64_V2,
        CpuModel::MAX,
        CpuModel::OPTERON,
    ];

    /// The model called `name`.
    pub fn by_name(name: &str) -> Option<CpuModel> {
        CpuModel::ALL.iter().find(|m| m.name == name).copied()
    }

    /// The FLAGS bits software can never set in real mode: on the 286 IOPL,
    /// NT and bit 15 always read as zero there.
    pub fn real_mode_fixed_zero_flags(&self) -> u64 {
        match self.generation {
            Generation::I286 => 0xf000,
            Generation::X86_64 => 0x8000,
        }
    }

    /// The FLAGS bits above the 286's that POPF and IRET write: AC (the 486
    /// on) and ID (whose toggling is how software finds CPUID).
    pub fn extended_flags(&self) -> u64 {
        match self.generation {
            Generation::I286 => 0,
            Generation::X86_64 => crate::state::flags::AC | crate::state::flags::ID,
        }
    }

    /// How OF comes out of multi-bit shifts and rotates.
    pub fn shift_overflow(&self) -> crate::flags::ShiftOverflow {
        match self.generation {
            Generation::I286 => crate::flags::ShiftOverflow::LastStep,
            Generation::X86_64 => crate::flags::ShiftOverflow::FirstStep,
        }
    }

    /// The mask applied to every physical address.
    pub fn physical_mask(&self) -> u64 {
        (1u64 << self.address_bits) - 1
    }
}
