//! The system call families against the host kernel: each call made as the
//! guest makes it (registers, guest buffers) and its result compared with what
//! the host says about the same thing.

use super::nr;
use crate::testing::bare_process;

/// Guest scratch memory: the bare process's mapped page.
const BUF: u64 = 0x10000;

fn read_u64(p: &crate::testing::BareProcess, at: u64) -> u64 {
    p.state.memory.read_u64(at).expect("mapped")
}

#[test]
fn eventfd_counts_like_the_hosts() {
    let mut p = bare_process();
    let fd = p.call(nr::EVENTFD2, &[5, libc::EFD_NONBLOCK as u64]);
    assert!(fd >= 0, "{fd}");
    p.state.memory.write(BUF, &7u64.to_le_bytes()).unwrap();
    assert_eq!(p.call(nr::WRITE, &[fd as u64, BUF, 8]), 8);
    assert_eq!(p.call(nr::READ, &[fd as u64, BUF + 8, 8]), 8);
    assert_eq!(read_u64(&p, BUF + 8), 12);
    // Empty and non-blocking: EAGAIN, as the host's descriptor answers.
    assert_eq!(
        p.call(nr::READ, &[fd as u64, BUF + 8, 8]),
        -i64::from(libc::EAGAIN)
    );
    assert_eq!(p.call(nr::CLOSE, &[fd as u64]), 0);
}

#[test]
fn generic_ioctls_set_what_fcntl_reads() {
    let mut p = bare_process();
    assert_eq!(p.call(nr::PIPE2, &[BUF, 0]), 0);
    let mut raw = [0u8; 8];
    p.state.memory.read(BUF, &mut raw).unwrap();
    let (r, w) = (
        i32::from_le_bytes(raw[..4].try_into().unwrap()),
        i32::from_le_bytes(raw[4..].try_into().unwrap()),
    );
    p.state.memory.write(BUF + 16, &1i32.to_le_bytes()).unwrap();
    assert_eq!(p.call(nr::IOCTL, &[r as u64, 0x5421, BUF + 16]), 0); // FIONBIO
    // SAFETY: plain queries of our own descriptors.
    let (status, fd_flags) =
        unsafe { (libc::fcntl(r, libc::F_GETFL), libc::fcntl(r, libc::F_GETFD)) };
    assert_ne!(status & libc::O_NONBLOCK, 0);
    assert_eq!(fd_flags & libc::FD_CLOEXEC, 0);
    assert_eq!(p.call(nr::IOCTL, &[r as u64, 0x5451]), 0); // FIOCLEX
    // SAFETY: as above.
    let fd_flags = unsafe { libc::fcntl(r, libc::F_GETFD) };
    assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
    p.state.memory.write(BUF + 32, b"abc").unwrap();
    assert_eq!(p.call(nr::WRITE, &[w as u64, BUF + 32, 3]), 3);
    assert_eq!(p.call(nr::IOCTL, &[r as u64, 0x541b, BUF + 16]), 0); // FIONREAD
    let mut queued = [0u8; 4];
    p.state.memory.read(BUF + 16, &mut queued).unwrap();
    assert_eq!(i32::from_le_bytes(queued), 3);
    // An unknown request is not a terminal's: ENOTTY.
    assert_eq!(
        p.call(nr::IOCTL, &[r as u64, 0x1234_5678, BUF]),
        -i64::from(libc::ENOTTY)
    );
    p.call(nr::CLOSE, &[r as u64]);
    p.call(nr::CLOSE, &[w as u64]);
}

