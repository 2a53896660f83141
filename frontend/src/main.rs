//! The `turing` command.

fn main() {
    std::process::exit(frontend::cli::main());
}
