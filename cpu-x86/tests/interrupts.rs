//! External interrupts: the CPU samples its controller between instructions,
//! honours IF and the one-instruction shadow after STI, wakes from HLT, and
//! runs the handler the vector names.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cpu_x86::state::flags::IF;
use cpu_x86::{Cpu, CpuModel, RunExit, SegReg};
use emu_core::{Bus, GuestPhysAddr, GuestRam, InterruptAcknowledge, RunControl};

/// One interrupt source with vector 0x20, raised by hand.
#[derive(Default)]
struct OneLine {
    raised: AtomicBool,
    acknowledged: AtomicU32,
}

impl InterruptAcknowledge for OneLine {
    fn interrupt_pending(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    fn acknowledge(&self) -> Option<u8> {
        self.raised.swap(false, Ordering::SeqCst).then(|| {
            self.acknowledged.fetch_add(1, Ordering::SeqCst);
            0x20
        })
    }
}

/// Real mode, code at 0x1000: STI; INC AX; INC AX; HLT; the handler for
/// vector 0x20 at 0x2000: INC BX; IRET.
fn machine() -> (Cpu, Arc<OneLine>) {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, &[0xfb, 0x40, 0x40, 0xf4, 0x40, 0xf4]);
    ram.write_bytes(0x2000, &[0x43, 0xcf]);
    // IVT entry 0x20: 0000:2000.
    ram.write_bytes(0x20 * 4, &[0x00, 0x20, 0x00, 0x00]);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    cpu.state.load_real_segment(SegReg::Cs, 0);
    cpu.state.load_real_segment(SegReg::Ss, 0);
    cpu.state.gpr[4] = 0x8000;
    cpu.state.rip = 0x1000;
    let line = Arc::new(OneLine::default());
    cpu.connect_interrupt_controller(line.clone());
    (cpu, line)
}

#[test]
fn an_interrupt_waits_for_the_instruction_after_sti() {
    let (mut cpu, line) = machine();
    line.raised.store(true, Ordering::SeqCst);
    // STI, then the shadowed INC AX: no interrupt yet.
    assert_eq!(cpu.run(2), RunExit::Budget);
    assert_eq!(cpu.state.gpr[0], 1);
    assert_eq!(line.acknowledged.load(Ordering::SeqCst), 0);
    // Now it is taken: the handler's INC BX runs.
    assert_eq!(cpu.run(1), RunExit::Budget);
    assert_eq!(cpu.state.gpr[3], 1);
    assert_eq!(line.acknowledged.load(Ordering::SeqCst), 1);
    // The frame holds FLAGS with IF, and the handler runs with IF clear.
    assert_eq!(cpu.state.rflags & IF, 0);
    // IRET, INC AX, HLT.
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert_eq!(cpu.state.gpr[0], 2);
    assert_ne!(cpu.state.rflags & IF, 0);
}

#[test]
fn an_interrupt_ends_hlt_and_masked_ones_wait() {
    let (mut cpu, line) = machine();
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert!(cpu.is_halted());
    // Still halted while nothing is raised.
    assert_eq!(cpu.run(10), RunExit::Halted);
    line.raised.store(true, Ordering::SeqCst);
    assert!(cpu.interrupt_deliverable());
    // The interrupt wakes the CPU: handler, then the INC AX after HLT, HLT.
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert_eq!(cpu.state.gpr[3], 1);
    assert_eq!(cpu.state.gpr[0], 3);
    // With IF clear, a raised line waits.
    cpu.state.rflags &= !IF;
    line.raised.store(true, Ordering::SeqCst);
    assert!(!cpu.interrupt_deliverable());
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert_eq!(line.acknowledged.load(Ordering::SeqCst), 1);
}
