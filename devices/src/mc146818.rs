//! The MC146818 real-time clock and its 128 bytes of battery-backed CMOS memory,
//! as on the PC: an index port (0x70) and a data port (0x71), interrupts on
//! ISA IRQ 8.
//!
//! The clock runs on a [`TimeSource`] (nanoseconds since the Unix epoch: the
//! host's wall clock, or a fixed start plus virtual time for deterministic
//! runs). The guest sets the clock by writing the time registers; the model
//! keeps that as an offset from the time source, so the time source is never
//! written. The time registers hold the time in UTC when the clock has not
//! been set, as QEMU's default `-rtc base=utc` does.
//!
//! Periodic interrupts count in virtual time (the `now` of [`PioDevice::tick`],
//! in nanoseconds); update-ended and alarm interrupts follow the clock's own
//! seconds. The update-in-progress bit is high during the last 244 µs of every
//! clock second, which a guest polling register A sees as the clock advances.
//! Daylight-saving adjustment (register B's DSE) is stored but not applied,
//! as in QEMU.
//!
//! [`pc_layout`] fills the memory bytes PC firmware reads (memory sizes, boot
//! order, floppy drives) the way QEMU's `pc` machine does.

pub mod pc_layout;

use emu_core::{Device, DeviceState, IrqLine, PioDevice, StateError};
use serde::{Deserialize, Serialize};

pub use crate::goldfish_rtc::{TimeSource, host_time};
use crate::state::invalid;

/// First port of the device on a PC (the index port).
pub const PORT_BASE: u16 = 0x70;
/// Number of ports: index, then data.
pub const PORT_COUNT: u16 = 2;
/// The ISA interrupt line a PC wires the RTC to.
pub const ISA_IRQ: u8 = 8;
/// Bytes of CMOS memory, clock registers included.
pub const CMOS_SIZE: usize = 128;

const INDEX_PORT: u16 = 0;
const DATA_PORT: u16 = 1;
/// Bit 7 of a byte written to the index port disables NMIs on a PC.
const INDEX_NMI_DISABLE: u8 = 0x80;
const INDEX_MASK: u8 = 0x7f;

/// Clock and alarm registers.
const REG_SECONDS: u8 = 0x00;
const REG_SECONDS_ALARM: u8 = 0x01;
const REG_MINUTES: u8 = 0x02;
const REG_MINUTES_ALARM: u8 = 0x03;
const REG_HOURS: u8 = 0x04;
const REG_HOURS_ALARM: u8 = 0x05;
const REG_DAY_OF_WEEK: u8 = 0x06;
const REG_DAY_OF_MONTH: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_C: u8 = 0x0c;
const REG_D: u8 = 0x0d;
/// The century byte PC firmware and QEMU keep next to the clock.
const REG_CENTURY: u8 = 0x32;

/// Register A: update in progress (read-only).
const A_UIP: u8 = 0x80;
/// Register A: divider chain control. 000, 001 and 010 run the clock (QEMU
/// treats all three as the 32.768 kHz time base); 11x hold the chain in reset.
const A_DIVIDER: u8 = 0x70;
const A_DIVIDER_RUNNING_MAX: u8 = 0x20;
/// Register A: periodic interrupt rate select.
const A_RATE: u8 = 0x0f;
/// Register B: SET stops the clock so software can write the time.
const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
/// Register B: square-wave output enable (no pin here; stored only).
const B_SQWE: u8 = 0x08;
/// Register B: data mode, set for binary, clear for BCD.
const B_BINARY: u8 = 0x04;
/// Register B: set for 24-hour time, clear for 12-hour with bit 7 as PM.
const B_24H: u8 = 0x02;
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// The interrupt flags, each at the same bit as its enable in register B.
const C_FLAGS: u8 = C_PF | C_AF | C_UF;
/// Register D: valid RAM and time (the battery is good).
const D_VRT: u8 = 0x80;
/// An alarm byte with both top bits set matches any value.
const ALARM_DONT_CARE: u8 = 0xc0;
/// Hours byte in 12-hour mode: bit 7 marks PM.
const HOUR_PM: u8 = 0x80;

