//! The GDB remote serial protocol server (`turing run --gdb tcp:HOST:PORT`), on
//! the `gdbstub` crate. Each hart is a gdb thread; the target description gives
//! gdb-multiarch the integer and FP registers, fcsr, the privilege level and the
//! main machine and supervisor CSRs. Breakpoints stop before the instruction
//! (with the JIT on, too), watchpoints after the access, and a step is exactly
//! one instruction.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::sync::OnceLock;

use cpu_riscv::debug::{DebugStop, WatchKind as HartWatch};
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
use gdbstub::target::{Target, TargetError, TargetResult};

use crate::machines::RunOutcome;
use crate::machines::riscv_virt::{DebugEvent, RiscvVirt};

/// The CSRs gdb sees, by number (in the order of their register numbers).
const CSRS: [(u16, &str); 14] = [
    (0x100, "sstatus"),
    (0x105, "stvec"),
    (0x141, "sepc"),
    (0x142, "scause"),
    (0x143, "stval"),
    (0x180, "satp"),
    (0x300, "mstatus"),
    (0x301, "misa"),
    (0x304, "mie"),
    (0x305, "mtvec"),
    (0x341, "mepc"),
    (0x342, "mcause"),
    (0x343, "mtval"),
    (0x344, "mip"),
];
/// gdb's RISC-V register numbers: x0-x31, pc, f0-f31, then CSR n at 65 + n, and
/// the virtual `priv` register after the CSR space.
const PC: usize = 32;
const F0: usize = 33;
const CSR_BASE: usize = 65;
const PRIV: usize = CSR_BASE + 4096;
const FFLAGS: u16 = 0x001;
const FRM: u16 = 0x002;
const FCSR: u16 = 0x003;

const X_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];
const F_NAMES: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// The target description gdb reads (`qXfer:features:read`).
fn target_xml() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n<feature name=\"org.gnu.gdb.riscv.cpu\">\n",
        );
        for (i, name) in X_NAMES.iter().enumerate() {
            let ty = match i {
                2 => "data_ptr",
                _ => "int",
            };
            xml += &format!("<reg name=\"{name}\" bitsize=\"64\" type=\"{ty}\" regnum=\"{i}\"/>\n");
        }
        xml += &format!("<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"{PC}\"/>\n");
        xml += "</feature>\n<feature name=\"org.gnu.gdb.riscv.fpu\">\n";
        for (i, name) in F_NAMES.iter().enumerate() {
            xml += &format!(
                "<reg name=\"{name}\" bitsize=\"64\" type=\"ieee_double\" regnum=\"{}\"/>\n",
                F0 + i
            );
        }
        for (csr, name) in [(FFLAGS, "fflags"), (FRM, "frm"), (FCSR, "fcsr")] {
            xml += &format!(
                "<reg name=\"{name}\" bitsize=\"32\" type=\"int\" regnum=\"{}\"/>\n",
                CSR_BASE + usize::from(csr)
            );
        }
        xml += "</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n";
        for (csr, name) in CSRS {
            xml += &format!(
                "<reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>\n",
                CSR_BASE + usize::from(csr)
            );
        }
        xml += &format!(
            "</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n<reg name=\"priv\" bitsize=\"64\" type=\"int\" regnum=\"{PRIV}\"/>\n</feature>\n</target>\n"
        );
        xml
    })
}

/// RV64 as gdb sees it on Turing.
#[derive(Debug)]
pub enum Rv64 {}

impl Arch for Rv64 {
    type Usize = u64;
    type Registers = Rv64Registers;
    type BreakpointKind = usize;
    type RegId = Rv64RegId;

    fn target_description_xml() -> Option<&'static str> {
        Some(target_xml())
    }
}

/// Every register in the target description, in register-number order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rv64Registers {
    x: [u64; 32],
    pc: u64,
    f: [u64; 32],
    fflags: u32,
    frm: u32,
    fcsr: u32,
    csrs: [u64; CSRS.len()],
    privilege: u64,
}

