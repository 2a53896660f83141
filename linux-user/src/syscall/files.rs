//! System calls: files.

use super::*;

/// `read, pread64`
pub(super) fn sys_read(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let number = caller.number;
    read_into(&caller.memory, a[1], a[2], |buf, len| {
        // SAFETY: `buf` is ours and `len` bytes long (or null with 0).
        (unsafe {
            if number == nr::READ {
                libc::read(a[0] as i32, buf.cast(), len)
            } else {
                libc::pread(a[0] as i32, buf.cast(), len, a[3] as i64)
            }
        }) as i64
    })
}

/// `write, pwrite64`
pub(super) fn sys_write(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    let number = caller.number;
    let len = (a[2] as usize).min(CHUNK);
    let mut buf = vec![0u8; len];
    if let Err(f) = memory.read(a[1], &mut buf) {
        return f.into();
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

/// `readv, writev`
pub(super) fn sys_readv(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let read = caller.number == nr::READV;
    vectored(&caller.memory, a[0] as i32, a[1], a[2], read, -1, 0)
}

/// `openat`
pub(super) fn sys_openat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match path_arg(state, a[1]) {
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
    }
}

/// `close`
pub(super) fn sys_close(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: closing a descriptor touches no memory.
    host(i64::from(unsafe { libc::close(a[0] as i32) }))
}

/// `lseek`
pub(super) fn sys_lseek(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(unsafe { libc::lseek(a[0] as i32, a[1] as i64, a[2] as i32) })
}

/// `dup`
pub(super) fn sys_dup(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::dup(a[0] as i32) }))
}

/// `dup3`
pub(super) fn sys_dup3(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::dup3(a[0] as i32, a[1] as i32, a[2] as i32)
    }))
}

/// `fcntl`
pub(super) fn sys_fcntl(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    fcntl(&memory, a)
}

/// `ioctl`
pub(super) fn sys_ioctl(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    ioctl(&memory, a)
}

/// `pipe2`
pub(super) fn sys_pipe2(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
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

/// `getdents64`
pub(super) fn sys_getdents64(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    read_into(&caller.memory, a[1], a[2], |buf, len| {
        // SAFETY: `buf` is ours and `len` bytes long (or null with 0);
        // linux_dirent64 has the same layout on both.
        unsafe { libc::syscall(libc::SYS_getdents64, a[0] as i32, buf, len) }
    })
}

/// `newfstatat, fstat`
pub(super) fn sys_newfstatat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    let number = caller.number;
    let mut st: libc::stat = unsafe_zeroed_stat();
    let r = if number == nr::FSTAT {
        // SAFETY: st is a valid stat buffer.
        unsafe { libc::fstat(a[0] as i32, &mut st) }
    } else {
        let raw = match memory.read_cstr(a[1], 4096) {
            Ok(raw) => raw,
            Err(f) => return f.into(),
        };
        let path = if raw.is_empty() {
            CString::default()
        } else {
            match path_arg(state, a[1]) {
                Ok(p) => p,
                Err(e) => return e,
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

/// `statfs`
pub(super) fn sys_statfs(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    match path_arg(state, a[0]) {
        Ok(path) => with_buffer(&memory, a[1], 120, Way::Out, |buf| {
            // SAFETY: struct statfs is 120 bytes on both; path is a C string.
            unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), buf) }
        }),
        Err(e) => e,
    }
}

/// `fstatfs`
pub(super) fn sys_fstatfs(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    with_buffer(&memory, a[1], 120, Way::Out, |buf| {
        // SAFETY: struct statfs is 120 bytes on both.
        unsafe { libc::syscall(libc::SYS_fstatfs, a[0] as i32, buf) }
    })
}

/// `statx`
pub(super) fn sys_statx(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    match path_arg(state, a[1]) {
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
    }
}

/// `readlinkat`
pub(super) fn sys_readlinkat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    let raw = match memory.read_cstr(a[1], 4096) {
        Ok(raw) => raw,
        Err(f) => return f.into(),
    };
    let target = if raw == b"/proc/self/exe" {
        Ok(state.exe.clone().into_os_string().into_encoded_bytes())
    } else {
        match path_arg(state, a[1]) {
            Ok(path) => {
                let mut buf = vec![0u8; 4096];
                // SAFETY: buf is ours, 4096 bytes.
                let n = unsafe {
                    libc::readlinkat(dirfd(a[0]), path.as_ptr(), buf.as_mut_ptr().cast(), 4096)
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

/// `faccessat, faccessat2`
pub(super) fn sys_faccessat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let number = caller.number;
    match path_arg(state, a[1]) {
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
    }
}

/// `mkdirat`
pub(super) fn sys_mkdirat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match path_arg(state, a[1]) {
        // SAFETY: C string path, plain values.
        Ok(path) => host(i64::from(unsafe {
            libc::mkdirat(dirfd(a[0]), path.as_ptr(), a[2] as libc::mode_t)
        })),
        Err(e) => e,
    }
}

/// `unlinkat`
pub(super) fn sys_unlinkat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match path_arg(state, a[1]) {
        // SAFETY: C string path, plain values.
        Ok(path) => host(i64::from(unsafe {
            libc::unlinkat(dirfd(a[0]), path.as_ptr(), a[2] as i32)
        })),
        Err(e) => e,
    }
}

/// `symlinkat`
pub(super) fn sys_symlinkat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    let target = match memory.read_cstr(a[0], 4096) {
        Ok(t) => CString::new(t).unwrap_or_default(),
        Err(f) => return f.into(),
    };
    match path_arg(state, a[2]) {
        // SAFETY: two C strings and a descriptor.
        Ok(path) => host(i64::from(unsafe {
            libc::symlinkat(target.as_ptr(), dirfd(a[1]), path.as_ptr())
        })),
        Err(e) => e,
    }
}

/// `linkat`
pub(super) fn sys_linkat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match (path_arg(state, a[1]), path_arg(state, a[3])) {
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
    }
}

