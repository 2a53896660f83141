//! A 16550A UART (the `ns16550a` of QEMU's virt board), byte-wide registers.
//!
//! Output goes to a host writer; input arrives through a channel fed by a host
//! thread, so a guest polling the line status never blocks the emulator.

use std::collections::VecDeque;
use std::io::Write;

use crossbeam_channel::Receiver;
use emu_core::{BusFault, Device, DeviceState, IrqLine, MmioDevice, StateError};
use serde::{Deserialize, Serialize};

use crate::state::invalid;

/// Size of the register window.
pub const SIZE: u64 = 0x100;

const RBR_THR: u64 = 0;
const IER: u64 = 1;
const IIR_FCR: u64 = 2;
const LCR: u64 = 3;
const MCR: u64 = 4;
const LSR: u64 = 5;
const MSR: u64 = 6;
const SCR: u64 = 7;

const LCR_DLAB: u8 = 0x80;
const IER_RX_AVAILABLE: u8 = 0x01;
const IER_THR_EMPTY: u8 = 0x02;
const LSR_DATA_READY: u8 = 0x01;
const LSR_THR_EMPTY: u8 = 0x20;
const LSR_TRANSMITTER_EMPTY: u8 = 0x40;
const IIR_NONE: u8 = 0x01;
const IIR_THR_EMPTY: u8 = 0x02;
const IIR_RX_AVAILABLE: u8 = 0x04;
const IIR_FIFO_ENABLED: u8 = 0xc0;
const MCR_LOOPBACK: u8 = 0x10;
const RX_FIFO_LIMIT: usize = 16;

/// Model name in saved states.
const KIND: &str = "uart16550";
/// Layout version of the saved [`UartState`].
const VERSION: u32 = 1;

/// The UART's register state, apart from its host connections.
///
/// Its default is the power-on state (QEMU's `serial_reset`): every register 0
/// (divisor latch included), FIFOs off and empty, no interrupt owed.
///
/// What it leaves out are host handles: the writer output goes to, the channel
/// host input arrives on (bytes still in it have not reached the UART yet; they are
/// the host's, and arrive in whichever UART reads the channel next), the interrupt
/// line, and whether the writer holds output not yet flushed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UartState {
    /// Interrupt enable register.
    pub ier: u8,
    /// Line control register.
    pub lcr: u8,
    /// Modem control register.
    pub mcr: u8,
    /// Scratch register.
    pub scr: u8,
    /// Divisor latch.
    pub divisor: u16,
    /// FIFO control (only the enable bit is kept).
    pub fifo_enabled: bool,
    /// A THR-empty interrupt is owed (cleared by reading IIR or writing THR).
    pub thr_interrupt: bool,
    /// Received bytes not yet read (at most 16, the FIFO's depth).
    pub rx: VecDeque<u8>,
}

/// The UART device.
pub struct Uart16550 {
    state: UartState,
    output: Box<dyn Write + Send>,
    input: Option<Receiver<u8>>,
    irq: Option<Box<dyn IrqLine>>,
    /// Output written since the last flush (prompts end without a newline).
    unflushed: bool,
}

