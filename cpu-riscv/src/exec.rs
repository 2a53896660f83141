//! Instruction semantics: one arm per operation.

use std::sync::atomic::Ordering;

use crate::csr::{MSTATUS_TSR, MSTATUS_TVM, MSTATUS_TW};
use crate::decode::{Insn, Op};
use crate::fpu::{self, RoundingMode};
use crate::hart::{Hart, PRIV_M, PRIV_S, PRIV_U, RunExit};
use crate::mmu::Access;
use crate::trap::{Trap, cause};

const F32_BOX: u64 = 0xffff_ffff_0000_0000;

impl Hart {
    #[inline(always)]
    fn x(&self, r: u8) -> u64 {
        self.state.x[usize::from(r & 31)]
    }

    #[inline(always)]
    fn set_x(&mut self, r: u8, value: u64) {
        self.state.x[usize::from(r & 31)] = value;
        self.state.x[0] = 0;
    }

    #[inline(always)]
    fn f32(&self, r: u8) -> u32 {
        let v = self.state.f[usize::from(r & 31)];
        // A single-precision operand that is not NaN-boxed reads as the canonical NaN.
        if v & F32_BOX == F32_BOX {
            v as u32
        } else {
            fpu::F32_CANONICAL_NAN
        }
    }

    #[inline(always)]
    fn f64(&self, r: u8) -> u64 {
        self.state.f[usize::from(r & 31)]
    }

    #[inline(always)]
    fn set_f32(&mut self, r: u8, value: u32) {
        self.state.f[usize::from(r & 31)] = F32_BOX | u64::from(value);
        self.mark_fs_dirty();
    }

    #[inline(always)]
    fn set_f64(&mut self, r: u8, value: u64) {
        self.state.f[usize::from(r & 31)] = value;
        self.mark_fs_dirty();
    }

    #[inline(always)]
    fn accrue(&mut self, flags: u8) {
        if flags != 0 {
            self.state.fcsr |= u32::from(flags);
            self.mark_fs_dirty();
        }
    }

    /// The rounding mode of an FP instruction: its rm field, or frm when dynamic.
    fn rounding(&self, insn: &Insn) -> Result<RoundingMode, Trap> {
        let rm = if insn.rm == 7 {
            (self.state.fcsr >> 5) & 7
        } else {
            u32::from(insn.rm)
        };
        RoundingMode::from_bits(rm).ok_or(Trap::illegal())
    }

    #[inline(always)]
    fn branch(&mut self, insn: &Insn, taken: bool) {
        let pc = self.state.pc;
        self.state.pc = if taken {
            pc.wrapping_add(i64::from(insn.imm) as u64)
        } else {
            pc.wrapping_add(u64::from(insn.len))
        };
    }

