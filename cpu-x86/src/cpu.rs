//! One x86 CPU: its state, its view of memory (segmentation, then the physical
//! bus), the cache of decoded instructions, and how it takes exceptions and
//! interrupts. The instructions themselves are in `exec`.

use std::sync::Arc;

use emu_core::{Bus, CodeWriteInbox, GuestPhysAddr};
use rustc_hash::FxHashMap;

use crate::decode::{self, DecodeError, Insn};
use crate::flags::mask;
use crate::mmu::{Access, Tlb};
use crate::model::CpuModel;
use crate::state::{CpuState, SegReg, attrs, cr0, efer, flags, gpr};
use crate::system::InterruptKind;

/// Exception vectors.
pub mod vector {
    /// Divide error.
    pub const DE: u8 = 0;
    /// Debug.
    pub const DB: u8 = 1;
    /// Non-maskable interrupt.
    pub const NMI: u8 = 2;
    /// Breakpoint (INT3).
    pub const BP: u8 = 3;
    /// Overflow (INTO).
    pub const OF: u8 = 4;
    /// BOUND range exceeded.
    pub const BR: u8 = 5;
    /// Invalid opcode.
    pub const UD: u8 = 6;
    /// Device (FPU) not available.
    pub const NM: u8 = 7;
    /// Double fault.
    pub const DF: u8 = 8;
    /// Invalid TSS.
    pub const TS: u8 = 10;
    /// Segment not present.
    pub const NP: u8 = 11;
    /// Stack-segment fault.
    pub const SS: u8 = 12;
    /// General protection.
    pub const GP: u8 = 13;
    /// Page fault.
    pub const PF: u8 = 14;
    /// SIMD floating-point exception.
    pub const XM: u8 = 19;
    /// x87 floating-point error.
    pub const MF: u8 = 16;
}

/// An exception an instruction raised: it is delivered with the instruction
/// pointer of the faulting instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The vector ([`vector`]).
    pub vector: u8,
    /// The error code, for the exceptions that push one.
    pub error: Option<u32>,
}

impl Fault {
    /// #UD.
    pub const UD: Fault = Fault {
        vector: vector::UD,
        error: None,
    };
    /// #DE.
    pub const DE: Fault = Fault {
        vector: vector::DE,
        error: None,
    };

    /// #GP with error code `code`.
    pub fn gp(code: u32) -> Fault {
        Fault {
            vector: vector::GP,
            error: Some(code),
        }
    }

    /// #SS with error code `code`.
    pub fn ss(code: u32) -> Fault {
        Fault {
            vector: vector::SS,
            error: Some(code),
        }
    }
}

/// Why [`Cpu::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// It ran its budget.
    Budget,
    /// It executed HLT and waits for an interrupt.
    Halted,
    /// A fault while delivering a double fault (triple fault): the CPU
    /// stopped, as a PC's shutdown cycle stops it until reset.
    Shutdown,
    /// SYSCALL in user-mode emulation ([`Cpu::set_user_syscalls`]): the
    /// caller handles the system call; the instruction pointer is past it.
    Syscall,
    /// A device asked the machine to stop (power-off, reset): the slice ends
    /// after the instruction that told it.
    Stopped,
    /// A debugger's breakpoint or watchpoint stopped the CPU; why is in
    /// [`Cpu::take_debug_stop`].
    Debug,
}

const PAGE_SIZE: u64 = 4096;

/// The decoded instructions of one physical page.
struct DecodedPage {
    /// Its physical page number.
    page: u64,
    /// Code bitness they were decoded for.
    bits: u32,
    /// For each byte offset, 1 + the index of its instruction in `insns`, or 0.
    slots: Box<[u16]>,
    insns: Vec<Insn>,
}

impl DecodedPage {
    fn new(page: u64, bits: u32) -> DecodedPage {
        DecodedPage {
            page,
            bits,
            slots: vec![0; PAGE_SIZE as usize].into_boxed_slice(),
            insns: Vec::new(),
        }
    }

    #[inline]
    fn get(&self, offset: usize) -> Option<&Insn> {
        match self.slots[offset] {
            0 => None,
            n => self.insns.get(usize::from(n) - 1),
        }
    }

