//! `cargo xtask images` for the PC: Debian's amd64 kernel and its i386 one
//! (`linux-image-686`), each with an initramfs of Debian's static busybox for
//! its architecture, from Debian bookworm (the last release with i386
//! kernels), through an apt configuration private to the project
//! (`~/.cache/turing/x86/apt/`), cached under `~/.cache/turing/images/x86/<versions>/`:
//!
//! - `vmlinuz` and `vmlinuz-686`: the bzImages, as `--kernel` takes them;
//! - `initramfs.cpio.gz` and `initramfs-i386.cpio.gz`: busybox and an `/init`
//!   that prints `TURING-INIT-READY` and starts a shell on the console (the
//!   riscv64 images' init); the amd64 one loads [`AMD64_MODULES`] first (the
//!   PC's disk, CD-ROM and entropy drivers), the i386 one no module, so its boot
//!   stays short;
//! - `grub-disk.img` and `grub-cdrom.iso`: a hard disk and a CD-ROM that boot
//!   the amd64 kernel and initramfs through GRUB (see [`crate::grub_images`]);
//! - `memtest86+x64.bin`: memtest86+ (package `memtest86+`), which boots as a
//!   Linux kernel does (`--kernel`);
//! - `manifest.toml`, copied to `~/.cache/turing/images/x86/current.toml`.
//!
//! The versions resolved once are kept in `resolved.toml` beside the apt state,
//! so a run whose images are built uses no network; `TURING_IMAGES_REFRESH=1`
//! resolves them again.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::images::{
    Apt, Package, READY_MARKER, bare_version, build_into, create_dir, depends, extract_one,
    fetch_debs, fsys_tar, gzip, initramfs, parse_toml_strings, read_file, resolve_modules, say,
    tar_list, toml_line, write_atomic, write_file,
};
use crate::{apt_sources, grub_images};

/// Bump when the way the images are made changes.
const RECIPE: u32 = 5;
const SUITE: &str = "bookworm";
/// The native architecture, then the foreign one.
const ARCHES: [&str; 2] = ["amd64", "i386"];
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// ELF machine types: x86-64 and i386.
const EM_X86_64: u16 = 62;
const EM_386: u16 = 3;
/// Modules the amd64 initramfs loads, with what they depend on: the drivers of
/// the PC's PIIX IDE disk and CD-ROM and of its virtio-pci devices.
pub const AMD64_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_rng",
    "virtio_net",
    "ata_piix",
    "sd_mod",
    "sr_mod",
    "isofs",
];
const FILES: [&str; 8] = [
    "vmlinuz",
    "initramfs.cpio.gz",
    "vmlinuz-686",
    "initramfs-i386.cpio.gz",
    "grub-disk.img",
    "grub-cdrom.iso",
    "memtest86+x64.bin",
    "manifest.toml",
];

/// memtest86+'s 64-bit image with the Linux boot header, in its package.
const MEMTEST_MEMBER: &str = "./boot/memtest86+x64.bin";

/// The packages chosen.
struct Resolved {
    release: String,
    kernel: Package,
    busybox: Package,
    release_686: String,
    kernel_686: Package,
    busybox_i386: Package,
    memtest: Package,
}

impl Resolved {
    fn entry_name(&self, grub: &str) -> String {
        let bare = bare_version;
        format!(
            "linux-{}_686-{}_busybox-{}_grub-{}_memtest-{}_r{RECIPE}",
            bare(&self.kernel.version),
            bare(&self.kernel_686.version),
            bare(&self.busybox.version),
            bare(grub),
            bare(&self.memtest.version)
        )
    }

    fn to_toml(&self) -> String {
        let mut text = toml_line("release", &self.release);
        text += &toml_line("release_686", &self.release_686);
        for (key, package) in self.packages() {
            text += &toml_line(&format!("{key}_name"), &package.name);
            text += &toml_line(&format!("{key}_version"), &package.version);
            text += &toml_line(&format!("{key}_arch"), &package.arch);
        }
        text
    }

