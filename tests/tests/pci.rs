//! Debian's kernel on riscv-virt's PCIe host (QEMU's addresses and interrupt
//! map), with its disk on virtio-blk-pci and entropy from virtio-rng-pci: the
//! guest lists the same PCI functions with the same IDs on Turing as on
//! `qemu-system-riscv64` with the same command line, and uses both devices.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::images::{DISK_HELLO, READY_MARKER, debian_images};
use tests::{GuestSession, require_tool, turing_command};

const BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(60);
const PROMPT: &str = "~ # ";

/// Prints one `PCI address vendor device class` line per function, sorted.
const LIST_PCI: &str = "for d in /sys/bus/pci/devices/*; do echo PCI $(basename $d) $(cat $d/vendor) $(cat $d/device) $(cat $d/class); done";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pci");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The arguments both emulators take alike (QEMU accepts its options with two
/// dashes too): kernel, initrd, command line, the disk on virtio-blk-pci and a
/// virtio-rng-pci.
fn common_args(disk: &Path) -> Vec<String> {
    let images = debian_images();
    [
        "--kernel",
        &images.kernel.display().to_string(),
        "--initrd",
        &images.initramfs.display().to_string(),
        "--append",
        "console=ttyS0 quiet",
        "--drive",
        &format!("id=d0,file={},format=raw,if=none", disk.display()),
        "--device",
        "virtio-blk-pci,drive=d0",
        "--device",
        "virtio-rng-pci",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs the checks on a booted guest; returns the sorted PCI list.
fn inspect(mut guest: GuestSession) -> Vec<String> {
    guest.expect(READY_MARKER, BOOT);
    guest.expect(PROMPT, COMMAND);
    guest.send_line(LIST_PCI);
    let listing = guest.expect(PROMPT, COMMAND);
    let mut functions: Vec<String> = listing
        .lines()
        .filter(|l| l.starts_with("PCI "))
        .map(|l| l.trim().to_owned())
        .collect();
    functions.sort();
    guest.send_line("cat /sys/class/misc/hw_random/rng_available");
    let rng = guest.expect(PROMPT, COMMAND);
    assert!(rng.contains("virtio_rng"), "no virtio-rng: {rng}");
    guest.send_line("head -c 64 /dev/hwrng | wc -c");
    let read = guest.expect(PROMPT, COMMAND);
    assert!(
        read.contains("\n64"),
        "the virtio-rng gave no bytes: {read}"
    );
    guest.send_line(
        "mount /dev/vda /mnt && cat /mnt/hello.txt && echo pci-write > /mnt/pci.txt && sync && umount /mnt && echo disk-ok",
    );
    let disk = guest.expect(PROMPT, COMMAND);
    assert!(disk.contains(DISK_HELLO), "{disk}");
    assert!(disk.contains("disk-ok"), "{disk}");
    guest.send_line("poweroff -f");
    assert_eq!(guest.wait(COMMAND), 0);
    functions
}

#[test]
fn virtio_pci_devices_match_qemu() {
    let images = debian_images();
    let turing_disk = scratch("turing.img");
    std::fs::copy(&images.disk, &turing_disk).unwrap();
    let mut turing = turing_command();
    turing.arg("run").args(common_args(&turing_disk)).args([
        "--memory",
        "512M",
        "--timeout",
        "600",
    ]);
    let on_turing = inspect(GuestSession::spawn(turing));
    assert!(
        on_turing.contains(&"PCI 0000:00:00.0 0x1b36 0x0008 0x060000".to_owned()),
        "the host bridge: {on_turing:?}"
    );

    require_tool("qemu-system-riscv64");
    let qemu_disk = scratch("qemu.img");
    std::fs::copy(&images.disk, &qemu_disk).unwrap();
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", "512M", "-bios"])
        .arg(&images.opensbi)
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        .args(common_args(&qemu_disk));
    let on_qemu = inspect(GuestSession::spawn(qemu));
    assert_eq!(
        on_turing, on_qemu,
        "the guest sees other PCI functions on Turing than on QEMU"
    );
    assert_eq!(on_turing.len(), 3, "{on_turing:?}");
    // What the guest wrote reached the image.
    let image = std::fs::read(&turing_disk).unwrap();
    assert!(image.windows(9).any(|w| w == b"pci-write"));
}
