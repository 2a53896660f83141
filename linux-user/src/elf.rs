//! Loading a riscv64 Linux ELF (and its `PT_INTERP` loader) into a process, and the
//! initial stack Linux builds: argc, argv, envp and the auxiliary vector.

use std::path::{Path, PathBuf};

use goblin::elf::Elf;
use goblin::elf::header::{ET_DYN, ET_EXEC};

use crate::arch::Arch;
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};

use crate::space::{
    PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_SPACE_SIZE, UserMemory, page_down, page_up,
};

/// Where a position-independent main program goes (two thirds of the space, as
/// Linux's ELF_ET_DYN_BASE).
pub const DYN_BASE: u64 = (USER_SPACE_SIZE / 3 * 2) & !0xffff;
/// Top of the stack area.
pub const STACK_TOP: u64 = USER_SPACE_SIZE - 0x1000_0000;
/// Stack size mapped up front (Linux's default 8 MiB limit).
pub const STACK_SIZE: u64 = 8 << 20;
/// Highest address `mmap` hands out by itself: below the stack and its gap.
pub const MMAP_TOP: u64 = STACK_TOP - STACK_SIZE - 0x1000_0000;

/// One loaded ELF image.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadedImage {
    /// Added to the file's addresses.
    pub bias: u64,
    /// Entry point.
    pub entry: u64,
    /// Address of the program headers in memory.
    pub phdr: u64,
    /// Number of program headers.
    pub phnum: u64,
    /// End of the highest segment.
    pub end: u64,
}

/// What `load_program` set up.
#[derive(Clone, Debug)]
pub struct Program {
    /// The main program.
    pub main: LoadedImage,
    /// The dynamic loader, for dynamically linked programs.
    pub interp: Option<LoadedImage>,
    /// The loader's path as found on the host.
    pub interp_path: Option<PathBuf>,
    /// Where the stack pointer starts.
    pub sp: u64,
    /// Where the heap (brk) starts.
    pub brk: u64,
}

/// Reads and checks an ELF: riscv64, little-endian, executable or shared object.
fn parse<'a>(bytes: &'a [u8], what: &Path, arch: &Arch) -> Result<Elf<'a>, String> {
    let name = what.display();
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(format!("{name}: not an ELF file"));
    }
    let elf = Elf::parse(bytes).map_err(|e| format!("{name}: malformed ELF: {e}"))?;
    if !elf.is_64 || !elf.little_endian {
        return Err(format!(
            "{name}: not a 64-bit little-endian ELF (turing user runs {} programs)",
            crate::supported()
        ));
    }
    if elf.header.e_machine != arch.elf_machine {
        return Err(format!(
            "{name}: wrong architecture {} (turing user runs {} programs)",
            goblin::elf::header::machine_to_str(elf.header.e_machine),
            crate::supported()
        ));
    }
    if elf.header.e_type != ET_EXEC && elf.header.e_type != ET_DYN {
        return Err(format!(
            "{name}: not an executable (ELF type {})",
            elf.header.e_type
        ));
    }
    for ph in &elf.program_headers {
        if ph.p_type == PT_LOAD
            && (ph
                .p_offset
                .checked_add(ph.p_filesz)
                .is_none_or(|end| end > bytes.len() as u64)
                || ph.p_filesz > ph.p_memsz)
        {
            return Err(format!(
                "{name}: truncated: a segment lies past the end of the file"
            ));
        }
    }
    Ok(elf)
}

