//! System instructions: descriptor-table registers, control and debug
//! registers, model-specific registers, CPUID, the time-stamp counter, fast
//! system calls and the segment-inspection instructions.

use crate::cpu::{Cpu, Fault, canonical};
use crate::decode::{Insn, Op, Operand};
use crate::flags::mask;
use crate::mmu::{Access, cr4};
use crate::model::Vendor;
use crate::state::flags::{AC, IF, RF, VM, ZF};
use crate::state::{SegReg, Segment, attrs, cr0, efer, gpr};

/// MSR numbers.
mod msr {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    /// The microcode update signature: the loaded revision (none here).
    pub const BIOS_SIGN_ID: u32 = 0x8b;
    pub const MTRR_CAP: u32 = 0xfe;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const MTRR_VAR: u32 = 0x200;
    pub const MTRR_FIX_64K: u32 = 0x250;
    pub const MTRR_FIX_16K: u32 = 0x258;
    pub const MTRR_FIX_4K: u32 = 0x268;
    pub const PAT: u32 = 0x277;
    pub const MTRR_DEF_TYPE: u32 = 0x2ff;
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const FMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
    pub const TSC_DEADLINE: u32 = 0x6e0;
}

/// IA32_APIC_BASE's bootstrap-processor flag.
pub(crate) const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE's global enable.
pub(crate) const APIC_BASE_ENABLE: u64 = 1 << 11;

/// CR4 bits this CPU implements; setting others raises #GP.
const CR4_IMPLEMENTED: u64 = cr4::VME
    | cr4::PVI
    | cr4::TSD
    | cr4::DE
    | cr4::PSE
    | cr4::PAE
    | cr4::MCE
    | cr4::PGE
    | cr4::PCE
    | cr4::OSFXSR
    | cr4::OSXMMEXCPT
    | cr4::UMIP
    | cr4::SMEP
    | cr4::SMAP;

impl Cpu {
    /// Raises #GP(0) unless at privilege 0 (and not in virtual-8086 mode).
    pub(crate) fn privileged(&self) -> Result<(), Fault> {
        if self.cpl() != 0 {
            Err(Fault::gp(0))
        } else {
            Ok(())
        }
    }

    /// Raises #UD in real and virtual-8086 mode.
    fn protected_only(&self) -> Result<(), Fault> {
        if self.real_mode() || self.v86() {
            Err(Fault::UD)
        } else {
            Ok(())
        }
    }

    /// With CR4.UMIP, the table-register stores need privilege 0.
    fn umip(&self) -> Result<(), Fault> {
        if self.state.cr4 & cr4::UMIP != 0 && self.cpl() > 0 {
            Err(Fault::gp(0))
        } else {
            Ok(())
        }
    }

    /// The time-stamp counter plus the offset WRMSR set: the machine's clock
    /// in its ticks when one is connected ([`Cpu::connect_time_stamp_clock`]),
    /// else instructions executed, so bare runs repeat exactly.
    pub fn tsc(&self) -> u64 {
        let count = match &self.tsc_clock {
            Some(clock) => clock.now(),
            None => self.executed(),
        };
        count.wrapping_add(self.state.msr.tsc_offset)
    }

    /// Makes the TSC count `clock`'s ticks, so it runs at the clock's
    /// frequency as the machine's timers do (Linux calibrates it against the
    /// PIT and watches it against them).
    pub fn connect_time_stamp_clock(&mut self, clock: std::sync::Arc<emu_core::VirtualClock>) {
        // The counter carries on from where it was.
        let now = self.tsc();
        self.state.msr.tsc_offset = now.wrapping_sub(clock.now());
        self.tsc_clock = Some(clock);
    }

