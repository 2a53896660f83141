//! The features `max` adds for kernels: FSGSBASE, XSAVE for the x87 and SSE
//! state, and PCIDs with INVPCID. The host cannot check these (they write
//! the host's own segment bases and need 576-byte areas, or privilege 0),
//! so these follow the SDM.

use std::sync::Arc;

use cpu_x86::mmu::cr4;
use cpu_x86::state::{SegReg, X87State, efer};
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

/// A flat 64-bit CPU of `model` at privilege 0 with `code` at 0x1000 and
/// RBX pointing at a 64-byte-aligned area at 0x4000. Page tables at 0x2000
/// and 0x3000 (PML4s) and 0x5000 (PDPT) map the first GiB one to one.
fn cpu(model: CpuModel, code: &[u8]) -> Cpu {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, code);
    ram.write_bytes(0x2000, &(0x5000u64 | 3).to_le_bytes());
    ram.write_bytes(0x3000, &(0x5000u64 | 3).to_le_bytes());
    ram.write_bytes(0x5000, &0x83u64.to_le_bytes());
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(model, Arc::new(bus));
    cpu.state = CpuState::flat(64);
    for seg in cpu.state.segs.iter_mut() {
        seg.attrs &= !(3 << 5);
        seg.selector &= !3;
    }
    cpu.state.rip = 0x1000;
    cpu.state.gpr[4] = 0x8000;
    cpu.state.gpr[3] = 0x4000;
    cpu
}

/// Runs one instruction; the vector of the exception it raised, if any.
fn step(cpu: &mut Cpu) -> Option<u8> {
    let before = cpu.last_exception();
    match cpu.run(1) {
        RunExit::Budget if cpu.last_exception() == before => None,
        _ => cpu.last_exception().map(|(f, _)| f.vector),
    }
}

#[test]
fn fs_and_gs_bases_move_through_general_registers_under_cr4_fsgsbase() {
    // wrfsbase rax; rdgsbase rcx
    let code = [0xf3, 0x48, 0x0f, 0xae, 0xd0, 0xf3, 0x48, 0x0f, 0xae, 0xc9];
    let mut c = cpu(CpuModel::MAX, &code);
    c.state.gpr[0] = 0x7fff_1234_5000;
    assert_eq!(step(&mut c), Some(6), "#UD without CR4.FSGSBASE");
    let mut c = cpu(CpuModel::MAX, &code);
    c.state.cr4 |= cr4::FSGSBASE;
    c.state.gpr[0] = 0x7fff_1234_5000;
    c.state.segs[SegReg::Gs as usize].base = 0xabcd;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.seg(SegReg::Fs).base, 0x7fff_1234_5000);
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.gpr[1], 0xabcd);
    // A non-canonical base is #GP.
    let mut c = cpu(CpuModel::MAX, &code);
    c.state.cr4 |= cr4::FSGSBASE;
    c.state.gpr[0] = 0x8000_0000_0000_0000;
    assert_eq!(step(&mut c), Some(13));
    // The default model has no FSGSBASE: CR4 refuses the bit.
    let mut c = cpu(CpuModel::DEFAULT, &[0x0f, 0x22, 0xe0]); // mov cr4, rax
    c.state.gpr[0] = c.state.cr4 | cr4::FSGSBASE;
    assert_eq!(step(&mut c), Some(13));
}

