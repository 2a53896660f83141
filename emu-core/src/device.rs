//! The traits device models implement, and the machine-wide run control.
//!
//! A device model knows nothing about where it is mapped: it sees offsets into its
//! own register window. Interrupts leave a device through an [`IrqLine`], which the
//! machine definition wires to an interrupt controller or CPU pin.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::bus::BusFault;

/// A device with memory-mapped registers.
pub trait MmioDevice: Send {
    /// Reads `size` bytes (1, 2, 4 or 8) at `offset` into the device's window.
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault>;
    /// Writes the low `size` bytes of `value` at `offset`.
    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault>;
    /// Advances device time to `now` (in clock ticks); returns the next tick at which
    /// the device wants to be called again, if any.
    fn tick(&mut self, _now: u64) -> Option<u64> {
        None
    }
}

/// One interrupt wire, level-triggered.
pub trait IrqLine: Send + Sync {
    /// Drives the line high (asserted) or low.
    fn set_level(&self, high: bool);
}

/// Why a machine stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The guest powered off; the value is the exit code the host process reports.
    PowerOff(i32),
    /// The guest asked for a reset.
    Reset,
    /// The host asked the machine to stop (time-out, signal).
    HostRequest,
}

const RUNNING: u32 = 0;
const STOPPED: u32 = 1;

/// The machine-wide stop flag: devices request power-off or reset through it, and
/// CPUs poll it to return from their run loops promptly.
#[derive(Debug, Default)]
pub struct RunControl {
    state: AtomicU32,
    /// Bumped whenever a device changes an interrupt line, so CPUs re-check pending
    /// interrupts without polling every device.
    irq_epoch: AtomicU64,
    reason: Mutex<Option<StopReason>>,
}

impl RunControl {
    /// A control in the running state.
    pub fn new() -> RunControl {
        RunControl::default()
    }

    /// Requests a stop; the first request wins.
    pub fn request_stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.state.store(STOPPED, Ordering::Release);
    }

    /// Whether a stop was requested.
    #[inline]
    pub fn stop_requested(&self) -> bool {
        self.state.load(Ordering::Acquire) != RUNNING
    }

    /// The requested stop, if any.
    pub fn stop_reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns to the running state (after a reset was handled).
    pub fn clear(&self) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.state.store(RUNNING, Ordering::Release);
    }

    /// Notes that an interrupt line changed.
    pub fn notify_irq(&self) {
        self.irq_epoch.fetch_add(1, Ordering::Release);
    }

    /// A counter that changes whenever an interrupt line changed.
    #[inline]
    pub fn irq_epoch(&self) -> u64 {
        self.irq_epoch.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stop_request_wins() {
        let control = RunControl::new();
        assert!(!control.stop_requested());
        control.request_stop(StopReason::PowerOff(3));
        control.request_stop(StopReason::Reset);
        assert!(control.stop_requested());
        assert_eq!(control.stop_reason(), Some(StopReason::PowerOff(3)));
        control.clear();
        assert!(!control.stop_requested());
        assert_eq!(control.stop_reason(), None);
    }
}
