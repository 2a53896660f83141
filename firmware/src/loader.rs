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

/// What kind of file an image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// An ELF executable.
    Elf,
    /// A RISC-V Linux kernel `Image` (boots in S-mode under SBI firmware).
    LinuxImage,
    /// Raw code.
    Raw,
}

/// A program ready to be copied into a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramImage {
    /// Segments to copy.
    pub segments: Vec<Segment>,
    /// Where execution starts.
    pub entry: u64,
    /// What the file was.
    pub kind: ImageKind,
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

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads a program file: an RV64 ELF executable, a RISC-V Linux `Image` (placed
/// at `ram_base` plus its text offset), or raw code loaded at `raw_base`.
pub fn load_program(path: &Path, ram_base: u64, raw_base: u64) -> Result<ProgramImage, LoadError> {
    parse_program(path, &read_file(path)?, ram_base, raw_base)
}

/// Whether `bytes` start with a RISC-V Linux `Image` header.
pub fn is_linux_image(bytes: &[u8]) -> bool {
    bytes.len() >= IMAGE_HEADER_LEN
        && &bytes[IMAGE_MAGIC2_OFFSET..IMAGE_MAGIC2_OFFSET + 4] == b"RSC\x05"
}

/// The privilege a program expects to start in: M-mode as the machine comes out
/// of reset, or S-mode behind SBI firmware (as Linux and U-Boot's S-mode build do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Start at reset in M-mode, with nothing else loaded.
    Machine,
    /// Start in S-mode, entered from SBI firmware.
    Supervisor,
}

/// How many instructions of raw code [`start_mode`] reads before it decides.
const START_MODE_SCAN: usize = 64;

/// The privilege `bytes` expects to start in, when no firmware was named:
/// - a Linux `Image` (by its header): S-mode;
/// - an ELF: S-mode when all of it is linked at or above `payload_base` (where
///   firmware places its payload: a program linked at the start of RAM owns the
///   machine), M-mode otherwise;
/// - raw code: the first CSR its first instructions access decides: a
///   supervisor CSR (0x100-0x1ff) means S-mode; a machine CSR, or none, M-mode.
pub fn start_mode(bytes: &[u8], payload_base: u64) -> StartMode {
    if is_linux_image(bytes) {
        return StartMode::Supervisor;
    }
    if bytes.starts_with(b"\x7fELF") {
        let lowest = Elf::parse(bytes).ok().and_then(|elf| {
            elf.program_headers
                .iter()
                .filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz > 0)
                .map(|ph| ph.p_paddr)
                .min()
        });
        return match lowest {
            Some(lowest) if lowest >= payload_base => StartMode::Supervisor,
            _ => StartMode::Machine,
        };
    }
    match first_csr(bytes) {
        Some(csr) if (0x100..0x200).contains(&csr) => StartMode::Supervisor,
        _ => StartMode::Machine,
    }
}

/// The CSR number of the first Zicsr instruction among the first
/// [`START_MODE_SCAN`] instructions of raw code, stepping over compressed ones.
fn first_csr(bytes: &[u8]) -> Option<u16> {
    let mut at = 0;
    for _ in 0..START_MODE_SCAN {
        let low = u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?);
        if low & 3 != 3 {
            at += 2;
            continue;
        }
        let word = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        let (opcode, funct3) = (word & 0x7f, (word >> 12) & 7);
        if opcode == 0x73 && funct3 != 0 && funct3 != 4 {
            return Some((word >> 20) as u16);
        }
        at += 4;
    }
    None
}

/// Offset of the RISC-V Image header's `magic2` field ("RSC\x05").
const IMAGE_MAGIC2_OFFSET: usize = 0x38;
const IMAGE_HEADER_LEN: usize = 0x40;

/// Parses program bytes (see [`load_program`]); `path` is only used in messages.
/// A RISC-V Linux `Image` is recognised by its header and placed at `ram_base`
/// plus the header's text offset, reserving its full image size (bss included).
pub fn parse_program(
    path: &Path,
    bytes: &[u8],
    ram_base: u64,
    raw_base: u64,
) -> Result<ProgramImage, LoadError> {
    let not_program = |reason: &str| LoadError::NotAProgram {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.starts_with(b"\x7fELF") {
        return parse_elf(path, bytes);
    }
    if let Some(image) = parse_linux_image(bytes, ram_base) {
        return Ok(image);
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
        kind: ImageKind::Raw,
    })
}

