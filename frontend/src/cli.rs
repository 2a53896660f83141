//! The command line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use emu_core::RunControl;
use emu_core::config::{Accel, BiosChoice, ByteSize, DriveSpec, MachineSpec, SerialBackend};

use crate::console::Console;
use crate::machines::riscv_virt::RiscvVirt;
use crate::machines::{MACHINES, MachineError, RunOutcome};

/// Exit code for bad input (files, flags, configs), as clap uses for bad flags.
pub const EXIT_USAGE: i32 = 2;
/// Block entries before the JIT compiles a block: Cranelift costs about 60 µs per
/// guest instruction, so only code that runs often repays it (measured on the Linux
/// boot: 16 -> 22.7 s, 300 -> 20.9 s, 1000 -> 19.3 s to the shell prompt).
pub const DEFAULT_JIT_THRESHOLD: u32 = 500;

/// Exit code when `--timeout` expires, as timeout(1) uses.
pub const EXIT_TIMEOUT: i32 = 124;

/// Turing: a full-system emulator.
#[derive(Debug, Parser)]
#[command(name = "turing", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a machine. With no arguments, boots the built-in demo guest.
    Run(RunArgs),
}

/// Flags of `turing run`; each overrides the same key of `--config`.
#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// Machine model.
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// Program to boot: an RV64 ELF (loaded at its physical addresses) or raw code
    /// (loaded at the start of RAM).
    #[arg(long, value_name = "PROG")]
    pub kernel: Option<PathBuf>,
    /// Firmware image, or `none` to start the kernel directly in M-mode.
    #[arg(long, value_name = "FILE|none")]
    pub bios: Option<BiosChoice>,
    /// Guest RAM size, e.g. 256M or 1G.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// Number of harts (1 to 8).
    #[arg(long, value_name = "N")]
    pub smp: Option<u32>,
    /// Serial console: stdio, file:PATH or null.
    #[arg(long, value_name = "BACKEND")]
    pub serial: Option<SerialBackend>,
    /// Stop after this many seconds of wall time with exit code 124.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Initial RAM disk for a Linux kernel.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "ARGS")]
    pub append: Option<String>,
    /// A virtio disk: file=PATH[,format=raw][,readonly=on]. Repeatable.
    #[arg(long, value_name = "SPEC")]
    pub drive: Vec<DriveSpec>,
    /// CPU engine: jit (the default: Cranelift for hot blocks) or interp.
    #[arg(long, value_name = "ENGINE")]
    pub accel: Option<Accel>,
    /// Times a block runs in the interpreter before the JIT compiles it.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JIT_THRESHOLD)]
    pub jit_threshold: u32,
    /// Machine configuration file (TOML) with the same keys as these flags.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the generated device tree blob to FILE before booting.
    #[arg(long, value_name = "FILE")]
    pub dump_dtb: Option<PathBuf>,
    /// Print instructions retired, run time and guest MIPS on exit (to stderr).
    #[arg(long)]
    pub stats: bool,
}

impl RunArgs {
    fn spec(&self) -> MachineSpec {
        MachineSpec {
            machine: self.machine.clone(),
            kernel: self.kernel.clone(),
            bios: self.bios.clone(),
            memory: self.memory,
            smp: self.smp,
            serial: self.serial.clone(),
            timeout: self.timeout,
            initrd: self.initrd.clone(),
            append: self.append.clone(),
            drive: (!self.drive.is_empty()).then(|| self.drive.clone()),
            accel: self.accel,
        }
    }
}

/// Parses the process arguments and runs; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, like every other input error (clap adds a usage hint).
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("turing: {first}");
            return EXIT_USAGE;
        }
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Run(args) => match run(&args) {
            Ok(code) => code,
            Err(message) => {
                eprintln!("turing: error: {message}");
                EXIT_USAGE
            }
        },
    }
}

/// What a finished run reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunReport {
    /// The process exit code.
    pub exit_code: i32,
    /// Guest instructions retired, all harts.
    pub instructions: u64,
    /// Wall time the machine ran, in seconds (set-up excluded).
    pub seconds: f64,
}

