//! The `turing` command.

fn main() {
    if std::env::var_os("TURING_PERF_MAP").is_some() {
        // `perf record` sets PERF_BUILDID_DIR, which makes cranelift-jit add its
        // own anonymous names (`.Lfn1a`) to the map first, and perf shows those
        // instead of the guest pcs the JIT's profile map gives.
        // SAFETY: the first thing main does, before any thread exists, so no
        // other code can be reading the environment.
        unsafe { std::env::remove_var("PERF_BUILDID_DIR") };
    }
    let args: Vec<String> = std::env::args().collect();
    let called = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str());
    if called == Some(frontend::user::BINFMT_NAME) {
        std::process::exit(frontend::user::binfmt_main(args));
    }
    std::process::exit(frontend::cli::main());
}
