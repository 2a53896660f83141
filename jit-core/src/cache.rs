//! The translation cache: which translations exist, for which guest code, and
//! when they must go.
//!
//! A translation is keyed by its entry's virtual pc and the physical page its
//! code came from, so a page mapped at two addresses, or an address mapped to a
//! new page, never runs the wrong code. Each translation remembers the bytes it
//! was made from, page by page, so stores into a page drop only the
//! translations whose code they overlap, and after an instruction-cache fence
//! translations are checked against memory before they run again.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::chain::{EMPTY_JUMP, JUMP_CACHE, JumpEntry};
use crate::{BlockFn, JitStats};

/// Translations kept before the code memory is thrown away and started afresh.
const MAX_BLOCKS: usize = 32 * 1024;

/// Bytes in a page, the unit of invalidation.
const PAGE_BITS: u32 = 12;

/// Entries of the direct-mapped heat cache in front of the heat map.
const HEAT_CACHE: usize = 2048;

/// Code on its way to the translation threshold, counted without a hash-map
/// probe: most visits to cold code are repeats of a few thousand blocks, while
/// the map holds every block ever run (hundreds of thousands in a Linux boot,
/// so its probes miss the host's caches).
#[derive(Clone, Copy, Debug)]
struct HeatEntry {
    key: BlockKey,
    /// Visits so far (the key is neither translated nor untranslatable).
    count: u32,
}

const NO_HEAT: HeatEntry = HeatEntry {
    key: BlockKey {
        pc: u64::MAX,
        page: u64::MAX,
    },
    count: 0,
};

/// Key of a translation: the virtual pc of its entry and the physical page
/// number of its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    /// Virtual address of the entry.
    pub pc: u64,
    /// Physical page number (RAM offset >> 12) of the entry's code.
    pub page: u64,
}

/// The code a translation was made from in one page: to re-validate it after a
/// fence, to drop it when a store hits it, and to find it from a breakpoint.
#[derive(Debug)]
pub struct CodeSpan {
    /// The virtual address of the first byte (a translation may hold code
    /// before its entry, a loop's head for example).
    pub pc: u64,
    /// Where those bytes are in guest RAM (offset from its base).
    pub ram_off: u64,
    /// The bytes as they were translated.
    pub bytes: Box<[u8]>,
}

impl CodeSpan {
    fn covers(&self, pc: u64) -> bool {
        self.pc <= pc && pc < self.pc.wrapping_add(self.bytes.len() as u64)
    }
}

/// A translation and what it was made from.
#[derive(Debug)]
struct CompiledBlock {
    entry: BlockFn,
    spans: Vec<CodeSpan>,
    /// The epoch in which the code bytes were last known to match RAM.
    epoch: u64,
}

/// A translation's place in one page, for invalidating only what a store hits.
#[derive(Clone, Copy, Debug)]
struct PlacedBlock {
    key: BlockKey,
    /// Byte range of its code within the page, `[start, end)`.
    start: u64,
    end: u64,
}

/// What [`CodeCache::lookup`] found for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A current translation.
    Found(BlockFn),
    /// None yet, and the code has not run often enough to be worth one.
    Cold,
    /// None yet, and the code is now hot: translate it and
    /// [`CodeCache::insert`] the result (or mark it untranslatable).
    Hot,
    /// The code cannot be translated; interpret it.
    Untranslatable,
}

