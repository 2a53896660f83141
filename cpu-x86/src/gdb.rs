//! An x86 CPU as gdb sees it: the target description, the register packet
//! in gdb's own layouts, and the x86 monitor commands.
//!
//! gdb cannot change a target description in the middle of a session, and a
//! CPU changes modes under it (a PC boots in real mode). So the description
//! follows the CPU model, as QEMU's does: `qemu-system-x86_64` always
//! describes an amd64 CPU (`i386:x86-64`, 64-bit registers even in real
//! mode), `qemu-system-i386` an i386 one. A model with long mode
//! ([`Generation::X86_64`]) gets the amd64 description; the others (the
//! 286) get the i386 one, whose registers are 32 bits wide.
//!
//! The packet starts with gdb's own register order for the architecture
//! (the core registers, then SSE), so it reads the same as gdbserver's; what
//! follows is QEMU's extra system state: the FS and GS bases (in gdb's
//! `org.gnu.gdb.i386.segments` feature on amd64), the kernel GS base, CR0,
//! CR2, CR3, CR4, CR8 and EFER (CR0–CR4 only on i386).

use std::sync::OnceLock;

use emu_core::debug::{DebugCpu, WatchKind};

use crate::cpu::Cpu;
use crate::flags::mask;
use crate::model::Generation;
use crate::state::{SegReg, X87State, attrs, cr0, flags};

/// A register of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    /// General-purpose register by encoding number.
    Gpr(usize),
    Rip,
    Eflags,
    Seg(SegReg),
    /// ST(i), relative to TOP.
    St(usize),
    Fctrl,
    Fstat,
    Ftag,
    Fiseg,
    Fioff,
    Foseg,
    Fooff,
    Fop,
    Xmm(usize),
    Mxcsr,
    FsBase,
    GsBase,
    KernelGsBase,
    /// CRn.
    Cr(u8),
    Efer,
}

/// One register as the description lists it.
#[derive(Clone, Copy, Debug)]
struct RegInfo {
    reg: Reg,
    name: &'static str,
    bits: usize,
    ty: &'static str,
    group: Option<&'static str>,
    feature: &'static str,
}

/// The two layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Amd64,
    I386,
}

const CORE: &str = "org.gnu.gdb.i386.core";
const SSE: &str = "org.gnu.gdb.i386.sse";
const SEGMENTS: &str = "org.gnu.gdb.i386.segments";
/// gdb knows no feature for these; it shows them by name all the same.
const SYS: &str = "org.turing.i386.sys";

/// gdb's order of the general registers, by encoding number.
const AMD64_GPRS: [(usize, &str); 16] = [
    (0, "rax"),
    (3, "rbx"),
    (1, "rcx"),
    (2, "rdx"),
    (6, "rsi"),
    (7, "rdi"),
    (5, "rbp"),
    (4, "rsp"),
    (8, "r8"),
    (9, "r9"),
    (10, "r10"),
    (11, "r11"),
    (12, "r12"),
    (13, "r13"),
    (14, "r14"),
    (15, "r15"),
];
const I386_GPRS: [(usize, &str); 8] = [
    (0, "eax"),
    (1, "ecx"),
    (2, "edx"),
    (3, "ebx"),
    (4, "esp"),
    (5, "ebp"),
    (6, "esi"),
    (7, "edi"),
];
const SEGS: [(SegReg, &str); 6] = [
    (SegReg::Cs, "cs"),
    (SegReg::Ss, "ss"),
    (SegReg::Ds, "ds"),
    (SegReg::Es, "es"),
    (SegReg::Fs, "fs"),
    (SegReg::Gs, "gs"),
];
const ST: [&str; 8] = ["st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7"];
const XMM: [&str; 16] = [
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
    "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
];

/// The registers of `layout`, in packet order.
fn registers(layout: Layout) -> &'static [RegInfo] {
    static AMD64: OnceLock<Vec<RegInfo>> = OnceLock::new();
    static I386: OnceLock<Vec<RegInfo>> = OnceLock::new();
    let cell = match layout {
        Layout::Amd64 => &AMD64,
        Layout::I386 => &I386,
    };
    cell.get_or_init(|| build_registers(layout))
}

