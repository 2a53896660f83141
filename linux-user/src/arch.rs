//! What user-mode emulation needs of a guest architecture, so the rest of the
//! crate (loading, the system call handlers, signals, threads) is shared: an
//! [`Arch`] describes the ABI (ELF machine, auxiliary vector, system call
//! table), and a [`LinuxCpu`] is one thread's CPU with the register conventions
//! and signal frames of that ABI. riscv64 is [`crate::riscv64`]; another
//! architecture is another such file.

use std::sync::Arc;

use emu_core::{Bus, VirtualClock};

use crate::space::UserMemory;
use crate::syscall::Syscall;

/// Makes a process's first CPU, attached to a bus and clock, in user mode on
/// the process's memory.
pub type NewCpu = fn(Arc<Bus>, Arc<VirtualClock>, Arc<UserMemory>) -> Box<dyn LinuxCpu>;

/// A guest architecture's Linux ABI.
pub struct Arch {
    /// Linux's name for it (`uname -m`, messages).
    pub name: &'static str,
    /// The ELF `e_machine` of its programs.
    pub elf_machine: u16,
    /// AT_HWCAP for the emulated CPU.
    pub hwcap: u64,
    /// Its system calls, ordered by number.
    pub syscalls: &'static [Syscall],
    /// The code of the page signal handlers return through (it calls
    /// `rt_sigreturn`), mapped at [`crate::signal::TRAMPOLINE`].
    pub sigreturn_code: &'static [u8],
    /// A CPU for a new process: user mode on `memory`, registers zero.
    pub new_cpu: NewCpu,
}

impl std::fmt::Debug for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arch").field("name", &self.name).finish()
    }
}

/// Why [`LinuxCpu::run`] came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuExit {
    /// The budget ran out (or the CPU was asked to stop): nothing to do but
    /// deliver pending signals.
    Budget,
    /// The guest made a system call ([`LinuxCpu::syscall`] has it).
    Syscall,
    /// A guest instruction faulted: the signal Linux would send, its si_code
    /// and the address (si_addr).
    Fault {
        /// SIGSEGV, SIGBUS, SIGILL, SIGTRAP or SIGFPE.
        signal: i32,
        /// si_code.
        code: i32,
        /// The faulting address (or the instruction's).
        address: u64,
    },
}

/// What the signal frame of a handler holds besides the CPU's registers.
#[derive(Clone, Copy, Debug)]
pub struct SignalFrame {
    /// The signal.
    pub signal: i32,
    /// `siginfo_t`, as Linux lays it out on every 64-bit architecture.
    pub info: [u8; 128],
    /// The blocked set to restore on return.
    pub saved_mask: u64,
    /// The stack the frame goes on (its top).
    pub stack_top: u64,
    /// The alternate stack: base, size, and `ss_flags` as `sigaltstack` reports.
    pub alt_stack: (u64, u64, u32),
    /// The handler's address.
    pub handler: u64,
    /// Where the handler returns to: the sigreturn trampoline.
    pub restorer: u64,
}

/// One guest thread's CPU, as user-mode emulation drives it.
pub trait LinuxCpu: Send {
    /// Runs guest code for at most `budget` instructions.
    fn run(&mut self, budget: u64) -> CpuExit;

    /// The pending system call's number and its six arguments.
    fn syscall(&self) -> (u64, [u64; 6]);

    /// Completes the system call with `result` (its return register) and moves
    /// past the instruction that made it.
    fn finish_syscall(&mut self, result: u64);

    /// The program counter.
    fn pc(&self) -> u64;

    /// The stack pointer.
    fn stack_pointer(&self) -> u64;

    /// Points the CPU at a new program: entry point and initial stack.
    fn start(&mut self, entry: u64, stack: u64);

    /// The guest's code or mappings changed under this thread (another thread
    /// unmapped or reprotected memory, or flushed the instruction cache): drop
    /// what was decoded or translated from it.
    fn flush_code(&mut self);

    /// In the child of a `fork`: whatever threads the CPU kept (a compile
    /// thread) stayed in the parent.
    fn after_fork(&mut self);

    /// Turns on the translator: code that ran `threshold` times is compiled,
    /// on a thread of its own with `background`.
    fn enable_jit(&mut self, threshold: u32, background: bool) -> Result<(), String>;

    /// A CPU for a new thread (`clone` with CLONE_THREAD) on the same memory:
    /// this one's registers, except that it returns 0 from the system call,
    /// runs on `stack` (unless 0) and has `tls` as its thread pointer (if set).
    fn new_thread(
        &self,
        memory: Arc<UserMemory>,
        stack: u64,
        tls: Option<u64>,
    ) -> Box<dyn LinuxCpu>;

    /// In a child process made by `clone`: runs on `stack` (unless 0) with
    /// thread pointer `tls` (if set).
    fn set_child_registers(&mut self, stack: u64, tls: Option<u64>);

    /// Pushes the frame for a signal handler on the guest stack (to `memory`)
    /// and points the CPU at the handler. False if the frame cannot be written.
    fn enter_signal_handler(&mut self, memory: &UserMemory, frame: &SignalFrame) -> bool;

    /// `rt_sigreturn`: restores the registers the frame at the stack pointer
    /// saved, and returns the blocked set it saved (None if unreadable).
    fn return_from_signal(&mut self, memory: &UserMemory) -> Option<u64>;

    /// Guest instructions retired.
    fn instructions_retired(&self) -> u64;

    /// The translator's statistics, when it is on.
    fn jit_stats(&self) -> Option<jit_core::JitStats>;
}