    /// Executes one decoded instruction at the current pc.
    #[inline(always)]
    pub(crate) fn execute(&mut self, insn: Insn) -> Result<(), Trap> {
        use Op::*;
        let pc = self.state.pc;
        let next = pc.wrapping_add(u64::from(insn.len));
        let imm = i64::from(insn.imm) as u64;
        let rs1 = self.x(insn.rs1);
        let rs2 = self.x(insn.rs2);
        let (rd, sext32) = (insn.rd, |v: u64| i64::from(v as i32) as u64);
        match insn.op {
            Undecoded | Illegal => return Err(Trap::illegal()),
            Lui => self.set_x(rd, imm),
            Auipc => self.set_x(rd, pc.wrapping_add(imm)),
            Jal => {
                self.set_x(rd, next);
                self.state.pc = pc.wrapping_add(imm);
                return Ok(());
            }
            Jalr => {
                let target = rs1.wrapping_add(imm) & !1;
                self.set_x(rd, next);
                self.state.pc = target;
                return Ok(());
            }
            Beq => {
                self.branch(&insn, rs1 == rs2);
                return Ok(());
            }
            Bne => {
                self.branch(&insn, rs1 != rs2);
                return Ok(());
            }
            Blt => {
                self.branch(&insn, (rs1 as i64) < (rs2 as i64));
                return Ok(());
            }
            Bge => {
                self.branch(&insn, (rs1 as i64) >= (rs2 as i64));
                return Ok(());
            }
            Bltu => {
                self.branch(&insn, rs1 < rs2);
                return Ok(());
            }
            Bgeu => {
                self.branch(&insn, rs1 >= rs2);
                return Ok(());
            }
            Lb => {
                let v = self.load(rs1.wrapping_add(imm), 1)?;
                self.set_x(rd, i64::from(v as i8) as u64);
            }
            Lh => {
                let v = self.load(rs1.wrapping_add(imm), 2)?;
                self.set_x(rd, i64::from(v as i16) as u64);
            }
            Lw => {
                let v = self.load(rs1.wrapping_add(imm), 4)?;
                self.set_x(rd, sext32(v));
            }
            Ld => {
                let v = self.load(rs1.wrapping_add(imm), 8)?;
                self.set_x(rd, v);
            }
            Lbu => {
                let v = self.load(rs1.wrapping_add(imm), 1)?;
                self.set_x(rd, v);
            }
            Lhu => {
                let v = self.load(rs1.wrapping_add(imm), 2)?;
                self.set_x(rd, v);
            }
            Lwu => {
                let v = self.load(rs1.wrapping_add(imm), 4)?;
                self.set_x(rd, v);
            }
            Sb => self.store(rs1.wrapping_add(imm), 1, rs2)?,
            Sh => self.store(rs1.wrapping_add(imm), 2, rs2)?,
            Sw => self.store(rs1.wrapping_add(imm), 4, rs2)?,
            Sd => self.store(rs1.wrapping_add(imm), 8, rs2)?,
            Addi => self.set_x(rd, rs1.wrapping_add(imm)),
            Slti => self.set_x(rd, u64::from((rs1 as i64) < (imm as i64))),
            Sltiu => self.set_x(rd, u64::from(rs1 < imm)),
            Xori => self.set_x(rd, rs1 ^ imm),
            Ori => self.set_x(rd, rs1 | imm),
            Andi => self.set_x(rd, rs1 & imm),
            Slli => self.set_x(rd, rs1 << (imm & 63)),
            Srli => self.set_x(rd, rs1 >> (imm & 63)),
            Srai => self.set_x(rd, ((rs1 as i64) >> (imm & 63)) as u64),
            Add => self.set_x(rd, rs1.wrapping_add(rs2)),
            Sub => self.set_x(rd, rs1.wrapping_sub(rs2)),
            Sll => self.set_x(rd, rs1 << (rs2 & 63)),
            Slt => self.set_x(rd, u64::from((rs1 as i64) < (rs2 as i64))),
            Sltu => self.set_x(rd, u64::from(rs1 < rs2)),
            Xor => self.set_x(rd, rs1 ^ rs2),
            Srl => self.set_x(rd, rs1 >> (rs2 & 63)),
            Sra => self.set_x(rd, ((rs1 as i64) >> (rs2 & 63)) as u64),
            Or => self.set_x(rd, rs1 | rs2),
            And => self.set_x(rd, rs1 & rs2),
            Addiw => self.set_x(rd, sext32(rs1.wrapping_add(imm))),
            Slliw => self.set_x(rd, sext32(u64::from((rs1 as u32) << (imm & 31)))),
            Srliw => self.set_x(rd, sext32(u64::from((rs1 as u32) >> (imm & 31)))),
            Sraiw => self.set_x(rd, i64::from((rs1 as i32) >> (imm & 31)) as u64),
            Addw => self.set_x(rd, sext32(rs1.wrapping_add(rs2))),
            Subw => self.set_x(rd, sext32(rs1.wrapping_sub(rs2))),
            Sllw => self.set_x(rd, sext32(u64::from((rs1 as u32) << (rs2 & 31)))),
            Srlw => self.set_x(rd, sext32(u64::from((rs1 as u32) >> (rs2 & 31)))),
            Sraw => self.set_x(rd, i64::from((rs1 as i32) >> (rs2 & 31)) as u64),
            Fence => {
                if crate::decode::fence_needs_host_barrier(insn.imm) {
                    std::sync::atomic::fence(Ordering::SeqCst);
                }
            }
            FenceI => self.flush_code(),
            Ecall => {
                let code = match self.state.privilege {
                    PRIV_U => cause::ECALL_FROM_U,
                    PRIV_S => cause::ECALL_FROM_S,
                    _ => cause::ECALL_FROM_M,
                };
                return Err(Trap::new(code, 0));
            }
            // QEMU leaves xtval zero for breakpoints; the spec allows zero or the pc.
            Ebreak => return Err(Trap::new(cause::BREAKPOINT, 0)),
            Mret => {
                if self.state.privilege != PRIV_M {
                    return Err(Trap::illegal());
                }
                self.mret();
                return Ok(());
            }
            Sret => {
                let privilege = self.state.privilege;
                if privilege == PRIV_U
                    || (privilege == PRIV_S && self.state.mstatus & MSTATUS_TSR != 0)
                {
                    return Err(Trap::illegal());
                }
                self.sret();
                return Ok(());
            }
            Wfi => {
                let privilege = self.state.privilege;
                if privilege == PRIV_U
                    || (privilege == PRIV_S && self.state.mstatus & MSTATUS_TW != 0)
                {
                    return Err(Trap::illegal());
                }
                self.state.pc = next;
                if !self.wfi_wakeup_pending() {
                    self.exit = Some(RunExit::WaitForInterrupt);
                }
                return Ok(());
            }
            SfenceVma => {
                let privilege = self.state.privilege;
                if privilege == PRIV_U
                    || (privilege == PRIV_S && self.state.mstatus & MSTATUS_TVM != 0)
                {
                    return Err(Trap::illegal());
                }
                self.flush_translations();
            }
            Csrrw | Csrrs | Csrrc | Csrrwi | Csrrsi | Csrrci => {
                self.exec_csr(&insn, rs1)?;
                // CSR writes can enable interrupts or change translation.
                self.irq_check = true;
            }
            Mul => self.set_x(rd, rs1.wrapping_mul(rs2)),
            Mulh => self.set_x(
                rd,
                ((i128::from(rs1 as i64) * i128::from(rs2 as i64)) >> 64) as u64,
            ),
            Mulhsu => self.set_x(
                rd,
                ((i128::from(rs1 as i64) * i128::from(rs2)) >> 64) as u64,
            ),
            Mulhu => self.set_x(rd, ((u128::from(rs1) * u128::from(rs2)) >> 64) as u64),
            Div => {
                let (a, b) = (rs1 as i64, rs2 as i64);
                let q = if b == 0 { -1 } else { a.wrapping_div(b) };
                self.set_x(rd, q as u64);
            }
            Divu => self.set_x(rd, rs1.checked_div(rs2).unwrap_or(u64::MAX)),
            Rem => {
                let (a, b) = (rs1 as i64, rs2 as i64);
                let r = if b == 0 { a } else { a.wrapping_rem(b) };
                self.set_x(rd, r as u64);
            }
            Remu => self.set_x(rd, if rs2 == 0 { rs1 } else { rs1 % rs2 }),
            Mulw => self.set_x(rd, sext32(rs1.wrapping_mul(rs2))),
            Divw => {
                let (a, b) = (rs1 as i32, rs2 as i32);
                let q = if b == 0 { -1 } else { a.wrapping_div(b) };
                self.set_x(rd, i64::from(q) as u64);
            }
            Divuw => {
                let (a, b) = (rs1 as u32, rs2 as u32);
                let q = a.checked_div(b).unwrap_or(u32::MAX);
                self.set_x(rd, sext32(u64::from(q)));
            }
            Remw => {
                let (a, b) = (rs1 as i32, rs2 as i32);
                let r = if b == 0 { a } else { a.wrapping_rem(b) };
                self.set_x(rd, i64::from(r) as u64);
            }
            Remuw => {
                let (a, b) = (rs1 as u32, rs2 as u32);
                let r = if b == 0 { a } else { a % b };
                self.set_x(rd, sext32(u64::from(r)));
            }
            LrW | LrD | ScW | ScD | AmoSwapW | AmoAddW | AmoXorW | AmoAndW | AmoOrW | AmoMinW
            | AmoMaxW | AmoMinuW | AmoMaxuW | AmoSwapD | AmoAddD | AmoXorD | AmoAndD | AmoOrD
            | AmoMinD | AmoMaxD | AmoMinuD | AmoMaxuD => self.execute_atomic(&insn, rs1, rs2)?,
            _ => self.execute_fp(&insn, rs1)?,
        }
        self.state.pc = next;
        Ok(())
    }

