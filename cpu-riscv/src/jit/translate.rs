//! Guest instructions to Cranelift IR, one function per block.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, Function, Inst, InstBuilder, MemFlagsData, Signature, Type, Value, types,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_module::Module;

use cranelift_codegen::isa::CallConv;

use super::{BlockFn, ChainSlot, ChainSlots, JUMP_CACHE, JitEngine, JumpEntry, Trampoline};
use crate::decode::{Insn, Op};
use crate::hart::EXEC_CACHE;
use crate::hart::{Hart, HartState};
use crate::mmu::{TLB_ENTRIES, Tlb, TlbEntry};

mod exits;
mod fp;
mod memory;

/// How a block handles an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Translated to host code in the block.
    Inline,
    /// Executed by the interpreter through a call; the block goes on after it.
    Helper,
    /// Ends the block: a control transfer (translated) or a system instruction
    /// (executed by the interpreter, after which the block returns to dispatch so
    /// that interrupts, privilege and translation changes take effect).
    EndsBlock,
}

/// Whether an instruction run by a helper writes an integer register `rd` (the
/// rest of the helper instructions write FP registers or nothing).
fn writes_integer_rd(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        FeqS | FltS
            | FleS
            | FclassS
            | FmvXW
            | FcvtWS
            | FcvtWuS
            | FcvtLS
            | FcvtLuS
            | FeqD
            | FltD
            | FleD
            | FclassD
            | FmvXD
            | FcvtWD
            | FcvtWuD
            | FcvtLD
            | FcvtLuD
            | LrW
            | ScW
            | AmoSwapW
            | AmoAddW
            | AmoXorW
            | AmoAndW
            | AmoOrW
            | AmoMinW
            | AmoMaxW
            | AmoMinuW
            | AmoMaxuW
            | LrD
            | ScD
            | AmoSwapD
            | AmoAddD
            | AmoXorD
            | AmoAndD
            | AmoOrD
            | AmoMinD
            | AmoMaxD
            | AmoMinuD
            | AmoMaxuD
            | Csrrw
            | Csrrs
            | Csrrc
            | Csrrwi
            | Csrrsi
            | Csrrci
    )
}

/// Whether `op` writes the integer register named by `rd` (in the other formats
/// those bits are immediate bits or name an FP register).
fn writes_x_rd(op: Op) -> bool {
    use Op::*;
    match op {
        Undecoded | Illegal | Beq | Bne | Blt | Bge | Bltu | Bgeu | Sb | Sh | Sw | Sd | Fence
        | FenceI | Ecall | Ebreak | Mret | Sret | Wfi | SfenceVma => false,
        Flw | Fsw | FmaddS | FmsubS | FnmsubS | FnmaddS | FaddS | FsubS | FmulS | FdivS
        | FsqrtS | FsgnjS | FsgnjnS | FsgnjxS | FminS | FmaxS | FcvtWS | FcvtWuS | FcvtLS
        | FcvtLuS | FmvXW | FclassS | FeqS | FltS | FleS | FcvtSW | FcvtSWu | FcvtSL | FcvtSLu
        | FmvWX | Fld | Fsd | FmaddD | FmsubD | FnmsubD | FnmaddD | FaddD | FsubD | FmulD
        | FdivD | FsqrtD | FsgnjD | FsgnjnD | FsgnjxD | FminD | FmaxD | FcvtSD | FcvtDS
        | FcvtWD | FcvtWuD | FcvtLD | FcvtLuD | FmvXD | FclassD | FeqD | FltD | FleD | FcvtDW
        | FcvtDWu | FcvtDL | FcvtDLu | FmvDX => writes_integer_rd(op),
        _ => true,
    }
}

/// Removes the entry block's loads in `loads` whose values nothing uses: the
/// prologue loads every register an instruction names, unused fields included,
/// and Cranelift emits every load, used or not.
fn drop_unused_loads(func: &mut Function, loads: &[Inst]) {
    let mut used = std::collections::HashSet::new();
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            for v in func.dfg.inst_values(inst) {
                used.insert(func.dfg.resolve_aliases(v));
            }
        }
    }
    for &load in loads {
        let result = func.dfg.first_result(load);
        if !used.contains(&result) {
            func.layout.remove_inst(load);
        }
    }
}

