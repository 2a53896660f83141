//! `--machine pc` with Debian's SeaBIOS: the firmware runs through its whole
//! start-up on Turing as on `qemu-system-x86_64 -M pc` (the reference), and
//! logs the same milestones on the debug console at port 0x402.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tests::{require_tool, turing_command};

const SEABIOS: &str = "/usr/share/seabios/bios-256k.bin";
/// What SeaBIOS prints once it has tried every boot device.
const NO_BOOT_DEVICE: &str = "No bootable device.";
const BOOT: Duration = Duration::from_secs(60);

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pc");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs `child` until `log` holds `marker` or `limit` passes, then stops it;
/// returns the log and how long the marker took.
fn log_until(mut child: Child, log: &Path, marker: &str, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(marker) {
            break text;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no '{marker}' within {limit:?}; the log so far:\n{text}");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the emulator ended ({status}) before '{marker}'; the log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    (text, took)
}

/// The log lines both emulators must show, in this order: the banner, QEMU
/// detected through the i440FX and fw_cfg with DMA, RAM from `etc/e820`, the
/// PCI functions initialised with their IDs, the PIIX's interrupt routing,
/// the PM timer found through the PIIX4's PMBASE, the tables SeaBIOS
/// installs, the keyboard behind the i8042, and its boot attempts.
const MILESTONES: &[&str] = &[
    "SeaBIOS (version",
    "Running on QEMU (i440fx)",
    "QEMU fw_cfg DMA interface supported",
    "qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]",
    "PCI: init bdf=00:00.0 id=8086:1237",
    "PCI: init bdf=00:01.0 id=8086:7000",
    "PIIX3/PIIX4 init: elcr=00 0c",
    "PCI: init bdf=00:01.3 id=8086:7113",
    "Using pmtimer, ioport 0x",
    "Copying SMBIOS",
    "Turning on vga text mode console",
    "PS2 keyboard initialized",
    "Booting from Hard Disk...",
    NO_BOOT_DEVICE,
];

/// `turing run` on a 128 MiB PC with its serial console discarded.
fn pc_command() -> Command {
    let mut command = turing_command();
    command.args([
        "run",
        "--machine",
        "pc",
        "--memory",
        "128M",
        "--serial",
        "null",
    ]);
    command
}

fn assert_milestones(who: &str, log: &str) {
    let mut rest = log;
    for milestone in MILESTONES {
        match rest.find(milestone) {
            Some(at) => rest = &rest[at + milestone.len()..],
            None => panic!("{who}: '{milestone}' missing or out of order in:\n{log}"),
        }
    }
}

#[test]
fn seabios_starts_up_as_on_qemu() {
    require_tool("qemu-system-x86_64");
    assert!(
        Path::new(SEABIOS).exists(),
        "{SEABIOS} is missing: run `cargo xtask setup`"
    );
    let qemu_log = scratch("qemu-seabios.log");
    let qemu = Command::new("qemu-system-x86_64")
        .args(["-M", "pc", "-m", "128M", "-nodefaults", "-display", "none"])
        .arg("-chardev")
        .arg(format!("file,id=dbg,path={}", qemu_log.display()))
        .args(["-device", "isa-debugcon,iobase=0x402,chardev=dbg"])
        .spawn()
        .expect("start qemu-system-x86_64");
    let (qemu_text, qemu_took) = log_until(qemu, &qemu_log, NO_BOOT_DEVICE, BOOT);
    assert_milestones("QEMU", &qemu_text);

    let log = scratch("turing-seabios.log");
    let turing = pc_command()
        .arg("--debugcon")
        .arg(format!("file:{}", log.display()))
        .spawn()
        .expect("start turing");
    let (text, took) = log_until(turing, &log, NO_BOOT_DEVICE, BOOT);
    println!("SeaBIOS to '{NO_BOOT_DEVICE}': Turing {took:?}, QEMU {qemu_took:?}");
    assert_milestones("Turing", &text);
    // Nor does it reboot to try again (QEMU's `etc/boot-fail-wait`).
    assert!(!text.contains("Retrying in"), "{text}");
}

/// The RGB pixels of a binary PPM (`P6`, as QEMU's `screendump` writes).
fn read_ppm(path: &Path) -> (usize, usize, Vec<u8>) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P6", "{} is not a binary PPM", path.display());
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = data[at + 1..].to_vec();
    assert_eq!(pixels.len(), width * height * 3);
    (width, height, pixels)
}

