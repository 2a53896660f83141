use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use emu_core::{
    CpuSignal, InterruptAcknowledge, IrqLine, LocalApicPort, MmioDevice, MsiMessage, MsiTarget,
    RunControl, VirtualClock,
};

use super::local::reg;
use super::*;

/// An i8259 stand-in: one request with a fixed vector.
#[derive(Default)]
struct FakePic {
    requesting: AtomicBool,
    vector: AtomicU8,
}

impl InterruptAcknowledge for FakePic {
    fn interrupt_pending(&self) -> bool {
        self.requesting.load(Ordering::SeqCst)
    }
    fn acknowledge(&self) -> Option<u8> {
        self.requesting
            .swap(false, Ordering::SeqCst)
            .then(|| self.vector.load(Ordering::SeqCst))
    }
}

struct Board {
    bus: Arc<ApicBus>,
    io_apic: Arc<IoApic>,
    pic: Arc<FakePic>,
    clock: Arc<VirtualClock>,
}

fn board(cpus: usize) -> Board {
    let pic = Arc::new(FakePic::default());
    // Counted in instructions, so the tests move time themselves.
    let clock = Arc::new(VirtualClock::instruction_counted(1_000_000_000, 1));
    let bus = ApicBus::new(
        cpus,
        Some(pic.clone() as Arc<dyn InterruptAcknowledge>),
        clock.clone(),
        Arc::new(RunControl::new()),
    );
    let io_apic = IoApic::new(bus.clone());
    Board {
        bus,
        io_apic,
        pic,
        clock,
    }
}

/// Software-enables an APIC with spurious vector 0xff.
fn enable(apic: &LocalApic) {
    apic.write_register(reg::SVR, 0x1ff);
}

fn ioapic_write(regs: &mut IoApicRegisters, index: u32, value: u32) {
    regs.write(0, 4, u64::from(index)).unwrap();
    regs.write(0x10, 4, u64::from(value)).unwrap();
}

fn ioapic_read(regs: &mut IoApicRegisters, index: u32) -> u32 {
    regs.write(0, 4, u64::from(index)).unwrap();
    regs.read(0x10, 4).unwrap() as u32
}

#[test]
fn registers_read_back_as_an_xapic_has_them() {
    let b = board(2);
    let apic = b.bus.local_apic(1);
    assert_eq!(apic.read_register(reg::ID), 1 << 24);
    assert_eq!(apic.read_register(reg::VERSION), 0x0005_0014);
    assert_eq!(apic.read_register(reg::SVR), 0xff);
    assert_eq!(apic.read_register(reg::DFR), 0xffff_ffff);
    // All LVT entries start masked; the AP's LINT0 too.
    assert_eq!(apic.read_register(0x350), 1 << 16);
    assert_eq!(b.bus.local_apic(0).read_register(0x350), 0x700);
    apic.write_register(reg::TPR, 0x1234);
    assert_eq!(apic.read_register(reg::TPR), 0x34);
    apic.write_register(reg::LDR, 0x0300_00ff);
    assert_eq!(apic.read_register(reg::LDR), 0x0300_0000);
    // While software-disabled, LVT writes stay masked.
    apic.write_register(reg::LVT_TIMER, 0x30);
    assert_eq!(apic.read_register(reg::LVT_TIMER), 0x1_0030);
    enable(&apic);
    apic.write_register(reg::LVT_TIMER, 0x30);
    assert_eq!(apic.read_register(reg::LVT_TIMER), 0x30);
    // A register that does not exist: the error is latched, shown after
    // the next ESR write.
    apic.read_register(0x3f0);
    assert_eq!(apic.read_register(reg::ESR), 0);
    apic.write_register(reg::ESR, 0);
    assert_eq!(apic.read_register(reg::ESR), 1 << 7);
}

