//! Helpers for the device unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use emu_core::{Device, DeviceState, IrqLine, StateError};

/// An interrupt line that remembers its level, for tests to inspect.
#[derive(Clone, Debug, Default)]
pub(crate) struct TestIrq(Arc<AtomicBool>);

impl TestIrq {
    /// Whether the line is asserted.
    pub(crate) fn level(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl IrqLine for TestIrq {
    fn set_level(&self, high: bool) {
        self.0.store(high, Ordering::SeqCst);
    }
}

/// Output a device writes (a UART's, a debug console's), kept for tests to read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sink(pub(crate) Arc<std::sync::Mutex<Vec<u8>>>);

impl Sink {
    /// Everything written so far.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("sink poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks that `device` refuses a state saved by another model and a state of its
/// own model with another layout version, and that a refused restore changes
/// nothing.
pub(crate) fn assert_refuses_foreign_states(device: &mut dyn Device) {
    let before = device.save_state();
    let other_model = DeviceState::encode("no-such-device", before.version, &before.data);
    let other_version = DeviceState {
        version: before.version + 1,
        ..before.clone()
    };
    for state in [other_model, other_version] {
        assert!(
            matches!(
                device.restore_state(&state),
                Err(StateError::Mismatch { .. })
            ),
            "{} restored from {} version {}",
            before.kind,
            state.kind,
            state.version
        );
    }
    assert_eq!(
        device.save_state(),
        before,
        "a refused restore changed the device"
    );
}
