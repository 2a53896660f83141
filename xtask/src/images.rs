//! `cargo xtask images`: Linux guest images made from Debian's riscv64 packages.
//!
//! An apt configuration private to the project (under `~/.cache/turing/apt/`, never the
//! host's) downloads the kernel, its modules, `busybox-static`, `opensbi` and `u-boot-qemu` from
//! Debian unstable (testing if unstable's index fails), through the mirror the host's
//! apt sources use or the one `TURING_DEBIAN_MIRROR` names (see `apt_sources`). From
//! them this builds, under `~/.cache/turing/images/<versions>/`:
//!
//! - `Image`: the uncompressed RISC-V kernel Image,
//! - `initramfs.cpio.gz`: busybox, the modules for virtio-mmio, virtio-blk, virtio-rng,
//!   virtio-net and ext4 (decompressed, loaded in dependency order by `/init`), and an `/init` that
//!   prints `TURING-INIT-READY` and starts a shell on the console,
//! - `disk.img`: a small ext4 file system holding `/hello.txt`,
//! - `fw_dynamic.bin`: OpenSBI for QEMU's `virt` machine,
//! - `u-boot-smode.bin` and `u-boot-smode.elf`: U-Boot's S-mode build for QEMU's
//!   `virt` machine, as a raw binary and as an ELF,
//! - `busybox`: the static riscv64 busybox by itself, for `turing user`,
//! - `sysroot/`: a riscv64 root for dynamically linked programs under `turing
//!   user`: Debian's libc6, coreutils and python3-minimal with their dependencies,
//! - `manifest.toml`: the paths of those four files, the versions and the module list,
//!
//! and copies that manifest to `~/.cache/turing/images/current.toml` for the tests.
//!
//! The versions resolved once are kept in `~/.cache/turing/apt/resolved.toml`, so a run
//! whose images are already built uses no network and does nothing but say so. Set
//! `TURING_IMAGES_REFRESH=1` to resolve the newest versions again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::apt_sources;

/// Bump when the way the images are made changes, so cached entries are rebuilt.
const RECIPE: u32 = 9;
/// Debian suites tried in order; the first whose index loads and resolves is used.
const SUITES: &[&str] = &["sid", "forky"];
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Kernel modules the guests need; their dependencies are added.
const ROOT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_rng",
    "ext4",
    "virtio_gpu",
    "virtio_input",
    "virtio_net",
];
/// Size of `disk.img`, as `mke2fs` takes it.
const DISK_SIZE: &str = "32M";
const HELLO: &str = "hello from the turing disk image\n";
/// Printed by `/init` once the modules are loaded, just before the shell starts.
pub const READY_MARKER: &str = "TURING-INIT-READY";
/// The RISC-V Linux Image magic, at offset 0x38 of the Image header.
const IMAGE_MAGIC: &[u8; 4] = b"RSC\x05";
/// Fixed UUID (and directory hash seed) of the ext4 image, so it is reproducible.
const DISK_UUID: &str = "7475726e-6e67-4d6b-9a5e-6469736b0001";
/// Fixed time (seconds since 1970) of everything in the ext4 image.
const DISK_TIME: u64 = 1_700_000_000;

pub(crate) fn say(message: impl AsRef<str>) {
    eprintln!("xtask: images: {}", message.as_ref());
}

/// Builds the images unless they are cached; always refreshes `current.toml`.
pub fn build() -> Result<(), String> {
    let started = Instant::now();
    let dirs = Dirs::new()?;
    let refresh = std::env::var("TURING_IMAGES_REFRESH").is_ok_and(|v| !v.is_empty() && v != "0");
    let saved = if refresh {
        None
    } else {
        Resolved::load(&dirs.resolved_file())
    };
    if let Some(resolved) = &saved {
        let entry = dirs.images.join(resolved.entry_name());
        if entry_complete(&entry) {
            publish_current(&dirs, &entry)?;
            say(format!("up to date: {}", entry.display()));
            return Ok(());
        }
    }

    let mut apt = Apt::new(&dirs)?;
    let mut resolved = match saved {
        Some(resolved) => resolved,
        None => apt.update_and_resolve()?,
    };
    let debs = match download(&apt, &resolved, &dirs.debs) {
        Ok(debs) => debs,
        Err(e) if !apt.updated => {
            say(format!(
                "cannot download with the saved package index ({e}); updating it"
            ));
            resolved = apt.update_and_resolve()?;
            download(&apt, &resolved, &dirs.debs)?
        }
        Err(e) => return Err(e),
    };
    resolved.save(&dirs.resolved_file())?;
    say(format!(
        "using {} (suite {}): {} {}, {} {}, {} {}, {} {}, {} {}",
        resolved.kernel_release,
        resolved.suite,
        resolved.kernel.name,
        resolved.kernel.version,
        resolved.modules.name,
        resolved.modules.version,
        resolved.busybox.name,
        resolved.busybox.version,
        resolved.opensbi.name,
        resolved.opensbi.version,
        resolved.uboot.name,
        resolved.uboot.version
    ));

    let entry = dirs.images.join(resolved.entry_name());
    if !entry_complete(&entry) {
        build_entry(&dirs, &apt, &resolved, &debs, &entry)?;
    }
    publish_current(&dirs, &entry)?;
    say(format!(
        "ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        entry.display()
    ));
    Ok(())
}

/// The project's cache folders.
pub(crate) struct Dirs {
    apt: PathBuf,
    pub(crate) debs: PathBuf,
    pub(crate) images: PathBuf,
}

