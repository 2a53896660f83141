//! SSE3 to SSE4.2 instructions and the exceptions the host differential test
//! cannot provoke (a native fault would end its run): 16-byte alignment,
//! #NM and #UD from CR0 and CR4, unmasked floating-point exceptions, and the
//! MMX forms.

use std::sync::Arc;

use cpu_x86::cpu::vector;
use cpu_x86::state::gpr;
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

const CODE: u64 = 0x1000;
const DATA: u64 = 0x2000;

/// A 64-bit CPU about to run `code`, with RBX at the data page plus
/// `offset` and 32 bytes of data 1, 2, 3, …
fn cpu(code: &[u8], offset: u64) -> Cpu {
    let ram = Arc::new(GuestRam::new(1 << 16).expect("RAM"));
    ram.write_bytes(CODE, code);
    let data: Vec<u8> = (1..=32).collect();
    ram.write_bytes(DATA, &data);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    cpu.state = CpuState::flat(64);
    cpu.state.rip = CODE;
    cpu.state.gpr[gpr::BX] = DATA + offset;
    cpu.state.mxcsr = 0x1f80;
    cpu
}

/// Runs one instruction: `None` if it completed, else the vector it raised.
fn step(cpu: &mut Cpu) -> Option<u8> {
    let before = cpu.last_exception();
    match cpu.run(1) {
        RunExit::Budget if cpu.last_exception() == before => None,
        _ => cpu.last_exception().map(|(fault, _)| fault.vector),
    }
}

#[test]
fn sixteen_byte_operands_are_aligned_except_where_the_sdm_says() {
    let pshufb = [0x66, 0x0f, 0x38, 0x00, 0x03];
    let movntdqa = [0x66, 0x0f, 0x38, 0x2a, 0x03];
    let ptest = [0x66, 0x0f, 0x38, 0x17, 0x03];
    let roundps = [0x66, 0x0f, 0x3a, 0x08, 0x03, 0x00];
    for code in [&pshufb[..], &movntdqa, &ptest, &roundps] {
        assert_eq!(step(&mut cpu(code, 1)), Some(vector::GP), "{code:02x?}");
        assert_eq!(step(&mut cpu(code, 16)), None, "{code:02x?}");
    }
    // LDDQU, the string compares and narrower operands need no alignment.
    let lddqu = [0xf2, 0x0f, 0xf0, 0x03];
    let mut c = cpu(&lddqu, 1);
    assert_eq!(step(&mut c), None);
    let bytes: Vec<u8> = (2..=17).collect();
    assert_eq!(
        c.state.xmm[0],
        u128::from_le_bytes(bytes.try_into().expect("16"))
    );
    let pmovzxbw = [0x66, 0x0f, 0x38, 0x30, 0x03];
    let mut c = cpu(&pmovzxbw, 3);
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.xmm[0] & 0xffff_ffff, 0x0005_0004);
    // pcmpistri xmm0, [rbx], 0 (equal any): byte 3 of the data is 7.
    let pcmpistri = [0x66, 0x0f, 0x3a, 0x63, 0x03, 0x00];
    let mut c = cpu(&pcmpistri, 5);
    c.state.xmm[0] = 7;
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.gpr[gpr::CX], 1);
}

#[test]
fn cr0_and_cr4_gate_the_sse_forms_but_not_crc32() {
    let ptest = [0x66, 0x0f, 0x38, 0x17, 0xc1];
    let crc32 = [0xf2, 0x0f, 0x38, 0xf0, 0x03];
    let mut c = cpu(&ptest, 0);
    c.state.cr0 |= 1 << 3;
    assert_eq!(step(&mut c), Some(vector::NM));
    let mut c = cpu(&ptest, 0);
    c.state.cr0 |= 1 << 2;
    assert_eq!(step(&mut c), Some(vector::UD));
    let mut c = cpu(&ptest, 0);
    c.state.cr4 &= !(1 << 9);
    assert_eq!(step(&mut c), Some(vector::UD));
    let mut c = cpu(&crc32, 0);
    c.state.cr0 |= (1 << 3) | (1 << 2);
    c.state.cr4 &= !(1 << 9);
    c.state.gpr[gpr::AX] = 0xffff_ffff_ffff_ffff;
    assert_eq!(step(&mut c), None);
    // CRC-32C of the byte 1 from all ones; the upper half of RAX cleared.
    assert_eq!(c.state.gpr[gpr::AX], 0x5fe9_2fad);
}

#[test]
fn unmasked_precision_raises_xm_unless_the_immediate_suppresses_it() {
    // roundss xmm0, xmm1, imm (nearest) with PE unmasked.
    for (imm, want) in [(0x00u8, Some(vector::XM)), (0x08, None)] {
        let mut c = cpu(&[0x66, 0x0f, 0x3a, 0x0a, 0xc1, imm], 0);
        c.state.mxcsr = 0x1f80 & !(1 << 12);
        c.state.xmm[0] = 0x1234;
        c.state.xmm[1] = u128::from(1.5f32.to_bits());
        assert_eq!(step(&mut c), want, "imm {imm:#x}");
        if want.is_some() {
            assert_eq!(c.state.xmm[0], 0x1234, "the destination is kept");
            assert_eq!(c.state.mxcsr & 0x20, 0x20);
        } else {
            assert_eq!(c.state.xmm[0], u128::from(2.0f32.to_bits()));
            assert_eq!(c.state.mxcsr & 0x3f, 0);
        }
    }
    // Without CR4.OSXMMEXCPT the same exception is #UD.
    let mut c = cpu(&[0x66, 0x0f, 0x3a, 0x40, 0xc1, 0xff], 0);
    c.state.cr4 &= !(1 << 10);
    c.state.mxcsr = 0x1f80 & !(1 << 12);
    c.state.xmm[0] = u128::from(3.0f32.to_bits()) * 0x1_0000_0001_0000_0001_0000_0001;
    c.state.xmm[1] = u128::from(0.1f32.to_bits()) * 0x1_0000_0001_0000_0001_0000_0001;
    assert_eq!(step(&mut c), Some(vector::UD));
}

#[test]
fn the_mmx_forms_of_ssse3_work_on_mm_registers() {
    // pshufb mm0, mm1: MM1 = 0 picks byte 0 of MM0 everywhere.
    let mut c = cpu(&[0x0f, 0x38, 0x00, 0xc1], 0);
    c.state.x87.set_mmx(0, 0x0807_0605_0403_0201);
    c.state.x87.set_mmx(1, 0);
    assert_eq!(step(&mut c), None);
    assert_eq!(c.state.x87.mmx(0), 0x0101_0101_0101_0101);
    assert_eq!((c.state.x87.top, c.state.x87.used), (0, 0xff), "MMX state");
}
