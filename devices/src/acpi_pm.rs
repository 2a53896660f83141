//! The ACPI power-management registers of the PIIX4 PM function, as QEMU's
//! `pc` has them at PMBASE (0x600, where SeaBIOS puts it and the FADT
//! says): the PM1 event block (status and enable), the PM1 control block
//! (SCI enable, sleep type and sleep enable: entering S5 powers the machine
//! off), and the 24-bit PM timer counting at 3.579545 MHz, whose overflow
//! sets TMR_STS. Linux calibrates its clocks on the PM timer and powers off
//! through PM1 control.

use std::sync::Arc;

use emu_core::{Device, DeviceState, IrqLine, PioDevice, RunControl, StateError, StopReason};
use serde::{Deserialize, Serialize};

/// Bytes of the register block.
pub const PORT_COUNT: u16 = 0x40;
/// Where SeaBIOS and QEMU's ACPI tables put it.
pub const DEFAULT_BASE: u16 = 0x600;
/// The PM timer's frequency in Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;

/// Register offsets.
mod reg {
    pub const PM1_STATUS: u16 = 0x00;
    pub const PM1_ENABLE: u16 = 0x02;
    pub const PM1_CONTROL: u16 = 0x04;
    pub const PM_TIMER: u16 = 0x08;
}

/// PM1 status and enable bits.
pub mod pm1 {
    /// The PM timer's bit 23 changed.
    pub const TMR: u16 = 1 << 0;
    /// The global lock was released (enable only: firmware has no lock here).
    pub const GBL: u16 = 1 << 5;
    /// The power button was pressed.
    pub const PWRBTN: u16 = 1 << 8;
    /// The RTC alarm fired (enable only: the alarm wakes nothing here).
    pub const RTC: u16 = 1 << 10;
    /// The enable bits a PIIX4 has; all read back as written.
    pub const ENABLE_BITS: u16 = TMR | GBL | PWRBTN | RTC;
    /// The system woke (status only).
    pub const WAK: u16 = 1 << 15;
}

/// PM1 control bits.
mod control {
    pub const SCI_EN: u16 = 1 << 0;
    pub const SLP_TYP_SHIFT: u16 = 10;
    pub const SLP_TYP_MASK: u16 = 7 << SLP_TYP_SHIFT;
    pub const SLP_EN: u16 = 1 << 13;
}

/// The sleep type QEMU's DSDT gives S5 (`_S5 = { 0, 0 }`).
const SLEEP_TYPE_S5: u16 = 0;

const KIND: &str = "acpi-pm";
const VERSION: u32 = 1;

/// Where the PM timer's value comes from: the machine's clock in ticks and
/// its frequency, so deterministic runs read deterministic values.
pub type TickSource = Box<dyn Fn() -> u64 + Send>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AcpiPmState {
    status: u16,
    enable: u16,
    control: u16,
    /// The timer value bit 23 had when TMR_STS was last brought up to date.
    timer_high_bit: bool,
}

/// The PM1 and PM timer registers.
pub struct AcpiPm {
    state: AcpiPmState,
    now: TickSource,
    ticks_per_second: u64,
    control: Arc<RunControl>,
    sci: Option<Box<dyn IrqLine>>,
}