    fn insert(&mut self, offset: usize, insn: Insn) {
        self.insns.push(insn);
        // At most one instruction per byte offset, so the index fits.
        self.slots[offset] = self.insns.len() as u16;
    }
}

/// Whether the chipset's A20 gate is open now (see [`Cpu::connect_a20`]).
pub type A20Line = Arc<dyn Fn() -> bool + Send + Sync>;

/// One x86 CPU.
pub struct Cpu {
    /// The architectural state.
    pub state: CpuState,
    model: CpuModel,
    bus: Arc<Bus>,
    inbox: Arc<CodeWriteInbox>,
    /// Decoded pages, and where each physical page's is.
    pages: Vec<DecodedPage>,
    code: FxHashMap<u64, usize>,
    /// The page the last instruction came from (its number + 1, 0 for none)
    /// and its index in `pages`: most fetches hit it and skip the map.
    pub(crate) last_page: u64,
    last_index: usize,
    /// Where execution continues after the current instruction.
    pub(crate) next_ip: u64,
    pub(crate) halted: bool,
    shutdown: bool,
    /// Instructions retired plus exceptions taken.
    executed: u64,
    /// The A20 gate: bit 20 of every physical address is ANDed with it.
    a20_mask: u64,
    /// The last exception taken and the instruction pointer it was raised at.
    last_exception: Option<(Fault, u64)>,
    /// The software TLB.
    pub(crate) tlb: Tlb,
    /// Whether SYSCALL goes to the host (user-mode emulation).
    user_syscalls: bool,
    /// Set by SYSCALL when it goes to the host.
    pub(crate) syscall_pending: bool,
    /// The interrupt controller whose pin the CPU samples.
    pub(crate) interrupts: Option<Arc<dyn emu_core::InterruptAcknowledge>>,
    /// The CPU's local APIC, if the machine has one (then also
    /// `interrupts`).
    pub(crate) apic: Option<Arc<dyn emu_core::LocalApicPort>>,
    /// The initial APIC ID CPUID reports.
    pub(crate) apic_id: u8,
    /// The bootstrap processor starts at the reset vector; the others wait
    /// for a start-up IPI.
    pub(crate) bootstrap: bool,
    /// After INIT: waiting for a start-up IPI (halted until one comes).
    pub(crate) waiting_for_startup: bool,
    /// An NMI waits to be taken.
    pub(crate) nmi_pending: bool,
    /// An NMI handler runs: further NMIs wait for its IRET.
    pub(crate) nmi_blocked: bool,
    /// The chipset's A20 gate, read after each port or device write.
    a20_line: Option<A20Line>,
    /// The clock the TSC counts, if the machine connected one.
    pub(crate) tsc_clock: Option<Arc<emu_core::VirtualClock>>,
    /// The boundary after STI or MOV SS: no interrupt is taken here.
    pub(crate) interrupt_shadow: bool,
    /// Set by STI and MOV/POP SS for the next instruction.
    pub(crate) shadow_next: bool,
    /// The breakpoints DR7 arms.
    pub(crate) breakpoints: Vec<crate::events::Breakpoint>,
    /// Data breakpoints the current instruction hit (DR6 bits).
    pub(crate) data_hits: u64,
    /// A device write asked the machine to stop, or PAUSE ended the turn.
    pub(crate) device_stop: bool,
    /// PAUSE ends this CPU's turn ([`Cpu::set_yield_on_pause`]).
    pub(crate) yield_on_pause: bool,
    /// PAUSE ended the turn: the run ends as if its budget were spent.
    pub(crate) yielded: bool,
    /// A debugger's breakpoints and watchpoints; `None` (the usual case)
    /// keeps the run loop free of their checks.
    pub(crate) debug: Option<Box<crate::debug::DebugState>>,
    /// Whether a debugger watches data: every linear access is checked then.
    pub(crate) gdb_watching: bool,
    /// Whether data accesses must be looked at at all (DR7 arms a breakpoint
    /// or a debugger watches): the one test the common path makes.
    pub(crate) watch_data: bool,
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpu")
            .field("model", &self.model.name)
            .field("rip", &format_args!("{:#x}", self.state.rip))
            .field("halted", &self.halted)
            .finish_non_exhaustive()
    }
}

