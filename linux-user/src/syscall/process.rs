//! System calls: process.

use super::*;

/// `getpid`
pub(super) fn sys_getpid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::getpid() })
}

/// `gettid`
pub(super) fn sys_gettid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::gettid() })
}

/// `set_tid_address`
pub(super) fn sys_set_tid_address(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    state.clear_child_tid = a[0];
    // SAFETY: no arguments.
    i64::from(unsafe { libc::gettid() })
}

/// `getppid`
pub(super) fn sys_getppid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::getppid() })
}

/// `getuid`
pub(super) fn sys_getuid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::getuid() })
}

/// `geteuid`
pub(super) fn sys_geteuid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::geteuid() })
}

/// `getgid`
pub(super) fn sys_getgid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::getgid() })
}

/// `getegid`
pub(super) fn sys_getegid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    i64::from(unsafe { libc::getegid() })
}

/// `getresuid, getresgid`
pub(super) fn sys_getresuid(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    let number = caller.number;
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

/// `setuid`
pub(super) fn sys_setuid(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::setuid(a[0] as u32) }))
}

/// `setgid`
pub(super) fn sys_setgid(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::setgid(a[0] as u32) }))
}

/// `getgroups`
pub(super) fn sys_getgroups(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
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
            return f.into();
        }
    }
    host(i64::from(n))
}

/// `setpgid`
pub(super) fn sys_setpgid(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::setpgid(a[0] as i32, a[1] as i32)
    }))
}

/// `getpgid`
pub(super) fn sys_getpgid(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::getpgid(a[0] as i32) }))
}

/// `getsid`
pub(super) fn sys_getsid(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::getsid(a[0] as i32) }))
}

/// `setsid`
pub(super) fn sys_setsid(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    host(i64::from(unsafe { libc::setsid() }))
}

/// `getpriority, setpriority`
pub(super) fn sys_getpriority(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let number = caller.number;
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

/// `uname`
pub(super) fn sys_uname(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    uname(&memory, a[0])
}

/// `sysinfo`
pub(super) fn sys_sysinfo(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    with_buffer(&memory, a[0], 112, Way::Out, |buf| {
        // SAFETY: struct sysinfo is 112 bytes on both.
        unsafe { libc::syscall(libc::SYS_sysinfo, buf) }
    })
}

/// `times`
pub(super) fn sys_times(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    let mut buf = [0u8; 32];
    // SAFETY: struct tms is four longs on both.
    let r = unsafe { libc::syscall(libc::SYS_times, buf.as_mut_ptr()) };
    if a[0] != 0
        && let Err(f) = memory.write(a[0], &buf)
    {
        return f.into();
    }
    host(r)
}

/// `getrusage`
pub(super) fn sys_getrusage(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    with_buffer(&memory, a[1], 144, Way::Out, |buf| {
        // SAFETY: struct rusage is 144 bytes on both.
        unsafe { libc::syscall(libc::SYS_getrusage, a[0] as i32, buf) }
    })
}

/// `getrlimit`
pub(super) fn sys_getrlimit(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    with_buffer(&memory, a[1], 16, Way::Out, |buf| {
        // SAFETY: struct rlimit is two u64s on both.
        unsafe { libc::syscall(libc::SYS_getrlimit, a[0] as i32, buf) }
    })
}

/// `setrlimit`
pub(super) fn sys_setrlimit(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    0
}

/// `prlimit64`
pub(super) fn sys_prlimit64(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    // Setting limits is accepted and ignored (the host keeps its own);
    // reading returns the host's.
    if a[3] == 0 {
        0
    } else {
        with_buffer(&memory, a[3], 16, Way::Out, |buf| {
            // SAFETY: struct rlimit64 is two u64s; no new limit is set.
            unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    a[0] as i32,
                    a[1] as i32,
                    std::ptr::null::<u8>(),
                    buf,
                )
            }
        })
    }
}

/// `getrandom`
pub(super) fn sys_getrandom(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    read_into(&caller.memory, a[0], a[1], |buf, len| {
        // SAFETY: `buf` is ours and `len` bytes long (or null with 0).
        (unsafe { libc::getrandom(buf.cast(), len, a[2] as u32) }) as i64
    })
}

