//! The SiFive test device ("finisher"): a register the guest writes to power off
//! with a status, or to reset. QEMU's `virt` board has it at 0x10_0000.

use std::sync::Arc;

use emu_core::{BusFault, MmioDevice, RunControl, StopReason};

use crate::state::stateless_device;

/// Size of the register window.
pub const SIZE: u64 = 0x1000;

const FAIL: u64 = 0x3333;
const PASS: u64 = 0x5555;
const RESET: u64 = 0x7777;

/// Model name in saved states.
const KIND: &str = "sifive-test";
/// Layout version of the (empty) saved state.
const VERSION: u32 = 1;

/// The finisher. It has no guest-visible state: a write acts at once on the
/// machine's run control (a host handle), and reads return 0.
#[derive(Debug)]
pub struct SifiveTest {
    control: Arc<RunControl>,
}

impl SifiveTest {
    /// A finisher that stops the machine through `control`.
    pub fn new(control: Arc<RunControl>) -> SifiveTest {
        SifiveTest { control }
    }
}

// Nothing to reset: a stop already requested is the machine's to handle.
stateless_device!(SifiveTest, KIND, VERSION);

impl MmioDevice for SifiveTest {
    fn read(&mut self, _offset: u64, _size: u8) -> Result<u64, BusFault> {
        Ok(0)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        if offset != 0 || size < 4 {
            return Ok(());
        }
        let value = value & 0xffff_ffff;
        match value & 0xffff {
            PASS => self.control.request_stop(StopReason::PowerOff(0)),
            FAIL => {
                // A failure with code 0 still has to look like a failure.
                let code = (value >> 16) as i32;
                self.control
                    .request_stop(StopReason::PowerOff(if code == 0 { 1 } else { code }));
            }
            RESET => self.control.request_stop(StopReason::Reset),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;
    use emu_core::Device;

    fn written(value: u64) -> Option<StopReason> {
        let control = Arc::new(RunControl::new());
        SifiveTest::new(control.clone()).write(0, 4, value).unwrap();
        control.stop_reason()
    }

    #[test]
    fn exit_codes() {
        assert_eq!(written(0x5555), Some(StopReason::PowerOff(0)));
        assert_eq!(written(0x3333), Some(StopReason::PowerOff(1)));
        assert_eq!(written(0x0007_3333), Some(StopReason::PowerOff(7)));
        assert_eq!(written(0x7777), Some(StopReason::Reset));
        assert_eq!(written(0x1234), None);
    }

    #[test]
    fn lifecycle_has_nothing_to_keep_but_checks_the_model() {
        let control = Arc::new(RunControl::new());
        let mut a = SifiveTest::new(control.clone());
        a.write(0, 4, 0x1234).unwrap();
        let saved = a.save_state();
        let mut b = SifiveTest::new(Arc::new(RunControl::new()));
        b.restore_state(&saved).unwrap();
        assert_eq!(b.save_state(), saved);
        assert_eq!(a.read(0, 4), b.read(0, 4));
        a.reset();
        assert_eq!(a.read(0, 4), Ok(0));
        assert_eq!(a.save_state(), saved);
        // Still a finisher after all that.
        a.write(0, 4, 0x5555).unwrap();
        assert_eq!(control.stop_reason(), Some(StopReason::PowerOff(0)));
        assert_refuses_foreign_states(&mut b);
    }
}
