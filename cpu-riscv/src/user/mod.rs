//! User-mode emulation: a riscv64 Linux process run directly on the host, as QEMU's
//! `qemu-riscv64` does. The hart runs the program in U-mode over a
//! [`space::UserMemory`]; its `ecall`s come back here as [`RunExit::UserTrap`] and
//! become host system calls ([`syscall`]), and its faults become signals.

pub mod elf;
pub mod space;
pub mod syscall;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use emu_core::{Bus, RunControl, VirtualClock};

use crate::hart::{Hart, RunExit};
use crate::trap::cause;
use space::UserMemory;

/// Guest instructions per run slice.
const SLICE: u64 = 1 << 20;
/// The timebase riscv64 Linux reports for `rdtime` (10 MHz, as QEMU's virt).
const TIMEBASE_HZ: u64 = 10_000_000;

/// How a user-mode run is set up.
#[derive(Clone, Debug, Default)]
pub struct UserOptions {
    /// The riscv64 root that absolute paths are looked up in first (QEMU's `-L`).
    pub sysroot: Option<PathBuf>,
    /// The program's argv[0], when it differs from the path (busybox applets).
    pub argv0: Option<String>,
    /// Print every system call with its arguments and result on stderr.
    pub strace: bool,
    /// Compile hot blocks with Cranelift after this many runs (None: interpret).
    pub jit_threshold: Option<u32>,
}

/// How the guest process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// `exit` or `exit_group` with this status.
    Exited(i32),
    /// Killed by this signal (a fault with no handler, or a fatal signal).
    Signaled(i32),
}

/// A loaded riscv64 Linux process.
#[derive(Debug)]
pub struct Process {
    hart: Hart,
    state: syscall::ProcessState,
}

impl Process {
    /// Loads `program` with `args` (argv[1..]) and `env` (K=V strings).
    pub fn load(
        program: &Path,
        args: &[String],
        env: &[String],
        options: &UserOptions,
    ) -> Result<Process, String> {
        let memory = UserMemory::new()?;
        let host_path = elf::in_sysroot(options.sysroot.as_deref(), program);
        let argv0 = options
            .argv0
            .clone()
            .unwrap_or_else(|| program.display().to_string());
        let mut argv = vec![argv0.into_bytes()];
        argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
        let envp: Vec<Vec<u8>> = env.iter().map(|e| e.as_bytes().to_vec()).collect();
        let mut random = [0u8; 16];
        getrandom_bytes(&mut random);
        let loaded = elf::load_program(
            &memory,
            &host_path,
            options.sysroot.as_deref(),
            &argv,
            &envp,
            random,
        )?;
        let control = Arc::new(RunControl::new());
        let bus = Bus::new(0, memory.ram.clone(), control)
            .map_err(|e| format!("cannot set up the address space: {e}"))?;
        let clock = Arc::new(VirtualClock::host(TIMEBASE_HZ));
        let mut hart = Hart::new(0, Arc::new(bus), clock);
        // rdcycle, rdtime and rdinstret work in U-mode, as Linux allows.
        hart.state.mcounteren = 7;
        hart.state.scounteren = 7;
        hart.enter_user_mode(memory.areas.clone());
        if let Some(threshold) = options.jit_threshold {
            hart.enable_jit(threshold)?;
        }
        hart.state.pc = loaded.interp.map_or(loaded.main.entry, |i| i.entry);
        hart.state.x[2] = loaded.sp;
        let exe = std::fs::canonicalize(&host_path).unwrap_or(host_path);
        let state = syscall::ProcessState::new(memory, loaded.brk, exe, options);
        Ok(Process { hart, state })
    }

    /// Runs the process until it exits or is killed.
    pub fn run(&mut self) -> ProcessEnd {
        loop {
            match self.hart.run(SLICE) {
                RunExit::UserTrap => {}
                RunExit::Budget | RunExit::WaitForInterrupt | RunExit::Stopped => {
                    if let Some(end) = self.state.pending_end() {
                        return end;
                    }
                    continue;
                }
                RunExit::Debug => continue,
            }
            let Some(trap) = self.hart.take_user_trap() else {
                continue;
            };
            let signal = match trap.cause {
                cause::ECALL_FROM_U => match syscall::dispatch(&mut self.hart, &mut self.state) {
                    syscall::Outcome::Continue => continue,
                    syscall::Outcome::End(end) => return end,
                },
                cause::LOAD_PAGE_FAULT
                | cause::STORE_PAGE_FAULT
                | cause::INSTRUCTION_PAGE_FAULT
                | cause::LOAD_ACCESS_FAULT
                | cause::STORE_ACCESS_FAULT
                | cause::INSTRUCTION_ACCESS_FAULT => libc::SIGSEGV,
                cause::LOAD_MISALIGNED
                | cause::STORE_MISALIGNED
                | cause::INSTRUCTION_MISALIGNED => libc::SIGBUS,
                cause::BREAKPOINT => libc::SIGTRAP,
                _ => libc::SIGILL,
            };
            if self.state.options.strace {
                eprintln!(
                    "--- {} at pc {:#x} (address {:#x}) ---",
                    syscall::signal_name(signal),
                    self.hart.state.pc,
                    trap.tval
                );
            }
            return ProcessEnd::Signaled(signal);
        }
    }

    /// Guest instructions retired so far.
    pub fn instructions(&self) -> u64 {
        self.hart.state.instret
    }
}

fn getrandom_bytes(buf: &mut [u8]) {
    // SAFETY: the kernel writes at most buf.len() bytes into buf, which we own.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // No entropy (very old kernels): fall back to the clock, still distinct.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        buf.copy_from_slice(&t.to_le_bytes()[..16]);
    }
}

/// The binfmt_misc registration line for riscv64 ELF executables, running them
/// with `interpreter` (this binary, as `turing user`). The F flag makes the kernel
/// open the interpreter at registration, so it works inside containers and chroots.
pub fn binfmt_line(interpreter: &Path) -> String {
    let magic = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00";
    let mask = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
    format!(
        ":turing-riscv64:M::{magic}:{mask}:{}:POCF",
        interpreter.display()
    )
}