    /// Executes a system instruction.
    pub(crate) fn system_instruction(&mut self, i: &Insn) -> Result<(), Fault> {
        let [dst, src, _] = i.operands;
        match i.op {
            Op::Lgdt | Op::Lidt => {
                self.privileged()?;
                let ea = self.effective_address(i);
                let limit = self.read(i.seg, ea, 2)?;
                let wide = self.code_bits() == 64;
                let base_at = ea.wrapping_add(2) & mask(i.addr_size);
                let mut base = self.read(i.seg, base_at, if wide { 8 } else { 4 })?;
                if !wide && i.size == 2 {
                    base &= 0xff_ffff;
                }
                let table = if i.op == Op::Lgdt {
                    &mut self.state.gdtr
                } else {
                    &mut self.state.idtr
                };
                table.base = base;
                table.limit = limit as u32;
            }
            Op::Sgdt | Op::Sidt => {
                self.umip()?;
                let table = if i.op == Op::Sgdt {
                    self.state.gdtr
                } else {
                    self.state.idtr
                };
                let ea = self.effective_address(i);
                let wide = self.code_bits() == 64;
                self.write(i.seg, ea, 2, u64::from(table.limit))?;
                let base_at = ea.wrapping_add(2) & mask(i.addr_size);
                self.write(i.seg, base_at, if wide { 8 } else { 4 }, table.base)?;
            }
            Op::Lldt => {
                self.protected_only()?;
                self.privileged()?;
                let selector = self.read_operand(i, dst)? as u16;
                self.load_ldt(selector)?;
            }
            Op::Ltr => {
                self.protected_only()?;
                self.privileged()?;
                let selector = self.read_operand(i, dst)? as u16;
                self.load_task_register(selector)?;
            }
            Op::Sldt | Op::Str => {
                self.protected_only()?;
                self.umip()?;
                let selector = if i.op == Op::Sldt {
                    self.state.ldtr.selector
                } else {
                    self.state.tr.selector
                };
                self.write_operand(i, dst, u64::from(selector))?;
            }
            Op::Smsw => {
                self.umip()?;
                self.write_operand(i, dst, self.state.cr0)?;
            }
            Op::Lmsw => {
                self.privileged()?;
                let v = self.read_operand(i, dst)?;
                // LMSW sets PE but never clears it.
                let low = (v & 0xf) | (self.state.cr0 & cr0::PE);
                self.state.cr0 = (self.state.cr0 & !0xf) | low;
            }
            Op::Clts => {
                self.privileged()?;
                self.state.cr0 &= !cr0::TS;
            }
            Op::MovCr => self.move_control_register(i)?,
            Op::MovDr => {
                self.privileged()?;
                match (dst, src) {
                    (Operand::Debug(n), o) => {
                        let v = self.read_operand(i, o)?;
                        let n = usize::from(n);
                        let n = if (4..6).contains(&n) { n + 2 } else { n };
                        if n < 8 {
                            // DR6 and DR7 read their reserved bits as set.
                            self.state.dr[n] = match n {
                                6 => (v & 0xe00f) | 0xffff_0ff0,
                                7 => v | 0x400,
                                _ => v,
                            };
                            self.rearm_breakpoints();
                        }
                    }
                    (o, Operand::Debug(n)) => {
                        let n = usize::from(n);
                        let n = if (4..6).contains(&n) { n + 2 } else { n };
                        let v = self.state.dr.get(n).copied().ok_or(Fault::UD)?;
                        self.write_operand(i, o, v)?;
                    }
                    _ => return Err(Fault::UD),
                }
            }
            Op::Lar | Op::Lsl | Op::Verr | Op::Verw => self.inspect_segment(i)?,
            Op::Arpl => {
                self.protected_only()?;
                let a = self.read_operand(i, dst)?;
                let b = self.read_operand(i, src)?;
                if a & 3 < b & 3 {
                    self.write_operand(i, dst, (a & !3) | (b & 3))?;
                    self.state.rflags |= ZF;
                } else {
                    self.state.rflags &= !ZF;
                }
            }
            Op::Invlpg => {
                self.privileged()?;
                let ea = self.effective_address(i);
                let base = if self.code_bits() == 64 && !matches!(i.seg, SegReg::Fs | SegReg::Gs) {
                    0
                } else {
                    self.state.seg(i.seg).base
                };
                let linear = self.wrap_linear(base.wrapping_add(ea));
                self.tlb.flush_page(linear);
            }
            Op::Rdmsr => {
                self.privileged()?;
                let index = self.gpr(gpr::CX, 4) as u32;
                let v = self.read_msr(index)?;
                self.set_gpr(gpr::AX, 4, v & 0xffff_ffff);
                self.set_gpr(gpr::DX, 4, v >> 32);
            }
            Op::Wrmsr => {
                self.privileged()?;
                let index = self.gpr(gpr::CX, 4) as u32;
                let v = (self.gpr(gpr::DX, 4) << 32) | self.gpr(gpr::AX, 4);
                self.write_msr(index, v)?;
            }
            Op::Rdtsc | Op::Rdtscp => {
                if self.state.cr4 & cr4::TSD != 0 && self.cpl() != 0 {
                    return Err(Fault::gp(0));
                }
                let tsc = self.tsc();
                self.set_gpr(gpr::AX, 4, tsc & 0xffff_ffff);
                self.set_gpr(gpr::DX, 4, tsc >> 32);
                if i.op == Op::Rdtscp {
                    self.set_gpr(gpr::CX, 4, self.state.msr.tsc_aux & 0xffff_ffff);
                }
            }
            Op::Rdpid => {
                let v = self.state.msr.tsc_aux;
                self.write_operand(i, dst, v)?;
            }
            Op::Cpuid => {
                let leaf = self.gpr(gpr::AX, 4) as u32;
                let sub = self.gpr(gpr::CX, 4) as u32;
                let [a, mut b, mut c, mut d] = crate::cpuid::cpuid(self.model(), leaf, sub);
                // What depends on the CPU's state: OSXSAVE mirrors CR4, and
                // the XSAVE area's size follows XCR0.
                if leaf == 1 && self.state.cr4 & cr4::OSXSAVE != 0 {
                    c |= 1 << 27;
                }
                if leaf == 7 && sub == 0 && self.state.cr4 & cr4::PKE != 0 {
                    c |= 1 << 4;
                }
                // A local APIC, while IA32_APIC_BASE enables it: its ID,
                // the APIC bit and the TSC-deadline timer.
                if self.apic.is_some() && self.state.msr.apic_base & APIC_BASE_ENABLE != 0 {
                    if leaf == 1 {
                        b |= u32::from(self.apic_id) << 24;
                        c |= 1 << 24;
                        d |= 1 << 9;
                    }
                    if leaf == 0xb && matches!(self.model().vendor, Vendor::Intel) {
                        d = u32::from(self.apic_id);
                    }
                }
                if leaf == 0xd
                    && sub == 0
                    && self.model().features.has(crate::model::Features::XSAVE)
                {
                    b = crate::xsave::area_size(self.state.xcr0);
                }
                self.set_gpr(gpr::AX, 4, u64::from(a));
                self.set_gpr(gpr::BX, 4, u64::from(b));
                self.set_gpr(gpr::CX, 4, u64::from(c));
                self.set_gpr(gpr::DX, 4, u64::from(d));
            }
            Op::Swapgs => {
                if self.code_bits() != 64 {
                    return Err(Fault::UD);
                }
                self.privileged()?;
                let gs = &mut self.state.segs[SegReg::Gs as usize].base;
                std::mem::swap(gs, &mut self.state.msr.kernel_gs_base);
            }
            Op::ReadSegmentBase | Op::WriteSegmentBase => {
                if self.code_bits() != 64 || self.state.cr4 & cr4::FSGSBASE == 0 {
                    return Err(Fault::UD);
                }
                let size = i.size;
                if i.op == Op::ReadSegmentBase {
                    let base = self.state.seg(i.seg2).base;
                    self.write_operand(i, dst, base & mask(size))?;
                } else {
                    let base = self.read_operand(i, dst)? & mask(size);
                    if !canonical(base) {
                        return Err(Fault::gp(0));
                    }
                    self.state.segs[i.seg2 as usize].base = base;
                }
            }
            Op::Invpcid => {
                self.privileged()?;
                let kind = self.read_operand(i, dst)?;
                let ea = self.effective_address(i);
                let pcid = self.read(i.seg, ea, 8)?;
                let linear = self.read(i.seg, ea.wrapping_add(8) & mask(i.addr_size), 8)?;
                if kind > 3 || pcid > 0xfff {
                    return Err(Fault::gp(0));
                }
                // The TLB does not tag entries with PCIDs, so each kind
                // drops at least what it names (dropping more is allowed).
                match kind {
                    0 => {
                        if !canonical(linear) {
                            return Err(Fault::gp(0));
                        }
                        self.tlb.flush_page(linear);
                    }
                    2 => self.tlb.flush_all(),
                    _ => self.tlb.flush_non_global(),
                }
            }
            Op::Rdpkru | Op::Wrpkru => {
                if self.state.cr4 & cr4::PKE == 0 {
                    return Err(Fault::UD);
                }
                if self.gpr(gpr::CX, 4) != 0 {
                    return Err(Fault::gp(0));
                }
                if i.op == Op::Rdpkru {
                    self.set_gpr(gpr::AX, 4, u64::from(self.state.pkru));
                    self.set_gpr(gpr::DX, 4, 0);
                } else {
                    if self.gpr(gpr::DX, 4) != 0 {
                        return Err(Fault::gp(0));
                    }
                    self.state.pkru = self.gpr(gpr::AX, 4) as u32;
                }
            }
            Op::Syscall => self.syscall()?,
            Op::Sysret => self.sysret(i)?,
            Op::Sysenter => self.sysenter()?,
            Op::Sysexit => self.sysexit(i)?,
            Op::Wbinvd => self.privileged()?,
            Op::Stac | Op::Clac => {
                self.privileged()?;
                if i.op == Op::Stac {
                    self.state.rflags |= AC;
                } else {
                    self.state.rflags &= !AC;
                }
            }
            _ => return Err(Fault::UD),
        }
        Ok(())
    }

