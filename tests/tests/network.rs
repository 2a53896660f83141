//! Networks of VMs: Debian riscv64 guests with virtio-net NICs, linked by
//! `--netdev stream` (QEMU's length-prefixed frames) to each other and to a
//! QEMU VM, ping each other and move data with busybox `nc`, checksums
//! checked; a NIC's capture reads back with `tcpdump -r`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::GuestSession;
use tests::images::{READY_MARKER, debian_images};

/// Generous: a JIT boot takes seconds, but two VMs share two cores.
const BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);
/// Making, hashing and sending 64 MiB on shared cores.
const WORK: Duration = Duration::from_secs(600);
const PROMPT: &str = "~ # ";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("network");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// The kernel, initramfs and options both emulators boot with, spelled for
/// Turing (`--memory`) or for QEMU (`-m`).
fn linux_args(turing: bool) -> Vec<String> {
    let images = debian_images();
    let flag = |qemu: &str, ours: &str| {
        if turing {
            ours.to_owned()
        } else {
            qemu.to_owned()
        }
    };
    vec![
        flag("-kernel", "--kernel"),
        images.kernel.display().to_string(),
        flag("-initrd", "--initrd"),
        images.initramfs.display().to_string(),
        flag("-append", "--append"),
        "console=ttyS0 quiet".to_owned(),
        flag("-m", "--memory"),
        "512M".to_owned(),
    ]
}

/// Waits up to a minute for `who` to create the UNIX socket `socket`.
fn wait_for_socket(socket: &Path, who: &str) {
    for _ in 0..600 {
        if socket.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{who} did not listen on {}", socket.display());
}

/// A Turing riscv-virt VM with `net` arguments; its shell is not waited for.
fn start_turing(net: &[&str]) -> GuestSession {
    let mut command = tests::turing_command();
    command.arg("run").args(linux_args(true));
    command.args(["--timeout", "900"]).args(net);
    GuestSession::spawn(command)
}

fn wait_for_shell(guest: &mut GuestSession) {
    guest.expect(READY_MARKER, BOOT);
    guest.expect(PROMPT, COMMAND);
}

/// Runs a shell command and returns its output up to the next prompt.
fn shell(guest: &mut GuestSession, command: &str, timeout: Duration) -> String {
    guest.send_line(command);
    guest.expect(PROMPT, timeout)
}

/// Gives eth0 `address`/24 and waits until the kernel reports the link up.
fn configure(guest: &mut GuestSession, address: &str) {
    let out = shell(
        guest,
        &format!(
            "ip addr add {address}/24 dev eth0 && ip link set eth0 up && \
             until grep -q 1 /sys/class/net/eth0/carrier; do sleep 0.2; done; \
             echo LINK-$((6*7))"
        ),
        COMMAND,
    );
    assert!(out.contains("LINK-42"), "eth0 did not come up:\n{out}");
}

fn assert_pings(guest: &mut GuestSession, peer: &str) {
    let out = shell(guest, &format!("ping -c 3 -W 5 {peer}"), COMMAND);
    assert!(
        out.contains("3 packets transmitted, 3 packets received"),
        "ping {peer}:\n{out}"
    );
}

/// Waits for both VMs' shells, gives each its address and has each ping the
/// other.
fn link_and_ping(a: (&mut GuestSession, &str), b: (&mut GuestSession, &str)) {
    let ((a, a_ip), (b, b_ip)) = (a, b);
    wait_for_shell(a);
    wait_for_shell(b);
    configure(a, a_ip);
    configure(b, b_ip);
    assert_pings(b, a_ip);
    assert_pings(a, b_ip);
}

/// The first SHA-256 (64 hex digits) in `text`.
fn sha256_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no SHA-256 in:\n{text}"))
        .to_owned()
}

/// Sends `mib` MiB of random bytes from `sender` to `receiver` (at
/// `receiver_ip`) with busybox `nc` and checks both ends hash the same.
fn transfer(sender: &mut GuestSession, receiver: &mut GuestSession, receiver_ip: &str, mib: u32) {
    receiver.send_line("nc -l -p 5000 | sha256sum; echo RECEIVED-$((6*7))");
    let made = shell(
        sender,
        &format!(
            "dd if=/dev/urandom of=/tmp/blob bs=1M count={mib} 2>/dev/null; sha256sum /tmp/blob"
        ),
        WORK,
    );
    let sent = sha256_in(&made);
    // Give the listener a moment to bind before connecting.
    let out = shell(
        sender,
        &format!("sleep 1; nc {receiver_ip} 5000 < /tmp/blob; echo SENT-$((6*7))"),
        WORK,
    );
    assert!(out.contains("SENT-42"), "nc: {out}");
    let got = receiver.expect("RECEIVED-42", WORK);
    assert_eq!(sha256_in(&got), sent, "the receiver's SHA-256 differs");
    receiver.expect(PROMPT, COMMAND);
}

