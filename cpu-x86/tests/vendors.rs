//! Where the models differ: AMD's system-call rules against Intel's, and
//! instructions of features a model lacks.

use std::sync::Arc;

use cpu_x86::state::{SegReg, efer};
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

/// A flat CPU of `model` in `bits`-bit code (32 in long mode is
/// compatibility mode), privilege 0, with `code` at 0x1000.
fn cpu(model: CpuModel, bits: u32, code: &[u8]) -> Cpu {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, code);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(model, Arc::new(bus));
    cpu.state = CpuState::flat(bits);
    for seg in cpu.state.segs.iter_mut() {
        seg.attrs &= !(3 << 5);
        seg.selector &= !3;
    }
    cpu.state.rip = 0x1000;
    cpu.state.gpr[4] = 0x8000;
    cpu.state.efer |= efer::SCE;
    cpu.state.msr.star = 0x0010_0008 << 32 | 0x2000;
    cpu.state.msr.lstar = 0x3000;
    cpu.state.msr.cstar = 0x4000;
    cpu
}

fn vector(cpu: &Cpu) -> Option<u8> {
    cpu.last_exception().map(|(f, _)| f.vector)
}

#[test]
fn syscall_in_compatibility_mode_is_amds_alone() {
    let mut intel = cpu(CpuModel::MAX, 32, &[0x0f, 0x05]);
    intel.state.efer |= efer::LME | efer::LMA;
    intel.run(1);
    assert_eq!(vector(&intel), Some(6));

    let mut amd = cpu(CpuModel::OPTERON, 32, &[0x0f, 0x05]);
    amd.state.efer |= efer::LME | efer::LMA;
    assert_eq!(amd.run(1), RunExit::Budget);
    assert_eq!(vector(&amd), None);
    assert_eq!(amd.state.rip, 0x4000, "through CSTAR");
    assert_eq!(amd.state.seg(SegReg::Cs).selector, 0x08);
}

#[test]
fn syscall_in_legacy_protected_mode_goes_to_stars_target_on_amd() {
    let mut amd = cpu(CpuModel::OPTERON, 32, &[0x0f, 0x05]);
    amd.state.efer &= !(efer::LME | efer::LMA);
    assert_eq!(amd.run(1), RunExit::Budget);
    assert_eq!(amd.state.rip, 0x2000);
    assert_eq!(
        amd.state.gpr[1] & 0xffff_ffff,
        0x1002,
        "ECX: the return address"
    );
}

#[test]
fn sysenter_in_long_mode_is_intels_alone() {
    let code = [0x0f, 0x34];
    let mut amd = cpu(CpuModel::OPTERON, 64, &code);
    amd.state.msr.sysenter_cs = 0x08;
    amd.run(1);
    assert_eq!(vector(&amd), Some(6));
    let mut intel = cpu(CpuModel::MAX, 64, &code);
    intel.state.msr.sysenter_cs = 0x08;
    intel.state.msr.sysenter_eip = 0x5000;
    assert_eq!(intel.run(1), RunExit::Budget);
    assert_eq!(intel.state.rip, 0x5000);
}

#[test]
fn lzcnt_is_bsr_without_the_feature() {
    // lzcnt eax, ecx with ECX = 1: 31 with LZCNT, 0 (BSR's index) without.
    let code = [0xf3, 0x0f, 0xbd, 0xc1];
    for (model, want) in [(CpuModel::MAX, 31), (CpuModel::DEFAULT, 0)] {
        let mut c = cpu(model, 64, &code);
        c.state.gpr[1] = 1;
        assert_eq!(c.run(1), RunExit::Budget);
        assert_eq!(c.state.gpr[0], want, "{}", model.name);
    }
}

#[test]
fn instructions_of_absent_features_raise_invalid_opcode() {
    // rdpid rax: max has it, the default does not.
    let code = [0xf3, 0x0f, 0xc7, 0xf8];
    let mut c = cpu(CpuModel::DEFAULT, 64, &code);
    c.run(1);
    assert_eq!(vector(&c), Some(6));
    let mut c = cpu(CpuModel::MAX, 64, &code);
    assert_eq!(c.run(1), RunExit::Budget);
    assert_eq!(vector(&c), None);
}

#[test]
fn tzcnt_is_bsf_and_andn_invalid_without_bmi1() {
    // tzcnt eax, ecx with ECX = 0: 32 with BMI1; BSF leaves EAX alone.
    let code = [0xf3, 0x0f, 0xbc, 0xc1];
    for (model, want) in [(CpuModel::MAX, 32), (CpuModel::DEFAULT, 0x77)] {
        let mut c = cpu(model, 64, &code);
        c.state.gpr[0] = 0x77;
        c.state.gpr[1] = 0;
        assert_eq!(c.run(1), RunExit::Budget);
        assert_eq!(c.state.gpr[0], want, "{}", model.name);
    }
    // andn eax, ebx, ecx
    let code = [0xc4, 0xe2, 0x60, 0xf2, 0xc1];
    let mut c = cpu(CpuModel::DEFAULT, 64, &code);
    c.run(1);
    assert_eq!(vector(&c), Some(6));
    let mut c = cpu(CpuModel::MAX, 64, &code);
    c.state.gpr[3] = 0b1100;
    c.state.gpr[1] = 0b1010;
    assert_eq!(c.run(1), RunExit::Budget);
    assert_eq!(c.state.gpr[0], 0b0010);
}

/// Linux's boot code finds a 486 by toggling AC and CPUID by toggling ID
/// with PUSHFD/POPFD in real mode.
#[test]
fn popfd_toggles_ac_and_id_in_real_mode() {
    // pushfd; pop eax; xor eax, 0x240000; push eax; popfd; pushfd; pop ebx
    let code = [
        0x66, 0x9c, 0x66, 0x58, 0x66, 0x35, 0x00, 0x00, 0x24, 0x00, 0x66, 0x50, 0x66, 0x9d, 0x66,
        0x9c, 0x66, 0x5b,
    ];
    let mut cpu = cpu(CpuModel::X86_64_V2, 16, &code);
    cpu.state.cr0 &= !1;
    assert!(cpu.real_mode());
    cpu.run(7);
    assert_eq!(vector(&cpu), None);
    assert_eq!(cpu.state.gpr[3] & 0x24_0000, 0x24_0000, "AC and ID set");
}
