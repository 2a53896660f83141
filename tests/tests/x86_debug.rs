//! Debugging x86 guests: the x86 CPU's target descriptions as Debian's
//! gdb-multiarch reads them, breakpoints and watchpoints on the test machine
//! (`tests/guest/x86/gdb.asm` in long mode), the guest's own debug registers
//! and single steps under a debugger (`debug.asm`), and gdb-multiarch driving
//! the frontend's gdb server over the test machine in batch mode.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use cpu_x86::{Cpu, CpuModel};
use emu_core::debug::{DebugCpu, DebugStop, WatchKind};
use frontend::gdb::SessionEnd;
use frontend::machines::{DebugEvent, Machine};
use tests::x86_debug::{DebuggableX86, serve_gdb};
use tests::x86_machine::{X86TestMachine, build_x86_rom, run_x86_rom};
use tests::{build_dir, require_tool};

/// isa-debug-exit's status for a written 0.
const PASS: i32 = 1;
/// `work` in gdb.asm: ROM + 0x4000.
const WORK: u64 = 0xf_4000;
/// Its instructions after `mov [COUNTER], rcx`, `movsq` and `push rcx`.
const AFTER_STORE: u64 = WORK + 8;
const AFTER_MOVSQ: u64 = WORK + 0x14;
const AFTER_PUSH: u64 = WORK + 0x15;
const COUNTER: u64 = 0x600;
const COPY: u64 = 0x608;
/// gdb.asm's stack top (KSTACK): the CALL's return address goes below it,
/// PUSH RCX below that.
const KSTACK: u64 = 0x8000;

fn machine(rom: &str) -> DebuggableX86 {
    let rom = std::fs::read(build_x86_rom(rom)).expect("read the ROM image");
    DebuggableX86::new(X86TestMachine::new(&rom, CpuModel::MAX))
}

/// Runs debugger slices until something to report.
fn next_event(m: &mut DebuggableX86) -> DebugEvent {
    for _ in 0..100_000 {
        match m.debug_slice(None).expect("a slice") {
            DebugEvent::Ran => {}
            event => return event,
        }
    }
    panic!("no stop, at {:#x}", m.machine.cpu.state.rip);
}

fn cpu(m: &mut DebuggableX86) -> &mut Cpu {
    &mut m.machine.cpu
}

#[test]
fn the_debuggee_passes_on_its_own() {
    let rom = std::fs::read(build_x86_rom("gdb")).expect("read the ROM image");
    let outcome = run_x86_rom(&rom, CpuModel::MAX, 1_000_000);
    assert_eq!(outcome.exit, Some(PASS), "{outcome:?}");
}

#[test]
fn breakpoints_stop_before_and_watchpoints_after_each_kind_of_access() {
    let mut m = machine("gdb");
    DebugCpu::insert_breakpoint(cpu(&mut m), WORK);
    for lap in 0..2 {
        let event = next_event(&mut m);
        assert_eq!(
            event,
            DebugEvent::Stopped {
                cpu: 0,
                stop: DebugStop::Breakpoint(WORK)
            }
        );
        assert_eq!(cpu(&mut m).state.rip, WORK);
        assert_eq!(cpu(&mut m).state.gpr[1], lap, "RCX on lap {lap}");
        cpu(&mut m).resume_from_breakpoint();
    }
    assert!(DebugCpu::remove_breakpoint(cpu(&mut m), WORK));
    assert!(!DebugCpu::remove_breakpoint(cpu(&mut m), WORK));
    // Nothing stops the third lap.
    assert_eq!(next_event(&mut m), DebugEvent::PoweredOff(PASS));
    // Watchpoints: MOVSQ reads COUNTER and writes COPY; PUSH writes the stack
    // and POP reads it. Each stop is after the instruction.
    let mut m = machine("gdb");
    let watches = [
        (COPY, WatchKind::Write, AFTER_MOVSQ, WatchKind::Write),
        (COUNTER, WatchKind::Read, AFTER_MOVSQ, WatchKind::Read),
        (KSTACK - 16, WatchKind::Write, AFTER_PUSH, WatchKind::Write),
        (
            KSTACK - 16,
            WatchKind::Read,
            AFTER_PUSH + 1,
            WatchKind::Read,
        ),
        (COUNTER, WatchKind::Access, AFTER_STORE, WatchKind::Write),
    ];
    DebugCpu::insert_breakpoint(cpu(&mut m), WORK);
    assert!(matches!(next_event(&mut m), DebugEvent::Stopped { .. }));
    assert!(DebugCpu::remove_breakpoint(cpu(&mut m), WORK));
    for (addr, kind, rip, reported) in watches {
        DebugCpu::insert_watchpoint(cpu(&mut m), addr, 8, kind);
        cpu(&mut m).resume_from_breakpoint();
        let event = next_event(&mut m);
        assert_eq!(
            event,
            DebugEvent::Stopped {
                cpu: 0,
                stop: DebugStop::Watchpoint {
                    kind: reported,
                    addr
                }
            },
            "{kind:?} watchpoint at {addr:#x}"
        );
        assert_eq!(cpu(&mut m).state.rip, rip, "{kind:?} at {addr:#x}");
        assert!(DebugCpu::remove_watchpoint(cpu(&mut m), addr, 8, kind));
    }
    // Single steps go one instruction each, from the store of the second lap.
    assert_eq!(cpu(&mut m).state.rip, AFTER_STORE);
    assert_eq!(m.debug_slice(Some(0)).unwrap(), DebugEvent::Stepped(0));
    assert_eq!(cpu(&mut m).state.rip, WORK + 0xd);
    DebugCpu::clear_debug(cpu(&mut m));
    assert_eq!(next_event(&mut m), DebugEvent::PoweredOff(PASS));
}

