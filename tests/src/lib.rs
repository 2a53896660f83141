//! Helpers shared by the integration tests: building guest programs with Debian's
//! RISC-V cross toolchain and running them on Turing and on QEMU.
#![deny(missing_docs)]

pub mod images;
pub mod moo;
pub mod x86_debug;
#[cfg(target_arch = "x86_64")]
pub mod x86_host;
pub mod x86_machine;
pub mod x86_user;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use emu_core::sync::LockRecover;

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

/// An empty folder for a test's files, `target/guest/<group>/<name>`, emptied
/// of what an earlier run left.
pub fn fresh_dir(group: &str, name: &str) -> PathBuf {
    let dir = build_dir(group).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's folder");
    dir
}

/// The cross compiler for bare-metal guests.
pub const CROSS_GCC: &str = "riscv64-unknown-elf-gcc";

/// Width, height and RGB bytes of a PNG (screenshots and golden images).
pub fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Debian's cross compiler for riscv64 Linux programs (user-mode tests).
pub const LINUX_GCC: &str = "riscv64-linux-gnu-gcc";

/// Where Debian's riscv64 cross libc lives: a sysroot for dynamically linked
/// programs built with [`LINUX_GCC`].
pub const CROSS_SYSROOT: &str = "/usr/riscv64-linux-gnu";

/// Builds a riscv64 Linux program from C `source` with [`LINUX_GCC`] and `flags`;
/// returns the executable's path (named after the source and `variant`).
pub fn build_linux_program(source: &Path, variant: &str, flags: &[&str]) -> PathBuf {
    require_tool(LINUX_GCC);
    let name = source
        .file_stem()
        .expect("source has a name")
        .to_string_lossy()
        .into_owned();
    let out = build_dir("user").join(format!("{name}-{variant}"));
    let status = Command::new(LINUX_GCC)
        .args(["-O2", "-Wall", "-Werror"])
        .args(flags)
        .arg(source)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run the riscv64 Linux cross compiler");
    assert!(status.success(), "building {} failed", source.display());
    out
}

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

/// Runs a program on Turing (in this process) with the serial console discarded,
/// under the given engine; returns the exit code. The JIT compiles every block on
/// first entry here, so tests exercise translated code as much as possible.
pub fn run_on_turing(program: &Path, timeout: Duration, accel: emu_core::config::Accel) -> i32 {
    run_on_turing_with_disk(program, None, timeout, accel)
}

/// Like [`run_on_turing`], with `disk` (a raw image) as a writable virtio disk.
pub fn run_on_turing_with_disk(
    program: &Path,
    disk: Option<&Path>,
    timeout: Duration,
    accel: emu_core::config::Accel,
) -> i32 {
    run_on_turing_with(program, disk, 1, timeout, accel)
}

/// Like [`run_on_turing`], on a machine with `harts` harts (each on a host
/// thread of its own).
pub fn run_on_turing_smp(
    program: &Path,
    harts: u32,
    timeout: Duration,
    accel: emu_core::config::Accel,
) -> i32 {
    run_on_turing_with(program, None, harts, timeout, accel)
}

fn run_on_turing_with(
    program: &Path,
    disk: Option<&Path>,
    harts: u32,
    timeout: Duration,
    accel: emu_core::config::Accel,
) -> i32 {
    let drive = disk.map(|path| emu_core::config::DriveSpec {
        id: None,
        file: path.to_owned(),
        read_only: false,
        interface: emu_core::config::DriveInterface::MachineDefault,
        media: emu_core::config::DriveMedia::Disk,
        index: None,
    });
    let args = frontend::cli::RunArgs {
        drive: drive.into_iter().collect(),
        kernel: Some(program.to_owned()),
        serial: Some(emu_core::config::SerialBackend::Null),
        timeout: Some(timeout.as_secs_f64()),
        accel: Some(accel),
        smp: Some(harts),
        jit_threshold: 1,
        display: Some(frontend::window::DisplayChoice::None),
        ..frontend::cli::RunArgs::default()
    };
    match frontend::cli::run(&args) {
        Ok(code) => code,
        Err(message) => panic!("turing refused {}: {message}", program.display()),
    }
}

/// Runs a program on qemu-system-riscv64's virt board with `harts` harts, after
/// `bios` (or directly in M-mode with `None`); returns the exit code.
pub fn run_on_qemu(program: &Path, bios: Option<&Path>, harts: u32, timeout: Duration) -> i32 {
    run_on_qemu_with_disk(program, bios, None, harts, timeout)
}

/// Like [`run_on_qemu`], with `disk` (a raw image) as a writable virtio-blk disk
/// on a modern (version 2) virtio-mmio slot, as Turing has it.
pub fn run_on_qemu_with_disk(
    program: &Path,
    bios: Option<&Path>,
    disk: Option<&Path>,
    harts: u32,
    timeout: Duration,
) -> i32 {
    require_tool("qemu-system-riscv64");
    let mut command = Command::new("timeout");
    command
        .arg(timeout.as_secs().max(1).to_string())
        .args(["qemu-system-riscv64", "-M", "virt", "-m", "256M", "-smp"])
        .arg(harts.to_string())
        .args([
            "-display", "none", "-serial", "null", "-monitor", "none", "-bios",
        ]);
    match bios {
        Some(path) => command.arg(path),
        None => command.arg("none"),
    };
    if let Some(disk) = disk {
        command
            .args(["-global", "virtio-mmio.force-legacy=false", "-drive"])
            .arg(format!(
                "file={},format=raw,if=none,id=disk0",
                disk.display()
            ))
            .args(["-device", "virtio-blk-device,drive=disk0"]);
    }
    let status = command
        .arg("-kernel")
        .arg(program)
        .status()
        .expect("run qemu");
    status.code().unwrap_or(-1)
}

