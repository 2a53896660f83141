//! User-mode emulation against QEMU's: Debian's riscv64 busybox computing
//! `sha256sum` of the same 64 MiB file under `turing user` and `qemu-riscv64`,
//! and the host's busybox natively, in one run; prints the times and ratios.
//!
//! `cargo xtask bench` runs it; `cargo bench -p benches --bench user_vs_qemu`
//! alone works too.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::images::debian_images;

const SIZE: usize = 64 << 20;
/// Runs per engine; the best time counts (the least disturbed by the machine).
const RUNS: usize = 3;

fn turing_binary() -> PathBuf {
    std::env::var_os("TURING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests::repo_root().join("target/release/turing"))
}

/// 64 MiB of varied bytes (a linear congruential sequence), the same every run.
fn input_file() -> PathBuf {
    let path = tests::build_dir("bench").join("sha256-input.bin");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == SIZE as u64) {
        return path;
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    std::fs::write(&path, data).expect("write the input");
    path
}

/// Best wall time of `RUNS` runs of `command`, and its output (a digest line).
fn time(what: &str, make: impl FnMut() -> Command) -> (f64, String) {
    let (best, stdout) = benches::best_of(what, RUNS, make);
    (best, String::from_utf8_lossy(&stdout).into_owned())
}

fn digest(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

fn main() {
    let busybox = debian_images().busybox;
    let input = input_file();
    let sha = |program: &Path, args: &[&Path]| {
        let mut c = Command::new(program);
        c.args(args);
        c
    };
    let turing = turing_binary();
    let (turing_s, turing_out) = time("turing user", || {
        let mut c = Command::new(&turing);
        c.args(["user", "--"])
            .arg(&busybox)
            .arg("sha256sum")
            .arg(&input);
        c
    });
    let (qemu_s, qemu_out) = time("qemu-riscv64", || {
        sha(
            Path::new("qemu-riscv64"),
            &[&busybox, Path::new("sha256sum"), &input],
        )
    });
    let (native_s, native_out) = time("native busybox", || {
        sha(Path::new("busybox"), &[Path::new("sha256sum"), &input])
    });
    assert_eq!(
        digest(&turing_out),
        digest(&native_out),
        "turing's digest is wrong"
    );
    assert_eq!(
        digest(&qemu_out),
        digest(&native_out),
        "qemu's digest is wrong"
    );
    println!("sha256sum of 64 MiB with Debian's riscv64 busybox (best of {RUNS}):");
    println!("  turing user     {turing_s:7.3} s");
    println!("  qemu-riscv64    {qemu_s:7.3} s");
    println!("  native busybox  {native_s:7.3} s");
    println!(
        "  turing/qemu {:.2} (target 0.7), turing/native {:.1}, qemu/native {:.1}",
        turing_s / qemu_s,
        turing_s / native_s,
        qemu_s / native_s
    );
}
