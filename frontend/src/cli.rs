//! The command line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use emu_core::RunControl;
use emu_core::config::{
    Accel, BiosChoice, ByteSize, DeviceSpec, DriveSpec, MachineSpec, NetdevSpec, SerialBackend,
};

use crate::console::Console;
use crate::machines::{MACHINES, Machine, MachineError, RunOutcome};
use crate::script::{self, OutputFeed, Script, ScriptStatus, Step, read_script_file};
use crate::window::{
    DisplayChoice, MachineState, MachineStatus, Viewer, WindowLink, WindowMessage, WindowNotifier,
};

/// Exit code for bad input (files, flags, configs), as clap uses for bad flags.
pub const EXIT_USAGE: i32 = 2;
/// Block entries before the JIT compiles a block: Cranelift costs about 35 µs per
/// guest instruction, so only code that runs often repays it (measured on the Linux
/// boot with chaining, to the init's ready line: 100 -> 8.7 s, 500 -> 7.9 s,
/// 2000 -> 9.1 s).
pub const DEFAULT_JIT_THRESHOLD: u32 = 500;

/// Exit code when `--timeout` expires, as timeout(1) uses.
pub const EXIT_TIMEOUT: i32 = 124;

/// Turing: a full-system emulator.
#[derive(Debug, Parser)]
#[command(
    name = "turing",
    version,
    about = "Turing: a full-system emulator and binary translator for RISC-V guests"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// What to log (env-filter syntax: warn, info, devices=debug, ...); the default
    /// comes from TURING_LOG, else warnings and errors.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// Write the log to FILE instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a machine. With no arguments, boots the built-in demo guest.
    Run(Box<RunArgs>),
    /// Run a suite of guest cases headless and report verdicts.
    Test(crate::suite::TestArgs),
    /// Run a riscv64 Linux program directly on the host (user-mode emulation).
    User(crate::user::UserArgs),
    /// Run a learning Ethernet switch on a UNIX socket for VMs' stream netdevs.
    Switch(crate::switch::SwitchArgs),
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
    /// CPU model (machines with models: `--machine pc --cpu help` lists them).
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
    /// Guest RAM size, e.g. 256M or 1G.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// Number of harts (1 to 8).
    #[arg(long, value_name = "N")]
    pub smp: Option<u32>,
    /// Serial console: stdio, file:PATH or null.
    #[arg(long, value_name = "BACKEND")]
    pub serial: Option<SerialBackend>,
    /// Debug console, where firmware logs (port 0x402 on pc, as QEMU's
    /// -debugcon): stdio, file:PATH or null (the default).
    #[arg(long, value_name = "BACKEND")]
    pub debugcon: Option<SerialBackend>,
    /// Stop after this many seconds of wall time with exit code 124.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Initial RAM disk for a Linux kernel.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "ARGS")]
    pub append: Option<String>,
    /// A disk: [id=ID,]file=PATH[,format=raw][,readonly=on][,if=virtio|ide|none]
    /// [,media=disk|cdrom][,index=N]. Without if=, the machine's own kind of disk
    /// (virtio on riscv-virt, IDE on pc); with if=none, a --device attaches it.
    /// Repeatable.
    #[arg(long, value_name = "SPEC")]
    pub drive: Vec<DriveSpec>,
    /// A CD-ROM image, as QEMU's -cdrom: the same as
    /// --drive file=FILE,media=cdrom,index=2.
    #[arg(long, value_name = "FILE")]
    pub cdrom: Option<PathBuf>,
    /// Add a device: DRIVER[,key=value]... (virtio-blk-device,drive=ID,
    /// virtio-net-pci,netdev=ID[,mac=MAC], virtio-rng-device). Repeatable.
    #[arg(long, value_name = "DRIVER[,OPTS]")]
    pub device: Vec<DeviceSpec>,
    /// A network backend for a NIC's netdev=ID, as QEMU spells it:
    /// user,id=ID[,hostfwd=tcp:[HOSTADDR]:PORT-[GUESTADDR]:PORT]...[,restrict=on]
    /// (NAT, DHCP from 10.0.2.15, DNS at 10.0.2.3);
    /// stream,id=ID,server=on|off,addr.type=inet|unix,addr.host=H,addr.port=P|addr.path=PATH
    /// (length-prefixed frames, to another VM or `turing switch`);
    /// dgram,id=ID,local.*=...,remote.*=... (a frame per datagram). Each takes
    /// pcap=FILE to capture its frames. Repeatable.
    #[arg(long, value_name = "TYPE,id=ID[,OPTS]")]
    pub netdev: Vec<NetdevSpec>,
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
    /// Write the run's result (exit code, outcome, instructions, time, peak memory)
    /// to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Succeed once REGEX has appeared on the serial output; repeatable, matched
    /// in order.
    #[arg(long, value_name = "REGEX")]
    pub expect: Vec<String>,
    /// Type TEXT and Enter into the serial console once the `--expect` given
    /// before it has matched; repeatable.
    #[arg(long, value_name = "TEXT")]
    pub send: Vec<String>,
    /// How many `--expect`s come before each `--send` on the command line (set
    /// from the parsed arguments; when absent, send i follows expect i).
    #[arg(skip)]
    pub sends_after: Option<Vec<usize>>,
    /// Play a script file of `[[step]]` tables (expect/within, send, exit).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["expect", "send"])]
    pub script: Option<PathBuf>,
    /// Repeatable run: virtual time follows retired instructions; entropy and the
    /// RTC come from the seed.
    #[arg(long)]
    pub deterministic: bool,
    /// Seed of a deterministic run (implies --deterministic; default 0).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Stop with exit code 124 after N guest instructions (all CPUs; an instruction
    /// that traps counts, as does an interrupt taken).
    #[arg(long, value_name = "N")]
    pub max_instructions: Option<u64>,
    /// Where the guest's display goes: window or none (the default is window when
    /// a display server is reachable, none otherwise and with --screenshot).
    #[arg(long, value_name = "KIND")]
    pub display: Option<DisplayChoice>,
    /// Write the guest's display to FILE (PNG) once --screenshot-after matched or
    /// --screenshot-at passed, then stop.
    #[arg(long, value_name = "FILE")]
    pub screenshot: Option<PathBuf>,
    /// Take the screenshot once REGEX appeared on the serial output.
    #[arg(long, value_name = "REGEX", requires = "screenshot")]
    pub screenshot_after: Option<String>,
    /// Take the screenshot after SECONDS of running.
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "screenshot",
        conflicts_with = "screenshot_after"
    )]
    pub screenshot_at: Option<f64>,
    /// Serve the GDB remote protocol: tcp:HOST:PORT (HOST defaults to 127.0.0.1).
    #[arg(long, value_name = "tcp:HOST:PORT")]
    pub gdb: Option<String>,
    /// With --gdb: hold the CPUs at reset until a debugger attaches.
    #[arg(long = "gdb-wait", short = 'S')]
    pub gdb_wait: bool,
    /// Shorthand for --gdb tcp:127.0.0.1:1234, as in QEMU.
    #[arg(short = 's')]
    pub gdb_default: bool,
}