#[test]
fn interval_timers_are_the_hosts() {
    let mut p = bare_process();
    // ITIMER_PROF (not REAL: the test harness must not get a SIGALRM), 100 s.
    let new: Vec<u8> = [0u64, 0, 100, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    p.state.memory.write(BUF, &new).unwrap();
    assert_eq!(
        p.call(nr::SETITIMER, &[libc::ITIMER_PROF as u64, BUF, 0]),
        0
    );
    let mut host: libc::itimerval = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: `host` is ours.
    assert_eq!(unsafe { libc::getitimer(libc::ITIMER_PROF, &mut host) }, 0);
    assert!(
        (99..=100).contains(&host.it_value.tv_sec),
        "{}",
        host.it_value.tv_sec
    );
    assert_eq!(
        p.call(nr::GETITIMER, &[libc::ITIMER_PROF as u64, BUF + 64]),
        0
    );
    assert!((99..=100).contains(&read_u64(&p, BUF + 64 + 16)));
    // Cancel it, getting the old value back.
    p.state.memory.write(BUF, &[0u8; 32]).unwrap();
    assert_eq!(
        p.call(nr::SETITIMER, &[libc::ITIMER_PROF as u64, BUF, BUF + 128]),
        0
    );
    assert!((99..=100).contains(&read_u64(&p, BUF + 128 + 16)));
    assert_eq!(p.call(nr::GETITIMER, &[9, BUF]), -i64::from(libc::EINVAL));
}

#[test]
fn capabilities_and_scheduler_are_the_hosts() {
    let mut p = bare_process();
    let header: Vec<u8> = [0x2008_0522u32, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    p.state.memory.write(BUF, &header).unwrap();
    assert_eq!(p.call(nr::CAPGET, &[BUF, BUF + 16]), 0);
    let mut guest = [0u8; 24];
    p.state.memory.read(BUF + 16, &mut guest).unwrap();
    let mut host_header = [0x2008_0522u32, 0];
    let mut host = [0u8; 24];
    // SAFETY: an 8-byte header and 24 bytes of data that we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            host_header.as_mut_ptr(),
            host.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    assert_eq!(guest, host);
    // SAFETY: a plain query.
    let policy = unsafe { libc::sched_getscheduler(0) };
    assert_eq!(p.call(nr::SCHED_GETSCHEDULER, &[0]), i64::from(policy));
}

#[test]
fn riscv_hwprobe_answers_key_by_key() {
    let mut p = bare_process();
    let pairs: Vec<u8> = [3u64, 0, 4, 0, 77, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    p.state.memory.write(BUF, &pairs).unwrap();
    assert_eq!(p.call(nr::RISCV_HWPROBE, &[BUF, 3, 0, 0, 0]), 0);
    assert_eq!(read_u64(&p, BUF + 8), 1, "base behaviour IMA");
    assert_eq!(read_u64(&p, BUF + 24) & 3, 3, "F, D and C");
    assert_eq!(read_u64(&p, BUF + 32) as i64, -1, "unknown key");
    assert_eq!(
        p.call(nr::RISCV_HWPROBE, &[BUF, 1, 0, 0, 1]),
        -i64::from(libc::EINVAL)
    );
}

#[test]
fn memory_queries_follow_the_area_map() {
    let mut p = bare_process();
    assert_eq!(p.call(nr::MINCORE, &[BUF, 4096, BUF + 100]), 0);
    // Unmapped: ENOMEM; misaligned: EINVAL, as Linux answers.
    assert_eq!(
        p.call(nr::MINCORE, &[0x20000, 4096, BUF]),
        -i64::from(libc::ENOMEM)
    );
    assert_eq!(
        p.call(nr::MINCORE, &[BUF + 1, 4096, BUF]),
        -i64::from(libc::EINVAL)
    );
    // MADV_DONTNEED leaves zeros.
    p.state.memory.write(BUF + 8, &[9]).unwrap();
    assert_eq!(p.call(nr::MADVISE, &[BUF, 4096, 4]), 0);
    assert_eq!(read_u64(&p, BUF + 8), 0);
    assert_eq!(
        p.call(nr::MADVISE, &[BUF, 4096, 1234]),
        -i64::from(libc::EINVAL)
    );
    assert_eq!(p.call(nr::PKEY_ALLOC, &[0, 0]), -i64::from(libc::ENOSPC));
}

#[test]
fn calls_a_kernel_may_lack_answer_as_such_a_kernel_does() {
    let mut p = bare_process();
    for number in [
        nr::IO_URING_SETUP,
        nr::RSEQ,
        nr::LANDLOCK_CREATE_RULESET,
        nr::SEMGET,
    ] {
        assert_eq!(p.call(number, &[0, 0, 0]), -i64::from(libc::ENOSYS));
    }
    for number in [nr::MOUNT, nr::REBOOT, nr::INIT_MODULE] {
        assert_eq!(p.call(number, &[0, 0, 0]), -i64::from(libc::EPERM));
    }
    // None of them counts as unimplemented.
    assert!(p.state.shared_warned_is_empty());
    assert_eq!(
        super::syscall_name(&crate::riscv64::RISCV64, nr::IO_URING_SETUP),
        "io_uring_setup"
    );
    assert_eq!(
        super::syscall_name(&crate::riscv64::RISCV64, 3999),
        "syscall_3999"
    );
}

#[test]
fn flushing_the_instruction_cache_reaches_every_cpu() {
    let mut p = bare_process();
    let memory = p.state.memory.clone();
    memory.map_zeroed(
        0x40000,
        0x2000,
        crate::space::PROT_READ | crate::space::PROT_EXEC,
    );
    let other_thread = memory.ram.watch_code_writes();
    memory.ram.mark_code_page(0x41000);
    assert_eq!(p.call(nr::RISCV_FLUSH_ICACHE, &[0x40000, 0x42000, 0]), 0);
    assert!(other_thread.has_pending());
    assert_eq!(other_thread.take(), Some(vec![0x41000]));
    // A range past the address space is cut to it, not refused.
    assert_eq!(
        p.call(nr::RISCV_FLUSH_ICACHE, &[u64::MAX - 10, u64::MAX, 0]),
        0
    );
}
