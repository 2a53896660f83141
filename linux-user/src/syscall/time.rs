//! System calls: time.

use super::*;

/// `clock_gettime, clock_getres`
pub(super) fn sys_clock_gettime(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    let number = caller.number;
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

/// `gettimeofday`
pub(super) fn sys_gettimeofday(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
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

/// `nanosleep, clock_nanosleep`
pub(super) fn sys_nanosleep(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    let number = caller.number;
    let at = if number == nr::NANOSLEEP { a[0] } else { a[2] };
    let ts = match read_timeout(&memory, at) {
        Ok(Some(ts)) => ts,
        // A null request is a bad address here, not "forever".
        Ok(None) => return EFAULT,
        Err(e) => return e,
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

/// `timerfd_create`: a host timerfd (its 8-byte expiry count reads the same).
pub(super) fn sys_timerfd_create(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::timerfd_create(a[0] as i32, a[1] as i32)
    }))
}

/// `setitimer(which, new, old)`.
pub(super) fn sys_setitimer(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let new = match optional_in(memory, a[1], 32) {
        Ok(new) => new,
        Err(e) => return e,
    };
    let new_ptr = optional_ptr(&new);
    with_buffer(memory, a[2], 32, Way::Out, |old| {
        // SAFETY: 32-byte itimervals that we own (or null).
        unsafe { libc::syscall(libc::SYS_setitimer, a[0] as i32, new_ptr, old) }
    })
}

/// `timer_create(clock, sevp, timerid)`: a host POSIX timer. `struct sigevent`
/// is the same on both, and thread ids are host ones, so SIGEV_THREAD_ID works.
pub(super) fn sys_timer_create(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let event = match optional_in(memory, a[1], 64) {
        Ok(event) => event,
        Err(e) => return e,
    };
    let event_ptr = optional_ptr(&event);
    with_buffer(memory, a[2], 4, Way::Out, |id| {
        // SAFETY: a 64-byte sigevent (or null) and a 4-byte timer id that we own.
        unsafe { libc::syscall(libc::SYS_timer_create, a[0] as i32, event_ptr, id) }
    })
}

/// `timer_getoverrun` and `timer_delete`: a timer id only.
pub(super) fn sys_timer_delete(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let host_number = if caller.number == nr::TIMER_DELETE {
        libc::SYS_timer_delete
    } else {
        libc::SYS_timer_getoverrun
    };
    // SAFETY: an integer argument.
    host(unsafe { libc::syscall(host_number, a[0] as i32) })
}

/// `clock_settime`, `settimeofday`: set the host's clock, which the host
/// allows only with CAP_SYS_TIME, as Linux would for the guest.
pub(super) fn sys_clock_settime(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let (host_number, first, at) = if caller.number == nr::CLOCK_SETTIME {
        (libc::SYS_clock_settime, a[0], a[1])
    } else {
        (libc::SYS_settimeofday, 0, a[0])
    };
    with_buffer(&caller.memory, at, 16, Way::In, |time| {
        // SAFETY: a 16-byte timespec or timeval that we own; settimeofday's
        // obsolete timezone argument is left null.
        unsafe {
            if host_number == libc::SYS_settimeofday {
                libc::syscall(host_number, time, std::ptr::null::<u8>())
            } else {
                libc::syscall(host_number, first as i32, time)
            }
        }
    })
}

/// `adjtimex(buf)` and `clock_adjtime(clock, buf)`: `struct timex` (208 bytes)
/// is the same; reading it needs no privilege, changing it does.
pub(super) fn sys_adjtimex(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let adjtime = caller.number == nr::CLOCK_ADJTIME;
    let at = if adjtime { a[1] } else { a[0] };
    if at == 0 {
        return EFAULT;
    }
    with_buffer(&caller.memory, at, 208, Way::InOut, |buf| {
        // SAFETY: a 208-byte struct timex that we own.
        unsafe {
            if adjtime {
                libc::syscall(libc::SYS_clock_adjtime, a[0] as i32, buf)
            } else {
                libc::syscall(libc::SYS_adjtimex, buf)
            }
        }
    })
}

/// `timerfd_settime(fd, flags, new, old)` and `timer_settime(id, flags, new,
/// old)`: `struct itimerspec` (32 bytes) is the same on both.
pub(super) fn sys_settime(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let host_number = if caller.number == nr::TIMERFD_SETTIME {
        libc::SYS_timerfd_settime
    } else {
        libc::SYS_timer_settime
    };
    let memory = &caller.memory;
    let mut new = [0u8; 32];
    if let Err(f) = memory.read(a[2], &mut new) {
        return f.into();
    }
    with_buffer(memory, a[3], 32, Way::Out, |old| {
        // SAFETY: 32-byte itimerspecs that we own (or null).
        unsafe { libc::syscall(host_number, a[0] as i32, a[1] as i32, new.as_ptr(), old) }
    })
}

/// `timerfd_gettime(fd, curr)`, `timer_gettime(id, curr)` and `getitimer(which,
/// value)`: 32 bytes out (an itimerspec or an itimerval, the same on both). The
/// interval timers are the host process's; their signals (SIGALRM, SIGVTALRM,
/// SIGPROF) reach the guest's handlers as any host signal does.
pub(super) fn sys_gettime(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let host_number = match caller.number {
        nr::TIMERFD_GETTIME => libc::SYS_timerfd_gettime,
        nr::TIMER_GETTIME => libc::SYS_timer_gettime,
        _ => libc::SYS_getitimer,
    };
    if a[1] == 0 {
        return EFAULT;
    }
    with_buffer(&caller.memory, a[1], 32, Way::Out, |value| {
        // SAFETY: a 32-byte itimerspec or itimerval that we own.
        unsafe { libc::syscall(host_number, a[0] as i32, value) }
    })
}
