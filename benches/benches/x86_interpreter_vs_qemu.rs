//! The x86 interpreter against QEMU's x86-64 user mode: the benchmark
//! workloads built once as static x86-64 programs without a C library, run by
//! the interpreter (in this process), by `qemu-x86_64` (its JIT) and natively,
//! in one run; prints times, the interpreter's MIPS and the ratios.
//!
//! `cargo xtask bench` runs it; `cargo bench -p benches --bench
//! x86_interpreter_vs_qemu [-- --runs N] [WORKLOAD..]` alone works too (the
//! named workloads only).

use std::process::Command;
use std::time::Instant;

use benches::{best_of, geomean, runs_arg_or};
use tests::require_tool;
use tests::x86_user::{X86_WORKLOADS, build_x86_workload, run_x86_static};

fn main() {
    require_tool("qemu-x86_64");
    let runs = runs_arg_or(3);
    println!("x86 interpreter vs qemu-x86_64 (user mode), best of {runs} runs");
    println!(
        "{:<14} {:>10} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "workload", "insns (M)", "turing s", "qemu s", "native s", "MIPS", "turing/qemu"
    );
    // Plain arguments name the workloads to run (all by default).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let chosen: Vec<&str> = X86_WORKLOADS
        .into_iter()
        .filter(|w| args.iter().any(|a| a == w))
        .collect();
    let workloads = if chosen.is_empty() {
        X86_WORKLOADS.to_vec()
    } else {
        chosen
    };
    let mut ratios = Vec::new();
    for name in workloads {
        let program = build_x86_workload(name, false);
        let mut best = f64::INFINITY;
        let mut instructions = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let run = run_x86_static(&program, u64::MAX).unwrap_or_else(|e| panic!("{name}: {e}"));
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(
                run.exit_code, 0,
                "{name} computed a wrong checksum on Turing"
            );
            instructions = run.instructions;
            best = best.min(seconds);
        }
        let (qemu, _) = best_of(&format!("{name} on qemu-x86_64"), runs, || {
            let mut c = Command::new("qemu-x86_64");
            c.arg(&program);
            c
        });
        let (native, _) = best_of(&format!("{name} natively"), runs, || Command::new(&program));
        let ratio = best / qemu;
        ratios.push(ratio);
        println!(
            "{:<14} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>8.1} {:>10.2}",
            name,
            instructions as f64 / 1e6,
            best,
            qemu,
            native,
            instructions as f64 / best / 1e6,
            ratio
        );
    }
    println!("geomean turing/qemu: {:.2}", geomean(&ratios));
}
