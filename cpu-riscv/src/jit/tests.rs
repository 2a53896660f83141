//! The translator against the interpreter on small hand-assembled programs that
//! exercise chaining, invalidation and the interpreter helpers.

use emu_core::GuestPhysAddr;
use std::sync::Arc;

use emu_core::bus::Bus;
use emu_core::clock::VirtualClock;
use emu_core::device::RunControl;
use emu_core::memory::GuestRam;

use crate::hart::{Hart, RunExit};
use crate::test_asm::{addi, bne, jal, r_type, sw};

const RAM_BASE: u64 = 0x8000_0000;
// Register numbers.
const T0: u32 = 5;
const T1: u32 = 6;
const T2: u32 = 7;
const A0: u32 = 10;
const A1: u32 = 11;
const A2: u32 = 12;
const A3: u32 = 13;
const A4: u32 = 14;
const T3: u32 = 28;

const FENCE_I: u32 = 0x0000_100f;

/// fadd.d fd, fs1, fs2 (round to nearest even).
fn fadd_d(rd: u32, rs1: u32, rs2: u32) -> u32 {
    (0x01 << 25) | (rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x53
}

/// fmv.d.x fd, rs1.
fn fmv_d_x(rd: u32, rs1: u32) -> u32 {
    (0x79 << 25) | (rs1 << 15) | (rd << 7) | 0x53
}

/// fmv.x.d rd, fs1.
fn fmv_x_d(rd: u32, rs1: u32) -> u32 {
    (0x71 << 25) | (rs1 << 15) | (rd << 7) | 0x53
}

/// csrrs rd, csr, x0 (csrr).
fn csrr(rd: u32, csr: u32) -> u32 {
    (csr << 20) | (2 << 12) | (rd << 7) | 0x73
}

const CSR_INSTRET: u32 = 0xc02;
/// mstatus.FS = Initial.
const MSTATUS_FS_INITIAL: u64 = 1 << 13;

/// A hart at the start of `program` in a fresh machine, with the JIT on when
/// `jit` (compiling every block on first entry).
fn hart_with(program: &[u32], jit: bool) -> Hart {
    let ram = Arc::new(GuestRam::new(1 << 20).expect("guest RAM"));
    let bytes: Vec<u8> = program.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert!(ram.write_bytes(0, &bytes));
    let bus = Bus::new(GuestPhysAddr(RAM_BASE), ram, Arc::new(RunControl::new())).expect("bus");
    let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
    let mut hart = Hart::new(0, Arc::new(bus), clock);
    hart.state.pc = RAM_BASE;
    if jit {
        hart.enable_jit(1).expect("the JIT starts");
    }
    hart
}

/// The interpreter and the JIT ended in the same architectural place.
fn assert_same_state(interp: &Hart, jit: &Hart) {
    assert_eq!(interp.state.x, jit.state.x);
    assert_eq!(interp.state.pc, jit.state.pc);
    assert_eq!(interp.state.instret, jit.state.instret);
}

/// Runs `program` under both engines with `setup` applied; returns (interp, jit).
fn run_both(program: &[u32], budget: u64, setup: impl Fn(&mut Hart)) -> (Hart, Hart) {
    let mut out = [false, true].map(|jit| {
        let mut hart = hart_with(program, jit);
        setup(&mut hart);
        assert_eq!(hart.run(budget), RunExit::Budget);
        Some(hart)
    });
    (out[0].take().unwrap(), out[1].take().unwrap())
}

#[test]
fn a_translated_loop_returns_when_the_budget_is_spent() {
    // loop: addi a0, a0, 1; j loop
    let program = [addi(A0, A0, 1), jal(0, -4)];
    let (interp, jit) = run_both(&program, 100_001, |_| {});
    assert_eq!(interp.state.x, jit.state.x);
    assert_eq!(interp.state.instret, 100_001);
    // The dispatch stops between blocks, so at most one block past the budget.
    assert!((100_001..=100_002).contains(&jit.state.instret));
    // The loop stays in translated code instead of returning to dispatch.
    let stats = jit.jit_stats().expect("JIT on");
    assert!(
        stats.blocks_run < 10,
        "loop went through dispatch: {stats:?}"
    );
}

/// `a` at the start of RAM and `b` on the next page, each ending in a jump to
/// the other, with `nop`s between.
fn two_pages(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut program = vec![addi(0, 0, 0); 1024 + b.len() + 1];
    program[..a.len()].copy_from_slice(a);
    program[a.len()] = jal(0, 4096 - 4 * a.len() as i32);
    program[1024..1024 + b.len()].copy_from_slice(b);
    program[1024 + b.len()] = jal(0, -4096 - 4 * b.len() as i32);
    program
}

#[test]
fn blocks_chain_into_each_other() {
    // Two blocks on two pages jumping to each other: a: addi a0, 1; j b
    // b: addi a1, 1; j a
    let program = two_pages(&[addi(A0, A0, 1)], &[addi(A1, A1, 1)]);
    let (interp, jit) = run_both(&program, 100_000, |_| {});
    assert_eq!(interp.state.x, jit.state.x);
    assert_eq!(interp.state.instret, jit.state.instret);
    let stats = jit.jit_stats().expect("JIT on");
    assert!(stats.chained > 20_000, "blocks did not chain: {stats:?}");
    assert!(
        stats.blocks_run < 10,
        "blocks went through dispatch: {stats:?}"
    );
}

#[test]
fn code_patched_by_the_guest_replaces_a_chained_loop() {
    // Loop 100 times adding 1, patch the add to add 2, fence.i, loop again.
    let program = [
        addi(T0, 0, 100), // 0x00
        addi(A0, A0, 1),  // 0x04: patched to addi a0, a0, 2
        addi(T0, T0, -1), // 0x08
        bne(T0, 0, -8),   // 0x0c -> 0x04
        bne(T3, 0, 0x14), // 0x10 -> 0x24 once patched
        sw(T1, T2, 4),    // 0x14
        FENCE_I,          // 0x18
        addi(T3, 0, 1),   // 0x1c
        jal(0, -0x20),    // 0x20 -> 0x00
        jal(0, 0),        // 0x24: j .
    ];
    let (interp, jit) = run_both(&program, 10_000, |hart| {
        hart.state.x[T1 as usize] = u64::from(addi(A0, A0, 2));
        hart.state.x[T2 as usize] = RAM_BASE;
    });
    assert_eq!(interp.state.x[A0 as usize], 300);
    assert_eq!(jit.state.x[A0 as usize], 300);
    assert!(jit.jit_stats().expect("JIT on").invalidations > 0);
}

#[test]
fn fp_and_csr_instructions_inside_blocks_match_the_interpreter() {
    let program = [
        fmv_d_x(1, A1),
        fmv_d_x(2, A2),
        fadd_d(3, 1, 2),
        fmv_x_d(A0, 3),
        addi(A3, A3, 7),
        csrr(A4, CSR_INSTRET),
        jal(0, 0),
    ];
    let (interp, jit) = run_both(&program, 1_000, |hart| {
        hart.state.mstatus |= MSTATUS_FS_INITIAL;
        hart.state.x[A1 as usize] = 1.5f64.to_bits();
        hart.state.x[A2 as usize] = 2.25f64.to_bits();
    });
    assert_eq!(interp.state.x[A0 as usize], 3.75f64.to_bits());
    // instret counts the five instructions before the csrr.
    assert_eq!(interp.state.x[A4 as usize], 5);
    assert_eq!(interp.state.x, jit.state.x);
    assert_eq!(interp.state.f, jit.state.f);
    assert_eq!(interp.state.fcsr, jit.state.fcsr);
    assert_eq!(interp.state.mstatus, jit.state.mstatus);
}

#[test]
fn a_trap_in_a_helper_is_precise() {
    // With mstatus.FS off, the fadd is illegal: mepc must be its address, with
    // the integer work before it done and none after it.
    let program = [
        addi(A0, A0, 1),
        addi(A1, A1, 2),
        fadd_d(3, 1, 2),
        addi(A2, A2, 3),
        jal(0, 0),
        jal(0, 0), // 0x14: trap handler, j .
    ];
    let (interp, jit) = run_both(&program, 1_000, |hart| {
        hart.state.mtvec = RAM_BASE + 0x14;
    });
    assert_eq!(interp.state.mepc, RAM_BASE + 8);
    assert_eq!(interp.state.mcause, 2);
    for hart in [&interp, &jit] {
        assert_eq!(hart.state.mepc, RAM_BASE + 8);
        assert_eq!(hart.state.mcause, 2);
        assert_eq!(hart.state.x[A0 as usize], 1);
        assert_eq!(hart.state.x[A2 as usize], 0);
    }
    assert_eq!(interp.state.x, jit.state.x);
    assert_eq!(interp.state.instret, jit.state.instret);
}

/// fld fd, offset(rs1).
fn fld(rd: u32, rs1: u32, offset: i32) -> u32 {
    ((offset as u32 & 0xfff) << 20) | (rs1 << 15) | (3 << 12) | (rd << 7) | 0x07
}

/// fsd fs2, offset(rs1).
fn fsd(rs2: u32, rs1: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((o & 0x1f) << 7) | 0x27
}

#[test]
fn inline_fp_loads_and_stores_match_the_interpreter() {
    // Copy a double through f1 and mark the FPU dirty; then the same with the FPU
    // off must trap on the fld with nothing after it done.
    let program = [
        fld(1, A1, 0),
        fsd(1, A1, 8),
        addi(A0, A0, 1),
        jal(0, 0),
        jal(0, 0), // 0x10: trap handler
    ];
    let data = RAM_BASE + 0x800;
    let setup = |fs_on: bool| {
        move |hart: &mut Hart| {
            if fs_on {
                hart.state.mstatus |= MSTATUS_FS_INITIAL;
            }
            hart.state.mtvec = RAM_BASE + 0x10;
            hart.state.x[A1 as usize] = data;
            assert!(hart.ram.write_bytes(0x800, &2.5f64.to_bits().to_le_bytes()));
        }
    };
    let (interp, jit) = run_both(&program, 1_000, setup(true));
    for hart in [&interp, &jit] {
        assert_eq!(hart.state.f[1], 2.5f64.to_bits());
        let mut copied = [0u8; 8];
        assert!(hart.ram.read_bytes(0x808, &mut copied));
        assert_eq!(f64::from_le_bytes(copied), 2.5);
        assert_eq!(hart.state.mstatus & (3 << 13), 3 << 13, "FS not dirty");
        assert_eq!(hart.state.x[A0 as usize], 1);
    }
    let (interp, jit) = run_both(&program, 1_000, setup(false));
    for hart in [&interp, &jit] {
        assert_eq!(hart.state.mcause, 2);
        assert_eq!(hart.state.mepc, RAM_BASE);
        assert_eq!(hart.state.x[A0 as usize], 0);
    }
    assert_eq!(interp.state.instret, jit.state.instret);
}

#[test]
fn basic_blocks_of_one_page_run_as_one_translation() {
    // a: addi a0, 1; j b   (a jump over a hole)   b: addi a1, 1; bne a1, a2, a
    // then a loop at the end; a and b form one region, looping inside it.
    let program = [
        addi(A0, A0, 1),
        jal(0, 8),
        jal(0, 0),
        addi(A1, A1, 1),
        bne(A1, A2, -16),
        jal(0, 0),
    ];
    let (interp, jit) = run_both(&program, 100_000, |hart| {
        hart.state.x[A2 as usize] = 20_000;
    });
    assert_same_state(&interp, &jit);
    assert_eq!(jit.state.x[A1 as usize], 20_000);
    let stats = jit.jit_stats().expect("JIT on");
    assert_eq!(stats.chained, 0, "the loop left its region: {stats:?}");
    assert!(
        stats.blocks_run < 10,
        "loop went through dispatch: {stats:?}"
    );
    assert!(stats.blocks_compiled <= 3, "{stats:?}");
}

#[test]
fn a_loop_inside_a_region_returns_when_the_budget_is_spent() {
    // a: addi a0, 1; j b   b: addi a1, 1; j a  (forever, across two blocks)
    let program = [
        addi(A0, A0, 1),
        jal(0, 8),
        jal(0, 0),
        addi(A1, A1, 1),
        jal(0, -16),
    ];
    let (interp, jit) = run_both(&program, 100_001, |_| {});
    assert_eq!(interp.state.instret, 100_001);
    // Translated code checks the budget on backward jumps, so it stops at most
    // one pass through the loop past it.
    assert!(
        (100_001..=100_004).contains(&jit.state.instret),
        "{}",
        jit.state.instret
    );
    let extra = jit.state.instret - interp.state.instret;
    let mut check = hart_with(&program, false);
    assert_eq!(check.run(100_001 + extra), RunExit::Budget);
    assert_eq!(check.state.x, jit.state.x);
    assert_eq!(check.state.pc, jit.state.pc);
}

#[test]
fn a_breakpoint_drops_only_the_translation_it_falls_in_and_stops_the_jit() {
    // Two blocks on two pages: a: addi a0, 1; addi a2, 1; j b
    // b: addi a1, 1; j a
    let program = two_pages(&[addi(A0, A0, 1), addi(A2, A2, 1)], &[addi(A1, A1, 1)]);
    let mut hart = hart_with(&program, true);
    assert_eq!(hart.run(10_000), RunExit::Budget);
    let before = hart.jit_stats().expect("JIT on");
    assert_eq!(before.blocks_compiled, 2);
    // A breakpoint on the second instruction of block a.
    hart.insert_breakpoint(RAM_BASE + 4);
    assert_eq!(
        hart.jit_stats().unwrap().invalidations,
        before.invalidations + 1
    );
    assert_eq!(hart.run(10_000), RunExit::Debug);
    assert_eq!(hart.state.pc, RAM_BASE + 4);
    assert_eq!(
        hart.take_debug_stop(),
        Some(crate::debug::DebugStop::Breakpoint(RAM_BASE + 4))
    );
    // Resuming runs the instruction under the breakpoint and stops there again
    // one loop later.
    let a2 = hart.state.x[A2 as usize];
    hart.resume_from_breakpoint();
    assert_eq!(hart.run(10_000), RunExit::Debug);
    assert_eq!(hart.state.pc, RAM_BASE + 4);
    assert_eq!(hart.state.x[A2 as usize], a2 + 1);
    // Block b was never dropped.
    assert_eq!(
        hart.jit_stats().unwrap().invalidations,
        before.invalidations + 1
    );
}

/// An R-type instruction: `funct7 rs2 rs1 funct3 rd opcode`.
/// A shift by a constant: `slli`/`srli` (opcode 0x13) or `slliw`/`srliw` (0x1b).
fn shift_imm(rd: u32, rs1: u32, amount: u32, left: bool, word: bool) -> u32 {
    let funct3 = if left { 1 } else { 5 };
    let opcode = if word { 0x1b } else { 0x13 };
    (amount << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
}

#[test]
fn rotates_written_as_two_shifts_match_the_interpreter() {
    const ADD: (u32, u32, u32) = (0, 0, 0x33);
    const ADDW: (u32, u32, u32) = (0, 0, 0x3b);
    const OR: (u32, u32, u32) = (0, 6, 0x33);
    const XOR: (u32, u32, u32) = (0, 4, 0x33);
    let combine = |op: (u32, u32, u32), rd, a, b| r_type(op.0, b, a, op.1, rd, op.2);
    let values = [
        0u64,
        1,
        0x8000_0000,
        0xdead_beef_8765_4321,
        0x7fff_ffff,
        u64::MAX,
        0x0123_4567_89ab_cdef,
    ];
    for word in [true, false] {
        let width = if word { 32 } else { 64 };
        for amount in [1, 2, 7, 13, width / 2, width - 1] {
            for op in [ADD, ADDW, OR, XOR] {
                for (left_first, right_amount) in [
                    (true, width - amount),
                    (false, width - amount),
                    (true, width - amount - 1),
                ] {
                    let left = shift_imm(T0, A0, amount, true, word);
                    let right = shift_imm(T1, A0, right_amount, false, word);
                    let mut program = if left_first {
                        vec![left, right]
                    } else {
                        vec![right, left]
                    };
                    program.extend([
                        combine(op, A1, T0, T1),
                        combine(op, A2, T1, T0),
                        // The source changes between the shifts: no rotate.
                        shift_imm(T2, A0, amount, true, word),
                        addi(A0, A0, 3),
                        shift_imm(T3, A0, right_amount, false, word),
                        combine(op, A3, T2, T3),
                        jal(0, 0),
                    ]);
                    for value in values {
                        let (interp, jit) = run_both(&program, 500, |hart| {
                            hart.state.x[A0 as usize] = value;
                        });
                        assert_eq!(
                            interp.state.x, jit.state.x,
                            "word {word}, amount {amount}/{right_amount}, op {op:?}, \
                             value {value:#x}"
                        );
                    }
                }
            }
        }
    }
}

/// A load: `funct3` 0 lb, 1 lh, 2 lw, 3 ld, 4 lbu, 5 lhu, 6 lwu.
fn load(funct3: u32, rd: u32, rs1: u32, offset: i32) -> u32 {
    ((offset as u32 & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x03
}

/// A store: `funct3` 0 sb, 1 sh, 2 sw, 3 sd.
fn store(funct3: u32, rs2: u32, rs1: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 5) & 0x7f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (funct3 << 12)
        | ((o & 0x1f) << 7)
        | 0x23
}

#[test]
fn unaligned_and_page_crossing_accesses_match_the_interpreter() {
    // Around the boundary between the RAM pages at 0x1000 and 0x2000, every size
    // at every misalignment: translated code sends these to the slow path.
    let mut program = Vec::new();
    for offset in 0..8 {
        for (funct3, rd) in [
            (0, T0),
            (1, T1),
            (2, T2),
            (3, A2),
            (4, A3),
            (5, A4),
            (6, T3),
        ] {
            program.push(load(funct3, rd, A1, offset));
        }
        program.push(store(offset as u32 % 4, A2, A1, 16 + offset));
        program.push(r_type(0, T0, A0, 4, A0, 0x33)); // xor a0, a0, t0
        program.push(r_type(0, T2, A0, 0, A0, 0x33)); // add a0, a0, t2
        program.push(r_type(0, A2, A0, 4, A0, 0x33)); // xor a0, a0, a2
        program.push(r_type(0, T3, A0, 0, A0, 0x33)); // add a0, a0, t3
    }
    program.push(jal(0, 0));
    let data = RAM_BASE + 0x2000 - 6;
    let setup = |hart: &mut Hart| {
        hart.state.x[A1 as usize] = data;
        let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        assert!(hart.ram.write_bytes(0x2000 - 16, &bytes));
    };
    let (interp, jit) = run_both(&program, 1_000, setup);
    assert_same_state(&interp, &jit);
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    assert!(interp.ram.read_bytes(0x2000 - 16, &mut a));
    assert!(jit.ram.read_bytes(0x2000 - 16, &mut b));
    assert_eq!(a, b);
    assert_ne!(interp.state.x[A0 as usize], 0);
}

/// `jalr rd, offset(rs1)`.
fn jalr(rd: u32, rs1: u32, offset: i32) -> u32 {
    ((offset as u32 & 0xfff) << 20) | (rs1 << 15) | (rd << 7) | 0x67
}

#[test]
fn calls_and_returns_between_pages_stay_in_translated_code() {
    // loop: jal ra, f (next page); bne a0, a2, loop; j .   f: addi a0, 1; ret
    let mut program = vec![addi(0, 0, 0); 1024 + 2];
    program[0] = jal(1, 4096);
    program[1] = bne(A0, A2, -4);
    program[2] = jal(0, 0);
    program[1024] = addi(A0, A0, 1);
    program[1025] = jalr(0, 1, 0);
    let (interp, jit) = run_both(&program, 100_000, |hart| {
        hart.state.x[A2 as usize] = 20_000;
    });
    assert_same_state(&interp, &jit);
    assert_eq!(jit.state.x[A0 as usize], 20_000);
    let stats = jit.jit_stats().expect("JIT on");
    assert!(stats.chained > 30_000, "calls did not chain: {stats:?}");
    assert!(
        stats.blocks_run < 20,
        "calls went through dispatch: {stats:?}"
    );
}

#[test]
fn a_region_holds_only_the_loops_through_its_entry() {
    // loop: addi a0, 1; bne a0, a2, loop   then 20 addi a1 and j . after it: the
    // code after the loop is its own translation, compiled once (and the final
    // `j .` a third, as a jump to an instruction inside a block).
    let mut program = vec![addi(A0, A0, 1), bne(A0, A2, -4)];
    program.extend([addi(A1, A1, 1); 20]);
    program.push(jal(0, 0));
    let (interp, jit) = run_both(&program, 10_000, |hart| {
        hart.state.x[A2 as usize] = 1000;
    });
    assert_same_state(&interp, &jit);
    let stats = jit.jit_stats().expect("JIT on");
    assert_eq!(stats.blocks_compiled, 3, "{stats:?}");
    assert_eq!(stats.instructions_compiled, 2 + 21 + 1, "{stats:?}");
}

/// Code in ROM runs through the decode cache and the JIT like code in RAM, and a
/// store into the ROM faults and leaves it unchanged on both engines.
#[test]
fn code_in_rom_is_translated_and_stays_read_only() {
    const ROM_BASE: u64 = 0x1000;
    // t0 = 1000; loop: t1 += 3; t0 -= 1; bne t0, zero, loop; then store into
    // the ROM's first word (a store access fault, cause 7).
    let program = [
        addi(T0, 0, 1000),
        addi(T1, T1, 3),
        addi(T0, T0, -1),
        bne(T0, 0, -8),
        sw(T1, T2, 0),
        jal(0, 0),
    ];
    let mut bytes: Vec<u8> = program.iter().flat_map(|w| w.to_le_bytes()).collect();
    // A whole page: the fast path (and so the decode cache and the JIT) works in
    // whole pages of memory.
    bytes.resize(0x1000, 0);
    for jit in [false, true] {
        let backing = Arc::new(GuestRam::new(0x11000).expect("backing"));
        let mut bus = Bus::with_backing(backing, Arc::new(RunControl::new()));
        bus.map_ram("ram", GuestPhysAddr(RAM_BASE), 0, 0x10000)
            .expect("ram");
        bus.map_rom("rom", GuestPhysAddr(ROM_BASE), 0x10000, &bytes)
            .expect("rom");
        let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
        let mut hart = Hart::new(0, Arc::new(bus), clock);
        hart.state.pc = ROM_BASE;
        hart.state.x[T2 as usize] = ROM_BASE;
        // The trap handler: a self-loop in RAM.
        hart.state.mtvec = RAM_BASE;
        assert!(hart.ram.write_bytes(0, &jal(0, 0).to_le_bytes()));
        if jit {
            hart.enable_jit(1).expect("the JIT starts");
        }
        hart.run(10_000);
        assert_eq!(hart.state.x[T1 as usize], 3000, "jit {jit}");
        assert_eq!(hart.state.mcause, 7, "store access fault, jit {jit}");
        assert_eq!(hart.state.mtval, ROM_BASE);
        assert_eq!(hart.state.pc, RAM_BASE);
        assert_eq!(
            hart.bus.read(GuestPhysAddr(ROM_BASE), 4),
            Ok(u64::from(program[0]))
        );
        if jit {
            let stats = hart.jit_stats().expect("JIT stats");
            // The loop and the code around it ran as translations, none of it
            // in the interpreter.
            assert!(stats.instructions_compiled >= 5, "{stats:?}");
            assert_eq!(stats.blocks_interpreted, 0, "{stats:?}");
        }
    }
}

#[test]
fn code_compiled_in_the_background_runs_once_it_arrives() {
    // loop: addi a0, a0, 1; bne a0, a1, loop (a1 is never reached).
    let program = [addi(A0, A0, 1), bne(A0, A1, -4), jal(0, 0)];
    let mut hart = hart_with(&program, false);
    hart.enable_background_jit(2).expect("the JIT starts");
    hart.state.x[A1 as usize] = u64::MAX;
    // The hart interprets until the translation arrives (however long a busy
    // host takes to compile it), then runs it.
    let started = std::time::Instant::now();
    while hart.jit_stats().expect("JIT on").blocks_compiled == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the translation never came"
        );
        assert_eq!(hart.run(10_000), RunExit::Budget);
    }
    let before = hart.jit_stats().expect("JIT on");
    for _ in 0..100 {
        assert_eq!(hart.run(10_000), RunExit::Budget);
    }
    let after = hart.jit_stats().expect("JIT on");
    assert!(
        after.blocks_run > before.blocks_run,
        "the translation did not run: {after:?}"
    );
    assert_eq!(
        after.blocks_interpreted, before.blocks_interpreted,
        "the loop went on in the interpreter: {after:?}"
    );
    // Whichever engine ran each iteration, every one was counted: two
    // instructions per iteration.
    let iterations = hart.state.x[A0 as usize];
    assert!(
        hart.state.instret.abs_diff(2 * iterations) <= 1,
        "{iterations} iterations in {} instructions",
        hart.state.instret
    );
}

/// In a forked child the compile thread is gone: the hart keeps the
/// translations it had and compiles new ones on its own thread.
#[test]
fn after_a_fork_translations_are_compiled_on_the_harts_thread() {
    // loop: addi a0, a0, 1; bne a0, a1, loop; then a second loop at 12.
    let program = [
        addi(A0, A0, 1),
        bne(A0, A1, -4),
        addi(A2, A2, 1),
        bne(A2, A1, -4),
        jal(0, 0),
    ];
    let mut hart = hart_with(&program, false);
    hart.enable_background_jit(2).expect("the JIT starts");
    hart.state.x[A1 as usize] = 200_000;
    let started = std::time::Instant::now();
    while hart.jit_stats().expect("JIT on").blocks_compiled == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the translation never came"
        );
        assert_eq!(hart.run(1_000), RunExit::Budget);
    }
    // What a fork's child does (without forking the test process).
    hart.jit_after_fork();
    let before = hart.jit_stats().expect("JIT on");
    assert!(!before.compiled_in_background, "{before:?}");
    while hart.state.x[A2 as usize] < 100_000 {
        assert_eq!(hart.run(10_000), RunExit::Budget);
    }
    let after = hart.jit_stats().expect("JIT on");
    // The second loop was compiled here, at once, and ran translated.
    assert!(after.blocks_compiled > before.blocks_compiled, "{after:?}");
    assert!(after.blocks_run > before.blocks_run, "{after:?}");
}

