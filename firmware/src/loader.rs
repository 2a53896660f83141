//! Loading guest program images: RISC-V ELF executables (segments at their
//! physical addresses, start at the entry point) and raw binaries (copied to a
//! fixed address and started there).

use std::path::{Path, PathBuf};

use goblin::elf::{Elf, header, program_header::PT_LOAD};
use thiserror::Error;

/// Why an image cannot be loaded. Each message names the file and the problem.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not something a machine can run.
    #[error("{path} is not a RISC-V program: {reason}")]
    NotAProgram {
        /// The file.
        path: PathBuf,
        /// What it seems to be instead.
        reason: String,
    },
    /// The image does not fit into guest RAM.
    #[error("{path} does not fit in guest RAM: {reason}")]
    DoesNotFit {
        /// The file.
        path: PathBuf,
        /// Which part and where RAM ends.
        reason: String,
    },
}

/// A piece of the image to copy into guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical load address.
    pub addr: u64,
    /// Bytes to copy.
    pub data: Vec<u8>,
    /// Size in memory; bytes past `data` are zero (bss).
    pub mem_size: u64,
}

/// A program ready to be copied into a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramImage {
    /// Segments to copy.
    pub segments: Vec<Segment>,
    /// Where execution starts.
    pub entry: u64,
}

