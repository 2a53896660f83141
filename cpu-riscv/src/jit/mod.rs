//! The Cranelift translator: hot guest code becomes host code.
//!
//! A basic block is a run of guest instructions within one page, ending at the
//! first branch, jump or system instruction (included), or before the first
//! instruction that is not decoded (which the interpreter then executes and traps
//! on). A translation covers a region: the basic block at its entry and those on
//! loops back to it through direct jumps and branches within the same page, as one
//! Cranelift function, so a loop's registers stay in host registers across its
//! blocks. Integer, memory and branch instructions are translated inline; FP,
//! atomic and system instructions call the interpreter's `execute` for that one
//! instruction, with the registers written back around the call. Guest registers
//! live in Cranelift variables and are written back at every exit. Loads and
//! stores use the hart's software TLB inline (one compare of tag and alignment,
//! host pointer add); misses, unaligned accesses, MMIO and faults call back into
//! the interpreter's memory path, and a fault leaves the exact pc and registers of
//! the faulting instruction.
//!
//! Chaining: an exit with a known target in the same page jumps straight into the
//! target's translation (a Cranelift tail call through a chain slot); indirect and
//! cross-page exits probe the fetch and jump caches inline. Both go on while
//! `instret` is below the hart's chain limit, which backward jumps inside a region
//! check too, so hot code runs without returning to the dispatch loop yet
//! interrupts are seen in time. A slot is filled by the dispatch loop the first
//! time its exit is taken and is trusted only while its generation matches the
//! engine's; every invalidation bumps the generation, which unlinks all chains at
//! once.
//!
//! Tiering: a region is compiled once its entry has been reached `threshold`
//! times; until then the interpreter runs it. Translations are keyed by virtual pc
//! and physical page, and stores into a page holding translated code drop those
//! whose code they overlap.

mod host_fma;
mod profile;
mod translate;

use emu_core::GuestPhysAddr;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Module, default_libcall_names};

use crate::decode::{Insn, Op, decode, insn_len};
use crate::hart::Hart;
use crate::trap::Trap;

/// Longest basic block, in guest instructions.
const MAX_BLOCK: usize = 64;
/// Most guest instructions in one translation (a region of basic blocks).
const MAX_REGION: usize = 256;
/// Most basic blocks in one translation.
const MAX_REGION_BLOCKS: usize = 24;
/// Compiled blocks kept before the code cache is thrown away and started afresh.
const MAX_BLOCKS: usize = 32 * 1024;

/// The entry of a translated block. Blocks use Cranelift's tail calling convention
/// (so they can chain), so Rust calls them through [`Trampoline`]. A block returns
/// 0 (continue at `state.pc`) or 1 (a fault is pending in `Hart::jit_trap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockFn(*const u8);

// SAFETY: a `BlockFn` is the address of immutable machine code; the code is only
// ever called by the hart owning the engine, on whatever thread runs that hart.
unsafe impl Send for BlockFn {}

/// Host-convention function that calls a block: `(hart, block entry) -> status`.
pub(crate) type Trampoline = unsafe extern "C" fn(*mut Hart, *const u8) -> u64;

/// Where a block exit with a known target jumps to, filled by the dispatch loop.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ChainSlot {
    /// Entry of the target block.
    entry: *const u8,
    /// The engine's chain generation when `entry` was stored.
    generation: u64,
}

// SAFETY: as for `BlockFn`: plain data read by translated code of the same hart.
unsafe impl Send for ChainSlot {}

const EMPTY_SLOT: ChainSlot = ChainSlot {
    entry: std::ptr::null(),
    generation: u64::MAX,
};

/// Chain slots allocated at a time (few chunks keep the ownership check cheap).
const SLOT_CHUNK: usize = 4096;

/// The chain slots of a module's code, in chunks that never move.
pub(crate) struct ChainSlots {
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
    pub(crate) fn alloc(&mut self) -> *const ChainSlot {
        if self.used == SLOT_CHUNK {
            self.chunks.push(Box::new([EMPTY_SLOT; SLOT_CHUNK]));
            self.used = 0;
        }
        let chunk = self.chunks.last().expect("a chunk was just pushed");
        let slot = &chunk[self.used] as *const ChainSlot;
        self.used += 1;
        slot
    }