impl Dirs {
    pub(crate) fn new() -> Result<Self, String> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or("HOME is not set")?;
        let root = Path::new(&home).join(".cache").join("turing");
        let dirs = Self {
            apt: root.join("apt"),
            debs: root.join("apt").join("debs"),
            images: root.join("images"),
        };
        for dir in [&dirs.apt, &dirs.debs, &dirs.images] {
            create_dir(dir)?;
        }
        Ok(dirs)
    }

    fn resolved_file(&self) -> PathBuf {
        self.apt.join("resolved.toml")
    }
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub(crate) fn write_file(path: &Path, data: impl AsRef<[u8]>) -> Result<(), String> {
    fs::write(path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), String> {
    fs::rename(from, to)
        .map_err(|e| format!("cannot rename {} to {}: {e}", from.display(), to.display()))
}

/// Writes a file through a temporary name, so readers never see half of it.
pub(crate) fn write_atomic(path: &Path, data: impl AsRef<[u8]>) -> Result<(), String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    write_file(&tmp, data)?;
    rename(&tmp, path)
}

/// Runs a command to completion; on failure the error has its stderr.
pub(crate) fn run(command: &mut Command) -> Result<Vec<u8>, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "{} failed ({}): {}",
            describe(command),
            output.status,
            stderr.trim()
        ))
    }
}

