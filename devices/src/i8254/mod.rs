//! The PC's Intel 8254 programmable interval timer at ports 0x40–0x43, and the
//! speaker/gate bits of port 0x61, as on QEMU's `pc` machine.
//!
//! Three 16-bit down-counters run from a 1.193182 MHz clock, in modes 0–5,
//! binary or BCD, programmed through the control register at 0x43 (counter
//! latch and read-back commands included). Counter 0's OUT drives IRQ 0;
//! counter 2's gate is port 0x61 bit 0 and its OUT reads back in bit 5, which
//! is how firmware and Linux calibrate their delay loops. Counter 1 (DRAM
//! refresh on the AT) is programmable, and bit 4 of port 0x61 toggles every
//! 18 input clocks (15.08 µs) as the AT's refresh request does, so busy-waits
//! on it last as long as on hardware.
//!
//! Time is the machine's [`VirtualClock`]: the counters' state is a function
//! of it (nothing counts between accesses), so a deterministic run reads the
//! same counts run after run. [`PioDevice::tick`] on [`I8254::ports`] drives
//! IRQ 0 and returns the next time counter 0's OUT changes.
//!
//! Where the datasheet and QEMU's `hw/timer/i8254.c` part, this follows the
//! datasheet: mode 2's OUT is high except for the last clock of each period
//! (QEMU's is low except at the reload), a gate held low stops modes 0, 2, 3
//! and 4 (QEMU lets them run), and modes 1 and 5 wait for a gate trigger
//! after their count is written (QEMU starts them at once). One
//! simplification both share: a new count written in mode 2 or 3 restarts the
//! period at once, rather than at the end of the current one.

use std::sync::{Arc, Mutex};

use emu_core::sync::LockRecover;
use emu_core::{Device, DeviceState, IrqLine, PioDevice, StateError, VirtualClock};
use serde::{Deserialize, Serialize};

use crate::state::NoState;

#[cfg(test)]
mod tests;

/// First port of the timer (counters 0–2, then the control register).
pub const PIT_PORT: u16 = 0x40;
/// Ports in the timer's window.
pub const PIT_PORT_COUNT: u32 = 4;
/// The speaker and gate port (the AT's system control port B).
pub const SPEAKER_PORT: u16 = 0x61;
/// Ports in the speaker port's window.
pub const SPEAKER_PORT_COUNT: u32 = 1;
/// The counters' input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Port offset of the control (mode/command) register.
const CONTROL: u16 = 3;
/// Control word: counter select, bits 7–6.
const SELECT_SHIFT: u8 = 6;
/// Counter select value of the read-back command.
const READ_BACK: u8 = 3;
/// Control word: read/write access, bits 5–4 (00 is the counter latch).
const ACCESS_MASK: u8 = 0x30;
const ACCESS_LATCH: u8 = 0x00;
const ACCESS_LSB: u8 = 0x10;
const ACCESS_MSB: u8 = 0x20;
/// Control word: mode, bits 3–1 (6 and 7 are modes 2 and 3 again).
const MODE_SHIFT: u8 = 1;
const MODE_MASK: u8 = 0x07;
/// Control word: BCD counting.
const BCD: u8 = 0x01;
/// The control word bits a status byte reports.
const STATUS_CONTROL_BITS: u8 = 0x3f;
/// Read-back: do not latch the counts (active low).
const READ_BACK_NO_COUNT: u8 = 0x20;
/// Read-back: do not latch the status (active low).
const READ_BACK_NO_STATUS: u8 = 0x10;
/// Read-back: counter 0 selected; counters 1 and 2 are the next bits up.
const READ_BACK_COUNTER0: u8 = 0x02;
/// Status byte: the OUT pin.
const STATUS_OUT: u8 = 0x80;
/// Status byte: a count was written but is not in the counting element yet.
const STATUS_NULL_COUNT: u8 = 0x40;
/// Port 0x61: counter 2's gate.
const P61_GATE2: u8 = 0x01;
/// Port 0x61: speaker data enable (counter 2's OUT reaches the speaker).
pub const P61_SPEAKER: u8 = 0x02;
/// Port 0x61: the bits a write sets (gate, speaker, parity and channel-check
/// enables); the rest are status.
const P61_WRITABLE: u8 = 0x0f;
/// Port 0x61: the refresh request toggle.
const P61_REFRESH: u8 = 0x10;
/// Port 0x61: counter 2's OUT.
const P61_OUT2: u8 = 0x20;
/// Input clocks between refresh toggles (the AT programs counter 1 with 18).
const REFRESH_CLOCKS: u64 = 18;
/// A binary counter's range.
const BINARY_MODULUS: u64 = 0x1_0000;
/// A BCD counter's range.
const BCD_MODULUS: u64 = 10_000;
/// The control word QEMU's reset leaves: both bytes, mode 3, binary.
const RESET_CONTROL: u8 = 0x36;

