//! The GDB remote serial protocol server (`turing run --gdb tcp:HOST:PORT`), on
//! the `gdbstub` crate. Each CPU is a gdb thread. The server knows no
//! architecture: each CPU gives its own target description and register layout
//! through [`emu_core::debug::DebugCpu`] (on riscv-virt: integer and FP
//! registers, fcsr, the privilege level and the main machine and supervisor
//! CSRs). Breakpoints stop before the instruction (with the JIT on, too),
//! watchpoints after the access, and a step is exactly one instruction.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;

use emu_core::debug::{DebugCpu, DebugStop, WatchKind as CpuWatch};
use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub::common::{Signal, Tid};
use gdbstub::conn::ConnectionExt;
use gdbstub::outputln;
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason, run_blocking};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};

use crate::machines::{DebugEvent, Machine, RunOutcome};

/// Any CPU as gdb sees it through this server: registers travel as the raw bytes
/// the CPU's target description lays out (sent with `qXfer:features:read`).
#[derive(Debug)]
pub enum AnyCpu {}

impl Arch for AnyCpu {
    type Usize = u64;
    type Registers = RawRegisters;
    type BreakpointKind = usize;
    type RegId = RawRegId;
}

/// The `g` packet of one CPU, as [`DebugCpu::read_registers`] lays it out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawRegisters {
    pc: u64,
    bytes: Vec<u8>,
}

impl Registers for RawRegisters {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        self.bytes.iter().for_each(|b| write_byte(Some(*b)));
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.bytes = bytes.to_vec();
        Ok(())
    }
}

/// A register by gdb's number; its size is the CPU's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRegId(usize);

impl RegId for RawRegId {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        Some((RawRegId(id), None))
    }
}

/// How gdb asked a CPU to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    Continue,
    Step,
}

/// The machine under gdb's control (owned for the session, then handed back).
pub struct GdbTarget {
    machine: Box<dyn Machine>,
    resume: Vec<Option<Resume>>,
    /// CPU 0's target description (every CPU of a machine has the same).
    xml: &'static str,
}

impl std::fmt::Debug for GdbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GdbTarget")
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

fn cpu_index(tid: Tid) -> usize {
    tid.get() - 1
}

fn tid_of(cpu: usize) -> Tid {
    Tid::new(cpu + 1).expect("CPU numbers start at 0, thread ids at 1")
}

impl GdbTarget {
    fn cpu(&mut self, tid: Tid) -> TargetResult<&mut dyn DebugCpu, Self> {
        self.machine
            .debug_cpu(cpu_index(tid))
            .ok_or(TargetError::NonFatal)
    }

    /// Runs `f` on every CPU.
    fn each_cpu(&mut self, mut f: impl FnMut(&mut dyn DebugCpu)) {
        for index in 0..self.machine.cpu_count() {
            if let Some(cpu) = self.machine.debug_cpu(index) {
                f(cpu);
            }
        }
    }
}

impl Target for GdbTarget {
    type Arch = AnyCpu;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, AnyCpu, String> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }
}

impl TargetDescriptionXmlOverride for GdbTarget {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::NonFatal);
        }
        let xml = self.xml.as_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(xml.len());
        let n = length.min(buf.len()).min(xml.len() - start);
        buf[..n].copy_from_slice(&xml[start..start + n]);
        Ok(n)
    }
}

impl MultiThreadBase for GdbTarget {
    fn read_registers(&mut self, regs: &mut RawRegisters, tid: Tid) -> TargetResult<(), Self> {
        let cpu = self.cpu(tid)?;
        regs.pc = cpu.pc();
        regs.bytes = cpu.read_registers();
        Ok(())
    }

