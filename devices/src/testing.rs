//! Helpers for the device unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use emu_core::IrqLine;

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