impl std::fmt::Debug for Uart16550 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uart16550")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Uart16550 {
    /// A UART writing to `output` and reading bytes from `input`.
    pub fn new(output: Box<dyn Write + Send>, input: Option<Receiver<u8>>) -> Uart16550 {
        Uart16550 {
            state: UartState::default(),
            output,
            input,
            irq: None,
            unflushed: false,
        }
    }

    /// Connects the interrupt line.
    pub fn set_irq(&mut self, irq: Box<dyn IrqLine>) {
        self.irq = Some(irq);
    }

    /// Moves waiting host input into the receive FIFO.
    fn pull_input(&mut self) {
        if let Some(input) = &self.input {
            while self.state.rx.len() < RX_FIFO_LIMIT {
                match input.try_recv() {
                    Ok(byte) => self.state.rx.push_back(byte),
                    Err(_) => break,
                }
            }
        }
    }

    fn interrupt_id(&self) -> u8 {
        if self.state.ier & IER_RX_AVAILABLE != 0 && !self.state.rx.is_empty() {
            IIR_RX_AVAILABLE
        } else if self.state.ier & IER_THR_EMPTY != 0 && self.state.thr_interrupt {
            IIR_THR_EMPTY
        } else {
            IIR_NONE
        }
    }

    fn update_irq(&self) {
        if let Some(irq) = &self.irq {
            irq.set_level(self.interrupt_id() != IIR_NONE);
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.state.mcr & MCR_LOOPBACK != 0 {
            if self.state.rx.len() < RX_FIFO_LIMIT {
                self.state.rx.push_back(byte);
            }
        } else {
            // A host that stopped reading (closed pipe) must not stop the guest.
            let _ = self.output.write_all(&[byte]);
            if byte == b'\n' {
                let _ = self.output.flush();
                self.unflushed = false;
            } else {
                self.unflushed = true;
            }
        }
        self.state.thr_interrupt = true;
    }
}

impl Device for Uart16550 {
    /// Registers and FIFOs back to power-on; the line drops with the interrupts
    /// that went away. Host input still in the channel stays there.
    fn reset(&mut self) {
        self.state = UartState::default();
        self.update_irq();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND, VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let restored: UartState = state.decode(KIND, VERSION)?;
        if restored.rx.len() > RX_FIFO_LIMIT {
            return Err(invalid(
                KIND,
                format!("{} bytes in a {RX_FIFO_LIMIT}-byte FIFO", restored.rx.len()),
            ));
        }
        self.state = restored;
        self.update_irq();
        Ok(())
    }
}

impl MmioDevice for Uart16550 {
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, BusFault> {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        let value = match offset {
            RBR_THR if dlab => self.state.divisor as u8,
            RBR_THR => {
                self.pull_input();
                let byte = self.state.rx.pop_front().unwrap_or(0);
                self.update_irq();
                byte
            }
            IER if dlab => (self.state.divisor >> 8) as u8,
            IER => self.state.ier,
            IIR_FCR => {
                let id = self.interrupt_id();
                if id == IIR_THR_EMPTY {
                    self.state.thr_interrupt = false;
                    self.update_irq();
                }
                let fifo = if self.state.fifo_enabled {
                    IIR_FIFO_ENABLED
                } else {
                    0
                };
                id | fifo
            }
            LCR => self.state.lcr,
            MCR => self.state.mcr,
            LSR => {
                self.pull_input();
                let ready = if self.state.rx.is_empty() {
                    0
                } else {
                    LSR_DATA_READY
                };
                // Output is written synchronously, so the transmitter is always idle.
                ready | LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY
            }
            // Carrier detect, data set ready and clear to send: a cable is attached.
            MSR => 0xb0,
            SCR => self.state.scr,
            _ => 0,
        };
        Ok(u64::from(value))
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) -> Result<(), BusFault> {
        let byte = value as u8;
        let dlab = self.state.lcr & LCR_DLAB != 0;
        match offset {
            RBR_THR if dlab => self.state.divisor = (self.state.divisor & 0xff00) | u16::from(byte),
            RBR_THR => self.transmit(byte),
            IER if dlab => {
                self.state.divisor = (self.state.divisor & 0x00ff) | (u16::from(byte) << 8)
            }
            IER => {
                let enabling_thr = byte & IER_THR_EMPTY != 0 && self.state.ier & IER_THR_EMPTY == 0;
                self.state.ier = byte & 0x0f;
                // Enabling the THR-empty interrupt while the THR is empty raises it.
                if enabling_thr {
                    self.state.thr_interrupt = true;
                }
            }
            IIR_FCR => {
                self.state.fifo_enabled = byte & 1 != 0;
                if byte & 2 != 0 {
                    self.state.rx.clear();
                }
            }
            LCR => self.state.lcr = byte,
            MCR => self.state.mcr = byte & 0x1f,
            SCR => self.state.scr = byte,
            _ => {}
        }
        self.update_irq();
        Ok(())
    }

