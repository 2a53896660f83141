//! The PC's bootable images, made with GRUB from Debian's `grub-pc-bin` and
//! without loop mounts or root: a hard disk (`grub-disk.img`) and a CD-ROM
//! (`grub-cdrom.iso`), each with the amd64 kernel and initramfs and a menu
//! that boots them with the console on COM1.
//!
//! The disk is put together here, as `grub-install` would lay it out on a
//! BIOS disk with an MBR:
//! - sector 0: GRUB's `boot.img` with the partition table (one active FAT16
//!   partition from sector 2048);
//! - sectors 1 onwards (the gap before the partition): `core.img` from
//!   `grub-mkimage`, with the disk and FAT drivers built in and its prefix on
//!   the partition;
//! - the partition: a FAT16 file system made by mtools with `/boot/grub`
//!   (the configuration and GRUB's modules) and the kernel.
//!
//! `grub-bios-setup` would refuse to write to a plain file without a device
//! map, so the two places it patches are written here: the LBA of
//! `core.img` in `boot.img`, and the block list at the end of `core.img`'s
//! first sector that says where its other sectors are.
//!
//! The CD-ROM is `grub-mkrescue`'s El Torito image (xorriso).

use std::path::Path;
use std::process::Command;

use crate::images::{create_dir, read_file, run, write_file};

/// Where Debian's `grub-pc-bin` keeps the BIOS platform's images and modules.
const GRUB_I386_PC: &str = "/usr/lib/grub/i386-pc";
/// The partition starts at 1 MiB, as partitioning tools align it.
const PARTITION_START: u64 = 2048;
/// The partition's size in sectors (32 MiB): room for the kernel, initramfs
/// and GRUB's modules.
const PARTITION_SECTORS: u64 = 65536;
const SECTOR: usize = 512;
/// FAT16 with LBA, the partition type.
const PARTITION_TYPE_FAT16_LBA: u8 = 0x0e;
/// In `boot.img`: the LBA of `core.img`'s first sector (8 bytes).
const BOOT_KERNEL_SECTOR: usize = 0x5c;
/// In `boot.img`: the drive to boot from; 0xff means the one the BIOS gives.
const BOOT_DRIVE: usize = 0x64;
/// In `boot.img`: a check for BIOSes that pass a bad drive number, which
/// `grub-bios-setup` turns into two NOPs for hard disks.
const BOOT_DRIVE_CHECK: usize = 0x66;
/// `boot.img`'s code and data end here; the disk signature and partition
/// table follow.
const BOOT_CODE_END: usize = 440;
/// The partition table in the MBR.
const PARTITION_TABLE: usize = 0x1be;
/// In `core.img`'s first sector (`diskboot.img`): the block list entry
/// (LBA: 8 bytes, sectors: 2 bytes, segment: 2 bytes) 12 bytes before its end.
const BLOCK_LIST: usize = SECTOR - 12;
/// GRUB's menu: boot the kernel at once, console on the serial port and the
/// screen alike. The kernel's early console on COM1 shows its decompressor
/// and early boot, long before the serial driver takes over.
const GRUB_CFG: &str = "\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry 'Debian GNU/Linux (Turing guest)' {
    linux /boot/vmlinuz console=ttyS0 earlyprintk=serial,ttyS0,115200
    initrd /boot/initramfs.cpio.gz
}
";

/// The version of the host's `grub-pc-bin`, which makes the images.
pub fn grub_version() -> Result<String, String> {
    let out = run(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "grub-pc-bin"]))
        .map_err(|e| format!("grub-pc-bin is not installed (run `cargo xtask setup`): {e}"))?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Writes `out/grub-disk.img` and `out/grub-cdrom.iso` booting `kernel`
/// with `initramfs`, using `work` for the parts.
pub fn build(kernel: &Path, initramfs: &Path, work: &Path, out: &Path) -> Result<(), String> {
    create_dir(work)?;
    let cfg = work.join("grub.cfg");
    write_file(&cfg, GRUB_CFG)?;
    write_file(
        &out.join("grub-disk.img"),
        disk(kernel, initramfs, &cfg, work)?,
    )?;
    cdrom(kernel, initramfs, &cfg, work, &out.join("grub-cdrom.iso"))
}