fn power_off(mut guest: GuestSession) {
    guest.send_line("poweroff -f");
    assert_eq!(guest.wait(COMMAND), 0, "poweroff -f must end the VM with 0");
}

/// What `tcpdump -n -r` prints of the capture `path`, which it must read.
fn read_capture(path: &Path) -> String {
    tests::require_tool("tcpdump");
    let read = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .expect("run tcpdump");
    assert!(
        read.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    String::from_utf8_lossy(&read.stdout).into_owned()
}

/// Two Turing VMs, one serving a UNIX stream socket on virtio-mmio and one
/// connecting on virtio-pci: ping both ways, then 64 MiB with nc. The
/// server's capture holds the pings, as `tcpdump -r` reads them.
#[test]
fn two_turing_vms_on_a_stream_link_ping_and_move_64_mib() {
    let socket = scratch("link.sock");
    let capture = scratch("server.pcap");
    let server_net = format!(
        "stream,id=n0,server=on,addr.type=unix,addr.path={},pcap={}",
        socket.display(),
        capture.display()
    );
    let mut server = start_turing(&[
        "--netdev",
        &server_net,
        "--device",
        "virtio-net-device,netdev=n0,mac=52:54:00:00:00:01",
    ]);
    // The server binds before the guest starts.
    wait_for_socket(&socket, "the server");
    let client_net = format!(
        "stream,id=n0,server=off,addr.type=unix,addr.path={}",
        socket.display()
    );
    let mut client = start_turing(&[
        "--netdev",
        &client_net,
        "--device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:02",
    ]);
    link_and_ping((&mut server, "10.0.0.1"), (&mut client, "10.0.0.2"));
    transfer(&mut client, &mut server, "10.0.0.1", 64);
    power_off(client);
    power_off(server);

    let text = read_capture(&capture);
    assert!(
        text.contains("10.0.0.2 > 10.0.0.1: ICMP echo request")
            && text.contains("10.0.0.1 > 10.0.0.2: ICMP echo reply"),
        "the capture lacks the pings:\n{}",
        text.lines().take(40).collect::<Vec<_>>().join("\n")
    );
}

/// A QEMU VM serves a TCP stream link, a Turing VM connects to it: they ping
/// each other and move 64 MiB one way and 16 MiB back.
#[test]
fn a_turing_vm_and_a_qemu_vm_share_a_stream_link() {
    tests::require_tool("qemu-system-riscv64");
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-nographic"])
        .args(linux_args(false))
        .args([
            "-netdev",
            &format!("stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port={port}"),
            "-device",
            "virtio-net-device,netdev=n0,mac=52:54:00:00:00:11",
        ]);
    let mut qemu = GuestSession::spawn(qemu);
    // QEMU listens before it runs the guest: its first output comes after.
    qemu.expect("OpenSBI", BOOT);
    let net =
        format!("stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port={port}");
    let mut turing = start_turing(&[
        "--netdev",
        &net,
        "--device",
        "virtio-net-device,netdev=n0,mac=52:54:00:00:00:12",
    ]);
    link_and_ping((&mut qemu, "10.0.1.1"), (&mut turing, "10.0.1.2"));
    transfer(&mut turing, &mut qemu, "10.0.1.1", 64);
    transfer(&mut qemu, &mut turing, "10.0.1.2", 16);
    power_off(turing);
    qemu.send_line("poweroff -f");
    qemu.wait(COMMAND);
}

/// The SHA-256 of `bytes`, by the host's `sha256sum`.
fn host_sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    sha256_in(&String::from_utf8_lossy(
        &child.wait_with_output().unwrap().stdout,
    ))
}

/// Two Turing VMs on a `--netdev dgram` link over UDP on loopback, a frame per
/// datagram as QEMU sends them, ping each other.
#[test]
fn two_turing_vms_on_a_dgram_link_ping_each_other() {
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        })
        .collect();
    let net = |local: u16, remote: u16| {
        format!(
            "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},\
             remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
        )
    };
    let (a_net, b_net) = (net(ports[0], ports[1]), net(ports[1], ports[0]));
    let mut a = start_turing(&[
        "--netdev",
        &a_net,
        "--device",
        "virtio-net-device,netdev=n0,mac=52:54:00:00:05:01",
    ]);
    let mut b = start_turing(&[
        "--netdev",
        &b_net,
        "--device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:00:05:02",
    ]);
    link_and_ping((&mut a, "10.0.5.1"), (&mut b, "10.0.5.2"));
    power_off(a);
    power_off(b);
}