fn build_registers(layout: Layout) -> Vec<RegInfo> {
    let wide = layout == Layout::Amd64;
    let word = if wide { 64 } else { 32 };
    let mut regs = Vec::new();
    let mut add = |reg, name, bits, ty, group, feature| {
        regs.push(RegInfo {
            reg,
            name,
            bits,
            ty,
            group,
            feature,
        });
    };
    let gprs: &[(usize, &str)] = if wide { &AMD64_GPRS } else { &I386_GPRS };
    for &(n, name) in gprs {
        let ty = match (n, wide) {
            (4 | 5, _) => "data_ptr",
            (_, true) => "int64",
            (_, false) => "int32",
        };
        add(Reg::Gpr(n), name, word, ty, None, CORE);
    }
    let ip = if wide { "rip" } else { "eip" };
    add(Reg::Rip, ip, word, "code_ptr", None, CORE);
    add(Reg::Eflags, "eflags", 32, "i386_eflags", None, CORE);
    for (seg, name) in SEGS {
        add(Reg::Seg(seg), name, 32, "int32", None, CORE);
    }
    for (i, name) in ST.into_iter().enumerate() {
        add(Reg::St(i), name, 80, "i387_ext", None, CORE);
    }
    let fpu = [
        (Reg::Fctrl, "fctrl"),
        (Reg::Fstat, "fstat"),
        (Reg::Ftag, "ftag"),
        (Reg::Fiseg, "fiseg"),
        (Reg::Fioff, "fioff"),
        (Reg::Foseg, "foseg"),
        (Reg::Fooff, "fooff"),
        (Reg::Fop, "fop"),
    ];
    for (reg, name) in fpu {
        add(reg, name, 32, "int", Some("float"), CORE);
    }
    let xmms = if wide { 16 } else { 8 };
    for (i, name) in XMM.into_iter().take(xmms).enumerate() {
        add(Reg::Xmm(i), name, 128, "vec128", None, SSE);
    }
    add(Reg::Mxcsr, "mxcsr", 32, "i386_mxcsr", Some("vector"), SSE);
    // gdb 13 fails an internal assertion on an i386 description with the
    // segments feature; the bases go with the system registers there.
    let bases = if wide { SEGMENTS } else { SYS };
    add(Reg::FsBase, "fs_base", word, "int", None, bases);
    add(Reg::GsBase, "gs_base", word, "int", None, bases);
    if wide {
        add(
            Reg::KernelGsBase,
            "k_gs_base",
            64,
            "int",
            Some("system"),
            SYS,
        );
    }
    let crs: &[(u8, &str)] = if wide {
        &[(0, "cr0"), (2, "cr2"), (3, "cr3"), (4, "cr4"), (8, "cr8")]
    } else {
        &[(0, "cr0"), (2, "cr2"), (3, "cr3"), (4, "cr4")]
    };
    for &(n, name) in crs {
        add(Reg::Cr(n), name, word, "int", Some("system"), SYS);
    }
    if wide {
        add(Reg::Efer, "efer", 64, "int", Some("system"), SYS);
    }
    regs
}

