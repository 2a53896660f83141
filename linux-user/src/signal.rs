//! Signals for user-mode processes.
//!
//! The host kernel does the bookkeeping: a guest's `SIG_IGN` and `SIG_DFL` become
//! the host's, so default actions (terminate, stop, ignore) and signals between
//! processes and threads behave exactly as on Linux. A guest handler becomes a
//! host handler that only marks the signal pending for the thread it hit; the
//! thread's run loop then builds the architecture's signal frame (`siginfo` + `ucontext`,
//! laid out as Linux's `rt_sigframe`) on the guest stack and enters the handler,
//! which returns through a trampoline into `rt_sigreturn`.
//! Faults in guest code (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) never go
//! through the host: they are delivered directly, or end the process.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{Arch, LinuxCpu, SignalFrame};

use crate::space::{PAGE, PROT_EXEC, PROT_READ, UserMemory};
use crate::syscall::{GuestAction, ProcessState};

use emu_core::sync::LockRecover;

/// Where the `rt_sigreturn` trampoline lives (one page above the stack area).
pub const TRAMPOLINE: u64 = crate::elf::STACK_TOP + PAGE;

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
/// Interrupted system calls restart after the handler.
pub const SA_RESTART: u64 = 0x1000_0000;

thread_local! {
    /// Signals the host delivered to this thread, one bit per signal (bit n-1).
    static PENDING: AtomicU64 = const { AtomicU64::new(0) };
}

/// The host handler for signals the guest handles: mark it pending. Only an
/// atomic OR on thread-local memory initialised at compile time, so it is
/// async-signal-safe.
extern "C" fn record(signal: libc::c_int) {
    if (1..=64).contains(&signal) {
        PENDING.with(|p| p.fetch_or(1 << (signal - 1), Ordering::SeqCst));
    }
}

/// Whether the host may be told about this signal's disposition: faults stay
/// with the emulator (a real host fault must still kill it), and SIGKILL and
/// SIGSTOP cannot be caught.
fn host_managed(signal: i32) -> bool {
    !matches!(
        signal,
        libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGILL
            | libc::SIGFPE
            | libc::SIGTRAP
            | libc::SIGKILL
            | libc::SIGSTOP
    )
}

/// Maps the trampoline page.
pub fn map_trampoline(memory: &UserMemory, arch: &Arch) {
    memory.map_zeroed(TRAMPOLINE, PAGE, PROT_READ | PROT_EXEC);
    let _ = memory.poke(TRAMPOLINE, arch.sigreturn_code);
}

/// Installs the host side of a guest disposition.
fn install_host(signal: i32, action: &GuestAction) {
    if !host_managed(signal) {
        return;
    }
    // SAFETY: sigaction with a zeroed struct, a full mask and either SIG_IGN,
    // SIG_DFL or `record`, which is async-signal-safe.
    unsafe {
        let mut host: libc::sigaction = std::mem::zeroed();
        host.sa_sigaction = match action.handler {
            SIG_DFL => libc::SIG_DFL,
            SIG_IGN => libc::SIG_IGN,
            _ => record as extern "C" fn(libc::c_int) as libc::sighandler_t,
        };
        libc::sigfillset(&mut host.sa_mask);
        // No SA_RESTART: a blocking call must come back (EINTR) so the guest
        // handler runs; the guest's own SA_RESTART is honoured by re-running it.
        host.sa_flags = 0;
        libc::sigaction(signal, &host, std::ptr::null_mut());
    }
}

/// Resets every handled signal to its default action, keeping ignored ones
/// ignored (clone3's CLONE_CLEAR_SIGHAND, in a new process).
pub(crate) fn reset_handlers(state: &ProcessState) {
    let mut actions = state.shared.actions.lock_recover();
    for (signal, action) in actions.iter_mut().enumerate().skip(1) {
        if !matches!(action.handler, SIG_DFL | SIG_IGN) {
            *action = GuestAction::default();
            install_host(signal as i32, action);
        }
    }
}

/// The host signal set of the signals in `mask` (bit n-1 for signal n) that
/// the host manages.
fn host_sigset(mask: u64) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset and sigaddset only write to
    // the local set, with signal numbers in range.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in 1..=64 {
            if mask & (1 << (signal - 1)) != 0 && host_managed(signal) {
                libc::sigaddset(&mut set, signal);
            }
        }
        set
    }
}