/// `renameat2`
pub(super) fn sys_renameat2(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match (path_arg(state, a[1]), path_arg(state, a[3])) {
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
    }
}

/// `fchmodat`
pub(super) fn sys_fchmodat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match path_arg(state, a[1]) {
        // SAFETY: C string path, plain values.
        Ok(path) => host(i64::from(unsafe {
            libc::fchmodat(dirfd(a[0]), path.as_ptr(), a[2] as libc::mode_t, 0)
        })),
        Err(e) => e,
    }
}

/// `fchownat`
pub(super) fn sys_fchownat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match path_arg(state, a[1]) {
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
    }
}

/// `fchmod`
pub(super) fn sys_fchmod(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::fchmod(a[0] as i32, a[1] as libc::mode_t)
    }))
}

/// `fchown`
pub(super) fn sys_fchown(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::fchown(a[0] as i32, a[1] as u32, a[2] as u32)
    }))
}

/// `ftruncate`
pub(super) fn sys_ftruncate(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::ftruncate(a[0] as i32, a[1] as i64)
    }))
}

/// `sync`
pub(super) fn sys_sync(_: &mut Caller<'_>, _: [u64; 6]) -> i64 {
    // SAFETY: no arguments.
    unsafe { libc::sync() };
    0
}

/// `fsync`
pub(super) fn sys_fsync(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::fsync(a[0] as i32) }))
}

/// `fdatasync`
pub(super) fn sys_fdatasync(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::fdatasync(a[0] as i32) }))
}

/// `utimensat`
pub(super) fn sys_utimensat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    let times = match optional_in(&memory, a[2], 32) {
        Ok(times) => times,
        Err(e) => return e,
    };
    let times_ptr = optional_ptr(&times);
    let path = if a[1] == 0 {
        None
    } else {
        match path_arg(state, a[1]) {
            Ok(p) => Some(p),
            Err(e) => return e,
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

/// `getcwd`
pub(super) fn sys_getcwd(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    match std::env::current_dir() {
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
    }
}

/// `chdir`
pub(super) fn sys_chdir(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let state = &mut *caller.state;
    match path_arg(state, a[0]) {
        // SAFETY: C string path.
        Ok(path) => host(i64::from(unsafe { libc::chdir(path.as_ptr()) })),
        Err(e) => e,
    }
}

/// `fchdir`
pub(super) fn sys_fchdir(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::fchdir(a[0] as i32) }))
}

