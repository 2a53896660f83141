//! The built-in demo guest's committed blob is exactly what its source builds to.

use std::process::Command;

use tests::{CROSS_GCC, build_dir, repo_root, require_tool};

#[test]
fn demo_guest_blob_matches_its_source() {
    require_tool(CROSS_GCC);
    let out = build_dir("demo");
    let script = repo_root().join("firmware/demo/build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("run build.sh");
    assert!(status.success(), "firmware/demo/build.sh failed");
    let rebuilt = std::fs::read(out.join("demo.bin")).expect("rebuilt demo.bin");
    let committed =
        std::fs::read(repo_root().join("firmware/demo/demo.bin")).expect("committed demo.bin");
    assert!(!committed.is_empty());
    assert!(
        rebuilt == committed,
        "firmware/demo/demo.bin differs from what demo.S builds to; run firmware/demo/build.sh and commit the result"
    );
}

#[test]
fn sbi_firmware_blob_matches_its_source() {
    require_tool(CROSS_GCC);
    let out = build_dir("sbi");
    let script = repo_root().join("firmware/sbi/build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("run build.sh");
    assert!(status.success(), "firmware/sbi/build.sh failed");
    let rebuilt = std::fs::read(out.join("turing-sbi.bin")).expect("rebuilt turing-sbi.bin");
    let committed =
        std::fs::read(repo_root().join("firmware/sbi/turing-sbi.bin")).expect("committed blob");
    assert!(!committed.is_empty());
    assert!(
        rebuilt == committed,
        "firmware/sbi/turing-sbi.bin differs from what its sources build to; run firmware/sbi/build.sh and commit the result"
    );
}

/// The SBI test payload (every SBI call, two harts) passes on Turing with the
/// built-in firmware's blob as `--bios`, and on QEMU with the same blob.
#[test]
fn sbi_firmware_passes_its_payload_on_turing_and_qemu() {
    require_tool(CROSS_GCC);
    let out = build_dir("sbi-test");
    let script = repo_root().join("firmware/sbi/test/build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("run build.sh");
    assert!(status.success(), "firmware/sbi/test/build.sh failed");
    let payload = out.join("turing-sbi-test.elf");
    let blob = repo_root().join("firmware/sbi/turing-sbi.bin");
    let turing = tests::turing_command()
        .args([
            "run",
            "--smp",
            "2",
            "--serial",
            "null",
            "--timeout",
            "60",
            "--bios",
        ])
        .arg(&blob)
        .arg("--kernel")
        .arg(&payload)
        .status()
        .expect("run turing");
    assert_eq!(turing.code(), Some(0), "SBI payload on Turing");
    let qemu = tests::run_on_qemu(&payload, Some(&blob), 2, std::time::Duration::from_secs(60));
    assert_eq!(qemu, 0, "SBI payload on QEMU");
}