/// Applies the guest's blocked set to the host thread (for the signals the host
/// manages), so blocked signals wait in the host kernel as they would in Linux.
pub fn apply_host_mask(mask: u64) {
    let set = host_sigset(mask);
    // SAFETY: sets this thread's mask from a valid set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `rt_sigaction(signal, act, oldact, sigsetsize)`.
pub fn sigaction(cpu: &mut dyn LinuxCpu, state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let signal = a[0] as i32;
    if !(1..=64).contains(&signal)
        || (a[1] != 0 && (signal == libc::SIGKILL || signal == libc::SIGSTOP))
    {
        return -i64::from(libc::EINVAL);
    }
    let memory = state.memory.clone();
    let mut actions = state.shared.actions.lock_recover();
    if a[2] != 0 {
        let old = actions[signal as usize];
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&old.handler.to_le_bytes());
        out[8..16].copy_from_slice(&old.flags.to_le_bytes());
        out[16..].copy_from_slice(&old.mask.to_le_bytes());
        if let Err(f) = memory.write(a[2], &out) {
            return f.into();
        }
    }
    if a[1] != 0 {
        let mut raw = [0u8; 24];
        if let Err(f) = memory.read(a[1], &mut raw) {
            return f.into();
        }
        let word =
            |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let action = GuestAction {
            handler: word(0),
            flags: word(1),
            mask: word(2),
        };
        actions[signal as usize] = action;
        install_host(signal, &action);
        drop(actions);
        // A handler may look at the registers of a fault: translate for that.
        if matches!(signal, libc::SIGSEGV | libc::SIGBUS)
            && action.handler != SIG_DFL
            && action.handler != SIG_IGN
            && memory.require_precise_faults()
        {
            state.changed_address_space(cpu);
        }
    }
    0
}

/// `rt_sigprocmask(how, set, oldset, sigsetsize)`.
pub fn sigprocmask(state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let memory = state.memory.clone();
    if a[2] != 0
        && let Err(f) = memory.write(a[2], &state.signal_mask.to_le_bytes())
    {
        return f.into();
    }
    if a[1] != 0 {
        let set = match memory.read_u64(a[1]) {
            Ok(set) => set,
            Err(f) => return f.into(),
        };
        let unblockable = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));
        state.signal_mask = match a[0] as i32 {
            libc::SIG_BLOCK => state.signal_mask | set,
            libc::SIG_UNBLOCK => state.signal_mask & !set,
            libc::SIG_SETMASK => set,
            _ => return -i64::from(libc::EINVAL),
        } & !unblockable;
        apply_host_mask(state.signal_mask);
    }
    0
}

/// `rt_sigsuspend(mask, sigsetsize)`: waits for a signal with `mask` blocked.
pub fn sigsuspend(state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let mask = match state.memory.read_u64(a[0]) {
        Ok(mask) => mask,
        Err(f) => return f.into(),
    };
    state.suspend_mask = Some(state.signal_mask);
    state.signal_mask = mask;
    let set = host_sigset(mask);
    // SAFETY: sigsuspend with a valid set returns when a handler ran (ours only
    // records the signal).
    unsafe {
        if pending_unblocked(mask) == 0 {
            libc::sigsuspend(&set);
        }
    }
    -i64::from(libc::EINTR)
}

/// `rt_sigtimedwait(set, info, timeout, sigsetsize)`: takes a signal of `set`
/// that is pending, waiting for one (the host kernel keeps them pending, as the
/// guest blocks them).
pub fn sigtimedwait(state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let memory = state.memory.clone();
    let wanted = match memory.read_u64(a[0]) {
        Ok(set) => set,
        Err(f) => return f.into(),
    };
    let write_info = |signal: i32| -> i64 {
        if a[1] != 0 {
            let mut info = [0u8; 128];
            info[..4].copy_from_slice(&signal.to_le_bytes());
            if let Err(f) = memory.write(a[1], &info) {
                return f.into();
            }
        }
        i64::from(signal)
    };
    // One our handler already recorded.
    let recorded = PENDING.with(|p| p.load(Ordering::SeqCst)) & wanted;
    if recorded != 0 {
        let signal = recorded.trailing_zeros() as i32 + 1;
        PENDING.with(|p| p.fetch_and(!(1 << (signal - 1)), Ordering::SeqCst));
        return write_info(signal);
    }
    let timeout = match crate::syscall::read_timeout(&memory, a[2]) {
        Ok(timeout) => timeout,
        Err(e) => return e,
    };
    let set = host_sigset(wanted);
    // SAFETY: a valid signal set, a local siginfo; the timeout is ours or null.
    let signal = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::sigtimedwait(
            &set,
            &mut info,
            timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _),
        )
    };
    if signal < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINTR);
        return -i64::from(errno);
    }
    write_info(signal)
}

/// `sigaltstack(ss, old_ss)`.
pub fn sigaltstack(state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let memory = state.memory.clone();
    if a[1] != 0 {
        let (base, size) = state.alt_stack;
        let flags: u32 = if size == 0 { 2 } else { 0 }; // SS_DISABLE
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&base.to_le_bytes());
        out[8..12].copy_from_slice(&flags.to_le_bytes());
        out[16..].copy_from_slice(&size.to_le_bytes());
        if let Err(f) = memory.write(a[1], &out) {
            return f.into();
        }
    }
    if a[0] != 0 {
        let mut raw = [0u8; 24];
        if let Err(f) = memory.read(a[0], &mut raw) {
            return f.into();
        }
        let base = u64::from_le_bytes(raw[..8].try_into().unwrap_or_default());
        let flags = u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default());
        let size = u64::from_le_bytes(raw[16..].try_into().unwrap_or_default());
        state.alt_stack = if flags & 2 != 0 { (0, 0) } else { (base, size) };
    }
    0
}

