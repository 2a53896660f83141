//! PCI: functions, their configuration space, and a PCI Express host bridge.
//!
//! The parts, bus-agnostic in the vm-superio manner (none of them knows where it
//! is mapped):
//! - [`PciConfigSpace`] ([`config`]): the type-0 header a function embeds, with BAR
//!   sizing, the capability list and BAR decoding.
//! - [`Msix`] ([`msix`]): an MSI-X table and pending bits in a memory BAR.
//! - [`PciFunction`]: what a function model implements: configuration and BAR
//!   accesses, time, and the [`Device`] lifecycle.
//! - [`PciHost`] ([`host`]): a host bridge like QEMU's `gpex` on its `virt` boards:
//!   bus 0, the bridge itself at 00.0, functions at slots 1 to 31; on a PC the
//!   bridge at 00.0 is the [`I440fx`] ([`i440fx`]) with its PAM registers, and
//!   the [`Piix3`] ISA bridge ([`piix3`]) routes PCI interrupts to ISA IRQs. It answers an
//!   ECAM window, a memory window and an I/O window, swizzles INTx onto four
//!   lines and hands functions an [`MsiTarget`] for MSI-X.
//! - Thin adapters put a shared host on a bus: [`PciEcamWindow`],
//!   [`PciMmioWindow`] (used for the 32-bit and the 64-bit window), [`PciPioWindow`]
//!   (the I/O window as memory, for CPUs without port I/O), and for CPUs with port
//!   I/O [`PciPioPorts`] and the `0xcf8`/`0xcfc` [`PciConfigPorts`].
//!
//! Virtio over PCI is [`crate::virtio::VirtioPci`], a [`PciFunction`].
//!
//! # Wiring into a machine (riscv-virt, as QEMU lays it out)
//!
//! ```
//! use std::sync::Arc;
//! use devices::pci::{PciHost, SharedPciHost};
//! use devices::virtio::{GuestMemoryHandle, VirtioPci, VirtioRng};
//! use emu_core::{Bus, GuestPhysAddr, GuestRam, IrqLine, RunControl};
//!
//! struct Line; // in a machine: `plic.source(32 + n)`
//! impl IrqLine for Line {
//!     fn set_level(&self, _high: bool) {}
//! }
//!
//! let ram = Arc::new(GuestRam::new(16 << 20).unwrap());
//! let mem = GuestMemoryHandle::new(ram.clone(), 0x8000_0000).unwrap();
//! let mut bus = Bus::new(GuestPhysAddr(0x8000_0000), ram, Arc::new(RunControl::new())).unwrap();
//! // INTA..INTD, and no MSI controller (riscv-virt without an IMSIC).
//! let lines: [Box<dyn IrqLine>; 4] = std::array::from_fn(|_| Box::new(Line) as Box<dyn IrqLine>);
//! let mut host = PciHost::new(lines, None);
//! let rng = VirtioPci::new(Box::new(VirtioRng::from_host()), mem).unwrap();
//! assert_eq!(host.add(Box::new(rng)).unwrap(), 1);
//! let host = SharedPciHost::new(host);
//! // The ECAM window owns the host's lifecycle (reset, save, restore, tick).
//! bus.map_mmio("pcie-ecam", GuestPhysAddr(0x3000_0000), 0x1000_0000, Box::new(host.ecam_window()))
//!     .unwrap();
//! bus.map_mmio("pcie-pio", GuestPhysAddr(0x0300_0000), 0x1_0000, Box::new(host.pio_window()))
//!     .unwrap();
//! for (name, base, size) in [
//!     ("pcie-mmio", 0x4000_0000, 0x4000_0000),
//!     ("pcie-mmio-high", 0x4_0000_0000, 0x4_0000_0000),
//! ] {
//!     bus.map_mmio(name, GuestPhysAddr(base), size, Box::new(host.mmio_window(base))).unwrap();
//! }
//! // 00.0 is the host bridge, 00:01.0 the entropy device.
//! assert_eq!(bus.read(GuestPhysAddr(0x3000_0000), 4), Ok(0x0008_1b36));
//! assert_eq!(bus.read(GuestPhysAddr(0x3000_8000), 4), Ok(0x1005_1af4));
//! assert_eq!(bus.read(GuestPhysAddr(0x3001_0000), 4), Ok(0xffff_ffff));
//! ```
//!
//! # One lifecycle for the whole host
//!
//! Every adapter is a [`Device`] on the bus, but the host and its functions must be
//! reset, saved and restored once. So exactly one adapter *owns* the lifecycle
//! ([`Lifecycle::Owner`]): the ECAM window by default. Its `reset`, `save_state`,
//! `restore_state` and `tick` act on the whole host; the other adapters
//! ([`Lifecycle::Follower`]) do nothing there and save an empty state. A machine
//! without ECAM (an x86 PC using `0xcf8` only) makes that adapter the owner with
//! `with_lifecycle(Lifecycle::Owner)`.