/// `umask`
pub(super) fn sys_umask(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    i64::from(unsafe { libc::umask(a[0] as libc::mode_t) })
}

/// `sendfile`
pub(super) fn sys_sendfile(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    sendfile(&memory, a)
}

/// `ppoll`
pub(super) fn sys_ppoll(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    ppoll(&memory, a)
}

/// `pselect6`
pub(super) fn sys_pselect6(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = caller.memory.clone();
    pselect(&memory, a)
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
    // The generic requests, then the terminal ones; the ioctl encoding and these
    // structures are the same on both. The size is that of the buffer the
    // argument points to, 0 for an integer argument.
    let size = match request {
        0x5421 | 0x5452 => 4,            // FIONBIO, FIOASYNC: int *
        0x5450 | 0x5451 => 0,            // FIONCLEX, FIOCLEX
        0x541b | 0x5411 => 4,            // FIONREAD, TIOCOUTQ
        0x5401 => 36,                    // TCGETS
        0x5402..=0x5404 => 36,           // TCSETS, TCSETSW, TCSETSF
        0x802c_542a => 44,               // TCGETS2
        0x402c_542b..=0x402c_542d => 44, // TCSETS2, TCSETSW2, TCSETSF2
        0x5413 | 0x5414 => 8,            // TIOCGWINSZ, TIOCSWINSZ
        0x540f | 0x5410 => 4,            // TIOCGPGRP, TIOCSPGRP
        0x5429 => 4,                     // TIOCGSID
        0x8004_5430 | 0x4004_5431 => 4,  // TIOCGPTN, TIOCSPTLCK
        0x5441 => 0,                     // TIOCGPTPEER: flags
        0x540e | 0x5422 | 0x5409 => 0,   // TIOCSCTTY, TIOCNOTTY, TCSBRK: integer
        0x540b | 0x540a => 0,            // TCFLSH, TCXONC: integer
        0x8008_6601 | 0x4008_6602 => 4,  // FS_IOC_GETFLAGS, FS_IOC_SETFLAGS (an int)
        0x4004_9409 => 0,                // FICLONE: a descriptor
        0x0000_0002 => 4,                // FIGETBSZ
        0x8008_1272 => 8,                // BLKGETSIZE64
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

/// `setxattr`, `lsetxattr` and `fsetxattr`: the host file's extended attributes.
pub(super) fn sys_setxattr(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let name = match string_arg(&caller.memory, a[1]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let len = (a[3] as usize).min(65536);
    let mut value = vec![0u8; len];
    if let Err(f) = caller.memory.read(a[2], &mut value) {
        return f.into();
    }
    let (v, flags) = (value.as_ptr().cast::<libc::c_void>(), a[4] as i32);
    // SAFETY: C strings and a buffer of `len` bytes that we own.
    host(i64::from(unsafe {
        match caller.number {
            nr::FSETXATTR => libc::fsetxattr(a[0] as i32, name.as_ptr(), v, len, flags),
            number => match path_arg(caller.state, a[0]) {
                Ok(path) if number == nr::SETXATTR => {
                    libc::setxattr(path.as_ptr(), name.as_ptr(), v, len, flags)
                }
                Ok(path) => libc::lsetxattr(path.as_ptr(), name.as_ptr(), v, len, flags),
                Err(e) => return e,
            },
        }
    }))
}

/// `getxattr`, `lgetxattr` and `fgetxattr`.
pub(super) fn sys_getxattr(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let name = match string_arg(&caller.memory, a[1]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let path = match caller.number {
        nr::FGETXATTR => None,
        _ => match path_arg(caller.state, a[0]) {
            Ok(p) => Some(p),
            Err(e) => return e,
        },
    };
    let number = caller.number;
    read_into(&caller.memory, a[2], a[3], |buf, len| {
        let buf = buf.cast::<libc::c_void>();
        // SAFETY: C strings, and a buffer of `len` bytes (or null with 0).
        (unsafe {
            match (&path, number) {
                (None, _) => libc::fgetxattr(a[0] as i32, name.as_ptr(), buf, len),
                (Some(p), nr::GETXATTR) => libc::getxattr(p.as_ptr(), name.as_ptr(), buf, len),
                (Some(p), _) => libc::lgetxattr(p.as_ptr(), name.as_ptr(), buf, len),
            }
        }) as i64
    })
}

/// `listxattr`, `llistxattr` and `flistxattr`.
pub(super) fn sys_listxattr(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let path = match caller.number {
        nr::FLISTXATTR => None,
        _ => match path_arg(caller.state, a[0]) {
            Ok(p) => Some(p),
            Err(e) => return e,
        },
    };
    let number = caller.number;
    read_into(&caller.memory, a[1], a[2], |buf, len| {
        let buf = buf.cast::<libc::c_char>();
        // SAFETY: a C string, and a buffer of `len` bytes (or null with 0).
        (unsafe {
            match (&path, number) {
                (None, _) => libc::flistxattr(a[0] as i32, buf, len),
                (Some(p), nr::LISTXATTR) => libc::listxattr(p.as_ptr(), buf, len),
                (Some(p), _) => libc::llistxattr(p.as_ptr(), buf, len),
            }
        }) as i64
    })
}

/// `removexattr`, `lremovexattr` and `fremovexattr`.
pub(super) fn sys_removexattr(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let name = match string_arg(&caller.memory, a[1]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    // SAFETY: C strings.
    host(i64::from(unsafe {
        match caller.number {
            nr::FREMOVEXATTR => libc::fremovexattr(a[0] as i32, name.as_ptr()),
            number => match path_arg(caller.state, a[0]) {
                Ok(path) if number == nr::REMOVEXATTR => {
                    libc::removexattr(path.as_ptr(), name.as_ptr())
                }
                Ok(path) => libc::lremovexattr(path.as_ptr(), name.as_ptr()),
                Err(e) => return e,
            },
        }
    }))
}

/// `eventfd2`: a host eventfd (its 8-byte counter reads the same on both).
pub(super) fn sys_eventfd2(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::eventfd(a[0] as u32, a[1] as i32)
    }))
}

/// `inotify_init1`: a host inotify descriptor (`struct inotify_event` is the same).
pub(super) fn sys_inotify_init1(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe { libc::inotify_init1(a[0] as i32) }))
}