/// Power-on register A: 32.768 kHz time base, 1024 Hz periodic rate.
const POWER_ON_A: u8 = 0x26;
/// Power-on register B: 24-hour BCD, all interrupts off.
const POWER_ON_B: u8 = B_24H;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// The divider chain's input frequency; periodic rates are powers of two of it.
const TIME_BASE_HZ: u128 = 32_768;
/// How long before each second's update the UIP bit rises: 8 cycles of the
/// 32.768 kHz time base (244 µs), as the data sheet and QEMU have it.
const UIP_WINDOW_NS: i128 = 8 * NANOS_PER_SECOND / TIME_BASE_HZ as i128;
/// When the divider chain leaves reset, the first update comes half a second
/// later (data sheet), so the clock restarts half-way through its second.
const DIVIDER_RESTART_PHASE_NS: i128 = NANOS_PER_SECOND / 2;
/// 1970-01-01 was a Thursday; the day-of-week register counts Sunday as 1.
const EPOCH_DAY_OF_WEEK: i64 = 4;

/// Model name in saved states.
const KIND: &str = "mc146818";
/// Layout version of the saved [`CmosState`].
const VERSION: u32 = 1;

/// The RTC's guest-visible state. The time source and the interrupt line are
/// host handles and stay out of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmosState {
    /// The 128 bytes of CMOS memory. The clock registers in it hold the time
    /// as last latched (or as the guest wrote it while the clock was stopped);
    /// register A's UIP bit is always 0 here (it is computed when read).
    #[serde(with = "crate::state::hex_bytes")]
    pub memory: Vec<u8>,
    /// Selected byte (7 bits).
    pub index: u8,
    /// Bit 7 of the last index written: the PC's NMI mask.
    pub nmi_disabled: bool,
    /// Whole seconds added to the time source to get the clock.
    pub offset_seconds: i64,
    /// Nanoseconds (below one second) added on top of `offset_seconds`.
    pub offset_nanos: u32,
    /// The clock second at which the update and alarm flags were last
    /// brought up to date.
    pub last_second: i64,
    /// Virtual time of the last tick, in nanoseconds.
    pub now: u64,
    /// Periodic-interrupt periods since virtual time 0 counted so far.
    pub periodic_count: u64,
}

/// The MC146818 RTC and CMOS memory.
pub struct Mc146818 {
    state: CmosState,
    time: TimeSource,
    irq: Option<Box<dyn IrqLine>>,
    /// The level last driven on the line, so it is driven on changes only.
    line: Option<bool>,
}

impl std::fmt::Debug for Mc146818 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mc146818")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A broken-down date and time as the clock registers hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DateTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// 1 (Sunday) to 7.
    day_of_week: u8,
}

impl Mc146818 {
    /// An RTC at power-on (32.768 kHz time base, 24-hour BCD, interrupts off,
    /// memory zero) whose clock reads `time`.
    pub fn new(time: TimeSource) -> Mc146818 {
        let mut memory = vec![0; CMOS_SIZE];
        memory[usize::from(REG_A)] = POWER_ON_A;
        memory[usize::from(REG_B)] = POWER_ON_B;
        memory[usize::from(REG_D)] = D_VRT;
        let mut rtc = Mc146818 {
            state: CmosState {
                memory,
                index: 0,
                nmi_disabled: false,
                offset_seconds: 0,
                offset_nanos: 0,
                last_second: 0,
                now: 0,
                periodic_count: 0,
            },
            time,
            irq: None,
            line: None,
        };
        rtc.state.last_second = rtc.clock_seconds();
        rtc.latch_time();
        rtc
    }

    /// Connects the interrupt line (IRQ 8 on a PC).
    pub fn set_irq(&mut self, irq: Box<dyn IrqLine>) {
        self.irq = Some(irq);
        self.line = None;
        self.update_irq();
    }

    /// Sets a byte of CMOS memory, as the machine does before the firmware
    /// runs. `index` is taken modulo 128, as the index port does. Meant for
    /// the memory bytes; the clock registers are the guest's to write.
    pub fn set_byte(&mut self, index: u8, value: u8) {
        self.state.memory[usize::from(index & INDEX_MASK)] = value;
    }

    /// A byte of CMOS memory as stored, without the side effects of a guest
    /// read (register C is not cleared, the clock registers are not latched).
    pub fn byte(&self, index: u8) -> u8 {
        self.state.memory[usize::from(index & INDEX_MASK)]
    }

    /// Whether the guest masked NMIs (bit 7 of the last index it wrote). The
    /// PC has no NMI sources yet, so nothing acts on it.
    pub fn nmi_disabled(&self) -> bool {
        self.state.nmi_disabled
    }

    /// The clock in nanoseconds since the Unix epoch.
    fn clock_ns(&self) -> i128 {
        i128::from((self.time)())
            + i128::from(self.state.offset_seconds) * NANOS_PER_SECOND
            + i128::from(self.state.offset_nanos)
    }

    fn clock_seconds(&self) -> i64 {
        saturate(self.clock_ns().div_euclid(NANOS_PER_SECOND))
    }

