//! The x86 Linux boot protocol (the kernel's `Documentation/arch/x86/boot.rst`)
//! as a boot loader follows it for a bzImage: split the image into its
//! real-mode setup and its protected-mode kernel, choose where each goes,
//! where the command line and the initrd go, and fill in the setup header's
//! loader fields. The machine hands the pieces to its firmware (on a PC,
//! through fw_cfg to the option ROM that starts the kernel, as QEMU does).

use thiserror::Error;

/// Offset of `setup_sects` in the image.
const SETUP_SECTS: usize = 0x1f1;
/// The boot sector signature 0xAA55 at 0x1fe.
const BOOT_FLAG: usize = 0x1fe;
/// "HdrS" at 0x202 marks protocol 2.00 and later.
const HEADER_MAGIC: usize = 0x202;
const VERSION: usize = 0x206;
const TYPE_OF_LOADER: usize = 0x210;
const LOADFLAGS: usize = 0x211;
const RAMDISK_IMAGE: usize = 0x218;
const RAMDISK_SIZE: usize = 0x21c;
const HEAP_END_PTR: usize = 0x224;
const CMD_LINE_PTR: usize = 0x228;
const INITRD_ADDR_MAX: usize = 0x22c;
const CMDLINE_SIZE_FIELD: usize = 0x238;
/// loadflags: the protected-mode kernel loads at 1 MiB.
const LOADED_HIGH: u8 = 0x01;
/// loadflags: `heap_end_ptr` is valid.
const CAN_USE_HEAP: u8 = 0x80;
/// The loader ID QEMU uses (0xB0: "Qemu").
const LOADER_QEMU: u8 = 0xb0;
/// Where the real-mode setup goes, where the command line goes after it, and
/// where the protected-mode kernel goes: QEMU's choices for a protocol 2.02+
/// kernel loaded high.
pub const REAL_MODE_ADDR: u32 = 0x1_0000;
/// Where the command line goes.
pub const CMDLINE_ADDR: u32 = 0x2_0000;
/// Where the protected-mode kernel goes.
pub const KERNEL_ADDR: u32 = 0x10_0000;
/// The oldest protocol loaded this way (2.02: `cmd_line_ptr`).
const MIN_VERSION: u16 = 0x0202;
/// The initrd limit of kernels before protocol 2.03, which do not say.
const OLD_INITRD_MAX: u32 = 0x37ff_ffff;

/// Why a kernel image cannot be booted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BzImageError {
    /// Too short, or without the boot sector signature and "HdrS".
    #[error("not an x86 Linux kernel (bzImage): no boot-protocol header")]
    NotBzImage,
    /// A protocol older than 2.02, or a zImage that loads low.
    #[error("boot protocol {0:#06x} is too old (need 2.02 or later, loaded high)")]
    TooOld(u16),
    /// The command line is longer than the kernel takes.
    #[error("command line of {len} bytes is longer than the kernel's limit of {max}")]
    CommandLineTooLong {
        /// Bytes given.
        len: usize,
        /// Bytes the kernel takes (without the NUL).
        max: usize,
    },
    /// The initrd does not fit below the kernel's limit and above the kernel.
    #[error("initrd of {size} bytes does not fit below {max:#x}")]
    InitrdTooBig {
        /// Its size.
        size: u64,
        /// The highest address it may reach.
        max: u64,
    },
}

/// A bzImage split and prepared for booting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxBoot {
    /// The boot protocol version.
    pub version: u16,
    /// The real-mode setup (boot sector and setup code), with the loader
    /// fields filled in; goes at [`REAL_MODE_ADDR`].
    pub setup: Vec<u8>,
    /// The protected-mode kernel; goes at [`KERNEL_ADDR`].
    pub kernel: Vec<u8>,
    /// The command line with its NUL; goes at [`CMDLINE_ADDR`].
    pub cmdline: Vec<u8>,
    /// Where the initrd goes, if there is one.
    pub initrd_addr: Option<u32>,
}

