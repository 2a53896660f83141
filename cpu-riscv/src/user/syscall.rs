//! riscv64 Linux system calls, carried out on the host.
//!
//! File descriptors, process ids and most flag values mean the same on both sides
//! (riscv64 and x86-64 Linux share the generic definitions), so most calls pass
//! through with their buffers copied between guest and host memory. Where layouts
//! differ (`struct stat`, `uname`'s machine) they are converted. Guest memory is
//! only touched through [`UserMemory`], which checks the guest's own page
//! permissions, so a bad pointer gives EFAULT, never a host fault.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use emu_core::sync::LockRecover;
use emu_core::{Bus, VirtualClock};

use crate::hart::Hart;

use super::space::{
    Fault, MMAP_MIN_ADDR, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_SPACE_SIZE, UserMemory,
    page_up,
};

use super::{ProcessEnd, UserOptions, elf};

/// riscv64 (asm-generic) system call numbers.
#[allow(missing_docs, reason = "the names are Linux's")]
pub mod nr {
    pub const GETCWD: u64 = 17;
    pub const DUP: u64 = 23;
    pub const DUP3: u64 = 24;
    pub const FCNTL: u64 = 25;
    pub const IOCTL: u64 = 29;
    pub const MKDIRAT: u64 = 34;
    pub const UNLINKAT: u64 = 35;
    pub const SYMLINKAT: u64 = 36;
    pub const LINKAT: u64 = 37;
    pub const STATFS: u64 = 43;
    pub const FSTATFS: u64 = 44;
    pub const FTRUNCATE: u64 = 46;
    pub const FACCESSAT: u64 = 48;
    pub const CHDIR: u64 = 49;
    pub const FCHDIR: u64 = 50;
    pub const FCHMOD: u64 = 52;
    pub const FCHMODAT: u64 = 53;
    pub const FCHOWNAT: u64 = 54;
    pub const FCHOWN: u64 = 55;
    pub const OPENAT: u64 = 56;
    pub const CLOSE: u64 = 57;
    pub const PIPE2: u64 = 59;
    pub const GETDENTS64: u64 = 61;
    pub const LSEEK: u64 = 62;
    pub const READ: u64 = 63;
    pub const WRITE: u64 = 64;
    pub const READV: u64 = 65;
    pub const WRITEV: u64 = 66;
    pub const PREAD64: u64 = 67;
    pub const PWRITE64: u64 = 68;
    pub const SENDFILE: u64 = 71;
    pub const PSELECT6: u64 = 72;
    pub const PPOLL: u64 = 73;
    pub const READLINKAT: u64 = 78;
    pub const NEWFSTATAT: u64 = 79;
    pub const FSTAT: u64 = 80;
    pub const SYNC: u64 = 81;
    pub const FSYNC: u64 = 82;
    pub const FDATASYNC: u64 = 83;
    pub const UTIMENSAT: u64 = 88;
    pub const EXIT: u64 = 93;
    pub const EXIT_GROUP: u64 = 94;
    pub const SET_TID_ADDRESS: u64 = 96;
    pub const FUTEX: u64 = 98;
    pub const SET_ROBUST_LIST: u64 = 99;
    pub const NANOSLEEP: u64 = 101;
    pub const GETITIMER: u64 = 102;
    pub const SETITIMER: u64 = 103;
    pub const CLOCK_GETTIME: u64 = 113;
    pub const CLOCK_GETRES: u64 = 114;
    pub const CLOCK_NANOSLEEP: u64 = 115;
    pub const SCHED_GETAFFINITY: u64 = 123;
    pub const SCHED_YIELD: u64 = 124;
    pub const KILL: u64 = 129;
    pub const TKILL: u64 = 130;
    pub const TGKILL: u64 = 131;
    pub const SIGALTSTACK: u64 = 132;
    pub const RT_SIGACTION: u64 = 134;
    pub const RT_SIGSUSPEND: u64 = 133;
    pub const RT_SIGPROCMASK: u64 = 135;
    pub const RT_SIGTIMEDWAIT: u64 = 137;
    pub const RT_SIGRETURN: u64 = 139;
    pub const SETPRIORITY: u64 = 140;
    pub const GETPRIORITY: u64 = 141;
    pub const SETGID: u64 = 144;
    pub const SETUID: u64 = 146;
    pub const GETRESUID: u64 = 148;
    pub const GETRESGID: u64 = 150;
    pub const TIMES: u64 = 153;
    pub const SETPGID: u64 = 154;
    pub const GETPGID: u64 = 155;
    pub const GETSID: u64 = 156;
    pub const SETSID: u64 = 157;
    pub const GETGROUPS: u64 = 158;
    pub const UNAME: u64 = 160;
    pub const GETRLIMIT: u64 = 163;
    pub const SETRLIMIT: u64 = 164;
    pub const GETRUSAGE: u64 = 165;
    pub const UMASK: u64 = 166;
    pub const PRCTL: u64 = 167;
    pub const GETTIMEOFDAY: u64 = 169;
    pub const GETPID: u64 = 172;
    pub const GETPPID: u64 = 173;
    pub const GETUID: u64 = 174;
    pub const GETEUID: u64 = 175;
    pub const GETGID: u64 = 176;
    pub const GETEGID: u64 = 177;
    pub const GETTID: u64 = 178;
    pub const SYSINFO: u64 = 179;
    pub const BRK: u64 = 214;
    pub const MUNMAP: u64 = 215;
    pub const MREMAP: u64 = 216;
    pub const CLONE: u64 = 220;
    pub const EXECVE: u64 = 221;
    pub const MMAP: u64 = 222;
    pub const MPROTECT: u64 = 226;
    pub const MSYNC: u64 = 227;
    pub const MADVISE: u64 = 233;
    pub const WAIT4: u64 = 260;
    pub const PRLIMIT64: u64 = 261;
    pub const RISCV_HWPROBE: u64 = 258;
    pub const RISCV_FLUSH_ICACHE: u64 = 259;
    pub const RENAMEAT2: u64 = 276;
    pub const GETRANDOM: u64 = 278;
    pub const STATX: u64 = 291;
    pub const RSEQ: u64 = 293;
    pub const CLONE3: u64 = 435;
    pub const FACCESSAT2: u64 = 439;
    pub const EPOLL_CREATE1: u64 = 20;
    pub const EPOLL_CTL: u64 = 21;
    pub const EPOLL_PWAIT: u64 = 22;
    pub const SOCKET: u64 = 198;
    pub const SOCKETPAIR: u64 = 199;
    pub const BIND: u64 = 200;
    pub const LISTEN: u64 = 201;
    pub const ACCEPT: u64 = 202;
    pub const CONNECT: u64 = 203;
    pub const GETSOCKNAME: u64 = 204;
    pub const GETPEERNAME: u64 = 205;
    pub const SENDTO: u64 = 206;
    pub const RECVFROM: u64 = 207;
    pub const SETSOCKOPT: u64 = 208;
    pub const GETSOCKOPT: u64 = 209;
    pub const SHUTDOWN: u64 = 210;
    pub const SENDMSG: u64 = 211;
    pub const RECVMSG: u64 = 212;
    pub const ACCEPT4: u64 = 242;
}

