//! The PC's pair of Intel 8259A programmable interrupt controllers, wired as on
//! QEMU's `pc` machine (and the PC/AT before it): the master at ports
//! 0x20–0x21 takes IRQ 0–7, the slave at 0xA0–0xA1 takes IRQ 8–15 and drives
//! the master's IR2, and the edge/level control registers (ELCR) at
//! 0x4D0–0x4D1 choose each line's trigger.
//!
//! The model follows the 8259A datasheet and QEMU's `hw/intc/i8259.c`:
//! ICW1–ICW4 initialisation, OCW1 (mask), OCW2 (EOI, specific EOI, rotation,
//! set priority), OCW3 (IRR/ISR read, poll, special mask), automatic EOI,
//! special fully nested mode, and spurious IRQ 7/15 when a request is gone by
//! the acknowledge cycle. Two points where it picks one reading over another:
//! - An edge-triggered request stays latched in IRR until acknowledged even if
//!   the line drops first (QEMU does the same): devices signal edges with
//!   [`IrqLine::pulse`], which would otherwise vanish at once. A request still
//!   vanishes, giving a spurious interrupt, when it is masked or a
//!   level-triggered line drops before the acknowledge.
//! - ICW1 resets the edge sense as the datasheet says: a line already high
//!   must go low and high again to request (QEMU forgets the line level
//!   instead).
//!
//! Devices hold [`I8259::input`] lines and may drive them from any thread.
//! The CPU asks the pair for vectors through [`InterruptAcknowledge`]; the
//! master's INT output is kept in an atomic so the CPU's check between
//! instructions takes no lock, and every change of it bumps the machine's
//! [`RunControl`] interrupt epoch, which wakes a vCPU waiting in HLT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use emu_core::sync::LockRecover;
use emu_core::{
    Device, DeviceState, InterruptAcknowledge, IrqLine, PioDevice, RunControl, StateError,
};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// First port of the master controller (command at +0, data at +1).
pub const MASTER_PORT: u16 = 0x20;
/// First port of the slave controller.
pub const SLAVE_PORT: u16 = 0xa0;
/// First ELCR port (+0 for IRQ 0–7, +1 for IRQ 8–15).
pub const ELCR_PORT: u16 = 0x4d0;
/// Length of each of the three port windows.
pub const PORT_COUNT: u32 = 2;
/// Interrupt lines into the pair.
pub const IRQS: usize = 16;
/// The master input the slave's INT output drives.
pub const CASCADE_IRQ: u8 = 2;

/// ICW1 is a command-port write with this bit set.
const ICW1: u8 = 0x10;
/// ICW1: ICW4 follows.
const ICW1_IC4: u8 = 0x01;
/// ICW1: single controller, no ICW3.
const ICW1_SNGL: u8 = 0x02;
/// ICW1: every input level-triggered.
const ICW1_LTIM: u8 = 0x08;
/// ICW2 keeps the vector base's top five bits.
const ICW2_BASE_MASK: u8 = 0xf8;
/// ICW4: automatic end of interrupt.
const ICW4_AEOI: u8 = 0x02;
/// ICW4: special fully nested mode.
const ICW4_SFNM: u8 = 0x10;
/// A command-port write with this bit (and not [`ICW1`]) is OCW3.
const OCW3: u8 = 0x08;
/// OCW3: read ISR (else IRR) when RR is set.
const OCW3_RIS: u8 = 0x01;
/// OCW3: the RIS bit is valid.
const OCW3_RR: u8 = 0x02;
/// OCW3: poll command.
const OCW3_POLL: u8 = 0x04;
/// OCW3: special mask mode on (when ESMM is set).
const OCW3_SMM: u8 = 0x20;
/// OCW3: the SMM bit is valid.
const OCW3_ESMM: u8 = 0x40;
/// OCW2's command field (R, SL, EOI).
const OCW2_COMMAND: u8 = 0xe0;
/// OCW2: clear the rotate-in-automatic-EOI flag.
const OCW2_CLEAR_ROTATE_AEOI: u8 = 0x00;
/// OCW2: non-specific EOI.
const OCW2_EOI: u8 = 0x20;
/// OCW2: specific EOI of the level in bits 2–0.
const OCW2_SPECIFIC_EOI: u8 = 0x60;
/// OCW2: set the rotate-in-automatic-EOI flag.
const OCW2_SET_ROTATE_AEOI: u8 = 0x80;
/// OCW2: non-specific EOI, then the served level becomes the lowest priority.
const OCW2_ROTATE_EOI: u8 = 0xa0;
/// OCW2: make the level in bits 2–0 the lowest priority.
const OCW2_SET_PRIORITY: u8 = 0xc0;
/// OCW2: specific EOI, and that level becomes the lowest priority.
const OCW2_ROTATE_SPECIFIC_EOI: u8 = 0xe0;
/// The level field of OCW2.
const OCW2_LEVEL: u8 = 0x07;
/// Poll byte: an interrupt was pending (its level in bits 2–0).
const POLL_PENDING: u8 = 0x80;
/// The input a spurious acknowledge reports.
const SPURIOUS_IRQ: u8 = 7;
/// ELCR bits that exist: IRQ 0, 1 and 2 are always edge-triggered on a PC.
const MASTER_ELCR_MASK: u8 = 0xf8;
/// ELCR bits that exist: IRQ 8 (RTC) and 13 (FPU) are always edge-triggered.
const SLAVE_ELCR_MASK: u8 = 0xde;

