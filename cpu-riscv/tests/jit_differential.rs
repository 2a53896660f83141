//! Differential fuzzing of the JIT against the interpreter.
//!
//! Each case is a random but valid RV64GC program, generated from a seed: integer,
//! M and A instructions, loads and stores (aligned and misaligned) to a data page
//! and to unmapped addresses (which fault), forward branches, counted loops,
//! jumps, CSR reads and writes, and F/D arithmetic on values that include NaNs,
//! infinities, subnormals and signed zeros. The program runs in M-mode with a
//! trap handler that skips the faulting instruction, once on the interpreter and
//! once with every block translated on first entry, and the complete
//! architectural state (registers, FP registers and fcsr, pc, instret, trap CSRs,
//! the data page) must be identical.
//!
//! The test suite runs a bounded number of cases. A longer run:
//!
//! ```sh
//! TURING_FUZZ_CASES=100000 cargo test --release -p cpu-riscv --test jit_differential
//! ```
//!
//! and one case again: `TURING_FUZZ_SEED=<seed> TURING_FUZZ_CASES=1 ...`.

use std::sync::Arc;

use cpu_riscv::{Hart, HartState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl, VirtualClock};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 1 << 20;
/// The trap handler, then the program.
const HANDLER_OFFSET: u64 = 0;
const PROGRAM_OFFSET: u64 = 0x100;
/// The page loads and stores go to.
const DATA_OFFSET: u64 = 0x8_0000;
const DATA_SIZE: usize = 4096;
/// An address with nothing mapped: accesses fault.
const UNMAPPED: u64 = 0x4000_0000;
/// Cases in the test suite's run.
const DEFAULT_CASES: u64 = 400;
/// Instructions per program (before the final spin loop).
const PROGRAM_LEN: usize = 160;
/// Instructions each engine runs: the program plus loops, then the spin.
const BUDGET: u64 = 20_000;

// Registers with fixed roles; random instructions never write them.
const DATA: u32 = 5; // t0: base of the data page
const COUNTER: u32 = 6; // t1: loop counter
const BAD: u32 = 7; // t2: unmapped base
const LINK: u32 = 29; // t4: auipc/jalr pairs
const SCRATCH: u32 = 31; // t6: the trap handler's

/// splitmix64: small, seedable, and the same on every host.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---- encoders ----

fn r_type(funct7: u32, rs2: u32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
}

fn i_type(imm: i32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
}

