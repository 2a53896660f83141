//! The ACPI registers QEMU's PIIX4 adds for hotplug, which the tables
//! SeaBIOS builds on QEMU's `pc` point at (and its DSDT reads):
//!
//! - [`GpeBlock`]: the general-purpose event block GPE0 (port 0xAFE0, 4 bytes:
//!   16 status bits, write 1 to clear, then 16 enable bits). QEMU signals
//!   hotplug through GPE 1 (PCI) and GPE 2 (CPU).
//! - [`PciHotplug`]: the PCI hotplug registers (port 0xAE00): slots that came
//!   up (`PCIU`), slots to go down (`PCID`), the eject register (`B0EJ`) and
//!   the removable-slots mask.
//! - [`CpuHotplug`]: the CPU presence bitmap (port 0xAF00, 32 bytes, a bit per
//!   CPU) the DSDT's processor objects read for `_STA` and `_MAT`.
//!
//! Nothing is hot-plugged on Turing's PC: no event is ever raised, no slot
//! comes or goes, and the bitmap holds the CPUs the machine started with.
//! The registers must still answer as QEMU's do: a port nobody answers reads
//! as all ones, which the guest's ACPI interpreter would take for pending
//! events on every GPE and for every slot asking to be ejected (Linux's
//! `acpiphp` then removes the devices in slots 3 and up).

use emu_core::{Device, DeviceState, PioDevice, StateError};
use serde::{Deserialize, Serialize};

/// Where QEMU's PIIX4 puts GPE0.
pub const GPE0_PORT: u16 = 0xafe0;
/// GPE0's length: two status bytes, two enable bytes.
pub const GPE0_LEN: u32 = 4;
/// Where QEMU's PIIX4 puts the PCI hotplug registers.
pub const PCI_HOTPLUG_PORT: u16 = 0xae00;
/// Their length: up, down, eject, removable (4 bytes each), and a selector.
pub const PCI_HOTPLUG_LEN: u32 = 0x14;
/// Where QEMU's PIIX4 puts the CPU presence bitmap.
pub const CPU_HOTPLUG_PORT: u16 = 0xaf00;
/// The bitmap's length: one bit for each of up to 256 CPUs.
pub const CPU_HOTPLUG_LEN: u32 = 32;

/// Offset of the removable-slots mask in the PCI hotplug registers.
const PCI_REMOVABLE: u16 = 0x0c;
/// Slots QEMU reports removable on bus 0: all but the host bridge (0), the
/// PIIX (1) and the VGA (2).
const REMOVABLE_SLOTS: u32 = !0b111;

const GPE_KIND: &str = "acpi-gpe0";
const PCI_KIND: &str = "acpi-pci-hotplug";
const CPU_KIND: &str = "acpi-cpu-hotplug";
const VERSION: u32 = 1;

/// GPE0's registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct GpeState {
    status: u16,
    enable: u16,
}

/// The GPE0 block: status bits the guest clears by writing ones, enable bits
/// it sets. No source raises an event here.
#[derive(Debug, Default)]
pub struct GpeBlock {
    state: GpeState,
}

impl GpeBlock {
    /// The block at power-on: nothing pending, nothing enabled.
    pub fn new() -> GpeBlock {
        GpeBlock::default()
    }

    fn byte(&self, offset: u16) -> u8 {
        let [status_low, status_high] = self.state.status.to_le_bytes();
        let [enable_low, enable_high] = self.state.enable.to_le_bytes();
        match offset {
            0 => status_low,
            1 => status_high,
            2 => enable_low,
            3 => enable_high,
            _ => 0,
        }
    }

    fn write_byte(&mut self, offset: u16, value: u8) {
        let value = u16::from(value);
        match offset {
            0 => self.state.status &= !value,
            1 => self.state.status &= !(value << 8),
            2 => self.state.enable = self.state.enable & 0xff00 | value,
            3 => self.state.enable = self.state.enable & 0x00ff | value << 8,
            _ => {}
        }
    }
}

