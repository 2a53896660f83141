//! LOCK across vCPU threads: two CPUs on their own host threads update the
//! same counters with LOCK INC, LOCK XADD and a LOCK CMPXCHG retry loop, and
//! no update is lost. Without host atomics the threads' read-modify-writes
//! interleave and counts go missing.

use std::sync::Arc;

use cpu_x86::state::gpr;
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

const CODE: u64 = 0x1000;
const COUNTERS: u64 = 0x2000;
const ROUNDS: u64 = 200_000;

/// 64-bit code: ECX rounds of
///   lock inc dword [rbx]; lock xadd [rbx+8], edx (edx = 1 each time);
///   a CMPXCHG loop adding 1 to [rbx+16];
/// then SYSCALL (to the host: the end).
fn program() -> Vec<u8> {
    vec![
        // again:
        0xf0, 0xff, 0x03, // lock inc dword [rbx]
        0xba, 0x01, 0x00, 0x00, 0x00, // mov edx, 1
        0xf0, 0x0f, 0xc1, 0x53, 0x08, // lock xadd [rbx+8], edx
        // retry:
        0x8b, 0x43, 0x10, // mov eax, [rbx+16]
        0x8d, 0x70, 0x01, // lea esi, [rax+1]
        0xf0, 0x0f, 0xb1, 0x73, 0x10, // lock cmpxchg [rbx+16], esi
        0x75, 0xf3, // jnz retry
        0xff, 0xc9, // dec ecx
        0x75, 0xe2, // jnz again
        0x0f, 0x05, // syscall
    ]
}

#[test]
fn locked_updates_from_two_threads_are_never_lost() {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(CODE, &program());
    let bus = Arc::new(
        Bus::new(GuestPhysAddr(0), ram.clone(), Arc::new(RunControl::new())).expect("bus"),
    );
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                let mut cpu = Cpu::new(CpuModel::MAX, bus);
                cpu.state = CpuState::flat(64);
                cpu.set_user_syscalls(true);
                cpu.state.rip = CODE;
                cpu.state.gpr[gpr::BX] = COUNTERS;
                cpu.state.gpr[gpr::CX] = ROUNDS;
                loop {
                    match cpu.run(1 << 16) {
                        RunExit::Budget => {}
                        RunExit::Syscall => break,
                        other => panic!("stopped with {other:?} at {:#x}", cpu.state.rip),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a CPU thread");
    }
    let mut bytes = [0u8; 24];
    ram.read_bytes(COUNTERS, &mut bytes);
    let counter =
        |k: usize| u32::from_le_bytes(bytes[8 * k..8 * k + 4].try_into().expect("4 bytes"));
    assert_eq!(counter(0), 2 * ROUNDS as u32, "LOCK INC lost updates");
    assert_eq!(counter(1), 2 * ROUNDS as u32, "LOCK XADD lost updates");
    assert_eq!(counter(2), 2 * ROUNDS as u32, "LOCK CMPXCHG lost updates");
}

/// 64-bit code: R8D rounds of
///   lock btc [rdi+24], esi (each CPU toggles its own bit, ESI);
///   a LOCK CMPXCHG8B loop adding 1 to the quadword at [rdi+32];
///   a LOCK CMPXCHG16B loop adding 1 to the low quadword at [rdi+48];
/// then SYSCALL.
fn wide_program() -> Vec<u8> {
    vec![
        // again:
        0xf0, 0x0f, 0xbb, 0x77, 0x18, // lock btc [rdi+24], esi
        // retry8:
        0x8b, 0x47, 0x20, // mov eax, [rdi+32]
        0x8b, 0x57, 0x24, // mov edx, [rdi+36]
        0x8d, 0x58, 0x01, // lea ebx, [rax+1]
        0x89, 0xd1, // mov ecx, edx
        0xf0, 0x0f, 0xc7, 0x4f, 0x20, // lock cmpxchg8b [rdi+32]
        0x75, 0xee, // jnz retry8
        // retry16:
        0x48, 0x8b, 0x47, 0x30, // mov rax, [rdi+48]
        0x48, 0x8b, 0x57, 0x38, // mov rdx, [rdi+56]
        0x48, 0x8d, 0x58, 0x01, // lea rbx, [rax+1]
        0x48, 0x89, 0xd1, // mov rcx, rdx
        0xf0, 0x48, 0x0f, 0xc7, 0x4f, 0x30, // lock cmpxchg16b [rdi+48]
        0x75, 0xe9, // jnz retry16
        0x41, 0xff, 0xc8, // dec r8d
        0x75, 0xcd, // jnz again
        0x0f, 0x05, // syscall
    ]
}

#[test]
fn locked_bit_tests_and_double_compare_exchanges_from_two_threads_lose_nothing() {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("RAM"));
    ram.write_bytes(CODE, &wide_program());
    let bus = Arc::new(
        Bus::new(GuestPhysAddr(0), ram.clone(), Arc::new(RunControl::new())).expect("bus"),
    );
    let rounds = ROUNDS / 4;
    let threads: Vec<_> = (0..2u64)
        .map(|k| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                let mut cpu = Cpu::new(CpuModel::MAX, bus);
                cpu.state = CpuState::flat(64);
                cpu.set_user_syscalls(true);
                cpu.state.rip = CODE;
                cpu.state.gpr[gpr::DI] = COUNTERS;
                cpu.state.gpr[gpr::SI] = k;
                cpu.state.gpr[8] = rounds;
                loop {
                    match cpu.run(1 << 16) {
                        RunExit::Budget => {}
                        RunExit::Syscall => break,
                        other => panic!("stopped with {other:?} at {:#x}", cpu.state.rip),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a CPU thread");
    }
    let mut bytes = [0u8; 64];
    ram.read_bytes(COUNTERS, &mut bytes);
    let quad = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    // An even number of toggles of each bit leaves them clear.
    assert_eq!(quad(24), 0, "LOCK BTC lost a toggle");
    assert_eq!(quad(32), 2 * rounds, "LOCK CMPXCHG8B lost updates");
    assert_eq!(quad(48), 2 * rounds, "LOCK CMPXCHG16B lost updates");
}