/// How the translator handles `op`; `None` ends a block before it.
pub(super) fn kind(op: Op) -> Option<Kind> {
    use Op::*;
    Some(match op {
        Undecoded | Illegal => return None,
        Jal | Jalr | Beq | Bne | Blt | Bge | Bltu | Bgeu => Kind::EndsBlock,
        FenceI | Ecall | Ebreak | Mret | Sret | Wfi | SfenceVma | Csrrw | Csrrs | Csrrc
        | Csrrwi | Csrrsi | Csrrci => Kind::EndsBlock,
        Flw | Fld | Fsw | Fsd => Kind::Inline,
        Lui | Auipc | Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu | Sb | Sh | Sw | Sd | Addi | Slti
        | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Add | Sub | Sll | Slt | Sltu | Xor
        | Srl | Sra | Or | And | Addiw | Slliw | Srliw | Sraiw | Addw | Subw | Sllw | Srlw
        | Sraw | Fence | Mul | Mulh | Mulhsu | Mulhu | Div | Divu | Rem | Remu | Mulw | Divw
        | Divuw | Remw | Remuw => Kind::Inline,
        _ => Kind::Helper,
    })
}

const OFF_STATE: i32 = offset_of!(Hart, state) as i32;
const OFF_X: i32 = OFF_STATE + offset_of!(HartState, x) as i32;
const OFF_PC: i32 = OFF_STATE + offset_of!(HartState, pc) as i32;
const OFF_F: i32 = OFF_STATE + offset_of!(HartState, f) as i32;
const OFF_MSTATUS: i32 = OFF_STATE + offset_of!(HartState, mstatus) as i32;
const OFF_FCSR: i32 = OFF_STATE + offset_of!(HartState, fcsr) as i32;
/// mstatus.FS (Off = 0; any other value lets FP instructions run; 3 = Dirty).
const MSTATUS_FS: u64 = 3 << 13;
/// The upper half of a NaN-boxed single in an FP register.
const NAN_BOX: u64 = 0xffff_ffff_0000_0000;
const OFF_INSTRET: i32 = OFF_STATE + offset_of!(HartState, instret) as i32;
const OFF_TLB_READ: i32 = (offset_of!(Hart, tlb) + offset_of!(Tlb, read)) as i32;
const OFF_TLB_WRITE: i32 = (offset_of!(Hart, tlb) + offset_of!(Tlb, write)) as i32;
const OFF_FAULT: i32 = offset_of!(Hart, jit_fault) as i32;
const OFF_CHAIN_FROM: i32 = offset_of!(Hart, chain_from) as i32;
const OFF_CHAINED: i32 = offset_of!(Hart, chained) as i32;
const OFF_DEBUG: i32 = offset_of!(Hart, debug) as i32;
const OFF_SLOT_ENTRY: i32 = offset_of!(ChainSlot, entry) as i32;
const OFF_SLOT_GENERATION: i32 = offset_of!(ChainSlot, generation) as i32;
const ENTRY_SHIFT: i64 = size_of::<TlbEntry>().trailing_zeros() as i64;
const OFF_TAG: i32 = offset_of!(TlbEntry, tag) as i32;
const OFF_DELTA: i32 = offset_of!(TlbEntry, delta) as i32;

/// What a translation returns when its instruction at `state.pc` must run in the
/// interpreter (a direct access outside the window).
pub(super) const STATUS_INTERPRET: i64 = 2;

/// Memory the translated code owns outright (hart fields, TLB, RAM).
fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Guest RAM behind a TLB hit: aligned or not, never trapping (the TLB check
/// proved it in range).
fn ram_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Guest RAM accessed directly (user mode): may fault on the host, so Cranelift
/// must neither drop nor move it.
fn direct_flags() -> MemFlagsData {
    MemFlagsData::new()
}

/// A register's value as a constant shift of another value (see `Emitter::shifts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shift {
    source: Value,
    /// 32 for slliw/srliw, 64 for slli/srli.
    width: u8,
    left: bool,
    amount: u8,
}