    fn tick(&mut self, _now: u64) -> Option<u64> {
        if self.unflushed {
            let _ = self.output.flush();
            self.unflushed = false;
        }
        if self.state.rx.is_empty() {
            self.pull_input();
            self.update_irq();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Sink, TestIrq, assert_refuses_foreign_states};

    #[test]
    fn transmits_and_receives() {
        let sink = Sink::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut uart = Uart16550::new(Box::new(sink.clone()), Some(rx));
        for &b in b"hi\n" {
            uart.write(RBR_THR, 1, u64::from(b)).unwrap();
        }
        assert_eq!(sink.bytes(), b"hi\n");
        assert_eq!(uart.read(LSR, 1).unwrap() as u8 & LSR_DATA_READY, 0);
        tx.send(b'x').unwrap();
        assert_eq!(
            uart.read(LSR, 1).unwrap() as u8 & LSR_DATA_READY,
            LSR_DATA_READY
        );
        assert_eq!(uart.read(RBR_THR, 1).unwrap(), u64::from(b'x'));
        assert_eq!(uart.read(LSR, 1).unwrap() as u8 & LSR_DATA_READY, 0);
    }

    #[test]
    fn divisor_latch_hides_data_registers() {
        let sink = Sink::default();
        let mut uart = Uart16550::new(Box::new(sink.clone()), None);
        uart.write(LCR, 1, 0x83).unwrap();
        uart.write(RBR_THR, 1, 0x01).unwrap();
        uart.write(IER, 1, 0x02).unwrap();
        assert_eq!(uart.read(RBR_THR, 1).unwrap(), 1);
        assert_eq!(uart.read(IER, 1).unwrap(), 2);
        uart.write(LCR, 1, 0x03).unwrap();
        assert!(sink.bytes().is_empty());
        assert_eq!(uart.read(IER, 1).unwrap(), 0);
    }

    #[test]
    fn interrupt_identification() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut uart = Uart16550::new(Box::new(Sink::default()), Some(rx));
        assert_eq!(uart.read(IIR_FCR, 1).unwrap() as u8, IIR_NONE);
        uart.write(IER, 1, u64::from(IER_RX_AVAILABLE | IER_THR_EMPTY))
            .unwrap();
        assert_eq!(uart.read(IIR_FCR, 1).unwrap() as u8, IIR_THR_EMPTY);
        // Reading IIR acknowledged the THR-empty condition.
        assert_eq!(uart.read(IIR_FCR, 1).unwrap() as u8, IIR_NONE);
        tx.send(7).unwrap();
        uart.tick(0);
        assert_eq!(uart.read(IIR_FCR, 1).unwrap() as u8, IIR_RX_AVAILABLE);
    }

    /// A UART with its own output, input channel and interrupt line.
    fn uart() -> (Uart16550, Sink, crossbeam_channel::Sender<u8>, TestIrq) {
        let sink = Sink::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let irq = TestIrq::default();
        let mut uart = Uart16550::new(Box::new(sink.clone()), Some(rx));
        uart.set_irq(Box::new(irq.clone()));
        (uart, sink, tx, irq)
    }

