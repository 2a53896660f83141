//! User-mode emulation: a foreign-architecture Linux process run directly on the
//! host, as QEMU's `qemu-riscv64` does. A [`LinuxCpu`] runs the program over a
//! [`space::UserMemory`]; its system calls come back here as
//! [`CpuExit::Syscall`] and become host system calls ([`syscall`]), and its
//! faults become signals. What is particular to an architecture is behind
//! [`arch`]; riscv64 is [`riscv64`].

pub mod arch;
pub mod elf;
pub mod fault;
mod net;
pub mod riscv64;
pub mod signal;
pub mod space;
pub mod syscall;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use emu_core::{Bus, GuestPhysAddr, RunControl, VirtualClock};

pub use arch::{Arch, CpuExit, LinuxCpu};
use space::UserMemory;

/// Guest instructions per run slice.
const SLICE: u64 = 1 << 20;
/// The timebase riscv64 Linux reports for `rdtime` (10 MHz, as QEMU's virt).
const TIMEBASE_HZ: u64 = 10_000_000;

/// The architectures `turing user` runs.
pub static ARCHES: &[&Arch] = &[&riscv64::RISCV64];

/// The architecture of programs with ELF machine `machine`.
pub fn for_elf_machine(machine: u16) -> Option<&'static Arch> {
    ARCHES.iter().copied().find(|a| a.elf_machine == machine)
}

/// The architecture of the program at `path` (a host path), by its ELF
/// header; None for anything Turing does not run.
pub fn arch_of(path: &Path) -> std::io::Result<Option<&'static Arch>> {
    let mut head = [0u8; 64];
    let len = std::io::Read::read(&mut std::fs::File::open(path)?, &mut head)?;
    Ok(elf::elf_machine(&head[..len]).and_then(for_elf_machine))
}

/// The supported architectures' names, for messages ("riscv64").
pub fn supported() -> String {
    ARCHES.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// How a user-mode run is set up.
#[derive(Clone, Debug, Default)]
pub struct UserOptions {
    /// The riscv64 root that absolute paths are looked up in first (QEMU's `-L`).
    pub sysroot: Option<PathBuf>,
    /// The program's `argv[0]`, when it differs from the path (busybox applets).
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

/// A loaded Linux process.
pub struct Process {
    cpu: Box<dyn LinuxCpu>,
    state: syscall::ProcessState,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("state", &self.state)
            .finish()
    }
}

impl Process {
    /// Loads `program` with `args` (argv[1..]) and `env` (K=V strings); its ELF
    /// machine chooses the architecture.
    pub fn load(
        program: &Path,
        args: &[String],
        env: &[String],
        options: &UserOptions,
    ) -> Result<Process, String> {
        let host_path = elf::in_sysroot(options.sysroot.as_deref(), program);
        // Anything not ours is refused by the loader with the reason.
        let arch = arch_of(&host_path)
            .map_err(|e| format!("{}: {e}", host_path.display()))?
            .unwrap_or(ARCHES[0]);
        let memory = UserMemory::new()?;
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
            arch,
            &memory,
            &host_path,
            options.sysroot.as_deref(),
            &argv,
            &envp,
            random,
        )?;
        signal::map_trampoline(&memory, arch);
        let control = Arc::new(RunControl::new());
        let bus = Arc::new(
            Bus::new(GuestPhysAddr(0), memory.ram.clone(), control)
                .map_err(|e| format!("cannot set up the address space: {e}"))?,
        );
        let clock = Arc::new(VirtualClock::host(TIMEBASE_HZ));
        let mut cpu = (arch.new_cpu)(bus, clock, Arc::new(memory.clone()));
        if let Some(threshold) = options.jit_threshold {
            start_jit(cpu.as_mut(), threshold)?;
        }
        cpu.start(
            loaded.interp.map_or(loaded.main.entry, |i| i.entry),
            loaded.sp,
        );
        let exe = std::fs::canonicalize(&host_path).unwrap_or(host_path);
        let state = syscall::ProcessState::new(arch, memory, loaded.brk, exe, options);
        Ok(Process { cpu, state })
    }

    /// The main thread's CPU (for `--stats`).
    pub fn main_cpu(&self) -> &dyn LinuxCpu {
        self.cpu.as_ref()
    }

    /// Runs the process until it exits or is killed.
    pub fn run(&mut self) -> ProcessEnd {
        run_thread(self.cpu.as_mut(), &mut self.state)
    }
}