/// Model name of the timer's saved state.
const KIND: &str = "i8254";
/// Layout version of [`PitState`].
const VERSION: u32 = 1;
/// Model name of the speaker port's (empty) saved state.
const SPEAKER_KIND: &str = "i8254-port61";

/// Which bytes a counter's reads and writes transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// The low byte only.
    Lsb,
    /// The high byte only.
    Msb,
    /// Low byte, then high byte.
    Word,
}

/// What a counter's counting element is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Not counting: after a control word, while a two-byte count is half
    /// written (mode 0), waiting for a gate trigger (modes 1 and 5) or with
    /// the gate low (modes 2 and 3). Reads return `count`.
    Idle {
        /// The counting element's value.
        count: u16,
    },
    /// Stopped by a low gate (modes 0 and 4) after `elapsed` input clocks.
    Paused {
        /// Clocks counted since the count was loaded.
        elapsed: u64,
    },
    /// Counting: `base` clocks had elapsed at clock tick `start`.
    Running {
        /// Machine clock tick counting (re)started at.
        start: u64,
        /// Input clocks counted before `start`.
        base: u64,
    },
}

/// One counter's registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterState {
    /// The control word's access, mode and BCD bits, as a status byte shows them.
    pub control: u8,
    /// Mode 0–5.
    pub mode: u8,
    /// BCD counting.
    pub bcd: bool,
    /// Byte access.
    pub access: Access,
    /// The count register as last written (binary or BCD).
    pub initial: u16,
    /// The counting element's period in input clocks (the count, 0 meaning
    /// the full range).
    pub period: u64,
    /// What the counting element is doing.
    pub phase: Phase,
    /// A count has been written since the control word.
    pub loaded: bool,
    /// The status byte's null-count bit.
    pub null_count: bool,
    /// The next count write is the high byte.
    pub write_msb_next: bool,
    /// The low byte of a count being written.
    pub write_lsb: u8,
    /// The next unlatched read is the high byte.
    pub read_msb_next: bool,
    /// A latched count waiting to be read.
    pub latched: Option<u16>,
    /// The next read of the latched count is its high byte.
    pub latched_msb_next: bool,
    /// A latched status byte waiting to be read.
    pub status: Option<u8>,
    /// The gate input.
    pub gate: bool,
}

impl CounterState {
    /// The counter as QEMU's reset leaves it: mode 3 with the full count,
    /// running if its gate is high.
    fn reset(gate: bool, now: u64) -> CounterState {
        let mut counter = CounterState {
            control: RESET_CONTROL,
            mode: 3,
            bcd: false,
            access: Access::Word,
            initial: 0,
            period: BINARY_MODULUS,
            phase: Phase::Idle { count: 0 },
            loaded: true,
            null_count: false,
            write_msb_next: false,
            write_lsb: 0,
            read_msb_next: false,
            latched: None,
            latched_msb_next: false,
            status: None,
            gate,
        };
        if gate {
            counter.phase = Phase::Running {
                start: now,
                base: 0,
            };
        }
        counter
    }

    fn modulus(&self) -> u64 {
        if self.bcd {
            BCD_MODULUS
        } else {
            BINARY_MODULUS
        }
    }