    #[test]
    fn state_round_trips_into_a_fresh_uart() {
        let (mut a, sink_a, tx, irq_a) = uart();
        // 115200 baud from a 1.8432 MHz clock, 8N1, FIFOs on, both interrupts,
        // a scratch byte, and three received bytes of which the guest read one.
        a.write(LCR, 1, 0x83).unwrap();
        a.write(RBR_THR, 1, 0x01).unwrap();
        a.write(IER, 1, 0x00).unwrap();
        a.write(LCR, 1, 0x03).unwrap();
        a.write(IIR_FCR, 1, 0x01).unwrap();
        a.write(MCR, 1, 0x0b).unwrap();
        a.write(SCR, 1, 0x5a).unwrap();
        a.write(IER, 1, u64::from(IER_RX_AVAILABLE | IER_THR_EMPTY))
            .unwrap();
        for &b in b"abc" {
            tx.send(b).unwrap();
        }
        assert_eq!(a.read(RBR_THR, 1), Ok(u64::from(b'a')));
        assert!(irq_a.level());

        let (mut b, sink_b, _tx_b, irq_b) = uart();
        assert!(!irq_b.level());
        let saved = a.save_state();
        b.restore_state(&saved).unwrap();
        assert_eq!(b.save_state(), saved);
        assert!(
            irq_b.level(),
            "the restored line follows the restored state"
        );
        for offset in [IER, LCR, MCR, LSR, SCR, IIR_FCR] {
            assert_eq!(a.read(offset, 1), b.read(offset, 1), "register {offset}");
        }
        // Both go on the same way: the divisor, the FIFO, transmission.
        a.write(LCR, 1, 0x83).unwrap();
        b.write(LCR, 1, 0x83).unwrap();
        assert_eq!(a.read(RBR_THR, 1), Ok(1));
        assert_eq!(b.read(RBR_THR, 1), Ok(1));
        a.write(LCR, 1, 0x03).unwrap();
        b.write(LCR, 1, 0x03).unwrap();
        for dev in [&mut a, &mut b] {
            assert_eq!(dev.read(RBR_THR, 1), Ok(u64::from(b'b')));
            assert_eq!(dev.read(RBR_THR, 1), Ok(u64::from(b'c')));
            dev.write(RBR_THR, 1, u64::from(b'!')).unwrap();
        }
        assert_eq!(a.save_state(), b.save_state());
        assert_eq!(irq_a.level(), irq_b.level());
        assert_eq!(sink_a.bytes(), b"!");
        assert_eq!(sink_b.bytes(), b"!");
    }

    #[test]
    fn reset_returns_registers_and_fifo_to_power_on() {
        let (mut uart, _sink, tx, irq) = uart();
        uart.write(SCR, 1, 0x5a).unwrap();
        uart.write(LCR, 1, 0x83).unwrap();
        uart.write(RBR_THR, 1, 0x0c).unwrap();
        uart.write(LCR, 1, 0x1b).unwrap();
        uart.write(IER, 1, u64::from(IER_RX_AVAILABLE)).unwrap();
        tx.send(b'x').unwrap();
        uart.tick(0);
        assert!(irq.level());
        assert_eq!(uart.read(SCR, 1), Ok(0x5a));
        uart.reset();
        assert!(!irq.level(), "reset lowers the line");
        assert_eq!(uart.read(SCR, 1), Ok(0));
        assert_eq!(uart.read(LCR, 1), Ok(0));
        assert_eq!(uart.read(IER, 1), Ok(0));
        assert_eq!(uart.read(IIR_FCR, 1), Ok(u64::from(IIR_NONE)));
        assert_eq!(uart.read(LSR, 1).unwrap() as u8 & LSR_DATA_READY, 0);
        let power_on = Uart16550::new(Box::new(Sink::default()), None).save_state();
        assert_eq!(uart.save_state(), power_on);
        uart.write(LCR, 1, 0x80).unwrap();
        assert_eq!(uart.read(RBR_THR, 1), Ok(0), "divisor latch cleared");
    }

    #[test]
    fn restore_refuses_foreign_and_overfull_states() {
        let (mut uart, _sink, _tx, _irq) = uart();
        assert_refuses_foreign_states(&mut uart);
        let overfull = UartState {
            rx: (0..17).collect(),
            ..UartState::default()
        };
        let state = DeviceState::encode(KIND, VERSION, &overfull);
        assert!(matches!(
            uart.restore_state(&state),
            Err(StateError::Invalid { .. })
        ));
    }
}
