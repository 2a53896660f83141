//! The PIIX3 PCI-to-ISA bridge (function 0 of QEMU's `pc` slot 1): its IDs,
//! the multi-function header (IDE and power management follow as functions
//! 1 and 3), and the PIRQ route control registers (0x60–0x63) through which
//! firmware steers PCI interrupt lines PIRQA–PIRQD onto ISA IRQs. The
//! machine reads the routing ([`Piix3::pirq_route`]) to connect the host's
//! INTx lines to the i8259 inputs.

use super::config::{PciConfigSpace, PciIds};
use super::i440fx::INTEL_VENDOR_ID;

/// The 82371SB PIIX3 ISA bridge's device ID.
pub const PIIX3_ISA_DEVICE_ID: u16 = 0x7000;
/// Where the PIRQ route control registers start (PIRQA to PIRQD).
pub const PIRQ_ROUTE_OFFSET: u16 = 0x60;
/// A route register's "routing disabled" bit.
const ROUTE_DISABLED: u8 = 0x80;
/// The header-type byte, and its multi-function bit.
const HEADER_TYPE: u16 = 0x0e;
const MULTI_FUNCTION: u8 = 0x80;

const KIND: &str = "piix3-isa";
const VERSION: u32 = 1;

/// The PIIX3 ISA bridge function.
#[derive(Debug)]
pub struct Piix3 {
    config: PciConfigSpace,
}

impl Default for Piix3 {
    fn default() -> Piix3 {
        Piix3::new()
    }
}

impl Piix3 {
    /// The bridge at power-on: 8086:7000, class 0601, multi-function, every
    /// PIRQ route disabled, as QEMU resets it.
    pub fn new() -> Piix3 {
        let mut config = PciConfigSpace::new(PciIds {
            vendor_id: INTEL_VENDOR_ID,
            device_id: PIIX3_ISA_DEVICE_ID,
            class_code: 0x06_0100,
            revision_id: 0,
            subsystem_vendor_id: super::host::QEMU_SUBSYSTEM_VENDOR_ID,
            subsystem_id: super::host::QEMU_SUBSYSTEM_ID,
        });
        config.set_initial(HEADER_TYPE, &[MULTI_FUNCTION]);
        // PIRQA-D: disabled at reset; the enable bit and the IRQ number are
        // writable (bits 4-6 are reserved).
        config.set_initial(PIRQ_ROUTE_OFFSET, &[ROUTE_DISABLED; 4]);
        config.set_writable(PIRQ_ROUTE_OFFSET, &[0x8f; 4]);
        // X-Bus chip select (0x4e) and the motherboard DMA and APIC base
        // registers firmware programs, with QEMU's reset values.
        config.set_initial(0x4e, &[0x03]);
        config.set_writable(0x4e, &[0xff]);
        config.set_initial(0x76, &[0x0c, 0x0c]);
        config.set_writable(0x76, &[0x8f, 0x8f]);
        config.set_writable(0x80, &[0x7f]);
        Piix3 { config }
    }

    /// The ISA IRQ PIRQ line `pirq` (0 = PIRQA) is routed to, if routing is
    /// enabled and names an IRQ the PIIX3 can steer to (3–7, 9–12, 14, 15).
    pub fn pirq_route(&self, pirq: usize) -> Option<u8> {
        let pirq = u16::try_from(pirq).ok().filter(|&p| p < 4)?;
        let route = self.config.get_u8(PIRQ_ROUTE_OFFSET + pirq);
        let irq = route & 0x0f;
        let steerable = matches!(irq, 3..=7 | 9..=12 | 14 | 15);
        (route & ROUTE_DISABLED == 0 && steerable).then_some(irq)
    }
}

super::config_only_function!(Piix3, KIND, VERSION);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::PciFunction;
    use emu_core::Device;

    #[test]
    fn ids_class_and_multi_function_header() {
        let mut b = Piix3::new();
        assert_eq!(b.config_read(0, 4), 0x7000_8086);
        assert_eq!(b.config_read(8, 4) >> 8, 0x06_0100);
        assert_eq!(b.config_read(HEADER_TYPE, 1), 0x80);
        // The header type is not writable.
        b.config_write(HEADER_TYPE, 1, 0);
        assert_eq!(b.config_read(HEADER_TYPE, 1), 0x80);
    }

    #[test]
    fn pirq_routes_follow_what_firmware_writes() {
        let mut b = Piix3::new();
        assert_eq!(
            (0..4).map(|p| b.pirq_route(p)).collect::<Vec<_>>(),
            [None; 4]
        );
        // SeaBIOS's piix_isa_bridge_setup: PIRQA-D to IRQ 10, 10, 11, 11.
        b.config_write(PIRQ_ROUTE_OFFSET, 4, 0x0b0b_0a0a);
        assert_eq!(
            (0..4).map(|p| b.pirq_route(p)).collect::<Vec<_>>(),
            [Some(10), Some(10), Some(11), Some(11)]
        );
        // Disabled again, or an IRQ the PIIX3 cannot steer to (2, 8, 13).
        b.config_write(PIRQ_ROUTE_OFFSET, 1, 0x8a);
        b.config_write(PIRQ_ROUTE_OFFSET + 1, 1, 0x08);
        assert_eq!(b.pirq_route(0), None);
        assert_eq!(b.pirq_route(1), None);
        assert_eq!(b.pirq_route(4), None);
        b.reset();
        assert_eq!(b.config_read(PIRQ_ROUTE_OFFSET, 4), 0x8080_8080);
    }
}