    /// Input clocks counted since the count was loaded, if it counts at all.
    fn elapsed(&self, clock: &Timebase, now: u64) -> Option<u64> {
        match self.phase {
            Phase::Idle { .. } => None,
            Phase::Paused { elapsed } => Some(elapsed),
            Phase::Running { start, base } => Some(base + clock.to_pit(now.saturating_sub(start))),
        }
    }

    /// The counting element's value `d` clocks after loading, in binary.
    fn count_after(&self, d: u64) -> u64 {
        let (n, m) = (self.period, self.modulus());
        let value = match self.mode {
            2 => n - d % n,
            3 => {
                // Two clocks per count; an odd count spends one more clock
                // high than low (first decrement by 1 when high, by 3 when low).
                let high = n.div_ceil(2);
                let p = d % n;
                match (n % 2 == 0, p < high) {
                    (true, true) => n - 2 * p,
                    (true, false) => n - 2 * (p - high),
                    (false, true) if p == 0 => n,
                    (false, true) => n + 1 - 2 * p,
                    (false, false) if p == high => n,
                    (false, false) => n - 1 - 2 * (p - high),
                }
            }
            // Modes 0, 1, 4 and 5 count down through zero and wrap.
            _ => (n % m + m - d % m) % m,
        };
        value % m
    }

    /// The OUT pin `d` clocks after loading.
    fn out_after(&self, d: u64) -> bool {
        let n = self.period;
        match self.mode {
            0 | 1 => d >= n,
            2 => n == 1 || d % n != n - 1,
            3 => d % n < n.div_ceil(2),
            _ => d != n,
        }
    }

    /// After `d` clocks, the clock count at which OUT next changes.
    fn next_change_after(&self, d: u64) -> Option<u64> {
        let n = self.period;
        match self.mode {
            0 | 1 => (d < n).then_some(n),
            2 if n == 1 => None,
            2 => {
                let r = d % n;
                Some(if r < n - 1 { d + (n - 1 - r) } else { d + 1 })
            }
            3 => {
                let (high, r) = (n.div_ceil(2), d % n);
                if high == n {
                    None
                } else if r < high {
                    Some(d + (high - r))
                } else {
                    Some(d + (n - r))
                }
            }
            _ => match d.cmp(&n) {
                std::cmp::Ordering::Less => Some(n),
                std::cmp::Ordering::Equal => Some(n + 1),
                std::cmp::Ordering::Greater => None,
            },
        }
    }

    /// What a read of the counter returns now (binary or BCD).
    fn count(&self, clock: &Timebase, now: u64) -> u16 {
        match (self.phase, self.elapsed(clock, now)) {
            (_, Some(d)) => {
                let value = self.count_after(d) as u16;
                if self.bcd { to_bcd(value) } else { value }
            }
            (Phase::Idle { count }, None) => count,
            _ => 0,
        }
    }

    /// The OUT pin now: while idle, the level the control word set (low in
    /// mode 0, high otherwise).
    fn out(&self, clock: &Timebase, now: u64) -> bool {
        match self.elapsed(clock, now) {
            Some(d) => self.out_after(d),
            None => self.mode != 0,
        }
    }

    /// The machine clock tick after `now` at which OUT next changes.
    fn next_change(&self, clock: &Timebase, now: u64) -> Option<u64> {
        let Phase::Running { start, base } = self.phase else {
            return None;
        };
        let d = self.elapsed(clock, now)?;
        let next = self.next_change_after(d)?;
        Some(start.saturating_add(clock.to_clock(next - base)))
    }

    /// A control word for this counter (not a latch command).
    fn program(&mut self, value: u8, clock: &Timebase, now: u64) {
        let count = self.count(clock, now);
        let mode = (value >> MODE_SHIFT) & MODE_MASK;
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.control = value & STATUS_CONTROL_BITS;
        self.bcd = value & BCD != 0;
        self.access = match value & ACCESS_MASK {
            ACCESS_LSB => Access::Lsb,
            ACCESS_MSB => Access::Msb,
            _ => Access::Word,
        };
        // Control logic reset: OUT to its initial level, nothing counting
        // until a count arrives, byte sequencing from the start.
        self.phase = Phase::Idle { count };
        self.loaded = false;
        self.null_count = true;
        self.write_msb_next = false;
        self.read_msb_next = false;
        self.latched = None;
        self.status = None;
    }

