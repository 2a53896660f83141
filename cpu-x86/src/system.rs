//! Protected mode: descriptors, segment loads and their checks, far
//! transfers, interrupt and exception delivery (real, protected and long
//! mode, with stack switches through the TSS), IRET, and the checks every
//! memory access makes against its segment.

use crate::cpu::{Cpu, Fault, canonical, vector};
use crate::flags::mask;
use crate::mmu::Access;
use crate::model::Generation;
use crate::state::{SegReg, Segment, attrs, flags, gpr};
use crate::task::TaskSwitch;

/// How an interrupt came about: it decides the gate privilege check and the
/// EXT bit of error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptKind {
    /// An exception an instruction raised.
    Exception,
    /// INT n, INT3, INTO: the gate's DPL must admit the program.
    Software,
    /// A device's interrupt.
    External,
}

/// An 8-byte segment or gate descriptor (with the upper half of a 16-byte
/// long-mode system descriptor when there is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Descriptor {
    low: u64,
    high: u64,
}

/// System descriptor types.
mod kind {
    pub const LDT: u8 = 0x2;
    pub const TSS16_AVAILABLE: u8 = 0x1;
    pub const TSS16_BUSY: u8 = 0x3;
    pub const CALL_GATE16: u8 = 0x4;
    pub const TASK_GATE: u8 = 0x5;
    pub const INTERRUPT_GATE16: u8 = 0x6;
    pub const TRAP_GATE16: u8 = 0x7;
    pub const TSS_AVAILABLE: u8 = 0x9;
    pub const TSS_BUSY: u8 = 0xb;
    pub const CALL_GATE: u8 = 0xc;
    pub const INTERRUPT_GATE: u8 = 0xe;
    pub const TRAP_GATE: u8 = 0xf;
}

impl Descriptor {
    /// A code or data descriptor from its 8 bytes.
    pub(crate) fn from_low(low: u64) -> Descriptor {
        Descriptor { low, high: 0 }
    }

    fn access(&self) -> u16 {
        ((self.low >> 40) & 0xff) as u16
    }

    /// The attributes as [`Segment::attrs`] keeps them.
    fn attrs(&self) -> u16 {
        self.access() | ((((self.low >> 52) & 0xf) as u16) << 12)
    }

    pub(crate) fn dpl(&self) -> u8 {
        ((self.access() >> 5) & 3) as u8
    }

    pub(crate) fn present(&self) -> bool {
        self.access() & attrs::P != 0
    }

    pub(crate) fn is_system(&self) -> bool {
        self.access() & attrs::S == 0
    }

    pub(crate) fn kind(&self) -> u8 {
        (self.access() & 0xf) as u8
    }

    pub(crate) fn is_code(&self) -> bool {
        !self.is_system() && self.access() & attrs::CODE != 0
    }

    fn is_data(&self) -> bool {
        !self.is_system() && self.access() & attrs::CODE == 0
    }

    pub(crate) fn conforming(&self) -> bool {
        self.is_code() && self.access() & attrs::DC != 0
    }

    pub(crate) fn readable(&self) -> bool {
        self.is_data() || self.access() & attrs::RW != 0
    }

    pub(crate) fn writable(&self) -> bool {
        self.is_data() && self.access() & attrs::RW != 0
    }

    fn base(&self) -> u64 {
        let base = ((self.low >> 16) & 0xff_ffff) | (((self.low >> 56) & 0xff) << 24);
        if self.is_system() {
            base | ((self.high & 0xffff_ffff) << 32)
        } else {
            base
        }
    }

    fn limit(&self) -> u32 {
        let raw = ((self.low & 0xffff) | (((self.low >> 48) & 0xf) << 16)) as u32;
        if self.attrs() & attrs::G != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }

    /// The segment-register image of this descriptor under `selector`.
    pub(crate) fn segment(&self, selector: u16) -> Segment {
        Segment {
            selector,
            attrs: self.attrs(),
            limit: self.limit(),
            base: self.base(),
        }
    }

    /// Whether this is a present-or-not system descriptor of type `t`.
    pub(crate) fn is_system_of(&self, t: u8) -> bool {
        self.is_system() && self.kind() == t
    }

    /// Whether LAR (`lar`) or LSL accept this system descriptor type.
    pub(crate) fn system_kind_in(&self, long: bool, lar: bool) -> bool {
        if !self.is_system() {
            return false;
        }
        let t = self.kind();
        if long {
            matches!(t, kind::LDT | kind::TSS_AVAILABLE | kind::TSS_BUSY)
                || (lar && t == kind::CALL_GATE)
        } else {
            matches!(
                t,
                kind::TSS16_AVAILABLE
                    | kind::LDT
                    | kind::TSS16_BUSY
                    | kind::TSS_AVAILABLE
                    | kind::TSS_BUSY
            ) || (lar && matches!(t, kind::CALL_GATE16 | kind::TASK_GATE | kind::CALL_GATE))
        }
    }

    /// What LAR loads: the second dword's access byte and flags.
    pub(crate) fn access_rights(&self) -> u64 {
        (self.low >> 32) & 0x00f0_ff00
    }

    /// What LSL loads: the limit in bytes.
    pub(crate) fn byte_limit(&self) -> u32 {
        self.limit()
    }

