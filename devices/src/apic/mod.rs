//! The x86 APIC system as a PC has it: a local APIC in each CPU, an I/O
//! APIC taking the board's interrupt lines, and the message bus between
//! them (the I/O APIC's and PCI devices' interrupt messages, IPIs from one
//! CPU to others, and the end-of-interrupt broadcast that level-triggered
//! lines need).
//!
//! The local APIC is the xAPIC of P6 and later parts (version 0x14, six LVT
//! entries, no x2APIC), the I/O APIC an 82093AA with 24 pins (version 0x20),
//! both as QEMU's `pc` presents them. The local APIC's register page is
//! private to its CPU, which reaches it through
//! [`emu_core::LocalApicPort`]; what devices write to the same addresses is a
//! message-signalled interrupt ([`MsiWindow`]).

pub mod io;
pub mod local;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock, Weak};

use emu_core::{
    BusFault, Device, DeviceState, InterruptAcknowledge, MmioDevice, MsiMessage, MsiTarget,
    RunControl, StateError, VirtualClock,
};

pub use io::{IoApic, IoApicInput, IoApicRegisters};
pub use local::LocalApic;

/// Where every local APIC's page is after reset, and where devices write
/// their interrupt messages.
pub const LOCAL_APIC_BASE: u64 = 0xfee0_0000;
/// The interrupt-message window's size: 0xFEE0_0000 to 0xFEEF_FFFF.
pub const MSI_WINDOW_SIZE: u64 = 0x10_0000;
/// Where the I/O APIC's two registers are.
pub const IO_APIC_BASE: u64 = 0xfec0_0000;
/// The I/O APIC's decoded window.
pub const IO_APIC_SIZE: u64 = 0x1000;

/// How a message asks its targets to act (the three-bit field of the ICR,
/// redirection entries and MSI data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// The vector to every target.
    Fixed,
    /// The vector to the one target with the lowest priority.
    LowestPriority,
    /// A system-management interrupt (not modelled: dropped).
    Smi,
    /// A non-maskable interrupt.
    Nmi,
    /// INIT: reset and wait for a start-up IPI.
    Init,
    /// Start-up IPI.
    Startup,
    /// The vector comes from the i8259 through an acknowledge cycle.
    ExtInt,
    /// A reserved encoding: dropped.
    Reserved,
}

impl DeliveryMode {
    /// The mode the three bits `bits` (0–7) encode.
    pub fn from_bits(bits: u32) -> DeliveryMode {
        match bits & 7 {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            4 => DeliveryMode::Nmi,
            5 => DeliveryMode::Init,
            6 => DeliveryMode::Startup,
            7 => DeliveryMode::ExtInt,
            _ => DeliveryMode::Reserved,
        }
    }
}

/// Which local APICs a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The APIC whose ID is this (0xFF: all of them).
    Physical(u8),
    /// The APICs whose logical destination matches this under their
    /// destination format (0xFF: all of them).
    Logical(u8),
    /// The sending CPU's own APIC (an ICR shorthand).
    SelfOnly,
    /// Every APIC (an ICR shorthand).
    All,
    /// Every APIC but the sender's (an ICR shorthand).
    AllButSelf,
}

/// One interrupt message on the APIC bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicMessage {
    /// The vector (for start-up IPIs, the start page).
    pub vector: u8,
    /// What the targets do.
    pub mode: DeliveryMode,
    /// Who the targets are.
    pub destination: Destination,
    /// A level-triggered interrupt: its EOI goes back to the I/O APIC.
    pub level_triggered: bool,
}

impl ApicMessage {
    /// The message a PCI device's MSI write stands for: destination ID in
    /// address bits 19–12, logical when bit 2 is set; vector, delivery mode
    /// and trigger in the data.
    pub fn from_msi(message: MsiMessage) -> ApicMessage {
        let id = ((message.address >> 12) & 0xff) as u8;
        let logical = message.address & (1 << 2) != 0;
        ApicMessage {
            vector: message.data as u8,
            mode: DeliveryMode::from_bits(message.data >> 8),
            destination: if logical {
                Destination::Logical(id)
            } else {
                Destination::Physical(id)
            },
            level_triggered: message.data & (1 << 15) != 0,
        }
    }
}

/// The bus joining the local APICs and the I/O APIC.
pub struct ApicBus {
    cpus: Vec<Arc<LocalApic>>,
    io_apic: OnceLock<Weak<IoApic>>,
    control: Arc<RunControl>,
}

impl std::fmt::Debug for ApicBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApicBus")
            .field("cpus", &self.cpus.len())
            .finish_non_exhaustive()
    }
}

