//! XSAVE: the extended-state instructions (XSAVE, XRSTOR, XGETBV, XSETBV)
//! for the state components this CPU has, the x87 (component 0), SSE
//! (component 1) and, on models with protection keys, PKRU (component 9),
//! in the standard (uncompacted) layout: FXSAVE's 512 bytes, the 64-byte
//! XSAVE header, then PKRU where CPUID leaf 0xD subleaf 9 says (right after
//! the header: software finds components through CPUID, and without AVX
//! state there is nothing between).
//!
//! Only the plain forms exist: CPUID leaf 0xD subleaf 1 advertises none of
//! XSAVEOPT, XSAVEC, XGETBV with ECX = 1 or XSAVES, and the iced decoder's
//! features gate those instructions to #UD.

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Op};
use crate::flags::mask;
use crate::mmu::{Access, cr4};
use crate::model::{CpuModel, Features};
use crate::state::{X87State, gpr};

/// The PKRU component's bit in XCR0.
const PKRU: u64 = 1 << 9;
/// Where the XSAVE header starts.
const HEADER: u64 = 512;
/// Where PKRU is kept, and its size.
const PKRU_AT: u64 = 576;
const PKRU_SIZE: u32 = 8;
/// The bytes of the legacy area and the header.
const LEGACY_AND_HEADER: u32 = 512 + 64;

/// The state components `model` supports in XCR0.
pub fn supported(model: &CpuModel) -> u64 {
    let pkru = if model.features.has(Features::PKU) {
        PKRU
    } else {
        0
    };
    0b11 | pkru
}

/// The size of the XSAVE area for the components in `xcr0` (CPUID leaf 0xD
/// EBX, and ECX for every supported component).
pub fn area_size(xcr0: u64) -> u32 {
    if xcr0 & PKRU != 0 {
        LEGACY_AND_HEADER + PKRU_SIZE
    } else {
        LEGACY_AND_HEADER
    }
}

/// CPUID leaf 0xD for a model with XSAVE.
pub fn cpuid_leaf(model: &CpuModel, sub: u32) -> [u32; 4] {
    let all = supported(model);
    match sub {
        // Supported XCR0 bits; area size for XCR0 (patched by the CPU) and
        // for every supported component.
        0 => [all as u32, area_size(1), area_size(all), 0],
        // No XSAVEOPT, XSAVEC, XGETBV1 or XSAVES.
        1 => [0; 4],
        // PKRU: its size and offset in the standard layout.
        9 if all & PKRU != 0 => [PKRU_SIZE, PKRU_AT as u32, 0, 0],
        _ => [0; 4],
    }
}

impl Cpu {
    /// XGETBV, XSETBV, XSAVE and XRSTOR (#UD unless CR4.OSXSAVE).
    pub(crate) fn xsave_instruction(&mut self, i: &Insn) -> Result<(), Fault> {
        if self.state.cr4 & cr4::OSXSAVE == 0 {
            return Err(Fault::UD);
        }
        match i.op {
            Op::Xgetbv => {
                if self.gpr(gpr::CX, 4) != 0 {
                    return Err(Fault::gp(0));
                }
                let v = self.state.xcr0;
                self.set_gpr(gpr::AX, 4, v & 0xffff_ffff);
                self.set_gpr(gpr::DX, 4, v >> 32);
            }
            Op::Xsetbv => {
                self.privileged()?;
                let v = (self.gpr(gpr::DX, 4) << 32) | self.gpr(gpr::AX, 4);
                // x87 state is always on; nothing beyond what is supported.
                if self.gpr(gpr::CX, 4) != 0 || v & 1 == 0 || v & !supported(self.model()) != 0 {
                    return Err(Fault::gp(0));
                }
                self.state.xcr0 = v;
            }
            Op::Xsave => self.xsave(i)?,
            _ => self.xrstor(i)?,
        }
        Ok(())
    }

    /// The requested-feature bitmap: EDX:EAX masked by XCR0.
    fn requested_features(&self) -> u64 {
        ((self.gpr(gpr::DX, 4) << 32) | self.gpr(gpr::AX, 4)) & self.state.xcr0
    }

