//! The `turing` command.

fn main() {
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
