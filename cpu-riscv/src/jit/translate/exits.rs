//! Leaving a translated block: writing registers back, chaining to the next
//! block (through its linked slot or the dispatch's jump cache), jumps inside
//! the region, and the chain budget.

use super::*;

impl Emitter<'_, '_> {
    /// Stores the registers the block changed and adds the instructions retired
    /// (of the block's first `retired`) to `instret`; stores `pc` when given.
    pub(super) fn write_back(&mut self, pc: Option<Value>, retired: u64) {
        self.spill();
        if let Some(pc) = pc {
            self.b.ins().store(flags(), pc, self.hart, OFF_PC);
        }
        let unsynced = retired - self.instret_synced;
        if unsynced != 0 {
            let instret = self
                .b
                .ins()
                .load(types::I64, flags(), self.hart, OFF_INSTRET);
            let instret = self.b.ins().iadd_imm_s(instret, unsynced as i64);
            self.b.ins().store(flags(), instret, self.hart, OFF_INSTRET);
        }
    }

    /// Stores the registers that may differ from the hart's copy here (see
    /// `Emitter::dirty`).
    pub(super) fn spill(&mut self) {
        for r in 1..32u8 {
            if self.dirty[usize::from(r)] {
                let v = self.b.use_var(self.vars[usize::from(r)]);
                self.b
                    .ins()
                    .store(flags(), v, self.hart, OFF_X + 8 * i32::from(r));
            }
        }
    }

    /// Writes back registers, pc and the retired count; returns `status`.
    pub(super) fn exit(&mut self, pc: Value, retired: u64, status: i64) {
        self.write_back(Some(pc), retired);
        self.ret(status);
    }

    /// Like `exit`, where the registers were written back on the way here
    /// (before a call into Rust): stores pc and the retired count only.
    pub(super) fn leave(&mut self, pc: Option<Value>, retired: u64, status: i64) {
        let dirty = std::mem::take(&mut self.dirty);
        self.write_back(pc, retired);
        self.dirty = dirty;
        self.ret(status);
    }

    pub(super) fn ret(&mut self, status: i64) {
        let status = self.b.ins().iconst(types::I64, status);
        self.b.ins().return_(&[status]);
    }

    /// Leaves the block for the known address `target` after `retired`
    /// instructions: straight into the target's translation when the exit's chain
    /// slot is linked and current and the chain budget allows, else back to the
    /// dispatch loop (asking it to link the slot).
    pub(super) fn exit_to(&mut self, target: u64, retired: u64) {
        if let Some(&(_, inside)) = self.targets.iter().find(|(pc, _)| *pc == target) {
            self.jump_inside(target, inside, retired);
            return;
        }
        let pc = self.b.ins().iconst(types::I64, target as i64);
        self.write_back(Some(pc), retired);
        if target >> 12 != self.page {
            // Another page may map elsewhere next time: look it up each time.
            self.chain_by_lookup(pc);
            return;
        }
        let slot = self.slots.alloc() as i64;
        let check = self.b.create_block();
        let unlinked = self.b.create_block();
        self.within_chain_limit(check, unlinked);

        self.b.switch_to_block(check);
        let slot_v = self.b.ins().iconst(types::I64, slot);
        let generation_at = self.b.ins().iconst(types::I64, self.generation);
        let current = self.b.ins().load(types::I64, flags(), generation_at, 0);
        let linked = self
            .b
            .ins()
            .load(types::I64, flags(), slot_v, OFF_SLOT_GENERATION);
        let valid = self.b.ins().icmp(IntCC::Equal, current, linked);
        let follow = self.b.create_block();
        self.b.ins().brif(valid, follow, &[], unlinked, &[]);

        self.b.switch_to_block(follow);
        let entry = self
            .b
            .ins()
            .load(types::I64, flags(), slot_v, OFF_SLOT_ENTRY);
        self.chain_into(entry);

        // Back to dispatch, which links the slot (again, when the chain budget
        // ran out with the slot linked: harmless, and one exit for both keeps
        // translations small).
        self.b.switch_to_block(unlinked);
        let slot_v = self.b.ins().iconst(types::I64, slot);
        self.b
            .ins()
            .store(flags(), slot_v, self.hart, OFF_CHAIN_FROM);
        self.ret(0);
    }

    /// Counts a chained jump and tail-calls the translation at `entry`.
    fn chain_into(&mut self, entry: Value) {
        let chained = self
            .b
            .ins()
            .load(types::I64, flags(), self.hart, OFF_CHAINED);
        let chained = self.b.ins().iadd_imm_s(chained, 1);
        self.b.ins().store(flags(), chained, self.hart, OFF_CHAINED);
        self.b
            .ins()
            .return_call_indirect(self.block_sig, entry, &[self.hart]);
    }

    /// A jump to `target`, the start of the region's basic block `inside`: the
    /// registers stay in host registers. A backward jump may close a loop, so it
    /// spends chain budget, and when that runs out the registers are written back
    /// and dispatch resumes at `target`.
    pub(super) fn jump_inside(
        &mut self,
        target: u64,
        inside: cranelift_codegen::ir::Block,
        retired: u64,
    ) {
        // Memory holds the exact count at every basic block's start. Other exits
        // of this instruction (a branch's other way) are emitted after this one
        // and count from the same point, so the sync mark is put back.
        let synced = self.instret_synced;
        self.sync_instret(retired);
        self.instret_synced = synced;
        if !self.loops {
            // Blocks of a region without jumps inside start with nothing to
            // write back: keep it so (`region_loops` should rule this out).
            self.spill();
        }
        if target > self.at_pc {
            self.b.ins().jump(inside, &[]);
            return;
        }
        let done = self.b.create_block();
        self.within_chain_limit(inside, done);

        self.b.switch_to_block(done);
        let pc = self.b.ins().iconst(types::I64, target as i64);
        self.spill();
        self.b.ins().store(flags(), pc, self.hart, OFF_PC);
        self.ret(0);
    }