    /// Whether the clock counts: SET clear and the divider chain out of reset.
    fn running(&self) -> bool {
        self.reg(REG_B) & B_SET == 0 && self.reg(REG_A) & A_DIVIDER <= A_DIVIDER_RUNNING_MAX
    }

    fn reg(&self, index: u8) -> u8 {
        self.state.memory[usize::from(index)]
    }

    fn set_reg(&mut self, index: u8, value: u8) {
        self.state.memory[usize::from(index)] = value;
    }

    fn binary(&self) -> bool {
        self.reg(REG_B) & B_BINARY != 0
    }

    fn hours_24(&self) -> bool {
        self.reg(REG_B) & B_24H != 0
    }

    /// A value as the data mode stores it.
    fn encode(&self, value: u32) -> u8 {
        if self.binary() {
            value as u8
        } else {
            (((value / 10) << 4) | (value % 10)) as u8
        }
    }

    /// A stored value read back in the data mode. Bytes that are not valid BCD
    /// give nonsense numbers, as on the chip, but never a panic.
    fn decode(&self, byte: u8) -> u32 {
        if self.binary() {
            u32::from(byte)
        } else {
            u32::from(byte >> 4) * 10 + u32::from(byte & 0xf)
        }
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.hours_24() {
            return self.encode(u32::from(hour));
        }
        let twelve = match hour % 12 {
            0 => 12,
            h => h,
        };
        let pm = if hour >= 12 { HOUR_PM } else { 0 };
        self.encode(u32::from(twelve)) | pm
    }

    fn decode_hour(&self, byte: u8) -> i64 {
        if self.hours_24() {
            return i64::from(self.decode(byte));
        }
        let hour = i64::from(self.decode(byte & !HOUR_PM)) % 12;
        if byte & HOUR_PM != 0 { hour + 12 } else { hour }
    }

    /// Copies the clock into the time registers.
    fn latch_time(&mut self) {
        let t = DateTime::from_seconds(self.clock_seconds());
        let year = t.year.rem_euclid(100) as u32;
        let century = t.year.div_euclid(100).clamp(0, 255) as u32;
        let bytes = [
            (REG_SECONDS, self.encode(u32::from(t.second))),
            (REG_MINUTES, self.encode(u32::from(t.minute))),
            (REG_HOURS, self.encode_hour(t.hour)),
            (REG_DAY_OF_WEEK, self.encode(u32::from(t.day_of_week))),
            (REG_DAY_OF_MONTH, self.encode(u32::from(t.day))),
            (REG_MONTH, self.encode(u32::from(t.month))),
            (REG_YEAR, self.encode(year)),
            (REG_CENTURY, self.encode(century)),
        ];
        for (index, value) in bytes {
            self.set_reg(index, value);
        }
    }

    /// Sets the clock to the time registers, `phase_ns` into that second.
    /// The day of week is not read: it follows from the date, as in QEMU.
    fn set_clock_from_registers(&mut self, phase_ns: i128) {
        let year = i64::from(self.decode(self.reg(REG_CENTURY))) * 100
            + i64::from(self.decode(self.reg(REG_YEAR)));
        let seconds = days_from_civil(
            year,
            self.decode(self.reg(REG_MONTH)),
            i64::from(self.decode(self.reg(REG_DAY_OF_MONTH))),
        ) * SECONDS_PER_DAY
            + self.decode_hour(self.reg(REG_HOURS)) * 3600
            + i64::from(self.decode(self.reg(REG_MINUTES))) * 60
            + i64::from(self.decode(self.reg(REG_SECONDS)));
        let target = i128::from(seconds) * NANOS_PER_SECOND + phase_ns;
        let offset = target - i128::from((self.time)());
        self.state.offset_seconds = saturate(offset.div_euclid(NANOS_PER_SECOND));
        self.state.offset_nanos = offset.rem_euclid(NANOS_PER_SECOND) as u32;
        self.state.last_second = seconds;
    }

    /// Brings the update-ended and alarm flags up to the clock: one update
    /// per clock second passed since the last look.
    fn sync_clock(&mut self) {
        if !self.running() {
            return;
        }
        let now = self.clock_seconds();
        let last = self.state.last_second;
        self.state.last_second = now;
        if now <= last {
            // No second passed, or the time source stepped back: nothing ended.
            return;
        }
        let mut flags = self.reg(REG_C) | C_UF;
        if flags & C_AF == 0 && self.alarm_passed(last, now) {
            flags |= C_AF;
        }
        self.set_reg(REG_C, flags);
        self.update_irq();
    }