/// The RISC-V Linux boot image header (Documentation/arch/riscv/boot-image-header):
/// text offset at 8, image size at 16, "RSC\x05" at 0x38. `ram_base` is the start of
/// RAM; the kernel goes `text_offset` above it.
fn parse_linux_image(bytes: &[u8], ram_base: u64) -> Option<ProgramImage> {
    if !is_linux_image(bytes) {
        return None;
    }
    let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let text_offset = field(8);
    let image_size = field(16).max(bytes.len() as u64);
    let addr = ram_base.checked_add(text_offset)?;
    Some(ProgramImage {
        segments: vec![Segment {
            addr,
            data: bytes.to_vec(),
            mem_size: image_size,
        }],
        entry: addr,
        kind: ImageKind::LinuxImage,
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
        kind: ImageKind::Elf,
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
        let image = parse_program(
            path(),
            &[0x13, 0, 0, 0, 0x6f, 0, 0, 0],
            0x8000_0000,
            0x8000_0000,
        )
        .unwrap();
        assert_eq!(image.entry, 0x8000_0000);
        assert_eq!(image.end(), 0x8000_0008);
        assert!(image.check_fits(path(), 0x8000_0000, 4096).is_ok());
    }

    #[test]
    fn start_mode_follows_the_first_csr_of_raw_code() {
        let words =
            |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_le_bytes()).collect() };
        // c.mv tp, a0; c.mv s1, a1; csrw stvec, t0 (U-Boot's S-mode start).
        let mut smode = vec![0x2a, 0x82, 0xae, 0x84];
        smode.extend(words(&[0x1052_9073]));
        assert_eq!(start_mode(&smode, 0x8020_0000), StartMode::Supervisor);
        // csrr a0, mhartid first.
        let mmode = words(&[0xf140_2573, 0x1052_9073]);
        assert_eq!(start_mode(&mmode, 0x8020_0000), StartMode::Machine);
        // No CSR at all (j .), and a truncated instruction.
        assert_eq!(start_mode(&words(&[0x6f]), 0x8020_0000), StartMode::Machine);
        assert_eq!(start_mode(&[0x73, 0x90], 0x8020_0000), StartMode::Machine);
    }

    #[test]
    fn a_linux_image_starts_in_supervisor_mode() {
        let mut bytes = vec![0u8; 0x40];
        bytes[0x38..0x3c].copy_from_slice(b"RSC\x05");
        assert_eq!(start_mode(&bytes, 0x8020_0000), StartMode::Supervisor);
    }

    #[test]
    fn linux_image_header_sets_place_and_size() {
        let mut bytes = vec![0u8; 0x1000];
        bytes[0..2].copy_from_slice(b"MZ");
        bytes[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
        bytes[16..24].copy_from_slice(&0x250_0000u64.to_le_bytes());
        bytes[0x30..0x38].copy_from_slice(b"RISCV\0\0\0");
        bytes[0x38..0x3c].copy_from_slice(b"RSC\x05");
        let image = parse_program(path(), &bytes, 0x8000_0000, 0x8020_0000).unwrap();
        assert_eq!(image.kind, ImageKind::LinuxImage);
        assert_eq!(image.entry, 0x8020_0000);
        assert_eq!(image.end(), 0x8020_0000 + 0x250_0000);
    }

    #[test]
    fn rejects_text_compressed_and_empty_files() {
        for bytes in [&b"hello world\n"[..], b"\x1f\x8b\x08\0", b""] {
            let err = parse_program(path(), bytes, 0x8000_0000, 0x8000_0000).unwrap_err();
            assert!(matches!(err, LoadError::NotAProgram { .. }), "{err}");
        }
    }

    #[test]
    fn rejects_malformed_elf() {
        let err = parse_program(path(), b"\x7fELF\x02\x01\x01garbage", 0, 0).unwrap_err();
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
            kind: ImageKind::Raw,
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
            kind: ImageKind::Raw,
        };
        assert!(low.check_fits(path(), 0x8000_0000, 0x10_0000).is_err());
    }
}