pub(crate) fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Removes what an interrupted run left: folders named `.tmp-<pid>-...` or
/// `.download-<pid>` whose process is gone.
/// Builds a cache entry: `fill` writes into a fresh temporary folder beside
/// `entry`, which is then renamed to `entry` (replacing an older one), so an
/// interrupted build leaves no half entry; the folder goes if anything fails.
pub(crate) fn build_into(
    entry: &Path,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let parent = entry.parent().ok_or("a cache entry has a parent folder")?;
    let name = entry
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("bad cache entry name")?;
    remove_stale(parent, ".tmp-");
    let tmp = parent.join(format!(".tmp-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    create_dir(&tmp)?;
    let result = fill(&tmp).and_then(|()| {
        if entry.exists() {
            fs::remove_dir_all(entry)
                .map_err(|e| format!("cannot remove {}: {e}", entry.display()))?;
        }
        rename(&tmp, entry)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

pub(crate) fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

// ---------------------------------------------------------------------------------
// apt, private to the project

/// One binary package at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) arch: String,
}

impl Package {
    /// The file name `apt-get download` gives it.
    pub(crate) fn deb_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// The packages chosen for the images.
#[derive(Clone, Debug)]
struct Resolved {
    suite: String,
    /// `uname -r` of the kernel, as in `/usr/lib/modules/<release>`.
    kernel_release: String,
    /// The package holding the kernel Image.
    kernel: Package,
    /// The package holding the modules (the same as `kernel` if not split).
    modules: Package,
    busybox: Package,
    opensbi: Package,
    uboot: Package,
}

impl Resolved {
    fn packages(&self) -> [(&'static str, &Package); 5] {
        [
            ("kernel", &self.kernel),
            ("modules", &self.modules),
            ("busybox", &self.busybox),
            ("opensbi", &self.opensbi),
            ("uboot", &self.uboot),
        ]
    }

    /// The cache folder's name: every version that goes into the images.
    fn entry_name(&self) -> String {
        let bare = bare_version;
        let mut name = format!("linux-{}", bare(&self.kernel.version));
        if self.modules.version != self.kernel.version {
            name.push_str(&format!("_modules-{}", bare(&self.modules.version)));
        }
        name.push_str(&format!(
            "_busybox-{}_opensbi-{}_u-boot-{}_r{RECIPE}",
            bare(&self.busybox.version),
            bare(&self.opensbi.version),
            bare(&self.uboot.version)
        ));
        name
    }

    fn to_toml(&self) -> String {
        let mut text = String::from(
            "# Debian packages resolved by `cargo xtask images`; delete to resolve again.\n",
        );
        text.push_str(&toml_line("suite", &self.suite));
        text.push_str(&toml_line("kernel_release", &self.kernel_release));
        for (key, package) in self.packages() {
            text.push_str(&toml_line(&format!("{key}_package"), &package.name));
            text.push_str(&toml_line(&format!("{key}_version"), &package.version));
            text.push_str(&toml_line(&format!("{key}_arch"), &package.arch));
        }
        text
    }

    fn load(path: &Path) -> Option<Self> {
        let text = fs::read_to_string(path).ok()?;
        let values = parse_toml_strings(&text);
        let get = |key: &str| values.get(key).cloned();
        let package = |key: &str| {
            Some(Package {
                name: get(&format!("{key}_package"))?,
                version: get(&format!("{key}_version"))?,
                arch: get(&format!("{key}_arch"))?,
            })
        };
        Some(Self {
            suite: get("suite")?,
            kernel_release: get("kernel_release")?,
            kernel: package("kernel")?,
            modules: package("modules")?,
            busybox: package("busybox")?,
            opensbi: package("opensbi")?,
            uboot: package("uboot")?,
        })
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        write_atomic(path, self.to_toml())
    }
}

/// A TOML `key = "value"` line.
/// A Debian version without its epoch (`1:1.35.0-4` -> `1.35.0-4`), for
/// cache folder names.
pub(crate) fn bare_version(version: &str) -> String {
    version
        .split_once(':')
        .map_or(version, |(_, v)| v)
        .to_owned()
}

pub(crate) fn toml_line(key: &str, value: &str) -> String {
    format!("{key} = {}\n", toml_string(value))
}

pub(crate) fn toml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `key = "value"` lines of a small TOML file (other lines are skipped).
pub(crate) fn parse_toml_strings(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            let unescaped = inner.replace("\\\"", "\"").replace("\\\\", "\\");
            values.insert(key.trim().to_owned(), unescaped);
        }
    }
    values
}

/// apt-get and apt-cache with the project's own configuration, state and cache.
pub(crate) struct Apt {
    config: PathBuf,
    sources: PathBuf,
    /// The native architecture: other packages are named `name:arch`.
    native: String,
    /// Whether this run has updated the package index.
    updated: bool,
}

impl Apt {
    pub(crate) fn new(dirs: &Dirs) -> Result<Self, String> {
        Apt::at(&dirs.apt, &["riscv64"])
    }

    /// An apt rooted at `root` for Debian's packages of `arches` (the first is
    /// the native one: package names without `:arch` mean it).
    pub(crate) fn at(root: &Path, arches: &[&str]) -> Result<Self, String> {
        let arch = arches.first().ok_or("an apt needs an architecture")?;
        let all = arches
            .iter()
            .map(|a| format!("\"{a}\"; "))
            .collect::<String>();
        for sub in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
        ] {
            create_dir(&root.join(sub))?;
        }
        let status = root.join("state/status");
        if !status.exists() {
            write_file(&status, "")?;
        }
        let dir = |sub: &str| format!("{}/", root.join(sub).display());
        // Check-Valid-Until is off because the mirror reached from here can serve an
        // index days past its Valid-Until date; signatures are still checked.
        let config = format!(
            "// apt configuration private to Turing's `cargo xtask images`.\n\
             Dir::Etc \"{etc}\";\n\
             Dir::State \"{state}\";\n\
             Dir::State::status \"{status}\";\n\
             Dir::Cache \"{cache}\";\n\
             Dir::Log \"{log}\";\n\
             APT::Architecture \"{arch}\";\n\
             APT::Architectures {{ {all}}};\n\
             APT::Install-Recommends \"false\";\n\
             Acquire::Languages \"none\";\n\
             Acquire::Check-Valid-Until \"false\";\n\
             APT::Sandbox::User \"root\";\n",
            etc = dir("etc"),
            state = dir("state"),
            status = status.display(),
            cache = dir("cache"),
            log = dir("log"),
        );
        let path = root.join("apt.conf");
        if fs::read_to_string(&path).ok().as_deref() != Some(config.as_str()) {
            write_atomic(&path, config)?;
        }
        Ok(Self {
            config: path,
            sources: root.join("etc/sources.list"),
            native: (*arch).to_owned(),
            updated: false,
        })
    }

    /// Uses the one source line `line` from now on.
    pub(crate) fn set_source(&mut self, line: &str) -> Result<(), String> {
        self.updated = true;
        write_atomic(&self.sources, line)
    }

    pub(crate) fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("APT_CONFIG", &self.config)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
    }

    /// Updates the index from the first suite that works and resolves the packages.
    fn update_and_resolve(&mut self) -> Result<Resolved, String> {
        // Looked up only here, so a run with a saved index needs no mirror.
        let mirror = apt_sources::debian_mirror()?;
        let mut errors = Vec::new();
        for suite in SUITES {
            say(format!(
                "updating the package index of Debian {suite} (riscv64) from {mirror}"
            ));
            let line = format!("deb [arch=riscv64 signed-by={KEYRING}] {mirror} {suite} main\n");
            write_atomic(&self.sources, line)?;
            self.updated = true;
            let started = Instant::now();
            let result = self.update().and_then(|()| self.resolve(suite));
            match result {
                Ok(resolved) => {
                    say(format!(
                        "index updated and resolved in {:.1} s",
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(resolved);
                }
                Err(e) => {
                    say(format!("Debian {suite} did not work: {e}"));
                    errors.push(format!("{suite}: {e}"));
                }
            }
        }
        Err(format!(
            "no Debian suite gave the packages from {mirror} (set {} to use another \
             mirror): {}",
            apt_sources::MIRROR_VARIABLE,
            errors.join("; ")
        ))
    }

    pub(crate) fn update(&self) -> Result<(), String> {
        let output = self
            .command("apt-get")
            .args(["-q", "update"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // apt-get update can exit 0 after failing to fetch or verify a source.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("E:") || l.starts_with("W: Failed"))
            .collect();
        if output.status.success() && errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "apt-get update failed ({}): {}",
                output.status,
                if errors.is_empty() {
                    stderr.trim().to_owned()
                } else {
                    errors.join(" ")
                }
            ))
        }
    }

    /// `apt-cache show` of the candidate version, as field name -> value;
    /// `package` may name a foreign architecture's (`name:arch`).
    pub(crate) fn show(&self, package: &str) -> Result<BTreeMap<String, String>, String> {
        let stdout = run(self
            .command("apt-cache")
            .args(["show", "--no-all-versions", package]))?;
        let fields = parse_control(&String::from_utf8_lossy(&stdout));
        let name = package.split(':').next().unwrap_or(package);
        if fields.get("Package").map(String::as_str) != Some(name) {
            return Err(format!("apt-cache show {package} gave no such package"));
        }
        Ok(fields)
    }

    /// The candidate version of package `name` (`name:arch` for a foreign
    /// architecture's).
    pub(crate) fn package(&self, name: &str) -> Result<Package, String> {
        let fields = self.show(name)?;
        let name = name.split(':').next().unwrap_or(name);
        let field = |key: &str| {
            fields
                .get(key)
                .cloned()
                .ok_or(format!("{name} has no {key} field"))
        };
        Ok(Package {
            name: name.to_owned(),
            version: field("Version")?,
            arch: field("Architecture")?,
        })
    }

    /// Follows `linux-image-riscv64` to the packages holding the kernel and modules.
    fn resolve(&self, suite: &str) -> Result<Resolved, String> {
        let meta = self.show("linux-image-riscv64")?;
        let image = depends(&meta)
            .into_iter()
            .find(|d| d.starts_with("linux-image-"))
            .ok_or("linux-image-riscv64 depends on no linux-image-<version> package")?;
        let release = image["linux-image-".len()..].to_owned();
        let image_depends = depends(&self.show(&image)?);
        let binary = format!("linux-binary-{release}");
        let modules = format!("linux-modules-{release}");
        let kernel = self.package(if image_depends.contains(&binary) {
            &binary
        } else {
            &image
        })?;
        let modules = if image_depends.contains(&modules) {
            self.package(&modules)?
        } else {
            kernel.clone()
        };
        Ok(Resolved {
            suite: suite.to_owned(),
            kernel_release: release,
            kernel,
            modules,
            busybox: self.package("busybox-static")?,
            opensbi: self.package("opensbi")?,
            uboot: self.package("u-boot-qemu")?,
        })
    }
}

/// The first paragraph of a Debian control text, as field name -> value.
fn parse_control(text: &str) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(value) = last.as_ref().and_then(|k| fields.get_mut(k)) {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.insert(key.to_owned(), value.trim().to_owned());
            last = Some(key.to_owned());
        }
    }
    fields
}

/// The package names in a `Depends` field (each alternative's first choice).
pub(crate) fn depends(fields: &BTreeMap<String, String>) -> Vec<String> {
    fields
        .get("Depends")
        .map(|d| {
            d.split(',')
                .filter_map(|alt| alt.split('|').next())
                .filter_map(|p| p.split_whitespace().next())
                .map(|p| p.split(':').next().unwrap_or(p).to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The downloaded `.deb` files.
struct Debs {
    kernel: PathBuf,
    modules: PathBuf,
    busybox: PathBuf,
    opensbi: PathBuf,
    uboot: PathBuf,
}

/// Downloads the packages that are not in `debs` yet.
fn download(apt: &Apt, resolved: &Resolved, debs: &Path) -> Result<Debs, String> {
    remove_stale(debs, ".download-");
    let mut missing: Vec<&Package> = Vec::new();
    for (_, package) in resolved.packages() {
        if !debs.join(package.deb_name()).is_file() && !missing.contains(&package) {
            missing.push(package);
        }
    }
    fetch_debs(apt, debs, &missing)?;
    let path = |package: &Package| debs.join(package.deb_name());
    Ok(Debs {
        kernel: path(&resolved.kernel),
        modules: path(&resolved.modules),
        busybox: path(&resolved.busybox),
        opensbi: path(&resolved.opensbi),
        uboot: path(&resolved.uboot),
    })
}

// ---------------------------------------------------------------------------------
// Building an image set

const IMAGE_FILES: [&str; 8] = [
    "Image",
    "initramfs.cpio.gz",
    "disk.img",
    "fw_dynamic.bin",
    "u-boot-smode.bin",
    "u-boot-smode.elf",
    "busybox",
    "sysroot/.complete",
];

fn entry_complete(entry: &Path) -> bool {
    entry.join("manifest.toml").is_file()
        && IMAGE_FILES
            .iter()
            .all(|f| fs::metadata(entry.join(f)).is_ok_and(|m| m.is_file() && m.len() > 0))
}

/// Copies the entry's manifest to `current.toml` if it differs, and points the
/// `current` symlink at the entry (for suites: `TURING_IMAGES=.../current`).
fn publish_current(dirs: &Dirs, entry: &Path) -> Result<(), String> {
    let manifest = read_file(&entry.join("manifest.toml"))?;
    let current = dirs.images.join("current.toml");
    if fs::read(&current).ok().as_deref() != Some(manifest.as_slice()) {
        write_atomic(&current, manifest)?;
    }
    let link = dirs.images.join("current");
    if fs::read_link(&link).ok().as_deref() != Some(entry) {
        // Replace atomically: a new link under a temporary name, renamed over.
        let tmp = dirs
            .images
            .join(format!(".tmp-link-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(entry, &tmp)
            .and_then(|()| fs::rename(&tmp, &link))
            .map_err(|e| {
                format!(
                    "cannot point {} at {}: {e}",
                    link.display(),
                    entry.display()
                )
            })?;
    }
    Ok(())
}

/// Builds the images into a temporary folder and renames it to `entry` at the end.
fn build_entry(
    dirs: &Dirs,
    apt: &Apt,
    resolved: &Resolved,
    debs: &Debs,
    entry: &Path,
) -> Result<(), String> {
    build_into(entry, |tmp| {
        fill_entry(resolved, debs, tmp, entry)
            .and_then(|()| build_sysroot(apt, &dirs.debs, &tmp.join("sysroot")))
    })
}

fn fill_entry(resolved: &Resolved, debs: &Debs, out: &Path, entry: &Path) -> Result<(), String> {
    let work = out.join("work");
    create_dir(&work)?;
    let release = &resolved.kernel_release;

    // The packages' file trees, as plain tar files (fast to list and extract from).
    let step = Instant::now();
    let kernel_tar = fsys_tar(&debs.kernel, &work.join("kernel.tar"))?;
    let modules_tar = if debs.modules == debs.kernel {
        kernel_tar.clone()
    } else {
        fsys_tar(&debs.modules, &work.join("modules.tar"))?
    };
    let busybox_tar = fsys_tar(&debs.busybox, &work.join("busybox.tar"))?;
    let opensbi_tar = fsys_tar(&debs.opensbi, &work.join("opensbi.tar"))?;
    let uboot_tar = fsys_tar(&debs.uboot, &work.join("u-boot.tar"))?;
    say(format!(
        "unpacked the packages in {:.1} s",
        step.elapsed().as_secs_f64()
    ));

    // Kernel.
    let members = tar_list(&kernel_tar)?;
    let candidates = [
        format!("./usr/lib/modules/{release}/vmlinuz"),
        format!("./boot/vmlinuz-{release}"),
        format!("./boot/vmlinux-{release}"),
    ];
    let vmlinuz = candidates
        .iter()
        .find(|c| members.contains(*c))
        .ok_or(format!(
            "{} has no kernel (looked for {})",
            resolved.kernel.name,
            candidates.join(", ")
        ))?;
    let image = extract_one(&kernel_tar, vmlinuz, &work.join("kernel"))?;
    check_image(&image, vmlinuz)?;
    write_file(&out.join("Image"), &image)?;
    say(format!("Image: {} bytes, from {vmlinuz}", image.len()));

    // OpenSBI.
    let members = tar_list(&opensbi_tar)?;
    let firmware = members
        .iter()
        .find(|m| m.ends_with("/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"))
        .or_else(|| {
            members.iter().find(|m| {
                m.ends_with("/generic/fw_dynamic.bin") && m.contains("64") && !m.contains("32")
            })
        })
        .ok_or(format!(
            "{} has no riscv64 generic/fw_dynamic.bin",
            resolved.opensbi.name
        ))?;
    let firmware_data = extract_one(&opensbi_tar, firmware, &work.join("opensbi"))?;
    write_file(&out.join("fw_dynamic.bin"), &firmware_data)?;
    say(format!("fw_dynamic.bin: from {firmware}"));

    // U-Boot, S-mode build (runs behind SBI firmware).
    for (member, file) in [
        (
            "./usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin",
            "u-boot-smode.bin",
        ),
        (
            "./usr/lib/u-boot/qemu-riscv64_smode/uboot.elf",
            "u-boot-smode.elf",
        ),
    ] {
        let data = extract_one(&uboot_tar, member, &work.join("u-boot"))?;
        write_file(&out.join(file), &data)?;
        say(format!("{file}: from {member}"));
    }

    // Busybox.
    let members = tar_list(&busybox_tar)?;
    let busybox_member = ["./usr/bin/busybox", "./bin/busybox"]
        .into_iter()
        .find(|c| members.iter().any(|m| m == c))
        .ok_or(format!("{} has no busybox binary", resolved.busybox.name))?;
    let busybox = extract_one(&busybox_tar, busybox_member, &work.join("busybox"))?;
    check_riscv64_elf(&busybox, "busybox")?;
    // The same static busybox as a program of its own, for `turing user` tests.
    write_file(&out.join("busybox"), &busybox)?;
    set_executable(&out.join("busybox"))?;

    // Modules.
    let step = Instant::now();
    let modules = resolve_modules(&modules_tar, release, &work.join("modules"), ROOT_MODULES)?;
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    say(format!(
        "modules in load order: {} ({:.1} s)",
        names.join(" "),
        step.elapsed().as_secs_f64()
    ));

    // Initramfs.
    let cpio = initramfs(release, &busybox, &modules);
    let gz = gzip(&cpio)?;
    write_file(&out.join("initramfs.cpio.gz"), &gz)?;
    say(format!(
        "initramfs.cpio.gz: {} bytes ({} uncompressed)",
        gz.len(),
        cpio.len()
    ));

    // Disk.
    make_disk(&work.join("disk-root"), &out.join("disk.img"))?;
    say(format!("disk.img: {DISK_SIZE} ext4 with /hello.txt"));

    // Manifest, with the paths the files will have once renamed into place.
    let mut manifest = String::from(
        "# Debian guest images built by `cargo xtask images`.\n\
         # current.toml is a copy of the manifest of the newest images.\n",
    );
    for (key, file) in [
        ("kernel", "Image"),
        ("initramfs", "initramfs.cpio.gz"),
        ("disk", "disk.img"),
        ("opensbi", "fw_dynamic.bin"),
        ("uboot_smode", "u-boot-smode.bin"),
        ("uboot_smode_elf", "u-boot-smode.elf"),
        ("busybox", "busybox"),
        ("sysroot", "sysroot"),
    ] {
        manifest.push_str(&toml_line(key, &entry.join(file).to_string_lossy()));
    }
    manifest.push_str(&toml_line("suite", &resolved.suite));
    manifest.push_str(&toml_line("kernel_release", release));
    for (key, package) in resolved.packages() {
        manifest.push_str(&toml_line(&format!("{key}_package"), &package.name));
        manifest.push_str(&toml_line(&format!("{key}_version"), &package.version));
    }
    manifest.push_str(&toml_line("ready_marker", READY_MARKER));
    manifest.push_str(&toml_line("disk_hello", HELLO.trim_end()));
    manifest.push_str(&format!("recipe = {RECIPE}\n"));
    let quoted: Vec<String> = names.iter().map(|n| toml_string(n)).collect();
    manifest.push_str(&format!("modules = [{}]\n", quoted.join(", ")));
    write_file(&out.join("manifest.toml"), manifest)?;

    fs::remove_dir_all(&work).map_err(|e| format!("cannot remove {}: {e}", work.display()))
}

/// Makes a file executable by everyone (rwxr-xr-x).
pub(crate) fn set_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make {} executable: {e}", path.display()))
}

/// Downloads `packages` (exact versions) into `debs`, through a private partial
/// folder so an interrupted download leaves no half file behind.
pub(crate) fn fetch_debs(apt: &Apt, debs: &Path, packages: &[&Package]) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = packages
        .iter()
        .map(|p| {
            if p.arch == apt.native || p.arch == "all" {
                format!("{}={}", p.name, p.version)
            } else {
                format!("{}:{}={}", p.name, p.arch, p.version)
            }
        })
        .collect();
    say(format!("downloading {}", names.join(" ")));
    let started = Instant::now();
    let partial = debs.join(format!(".download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    create_dir(&partial)?;
    let result = run(apt
        .command("apt-get")
        .args(["-q", "download"])
        .args(&names)
        .current_dir(&partial));
    let result = result.and_then(|_| {
        for package in packages {
            let name = package.deb_name();
            rename(&partial.join(&name), &debs.join(&name))?;
        }
        Ok(())
    });
    let _ = fs::remove_dir_all(&partial);
    result?;
    say(format!(
        "downloaded in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Writes the file tree of a `.deb` as a plain tar file.
pub(crate) fn fsys_tar(deb: &Path, tar: &Path) -> Result<PathBuf, String> {
    let file =
        fs::File::create(tar).map_err(|e| format!("cannot create {}: {e}", tar.display()))?;
    let mut command = Command::new("dpkg-deb");
    command.arg("--fsys-tarfile").arg(deb).stdout(file);
    let status = command
        .status()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    if status.success() {
        Ok(tar.to_owned())
    } else {
        Err(format!("{} failed ({status})", describe(&command)))
    }
}

pub(crate) fn tar_list(tar: &Path) -> Result<Vec<String>, String> {
    let stdout = run(Command::new("tar").arg("-tf").arg(tar))?;
    Ok(String::from_utf8_lossy(&stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Extracts `members` of `tar` under `dir` (which is created).
fn tar_extract(tar: &Path, dir: &Path, members: &[&str]) -> Result<(), String> {
    create_dir(dir)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(dir)
        .arg("--no-same-owner")
        .arg("--")
        .args(members))?;
    Ok(())
}

pub(crate) fn extract_one(tar: &Path, member: &str, dir: &Path) -> Result<Vec<u8>, String> {
    tar_extract(tar, dir, &[member])?;
    read_file(&dir.join(member))
}

fn check_image(image: &[u8], what: &str) -> Result<(), String> {
    if image.get(0x38..0x3c) != Some(IMAGE_MAGIC.as_slice()) {
        return Err(format!(
            "{what} is not an uncompressed RISC-V Linux Image: no \"RSC\\x05\" magic at \
             offset 0x38 (first bytes {:02x?})",
            &image[..image.len().min(16)]
        ));
    }
    Ok(())
}

fn check_riscv64_elf(data: &[u8], what: &str) -> Result<(), String> {
    const EM_RISCV: u16 = 243;
    let ok = data.starts_with(b"\x7fELF")
        && data.get(4) == Some(&2)
        && data.get(18..20) == Some(EM_RISCV.to_le_bytes().as_slice());
    if ok {
        Ok(())
    } else {
        Err(format!("{what} is not a 64-bit RISC-V ELF file"))
    }
}

// ---------------------------------------------------------------------------------
// Kernel modules

/// One kernel module, decompressed, with what its `.modinfo` says.
#[derive(Debug)]
pub(crate) struct Module {
    name: String,
    ko: Vec<u8>,
    depends: Vec<String>,
    /// `softdep=pre:` names, which may be module names or aliases.
    pre: Vec<String>,
    aliases: Vec<String>,
}

fn module_name(text: &str) -> String {
    text.replace('-', "_")
}

/// Finds the root modules and everything they need in the modules package (which
/// ships no `modules.dep`: that is made by `depmod` when installed), from each
/// module's `.modinfo`: `depends=` and the `pre:` part of `softdep=`. Returns them in
/// load order, dependencies first. Extracts only the modules it looks at.
pub(crate) fn resolve_modules(
    tar: &Path,
    release: &str,
    dir: &Path,
    roots: &[&str],
) -> Result<Vec<Module>, String> {
    let prefix = format!("./usr/lib/modules/{release}/kernel/");
    let old_prefix = format!("./lib/modules/{release}/kernel/");
    let mut index: BTreeMap<String, String> = BTreeMap::new();
    for member in tar_list(tar)? {
        if !member.starts_with(&prefix) && !member.starts_with(&old_prefix) {
            continue;
        }
        let file = member.rsplit('/').next().unwrap_or("");
        let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
            .iter()
            .find_map(|ext| file.strip_suffix(ext));
        if let Some(stem) = stem {
            index.insert(module_name(stem), member);
        }
    }
    if index.is_empty() {
        return Err(format!("no modules for {release} in the modules package"));
    }

    let mut loaded: BTreeMap<String, Module> = BTreeMap::new();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for root in roots {
        if index.contains_key(*root) {
            wanted.insert((*root).to_owned());
        } else {
            say(format!(
                "module {root} is not in the package: assuming it is built in"
            ));
        }
    }
    loop {
        let batch: Vec<String> = wanted
            .iter()
            .filter(|n| !loaded.contains_key(*n))
            .cloned()
            .collect();
        if batch.is_empty() {
            break;
        }
        let members: Vec<&str> = batch.iter().map(|n| index[n].as_str()).collect();
        tar_extract(tar, dir, &members)?;
        for name in batch {
            let module = load_module(&dir.join(&index[&name]), release)?;
            if module.name != name {
                return Err(format!("{} says its name is {}", index[&name], module.name));
            }
            for dep in &module.depends {
                if !index.contains_key(dep) {
                    return Err(format!(
                        "{name} depends on {dep}, which is not in the package"
                    ));
                }
                wanted.insert(dep.clone());
            }
            for soft in &module.pre {
                // A module name, or an alias (like crypto-crc32c): then probe the
                // modules whose names start with it, and keep the one it names.
                let soft = module_name(soft);
                if index.contains_key(&soft) {
                    wanted.insert(soft);
                } else {
                    let stem = soft.strip_prefix("crypto_").unwrap_or(&soft).to_owned();
                    wanted.extend(index.keys().filter(|k| k.starts_with(&stem)).cloned());
                }
            }
            loaded.insert(name, module);
        }
    }

    // Depth-first, dependencies (and pre soft dependencies) first.
    fn visit(
        name: &str,
        loaded: &BTreeMap<String, Module>,
        order: &mut Vec<String>,
        visiting: &mut BTreeSet<String>,
    ) {
        if order.iter().any(|n| n == name) || !visiting.insert(name.to_owned()) {
            return;
        }
        let Some(module) = loaded.get(name) else {
            return;
        };
        for soft in &module.pre {
            let soft_name = module_name(soft);
            let target = if loaded.contains_key(&soft_name) {
                Some(soft_name)
            } else {
                loaded
                    .values()
                    .find(|m| m.aliases.iter().any(|a| a == soft))
                    .map(|m| m.name.clone())
            };
            match target {
                Some(target) => visit(&target, loaded, order, visiting),
                None => say(format!(
                    "{name}: soft dependency {soft} not found: assuming it is built in"
                )),
            }
        }
        for dep in &module.depends {
            visit(dep, loaded, order, visiting);
        }
        order.push(name.to_owned());
    }
    let mut order = Vec::new();
    let mut visiting = BTreeSet::new();
    for root in roots {
        visit(root, &loaded, &mut order, &mut visiting);
    }
    Ok(order
        .into_iter()
        .filter_map(|n| loaded.remove(&n))
        .collect())
}

/// Decompresses a module file and reads its `.modinfo`.
fn load_module(path: &Path, release: &str) -> Result<Module, String> {
    let file = path.to_string_lossy();
    let ko = if file.ends_with(".xz") {
        run(Command::new("xz").arg("-dc").arg(path))?
    } else if file.ends_with(".zst") {
        run(Command::new("zstd").arg("-dcq").arg(path))?
    } else if file.ends_with(".gz") {
        run(Command::new("gzip").arg("-dc").arg(path))?
    } else {
        read_file(path)?
    };
    let info = modinfo(&ko).ok_or(format!("{file}: no .modinfo section"))?;
    let mut module = Module {
        name: String::new(),
        ko,
        depends: Vec::new(),
        pre: Vec::new(),
        aliases: Vec::new(),
    };
    let mut vermagic = String::new();
    for (key, value) in info {
        match key.as_str() {
            "name" => module.name = value,
            "vermagic" => vermagic = value,
            "alias" => module.aliases.push(value),
            "depends" => module
                .depends
                .extend(value.split(',').filter(|d| !d.is_empty()).map(module_name)),
            "softdep" => {
                let mut pre = false;
                for word in value.split_whitespace() {
                    match word {
                        "pre:" => pre = true,
                        "post:" => pre = false,
                        _ if pre => module.pre.push(word.to_owned()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if module.name.is_empty() {
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .unwrap_or("");
        module.name = module_name(stem);
    }
    if vermagic.split_whitespace().next() != Some(release) {
        return Err(format!(
            "{file}: vermagic \"{vermagic}\" is not for kernel {release}"
        ));
    }
    Ok(module)
}

/// The `key=value` strings of an ELF64 little-endian file's `.modinfo` section.
fn modinfo(elf: &[u8]) -> Option<Vec<(String, String)>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    let size = |v: u64| usize::try_from(v).ok();
    if !elf.starts_with(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return None;
    }
    let shoff = size(u64_at(0x28)?)?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    let shstrndx = usize::from(u16_at(0x3e)?);
    let section = |i: usize| -> Option<(usize, usize, usize)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = size(u64::from(u32_at(at)?))?;
        let offset = size(u64_at(at + 0x18)?)?;
        let len = size(u64_at(at + 0x20)?)?;
        Some((name, offset, len))
    };
    let (_, str_offset, str_len) = section(shstrndx)?;
    let strtab = elf.get(str_offset..str_offset.checked_add(str_len)?)?;
    for i in 0..shnum {
        let (name, offset, len) = section(i)?;
        let name_bytes = strtab.get(name..)?;
        let end = name_bytes.iter().position(|&b| b == 0)?;
        if &name_bytes[..end] == b".modinfo" {
            let data = elf.get(offset..offset.checked_add(len)?)?;
            return Some(
                data.split(|&b| b == 0)
                    .filter_map(|s| std::str::from_utf8(s).ok())
                    .filter_map(|s| s.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            );
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Initramfs

/// The guest's `/init`.
fn init_script(release: &str, modules: &[Module]) -> String {
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    format!(
        r#"#!/bin/busybox sh
# /init of Turing's Debian guest initramfs, written by `cargo xtask images`.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Modules in dependency order (from their .modinfo depends= and softdep=pre:).
for m in {modules}; do
    insmod /lib/modules/{release}/$m.ko || echo "turing-init: insmod $m failed"
done
echo {READY_MARKER}
# A second shell on the first virtual terminal, which the display and the virtio
# keyboard show and feed; it has its own session and controlling terminal.
if [ -c /dev/tty1 ]; then
    setsid -c sh </dev/tty1 >/dev/tty1 2>&1 &
fi
# A shell with the console as its controlling terminal; power off when it ends.
setsid cttyhack sh
echo "turing-init: shell ended, powering off"
poweroff -f
"#,
        modules = names.join(" "),
    )
}

/// What busybox's `udhcpc` runs on each lease event: it configures the
/// interface, the default route and the resolver from the lease.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# Written by `cargo xtask images`: apply a DHCP lease.
case "$1" in
deconfig)
    ifconfig "$interface" 0.0.0.0 up
    ;;
bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    if [ -n "$router" ]; then
        while route del default dev "$interface" 2>/dev/null; do :; done
        for r in $router; do route add default gw "$r" dev "$interface"; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
"#;

/// The initramfs as an uncompressed newc cpio archive.
pub(crate) fn initramfs(release: &str, busybox: &[u8], modules: &[Module]) -> Vec<u8> {
    let mut cpio = Cpio::default();
    let module_dir = format!("lib/modules/{release}");
    for dir in [
        ".",
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        &module_dir,
        "mnt",
        "proc",
        "root",
        "sbin",
        "sys",
        "usr",
        "usr/bin",
        "usr/sbin",
    ] {
        cpio.dir(dir, 0o755);
    }
    cpio.dir("etc/udhcpc", 0o755);
    cpio.dir("tmp", 0o1777);
    cpio.node("dev/console", 0o020_600, (5, 1));
    cpio.node("dev/null", 0o020_666, (1, 3));
    cpio.file("bin/busybox", 0o755, busybox);
    cpio.symlink("bin/sh", "busybox");
    cpio.file("init", 0o755, init_script(release, modules).as_bytes());
    cpio.file("etc/udhcpc/default.script", 0o755, UDHCPC_SCRIPT.as_bytes());
    for module in modules {
        cpio.file(
            &format!("{module_dir}/{}.ko", module.name),
            0o644,
            &module.ko,
        );
    }
    cpio.finish()
}

/// A newc ("070701") cpio writer: everything owned by root, mtime 0, inode numbers
/// in order, so the same inputs give the same bytes.
#[derive(Default)]
struct Cpio {
    data: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), body: &[u8]) {
        self.inode += 1;
        let name_size = u32::try_from(name.len() + 1).expect("short name");
        let file_size = u32::try_from(body.len()).expect("file under 4 GiB");
        let fields = [
            self.inode, mode, 0, 0, nlink, 0, file_size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        self.data.extend_from_slice(b"070701");
        for field in fields {
            self.data
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn dir(&mut self, name: &str, permissions: u32) {
        self.entry(name, 0o040_000 | permissions, 2, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, permissions: u32, body: &[u8]) {
        self.entry(name, 0o100_000 | permissions, 1, (0, 0), body);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, 1, (0, 0), target.as_bytes());
    }

    fn node(&mut self, name: &str, mode: u32, rdev: (u32, u32)) {
        self.entry(name, mode, 1, rdev, &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        // The kernel reads the archive in 512-byte blocks like cpio(1) writes it.
        while !self.data.len().is_multiple_of(512) {
            self.data.push(0);
        }
        self.data
    }
}

/// `gzip -9 -n`: no name or time stamp in the header, so the output is reproducible.
pub(crate) fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("gzip has no stdin")?;
    let input = data.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for gzip: {e}"))?;
    writer
        .join()
        .map_err(|_| "gzip writer panicked")?
        .map_err(|e| format!("writing to gzip: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "gzip failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------------
// Disk

fn make_disk(root: &Path, image: &Path) -> Result<(), String> {
    create_dir(root)?;
    write_file(&root.join("hello.txt"), HELLO)?;
    run(Command::new("mke2fs")
        .env("E2FSPROGS_FAKE_TIME", DISK_TIME.to_string())
        .args(["-q", "-F", "-t", "ext4", "-L", "turing", "-U", DISK_UUID])
        .arg("-E")
        .arg(format!("root_owner=0:0,hash_seed={DISK_UUID}"))
        .arg("-d")
        .arg(root)
        .arg(image)
        .arg(DISK_SIZE))?;
    // `mke2fs -d` copies the files' times (ctime too, which cannot be set on the
    // host): give them the fixed time, so the image is reproducible.
    let mut commands = String::new();
    for path in ["/", "/hello.txt"] {
        for field in ["atime", "ctime", "mtime"] {
            commands.push_str(&format!("set_inode_field {path} {field} @{DISK_TIME}\n"));
        }
    }
    let script = root.with_file_name("debugfs-commands");
    write_file(&script, commands)?;
    let output = Command::new("debugfs")
        .env("E2FSPROGS_FAKE_TIME", DISK_TIME.to_string())
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(image)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run debugfs: {e}"))?;
    // debugfs exits 0 when a command fails; anything but its banner is an error.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect();
    if !output.status.success() || !errors.is_empty() {
        return Err(format!(
            "debugfs on {} failed ({}): {}",
            image.display(),
            output.status,
            errors.join(" ")
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The user-mode sysroot

/// Packages of the `turing user` sysroot; their dependencies come along.
/// Besides libc, what the user-mode compatibility suite runs
/// (`tests/tests/user_programs.rs`): interpreters, archivers, databases, a
/// compiler with its tools, a Go program (fzf) and a Rust program (ripgrep).
const SYSROOT_PACKAGES: &[&str] = &[
    "libc6",
    "coreutils",
    "python3-minimal",
    "bash",
    "perl-base",
    "tar",
    "gzip",
    "xz-utils",
    "zstd",
    "sqlite3",
    "git",
    "make",
    "gcc",
    "libc6-dev",
    "lua5.4",
    "nodejs",
    "fzf",
    "ripgrep",
];

/// Downloads `SYSROOT_PACKAGES` and their dependencies from the same index as the
/// images and unpacks them into `root`, with merged-/usr links.
fn build_sysroot(apt: &Apt, debs: &Path, root: &Path) -> Result<(), String> {
    let step = Instant::now();
    let packages = dependency_closure(apt, SYSROOT_PACKAGES)?;
    unpack_packages(apt, debs, &packages, root)?;
    write_file(&root.join(".complete"), package_lines(&packages))?;
    say(format!(
        "sysroot: {} packages in {:.1} s",
        packages.len(),
        step.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// One `name version` line per package, as the sysroot's `.complete` and the
/// programs image's `packages.txt` list them.
pub(crate) fn package_lines(packages: &[Package]) -> String {
    packages
        .iter()
        .map(|p| format!("{} {}\n", p.name, p.version))
        .collect()
}

/// `wanted` and everything they depend on (no recommends), at the index's candidate
/// versions, sorted by name.
pub(crate) fn dependency_closure(apt: &Apt, wanted: &[&str]) -> Result<Vec<Package>, String> {
    let listing = run(apt
        .command("apt-cache")
        .args([
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ])
        .args(wanted))?;
    let names: BTreeSet<String> = String::from_utf8_lossy(&listing)
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('<') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    names.iter().map(|name| apt.package(name)).collect()
}

/// Downloads the `packages` not yet in `debs` and unpacks all of them into `root`
/// (no maintainer scripts run), with Debian's merged-/usr links.
pub(crate) fn unpack_packages(
    apt: &Apt,
    debs: &Path,
    packages: &[Package],
    root: &Path,
) -> Result<(), String> {
    let missing: Vec<&Package> = packages
        .iter()
        .filter(|p| !debs.join(p.deb_name()).is_file())
        .collect();
    fetch_debs(apt, debs, &missing)?;
    create_dir(root)?;
    for package in packages {
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(debs.join(package.deb_name()))
            .arg(root))?;
    }
    // Debian's merged /usr: /lib, /bin and /sbin are links into /usr (the
    // dynamic loader's path is /lib/ld-linux-riscv64-lp64d.so.1).
    for dir in ["lib", "bin", "sbin"] {
        let link = root.join(dir);
        if fs::symlink_metadata(&link).is_err() && root.join("usr").join(dir).is_dir() {
            std::os::unix::fs::symlink(format!("usr/{dir}"), &link)
                .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
        }
    }
    Ok(())
}