/// `sched_getaffinity`
pub(super) fn sys_sched_getaffinity(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    read_into(&caller.memory, a[2], a[1].min(4096), |buf, len| {
        // SAFETY: `buf` is ours and `len` bytes long (or null with 0).
        unsafe { libc::syscall(libc::SYS_sched_getaffinity, a[0] as i32, len, buf) }
    })
}

/// `sched_yield`
pub(super) fn sys_sched_yield(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    host(i64::from(unsafe { libc::sched_yield() }))
}

/// `futex`
pub(super) fn sys_futex(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    futex(&memory, a)
}

/// `clone`
pub(super) fn sys_clone(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    clone(cpu, state, a)
}

/// `wait4`
pub(super) fn sys_wait4(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
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
            return f.into();
        }
        if a[3] != 0
            && let Err(f) = memory.write(a[3], &usage)
        {
            return f.into();
        }
    }
    host(r)
}

/// `execve`
pub(super) fn sys_execve(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    execve(state, a)
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
    cpu: &mut dyn LinuxCpu,
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
        if crate::signal::has_handler(state, signal) && state.signal_mask & (1 << (signal - 1)) == 0
        {
            // SI_TKILL / SI_USER, no address.
            cpu.finish_syscall(0);
            if !crate::signal::deliver(
                cpu,
                state,
                signal,
                if number == nr::KILL { 0 } else { -6 },
                0,
            ) {
                return Err(ProcessEnd::Signaled(libc::SIGSEGV));
            }
            return Ok(SIGNAL_ENTERED);
        }
        let action = crate::signal::action(state, signal);
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

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_THREAD: u64 = 0x10000;
pub(crate) const CLONE_SETTLS: u64 = 0x0008_0000;
pub(crate) const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
pub(crate) const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
pub(crate) const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
/// clone3's flags beyond the legacy 32 bits: CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `clone`: a thread (CLONE_THREAD) runs on a new host thread; anything else is
/// a new process, made by forking the whole emulator.
///
/// The arguments are in the riscv64 order: flags, stack, parent_tid, tls,
/// child_tid.
fn clone(cpu: &mut dyn LinuxCpu, state: &mut ProcessState, a: [u64; 6]) -> i64 {
    let (flags, stack, parent_tid, tls, child_tid) = (a[0], a[1], a[2], a[3], a[4]);
    if flags & CLONE_THREAD != 0 {
        if flags & CLONE_VM == 0 || flags & CLONE_PIDFD != 0 {
            return err(libc::EINVAL);
        }
        return crate::spawn_thread(cpu, state, a);
    }
    // A new process. CLONE_VM without CLONE_THREAD (vfork, posix_spawn) would
    // share memory with the parent; a forked emulator copies it instead, as
    // qemu-user does. The programs that use it only run the child until it
    // execs or exits, and CLONE_VFORK's wait below keeps their order.
    let vfork_done = if flags & CLONE_VFORK != 0 {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return err(last_errno());
        }
        Some(fds)
    } else {
        None
    };
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: fork in a process whose other threads (guest threads) may hold
    // locks: the child only runs this thread's guest code and the syscall layer,
    // which takes the address-space locks only while the parent's mm lock is
    // not held here (we hold no lock now), as with any threaded program's fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = last_errno();
        if let Some([r, w]) = vfork_done {
            // SAFETY: our own descriptors.
            unsafe {
                libc::close(r);
                libc::close(w);
            }
        }
        return err(e);
    }
    if pid == 0 {
        // The child: its write end of the vfork pipe closes when it execs
        // (O_CLOEXEC) or exits, which is what the parent waits for.
        if let Some([r, _]) = vfork_done {
            // SAFETY: our own descriptor.
            unsafe { libc::close(r) };
        }
        state.main_thread = true;
        cpu.after_fork();
        cpu.set_child_registers(stack, (flags & CLONE_SETTLS != 0).then_some(tls));
        if flags & CLONE_CHILD_CLEARTID != 0 {
            state.clear_child_tid = child_tid;
        }
        if flags & CLONE_CHILD_SETTID != 0 && child_tid != 0 {
            // SAFETY: plain getter.
            let tid = unsafe { libc::gettid() };
            let _ = state.memory.write(child_tid, &tid.to_le_bytes());
        }
        if flags & CLONE_CLEAR_SIGHAND != 0 {
            crate::signal::reset_handlers(state);
        }
        return 0;
    }
    if flags & CLONE_PARENT_SETTID != 0
        && flags & CLONE_PIDFD == 0
        && state.memory.write(parent_tid, &pid.to_le_bytes()).is_err()
    {
        return EFAULT;
    }
    if flags & CLONE_PIDFD != 0 {
        // SAFETY: plain values.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd >= 0 {
            // SAFETY: plain value.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        if state.memory.write(parent_tid, &fd.to_le_bytes()).is_err() {
            return EFAULT;
        }
    }
    if let Some([r, w]) = vfork_done {
        // SAFETY: our own descriptors; the buffer is ours.
        unsafe {
            libc::close(w);
            let mut byte = 0u8;
            while libc::read(r, (&raw mut byte).cast(), 1) < 0 && last_errno() == libc::EINTR {}
            libc::close(r);
        }
    }
    i64::from(pid)
}

