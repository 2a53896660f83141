//! QEMU's `isa-debug-exit`: a port a guest writes to end the run with an exit
//! status of `(value << 1) | 1` (so even a written 0 reads as a failure to a
//! shell, as in QEMU; test programs agree on which odd status means success).

use std::sync::Arc;

use emu_core::{PioDevice, RunControl, StopReason};

use crate::state::stateless_device;

/// Model name in saved states.
const KIND: &str = "isa-debug-exit";
/// Layout version of the (empty) saved state.
const VERSION: u32 = 1;

/// The exit port. Its only state is the machine's run control (a host handle).
#[derive(Debug)]
pub struct IsaDebugExit {
    control: Arc<RunControl>,
}

impl IsaDebugExit {
    /// An exit port that stops the machine through `control`.
    pub fn new(control: Arc<RunControl>) -> IsaDebugExit {
        IsaDebugExit { control }
    }
}

stateless_device!(IsaDebugExit, KIND, VERSION);

impl PioDevice for IsaDebugExit {
    fn read(&mut self, _offset: u16, _size: u8) -> u32 {
        0
    }

    fn write(&mut self, _offset: u16, size: u8, value: u32) {
        let value = match size {
            1 => value & 0xff,
            2 => value & 0xffff,
            _ => value,
        };
        let status = (value << 1) | 1;
        self.control
            .request_stop(StopReason::PowerOff(status as i32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;

    #[test]
    fn writes_end_the_run_with_an_odd_status() {
        let control = Arc::new(RunControl::new());
        let mut port = IsaDebugExit::new(control.clone());
        assert_eq!(control.stop_reason(), None);
        port.write(0, 1, 0x1_00);
        assert_eq!(control.stop_reason(), Some(StopReason::PowerOff(1)));
        let control = Arc::new(RunControl::new());
        IsaDebugExit::new(control.clone()).write(0, 4, 0x21);
        assert_eq!(control.stop_reason(), Some(StopReason::PowerOff(0x43)));
        assert_refuses_foreign_states(&mut port);
    }
}