/// The name of a system call, for `--strace` and warnings.
pub fn syscall_name(number: u64) -> String {
    let name = match number {
        nr::GETCWD => "getcwd",
        nr::DUP => "dup",
        nr::DUP3 => "dup3",
        nr::FCNTL => "fcntl",
        nr::IOCTL => "ioctl",
        nr::MKDIRAT => "mkdirat",
        nr::UNLINKAT => "unlinkat",
        nr::SYMLINKAT => "symlinkat",
        nr::LINKAT => "linkat",
        nr::STATFS => "statfs",
        nr::FSTATFS => "fstatfs",
        nr::FTRUNCATE => "ftruncate",
        nr::FACCESSAT => "faccessat",
        nr::CHDIR => "chdir",
        nr::FCHDIR => "fchdir",
        nr::FCHMOD => "fchmod",
        nr::FCHMODAT => "fchmodat",
        nr::FCHOWNAT => "fchownat",
        nr::FCHOWN => "fchown",
        nr::OPENAT => "openat",
        nr::CLOSE => "close",
        nr::PIPE2 => "pipe2",
        nr::GETDENTS64 => "getdents64",
        nr::LSEEK => "lseek",
        nr::READ => "read",
        nr::WRITE => "write",
        nr::READV => "readv",
        nr::WRITEV => "writev",
        nr::PREAD64 => "pread64",
        nr::PWRITE64 => "pwrite64",
        nr::SENDFILE => "sendfile",
        nr::PSELECT6 => "pselect6",
        nr::PPOLL => "ppoll",
        nr::READLINKAT => "readlinkat",
        nr::NEWFSTATAT => "newfstatat",
        nr::FSTAT => "fstat",
        nr::SYNC => "sync",
        nr::FSYNC => "fsync",
        nr::FDATASYNC => "fdatasync",
        nr::UTIMENSAT => "utimensat",
        nr::EXIT => "exit",
        nr::EXIT_GROUP => "exit_group",
        nr::SET_TID_ADDRESS => "set_tid_address",
        nr::FUTEX => "futex",
        nr::SET_ROBUST_LIST => "set_robust_list",
        nr::NANOSLEEP => "nanosleep",
        nr::GETITIMER => "getitimer",
        nr::SETITIMER => "setitimer",
        nr::CLOCK_GETTIME => "clock_gettime",
        nr::CLOCK_GETRES => "clock_getres",
        nr::CLOCK_NANOSLEEP => "clock_nanosleep",
        nr::SCHED_GETAFFINITY => "sched_getaffinity",
        nr::SCHED_YIELD => "sched_yield",
        nr::KILL => "kill",
        nr::TKILL => "tkill",
        nr::TGKILL => "tgkill",
        nr::SIGALTSTACK => "sigaltstack",
        nr::RT_SIGACTION => "rt_sigaction",
        nr::RT_SIGPROCMASK => "rt_sigprocmask",
        nr::RT_SIGSUSPEND => "rt_sigsuspend",
        nr::RT_SIGTIMEDWAIT => "rt_sigtimedwait",
        nr::RT_SIGRETURN => "rt_sigreturn",
        nr::SETPRIORITY => "setpriority",
        nr::GETPRIORITY => "getpriority",
        nr::SETGID => "setgid",
        nr::SETUID => "setuid",
        nr::GETRESUID => "getresuid",
        nr::GETRESGID => "getresgid",
        nr::TIMES => "times",
        nr::SETPGID => "setpgid",
        nr::GETPGID => "getpgid",
        nr::GETSID => "getsid",
        nr::SETSID => "setsid",
        nr::GETGROUPS => "getgroups",
        nr::UNAME => "uname",
        nr::GETRLIMIT => "getrlimit",
        nr::SETRLIMIT => "setrlimit",
        nr::GETRUSAGE => "getrusage",
        nr::UMASK => "umask",
        nr::PRCTL => "prctl",
        nr::GETTIMEOFDAY => "gettimeofday",
        nr::GETPID => "getpid",
        nr::GETPPID => "getppid",
        nr::GETUID => "getuid",
        nr::GETEUID => "geteuid",
        nr::GETGID => "getgid",
        nr::GETEGID => "getegid",
        nr::GETTID => "gettid",
        nr::SYSINFO => "sysinfo",
        nr::BRK => "brk",
        nr::MUNMAP => "munmap",
        nr::MREMAP => "mremap",
        nr::CLONE => "clone",
        nr::EXECVE => "execve",
        nr::MMAP => "mmap",
        nr::MPROTECT => "mprotect",
        nr::MSYNC => "msync",
        nr::MADVISE => "madvise",
        nr::WAIT4 => "wait4",
        nr::PRLIMIT64 => "prlimit64",
        nr::RISCV_HWPROBE => "riscv_hwprobe",
        nr::RISCV_FLUSH_ICACHE => "riscv_flush_icache",
        nr::RENAMEAT2 => "renameat2",
        nr::GETRANDOM => "getrandom",
        nr::STATX => "statx",
        nr::RSEQ => "rseq",
        nr::CLONE3 => "clone3",
        nr::FACCESSAT2 => "faccessat2",
        nr::EPOLL_CREATE1 => "epoll_create1",
        nr::EPOLL_CTL => "epoll_ctl",
        nr::EPOLL_PWAIT => "epoll_pwait",
        nr::SOCKET => "socket",
        nr::SOCKETPAIR => "socketpair",
        nr::BIND => "bind",
        nr::LISTEN => "listen",
        nr::ACCEPT => "accept",
        nr::CONNECT => "connect",
        nr::GETSOCKNAME => "getsockname",
        nr::GETPEERNAME => "getpeername",
        nr::SENDTO => "sendto",
        nr::RECVFROM => "recvfrom",
        nr::SETSOCKOPT => "setsockopt",
        nr::GETSOCKOPT => "getsockopt",
        nr::SHUTDOWN => "shutdown",
        nr::SENDMSG => "sendmsg",
        nr::RECVMSG => "recvmsg",
        nr::ACCEPT4 => "accept4",
        _ => return format!("syscall_{number}"),
    };
    name.to_owned()
}

/// A signal's name, for reports.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

/// What the process loop does after a system call.
#[derive(Debug)]
pub enum Outcome {
    /// Go on running the guest.
    Continue,
    /// The process is over.
    End(ProcessEnd),
}

/// A guest's handler for one signal, as `rt_sigaction` recorded it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GuestAction {
    pub(crate) handler: u64,
    pub(crate) flags: u64,
    pub(crate) mask: u64,
}

/// What all threads of a process share.
#[derive(Debug)]
pub struct Shared {
    /// Heap start and current break.
    brk: Mutex<(u64, u64)>,
    /// Held while the address space changes (mmap, munmap, mprotect, brk).
    mm: Mutex<()>,
    /// Signal handlers.
    pub(crate) actions: Mutex<[GuestAction; 65]>,
    /// Unimplemented calls already warned about.
    warned: Mutex<BTreeSet<u64>>,
    /// Bumped when mappings shrink or lose permissions, or code is flushed:
    /// every thread then drops its translations before it runs on.
    generation: AtomicU64,
    /// The bus and clock new threads' harts attach to.
    pub(crate) bus: Arc<Bus>,
    pub(crate) clock: Arc<VirtualClock>,
}

/// Per-thread state the system calls keep, with the process's shared part.
#[derive(Debug)]
pub struct ProcessState {
    pub(crate) memory: UserMemory,
    /// The program being run, as a host path (for /proc/self/exe).
    exe: PathBuf,
    /// Options of this run (kept for execve's re-entry).
    pub(crate) options: UserOptions,
    pub(crate) shared: Arc<Shared>,
    /// This thread's blocked signals.
    pub(crate) signal_mask: u64,
    /// Where to store 0 and wake a futex when this thread exits.
    pub(crate) clear_child_tid: u64,
    /// The address-space generation this thread's translations are from.
    seen_generation: u64,
    /// The process's first thread (whose `exit` ends the process).
    pub(crate) main_thread: bool,
    /// The alternate signal stack: (base, size), size 0 when none.
    pub(crate) alt_stack: (u64, u64),
    /// The mask to restore after the next handler (set by rt_sigsuspend).
    pub(crate) suspend_mask: Option<u64>,
}

impl ProcessState {
    /// State for a process whose heap starts at `brk`.
    pub fn new(
        memory: UserMemory,
        brk: u64,
        exe: PathBuf,
        options: &UserOptions,
        bus: Arc<Bus>,
        clock: Arc<VirtualClock>,
    ) -> ProcessState {
        ProcessState {
            memory,
            exe,
            options: options.clone(),
            shared: Arc::new(Shared {
                brk: Mutex::new((brk, brk)),
                mm: Mutex::new(()),
                actions: Mutex::new([GuestAction::default(); 65]),
                warned: Mutex::new(BTreeSet::new()),
                generation: AtomicU64::new(0),
                bus,
                clock,
            }),
            signal_mask: 0,
            clear_child_tid: 0,
            seen_generation: 0,
            main_thread: true,
            alt_stack: (0, 0),
            suspend_mask: None,
        }
    }

    /// The state of a new thread of the same process.
    pub(crate) fn new_thread(&self) -> ProcessState {
        ProcessState {
            memory: self.memory.clone(),
            exe: self.exe.clone(),
            options: self.options.clone(),
            shared: self.shared.clone(),
            signal_mask: self.signal_mask,
            clear_child_tid: 0,
            seen_generation: self.shared.generation.load(Ordering::Acquire),
            main_thread: false,
            alt_stack: (0, 0),
            suspend_mask: None,
        }
    }

    /// Drops `hart`'s translations if another thread changed the address space.
    pub(crate) fn sync_address_space(&mut self, hart: &mut Hart) {
        let now = self.shared.generation.load(Ordering::Acquire);
        if now != self.seen_generation {
            self.seen_generation = now;
            hart.flush_translations();
            hart.flush_code();
        }
    }

