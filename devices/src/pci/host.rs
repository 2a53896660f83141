//! A PCI Express host bridge like QEMU's `gpex` (the `virt` boards' PCIe host).
//!
//! One bus (bus 0): the host bridge function at 00.0 with QEMU's IDs, devices at
//! slots 1 to 31, each with function 0 and, for multi-function devices (a
//! PC's PIIX3 at slot 1), functions 1 to 7. The host serves three windows:
//! - ECAM: `offset = bus << 20 | device << 15 | function << 12 | register`;
//!   functions that are not there read as all ones and ignore writes.
//! - Memory: accesses carry guest-physical addresses (each [`PciMmioWindow`]
//!   knows its base), and go to the function whose enabled memory BAR covers them
//!   entirely.
//! - I/O: BAR values are port numbers, port 0 at the window's base, as Linux
//!   assigns them from QEMU's `ranges`.
//!
//! What no function decodes reads as all ones and drops writes, as on PCI (a
//! master abort).
//!
//! INTx: a function's pin is swizzled by its slot onto one of four lines, INTA to
//! INTD, as QEMU's gpex does: `line = (slot + pin - 1) % 4` with pin 1 = INTA. On
//! QEMU's riscv-virt those lines are PLIC sources 32 to 35. Lines are level
//! triggered and shared: a line is high while any function on it asserts.
//!
//! MSI-X: the host hands each function the machine's [`MsiTarget`], if any.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use emu_core::sync::LockRecover;
use emu_core::{
    BusFault, Device, DeviceState, IrqLine, MmioDevice, MsiTarget, PioDevice, StateError,
};
use serde::{Deserialize, Serialize};

use super::config::{PciConfigSpace, PciIds};
use super::{PciError, PciFunction, PciInterrupts, ones64};
use crate::state::{NoState, invalid};

/// Slots on bus 0 (slot 0 is the host bridge).
pub const SLOTS: usize = 32;
/// Functions per slot.
pub const FUNCTIONS: usize = 8;
/// INTx lines out of the host: INTA, INTB, INTC, INTD.
pub const INTX_LINES: usize = 4;
/// Size of an ECAM window covering all 256 buses.
pub const ECAM_SIZE: u64 = 256 << 20;
/// ECAM offset bits selecting the bus.
pub const ECAM_BUS_SHIFT: u32 = 20;
/// ECAM offset bits selecting the device (slot).
pub const ECAM_DEVICE_SHIFT: u32 = 15;
/// ECAM offset bits selecting the function.
pub const ECAM_FUNCTION_SHIFT: u32 = 12;
/// Configuration space reachable per function through ECAM.
const ECAM_FUNCTION_SIZE: u64 = 0x1000;

/// The host bridge's vendor ID (Red Hat, as QEMU's gpex).
pub const HOST_BRIDGE_VENDOR_ID: u16 = 0x1b36;
/// The host bridge's device ID (QEMU's PCIe host bridge).
pub const HOST_BRIDGE_DEVICE_ID: u16 = 0x0008;
/// Class code of a host bridge.
pub const HOST_BRIDGE_CLASS: u32 = 0x06_00_00;
/// Subsystem vendor QEMU gives devices without their own (Red Hat / Qumranet).
pub const QEMU_SUBSYSTEM_VENDOR_ID: u16 = 0x1af4;
/// Subsystem ID QEMU gives devices without their own.
pub const QEMU_SUBSYSTEM_ID: u16 = 0x1100;

/// `0xcf8` address register: enable bit.
const CONFIG_ADDRESS_ENABLE: u32 = 1 << 31;
/// Ports of the configuration mechanism #1 (`0xcf8` address, `0xcfc` data).
pub const CONFIG_PORTS_SIZE: u32 = 8;
const CONFIG_DATA: u16 = 4;

/// Model names and layout versions in saved states.
const HOST_KIND: &str = "pci-host";
/// Version 2 keys saved functions by device and function (`devfn`).
const HOST_VERSION: u32 = 2;
const WINDOW_KIND: &str = "pci-host-window";
const WINDOW_VERSION: u32 = 1;
const BRIDGE_KIND: &str = "pci-host-bridge";
const BRIDGE_VERSION: u32 = 1;

fn ones32(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

/// The INTx line a function's `pin` (1 = INTA ... 4 = INTD) in `slot` ends on, as
/// QEMU's gpex swizzles it; `None` for pin 0 (no interrupt) or a bad pin.
pub fn intx_swizzle(slot: u8, pin: u8) -> Option<usize> {
    matches!(pin, 1..=4).then(|| (usize::from(slot) + usize::from(pin) - 1) % INTX_LINES)
}

/// The host bridge function at 00.0: IDs only, no BARs, no interrupt.
#[derive(Debug)]
pub struct PciHostBridge {
    config: PciConfigSpace,
}

impl Default for PciHostBridge {
    fn default() -> PciHostBridge {
        PciHostBridge::new()
    }
}

impl PciHostBridge {
    /// The bridge with QEMU's gpex IDs: 1b36:0008, class 0600, subsystem 1af4:1100.
    pub fn new() -> PciHostBridge {
        PciHostBridge {
            config: PciConfigSpace::new(PciIds {
                vendor_id: HOST_BRIDGE_VENDOR_ID,
                device_id: HOST_BRIDGE_DEVICE_ID,
                class_code: HOST_BRIDGE_CLASS,
                revision_id: 0,
                subsystem_vendor_id: QEMU_SUBSYSTEM_VENDOR_ID,
                subsystem_id: QEMU_SUBSYSTEM_ID,
            }),
        }
    }
}

super::config_only_function!(PciHostBridge, BRIDGE_KIND, BRIDGE_VERSION);

/// The four INTx lines and which functions assert each.
struct IntxRouter {
    lines: [Box<dyn IrqLine>; INTX_LINES],
    /// Per line, a bit per function (`devfn`, 256 of them) driving it high.
    asserted: Mutex<[u256; INTX_LINES]>,
}

/// A 256-bit set, one bit per `devfn`.
#[allow(non_camel_case_types, reason = "named like the integer it stands for")]
type u256 = [u64; 4];

impl IntxRouter {
    fn drive(&self, line: usize, devfn: usize, high: bool) {
        let mut asserted = self.asserted.lock_recover();
        let Some(bits) = asserted.get_mut(line) else {
            return;
        };
        let was = bits.iter().any(|&w| w != 0);
        let (word, bit) = ((devfn / 64) % 4, 1u64 << (devfn % 64));
        if high {
            bits[word] |= bit;
        } else {
            bits[word] &= !bit;
        }
        let now = bits.iter().any(|&w| w != 0);
        if now != was {
            // Under the lock, so two functions sharing a line drive it in order.
            self.lines[line].set_level(now);
        }
    }

    /// Every line low, as at power-on.
    fn reset(&self) {
        let mut asserted = self.asserted.lock_recover();
        for (bits, line) in asserted.iter_mut().zip(&self.lines) {
            if bits.iter().any(|&w| w != 0) {
                line.set_level(false);
            }
            *bits = [0; 4];
        }
    }

    fn level(&self, line: usize) -> bool {
        self.asserted
            .lock_recover()
            .get(line)
            .is_some_and(|bits| bits.iter().any(|&w| w != 0))
    }
}

/// One function's INTx pin, routed to a line of the router.
struct IntxRoute {
    router: Arc<IntxRouter>,
    line: usize,
    devfn: usize,
}

impl IrqLine for IntxRoute {
    fn set_level(&self, high: bool) {
        self.router.drive(self.line, self.devfn, high);
    }
}

/// A function's saved state, under its device and function number
/// (`slot * 8 + function`).
#[derive(Serialize, Deserialize)]
struct SlotState {
    devfn: u8,
    state: DeviceState,
}

/// What the host saves: the `0xcf8` latch and every function's state.
#[derive(Serialize, Deserialize)]
struct PciHostState {
    config_address: u32,
    functions: Vec<SlotState>,
}

/// The host bridge and the functions on its bus.
pub struct PciHost {
    /// Every function of bus 0 by `devfn` (`slot * 8 + function`).
    slots: Vec<Option<Box<dyn PciFunction>>>,
    intx: Arc<IntxRouter>,
    msi: Option<Arc<dyn MsiTarget>>,
    /// The `0xcf8` address latch of configuration mechanism #1.
    config_address: u32,
}

impl fmt::Debug for PciHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots: Vec<usize> = self.occupied().map(|(devfn, _)| devfn).collect();
        f.debug_struct("PciHost")
            .field("slots", &slots)
            .field("msi", &self.msi.is_some())
            .finish_non_exhaustive()
    }
}