#[test]
fn xsave_and_xrstor_carry_the_x87_and_sse_state() {
    // xsave [rbx]; xrstor [rbx]  (EDX:EAX = all components)
    let code = [0x0f, 0xae, 0x23, 0x0f, 0xae, 0x2b];
    let mut c = cpu(CpuModel::MAX, &code);
    assert_eq!(step(&mut c), Some(6), "#UD without CR4.OSXSAVE");

    let mut c = cpu(CpuModel::MAX, &code);
    c.state.cr4 |= cr4::OSXSAVE;
    c.state.xcr0 = 3;
    c.state.gpr[0] = u64::from(u32::MAX);
    c.state.gpr[2] = u64::from(u32::MAX);
    c.state.xmm[5] = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321;
    c.state.mxcsr = 0x1f80 | (3 << 13);
    c.state.x87.fcw = 0x027f;
    c.state.x87.set_status_word(5 << 11);
    c.state.x87.used = 1 << 5;
    c.state.x87.regs[5] = 0x3fff_8000_0000_0000_0000;
    let saved = c.state.clone();
    assert_eq!(step(&mut c), None);
    // Scribble over the state, then restore it.
    c.state.xmm[5] = 0;
    c.state.mxcsr = 0x1f80;
    c.state.x87 = X87State::INIT;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.xmm[5], saved.xmm[5]);
    assert_eq!(c.state.mxcsr, saved.mxcsr);
    assert_eq!(c.state.x87.fcw, 0x027f);
    assert_eq!((c.state.x87.top, c.state.x87.used), (5, 1 << 5));
    assert_eq!(c.state.x87.regs[5], saved.x87.regs[5]);
}

#[test]
fn xrstor_of_components_not_in_use_initialises_them_and_checks_the_header() {
    // xrstor [rbx] from an all-zero area: XSTATE_BV = 0, MXCSR 0 read back.
    let mut c = cpu(CpuModel::MAX, &[0x0f, 0xae, 0x2b]);
    c.state.cr4 |= cr4::OSXSAVE;
    c.state.xcr0 = 3;
    c.state.gpr[0] = 3;
    c.state.xmm[0] = 42;
    c.state.x87.used = 0xff;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.xmm[0], 0);
    assert_eq!(c.state.x87, X87State::INIT);

    // A compacted header is refused: #GP.
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(0x1000, &[0x0f, 0xae, 0x2b]);
    ram.write_bytes(0x4000 + 520, &(1u64 << 63).to_le_bytes());
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut c2 = Cpu::new(CpuModel::MAX, Arc::new(bus));
    c2.state = c.state.clone();
    c2.state.rip = 0x1000;
    assert_eq!(step(&mut c2), Some(13));

    // A misaligned area is #GP.
    let mut c = cpu(CpuModel::MAX, &[0x0f, 0xae, 0x2b]);
    c.state.cr4 |= cr4::OSXSAVE;
    c.state.gpr[3] = 0x4010;
    assert_eq!(step(&mut c), Some(13));
}

#[test]
fn xsetbv_takes_only_supported_components_and_cpuid_follows() {
    // xsetbv; xgetbv; cpuid
    let code = [0x0f, 0x01, 0xd1, 0x0f, 0x01, 0xd0];
    let mut c = cpu(CpuModel::MAX, &code);
    c.state.cr4 |= cr4::OSXSAVE;
    c.state.gpr[0] = 0b111; // AVX is not supported
    assert_eq!(step(&mut c), Some(13));
    let mut c = cpu(CpuModel::MAX, &code);
    c.state.cr4 |= cr4::OSXSAVE;
    c.state.gpr[0] = 0b11;
    assert_eq!(step(&mut c), None);
    c.state.gpr[0] = 0;
    c.state.gpr[1] = 0;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.gpr[0], 0b11);

    // CPUID: leaf 1 says XSAVE and (with CR4.OSXSAVE) OSXSAVE; leaf 0xD the
    // supported components and the area's sizes.
    let mut c = cpu(CpuModel::MAX, &[0x0f, 0xa2, 0x0f, 0xa2]);
    c.state.cr4 |= cr4::OSXSAVE;
    c.state.gpr[0] = 1;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.gpr[1] >> 26 & 3, 3);
    c.state.gpr[0] = 0xd;
    c.state.gpr[1] = 0;
    assert_eq!(step(&mut c), None);
    // x87, SSE and PKRU; 576 bytes for XCR0 = x87 + SSE, 584 with PKRU.
    assert_eq!(
        (c.state.gpr[0], c.state.gpr[3], c.state.gpr[1]),
        (0x203, 576, 584)
    );
}

