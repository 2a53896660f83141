//! A 16550A UART (the `ns16550a` of QEMU's virt board), byte-wide registers.
//!
//! Output goes to a host writer; input arrives through a channel fed by a host
//! thread, so a guest polling the line status never blocks the emulator.

use std::collections::VecDeque;
use std::io::Write;

use crossbeam_channel::Receiver;
use emu_core::{BusFault, IrqLine, MmioDevice};

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

/// The UART's register state, apart from its host connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// Received bytes not yet read.
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
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn transmits_and_receives() {
        let sink = Sink::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut uart = Uart16550::new(Box::new(sink.clone()), Some(rx));
        for &b in b"hi\n" {
            uart.write(RBR_THR, 1, u64::from(b)).unwrap();
        }
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"hi\n");
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
        assert!(sink.0.lock().unwrap().is_empty());
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
}
