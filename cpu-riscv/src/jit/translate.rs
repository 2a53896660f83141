//! Guest instructions to Cranelift IR, one function per block.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Signature, Type, Value, types};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_module::Module;

use super::{BlockFn, JitEngine};
use crate::decode::{Insn, Op};
use crate::hart::{Hart, HartState};
use crate::mmu::{TLB_ENTRIES, Tlb, TlbEntry};

/// Whether the translator handles `op`; anything else ends a block before it.
pub(super) fn supported(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        Lui | Auipc
            | Jal
            | Jalr
            | Beq
            | Bne
            | Blt
            | Bge
            | Bltu
            | Bgeu
            | Lb
            | Lh
            | Lw
            | Ld
            | Lbu
            | Lhu
            | Lwu
            | Sb
            | Sh
            | Sw
            | Sd
            | Addi
            | Slti
            | Sltiu
            | Xori
            | Ori
            | Andi
            | Slli
            | Srli
            | Srai
            | Add
            | Sub
            | Sll
            | Slt
            | Sltu
            | Xor
            | Srl
            | Sra
            | Or
            | And
            | Addiw
            | Slliw
            | Srliw
            | Sraiw
            | Addw
            | Subw
            | Sllw
            | Srlw
            | Sraw
            | Fence
            | Mul
            | Mulh
            | Mulhsu
            | Mulhu
            | Div
            | Divu
            | Rem
            | Remu
            | Mulw
            | Divw
            | Divuw
            | Remw
            | Remuw
    )
}

const OFF_STATE: i32 = offset_of!(Hart, state) as i32;
const OFF_X: i32 = OFF_STATE + offset_of!(HartState, x) as i32;
const OFF_PC: i32 = OFF_STATE + offset_of!(HartState, pc) as i32;
const OFF_INSTRET: i32 = OFF_STATE + offset_of!(HartState, instret) as i32;
const OFF_TLB_READ: i32 = (offset_of!(Hart, tlb) + offset_of!(Tlb, read)) as i32;
const OFF_TLB_WRITE: i32 = (offset_of!(Hart, tlb) + offset_of!(Tlb, write)) as i32;
const OFF_FAULT: i32 = offset_of!(Hart, jit_fault) as i32;
const ENTRY_SHIFT: i64 = size_of::<TlbEntry>().trailing_zeros() as i64;
const OFF_TAG: i32 = offset_of!(TlbEntry, tag) as i32;
const OFF_DELTA: i32 = offset_of!(TlbEntry, delta) as i32;

/// Memory the translated code owns outright (hart fields, TLB, RAM).
fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Guest RAM: aligned or not, never trapping (the TLB check proved it in range).
fn ram_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    hart: Value,
    vars: [Variable; 32],
    written: [bool; 32],
    ram_base: u64,
    load_sig: cranelift_codegen::ir::SigRef,
    store_sig: cranelift_codegen::ir::SigRef,
    tlb_read: Value,
    tlb_write: Value,
}

impl Emitter<'_, '_> {
    fn reg(&mut self, r: u8) -> Value {
        if r == 0 {
            self.b.ins().iconst(types::I64, 0)
        } else {
            self.b.use_var(self.vars[usize::from(r)])
        }
    }

    fn set(&mut self, r: u8, v: Value) {
        if r != 0 {
            self.b.def_var(self.vars[usize::from(r)], v);
            self.written[usize::from(r)] = true;
        }
    }

    fn imm(&mut self, insn: &Insn) -> Value {
        self.b.ins().iconst(types::I64, i64::from(insn.imm))
    }

    /// Writes back registers, pc and the retired count; returns `status`.
    fn exit(&mut self, pc: Value, retired: u64, status: i64) {
        for r in 1..32u8 {
            if self.written[usize::from(r)] {
                let v = self.b.use_var(self.vars[usize::from(r)]);
                self.b
                    .ins()
                    .store(flags(), v, self.hart, OFF_X + 8 * i32::from(r));
            }
        }
        self.b.ins().store(flags(), pc, self.hart, OFF_PC);
        let instret = self
            .b
            .ins()
            .load(types::I64, flags(), self.hart, OFF_INSTRET);
        let instret = self.b.ins().iadd_imm_s(instret, retired as i64);
        self.b.ins().store(flags(), instret, self.hart, OFF_INSTRET);
        let status = self.b.ins().iconst(types::I64, status);
        self.b.ins().return_(&[status]);
    }

