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

/// A CPU model, chosen with `--cpu NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// The name `--cpu` takes.
    pub name: &'static str,
    /// Its generation.
    pub generation: Generation,
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
        address_bits: 24,
        max_instruction_len: 10,
        has_fpu: false,
    };

    /// Everything this interpreter implements, as QEMU's `max` is everything
    /// its accelerator can do. It grows as the interpreter does: today the
    /// integer instruction set in real mode and flat 32- and 64-bit code.
    pub const MAX: CpuModel = CpuModel {
        name: "max",
        generation: Generation::X86_64,
        address_bits: 40,
        max_instruction_len: 15,
        has_fpu: true,
    };

    /// Every model, by name.
    pub const ALL: &'static [CpuModel] = &[CpuModel::I286, CpuModel::MAX];

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