    /// Points the slot at address `slot` at `entry`, if it is one of ours.
    fn link(&mut self, slot: usize, entry: *const u8, generation: u64) {
        for chunk in &mut self.chunks {
            let start = chunk.as_ptr() as usize;
            let index = slot.wrapping_sub(start) / size_of::<ChainSlot>();
            if slot >= start && index < SLOT_CHUNK {
                chunk[index] = ChainSlot { entry, generation };
                return;
            }
        }
    }
}

/// Entries of the direct-mapped jump cache in front of the block map.
const JUMP_CACHE: usize = 4096;

/// One jump-cache entry: a recently run block, valid for one fence.i epoch.
/// Translated code probes the cache for indirect jumps, so the layout is fixed.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct JumpEntry {
    /// The block's pc (odd, so never a pc, when empty).
    pc: u64,
    /// The RAM page number of its code.
    ram_page: u64,
    epoch: u64,
    /// The block's entry (never null in a filled entry).
    entry: *const u8,
}

// SAFETY: as for `BlockFn`, whose address `entry` holds.
unsafe impl Send for JumpEntry {}

impl JumpEntry {
    fn get(&self, key: BlockKey, epoch: u64) -> Option<BlockFn> {
        (self.pc == key.0 && self.ram_page == key.1 && self.epoch == epoch)
            .then_some(BlockFn(self.entry))
    }
}

const EMPTY_JUMP: JumpEntry = JumpEntry {
    pc: u64::MAX,
    ram_page: u64::MAX,
    epoch: u64::MAX,
    entry: std::ptr::null(),
};

/// Key of a translation: virtual pc and the RAM page number of its code.
type BlockKey = (u64, u64);

/// A translated block and what it was translated from.
struct CompiledBlock {
    entry: BlockFn,
    /// The guest code the region was made from, one span per page.
    spans: Vec<CodeSpan>,
    /// The fence.i epoch in which the code bytes were last known to match RAM.
    epoch: u64,
}

/// The code a translation was made from in one page, to re-validate it after a
/// fence.i and to find it from a breakpoint.
#[derive(Debug)]
struct CodeSpan {
    /// The virtual address of the first byte (a region may hold code before its
    /// entry, a loop's head for example).
    pc: u64,
    /// Where those bytes are in RAM.
    ram_off: u64,
    bytes: Box<[u8]>,
}

impl CodeSpan {
    fn covers(&self, pc: u64) -> bool {
        self.pc <= pc && pc < self.pc.wrapping_add(self.bytes.len() as u64)
    }
}

/// What `region_blocks` found: the basic blocks, and for returns inside the
/// region the call's continuation, which the return checks for and then jumps
/// to inside the translation.
#[derive(Debug, Default)]
pub(super) struct Region {
    pub(super) blocks: Vec<Vec<(u64, Insn)>>,
    /// (pc of a `ret`, the continuation of the call the region entered its
    /// function by).
    pub(super) returns: Vec<(u64, u64)>,
}

/// A translation's place in its page, for invalidating only what a store hits.
#[derive(Clone, Copy, Debug)]
struct PlacedBlock {
    key: BlockKey,
    /// Byte range of the block's code within the page, `[start, end)`.
    start: u64,
    end: u64,
}

/// Counters reported by `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitStats {
    /// Blocks translated.
    pub blocks_compiled: u64,
    /// Guest instructions translated.
    pub instructions_compiled: u64,
    /// Time spent in Cranelift.
    pub compile_time: Duration,
    /// Blocks entered through translated code.
    pub blocks_run: u64,
    /// Blocks the interpreter ran (cold or untranslatable).
    pub blocks_interpreted: u64,
    /// Translations dropped by stores into their code or fence.i.
    pub invalidations: u64,
    /// Times the whole code cache was thrown away for being full.
    pub cache_flushes: u64,
    /// Jumps from one translated block straight into the next (no dispatch).
    pub chained: u64,
}