/// SeaBIOS's banner on the VGA text screen, drawn by Debian's VGA BIOS
/// (`vgabios-stdvga.bin`) on the standard VGA at 02.0: the screenshot's first
/// text row is pixel for pixel QEMU's `screendump` of the same moment (the
/// rows below show the boot attempts, whose order differs: see the closing
/// notes).
#[test]
fn the_seabios_banner_shows_on_the_vga_text_screen_as_on_qemu() {
    require_tool("qemu-system-x86_64");
    let dump = scratch("qemu-screen.ppm");
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-M", "pc", "-m", "128M", "-display", "none", "-nic", "none"])
        .args(["-monitor", "stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start qemu-system-x86_64");
    std::thread::sleep(Duration::from_secs(2));
    {
        use std::io::Write;
        let stdin = qemu.stdin.as_mut().expect("QEMU's monitor");
        writeln!(stdin, "screendump {}", dump.display()).unwrap();
        writeln!(stdin, "quit").unwrap();
    }
    let _ = qemu.wait();
    let (width, height, reference) = read_ppm(&dump);
    assert_eq!((width, height), (720, 400), "QEMU's text screen");

    let shot = scratch("turing-screen.png");
    let status = pc_command()
        .arg("--screenshot")
        .arg(&shot)
        .args(["--screenshot-at", "2"])
        .status()
        .expect("run turing");
    assert!(status.success());
    let (w, h, pixels) = tests::read_png(&shot);
    assert_eq!(
        (w, h),
        (720, 400),
        "Turing's text screen (9×16 cells, 80×25)"
    );
    // The first row of 16-pixel-high character cells.
    let row = 720 * 16 * 3;
    assert_eq!(pixels.len(), reference.len());
    let lit = pixels[..row]
        .chunks(3)
        .filter(|p| p.iter().any(|&c| c > 0x40))
        .count();
    assert!(
        lit > 500,
        "no banner on the first text row ({lit} lit pixels)"
    );
    let differ = pixels[..row]
        .chunks(3)
        .zip(reference[..row].chunks(3))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differ, 0,
        "pixels of the banner row that differ from QEMU's"
    );
}

