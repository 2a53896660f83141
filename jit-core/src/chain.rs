//! Chaining: the slots through which a translation's exit jumps straight into
//! the next translation, and the jump cache that exits with targets unknown at
//! translation time probe. Translated code reads both directly, so their layouts
//! are fixed (`#[repr(C)]`) and their addresses never move while code that names
//! them exists.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::BlockFn;

/// Where a block exit with a known target jumps to, filled by the dispatch loop.
///
/// The compile thread hands slots out; the CPU's thread fills them and its
/// translated code reads them, hence the atomics (plain loads in the code).
#[repr(C)]
#[derive(Debug)]
pub struct ChainSlot {
    /// Entry of the target block.
    pub entry: AtomicPtr<u8>,
    /// The cache's chain generation when `entry` was stored; the slot is followed
    /// only while it matches.
    pub generation: AtomicU64,
}

#[expect(
    clippy::declare_interior_mutable_const,
    reason = "only the initial value of each slot in a new chunk"
)]
const EMPTY_SLOT: ChainSlot = ChainSlot {
    entry: AtomicPtr::new(std::ptr::null_mut()),
    generation: AtomicU64::new(u64::MAX),
};

/// Chain slots allocated at a time.
const SLOT_CHUNK: usize = 4096;

/// The chain slots of a module's code, in chunks that never move.
#[derive(Debug)]
pub struct ChainSlots {
    chunks: Vec<Box<[ChainSlot; SLOT_CHUNK]>>,
    /// Slots handed out from the last chunk.
    used: usize,
}

impl Default for ChainSlots {
    fn default() -> ChainSlots {
        ChainSlots {
            chunks: Vec::new(),
            used: SLOT_CHUNK,
        }
    }
}

impl ChainSlots {
    /// A fresh, empty slot; its address is stable until the slots are dropped.
    pub fn alloc(&mut self) -> *const ChainSlot {
        if self.used == SLOT_CHUNK {
            self.chunks.push(Box::new([EMPTY_SLOT; SLOT_CHUNK]));
            self.used = 0;
        }
        let chunk = self.chunks.last().expect("a chunk was just pushed");
        let slot = &raw const chunk[self.used];
        self.used += 1;
        slot
    }
}

impl ChainSlot {
    /// Points the slot at `entry` for chain generation `generation`.
    pub(crate) fn link(&self, entry: BlockFn, generation: u64) {
        // Only the owning CPU's thread stores to a slot and reads it (from its
        // translated code), so program order is all that is needed.
        self.entry.store(entry.0.cast_mut(), Ordering::Relaxed);
        self.generation.store(generation, Ordering::Relaxed);
    }
}

/// Entries of the direct-mapped jump cache in front of the block map.
pub const JUMP_CACHE: usize = 4096;

/// One jump-cache entry: a recently run translation, valid for one epoch.
/// Translated code probes the cache for indirect jumps, so the layout is fixed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct JumpEntry {
    /// The translation's pc (`u64::MAX`, never a pc, when empty).
    pub pc: u64,
    /// The physical page number of its code.
    pub ram_page: u64,
    /// The cache's epoch when the entry was filled.
    pub epoch: u64,
    /// The translation's entry (never null in a filled entry).
    pub entry: *const u8,
}

// SAFETY: as for `ChainSlot`: an address of immutable code and plain numbers.
unsafe impl Send for JumpEntry {}

pub(crate) const EMPTY_JUMP: JumpEntry = JumpEntry {
    pc: u64::MAX,
    ram_page: u64::MAX,
    epoch: u64::MAX,
    entry: std::ptr::null(),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_addresses_and_start_unlinked() {
        let mut slots = ChainSlots::default();
        let first = slots.alloc();
        let many: Vec<_> = (0..SLOT_CHUNK + 10).map(|_| slots.alloc()).collect();
        assert!(many.iter().all(|&slot| slot != first));
        // SAFETY: `first` points into a chunk `slots` still owns.
        let first = unsafe { &*first };
        assert_eq!(first.generation.load(Ordering::Relaxed), u64::MAX);
        let code = [0u8; 4];
        first.link(BlockFn(code.as_ptr()), 7);
        assert_eq!(first.generation.load(Ordering::Relaxed), 7);
        assert_eq!(
            first.entry.load(Ordering::Relaxed).cast_const(),
            code.as_ptr()
        );
        let last = *many.last().expect("slots were made");
        // SAFETY: as above.
        let last = unsafe { &*last };
        assert_eq!(last.generation.load(Ordering::Relaxed), u64::MAX);
    }
}