impl Cpu {
    /// A CPU of `model` on `bus`, in its reset state.
    pub fn new(model: CpuModel, bus: Arc<Bus>) -> Cpu {
        let inbox = bus.ram().watch_code_writes();
        let mut cpu = Cpu {
            state: CpuState::default(),
            model,
            bus,
            inbox,
            pages: Vec::new(),
            code: FxHashMap::default(),
            last_page: 0,
            last_index: 0,
            next_ip: 0,
            halted: false,
            shutdown: false,
            executed: 0,
            a20_mask: u64::MAX,
            last_exception: None,
            tlb: Tlb::default(),
            user_syscalls: false,
            syscall_pending: false,
            interrupts: None,
            apic: None,
            apic_id: 0,
            bootstrap: true,
            waiting_for_startup: false,
            nmi_pending: false,
            nmi_blocked: false,
            a20_line: None,
            tsc_clock: None,
            interrupt_shadow: false,
            shadow_next: false,
            breakpoints: Vec::new(),
            data_hits: 0,
            device_stop: false,
            yield_on_pause: false,
            yielded: false,
            debug: None,
            gdb_watching: false,
            watch_data: false,
        };
        cpu.reset();
        cpu
    }

    /// Resets the CPU: real mode at F000:FFF0.
    pub fn reset(&mut self) {
        self.state = CpuState::at_reset();
        if self.model.generation == crate::model::Generation::I286 {
            // The 286's machine status word resets with its unused bits set.
            self.state.cr0 = 0xfff0;
        }
        self.halted = false;
        self.shutdown = false;
        self.interrupt_shadow = false;
        self.nmi_pending = false;
        self.nmi_blocked = false;
        self.waiting_for_startup = false;
        if !self.bootstrap {
            self.state.msr.apic_base &= !crate::sysinsn::APIC_BASE_BSP;
            // An application processor waits for its start-up IPI.
            if self.apic.is_some() {
                self.waiting_for_startup = true;
                self.halted = true;
            }
        }
        self.breakpoints.clear();
        self.update_data_watch();
        self.tlb.flush_all();
        self.last_page = 0;
    }

    /// Makes PAUSE end [`Cpu::run`] early (as if the budget were spent):
    /// for machines whose CPUs take turns on one thread, where a CPU
    /// spinning on a lock would otherwise spin out its whole turn while the
    /// holder waits, or forever when the turns line up with the spin loop.
    pub fn set_yield_on_pause(&mut self, on: bool) {
        self.yield_on_pause = on;
    }

    /// Makes SYSCALL end [`Cpu::run`] with [`RunExit::Syscall`] instead of
    /// entering a guest kernel: how user-mode emulation runs a Linux program,
    /// whose system calls the host carries out.
    pub fn set_user_syscalls(&mut self, on: bool) {
        self.user_syscalls = on;
    }

    /// Whether SYSCALL goes to the host.
    pub(crate) fn user_syscalls(&self) -> bool {
        self.user_syscalls
    }

    /// The model this CPU behaves as.
    pub fn model(&self) -> &CpuModel {
        &self.model
    }

    /// The bus the CPU reaches memory and ports through.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// Instructions retired plus exceptions taken.
    pub fn executed(&self) -> u64 {
        self.executed
    }

    /// The last exception an instruction raised, with the instruction
    /// pointer of that instruction (for diagnostics and tests).
    pub fn last_exception(&self) -> Option<(Fault, u64)> {
        self.last_exception
    }

    /// Whether the CPU waits in HLT.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Sets the A20 gate input (the PC's keyboard controller or port 0x92
    /// drives it): closed, physical addresses have bit 20 forced to zero, so
    /// they wrap at 1 MiB as on an 8086.
    pub fn set_a20(&mut self, open: bool) {
        self.a20_mask = if open { u64::MAX } else { !(1 << 20) };
    }

    /// Connects the chipset's A20 gate: the CPU reads it now and after every
    /// port or device write, so an `out` that opens the gate takes effect at
    /// the next instruction, as on a PC.
    pub fn connect_a20(&mut self, line: A20Line) {
        self.set_a20(line());
        self.a20_line = Some(line);
    }

    /// Writes FLAGS as POPF at privilege 0 would: bits software cannot set in
    /// this mode and model stay as the CPU keeps them.
    pub fn write_flags(&mut self, value: u64) {
        self.set_flags(value, mask(8));
    }

