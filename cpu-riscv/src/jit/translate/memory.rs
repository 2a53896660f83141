//! Guest loads and stores in translated code: the inline TLB check (system
//! mode), direct host access (user mode), and the interpreter's memory path
//! for everything else.

use super::*;

impl Emitter<'_, '_> {
    /// Inline TLB check of an access of `size` bytes at `va`; returns (hit, host
    /// address). Only aligned accesses hit (an unaligned one, which may cross
    /// pages, takes the slow path): the tag compare checks page and alignment.
    pub(super) fn tlb_lookup(&mut self, tlb: Value, va: Value, size: u8) -> (Value, Value) {
        let b = &mut *self.b;
        let vpn = b.ins().ushr_imm_s(va, 12);
        let index = b.ins().band_imm_s(vpn, (TLB_ENTRIES - 1) as i64);
        let scaled = b.ins().ishl_imm_s(index, ENTRY_SHIFT);
        let entry = b.ins().iadd(tlb, scaled);
        let tag = b.ins().load(types::I64, flags(), entry, OFF_TAG);
        let masked = b.ins().band_imm_s(va, !0xfff | (i64::from(size) - 1));
        let ok = b.ins().icmp(IntCC::Equal, tag, masked);
        let delta = b.ins().load(types::I64, flags(), entry, OFF_DELTA);
        let offset = b.ins().iadd(va, delta);
        let host = b.ins().iadd_imm_s(offset, self.ram_base as i64);
        (ok, host)
    }

    /// User mode: the host address of an access at `va`, which the access
    /// itself checks (the host's protection mirrors the guest's). Outside the
    /// window the instruction is left to the interpreter, which faults precisely;
    /// an exit rather than a helper call, so the fast path keeps its registers
    /// across it. None when accesses go through the TLB.
    ///
    /// An access near one this basic block already made from the same base
    /// register value needs no check: that one reached a mapped page, so at
    /// least page 1 (page 0 is never accessible) and below the window's end,
    /// and this one is within 2 KiB of it, so inside the host mapping or its
    /// guard page above, where the host faults.
    pub(super) fn direct_address(
        &mut self,
        base: Value,
        imm: i32,
        va: Value,
        pc: u64,
        index: u64,
    ) -> Option<Value> {
        let bits = self.direct_bits?;
        let near =
            |&(b, off): &(Value, i32)| b == base && (i64::from(imm) - i64::from(off)).abs() <= 2048;
        if self.checked.iter().any(near) {
            return Some(self.b.ins().iadd_imm_s(va, self.ram_base as i64));
        }
        self.checked.push((base, imm));
        let high = self.b.ins().ushr_imm_s(va, i64::from(bits));
        let inside = self.b.create_block();
        let outside = self.b.create_block();
        self.b.set_cold_block(outside);
        self.b.ins().brif(high, outside, &[], inside, &[]);
        // Both have their one predecessor: sealed now, a register read after
        // the access is the same SSA value as before it (which rotate fusion
        // and Cranelift's value numbering rely on).
        self.b.seal_block(outside);
        self.b.seal_block(inside);
        self.b.switch_to_block(outside);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        self.exit(pc_v, index, STATUS_INTERPRET);
        self.b.switch_to_block(inside);
        Some(self.b.ins().iadd_imm_s(va, self.ram_base as i64))
    }

    pub(super) fn load(&mut self, insn: &Insn, pc: u64, index: u64, size: u8, signed: bool) {
        let value = self.load_value(insn, pc, index, size, signed);
        self.set(insn.rd, value);
    }

