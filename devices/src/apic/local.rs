//! One CPU's local APIC (xAPIC): its registers, the interrupt request and
//! in-service bitmaps with priorities, the ICR that sends IPIs, the LVT with
//! its timer (one-shot, periodic and TSC-deadline) and the LINT0 pin the
//! i8259 pair reaches the CPU through.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use emu_core::sync::LockRecover;
use emu_core::{CpuSignal, InterruptAcknowledge, LocalApicPort, VirtualClock};
use serde::{Deserialize, Serialize};

use super::{ApicBus, ApicMessage, DeliveryMode, Destination};

/// Register offsets in the APIC's page.
pub mod reg {
    /// Local APIC ID (bits 31–24).
    pub const ID: u32 = 0x20;
    /// Version and LVT count.
    pub const VERSION: u32 = 0x30;
    /// Task priority.
    pub const TPR: u32 = 0x80;
    /// Arbitration priority.
    pub const APR: u32 = 0x90;
    /// Processor priority.
    pub const PPR: u32 = 0xa0;
    /// End of interrupt.
    pub const EOI: u32 = 0xb0;
    /// Remote read.
    pub const RRD: u32 = 0xc0;
    /// Logical destination.
    pub const LDR: u32 = 0xd0;
    /// Destination format.
    pub const DFR: u32 = 0xe0;
    /// Spurious vector and software enable.
    pub const SVR: u32 = 0xf0;
    /// In-service vectors (eight registers).
    pub const ISR: u32 = 0x100;
    /// Trigger mode of requested vectors (eight registers).
    pub const TMR: u32 = 0x180;
    /// Requested vectors (eight registers).
    pub const IRR: u32 = 0x200;
    /// Error status.
    pub const ESR: u32 = 0x280;
    /// Interrupt command, low half (writing it sends).
    pub const ICR_LOW: u32 = 0x300;
    /// Interrupt command, destination.
    pub const ICR_HIGH: u32 = 0x310;
    /// The first LVT entry, the timer.
    pub const LVT_TIMER: u32 = 0x320;
    /// The last LVT entry, errors.
    pub const LVT_ERROR: u32 = 0x370;
    /// Timer initial count.
    pub const TIMER_INITIAL: u32 = 0x380;
    /// Timer current count.
    pub const TIMER_CURRENT: u32 = 0x390;
    /// Timer divide configuration.
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

/// Version 0x14 (an integrated xAPIC) with six LVT entries, as QEMU's.
const VERSION: u32 = 0x0005_0014;
/// LVT entries in register order: timer, thermal, performance counters,
/// LINT0, LINT1, error.
const LVT_COUNT: usize = 6;
const LVT_TIMER: usize = 0;
const LVT_LINT0: usize = 3;
/// The LVT mask bit.
const MASKED: u32 = 1 << 16;
/// The bits each LVT entry keeps: the timer's vector, mask and mode; LINT0
/// and LINT1's vector, delivery mode, polarity, trigger and mask; the
/// others' vector, delivery mode and mask; the error entry's vector and mask.
const LVT_WRITABLE: [u32; LVT_COUNT] = [
    0x0007_00ff,
    0x0001_07ff,
    0x0001_07ff,
    0x0001_a7ff,
    0x0001_a7ff,
    0x0001_00ff,
];
/// SVR: the spurious vector, software enable, focus checking.
const SVR_WRITABLE: u32 = 0x3ff;
const SVR_ENABLE: u32 = 1 << 8;
/// ESR bits this model raises.
const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;
/// The LVT timer's mode field.
const TIMER_PERIODIC: u32 = 1 << 17;
const TIMER_TSC_DEADLINE: u32 = 2 << 17;
const TIMER_MODE: u32 = 3 << 17;

/// A 256-bit vector set (IRR, ISR, TMR), as the registers lay it out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct VectorSet([u32; 8]);

impl VectorSet {
    fn set(&mut self, vector: u8) {
        self.0[usize::from(vector >> 5)] |= 1 << (vector & 31);
    }
    fn clear(&mut self, vector: u8) {
        self.0[usize::from(vector >> 5)] &= !(1 << (vector & 31));
    }
    fn has(&self, vector: u8) -> bool {
        self.0[usize::from(vector >> 5)] & (1 << (vector & 31)) != 0
    }
    fn highest(&self) -> Option<u8> {
        (0..8).rev().find_map(|word| {
            let bits = self.0[word];
            (bits != 0).then(|| (word as u32 * 32 + 31 - bits.leading_zeros()) as u8)
        })
    }
}

/// The saved and restored part of a local APIC.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LocalApicState {
    id: u8,
    hardware_enabled: bool,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: VectorSet,
    tmr: VectorSet,
    irr: VectorSet,
    esr: u32,
    esr_pending: u32,
    lvt: [u32; LVT_COUNT],
    icr: u64,
    timer_initial: u32,
    timer_divide: u32,
    /// The clock when the count was loaded.
    timer_start: u64,
    /// When the timer fires next (clock ticks).
    timer_due: Option<u64>,
    /// The armed TSC deadline (clock ticks).
    tsc_deadline: Option<u64>,
    /// An ExtINT message waits for the i8259's vector.
    extint: bool,
    #[serde(skip)]
    signals: VecDeque<CpuSignal>,
}

