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