    /// Inline TLB check; returns (hit block param path) host address on hit.
    fn tlb_lookup(&mut self, tlb: Value, va: Value, size: u8) -> (Value, Value) {
        let b = &mut *self.b;
        let vpn = b.ins().ushr_imm_s(va, 12);
        let index = b.ins().band_imm_s(vpn, (TLB_ENTRIES - 1) as i64);
        let scaled = b.ins().ishl_imm_s(index, ENTRY_SHIFT);
        let entry = b.ins().iadd(tlb, scaled);
        let tag = b.ins().load(types::I64, flags(), entry, OFF_TAG);
        let delta = b.ins().load(types::I64, flags(), entry, OFF_DELTA);
        let hit = b.ins().icmp(IntCC::Equal, tag, vpn);
        let in_page = b.ins().band_imm_s(va, 0xfff);
        let fits = b.ins().icmp_imm_s(
            IntCC::UnsignedLessThanOrEqual,
            in_page,
            4096 - i64::from(size),
        );
        let ok = b.ins().band(hit, fits);
        let offset = b.ins().iadd(va, delta);
        let host = b.ins().iadd_imm_s(offset, self.ram_base as i64);
        (ok, host)
    }

    fn load(&mut self, insn: &Insn, pc: u64, index: u64, size: u8, signed: bool) {
        let base = self.reg(insn.rs1);
        let va = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
        let (ok, host) = self.tlb_lookup(self.tlb_read, va, size);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let fault = self.b.create_block();
        let join = self.b.create_block();
        self.b.append_block_param(join, types::I64);
        self.b.ins().brif(ok, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        let ty: Type = match size {
            1 => types::I8,
            2 => types::I16,
            4 => types::I32,
            _ => types::I64,
        };
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
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_load as *const () as i64);
        let size_v = self.b.ins().iconst(types::I64, i64::from(size));
        let call = self
            .b
            .ins()
            .call_indirect(self.load_sig, callee, &[self.hart, va, size_v]);
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

        self.b.switch_to_block(fault);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        self.exit(pc_v, index, 1);

        self.b.switch_to_block(join);
        let value = self.b.block_params(join)[0];
        self.set(insn.rd, value);
    }

    fn store(&mut self, insn: &Insn, pc: u64, index: u64, size: u8) {
        let base = self.reg(insn.rs1);
        let value = self.reg(insn.rs2);
        let va = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
        let (ok, host) = self.tlb_lookup(self.tlb_write, va, size);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let fault = self.b.create_block();
        let stop = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(ok, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        let narrow = match size {
            1 => self.b.ins().ireduce(types::I8, value),
            2 => self.b.ins().ireduce(types::I16, value),
            4 => self.b.ins().ireduce(types::I32, value),
            _ => value,
        };
        self.b.ins().store(ram_flags(), narrow, host, 0);
        self.b.ins().jump(join, &[]);

        self.b.switch_to_block(slow);
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_store as *const () as i64);
        let size_v = self.b.ins().iconst(types::I64, i64::from(size));
        self.b
            .ins()
            .call_indirect(self.store_sig, callee, &[self.hart, va, size_v, value]);
        let flag = self.b.ins().load(types::I8, flags(), self.hart, OFF_FAULT);
        let is_fault = self.b.ins().icmp_imm_s(IntCC::Equal, flag, 1);
        let stop_or_join = self.b.create_block();
        self.b.ins().brif(is_fault, fault, &[], stop_or_join, &[]);
        self.b.switch_to_block(stop_or_join);
        self.b.ins().brif(flag, stop, &[], join, &[]);

        self.b.switch_to_block(fault);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        self.exit(pc_v, index, 1);

        // The store asked the machine to look up (device interrupt, power-off):
        // leave the block after this instruction.
        self.b.switch_to_block(stop);
        let next = self
            .b
            .ins()
            .iconst(types::I64, (pc + u64::from(insn.len)) as i64);
        self.exit(next, index + 1, 0);

        self.b.switch_to_block(join);
    }