/// The bits an access of `size` bytes (1, 2, 4 or 8) carries.
pub(crate) fn ones64(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// The offset of an access of `len` bytes at `port` into a fixed window of
/// `size` ports at `base`, when the access falls inside it entirely: how a
/// function decodes I/O ports of its own beside its BARs (the PIIX4's PMBASE
/// and APM ports, the IDE and VGA legacy ports).
pub(crate) fn window_offset(port: u64, len: u64, base: u64, size: u64) -> Option<u64> {
    let into = port.checked_sub(base)?;
    (into < size && size - into >= len).then_some(into)
}

/// The [`Device`] and [`PciFunction`] of a function that is nothing but its
/// configuration space (a bridge: no BARs, no interrupt): reset and saved
/// state are the configuration space's, BAR accesses read as all ones.
/// `$model` has a `config: PciConfigSpace` field. With a fourth argument,
/// `$apply(&mut self)` runs after every configuration write, reset and
/// restore, for a function whose registers steer the machine (PAM, PIRQ
/// routing).
macro_rules! config_only_function {
    ($model:ty, $kind:expr, $version:expr) => {
        $crate::pci::config_only_function!($model, $kind, $version, |_: &mut $model| {});
    };
    ($model:ty, $kind:expr, $version:expr, $apply:expr) => {
        impl emu_core::Device for $model {
            fn reset(&mut self) {
                self.config.reset();
                ($apply)(self);
            }

            fn save_state(&self) -> emu_core::DeviceState {
                emu_core::DeviceState::encode($kind, $version, &self.config.state())
            }

            fn restore_state(
                &mut self,
                state: &emu_core::DeviceState,
            ) -> Result<(), emu_core::StateError> {
                let config: $crate::pci::PciConfigState = state.decode($kind, $version)?;
                self.config
                    .restore(&config)
                    .map_err(|reason| $crate::state::invalid($kind, reason))?;
                ($apply)(self);
                Ok(())
            }
        }

        impl $crate::pci::PciFunction for $model {
            fn config(&self) -> &$crate::pci::PciConfigSpace {
                &self.config
            }

            fn config_write(&mut self, offset: u16, size: u8, value: u32) {
                self.config.write(offset, size, value);
                ($apply)(self);
            }

            fn bar_read(&mut self, _bar: usize, _offset: u64, size: u8) -> u64 {
                if size >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (u32::from(size) * 8)) - 1
                }
            }

            fn bar_write(&mut self, _bar: usize, _offset: u64, _size: u8, _value: u64) {}
        }
    };
}
pub(crate) use config_only_function;

pub mod config;
pub mod host;
pub mod i440fx;
pub mod msix;
pub mod piix3;
pub mod piix4_pm;
pub mod piix_ide;
pub mod std_vga;

use std::sync::Arc;

use emu_core::{Device, IrqLine, MsiTarget};
use thiserror::Error;

pub use config::{Bar, BarKind, PciConfigSpace, PciConfigState, PciIds};
pub use host::{
    Lifecycle, PciConfigPorts, PciEcamWindow, PciHost, PciHostBridge, PciMmioWindow, PciPioPorts,
    PciPioWindow, SharedPciHost,
};
pub use i440fx::{I440fx, PamMode};
pub use msix::{Msix, MsixEntry, MsixState};
pub use piix_ide::PiixIde;
pub use piix3::{Piix3, PirqRouter};
pub use piix4_pm::Piix4Pm;
pub use std_vga::StdVga;

/// Errors building PCI functions and the host: configuration mistakes of the
/// machine definition, never guest actions.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PciError {
    /// A BAR declaration is impossible.
    #[error("BAR {index}: {reason}")]
    BadBar {
        /// The BAR.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The capability list has no room left in the first 256 bytes.
    #[error("no room for a {len}-byte capability in configuration space")]
    CapabilitiesFull {
        /// Length of the capability that did not fit.
        len: usize,
    },
    /// The MSI-X layout is impossible.
    #[error("MSI-X: {0}")]
    BadMsix(String),
    /// The slot does not exist (functions go at slots 1 to 31).
    #[error("PCI slot {0} does not exist (devices go at slots 1 to 31)")]
    BadSlot(u8),
    /// The slot already holds a function.
    #[error("PCI slot {0} is taken")]
    SlotTaken(u8),
    /// Every slot is taken.
    #[error("no free PCI slot on bus 0")]
    NoFreeSlot,
}

