//! Device models. Each model sees only offsets into its own register window and
//! signals interrupts through [`emu_core::IrqLine`]s; machine definitions map them
//! onto a bus and wire the lines.
#![deny(missing_docs)]

pub mod acpi_hotplug;
pub mod acpi_pm;
pub mod apic;
pub mod block;
pub mod clint;
pub mod debugcon;
pub mod framebuffer;
pub mod fw_cfg;
pub mod goldfish_rtc;
pub mod i8042;
pub mod i8254;
pub mod i8259;
pub mod ide;
pub mod isa_debug_exit;
pub mod mc146818;
pub mod net;
pub mod pc_ports;
pub mod pci;
pub mod plic;
pub mod port_window;
pub mod post_port;
pub mod sifive_test;
mod state;
#[cfg(test)]
mod testing;
pub mod uart16550;
pub mod vga;
pub mod virtio;

pub use acpi_pm::AcpiPm;
pub use block::{BlkError, BlockBackend, open_raw};
pub use clint::Clint;
pub use debugcon::DebugCon;
pub use framebuffer::{Framebuffer, FramebufferHandle};
pub use fw_cfg::FwCfg;
pub use goldfish_rtc::GoldfishRtc;
pub use i8042::{I8042, I8042Ports};
pub use i8254::{I8254, PitPorts, SpeakerPort};
pub use i8259::{I8259, PicPorts};
pub use ide::{IdeChannel, IdeDrive};
pub use isa_debug_exit::IsaDebugExit;
pub use mc146818::Mc146818;
pub use pc_ports::{A20Gate, ResetControl, SystemControlA, WithResetControl};
pub use plic::Plic;
pub use port_window::PortWindow;
pub use post_port::PostPort;
pub use sifive_test::SifiveTest;
pub use uart16550::Uart16550;
pub use vga::{Vga, VgaHandle, VgaMemoryWindow};