impl PciHost {
    /// A host with the bridge at 00.0 and empty slots; INTx goes out on `intx`
    /// (INTA to INTD; on riscv-virt, PLIC sources 32 to 35), MSI-X messages to
    /// `msi` (`None` without an MSI controller: they are lost).
    ///
    /// Lines and the target are driven while the host is locked (from a guest
    /// access or a tick): they must not call back into the host.
    pub fn new(intx: [Box<dyn IrqLine>; INTX_LINES], msi: Option<Arc<dyn MsiTarget>>) -> PciHost {
        let mut slots: Vec<Option<Box<dyn PciFunction>>> =
            (0..SLOTS * FUNCTIONS).map(|_| None).collect();
        slots[0] = Some(Box::new(PciHostBridge::new()));
        PciHost {
            slots,
            intx: Arc::new(IntxRouter {
                lines: intx,
                asserted: Mutex::new([[0; 4]; INTX_LINES]),
            }),
            msi,
            config_address: 0,
        }
    }

    /// A host whose function at 00.0 is `bridge` rather than the gpex bridge
    /// (on a PC, the [`super::I440fx`]); otherwise as [`PciHost::new`].
    pub fn with_host_bridge(
        bridge: Box<dyn PciFunction>,
        intx: [Box<dyn IrqLine>; INTX_LINES],
        msi: Option<Arc<dyn MsiTarget>>,
    ) -> PciHost {
        let mut host = PciHost::new(intx, msi);
        host.slots[0] = Some(bridge);
        host
    }

    /// Plugs `function` into the first free slot from 1; returns the slot.
    pub fn add(&mut self, function: Box<dyn PciFunction>) -> Result<u8, PciError> {
        let slot = (1..SLOTS)
            .find(|&slot| self.slots[slot * FUNCTIONS].is_none())
            .ok_or(PciError::NoFreeSlot)?;
        // Below SLOTS (32).
        let slot = slot as u8;
        self.add_at(slot, function)?;
        Ok(slot)
    }

    /// Plugs `function` into `slot` (1 to 31), wiring its INTx pin (swizzled by
    /// slot) and the MSI target.
    pub fn add_at(&mut self, slot: u8, function: Box<dyn PciFunction>) -> Result<(), PciError> {
        self.add_function(slot, 0, function)
    }

    /// Plugs `function` in as function `number` (0 to 7) of `slot` (1 to 31):
    /// functions beyond 0 make a multi-function device, whose function 0 says
    /// so in its header type. The INTx pin is swizzled by slot, as on PCI.
    pub fn add_function(
        &mut self,
        slot: u8,
        number: u8,
        mut function: Box<dyn PciFunction>,
    ) -> Result<(), PciError> {
        let index = usize::from(slot);
        if index == 0 || index >= SLOTS || usize::from(number) >= FUNCTIONS {
            return Err(PciError::BadSlot(slot));
        }
        let devfn = index * FUNCTIONS + usize::from(number);
        if self.slots[devfn].is_some() {
            return Err(PciError::SlotTaken(slot));
        }
        let intx = intx_swizzle(slot, function.config().interrupt_pin()).map(|line| {
            Box::new(IntxRoute {
                router: self.intx.clone(),
                line,
                devfn,
            }) as Box<dyn IrqLine>
        });
        function.connect_interrupts(PciInterrupts {
            intx,
            msi: self.msi.clone(),
        });
        self.slots[devfn] = Some(function);
        Ok(())
    }

    /// Function 0 of `slot`, if any (slot 0 is the host bridge).
    pub fn function(&self, slot: u8) -> Option<&dyn PciFunction> {
        self.function_at(slot, 0)
    }

    /// Function 0 of `slot`, mutably.
    pub fn function_mut(&mut self, slot: u8) -> Option<&mut (dyn PciFunction + 'static)> {
        self.function_at_mut(slot, 0)
    }

    /// Function `number` of `slot`, if any.
    pub fn function_at(&self, slot: u8, number: u8) -> Option<&dyn PciFunction> {
        if usize::from(number) >= FUNCTIONS {
            return None;
        }
        let devfn = usize::from(slot) * FUNCTIONS + usize::from(number);
        self.slots.get(devfn)?.as_deref()
    }

    /// Function `number` of `slot`, mutably.
    pub fn function_at_mut(
        &mut self,
        slot: u8,
        number: u8,
    ) -> Option<&mut (dyn PciFunction + 'static)> {
        if usize::from(number) >= FUNCTIONS {
            return None;
        }
        let devfn = usize::from(slot) * FUNCTIONS + usize::from(number);
        self.slots.get_mut(devfn)?.as_deref_mut()
    }

    /// The level of INTx line `line` (0 = INTA).
    pub fn intx_level(&self, line: usize) -> bool {
        self.intx.level(line)
    }