    fn packages(&self) -> [(&'static str, &Package); 5] {
        [
            ("kernel", &self.kernel),
            ("busybox", &self.busybox),
            ("kernel_686", &self.kernel_686),
            ("busybox_i386", &self.busybox_i386),
            ("memtest", &self.memtest),
        ]
    }

    fn load(path: &Path) -> Option<Resolved> {
        let values = parse_toml_strings(&fs::read_to_string(path).ok()?);
        let package = |key: &str| {
            Some(Package {
                name: values.get(&format!("{key}_name"))?.clone(),
                version: values.get(&format!("{key}_version"))?.clone(),
                arch: values.get(&format!("{key}_arch"))?.clone(),
            })
        };
        Some(Resolved {
            release: values.get("release")?.clone(),
            kernel: package("kernel")?,
            busybox: package("busybox")?,
            release_686: values.get("release_686")?.clone(),
            kernel_686: package("kernel_686")?,
            busybox_i386: package("busybox_i386")?,
            memtest: package("memtest")?,
        })
    }
}

/// Builds the PC images unless they are cached; always refreshes `current.toml`.
pub fn build() -> Result<(), String> {
    let started = Instant::now();
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or("HOME is not set")?;
    let cache = Path::new(&home).join(".cache/turing");
    let apt_root = cache.join("x86/apt");
    let debs = apt_root.join("debs");
    let images = cache.join("images/x86");
    for dir in [&apt_root, &debs, &images] {
        create_dir(dir)?;
    }
    let resolved_file = apt_root.join("resolved.toml");
    let refresh = std::env::var("TURING_IMAGES_REFRESH").is_ok_and(|v| !v.is_empty() && v != "0");
    let saved = if refresh {
        None
    } else {
        Resolved::load(&resolved_file)
    };
    let grub = grub_images::grub_version()?;
    if let Some(resolved) = &saved {
        let entry = images.join(resolved.entry_name(&grub));
        if complete(&entry) {
            publish(&images, &entry)?;
            say(format!("x86 up to date: {}", entry.display()));
            return Ok(());
        }
    }
    let mut apt = Apt::at(&apt_root, &ARCHES)?;
    let resolved = match saved {
        Some(resolved) => resolved,
        None => {
            let mirror = apt_sources::debian_mirror()?;
            let arches = ARCHES.join(",");
            say(format!(
                "updating the package index of Debian {SUITE} ({arches}) from {mirror}"
            ));
            apt.set_source(&format!(
                "deb [arch={arches} signed-by={KEYRING}] {mirror} {SUITE} main\n"
            ))?;
            apt.update()?;
            resolve(&apt)?
        }
    };
    let missing: Vec<&Package> = resolved
        .packages()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| !debs.join(p.deb_name()).is_file())
        .collect();
    fetch_debs(&apt, &debs, &missing)?;
    write_atomic(&resolved_file, resolved.to_toml())?;

    let entry = images.join(resolved.entry_name(&grub));
    build_into(&entry, |tmp| fill(&resolved, &debs, tmp, &entry, &grub))?;
    publish(&images, &entry)?;
    say(format!(
        "x86 images ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        entry.display()
    ));
    Ok(())
}

/// Follows the meta package `meta` to the package holding the kernel; its
/// release and package.
fn resolve_kernel(apt: &Apt, meta: &str, arch: &str) -> Result<(String, Package), String> {
    let fields = apt.show(meta)?;
    let image = depends(&fields)
        .into_iter()
        .find(|d| d.starts_with("linux-image-"))
        .ok_or(format!(
            "{meta} depends on no linux-image-<version> package"
        ))?;
    let release = image["linux-image-".len()..].to_owned();
    Ok((release, apt.package(&format!("{image}:{arch}"))?))
}

fn resolve(apt: &Apt) -> Result<Resolved, String> {
    let (release, kernel) = resolve_kernel(apt, "linux-image-amd64", "amd64")?;
    let (release_686, kernel_686) = resolve_kernel(apt, "linux-image-686:i386", "i386")?;
    Ok(Resolved {
        release,
        kernel,
        busybox: apt.package("busybox-static")?,
        release_686,
        kernel_686,
        busybox_i386: apt.package("busybox-static:i386")?,
        memtest: apt.package("memtest86+")?,
    })
}

fn complete(entry: &Path) -> bool {
    FILES
        .iter()
        .all(|f| fs::metadata(entry.join(f)).is_ok_and(|m| m.is_file() && m.len() > 0))
}

fn publish(images: &Path, entry: &Path) -> Result<(), String> {
    let manifest = read_file(&entry.join("manifest.toml"))?;
    let current = images.join("current.toml");
    if fs::read(&current).ok().as_deref() != Some(manifest.as_slice()) {
        write_atomic(&current, manifest)?;
    }
    Ok(())
}

