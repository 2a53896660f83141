//! The Goldfish real-time clock (as on QEMU's virt board): nanoseconds since the
//! Unix epoch in two 32-bit registers, and a one-shot alarm.

use emu_core::{BusFault, Device, DeviceState, IrqLine, MmioDevice, StateError};
use serde::{Deserialize, Serialize};

/// Size of the register window.
pub const SIZE: u64 = 0x1000;
const TIME_LOW: u64 = 0x00;
const TIME_HIGH: u64 = 0x04;
const ALARM_LOW: u64 = 0x08;
const ALARM_HIGH: u64 = 0x0c;
const IRQ_ENABLED: u64 = 0x10;
const CLEAR_ALARM: u64 = 0x14;
const ALARM_STATUS: u64 = 0x18;
const CLEAR_INTERRUPT: u64 = 0x1c;

/// Model name in saved states.
const KIND: &str = "goldfish-rtc";
/// Layout version of the saved [`RtcState`].
const VERSION: u32 = 1;

/// Where the RTC gets the time: nanoseconds since the Unix epoch.
pub type TimeSource = Box<dyn Fn() -> u64 + Send>;

/// The host's wall clock as a [`TimeSource`].
pub fn host_time() -> TimeSource {
    Box::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

/// The RTC's register state; its default is the power-on state.
///
/// The time itself is not in it: it comes from the host's [`TimeSource`] (a wall
/// clock keeps running whatever the guest does), a handle like the interrupt line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcState {
    /// High half of the time, latched when the low half is read.
    pub time_high_latch: u32,
    /// Alarm time in nanoseconds (high half written first, low half arms it).
    pub alarm: u64,
    /// Whether an alarm is armed.
    pub alarm_armed: bool,
    /// Interrupt enable.
    pub irq_enabled: bool,
    /// Alarm fired and not yet cleared.
    pub interrupt_pending: bool,
}

/// The RTC device.
pub struct GoldfishRtc {
    state: RtcState,
    now: TimeSource,
    irq: Option<Box<dyn IrqLine>>,
}

impl std::fmt::Debug for GoldfishRtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoldfishRtc")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl GoldfishRtc {
    /// An RTC reading time from `now`.
    pub fn new(now: TimeSource) -> GoldfishRtc {
        GoldfishRtc {
            state: RtcState::default(),
            now,
            irq: None,
        }
    }

    /// Connects the interrupt line.
    pub fn set_irq(&mut self, irq: Box<dyn IrqLine>) {
        self.irq = Some(irq);
    }

    fn update(&mut self) {
        if self.state.alarm_armed && (self.now)() >= self.state.alarm {
            self.state.alarm_armed = false;
            self.state.interrupt_pending = true;
        }
        if let Some(irq) = &self.irq {
            irq.set_level(self.state.irq_enabled && self.state.interrupt_pending);
        }
    }
}

impl Device for GoldfishRtc {
    /// Alarm disarmed and cleared, interrupt disabled and not pending (the line
    /// drops), time latch 0. The time source keeps running.
    fn reset(&mut self) {
        self.state = RtcState::default();
        self.update();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND, VERSION, &self.state)
    }

    /// The line is driven to the restored state. An alarm armed in it fires as
    /// soon as the time source has passed it (at once, if it already has), as it
    /// would have without the snapshot.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        self.state = state.decode(KIND, VERSION)?;
        self.update();
        Ok(())
    }
}

impl MmioDevice for GoldfishRtc {
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, BusFault> {
        self.update();
        let value = match offset {
            TIME_LOW => {
                let now = (self.now)();
                self.state.time_high_latch = (now >> 32) as u32;
                now as u32
            }
            TIME_HIGH => self.state.time_high_latch,
            ALARM_LOW => self.state.alarm as u32,
            ALARM_HIGH => (self.state.alarm >> 32) as u32,
            IRQ_ENABLED => u32::from(self.state.irq_enabled),
            ALARM_STATUS => u32::from(self.state.alarm_armed),
            _ => 0,
        };
        Ok(u64::from(value))
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) -> Result<(), BusFault> {
        let value = value as u32;
        match offset {
            ALARM_HIGH => {
                self.state.alarm = (self.state.alarm & 0xffff_ffff) | (u64::from(value) << 32);
            }
            ALARM_LOW => {
                self.state.alarm = (self.state.alarm & !0xffff_ffff) | u64::from(value);
                self.state.alarm_armed = true;
            }
            IRQ_ENABLED => self.state.irq_enabled = value & 1 != 0,
            CLEAR_ALARM => self.state.alarm_armed = false,
            CLEAR_INTERRUPT => self.state.interrupt_pending = false,
            _ => {}
        }
        self.update();
        Ok(())
    }