impl std::fmt::Display for JitStats {
    /// One line for `--stats`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_insn =
            self.compile_time.as_secs_f64() * 1e6 / self.instructions_compiled.max(1) as f64;
        write!(
            f,
            "jit: {} blocks ({} instructions) compiled in {:.3} s ({per_insn:.1} µs per guest instruction); {} blocks entered from dispatch and {} by chaining, {} interpreted; {} invalidations, {} cache flushes",
            self.blocks_compiled,
            self.instructions_compiled,
            self.compile_time.as_secs_f64(),
            self.blocks_run,
            self.chained,
            self.blocks_interpreted,
            self.invalidations,
            self.cache_flushes
        )
    }
}

impl std::ops::AddAssign for JitStats {
    fn add_assign(&mut self, other: JitStats) {
        self.blocks_compiled += other.blocks_compiled;
        self.instructions_compiled += other.instructions_compiled;
        self.compile_time += other.compile_time;
        self.blocks_run += other.blocks_run;
        self.blocks_interpreted += other.blocks_interpreted;
        self.invalidations += other.invalidations;
        self.cache_flushes += other.cache_flushes;
        self.chained += other.chained;
    }
}

/// The per-hart translator and code cache.
pub struct JitEngine {
    module: Option<JITModule>,
    /// Calls blocks from Rust; compiled into each module.
    trampoline: Option<Trampoline>,
    /// Decoded instructions that translated code hands to the interpreter, and the
    /// chain slots of its exits. Both are referenced by address from the code, so
    /// they live as long as the module, not as long as their block.
    insn_arena: Vec<Box<[Insn]>>,
    slots: ChainSlots,
    /// Bumped whenever a translation is dropped or must be revalidated: chain
    /// slots from an older generation are not followed.
    chain_generation: u64,
    ctx: cranelift_codegen::Context,
    fctx: cranelift_frontend::FunctionBuilderContext,
    blocks: HashMap<BlockKey, CompiledBlock>,
    /// Recently run blocks by pc, so most dispatches skip the hash map.
    jump_cache: Box<[JumpEntry; JUMP_CACHE]>,
    /// Bumped by fence.i: blocks from an older epoch are checked against RAM
    /// before they run again (memory written by devices is not tracked per store).
    epoch: u64,
    by_page: HashMap<u64, Vec<PlacedBlock>>,
    heat: HashMap<BlockKey, u32>,
    untranslatable: HashSet<BlockKey>,
    threshold: u32,
    /// Records translations for host profilers (`TURING_PERF_MAP`).
    profile: Option<profile::Profile>,
    /// Statistics.
    pub stats: JitStats,
}

impl std::fmt::Debug for JitEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitEngine")
            .field("blocks", &self.blocks.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn new_module() -> Result<JITModule, String> {
    let mut flags = settings::builder();
    // "speed" costs about 50% more compile time than "none" (37 against 25 µs per
    // guest instruction) and gives about 15% faster code; with tiering, the
    // faster code wins on long-running work and loses little on a Linux boot.
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    // The IR comes from one translator whose output the tests cover; checking
    // every function again costs about a tenth of compile time.
    flags
        .set("enable_verifier", "false")
        .map_err(|e| e.to_string())?;
    flags.set("is_pic", "false").map_err(|e| e.to_string())?;
    // Cranelift's x86-64 tail calls (block chaining) need frame pointers.
    flags
        .set("preserve_frame_pointers", "true")
        .map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("host not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    Ok(JITModule::new(JITBuilder::with_isa(
        isa,
        default_libcall_names(),
    )))
}

impl JitEngine {
    /// A translator compiling blocks entered `threshold` times.
    pub fn new(threshold: u32) -> Result<JitEngine, String> {
        let module = new_module()?;
        let ctx = module.make_context();
        let mut engine = JitEngine {
            module: Some(module),
            trampoline: None,
            insn_arena: Vec::new(),
            slots: ChainSlots::default(),
            chain_generation: 0,
            ctx,
            fctx: cranelift_frontend::FunctionBuilderContext::new(),
            blocks: HashMap::default(),
            jump_cache: Box::new([EMPTY_JUMP; JUMP_CACHE]),
            epoch: 0,
            by_page: HashMap::default(),
            heat: HashMap::default(),
            untranslatable: HashSet::default(),
            threshold: threshold.max(1),
            profile: profile::Profile::from_env(),
            stats: JitStats::default(),
        };
        engine.trampoline = Some(translate::compile_trampoline(&mut engine)?);
        Ok(engine)
    }

