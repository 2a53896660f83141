//! Project tasks, run as `cargo xtask TASK`:
//!
//! - `setup`: install what building and testing need (Debian packages), idempotently
//! - `run [ARGS..]`: set up, build, and `turing run ARGS` (no ARGS: the demo guest)
//! - `images [--programs]`: set up, then build the Debian riscv64 guest images
//!   (cached); with `--programs`, also the real-program benchmark's disk image
//! - `test`: set up, build the images, then format check, clippy and all tests
//! - `bench`: set up, then the bare-metal, Linux and real-program benchmarks against
//!   QEMU

mod apt_sources;
mod grub_images;
mod images;
mod programs;
mod x86_images;

use std::process::{Command, ExitCode};

/// Debian packages the project needs: the bare-metal cross toolchain for guest
/// programs, QEMU as the reference machine, dtc to check device trees, gdb to
/// drive the gdbstub in tests.
const PACKAGES: &[&str] = &[
    "gcc-riscv64-unknown-elf",
    "binutils-riscv64-unknown-elf",
    "qemu-system-misc",
    "device-tree-compiler",
    "debian-archive-keyring",
    "e2fsprogs",
    "xz-utils",
    "gdb-multiarch",
    // The window under a virtual X server: Xvfb, Mesa's software Vulkan driver for
    // pixels (wgpu), the X libraries winit loads at run time, and the X tools the
    // window tests drive it with.
    "xvfb",
    "xauth",
    "mesa-vulkan-drivers",
    "libvulkan1",
    "libxkbcommon-x11-0",
    "libxcursor1",
    "libxrandr2",
    "libxi6",
    "libx11-xcb1",
    "xdotool",
    "x11-apps",
    // `turing user`: Debian's riscv64 Linux cross compiler for test programs,
    // QEMU's user mode to compare with, and a host busybox for reference output.
    "gcc-riscv64-linux-gnu",
    "libc6-dev-riscv64-cross",
    "qemu-user",
    "busybox-static",
    // cpu-x86: nasm for the x86 system-level guest programs, and QEMU's PC
    // to check that they pass on real-hardware behaviour too.
    "nasm",
    "qemu-system-x86",
    // The PC's default firmware (`bios-256k.bin`) and VGA BIOSes, and QEMU's
    // option ROM that boots a --kernel through fw_cfg.
    "seabios",
    "qemu-system-data",
    // The PC's bootable GRUB disk and CD-ROM images: GRUB's BIOS platform,
    // mtools for the FAT partition and xorriso for the ISO.
    "grub-pc-bin",
    "mtools",
    "xorriso",
    // Networks: tcpdump reads the captures NICs write (pcap=FILE).
    "tcpdump",
];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "setup" => setup(),
        "run" => setup().and_then(|()| run(&rest)),
        "test" => setup().and_then(|()| test()),
        "bench" => setup().and_then(|()| bench(&rest)),
        "images" => setup().and_then(|()| images(&rest)),
        _ => Err(format!(
            "unknown task '{task}': expected setup, run [ARGS..], images, test or bench"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Installs missing Debian packages; does nothing when all are present.
fn setup() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = command
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("apt-get {} failed", args.join(" ")))
        }
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}

fn cargo(args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut full = vec![
        "run",
        "--release",
        "--quiet",
        "--package",
        "frontend",
        "--bin",
        "turing",
        "--",
        "run",
    ];
    full.extend(args.iter().map(String::as_str));
    cargo(&full)
}

fn test() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    images::build()?;
    x86_images::build()?;
    cargo_test(&["test", "--workspace", "--", "--nocapture"])
}

/// Runs cargo test, passing its output through, and ends with one line totalling
/// every test binary's results (cargo prints a result line per binary, the last of
/// which is often an empty doc-test run).
fn cargo_test(args: &[&str]) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut child = Command::new(env!("CARGO"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count_before(rest, " passed");
                failed += count_before(rest, " failed");
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    println!("tests: {passed} passed, {failed} failed");
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

/// The number just before `label` in a cargo result line ("ok. 12 passed; 0 failed").
fn count_before(text: &str, label: &str) -> u64 {
    text.find(label)
        .and_then(|end| text[..end].rsplit([' ', '.']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn images(args: &[String]) -> Result<(), String> {
    match args {
        [] => images::build().and_then(|()| x86_images::build()),
        [flag] if flag == "--programs" => images::build()
            .and_then(|()| x86_images::build())
            .and_then(|()| programs::build().map(drop)),
        _ => Err(format!(
            "unknown images arguments '{}': expected nothing or --programs",
            args.join(" ")
        )),
    }
}

fn bench(args: &[String]) -> Result<(), String> {
    cargo(&[
        "build",
        "--release",
        "--package",
        "frontend",
        "--bin",
        "turing",
    ])?;
    images::build()?;
    x86_images::build()?;
    programs::build()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let turing = root.join("target/release/turing");
    for bench in [
        "workloads",
        "guest_vs_qemu",
        "linux_vs_qemu",
        "user_vs_qemu",
        "user_programs_vs_qemu",
        "programs_vs_qemu",
        "x86_interpreter_vs_qemu",
        "pc_vs_qemu",
        "network_vs_qemu",
    ] {
        let mut full = vec!["bench", "--package", "benches", "--bench", bench, "--"];
        full.extend(args.iter().map(String::as_str));
        eprintln!("xtask: cargo {}", full.join(" "));
        let status = Command::new(env!("CARGO"))
            .args(&full)
            .env("TURING_BIN", &turing)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("the {bench} benchmark failed"));
        }
    }
    Ok(())
}