/// `inotify_add_watch`.
pub(super) fn sys_inotify_add_watch(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    match path_arg(caller.state, a[1]) {
        // SAFETY: a C string and plain values.
        Ok(path) => host(i64::from(unsafe {
            libc::inotify_add_watch(a[0] as i32, path.as_ptr(), a[2] as u32)
        })),
        Err(e) => e,
    }
}

/// `inotify_rm_watch`.
pub(super) fn sys_inotify_rm_watch(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(i64::from(unsafe {
        libc::inotify_rm_watch(a[0] as i32, a[1] as i32)
    }))
}

/// Calls that take only integer arguments and mean the same on the host:
/// flock, fallocate, sync_file_range, readahead, syncfs, ioprio_get/set,
/// close_range, fadvise64.
pub(super) fn sys_plain_file(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let host_number = match caller.number {
        nr::FLOCK => libc::SYS_flock,
        nr::FALLOCATE => libc::SYS_fallocate,
        nr::SYNC_FILE_RANGE => libc::SYS_sync_file_range,
        nr::READAHEAD => libc::SYS_readahead,
        nr::SYNCFS => libc::SYS_syncfs,
        nr::IOPRIO_GET => libc::SYS_ioprio_get,
        nr::IOPRIO_SET => libc::SYS_ioprio_set,
        nr::CLOSE_RANGE => libc::SYS_close_range,
        nr::FADVISE64 => libc::SYS_fadvise64,
        _ => return err(libc::ENOSYS),
    };
    // SAFETY: every call above takes integers only (no pointers).
    host(unsafe { libc::syscall(host_number, a[0], a[1], a[2], a[3], a[4], a[5]) })
}

