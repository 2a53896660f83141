//! The register packet against gdb's own layouts, register writes, the tag
//! word, debugger memory through paging, and breakpoints and watchpoints on
//! small programs.

use std::sync::Arc;

use emu_core::debug::{DebugCpu, DebugStop, WatchKind};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

use super::*;
use crate::{CpuModel, RunExit};

fn cpu(model: CpuModel) -> Cpu {
    let ram = Arc::new(GuestRam::new(4 << 20).expect("RAM"));
    let bus = Bus::new(GuestPhysAddr(0), ram, Arc::new(RunControl::new())).expect("bus");
    Cpu::new(model, Arc::new(bus))
}

/// `gdb-multiarch -batch -ex 'set architecture i386:x86-64' -ex 'maint print
/// registers'`: names and sizes of gdb's amd64 registers, in its order.
const GDB_AMD64: &[(&str, usize)] = &[
    ("rax", 8),
    ("rbx", 8),
    ("rcx", 8),
    ("rdx", 8),
    ("rsi", 8),
    ("rdi", 8),
    ("rbp", 8),
    ("rsp", 8),
    ("r8", 8),
    ("r9", 8),
    ("r10", 8),
    ("r11", 8),
    ("r12", 8),
    ("r13", 8),
    ("r14", 8),
    ("r15", 8),
    ("rip", 8),
    ("eflags", 4),
    ("cs", 4),
    ("ss", 4),
    ("ds", 4),
    ("es", 4),
    ("fs", 4),
    ("gs", 4),
    ("st0", 10),
    ("st1", 10),
    ("st2", 10),
    ("st3", 10),
    ("st4", 10),
    ("st5", 10),
    ("st6", 10),
    ("st7", 10),
    ("fctrl", 4),
    ("fstat", 4),
    ("ftag", 4),
    ("fiseg", 4),
    ("fioff", 4),
    ("foseg", 4),
    ("fooff", 4),
    ("fop", 4),
    ("xmm0", 16),
    ("xmm1", 16),
    ("xmm2", 16),
    ("xmm3", 16),
    ("xmm4", 16),
    ("xmm5", 16),
    ("xmm6", 16),
    ("xmm7", 16),
    ("xmm8", 16),
    ("xmm9", 16),
    ("xmm10", 16),
    ("xmm11", 16),
    ("xmm12", 16),
    ("xmm13", 16),
    ("xmm14", 16),
    ("xmm15", 16),
    ("mxcsr", 4),
];

/// The same for `set architecture i386`.
const GDB_I386: &[(&str, usize)] = &[
    ("eax", 4),
    ("ecx", 4),
    ("edx", 4),
    ("ebx", 4),
    ("esp", 4),
    ("ebp", 4),
    ("esi", 4),
    ("edi", 4),
    ("eip", 4),
    ("eflags", 4),
    ("cs", 4),
    ("ss", 4),
    ("ds", 4),
    ("es", 4),
    ("fs", 4),
    ("gs", 4),
    ("st0", 10),
    ("st1", 10),
    ("st2", 10),
    ("st3", 10),
    ("st4", 10),
    ("st5", 10),
    ("st6", 10),
    ("st7", 10),
    ("fctrl", 4),
    ("fstat", 4),
    ("ftag", 4),
    ("fiseg", 4),
    ("fioff", 4),
    ("foseg", 4),
    ("fooff", 4),
    ("fop", 4),
    ("xmm0", 16),
    ("xmm1", 16),
    ("xmm2", 16),
    ("xmm3", 16),
    ("xmm4", 16),
    ("xmm5", 16),
    ("xmm6", 16),
    ("xmm7", 16),
    ("mxcsr", 4),
];

/// QEMU's system registers after gdb's, as this description adds them.
const AMD64_EXTRA: &[(&str, usize)] = &[
    ("fs_base", 8),
    ("gs_base", 8),
    ("k_gs_base", 8),
    ("cr0", 8),
    ("cr2", 8),
    ("cr3", 8),
    ("cr4", 8),
    ("cr8", 8),
    ("efer", 8),
];
const I386_EXTRA: &[(&str, usize)] = &[
    ("fs_base", 4),
    ("gs_base", 4),
    ("cr0", 4),
    ("cr2", 4),
    ("cr3", 4),
    ("cr4", 4),
];

