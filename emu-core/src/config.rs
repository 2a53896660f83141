//! Machine configuration: what the CLI flags and `--config` TOML files describe.
//!
//! A [`MachineSpec`] is a partial description (every field optional), as read from a
//! file or from flags. Specs layer: flags override the file, and
//! [`MachineSpec::resolve`] fills the remaining gaps with defaults to give a
//! [`MachineConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// Default guest RAM: 256 MiB (QEMU's virt board defaults to 128 MiB; 256 MiB leaves
/// room for a distribution kernel and its initramfs).
pub const DEFAULT_MEMORY: u64 = 256 << 20;

/// Errors reading a configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's one-line message, with line and column.
        message: String,
    },
    /// A value that does not parse.
    #[error("{0}")]
    Value(String),
}

/// A size in bytes, written as a number with an optional K, M or G suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let bad = || {
            format!("invalid size '{text}': expected a number with an optional K, M or G suffix")
        };
        let trimmed = text.trim();
        let (digits, shift) = match trimmed.char_indices().last() {
            Some((i, 'k' | 'K')) => (&trimmed[..i], 10),
            Some((i, 'm' | 'M')) => (&trimmed[..i], 20),
            Some((i, 'g' | 'G')) => (&trimmed[..i], 30),
            Some((i, 'b' | 'B')) => (&trimmed[..i], 0),
            Some(_) => (trimmed, 0),
            None => return Err(bad()),
        };
        let value: u64 = digits.parse().map_err(|_| bad())?;
        value
            .checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("size '{text}' is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v != 0 && v.is_multiple_of(1 << 30) {
            write!(f, "{}G", v >> 30)
        } else if v != 0 && v.is_multiple_of(1 << 20) {
            write!(f, "{}M", v >> 20)
        } else if v != 0 && v.is_multiple_of(1 << 10) {
            write!(f, "{}K", v >> 10)
        } else {
            write!(f, "{v}")
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Where the guest's serial console goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialBackend {
    /// The host's standard output and input.
    Stdio,
    /// Output appended to a file; no input.
    File(PathBuf),
    /// Discarded.
    Null,
}

impl FromStr for SerialBackend {
    type Err = String;

    fn from_str(text: &str) -> Result<SerialBackend, String> {
        match text {
            "stdio" => Ok(SerialBackend::Stdio),
            "null" | "none" => Ok(SerialBackend::Null),
            _ => match text.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(SerialBackend::File(PathBuf::from(path))),
                _ => Err(format!(
                    "invalid serial backend '{text}': expected stdio, file:PATH or null"
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for SerialBackend {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SerialBackend, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Firmware choice: none (start the kernel directly in M-mode) or a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BiosChoice {
    /// No firmware.
    None,
    /// A firmware image loaded at the start of RAM.
    File(PathBuf),
}

impl FromStr for BiosChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<BiosChoice, String> {
        match text {
            "" => Err("empty --bios value: expected none or a file".to_owned()),
            "none" => Ok(BiosChoice::None),
            path => Ok(BiosChoice::File(PathBuf::from(path))),
        }
    }
}

impl<'de> Deserialize<'de> for BiosChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BiosChoice, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A disk: `--drive [id=ID,]file=PATH[,format=raw][,readonly=on][,if=IF][,media=disk|cdrom][,index=N]`,
/// as QEMU spells it. With `if=none` the disk is only a backend, which a
/// `--device ...,drive=ID` attaches; otherwise the machine gives it a
/// controller: the one `if=` names, or the machine's own kind of disk (a
/// virtio slot on riscv-virt, IDE on the PC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveSpec {
    /// The name `--device ...,drive=ID` refers to it by.
    pub id: Option<String>,
    /// Host image file.
    pub file: PathBuf,
    /// Whether the guest may only read (always so for a CD-ROM).
    pub read_only: bool,
    /// The controller the machine attaches it to, if any.
    pub interface: DriveInterface,
    /// A disk or a CD-ROM.
    pub media: DriveMedia,
    /// Position on its controller (`index=`; on IDE, 2 × bus + unit), when the
    /// user chose one.
    pub index: Option<u32>,
}

/// Where a drive is attached: QEMU's `if=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveInterface {
    /// No `if=`: the machine's usual disk interface.
    MachineDefault,
    /// `if=virtio`: a virtio-blk device of the machine's kind.
    Virtio,
    /// `if=ide`: the IDE controller.
    Ide,
    /// `if=none`: only a backend for a `--device`.
    None,
}

/// What a drive is to the guest: QEMU's `media=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveMedia {
    /// A hard disk.
    Disk,
    /// A CD-ROM drive with the image as its disc.
    Cdrom,
}

impl DriveSpec {
    /// Whether the machine attaches the drive itself (anything but `if=none`).
    pub fn attach(&self) -> bool {
        self.interface != DriveInterface::None
    }

    /// The drive QEMU's `-cdrom FILE` makes: a CD-ROM at IDE index 2, the
    /// secondary channel's master.
    pub fn cdrom(file: PathBuf) -> DriveSpec {
        DriveSpec {
            id: None,
            file,
            read_only: true,
            interface: DriveInterface::MachineDefault,
            media: DriveMedia::Cdrom,
            index: Some(2),
        }
    }
}

/// Parses `on|off` style switches as QEMU accepts them.
fn switch(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "yes" | "" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("invalid {key}={value}: expected on or off")),
    }
}