    /// Loads LDTR from the GDT descriptor `selector` names (null: none).
    pub(crate) fn load_ldt(&mut self, selector: u16) -> Result<(), Fault> {
        if selector & !3 == 0 {
            self.state.ldtr = Segment {
                selector,
                ..Segment::default()
            };
            return Ok(());
        }
        if selector & 4 != 0 {
            return Err(Fault::gp(u32::from(selector & !3)));
        }
        let d = self.read_descriptor(selector)?;
        let error = u32::from(selector & !3);
        if !d.is_system_of(0x2) {
            return Err(Fault::gp(error));
        }
        if !d.present() {
            return Err(Fault {
                vector: crate::cpu::vector::NP,
                error: Some(error),
            });
        }
        self.state.ldtr = d.segment(selector);
        Ok(())
    }

    fn load_task_register(&mut self, selector: u16) -> Result<(), Fault> {
        let error = u32::from(selector & !3);
        if selector & !3 == 0 || selector & 4 != 0 {
            return Err(Fault::gp(error));
        }
        let d = self.read_descriptor(selector)?;
        // Only an available TSS (16- or 32/64-bit) may be loaded.
        let available16 = d.is_system_of(0x1) && !self.long_mode();
        if !(d.is_system_of(0x9) || available16) {
            return Err(Fault::gp(error));
        }
        if !d.present() {
            return Err(Fault {
                vector: crate::cpu::vector::NP,
                error: Some(error),
            });
        }
        // Mark it busy in the GDT.
        let at = self.state.gdtr.base + u64::from(selector & !7) + 5;
        let access = self.read_linear(at, 1, Access::SystemRead)?;
        self.write_linear(at, 1, access | 2, Access::SystemWrite)?;
        let mut tr = d.segment(selector);
        tr.attrs |= 2;
        self.state.tr = tr;
        Ok(())
    }