/// Runs `turing run` with `args`: Ok(exit code) once the guest stopped, Err(message)
/// for bad input.
pub fn run(args: &RunArgs) -> Result<i32, String> {
    run_measured(args).map(|report| report.exit_code)
}

/// Like [`run`], also reporting instructions and time.
pub fn run_measured(args: &RunArgs) -> Result<RunReport, String> {
    let file = match &args.config {
        Some(path) => MachineSpec::from_file(path).map_err(|e| e.to_string())?,
        None => MachineSpec::default(),
    };
    let config = file
        .overlay(args.spec())
        .resolve()
        .map_err(|e| e.to_string())?;
    if !MACHINES.contains(&config.machine.as_str()) {
        return Err(MachineError::UnknownMachine(config.machine).to_string());
    }
    let control = Arc::new(RunControl::new());
    let console = Console::open(&config.serial, control.clone()).map_err(|e| e.to_string())?;
    let tail = console.tail.clone();
    let mut machine = RiscvVirt::build(&config, console, control, firmware::DEMO_GUEST)
        .map_err(|e| e.to_string())?;
    if config.accel == Accel::Jit {
        // RunArgs built in code (tests) may leave the threshold at zero.
        let threshold = if args.jit_threshold == 0 {
            DEFAULT_JIT_THRESHOLD
        } else {
            args.jit_threshold
        };
        machine.enable_jit(threshold)?;
    }
    if let Some(path) = &args.dump_dtb {
        std::fs::write(path, machine.device_tree())
            .map_err(|e| format!("cannot write device tree to {}: {e}", path.display()))?;
    }
    let limit = config.timeout.map(Duration::from_secs_f64);
    let started = std::time::Instant::now();
    let outcome = machine.run(limit).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::io::stdout().flush();
    if args.stats {
        let retired = machine.instructions_retired();
        eprintln!(
            "turing: stats: {retired} instructions in {elapsed:.3} s, {:.1} MIPS",
            retired as f64 / elapsed.max(1e-9) / 1e6
        );
        if let Some(jit) = machine.jit_stats() {
            let per_insn =
                jit.compile_time.as_secs_f64() * 1e6 / jit.instructions_compiled.max(1) as f64;
            eprintln!(
                "turing: stats: jit: {} blocks ({} instructions) compiled in {:.3} s ({per_insn:.1} µs per guest instruction); {} blocks entered from dispatch and {} by chaining, {} interpreted; {} invalidations, {} cache flushes",
                jit.blocks_compiled,
                jit.instructions_compiled,
                jit.compile_time.as_secs_f64(),
                jit.blocks_run,
                jit.chained,
                jit.blocks_interpreted,
                jit.invalidations,
                jit.cache_flushes
            );
        }
    }
    let exit_code = match outcome {
        RunOutcome::PoweredOff(code) => code,
        RunOutcome::Stopped => 0,
        RunOutcome::TimedOut => {
            report_timeout(&mut machine, &tail, config.timeout.unwrap_or_default());
            EXIT_TIMEOUT
        }
    };
    Ok(RunReport {
        exit_code,
        instructions: machine.instructions_retired(),
        seconds: elapsed,
    })
}

/// Tells where the guest was when the time limit passed.
fn report_timeout(machine: &mut RiscvVirt, tail: &crate::console::SerialTail, seconds: f64) {
    let mut report = format!("\nturing: timeout after {seconds} s\n");
    for (id, trace) in machine.trace_tail(8) {
        let hart = &machine.harts()[id as usize];
        report += &format!(
            "  hart {id}: pc {:#x}, {}-mode; instructions executed:\n",
            hart.state.pc,
            cpu_riscv::csr::privilege_name(hart.state.privilege)
        );
        for entry in trace {
            report += &format!(
                "    {:#014x} [{}] {:?}\n",
                entry.pc,
                cpu_riscv::csr::privilege_name(entry.privilege),
                entry.insn
            );
        }
    }
    let lines = tail.last_lines(5);
    if !lines.is_empty() {
        report += "  last serial output:\n";
        for line in lines {
            report += &format!("    | {line}\n");
        }
    }
    eprint!("{report}");
}