#[test]
fn a_page_whose_code_was_all_overwritten_stops_being_a_code_page() {
    let auipc = |rd: u32, upper: u32| (upper << 12) | (rd << 7) | 0x17;
    let jalr = |rd: u32, rs1: u32| (rs1 << 15) | (rd << 7) | 0x67;
    // Page 0 calls a function on page 1, then overwrites it with data (as a
    // kernel reuses a finished program's text page for a pipe buffer).
    let mut program = vec![auipc(T0, 1), jalr(1, T0), sw(0, T0, 0), jal(0, 0)];
    program.resize(0x1000 / 4, 0);
    program.push(jalr(0, 1)); // ret
    let mut hart = hart_with(&program, false);
    assert_eq!(hart.run(3), RunExit::Budget);
    assert!(hart.ram.is_code_page(0x1000), "page 1 ran code");
    assert_eq!(hart.run(10), RunExit::Budget);
    assert!(hart.ram.is_code_page(0), "page 0 still holds code");
    assert!(
        !hart.ram.is_code_page(0x1000),
        "page 1 holds no code any more"
    );
    // Running code there again makes it a code page again.
    hart.state.pc = RAM_BASE + 0x1000;
    assert!(hart.ram.write_bytes(0x1000, &jalr(0, 1).to_le_bytes()));
    assert_eq!(hart.run(1), RunExit::Budget);
    assert!(hart.ram.is_code_page(0x1000));
}
