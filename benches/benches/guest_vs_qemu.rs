//! Guest workloads on Turing and on qemu-system-riscv64 in the same run: prints
//! Turing's guest MIPS and the wall-time ratio Turing/QEMU (median of the runs).
//! Both are measured as whole processes, start-up included.
//!
//! `cargo xtask bench` runs it; `cargo xtask bench -- --runs N` changes the count.

use std::path::PathBuf;
use std::process::Command;

use benches::{median, run_qemu, run_turing, runs_arg, turing_binary};
use tests::{CROSS_GCC, build_dir, repo_root, require_tool};

fn build_bench_compute() -> PathBuf {
    require_tool(CROSS_GCC);
    let root = repo_root();
    let out = build_dir("benches").join("bench_compute.elf");
    let status = Command::new(CROSS_GCC)
        .args([
            "-O2",
            "-march=rv64gc_zicsr",
            "-mabi=lp64d",
            "-mcmodel=medany",
        ])
        .args([
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-Wl,--no-warn-rwx-segments",
            "-Wl,--build-id=none",
        ])
        .arg("-T")
        .arg(root.join("tests/guest/common/link.ld"))
        .arg(root.join("benches/guest/start.S"))
        .arg(root.join("benches/guest/bench_compute.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run the cross compiler");
    assert!(status.success(), "building bench_compute failed");
    out
}

fn main() {
    let runs = runs_arg();
    let program = build_bench_compute();
    let turing = turing_binary();
    let mut interp_times = Vec::new();
    let mut jit_times = Vec::new();
    let mut qemu_times = Vec::new();
    let mut instructions = 0;
    for _ in 0..runs {
        let interp = run_turing(&turing, &program, "interp", "bench_compute");
        interp_times.push(interp.seconds);
        instructions = interp.instructions;
        jit_times.push(run_turing(&turing, &program, "jit", "bench_compute").seconds);
        qemu_times.push(run_qemu(&program, "bench_compute"));
    }
    let interp = median(interp_times);
    let jit = median(jit_times);
    let qemu = median(qemu_times);
    let mips = |seconds: f64| instructions as f64 / seconds / 1e6;
    println!("bench_compute ({instructions} guest instructions, median of {runs}):");
    println!(
        "  turing interpreter: {interp:.3} s, {:.1} MIPS, ratio to qemu {:.2}",
        mips(interp),
        interp / qemu
    );
    println!(
        "  turing jit:         {jit:.3} s, {:.1} MIPS, ratio to qemu {:.2}",
        mips(jit),
        jit / qemu
    );
    println!("  qemu-system-riscv64 (TCG): {qemu:.3} s");
}
