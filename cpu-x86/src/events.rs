//! What happens between instructions: maskable interrupts from the machine's
//! interrupt controller (with the one-instruction shadow after STI and MOV
//! SS), single-step traps (RFLAGS.TF) and the debug registers' instruction
//! and data breakpoints.

use std::sync::Arc;

use emu_core::{CpuSignal, InterruptAcknowledge, LocalApicPort};

use crate::cpu::{Cpu, Fault, vector};
use crate::state::flags::{IF, RF, TF};
use crate::system::InterruptKind;

/// DR6 bits.
pub mod dr6 {
    /// Breakpoint 0–3 conditions met (bits 0–3).
    pub const B_MASK: u64 = 0xf;
    /// Single step.
    pub const BS: u64 = 1 << 14;
}

/// One enabled breakpoint of DR7: its address, length and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Breakpoint {
    index: usize,
    addr: u64,
    len: u64,
    /// 0: execution, 1: writes, 3: reads and writes (2, I/O, is not armed).
    kind: u8,
}

/// The breakpoints DR7 arms.
pub(crate) fn armed(dr: &[u64; 8]) -> Vec<Breakpoint> {
    let dr7 = dr[7];
    (0..4)
        .filter(|&i| dr7 & (3 << (2 * i)) != 0)
        .filter_map(|i| {
            let kind = ((dr7 >> (16 + 4 * i)) & 3) as u8;
            let len = match (dr7 >> (18 + 4 * i)) & 3 {
                0 => 1,
                1 => 2,
                2 => 8,
                _ => 4,
            };
            (kind != 2).then_some(Breakpoint {
                index: i,
                addr: dr[i] & !(len - 1),
                len,
                kind,
            })
        })
        .collect()
}

impl Cpu {
    /// Connects the interrupt controller whose pin this CPU samples between
    /// instructions (a PC's i8259 pair or local APIC).
    pub fn connect_interrupt_controller(&mut self, controller: Arc<dyn InterruptAcknowledge>) {
        self.interrupts = Some(controller);
    }

    /// Connects this CPU's local APIC, with the ID CPUID reports: the APIC
    /// is then the controller the CPU takes interrupts from, its register
    /// page appears at IA32_APIC_BASE for this CPU only, and it brings INIT,
    /// start-up IPIs and NMIs. A CPU that is not the bootstrap processor
    /// waits for a start-up IPI after every reset.
    pub fn connect_local_apic(&mut self, apic: Arc<dyn LocalApicPort>, id: u8, bootstrap: bool) {
        self.interrupts = Some(apic.clone());
        self.apic = Some(apic);
        self.apic_id = id;
        self.bootstrap = bootstrap;
        self.reset();
    }

    /// Whether the CPU waits for a start-up IPI (after INIT, or an
    /// application processor after reset).
    pub fn waiting_for_startup(&self) -> bool {
        self.waiting_for_startup
    }

    /// Whether an interrupt would be taken now: pending at the controller,
    /// IF set, no interrupt shadow; or an NMI or an APIC signal waits.
    pub fn interrupt_deliverable(&self) -> bool {
        if self.apic.as_ref().is_some_and(|apic| apic.signal_pending())
            || (self.nmi_pending && !self.nmi_blocked && !self.waiting_for_startup)
        {
            return true;
        }
        self.state.rflags & IF != 0
            && !self.interrupt_shadow
            && !self.waiting_for_startup
            && self
                .interrupts
                .as_ref()
                .is_some_and(|c| c.interrupt_pending())
    }

    /// The APIC register at physical `phys`, when it is in this CPU's APIC
    /// page and the APIC is enabled.
    #[inline]
    pub(crate) fn apic_register(&self, phys: u64) -> Option<u32> {
        let base = self.state.msr.apic_base;
        (self.apic.is_some()
            && base & crate::sysinsn::APIC_BASE_ENABLE != 0
            && (phys ^ base) & 0x000f_ffff_ffff_f000 == 0)
            .then_some((phys & 0xfff) as u32)
    }