    /// Every present function with its `devfn`.
    fn occupied(&self) -> impl Iterator<Item = (usize, &dyn PciFunction)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(devfn, f)| Some((devfn, f.as_deref()?)))
    }

    fn locate(
        &mut self,
        bus: u8,
        device: u8,
        function: u8,
    ) -> Option<&mut (dyn PciFunction + 'static)> {
        if bus != 0 {
            return None;
        }
        self.function_at_mut(device, function)
    }

    /// A configuration read of `size` bytes (1, 2 or 4) at `register` of
    /// bus/device/function; absent functions read all ones.
    pub fn config_read(
        &mut self,
        bus: u8,
        device: u8,
        function: u8,
        register: u16,
        size: u8,
    ) -> u32 {
        let ones = ones32(size);
        if !matches!(size, 1 | 2 | 4) || u64::from(register) + u64::from(size) > ECAM_FUNCTION_SIZE
        {
            return ones;
        }
        match self.locate(bus, device, function) {
            Some(f) => f.config_read(register, size) & ones,
            None => ones,
        }
    }

    /// A configuration write; writes to absent functions are dropped.
    pub fn config_write(
        &mut self,
        bus: u8,
        device: u8,
        function: u8,
        register: u16,
        size: u8,
        value: u32,
    ) {
        if !matches!(size, 1 | 2 | 4) || u64::from(register) + u64::from(size) > ECAM_FUNCTION_SIZE
        {
            return;
        }
        if let Some(f) = self.locate(bus, device, function) {
            f.config_write(register, size, value & ones32(size));
        }
    }

    /// Splits an ECAM offset into bus, device, function and register.
    fn ecam_address(offset: u64) -> Option<(u8, u8, u8, u16)> {
        let bus = u8::try_from(offset >> ECAM_BUS_SHIFT).ok()?;
        let device = ((offset >> ECAM_DEVICE_SHIFT) & 0x1f) as u8;
        let function = ((offset >> ECAM_FUNCTION_SHIFT) & 0x7) as u8;
        let register = (offset & (ECAM_FUNCTION_SIZE - 1)) as u16;
        Some((bus, device, function, register))
    }

    /// A read of `size` bytes (1, 2 or 4) at `offset` into the ECAM window.
    pub fn ecam_read(&mut self, offset: u64, size: u8) -> u32 {
        match PciHost::ecam_address(offset) {
            Some((bus, device, function, register)) => {
                self.config_read(bus, device, function, register, size)
            }
            None => ones32(size),
        }
    }

    /// A write at `offset` into the ECAM window.
    pub fn ecam_write(&mut self, offset: u64, size: u8, value: u32) {
        if let Some((bus, device, function, register)) = PciHost::ecam_address(offset) {
            self.config_write(bus, device, function, register, size, value);
        }
    }

    /// A read of `size` bytes (1, 2, 4 or 8) at guest-physical `addr` in a memory
    /// window: the function whose enabled memory BAR holds the whole access
    /// answers; nobody's reads as all ones.
    pub fn mmio_read(&mut self, addr: u64, size: u8) -> u64 {
        let ones = ones64(size);
        if !matches!(size, 1 | 2 | 4 | 8) {
            return ones;
        }
        for f in self.slots.iter_mut().flatten() {
            if let Some((bar, offset)) = f.config().decode_mmio(addr, u64::from(size)) {
                return f.bar_read(bar, offset, size) & ones;
            }
        }
        ones
    }

    /// A write at guest-physical `addr` in a memory window; dropped when nobody
    /// decodes it.
    pub fn mmio_write(&mut self, addr: u64, size: u8, value: u64) {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return;
        }
        for f in self.slots.iter_mut().flatten() {
            if let Some((bar, offset)) = f.config().decode_mmio(addr, u64::from(size)) {
                f.bar_write(bar, offset, size, value & ones64(size));
                return;
            }
        }
    }

    /// A read of `size` bytes (1, 2 or 4) at I/O address `port` (0 is the I/O
    /// window's first port).
    pub fn pio_read(&mut self, port: u64, size: u8) -> u32 {
        let ones = ones32(size);
        if !matches!(size, 1 | 2 | 4) {
            return ones;
        }
        for f in self.slots.iter_mut().flatten() {
            if let Some((bar, offset)) = f.decode_pio(port, u64::from(size)) {
                // At most four bytes were asked for.
                return (f.bar_read(bar, offset, size) as u32) & ones;
            }
        }
        ones
    }

    /// A write at I/O address `port`; dropped when nobody decodes it.
    pub fn pio_write(&mut self, port: u64, size: u8, value: u32) {
        if !matches!(size, 1 | 2 | 4) {
            return;
        }
        for f in self.slots.iter_mut().flatten() {
            if let Some((bar, offset)) = f.decode_pio(port, u64::from(size)) {
                f.bar_write(bar, offset, size, u64::from(value & ones32(size)));
                return;
            }
        }
    }

    /// Advances every function's time to `now`; the earliest next deadline.
    pub fn tick(&mut self, now: u64) -> Option<u64> {
        self.slots
            .iter_mut()
            .flatten()
            .filter_map(|f| f.tick(now))
            .min()
    }

    /// The `0xcf8` address latch (configuration mechanism #1).
    pub fn config_address(&self) -> u32 {
        self.config_address
    }

    /// Sets the `0xcf8` address latch; the reserved low two bits read as zero.
    pub fn set_config_address(&mut self, value: u32) {
        self.config_address = value & !0x3;
    }

    /// The bus/device/function/register the latch selects for a data access at
    /// byte `lane` (0 to 3) of `0xcfc`, when its enable bit is set.
    fn latched(&self, lane: u16) -> Option<(u8, u8, u8, u16)> {
        let a = self.config_address;
        (a & CONFIG_ADDRESS_ENABLE != 0).then(|| {
            (
                (a >> 16) as u8,
                ((a >> 11) & 0x1f) as u8,
                ((a >> 8) & 0x7) as u8,
                (a & 0xfc) as u16 + lane,
            )
        })
    }
}

impl Device for PciHost {
    /// Every function back to power-on (BARs unprogrammed, decoding off, MSI-X
    /// disabled), every INTx line low, the `0xcf8` latch cleared.
    fn reset(&mut self) {
        self.intx.reset();
        self.config_address = 0;
        for f in self.slots.iter_mut().flatten() {
            f.reset();
        }
    }

    fn save_state(&self) -> DeviceState {
        let functions = self
            .occupied()
            .map(|(devfn, f)| SlotState {
                // Below SLOTS * FUNCTIONS (256).
                devfn: devfn as u8,
                state: f.save_state(),
            })
            .collect();
        let state = PciHostState {
            config_address: self.config_address,
            functions,
        };
        DeviceState::encode(HOST_KIND, HOST_VERSION, &state)
    }

    /// The saved host must have functions in exactly the same slots; each
    /// function checks its own state. Should one refuse, those already restored
    /// go back to what they were, so an error changes nothing.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let saved: PciHostState = state.decode(HOST_KIND, HOST_VERSION)?;
        let ours: Vec<usize> = self.occupied().map(|(devfn, _)| devfn).collect();
        let theirs: Vec<usize> = saved
            .functions
            .iter()
            .map(|s| usize::from(s.devfn))
            .collect();
        if ours != theirs {
            return Err(invalid(
                HOST_KIND,
                format!("functions saved at devfn {theirs:?}, the host has {ours:?}"),
            ));
        }
        let backup: Vec<DeviceState> = self.occupied().map(|(_, f)| f.save_state()).collect();
        for (i, s) in saved.functions.iter().enumerate() {
            let Some(f) = self.slots[usize::from(s.devfn)].as_mut() else {
                continue;
            };
            if let Err(e) = f.restore_state(&s.state) {
                for (old, s) in backup.iter().zip(&saved.functions).take(i) {
                    if let Some(f) = self.slots[usize::from(s.devfn)].as_mut() {
                        // The function took this very state a moment ago.
                        let _ = f.restore_state(old);
                    }
                }
                return Err(e);
            }
        }
        self.config_address = saved.config_address;
        Ok(())
    }
}

