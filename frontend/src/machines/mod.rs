//! Machine definitions: the one place that knows both CPUs and devices.
//!
//! Each machine is one file here, registered in [`MACHINES`]; everything else in
//! the frontend (the CLI, the window, gdb, screenshots, `turing test`) drives a
//! `Box<dyn Machine>` and never names a particular machine. Adding a machine is a
//! new file and one line in [`MACHINES`].

pub mod pc;
pub mod riscv_virt;
mod virtio_devices;

use std::sync::Arc;
use std::time::Duration;

use devices::virtio::{Display, InputHandle};
use emu_core::RunControl;
use emu_core::config::MachineConfig;
use emu_core::debug::{DebugCpu, DebugStop};
use thiserror::Error;

use crate::console::Console;

/// Builds a machine from its configuration, its serial console, the run control
/// and the built-in demo program (booted when the config names no kernel).
pub type MachineBuilder =
    fn(&MachineConfig, Console, Arc<RunControl>, &[u8]) -> Result<Box<dyn Machine>, MachineError>;

/// The machines `--machine` accepts, by name.
pub const MACHINES: &[(&str, MachineBuilder)] = &[
    ("riscv-virt", riscv_virt::build_machine),
    ("pc", pc::build_machine),
];

/// The names of [`MACHINES`], comma-separated, for messages.
pub fn machine_names() -> String {
    MACHINES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the machine `config.machine` names.
pub fn build(
    config: &MachineConfig,
    console: Console,
    control: Arc<RunControl>,
    demo: &[u8],
) -> Result<Box<dyn Machine>, MachineError> {
    let (_, builder) = MACHINES
        .iter()
        .find(|(name, _)| *name == config.machine)
        .ok_or_else(|| MachineError::UnknownMachine(config.machine.clone()))?;
    builder(config, console, control, demo)
}

/// What a guest shows, readable from any thread (a window, a screenshot).
#[derive(Clone)]
pub struct ScreenSource(Arc<dyn Fn() -> Display + Send + Sync>);

impl std::fmt::Debug for ScreenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScreenSource")
    }
}

impl ScreenSource {
    /// A source that calls `snapshot` for each frame.
    pub fn new(snapshot: impl Fn() -> Display + Send + Sync + 'static) -> ScreenSource {
        ScreenSource(Arc::new(snapshot))
    }

    /// What the guest shows now.
    pub fn snapshot(&self) -> Display {
        (self.0)()
    }
}

/// What a debugger slice ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugEvent {
    /// Nothing to report; run another slice.
    Ran,
    /// The CPU of a single step finished it.
    Stepped(usize),
    /// A CPU stopped at a breakpoint or watchpoint.
    Stopped {
        /// Which CPU.
        cpu: usize,
        /// Why.
        stop: DebugStop,
    },
    /// The guest powered off with this code.
    PoweredOff(i32),
}

/// A built machine, as the frontend drives it.
pub trait Machine: Send {
    /// Runs until the guest powers off, `limit` passes, `max_instructions` (all
    /// CPUs) retire, the host stops it, or `watch` (called between slices)
    /// returns an outcome. A guest reset resets every device and reloads the
    /// images, and the run goes on.
    fn run(
        &mut self,
        limit: Option<Duration>,
        max_instructions: Option<u64>,
        watch: &mut dyn FnMut() -> Option<RunOutcome>,
    ) -> Result<RunOutcome, MachineError>;
    /// Resets the machine as a reboot does.
    fn reset(&mut self) -> Result<(), MachineError>;
    /// The guest's display.
    fn screen_source(&self) -> ScreenSource;
    /// Where host key presses go (Linux key codes), for a window.
    fn keyboard(&self) -> InputHandle;
    /// Where host pointer moves and clicks go, for a window.
    fn tablet(&self) -> InputHandle;
    /// The hardware description handed to the guest (a device tree blob), for
    /// `--dump-dtb`; `None` on machines without one.
    fn device_tree(&self) -> Option<&[u8]>;
    /// Turns on the JIT for every CPU, translating code entered `threshold` times.
    fn enable_jit(&mut self, threshold: u32) -> Result<(), String>;
    /// Instructions retired by all CPUs.
    fn instructions_retired(&self) -> u64;
    /// Traps (exceptions and interrupts) taken by all CPUs. `--max-instructions`
    /// counts these with the retired instructions, so a CPU faulting on every
    /// fetch still reaches the limit.
    fn traps_taken(&self) -> u64;
    /// Lines about devices (each NIC's frames, bytes and drops) for `--stats`.
    fn device_report(&self) -> Vec<String> {
        Vec::new()
    }
    /// Lines about the translator (compiled blocks, time, invalidations) for
    /// `--stats` and gdb's `monitor stats`; empty without a JIT.
    fn jit_report(&self) -> Vec<String> {
        Vec::new()
    }
    /// Seconds all CPUs spent translating code (0 without a JIT), for `--stats`.
    fn translation_seconds(&self) -> f64 {
        0.0
    }
    /// Runs each CPU `count` more instructions, recording them, and reports where
    /// each one was (for a time-out's report).
    fn where_report(&mut self, count: usize) -> String;
    /// Number of CPUs (gdb threads).
    fn cpu_count(&self) -> usize;
    /// CPU `index` for a debugger.
    fn debug_cpu(&mut self, index: usize) -> Option<&mut dyn DebugCpu>;
    /// Runs one short slice for a debugger: every CPU (`step` = None), or exactly
    /// one instruction of CPU `step`; then devices and time.
    fn debug_slice(&mut self, step: Option<usize>) -> Result<DebugEvent, MachineError>;
}

