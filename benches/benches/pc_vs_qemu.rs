//! Debian's amd64 kernel on `--machine pc` and on `qemu-system-x86_64 -M pc`
//! (TCG), same kernel, initramfs and command line, booted with `-kernel`
//! through SeaBIOS on both, in the same run: time from start to the shell
//! prompt, with the Turing/QEMU ratio. The x86 CPU interprets (no JIT yet).
//!
//! `cargo xtask bench` runs it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tests::GuestSession;
use tests::images::{READY_MARKER, pc_images};

const LIMIT: Duration = Duration::from_secs(1500);
const APPEND: &str = "console=ttyS0";

/// Seconds from start to the shell's prompt; then powers the guest off.
fn boot_to_shell(mut guest: GuestSession) -> f64 {
    let started = Instant::now();
    guest.expect(READY_MARKER, LIMIT);
    guest.expect("# ", LIMIT);
    let took = started.elapsed().as_secs_f64();
    guest.send_line("poweroff -f");
    let _ = guest.wait(Duration::from_secs(120));
    took
}

fn turing_binary() -> PathBuf {
    std::env::var_os("TURING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests::repo_root().join("target/release/turing"))
}

fn main() {
    let images = pc_images();
    let mut turing = Command::new(turing_binary());
    turing
        .args([
            "run",
            "--machine",
            "pc",
            "--display",
            "none",
            "--memory",
            "256M",
        ])
        .arg("--kernel")
        .arg(&images.kernel)
        .arg("--initrd")
        .arg(&images.initramfs)
        .args(["--append", APPEND]);
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-M", "pc", "-m", "256M", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&images.kernel)
        .arg("-initrd")
        .arg(&images.initramfs)
        .args(["-append", APPEND]);
    let turing = boot_to_shell(GuestSession::spawn(turing));
    let qemu = boot_to_shell(GuestSession::spawn(qemu));
    println!("debian amd64 linux on pc, SeaBIOS and -kernel (seconds; ratio = turing / qemu):");
    println!(
        "  boot to shell prompt: interpreter {turing:.2} ({:.2}x), qemu {qemu:.2}",
        turing / qemu
    );
}
