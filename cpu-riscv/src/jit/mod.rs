//! The Cranelift translator: hot guest blocks become host code.
//!
//! A block is a run of guest instructions within one page, ending at the first
//! branch or jump (included) or before the first instruction the translator does not
//! handle (which the interpreter then executes). Guest registers live in Cranelift
//! variables inside a block and are written back at every exit. Loads and stores
//! use the hart's software TLB inline (tag compare, page-crossing check, host
//! pointer add); misses, MMIO and faults call back into the interpreter's memory
//! path, and a fault leaves the exact pc and registers of the faulting instruction.
//!
//! Tiering: a block is compiled once it has been entered `threshold` times; until
//! then the interpreter runs it. Blocks are keyed by virtual pc and physical page,
//! and stores into a page holding translated code drop its blocks.

mod translate;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Module, default_libcall_names};

use crate::decode::{Insn, Op, decode, insn_len};
use crate::hart::Hart;
use crate::trap::Trap;

/// Longest block, in guest instructions.
const MAX_BLOCK: usize = 64;
/// Compiled blocks kept before the code cache is thrown away and started afresh.
const MAX_BLOCKS: usize = 32 * 1024;

/// A translated block: takes the hart, returns 0 (continue at `state.pc`) or 1
/// (a fault is pending in `Hart::jit_trap`).
pub(crate) type BlockFn = unsafe extern "C" fn(*mut Hart) -> u64;

/// Entries of the direct-mapped jump cache in front of the block map.
const JUMP_CACHE: usize = 4096;

/// One jump-cache entry: a recently run block, valid for one fence.i epoch.
#[derive(Clone, Copy)]
struct JumpEntry {
    key: BlockKey,
    epoch: u64,
    entry: Option<BlockFn>,
}

const EMPTY_JUMP: JumpEntry = JumpEntry {
    key: (u64::MAX, u64::MAX),
    epoch: u64::MAX,
    entry: None,
};

/// Key of a translation: virtual pc and the RAM page number of its code.
type BlockKey = (u64, u64);

/// A translated block and what it was translated from.
struct CompiledBlock {
    entry: BlockFn,
    /// The guest code bytes, to re-validate the block after a fence.i.
    code: Box<[u8]>,
    /// The fence.i epoch in which the code bytes were last known to match RAM.
    epoch: u64,
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
}

/// The per-hart translator and code cache.
pub struct JitEngine {
    module: Option<JITModule>,
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
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    flags.set("is_pic", "false").map_err(|e| e.to_string())?;
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
        Ok(JitEngine {
            module: Some(module),
            ctx,
            fctx: cranelift_frontend::FunctionBuilderContext::new(),
            blocks: HashMap::new(),
            jump_cache: Box::new([EMPTY_JUMP; JUMP_CACHE]),
            epoch: 0,
            by_page: HashMap::new(),
            heat: HashMap::new(),
            untranslatable: HashSet::new(),
            threshold: threshold.max(1),
            stats: JitStats::default(),
        })
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
        }
        for key in dropped {
            if self.blocks.remove(&key).is_some() {
                self.stats.invalidations += 1;
            }
            self.heat.remove(&key);
            self.untranslatable.remove(&key);
        }
    }

    /// After fence.i: every block must match RAM again before it next runs.
    pub(crate) fn revalidate_all(&mut self) {
        self.epoch += 1;
    }

    /// Drops every translation (reset, full cache). The code memory is kept until
    /// the cache fills, since nothing can call into it any more.
    pub(crate) fn invalidate_all(&mut self) {
        self.jump_cache.fill(EMPTY_JUMP);
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
        self.module = new_module().ok();
        self.stats.cache_flushes += 1;
    }
}

