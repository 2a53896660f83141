//! Control and status registers: numbers, access rules and WARL behaviour.

use crate::hart::{Hart, PRIV_M, PRIV_S, PRIV_U};
use crate::trap::{Trap, irq};

/// CSR numbers.
#[allow(missing_docs, reason = "names are the privileged spec's CSR names")]
pub mod num {
    pub const FFLAGS: u16 = 0x001;
    pub const FRM: u16 = 0x002;
    pub const FCSR: u16 = 0x003;
    pub const CYCLE: u16 = 0xc00;
    pub const TIME: u16 = 0xc01;
    pub const INSTRET: u16 = 0xc02;
    pub const SSTATUS: u16 = 0x100;
    pub const SIE: u16 = 0x104;
    pub const STVEC: u16 = 0x105;
    pub const SCOUNTEREN: u16 = 0x106;
    pub const SENVCFG: u16 = 0x10a;
    pub const SSCRATCH: u16 = 0x140;
    pub const SEPC: u16 = 0x141;
    pub const SCAUSE: u16 = 0x142;
    pub const STVAL: u16 = 0x143;
    pub const SIP: u16 = 0x144;
    pub const SATP: u16 = 0x180;
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MENVCFG: u16 = 0x30a;
    pub const MCOUNTINHIBIT: u16 = 0x320;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const PMPCFG0: u16 = 0x3a0;
    pub const PMPADDR0: u16 = 0x3b0;
    pub const TSELECT: u16 = 0x7a0;
    pub const TDATA1: u16 = 0x7a1;
    pub const TDATA2: u16 = 0x7a2;
    pub const TDATA3: u16 = 0x7a3;
    pub const TINFO: u16 = 0x7a4;
    pub const MCYCLE: u16 = 0xb00;
    pub const MINSTRET: u16 = 0xb02;
    pub const MVENDORID: u16 = 0xf11;
    pub const MARCHID: u16 = 0xf12;
    pub const MIMPID: u16 = 0xf13;
    pub const MHARTID: u16 = 0xf14;
    pub const MCONFIGPTR: u16 = 0xf15;
}

/// mstatus bits.
pub const MSTATUS_SIE: u64 = 1 << 1;
/// Machine interrupt enable.
pub const MSTATUS_MIE: u64 = 1 << 3;
/// Previous SIE.
pub const MSTATUS_SPIE: u64 = 1 << 5;
/// Previous MIE.
pub const MSTATUS_MPIE: u64 = 1 << 7;
/// Previous privilege for sret.
pub const MSTATUS_SPP: u64 = 1 << 8;
/// Previous privilege for mret (two bits).
pub const MSTATUS_MPP: u64 = 3 << 11;
/// FPU state (two bits).
pub const MSTATUS_FS: u64 = 3 << 13;
/// Modify privilege of loads and stores.
pub const MSTATUS_MPRV: u64 = 1 << 17;
/// Supervisor may access user pages.
pub const MSTATUS_SUM: u64 = 1 << 18;
/// Make executable pages readable.
pub const MSTATUS_MXR: u64 = 1 << 19;
/// Trap satp and sfence.vma in S-mode.
pub const MSTATUS_TVM: u64 = 1 << 20;
/// Trap wfi in lower modes.
pub const MSTATUS_TW: u64 = 1 << 21;
/// Trap sret in S-mode.
pub const MSTATUS_TSR: u64 = 1 << 22;
/// UXL and SXL fixed at 64 bits.
const MSTATUS_XLEN_FIELDS: u64 = (2 << 32) | (2 << 34);
/// State summary bit.
pub const MSTATUS_SD: u64 = 1 << 63;

const MSTATUS_WRITABLE: u64 = MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPP
    | MSTATUS_FS
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR;
const SSTATUS_MASK: u64 = MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_SPP
    | MSTATUS_FS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | (3 << 32)
    | MSTATUS_SD;
/// mstatus bits that affect address translation; changing them flushes the TLB.
const MSTATUS_TRANSLATION: u64 = MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_MPP;

