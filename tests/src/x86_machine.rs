//! A minimal x86 test machine, until the PC exists: RAM below 640 KiB and
//! from 1 MiB, a 64 KiB BIOS ROM at 0xF0000 aliased at 0xFFFF_0000 (so the
//! reset vector F000:FFF0 reaches it), COM1 at 0x3F8, a POST-code port at
//! 0x80, and QEMU's `isa-debug-exit` at 0xF4. The same ROM image runs on
//! `qemu-system-x86_64 -bios` with `-device isa-debug-exit,iobase=0xf4,iosize=4`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpu_x86::{Cpu, CpuModel};
use devices::{IsaDebugExit, PortWindow, PostPort, Uart16550};
use emu_core::cpu::{MachineParts, RunEnd, RunLimits, run_interleaved};
use emu_core::{Bus, GuestPhysAddr, GuestRam, PioPort, RunControl, StopReason, VirtualClock};

/// Size of the BIOS ROM.
pub const ROM_SIZE: usize = 0x1_0000;
/// RAM above 1 MiB ends here.
pub const RAM_END: u64 = 32 << 20;

/// How a run on the test machine ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X86Outcome {
    /// The isa-debug-exit status, `(value << 1) | 1`, if the guest wrote one.
    pub exit: Option<i32>,
    /// The last POST code.
    pub post: u32,
    /// What the guest wrote to COM1.
    pub serial: String,
    /// Why the run ended otherwise: a triple fault, a halt with interrupts
    /// off, the instruction limit.
    pub stopped: Option<String>,
    /// The last exception the CPU took (vector, error code, where), for
    /// diagnosis.
    pub last_exception: Option<(u8, Option<u32>, u64)>,
}

/// Collects serial output.
struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("serial buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The test machine: one CPU, its bus and devices.
pub struct X86TestMachine {
    /// The CPU.
    pub cpu: Cpu,
    /// Its bus.
    pub bus: Arc<Bus>,
    /// Stop requests (isa-debug-exit's power-off).
    pub control: Arc<RunControl>,
    /// Virtual time for the devices.
    pub clock: VirtualClock,
    serial: Arc<Mutex<Vec<u8>>>,
    post: Arc<AtomicU32>,
}

impl std::fmt::Debug for X86TestMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X86TestMachine")
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

impl X86TestMachine {
    /// The machine with the BIOS image `rom` (64 KiB) and a CPU of `model`,
    /// at reset.
    pub fn new(rom: &[u8], model: CpuModel) -> X86TestMachine {
        assert_eq!(rom.len(), ROM_SIZE, "a test BIOS is 64 KiB");
        let backing = Arc::new(GuestRam::new(RAM_END + 2 * ROM_SIZE as u64).expect("guest RAM"));
        let control = Arc::new(RunControl::new());
        let mut bus = Bus::with_backing(backing, control.clone());
        bus.map_ram("low ram", GuestPhysAddr(0), 0, 0xa_0000)
            .expect("map low RAM");
        bus.map_ram(
            "ram",
            GuestPhysAddr(0x10_0000),
            0x10_0000,
            RAM_END - 0x10_0000,
        )
        .expect("map RAM");
        bus.map_rom("bios", GuestPhysAddr(0xf_0000), RAM_END, rom)
            .expect("map the BIOS");
        bus.map_rom(
            "bios (high alias)",
            GuestPhysAddr(0xffff_0000),
            RAM_END + ROM_SIZE as u64,
            rom,
        )
        .expect("map the BIOS alias");
        let serial = Arc::new(Mutex::new(Vec::new()));
        let uart = Uart16550::new(Box::new(SharedOutput(serial.clone())), None);
        bus.map_pio("com1", PioPort(0x3f8), 8, Box::new(PortWindow(uart)))
            .expect("map COM1");
        let post = Arc::new(AtomicU32::new(0));
        bus.map_pio(
            "post",
            PioPort(0x80),
            1,
            Box::new(PostPort::new(post.clone())),
        )
        .expect("map the POST port");
        bus.map_pio(
            "isa-debug-exit",
            PioPort(0xf4),
            4,
            Box::new(IsaDebugExit::new(control.clone())),
        )
        .expect("map isa-debug-exit");
        let bus = Arc::new(bus);
        X86TestMachine {
            cpu: Cpu::new(model, bus.clone()),
            bus,
            control,
            clock: VirtualClock::host(1_000_000_000),
            serial,
            post,
        }
    }

    /// What the guest wrote to COM1 so far.
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&self.serial.lock().map(|s| s.clone()).unwrap_or_default())
            .into_owned()
    }

    /// The last POST code.
    pub fn post(&self) -> u32 {
        self.post.load(Ordering::Relaxed)
    }

    /// Runs the machine's own loop, as a real machine's: the CPU as a
    /// `Vcpu`, devices ticked between slices, until the guest stops it or
    /// `limits` pass.
    pub fn run_limited(&mut self, limits: RunLimits) -> RunEnd<()> {
        let parts = MachineParts {
            bus: &self.bus,
            clock: &self.clock,
            control: &self.control,
        };
        run_interleaved(
            std::slice::from_mut(&mut self.cpu),
            parts,
            limits,
            &mut || None::<()>,
        )
    }

    /// How a run that ended with `end` went.
    pub fn outcome(&self, end: RunEnd<()>) -> X86Outcome {
        let cpu = &self.cpu;
        let (exit, stopped) = match end {
            RunEnd::Stop(StopReason::PowerOff(code)) => (Some(code), None),
            RunEnd::Stop(StopReason::Reset) => (None, Some("reset (a triple fault)".to_owned())),
            other => (
                None,
                Some(format!(
                    "{other:?} after {} instructions, at {:#x}",
                    cpu.executed(),
                    cpu.state.rip
                )),
            ),
        };
        X86Outcome {
            exit,
            post: self.post(),
            serial: self.serial(),
            stopped,
            last_exception: cpu.last_exception().map(|(f, at)| (f.vector, f.error, at)),
        }
    }
}

