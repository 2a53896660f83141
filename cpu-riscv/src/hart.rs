//! One RISC-V hart: architectural state, the fetch/decode cache, memory access and
//! trap delivery. Instruction semantics live in [`crate::exec`].

use rustc_hash::FxHashMap as HashMap;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use emu_core::{Bus, GuestPhysAddr, GuestRam, IrqLine, VirtualClock};

use crate::csr::{
    MSTATUS_MIE, MSTATUS_MPIE, MSTATUS_MPP, MSTATUS_MPRV, MSTATUS_SIE, MSTATUS_SPIE, MSTATUS_SPP,
};
use crate::decode::{Insn, Op, decode, insn_len};
use crate::mmu::{Access, Tlb};
use crate::trap::{TVAL_INSTRUCTION_BITS, Trap, cause, irq};

/// User mode.
pub const PRIV_U: u8 = 0;
/// Supervisor mode.
pub const PRIV_S: u8 = 1;
/// Machine mode.
pub const PRIV_M: u8 = 3;

const PAGE_SIZE: u64 = 4096;
const SLOTS_PER_PAGE: usize = (PAGE_SIZE / 2) as usize;

/// The architectural state of a hart, in one `#[repr(C)]` block so translated code
/// can address fields at fixed offsets.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct HartState {
    /// Integer registers; x0 is kept zero.
    pub x: [u64; 32],
    /// FP registers, raw bits (single values NaN-boxed).
    pub f: [u64; 32],
    /// Program counter.
    pub pc: u64,
    /// Current privilege level (0 U, 1 S, 3 M).
    pub privilege: u8,
    /// fcsr: frm in bits 7:5, fflags in bits 4:0.
    pub fcsr: u32,
    /// Retired instructions (also reported as cycles).
    pub instret: u64,
    /// Traps taken (exceptions and interrupts). Not architectural: instruction
    /// limits count these too, so a guest stuck in a fault loop still stops.
    pub traps: u64,
    /// The hart's id (mhartid).
    pub hart_id: u64,
    /// mstatus without the read-only fields.
    pub mstatus: u64,
    /// Software-writable mip bits (device lines are kept apart in the pins).
    pub mip: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mie: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub medeleg: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mideleg: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mtvec: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mcounteren: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mscratch: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mepc: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mcause: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub mtval: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub stvec: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub scounteren: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub sscratch: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub sepc: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub scause: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub stval: u64,
    #[allow(missing_docs, reason = "CSR fields named after the CSRs")]
    pub satp: u64,
    /// PMP configuration registers (stored, not enforced).
    pub pmpcfg: [u64; 8],
    /// PMP address registers (stored, not enforced).
    pub pmpaddr: [u64; 64],
    /// Physical address reserved by LR, or `u64::MAX`.
    pub reservation: u64,
    /// The value LR loaded, which SC compares against.
    pub reservation_value: u64,
}

impl HartState {
    fn reset(hart_id: u64) -> HartState {
        HartState {
            x: [0; 32],
            f: [0; 32],
            pc: 0,
            privilege: PRIV_M,
            fcsr: 0,
            instret: 0,
            traps: 0,
            hart_id,
            mstatus: 0,
            mip: 0,
            mie: 0,
            medeleg: 0,
            mideleg: 0,
            mtvec: 0,
            mcounteren: 0,
            mscratch: 0,
            mepc: 0,
            mcause: 0,
            mtval: 0,
            stvec: 0,
            scounteren: 0,
            sscratch: 0,
            sepc: 0,
            scause: 0,
            stval: 0,
            satp: 0,
            pmpcfg: [0; 8],
            pmpaddr: [0; 64],
            reservation: u64::MAX,
            reservation_value: 0,
        }
    }
}

/// Why [`Hart::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// The instruction budget ran out.
    Budget,
    /// The hart executed WFI and has no interrupt to take.
    WaitForInterrupt,
    /// The machine asked to stop (power-off, reset or the host).
    Stopped,
    /// A breakpoint or watchpoint stopped the hart (see `Hart::take_debug_stop`).
    Debug,
    /// In user-mode emulation, a U-mode instruction trapped (an `ecall`, a fault);
    /// `Hart::take_user_trap` tells which. The pc is that instruction's.
    UserTrap,
}

/// The page permissions of a user-mode process's address space, consulted instead
/// of page tables while the hart runs in U-mode (user-mode emulation): guest
/// virtual addresses are RAM offsets, and a page is usable only if mapped with the
/// access's permission.
pub trait UserAddressSpace: Send + Sync + std::fmt::Debug {
    /// Whether the page holding `va` allows `access`.
    fn permits(&self, va: u64, access: Access) -> bool;

    /// The size of the window at the start of RAM that translated code may load
    /// from and store to directly, the host's page protection standing in for the
    /// permission check: an access the guest may not make faults on the host.
    /// `None` (the default): every access is checked through the TLB.
    fn direct_window(&self) -> Option<u64> {
        None
    }

    /// The hart decoded instructions from the page holding `va`: stores to it
    /// must be noticed, also those translated code makes directly.
    fn holds_code(&self, _va: u64) {}
}

/// Most pages a thread records as written (see [`note_code_written`]) before
/// its hart drops every translation instead.
const WRITTEN_CODE_SLOTS: usize = 16;

/// Code pages this thread wrote through the host mapping (a direct store from
/// translated code, caught by the host's write protection), for its hart to drop
/// at its next dispatch. Thread-local atomics initialised at compile time, so the
/// fault handler may write them.
struct WrittenCode {
    pages: [AtomicU64; WRITTEN_CODE_SLOTS],
    /// How many were recorded; beyond the slots, every translation goes.
    count: AtomicUsize,
}