/// The hard disk image's bytes.
fn disk(kernel: &Path, initramfs: &Path, cfg: &Path, work: &Path) -> Result<Vec<u8>, String> {
    let core_path = work.join("core.img");
    run(Command::new("grub-mkimage")
        .args([
            "-O",
            "i386-pc",
            "-d",
            GRUB_I386_PC,
            "-p",
            "(hd0,msdos1)/boot/grub",
        ])
        .arg("-o")
        .arg(&core_path)
        .args(["biosdisk", "part_msdos", "fat"]))?;
    let mut core = read_file(&core_path)?;
    core.resize(core.len().div_ceil(SECTOR) * SECTOR, 0);
    let core_sectors = core.len() / SECTOR;
    if 1 + core_sectors as u64 > PARTITION_START {
        return Err(format!(
            "core.img ({core_sectors} sectors) does not fit before the partition"
        ));
    }
    // The rest of core.img follows its first sector, which boot.img loads.
    core[BLOCK_LIST..BLOCK_LIST + 8].copy_from_slice(&2u64.to_le_bytes());
    core[BLOCK_LIST + 8..BLOCK_LIST + 10]
        .copy_from_slice(&u16::try_from(core_sectors - 1).unwrap_or(0).to_le_bytes());

    let boot = read_file(&Path::new(GRUB_I386_PC).join("boot.img"))?;
    if boot.len() != SECTOR {
        return Err(format!("{GRUB_I386_PC}/boot.img is not one sector"));
    }
    let mut mbr = boot[..BOOT_CODE_END].to_vec();
    mbr.resize(SECTOR, 0);
    mbr[BOOT_KERNEL_SECTOR..BOOT_KERNEL_SECTOR + 8].copy_from_slice(&1u64.to_le_bytes());
    mbr[BOOT_DRIVE] = 0xff;
    mbr[BOOT_DRIVE_CHECK..BOOT_DRIVE_CHECK + 2].copy_from_slice(&[0x90, 0x90]);
    let entry = &mut mbr[PARTITION_TABLE..PARTITION_TABLE + 16];
    entry[0] = 0x80; // active
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS: beyond reach, use LBA
    entry[4] = PARTITION_TYPE_FAT16_LBA;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&(PARTITION_START as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(PARTITION_SECTORS as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;

    let partition = work.join("partition.img");
    write_file(&partition, vec![0u8; PARTITION_SECTORS as usize * SECTOR])?;
    let image = format!("{}", partition.display());
    // 64 cylinders × 16 heads × 64 sectors = the partition's sectors; a fixed
    // serial number keeps the image the same from run to run.
    run(Command::new("mformat").args([
        "-i", &image, "-t", "64", "-h", "16", "-s", "64", "-N", "7475726e", "-v", "TURING", "::",
    ]))?;
    run(Command::new("mmd").args([
        "-i",
        &image,
        "::/boot",
        "::/boot/grub",
        "::/boot/grub/i386-pc",
    ]))?;
    let mut modules = Vec::new();
    for entry in
        std::fs::read_dir(GRUB_I386_PC).map_err(|e| format!("cannot read {GRUB_I386_PC}: {e}"))?
    {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path
            .extension()
            .is_some_and(|ext| ext == "mod" || ext == "lst")
        {
            modules.push(path);
        }
    }
    modules.sort();
    run(Command::new("mcopy")
        .args(["-i", &image])
        .args(&modules)
        .arg("::/boot/grub/i386-pc/"))?;
    run(Command::new("mcopy")
        .args(["-i", &image])
        .arg(cfg)
        .arg("::/boot/grub/grub.cfg"))?;
    run(Command::new("mcopy")
        .args(["-i", &image])
        .arg(kernel)
        .arg("::/boot/vmlinuz"))?;
    run(Command::new("mcopy")
        .args(["-i", &image])
        .arg(initramfs)
        .arg("::/boot/initramfs.cpio.gz"))?;

    let mut disk = mbr;
    disk.extend_from_slice(&core);
    disk.resize(PARTITION_START as usize * SECTOR, 0);
    disk.extend_from_slice(&read_file(&partition)?);
    std::fs::remove_file(&partition).map_err(|e| format!("cannot remove {image}: {e}"))?;
    Ok(disk)
}

/// The CD-ROM image at `iso`.
fn cdrom(
    kernel: &Path,
    initramfs: &Path,
    cfg: &Path,
    work: &Path,
    iso: &Path,
) -> Result<(), String> {
    let root = work.join("cdrom");
    let boot = root.join("boot");
    create_dir(&boot.join("grub"))?;
    for (from, to) in [
        (cfg, boot.join("grub/grub.cfg")),
        (kernel, boot.join("vmlinuz")),
        (initramfs, boot.join("initramfs.cpio.gz")),
    ] {
        std::fs::copy(from, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    run(Command::new("grub-mkrescue")
        .args(["-d", GRUB_I386_PC])
        .arg("-o")
        .arg(iso)
        .arg(&root))?;
    Ok(())
}