/// Types the description uses beyond gdb's predefined ones.
fn type_definitions(feature: &str) -> &'static str {
    match feature {
        CORE => concat!(
            "<flags id=\"i386_eflags\" size=\"4\">\n",
            "<field name=\"CF\" start=\"0\" end=\"0\"/>\n",
            "<field name=\"\" start=\"1\" end=\"1\"/>\n",
            "<field name=\"PF\" start=\"2\" end=\"2\"/>\n",
            "<field name=\"AF\" start=\"4\" end=\"4\"/>\n",
            "<field name=\"ZF\" start=\"6\" end=\"6\"/>\n",
            "<field name=\"SF\" start=\"7\" end=\"7\"/>\n",
            "<field name=\"TF\" start=\"8\" end=\"8\"/>\n",
            "<field name=\"IF\" start=\"9\" end=\"9\"/>\n",
            "<field name=\"DF\" start=\"10\" end=\"10\"/>\n",
            "<field name=\"OF\" start=\"11\" end=\"11\"/>\n",
            "<field name=\"NT\" start=\"14\" end=\"14\"/>\n",
            "<field name=\"RF\" start=\"16\" end=\"16\"/>\n",
            "<field name=\"VM\" start=\"17\" end=\"17\"/>\n",
            "<field name=\"AC\" start=\"18\" end=\"18\"/>\n",
            "<field name=\"VIF\" start=\"19\" end=\"19\"/>\n",
            "<field name=\"VIP\" start=\"20\" end=\"20\"/>\n",
            "<field name=\"ID\" start=\"21\" end=\"21\"/>\n",
            "</flags>\n",
        ),
        SSE => concat!(
            "<vector id=\"v8bf16\" type=\"bfloat16\" count=\"8\"/>\n",
            "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n",
            "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n",
            "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n",
            "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n",
            "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n",
            "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n",
            "<union id=\"vec128\">\n",
            "<field name=\"v8_bfloat16\" type=\"v8bf16\"/>\n",
            "<field name=\"v4_float\" type=\"v4f\"/>\n",
            "<field name=\"v2_double\" type=\"v2d\"/>\n",
            "<field name=\"v16_int8\" type=\"v16i8\"/>\n",
            "<field name=\"v8_int16\" type=\"v8i16\"/>\n",
            "<field name=\"v4_int32\" type=\"v4i32\"/>\n",
            "<field name=\"v2_int64\" type=\"v2i64\"/>\n",
            "<field name=\"uint128\" type=\"uint128\"/>\n",
            "</union>\n",
            "<flags id=\"i386_mxcsr\" size=\"4\">\n",
            "<field name=\"IE\" start=\"0\" end=\"0\"/>\n",
            "<field name=\"DE\" start=\"1\" end=\"1\"/>\n",
            "<field name=\"ZE\" start=\"2\" end=\"2\"/>\n",
            "<field name=\"OE\" start=\"3\" end=\"3\"/>\n",
            "<field name=\"UE\" start=\"4\" end=\"4\"/>\n",
            "<field name=\"PE\" start=\"5\" end=\"5\"/>\n",
            "<field name=\"DAZ\" start=\"6\" end=\"6\"/>\n",
            "<field name=\"IM\" start=\"7\" end=\"7\"/>\n",
            "<field name=\"DM\" start=\"8\" end=\"8\"/>\n",
            "<field name=\"ZM\" start=\"9\" end=\"9\"/>\n",
            "<field name=\"OM\" start=\"10\" end=\"10\"/>\n",
            "<field name=\"UM\" start=\"11\" end=\"11\"/>\n",
            "<field name=\"PM\" start=\"12\" end=\"12\"/>\n",
            "<field name=\"FZ\" start=\"15\" end=\"15\"/>\n",
            "</flags>\n",
        ),
        _ => "",
    }
}

/// The target description of `layout`.
fn target_xml(layout: Layout) -> &'static str {
    static AMD64: OnceLock<String> = OnceLock::new();
    static I386: OnceLock<String> = OnceLock::new();
    let (cell, arch) = match layout {
        Layout::Amd64 => (&AMD64, "i386:x86-64"),
        Layout::I386 => (&I386, "i386"),
    };
    cell.get_or_init(|| {
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n<architecture>{arch}</architecture>\n"
        );
        let mut feature = "";
        for (number, r) in registers(layout).iter().enumerate() {
            if r.feature != feature {
                if !feature.is_empty() {
                    xml += "</feature>\n";
                }
                feature = r.feature;
                xml += &format!("<feature name=\"{feature}\">\n");
                xml += type_definitions(feature);
            }
            let group = r.group.map(|g| format!(" group=\"{g}\"")).unwrap_or_default();
            xml += &format!(
                "<reg name=\"{}\" bitsize=\"{}\" type=\"{}\" regnum=\"{number}\"{group}/>\n",
                r.name, r.bits, r.ty
            );
        }
        xml += "</feature>\n</target>\n";
        xml
    })
}

/// The 80 bits of an x87 register.
const EXT_MASK: u128 = (1 << 80) - 1;

/// The full two-bit tag of each physical register (as FSTENV stores it):
/// empty (3) unless in use, else zero (1), special (2: NaN, infinity,
/// denormal, unnormal) or valid (0), from its contents.
fn tag_word(x87: &X87State) -> u16 {
    (0..8).fold(0, |word, i| {
        let value = x87.regs[i];
        let exponent = (value >> 64) as u16 & 0x7fff;
        let significand = value as u64;
        let tag = if x87.used & (1 << i) == 0 {
            3
        } else if exponent == 0x7fff {
            2
        } else if exponent == 0 {
            if significand == 0 { 1 } else { 2 }
        } else if significand >> 63 == 0 {
            2
        } else {
            0
        };
        word | (tag << (2 * i))
    })
}

