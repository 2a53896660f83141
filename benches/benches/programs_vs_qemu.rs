//! Real programs inside Debian Linux, on Turing and on qemu-system-riscv64 in the
//! same run: Debian's own riscv64 python3, perl, gcc, xz, sqlite3 and git, from the
//! disk image `cargo xtask images --programs` builds, on the same kernel, initramfs
//! and OpenSBI, one hart. Each task runs in a chroot on the read-only image
//! (`/bench/run TASK`, see `benches/guest/programs/`); its `RESULT` line must be the
//! same on both emulators. Prints each task's time and Turing/QEMU ratio, the
//! geometric mean and the worst task.
//!
//! `cargo xtask bench` runs it last. `-- --runs N` runs every task N times in one
//! boot and takes the median (default 1: one pass is several minutes on Turing).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use benches::{debian_boot_args, geomean, median, turing_binary};
use tests::GuestSession;
use tests::images::{READY_MARKER, programs_image};

const PROMPT: &str = "~ # ";
const LIMIT: Duration = Duration::from_secs(900);
/// The tasks of `benches/guest/programs/run`, in the order they run.
const TASKS: &[&str] = &["python", "perl", "gcc", "xz", "sqlite3", "git"];
/// xz -9 alone takes 674 MiB; the rest fits easily.
const MEMORY: &str = "2G";
const APPEND: &str = "console=ttyS0 quiet";
/// Mounts the image read-only at /mnt, with tmpfs, devtmpfs and proc inside.
const MOUNT: &str = "mount -o ro /dev/vda /mnt && mount -t tmpfs tmp /mnt/tmp && \
                     mount -t devtmpfs dev /mnt/dev && mount -t proc proc /mnt/proc && echo MOUNTED-OK";

/// One task's median time and the `RESULT` line it printed.
struct TaskRun {
    seconds: f64,
    result: String,
}

/// Boots the guest, mounts the image and runs every task `runs` times.
fn measure(
    mut guest: GuestSession,
    runs: usize,
    emulator: &str,
) -> BTreeMap<&'static str, TaskRun> {
    guest.expect(READY_MARKER, LIMIT);
    guest.expect(PROMPT, LIMIT);
    guest.send_line(MOUNT);
    let out = guest.expect(PROMPT, LIMIT);
    assert!(
        out.contains("MOUNTED-OK"),
        "{emulator}: cannot mount the programs image: {out}"
    );
    let mut timings = BTreeMap::new();
    for &task in TASKS {
        let mut seconds = Vec::new();
        let mut result = String::new();
        for _ in 0..runs {
            let started = Instant::now();
            guest.send_line(&format!("chroot /mnt /bench/run {task}"));
            let out = guest.expect(PROMPT, LIMIT);
            seconds.push(started.elapsed().as_secs_f64());
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("RESULT {task} ")))
                .unwrap_or_else(|| panic!("{emulator}: task {task} printed no result: {out}"))
                .trim()
                .to_owned();
            assert!(
                result.is_empty() || result == line,
                "{emulator}: task {task} gave {line} after {result}"
            );
            result = line;
        }
        eprintln!("{emulator}: {task}: {:.2} s", median(seconds.clone()));
        timings.insert(
            task,
            TaskRun {
                seconds: median(seconds),
                result,
            },
        );
    }
    guest.send_line("poweroff -f");
    let _ = guest.wait(Duration::from_secs(60));
    timings
}

fn turing_command(disk: &Path) -> Command {
    let mut turing = Command::new(turing_binary());
    turing
        .args([
            "run",
            "--display",
            "none",
            "--memory",
            MEMORY,
            "--append",
            APPEND,
        ])
        .arg("--drive")
        .arg(format!("id=d0,file={},if=none,readonly=on", disk.display()))
        .args(["--device", "virtio-blk-device,drive=d0"]);
    debian_boot_args(&mut turing, "--");
    turing
}

fn qemu_command(disk: &Path) -> Command {
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", MEMORY, "-nographic", "-append", APPEND])
        .arg("-drive")
        .arg(format!(
            "id=d0,file={},format=raw,if=none,readonly=on",
            disk.display()
        ))
        .args(["-device", "virtio-blk-device,drive=d0"]);
    debian_boot_args(&mut qemu, "-");
    qemu
}

fn main() {
    let runs = benches::runs_arg_or(1);
    let disk = programs_image();
    let turing = measure(GuestSession::spawn(turing_command(&disk)), runs, "turing");
    let qemu = measure(GuestSession::spawn(qemu_command(&disk)), runs, "qemu");
    println!(
        "real programs in Debian Linux on a read-only virtio disk, 1 hart, {runs} run(s) each (seconds; ratio = turing / qemu):"
    );
    let mut ratios = Vec::new();
    for &task in TASKS {
        let (t, q) = (&turing[task], &qemu[task]);
        assert_eq!(
            t.result, q.result,
            "task {task}: Turing's result differs from QEMU's"
        );
        let ratio = t.seconds / q.seconds;
        ratios.push((ratio, task));
        println!(
            "  {task:8} turing {:6.2}  qemu {:6.2}  ratio {ratio:.2}x   {}",
            t.seconds, q.seconds, t.result
        );
    }
    let worst = ratios
        .iter()
        .copied()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .expect("tasks");
    let values: Vec<f64> = ratios.iter().map(|r| r.0).collect();
    println!(
        "  geomean {:.2}x, worst {} {:.2}x (targets: geomean <= 1.0, no task above 1.5)",
        geomean(&values),
        worst.1,
        worst.0
    );
}
