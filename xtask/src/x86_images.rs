//! `cargo xtask images` for the PC: Debian's amd64 kernel with an initramfs
//! of Debian's static amd64 busybox, from Debian bookworm (whose i386 kernels
//! will join them), through an apt configuration private to the project
//! (`~/.cache/turing/x86/apt/`), cached under `~/.cache/turing/images/x86/<versions>/`:
//!
//! - `vmlinuz`: the bzImage, as `--kernel` takes it;
//! - `initramfs.cpio.gz`: busybox and an `/init` that prints `TURING-INIT-READY`
//!   and starts a shell on the console (the riscv64 images' init, without modules);
//! - `manifest.toml`, copied to `~/.cache/turing/images/x86/current.toml`.
//!
//! The versions resolved once are kept in `resolved.toml` beside the apt state,
//! so a run whose images are built uses no network; `TURING_IMAGES_REFRESH=1`
//! resolves them again.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::apt_sources;
use crate::images::{
    Apt, Package, READY_MARKER, build_into, create_dir, depends, extract_one, fetch_debs, fsys_tar,
    gzip, initramfs, parse_toml_strings, read_file, say, tar_list, toml_line, write_atomic,
    write_file,
};

/// Bump when the way the images are made changes.
const RECIPE: u32 = 1;
const SUITE: &str = "bookworm";
const ARCH: &str = "amd64";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Linux x86 machine type in ELF headers.
const EM_X86_64: u16 = 62;
const FILES: [&str; 3] = ["vmlinuz", "initramfs.cpio.gz", "manifest.toml"];

/// The packages chosen.
struct Resolved {
    release: String,
    kernel: Package,
    busybox: Package,
}

impl Resolved {
    fn entry_name(&self) -> String {
        let bare = |v: &str| v.split_once(':').map_or(v, |(_, v)| v).to_owned();
        format!(
            "linux-{}_busybox-{}_r{RECIPE}",
            bare(&self.kernel.version),
            bare(&self.busybox.version)
        )
    }

    fn to_toml(&self) -> String {
        let mut text = toml_line("release", &self.release);
        for (key, package) in [("kernel", &self.kernel), ("busybox", &self.busybox)] {
            text += &toml_line(&format!("{key}_name"), &package.name);
            text += &toml_line(&format!("{key}_version"), &package.version);
            text += &toml_line(&format!("{key}_arch"), &package.arch);
        }
        text
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
    if let Some(resolved) = &saved {
        let entry = images.join(resolved.entry_name());
        if complete(&entry) {
            publish(&images, &entry)?;
            say(format!("x86 up to date: {}", entry.display()));
            return Ok(());
        }
    }
    let mut apt = Apt::at(&apt_root, ARCH)?;
    let resolved = match saved {
        Some(resolved) => resolved,
        None => {
            let mirror = apt_sources::debian_mirror()?;
            say(format!(
                "updating the package index of Debian {SUITE} ({ARCH}) from {mirror}"
            ));
            apt.set_source(&format!(
                "deb [arch={ARCH} signed-by={KEYRING}] {mirror} {SUITE} main\n"
            ))?;
            apt.update()?;
            resolve(&apt)?
        }
    };
    let missing: Vec<&Package> = [&resolved.kernel, &resolved.busybox]
        .into_iter()
        .filter(|p| !debs.join(p.deb_name()).is_file())
        .collect();
    fetch_debs(&apt, &debs, &missing)?;
    write_atomic(&resolved_file, resolved.to_toml())?;

    let entry = images.join(resolved.entry_name());
    build_into(&entry, |tmp| fill(&resolved, &debs, tmp, &entry))?;
    publish(&images, &entry)?;
    say(format!(
        "x86 images ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        entry.display()
    ));
    Ok(())
}

/// Follows `linux-image-amd64` to the package holding the kernel.
fn resolve(apt: &Apt) -> Result<Resolved, String> {
    let meta = apt.show("linux-image-amd64")?;
    let image = depends(&meta)
        .into_iter()
        .find(|d| d.starts_with("linux-image-"))
        .ok_or("linux-image-amd64 depends on no linux-image-<version> package")?;
    Ok(Resolved {
        release: image["linux-image-".len()..].to_owned(),
        kernel: apt.package(&image)?,
        busybox: apt.package("busybox-static")?,
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

fn fill(resolved: &Resolved, debs: &Path, out: &Path, entry: &Path) -> Result<(), String> {
    let work = out.join("work");
    create_dir(&work)?;
    let release = &resolved.release;
    let deb = |p: &Package| -> PathBuf { debs.join(p.deb_name()) };

    let kernel_tar = fsys_tar(&deb(&resolved.kernel), &work.join("kernel.tar"))?;
    let member = format!("./boot/vmlinuz-{release}");
    let image = extract_one(&kernel_tar, &member, &work.join("kernel"))?;
    if image.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(format!("{member} is not a bzImage (no HdrS header)"));
    }
    write_file(&out.join("vmlinuz"), &image)?;
    say(format!("vmlinuz: {} bytes, from {member}", image.len()));

    let busybox_tar = fsys_tar(&deb(&resolved.busybox), &work.join("busybox.tar"))?;
    let members = tar_list(&busybox_tar)?;
    let member = ["./usr/bin/busybox", "./bin/busybox"]
        .into_iter()
        .find(|c| members.iter().any(|m| m == c))
        .ok_or(format!("{} has no busybox binary", resolved.busybox.name))?;
    let busybox = extract_one(&busybox_tar, member, &work.join("busybox"))?;
    let machine = busybox
        .get(18..20)
        .map(|b| u16::from_le_bytes([b[0], b[1]]));
    if !busybox.starts_with(b"\x7fELF") || machine != Some(EM_X86_64) {
        return Err(format!("{member} is not an x86-64 ELF program"));
    }
    let cpio = initramfs(release, &busybox, &[]);
    let gz = gzip(&cpio)?;
    write_file(&out.join("initramfs.cpio.gz"), &gz)?;
    say(format!("initramfs.cpio.gz: {} bytes", gz.len()));

    let mut manifest = String::from("# Debian amd64 guest images built by `cargo xtask images`.\n");
    for (key, file) in [("kernel", "vmlinuz"), ("initramfs", "initramfs.cpio.gz")] {
        manifest += &toml_line(key, &entry.join(file).to_string_lossy());
    }
    manifest += &toml_line("suite", SUITE);
    manifest += &toml_line("kernel_release", release);
    manifest += &toml_line("kernel_version", &resolved.kernel.version);
    manifest += &toml_line("busybox_version", &resolved.busybox.version);
    manifest += &toml_line("ready_marker", READY_MARKER);
    manifest += &format!("recipe = {RECIPE}\n");
    write_file(&out.join("manifest.toml"), manifest)?;
    fs::remove_dir_all(&work).map_err(|e| format!("cannot remove {}: {e}", work.display()))
}
