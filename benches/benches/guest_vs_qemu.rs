//! Guest workloads on Turing and on qemu-system-riscv64 in the same run: prints
//! Turing's guest MIPS and the wall-time ratio Turing/QEMU (median of the runs).
//! Both are measured as whole processes, start-up included.
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

/// The `turing` binary to measure: `$TURING_BIN` (set by `cargo xtask bench`, which
/// builds it in release mode first), else the release build in the target folder.
fn turing_binary() -> PathBuf {
    let path = std::env::var_os("TURING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/turing"));
    assert!(
        path.exists(),
        "{} not found: run `cargo xtask bench` (it builds the release binary)",
        path.display()
    );
    path
}

/// Runs the program on the `turing` binary users run; returns wall time and the
/// instruction count it reports with `--stats`.
fn run_turing(turing: &Path, program: &Path, accel: &str) -> (f64, u64) {
    let started = Instant::now();
    let output = Command::new(turing)
        .args([
            "run", "--serial", "null", "--stats", "--accel", accel, "--kernel",
        ])
        .arg(program)
        .output()
        .expect("run turing");
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the benchmark failed on Turing: {stderr}"
    );
    let instructions = stderr
        .split("stats: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in: {stderr}"));
    (wall, instructions)
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
    let turing = turing_binary();
    let mut interp_times = Vec::new();
    let mut jit_times = Vec::new();
    let mut qemu_times = Vec::new();
    let mut instructions = 0;
    for _ in 0..runs {
        let (seconds, retired) = run_turing(&turing, &program, "interp");
        interp_times.push(seconds);
        instructions = retired;
        jit_times.push(run_turing(&turing, &program, "jit").0);
        qemu_times.push(run_qemu(&program));
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