/// The registers the target description lists: (name, bytes, regnum).
fn described(xml: &str) -> Vec<(String, usize, usize)> {
    xml.lines()
        .filter(|l| l.starts_with("<reg "))
        .map(|l| {
            let attr = |key: &str| {
                let start = l.find(&format!(" {key}=\"")).expect(key) + key.len() + 3;
                l[start..]
                    .split('"')
                    .next()
                    .expect("closing quote")
                    .to_owned()
            };
            let bits: usize = attr("bitsize").parse().expect("bitsize");
            (
                attr("name"),
                bits / 8,
                attr("regnum").parse().expect("regnum"),
            )
        })
        .collect()
}

#[test]
fn the_layouts_are_gdbs_own_then_the_system_registers() {
    for (model, gdb, extra, arch) in [
        (CpuModel::MAX, GDB_AMD64, AMD64_EXTRA, "i386:x86-64"),
        (CpuModel::I286, GDB_I386, I386_EXTRA, "<architecture>i386<"),
    ] {
        let mut cpu = cpu(model);
        let xml = DebugCpu::target_xml(&cpu);
        assert!(xml.contains(arch), "{xml}");
        let regs = described(xml);
        let expected: Vec<(&str, usize)> = gdb.iter().chain(extra).copied().collect();
        let got: Vec<(&str, usize)> = regs.iter().map(|(n, s, _)| (n.as_str(), *s)).collect();
        assert_eq!(got, expected, "{}", model.name);
        for (i, (_, _, regnum)) in regs.iter().enumerate() {
            assert_eq!(*regnum, i, "regnums in packet order");
        }
        let total: usize = expected.iter().map(|(_, s)| s).sum();
        assert_eq!(cpu.read_registers().len(), total, "{}", model.name);
        for (i, (_, size)) in expected.iter().enumerate() {
            assert_eq!(cpu.read_register(i).map(|r| r.len()), Some(*size));
        }
        assert!(cpu.read_register(expected.len()).is_none());
        // The features gdb validates are there, with the types gdb knows.
        for feature in [CORE, SSE] {
            assert!(xml.contains(&format!("<feature name=\"{feature}\">")));
        }
        assert!(xml.contains("<union id=\"vec128\">"));
    }
}

/// Byte offset of register `number` in the packet of `layout`.
fn offset(layout: Layout, number: usize) -> usize {
    registers(layout)[..number].iter().map(|r| r.bits / 8).sum()
}

fn number(layout: Layout, name: &str) -> usize {
    registers(layout)
        .iter()
        .position(|r| r.name == name)
        .expect(name)
}