    /// Drops the translations whose code overlaps a store of `len` bytes at RAM
    /// offset `ram_off`.
    pub(crate) fn invalidate_range(&mut self, ram_off: u64, len: u64) {
        let page = ram_off >> 12;
        let Some(placed) = self.by_page.get_mut(&page) else {
            return;
        };
        let (start, end) = (ram_off & 0xfff, (ram_off & 0xfff) + len);
        let mut dropped = Vec::new();
        placed.retain(|p| {
            let overlaps = p.start < end && start < p.end;
            if overlaps {
                dropped.push(p.key);
            }
            !overlaps
        });
        if !dropped.is_empty() {
            self.jump_cache.fill(EMPTY_JUMP);
            self.chain_generation += 1;
        }
        for key in dropped {
            if self.blocks.remove(&key).is_some() {
                self.stats.invalidations += 1;
            }
            self.heat.remove(&key);
            self.untranslatable.remove(&key);
        }
    }

    /// Drops the translations whose code covers virtual address `pc` (a new
    /// breakpoint): only those, whatever physical page they were made from.
    pub(crate) fn invalidate_pc(&mut self, pc: u64) {
        let covering: Vec<BlockKey> = self
            .blocks
            .iter()
            .filter(|(_, block)| block.spans.iter().any(|span| span.covers(pc)))
            .map(|(key, _)| *key)
            .collect();
        if covering.is_empty() {
            return;
        }
        for key in covering {
            self.blocks.remove(&key);
            self.heat.remove(&key);
            self.stats.invalidations += 1;
        }
        self.jump_cache.fill(EMPTY_JUMP);
        self.chain_generation += 1;
    }

    /// After fence.i: every block must match RAM again before it next runs.
    pub(crate) fn revalidate_all(&mut self) {
        self.epoch += 1;
        self.chain_generation += 1;
    }

    /// Drops every translation (reset, full cache). The code memory is kept until
    /// the cache fills, since nothing can call into it any more.
    pub(crate) fn invalidate_all(&mut self) {
        self.jump_cache.fill(EMPTY_JUMP);
        self.chain_generation += 1;
        self.stats.invalidations += self.blocks.len() as u64;
        self.blocks.clear();
        self.by_page.clear();
        self.heat.clear();
        self.untranslatable.clear();
    }

    fn flush_cache(&mut self) {
        self.invalidate_all();
        if let Some(module) = self.module.take() {
            // SAFETY: no translated code is running (we are in the dispatch loop,
            // outside any block) and every pointer into the module was just dropped
            // from `blocks`, so nothing can call the freed code.
            unsafe { module.free_memory() };
        }
        self.trampoline = None;
        self.insn_arena.clear();
        self.slots = ChainSlots::default();
        self.module = new_module().ok();
        if self.module.is_some() {
            self.trampoline = translate::compile_trampoline(self).ok();
        }
        self.stats.cache_flushes += 1;
    }
}

/// Whether `op` ends a block in the interpreter (control transfer).
fn ends_block(op: Op) -> bool {
    matches!(
        op,
        Op::Jal | Op::Jalr | Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu
    )
}

impl Hart {
    /// Turns on the translator for this hart.
    pub fn enable_jit(&mut self, threshold: u32) -> Result<(), String> {
        self.jit = Some(Box::new(JitEngine::new(threshold)?));
        Ok(())
    }

    /// Translator statistics, when the JIT is on.
    pub fn jit_stats(&self) -> Option<JitStats> {
        self.jit.as_ref().map(|jit| JitStats {
            chained: self.chained,
            ..jit.stats
        })
    }

