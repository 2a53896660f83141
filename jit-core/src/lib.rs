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

mod arena;
mod backend;
mod cache;
mod chain;
mod profile;
mod stats;
mod worker;

use rustc_hash::FxHashSet as HashSet;

pub use arena::CodeFill;
pub use backend::{BlockFn, CodeModule, Trampoline, block_signature};
pub use cache::{BlockKey, CodeCache, CodeSpan, Lookup};
pub use chain::{ChainSlot, ChainSlots, JUMP_CACHE, JumpEntry};
pub use stats::JitStats;
pub use worker::{TranslateFn, Translation};

use worker::CompileWorker;

/// Most translations waiting for or in the compile thread. More hot code
/// waits (it stays cold, and asks again once hot again): a long queue would
/// delay code that turns hot later (a job started just after boot, behind the
/// boot's backlog), and on a busy host its thread competes with the CPUs'.
const MAX_IN_FLIGHT: usize = 32;

/// Where an engine's code is compiled.
#[derive(Debug)]
enum Compiler {
    /// On the CPU's thread, when the translation is asked for: runs repeat
    /// exactly (deterministic mode, tests, user mode).
    Here(Box<CodeModule>),
    /// On a compile thread, while the CPU interprets.
    Background(CompileWorker),
}

/// One CPU's translator state: its code memory and its translation cache.
#[derive(Debug)]
pub struct Engine {
    compiler: Compiler,
    /// The translations in the code memory.
    pub cache: CodeCache,
    /// How full the code memory is (filled here or on the compile thread).
    code_fill: CodeFill,
    /// Keys sent to the compile thread and not back yet.
    in_flight: HashSet<BlockKey>,
}

impl Engine {
    /// An engine that translates code reached `threshold` times, for an ISA
    /// whose instruction starts have their low `pc_shift` bits clear. With
    /// `background`, translations are compiled on a thread of their own.
    pub fn new(threshold: u32, pc_shift: u32, background: bool) -> Result<Engine, String> {
        let code = CodeModule::new()?;
        let code_fill = code.fill();
        let compiler = if background {
            Compiler::Background(CompileWorker::start(code)?)
        } else {
            Compiler::Here(Box::new(code))
        };
        let mut cache = CodeCache::new(threshold, pc_shift);
        cache.stats.compiled_in_background = background;
        Ok(Engine {
            compiler,
            cache,
            code_fill,
            in_flight: HashSet::default(),
        })
    }

    /// In the child of a `fork`: the compile thread stayed in the parent, so
    /// translations are compiled here from now on, into fresh code memory. The
    /// inherited translations stay mapped and valid, and stay in use.
    pub fn after_fork(&mut self) -> Result<(), String> {
        if matches!(self.compiler, Compiler::Background(_)) {
            let code = CodeModule::new()?;
            self.code_fill = code.fill();
            let parents = std::mem::replace(&mut self.compiler, Compiler::Here(Box::new(code)));
            // Not dropped: that would wait for the thread, which is not in this
            // process, and touch its queues, which it may have left locked.
            std::mem::forget(parents);
            self.in_flight.clear();
            self.cache.stats.compiled_in_background = false;
        }
        Ok(())
    }

    /// The function through which Rust enters translations, while there is
    /// code memory.
    pub fn trampoline(&self) -> Option<Trampoline> {
        match &self.compiler {
            Compiler::Here(code) => code.trampoline(),
            Compiler::Background(worker) => worker.trampoline(),
        }
    }

    /// Finds the translation for `key` (virtual pc, physical page), checking
    /// one made before the last instruction-cache fence against RAM with
    /// `read_ram(ram_off, buf)` (false when it cannot read), and counts the
    /// visit toward the translation threshold. Takes in what the compile
    /// thread finished first; code on its way there stays cold until it
    /// arrives.
    pub fn lookup(&mut self, key: BlockKey, read_ram: impl Fn(u64, &mut [u8]) -> bool) -> Lookup {
        if !self.in_flight.is_empty() {
            self.collect(&read_ram);
        }
        match self.cache.lookup(key, &read_ram) {
            Lookup::Hot if self.in_flight.contains(&key) => Lookup::Cold,
            found => found,
        }
    }