impl ProgramImage {
    /// The first address past every segment.
    pub fn end(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.addr.saturating_add(s.mem_size))
            .max()
            .unwrap_or(0)
    }

    /// Checks that every segment lies inside `[ram_base, ram_base + ram_size)`.
    pub fn check_fits(&self, path: &Path, ram_base: u64, ram_size: u64) -> Result<(), LoadError> {
        let ram_end = ram_base + ram_size;
        for segment in &self.segments {
            let end = segment.addr.saturating_add(segment.mem_size);
            if segment.addr < ram_base || segment.addr >= ram_end {
                return Err(LoadError::DoesNotFit {
                    path: path.to_owned(),
                    reason: format!(
                        "segment at {:#x} is outside RAM [{ram_base:#x}, {ram_end:#x})",
                        segment.addr
                    ),
                });
            }
            if end > ram_end {
                return Err(LoadError::DoesNotFit {
                    path: path.to_owned(),
                    reason: format!(
                        "it needs memory up to {end:#x} but RAM ends at {ram_end:#x} (raise --memory)"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Reads a program file: an RV64 ELF executable, or raw code loaded at `raw_base`.
pub fn load_program(path: &Path, raw_base: u64) -> Result<ProgramImage, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_program(path, &bytes, raw_base)
}

/// Parses program bytes (see [`load_program`]); `path` is only used in messages.
pub fn parse_program(path: &Path, bytes: &[u8], raw_base: u64) -> Result<ProgramImage, LoadError> {
    let not_program = |reason: &str| LoadError::NotAProgram {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.starts_with(b"\x7fELF") {
        return parse_elf(path, bytes);
    }
    if bytes.is_empty() {
        return Err(not_program("the file is empty"));
    }
    if let Some(kind) = archive_kind(bytes) {
        return Err(not_program(&format!("it is {kind}")));
    }
    if looks_like_text(bytes) {
        return Err(not_program(
            "it is a text file, not an ELF executable or raw code",
        ));
    }
    Ok(ProgramImage {
        segments: vec![Segment {
            addr: raw_base,
            data: bytes.to_vec(),
            mem_size: bytes.len() as u64,
        }],
        entry: raw_base,
    })
}

fn archive_kind(bytes: &[u8]) -> Option<&'static str> {
    const KINDS: [(&[u8], &str); 5] = [
        (b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
        (b"\xfd7zXZ\0", "xz-compressed data (decompress it first)"),
        (b"BZh", "bzip2-compressed data (decompress it first)"),
        (b"PK\x03\x04", "a zip archive"),
        (b"#!", "a script"),
    ];
    KINDS
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, kind)| *kind)
}

/// Text files (a common mistake: passing a source file or a log) are all printable
/// ASCII or whitespace in their first bytes; machine code never is.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    head.iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b))
}

fn machine_name(machine: u16) -> String {
    match machine {
        header::EM_X86_64 => "x86-64".to_owned(),
        header::EM_386 => "i386".to_owned(),
        header::EM_AARCH64 => "AArch64".to_owned(),
        header::EM_ARM => "ARM".to_owned(),
        header::EM_MIPS => "MIPS".to_owned(),
        header::EM_PPC64 => "PowerPC64".to_owned(),
        other => format!("machine type {other}"),
    }
}

fn parse_elf(path: &Path, bytes: &[u8]) -> Result<ProgramImage, LoadError> {
    let not_program = |reason: String| LoadError::NotAProgram {
        path: path.to_owned(),
        reason,
    };
    let elf = Elf::parse(bytes).map_err(|e| not_program(format!("malformed ELF ({e})")))?;
    if elf.header.e_machine != header::EM_RISCV {
        return Err(not_program(format!(
            "it is an ELF for {}",
            machine_name(elf.header.e_machine)
        )));
    }
    if !elf.is_64 {
        return Err(not_program(
            "it is a 32-bit (RV32) ELF; riscv-virt runs RV64 programs".to_owned(),
        ));
    }
    if !elf.little_endian {
        return Err(not_program("it is a big-endian ELF".to_owned()));
    }
    let mut segments = Vec::new();
    for ph in elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz > 0)
    {
        let start = usize::try_from(ph.p_offset).ok();
        let len = usize::try_from(ph.p_filesz).ok();
        let data = match (start, len) {
            (Some(start), Some(len)) => {
                start.checked_add(len).and_then(|end| bytes.get(start..end))
            }
            _ => None,
        }
        .ok_or_else(|| {
            not_program(format!(
                "segment at {:#x} extends past the end of the file",
                ph.p_paddr
            ))
        })?;
        if ph.p_filesz > ph.p_memsz {
            return Err(not_program(format!(
                "segment at {:#x} has more file bytes than memory bytes",
                ph.p_paddr
            )));
        }
        segments.push(Segment {
            addr: ph.p_paddr,
            data: data.to_vec(),
            mem_size: ph.p_memsz,
        });
    }
    if segments.is_empty() {
        return Err(not_program("the ELF has no loadable segments".to_owned()));
    }
    Ok(ProgramImage {
        segments,
        entry: elf.entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("prog")
    }

    #[test]
    fn raw_code_loads_at_the_base() {
        let image = parse_program(path(), &[0x13, 0, 0, 0, 0x6f, 0, 0, 0], 0x8000_0000).unwrap();
        assert_eq!(image.entry, 0x8000_0000);
        assert_eq!(image.end(), 0x8000_0008);
        assert!(image.check_fits(path(), 0x8000_0000, 4096).is_ok());
    }

    #[test]
    fn rejects_text_compressed_and_empty_files() {
        for bytes in [&b"hello world\n"[..], b"\x1f\x8b\x08\0", b""] {
            let err = parse_program(path(), bytes, 0x8000_0000).unwrap_err();
            assert!(matches!(err, LoadError::NotAProgram { .. }), "{err}");
        }
    }

    #[test]
    fn rejects_malformed_elf() {
        let err = parse_program(path(), b"\x7fELF\x02\x01\x01garbage", 0).unwrap_err();
        assert!(err.to_string().contains("malformed ELF"), "{err}");
    }

    #[test]
    fn images_that_do_not_fit() {
        let image = ProgramImage {
            segments: vec![Segment {
                addr: 0x8000_0000,
                data: vec![],
                mem_size: 0x20_0000,
            }],
            entry: 0x8000_0000,
        };
        let err = image
            .check_fits(path(), 0x8000_0000, 0x10_0000)
            .unwrap_err();
        assert!(err.to_string().contains("raise --memory"), "{err}");
        let low = ProgramImage {
            segments: vec![Segment {
                addr: 0x1000,
                data: vec![1],
                mem_size: 1,
            }],
            entry: 0x1000,
        };
        assert!(low.check_fits(path(), 0x8000_0000, 0x10_0000).is_err());
    }
}