    /// Signed division with RISC-V's results for zero and overflow.
    fn div(&mut self, a: Value, b: Value, ty: Type, signed: bool, rem: bool) -> Value {
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let one = self.b.ins().iconst(ty, 1);
        let mut divisor = self.b.ins().select(zero, one, b);
        if signed {
            let min = if ty == types::I32 {
                i64::from(i32::MIN)
            } else {
                i64::MIN
            };
            let a_min = self.b.ins().icmp_imm_s(IntCC::Equal, a, min);
            let b_neg = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
            let overflow = self.b.ins().band(a_min, b_neg);
            let one = self.b.ins().iconst(ty, 1);
            divisor = self.b.ins().select(overflow, one, divisor);
            // MIN / -1 = MIN (= MIN / 1) and MIN % -1 = 0 (= MIN % 1).
        }
        let result = match (signed, rem) {
            (true, false) => self.b.ins().sdiv(a, divisor),
            (false, false) => self.b.ins().udiv(a, divisor),
            (true, true) => self.b.ins().srem(a, divisor),
            (false, true) => self.b.ins().urem(a, divisor),
        };
        let on_zero = if rem { a } else { self.b.ins().iconst(ty, -1) };
        self.b.ins().select(zero, on_zero, result)
    }

    fn word_op(&mut self, insn: &Insn, f: impl Fn(&mut FunctionBuilder, Value, Value) -> Value) {
        let a = self.reg(insn.rs1);
        let b = self.reg(insn.rs2);
        let a = self.b.ins().ireduce(types::I32, a);
        let b = self.b.ins().ireduce(types::I32, b);
        let r = f(self.b, a, b);
        let r = self.b.ins().sextend(types::I64, r);
        self.set(insn.rd, r);
    }

