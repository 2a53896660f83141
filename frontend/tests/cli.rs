//! The `turing` command as a user meets it: the demo guest, exit codes, time-outs
//! and one-line errors (exit code 2) for bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TURING: &str = env!("CARGO_BIN_EXE_turing");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn turing(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(TURING)
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start turing");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Raw RV64 code that writes `value` to the finisher and spins.
fn finisher_program(value: u32) -> Vec<u8> {
    let upper = (value.wrapping_add(0x800)) & 0xffff_f000;
    let lower = value.wrapping_sub(upper) & 0xfff;
    let words = [
        0x0010_02b7,                                 // lui  t0, 0x100
        upper | (6 << 7) | 0x37,                     // lui  t1, upper
        (lower << 20) | (6 << 15) | (6 << 7) | 0x13, // addi t1, t1, lower
        0x0062_a023,                                 // sw   t1, 0(t0)
        0x0000_006f,                                 // j    .
    ];
    words.iter().flat_map(|w: &u32| w.to_le_bytes()).collect()
}

fn write_program(name: &str, bytes: &[u8]) -> String {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Bad input: exit code 2 and exactly one line naming the problem.
fn assert_usage_error(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn demo_guest_shows_banner_and_prompt_and_powers_off() {
    let output = turing(&["run"], b"help\necho hello turing\npoweroff\n");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(out.contains("Turing demo guest"), "{out}");
    assert!(out.contains("turing> "), "{out}");
    assert!(out.contains("poweroff"), "help lists commands: {out}");
    assert!(out.contains("\nhello turing"), "{out}");
    assert!(out.contains("Powering off."), "{out}");
}

#[test]
fn finisher_codes_become_exit_codes() {
    let pass = write_program("pass.bin", &finisher_program(0x5555));
    let fail7 = write_program("fail7.bin", &finisher_program(0x0007_3333));
    let fail0 = write_program("fail0.bin", &finisher_program(0x3333));
    assert_eq!(
        turing(&["run", "--kernel", &pass], b"").status.code(),
        Some(0)
    );
    assert_eq!(
        turing(&["run", "--kernel", &fail7], b"").status.code(),
        Some(7)
    );
    assert_eq!(
        turing(&["run", "--kernel", &fail0], b"").status.code(),
        Some(1)
    );
}

#[test]
fn timeout_exits_124_and_reports_where_the_guest_was() {
    let spin = write_program("spin.bin", &0x0000_006fu32.to_le_bytes());
    let output = turing(&["run", "--kernel", &spin, "--timeout", "0.3"], b"");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(124), "{err}");
    assert!(err.contains("timeout after 0.3 s"), "{err}");
    assert!(err.contains("pc 0x80000000, M-mode"), "{err}");
    assert!(err.contains("Jal"), "the report lists instructions: {err}");
}

#[test]
fn config_file_and_flags() {
    let fail7 = write_program("cfg-fail7.bin", &finisher_program(0x0007_3333));
    let pass = write_program("cfg-pass.bin", &finisher_program(0x5555));
    let config = scratch("vm.toml");
    std::fs::write(
        &config,
        format!(
            "machine = \"riscv-virt\"\nkernel = \"{fail7}\"\nmemory = \"64M\"\nserial = \"null\"\n"
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    assert_eq!(
        turing(&["run", "--config", &config], b"").status.code(),
        Some(7)
    );
    // A flag overrides the file.
    let output = turing(&["run", "--config", &config, "--kernel", &pass], b"");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn missing_file() {
    let output = turing(&["run", "--kernel", "/nonexistent/prog.elf"], b"");
    assert_usage_error(&output, "cannot read /nonexistent/prog.elf");
}

#[test]
fn text_file_is_not_a_program() {
    let text = write_program("notes.txt", b"this is not a program\n");
    assert_usage_error(
        &turing(&["run", "--kernel", &text], b""),
        "is not a RISC-V program",
    );
}

#[test]
fn elf_for_another_architecture() {
    // The test binary itself is an x86-64 ELF.
    let exe = std::env::current_exe().unwrap();
    let output = turing(&["run", "--kernel", exe.to_str().unwrap()], b"");
    assert_usage_error(&output, "it is an ELF for x86-64");
}

#[test]
fn unknown_machine() {
    assert_usage_error(
        &turing(&["run", "--machine", "pdp11"], b""),
        "unknown machine 'pdp11'",
    );
}

#[test]
fn malformed_config() {
    let config = scratch("bad.toml");
    std::fs::write(&config, "machine = \"riscv-virt\"\nmemroy = \"64M\"\n").unwrap();
    let output = turing(&["run", "--config", config.to_str().unwrap()], b"");
    assert_usage_error(&output, "line 2");
    assert!(stderr(&output).contains("bad.toml"));
    let config = scratch("garbage.toml");
    std::fs::write(&config, "machine = [unclosed\n").unwrap();
    assert_usage_error(
        &turing(&["run", "--config", config.to_str().unwrap()], b""),
        "garbage.toml",
    );
}

#[test]
fn malformed_size() {
    assert_usage_error(
        &turing(&["run", "--memory", "12Q"], b""),
        "invalid size '12Q'",
    );
    assert_usage_error(
        &turing(&["run", "--memory", "100K"], b""),
        "invalid memory size",
    );
}

#[test]
fn ram_too_small_for_the_image() {
    let big = write_program("big.bin", &vec![0x13u8; 3 << 20]);
    let output = turing(&["run", "--kernel", &big, "--memory", "2M"], b"");
    assert_usage_error(&output, "does not fit in guest RAM");
}

#[test]
fn device_tree_dump_is_valid() {
    let pass = write_program("dtb-pass.bin", &finisher_program(0x5555));
    let dtb = scratch("virt.dtb");
    let output = turing(
        &[
            "run",
            "--kernel",
            &pass,
            "--dump-dtb",
            dtb.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0));
    let blob = std::fs::read(&dtb).unwrap();
    assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
    let dtc = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&dtb)
        .output();
    if let Ok(dtc) = dtc {
        let dts = String::from_utf8_lossy(&dtc.stdout);
        assert!(
            dtc.status.success(),
            "dtc rejected the blob: {}",
            String::from_utf8_lossy(&dtc.stderr)
        );
        assert!(dts.contains("riscv,isa-extensions"), "{dts}");
        assert!(dts.contains("serial@10000000"), "{dts}");
    }
}

#[test]
fn smp_out_of_range() {
    assert_usage_error(&turing(&["run", "--smp", "9"], b""), "invalid smp 9");
    assert_usage_error(&turing(&["run", "--smp", "0"], b""), "invalid smp 0");
}

#[test]
fn drive_errors() {
    assert_usage_error(
        &turing(&["run", "--drive", "file=/nonexistent/disk.img"], b""),
        "/nonexistent/disk.img",
    );
    assert_usage_error(
        &turing(&["run", "--drive", "file=disk.img,cache=none"], b""),
        "unknown drive option 'cache=none'",
    );
    // A disk another process holds open for writing is refused, not shared.
    let disk = scratch("locked.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .unwrap();
    holder.lock().unwrap();
    let drive = format!("file={}", disk.display());
    assert_usage_error(
        &turing(&["run", "--drive", &drive], b""),
        "is locked by another process",
    );
    holder.unlock().unwrap();
}

/// QEMU's spelling: `--drive id=ID,file=F,if=none` and `--device DRIVER,drive=ID`.
/// The device tree lists a virtio-mmio slot per device either way; mistakes are
/// one line naming the device, option or id.
#[test]
fn devices_and_drives_by_id() {
    let disk = scratch("by-id.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let pass = write_program("device-pass.bin", &finisher_program(0x5555));
    let drive = format!("id=d0,file={},if=none", disk.display());
    let output = turing(
        &[
            "run",
            "--kernel",
            &pass,
            "--drive",
            &drive,
            "--device",
            "virtio-blk-device,drive=d0",
            "--device",
            "virtio-rng-device",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run = |device: &str| turing(&["run", "--drive", &drive, "--device", device], b"");
    assert_usage_error(
        &run("virtio-sound-device"),
        "unknown device 'virtio-sound-device' for riscv-virt (available: virtio-blk-device, virtio-net-device, virtio-rng-device, virtio-blk-pci, virtio-net-pci, virtio-rng-pci)",
    );
    assert_usage_error(
        &run("virtio-net-device"),
        "device virtio-net-device needs netdev=ID",
    );
    assert_usage_error(&run("virtio-blk-device,drive=d1"), "no --drive with id=d1");
    assert_usage_error(
        &run("virtio-blk-device,drive=d0,cache=none"),
        "device virtio-blk-device has no option 'cache' (it takes drive)",
    );
    assert_usage_error(&run("virtio-rng-device,x=1"), "has no option 'x'");
    assert_usage_error(
        &turing(&["run", "--drive", "file=a.img,if=none"], b""),
        "has if=none but no id=ID",
    );
}

/// `--log` takes env-filter directives; a bad one is a usage error.
#[test]
fn log_filters() {
    let pass = write_program("log-pass.bin", &finisher_program(0x5555));
    let output = turing(
        &["run", "--kernel", &pass, "--log", "info,devices=debug"],
        b"",
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_usage_error(
        &turing(&["run", "--kernel", &pass, "--log", "devices=loud"], b""),
        "invalid --log 'devices=loud'",
    );
    let output = Command::new(TURING)
        .args(["run", "--kernel", &pass])
        .env("TURING_LOG", "=bad=")
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert_usage_error(&output, "invalid TURING_LOG '=bad='");
}

#[test]
fn initrd_that_does_not_fit() {
    let pass = write_program("initrd-pass.bin", &finisher_program(0x5555));
    let initrd = write_program("big-initrd.img", &vec![0u8; 3 << 20]);
    let output = turing(
        &[
            "run", "--kernel", &pass, "--initrd", &initrd, "--memory", "2M",
        ],
        b"",
    );
    assert_usage_error(&output, "does not fit in guest RAM");
    let output = turing(
        &["run", "--kernel", &pass, "--initrd", "/nonexistent/initrd"],
        b"",
    );
    assert_usage_error(&output, "cannot read initrd /nonexistent/initrd");
}

#[test]
fn expect_and_send_drive_the_serial_console_in_order() {
    let log = scratch("expect.log");
    let _ = std::fs::remove_file(&log);
    let serial = format!("file:{}", log.display());
    let output = turing(
        &[
            "run",
            "--serial",
            &serial,
            "--timeout",
            "30",
            "--expect",
            "turing> ",
            "--send",
            "echo first",
            "--expect",
            "\nfirst",
            "--send",
            "echo second",
            "--expect",
            "\nsecond",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text
        .find("turing> echo first")
        .expect("first command typed");
    let second = text
        .find("turing> echo second")
        .expect("second command typed");
    assert!(first < second, "{text}");
}

#[test]
fn an_unmet_expect_fails_when_the_guest_powers_off() {
    let output = turing(
        &[
            "run",
            "--serial",
            "null",
            "--timeout",
            "30",
            "--expect",
            "turing> ",
            "--send",
            "poweroff",
            "--expect",
            "never printed",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("while waiting for 'never printed'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn max_instructions_stops_a_runaway_guest() {
    let spin = write_program("spin.bin", &[0x6f, 0, 0, 0]); // j .
    let json = scratch("spin.json");
    let output = turing(
        &[
            "run",
            "--kernel",
            &spin,
            "--bios",
            "none",
            "--serial",
            "null",
            "--max-instructions",
            "1000000",
            "--stats-json",
            json.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(124));
    assert!(
        stderr(&output).contains("instruction limit of 1000000 reached"),
        "{}",
        stderr(&output)
    );
    let stats = std::fs::read_to_string(&json).unwrap();
    assert!(
        stats.contains("\"outcome\": \"instruction-limit\""),
        "{stats}"
    );
    // Within one translated block of the limit.
    assert!(stats.contains("\"instructions\": 100000"), "{stats}");
}

/// `csrw mtvec, zero; jr zero`: every fetch from address 0 faults and the fault
/// handler is address 0, so no instruction retires again.
fn fetch_fault_loop_program() -> Vec<u8> {
    [0x3050_1073u32, 0x0000_0067]
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect()
}

#[test]
fn max_instructions_stops_a_guest_stuck_in_a_fetch_fault_loop() {
    let program = write_program("fetch-fault-loop.bin", &fetch_fault_loop_program());
    for accel in ["jit", "interp"] {
        let output = turing(
            &[
                "run",
                "--kernel",
                &program,
                "--bios",
                "none",
                "--serial",
                "null",
                "--accel",
                accel,
                "--max-instructions",
                "200000",
                "--timeout",
                "120",
            ],
            b"",
        );
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(124), "{accel}: {err}");
        // The reset ROM and the program retire a few instructions; traps are the rest.
        let traps: u64 = err
            .split("retired, ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{accel}: no trap count in: {err}"));
        assert!(
            err.contains("instruction limit of 200000 reached"),
            "{accel}: {err}"
        );
        assert!(traps > 199_900, "{accel}: {err}");
    }
}

#[test]
fn the_timeout_report_names_the_trap_a_fault_loop_takes() {
    let program = write_program("fetch-fault-loop-t.bin", &fetch_fault_loop_program());
    let output = turing(
        &[
            "run",
            "--kernel",
            &program,
            "--bios",
            "none",
            "--timeout",
            "0.3",
        ],
        b"",
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(124), "{err}");
    assert!(
        err.contains("0x000000000000 [M] trap: instruction access fault (cause 0x1, tval 0x0)"),
        "the report names the faulting pc and cause: {err}"
    );
}

#[test]
fn stats_report_translation_time_as_a_share_of_the_run() {
    let spin = write_program("spin-stats.bin", &[0x6f, 0, 0, 0]); // j .
    let output = turing(
        &[
            "run",
            "--kernel",
            &spin,
            "--bios",
            "none",
            "--serial",
            "null",
            "--max-instructions",
            "5000000",
            "--deterministic",
            "--stats",
        ],
        b"",
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(124), "{err}");
    // A deterministic run compiles on the hart's thread, so the loop is
    // translated however busy the host is.
    assert!(
        err.contains("turing: stats: jit: 1 blocks (1 instructions) compiled in"),
        "{err}"
    );
    let share = err
        .lines()
        .find_map(|l| l.strip_prefix("turing: stats: translation took "))
        .unwrap_or_else(|| panic!("no translation line: {err}"));
    assert!(share.ends_with("% of the run's wall time"), "{share}");
}

#[test]
fn a_bad_expect_pattern_is_a_usage_error() {
    let output = turing(&["run", "--expect", "(unclosed"], b"");
    assert_usage_error(&output, "invalid regex '(unclosed'");
}

#[test]
fn a_bad_gdb_address_is_a_usage_error() {
    let output = turing(&["run", "--gdb", "tcp:127.0.0.1:99999"], b"");
    assert_usage_error(&output, "is not a port number");
    let output = turing(&["run", "--gdb", "tcp:no-such-host.invalid:1234"], b"");
    assert_usage_error(&output, "cannot resolve host 'no-such-host.invalid'");
}