    /// Records an address-space change every thread must see.
    pub(crate) fn changed_address_space(&mut self, hart: &mut Hart) {
        self.seen_generation = self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        hart.flush_translations();
        hart.flush_code();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock_recover()
}

/// `-errno` as the guest sees it.
fn err(errno: i32) -> i64 {
    -i64::from(errno)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A host call's result as the guest's return value.
fn host(result: i64) -> i64 {
    if result < 0 {
        err(last_errno())
    } else {
        result
    }
}

const EFAULT: i64 = -(libc::EFAULT as i64);

impl From<Fault> for i64 {
    fn from(_: Fault) -> i64 {
        EFAULT
    }
}

/// Bytes a single read or write moves through the host at once.
const CHUNK: usize = 1 << 20;

/// Runs the system call the hart's `ecall` asks for, sets a0 and moves past the
/// `ecall`; then enters the handler of a signal that arrived, if any.
pub fn dispatch(hart: &mut Hart, state: &mut ProcessState) -> Outcome {
    let x = hart.state.x;
    let number = x[17];
    let args = [x[10], x[11], x[12], x[13], x[14], x[15]];
    if number == nr::RT_SIGRETURN {
        if state.options.strace {
            eprintln!("rt_sigreturn() = ?");
        }
        if !super::signal::sigreturn(hart, state) {
            return Outcome::End(ProcessEnd::Signaled(libc::SIGSEGV));
        }
        return deliver_pending(hart, state);
    }
    let result = match call(hart, state, number, args) {
        Ok(value) => value,
        Err(end) => {
            if state.options.strace {
                eprintln!("{}({:#x}, ...) = ?", syscall_name(number), args[0]);
            }
            return Outcome::End(end);
        }
    };
    if result == SIGNAL_ENTERED {
        return Outcome::Continue;
    }
    if state.options.strace {
        let strings = string_args(number);
        let shown: Vec<String> = args
            .iter()
            .enumerate()
            .map(|(i, &a)| match state.memory.read_cstr(a, 4096) {
                Ok(text) if strings.contains(&i) => {
                    let text = String::from_utf8_lossy(&text);
                    format!("{:?}", text.chars().take(80).collect::<String>())
                }
                _ => format!("{a:#x}"),
            })
            .collect();
        let outcome = if result < 0 && result > -4096 {
            format!(
                "-1 {} ({})",
                errno_name(-result as i32),
                std::io::Error::from_raw_os_error(-result as i32)
            )
        } else {
            format!("{result:#x}")
        };
        eprintln!("{}({}) = {outcome}", syscall_name(number), shown.join(", "));
    }
    let interrupted = result == -i64::from(libc::EINTR) && number != nr::RT_SIGSUSPEND;
    if interrupted && super::signal::next_restarts(state) {
        // SA_RESTART: leave the ecall to run again once the handler returns.
    } else {
        hart.state.x[10] = result as u64;
        hart.state.pc = hart.state.pc.wrapping_add(4);
    }
    deliver_pending(hart, state)
}

/// Which arguments of a call are path names (shown as strings by `--strace`).
fn string_args(number: u64) -> &'static [usize] {
    match number {
        nr::CHDIR | nr::EXECVE | nr::STATFS => &[0],
        nr::SYMLINKAT => &[0, 2],
        nr::LINKAT | nr::RENAMEAT2 => &[1, 3],
        nr::OPENAT
        | nr::NEWFSTATAT
        | nr::STATX
        | nr::READLINKAT
        | nr::FACCESSAT
        | nr::FACCESSAT2
        | nr::MKDIRAT
        | nr::UNLINKAT
        | nr::FCHMODAT
        | nr::FCHOWNAT
        | nr::UTIMENSAT => &[1],
        _ => &[],
    }
}

/// Enters the handler of the next signal the host delivered to this thread.
pub fn deliver_pending(hart: &mut Hart, state: &mut ProcessState) -> Outcome {
    while let Some(signal) = super::signal::take_pending(state) {
        if !super::signal::has_handler(state, signal) {
            // The disposition changed after the signal arrived: the host
            // already applied the default, or it is ignored.
            continue;
        }
        if !super::signal::deliver(hart, state, signal, 0, 0) {
            return Outcome::End(ProcessEnd::Signaled(libc::SIGSEGV));
        }
        break;
    }
    Outcome::Continue
}

fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ESPIPE => "ESPIPE",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ECHILD => "ECHILD",
        libc::EINTR => "EINTR",
        _ => "E?",
    }
}

/// Reads a path argument, mapping absolute paths into the sysroot and
/// /proc/self/exe to the guest program.
fn path_arg(state: &ProcessState, va: u64) -> Result<CString, i64> {
    let raw = state.memory.read_cstr(va, 4096).map_err(i64::from)?;
    let path = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&raw));
    let mapped = if path == Path::new("/proc/self/exe") {
        state.exe.clone()
    } else {
        elf::in_sysroot(state.options.sysroot.as_deref(), path)
    };
    CString::new(mapped.into_os_string().into_encoded_bytes()).map_err(|_| err(libc::EINVAL))
}

fn dirfd(value: u64) -> i32 {
    value as i32
}