    fn move_control_register(&mut self, i: &Insn) -> Result<(), Fault> {
        if self.v86() {
            return Err(Fault::gp(0));
        }
        self.privileged()?;
        let [dst, src, _] = i.operands;
        match (dst, src) {
            (o, Operand::Control(n)) => {
                let v = match n {
                    0 => self.state.cr0,
                    2 => self.state.cr2,
                    3 => self.state.cr3,
                    4 => self.state.cr4,
                    8 => self.state.cr8,
                    _ => return Err(Fault::UD),
                };
                self.write_operand(i, o, v)
            }
            (Operand::Control(n), o) => {
                let v = self.read_operand(i, o)?;
                self.write_control_register(n, v)
            }
            _ => Err(Fault::UD),
        }
    }

    /// The CR4 bits software may set on this model.
    fn cr4_writable(&self) -> u64 {
        use crate::model::Features as F;
        let features = self.model().features;
        let optional = [
            (F::UMIP, cr4::UMIP),
            (F::SMEP, cr4::SMEP),
            (F::SMAP, cr4::SMAP),
            (F::FSGSBASE, cr4::FSGSBASE),
            (F::PCID, cr4::PCIDE),
            (F::XSAVE, cr4::OSXSAVE),
            (F::PKU, cr4::PKE),
        ];
        optional.into_iter().filter(|&(f, _)| features.has(f)).fold(
            CR4_IMPLEMENTED & !(cr4::UMIP | cr4::SMEP | cr4::SMAP),
            |m, (_, bit)| m | bit,
        )
    }