/// Interrupts that exist on this hart.
const ALL_INTERRUPTS: u64 = (1 << irq::SSI)
    | (1 << irq::MSI)
    | (1 << irq::STI)
    | (1 << irq::MTI)
    | (1 << irq::SEI)
    | (1 << irq::MEI);
/// Supervisor-level interrupts (delegable and visible through sip/sie).
const S_INTERRUPTS: u64 = (1 << irq::SSI) | (1 << irq::STI) | (1 << irq::SEI);
/// mip bits software may write (MTIP, MSIP and MEIP are driven by devices).
const MIP_WRITABLE: u64 = S_INTERRUPTS;
/// sip bits S-mode may write.
const SIP_WRITABLE: u64 = 1 << irq::SSI;
/// Exceptions that may be delegated (not ecall from M).
const MEDELEG_MASK: u64 = 0xb3ff;

/// misa: RV64 with I, M, A, F, D, C, S and U.
pub const MISA: u64 = (2 << 62)
    | (1 << 0)  // A
    | (1 << 2)  // C
    | (1 << 3)  // D
    | (1 << 5)  // F
    | (1 << 8)  // I
    | (1 << 12) // M
    | (1 << 18) // S
    | (1 << 20); // U

impl Hart {
    /// Reads a CSR as an instruction would, checking privilege.
    pub(crate) fn csr_read(&mut self, csr: u16) -> Result<u64, Trap> {
        self.check_csr_privilege(csr)?;
        let s = &self.state;
        Ok(match csr {
            num::FFLAGS => {
                self.require_fp()?;
                u64::from(self.state.fcsr & 0x1f)
            }
            num::FRM => {
                self.require_fp()?;
                u64::from((self.state.fcsr >> 5) & 7)
            }
            num::FCSR => {
                self.require_fp()?;
                u64::from(self.state.fcsr & 0xff)
            }
            num::CYCLE | num::INSTRET => {
                self.check_counter(csr)?;
                self.state.instret
            }
            num::TIME => {
                self.check_counter(csr)?;
                self.clock.now()
            }
            0xc03..=0xc1f => {
                self.check_counter(csr)?;
                0
            }
            num::SSTATUS => self.mstatus_value() & SSTATUS_MASK,
            num::SIE => s.mie & s.mideleg & S_INTERRUPTS,
            num::STVEC => s.stvec,
            num::SCOUNTEREN => s.scounteren,
            num::SENVCFG => 0,
            num::SSCRATCH => s.sscratch,
            num::SEPC => s.sepc,
            num::SCAUSE => s.scause,
            num::STVAL => s.stval,
            num::SIP => self.mip_value() & s.mideleg & S_INTERRUPTS,
            num::SATP => {
                if self.state.privilege == PRIV_S && s.mstatus & MSTATUS_TVM != 0 {
                    return Err(Trap::illegal());
                }
                s.satp
            }
            num::MSTATUS => self.mstatus_value(),
            num::MISA => MISA,
            num::MEDELEG => s.medeleg,
            num::MIDELEG => s.mideleg,
            num::MIE => s.mie,
            num::MTVEC => s.mtvec,
            num::MCOUNTEREN => s.mcounteren,
            num::MENVCFG => 0,
            num::MCOUNTINHIBIT => 0,
            num::MSCRATCH => s.mscratch,
            num::MEPC => s.mepc,
            num::MCAUSE => s.mcause,
            num::MTVAL => s.mtval,
            num::MIP => self.mip_value(),
            0x3a0..=0x3af => {
                if csr & 1 != 0 {
                    return Err(Trap::illegal());
                }
                s.pmpcfg[usize::from((csr - num::PMPCFG0) / 2)]
            }
            0x3b0..=0x3ef => s.pmpaddr[usize::from(csr - num::PMPADDR0)],
            num::MCYCLE | num::MINSTRET => s.instret,
            0xb03..=0xb1f | 0x323..=0x33f => 0,
            num::MVENDORID | num::MARCHID | num::MIMPID | num::MCONFIGPTR => 0,
            num::MHARTID => s.hart_id,
            // Sdtrig with no triggers, as the debug spec allows: tselect holds
            // only 0, the trigger there has type 0 ("no trigger") and tinfo says
            // so with 1. Firmware and kernels probing for triggers find none.
            num::TSELECT | num::TDATA1 | num::TDATA2 | num::TDATA3 => 0,
            num::TINFO => 1,
            _ => return Err(Trap::illegal()),
        })
    }