/// `clone3`: the same as `clone`, its arguments in a `struct clone_args`.
pub(super) fn sys_clone3(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
    // set_tid, set_tid_size, cgroup: 8 bytes each (the first 64 bytes are
    // CLONE_ARGS_SIZE_VER0).
    let size = a[1];
    if !(64..=4096).contains(&size) {
        return err(libc::EINVAL);
    }
    let mut raw = vec![0u8; size as usize];
    if let Err(f) = caller.memory.read(a[0], &mut raw) {
        return f.into();
    }
    let field = |i: usize| {
        raw.get(i * 8..i * 8 + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let (flags, pidfd, child_tid, parent_tid, exit_signal) =
        (field(0), field(1), field(2), field(3), field(4));
    let (stack, stack_size, tls, set_tid_size, cgroup) =
        (field(5), field(6), field(7), field(9), field(10));
    // Bytes past the ones this kernel knows must be zero, as Linux checks.
    if raw.iter().skip(88).any(|&b| b != 0) {
        return err(libc::E2BIG);
    }
    if exit_signal > 64 || flags & 0xff != 0 || flags >> 32 & !1 != 0 || cgroup != 0 {
        return err(libc::EINVAL);
    }
    if set_tid_size != 0 {
        // Choosing the child's pid needs CAP_SYS_ADMIN over the namespace.
        return err(libc::EPERM);
    }
    if (stack == 0) != (stack_size == 0) {
        return err(libc::EINVAL);
    }
    // The legacy layout; the pidfd goes where clone puts it (parent_tid), so
    // CLONE_PIDFD and CLONE_PARENT_SETTID may not be used together here.
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return err(libc::EINVAL);
    }
    let parent_slot = if flags & CLONE_PIDFD != 0 {
        pidfd
    } else {
        parent_tid
    };
    let top = if stack == 0 {
        0
    } else {
        stack.wrapping_add(stack_size)
    };
    clone(
        caller.cpu,
        caller.state,
        [flags | exit_signal, top, parent_slot, tls, child_tid, 0],
    )
}

fn execve(state: &mut ProcessState, a: [u64; 6]) -> i64 {
    match state.memory.read_cstr(a[0], 4096) {
        Ok(path) => exec(state, path, a[1], a[2]),
        Err(f) => f.into(),
    }
}

/// Replaces the process with the program at `raw_path` (a guest path), its
/// argument and environment lists at the guest addresses `argv` and `envp`.
fn exec(state: &mut ProcessState, raw_path: Vec<u8>, argv: u64, envp: u64) -> i64 {
    let memory = state.memory.clone();
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
    let (argv, envp) = match (read_list(argv), read_list(envp)) {
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
    let c = |v: Vec<u8>| CString::new(v).unwrap_or_default();
    let env: Vec<CString> = envp.into_iter().map(c).collect();
    let ours = crate::arch_of(&host_path).is_ok_and(|arch| arch.is_some());
    let (program, args): (CString, Vec<CString>) = if ours {
        // A program of an architecture Turing runs comes back to it.
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
        if state.options.jit_threshold.is_none() {
            // The new program runs on the same engine.
            args.push(c(b"--accel".to_vec()));
            args.push(c(b"interp".to_vec()));
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

/// `exit`: ends the calling thread (the process, for its first thread).
pub(super) fn sys_exit(_: &mut Caller<'_>, a: [u64; 6]) -> Result<i64, ProcessEnd> {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    Err(ProcessEnd::Exited(a[0] as i32))
}

/// `exit_group`: ends the process from any of its threads.
pub(super) fn sys_exit_group(caller: &mut Caller<'_>, a: [u64; 6]) -> Result<i64, ProcessEnd> {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if !caller.state.main_thread {
        std::process::exit(a[0] as i32 & 0xff);
    }
    Err(ProcessEnd::Exited(a[0] as i32))
}

/// `kill`, `tkill` and `tgkill`.
pub(super) fn sys_kill(caller: &mut Caller<'_>, a: [u64; 6]) -> Result<i64, ProcessEnd> {
    send_signal(caller.cpu, caller.state, caller.number, a)
}

/// The process's execution domain (`personality`); Linux's default, PER_LINUX.
static PERSONALITY: AtomicU64 = AtomicU64::new(0);

/// `personality(persona)`: 0xffffffff only asks. The flags are kept and
/// reported; none of them changes how the emulator runs the program.
pub(super) fn sys_personality(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let old = PERSONALITY.load(Ordering::Relaxed);
    if a[0] as u32 != u32::MAX {
        PERSONALITY.store(u64::from(a[0] as u32), Ordering::Relaxed);
    }
    old as i64
}

/// `set_robust_list(head, len)`: recorded for `get_robust_list`. The list is
/// not walked when a thread dies (robust mutexes of dead threads stay locked).
pub(super) fn sys_set_robust_list(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if a[1] != 24 {
        return err(libc::EINVAL);
    }
    caller.state.robust_list = a[0];
    0
}

/// `get_robust_list(pid, head_ptr, len_ptr)`, for this thread.
pub(super) fn sys_get_robust_list(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain getter.
    let me = unsafe { libc::gettid() };
    if a[0] != 0 && a[0] as i32 != me {
        return err(libc::EPERM);
    }
    let memory = &caller.memory;
    match (
        memory.write(a[1], &caller.state.robust_list.to_le_bytes()),
        memory.write(a[2], &24u64.to_le_bytes()),
    ) {
        (Ok(()), Ok(())) => 0,
        _ => EFAULT,
    }
}

/// Calls whose arguments are integers only and mean the same on the host:
/// credentials (setreuid and friends), scheduler queries, pidfds, membarrier,
/// unshare, setns.
pub(super) fn sys_plain_process(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let host_number = match caller.number {
        nr::SETREUID => libc::SYS_setreuid,
        nr::SETREGID => libc::SYS_setregid,
        nr::SETRESUID => libc::SYS_setresuid,
        nr::SETRESGID => libc::SYS_setresgid,
        nr::SETFSUID => libc::SYS_setfsuid,
        nr::SETFSGID => libc::SYS_setfsgid,
        nr::SCHED_GETSCHEDULER => libc::SYS_sched_getscheduler,
        nr::SCHED_GET_PRIORITY_MAX => libc::SYS_sched_get_priority_max,
        nr::SCHED_GET_PRIORITY_MIN => libc::SYS_sched_get_priority_min,
        nr::PIDFD_OPEN => libc::SYS_pidfd_open,
        nr::PIDFD_GETFD => libc::SYS_pidfd_getfd,
        nr::PROCESS_MRELEASE => libc::SYS_process_mrelease,
        nr::MEMBARRIER => libc::SYS_membarrier,
        nr::UNSHARE => libc::SYS_unshare,
        nr::SETNS => libc::SYS_setns,
        _ => return err(libc::ENOSYS),
    };
    // SAFETY: every call above takes integers only (no pointers).
    host(unsafe { libc::syscall(host_number, a[0], a[1], a[2], a[3], a[4], a[5]) })
}

/// `setgroups(size, list)`.
pub(super) fn sys_setgroups(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if a[0] > 65536 {
        return err(libc::EINVAL);
    }
    with_buffer(&caller.memory, a[1], a[0] as usize * 4, Way::In, |list| {
        // SAFETY: `size` gid_t values that we own (or null).
        unsafe { libc::syscall(libc::SYS_setgroups, a[0] as i32, list) }
    })
}

/// `capget(header, data)` and `capset(header, data)`: the host process's
/// capabilities, which are the guest's. The header is 8 bytes; the data is 12
/// bytes for version 1 and 24 for versions 2 and 3.
pub(super) fn sys_capget(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let mut header = [0u8; 8];
    if let Err(f) = memory.read(a[0], &mut header) {
        return f.into();
    }
    let version = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let data_len = if version == 0x1998_0330 { 12 } else { 24 };
    let get = caller.number == nr::CAPGET;
    let way = if get { Way::Out } else { Way::In };
    let r = with_buffer(memory, a[1], data_len, way, |data| {
        let call = if get {
            libc::SYS_capget
        } else {
            libc::SYS_capset
        };
        // SAFETY: an 8-byte header and a data buffer of the version's size.
        unsafe { libc::syscall(call, header.as_mut_ptr(), data) }
    });
    // An unknown version is answered with the kernel's preferred one.
    if memory.write(a[0], &header).is_err() {
        return EFAULT;
    }
    r
}

/// `waitid(idtype, id, infop, options, rusage)`: siginfo (128 bytes) and
/// rusage (144 bytes) are the same on both.
pub(super) fn sys_waitid(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let mut info = [0u8; 128];
    let mut usage = [0u8; 144];
    // SAFETY: buffers we own, of the sizes the kernel writes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            a[0] as i32,
            a[1] as i32,
            info.as_mut_ptr(),
            a[3] as i32,
            usage.as_mut_ptr(),
        )
    };
    if r < 0 {
        return err(last_errno());
    }
    if a[2] != 0
        && let Err(f) = memory.write(a[2], &info)
    {
        return f.into();
    }
    if a[4] != 0
        && let Err(f) = memory.write(a[4], &usage)
    {
        return f.into();
    }
    r
}

/// `sched_setparam`, `sched_getparam`, `sched_setscheduler`, `sched_setaffinity`,
/// `sched_rr_get_interval`, `sched_setattr` and `sched_getattr`: each with one
/// buffer, the same on both.
pub(super) fn sys_sched(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let pid = a[0] as i32;
    match caller.number {
        nr::SCHED_SETPARAM => with_buffer(memory, a[1], 4, Way::In, |p| {
            // SAFETY: the buffer is ours and as long as the call reads or writes.
            unsafe { libc::syscall(libc::SYS_sched_setparam, pid, p) }
        }),
        nr::SCHED_GETPARAM => with_buffer(memory, a[1], 4, Way::Out, |p| {
            // SAFETY: the buffer is ours and as long as the call reads or writes.
            unsafe { libc::syscall(libc::SYS_sched_getparam, pid, p) }
        }),
        nr::SCHED_SETSCHEDULER => with_buffer(memory, a[2], 4, Way::In, |p| {
            // SAFETY: the buffer is ours and as long as the call reads or writes.
            unsafe { libc::syscall(libc::SYS_sched_setscheduler, pid, a[1] as i32, p) }
        }),
        nr::SCHED_SETAFFINITY => {
            let len = (a[1] as usize).min(4096);
            with_buffer(memory, a[2], len, Way::In, |mask| {
                // SAFETY: the buffer is ours and as long as the call reads or writes.
                unsafe { libc::syscall(libc::SYS_sched_setaffinity, pid, len, mask) }
            })
        }
        nr::SCHED_RR_GET_INTERVAL => with_buffer(memory, a[1], 16, Way::Out, |t| {
            // SAFETY: the buffer is ours and as long as the call reads or writes.
            unsafe { libc::syscall(libc::SYS_sched_rr_get_interval, pid, t) }
        }),
        nr::SCHED_SETATTR => {
            // The structure starts with its own size (0 meaning the first 48).
            let size = match memory.read(a[1], &mut [0u8; 4]) {
                Err(f) => return f.into(),
                Ok(()) => {
                    let mut raw = [0u8; 4];
                    let _ = memory.read(a[1], &mut raw);
                    (u32::from_le_bytes(raw) as usize).clamp(48, 4096)
                }
            };
            with_buffer(memory, a[1], size, Way::In, |attr| {
                // SAFETY: the buffer is ours and as long as the call reads or writes.
                unsafe { libc::syscall(libc::SYS_sched_setattr, pid, attr, a[2] as u32) }
            })
        }
        _ => {
            let size = (a[2] as usize).min(4096);
            with_buffer(memory, a[1], size, Way::Out, |attr| {
                // SAFETY: the buffer is ours and as long as the call reads or writes.
                unsafe { libc::syscall(libc::SYS_sched_getattr, pid, attr, size, a[3] as u32) }
            })
        }
    }
}

/// `getcpu(cpu, node, cache)`.
pub(super) fn sys_getcpu(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let (mut cpu, mut node) = (0u32, 0u32);
    // SAFETY: two u32s that we own; the cache argument is unused by Linux.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &raw mut cpu,
            &raw mut node,
            std::ptr::null::<u8>(),
        )
    };
    if r < 0 {
        return err(last_errno());
    }
    for (at, value) in [(a[0], cpu), (a[1], node)] {
        if at != 0
            && let Err(f) = caller.memory.write(at, &value.to_le_bytes())
        {
            return f.into();
        }
    }
    0
}