impl RunArgs {
    fn spec(&self) -> MachineSpec {
        MachineSpec {
            machine: self.machine.clone(),
            kernel: self.kernel.clone(),
            bios: self.bios.clone(),
            cpu: self.cpu.clone(),
            memory: self.memory,
            smp: self.smp,
            serial: self.serial.clone(),
            debugcon: self.debugcon.clone(),
            timeout: self.timeout,
            initrd: self.initrd.clone(),
            append: self.append.clone(),
            drive: {
                let drives: Vec<DriveSpec> = self
                    .drive
                    .iter()
                    .cloned()
                    .chain(self.cdrom.clone().map(DriveSpec::cdrom))
                    .collect();
                (!drives.is_empty()).then_some(drives)
            },
            device: (!self.device.is_empty()).then(|| self.device.clone()),
            netdev: (!self.netdev.is_empty()).then(|| self.netdev.clone()),
            accel: self.accel,
            deterministic: self.deterministic.then_some(true),
            seed: self.seed,
            max_instructions: self.max_instructions,
        }
    }

    /// The script the flags describe, if any.
    fn steps(&self) -> Result<Option<Vec<Step>>, String> {
        if let Some(path) = &self.script {
            return read_script_file(path).map(Some);
        }
        if self.expect.is_empty() && self.send.is_empty() {
            return Ok(None);
        }
        let mut steps = Vec::new();
        let mut sends = self.send.iter().enumerate().peekable();
        let after = |i: usize| match &self.sends_after {
            Some(after) => after.get(i).copied().unwrap_or(usize::MAX),
            None => i + 1,
        };
        for (index, pattern) in self.expect.iter().enumerate() {
            while let Some((_, text)) = sends.next_if(|&(i, _)| after(i) <= index) {
                steps.push(Step::Send(text.clone()));
            }
            steps.push(Step::Expect {
                pattern: script::compile(pattern)?,
                within: None,
            });
        }
        steps.extend(sends.map(|(_, text)| Step::Send(text.clone())));
        Ok(Some(steps))
    }
}

