//! The PC chipset's reset and A20 ports, as QEMU's `pc` machine has them:
//! System Control Port A at 0x92 ([`SystemControlA`]: fast A20 gate, fast
//! reset) and the PIIX reset control register at 0xcf9 ([`ResetControl`]).
//!
//! A reset is a request to the machine ([`StopReason::Reset`] through its
//! [`RunControl`]); the A20 gate is an [`A20Gate`] the machine shares with
//! the CPU side (a device never names a CPU: the machine applies the gate
//! with `cpu_x86::Cpu::set_a20` when [`A20Gate::changes`] moves).
//!
//! Port 0xcf9 lies inside the PCI configuration ports (0xcf8-0xcff), which
//! decode only 32-bit accesses at 0xcf8; [`WithResetControl`] puts the two
//! on one port range.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use emu_core::{Device, DeviceState, PioDevice, RunControl, StateError, StopReason};
use serde::{Deserialize, Serialize};

/// Port of System Control Port A.
pub const SYSTEM_CONTROL_A_PORT: u16 = 0x92;
/// Port of the reset control register.
pub const RESET_CONTROL_PORT: u16 = 0xcf9;
/// Port the PCI configuration mechanism starts at (its address latch).
pub const PCI_CONFIG_PORT: u16 = 0xcf8;

/// Port 0x92 bit 0: a 0-to-1 transition resets the machine.
const FAST_RESET: u8 = 0x01;
/// Port 0x92 bit 1: the A20 gate, open when set.
const FAST_A20: u8 = 0x02;
/// Port 0xcf9 bit 1: a hard (rather than soft) reset; stored and read back.
const RCR_SYSTEM_RESET: u8 = 0x02;
/// Port 0xcf9 bit 2: reset now. QEMU resets whatever bit 1 says (a soft
/// reset is a reset of the whole machine there too).
const RCR_RESET_CPU: u8 = 0x04;
/// 0xcf9 as an offset into the PCI configuration ports.
const RESET_CONTROL_OFFSET: u16 = RESET_CONTROL_PORT - PCI_CONFIG_PORT;

/// The A20 gate: whether physical address bit 20 passes (open) or reads as 0
/// (closed, the 8086's 1 MiB wrap-around). Shared, cheap to clone: the
/// chipset ports (port 0x92, later the keyboard controller) drive it, and the
/// machine applies it to the CPU. The last writer decides, as in QEMU, where
/// both drive one A20 input of the CPU.
#[derive(Clone, Debug)]
pub struct A20Gate(Arc<A20Inner>);

#[derive(Debug)]
struct A20Inner {
    open: AtomicBool,
    changes: AtomicU64,
}

impl A20Gate {
    /// A gate, open or closed. A PC starts with it open (the keyboard
    /// controller's output port powers on with A20 enabled).
    pub fn new(open: bool) -> A20Gate {
        A20Gate(Arc::new(A20Inner {
            open: AtomicBool::new(open),
            changes: AtomicU64::new(0),
        }))
    }

    /// Opens or closes the gate.
    pub fn set(&self, open: bool) {
        if self.0.open.swap(open, Ordering::SeqCst) != open {
            self.0.changes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.0.open.load(Ordering::SeqCst)
    }

    /// A counter that moves whenever the gate opens or closes, for a machine
    /// to notice cheaply after port writes.
    pub fn changes(&self) -> u64 {
        self.0.changes.load(Ordering::SeqCst)
    }
}

/// The saved state of port 0x92: the last value written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemControlAState {
    /// Bits as written (bit 0 fast reset, bit 1 A20).
    pub value: u8,
}

/// System Control Port A (port 0x92, one port).
#[derive(Debug)]
pub struct SystemControlA {
    state: SystemControlAState,
    a20: A20Gate,
    control: Arc<RunControl>,
}

impl SystemControlA {
    /// The port, driving `a20` and asking `control` for resets. It powers on
    /// at 0 without touching the gate, as QEMU's does.
    pub fn new(a20: A20Gate, control: Arc<RunControl>) -> SystemControlA {
        SystemControlA {
            state: SystemControlAState::default(),
            a20,
            control,
        }
    }
}

/// Model names and layout versions in saved states.
const KIND_PORT92: &str = "pc-port92";
const KIND_RCR: &str = "pc-reset-control";
const KIND_WITH_RCR: &str = "pc-pci-config-with-reset-control";
const VERSION: u32 = 1;