/// Whether `op` ends a block (control transfer).
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
        self.jit.as_ref().map(|jit| jit.stats)
    }

    /// The dispatch loop: translated blocks when hot, the interpreter otherwise.
    pub(crate) fn run_jit(&mut self, budget: u64) -> crate::hart::RunExit {
        let control = self.bus.control().clone();
        let mut steps = 0u64;
        self.exit = None;
        self.irq_check = true;
        while steps < budget {
            if self.irq_check {
                self.irq_check = false;
                self.note_irq_epoch();
                self.take_pending_interrupt();
            }
            if let Some(exit) = self.exit.take() {
                self.clock.retire(steps);
                return exit;
            }
            let pc = self.state.pc;
            match self.lookup_block(pc) {
                Some(block) => {
                    let before = self.state.instret;
                    self.jit_fault = 0;
                    // SAFETY: `block` was compiled for this hart's layout by
                    // `translate`, it is still in the code cache (translations are
                    // removed from `blocks` before their memory is freed), and it
                    // only touches the hart through the pointer we pass, which is
                    // valid and unaliased for the duration of the call.
                    let status = unsafe { block(self as *mut Hart) };
                    if status == 1 {
                        let trap = self.jit_trap.take().unwrap_or(Trap::illegal());
                        self.take_trap(trap);
                        steps += 1;
                    }
                    steps += (self.state.instret - before).max(1);
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
        }
        MAX_BLOCK as u64
    }

    /// Finds (or, when hot, compiles) the translation for `pc`.
    fn lookup_block(&mut self, pc: u64) -> Option<BlockFn> {
        let ram_off = self.exec_ram_offset(pc)?;
        let key = (pc, ram_off >> 12);
        let jit = self.jit.as_mut()?;
        let slot = ((pc >> 1) as usize) & (JUMP_CACHE - 1);
        let cached = jit.jump_cache[slot];
        if cached.key == key && cached.epoch == jit.epoch {
            return cached.entry;
        }
        if let Some(block) = jit.blocks.get_mut(&key) {
            if block.epoch == jit.epoch {
                jit.jump_cache[slot] = JumpEntry {
                    key,
                    epoch: jit.epoch,
                    entry: Some(block.entry),
                };
                return Some(block.entry);
            }
            let mut current = vec![0u8; block.code.len()];
            if self.ram.read_bytes(ram_off, &mut current) && *current == *block.code {
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
        let insns = self.block_instructions(pc, ram_off);
        if insns.is_empty() {
            if let Some(jit) = self.jit.as_mut() {
                jit.untranslatable.insert(key);
            }
            return None;
        }
        // Stores into this page must now invalidate the translation.
        self.code_page(ram_off);
        let ram_base = self.ram.host_base_ptr() as u64;
        let jit = self.jit.as_mut()?;
        if jit.blocks.len() >= MAX_BLOCKS || jit.module.is_none() {
            jit.flush_cache();
        }
        let started = Instant::now();
        let compiled = translate::compile(jit, &insns, ram_base);
        jit.stats.compile_time += started.elapsed();
        match compiled {
            Ok(entry) => {
                jit.stats.blocks_compiled += 1;
                jit.stats.instructions_compiled += insns.len() as u64;
                let (last_pc, last) = insns[insns.len() - 1];
                let start = ram_off & 0xfff;
                let end = start + (last_pc - pc) + u64::from(last.len);
                let mut code = vec![0u8; (end - start) as usize];
                self.ram.read_bytes(ram_off, &mut code);
                let jit = self.jit.as_mut()?;
                let epoch = jit.epoch;
                jit.blocks.insert(
                    key,
                    CompiledBlock {
                        entry,
                        code: code.into_boxed_slice(),
                        epoch,
                    },
                );
                jit.by_page
                    .entry(key.1)
                    .or_default()
                    .push(PlacedBlock { key, start, end });
                jit.heat.remove(&key);
                Some(entry)
            }
            Err(_) => {
                jit.untranslatable.insert(key);
                None
            }
        }
    }

    /// The instructions of the block at `pc` (RAM offset `ram_off`) that the
    /// translator handles, stopping at the page end, a control transfer or the first
    /// instruction it does not handle.
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
            if !translate::supported(insn.op) {
                break;
            }
            out.push((pc, insn));
            if ends_block(insn.op) {
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
