//! Hardware task switches (32-bit and the 286's 16-bit TSS): JMP and CALL to
//! a TSS or a task gate, interrupts through task gates, and IRET with NT set
//! back to the previous task. The outgoing task's registers go into its TSS
//! (in its own format), the incoming task's come from its own, busy bits and
//! the back link say who is nested in whom.

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

/// Where a TSS format keeps the task's state.
#[derive(Clone, Copy)]
struct Layout {
    /// Register width in the TSS (2 or 4 bytes), and the stride between
    /// segment selectors.
    width: u8,
    cr3: Option<u64>,
    ip: u64,
    flags: u64,
    gpr: u64,
    seg: u64,
    /// How many segment registers it holds (ES, CS, SS, DS, and FS, GS).
    segs: usize,
    ldt: u64,
    /// The smallest limit a TSS of the format may have.
    min_limit: u32,
}

const TSS32: Layout = Layout {
    width: 4,
    cr3: Some(28),
    ip: 32,
    flags: 36,
    gpr: 40,
    seg: 72,
    segs: 6,
    ldt: 96,
    min_limit: 0x67,
};

const TSS16: Layout = Layout {
    width: 2,
    cr3: None,
    ip: 14,
    flags: 16,
    gpr: 18,
    seg: 34,
    segs: 4,
    ldt: 42,
    min_limit: 0x2b,
};

/// The back link's offset, the same in both formats.
const LINK: u64 = 0;

const TSS16_AVAILABLE: u8 = 0x1;
const TSS16_BUSY: u8 = 0x3;
const TSS_AVAILABLE: u8 = 0x9;
const TSS_BUSY: u8 = 0xb;

/// The layout of a TSS descriptor type.
fn layout_of(kind: u8) -> Layout {
    if kind & 8 != 0 { TSS32 } else { TSS16 }
}

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
            [TSS_BUSY, TSS16_BUSY]
        } else {
            [TSS_AVAILABLE, TSS16_AVAILABLE]
        };
        if !wanted.iter().any(|&t| d.is_system_of(t)) {
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
        let incoming = layout_of(d.kind());
        if new.limit < incoming.min_limit {
            return Err(ts(selector));
        }
        // Save the outgoing task, in its TSS's own format.
        let old = self.state.tr;
        let outgoing = layout_of((old.attrs & 0xf) as u8);
        if old.limit < outgoing.min_limit {
            return Err(ts(old.selector));
        }
        let mut saved_flags = self.state.rflags;
        if reason == TaskSwitch::Return {
            saved_flags &= !flags::NT;
        }
        let w = |cpu: &mut Cpu, off: u64, len: u8, v: u64| {
            cpu.write_linear(old.base + off, len, v, Access::SystemWrite)
        };
        let width = outgoing.width;
        w(self, outgoing.ip, width, return_ip)?;
        w(self, outgoing.flags, width, saved_flags)?;
        for r in 0..8 {
            let at = outgoing.gpr + u64::from(width) * r as u64;
            w(self, at, width, self.state.gpr[r])?;
        }
        for seg in SegReg::ALL.into_iter().take(outgoing.segs) {
            let v = u64::from(self.state.seg(seg).selector);
            w(self, outgoing.seg + u64::from(width) * seg as u64, 2, v)?;
        }
        if reason != TaskSwitch::Call {
            self.set_busy(old.selector, false)?;
        }
        if reason == TaskSwitch::Call {
            self.write_linear(
                new.base + LINK,
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
        let width = incoming.width;
        let cr3 = match incoming.cr3 {
            Some(at) => Some(r(self, at, 4)?),
            None => None,
        };
        let eip = r(self, incoming.ip, width)?;
        let mut eflags = r(self, incoming.flags, width)?;
        // A 16-bit TSS fills the low halves; the high halves read as ones,
        // as QEMU has them.
        let high = if width == 2 { 0xffff_0000 } else { 0 };
        let mut regs = [0u64; 8];
        for (k, v) in regs.iter_mut().enumerate() {
            *v = r(self, incoming.gpr + u64::from(width) * k as u64, width)? | high;
        }
        // FS and GS, which a 16-bit TSS does not hold, become null.
        let mut selectors = [0u16; 6];
        for (k, v) in selectors.iter_mut().enumerate().take(incoming.segs) {
            *v = r(self, incoming.seg + u64::from(width) * k as u64, 2)? as u16;
        }
        let ldt = r(self, incoming.ldt, 2)? as u16;
        // From here the switch has happened: faults belong to the new task.
        let mut tr = new;
        tr.attrs |= 2;
        self.state.tr = tr;
        self.state.cr0 |= cr0::TS;
        match cr3 {
            Some(cr3) if self.state.cr0 & cr0::PG != 0 => self.write_control_register(3, cr3)?,
            Some(cr3) => self.state.cr3 = cr3,
            None => {}
        }
        if reason == TaskSwitch::Call {
            eflags |= flags::NT;
        }
        let kept = if width == 2 { 0x7fd7 } else { 0x003f_7fd7 };
        self.state.rflags = (eflags & kept) | flags::FIXED1;
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
        let link = self.read_linear(self.state.tr.base + LINK, 2, Access::SystemRead)? as u16;
        self.switch_task(link, TaskSwitch::Return, self.next_ip)
    }
}
