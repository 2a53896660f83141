//! The benchmark workloads as static x86-64 programs on the interpreter
//! (small sizes): each checks its own result against the checksum the host
//! computed, so a wrong instruction anywhere fails its run.

use tests::x86_user::{X86_WORKLOADS, build_x86_workload, run_x86_static};

#[test]
fn workloads_compute_the_right_checksums() {
    for name in X86_WORKLOADS {
        let program = build_x86_workload(name, true);
        let run = run_x86_static(&program, 2_000_000_000).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "{name}: exit {} after {} instructions",
            run.exit_code, run.instructions
        );
        assert_eq!(run.exit_code, 0, "{name} computed a wrong checksum");
    }
}
