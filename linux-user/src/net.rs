//! Sockets and epoll for user-mode processes. Socket addresses, options and
//! message headers have the same layout on riscv64 and x86-64 Linux (all
//! 64-bit generic), so buffers are copied through; `struct epoll_event` differs
//! (packed, 12 bytes, on x86-64; 16 on riscv64) and is converted.

use crate::space::{PROT_READ, UserMemory};

/// Largest socket address or option the guest can pass.
const MAX_SOCKADDR: usize = 512;
/// Bytes one send or receive moves at once.
const CHUNK: usize = 1 << 20;
/// Most iovec entries and control bytes of one sendmsg/recvmsg.
const MAX_IOV: usize = 1024;
const MAX_CONTROL: usize = 4096;

fn err(errno: i32) -> i64 {
    -i64::from(errno)
}

fn host(result: i64) -> i64 {
    if result < 0 {
        err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        result
    }
}

/// Reads a guest buffer of `len` bytes (`len` capped at `max`).
fn read_buf(memory: &UserMemory, at: u64, len: u64, max: usize) -> Result<Vec<u8>, i64> {
    let mut buf = vec![0u8; (len as usize).min(max)];
    memory.read(at, &mut buf).map_err(i64::from)?;
    Ok(buf)
}

/// Copies a host-filled address (and its length) back to the guest's
/// `addr`/`addrlen` pair, truncating as the kernel does.
fn write_addr(
    memory: &UserMemory,
    addr: u64,
    len_at: u64,
    host_addr: &[u8],
    host_len: u32,
) -> Result<(), i64> {
    if addr == 0 || len_at == 0 {
        return Ok(());
    }
    let mut room = [0u8; 4];
    memory.read(len_at, &mut room).map_err(i64::from)?;
    let room = u32::from_le_bytes(room) as usize;
    let n = room.min(host_len as usize).min(host_addr.len());
    memory.write(addr, &host_addr[..n]).map_err(i64::from)?;
    memory
        .write(len_at, &host_len.to_le_bytes())
        .map_err(i64::from)
}

/// The socket system calls.
pub fn socket_call(memory: &UserMemory, number: u64, a: [u64; 6]) -> i64 {
    match socket_call_inner(memory, number, a) {
        Ok(v) | Err(v) => v,
    }
}

