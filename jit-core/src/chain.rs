//! Chaining: the slots through which a translation's exit jumps straight into
//! the next translation, and the jump cache that exits with targets unknown at
//! translation time probe. Translated code reads both directly, so their layouts
//! are fixed (`#[repr(C)]`) and their addresses never move while code that names
//! them exists.

use crate::BlockFn;

/// Where a block exit with a known target jumps to, filled by the dispatch loop.
#[repr(C)]
#[derive(Debug)]
pub struct ChainSlot {
    /// Entry of the target block.
    pub entry: *const u8,
    /// The cache's chain generation when `entry` was stored; the slot is followed
    /// only while it matches.
    pub generation: u64,
}

// SAFETY: plain data (an address of immutable machine code and a counter) read
// by translated code run by the engine's owner.
unsafe impl Send for ChainSlot {}

const EMPTY_SLOT: ChainSlot = ChainSlot {
    entry: std::ptr::null(),
    generation: u64::MAX,
};

/// Chain slots allocated at a time (few chunks keep the ownership check cheap).
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
        let slot = &chunk[self.used] as *const ChainSlot;
        self.used += 1;
        slot
    }

    /// Points the slot at address `slot` at `entry`, if it is one of ours (an
    /// address from older, freed slots is ignored).
    pub(crate) fn link(&mut self, slot: usize, entry: BlockFn, generation: u64) {
        for chunk in &mut self.chunks {
            let start = chunk.as_ptr() as usize;
            let index = slot.wrapping_sub(start) / size_of::<ChainSlot>();
            if slot >= start && index < SLOT_CHUNK {
                chunk[index] = ChainSlot {
                    entry: entry.0,
                    generation,
                };
                return;
            }
        }
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
    fn slots_keep_their_addresses_and_link_only_their_own() {
        let mut slots = ChainSlots::default();
        let first = slots.alloc();
        let many: Vec<_> = (0..SLOT_CHUNK + 10).map(|_| slots.alloc()).collect();
        assert!(many.iter().all(|&slot| slot != first));
        let code = [0u8; 4];
        slots.link(first as usize, BlockFn(code.as_ptr()), 7);
        // SAFETY: `first` points into a chunk `slots` still owns.
        let linked = unsafe { &*first };
        assert_eq!((linked.entry, linked.generation), (code.as_ptr(), 7));
        // A stranger's address (here a local) is not written through.
        let stranger = ChainSlot {
            entry: std::ptr::null(),
            generation: 1,
        };
        slots.link(&raw const stranger as usize, BlockFn(code.as_ptr()), 9);
        assert_eq!(stranger.generation, 1);
        let last = *many.last().expect("slots were made");
        slots.link(last as usize, BlockFn(code.as_ptr()), 3);
        // SAFETY: as above.
        assert_eq!(unsafe { &*last }.generation, 3);
    }
}