/// The interrupt wiring a host hands a function when it is plugged in.
#[derive(Default)]
pub struct PciInterrupts {
    /// The function's INTx pin, already routed (swizzled) to one of the host's
    /// lines; `None` when the function has no pin.
    pub intx: Option<Box<dyn IrqLine>>,
    /// Where MSI-X messages go; `None` when the machine has no MSI controller.
    pub msi: Option<Arc<dyn MsiTarget>>,
}

impl std::fmt::Debug for PciInterrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciInterrupts")
            .field("intx", &self.intx.is_some())
            .field("msi", &self.msi.is_some())
            .finish()
    }
}

/// A PCI function (type-0 header) behind a [`PciHost`].
///
/// Offsets are into the function's configuration space, or into one of its BARs;
/// the host decodes addresses with [`PciFunction::config`]. Nothing here may
/// panic on any offset, size or value: all of them come from the guest.
///
/// The [`Device`] lifecycle covers the configuration space too: `reset` puts it
/// back to power-on (BARs unprogrammed, decoding off) and drives INTx low, and
/// `restore_state` drives INTx to the restored level even when it seems unchanged
/// ([`PciIntx::redrive`]), since the host rebuilt its shared lines apart.
pub trait PciFunction: Device {
    /// The configuration space, for the host's BAR decoding and interrupt routing.
    fn config(&self) -> &PciConfigSpace;

    /// A configuration read of `size` bytes (1, 2 or 4) at `offset`.
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.config().read(offset, size)
    }

    /// A configuration write of the low `size` bytes of `value` at `offset`.
    fn config_write(&mut self, offset: u16, size: u8, value: u32);

    /// The window and offset an I/O access at `port` of `len` bytes falls in:
    /// by default one of the function's enabled I/O BARs. Functions with I/O
    /// windows of their own (the PIIX4's PMBASE) add them with indexes above
    /// the BARs'.
    fn decode_pio(&self, port: u64, len: u64) -> Option<(usize, u64)> {
        self.config().decode_pio(port, len)
    }

    /// A read of `size` bytes (1, 2, 4 or 8) at `offset` into BAR `bar`.
    fn bar_read(&mut self, bar: usize, offset: u64, size: u8) -> u64;

    /// A write of the low `size` bytes of `value` at `offset` into BAR `bar`.
    fn bar_write(&mut self, bar: usize, offset: u64, size: u8, value: u64);

    /// Advances device time to `now`, as [`emu_core::MmioDevice::tick`] does.
    fn tick(&mut self, _now: u64) -> Option<u64> {
        None
    }

    /// Takes the interrupt wiring the host made for this function's slot.
    fn connect_interrupts(&mut self, _interrupts: PciInterrupts) {}
}

/// A function's INTx output: the routed line and its level, driven from the
/// function's interrupt state, the command register's INTX_DISABLE bit and the
/// status register's interrupt bit kept in step.
#[derive(Default)]
pub struct PciIntx {
    line: Option<Box<dyn IrqLine>>,
    level: bool,
}

impl std::fmt::Debug for PciIntx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciIntx")
            .field("connected", &self.line.is_some())
            .field("level", &self.level)
            .finish()
    }
}

impl PciIntx {
    /// Takes the line the host routed; it starts low.
    pub fn connect(&mut self, line: Option<Box<dyn IrqLine>>) {
        self.line = line;
        self.level = false;
    }

    /// Whether the line is driven high now.
    pub fn level(&self) -> bool {
        self.level
    }

    /// The function wants an interrupt (`pending`) or not: mirrors it in the
    /// status register and drives the line, unless software set INTX_DISABLE.
    pub fn update(&mut self, config: &mut PciConfigSpace, pending: bool) {
        config.set_interrupt_status(pending);
        let level = pending && !config.intx_disabled();
        if level != self.level {
            self.drive(level);
        }
    }

    /// As [`PciIntx::update`], driving the line even when its level seems
    /// unchanged (after a restore or a host reset, when the line was reset apart).
    pub fn redrive(&mut self, config: &mut PciConfigSpace, pending: bool) {
        config.set_interrupt_status(pending);
        let level = pending && !config.intx_disabled();
        self.drive(level);
    }

    fn drive(&mut self, level: bool) {
        self.level = level;
        if let Some(line) = &self.line {
            line.set_level(level);
        }
    }
}