/// What's left of a run's limits at the start of one pass of a machine's run
/// loop (a reset starts another pass): the wall time to `deadline`, and the
/// instruction limit, which counts from power-on.
pub(crate) fn limits_left(
    deadline: Option<std::time::Instant>,
    max_instructions: Option<u64>,
) -> emu_core::cpu::RunLimits {
    emu_core::cpu::RunLimits {
        wall: deadline.map(|d| d.saturating_duration_since(std::time::Instant::now())),
        executed: max_instructions,
    }
}

/// How a pass of a machine's run loop ended, as the run's outcome; `None` for
/// a reset, after which the machine resets itself and runs on.
pub(crate) fn outcome_of(end: emu_core::cpu::RunEnd<RunOutcome>) -> Option<RunOutcome> {
    use emu_core::StopReason;
    use emu_core::cpu::RunEnd;
    Some(match end {
        RunEnd::Stop(StopReason::PowerOff(code)) => RunOutcome::PoweredOff(code),
        RunEnd::Stop(StopReason::HostRequest) => RunOutcome::Stopped,
        RunEnd::Stop(StopReason::Reset) => return None,
        RunEnd::Watched(outcome) => outcome,
        RunEnd::InstructionLimit => RunOutcome::InstructionLimit,
        RunEnd::TimedOut => RunOutcome::TimedOut,
    })
}

/// Longest idle sleep of a debugger's slice (a Ctrl-C must be seen promptly).
const DEBUG_IDLE: Duration = Duration::from_millis(2);

/// What a stop request means to a debugger's slice: the power-off event
/// that ends the session, or `None` for a reset, which the machine does at
/// once before going on.
pub(crate) fn debug_power_off(reason: emu_core::StopReason) -> Option<DebugEvent> {
    use emu_core::StopReason;
    match reason {
        StopReason::PowerOff(code) => Some(DebugEvent::PoweredOff(code)),
        StopReason::HostRequest => Some(DebugEvent::PoweredOff(0)),
        StopReason::Reset => None,
    }
}

/// The end of a debugger's slice: devices and time advance, and while every
/// CPU waits for an interrupt, host time passes up to the next deadline.
pub(crate) fn tick_after_debug_slice(
    bus: &emu_core::Bus,
    clock: &emu_core::VirtualClock,
    all_waiting: bool,
) {
    let next = bus.tick_devices(clock.now());
    if all_waiting {
        clock.idle_until(next, DEBUG_IDLE);
        bus.tick_devices(clock.now());
    }
}

/// Errors building or starting a machine; each is one line for the user.
#[derive(Debug, Error)]
pub enum MachineError {
    /// `--machine` named nothing we have.
    #[error("unknown machine '{0}' (available: {names})", names = machine_names())]
    UnknownMachine(String),
    /// The program image could not be loaded.
    #[error(transparent)]
    Load(#[from] firmware::loader::LoadError),
    /// Guest memory could not be created.
    #[error(transparent)]
    Memory(#[from] emu_core::memory::MemoryError),
    /// The address map is inconsistent.
    #[error(transparent)]
    Bus(#[from] emu_core::BusError),
    /// The device tree could not be built.
    #[error(transparent)]
    Fdt(#[from] firmware::fdt::FdtError),
    /// Something else about the setup, described in words.
    #[error("{0}")]
    Setup(String),
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest powered off with this exit code.
    PoweredOff(i32),
    /// The wall-clock limit passed.
    TimedOut,
    /// The host stopped the machine (console escape, signal).
    Stopped,
    /// The guest retired the instruction limit.
    InstructionLimit,
    /// A script saw everything it waited for.
    ScriptFinished,
    /// A script step's time ran out; says which.
    ScriptTimedOut(String),
}