thread_local! {
    static WRITTEN_CODE: WrittenCode = const {
        WrittenCode {
            pages: [const { AtomicU64::new(0) }; WRITTEN_CODE_SLOTS],
            count: AtomicUsize::new(0),
        }
    };
    /// While translated code runs on this thread: its hart's chain limit, which
    /// the fault handler zeroes so the code returns to the dispatch loop (and
    /// drops what was written) at its next jump between translations.
    static RUNNING_CHAIN_LIMIT: Cell<*mut u64> = const { Cell::new(std::ptr::null_mut()) };
}

/// Records that this thread stored to the code page holding RAM offset `ram_off`
/// behind the hart's back: its hart drops the page's decoded instructions and
/// translations before it next looks up a translation. Async-signal-safe: meant
/// for a host fault handler.
pub fn note_code_written(ram_off: u64) {
    WRITTEN_CODE.with(|w| {
        let n = w.count.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = w.pages.get(n) {
            slot.store(ram_off & !(PAGE_SIZE - 1), Ordering::Relaxed);
        }
    });
    RUNNING_CHAIN_LIMIT.with(|limit| {
        let limit = limit.get();
        if !limit.is_null() {
            // SAFETY: set only while this thread's hart runs translated code
            // (`run_jit`), which reads the limit from memory at every jump
            // between translations; the hart outlives that call.
            unsafe { limit.write_volatile(0) };
        }
    });
}

/// Sets the chain limit the fault handler may zero while translated code runs.
pub(crate) fn set_running_chain_limit(limit: *mut u64) {
    RUNNING_CHAIN_LIMIT.with(|l| l.set(limit));
}

/// Decoded instructions of one RAM page, one slot per halfword.
struct DecodedPage {
    slots: Box<[Insn; SLOTS_PER_PAGE]>,
    /// Slots holding a decoded instruction.
    decoded: u16,
}

/// What a hart shares with the devices that interrupt it, which may run on
/// other threads (another hart writing the CLINT, the device loop ticking a
/// timer).
#[derive(Debug, Default)]
pub struct HartPins {
    /// The device-driven mip bits (MSIP, MTIP, MEIP, SEIP).
    pub(crate) lines: AtomicU64,
    /// The `instret` at which translated code, chaining from block to block or
    /// looping inside one, must return to the dispatch loop. Raising a line
    /// zeroes it, so a hart deep in chained code on its own thread sees the
    /// interrupt at its next jump between translations, not at the end of its
    /// slice (an IPI's round trip is what other harts spin on).
    pub(crate) chain_limit: AtomicU64,
}

impl HartPins {
    /// Pins with every line low.
    pub fn new() -> HartPins {
        HartPins::default()
    }
}

/// The interrupt lines a device drives into a hart's mip (MSIP, MTIP, MEIP, SEIP).
#[derive(Debug)]
pub struct HartIrqLine {
    pins: Arc<HartPins>,
    bit: u64,
    control: Arc<emu_core::RunControl>,
}

impl HartIrqLine {
    /// A line driving bit `bit` of `pins` (shared with a hart made by
    /// [`Hart::with_pins`]); changes are announced through `control`.
    pub fn new(pins: Arc<HartPins>, bit: u64, control: Arc<emu_core::RunControl>) -> HartIrqLine {
        HartIrqLine { pins, bit, control }
    }
}

impl IrqLine for HartIrqLine {
    fn set_level(&self, high: bool) {
        let old = if high {
            self.pins.lines.fetch_or(1 << self.bit, Ordering::AcqRel)
        } else {
            self.pins
                .lines
                .fetch_and(!(1 << self.bit), Ordering::AcqRel)
        };
        if (old >> self.bit) & 1 != u64::from(high) {
            // The epoch first, then the kick: a hart that set its chain limit
            // and then read the old epoch is kicked out after it (see
            // `run_jit`), and one that read the new epoch looks by itself.
            self.control.notify_irq();
            if high {
                self.pins.chain_limit.store(0, Ordering::SeqCst);
            }
        }
    }
}

/// A record of one step of a hart, for reports: an instruction, a trap, or both.
#[derive(Clone, Copy, Debug)]
pub struct TraceEntry {
    /// Where it was.
    pub pc: u64,
    /// Privilege it ran at.
    pub privilege: u8,
    /// The instruction, when it could be fetched (an interrupt or a fetch fault
    /// leaves none).
    pub insn: Option<Insn>,
    /// The trap the step took instead of completing: its `xcause` (interrupt bit
    /// included) and `xtval`.
    pub trap: Option<Trap>,
}

