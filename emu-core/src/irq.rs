//! Interrupts between devices, controllers and CPUs.
//!
//! Three ways an interrupt travels, as on real boards:
//! - a wire ([`IrqLine`]) that a device drives high or low; the controller input
//!   it ends at decides whether it reacts to the level or to a rising edge
//!   ([`IrqInput`] does that bookkeeping for controller models);
//! - a message ([`MsiMessage`]): a device writes `data` to `address`, and whatever
//!   the machine put at that address ([`MsiTarget`]) turns it into an interrupt;
//! - the acknowledge cycle ([`InterruptAcknowledge`]): a CPU that sees its
//!   interrupt pin asserted asks the controller which vector to run (an i8259's
//!   INTA, a local APIC), and the controller marks that interrupt in service.
//!
//! The PLIC, a RISC-V controller whose harts claim interrupts through a register
//! instead, uses only wires.

use serde::{Deserialize, Serialize};

/// One interrupt wire out of a device.
pub trait IrqLine: Send + Sync {
    /// Drives the line high (asserted) or low.
    fn set_level(&self, high: bool);

    /// One edge: the line goes high and back low, for devices that signal an
    /// event on an edge-triggered input (an ISA timer tick, a keyboard byte).
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}

/// A shared line is a line: devices given an `Arc` of a controller's input
/// (an i8259 input, say) hold it as any other.
impl<T: IrqLine + ?Sized> IrqLine for std::sync::Arc<T> {
    fn set_level(&self, high: bool) {
        (**self).set_level(high);
    }

    fn pulse(&self) {
        (**self).pulse();
    }
}

/// One wire into several controller inputs: a PC's ISA interrupt lines
/// reach both the i8259 pair and the I/O APIC.
pub struct IrqFanout(pub Vec<std::sync::Arc<dyn IrqLine>>);

impl std::fmt::Debug for IrqFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IrqFanout").field(&self.0.len()).finish()
    }
}

impl IrqLine for IrqFanout {
    fn set_level(&self, high: bool) {
        for input in &self.0 {
            input.set_level(high);
        }
    }
}

/// How a controller input reacts to its wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// Requests an interrupt while the line is high.
    #[default]
    Level,
    /// Requests one interrupt per rising edge.
    Edge,
}

/// A controller's view of one input wire: its last level and its trigger mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqInput {
    /// The wire's level as last driven.
    pub level: bool,
    /// Level or edge.
    pub trigger: Trigger,
}

impl IrqInput {
    /// An input with the line low.
    pub fn new(trigger: Trigger) -> IrqInput {
        IrqInput {
            level: false,
            trigger,
        }
    }

    /// Records the wire's new level; true when the controller must latch a request
    /// now (a rising edge on an edge input, or a high level on a level input).
    pub fn drive(&mut self, high: bool) -> bool {
        let rising = high && !self.level;
        self.level = high;
        match self.trigger {
            Trigger::Edge => rising,
            Trigger::Level => high,
        }
    }

    /// Whether a level-triggered input still requests service (re-checked after
    /// an end-of-interrupt, when the device may still hold its line high).
    pub fn still_requesting(&self) -> bool {
        self.trigger == Trigger::Level && self.level
    }
}

/// A message-signalled interrupt: the 32-bit write a device makes to ask for
/// service (PCI MSI and MSI-X).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MsiMessage {
    /// Guest physical address the device writes to.
    pub address: u64,
    /// The value it writes.
    pub data: u32,
}

/// Where a machine delivers MSI writes: an interrupt controller's doorbell (a
/// local APIC at 0xfee0_0000, a RISC-V IMSIC), or the bus itself.
pub trait MsiTarget: Send + Sync {
    /// Delivers `message`; false when nothing accepts writes at its address (the
    /// message is lost, as on hardware).
    fn deliver(&self, message: MsiMessage) -> bool;
}

/// A controller a CPU asks for an interrupt vector when its interrupt pin is
/// asserted.
pub trait InterruptAcknowledge: Send + Sync {
    /// Whether an interrupt waits to be acknowledged (the CPU's pin level).
    fn interrupt_pending(&self) -> bool;

    /// The acknowledge cycle: the vector of the interrupt to run now, which the
    /// controller marks as in service; `None` when nothing is pending (a spurious
    /// interrupt, which a real i8259 answers with vector 7 of its base: a
    /// controller model that wants that behaviour returns it here).
    fn acknowledge(&self) -> Option<u8>;
}

/// What a CPU's local interrupt controller tells it besides vectored
/// interrupts: x86's INIT and start-up IPIs and non-maskable interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuSignal {
    /// INIT: the CPU resets and (an application processor) waits for a
    /// start-up IPI.
    Init,
    /// A start-up IPI: a CPU waiting after INIT starts in real mode at
    /// `vector << 12`.
    Startup {
        /// The page number of the start address.
        vector: u8,
    },
    /// A non-maskable interrupt (vector 2).
    Nmi,
}