/// The `e_machine` of a 64-bit little-endian ELF's first bytes (None for
/// anything else), to choose the architecture that runs it.
pub fn elf_machine(bytes: &[u8]) -> Option<u16> {
    (bytes.len() >= 20 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1)
        .then(|| u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// Maps one image's segments at `bias` (or, for a PIE/loader with `bias` None,
/// at a free place).
fn load_image(
    memory: &UserMemory,
    elf: &Elf<'_>,
    bytes: &[u8],
    bias: Option<u64>,
) -> Result<LoadedImage, String> {
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
        .collect();
    let Some(first) = loads.first() else {
        return Err("no loadable segments".to_owned());
    };
    let low = page_down(first.p_vaddr);
    let high = loads
        .iter()
        .map(|ph| ph.p_vaddr.saturating_add(ph.p_memsz))
        .max()
        .unwrap_or(0);
    let span = page_up(high).saturating_sub(low);
    let bias = match (elf.header.e_type, bias) {
        (ET_EXEC, _) => 0,
        (_, Some(bias)) => bias,
        (_, None) => memory
            .areas
            .find_free(span, 0x1_0000, MMAP_TOP)
            .ok_or("no room for the program")?
            .wrapping_sub(low),
    };
    if high
        .checked_add(bias)
        .is_none_or(|end| end > USER_SPACE_SIZE)
    {
        return Err("a segment lies outside the riscv64 user address space".to_owned());
    }
    for ph in &loads {
        let start = page_down(ph.p_vaddr + bias);
        let end = page_up(ph.p_vaddr + bias + ph.p_memsz);
        let mut prot = 0;
        if ph.p_flags & PF_R != 0 {
            prot |= PROT_READ;
        }
        if ph.p_flags & PF_W != 0 {
            prot |= PROT_WRITE;
        }
        if ph.p_flags & PF_X != 0 {
            prot |= PROT_EXEC;
        }
        // Segments may share a page: keep what an earlier one put there.
        let fresh_from = if memory.areas.prot_at(start).is_some() {
            start + PAGE
        } else {
            start
        };
        if end > fresh_from {
            memory.map_zeroed(fresh_from, end - fresh_from, prot);
        }
        if fresh_from > start {
            let old = memory.areas.prot_at(start).unwrap_or(0);
            memory.set_prot(start, PAGE, old | prot);
        }
        let file = &bytes[ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize];
        memory
            .poke(ph.p_vaddr + bias, file)
            .map_err(|_| "cannot place a segment".to_owned())?;
        // The bss part of the last file page.
        let zero_from = ph.p_vaddr + bias + ph.p_filesz;
        let zero_to = (ph.p_vaddr + bias + ph.p_memsz).min(page_up(zero_from));
        if zero_to > zero_from {
            memory
                .poke(zero_from, &vec![0; (zero_to - zero_from) as usize])
                .map_err(|_| "cannot clear the bss".to_owned())?;
        }
    }
    let phdr = elf
        .program_headers
        .iter()
        .find(|ph| ph.p_type == PT_PHDR)
        .map(|ph| ph.p_vaddr + bias)
        .or_else(|| {
            loads
                .iter()
                .find(|ph| {
                    ph.p_offset <= elf.header.e_phoff
                        && elf.header.e_phoff < ph.p_offset + ph.p_filesz
                })
                .map(|ph| ph.p_vaddr + bias + (elf.header.e_phoff - ph.p_offset))
        })
        .unwrap_or(0);
    Ok(LoadedImage {
        bias,
        entry: elf.header.e_entry.wrapping_add(bias),
        phdr,
        phnum: u64::from(elf.header.e_phnum),
        end: high + bias,
    })
}

/// Resolves a path the guest names inside `sysroot` (when given and the file is
/// there), as QEMU's `-L` does.
pub fn in_sysroot(sysroot: Option<&Path>, path: &Path) -> PathBuf {
    if let Some(root) = sysroot
        && path.is_absolute()
    {
        let inside = root.join(path.strip_prefix("/").unwrap_or(path));
        if inside.exists() || std::fs::symlink_metadata(&inside).is_ok() {
            return inside;
        }
    }
    path.to_owned()
}

/// Loads `path` (and its loader) and builds the initial stack.
pub fn load_program(
    arch: &Arch,
    memory: &UserMemory,
    path: &Path,
    sysroot: Option<&Path>,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    random: [u8; 16],
) -> Result<Program, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let elf = parse(&bytes, path, arch)?;
    let bias = (elf.header.e_type == ET_DYN).then_some(DYN_BASE);
    let main =
        load_image(memory, &elf, &bytes, bias).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut interp = None;
    let mut interp_path = None;
    if let Some(ph) = elf.program_headers.iter().find(|ph| ph.p_type == PT_INTERP) {
        let raw = bytes
            .get(ph.p_offset as usize..ph.p_offset.saturating_add(ph.p_filesz) as usize)
            .ok_or_else(|| format!("{}: truncated interpreter name", path.display()))?;
        let name =
            String::from_utf8_lossy(raw.split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
        let host = in_sysroot(sysroot, Path::new(&name));
        let loader = std::fs::read(&host).map_err(|e| {
            let hint = if sysroot.is_none() {
                " (give the riscv64 root with --sysroot DIR)"
            } else {
                ""
            };
            format!("{}: missing interpreter {name}: {e}{hint}", path.display())
        })?;
        let loader_elf = parse(&loader, &host, arch)?;
        interp = Some(
            load_image(memory, &loader_elf, &loader, None)
                .map_err(|e| format!("{}: {e}", host.display()))?,
        );
        interp_path = Some(host);
    }
    memory.map_zeroed(STACK_TOP - STACK_SIZE, STACK_SIZE, PROT_READ | PROT_WRITE);
    let execfn = path.as_os_str().as_encoded_bytes().to_vec();
    let contents = StackContents {
        argv,
        envp,
        execfn: &execfn,
        random,
    };
    let sp = build_stack(arch, memory, &main, interp.as_ref(), &contents)
        .map_err(|_| "the arguments do not fit on the stack".to_owned())?;
    Ok(Program {
        main,
        interp,
        interp_path,
        sp,
        brk: page_up(main.end),
    })
}

/// Auxiliary vector keys.
mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const EXECFN: u64 = 31;
}

/// What a new program's stack holds besides the auxiliary vector.
struct StackContents<'a> {
    argv: &'a [Vec<u8>],
    envp: &'a [Vec<u8>],
    /// AT_EXECFN's string: the program's path.
    execfn: &'a [u8],
    /// AT_RANDOM's 16 bytes.
    random: [u8; 16],
}