/// The translations of one engine, their jump cache and the generation and
/// epoch counters translated code checks.
pub struct CodeCache {
    blocks: HashMap<BlockKey, CompiledBlock>,
    /// Recently run translations by pc, so most dispatches skip the hash map.
    /// Translated code probes it for indirect jumps.
    jump_cache: Box<[JumpEntry; JUMP_CACHE]>,
    /// Low pc bits that are always zero for an instruction start (1 on RISC-V
    /// with compressed instructions, 0 on x86): not used to index the jump
    /// cache.
    pc_shift: u32,
    /// Bumped by instruction-cache fences: translations from an older epoch are
    /// checked against RAM before they run again (memory written by devices is
    /// not tracked per store).
    epoch: u64,
    /// Bumped whenever a translation is dropped or must be revalidated: chain
    /// slots from an older generation are not followed.
    chain_generation: u64,
    /// Bumped when translations go for reasons other than their bytes
    /// changing (everything dropped, a breakpoint): a translation compiled on
    /// another thread from before is not taken in.
    era: u64,
    by_page: HashMap<u64, Vec<PlacedBlock>>,
    /// Visits of code not translated yet: the recent ones in `heat_cache`, the
    /// rest in `heat` (a key is in at most one of them).
    heat_cache: Box<[HeatEntry; HEAT_CACHE]>,
    heat: HashMap<BlockKey, u32>,
    untranslatable: HashSet<BlockKey>,
    threshold: u32,
    /// Statistics, which the translator and dispatch loop add to.
    pub stats: JitStats,
}

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCache")
            .field("blocks", &self.blocks.len())
            .field("epoch", &self.epoch)
            .field("chain_generation", &self.chain_generation)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl CodeCache {
    /// An empty cache that wants code translated once it has been reached
    /// `threshold` times; instruction starts have their low `pc_shift` bits
    /// clear.
    pub fn new(threshold: u32, pc_shift: u32) -> CodeCache {
        CodeCache {
            blocks: HashMap::default(),
            jump_cache: Box::new([EMPTY_JUMP; JUMP_CACHE]),
            pc_shift,
            epoch: 0,
            chain_generation: 0,
            era: 0,
            by_page: HashMap::default(),
            heat_cache: Box::new([NO_HEAT; HEAT_CACHE]),
            heat: HashMap::default(),
            untranslatable: HashSet::default(),
            threshold: threshold.max(1),
            stats: JitStats::default(),
        }
    }

    /// The jump-cache index of `pc`. Translated code computes the same:
    /// `(pc >> pc_shift) & (JUMP_CACHE - 1)`.
    pub fn jump_index(&self, pc: u64) -> usize {
        ((pc >> self.pc_shift) as usize) & (JUMP_CACHE - 1)
    }

    /// See [`CodeCache::jump_index`].
    pub fn pc_shift(&self) -> u32 {
        self.pc_shift
    }

    /// Where the jump cache is, for translated code to probe.
    pub fn jump_cache_address(&self) -> *const JumpEntry {
        self.jump_cache.as_ptr()
    }

    /// Where the epoch is, for translated code to compare jump-cache entries
    /// with. It stays put as long as the cache.
    pub fn epoch_address(&self) -> *const u64 {
        &raw const self.epoch
    }

    /// Where the chain generation is, for translated code to compare chain
    /// slots with. It stays put as long as the cache.
    pub fn generation_address(&self) -> *const u64 {
        &raw const self.chain_generation
    }

    /// See the `era` field.
    pub fn era(&self) -> u64 {
        self.era
    }

    /// The current chain generation.
    pub fn chain_generation(&self) -> u64 {
        self.chain_generation
    }

    /// The translation for `key` if the jump cache holds a current one: what a
    /// translation's exit may chain to without the dispatch loop.
    pub fn cached(&self, key: BlockKey) -> Option<BlockFn> {
        let entry = &self.jump_cache[self.jump_index(key.pc)];
        (entry.pc == key.pc && entry.ram_page == key.page && entry.epoch == self.epoch)
            .then_some(BlockFn(entry.entry))
    }

    /// Finds the translation for `key`, checking one made before the last
    /// fence against RAM with `read_ram(ram_off, buf)` (false when it cannot
    /// read), and counts the visit toward the translation threshold.
    pub(crate) fn lookup(
        &mut self,
        key: BlockKey,
        read_ram: impl Fn(u64, &mut [u8]) -> bool,
    ) -> Lookup {
        if let Some(entry) = self.cached(key) {
            return Lookup::Found(entry);
        }
        let warm = self.heat_index(key);
        if self.heat_cache[warm].key == key {
            // Counting: neither translated nor untranslatable.
            let entry = &mut self.heat_cache[warm];
            entry.count += 1;
            if entry.count < self.threshold {
                return Lookup::Cold;
            }
            *entry = NO_HEAT;
            return Lookup::Hot;
        }
        let slot = self.jump_index(key.pc);
        if let Some(block) = self.blocks.get_mut(&key) {
            let current = block.epoch == self.epoch || bytes_unchanged(&block.spans, read_ram);
            if current {
                block.epoch = self.epoch;
                self.jump_cache[slot] = JumpEntry {
                    pc: key.pc,
                    ram_page: key.page,
                    epoch: self.epoch,
                    entry: block.entry.0,
                };
                return Lookup::Found(block.entry);
            }
            self.drop_blocks(&[key]);
        }
        if self.untranslatable.contains(&key) {
            return Lookup::Untranslatable;
        }
        let count = self.heat.remove(&key).unwrap_or(0) + 1;
        if count >= self.threshold {
            return Lookup::Hot;
        }
        // Recent visits are counted in the heat cache; the one it evicts goes
        // back to the map.
        let evicted = std::mem::replace(&mut self.heat_cache[warm], HeatEntry { key, count });
        if evicted.count > 0 {
            self.heat.insert(evicted.key, evicted.count);
        }
        Lookup::Cold
    }

    fn heat_index(&self, key: BlockKey) -> usize {
        ((key.pc >> self.pc_shift) as usize ^ (key.page as usize).wrapping_mul(0x9e37))
            & (HEAT_CACHE - 1)
    }

    /// Forgets the visits counted for `key`.
    fn forget_heat(&mut self, key: BlockKey) {
        let warm = self.heat_index(key);
        if self.heat_cache[warm].key == key {
            self.heat_cache[warm] = NO_HEAT;
        }
        self.heat.remove(&key);
    }

    /// Whether the code memory should be flushed before the next translation.
    pub fn is_full(&self) -> bool {
        self.blocks.len() >= MAX_BLOCKS
    }

    /// Records the translation of `key`, made from `spans`.
    pub fn insert(&mut self, key: BlockKey, entry: BlockFn, spans: Vec<CodeSpan>) {
        for span in &spans {
            let start = span.ram_off & ((1 << PAGE_BITS) - 1);
            self.by_page
                .entry(span.ram_off >> PAGE_BITS)
                .or_default()
                .push(PlacedBlock {
                    key,
                    start,
                    end: start + span.bytes.len() as u64,
                });
        }
        let epoch = self.epoch;
        self.blocks.insert(
            key,
            CompiledBlock {
                entry,
                spans,
                epoch,
            },
        );
        self.forget_heat(key);
    }

    /// Whether some translation was made from RAM page number `page`.
    pub fn holds_code_in(&self, page: u64) -> bool {
        self.by_page.contains_key(&page)
    }

    /// Records that the code at `key` cannot be translated.
    pub fn mark_untranslatable(&mut self, key: BlockKey) {
        self.untranslatable.insert(key);
        self.forget_heat(key);
    }

    /// Drops the translations whose code overlaps a store of `len` bytes at RAM
    /// offset `ram_off` (within one page).
    pub fn invalidate_range(&mut self, ram_off: u64, len: u64) {
        let page = ram_off >> PAGE_BITS;
        let Some(placed) = self.by_page.get_mut(&page) else {
            return;
        };
        let start = ram_off & ((1 << PAGE_BITS) - 1);
        let end = start + len;
        let mut dropped = Vec::new();
        placed.retain(|p| {
            let overlaps = p.start < end && start < p.end;
            if overlaps {
                dropped.push(p.key);
            }
            !overlaps
        });
        if placed.is_empty() {
            self.by_page.remove(&page);
        }
        for key in &dropped {
            self.untranslatable.remove(key);
        }
        self.drop_blocks(&dropped);
    }

    /// Drops the translations whose code covers virtual address `pc` (a new
    /// breakpoint): only those, whatever physical page they were made from.
    pub fn invalidate_pc(&mut self, pc: u64) {
        let covering: Vec<BlockKey> = self
            .blocks
            .iter()
            .filter(|(_, block)| block.spans.iter().any(|span| span.covers(pc)))
            .map(|(key, _)| *key)
            .collect();
        self.era += 1;
        self.drop_blocks(&covering);
    }

    /// After an instruction-cache fence: every translation must match RAM again
    /// before it next runs.
    pub fn revalidate_all(&mut self) {
        self.epoch += 1;
        self.chain_generation += 1;
    }

    /// Drops every translation (reset, a new memory mode, full code memory).
    pub fn invalidate_all(&mut self) {
        self.era += 1;
        self.jump_cache.fill(EMPTY_JUMP);
        self.chain_generation += 1;
        self.stats.invalidations += self.blocks.len() as u64;
        self.blocks.clear();
        self.by_page.clear();
        self.heat_cache.fill(NO_HEAT);
        self.heat.clear();
        self.untranslatable.clear();
    }

    /// Drops the translations of `keys`, unlinking every chain at once. Their
    /// page placements may stay behind: a store that finds one drops nothing.
    fn drop_blocks(&mut self, keys: &[BlockKey]) {
        if keys.is_empty() {
            return;
        }
        for key in keys {
            if self.blocks.remove(key).is_some() {
                self.stats.invalidations += 1;
            }
            self.forget_heat(*key);
        }
        self.jump_cache.fill(EMPTY_JUMP);
        self.chain_generation += 1;
    }
}

