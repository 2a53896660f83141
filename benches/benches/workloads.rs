//! Six guest workloads (CRC-32, sort, FP matrix multiply, pointer chasing, a
//! bytecode interpreter, memcpy/memset) built -O2 for bare-metal riscv64 and for
//! the host from the same C (`benches/guest/workloads/`), each run under
//! Turing's JIT, Turing's interpreter, qemu-system-riscv64 and natively, with
//! every run checking its own result. Prints wall times (whole processes,
//! start-up included; medians of `--runs`, the interpreter once), the ratios
//! JIT/QEMU, JIT/native and interpreter/QEMU, and their geometric means.
//!
//! `cargo xtask bench` runs it; `cargo xtask bench -- --runs N` changes the count.

use benches::{geomean, median, run_native, run_qemu, run_turing, runs_arg, turing_binary};
use tests::{WORKLOADS, build_native_workload, build_workload};

/// One workload's figures, seconds.
struct Row {
    name: &'static str,
    native: f64,
    qemu: f64,
    jit: f64,
    interp: f64,
    instructions: u64,
    compile_us: Option<f64>,
}

fn main() {
    let runs = runs_arg();
    let turing = turing_binary();
    let mut rows = Vec::new();
    for &name in WORKLOADS {
        let elf = build_workload(name, false);
        let native_program = build_native_workload(name);
        let mut native = Vec::new();
        let mut qemu = Vec::new();
        let mut jit = Vec::new();
        let mut compile_us = None;
        let mut instructions = 0;
        for _ in 0..runs {
            native.push(run_native(&native_program, name));
            qemu.push(run_qemu(&elf, name));
            let run = run_turing(&turing, &elf, "jit", name);
            jit.push(run.seconds);
            compile_us = run.compile_us_per_insn;
            instructions = run.instructions;
        }
        let interp = run_turing(&turing, &elf, "interp", name).seconds;
        let row = Row {
            name,
            native: median(native),
            qemu: median(qemu),
            jit: median(jit),
            interp,
            instructions,
            compile_us,
        };
        eprintln!(
            "{name}: native {:.3} s, qemu {:.3} s, jit {:.3} s, interpreter {:.3} s",
            row.native, row.qemu, row.jit, row.interp
        );
        rows.push(row);
    }
    println!(
        "\nworkloads (wall seconds, median of {runs}; interpreter 1 run; ratio < 1 = Turing faster)"
    );
    println!(
        "{:14} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>11} {:>10}",
        "workload",
        "guest Mi",
        "native",
        "qemu",
        "jit",
        "interp",
        "jit/qemu",
        "jit/native",
        "interp/qemu",
        "µs/insn"
    );
    for r in &rows {
        println!(
            "{:14} {:>9} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.2} {:>10.2} {:>11.2} {:>10}",
            r.name,
            r.instructions / 1_000_000,
            r.native,
            r.qemu,
            r.jit,
            r.interp,
            r.jit / r.qemu,
            r.jit / r.native,
            r.interp / r.qemu,
            r.compile_us.map_or("-".to_owned(), |us| format!("{us:.1}"))
        );
    }
    let ratio = |f: fn(&Row) -> f64| geomean(&rows.iter().map(f).collect::<Vec<_>>());
    println!(
        "{:14} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9.2} {:>10.2} {:>11.2}",
        "geomean",
        "",
        "",
        "",
        "",
        "",
        ratio(|r| r.jit / r.qemu),
        ratio(|r| r.jit / r.native),
        ratio(|r| r.interp / r.qemu)
    );
    println!("targets: jit/qemu <= 0.80, jit/native <= 4.00 (geometric means)");
}