impl Device for SystemControlA {
    /// Bit 0 clears, so the next write of 1 resets again; the A20 bit stays
    /// as it was (QEMU keeps it; the gate itself is the machine's to reopen).
    fn reset(&mut self) {
        self.state.value &= !FAST_RESET;
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND_PORT92, VERSION, &self.state)
    }

    /// Restores the register only: the machine restores the gate with the CPU
    /// state it belongs to.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        self.state = state.decode(KIND_PORT92, VERSION)?;
        Ok(())
    }
}

impl PioDevice for SystemControlA {
    fn read(&mut self, _offset: u16, _size: u8) -> u32 {
        u32::from(self.state.value)
    }

    fn write(&mut self, _offset: u16, _size: u8, value: u32) {
        let old = self.state.value;
        let value = value as u8;
        self.state.value = value;
        self.a20.set(value & FAST_A20 != 0);
        if value & FAST_RESET != 0 && old & FAST_RESET == 0 {
            self.control.request_stop(StopReason::Reset);
        }
    }
}

/// The saved state of the reset control register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetControlState {
    /// The reset type bit (bit 1) as last written.
    pub value: u8,
}

/// The PIIX reset control register (port 0xcf9, one port).
#[derive(Debug)]
pub struct ResetControl {
    state: ResetControlState,
    control: Arc<RunControl>,
}

impl ResetControl {
    /// The register, asking `control` for resets.
    pub fn new(control: Arc<RunControl>) -> ResetControl {
        ResetControl {
            state: ResetControlState::default(),
            control,
        }
    }
}

impl Device for ResetControl {
    fn reset(&mut self) {
        self.state = ResetControlState::default();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND_RCR, VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        self.state = state.decode(KIND_RCR, VERSION)?;
        Ok(())
    }
}

impl PioDevice for ResetControl {
    fn read(&mut self, _offset: u16, _size: u8) -> u32 {
        u32::from(self.state.value)
    }

    /// Bit 2 resets (the value is not stored); otherwise only bit 1 is kept.
    fn write(&mut self, _offset: u16, _size: u8, value: u32) {
        let value = value as u8;
        if value & RCR_RESET_CPU != 0 {
            self.control.request_stop(StopReason::Reset);
            return;
        }
        self.state.value = value & RCR_SYSTEM_RESET;
    }
}

/// Ports 0xcf8-0xcff as a PIIX decodes them: byte accesses at 0xcf9 reach
/// the reset control register, everything else the PCI configuration ports
/// `D` (which answer only 32-bit accesses at 0xcf8, so nothing is lost).
/// Map it at [`PCI_CONFIG_PORT`] with `D`'s port count.
#[derive(Debug)]
pub struct WithResetControl<D> {
    /// The PCI configuration ports.
    pub config: D,
    /// The reset control register.
    pub reset_control: ResetControl,
}

/// The saved state of [`WithResetControl`]: both parts'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WithResetControlState {
    config: DeviceState,
    reset_control: DeviceState,
}

impl<D: PioDevice> WithResetControl<D> {
    fn is_reset_control(offset: u16, size: u8) -> bool {
        offset == RESET_CONTROL_OFFSET && size == 1
    }
}

impl<D: PioDevice> Device for WithResetControl<D> {
    fn reset(&mut self) {
        self.config.reset();
        self.reset_control.reset();
    }

    fn save_state(&self) -> DeviceState {
        let state = WithResetControlState {
            config: self.config.save_state(),
            reset_control: self.reset_control.save_state(),
        };
        DeviceState::encode(KIND_WITH_RCR, VERSION, &state)
    }

    /// Both parts check their own states; the reset control is restored only
    /// once the configuration ports took theirs.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let state: WithResetControlState = state.decode(KIND_WITH_RCR, VERSION)?;
        let rcr: ResetControlState = state.reset_control.decode(KIND_RCR, VERSION)?;
        self.config.restore_state(&state.config)?;
        self.reset_control.state = rcr;
        Ok(())
    }
}