    /// Sets the FLAGS bits in `writable` from `value`.
    pub(crate) fn set_flags(&mut self, value: u64, writable: u64) {
        // RF comes back through IRET (POPF's mask leaves it out).
        let mut allowed = flags::WRITABLE_286 | self.model.extended_flags();
        if self.real_mode() {
            allowed &= !self.model.real_mode_fixed_zero_flags();
        }
        let allowed = allowed & writable;
        self.state.rflags = (self.state.rflags & !allowed) | (value & allowed) | flags::FIXED1;
    }

    /// Whether the CPU is in real mode (CR0.PE clear).
    #[inline]
    pub fn real_mode(&self) -> bool {
        self.state.cr0 & cr0::PE == 0
    }

    /// Whether long mode is active (64-bit or compatibility code).
    #[inline]
    pub fn long_mode(&self) -> bool {
        self.state.efer & efer::LMA != 0
    }

    /// Bitness of the code segment: 16, 32 or 64.
    #[inline]
    pub(crate) fn code_bits(&self) -> u32 {
        let cs = self.state.seg(SegReg::Cs).attrs;
        if self.long_mode() && cs & attrs::L != 0 {
            64
        } else if cs & attrs::DB != 0 && !self.real_mode() {
            32
        } else {
            16
        }
    }

    /// Runs up to `budget` instructions.
    pub fn run(&mut self, budget: u64) -> RunExit {
        if self.shutdown {
            return RunExit::Shutdown;
        }
        if self.halted && !self.take_external_interrupt() {
            return RunExit::Halted;
        }
        self.drop_written_code();
        if self.debug.is_some() {
            return self.run_debugged(budget);
        }
        for _ in 0..budget {
            if self.interrupts.is_some() {
                self.take_external_interrupt();
                // INIT leaves an application processor waiting.
                if self.halted {
                    return RunExit::Halted;
                }
            }
            self.step();
            if let Some(exit) = self.step_exit() {
                return exit;
            }
        }
        self.budget_exit()
    }

    /// Why the run must end after the instruction just executed, if it must.
    #[inline(always)]
    pub(crate) fn step_exit(&mut self) -> Option<RunExit> {
        if self.shutdown {
            return Some(RunExit::Shutdown);
        }
        if self.halted {
            return Some(RunExit::Halted);
        }
        if self.syscall_pending {
            self.syscall_pending = false;
            return Some(RunExit::Syscall);
        }
        if self.device_stop {
            self.device_stop = false;
            if std::mem::take(&mut self.yielded) {
                return Some(RunExit::Budget);
            }
            return Some(RunExit::Stopped);
        }
        None
    }

    /// How a run that used its whole budget ends.
    pub(crate) fn budget_exit(&self) -> RunExit {
        if self.bus.control().stop_requested() {
            return RunExit::Stopped;
        }
        RunExit::Budget
    }

    /// Executes one instruction, or takes the exception it raises.
    pub(crate) fn step(&mut self) {
        self.executed += 1;
        if !self.breakpoints.is_empty() {
            let cs = self.state.seg(SegReg::Cs).base;
            let linear = self.wrap_linear(cs.wrapping_add(self.state.rip));
            if let Some(fault) = self.instruction_breakpoint(linear) {
                return self.take_fault(fault);
            }
        }
        // The decoded instruction is copied into a local through a plain
        // reference: returning it inside a Result made the compiler move it
        // field by field with overlapping stores that stalled the pipeline.
        let mut insn = Insn::invalid(0);
        if let Err(fault) = self.fetch(&mut insn) {
            return self.take_fault(fault);
        }
        let single_step = self.single_stepping();
        let resume = self.state.rflags & flags::RF != 0;
        let ip_mask = self.ip_mask();
        self.next_ip = self.state.rip.wrapping_add(u64::from(insn.len)) & ip_mask;
        let result = self.execute(&insn);
        // STI and MOV SS hold interrupts (and traps) off at the boundary
        // after them only.
        self.interrupt_shadow = std::mem::take(&mut self.shadow_next);
        match result {
            Ok(()) => {
                self.state.rip = self.next_ip;
                // RF holds for one instruction only (an IRET that sets it
                // sets it for the next).
                if resume {
                    self.state.rflags &= !flags::RF;
                }
                if single_step || self.data_hits != 0 {
                    self.debug_traps(single_step && !self.interrupt_shadow);
                }
            }
            Err(fault) => {
                self.data_hits = 0;
                self.take_fault(fault)
            }
        }
    }