impl LocalApicState {
    fn at_reset(id: u8, bsp: bool) -> LocalApicState {
        let mut lvt = [MASKED; LVT_COUNT];
        // The bootstrap processor's LINT0 takes the i8259 (virtual wire
        // mode) from the start, as QEMU sets it: firmware running with
        // the APIC software-disabled still gets its timer.
        if bsp {
            lvt[LVT_LINT0] = 0x700;
        }
        LocalApicState {
            id,
            hardware_enabled: true,
            tpr: 0,
            ldr: 0,
            dfr: 0xffff_ffff,
            svr: 0xff,
            isr: VectorSet::default(),
            tmr: VectorSet::default(),
            irr: VectorSet::default(),
            esr: 0,
            esr_pending: 0,
            lvt,
            icr: 0,
            timer_initial: 0,
            timer_divide: 0,
            timer_start: 0,
            timer_due: None,
            tsc_deadline: None,
            extint: false,
            signals: VecDeque::new(),
        }
    }

    fn software_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// The processor priority: the task priority, or the class of the
    /// highest vector in service when that is higher.
    fn ppr(&self) -> u32 {
        let isrv = self.isr.highest().map_or(0, u32::from);
        if (self.tpr >> 4) >= (isrv >> 4) {
            self.tpr
        } else {
            isrv & 0xf0
        }
    }

    /// The vector to run next: the highest requested one above the
    /// processor priority.
    fn deliverable(&self) -> Option<u8> {
        if !self.hardware_enabled || !self.software_enabled() {
            return None;
        }
        let vector = self.irr.highest()?;
        (u32::from(vector >> 4) > self.ppr() >> 4).then_some(vector)
    }

    /// Whether the i8259's requests reach the CPU: with the APIC off, or
    /// LINT0 unmasked (set to ExtINT by firmware).
    fn accepts_pic(&self) -> bool {
        !self.hardware_enabled || self.lvt[LVT_LINT0] & MASKED == 0
    }

    /// Requests `vector` (fixed or lowest-priority delivery).
    fn request(&mut self, vector: u8, level_triggered: bool) {
        if vector < 16 {
            self.esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR;
            return;
        }
        self.irr.set(vector);
        if level_triggered {
            self.tmr.set(vector);
        } else {
            self.tmr.clear(vector);
        }
    }

    /// The divide configuration as a shift: 0b1011 is 1, else 2 << n.
    fn divide_shift(&self) -> u32 {
        let code = (self.timer_divide & 3) | ((self.timer_divide >> 1) & 4);
        (code + 1) & 7
    }

    fn timer_mode(&self) -> u32 {
        self.lvt[LVT_TIMER] & TIMER_MODE
    }

    /// The timer's current count at `now`.
    fn timer_current(&self, now: u64) -> u32 {
        if self.timer_due.is_none() || self.timer_mode() == TIMER_TSC_DEADLINE {
            return 0;
        }
        let initial = u64::from(self.timer_initial);
        let elapsed = now.saturating_sub(self.timer_start) >> self.divide_shift();
        let left = if self.timer_mode() == TIMER_PERIODIC {
            initial - elapsed % initial
        } else {
            initial.saturating_sub(elapsed)
        };
        left as u32
    }

    /// Starts counting down from the initial count at `now`.
    fn start_timer(&mut self, now: u64) {
        self.timer_start = now;
        self.timer_due = (self.timer_initial != 0 && self.timer_mode() != TIMER_TSC_DEADLINE)
            .then(|| now + (u64::from(self.timer_initial) << self.divide_shift()));
    }

