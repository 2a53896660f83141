//! Debian's gdb-multiarch drives Turing's gdbstub in batch mode: breakpoints by
//! function name, arguments, exact steps, a watchpoint, memory writes, threads,
//! a Linux kernel address, and a client that sends garbage and disappears. Each
//! debugging test runs under the interpreter and under the JIT (compiling every
//! block on first entry, so breakpoints and steps land inside translated code).

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tests::images::debian_images;
use tests::{CROSS_GCC, build_dir, repo_root, require_tool, turing_command};

const ENGINES: [&str; 2] = ["interp", "jit"];

/// The debuggee (tests/guest/gdb/debuggee.c) built with symbols, once per
/// test process: the tests run at once, and one rebuilding the file while
/// another's gdb reads it made gdb find no executable.
fn debuggee() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_debuggee).clone()
}

fn build_debuggee() -> PathBuf {
    require_tool(CROSS_GCC);
    let root = repo_root();
    let out = build_dir("gdb").join("debuggee.elf");
    let status = Command::new(CROSS_GCC)
        .args([
            "-g",
            "-O1",
            "-march=rv64gc_zicsr",
            "-mabi=lp64d",
            "-mcmodel=medany",
        ])
        .args(["-ffreestanding", "-nostdlib", "-static"])
        .args(["-Wl,--no-warn-rwx-segments", "-Wl,--build-id=none", "-T"])
        .arg(root.join("tests/guest/common/link.ld"))
        .arg(root.join("benches/guest/start.S"))
        .arg(root.join("tests/guest/gdb/debuggee.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run the cross compiler");
    assert!(status.success(), "building the debuggee failed");
    out
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts Turing waiting for gdb (`-S`) on a fresh port.
fn start_turing(args: &[&str], serial: &Path) -> (Child, u16) {
    let port = free_port();
    let _ = std::fs::remove_file(serial);
    let child = turing_command()
        .arg("run")
        .args(args)
        .args(["--timeout", "120", "--jit-threshold", "1", "-S", "--gdb"])
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg("--serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start turing");
    // It says when it listens (a probe connection would be taken as the client).
    let mut child = child;
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("waiting for gdb"), "turing said: {first}");
    // Keep draining stderr so turing never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

/// Runs gdb-multiarch in batch mode against the stub on `port`.
fn gdb(port: u16, program: Option<&Path>, commands: &[&str]) -> String {
    require_tool("gdb-multiarch");
    let mut command = Command::new("timeout");
    command.args(["60", "gdb-multiarch", "-batch", "-nx"]);
    command.args(["-ex", "set architecture riscv:rv64"]);
    command.args(["-ex", &format!("target remote 127.0.0.1:{port}")]);
    for c in commands {
        command.args(["-ex", c]);
    }
    command.args(program);
    let Output { stdout, stderr, .. } = command.output().expect("run gdb");
    format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    )
}

fn finish(mut child: Child) -> i32 {
    let status = child.wait().expect("turing exits");
    status.code().unwrap_or(-1)
}

#[test]
fn break_on_a_function_and_read_its_arguments() {
    let program = debuggee();
    for engine in ENGINES {
        let serial = build_dir("gdb").join(format!("args-{engine}.log"));
        let (child, port) = start_turing(
            &[
                "--bios",
                "none",
                "--accel",
                engine,
                "--kernel",
                program.to_str().unwrap(),
            ],
            &serial,
        );
        let out = gdb(
            port,
            Some(&program),
            &[
                "break add",
                "continue",
                "info registers a0 a1",
                "p $priv",
                "continue",
            ],
        );
        assert!(
            out.contains("Breakpoint 1, add (a=a@entry=40, b=b@entry=2)"),
            "{engine}: {out}"
        );
        assert!(out.contains("a0             0x28"), "{engine}: {out}");
        assert!(out.contains("a1             0x2"), "{engine}: {out}");
        assert!(out.contains("$1 = 3"), "{engine}: privilege: {out}");
        assert!(out.contains("exited normally"), "{engine}: {out}");
        assert_eq!(finish(child), 0, "{engine}");
    }
}

/// The pcs of ten single steps from `main`.
fn ten_steps(engine: &str, program: &Path) -> Vec<String> {
    let serial = build_dir("gdb").join(format!("steps-{engine}.log"));
    let (child, port) = start_turing(
        &[
            "--bios",
            "none",
            "--accel",
            engine,
            "--kernel",
            program.to_str().unwrap(),
        ],
        &serial,
    );
    let mut commands = vec!["break main", "continue"];
    for _ in 0..10 {
        commands.extend(["stepi", "p/x $pc"]);
    }
    commands.push("kill");
    let out = gdb(port, Some(program), &commands);
    let _ = finish(child);
    out.lines()
        .filter_map(|l| l.split_once(" = 0x").map(|(_, pc)| pc.trim().to_owned()))
        .collect()
}

#[test]
fn ten_single_steps_follow_the_same_pcs_on_both_engines() {
    let program = debuggee();
    let interp = ten_steps("interp", &program);
    let jit = ten_steps("jit", &program);
    assert_eq!(interp.len(), 10, "{interp:?}");
    assert_eq!(interp, jit);
    // The steps go through add(): its entry is among them.
    let nm = Command::new("riscv64-unknown-elf-nm")
        .arg(&program)
        .output()
        .expect("run nm");
    let symbols = String::from_utf8_lossy(&nm.stdout);
    let add = symbols
        .lines()
        .find(|l| l.ends_with(" add"))
        .and_then(|l| l.split_whitespace().next())
        .map(|a| a.trim_start_matches('0').to_owned())
        .expect("add in the symbol table");
    assert!(interp.contains(&add), "add at {add} not in {interp:?}");
}

#[test]
fn a_watchpoint_stops_on_the_store_and_memory_writes_change_the_output() {
    let program = debuggee();
    for engine in ENGINES {
        let serial = build_dir("gdb").join(format!("watch-{engine}.log"));
        let (child, port) = start_turing(
            &[
                "--bios",
                "none",
                "--accel",
                engine,
                "--kernel",
                program.to_str().unwrap(),
            ],
            &serial,
        );
        let out = gdb(
            port,
            Some(&program),
            &[
                "watch counter",
                "continue",
                "delete",
                "set var greeting[0] = 'J'",
                "continue",
            ],
        );
        assert!(out.contains("Old value = 0"), "{engine}: {out}");
        assert!(out.contains("New value = 1"), "{engine}: {out}");
        assert!(
            out.contains("in bump ()"),
            "{engine}: stopped outside bump: {out}"
        );
        assert_eq!(finish(child), 0, "{engine}");
        let log = std::fs::read_to_string(&serial).expect("serial log");
        assert!(log.contains("Jello"), "{engine}: {log}");
    }
}

#[test]
fn each_hart_is_a_thread_and_monitor_commands_answer() {
    let program = debuggee();
    let serial = build_dir("gdb").join("threads.log");
    let (child, port) = start_turing(
        &[
            "--bios",
            "none",
            "--smp",
            "2",
            "--kernel",
            program.to_str().unwrap(),
        ],
        &serial,
    );
    let out = gdb(
        port,
        Some(&program),
        &[
            "info threads",
            "monitor help",
            "monitor info mmu 0x80000000",
            "monitor phys read 0x80000000 8",
            "monitor stats",
            "monitor nonsense",
            "kill",
        ],
    );
    assert!(out.contains("Thread 1.1"), "{out}");
    assert!(out.contains("Thread 1.2"), "{out}");
    assert!(out.contains("info mmu VA"), "{out}");
    assert!(out.contains("0x80000000 -> 0x80000000"), "{out}");
    assert!(out.contains("0x80000000: "), "{out}");
    assert!(out.contains("instructions retired"), "{out}");
    assert!(out.contains("unknown monitor command"), "{out}");
    let _ = finish(child);
}

#[test]
fn a_breakpoint_in_the_linux_kernel_stops_there() {
    let images = debian_images();
    let serial = build_dir("gdb").join("linux.log");
    let (child, port) = start_turing(
        &[
            "--memory",
            "512M",
            "--bios",
            images.opensbi.to_str().unwrap(),
            "--kernel",
            images.kernel.to_str().unwrap(),
            "--initrd",
            images.initramfs.to_str().unwrap(),
        ],
        &serial,
    );
    // With OpenSBI, the kernel starts at 0x80200000 in S-mode.
    let out = gdb(
        port,
        None,
        &[
            "break *0x80200000",
            "continue",
            "p/x $pc",
            "p $priv",
            "kill",
        ],
    );
    assert!(out.contains("$1 = 0x80200000"), "{out}");
    assert!(out.contains("$2 = 1"), "not in S-mode: {out}");
    let _ = finish(child);
}

#[test]
fn garbage_and_a_vanishing_client_do_not_stop_the_guest() {
    let program = debuggee();
    let serial = build_dir("gdb").join("garbage.log");
    let (child, port) = start_turing(
        &["--bios", "none", "--kernel", program.to_str().unwrap()],
        &serial,
    );
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    // A bad checksum, an unknown query, a malformed breakpoint, raw junk.
    for packet in [
        &b"$g#00"[..],
        b"$qTuringNoSuchQuery#00",
        b"$Z0,zzzz#00",
        b"\x00\xff garbage $$$ ###",
        b"$m80000000,4#00",
    ] {
        let _ = socket.write_all(packet);
    }
    let mut reply = [0u8; 256];
    let _ = socket.read(&mut reply);
    drop(socket);
    // The guest goes on to its normal end, as after a detach.
    assert_eq!(finish(child), 0);
    let log = std::fs::read_to_string(&serial).expect("serial log");
    assert!(log.contains("hello"), "{log}");
}

#[test]
fn ctrl_c_interrupts_a_running_guest() {
    // A guest that spins forever: j .
    let spin = build_dir("gdb").join("spin.bin");
    std::fs::write(&spin, [0x6f, 0, 0, 0]).expect("write program");
    let serial = build_dir("gdb").join("spin.log");
    let (mut child, port) = start_turing(
        &["--bios", "none", "--kernel", spin.to_str().unwrap()],
        &serial,
    );
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Continue (with a correct checksum), let it run, then Ctrl-C (0x03).
    socket.write_all(b"$c#63").expect("send continue");
    std::thread::sleep(Duration::from_millis(300));
    socket.write_all(&[0x03]).expect("send interrupt");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("T02") {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let reply = String::from_utf8_lossy(&seen).into_owned();
    assert!(reply.contains("T02"), "no SIGINT stop reply: {reply}");
    let _ = socket.write_all(b"$k#6b");
    drop(socket);
    let _ = child.kill();
    let _ = child.wait();
}