impl FromStr for DriveSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<DriveSpec, String> {
        let mut file = None;
        let mut id = None;
        let mut read_only = false;
        let mut interface = DriveInterface::MachineDefault;
        let mut media = DriveMedia::Disk;
        let mut index = None;
        for option in text.split(',') {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            match (key, value) {
                ("file", path) if !path.is_empty() => file = Some(PathBuf::from(path)),
                ("id", name) if valid_id(name) => id = Some(name.to_owned()),
                ("id", name) => {
                    return Err(format!(
                        "invalid drive id '{name}': use letters, digits, '-', '_' and '.', starting with a letter"
                    ));
                }
                ("format", "raw") => {}
                ("format", other) => {
                    return Err(format!(
                        "unsupported drive format '{other}': only raw images are supported"
                    ));
                }
                ("readonly", value) => read_only = switch("readonly", value)?,
                ("if", "none") => interface = DriveInterface::None,
                ("if", "virtio") => interface = DriveInterface::Virtio,
                ("if", "ide") => interface = DriveInterface::Ide,
                ("if", other) => {
                    return Err(format!(
                        "unsupported drive interface if={other}: expected virtio, ide or none"
                    ));
                }
                ("media", "disk") => media = DriveMedia::Disk,
                ("media", "cdrom") => media = DriveMedia::Cdrom,
                ("media", other) => {
                    return Err(format!(
                        "invalid drive media={other}: expected disk or cdrom"
                    ));
                }
                ("index", number) => {
                    index =
                        Some(number.parse::<u32>().map_err(|_| {
                            format!("invalid drive index={number}: expected a number")
                        })?);
                }
                _ => {
                    return Err(format!(
                        "unknown drive option '{option}' in '{text}': expected id=ID, file=PATH, format=raw, readonly=on|off, if=virtio|ide|none, media=disk|cdrom or index=N"
                    ));
                }
            }
        }
        let file = file.ok_or_else(|| format!("drive '{text}' has no file=PATH"))?;
        if interface == DriveInterface::None && id.is_none() {
            return Err(format!(
                "drive '{text}' has if=none but no id=ID for a --device to use"
            ));
        }
        Ok(DriveSpec {
            id,
            file,
            read_only: read_only || media == DriveMedia::Cdrom,
            interface,
            media,
            index,
        })
    }
}

/// The `--drive` text that parses back to the same drive.
impl fmt::Display for DriveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.id {
            write!(f, "id={id},")?;
        }
        write!(f, "file={}", self.file.display())?;
        if self.read_only && self.media != DriveMedia::Cdrom {
            write!(f, ",readonly=on")?;
        }
        match self.interface {
            DriveInterface::MachineDefault => {}
            DriveInterface::Virtio => write!(f, ",if=virtio")?,
            DriveInterface::Ide => write!(f, ",if=ide")?,
            DriveInterface::None => write!(f, ",if=none")?,
        }
        if self.media == DriveMedia::Cdrom {
            write!(f, ",media=cdrom")?;
        }
        if let Some(index) = self.index {
            write!(f, ",index={index}")?;
        }
        Ok(())
    }
}

