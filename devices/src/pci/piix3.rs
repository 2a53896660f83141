//! The PIIX3 PCI-to-ISA bridge (function 0 of QEMU's `pc` slot 1): its IDs,
//! the multi-function header (IDE and power management follow as functions
//! 1 and 3), and the PIRQ route control registers (0x60–0x63) through which
//! firmware steers PCI interrupt lines PIRQA–PIRQD onto ISA IRQs. A bridge
//! made with [`Piix3::with_router`] keeps a [`PirqRouter`] up to date, which
//! carries the PCI host's lines to the i8259 inputs they are steered to.

use std::sync::{Arc, Mutex};

use emu_core::IrqLine;
use emu_core::sync::LockRecover;

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

/// PCI interrupt lines PIRQA–PIRQD.
pub const PIRQS: usize = 4;
/// ISA interrupt lines the router drives.
pub const ISA_IRQS: usize = 16;

#[derive(Debug, Default)]
struct RouterState {
    routes: [Option<u8>; PIRQS],
    levels: [bool; PIRQS],
    /// The level each ISA line was last driven to by the router.
    driven: [bool; ISA_IRQS],
}

/// Carries PIRQA–PIRQD to the ISA IRQs the PIIX3's route registers name: an
/// ISA line is high while any PIRQ routed to it is (PCI lines are shared and
/// level-triggered), as QEMU's PIIX3 drives its PIC inputs.
pub struct PirqRouter {
    state: Mutex<RouterState>,
    isa: Vec<Arc<dyn IrqLine>>,
}

impl std::fmt::Debug for PirqRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PirqRouter")
            .field("state", &*self.state.lock_recover())
            .finish_non_exhaustive()
    }
}

impl PirqRouter {
    /// A router driving `isa` (ISA IRQ 0 first; missing ones are not driven),
    /// every route disabled.
    pub fn new(isa: Vec<Arc<dyn IrqLine>>) -> Arc<PirqRouter> {
        Arc::new(PirqRouter {
            state: Mutex::new(RouterState::default()),
            isa,
        })
    }

    /// The input for PIRQ `pirq` (0 = PIRQA), for the PCI host.
    pub fn pirq_line(self: &Arc<Self>, pirq: usize) -> Box<dyn IrqLine> {
        Box::new(PirqLine {
            router: self.clone(),
            pirq: pirq % PIRQS,
        })
    }

    fn set_routes(&self, routes: [Option<u8>; PIRQS]) {
        let mut state = self.state.lock_recover();
        state.routes = routes;
        self.drive(&mut state);
    }

    fn set_level(&self, pirq: usize, high: bool) {
        let mut state = self.state.lock_recover();
        state.levels[pirq] = high;
        self.drive(&mut state);
    }

    /// Drives each ISA line that changed to the OR of the PIRQs routed to it.
    fn drive(&self, state: &mut RouterState) {
        let mut wanted = [false; ISA_IRQS];
        for (route, &level) in state.routes.iter().zip(&state.levels) {
            if let Some(irq) = route {
                wanted[usize::from(*irq)] |= level;
            }
        }
        for (irq, &level) in wanted.iter().enumerate() {
            if state.driven[irq] != level {
                state.driven[irq] = level;
                if let Some(line) = self.isa.get(irq) {
                    line.set_level(level);
                }
            }
        }
    }
}

struct PirqLine {
    router: Arc<PirqRouter>,
    pirq: usize,
}

impl IrqLine for PirqLine {
    fn set_level(&self, high: bool) {
        self.router.set_level(self.pirq, high);
    }
}

/// The PIIX3 ISA bridge function.
#[derive(Debug)]
pub struct Piix3 {
    config: PciConfigSpace,
    router: Option<Arc<PirqRouter>>,
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
        Piix3 {
            config,
            router: None,
        }
    }

    /// The bridge keeping `router`'s routes as its registers say.
    pub fn with_router(router: Arc<PirqRouter>) -> Piix3 {
        let mut bridge = Piix3::new();
        bridge.router = Some(router);
        bridge.apply_routes();
        bridge
    }

    fn apply_routes(&mut self) {
        if let Some(router) = &self.router {
            router.set_routes(std::array::from_fn(|pirq| self.pirq_route(pirq)));
        }
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

super::config_only_function!(Piix3, KIND, VERSION, Piix3::apply_routes);

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

    #[test]
    fn the_router_drives_the_isa_line_each_pirq_is_steered_to() {
        use std::sync::atomic::{AtomicBool, Ordering};
        #[derive(Default)]
        struct Level(AtomicBool);
        impl IrqLine for Level {
            fn set_level(&self, high: bool) {
                self.0.store(high, Ordering::SeqCst);
            }
        }
        let isa: Vec<Arc<Level>> = (0..ISA_IRQS).map(|_| Arc::default()).collect();
        let router = PirqRouter::new(isa.iter().map(|l| l.clone() as Arc<dyn IrqLine>).collect());
        let high = |irq: usize| isa[irq].0.load(Ordering::SeqCst);
        let mut b = Piix3::with_router(router.clone());
        let (a, bline) = (router.pirq_line(0), router.pirq_line(1));
        // Unrouted: nothing moves.
        a.set_level(true);
        assert!((0..ISA_IRQS).all(|irq| !high(irq)));
        // PIRQA and PIRQB both to IRQ 10: routing brings the waiting level.
        b.config_write(PIRQ_ROUTE_OFFSET, 2, 0x0a0a);
        assert!(high(10));
        bline.set_level(true);
        a.set_level(false);
        assert!(high(10), "PIRQB still holds the shared line");
        bline.set_level(false);
        assert!(!high(10));
        // Moving a route while its line is high moves the interrupt.
        a.set_level(true);
        b.config_write(PIRQ_ROUTE_OFFSET, 1, 0x0b);
        assert!(!high(10) && high(11));
        b.reset();
        assert!(!high(11));
    }
}
