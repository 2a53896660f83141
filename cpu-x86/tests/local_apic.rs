//! The CPU's side of its local APIC: the register page at IA32_APIC_BASE
//! (this CPU's only, gone when the base MSR disables the APIC), CPUID's APIC
//! ID and feature bits, the TSC-deadline MSR, and INIT and start-up IPIs
//! that park and start an application processor.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cpu_x86::{Cpu, CpuModel, RunExit, SegReg};
use emu_core::{
    Bus, CpuSignal, GuestPhysAddr, GuestRam, InterruptAcknowledge, LocalApicPort, RunControl,
};

/// An APIC that records what the CPU does to it.
#[derive(Default)]
struct RecordingApic {
    writes: Mutex<Vec<(u32, u32)>>,
    signals: Mutex<VecDeque<CpuSignal>>,
    enabled: Mutex<Vec<bool>>,
    deadline: Mutex<Option<u64>>,
}

impl InterruptAcknowledge for RecordingApic {
    fn interrupt_pending(&self) -> bool {
        false
    }
    fn acknowledge(&self) -> Option<u8> {
        None
    }
}

impl LocalApicPort for RecordingApic {
    fn read_register(&self, offset: u32) -> u32 {
        0x1234_0000 | offset
    }
    fn write_register(&self, offset: u32, value: u32) {
        self.writes.lock().unwrap().push((offset, value));
    }
    fn signal_pending(&self) -> bool {
        !self.signals.lock().unwrap().is_empty()
    }
    fn take_signal(&self) -> Option<CpuSignal> {
        self.signals.lock().unwrap().pop_front()
    }
    fn set_hardware_enabled(&self, enabled: bool) {
        self.enabled.lock().unwrap().push(enabled);
    }
    fn set_tsc_deadline(&self, clock_deadline: Option<u64>) {
        *self.deadline.lock().unwrap() = clock_deadline;
    }
    fn tsc_deadline(&self) -> Option<u64> {
        *self.deadline.lock().unwrap()
    }
}

/// A CPU with 1 MiB of RAM holding `code` at 0x1000 (and INC AX; HLT at
/// 0x9A000), in real mode at 0x1000, and an APIC with ID `id`.
fn machine(code: &[u8], id: u8, bootstrap: bool) -> (Cpu, Arc<RecordingApic>) {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, code);
    ram.write_bytes(0x9a000, &[0x40, 0xf4]);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    let apic = Arc::new(RecordingApic::default());
    cpu.connect_local_apic(apic.clone(), id, bootstrap);
    cpu.state.load_real_segment(SegReg::Cs, 0);
    cpu.state.load_real_segment(SegReg::Ss, 0);
    cpu.state.gpr[4] = 0x8000;
    cpu.state.rip = 0x1000;
    (cpu, apic)
}

#[test]
fn the_apic_page_is_the_cpus_own_while_the_base_msr_enables_it() {
    // MOV EBX, [0x30]; MOV [0xB0], EAX; MOV [0xB0], AX;
    // WRMSR IA32_APIC_BASE = 0xFEE00100 (enable bit clear); MOV ESI, [0x30]; HLT
    let code = [
        0x66, 0x8b, 0x1e, 0x30, 0x00, 0x66, 0x89, 0x06, 0xb0, 0x00, 0x89, 0x06, 0xb0, 0x00, 0x66,
        0xb9, 0x1b, 0x00, 0x00, 0x00, 0x66, 0xb8, 0x00, 0x01, 0xe0, 0xfe, 0x66, 0x31, 0xd2, 0x0f,
        0x30, 0x66, 0x8b, 0x36, 0x30, 0x00, 0xf4,
    ];
    let (mut cpu, apic) = machine(&code, 0, true);
    // DS reaches the APIC page (a base real mode keeps after protected mode).
    cpu.state.segs[SegReg::Ds as usize].base = 0xfee0_0000;
    cpu.state.gpr[0] = 0xdead_beef;
    assert_eq!(cpu.run(20), RunExit::Halted);
    assert_eq!(cpu.state.gpr[3], 0x1234_0030);
    // Only the whole dword write counts.
    assert_eq!(*apic.writes.lock().unwrap(), [(0xb0, 0xdead_beef)]);
    // With the enable bit clear the page is the bus's again: nothing there.
    assert_eq!(*apic.enabled.lock().unwrap(), [false]);
    assert_eq!(cpu.state.gpr[6], 0xffff_ffff);
}

#[test]
fn cpuid_names_the_apic_and_its_id() {
    // CPUID; HLT
    let (mut cpu, _) = machine(&[0x0f, 0xa2, 0xf4], 3, true);
    cpu.state.gpr[0] = 1;
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert_eq!(cpu.state.gpr[3] >> 24, 3, "initial APIC ID in EBX");
    assert_ne!(cpu.state.gpr[2] & (1 << 9), 0, "APIC in EDX");
    assert_ne!(cpu.state.gpr[1] & (1 << 24), 0, "TSC deadline in ECX");
    // The bootstrap flag in the base MSR.
    assert_eq!(cpu.read_msr(0x1b).unwrap(), 0xfee0_0900);
}

#[test]
fn the_tsc_deadline_msr_arms_the_apic_timer_in_clock_ticks() {
    let (mut cpu, apic) = machine(&[0xf4], 0, true);
    cpu.write_msr(0x10, 1000).unwrap();
    let tsc = cpu.tsc();
    cpu.write_msr(0x6e0, tsc + 500).unwrap();
    let armed = apic.tsc_deadline().expect("armed");
    // The clock (here instructions) is behind the TSC by its offset.
    assert_eq!(armed + (tsc - cpu.executed()), tsc + 500);
    assert_eq!(cpu.read_msr(0x6e0).unwrap(), tsc + 500);
    cpu.write_msr(0x6e0, 0).unwrap();
    assert_eq!(apic.tsc_deadline(), None);
    assert_eq!(cpu.read_msr(0x6e0).unwrap(), 0);
}

#[test]
fn an_application_processor_waits_for_init_and_startup() {
    let (mut cpu, apic) = machine(&[0xf4], 1, false);
    assert!(cpu.waiting_for_startup());
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert_eq!(cpu.executed(), 0);
    assert_eq!(cpu.read_msr(0x1b).unwrap(), 0xfee0_0800, "no BSP flag");
    apic.signals
        .lock()
        .unwrap()
        .extend([CpuSignal::Init, CpuSignal::Startup { vector: 0x9a }]);
    assert!(cpu.interrupt_deliverable());
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert!(!cpu.waiting_for_startup());
    assert_eq!(cpu.state.seg(SegReg::Cs).selector, 0x9a00);
    assert_eq!(cpu.state.gpr[0] & 0xffff, 1);
    // A second start-up IPI to a running CPU changes nothing.
    apic.signals
        .lock()
        .unwrap()
        .push_back(CpuSignal::Startup { vector: 0x10 });
    cpu.run(10);
    assert_eq!(cpu.state.seg(SegReg::Cs).selector, 0x9a00);
    // INIT parks it again.
    apic.signals.lock().unwrap().push_back(CpuSignal::Init);
    assert_eq!(cpu.run(10), RunExit::Halted);
    assert!(cpu.waiting_for_startup());
}
