//! An x86 CPU for Turing.
//!
//! The interpreter decodes each instruction location once (with `iced-x86`)
//! into a compact record ([`decode::Insn`]) kept in a per-page cache, and runs
//! from the cache; stores to a page that holds decoded code drop the page.
//! Behaviour that differs between generations of the architecture comes from
//! the [`CpuModel`].
//!
//! It runs real mode as an 80286 does, protected mode with segmentation,
//! gates, tasks and virtual-8086 mode, paging, and long mode; the integer
//! instruction set, system instructions, the x87 and SSE to SSE4.2. MMX is not
//! here yet. Three oracles check it (see the README): recorded 286 silicon,
//! the host CPU, and self-checking system programs that also run on QEMU.
#![deny(missing_docs)]

mod atomic;
mod bitops;
mod bmi;
pub mod cpu;
pub mod cpuid;
pub mod debug;
pub mod decode;
pub mod events;
mod exec;
pub mod flags;
mod gdb;
pub mod mmu;
mod mmx;
pub mod model;
pub mod simd;
pub mod sse4;
pub mod sse42;
pub mod sse_float;
pub mod state;
mod sysinsn;
pub mod system;
mod task;
pub mod x87;
mod x87_env;
pub mod x87_float;
pub mod xsave;

pub use cpu::{A20Line, Cpu, Fault, RunExit};
pub use model::{CpuModel, Features, Generation, Vendor};
pub use state::{CpuState, SegReg, Segment};
