//! U-Boot's S-mode build from Debian's `u-boot-qemu` (fetched by `cargo xtask images`)
//! boots on riscv-virt without `--bios`, as on QEMU without `-bios`: a program that
//! starts in S-mode gets SBI firmware first (Turing's own; QEMU's OpenSBI). It
//! reaches its prompt as a raw binary and as an ELF, under the JIT and the
//! interpreter; `version`, `virtio scan` and `poweroff` behave as on QEMU.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::GuestSession;
use tests::images::debian_images;

const BOOT: Duration = Duration::from_secs(120);
const COMMAND: Duration = Duration::from_secs(30);
const PROMPT: &str = "=> ";

fn scratch_disk(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("uboot");
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join(name);
    std::fs::copy(debian_images().disk, &disk).unwrap();
    disk
}

/// Stops autoboot, runs the commands the issue names and powers off; returns
/// what `virtio info` printed.
fn drive_to_poweroff(mut guest: GuestSession) -> String {
    guest.expect("Hit any key to stop autoboot", BOOT);
    guest.send_line("");
    guest.expect(PROMPT, COMMAND);
    guest.send_line("version");
    let version = guest.expect(PROMPT, COMMAND);
    assert!(version.contains("U-Boot 20"), "version: {version}");
    guest.send_line("virtio scan");
    guest.expect(PROMPT, COMMAND);
    guest.send_line("virtio info");
    let info = guest.expect(PROMPT, COMMAND);
    guest.send_line("poweroff");
    assert_eq!(guest.wait(COMMAND), 0, "poweroff ends the run with exit 0");
    info
}

fn boot_on_turing(payload: &Path, disk: &Path, accel: &str) -> String {
    let guest = GuestSession::start(&[
        "--kernel",
        payload.to_str().unwrap(),
        "--drive",
        &format!("file={}", disk.display()),
        "--accel",
        accel,
        "--display",
        "none",
        "--timeout",
        "300",
    ]);
    drive_to_poweroff(guest)
}

fn assert_sees_the_disk(info: &str) {
    assert!(
        info.contains("QEMU VirtIO Block Device") && info.contains("Capacity: 32.0 MB"),
        "virtio info lists the 32 MiB disk: {info}"
    );
}

#[test]
fn uboot_raw_binary_boots_without_bios_and_sees_the_virtio_disk() {
    let images = debian_images();
    let disk = scratch_disk("raw.img");
    let info = boot_on_turing(&images.uboot_smode, &disk, "jit");
    assert_sees_the_disk(&info);
}

#[test]
fn uboot_elf_boots_without_bios_on_the_interpreter() {
    let images = debian_images();
    let disk = scratch_disk("elf.img");
    let info = boot_on_turing(&images.uboot_smode_elf, &disk, "interp");
    assert_sees_the_disk(&info);
}

#[test]
fn uboot_lists_the_same_virtio_devices_on_turing_and_qemu() {
    tests::require_tool("qemu-system-riscv64");
    let images = debian_images();
    let turing = boot_on_turing(&images.uboot_smode, &scratch_disk("t.img"), "jit");
    let disk = scratch_disk("q.img");
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", "256M", "-nographic", "-kernel"])
        .arg(&images.uboot_smode)
        .args(["-drive"])
        .arg(format!("file={},format=raw,if=none,id=d0", disk.display()))
        .args(["-device", "virtio-blk-device,drive=d0"]);
    let qemu = drive_to_poweroff(GuestSession::spawn(qemu));
    let devices = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("Device ") || l.starts_with("Capacity"))
            .map(str::to_owned)
            .collect()
    };
    assert_sees_the_disk(&qemu);
    assert_eq!(devices(&turing), devices(&qemu));
}