impl std::fmt::Debug for AcpiPm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpiPm")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl AcpiPm {
    /// The registers at power-on; `now` gives the machine clock's ticks, of
    /// which there are `ticks_per_second`; S5 stops the machine through
    /// `control`; the SCI goes out on `sci` (ISA IRQ 9 on QEMU's pc).
    pub fn new(
        now: TickSource,
        ticks_per_second: u64,
        control: Arc<RunControl>,
        sci: Option<Box<dyn IrqLine>>,
    ) -> AcpiPm {
        AcpiPm {
            state: AcpiPmState::default(),
            now,
            ticks_per_second: ticks_per_second.max(1),
            control,
            sci,
        }
    }

    /// The PM timer's 24-bit value now.
    pub fn timer(&self) -> u32 {
        let ticks = u128::from((self.now)());
        let counted = ticks * u128::from(PM_TIMER_HZ) / u128::from(self.ticks_per_second);
        (counted & 0xff_ffff) as u32
    }

    /// Brings TMR_STS up to date: it is set each time the timer's bit 23
    /// changes (every 2^23 counts, about 2.3 s).
    fn update_timer_status(&mut self) {
        let high = self.timer() & (1 << 23) != 0;
        if high != self.state.timer_high_bit {
            self.state.timer_high_bit = high;
            self.state.status |= pm1::TMR;
        }
        self.update_sci();
    }

    /// The SCI is high while an enabled event is pending and SCI_EN is set.
    fn update_sci(&self) {
        let pending = self.state.status & self.state.enable & (pm1::TMR | pm1::PWRBTN) != 0;
        let level = pending && self.state.control & control::SCI_EN != 0;
        if let Some(sci) = &self.sci {
            sci.set_level(level);
        }
    }

    /// Sets or clears SCI_EN: what the chipset does when firmware or an OS
    /// asks through the APM control port to enter or leave ACPI mode.
    pub fn set_sci_enabled(&mut self, on: bool) {
        if on {
            self.state.control |= control::SCI_EN;
        } else {
            self.state.control &= !control::SCI_EN;
        }
        self.update_sci();
    }

    /// A press of the power button: PWRBTN_STS, and the SCI if enabled.
    pub fn press_power_button(&mut self) {
        self.state.status |= pm1::PWRBTN;
        self.update_sci();
    }

    fn write_control(&mut self, value: u16) {
        // SLP_EN is write-only: it starts the transition and reads as 0.
        self.state.control = value & !control::SLP_EN;
        if value & control::SLP_EN != 0 {
            let sleep_type = (value & control::SLP_TYP_MASK) >> control::SLP_TYP_SHIFT;
            if sleep_type == SLEEP_TYPE_S5 {
                self.control.request_stop(StopReason::PowerOff(0));
            }
            // Other sleep states are not supported; the write is a no-op, as
            // on a machine whose tables offer none.
        }
        self.update_sci();
    }
}

impl Device for AcpiPm {
    fn reset(&mut self) {
        self.state = AcpiPmState::default();
        self.update_sci();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND, VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        self.state = state.decode(KIND, VERSION)?;
        self.update_sci();
        Ok(())
    }
}