/// Addresses of the caches an indirect jump probes in translated code. All live
/// in boxes owned by the hart or its engine, which outlive the code.
#[derive(Clone, Copy, Debug)]
struct JumpProbe {
    /// The hart's fetch translations: (virtual page, RAM page) pairs.
    exec_cache: i64,
    /// The engine's jump cache of [`JumpEntry`]s.
    jump_cache: i64,
    /// The engine's fence.i epoch.
    epoch: i64,
    /// The hart's chain limit ([`crate::hart::HartPins`]), which other threads
    /// zero to kick the hart out of chained code.
    chain_limit: i64,
}

struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    hart: Value,
    vars: [Variable; 32],
    /// Registers some instruction of the region writes (every rd).
    may_write: [bool; 32],
    /// For registers last set by a shift by a constant in this basic block: the
    /// shifted value, the direction and amount. Two complementary shifts of one
    /// value combined by or/add/xor are a rotate (compilers write rotates that
    /// way for RV64GC, which has none), and become one host rotate.
    shifts: [Option<Shift>; 32],
    /// Direct accesses this basic block made after a window check: (base
    /// register value, offset). See `direct_address`.
    checked: Vec<(Value, i32)>,
    ram_base: u64,
    /// User mode: guest addresses below `1 << direct_bits` are accessed directly
    /// at `ram_base + va`, the host's page protection enforcing the guest's.
    direct_bits: Option<u32>,
    load_sig: cranelift_codegen::ir::SigRef,
    store_sig: cranelift_codegen::ir::SigRef,
    exec_sig: cranelift_codegen::ir::SigRef,
    /// The host fused multiply-add helpers' signature (see `host_fma`).
    fma_sig: cranelift_codegen::ir::SigRef,
    next_sig: cranelift_codegen::ir::SigRef,
    block_sig: cranelift_codegen::ir::SigRef,
    tlb_read: Value,
    tlb_write: Value,
    /// Virtual page of the region: exits to targets in it may chain.
    page: u64,
    /// The first pc of each basic block of the region and the IR block it starts
    /// in: a jump to one of them stays in this function.
    targets: Vec<(u64, cranelift_codegen::ir::Block)>,
    /// (pc of a `ret`, the continuation it is expected to return to, which is
    /// in the region).
    returns: &'a [(u64, u64)],
    /// The pc of the instruction being translated (a jump to it or an earlier pc
    /// may close a loop, so it spends chain budget).
    at_pc: u64,
    slots: &'a mut ChainSlots,
    /// Address of the engine's chain generation.
    generation: i64,
    /// Where indirect jumps look for their target's translation.
    probe: JumpProbe,
    /// Where the current basic block's decoded instructions are kept for helper
    /// calls.
    insns: *const Insn,
    /// Instructions of this basic block already added to `instret` in memory
    /// (before a helper call or at an edge to another basic block, so the
    /// interpreter sees the exact count).
    instret_synced: u64,
    /// This basic block has checked that the FPU is on (mstatus.FS != Off).
    /// Only CSR writes change FS, and they end blocks, so once is enough.
    fpu_checked: bool,
    /// This basic block has set mstatus.FS = Dirty (every path through the FP
    /// instruction that did it writes FP state, the interpreter's included).
    fs_dirty: bool,
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
        debug_assert!(r == 0 || self.may_write[usize::from(r)], "x{r} written");
        if r != 0 {
            self.shifts[usize::from(r)] = None;
            self.b.def_var(self.vars[usize::from(r)], v);
        }
    }

    fn imm(&mut self, insn: &Insn) -> Value {
        self.b.ins().iconst(types::I64, i64::from(insn.imm))
    }

    /// Writes the registers back and runs the instruction at `index` in the
    /// interpreter; returns its status (see `jit_exec`).
    fn call_interpreter(&mut self, pc: u64, index: u64) -> Value {
        self.spill();
        // SAFETY: (pointer arithmetic only) `index` is within the block's
        // instructions, which `insns` points at.
        let insn_at = unsafe { self.insns.add(index as usize) } as i64;
        let callee = self
            .b
            .ins()
            .iconst(types::I64, jit_exec as *const () as i64);
        let insn_v = self.b.ins().iconst(types::I64, insn_at);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        let call = self
            .b
            .ins()
            .call_indirect(self.exec_sig, callee, &[self.hart, insn_v, pc_v]);
        self.b.inst_results(call)[0]
    }

    /// Runs the instruction at `index` in the interpreter. With `ends` the block
    /// returns to dispatch after it; otherwise it goes on unless the instruction
    /// jumped, trapped or asked the machine to look up.
    fn helper(&mut self, insn: &Insn, pc: u64, index: u64, ends: bool) {
        self.sync_instret(index);
        let status = self.call_interpreter(pc, index);
        // Memory now holds every register; the instruction changed at most its
        // integer destination.
        if insn.rd != 0 && writes_integer_rd(insn.op) {
            let v = self.b.ins().load(
                types::I64,
                flags(),
                self.hart,
                OFF_X + 8 * i32::from(insn.rd),
            );
            self.b.def_var(self.vars[usize::from(insn.rd)], v);
            self.shifts[usize::from(insn.rd)] = None;
        }
        let fault = self.b.create_block();
        let go_on = self.b.create_block();
        let is_fault = self.b.ins().icmp_imm_s(IntCC::Equal, status, 1);
        self.b.ins().brif(is_fault, fault, &[], go_on, &[]);

        self.b.switch_to_block(fault);
        let pc_v = self.b.ins().iconst(types::I64, pc as i64);
        self.exit(pc_v, index, 1);

        self.b.switch_to_block(go_on);
        if ends {
            self.write_back(None, index + 1);
            self.ret(0);
            return;
        }
        let leave = self.b.create_block();
        let next = self.b.create_block();
        self.b.ins().brif(status, leave, &[], next, &[]);

        self.b.switch_to_block(leave);
        self.write_back(None, index + 1);
        self.ret(0);

        self.b.switch_to_block(next);
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

    /// The rotate that or/add/xor `insn` computes from two complementary shifts
    /// of one value, if it is one.
    fn rotate(&mut self, insn: &Insn) -> Option<Value> {
        let (a, b) = (
            self.shifts[usize::from(insn.rs1)]?,
            self.shifts[usize::from(insn.rs2)]?,
        );
        let (left, right) = if a.left { (a, b) } else { (b, a) };
        if left.source != right.source
            || !left.left
            || right.left
            || left.width != right.width
            || left.amount == 0
            || left.amount + right.amount != left.width
        {
            return None;
        }
        let amount = i64::from(left.amount);
        Some(if left.width == 32 {
            // The right shift's bit 31 is clear, so the 64-bit or/add/xor of the
            // two sign-extended words is the sign-extended rotated word, as addw.
            let w = self.b.ins().ireduce(types::I32, left.source);
            let r = self.b.ins().rotl_imm_s(w, amount);
            self.b.ins().sextend(types::I64, r)
        } else {
            // The 64-bit ops only: addw of two 64-bit shifts is something else.
            if insn.op == Op::Addw {
                return None;
            }
            self.b.ins().rotl_imm_s(left.source, amount)
        })
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
        self.at_pc = pc;
        if matches!(insn.op, Add | Addw | Or | Xor)
            && let Some(v) = self.rotate(insn)
        {
            self.set(insn.rd, v);
            return true;
        }
        let next = pc.wrapping_add(u64::from(insn.len));
        let rd = insn.rd;
        match kind(insn.op) {
            Some(Kind::Helper) => {
                if !self.fp_inline(insn, pc, index) {
                    self.helper(insn, pc, index, false);
                }
                return true;
            }
            Some(Kind::EndsBlock)
                if !matches!(insn.op, Jal | Jalr | Beq | Bne | Blt | Bge | Bltu | Bgeu) =>
            {
                self.helper(insn, pc, index, true);
                return false;
            }
            _ => {}
        }
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
                self.exit_to(pc.wrapping_add(i64::from(insn.imm) as u64), index + 1);
                return false;
            }
            Jalr => {
                let base = self.reg(insn.rs1);
                let sum = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
                let target = self.b.ins().band_imm_s(sum, !1);
                let link = self.b.ins().iconst(types::I64, next as i64);
                self.set(rd, link);
                // A return from a function the region called: to the call's
                // continuation inside the region, when that is where it goes.
                if let Some(&(_, back)) = self.returns.iter().find(|&&(at, _)| at == pc) {
                    let expected = self.b.ins().icmp_imm_s(IntCC::Equal, target, back as i64);
                    let predicted = self.b.create_block();
                    let elsewhere = self.b.create_block();
                    self.b.ins().brif(expected, predicted, &[], elsewhere, &[]);
                    self.b.seal_block(predicted);
                    self.b.seal_block(elsewhere);
                    self.b.switch_to_block(predicted);
                    self.exit_to(back, index + 1);
                    self.b.switch_to_block(elsewhere);
                }
                self.write_back(Some(target), index + 1);
                self.chain_by_lookup(target);
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
                let taken = self.b.create_block();
                let fall = self.b.create_block();
                self.b.ins().brif(cond, taken, &[], fall, &[]);
                self.b.switch_to_block(taken);
                self.exit_to(pc.wrapping_add(i64::from(insn.imm) as u64), index + 1);
                self.b.switch_to_block(fall);
                self.exit_to(next, index + 1);
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
            Flw => self.fp_load(insn, pc, index, 4),
            Fld => self.fp_load(insn, pc, index, 8),
            Fsw => self.fp_store(insn, pc, index, 4),
            Fsd => self.fp_store(insn, pc, index, 8),
            Fence => {
                if crate::decode::fence_needs_host_barrier(insn.imm) {
                    self.b.ins().fence();
                }
            }
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
                let (width, left) = match insn.op {
                    Slli => (64, true),
                    Srli => (64, false),
                    Slliw => (32, true),
                    Srliw => (32, false),
                    _ => (0, false),
                };
                if width != 0 && rd != 0 {
                    self.shifts[usize::from(rd)] = Some(Shift {
                        source: a,
                        width,
                        left,
                        amount: (imm & i64::from(width - 1)) as u8,
                    });
                }
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
            _ => unreachable!("helper and untranslatable operations are handled above"),
        }
        true
    }
}

