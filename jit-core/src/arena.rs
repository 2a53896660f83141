//! Code memory packed tight: one mapping, filled front to back.
//!
//! Cranelift-jit's own memory provider makes each finalized function's pages
//! read-only and executable and starts the next function on a fresh page, so
//! with one translation finalized at a time every translation took a page of its
//! own: 9,000 translations of a Linux guest spread over 2 GiB of address space,
//! every entry at the same page offset. Big guest programs (perl, python) then
//! missed the host's instruction TLB and, since all entries fall in the same
//! cache sets, its L1 instruction cache on nearly every block, and ran at a fifth
//! of QEMU's speed. This provider hands out code from one readable, writable and
//! executable mapping (as QEMU's code buffer is, on hosts without split W^X), so
//! translations sit next to each other in the order they were made.
//!
//! It is for x86-64 hosts only, whose instruction caches follow stores to code;
//! elsewhere the engine keeps cranelift-jit's provider (see `backend`).

use std::alloc::Layout;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::ModuleResult;

/// Address space reserved for one arena. Pages are backed only when code is
/// written to them, so the reservation costs no memory.
pub(crate) const ARENA_BYTES: usize = 256 << 20;
/// The engine flushes the code memory when less than this is left, so a
/// translation never finds the arena full (the largest translations take tens of
/// KiB).
pub(crate) const ARENA_SLACK: usize = 16 << 20;

/// How much of the current arena is used; shared with the engine, which
/// flushes the code memory before it runs out.
#[derive(Clone, Debug, Default)]
pub struct CodeFill(Arc<AtomicUsize>);

impl CodeFill {
    /// Whether the next translations might not fit.
    pub fn nearly_full(&self) -> bool {
        self.0.load(Ordering::Relaxed) + ARENA_SLACK > ARENA_BYTES
    }

    /// Bytes of code memory in use.
    pub fn used(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One mapping of code memory, and the data allocations Cranelift asks for.
#[derive(Debug)]
pub(crate) struct CodeArena {
    base: *mut u8,
    used: usize,
    fill: CodeFill,
    /// Data objects (Cranelift asks for none with our translators, but the
    /// trait allows it), freed with the arena.
    data: Vec<(*mut u8, Layout)>,
}

// SAFETY: the arena owns its mapping and data outright; the raw pointers are
// never shared with another arena, and the module that owns the arena is used by
// one thread at a time (the compile thread or the CPU's thread).
unsafe impl Send for CodeArena {}

impl CodeArena {
    /// Maps a fresh arena; its fill is reported through `fill` (reset to zero).
    pub(crate) fn new(fill: CodeFill) -> io::Result<CodeArena> {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ARENA_BYTES,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        fill.0.store(0, Ordering::Relaxed);
        Ok(CodeArena {
            base: base.cast(),
            used: 0,
            fill,
            data: Vec::new(),
        })
    }

    fn release(&mut self) {
        if !self.base.is_null() {
            // SAFETY: `base` is the start of this arena's mapping of
            // `ARENA_BYTES`, unmapped once (the pointer is cleared below); the
            // caller (free_memory's contract, or drop) guarantees no code in it
            // runs again.
            unsafe { libc::munmap(self.base.cast(), ARENA_BYTES) };
            self.base = std::ptr::null_mut();
        }
        for (ptr, layout) in self.data.drain(..) {
            // SAFETY: allocated in `allocate` with exactly this layout, and
            // freed once (drained).
            unsafe { std::alloc::dealloc(ptr, layout) };
        }
    }
}

impl JITMemoryProvider for CodeArena {
    fn allocate(&mut self, size: usize, align: u64, kind: JITMemoryKind) -> io::Result<*mut u8> {
        let align = usize::try_from(align)
            .ok()
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| io::Error::other(format!("bad code alignment {align}")))?;
        match kind {
            JITMemoryKind::Executable => {
                if self.base.is_null() {
                    return Err(io::Error::other("code arena already freed"));
                }
                let start = self.used.next_multiple_of(align);
                let end = start
                    .checked_add(size)
                    .filter(|&end| end <= ARENA_BYTES)
                    .ok_or_else(|| io::Error::other("code arena full"))?;
                self.used = end;
                self.fill.0.store(end, Ordering::Relaxed);
                // SAFETY: `start + size <= ARENA_BYTES`, inside the mapping.
                Ok(unsafe { self.base.add(start) })
            }
            JITMemoryKind::Writable | JITMemoryKind::ReadOnly => {
                let layout = Layout::from_size_align(size.max(1), align)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                // SAFETY: the layout has a non-zero size.
                let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
                if ptr.is_null() {
                    return Err(io::Error::other("out of memory for JIT data"));
                }
                self.data.push((ptr, layout));
                Ok(ptr)
            }
        }
    }

    unsafe fn free_memory(&mut self) {
        self.release();
    }

    fn finalize(&mut self, _branch_protection: BranchProtection) -> ModuleResult<()> {
        // The mapping is executable from the start, and x86-64 keeps its
        // instruction cache coherent with stores: nothing to do.
        Ok(())
    }
}

impl Drop for CodeArena {
    fn drop(&mut self) {
        // The module owning the arena is dropped only with its engine, once no
        // translation can run.
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_packed_aligned_and_counted() {
        let fill = CodeFill::default();
        let mut arena = CodeArena::new(fill.clone()).expect("map arena");
        let a = arena
            .allocate(100, 16, JITMemoryKind::Executable)
            .expect("a");
        let b = arena
            .allocate(10, 32, JITMemoryKind::Executable)
            .expect("b");
        assert_eq!(
            b as usize - a as usize,
            128,
            "next 32-byte boundary after 100"
        );
        assert_eq!(fill.used(), 138);
        assert!(!fill.nearly_full());
        // SAFETY: both allocations lie in the writable mapping.
        unsafe {
            a.write(0xc3);
            b.add(9).write(0xc3);
        }
    }

    #[test]
    fn a_full_arena_refuses_rather_than_overflows() {
        let fill = CodeFill::default();
        let mut arena = CodeArena::new(fill.clone()).expect("map arena");
        arena
            .allocate(ARENA_BYTES - ARENA_SLACK / 2, 16, JITMemoryKind::Executable)
            .expect("most of it");
        assert!(fill.nearly_full());
        assert!(
            arena
                .allocate(ARENA_SLACK, 16, JITMemoryKind::Executable)
                .is_err()
        );
        assert!(
            arena
                .allocate(usize::MAX, 16, JITMemoryKind::Executable)
                .is_err()
        );
        assert!(arena.allocate(8, 3, JITMemoryKind::Executable).is_err());
        let data = arena
            .allocate(24, 8, JITMemoryKind::Writable)
            .expect("data");
        assert_eq!(data as usize % 8, 0);
        // SAFETY: ends the arena; nothing of it is used after.
        unsafe { arena.free_memory() };
        assert!(arena.allocate(8, 16, JITMemoryKind::Executable).is_err());
    }
}