    /// What a locked store into RAM owes: decoded code of the page dropped
    /// here and on other CPUs, data breakpoints told.
    pub(crate) fn note_locked_write(&mut self, phys: u64, ram_offset: u64, linear: u64, len: u8) {
        let ram = self.bus.ram().clone();
        if ram.is_code_page(ram_offset) {
            ram.note_write(ram_offset, u64::from(len), Some(&self.inbox));
            self.forget_page(phys / PAGE_SIZE);
        }
        self.watch_access(linear, len, true);
        if self.gdb_watching {
            // A locked cycle reads too.
            self.debug_watch(linear, len, false);
        }
    }

    /// What a debugger's store of `len` bytes at RAM offset `ram_offset`
    /// (physical `phys`) owes: decoded code of the pages it touched dropped
    /// here and on other CPUs.
    pub(crate) fn note_debug_write(&mut self, phys: u64, ram_offset: u64, len: u64) {
        let ram = self.bus.ram().clone();
        let end = phys + len;
        let mut at = phys;
        while at < end {
            let next = (at / PAGE_SIZE + 1) * PAGE_SIZE;
            let n = next.min(end) - at;
            let offset = ram_offset + (at - phys);
            if ram.is_code_page(offset) {
                ram.note_write(offset, n, Some(&self.inbox));
                self.forget_page(at / PAGE_SIZE);
            }
            at += n;
        }
    }

