//! The Cranelift translator: hot guest code becomes host code.
//!
//! A basic block is a run of guest instructions within one page, ending at the
//! first branch, jump or system instruction (included), or before the first
//! instruction that is not decoded (which the interpreter then executes and traps
//! on). A translation covers a region: the basic block at its entry and those on
//! loops back to it through direct jumps and branches within the same page, as one
//! Cranelift function, so a loop's registers stay in host registers across its
//! blocks. Integer, memory, branch and most FP instructions are translated
//! inline; atomic and system instructions, and FP cases off the fast path, call
//! the interpreter's `execute` for that one instruction, with the registers
//! written back around the call. Guest registers
//! live in Cranelift variables; an exit writes back only those that may differ
//! from the hart's copy there (written since the last write-back on the way,
//! or anywhere in a region that loops). Loads and stores use the hart's
//! software TLB inline (one compare of tag and alignment, host pointer add);
//! misses, unaligned accesses, MMIO and faults write the registers back and
//! call the interpreter's memory path, which on a fault also sets the exact pc
//! and retired count, so the block's exit there is a bare return.
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
//!
//! What is not RISC-V lives in the `jit-core` crate, which the x86 translator
//! shares: code memory, the translation cache and its invalidation, chain slots
//! and the jump cache, profiling and statistics. This module decides what a
//! region is and runs the dispatch loop; `translate` emits RISC-V's IR.

mod host_fma;
mod translate;

use emu_core::GuestPhysAddr;
use std::sync::atomic::Ordering;

use jit_core::{BlockFn, BlockKey, CodeSpan, Lookup, TranslateFn, Translation};

use crate::decode::{Insn, Op, decode, insn_len};
use crate::hart::Hart;
use crate::trap::Trap;

pub use jit_core::JitStats;

/// A hart's translator: the ISA-neutral engine (code memory, translation
/// cache, chaining) that this module feeds RISC-V code.
pub(crate) type JitEngine = jit_core::Engine;

/// Instruction starts are 2-byte aligned (compressed instructions).
const PC_SHIFT: u32 = 1;
/// Longest basic block, in guest instructions.
const MAX_BLOCK: usize = 64;
/// Most guest instructions in one translation (a region of basic blocks).
const MAX_REGION: usize = 256;
/// Most basic blocks in one translation.
const MAX_REGION_BLOCKS: usize = 24;

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

/// Whether `op` ends a block in the interpreter (control transfer).
fn ends_block(op: Op) -> bool {
    matches!(
        op,
        Op::Jal | Op::Jalr | Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu
    )
}

impl Hart {
    /// Turns on the translator for this hart, compiling on the hart's thread
    /// when code turns hot (runs repeat exactly).
    pub fn enable_jit(&mut self, threshold: u32) -> Result<(), String> {
        self.jit = Some(Box::new(JitEngine::new(threshold, PC_SHIFT, false)?));
        Ok(())
    }

    /// Turns on the translator for this hart, compiling on a thread of its
    /// own while the hart interprets: faster, but when code starts running
    /// translated depends on host timing.
    pub fn enable_background_jit(&mut self, threshold: u32) -> Result<(), String> {
        self.jit = Some(Box::new(JitEngine::new(threshold, PC_SHIFT, true)?));
        Ok(())
    }

    /// In the child of a `fork`: compiles on this thread from now on (the
    /// compile thread, if there was one, did not come along).
    /// Without code memory for that, the hart interprets.
    pub fn jit_after_fork(&mut self) {
        if let Some(jit) = self.jit.as_mut()
            && jit.after_fork().is_err()
        {
            // Dropping the engine would wait for the absent compile thread.
            std::mem::forget(self.jit.take());
            self.flush_code();
        }
    }

    /// Translator statistics, when the JIT is on.
    pub fn jit_stats(&self) -> Option<JitStats> {
        self.jit.as_ref().map(|jit| JitStats {
            chained: self.chained,
            ..jit.cache.stats
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
                jit.cache.invalidate_all();
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
                    let Some(trampoline) = self.jit.as_ref().and_then(|jit| jit.trampoline())
                    else {
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
                    let status = unsafe { trampoline((self as *mut Hart).cast(), block.0) };
                    crate::hart::set_running_chain_limit(std::ptr::null_mut());
                    if let Some(jit) = self.jit.as_ref() {
                        pending_link =
                            (self.chain_from, self.state.pc, jit.cache.chain_generation());
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
                        jit.cache.stats.blocks_run += 1;
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
        if let Some(jit) = self.jit.as_mut() {
            jit.link_chain(slot, generation, block);
        }
    }

    /// Interprets instructions up to the end of a block; returns how many ran.
    fn interpret_block(&mut self) -> u64 {
        if let Some(jit) = self.jit.as_mut() {
            jit.cache.stats.blocks_interpreted += 1;
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
        jit.cache.cached(BlockKey {
            pc,
            page: ram_off >> 12,
        })
    }

    /// Finds (or, when hot, compiles) the translation for `pc`.
    fn lookup_block(&mut self, pc: u64) -> Option<BlockFn> {
        let ram_off = self.exec_ram_offset(pc)?;
        let key = BlockKey {
            pc,
            page: ram_off >> 12,
        };
        let ram = &self.ram;
        let jit = self.jit.as_mut()?;
        match jit.lookup(key, |off, buf| ram.read_bytes(off, buf)) {
            Lookup::Found(block) => Some(block),
            Lookup::Cold | Lookup::Untranslatable => None,
            Lookup::Hot => self.compile_block(pc, ram_off, key),
        }
    }

    fn compile_block(&mut self, pc: u64, ram_off: u64, key: BlockKey) -> Option<BlockFn> {
        let region = self.region_blocks(pc, ram_off);
        if region.blocks.is_empty() {
            if let Some(jit) = self.jit.as_mut() {
                jit.cache.mark_untranslatable(key);
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
        let what = Translation {
            key,
            spans,
            instructions: region.blocks.iter().map(Vec::len).sum::<usize>() as u64,
        };
        let ram_base = self.ram.host_base_ptr() as u64;
        let exec_cache = self.exec_cache.as_ptr() as i64;
        let chain_limit = self.pins.chain_limit.as_ptr() as i64;
        let direct_window = self.direct_window;
        let jit = self.jit.as_mut()?;
        let at = translate::HartAddresses {
            ram_base,
            direct_window,
            generation: jit.cache.generation_address() as i64,
            probe: translate::JumpProbe {
                exec_cache,
                jump_cache: jit.cache.jump_cache_address() as i64,
                epoch: jit.cache.epoch_address() as i64,
                chain_limit,
                pc_shift: i64::from(jit.cache.pc_shift()),
            },
        };
        let emit: TranslateFn = Box::new(move |code| translate::compile(code, &region, &at));
        // SAFETY: translations are asked for in the dispatch loop, outside
        // translated code (`jit_next_block` only looks them up).
        unsafe { jit.translate(what, emit) }
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