#[test]
fn the_guests_own_debug_registers_and_single_steps_work_under_a_debugger() {
    // debug.asm checks its TF traps, DR0 instruction breakpoint and DR1 data
    // breakpoint itself. Meanwhile the debugger breaks on the reset vector
    // and on the ROM's first real-mode instruction (linear addresses: CS base
    // 0xFFFF0000 and 0xF0000) and watches the handler's counter and DR1's
    // word.
    const STEPS: u64 = 0x600;
    const WATCHED: u64 = 0x608;
    let mut m = machine("debug");
    let cpu = cpu(&mut m);
    DebugCpu::insert_breakpoint(cpu, 0xffff_fff0);
    DebugCpu::insert_breakpoint(cpu, 0xf_0000);
    DebugCpu::insert_watchpoint(cpu, STEPS, 4, WatchKind::Write);
    DebugCpu::insert_watchpoint(cpu, WATCHED, 4, WatchKind::Access);
    let mut breakpoints = Vec::new();
    let mut watched = Vec::new();
    let code = loop {
        match next_event(&mut m) {
            DebugEvent::Stopped { stop, .. } => match stop {
                DebugStop::Breakpoint(pc) => breakpoints.push(pc),
                DebugStop::Watchpoint { addr, kind } => watched.push((addr, kind)),
            },
            DebugEvent::PoweredOff(code) => break code,
            other => panic!("{other:?}"),
        }
        m.machine.cpu.resume_from_breakpoint();
    };
    assert_eq!(code, PASS, "the guest's own checks: {:?}", m.machine.post());
    assert_eq!(breakpoints, [0xffff_fff0, 0xf_0000]);
    // Three resets of the counter, six single-step traps, one instruction
    // breakpoint and one data breakpoint counted by the handler.
    let steps = watched.iter().filter(|(a, _)| *a == STEPS).count();
    assert!(steps >= 11, "{watched:?}");
    assert!(
        watched.contains(&(WATCHED, WatchKind::Read)),
        "the guest's read of DR1's word: {watched:?}"
    );
    assert!(
        watched.contains(&(WATCHED, WatchKind::Write)),
        "{watched:?}"
    );
}