impl Device for GpeBlock {
    fn reset(&mut self) {
        self.state = GpeState::default();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(GPE_KIND, VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        self.state = state.decode(GPE_KIND, VERSION)?;
        Ok(())
    }
}

impl PioDevice for GpeBlock {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        (0..u16::from(size.min(4))).fold(0, |value, i| {
            value | u32::from(self.byte(offset + i)) << (8 * i)
        })
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        for i in 0..u16::from(size.min(4)) {
            self.write_byte(offset + i, (value >> (8 * i)) as u8);
        }
    }
}

/// Reads `size` bytes at `offset` of a little-endian register file.
fn read_bytes(bytes: &[u8], offset: u16, size: u8) -> u32 {
    (0..usize::from(size.min(4))).fold(0, |value, i| {
        let byte = bytes.get(usize::from(offset) + i).copied().unwrap_or(0);
        value | u32::from(byte) << (8 * i)
    })
}

/// The PCI hotplug registers with no slot coming or going: up and down read
/// zero, ejects are ignored, and the removable mask is QEMU's.
#[derive(Debug, Default)]
pub struct PciHotplug;

crate::state::stateless_device!(PciHotplug, PCI_KIND, VERSION);

impl PioDevice for PciHotplug {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let mut registers = [0u8; PCI_HOTPLUG_LEN as usize];
        let at = usize::from(PCI_REMOVABLE);
        registers[at..at + 4].copy_from_slice(&REMOVABLE_SLOTS.to_le_bytes());
        read_bytes(&registers, offset, size)
    }

    fn write(&mut self, _offset: u16, _size: u8, _value: u32) {}
}

/// The CPU presence bitmap: the first `cpus` bits set, fixed.
#[derive(Debug)]
pub struct CpuHotplug {
    present: [u8; CPU_HOTPLUG_LEN as usize],
}

impl CpuHotplug {
    /// The bitmap of a machine with `cpus` CPUs (at most 256 count).
    pub fn new(cpus: u32) -> CpuHotplug {
        let mut present = [0u8; CPU_HOTPLUG_LEN as usize];
        for cpu in 0..cpus.min(CPU_HOTPLUG_LEN * 8) as usize {
            present[cpu / 8] |= 1 << (cpu % 8);
        }
        CpuHotplug { present }
    }
}

crate::state::stateless_device!(CpuHotplug, CPU_KIND, VERSION);

impl PioDevice for CpuHotplug {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        read_bytes(&self.present, offset, size)
    }

    fn write(&mut self, _offset: u16, _size: u8, _value: u32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpe_status_clears_by_writing_ones_and_enable_keeps_what_is_written() {
        let mut gpe = GpeBlock::new();
        assert_eq!(gpe.read(0, 4), 0, "nothing pending at power-on");
        gpe.state.status = 0x0006;
        gpe.write(2, 2, 0x0006);
        assert_eq!(gpe.read(0, 4), 0x0006_0006);
        gpe.write(0, 1, 0x02);
        assert_eq!(gpe.read(0, 2), 0x0004);
        gpe.write(0, 2, 0xffff);
        assert_eq!(gpe.read(0, 2), 0);
        assert_eq!(gpe.read(2, 2), 0x0006);
        let saved = gpe.save_state();
        gpe.reset();
        assert_eq!(gpe.read(0, 4), 0);
        gpe.restore_state(&saved).unwrap();
        assert_eq!(gpe.read(2, 1), 0x06);
    }

    #[test]
    fn no_slot_comes_or_goes_and_slots_from_3_are_removable() {
        let mut pci = PciHotplug;
        assert_eq!(pci.read(0, 4), 0, "up");
        assert_eq!(pci.read(4, 4), 0, "down");
        pci.write(8, 4, 1 << 3);
        assert_eq!(pci.read(4, 4), 0, "an eject changes nothing");
        assert_eq!(pci.read(0x0c, 4), 0xffff_fff8);
        assert_eq!(pci.read(0x13, 4), 0, "reads past the end are zero");
    }

    #[test]
    fn the_cpu_bitmap_holds_the_machines_cpus() {
        let mut cpus = CpuHotplug::new(10);
        assert_eq!(cpus.read(0, 2), 0x03ff);
        assert_eq!(cpus.read(2, 1), 0);
        assert_eq!(CpuHotplug::new(1).read(0, 4), 1);
        assert_eq!(CpuHotplug::new(1000).read(28, 4), 0xffff_ffff);
    }
}