    /// Follows the user address space's choice between direct and checked
    /// memory access (it turns to checked once the guest handles its own
    /// faults): translations made for the other choice go.
    pub(crate) fn follow_direct_window(&mut self) {
        // Direct access needs virtual address = RAM offset over the whole window.
        let window = self
            .user_space
            .as_ref()
            .and_then(|space| space.direct_window())
            .filter(|&window| {
                window.is_power_of_two() && self.bus.ram_offset(GuestPhysAddr(0), window) == Some(0)
            });
        if window != self.direct_window {
            self.direct_window = window;
            if let Some(jit) = self.jit.as_mut() {
                jit.invalidate_all();
            }
        }
    }

    /// The dispatch loop: translated blocks when hot, the interpreter otherwise.
    pub(crate) fn run_jit(&mut self, budget: u64) -> crate::hart::RunExit {
        self.follow_direct_window();
        let control = self.bus.control().clone();
        let mut steps = 0u64;
        // (slot address, the pc it wants, chain generation) left by the last exit.
        let mut pending_link = (0usize, 0u64, u64::MAX);
        self.exit = None;
        self.irq_check = true;
        while steps < budget {
            if Self::code_was_written() {
                self.drop_written_code();
            }
            if self.irq_check || self.irq_changed() {
                self.irq_check = false;
                self.note_irq_epoch();
                self.drop_code_written_elsewhere();
                self.take_pending_interrupt();
            }
            if let Some(exit) = self.exit.take() {
                self.clock.retire(steps);
                return exit;
            }
            let pc = self.state.pc;
            if self.debug.is_some() {
                if self.breakpoint_at(pc) {
                    self.clock.retire(steps);
                    return crate::hart::RunExit::Debug;
                }
                if self.breakpoint_inside_block(pc) {
                    // Resuming from this breakpoint: run it alone, so no block
                    // (or loop inside one) starts at it.
                    self.step_one();
                    steps += 1;
                    continue;
                }
            }
            // The exit that left an unlinked slot, if the block it wanted is next.
            let (slot, to, generation) = std::mem::take(&mut pending_link);
            match self.lookup_block(pc) {
                Some(block) => {
                    let Some(trampoline) = self.jit.as_ref().and_then(|jit| jit.trampoline) else {
                        steps += self.interpret_block();
                        continue;
                    };
                    if slot != 0 && to == pc {
                        self.link_chain(slot, generation, block);
                    }
                    let before = self.state.instret;
                    let limit = &self.pins.chain_limit;
                    limit.store(before.wrapping_add(budget - steps), Ordering::SeqCst);
                    if self.irq_changed() {
                        // A line changed before the limit was set: look first.
                        // (One changing after it zeroes the limit instead.)
                        self.irq_check = true;
                        continue;
                    }
                    self.jit_fault = 0;
                    self.chain_from = 0;
                    crate::hart::set_running_chain_limit(limit.as_ptr());
                    // SAFETY: `block` and `trampoline` were compiled for this hart's
                    // layout by `translate` into the current module, which is still
                    // alive (translations are removed from `blocks` and the chain
                    // generation bumped before their memory is freed), and translated
                    // code only touches the hart through the pointer we pass, which
                    // is valid and unaliased for the duration of the call.
                    let status = unsafe { trampoline(self as *mut Hart, block.0) };
                    crate::hart::set_running_chain_limit(std::ptr::null_mut());
                    if let Some(jit) = self.jit.as_ref() {
                        pending_link = (self.chain_from, self.state.pc, jit.chain_generation);
                    }
                    let retired = self.state.instret - before;
                    if status == translate::STATUS_INTERPRET as u64 {
                        // An access direct code cannot make: the interpreter
                        // makes it (or takes its fault).
                        steps += retired;
                        self.step_one();
                        steps += 1;
                    } else if status == 1 {
                        let trap = self.jit_trap.take().unwrap_or(Trap::illegal());
                        self.take_trap(trap);
                        // The faulting instruction is a step, as in the interpreter.
                        steps += retired + 1;
                    } else {
                        steps += retired.max(1);
                    }
                    if let Some(jit) = self.jit.as_mut() {
                        jit.stats.blocks_run += 1;
                    }
                }
                None => steps += self.interpret_block(),
            }
        }
        self.clock.retire(steps);
        if let Some(exit) = self.exit.take() {
            return exit;
        }
        if control.stop_requested() {
            return crate::hart::RunExit::Stopped;
        }
        crate::hart::RunExit::Budget
    }