/// Runs one call: Ok(a0), or Err when the process ends.
fn call(
    hart: &mut Hart,
    state: &mut ProcessState,
    number: u64,
    a: [u64; 6],
) -> Result<i64, ProcessEnd> {
    let memory = state.memory.clone();
    let value: i64 = match number {
        nr::EXIT_GROUP if !state.main_thread => {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(a[0] as i32 & 0xff);
        }
        nr::EXIT | nr::EXIT_GROUP => {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            return Err(ProcessEnd::Exited(a[0] as i32));
        }
        nr::READ | nr::PREAD64 => {
            let len = (a[2] as usize).min(CHUNK);
            let mut buf = vec![0u8; len];
            // SAFETY: buf is ours and len bytes long.
            let n = unsafe {
                if number == nr::READ {
                    libc::read(a[0] as i32, buf.as_mut_ptr().cast(), len)
                } else {
                    libc::pread(a[0] as i32, buf.as_mut_ptr().cast(), len, a[3] as i64)
                }
            };
            if n > 0
                && let Err(f) = memory.write(a[1], &buf[..n as usize])
            {
                return Ok(f.into());
            }
            host(n as i64)
        }
        nr::WRITE | nr::PWRITE64 => {
            let len = (a[2] as usize).min(CHUNK);
            let mut buf = vec![0u8; len];
            if let Err(f) = memory.read(a[1], &mut buf) {
                return Ok(f.into());
            }
            // SAFETY: buf is ours and len bytes long.
            let n = unsafe {
                if number == nr::WRITE {
                    libc::write(a[0] as i32, buf.as_ptr().cast(), len)
                } else {
                    libc::pwrite(a[0] as i32, buf.as_ptr().cast(), len, a[3] as i64)
                }
            };
            host(n as i64)
        }
        nr::READV | nr::WRITEV => vector_io(&memory, number == nr::READV, a),
        nr::OPENAT => match path_arg(state, a[1]) {
            // SAFETY: the path is a valid C string; flags and mode are plain values.
            Ok(path) => host(i64::from(unsafe {
                libc::openat(
                    dirfd(a[0]),
                    path.as_ptr(),
                    a[2] as i32,
                    a[3] as libc::c_uint,
                )
            })),
            Err(e) => e,
        },
        // SAFETY: closing a descriptor touches no memory.
        nr::CLOSE => host(i64::from(unsafe { libc::close(a[0] as i32) })),
        nr::LSEEK => {
            // SAFETY: plain values.
            host(unsafe { libc::lseek(a[0] as i32, a[1] as i64, a[2] as i32) })
        }
        // SAFETY: plain values.
        nr::DUP => host(i64::from(unsafe { libc::dup(a[0] as i32) })),
        nr::DUP3 => {
            // SAFETY: plain values.
            host(i64::from(unsafe {
                libc::dup3(a[0] as i32, a[1] as i32, a[2] as i32)
            }))
        }
        nr::FCNTL => fcntl(&memory, a),
        nr::IOCTL => ioctl(&memory, a),
        nr::PIPE2 => {
            let mut fds = [0i32; 2];
            // SAFETY: fds has room for the two descriptors.
            let r = unsafe { libc::pipe2(fds.as_mut_ptr(), a[1] as i32) };
            if r < 0 {
                err(last_errno())
            } else {
                let bytes: Vec<u8> = fds.iter().flat_map(|f| f.to_le_bytes()).collect();
                match memory.write(a[0], &bytes) {
                    Ok(()) => 0,
                    Err(f) => f.into(),
                }
            }
        }
        nr::GETDENTS64 => {
            let len = (a[2] as usize).min(CHUNK);
            let mut buf = vec![0u8; len];
            // SAFETY: buf is ours; linux_dirent64 has the same layout on both.
            let n =
                unsafe { libc::syscall(libc::SYS_getdents64, a[0] as i32, buf.as_mut_ptr(), len) };
            if n > 0
                && let Err(f) = memory.write(a[1], &buf[..n as usize])
            {
                return Ok(f.into());
            }
            host(n)
        }
        nr::NEWFSTATAT | nr::FSTAT => {
            let mut st: libc::stat = unsafe_zeroed_stat();
            let r = if number == nr::FSTAT {
                // SAFETY: st is a valid stat buffer.
                unsafe { libc::fstat(a[0] as i32, &mut st) }
            } else {
                let raw = match memory.read_cstr(a[1], 4096) {
                    Ok(raw) => raw,
                    Err(f) => return Ok(f.into()),
                };
                let path = if raw.is_empty() {
                    CString::default()
                } else {
                    match path_arg(state, a[1]) {
                        Ok(p) => p,
                        Err(e) => return Ok(e),
                    }
                };
                // SAFETY: path is a C string, st a valid buffer.
                unsafe { libc::fstatat(dirfd(a[0]), path.as_ptr(), &mut st, a[3] as i32) }
            };
            if r < 0 {
                err(last_errno())
            } else {
                let out = riscv_stat(&st);
                let to = if number == nr::FSTAT { a[1] } else { a[2] };
                match memory.write(to, &out) {
                    Ok(()) => 0,
                    Err(f) => f.into(),
                }
            }
        }
        nr::STATFS => match path_arg(state, a[0]) {
            Ok(path) => copy_out_struct(&memory, a[1], 120, |buf| {
                // SAFETY: struct statfs is 120 bytes on both; path is a C string.
                unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), buf.as_mut_ptr()) }
            }),
            Err(e) => e,
        },
        nr::FSTATFS => copy_out_struct(&memory, a[1], 120, |buf| {
            // SAFETY: struct statfs is 120 bytes on both.
            unsafe { libc::syscall(libc::SYS_fstatfs, a[0] as i32, buf.as_mut_ptr()) }
        }),
        nr::STATX => match path_arg(state, a[1]) {
            Ok(path) => {
                let mut buf = [0u8; 256];
                // SAFETY: buf is large enough for struct statx (same on both).
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_statx,
                        dirfd(a[0]),
                        path.as_ptr(),
                        a[2] as i32,
                        a[3] as u32,
                        buf.as_mut_ptr(),
                    )
                };
                if r < 0 {
                    err(last_errno())
                } else {
                    match memory.write(a[4], &buf) {
                        Ok(()) => 0,
                        Err(f) => f.into(),
                    }
                }
            }
            Err(e) => e,
        },
        nr::READLINKAT => {
            let raw = match memory.read_cstr(a[1], 4096) {
                Ok(raw) => raw,
                Err(f) => return Ok(f.into()),
            };
            let target = if raw == b"/proc/self/exe" {
                Ok(state.exe.clone().into_os_string().into_encoded_bytes())
            } else {
                match path_arg(state, a[1]) {
                    Ok(path) => {
                        let mut buf = vec![0u8; 4096];
                        // SAFETY: buf is ours, 4096 bytes.
                        let n = unsafe {
                            libc::readlinkat(
                                dirfd(a[0]),
                                path.as_ptr(),
                                buf.as_mut_ptr().cast(),
                                4096,
                            )
                        };
                        if n < 0 {
                            Err(err(last_errno()))
                        } else {
                            buf.truncate(n as usize);
                            Ok(buf)
                        }
                    }
                    Err(e) => Err(e),
                }
            };
            match target {
                Ok(mut bytes) => {
                    bytes.truncate(a[3] as usize);
                    match memory.write(a[2], &bytes) {
                        Ok(()) => bytes.len() as i64,
                        Err(f) => f.into(),
                    }
                }
                Err(e) => e,
            }
        }
        nr::FACCESSAT | nr::FACCESSAT2 => match path_arg(state, a[1]) {
            // SAFETY: C string path, plain values.
            Ok(path) => host(i64::from(unsafe {
                libc::faccessat(
                    dirfd(a[0]),
                    path.as_ptr(),
                    a[2] as i32,
                    if number == nr::FACCESSAT2 {
                        a[3] as i32
                    } else {
                        0
                    },
                )
            })),
            Err(e) => e,
        },
        nr::MKDIRAT => match path_arg(state, a[1]) {
            // SAFETY: C string path, plain values.
            Ok(path) => host(i64::from(unsafe {
                libc::mkdirat(dirfd(a[0]), path.as_ptr(), a[2] as libc::mode_t)
            })),
            Err(e) => e,
        },
        nr::UNLINKAT => match path_arg(state, a[1]) {
            // SAFETY: C string path, plain values.
            Ok(path) => host(i64::from(unsafe {
                libc::unlinkat(dirfd(a[0]), path.as_ptr(), a[2] as i32)
            })),
            Err(e) => e,
        },
        nr::SYMLINKAT => {
            let target = match memory.read_cstr(a[0], 4096) {
                Ok(t) => CString::new(t).unwrap_or_default(),
                Err(f) => return Ok(f.into()),
            };
            match path_arg(state, a[2]) {
                // SAFETY: two C strings and a descriptor.
                Ok(path) => host(i64::from(unsafe {
                    libc::symlinkat(target.as_ptr(), dirfd(a[1]), path.as_ptr())
                })),
                Err(e) => e,
            }
        }
        nr::LINKAT => match (path_arg(state, a[1]), path_arg(state, a[3])) {
            // SAFETY: two C strings and plain values.
            (Ok(from), Ok(to)) => host(i64::from(unsafe {
                libc::linkat(
                    dirfd(a[0]),
                    from.as_ptr(),
                    dirfd(a[2]),
                    to.as_ptr(),
                    a[4] as i32,
                )
            })),
            (Err(e), _) | (_, Err(e)) => e,
        },
        nr::RENAMEAT2 => match (path_arg(state, a[1]), path_arg(state, a[3])) {
            // SAFETY: two C strings and plain values.
            (Ok(from), Ok(to)) => host(unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    dirfd(a[0]),
                    from.as_ptr(),
                    dirfd(a[2]),
                    to.as_ptr(),
                    a[4] as u32,
                )
            }),
            (Err(e), _) | (_, Err(e)) => e,
        },
        nr::FCHMODAT => match path_arg(state, a[1]) {
            // SAFETY: C string path, plain values.
            Ok(path) => host(i64::from(unsafe {
                libc::fchmodat(dirfd(a[0]), path.as_ptr(), a[2] as libc::mode_t, 0)
            })),
            Err(e) => e,
        },
        nr::FCHOWNAT => match path_arg(state, a[1]) {
            // SAFETY: C string path, plain values.
            Ok(path) => host(i64::from(unsafe {
                libc::fchownat(
                    dirfd(a[0]),
                    path.as_ptr(),
                    a[2] as u32,
                    a[3] as u32,
                    a[4] as i32,
                )
            })),
            Err(e) => e,
        },
        // SAFETY: plain values.
        nr::FCHMOD => host(i64::from(unsafe {
            libc::fchmod(a[0] as i32, a[1] as libc::mode_t)
        })),
        nr::FCHOWN => {
            // SAFETY: plain values.
            host(i64::from(unsafe {
                libc::fchown(a[0] as i32, a[1] as u32, a[2] as u32)
            }))
        }
        // SAFETY: plain values.
        nr::FTRUNCATE => host(i64::from(unsafe {
            libc::ftruncate(a[0] as i32, a[1] as i64)
        })),
        nr::SYNC => {
            // SAFETY: no arguments.
            unsafe { libc::sync() };
            0
        }
        // SAFETY: plain values.
        nr::FSYNC => host(i64::from(unsafe { libc::fsync(a[0] as i32) })),
        // SAFETY: plain values.
        nr::FDATASYNC => host(i64::from(unsafe { libc::fdatasync(a[0] as i32) })),
        nr::UTIMENSAT => {
            let mut times = [0u8; 32];
            if a[2] != 0
                && let Err(f) = memory.read(a[2], &mut times)
            {
                return Ok(f.into());
            }
            let times_ptr = if a[2] == 0 {
                std::ptr::null()
            } else {
                times.as_ptr()
            };
            let path = if a[1] == 0 {
                None
            } else {
                match path_arg(state, a[1]) {
                    Ok(p) => Some(p),
                    Err(e) => return Ok(e),
                }
            };
            // SAFETY: timespec[2] has the same layout on both; path is a C string or null.
            host(unsafe {
                libc::syscall(
                    libc::SYS_utimensat,
                    dirfd(a[0]),
                    path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                    times_ptr,
                    a[3] as i32,
                )
            })
        }
        nr::GETCWD => match std::env::current_dir() {
            Ok(dir) => {
                let mut bytes = dir.into_os_string().into_encoded_bytes();
                bytes.push(0);
                if bytes.len() as u64 > a[1] {
                    err(libc::ERANGE)
                } else {
                    match memory.write(a[0], &bytes) {
                        Ok(()) => bytes.len() as i64,
                        Err(f) => f.into(),
                    }
                }
            }
            Err(e) => err(e.raw_os_error().unwrap_or(libc::ENOENT)),
        },
        nr::CHDIR => match path_arg(state, a[0]) {
            // SAFETY: C string path.
            Ok(path) => host(i64::from(unsafe { libc::chdir(path.as_ptr()) })),
            Err(e) => e,
        },
        // SAFETY: plain values.
        nr::FCHDIR => host(i64::from(unsafe { libc::fchdir(a[0] as i32) })),
        // SAFETY: plain values.
        nr::UMASK => i64::from(unsafe { libc::umask(a[0] as libc::mode_t) }),
        nr::SENDFILE => sendfile(&memory, a),
        nr::PPOLL => ppoll(&memory, a),
        nr::PSELECT6 => pselect(&memory, a),
        nr::BRK => i64::try_from(brk(hart, state, a[0])).unwrap_or(0),
        nr::MMAP => {
            let shared = state.shared.clone();
            let _mm = lock(&shared.mm);
            mmap(hart, state, a)
        }
        nr::MUNMAP => {
            if !a[0].is_multiple_of(PAGE)
                || a[1] == 0
                || a[0].checked_add(a[1]).is_none_or(|e| e > USER_SPACE_SIZE)
            {
                err(libc::EINVAL)
            } else {
                let shared = state.shared.clone();
                let _mm = lock(&shared.mm);
                memory.unmap(a[0], page_up(a[1]));
                state.changed_address_space(hart);
                0
            }
        }
        nr::MPROTECT => {
            let shared = state.shared.clone();
            let _mm = lock(&shared.mm);
            if !a[0].is_multiple_of(PAGE)
                || a[0].checked_add(a[1]).is_none_or(|e| e > USER_SPACE_SIZE)
            {
                err(libc::EINVAL)
            } else if memory.protect(a[0], page_up(a[1]), prot_bits(a[2])) {
                state.changed_address_space(hart);
                0
            } else {
                err(libc::ENOMEM)
            }
        }
        nr::MREMAP => {
            let shared = state.shared.clone();
            let _mm = lock(&shared.mm);
            mremap(hart, state, a)
        }
        nr::MSYNC | nr::MADVISE => 0,
        nr::RISCV_FLUSH_ICACHE => {
            state.changed_address_space(hart);
            0
        }
        nr::CLOCK_GETTIME | nr::CLOCK_GETRES => {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: ts is a valid timespec.
            let r = unsafe {
                if number == nr::CLOCK_GETTIME {
                    libc::clock_gettime(a[0] as libc::clockid_t, &mut ts)
                } else {
                    libc::clock_getres(a[0] as libc::clockid_t, &mut ts)
                }
            };
            if r < 0 {
                err(last_errno())
            } else if a[1] == 0 {
                0
            } else {
                write_timespec(&memory, a[1], &ts)
            }
        }
        nr::GETTIMEOFDAY => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let mut out = [0u8; 16];
            out[..8].copy_from_slice(&now.as_secs().to_le_bytes());
            out[8..].copy_from_slice(&u64::from(now.subsec_micros()).to_le_bytes());
            if a[0] == 0 {
                0
            } else {
                match memory.write(a[0], &out) {
                    Ok(()) => 0,
                    Err(f) => f.into(),
                }
            }
        }
        nr::NANOSLEEP | nr::CLOCK_NANOSLEEP => {
            let at = if number == nr::NANOSLEEP { a[0] } else { a[2] };
            let ts = match read_timeout(&memory, at) {
                Ok(Some(ts)) => ts,
                // A null request is a bad address here, not "forever".
                Ok(None) => return Ok(EFAULT),
                Err(e) => return Ok(e),
            };
            // SAFETY: ts is valid; no remaining-time buffer.
            let r = unsafe {
                if number == nr::NANOSLEEP {
                    libc::nanosleep(&ts, std::ptr::null_mut())
                } else {
                    libc::clock_nanosleep(
                        a[0] as libc::clockid_t,
                        a[1] as i32,
                        &ts,
                        std::ptr::null_mut(),
                    )
                }
            };
            if number == nr::CLOCK_NANOSLEEP {
                -i64::from(r)
            } else {
                host(i64::from(r))
            }
        }
        // SAFETY: no arguments.
        nr::GETPID => i64::from(unsafe { libc::getpid() }),
        // SAFETY: no arguments.
        nr::GETTID => i64::from(unsafe { libc::gettid() }),
        nr::SET_TID_ADDRESS => {
            state.clear_child_tid = a[0];
            // SAFETY: no arguments.
            i64::from(unsafe { libc::gettid() })
        }
        // SAFETY: no arguments.
        nr::GETPPID => i64::from(unsafe { libc::getppid() }),
        // SAFETY: no arguments.
        nr::GETUID => i64::from(unsafe { libc::getuid() }),
        // SAFETY: no arguments.
        nr::GETEUID => i64::from(unsafe { libc::geteuid() }),
        // SAFETY: no arguments.
        nr::GETGID => i64::from(unsafe { libc::getgid() }),
        // SAFETY: no arguments.
        nr::GETEGID => i64::from(unsafe { libc::getegid() }),
        nr::GETRESUID | nr::GETRESGID => {
            // SAFETY: no arguments.
            let (r, e) = unsafe {
                if number == nr::GETRESUID {
                    (libc::getuid(), libc::geteuid())
                } else {
                    (libc::getgid(), libc::getegid())
                }
            };
            let writes = [(a[0], r), (a[1], e), (a[2], e)];
            let mut result = 0;
            for (at, v) in writes {
                if let Err(f) = memory.write(at, &v.to_le_bytes()) {
                    result = f.into();
                }
            }
            result
        }
        // SAFETY: plain values.
        nr::SETUID => host(i64::from(unsafe { libc::setuid(a[0] as u32) })),
        // SAFETY: plain values.
        nr::SETGID => host(i64::from(unsafe { libc::setgid(a[0] as u32) })),
        nr::GETGROUPS => {
            let count = (a[0] as usize).min(65536);
            let mut groups = vec![0u32; count.max(1)];
            // SAFETY: groups has room for count entries.
            let n = unsafe { libc::getgroups(count as i32, groups.as_mut_ptr()) };
            if n > 0 && count > 0 {
                let bytes: Vec<u8> = groups[..n as usize]
                    .iter()
                    .flat_map(|g| g.to_le_bytes())
                    .collect();
                if let Err(f) = memory.write(a[1], &bytes) {
                    return Ok(f.into());
                }
            }
            host(i64::from(n))
        }
        // SAFETY: plain values.
        nr::SETPGID => host(i64::from(unsafe {
            libc::setpgid(a[0] as i32, a[1] as i32)
        })),
        // SAFETY: plain values.
        nr::GETPGID => host(i64::from(unsafe { libc::getpgid(a[0] as i32) })),
        // SAFETY: plain values.
        nr::GETSID => host(i64::from(unsafe { libc::getsid(a[0] as i32) })),
        // SAFETY: no arguments.
        nr::SETSID => host(i64::from(unsafe { libc::setsid() })),
        nr::GETPRIORITY | nr::SETPRIORITY => {
            // SAFETY: plain values.
            host(unsafe {
                libc::syscall(
                    if number == nr::GETPRIORITY {
                        libc::SYS_getpriority
                    } else {
                        libc::SYS_setpriority
                    },
                    a[0],
                    a[1],
                    a[2],
                )
            })
        }
        nr::UNAME => uname(&memory, a[0]),
        nr::SYSINFO => copy_out_struct(&memory, a[0], 112, |buf| {
            // SAFETY: struct sysinfo is 112 bytes on both.
            unsafe { libc::syscall(libc::SYS_sysinfo, buf.as_mut_ptr()) }
        }),
        nr::TIMES => {
            let mut buf = [0u8; 32];
            // SAFETY: struct tms is four longs on both.
            let r = unsafe { libc::syscall(libc::SYS_times, buf.as_mut_ptr()) };
            if a[0] != 0
                && let Err(f) = memory.write(a[0], &buf)
            {
                return Ok(f.into());
            }
            host(r)
        }
        nr::GETRUSAGE => copy_out_struct(&memory, a[1], 144, |buf| {
            // SAFETY: struct rusage is 144 bytes on both.
            unsafe { libc::syscall(libc::SYS_getrusage, a[0] as i32, buf.as_mut_ptr()) }
        }),
        nr::GETRLIMIT => copy_out_struct(&memory, a[1], 16, |buf| {
            // SAFETY: struct rlimit is two u64s on both.
            unsafe { libc::syscall(libc::SYS_getrlimit, a[0] as i32, buf.as_mut_ptr()) }
        }),
        nr::SETRLIMIT => 0,
        nr::PRLIMIT64 => {
            // Setting limits is accepted and ignored (the host keeps its own);
            // reading returns the host's.
            if a[3] == 0 {
                0
            } else {
                copy_out_struct(&memory, a[3], 16, |buf| {
                    // SAFETY: struct rlimit64 is two u64s; no new limit is set.
                    unsafe {
                        libc::syscall(
                            libc::SYS_prlimit64,
                            a[0] as i32,
                            a[1] as i32,
                            std::ptr::null::<u8>(),
                            buf.as_mut_ptr(),
                        )
                    }
                })
            }
        }
        nr::GETRANDOM => {
            let len = (a[1] as usize).min(CHUNK);
            let mut buf = vec![0u8; len];
            // SAFETY: buf is ours.
            let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), len, a[2] as u32) };
            if n > 0
                && let Err(f) = memory.write(a[0], &buf[..n as usize])
            {
                return Ok(f.into());
            }
            host(n as i64)
        }
        nr::SCHED_GETAFFINITY => {
            let len = (a[1] as usize).min(4096);
            let mut buf = vec![0u8; len];
            // SAFETY: buf is ours, len bytes.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_sched_getaffinity,
                    a[0] as i32,
                    len,
                    buf.as_mut_ptr(),
                )
            };
            if n > 0
                && let Err(f) = memory.write(a[2], &buf[..n as usize])
            {
                return Ok(f.into());
            }
            host(n)
        }
        // SAFETY: no arguments.
        nr::SCHED_YIELD => host(i64::from(unsafe { libc::sched_yield() })),
        nr::SET_ROBUST_LIST | nr::PRCTL => 0,
        nr::FUTEX => futex(&memory, a),
        nr::RT_SIGACTION => super::signal::sigaction(hart, state, a),
        nr::RT_SIGPROCMASK => super::signal::sigprocmask(state, a),
        nr::RT_SIGSUSPEND => super::signal::sigsuspend(state, a),
        nr::RT_SIGTIMEDWAIT => super::signal::sigtimedwait(state, a),
        nr::SIGALTSTACK => super::signal::sigaltstack(state, a),
        nr::KILL | nr::TKILL | nr::TGKILL => return send_signal(hart, state, number, a),
        nr::CLONE => clone(hart, state, a),
        nr::WAIT4 => {
            let mut status = 0i32;
            let mut usage = [0u8; 144];
            // SAFETY: status and usage are ours; rusage is 144 bytes on both.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_wait4,
                    a[0] as i32,
                    &mut status as *mut i32,
                    a[2] as i32,
                    usage.as_mut_ptr(),
                )
            };
            if r > 0 {
                if a[1] != 0
                    && let Err(f) = memory.write(a[1], &status.to_le_bytes())
                {
                    return Ok(f.into());
                }
                if a[3] != 0
                    && let Err(f) = memory.write(a[3], &usage)
                {
                    return Ok(f.into());
                }
            }
            host(r)
        }
        nr::EXECVE => execve(state, a),
        nr::SOCKET
        | nr::SOCKETPAIR
        | nr::BIND
        | nr::LISTEN
        | nr::ACCEPT
        | nr::ACCEPT4
        | nr::CONNECT
        | nr::GETSOCKNAME
        | nr::GETPEERNAME
        | nr::SENDTO
        | nr::RECVFROM
        | nr::SETSOCKOPT
        | nr::GETSOCKOPT
        | nr::SHUTDOWN
        | nr::SENDMSG
        | nr::RECVMSG => super::net::socket_call(&memory, number, a),
        nr::EPOLL_CREATE1 | nr::EPOLL_CTL | nr::EPOLL_PWAIT => {
            super::net::epoll_call(&memory, number, a)
        }
        nr::RSEQ | nr::RISCV_HWPROBE | nr::CLONE3 | nr::GETITIMER | nr::SETITIMER => {
            err(libc::ENOSYS)
        }
        other => {
            if lock(&state.shared.warned).insert(other) && !state.options.strace {
                eprintln!(
                    "turing: unimplemented system call {} ({other}): returning ENOSYS",
                    syscall_name(other)
                );
            }
            err(libc::ENOSYS)
        }
    };
    Ok(value)
}