    /// Fires the timer if it is due at `now`; returns when it is due next.
    fn run_timer(&mut self, now: u64) -> Option<u64> {
        if self.timer_mode() == TIMER_TSC_DEADLINE {
            self.timer_due = None;
            let deadline = self.tsc_deadline?;
            if deadline > now {
                return Some(deadline);
            }
            self.tsc_deadline = None;
            self.fire_timer();
            return None;
        }
        let due = self.timer_due?;
        if due > now {
            return Some(due);
        }
        self.fire_timer();
        if self.timer_mode() == TIMER_PERIODIC {
            let period = u64::from(self.timer_initial) << self.divide_shift();
            // A late tick delivers one interrupt, not the ones it missed
            // (they would only coalesce in the IRR anyway).
            let periods = (now - self.timer_start) / period + 1;
            let next = self.timer_start + periods * period;
            self.timer_due = Some(next);
            return Some(next);
        }
        self.timer_due = None;
        None
    }

    fn fire_timer(&mut self) {
        let lvt = self.lvt[LVT_TIMER];
        if lvt & MASKED == 0 {
            self.request(lvt as u8, false);
        }
    }

    /// INIT's effect on the APIC: everything but the ID and the base back
    /// to reset values.
    fn init(&mut self) {
        let keep = (self.id, self.hardware_enabled);
        let signals = std::mem::take(&mut self.signals);
        *self = LocalApicState::at_reset(keep.0, false);
        self.hardware_enabled = keep.1;
        self.signals = signals;
    }
}

/// One CPU's local APIC.
pub struct LocalApic {
    state: Mutex<LocalApicState>,
    bsp: bool,
    /// Whether an interrupt waits that the CPU can take (fixed vectors above
    /// the priority, or an ExtINT message): read between instructions.
    pending: AtomicBool,
    /// Whether the i8259 reaches the CPU through LINT0.
    accepts_pic: AtomicBool,
    /// Whether a signal (INIT, SIPI, NMI) waits.
    signal: AtomicBool,
    bus: Weak<ApicBus>,
    pic: Option<Arc<dyn InterruptAcknowledge>>,
    clock: Arc<VirtualClock>,
}

impl std::fmt::Debug for LocalApic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalApic")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl LocalApic {
    pub(super) fn new(
        id: u8,
        bsp: bool,
        bus: Weak<ApicBus>,
        pic: Option<Arc<dyn InterruptAcknowledge>>,
        clock: Arc<VirtualClock>,
    ) -> LocalApic {
        let apic = LocalApic {
            state: Mutex::new(LocalApicState::at_reset(id, bsp)),
            bsp,
            pending: AtomicBool::new(false),
            accepts_pic: AtomicBool::new(false),
            signal: AtomicBool::new(false),
            bus,
            pic,
            clock,
        };
        apic.update(&apic.state.lock_recover());
        apic
    }

    /// Recomputes the flags the CPU reads without the lock.
    fn update(&self, state: &LocalApicState) {
        self.pending.store(
            state.extint || state.deliverable().is_some(),
            Ordering::SeqCst,
        );
        self.accepts_pic
            .store(state.accepts_pic(), Ordering::SeqCst);
        self.signal
            .store(!state.signals.is_empty(), Ordering::SeqCst);
    }

    /// The APIC ID.
    pub fn id(&self) -> u8 {
        self.state.lock_recover().id
    }

    /// The task priority, which lowest-priority delivery compares.
    pub(super) fn task_priority(&self) -> u32 {
        self.state.lock_recover().tpr
    }

    /// Whether the logical destination `mask` names this APIC, under its
    /// destination format (flat or cluster).
    pub(super) fn logical_match(&self, mask: u8) -> bool {
        if mask == 0xff {
            return true;
        }
        let state = self.state.lock_recover();
        let logical = (state.ldr >> 24) as u8;
        if state.dfr >> 28 == 0xf {
            logical & mask != 0
        } else {
            logical >> 4 == mask >> 4 && logical & mask & 0xf != 0
        }
    }

    /// Takes a message from the bus.
    pub(super) fn accept(&self, message: &ApicMessage) {
        let mut state = self.state.lock_recover();
        match message.mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                state.request(message.vector, message.level_triggered);
            }
            DeliveryMode::Nmi => state.signals.push_back(CpuSignal::Nmi),
            DeliveryMode::Init => {
                state.init();
                state.signals.push_back(CpuSignal::Init);
            }
            DeliveryMode::Startup => state.signals.push_back(CpuSignal::Startup {
                vector: message.vector,
            }),
            DeliveryMode::ExtInt => state.extint = true,
            DeliveryMode::Smi | DeliveryMode::Reserved => {}
        }
        self.update(&state);
    }

    /// The machine's reset.
    pub(super) fn reset(&self) {
        let mut state = self.state.lock_recover();
        let id = state.id;
        *state = LocalApicState::at_reset(id, self.bsp);
        self.update(&state);
    }

    /// Runs the timer at `now`; returns when it is due next.
    pub(super) fn tick(&self, now: u64) -> Option<u64> {
        let mut state = self.state.lock_recover();
        let before = state.irr;
        let due = state.run_timer(now);
        if state.irr != before {
            self.update(&state);
            drop(state);
            if let Some(bus) = self.bus.upgrade() {
                bus.control.notify_irq();
            }
        }
        due
    }

    pub(super) fn state(&self) -> LocalApicState {
        self.state.lock_recover().clone()
    }

    pub(super) fn restore(&self, saved: LocalApicState) {
        let mut state = self.state.lock_recover();
        *state = saved;
        self.update(&state);
    }

    /// The ICR's message, sent when its low half is written.
    fn send_ipi(&self, icr: u64) -> Option<ApicMessage> {
        let low = icr as u32;
        let mode = DeliveryMode::from_bits(low >> 8);
        let level_triggered = low & (1 << 15) != 0;
        let assert = low & (1 << 14) != 0;
        // INIT level de-assert only synchronises arbitration IDs.
        if mode == DeliveryMode::Init && level_triggered && !assert {
            return None;
        }
        let id = (icr >> 56) as u8;
        let destination = match (low >> 18) & 3 {
            1 => Destination::SelfOnly,
            2 => Destination::All,
            3 => Destination::AllButSelf,
            _ if low & (1 << 11) != 0 => Destination::Logical(id),
            _ => Destination::Physical(id),
        };
        Some(ApicMessage {
            vector: low as u8,
            mode,
            destination,
            level_triggered: level_triggered && mode == DeliveryMode::Fixed,
        })
    }
}