    /// Points the chain slot at address `slot`, left by a block exit in chain
    /// generation `generation`, at `block`.
    fn link_chain(&mut self, slot: usize, generation: u64, block: BlockFn) {
        let Some(jit) = self.jit.as_mut() else {
            return;
        };
        // A new generation may mean a new module whose slots reuse the address.
        if generation != jit.chain_generation {
            return;
        }
        jit.slots.link(slot, block.0, generation);
    }

    /// Interprets instructions up to the end of a block; returns how many ran.
    fn interpret_block(&mut self) -> u64 {
        if let Some(jit) = self.jit.as_mut() {
            jit.stats.blocks_interpreted += 1;
        }
        for n in 1..=MAX_BLOCK as u64 {
            let Some(op) = self.step_one() else {
                return n;
            };
            if ends_block(op) || self.exit.is_some() || self.irq_check {
                return n;
            }
            // The dispatch loop must see a breakpoint before it runs.
            if self.debug.is_some() && self.breakpoint_inside_block(self.state.pc) {
                return n;
            }
        }
        MAX_BLOCK as u64
    }

    /// The translation for `pc` if the jump cache has a current one: what a block
    /// exit may chain to without the dispatch loop.
    pub(crate) fn cached_block(&mut self, pc: u64) -> Option<BlockFn> {
        if self.debug.is_some() && self.breakpoint_inside_block(pc) {
            return None;
        }
        let ram_off = self.exec_ram_offset(pc)?;
        let jit = self.jit.as_ref()?;
        jit.jump_cache[((pc >> 1) as usize) & (JUMP_CACHE - 1)].get((pc, ram_off >> 12), jit.epoch)
    }

    /// Finds (or, when hot, compiles) the translation for `pc`.
    fn lookup_block(&mut self, pc: u64) -> Option<BlockFn> {
        let ram_off = self.exec_ram_offset(pc)?;
        let key = (pc, ram_off >> 12);
        let jit = self.jit.as_mut()?;
        let slot = ((pc >> 1) as usize) & (JUMP_CACHE - 1);
        if let Some(entry) = jit.jump_cache[slot].get(key, jit.epoch) {
            return Some(entry);
        }
        if let Some(block) = jit.blocks.get_mut(&key) {
            if block.epoch == jit.epoch {
                jit.jump_cache[slot] = JumpEntry {
                    pc: key.0,
                    ram_page: key.1,
                    epoch: jit.epoch,
                    entry: block.entry.0,
                };
                return Some(block.entry);
            }
            let unchanged = block.spans.iter().all(|span| {
                let mut current = vec![0u8; span.bytes.len()];
                self.ram.read_bytes(span.ram_off, &mut current) && *current == *span.bytes
            });
            if unchanged {
                block.epoch = jit.epoch;
                return Some(block.entry);
            }
            jit.blocks.remove(&key);
            jit.jump_cache.fill(EMPTY_JUMP);
            jit.stats.invalidations += 1;
        }
        if jit.untranslatable.contains(&key) {
            return None;
        }
        let heat = jit.heat.entry(key).or_insert(0);
        *heat += 1;
        if *heat < jit.threshold {
            return None;
        }
        self.compile_block(pc, ram_off, key)
    }

