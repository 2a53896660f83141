//! The virtio devices a user adds to a machine, with `--drive` and `--device`
//! as QEMU spells them (`--device virtio-blk-pci,drive=ID`,
//! `--device virtio-rng-pci`). Which transports a machine offers is its own
//! business: riscv-virt has virtio-mmio slots and PCI, the PC only PCI. This
//! module turns the options into [`UserVirtio`]s and opens their models; the
//! machine places them.

use devices::virtio::{VirtioBlk, VirtioDevice, VirtioRng, host_entropy, seeded_entropy};
use emu_core::config::{DeviceSpec, DriveMedia, DriveSpec, MachineConfig};

use super::MachineError;

/// The virtio drivers `--device` may name, each with the options it takes.
const DRIVERS: &[(&str, &[&str])] = &[
    ("virtio-blk-device", &["drive"]),
    ("virtio-rng-device", &[]),
    ("virtio-blk-pci", &["drive"]),
    ("virtio-rng-pci", &[]),
];

/// What a user-added virtio device is.
pub(super) enum UserVirtioKind {
    /// A disk on this drive.
    Disk(DriveSpec),
    /// The n-th user-added entropy device.
    Entropy(usize),
}

/// A virtio device the user asked for, on virtio-mmio or on PCI.
pub(super) struct UserVirtio {
    /// The device.
    pub kind: UserVirtioKind,
    /// Whether it sits on PCI (`-pci` drivers) rather than virtio-mmio.
    pub pci: bool,
}

impl UserVirtio {
    /// A disk on `drive`, attached by the machine itself (`--drive` without
    /// `if=none`).
    pub fn disk(drive: &DriveSpec, pci: bool) -> Result<UserVirtio, MachineError> {
        if drive.media == DriveMedia::Cdrom {
            return Err(MachineError::Setup(format!(
                "drive {}: a virtio disk cannot be a CD-ROM (media=cdrom needs IDE)",
                drive.file.display()
            )));
        }
        Ok(UserVirtio {
            kind: UserVirtioKind::Disk(drive.clone()),
            pci,
        })
    }

    /// Opens the device model (a disk's image file, an entropy source).
    pub fn open(&self, config: &MachineConfig) -> Result<Box<dyn VirtioDevice>, MachineError> {
        Ok(match &self.kind {
            UserVirtioKind::Disk(drive) => Box::new(
                VirtioBlk::open(&drive.file, drive.read_only)
                    .map_err(|e| MachineError::Setup(e.to_string()))?,
            ),
            UserVirtioKind::Entropy(index) => {
                let seed = config.seed ^ 0x0e47_0000_0000_0000 ^ (*index as u64);
                let source = if config.deterministic {
                    seeded_entropy(seed)
                } else {
                    host_entropy()
                };
                Box::new(VirtioRng::new(source))
            }
        })
    }
}

/// Turns `--device` options for virtio drivers into [`UserVirtio`]s, checking
/// that each `drive=` names an `if=none` drive used once.
#[derive(Default)]
pub(super) struct VirtioChooser {
    used_drives: Vec<String>,
    entropy: usize,
}

impl VirtioChooser {
    /// The device `device` asks for, or `None` when it is no virtio driver
    /// `offered` (the machine's own list, a subset of the `-device` and `-pci`
    /// drivers) names.
    pub fn choose(
        &mut self,
        config: &MachineConfig,
        device: &DeviceSpec,
        offered: &[&str],
    ) -> Result<Option<UserVirtio>, MachineError> {
        let Some((_, options)) = DRIVERS
            .iter()
            .find(|(name, _)| *name == device.driver && offered.contains(name))
        else {
            return Ok(None);
        };
        device.check_options(options).map_err(MachineError::Setup)?;
        let pci = device.driver.ends_with("-pci");
        if device.driver.starts_with("virtio-blk") {
            let id = device.option("drive").ok_or_else(|| {
                MachineError::Setup(format!("device {} needs drive=ID", device.driver))
            })?;
            let drive = config
                .drives
                .iter()
                .find(|d| d.id.as_deref() == Some(id))
                .ok_or_else(|| {
                    MachineError::Setup(format!(
                        "device {}: no --drive with id={id}",
                        device.driver
                    ))
                })?;
            if drive.attach() || self.used_drives.iter().any(|used| used == id) {
                return Err(MachineError::Setup(format!(
                    "drive {id} is already attached (give it if=none and one --device)"
                )));
            }
            self.used_drives.push(id.to_owned());
            return UserVirtio::disk(drive, pci).map(Some);
        }
        self.entropy += 1;
        Ok(Some(UserVirtio {
            kind: UserVirtioKind::Entropy(self.entropy - 1),
            pci,
        }))
    }
}

/// The error for a `--device` driver `machine` does not have, listing those it
/// has.
pub(super) fn unknown_device(machine: &str, driver: &str, available: &[&str]) -> MachineError {
    MachineError::Setup(format!(
        "unknown device '{driver}' for {machine} (available: {})",
        available.join(", ")
    ))
}