/// `pidfd_send_signal(pidfd, sig, info, flags)`.
pub(super) fn sys_pidfd_send_signal(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    with_buffer(&caller.memory, a[2], 128, Way::In, |info| {
        // SAFETY: a 128-byte siginfo that we own (or null).
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                a[0] as i32,
                a[1] as i32,
                info,
                a[3] as u32,
            )
        }
    })
}

/// `rt_sigqueueinfo(tgid, sig, info)` and `rt_tgsigqueueinfo(tgid, tid, sig, info)`.
pub(super) fn sys_rt_sigqueueinfo(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let thread = caller.number == nr::RT_TGSIGQUEUEINFO;
    let at = if thread { a[3] } else { a[2] };
    if at == 0 {
        return EFAULT;
    }
    with_buffer(&caller.memory, at, 128, Way::In, |info| {
        // SAFETY: a 128-byte siginfo that we own.
        unsafe {
            if thread {
                libc::syscall(libc::SYS_rt_tgsigqueueinfo, a[0], a[1], a[2], info)
            } else {
                libc::syscall(libc::SYS_rt_sigqueueinfo, a[0], a[1], info)
            }
        }
    })
}

/// `rt_sigpending(set, sigsetsize)`: signals waiting in the host kernel (blocked
/// there, as the guest blocked them) and those taken but not yet handled.
pub(super) fn sys_rt_sigpending(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if a[1] != 8 {
        return err(libc::EINVAL);
    }
    let mut host_set = 0u64;
    // SAFETY: an 8-byte kernel sigset that we own.
    if unsafe { libc::syscall(libc::SYS_rt_sigpending, &raw mut host_set, 8usize) } < 0 {
        return err(last_errno());
    }
    let pending = host_set | crate::signal::recorded();
    match caller.memory.write(a[0], &pending.to_le_bytes()) {
        Ok(()) => 0,
        Err(f) => f.into(),
    }
}