fn unsafe_zeroed_stat() -> libc::stat {
    // SAFETY: struct stat is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The host's `struct stat` in riscv64's (asm-generic) layout, 128 bytes.
fn riscv_stat(st: &libc::stat) -> [u8; 128] {
    let mut out = [0u8; 128];
    let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &st.st_dev.to_le_bytes());
    put(8, &st.st_ino.to_le_bytes());
    put(16, &st.st_mode.to_le_bytes());
    put(20, &(st.st_nlink as u32).to_le_bytes());
    put(24, &st.st_uid.to_le_bytes());
    put(28, &st.st_gid.to_le_bytes());
    put(32, &st.st_rdev.to_le_bytes());
    put(48, &st.st_size.to_le_bytes());
    put(56, &(st.st_blksize as i32).to_le_bytes());
    put(64, &st.st_blocks.to_le_bytes());
    put(72, &st.st_atime.to_le_bytes());
    put(80, &(st.st_atime_nsec as u64).to_le_bytes());
    put(88, &st.st_mtime.to_le_bytes());
    put(96, &(st.st_mtime_nsec as u64).to_le_bytes());
    put(104, &st.st_ctime.to_le_bytes());
    put(112, &(st.st_ctime_nsec as u64).to_le_bytes());
    out
}

fn write_timespec(memory: &UserMemory, at: u64, ts: &libc::timespec) -> i64 {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&ts.tv_sec.to_le_bytes());
    out[8..].copy_from_slice(&ts.tv_nsec.to_le_bytes());
    match memory.write(at, &out) {
        Ok(()) => 0,
        Err(f) => f.into(),
    }
}