/// A host shared by its bus adapters.
#[derive(Clone)]
pub struct SharedPciHost(Arc<Mutex<PciHost>>);

impl fmt::Debug for SharedPciHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedPciHost").finish_non_exhaustive()
    }
}

impl SharedPciHost {
    /// Shares `host`.
    pub fn new(host: PciHost) -> SharedPciHost {
        SharedPciHost(Arc::new(Mutex::new(host)))
    }

    /// The host, locked (a panic of another holder does not wedge it).
    pub fn lock(&self) -> MutexGuard<'_, PciHost> {
        self.0.lock_recover()
    }

    fn port(&self, lifecycle: Lifecycle) -> HostPort {
        HostPort {
            host: self.clone(),
            lifecycle,
        }
    }

    /// The ECAM window (map it with [`ECAM_SIZE`] for 256 buses, or less); it owns
    /// the host's lifecycle.
    pub fn ecam_window(&self) -> PciEcamWindow {
        PciEcamWindow {
            port: self.port(Lifecycle::Owner),
        }
    }

    /// A memory window mapped at guest-physical `base` (QEMU's riscv-virt has one
    /// at 0x4000_0000 below 4 GiB and one at 0x4_0000_0000).
    pub fn mmio_window(&self, base: u64) -> PciMmioWindow {
        PciMmioWindow {
            port: self.port(Lifecycle::Follower),
            base,
        }
    }

    /// The I/O window as memory (port = offset), for CPUs without port I/O
    /// (0x0300_0000, 64 KiB on riscv-virt).
    pub fn pio_window(&self) -> PciPioWindow {
        PciPioWindow {
            port: self.port(Lifecycle::Follower),
        }
    }

    /// The I/O window in a port space: mapped at `first_port`, which is I/O
    /// address `first_port` on PCI (x86 decodes ports one to one).
    pub fn pio_ports(&self, first_port: u16) -> PciPioPorts {
        PciPioPorts {
            port: self.port(Lifecycle::Follower),
            first_port,
        }
    }

    /// Configuration mechanism #1 at ports `0xcf8` to `0xcff`; a follower unless
    /// made the owner (a machine without ECAM).
    pub fn config_ports(&self) -> PciConfigPorts {
        PciConfigPorts {
            port: self.port(Lifecycle::Follower),
        }
    }
}

/// Whether an adapter resets, saves, restores and ticks the whole host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// This adapter carries the host's lifecycle: exactly one per host.
    Owner,
    /// This adapter leaves the lifecycle to the owner and saves an empty state.
    Follower,
}

/// What every adapter holds: the host and its part in the lifecycle.
#[derive(Clone, Debug)]
struct HostPort {
    host: SharedPciHost,
    lifecycle: Lifecycle,
}

impl HostPort {
    fn reset(&mut self) {
        if self.lifecycle == Lifecycle::Owner {
            self.host.lock().reset();
        }
    }

    fn save_state(&self) -> DeviceState {
        match self.lifecycle {
            Lifecycle::Owner => self.host.lock().save_state(),
            Lifecycle::Follower => DeviceState::encode(WINDOW_KIND, WINDOW_VERSION, &NoState {}),
        }
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        match self.lifecycle {
            Lifecycle::Owner => self.host.lock().restore_state(state),
            Lifecycle::Follower => {
                let NoState {} = state.decode(WINDOW_KIND, WINDOW_VERSION)?;
                Ok(())
            }
        }
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        match self.lifecycle {
            Lifecycle::Owner => self.host.lock().tick(now),
            Lifecycle::Follower => None,
        }
    }
}

/// Implements [`Device`] and the lifecycle switch for an adapter with a `port`.
macro_rules! adapter_lifecycle {
    ($adapter:ty) => {
        impl $adapter {
            /// Makes this adapter the owner of the host's lifecycle, or a follower
            /// (see "One lifecycle for the whole host" in the `pci` module).
            pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
                self.port.lifecycle = lifecycle;
                self
            }
        }

        impl Device for $adapter {
            /// Resets the whole host when this adapter owns the lifecycle.
            fn reset(&mut self) {
                self.port.reset();
            }

            /// The whole host's state when this adapter owns the lifecycle, an
            /// empty one otherwise.
            fn save_state(&self) -> DeviceState {
                self.port.save_state()
            }

            fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
                self.port.restore_state(state)
            }
        }
    };
}

/// The ECAM window as a memory-mapped device. 8-byte accesses are split in two
/// 4-byte configuration accesses.
#[derive(Debug)]
pub struct PciEcamWindow {
    port: HostPort,
}

adapter_lifecycle!(PciEcamWindow);

/// A memory read of a window whose registers are at most 32 bits wide (the
/// configuration and I/O spaces): an 8-byte access is two 4-byte ones.
fn read_split(
    offset: u64,
    size: u8,
    mut read: impl FnMut(u64, u8) -> u32,
) -> Result<u64, BusFault> {
    match size {
        1 | 2 | 4 => Ok(u64::from(read(offset, size))),
        8 => {
            let low = read(offset, 4);
            let high = offset.checked_add(4).map_or(u32::MAX, |o| read(o, 4));
            Ok(u64::from(low) | u64::from(high) << 32)
        }
        _ => Err(BusFault::Unsupported),
    }
}

/// The write counterpart of [`read_split`].
fn write_split(
    offset: u64,
    size: u8,
    value: u64,
    mut write: impl FnMut(u64, u8, u32),
) -> Result<(), BusFault> {
    match size {
        1 | 2 | 4 => write(offset, size, value as u32),
        8 => {
            write(offset, 4, value as u32);
            if let Some(o) = offset.checked_add(4) {
                write(o, 4, (value >> 32) as u32);
            }
        }
        _ => return Err(BusFault::Unsupported),
    }
    Ok(())
}

impl MmioDevice for PciEcamWindow {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let mut host = self.port.host.lock();
        read_split(offset, size, |o, s| host.ecam_read(o, s))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let mut host = self.port.host.lock();
        write_split(offset, size, value, |o, s, v| host.ecam_write(o, s, v))
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.port.tick(now)
    }
}

/// A memory window: offsets become guest-physical addresses from its base.
#[derive(Debug)]
pub struct PciMmioWindow {
    port: HostPort,
    base: u64,
}

adapter_lifecycle!(PciMmioWindow);

impl MmioDevice for PciMmioWindow {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(BusFault::Unsupported);
        }
        Ok(match self.base.checked_add(offset) {
            Some(addr) => self.port.host.lock().mmio_read(addr, size),
            None => ones64(size),
        })
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(BusFault::Unsupported);
        }
        if let Some(addr) = self.base.checked_add(offset) {
            self.port.host.lock().mmio_write(addr, size, value);
        }
        Ok(())
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.port.tick(now)
    }
}

/// The I/O window as memory: offset n is I/O address n. 8-byte accesses are
/// split in two 4-byte port accesses.
#[derive(Debug)]
pub struct PciPioWindow {
    port: HostPort,
}