#[test]
fn fixed_ipis_are_taken_by_priority_and_ended_by_eoi() {
    let b = board(2);
    let (bsp, ap) = (b.bus.local_apic(0), b.bus.local_apic(1));
    enable(&bsp);
    enable(&ap);
    // Two IPIs from the BSP to APIC 1, physical destination.
    for vector in [0x41u32, 0x62] {
        bsp.write_register(reg::ICR_HIGH, 1 << 24);
        bsp.write_register(reg::ICR_LOW, vector);
    }
    assert!(!bsp.interrupt_pending());
    assert!(ap.interrupt_pending());
    assert_eq!(ap.read_register(reg::IRR + 0x20), 1 << 1);
    assert_eq!(ap.read_register(reg::IRR + 0x30), 1 << 2);
    // The higher class first; while it is in service the lower waits.
    assert_eq!(ap.acknowledge(), Some(0x62));
    assert_eq!(ap.read_register(reg::PPR), 0x60);
    assert!(!ap.interrupt_pending());
    ap.write_register(reg::EOI, 0);
    assert!(ap.interrupt_pending());
    // A task priority at the vector's class holds it back too.
    ap.write_register(reg::TPR, 0x40);
    assert!(!ap.interrupt_pending());
    ap.write_register(reg::TPR, 0x30);
    assert_eq!(ap.acknowledge(), Some(0x41));
    ap.write_register(reg::EOI, 0);
    assert_eq!(ap.acknowledge(), None);
}

#[test]
fn shorthands_and_logical_destinations_pick_their_targets() {
    let b = board(3);
    let apics: Vec<_> = (0..3).map(|i| b.bus.local_apic(i)).collect();
    for (i, apic) in apics.iter().enumerate() {
        enable(apic);
        apic.write_register(reg::LDR, 1 << (24 + i));
    }
    // All but self, from CPU 1.
    apics[1].write_register(reg::ICR_LOW, (3 << 18) | 0x50);
    let pending: Vec<bool> = apics.iter().map(|a| a.interrupt_pending()).collect();
    assert_eq!(pending, [true, false, true]);
    for apic in &apics {
        while apic.acknowledge().is_some() {
            apic.write_register(reg::EOI, 0);
        }
    }
    // Logical, flat model: mask 0b110 is CPUs 1 and 2.
    apics[0].write_register(reg::ICR_HIGH, 0b110 << 24);
    apics[0].write_register(reg::ICR_LOW, (1 << 11) | 0x51);
    let pending: Vec<bool> = apics.iter().map(|a| a.interrupt_pending()).collect();
    assert_eq!(pending, [false, true, true]);
    // Self.
    apics[0].write_register(reg::ICR_LOW, (1 << 18) | 0x52);
    assert_eq!(apics[0].acknowledge(), Some(0x52));
    // An illegal vector is refused and reported by the sender.
    apics[0].write_register(reg::ICR_LOW, (1 << 18) | 0x05);
    apics[0].write_register(reg::ESR, 0);
    assert_eq!(apics[0].read_register(reg::ESR), 1 << 5);
}

#[test]
fn init_and_startup_ipis_reach_the_target_cpu() {
    let b = board(2);
    let (bsp, ap) = (b.bus.local_apic(0), b.bus.local_apic(1));
    enable(&bsp);
    enable(&ap);
    ap.write_register(reg::TPR, 0x20);
    bsp.write_register(reg::ICR_HIGH, 1 << 24);
    // INIT assert, then the de-assert that only syncs arbitration.
    bsp.write_register(reg::ICR_LOW, 0x0000_c500);
    bsp.write_register(reg::ICR_LOW, 0x0000_8500);
    // Start-up at page 0x9a.
    bsp.write_register(reg::ICR_LOW, 0x0000_069a);
    assert!(ap.signal_pending());
    assert!(!bsp.signal_pending());
    assert_eq!(ap.take_signal(), Some(CpuSignal::Init));
    assert_eq!(ap.take_signal(), Some(CpuSignal::Startup { vector: 0x9a }));
    assert_eq!(ap.take_signal(), None);
    assert!(!ap.signal_pending());
    // INIT put the APIC back to its reset state, ID kept.
    assert_eq!(ap.read_register(reg::TPR), 0);
    assert_eq!(ap.read_register(reg::SVR), 0xff);
    assert_eq!(ap.read_register(reg::ID), 1 << 24);
    // An NMI IPI.
    bsp.write_register(reg::ICR_LOW, 0x0000_0400);
    assert_eq!(ap.take_signal(), Some(CpuSignal::Nmi));
}