    /// Whether a triple fault stopped the CPU.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown
    }

    /// The linear address of CS:IP (CS's base counts for nothing in 64-bit
    /// code).
    pub(crate) fn pc_linear(&self) -> u64 {
        if self.code_bits() == 64 {
            self.state.rip
        } else {
            let cs = self.state.seg(SegReg::Cs).base;
            self.wrap_linear(cs.wrapping_add(self.state.rip))
        }
    }

    /// Ends the slice after this instruction if a device write asked the
    /// machine to stop.
    pub(crate) fn note_device_stop(&mut self) {
        if self.bus.control().stop_requested() {
            self.device_stop = true;
        }
        // A chipset register may have remapped memory (a PC's shadow RAM)
        // or moved the A20 gate: the next instruction sees the change.
        self.drop_written_code();
        if let Some(line) = &self.a20_line {
            let open = line();
            if open != (self.a20_mask == u64::MAX) {
                self.set_a20(open);
            }
        }
    }

    /// Ends a HLT.
    pub(crate) fn wake(&mut self) {
        self.halted = false;
    }

    /// The mask of the instruction pointer in the current code segment.
    pub(crate) fn ip_mask(&self) -> u64 {
        match self.code_bits() {
            16 => 0xffff,
            32 => 0xffff_ffff,
            _ => u64::MAX,
        }
    }

    /// Stops in HLT after this instruction.
    pub(crate) fn halt(&mut self) {
        self.halted = true;
    }

    /// Forgets the decoded instructions of physical page `page`.
    pub(crate) fn forget_page(&mut self, page: u64) {
        let Some(index) = self.code.remove(&page) else {
            return;
        };
        self.pages.swap_remove(index);
        // The last page moved into the hole.
        if let Some(moved) = self.pages.get(index) {
            self.code.insert(moved.page, index);
        }
        self.last_page = 0;
    }

    /// Forgets decoded instructions of pages other CPUs or devices wrote.
    pub(crate) fn drop_written_code(&mut self) {
        if !self.inbox.has_pending() {
            return;
        }
        match self.inbox.take() {
            Some(pages) => {
                for offset in pages {
                    self.forget_page(offset / PAGE_SIZE);
                }
            }
            // Too many pages to list, or memory was remapped: drop everything.
            None => {
                self.code.clear();
                self.pages.clear();
                self.last_page = 0;
            }
        }
    }

    /// The decoded instruction at CS:IP.
    fn fetch(&mut self, out: &mut Insn) -> Result<(), Fault> {
        let bits = self.code_bits();
        let ip = self.state.rip;
        let cs = *self.state.seg(SegReg::Cs);
        let limit = if bits == 64 {
            if !canonical(ip) {
                return Err(Fault::gp(0));
            }
            u64::MAX
        } else {
            u64::from(cs.limit)
        };
        if ip > limit {
            return Err(Fault::gp(0));
        }
        let base = if bits == 64 { 0 } else { cs.base };
        let linear = self.wrap_linear(base.wrapping_add(ip));
        let phys = self.translate(linear, Access::Fetch)?;
        let page = phys / PAGE_SIZE;
        let slot = (phys % PAGE_SIZE) as usize;
        let index = if self.last_page == page + 1 {
            Some(self.last_index)
        } else {
            self.code.get(&page).copied()
        };
        if let Some(index) = index
            && let Some(decoded) = self.pages.get(index)
            && decoded.bits == bits
        {
            self.last_page = page + 1;
            self.last_index = index;
            if let Some(insn) = decoded.get(slot) {
                *out = *insn;
                return Ok(());
            }
        }
        // Gather what can be fetched: up to 15 bytes, no further than the
        // segment limit.
        let mut bytes = [0u8; 15];
        let mut room = (limit - ip).saturating_add(1).min(15) as usize;
        // Bytes on the next page are fetched only if that page is there; a
        // fault there matters only if the instruction needs those bytes.
        let mut next_page_fault = None;
        for (i, byte) in bytes.iter_mut().enumerate().take(room) {
            let at_linear = self.wrap_linear(linear.wrapping_add(i as u64));
            let at = if (phys % PAGE_SIZE) + (i as u64) < PAGE_SIZE {
                phys + i as u64
            } else {
                match self.translate(at_linear, Access::Fetch) {
                    Ok(at) => at,
                    Err(fault) => {
                        next_page_fault = Some(fault);
                        room = i;
                        break;
                    }
                }
            };
            *byte = self.read_physical(at, 1) as u8;
        }
        let insn = match decode::decode(&bytes[..room], bits, &self.model) {
            Ok(insn) => insn,
            // The instruction runs into a page that is not there, or past
            // the segment limit.
            Err(DecodeError::NeedMoreBytes) => return Err(next_page_fault.unwrap_or(Fault::gp(0))),
        };
        let fits_page = slot + usize::from(insn.len) <= PAGE_SIZE as usize;
        if fits_page && let Some(ram_offset) = self.bus.ram_offset(GuestPhysAddr(phys), 1) {
            self.bus.ram().mark_code_page(ram_offset);
            let index = match self.code.get(&page) {
                Some(&index) => index,
                None => {
                    self.pages.push(DecodedPage::new(page, bits));
                    self.code.insert(page, self.pages.len() - 1);
                    self.pages.len() - 1
                }
            };
            let decoded = &mut self.pages[index];
            if decoded.bits != bits {
                *decoded = DecodedPage::new(page, bits);
            }
            decoded.insert(slot, insn);
        }
        *out = insn;
        Ok(())
    }

    /// A linear address as the current mode wraps it (32 bits outside
    /// 64-bit code).
    #[inline]
    pub(crate) fn wrap_linear(&self, linear: u64) -> u64 {
        if self.code_bits() == 64 {
            linear
        } else {
            linear & 0xffff_ffff
        }
    }

    /// An address as the address lines and the A20 gate deliver it: the
    /// linear address with paging off, the walk's result with it on.
    #[inline]
    pub(crate) fn physical(&self, linear: u64) -> u64 {
        linear & self.a20_mask & self.model.physical_mask()
    }

    /// Reads `len` bytes (1, 2, 4 or 8) at `offset` in `seg`.
    pub(crate) fn read(&mut self, seg: SegReg, offset: u64, len: u8) -> Result<u64, Fault> {
        let linear = self.linear(seg, offset, len, Access::Read)?;
        self.watch_access(linear, len, false);
        self.load_linear(linear, len, Access::Read)
    }

    /// Writes the low `len` bytes of `value` at `offset` in `seg`.
    pub(crate) fn write(
        &mut self,
        seg: SegReg,
        offset: u64,
        len: u8,
        value: u64,
    ) -> Result<(), Fault> {
        let linear = self.linear(seg, offset, len, Access::Write)?;
        self.watch_access(linear, len, true);
        self.store_linear(linear, len, value, Access::Write)
    }

    /// The processor's own read at a linear address (descriptor tables, the
    /// TSS, gates): a debugger's watchpoints see it, the guest's data
    /// breakpoints do not.
    pub(crate) fn read_linear(
        &mut self,
        linear: u64,
        len: u8,
        access: Access,
    ) -> Result<u64, Fault> {
        if self.gdb_watching {
            self.debug_watch(linear, len, false);
        }
        self.load_linear(linear, len, access)
    }

    /// The processor's own write at a linear address (accessed bits, the
    /// TSS, an interrupt's stack frame): a debugger's watchpoints see it.
    pub(crate) fn write_linear(
        &mut self,
        linear: u64,
        len: u8,
        value: u64,
        access: Access,
    ) -> Result<(), Fault> {
        if self.gdb_watching {
            self.debug_watch(linear, len, true);
        }
        self.store_linear(linear, len, value, access)
    }

    /// Reads at a linear address; an access that crosses a page translates
    /// both pages before reading anything.
    #[inline]
    fn load_linear(&mut self, linear: u64, len: u8, access: Access) -> Result<u64, Fault> {
        let phys = self.translate(linear, access)?;
        let len64 = u64::from(len);
        if phys % PAGE_SIZE + len64 <= PAGE_SIZE
            && self.physical(phys + len64 - 1) == phys + len64 - 1
        {
            return Ok(self.read_physical(phys, len));
        }
        let last = self.wrap_linear(linear.wrapping_add(len64 - 1));
        self.translate(last, access)?;
        let mut value = 0;
        for i in 0..len64 {
            let at = self.translate(self.wrap_linear(linear.wrapping_add(i)), access)?;
            value |= self.read_physical(at, 1) << (8 * i);
        }
        Ok(value)
    }

    /// Writes at a linear address; an access that crosses a page translates
    /// both pages before writing anything.
    fn store_linear(
        &mut self,
        linear: u64,
        len: u8,
        value: u64,
        access: Access,
    ) -> Result<(), Fault> {
        let phys = self.translate(linear, access)?;
        let len64 = u64::from(len);
        if phys % PAGE_SIZE + len64 <= PAGE_SIZE
            && self.physical(phys + len64 - 1) == phys + len64 - 1
        {
            self.write_physical(phys, len, value);
            return Ok(());
        }
        let last = self.wrap_linear(linear.wrapping_add(len64 - 1));
        self.translate(last, access)?;
        for i in 0..len64 {
            let at = self.translate(self.wrap_linear(linear.wrapping_add(i)), access)?;
            self.write_physical(at, 1, value >> (8 * i));
        }
        Ok(())
    }

    /// Reads physical memory; what no device answers reads as all ones, as
    /// on a PC's bus.
    #[inline]
    pub(crate) fn read_physical(&self, phys: u64, len: u8) -> u64 {
        let addr = GuestPhysAddr(phys);
        if let Some(offset) = self.bus.ram_offset(addr, u64::from(len)) {
            let ram = self.bus.ram();
            let value = match len {
                1 => ram.read_u8(offset).map(u64::from),
                2 => ram.read_u16(offset).map(u64::from),
                4 => ram.read_u32(offset).map(u64::from),
                _ => ram.read_u64(offset),
            };
            if let Some(value) = value {
                return value;
            }
        }
        if let Some(offset) = self.apic_register(phys) {
            return self.read_apic(offset, len);
        }
        self.bus.read(addr, len).unwrap_or(mask(len))
    }

    /// Writes physical memory; writes nothing decodes are dropped. Decoded
    /// instructions of the page are forgotten, here and on other CPUs.
    pub(crate) fn write_physical(&mut self, phys: u64, len: u8, value: u64) {
        let addr = GuestPhysAddr(phys);
        if let Some(offset) = self.bus.writable_offset(addr, u64::from(len)) {
            let ram = self.bus.ram();
            let written = match len {
                1 => ram.write_u8(offset, value as u8),
                2 => ram.write_u16(offset, value as u16),
                4 => ram.write_u32(offset, value as u32),
                _ => ram.write_u64(offset, value),
            };
            if written {
                if ram.is_code_page(offset) {
                    ram.note_write(offset, u64::from(len), Some(&self.inbox));
                    self.forget_page(phys / PAGE_SIZE);
                }
                return;
            }
        }
        if let Some(offset) = self.apic_register(phys) {
            self.write_apic(offset, len, value);
            return;
        }
        // ROM and holes ignore writes on a PC.
        let _ = self.bus.write(addr, len, value);
        self.note_device_stop();
    }

    /// The stack pointer width: 8 bytes in 64-bit code, else 2 or 4 (SS's B
    /// bit).
    pub(crate) fn stack_size(&self) -> u8 {
        if self.code_bits() == 64 {
            8
        } else if !self.real_mode() && self.state.seg(SegReg::Ss).attrs & attrs::DB != 0 {
            4
        } else {
            2
        }
    }

    /// Pushes the low `len` bytes of `value`.
    pub(crate) fn push(&mut self, value: u64, len: u8) -> Result<(), Fault> {
        let width = self.stack_size();
        let sp = self.state.gpr[gpr::SP].wrapping_sub(u64::from(len)) & mask(width);
        self.write(SegReg::Ss, sp, len, value)?;
        self.set_gpr(gpr::SP, width, sp);
        Ok(())
    }

    /// Pops `len` bytes.
    pub(crate) fn pop(&mut self, len: u8) -> Result<u64, Fault> {
        let width = self.stack_size();
        let sp = self.state.gpr[gpr::SP] & mask(width);
        let value = self.read(SegReg::Ss, sp, len)?;
        self.set_gpr(gpr::SP, width, sp.wrapping_add(u64::from(len)));
        Ok(value)
    }

    /// Register `reg`'s low `len` bytes.
    #[inline]
    pub(crate) fn gpr(&self, reg: usize, len: u8) -> u64 {
        self.state.gpr[reg] & mask(len)
    }

    /// Writes register `reg`'s low `len` bytes: 1 and 2 keep the rest, 4
    /// clears the upper half (as 32-bit writes do in long mode), 8 all.
    #[inline]
    pub(crate) fn set_gpr(&mut self, reg: usize, len: u8, value: u64) {
        let r = &mut self.state.gpr[reg];
        *r = match len {
            1 => (*r & !0xff) | (value & 0xff),
            2 => (*r & !0xffff) | (value & 0xffff),
            4 => value & 0xffff_ffff,
            _ => value,
        };
    }

    /// Takes the exception an instruction raised (the instruction pointer
    /// still points at it): a fault while delivering it becomes a double
    /// fault, and a fault delivering that shuts the CPU down.
    pub(crate) fn take_fault(&mut self, fault: Fault) {
        self.executed += 1;
        let ip = self.state.rip;
        self.last_exception = Some((fault, ip));
        let exception = InterruptKind::Exception;
        if self
            .interrupt(fault.vector, ip, fault.error, exception)
            .is_ok()
        {
            return;
        }
        self.state.rip = ip;
        if self.interrupt(vector::DF, ip, Some(0), exception).is_err() {
            self.shutdown = true;
        }
    }
}