/// Runs `fill` on a host buffer of `len` bytes and copies it to the guest at `at`.
fn copy_out_struct(
    memory: &UserMemory,
    at: u64,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> i64,
) -> i64 {
    let mut buf = vec![0u8; len];
    let r = fill(&mut buf);
    if r < 0 {
        return err(last_errno());
    }
    match memory.write(at, &buf) {
        Ok(()) => r,
        Err(f) => f.into(),
    }
}

fn uname(memory: &UserMemory, at: u64) -> i64 {
    // SAFETY: utsname is plain data; uname fills it.
    let mut names: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: names is a valid buffer.
    if unsafe { libc::uname(&mut names) } < 0 {
        return err(last_errno());
    }
    let field = |f: &[libc::c_char]| -> [u8; 65] {
        let mut out = [0u8; 65];
        for (o, &c) in out.iter_mut().zip(f.iter()).take(64) {
            *o = c as u8;
        }
        out
    };
    let mut machine = [0u8; 65];
    machine[..7].copy_from_slice(b"riscv64");
    let mut out = Vec::with_capacity(390);
    out.extend(field(&names.sysname));
    out.extend(field(&names.nodename));
    out.extend(field(&names.release));
    out.extend(field(&names.version));
    out.extend(machine);
    out.extend(field(&names.domainname));
    match memory.write(at, &out) {
        Ok(()) => 0,
        Err(f) => f.into(),
    }
}

fn vector_io(memory: &UserMemory, read: bool, a: [u64; 6]) -> i64 {
    let count = (a[2] as usize).min(1024);
    let mut total: i64 = 0;
    for i in 0..count {
        let (Ok(base), Ok(len)) = (
            memory.read_u64(a[1].wrapping_add(i as u64 * 16)),
            memory.read_u64(a[1].wrapping_add(i as u64 * 16 + 8)),
        ) else {
            return if total > 0 { total } else { EFAULT };
        };
        let len = (len as usize).min(CHUNK);
        if len == 0 {
            continue;
        }
        let mut buf = vec![0u8; len];
        let n = if read {
            // SAFETY: buf is ours.
            let n = unsafe { libc::read(a[0] as i32, buf.as_mut_ptr().cast(), len) };
            if n > 0 && memory.write(base, &buf[..n as usize]).is_err() {
                return if total > 0 { total } else { EFAULT };
            }
            n
        } else {
            if memory.read(base, &mut buf).is_err() {
                return if total > 0 { total } else { EFAULT };
            }
            // SAFETY: buf is ours.
            unsafe { libc::write(a[0] as i32, buf.as_ptr().cast(), len) }
        };
        if n < 0 {
            return if total > 0 { total } else { err(last_errno()) };
        }
        total += n as i64;
        if (n as usize) < len {
            break;
        }
    }
    total
}

fn fcntl(memory: &UserMemory, a: [u64; 6]) -> i64 {
    let fd = a[0] as i32;
    let cmd = a[1] as i32;
    match cmd {
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW => {
            let mut lock = [0u8; 32];
            if let Err(f) = memory.read(a[2], &mut lock) {
                return f.into();
            }
            // SAFETY: struct flock has the same 32-byte layout on both.
            let r = unsafe { libc::fcntl(fd, cmd, lock.as_mut_ptr()) };
            if r >= 0 && cmd == libc::F_GETLK && memory.write(a[2], &lock).is_err() {
                return EFAULT;
            }
            host(i64::from(r))
        }
        // SAFETY: the other commands take an integer argument or none.
        _ => host(i64::from(unsafe {
            libc::fcntl(fd, cmd, a[2] as libc::c_long)
        })),
    }
}

fn ioctl(memory: &UserMemory, a: [u64; 6]) -> i64 {
    let fd = a[0] as i32;
    let request = a[1];
    // Terminal requests whose argument is a buffer of this size (same on both).
    let size = match request {
        0x5401 => 36,                  // TCGETS
        0x5402..=0x5404 => 36,         // TCSETS, TCSETSW, TCSETSF
        0x5413 | 0x5414 => 8,          // TIOCGWINSZ, TIOCSWINSZ
        0x540f | 0x5410 | 0x541b => 4, // TIOCGPGRP, TIOCSPGRP, FIONREAD
        0x540e | 0x5422 | 0x5409 => 0, // TIOCSCTTY, TIOCNOTTY, TCSBRK: integer
        0x540b | 0x540a => 0,          // TCFLSH, TCXONC: integer
        _ => return err(libc::ENOTTY),
    };
    if size == 0 {
        // SAFETY: these requests take an integer argument.
        return host(i64::from(unsafe {
            libc::ioctl(fd, request as _, a[2] as libc::c_ulong)
        }));
    }
    let mut buf = vec![0u8; size];
    if let Err(f) = memory.read(a[2], &mut buf) {
        return f.into();
    }
    // SAFETY: buf is the size this request reads or writes.
    let r = unsafe { libc::ioctl(fd, request as _, buf.as_mut_ptr()) };
    if r >= 0 && memory.write(a[2], &buf).is_err() {
        return EFAULT;
    }
    host(i64::from(r))
}