fn socket_call_inner(memory: &UserMemory, number: u64, a: [u64; 6]) -> Result<i64, i64> {
    use crate::syscall::nr;
    let fd = a[0] as i32;
    Ok(match number {
        // SAFETY: plain values.
        nr::SOCKET => host(i64::from(unsafe {
            libc::socket(a[0] as i32, a[1] as i32, a[2] as i32)
        })),
        nr::SOCKETPAIR => {
            let mut fds = [0i32; 2];
            // SAFETY: fds has room for two descriptors.
            let r = unsafe {
                libc::socketpair(a[0] as i32, a[1] as i32, a[2] as i32, fds.as_mut_ptr())
            };
            if r == 0 {
                let bytes: Vec<u8> = fds.iter().flat_map(|f| f.to_le_bytes()).collect();
                memory.write(a[3], &bytes).map_err(i64::from)?;
            }
            host(i64::from(r))
        }
        nr::BIND | nr::CONNECT => {
            let addr = read_buf(memory, a[1], a[2], MAX_SOCKADDR)?;
            // SAFETY: addr holds the guest's address bytes, same layout on the host.
            let r = unsafe {
                if number == nr::BIND {
                    libc::bind(fd, addr.as_ptr().cast(), addr.len() as u32)
                } else {
                    libc::connect(fd, addr.as_ptr().cast(), addr.len() as u32)
                }
            };
            host(i64::from(r))
        }
        // SAFETY: plain values.
        nr::LISTEN => host(i64::from(unsafe { libc::listen(fd, a[1] as i32) })),
        // SAFETY: plain values.
        nr::SHUTDOWN => host(i64::from(unsafe { libc::shutdown(fd, a[1] as i32) })),
        nr::ACCEPT | nr::ACCEPT4 | nr::GETSOCKNAME | nr::GETPEERNAME => {
            let mut addr = [0u8; MAX_SOCKADDR];
            let mut len = MAX_SOCKADDR as u32;
            let flags = if number == nr::ACCEPT4 {
                a[3] as i32
            } else {
                0
            };
            // SAFETY: addr and len describe a buffer of ours.
            let r = unsafe {
                match number {
                    nr::GETSOCKNAME => libc::getsockname(fd, addr.as_mut_ptr().cast(), &mut len),
                    nr::GETPEERNAME => libc::getpeername(fd, addr.as_mut_ptr().cast(), &mut len),
                    _ => libc::accept4(fd, addr.as_mut_ptr().cast(), &mut len, flags),
                }
            };
            if r >= 0 {
                write_addr(memory, a[1], a[2], &addr, len)?;
            }
            host(i64::from(r))
        }
        nr::SENDTO => {
            let data = read_buf(memory, a[1], a[2], CHUNK)?;
            let addr = if a[4] == 0 {
                Vec::new()
            } else {
                read_buf(memory, a[4], a[5], MAX_SOCKADDR)?
            };
            // SAFETY: data and addr are buffers of ours (addr may be empty: null).
            let r = unsafe {
                libc::sendto(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    a[3] as i32,
                    if addr.is_empty() {
                        std::ptr::null()
                    } else {
                        addr.as_ptr().cast()
                    },
                    addr.len() as u32,
                )
            };
            host(r as i64)
        }
        nr::RECVFROM => {
            let mut data = vec![0u8; (a[2] as usize).min(CHUNK)];
            let mut addr = [0u8; MAX_SOCKADDR];
            let mut len = MAX_SOCKADDR as u32;
            // SAFETY: data, addr and len are buffers of ours.
            let r = unsafe {
                libc::recvfrom(
                    fd,
                    data.as_mut_ptr().cast(),
                    data.len(),
                    a[3] as i32,
                    addr.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            if r >= 0 {
                memory.write(a[1], &data[..r as usize]).map_err(i64::from)?;
                write_addr(memory, a[4], a[5], &addr, len)?;
            }
            host(r as i64)
        }
        nr::SETSOCKOPT => {
            let value = read_buf(memory, a[3], a[4], MAX_SOCKADDR)?;
            // SAFETY: value holds the option bytes (same layouts on both).
            host(i64::from(unsafe {
                libc::setsockopt(
                    fd,
                    a[1] as i32,
                    a[2] as i32,
                    value.as_ptr().cast(),
                    value.len() as u32,
                )
            }))
        }
        nr::GETSOCKOPT => {
            let mut room = [0u8; 4];
            memory.read(a[4], &mut room).map_err(i64::from)?;
            let mut len = u32::from_le_bytes(room).min(MAX_SOCKADDR as u32);
            let mut value = [0u8; MAX_SOCKADDR];
            // SAFETY: value and len describe a buffer of ours.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    a[1] as i32,
                    a[2] as i32,
                    value.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            if r == 0 {
                memory
                    .write(a[3], &value[..len as usize])
                    .map_err(i64::from)?;
                memory.write(a[4], &len.to_le_bytes()).map_err(i64::from)?;
            }
            host(i64::from(r))
        }
        nr::SENDMSG | nr::RECVMSG => message(memory, number == nr::SENDMSG, a)?,
        _ => err(libc::ENOSYS),
    })
}

/// sendmsg and recvmsg: the guest's msghdr (56 bytes, as on the host) with its
/// iovecs and control data copied through host buffers.
fn message(memory: &UserMemory, send: bool, a: [u64; 6]) -> Result<i64, i64> {
    let header = read_buf(memory, a[1], 56, 56)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or_default());
    let (name_at, name_len) = (
        word(0),
        u64::from(u32::from_le_bytes(
            header[8..12].try_into().unwrap_or_default(),
        )),
    );
    let (iov_at, iov_count) = (word(16), (word(24) as usize).min(MAX_IOV));
    let (control_at, control_len) = (word(32), (word(40) as usize).min(MAX_CONTROL));
    let mut name = if name_at == 0 {
        Vec::new()
    } else {
        read_buf(memory, name_at, name_len, MAX_SOCKADDR)?
    };
    if !send && name_at != 0 {
        name.resize(MAX_SOCKADDR.min(name_len as usize), 0);
    }
    let mut buffers: Vec<(u64, Vec<u8>)> = Vec::with_capacity(iov_count);
    for i in 0..iov_count as u64 {
        let base = memory
            .read_u64(iov_at.wrapping_add(i * 16))
            .map_err(i64::from)?;
        let len = (memory
            .read_u64(iov_at.wrapping_add(i * 16 + 8))
            .map_err(i64::from)? as usize)
            .min(CHUNK);
        let data = if send {
            read_buf(memory, base, len as u64, CHUNK)?
        } else {
            vec![0u8; len]
        };
        buffers.push((base, data));
    }
    let mut control = if control_at == 0 {
        Vec::new()
    } else if send {
        read_buf(memory, control_at, control_len as u64, MAX_CONTROL)?
    } else {
        vec![0u8; control_len]
    };
    let mut iovecs: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|(_, data)| libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        })
        .collect();
    // SAFETY: a zeroed msghdr is valid; every pointer set below is to a buffer
    // of ours that lives until the call returns.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if !name.is_empty() {
        msg.msg_name = name.as_mut_ptr().cast();
        msg.msg_namelen = name.len() as u32;
    }
    msg.msg_iov = iovecs.as_mut_ptr();
    msg.msg_iovlen = iovecs.len();
    if !control.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
    }
    // SAFETY: msg describes our buffers.
    let r = unsafe {
        if send {
            libc::sendmsg(a[0] as i32, &msg, a[2] as i32)
        } else {
            libc::recvmsg(a[0] as i32, &mut msg, a[2] as i32)
        }
    };
    if r >= 0 && !send {
        let mut left = r as usize;
        for (base, data) in &buffers {
            let n = left.min(data.len());
            memory.write(*base, &data[..n]).map_err(i64::from)?;
            left -= n;
        }
        if name_at != 0 {
            memory
                .write(name_at, &name[..(msg.msg_namelen as usize).min(name.len())])
                .map_err(i64::from)?;
            memory
                .write(a[1].wrapping_add(8), &msg.msg_namelen.to_le_bytes())
                .map_err(i64::from)?;
        }
        if control_at != 0 {
            memory
                .write(
                    control_at,
                    &control[..msg.msg_controllen.min(control.len())],
                )
                .map_err(i64::from)?;
        }
        memory
            .write(
                a[1].wrapping_add(40),
                &(msg.msg_controllen as u64).to_le_bytes(),
            )
            .map_err(i64::from)?;
        memory
            .write(a[1].wrapping_add(48), &msg.msg_flags.to_le_bytes())
            .map_err(i64::from)?;
    }
    Ok(host(r as i64))
}