    /// Whether the alarm matched a second in `(after, until]`. Alarms repeat
    /// at most daily, so looking at the last day of that span is enough.
    fn alarm_passed(&self, after: i64, until: i64) -> bool {
        let alarm = [
            self.reg(REG_HOURS_ALARM),
            self.reg(REG_MINUTES_ALARM),
            self.reg(REG_SECONDS_ALARM),
        ];
        let first = after.saturating_add(1).max(until - (SECONDS_PER_DAY - 1));
        (first..=until).any(|second| {
            let of_day = second.rem_euclid(SECONDS_PER_DAY);
            let now = [
                self.encode_hour((of_day / 3600) as u8),
                self.encode((of_day / 60 % 60) as u32),
                self.encode((of_day % 60) as u32),
            ];
            alarm
                .iter()
                .zip(now)
                .all(|(&want, have)| want & ALARM_DONT_CARE == ALARM_DONT_CARE || want == have)
        })
    }

    /// Recomputes IRQF and drives the line to it.
    fn update_irq(&mut self) {
        let c = self.reg(REG_C);
        let pending = c & self.reg(REG_B) & C_FLAGS != 0;
        self.set_reg(REG_C, if pending { c | C_IRQF } else { c & !C_IRQF });
        if self.line != Some(pending)
            && let Some(irq) = &self.irq
        {
            irq.set_level(pending);
            self.line = Some(pending);
        }
    }

    /// The periodic interrupt's period in cycles of the 32.768 kHz time base,
    /// if it runs. Rates 1 and 2 are 256 and 128 Hz (the data sheet's rows for
    /// the faster time bases), 3 to 15 halve from 8192 Hz down to 2 Hz. Like
    /// QEMU, PF is only kept while PIE is on, so a guest that never enables
    /// periodic interrupts costs no timer.
    fn periodic_cycles(&self) -> Option<u128> {
        let rate = self.reg(REG_A) & A_RATE;
        if rate == 0 || self.reg(REG_B) & B_PIE == 0 {
            return None;
        }
        let shift = if rate <= 2 { rate + 6 } else { rate - 1 };
        Some(1 << shift)
    }

    /// Periodic periods of `cycles` between virtual time 0 and `now`.
    fn periods_at(now: u64, cycles: u128) -> u64 {
        (u128::from(now) * TIME_BASE_HZ / NANOS_PER_SECOND as u128 / cycles) as u64
    }

    /// The virtual time at which period `count` (of `cycles`) ends.
    fn period_end(count: u64, cycles: u128) -> u64 {
        let ns = (u128::from(count) * cycles * NANOS_PER_SECOND as u128).div_ceil(TIME_BASE_HZ);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Restarts the periodic count from the last tick, after its rate or
    /// enable changed, so periods before the change do not fire.
    fn restart_periodic(&mut self) {
        if let Some(cycles) = self.periodic_cycles() {
            self.state.periodic_count = Mc146818::periods_at(self.state.now, cycles);
        }
    }

    fn read_data(&mut self) -> u8 {
        self.sync_clock();
        let index = self.state.index;
        match index {
            _ if is_time_register(index) => {
                if self.running() {
                    self.latch_time();
                }
                self.reg(index)
            }
            REG_A => {
                let phase = self.clock_ns().rem_euclid(NANOS_PER_SECOND);
                let updating = self.running() && phase >= NANOS_PER_SECOND - UIP_WINDOW_NS;
                self.reg(REG_A) | if updating { A_UIP } else { 0 }
            }
            REG_C => {
                let value = self.reg(REG_C);
                self.set_reg(REG_C, 0);
                self.update_irq();
                value
            }
            _ => self.reg(index),
        }
    }

    fn write_data(&mut self, value: u8) {
        self.sync_clock();
        let index = self.state.index;
        let value = match index {
            REG_C | REG_D => return, // read-only
            REG_A => value & !A_UIP,
            // Setting SET also clears UIE (data sheet; QEMU does the same).
            REG_B if value & B_SET != 0 => value & !B_UIE,
            _ => value,
        };
        let was_running = self.running();
        if was_running {
            // Writing while the clock runs edits the current time, not the
            // one last read.
            self.latch_time();
        }
        let periodic_before = (self.reg(REG_A) & A_RATE, self.reg(REG_B) & B_PIE);
        let phase = self.clock_ns().rem_euclid(NANOS_PER_SECOND);
        let divider_runs = |a: u8| a & A_DIVIDER <= A_DIVIDER_RUNNING_MAX;
        let starts = !was_running
            && match index {
                REG_A => divider_runs(value) && self.reg(REG_B) & B_SET == 0,
                REG_B => value & B_SET == 0 && divider_runs(self.reg(REG_A)),
                _ => false,
            };
        if starts && index == REG_B {
            // Clearing SET: the time written is read in the data mode it was
            // written in, before this write changes the mode (as in QEMU).
            // The divider chain ran on under SET, so the second's phase stays.
            self.set_clock_from_registers(phase);
        }
        self.set_reg(index, value);
        if starts && index == REG_A {
            self.set_clock_from_registers(DIVIDER_RESTART_PHASE_NS);
        }
        if was_running && is_time_register(index) {
            self.set_clock_from_registers(phase);
        }
        if (self.reg(REG_A) & A_RATE, self.reg(REG_B) & B_PIE) != periodic_before {
            self.restart_periodic();
        }
        self.update_irq();
    }
}

impl DateTime {
    fn from_seconds(seconds: i64) -> DateTime {
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (of_day / 3600) as u8,
            minute: (of_day / 60 % 60) as u8,
            second: (of_day % 60) as u8,
            day_of_week: ((days + EPOCH_DAY_OF_WEEK).rem_euclid(7) + 1) as u8,
        }
    }
}