    /// Reads the APIC's registers: each is 32 bits at a 16-byte boundary;
    /// narrower reads take part of one.
    pub(crate) fn read_apic(&self, offset: u32, len: u8) -> u64 {
        let Some(apic) = &self.apic else {
            return 0;
        };
        let value = u64::from(apic.read_register(offset & !0xf));
        let shift = 8 * (offset & 3);
        let value = value >> shift;
        match len {
            1 => value & 0xff,
            2 => value & 0xffff,
            4 => value,
            // A 64-bit read sees the register and the reserved dword after.
            _ => value & 0xffff_ffff,
        }
    }

    /// Writes an APIC register: only whole, aligned dword writes count.
    pub(crate) fn write_apic(&mut self, offset: u32, len: u8, value: u64) {
        if len >= 4
            && offset & 0xf == 0
            && let Some(apic) = &self.apic
        {
            apic.write_register(offset, value as u32);
        }
        // An IPI to this CPU or a changed priority shows at the next
        // boundary; a write may also have asked the machine to stop.
        self.note_device_stop();
    }

    /// Takes what the APIC signals: INIT resets the CPU (an application
    /// processor then waits), a start-up IPI starts a waiting CPU in real
    /// mode at `vector << 12`, an NMI is latched for delivery. Returns
    /// whether the CPU's state changed.
    fn take_signal(&mut self) -> bool {
        let Some(signal) = self.apic.as_ref().and_then(|apic| apic.take_signal()) else {
            return false;
        };
        match signal {
            CpuSignal::Init => {
                // INIT keeps the MSRs (the APIC base, MTRRs, PAT) and the
                // time-stamp counter; the rest is as after reset.
                let msr = self.state.msr.clone();
                let bootstrap = self.bootstrap;
                self.bootstrap = false;
                self.reset();
                self.bootstrap = bootstrap;
                if bootstrap {
                    // The bootstrap processor restarts at the reset vector.
                    self.waiting_for_startup = false;
                    self.halted = false;
                }
                self.state.msr = msr;
                !self.waiting_for_startup
            }
            CpuSignal::Startup { vector } if self.waiting_for_startup => {
                self.waiting_for_startup = false;
                self.halted = false;
                let cs = &mut self.state.segs[crate::state::SegReg::Cs as usize];
                cs.selector = u16::from(vector) << 8;
                cs.base = u64::from(vector) << 12;
                self.state.rip = 0;
                self.last_page = 0;
                true
            }
            // A start-up IPI to a running CPU is ignored.
            CpuSignal::Startup { .. } => false,
            CpuSignal::Nmi => {
                self.nmi_pending = true;
                false
            }
        }
    }

    /// Takes a pending external interrupt, if one may be taken: returns
    /// whether one was (it also ends a HLT).
    pub(crate) fn take_external_interrupt(&mut self) -> bool {
        // INIT and a start-up IPI often arrive together: take all waiting.
        while self.apic.as_ref().is_some_and(|apic| apic.signal_pending()) {
            if self.take_signal() {
                return true;
            }
        }
        if self.nmi_pending && !self.nmi_blocked && !self.waiting_for_startup {
            self.nmi_pending = false;
            self.nmi_blocked = true;
            self.deliver_external(vector::NMI);
            return true;
        }
        // Past the signals and the NMI, only a maskable interrupt makes this
        // true, and that already requires the CPU not to wait for a SIPI.
        if !self.interrupt_deliverable() {
            return false;
        }
        let Some(vector) = self.interrupts.as_ref().and_then(|c| c.acknowledge()) else {
            return false;
        };
        self.deliver_external(vector);
        true
    }