/// The signature of every block: `(hart) -> status`, tail calling convention.
fn block_signature(ptr: Type) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

/// Defines `func` in the module and returns its finalized entry.
/// `guest_pc` names the code in the profiling map (`None` for the trampoline).
fn finish(
    jit: &mut JitEngine,
    sig: &Signature,
    guest_pc: Option<u64>,
) -> Result<*const u8, String> {
    let module = jit.module.as_mut().ok_or("no code cache")?;
    let id = module
        .declare_anonymous_function(sig)
        .map_err(|e| e.to_string())?;
    module
        .define_function(id, &mut jit.ctx)
        .map_err(|e| e.to_string())?;
    let size = jit
        .ctx
        .compiled_code()
        .map_or(0, |code| code.code_info().total_size);
    let listing = jit.ctx.compiled_code().and_then(|code| code.vcode.clone());
    module.clear_context(&mut jit.ctx);
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let entry = module.get_finalized_function(id);
    if let Some(profile) = jit.profile.as_mut() {
        profile.record(entry, size, guest_pc, listing.as_deref());
    }
    Ok(entry)
}

/// Compiles the host-convention function through which Rust enters blocks.
pub(super) fn compile_trampoline(jit: &mut JitEngine) -> Result<Trampoline, String> {
    let module = jit.module.as_mut().ok_or("no code cache")?;
    let ptr = module.target_config().pointer_type();
    jit.ctx.clear();
    let mut sig = module.make_signature();
    sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr)]);
    sig.returns.push(AbiParam::new(types::I64));
    jit.ctx.func.signature = sig.clone();
    {
        let mut b = FunctionBuilder::new(&mut jit.ctx.func, &mut jit.fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let (hart, target) = (b.block_params(entry)[0], b.block_params(entry)[1]);
        let block_sig = b.import_signature(block_signature(ptr));
        let call = b.ins().call_indirect(block_sig, target, &[hart]);
        let status = b.inst_results(call)[0];
        b.ins().return_(&[status]);
        b.seal_all_blocks();
        b.finalize(module.target_config());
    }
    let code = finish(jit, &sig, None)?;
    // SAFETY: `code` is the function just defined with the host's C convention and
    // signature `(ptr, ptr) -> i64`; the module keeps it alive until `free_memory`,
    // which also drops the engine's copy of this pointer.
    Ok(unsafe { std::mem::transmute::<*const u8, Trampoline>(code) })
}