/// Model name of the pair's saved state (in the master's port window).
const KIND: &str = "i8259";
/// Layout version of [`PicPairState`].
const VERSION: u32 = 1;
/// Model names of the windows that keep no state of their own.
const SLAVE_KIND: &str = "i8259-slave-ports";
const ELCR_KIND: &str = "i8259-elcr";

/// Where one controller is in its initialisation sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitStep {
    /// Initialised: data-port writes set the mask (OCW1).
    #[default]
    Ready,
    /// ICW1 seen: the next data-port write is ICW2.
    Icw2,
    /// The next data-port write is ICW3.
    Icw3,
    /// The next data-port write is ICW4.
    Icw4,
}

/// The registers of one 8259A, bit n standing for its input n.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PicChipState {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// Input levels as last driven (for edge detection).
    pub levels: u8,
    /// Edge/level control register: a set bit makes that input level-triggered.
    pub elcr: u8,
    /// Vector of input 0 (ICW2, a multiple of 8).
    pub vector_base: u8,
    /// The input with the highest priority is `priority_base` (rotation).
    pub priority_base: u8,
    /// Initialisation progress.
    pub init: InitStep,
    /// ICW1 asked for ICW4.
    pub expects_icw4: bool,
    /// ICW1: single mode (no ICW3).
    pub single: bool,
    /// ICW1 LTIM: every input level-triggered whatever the ELCR says.
    pub level_all: bool,
    /// ICW3 as written (slaves on the master, the cascade identity on a slave).
    pub cascade: u8,
    /// ICW4: automatic EOI.
    pub auto_eoi: bool,
    /// OCW2: rotate priorities on automatic EOI.
    pub rotate_on_auto_eoi: bool,
    /// ICW4: special fully nested mode.
    pub special_fully_nested: bool,
    /// OCW3: special mask mode.
    pub special_mask: bool,
    /// OCW3: the next read is a poll.
    pub poll: bool,
    /// OCW3: command-port reads return ISR rather than IRR.
    pub read_isr: bool,
}

impl PicChipState {
    /// Inputs that are level-triggered now.
    fn level_triggered(&self) -> u8 {
        if self.level_all { 0xff } else { self.elcr }
    }

    /// Records input `irq`'s new level, latching a request on a rising edge
    /// (edge inputs) or following the level (level inputs).
    fn drive(&mut self, irq: u8, high: bool) {
        let bit = 1u8 << irq;
        let rising = high && self.levels & bit == 0;
        if high {
            self.levels |= bit;
        } else {
            self.levels &= !bit;
        }
        if self.level_triggered() & bit != 0 {
            self.irr = (self.irr & !bit) | (self.levels & bit);
        } else if rising {
            self.irr |= bit;
        }
    }

    /// The priority rank (0 highest) of the most urgent input in `mask`.
    fn best_rank(&self, mask: u8) -> Option<u8> {
        (0..8).find(|rank| mask & (1 << ((rank + self.priority_base) & 7)) != 0)
    }