/// Writes `kernel_file` (the bzImage of `kernel`, release `release`) and
/// `initramfs_file` (busybox from `busybox`, an ELF of `machine`).
fn fill_kernel(
    debs: &Path,
    work: &Path,
    out: &Path,
    (release, kernel, busybox): (&str, &Package, &Package),
    machine: u16,
    (kernel_file, initramfs_file): (&str, &str),
    module_roots: &[&str],
) -> Result<(), String> {
    let deb = |p: &Package| -> PathBuf { debs.join(p.deb_name()) };
    let kernel_tar = fsys_tar(&deb(kernel), &work.join(format!("{kernel_file}.tar")))?;
    let member = format!("./boot/vmlinuz-{release}");
    let image = extract_one(&kernel_tar, &member, &work.join(kernel_file))?;
    if image.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(format!("{member} is not a bzImage (no HdrS header)"));
    }
    write_file(&out.join(kernel_file), &image)?;
    say(format!(
        "{kernel_file}: {} bytes, from {member}",
        image.len()
    ));

    let busybox_tar = fsys_tar(&deb(busybox), &work.join(format!("{initramfs_file}.tar")))?;
    let members = tar_list(&busybox_tar)?;
    let member = ["./usr/bin/busybox", "./bin/busybox"]
        .into_iter()
        .find(|c| members.iter().any(|m| m == c))
        .ok_or(format!("{} has no busybox binary", busybox.name))?;
    let program = extract_one(&busybox_tar, member, &work.join(initramfs_file))?;
    let found = program
        .get(18..20)
        .map(|b| u16::from_le_bytes([b[0], b[1]]));
    if !program.starts_with(b"\x7fELF") || found != Some(machine) {
        return Err(format!(
            "{member} of {} is not an ELF program for machine {machine}",
            busybox.name
        ));
    }
    let modules = resolve_modules(
        &kernel_tar,
        release,
        &work.join(format!("{kernel_file}-modules")),
        module_roots,
    )?;
    let cpio = initramfs(release, &program, &modules);
    let gz = gzip(&cpio)?;
    write_file(&out.join(initramfs_file), &gz)?;
    say(format!("{initramfs_file}: {} bytes", gz.len()));
    Ok(())
}

fn fill(
    resolved: &Resolved,
    debs: &Path,
    out: &Path,
    entry: &Path,
    grub: &str,
) -> Result<(), String> {
    let work = out.join("work");
    create_dir(&work)?;
    fill_kernel(
        debs,
        &work,
        out,
        (&resolved.release, &resolved.kernel, &resolved.busybox),
        EM_X86_64,
        ("vmlinuz", "initramfs.cpio.gz"),
        AMD64_MODULES,
    )?;
    grub_images::build(
        &out.join("vmlinuz"),
        &out.join("initramfs.cpio.gz"),
        &work.join("grub"),
        out,
    )?;
    say("grub-disk.img, grub-cdrom.iso: GRUB with the amd64 kernel");
    let memtest_tar = fsys_tar(
        &debs.join(resolved.memtest.deb_name()),
        &work.join("memtest.tar"),
    )?;
    let memtest = extract_one(&memtest_tar, MEMTEST_MEMBER, &work.join("memtest"))?;
    if memtest.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(format!("{MEMTEST_MEMBER} has no Linux boot header (HdrS)"));
    }
    write_file(&out.join("memtest86+x64.bin"), &memtest)?;
    say(format!("memtest86+x64.bin: {} bytes", memtest.len()));
    fill_kernel(
        debs,
        &work,
        out,
        (
            &resolved.release_686,
            &resolved.kernel_686,
            &resolved.busybox_i386,
        ),
        EM_386,
        ("vmlinuz-686", "initramfs-i386.cpio.gz"),
        &[],
    )?;

    let mut manifest = String::from("# Debian x86 guest images built by `cargo xtask images`.\n");
    for (key, file) in [
        ("kernel", "vmlinuz"),
        ("initramfs", "initramfs.cpio.gz"),
        ("kernel_686", "vmlinuz-686"),
        ("initramfs_i386", "initramfs-i386.cpio.gz"),
        ("grub_disk", "grub-disk.img"),
        ("grub_cdrom", "grub-cdrom.iso"),
        ("memtest", "memtest86+x64.bin"),
    ] {
        manifest += &toml_line(key, &entry.join(file).to_string_lossy());
    }
    manifest += &toml_line("suite", SUITE);
    manifest += &toml_line("kernel_release", &resolved.release);
    manifest += &toml_line("kernel_686_release", &resolved.release_686);
    for (key, package) in resolved.packages() {
        manifest += &toml_line(&format!("{key}_version"), &package.version);
    }
    manifest += &toml_line("grub_version", grub);
    manifest += &toml_line("ready_marker", READY_MARKER);
    manifest += &format!("recipe = {RECIPE}\n");
    write_file(&out.join("manifest.toml"), manifest)?;
    fs::remove_dir_all(&work).map_err(|e| format!("cannot remove {}: {e}", work.display()))
}
