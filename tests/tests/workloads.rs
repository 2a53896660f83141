//! The benchmark workloads, at small sizes, check their own results on Turing
//! (interpreter and JIT), on QEMU and natively: the benchmark's figures are only
//! worth something if every engine computes the right answer.

use std::process::Command;
use std::time::Duration;

use emu_core::config::Accel;
use tests::{WORKLOADS, build_workload, run_on_qemu, run_on_turing};

const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn workloads_compute_the_right_results_everywhere() {
    for name in WORKLOADS {
        let elf = build_workload(name, true);
        assert_eq!(
            run_on_turing(&elf, TIMEOUT, Accel::Interp),
            0,
            "{name} on the interpreter"
        );
        assert_eq!(
            run_on_turing(&elf, TIMEOUT, Accel::Jit),
            0,
            "{name} on the JIT"
        );
        assert_eq!(run_on_qemu(&elf, None, 1, TIMEOUT), 0, "{name} on QEMU");
    }
}

#[test]
fn native_workloads_check_their_results() {
    for name in WORKLOADS {
        let program = tests::build_native_workload(name);
        let status = Command::new(&program)
            .status()
            .expect("run native workload");
        assert!(status.success(), "{name} natively");
    }
}