/// One RISC-V hart attached to a machine's bus.
pub struct Hart {
    /// Architectural state.
    pub state: HartState,
    pub(crate) bus: Arc<Bus>,
    pub(crate) ram: Arc<GuestRam>,
    pub(crate) clock: Arc<VirtualClock>,
    pub(crate) pins: Arc<HartPins>,
    /// Code pages other harts, devices, loaders and debuggers wrote.
    code_inbox: Arc<emu_core::CodeWriteInbox>,
    /// The running privilege level's TLB (translated code reads it here).
    pub(crate) tlb: Tlb,
    /// The other levels' TLBs.
    pub(crate) parked_tlbs: Box<crate::mmu::ParkedTlbs>,
    pages: Vec<DecodedPage>,
    free_pages: Vec<usize>,
    page_of: HashMap<u64, usize>,
    /// Virtual page number of the page instructions are fetched from, or MAX.
    pub(crate) fetch_vpn: u64,
    fetch_page: usize,
    /// Set when something may have made an interrupt takeable.
    pub(crate) irq_check: bool,
    /// Set when the run loop must return early (WFI, stop request).
    pub(crate) exit: Option<RunExit>,
    irq_epoch: u64,
    /// The translator, when the JIT is on.
    pub(crate) jit: Option<Box<crate::jit::JitEngine>>,
    /// Set by translated code's memory helpers: 1 = fault pending in `jit_trap`,
    /// 2 = the machine wants the block to stop after this instruction.
    pub(crate) jit_fault: u8,
    /// The fault a translated block's helper ran into.
    pub(crate) jit_trap: Option<Trap>,
    /// Address of the chain slot of the last block exit that could not chain
    /// (its successor was not known yet), for the dispatch loop to fill; or 0.
    pub(crate) chain_from: usize,
    /// Block-to-block jumps made inside translated code.
    pub(crate) chained: u64,
    /// Breakpoints and watchpoints, once a debugger has set any.
    pub(crate) debug: Option<Box<crate::debug::DebugState>>,
    /// Instruction-fetch translations for block dispatch: (vpn, RAM page).
    pub(crate) exec_cache: Box<[(u64, u64); EXEC_CACHE]>,
    /// The `exec_cache` slots filled since it was last flushed: a flush (at
    /// every privilege change) clears only those, not the whole cache.
    exec_cache_filled: Vec<u16>,
    /// User-mode emulation: the process's address space, and the trap that ended
    /// the last run (U-mode traps leave the run loop instead of entering a kernel).
    pub(crate) user_space: Option<Arc<dyn UserAddressSpace>>,
    /// The window translations access guest memory directly in (see
    /// [`UserAddressSpace::direct_window`]), as last read from `user_space`.
    pub(crate) direct_window: Option<u64>,
    user_trap: Option<Trap>,
}

/// Entries of the dispatch's fetch-translation cache: enough for a big
/// program's code (perl's interpreter loop spans hundreds of pages; with 64 the
/// misses cost 5 % of a perl run in look-ups of the process's map). At most
/// 65,536, as slots are recorded in 16 bits.
pub(crate) const EXEC_CACHE: usize = 512;

/// How a machine runs a hart: slices of [`Hart::run`], idle in WFI.
impl emu_core::cpu::Vcpu for Hart {
    fn run_slice(&mut self, budget: u64) -> emu_core::cpu::SliceEnd {
        use emu_core::cpu::SliceEnd;
        match self.run(budget) {
            RunExit::Budget => SliceEnd::Budget,
            RunExit::WaitForInterrupt => SliceEnd::Idle,
            RunExit::Debug => SliceEnd::Debug,
            // A user-mode trap has no meaning on a machine: stop and report.
            RunExit::Stopped | RunExit::UserTrap => SliceEnd::Stopped,
        }
    }

    fn wakeup_pending(&self) -> bool {
        self.wfi_wakeup_pending()
    }

    fn executed(&self) -> u64 {
        self.state.instret.wrapping_add(self.state.traps)
    }
}

impl std::fmt::Debug for Hart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hart")
            .field("hart_id", &self.state.hart_id)
            .field("pc", &format_args!("{:#x}", self.state.pc))
            .field("privilege", &self.state.privilege)
            .finish_non_exhaustive()
    }
}

impl Hart {
    /// A hart in its reset state attached to `bus`.
    pub fn new(hart_id: u64, bus: Arc<Bus>, clock: Arc<VirtualClock>) -> Hart {
        Hart::with_pins(hart_id, bus, clock, Arc::new(HartPins::new()))
    }

    /// A hart whose device-driven mip bits are in `pins`, so interrupt lines
    /// can be made (with [`HartIrqLine::new`]) before the hart and its bus exist.
    pub fn with_pins(
        hart_id: u64,
        bus: Arc<Bus>,
        clock: Arc<VirtualClock>,
        pins: Arc<HartPins>,
    ) -> Hart {
        let ram = bus.ram().clone();
        Hart {
            state: HartState::reset(hart_id),
            bus,
            code_inbox: ram.watch_code_writes(),
            ram,
            clock,
            pins,
            tlb: Tlb::default(),
            parked_tlbs: Box::default(),
            pages: Vec::new(),
            free_pages: Vec::new(),
            page_of: HashMap::default(),
            fetch_vpn: u64::MAX,
            fetch_page: 0,
            irq_check: true,
            user_space: None,
            direct_window: None,
            user_trap: None,
            exit: None,
            irq_epoch: 0,
            jit: None,
            jit_fault: 0,
            jit_trap: None,
            chain_from: 0,
            chained: 0,
            debug: None,
            exec_cache: Box::new([(u64::MAX, 0); EXEC_CACHE]),
            exec_cache_filled: Vec::with_capacity(EXEC_CACHE),
        }
    }

    /// Resets architectural state and drops all cached translations and code.
    pub fn reset(&mut self) {
        self.state = HartState::reset(self.state.hart_id);
        self.flush_translations();
        self.flush_code();
        self.irq_check = true;
    }

    /// An interrupt line into this hart's mip bit `bit` (3 MSIP, 7 MTIP, 9 SEIP, 11 MEIP).
    pub fn irq_line(&self, bit: u64) -> HartIrqLine {
        HartIrqLine {
            pins: self.pins.clone(),
            bit,
            control: self.bus.control().clone(),
        }
    }