/// Parses the process arguments and runs; returns the process exit code.
pub fn main() -> i32 {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let cli = match parsed {
        Ok((mut cli, matches)) => {
            if let (Command::Run(args), Some(run)) =
                (&mut cli.command, matches.subcommand_matches("run"))
            {
                args.sends_after = Some(sends_after(run));
            }
            cli
        }
        Err(e) if e.use_stderr() => {
            // One line, like every other input error (clap adds a usage hint).
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("turing: {first}");
            return EXIT_USAGE;
        }
        Err(e) => e.exit(),
    };
    if let Err(message) = crate::logging::init(cli.log.as_deref(), cli.log_file.as_deref()) {
        eprintln!("turing: error: {message}");
        return EXIT_USAGE;
    }
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Test(args) => crate::suite::test(&args),
        Command::User(args) => crate::user::user(&args),
        Command::Switch(args) => crate::switch::switch(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("turing: error: {message}");
            EXIT_USAGE
        }
    }
}

/// For each `--send`, how many `--expect`s precede it on the command line.
fn sends_after(run: &clap::ArgMatches) -> Vec<usize> {
    let expects: Vec<usize> = run.indices_of("expect").into_iter().flatten().collect();
    run.indices_of("send")
        .into_iter()
        .flatten()
        .map(|at| expects.iter().filter(|&&e| e < at).count())
        .collect()
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
    if !MACHINES.iter().any(|(name, _)| *name == config.machine) {
        return Err(MachineError::UnknownMachine(config.machine).to_string());
    }
    let mut steps = args.steps()?;
    let screenshot_at = match (&args.screenshot, &args.screenshot_after, args.screenshot_at) {
        (None, _, _) => None,
        (Some(_), Some(pattern), None) => {
            // The screenshot is the script's last step.
            steps.get_or_insert_with(Vec::new).push(Step::Expect {
                pattern: script::compile(pattern)?,
                within: None,
            });
            None
        }
        (Some(_), None, Some(seconds)) if seconds.is_finite() && seconds >= 0.0 => {
            Some(Duration::from_secs_f64(seconds))
        }
        (Some(_), None, Some(seconds)) => {
            return Err(format!(
                "invalid --screenshot-at {seconds}: expected a number of seconds"
            ));
        }
        (Some(_), _, _) => {
            return Err(
                "--screenshot needs --screenshot-after REGEX or --screenshot-at SECONDS".to_owned(),
            );
        }
    };
    let feed = steps.as_ref().map(|_| OutputFeed::default());
    let control = Arc::new(RunControl::new());
    let watch_control = control.clone();
    let mut console =
        Console::open(&config.serial, control.clone(), feed.clone()).map_err(|e| e.to_string())?;
    let tail = console.tail.clone();
    let mut script = match (steps, feed, console.script_input.take()) {
        (Some(steps), Some(feed), Some(input)) => Some(Script::new(steps, feed, input)),
        _ => None,
    };
    let mut machine = crate::machines::build(&config, console, control, firmware::DEMO_GUEST)
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
        let tree = machine
            .device_tree()
            .ok_or_else(|| format!("machine {} has no device tree to dump", config.machine))?;
        std::fs::write(path, tree)
            .map_err(|e| format!("cannot write device tree to {}: {e}", path.display()))?;
    }
    let status = Arc::new(MachineStatus::default());
    let display = args.display.unwrap_or(if args.screenshot.is_some() {
        DisplayChoice::None
    } else {
        DisplayChoice::default_for_host()
    });
    let viewer = match display {
        DisplayChoice::None => None,
        DisplayChoice::Window => match Viewer::connect() {
            Ok(viewer) => Some(viewer),
            Err(message) if args.display.is_some() => return Err(message),
            Err(message) => {
                eprintln!("turing: {message}; running headless");
                None
            }
        },
    };
    let notifier = viewer.as_ref().map(Viewer::notifier);
    let link = WindowLink {
        machine: config.machine.clone(),
        screen: machine.screen_source(),
        keyboard: machine.keyboard(),
        tablet: machine.tablet(),
        control: watch_control.clone(),
        status: status.clone(),
    };
    let (drive_status, drive_notifier) = (status.clone(), notifier.clone());
    let drive = move || -> Result<RunReport, String> {
        let limit = config.timeout.map(Duration::from_secs_f64);
        let started = std::time::Instant::now();
        let gdb_listen = match (&args.gdb, args.gdb_default || args.gdb_wait) {
            (Some(spec), _) => Some(crate::gdb::parse_listen(spec)?),
            (None, true) => Some(crate::gdb::parse_listen("tcp:127.0.0.1:1234")?),
            (None, false) => None,
        };
        let mut debugged = None;
        if let Some(addr) = gdb_listen {
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| format!("cannot listen for gdb on {addr}: {e}"))?;
            eprintln!("turing: waiting for gdb on {addr}");
            let (back, end) = crate::gdb::serve(machine, listener, args.gdb_wait);
            machine = back;
            match end? {
                crate::gdb::SessionEnd::Finished(outcome) => debugged = Some(outcome),
                crate::gdb::SessionEnd::Detached => {}
            }
        }
        let mut awaiting_exit = None;
        let outcome = match debugged {
            Some(outcome) => outcome,
            None => machine
                .run(limit, config.max_instructions, &mut || {
                    if drive_status.pause_requested() {
                        pause(&drive_status, &watch_control, drive_notifier.as_ref());
                    }
                    if screenshot_at.is_some_and(|at| started.elapsed() >= at) {
                        return Some(RunOutcome::ScriptFinished);
                    }
                    match script.as_mut()?.poll() {
                        ScriptStatus::Running => None,
                        ScriptStatus::Finished => Some(RunOutcome::ScriptFinished),
                        ScriptStatus::AwaitingExit(code) => {
                            awaiting_exit = Some(code);
                            None
                        }
                        ScriptStatus::TimedOut(why) => Some(RunOutcome::ScriptTimedOut(why)),
                    }
                })
                .map_err(|e| e.to_string())?,
        };
        let elapsed = started.elapsed().as_secs_f64();
        let _ = std::io::stdout().flush();
        if let Some(path) = &args.screenshot {
            if outcome == RunOutcome::ScriptFinished {
                crate::screenshot::write_png(path, &machine.screen_source().snapshot())?;
            } else {
                eprintln!("turing: no screenshot taken: the run ended first");
            }
        }
        if args.stats {
            let retired = machine.instructions_retired();
            eprintln!(
                "turing: stats: {retired} instructions in {elapsed:.3} s, {:.1} MIPS",
                retired as f64 / elapsed.max(1e-9) / 1e6
            );
            for line in machine
                .jit_report()
                .into_iter()
                .chain(machine.device_report())
            {
                eprintln!("turing: stats: {line}");
            }
            let translating = machine.translation_seconds();
            if translating > 0.0 {
                // With compile threads this is their time, which overlaps the
                // harts' instead of adding to it.
                eprintln!(
                    "turing: stats: translation took {translating:.3} s, {:.1}% of the run's wall time",
                    100.0 * translating / elapsed.max(1e-9)
                );
            }
        }
        // Output written just before a power-off may complete the script.
        let waiting_for = script.as_mut().and_then(|script| {
            if let ScriptStatus::AwaitingExit(code) = script.poll() {
                awaiting_exit = Some(code);
            }
            script.waiting_for()
        });
        let (exit_code, message) = match &outcome {
            RunOutcome::PoweredOff(code) => match (awaiting_exit, &waiting_for) {
                (Some(expected), _) if expected == *code => (0, None),
                (Some(expected), _) => (
                    if *code == 0 { 1 } else { *code },
                    Some(format!(
                        "guest exited with code {code}, expected {expected}"
                    )),
                ),
                (None, Some(what)) => (
                    if *code == 0 { 1 } else { *code },
                    Some(format!(
                        "guest powered off (exit code {code}) while waiting for {what}"
                    )),
                ),
                (None, None) => (*code, None),
            },
            RunOutcome::Stopped => (0, None),
            RunOutcome::ScriptFinished => (0, None),
            RunOutcome::TimedOut => {
                let seconds = config.timeout.unwrap_or_default();
                let waiting = waiting_for.map_or(String::new(), |w| format!(" waiting for {w}"));
                (
                    EXIT_TIMEOUT,
                    Some(format!("timeout after {seconds} s{waiting}")),
                )
            }
            RunOutcome::ScriptTimedOut(why) => {
                (EXIT_TIMEOUT, Some(format!("expect failed: {why}")))
            }
            RunOutcome::InstructionLimit => (
                EXIT_TIMEOUT,
                Some(format!(
                    "instruction limit of {} reached: {} retired, {} traps taken",
                    config.max_instructions.unwrap_or_default(),
                    machine.instructions_retired(),
                    machine.traps_taken()
                )),
            ),
        };
        match (&outcome, &message) {
            (RunOutcome::TimedOut | RunOutcome::ScriptTimedOut(_), Some(headline)) => {
                report_where(machine.as_mut(), &tail, headline);
            }
            (_, Some(message)) => eprintln!("turing: {message}"),
            (_, None) => {}
        }
        let report = RunReport {
            exit_code,
            instructions: machine.instructions_retired(),
            seconds: elapsed,
        };
        if let Some(path) = &args.stats_json {
            write_stats_json(path, &report, &outcome, message.as_deref())?;
        }
        Ok(report)
    };
    let Some(viewer) = viewer else {
        return drive();
    };
    // The window takes the main thread; the machine runs beside it and tells the
    // window when it stops.
    std::thread::scope(|scope| {
        let machine_thread = scope.spawn(move || {
            let report = drive();
            status.set_state(MachineState::Halted);
            if let Some(notifier) = &notifier {
                notifier.send(WindowMessage::MachineFinished);
            }
            report
        });
        let shown = viewer.run(link);
        let report = machine_thread
            .join()
            .unwrap_or_else(|_| Err("the machine thread panicked".to_owned()));
        shown.and(report)
    })
}