    /// The input this controller would signal: the most urgent unmasked request
    /// that outranks everything in service.
    fn wanted(&self, is_master: bool) -> Option<u8> {
        let rank = self.best_rank(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        if self.special_mask {
            // Special mask mode: masked levels in service do not hold lower ones.
            in_service &= !self.imr;
        }
        if self.special_fully_nested && is_master {
            // The slave sorts out its own priorities; the master lets another
            // slave request through while one is in service.
            in_service &= !(1 << CASCADE_IRQ);
        }
        let outranks = self
            .best_rank(in_service)
            .is_none_or(|current| rank < current);
        outranks.then_some((rank + self.priority_base) & 7)
    }

    /// The acknowledge of input `irq`: in service (unless automatic EOI), and
    /// an edge request consumed.
    fn acknowledge(&mut self, irq: u8) {
        let bit = 1u8 << irq;
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.priority_base = (irq + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
        // A level input keeps requesting while its line is high.
        if self.level_triggered() & bit == 0 {
            self.irr &= !bit;
        }
    }

    /// ICW1: start initialisation, resetting what the datasheet says it does.
    fn start_init(&mut self, icw1: u8) {
        *self = PicChipState {
            // The ELCR is a separate register; the wires stay as driven.
            elcr: self.elcr,
            levels: self.levels,
            init: InitStep::Icw2,
            expects_icw4: icw1 & ICW1_IC4 != 0,
            single: icw1 & ICW1_SNGL != 0,
            level_all: icw1 & ICW1_LTIM != 0,
            ..PicChipState::default()
        };
        // Edge sense reset: only level inputs request at once.
        self.irr = self.levels & self.level_triggered();
    }

    /// A write to the data port: an ICW during initialisation, else OCW1.
    fn write_data(&mut self, value: u8) {
        self.init = match self.init {
            InitStep::Ready => {
                self.imr = value;
                InitStep::Ready
            }
            InitStep::Icw2 => {
                self.vector_base = value & ICW2_BASE_MASK;
                match (self.single, self.expects_icw4) {
                    (false, _) => InitStep::Icw3,
                    (true, true) => InitStep::Icw4,
                    (true, false) => InitStep::Ready,
                }
            }
            InitStep::Icw3 => {
                self.cascade = value;
                if self.expects_icw4 {
                    InitStep::Icw4
                } else {
                    InitStep::Ready
                }
            }
            InitStep::Icw4 => {
                self.auto_eoi = value & ICW4_AEOI != 0;
                self.special_fully_nested = value & ICW4_SFNM != 0;
                InitStep::Ready
            }
        };
    }

    /// A write to the command port: ICW1, OCW2 or OCW3.
    fn write_command(&mut self, value: u8) {
        if value & ICW1 != 0 {
            self.start_init(value);
        } else if value & OCW3 != 0 {
            if value & OCW3_POLL != 0 {
                self.poll = true;
            }
            if value & OCW3_RR != 0 {
                self.read_isr = value & OCW3_RIS != 0;
            }
            if value & OCW3_ESMM != 0 {
                self.special_mask = value & OCW3_SMM != 0;
            }
        } else {
            self.write_ocw2(value);
        }
    }

    fn write_ocw2(&mut self, value: u8) {
        let level = value & OCW2_LEVEL;
        match value & OCW2_COMMAND {
            OCW2_CLEAR_ROTATE_AEOI => self.rotate_on_auto_eoi = false,
            OCW2_SET_ROTATE_AEOI => self.rotate_on_auto_eoi = true,
            command @ (OCW2_EOI | OCW2_ROTATE_EOI) => {
                // Non-specific: the most urgent level in service is done.
                if let Some(rank) = self.best_rank(self.isr) {
                    let irq = (rank + self.priority_base) & 7;
                    self.isr &= !(1 << irq);
                    if command == OCW2_ROTATE_EOI {
                        self.priority_base = (irq + 1) & 7;
                    }
                }
            }
            OCW2_SPECIFIC_EOI => self.isr &= !(1 << level),
            OCW2_ROTATE_SPECIFIC_EOI => {
                self.isr &= !(1 << level);
                self.priority_base = (level + 1) & 7;
            }
            OCW2_SET_PRIORITY => self.priority_base = (level + 1) & 7,
            // 0x40: no operation.
            _ => {}
        }
    }

    /// The power-on state, keeping the wires' levels (they are the devices').
    fn power_on(&self) -> PicChipState {
        PicChipState {
            levels: self.levels,
            ..PicChipState::default()
        }
    }
}

/// The guest-visible state of the pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PicPairState {
    /// The master controller (IRQ 0–7).
    pub master: PicChipState,
    /// The slave controller (IRQ 8–15).
    pub slave: PicChipState,
    /// The level devices drive on IRQ 2 itself, beside the slave's output on
    /// the same master input.
    pub irq2_line: bool,
}

/// What the controllers and every handle to them share.
#[derive(Debug)]
struct Shared {
    pair: Mutex<PicPairState>,
    /// The master's INT output, read by the CPU without the lock.
    output: AtomicBool,
    control: Arc<RunControl>,
}

impl Shared {
    /// Feeds the slave's output into the master and drives the master's INT
    /// output. Called with the lock held after every change.
    fn update(&self, pair: &mut PicPairState) {
        let cascade = pair.slave.wanted(false).is_some() || pair.irq2_line;
        pair.master.drive(CASCADE_IRQ, cascade);
        let out = pair.master.wanted(true).is_some();
        if self.output.swap(out, Ordering::SeqCst) != out {
            // Wakes a vCPU in HLT, and tells translated code to look again.
            self.control.notify_irq();
        }
    }