    /// Emits one instruction; returns false when it ended the block.
    fn insn(&mut self, insn: &Insn, pc: u64, index: u64) -> bool {
        use Op::*;
        let next = pc.wrapping_add(u64::from(insn.len));
        let rd = insn.rd;
        match insn.op {
            Lui => {
                let v = self.imm(insn);
                self.set(rd, v);
            }
            Auipc => {
                let v = self.b.ins().iconst(
                    types::I64,
                    pc.wrapping_add(i64::from(insn.imm) as u64) as i64,
                );
                self.set(rd, v);
            }
            Jal => {
                let link = self.b.ins().iconst(types::I64, next as i64);
                self.set(rd, link);
                let target = self.b.ins().iconst(
                    types::I64,
                    pc.wrapping_add(i64::from(insn.imm) as u64) as i64,
                );
                self.exit(target, index + 1, 0);
                return false;
            }
            Jalr => {
                let base = self.reg(insn.rs1);
                let sum = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
                let target = self.b.ins().band_imm_s(sum, !1);
                let link = self.b.ins().iconst(types::I64, next as i64);
                self.set(rd, link);
                self.exit(target, index + 1, 0);
                return false;
            }
            Beq | Bne | Blt | Bge | Bltu | Bgeu => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let cc = match insn.op {
                    Beq => IntCC::Equal,
                    Bne => IntCC::NotEqual,
                    Blt => IntCC::SignedLessThan,
                    Bge => IntCC::SignedGreaterThanOrEqual,
                    Bltu => IntCC::UnsignedLessThan,
                    _ => IntCC::UnsignedGreaterThanOrEqual,
                };
                let cond = self.b.ins().icmp(cc, a, c);
                let taken = self.b.ins().iconst(
                    types::I64,
                    pc.wrapping_add(i64::from(insn.imm) as u64) as i64,
                );
                let fall = self.b.ins().iconst(types::I64, next as i64);
                let target = self.b.ins().select(cond, taken, fall);
                self.exit(target, index + 1, 0);
                return false;
            }
            Lb => self.load(insn, pc, index, 1, true),
            Lh => self.load(insn, pc, index, 2, true),
            Lw => self.load(insn, pc, index, 4, true),
            Ld => self.load(insn, pc, index, 8, false),
            Lbu => self.load(insn, pc, index, 1, false),
            Lhu => self.load(insn, pc, index, 2, false),
            Lwu => self.load(insn, pc, index, 4, false),
            Sb => self.store(insn, pc, index, 1),
            Sh => self.store(insn, pc, index, 2),
            Sw => self.store(insn, pc, index, 4),
            Sd => self.store(insn, pc, index, 8),
            Fence => {}
            Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw
            | Srliw | Sraiw => {
                let a = self.reg(insn.rs1);
                let imm = i64::from(insn.imm);
                let v = match insn.op {
                    Addi => self.b.ins().iadd_imm_s(a, imm),
                    Slti => {
                        let c = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, imm);
                        self.b.ins().uextend(types::I64, c)
                    }
                    Sltiu => {
                        let c = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, a, imm);
                        self.b.ins().uextend(types::I64, c)
                    }
                    Xori => self.b.ins().bxor_imm_s(a, imm),
                    Ori => self.b.ins().bor_imm_s(a, imm),
                    Andi => self.b.ins().band_imm_s(a, imm),
                    Slli => self.b.ins().ishl_imm_s(a, imm & 63),
                    Srli => self.b.ins().ushr_imm_s(a, imm & 63),
                    Srai => self.b.ins().sshr_imm_s(a, imm & 63),
                    _ => {
                        let w = self.b.ins().ireduce(types::I32, a);
                        let r = match insn.op {
                            Addiw => self.b.ins().iadd_imm_s(w, imm),
                            Slliw => self.b.ins().ishl_imm_s(w, imm & 31),
                            Srliw => self.b.ins().ushr_imm_s(w, imm & 31),
                            _ => self.b.ins().sshr_imm_s(w, imm & 31),
                        };
                        self.b.ins().sextend(types::I64, r)
                    }
                };
                self.set(rd, v);
            }
            Add | Sub | Sll | Slt | Sltu | Xor | Srl | Sra | Or | And | Mul | Mulh | Mulhu
            | Mulhsu => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let v = match insn.op {
                    Add => self.b.ins().iadd(a, c),
                    Sub => self.b.ins().isub(a, c),
                    Sll => self.b.ins().ishl(a, c),
                    Srl => self.b.ins().ushr(a, c),
                    Sra => self.b.ins().sshr(a, c),
                    Slt => {
                        let f = self.b.ins().icmp(IntCC::SignedLessThan, a, c);
                        self.b.ins().uextend(types::I64, f)
                    }
                    Sltu => {
                        let f = self.b.ins().icmp(IntCC::UnsignedLessThan, a, c);
                        self.b.ins().uextend(types::I64, f)
                    }
                    Xor => self.b.ins().bxor(a, c),
                    Or => self.b.ins().bor(a, c),
                    And => self.b.ins().band(a, c),
                    Mul => self.b.ins().imul(a, c),
                    Mulh => self.b.ins().smulhi(a, c),
                    Mulhu => self.b.ins().umulhi(a, c),
                    _ => {
                        // mulhsu = mulhu(a, b) - (a < 0 ? b : 0)
                        let hi = self.b.ins().umulhi(a, c);
                        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                        let zero = self.b.ins().iconst(types::I64, 0);
                        let fix = self.b.ins().select(neg, c, zero);
                        self.b.ins().isub(hi, fix)
                    }
                };
                self.set(rd, v);
            }
            Div | Divu | Rem | Remu => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let signed = matches!(insn.op, Div | Rem);
                let rem = matches!(insn.op, Rem | Remu);
                let v = self.div(a, c, types::I64, signed, rem);
                self.set(rd, v);
            }
            Addw | Subw | Sllw | Srlw | Sraw | Mulw => {
                let op = insn.op;
                self.word_op(insn, |b, x, y| match op {
                    Addw => b.ins().iadd(x, y),
                    Subw => b.ins().isub(x, y),
                    Sllw => b.ins().ishl(x, y),
                    Srlw => b.ins().ushr(x, y),
                    Sraw => b.ins().sshr(x, y),
                    _ => b.ins().imul(x, y),
                });
            }
            Divw | Divuw | Remw | Remuw => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let a = self.b.ins().ireduce(types::I32, a);
                let c = self.b.ins().ireduce(types::I32, c);
                let signed = matches!(insn.op, Divw | Remw);
                let rem = matches!(insn.op, Remw | Remuw);
                let v = self.div(a, c, types::I32, signed, rem);
                let v = self.b.ins().sextend(types::I64, v);
                self.set(rd, v);
            }
            _ => unreachable!("block_instructions only takes supported operations"),
        }
        true
    }
}

