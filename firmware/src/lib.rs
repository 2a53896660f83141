//! What platform firmware does for a guest: loading program images into guest
//! memory ([`loader`]), preparing an x86 Linux kernel by its boot protocol
//! ([`x86_linux`]), describing the machine in a device tree ([`fdt`]), and the
//! built-in demo guest ([`DEMO_GUEST`]).
#![deny(missing_docs)]

pub mod fdt;
pub mod loader;
pub mod multiboot;
pub mod x86_linux;

/// The built-in demo guest: a raw RV64GC program for riscv-virt that prints a
/// banner and runs a tiny interactive shell on the serial console. Source and build
/// script are in `firmware/demo/`; a test rebuilds it and compares the bytes.
pub static DEMO_GUEST: &[u8] = include_bytes!("../demo/demo.bin");

/// Turing's own M-mode SBI firmware (`firmware/sbi/`: SBI v2.0 base, TIME, IPI,
/// RFENCE, HSM, SRST, DBCN and the legacy console), booted before a Linux kernel when
/// no `--bios` is given. A test rebuilds it from source and compares the bytes.
pub static SBI_FIRMWARE: &[u8] = include_bytes!("../sbi/turing-sbi.bin");