/// Turns on the translator for a guest thread's CPU. With a host core to
/// spare, it compiles on a thread of its own while the CPU interprets: most of
/// a short program's time is compiling (ripgrep over a folder: 60 % of the run
/// on the thread itself).
fn start_jit(cpu: &mut dyn LinuxCpu, threshold: u32) -> Result<(), String> {
    let background = std::thread::available_parallelism().map_or(1, usize::from) > 1;
    cpu.enable_jit(threshold, background)
}

/// Runs one guest thread until it exits or a fault kills the process.
fn run_thread(cpu: &mut dyn LinuxCpu, state: &mut syscall::ProcessState) -> ProcessEnd {
    let _faults = fault::enter(&state.memory, state.options.strace);
    loop {
        state.sync_address_space(cpu);
        let (signal, code, address) = match cpu.run(SLICE) {
            CpuExit::Syscall => match syscall::dispatch(cpu, state) {
                syscall::Outcome::Continue => continue,
                syscall::Outcome::End(end) => return end,
            },
            CpuExit::Budget => {
                if let syscall::Outcome::End(end) = syscall::deliver_pending(cpu, state) {
                    return end;
                }
                continue;
            }
            CpuExit::Fault {
                signal,
                code,
                address,
            } => {
                // SEGV_ACCERR rather than SEGV_MAPERR where the page is mapped.
                let mapped =
                    signal == libc::SIGSEGV && state.memory.areas.prot_at(address).is_some();
                (signal, if mapped { 2 } else { code }, address)
            }
        };
        if state.options.strace {
            eprintln!(
                "--- {} at pc {:#x} (address {address:#x}) ---",
                syscall::signal_name(signal),
                cpu.pc(),
            );
        }
        let blocked = state.signal_mask & (1 << (signal - 1)) != 0;
        if signal::has_handler(state, signal)
            && !blocked
            && signal::deliver(cpu, state, signal, code, address)
        {
            continue;
        }
        return ProcessEnd::Signaled(signal);
    }
}

/// `clone` with CLONE_THREAD: a new CPU on a new host thread, sharing the
/// address space; returns the new thread's id (a host tid).
pub(crate) fn spawn_thread(
    cpu: &mut dyn LinuxCpu,
    state: &mut syscall::ProcessState,
    a: [u64; 6],
) -> i64 {
    use syscall::{CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CLONE_SETTLS};
    let (flags, stack, parent_tid, tls, child_tid) = (a[0], a[1], a[2], a[3], a[4]);
    let tls = (flags & CLONE_SETTLS != 0).then_some(tls);
    let mut child = cpu.new_thread(Arc::new(state.memory.clone()), stack, tls);
    if let Some(threshold) = state.options.jit_threshold
        && start_jit(child.as_mut(), threshold).is_err()
    {
        return -i64::from(libc::EAGAIN);
    }
    let mut child_state = state.new_thread();
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child_state.clear_child_tid = child_tid;
    }
    let (started, tid) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("guest-thread".to_owned())
        .spawn(move || {
            // SAFETY: plain getter.
            let tid = unsafe { libc::gettid() };
            let memory = child_state.memory.clone();
            if flags & CLONE_CHILD_SETTID != 0 {
                let _ = memory.write(child_tid, &tid.to_le_bytes());
            }
            if flags & CLONE_PARENT_SETTID != 0 {
                let _ = memory.write(parent_tid, &tid.to_le_bytes());
            }
            signal::apply_host_mask(child_state.signal_mask);
            let _ = started.send(tid);
            match run_thread(child.as_mut(), &mut child_state) {
                ProcessEnd::Exited(_) => end_thread(&child_state),
                ProcessEnd::Signaled(signal) => kill_process(signal),
            }
        });
    match spawned {
        Ok(_) => tid.recv().map_or(-i64::from(libc::EAGAIN), i64::from),
        Err(_) => -i64::from(libc::EAGAIN),
    }
}

/// A thread's exit: clears its tid word and wakes whoever joins it.
fn end_thread(state: &syscall::ProcessState) {
    let at = state.clear_child_tid;
    if at == 0 {
        return;
    }
    if state.memory.write(at, &0u32.to_le_bytes()).is_ok()
        && let Ok(word) = state.memory.host_pointer(at, 4, space::PROT_READ)
    {
        // SAFETY: `word` is 4 mapped bytes of guest memory; FUTEX_WAKE only
        // reads the address.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word,
                libc::FUTEX_WAKE,
                i32::MAX,
                0usize,
                0usize,
                0u32,
            );
        }
    }
}

/// Ends the whole process with `signal`, as a fatal guest signal does.
pub fn kill_process(signal: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: restores the default action and sends the signal to the whole
    // process; nothing of ours runs as a handler.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::kill(libc::getpid(), signal);
    }
    std::process::exit(128 + signal)
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