/// Starts a Turing VM serving a stream link on `socket`, at its shell, with
/// eth0 at `address`.
fn start_link_server(socket: &Path, address: &str) -> GuestSession {
    let net = format!(
        "stream,id=n0,server=on,addr.type=unix,addr.path={}",
        socket.display()
    );
    let mut server = start_turing(&[
        "--netdev",
        &net,
        "--device",
        "virtio-net-device,netdev=n0,mac=52:54:00:00:04:01",
    ]);
    wait_for_shell(&mut server);
    configure_without_carrier(&mut server, address);
    server
}

/// Gives eth0 `address`/24 and brings it up, without waiting for a carrier.
fn configure_without_carrier(guest: &mut GuestSession, address: &str) {
    shell(
        guest,
        &format!("ip addr add {address}/24 dev eth0 && ip link set eth0 up"),
        COMMAND,
    );
}

/// A stream peer that dies in the middle of a transfer: the other VM sees its
/// link go down and carries on; with `reconnect=1` it finds the restarted
/// peer and the link works again. No process hangs or crashes.
#[test]
fn a_peer_that_disconnects_mid_transfer_takes_the_link_down_until_it_returns() {
    let socket = scratch("reconnect.sock");
    let server = start_link_server(&socket, "10.0.4.1");
    let net = format!(
        "stream,id=n0,server=off,reconnect=1,addr.type=unix,addr.path={}",
        socket.display()
    );
    let mut client = start_turing(&[
        "--netdev",
        &net,
        "--device",
        "virtio-net-device,netdev=n0,mac=52:54:00:00:04:02",
    ]);
    wait_for_shell(&mut client);
    configure(&mut client, "10.0.4.2");
    let mut server = server;
    assert_pings(&mut client, "10.0.4.1");
    server.send_line("nc -l -p 5000 > /dev/null");
    shell(
        &mut client,
        "(head -c 268435456 /dev/zero | nc 10.0.4.1 5000 &) ; sleep 2",
        COMMAND,
    );
    // The server's process dies mid-transfer.
    drop(server);
    let out = shell(
        &mut client,
        "until grep -q 0 /sys/class/net/eth0/carrier; do sleep 0.2; done; echo DOWN-$((6*7))",
        COMMAND,
    );
    assert!(out.contains("DOWN-42"), "{out}");
    // A killed server leaves its socket file, as QEMU's does.
    let _ = std::fs::remove_file(&socket);
    let mut server = start_link_server(&socket, "10.0.4.1");
    let out = shell(
        &mut client,
        "until grep -q 1 /sys/class/net/eth0/carrier; do sleep 0.2; done; echo UP-$((6*7))",
        COMMAND,
    );
    assert!(out.contains("UP-42"), "{out}");
    // The first echo may go while the new server still resolves the address.
    let out = shell(&mut server, "ping -c 4 -W 5 10.0.4.2", COMMAND);
    assert!(
        out.contains("packets received") && !out.contains(" 0 packets received"),
        "no echo over the restored link:\n{out}"
    );
    power_off(client);
    power_off(server);
}

/// `turing switch` joins three VMs on one LAN: each pings the other two.
#[test]
fn three_vms_on_a_turing_switch_reach_each_other() {
    let socket = scratch("switch.sock");
    let mut switch = tests::turing_command()
        .arg("switch")
        .arg(&socket)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start turing switch");
    wait_for_socket(&socket, "the switch");
    let net = format!("stream,id=n0,addr.type=unix,addr.path={}", socket.display());
    let mut vms: Vec<GuestSession> = (1..=3)
        .map(|n| {
            start_turing(&[
                "--netdev",
                &net,
                "--device",
                &format!("virtio-net-pci,netdev=n0,mac=52:54:00:00:03:0{n}"),
            ])
        })
        .collect();
    for (n, vm) in vms.iter_mut().enumerate() {
        wait_for_shell(vm);
        configure(vm, &format!("10.0.3.{}", n + 1));
    }
    for (n, vm) in vms.iter_mut().enumerate() {
        for peer in (1..=3).filter(|&p| p != n + 1) {
            assert_pings(vm, &format!("10.0.3.{peer}"));
        }
    }
    for vm in vms {
        power_off(vm);
    }
    let _ = switch.kill();
    let _ = switch.wait();
}