/// The RFLAGS bits a debugger may change (the rest are fixed or reserved).
const EFLAGS_WRITABLE: u64 =
    flags::WRITABLE_286 | flags::VM | flags::AC | flags::VIF | flags::VIP | flags::ID;

impl Cpu {
    fn layout(&self) -> Layout {
        match self.model().generation {
            Generation::X86_64 => Layout::Amd64,
            Generation::I286 => Layout::I386,
        }
    }

    fn gdb_read(&self, reg: Reg) -> u128 {
        let s = &self.state;
        let x87 = &s.x87;
        let value = match reg {
            Reg::Gpr(n) => s.gpr[n],
            Reg::Rip => s.rip,
            Reg::Eflags => s.rflags,
            Reg::Seg(seg) => u64::from(s.seg(seg).selector),
            Reg::St(i) => return x87.regs[(usize::from(x87.top) + i) % 8] & EXT_MASK,
            Reg::Fctrl => u64::from(x87.fcw),
            Reg::Fstat => u64::from(x87.status_word()),
            Reg::Ftag => u64::from(tag_word(x87)),
            Reg::Fiseg => u64::from(x87.fcs),
            Reg::Fioff => x87.fip,
            Reg::Foseg => u64::from(x87.fds),
            Reg::Fooff => x87.fdp,
            Reg::Fop => u64::from(x87.fop),
            Reg::Xmm(i) => return s.xmm[i],
            Reg::Mxcsr => u64::from(s.mxcsr),
            Reg::FsBase => s.seg(SegReg::Fs).base,
            Reg::GsBase => s.seg(SegReg::Gs).base,
            Reg::KernelGsBase => s.msr.kernel_gs_base,
            Reg::Cr(0) => s.cr0,
            Reg::Cr(2) => s.cr2,
            Reg::Cr(3) => s.cr3,
            Reg::Cr(4) => s.cr4,
            Reg::Cr(_) => s.cr8,
            Reg::Efer => s.efer,
        };
        u128::from(value)
    }

    /// Writes a register from gdb: `value` holds its `bits` low bits, and
    /// the bits above them (the upper half of a 64-bit register in the i386
    /// layout) stay. Writing the value a register has changes nothing, so a
    /// `G` packet that gives back what `g` read keeps hidden state (segment
    /// caches, the TLB) as it was.
    fn gdb_write(&mut self, reg: Reg, bits: usize, value: u128) -> bool {
        if self.gdb_read(reg) == value {
            return true;
        }
        let merge = |old: u64| {
            let m = if bits >= 64 {
                u64::MAX
            } else {
                mask((bits / 8) as u8)
            };
            (old & !m) | (value as u64 & m)
        };
        let v = value as u64;
        let s = &mut self.state;
        match reg {
            Reg::Gpr(n) => s.gpr[n] = merge(s.gpr[n]),
            Reg::Rip => s.rip = merge(s.rip),
            Reg::Eflags => s.rflags = (v & EFLAGS_WRITABLE) | flags::FIXED1,
            Reg::Seg(seg) => return self.debug_load_segment(seg, v as u16),
            Reg::St(i) => {
                let at = (usize::from(s.x87.top) + i) % 8;
                s.x87.regs[at] = value & EXT_MASK;
            }
            Reg::Fctrl => s.x87.fcw = v as u16,
            Reg::Fstat => s.x87.set_status_word(v as u16),
            Reg::Ftag => {
                s.x87.used = (0..8)
                    .filter(|i| (v >> (2 * i)) & 3 != 3)
                    .fold(0, |used, i| used | (1 << i));
            }
            Reg::Fiseg => s.x87.fcs = v as u16,
            Reg::Fioff => s.x87.fip = merge(s.x87.fip),
            Reg::Foseg => s.x87.fds = v as u16,
            Reg::Fooff => s.x87.fdp = merge(s.x87.fdp),
            Reg::Fop => s.x87.fop = v as u16 & 0x7ff,
            Reg::Xmm(i) => s.xmm[i] = value,
            Reg::Mxcsr => s.mxcsr = v as u32,
            Reg::FsBase => s.segs[SegReg::Fs as usize].base = merge(s.seg(SegReg::Fs).base),
            Reg::GsBase => s.segs[SegReg::Gs as usize].base = merge(s.seg(SegReg::Gs).base),
            Reg::KernelGsBase => s.msr.kernel_gs_base = v,
            // As MOV to CR and WRMSR would: the values they refuse are refused.
            Reg::Cr(n) => {
                let old = self.gdb_read(reg) as u64;
                return self.write_control_register(n, merge(old)).is_ok();
            }
            Reg::Efer => return self.write_msr(0xc000_0080, v).is_ok(),
        }
        true
    }