    /// A write to the counter's port.
    fn write_count(&mut self, value: u8, clock: &Timebase, now: u64) {
        match self.access {
            Access::Lsb => self.load(u16::from(value), now),
            Access::Msb => self.load(u16::from(value) << 8, now),
            Access::Word if !self.write_msb_next => {
                self.write_lsb = value;
                self.write_msb_next = true;
                if self.mode == 0 {
                    // Writing the first byte stops mode 0 and drops OUT.
                    let count = self.count(clock, now);
                    self.phase = Phase::Idle { count };
                }
            }
            Access::Word => {
                self.write_msb_next = false;
                self.load(u16::from(self.write_lsb) | u16::from(value) << 8, now);
            }
        }
    }

    /// A complete count written: when the counting element takes it depends
    /// on the mode and the gate.
    fn load(&mut self, raw: u16, now: u64) {
        self.initial = raw;
        self.loaded = true;
        self.null_count = true;
        match self.mode {
            0 | 4 => {
                self.start_period();
                self.phase = if self.gate {
                    Phase::Running {
                        start: now,
                        base: 0,
                    }
                } else {
                    Phase::Paused { elapsed: 0 }
                };
            }
            2 | 3 => {
                // Loaded at once; with the gate low it waits there for the
                // gate to rise.
                self.start_period();
                self.phase = if self.gate {
                    Phase::Running {
                        start: now,
                        base: 0,
                    }
                } else {
                    Phase::Idle { count: raw }
                };
            }
            // Modes 1 and 5: the count waits for a gate trigger.
            _ => {}
        }
    }

    /// The count register moves into the counting element.
    fn start_period(&mut self) {
        self.period = period(self.initial, self.bcd);
        self.null_count = false;
    }

    /// A new level on the gate input.
    fn set_gate(&mut self, high: bool, clock: &Timebase, now: u64) {
        let rising = high && !self.gate;
        let falling = !high && self.gate;
        match (self.mode, self.phase) {
            (0 | 4, Phase::Running { .. }) if falling => {
                let elapsed = self.elapsed(clock, now).unwrap_or(0);
                self.phase = Phase::Paused { elapsed };
            }
            (0 | 4, Phase::Paused { elapsed }) if rising => {
                self.phase = Phase::Running {
                    start: now,
                    base: elapsed,
                };
            }
            (2 | 3, _) if falling => {
                // OUT goes high at once and counting stops.
                let count = self.count(clock, now);
                self.phase = Phase::Idle { count };
            }
            (1 | 2 | 3 | 5, _) if rising && self.loaded => {
                // A trigger: reload the count and start over.
                self.start_period();
                self.phase = Phase::Running {
                    start: now,
                    base: 0,
                };
            }
            _ => {}
        }
        self.gate = high;
    }

    /// The counter latch command: the first latch holds until it is read.
    fn latch_count(&mut self, clock: &Timebase, now: u64) {
        if self.latched.is_none() {
            self.latched = Some(self.count(clock, now));
            self.latched_msb_next = self.access == Access::Msb;
        }
    }

    /// The read-back command's status latch.
    fn latch_status(&mut self, clock: &Timebase, now: u64) {
        if self.status.is_none() {
            let out = if self.out(clock, now) { STATUS_OUT } else { 0 };
            let null = if self.null_count {
                STATUS_NULL_COUNT
            } else {
                0
            };
            self.status = Some(out | null | self.control);
        }
    }