    /// Goes on to `more` while `instret` in memory (which must already count
    /// the instructions retired so far) is below the chain limit, else to `done`.
    pub(super) fn within_chain_limit(
        &mut self,
        more: cranelift_codegen::ir::Block,
        done: cranelift_codegen::ir::Block,
    ) {
        let instret = self
            .b
            .ins()
            .load(types::I64, flags(), self.hart, OFF_INSTRET);
        let limit_at = self.b.ins().iconst(types::I64, self.probe.chain_limit);
        let limit = self.b.ins().load(types::I64, flags(), limit_at, 0);
        let left = self.b.ins().icmp(IntCC::UnsignedLessThan, instret, limit);
        self.b.ins().brif(left, more, &[], done, &[]);
    }

    /// After the registers and pc are written back: jumps into the translation
    /// for `state.pc` if the dispatch's jump cache has a current one, else returns
    /// to dispatch. For targets known only at run time or in another page.
    pub(super) fn chain_by_lookup(&mut self, pc: Value) {
        let look = self.b.create_block();
        let done = self.b.create_block();
        self.within_chain_limit(look, done);

        // The dispatch's lookup, inline for the common case: no debugger, the
        // page's fetch translation cached, and a current jump-cache entry.
        self.b.switch_to_block(look);
        let debug = self.b.ins().load(types::I64, flags(), self.hart, OFF_DEBUG);
        let no_debug = self.b.ins().icmp_imm_s(IntCC::Equal, debug, 0);
        let vpn = self.b.ins().ushr_imm_s(pc, 12);
        let slot = self.b.ins().band_imm_s(vpn, (EXEC_CACHE - 1) as i64);
        let slot = self
            .b
            .ins()
            .imul_imm_s(slot, size_of::<(u64, u64)>() as i64);
        let fetch = self.b.ins().iadd_imm_s(slot, self.probe.exec_cache);
        let fetch_vpn =
            self.b
                .ins()
                .load(types::I64, flags(), fetch, offset_of!((u64, u64), 0) as i32);
        let ram_page =
            self.b
                .ins()
                .load(types::I64, flags(), fetch, offset_of!((u64, u64), 1) as i32);
        let fetch_hit = self.b.ins().icmp(IntCC::Equal, fetch_vpn, vpn);
        let half = self.b.ins().ushr_imm_s(pc, self.probe.pc_shift);
        let slot = self.b.ins().band_imm_s(half, (JUMP_CACHE - 1) as i64);
        let slot = self.b.ins().imul_imm_s(slot, size_of::<JumpEntry>() as i64);
        let cached = self.b.ins().iadd_imm_s(slot, self.probe.jump_cache);
        let field = |e: &mut Self, offset: usize| {
            e.b.ins().load(types::I64, flags(), cached, offset as i32)
        };
        let cached_pc = field(self, offset_of!(JumpEntry, pc));
        let cached_page = field(self, offset_of!(JumpEntry, ram_page));
        let cached_epoch = field(self, offset_of!(JumpEntry, epoch));
        let cached_entry = field(self, offset_of!(JumpEntry, entry));
        let epoch_at = self.b.ins().iconst(types::I64, self.probe.epoch);
        let epoch = self.b.ins().load(types::I64, flags(), epoch_at, 0);
        let pc_hit = self.b.ins().icmp(IntCC::Equal, cached_pc, pc);
        let page_hit = self.b.ins().icmp(IntCC::Equal, cached_page, ram_page);
        let epoch_hit = self.b.ins().icmp(IntCC::Equal, cached_epoch, epoch);
        let hit = self.b.ins().band(no_debug, fetch_hit);
        let hit = self.b.ins().band(hit, pc_hit);
        let hit = self.b.ins().band(hit, page_hit);
        let hit = self.b.ins().band(hit, epoch_hit);
        let follow = self.b.create_block();
        self.b.append_block_param(follow, types::I64);
        let slow = self.b.create_block();
        self.b
            .ins()
            .brif(hit, follow, &[cached_entry.into()], slow, &[]);

        self.b.switch_to_block(slow);
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_next_block as *const () as i64);
        let call = self
            .b
            .ins()
            .call_indirect(self.next_sig, callee, &[self.hart]);
        let entry = self.b.inst_results(call)[0];
        self.b.ins().brif(entry, follow, &[entry.into()], done, &[]);

        self.b.switch_to_block(follow);
        let entry = self.b.block_params(follow)[0];
        self.chain_into(entry);

        self.b.switch_to_block(done);
        self.ret(0);
    }

    /// Brings `instret` in memory up to the instructions before `index`, so the
    /// interpreter sees the exact count. Emitted where every later path passes.
    pub(super) fn sync_instret(&mut self, index: u64) {
        if index != self.instret_synced {
            let instret = self
                .b
                .ins()
                .load(types::I64, flags(), self.hart, OFF_INSTRET);
            let instret = self
                .b
                .ins()
                .iadd_imm_s(instret, (index - self.instret_synced) as i64);
            self.b.ins().store(flags(), instret, self.hart, OFF_INSTRET);
            self.instret_synced = index;
        }
    }
}