    fn compile_block(&mut self, pc: u64, ram_off: u64, key: BlockKey) -> Option<BlockFn> {
        let region = self.region_blocks(pc, ram_off);
        if region.blocks.is_empty() {
            if let Some(jit) = self.jit.as_mut() {
                jit.untranslatable.insert(key);
            }
            return None;
        }
        // Each page's span of the region's code: (virtual page, RAM page, start
        // and end offsets). Blocks outside the entry's page come only from user
        // mode, where virtual addresses are RAM offsets.
        let mut pages: Vec<(u64, u64, u64, u64)> = Vec::new();
        for block in &region.blocks {
            let (first, _) = block[0];
            let (last_pc, last) = block[block.len() - 1];
            let (start, end) = (first & 0xfff, (last_pc & 0xfff) + u64::from(last.len));
            let vpage = first & !0xfff;
            let ram_page = if vpage == pc & !0xfff {
                ram_off & !0xfff
            } else {
                vpage
            };
            match pages.iter_mut().find(|p| p.0 == vpage) {
                Some(p) => {
                    p.2 = p.2.min(start);
                    p.3 = p.3.max(end);
                }
                None => pages.push((vpage, ram_page, start, end)),
            }
        }
        // Stores into these pages must now invalidate the translation.
        for &(_, ram_page, _, _) in &pages {
            self.code_page(ram_page);
        }
        let ram_base = self.ram.host_base_ptr() as u64;
        let exec_cache = self.exec_cache.as_ptr();
        let chain_limit = self.pins.chain_limit.as_ptr().cast_const();
        let direct = self.direct_window;
        let jit = self.jit.as_mut()?;
        if jit.blocks.len() >= MAX_BLOCKS || jit.module.is_none() {
            jit.flush_cache();
        }
        let started = Instant::now();
        let compiled = translate::compile(jit, &region, ram_base, exec_cache, chain_limit, direct);
        jit.stats.compile_time += started.elapsed();
        match compiled {
            Ok(entry) => {
                jit.stats.blocks_compiled += 1;
                jit.stats.instructions_compiled +=
                    region.blocks.iter().map(Vec::len).sum::<usize>() as u64;
                let spans = pages
                    .iter()
                    .map(|&(vpage, ram_page, start, end)| {
                        let mut bytes = vec![0u8; (end - start) as usize];
                        self.ram.read_bytes(ram_page + start, &mut bytes);
                        CodeSpan {
                            pc: vpage + start,
                            ram_off: ram_page + start,
                            bytes: bytes.into_boxed_slice(),
                        }
                    })
                    .collect();
                let jit = self.jit.as_mut()?;
                let epoch = jit.epoch;
                jit.blocks.insert(
                    key,
                    CompiledBlock {
                        entry,
                        spans,
                        epoch,
                    },
                );
                for &(_, ram_page, start, end) in &pages {
                    jit.by_page
                        .entry(ram_page >> 12)
                        .or_default()
                        .push(PlacedBlock { key, start, end });
                }
                jit.heat.remove(&key);
                Some(entry)
            }
            Err(_) => {
                jit.untranslatable.insert(key);
                None
            }
        }
    }