    fn gate_selector(&self) -> u16 {
        ((self.low >> 16) & 0xffff) as u16
    }

    fn gate_offset(&self, long: bool) -> u64 {
        let offset = (self.low & 0xffff) | (((self.low >> 48) & 0xffff) << 16);
        if long {
            offset | ((self.high & 0xffff_ffff) << 32)
        } else {
            offset
        }
    }

    fn gate_ist(&self) -> u8 {
        ((self.low >> 32) & 7) as u8
    }

    fn gate_parameters(&self) -> u64 {
        (self.low >> 32) & 0x1f
    }
}

fn selector_error(selector: u16) -> u32 {
    u32::from(selector & !3)
}

fn np(code: u32) -> Fault {
    Fault {
        vector: vector::NP,
        error: Some(code),
    }
}

fn ts(code: u32) -> Fault {
    Fault {
        vector: vector::TS,
        error: Some(code),
    }
}

impl Cpu {
    /// Whether the CPU is in virtual-8086 mode.
    #[inline]
    pub fn v86(&self) -> bool {
        !self.real_mode() && self.state.rflags & flags::VM != 0
    }

    /// The current privilege level.
    #[inline]
    pub fn cpl(&self) -> u8 {
        if self.real_mode() {
            0
        } else if self.state.rflags & flags::VM != 0 {
            3
        } else {
            (self.state.seg(SegReg::Cs).selector & 3) as u8
        }
    }

    /// Checks an access of `len` bytes at `offset` in `seg` against the
    /// segment (type, limit) and gives its linear address.
    pub(crate) fn linear(
        &self,
        seg: SegReg,
        offset: u64,
        len: u8,
        access: Access,
    ) -> Result<u64, Fault> {
        let s = self.state.seg(seg);
        let stack = seg == SegReg::Ss;
        let fault = || if stack { Fault::ss(0) } else { Fault::gp(0) };
        if self.code_bits() == 64 {
            // No limits in 64-bit code, and only FS and GS have bases; the
            // access must stay canonical.
            let base = if matches!(seg, SegReg::Fs | SegReg::Gs) {
                s.base
            } else {
                0
            };
            let linear = base.wrapping_add(offset);
            let last = linear.wrapping_add(u64::from(len) - 1);
            if !canonical(linear) || !canonical(last) {
                return Err(fault());
            }
            return Ok(linear);
        }
        let last = offset.wrapping_add(u64::from(len) - 1);
        if self.real_mode() || self.v86() {
            if last < offset || last > u64::from(s.limit) {
                // The 286 reports every real-mode segment overrun as #GP.
                let i286 = self.model().generation == Generation::I286;
                return Err(if stack && !i286 {
                    Fault::ss(0)
                } else {
                    Fault::gp(0)
                });
            }
            return Ok(self.wrap_linear(s.base.wrapping_add(offset)));
        }
        if s.attrs & attrs::P == 0 {
            return Err(fault());
        }
        let code = s.attrs & attrs::CODE != 0;
        match access {
            Access::Write | Access::SystemWrite if code || s.attrs & attrs::RW == 0 => {
                return Err(fault());
            }
            Access::Read | Access::SystemRead if code && s.attrs & attrs::RW == 0 => {
                return Err(fault());
            }
            _ => {}
        }
        let expand_down = !code && s.attrs & attrs::DC != 0;
        let inside = if expand_down {
            let upper = if s.attrs & attrs::DB != 0 {
                0xffff_ffff
            } else {
                0xffff
            };
            offset > u64::from(s.limit) && last <= upper && last >= offset
        } else {
            last >= offset && last <= u64::from(s.limit)
        };
        if !inside {
            return Err(fault());
        }
        Ok(self.wrap_linear(s.base.wrapping_add(offset)))
    }

    /// The linear address of `selector`'s descriptor, checked against its
    /// table's limit.
    fn descriptor_address(&self, selector: u16, size: u64) -> Result<u64, Fault> {
        let index = u64::from(selector & !7);
        let (base, limit) = if selector & 4 != 0 {
            let ldt = &self.state.ldtr;
            if ldt.attrs & attrs::P == 0 {
                return Err(Fault::gp(selector_error(selector)));
            }
            (ldt.base, u64::from(ldt.limit))
        } else {
            (self.state.gdtr.base, u64::from(self.state.gdtr.limit))
        };
        if index + size - 1 > limit {
            return Err(Fault::gp(selector_error(selector)));
        }
        Ok(base.wrapping_add(index))
    }

    /// Reads `selector`'s descriptor (16 bytes for system descriptors in long
    /// mode).
    pub(crate) fn read_descriptor(&mut self, selector: u16) -> Result<Descriptor, Fault> {
        let at = self.descriptor_address(selector, 8)?;
        let low = self.read_linear(at, 8, Access::SystemRead)?;
        let mut d = Descriptor { low, high: 0 };
        if d.is_system() && self.long_mode() {
            let at = self.descriptor_address(selector, 16)?;
            d.high = self.read_linear(at + 8, 8, Access::SystemRead)?;
        }
        Ok(d)
    }

    /// Sets the accessed bit of a code or data descriptor.
    fn mark_accessed(&mut self, selector: u16, d: &Descriptor) -> Result<(), Fault> {
        if d.access() & attrs::ACCESSED == 0 {
            let at = self.descriptor_address(selector, 8)? + 5;
            self.write_linear(
                at,
                1,
                u64::from(d.access() | attrs::ACCESSED),
                Access::SystemWrite,
            )?;
        }
        Ok(())
    }

