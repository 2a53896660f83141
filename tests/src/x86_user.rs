//! Running freestanding static x86-64 Linux programs on the interpreter: the
//! benchmark workloads, built with no C library, whose only system calls are
//! `write` and `exit`. Until `turing user` runs x86-64 programs, this is how
//! the interpreter meets the same binary QEMU's user mode and the host run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cpu_x86::state::gpr;
use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};

/// The guest's memory: the program, its data and the stack below 64 MiB.
const MEMORY: u64 = 64 << 20;
const STACK_TOP: u64 = MEMORY - 4096;

/// The x86-64 workloads (the riscv64 set but `fp`, whose fused multiply-adds
/// need the FMA extension).
pub const X86_WORKLOADS: [&str; 6] = [
    "crc32",
    "sort",
    "bytecode",
    "pointer_chase",
    "memops",
    "matmul",
];

/// Builds benchmark workload `name` as a static x86-64 program without a C
/// library (`small` sizes for the test suite).
pub fn build_x86_workload(name: &str, small: bool) -> PathBuf {
    crate::require_tool("cc");
    let root = crate::repo_root();
    let suffix = if small { "-small" } else { "" };
    let out = crate::build_dir("workloads").join(format!("{name}{suffix}.x86_64"));
    let status = Command::new("cc")
        .args(crate::WORKLOAD_FLAGS)
        .args(["-ffreestanding", "-nostdlib", "-static"])
        .args([
            "-fno-pie",
            "-no-pie",
            "-fno-stack-protector",
            "-Wl,--build-id=none",
        ])
        .args(small.then_some("-DSMALL"))
        .arg(root.join("benches/guest/start_x86_64.S"))
        .arg(root.join(format!("benches/guest/workloads/{name}.c")))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run the host compiler");
    assert!(status.success(), "building x86-64 workload {name} failed");
    out
}

/// How a program run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X86UserRun {
    /// Its exit status.
    pub exit_code: i32,
    /// What it wrote to standard output and error.
    pub output: Vec<u8>,
    /// Instructions it executed.
    pub instructions: u64,
}

/// Loads the static ELF at `path` and runs it for at most `limit`
/// instructions.
pub fn run_x86_static(path: &Path, limit: u64) -> Result<X86UserRun, String> {
    let image = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let elf = goblin::elf::Elf::parse(&image).map_err(|e| format!("{}: {e}", path.display()))?;
    let ram = Arc::new(GuestRam::new(MEMORY).map_err(|e| e.to_string())?);
    for ph in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
    {
        let end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .filter(|&e| e <= STACK_TOP - (1 << 20));
        if end.is_none() {
            return Err(format!(
                "{}: a segment lies outside the guest memory",
                path.display()
            ));
        }
        let file = image
            .get(ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize)
            .ok_or_else(|| format!("{}: a segment runs past the file", path.display()))?;
        ram.write_bytes(ph.p_vaddr, file);
    }
    let bus = Bus::new(GuestPhysAddr(0), ram.clone(), Arc::new(RunControl::new()))
        .map_err(|e| e.to_string())?;
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    cpu.state = CpuState::flat(64);
    cpu.set_user_syscalls(true);
    cpu.state.rip = elf.entry;
    // argc = 0, argv and envp empty, no auxiliary vector entries.
    cpu.state.gpr[gpr::SP] = STACK_TOP - 32;
    let mut output = Vec::new();
    loop {
        if cpu.executed() >= limit {
            return Err(format!("no exit after {limit} instructions"));
        }
        match cpu.run(1 << 20) {
            RunExit::Budget => {}
            RunExit::Syscall => {
                let nr = cpu.state.gpr[gpr::AX];
                let args = [
                    cpu.state.gpr[gpr::DI],
                    cpu.state.gpr[gpr::SI],
                    cpu.state.gpr[gpr::DX],
                ];
                let result = match nr {
                    // write(fd, buf, len)
                    1 => {
                        let mut buf = vec![0u8; args[2].min(1 << 20) as usize];
                        if ram.read_bytes(args[1], &mut buf) {
                            output.extend_from_slice(&buf);
                            buf.len() as u64
                        } else {
                            -14i64 as u64
                        }
                    }
                    // exit, exit_group
                    60 | 231 => {
                        return Ok(X86UserRun {
                            exit_code: args[0] as i32,
                            output,
                            instructions: cpu.executed(),
                        });
                    }
                    _ => -38i64 as u64,
                };
                cpu.state.gpr[gpr::AX] = result;
            }
            other => {
                let last = cpu.last_exception();
                return Err(format!(
                    "stopped with {other:?} at {:#x} (last exception {last:?})",
                    cpu.state.rip
                ));
            }
        }
    }
}