impl ApicBus {
    /// A bus with `cpus` local APICs, IDs 0 up, the first the bootstrap
    /// processor's. `pic` is the i8259 pair behind each APIC's LINT0 (in
    /// virtual-wire mode, as firmware leaves it); `clock` counts the APIC
    /// timers' bus cycles.
    pub fn new(
        cpus: usize,
        pic: Option<Arc<dyn InterruptAcknowledge>>,
        clock: Arc<VirtualClock>,
        control: Arc<RunControl>,
    ) -> Arc<ApicBus> {
        Arc::new_cyclic(|bus: &Weak<ApicBus>| ApicBus {
            cpus: (0..cpus)
                .map(|index| {
                    Arc::new(LocalApic::new(
                        index as u8,
                        index == 0,
                        bus.clone(),
                        pic.clone(),
                        clock.clone(),
                    ))
                })
                .collect(),
            io_apic: OnceLock::new(),
            control,
        })
    }

    /// CPU `index`'s local APIC.
    pub fn local_apic(&self, index: usize) -> Arc<LocalApic> {
        self.cpus[index].clone()
    }

    /// The local APICs, in CPU order.
    pub fn local_apics(&self) -> &[Arc<LocalApic>] {
        &self.cpus
    }

    /// Joins the I/O APIC, which hears the EOIs of level-triggered vectors.
    pub fn connect_io_apic(&self, io_apic: &Arc<IoApic>) {
        let _ = self.io_apic.set(Arc::downgrade(io_apic));
    }

    /// Delivers `message` from the CPU `sender` (`None`: from the I/O APIC
    /// or a device).
    pub fn deliver(&self, message: ApicMessage, sender: Option<usize>) {
        let matches = |index: usize, apic: &LocalApic| match message.destination {
            Destination::Physical(0xff) | Destination::All => true,
            Destination::Physical(id) => apic.id() == id,
            Destination::Logical(mask) => apic.logical_match(mask),
            Destination::SelfOnly => Some(index) == sender,
            Destination::AllButSelf => Some(index) != sender,
        };
        let targets = self
            .cpus
            .iter()
            .enumerate()
            .filter(|(index, apic)| matches(*index, apic))
            .map(|(_, apic)| apic);
        match message.mode {
            DeliveryMode::Smi | DeliveryMode::Reserved => return,
            // The arbitration on hardware picks the lowest task priority;
            // among equals, the first.
            DeliveryMode::LowestPriority => {
                if let Some(target) = targets.min_by_key(|apic| apic.task_priority()) {
                    target.accept(&message);
                }
            }
            _ => targets.for_each(|apic| apic.accept(&message)),
        }
        self.control.notify_irq();
    }

    /// The EOI broadcast for a level-triggered `vector`.
    fn end_of_interrupt(&self, vector: u8) {
        if let Some(io_apic) = self.io_apic.get().and_then(Weak::upgrade) {
            io_apic.end_of_interrupt(vector);
        }
    }

    /// The window at [`LOCAL_APIC_BASE`] as devices see it, to map on the
    /// machine's bus: writes there are interrupt messages. It also keeps the
    /// APICs' timers and resets them with the machine.
    pub fn msi_window(self: &Arc<Self>) -> MsiWindow {
        MsiWindow { bus: self.clone() }
    }
}

impl MsiTarget for ApicBus {
    fn deliver(&self, message: MsiMessage) -> bool {
        if message.address & !(MSI_WINDOW_SIZE - 1) != LOCAL_APIC_BASE {
            return false;
        }
        ApicBus::deliver(self, ApicMessage::from_msi(message), None);
        true
    }
}

/// The interrupt-message window at 0xFEE0_0000 on the machine's bus: a
/// device's (or a CPU's with its APIC off) 32-bit write there is an MSI.
/// As a bus device it also runs the local APICs' timers and resets them.
#[derive(Debug)]
pub struct MsiWindow {
    bus: Arc<ApicBus>,
}

impl Device for MsiWindow {
    fn reset(&mut self) {
        for apic in &self.bus.cpus {
            apic.reset();
        }
    }

    fn save_state(&self) -> DeviceState {
        let states: Vec<local::LocalApicState> = self.bus.cpus.iter().map(|a| a.state()).collect();
        DeviceState::encode("local-apics", 1, &states)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let states: Vec<local::LocalApicState> = state.decode("local-apics", 1)?;
        if states.len() != self.bus.cpus.len() {
            return Err(StateError::Invalid {
                kind: "local-apics".to_owned(),
                reason: format!(
                    "{} local APICs saved, {} here",
                    states.len(),
                    self.bus.cpus.len()
                ),
            });
        }
        for (apic, saved) in self.bus.cpus.iter().zip(states) {
            apic.restore(saved);
        }
        Ok(())
    }
}

impl MmioDevice for MsiWindow {
    fn read(&mut self, _offset: u64, size: u8) -> Result<u64, BusFault> {
        Ok(crate::pci::ones64(size))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        if size == 4 {
            MsiTarget::deliver(
                &*self.bus,
                MsiMessage {
                    address: LOCAL_APIC_BASE + offset,
                    data: value as u32,
                },
            );
        }
        Ok(())
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.bus.cpus.iter().filter_map(|apic| apic.tick(now)).min()
    }
}
