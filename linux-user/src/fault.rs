//! Host faults on guest memory.
//!
//! Translated code loads and stores guest memory directly (one add to the base of
//! the host mapping), and the host mapping's protection mirrors the guest's
//! ([`crate::space`]). So an access the guest may not make faults on the host,
//! and this SIGSEGV handler decides what it was:
//!
//! - a store to a writable page kept read-only because the hart decoded code from
//!   it: the page is made writable, every thread's CPU is told to drop what it
//!   decoded from it before it next dispatches (this thread's at once, through
//!   [`cpu_riscv::hart::note_code_written`]), and the store goes on;
//! - a guest fault: registers in translated code live in host registers, so the
//!   guest cannot be shown a precise `ucontext`. That is why translated code only
//!   accesses memory directly while the guest has no SIGSEGV or SIGBUS handler
//!   ([`UserMemory::require_precise_faults`]): such a fault ends the process by
//!   SIGSEGV, as Linux would;
//! - anything outside guest memory: a fault of the emulator itself, passed to the
//!   handler that was there before (Rust's stack-overflow report) or the default.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::space::UserMemory;

thread_local! {
    /// The memory of the guest process this host thread runs a thread of.
    static MEMORY: Cell<*const UserMemory> = const { Cell::new(std::ptr::null()) };
    /// Whether to report faults on stderr (`--strace`).
    static STRACE: Cell<bool> = const { Cell::new(false) };
}

/// The SIGSEGV action before ours, for faults that are not the guest's.
struct Previous(libc::sigaction);

// SAFETY: a plain C struct of function addresses, a signal mask and flags, only
// read after it is written once.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// While alive, host faults on this thread's guest memory are the guest's.
#[derive(Debug)]
pub struct FaultScope {
    memory: *mut UserMemory,
}

impl Drop for FaultScope {
    fn drop(&mut self) {
        MEMORY.with(|m| m.set(std::ptr::null()));
        // SAFETY: `memory` came from Box::into_raw in `enter` and the handler no
        // longer sees it (the thread-local was cleared just above, on this thread).
        drop(unsafe { Box::from_raw(self.memory) });
    }
}

/// Installs the handler (once per host process) and makes host faults on
/// `memory` this thread's guest faults until the scope ends.
pub fn enter(memory: &UserMemory, strace: bool) -> FaultScope {
    install();
    let memory = Box::into_raw(Box::new(memory.clone()));
    MEMORY.with(|m| m.set(memory));
    STRACE.with(|s| s.set(strace));
    FaultScope { memory }
}

fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sigaction with a zeroed struct, an empty mask and our handler;
        // the old action is written into a zeroed struct we own.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGSEGV, &action, &mut old);
            Previous(old)
        }
    });
}

/// The SIGSEGV handler. It runs on the faulting thread, synchronously at a
/// load or store, never inside the allocator or while this thread holds the
/// area map's lock (neither touches guest memory), so taking that lock for
/// reading and the allocation in `release_code_page` cannot deadlock.
extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let memory = MEMORY.with(Cell::get);
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    if !memory.is_null() {
        // SAFETY: set by `enter` on this thread to a box that lives until the
        // scope clears the pointer.
        let memory = unsafe { &*memory };
        let base = memory.ram.host_base_ptr() as usize;
        let len = memory.ram.len() as usize;
        if let Some(va) = address.checked_sub(base).filter(|&off| off < len) {
            let va = va as u64;
            if memory.release_code_page(va) {
                cpu_riscv::hart::note_code_written(va);
                return;
            }
            guest_fault(signal, va);
            return;
        }
    }
    pass_on(signal, info, context);
}

/// A guest access the guest may not make: the process ends by the signal (the
/// faulting instruction runs again under the default action).
fn guest_fault(signal: libc::c_int, va: u64) {
    if STRACE.with(Cell::get) {
        let mut line = Line::default();
        let _ = writeln!(line, "--- SIGSEGV in translated code (address {va:#x}) ---");
        line.print();
    }
    reset_default(signal);
}

/// Not guest memory: what would have happened without us.
fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(Previous(old)) = PREVIOUS.get() else {
        reset_default(signal);
        return;
    };
    let handler = old.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        reset_default(signal);
    } else if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO handler installed by someone else in this
        // process, called as the kernel would have.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, context);
    } else {
        // SAFETY: a plain handler installed by someone else, called likewise.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
}

fn reset_default(signal: libc::c_int) {
    // SAFETY: restores the default action; returning re-runs the faulting
    // instruction, which the kernel then handles by that default.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// A line formatted on the stack and written with one `write(2)`: no allocation
/// or locking inside the signal handler.
struct Line {
    bytes: [u8; 160],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            bytes: [0; 160],
            len: 0,
        }
    }
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Line {
    fn print(&self) {
        // SAFETY: writes our own initialised buffer to stderr.
        unsafe {
            libc::write(2, self.bytes.as_ptr().cast(), self.len);
        }
    }
}