    /// MOV to CRn.
    pub fn write_control_register(&mut self, n: u8, v: u64) -> Result<(), Fault> {
        match n {
            0 => {
                let v = v | cr0::ET;
                if v >> 32 != 0 || (v & cr0::PG != 0 && v & cr0::PE == 0) {
                    return Err(Fault::gp(0));
                }
                if v & cr0::NW != 0 && v & cr0::CD == 0 {
                    return Err(Fault::gp(0));
                }
                let enabling_paging = v & cr0::PG != 0 && self.state.cr0 & cr0::PG == 0;
                let disabling_paging = v & cr0::PG == 0 && self.state.cr0 & cr0::PG != 0;
                if enabling_paging && self.state.efer & efer::LME != 0 {
                    if self.state.cr4 & cr4::PAE == 0 {
                        return Err(Fault::gp(0));
                    }
                    self.state.efer |= efer::LMA;
                }
                if disabling_paging && self.state.cr4 & cr4::PCIDE != 0 {
                    return Err(Fault::gp(0));
                }
                if disabling_paging && self.long_mode() {
                    if self.code_bits() == 64 {
                        return Err(Fault::gp(0));
                    }
                    self.state.efer &= !efer::LMA;
                }
                if (v ^ self.state.cr0) & (cr0::PG | cr0::WP | cr0::PE) != 0 {
                    self.tlb.flush_all();
                }
                self.state.cr0 = v;
            }
            2 => self.state.cr2 = v,
            3 => {
                // With PCIDs, bit 63 asks to keep the TLB's entries; it is
                // not stored.
                let keep = self.state.cr4 & cr4::PCIDE != 0 && v >> 63 != 0;
                let v = if self.state.cr4 & cr4::PCIDE != 0 {
                    v & !(1 << 63)
                } else {
                    v
                };
                if self.long_mode() && v >> 52 != 0 {
                    return Err(Fault::gp(0));
                }
                self.state.cr3 = v;
                if !keep {
                    self.tlb.flush_non_global();
                }
            }
            4 => {
                if v & !self.cr4_writable() != 0 || (self.long_mode() && v & cr4::PAE == 0) {
                    return Err(Fault::gp(0));
                }
                let changed = v ^ self.state.cr4;
                // PCIDs only in long mode, and only from PCID 0.
                if changed & v & cr4::PCIDE != 0
                    && (!self.long_mode() || self.state.cr3 & 0xfff != 0)
                {
                    return Err(Fault::gp(0));
                }
                let paging = cr4::PGE | cr4::PAE | cr4::PSE | cr4::SMEP | cr4::SMAP | cr4::PCIDE;
                if changed & (paging | cr4::PKE) != 0 {
                    self.tlb.flush_all();
                }
                self.state.cr4 = v;
            }
            8 => {
                if v > 15 {
                    return Err(Fault::gp(0));
                }
                self.state.cr8 = v;
            }
            _ => return Err(Fault::UD),
        }
        Ok(())
    }