/// Parses `maint print remote-registers`: name -> (size, remote number,
/// g packet offset).
fn gdb_remote_registers(xml_path: &std::path::Path) -> Vec<(String, usize, usize, usize)> {
    require_tool("gdb-multiarch");
    let out = Command::new("gdb-multiarch")
        .args(["-batch", "-nx", "-ex"])
        .arg(format!("set tdesc filename {}", xml_path.display()))
        .args(["-ex", "maint print remote-registers"])
        .output()
        .expect("run gdb");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("internal-error"), "{text}");
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Name Nr Rel Offset Size Type RmtNr g/G-offset
            if f.len() != 8 || f[0] == "Name" {
                return None;
            }
            Some((
                f[0].to_owned(),
                f[4].parse().ok()?,
                f[6].parse().ok()?,
                f[7].parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn gdb_reads_the_target_descriptions_as_the_packets_are_laid_out() {
    for model in [CpuModel::MAX, CpuModel::I286] {
        let rom = vec![0xf4; tests::x86_machine::ROM_SIZE];
        let mut m = X86TestMachine::new(&rom, model);
        let xml = DebugCpu::target_xml(&m.cpu);
        let path = build_dir("x86").join(format!("tdesc-{}.xml", model.name));
        std::fs::write(&path, xml).expect("write the description");
        let gdb = gdb_remote_registers(&path);
        let packet = m.cpu.read_registers();
        let described = xml.matches("<reg ").count();
        assert_eq!(gdb.len(), described, "gdb sees every register: {gdb:?}");
        let mut offset = 0;
        for (number, (name, size, remote, at)) in gdb.iter().enumerate() {
            assert_eq!((*remote, *at), (number, offset), "{name} on {}", model.name);
            let ours = m.cpu.read_register(number).expect("a register");
            assert_eq!(ours.len(), *size, "{name}");
            assert_eq!(&packet[offset..offset + size], &ours[..], "{name}");
            offset += size;
        }
        assert_eq!(offset, packet.len());
    }
}

/// Runs gdb-multiarch in batch mode against the frontend's gdb server serving
/// the test machine with `rom`; returns gdb's output and how the session
/// ended.
fn gdb_session(rom: &str, commands: &[&str]) -> (String, Result<SessionEnd, String>) {
    require_tool("gdb-multiarch");
    let rom = std::fs::read(build_x86_rom(rom)).expect("read the ROM image");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    let server = serve_gdb(X86TestMachine::new(&rom, CpuModel::MAX), listener);
    let mut command = Command::new("timeout");
    command.args(["60", "gdb-multiarch", "-batch", "-nx"]);
    command.args(["-ex", "set architecture i386:x86-64"]);
    command.args(["-ex", &format!("target remote 127.0.0.1:{port}")]);
    for c in commands {
        command.args(["-ex", c]);
    }
    let out = command.output().expect("run gdb");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // A gdb that never connected leaves the server waiting for a client:
    // knock once so it gives up, and never wait forever.
    let started = Instant::now();
    let mut knocked = false;
    while !server.is_finished() {
        let waited = started.elapsed();
        if waited > Duration::from_secs(5) && !knocked {
            let _ = TcpStream::connect(("127.0.0.1", port));
            knocked = true;
        }
        assert!(
            waited < Duration::from_secs(30),
            "the gdb server did not end; gdb said:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let end = server.join().expect("the server thread");
    (text, end)
}

#[test]
fn gdb_multiarch_breaks_steps_and_watches_in_long_mode() {
    let (out, end) = gdb_session(
        "gdb",
        &[
            // At reset: real mode, F000:FFF0, the x87 tagged all zero.
            "p/x $rip",
            "p/x $cs",
            "p/x $ftag",
            "break *0xf4000",
            "continue",
            "p/x $rip",
            "p $rcx",
            "stepi",
            "p/x $rip",
            "delete",
            "watch *(long *)0x600",
            "continue",
            "p/x $rip",
            "p $rcx",
            "delete",
            "awatch *(long *)0x608",
            "continue",
            "p/x $rip",
            "delete",
            "info registers",
            "info registers cr3 k_gs_base st0 fstat mxcsr xmm0",
            "p/x $cs",
            "p/x $cr0",
            "p/x $efer",
            "monitor info mmu 0xf4000",
            "monitor info registers",
            "set var $rdx = 0x1234",
            "p/x $rdx",
            "continue",
        ],
    );
    let expect = |needle: &str| assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    expect("$1 = 0xfff0");
    expect("$2 = 0xf000");
    expect("$3 = 0x5555");
    expect("Breakpoint 1, 0x00000000000f4000 in ?? ()");
    expect("$4 = 0xf4000");
    expect("$5 = 0");
    expect("$6 = 0xf4008");
    expect("Hardware watchpoint 2: *(long *)0x600");
    expect("Old value = 0\nNew value = 1");
    expect("$7 = 0xf4008");
    expect("$8 = 1");
    expect("Hardware access (read/write) watchpoint 3: *(long *)0x608");
    expect("$9 = 0xf4014");
    // MOVSQ moved both pointers on.
    expect("rsi            0x608");
    expect("rdi            0x610");
    expect("rip            0xf4014");
    expect("eflags         0x");
    expect("cr3            0x10000");
    expect("st0            0                   (raw 0x00000000000000000000)");
    expect("mxcsr          0x1f80              [ IM DM ZM OM UM PM ]");
    expect("$10 = 0x30");
    expect("$11 = 0xe0000011");
    expect("$12 = 0x500");
    expect("4-level paging, cr3 0x10000");
    expect("0xf4000 -> 0xf4000");
    expect("long mode, CPL 0");
    expect("$13 = 0x1234");
    expect("exited with code 01");
    assert!(matches!(end, Ok(SessionEnd::Finished(_))), "{end:?}\n{out}");
}
