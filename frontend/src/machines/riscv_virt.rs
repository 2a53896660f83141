//! `riscv-virt`: a RISC-V machine with the memory map of QEMU's `virt` board, so
//! the same binaries run on both.
//!
//! | region | base |
//! |---|---|
//! | reset-vector ROM | 0x1000 |
//! | SiFive test (finisher) | 0x10_0000 |
//! | CLINT | 0x200_0000 |
//! | PLIC | 0xc00_0000 |
//! | ns16550a UART | 0x1000_0000 |
//! | RAM | 0x8000_0000 |
//!
//! Harts are interleaved on the calling thread, each running a slice of
//! instructions in turn. One thread keeps the device models free of locking
//! concerns and makes runs repeatable; host threads per hart come with the JIT.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_riscv::{Hart, RunExit, TraceEntry};
use devices::clint::{Clint, ClintHart};
use devices::{Plic, SifiveTest, Uart16550, clint, plic, sifive_test, uart16550};
use emu_core::config::{BiosChoice, MachineConfig};
use emu_core::{Bus, GuestRam, RunControl, StopReason, VirtualClock};
use firmware::fdt::{FdtDevice, RiscvVirtFdt};
use firmware::loader::{self, ProgramImage};

use super::{MachineError, RunOutcome};
use crate::console::Console;

/// Start of RAM.
pub const RAM_BASE: u64 = 0x8000_0000;
/// The mask ROM holding the reset vector, where harts start (as on QEMU).
pub const MROM_BASE: u64 = 0x1000;
/// Size of the mask ROM window.
pub const MROM_SIZE: u64 = 0xf000;
/// The finisher.
pub const TEST_BASE: u64 = 0x10_0000;
/// The CLINT.
pub const CLINT_BASE: u64 = 0x200_0000;
/// The PLIC.
pub const PLIC_BASE: u64 = 0xc00_0000;
/// The UART's PLIC source number.
pub const UART_IRQ: usize = 10;
/// The UART.
pub const UART_BASE: u64 = 0x1000_0000;
/// mtime frequency, as QEMU's.
pub const TIMEBASE_HZ: u64 = 10_000_000;
/// Where a kernel goes when firmware occupies the start of RAM.
const KERNEL_OFFSET_WITH_BIOS: u64 = 0x20_0000;
/// Instructions a hart runs before the machine looks at devices and time.
const SLICE: u64 = 1 << 16;
/// Longest idle sleep, so host input and stop requests are seen promptly.
const MAX_IDLE: Duration = Duration::from_millis(5);

/// The images a riscv-virt machine boots.
#[derive(Clone, Debug)]
struct BootImages {
    images: Vec<ProgramImage>,
    fdt: Vec<u8>,
    fdt_addr: u64,
}

/// A built riscv-virt machine.
pub struct RiscvVirt {
    harts: Vec<Hart>,
    bus: Arc<Bus>,
    clock: Arc<VirtualClock>,
    control: Arc<RunControl>,
    boot: BootImages,
}

impl std::fmt::Debug for RiscvVirt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiscvVirt")
            .field("harts", &self.harts)
            .finish_non_exhaustive()
    }
}