#[test]
fn the_packet_holds_the_state_and_writes_back_unchanged() {
    let mut cpu = cpu(CpuModel::MAX);
    cpu.state = crate::CpuState::flat(64);
    for (i, r) in cpu.state.gpr.iter_mut().enumerate() {
        *r = 0x0111_0000_0000_0000u64.wrapping_mul(i as u64 + 1) + i as u64;
    }
    cpu.state.rip = 0x40_1234;
    cpu.state.rflags = 0x246;
    cpu.state.segs[SegReg::Fs as usize].base = 0x7fff_1000;
    cpu.state.msr.kernel_gs_base = 0xffff_8000_0000_0000;
    for (i, x) in cpu.state.xmm.iter_mut().enumerate() {
        *x = u128::MAX / 3 + i as u128;
    }
    cpu.state.mxcsr = 0x1fa0;
    // ST(0) is physical register 6: 1.0; ST(1) (R7) is zero; R0..R5 empty.
    cpu.state.x87.top = 6;
    cpu.state.x87.used = 0b1100_0000;
    cpu.state.x87.regs[6] = (0x3fffu128 << 64) | (1 << 63);
    cpu.state.x87.regs[7] = 0;
    cpu.state.x87.fsw = 0x0041;
    cpu.state.x87.fip = 0x1234_5678_9abc;
    cpu.state.x87.fop = 0x7ff;
    let packet = cpu.read_registers();
    let l = Layout::Amd64;
    let at = |name: &str| offset(l, number(l, name));
    let u64_at =
        |name: &str| u64::from_le_bytes(packet[at(name)..at(name) + 8].try_into().unwrap());
    let u32_at =
        |name: &str| u32::from_le_bytes(packet[at(name)..at(name) + 4].try_into().unwrap());
    // gdb's order, not the encoding's: rbx (3) is second, rsp (4) eighth.
    assert_eq!(u64_at("rbx"), cpu.state.gpr[3]);
    assert_eq!(u64_at("rsp"), cpu.state.gpr[4]);
    assert_eq!(u64_at("r15"), cpu.state.gpr[15]);
    assert_eq!(u64_at("rip"), 0x40_1234);
    assert_eq!(u32_at("eflags"), 0x246);
    assert_eq!(u32_at("cs"), 0x33);
    assert_eq!(u32_at("ds"), 0x2b);
    assert_eq!(u64_at("fs_base"), 0x7fff_1000);
    assert_eq!(u64_at("k_gs_base"), 0xffff_8000_0000_0000);
    assert_eq!(u64_at("efer"), cpu.state.efer);
    assert_eq!(
        &packet[at("st0")..at("st0") + 10],
        &[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]
    );
    assert_eq!(&packet[at("st1")..at("st1") + 10], &[0; 10]);
    assert_eq!(
        u32_at("fstat"),
        0x0041 | (6 << 11),
        "TOP in the status word"
    );
    // R7 zero (01), R6 valid (00), the rest empty (11).
    assert_eq!(u32_at("ftag"), 0x4fff);
    assert_eq!(u32_at("fioff"), 0x5678_9abc);
    assert_eq!(u32_at("fop"), 0x7ff);
    assert_eq!(u32_at("mxcsr"), 0x1fa0);
    let xmm15 = &packet[at("xmm15")..at("xmm15") + 16];
    assert_eq!(
        u128::from_le_bytes(xmm15.try_into().unwrap()),
        u128::MAX / 3 + 15
    );

    // A G packet of what g read changes nothing; onto a fresh CPU in the
    // same mode it carries every register over.
    let before = cpu.state.clone();
    assert!(cpu.write_registers(&packet));
    assert_eq!(cpu.state, before);
    let mut other = self::cpu(CpuModel::MAX);
    other.state = crate::CpuState::flat(64);
    assert!(other.write_registers(&packet));
    assert_eq!(other.state.gpr, before.gpr);
    assert_eq!(other.state.rip, before.rip);
    assert_eq!(other.state.xmm, before.xmm);
    assert_eq!(other.state.x87.used, before.x87.used);
    assert_eq!(other.read_registers(), packet);
}

#[test]
fn single_register_writes() {
    let mut cpu = cpu(CpuModel::MAX);
    let l = Layout::Amd64;
    // Real mode: a selector write moves the base.
    assert!(cpu.write_register(number(l, "ds"), &0x1234u32.to_le_bytes()));
    assert_eq!(cpu.state.seg(SegReg::Ds).base, 0x12340);
    assert!(cpu.write_register(number(l, "rcx"), &7u64.to_le_bytes()));
    assert_eq!(cpu.state.gpr[1], 7);
    assert!(
        !cpu.write_register(number(l, "rcx"), &[1, 2, 3]),
        "wrong size"
    );
    // ST(2) with TOP 7 is R1; ftag empties all but R1.
    cpu.state.x87.top = 7;
    let one = (0x3fffu128 << 64) | (1 << 63);
    assert!(cpu.write_register(number(l, "st2"), &one.to_le_bytes()[..10]));
    assert_eq!(cpu.state.x87.regs[1], one);
    assert!(cpu.write_register(number(l, "ftag"), &0xfff3u32.to_le_bytes()));
    assert_eq!(cpu.state.x87.used, 0b0000_0010);
    assert!(cpu.write_register(number(l, "fstat"), &(3u32 << 11).to_le_bytes()));
    assert_eq!(cpu.state.x87.top, 3);
    // Control registers go through MOV CR's checks: PG without PE is refused.
    assert!(!cpu.write_register(number(l, "cr0"), &0x8000_0000u64.to_le_bytes()));
    assert!(cpu.write_register(number(l, "cr3"), &0x5000u64.to_le_bytes()));
    assert_eq!(cpu.state.cr3, 0x5000);
    // Protected mode: the descriptor comes from the GDT.
    let gdt = 0x1000u64;
    let data = 0x00cf_9200_0000_ffffu64 | (0x12 << 32) | (0x34 << 56);
    cpu.debug_write_phys(gdt + 0x10, &data.to_le_bytes());
    cpu.state.gdtr.base = gdt;
    cpu.state.gdtr.limit = 0x17;
    cpu.state.cr0 |= cr0::PE;
    assert!(cpu.write_register(number(l, "es"), &0x10u32.to_le_bytes()));
    let es = *cpu.state.seg(SegReg::Es);
    assert_eq!(
        (es.selector, es.base, es.limit),
        (0x10, 0x3412_0000, 0xffff_ffff)
    );
    let mut descriptor = [0u8; 8];
    cpu.debug_read_phys(gdt + 0x10, &mut descriptor);
    assert_eq!(u64::from_le_bytes(descriptor), data, "no accessed bit set");
    assert!(
        !cpu.write_register(number(l, "ds"), &0x18u32.to_le_bytes()),
        "past the limit"
    );
    assert!(
        !cpu.write_register(number(l, "cs"), &0u32.to_le_bytes()),
        "null CS"
    );
    // The i386 layout of the 286: 32-bit registers.
    let mut small = self::cpu(CpuModel::I286);
    let i = Layout::I386;
    assert!(small.write_register(number(i, "eip"), &0x1234u32.to_le_bytes()));
    assert_eq!(small.state.rip, 0x1234);
    assert_eq!(
        small.read_register(number(i, "eip")),
        Some(0x1234u32.to_le_bytes().to_vec())
    );
}