/// `mknodat`: FIFOs and sockets are made; device nodes need privilege, which
/// the host decides.
pub(super) fn sys_mknodat(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    match path_arg(caller.state, a[1]) {
        // SAFETY: a C string and plain values.
        Ok(path) => host(i64::from(unsafe {
            libc::mknodat(
                dirfd(a[0]),
                path.as_ptr(),
                a[2] as libc::mode_t,
                a[3] as libc::dev_t,
            )
        })),
        Err(e) => e,
    }
}

/// `truncate`.
pub(super) fn sys_truncate(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    match path_arg(caller.state, a[0]) {
        // SAFETY: a C string and a plain value.
        Ok(path) => host(i64::from(unsafe {
            libc::truncate(path.as_ptr(), a[1] as i64)
        })),
        Err(e) => e,
    }
}

/// `preadv`, `pwritev`, `preadv2` and `pwritev2` (the riscv64 ABI passes the
/// offset whole, in the fourth argument).
pub(super) fn sys_preadv(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let (read, flags) = match caller.number {
        nr::PREADV => (true, 0),
        nr::PWRITEV => (false, 0),
        nr::PREADV2 => (true, a[5] as i32),
        _ => (false, a[5] as i32),
    };
    vectored(
        &caller.memory,
        a[0] as i32,
        a[1],
        a[2],
        read,
        a[3] as i64,
        flags,
    )
}

/// `signalfd4`: a host signalfd for the same signals (the guest's blocked set
/// is the host thread's, so the signals wait there as on Linux).
pub(super) fn sys_signalfd4(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if a[2] != 8 {
        return err(libc::EINVAL);
    }
    let mask = match caller.memory.read_u64(a[1]) {
        Ok(m) => m,
        Err(f) => return f.into(),
    };
    // SAFETY: an 8-byte kernel sigset (the host's layout too).
    host(unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            a[0] as i32,
            &raw const mask,
            8usize,
            a[3] as i32,
        )
    })
}

/// `splice(fd_in, off_in, fd_out, off_out, len, flags)` and `copy_file_range`
/// (the same arguments): the optional offsets are guest `loff_t`s, read before
/// and written back after.
pub(super) fn sys_splice(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let read_offset = |at: u64| -> Result<Option<i64>, i64> {
        if at == 0 {
            return Ok(None);
        }
        memory
            .read_u64(at)
            .map(|v| Some(v as i64))
            .map_err(i64::from)
    };
    let (mut off_in, mut off_out) = match (read_offset(a[1]), read_offset(a[3])) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let ptr = |o: &mut Option<i64>| o.as_mut().map_or(std::ptr::null_mut(), |v| v as *mut i64);
    let (fd_in, fd_out, len, flags) = (a[0] as i32, a[2] as i32, a[4] as usize, a[5] as u32);
    let (p_in, p_out) = (ptr(&mut off_in), ptr(&mut off_out));
    // SAFETY: the offsets are ours (or null); the rest are plain values.
    let n = unsafe {
        if caller.number == nr::SPLICE {
            libc::splice(fd_in, p_in, fd_out, p_out, len, flags)
        } else {
            libc::copy_file_range(fd_in, p_in, fd_out, p_out, len, flags)
        }
    };
    write_offsets(memory, n as i64, [(a[1], off_in), (a[3], off_out)])
}

/// Stores the offsets a splice-like call moved and returns its result.
fn write_offsets(memory: &UserMemory, n: i64, offsets: [(u64, Option<i64>); 2]) -> i64 {
    if n < 0 {
        return err(last_errno());
    }
    for (at, value) in offsets {
        if let Some(v) = value
            && let Err(f) = memory.write(at, &v.to_le_bytes())
        {
            return f.into();
        }
    }
    n
}

/// `tee`: integers only.
pub(super) fn sys_tee(_: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    // SAFETY: plain values.
    host(unsafe { libc::tee(a[0] as i32, a[1] as i32, a[2] as usize, a[3] as u32) } as i64)
}

