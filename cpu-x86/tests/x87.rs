//! x87 behaviour the other oracles cannot show: the host differential test
//! keeps every exception masked (a native trap would end its run) and QEMU
//! stores results even when an exception is unmasked. These follow the SDM.

use std::sync::Arc;

use cpu_x86::state::{X87State, cr0, fsw};
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

/// A flat 64-bit CPU with `code` at 0x1000 and its stack at 0x8000.
fn cpu_running(code: &[u8]) -> Cpu {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, code);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    cpu.state = CpuState::flat(64);
    cpu.state.cr0 |= cr0::NE;
    cpu.state.rip = 0x1000;
    cpu.state.gpr[4] = 0x8000;
    cpu
}

/// ST(i) of the CPU's x87.
fn st(x87: &X87State, i: u8) -> u128 {
    x87.regs[usize::from((x87.top + i) & 7)]
}

const ONE: u128 = 0x3fff_8000_0000_0000_0000;

#[test]
fn an_unmasked_divide_by_zero_leaves_the_operands_and_faults_at_the_next_wait() {
    // fld1; fldz; fdivp st1, st0; fnstsw ax; fwait
    let mut cpu = cpu_running(&[0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xdf, 0xe0, 0x9b]);
    cpu.state.x87.fcw = 0x037b; // ZE unmasked
    assert_eq!(cpu.run(4), RunExit::Budget);
    let x87 = &cpu.state.x87;
    assert_eq!(
        (x87.top, st(x87, 0), st(x87, 1)),
        (6, 0, ONE),
        "no store, no pop"
    );
    let status = cpu.state.gpr[0] as u16;
    assert_eq!(
        status & (fsw::ZE | fsw::ES),
        fsw::ZE | fsw::ES,
        "FNSTSW does not wait"
    );
    // FWAIT raises #MF (vector 16) with the pending error.
    cpu.run(1);
    assert_eq!(cpu.last_exception().map(|(f, _)| f.vector), Some(16));
}

#[test]
fn without_cr0_ne_a_pending_error_does_not_fault() {
    // fld1; fldz; fdivp; fwait; nop
    let mut cpu = cpu_running(&[0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0x9b, 0x90]);
    cpu.state.cr0 &= !cr0::NE;
    cpu.state.x87.fcw = 0x037b;
    assert_eq!(cpu.run(5), RunExit::Budget);
    assert_eq!(cpu.state.rip, 0x1008);
    assert_eq!(cpu.last_exception(), None);
}

#[test]
fn a_stack_overflow_pushes_the_indefinite_when_masked_and_nothing_when_not() {
    // Eight FLD1 fill the stack; the ninth overflows.
    let code = [0xd9, 0xe8].repeat(9);
    let mut cpu = cpu_running(&code);
    assert_eq!(cpu.run(9), RunExit::Budget);
    let x87 = &cpu.state.x87;
    assert_eq!(st(x87, 0), 0xffff_c000_0000_0000_0000);
    assert_eq!(
        x87.fsw & (fsw::IE | fsw::SF | fsw::C1),
        fsw::IE | fsw::SF | fsw::C1
    );
    let mut cpu = cpu_running(&code);
    cpu.state.x87.fcw = 0x037e; // IE unmasked
    assert_eq!(cpu.run(9), RunExit::Budget);
    let x87 = &cpu.state.x87;
    assert_eq!(
        (x87.top, st(x87, 0)),
        (0, ONE),
        "the overflowing push is dropped"
    );
    assert_ne!(x87.fsw & fsw::ES, 0);
}

#[test]
fn cr0_em_and_ts_raise_device_not_available() {
    for bit in [cr0::EM, cr0::TS] {
        let mut cpu = cpu_running(&[0xd9, 0xe8]);
        cpu.state.cr0 |= bit;
        cpu.run(1);
        assert_eq!(cpu.last_exception().map(|(f, _)| f.vector), Some(7));
        assert_eq!(cpu.state.x87.used, 0);
    }
    // WAIT faults only with both MP and TS.
    let mut cpu = cpu_running(&[0x9b]);
    cpu.state.cr0 = (cpu.state.cr0 | cr0::TS) & !cr0::MP;
    assert_eq!(cpu.run(1), RunExit::Budget);
    assert_eq!(cpu.last_exception(), None);
}

#[test]
fn precision_control_rounds_once_to_24_bits() {
    // fld1; fld dword [rip+8]; fdivp st1, st0 (1/3 at single precision)
    let mut code = vec![0xd9, 0xe8, 0xd9, 0x05, 0x02, 0x00, 0x00, 0x00, 0xde, 0xf9];
    code.extend_from_slice(&3.0f32.to_bits().to_le_bytes());
    let mut cpu = cpu_running(&code);
    cpu.state.x87.fcw = 0x007f; // PC = 24 bits, round to nearest
    assert_eq!(cpu.run(3), RunExit::Budget);
    let third = st(&cpu.state.x87, 0);
    // 1/3 rounded to 24 bits: 0xAAAAAB in the top of the significand.
    assert_eq!(third, 0x3ffd_aaaa_ab00_0000_0000);
}