    /// A read of the counter's port: a latched status first, then a latched
    /// count, else the live count.
    fn read(&mut self, clock: &Timebase, now: u64) -> u8 {
        if let Some(status) = self.status.take() {
            return status;
        }
        if let Some(latched) = self.latched {
            let msb = self.latched_msb_next;
            if self.access == Access::Word && !msb {
                self.latched_msb_next = true;
            } else {
                self.latched = None;
            }
            return byte(latched, msb);
        }
        let count = self.count(clock, now);
        match self.access {
            Access::Lsb => byte(count, false),
            Access::Msb => byte(count, true),
            Access::Word => {
                let msb = self.read_msb_next;
                self.read_msb_next = !msb;
                byte(count, msb)
            }
        }
    }
}

/// The high or low byte of `value`.
fn byte(value: u16, msb: bool) -> u8 {
    if msb { (value >> 8) as u8 } else { value as u8 }
}

/// The period in input clocks of count register value `raw`: 0 stands for
/// the counter's full range. BCD digits above 9 count for their binary value,
/// so a malformed count is still a period.
fn period(raw: u16, bcd: bool) -> u64 {
    let n = if bcd {
        (0..4).rev().fold(0u64, |acc, digit| {
            acc * 10 + u64::from((raw >> (4 * digit)) & 0xf)
        })
    } else {
        u64::from(raw)
    };
    match (n, bcd) {
        (0, false) => BINARY_MODULUS,
        (0, true) => BCD_MODULUS,
        (n, _) => n,
    }
}

/// `value` (below 10,000) in four BCD digits.
fn to_bcd(value: u16) -> u16 {
    (0..4).fold(0, |acc, digit| {
        acc | ((value / 10u16.pow(digit)) % 10) << (4 * digit)
    })
}

/// Conversions between machine clock ticks and the timer's input clocks.
#[derive(Debug)]
struct Timebase {
    clock: Arc<VirtualClock>,
}

impl Timebase {
    fn hz(&self) -> u128 {
        u128::from(self.clock.freq_hz().max(1))
    }

    /// Whole input clocks in `ticks` machine ticks.
    fn to_pit(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * u128::from(PIT_HZ) / self.hz()) as u64
    }

    /// The machine ticks by which `clocks` input clocks have passed (rounded
    /// up, so that [`Timebase::to_pit`] of the result is at least `clocks`).
    fn to_clock(&self, clocks: u64) -> u64 {
        let ticks = (u128::from(clocks) * self.hz()).div_ceil(u128::from(PIT_HZ));
        ticks.min(u128::from(u64::MAX)) as u64
    }
}

/// The timer's guest-visible state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PitState {
    /// Counters 0, 1 and 2.
    pub counters: [CounterState; 3],
    /// Port 0x61's writable bits other than counter 2's gate (speaker data,
    /// parity and channel-check enables).
    pub port61: u8,
    /// The level IRQ 0 was last driven to.
    pub irq_level: bool,
    /// The machine clock tick IRQ 0 was last brought up to date at.
    pub observed: u64,
}

impl PitState {
    /// QEMU's reset state at clock tick `now`: every counter in mode 3 with the
    /// full count, counters 0 and 1 running (their gates are tied high), counter
    /// 2 waiting for its gate.
    pub fn new(now: u64) -> PitState {
        PitState {
            counters: [
                CounterState::reset(true, now),
                CounterState::reset(true, now),
                CounterState::reset(false, now),
            ],
            port61: 0,
            irq_level: false,
            observed: now,
        }
    }
}