/// The `--device` text that parses back to the same device.
impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.driver)?;
        for (key, value) in &self.options {
            write!(f, ",{key}={value}")?;
        }
        Ok(())
    }
}

/// Whether `name` can name a drive or device (QEMU's rule: a letter first, then
/// letters, digits, '-', '_' and '.').
fn valid_id(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A drive in a TOML file: the `--drive` string, or a `[[drive]]` table with the
/// same keys (`id`, `file`, `format`, `readonly`, `if`).
#[derive(Deserialize)]
#[serde(untagged)]
enum DriveEntry {
    Text(String),
    Table(BTreeMap<String, TomlScalar>),
}

/// A TOML value that may stand for an option's text: a string, bool or number.
#[derive(Deserialize)]
#[serde(untagged)]
enum TomlScalar {
    Text(String),
    Flag(bool),
    Number(i64),
}

impl TomlScalar {
    fn text(&self) -> String {
        match self {
            TomlScalar::Text(t) => t.clone(),
            TomlScalar::Flag(true) => "on".to_owned(),
            TomlScalar::Flag(false) => "off".to_owned(),
            TomlScalar::Number(n) => n.to_string(),
        }
    }
}

/// `key=value,key=value` from a TOML table, `first` (if any) leading.
fn options_text(first: Option<String>, table: &BTreeMap<String, TomlScalar>) -> String {
    first
        .into_iter()
        .chain(table.iter().map(|(k, v)| format!("{k}={}", v.text())))
        .collect::<Vec<_>>()
        .join(",")
}

impl<'de> Deserialize<'de> for DriveSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DriveSpec, D::Error> {
        let text = match DriveEntry::deserialize(deserializer)? {
            DriveEntry::Text(text) => text,
            DriveEntry::Table(table) => options_text(None, &table),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A device the user adds: `--device DRIVER[,key=value]...`, as QEMU spells it
/// (`--device virtio-blk-device,drive=d0`). Which drivers and keys exist is the
/// machine's business: it refuses what it does not have, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The device model, e.g. `virtio-rng-device`.
    pub driver: String,
    /// Its options, in the order given.
    pub options: Vec<(String, String)>,
}

impl DeviceSpec {
    /// The value of option `key`, if given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Fails with one line naming the first option not in `known`.
    pub fn check_options(&self, known: &[&str]) -> Result<(), String> {
        match self
            .options
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((key, _)) if known.is_empty() => {
                Err(format!("device {} has no option '{key}'", self.driver))
            }
            Some((key, _)) => Err(format!(
                "device {} has no option '{key}' (it takes {})",
                self.driver,
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<DeviceSpec, String> {
        let mut parts = text.split(',');
        let driver = parts.next().unwrap_or_default().trim();
        if driver.is_empty() || driver.contains('=') {
            return Err(format!(
                "device '{text}' does not start with a device name (e.g. virtio-rng-device)"
            ));
        }
        let mut options = Vec::new();
        for option in parts {
            let Some((key, value)) = option.split_once('=') else {
                return Err(format!(
                    "device option '{option}' in '{text}' is not key=value"
                ));
            };
            if options.iter().any(|(k, _): &(String, String)| k == key) {
                return Err(format!("device option '{key}' given twice in '{text}'"));
            }
            options.push((key.to_owned(), value.to_owned()));
        }
        Ok(DeviceSpec {
            driver: driver.to_owned(),
            options,
        })
    }
}

/// A device in a TOML file: the `--device` string, or a `[[device]]` table with
/// `driver = "NAME"` and the same option keys.
#[derive(Deserialize)]
#[serde(untagged)]
enum DeviceEntry {
    Text(String),
    Table(BTreeMap<String, TomlScalar>),
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeviceSpec, D::Error> {
        let text = match DeviceEntry::deserialize(deserializer)? {
            DeviceEntry::Text(text) => text,
            DeviceEntry::Table(mut table) => {
                let driver = table
                    .remove("driver")
                    .map(|d| d.text())
                    .ok_or_else(|| serde::de::Error::custom("device table has no driver key"))?;
                options_text(Some(driver), &table)
            }
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A network backend: `--netdev TYPE,id=ID[,key=value]...`, as QEMU spells it
/// (`--netdev user,id=n0,hostfwd=tcp::8080-:80`,
/// `--netdev stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=5555`).
/// A `--device virtio-net-pci,netdev=ID` gives a NIC to it. Which types and
/// keys exist is the network code's business: it refuses what it does not
/// have, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetdevSpec {
    /// The backend type: `user`, `stream`, `dgram`.
    pub kind: String,
    /// The name a NIC's `netdev=` refers to it by.
    pub id: String,
    /// The other options, in the order given.
    pub options: Vec<(String, String)>,
}

impl FromStr for NetdevSpec {
    type Err = String;

    /// QEMU's `-netdev` argument: `TYPE,id=ID,key=value,...`, where a comma
    /// inside a value is written twice (`,,`), as QEMU's option parser reads
    /// it. Keys may repeat (`hostfwd=`); the backend decides.
    fn from_str(text: &str) -> Result<NetdevSpec, String> {
        let mut parts = split_doubled_commas(text).into_iter();
        let kind = parts.next().unwrap_or_default();
        if kind.is_empty() || kind.contains('=') {
            return Err(format!(
                "netdev '{text}' is not TYPE,id=ID[,key=value]... (e.g. user,id=n0)"
            ));
        }
        let mut id = None;
        let mut options = Vec::new();
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "netdev option '{part}' in '{text}' is not key=value"
                ));
            };
            if key == "id" {
                id = Some(value.to_owned());
            } else {
                options.push((key.to_owned(), value.to_owned()));
            }
        }
        let id = id.ok_or_else(|| format!("netdev '{text}' has no id=ID"))?;
        if !valid_id(&id) {
            return Err(format!(
                "netdev id '{id}' must start with a letter and hold only letters, digits, '-', '_' and '.'"
            ));
        }
        Ok(NetdevSpec { kind, id, options })
    }
}

/// Splits at single commas; `,,` stands for a comma in a value.
fn split_doubled_commas(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ',' {
            part.push(c);
        } else if chars.peek() == Some(&',') {
            chars.next();
            part.push(',');
        } else {
            parts.push(std::mem::take(&mut part));
        }
    }
    parts.push(part);
    parts
}

/// The `--netdev` text that parses back to the same backend.
impl fmt::Display for NetdevSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},id={}", self.kind, self.id)?;
        for (key, value) in &self.options {
            write!(f, ",{key}={value}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for NetdevSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NetdevSpec, D::Error> {
        let text = match DeviceEntry::deserialize(deserializer)? {
            DeviceEntry::Text(text) => text,
            DeviceEntry::Table(mut table) => {
                let kind = table
                    .remove("type")
                    .map(|d| d.text())
                    .ok_or_else(|| serde::de::Error::custom("netdev table has no type key"))?;
                options_text(Some(kind), &table)
            }
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which CPU engine runs guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Accel {
    /// The interpreter only.
    Interp,
    /// The interpreter for cold code, Cranelift-translated blocks for hot code.
    #[default]
    Jit,
}

impl FromStr for Accel {
    type Err = String;

    fn from_str(text: &str) -> Result<Accel, String> {
        match text {
            "interp" => Ok(Accel::Interp),
            "jit" => Ok(Accel::Jit),
            _ => Err(format!("invalid accel '{text}': expected jit or interp")),
        }
    }
}

impl<'de> Deserialize<'de> for Accel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Accel, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Replaces each `${NAME}` in `text` with the environment variable NAME, so
/// configs can point into caches that differ between hosts.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed '${{' in '{text}'"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| format!("'{text}' uses ${{{name}}}, which is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A partial machine description, from a TOML file or from flags.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// Machine model name, e.g. `riscv-virt`.
    pub machine: Option<String>,
    /// Program or kernel to load.
    pub kernel: Option<PathBuf>,
    /// Firmware.
    pub bios: Option<BiosChoice>,
    /// CPU model, e.g. `max` (machines that have models).
    pub cpu: Option<String>,
    /// Guest RAM size.
    pub memory: Option<ByteSize>,
    /// Number of CPUs.
    pub smp: Option<u32>,
    /// Serial console backend.
    pub serial: Option<SerialBackend>,
    /// Debug console (QEMU's `-debugcon`: the port firmware logs to) backend.
    pub debugcon: Option<SerialBackend>,
    /// Wall-clock limit in seconds.
    pub timeout: Option<f64>,
    /// Initial RAM disk for a Linux kernel.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: Option<String>,
    /// Disks, in slot order.
    pub drive: Option<Vec<DriveSpec>>,
    /// Devices added to the machine's own.
    pub device: Option<Vec<DeviceSpec>>,
    /// Network backends, for NICs among the devices.
    pub netdev: Option<Vec<NetdevSpec>>,
    /// CPU engine.
    pub accel: Option<Accel>,
    /// Repeatable run: virtual time follows retired instructions, and entropy and
    /// the RTC's start come from `seed`.
    pub deterministic: Option<bool>,
    /// Seed for a deterministic run's entropy and RTC start.
    pub seed: Option<u64>,
    /// Stop the guest after this many retired instructions (all CPUs).
    pub max_instructions: Option<u64>,
}

impl MachineSpec {
    /// Reads a spec from a TOML file. Relative paths in it are taken relative to the
    /// file's folder, so a config can be used from anywhere.
    pub fn from_file(path: &Path) -> Result<MachineSpec, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut spec = MachineSpec::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        spec.locate_files(base)
            .map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                message,
            })?;
        Ok(spec)
    }

    /// Expands `${VAR}` in the spec's file paths from the environment, then takes
    /// relative ones relative to `base` (the folder of the file they came from).
    pub fn locate_files(&mut self, base: &Path) -> Result<(), String> {
        let locate = |p: &mut PathBuf| -> Result<(), String> {
            let expanded = PathBuf::from(expand_env(&p.to_string_lossy())?);
            *p = if expanded.is_relative() {
                base.join(expanded)
            } else {
                expanded
            };
            Ok(())
        };
        if let Some(kernel) = self.kernel.as_mut() {
            locate(kernel)?;
        }
        if let Some(BiosChoice::File(bios)) = self.bios.as_mut() {
            locate(bios)?;
        }
        if let Some(SerialBackend::File(out)) = self.serial.as_mut() {
            locate(out)?;
        }
        if let Some(initrd) = self.initrd.as_mut() {
            locate(initrd)?;
        }
        for drive in self.drive.iter_mut().flatten() {
            locate(&mut drive.file)?;
        }
        Ok(())
    }

    /// Parses TOML text; the error is one line naming line and column.
    pub fn from_toml(text: &str) -> Result<MachineSpec, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: {message}")
                }
                None => message,
            }
        })
    }

    /// Layers `over` on top of `self`: every field set in `over` wins.
    pub fn overlay(self, over: MachineSpec) -> MachineSpec {
        MachineSpec {
            machine: over.machine.or(self.machine),
            kernel: over.kernel.or(self.kernel),
            bios: over.bios.or(self.bios),
            cpu: over.cpu.or(self.cpu),
            memory: over.memory.or(self.memory),
            smp: over.smp.or(self.smp),
            serial: over.serial.or(self.serial),
            debugcon: over.debugcon.or(self.debugcon),
            timeout: over.timeout.or(self.timeout),
            initrd: over.initrd.or(self.initrd),
            append: over.append.or(self.append),
            drive: over.drive.or(self.drive),
            device: over.device.or(self.device),
            netdev: over.netdev.or(self.netdev),
            accel: over.accel.or(self.accel),
            deterministic: over.deterministic.or(self.deterministic),
            seed: over.seed.or(self.seed),
            max_instructions: over.max_instructions.or(self.max_instructions),
        }
    }

    /// Fills the gaps with defaults and checks the values.
    pub fn resolve(self) -> Result<MachineConfig, ConfigError> {
        let memory = self.memory.map_or(DEFAULT_MEMORY, |m| m.0);
        if memory < (1 << 20) || !memory.is_multiple_of(4096) {
            return Err(ConfigError::Value(format!(
                "invalid memory size {}: need at least 1M in whole 4K pages",
                ByteSize(memory)
            )));
        }
        let smp = self.smp.unwrap_or(1);
        if !(1..=8).contains(&smp) {
            return Err(ConfigError::Value(format!(
                "invalid smp {smp}: expected 1 to 8 CPUs"
            )));
        }
        if self.max_instructions == Some(0) {
            return Err(ConfigError::Value(
                "invalid max-instructions 0: expected a positive count".to_owned(),
            ));
        }
        if let Some(t) = self.timeout
            && !(t.is_finite() && t > 0.0)
        {
            return Err(ConfigError::Value(format!(
                "invalid timeout {t}: expected a positive number of seconds"
            )));
        }
        let drives = self.drive.unwrap_or_default();
        for (index, drive) in drives.iter().enumerate() {
            if let Some(id) = &drive.id
                && drives[..index].iter().any(|d| d.id.as_ref() == Some(id))
            {
                return Err(ConfigError::Value(format!("two drives have id={id}")));
            }
        }
        let netdevs = self.netdev.unwrap_or_default();
        for (index, netdev) in netdevs.iter().enumerate() {
            if netdevs[..index].iter().any(|n| n.id == netdev.id) {
                return Err(ConfigError::Value(format!(
                    "two netdevs have id={}",
                    netdev.id
                )));
            }
        }
        Ok(MachineConfig {
            machine: self.machine.unwrap_or_else(|| "riscv-virt".to_owned()),
            kernel: self.kernel,
            bios: self.bios,
            cpu: self.cpu,
            memory,
            smp,
            serial: self.serial.unwrap_or(SerialBackend::Stdio),
            debugcon: self.debugcon.unwrap_or(SerialBackend::Null),
            timeout: self.timeout,
            initrd: self.initrd,
            append: self.append,
            drives,
            devices: self.device.unwrap_or_default(),
            netdevs,
            accel: self.accel.unwrap_or_default(),
            deterministic: self.deterministic.unwrap_or(false) || self.seed.is_some(),
            seed: self.seed.unwrap_or(0),
            max_instructions: self.max_instructions,
        })
    }
}

