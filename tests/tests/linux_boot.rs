//! Debian's riscv64 kernel and a busybox initramfs (built from Debian packages by
//! `cargo xtask images`) boot on riscv-virt to an interactive shell, headless, with
//! Debian's OpenSBI and with Turing's own SBI firmware, under the JIT (the default)
//! and the interpreter; disks, SMP and power-off behave as on QEMU.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::GuestSession;
use tests::images::{DISK_HELLO, READY_MARKER, debian_images};

/// Generous: the interpreter boots the kernel in well under a minute on 2 cores.
const BOOT: Duration = Duration::from_secs(240);
const COMMAND: Duration = Duration::from_secs(60);
/// For commands that do real work (hashing megabytes on several harts): generous,
/// so a loaded host does not fail the test; it checks results, not speed.
const WORK: Duration = Duration::from_secs(400);
const PROMPT: &str = "~ # ";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Boots with `extra` arguments and waits for the shell prompt.
fn boot(extra: &[&str]) -> GuestSession {
    let images = debian_images();
    let mut args = vec![
        "--kernel".to_owned(),
        images.kernel.display().to_string(),
        "--initrd".to_owned(),
        images.initramfs.display().to_string(),
        "--append".to_owned(),
        "console=ttyS0 quiet".to_owned(),
        "--memory".to_owned(),
        "512M".to_owned(),
        "--timeout".to_owned(),
        "600".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut guest = GuestSession::start(&args);
    guest.expect(READY_MARKER, BOOT);
    guest.expect(PROMPT, COMMAND);
    guest
}

/// Runs a shell command and returns its output up to the next prompt.
fn shell(guest: &mut GuestSession, command: &str) -> String {
    guest.send_line(command);
    guest.expect(PROMPT, COMMAND)
}

fn power_off(mut guest: GuestSession) {
    guest.send_line("poweroff -f");
    assert_eq!(
        guest.wait(COMMAND),
        0,
        "poweroff -f must end turing with exit code 0"
    );
}

/// Under the interpreter (the other boots use the default engine, the JIT).
#[test]
fn boots_to_a_shell_with_debian_opensbi_on_the_interpreter() {
    let images = debian_images();
    let opensbi = images.opensbi.display().to_string();
    let mut guest = boot(&["--bios", &opensbi, "--accel", "interp"]);
    let out = shell(&mut guest, "uname -m");
    assert!(out.contains("riscv64"), "{out}");
    assert!(
        guest.transcript().contains("OpenSBI"),
        "OpenSBI's banner is on the console"
    );
    power_off(guest);
}

#[test]
fn boots_to_a_shell_with_turings_own_sbi_firmware_on_two_harts() {
    let mut guest = boot(&["--smp", "2"]);
    assert!(
        guest.transcript().contains("Turing SBI"),
        "the built-in firmware's banner"
    );
    let out = shell(&mut guest, "uname -m; grep -c ^processor /proc/cpuinfo");
    assert!(out.contains("riscv64"), "{out}");
    assert!(out.contains("\n2"), "both harts online: {out}");
    power_off(guest);
}

#[test]
fn disk_writes_persist_and_read_only_disks_refuse_writes() {
    let images = debian_images();
    let disk = scratch("disk.img");
    std::fs::copy(&images.disk, &disk).unwrap();
    let drive = format!("file={}", disk.display());
    let opensbi = images.opensbi.display().to_string();

    // First boot: mount, check the image's file, write a new one, sync.
    let mut guest = boot(&["--bios", &opensbi, "--drive", &drive]);
    let out = shell(&mut guest, "mount /dev/vda /mnt && cat /mnt/hello.txt");
    assert!(out.contains(DISK_HELLO), "{out}");
    shell(
        &mut guest,
        "echo written-by-turing-$((6*7)) > /mnt/new.txt && sync && umount /mnt",
    );
    power_off(guest);

    // Second boot reads the same bytes back.
    let mut guest = boot(&["--bios", &opensbi, "--drive", &drive]);
    let out = shell(&mut guest, "mount /dev/vda /mnt && cat /mnt/new.txt");
    assert!(out.contains("written-by-turing-42"), "{out}");
    shell(&mut guest, "umount /mnt");
    power_off(guest);

    // Read-only: raw writes fail inside the guest and the host file is untouched.
    let before = std::fs::read(&disk).unwrap();
    let read_only = format!("{drive},readonly=on");
    let mut guest = boot(&["--bios", &opensbi, "--drive", &read_only]);
    let out = shell(
        &mut guest,
        "dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync; echo dd-status=$?",
    );
    assert!(
        !out.contains("dd-status=0"),
        "a write to a read-only disk succeeded: {out}"
    );
    let out = shell(&mut guest, "cat /sys/block/vda/ro");
    assert!(
        out.contains('1'),
        "the kernel sees the disk as read-only: {out}"
    );
    power_off(guest);
    assert!(
        std::fs::read(&disk).unwrap() == before,
        "the read-only image changed"
    );
}

#[test]
fn four_harts_come_online_and_share_work() {
    let images = debian_images();
    let opensbi = images.opensbi.display().to_string();
    let mut guest = boot(&["--bios", &opensbi, "--smp", "4"]);
    let out = shell(&mut guest, "grep -c ^processor /proc/cpuinfo");
    assert!(out.contains("\n4"), "{out}");
    guest.send_line(
        "for i in 1 2 3 4; do (head -c 2000000 /dev/zero | sha256sum > /tmp/s$i) & done; wait; cat /tmp/s1 /tmp/s2 /tmp/s3 /tmp/s4 | sort -u | wc -l",
    );
    let out = guest.expect(PROMPT, WORK);
    // Four identical digests: the jobs ran to completion on whatever harts.
    assert!(out.contains("\n1"), "{out}");
    let out = shell(&mut guest, "cat /tmp/s1");
    // sha256 of 2,000,000 zero bytes.
    assert!(
        out.contains("13aea96040f2133033d103008d5d96cfe98b3361f7202d77bea97b2424a7a6cd"),
        "{out}"
    );
    power_off(guest);
}

/// `reboot -f` resets every device, as on QEMU: the PLIC's M-mode threshold of
/// hart 0 (a register Linux, which drives only S-mode contexts, and Turing's SBI
/// leave alone), which the guest set, reads as its power-on value after the
/// reboot, and the machine boots to the shell three times before it powers off
/// with exit code 0.
#[test]
fn reboot_resets_every_device_and_boots_again_three_times() {
    const PLIC_CONTEXT0_THRESHOLD: &str = "0x0c200000";
    let mut guest = boot(&[]);
    let out = shell(
        &mut guest,
        &format!("devmem {PLIC_CONTEXT0_THRESHOLD} 32 5; devmem {PLIC_CONTEXT0_THRESHOLD} 32"),
    );
    assert!(
        out.contains("0x00000005"),
        "the guest set the threshold: {out}"
    );
    for round in 1..=3 {
        guest.send_line("reboot -f");
        guest.expect(READY_MARKER, BOOT);
        guest.expect(PROMPT, COMMAND);
        let out = shell(&mut guest, &format!("devmem {PLIC_CONTEXT0_THRESHOLD} 32"));
        assert!(
            out.contains("0x00000000"),
            "after reboot {round} the threshold holds its power-on value: {out}"
        );
        shell(
            &mut guest,
            &format!("devmem {PLIC_CONTEXT0_THRESHOLD} 32 3"),
        );
    }
    power_off(guest);
}

/// A disk that fails under the guest (its image cut short mid-run) gives the guest
/// an I/O error and the user a warning on stderr naming the failed read.
#[test]
fn a_disk_read_error_is_reported_on_stderr() {
    let images = debian_images();
    let disk = scratch("failing-disk.img");
    std::fs::copy(&images.disk, &disk).unwrap();
    let stderr_path = scratch("failing-disk.stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut command = tests::turing_command();
    command.args([
        "run",
        "--kernel",
        &images.kernel.display().to_string(),
        "--initrd",
        &images.initramfs.display().to_string(),
        "--append",
        "console=ttyS0 quiet",
        "--memory",
        "512M",
        "--timeout",
        "600",
        "--drive",
        &format!("file={}", disk.display()),
    ]);
    let mut guest = GuestSession::spawn_with_stderr(command, stderr.into());
    guest.expect(READY_MARKER, BOOT);
    guest.expect(PROMPT, COMMAND);
    // The image shrinks under the running machine: reads past its new end fail.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let out = shell(
        &mut guest,
        "dd if=/dev/vda of=/dev/null bs=4096 skip=1024 count=4; echo dd-status=$?",
    );
    assert!(
        !out.contains("dd-status=0"),
        "the guest read a disk that fails: {out}"
    );
    power_off(guest);
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("turing: warning: virtio-blk: read at byte")),
        "no warning on stderr for the failed read:\n{log}"
    );
}
