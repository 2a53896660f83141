//! Guest workloads for benchmarks and what the benches share: finding the
//! release `turing`, timing it, QEMU and native programs, medians. The programs
//! live in `guest/`; `cargo xtask bench` runs every bench.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tests::{repo_root, require_tool};

/// Runs per measurement unless `--runs N` is given.
pub const DEFAULT_RUNS: usize = 3;

/// `--runs N` from the bench's arguments, else [`DEFAULT_RUNS`].
pub fn runs_arg() -> usize {
    runs_arg_or(DEFAULT_RUNS)
}

/// `--runs N` from the bench's arguments (at least 1), else `default`.
pub fn runs_arg_or(default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `turing` binary to measure: `$TURING_BIN` (set by `cargo xtask bench`, which
/// builds it in release mode first), else the release build in the target folder.
pub fn turing_binary() -> PathBuf {
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

/// What one Turing run reported.
#[derive(Clone, Copy, Debug)]
pub struct TuringRun {
    /// Wall time of the whole process, seconds.
    pub seconds: f64,
    /// Guest instructions retired.
    pub instructions: u64,
    /// Cranelift time per translated guest instruction, µs (JIT runs).
    pub compile_us_per_insn: Option<f64>,
}

/// Runs a bare-metal program on `turing` with `--accel accel`; panics naming
/// `what` if the program fails its own check.
pub fn run_turing(turing: &Path, program: &Path, accel: &str, what: &str) -> TuringRun {
    let started = Instant::now();
    let output = Command::new(turing)
        .args([
            "run",
            "--display",
            "none",
            "--serial",
            "null",
            "--stats",
            "--bios",
            "none",
            "--accel",
            accel,
            "--kernel",
        ])
        .arg(program)
        .output()
        .expect("run turing");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed on Turing ({accel}): {stderr}"
    );
    let instructions = stderr
        .split("stats: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in: {stderr}"));
    let compile_us_per_insn = stderr
        .split(" µs per guest instruction")
        .next()
        .filter(|_| stderr.contains("µs per guest instruction"))
        .and_then(|before| before.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok());
    TuringRun {
        seconds,
        instructions,
        compile_us_per_insn,
    }
}

/// Runs a bare-metal program on qemu-system-riscv64 (`-bios none`); returns the
/// wall time; panics naming `what` if it fails its check.
pub fn run_qemu(program: &Path, what: &str) -> f64 {
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
    assert!(status.success(), "{what} failed on QEMU");
    started.elapsed().as_secs_f64()
}

/// Runs a host program; returns the wall time; panics naming `what` if it fails.
pub fn run_native(program: &Path, what: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new(program).status().expect("run native program");
    assert!(status.success(), "{what} failed natively");
    started.elapsed().as_secs_f64()
}

/// Adds the Debian guest's firmware, kernel and initramfs (`cargo xtask images`)
/// to an emulator's command line, as `<prefix>bios`, `<prefix>kernel` and
/// `<prefix>initrd`: `--` for Turing, `-` for QEMU.
pub fn debian_boot_args<'a>(command: &'a mut Command, prefix: &str) -> &'a mut Command {
    let images = tests::images::debian_images();
    command
        .arg(format!("{prefix}bios"))
        .arg(&images.opensbi)
        .arg(format!("{prefix}kernel"))
        .arg(&images.kernel)
        .arg(format!("{prefix}initrd"))
        .arg(&images.initramfs)
}

/// The best wall time of `runs` runs (at least one) of the command `make`
/// builds, and the last run's stdout; panics naming `what` if a run fails.
pub fn best_of(what: &str, runs: usize, mut make: impl FnMut() -> Command) -> (f64, Vec<u8>) {
    let mut best = f64::INFINITY;
    let mut stdout = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let run = make().output().unwrap_or_else(|e| panic!("{what}: {e}"));
        let seconds = started.elapsed().as_secs_f64();
        assert!(
            run.status.success(),
            "{what} failed ({}): {}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        stdout = run.stdout;
        best = best.min(seconds);
    }
    (best, stdout)
}

/// The geometric mean of `values`.
pub fn geomean(values: &[f64]) -> f64 {
    let logs: f64 = values.iter().map(|v| v.ln()).sum();
    (logs / values.len() as f64).exp()
}