#[test]
fn the_tag_word_follows_the_contents() {
    let mut x87 = X87State::INIT;
    x87.used = 0xff;
    x87.regs[0] = (0x3fffu128 << 64) | (1 << 63); // valid
    x87.regs[1] = 0; // zero
    x87.regs[2] = 0x7fffu128 << 64 | (1 << 63); // infinity: special
    x87.regs[3] = 1; // denormal: special
    x87.regs[4] = 0x3fffu128 << 64; // unnormal: special
    x87.regs[5] = 0x8000u128 << 64; // -0: zero
    x87.used = 0b0011_1111;
    assert_eq!(tag_word(&x87), 0b11_11_01_10_10_10_01_00);
}

/// 4-level paging with the linear page 0x4000_0000 on physical 0x20_3000;
/// everything else unmapped.
fn paged(cpu: &mut Cpu) {
    let entries: [(u64, u64); 4] = [
        (0x10_0000, 0x10_1000 | 7),
        (0x10_1000 + 8, 0x10_2000 | 7),
        (0x10_2000, 0x10_3000 | 7),
        (0x10_3000, 0x20_3000 | 3),
    ];
    for (at, entry) in entries {
        cpu.debug_write_phys(at, &entry.to_le_bytes());
    }
    cpu.state = crate::CpuState::flat(64);
    cpu.state.cr0 |= cr0::PG;
    cpu.state.cr4 |= crate::mmu::cr4::PAE;
    cpu.state.cr3 = 0x10_0000;
}

#[test]
fn memory_goes_through_paging_without_side_effects() {
    let mut cpu = cpu(CpuModel::MAX);
    paged(&mut cpu);
    assert!(cpu.write_memory(0x4000_0ffe, b"ab"));
    let mut buf = [0u8; 2];
    assert_eq!(cpu.debug_read_phys(0x20_3ffe, &mut buf), 2);
    assert_eq!(&buf, b"ab");
    // Up to the end of the mapped page, and not past it.
    let mut long = [0u8; 4];
    assert_eq!(cpu.read_memory(0x4000_0ffe, &mut long), 2);
    assert!(
        !cpu.write_memory(0x4000_0fff, b"xy"),
        "the next page is not mapped"
    );
    assert_eq!(cpu.debug_read_phys(0x20_3fff, &mut buf[..1]), 1);
    assert_eq!(buf[0], b'b', "nothing written");
    // No accessed bit, no CR2.
    let mut pte = [0u8; 8];
    cpu.debug_read_phys(0x10_3000, &mut pte);
    assert_eq!(u64::from_le_bytes(pte), 0x20_3000 | 3);
    assert_eq!(cpu.state.cr2, 0);
    let lines = cpu.monitor_command(&["info", "mmu", "0x40000123"]).unwrap();
    assert_eq!(lines[0], "4-level paging, cr3 0x100000");
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[5], "0x40000123 -> 0x203123");
    let lines = cpu.monitor_command(&["info", "mmu", "0x123"]).unwrap();
    assert_eq!(lines.last().unwrap(), "0x123: not mapped", "{lines:?}");
    assert!(cpu.monitor_command(&["info", "registers"]).unwrap()[1].starts_with("cs   0033"));
    assert!(cpu.monitor_command(&["info", "nothing"]).is_none());
}