#[test]
fn pcids_need_long_mode_and_cr3_bit_63_is_not_stored() {
    // mov cr4, rax; mov cr3, rcx; invpcid rdx, [rbx]
    let code = [
        0x0f, 0x22, 0xe0, 0x0f, 0x22, 0xd9, 0x66, 0x0f, 0x38, 0x82, 0x13,
    ];
    let paged = |cr3| {
        let mut c = cpu(CpuModel::MAX, &code);
        c.state.cr0 |= 1 << 31;
        c.state.cr4 |= cr4::PAE;
        c.state.efer |= efer::LME | efer::LMA;
        c.state.cr3 = cr3;
        c.state.gpr[0] = c.state.cr4 | cr4::PCIDE;
        c
    };
    // PCID 5 in CR3 while turning PCIDs on: #GP.
    assert_eq!(step(&mut paged(0x2000 | 5)), Some(13));
    let mut c = paged(0x2000);
    assert_eq!(step(&mut c), None);
    c.state.gpr[1] = (1 << 63) | 0x3000 | 7;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.cr3, 0x3000 | 7);
    // INVPCID type 2 (everything) runs; type 4 does not exist: #GP.
    let mut d = paged(0x3000 | 7);
    d.state.cr4 |= cr4::PCIDE;
    d.state.rip = c.state.rip;
    c.state.gpr[2] = 2;
    assert_eq!(step(&mut c), None);
    d.state.gpr[2] = 4;
    assert_eq!(step(&mut d), Some(13));
}

#[test]
fn protection_keys_guard_user_pages_from_data_accesses() {
    // mov rax, [rbx]; mov [rbx], rax  (with RBX in a user page of key 1)
    let code = [0x48, 0x8b, 0x03, 0x48, 0x89, 0x03];
    let run = |pkru: u32, pke: bool, wp: bool| {
        let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
        ram.write_bytes(0x1000, &code);
        ram.write_bytes(0x2000, &(0x5000u64 | 7).to_le_bytes());
        // One 1 GiB user page with protection key 1.
        ram.write_bytes(0x5000, &(0x87u64 | (1 << 59)).to_le_bytes());
        let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
        let mut c = Cpu::new(CpuModel::MAX, Arc::new(bus));
        c.state = cpu(CpuModel::MAX, &[]).state;
        c.state.cr0 |= 1 << 31;
        if wp {
            c.state.cr0 |= 1 << 16;
        } else {
            c.state.cr0 &= !(1 << 16);
        }
        c.state.cr4 |= cr4::PAE | if pke { cr4::PKE } else { 0 };
        c.state.efer |= efer::LME | efer::LMA;
        c.state.cr3 = 0x2000;
        c.state.pkru = pkru;
        let load = step(&mut c);
        let store = step(&mut c);
        (load, store, c.last_exception().and_then(|(f, _)| f.error))
    };
    // Key 1 access-disabled: the load faults, error code P | PK.
    let (load, _, error) = run(0b01 << 2, true, true);
    assert_eq!((load, error), (Some(14), Some(0x21)));
    // Key 1 write-disabled: the load runs; a supervisor store faults only
    // under CR0.WP (error code P | W | PK).
    let (load, store, error) = run(0b10 << 2, true, true);
    assert_eq!((load, store, error), (None, Some(14), Some(0x23)));
    let (load, store, _) = run(0b10 << 2, true, false);
    assert_eq!((load, store), (None, None));
    // Without CR4.PKE keys mean nothing.
    let (load, store, _) = run(0b11 << 2, false, true);
    assert_eq!((load, store), (None, None));
}

#[test]
fn pkru_moves_through_eax_under_cr4_pke() {
    // wrpkru; rdpkru
    let code = [0x0f, 0x01, 0xef, 0x0f, 0x01, 0xee];
    let mut c = cpu(CpuModel::MAX, &code);
    assert_eq!(step(&mut c), Some(6), "#UD without CR4.PKE");
    let mut c = cpu(CpuModel::MAX, &code);
    c.state.cr4 |= cr4::PKE;
    c.state.gpr[0] = 0x5555_0004;
    c.state.gpr[1] = 0;
    c.state.gpr[2] = 0;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.pkru, 0x5555_0004);
    c.state.gpr[0] = 0;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.gpr[0], 0x5555_0004);
}