    /// Enters the handler of an external interrupt or NMI; a vector whose
    /// gate cannot be used raises #GP with the IDT error code (EXT set).
    fn deliver_external(&mut self, vector: u8) {
        self.wake();
        let ip = self.state.rip;
        if self
            .interrupt(vector, ip, None, InterruptKind::External)
            .is_err()
        {
            self.take_fault(Fault::gp(u32::from(vector) * 8 + 2 + 1));
        }
    }

    /// Re-reads DR7 after a write to a debug register.
    pub(crate) fn rearm_breakpoints(&mut self) {
        self.breakpoints = armed(&self.state.dr);
        self.update_data_watch();
    }

    /// Re-reads whether data accesses must be looked at.
    pub(crate) fn update_data_watch(&mut self) {
        self.watch_data = !self.breakpoints.is_empty() || self.gdb_watching;
    }

    /// An instruction breakpoint at `linear` (before the instruction runs),
    /// unless RFLAGS.RF suppresses it once.
    pub(crate) fn instruction_breakpoint(&mut self, linear: u64) -> Option<Fault> {
        if self.breakpoints.is_empty() || self.state.rflags & RF != 0 {
            return None;
        }
        let hits = self
            .breakpoints
            .iter()
            .filter(|b| b.kind == 0 && b.addr == linear)
            .fold(0, |m, b| m | (1u64 << b.index));
        if hits == 0 {
            return None;
        }
        self.state.dr[6] = (self.state.dr[6] & !dr6::B_MASK) | hits;
        Some(Fault {
            vector: vector::DB,
            error: None,
        })
    }

    /// Notes a data access to `[linear, linear + len)` for data breakpoints
    /// (they trap after the instruction) and a debugger's watchpoints.
    #[inline]
    pub(crate) fn watch_access(&mut self, linear: u64, len: u8, write: bool) {
        if self.watch_data {
            self.note_data_access(linear, len, write);
        }
    }

    fn note_data_access(&mut self, linear: u64, len: u8, write: bool) {
        if self.gdb_watching {
            self.debug_watch(linear, len, write);
        }
        let end = linear + u64::from(len);
        for b in &self.breakpoints {
            let wanted = match b.kind {
                1 => write,
                3 => true,
                _ => false,
            };
            if wanted && linear < b.addr + b.len && b.addr < end {
                self.data_hits |= 1 << b.index;
            }
        }
    }

    /// The traps an instruction that completed leaves: data breakpoints it
    /// hit and the single step; `single_step` says whether TF was set when it
    /// began.
    pub(crate) fn debug_traps(&mut self, single_step: bool) {
        let hits = std::mem::take(&mut self.data_hits);
        if hits == 0 && !single_step {
            return;
        }
        let mut status = self.state.dr[6] & !dr6::B_MASK;
        status |= hits;
        if single_step {
            status |= dr6::BS;
        }
        self.state.dr[6] = status;
        let ip = self.state.rip;
        if self
            .interrupt(vector::DB, ip, None, InterruptKind::Exception)
            .is_err()
        {
            self.take_fault(Fault::gp(0));
        }
    }

    /// Whether TF asks for a trap after the instruction about to run.
    pub(crate) fn single_stepping(&self) -> bool {
        self.state.rflags & TF != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr7_arms_the_enabled_breakpoints() {
        let mut dr = [0u64; 8];
        dr[0] = 0x1000;
        dr[1] = 0x2003;
        // DR0: local enable, execute; DR1: global enable, write, 4 bytes.
        dr[7] = 0b01 | (0b10 << 2) | (0b01 << 20) | (0b11 << 22);
        let armed = armed(&dr);
        assert_eq!(armed.len(), 2);
        assert_eq!((armed[0].addr, armed[0].kind, armed[0].len), (0x1000, 0, 1));
        assert_eq!((armed[1].addr, armed[1].kind, armed[1].len), (0x2000, 1, 4));
        dr[7] = 0;
        assert!(super::armed(&dr).is_empty());
    }
}