    /// Loads segment register `seg` with `selector` as the current mode does
    /// (MOV, POP, LDS and friends).
    pub(crate) fn load_segment(&mut self, seg: SegReg, selector: u16) -> Result<(), Fault> {
        if self.real_mode() {
            self.state.load_real_segment(seg, selector);
            return Ok(());
        }
        if self.v86() {
            self.load_v86_segment(seg, selector);
            return Ok(());
        }
        let cpl = self.cpl();
        let rpl = (selector & 3) as u8;
        if selector & !3 == 0 {
            let null_stack_ok = self.code_bits() == 64 && cpl != 3 && rpl == cpl;
            if seg == SegReg::Ss && !null_stack_ok {
                return Err(Fault::gp(0));
            }
            // A null selector makes the segment unusable (64-bit code keeps
            // using its base, which is zero here).
            let s = &mut self.state.segs[seg as usize];
            s.selector = selector;
            s.attrs = 0;
            if seg != SegReg::Fs && seg != SegReg::Gs {
                s.base = 0;
            }
            s.limit = 0;
            return Ok(());
        }
        let d = self.read_descriptor(selector)?;
        let error = selector_error(selector);
        if seg == SegReg::Ss {
            if rpl != cpl || d.dpl() != cpl || !d.writable() {
                return Err(Fault::gp(error));
            }
            if !d.present() {
                return Err(Fault::ss(error));
            }
        } else {
            if d.is_system() || !d.readable() {
                return Err(Fault::gp(error));
            }
            if !d.conforming() && (rpl > d.dpl() || cpl > d.dpl()) {
                return Err(Fault::gp(error));
            }
            if !d.present() {
                return Err(np(error));
            }
        }
        self.mark_accessed(selector, &d)?;
        let mut segment = d.segment(selector);
        segment.attrs |= attrs::ACCESSED;
        self.state.segs[seg as usize] = segment;
        Ok(())
    }

    /// CS:IP for a far transfer in real or virtual-8086 mode.
    fn real_mode_far_jump(&mut self, selector: u16, offset: u64, size: u8) {
        if self.v86() {
            self.load_v86_segment(SegReg::Cs, selector);
        } else {
            self.state.load_real_segment(SegReg::Cs, selector);
        }
        self.next_ip = offset & mask(size);
    }

    /// A virtual-8086 segment: real-mode addressing with privilege 3.
    fn load_v86_segment(&mut self, seg: SegReg, selector: u16) {
        let dpl3 = 3 << attrs::DPL_SHIFT;
        self.state.segs[seg as usize] = Segment {
            selector,
            attrs: if seg == SegReg::Cs {
                attrs::REAL_CODE | dpl3
            } else {
                attrs::REAL_DATA | dpl3
            },
            limit: 0xffff,
            base: u64::from(selector) << 4,
        };
    }

    /// Reads the stack pointer for privilege `level` from the TSS (for a
    /// 64-bit TSS, `ist` picks an interrupt stack instead).
    fn tss_stack(&mut self, level: u8, ist: u8) -> Result<(u16, u64), Fault> {
        let tr = self.state.tr;
        let tss_error = selector_error(tr.selector);
        if self.long_mode() {
            let offset = if ist != 0 {
                36 + 8 * u64::from(ist - 1)
            } else {
                4 + 8 * u64::from(level)
            };
            if offset + 7 > u64::from(tr.limit) {
                return Err(ts(tss_error));
            }
            let rsp = self.read_linear(tr.base + offset, 8, Access::SystemRead)?;
            return Ok((u16::from(level), rsp));
        }
        let is32 = matches!((tr.attrs & 0xf) as u8, kind::TSS_AVAILABLE | kind::TSS_BUSY);
        let (sp_at, ss_at, width) = if is32 {
            (4 + 8 * u64::from(level), 8 + 8 * u64::from(level), 4)
        } else {
            (2 + 4 * u64::from(level), 4 + 4 * u64::from(level), 2)
        };
        if ss_at + 1 > u64::from(tr.limit) {
            return Err(ts(tss_error));
        }
        let sp = self.read_linear(tr.base + sp_at, width, Access::SystemRead)?;
        let ss = self.read_linear(tr.base + ss_at, 2, Access::SystemRead)? as u16;
        Ok((ss, sp))
    }

    /// Checks and reads the stack segment a privilege change switches to.
    fn inner_stack_segment(&mut self, ss: u16, level: u8) -> Result<Segment, Fault> {
        let error = selector_error(ss);
        if ss & !3 == 0 {
            return Err(ts(error));
        }
        let d = self.read_descriptor(ss)?;
        if (ss & 3) as u8 != level || d.dpl() != level || !d.writable() {
            return Err(ts(error));
        }
        if !d.present() {
            return Err(Fault::ss(error));
        }
        self.mark_accessed(ss, &d)?;
        Ok(d.segment(ss))
    }

