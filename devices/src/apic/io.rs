//! The I/O APIC (82093AA): 24 interrupt pins, each with a redirection entry
//! that turns the pin into a message to local APICs. Registers are reached
//! through an index (IOREGSEL at 0x00) and a data window (IOWIN at 0x10);
//! version 0x20 adds the EOI register at 0x40.

use std::sync::{Arc, Mutex};

use emu_core::sync::LockRecover;
use emu_core::{BusFault, Device, DeviceState, IrqLine, MmioDevice, StateError};
use serde::{Deserialize, Serialize};

use super::{ApicBus, ApicMessage, DeliveryMode, Destination};

/// The I/O APIC's pins.
pub const PINS: usize = 24;
/// Version 0x20, 24 entries (the field holds the highest index).
const VERSION: u32 = ((PINS as u32 - 1) << 16) | 0x20;
/// Register offsets in the window.
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const EOI: u64 = 0x40;
/// Redirection entry bits.
const DELIVERY_STATUS: u64 = 1 << 12;
const REMOTE_IRR: u64 = 1 << 14;
const LEVEL_TRIGGERED: u64 = 1 << 15;
const MASKED: u64 = 1 << 16;
const LOGICAL: u64 = 1 << 11;
/// What software may write: all but delivery status and remote IRR.
const ENTRY_WRITABLE: u64 = 0xff00_0000_0001_afff;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct IoApicState {
    id: u32,
    select: u32,
    redirection: [u64; PINS],
    /// The pins' levels as last driven.
    levels: u32,
    /// Requests latched and not yet sent (edge pins between edge and send).
    requests: u32,
}

impl IoApicState {
    fn at_reset() -> IoApicState {
        IoApicState {
            id: 0,
            select: 0,
            redirection: [MASKED; PINS],
            levels: 0,
            requests: 0,
        }
    }

    /// Sends what the pins request and their entries allow; returns the
    /// messages.
    fn service(&mut self) -> Vec<ApicMessage> {
        let mut messages = Vec::new();
        for pin in 0..PINS {
            let bit = 1u32 << pin;
            let entry = self.redirection[pin];
            if self.requests & bit == 0 || entry & MASKED != 0 {
                continue;
            }
            let level = entry & LEVEL_TRIGGERED != 0;
            if level {
                if entry & REMOTE_IRR != 0 {
                    continue;
                }
                self.redirection[pin] |= REMOTE_IRR;
            } else {
                self.requests &= !bit;
            }
            let id = (entry >> 56) as u8;
            messages.push(ApicMessage {
                vector: entry as u8,
                mode: DeliveryMode::from_bits((entry >> 8) as u32),
                destination: if entry & LOGICAL != 0 {
                    Destination::Logical(id)
                } else {
                    Destination::Physical(id)
                },
                level_triggered: level,
            });
        }
        messages
    }
}

/// The I/O APIC.
pub struct IoApic {
    state: Mutex<IoApicState>,
    bus: Arc<ApicBus>,
}

impl std::fmt::Debug for IoApic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoApic").finish_non_exhaustive()
    }
}

impl IoApic {
    /// An I/O APIC sending to `bus`, which it joins for EOI broadcasts.
    pub fn new(bus: Arc<ApicBus>) -> Arc<IoApic> {
        let io_apic = Arc::new(IoApic {
            state: Mutex::new(IoApicState::at_reset()),
            bus,
        });
        io_apic.bus.connect_io_apic(&io_apic);
        io_apic
    }

    /// Pin `pin`'s wire.
    pub fn input(self: &Arc<Self>, pin: usize) -> IoApicInput {
        assert!(pin < PINS, "I/O APIC pin {pin} out of range");
        IoApicInput {
            io_apic: self.clone(),
            pin,
        }
    }

    /// The register window, to map at [`super::IO_APIC_BASE`].
    pub fn registers(self: &Arc<Self>) -> IoApicRegisters {
        IoApicRegisters {
            io_apic: self.clone(),
        }
    }

    fn deliver(&self, messages: Vec<ApicMessage>) {
        for message in messages {
            self.bus.deliver(message, None);
        }
    }

