//! QEMU's ISA debug console (`-debugcon`, device `isa-debugcon`): every byte
//! written to its port goes to a host stream, with no handshake, so firmware
//! logs through it from the first instruction. SeaBIOS logs to port 0x402 on
//! QEMU's PC; reads return the read-back value (0xE9) by which software finds
//! the port.

use std::io::Write;

use emu_core::PioDevice;

/// The port SeaBIOS logs to on QEMU's PC.
pub const SEABIOS_PORT: u16 = 0x402;
/// What a read of the port returns, as QEMU's default `readback` property.
pub const READBACK: u8 = 0xe9;

const KIND: &str = "isa-debugcon";
const VERSION: u32 = 1;

/// The debug console: one write-only byte port.
pub struct DebugCon {
    output: Box<dyn Write + Send>,
}

impl std::fmt::Debug for DebugCon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DebugCon")
    }
}

impl DebugCon {
    /// A console writing to `output`.
    pub fn new(output: Box<dyn Write + Send>) -> DebugCon {
        DebugCon { output }
    }
}

crate::state::stateless_device!(DebugCon, KIND, VERSION);

impl PioDevice for DebugCon {
    fn read(&mut self, _offset: u16, _size: u8) -> u32 {
        u32::from(READBACK)
    }

    fn write(&mut self, _offset: u16, _size: u8, value: u32) {
        // Wider writes send their low byte, as QEMU's does; host write errors
        // (a closed pipe) must not stop the guest.
        let _ = self.output.write_all(&[value as u8]);
        let _ = self.output.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sink;

    #[test]
    fn bytes_written_reach_the_host_and_reads_give_the_readback_value() {
        let out = Sink::default();
        let mut con = DebugCon::new(Box::new(out.clone()));
        for b in b"SeaBIOS\n" {
            con.write(0, 1, u32::from(*b));
        }
        con.write(0, 2, 0x4121);
        assert_eq!(out.bytes(), b"SeaBIOS\n!");
        assert_eq!(con.read(0, 1), 0xe9);
    }
}