/// Serves `body` over HTTP/1.0 on the host's loopback until the test ends;
/// returns the port.
fn serve_http(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    request.push(byte[0]);
                }
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}

/// User networking: DHCP gives 10.0.2.15, the resolver answers with the
/// host's, `wget` fetches a file from a host server through the gateway,
/// and a forwarded host port reaches the guest's `httpd`. The capture shows
/// the DHCP exchange.
#[test]
fn user_networking_gives_dhcp_dns_nat_and_forwarded_ports() {
    let body: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let expected = host_sha256(&body);
    let port = serve_http(body);
    let forwarded = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let capture = scratch("user.pcap");
    let net = format!(
        "user,id=n0,hostfwd=tcp:127.0.0.1:{forwarded}-:80,pcap={}",
        capture.display()
    );
    let mut guest = start_turing(&["--netdev", &net, "--device", "virtio-net-pci,netdev=n0"]);
    let started = std::time::Instant::now();
    wait_for_shell(&mut guest);
    println!("user network: shell in {:?}", started.elapsed());
    let out = shell(
        &mut guest,
        "ip link set eth0 up && udhcpc -i eth0 -n -q -t 10 2>&1; ip -4 addr show eth0",
        WORK,
    );
    assert!(out.contains("inet 10.0.2.15/24"), "no DHCP lease:\n{out}");
    let out = shell(&mut guest, "cat /etc/resolv.conf; ip route", COMMAND);
    assert!(out.contains("nameserver 10.0.2.3"), "{out}");
    assert!(out.contains("default via 10.0.2.2"), "{out}");
    let out = shell(&mut guest, "nslookup localhost", COMMAND);
    assert!(out.contains("127.0.0.1"), "nslookup localhost:\n{out}");
    let out = shell(&mut guest, "ping -c 2 10.0.2.2", COMMAND);
    assert!(
        out.contains("2 packets received"),
        "ping the gateway:\n{out}"
    );
    let fetch = std::time::Instant::now();
    let out = shell(
        &mut guest,
        &format!("wget -q -O - http://10.0.2.2:{port}/file | sha256sum"),
        WORK,
    );
    assert_eq!(sha256_in(&out), expected, "wget through the NAT");
    println!("user network: wget of 4 MiB in {:?}", fetch.elapsed());
    // The guest serves, the host fetches through hostfwd.
    shell(
        &mut guest,
        "mkdir -p /tmp/www && echo served-by-the-guest-$((6*7)) > /tmp/www/index.html && httpd -p 80 -h /tmp/www",
        COMMAND,
    );
    let mut page = String::new();
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", forwarded)).unwrap();
        stream.set_read_timeout(Some(COMMAND)).unwrap();
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
            .unwrap();
        stream.read_to_string(&mut page).unwrap();
    }
    assert!(page.contains("served-by-the-guest-42"), "hostfwd:\n{page}");
    power_off(guest);

    let text = read_capture(&capture);
    assert!(
        text.contains("BOOTP/DHCP, Request") && text.contains("BOOTP/DHCP, Reply"),
        "the capture lacks the DHCP exchange:\n{}",
        text.lines().take(20).collect::<Vec<_>>().join("\n")
    );
}

/// Bad netdev options end Turing before the guest runs, with one line.
#[test]
fn bad_netdevs_are_one_line_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--netdev",
                "bogus,id=n0",
                "--device",
                "virtio-net-device,netdev=n0",
            ],
            "netdev n0: unknown kind 'bogus'",
        ),
        (&["--netdev", "stream,id=n0"], "netdev n0"),
        (
            &["--device", "virtio-net-device,netdev=n9"],
            "no --netdev with id=n9",
        ),
        (
            &[
                "--netdev",
                "dgram,id=n0,remote.type=inet,remote.host=127.0.0.1,remote.port=9",
            ],
            "netdev n0 has no NIC",
        ),
        (
            &[
                "--netdev",
                "stream,id=n0,addr.type=inet,addr.host=127.0.0.1,addr.port=1",
                "--device",
                "virtio-net-pci,netdev=n0",
            ],
            "netdev n0: cannot connect to 127.0.0.1:1",
        ),
        (
            &[
                "--netdev",
                "stream,id=n0,addr.type=unix,addr.path=/nonexistent/s",
                "--device",
                "virtio-net-pci,netdev=n0,mac=01:00:00:00:00:01",
            ],
            "multicast",
        ),
    ];
    for (args, expected) in cases {
        let out = tests::turing_command()
            .arg("run")
            .args(*args)
            .output()
            .expect("run turing");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected '{expected}' in:\n{stderr}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line:\n{stderr}"
        );
    }
}