    /// The basic blocks of the region entered at `pc` (RAM offset `ram_off`): the
    /// block at `pc` first, then those on loops through it: reachable from it
    /// and leading back to it by direct jumps and branches within the same page,
    /// while the region stays small. Empty when nothing at `pc` can be
    /// translated.
    ///
    /// Only loops are worth keeping in one translation: code that runs once
    /// after the entry would be compiled again into every region that reaches
    /// it, and compile time is most of a Linux boot's JIT cost.
    fn region_blocks(&self, pc: u64, ram_off: u64) -> Region {
        let page = pc >> 12;
        let mut region: Vec<Vec<(u64, Insn)>> = Vec::new();
        // Successor pcs of each block in `region`.
        let mut edges: Vec<Vec<u64>> = Vec::new();
        let mut returns = Vec::new();
        let mut total = 0;
        // Block starts to look at, each with the continuation of the call that
        // led into its function, if the region followed one.
        let mut queued: Vec<(u64, Option<u64>)> = vec![(pc, None)];
        let mut next = 0;
        while next < queued.len() && region.len() < MAX_REGION_BLOCKS {
            let (start, caller) = queued[next];
            next += 1;
            // The dispatch loop must see a breakpoint before it runs.
            if !region.is_empty() && self.breakpoint_inside_block(start) {
                continue;
            }
            let block_off = if start >> 12 == page {
                (ram_off & !0xfff) + (start & 0xfff)
            } else {
                // Only user mode follows code into other pages (see `may_follow`).
                start
            };
            let block = self.block_instructions(start, block_off);
            if block.is_empty() || (!region.is_empty() && total + block.len() > MAX_REGION) {
                continue;
            }
            total += block.len();
            let (last_pc, last) = block[block.len() - 1];
            let after = last_pc.wrapping_add(u64::from(last.len));
            let jump = last_pc.wrapping_add(i64::from(last.imm) as u64);
            let successors: Vec<(u64, Option<u64>)> = match last.op {
                Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => {
                    vec![(jump, caller), (after, caller)]
                }
                // A call: into the function, remembering where it returns to.
                Op::Jal if last.rd == 1 => vec![(jump, Some(after))],
                Op::Jal => vec![(jump, caller)],
                // `ret` from a function the region called.
                Op::Jalr if last.rd == 0 && last.rs1 == 1 && last.imm == 0 => match caller {
                    Some(back) => {
                        returns.push((last_pc, back));
                        vec![(back, None)]
                    }
                    None => vec![],
                },
                _ if translate::kind(last.op) == Some(translate::Kind::EndsBlock) => vec![],
                // Cut short by its length: it falls through.
                _ => vec![(after, caller)],
            };
            let successors: Vec<(u64, Option<u64>)> = successors
                .into_iter()
                .filter(|&(target, _)| target >> 12 == page || self.may_follow(target))
                .collect();
            for &(target, context) in &successors {
                if !queued.iter().any(|&(queued_pc, _)| queued_pc == target) {
                    queued.push((target, context));
                }
            }
            region.push(block);
            edges.push(successors.iter().map(|&(target, _)| target).collect());
        }
        // Keep the entry and the blocks that lead back to it, to a fixed point.
        let starts: Vec<u64> = region.iter().map(|block| block[0].0).collect();
        let mut keep = vec![false; region.len()];
        if let Some(entry) = keep.first_mut() {
            *entry = true;
        }
        let mut changed = true;
        while changed {
            changed = false;
            for i in 1..region.len() {
                if !keep[i]
                    && edges[i].iter().any(|target| {
                        starts
                            .iter()
                            .position(|start| start == target)
                            .is_some_and(|j| keep[j])
                    })
                {
                    keep[i] = true;
                    changed = true;
                }
            }
        }
        let blocks: Vec<Vec<(u64, Insn)>> = region
            .into_iter()
            .zip(keep)
            .filter_map(|(block, kept)| kept.then_some(block))
            .collect();
        // A return predicts only a continuation the region kept.
        returns.retain(|&(ret_pc, back)| {
            let kept = |pc: u64| {
                blocks
                    .iter()
                    .any(|block| block.iter().any(|&(p, _)| p == pc))
            };
            kept(ret_pc) && blocks.iter().any(|block| block[0].0 == back)
        });
        Region { blocks, returns }
    }

    /// Whether a region may take in code at `pc` outside its entry's page: in
    /// user mode, where a virtual address is its RAM offset in every page, from
    /// pages the process may execute. (A system-mode page may map elsewhere the
    /// next time the region runs, so regions stay in one page there.)
    fn may_follow(&self, pc: u64) -> bool {
        self.user_space
            .as_ref()
            .is_some_and(|space| space.permits(pc, crate::mmu::Access::Execute))
    }

    /// The instructions of the basic block at `pc` (RAM offset `ram_off`), stopping at the
    /// page end, after a control transfer or system instruction, or before the first
    /// instruction that does not decode.
    fn block_instructions(&self, pc: u64, ram_off: u64) -> Vec<(u64, Insn)> {
        let mut out = Vec::new();
        let (mut pc, mut off) = (pc, ram_off);
        while out.len() < MAX_BLOCK {
            if off & 0xfff > 0xffc {
                // A 4-byte instruction could cross into the next page.
                break;
            }
            let Some(low) = self.ram.read_u16(off) else {
                break;
            };
            let high = if insn_len(low) == 4 {
                match self.ram.read_u16(off + 2) {
                    Some(high) => high,
                    None => break,
                }
            } else {
                0
            };
            let insn = decode(low, high);
            let Some(kind) = translate::kind(insn.op) else {
                break;
            };
            if !out.is_empty() && self.breakpoint_inside_block(pc) {
                break;
            }
            out.push((pc, insn));
            if kind == translate::Kind::EndsBlock {
                break;
            }
            pc += u64::from(insn.len);
            off += u64::from(insn.len);
            if off & 0xfff == 0 {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
