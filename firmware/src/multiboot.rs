//! Multiboot (version 1) kernels as a boot loader prepares them, the way
//! QEMU's `-kernel` does for one: find the Multiboot header in the first
//! 8 KiB, lay the kernel out as it asks (its own load addresses, or an i386
//! ELF's segments), follow it with the module list, the command lines (the
//! kernel's is "<kernel path> <append>"), the boot loader's name and the
//! modules themselves, each page-aligned, and fill in the Multiboot
//! information block. The machine's firmware copies it all into place, asks
//! the BIOS for the memory map, and starts the kernel in protected mode with
//! EAX = 0x2BADB002 and EBX pointing at the information block.

use goblin::elf::{Elf, header, program_header::PT_LOAD};
use thiserror::Error;

/// The header's magic.
const HEADER_MAGIC: u32 = 0x1bad_b002;
/// The header lies in the first 8 KiB, 32-bit aligned, 48 bytes long at most.
const SEARCH: usize = 8192;
/// Header flag: the load addresses are in the header (else the file is ELF).
const HAS_ADDRESSES: u32 = 1 << 16;
/// Where the firmware writes the memory map, and the information block after
/// it: below 64 KiB, where the real-mode option ROM reaches (QEMU's places).
pub const MEMORY_MAP_ADDR: u32 = 0x9000;
/// Where the information block goes.
pub const INFO_ADDR: u32 = MEMORY_MAP_ADDR + 0x500;
/// Bytes of the information block.
pub const INFO_SIZE: usize = 88;
/// The name the kernel is told its boot loader has.
const BOOT_LOADER_NAME: &str = "turing";
const PAGE: usize = 4096;
/// A module entry: start, end, command line, reserved.
const MODULE_ENTRY: usize = 16;

/// Information block fields and flags.
mod info {
    pub const FLAGS: usize = 0;
    pub const BOOT_DEVICE: usize = 12;
    pub const CMDLINE: usize = 16;
    pub const MODS_COUNT: usize = 20;
    pub const MODS_ADDR: usize = 24;
    pub const MMAP_ADDR: usize = 48;
    pub const BOOT_LOADER_NAME: usize = 64;
    /// mem_lower/upper, boot device, command line, modules, memory map, name:
    /// the firmware fills in the memory fields and the map.
    pub const PROVIDED: u32 = 1 | 1 << 1 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 9;
    /// "The BIOS's first hard disk, no partition": QEMU's answer.
    pub const NO_BOOT_DEVICE: u32 = 0x8000_ffff;
}

/// Why a Multiboot kernel cannot be booted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MultibootError {
    /// The header's addresses do not describe the file.
    #[error("invalid Multiboot header: {0}")]
    BadHeader(&'static str),
    /// The kernel is an ELF file this loader cannot take.
    #[error("{0}")]
    BadElf(String),
    /// The kernel, information and modules do not fit below 4 GiB.
    #[error("the kernel and its modules do not fit in 32-bit memory")]
    TooBig,
}

/// A module: the text `--initrd` gave for it (its path, then its arguments
/// after a space) and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The path and arguments, as the kernel sees them.
    pub cmdline: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// A prepared Multiboot kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultibootBoot {
    /// Where the kernel starts running.
    pub entry: u32,
    /// Where [`MultibootBoot::image`] goes.
    pub load_addr: u32,
    /// The kernel followed by the module list, command lines and modules.
    pub image: Vec<u8>,
    /// The information block (goes at [`INFO_ADDR`]).
    pub info: [u8; INFO_SIZE],
}

