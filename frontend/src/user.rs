//! `turing user`: run a riscv64 Linux program directly on the host, and the
//! binfmt_misc entry point (`turing-riscv64`).

use std::path::PathBuf;

use emu_core::config::Accel;
use linux_user::{Process, ProcessEnd, UserOptions, binfmt_line};

use crate::cli::DEFAULT_JIT_THRESHOLD;

/// The name under which this binary acts as `turing user` for binfmt_misc.
pub const BINFMT_NAME: &str = "turing-riscv64";

/// Flags of `turing user`.
#[derive(Debug, Default, clap::Args)]
pub struct UserArgs {
    /// Look absolute paths (the dynamic loader, libraries, files) up in this
    /// riscv64 root first, as QEMU's -L.
    #[arg(long, short = 'L', value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// Set K=V in the program's environment (which is otherwise the host's);
    /// repeatable.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Print each system call with its arguments and result on stderr.
    #[arg(long)]
    pub strace: bool,
    /// The program's argv[0] (default: PROGRAM as given).
    #[arg(long, value_name = "NAME")]
    pub argv0: Option<String>,
    /// CPU engine: jit (the default) or interp.
    #[arg(long, value_name = "ENGINE")]
    pub accel: Option<Accel>,
    /// At exit, print the main thread's instruction count, speed and translator
    /// statistics on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Print the binfmt_misc registration line for riscv64 programs and exit.
    #[arg(long, exclusive = true)]
    pub binfmt_line: bool,
    /// The riscv64 program and its arguments.
    #[arg(
        value_name = "PROGRAM [ARGS]",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "binfmt_line"
    )]
    pub command: Vec<String>,
}

/// Runs `turing user`; returns the exit code (the guest's), or Err for bad input.
pub fn user(args: &UserArgs) -> Result<i32, String> {
    if args.binfmt_line {
        let me = std::env::current_exe()
            .map_err(|e| format!("cannot find the turing executable: {e}"))?;
        let interpreter = me.with_file_name(BINFMT_NAME);
        println!("{}", binfmt_line(&interpreter));
        return Ok(0);
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err("turing user needs a PROGRAM".to_owned());
    };
    let mut env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v.to_str()?)))
        .collect();
    for setting in &args.env {
        let Some((key, _)) = setting.split_once('=') else {
            return Err(format!("invalid --env {setting:?}: expected K=V"));
        };
        env.retain(|e| e.split_once('=').is_none_or(|(k, _)| k != key));
        env.push(setting.clone());
    }
    let options = UserOptions {
        sysroot: args.sysroot.clone(),
        argv0: args.argv0.clone(),
        strace: args.strace,
        jit_threshold: match args.accel.unwrap_or_default() {
            Accel::Jit => Some(DEFAULT_JIT_THRESHOLD),
            Accel::Interp => None,
        },
    };
    if let Some(root) = &options.sysroot
        && !root.is_dir()
    {
        return Err(format!("sysroot {} is not a directory", root.display()));
    }
    let mut process = Process::load(program.as_ref(), rest, &env, &options)?;
    let started = std::time::Instant::now();
    let end = process.run();
    if args.stats {
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = process.main_cpu();
        let retired = cpu.instructions_retired();
        eprintln!(
            "turing: stats: main thread: {retired} instructions in {elapsed:.3} s, {:.1} MIPS",
            retired as f64 / elapsed.max(1e-9) / 1e6
        );
        if let Some(jit) = cpu.jit_stats() {
            eprintln!("turing: stats: {jit}");
            let translating = jit.compile_time.as_secs_f64();
            eprintln!(
                "turing: stats: translation took {translating:.3} s, {:.1}% of the run",
                100.0 * translating / elapsed.max(1e-9)
            );
        }
    }
    match end {
        ProcessEnd::Exited(code) => Ok(code & 0xff),
        ProcessEnd::Signaled(signal) => {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            // End the way the guest was ended, so the shell sees the signal.
            // SAFETY: restoring the default action and raising a signal in our
            // own process; nothing of ours runs as a handler.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
            Ok(128 + signal)
        }
    }
}

/// Entry point when run as `turing-riscv64` by binfmt_misc with the P flag:
/// `turing-riscv64 FULL-PATH ARGV0 ARGS...`.
pub fn binfmt_main(args: Vec<String>) -> i32 {
    let mut it = args.into_iter().skip(1);
    let (Some(path), Some(argv0)) = (it.next(), it.next()) else {
        eprintln!("turing: {BINFMT_NAME} is run by binfmt_misc: {BINFMT_NAME} PATH ARGV0 [ARGS]");
        return crate::cli::EXIT_USAGE;
    };
    let mut command = vec![path];
    command.extend(it);
    let args = UserArgs {
        argv0: Some(argv0),
        command,
        ..UserArgs::default()
    };
    match user(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("turing: error: {message}");
            crate::cli::EXIT_USAGE
        }
    }
}