    fn tick(&mut self, _now: u64) -> Option<u64> {
        self.update();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestIrq, assert_refuses_foreign_states};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn time_is_latched_and_alarm_fires() {
        let clock = Arc::new(AtomicU64::new(0x1_2345_6789));
        let source = clock.clone();
        let mut rtc = GoldfishRtc::new(Box::new(move || source.load(Ordering::Relaxed)));
        let probe = TestIrq::default();
        rtc.set_irq(Box::new(probe.clone()));
        assert_eq!(rtc.read(TIME_LOW, 4).unwrap(), 0x2345_6789);
        clock.store(0x2_0000_0000, Ordering::Relaxed);
        // The high half is the one latched with the low read.
        assert_eq!(rtc.read(TIME_HIGH, 4).unwrap(), 1);
        rtc.write(IRQ_ENABLED, 4, 1).unwrap();
        rtc.write(ALARM_HIGH, 4, 3).unwrap();
        rtc.write(ALARM_LOW, 4, 0).unwrap();
        assert_eq!(rtc.read(ALARM_STATUS, 4).unwrap(), 1);
        assert!(!probe.level());
        clock.store(0x3_0000_0000, Ordering::Relaxed);
        rtc.tick(0);
        assert!(probe.level());
        rtc.write(CLEAR_INTERRUPT, 4, 1).unwrap();
        assert!(!probe.level());
    }

    /// An RTC on a settable clock, with its interrupt line.
    fn rtc(clock: &Arc<AtomicU64>) -> (GoldfishRtc, TestIrq) {
        let source = clock.clone();
        let mut rtc = GoldfishRtc::new(Box::new(move || source.load(Ordering::Relaxed)));
        let irq = TestIrq::default();
        rtc.set_irq(Box::new(irq.clone()));
        (rtc, irq)
    }

    #[test]
    fn state_round_trips_into_a_fresh_rtc() {
        let clock = Arc::new(AtomicU64::new(0x5_0000_1000));
        let (mut a, irq_a) = rtc(&clock);
        // A latched high half, interrupts on, one alarm fired and pending, and a
        // second one armed in the future.
        assert_eq!(a.read(TIME_LOW, 4), Ok(0x1000));
        a.write(IRQ_ENABLED, 4, 1).unwrap();
        a.write(ALARM_HIGH, 4, 5).unwrap();
        a.write(ALARM_LOW, 4, 0x0800).unwrap();
        assert!(irq_a.level());
        a.write(ALARM_LOW, 4, 0x2000).unwrap();
        assert!(
            irq_a.level(),
            "the first alarm's interrupt is still pending"
        );

        let (mut b, irq_b) = rtc(&clock);
        let saved = a.save_state();
        b.restore_state(&saved).unwrap();
        assert_eq!(b.save_state(), saved);
        assert!(irq_b.level());
        for offset in [TIME_HIGH, ALARM_LOW, ALARM_HIGH, IRQ_ENABLED, ALARM_STATUS] {
            assert_eq!(a.read(offset, 4), b.read(offset, 4), "offset {offset:#x}");
        }
        assert_eq!(b.read(ALARM_STATUS, 4), Ok(1));

        // Both acknowledge, then the second alarm fires in both.
        for dev in [&mut a, &mut b] {
            dev.write(CLEAR_INTERRUPT, 4, 1).unwrap();
        }
        assert!(!irq_a.level() && !irq_b.level());
        clock.store(0x5_0000_3000, Ordering::Relaxed);
        a.tick(0);
        b.tick(0);
        assert!(irq_a.level() && irq_b.level());
        assert_eq!(a.save_state(), b.save_state());
    }

    #[test]
    fn reset_disarms_the_alarm_and_drops_the_line() {
        let clock = Arc::new(AtomicU64::new(100));
        let (mut rtc, irq) = rtc(&clock);
        rtc.write(IRQ_ENABLED, 4, 1).unwrap();
        rtc.write(ALARM_LOW, 4, 50).unwrap();
        assert!(irq.level());
        rtc.write(ALARM_LOW, 4, 500).unwrap();
        assert_eq!(rtc.read(ALARM_STATUS, 4), Ok(1));
        rtc.reset();
        assert!(!irq.level());
        assert_eq!(rtc.read(ALARM_STATUS, 4), Ok(0));
        assert_eq!(rtc.read(IRQ_ENABLED, 4), Ok(0));
        assert_eq!(rtc.read(ALARM_LOW, 4), Ok(0));
        // The clock kept running.
        assert_eq!(rtc.read(TIME_LOW, 4), Ok(100));
        clock.store(1_000, Ordering::Relaxed);
        rtc.tick(0);
        assert!(!irq.level(), "the old alarm is gone");
    }

    #[test]
    fn restore_refuses_foreign_states() {
        let clock = Arc::new(AtomicU64::new(0));
        assert_refuses_foreign_states(&mut rtc(&clock).0);
    }
}
