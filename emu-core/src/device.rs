//! The traits device models implement, and the machine-wide run control.
//!
//! A device model knows nothing about where it is mapped: it sees offsets into its
//! own register window (memory-mapped, [`MmioDevice`]) or port range (port I/O,
//! [`PioDevice`]). Interrupts leave a device through an [`crate::irq::IrqLine`] or
//! an MSI message, which the machine definition wires to an interrupt controller.
//!
//! Every device has a lifecycle ([`Device`]): `reset()` puts its guest-visible
//! state back to power-on (a machine reset calls it on every device), and its
//! guest-visible state can be saved and restored as a [`DeviceState`], apart from
//! its host handles (files, sockets, threads), which stay where they are.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bus::BusFault;
pub use crate::irq::IrqLine;
use crate::sync::LockRecover;

/// The guest-visible state of one device, as saved by [`Device::save_state`].
///
/// `kind` names the device model and `version` the layout of `data`, so a restore
/// into the wrong model or from an incompatible layout is an error, not garbage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// The device model ("uart16550", "virtio-mmio/virtio-blk", ...).
    pub kind: String,
    /// Version of the state layout.
    pub version: u32,
    /// The state itself, a serde value of the model's plain state struct.
    pub data: serde_json::Value,
}

/// Why a saved state cannot be restored.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StateError {
    /// The state belongs to another device model or layout version.
    #[error(
        "state of {found} (version {found_version}) cannot restore {expected} (version {expected_version})"
    )]
    Mismatch {
        /// The model restoring.
        expected: String,
        /// Its layout version.
        expected_version: u32,
        /// The model that saved the state.
        found: String,
        /// The saved layout version.
        found_version: u32,
    },
    /// The state has the right model but does not decode or is inconsistent.
    #[error("bad {kind} state: {reason}")]
    Invalid {
        /// The model.
        kind: String,
        /// What is wrong.
        reason: String,
    },
}

impl DeviceState {
    /// Encodes `state` (a device's plain state struct) as model `kind`, `version`.
    pub fn encode<T: Serialize>(kind: &str, version: u32, state: &T) -> DeviceState {
        DeviceState {
            kind: kind.to_owned(),
            version,
            // Plain state structs (integers, bools, vectors, strings, maps with
            // string keys) always serialize; `Null` would make the restore fail
            // loudly rather than silently.
            data: serde_json::to_value(state).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Decodes the state of model `kind`, `version`.
    pub fn decode<T: DeserializeOwned>(&self, kind: &str, version: u32) -> Result<T, StateError> {
        if self.kind != kind || self.version != version {
            return Err(StateError::Mismatch {
                expected: kind.to_owned(),
                expected_version: version,
                found: self.kind.clone(),
                found_version: self.version,
            });
        }
        serde_json::from_value(self.data.clone()).map_err(|e| StateError::Invalid {
            kind: kind.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// The lifecycle every device model has, whatever bus it sits on.
pub trait Device: Send {
    /// Puts the guest-visible state back to power-on, as a machine reset does.
    /// Host handles (an open disk image, a console) stay open.
    fn reset(&mut self);
    /// The guest-visible state, apart from host handles.
    fn save_state(&self) -> DeviceState;
    /// Replaces the guest-visible state with `state`, saved from the same model.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError>;
}

/// A device with memory-mapped registers.
pub trait MmioDevice: Device {
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

/// A device with registers in the I/O port space.
///
/// Accesses are 1, 2 or 4 bytes wide. A port read always yields a value: what the
/// device does not decode reads as all ones, as an ISA bus floats high.
pub trait PioDevice: Device {
    /// Reads `size` bytes (1, 2 or 4) at `offset` into the device's port range.
    fn read(&mut self, offset: u16, size: u8) -> u32;
    /// Writes the low `size` bytes of `value` at `offset`.
    fn write(&mut self, offset: u16, size: u8, value: u32);
    /// Advances device time to `now`, as [`MmioDevice::tick`] does.
    fn tick(&mut self, _now: u64) -> Option<u64> {
        None
    }
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
    /// Threads parked in [`RunControl::wait_for_irq`]: a CPU with nothing to do
    /// (WFI, HLT) or the device loop between deadlines. Counted, so raising a
    /// line costs one atomic add while nobody waits.
    sleepers: AtomicU32,
    parking: Mutex<()>,
    wake: Condvar,
}

impl RunControl {
    /// A control in the running state.
    pub fn new() -> RunControl {
        RunControl::default()
    }

    /// Requests a stop; the first request wins.
    pub fn request_stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock_recover();
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.state.store(STOPPED, Ordering::SeqCst);
        self.wake_sleepers();
    }

    /// Whether a stop was requested.
    #[inline]
    pub fn stop_requested(&self) -> bool {
        self.state.load(Ordering::Acquire) != RUNNING
    }

    /// The requested stop, if any.
    pub fn stop_reason(&self) -> Option<StopReason> {
        *self.reason.lock_recover()
    }

    /// Returns to the running state (after a reset was handled).
    pub fn clear(&self) {
        *self.reason.lock_recover() = None;
        self.state.store(RUNNING, Ordering::Release);
    }

    /// Notes that an interrupt line changed, waking threads waiting for one.
    pub fn notify_irq(&self) {
        self.irq_epoch.fetch_add(1, Ordering::SeqCst);
        self.wake_sleepers();
    }

    /// Blocks until an interrupt line changes after the caller read `seen` from
    /// [`RunControl::irq_epoch`], a stop is requested, or `timeout` passes.
    ///
    /// No wake-up is lost: a waiter counts itself before it checks the epoch
    /// under the lock, and a notifier bumps the epoch before it looks for
    /// waiters (both sequentially consistent), so either the waiter sees the
    /// new epoch or the notifier sees the waiter and signals under the lock.
    pub fn wait_for_irq(&self, seen: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.parking.lock_recover();
        loop {
            if self.irq_epoch.load(Ordering::SeqCst) != seen || self.stop_requested() {
                break;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            guard = match self.wake.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        drop(guard);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Makes every thread in [`RunControl::wait_for_irq`] return and look
    /// around (the machine wants its CPUs back). Counts as an interrupt change:
    /// CPUs check for pending interrupts once more, which is harmless.
    pub fn wake_all(&self) {
        self.notify_irq();
    }

    fn wake_sleepers(&self) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            let _guard = self.parking.lock_recover();
            self.wake.notify_all();
        }
    }

    /// A counter that changes whenever an interrupt line changed.
    #[inline]
    pub fn irq_epoch(&self) -> u64 {
        // Sequentially consistent: a CPU publishes where it stops running
        // translated code, then reads this (see `wait_for_irq` for the rest).
        self.irq_epoch.load(Ordering::SeqCst)
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

    #[test]
    fn an_irq_wakes_a_waiting_thread() {
        let control = std::sync::Arc::new(RunControl::new());
        let seen = control.irq_epoch();
        let waiter = {
            let control = control.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                control.wait_for_irq(seen, Duration::from_secs(60));
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        control.notify_irq();
        let waited = waiter.join().unwrap();
        assert!(waited < Duration::from_secs(60), "woken, not timed out");
        // An epoch already past returns at once; so does a stop.
        control.wait_for_irq(seen, Duration::from_secs(60));
        control.request_stop(StopReason::HostRequest);
        control.wait_for_irq(control.irq_epoch(), Duration::from_secs(60));
    }
}
