//! Debian Linux on Turing and on qemu-system-riscv64, same kernel, initramfs and
//! Debian OpenSBI, in the same run: time from start to the shell prompt, and the
//! time of a fixed guest workload (sha256sum of 64 MiB), with Turing/QEMU ratios.
//! Then SMP: four `sha256sum` jobs of 16 MiB at once on four harts against the
//! same four one after another on one hart, on both emulators (QEMU with MTTCG,
//! its default), giving each one's SMP speed-up and the four-hart ratio.
//!
//! `cargo xtask bench` runs it after the bare-metal comparison.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tests::GuestSession;
use tests::images::READY_MARKER;

const PROMPT: &str = "~ # ";
const LIMIT: Duration = Duration::from_secs(900);
const WORKLOAD: &str = "head -c 67108864 /dev/zero | sha256sum";
/// sha256 of 64 MiB of zero bytes.
const WORKLOAD_DIGEST: &str = "3b6a07d0d404fab4e23b6d34bc6696a6a312dd92821332385e5af7c01c421351";

struct Timing {
    boot: f64,
    workload: f64,
}

fn measure(mut guest: GuestSession) -> Timing {
    let started = Instant::now();
    guest.expect(READY_MARKER, LIMIT);
    guest.expect(PROMPT, LIMIT);
    let boot = started.elapsed().as_secs_f64();
    let started = Instant::now();
    guest.send_line(WORKLOAD);
    let out = guest.expect(PROMPT, LIMIT);
    let workload = started.elapsed().as_secs_f64();
    assert!(out.contains(WORKLOAD_DIGEST), "wrong digest: {out}");
    guest.send_line("poweroff -f");
    let _ = guest.wait(Duration::from_secs(60));
    Timing { boot, workload }
}

/// One 16 MiB job, named by `$i` so the four runs write apart.
const SMP_JOB: &str = "head -c 16777216 /dev/zero | sha256sum > /tmp/s$i";
/// sha256 of 16 MiB of zero bytes.
const SMP_DIGEST: &str = "080acf35a507ac9849cfcba47dc2ad83e01b75663a516279c8b9d243b719643e";

/// Boots to the prompt, runs the four jobs (`parallel`: at once, in the
/// background; otherwise one after another) and returns their time, after
/// checking every digest.
fn measure_smp(mut guest: GuestSession, parallel: bool) -> f64 {
    guest.expect(READY_MARKER, LIMIT);
    guest.expect(PROMPT, LIMIT);
    let jobs = if parallel {
        format!("for i in 1 2 3 4; do ({SMP_JOB}) & done; wait")
    } else {
        format!("for i in 1 2 3 4; do {SMP_JOB}; done")
    };
    let started = Instant::now();
    guest.send_line(&jobs);
    guest.expect(PROMPT, LIMIT);
    let took = started.elapsed().as_secs_f64();
    let out = {
        guest.send_line("cat /tmp/s1 /tmp/s2 /tmp/s3 /tmp/s4");
        guest.expect(PROMPT, LIMIT)
    };
    assert_eq!(out.matches(SMP_DIGEST).count(), 4, "wrong digests: {out}");
    guest.send_line("poweroff -f");
    let _ = guest.wait(Duration::from_secs(60));
    took
}

fn turing_binary() -> PathBuf {
    std::env::var_os("TURING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests::repo_root().join("target/release/turing"))
}

fn turing_run(accel: &str) -> Timing {
    measure(GuestSession::spawn(turing_command(accel, 1)))
}

fn turing_command(accel: &str, harts: u32) -> Command {
    let mut turing = Command::new(turing_binary());
    turing.args([
        "run",
        "--display",
        "none",
        "--memory",
        "512M",
        "--accel",
        accel,
        "--smp",
        &harts.to_string(),
        "--append",
        APPEND,
    ]);
    benches::debian_boot_args(&mut turing, "--");
    turing
}

fn qemu_command(harts: u32) -> Command {
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", "512M", "-smp"])
        .arg(harts.to_string())
        .args(["-nographic", "-append", APPEND]);
    benches::debian_boot_args(&mut qemu, "-");
    qemu
}

const APPEND: &str = "console=ttyS0 quiet";

fn main() {
    let jit = turing_run("jit");
    let interp = turing_run("interp");
    let qemu = measure(GuestSession::spawn(qemu_command(1)));
    println!("debian linux, OpenSBI, 1 hart (seconds; ratio = turing / qemu):");
    println!(
        "  boot to shell prompt: jit {:.2} ({:.2}x), interpreter {:.2} ({:.2}x), qemu {:.2}",
        jit.boot,
        jit.boot / qemu.boot,
        interp.boot,
        interp.boot / qemu.boot,
        qemu.boot
    );
    println!(
        "  sha256sum of 64 MiB:  jit {:.2} ({:.2}x), interpreter {:.2} ({:.2}x), qemu {:.2}",
        jit.workload,
        jit.workload / qemu.workload,
        interp.workload,
        interp.workload / qemu.workload,
        qemu.workload
    );
    let turing_one = measure_smp(GuestSession::spawn(turing_command("jit", 1)), false);
    let turing_four = measure_smp(GuestSession::spawn(turing_command("jit", 4)), true);
    let qemu_one = measure_smp(GuestSession::spawn(qemu_command(1)), false);
    let qemu_four = measure_smp(GuestSession::spawn(qemu_command(4)), true);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "four sha256sum jobs of 16 MiB, on {cores} host cores (seconds; speed-up = one hart doing them in turn / four harts at once):"
    );
    println!(
        "  turing jit: 1 hart {turing_one:.2}, 4 harts {turing_four:.2}, speed-up {:.2}x",
        turing_one / turing_four
    );
    println!(
        "  qemu:       1 hart {qemu_one:.2}, 4 harts {qemu_four:.2}, speed-up {:.2}x",
        qemu_one / qemu_four
    );
    println!("  4 harts, turing / qemu: {:.2}x", turing_four / qemu_four);
}