    fn write_registers(&mut self, regs: &RawRegisters, tid: Tid) -> TargetResult<(), Self> {
        if self.cpu(tid)?.write_registers(&regs.bytes) {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        match self.cpu(tid)?.read_memory(start, data) {
            0 if !data.is_empty() => Err(TargetError::NonFatal),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        if self.cpu(tid)?.write_memory(start, data) {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }

    fn list_active_threads(&mut self, register: &mut dyn FnMut(Tid)) -> Result<(), String> {
        for cpu in 0..self.machine.cpu_count() {
            register(tid_of(cpu));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for GdbTarget {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: RawRegId,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let bytes = self
            .cpu(tid)?
            .read_register(reg.0)
            .ok_or(TargetError::NonFatal)?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn write_register(&mut self, tid: Tid, reg: RawRegId, val: &[u8]) -> TargetResult<(), Self> {
        if self.cpu(tid)?.write_register(reg.0, val) {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }
}

impl MultiThreadResume for GdbTarget {
    fn resume(&mut self) -> Result<(), String> {
        // A CPU sitting on a breakpoint executes it instead of stopping again.
        self.each_cpu(|cpu| cpu.resume_from_breakpoint());
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), String> {
        self.resume = vec![None; self.machine.cpu_count()];
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), String> {
        let slot = self
            .resume
            .get_mut(cpu_index(tid))
            .ok_or_else(|| format!("no thread {tid}"))?;
        *slot = Some(Resume::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSchedulerLocking for GdbTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), String> {
        // A step already runs only the stepping hart; other resumes run all harts.
        Ok(())
    }
}

impl MultiThreadSingleStep for GdbTarget {
    fn set_resume_action_step(&mut self, tid: Tid, _signal: Option<Signal>) -> Result<(), String> {
        let slot = self
            .resume
            .get_mut(cpu_index(tid))
            .ok_or_else(|| format!("no thread {tid}"))?;
        *slot = Some(Resume::Step);
        Ok(())
    }
}

impl Breakpoints for GdbTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl GdbTarget {
    fn add_breakpoint(&mut self, addr: u64) -> TargetResult<bool, Self> {
        self.each_cpu(|cpu| cpu.insert_breakpoint(addr));
        Ok(true)
    }

    fn remove_breakpoint(&mut self, addr: u64) -> TargetResult<bool, Self> {
        let mut found = false;
        self.each_cpu(|cpu| found |= cpu.remove_breakpoint(addr));
        Ok(found)
    }
}

impl SwBreakpoint for GdbTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.add_breakpoint(addr)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.remove_breakpoint(addr)
    }
}

impl HwBreakpoint for GdbTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.add_breakpoint(addr)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.remove_breakpoint(addr)
    }
}

fn cpu_watch(kind: WatchKind) -> CpuWatch {
    match kind {
        WatchKind::Read => CpuWatch::Read,
        WatchKind::Write => CpuWatch::Write,
        WatchKind::ReadWrite => CpuWatch::Access,
    }
}

impl HwWatchpoint for GdbTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.each_cpu(|cpu| cpu.insert_watchpoint(addr, len, cpu_watch(kind)));
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let mut found = false;
        self.each_cpu(|cpu| found |= cpu.remove_watchpoint(addr, len, cpu_watch(kind)));
        Ok(found)
    }
}

impl MonitorCmd for GdbTarget {
    fn handle_monitor_cmd(&mut self, cmd: &[u8], mut out: ConsoleOutput<'_>) -> Result<(), String> {
        let text = String::from_utf8_lossy(cmd);
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            [] | ["help"] => {
                outputln!(out, "monitor commands:");
                outputln!(out, "  help                      this list");
                if let Some(cpu) = self.machine.debug_cpu(0) {
                    for line in cpu.monitor_help() {
                        outputln!(out, "{line}");
                    }
                }
                outputln!(out, "  phys read ADDR LEN        dump physical memory");
                outputln!(out, "  reset                     reset the machine");
                outputln!(
                    out,
                    "  stats                     instructions and JIT figures"
                );
            }
            ["phys", "read", addr, len] => {
                let (Some(addr), Some(len)) = (number(addr), number(len)) else {
                    outputln!(out, "usage: phys read ADDR LEN");
                    return Ok(());
                };
                let mut buf = vec![0u8; len.min(4096) as usize];
                let read = self
                    .machine
                    .debug_cpu(0)
                    .map_or(0, |cpu| cpu.read_physical(addr, &mut buf));
                if read != buf.len() {
                    outputln!(out, "{addr:#x}: not RAM");
                    return Ok(());
                }
                for (i, line) in buf.chunks(16).enumerate() {
                    let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
                    outputln!(out, "{:#x}: {}", addr + 16 * i as u64, hex.join(" "));
                }
            }
            ["reset"] => match self.machine.reset() {
                Ok(()) => outputln!(out, "machine reset"),
                Err(e) => outputln!(out, "reset failed: {e}"),
            },
            ["stats"] => {
                outputln!(
                    out,
                    "instructions retired: {}",
                    self.machine.instructions_retired()
                );
                for line in self.machine.jit_report() {
                    outputln!(out, "{line}");
                }
            }
            _ => {
                let answer = self
                    .machine
                    .debug_cpu(0)
                    .and_then(|cpu| cpu.monitor_command(&words));
                match answer {
                    Some(lines) => {
                        for line in lines {
                            outputln!(out, "{line}");
                        }
                    }
                    None => {
                        outputln!(out, "unknown monitor command '{text}' (try 'monitor help')")
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses a number in hex (0x...) or decimal.
fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// gdbstub's event loop: run the machine until a stop or a byte from gdb.
enum EventLoop {}

/// The connection type the stub uses.
type Conn = Box<dyn ConnectionExt<Error = io::Error>>;

impl run_blocking::BlockingEventLoop for EventLoop {
    type Target = GdbTarget;
    type Connection = Conn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut GdbTarget,
        conn: &mut Conn,
    ) -> Result<
        run_blocking::Event<MultiThreadStopReason<u64>>,
        run_blocking::WaitForStopReasonError<String, io::Error>,
    > {
        let step = target.resume.iter().position(|r| *r == Some(Resume::Step));
        loop {
            if conn.peek().map(|b| b.is_some()).unwrap_or(true) {
                let byte = conn
                    .read()
                    .map_err(run_blocking::WaitForStopReasonError::Connection)?;
                return Ok(run_blocking::Event::IncomingData(byte));
            }
            let event = target
                .machine
                .debug_slice(step)
                .map_err(|e| run_blocking::WaitForStopReasonError::Target(e.to_string()))?;
            let reason = match event {
                DebugEvent::Ran => continue,
                DebugEvent::Stepped(_) => MultiThreadStopReason::DoneStep,
                DebugEvent::Stopped { cpu, stop } => match stop {
                    DebugStop::Breakpoint(_) => MultiThreadStopReason::SwBreak(tid_of(cpu)),
                    DebugStop::Watchpoint { kind, addr } => MultiThreadStopReason::Watch {
                        tid: tid_of(cpu),
                        kind: match kind {
                            CpuWatch::Read => WatchKind::Read,
                            CpuWatch::Write => WatchKind::Write,
                            CpuWatch::Access => WatchKind::ReadWrite,
                        },
                        addr,
                    },
                },
                DebugEvent::PoweredOff(code) => MultiThreadStopReason::Exited(code as u8),
            };
            return Ok(run_blocking::Event::TargetStopped(reason));
        }
    }

    fn on_interrupt(_target: &mut GdbTarget) -> Result<Option<MultiThreadStopReason<u64>>, String> {
        Ok(Some(MultiThreadStopReason::SignalWithThread {
            tid: tid_of(0),
            signal: Signal::SIGINT,
        }))
    }
}

/// Where `--gdb` listens: `tcp:HOST:PORT`, `tcp::PORT` or `HOST:PORT`.
pub fn parse_listen(spec: &str) -> Result<SocketAddr, String> {
    let rest = spec.strip_prefix("tcp:").unwrap_or(spec);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid --gdb '{spec}': expected tcp:HOST:PORT"))?;
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid --gdb '{spec}': '{port}' is not a port number"))?;
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("invalid --gdb '{spec}': cannot resolve host '{host}'"))
}

/// How a gdb session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The guest powered off, or gdb killed it.
    Finished(RunOutcome),
    /// gdb detached: the guest goes on running without a debugger.
    Detached,
}

/// Serves gdb on `listener`: waits for a debugger first (`wait`), or runs the
/// guest until one attaches. Hands the machine back with how the session ended.
pub fn serve(
    mut machine: Box<dyn Machine>,
    listener: TcpListener,
    wait: bool,
) -> (Box<dyn Machine>, Result<SessionEnd, String>) {
    let stream = if wait {
        match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => return (machine, Err(format!("gdb connection failed: {e}"))),
        }
    } else {
        if let Err(e) = listener.set_nonblocking(true) {
            return (machine, Err(format!("cannot poll the gdb socket: {e}")));
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return (machine, Err(format!("gdb connection failed: {e}"))),
            }
            match machine.debug_slice(None) {
                Ok(DebugEvent::PoweredOff(code)) => {
                    return (
                        machine,
                        Ok(SessionEnd::Finished(RunOutcome::PoweredOff(code))),
                    );
                }
                Ok(_) => {}
                Err(e) => return (machine, Err(e.to_string())),
            }
        }
    };
    if let Err(e) = stream.set_nonblocking(false) {
        return (machine, Err(format!("gdb socket: {e}")));
    }
    let _ = stream.set_nodelay(true);
    let conn: Conn = Box::new(stream);
    let cpus = machine.cpu_count();
    let Some(xml) = machine.debug_cpu(0).map(|cpu| cpu.target_xml()) else {
        return (machine, Err("the machine has no CPU to debug".to_owned()));
    };
    let mut target = GdbTarget {
        machine,
        resume: vec![None; cpus],
        xml,
    };
    let outcome = GdbStub::new(conn).run_blocking::<EventLoop>(&mut target);
    let end = match outcome {
        Ok(DisconnectReason::TargetExited(code)) => Ok(SessionEnd::Finished(
            RunOutcome::PoweredOff(i32::from(code)),
        )),
        Ok(DisconnectReason::Kill | DisconnectReason::TargetTerminated(_)) => {
            Ok(SessionEnd::Finished(RunOutcome::Stopped))
        }
        Ok(DisconnectReason::Disconnect) => Ok(SessionEnd::Detached),
        // A client that goes away or breaks the protocol ends the session; the
        // guest goes on as after a detach.
        Err(e) => {
            eprintln!("turing: gdb session ended: {e}");
            Ok(SessionEnd::Detached)
        }
    };
    // Breakpoints and watchpoints a vanished client left behind must not stop the
    // guest any more.
    target.each_cpu(|cpu| cpu.clear_debug());
    (target.machine, end)
}
