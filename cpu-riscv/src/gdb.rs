//! A hart as gdb sees it: the RV64 target description (integer and FP
//! registers, fcsr, the main machine and supervisor CSRs and the privilege
//! level), gdb's register numbering, and the RISC-V monitor commands.

use std::sync::OnceLock;

use emu_core::debug::{DebugCpu, WatchKind};

use crate::hart::Hart;

/// The CSRs gdb sees, by number (in the order of their register numbers).
const CSRS: [(u16, &str); 14] = [
    (0x100, "sstatus"),
    (0x105, "stvec"),
    (0x141, "sepc"),
    (0x142, "scause"),
    (0x143, "stval"),
    (0x180, "satp"),
    (0x300, "mstatus"),
    (0x301, "misa"),
    (0x304, "mie"),
    (0x305, "mtvec"),
    (0x341, "mepc"),
    (0x342, "mcause"),
    (0x343, "mtval"),
    (0x344, "mip"),
];
/// gdb's RISC-V register numbers: x0-x31, pc, f0-f31, then CSR n at 65 + n, and
/// the virtual `priv` register after the CSR space.
const PC: usize = 32;
const F0: usize = 33;
const CSR_BASE: usize = 65;
const PRIV: usize = CSR_BASE + 4096;
const FFLAGS: u16 = 0x001;
const FRM: u16 = 0x002;
const FCSR: u16 = 0x003;
const SATP: u16 = 0x180;

const X_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];
const F_NAMES: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// The target description gdb reads (`qXfer:features:read`).
fn target_xml() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n<feature name=\"org.gnu.gdb.riscv.cpu\">\n",
        );
        for (i, name) in X_NAMES.iter().enumerate() {
            let ty = match i {
                2 => "data_ptr",
                _ => "int",
            };
            xml += &format!("<reg name=\"{name}\" bitsize=\"64\" type=\"{ty}\" regnum=\"{i}\"/>\n");
        }
        xml += &format!("<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"{PC}\"/>\n");
        xml += "</feature>\n<feature name=\"org.gnu.gdb.riscv.fpu\">\n";
        for (i, name) in F_NAMES.iter().enumerate() {
            xml += &format!(
                "<reg name=\"{name}\" bitsize=\"64\" type=\"ieee_double\" regnum=\"{}\"/>\n",
                F0 + i
            );
        }
        for (csr, name) in [(FFLAGS, "fflags"), (FRM, "frm"), (FCSR, "fcsr")] {
            xml += &format!(
                "<reg name=\"{name}\" bitsize=\"32\" type=\"int\" regnum=\"{}\"/>\n",
                CSR_BASE + usize::from(csr)
            );
        }
        xml += "</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n";
        for (csr, name) in CSRS {
            xml += &format!(
                "<reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>\n",
                CSR_BASE + usize::from(csr)
            );
        }
        xml += &format!(
            "</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n<reg name=\"priv\" bitsize=\"64\" type=\"int\" regnum=\"{PRIV}\"/>\n</feature>\n</target>\n"
        );
        xml
    })
}

/// A register by gdb's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    X(usize),
    Pc,
    F(usize),
    Csr(u16),
    Priv,
}

impl Reg {
    fn from_number(number: usize) -> Option<Reg> {
        Some(match number {
            0..=31 => Reg::X(number),
            PC => Reg::Pc,
            33..=64 => Reg::F(number - F0),
            PRIV => Reg::Priv,
            _ if (CSR_BASE..CSR_BASE + 4096).contains(&number) => {
                Reg::Csr((number - CSR_BASE) as u16)
            }
            _ => return None,
        })
    }

    /// Size in bytes in gdb's packets: the FP CSRs are 32 bits, the rest 64.
    fn size(self) -> usize {
        match self {
            Reg::Csr(FFLAGS | FRM | FCSR) => 4,
            _ => 8,
        }
    }
}

impl Hart {
    fn gdb_read_csr(&mut self, csr: u16) -> Option<u64> {
        let fcsr = self.state.fcsr;
        Some(match csr {
            FFLAGS => u64::from(fcsr & 0x1f),
            FRM => u64::from((fcsr >> 5) & 7),
            FCSR => u64::from(fcsr & 0xff),
            _ => crate::csr::debug_read(self, csr)?,
        })
    }

    fn gdb_read(&mut self, reg: Reg) -> Option<u64> {
        Some(match reg {
            Reg::X(i) => self.state.x[i],
            Reg::Pc => self.state.pc,
            Reg::F(i) => self.state.f[i],
            Reg::Priv => u64::from(self.state.privilege),
            Reg::Csr(csr) => self.gdb_read_csr(csr)?,
        })
    }
}

