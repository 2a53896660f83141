//! The time-stamp counter: instructions executed on a bare CPU (runs repeat),
//! the machine's clock once one is connected, and WRMSR's offset either way.

use std::sync::Arc;
use std::time::Duration;

use cpu_x86::{Cpu, CpuModel, CpuState};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl, VirtualClock};

/// rdtsc; mov ebx, eax; rdtsc (64-bit code at 0x1000).
const TWO_READS: [u8; 6] = [0x0f, 0x31, 0x89, 0xc3, 0x0f, 0x31];

fn cpu() -> Cpu {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, &TWO_READS);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    cpu.state = CpuState::flat(64);
    cpu.state.rip = 0x1000;
    cpu
}

#[test]
fn a_bare_cpu_counts_instructions() {
    let mut c = cpu();
    c.run(3);
    let (first, second) = (c.state.gpr[3], c.state.gpr[0] & 0xffff_ffff);
    assert_eq!(second - first, 2);
}

#[test]
fn a_connected_clock_drives_the_counter_from_where_it_was() {
    let mut c = cpu();
    c.write_msr(0x10, 1_000_000).unwrap();
    let clock = Arc::new(VirtualClock::host(1_000_000_000));
    c.connect_time_stamp_clock(clock);
    let before = c.tsc();
    assert!(
        (1_000_000..1_000_000 + 50_000_000).contains(&before),
        "{before}"
    );
    std::thread::sleep(Duration::from_millis(20));
    let after = c.tsc();
    assert!(after - before >= 20_000_000, "{before} -> {after}");
    // WRMSR moves it, and it runs on from there.
    c.write_msr(0x10, 5).unwrap();
    assert!(c.tsc() >= 5 && c.tsc() < 50_000_000);
}
