//! An x86 CPU for Turing.
//!
//! The interpreter decodes each instruction location once (with `iced-x86`)
//! into a compact record ([`decode::Insn`]) kept in a per-page cache, and runs
//! from the cache; stores to a page that holds decoded code drop the page.
//! Behaviour that differs between generations of the architecture comes from
//! the [`CpuModel`].
//!
//! Today it runs real mode as an 80286 does, checked instruction by
//! instruction against recorded silicon (the `x86_conformance_286` test).
#![deny(missing_docs)]

mod bitops;
pub mod cpu;
pub mod cpuid;
pub mod decode;
pub mod events;
mod exec;
pub mod flags;
pub mod mmu;
pub mod model;
pub mod simd;
pub mod sse_float;
pub mod state;
mod sysinsn;
pub mod system;
mod task;

pub use cpu::{Cpu, Fault, RunExit};
pub use model::{CpuModel, Generation};
pub use state::{CpuState, SegReg, Segment};
