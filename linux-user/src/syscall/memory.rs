//! System calls: memory.

use super::*;
use emu_core::SharedPages;

/// `brk`
pub(super) fn sys_brk(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    i64::try_from(brk(cpu, state, a[0])).unwrap_or(0)
}

/// `mmap`
pub(super) fn sys_mmap(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    let shared = state.shared.clone();
    let _mm = lock(&shared.mm);
    mmap(cpu, state, a)
}

/// `munmap`
pub(super) fn sys_munmap(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    if !a[0].is_multiple_of(PAGE)
        || a[1] == 0
        || a[0].checked_add(a[1]).is_none_or(|e| e > USER_SPACE_SIZE)
    {
        err(libc::EINVAL)
    } else {
        let shared = state.shared.clone();
        let _mm = lock(&shared.mm);
        memory.unmap(a[0], page_up(a[1]));
        state.changed_address_space(cpu);
        0
    }
}

/// `mprotect`
pub(super) fn sys_mprotect(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    let memory = caller.memory.clone();
    let shared = state.shared.clone();
    let _mm = lock(&shared.mm);
    if !a[0].is_multiple_of(PAGE) || a[0].checked_add(a[1]).is_none_or(|e| e > USER_SPACE_SIZE) {
        err(libc::EINVAL)
    } else if memory.protect(a[0], page_up(a[1]), prot_bits(a[2])) {
        state.changed_address_space(cpu);
        0
    } else {
        err(libc::ENOMEM)
    }
}

/// `mremap`
pub(super) fn sys_mremap(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    let shared = state.shared.clone();
    let _mm = lock(&shared.mm);
    mremap(cpu, state, a)
}

/// `riscv_flush_icache(start, end, flags)`: code stored since is seen by every
/// thread, as Linux guarantees. Each thread drops all it translated at its next
/// look at the address space; the code pages in `[start, end)` also reach every
/// thread's CPU at once, to be dropped at its next dispatch (stores through
/// another mapping of the same memory are not caught by write protection).
pub(super) fn sys_riscv_flush_icache(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let (start, end) = (a[0].min(USER_SPACE_SIZE), a[1].min(USER_SPACE_SIZE));
    if end > start {
        caller.memory.ram.note_write(start, end - start, None);
    }
    let cpu = &mut *caller.cpu;
    let state = &mut *caller.state;
    state.changed_address_space(cpu);
    0
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

fn brk(cpu: &mut dyn LinuxCpu, state: &mut ProcessState, want: u64) -> u64 {
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
        state.changed_address_space(cpu);
        brk = lock(&shared.brk);
    }
    brk.1 = want;
    want
}

fn mmap(cpu: &mut dyn LinuxCpu, state: &mut ProcessState, a: [u64; 6]) -> i64 {
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
    if flags & libc::MAP_TYPE == libc::MAP_SHARED
        || flags & libc::MAP_TYPE == libc::MAP_SHARED_VALIDATE
    {
        if let Err(e) = map_shared(&memory, start, size, prot, flags, fd, offset) {
            return err(e);
        }
        if fixed {
            state.changed_address_space(cpu);
        }
        return start as i64;
    }
    memory.map_zeroed(start, size, prot_bits(prot));
    if flags & libc::MAP_ANONYMOUS == 0 {
        // A private file mapping: the contents are copied in (`poke` writes
        // whatever the protection), and stores stay in the process.
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
        state.changed_address_space(cpu);
    }
    start as i64
}

fn mremap(cpu: &mut dyn LinuxCpu, state: &mut ProcessState, a: [u64; 6]) -> i64 {
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
            state.changed_address_space(cpu);
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
    state.changed_address_space(cpu);
    new as i64
}

/// Checks a page-aligned range for the calls that need every page mapped
/// (EINVAL when misaligned or wrapping, ENOMEM when a page is not mapped).
fn mapped_range(memory: &UserMemory, start: u64, len: u64) -> Result<u64, i64> {
    let len = page_up(len);
    if !start.is_multiple_of(PAGE) || start.checked_add(len).is_none_or(|e| e > USER_SPACE_SIZE) {
        return Err(err(libc::EINVAL));
    }
    if !memory.areas.is_mapped(start, len) {
        return Err(err(libc::ENOMEM));
    }
    Ok(len)
}

/// `msync(addr, len, flags)`: shared file pages are written back; private
/// copies have nothing to write back.
pub(super) fn sys_msync(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    if a[2] & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || a[2] & MS_ASYNC != 0 && a[2] & MS_SYNC != 0
    {
        return err(libc::EINVAL);
    }
    match mapped_range(&caller.memory, a[0], a[1]) {
        Ok(len) => {
            caller.memory.sync_shared(a[0], len, a[2] as libc::c_int);
            0
        }
        Err(e) => e,
    }
}

