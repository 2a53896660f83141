//! Random bytes as code, in every mode: the decoder and interpreter must never
//! panic or hang, whatever they meet. Memory, registers, descriptor tables
//! and page tables are random too, so descriptor loads, gates, page walks and
//! exception delivery all see garbage.
//!
//! The suite runs a bounded number of cases; a longer run:
//! `TURING_X86_FUZZ_CASES=20000 cargo test --release -p cpu-x86 --test fuzz`,
//! and one case again with `TURING_X86_FUZZ_SEED=<seed> TURING_X86_FUZZ_CASES=1`.

use std::sync::Arc;

use cpu_x86::state::{attrs, cr0, efer};
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit, SegReg};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

const RAM_SIZE: u64 = 1 << 20;
const STEPS: u64 = 3000;

struct Rng(u64);

impl Rng {
    fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.bits() % n
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The modes a case starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Real286,
    Real,
    Protected16,
    Protected32,
    Paged32,
    Long64,
    Virtual8086,
}

const MODES: [Mode; 7] = [
    Mode::Real286,
    Mode::Real,
    Mode::Protected16,
    Mode::Protected32,
    Mode::Paged32,
    Mode::Long64,
    Mode::Virtual8086,
];

fn run_case(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mode = MODES[rng.below(MODES.len() as u64) as usize];
    let ram = Arc::new(GuestRam::new(RAM_SIZE).expect("guest RAM"));
    let mut bytes = vec![0u8; RAM_SIZE as usize];
    for chunk in bytes.chunks_mut(8) {
        let v = rng.bits().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    // Sprinkle the opcodes that matter most for system code.
    for _ in 0..2000 {
        let at = rng.below(RAM_SIZE - 4) as usize;
        let pick: &[u8] = match rng.below(8) {
            0 => &[0x0f, 0x01],
            1 => &[0x0f, 0x00],
            2 => &[0xcf],
            3 => &[0xcd],
            4 => &[0x0f, 0x22],
            5 => &[0x0f, 0x05],
            6 => &[0xea],
            _ => &[0x9a],
        };
        bytes[at..at + pick.len()].copy_from_slice(pick);
    }
    ram.write_bytes(0, &bytes);
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    let model = match mode {
        Mode::Real286 => CpuModel::I286,
        _ => CpuModel::MAX,
    };
    let mut cpu = Cpu::new(model, Arc::new(bus));
    let mut state = match mode {
        Mode::Real286 | Mode::Real => CpuState::at_reset(),
        Mode::Protected16 | Mode::Protected32 | Mode::Paged32 => CpuState::flat(32),
        Mode::Long64 => CpuState::flat(64),
        Mode::Virtual8086 => CpuState::flat(32),
    };
    for r in state.gpr.iter_mut() {
        *r = rng.bits() & if rng.below(2) == 0 { 0xffff } else { u64::MAX };
    }
    let cs_base = rng.below(RAM_SIZE) & !0xf;
    match mode {
        Mode::Real286 | Mode::Real => {
            state.load_real_segment(SegReg::Cs, (cs_base >> 4) as u16);
            state.rip = rng.below(0x1_0000);
        }
        Mode::Virtual8086 => {
            state.rflags |= cpu_x86::state::flags::VM;
            for seg in SegReg::ALL {
                state.load_real_segment(seg, (rng.below(RAM_SIZE) >> 4) as u16);
            }
            state.rip = rng.below(0x1_0000);
        }
        Mode::Protected16 => {
            state.segs[SegReg::Cs as usize].attrs &= !attrs::DB;
            state.rip = rng.below(RAM_SIZE);
        }
        _ => state.rip = rng.below(RAM_SIZE),
    }
    // Descriptor tables and the TSS somewhere in the random memory.
    state.gdtr.base = rng.below(RAM_SIZE);
    state.gdtr.limit = rng.below(0x1_0000) as u32;
    state.idtr.base = rng.below(RAM_SIZE);
    state.idtr.limit = rng.below(0x1_0000) as u32;
    state.tr.base = rng.below(RAM_SIZE);
    state.tr.limit = rng.below(0x2000) as u32;
    state.tr.attrs = attrs::P | 0xb;
    if matches!(mode, Mode::Paged32 | Mode::Long64) {
        state.cr3 = rng.below(RAM_SIZE) & !0xfff;
        state.cr4 |= if mode == Mode::Long64 {
            0x20
        } else {
            rng.below(2) << 4
        };
        state.cr0 |= cr0::PG;
        if mode == Mode::Long64 {
            state.efer |= efer::NXE;
        }
    }
    cpu.state = state;
    let mut executed = 0;
    while executed < STEPS {
        let before = cpu.executed();
        match cpu.run(STEPS - executed) {
            RunExit::Budget | RunExit::Syscall | RunExit::Stopped | RunExit::Debug => {}
            // Wake a halted CPU by hand and go on elsewhere; start over after
            // a shutdown, as a PC resets.
            RunExit::Halted | RunExit::Shutdown => {
                cpu.reset();
                cpu.state.rip = rng.below(0x1_0000);
            }
        }
        executed += (cpu.executed() - before).max(1);
    }
}

#[test]
fn random_code_in_every_mode_never_panics_or_hangs() {
    let cases = env_or("TURING_X86_FUZZ_CASES", 300);
    let first = env_or("TURING_X86_FUZZ_SEED", 1);
    for seed in first..first + cases {
        let outcome = std::panic::catch_unwind(|| run_case(seed));
        assert!(
            outcome.is_ok(),
            "case {seed} panicked (rerun: TURING_X86_FUZZ_SEED={seed} TURING_X86_FUZZ_CASES=1)"
        );
    }
}