fn sendfile(memory: &UserMemory, a: [u64; 6]) -> i64 {
    let len = (a[3] as usize).min(CHUNK);
    let mut buf = vec![0u8; len];
    let offset = if a[2] == 0 {
        None
    } else {
        match memory.read_u64(a[2]) {
            Ok(o) => Some(o),
            Err(f) => return f.into(),
        }
    };
    // SAFETY: buf is ours.
    let n = unsafe {
        match offset {
            Some(o) => libc::pread(a[1] as i32, buf.as_mut_ptr().cast(), len, o as i64),
            None => libc::read(a[1] as i32, buf.as_mut_ptr().cast(), len),
        }
    };
    if n <= 0 {
        return host(n as i64);
    }
    // SAFETY: buf holds n bytes.
    let w = unsafe { libc::write(a[0] as i32, buf.as_ptr().cast(), n as usize) };
    if w > 0
        && let Some(o) = offset
        && memory.write(a[2], &(o + w as u64).to_le_bytes()).is_err()
    {
        return EFAULT;
    }
    host(w as i64)
}

/// Reads the guest `struct timespec` at `at` (None for a null pointer).
pub(crate) fn read_timeout(memory: &UserMemory, at: u64) -> Result<Option<libc::timespec>, i64> {
    if at == 0 {
        return Ok(None);
    }
    let mut raw = [0u8; 16];
    memory.read(at, &mut raw).map_err(i64::from)?;
    Ok(Some(libc::timespec {
        tv_sec: i64::from_le_bytes(raw[..8].try_into().unwrap_or_default()),
        tv_nsec: i64::from_le_bytes(raw[8..].try_into().unwrap_or_default()),
    }))
}

fn ppoll(memory: &UserMemory, a: [u64; 6]) -> i64 {
    let count = (a[1] as usize).min(4096);
    let mut fds = vec![0u8; count * 8];
    if let Err(f) = memory.read(a[0], &mut fds) {
        return f.into();
    }
    let timeout = match read_timeout(memory, a[2]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    // SAFETY: struct pollfd is 8 bytes on both; fds holds count of them; the
    // timeout is ours or null; no signal mask is passed.
    let r = unsafe {
        libc::ppoll(
            fds.as_mut_ptr().cast(),
            count as libc::nfds_t,
            timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _),
            std::ptr::null(),
        )
    };
    if r >= 0 && memory.write(a[0], &fds).is_err() {
        return EFAULT;
    }
    host(i64::from(r))
}

fn pselect(memory: &UserMemory, a: [u64; 6]) -> i64 {
    let nfds = (a[0] as usize).min(1024);
    let bytes = nfds.div_ceil(64) * 8;
    let mut sets = [vec![0u8; 128], vec![0u8; 128], vec![0u8; 128]];
    for (i, set) in sets.iter_mut().enumerate() {
        if a[1 + i] != 0
            && let Err(f) = memory.read(a[1 + i], &mut set[..bytes])
        {
            return f.into();
        }
    }
    let timeout = match read_timeout(memory, a[4]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let ptr = |i: usize, set: &mut Vec<u8>| {
        if a[1 + i] == 0 {
            std::ptr::null_mut()
        } else {
            set.as_mut_ptr()
        }
    };
    let [r0, w0, e0] = &mut sets;
    let (r, w, e) = (ptr(0, r0), ptr(1, w0), ptr(2, e0));
    // SAFETY: each set is a 1024-bit fd_set or null; the timeout is ours or null.
    let n = unsafe {
        libc::syscall(
            libc::SYS_pselect6,
            nfds as i32,
            r,
            w,
            e,
            timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _),
            std::ptr::null::<u8>(),
        )
    };
    if n >= 0 {
        for (i, set) in sets.iter().enumerate() {
            if a[1 + i] != 0 && memory.write(a[1 + i], &set[..bytes]).is_err() {
                return EFAULT;
            }
        }
    }
    host(n)
}

fn prot_bits(prot: u64) -> u8 {
    let mut bits = 0;
    if prot & libc::PROT_READ as u64 != 0 {
        bits |= PROT_READ;
    }
    if prot & libc::PROT_WRITE as u64 != 0 {
        bits |= PROT_WRITE | PROT_READ;
    }
    if prot & libc::PROT_EXEC as u64 != 0 {
        bits |= PROT_EXEC | PROT_READ;
    }
    bits
}

fn brk(hart: &mut Hart, state: &mut ProcessState, want: u64) -> u64 {
    let shared = state.shared.clone();
    let _mm = lock(&shared.mm);
    let mut brk = lock(&shared.brk);
    let (start, current) = *brk;
    if want < start || want >= elf::MMAP_TOP {
        return current;
    }
    let old_end = page_up(current);
    let new_end = page_up(want);
    if new_end > old_end {
        if state
            .memory
            .areas
            .find_free(new_end - old_end, old_end, new_end)
            != Some(old_end)
        {
            return current;
        }
        state
            .memory
            .map_zeroed(old_end, new_end - old_end, PROT_READ | PROT_WRITE);
    } else if new_end < old_end {
        state.memory.unmap(new_end, old_end - new_end);
        drop(brk);
        state.changed_address_space(hart);
        brk = lock(&shared.brk);
    }
    brk.1 = want;
    want
}

fn mmap(hart: &mut Hart, state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let (addr, len, prot, flags, fd, offset) = (a[0], a[1], a[2], a[3] as i32, a[4] as i32, a[5]);
    if len == 0
        || !offset.is_multiple_of(PAGE)
        || !addr.is_multiple_of(PAGE) && flags & libc::MAP_FIXED != 0
    {
        return err(libc::EINVAL);
    }
    let size = page_up(len);
    if size > USER_SPACE_SIZE {
        return err(libc::ENOMEM);
    }
    let memory = state.memory.clone();
    let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) != 0;
    let start = if fixed {
        if addr
            .checked_add(size)
            .is_none_or(|end| end > USER_SPACE_SIZE)
        {
            return err(libc::ENOMEM);
        }
        if addr < MMAP_MIN_ADDR {
            return err(libc::EPERM);
        }
        if flags & libc::MAP_FIXED_NOREPLACE != 0
            && memory.areas.find_free(size, addr, addr + size) != Some(addr)
        {
            return err(libc::EEXIST);
        }
        addr
    } else {
        let hint_fits = addr >= MMAP_MIN_ADDR
            && addr.is_multiple_of(PAGE)
            && addr
                .checked_add(size)
                .is_some_and(|end| end <= USER_SPACE_SIZE)
            && memory.areas.find_free(size, addr, addr + size) == Some(addr);
        if hint_fits {
            addr
        } else {
            match memory.areas.find_free(size, 0x1_0000, elf::MMAP_TOP) {
                Some(at) => at,
                None => return err(libc::ENOMEM),
            }
        }
    };
    memory.map_zeroed(start, size, prot_bits(prot));
    if flags & libc::MAP_ANONYMOUS == 0 {
        // File contents are copied in (`poke` writes whatever the protection) (a private mapping; MAP_SHARED writes are
        // not carried back to the file).
        let mut done = 0u64;
        while done < len {
            let want = ((len - done) as usize).min(CHUNK);
            let mut buf = vec![0u8; want];
            // SAFETY: buf is ours.
            let n = unsafe {
                libc::pread(
                    fd,
                    buf.as_mut_ptr().cast(),
                    want,
                    offset.wrapping_add(done) as i64,
                )
            };
            if n < 0 {
                let e = last_errno();
                memory.unmap(start, size);
                return err(e);
            }
            if n == 0 {
                break;
            }
            let _ = memory.poke(start + done, &buf[..n as usize]);
            done += n as u64;
        }
    }
    if fixed {
        // It may have replaced pages other threads have translated.
        state.changed_address_space(hart);
    }
    start as i64
}

fn mremap(hart: &mut Hart, state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let (old, old_len, new_len, flags) = (a[0], page_up(a[1]), page_up(a[2]), a[3] as i32);
    let memory = state.memory.clone();
    if !old.is_multiple_of(PAGE)
        || new_len == 0
        || new_len > USER_SPACE_SIZE
        || old
            .checked_add(old_len)
            .is_none_or(|end| end > USER_SPACE_SIZE)
        || !memory.areas.is_mapped(old, old_len.max(PAGE))
    {
        return err(libc::EINVAL);
    }
    let prot = memory.areas.prot_at(old).unwrap_or(PROT_READ);
    if new_len <= old_len {
        if new_len < old_len {
            memory.unmap(old + new_len, old_len - new_len);
            state.changed_address_space(hart);
        }
        return old as i64;
    }
    // Grow in place if the pages after it are free.
    if memory
        .areas
        .find_free(new_len - old_len, old + old_len, old + new_len)
        == Some(old + old_len)
    {
        memory.map_zeroed(old + old_len, new_len - old_len, prot);
        return old as i64;
    }
    if flags & libc::MREMAP_MAYMOVE == 0 {
        return err(libc::ENOMEM);
    }
    let Some(new) = memory.areas.find_free(new_len, 0x1_0000, elf::MMAP_TOP) else {
        return err(libc::ENOMEM);
    };
    memory.map_zeroed(new, new_len, prot);
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0;
    while done < old_len {
        let n = ((old_len - done) as usize).min(CHUNK);
        let _ = memory.peek(old + done, &mut buf[..n]);
        let _ = memory.poke(new + done, &buf[..n]);
        done += n as u64;
    }
    memory.unmap(old, old_len);
    state.changed_address_space(hart);
    new as i64
}