    /// Writes a CSR as an instruction would (privilege and read-only already
    /// checked by [`Hart::csr_read`] or [`Hart::check_csr_write`]).
    pub(crate) fn csr_write(&mut self, csr: u16, value: u64) -> Result<(), Trap> {
        self.check_csr_write(csr)?;
        match csr {
            num::FFLAGS => {
                self.require_fp()?;
                self.state.fcsr = (self.state.fcsr & !0x1f) | (value as u32 & 0x1f);
                self.mark_fs_dirty();
            }
            num::FRM => {
                self.require_fp()?;
                self.state.fcsr = (self.state.fcsr & 0x1f) | ((value as u32 & 7) << 5);
                self.mark_fs_dirty();
            }
            num::FCSR => {
                self.require_fp()?;
                self.state.fcsr = value as u32 & 0xff;
                self.mark_fs_dirty();
            }
            num::SSTATUS => {
                let merged = (self.state.mstatus & !SSTATUS_MASK) | (value & SSTATUS_MASK);
                self.set_mstatus(merged);
            }
            num::SIE => {
                let mask = self.state.mideleg & S_INTERRUPTS;
                self.state.mie = (self.state.mie & !mask) | (value & mask);
                self.irq_check = true;
            }
            num::STVEC => self.state.stvec = value & !2,
            num::SCOUNTEREN => self.state.scounteren = value & 0xffff_ffff,
            num::SENVCFG => {}
            num::SSCRATCH => self.state.sscratch = value,
            num::SEPC => self.state.sepc = value & !1,
            num::SCAUSE => self.state.scause = value,
            num::STVAL => self.state.stval = value,
            num::SIP => {
                let mask = self.state.mideleg & SIP_WRITABLE;
                self.state.mip = (self.state.mip & !mask) | (value & mask);
                self.irq_check = true;
            }
            num::SATP => {
                if self.state.privilege == PRIV_S && self.state.mstatus & MSTATUS_TVM != 0 {
                    return Err(Trap::illegal());
                }
                let mode = value >> 60;
                // Unsupported modes leave satp unchanged (WARL).
                if matches!(mode, 0 | 8 | 9 | 10) {
                    // ASIDs are not implemented: ASIDLEN = 0.
                    self.state.satp = value & !(0xffff << 44);
                    self.flush_translations();
                }
            }
            num::MSTATUS => {
                let merged = (self.state.mstatus & !MSTATUS_WRITABLE) | (value & MSTATUS_WRITABLE);
                self.set_mstatus(merged);
            }
            num::MISA => {}
            num::MEDELEG => self.state.medeleg = value & MEDELEG_MASK,
            num::MIDELEG => {
                self.state.mideleg = value & S_INTERRUPTS;
                self.irq_check = true;
            }
            num::MIE => {
                self.state.mie = value & ALL_INTERRUPTS;
                self.irq_check = true;
            }
            num::MTVEC => self.state.mtvec = value & !2,
            num::MCOUNTEREN => self.state.mcounteren = value & 0xffff_ffff,
            num::MENVCFG | num::MCOUNTINHIBIT => {}
            num::MSCRATCH => self.state.mscratch = value,
            num::MEPC => self.state.mepc = value & !1,
            num::MCAUSE => self.state.mcause = value,
            num::MTVAL => self.state.mtval = value,
            num::MIP => {
                self.state.mip = (self.state.mip & !MIP_WRITABLE) | (value & MIP_WRITABLE);
                self.irq_check = true;
            }
            0x3a0..=0x3af => {
                if csr & 1 != 0 {
                    return Err(Trap::illegal());
                }
                self.state.pmpcfg[usize::from((csr - num::PMPCFG0) / 2)] = value;
            }
            0x3b0..=0x3ef => {
                self.state.pmpaddr[usize::from(csr - num::PMPADDR0)] = value & ((1 << 54) - 1);
            }
            num::MCYCLE | num::MINSTRET => self.state.instret = value,
            0xb03..=0xb1f | 0x323..=0x33f => {}
            // No triggers (see `csr_read`): every trigger register is WARL 0.
            num::TSELECT | num::TDATA1 | num::TDATA2 | num::TDATA3 => {}
            _ => return Err(Trap::illegal()),
        }
        Ok(())
    }