/// `vmsplice`: into a pipe it writes the guest's buffers, out of one it reads
/// into them (the pages are copied, as Linux may do anyway).
pub(super) fn sys_vmsplice(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let fd = a[0] as i32;
    // SAFETY: plain values.
    let mode = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if mode < 0 {
        return err(last_errno());
    }
    let read = mode & libc::O_ACCMODE == libc::O_RDONLY;
    vectored(&caller.memory, fd, a[1], a[2], read, -1, 0)
}

/// `memfd_create`.
pub(super) fn sys_memfd_create(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    match string_arg(&caller.memory, a[0]) {
        // SAFETY: a C string and flags.
        Ok(name) => host(i64::from(unsafe {
            libc::memfd_create(name.as_ptr(), a[1] as u32)
        })),
        Err(e) => e,
    }
}

/// `openat2`: `struct open_how` is the same on both.
pub(super) fn sys_openat2(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let size = a[3] as usize;
    if !(24..=4096).contains(&size) {
        return err(libc::EINVAL);
    }
    let path = match path_arg(caller.state, a[1]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    with_buffer(&caller.memory, a[2], size, Way::In, |how| {
        // SAFETY: a C string and a `size`-byte open_how that we own.
        unsafe { libc::syscall(libc::SYS_openat2, dirfd(a[0]), path.as_ptr(), how, size) }
    })
}

/// `fchmodat2`: `fchmodat` with flags (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH).
pub(super) fn sys_fchmodat2(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    match path_arg(caller.state, a[1]) {
        Ok(path) => {
            // SAFETY: a C string and plain values.
            let r =
                unsafe { libc::syscall(452, dirfd(a[0]), path.as_ptr(), a[2] as u32, a[3] as u32) };
            if r < 0 && last_errno() == libc::ENOSYS && a[3] == 0 {
                // An older host kernel: without flags it is fchmodat.
                // SAFETY: as above.
                return host(i64::from(unsafe {
                    libc::fchmodat(dirfd(a[0]), path.as_ptr(), a[2] as libc::mode_t, 0)
                }));
            }
            host(r)
        }
        Err(e) => e,
    }
}

/// Reads or writes the guest's `count` iovecs at `iov` with one host call on a
/// gathered buffer, so a pipe or socket sees one operation, as on Linux.
/// `offset` -1 means the file position; `flags` are preadv2's RWF_ flags.
fn vectored(
    memory: &UserMemory,
    fd: i32,
    iov: u64,
    count: u64,
    read: bool,
    offset: i64,
    flags: i32,
) -> i64 {
    if count > 1024 {
        return err(libc::EINVAL);
    }
    let mut parts = Vec::with_capacity(count as usize);
    let mut total = 0usize;
    for i in 0..count {
        let (Ok(base), Ok(len)) = (
            memory.read_u64(iov.wrapping_add(i * 16)),
            memory.read_u64(iov.wrapping_add(i * 16 + 8)),
        ) else {
            return EFAULT;
        };
        if len > isize::MAX as u64 {
            return err(libc::EINVAL);
        }
        // Bigger requests are cut short, which Linux may do too.
        let len = (len as usize).min(16 * CHUNK - total);
        total += len;
        parts.push((base, len));
    }
    let mut buf = vec![0u8; total];
    if !read {
        let mut at = 0;
        for &(base, len) in &parts {
            if let Err(f) = memory.read(base, &mut buf[at..at + len]) {
                return f.into();
            }
            at += len;
        }
    }
    let one = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: total,
    };
    // SAFETY: one iovec over `buf`, which we own.
    let n = unsafe {
        match (read, offset, flags) {
            (true, -1, 0) => libc::readv(fd, &one, 1),
            (false, -1, 0) => libc::writev(fd, &one, 1),
            (true, ..) => libc::preadv2(fd, &one, 1, offset, flags),
            (false, ..) => libc::pwritev2(fd, &one, 1, offset, flags),
        }
    };
    if n < 0 {
        return err(last_errno());
    }
    if read {
        let mut at = 0;
        for &(base, len) in &parts {
            let take = len.min(n as usize - at);
            if take == 0 {
                break;
            }
            if let Err(f) = memory.write(base, &buf[at..at + take]) {
                return f.into();
            }
            at += take;
        }
    }
    n as i64
}