#[test]
fn the_i8259_reaches_the_bsp_through_lint0_only() {
    let b = board(2);
    let (bsp, ap) = (b.bus.local_apic(0), b.bus.local_apic(1));
    b.pic.vector.store(0x08, Ordering::SeqCst);
    b.pic.requesting.store(true, Ordering::SeqCst);
    // Virtual wire from reset: the BSP sees it even software-disabled.
    assert!(bsp.interrupt_pending());
    assert!(!ap.interrupt_pending());
    assert_eq!(bsp.acknowledge(), Some(0x08));
    // LINT0 masked: the i8259 is cut off.
    enable(&bsp);
    bsp.write_register(0x350, 1 << 16);
    b.pic.requesting.store(true, Ordering::SeqCst);
    assert!(!bsp.interrupt_pending());
    // With the APIC off (IA32_APIC_BASE), the i8259 goes straight through.
    bsp.set_hardware_enabled(false);
    assert!(bsp.interrupt_pending());
    assert_eq!(bsp.acknowledge(), Some(0x08));
}

#[test]
fn the_timer_counts_down_once_or_periodically() {
    let b = board(1);
    let apic = b.bus.local_apic(0);
    let mut window = b.bus.msi_window();
    enable(&apic);
    // Divide by 4, one-shot, 1000 counts: due after 4000 clock ticks.
    apic.write_register(reg::TIMER_DIVIDE, 0b0001);
    apic.write_register(reg::LVT_TIMER, 0x40);
    let start = b.clock.now();
    apic.write_register(reg::TIMER_INITIAL, 1000);
    assert_eq!(window.tick(start), Some(start + 4000));
    b.clock.retire(2000);
    assert_eq!(apic.read_register(reg::TIMER_CURRENT), 500);
    b.clock.retire(2000);
    assert_eq!(window.tick(b.clock.now()), None);
    assert_eq!(apic.acknowledge(), Some(0x40));
    apic.write_register(reg::EOI, 0);
    assert_eq!(apic.read_register(reg::TIMER_CURRENT), 0);
    // Periodic, divide by 1: fires every 100 ticks, the count reloads.
    apic.write_register(reg::TIMER_DIVIDE, 0b1011);
    apic.write_register(reg::LVT_TIMER, (1 << 17) | 0x41);
    let start = b.clock.now();
    apic.write_register(reg::TIMER_INITIAL, 100);
    b.clock.retire(130);
    assert_eq!(window.tick(b.clock.now()), Some(start + 200));
    assert_eq!(apic.read_register(reg::TIMER_CURRENT), 70);
    assert_eq!(apic.acknowledge(), Some(0x41));
    // Masked: the timer runs but asks for nothing.
    apic.write_register(reg::EOI, 0);
    apic.write_register(reg::LVT_TIMER, (1 << 17) | (1 << 16) | 0x41);
    b.clock.retire(100);
    window.tick(b.clock.now());
    assert!(!apic.interrupt_pending());
}

#[test]
fn the_tsc_deadline_timer_fires_once_at_its_deadline() {
    let b = board(1);
    let apic = b.bus.local_apic(0);
    let mut window = b.bus.msi_window();
    enable(&apic);
    // Ignored outside TSC-deadline mode.
    apic.set_tsc_deadline(Some(50));
    assert_eq!(apic.tsc_deadline(), None);
    apic.write_register(reg::LVT_TIMER, (2 << 17) | 0x42);
    let due = b.clock.now() + 500;
    apic.set_tsc_deadline(Some(due));
    assert_eq!(apic.tsc_deadline(), Some(due));
    assert_eq!(window.tick(b.clock.now()), Some(due));
    b.clock.retire(500);
    assert_eq!(window.tick(b.clock.now()), None);
    assert_eq!(apic.tsc_deadline(), None);
    assert_eq!(apic.acknowledge(), Some(0x42));
    // A deadline already past fires at once.
    apic.set_tsc_deadline(Some(1));
    assert!(apic.read_register(reg::IRR + 0x20) & (1 << 2) != 0);
}

