//! The virtio devices a user adds to a machine, with `--drive`, `--netdev` and
//! `--device` as QEMU spells them (`--device virtio-blk-pci,drive=ID`,
//! `--device virtio-net-pci,netdev=ID[,mac=MAC]`, `--device virtio-rng-pci`). Which transports a machine offers is its own
//! business: riscv-virt has virtio-mmio slots and PCI, the PC only PCI. This
//! module turns the options into [`UserVirtio`]s and opens their models; the
//! machine places them.

use std::sync::Arc;

use devices::virtio::net::{QEMU_DEFAULT_MAC, parse_mac};
use devices::virtio::{
    VirtioBlk, VirtioDevice, VirtioNet, VirtioRng, host_entropy, seeded_entropy,
};
use emu_core::RunControl;
use emu_core::config::{DeviceSpec, DriveMedia, DriveSpec, MachineConfig, NetdevSpec};

use super::MachineError;

/// The virtio drivers `--device` may name, each with the options it takes.
const DRIVERS: &[(&str, &[&str])] = &[
    ("virtio-blk-device", &["drive"]),
    ("virtio-net-device", &["netdev", "mac"]),
    ("virtio-rng-device", &[]),
    ("virtio-blk-pci", &["drive"]),
    ("virtio-net-pci", &["netdev", "mac"]),
    ("virtio-rng-pci", &[]),
];

/// A NIC's counters, which its machine keeps for `--stats`.
pub(crate) struct NicCounters {
    /// The netdev's id.
    netdev: String,
    stats: Arc<devices::net::NetStats>,
}

impl NicCounters {
    /// `netdev ID: tx ... rx ...`.
    pub fn line(&self) -> String {
        format!("netdev {}: {}", self.netdev, self.stats.summary())
    }
}

/// What a user-added virtio device is.
pub(super) enum UserVirtioKind {
    /// A disk on this drive.
    Disk(DriveSpec),
    /// The n-th user-added entropy device.
    Entropy(usize),
    /// A NIC with this address on this backend.
    Nic {
        /// The backend.
        netdev: NetdevSpec,
        /// The NIC's MAC address.
        mac: [u8; 6],
    },
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

    /// Opens the device model (a disk's image file, an entropy source, a
    /// NIC's backend, whose arriving frames wake the machine through
    /// `control` and whose counters go to `nics`).
    pub fn open(
        &self,
        config: &MachineConfig,
        control: &Arc<RunControl>,
        nics: &mut Vec<NicCounters>,
    ) -> Result<Box<dyn VirtioDevice>, MachineError> {
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
            UserVirtioKind::Nic { netdev, mac } => {
                let port = devices::net::open::open_netdev(netdev).map_err(MachineError::Setup)?;
                let control = control.clone();
                port.set_waker(Arc::new(move || control.wake_all()));
                nics.push(NicCounters {
                    netdev: netdev.id.clone(),
                    stats: port.stats_handle(),
                });
                Box::new(VirtioNet::new(*mac, port))
            }
        })
    }
}

/// Turns `--device` options for virtio drivers into [`UserVirtio`]s, checking
/// that each `drive=` names an `if=none` drive used once.
#[derive(Default)]
pub(super) struct VirtioChooser {
    used_drives: Vec<String>,
    used_netdevs: Vec<String>,
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
        if device.driver.starts_with("virtio-net") {
            return self
                .nic(config, device)
                .map(|kind| Some(UserVirtio { kind, pci }));
        }
        self.entropy += 1;
        Ok(Some(UserVirtio {
            kind: UserVirtioKind::Entropy(self.entropy - 1),
            pci,
        }))
    }
}

impl VirtioChooser {
    /// A NIC on the `netdev=` backend, each backend used once. Without `mac=`
    /// its address is QEMU's OUI (52:54:00) and three bytes hashed from the
    /// backend's options and the NIC's place among the machine's NICs: stable
    /// from run to run, and different for the two ends of a stream link.
    fn nic(
        &mut self,
        config: &MachineConfig,
        device: &DeviceSpec,
    ) -> Result<UserVirtioKind, MachineError> {
        let setup = |message: String| MachineError::Setup(message);
        let id = device
            .option("netdev")
            .ok_or_else(|| setup(format!("device {} needs netdev=ID", device.driver)))?;
        let netdev = config.netdevs.iter().find(|n| n.id == id).ok_or_else(|| {
            setup(format!(
                "device {}: no --netdev with id={id}",
                device.driver
            ))
        })?;
        if self.used_netdevs.iter().any(|used| used == id) {
            return Err(setup(format!("netdev {id} already has a NIC")));
        }
        let index = self.used_netdevs.len();
        self.used_netdevs.push(id.to_owned());
        let mac = match device.option("mac") {
            Some(text) => {
                parse_mac(text).map_err(|e| setup(format!("device {}: {e}", device.driver)))?
            }
            None => derived_mac(netdev, index),
        };
        Ok(UserVirtioKind::Nic {
            netdev: netdev.clone(),
            mac,
        })
    }

    /// Fails when a `--netdev` has no NIC: QEMU only warns, but a backend
    /// nothing uses is always a mistake in the command line.
    pub fn check_netdevs_used(&self, config: &MachineConfig) -> Result<(), MachineError> {
        match config
            .netdevs
            .iter()
            .find(|n| !self.used_netdevs.contains(&n.id))
        {
            Some(unused) => Err(MachineError::Setup(format!(
                "netdev {} has no NIC (add --device virtio-net-pci,netdev={})",
                unused.id, unused.id
            ))),
            None => Ok(()),
        }
    }
}

/// The default MAC of the `index`-th NIC, on `netdev`.
fn derived_mac(netdev: &NetdevSpec, index: usize) -> [u8; 6] {
    // FNV-1a: the same bytes on every build, unlike std's hasher.
    let text = format!("{netdev}#{index}");
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
        .to_le_bytes();
    let mut mac = QEMU_DEFAULT_MAC;
    mac[3..].copy_from_slice(&hash[..3]);
    mac
}

/// The error for a `--device` driver `machine` does not have, listing those it
/// has.
pub(super) fn unknown_device(machine: &str, driver: &str, available: &[&str]) -> MachineError {
    MachineError::Setup(format!(
        "unknown device '{driver}' for {machine} (available: {})",
        available.join(", ")
    ))
}