/// Whether guest RAM, read with `read_ram(ram_off, buf)`, still holds the
/// bytes of `spans`.
pub(crate) fn bytes_unchanged(
    spans: &[CodeSpan],
    read_ram: impl Fn(u64, &mut [u8]) -> bool,
) -> bool {
    spans.iter().all(|span| {
        let mut now = vec![0u8; span.bytes.len()];
        read_ram(span.ram_off, &mut now) && *now == *span.bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn span(pc: u64, ram_off: u64, len: usize) -> CodeSpan {
        CodeSpan {
            pc,
            ram_off,
            bytes: CODE[..len].into(),
        }
    }

    fn entry(n: usize) -> BlockFn {
        BlockFn(CODE[n..].as_ptr())
    }

    fn no_ram(_: u64, _: &mut [u8]) -> bool {
        false
    }

    #[test]
    fn code_is_translated_once_hot_and_then_found() {
        let mut cache = CodeCache::new(3, 1);
        let key = BlockKey {
            pc: 0x8000_1000,
            page: 0x80001,
        };
        assert_eq!(cache.lookup(key, no_ram), Lookup::Cold);
        assert_eq!(cache.lookup(key, no_ram), Lookup::Cold);
        assert_eq!(cache.lookup(key, no_ram), Lookup::Hot);
        cache.insert(key, entry(0), vec![span(key.pc, 0x1000, 8)]);
        assert_eq!(cache.cached(key), None, "not run yet");
        assert_eq!(cache.lookup(key, no_ram), Lookup::Found(entry(0)));
        assert_eq!(cache.cached(key), Some(entry(0)));
        // The same pc from another physical page is another translation.
        let other = BlockKey { page: 7, ..key };
        assert_eq!(cache.cached(other), None);
        assert_eq!(cache.lookup(other, no_ram), Lookup::Cold);
    }

    #[test]
    fn visits_are_counted_exactly_when_keys_share_a_heat_cache_entry() {
        let mut cache = CodeCache::new(4, 1);
        // Keys that land on one heat-cache entry, visited in turn, evict each
        // other; each still becomes hot on exactly its fourth visit.
        let keys: Vec<BlockKey> = (0..3)
            .map(|n| BlockKey {
                pc: 0x1000 + n * 2 * HEAT_CACHE as u64,
                page: 1,
            })
            .collect();
        assert!(
            keys.iter()
                .all(|&k| cache.heat_index(k) == cache.heat_index(keys[0]))
        );
        for _ in 0..3 {
            for &key in &keys {
                assert_eq!(cache.lookup(key, no_ram), Lookup::Cold);
            }
        }
        for &key in &keys {
            assert_eq!(cache.lookup(key, no_ram), Lookup::Hot);
        }
        // A translation that goes starts counting afresh.
        cache.insert(keys[0], entry(0), vec![span(keys[0].pc, 0x1000, 4)]);
        cache.invalidate_range(0x1000, 2);
        for _ in 0..3 {
            assert_eq!(cache.lookup(keys[0], no_ram), Lookup::Cold);
        }
        assert_eq!(cache.lookup(keys[0], no_ram), Lookup::Hot);
    }

    #[test]
    fn a_store_drops_only_the_translations_it_overlaps() {
        let mut cache = CodeCache::new(1, 1);
        let low = BlockKey {
            pc: 0x1000,
            page: 1,
        };
        let high = BlockKey {
            pc: 0x1010,
            page: 1,
        };
        cache.insert(low, entry(0), vec![span(0x1000, 0x1000, 8)]);
        cache.insert(high, entry(1), vec![span(0x1010, 0x1010, 8)]);
        let generation = cache.chain_generation();
        cache.invalidate_range(0x1008, 8);
        assert_eq!(cache.chain_generation(), generation, "nothing overlapped");
        cache.invalidate_range(0x1014, 2);
        assert!(cache.chain_generation() > generation, "chains unlinked");
        assert_eq!(cache.lookup(low, no_ram), Lookup::Found(entry(0)));
        assert_eq!(cache.lookup(high, no_ram), Lookup::Hot);
        assert_eq!(cache.stats.invalidations, 1);
    }

    #[test]
    fn after_a_fence_a_translation_runs_only_if_its_bytes_are_unchanged() {
        let mut cache = CodeCache::new(1, 1);
        let key = BlockKey {
            pc: 0x2000,
            page: 2,
        };
        cache.insert(key, entry(0), vec![span(0x2000, 0x2000, 4)]);
        cache.revalidate_all();
        let same = |off: u64, buf: &mut [u8]| {
            assert_eq!(off, 0x2000);
            buf.copy_from_slice(&CODE[..buf.len()]);
            true
        };
        assert_eq!(cache.lookup(key, same), Lookup::Found(entry(0)));
        cache.revalidate_all();
        let changed = |_: u64, buf: &mut [u8]| {
            buf.fill(0);
            true
        };
        assert_eq!(cache.lookup(key, changed), Lookup::Hot);
        assert_eq!(cache.stats.invalidations, 1);
    }

    #[test]
    fn a_breakpoint_drops_the_translations_covering_its_pc() {
        let mut cache = CodeCache::new(1, 0);
        let key = BlockKey {
            pc: 0x3004,
            page: 3,
        };
        // The translation holds a loop head before its entry.
        cache.insert(key, entry(0), vec![span(0x3000, 0x3000, 8)]);
        cache.invalidate_pc(0x3008);
        assert_eq!(cache.lookup(key, no_ram), Lookup::Found(entry(0)));
        cache.invalidate_pc(0x3000);
        assert_eq!(cache.lookup(key, no_ram), Lookup::Hot);
    }

    #[test]
    fn untranslatable_code_is_remembered_until_it_is_written() {
        let mut cache = CodeCache::new(1, 1);
        let key = BlockKey {
            pc: 0x4000,
            page: 4,
        };
        cache.mark_untranslatable(key);
        assert_eq!(cache.lookup(key, no_ram), Lookup::Untranslatable);
        // Only stores into translated code are tracked by page; a full
        // invalidation forgets the mark.
        cache.invalidate_all();
        assert_eq!(cache.lookup(key, no_ram), Lookup::Hot);
    }

    #[test]
    fn the_jump_index_ignores_the_always_clear_pc_bits() {
        let riscv = CodeCache::new(1, 1);
        let x86 = CodeCache::new(1, 0);
        assert_eq!(riscv.jump_index(0x1002), 0x801);
        assert_eq!(x86.jump_index(0x1001), 0x1);
        assert_eq!(riscv.pc_shift(), 1);
    }
}
