//! Network throughput of Debian riscv64 guests on Turing and on
//! qemu-system-riscv64, same kernel and initramfs, same netdevs, in the same
//! run (Turing / QEMU as a ratio of throughputs; above 1 is faster):
//! - guest to host TCP over `--netdev user`: the guest sends 64 MiB with
//!   busybox `nc` to a sink on the host's loopback, through the gateway;
//! - VM to VM TCP over `--netdev stream` (a UNIX socket): one VM sends 64 MiB
//!   to the other's `nc -l`.
//!
//! Each figure is the best of `--runs N` (default 2) runs. `cargo xtask
//! bench` runs it with the other comparisons.

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::GuestSession;
use tests::images::READY_MARKER;

const PROMPT: &str = "~ # ";
const LIMIT: Duration = Duration::from_secs(600);
const MIB: u64 = 64;

/// Which emulator runs a VM.
#[derive(Clone, Copy)]
enum Emulator {
    Turing,
    Qemu,
}

impl Emulator {
    fn name(self) -> &'static str {
        match self {
            Emulator::Turing => "turing",
            Emulator::Qemu => "qemu",
        }
    }

    /// A VM with a virtio-net NIC (mmio, on both) on `netdev`, at the shell.
    fn boot(self, netdev: &str, mac: &str) -> GuestSession {
        let nic = format!("virtio-net-device,netdev=n0,mac={mac}");
        let mut command = match self {
            Emulator::Turing => {
                let mut turing = Command::new(benches::turing_binary());
                turing.args(["run", "--display", "none", "--memory", "512M"]);
                turing.args(["--append", APPEND, "--netdev", netdev, "--device", &nic]);
                benches::debian_boot_args(&mut turing, "--");
                turing
            }
            Emulator::Qemu => {
                let mut qemu = Command::new("qemu-system-riscv64");
                qemu.args(["-M", "virt", "-m", "512M", "-nographic"]);
                qemu.args(["-append", APPEND, "-netdev", netdev, "-device", &nic]);
                benches::debian_boot_args(&mut qemu, "-");
                qemu
            }
        };
        command.stderr(std::process::Stdio::null());
        let mut guest = GuestSession::spawn(command);
        guest.expect(READY_MARKER, LIMIT);
        guest.expect(PROMPT, LIMIT);
        guest
    }
}

const APPEND: &str = "console=ttyS0 quiet";

fn shell(guest: &mut GuestSession, line: &str) -> String {
    guest.send_line(line);
    guest.expect(PROMPT, LIMIT)
}

fn power_off(mut guest: GuestSession) {
    guest.send_line("poweroff -f");
    let _ = guest.wait(Duration::from_secs(60));
}

/// MiB/s of a guest's 64 MiB sent to a host sink through `--netdev user`,
/// timed at the sink from its first byte to the end.
fn user_to_host(emulator: Emulator) -> f64 {
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    let (done, timing) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = sink.accept().unwrap();
        let mut buffer = vec![0u8; 1 << 16];
        let mut total = 0u64;
        let mut first = None;
        loop {
            let n = stream.read(&mut buffer).unwrap_or(0);
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            total += n as u64;
        }
        let seconds = first.map_or(f64::NAN, |f| f.elapsed().as_secs_f64());
        let _ = done.send((total, seconds));
    });
    let mut guest = emulator.boot("user,id=n0", "52:54:00:00:10:01");
    let lease = shell(
        &mut guest,
        "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; ip -4 addr show eth0",
    );
    assert!(
        lease.contains("10.0.2.15"),
        "{}: no lease: {lease}",
        emulator.name()
    );
    shell(
        &mut guest,
        &format!("head -c {} /dev/zero | nc 10.0.2.2 {port}", MIB << 20),
    );
    let (total, seconds) = timing.recv_timeout(LIMIT).expect("the sink's timing");
    assert_eq!(
        total,
        MIB << 20,
        "{}: the sink got {total} bytes",
        emulator.name()
    );
    power_off(guest);
    MIB as f64 / seconds
}

/// MiB/s from one VM to another over a stream link, timed by the sender's
/// shell from the command to its prompt.
fn vm_to_vm(emulator: Emulator) -> f64 {
    let socket =
        std::env::temp_dir().join(format!("turing-bench-link-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let server = format!(
        "stream,id=n0,server=on,addr.type=unix,addr.path={}",
        socket.display()
    );
    let client = format!(
        "stream,id=n0,server=off,addr.type=unix,addr.path={}",
        socket.display()
    );
    // QEMU's server listens before its guest runs, as Turing's does: boot it
    // first, then the client can connect.
    let (ready, wait) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        let mut guest = emulator.boot(&server, "52:54:00:00:20:01");
        shell(
            &mut guest,
            "ip addr add 10.9.0.1/24 dev eth0; ip link set eth0 up",
        );
        guest.send_line("nc -l -p 5000 > /dev/null; echo RECEIVED");
        let _ = ready.send(());
        guest.expect("RECEIVED", LIMIT);
        guest.expect(PROMPT, LIMIT);
        power_off(guest);
    });
    wait.recv_timeout(LIMIT).expect("the receiving VM");
    let mut sender = emulator.boot(&client, "52:54:00:00:20:02");
    shell(
        &mut sender,
        "ip addr add 10.9.0.2/24 dev eth0; ip link set eth0 up; \
         until grep -q 1 /sys/class/net/eth0/carrier; do sleep 0.1; done; ping -c 1 -W 5 10.9.0.1 >/dev/null",
    );
    let started = Instant::now();
    shell(
        &mut sender,
        &format!("head -c {} /dev/zero | nc 10.9.0.1 5000", MIB << 20),
    );
    let seconds = started.elapsed().as_secs_f64();
    power_off(sender);
    receiver.join().expect("the receiving VM's thread");
    let _ = std::fs::remove_file(&socket);
    MIB as f64 / seconds
}

fn best(runs: usize, mut measure: impl FnMut() -> f64) -> f64 {
    (0..runs.max(1)).map(|_| measure()).fold(0.0, f64::max)
}

fn main() {
    let runs = benches::runs_arg_or(2);
    println!(
        "network throughput, {MIB} MiB over TCP with busybox nc, best of {runs} (MiB/s; ratio = turing / qemu, above 1 is faster):"
    );
    let turing = best(runs, || user_to_host(Emulator::Turing));
    let qemu = best(runs, || user_to_host(Emulator::Qemu));
    println!(
        "  guest to host, --netdev user:  turing {turing:.1}, qemu {qemu:.1}, ratio {:.2}",
        turing / qemu
    );
    let turing = best(runs, || vm_to_vm(Emulator::Turing));
    let qemu = best(runs, || vm_to_vm(Emulator::Qemu));
    println!(
        "  vm to vm, --netdev stream:     turing {turing:.1}, qemu {qemu:.1}, ratio {:.2}",
        turing / qemu
    );
}