    /// Fails unless the current privilege may access `csr` at all.
    fn check_csr_privilege(&self, csr: u16) -> Result<(), Trap> {
        let required = ((csr >> 8) & 3) as u8;
        if self.state.privilege < required {
            return Err(Trap::illegal());
        }
        Ok(())
    }

    /// Fails for writes to read-only CSRs or without privilege.
    pub(crate) fn check_csr_write(&self, csr: u16) -> Result<(), Trap> {
        self.check_csr_privilege(csr)?;
        if (csr >> 10) & 3 == 3 {
            return Err(Trap::illegal());
        }
        Ok(())
    }

    /// Counter access from S/U needs the enable bits of the more privileged modes.
    fn check_counter(&self, csr: u16) -> Result<(), Trap> {
        let bit = 1u64 << (csr & 0x1f);
        let privilege = self.state.privilege;
        if privilege < PRIV_M && self.state.mcounteren & bit == 0 {
            return Err(Trap::illegal());
        }
        if privilege == PRIV_U && self.state.scounteren & bit == 0 {
            return Err(Trap::illegal());
        }
        Ok(())
    }

    /// mstatus with the read-only fields filled in.
    pub(crate) fn mstatus_value(&self) -> u64 {
        let mut value = self.state.mstatus | MSTATUS_XLEN_FIELDS;
        if value & MSTATUS_FS == MSTATUS_FS {
            value |= MSTATUS_SD;
        }
        value
    }

    /// mip as software sees it: the writable bits plus the device-driven lines.
    pub(crate) fn mip_value(&self) -> u64 {
        self.state.mip | self.pins.lines.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stores a new mstatus, legalising WARL fields and flushing what it affects.
    pub(crate) fn set_mstatus(&mut self, mut value: u64) {
        // MPP holds only implemented modes; the reserved value 2 becomes U.
        if (value & MSTATUS_MPP) >> 11 == 2 {
            value &= !MSTATUS_MPP;
        }
        value &= MSTATUS_WRITABLE;
        let old = self.state.mstatus;
        self.state.mstatus = value;
        if (old ^ value) & MSTATUS_TRANSLATION != 0 {
            self.flush_tlbs();
        }
        self.irq_check = true;
    }

    /// Fails with illegal instruction when the FPU is off (mstatus.FS = 0).
    #[inline]
    pub(crate) fn require_fp(&self) -> Result<(), Trap> {
        if self.state.mstatus & MSTATUS_FS == 0 {
            Err(Trap::illegal())
        } else {
            Ok(())
        }
    }

    /// Records that FP state changed (mstatus.FS = Dirty).
    #[inline]
    pub(crate) fn mark_fs_dirty(&mut self) {
        self.state.mstatus |= MSTATUS_FS;
    }
}

/// Privilege of an `xPP` field value, for display.
pub fn privilege_name(level: u8) -> &'static str {
    match level {
        PRIV_U => "U",
        PRIV_S => "S",
        PRIV_M => "M",
        _ => "?",
    }
}

/// Reads a CSR for a debugger: as M-mode would, whatever mode the hart is in.
pub fn debug_read(hart: &mut Hart, csr: u16) -> Option<u64> {
    let privilege = hart.state.privilege;
    hart.state.privilege = PRIV_M;
    let value = hart.csr_read(csr).ok();
    hart.state.privilege = privilege;
    value
}

/// Writes a CSR for a debugger, as M-mode would; false if it cannot be written.
pub fn debug_write(hart: &mut Hart, csr: u16, value: u64) -> bool {
    let privilege = hart.state.privilege;
    hart.state.privilege = PRIV_M;
    let done = hart.csr_write(csr, value).is_ok();
    hart.state.privilege = privilege;
    done
}