fn s_type(imm: i32, rs2: u32, rs1: u32, funct3: u32, opcode: u32) -> u32 {
    let i = imm as u32;
    (((i >> 5) & 0x7f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (funct3 << 12)
        | ((i & 0x1f) << 7)
        | opcode
}

fn b_type(offset: i32, rs2: u32, rs1: u32, funct3: u32) -> u32 {
    let o = offset as u32;
    (((o >> 12) & 1) << 31)
        | (((o >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (funct3 << 12)
        | (((o >> 1) & 0xf) << 8)
        | (((o >> 11) & 1) << 7)
        | 0x63
}

fn jal(rd: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 20) & 1) << 31)
        | (((o >> 1) & 0x3ff) << 21)
        | (((o >> 11) & 1) << 20)
        | (((o >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}

fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 0, rd, 0x13)
}

fn csr(csr: u32, rs1: u32, funct3: u32, rd: u32) -> u32 {
    (csr << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x73
}

const MRET: u32 = 0x3020_0073;
const CSR_MEPC: u32 = 0x341;

/// Writes a register the random instructions may change.
fn free_reg(rng: &mut Rng) -> u32 {
    loop {
        let r = rng.below(32) as u32;
        if ![0, DATA, COUNTER, BAD, LINK, SCRATCH].contains(&r) {
            return r;
        }
    }
}

/// Any register as a source.
fn any_reg(rng: &mut Rng) -> u32 {
    rng.below(32) as u32
}

/// Interesting integer values for the initial registers.
fn int_value(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => rng.pick(&[
            0,
            1,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            0x8000_0000,
        ]),
        1 => rng.below(64),
        2 => i64::from(rng.next() as i32) as u64,
        _ => rng.next(),
    }
}

/// Interesting FP bit patterns (doubles, and NaN-boxed singles).
fn fp_value(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => rng.pick(&[
            0.0f64.to_bits(),
            (-0.0f64).to_bits(),
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            f64::NAN.to_bits(),
            0x7ff0_0000_0000_0001, // signalling NaN
            1,                     // smallest subnormal
            f64::MAX.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
        ]),
        1 => (rng.below(2000) as f64 - 1000.0).to_bits(),
        2 => ((rng.next() as i64 as f64) * 1e-3).to_bits(),
        3 => 0xffff_ffff_0000_0000 | u64::from((rng.below(1000) as f32 * 0.25).to_bits()),
        4 => 0xffff_ffff_0000_0000 | (rng.next() & 0xffff_ffff),
        _ => rng.next(),
    }
}

/// Generates one program: returns its instruction words.
fn generate(rng: &mut Rng) -> Vec<u32> {
    let mut code: Vec<u32> = Vec::new();
    let mut loop_start: Option<usize> = None;
    while code.len() < PROGRAM_LEN {
        // Open a counted loop now and then, close it a little later.
        if loop_start.is_none() && rng.below(40) == 0 {
            code.push(addi(COUNTER, 0, 1 + rng.below(6) as i32));
            loop_start = Some(code.len());
        } else if let Some(start) = loop_start
            && code.len() - start > 4
            && rng.below(10) == 0
        {
            code.push(addi(COUNTER, COUNTER, -1));
            let back = (start as i32 - code.len() as i32) * 4;
            code.push(b_type(back, 0, COUNTER, 1)); // bne counter, x0
            loop_start = None;
            continue;
        }
        emit_random(rng, &mut code);
    }
    if let Some(start) = loop_start {
        code.push(addi(COUNTER, COUNTER, -1));
        let back = (start as i32 - code.len() as i32) * 4;
        code.push(b_type(back, 0, COUNTER, 1));
    }
    code.push(jal(0, 0)); // spin: j .
    code
}

fn emit_random(rng: &mut Rng, code: &mut Vec<u32>) {
    let rd = free_reg(rng);
    let (rs1, rs2) = (any_reg(rng), any_reg(rng));
    let (f1, f2, f3, fd) = (
        rng.below(32) as u32,
        rng.below(32) as u32,
        rng.below(32) as u32,
        rng.below(32) as u32,
    );
    // Dynamic rounding (frm) half the time, else a static mode; 5 and 6 are
    // reserved and trap, which must be precise too.
    let rm = if rng.below(2) == 0 {
        7
    } else {
        rng.below(7) as u32
    };
    match rng.below(20) {
        // R-type integer and M.
        0..=3 => {
            let (funct7, funct3, opcode) = rng.pick(&[
                (0, 0, 0x33),
                (0x20, 0, 0x33),
                (0, 1, 0x33),
                (0, 2, 0x33),
                (0, 3, 0x33),
                (0, 4, 0x33),
                (0, 5, 0x33),
                (0x20, 5, 0x33),
                (0, 6, 0x33),
                (0, 7, 0x33),
                (1, 0, 0x33),
                (1, 1, 0x33),
                (1, 2, 0x33),
                (1, 3, 0x33),
                (1, 4, 0x33),
                (1, 5, 0x33),
                (1, 6, 0x33),
                (1, 7, 0x33),
                (0, 0, 0x3b),
                (0x20, 0, 0x3b),
                (0, 1, 0x3b),
                (0, 5, 0x3b),
                (0x20, 5, 0x3b),
                (1, 0, 0x3b),
                (1, 4, 0x3b),
                (1, 5, 0x3b),
                (1, 6, 0x3b),
                (1, 7, 0x3b),
            ]);
            code.push(r_type(funct7, rs2, rs1, funct3, rd, opcode));
        }
        // I-type integer, lui, auipc.
        4..=6 => {
            let imm = (rng.next() as i32) >> 20;
            let word = match rng.below(12) {
                0 => i_type(imm, rs1, rng.pick(&[0, 2, 3, 4, 6, 7]), rd, 0x13),
                1 => i_type(imm & 63, rs1, 1, rd, 0x13),
                2 => i_type(imm & 63, rs1, 5, rd, 0x13),
                3 => i_type((imm & 63) | 0x400, rs1, 5, rd, 0x13),
                4 => i_type(imm, rs1, 0, rd, 0x1b),
                5 => i_type(imm & 31, rs1, 1, rd, 0x1b),
                6 => i_type(imm & 31, rs1, 5, rd, 0x1b),
                7 => i_type((imm & 31) | 0x400, rs1, 5, rd, 0x1b),
                8 => ((rng.next() as u32) & 0xffff_f000) | (rd << 7) | 0x37,
                9 => ((rng.next() as u32) & 0xffff_f000) | (rd << 7) | 0x17,
                _ => addi(rd, rs1, imm),
            };
            code.push(word);
        }
        // Loads and stores: mostly the data page, some unmapped.
        7..=9 => {
            let base = if rng.below(8) == 0 { BAD } else { DATA };
            let offset = rng.below(DATA_SIZE as u64 - 8) as i32;
            let word = match rng.below(2) {
                0 => i_type(offset, base, rng.pick(&[0, 1, 2, 3, 4, 5, 6]), rd, 0x03),
                _ => s_type(offset, rs2, base, rng.pick(&[0, 1, 2, 3]), 0x23),
            };
            code.push(word);
        }
        // Forward branch over 1..4 instructions, or a jump.
        10 => {
            let skip = 1 + rng.below(4) as i32;
            let funct3 = rng.pick(&[0, 1, 4, 5, 6, 7]);
            code.push(b_type((skip + 1) * 4, rs2, rs1, funct3));
            for _ in 0..skip {
                emit_simple(rng, code);
            }
        }
        11 => {
            // jal over one instruction (link in a free register), or an
            // auipc/jalr pair jumping two instructions ahead.
            if rng.below(2) == 0 {
                code.push(jal(rd, 8));
                emit_simple(rng, code);
            } else {
                code.push((LINK << 7) | 0x17); // auipc link, 0
                code.push(i_type(12, LINK, 0, rd, 0x67)); // jalr rd, 12(link)
                emit_simple(rng, code);
            }
        }
        // CSRs: mscratch, fcsr/frm/fflags, instret/cycle, misa, mstatus reads.
        12 => {
            let word = match rng.below(6) {
                0 => csr(0x340, rs1, 1, rd),                          // csrrw mscratch
                1 => csr(0x340, 0, 2, rd),                            // csrr mscratch
                2 => csr(rng.pick(&[0x001, 0x002, 0x003]), 0, 2, rd), // fflags/frm/fcsr
                3 => csr(0x002, rng.below(5) as u32, 5, rd),          // csrrwi frm, 0..4
                4 => csr(rng.pick(&[0xc00, 0xc02, 0xb02, 0xb00]), 0, 2, rd), // cycle/instret
                _ => csr(rng.pick(&[0x301, 0x300, 0xf14]), 0, 2, rd), // misa, mstatus, mhartid
            };
            code.push(word);
        }
        // Atomics on the data page (aligned; the base is the page itself).
        13 => {
            let width = rng.pick(&[2, 3]);
            let funct5 = rng.pick(&[0x00, 0x01, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c]);
            let aqrl = rng.below(4) as u32;
            code.push(r_type((funct5 << 2) | aqrl, rs2, DATA, width, rd, 0x2f));
            if rng.below(4) == 0 {
                // lr/sc pair
                code.push(r_type(0x02 << 2, 0, DATA, width, rd, 0x2f));
                code.push(r_type(0x03 << 2, rs2, DATA, width, free_reg(rng), 0x2f));
            }
        }
        // FP loads and stores.
        14 => {
            let offset = rng.below(DATA_SIZE as u64 - 8) as i32;
            let base = if rng.below(10) == 0 { BAD } else { DATA };
            let word = match rng.below(4) {
                0 => i_type(offset, base, 3, fd, 0x07), // fld
                1 => i_type(offset, base, 2, fd, 0x07), // flw
                2 => s_type(offset, f2, base, 3, 0x27), // fsd
                _ => s_type(offset, f2, base, 2, 0x27), // fsw
            };
            code.push(word);
        }
        // FP arithmetic, double and single.
        15..=17 => {
            let fmt = rng.below(2) as u32; // 0 = S, 1 = D
            let word = match rng.below(12) {
                0 => r_type(fmt, f2, f1, rm, fd, 0x53),        // fadd
                1 => r_type(0x04 | fmt, f2, f1, rm, fd, 0x53), // fsub
                2 => r_type(0x08 | fmt, f2, f1, rm, fd, 0x53), // fmul
                3 => r_type(0x0c | fmt, f2, f1, rm, fd, 0x53), // fdiv
                4 => r_type(0x2c | fmt, 0, f1, rm, fd, 0x53),  // fsqrt
                5 => {
                    (f3 << 27)
                        | (fmt << 25)
                        | (f2 << 20)
                        | (f1 << 15)
                        | (rm << 12)
                        | (fd << 7)
                        | rng.pick(&[0x43, 0x47, 0x4b, 0x4f])
                }
                6 => r_type(0x14 | fmt, f2, f1, rng.below(2) as u32, fd, 0x53), // fmin/fmax
                7 => r_type(0x50 | fmt, f2, f1, rng.pick(&[0, 1, 2]), rd, 0x53), // fle/flt/feq
                8 => r_type(0x10 | fmt, f2, f1, rng.below(3) as u32, fd, 0x53), // fsgnj*
                9 => r_type(0x60 | fmt, rng.below(4) as u32, f1, rm, rd, 0x53), // fcvt.{w,wu,l,lu}
                10 => r_type(0x68 | fmt, rng.below(4) as u32, rs1, rm, fd, 0x53), // fcvt from int
                _ => match rng.below(4) {
                    0 => r_type(0x71, 0, f1, 0, rd, 0x53),              // fmv.x.d
                    1 => r_type(0x79, 0, rs1, 0, fd, 0x53),             // fmv.d.x
                    2 => r_type(0x70 | fmt, 0, f1, 1, rd, 0x53),        // fclass
                    _ => r_type(0x20 | fmt, 1 - fmt, f1, rm, fd, 0x53), // fcvt.s.d / fcvt.d.s
                },
            };
            code.push(word);
        }
        _ => emit_simple(rng, code),
    }
}

/// An instruction that never changes control flow (fillers for skipped code).
fn emit_simple(rng: &mut Rng, code: &mut Vec<u32>) {
    let rd = free_reg(rng);
    let rs1 = any_reg(rng);
    let imm = (rng.next() as i32) >> 20;
    code.push(match rng.below(3) {
        0 => addi(rd, rs1, imm),
        1 => r_type(0, any_reg(rng), rs1, rng.pick(&[0, 4, 6, 7]), rd, 0x33),
        _ => i_type(rng.below(DATA_SIZE as u64 - 8) as i32, DATA, 3, rd, 0x03),
    });
}

/// The trap handler: skip the faulting (4-byte) instruction.
fn handler() -> Vec<u32> {
    vec![
        csr(CSR_MEPC, 0, 2, SCRATCH), // csrr t6, mepc
        addi(SCRATCH, SCRATCH, 4),    // addi t6, t6, 4
        csr(CSR_MEPC, SCRATCH, 1, 0), // csrw mepc, t6
        MRET,
    ]
}

/// What the comparison looks at.
#[derive(Debug, PartialEq)]
struct Outcome {
    x: [u64; 32],
    f: [u64; 32],
    pc: u64,
    fcsr: u32,
    instret: u64,
    privilege: u8,
    mstatus: u64,
    mepc: u64,
    mcause: u64,
    mtval: u64,
    mscratch: u64,
    data: Vec<u8>,
}

fn outcome(state: &HartState, ram: &GuestRam) -> Outcome {
    let mut data = vec![0; DATA_SIZE];
    assert!(ram.read_bytes(DATA_OFFSET, &mut data));
    Outcome {
        x: state.x,
        f: state.f,
        pc: state.pc,
        fcsr: state.fcsr,
        instret: state.instret,
        privilege: state.privilege,
        mstatus: state.mstatus,
        mepc: state.mepc,
        mcause: state.mcause,
        mtval: state.mtval,
        mscratch: state.mscratch,
        data,
    }
}

/// Runs one program on a fresh machine; `jit` translates every block.
fn run(code: &[u32], init: &Init, jit: bool) -> Outcome {
    let ram = Arc::new(GuestRam::new(RAM_SIZE).expect("guest RAM"));
    let words = |w: &[u32]| w.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    assert!(ram.write_bytes(HANDLER_OFFSET, &words(&handler())));
    assert!(ram.write_bytes(PROGRAM_OFFSET, &words(code)));
    assert!(ram.write_bytes(DATA_OFFSET, &init.data));
    let bus = Bus::new(
        GuestPhysAddr(RAM_BASE),
        ram.clone(),
        Arc::new(RunControl::new()),
    )
    .expect("bus");
    let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
    let mut hart = Hart::new(0, Arc::new(bus), clock);
    hart.state.x = init.x;
    hart.state.f = init.f;
    hart.state.x[DATA as usize] = RAM_BASE + DATA_OFFSET;
    hart.state.x[BAD as usize] = UNMAPPED;
    hart.state.mstatus |= 1 << 13; // FS = Initial
    hart.state.mtvec = RAM_BASE + HANDLER_OFFSET;
    hart.state.pc = RAM_BASE + PROGRAM_OFFSET;
    if jit {
        hart.enable_jit(1).expect("the JIT starts");
    }
    assert_eq!(hart.run(BUDGET), RunExit::Budget);
    outcome(&hart.state, &ram)
}

/// A case's initial registers and data.
struct Init {
    x: [u64; 32],
    f: [u64; 32],
    data: Vec<u8>,
}

fn init(rng: &mut Rng) -> Init {
    let mut x = [0; 32];
    for r in x.iter_mut().skip(1) {
        *r = int_value(rng);
    }
    let mut f = [0; 32];
    for r in &mut f {
        *r = fp_value(rng);
    }
    let mut data = vec![0; DATA_SIZE];
    for chunk in data.chunks_mut(8) {
        chunk.copy_from_slice(&fp_value(rng).to_le_bytes());
    }
    Init { x, f, data }
}

/// The first field that differs, for the failure message.
fn first_difference(a: &Outcome, b: &Outcome) -> String {
    for r in 0..32 {
        if a.x[r] != b.x[r] {
            return format!("x{r}: interpreter {:#x}, jit {:#x}", a.x[r], b.x[r]);
        }
        if a.f[r] != b.f[r] {
            return format!("f{r}: interpreter {:#x}, jit {:#x}", a.f[r], b.f[r]);
        }
    }
    if let Some(i) = (0..DATA_SIZE).find(|&i| a.data[i] != b.data[i]) {
        return format!(
            "data byte {i:#x}: interpreter {:#x}, jit {:#x}",
            a.data[i], b.data[i]
        );
    }
    format!("interpreter {a:x?}\njit {b:x?}")
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn jit_matches_the_interpreter_on_random_programs() {
    let cases: u64 = std::env::var("TURING_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let first_seed: u64 = std::env::var("TURING_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for seed in first_seed..first_seed + cases {
        let mut rng = Rng(seed);
        let code = generate(&mut rng);
        let init = init(&mut rng);
        let interp = run(&code, &init, false);
        let jit = run(&code, &init, true);
        if interp != jit {
            let listing: Vec<String> = code
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let insn = cpu_riscv::decode::decode(*w as u16, (*w >> 16) as u16);
                    format!(
                        "  {:#x}: {w:08x} {:?}",
                        RAM_BASE + PROGRAM_OFFSET + 4 * i as u64,
                        insn.op
                    )
                })
                .collect();
            panic!(
                "seed {seed}: the JIT diverged from the interpreter: {}\n\
                 reproduce: TURING_FUZZ_SEED={seed} TURING_FUZZ_CASES=1 cargo test -p cpu-riscv --test jit_differential\n{}",
                first_difference(&interp, &jit),
                listing.join("\n")
            );
        }
    }
}