impl PioDevice for AcpiPm {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        self.update_timer_status();
        let word = |v: u16| u32::from(v);
        let value = if offset & !3 == reg::PM_TIMER {
            self.timer() >> (8 * u32::from(offset & 3))
        } else {
            let value = match offset & !1 {
                reg::PM1_STATUS => word(self.state.status),
                reg::PM1_ENABLE => word(self.state.enable),
                reg::PM1_CONTROL => word(self.state.control),
                _ => 0,
            };
            // An odd offset reads the high byte of its word.
            if offset & 1 != 0 { value >> 8 } else { value }
        };
        match size {
            1 => value & 0xff,
            2 => value & 0xffff,
            _ => value,
        }
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        let (offset, value) = if offset & 1 != 0 && size == 1 {
            (offset & !1, (value & 0xff) << 8)
        } else {
            (offset, value)
        };
        let v = value as u16;
        match offset {
            // Write one to clear.
            reg::PM1_STATUS => {
                self.update_timer_status();
                self.state.status &= !v;
                self.update_sci();
            }
            reg::PM1_ENABLE => {
                // Operating systems check that an enable bit stuck.
                self.state.enable = v & pm1::ENABLE_BITS;
                self.update_sci();
            }
            reg::PM1_CONTROL => self.write_control(v),
            _ => {}
        }
    }

    fn tick(&mut self, _now: u64) -> Option<u64> {
        self.update_timer_status();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Line(Arc<AtomicBool>);
    impl IrqLine for Line {
        fn set_level(&self, high: bool) {
            self.0.store(high, Ordering::SeqCst);
        }
    }

    /// A PM block on a clock of 1 GHz ticks the test sets.
    fn setup() -> (AcpiPm, Arc<AtomicU64>, Arc<RunControl>, Arc<AtomicBool>) {
        let clock = Arc::new(AtomicU64::new(0));
        let control = Arc::new(RunControl::new());
        let sci = Arc::new(AtomicBool::new(false));
        let c = clock.clone();
        let pm = AcpiPm::new(
            Box::new(move || c.load(Ordering::SeqCst)),
            1_000_000_000,
            control.clone(),
            Some(Box::new(Line(sci.clone()))),
        );
        (pm, clock, control, sci)
    }

    #[test]
    fn the_pm_timer_counts_at_3_58_mhz_and_wraps_at_24_bits() {
        let (mut pm, clock, _, _) = setup();
        assert_eq!(pm.read(reg::PM_TIMER, 4), 0);
        clock.store(1_000_000_000, Ordering::SeqCst);
        assert_eq!(pm.read(reg::PM_TIMER, 4), (PM_TIMER_HZ & 0xff_ffff) as u32);
        // 5 s: 17,897,725 counts, past 2^24.
        clock.store(5_000_000_000, Ordering::SeqCst);
        assert_eq!(
            pm.read(reg::PM_TIMER, 4),
            (5 * PM_TIMER_HZ % (1 << 24)) as u32
        );
        assert_eq!(
            pm.read(reg::PM_TIMER + 2, 1),
            (5 * PM_TIMER_HZ % (1 << 24)) as u32 >> 16
        );
    }

    #[test]
    fn timer_overflow_sets_tmr_sts_and_raises_the_sci_when_enabled() {
        let (mut pm, clock, _, sci) = setup();
        pm.write(reg::PM1_CONTROL, 2, u32::from(control::SCI_EN));
        pm.write(reg::PM1_ENABLE, 2, u32::from(pm1::TMR));
        assert_eq!(pm.read(reg::PM1_STATUS, 2) & u32::from(pm1::TMR), 0);
        // Bit 23 turns on after 2^23 counts (about 2.34 s).
        clock.store(2_400_000_000, Ordering::SeqCst);
        assert_eq!(pm.tick(0), None);
        assert_ne!(pm.read(reg::PM1_STATUS, 2) & u32::from(pm1::TMR), 0);
        assert!(sci.load(Ordering::SeqCst));
        // Writing one clears it and drops the line.
        pm.write(reg::PM1_STATUS, 2, u32::from(pm1::TMR));
        assert_eq!(pm.read(reg::PM1_STATUS, 2) & u32::from(pm1::TMR), 0);
        assert!(!sci.load(Ordering::SeqCst));
    }

    #[test]
    fn entering_s5_powers_off_and_other_sleep_types_do_not() {
        let (mut pm, _, control, _) = setup();
        pm.write(reg::PM1_CONTROL, 2, u32::from(control::SLP_EN | (1 << 10)));
        assert_eq!(control.stop_reason(), None);
        // Linux: SLP_TYP 0 (from _S5) with SLP_EN, as a 16-bit write.
        pm.write(
            reg::PM1_CONTROL,
            2,
            u32::from(control::SLP_EN | control::SCI_EN),
        );
        assert_eq!(control.stop_reason(), Some(StopReason::PowerOff(0)));
        assert_eq!(
            pm.read(reg::PM1_CONTROL, 2),
            u32::from(control::SCI_EN),
            "SLP_EN reads as 0"
        );
    }

    #[test]
    fn enable_bits_read_back_as_written() {
        let (mut pm, _, _, sci) = setup();
        // Linux enables the global lock and RTC events and reads them back.
        pm.write(reg::PM1_ENABLE, 2, 0xffff);
        assert_eq!(pm.read(reg::PM1_ENABLE, 2), u32::from(pm1::ENABLE_BITS));
        assert_eq!(pm1::ENABLE_BITS, 0x0521);
        assert!(!sci.load(Ordering::SeqCst), "nothing pending");
    }

    #[test]
    fn the_power_button_and_state_round_trip() {
        let (mut pm, _, _, sci) = setup();
        pm.write(reg::PM1_CONTROL, 2, u32::from(control::SCI_EN));
        pm.write(reg::PM1_ENABLE, 2, u32::from(pm1::PWRBTN));
        pm.press_power_button();
        assert!(sci.load(Ordering::SeqCst));
        let saved = pm.save_state();
        let (mut other, _, _, other_sci) = setup();
        other.restore_state(&saved).unwrap();
        assert!(other_sci.load(Ordering::SeqCst));
        assert_eq!(
            other.read(reg::PM1_ENABLE + 1, 1),
            u32::from(pm1::PWRBTN >> 8)
        );
    }
}