/// A bare riscv64 process for unit tests: a hart and the system calls' state.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use cpu_riscv::hart::Hart;

    /// A riscv64 process's hart and state, for tests that look at registers.
    pub(crate) struct BareProcess {
        pub(crate) hart: Hart,
        pub(crate) state: syscall::ProcessState,
    }

    /// A process with one mapped read-write page at 0x10000 and nothing loaded.
    pub(crate) fn bare_process() -> BareProcess {
        let memory = UserMemory::new().expect("reserve");
        memory.map_zeroed(0x10000, 0x1000, space::PROT_READ | space::PROT_WRITE);
        let control = Arc::new(RunControl::new());
        let bus = Arc::new(Bus::new(GuestPhysAddr(0), memory.ram.clone(), control).expect("bus"));
        let clock = Arc::new(VirtualClock::host(TIMEBASE_HZ));
        let mut hart = Hart::new(0, bus, clock);
        hart.enter_user_mode(Arc::new(memory.clone()));
        let state = syscall::ProcessState::new(
            &riscv64::RISCV64,
            memory,
            0x100000,
            PathBuf::from("/nonexistent"),
            &UserOptions::default(),
        );
        BareProcess { hart, state }
    }

    impl BareProcess {
        /// Makes system call `number` with `args` as an `ecall` at 0x10000 would,
        /// and returns a0.
        pub(crate) fn call(&mut self, number: u64, args: &[u64]) -> i64 {
            let mut a = [0u64; 6];
            a[..args.len()].copy_from_slice(args);
            self.hart.state.x[17] = number;
            self.hart.state.x[10..16].copy_from_slice(&a);
            self.hart.state.pc = 0x10000;
            let outcome = syscall::dispatch(&mut self.hart, &mut self.state);
            assert!(matches!(outcome, syscall::Outcome::Continue), "{outcome:?}");
            self.hart.state.x[10] as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::nr;
    use cpu_riscv::hart::{Hart, RunExit};
    use cpu_riscv::test_asm::{EBREAK, RET, addi, blt, jal, sw};
    use cpu_riscv::trap::cause;
    use testing::bare_process;

    /// System calls with hostile arguments (unmapped, wrapping, huge, misaligned
    /// pointers and lengths) return errors; none may panic or hurt the host.
    #[test]
    fn system_calls_survive_hostile_arguments() {
        // Calls that only read, query or touch fds this test does not own.
        let calls = [
            nr::READ,
            nr::WRITE,
            nr::PREAD64,
            nr::PWRITE64,
            nr::READV,
            nr::WRITEV,
            nr::OPENAT,
            nr::NEWFSTATAT,
            nr::FSTAT,
            nr::STATX,
            nr::STATFS,
            nr::FSTATFS,
            nr::READLINKAT,
            nr::FACCESSAT,
            nr::GETDENTS64,
            nr::LSEEK,
            nr::IOCTL,
            nr::FCNTL,
            nr::GETCWD,
            nr::UNAME,
            nr::CLOCK_GETTIME,
            nr::GETTIMEOFDAY,
            nr::GETRANDOM,
            nr::PPOLL,
            nr::PSELECT6,
            nr::MMAP,
            nr::MUNMAP,
            nr::MPROTECT,
            nr::MREMAP,
            nr::BRK,
            nr::FUTEX,
            nr::RT_SIGPROCMASK,
            nr::SIGALTSTACK,
            nr::GETRLIMIT,
            nr::PRLIMIT64,
            nr::SYSINFO,
            nr::TIMES,
            nr::GETRUSAGE,
            nr::GETGROUPS,
            nr::GETRESUID,
            nr::SENDFILE,
            nr::WAIT4,
            nr::SCHED_GETAFFINITY,
            nr::EPOLL_CTL,
            nr::EPOLL_PWAIT,
            nr::SENDMSG,
            nr::RECVMSG,
            nr::GETSOCKOPT,
            nr::RECVFROM,
            nr::SENDTO,
            nr::GETXATTR,
            nr::LGETXATTR,
            nr::FGETXATTR,
            nr::LISTXATTR,
            nr::FLISTXATTR,
            nr::GETITIMER,
            nr::TIMERFD_GETTIME,
            nr::TIMERFD_SETTIME,
            nr::CAPGET,
            nr::SCHED_GETPARAM,
            nr::SCHED_GETATTR,
            nr::SCHED_RR_GET_INTERVAL,
            nr::GETCPU,
            nr::RT_SIGPENDING,
            nr::RISCV_HWPROBE,
            nr::MINCORE,
            nr::MSYNC,
            nr::MADVISE,
            nr::MLOCK,
            nr::PREADV,
            nr::PWRITEV,
            nr::PREADV2,
            nr::SPLICE,
            nr::COPY_FILE_RANGE,
            nr::VMSPLICE,
            nr::OPENAT2,
            nr::WAITID,
            nr::GET_ROBUST_LIST,
            nr::PRCTL,
            nr::SENDMMSG,
            nr::RECVMMSG,
            nr::EPOLL_PWAIT2,
            nr::CLONE3,
            nr::IO_URING_SETUP,
            4000,
            u64::MAX,
        ];
        let values = [
            0u64,
            1,
            0x10000,
            0x10ff8,
            0x10fff,
            0x11000,
            0xffff_ff9c,
            1 << 38,
            (1 << 38) - 1,
            u64::MAX,
            u64::MAX - 7,
            1 << 63,
            0x7fff_ffff,
            4096,
        ];
        let mut process = bare_process();
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let number = calls[(next() % calls.len() as u64) as usize];
            let mut args = [0u64; 6];
            for arg in &mut args {
                *arg = values[(next() % values.len() as u64) as usize];
            }
            // Descriptors this test owns (and the harness's) stay out of reach.
            if !matches!(
                number,
                nr::MMAP | nr::MUNMAP | nr::MPROTECT | nr::MREMAP | nr::BRK | nr::FUTEX
            ) {
                args[0] = 100_000 + (next() % 4);
            }
            // Waits get a zero timeout (the mapped page holds zeros).
            if number == nr::PSELECT6 {
                args[4] = 0x10000;
            }
            if number == nr::PPOLL {
                args[2] = 0x10000;
            }
            if number == nr::EPOLL_PWAIT {
                args[3] = 0;
            }
            if number == nr::WAIT4 {
                args[2] |= 1; // WNOHANG
            }
            if number == nr::WAITID {
                args[3] |= 1; // WNOHANG
            }
            if number == nr::RECVMMSG {
                args[3] |= 0x40; // MSG_DONTWAIT
            }
            if number == nr::CLONE3 {
                args[1] = 8; // too small: EINVAL, never a new process
            }
            if number == nr::FUTEX {
                args[1] &= !0x7f; // FUTEX_WAIT with a mismatching value, never blocking
                args[2] = 0xdead;
            }
            process.hart.state.x[17] = number;
            process.hart.state.x[10..16].copy_from_slice(&args);
            process.hart.state.pc = 0x10000;
            let outcome = syscall::dispatch(&mut process.hart, &mut process.state);
            assert!(
                matches!(outcome, syscall::Outcome::Continue),
                "{number}: {outcome:?}"
            );
        }
    }

    /// Translated code loads directly from the window it was given and leaves
    /// an address beyond it to the interpreter, which faults precisely.
    #[test]
    fn translated_loads_beyond_the_user_space_fault_precisely() {
        let mut process = bare_process();
        let memory = process.state.memory.clone();
        memory.map_zeroed(0x20000, 0x1000, space::PROT_READ | space::PROT_EXEC);
        // loop: ld t0, 0(a0); addi a1, a1, 1; j loop
        let code: Vec<u8> = [0x0005_3283u32, 0x0015_8593, 0xff9f_f06f]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        memory.poke(0x20000, &code).unwrap();
        memory.poke(0x10008, &0x1234u64.to_le_bytes()).unwrap();
        let hart = &mut process.hart;
        hart.enable_jit(2).unwrap();
        hart.state.pc = 0x20000;
        hart.state.x[10] = 0x10008;
        assert_eq!(hart.run(30_000), RunExit::Budget);
        assert_eq!(hart.state.x[5], 0x1234);
        let mut rounds = hart.state.x[11];
        assert!(rounds >= 9_000, "{rounds}");
        let stats = hart.jit_stats().unwrap();
        assert!(stats.blocks_compiled >= 1, "{stats:?}");
        assert_eq!(hart.direct_window(), Some(space::USER_SPACE_SIZE));
        for beyond in [space::USER_SPACE_SIZE, 1 << 40, u64::MAX - 3] {
            hart.state.x[10] = beyond;
            assert_eq!(hart.run(1000), RunExit::UserTrap);
            let trap = hart.take_user_trap().unwrap();
            assert_eq!(trap.cause, cause::LOAD_PAGE_FAULT);
            assert_eq!(trap.tval, beyond);
            // Stopped at the load, the loop's count as it was (the last run
            // may have ended before or after the addi).
            assert_eq!(hart.state.pc, 0x20000);
            let count = hart.state.x[11];
            assert!(count == rounds || count == rounds + 1, "{count} {rounds}");
            // Back in range, the translation goes on.
            hart.state.x[10] = 0x10008;
            assert_eq!(hart.run(3000), RunExit::Budget);
            assert!(hart.state.x[11] > count + 900, "{}", hart.state.x[11]);
            rounds = hart.state.x[11];
        }
    }

    /// add s2, s2, a0
    const ADD_S2_S2_A0: u32 = (10 << 20) | (18 << 15) | (18 << 7) | 0x33;
    /// slli a0, a0, 1
    const SLLI_A0_A0_1: u32 = (1 << 20) | (10 << 15) | (1 << 12) | (10 << 7) | 0x13;

    fn poke_code(memory: &UserMemory, at: u64, code: &[u32]) {
        let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
        memory.poke(at, &bytes).unwrap();
    }

    /// Runs from `pc` to the next ebreak with s1 = 0, s2 = 0, s3 = `rounds`;
    /// returns s2.
    fn run_to_ebreak(hart: &mut Hart, pc: u64, rounds: u64) -> u64 {
        hart.state.pc = pc;
        hart.state.x[9] = 0;
        hart.state.x[18] = 0;
        hart.state.x[19] = rounds;
        assert_eq!(hart.run(1_000_000), RunExit::UserTrap);
        let trap = hart.take_user_trap().unwrap();
        assert_eq!(
            trap.cause,
            cause::BREAKPOINT,
            "{trap:?} at {:#x}",
            hart.state.pc
        );
        hart.state.x[18]
    }

    /// A loop that calls a function in another page runs as one translation,
    /// its return checked against the call's continuation; a function that
    /// returns elsewhere still goes where it says, and a store into the
    /// callee's page drops the translation.
    #[test]
    fn loops_that_call_into_other_pages_are_one_translation() {
        for jit in [false, true] {
            let mut process = bare_process();
            let memory = process.state.memory.clone();
            let _faults = fault::enter(&memory, false);
            let rwx = space::PROT_READ | space::PROT_WRITE | space::PROT_EXEC;
            memory.map_zeroed(0x20000, 0x1000, space::PROT_READ | space::PROT_EXEC);
            memory.map_zeroed(0x30000, 0x1000, rwx);
            // loop: a0 = s1; call f; s2 += a0; s1 += 1; while s1 < s3
            poke_code(
                &memory,
                0x20000,
                &[
                    addi(10, 9, 0),
                    jal(1, 0x30000 - 0x20004),
                    ADD_S2_S2_A0,
                    addi(9, 9, 1),
                    blt(9, 19, -0x10),
                    EBREAK,
                ],
            );
            // loop2: call g (returns past the next instruction); s2 += 1
            poke_code(
                &memory,
                0x20100,
                &[
                    jal(1, 0x30100 - 0x20100),
                    addi(18, 18, 100),
                    addi(18, 18, 1),
                    addi(9, 9, 1),
                    blt(9, 19, -0x10),
                    EBREAK,
                ],
            );
            // Patch f: sw t0, 0(t1)
            poke_code(&memory, 0x20200, &[sw(5, 6, 0), EBREAK]);
            // f: a0 = 2 * a0 + 3
            poke_code(&memory, 0x30000, &[SLLI_A0_A0_1, addi(10, 10, 3), RET]);
            // g: return 4 bytes past the call's continuation
            poke_code(&memory, 0x30100, &[addi(1, 1, 4), RET]);
            let hart = &mut process.hart;
            if jit {
                hart.enable_jit(2).unwrap();
            }
            let rounds = 5000;
            let expect = |k: u64| (0..rounds).map(|i| 2 * i + k).sum::<u64>();
            assert_eq!(run_to_ebreak(hart, 0x20000, rounds), expect(3));
            if jit {
                let stats = hart.jit_stats().unwrap();
                // One translation ran the loop, call and return included.
                assert!(stats.chained < 100, "{stats:?}");
                assert!(stats.blocks_run < 100, "{stats:?}");
            }
            assert_eq!(run_to_ebreak(hart, 0x20100, rounds), rounds);
            // The guest rewrites f's addi to add 5.
            hart.state.x[5] = u64::from(addi(10, 10, 5));
            hart.state.x[6] = 0x30004;
            run_to_ebreak(hart, 0x20200, 0);
            assert_eq!(run_to_ebreak(hart, 0x20000, rounds), expect(5), "jit {jit}");
        }
    }
}
