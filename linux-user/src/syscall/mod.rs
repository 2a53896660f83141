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

use crate::arch::{Arch, LinuxCpu};

use super::space::{
    Fault, MMAP_MIN_ADDR, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_SPACE_SIZE, UserMemory,
    page_up,
};

use super::{ProcessEnd, UserOptions, elf};

mod files;
mod memory;
mod process;
mod table;
#[cfg(test)]
mod tests;
mod time;

pub(crate) use process::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CLONE_SETTLS,
};
pub(crate) use table::Handler;
pub use table::Syscall;
/// The asm-generic system call table (riscv64's, and arm64's).
pub(crate) use table::TABLE as GENERIC_TABLE;
pub use table::nr;

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
}

/// Per-thread state the system calls keep, with the process's shared part.
#[derive(Debug)]
pub struct ProcessState {
    /// The architecture the process runs.
    pub(crate) arch: &'static Arch,
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
    /// This thread's robust futex list head (`set_robust_list`).
    pub(crate) robust_list: u64,
}

impl ProcessState {
    /// State for a process whose heap starts at `brk`.
    pub fn new(
        arch: &'static Arch,
        memory: UserMemory,
        brk: u64,
        exe: PathBuf,
        options: &UserOptions,
    ) -> ProcessState {
        ProcessState {
            arch,
            memory,
            exe,
            options: options.clone(),
            shared: Arc::new(Shared {
                brk: Mutex::new((brk, brk)),
                mm: Mutex::new(()),
                actions: Mutex::new([GuestAction::default(); 65]),
                warned: Mutex::new(BTreeSet::new()),
                generation: AtomicU64::new(0),
            }),
            signal_mask: 0,
            clear_child_tid: 0,
            seen_generation: 0,
            main_thread: true,
            alt_stack: (0, 0),
            suspend_mask: None,
            robust_list: 0,
        }
    }

    /// Whether no unimplemented call was warned about yet.
    #[cfg(test)]
    pub(crate) fn shared_warned_is_empty(&self) -> bool {
        lock(&self.shared.warned).is_empty()
    }

    /// The state of a new thread of the same process.
    pub(crate) fn new_thread(&self) -> ProcessState {
        ProcessState {
            arch: self.arch,
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
            robust_list: 0,
        }
    }

    /// Drops the CPU's translations if another thread changed the address space.
    pub(crate) fn sync_address_space(&mut self, cpu: &mut dyn LinuxCpu) {
        let now = self.shared.generation.load(Ordering::Acquire);
        if now != self.seen_generation {
            self.seen_generation = now;
            cpu.flush_code();
        }
    }