    /// Runs up to `budget` instructions.
    pub fn run(&mut self, budget: u64) -> RunExit {
        if Self::code_was_written() {
            self.drop_written_code();
        }
        self.drop_code_written_elsewhere();
        if self.debug.is_some() && (self.watching() || self.jit.is_none()) {
            return self.run_watched(budget);
        }
        if self.jit.is_some() {
            return self.run_jit(budget);
        }
        let control = self.bus.control().clone();
        let mut remaining = budget;
        self.exit = None;
        self.irq_check = true;
        while remaining > 0 {
            if self.irq_check {
                self.irq_check = false;
                self.irq_epoch = control.irq_epoch();
                self.drop_code_written_elsewhere();
                self.take_pending_interrupt();
            }
            // This is `step_one` without its result: calling `step_one` here costs
            // about 12% more host instructions (callgrind) and ~25% of MIPS.
            let pc = self.state.pc;
            let step = match self.fetch(pc) {
                Ok(insn) => self.execute(insn),
                Err(trap) => Err(trap),
            };
            match step {
                Ok(()) => self.state.instret = self.state.instret.wrapping_add(1),
                Err(trap) => self.take_trap(trap),
            }
            remaining -= 1;
            if let Some(exit) = self.exit.take() {
                self.clock.retire(budget - remaining);
                return exit;
            }
        }
        self.clock.retire(budget);
        if control.stop_requested() {
            return RunExit::Stopped;
        }
        RunExit::Budget
    }

    /// Interprets one instruction (or takes its trap); returns the operation when it
    /// completed.
    pub(crate) fn step_one(&mut self) -> Option<Op> {
        let pc = self.state.pc;
        let step = match self.fetch(pc) {
            Ok(insn) => self.execute(insn).map(|()| insn.op),
            Err(trap) => Err(trap),
        };
        match step {
            Ok(op) => {
                self.state.instret = self.state.instret.wrapping_add(1);
                Some(op)
            }
            Err(trap) => {
                self.take_trap(trap);
                None
            }
        }
    }

    /// Remembers the interrupt epoch the hart has seen.
    pub(crate) fn note_irq_epoch(&mut self) {
        self.irq_epoch = self.bus.control().irq_epoch();
    }

    /// The RAM offset `pc` fetches from, when it is in RAM and executable now.
    pub(crate) fn exec_ram_offset(&mut self, pc: u64) -> Option<u64> {
        let vpn = pc >> 12;
        let slot = (vpn as usize) & (EXEC_CACHE - 1);
        let (tag, page) = self.exec_cache[slot];
        if tag == vpn {
            return Some((page << 12) | (pc & 0xfff));
        }
        let pa = self.translate(pc, Access::Execute).ok()?;
        let off = self.bus.ram_offset(GuestPhysAddr(pa & !0xfff), PAGE_SIZE)?;
        self.fill_exec_cache(vpn, off >> 12);
        Some(off | (pc & 0xfff))
    }

    /// Records that virtual page `vpn` executes from RAM page `ram_page`.
    pub(crate) fn fill_exec_cache(&mut self, vpn: u64, ram_page: u64) {
        let slot = (vpn as usize) & (EXEC_CACHE - 1);
        if self.exec_cache[slot].0 == u64::MAX {
            self.exec_cache_filled.push(slot as u16);
        }
        self.exec_cache[slot] = (vpn, ram_page);
    }

    /// Forgets the dispatch's fetch translations.
    pub(crate) fn flush_exec_cache(&mut self) {
        for slot in self.exec_cache_filled.drain(..) {
            self.exec_cache[usize::from(slot)] = (u64::MAX, 0);
        }
    }

    /// Executes one instruction, or takes the interrupt or trap due instead, and
    /// says which (for traces and reports).
    pub fn step_traced(&mut self) -> TraceEntry {
        let pc = self.state.pc;
        let privilege = self.state.privilege;
        let traps = self.state.traps;
        let mut entry = TraceEntry {
            pc,
            privilege,
            insn: None,
            trap: None,
        };
        self.take_pending_interrupt();
        if self.state.traps != traps {
            entry.trap = Some(self.last_trap());
            return entry;
        }
        let step = match self.fetch(pc) {
            Ok(insn) => {
                entry.insn = Some(insn);
                self.execute(insn)
            }
            Err(trap) => Err(trap),
        };
        match step {
            Ok(()) => self.state.instret = self.state.instret.wrapping_add(1),
            Err(trap) => {
                self.take_trap(trap);
                if self.state.traps != traps {
                    entry.trap = Some(self.last_trap());
                }
            }
        }
        self.exit = None;
        self.clock.retire(1);
        entry
    }

    /// The cause and value of the trap just taken, from the CSRs of the mode
    /// that took it.
    fn last_trap(&self) -> Trap {
        if self.state.privilege == PRIV_S {
            Trap::new(self.state.scause, self.state.stval)
        } else {
            Trap::new(self.state.mcause, self.state.mtval)
        }
    }

    /// Whether an interrupt is pending and enabled in mie, ignoring global enables:
    /// the condition that ends WFI.
    pub fn wfi_wakeup_pending(&self) -> bool {
        self.mip_value() & self.state.mie != 0
    }

    /// Whether a device changed an interrupt line since this hart last looked.
    pub fn irq_changed(&self) -> bool {
        self.bus.control().irq_epoch() != self.irq_epoch
    }

    // ---- fetch and the decoded-instruction cache ----