    /// RDMSR: #GP(0) for registers this CPU does not have.
    pub fn read_msr(&self, index: u32) -> Result<u64, Fault> {
        let m = &self.state.msr;
        Ok(match index {
            msr::TSC => self.tsc(),
            msr::APIC_BASE => m.apic_base,
            msr::BIOS_SIGN_ID => 0,
            // Eight variable ranges, fixed ranges, write-combining.
            msr::MTRR_CAP => 0x508,
            msr::SYSENTER_CS => m.sysenter_cs,
            msr::SYSENTER_ESP => m.sysenter_esp,
            msr::SYSENTER_EIP => m.sysenter_eip,
            msr::MISC_ENABLE => m.misc_enable,
            msr::MTRR_VAR..=0x20f => m.mtrr_var[(index - msr::MTRR_VAR) as usize],
            msr::MTRR_FIX_64K => m.mtrr_fixed[0],
            msr::MTRR_FIX_16K | 0x259 => m.mtrr_fixed[1 + (index - msr::MTRR_FIX_16K) as usize],
            msr::MTRR_FIX_4K..=0x26f => m.mtrr_fixed[3 + (index - msr::MTRR_FIX_4K) as usize],
            msr::PAT => m.pat,
            msr::MTRR_DEF_TYPE => m.mtrr_def_type,
            msr::EFER => self.state.efer,
            msr::STAR => m.star,
            msr::LSTAR => m.lstar,
            msr::CSTAR => m.cstar,
            msr::FMASK => m.sfmask,
            msr::FS_BASE => self.state.seg(SegReg::Fs).base,
            msr::GS_BASE => self.state.seg(SegReg::Gs).base,
            msr::KERNEL_GS_BASE => m.kernel_gs_base,
            msr::TSC_AUX => m.tsc_aux,
            msr::TSC_DEADLINE => match &self.apic {
                Some(apic) => apic
                    .tsc_deadline()
                    .map_or(0, |due| due.wrapping_add(m.tsc_offset)),
                None => return Err(Fault::gp(0)),
            },
            _ => return Err(Fault::gp(0)),
        })
    }

    /// WRMSR: #GP(0) for registers this CPU does not have and values they
    /// refuse.
    pub fn write_msr(&mut self, index: u32, v: u64) -> Result<(), Fault> {
        let need_canonical = matches!(
            index,
            msr::LSTAR | msr::CSTAR | msr::FS_BASE | msr::GS_BASE | msr::KERNEL_GS_BASE
        );
        if need_canonical && !canonical(v) {
            return Err(Fault::gp(0));
        }
        let count = self.tsc().wrapping_sub(self.state.msr.tsc_offset);
        let m = &mut self.state.msr;
        match index {
            msr::TSC => m.tsc_offset = v.wrapping_sub(count),
            // Writing 0 asks the next CPUID to report the revision.
            msr::BIOS_SIGN_ID => {}
            msr::APIC_BASE => {
                let old = m.apic_base;
                m.apic_base = v & 0x000f_ffff_ffff_fd00;
                if let Some(apic) = &self.apic
                    && (old ^ m.apic_base) & APIC_BASE_ENABLE != 0
                {
                    apic.set_hardware_enabled(m.apic_base & APIC_BASE_ENABLE != 0);
                }
            }
            msr::SYSENTER_CS => m.sysenter_cs = v & 0xffff,
            msr::SYSENTER_ESP => m.sysenter_esp = v,
            msr::SYSENTER_EIP => m.sysenter_eip = v,
            msr::MISC_ENABLE => m.misc_enable = v,
            msr::MTRR_VAR..=0x20f => m.mtrr_var[(index - msr::MTRR_VAR) as usize] = v,
            msr::MTRR_FIX_64K => m.mtrr_fixed[0] = v,
            msr::MTRR_FIX_16K | 0x259 => {
                m.mtrr_fixed[1 + (index - msr::MTRR_FIX_16K) as usize] = v;
            }
            msr::MTRR_FIX_4K..=0x26f => m.mtrr_fixed[3 + (index - msr::MTRR_FIX_4K) as usize] = v,
            msr::PAT => m.pat = v,
            msr::MTRR_DEF_TYPE => m.mtrr_def_type = v & 0xcff,
            msr::EFER => {
                let writable = efer::SCE | efer::LME | efer::NXE;
                if v & !(writable | efer::LMA) != 0 {
                    return Err(Fault::gp(0));
                }
                // LME cannot change while paging is on.
                if self.state.cr0 & cr0::PG != 0 && (v ^ self.state.efer) & efer::LME != 0 {
                    return Err(Fault::gp(0));
                }
                self.state.efer = (self.state.efer & efer::LMA) | (v & writable);
                self.tlb.flush_all();
            }
            msr::STAR => m.star = v,
            msr::LSTAR => m.lstar = v,
            msr::CSTAR => m.cstar = v,
            msr::FMASK => m.sfmask = v & 0xffff_ffff,
            msr::FS_BASE => self.state.segs[SegReg::Fs as usize].base = v,
            msr::GS_BASE => self.state.segs[SegReg::Gs as usize].base = v,
            msr::KERNEL_GS_BASE => m.kernel_gs_base = v,
            msr::TSC_AUX => m.tsc_aux = v & 0xffff_ffff,
            // The deadline in TSC counts becomes one on the machine's clock.
            msr::TSC_DEADLINE => match &self.apic {
                Some(apic) => {
                    apic.set_tsc_deadline((v != 0).then(|| v.wrapping_sub(m.tsc_offset)));
                }
                None => return Err(Fault::gp(0)),
            },
            _ => return Err(Fault::gp(0)),
        }
        Ok(())
    }

