//! The x86 interpreter against recorded silicon: every test of the
//! SingleStepTests 80286 real-mode set in `../shared/x86-conformance/80286`
//! (65,000 single instructions recorded on a Harris 80C286), run as its README
//! says, with the undefined flags masked as its `metadata.json` says.
//!
//! Prints pass/total for each opcode file and the first failures of each; fails
//! below 99.5 % overall.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cpu_x86::state::gpr;
use cpu_x86::{Cpu, CpuModel, RunExit, SegReg};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};
use tests::moo::{MooTest, read_moo_gz};

const TARGET: f64 = 0.995;

fn data_dir() -> PathBuf {
    tests::repo_root().join("../shared/x86-conformance/80286")
}

/// The FLAGS mask for a file `OP.MOO.gz` or `OP.R.MOO.gz`: bits that are
/// defined (all, when the metadata names no undefined flags).
fn flags_mask(metadata: &serde_json::Value, file: &str) -> u16 {
    let stem = file.trim_end_matches(".MOO.gz");
    let (op, reg) = match stem.split_once('.') {
        Some((op, reg)) => (op, Some(reg)),
        None => (stem, None),
    };
    let entry = &metadata["opcodes"][op];
    let entry = match reg {
        Some(reg) => &entry["reg"][reg],
        None => entry,
    };
    entry["flags-mask"].as_u64().map_or(0xffff, |m| m as u16)
}

struct Machine {
    cpu: Cpu,
    ram: Arc<GuestRam>,
}

impl Machine {
    /// 16 MiB of RAM at 0 (the 286's whole physical space) and nothing on the
    /// ports, so IN reads all ones.
    fn new() -> Machine {
        let ram = Arc::new(GuestRam::new(16 << 20).expect("16 MiB of guest RAM"));
        let bus = Bus::new(
            GuestPhysAddr(0),
            ram.clone(),
            Arc::new(RunControl::default()),
        )
        .expect("map RAM");
        let cpu = Cpu::new(CpuModel::I286, Arc::new(bus));
        Machine { cpu, ram }
    }

    /// Runs one test; `Err` describes every difference.
    fn run(&mut self, test: &MooTest, flags_mask: u16) -> Result<(), String> {
        let init = &test.initial.regs;
        let reg = |i: usize| u64::from(init[i].unwrap_or(0));
        self.cpu.reset();
        self.cpu.set_a20(true);
        let s = &mut self.cpu.state;
        for (i, r) in [gpr::AX, gpr::BX, gpr::CX, gpr::DX].into_iter().enumerate() {
            s.gpr[r] = reg(i);
        }
        for (i, seg) in [SegReg::Cs, SegReg::Ss, SegReg::Ds, SegReg::Es]
            .into_iter()
            .enumerate()
        {
            s.load_real_segment(seg, reg(4 + i) as u16);
        }
        for (i, r) in [gpr::SP, gpr::BP, gpr::SI, gpr::DI].into_iter().enumerate() {
            s.gpr[r] = reg(8 + i);
        }
        s.rip = reg(12);
        s.idtr.base = 0;
        // The README: the top four bits of the initial FLAGS are random and
        // cannot be set in real mode.
        self.cpu.write_flags(reg(13) & 0x0fff);
        for &(addr, value) in &test.initial.ram {
            self.ram.write_bytes(u64::from(addr), &[value]);
        }
        let exit = self.cpu.run(100_000);
        let mut problems = Vec::new();
        if exit != RunExit::Halted {
            problems.push(format!("ended with {exit:?}"));
        }
        let s = &self.cpu.state;
        let actual: [u64; 14] = [
            s.gpr[gpr::AX],
            s.gpr[gpr::BX],
            s.gpr[gpr::CX],
            s.gpr[gpr::DX],
            u64::from(s.seg(SegReg::Cs).selector),
            u64::from(s.seg(SegReg::Ss).selector),
            u64::from(s.seg(SegReg::Ds).selector),
            u64::from(s.seg(SegReg::Es).selector),
            s.gpr[gpr::SP],
            s.gpr[gpr::BP],
            s.gpr[gpr::SI],
            s.gpr[gpr::DI],
            s.rip,
            s.rflags,
        ];
        for (i, name) in tests::moo::REGISTERS.iter().enumerate() {
            let expected = test.last.regs[i].or(init[i]).unwrap_or(0);
            let (want, got) = if *name == "flags" {
                (expected & flags_mask, actual[i] as u16 & flags_mask)
            } else {
                (expected, actual[i] as u16)
            };
            if want != got || (*name != "flags" && actual[i] > 0xffff) {
                problems.push(format!("{name} {got:04x} want {want:04x}"));
            }
        }
        // The recorded FLAGS address is word-aligned; with an odd SP the word
        // was pushed one byte higher.
        let odd_sp = reg(8) & 1 == 1;
        let flags_at = test
            .exception
            .map(|e| e.flags_address + u32::from(odd_sp && e.flags_address & 1 == 0));
        for &(addr, want) in &test.last.ram {
            let mut got = [0u8];
            self.ram.read_bytes(u64::from(addr), &mut got);
            let mask = match flags_at {
                Some(at) if addr == at => flags_mask as u8,
                Some(at) if addr == at + 1 => (flags_mask >> 8) as u8,
                _ => 0xff,
            };
            if got[0] & mask != want & mask {
                problems.push(format!("[{addr:06x}] {:02x} want {want:02x}", got[0]));
            }
        }
        if let (false, Some(e)) = (problems.is_empty(), test.exception) {
            problems.push(format!("(the 286 took exception {})", e.vector));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join(", "))
        }
    }
}

fn revoked(dir: &Path) -> HashSet<String> {
    std::fs::read_to_string(dir.join("revocation_list.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn real_mode_286_matches_recorded_silicon() {
    let dir = data_dir();
    let metadata: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("metadata.json")).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the x86 conformance data must be in ../shared)",
                dir.display()
            )
        }),
    )
    .expect("metadata.json is JSON");
    let revoked = revoked(&dir);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the 80286 folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".MOO.gz"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 300,
        "expected 325 MOO files in {}",
        dir.display()
    );
    let mut machine = Machine::new();
    let (mut passed, mut total) = (0usize, 0usize);
    let mut failing = Vec::new();
    for file in &files {
        let tests = read_moo_gz(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let mask = flags_mask(&metadata, file);
        let mut file_passed = 0;
        let mut file_total = 0;
        let mut shown = 0;
        for test in tests.iter().filter(|t| !revoked.contains(&t.hash)) {
            file_total += 1;
            match machine.run(test, mask) {
                Ok(()) => file_passed += 1,
                Err(why) => {
                    if shown < 3 {
                        println!(
                            "  FAIL {file} #{} `{}` {:02x?}: {why}",
                            test.index, test.name, test.bytes
                        );
                        shown += 1;
                    }
                }
            }
        }
        println!("{file}: {file_passed}/{file_total}");
        if file_passed < file_total {
            failing.push(format!(
                "{} ({})",
                file.trim_end_matches(".MOO.gz"),
                file_total - file_passed
            ));
        }
        passed += file_passed;
        total += file_total;
    }
    let rate = passed as f64 / total as f64;
    println!(
        "80286 real mode: {passed}/{total} = {:.2} % (target {:.1} %)",
        rate * 100.0,
        TARGET * 100.0
    );
    println!("failing opcodes: {}", failing.join(" "));
    assert!(
        rate >= TARGET,
        "{:.2} % of the recorded 286 tests pass",
        rate * 100.0
    );
}