    #[inline(always)]
    pub(crate) fn fetch(&mut self, pc: u64) -> Result<Insn, Trap> {
        if pc >> 12 == self.fetch_vpn {
            let insn = self.pages[self.fetch_page].slots[((pc & 0xfff) >> 1) as usize];
            if insn.op != Op::Undecoded {
                return Ok(insn);
            }
        }
        self.fetch_slow(pc)
    }

    #[cold]
    #[inline(never)]
    fn fetch_slow(&mut self, pc: u64) -> Result<Insn, Trap> {
        let pa = self.translate(pc, Access::Execute)?;
        let low = self.fetch_halfword(pa, pc)?;
        let ram_off = self.bus.ram_offset(GuestPhysAddr(pa), 2);
        let crosses_page = insn_len(low) == 4 && pc & 0xfff == 0xffe;
        let high = if insn_len(low) == 2 {
            0
        } else if crosses_page {
            let pa2 = self.translate(pc + 2, Access::Execute)?;
            self.fetch_halfword(pa2, pc + 2)?
        } else {
            self.fetch_halfword(pa + 2, pc)?
        };
        let insn = decode(low, high);
        match ram_off {
            Some(off) if !crosses_page => {
                let index = self.code_page(off);
                let decoded_page = &mut self.pages[index];
                let held = &mut decoded_page.slots[((pc & 0xfff) >> 1) as usize];
                if held.op == Op::Undecoded {
                    decoded_page.decoded += 1;
                }
                *held = insn;
                self.fetch_vpn = pc >> 12;
                self.fetch_page = index;
            }
            _ => self.fetch_vpn = u64::MAX,
        }
        Ok(insn)
    }

    fn fetch_halfword(&self, pa: u64, va: u64) -> Result<u16, Trap> {
        let value = match self.bus.ram_offset(GuestPhysAddr(pa), 2) {
            Some(off) => self.ram.read_u16(off),
            None => self.bus.read(GuestPhysAddr(pa), 2).ok().map(|v| v as u16),
        };
        value.ok_or(Trap::new(cause::INSTRUCTION_ACCESS_FAULT, va))
    }

    /// The decoded page for the RAM page holding `ram_off`, created on first use.
    /// Marks the page as holding code, so stores to it take the slow path and
    /// invalidate what was decoded or translated from it.
    pub(crate) fn code_page(&mut self, ram_off: u64) -> usize {
        let page = ram_off >> 12;
        if let Some(&index) = self.page_of.get(&page) {
            return index;
        }
        let index = match self.free_pages.pop() {
            Some(index) => {
                self.pages[index].slots.fill(Insn::default());
                self.pages[index].decoded = 0;
                index
            }
            None => {
                self.pages.push(DecodedPage {
                    slots: Box::new([Insn::default(); SLOTS_PER_PAGE]),
                    decoded: 0,
                });
                self.pages.len() - 1
            }
        };
        self.page_of.insert(page, index);
        if !self.ram.is_code_page(ram_off) {
            self.ram.mark_code_page(ram_off);
            if let Some(space) = &self.user_space {
                // User mode: RAM offsets are virtual addresses.
                space.holds_code(ram_off);
            }
        }
        // Stores to this page must now take the slow path, which invalidates code.
        self.flush_tlb_writes();
        index
    }

    /// Forgets decoded instructions overlapping a store of `len` bytes at `ram_off`.
    pub(crate) fn invalidate_code(&mut self, ram_off: u64, len: u64) {
        if let Some(jit) = self.jit.as_mut() {
            jit.cache.invalidate_range(ram_off, len);
        }
        let page = ram_off >> 12;
        let Some(&index) = self.page_of.get(&page) else {
            return;
        };
        // A 4-byte instruction starting 2 bytes before the store overlaps it too.
        let first = ((ram_off & 0xfff).saturating_sub(2) >> 1) as usize;
        let last = (((ram_off & 0xfff) + len - 1) >> 1).min(SLOTS_PER_PAGE as u64 - 1) as usize;
        let decoded_page = &mut self.pages[index];
        for slot in &mut decoded_page.slots[first..=last] {
            if slot.op != Op::Undecoded {
                decoded_page.decoded -= 1;
            }
            *slot = Insn::default();
        }
        if decoded_page.decoded == 0 {
            self.release_code_page(ram_off);
        }
    }

    /// Gives up the code-page mark of a page that no longer holds decoded or
    /// translated code, so stores to it take the fast path again. The kernel
    /// reuses pages that held code (a finished program's text, the page
    /// cache) for data such as pipe buffers; with the mark kept, every store
    /// to them went through the slow path, and how much of a job's data landed
    /// on such pages decided its speed (the same `sha256sum` took 12 to 23 s).
    ///
    /// Only with a single CPU in system mode: other CPUs may hold code from
    /// the page, and user mode keeps code pages write-protected on the host.
    fn release_code_page(&mut self, ram_off: u64) {
        let page = ram_off >> 12;
        if self.user_space.is_some()
            || !self.ram.has_one_watcher()
            || self.jit.as_ref().is_some_and(|jit| jit.holds_code_in(page))
        {
            return;
        }
        if let Some(index) = self.page_of.remove(&page) {
            self.free_pages.push(index);
            self.fetch_vpn = u64::MAX;
        }
        self.ram.unmark_code_page(ram_off);
    }