/// A complete machine configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineConfig {
    /// Machine model name.
    pub machine: String,
    /// Program or kernel to load; `None` boots the built-in demo guest.
    pub kernel: Option<PathBuf>,
    /// Firmware; `None` when not given (the machine picks a default).
    pub bios: Option<BiosChoice>,
    /// CPU model; `None` when not given (the machine's default).
    pub cpu: Option<String>,
    /// Guest RAM in bytes.
    pub memory: u64,
    /// Number of CPUs.
    pub smp: u32,
    /// Serial console backend.
    pub serial: SerialBackend,
    /// Debug console backend (`null` unless asked for).
    pub debugcon: SerialBackend,
    /// Wall-clock limit in seconds.
    pub timeout: Option<f64>,
    /// Initial RAM disk for a Linux kernel.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: Option<String>,
    /// Disks, in slot order.
    pub drives: Vec<DriveSpec>,
    /// Devices added to the machine's own, in order.
    pub devices: Vec<DeviceSpec>,
    /// Network backends, in order.
    pub netdevs: Vec<NetdevSpec>,
    /// CPU engine.
    pub accel: Accel,
    /// Virtual time from retired instructions; entropy and RTC from `seed`.
    pub deterministic: bool,
    /// Seed of a deterministic run.
    pub seed: u64,
    /// Instruction limit, all CPUs together.
    pub max_instructions: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_expand_in_paths() {
        let path = std::env::var("PATH").expect("PATH is set");
        assert_eq!(expand_env("${PATH}/Image"), Ok(format!("{path}/Image")));
        assert!(
            expand_env("${TURING_NOT_SET_ANYWHERE}/x")
                .unwrap_err()
                .contains("not set")
        );
        assert!(expand_env("${OPEN").is_err());
        assert_eq!(expand_env("plain/path").as_deref(), Ok("plain/path"));
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!("256M".parse(), Ok(ByteSize(256 << 20)));
        assert_eq!("1G".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("64k".parse(), Ok(ByteSize(64 << 10)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert!("12Q".parse::<ByteSize>().is_err());
        assert!("".parse::<ByteSize>().is_err());
        assert!("M".parse::<ByteSize>().is_err());
        assert!("99999999999G".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(256 << 20).to_string(), "256M");
    }

    #[test]
    fn toml_file_and_flags_layer() {
        let file = MachineSpec::from_toml(
            "machine = \"riscv-virt\"\nmemory = \"64M\"\nserial = \"null\"\nkernel = \"a.elf\"\n",
        )
        .unwrap();
        let flags = MachineSpec {
            memory: Some(ByteSize(128 << 20)),
            ..MachineSpec::default()
        };
        let config = file.overlay(flags).resolve().unwrap();
        assert_eq!(config.memory, 128 << 20);
        assert_eq!(config.serial, SerialBackend::Null);
        assert_eq!(config.kernel, Some(PathBuf::from("a.elf")));
        assert_eq!(config.bios, None);
    }

    #[test]
    fn bad_toml_names_the_line() {
        let err = MachineSpec::from_toml("machine = \"x\"\nmemroy = \"1G\"\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(err.contains("memroy"), "{err}");
        let err = MachineSpec::from_toml("memory = \"lots\"\n").unwrap_err();
        assert!(err.contains("invalid size"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let spec = |memory, smp| MachineSpec {
            memory: Some(ByteSize(memory)),
            smp: Some(smp),
            ..MachineSpec::default()
        };
        assert!(spec(4096, 1).resolve().is_err());
        assert!(spec(1 << 30, 9).resolve().is_err());
        assert!(spec(1 << 30, 0).resolve().is_err());
        assert!(spec(1 << 30, 8).resolve().is_ok());
    }

    #[test]
    fn drive_options() {
        let d: DriveSpec = "file=disk.img,format=raw,readonly=on".parse().unwrap();
        assert_eq!(
            d,
            DriveSpec {
                id: None,
                file: "disk.img".into(),
                read_only: true,
                interface: DriveInterface::MachineDefault,
                media: DriveMedia::Disk,
                index: None,
            }
        );
        let d: DriveSpec = "id=d0,file=x.img,if=none".parse().unwrap();
        assert_eq!((d.id.as_deref(), d.attach()), (Some("d0"), false));
        let d: DriveSpec = "file=x.iso,if=ide,media=cdrom,index=3".parse().unwrap();
        assert_eq!(
            (d.interface, d.media, d.index, d.read_only),
            (DriveInterface::Ide, DriveMedia::Cdrom, Some(3), true)
        );
        assert_eq!(
            DriveSpec::cdrom("x.iso".into()).to_string(),
            "file=x.iso,media=cdrom,index=2"
        );
        assert!("file=x,media=tape".parse::<DriveSpec>().is_err());
        assert!("file=x,index=one".parse::<DriveSpec>().is_err());
        assert!(
            "file=x.img,if=none"
                .parse::<DriveSpec>()
                .unwrap_err()
                .contains("no id=ID")
        );
        assert!("id=0bad,file=x".parse::<DriveSpec>().is_err());
        assert!("file=x,if=scsi".parse::<DriveSpec>().is_err());
        for text in [
            "file=a.img",
            "id=d0,file=b c.img,readonly=on,if=none",
            "file=c.img,if=ide,index=1",
            "file=d.img,if=virtio",
        ] {
            assert_eq!(text.parse::<DriveSpec>().unwrap().to_string(), text);
        }
        assert!(
            "file=a,cache=none"
                .parse::<DriveSpec>()
                .unwrap_err()
                .contains("unknown drive option 'cache=none'")
        );
        assert!(
            "format=raw"
                .parse::<DriveSpec>()
                .unwrap_err()
                .contains("no file=PATH")
        );
        assert!("file=a,format=qcow2".parse::<DriveSpec>().is_err());
        let spec = MachineSpec::from_toml("drive = [\"file=a.img\", \"file=b.img,readonly=on\"]\n")
            .unwrap();
        assert_eq!(spec.drive.unwrap().len(), 2);
    }

    #[test]
    fn serial_backends() {
        assert_eq!("stdio".parse(), Ok(SerialBackend::Stdio));
        assert_eq!(
            "file:/tmp/x".parse(),
            Ok(SerialBackend::File("/tmp/x".into()))
        );
        assert!("file:".parse::<SerialBackend>().is_err());
        assert!("tcp:1".parse::<SerialBackend>().is_err());
    }

    #[test]
    fn netdevs_from_flags_and_toml_tables() {
        let n: NetdevSpec = "stream,id=n0,server=on,addr.type=unix,addr.path=/tmp/s"
            .parse()
            .unwrap();
        assert_eq!((n.kind.as_str(), n.id.as_str()), ("stream", "n0"));
        assert_eq!(n.options[1], ("addr.type".to_owned(), "unix".to_owned()));
        assert_eq!(
            n.to_string(),
            "stream,id=n0,server=on,addr.type=unix,addr.path=/tmp/s"
        );
        let n: NetdevSpec = "stream,id=n0,addr.type=unix,addr.path=/tmp/a,,b"
            .parse()
            .unwrap();
        assert_eq!(n.options[1].1, "/tmp/a,b");
        let n: NetdevSpec = "user,id=n0,hostfwd=tcp::1-:2,hostfwd=tcp::3-:4"
            .parse()
            .unwrap();
        assert_eq!(n.options.len(), 2);
        assert!(
            "stream,id=n0,oops"
                .parse::<NetdevSpec>()
                .unwrap_err()
                .contains("'oops'")
        );
        let err = "user,hostfwd=tcp::1-:2".parse::<NetdevSpec>().unwrap_err();
        assert_eq!(err, "netdev 'user,hostfwd=tcp::1-:2' has no id=ID");
        assert!(
            "id=n0"
                .parse::<NetdevSpec>()
                .unwrap_err()
                .contains("TYPE,id=ID")
        );
        assert!(
            "user,id=0n"
                .parse::<NetdevSpec>()
                .unwrap_err()
                .contains("must start with a letter")
        );
        let spec = MachineSpec::from_toml("netdev = [\"user,id=a\"]\n").unwrap();
        assert_eq!(spec.netdev.as_ref().unwrap()[0].kind, "user");
        let spec = MachineSpec::from_toml(
            "[[netdev]]\ntype = \"stream\"\nid = \"n1\"\nserver = true\n\"addr.port\" = 5555\n",
        )
        .unwrap();
        let n = &spec.netdev.as_ref().unwrap()[0];
        assert_eq!(n.to_string(), "stream,id=n1,addr.port=5555,server=on");
        let twice = MachineSpec::from_toml("netdev = [\"user,id=a\", \"dgram,id=a\"]\n")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert_eq!(twice.to_string(), "two netdevs have id=a");
    }

    #[test]
    fn devices_from_flags_and_toml_tables() {
        let d: DeviceSpec = "virtio-blk-device,drive=d0".parse().unwrap();
        assert_eq!(d.driver, "virtio-blk-device");
        assert_eq!(d.option("drive"), Some("d0"));
        assert!(d.check_options(&["drive"]).is_ok());
        let err = d.check_options(&[]).unwrap_err();
        assert_eq!(err, "device virtio-blk-device has no option 'drive'");
        assert_eq!(d.to_string(), "virtio-blk-device,drive=d0");
        assert!("drive=d0".parse::<DeviceSpec>().is_err());
        assert!("virtio-rng-device,verbose".parse::<DeviceSpec>().is_err());
        assert!("x,a=1,a=2".parse::<DeviceSpec>().is_err());
        let spec = MachineSpec::from_toml(
            "[[drive]]\nid = \"d0\"\nfile = \"a.img\"\nif = \"none\"\nreadonly = true\n\n\
             [[device]]\ndriver = \"virtio-blk-device\"\ndrive = \"d0\"\n\n\
             [[device]]\ndriver = \"virtio-rng-device\"\n",
        )
        .unwrap();
        let drives = spec.drive.clone().unwrap();
        assert_eq!(drives[0].id.as_deref(), Some("d0"));
        assert!(drives[0].read_only && !drives[0].attach());
        let devices = spec.device.clone().unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].option("drive"), Some("d0"));
        assert_eq!(devices[1].driver, "virtio-rng-device");
        let err =
            MachineSpec::from_toml("[[drive]]\nfile = \"a.img\"\ncache = \"none\"\n").unwrap_err();
        assert!(err.contains("unknown drive option 'cache=none'"), "{err}");
        let err = MachineSpec::from_toml("[[device]]\ndrive = \"d0\"\n").unwrap_err();
        assert!(err.contains("no driver"), "{err}");
        let twice = MachineSpec {
            drive: Some(vec![
                "id=a,file=x".parse().unwrap(),
                "id=a,file=y".parse().unwrap(),
            ]),
            ..MachineSpec::default()
        };
        assert!(twice.resolve().unwrap_err().to_string().contains("id=a"));
    }
}