/// Translates one block and returns its entry point.
pub(super) fn compile(
    jit: &mut JitEngine,
    insns: &[(u64, Insn)],
    ram_base: u64,
) -> Result<BlockFn, String> {
    let module = jit.module.as_mut().ok_or("no code cache")?;
    let ptr = module.target_config().pointer_type();
    let call_conv = module.isa().default_call_conv();
    jit.ctx.clear();
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I64));
    jit.ctx.func.signature = sig.clone();
    let mut load_sig = Signature::new(call_conv);
    load_sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(types::I64),
        AbiParam::new(types::I64),
    ]);
    load_sig.returns.push(AbiParam::new(types::I64));
    let mut store_sig = Signature::new(call_conv);
    store_sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(types::I64),
        AbiParam::new(types::I64),
        AbiParam::new(types::I64),
    ]);
    {
        let mut b = FunctionBuilder::new(&mut jit.ctx.func, &mut jit.fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let hart = b.block_params(entry)[0];
        let vars: [Variable; 32] = std::array::from_fn(|_| b.declare_var(types::I64));
        // Load the registers the block reads or writes.
        let mut used = [false; 32];
        for (_, insn) in insns {
            for r in [insn.rs1, insn.rs2, insn.rd] {
                used[usize::from(r & 31)] = true;
            }
        }
        for r in 1..32 {
            let v = if used[r] {
                b.ins()
                    .load(types::I64, flags(), hart, OFF_X + 8 * r as i32)
            } else {
                b.ins().iconst(types::I64, 0)
            };
            b.def_var(vars[r], v);
        }
        let tlb_read = b.ins().load(ptr, flags(), hart, OFF_TLB_READ);
        let tlb_write = b.ins().load(ptr, flags(), hart, OFF_TLB_WRITE);
        let load_sig = b.import_signature(load_sig);
        let store_sig = b.import_signature(store_sig);
        let mut e = Emitter {
            b: &mut b,
            hart,
            vars,
            written: [false; 32],
            ram_base,
            load_sig,
            store_sig,
            tlb_read,
            tlb_write,
        };
        let mut open = true;
        for (index, (pc, insn)) in insns.iter().enumerate() {
            if !e.insn(insn, *pc, index as u64) {
                open = false;
                break;
            }
        }
        if open {
            let (last_pc, last) = insns[insns.len() - 1];
            let next =
                e.b.ins()
                    .iconst(types::I64, (last_pc + u64::from(last.len)) as i64);
            e.exit(next, insns.len() as u64, 0);
        }
        b.seal_all_blocks();
        b.finalize(module.target_config());
    }
    let id = module
        .declare_anonymous_function(&sig)
        .map_err(|e| e.to_string())?;
    module
        .define_function(id, &mut jit.ctx)
        .map_err(|e| e.to_string())?;
    module.clear_context(&mut jit.ctx);
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` is the entry of the function just defined with signature
    // `extern "C" fn(*mut Hart) -> u64` (the module's default call convention is the
    // host's C convention), and the module keeps it alive until `free_memory`.
    Ok(unsafe { std::mem::transmute::<*const u8, BlockFn>(code) })
}

/// Slow-path load called from translated code: the interpreter's memory path.
/// A fault is parked in the hart and flagged for the block to exit.
extern "C" fn jit_load(hart: *mut Hart, va: u64, size: u64) -> u64 {
    // SAFETY: translated code passes the pointer it was called with, which the
    // dispatch loop derived from `&mut Hart` and keeps exclusive during the call.
    let hart = unsafe { &mut *hart };
    match hart.load(va, size as u8) {
        Ok(value) => value,
        Err(trap) => {
            hart.jit_trap = Some(trap);
            hart.jit_fault = 1;
            0
        }
    }
}

/// Slow-path store called from translated code (misses, MMIO, code pages).
extern "C" fn jit_store(hart: *mut Hart, va: u64, size: u64, value: u64) {
    // SAFETY: as for `jit_load`.
    let hart = unsafe { &mut *hart };
    match hart.store(va, size as u8, value) {
        Ok(()) => {
            if hart.exit.is_some() || hart.irq_check {
                hart.jit_fault = 2;
            }
        }
        Err(trap) => {
            hart.jit_trap = Some(trap);
            hart.jit_fault = 1;
        }
    }
}
