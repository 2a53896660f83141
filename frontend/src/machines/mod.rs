//! Machine definitions.

pub mod riscv_virt;

use thiserror::Error;

/// Names of the machines `--machine` accepts.
pub const MACHINES: &[&str] = &["riscv-virt"];

/// Errors building or starting a machine; each is one line for the user.
#[derive(Debug, Error)]
pub enum MachineError {
    /// `--machine` named nothing we have.
    #[error("unknown machine '{0}' (available: riscv-virt)")]
    UnknownMachine(String),
    /// The program image could not be loaded.
    #[error(transparent)]
    Load(#[from] firmware::loader::LoadError),
    /// Guest memory could not be created.
    #[error(transparent)]
    Memory(#[from] emu_core::memory::MemoryError),
    /// The address map is inconsistent.
    #[error(transparent)]
    Bus(#[from] emu_core::BusError),
    /// The device tree could not be built.
    #[error(transparent)]
    Fdt(#[from] firmware::fdt::FdtError),
    /// Something else about the setup, described in words.
    #[error("{0}")]
    Setup(String),
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest powered off with this exit code.
    PoweredOff(i32),
    /// The wall-clock limit passed.
    TimedOut,
    /// The host stopped the machine (console escape, signal).
    Stopped,
    /// The guest retired the instruction limit.
    InstructionLimit,
    /// A script saw everything it waited for.
    ScriptFinished,
    /// A script step's time ran out; says which.
    ScriptTimedOut(String),
}
