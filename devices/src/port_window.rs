//! A register-window device in port space: the same registers at port
//! offsets instead of memory offsets (a PC's 16550 at 0x3F8 is the virt
//! board's UART on other wires).

use emu_core::{Device, DeviceState, MmioDevice, PioDevice, StateError};

/// `D`'s registers, one port each. Reads the device refuses come back as all
/// ones, as an ISA bus floats; refused writes are dropped.
#[derive(Debug)]
pub struct PortWindow<D>(pub D);

impl<D: MmioDevice> Device for PortWindow<D> {
    fn reset(&mut self) {
        self.0.reset();
    }

    fn save_state(&self) -> DeviceState {
        self.0.save_state()
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        self.0.restore_state(state)
    }
}

impl<D: MmioDevice> PioDevice for PortWindow<D> {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let ones = if size >= 4 {
            u32::MAX
        } else {
            (1 << (8 * u32::from(size))) - 1
        };
        self.0
            .read(u64::from(offset), size)
            .map_or(ones, |v| v as u32)
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        let _ = self.0.write(u64::from(offset), size, u64::from(value));
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        self.0.tick(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Uart16550;

    #[test]
    fn a_uart_answers_in_port_space() {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut port = PortWindow(Uart16550::new(Box::new(Shared(out.clone())), None));
        // Scratch register round trip, then a byte out through THR.
        port.write(7, 1, 0x5a);
        assert_eq!(port.read(7, 1), 0x5a);
        port.write(0, 1, u32::from(b'A'));
        port.tick(0);
        let _ = port.save_state();
        assert_eq!(port.read(5, 1) & 0x20, 0x20);
        port.0.reset();
        assert_eq!(port.read(7, 1), 0);
        drop(port);
        assert_eq!(out.lock().unwrap().as_slice(), b"A");
    }
}