/// Lays out strings, then auxv/envp/argv/argc below them, 16-byte aligned.
fn build_stack(
    arch: &Arch,
    memory: &UserMemory,
    main: &LoadedImage,
    interp: Option<&LoadedImage>,
    contents: &StackContents<'_>,
) -> Result<u64, crate::space::Fault> {
    let StackContents {
        argv,
        envp,
        execfn,
        random,
    } = *contents;
    let mut top = STACK_TOP - 16;
    let push_bytes = |data: &[u8], top: &mut u64| -> Result<u64, crate::space::Fault> {
        *top -= data.len() as u64;
        memory.write(*top, data)?;
        Ok(*top)
    };
    let with_nul = |s: &[u8], top: &mut u64| {
        let mut v = s.to_vec();
        v.push(0);
        push_bytes(&v, top)
    };
    let execfn_at = with_nul(execfn, &mut top)?;
    let platform_at = with_nul(arch.name.as_bytes(), &mut top)?;
    let mut env_at = Vec::new();
    for e in envp.iter().rev() {
        env_at.push(with_nul(e, &mut top)?);
    }
    env_at.reverse();
    let mut arg_at = Vec::new();
    for a in argv.iter().rev() {
        arg_at.push(with_nul(a, &mut top)?);
    }
    arg_at.reverse();
    top &= !15;
    top -= 16;
    memory.write(top, &random)?;
    let random_at = top;
    let (uid, euid, gid, egid) = host_ids();
    let auxv: Vec<(u64, u64)> = vec![
        (at::PHDR, main.phdr),
        (at::PHENT, 56),
        (at::PHNUM, main.phnum),
        (at::PAGESZ, PAGE),
        (at::BASE, interp.map_or(0, |i| i.bias)),
        (at::FLAGS, 0),
        (at::ENTRY, main.entry),
        (at::UID, uid),
        (at::EUID, euid),
        (at::GID, gid),
        (at::EGID, egid),
        (at::PLATFORM, platform_at),
        (at::HWCAP, arch.hwcap),
        (at::CLKTCK, 100),
        (at::SECURE, 0),
        (at::RANDOM, random_at),
        (at::EXECFN, execfn_at),
        (at::NULL, 0),
    ];
    let words = 1 + arg_at.len() + 1 + env_at.len() + 1 + auxv.len() * 2;
    top -= words as u64 * 8;
    top &= !15;
    let mut table: Vec<u64> = Vec::with_capacity(words);
    table.push(arg_at.len() as u64);
    table.extend(&arg_at);
    table.push(0);
    table.extend(&env_at);
    table.push(0);
    for (key, value) in auxv {
        table.push(key);
        table.push(value);
    }
    let bytes: Vec<u8> = table.iter().flat_map(|w| w.to_le_bytes()).collect();
    memory.write(top, &bytes)?;
    Ok(top)
}

fn host_ids() -> (u64, u64, u64, u64) {
    // SAFETY: these libc calls take no arguments, touch no memory of ours and
    // cannot fail.
    unsafe {
        (
            u64::from(libc::getuid()),
            u64::from(libc::geteuid()),
            u64::from(libc::getgid()),
            u64::from(libc::getegid()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_riscv_and_truncated_files_are_refused() {
        let host = std::fs::read("/proc/self/exe").unwrap();
        let err = parse(&host, Path::new("host"), &crate::riscv64::RISCV64).unwrap_err();
        assert!(err.contains("wrong architecture"), "{err}");
        let err = parse(
            b"#!/bin/sh\n",
            Path::new("script"),
            &crate::riscv64::RISCV64,
        )
        .unwrap_err();
        assert!(err.contains("not an ELF"), "{err}");
        let err = parse(&host[..40], Path::new("cut"), &crate::riscv64::RISCV64).unwrap_err();
        assert!(
            err.contains("malformed") || err.contains("truncated"),
            "{err}"
        );
        assert_ne!(elf_machine(&host), Some(goblin::elf::header::EM_RISCV));
    }
}
