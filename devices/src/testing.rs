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

/// A seeded xorshift generator for the fuzz-style tests, so a failing run can
/// be replayed from its seed.
pub(crate) struct FuzzRng {
    state: u64,
    seed: u64,
}

impl FuzzRng {
    /// The generator and the iteration count for the test whose variables are
    /// `TURING_<name>_FUZZ_SEED` (default `seed`) and
    /// `TURING_<name>_FUZZ_ITERATIONS` (default `iterations`).
    pub(crate) fn from_env(name: &str, seed: u64, iterations: u64) -> (FuzzRng, u64) {
        let var = |what: &str, default: u64| {
            std::env::var(format!("TURING_{name}_FUZZ_{what}"))
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let seed = var("SEED", seed);
        // Zero is xorshift's fixed point.
        let rng = FuzzRng {
            state: seed | 1,
            seed,
        };
        (rng, var("ITERATIONS", iterations))
    }

    /// The seed it started from, for messages that let a failure be replayed.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}