/// The `turing` binary of this build profile, built on first use (integration tests
/// in this package cannot name another package's binary directly).
pub fn turing_binary() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/turing
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder");
    let binary = profile_dir.join("turing");
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.args([
            "build",
            "--quiet",
            "--package",
            "frontend",
            "--bin",
            "turing",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let status = command
            .current_dir(repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the turing binary failed");
    });
    binary
}

/// A command running the `turing` binary headless: without a display server in
/// its environment it opens no window, even when the tests run on a desktop.
pub fn turing_command() -> Command {
    let mut command = Command::new(turing_binary());
    command.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    command
}

/// A running `turing` process whose serial console the test drives.
#[derive(Debug)]
pub struct GuestSession {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// How much of the output earlier expectations consumed.
    consumed: usize,
}

impl GuestSession {
    /// Starts `turing run ARGS` with the console on pipes.
    pub fn start(args: &[&str]) -> GuestSession {
        let mut command = turing_command();
        command.arg("run").args(args);
        GuestSession::spawn(command)
    }

    /// Starts any emulator command whose standard input and output are the guest's
    /// serial console (for side-by-side runs with QEMU).
    pub fn spawn(command: Command) -> GuestSession {
        GuestSession::spawn_with_stderr(command, std::process::Stdio::inherit())
    }

    /// Like [`GuestSession::spawn`], with the emulator's stderr sent to `stderr`.
    pub fn spawn_with_stderr(mut command: Command, stderr: std::process::Stdio) -> GuestSession {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start turing");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock_recover().extend_from_slice(&buf[..n]);
            }
        });
        let stdin = child.stdin.take();
        GuestSession {
            child,
            stdin,
            output,
            consumed: 0,
        }
    }

    /// Everything the guest printed so far.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output.lock_recover()).into_owned()
    }

    /// The output not consumed yet up to and including `needle`, consumed,
    /// if `needle` is there.
    fn take_through(&mut self, needle: &str) -> Option<String> {
        let out = self.output.lock_recover();
        let text = String::from_utf8_lossy(&out[self.consumed.min(out.len())..]).into_owned();
        let end = text.find(needle)? + needle.len();
        self.consumed += text[..end].len();
        Some(text[..end].to_owned())
    }

    /// Like [`GuestSession::expect`], but `None` after `timeout` with the guest
    /// still running, for a test that acts again when the guest missed an input.
    pub fn try_expect(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(text) = self.take_through(needle) {
                return Some(text);
            }
            if std::time::Instant::now() >= deadline || matches!(self.child.try_wait(), Ok(Some(_)))
            {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `needle` appears in output not consumed yet; returns the text up
    /// to and including it. Panics with the transcript after `timeout`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(text) = self.take_through(needle) {
                return text;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "timed out waiting for {needle:?}; output so far:\n{}",
                    self.transcript()
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                let text = self.transcript();
                if text[self.consumed.min(text.len())..].contains(needle) {
                    continue;
                }
                panic!("turing exited ({status}) before {needle:?}; output:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types a line into the guest console.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write to guest");
        stdin.write_all(b"\n").expect("write to guest");
        stdin.flush().expect("flush guest input");
    }

    /// Waits for the process to end; returns its exit code.
    pub fn wait(mut self, timeout: Duration) -> i32 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("turing did not exit; output:\n{}", self.transcript());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GuestSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The benchmark workloads in `benches/guest/workloads/`, each `NAME.c`.
pub const WORKLOADS: &[&str] = &[
    "crc32",
    "sort",
    "matmul",
    "pointer_chase",
    "bytecode",
    "memops",
    "fp",
];

/// Flags both builds of a workload share: -O2, and no rewriting of loops into
/// library calls or of multiply-adds into fused ones, so the bare-metal and the
/// native build run the same arithmetic; square roots are instructions, with no
/// call into a C library to set errno.
pub(crate) const WORKLOAD_FLAGS: &[&str] = &[
    "-O2",
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-ffp-contract=off",
    "-fno-math-errno",
];

/// Builds a workload for bare-metal riscv64 (with `small` sizes for quick
/// correctness runs); returns the ELF path.
pub fn build_workload(name: &str, small: bool) -> PathBuf {
    require_tool(CROSS_GCC);
    let root = repo_root();
    let suffix = if small { "-small" } else { "" };
    let out = build_dir("workloads").join(format!("{name}{suffix}.elf"));
    let status = Command::new(CROSS_GCC)
        .args(WORKLOAD_FLAGS)
        .args(["-march=rv64gc_zicsr", "-mabi=lp64d", "-mcmodel=medany"])
        .args(["-ffreestanding", "-nostdlib", "-static"])
        .args(["-Wl,--no-warn-rwx-segments", "-Wl,--build-id=none"])
        .args(small.then_some("-DSMALL"))
        .arg("-T")
        .arg(root.join("tests/guest/common/link.ld"))
        .arg(root.join("benches/guest/start.S"))
        .arg(root.join(format!("benches/guest/workloads/{name}.c")))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run the cross compiler");
    assert!(status.success(), "building workload {name} failed");
    out
}

/// Builds a workload as a Linux program for the host; returns its path.
pub fn build_native_workload(name: &str) -> PathBuf {
    require_tool("cc");
    let out = build_dir("workloads").join(format!("{name}.native"));
    let status = Command::new("cc")
        .args(WORKLOAD_FLAGS)
        .arg("-DNATIVE")
        .arg(repo_root().join(format!("benches/guest/workloads/{name}.c")))
        .arg("-o")
        .arg(&out)
        // fma() where the host has no fused multiply-add instruction.
        .arg("-lm")
        .status()
        .expect("run the host compiler");
    assert!(status.success(), "building native workload {name} failed");
    out
}