    /// A flat code or stack segment as SYSCALL, SYSRET, SYSENTER and SYSEXIT
    /// load them (they never read the descriptor tables).
    fn flat_segment(selector: u16, code: bool, long: bool, dpl: u16) -> Segment {
        let kind = if code {
            attrs::CODE | attrs::RW | attrs::ACCESSED
        } else {
            attrs::RW | attrs::ACCESSED
        };
        let size = if code && long { attrs::L } else { attrs::DB };
        Segment {
            selector,
            attrs: attrs::P | attrs::S | kind | (dpl << attrs::DPL_SHIFT) | attrs::G | size,
            limit: 0xffff_ffff,
            base: 0,
        }
    }

    fn syscall(&mut self) -> Result<(), Fault> {
        if self.user_syscalls() {
            self.syscall_pending = true;
            return Ok(());
        }
        let amd = self.model().vendor == Vendor::Amd;
        if self.state.efer & efer::SCE == 0 || self.real_mode() || self.v86() {
            return Err(Fault::UD);
        }
        // Intel parts have SYSCALL in 64-bit mode only; AMD's also in
        // compatibility mode (through CSTAR) and legacy protected mode.
        if !amd && self.code_bits() != 64 {
            return Err(Fault::UD);
        }
        let selector = ((self.state.msr.star >> 32) & 0xfffc) as u16;
        if !self.long_mode() {
            // Legacy mode: EIP from STAR's low half, ECX the return address.
            self.set_gpr(gpr::CX, 4, self.next_ip);
            self.state.rflags &= !(VM | IF | RF);
            self.state.segs[SegReg::Cs as usize] = Self::flat_segment(selector, true, false, 0);
            self.state.segs[SegReg::Ss as usize] =
                Self::flat_segment(selector + 8, false, false, 0);
            self.next_ip = self.state.msr.star & 0xffff_ffff;
            return Ok(());
        }
        let from64 = self.code_bits() == 64;
        self.set_gpr(gpr::CX, 8, self.next_ip);
        self.set_gpr(gpr::R11, 8, self.state.rflags & !RF);
        self.state.rflags &= !(self.state.msr.sfmask | RF);
        self.state.segs[SegReg::Cs as usize] = Self::flat_segment(selector, true, true, 0);
        self.state.segs[SegReg::Ss as usize] = Self::flat_segment(selector + 8, false, true, 0);
        self.next_ip = if from64 {
            self.state.msr.lstar
        } else {
            self.state.msr.cstar
        };
        Ok(())
    }

    fn sysret(&mut self, i: &Insn) -> Result<(), Fault> {
        let amd = self.model().vendor == Vendor::Amd;
        if self.state.efer & efer::SCE == 0 || self.real_mode() || self.v86() {
            return Err(Fault::UD);
        }
        if !amd && self.code_bits() != 64 {
            return Err(Fault::UD);
        }
        self.privileged()?;
        let base = ((self.state.msr.star >> 48) & 0xffff) as u16;
        if !self.long_mode() {
            // AMD's legacy-mode SYSRET: back to 32-bit code with IF set.
            self.state.segs[SegReg::Cs as usize] = Self::flat_segment(base | 3, true, false, 3);
            self.state.segs[SegReg::Ss as usize] =
                Self::flat_segment((base + 8) | 3, false, false, 3);
            self.state.rflags |= IF;
            self.next_ip = self.state.gpr[gpr::CX] & 0xffff_ffff;
            return Ok(());
        }
        let to64 = i.size == 8;
        let rcx = self.state.gpr[gpr::CX];
        // A non-canonical return address faults in the kernel on Intel parts;
        // AMD's return and fault on the fetch, at privilege 3.
        if to64 && !canonical(rcx) && !amd {
            return Err(Fault::gp(0));
        }
        let cs = if to64 { base + 16 } else { base };
        self.state.segs[SegReg::Cs as usize] = Self::flat_segment(cs | 3, true, to64, 3);
        // SS keeps what SYSRET loads on Intel parts: a flat data segment.
        self.state.segs[SegReg::Ss as usize] = Self::flat_segment((base + 8) | 3, false, false, 3);
        let r11 = self.state.gpr[gpr::R11];
        self.state.rflags = (r11 & 0x003f_7fd7 & !RF) | 2;
        self.next_ip = if to64 { rcx } else { rcx & 0xffff_ffff };
        Ok(())
    }