adapter_lifecycle!(PciPioWindow);

impl MmioDevice for PciPioWindow {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let mut host = self.port.host.lock();
        read_split(offset, size, |o, s| host.pio_read(o, s))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let mut host = self.port.host.lock();
        write_split(offset, size, value, |o, s, v| host.pio_write(o, s, v))
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.port.tick(now)
    }
}

/// The I/O window in a CPU's port space.
#[derive(Debug)]
pub struct PciPioPorts {
    port: HostPort,
    first_port: u16,
}

adapter_lifecycle!(PciPioPorts);

impl PioDevice for PciPioPorts {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let port = u64::from(self.first_port) + u64::from(offset);
        self.port.host.lock().pio_read(port, size)
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        let port = u64::from(self.first_port) + u64::from(offset);
        self.port.host.lock().pio_write(port, size, value);
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.port.tick(now)
    }
}

/// Configuration mechanism #1: the address latch at `0xcf8` (32-bit accesses
/// only) and the data window at `0xcfc` to `0xcff`. Map it at port `0xcf8` with
/// [`CONFIG_PORTS_SIZE`] ports.
#[derive(Debug)]
pub struct PciConfigPorts {
    port: HostPort,
}

adapter_lifecycle!(PciConfigPorts);

impl PioDevice for PciConfigPorts {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let mut host = self.port.host.lock();
        match (offset, size) {
            (0, 4) => host.config_address(),
            (CONFIG_DATA..=7, 1 | 2 | 4) if offset - CONFIG_DATA + u16::from(size) <= 4 => {
                match host.latched(offset - CONFIG_DATA) {
                    Some((bus, device, function, register)) => {
                        host.config_read(bus, device, function, register, size)
                    }
                    None => ones32(size),
                }
            }
            _ => ones32(size),
        }
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        let mut host = self.port.host.lock();
        match (offset, size) {
            (0, 4) => host.set_config_address(value),
            (CONFIG_DATA..=7, 1 | 2 | 4) if offset - CONFIG_DATA + u16::from(size) <= 4 => {
                if let Some((bus, device, function, register)) = host.latched(offset - CONFIG_DATA)
                {
                    host.config_write(bus, device, function, register, size, value);
                }
            }
            _ => {}
        }
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.port.tick(now)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use emu_core::GuestPhysAddr;
    use std::sync::Arc;

    use emu_core::{Bus, GuestRam, PioPort, RunControl};

    use super::*;
    use crate::pci::PciConfigState;
    use crate::pci::PciIntx;
    use crate::pci::config::{BarKind, bar_offset, command, reg};
    use crate::testing::{TestIrq, assert_refuses_foreign_states};

    pub(crate) const ECAM_BASE: u64 = 0x3000_0000;
    pub(crate) const PIO_BASE: u64 = 0x0300_0000;
    pub(crate) const MMIO_BASE: u64 = 0x4000_0000;
    pub(crate) const MMIO_SIZE: u64 = 0x4000_0000;
    pub(crate) const MMIO64_BASE: u64 = 0x4_0000_0000;
    pub(crate) const MMIO64_SIZE: u64 = 0x4_0000_0000;

    /// Four test lines for INTA..INTD.
    pub(crate) fn lines() -> ([TestIrq; 4], [Box<dyn IrqLine>; 4]) {
        let lines: [TestIrq; 4] = Default::default();
        let boxed = lines.clone().map(|l| Box::new(l) as Box<dyn IrqLine>);
        (lines, boxed)
    }

    /// A bus with test RAM at 0x8000_0000 and `host`'s windows where QEMU's
    /// riscv-virt puts them.
    pub(crate) fn bus_with(host: &SharedPciHost, ram: Arc<GuestRam>) -> Bus {
        let mut bus =
            Bus::new(GuestPhysAddr(0x8000_0000), ram, Arc::new(RunControl::new())).unwrap();
        bus.map_mmio(
            "ecam",
            GuestPhysAddr(ECAM_BASE),
            ECAM_SIZE,
            Box::new(host.ecam_window()),
        )
        .unwrap();
        bus.map_mmio(
            "pio",
            GuestPhysAddr(PIO_BASE),
            0x1_0000,
            Box::new(host.pio_window()),
        )
        .unwrap();
        bus.map_mmio(
            "mmio",
            GuestPhysAddr(MMIO_BASE),
            MMIO_SIZE,
            Box::new(host.mmio_window(MMIO_BASE)),
        )
        .unwrap();
        bus.map_mmio(
            "mmio-high",
            GuestPhysAddr(MMIO64_BASE),
            MMIO64_SIZE,
            Box::new(host.mmio_window(MMIO64_BASE)),
        )
        .unwrap();
        bus
    }

    /// The ECAM address of `register` in `slot`.
    pub(crate) fn ecam(slot: u8, register: u16) -> u64 {
        ECAM_BASE + (u64::from(slot) << ECAM_DEVICE_SHIFT) + u64::from(register)
    }

    /// A toy function: BAR 0 32-bit memory (4 KiB), BAR 2 64-bit prefetchable
    /// memory (16 KiB), BAR 4 I/O (256 ports), each backed by bytes. Writing
    /// BAR 0 offset 0 sets its INTx request to bit 0 of the value.
    pub(crate) struct Toy {
        config: PciConfigSpace,
        bars: [Vec<u8>; 3],
        request: bool,
        intx: PciIntx,
    }

    #[derive(Serialize, Deserialize)]
    struct ToyState {
        config: PciConfigState,
        #[serde(with = "crate::state::hex_bytes")]
        bar0: Vec<u8>,
        #[serde(with = "crate::state::hex_bytes")]
        bar2: Vec<u8>,
        #[serde(with = "crate::state::hex_bytes")]
        bar4: Vec<u8>,
        request: bool,
    }

    impl Toy {
        pub(crate) fn new(pin: u8) -> Toy {
            let mut config = PciConfigSpace::new(PciIds {
                vendor_id: 0x1234,
                device_id: 0x11,
                class_code: 0xff_00_00,
                ..PciIds::default()
            });
            config
                .add_bar(
                    0,
                    BarKind::Memory32 {
                        prefetchable: false,
                    },
                    0x1000,
                )
                .unwrap();
            config
                .add_bar(2, BarKind::Memory64 { prefetchable: true }, 0x4000)
                .unwrap();
            config.add_bar(4, BarKind::Io, 0x100).unwrap();
            config.set_interrupt_pin(pin);
            Toy {
                config,
                bars: [vec![0; 0x1000], vec![0; 0x4000], vec![0; 0x100]],
                request: false,
                intx: PciIntx::default(),
            }
        }

        fn bytes(&mut self, bar: usize) -> Option<&mut Vec<u8>> {
            match bar {
                0 => Some(&mut self.bars[0]),
                2 => Some(&mut self.bars[1]),
                4 => Some(&mut self.bars[2]),
                _ => None,
            }
        }
    }