/// Translates a region: basic blocks within one page, the first of which is
/// the entry; jumps between them stay in the translation.
///
/// `exec_cache` is the hart's fetch translation cache, which indirect jumps probe
/// together with the engine's jump cache; `chain_limit` the hart's chain limit.
pub(super) fn compile(
    jit: &mut JitEngine,
    region: &super::Region,
    ram_base: u64,
    exec_cache: *const (u64, u64),
    chain_limit: *const u64,
    direct_window: Option<u64>,
) -> Result<BlockFn, String> {
    let returns = &region.returns;
    let region = &region.blocks;
    let module = jit.module.as_mut().ok_or("no code cache")?;
    let ptr = module.target_config().pointer_type();
    let call_conv = module.isa().default_call_conv();
    jit.ctx.clear();
    jit.ctx
        .set_disasm(jit.profile.as_ref().is_some_and(|p| p.listing.is_some()));
    let sig = block_signature(ptr);
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
    let mut exec_sig = Signature::new(call_conv);
    exec_sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(ptr),
        AbiParam::new(types::I64),
    ]);
    exec_sig.returns.push(AbiParam::new(types::I64));
    let mut fma_sig = Signature::new(call_conv);
    fma_sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(types::I64),
        AbiParam::new(types::I64),
        AbiParam::new(types::I64),
    ]);
    fma_sig.returns.push(AbiParam::new(types::I64));
    let mut next_sig = Signature::new(call_conv);
    next_sig.params.push(AbiParam::new(ptr));
    next_sig.returns.push(AbiParam::new(ptr));
    // Helper calls find their instruction here; kept until the module is freed.
    let kept: Box<[Insn]> = region.iter().flatten().map(|(_, insn)| *insn).collect();
    let kept_at = kept.as_ptr();
    jit.insn_arena.push(kept);
    let generation = &raw const jit.chain_generation as i64;
    let probe = JumpProbe {
        exec_cache: exec_cache as i64,
        jump_cache: jit.jump_cache.as_ptr() as i64,
        epoch: &raw const jit.epoch as i64,
        chain_limit: chain_limit as i64,
    };
    {
        let mut b = FunctionBuilder::new(&mut jit.ctx.func, &mut jit.fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let hart = b.block_params(entry)[0];
        let vars: [Variable; 32] = std::array::from_fn(|_| b.declare_var(types::I64));
        // Load the registers the block names (those it does not read go again
        // in `drop_unused_loads`).
        let mut used = [false; 32];
        let mut may_write = [false; 32];
        for (_, insn) in region.iter().flatten() {
            for r in [insn.rs1, insn.rs2, insn.rd] {
                used[usize::from(r & 31)] = true;
            }
            if writes_x_rd(insn.op) {
                may_write[usize::from(insn.rd & 31)] = true;
            }
        }
        may_write[0] = false;
        let mut prologue_loads = Vec::new();
        for r in 1..32 {
            let v = if used[r] {
                let v = b
                    .ins()
                    .load(types::I64, flags(), hart, OFF_X + 8 * r as i32);
                prologue_loads.push(v);
                v
            } else {
                b.ins().iconst(types::I64, 0)
            };
            b.def_var(vars[r], v);
        }
        let tlb_read = b.ins().load(ptr, flags(), hart, OFF_TLB_READ);
        let tlb_write = b.ins().load(ptr, flags(), hart, OFF_TLB_WRITE);
        prologue_loads.extend([tlb_read, tlb_write]);
        let targets: Vec<_> = region
            .iter()
            .map(|block| (block[0].0, b.create_block()))
            .collect();
        b.ins().jump(targets[0].1, &[]);
        let load_sig = b.import_signature(load_sig);
        let store_sig = b.import_signature(store_sig);
        let exec_sig = b.import_signature(exec_sig);
        let fma_sig = b.import_signature(fma_sig);
        let next_sig = b.import_signature(next_sig);
        let block_sig = b.import_signature(sig.clone());
        let mut e = Emitter {
            b: &mut b,
            hart,
            vars,
            shifts: [None; 32],
            checked: Vec::new(),
            may_write,
            ram_base,
            direct_bits: direct_window.map(u64::trailing_zeros),
            load_sig,
            store_sig,
            exec_sig,
            fma_sig,
            next_sig,
            block_sig,
            tlb_read,
            tlb_write,
            page: region[0][0].0 >> 12,
            targets,
            returns,
            at_pc: region[0][0].0,
            slots: &mut jit.slots,
            generation,
            probe,
            insns: kept_at,
            instret_synced: 0,
            fpu_checked: false,
            fs_dirty: false,
        };
        for (index, block) in region.iter().enumerate() {
            let start = e.targets[index].1;
            e.b.switch_to_block(start);
            e.instret_synced = 0;
            e.shifts = [None; 32];
            e.checked.clear();
            e.fpu_checked = false;
            e.fs_dirty = false;
            let mut open = true;
            for (index, (pc, insn)) in block.iter().enumerate() {
                if !e.insn(insn, *pc, index as u64) {
                    open = false;
                    break;
                }
            }
            if open {
                let (last_pc, last) = block[block.len() - 1];
                e.exit_to(last_pc + u64::from(last.len), block.len() as u64);
            }
            // SAFETY: (pointer arithmetic only) the arena holds every basic
            // block's instructions in order, so this stays within it or one past.
            e.insns = unsafe { e.insns.add(block.len()) };
        }
        b.seal_all_blocks();
        b.finalize(module.target_config());
        let loads: Vec<Inst> = prologue_loads
            .iter()
            .filter_map(|&v| jit.ctx.func.dfg.value_def(v).inst())
            .collect();
        drop_unused_loads(&mut jit.ctx.func, &loads);
    }
    let code = finish(jit, &sig, Some(region[0][0].0))?;
    Ok(BlockFn(code))
}