    /// Whether this engine holds, or is compiling, code from RAM page number
    /// `page`.
    pub fn holds_code_in(&self, page: u64) -> bool {
        !self.in_flight.is_empty() || self.cache.holds_code_in(page)
    }

    /// Translates the hot code `what` with `emit`: here and now (returning
    /// the entry), or on the compile thread (returning `None`; a later
    /// [`Engine::lookup`] finds it).
    ///
    /// # Safety
    /// No translated code of this engine may be running: call it from the
    /// dispatch loop, outside translations (a full cache is flushed first).
    pub unsafe fn translate(&mut self, what: Translation, emit: TranslateFn) -> Option<BlockFn> {
        // SAFETY: passed on from the caller.
        unsafe { self.make_room() };
        match &mut self.compiler {
            Compiler::Here(code) => {
                let started = stats::thread_cpu_time();
                let entry = emit(code);
                self.cache.stats.compile_time += stats::thread_cpu_time() - started;
                take_in(&mut self.cache, what, entry)
            }
            Compiler::Background(_) if self.in_flight.len() >= MAX_IN_FLIGHT => {
                self.cache.stats.deferred += 1;
                None
            }
            Compiler::Background(worker) => {
                let key = what.key;
                if worker.send(what, emit, self.cache.era()) {
                    self.in_flight.insert(key);
                } else {
                    self.cache.mark_untranslatable(key);
                }
                None
            }
        }
    }

    /// Takes in the translations the compile thread finished. One whose code
    /// changed since it was sent, or made before the cache was emptied, goes.
    fn collect(&mut self, read_ram: &impl Fn(u64, &mut [u8]) -> bool) {
        let Compiler::Background(worker) = &mut self.compiler else {
            return;
        };
        while let Some(done) = worker.try_finished() {
            self.in_flight.remove(&done.what.key);
            self.cache.stats.compile_time += done.compile_time;
            if done.era != self.cache.era() || !cache::bytes_unchanged(&done.what.spans, read_ram) {
                self.cache.stats.discarded += 1;
                continue;
            }
            take_in(&mut self.cache, done.what, done.entry);
        }
    }

    /// Points the chain slot at address `slot`, left by an exit taken in chain
    /// generation `generation`, at `block`. Nothing happens if a translation
    /// was dropped since (the slot may belong to freed code).
    pub fn link_chain(&mut self, slot: usize, generation: u64, block: BlockFn) {
        if slot == 0 || generation != self.cache.chain_generation() {
            return;
        }
        // SAFETY: `slot` is the address of a chain slot that translated code of
        // the current chain generation handed the dispatch loop. Code memory is
        // freed only after the generation moves on, so the slot is still alive,
        // and slots are only ever accessed through shared references (their
        // fields are atomics).
        let slot = unsafe { &*(slot as *const ChainSlot) };
        slot.link(block, generation);
    }

    /// Makes room before a translation when the cache is full or the code
    /// memory was lost: drops every translation and starts on fresh code
    /// memory.
    ///
    /// # Safety
    /// No translated code of this engine may be running (call it from the
    /// dispatch loop, outside translations).
    unsafe fn make_room(&mut self) {
        if !self.cache.is_full() && !self.code_fill.nearly_full() && self.trampoline().is_some() {
            return;
        }
        // Every translation and jump-cache entry goes and the chain generation
        // moves on, so no pointer into the old code is followed again.
        self.cache.invalidate_all();
        self.in_flight.clear();
        // SAFETY: the caller runs no translated code; the cache no longer
        // hands out entries into the old code memory, chain slots of its
        // generation are never followed, and the worker drops translations
        // made before the flush.
        unsafe {
            match &mut self.compiler {
                Compiler::Here(code) => code.flush(),
                Compiler::Background(worker) => worker.flush(),
            }
        }
        self.cache.stats.cache_flushes += 1;
    }
}

/// Records a finished translation (or that there can be none) in `cache`.
fn take_in(
    cache: &mut CodeCache,
    what: Translation,
    entry: Result<BlockFn, String>,
) -> Option<BlockFn> {
    match entry {
        Ok(entry) => {
            cache.stats.blocks_compiled += 1;
            cache.stats.instructions_compiled += what.instructions;
            cache.insert(what.key, entry, what.spans);
            Some(entry)
        }
        Err(_) => {
            cache.mark_untranslatable(what.key);
            None
        }
    }
}