impl Registers for Rv64Registers {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        let mut put = |bytes: &[u8]| bytes.iter().for_each(|b| write_byte(Some(*b)));
        self.x.iter().for_each(|v| put(&v.to_le_bytes()));
        put(&self.pc.to_le_bytes());
        self.f.iter().for_each(|v| put(&v.to_le_bytes()));
        for v in [self.fflags, self.frm, self.fcsr] {
            put(&v.to_le_bytes());
        }
        self.csrs.iter().for_each(|v| put(&v.to_le_bytes()));
        put(&self.privilege.to_le_bytes());
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        // A G packet may stop early; registers it does not reach keep their value.
        let mut words = bytes.chunks_exact(8).map(|c| {
            let mut b = [0; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        });
        for slot in self
            .x
            .iter_mut()
            .chain([&mut self.pc])
            .chain(self.f.iter_mut())
        {
            match words.next() {
                Some(v) => *slot = v,
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

/// A register named by gdb's register number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rv64RegId {
    /// x0-x31.
    X(usize),
    /// The pc.
    Pc,
    /// f0-f31.
    F(usize),
    /// A CSR (fflags, frm and fcsr included).
    Csr(u16),
    /// The privilege level.
    Priv,
}

impl RegId for Rv64RegId {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        let (reg, size) = match id {
            0..=31 => (Rv64RegId::X(id), 8),
            PC => (Rv64RegId::Pc, 8),
            33..=64 => (Rv64RegId::F(id - F0), 8),
            PRIV => (Rv64RegId::Priv, 8),
            _ if (CSR_BASE..CSR_BASE + 4096).contains(&id) => {
                let csr = (id - CSR_BASE) as u16;
                let size = if matches!(csr, FFLAGS | FRM | FCSR) {
                    4
                } else {
                    8
                };
                (Rv64RegId::Csr(csr), size)
            }
            _ => return None,
        };
        Some((reg, NonZeroUsize::new(size)))
    }
}

/// How gdb asked a hart to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    Continue,
    Step,
}

/// The machine under gdb's control (owned for the session, then handed back).
#[derive(Debug)]
pub struct GdbTarget {
    machine: RiscvVirt,
    resume: Vec<Option<Resume>>,
}

fn hart_index(tid: Tid) -> usize {
    tid.get() - 1
}

fn tid_of(hart: usize) -> Tid {
    Tid::new(hart + 1).expect("hart numbers start at 0, thread ids at 1")
}

impl GdbTarget {
    fn hart(&mut self, tid: Tid) -> TargetResult<&mut cpu_riscv::Hart, Self> {
        self.machine
            .harts_mut()
            .get_mut(hart_index(tid))
            .ok_or(TargetError::NonFatal)
    }