    fn sysenter(&mut self) -> Result<(), Fault> {
        // AMD parts have no SYSENTER in long mode.
        if self.model().vendor == Vendor::Amd && self.long_mode() {
            return Err(Fault::UD);
        }
        if self.real_mode() {
            return Err(Fault::gp(0));
        }
        let cs = (self.state.msr.sysenter_cs & 0xfffc) as u16;
        if cs == 0 {
            return Err(Fault::gp(0));
        }
        let long = self.long_mode();
        self.state.rflags &= !(VM | IF | RF);
        self.state.segs[SegReg::Cs as usize] = Self::flat_segment(cs, true, long, 0);
        self.state.segs[SegReg::Ss as usize] = Self::flat_segment(cs + 8, false, long, 0);
        let width = if long { 8 } else { 4 };
        self.set_gpr(gpr::SP, width, self.state.msr.sysenter_esp);
        self.next_ip = self.state.msr.sysenter_eip & mask(width);
        Ok(())
    }

    fn sysexit(&mut self, i: &Insn) -> Result<(), Fault> {
        if self.model().vendor == Vendor::Amd && self.long_mode() {
            return Err(Fault::UD);
        }
        if self.real_mode() || self.v86() {
            return Err(Fault::gp(0));
        }
        self.privileged()?;
        let base = (self.state.msr.sysenter_cs & 0xfffc) as u16;
        if base == 0 {
            return Err(Fault::gp(0));
        }
        let to64 = i.size == 8;
        let cs = if to64 { base + 32 } else { base + 16 };
        self.state.segs[SegReg::Cs as usize] = Self::flat_segment(cs | 3, true, to64, 3);
        self.state.segs[SegReg::Ss as usize] = Self::flat_segment((cs + 8) | 3, false, false, 3);
        let width = if to64 { 8 } else { 4 };
        self.set_gpr(gpr::SP, width, self.state.gpr[gpr::CX]);
        self.next_ip = self.state.gpr[gpr::DX] & mask(width);
        Ok(())
    }

    /// LAR, LSL, VERR, VERW: ZF says whether the selector passes.
    fn inspect_segment(&mut self, i: &Insn) -> Result<(), Fault> {
        self.protected_only()?;
        let [dst, src, _] = i.operands;
        let operand = if matches!(i.op, Op::Verr | Op::Verw) {
            dst
        } else {
            src
        };
        let selector = self.read_operand(i, operand)? as u16;
        let found = if selector & !3 == 0 {
            None
        } else {
            self.read_descriptor(selector).ok()
        };
        let cpl = self.cpl();
        let rpl = (selector & 3) as u8;
        let verdict = found.and_then(|d| {
            let privileged_ok = d.conforming() || (d.dpl() >= cpl && d.dpl() >= rpl);
            let type_ok = match i.op {
                Op::Lar => !d.is_system() || d.system_kind_in(self.long_mode(), true),
                Op::Lsl => !d.is_system() || d.system_kind_in(self.long_mode(), false),
                Op::Verr => !d.is_system() && d.readable(),
                _ => d.writable(),
            };
            (privileged_ok && type_ok).then_some(d)
        });
        match verdict {
            Some(d) => {
                self.state.rflags |= ZF;
                match i.op {
                    Op::Lar => self.write_operand(i, dst, d.access_rights() & mask(i.size))?,
                    Op::Lsl => {
                        self.write_operand(i, dst, u64::from(d.byte_limit()) & mask(i.size))?
                    }
                    _ => {}
                }
            }
            None => self.state.rflags &= !ZF,
        }
        Ok(())
    }
}