/// `prctl(option, ...)`: the options programs use on themselves; others fail
/// with EINVAL, as Linux answers options it does not know.
pub(super) fn sys_prctl(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    const PR_SET_PDEATHSIG: u64 = 1;
    const PR_GET_PDEATHSIG: u64 = 2;
    const PR_GET_DUMPABLE: u64 = 3;
    const PR_SET_DUMPABLE: u64 = 4;
    const PR_GET_KEEPCAPS: u64 = 7;
    const PR_SET_KEEPCAPS: u64 = 8;
    const PR_SET_NAME: u64 = 15;
    const PR_GET_NAME: u64 = 16;
    const PR_GET_SECCOMP: u64 = 21;
    const PR_SET_SECCOMP: u64 = 22;
    const PR_CAPBSET_READ: u64 = 23;
    const PR_GET_TIMERSLACK: u64 = 30;
    const PR_SET_TIMERSLACK: u64 = 29;
    const PR_SET_CHILD_SUBREAPER: u64 = 36;
    const PR_GET_CHILD_SUBREAPER: u64 = 37;
    const PR_SET_NO_NEW_PRIVS: u64 = 38;
    const PR_GET_NO_NEW_PRIVS: u64 = 39;
    const PR_GET_THP_DISABLE: u64 = 42;
    const PR_SET_THP_DISABLE: u64 = 41;
    const PR_CAP_AMBIENT: u64 = 47;
    const PR_SET_VMA: u64 = 0x53564d41;
    let memory = &caller.memory;
    match a[0] {
        PR_SET_NAME if a[1] == 0 => EFAULT,
        PR_SET_NAME => with_buffer(memory, a[1], 16, Way::In, |name| {
            // SAFETY: the buffer is ours, 16 bytes; the name may be shorter and
            // is cut at the 16th byte, where the host stops too.
            unsafe {
                *name.add(15) = 0;
                libc::syscall(libc::SYS_prctl, PR_SET_NAME, name)
            }
        }),
        PR_GET_NAME => with_buffer(memory, a[1], 16, Way::Out, |name| {
            // SAFETY: the buffer is ours and as long as the call reads or writes.
            unsafe { libc::syscall(libc::SYS_prctl, PR_GET_NAME, name) }
        }),
        PR_GET_PDEATHSIG | PR_GET_CHILD_SUBREAPER => {
            with_buffer(memory, a[1], 4, Way::Out, |value| {
                // SAFETY: the buffer is ours and as long as the call reads or writes.
                unsafe { libc::syscall(libc::SYS_prctl, a[0], value) }
            })
        }
        PR_SET_PDEATHSIG
        | PR_GET_DUMPABLE
        | PR_SET_DUMPABLE
        | PR_GET_KEEPCAPS
        | PR_SET_KEEPCAPS
        | PR_CAPBSET_READ
        | PR_GET_TIMERSLACK
        | PR_SET_TIMERSLACK
        | PR_SET_CHILD_SUBREAPER
        | PR_SET_NO_NEW_PRIVS
        | PR_GET_NO_NEW_PRIVS
        | PR_GET_THP_DISABLE
        | PR_SET_THP_DISABLE
        | PR_CAP_AMBIENT => {
            // SAFETY: these options take integer arguments only.
            host(unsafe { libc::syscall(libc::SYS_prctl, a[0], a[1], a[2], a[3], a[4]) })
        }
        // No seccomp: a filter meant for riscv64 system calls would be applied
        // to the emulator's own.
        PR_GET_SECCOMP => 0,
        PR_SET_SECCOMP | PR_SET_VMA => err(libc::EINVAL),
        _ => err(libc::EINVAL),
    }
}

