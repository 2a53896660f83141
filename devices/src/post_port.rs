//! The POST-code port (0x80 on a PC): firmware and test programs write their
//! progress there; the last code written is what a diagnostic card would show.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use emu_core::{Device, DeviceState, PioDevice, StateError};
use serde::{Deserialize, Serialize};

/// Model name in saved states.
const KIND: &str = "post-port";
/// Layout version of the saved [`PostState`].
const VERSION: u32 = 1;

/// The last code written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostState {
    /// The code (0 until something is written).
    pub code: u32,
}

/// The port. The host reads the last code through a shared handle.
#[derive(Debug, Default)]
pub struct PostPort {
    last: Arc<AtomicU32>,
}

impl PostPort {
    /// A port whose last code `last` shows.
    pub fn new(last: Arc<AtomicU32>) -> PostPort {
        PostPort { last }
    }
}

impl Device for PostPort {
    fn reset(&mut self) {
        self.last.store(0, Ordering::Relaxed);
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(
            KIND,
            VERSION,
            &PostState {
                code: self.last.load(Ordering::Relaxed),
            },
        )
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let PostState { code } = state.decode(KIND, VERSION)?;
        self.last.store(code, Ordering::Relaxed);
        Ok(())
    }
}

impl PioDevice for PostPort {
    fn read(&mut self, _offset: u16, _size: u8) -> u32 {
        self.last.load(Ordering::Relaxed)
    }

    fn write(&mut self, _offset: u16, _size: u8, value: u32) {
        self.last.store(value, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;

    #[test]
    fn keeps_the_last_code_through_save_and_restore() {
        let last = Arc::new(AtomicU32::new(0));
        let mut port = PostPort::new(last.clone());
        port.write(0, 1, 0x42);
        assert_eq!(last.load(Ordering::Relaxed), 0x42);
        let saved = port.save_state();
        let mut other = PostPort::default();
        other.restore_state(&saved).unwrap();
        assert_eq!(other.read(0, 1), 0x42);
        port.reset();
        assert_eq!(port.read(0, 1), 0);
        assert_refuses_foreign_states(&mut other);
    }
}