/// epoll_create1, epoll_ctl and epoll_pwait, converting `struct epoll_event`.
pub fn epoll_call(memory: &UserMemory, number: u64, a: [u64; 6]) -> i64 {
    use crate::syscall::nr;
    match number {
        // SAFETY: plain values.
        nr::EPOLL_CREATE1 => host(i64::from(unsafe { libc::epoll_create1(a[0] as i32) })),
        nr::EPOLL_CTL => {
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            if a[3] != 0 {
                let raw = match read_buf(memory, a[3], 16, 16) {
                    Ok(raw) => raw,
                    Err(e) => return e,
                };
                event.events = u32::from_le_bytes(raw[..4].try_into().unwrap_or_default());
                event.u64 = u64::from_le_bytes(raw[8..].try_into().unwrap_or_default());
            }
            // SAFETY: event is ours.
            host(i64::from(unsafe {
                libc::epoll_ctl(a[0] as i32, a[1] as i32, a[2] as i32, &mut event)
            }))
        }
        nr::EPOLL_PWAIT => {
            let count = (a[2] as usize).clamp(1, 1024);
            if memory
                .host_pointer(a[1], count as u64 * 16, PROT_READ)
                .is_err()
            {
                return err(libc::EFAULT);
            }
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; count];
            // SAFETY: events has room for count entries; no signal mask.
            let n = unsafe {
                libc::epoll_wait(a[0] as i32, events.as_mut_ptr(), count as i32, a[3] as i32)
            };
            if n > 0 {
                let mut out = Vec::with_capacity(n as usize * 16);
                for event in &events[..n as usize] {
                    let (kinds, data) = (event.events, event.u64);
                    out.extend(kinds.to_le_bytes());
                    out.extend([0u8; 4]);
                    out.extend(data.to_le_bytes());
                }
                if memory.write(a[1], &out).is_err() {
                    return err(libc::EFAULT);
                }
            }
            host(i64::from(n))
        }
        _ => err(libc::ENOSYS),
    }
}

/// `sendmmsg(fd, msgvec, vlen, flags)` and `recvmmsg(fd, msgvec, vlen, flags,
/// timeout)`: one `sendmsg`/`recvmsg` per `struct mmsghdr` (a msghdr and the
/// byte count, 64 bytes). recvmmsg's timeout is checked only between messages,
/// as Linux does.
pub fn multiple_messages(memory: &UserMemory, send: bool, a: [u64; 6]) -> i64 {
    const MSG_DONTWAIT: u64 = 0x40;
    const MSG_WAITFORONE: u64 = 0x10000;
    let count = a[2].min(1024);
    let mut flags = a[3];
    let mut done = 0u64;
    while done < count {
        let entry = a[1].wrapping_add(done * 64);
        match message(
            memory,
            send,
            [a[0], entry, flags & !MSG_WAITFORONE, 0, 0, 0],
        ) {
            Ok(n) => {
                if memory.write(entry + 56, &(n as u32).to_le_bytes()).is_err() {
                    return if done > 0 {
                        done as i64
                    } else {
                        err(libc::EFAULT)
                    };
                }
            }
            Err(e) => return if done > 0 { done as i64 } else { e },
        }
        done += 1;
        if !send && flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
    }
    done as i64
}

/// `epoll_pwait2(epfd, events, maxevents, timeout, sigmask, sigsetsize)`: the
/// timeout is a timespec (null: forever), rounded up to milliseconds.
pub fn epoll_pwait2(memory: &UserMemory, a: [u64; 6]) -> i64 {
    let millis = match crate::syscall::read_timeout(memory, a[3]) {
        Ok(None) => -1i64,
        Ok(Some(ts)) if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) => {
            return err(libc::EINVAL);
        }
        Ok(Some(ts)) => (ts.tv_sec.saturating_mul(1000))
            .saturating_add((ts.tv_nsec + 999_999) / 1_000_000)
            .min(i64::from(i32::MAX)),
        Err(e) => return e,
    };
    epoll_call(
        memory,
        crate::syscall::nr::EPOLL_PWAIT,
        [a[0], a[1], a[2], millis as u64, a[4], a[5]],
    )
}