#[test]
fn bad_firmware_and_options_are_named() {
    let run = |args: &[&str]| {
        let out = turing_command()
            .args([
                "run",
                "--machine",
                "pc",
                "--serial",
                "null",
                "--timeout",
                "5",
            ])
            .args(args)
            .output()
            .expect("run turing");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--bios", "/nonexistent/bios.bin"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("/nonexistent/bios.bin"), "{err}");
    let odd = scratch("odd-size.bin");
    std::fs::write(&odd, [0u8; 1000]).unwrap();
    let (code, err) = run(&["--bios", odd.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(err.contains("multiple of 64 KiB"), "{err}");
    let (code, err) = run(&["--cpu", "pentium9"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("unknown CPU model 'pentium9'") && err.contains("x86-64-v2"),
        "{err}"
    );
    let (code, err) = run(&["--memory", "2M"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("too little for the pc machine"), "{err}");
    let (code, err) = run(&["--device", "sound-card"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("unknown device 'sound-card'") && err.contains("virtio-blk-pci"),
        "{err}"
    );
    let (code, err) = run(&["--drive", "file=/nonexistent/disk.img"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("/nonexistent/disk.img"), "{err}");
    let image = scratch("small.img");
    std::fs::write(&image, [0u8; 4096]).unwrap();
    let image = image.display().to_string();
    let (code, err) = run(&["--drive", &format!("file={image},index=4")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("index=4"), "{err}");
    let (code, err) = run(&[
        "--drive",
        &format!("file={image},index=2"),
        "--cdrom",
        &image,
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("IDE index 2 is taken"), "{err}");
    let (code, err) = run(&["--drive", &format!("file={image},if=virtio,media=cdrom")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("cannot be a CD-ROM"), "{err}");
}

/// Boots Debian's `kernel` with `initramfs` on `pc` with `--kernel` and
/// `extra` options, through SeaBIOS and QEMU's linuxboot option ROM as
/// `qemu-system-x86_64 -kernel` boots it, to the busybox shell on COM1; checks
/// `uname -m` says `machine`, runs `at_shell`, and checks that `poweroff -f`
/// powers the machine off through ACPI (PM1 control, found by the kernel in
/// the tables SeaBIOS built).
fn boot_to_shell_and_power_off(
    (kernel, initramfs): (&Path, &Path),
    machine: &str,
    extra: &[String],
    at_shell: impl FnOnce(&mut tests::GuestSession),
) {
    let kernel = kernel.display().to_string();
    let initrd = initramfs.display().to_string();
    let started = Instant::now();
    let mut args: Vec<String> = [
        "--machine",
        "pc",
        "--memory",
        "256M",
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--append",
        "console=ttyS0",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut guest = tests::GuestSession::start(&args);
    guest.expect(tests::images::READY_MARKER, Duration::from_secs(1500));
    println!("PC: {machine} Linux to /init in {:?}", started.elapsed());
    guest.expect("# ", Duration::from_secs(60));
    guest.send_line("uname -m");
    guest.expect(machine, Duration::from_secs(60));
    at_shell(&mut guest);
    guest.send_line("poweroff -f");
    assert_eq!(guest.wait(Duration::from_secs(120)), 0);
}

/// Shell commands that print each PCI function Linux found as `PCI <address>
/// <vendor> <device> <class>`, then `PCI-END-42`.
const LIST_PCI: &str = "for d in /sys/bus/pci/devices/*; do \
    echo PCI $(basename $d) $(cat $d/vendor $d/device $d/class); done; echo PCI-END-$((6*7))";

/// The `PCI ...` lines [`LIST_PCI`] printed, and all it printed.
fn pci_functions(guest: &mut tests::GuestSession) -> (Vec<String>, String) {
    guest.send_line(LIST_PCI);
    let text = guest.expect("PCI-END-42", Duration::from_secs(120));
    let functions = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("PCI 0000:"))
        .map(str::to_owned)
        .collect();
    (functions, text)
}

/// What the guest shows of the devices the PCI test adds: the disk's first
/// bytes, the entropy source, and how many lines of the kernel log speak of a
/// timeout. Returns which CPUs are online, to compare between the
/// emulators, and checks that the virtio devices interrupt through MSI-X
/// (QEMU gives virtio-blk a queue per CPU, Turing one, so the counts of
/// MSI sources differ).
fn check_devices(guest: &mut tests::GuestSession) -> String {
    guest.send_line("head -c 16 /dev/vda");
    guest.expect(DISK_MARK, Duration::from_secs(120));
    guest.send_line("cat /sys/class/misc/hw_random/rng_available");
    guest.expect("virtio_rng.0", Duration::from_secs(60));
    // The NIC on user networking: a DHCP lease and the gateway's echo.
    guest.send_line(
        "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; \
         ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; \
         ping -c 2 10.0.2.2 | grep -o '[0-9] packets received'; echo NET-END-$((6*7))",
    );
    let text = guest.expect("NET-END-42", Duration::from_secs(300));
    assert!(
        text.contains("inet 10.0.2.15/24") && text.contains("2 packets received"),
        "no lease or no echo from the gateway:\n{text}"
    );
    guest.send_line("echo TIMEOUTS=$(dmesg | grep -ciE 'time(d )?out')");
    guest.expect("TIMEOUTS=0", Duration::from_secs(60));
    guest.send_line(
        "echo SMP-CPUS=$(cat /sys/devices/system/cpu/online) \
         SUMMARY-$((6*7))",
    );
    let text = guest.expect("SUMMARY-42", Duration::from_secs(60));
    let summary = text
        .lines()
        .rev()
        .find(|line| line.contains("SMP-CPUS=") && line.contains("SUMMARY-42"))
        .expect("the CPU summary line")
        .trim()
        .to_owned();
    // Each CPU's local APIC timer has ticked, and the three devices interrupt
    // through MSI-X.
    guest.send_line("grep -E 'LOC:|PCI-MSI' /proc/interrupts; echo LOC-END-$((6*7))");
    let text = guest.expect("LOC-END-42", Duration::from_secs(60));
    for device in ["virtio0", "virtio1", "virtio2"] {
        assert!(
            text.lines()
                .any(|line| line.contains("PCI-MSI") && line.contains(device)),
            "{device} has no MSI-X interrupt:\n{text}"
        );
    }
    let counts: Vec<u64> = text
        .lines()
        .find(|line| line.trim_start().starts_with("LOC:"))
        .expect("the local timer line")
        .split_whitespace()
        .skip(1)
        .map_while(|field| field.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts.iter().all(|&n| n > 0),
        "local timer interrupts per CPU: {counts:?}"
    );
    summary
}

/// The first bytes of the PCI test's disk.
const DISK_MARK: &str = "TURING-PCI-DISK";

/// The devices both emulators get in the PCI test, as QEMU spells them (and
/// Turing takes them).
fn pci_test_devices(disk: &Path) -> Vec<String> {
    [
        "--drive".to_owned(),
        format!("if=none,id=d0,format=raw,file={}", disk.display()),
        "--device".to_owned(),
        "virtio-blk-pci,drive=d0".to_owned(),
        "--device".to_owned(),
        "virtio-rng-pci".to_owned(),
        "--netdev".to_owned(),
        "user,id=n0".to_owned(),
        "--device".to_owned(),
        "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56".to_owned(),
    ]
    .to_vec()
}

/// The amd64 kernel on `pc` with a virtio-blk-pci disk, a virtio-rng-pci
/// device and a virtio-net-pci NIC on user networking: Linux finds the same
/// PCI functions (addresses, vendor and device IDs, classes) as on
/// `qemu-system-x86_64 -M pc` with the same options (and QEMU's default VGA,
/// but not its default NIC), reads the disk, takes entropy from the device,
/// gets a DHCP lease and an echo from the gateway, and its log reports no
/// timeout.
#[test]
fn debian_amd64_kernel_finds_qemus_pci_devices_and_powers_off() {
    require_tool("qemu-system-x86_64");
    let images = tests::images::pc_images();
    let disk = scratch("pci-disk.img");
    let mut image = vec![0u8; 1 << 20];
    image[..DISK_MARK.len()].copy_from_slice(DISK_MARK.as_bytes());
    std::fs::write(&disk, &image).unwrap();
    let qemu_disk = scratch("pci-disk-qemu.img");
    std::fs::write(&qemu_disk, &image).unwrap();

    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args([
        "-M",
        "pc",
        "-m",
        "256M",
        "-smp",
        "2",
        "-nographic",
        "-nic",
        "none",
    ])
    .arg("-kernel")
    .arg(&images.kernel)
    .arg("-initrd")
    .arg(&images.initramfs)
    .args(["-append", "console=ttyS0"])
    .args(pci_test_devices(&qemu_disk).iter().map(|a| {
        // QEMU's long options take one dash.
        a.strip_prefix('-').unwrap_or(a)
    }));
    let mut reference = tests::GuestSession::spawn(qemu);
    reference.expect(tests::images::READY_MARKER, Duration::from_secs(300));
    reference.expect("# ", Duration::from_secs(60));
    let (qemu_functions, _) = pci_functions(&mut reference);
    let qemu_summary = check_devices(&mut reference);
    reference.send_line("poweroff -f");
    let _ = reference.wait(Duration::from_secs(60));
    assert!(qemu_functions.len() >= 5, "QEMU's list: {qemu_functions:?}");
    assert!(qemu_summary.contains("SMP-CPUS=0-1"), "{qemu_summary}");

    let mut args = pci_test_devices(&disk);
    args.extend(["--smp".to_owned(), "2".to_owned()]);
    boot_to_shell_and_power_off(
        (&images.kernel, &images.initramfs),
        "x86_64",
        &args,
        |guest| {
            let (functions, printed) = pci_functions(guest);
            assert_eq!(
                functions, qemu_functions,
                "Turing's PCI functions, then QEMU's; Turing's guest printed:\n{printed}"
            );
            assert_eq!(check_devices(guest), qemu_summary, "Turing, then QEMU");
        },
    );
}

/// A copy of `image` in the scratch folder, for one test's guest to own.
fn scratch_copy(image: &Path, name: &str) -> PathBuf {
    let copy = scratch(name);
    std::fs::copy(image, &copy).unwrap();
    copy
}

/// What GRUB prints on the serial console as it starts the menu entry.
const GRUB_BOOTS: &str = "Booting `Debian GNU/Linux (Turing guest)'";

/// The kernel's first line, on the early serial console (the GRUB images'
/// command line has `earlyprintk=serial`) right after its decompressor ran.
const KERNEL_STARTS: &str = "Linux version 6.";

/// Starts `pc` without `--kernel` with `args` (its boot devices): SeaBIOS
/// boots the first device, whose GRUB loads Linux and its initramfs from its
/// menu; waits until the kernel prints its first line.
fn boot_through_grub(args: &[String]) -> tests::GuestSession {
    let mut all: Vec<&str> = vec!["--machine", "pc", "--memory", "256M"];
    all.extend(args.iter().map(String::as_str));
    let started = Instant::now();
    let mut guest = tests::GuestSession::start(&all);
    guest.expect(GRUB_BOOTS, Duration::from_secs(600));
    println!(
        "PC: SeaBIOS to GRUB's menu entry in {:?}",
        started.elapsed()
    );
    guest.expect(KERNEL_STARTS, Duration::from_secs(600));
    println!("PC: GRUB to the kernel in {:?}", started.elapsed());
    guest
}

/// The GRUB disk on the PIIX IDE controller (`--drive file=...`, IDE being
/// the PC's default interface): SeaBIOS boots it, GRUB loads the kernel and
/// initramfs from its FAT partition through the BIOS, and Linux's `ata_piix`
/// finds the same disk, as QEMU's, from which it reads the boot sector.
#[test]
fn the_grub_disk_boots_from_ide_to_the_shell() {
    let images = tests::images::pc_images();
    let disk = scratch_copy(&images.grub_disk, "grub-ide.img");
    let mut guest = boot_through_grub(&[
        "--drive".to_owned(),
        format!("file={},format=raw", disk.display()),
    ]);
    guest.expect(tests::images::READY_MARKER, Duration::from_secs(1500));
    guest.expect("# ", Duration::from_secs(60));
    guest.send_line("cat /sys/block/sda/device/model");
    guest.expect("QEMU HARDDISK", Duration::from_secs(60));
    // The boot sector's signature, read through Linux's driver.
    guest.send_line("echo MBR=$(head -c 512 /dev/sda | tail -c 2 | od -An -tx1)");
    guest.expect("MBR= 55 aa", Duration::from_secs(60));
    guest.send_line("poweroff -f");
    assert_eq!(guest.wait(Duration::from_secs(120)), 0);
}

/// The same disk as a virtio-blk-pci device: SeaBIOS's virtio driver boots
/// it, and GRUB reaches the kernel through the BIOS disk services.
#[test]
fn the_grub_disk_boots_from_virtio_blk_pci() {
    let images = tests::images::pc_images();
    let disk = scratch_copy(&images.grub_disk, "grub-virtio.img");
    boot_through_grub(&[
        "--drive".to_owned(),
        format!("if=none,id=boot,format=raw,file={}", disk.display()),
        "--device".to_owned(),
        "virtio-blk-pci,drive=boot".to_owned(),
    ]);
}

/// The GRUB CD-ROM (El Torito) in the IDE CD-ROM drive, `--cdrom` as QEMU
/// spells it: SeaBIOS boots it through ATAPI and GRUB the kernel from it.
#[test]
fn an_iso_boots_from_the_cdrom() {
    let images = tests::images::pc_images();
    boot_through_grub(&[
        "--cdrom".to_owned(),
        images.grub_cdrom.display().to_string(),
    ]);
}

/// Debian's memtest86+ booted as QEMU boots it (`-kernel memtest86+x64.bin
/// -append console=ttyS0,115200`): it finds the CPU and memory, and its
/// screen, mirrored on COM1, goes through its first tests with no error. The
/// VGA text screen (`--screenshot` as test 3 starts) is QEMU's `screendump`
/// of memtest's, pixel for pixel, in every cell that does not show a
/// measurement or what differs between the two machines.
#[test]
fn memtest86_runs_its_first_tests_without_errors() {
    require_tool("qemu-system-x86_64");
    let images = tests::images::pc_images();
    let memtest = images.memtest.display().to_string();
    let shot = scratch("memtest-screen.png");
    let shot_arg = shot.display().to_string();
    let mut guest = tests::GuestSession::start(&[
        "--machine",
        "pc",
        "--memory",
        "32M",
        "--kernel",
        &memtest,
        "--append",
        "console=ttyS0,115200",
        "--screenshot",
        &shot_arg,
        // Test 3 starts once tests 0 to 2 are through.
        "--screenshot-after",
        r"#3  \[Moving inversions",
    ]);
    guest.expect("Memtest86+ v6", Duration::from_secs(120));
    guest.expect("#0  [Address test, walking ones", Duration::from_secs(120));
    guest.expect("#3  [Moving inversions", Duration::from_secs(600));
    let screen = guest.transcript();
    assert!(screen.contains("Errors: 0"), "{screen}");
    let errors: Vec<&str> = screen
        .match_indices("Errors: ")
        .map(|(at, _)| screen[at + 8..].split_whitespace().next().unwrap_or(""))
        .filter(|count| *count != "0")
        .collect();
    assert!(errors.is_empty(), "memtest86+ reported errors: {errors:?}");
    assert_eq!(
        guest.wait(Duration::from_secs(60)),
        0,
        "turing after the screenshot"
    );

    let (w, h, pixels) = tests::read_png(&shot);
    assert_eq!((w, h), (720, 400), "memtest's 80×25 text screen");
    let reference = memtest_on_qemu(&images.memtest);
    assert_eq!(pixels.len(), reference.len());
    let cell = |pixels: &[u8], row: usize, col: usize| -> Vec<u8> {
        (row * 16..row * 16 + 16)
            .flat_map(|y| pixels[(y * 720 + col * 9) * 3..][..9 * 3].to_vec())
            .collect()
    };
    let mut differ = Vec::new();
    for &(row, ref cols) in MEMTEST_STATIC_CELLS {
        for col in cols.clone() {
            if cell(&pixels, row, col) != cell(&reference, row, col) {
                differ.push((row, col));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "text cells (row, column) of memtest's screen that differ from QEMU's: {differ:?} \
         (Turing's screenshot in {})",
        shot.display()
    );
    // A blank or single-colour screen on both sides would compare equal: the
    // title bar is memtest's reversed video on its blue screen.
    let title = cell(&reference, 0, 8);
    let background = cell(&reference, 12, 40);
    assert_ne!(title, background, "QEMU's screen shows no memtest title");
}

/// The text cells (row, columns) of memtest86+ v6's screen that show the same
/// on Turing as on QEMU, whatever the moment in test 3 or later: the title
/// bar, the labels, the frame, the CPU count and the error count, the empty
/// middle and the key help at the bottom. Left out: the CPU's name and clock,
/// the cache and memory sizes, the progress, the clock and the spinner, and
/// the board's name (SMBIOS).
const MEMTEST_STATIC_CELLS: &[(usize, std::ops::Range<usize>)] = &[
    (0, 0..30),
    (1, 0..9),
    (1, 28..35),
    (2, 0..9),
    (2, 28..35),
    (3, 0..9),
    (3, 28..35),
    (4, 0..9),
    (4, 28..35),
    (5, 0..9),
    (5, 28..35),
    (6, 0..80),
    (7, 0..48),
    (8, 0..80),
    (9, 0..80),
    (10, 0..80),
    (11, 0..80),
    (12, 0..80),
    (13, 0..80),
    (14, 0..80),
    (15, 0..80),
    (16, 0..80),
    (17, 0..80),
    (18, 0..80),
    (19, 0..80),
    (20, 0..80),
    (21, 0..80),
    (22, 0..80),
    (24, 0..80),
];

/// QEMU's `screendump` (RGB, 720×400) of `memtest` once a moving-inversions
/// test (3 or 4) runs: by then memtest uses all cores and has drawn every
/// static part of its screen.
fn memtest_on_qemu(memtest: &Path) -> Vec<u8> {
    let serial = scratch("qemu-memtest-serial.log");
    let dump = scratch("qemu-memtest-screen.ppm");
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-M", "pc", "-m", "32M", "-display", "none", "-nic", "none"])
        .arg("-kernel")
        .arg(memtest)
        .args(["-append", "console=ttyS0,115200", "-serial"])
        .arg(format!("file:{}", serial.display()))
        .args(["-monitor", "stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start qemu-system-x86_64");
    // memtest mirrors only what changed on its screen to the serial port, so
    // the test's number may come apart from its name there.
    let started = Instant::now();
    while !std::fs::read_to_string(&serial)
        .unwrap_or_default()
        .contains("[Moving inversions")
    {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = qemu.kill();
            let _ = qemu.wait();
            panic!("memtest on QEMU did not reach a moving-inversions test");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    {
        use std::io::Write;
        let stdin = qemu.stdin.as_mut().expect("QEMU's monitor");
        writeln!(stdin, "screendump {}", dump.display()).unwrap();
        writeln!(stdin, "quit").unwrap();
    }
    let _ = qemu.wait();
    let (width, height, pixels) = read_ppm(&dump);
    assert_eq!((width, height), (720, 400), "QEMU's memtest screen");
    pixels
}

/// Bookworm's i386 kernel (`linux-image-686`: 32-bit paging without PAE, no
/// long mode) on the same machine and CPU model.
#[test]
fn debian_i386_kernel_boots_to_a_shell_and_powers_off() {
    let images = tests::images::pc_images();
    boot_to_shell_and_power_off(
        (&images.kernel_686, &images.initramfs_i386),
        "i686",
        &[],
        |_| {},
    );
}

/// The Multiboot test kernel as an i386 ELF linked at 1 MiB (the usual form
/// of a Multiboot kernel: the loader takes its segments).
fn multiboot_elf() -> PathBuf {
    require_tool("nasm");
    require_tool("ld");
    let source = tests::repo_root().join("tests/guest/x86/multiboot.asm");
    let object = scratch("multiboot.o");
    let elf = scratch("multiboot.elf");
    let ok = Command::new("nasm")
        .args(["-f", "elf32", "-DELF", "-w+all", "-o"])
        .arg(&object)
        .arg(&source)
        .status()
        .expect("run nasm")
        .success()
        && Command::new("ld")
            .args(["-m", "elf_i386", "-N", "--no-warn-rwx-segments"])
            .args(["-Ttext=0x100000", "-e", "start", "-o"])
            .arg(&elf)
            .arg(&object)
            .status()
            .expect("run ld")
            .success();
    assert!(ok, "building {} as an ELF failed", source.display());
    elf
}

/// The Multiboot test kernel (`tests/guest/x86/multiboot.asm`), flat with the
/// load addresses in its header and as an ELF, booted with `--kernel`, a
/// module from `--initrd` and a command line, as QEMU's `-kernel` boots one:
/// it checks the magic, the information block (memory, command line "<path>
/// hello", the module and its arguments, the memory map), its zeroed bss and
/// flat protected mode, and reports through isa-debug-exit; both forms must
/// pass on QEMU too.
#[test]
fn a_multiboot_kernel_gets_its_module_command_line_and_memory_map() {
    let module = scratch("module1");
    std::fs::write(&module, b"MOD1 module data").unwrap();
    let initrd = format!("{} arg", module.display());
    const PASS: i32 = (0x10 << 1) | 1;
    for kernel in [
        tests::x86_machine::build_x86_rom("multiboot"),
        multiboot_elf(),
    ] {
        let qemu = Command::new("qemu-system-x86_64")
            .args(["-M", "pc", "-m", "128M", "-nodefaults", "-display", "none"])
            .arg("-kernel")
            .arg(&kernel)
            .args(["-initrd", &initrd, "-append", "hello"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .status()
            .expect("run qemu-system-x86_64");
        assert_eq!(
            qemu.code(),
            Some(PASS),
            "{} fails on QEMU",
            kernel.display()
        );
        let turing = pc_command()
            .args(["--timeout", "60", "--kernel"])
            .arg(&kernel)
            .args(["--initrd", &initrd, "--append", "hello"])
            .args(["--device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .output()
            .expect("run turing");
        assert_eq!(
            turing.status.code(),
            Some(PASS),
            "{}: status {:?} ((code << 1) | 1; 0x20 + n is check n failing): {}",
            kernel.display(),
            turing.status.code(),
            String::from_utf8_lossy(&turing.stderr)
        );
    }
}