    fn read_csr(hart: &mut cpu_riscv::Hart, csr: u16) -> Option<u64> {
        let s = &hart.state;
        Some(match csr {
            FFLAGS => u64::from(s.fcsr & 0x1f),
            FRM => u64::from((s.fcsr >> 5) & 7),
            FCSR => u64::from(s.fcsr & 0xff),
            _ => cpu_riscv::csr::debug_read(hart, csr)?,
        })
    }
}

impl Target for GdbTarget {
    type Arch = Rv64;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Rv64, String> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for GdbTarget {
    fn read_registers(&mut self, regs: &mut Rv64Registers, tid: Tid) -> TargetResult<(), Self> {
        let hart = self.hart(tid)?;
        regs.x = hart.state.x;
        regs.pc = hart.state.pc;
        regs.f = hart.state.f;
        regs.fflags = hart.state.fcsr & 0x1f;
        regs.frm = (hart.state.fcsr >> 5) & 7;
        regs.fcsr = hart.state.fcsr & 0xff;
        for (slot, (csr, _)) in regs.csrs.iter_mut().zip(CSRS) {
            *slot = Self::read_csr(hart, csr).unwrap_or(0);
        }
        regs.privilege = u64::from(hart.state.privilege);
        Ok(())
    }

    fn write_registers(&mut self, regs: &Rv64Registers, tid: Tid) -> TargetResult<(), Self> {
        let hart = self.hart(tid)?;
        hart.state.x = regs.x;
        hart.state.x[0] = 0;
        hart.state.pc = regs.pc;
        hart.state.f = regs.f;
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let hart = self.hart(tid)?;
        match hart.debug_read(start, data) {
            0 if !data.is_empty() => Err(TargetError::NonFatal),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let hart = self.hart(tid)?;
        if hart.debug_write(start, data) {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }

    fn list_active_threads(&mut self, register: &mut dyn FnMut(Tid)) -> Result<(), String> {
        for hart in 0..self.machine.harts().len() {
            register(tid_of(hart));
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
        reg: Rv64RegId,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let hart = self.hart(tid)?;
        let (value, size) = match reg {
            Rv64RegId::X(i) => (hart.state.x[i], 8),
            Rv64RegId::Pc => (hart.state.pc, 8),
            Rv64RegId::F(i) => (hart.state.f[i], 8),
            Rv64RegId::Priv => (u64::from(hart.state.privilege), 8),
            Rv64RegId::Csr(csr) => {
                let size = if matches!(csr, FFLAGS | FRM | FCSR) {
                    4
                } else {
                    8
                };
                (
                    Self::read_csr(hart, csr).ok_or(TargetError::NonFatal)?,
                    size,
                )
            }
        };
        let bytes = value.to_le_bytes();
        let n = size.min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn write_register(&mut self, tid: Tid, reg: Rv64RegId, val: &[u8]) -> TargetResult<(), Self> {
        let hart = self.hart(tid)?;
        let mut bytes = [0u8; 8];
        let n = val.len().min(8);
        bytes[..n].copy_from_slice(&val[..n]);
        let value = u64::from_le_bytes(bytes);
        match reg {
            Rv64RegId::X(0) => {}
            Rv64RegId::X(i) => hart.state.x[i] = value,
            Rv64RegId::Pc => hart.state.pc = value,
            Rv64RegId::F(i) => hart.state.f[i] = value,
            Rv64RegId::Csr(FFLAGS) => {
                hart.state.fcsr = (hart.state.fcsr & !0x1f) | (value as u32 & 0x1f)
            }
            Rv64RegId::Csr(FRM) => {
                hart.state.fcsr = (hart.state.fcsr & !0xe0) | ((value as u32 & 7) << 5)
            }
            Rv64RegId::Csr(FCSR) => hart.state.fcsr = value as u32 & 0xff,
            Rv64RegId::Csr(csr) => {
                if !cpu_riscv::csr::debug_write(hart, csr, value) {
                    return Err(TargetError::NonFatal);
                }
            }
            Rv64RegId::Priv => match value {
                0 | 1 | 3 => hart.state.privilege = value as u8,
                _ => return Err(TargetError::NonFatal),
            },
        }
        Ok(())
    }
}

impl MultiThreadResume for GdbTarget {
    fn resume(&mut self) -> Result<(), String> {
        // A hart sitting on a breakpoint executes it instead of stopping again.
        for hart in self.machine.harts_mut() {
            hart.resume_from_breakpoint();
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), String> {
        self.resume = vec![None; self.machine.harts().len()];
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), String> {
        let slot = self
            .resume
            .get_mut(hart_index(tid))
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
            .get_mut(hart_index(tid))
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
        for hart in self.machine.harts_mut() {
            hart.insert_breakpoint(addr);
        }
        Ok(true)
    }

    fn remove_breakpoint(&mut self, addr: u64) -> TargetResult<bool, Self> {
        let mut found = false;
        for hart in self.machine.harts_mut() {
            found |= hart.remove_breakpoint(addr);
        }
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

fn hart_watch(kind: WatchKind) -> HartWatch {
    match kind {
        WatchKind::Read => HartWatch::Read,
        WatchKind::Write => HartWatch::Write,
        WatchKind::ReadWrite => HartWatch::Access,
    }
}

impl HwWatchpoint for GdbTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        for hart in self.machine.harts_mut() {
            hart.insert_watchpoint(addr, len, hart_watch(kind));
        }
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let mut found = false;
        for hart in self.machine.harts_mut() {
            found |= hart.remove_watchpoint(addr, len, hart_watch(kind));
        }
        Ok(found)
    }
}

/// Parses a number in hex (0x...) or decimal.
fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
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
                outputln!(
                    out,
                    "  info mmu VA               translate VA on hart 0 (satp, physical address)"
                );
                outputln!(out, "  phys read ADDR LEN        dump physical memory");
                outputln!(out, "  reset                     reset the machine");
                outputln!(
                    out,
                    "  stats                     instructions and JIT figures"
                );
            }
            ["info", "mmu", va] => {
                let Some(va) = number(va) else {
                    outputln!(out, "bad address '{va}'");
                    return Ok(());
                };
                let hart = &mut self.machine.harts_mut()[0];
                let satp = cpu_riscv::csr::debug_read(hart, 0x180).unwrap_or(0);
                let mode = match satp >> 60 {
                    0 => "bare",
                    8 => "sv39",
                    9 => "sv48",
                    10 => "sv57",
                    _ => "?",
                };
                outputln!(
                    out,
                    "satp {satp:#x} ({mode}), privilege {}",
                    hart.state.privilege
                );
                match hart.debug_translate(va) {
                    Ok(pa) => outputln!(out, "{va:#x} -> {pa:#x}"),
                    Err(trap) => outputln!(out, "{va:#x}: not mapped for reading ({trap:?})"),
                }
            }
            ["phys", "read", addr, len] => {
                let (Some(addr), Some(len)) = (number(addr), number(len)) else {
                    outputln!(out, "usage: phys read ADDR LEN");
                    return Ok(());
                };
                let mut buf = vec![0u8; len.min(4096) as usize];
                let hart = &self.machine.harts()[0];
                if hart.debug_read_phys(addr, &mut buf) != buf.len() {
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
                if let Some(jit) = self.machine.jit_stats() {
                    outputln!(
                        out,
                        "jit: {} blocks compiled ({} instructions) in {:.3} s, {} invalidations",
                        jit.blocks_compiled,
                        jit.instructions_compiled,
                        jit.compile_time.as_secs_f64(),
                        jit.invalidations
                    );
                }
            }
            _ => outputln!(out, "unknown monitor command '{text}' (try 'monitor help')"),
        }
        Ok(())
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
                DebugEvent::Stopped { hart, stop } => match stop {
                    DebugStop::Breakpoint(_) => MultiThreadStopReason::SwBreak(tid_of(hart)),
                    DebugStop::Watchpoint { kind, addr } => MultiThreadStopReason::Watch {
                        tid: tid_of(hart),
                        kind: match kind {
                            HartWatch::Read => WatchKind::Read,
                            HartWatch::Write => WatchKind::Write,
                            HartWatch::Access => WatchKind::ReadWrite,
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
    mut machine: RiscvVirt,
    listener: TcpListener,
    wait: bool,
) -> (RiscvVirt, Result<SessionEnd, String>) {
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
    let harts = machine.harts().len();
    let mut target = GdbTarget {
        machine,
        resume: vec![None; harts],
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
    for hart in target.machine.harts_mut() {
        hart.clear_debug();
    }
    (target.machine, end)
}