    /// Pushes onto a stack given by its segment and pointer (a stack not yet
    /// loaded), with supervisor rights.
    fn push_to(
        &mut self,
        ss: &Segment,
        sp: &mut u64,
        width: u8,
        value: u64,
        len: u8,
    ) -> Result<(), Fault> {
        *sp = sp.wrapping_sub(u64::from(len)) & mask(width);
        let linear = if width == 8 {
            *sp
        } else {
            if *sp + u64::from(len) - 1 > u64::from(ss.limit) && ss.attrs & attrs::DC == 0 {
                return Err(Fault::ss(0));
            }
            (ss.base.wrapping_add(*sp)) & 0xffff_ffff
        };
        self.write_linear(linear, len, value, Access::SystemWrite)
    }

    /// Delivers interrupt or exception `vector`, returning to `return_ip`,
    /// pushing `error` when the exception has an error code.
    pub(crate) fn interrupt(
        &mut self,
        vector: u8,
        return_ip: u64,
        error: Option<u32>,
        kind: InterruptKind,
    ) -> Result<(), Fault> {
        if self.real_mode() {
            return self.real_mode_interrupt(vector, return_ip);
        }
        let ext = u32::from(kind == InterruptKind::External);
        let idt_error = u32::from(vector) * 8 + 2 + ext;
        let long = self.long_mode();
        let entry_size = if long { 16 } else { 8 };
        let at = u64::from(vector) * entry_size;
        if at + entry_size - 1 > u64::from(self.state.idtr.limit) {
            return Err(Fault::gp(idt_error));
        }
        let base = self.state.idtr.base.wrapping_add(at);
        let low = self.read_linear(base, 8, Access::SystemRead)?;
        let high = if long {
            self.read_linear(base + 8, 8, Access::SystemRead)?
        } else {
            0
        };
        let gate = Descriptor { low, high };
        let gate_kind = gate.kind();
        let valid = if long {
            matches!(gate_kind, kind::INTERRUPT_GATE | kind::TRAP_GATE)
        } else {
            matches!(
                gate_kind,
                kind::INTERRUPT_GATE
                    | kind::TRAP_GATE
                    | kind::INTERRUPT_GATE16
                    | kind::TRAP_GATE16
                    | kind::TASK_GATE
            )
        };
        if !gate.is_system() || !valid {
            return Err(Fault::gp(idt_error));
        }
        let cpl = self.cpl();
        if kind == InterruptKind::Software && gate.dpl() < cpl {
            return Err(Fault::gp(idt_error));
        }
        if !gate.present() {
            return Err(np(idt_error));
        }
        if gate_kind == kind::TASK_GATE {
            self.switch_task(gate.gate_selector(), TaskSwitch::Call, return_ip)?;
            if let Some(code) = error {
                self.push(u64::from(code), self.stack_size())?;
            }
            return Ok(());
        }
        let selector = gate.gate_selector();
        if selector & !3 == 0 {
            return Err(Fault::gp(ext));
        }
        let target = self.read_descriptor(selector)?;
        let target_error = selector_error(selector) + ext;
        if !target.is_code() || target.dpl() > cpl {
            return Err(Fault::gp(target_error));
        }
        if !target.present() {
            return Err(np(target_error));
        }
        if long && target.attrs() & attrs::L == 0 {
            return Err(Fault::gp(target_error));
        }
        let new_cpl = if target.conforming() {
            cpl
        } else {
            target.dpl()
        };
        let from_v86 = self.v86();
        if from_v86 && new_cpl != 0 {
            return Err(Fault::gp(target_error));
        }
        let trap = matches!(gate_kind, kind::TRAP_GATE | kind::TRAP_GATE16);
        let width: u8 = if long {
            8
        } else if matches!(gate_kind, kind::INTERRUPT_GATE | kind::TRAP_GATE) {
            4
        } else {
            2
        };
        let offset = gate.gate_offset(long);
        let old_flags = self.state.rflags;
        let old_cs = self.state.seg(SegReg::Cs).selector;
        let old_ss = *self.state.seg(SegReg::Ss);
        let old_sp = self.state.gpr[gpr::SP];
        let ist = if long { gate.gate_ist() } else { 0 };
        let switch = new_cpl < cpl || ist != 0;
        let (ss, mut sp, stack_width) = if long {
            let sp = if switch {
                self.tss_stack(new_cpl, ist)?.1
            } else {
                old_sp
            };
            let ss = if new_cpl < cpl {
                Segment {
                    selector: u16::from(new_cpl),
                    attrs: 0,
                    limit: 0,
                    base: 0,
                }
            } else {
                old_ss
            };
            (ss, sp & !0xf, 8)
        } else if new_cpl < cpl {
            let (ss_selector, sp) = self.tss_stack(new_cpl, 0)?;
            let ss = self.inner_stack_segment(ss_selector, new_cpl)?;
            let width = if ss.attrs & attrs::DB != 0 { 4 } else { 2 };
            (ss, sp & mask(width), width)
        } else {
            (old_ss, old_sp & mask(self.stack_size()), self.stack_size())
        };
        let push_stack = long || new_cpl < cpl;
        if from_v86 {
            for seg in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                let v = u64::from(self.state.seg(seg).selector);
                self.push_to(&ss, &mut sp, stack_width, v, width)?;
            }
        }
        if push_stack {
            self.push_to(&ss, &mut sp, stack_width, u64::from(old_ss.selector), width)?;
            self.push_to(&ss, &mut sp, stack_width, old_sp, width)?;
        }
        self.push_to(&ss, &mut sp, stack_width, old_flags & mask(width), width)?;
        self.push_to(&ss, &mut sp, stack_width, u64::from(old_cs), width)?;
        self.push_to(&ss, &mut sp, stack_width, return_ip, width)?;
        if let Some(code) = error {
            self.push_to(&ss, &mut sp, stack_width, u64::from(code), width)?;
        }
        // Commit.
        if from_v86 {
            for seg in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                self.state.segs[seg as usize] = Segment::default();
            }
        }
        self.state.segs[SegReg::Ss as usize] = ss;
        self.set_gpr(gpr::SP, stack_width.max(if long { 8 } else { 2 }), sp);
        if !long && stack_width == 2 {
            self.set_gpr(gpr::SP, 2, sp);
        }
        self.mark_accessed(selector, &target)?;
        let mut cs = target.segment((selector & !3) | u16::from(new_cpl));
        cs.attrs |= attrs::ACCESSED;
        self.state.segs[SegReg::Cs as usize] = cs;
        let mut cleared = flags::TF | flags::NT | flags::RF | flags::VM;
        if !trap {
            cleared |= flags::IF;
        }
        self.state.rflags &= !cleared;
        self.state.rip = offset;
        self.next_ip = offset;
        Ok(())
    }

    fn real_mode_interrupt(&mut self, vector: u8, return_ip: u64) -> Result<(), Fault> {
        let entry = u64::from(vector) * 4;
        if entry + 3 > u64::from(self.state.idtr.limit) {
            return Err(Fault::gp(u32::from(vector) * 8 + 2));
        }
        let base = self.state.idtr.base.wrapping_add(entry);
        let offset = self.read_linear(self.wrap_linear(base), 2, Access::SystemRead)?;
        let selector = self.read_linear(self.wrap_linear(base + 2), 2, Access::SystemRead)? as u16;
        let flags_image = self.state.rflags & 0xffff;
        let cs = self.state.seg(SegReg::Cs).selector;
        self.push(flags_image, 2)?;
        self.push(u64::from(cs), 2)?;
        self.push(return_ip & 0xffff, 2)?;
        self.state.rflags &= !(flags::IF | flags::TF | flags::AC);
        self.state.load_real_segment(SegReg::Cs, selector);
        self.state.rip = offset;
        self.next_ip = offset;
        Ok(())
    }

    /// Checks a code segment descriptor a far JMP or CALL goes to directly.
    fn direct_code_target(&mut self, selector: u16, d: &Descriptor) -> Result<(), Fault> {
        let cpl = self.cpl();
        let rpl = (selector & 3) as u8;
        let error = selector_error(selector);
        let ok = if d.conforming() {
            d.dpl() <= cpl
        } else {
            rpl <= cpl && d.dpl() == cpl
        };
        if !ok {
            return Err(Fault::gp(error));
        }
        if !d.present() {
            return Err(np(error));
        }
        Ok(())
    }

    /// Loads CS for a transfer within the same privilege level.
    fn set_code_segment(&mut self, selector: u16, d: &Descriptor, cpl: u8) -> Result<(), Fault> {
        self.mark_accessed(selector, d)?;
        let mut cs = d.segment((selector & !3) | u16::from(cpl));
        cs.attrs |= attrs::ACCESSED;
        self.state.segs[SegReg::Cs as usize] = cs;
        Ok(())
    }

    /// Checks a new instruction pointer against the (new) code segment.
    fn check_ip(&self, offset: u64) -> Result<u64, Fault> {
        if self.code_bits() == 64 {
            if !canonical(offset) {
                return Err(Fault::gp(0));
            }
            return Ok(offset);
        }
        if offset > u64::from(self.state.seg(SegReg::Cs).limit) {
            return Err(Fault::gp(0));
        }
        Ok(offset)
    }

    /// A far JMP or CALL to `selector:offset`; `size` is the operand size
    /// (what a CALL pushes).
    pub(crate) fn far_transfer(
        &mut self,
        selector: u16,
        offset: u64,
        call: bool,
        size: u8,
    ) -> Result<(), Fault> {
        if self.real_mode() || self.v86() {
            if call {
                let cs = self.state.seg(SegReg::Cs).selector;
                self.push(u64::from(cs), size)?;
                self.push(self.next_ip, size)?;
            }
            self.real_mode_far_jump(selector, offset, size);
            return Ok(());
        }
        if selector & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.read_descriptor(selector)?;
        let cpl = self.cpl();
        if d.is_code() {
            self.direct_code_target(selector, &d)?;
            let saved = (
                self.state.segs[SegReg::Cs as usize],
                self.state.gpr[gpr::SP],
            );
            if call {
                let cs = self.state.seg(SegReg::Cs).selector;
                self.push(u64::from(cs), size)?;
                self.push(self.next_ip, size)?;
            }
            self.set_code_segment(selector, &d, cpl)?;
            match self.check_ip(offset & mask(size.max(4))) {
                Ok(ip) => {
                    self.next_ip = ip & self.ip_mask();
                    Ok(())
                }
                Err(fault) => {
                    (
                        self.state.segs[SegReg::Cs as usize],
                        self.state.gpr[gpr::SP],
                    ) = saved;
                    Err(fault)
                }
            }
        } else if matches!(d.kind(), kind::CALL_GATE | kind::CALL_GATE16) && d.is_system() {
            self.call_gate(selector, &d, call)
        } else if d.is_system_of(kind::TSS_AVAILABLE)
            || d.is_system_of(kind::TSS16_AVAILABLE)
            || d.is_system_of(kind::TASK_GATE)
        {
            if d.dpl() < cpl || d.dpl() < (selector & 3) as u8 {
                return Err(Fault::gp(selector_error(selector)));
            }
            let target = if d.is_system_of(kind::TASK_GATE) {
                if !d.present() {
                    return Err(np(selector_error(selector)));
                }
                d.gate_selector()
            } else {
                selector
            };
            let reason = if call {
                TaskSwitch::Call
            } else {
                TaskSwitch::Jump
            };
            self.switch_task(target, reason, self.next_ip)
        } else {
            Err(Fault::gp(selector_error(selector)))
        }
    }

    /// A far JMP or CALL through a call gate.
    fn call_gate(
        &mut self,
        gate_selector: u16,
        gate: &Descriptor,
        call: bool,
    ) -> Result<(), Fault> {
        let cpl = self.cpl();
        let rpl = (gate_selector & 3) as u8;
        let error = selector_error(gate_selector);
        if gate.dpl() < cpl || gate.dpl() < rpl {
            return Err(Fault::gp(error));
        }
        if !gate.present() {
            return Err(np(error));
        }
        let long = self.long_mode();
        let selector = gate.gate_selector();
        if selector & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let target = self.read_descriptor(selector)?;
        let target_error = selector_error(selector);
        if !target.is_code() || target.dpl() > cpl {
            return Err(Fault::gp(target_error));
        }
        if !call && !target.conforming() && target.dpl() != cpl {
            return Err(Fault::gp(target_error));
        }
        if !target.present() {
            return Err(np(target_error));
        }
        let width: u8 = if long {
            8
        } else if gate.kind() == kind::CALL_GATE {
            4
        } else {
            2
        };
        let offset = gate.gate_offset(long);
        let inner = call && !target.conforming() && target.dpl() < cpl;
        if !inner {
            if call {
                let cs = self.state.seg(SegReg::Cs).selector;
                self.push(u64::from(cs), width)?;
                self.push(self.next_ip, width)?;
            }
            self.set_code_segment(selector, &target, cpl)?;
            self.next_ip = self.check_ip(offset)?;
            return Ok(());
        }
        let level = target.dpl();
        let old_ss = *self.state.seg(SegReg::Ss);
        let old_sp = self.state.gpr[gpr::SP];
        let old_stack_width = self.stack_size();
        let (ss, mut sp, stack_width) = if long {
            let sp = self.tss_stack(level, 0)?.1;
            let ss = Segment {
                selector: u16::from(level),
                attrs: 0,
                limit: 0,
                base: 0,
            };
            (ss, sp, 8)
        } else {
            let (ss_selector, sp) = self.tss_stack(level, 0)?;
            let ss = self.inner_stack_segment(ss_selector, level)?;
            let w = if ss.attrs & attrs::DB != 0 { 4 } else { 2 };
            (ss, sp & mask(w), w)
        };
        self.push_to(&ss, &mut sp, stack_width, u64::from(old_ss.selector), width)?;
        self.push_to(&ss, &mut sp, stack_width, old_sp, width)?;
        // Parameters, copied from the old stack (not in long mode).
        let count = if long { 0 } else { gate.gate_parameters() };
        for k in (0..count).rev() {
            let at = (old_sp + k * u64::from(width)) & mask(old_stack_width);
            let v = self.read(SegReg::Ss, at, width)?;
            self.push_to(&ss, &mut sp, stack_width, v, width)?;
        }
        let cs = self.state.seg(SegReg::Cs).selector;
        self.push_to(&ss, &mut sp, stack_width, u64::from(cs), width)?;
        self.push_to(&ss, &mut sp, stack_width, self.next_ip, width)?;
        self.state.segs[SegReg::Ss as usize] = ss;
        self.set_gpr(gpr::SP, stack_width, sp);
        self.set_code_segment(selector, &target, level)?;
        self.next_ip = self.check_ip(offset)?;
        Ok(())
    }

    /// RETF: a far return, popping `extra` more bytes of parameters.
    pub(crate) fn far_return(&mut self, size: u8, extra: u64) -> Result<(), Fault> {
        let saved_sp = self.state.gpr[gpr::SP];
        let result = self.far_return_inner(size, extra);
        if result.is_err() {
            self.state.gpr[gpr::SP] = saved_sp;
        }
        result
    }

    fn far_return_inner(&mut self, size: u8, extra: u64) -> Result<(), Fault> {
        let offset = self.pop(size)?;
        let selector = self.pop(size)? as u16;
        if self.real_mode() || self.v86() {
            self.release(extra);
            self.real_mode_far_jump(selector, offset, size);
            return Ok(());
        }
        let (d, rpl) = self.return_target(selector)?;
        let cpl = self.cpl();
        self.release(extra);
        if rpl == cpl {
            self.set_code_segment(selector, &d, cpl)?;
            self.next_ip = self.check_ip(offset & mask(size.max(4)))? & self.ip_mask();
            return Ok(());
        }
        let new_sp = self.pop(size)?;
        let new_ss = self.pop(size)? as u16;
        self.return_to_outer(selector, &d, rpl, new_ss, new_sp)?;
        self.release(extra);
        self.next_ip = self.check_ip(offset & mask(size.max(4)))? & self.ip_mask();
        Ok(())
    }

    /// Checks the code segment a RETF or IRET returns to.
    fn return_target(&mut self, selector: u16) -> Result<(Descriptor, u8), Fault> {
        if selector & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.read_descriptor(selector)?;
        let rpl = (selector & 3) as u8;
        let error = selector_error(selector);
        if !d.is_code() || rpl < self.cpl() {
            return Err(Fault::gp(error));
        }
        if d.conforming() && d.dpl() > rpl || !d.conforming() && d.dpl() != rpl {
            return Err(Fault::gp(error));
        }
        if !d.present() {
            return Err(np(error));
        }
        Ok((d, rpl))
    }

    /// The second half of a return to an outer privilege level: the new CS,
    /// SS and stack pointer, and data segments the new level may not use.
    fn return_to_outer(
        &mut self,
        selector: u16,
        d: &Descriptor,
        rpl: u8,
        new_ss: u16,
        new_sp: u64,
    ) -> Result<(), Fault> {
        let long_target = self.long_mode() && d.attrs() & attrs::L != 0;
        let ss = if new_ss & !3 == 0 && long_target && rpl != 3 {
            Segment {
                selector: new_ss,
                ..Segment::default()
            }
        } else {
            let error = selector_error(new_ss);
            if new_ss & !3 == 0 {
                return Err(Fault::gp(0));
            }
            let sd = self.read_descriptor(new_ss)?;
            if (new_ss & 3) as u8 != rpl || sd.dpl() != rpl || !sd.writable() {
                return Err(Fault::gp(error));
            }
            if !sd.present() {
                return Err(Fault::ss(error));
            }
            self.mark_accessed(new_ss, &sd)?;
            sd.segment(new_ss)
        };
        self.set_code_segment(selector, d, rpl)?;
        self.state.segs[SegReg::Ss as usize] = ss;
        let width = if self.code_bits() == 64 {
            8
        } else if ss.attrs & attrs::DB != 0 {
            4
        } else {
            2
        };
        self.set_gpr(gpr::SP, width, new_sp);
        for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let s = self.state.seg(seg);
            let dpl = ((s.attrs >> attrs::DPL_SHIFT) & 3) as u8;
            let conforming_code = s.attrs & attrs::CODE != 0 && s.attrs & attrs::DC != 0;
            if s.attrs & attrs::P != 0 && !conforming_code && dpl < rpl {
                let s = &mut self.state.segs[seg as usize];
                s.selector = 0;
                s.attrs = 0;
            }
        }
        Ok(())
    }

    fn release(&mut self, bytes: u64) {
        if bytes != 0 {
            let width = self.stack_size();
            let sp = self.gpr(gpr::SP, width).wrapping_add(bytes);
            self.set_gpr(gpr::SP, width, sp);
        }
    }

    /// IRET in every mode.
    pub(crate) fn interrupt_return(&mut self, size: u8) -> Result<(), Fault> {
        let saved_sp = self.state.gpr[gpr::SP];
        let result = self.interrupt_return_inner(size);
        if result.is_err() {
            self.state.gpr[gpr::SP] = saved_sp;
        } else {
            // IRET ends an NMI handler's block on further NMIs.
            self.nmi_blocked = false;
        }
        result
    }

    fn interrupt_return_inner(&mut self, size: u8) -> Result<(), Fault> {
        if self.real_mode() {
            let offset = self.pop(size)?;
            let selector = self.pop(size)? as u16;
            let image = self.pop(size)?;
            self.state.load_real_segment(SegReg::Cs, selector);
            self.next_ip = offset & mask(size);
            self.set_flags(image, mask(size));
            return Ok(());
        }
        if self.v86() {
            let iopl = (self.state.rflags >> 12) & 3;
            if iopl != 3 {
                return Err(Fault::gp(0));
            }
            let offset = self.pop(size)?;
            let selector = self.pop(size)? as u16;
            let image = self.pop(size)?;
            self.load_v86_segment(SegReg::Cs, selector);
            self.next_ip = offset & mask(size);
            // IOPL stays; VM stays.
            let writable = mask(size) & !(flags::IOPL | flags::VM | flags::RF);
            self.set_flags(image, writable);
            return Ok(());
        }
        if self.state.rflags & flags::NT != 0 && !self.long_mode() {
            return self.return_from_task();
        }
        let cpl = self.cpl();
        let offset = self.pop(size)?;
        let selector = self.pop(size)? as u16;
        let image = self.pop(size)?;
        if image & flags::VM != 0 && cpl == 0 && !self.long_mode() && size == 4 {
            return self.return_to_v86(offset, selector, image);
        }
        let (d, rpl) = self.return_target(selector)?;
        let long64 = self.code_bits() == 64;
        let writable = self.iret_writable_flags(cpl, size);
        if rpl == cpl && !long64 {
            self.set_code_segment(selector, &d, cpl)?;
            self.next_ip = self.check_ip(offset & mask(size.max(4)))? & self.ip_mask();
            self.set_flags(image, writable);
            return Ok(());
        }
        let new_sp = self.pop(size)?;
        let new_ss = self.pop(size)? as u16;
        if rpl == cpl {
            // IRETQ to the same level still reloads SS:RSP.
            self.set_code_segment(selector, &d, cpl)?;
            if new_ss & !3 == 0 {
                self.state.segs[SegReg::Ss as usize] = Segment {
                    selector: new_ss,
                    ..Segment::default()
                };
            } else {
                self.load_segment(SegReg::Ss, new_ss)?;
            }
            self.state.gpr[gpr::SP] = new_sp;
        } else {
            self.return_to_outer(selector, &d, rpl, new_ss, new_sp)?;
        }
        self.next_ip = self.check_ip(offset & mask(size.max(4)))? & self.ip_mask();
        self.set_flags_at(image, writable, cpl);
        Ok(())
    }

    /// The FLAGS bits IRET may change at privilege `cpl`.
    fn iret_writable_flags(&self, cpl: u8, size: u8) -> u64 {
        let mut writable = mask(size) & !(flags::VM | flags::VIF | flags::VIP);
        if size >= 4 && cpl == 0 {
            writable |= flags::VIF | flags::VIP;
        }
        writable
    }

    fn return_to_v86(&mut self, offset: u64, selector: u16, image: u64) -> Result<(), Fault> {
        let sp = self.pop(4)?;
        let ss = self.pop(4)? as u16;
        let es = self.pop(4)? as u16;
        let ds = self.pop(4)? as u16;
        let fs = self.pop(4)? as u16;
        let gs = self.pop(4)? as u16;
        self.state.rflags = (image & 0x003f_7fd5) | flags::FIXED1 | flags::VM;
        for (seg, sel) in [
            (SegReg::Cs, selector),
            (SegReg::Ss, ss),
            (SegReg::Es, es),
            (SegReg::Ds, ds),
            (SegReg::Fs, fs),
            (SegReg::Gs, gs),
        ] {
            self.load_v86_segment(seg, sel);
        }
        self.state.gpr[gpr::SP] = sp & 0xffff_ffff;
        self.next_ip = offset & 0xffff;
        Ok(())
    }

    /// Sets FLAGS bits from `value` as POPF or IRET at privilege `cpl` may:
    /// IOPL only at 0, IF only at or below IOPL.
    pub(crate) fn set_flags_at(&mut self, value: u64, writable: u64, cpl: u8) {
        let mut writable = writable;
        if !self.real_mode() {
            let iopl = ((self.state.rflags >> 12) & 3) as u8;
            if cpl > 0 {
                writable &= !flags::IOPL;
            }
            if cpl > iopl {
                writable &= !flags::IF;
            }
        }
        self.set_flags(value, writable);
    }

    /// Whether I/O to `len` ports from `port` is allowed: at or below IOPL,
    /// or by the TSS's I/O permission bitmap.
    pub(crate) fn io_allowed(&mut self, port: u16, len: u8) -> Result<(), Fault> {
        if self.real_mode() {
            return Ok(());
        }
        let iopl = ((self.state.rflags >> 12) & 3) as u8;
        if !self.v86() && self.cpl() <= iopl {
            return Ok(());
        }
        let tr = self.state.tr;
        let is32 = matches!((tr.attrs & 0xf) as u8, kind::TSS_AVAILABLE | kind::TSS_BUSY);
        if !is32 || tr.limit < 103 {
            return Err(Fault::gp(0));
        }
        let map = self.read_linear(tr.base + 102, 2, Access::SystemRead)?;
        let at = map + u64::from(port / 8);
        if at + 1 > u64::from(tr.limit) {
            return Err(Fault::gp(0));
        }
        let bits = self.read_linear(tr.base + at, 2, Access::SystemRead)?;
        let wanted = ((1u64 << len) - 1) << (port % 8);
        if bits & wanted != 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_decode_base_limit_and_attributes() {
        // A flat 32-bit code segment: base 0, limit 4 GiB, DPL 0, readable.
        let d = Descriptor {
            low: 0x00cf_9a00_0000_ffff,
            high: 0,
        };
        assert!(d.is_code() && d.readable() && !d.conforming());
        assert_eq!(d.base(), 0);
        assert_eq!(d.limit(), 0xffff_ffff);
        assert_eq!(d.dpl(), 0);
        assert_eq!(d.attrs() & attrs::DB, attrs::DB);
        // A 16-bit data segment at 0x12345678, limit 0x1ffff bytes, DPL 3.
        let d = Descriptor {
            low: 0x1201_f234_5678_ffff,
            high: 0,
        };
        assert!(d.writable() && d.is_data());
        assert_eq!(d.base(), 0x1234_5678);
        assert_eq!(d.limit(), 0x1ffff);
        assert_eq!(d.dpl(), 3);
    }

    #[test]
    fn gates_decode_selector_offset_and_stack() {
        // A 64-bit interrupt gate to 0x10:0xffff_8000_1234_5678, IST 2.
        let d = Descriptor {
            low: 0xffff_8e02_0010_5678 & !(0xffff << 48) | (0x1234 << 48),
            high: 0xffff_8000,
        };
        assert_eq!(d.kind(), kind::INTERRUPT_GATE);
        assert_eq!(d.gate_selector(), 0x10);
        assert_eq!(d.gate_ist(), 2);
        assert_eq!(d.gate_offset(true), 0xffff_8000_1234_5678);
    }
}