impl InterruptAcknowledge for LocalApic {
    fn interrupt_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
            || (self.accepts_pic.load(Ordering::SeqCst)
                && self.pic.as_ref().is_some_and(|pic| pic.interrupt_pending()))
    }

    fn acknowledge(&self) -> Option<u8> {
        let mut state = self.state.lock_recover();
        if let Some(vector) = state.deliverable() {
            state.irr.clear(vector);
            state.isr.set(vector);
            self.update(&state);
            return Some(vector);
        }
        let extint = std::mem::take(&mut state.extint);
        let from_pic = extint || state.accepts_pic();
        self.update(&state);
        drop(state);
        let pic = self.pic.as_ref()?;
        (from_pic && (extint || pic.interrupt_pending()))
            .then(|| pic.acknowledge())
            .flatten()
    }
}

impl LocalApicPort for LocalApic {
    fn read_register(&self, offset: u32) -> u32 {
        let mut state = self.state.lock_recover();
        let index = |base: u32| ((offset - base) >> 4) as usize;
        match offset {
            reg::ID => u32::from(state.id) << 24,
            reg::VERSION => VERSION,
            reg::TPR => state.tpr,
            reg::APR => 0,
            reg::PPR => state.ppr(),
            reg::LDR => state.ldr,
            reg::DFR => state.dfr,
            reg::SVR => state.svr,
            0x100..=0x170 => state.isr.0[index(reg::ISR)],
            0x180..=0x1f0 => state.tmr.0[index(reg::TMR)],
            0x200..=0x270 => state.irr.0[index(reg::IRR)],
            reg::ESR => state.esr,
            reg::ICR_LOW => state.icr as u32,
            reg::ICR_HIGH => (state.icr >> 32) as u32,
            reg::LVT_TIMER..=reg::LVT_ERROR => state.lvt[index(reg::LVT_TIMER)],
            reg::TIMER_INITIAL => state.timer_initial,
            reg::TIMER_CURRENT => state.timer_current(self.clock.now()),
            reg::TIMER_DIVIDE => state.timer_divide,
            reg::EOI | reg::RRD => 0,
            _ => {
                state.esr_pending |= ESR_ILLEGAL_REGISTER;
                0
            }
        }
    }