    /// Records an address-space change every thread must see.
    pub(crate) fn changed_address_space(&mut self, cpu: &mut dyn LinuxCpu) {
        self.seen_generation = self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        cpu.flush_code();
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

/// The thread making a system call, as its handler sees it.
pub(crate) struct Caller<'a> {
    /// The calling thread's CPU (registers as they were at the call).
    pub(crate) cpu: &'a mut dyn LinuxCpu,
    /// The calling thread's and its process's state.
    pub(crate) state: &'a mut ProcessState,
    /// The process's memory (a handle, as `state.memory`).
    pub(crate) memory: UserMemory,
    /// The call's number, for handlers that serve several calls.
    pub(crate) number: u64,
}

/// The name of a system call, for `--strace` and warnings.
pub fn syscall_name(arch: &Arch, number: u64) -> String {
    table::lookup(arch.syscalls, number)
        .map_or_else(|| format!("syscall_{number}"), |s| s.name.to_owned())
}

/// Runs the system call the CPU asks for, sets its result and moves past the
/// instruction; then enters the handler of a signal that arrived, if any.
pub fn dispatch(cpu: &mut dyn LinuxCpu, state: &mut ProcessState) -> Outcome {
    let (number, args) = cpu.syscall();
    let arch = state.arch;
    let entry = table::lookup(arch.syscalls, number);
    let handler = entry.map_or(Handler::Missing, |s| s.handler);
    let memory = state.memory.clone();
    let mut caller = Caller {
        cpu,
        state,
        memory,
        number,
    };
    let result = match handler {
        Handler::Call(run) => run(&mut caller, args),
        Handler::Ending(run) => match run(&mut caller, args) {
            Ok(value) => value,
            Err(end) => {
                if caller.state.options.strace {
                    eprintln!("{}({:#x}, ...) = ?", syscall_name(arch, number), args[0]);
                }
                return Outcome::End(end);
            }
        },
        Handler::SigReturn => {
            if caller.state.options.strace {
                eprintln!("rt_sigreturn() = ?");
            }
            if !super::signal::sigreturn(caller.cpu, caller.state) {
                return Outcome::End(ProcessEnd::Signaled(libc::SIGSEGV));
            }
            return deliver_pending(caller.cpu, caller.state);
        }
        Handler::Absent(errno) => err(errno),
        Handler::Missing => {
            if lock(&caller.state.shared.warned).insert(number) && !caller.state.options.strace {
                eprintln!(
                    "turing: unimplemented system call {} ({number}): returning ENOSYS",
                    syscall_name(arch, number)
                );
            }
            err(libc::ENOSYS)
        }
    };
    let Caller { cpu, state, .. } = caller;
    if result == SIGNAL_ENTERED {
        return Outcome::Continue;
    }
    if state.options.strace {
        trace(state, entry, number, args, result);
    }
    let interrupted = result == -i64::from(libc::EINTR) && number != nr::RT_SIGSUSPEND;
    if interrupted && super::signal::next_restarts(state) {
        // SA_RESTART: leave the ecall to run again once the handler returns.
    } else {
        cpu.finish_syscall(result as u64);
    }
    deliver_pending(cpu, state)
}

/// Prints one `--strace` line: the call by name, its arguments (path names as
/// strings) and its result.
fn trace(state: &ProcessState, entry: Option<&Syscall>, number: u64, args: [u64; 6], result: i64) {
    let arch = state.arch;
    let strings = entry.map_or(&[][..], |s| s.paths);
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
    eprintln!(
        "{}({}) = {outcome}",
        syscall_name(arch, number),
        shown.join(", ")
    );
}

/// Enters the handler of the next signal the host delivered to this thread.
pub fn deliver_pending(cpu: &mut dyn LinuxCpu, state: &mut ProcessState) -> Outcome {
    while let Some(signal) = super::signal::take_pending(state) {
        if !super::signal::has_handler(state, signal) {
            // The disposition changed after the signal arrived: the host
            // already applied the default, or it is ignored.
            continue;
        }
        if !super::signal::deliver(cpu, state, signal, 0, 0) {
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
fn write_timespec(memory: &UserMemory, at: u64, ts: &libc::timespec) -> i64 {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&ts.tv_sec.to_le_bytes());
    out[8..].copy_from_slice(&ts.tv_nsec.to_le_bytes());
    match memory.write(at, &out) {
        Ok(()) => 0,
        Err(f) => f.into(),
    }
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

/// A result meaning "the hart's registers are already set" (a handler was
/// entered, or rt_sigreturn restored a context): dispatch leaves a0 and pc alone.
pub(crate) const SIGNAL_ENTERED: i64 = i64::MIN;

/// Which way a guest buffer handed to a host call travels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Read by the host call: copied from the guest before it.
    In,
    /// Written by the host call: copied to the guest after it succeeds.
    Out,
    /// Both.
    InOut,
}

/// Runs `run` with a host copy of the guest buffer at `at` (`len` bytes; a null
/// guest pointer stays null), copying it in and out as `way` says. The guest's
/// page permissions apply: a bad pointer gives EFAULT, never a host fault.
fn with_buffer(
    memory: &UserMemory,
    at: u64,
    len: usize,
    way: Way,
    run: impl FnOnce(*mut u8) -> i64,
) -> i64 {
    if at == 0 {
        return host(run(std::ptr::null_mut()));
    }
    let mut buf = vec![0u8; len];
    if way != Way::Out
        && let Err(f) = memory.read(at, &mut buf)
    {
        return f.into();
    }
    let r = run(buf.as_mut_ptr());
    if r < 0 {
        return err(last_errno());
    }
    if way != Way::In
        && let Err(f) = memory.write(at, &buf)
    {
        return f.into();
    }
    r
}

/// Runs `run` with a host buffer of up to `len` bytes (capped at [`CHUNK`]) and
/// copies the first `n` bytes to the guest, `n` being what `run` returned.
fn read_into(
    memory: &UserMemory,
    at: u64,
    len: u64,
    run: impl FnOnce(*mut u8, usize) -> i64,
) -> i64 {
    let len = (len as usize).min(CHUNK);
    let mut buf = vec![0u8; len];
    let ptr = if at == 0 || len == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr()
    };
    let n = run(ptr, len);
    if n < 0 {
        return err(last_errno());
    }
    if !ptr.is_null()
        && let Err(f) = memory.write(at, &buf[..(n as usize).min(len)])
    {
        return f.into();
    }
    n
}

/// A guest input structure of `len` bytes a host call reads, copied in; None
/// for a null pointer (which the call takes as "none").
fn optional_in(memory: &UserMemory, at: u64, len: usize) -> Result<Option<Vec<u8>>, i64> {
    if at == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    memory.read(at, &mut buf).map_err(i64::from)?;
    Ok(Some(buf))
}

/// The host pointer to an [`optional_in`] structure, or null.
fn optional_ptr(buf: &Option<Vec<u8>>) -> *const u8 {
    buf.as_ref().map_or(std::ptr::null(), |b| b.as_ptr())
}

/// A guest C string (not a path), for names such as an xattr's or a memfd's.
fn string_arg(memory: &UserMemory, at: u64) -> Result<CString, i64> {
    let raw = memory.read_cstr(at, 4096).map_err(i64::from)?;
    CString::new(raw).map_err(|_| err(libc::EINVAL))
}