impl<D: PioDevice> PioDevice for WithResetControl<D> {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        if Self::is_reset_control(offset, size) {
            self.reset_control.read(0, size)
        } else {
            self.config.read(offset, size)
        }
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        if Self::is_reset_control(offset, size) {
            self.reset_control.write(0, size, value);
        } else {
            self.config.write(offset, size, value);
        }
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.config.tick(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;

    fn port92() -> (SystemControlA, A20Gate, Arc<RunControl>) {
        let gate = A20Gate::new(true);
        let control = Arc::new(RunControl::new());
        (
            SystemControlA::new(gate.clone(), control.clone()),
            gate,
            control,
        )
    }

    #[test]
    fn port_92_drives_a20_and_resets_on_a_rising_bit_0() {
        let (mut port, gate, control) = port92();
        assert_eq!(port.read(0, 1), 0);
        assert!(gate.is_open(), "power-on leaves the gate alone");
        port.write(0, 1, 0x00);
        assert!(!gate.is_open());
        assert_eq!(gate.changes(), 1);
        port.write(0, 1, u32::from(FAST_A20));
        assert!(gate.is_open());
        assert_eq!(gate.changes(), 2);
        port.write(0, 1, u32::from(FAST_A20));
        assert_eq!(gate.changes(), 2, "no change, no count");
        assert_eq!(port.read(0, 1), 0x02);
        assert_eq!(control.stop_reason(), None);

        port.write(0, 1, 0x03);
        assert_eq!(control.stop_reason(), Some(StopReason::Reset));
        control.clear();
        // Bit 0 already set: no second reset until it goes 0 then 1 again.
        port.write(0, 1, 0x03);
        assert_eq!(control.stop_reason(), None);
        // A machine reset clears bit 0 and keeps the A20 bit.
        port.reset();
        assert_eq!(port.read(0, 1), 0x02);
        port.write(0, 1, 0x01);
        assert_eq!(control.stop_reason(), Some(StopReason::Reset));
        assert!(!gate.is_open());
    }

    #[test]
    fn port_92_state_round_trips() {
        let (mut a, _, _) = port92();
        a.write(0, 1, 0x02);
        let (mut b, gate_b, _) = port92();
        b.restore_state(&a.save_state()).unwrap();
        assert_eq!(b.read(0, 1), 0x02);
        assert_eq!(
            gate_b.changes(),
            0,
            "restore leaves the gate to the machine"
        );
        assert_refuses_foreign_states(&mut b);
    }

    #[test]
    fn reset_control_resets_on_bit_2_and_keeps_bit_1() {
        let control = Arc::new(RunControl::new());
        let mut rcr = ResetControl::new(control.clone());
        rcr.write(0, 1, 0xff & !u32::from(RCR_RESET_CPU));
        assert_eq!(rcr.read(0, 1), 0x02, "only the reset type is kept");
        assert_eq!(control.stop_reason(), None);
        rcr.write(0, 1, 0x06);
        assert_eq!(control.stop_reason(), Some(StopReason::Reset));
        assert_eq!(rcr.read(0, 1), 0x02, "a resetting write is not stored");
        control.clear();
        // A soft reset (bit 1 clear) resets the machine too, as in QEMU.
        rcr.write(0, 1, 0x04);
        assert_eq!(control.stop_reason(), Some(StopReason::Reset));
        rcr.reset();
        assert_eq!(rcr.read(0, 1), 0);
        assert_refuses_foreign_states(&mut rcr);
    }

    /// Stands in for the PCI configuration ports: remembers accesses.
    #[derive(Debug, Default)]
    struct Recorder {
        writes: Vec<(u16, u8, u32)>,
    }

    crate::state::stateless_device!(Recorder, "recorder", 1);

    impl PioDevice for Recorder {
        fn read(&mut self, offset: u16, size: u8) -> u32 {
            0x1000 + u32::from(offset) * 0x10 + u32::from(size)
        }
        fn write(&mut self, offset: u16, size: u8, value: u32) {
            self.writes.push((offset, size, value));
        }
    }

    #[test]
    fn byte_accesses_at_cf9_reach_reset_control_and_the_rest_pci() {
        let control = Arc::new(RunControl::new());
        let mut ports = WithResetControl {
            config: Recorder::default(),
            reset_control: ResetControl::new(control.clone()),
        };
        ports.write(0, 4, 0x8000_0000);
        ports.write(1, 1, 0x02);
        ports.write(1, 2, 0x1234);
        ports.write(4, 1, 0x55);
        assert_eq!(
            ports.config.writes,
            [(0, 4, 0x8000_0000), (1, 2, 0x1234), (4, 1, 0x55)]
        );
        assert_eq!(ports.read(1, 1), 0x02);
        assert_eq!(ports.read(0, 4), 0x1004);
        assert_eq!(ports.read(1, 2), 0x1012);
        assert_eq!(control.stop_reason(), None);

        let saved = ports.save_state();
        let mut other = WithResetControl {
            config: Recorder::default(),
            reset_control: ResetControl::new(control.clone()),
        };
        other.restore_state(&saved).unwrap();
        assert_eq!(other.read(1, 1), 0x02);
        assert_refuses_foreign_states(&mut other);

        ports.write(1, 1, 0x06);
        assert_eq!(control.stop_reason(), Some(StopReason::Reset));
        ports.reset();
        assert_eq!(ports.read(1, 1), 0);
    }
}