    /// LR/SC and AMOs: aligned, on RAM, with host atomics so other harts see them.
    #[inline(never)]
    fn execute_atomic(&mut self, insn: &Insn, rs1: u64, rs2: u64) -> Result<(), Trap> {
        use Op::*;
        let rd = insn.rd;
        let sext32 = |v: u64| i64::from(v as i32) as u64;
        match insn.op {
            LrW | LrD => {
                let size = if insn.op == LrW { 4 } else { 8 };
                let off = self.atomic_offset(rs1, size, Access::Read)?;
                let value = if size == 4 {
                    sext32(u64::from(self.ram.read_u32(off).unwrap_or(0)))
                } else {
                    self.ram.read_u64(off).unwrap_or(0)
                };
                self.state.reservation = off;
                self.state.reservation_value = value;
                self.set_x(rd, value);
            }
            ScW | ScD => {
                let size = if insn.op == ScW { 4 } else { 8 };
                let off = self.atomic_offset(rs1, size, Access::Write)?;
                let ok = self.state.reservation == off && {
                    let expected = self.state.reservation_value;
                    if size == 4 {
                        self.ram.atomic_u32(off).is_some_and(|cell| {
                            cell.compare_exchange(
                                (expected as u32).to_le(),
                                (rs2 as u32).to_le(),
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        })
                    } else {
                        self.ram.atomic_u64(off).is_some_and(|cell| {
                            cell.compare_exchange(
                                expected.to_le(),
                                rs2.to_le(),
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        })
                    }
                };
                self.state.reservation = u64::MAX;
                self.set_x(rd, u64::from(!ok));
            }
            AmoSwapW | AmoAddW | AmoXorW | AmoAndW | AmoOrW | AmoMinW | AmoMaxW | AmoMinuW
            | AmoMaxuW => {
                let off = self.atomic_offset(rs1, 4, Access::Write)?;
                let cell = self
                    .ram
                    .atomic_u32(off)
                    .ok_or(Trap::new(cause::STORE_ACCESS_FAULT, rs1))?;
                let b = rs2 as u32;
                let old = u32::from_le(match insn.op {
                    AmoSwapW => cell.swap(b.to_le(), Ordering::AcqRel),
                    AmoAddW => cell
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                            Some(u32::from_le(a).wrapping_add(b).to_le())
                        })
                        .unwrap_or_else(|v| v),
                    AmoXorW => cell.fetch_xor(b.to_le(), Ordering::AcqRel),
                    AmoAndW => cell.fetch_and(b.to_le(), Ordering::AcqRel),
                    AmoOrW => cell.fetch_or(b.to_le(), Ordering::AcqRel),
                    _ => cell
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |raw| {
                            let a = u32::from_le(raw);
                            let r = match insn.op {
                                AmoMinW => (a as i32).min(b as i32) as u32,
                                AmoMaxW => (a as i32).max(b as i32) as u32,
                                AmoMinuW => a.min(b),
                                _ => a.max(b),
                            };
                            Some(r.to_le())
                        })
                        .unwrap_or_else(|v| v),
                });
                self.set_x(rd, sext32(u64::from(old)));
            }
            AmoSwapD | AmoAddD | AmoXorD | AmoAndD | AmoOrD | AmoMinD | AmoMaxD | AmoMinuD
            | AmoMaxuD => {
                let off = self.atomic_offset(rs1, 8, Access::Write)?;
                let cell = self
                    .ram
                    .atomic_u64(off)
                    .ok_or(Trap::new(cause::STORE_ACCESS_FAULT, rs1))?;
                let b = rs2;
                let old = u64::from_le(match insn.op {
                    AmoSwapD => cell.swap(b.to_le(), Ordering::AcqRel),
                    AmoXorD => cell.fetch_xor(b.to_le(), Ordering::AcqRel),
                    AmoAndD => cell.fetch_and(b.to_le(), Ordering::AcqRel),
                    AmoOrD => cell.fetch_or(b.to_le(), Ordering::AcqRel),
                    _ => cell
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |raw| {
                            let a = u64::from_le(raw);
                            let r = match insn.op {
                                AmoAddD => a.wrapping_add(b),
                                AmoMinD => (a as i64).min(b as i64) as u64,
                                AmoMaxD => (a as i64).max(b as i64) as u64,
                                AmoMinuD => a.min(b),
                                _ => a.max(b),
                            };
                            Some(r.to_le())
                        })
                        .unwrap_or_else(|v| v),
                });
                self.set_x(rd, old);
            }
            _ => return Err(Trap::illegal()),
        }
        Ok(())
    }

    #[inline(never)]
    fn exec_csr(&mut self, insn: &Insn, rs1: u64) -> Result<(), Trap> {
        use Op::*;
        let csr = insn.imm as u16 & 0xfff;
        let operand = match insn.op {
            Csrrwi | Csrrsi | Csrrci => u64::from(insn.rs1),
            _ => rs1,
        };
        match insn.op {
            Csrrw | Csrrwi => {
                self.check_csr_write(csr)?;
                let old = if insn.rd != 0 { self.csr_read(csr)? } else { 0 };
                self.csr_write(csr, operand)?;
                self.set_x(insn.rd, old);
            }
            _ => {
                let old = self.csr_read(csr)?;
                // rs1 = x0 (or a zero immediate) means no write at all.
                if insn.rs1 != 0 {
                    // Read-modify-write of mip uses only the software-writable SEIP
                    // bit, not the PLIC's line (privileged spec, mip): otherwise a
                    // `csrs mip, STIP` would latch a device interrupt forever.
                    let base = if csr == crate::csr::num::MIP {
                        let seip = 1 << crate::trap::irq::SEI;
                        (old & !seip) | (self.state.mip & seip)
                    } else {
                        old
                    };
                    let new = if matches!(insn.op, Csrrs | Csrrsi) {
                        base | operand
                    } else {
                        base & !operand
                    };
                    self.csr_write(csr, new)?;
                }
                self.set_x(insn.rd, old);
            }
        }
        Ok(())
    }

    #[inline(never)]
    fn execute_fp(&mut self, insn: &Insn, rs1: u64) -> Result<(), Trap> {
        use Op::*;
        self.require_fp()?;
        let rd = insn.rd;
        match insn.op {
            Flw => {
                let v = self.load(rs1.wrapping_add(i64::from(insn.imm) as u64), 4)?;
                self.set_f32(rd, v as u32);
            }
            Fld => {
                let v = self.load(rs1.wrapping_add(i64::from(insn.imm) as u64), 8)?;
                self.set_f64(rd, v);
            }
            Fsw => {
                let v = self.state.f[usize::from(insn.rs2 & 31)];
                self.store(rs1.wrapping_add(i64::from(insn.imm) as u64), 4, v)?;
            }
            Fsd => {
                let v = self.f64(insn.rs2);
                self.store(rs1.wrapping_add(i64::from(insn.imm) as u64), 8, v)?;
            }
            FsgnjS | FsgnjnS | FsgnjxS => {
                let (a, b) = (self.f32(insn.rs1), self.f32(insn.rs2));
                let sign = match insn.op {
                    FsgnjS => b,
                    FsgnjnS => !b,
                    _ => a ^ b,
                } & 0x8000_0000;
                self.set_f32(rd, (a & 0x7fff_ffff) | sign);
            }
            FsgnjD | FsgnjnD | FsgnjxD => {
                let (a, b) = (self.f64(insn.rs1), self.f64(insn.rs2));
                let sign = match insn.op {
                    FsgnjD => b,
                    FsgnjnD => !b,
                    _ => a ^ b,
                } & (1 << 63);
                self.set_f64(rd, (a & !(1 << 63)) | sign);
            }
            FmvXW => {
                let v = self.state.f[usize::from(insn.rs1 & 31)] as u32;
                self.set_x(rd, i64::from(v as i32) as u64);
            }
            FmvWX => self.set_f32(rd, rs1 as u32),
            FmvXD => {
                let v = self.f64(insn.rs1);
                self.set_x(rd, v);
            }
            FmvDX => self.set_f64(rd, rs1),
            FclassS => {
                let v = fpu::f32_classify(self.f32(insn.rs1));
                self.set_x(rd, v);
            }
            FclassD => {
                let v = fpu::f64_classify(self.f64(insn.rs1));
                self.set_x(rd, v);
            }
            FminS | FmaxS => {
                let (a, b) = (self.f32(insn.rs1), self.f32(insn.rs2));
                let (v, fl) = if insn.op == FminS {
                    fpu::f32_min(a, b)
                } else {
                    fpu::f32_max(a, b)
                };
                self.accrue(fl);
                self.set_f32(rd, v);
            }
            FminD | FmaxD => {
                let (a, b) = (self.f64(insn.rs1), self.f64(insn.rs2));
                let (v, fl) = if insn.op == FminD {
                    fpu::f64_min(a, b)
                } else {
                    fpu::f64_max(a, b)
                };
                self.accrue(fl);
                self.set_f64(rd, v);
            }
            FeqS | FltS | FleS => {
                let (a, b) = (self.f32(insn.rs1), self.f32(insn.rs2));
                let (v, fl) = match insn.op {
                    FeqS => fpu::f32_eq(a, b),
                    FltS => fpu::f32_lt(a, b),
                    _ => fpu::f32_le(a, b),
                };
                self.accrue(fl);
                self.set_x(rd, u64::from(v));
            }
            FeqD | FltD | FleD => {
                let (a, b) = (self.f64(insn.rs1), self.f64(insn.rs2));
                let (v, fl) = match insn.op {
                    FeqD => fpu::f64_eq(a, b),
                    FltD => fpu::f64_lt(a, b),
                    _ => fpu::f64_le(a, b),
                };
                self.accrue(fl);
                self.set_x(rd, u64::from(v));
            }
            _ => self.execute_fp_rounded(insn, rs1)?,
        }
        Ok(())
    }

    /// FP operations that take a rounding mode.
    fn execute_fp_rounded(&mut self, insn: &Insn, rs1: u64) -> Result<(), Trap> {
        use Op::*;
        let rm = self.rounding(insn)?;
        let rd = insn.rd;
        let (a32, b32, c32) = (self.f32(insn.rs1), self.f32(insn.rs2), self.f32(insn.rs3));
        let (a64, b64, c64) = (self.f64(insn.rs1), self.f64(insn.rs2), self.f64(insn.rs3));
        let sext32 = |v: u32| i64::from(v as i32) as u64;
        let (result, flags): (FpResult, u8) = match insn.op {
            FaddS => wrap32(fpu::f32_add(a32, b32, rm)),
            FsubS => wrap32(fpu::f32_sub(a32, b32, rm)),
            FmulS => wrap32(fpu::f32_mul(a32, b32, rm)),
            FdivS => wrap32(fpu::f32_div(a32, b32, rm)),
            FsqrtS => wrap32(fpu::f32_sqrt(a32, rm)),
            FmaddS => wrap32(fpu::f32_fma(a32, b32, c32, false, false, rm)),
            FmsubS => wrap32(fpu::f32_fma(a32, b32, c32, false, true, rm)),
            FnmsubS => wrap32(fpu::f32_fma(a32, b32, c32, true, false, rm)),
            FnmaddS => wrap32(fpu::f32_fma(a32, b32, c32, true, true, rm)),
            FaddD => wrap64(fpu::f64_add(a64, b64, rm)),
            FsubD => wrap64(fpu::f64_sub(a64, b64, rm)),
            FmulD => wrap64(fpu::f64_mul(a64, b64, rm)),
            FdivD => wrap64(fpu::f64_div(a64, b64, rm)),
            FsqrtD => wrap64(fpu::f64_sqrt(a64, rm)),
            FmaddD => wrap64(fpu::f64_fma(a64, b64, c64, false, false, rm)),
            FmsubD => wrap64(fpu::f64_fma(a64, b64, c64, false, true, rm)),
            FnmsubD => wrap64(fpu::f64_fma(a64, b64, c64, true, false, rm)),
            FnmaddD => wrap64(fpu::f64_fma(a64, b64, c64, true, true, rm)),
            FcvtSD => wrap32(fpu::f64_to_f32(a64, rm)),
            FcvtDS => wrap64(fpu::f32_to_f64(a32)),
            FcvtWS => int(fpu::f32_to_i32(a32, rm), sext32),
            FcvtWuS => int(fpu::f32_to_u32(a32, rm), sext32),
            FcvtLS => int64(fpu::f32_to_i64(a32, rm)),
            FcvtLuS => int64(fpu::f32_to_u64(a32, rm)),
            FcvtWD => int(fpu::f64_to_i32(a64, rm), sext32),
            FcvtWuD => int(fpu::f64_to_u32(a64, rm), sext32),
            FcvtLD => int64(fpu::f64_to_i64(a64, rm)),
            FcvtLuD => int64(fpu::f64_to_u64(a64, rm)),
            FcvtSW => wrap32(fpu::i32_to_f32(rs1 as u32, rm)),
            FcvtSWu => wrap32(fpu::u32_to_f32(rs1 as u32, rm)),
            FcvtSL => wrap32(fpu::i64_to_f32(rs1, rm)),
            FcvtSLu => wrap32(fpu::u64_to_f32(rs1, rm)),
            FcvtDW => wrap64(fpu::i32_to_f64(rs1 as u32, rm)),
            FcvtDWu => wrap64(fpu::u32_to_f64(rs1 as u32, rm)),
            FcvtDL => wrap64(fpu::i64_to_f64(rs1, rm)),
            FcvtDLu => wrap64(fpu::u64_to_f64(rs1, rm)),
            _ => return Err(Trap::illegal()),
        };
        match result {
            FpResult::Single(v) => self.set_f32(rd, v),
            FpResult::Double(v) => self.set_f64(rd, v),
            FpResult::Int(v) => self.set_x(rd, v),
        }
        self.accrue(flags);
        Ok(())
    }
}

enum FpResult {
    Single(u32),
    Double(u64),
    Int(u64),
}

fn wrap32((v, f): (u32, u8)) -> (FpResult, u8) {
    (FpResult::Single(v), f)
}

fn wrap64((v, f): (u64, u8)) -> (FpResult, u8) {
    (FpResult::Double(v), f)
}

fn int((v, f): (u32, u8), extend: impl Fn(u32) -> u64) -> (FpResult, u8) {
    (FpResult::Int(extend(v)), f)
}

fn int64((v, f): (u64, u8)) -> (FpResult, u8) {
    (FpResult::Int(v), f)
}