impl DebugCpu for Hart {
    fn target_xml(&self) -> &'static str {
        target_xml()
    }

    fn pc(&self) -> u64 {
        self.state.pc
    }

    fn read_registers(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let numbers = (0..=64)
            .chain([FFLAGS, FRM, FCSR].map(|c| CSR_BASE + usize::from(c)))
            .chain(CSRS.map(|(c, _)| CSR_BASE + usize::from(c)))
            .chain([PRIV]);
        for number in numbers {
            if let Some(reg) = Reg::from_number(number) {
                let value = self.gdb_read(reg).unwrap_or(0);
                bytes.extend_from_slice(&value.to_le_bytes()[..reg.size()]);
            }
        }
        bytes
    }

    fn write_registers(&mut self, bytes: &[u8]) -> bool {
        // x0-x31, pc and f0-f31 are 8 bytes each; a G packet may stop early.
        for (number, chunk) in bytes.chunks_exact(8).take(F0 + 32).enumerate() {
            self.write_register(number, chunk);
        }
        true
    }

    fn read_register(&mut self, number: usize) -> Option<Vec<u8>> {
        let reg = Reg::from_number(number)?;
        let value = self.gdb_read(reg)?;
        Some(value.to_le_bytes()[..reg.size()].to_vec())
    }

    fn write_register(&mut self, number: usize, bytes: &[u8]) -> bool {
        let Some(reg) = Reg::from_number(number) else {
            return false;
        };
        let mut raw = [0u8; 8];
        let n = bytes.len().min(8);
        raw[..n].copy_from_slice(&bytes[..n]);
        let value = u64::from_le_bytes(raw);
        let state = &mut self.state;
        match reg {
            Reg::X(0) => {}
            Reg::X(i) => state.x[i] = value,
            Reg::Pc => state.pc = value,
            Reg::F(i) => state.f[i] = value,
            Reg::Csr(FFLAGS) => state.fcsr = (state.fcsr & !0x1f) | (value as u32 & 0x1f),
            Reg::Csr(FRM) => state.fcsr = (state.fcsr & !0xe0) | ((value as u32 & 7) << 5),
            Reg::Csr(FCSR) => state.fcsr = value as u32 & 0xff,
            Reg::Csr(csr) => return crate::csr::debug_write(self, csr, value),
            // Through the hart, so it runs on the new level's TLB.
            Reg::Priv => match value {
                0 | 1 | 3 => self.set_privilege(value as u8),
                _ => return false,
            },
        }
        true
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        self.debug_read(addr, buf)
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> bool {
        self.debug_write(addr, data)
    }

    fn read_physical(&self, addr: u64, buf: &mut [u8]) -> usize {
        self.debug_read_phys(addr, buf)
    }

    fn insert_breakpoint(&mut self, pc: u64) {
        Hart::insert_breakpoint(self, pc);
    }

    fn remove_breakpoint(&mut self, pc: u64) -> bool {
        Hart::remove_breakpoint(self, pc)
    }

    fn insert_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) {
        Hart::insert_watchpoint(self, addr, len, kind);
    }

    fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        Hart::remove_watchpoint(self, addr, len, kind)
    }

    fn clear_debug(&mut self) {
        Hart::clear_debug(self);
    }

    fn resume_from_breakpoint(&mut self) {
        Hart::resume_from_breakpoint(self);
    }

    fn monitor_command(&mut self, words: &[&str]) -> Option<Vec<String>> {
        let ["info", "mmu", va] = words else {
            return None;
        };
        let Some(va) = parse_number(va) else {
            return Some(vec![format!("bad address '{va}'")]);
        };
        let satp = crate::csr::debug_read(self, SATP).unwrap_or(0);
        let mode = match satp >> 60 {
            0 => "bare",
            8 => "sv39",
            9 => "sv48",
            10 => "sv57",
            _ => "?",
        };
        let mut lines = vec![format!(
            "satp {satp:#x} ({mode}), privilege {}",
            self.state.privilege
        )];
        lines.push(match self.debug_translate(va) {
            Ok(pa) => format!("{va:#x} -> {pa:#x}"),
            Err(trap) => format!("{va:#x}: not mapped for reading ({trap:?})"),
        });
        Some(lines)
    }

    fn monitor_help(&self) -> Vec<String> {
        vec![
            "  info mmu VA               translate VA on this hart (satp, physical address)"
                .to_owned(),
        ]
    }
}

/// Parses a number in hex (0x...) or decimal.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use emu_core::GuestPhysAddr;
    use std::sync::Arc;

    use emu_core::{Bus, GuestRam, RunControl, VirtualClock};

    use super::*;

    fn hart() -> Hart {
        let ram = Arc::new(GuestRam::new(0x10000).unwrap());
        let bus = Arc::new(
            Bus::new(GuestPhysAddr(0x8000_0000), ram, Arc::new(RunControl::new())).unwrap(),
        );
        Hart::new(0, bus, Arc::new(VirtualClock::host(10_000_000)))
    }

    #[test]
    fn the_register_packet_follows_the_target_description() {
        let mut hart = hart();
        hart.state.x[10] = 0x1234;
        hart.state.pc = 0x8000_0000;
        hart.state.fcsr = 0xe3;
        let packet = hart.read_registers();
        // 65 64-bit registers, 3 32-bit FP CSRs, 14 CSRs and priv.
        assert_eq!(packet.len(), 65 * 8 + 3 * 4 + CSRS.len() * 8 + 8);
        assert_eq!(&packet[10 * 8..11 * 8], &0x1234u64.to_le_bytes());
        assert_eq!(&packet[PC * 8..PC * 8 + 8], &0x8000_0000u64.to_le_bytes());
        assert_eq!(&packet[65 * 8..65 * 8 + 4], &3u32.to_le_bytes(), "fflags");
        assert_eq!(
            hart.read_register(CSR_BASE + usize::from(FRM)),
            Some(7u32.to_le_bytes().to_vec())
        );
        assert!(
            target_xml().contains("regnum=\"4161\""),
            "priv at 65 + 4096"
        );
        // Registers by number, x0 staying zero and priv refusing reserved levels.
        assert!(hart.write_register(0, &[1; 8]));
        assert_eq!(hart.state.x[0], 0);
        assert!(hart.write_register(PC, &0x8000_0040u64.to_le_bytes()));
        assert_eq!(hart.state.pc, 0x8000_0040);
        assert!(!hart.write_register(PRIV, &2u64.to_le_bytes()));
        assert!(hart.read_register(PRIV + 1).is_none());
        // A short G packet writes what it reaches.
        assert!(hart.write_registers(&[0x11; 16]));
        assert_eq!(hart.state.x[1], 0x1111_1111_1111_1111);
        assert_eq!(hart.state.pc, 0x8000_0040);
    }
}