#[test]
fn io_apic_routes_edge_and_level_pins_with_eoi_broadcast() {
    let b = board(2);
    let ap = b.bus.local_apic(1);
    enable(&ap);
    let mut regs = b.io_apic.registers();
    assert_eq!(ioapic_read(&mut regs, 1), 0x0017_0020);
    assert_eq!(ioapic_read(&mut regs, 0x10), 1 << 16);
    // Pin 2, edge, vector 0x30 to APIC 1; pin 11, level, vector 0x31.
    ioapic_write(&mut regs, 0x15, 1 << 24);
    ioapic_write(&mut regs, 0x14, 0x30);
    ioapic_write(&mut regs, 0x27, 1 << 24);
    ioapic_write(&mut regs, 0x26, (1 << 15) | 0x31);
    let pin2 = b.io_apic.input(2);
    let pin11 = b.io_apic.input(11);
    pin2.pulse();
    assert_eq!(ap.acknowledge(), Some(0x30));
    ap.write_register(reg::EOI, 0);
    pin11.set_level(true);
    assert_eq!(ioapic_read(&mut regs, 0x26) & (1 << 14), 1 << 14);
    assert_eq!(ap.acknowledge(), Some(0x31));
    // Remote IRR holds the line off until the EOI; the line still high
    // then sends again.
    assert!(!ap.interrupt_pending());
    ap.write_register(reg::EOI, 0);
    assert_eq!(ap.acknowledge(), Some(0x31));
    pin11.set_level(false);
    ap.write_register(reg::EOI, 0);
    assert_eq!(ioapic_read(&mut regs, 0x26) & (1 << 14), 0);
    assert!(!ap.interrupt_pending());
    // Masked pins send nothing; unmasking a held level line sends it.
    ioapic_write(&mut regs, 0x26, (1 << 16) | (1 << 15) | 0x31);
    pin11.set_level(true);
    assert!(!ap.interrupt_pending());
    ioapic_write(&mut regs, 0x26, (1 << 15) | 0x31);
    assert_eq!(ap.acknowledge(), Some(0x31));
}

#[test]
fn msi_writes_become_interrupts_at_the_named_apic() {
    let b = board(2);
    let ap = b.bus.local_apic(1);
    enable(&ap);
    assert!(MsiTarget::deliver(
        &*b.bus,
        MsiMessage {
            address: LOCAL_APIC_BASE | (1 << 12),
            data: 0x45,
        }
    ));
    assert_eq!(ap.acknowledge(), Some(0x45));
    ap.write_register(reg::EOI, 0);
    // The window on the bus does the same for a device's write.
    let mut window = b.bus.msi_window();
    window.write(1 << 12, 4, 0x46).unwrap();
    assert_eq!(ap.acknowledge(), Some(0x46));
    assert!(!MsiTarget::deliver(
        &*b.bus,
        MsiMessage {
            address: 0xfed0_0000,
            data: 0x47,
        }
    ));
}

#[test]
fn random_register_traffic_never_panics() {
    let (mut rng, iterations) = crate::testing::FuzzRng::from_env("APIC", 0x00a9_1c00, 20_000);
    eprintln!("seed {} (TURING_APIC_FUZZ_SEED replays it)", rng.seed());
    let mut below = |n: u64| rng.next() % n;
    let b = board(2);
    let mut regs = b.io_apic.registers();
    let mut window = b.bus.msi_window();
    for _ in 0..iterations {
        let apic = b.bus.local_apic(below(2) as usize);
        let offset = (below(0x400) as u32) & !0xf;
        match below(6) {
            0 => {
                apic.read_register(offset);
            }
            1 | 2 => apic.write_register(offset, below(1 << 32) as u32),
            3 => ioapic_write(&mut regs, below(0x40) as u32, below(1 << 32) as u32),
            4 => b.io_apic.input(below(24) as usize).set_level(below(2) == 1),
            _ => {
                b.clock.retire(below(10_000));
                window.tick(b.clock.now());
                if apic.acknowledge().is_some() {
                    apic.write_register(reg::EOI, 0);
                }
                apic.take_signal();
            }
        }
    }
}
