//! The machine-independent heart of Turing.
//!
//! Guest RAM and ROM ([`memory`]), the physical address map ([`bus`]), the traits
//! device models implement ([`device`]), virtual time ([`clock`]) and the machine
//! configuration shared by the CLI and TOML files ([`config`]). Nothing here knows
//! which CPU architecture runs on top: RISC-V and x86 machines are both built from
//! these parts.
#![deny(missing_docs)]

pub mod addr;
pub mod bus;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod debug;
pub mod device;
pub mod irq;
pub mod memory;
pub mod switchable;
pub mod sync;

pub use addr::{GuestPhysAddr, PioPort};
pub use bus::{Bus, BusError, BusFault};
pub use clock::VirtualClock;
pub use device::{Device, DeviceState, MmioDevice, PioDevice, RunControl, StateError, StopReason};
pub use irq::{
    CpuSignal, InterruptAcknowledge, IrqFanout, IrqInput, IrqLine, LocalApicPort, MsiMessage,
    MsiTarget, Trigger,
};
pub use memory::{CodeWriteInbox, GuestRam, SharedPages};