    /// Drops what was decoded or translated from code pages this thread wrote
    /// through the host mapping (see [`note_code_written`]).
    pub(crate) fn drop_written_code(&mut self) {
        let pages = WRITTEN_CODE.with(|w| {
            let n = w.count.swap(0, Ordering::Relaxed);
            if n > WRITTEN_CODE_SLOTS {
                return None;
            }
            Some(
                w.pages[..n]
                    .iter()
                    .map(|p| p.load(Ordering::Relaxed))
                    .collect::<Vec<_>>(),
            )
        });
        self.drop_code_pages(pages);
    }

    /// Drops what was decoded or translated from code pages that other harts,
    /// devices (DMA), loaders or a debugger wrote since this hart last looked.
    #[inline]
    pub(crate) fn drop_code_written_elsewhere(&mut self) {
        if self.code_inbox.has_pending() {
            let pages = self.code_inbox.take();
            self.drop_code_pages(pages);
        }
    }

    /// Drops decoded and translated code of the page-aligned RAM offsets `pages`,
    /// or of every page when `None`.
    fn drop_code_pages(&mut self, pages: Option<Vec<u64>>) {
        let Some(pages) = pages else {
            if let Some(jit) = self.jit.as_mut() {
                jit.cache.invalidate_all();
            }
            self.flush_code();
            return;
        };
        for page in pages {
            if let Some(jit) = self.jit.as_mut() {
                jit.cache.invalidate_range(page, PAGE_SIZE);
            }
            if let Some(index) = self.page_of.remove(&(page >> 12)) {
                self.free_pages.push(index);
            }
        }
        self.fetch_vpn = u64::MAX;
    }

    /// Whether this thread wrote code pages its hart has not dropped yet.
    #[inline]
    pub(crate) fn code_was_written() -> bool {
        WRITTEN_CODE.with(|w| w.count.load(Ordering::Relaxed) != 0)
    }

    /// Drops every decoded instruction (fence.i, reset).
    pub fn flush_code(&mut self) {
        if let Some(jit) = self.jit.as_mut() {
            jit.cache.revalidate_all();
        }
        // Pages already free stay free: forgetting them would leak their memory.
        for (_, index) in self.page_of.drain() {
            self.free_pages.push(index);
        }
        self.fetch_vpn = u64::MAX;
    }

    // ---- data memory ----

    /// The backing offset of `[pa, pa + len)` for `access`: RAM and ROM for reads
    /// and fetches, RAM only for writes (stores to ROM go to the bus and fault).
    fn memory_offset(&self, pa: u64, len: u64, access: Access) -> Option<u64> {
        match access {
            Access::Write => self.bus.writable_offset(GuestPhysAddr(pa), len),
            _ => self.bus.ram_offset(GuestPhysAddr(pa), len),
        }
    }

    /// Translates for a data access and checks that the whole access is in one page.
    fn data_slow_path(&mut self, va: u64, access: Access) -> Result<u64, Trap> {
        let pa = self.translate(va, access)?;
        if let Some(off) = self.memory_offset(pa & !0xfff, PAGE_SIZE, access) {
            let entry = crate::mmu::TlbEntry {
                tag: va & !0xfff,
                delta: (off | (pa & 0xfff)).wrapping_sub(va),
            };
            match access {
                Access::Read => self.tlb.read[Tlb::index(va)] = entry,
                Access::Write if !self.ram.is_code_page(off) => {
                    self.tlb.write[Tlb::index(va)] = entry
                }
                _ => {}
            }
        }
        Ok(pa)
    }

    /// Loads `size` bytes (1, 2, 4, 8) at virtual address `va`, zero-extended.
    #[inline(always)]
    pub(crate) fn load(&mut self, va: u64, size: u8) -> Result<u64, Trap> {
        let entry = self.tlb.read[Tlb::index(va)];
        if entry.tag == va & !0xfff && (va & 0xfff) <= PAGE_SIZE - u64::from(size) {
            let off = va.wrapping_add(entry.delta);
            let value = match size {
                1 => self.ram.read_u8(off).map(u64::from),
                2 => self.ram.read_u16(off).map(u64::from),
                4 => self.ram.read_u32(off).map(u64::from),
                _ => self.ram.read_u64(off),
            };
            if let Some(value) = value {
                return Ok(value);
            }
        }
        self.load_slow(va, size)
    }

    #[inline(never)]
    fn load_slow(&mut self, va: u64, size: u8) -> Result<u64, Trap> {
        if (va & 0xfff) > PAGE_SIZE - u64::from(size) {
            // Misaligned across a page boundary: assemble from bytes.
            let mut value = 0u64;
            for i in 0..u64::from(size) {
                value |= self.load(va.wrapping_add(i), 1)? << (8 * i);
            }
            return Ok(value);
        }
        let pa = self.data_slow_path(va, Access::Read)?;
        let value = self
            .bus
            .read(GuestPhysAddr(pa), size)
            .map_err(|_| Trap::new(cause::LOAD_ACCESS_FAULT, va))?;
        Ok(value)
    }

    /// Stores the low `size` bytes of `value` at virtual address `va`.
    #[inline(always)]
    pub(crate) fn store(&mut self, va: u64, size: u8, value: u64) -> Result<(), Trap> {
        let entry = self.tlb.write[Tlb::index(va)];
        if entry.tag == va & !0xfff && (va & 0xfff) <= PAGE_SIZE - u64::from(size) {
            let off = va.wrapping_add(entry.delta);
            let done = match size {
                1 => self.ram.write_u8(off, value as u8),
                2 => self.ram.write_u16(off, value as u16),
                4 => self.ram.write_u32(off, value as u32),
                _ => self.ram.write_u64(off, value),
            };
            if done {
                return Ok(());
            }
        }
        self.store_slow(va, size, value)
    }