/// Whether `image` has the boot protocol's header (boot sector signature and
/// "HdrS"): a bzImage, or a zImage.
pub fn is_bzimage(image: &[u8]) -> bool {
    image.len() >= 0x250
        && u16_at(image, BOOT_FLAG) == 0xaa55
        && &image[HEADER_MAGIC..HEADER_MAGIC + 4] == b"HdrS"
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn put_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

impl LinuxBoot {
    /// Prepares `image` to boot with `cmdline`, and an initrd of
    /// `initrd_size` bytes if given, on a machine whose RAM below 4 GiB ends at
    /// `ram_end` less `reserved_top` bytes its firmware keeps at the top.
    pub fn new(
        image: &[u8],
        cmdline: &str,
        initrd_size: Option<u64>,
        ram_end: u64,
        reserved_top: u64,
    ) -> Result<LinuxBoot, BzImageError> {
        if !is_bzimage(image) {
            return Err(BzImageError::NotBzImage);
        }
        let version = u16_at(image, VERSION);
        if version < MIN_VERSION || image[LOADFLAGS] & LOADED_HIGH == 0 {
            return Err(BzImageError::TooOld(version));
        }
        let sectors = match image[SETUP_SECTS] {
            0 => 4,
            n => usize::from(n),
        };
        let setup_len = (sectors + 1) * 512;
        if image.len() <= setup_len {
            return Err(BzImageError::NotBzImage);
        }
        let mut setup = image[..setup_len].to_vec();
        let kernel = image[setup_len..].to_vec();

        // The command line: 255 bytes before protocol 2.06, then as the
        // header says.
        let max_cmdline = if version >= 0x0206 {
            u32_at(image, CMDLINE_SIZE_FIELD) as usize
        } else {
            255
        };
        if cmdline.len() > max_cmdline {
            return Err(BzImageError::CommandLineTooLong {
                len: cmdline.len(),
                max: max_cmdline,
            });
        }
        let mut line = cmdline.as_bytes().to_vec();
        line.push(0);

        setup[TYPE_OF_LOADER] = LOADER_QEMU;
        setup[LOADFLAGS] |= CAN_USE_HEAP;
        // The heap runs from the end of setup to the command line.
        let heap_end = (CMDLINE_ADDR - REAL_MODE_ADDR - 0x200) as u16;
        setup[HEAP_END_PTR..HEAP_END_PTR + 2].copy_from_slice(&heap_end.to_le_bytes());
        put_u32(&mut setup, CMD_LINE_PTR, CMDLINE_ADDR);

        let initrd_addr = match initrd_size {
            None => None,
            Some(size) => {
                let kernel_max = if version >= 0x0203 {
                    u32_at(image, INITRD_ADDR_MAX)
                } else {
                    OLD_INITRD_MAX
                };
                let max = u64::from(kernel_max).min(ram_end.saturating_sub(reserved_top) - 1);
                let kernel_end = u64::from(KERNEL_ADDR) + kernel.len() as u64;
                let addr = (max + 1)
                    .checked_sub(size)
                    .map(|a| a & !0xfff)
                    .filter(|&a| a >= kernel_end)
                    .ok_or(BzImageError::InitrdTooBig { size, max })?;
                put_u32(&mut setup, RAMDISK_IMAGE, addr as u32);
                put_u32(&mut setup, RAMDISK_SIZE, size as u32);
                Some(addr as u32)
            }
        };
        Ok(LinuxBoot {
            version,
            setup,
            kernel,
            cmdline: line,
            initrd_addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage-shaped image: 2 setup sectors after the boot sector, then
    /// `kernel` bytes.
    fn image(version: u16, kernel: usize) -> Vec<u8> {
        let mut image = vec![0u8; 3 * 512 + kernel];
        image[SETUP_SECTS] = 2;
        image[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        image[VERSION..VERSION + 2].copy_from_slice(&version.to_le_bytes());
        image[LOADFLAGS] = LOADED_HIGH;
        put_u32(&mut image, INITRD_ADDR_MAX, 0x7fff_ffff);
        put_u32(&mut image, CMDLINE_SIZE_FIELD, 2047);
        image
    }

    #[test]
    fn splits_the_image_and_fills_the_loader_fields() {
        let boot = LinuxBoot::new(
            &image(0x020f, 4096),
            "console=ttyS0",
            Some(10_000),
            128 << 20,
            0x4_0000,
        )
        .unwrap();
        assert_eq!(boot.setup.len(), 3 * 512);
        assert_eq!(boot.kernel.len(), 4096);
        assert_eq!(boot.cmdline, b"console=ttyS0\0");
        assert_eq!(boot.setup[TYPE_OF_LOADER], 0xb0);
        assert_eq!(boot.setup[LOADFLAGS], LOADED_HIGH | CAN_USE_HEAP);
        assert_eq!(u32_at(&boot.setup, CMD_LINE_PTR), CMDLINE_ADDR);
        assert_eq!(u16_at(&boot.setup, HEAP_END_PTR), 0xfe00);
        // The initrd ends below the firmware's reserve, page-aligned.
        let addr = boot.initrd_addr.unwrap();
        assert_eq!(addr % 4096, 0);
        assert!(u64::from(addr) + 10_000 <= (128 << 20) - 0x4_0000);
        assert!(u64::from(addr) + 10_000 + 4096 > (128 << 20) - 0x4_0000);
        assert_eq!(u32_at(&boot.setup, RAMDISK_IMAGE), addr);
        assert_eq!(u32_at(&boot.setup, RAMDISK_SIZE), 10_000);
    }

    #[test]
    fn refuses_what_it_cannot_boot() {
        assert_eq!(
            LinuxBoot::new(b"not a kernel", "", None, 1 << 30, 0),
            Err(BzImageError::NotBzImage)
        );
        assert_eq!(
            LinuxBoot::new(&image(0x0201, 16), "", None, 1 << 30, 0),
            Err(BzImageError::TooOld(0x0201))
        );
        let long = "x".repeat(3000);
        assert!(matches!(
            LinuxBoot::new(&image(0x020f, 16), &long, None, 1 << 30, 0),
            Err(BzImageError::CommandLineTooLong {
                len: 3000,
                max: 2047
            })
        ));
        assert!(matches!(
            LinuxBoot::new(&image(0x020f, 16), "", Some(200 << 20), 128 << 20, 0),
            Err(BzImageError::InitrdTooBig { .. })
        ));
    }
}
