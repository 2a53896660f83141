//! The ISA-neutral half of Turing's translators.
//!
//! A translator for one ISA (RISC-V's lives in `cpu-riscv/src/jit/`) decides what
//! guest code becomes one translation and emits its Cranelift IR; everything
//! else is here, shared by every ISA:
//! - [`CodeModule`]: code memory (one Cranelift module), the trampoline Rust
//!   enters translations through, data the code refers to by address, profiler
//!   maps and code dumps (`TURING_PERF_MAP`, `TURING_JIT_LISTING`,
//!   `TURING_JIT_CODE`);
//! - [`CodeCache`]: translations keyed by virtual pc and physical page, the
//!   translation threshold, the jump cache, invalidation by physical page, by
//!   breakpoint and by instruction-cache fence, and the chain generation;
//! - [`ChainSlot`] and [`JumpEntry`]: the layouts translated code reads to jump
//!   from one translation into the next without the dispatch loop;
//! - [`JitStats`]: what `--stats` reports.
//!
//! [`Engine`] puts a code module and a cache together, as one CPU's translator
//! uses them.

mod backend;
mod cache;
mod chain;
mod profile;
mod stats;

pub use backend::{BlockFn, CodeModule, Trampoline, block_signature};
pub use cache::{BlockKey, CodeCache, CodeSpan, Lookup};
pub use chain::{ChainSlot, ChainSlots, JUMP_CACHE, JumpEntry};
pub use stats::JitStats;

/// One CPU's translator state: its code memory and its translation cache.
#[derive(Debug)]
pub struct Engine {
    /// Code memory and the Cranelift state to fill it.
    pub code: CodeModule,
    /// The translations in it.
    pub cache: CodeCache,
}

impl Engine {
    /// An engine that translates code reached `threshold` times, for an ISA
    /// whose instruction starts have their low `pc_shift` bits clear.
    pub fn new(threshold: u32, pc_shift: u32) -> Result<Engine, String> {
        Ok(Engine {
            code: CodeModule::new()?,
            cache: CodeCache::new(threshold, pc_shift),
        })
    }

    /// Points the chain slot at address `slot`, left by an exit taken in chain
    /// generation `generation`, at `block`. Nothing happens if a translation
    /// was dropped since (the slot may belong to freed code).
    pub fn link_chain(&mut self, slot: usize, generation: u64, block: BlockFn) {
        if generation == self.cache.chain_generation() {
            self.code.link(slot, block, generation);
        }
    }

    /// Makes room before a translation when the cache is full or the code
    /// memory was lost: drops every translation and starts on fresh code
    /// memory.
    ///
    /// # Safety
    /// No translated code of this engine may be running (call it from the
    /// dispatch loop, outside translations).
    pub unsafe fn make_room(&mut self) {
        if !self.cache.is_full() && self.code.trampoline().is_some() {
            return;
        }
        // Every translation and jump-cache entry goes and the chain generation
        // moves on, so no pointer into the old code is followed again.
        self.cache.invalidate_all();
        // SAFETY: the caller runs no translated code; the cache no longer
        // hands out entries into this module and chain slots of its generation
        // are never followed.
        unsafe { self.code.flush() };
        self.cache.stats.cache_flushes += 1;
    }
}