    fn write_register(&self, offset: u32, value: u32) {
        let mut state = self.state.lock_recover();
        let mut send = None;
        let mut eoi = None;
        match offset {
            reg::ID => state.id = (value >> 24) as u8,
            reg::TPR => state.tpr = value & 0xff,
            reg::EOI => {
                if let Some(vector) = state.isr.highest() {
                    state.isr.clear(vector);
                    if state.tmr.has(vector) {
                        eoi = Some(vector);
                    }
                }
            }
            reg::LDR => state.ldr = value & 0xff00_0000,
            reg::DFR => state.dfr = value | 0x0fff_ffff,
            reg::SVR => {
                state.svr = value & SVR_WRITABLE;
                if !state.software_enabled() {
                    for entry in &mut state.lvt {
                        *entry |= MASKED;
                    }
                }
            }
            reg::ESR => {
                state.esr = std::mem::take(&mut state.esr_pending);
            }
            reg::ICR_LOW => {
                state.icr = (state.icr & !0xffff_ffff) | u64::from(value & !(1 << 12));
                send = self.send_ipi(state.icr);
                if let Some(message) = &send
                    && matches!(
                        message.mode,
                        DeliveryMode::Fixed | DeliveryMode::LowestPriority
                    )
                    && message.vector < 16
                {
                    state.esr_pending |= ESR_SEND_ILLEGAL_VECTOR;
                    send = None;
                }
            }
            reg::ICR_HIGH => {
                state.icr = (state.icr & 0xffff_ffff) | (u64::from(value & 0xff00_0000) << 32);
            }
            reg::LVT_TIMER..=reg::LVT_ERROR => {
                let index = ((offset - reg::LVT_TIMER) >> 4) as usize;
                let mut entry = value & LVT_WRITABLE[index];
                if !state.software_enabled() {
                    entry |= MASKED;
                }
                let old_mode = state.timer_mode();
                state.lvt[index] = entry;
                if index == LVT_TIMER && state.timer_mode() != old_mode {
                    // Switching modes disarms the timer.
                    state.timer_due = None;
                    state.tsc_deadline = None;
                    state.timer_initial = 0;
                }
            }
            reg::TIMER_INITIAL => {
                if state.timer_mode() != TIMER_TSC_DEADLINE {
                    state.timer_initial = value;
                    state.start_timer(self.clock.now());
                }
            }
            reg::TIMER_DIVIDE => {
                let now = self.clock.now();
                let current = state.timer_current(now);
                state.timer_divide = value & 0xb;
                // The count carries on at the new rate from where it is.
                if state.timer_due.is_some() {
                    let shift = state.divide_shift();
                    let initial = u64::from(state.timer_initial);
                    let done = (initial - u64::from(current)) << shift;
                    state.timer_start = now - done.min(now);
                    state.timer_due = Some(now + (u64::from(current) << shift));
                }
            }
            reg::VERSION | reg::APR | reg::PPR | reg::RRD | reg::TIMER_CURRENT => {}
            0x100..=0x270 => {}
            _ => state.esr_pending |= ESR_ILLEGAL_REGISTER,
        }
        self.update(&state);
        drop(state);
        let Some(bus) = self.bus.upgrade() else {
            return;
        };
        if let Some(vector) = eoi {
            bus.end_of_interrupt(vector);
        }
        if let Some(message) = send {
            let sender = bus
                .cpus
                .iter()
                .position(|apic| std::ptr::eq(Arc::as_ptr(apic), self));
            bus.deliver(message, sender);
        }
        // The timer may be due sooner than the machine planned.
        bus.control.notify_irq();
    }

    fn signal_pending(&self) -> bool {
        self.signal.load(Ordering::SeqCst)
    }

    fn take_signal(&self) -> Option<CpuSignal> {
        let mut state = self.state.lock_recover();
        let signal = state.signals.pop_front();
        self.update(&state);
        signal
    }

    fn set_hardware_enabled(&self, enabled: bool) {
        let mut state = self.state.lock_recover();
        if state.hardware_enabled && !enabled {
            // Turning the APIC off resets it; only a machine reset turns it
            // back on (this model lets the base MSR do it, as QEMU does).
            let id = state.id;
            let signals = std::mem::take(&mut state.signals);
            *state = LocalApicState::at_reset(id, false);
            state.signals = signals;
        }
        state.hardware_enabled = enabled;
        self.update(&state);
    }

    fn set_tsc_deadline(&self, clock_deadline: Option<u64>) {
        let mut state = self.state.lock_recover();
        if state.timer_mode() != TIMER_TSC_DEADLINE {
            return;
        }
        state.tsc_deadline = clock_deadline;
        let now = self.clock.now();
        state.run_timer(now);
        self.update(&state);
        drop(state);
        if let Some(bus) = self.bus.upgrade() {
            bus.control.notify_irq();
        }
    }

    fn tsc_deadline(&self) -> Option<u64> {
        self.state.lock_recover().tsc_deadline
    }
}
