//! Guest workloads for benchmarks. The benchmark programs live in `guest/`; the
//! comparison with QEMU is the `guest_vs_qemu` bench (`cargo xtask bench`).
#![deny(missing_docs)]