/// `riscv_hwprobe(pairs, count, cpusetsize, cpus, flags)`: what the emulated
/// hart offers (RV64GC), key by key; unknown keys get key -1, as Linux does.
pub(super) fn sys_riscv_hwprobe(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    const BASE_BEHAVIOR_IMA: u64 = 1;
    const IMA_FD: u64 = 1 << 0;
    const IMA_C: u64 = 1 << 1;
    if a[4] != 0 {
        return err(libc::EINVAL);
    }
    if a[1] > 4096 {
        return err(libc::EINVAL);
    }
    let memory = &caller.memory;
    for i in 0..a[1] {
        let at = a[0].wrapping_add(i * 16);
        let key = match memory.read_u64(at) {
            Ok(k) => k as i64,
            Err(f) => return f.into(),
        };
        let value = match key {
            // mvendorid, marchid, mimpid: none (an emulator).
            0..=2 => Some(0),
            3 => Some(BASE_BEHAVIOR_IMA),
            4 => Some(IMA_FD | IMA_C),
            // Misaligned access speed: unknown.
            5 => Some(0),
            _ => None,
        };
        let (key, value) = value.map_or((-1i64, 0u64), |v| (key, v));
        if memory.write(at, &key.to_le_bytes()).is_err()
            || memory.write(at + 8, &value.to_le_bytes()).is_err()
        {
            return EFAULT;
        }
    }
    0
}

/// `execveat(dirfd, path, argv, envp, flags)`: the path is resolved against
/// the directory descriptor (or is the descriptor itself with AT_EMPTY_PATH)
/// through the host's /proc/self/fd, then it is `execve`.
pub(super) fn sys_execveat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    const AT_EMPTY_PATH: u64 = 0x1000;
    let raw = match caller.memory.read_cstr(a[1], 4096) {
        Ok(r) => r,
        Err(f) => return f.into(),
    };
    let dir = a[0] as i32;
    let path = if raw.is_empty() {
        if a[4] & AT_EMPTY_PATH == 0 {
            return err(libc::ENOENT);
        }
        format!("/proc/self/fd/{dir}").into_bytes()
    } else if raw.starts_with(b"/") || dir == libc::AT_FDCWD {
        raw
    } else {
        let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
        p.extend_from_slice(&raw);
        p
    };
    exec(caller.state, path, a[2], a[3])
}