/// Holds the machine while the window asks for a pause; a stop request ends it.
fn pause(status: &MachineStatus, control: &RunControl, notifier: Option<&WindowNotifier>) {
    status.set_state(MachineState::Paused);
    if let Some(notifier) = notifier {
        notifier.send(WindowMessage::StateChanged);
    }
    while status.pause_requested() && !control.stop_requested() {
        std::thread::sleep(Duration::from_millis(20));
    }
    status.set_state(MachineState::Running);
    if let Some(notifier) = notifier {
        notifier.send(WindowMessage::StateChanged);
    }
}

/// Writes a run's result for `turing test` (and other tools) to read.
fn write_stats_json(
    path: &std::path::Path,
    report: &RunReport,
    outcome: &RunOutcome,
    message: Option<&str>,
) -> Result<(), String> {
    let outcome = match outcome {
        RunOutcome::PoweredOff(_) => "powered-off",
        RunOutcome::TimedOut => "timeout",
        RunOutcome::Stopped => "stopped",
        RunOutcome::InstructionLimit => "instruction-limit",
        RunOutcome::ScriptFinished => "script-finished",
        RunOutcome::ScriptTimedOut(_) => "expect-timeout",
    };
    let json = serde_json::json!({
        "exit_code": report.exit_code,
        "outcome": outcome,
        "message": message,
        "instructions": report.instructions,
        "seconds": report.seconds,
        "max_rss_kib": peak_memory_kib(),
    });
    std::fs::write(path, format!("{json:#}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The process's peak resident memory (VmHWM), in KiB, where Linux reports it.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Tells why the run stopped (`headline`) and where the guest was.
fn report_where(machine: &mut dyn Machine, tail: &crate::console::SerialTail, headline: &str) {
    let mut report = format!("\nturing: {headline}\n");
    report += &machine.where_report(8);
    let lines = tail.last_lines(5);
    if !lines.is_empty() {
        report += "  last serial output:\n";
        for line in lines {
            report += &format!("    | {line}\n");
        }
    }
    eprint!("{report}");
}