    fn set_line(&self, irq: usize, high: bool) {
        let mut pair = self.pair.lock_recover();
        match irq {
            0..=7 if irq == usize::from(CASCADE_IRQ) => pair.irq2_line = high,
            0..=7 => pair.master.drive(irq as u8, high),
            _ => pair.slave.drive((irq - 8) as u8, high),
        }
        self.update(&mut pair);
    }
}

/// The i8259 pair: a cloneable handle to the two controllers.
///
/// A machine maps [`I8259::master_ports`] at [`MASTER_PORT`],
/// [`I8259::slave_ports`] at [`SLAVE_PORT`] and [`I8259::elcr_ports`] at
/// [`ELCR_PORT`] (each [`PORT_COUNT`] ports), hands [`I8259::input`] lines to
/// devices, and connects the pair (as an [`InterruptAcknowledge`]) to the CPU.
#[derive(Clone, Debug)]
pub struct I8259 {
    shared: Arc<Shared>,
}

impl I8259 {
    /// A pair in its power-on state, signalling output changes through
    /// `control`.
    pub fn new(control: Arc<RunControl>) -> I8259 {
        I8259 {
            shared: Arc::new(Shared {
                pair: Mutex::new(PicPairState::default()),
                output: AtomicBool::new(false),
                control,
            }),
        }
    }

    /// The line for IRQ `irq` (0–15). IRQ 2 shares the master input the slave
    /// drives, as on QEMU's `pc`.
    ///
    /// # Panics
    /// If `irq` is 16 or more (a wiring mistake in the machine definition).
    pub fn input(&self, irq: usize) -> Arc<dyn IrqLine> {
        assert!(irq < IRQS, "i8259 input {irq} out of range");
        Arc::new(PicInput {
            shared: self.shared.clone(),
            irq,
        })
    }

    /// The master's command and data ports. Its saved state is the whole
    /// pair's, and its reset resets both controllers.
    pub fn master_ports(&self) -> PicPorts {
        self.ports(Window::Master)
    }

    /// The slave's command and data ports (no state of their own: the
    /// master's window saves and resets the pair).
    pub fn slave_ports(&self) -> PicPorts {
        self.ports(Window::Slave)
    }

    /// The two ELCR ports (their values are saved with the pair).
    pub fn elcr_ports(&self) -> PicPorts {
        self.ports(Window::Elcr)
    }

    fn ports(&self, window: Window) -> PicPorts {
        PicPorts {
            shared: self.shared.clone(),
            window,
        }
    }

    /// A copy of the pair's registers.
    pub fn state(&self) -> PicPairState {
        self.shared.pair.lock_recover().clone()
    }
}

impl InterruptAcknowledge for I8259 {
    fn interrupt_pending(&self) -> bool {
        self.shared.output.load(Ordering::SeqCst)
    }

    /// The INTA cycle. Always yields a vector, as the chips do: when the
    /// request is gone by now (masked, or a level line dropped), the answer is
    /// the spurious IRQ 7 of the master, or IRQ 15 if the slave lost it (the
    /// master then still has IRQ 2 in service).
    fn acknowledge(&self) -> Option<u8> {
        let mut pair = self.shared.pair.lock_recover();
        let vector = match pair.master.wanted(true) {
            // In single mode the master supplies IRQ 2's vector itself.
            Some(CASCADE_IRQ) if !pair.master.single => {
                let irq = match pair.slave.wanted(false) {
                    Some(irq) => {
                        pair.slave.acknowledge(irq);
                        irq
                    }
                    None => SPURIOUS_IRQ,
                };
                // The slave's output may drop now; the master sees that first.
                self.shared.update(&mut pair);
                pair.master.acknowledge(CASCADE_IRQ);
                pair.slave.vector_base | irq
            }
            Some(irq) => {
                pair.master.acknowledge(irq);
                pair.master.vector_base | irq
            }
            None => pair.master.vector_base | SPURIOUS_IRQ,
        };
        self.shared.update(&mut pair);
        Some(vector)
    }
}

/// One interrupt line into the pair.
#[derive(Debug)]
struct PicInput {
    shared: Arc<Shared>,
    irq: usize,
}

impl IrqLine for PicInput {
    fn set_level(&self, high: bool) {
        self.shared.set_line(self.irq, high);
    }
}

/// Which ports a [`PicPorts`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    Master,
    Slave,
    Elcr,
}