/// Whether `addr` is canonical (bits 63–47 all equal).
#[inline]
pub(crate) fn canonical(addr: u64) -> bool {
    ((addr as i64) << 16 >> 16) as u64 == addr
}

impl emu_core::cpu::Vcpu for Cpu {
    fn run_slice(&mut self, budget: u64) -> emu_core::cpu::SliceEnd {
        use emu_core::cpu::SliceEnd;
        match self.run(budget) {
            RunExit::Budget => SliceEnd::Budget,
            RunExit::Halted => SliceEnd::Idle,
            RunExit::Stopped => SliceEnd::Stopped,
            // A triple fault resets a PC (its chipset turns the shutdown
            // cycle into a reset).
            RunExit::Shutdown => {
                self.bus.control().request_stop(emu_core::StopReason::Reset);
                SliceEnd::Stopped
            }
            // A system call for the host has no meaning on a machine.
            RunExit::Syscall => SliceEnd::Stopped,
            RunExit::Debug => SliceEnd::Debug,
        }
    }

    fn wakeup_pending(&self) -> bool {
        self.interrupt_deliverable()
    }

    fn executed(&self) -> u64 {
        self.executed
    }

    /// The interpreter runs some 20 to 60 million instructions a second:
    /// 16Ki of them take under a millisecond.
    fn slice_len(&self) -> u64 {
        1 << 14
    }
}
