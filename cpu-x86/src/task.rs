//! Hardware task switches (32-bit TSS): JMP and CALL to a TSS or a task gate,
//! interrupts through task gates, and IRET with NT set back to the previous
//! task. The outgoing task's registers go into its TSS, the incoming task's
//! come from its own, busy bits and the back link say who is nested in whom.

use crate::cpu::{Cpu, Fault};
use crate::mmu::Access;
use crate::state::{SegReg, cr0, flags};
use crate::system::Descriptor;

/// Why the switch happens: it decides busy bits, NT and the back link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskSwitch {
    /// JMP: the old task is no longer busy.
    Jump,
    /// CALL or an interrupt: the new task is nested in the old one.
    Call,
    /// IRET with NT: back to the task in the back link.
    Return,
}

/// 32-bit TSS field offsets.
mod tss {
    pub const LINK: u64 = 0;
    pub const CR3: u64 = 28;
    pub const EIP: u64 = 32;
    pub const EFLAGS: u64 = 36;
    pub const GPR: u64 = 40;
    pub const SEG: u64 = 72;
    pub const LDT: u64 = 96;
    /// The smallest limit a 32-bit TSS may have.
    pub const MIN_LIMIT: u32 = 0x67;
}

const TSS_AVAILABLE: u8 = 0x9;
const TSS_BUSY: u8 = 0xb;

fn ts(selector: u16) -> Fault {
    Fault {
        vector: crate::cpu::vector::TS,
        error: Some(u32::from(selector & !3)),
    }
}

impl Cpu {
    /// Sets or clears the busy bit of the TSS descriptor for `selector`.
    fn set_busy(&mut self, selector: u16, busy: bool) -> Result<(), Fault> {
        let at = self.state.gdtr.base + u64::from(selector & !7) + 5;
        let access = self.read_linear(at, 1, Access::SystemRead)?;
        let access = if busy { access | 2 } else { access & !2 };
        self.write_linear(at, 1, access, Access::SystemWrite)
    }

    /// Switches to the task whose TSS descriptor is `selector` (from the
    /// GDT); `return_ip` is where the outgoing task resumes.
    pub(crate) fn switch_task(
        &mut self,
        selector: u16,
        reason: TaskSwitch,
        return_ip: u64,
    ) -> Result<(), Fault> {
        if selector & 4 != 0 || selector & !3 == 0 {
            return Err(Fault::gp(u32::from(selector & !3)));
        }
        let d: Descriptor = self.read_descriptor(selector)?;
        let wanted = if reason == TaskSwitch::Return {
            TSS_BUSY
        } else {
            TSS_AVAILABLE
        };
        if !d.is_system_of(wanted) {
            return Err(if reason == TaskSwitch::Return {
                ts(selector)
            } else {
                Fault::gp(u32::from(selector & !3))
            });
        }
        if !d.present() {
            return Err(Fault {
                vector: crate::cpu::vector::NP,
                error: Some(u32::from(selector & !3)),
            });
        }
        let new = d.segment(selector);
        if new.limit < tss::MIN_LIMIT {
            return Err(ts(selector));
        }
        // Save the outgoing task.
        let old = self.state.tr;
        if old.limit < tss::MIN_LIMIT {
            return Err(ts(old.selector));
        }
        let mut saved_flags = self.state.rflags;
        if reason == TaskSwitch::Return {
            saved_flags &= !flags::NT;
        }
        let w = |cpu: &mut Cpu, off: u64, len: u8, v: u64| {
            cpu.write_linear(old.base + off, len, v, Access::SystemWrite)
        };
        w(self, tss::EIP, 4, return_ip)?;
        w(self, tss::EFLAGS, 4, saved_flags)?;
        for r in 0..8 {
            w(self, tss::GPR + 4 * r as u64, 4, self.state.gpr[r])?;
        }
        for seg in SegReg::ALL {
            let v = u64::from(self.state.seg(seg).selector);
            w(self, tss::SEG + 4 * seg as u64, 2, v)?;
        }
        if reason != TaskSwitch::Call {
            self.set_busy(old.selector, false)?;
        }
        if reason == TaskSwitch::Call {
            self.write_linear(
                new.base + tss::LINK,
                2,
                u64::from(old.selector),
                Access::SystemWrite,
            )?;
        }
        if reason != TaskSwitch::Return {
            self.set_busy(selector, true)?;
        }
        // Read the incoming task.
        let r = |cpu: &mut Cpu, off: u64, len: u8| {
            cpu.read_linear(new.base + off, len, Access::SystemRead)
        };
        let cr3 = r(self, tss::CR3, 4)?;
        let eip = r(self, tss::EIP, 4)?;
        let mut eflags = r(self, tss::EFLAGS, 4)?;
        let mut regs = [0u64; 8];
        for (k, v) in regs.iter_mut().enumerate() {
            *v = r(self, tss::GPR + 4 * k as u64, 4)?;
        }
        let mut selectors = [0u16; 6];
        for (k, v) in selectors.iter_mut().enumerate() {
            *v = r(self, tss::SEG + 4 * k as u64, 2)? as u16;
        }
        let ldt = r(self, tss::LDT, 2)? as u16;
        // From here the switch has happened: faults belong to the new task.
        let mut tr = new;
        tr.attrs |= 2;
        self.state.tr = tr;
        self.state.cr0 |= cr0::TS;
        if self.state.cr0 & cr0::PG != 0 {
            self.write_control_register(3, cr3)?;
        } else {
            self.state.cr3 = cr3;
        }
        if reason == TaskSwitch::Call {
            eflags |= flags::NT;
        }
        self.state.rflags = (eflags & 0x003f_7fd7) | flags::FIXED1;
        for (k, v) in regs.iter().enumerate() {
            self.state.gpr[k] = *v & 0xffff_ffff;
        }
        self.next_ip = eip & 0xffff_ffff;
        self.state.rip = self.next_ip;
        self.load_ldt(ldt).map_err(|_| ts(ldt))?;
        if self.state.rflags & flags::VM != 0 {
            for (k, seg) in SegReg::ALL.iter().enumerate() {
                self.state.load_real_segment(*seg, selectors[k]);
            }
            return Ok(());
        }
        // CS first: it sets the privilege the others are checked against.
        self.load_task_code_segment(selectors[SegReg::Cs as usize])?;
        for seg in [SegReg::Ss, SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let sel = selectors[seg as usize];
            self.load_segment(seg, sel).map_err(|_| ts(sel))?;
        }
        Ok(())
    }

    fn load_task_code_segment(&mut self, selector: u16) -> Result<(), Fault> {
        if selector & !3 == 0 {
            return Err(ts(selector));
        }
        let d = self.read_descriptor(selector).map_err(|_| ts(selector))?;
        if !d.is_code() || !d.present() {
            return Err(ts(selector));
        }
        let mut cs = d.segment(selector);
        cs.attrs |= crate::state::attrs::ACCESSED;
        self.state.segs[SegReg::Cs as usize] = cs;
        Ok(())
    }

    /// IRET with NT set: back to the task in the current TSS's back link.
    pub(crate) fn return_from_task(&mut self) -> Result<(), Fault> {
        let link = self.read_linear(self.state.tr.base + tss::LINK, 2, Access::SystemRead)? as u16;
        self.switch_task(link, TaskSwitch::Return, self.next_ip)
    }
}