/// Pending host-delivered signals not blocked by `mask`.
fn pending_unblocked(mask: u64) -> u64 {
    PENDING.with(|p| p.load(Ordering::SeqCst)) & !mask
}

/// The next host-delivered signal this thread should handle now, taken off the
/// pending set.
pub fn take_pending(state: &ProcessState) -> Option<i32> {
    let ready = pending_unblocked(state.signal_mask);
    if ready == 0 {
        return None;
    }
    let signal = ready.trailing_zeros() as i32 + 1;
    PENDING.with(|p| p.fetch_and(!(1 << (signal - 1)), Ordering::SeqCst));
    Some(signal)
}

/// Whether the next signal to handle asks interrupted calls to restart.
pub fn next_restarts(state: &ProcessState) -> bool {
    let ready = pending_unblocked(state.signal_mask);
    if ready == 0 {
        return false;
    }
    let signal = ready.trailing_zeros() as i32 + 1;
    action(state, signal).flags & SA_RESTART != 0
}

/// The guest's action for `signal`.
pub(crate) fn action(state: &ProcessState, signal: i32) -> GuestAction {
    state
        .shared
        .actions
        .lock_recover()
        .get(signal as usize)
        .copied()
        .unwrap_or_default()
}

/// Whether the guest handles `signal` with a function of its own.
pub fn has_handler(state: &ProcessState, signal: i32) -> bool {
    action(state, signal).handler > SIG_IGN
}

/// Enters the guest's handler for `signal`: pushes the frame and points the
/// CPU at the handler. `code` and `address` fill siginfo (si_code, si_addr for
/// faults; the sender's pid otherwise). False if the frame cannot be written
/// (the stack is gone), which the caller turns into the process's death.
pub fn deliver(
    cpu: &mut dyn LinuxCpu,
    state: &mut ProcessState,
    signal: i32,
    code: i32,
    address: u64,
) -> bool {
    let action = action(state, signal);
    let saved_mask = state.suspend_mask.take().unwrap_or(state.signal_mask);
    let sp = cpu.stack_pointer();
    let (alt_base, alt_size) = state.alt_stack;
    let on_alt = alt_size != 0 && sp > alt_base && sp <= alt_base.saturating_add(alt_size);
    let stack_top = if action.flags & SA_ONSTACK != 0 && alt_size != 0 && !on_alt {
        alt_base.saturating_add(alt_size)
    } else {
        sp
    };
    // siginfo_t: si_signo, si_errno, si_code, then si_addr for faults, or the
    // sender's pid and uid.
    let mut info = [0u8; 128];
    info[..4].copy_from_slice(&signal.to_le_bytes());
    info[8..12].copy_from_slice(&code.to_le_bytes());
    if address != 0 {
        info[16..24].copy_from_slice(&address.to_le_bytes());
    } else {
        // SAFETY: plain getters.
        let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
        info[16..20].copy_from_slice(&pid.to_le_bytes());
        info[20..24].copy_from_slice(&uid.to_le_bytes());
    }
    // SS_DISABLE (2) without an alternate stack, SS_ONSTACK (1) while on it.
    let alt_flags = if alt_size == 0 { 2 } else { u32::from(on_alt) };
    let frame = SignalFrame {
        signal,
        info,
        saved_mask,
        stack_top,
        alt_stack: (alt_base, alt_size, alt_flags),
        handler: action.handler,
        restorer: TRAMPOLINE,
    };
    if !cpu.enter_signal_handler(&state.memory, &frame) {
        return false;
    }
    let mut mask = state.signal_mask | action.mask;
    if action.flags & SA_NODEFER == 0 {
        mask |= 1 << (signal - 1);
    }
    state.signal_mask = mask;
    apply_host_mask(mask);
    if action.flags & SA_RESETHAND != 0 {
        let mut actions = state.shared.actions.lock_recover();
        actions[signal as usize] = GuestAction::default();
        install_host(signal, &GuestAction::default());
    }
    true
}

/// `rt_sigreturn`: restores what [`deliver`] saved. False if the frame is
/// unreadable.
pub fn sigreturn(cpu: &mut dyn LinuxCpu, state: &mut ProcessState) -> bool {
    let Some(saved_mask) = cpu.return_from_signal(&state.memory) else {
        return false;
    };
    let unblockable = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));
    state.signal_mask = saved_mask & !unblockable;
    apply_host_mask(state.signal_mask);
    true
}

/// Signals the host delivered to this thread that its guest handler has not
/// run for yet (part of what `rt_sigpending` reports).
pub(crate) fn recorded() -> u64 {
    PENDING.with(|p| p.load(Ordering::SeqCst))
}
