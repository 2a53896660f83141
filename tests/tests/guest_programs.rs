//! Every guest test program in `tests/guest/` runs on Turing (interpreter and JIT)
//! and on QEMU, and must pass on all three: the QEMU run shows the test itself
//! expects what real hardware does, and the two engines must agree. Programs in `tests/guest/turing_only/` check Turing behaviour that QEMU
//! does not share (documented in each file) and run on Turing alone.

use std::path::PathBuf;
use std::time::Duration;

use emu_core::config::Accel;
use tests::{
    build_guest_test, repo_root, run_on_qemu, run_on_qemu_with_disk, run_on_turing,
    run_on_turing_smp, run_on_turing_with_disk,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn sources(folder: &str) -> Vec<PathBuf> {
    let dir = repo_root().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "S"))
        .collect();
    files.sort();
    files
}

#[test]
fn guest_programs_pass_on_turing_and_qemu() {
    let programs = sources("tests/guest");
    assert!(
        programs.len() >= 10,
        "expected the guest test programs, found {}",
        programs.len()
    );
    let mut failures = Vec::new();
    for source in &programs {
        let name = source.file_stem().unwrap().to_string_lossy().into_owned();
        let elf = build_guest_test(source);
        let turing = run_on_turing(&elf, TIMEOUT, Accel::Interp);
        let jit = run_on_turing(&elf, TIMEOUT, Accel::Jit);
        let qemu = run_on_qemu(&elf, None, 1, TIMEOUT);
        println!("{name:<16} interp: {turing:>3}  jit: {jit:>3}  qemu: {qemu:>3}");
        if turing != 0 {
            failures.push(format!(
                "{name}: fails on Turing's interpreter at check {turing}"
            ));
        }
        if jit != 0 {
            failures.push(format!("{name}: fails on Turing's JIT at check {jit}"));
        }
        if qemu != 0 {
            failures.push(format!("{name}: fails on QEMU with exit code {qemu}"));
        }
    }
    println!(
        "guest programs: {} ran on Turing (interpreter and JIT) and QEMU, {} failures",
        programs.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "guest program failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn turing_only_guest_programs_pass() {
    let programs = sources("tests/guest/turing_only");
    let mut failures = Vec::new();
    for source in &programs {
        let name = source.file_stem().unwrap().to_string_lossy().into_owned();
        let elf = build_guest_test(source);
        for accel in [Accel::Interp, Accel::Jit] {
            let code = run_on_turing(&elf, TIMEOUT, accel);
            println!("{name:<16} {accel:?}: {code:>3}");
            if code != 0 {
                failures.push(format!(
                    "{name}: fails on Turing ({accel:?}) at check {code}"
                ));
            }
        }
    }
    println!(
        "turing-only guest programs: {} ran, {} failures",
        programs.len(),
        failures.len()
    );
    assert!(!programs.is_empty());
    assert!(
        failures.is_empty(),
        "guest program failures:\n{}",
        failures.join("\n")
    );
}

/// Builds every program in `folder` and runs it with `run`, which returns the
/// exit codes on Turing's interpreter, Turing's JIT and QEMU; fails naming each
/// program and engine that did not exit with 0.
fn every_program_passes_on_three_engines(
    folder: &str,
    what: &str,
    run: impl Fn(&std::path::Path, &str) -> [i32; 3],
) {
    let programs = sources(folder);
    assert!(!programs.is_empty());
    let mut failures = Vec::new();
    for source in &programs {
        let name = source.file_stem().unwrap().to_string_lossy().into_owned();
        let elf = build_guest_test(source);
        let [interp, jit, qemu] = run(&elf, &name);
        println!("{name:<16} interp: {interp:>3}  jit: {jit:>3}  qemu: {qemu:>3}");
        for (engine, code) in [
            ("Turing's interpreter", interp),
            ("Turing's JIT", jit),
            ("QEMU", qemu),
        ] {
            if code != 0 {
                failures.push(format!("{name}: fails on {engine} with exit code {code}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{what} failures:\n{}",
        failures.join("\n")
    );
}

/// Programs in `tests/guest/smp/` run on four harts: Turing's (each on a host
/// thread, interpreter and JIT) and QEMU's (MTTCG).
#[test]
fn four_hart_guest_programs_pass_on_turing_and_qemu() {
    const HARTS: u32 = 4;
    every_program_passes_on_three_engines(
        "tests/guest/smp",
        "four-hart guest program",
        |elf, _| {
            [
                run_on_turing_smp(elf, HARTS, TIMEOUT, Accel::Interp),
                run_on_turing_smp(elf, HARTS, TIMEOUT, Accel::Jit),
                run_on_qemu(elf, None, HARTS, TIMEOUT),
            ]
        },
    );
}

/// Programs in `tests/guest/drive/` drive a virtio-blk disk themselves; each gets
/// a fresh empty image, on Turing (both engines) and on QEMU.
#[test]
fn disk_guest_programs_pass_on_turing_and_qemu() {
    let disk_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-disks");
    std::fs::create_dir_all(&disk_dir).unwrap();
    let fresh_disk = |name: &str| {
        let path = disk_dir.join(format!("{name}.img"));
        std::fs::write(&path, vec![0u8; 64 * 1024]).unwrap();
        path
    };
    every_program_passes_on_three_engines(
        "tests/guest/drive",
        "disk guest program",
        |elf, name| {
            [
                run_on_turing_with_disk(elf, Some(&fresh_disk(name)), TIMEOUT, Accel::Interp),
                run_on_turing_with_disk(elf, Some(&fresh_disk(name)), TIMEOUT, Accel::Jit),
                run_on_qemu_with_disk(elf, None, Some(&fresh_disk(name)), 1, TIMEOUT),
            ]
        },
    );
}