    #[inline(never)]
    fn store_slow(&mut self, va: u64, size: u8, value: u64) -> Result<(), Trap> {
        if (va & 0xfff) > PAGE_SIZE - u64::from(size) {
            // Check both pages first so a fault leaves memory untouched.
            self.translate(va, Access::Write)?;
            self.translate(va.wrapping_add(u64::from(size) - 1), Access::Write)?;
            for i in 0..u64::from(size) {
                self.store(va.wrapping_add(i), 1, value >> (8 * i))?;
            }
            return Ok(());
        }
        let pa = self.data_slow_path(va, Access::Write)?;
        let code_off = self
            .bus
            .writable_offset(GuestPhysAddr(pa), u64::from(size))
            .filter(|&off| self.ram.is_code_page(off));
        if let Some(off) = code_off {
            self.invalidate_code(off, u64::from(size));
        }
        self.bus
            .write(GuestPhysAddr(pa), size, value)
            .map_err(|_| Trap::new(cause::STORE_ACCESS_FAULT, va))?;
        if let Some(off) = code_off {
            self.ram
                .note_write(off, u64::from(size), Some(&self.code_inbox));
        }
        if self.bus.control().stop_requested() {
            self.exit = Some(RunExit::Stopped);
        }
        // A device write may have raised an interrupt or (by DMA) overwritten
        // code: both are looked at before the next instruction.
        if self.irq_changed() || self.code_inbox.has_pending() {
            self.irq_check = true;
        }
        Ok(())
    }

    /// Translates an AMO/LR/SC address to a RAM offset, checking alignment.
    pub(crate) fn atomic_offset(
        &mut self,
        va: u64,
        size: u64,
        access: Access,
    ) -> Result<u64, Trap> {
        if !va.is_multiple_of(size) {
            let code = if access == Access::Read {
                cause::LOAD_MISALIGNED
            } else {
                cause::STORE_MISALIGNED
            };
            return Err(Trap::new(code, va));
        }
        // A page plain loads (or stores) reach through the TLB is RAM the access
        // may touch, and for stores holds no code: no page walk needed.
        let entry = match access {
            Access::Write => self.tlb.write[Tlb::index(va)],
            _ => self.tlb.read[Tlb::index(va)],
        };
        if entry.tag == va & !0xfff {
            return Ok(va.wrapping_add(entry.delta));
        }
        // Fills the TLB for the next atomic on this page.
        let pa = self.data_slow_path(va, access)?;
        let off = self
            .memory_offset(pa, size, access)
            .ok_or(access.access_fault(va))?;
        if access == Access::Write && self.ram.is_code_page(off) {
            self.invalidate_code(off, size);
            self.ram.note_write(off, size, Some(&self.code_inbox));
        }
        Ok(off)
    }

    // ---- traps and interrupts ----

    /// Delivers a synchronous exception.
    #[cold]
    #[inline(never)]
    pub(crate) fn take_trap(&mut self, trap: Trap) {
        if self.user_space.is_some() && self.state.privilege == PRIV_U {
            // User-mode emulation: the host is the kernel.
            self.state.reservation = u64::MAX;
            self.user_trap = Some(trap);
            self.exit = Some(RunExit::UserTrap);
            return;
        }
        let tval = if trap.tval == TVAL_INSTRUCTION_BITS {
            self.instruction_bits(self.state.pc)
        } else {
            trap.tval
        };
        self.enter_trap(trap.cause, tval);
    }

    /// Makes this hart run a user-mode process: U-mode, with `space` giving page
    /// permissions and its traps returned to the caller as [`RunExit::UserTrap`].
    pub fn enter_user_mode(&mut self, space: Arc<dyn UserAddressSpace>) {
        self.user_space = Some(space);
        self.state.satp = 0;
        // FP on (mstatus.FS = dirty) so F/D instructions run, as Linux lets them.
        self.state.mstatus |= 3 << 13;
        self.set_privilege(PRIV_U);
        self.flush_translations();
    }

    /// The bus this hart is attached to.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// The clock this hart retires instructions on.
    pub fn clock(&self) -> &Arc<VirtualClock> {
        &self.clock
    }

    /// The window of RAM translated code accesses directly (see
    /// [`UserAddressSpace::direct_window`]), as the hart last read it.
    pub fn direct_window(&self) -> Option<u64> {
        self.direct_window
    }

    /// The trap that ended the last run with [`RunExit::UserTrap`].
    pub fn take_user_trap(&mut self) -> Option<Trap> {
        self.user_trap.take()
    }

    /// The raw bits of the instruction at `pc` (0 if it cannot be read).
    fn instruction_bits(&mut self, pc: u64) -> u64 {
        let Ok(pa) = self.translate(pc, Access::Execute) else {
            return 0;
        };
        let Ok(low) = self.fetch_halfword(pa, pc) else {
            return 0;
        };
        if insn_len(low) == 2 {
            return u64::from(low);
        }
        let high = self
            .translate(pc + 2, Access::Execute)
            .and_then(|pa2| self.fetch_halfword(pa2, pc + 2))
            .unwrap_or(0);
        u64::from(low) | (u64::from(high) << 16)
    }