/// Flat 64-bit code at 0x1000: mov [0x2000], eax; mov ebx, [0x2004];
/// push rax; inc ecx; jmp 0x1000.
fn looping() -> Cpu {
    let mut cpu = cpu(CpuModel::MAX);
    let code = [
        0x89, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00, // mov [0x2000], eax
        0x8b, 0x1c, 0x25, 0x04, 0x20, 0x00, 0x00, // mov ebx, [0x2004]
        0x50, // push rax
        0xff, 0xc1, // inc ecx
        0xeb, 0xed, // jmp 0x1000
    ];
    cpu.debug_write_phys(0x1000, &code);
    cpu.state = crate::CpuState::flat(64);
    cpu.state.rip = 0x1000;
    cpu.state.gpr[4] = 0x8000;
    cpu
}

#[test]
fn breakpoints_stop_before_and_resume_once() {
    let mut cpu = looping();
    cpu.insert_breakpoint(0x100f);
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.rip, 0x100f);
    assert_eq!(cpu.take_debug_stop(), Some(DebugStop::Breakpoint(0x100f)));
    assert_eq!(cpu.take_debug_stop(), None);
    assert_eq!(cpu.state.gpr[1], 0, "the INC has not run");
    // Stopping again without resuming: the breakpoint still holds.
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.rip, 0x100f);
    cpu.resume_from_breakpoint();
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.gpr[1], 1, "one lap");
    assert!(cpu.remove_breakpoint(0x100f));
    assert!(!cpu.remove_breakpoint(0x100f));
    cpu.resume_from_breakpoint();
    assert_eq!(cpu.run(50), RunExit::Budget);
    assert_eq!(cpu.state.gpr[1], 11);
    // A step runs exactly one instruction.
    let rip = cpu.state.rip;
    assert_eq!(cpu.debug_step(), RunExit::Budget);
    assert_ne!(cpu.state.rip, rip);
}

#[test]
fn watchpoints_stop_after_the_access() {
    let mut cpu = looping();
    cpu.insert_watchpoint(0x2002, 1, WatchKind::Write);
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.rip, 0x1007, "after the store");
    assert_eq!(
        cpu.take_debug_stop(),
        Some(DebugStop::Watchpoint {
            kind: WatchKind::Write,
            addr: 0x2002
        })
    );
    // A load of it does not stop a write watchpoint; the next lap's store does.
    cpu.resume_from_breakpoint();
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.rip, 0x1007);
    assert_eq!(cpu.state.gpr[1], 1);
    assert!(cpu.remove_watchpoint(0x2002, 1, WatchKind::Write));
    // Reads, and the stack through PUSH.
    cpu.insert_watchpoint(0x2004, 4, WatchKind::Read);
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.rip, 0x100e);
    assert_eq!(
        cpu.take_debug_stop(),
        Some(DebugStop::Watchpoint {
            kind: WatchKind::Read,
            addr: 0x2004
        })
    );
    cpu.clear_debug();
    let sp = cpu.state.gpr[4];
    cpu.insert_watchpoint(sp - 8, 8, WatchKind::Access);
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.state.rip, 0x100f);
    assert_eq!(
        cpu.take_debug_stop(),
        Some(DebugStop::Watchpoint {
            kind: WatchKind::Write,
            addr: sp - 8
        })
    );
    // Gone with the debugger.
    cpu.clear_debug();
    assert_eq!(cpu.run(100), RunExit::Budget);
}

#[test]
fn a_breakpoint_after_a_watched_store_still_stops() {
    let mut cpu = looping();
    cpu.insert_watchpoint(0x2000, 4, WatchKind::Write);
    cpu.insert_breakpoint(0x1007);
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert!(matches!(
        cpu.take_debug_stop(),
        Some(DebugStop::Watchpoint { .. })
    ));
    cpu.resume_from_breakpoint();
    assert_eq!(cpu.run(100), RunExit::Debug);
    assert_eq!(cpu.take_debug_stop(), Some(DebugStop::Breakpoint(0x1007)));
    assert_eq!(cpu.state.rip, 0x1007);
}
