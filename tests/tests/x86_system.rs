//! System-level x86 guest programs (`tests/guest/x86/*.asm`): protected mode,
//! paging, privilege levels, gates, long mode. The recorded-silicon and
//! host-CPU oracles cannot reach these, so each program checks itself and
//! reports through QEMU's isa-debug-exit port; each must pass on QEMU's PC
//! (the reference) and on the interpreter in the x86 test machine.

use std::time::Duration;

use cpu_x86::CpuModel;
use tests::x86_machine::{build_x86_rom, run_x86_rom, run_x86_rom_on_qemu};

/// isa-debug-exit's status for a written 0.
const PASS: i32 = 1;

fn check(name: &str) {
    let rom_path = build_x86_rom(name);
    let rom = std::fs::read(&rom_path).expect("read the ROM image");
    let qemu = run_x86_rom_on_qemu(&rom_path, Duration::from_secs(30));
    assert_eq!(
        qemu, PASS,
        "{name} fails on QEMU (status {qemu}): the test itself is wrong"
    );
    let outcome = run_x86_rom(&rom, CpuModel::MAX, 50_000_000);
    println!("{name}: {outcome:?}");
    assert_eq!(
        outcome.exit,
        Some(PASS),
        "{name} fails on Turing: {outcome:?} (the exit status is (code << 1) | 1)"
    );
}

#[test]
fn protected_mode_gates_and_privilege_levels() {
    check("protected");
}

#[test]
fn paging_faults_large_pages_and_the_tlb() {
    check("paging");
}

#[test]
fn long_mode_no_execute_and_fast_system_calls() {
    check("long_mode");
}

#[test]
fn single_steps_and_debug_register_breakpoints() {
    check("debug");
}

#[test]
fn hardware_task_switches() {
    check("tasks");
}

#[test]
fn virtual_8086_mode() {
    check("v86");
}

#[test]
fn x87_exceptions_environment_and_state_saving() {
    check("x87");
}