    /// Loads `size` bytes at rs1 + imm: inline on a TLB hit, else through the
    /// interpreter's memory path, leaving the block on a fault.
    pub(super) fn load_value(
        &mut self,
        insn: &Insn,
        pc: u64,
        index: u64,
        size: u8,
        signed: bool,
    ) -> Value {
        let base = self.reg(insn.rs1);
        let va = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
        let ty: Type = match size {
            1 => types::I8,
            2 => types::I16,
            4 => types::I32,
            _ => types::I64,
        };
        if let Some(host) = self.direct_address(base, insn.imm, va, pc, index) {
            let raw = self.b.ins().load(ty, direct_flags(), host, 0);
            return if ty == types::I64 {
                raw
            } else if signed {
                self.b.ins().sextend(types::I64, raw)
            } else {
                self.b.ins().uextend(types::I64, raw)
            };
        }
        let (ok, host) = self.tlb_lookup(self.tlb_read, va, size);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let fault = self.b.create_block();
        let join = self.b.create_block();
        self.b.append_block_param(join, types::I64);
        self.b.ins().brif(ok, fast, &[], slow, &[]);
        self.b.seal_block(fast);
        self.b.seal_block(slow);

        self.b.switch_to_block(fast);
        let raw = self.b.ins().load(ty, ram_flags(), host, 0);
        let value = if ty == types::I64 {
            raw
        } else if signed {
            self.b.ins().sextend(types::I64, raw)
        } else {
            self.b.ins().uextend(types::I64, raw)
        };
        self.b.ins().jump(join, &[value.into()]);

        self.b.switch_to_block(slow);
        let (pc_v, at_v) = self.slow_access(insn, pc, index, size);
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_load as *const () as i64);
        let call = self
            .b
            .ins()
            .call_indirect(self.load_sig, callee, &[self.hart, va, pc_v, at_v]);
        let raw = self.b.inst_results(call)[0];
        let value = if size == 8 {
            raw
        } else if signed {
            let bits = 64 - 8 * i64::from(size);
            let up = self.b.ins().ishl_imm_s(raw, bits);
            self.b.ins().sshr_imm_s(up, bits)
        } else {
            raw
        };
        let flag = self.b.ins().load(types::I8, flags(), self.hart, OFF_FAULT);
        self.b.ins().brif(flag, fault, &[], join, &[value.into()]);
        self.b.seal_block(fault);
        self.b.seal_block(join);

        // The helper set the pc and retired count.
        self.b.switch_to_block(fault);
        self.ret(1);

        self.b.switch_to_block(join);
        self.b.block_params(join)[0]
    }

    /// Before a slow-path call, which may leave the block at this access:
    /// writes the registers back and returns the call's pc and `SlowAccess`
    /// arguments.
    fn slow_access(&mut self, insn: &Insn, pc: u64, index: u64, size: u8) -> (Value, Value) {
        self.spill();
        let at = SlowAccess {
            unsynced: u8::try_from(index - self.instret_synced).expect("blocks are short"),
            len: insn.len,
            size,
        };
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        let at_v = self.b.ins().iconst(types::I64, at.pack() as i64);
        (pc_v, at_v)
    }

    pub(super) fn store(&mut self, insn: &Insn, pc: u64, index: u64, size: u8) {
        let value = self.reg(insn.rs2);
        self.store_value(insn, pc, index, size, value);
    }

    /// Stores the low `size` bytes of `value` at rs1 + imm, like `load_value`.
    pub(super) fn store_value(&mut self, insn: &Insn, pc: u64, index: u64, size: u8, value: Value) {
        let base = self.reg(insn.rs1);
        let va = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
        let narrow = |b: &mut FunctionBuilder, value| match size {
            1 => b.ins().ireduce(types::I8, value),
            2 => b.ins().ireduce(types::I16, value),
            4 => b.ins().ireduce(types::I32, value),
            _ => value,
        };
        if let Some(host) = self.direct_address(base, insn.imm, va, pc, index) {
            let narrow = narrow(self.b, value);
            self.b.ins().store(direct_flags(), narrow, host, 0);
            return;
        }
        let (ok, host) = self.tlb_lookup(self.tlb_write, va, size);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let leave = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(ok, fast, &[], slow, &[]);
        self.b.seal_block(fast);
        self.b.seal_block(slow);

        self.b.switch_to_block(fast);
        let narrow = narrow(self.b, value);
        self.b.ins().store(ram_flags(), narrow, host, 0);
        self.b.ins().jump(join, &[]);

        self.b.switch_to_block(slow);
        let (pc_v, at_v) = self.slow_access(insn, pc, index, size);
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_store as *const () as i64);
        let call =
            self.b
                .ins()
                .call_indirect(self.store_sig, callee, &[self.hart, va, value, pc_v, at_v]);
        let left = self.b.inst_results(call)[0];
        self.b.ins().brif(left, leave, &[], join, &[]);
        self.b.seal_block(leave);
        self.b.seal_block(join);

        // 1: the store faulted; 2: it asked the machine to look up (a device
        // interrupt, power-off), and the block leaves after it with status 0.
        // The helper set the pc and retired count.
        self.b.switch_to_block(leave);
        let status = self.b.ins().band_imm_s(left, 1);
        self.b.ins().return_(&[status]);

        self.b.switch_to_block(join);
    }
}
