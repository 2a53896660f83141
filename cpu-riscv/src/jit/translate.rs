//! Guest instructions to Cranelift IR, one function per block.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, Function, Inst, InstBuilder, MemFlagsData, Signature, Type, Value, types,
};
use cranelift_frontend::{FunctionBuilder, Variable};

use crate::decode::{Insn, Op};
use crate::hart::EXEC_CACHE;
use crate::hart::{Hart, HartState};
use crate::mmu::{TLB_ENTRIES, Tlb, TlbEntry};
use jit_core::{
    BlockFn, ChainSlot, ChainSlots, CodeModule, JUMP_CACHE, JumpEntry, block_signature,
};

mod exits;
mod fp;
mod helpers;
use helpers::{SlowAccess, jit_load, jit_next_block, jit_store};
mod integer;
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

/// Whether a translation of `region` may jump from one of its basic blocks to
/// another (or to itself): a region of several blocks keeps only those on loops
/// through its entry, and a return the region predicts goes back into it.
fn region_loops(region: &[Vec<(u64, Insn)>], returns: &[(u64, u64)]) -> bool {
    let [block] = region else {
        return true;
    };
    if !returns.is_empty() {
        return true;
    }
    let start = block[0].0;
    let (pc, last) = block[block.len() - 1];
    let target = pc.wrapping_add(i64::from(last.imm) as u64);
    let next = pc.wrapping_add(u64::from(last.len));
    use Op::*;
    match last.op {
        Jal | Beq | Bne | Blt | Bge | Bltu | Bgeu => target == start || next == start,
        _ => next == start,
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

/// Where translated code finds what lives outside it, for one hart: fixed when
/// the translation is asked for, so it can be compiled on another thread.
#[derive(Clone, Copy, Debug)]
pub(super) struct HartAddresses {
    /// Host address of guest RAM's first byte.
    pub(super) ram_base: u64,
    /// User mode: guest addresses below this power of two are accessed
    /// directly (see `Emitter::direct_bits`).
    pub(super) direct_window: Option<u64>,
    /// Address of the engine's chain generation.
    pub(super) generation: i64,
    /// Where indirect jumps look for their target's translation.
    pub(super) probe: JumpProbe,
}

/// Addresses of the caches an indirect jump probes in translated code. All live
/// in boxes owned by the hart or its engine, which outlive the code.
#[derive(Clone, Copy, Debug)]
pub(super) struct JumpProbe {
    /// The hart's fetch translations: (virtual page, RAM page) pairs.
    pub(super) exec_cache: i64,
    /// The engine's jump cache of [`JumpEntry`]s.
    pub(super) jump_cache: i64,
    /// The engine's fence.i epoch.
    pub(super) epoch: i64,
    /// The hart's chain limit ([`crate::hart::HartPins`]), which other threads
    /// zero to kick the hart out of chained code.
    pub(super) chain_limit: i64,
    /// Low pc bits the jump cache's index skips.
    pub(super) pc_shift: i64,
}

struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    hart: Value,
    vars: [Variable; 32],
    /// Registers some instruction of the region writes (every rd).
    may_write: [bool; 32],
    /// Registers whose value in host code may differ from the hart's copy in
    /// memory here: what an exit must write back. Written registers join it;
    /// a helper call, which writes them all back, empties it. A basic block
    /// starts with none when the region has no jumps inside it (its one basic
    /// block is only entered from the prologue), and with every register the
    /// region writes when it does (a jump back may come from anywhere in it).
    dirty: [bool; 32],
    /// The region has jumps between its basic blocks (see `dirty`).
    loops: bool,
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
            self.dirty[usize::from(r)] = true;
            self.b.def_var(self.vars[usize::from(r)], v);
        }
    }

    fn imm(&mut self, insn: &Insn) -> Value {
        self.b.ins().iconst(types::I64, i64::from(insn.imm))
    }
}

/// Translates a region: basic blocks within one page, the first of which is
/// the entry; jumps between them stay in the translation.
///
/// Runs on the compile thread when the engine has one: it touches only the
/// code module, the region and the addresses it is given.
pub(super) fn compile(
    code: &mut CodeModule,
    region: &super::Region,
    at: &HartAddresses,
) -> Result<BlockFn, String> {
    let returns = &region.returns;
    let region = &region.blocks;
    let call_conv = code.call_conv().ok_or("no code memory")?;
    let ptr = types::I64;
    let sig = block_signature(ptr);
    let config = code.start_function(sig.clone())?;
    debug_assert_eq!(config.pointer_type(), ptr, "a 64-bit host");
    // Memory slow paths: (hart, va, [value,] pc, SlowAccess) -> value or
    // status; see `jit_load` and `jit_store`.
    let mut load_sig = Signature::new(call_conv);
    load_sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(types::I64),
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
        AbiParam::new(types::I64),
    ]);
    store_sig.returns.push(AbiParam::new(types::I64));
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
    let kept_at = code.keep(kept);
    {
        let (func, fctx, slots) = code.function_parts();
        let mut b = FunctionBuilder::new(func, fctx);
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
        let loops = region_loops(region, returns);
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
            dirty: [false; 32],
            loops,
            ram_base: at.ram_base,
            direct_bits: at.direct_window.map(u64::trailing_zeros),
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
            slots,
            generation: at.generation,
            probe: at.probe,
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
            e.dirty = if e.loops { e.may_write } else { [false; 32] };
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
        b.finalize(config);
        let func = code.function_parts().0;
        let loads: Vec<Inst> = prologue_loads
            .iter()
            .filter_map(|&v| func.dfg.value_def(v).inst())
            .collect();
        drop_unused_loads(func, &loads);
    }
    let entry = code.finish_function(Some(region[0][0].0))?;
    Ok(BlockFn(entry))
}
