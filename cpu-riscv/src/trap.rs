//! Architectural exceptions and interrupts, as they travel through the interpreter.
//!
//! These are guest events, not host errors: they carry the cause and the trap value
//! (`xtval`) and are delivered to the guest's trap handler.

/// Exception cause codes (`mcause` with the interrupt bit clear).
#[allow(missing_docs, reason = "names are the privileged spec's cause names")]
pub mod cause {
    pub const INSTRUCTION_MISALIGNED: u64 = 0;
    pub const INSTRUCTION_ACCESS_FAULT: u64 = 1;
    pub const ILLEGAL_INSTRUCTION: u64 = 2;
    pub const BREAKPOINT: u64 = 3;
    pub const LOAD_MISALIGNED: u64 = 4;
    pub const LOAD_ACCESS_FAULT: u64 = 5;
    pub const STORE_MISALIGNED: u64 = 6;
    pub const STORE_ACCESS_FAULT: u64 = 7;
    pub const ECALL_FROM_U: u64 = 8;
    pub const ECALL_FROM_S: u64 = 9;
    pub const ECALL_FROM_M: u64 = 11;
    pub const INSTRUCTION_PAGE_FAULT: u64 = 12;
    pub const LOAD_PAGE_FAULT: u64 = 13;
    pub const STORE_PAGE_FAULT: u64 = 15;
}

/// Interrupt numbers (bit positions in mip/mie).
#[allow(
    missing_docs,
    reason = "names are the privileged spec's interrupt names"
)]
pub mod irq {
    pub const SSI: u64 = 1;
    pub const MSI: u64 = 3;
    pub const STI: u64 = 5;
    pub const MTI: u64 = 7;
    pub const SEI: u64 = 9;
    pub const MEI: u64 = 11;
}

/// Trap value placeholder meaning "the bits of the instruction at pc", filled in
/// when the trap is taken so the hot path need not carry raw instruction bits.
pub(crate) const TVAL_INSTRUCTION_BITS: u64 = u64::MAX;

/// A synchronous exception raised by an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trap {
    /// The cause code.
    pub cause: u64,
    /// The trap value written to `xtval`.
    pub tval: u64,
}

impl Trap {
    /// An exception with the given cause and trap value.
    pub const fn new(cause: u64, tval: u64) -> Trap {
        Trap { cause, tval }
    }

    /// Illegal instruction; `xtval` receives the instruction's bits.
    pub const fn illegal() -> Trap {
        Trap::new(cause::ILLEGAL_INSTRUCTION, TVAL_INSTRUCTION_BITS)
    }
}

/// The privileged spec's name for `cause` (an `xcause` value, interrupt bit included).
pub fn cause_name(cause: u64) -> &'static str {
    if cause >> 63 != 0 {
        return match cause & 0x3f {
            irq::SSI => "supervisor software interrupt",
            irq::MSI => "machine software interrupt",
            irq::STI => "supervisor timer interrupt",
            irq::MTI => "machine timer interrupt",
            irq::SEI => "supervisor external interrupt",
            irq::MEI => "machine external interrupt",
            _ => "reserved interrupt",
        };
    }
    match cause {
        cause::INSTRUCTION_MISALIGNED => "instruction address misaligned",
        cause::INSTRUCTION_ACCESS_FAULT => "instruction access fault",
        cause::ILLEGAL_INSTRUCTION => "illegal instruction",
        cause::BREAKPOINT => "breakpoint",
        cause::LOAD_MISALIGNED => "load address misaligned",
        cause::LOAD_ACCESS_FAULT => "load access fault",
        cause::STORE_MISALIGNED => "store/AMO address misaligned",
        cause::STORE_ACCESS_FAULT => "store/AMO access fault",
        cause::ECALL_FROM_U => "environment call from U-mode",
        cause::ECALL_FROM_S => "environment call from S-mode",
        cause::ECALL_FROM_M => "environment call from M-mode",
        cause::INSTRUCTION_PAGE_FAULT => "instruction page fault",
        cause::LOAD_PAGE_FAULT => "load page fault",
        cause::STORE_PAGE_FAULT => "store/AMO page fault",
        _ => "reserved exception",
    }
}