/// The timer behind its two port windows.
struct Inner {
    state: PitState,
    time: Timebase,
    irq0: Arc<dyn IrqLine>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8254")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn now(&self) -> u64 {
        // Never behind what IRQ 0 was brought up to (the bus may tick with a
        // `now` read a moment before a port access read the clock).
        self.time.clock.now().max(self.state.observed)
    }

    fn drive_irq0(&mut self, level: bool) {
        if self.state.irq_level != level {
            self.state.irq_level = level;
            self.irq0.set_level(level);
        }
    }

    /// Brings IRQ 0 up to `now`: a rising edge of counter 0's OUT since the
    /// last look reaches the line even if OUT has fallen again (a mode 2 pulse
    /// is one input clock, far shorter than the scheduler's resolution).
    /// Returns the tick of OUT's next change.
    fn sync_irq0(&mut self, now: u64) -> Option<u64> {
        let now = now.max(self.state.observed);
        let counter = &self.state.counters[0];
        let mut rose = false;
        let mut t = self.state.observed;
        // OUT alternates, so one of the first two changes is a rising one.
        for _ in 0..2 {
            match counter.next_change(&self.time, t) {
                Some(change) if change <= now => {
                    if counter.out(&self.time, change) {
                        rose = true;
                        break;
                    }
                    t = change;
                }
                _ => break,
            }
        }
        let out = counter.out(&self.time, now);
        let next = counter.next_change(&self.time, now);
        if rose {
            self.drive_irq0(false);
            self.drive_irq0(true);
        }
        self.drive_irq0(out);
        self.state.observed = now;
        next
    }

    fn read(&mut self, port: u16) -> u8 {
        let now = self.now();
        match port {
            0..=2 => self.state.counters[usize::from(port)].read(&self.time, now),
            // The control register is write-only; the bus floats.
            _ => 0xff,
        }
    }

    fn write(&mut self, port: u16, value: u8) {
        let now = self.now();
        // OUT 0 up to now under the old programming, then under the new.
        self.sync_irq0(now);
        match port {
            0..=2 => self.state.counters[usize::from(port)].write_count(value, &self.time, now),
            _ => self.write_control(value, now),
        }
        self.sync_irq0(now);
    }

    fn write_control(&mut self, value: u8, now: u64) {
        let select = value >> SELECT_SHIFT;
        if select == READ_BACK {
            for (index, counter) in self.state.counters.iter_mut().enumerate() {
                if value & (READ_BACK_COUNTER0 << index) == 0 {
                    continue;
                }
                // Status first: it is read before the count when both are latched.
                if value & READ_BACK_NO_STATUS == 0 {
                    counter.latch_status(&self.time, now);
                }
                if value & READ_BACK_NO_COUNT == 0 {
                    counter.latch_count(&self.time, now);
                }
            }
            return;
        }
        let counter = &mut self.state.counters[usize::from(select)];
        if value & ACCESS_MASK == ACCESS_LATCH {
            counter.latch_count(&self.time, now);
        } else {
            counter.program(value, &self.time, now);
        }
    }

    fn read_port61(&self) -> u8 {
        let now = self.now();
        let counter2 = &self.state.counters[2];
        let gate = if counter2.gate { P61_GATE2 } else { 0 };
        let out = if counter2.out(&self.time, now) {
            P61_OUT2
        } else {
            0
        };
        let refresh = if (self.time.to_pit(now) / REFRESH_CLOCKS) % 2 == 1 {
            P61_REFRESH
        } else {
            0
        };
        gate | self.state.port61 | refresh | out
    }

    fn write_port61(&mut self, value: u8) {
        let now = self.now();
        self.state.port61 = value & P61_WRITABLE & !P61_GATE2;
        self.state.counters[2].set_gate(value & P61_GATE2 != 0, &self.time, now);
    }
}

/// The i8254: a cloneable handle to the timer.
///
/// A machine maps [`I8254::ports`] at [`PIT_PORT`] ([`PIT_PORT_COUNT`]
/// ports) and [`I8254::speaker_port`] at [`SPEAKER_PORT`]; the bus's device
/// ticks reach the first, which drives IRQ 0.
#[derive(Clone, Debug)]
pub struct I8254 {
    inner: Arc<Mutex<Inner>>,
}