    /// The area's offset `at`, and its first byte checked for 64-byte
    /// alignment and for `access` across the whole area.
    fn xsave_area(&mut self, i: &Insn, access: Access) -> Result<u64, Fault> {
        // The x87 and SSE may be in use under CR0.TS: #NM as for FXSAVE.
        if self.state.cr0 & crate::state::cr0::TS != 0 {
            return Err(Fault {
                vector: crate::cpu::vector::NM,
                error: None,
            });
        }
        let ea = self.effective_address(i);
        let linear = self.linear(i.seg, ea, 16, access)?;
        if linear % 64 != 0 {
            return Err(Fault::gp(0));
        }
        // Every byte must be reachable before anything changes.
        let size = area_size(self.state.xcr0);
        for offset in (0..u64::from(size)).step_by(8) {
            self.linear(
                i.seg,
                ea.wrapping_add(offset) & mask(i.addr_size),
                8,
                access,
            )?;
        }
        Ok(ea)
    }

    fn xsave(&mut self, i: &Insn) -> Result<(), Fault> {
        let ea = self.xsave_area(i, Access::Write)?;
        let at = |k: u64| ea.wrapping_add(k) & mask(i.addr_size);
        let rfbm = self.requested_features();
        let wide = i.size == 8;
        if rfbm & 1 != 0 {
            for (offset, size, value) in self.fxsave_x87(wide) {
                self.write(i.seg, at(offset), size, value)?;
            }
        }
        if rfbm & 2 != 0 {
            self.write(i.seg, at(24), 4, u64::from(self.state.mxcsr))?;
            self.write(i.seg, at(28), 4, 0xffff)?;
            let count = if self.code_bits() == 64 { 16 } else { 8 };
            for k in 0..count {
                let v = self.state.xmm[k as usize];
                self.write(i.seg, at(160 + 16 * k), 8, v as u64)?;
                self.write(i.seg, at(168 + 16 * k), 8, (v >> 64) as u64)?;
            }
        }
        if rfbm & PKRU != 0 {
            self.write(i.seg, at(PKRU_AT), 8, u64::from(self.state.pkru))?;
        }
        // XSTATE_BV: the saved components count as in use.
        let before = self.read(i.seg, at(HEADER), 8)?;
        self.write(i.seg, at(HEADER), 8, (before & !rfbm) | rfbm)
    }

    fn xrstor(&mut self, i: &Insn) -> Result<(), Fault> {
        let ea = self.xsave_area(i, Access::Read)?;
        let at = |k: u64| ea.wrapping_add(k) & mask(i.addr_size);
        let rfbm = self.requested_features();
        let xstate_bv = self.read(i.seg, at(HEADER), 8)?;
        let xcomp_bv = self.read(i.seg, at(HEADER + 8), 8)?;
        let reserved = self.read(i.seg, at(HEADER + 16), 8)?;
        // The standard form: no compaction, header bytes 8–23 zero, no
        // component XCR0 does not enable.
        if xcomp_bv != 0 || reserved != 0 || xstate_bv & !self.state.xcr0 != 0 {
            return Err(Fault::gp(0));
        }
        // Everything is read (and checked) before anything changes.
        let mut legacy = [0u8; 160];
        if rfbm & xstate_bv & 1 != 0 {
            for (k, chunk) in legacy.chunks_mut(8).enumerate() {
                let v = self.read(i.seg, at(8 * k as u64), 8)?;
                chunk.copy_from_slice(&v.to_le_bytes());
            }
        }
        let mxcsr = if rfbm & 2 != 0 {
            let v = self.read(i.seg, at(24), 4)? as u32;
            if v & !0xffff != 0 {
                return Err(Fault::gp(0));
            }
            Some(v)
        } else {
            None
        };
        let count = if self.code_bits() == 64 { 16 } else { 8 };
        let mut xmm = self.state.xmm;
        if rfbm & 2 != 0 {
            for k in 0..count {
                xmm[k as usize] = if xstate_bv & 2 != 0 {
                    let low = self.read(i.seg, at(160 + 16 * k), 8)?;
                    let high = self.read(i.seg, at(168 + 16 * k), 8)?;
                    u128::from(low) | (u128::from(high) << 64)
                } else {
                    0
                };
            }
        }
        let pkru = match (rfbm & PKRU != 0, xstate_bv & PKRU != 0) {
            (false, _) => None,
            (true, true) => Some(self.read(i.seg, at(PKRU_AT), 4)? as u32),
            (true, false) => Some(0),
        };
        if rfbm & 1 != 0 {
            if xstate_bv & 1 != 0 {
                let wide = i.size == 8;
                self.fxrstor_x87(&legacy, wide);
            } else {
                self.state.x87 = X87State::INIT;
            }
        }
        self.state.xmm = xmm;
        if let Some(v) = mxcsr {
            self.state.mxcsr = v;
        }
        if let Some(v) = pkru {
            self.state.pkru = v;
        }
        Ok(())
    }
}
