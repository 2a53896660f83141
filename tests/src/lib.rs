//! Helpers shared by the integration tests: building guest programs with Debian's
//! RISC-V cross toolchain and running them on Turing and on QEMU.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Where built guest programs go (inside the cargo target folder).
pub fn build_dir(name: &str) -> PathBuf {
    let dir = repo_root().join("target").join("guest").join(name);
    std::fs::create_dir_all(&dir).expect("create guest build folder");
    dir
}

/// The cross compiler for bare-metal guests.
pub const CROSS_GCC: &str = "riscv64-unknown-elf-gcc";

/// Fails with a helpful message when a host tool is missing.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed; run `cargo xtask setup` (or `cargo xtask test`)"
    );
}

/// Builds one assembly test program from `tests/guest/NAME.S` with the shared
/// start-up code; returns the ELF path.
pub fn build_guest_test(source: &Path) -> PathBuf {
    require_tool(CROSS_GCC);
    let common = repo_root().join("tests/guest/common");
    let name = source
        .file_stem()
        .expect("source has a name")
        .to_string_lossy()
        .into_owned();
    let out = build_dir("tests").join(format!("{name}.elf"));
    let status = Command::new(CROSS_GCC)
        .args([
            "-march=rv64gc_zicsr_zifencei",
            "-mabi=lp64d",
            "-nostdlib",
            "-nostartfiles",
        ])
        .args([
            "-static",
            "-Wl,--build-id=none",
            "-Wl,--no-warn-rwx-segments",
        ])
        .arg(format!("-I{}", common.display()))
        .arg("-T")
        .arg(common.join("link.ld"))
        .arg(common.join("crt.S"))
        .arg(source)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run the cross compiler");
    assert!(status.success(), "building {} failed", source.display());
    out
}

/// Runs a program on Turing (in this process) with the serial console discarded;
/// returns the exit code.
pub fn run_on_turing(program: &Path, timeout: Duration) -> i32 {
    let args = frontend::cli::RunArgs {
        kernel: Some(program.to_owned()),
        serial: Some(emu_core::config::SerialBackend::Null),
        timeout: Some(timeout.as_secs_f64()),
        ..frontend::cli::RunArgs::default()
    };
    match frontend::cli::run(&args) {
        Ok(code) => code,
        Err(message) => panic!("turing refused {}: {message}", program.display()),
    }
}

/// Runs a program on qemu-system-riscv64's virt board; returns the exit code.
pub fn run_on_qemu(program: &Path, timeout: Duration, extra: &[&str]) -> i32 {
    require_tool("qemu-system-riscv64");
    let status = Command::new("timeout")
        .arg(timeout.as_secs().max(1).to_string())
        .args([
            "qemu-system-riscv64",
            "-M",
            "virt",
            "-bios",
            "none",
            "-m",
            "256M",
        ])
        .args(["-display", "none", "-serial", "null", "-monitor", "none"])
        .args(extra)
        .arg("-kernel")
        .arg(program)
        .status()
        .expect("run qemu");
    status.code().unwrap_or(-1)
}