    /// Enters the trap handler for `cause` (interrupt bit included).
    fn enter_trap(&mut self, cause: u64, tval: u64) {
        let interrupt = cause >> 63 != 0;
        let code = cause & 0x3f;
        let deleg = if interrupt {
            self.state.mideleg
        } else {
            self.state.medeleg
        };
        let pc = self.state.pc;
        let from = self.state.privilege;
        self.state.traps = self.state.traps.wrapping_add(1);
        self.state.reservation = u64::MAX;
        let mut mstatus = self.state.mstatus;
        if from <= PRIV_S && (deleg >> code) & 1 != 0 {
            self.state.scause = cause;
            self.state.sepc = pc;
            self.state.stval = tval;
            mstatus = set_bit(mstatus, MSTATUS_SPP, from == PRIV_S);
            mstatus = set_bit(mstatus, MSTATUS_SPIE, mstatus & MSTATUS_SIE != 0);
            mstatus &= !MSTATUS_SIE;
            self.state.pc = vector(self.state.stvec, interrupt, code);
            self.set_privilege(PRIV_S);
        } else {
            self.state.mcause = cause;
            self.state.mepc = pc;
            self.state.mtval = tval;
            mstatus = (mstatus & !MSTATUS_MPP) | (u64::from(from) << 11);
            mstatus = set_bit(mstatus, MSTATUS_MPIE, mstatus & MSTATUS_MIE != 0);
            mstatus &= !MSTATUS_MIE;
            self.state.pc = vector(self.state.mtvec, interrupt, code);
            self.set_privilege(PRIV_M);
        }
        // Under MPRV, loads and stores use MPP's privilege, which the trap just changed.
        if mstatus & MSTATUS_MPRV != 0 {
            self.flush_tlbs();
        }
        self.state.mstatus = mstatus;
    }

    /// Changes privilege, switching to the new level's TLB and dropping the
    /// fetch translations (which permissions and levels decide).
    pub(crate) fn set_privilege(&mut self, level: u8) {
        let from = self.state.privilege;
        if level != from {
            self.state.privilege = level;
            self.parked_tlbs.switch(&mut self.tlb, from, level);
            self.flush_fetch_translations();
        }
    }

    /// Returns from an M-mode trap (mret).
    pub(crate) fn mret(&mut self) {
        let mut mstatus = self.state.mstatus;
        let target = ((mstatus & MSTATUS_MPP) >> 11) as u8;
        mstatus = set_bit(mstatus, MSTATUS_MIE, mstatus & MSTATUS_MPIE != 0);
        mstatus |= MSTATUS_MPIE;
        mstatus &= !MSTATUS_MPP;
        if target != PRIV_M {
            mstatus &= !MSTATUS_MPRV;
        }
        let mprv_was_set = self.state.mstatus & MSTATUS_MPRV != 0;
        self.state.mstatus = mstatus;
        self.state.pc = self.state.mepc;
        self.set_privilege(target);
        // M-mode's TLB follows MPRV and MPP under MPRV, which mret changed.
        if mprv_was_set {
            self.flush_tlbs();
        }
        self.irq_check = true;
    }

    /// Returns from an S-mode trap (sret).
    pub(crate) fn sret(&mut self) {
        let mut mstatus = self.state.mstatus;
        let target = if mstatus & MSTATUS_SPP != 0 {
            PRIV_S
        } else {
            PRIV_U
        };
        mstatus = set_bit(mstatus, MSTATUS_SIE, mstatus & MSTATUS_SPIE != 0);
        mstatus |= MSTATUS_SPIE;
        mstatus &= !MSTATUS_SPP;
        mstatus &= !MSTATUS_MPRV;
        let mprv_was_set = self.state.mstatus & MSTATUS_MPRV != 0;
        self.state.mstatus = mstatus;
        self.state.pc = self.state.sepc;
        self.set_privilege(target);
        // sret clears MPRV, which M-mode's TLB follows.
        if mprv_was_set {
            self.flush_tlbs();
        }
        self.irq_check = true;
    }

    /// The interrupt to take now, if any, by the privileged spec's priority order.
    pub fn pending_interrupt(&self) -> Option<u64> {
        let pending = self.mip_value() & self.state.mie;
        if pending == 0 {
            return None;
        }
        let privilege = self.state.privilege;
        let mstatus = self.state.mstatus;
        let m_enabled = privilege < PRIV_M || mstatus & MSTATUS_MIE != 0;
        let s_enabled = privilege < PRIV_S || (privilege == PRIV_S && mstatus & MSTATUS_SIE != 0);
        let mut takeable = 0;
        if m_enabled {
            takeable |= pending & !self.state.mideleg;
        }
        if s_enabled {
            takeable |= pending & self.state.mideleg;
        }
        // M-level interrupts (not delegated) outrank delegated ones.
        let m_level = takeable & !self.state.mideleg;
        let candidates = if m_level != 0 { m_level } else { takeable };
        [irq::MEI, irq::MSI, irq::MTI, irq::SEI, irq::SSI, irq::STI]
            .into_iter()
            .find(|&n| candidates & (1 << n) != 0)
    }

    pub(crate) fn take_pending_interrupt(&mut self) {
        if let Some(n) = self.pending_interrupt() {
            self.enter_trap((1 << 63) | n, 0);
        }
    }

    /// Reads guest memory through the current translation, for reports and tests.
    pub fn read_virtual(&mut self, va: u64, size: u8) -> Option<u64> {
        self.load(va, size).ok()
    }
}

fn set_bit(value: u64, bit: u64, on: bool) -> u64 {
    if on { value | bit } else { value & !bit }
}

fn vector(tvec: u64, interrupt: bool, code: u64) -> u64 {
    let base = tvec & !3;
    if interrupt && tvec & 1 != 0 {
        base + 4 * code
    } else {
        base
    }
}