fn futex(memory: &UserMemory, a: [u64; 6]) -> i64 {
    const WAIT: i64 = 0;
    const WAKE: i64 = 1;
    const REQUEUE: i64 = 3;
    const CMP_REQUEUE: i64 = 4;
    const WAKE_OP: i64 = 5;
    const WAIT_BITSET: i64 = 9;
    const WAKE_BITSET: i64 = 10;
    let op = a[1] as i64;
    // Guest memory is host memory: the host kernel waits and wakes on the same
    // words, so threads (host threads) synchronise exactly as on Linux.
    let word = match memory.host_pointer(a[0], 4, PROT_READ) {
        Ok(p) if a[0].is_multiple_of(4) => p,
        Ok(_) => return err(libc::EINVAL),
        Err(f) => return f.into(),
    };
    let second = |at: u64| match memory.host_pointer(at, 4, PROT_READ) {
        Ok(p) if at.is_multiple_of(4) => Ok(p),
        Ok(_) => Err(err(libc::EINVAL)),
        Err(f) => Err(i64::from(f)),
    };
    match op & 0x7f {
        WAIT | WAIT_BITSET => {
            let timeout = match read_timeout(memory, a[3]) {
                Ok(t) => t,
                Err(e) => return e,
            };
            // SAFETY: `word` points at 4 mapped, aligned bytes of guest memory,
            // which stays mapped for the life of the process; the timeout is ours.
            host(unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word,
                    op,
                    a[2] as u32,
                    timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _),
                    std::ptr::null::<u32>(),
                    a[5] as u32,
                )
            })
        }
        // SAFETY: as above; no timeout or second word.
        WAKE | WAKE_BITSET => host(unsafe {
            libc::syscall(
                libc::SYS_futex,
                word,
                op,
                a[2] as u32,
                0usize,
                std::ptr::null::<u32>(),
                a[5] as u32,
            )
        }),
        REQUEUE | CMP_REQUEUE | WAKE_OP => match second(a[4]) {
            // SAFETY: both words are mapped guest memory; the fourth argument is
            // a count (val2), not a pointer, for these operations.
            Ok(word2) => host(unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word,
                    op,
                    a[2] as u32,
                    a[3] as usize,
                    word2,
                    a[5] as u32,
                )
            }),
            Err(e) => e,
        },
        _ => err(libc::ENOSYS),
    }
}

/// kill, tkill and tgkill. Signals go through the host kernel (guest pids and
/// tids are host ones), except fault signals to this thread, which the host
/// must not see (it would kill the emulator rather than run a guest handler).
fn send_signal(
    hart: &mut Hart,
    state: &mut ProcessState,
    number: u64,
    a: [u64; 6],
) -> Result<i64, ProcessEnd> {
    let (target, signal) = match number {
        nr::KILL | nr::TKILL => (a[0] as i32, a[1] as i32),
        _ => (a[1] as i32, a[2] as i32),
    };
    if !(0..=64).contains(&signal) {
        return Ok(err(libc::EINVAL));
    }
    // SAFETY: plain getters.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    let to_me = if number == nr::KILL {
        target == pid
    } else {
        target == tid
    };
    let fault = matches!(
        signal,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP
    );
    if to_me && fault {
        if super::signal::has_handler(state, signal) && state.signal_mask & (1 << (signal - 1)) == 0
        {
            // SI_TKILL / SI_USER, no address.
            hart.state.pc = hart.state.pc.wrapping_add(4);
            hart.state.x[10] = 0;
            if !super::signal::deliver(
                hart,
                state,
                signal,
                if number == nr::KILL { 0 } else { -6 },
                0,
            ) {
                return Err(ProcessEnd::Signaled(libc::SIGSEGV));
            }
            return Ok(SIGNAL_ENTERED);
        }
        let action = super::signal::action(state, signal);
        if action.handler == 1 {
            return Ok(0);
        }
        return Err(ProcessEnd::Signaled(signal));
    }
    // SAFETY: plain values.
    Ok(host(unsafe {
        match number {
            nr::KILL => libc::syscall(libc::SYS_kill, target, signal),
            nr::TKILL => libc::syscall(libc::SYS_tkill, target, signal),
            _ => libc::syscall(libc::SYS_tgkill, a[0] as i32, target, signal),
        }
    }))
}

/// A result meaning "the hart's registers are already set" (a handler was
/// entered, or rt_sigreturn restored a context): dispatch leaves a0 and pc alone.
pub(crate) const SIGNAL_ENTERED: i64 = i64::MIN;

const CLONE_VM: u64 = 0x100;
const CLONE_THREAD: u64 = 0x10000;

fn clone(hart: &mut Hart, state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let flags = a[0];
    if flags & CLONE_THREAD != 0 {
        if flags & CLONE_VM == 0 {
            return err(libc::EINVAL);
        }
        return super::spawn_thread(hart, state, a);
    }
    // fork (and vfork, which only differs in sharing memory the child must not
    // change before exec or _exit): the whole emulator forks, copy-on-write.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: fork in a process whose other threads (guest threads) may hold
    // locks: the child only runs this thread's guest code and the syscall layer,
    // which takes the address-space locks only while the parent's mm lock is
    // not held here (we hold no lock now), as with any threaded program's fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        state.main_thread = true;
        if flags & 0x0020_0000 != 0 && a[4] != 0 {
            // CLONE_CHILD_CLEARTID for fork: glibc sets it to the TID field.
            state.clear_child_tid = a[4];
        }
        if flags & 0x0100_0000 != 0 && a[4] != 0 {
            // CLONE_CHILD_SETTID
            // SAFETY: plain getter.
            let tid = unsafe { libc::gettid() };
            let _ = state.memory.write(a[4], &tid.to_le_bytes());
        }
    }
    host(i64::from(pid))
}

fn execve(state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let memory = state.memory.clone();
    let raw_path = match memory.read_cstr(a[0], 4096) {
        Ok(p) => p,
        Err(f) => return f.into(),
    };
    let read_list = |at: u64| -> Result<Vec<Vec<u8>>, i64> {
        let mut out = Vec::new();
        if at == 0 {
            return Ok(out);
        }
        for i in 0..65536u64 {
            let ptr = memory.read_u64(at.wrapping_add(i * 8)).map_err(i64::from)?;
            if ptr == 0 {
                return Ok(out);
            }
            out.push(memory.read_cstr(ptr, 1 << 17).map_err(i64::from)?);
        }
        Err(err(libc::E2BIG))
    };
    let (argv, envp) = match (read_list(a[1]), read_list(a[2])) {
        (Ok(argv), Ok(envp)) => (argv, envp),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let host_path = if raw_path == b"/proc/self/exe" {
        state.exe.clone()
    } else {
        elf::in_sysroot(
            state.options.sysroot.as_deref(),
            Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&raw_path)),
        )
    };
    let mut head = [0u8; 64];
    let head_len = std::fs::File::open(&host_path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let c = |v: Vec<u8>| CString::new(v).unwrap_or_default();
    let env: Vec<CString> = envp.into_iter().map(c).collect();
    let (program, args): (CString, Vec<CString>) = if elf::is_riscv64_elf(&head[..head_len]) {
        // A riscv64 program runs under this emulator again.
        let Ok(me) = std::env::current_exe() else {
            return err(libc::ENOEXEC);
        };
        let mut args = vec![c(b"turing".to_vec()), c(b"user".to_vec())];
        if let Some(root) = &state.options.sysroot {
            args.push(c(b"--sysroot".to_vec()));
            args.push(c(root.clone().into_os_string().into_encoded_bytes()));
        }
        if state.options.strace {
            args.push(c(b"--strace".to_vec()));
        }
        if let Some(first) = argv.first() {
            args.push(c(b"--argv0".to_vec()));
            args.push(c(first.clone()));
        }
        args.push(c(b"--".to_vec()));
        args.push(c(host_path.into_os_string().into_encoded_bytes()));
        args.extend(argv.into_iter().skip(1).map(c));
        (c(me.into_os_string().into_encoded_bytes()), args)
    } else {
        // A host program (or script) runs natively.
        (
            c(host_path.into_os_string().into_encoded_bytes()),
            argv.into_iter().map(c).collect(),
        )
    };
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: program, arguments and environment are NUL-terminated arrays of C
    // strings that live until the call (which only returns on failure).
    unsafe { libc::execve(program.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    err(last_errno())
}
