//! The Linux guest images made from Debian's riscv64 packages by `cargo xtask images`
//! (which `cargo xtask test` runs first). That task writes the paths of the newest
//! images to `~/.cache/turing/images/current.toml`, read here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Paths of the Debian guest images built by `cargo xtask images`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebianImages {
    /// The uncompressed RISC-V Linux `Image` (Debian's kernel, EFI stub header).
    pub kernel: PathBuf,
    /// `initramfs.cpio.gz`: busybox and the virtio-mmio, virtio-blk, virtio-rng and ext4
    /// modules; its `/init` prints [`READY_MARKER`] and starts a shell on the console.
    pub initramfs: PathBuf,
    /// `disk.img`: a 32 MiB ext4 file system whose `/hello.txt` holds [`DISK_HELLO`].
    /// Copy it before booting a guest that may write to it.
    pub disk: PathBuf,
    /// OpenSBI's `fw_dynamic.bin` (generic platform).
    pub opensbi: PathBuf,
    /// U-Boot's S-mode build for QEMU's `virt` (`u-boot-qemu`'s
    /// `qemu-riscv64_smode/u-boot.bin`), a raw binary with no header.
    pub uboot_smode: PathBuf,
    /// The same U-Boot as an ELF linked at 0x8020_0000.
    pub uboot_smode_elf: PathBuf,
    /// Debian's static riscv64 busybox (`busybox-static`), as a program.
    pub busybox: PathBuf,
    /// A riscv64 root of Debian's libc6, coreutils and python3-minimal with their
    /// dependencies, for `turing user --sysroot`.
    pub sysroot: PathBuf,
}

/// The line `/init` prints when the modules are loaded, just before the shell starts.
pub const READY_MARKER: &str = "TURING-INIT-READY";

/// The text of `/hello.txt` on the disk image (without its final newline).
pub const DISK_HELLO: &str = "hello from the turing disk image";

/// Where `cargo xtask images` writes the manifest of the newest images.
pub fn current_manifest() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/turing/images/current.toml")
}

/// Reads ~/.cache/turing/images/current.toml; panics with "run `cargo xtask images`" if missing.
pub fn debian_images() -> DebianImages {
    let manifest = current_manifest();
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "no Debian guest images ({}: {e}): run `cargo xtask images`",
            manifest.display()
        )
    });
    let values = parse_strings(&text);
    let path = |key: &str| -> PathBuf {
        let path = PathBuf::from(values.get(key).unwrap_or_else(|| {
            panic!(
                "{} has no `{key}`: run `cargo xtask images`",
                manifest.display()
            )
        }));
        assert!(
            path.is_file(),
            "{} (`{key}` in {}) is missing: run `cargo xtask images`",
            path.display(),
            manifest.display()
        );
        path
    };
    DebianImages {
        kernel: path("kernel"),
        initramfs: path("initramfs"),
        disk: path("disk"),
        opensbi: path("opensbi"),
        uboot_smode: path("uboot_smode"),
        uboot_smode_elf: path("uboot_smode_elf"),
        busybox: path("busybox"),
        sysroot: {
            let dir = PathBuf::from(values.get("sysroot").unwrap_or_else(|| {
                panic!(
                    "{} has no `sysroot`: run `cargo xtask images`",
                    manifest.display()
                )
            }));
            assert!(
                dir.join(".complete").is_file(),
                "{} is incomplete: run `cargo xtask images`",
                dir.display()
            );
            dir
        },
    }
}

/// The real-program benchmark's disk image, named in
/// `~/.cache/turing/images/programs.toml` by `cargo xtask images --programs` (which
/// `cargo xtask bench` runs): an ext4 Debian riscv64 root with python3, perl, gcc, xz,
/// sqlite3 and git, and the tasks under `/bench`. Boot it read-only.
pub fn programs_image() -> PathBuf {
    let manifest = current_manifest().with_file_name("programs.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "no programs image ({}: {e}): run `cargo xtask images --programs`",
            manifest.display()
        )
    });
    let disk = PathBuf::from(parse_strings(&text).remove("disk").unwrap_or_else(|| {
        panic!(
            "{} has no `disk`: run `cargo xtask images --programs`",
            manifest.display()
        )
    }));
    assert!(
        disk.is_file(),
        "{} (in {}) is missing: run `cargo xtask images --programs`",
        disk.display(),
        manifest.display()
    );
    disk
}

/// Paths of the Debian x86 guest images `cargo xtask images` builds for the PC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcImages {
    /// Debian's amd64 kernel (a bzImage).
    pub kernel: PathBuf,
    /// amd64 busybox and an `/init` that prints [`READY_MARKER`] and starts a shell.
    pub initramfs: PathBuf,
    /// Debian bookworm's i386 kernel (`linux-image-686`, a bzImage).
    pub kernel_686: PathBuf,
    /// The same initramfs with i386 busybox.
    pub initramfs_i386: PathBuf,
    /// A hard disk image (MBR, GRUB, a FAT partition) whose GRUB menu boots
    /// `kernel` with `initramfs` and the console on COM1.
    pub grub_disk: PathBuf,
    /// The same as an El Torito CD-ROM image.
    pub grub_cdrom: PathBuf,
    /// memtest86+ (64-bit), booted as a Linux kernel.
    pub memtest: PathBuf,
}

/// Reads ~/.cache/turing/images/x86/current.toml; panics with "run `cargo xtask
/// images`" if it or a file it names is missing.
pub fn pc_images() -> PcImages {
    let manifest = current_manifest()
        .with_file_name("x86")
        .join("current.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "no x86 guest images ({}: {e}): run `cargo xtask images`",
            manifest.display()
        )
    });
    let values = parse_strings(&text);
    let path = |key: &str| -> PathBuf {
        let path = PathBuf::from(values.get(key).cloned().unwrap_or_default());
        assert!(
            path.is_file(),
            "`{key}` of {} is missing: run `cargo xtask images`",
            manifest.display()
        );
        path
    };
    PcImages {
        kernel: path("kernel"),
        initramfs: path("initramfs"),
        kernel_686: path("kernel_686"),
        initramfs_i386: path("initramfs_i386"),
        grub_disk: path("grub_disk"),
        grub_cdrom: path("grub_cdrom"),
        memtest: path("memtest"),
    }
}

/// The `key = "value"` lines of a small TOML file (other lines are skipped).
fn parse_strings(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if let Some(inner) = value
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
        {
            let unescaped = inner.replace("\\\"", "\"").replace("\\\\", "\\");
            values.insert(key.trim().to_owned(), unescaped);
        }
    }
    values
}

#[cfg(test)]
mod unit {
    use super::parse_strings;

    #[test]
    fn parses_string_lines_and_skips_the_rest() {
        let values = parse_strings(
            "# comment\nkernel = \"/a b/Image\"\nrecipe = 1\nq = \"say \\\"hi\\\" \\\\ ok\"\n\
             modules = [\"a\", \"b\"]\n",
        );
        assert_eq!(values["kernel"], "/a b/Image");
        assert_eq!(values["q"], "say \"hi\" \\ ok");
        assert!(!values.contains_key("recipe"));
        assert!(!values.contains_key("modules"));
    }
}