impl I8254 {
    /// A timer in its reset state, counting from `clock` and driving `irq0`
    /// (on a PC, the i8259's input 0, an edge-triggered line).
    pub fn new(clock: Arc<VirtualClock>, irq0: Arc<dyn IrqLine>) -> I8254 {
        let now = clock.now();
        let mut inner = Inner {
            state: PitState::new(now),
            time: Timebase { clock },
            irq0,
        };
        // The line follows OUT from the start (high: mode 3 begins high).
        inner.sync_irq0(now);
        I8254 {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// The counters and the control register. Its saved state is the whole
    /// timer's (port 0x61's bits included), and its reset resets it all.
    pub fn ports(&self) -> PitPorts {
        PitPorts {
            inner: self.inner.clone(),
        }
    }

    /// Port 0x61 (no state of its own: it is saved with the timer).
    pub fn speaker_port(&self) -> SpeakerPort {
        SpeakerPort {
            inner: self.inner.clone(),
        }
    }

    /// Whether the speaker sounds now: its data enable set and counter 2's
    /// OUT high, the signal an audio backend would sample.
    pub fn speaker_level(&self) -> bool {
        let inner = self.inner.lock_recover();
        inner.read_port61() & (P61_SPEAKER | P61_OUT2) == P61_SPEAKER | P61_OUT2
    }

    /// A copy of the timer's registers.
    pub fn state(&self) -> PitState {
        self.inner.lock_recover().state.clone()
    }
}

/// The timer's ports 0x40–0x43 as a [`PioDevice`]; byte-wide, a wider access
/// takes consecutive ports.
#[derive(Debug)]
pub struct PitPorts {
    inner: Arc<Mutex<Inner>>,
}

impl Device for PitPorts {
    fn reset(&mut self) {
        let mut inner = self.inner.lock_recover();
        let now = inner.now();
        inner.state = PitState::new(now);
        inner.irq0.set_level(false);
        inner.sync_irq0(now);
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND, VERSION, &self.inner.lock_recover().state)
    }

    /// IRQ 0 is driven to the saved level; the saved times are the machine
    /// clock's, which the machine restores beside the devices.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let restored: PitState = state.decode(KIND, VERSION)?;
        if let Some(counter) = restored
            .counters
            .iter()
            .find(|c| c.period == 0 || c.mode > 5)
        {
            return Err(crate::state::invalid(
                KIND,
                format!("mode {} with period {}", counter.mode, counter.period),
            ));
        }
        let mut inner = self.inner.lock_recover();
        let level = restored.irq_level;
        inner.state = restored;
        inner.irq0.set_level(level);
        Ok(())
    }
}

impl PioDevice for PitPorts {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let mut inner = self.inner.lock_recover();
        (0..u16::from(size.min(4))).fold(0, |value, i| {
            let port = offset + i;
            let byte = if u32::from(port) < PIT_PORT_COUNT {
                inner.read(port)
            } else {
                0xff
            };
            value | u32::from(byte) << (8 * i)
        })
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        let mut inner = self.inner.lock_recover();
        for i in 0..u16::from(size.min(4)) {
            let port = offset + i;
            if u32::from(port) <= u32::from(CONTROL) {
                inner.write(port, (value >> (8 * i)) as u8);
            }
        }
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.inner.lock_recover().sync_irq0(now)
    }
}

/// Port 0x61 as a [`PioDevice`]: bit 0 counter 2's gate, bit 1 the speaker
/// data enable, bits 2–3 kept as written, bit 4 the refresh toggle, bit 5
/// counter 2's OUT.
#[derive(Debug)]
pub struct SpeakerPort {
    inner: Arc<Mutex<Inner>>,
}

impl Device for SpeakerPort {
    /// Nothing of its own: the timer's reset clears the bits.
    fn reset(&mut self) {}

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(SPEAKER_KIND, VERSION, &NoState {})
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let NoState {} = state.decode(SPEAKER_KIND, VERSION)?;
        Ok(())
    }
}

impl PioDevice for SpeakerPort {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let byte = if offset == 0 {
            self.inner.lock_recover().read_port61()
        } else {
            0xff
        };
        // Ports beyond this one float high.
        let ones = if size >= 4 {
            u32::MAX
        } else {
            (1 << (8 * u32::from(size))) - 1
        };
        (ones & !0xff) | u32::from(byte)
    }

    fn write(&mut self, offset: u16, _size: u8, value: u32) {
        if offset == 0 {
            self.inner.lock_recover().write_port61(value as u8);
        }
    }
}