impl RiscvVirt {
    /// Builds the machine described by `config` with its console on `console`.
    /// `demo` is the program to boot when the config names no kernel.
    pub fn build(
        config: &MachineConfig,
        console: Console,
        control: Arc<RunControl>,
        demo: &[u8],
    ) -> Result<RiscvVirt, MachineError> {
        let ram = Arc::new(GuestRam::new(config.memory)?);
        let clock = Arc::new(VirtualClock::host(TIMEBASE_HZ));
        let mut bus = Bus::new(RAM_BASE, ram, control.clone())?;

        let mut images = Vec::new();
        let mut kernel_base = RAM_BASE;
        if let BiosChoice::File(path) = &config.bios {
            let bios = loader::load_program(path, RAM_BASE)?;
            bios.check_fits(path, RAM_BASE, config.memory)?;
            images.push(bios);
            kernel_base = RAM_BASE + KERNEL_OFFSET_WITH_BIOS;
        }
        let kernel = match &config.kernel {
            Some(path) => {
                let image = loader::load_program(path, kernel_base)?;
                image.check_fits(path, RAM_BASE, config.memory)?;
                image
            }
            None => loader::parse_program(Path::new("built-in demo"), demo, kernel_base)?,
        };
        let entry = images.first().map_or(kernel.entry, |bios| bios.entry);
        images.push(kernel);

        let fdt = RiscvVirtFdt {
            harts: config.smp,
            ram: (RAM_BASE, config.memory),
            timebase_hz: TIMEBASE_HZ as u32,
            bootargs: String::new(),
            console: Some(UART_BASE),
            clint: (CLINT_BASE, clint::SIZE),
            finisher: Some((TEST_BASE, sifive_test::SIZE)),
            devices: vec![FdtDevice {
                name: "serial",
                compatible: &["ns16550a"],
                base: UART_BASE,
                size: uart16550::SIZE,
                u32_props: vec![("clock-frequency", 3_686_400)],
            }],
        }
        .build()?;
        // The device tree goes at the top of RAM, above everything loaded.
        let ram_end = RAM_BASE + config.memory;
        let fdt_addr = (ram_end - fdt.len() as u64) & !0xfff;
        let loaded_end = images
            .iter()
            .map(ProgramImage::end)
            .max()
            .unwrap_or(RAM_BASE);
        if fdt_addr < loaded_end {
            return Err(MachineError::Setup(format!(
                "guest RAM ({} bytes) is too small for the program and its device tree (raise --memory)",
                config.memory
            )));
        }

        bus.map_rom("mrom", MROM_BASE, reset_vector(entry, fdt_addr, MROM_SIZE))?;
        // Interrupt lines live in the harts, which need the bus; the CLINT and PLIC
        // are on the bus. Break the cycle with shared pin words made first.
        let pins: Vec<Arc<std::sync::atomic::AtomicU64>> = (0..config.smp)
            .map(|_| Arc::new(std::sync::atomic::AtomicU64::new(0)))
            .collect();
        let plic_outputs = pins
            .iter()
            .flat_map(|pin| {
                // Context 2h is hart h's M-mode (MEIP), 2h+1 its S-mode (SEIP).
                [11, 9].map(|bit| {
                    Box::new(cpu_riscv::HartIrqLine::new(
                        pin.clone(),
                        bit,
                        control.clone(),
                    )) as Box<dyn emu_core::IrqLine>
                })
            })
            .collect();
        let plic = Plic::new(plic_outputs, control.clone());
        let mut uart = Uart16550::new(console.output, console.input);
        uart.set_irq(Box::new(plic.source(UART_IRQ)));
        bus.map_mmio("plic", PLIC_BASE, plic::SIZE, Box::new(plic))?;
        bus.map_mmio("uart", UART_BASE, uart16550::SIZE, Box::new(uart))?;
        bus.map_mmio(
            "test",
            TEST_BASE,
            sifive_test::SIZE,
            Box::new(SifiveTest::new(control.clone())),
        )?;
        let lines = pins
            .iter()
            .map(|pin| ClintHart {
                software: Box::new(cpu_riscv::HartIrqLine::new(pin.clone(), 3, control.clone())),
                timer: Box::new(cpu_riscv::HartIrqLine::new(pin.clone(), 7, control.clone())),
            })
            .collect();
        bus.map_mmio(
            "clint",
            CLINT_BASE,
            clint::SIZE,
            Box::new(Clint::new(clock.clone(), lines)),
        )?;

        let bus = Arc::new(bus);
        let harts = pins
            .into_iter()
            .enumerate()
            .map(|(id, pin)| Hart::with_pins(id as u64, bus.clone(), clock.clone(), pin))
            .collect();
        let mut machine = RiscvVirt {
            harts,
            bus,
            clock,
            control,
            boot: BootImages {
                images,
                fdt,
                fdt_addr,
            },
        };
        machine.load_and_reset()?;
        Ok(machine)
    }