    /// Loads a segment register for a debugger writing its selector, as
    /// QEMU does: in real and virtual-8086 mode the base becomes selector *
    /// 16; in protected mode the descriptor is read from the GDT or LDT
    /// (without setting its accessed bit) into the hidden part. A selector
    /// whose descriptor cannot be read is refused, as is a null CS or SS.
    fn debug_load_segment(&mut self, seg: SegReg, selector: u16) -> bool {
        if self.real_mode() || self.state.rflags & flags::VM != 0 {
            self.state.load_real_segment(seg, selector);
            return true;
        }
        if selector & !3 == 0 {
            if matches!(seg, SegReg::Cs | SegReg::Ss) {
                return false;
            }
            self.state.segs[seg as usize] = crate::state::Segment {
                selector,
                ..Default::default()
            };
            return true;
        }
        let Some(descriptor) = self.debug_descriptor(selector) else {
            return false;
        };
        self.state.segs[seg as usize] =
            crate::system::Descriptor::from_low(descriptor).segment(selector);
        true
    }

    /// The 8-byte descriptor `selector` names in the GDT or LDT, read as a
    /// debugger reads.
    fn debug_descriptor(&self, selector: u16) -> Option<u64> {
        let index = u64::from(selector & !7);
        let table = if selector & 4 != 0 {
            let ldt = &self.state.ldtr;
            (ldt.attrs & attrs::P != 0).then_some((ldt.base, u64::from(ldt.limit)))?
        } else {
            (self.state.gdtr.base, u64::from(self.state.gdtr.limit))
        };
        if index + 7 > table.1 {
            return None;
        }
        let mut bytes = [0u8; 8];
        (self.debug_read(table.0.wrapping_add(index), &mut bytes) == 8)
            .then(|| u64::from_le_bytes(bytes))
    }

    /// The lines of `monitor info mmu VA`.
    fn info_mmu(&self, va: u64) -> Vec<String> {
        let s = &self.state;
        let mode = if s.cr0 & cr0::PG == 0 {
            "paging off"
        } else if self.long_mode() {
            "4-level paging"
        } else if s.cr4 & crate::mmu::cr4::PAE != 0 {
            "PAE paging"
        } else {
            "32-bit paging"
        };
        let mut lines = vec![format!("{mode}, cr3 {:#x}", s.cr3)];
        let walk = self.debug_walk(va);
        for level in &walk.levels {
            lines.push(match level.entry {
                Some(entry) => format!("  {:<5} at {:#x}: {entry:#x}", level.name, level.at),
                None => format!("  {:<5} at {:#x}: not in memory", level.name, level.at),
            });
        }
        lines.push(match walk.phys {
            Some(pa) => format!("{va:#x} -> {pa:#x}"),
            None => format!("{va:#x}: not mapped"),
        });
        lines
    }