    fn set_level(&self, pin: usize, high: bool) {
        let bit = 1u32 << pin;
        let mut state = self.state.lock_recover();
        let rising = high && state.levels & bit == 0;
        if high {
            state.levels |= bit;
        } else {
            state.levels &= !bit;
        }
        if state.redirection[pin] & LEVEL_TRIGGERED != 0 {
            if high {
                state.requests |= bit;
            } else {
                state.requests &= !bit;
            }
        } else if rising {
            state.requests |= bit;
        }
        let messages = state.service();
        self.deliver(messages);
    }

    /// A local APIC's EOI of level-triggered `vector`: the entries with it
    /// may send again, and do if their pin is still high.
    pub(super) fn end_of_interrupt(&self, vector: u8) {
        let mut state = self.state.lock_recover();
        for pin in 0..PINS {
            let entry = state.redirection[pin];
            if entry as u8 == vector && entry & REMOTE_IRR != 0 {
                state.redirection[pin] &= !REMOTE_IRR;
            }
        }
        let messages = state.service();
        self.deliver(messages);
    }

    fn read(&self, offset: u64) -> u32 {
        let state = self.state.lock_recover();
        match offset {
            IOREGSEL => state.select,
            IOWIN => match state.select {
                0 => state.id << 24,
                1 => VERSION,
                2 => state.id << 24,
                index @ 0x10..=0x3f => {
                    let entry = state.redirection[((index - 0x10) / 2) as usize];
                    if index % 2 == 0 {
                        entry as u32
                    } else {
                        (entry >> 32) as u32
                    }
                }
                _ => 0,
            },
            _ => 0,
        }
    }

    fn write(&self, offset: u64, value: u32) {
        let mut state = self.state.lock_recover();
        match offset {
            IOREGSEL => state.select = value & 0xff,
            IOWIN => match state.select {
                0 => state.id = (value >> 24) & 0xf,
                index @ 0x10..=0x3f => {
                    let pin = ((index - 0x10) / 2) as usize;
                    let old = state.redirection[pin];
                    let written = if index % 2 == 0 {
                        (old & !0xffff_ffff) | u64::from(value)
                    } else {
                        (old & 0xffff_ffff) | (u64::from(value) << 32)
                    };
                    let kept = old & (REMOTE_IRR | DELIVERY_STATUS);
                    let mut entry = (written & ENTRY_WRITABLE) | kept;
                    // An edge entry has no remote IRR.
                    if entry & LEVEL_TRIGGERED == 0 {
                        entry &= !REMOTE_IRR;
                    }
                    state.redirection[pin] = entry;
                    // A level pin held high requests as soon as it may.
                    let bit = 1u32 << pin;
                    if entry & LEVEL_TRIGGERED != 0 && state.levels & bit != 0 {
                        state.requests |= bit;
                    }
                }
                _ => {}
            },
            EOI => {
                let vector = value as u8;
                for entry in &mut state.redirection {
                    if *entry as u8 == vector {
                        *entry &= !REMOTE_IRR;
                    }
                }
            }
            _ => {}
        }
        let messages = state.service();
        self.deliver(messages);
    }
}

/// One pin's wire into the I/O APIC.
#[derive(Clone, Debug)]
pub struct IoApicInput {
    io_apic: Arc<IoApic>,
    pin: usize,
}

impl IrqLine for IoApicInput {
    fn set_level(&self, high: bool) {
        self.io_apic.set_level(self.pin, high);
    }
}

/// The I/O APIC's register window on the machine's bus.
#[derive(Debug)]
pub struct IoApicRegisters {
    io_apic: Arc<IoApic>,
}

impl Device for IoApicRegisters {
    fn reset(&mut self) {
        let mut state = self.io_apic.state.lock_recover();
        let levels = state.levels;
        *state = IoApicState::at_reset();
        state.levels = levels;
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode("ioapic", 1, &*self.io_apic.state.lock_recover())
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        *self.io_apic.state.lock_recover() = state.decode("ioapic", 1)?;
        Ok(())
    }
}

impl MmioDevice for IoApicRegisters {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let value = u64::from(self.io_apic.read(offset & !3));
        Ok((value >> (8 * (offset & 3))) & crate::pci::ones64(size))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        // Registers take whole 32-bit writes; IOREGSEL also takes a byte.
        if size == 4 || (offset == IOREGSEL && size == 1) {
            self.io_apic.write(offset, value as u32);
        }
        Ok(())
    }
}
