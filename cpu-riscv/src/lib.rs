//! A RISC-V RV64GC hart for Turing.
//!
//! RV64IMAFDC with Zicsr, Zifencei and Zicntr; machine, supervisor and user modes;
//! Sv39, Sv48 and Sv57 translation. The interpreter decodes each instruction
//! location once into a per-page cache ([`decode`]) and then executes from the
//! cache; stores that hit a page holding decoded code invalidate exactly the
//! affected slots, and `fence.i` drops them all.
//!
//! Each [`Hart`] is driven by its owner through [`Hart::run`] with an instruction
//! budget; the machine definition decides how harts share host threads.
#![deny(missing_docs)]

pub mod csr;
pub mod debug;
pub mod decode;
mod exec;
pub mod fpu;
pub mod gdb;
pub mod hart;
pub mod jit;
pub mod mmu;
#[cfg(any(test, feature = "test-asm"))]
#[doc(hidden)]
pub mod test_asm;
pub mod trap;

pub use hart::{
    Hart, HartIrqLine, HartPins, HartState, PRIV_M, PRIV_S, PRIV_U, RunExit, TraceEntry,
};
pub use trap::Trap;