/// An x86 CPU's local APIC as that CPU sees it: the register page only it
/// reaches at its APIC base, the interrupt pin, the signals other CPUs send,
/// and the model-specific registers that belong to the APIC.
pub trait LocalApicPort: InterruptAcknowledge {
    /// Reads the 32-bit register at `offset` in the APIC's page.
    fn read_register(&self, offset: u32) -> u32;
    /// Writes the 32-bit register at `offset` in the APIC's page.
    fn write_register(&self, offset: u32, value: u32);
    /// Whether a signal ([`CpuSignal`]) waits; a cheap check made between
    /// instructions.
    fn signal_pending(&self) -> bool;
    /// Takes the oldest waiting signal.
    fn take_signal(&self) -> Option<CpuSignal>;
    /// IA32_APIC_BASE's global enable bit changed.
    fn set_hardware_enabled(&self, enabled: bool);
    /// IA32_TSC_DEADLINE was written: the timer fires when the machine's
    /// clock reaches `clock_deadline` (`None`: disarmed). Ignored unless the
    /// timer is in TSC-deadline mode, as on hardware.
    fn set_tsc_deadline(&self, clock_deadline: Option<u64>);
    /// The armed TSC deadline in clock ticks, `None` once it fired or when
    /// it was never armed.
    fn tsc_deadline(&self) -> Option<u64>;
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A small vectored controller for the tests: eight wired inputs with vectors
    /// `base + n`, MSI data as a vector, the lowest vector served first.
    #[derive(Default)]
    struct ToyController {
        inner: Mutex<ToyState>,
    }

    #[derive(Default)]
    struct ToyState {
        inputs: [IrqInput; 8],
        requested: u64,
        in_service: u64,
        msi_requested: [u64; 4],
    }

    const BASE: u8 = 0x20;
    const DOORBELL: u64 = 0xfee0_0000;

    impl ToyController {
        fn drive(&self, input: usize, high: bool) {
            let mut state = self.inner.lock().unwrap();
            if state.inputs[input].drive(high) {
                state.requested |= 1 << input;
            } else if state.inputs[input].trigger == Trigger::Level {
                state.requested &= !(1 << input);
            }
        }
        fn end_of_interrupt(&self, input: usize) {
            let mut state = self.inner.lock().unwrap();
            state.in_service &= !(1 << input);
            if state.inputs[input].still_requesting() {
                state.requested |= 1 << input;
            }
        }
    }

    impl MsiTarget for ToyController {
        fn deliver(&self, message: MsiMessage) -> bool {
            if message.address != DOORBELL {
                return false;
            }
            let vector = (message.data & 0xff) as usize;
            self.inner.lock().unwrap().msi_requested[vector / 64] |= 1 << (vector % 64);
            true
        }
    }

    impl InterruptAcknowledge for ToyController {
        fn interrupt_pending(&self) -> bool {
            let state = self.inner.lock().unwrap();
            state.requested != 0 || state.msi_requested.iter().any(|&w| w != 0)
        }
        fn acknowledge(&self) -> Option<u8> {
            let mut state = self.inner.lock().unwrap();
            let wired = (state.requested != 0).then(|| state.requested.trailing_zeros());
            let msi =
                (0..256u32).find(|&v| state.msi_requested[v as usize / 64] >> (v % 64) & 1 != 0);
            let wired_vector = wired.map(|n| u32::from(BASE) + n);
            let chosen = match (wired_vector, msi) {
                (Some(w), Some(m)) => w.min(m),
                (Some(w), None) => w,
                (None, Some(m)) => m,
                (None, None) => return None,
            };
            if wired_vector == Some(chosen) {
                let n = chosen - u32::from(BASE);
                state.requested &= !(1 << n);
                state.in_service |= 1 << n;
            } else {
                state.msi_requested[chosen as usize / 64] &= !(1 << (chosen % 64));
            }
            Some(chosen as u8)
        }
    }

    struct Wire {
        controller: Arc<ToyController>,
        input: usize,
    }

    impl IrqLine for Wire {
        fn set_level(&self, high: bool) {
            self.controller.drive(self.input, high);
        }
    }

    #[test]
    fn edge_inputs_latch_one_request_per_rising_edge() {
        let mut input = IrqInput::new(Trigger::Edge);
        assert!(input.drive(true));
        assert!(!input.drive(true), "a held level is not a new edge");
        assert!(!input.drive(false));
        assert!(input.drive(true));
        assert!(!input.still_requesting());
        let mut level = IrqInput::new(Trigger::Level);
        assert!(level.drive(true));
        assert!(level.drive(true));
        assert!(level.still_requesting());
        assert!(!level.drive(false));
    }

    #[test]
    fn acknowledge_hands_out_vectors_in_priority_order_once_each() {
        let controller = Arc::new(ToyController::default());
        controller.inner.lock().unwrap().inputs[3].trigger = Trigger::Edge;
        let timer = Wire {
            controller: controller.clone(),
            input: 3,
        };
        let disk = Wire {
            controller: controller.clone(),
            input: 5,
        };
        assert!(!controller.interrupt_pending());
        assert_eq!(controller.acknowledge(), None);
        // An edge: the pulse is latched though the line is low again.
        timer.pulse();
        disk.set_level(true);
        assert!(controller.interrupt_pending());
        assert_eq!(controller.acknowledge(), Some(BASE + 3));
        assert_eq!(controller.acknowledge(), Some(BASE + 5));
        assert_eq!(controller.acknowledge(), None, "each request served once");
        // A level input still high at end-of-interrupt asks again; an edge does not.
        controller.end_of_interrupt(3);
        controller.end_of_interrupt(5);
        assert_eq!(controller.acknowledge(), Some(BASE + 5));
        disk.set_level(false);
        controller.end_of_interrupt(5);
        assert!(!controller.interrupt_pending());
    }

    #[test]
    fn msi_messages_become_vectors_at_their_doorbell_only() {
        let controller = ToyController::default();
        let message = MsiMessage {
            address: DOORBELL,
            data: 0x41,
        };
        assert!(controller.deliver(message));
        assert!(!controller.deliver(MsiMessage {
            address: 0x1000,
            data: 0x42
        }));
        assert!(controller.interrupt_pending());
        assert_eq!(controller.acknowledge(), Some(0x41));
        assert_eq!(controller.acknowledge(), None, "the stray write was lost");
    }
}