    /// The lines of `monitor info registers`: the system state gdb's
    /// registers do not show.
    fn info_system_registers(&self) -> Vec<String> {
        let s = &self.state;
        let segment = |name: &str, seg: &crate::state::Segment| {
            format!(
                "{name:<4} {:04x} base {:016x} limit {:08x} attrs {:04x}",
                seg.selector, seg.base, seg.limit, seg.attrs
            )
        };
        let mut lines: Vec<String> = SegReg::ALL
            .iter()
            .zip(["es", "cs", "ss", "ds", "fs", "gs"])
            .map(|(&seg, name)| segment(name, s.seg(seg)))
            .collect();
        lines.push(segment("ldtr", &s.ldtr));
        lines.push(segment("tr", &s.tr));
        lines.push(format!(
            "gdtr base {:016x} limit {:08x}",
            s.gdtr.base, s.gdtr.limit
        ));
        lines.push(format!(
            "idtr base {:016x} limit {:08x}",
            s.idtr.base, s.idtr.limit
        ));
        lines.push(format!(
            "cr0 {:x} cr2 {:x} cr3 {:x} cr4 {:x} cr8 {:x} efer {:x}",
            s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer
        ));
        lines.push(format!(
            "dr0 {:x} dr1 {:x} dr2 {:x} dr3 {:x} dr6 {:x} dr7 {:x}",
            s.dr[0], s.dr[1], s.dr[2], s.dr[3], s.dr[6], s.dr[7]
        ));
        let cpl = s.seg(SegReg::Cs).selector & 3;
        let mode = if self.real_mode() {
            "real"
        } else if s.rflags & flags::VM != 0 {
            "virtual-8086"
        } else if self.long_mode() {
            "long"
        } else {
            "protected"
        };
        lines.push(format!("{mode} mode, CPL {cpl}"));
        lines
    }
}

impl DebugCpu for Cpu {
    fn target_xml(&self) -> &'static str {
        target_xml(self.layout())
    }

    fn pc(&self) -> u64 {
        self.state.rip
    }

    fn read_registers(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for r in registers(self.layout()) {
            bytes.extend_from_slice(&self.gdb_read(r.reg).to_le_bytes()[..r.bits / 8]);
        }
        bytes
    }

    fn write_registers(&mut self, bytes: &[u8]) -> bool {
        // The status word first: its TOP says which physical registers the
        // ST(i) before it in the packet are.
        let mut ok = true;
        for first in [true, false] {
            let mut at = 0;
            for r in registers(self.layout()) {
                let Some(chunk) = bytes.get(at..at + r.bits / 8) else {
                    break;
                };
                if first == (r.reg == Reg::Fstat) {
                    ok &= self.write_register_bytes(r, chunk);
                }
                at += r.bits / 8;
            }
        }
        ok
    }

    fn read_register(&mut self, number: usize) -> Option<Vec<u8>> {
        let r = registers(self.layout()).get(number)?;
        Some(self.gdb_read(r.reg).to_le_bytes()[..r.bits / 8].to_vec())
    }

    fn write_register(&mut self, number: usize, bytes: &[u8]) -> bool {
        match registers(self.layout()).get(number) {
            Some(r) => self.write_register_bytes(r, bytes),
            None => false,
        }
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
        Cpu::insert_breakpoint(self, pc);
    }

    fn remove_breakpoint(&mut self, pc: u64) -> bool {
        Cpu::remove_breakpoint(self, pc)
    }

    fn insert_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) {
        Cpu::insert_watchpoint(self, addr, len, kind);
    }

    fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        Cpu::remove_watchpoint(self, addr, len, kind)
    }

    fn clear_debug(&mut self) {
        Cpu::clear_debug(self);
    }

    fn resume_from_breakpoint(&mut self) {
        Cpu::resume_from_breakpoint(self);
    }

    fn monitor_command(&mut self, words: &[&str]) -> Option<Vec<String>> {
        match words {
            ["info", "mmu", va] => Some(match parse_number(va) {
                Some(va) => self.info_mmu(va),
                None => vec![format!("bad address '{va}'")],
            }),
            ["info", "registers"] => Some(self.info_system_registers()),
            _ => None,
        }
    }

    fn monitor_help(&self) -> Vec<String> {
        vec![
            "  info mmu VA               translate linear address VA through the page tables"
                .to_owned(),
            "  info registers            segment caches, descriptor tables, CRs, DRs".to_owned(),
        ]
    }
}

impl Cpu {
    fn write_register_bytes(&mut self, r: &RegInfo, bytes: &[u8]) -> bool {
        if bytes.len() != r.bits / 8 {
            return false;
        }
        let mut raw = [0u8; 16];
        raw[..bytes.len()].copy_from_slice(bytes);
        self.gdb_write(r.reg, r.bits, u128::from_le_bytes(raw))
    }
}

/// Parses a number in hex (0x...) or decimal.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests;