/// The translation to chain to at `state.pc`, if the jump cache holds a current
/// one (null otherwise: the dispatch loop will look, compile or interpret).
extern "C" fn jit_next_block(hart: *mut Hart) -> *const u8 {
    // SAFETY: as for `jit_load`.
    let hart = unsafe { &mut *hart };
    hart.cached_block(hart.state.pc)
        .map_or(std::ptr::null(), |block| block.0)
}

/// Runs one instruction of a block in the interpreter (FP, atomics, system).
/// Returns 0 to go on with the block, 1 when a fault is parked in the hart, 2 when
/// the block must return to dispatch (the pc changed, or the machine wants to look
/// at interrupts or stop).
extern "C" fn jit_exec(hart: *mut Hart, insn: *const Insn, pc: u64) -> u64 {
    // SAFETY: translated code passes the hart pointer it was called with (derived
    // from `&mut Hart` by the dispatch loop, exclusive during the call) and a
    // pointer into the engine's instruction arena, which outlives the code.
    let (hart, insn) = unsafe { (&mut *hart, *insn) };
    hart.state.pc = pc;
    match hart.execute(insn) {
        Ok(()) => {
            let next = pc.wrapping_add(u64::from(insn.len));
            u64::from(hart.state.pc != next || hart.exit.is_some() || hart.irq_check) * 2
        }
        Err(trap) => {
            hart.jit_trap = Some(trap);
            1
        }
    }
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