/// `madvise(addr, len, advice)`: MADV_DONTNEED, MADV_FREE and MADV_REMOVE drop
/// the pages, which then read as zeros, as anonymous memory does on Linux;
/// other advice is a hint, accepted.
pub(super) fn sys_madvise(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    const DONTNEED: u64 = 4;
    const FREE: u64 = 8;
    const REMOVE: u64 = 9;
    const KNOWN: [u64; 22] = [
        0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25,
    ];
    let (start, advice) = (a[0], a[2]);
    if !KNOWN.contains(&advice) {
        return err(libc::EINVAL);
    }
    if a[1] == 0 && start.is_multiple_of(PAGE) {
        return 0;
    }
    let len = match mapped_range(&caller.memory, start, a[1]) {
        Ok(len) => len,
        Err(e) => return e,
    };
    if matches!(advice, DONTNEED | FREE | REMOVE) {
        let shared = caller.state.shared.clone();
        let _mm = lock(&shared.mm);
        caller.memory.ram.discard(start, len);
    }
    0
}

/// `mlock`, `munlock`, `mlock2`: guest memory is host memory the emulator
/// keeps; the range must be mapped, and then there is nothing to do.
pub(super) fn sys_mlock(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if caller.number == nr::MLOCK2 && a[2] & !1 != 0 {
        return err(libc::EINVAL);
    }
    let start = a[0] & !(PAGE - 1);
    let len = a[1].saturating_add(a[0] - start);
    match mapped_range(&caller.memory, start, len) {
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// `mlockall(flags)` and `munlockall()`.
pub(super) fn sys_mlockall(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if caller.number == nr::MLOCKALL && (a[0] == 0 || a[0] & !7 != 0 || a[0] == 4) {
        return err(libc::EINVAL);
    }
    0
}

/// `mincore(addr, len, vec)`: the host's residency of the guest's pages.
pub(super) fn sys_mincore(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    let memory = &caller.memory;
    let len = match mapped_range(memory, a[0], a[1]) {
        Ok(len) => len,
        Err(e) => return e,
    };
    let pages = (len / PAGE) as usize;
    let mut residency = vec![0u8; pages];
    let host = memory.ram.host_base_ptr().wrapping_add(a[0] as usize);
    // SAFETY: [addr, addr + len) is inside the guest mapping (checked above);
    // `residency` has one byte per page.
    let r = unsafe { libc::mincore(host.cast(), len as usize, residency.as_mut_ptr()) };
    if r < 0 {
        return err(last_errno());
    }
    match memory.write(a[2], &residency) {
        Ok(()) => 0,
        Err(f) => f.into(),
    }
}

/// `pkey_mprotect(addr, len, prot, pkey)`: RISC-V has no protection keys, so
/// only pkey -1 (plain mprotect) is valid.
pub(super) fn sys_pkey_mprotect(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if a[3] as i32 != -1 {
        return err(libc::EINVAL);
    }
    sys_mprotect(caller, a)
}

/// `pkey_alloc(flags, rights)`: no keys to hand out (ENOSPC, as Linux answers
/// where the hardware has none); `pkey_free`: no such key (EINVAL).
pub(super) fn sys_pkey_alloc(caller: &mut Caller<'_>, a: [u64; 6]) -> i64 {
    if caller.number == nr::PKEY_FREE || a[0] != 0 || a[1] & !3 != 0 {
        return err(libc::EINVAL);
    }
    err(libc::ENOSPC)
}

/// `MAP_SHARED`: the file's own pages (stores reach the file and every process
/// mapping it) or, with MAP_ANONYMOUS, memory forked children keep sharing.
/// Errors as Linux's: EACCES for a file not open for reading, or for writing
/// when the mapping is writable.
fn map_shared(
    memory: &UserMemory,
    start: u64,
    size: u64,
    prot: u64,
    flags: i32,
    fd: i32,
    offset: u64,
) -> Result<(), i32> {
    let pages = if flags & libc::MAP_ANONYMOUS != 0 {
        SharedPages::Anonymous
    } else {
        // SAFETY: plain values.
        let mode = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if mode < 0 {
            return Err(libc::EBADF);
        }
        let access = mode & libc::O_ACCMODE;
        if access == libc::O_WRONLY
            || (access == libc::O_RDONLY && prot & libc::PROT_WRITE as u64 != 0)
        {
            return Err(libc::EACCES);
        }
        SharedPages::File {
            fd,
            offset,
            writable: access == libc::O_RDWR,
        }
    };
    memory.map_shared(start, size, prot_bits(prot), pages)
}