    /// Copies the boot images into RAM and puts every hart in its reset state, as
    /// QEMU's virt board starts: a0 = hart id, a1 = device tree address.
    fn load_and_reset(&mut self) -> Result<(), MachineError> {
        for image in &self.boot.images {
            for segment in &image.segments {
                let zeros = vec![0u8; (segment.mem_size - segment.data.len() as u64) as usize];
                self.bus
                    .load_bytes(segment.addr, &segment.data)
                    .and_then(|()| {
                        self.bus
                            .load_bytes(segment.addr + segment.data.len() as u64, &zeros)
                    })
                    .map_err(|_| {
                        MachineError::Setup(format!("cannot load segment at {:#x}", segment.addr))
                    })?;
            }
        }
        self.bus
            .load_bytes(self.boot.fdt_addr, &self.boot.fdt)
            .map_err(|_| MachineError::Setup("cannot place the device tree".to_owned()))?;
        for hart in &mut self.harts {
            hart.reset();
            hart.state.pc = MROM_BASE;
        }
        Ok(())
    }

    /// The device tree blob the guest receives.
    pub fn device_tree(&self) -> &[u8] {
        &self.boot.fdt
    }

    /// Runs until the guest powers off, `limit` passes or the host stops it.
    pub fn run(&mut self, limit: Option<Duration>) -> Result<RunOutcome, MachineError> {
        let deadline = limit.map(|l| Instant::now() + l);
        loop {
            let mut all_waiting = true;
            for hart in &mut self.harts {
                let exit = hart.run(SLICE);
                if exit != RunExit::WaitForInterrupt || hart.wfi_wakeup_pending() {
                    all_waiting = false;
                }
                if exit == RunExit::Stopped {
                    break;
                }
            }
            if let Some(reason) = self.control.stop_reason() {
                match reason {
                    StopReason::PowerOff(code) => return Ok(RunOutcome::PoweredOff(code)),
                    StopReason::HostRequest => return Ok(RunOutcome::Stopped),
                    StopReason::Reset => {
                        self.control.clear();
                        self.load_and_reset()?;
                        continue;
                    }
                }
            }
            let next = self.bus.tick_devices(self.clock.now());
            if all_waiting {
                self.clock.idle_until(next, MAX_IDLE);
                self.bus.tick_devices(self.clock.now());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(RunOutcome::TimedOut);
            }
        }
    }

    /// Runs each hart a few more instructions, recording them, for a report of
    /// where the guest was.
    pub fn trace_tail(&mut self, count: usize) -> Vec<(u64, Vec<TraceEntry>)> {
        self.harts
            .iter_mut()
            .map(|hart| {
                let id = hart.state.hart_id;
                let trace = (0..count).filter_map(|_| hart.step_traced()).collect();
                (id, trace)
            })
            .collect()
    }

    /// The harts, for reports and tests.
    pub fn harts(&self) -> &[Hart] {
        &self.harts
    }

    /// Instructions retired by all harts.
    pub fn instructions_retired(&self) -> u64 {
        self.harts.iter().map(|h| h.state.instret).sum()
    }
}

/// The reset vector in the mask ROM, as QEMU's virt board has it: every hart starts
/// at the ROM with a0 = its hart id and a1 = the device tree address, and jumps to
/// the entry point stored after the code.
fn reset_vector(entry: u64, fdt_addr: u64, size: u64) -> Box<[u8]> {
    const CODE: [u32; 6] = [
        0x0000_0297, // auipc t0, 0
        0x0282_8613, // addi  a2, t0, 40    (a2: firmware dynamic info, when present)
        0xf140_2573, // csrr  a0, mhartid
        0x0202_b583, // ld    a1, 32(t0)    (device tree)
        0x0182_b283, // ld    t0, 24(t0)    (entry)
        0x0002_8067, // jr    t0
    ];
    let mut rom = Vec::with_capacity(size as usize);
    for word in CODE {
        rom.extend_from_slice(&word.to_le_bytes());
    }
    rom.extend_from_slice(&entry.to_le_bytes());
    rom.extend_from_slice(&fdt_addr.to_le_bytes());
    rom.resize(size as usize, 0);
    rom.into_boxed_slice()
}