/// Runs the BIOS image `rom` (64 KiB) on the test machine with a CPU of
/// `model`, for at most `limit` instructions.
pub fn run_x86_rom(rom: &[u8], model: CpuModel, limit: u64) -> X86Outcome {
    let mut machine = X86TestMachine::new(rom, model);
    // A CPU halted with interrupts off never wakes, so the wall-clock limit
    // ends such a run.
    let limits = RunLimits {
        wall: Some(Duration::from_secs(30)),
        executed: Some(limit),
    };
    let end = machine.run_limited(limits);
    machine.outcome(end)
}

/// Assembles `tests/guest/x86/<name>.asm` into a 64 KiB ROM image with nasm.
pub fn build_x86_rom(name: &str) -> PathBuf {
    crate::require_tool("nasm");
    let source_dir = crate::repo_root().join("tests/guest/x86");
    let source = source_dir.join(format!("{name}.asm"));
    let out = crate::build_dir("x86").join(format!("{name}.bin"));
    let status = Command::new("nasm")
        .args(["-f", "bin", "-w+all", "-I"])
        .arg(format!("{}/", source_dir.display()))
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .status()
        .expect("run nasm");
    assert!(status.success(), "nasm failed on {}", source.display());
    out
}

/// Runs a test BIOS on QEMU's PC (`qemu-system-x86_64`) with isa-debug-exit;
/// returns QEMU's exit status.
pub fn run_x86_rom_on_qemu(rom: &Path, timeout: Duration) -> i32 {
    crate::require_tool("qemu-system-x86_64");
    let status = Command::new("timeout")
        .arg(timeout.as_secs().max(1).to_string())
        .args([
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-m",
            "32M",
            "-display",
            "none",
            "-serial",
            "null",
            "-monitor",
            "none",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-bios",
        ])
        .arg(rom)
        .status()
        .expect("run qemu");
    status.code().unwrap_or(-1)
}