    impl Device for Toy {
        fn reset(&mut self) {
            self.config.reset();
            self.bars.iter_mut().for_each(|b| b.fill(0));
            self.request = false;
            self.intx.update(&mut self.config, false);
        }
        fn save_state(&self) -> DeviceState {
            let [bar0, bar2, bar4] = self.bars.clone();
            let state = ToyState {
                config: self.config.state(),
                bar0,
                bar2,
                bar4,
                request: self.request,
            };
            DeviceState::encode("toy", 1, &state)
        }
        fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
            let state: ToyState = state.decode("toy", 1)?;
            if [&state.bar0, &state.bar2, &state.bar4].map(Vec::len)
                != self.bars.each_ref().map(Vec::len)
            {
                return Err(invalid("toy", "BAR contents of another size"));
            }
            self.config
                .restore(&state.config)
                .map_err(|r| invalid("toy", r))?;
            self.bars = [state.bar0, state.bar2, state.bar4];
            self.request = state.request;
            self.intx.redrive(&mut self.config, self.request);
            Ok(())
        }
    }

    impl PciFunction for Toy {
        fn config(&self) -> &PciConfigSpace {
            &self.config
        }
        fn config_write(&mut self, offset: u16, size: u8, value: u32) {
            self.config.write(offset, size, value);
            self.intx.update(&mut self.config, self.request);
        }
        fn bar_read(&mut self, bar: usize, offset: u64, size: u8) -> u64 {
            let Some(bytes) = self.bytes(bar) else {
                return u64::MAX;
            };
            let mut value = [0u8; 8];
            let at = offset as usize;
            let n = usize::from(size);
            value[..n].copy_from_slice(&bytes[at..at + n]);
            u64::from_le_bytes(value)
        }
        fn bar_write(&mut self, bar: usize, offset: u64, size: u8, value: u64) {
            if bar == 0 && offset == 0 {
                self.request = value & 1 != 0;
                self.intx.update(&mut self.config, self.request);
            }
            if let Some(bytes) = self.bytes(bar) {
                let at = offset as usize;
                let n = usize::from(size);
                bytes[at..at + n].copy_from_slice(&value.to_le_bytes()[..n]);
            }
        }
        fn connect_interrupts(&mut self, interrupts: PciInterrupts) {
            self.intx.connect(interrupts.intx);
        }
    }

    fn setup() -> (SharedPciHost, Bus, [TestIrq; 4]) {
        let (irqs, lines) = lines();
        let mut host = PciHost::new(lines, None);
        assert_eq!(host.add(Box::new(Toy::new(1))).unwrap(), 1);
        let host = SharedPciHost::new(host);
        let ram = Arc::new(GuestRam::new(0x10000).unwrap());
        let bus = bus_with(&host, ram);
        (host, bus, irqs)
    }

    /// Programs the toy in `slot`: BAR 0 at `mem`, BAR 2 at `mem64`, BAR 4 at
    /// port `io`, then sets `cmd`.
    fn program(bus: &Bus, slot: u8, mem: u32, mem64: u64, io: u32, cmd: u16) {
        bus.write(GuestPhysAddr(ecam(slot, bar_offset(0))), 4, u64::from(mem))
            .unwrap();
        bus.write(
            GuestPhysAddr(ecam(slot, bar_offset(2))),
            4,
            mem64 & 0xffff_ffff,
        )
        .unwrap();
        bus.write(GuestPhysAddr(ecam(slot, bar_offset(3))), 4, mem64 >> 32)
            .unwrap();
        bus.write(GuestPhysAddr(ecam(slot, bar_offset(4))), 4, u64::from(io))
            .unwrap();
        bus.write(GuestPhysAddr(ecam(slot, reg::COMMAND)), 2, u64::from(cmd))
            .unwrap();
    }

    #[test]
    fn the_host_bridge_and_absent_functions() {
        let (_host, bus, _irqs) = setup();
        assert_eq!(bus.read(GuestPhysAddr(ecam(0, 0)), 4), Ok(0x0008_1b36));
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(0, reg::REVISION_ID)), 4),
            Ok(0x0600_0000)
        );
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(0, reg::SUBSYSTEM_VENDOR_ID)), 4),
            Ok(0x1100_1af4)
        );
        assert_eq!(bus.read(GuestPhysAddr(ecam(0, reg::HEADER_TYPE)), 1), Ok(0));
        assert_eq!(bus.read(GuestPhysAddr(ecam(0, bar_offset(0))), 4), Ok(0));
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(0, reg::INTERRUPT_PIN)), 1),
            Ok(0)
        );
        assert_eq!(bus.read(GuestPhysAddr(ecam(1, 0)), 4), Ok(0x0011_1234));
        // Empty slots, other functions of a present slot, other buses: all ones.
        assert_eq!(bus.read(GuestPhysAddr(ecam(2, 0)), 4), Ok(0xffff_ffff));
        assert_eq!(bus.read(GuestPhysAddr(ecam(31, 0)), 2), Ok(0xffff));
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(1, 0) + (1 << 12)), 4),
            Ok(0xffff_ffff)
        );
        assert_eq!(bus.read(GuestPhysAddr(ECAM_BASE + (1 << 20)), 1), Ok(0xff));
        assert_eq!(
            bus.read(GuestPhysAddr(ECAM_BASE + (255 << 20) + 0xffc), 4),
            Ok(0xffff_ffff)
        );
        // A conventional function's extended space reads as all ones.
        assert_eq!(bus.read(GuestPhysAddr(ecam(1, 0x100)), 4), Ok(0xffff_ffff));
        // Writes to nobody are dropped; 8-byte accesses split in two.
        bus.write(GuestPhysAddr(ecam(2, reg::COMMAND)), 2, 7)
            .unwrap();
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(1, 0)), 8),
            Ok(0x0000_0000_0011_1234)
        );
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(0, 0)), 3),
            Err(BusFault::Unsupported)
        );
    }

    #[test]
    fn programmed_bars_decode_in_the_windows() {
        let (host, bus, _irqs) = setup();
        // Sizing through ECAM.
        bus.write(GuestPhysAddr(ecam(1, bar_offset(0))), 4, 0xffff_ffff)
            .unwrap();
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(1, bar_offset(0))), 4),
            Ok(0xffff_f000)
        );
        bus.write(GuestPhysAddr(ecam(1, bar_offset(4))), 4, 0xffff_ffff)
            .unwrap();
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(1, bar_offset(4))), 4),
            Ok(0xffff_ff01)
        );
        // Programmed but not enabled: nothing decodes.
        program(&bus, 1, 0x4000_0000, 0x4_0000_4000, 0x1000, 0);
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0000), 4), Ok(0xffff_ffff));
        bus.write(GuestPhysAddr(0x4000_0010), 4, 0x55).unwrap();
        assert_eq!(bus.read(GuestPhysAddr(PIO_BASE + 0x1000), 1), Ok(0xff));
        bus.write(
            GuestPhysAddr(ecam(1, reg::COMMAND)),
            2,
            u64::from(command::MEMORY_SPACE),
        )
        .unwrap();
        bus.write(GuestPhysAddr(0x4000_0010), 4, 0xdead_beef)
            .unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0010), 4), Ok(0xdead_beef));
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0012), 2), Ok(0xdead));
        assert_eq!(
            bus.read(GuestPhysAddr(0x4000_1000), 4),
            Ok(0xffff_ffff),
            "past BAR 0"
        );
        bus.write(GuestPhysAddr(0x4_0000_7ff8), 8, 0x0123_4567_89ab_cdef)
            .unwrap();
        assert_eq!(
            bus.read(GuestPhysAddr(0x4_0000_7ff8), 8),
            Ok(0x0123_4567_89ab_cdef)
        );
        assert_eq!(
            bus.read(GuestPhysAddr(0x4_0000_7ffc), 8),
            Ok(u64::MAX),
            "runs past the end"
        );
        assert_eq!(
            bus.read(GuestPhysAddr(PIO_BASE + 0x1000), 1),
            Ok(0xff),
            "I/O still off"
        );
        bus.write(
            GuestPhysAddr(ecam(1, reg::COMMAND)),
            2,
            u64::from(command::MEMORY_SPACE | command::IO_SPACE),
        )
        .unwrap();
        bus.write(GuestPhysAddr(PIO_BASE + 0x1004), 2, 0xabcd)
            .unwrap();
        assert_eq!(bus.read(GuestPhysAddr(PIO_BASE + 0x1004), 4), Ok(0xabcd));
        assert_eq!(
            bus.read(GuestPhysAddr(PIO_BASE + 0x10fe), 4),
            Ok(0xffff_ffff)
        );
        // Turning memory decoding off hides the memory BARs again.
        bus.write(
            GuestPhysAddr(ecam(1, reg::COMMAND)),
            2,
            u64::from(command::IO_SPACE),
        )
        .unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0010), 4), Ok(0xffff_ffff));
        assert_eq!(bus.read(GuestPhysAddr(PIO_BASE + 0x1004), 2), Ok(0xabcd));
        // The same port through a port-I/O adapter (x86), at its own base.
        let mut ports = host.pio_ports(0x1000);
        assert_eq!(PioDevice::read(&mut ports, 4, 2), 0xabcd);
        PioDevice::write(&mut ports, 8, 1, 0x5a);
        assert_eq!(bus.read(GuestPhysAddr(PIO_BASE + 0x1008), 1), Ok(0x5a));
        assert_eq!(PioDevice::read(&mut ports, 0x100, 1), 0xff);
    }

    #[test]
    fn config_ports_reach_the_same_functions() {
        let (host, _bus, _irqs) = setup();
        let mut io = Bus::new(
            GuestPhysAddr(0x8000_0000),
            Arc::new(GuestRam::new(0x1000).unwrap()),
            Arc::new(RunControl::new()),
        )
        .unwrap();
        io.map_pio(
            "pci-conf",
            PioPort(0xcf8),
            CONFIG_PORTS_SIZE,
            Box::new(host.config_ports()),
        )
        .unwrap();
        let select = |io: &Bus, slot: u32, register: u32| {
            io.pio_write(PioPort(0xcf8), 4, 0x8000_0000 | slot << 11 | register);
        };
        select(&io, 0, 0);
        assert_eq!(io.pio_read(PioPort(0xcf8), 4), 0x8000_0000);
        assert_eq!(io.pio_read(PioPort(0xcfc), 4), 0x0008_1b36);
        assert_eq!(io.pio_read(PioPort(0xcfe), 2), 0x0008);
        select(&io, 1, 0x3c);
        io.pio_write(PioPort(0xcfc), 1, 11);
        assert_eq!(io.pio_read(PioPort(0xcfd), 1), 1, "INTA");
        assert_eq!(host.lock().ecam_read(1 << 15 | 0x3c, 1), 11);
        select(&io, 7, 0);
        assert_eq!(io.pio_read(PioPort(0xcfc), 4), u32::MAX);
        // Without the enable bit nothing is selected.
        io.pio_write(PioPort(0xcf8), 4, 0);
        assert_eq!(io.pio_read(PioPort(0xcfc), 4), u32::MAX);
        assert_eq!(io.pio_read(PioPort(0xcf9), 1), 0xff);
    }

    #[test]
    fn intx_is_swizzled_by_slot_and_shared() {
        assert_eq!(intx_swizzle(1, 1), Some(1));
        assert_eq!(intx_swizzle(4, 1), Some(0));
        assert_eq!(intx_swizzle(5, 4), Some(0));
        assert_eq!(intx_swizzle(2, 3), Some(0));
        assert_eq!(intx_swizzle(3, 0), None);
        let (irqs, lines) = lines();
        let mut host = PciHost::new(lines, None);
        // Slot 1 INTA -> INTB; slot 4 INTA and slot 5 INTD -> INTA.
        host.add_at(1, Box::new(Toy::new(1))).unwrap();
        host.add_at(4, Box::new(Toy::new(1))).unwrap();
        host.add_at(5, Box::new(Toy::new(4))).unwrap();
        assert_eq!(
            host.add_at(5, Box::new(Toy::new(1))),
            Err(PciError::SlotTaken(5))
        );
        assert_eq!(
            host.add_at(0, Box::new(Toy::new(1))),
            Err(PciError::BadSlot(0))
        );
        assert_eq!(
            host.add_at(32, Box::new(Toy::new(1))),
            Err(PciError::BadSlot(32))
        );
        let host = SharedPciHost::new(host);
        let bus = bus_with(&host, Arc::new(GuestRam::new(0x1000).unwrap()));
        let mem = |slot: u8| 0x4000_0000 + u32::from(slot) * 0x1000;
        for slot in [1, 4, 5] {
            program(&bus, slot, mem(slot), 0, 0, command::MEMORY_SPACE);
        }
        let levels = || irqs.each_ref().map(TestIrq::level);
        bus.write(GuestPhysAddr(u64::from(mem(1))), 4, 1).unwrap();
        assert_eq!(levels(), [false, true, false, false]);
        bus.write(GuestPhysAddr(u64::from(mem(4))), 4, 1).unwrap();
        bus.write(GuestPhysAddr(u64::from(mem(5))), 4, 1).unwrap();
        assert_eq!(levels(), [true, true, false, false]);
        assert_ne!(
            bus.read(GuestPhysAddr(ecam(5, reg::STATUS)), 2).unwrap() & 0x8,
            0
        );
        // INTA stays up until both of its functions let go.
        bus.write(GuestPhysAddr(u64::from(mem(4))), 4, 0).unwrap();
        assert!(irqs[0].level());
        bus.write(GuestPhysAddr(u64::from(mem(5))), 4, 0).unwrap();
        assert!(!irqs[0].level());
        assert_eq!(
            bus.read(GuestPhysAddr(ecam(5, reg::STATUS)), 2).unwrap() & 0x8,
            0
        );
        // INTX_DISABLE holds the pin low but the status bit still shows it.
        bus.write(
            GuestPhysAddr(ecam(1, reg::COMMAND)),
            2,
            u64::from(command::MEMORY_SPACE | command::INTX_DISABLE),
        )
        .unwrap();
        assert!(!irqs[1].level());
        assert_ne!(
            bus.read(GuestPhysAddr(ecam(1, reg::STATUS)), 2).unwrap() & 0x8,
            0
        );
        bus.write(
            GuestPhysAddr(ecam(1, reg::COMMAND)),
            2,
            u64::from(command::MEMORY_SPACE),
        )
        .unwrap();
        assert!(irqs[1].level());
        assert!(host.lock().intx_level(1));
        // A machine reset drops every line.
        bus.reset_devices();
        assert_eq!(levels(), [false; 4]);
    }

    #[test]
    fn one_adapter_owns_the_lifecycle() {
        let (host, bus, irqs) = setup();
        program(&bus, 1, 0x4000_0000, 0x4_0000_0000, 0x1000, 7);
        bus.write(GuestPhysAddr(0x4000_0000), 4, 1).unwrap();
        bus.write(GuestPhysAddr(0x4000_0100), 4, 0x1234).unwrap();
        assert!(irqs[1].level());
        let saved = bus.save_devices();
        let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["pio", "ecam", "mmio", "mmio-high"]);
        let kinds: Vec<&str> = saved.iter().map(|(_, s)| s.kind.as_str()).collect();
        assert_eq!(kinds, [WINDOW_KIND, HOST_KIND, WINDOW_KIND, WINDOW_KIND]);
        // A follower's reset does nothing; the owner's resets everything.
        let mut follower = host.mmio_window(MMIO_BASE);
        Device::reset(&mut follower);
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0100), 4), Ok(0x1234));
        bus.reset_devices();
        assert!(!irqs[1].level());
        assert_eq!(bus.read(GuestPhysAddr(ecam(1, reg::COMMAND)), 2), Ok(0));
        assert_eq!(bus.read(GuestPhysAddr(ecam(1, bar_offset(0))), 4), Ok(0));
        assert_eq!(bus.read(GuestPhysAddr(ecam(1, bar_offset(4))), 4), Ok(1));
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0100), 4), Ok(0xffff_ffff));
        // And a restore brings back BARs, decoding, contents and the line.
        bus.restore_devices(&saved).unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x4000_0100), 4), Ok(0x1234));
        assert_eq!(bus.read(GuestPhysAddr(PIO_BASE + 0x1000), 1), Ok(0));
        assert!(irqs[1].level());
        // An x86-style owner elsewhere.
        let mut ports = host.config_ports().with_lifecycle(Lifecycle::Owner);
        assert_eq!(ports.save_state().kind, HOST_KIND);
        let mut ecam = host.ecam_window().with_lifecycle(Lifecycle::Follower);
        assert_eq!(ecam.save_state().kind, WINDOW_KIND);
        assert_refuses_foreign_states(&mut ports);
        assert_refuses_foreign_states(&mut ecam);
    }

    #[test]
    fn functions_beyond_0_make_multi_function_devices() {
        let (_, wires) = lines();
        let mut host = PciHost::new(wires, None);
        host.add_function(1, 0, Box::new(super::super::Piix3::new()))
            .unwrap();
        host.add_function(1, 3, Box::new(Toy::new(1))).unwrap();
        assert_eq!(
            host.add_function(1, 3, Box::new(Toy::new(1))),
            Err(PciError::SlotTaken(1))
        );
        assert_eq!(
            host.add_function(1, 8, Box::new(Toy::new(1))),
            Err(PciError::BadSlot(1))
        );
        assert_eq!(host.config_read(0, 1, 0, 0, 4), 0x7000_8086);
        assert_eq!(host.config_read(0, 1, 0, 0x0e, 1), 0x80, "multi-function");
        assert_eq!(
            host.config_read(0, 1, 3, 0, 4),
            host.function_at(1, 3).unwrap().config().read(0, 4)
        );
        assert_eq!(host.config_read(0, 1, 2, 0, 4), 0xffff_ffff);
        // The next free slot skips slot 1 as a whole.
        assert_eq!(host.add(Box::new(Toy::new(1))).unwrap(), 2);
        // Saved and restored by devfn.
        let saved = host.save_state();
        host.restore_state(&saved).unwrap();
    }

    #[test]
    fn functions_of_one_slot_share_its_intx_line() {
        let (irqs, wires) = lines();
        let mut host = PciHost::new(wires, None);
        host.add_function(3, 0, Box::new(Toy::new(1))).unwrap();
        host.add_function(3, 1, Box::new(Toy::new(1))).unwrap();
        // INTA of slot 3 is line (3 + 1 - 1) % 4 = 3.
        let mut request = |function: u8, on: bool| {
            let f = host.function_at_mut(3, function).unwrap();
            f.bar_write(0, 0, 4, u64::from(on));
        };
        request(0, true);
        request(1, true);
        request(0, false);
        assert!(irqs[3].level(), "function 1 still asserts it");
        request(1, false);
        assert!(!irqs[3].level());
    }

    #[test]
    fn a_pc_host_answers_with_the_i440fx_through_0xcf8() {
        let (_, wires) = lines();
        let host = SharedPciHost::new(PciHost::with_host_bridge(
            Box::new(super::super::I440fx::new()),
            wires,
            None,
        ));
        let mut ports = host.config_ports().with_lifecycle(Lifecycle::Owner);
        // Mechanism #1: enable bit, bus 0, device 0, function 0, register 0.
        ports.write(0, 4, 0x8000_0000);
        assert_eq!(ports.read(4, 4), 0x1237_8086);
        // PAM0 through a byte write at 0xcfd + (0x59 & 3).
        ports.write(0, 4, 0x8000_0058);
        ports.write(4 + 1, 1, 0x30);
        assert_eq!(ports.read(4 + 1, 1), 0x30);
    }

    #[test]
    fn restore_checks_slots_and_changes_nothing_on_error() {
        let (host, bus, _irqs) = setup();
        program(&bus, 1, 0x4000_0000, 0, 0, command::MEMORY_SPACE);
        let saved = host.lock().save_state();
        // Another host with a second function refuses it.
        let (_, wires) = lines();
        let mut other = PciHost::new(wires, None);
        other.add(Box::new(Toy::new(1))).unwrap();
        other.add(Box::new(Toy::new(2))).unwrap();
        assert!(matches!(
            other.restore_state(&saved),
            Err(StateError::Invalid { .. })
        ));
        // A function refusing its state rolls back those restored before it.
        let (_, wires) = lines();
        let mut two = PciHost::new(wires, None);
        two.add(Box::new(Toy::new(1))).unwrap();
        two.add(Box::new(Toy::new(1))).unwrap();
        let mut state: PciHostState = two.save_state().decode(HOST_KIND, HOST_VERSION).unwrap();
        // Slot 1 takes a new command register; slot 2's state is damaged.
        let toy1 = &mut state.functions[1].state.data["config"]["bytes"];
        let text = toy1.as_str().unwrap().to_owned();
        *toy1 = serde_json::Value::String(format!("{}07{}", &text[..8], &text[10..]));
        state.functions[2].state.data["config"]["bytes"] = serde_json::Value::String("00".into());
        let before = two.save_state();
        let bad = DeviceState::encode(HOST_KIND, HOST_VERSION, &state);
        assert!(two.restore_state(&bad).is_err());
        assert_eq!(two.save_state(), before);
    }
}