/// Days from 1970-01-01 to `year-month-day` in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm). Months out of range are clamped;
/// days count on linearly (day 0 is the last of the month before), as
/// `mktime` does with out-of-range fields.
fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

/// Whether `index` is one of the registers the clock counts in.
fn is_time_register(index: u8) -> bool {
    matches!(
        index,
        REG_SECONDS
            | REG_MINUTES
            | REG_HOURS
            | REG_DAY_OF_WEEK
            | REG_DAY_OF_MONTH
            | REG_MONTH
            | REG_YEAR
            | REG_CENTURY
    )
}

fn saturate(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl Device for Mc146818 {
    /// The RESET pin: PIE, AIE, UIE and SQWE clear, the interrupt flags
    /// clear and the line drops. The clock, the rest of the registers and the
    /// memory are battery-backed and stay (firmware reads the shutdown status
    /// byte after a reset).
    fn reset(&mut self) {
        let b = self.reg(REG_B) & !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.set_reg(REG_B, b);
        self.set_reg(REG_C, 0);
        self.update_irq();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND, VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let decoded: CmosState = state.decode(KIND, VERSION)?;
        if decoded.memory.len() != CMOS_SIZE {
            return Err(invalid(
                KIND,
                format!(
                    "{} bytes of CMOS memory, not {CMOS_SIZE}",
                    decoded.memory.len()
                ),
            ));
        }
        if decoded.index > INDEX_MASK
            || u128::from(decoded.offset_nanos) >= NANOS_PER_SECOND as u128
        {
            return Err(invalid(KIND, "index or clock offset out of range"));
        }
        self.state = decoded;
        self.line = None;
        self.update_irq();
        Ok(())
    }
}

impl PioDevice for Mc146818 {
    /// The index port reads as all ones (it is write-only, as in QEMU); the
    /// data port reads the selected byte.
    fn read(&mut self, offset: u16, _size: u8) -> u32 {
        match offset {
            DATA_PORT => u32::from(self.read_data()),
            _ => 0xff,
        }
    }

    fn write(&mut self, offset: u16, _size: u8, value: u32) {
        let value = value as u8;
        match offset {
            INDEX_PORT => {
                self.state.index = value & INDEX_MASK;
                self.state.nmi_disabled = value & INDEX_NMI_DISABLE != 0;
            }
            DATA_PORT => self.write_data(value),
            _ => {}
        }
    }

    /// Sets PF as periodic periods end, and UF and AF as clock seconds pass;
    /// asks to be called at the next periodic period's end and, while update
    /// or alarm interrupts are enabled, at the clock's next second (reckoned
    /// in virtual time as if the time source kept pace with it; a late call
    /// only delays the interrupt).
    fn tick(&mut self, now: u64) -> Option<u64> {
        self.state.now = now;
        self.sync_clock();
        let mut next = None;
        if let Some(cycles) = self.periodic_cycles() {
            let count = Mc146818::periods_at(now, cycles);
            if count > self.state.periodic_count {
                self.state.periodic_count = count;
                let c = self.reg(REG_C) | C_PF;
                self.set_reg(REG_C, c);
                self.update_irq();
            }
            next = Some(Mc146818::period_end(count + 1, cycles));
        }
        if self.running() && self.reg(REG_B) & (B_UIE | B_AIE) != 0 {
            let left = NANOS_PER_SECOND - self.clock_ns().rem_euclid(NANOS_PER_SECOND);
            let second = now.saturating_add(left as u64);
            next = Some(next.map_or(second, |n: u64| n.min(second)));
        }
        next
    }
}

#[cfg(test)]
mod tests;
