//! Guest workloads on Turing and on qemu-system-riscv64 in the same run: prints
//! Turing's guest MIPS and the wall-time ratio Turing/QEMU (median of `RUNS`).
//!
//! `cargo xtask bench` runs it; `cargo xtask bench -- --runs N` changes the count.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tests::{CROSS_GCC, build_dir, repo_root, require_tool};

const DEFAULT_RUNS: usize = 3;

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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn run_turing(program: &Path) -> (f64, u64) {
    let args = frontend::cli::RunArgs {
        kernel: Some(program.to_owned()),
        serial: Some(emu_core::config::SerialBackend::Null),
        timeout: Some(600.0),
        ..frontend::cli::RunArgs::default()
    };
    let started = Instant::now();
    let report = frontend::cli::run_measured(&args).expect("turing runs the benchmark");
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(
        report.exit_code, 0,
        "the benchmark failed its self-check on Turing"
    );
    (wall, report.instructions)
}

fn run_qemu(program: &Path) -> f64 {
    require_tool("qemu-system-riscv64");
    let started = Instant::now();
    let status = Command::new("qemu-system-riscv64")
        .args(["-M", "virt", "-bios", "none", "-m", "256M"])
        .args([
            "-display", "none", "-serial", "null", "-monitor", "none", "-kernel",
        ])
        .arg(program)
        .status()
        .expect("run qemu");
    assert!(status.success(), "the benchmark failed on QEMU");
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let program = build_bench_compute();
    let mut turing_times = Vec::new();
    let mut qemu_times = Vec::new();
    let mut instructions = 0;
    for _ in 0..runs {
        let (seconds, retired) = run_turing(&program);
        turing_times.push(seconds);
        instructions = retired;
        qemu_times.push(run_qemu(&program));
    }
    let turing = median(turing_times);
    let qemu = median(qemu_times);
    let mips = instructions as f64 / turing / 1e6;
    println!("bench_compute (median of {runs}):");
    println!("  turing (interpreter): {turing:.3} s, {instructions} instructions, {mips:.1} MIPS");
    println!("  qemu-system-riscv64 (TCG): {qemu:.3} s");
    println!("  wall-time ratio turing/qemu: {:.2}", turing / qemu);
}