/// The offset and flags of the Multiboot header in `file`, if it has a valid
/// one (magic, flags and checksum summing to 0) in its first 8 KiB.
pub fn find_header(file: &[u8]) -> Option<(usize, u32)> {
    let word = |at: usize| {
        file.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    (0..SEARCH.min(file.len()).saturating_sub(12))
        .step_by(4)
        .find_map(|at| {
            let flags = word(at + 4)?;
            let sum = word(at)?.wrapping_add(flags).wrapping_add(word(at + 8)?);
            (word(at)? == HEADER_MAGIC && sum == 0).then_some((at, flags))
        })
}

fn page_align(n: usize) -> usize {
    n.next_multiple_of(PAGE)
}

/// The kernel as its header or ELF file lays it out: load address, entry,
/// and its memory image (bss zeroed).
fn kernel_image(file: &[u8], at: usize, flags: u32) -> Result<(u32, u32, Vec<u8>), MultibootError> {
    let word = |offset: usize| {
        file.get(at + offset..at + offset + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(MultibootError::BadHeader("the header is cut short"))
    };
    if flags & HAS_ADDRESSES != 0 {
        let (header_addr, load_addr) = (word(12)?, word(16)?);
        let (load_end, bss_end, entry) = (word(20)?, word(24)?, word(28)?);
        let start = header_addr
            .checked_sub(load_addr)
            .and_then(|d| (at as u32).checked_sub(d))
            .ok_or(MultibootError::BadHeader("header_addr below load_addr"))?
            as usize;
        let load_size = if load_end == 0 {
            file.len().checked_sub(start)
        } else {
            load_end.checked_sub(load_addr).map(|n| n as usize)
        }
        .filter(|&n| start + n <= file.len())
        .ok_or(MultibootError::BadHeader("load_end_addr outside the file"))?;
        let memory_size = if bss_end == 0 {
            load_size
        } else {
            bss_end
                .checked_sub(load_addr)
                .map(|n| n as usize)
                .filter(|&n| n >= load_size)
                .ok_or(MultibootError::BadHeader(
                    "bss_end_addr below the loaded part",
                ))?
        };
        let mut image = file[start..start + load_size].to_vec();
        image.resize(memory_size, 0);
        return Ok((load_addr, entry, image));
    }
    let elf =
        Elf::parse(file).map_err(|e| MultibootError::BadElf(format!("not an ELF file: {e}")))?;
    if elf.header.e_machine != header::EM_386 || elf.is_64 {
        return Err(MultibootError::BadElf(
            "a Multiboot ELF kernel must be 32-bit i386 (give a 32-bit one)".to_owned(),
        ));
    }
    let segments: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0)
        .collect();
    let low = segments
        .iter()
        .map(|p| p.p_paddr)
        .min()
        .ok_or_else(|| MultibootError::BadElf("the ELF file has nothing to load".to_owned()))?;
    let high = segments
        .iter()
        .map(|p| p.p_paddr + p.p_memsz)
        .max()
        .unwrap_or(low);
    if high > u64::from(u32::MAX) {
        return Err(MultibootError::TooBig);
    }
    let mut image = vec![0u8; (high - low) as usize];
    for p in segments {
        let from = p.p_offset as usize;
        let len = p.p_filesz.min(p.p_memsz) as usize;
        let data = file
            .get(from..from + len)
            .ok_or_else(|| MultibootError::BadElf("a segment runs past the file".to_owned()))?;
        let to = (p.p_paddr - low) as usize;
        image[to..to + len].copy_from_slice(data);
    }
    Ok((low as u32, elf.entry as u32, image))
}

impl MultibootBoot {
    /// Prepares the kernel `file` (found at `kernel_path`, which starts its
    /// command line) with `append` and `modules`.
    pub fn new(
        file: &[u8],
        kernel_path: &str,
        append: &str,
        modules: &[Module],
    ) -> Result<MultibootBoot, MultibootError> {
        let (at, flags) = find_header(file).ok_or(MultibootError::BadHeader("no header"))?;
        let (load_addr, entry, mut image) = kernel_image(file, at, flags)?;
        // After the kernel: module entries, then command lines and the boot
        // loader's name, then each module on a page of its own.
        let list = page_align(image.len());
        let mut strings = list + MODULE_ENTRY * modules.len();
        image.resize(strings, 0);
        let base = u64::from(load_addr);
        let addr = |offset: usize| -> Result<u32, MultibootError> {
            u32::try_from(base + offset as u64).map_err(|_| MultibootError::TooBig)
        };
        let mut add_string = |image: &mut Vec<u8>, text: &str| -> Result<u32, MultibootError> {
            let at = addr(strings)?;
            image.extend_from_slice(text.as_bytes());
            image.push(0);
            strings = image.len();
            Ok(at)
        };
        let kernel_cmdline = add_string(&mut image, &format!("{kernel_path} {append}"))?;
        let loader_name = add_string(&mut image, BOOT_LOADER_NAME)?;
        let module_cmdlines = modules
            .iter()
            .map(|m| add_string(&mut image, &m.cmdline))
            .collect::<Result<Vec<_>, _>>()?;
        for (k, (module, cmdline)) in modules.iter().zip(module_cmdlines).enumerate() {
            let start = page_align(image.len());
            image.resize(start, 0);
            image.extend_from_slice(&module.data);
            let entry_at = list + k * MODULE_ENTRY;
            for (i, value) in [addr(start)?, addr(image.len())?, cmdline]
                .into_iter()
                .enumerate()
            {
                image[entry_at + 4 * i..entry_at + 4 * i + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
        image.resize(page_align(image.len()), 0);
        addr(image.len())?;

        let mut info = [0u8; INFO_SIZE];
        let mut put =
            |at: usize, value: u32| info[at..at + 4].copy_from_slice(&value.to_le_bytes());
        put(info::FLAGS, info::PROVIDED);
        put(info::BOOT_DEVICE, info::NO_BOOT_DEVICE);
        put(info::CMDLINE, kernel_cmdline);
        put(info::MODS_COUNT, modules.len() as u32);
        put(info::MODS_ADDR, addr(list)?);
        put(info::MMAP_ADDR, MEMORY_MAP_ADDR);
        put(info::BOOT_LOADER_NAME, loader_name);
        Ok(MultibootBoot {
            entry,
            load_addr,
            image,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel with the address fields: header at file offset 16, loaded
    /// at 1 MiB with the file's start there, 0x100 bytes of bss.
    fn aout_kernel() -> Vec<u8> {
        let mut file = vec![0x90u8; 64];
        let flags = HAS_ADDRESSES | 0x3;
        let words = [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags),
            0x10_0010, // header_addr
            0x10_0000, // load_addr
            0,         // load_end_addr: the whole file
            0x10_0140, // bss_end_addr
            0x10_0030, // entry
        ];
        for (i, w) in words.iter().enumerate() {
            file[16 + 4 * i..20 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        file
    }

    fn word(data: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn a_kernel_with_addresses_gets_its_modules_and_command_lines() {
        let modules = [Module {
            cmdline: "/boot/mod1 verbose".to_owned(),
            data: b"MOD1 contents".to_vec(),
        }];
        let boot = MultibootBoot::new(&aout_kernel(), "/boot/kernel", "hello", &modules).unwrap();
        assert_eq!((boot.load_addr, boot.entry), (0x10_0000, 0x10_0030));
        assert_eq!(boot.image.len() % PAGE, 0);
        assert!(boot.image[64..0x140].iter().all(|&b| b == 0), "bss is zero");
        let offset = |addr: u32| (addr - boot.load_addr) as usize;
        let string = |addr: u32| {
            let from = offset(addr);
            let len = boot.image[from..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8(boot.image[from..from + len].to_vec()).unwrap()
        };
        assert_eq!(word(&boot.info, info::FLAGS), info::PROVIDED);
        assert_eq!(
            string(word(&boot.info, info::CMDLINE)),
            "/boot/kernel hello"
        );
        assert_eq!(string(word(&boot.info, info::BOOT_LOADER_NAME)), "turing");
        assert_eq!(word(&boot.info, info::MODS_COUNT), 1);
        assert_eq!(word(&boot.info, info::MMAP_ADDR), MEMORY_MAP_ADDR);
        let list = offset(word(&boot.info, info::MODS_ADDR));
        let (start, end) = (word(&boot.image, list), word(&boot.image, list + 4));
        assert_eq!(start % PAGE as u32, 0);
        assert_eq!(&boot.image[offset(start)..offset(end)], b"MOD1 contents");
        assert_eq!(string(word(&boot.image, list + 8)), "/boot/mod1 verbose");
    }

    #[test]
    fn headers_are_found_only_with_a_good_checksum() {
        let mut file = aout_kernel();
        assert_eq!(find_header(&file), Some((16, HAS_ADDRESSES | 3)));
        file[24] ^= 1;
        assert_eq!(find_header(&file), None);
        assert_eq!(find_header(b"short"), None);
        assert!(matches!(
            MultibootBoot::new(b"not a kernel at all", "k", "", &[]),
            Err(MultibootError::BadHeader(_))
        ));
    }

    #[test]
    fn bad_addresses_are_refused() {
        let mut file = aout_kernel();
        // bss_end below the loaded part.
        file[16 + 24..16 + 28].copy_from_slice(&0x10_0001u32.to_le_bytes());
        assert!(matches!(
            MultibootBoot::new(&file, "k", "", &[]),
            Err(MultibootError::BadHeader(_))
        ));
    }
}