/// One of the pair's three port windows, a [`PioDevice`] of [`PORT_COUNT`]
/// byte-wide ports (wider accesses take consecutive ports, low byte first).
#[derive(Debug)]
pub struct PicPorts {
    shared: Arc<Shared>,
    window: Window,
}

/// The poll command's answer: the request a chip would signal, acknowledged.
fn poll(chip: &mut PicChipState, is_master: bool) -> u8 {
    chip.poll = false;
    match chip.wanted(is_master) {
        Some(irq) => {
            chip.acknowledge(irq);
            POLL_PENDING | irq
        }
        None => 0,
    }
}

impl PicPorts {
    fn read_byte(&self, pair: &mut PicPairState, port: u16) -> u8 {
        let (chip, is_master) = match self.window {
            Window::Master => (&mut pair.master, true),
            Window::Slave => (&mut pair.slave, false),
            Window::Elcr => {
                return match port {
                    0 => pair.master.elcr,
                    _ => pair.slave.elcr,
                };
            }
        };
        if chip.poll {
            // Either port reads the poll byte once after the command.
            return poll(chip, is_master);
        }
        match (port, chip.read_isr) {
            (0, true) => chip.isr,
            (0, false) => chip.irr,
            _ => chip.imr,
        }
    }

    fn write_byte(&self, pair: &mut PicPairState, port: u16, value: u8) {
        match (self.window, port) {
            (Window::Master, 0) => pair.master.write_command(value),
            (Window::Master, _) => pair.master.write_data(value),
            (Window::Slave, 0) => pair.slave.write_command(value),
            (Window::Slave, _) => pair.slave.write_data(value),
            (Window::Elcr, 0) => set_elcr(&mut pair.master, value & MASTER_ELCR_MASK),
            (Window::Elcr, _) => set_elcr(&mut pair.slave, value & SLAVE_ELCR_MASK),
        }
    }
}

/// A new ELCR value: a line turned level-triggered requests by its level
/// from now on; one turned edge-triggered keeps a request it already has.
fn set_elcr(chip: &mut PicChipState, elcr: u8) {
    chip.elcr = elcr;
    let level = chip.level_triggered();
    chip.irr = (chip.irr & !level) | (chip.levels & level);
}

impl Device for PicPorts {
    /// The master's window resets both controllers to power-on (ELCR too, as
    /// QEMU does); the other windows have nothing of their own to reset.
    fn reset(&mut self) {
        if self.window == Window::Master {
            let mut pair = self.shared.pair.lock_recover();
            pair.master = pair.master.power_on();
            pair.slave = pair.slave.power_on();
            self.shared.update(&mut pair);
        }
    }

    fn save_state(&self) -> DeviceState {
        match self.window {
            Window::Master => DeviceState::encode(KIND, VERSION, &*self.shared.pair.lock_recover()),
            Window::Slave => Stateless(SLAVE_KIND).save_state(),
            Window::Elcr => Stateless(ELCR_KIND).save_state(),
        }
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        match self.window {
            Window::Master => {
                let restored: PicPairState = state.decode(KIND, VERSION)?;
                let mut pair = self.shared.pair.lock_recover();
                *pair = restored;
                self.shared.update(&mut pair);
                Ok(())
            }
            Window::Slave => Stateless(SLAVE_KIND).restore_state(state),
            Window::Elcr => Stateless(ELCR_KIND).restore_state(state),
        }
    }
}

/// The saved state of the windows that keep none.
struct Stateless(&'static str);

impl Stateless {
    fn save_state(&self) -> DeviceState {
        DeviceState::encode(self.0, VERSION, &crate::state::NoState {})
    }

    fn restore_state(&self, state: &DeviceState) -> Result<(), StateError> {
        let crate::state::NoState {} = state.decode(self.0, VERSION)?;
        Ok(())
    }
}

impl PioDevice for PicPorts {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let mut pair = self.shared.pair.lock_recover();
        let mut value = 0u32;
        for i in 0..u16::from(size.min(4)) {
            let port = offset + i;
            let byte = if u32::from(port) < PORT_COUNT {
                self.read_byte(&mut pair, port)
            } else {
                0xff
            };
            value |= u32::from(byte) << (8 * i);
        }
        // A poll acknowledges an interrupt.
        self.shared.update(&mut pair);
        value
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        let mut pair = self.shared.pair.lock_recover();
        for i in 0..u16::from(size.min(4)) {
            let port = offset + i;
            if u32::from(port) < PORT_COUNT {
                self.write_byte(&mut pair, port, (value >> (8 * i)) as u8);
            }
        }
        self.shared.update(&mut pair);
    }
}
