//! Debian Linux on Turing and on qemu-system-riscv64, same kernel, initramfs and
//! Debian OpenSBI, in the same run: time from start to the shell prompt, and the
//! time of a fixed guest workload (sha256sum of 64 MiB), with Turing/QEMU ratios.
//!
//! `cargo xtask bench` runs it after the bare-metal comparison.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tests::GuestSession;
use tests::images::{READY_MARKER, debian_images};

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

fn turing_binary() -> PathBuf {
    std::env::var_os("TURING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests::repo_root().join("target/release/turing"))
}

fn turing_run(accel: &str) -> Timing {
    let images = debian_images();
    let mut turing = Command::new(turing_binary());
    turing
        .args([
            "run",
            "--display",
            "none",
            "--memory",
            "512M",
            "--accel",
            accel,
            "--append",
            APPEND,
            "--bios",
        ])
        .arg(&images.opensbi)
        .arg("--kernel")
        .arg(&images.kernel)
        .arg("--initrd")
        .arg(&images.initramfs);
    measure(GuestSession::spawn(turing))
}

const APPEND: &str = "console=ttyS0 quiet";

fn main() {
    let images = debian_images();
    let append = APPEND;
    let jit = turing_run("jit");
    let interp = turing_run("interp");
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args([
        "-M",
        "virt",
        "-m",
        "512M",
        "-nographic",
        "-append",
        append,
        "-bios",
    ])
    .arg(&images.opensbi)
    .arg("-kernel")
    .arg(&images.kernel)
    .arg("-initrd")
    .arg(&images.initramfs);
    let qemu = measure(GuestSession::spawn(qemu));
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
}
