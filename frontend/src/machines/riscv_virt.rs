//! `riscv-virt`: a RISC-V machine with the memory map of QEMU's `virt` board, so
//! the same binaries run on both.
//!
//! | region | base |
//! |---|---|
//! | reset-vector ROM | 0x1000 |
//! | Goldfish RTC | 0x10_1000 |
//! | SiFive test (finisher) | 0x10_0000 |
//! | CLINT | 0x200_0000 |
//! | PLIC | 0xc00_0000 |
//! | ns16550a UART | 0x1000_0000 |
//! | virtio-mmio slots 0..8 | 0x1000_1000 + 0x1000 * n |
//! | PCIe PIO window | 0x0300_0000 |
//! | PCIe ECAM | 0x3000_0000 |
//! | PCIe 32-bit MMIO window | 0x4000_0000 |
//! | simple-framebuffer | 0x5000_0000 |
//! | RAM | 0x8000_0000 |
//! | PCIe 64-bit MMIO window | 0x4_0000_0000 |
//!
//! With more than one hart, each runs on a host thread of its own while the
//! calling thread keeps device time ([`emu_core::cpu::run_threaded`]); a
//! deterministic run, or one with an instruction limit, interleaves them on the
//! calling thread instead, so it repeats exactly.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_riscv::{Hart, RunExit, TraceEntry};
use devices::clint::{Clint, ClintHart};
use devices::pci::{PciHost, SharedPciHost};
use devices::virtio::{
    GuestMemoryHandle, InputHandle, InputKind, VirtioDevice, VirtioGpu, VirtioInput, VirtioMmio,
    VirtioPci, VirtioRng, host_entropy, seeded_entropy,
};
use devices::{
    Framebuffer, FramebufferHandle, GoldfishRtc, Plic, SifiveTest, Uart16550, clint, goldfish_rtc,
    plic, sifive_test, uart16550,
};
use emu_core::config::{BiosChoice, DriveInterface, MachineConfig};
use emu_core::sync::LockRecover;
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl, VirtualClock};
use firmware::fdt::{FdtDevice, FdtPciHost, RiscvVirtFdt};
use firmware::loader::{self, ImageKind, ProgramImage};

use super::virtio_devices::{NicCounters, UserVirtio, VirtioChooser, unknown_device};
use super::{DebugEvent, Machine, MachineError, RunOutcome, ScreenSource};
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
/// The Goldfish RTC.
pub const RTC_BASE: u64 = 0x10_1000;
/// The RTC's PLIC source number.
pub const RTC_IRQ: usize = 11;
/// The first virtio-mmio slot; slots follow every `VIRTIO_STRIDE` bytes.
pub const VIRTIO_BASE: u64 = 0x1000_1000;
/// Distance between virtio-mmio slots.
pub const VIRTIO_STRIDE: u64 = 0x1000;
/// Number of virtio-mmio slots (PLIC sources 1..=8).
pub const VIRTIO_SLOTS: u64 = 8;
/// Two more slots after QEMU's eight, for the keyboard and the tablet.
const KEYBOARD_SLOT: u64 = VIRTIO_SLOTS;
const TABLET_SLOT: u64 = VIRTIO_SLOTS + 1;
/// All virtio-mmio slots.
const ALL_VIRTIO_SLOTS: u64 = VIRTIO_SLOTS + 2;

/// The PLIC source of a virtio slot: 1-8 as on QEMU, then 12 and up (10 is the
/// UART's, 11 the RTC's).
fn virtio_irq(slot: u64) -> u32 {
    if slot < VIRTIO_SLOTS {
        slot as u32 + 1
    } else {
        slot as u32 + 4
    }
}
/// The PLIC.
pub const PLIC_BASE: u64 = 0xc00_0000;
/// The UART's PLIC source number.
pub const UART_IRQ: usize = 10;
/// The UART.
pub const UART_BASE: u64 = 0x1000_0000;
/// The PCIe host's ECAM window (256 buses), as on QEMU's virt board.
pub const PCIE_ECAM_BASE: u64 = 0x3000_0000;
/// Size of the ECAM window.
pub const PCIE_ECAM_SIZE: u64 = 0x1000_0000;
/// The PCI I/O window (port 0 upwards), as on QEMU.
pub const PCIE_PIO_BASE: u64 = 0x0300_0000;
/// Size of the PCI I/O window.
pub const PCIE_PIO_SIZE: u64 = 0x1_0000;
/// The 32-bit PCI memory window: at QEMU's base, but 256 MiB instead of QEMU's
/// 1 GiB, so it ends below the simple-framebuffer at 0x5000_0000 (which the
/// built-in demo guest draws on at that fixed address).
pub const PCIE_MMIO: (u64, u64) = (0x4000_0000, 0x1000_0000);
/// The 64-bit prefetchable PCI memory window, as on QEMU (16 GiB at 16 GiB).
pub const PCIE_MMIO_HIGH: (u64, u64) = (0x4_0000_0000, 0x4_0000_0000);
/// The PLIC source of PCI INTA (INTB..INTD follow), as on QEMU.
pub const PCIE_INTX_IRQ: u32 = 32;
/// mtime frequency, as QEMU's.
pub const TIMEBASE_HZ: u64 = 10_000_000;
/// The `simple-framebuffer` (in the window QEMU's virt board gives PCIe, which
/// riscv-virt does not have), its size and format a8r8g8b8.
pub const FRAMEBUFFER_BASE: u64 = 0x5000_0000;
/// The virtio slot of the GPU (drives take the slots before it).
const GPU_SLOT: u64 = VIRTIO_SLOTS - 2;
/// Host memory the GPU's resources may take together.
const GPU_MEMORY: u64 = 64 << 20;
/// Framebuffer width in pixels.
pub const FRAMEBUFFER_WIDTH: u32 = 640;
/// Framebuffer height in pixels.
pub const FRAMEBUFFER_HEIGHT: u32 = 480;
/// Where a kernel goes when firmware occupies the start of RAM.
const KERNEL_OFFSET_WITH_BIOS: u64 = 0x20_0000;
/// Guest instructions per 100 ns tick of virtual time in a deterministic run: 100
/// million instructions make a guest second, near what the JIT runs.
const DETERMINISTIC_INSNS_PER_TICK: u64 = 10;
/// A deterministic run's wall clock starts at 2026-01-01T00:00:00Z plus up to a
/// year chosen by the seed.
const DETERMINISTIC_EPOCH_SECONDS: u64 = 1_767_225_600;
/// Instructions per hart between looks at the debugger's connection.
const DEBUG_SLICE: u64 = 1 << 12;

/// The RTC of a deterministic run: a seeded start time advancing with virtual time.
fn deterministic_rtc(clock: Arc<VirtualClock>, seed: u64) -> goldfish_rtc::TimeSource {
    let start_ns = (DETERMINISTIC_EPOCH_SECONDS + seed % (365 * 86_400)) * 1_000_000_000;
    let ns_per_tick = 1_000_000_000 / TIMEBASE_HZ;
    Box::new(move || start_ns + clock.now() * ns_per_tick)
}

/// The images a riscv-virt machine boots.
#[derive(Clone, Debug)]
struct BootImages {
    images: Vec<ProgramImage>,
    fdt: Vec<u8>,
    fdt_addr: u64,
}

/// What the guest shows: the GPU's scanout once a driver has shown anything
/// there, else the simple framebuffer.
fn screen_snapshot(
    gpu: &devices::virtio::DisplayHandle,
    framebuffer: &FramebufferHandle,
) -> devices::virtio::Display {
    let shown = gpu.lock_recover().clone();
    if shown.frames > 0 && shown.width > 0 {
        shown
    } else {
        framebuffer.snapshot()
    }
}

/// A built riscv-virt machine.
pub struct RiscvVirt {
    harts: Vec<Hart>,
    bus: Arc<Bus>,
    clock: Arc<VirtualClock>,
    control: Arc<RunControl>,
    boot: BootImages,
    framebuffer: FramebufferHandle,
    gpu_display: devices::virtio::DisplayHandle,
    keyboard: InputHandle,
    tablet: InputHandle,
    /// The user's NICs' counters.
    nics: Vec<NicCounters>,
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
        // One backing holds RAM, then the mask ROM, then the framebuffer's pixels:
        // code in the ROM runs through the decode cache and the JIT like code in
        // RAM, and the guest draws with plain stores on the fast path.
        let framebuffer_bytes = Framebuffer::bytes_for(FRAMEBUFFER_WIDTH, FRAMEBUFFER_HEIGHT)
            .next_multiple_of(emu_core::memory::PAGE_SIZE);
        let rom_offset = config.memory;
        let framebuffer_offset = rom_offset + MROM_SIZE;
        let ram = Arc::new(GuestRam::new(framebuffer_offset + framebuffer_bytes)?);
        let clock = Arc::new(if config.deterministic {
            VirtualClock::instruction_counted(TIMEBASE_HZ, DETERMINISTIC_INSNS_PER_TICK)
        } else {
            VirtualClock::host(TIMEBASE_HZ)
        });
        let mut bus = Bus::with_backing(ram, control.clone());
        bus.map_ram("ram", GuestPhysAddr(RAM_BASE), 0, config.memory)?;
        // One stream seeds the kernel's entropy pool, another feeds virtio-rng.
        let (mut boot_entropy, device_entropy) = if config.deterministic {
            (
                seeded_entropy(config.seed),
                seeded_entropy(config.seed ^ 0x5eed_0f7a_11d3_ad00),
            )
        } else {
            (host_entropy(), host_entropy())
        };
        let mut rng_seed = vec![0; 64];
        boot_entropy(&mut rng_seed);

        let plan = BootPlan::new(config, demo, rng_seed)?;
        let entry = plan.entry;
        let fdt_addr = plan.fdt_addr;
        let images = plan.images;
        let fdt = plan.fdt;
        let fw_dynamic = plan.next_stage;
        bus.map_rom(
            "mrom",
            GuestPhysAddr(MROM_BASE),
            rom_offset,
            &reset_vector(entry, fdt_addr, fw_dynamic, MROM_SIZE),
        )?;
        // Interrupt lines live in the harts, which need the bus; the CLINT and PLIC
        // are on the bus. Break the cycle with shared pin words made first.
        let pins: Vec<Arc<cpu_riscv::HartPins>> = (0..config.smp)
            .map(|_| Arc::new(cpu_riscv::HartPins::new()))
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
        bus.map_mmio(
            "uart",
            GuestPhysAddr(UART_BASE),
            uart16550::SIZE,
            Box::new(uart),
        )?;
        bus.map_mmio(
            "test",
            GuestPhysAddr(TEST_BASE),
            sifive_test::SIZE,
            Box::new(SifiveTest::new(control.clone())),
        )?;
        // virtio-mmio slots: disks and --devices first, in command-line order, the
        // GPU in the next to last slot and the entropy device in the last; the
        // rest are empty (device ID 0, skipped by drivers).
        let chosen = choose_virtio_devices(config)?;
        let (on_pci, on_mmio): (Vec<UserVirtio>, Vec<UserVirtio>) =
            chosen.into_iter().partition(|d| d.pci);
        if on_mmio.len() > GPU_SLOT as usize {
            return Err(MachineError::Setup(format!(
                "too many virtio-mmio devices ({}): riscv-virt has room for {} (use the -pci devices)",
                on_mmio.len(),
                GPU_SLOT
            )));
        }
        let gpu_display = devices::virtio::DisplayHandle::default();
        let keyboard = InputHandle::default();
        let tablet = InputHandle::default();
        let guest_memory = GuestMemoryHandle::with_len(bus.ram().clone(), RAM_BASE, config.memory)
            .map_err(|e| MachineError::Setup(e.to_string()))?;
        let mut device_entropy = Some(device_entropy);
        let mut nics = Vec::new();
        for slot in 0..ALL_VIRTIO_SLOTS {
            let irq = Box::new(plic.source(virtio_irq(slot) as usize));
            let device: Option<Box<dyn VirtioDevice>> = match on_mmio.get(slot as usize) {
                Some(user) => Some(user.open(config, &control, &mut nics)?),
                None if slot == GPU_SLOT => Some(Box::new(VirtioGpu::new(
                    FRAMEBUFFER_WIDTH,
                    FRAMEBUFFER_HEIGHT,
                    GPU_MEMORY,
                    gpu_display.clone(),
                ))),
                None if slot == KEYBOARD_SLOT => Some(Box::new(VirtioInput::new(
                    InputKind::Keyboard,
                    keyboard.clone(),
                ))),
                None if slot == TABLET_SLOT => Some(Box::new(VirtioInput::new(
                    InputKind::Tablet,
                    tablet.clone(),
                ))),
                None if slot == VIRTIO_SLOTS - 1 => {
                    Some(Box::new(VirtioRng::new(device_entropy.take().ok_or_else(
                        || MachineError::Setup("one entropy device only".to_owned()),
                    )?)))
                }
                None => None,
            };
            let transport = match device {
                Some(device) => VirtioMmio::new(device, guest_memory.clone(), irq),
                None => VirtioMmio::empty(),
            };
            bus.map_mmio(
                &format!("virtio{slot}"),
                GuestPhysAddr(VIRTIO_BASE + slot * VIRTIO_STRIDE),
                VIRTIO_STRIDE,
                Box::new(transport),
            )?;
        }
        // The PCIe host, as on QEMU's virt board: INTA..INTD on PLIC sources
        // 32..35, no MSI controller (so drivers fall back to INTx).
        let intx: [Box<dyn emu_core::IrqLine>; 4] = std::array::from_fn(|pin| {
            Box::new(plic.source(PCIE_INTX_IRQ as usize + pin)) as Box<dyn emu_core::IrqLine>
        });
        let mut pci = PciHost::new(intx, None);
        for user in &on_pci {
            let function = VirtioPci::new(
                user.open(config, &control, &mut nics)?,
                guest_memory.clone(),
            )
            .map_err(|e| MachineError::Setup(e.to_string()))?;
            pci.add(Box::new(function))
                .map_err(|e| MachineError::Setup(e.to_string()))?;
        }
        let pci = SharedPciHost::new(pci);
        bus.map_mmio(
            "pcie-ecam",
            GuestPhysAddr(PCIE_ECAM_BASE),
            PCIE_ECAM_SIZE,
            Box::new(pci.ecam_window()),
        )?;
        bus.map_mmio(
            "pcie-pio",
            GuestPhysAddr(PCIE_PIO_BASE),
            PCIE_PIO_SIZE,
            Box::new(pci.pio_window()),
        )?;
        for (name, (base, size)) in [("pcie-mmio", PCIE_MMIO), ("pcie-mmio-high", PCIE_MMIO_HIGH)] {
            bus.map_mmio(
                name,
                GuestPhysAddr(base),
                size,
                Box::new(pci.mmio_window(base)),
            )?;
        }
        let rtc_time = if config.deterministic {
            deterministic_rtc(clock.clone(), config.seed)
        } else {
            goldfish_rtc::host_time()
        };
        let framebuffer = Framebuffer::in_memory(
            FRAMEBUFFER_WIDTH,
            FRAMEBUFFER_HEIGHT,
            bus.ram().clone(),
            framebuffer_offset,
        )
        .map_err(|e| MachineError::Setup(e.to_string()))?;
        let framebuffer_handle = framebuffer.handle();
        bus.map_ram(
            "framebuffer",
            GuestPhysAddr(FRAMEBUFFER_BASE),
            framebuffer_offset,
            framebuffer.size(),
        )?;
        let mut rtc = GoldfishRtc::new(rtc_time);
        rtc.set_irq(Box::new(plic.source(RTC_IRQ)));
        bus.map_mmio(
            "rtc",
            GuestPhysAddr(RTC_BASE),
            goldfish_rtc::SIZE,
            Box::new(rtc),
        )?;
        bus.map_mmio("plic", GuestPhysAddr(PLIC_BASE), plic::SIZE, Box::new(plic))?;
        let lines = pins
            .iter()
            .map(|pin| ClintHart {
                software: Box::new(cpu_riscv::HartIrqLine::new(pin.clone(), 3, control.clone())),
                timer: Box::new(cpu_riscv::HartIrqLine::new(pin.clone(), 7, control.clone())),
            })
            .collect();
        bus.map_mmio(
            "clint",
            GuestPhysAddr(CLINT_BASE),
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
            framebuffer: framebuffer_handle,
            nics,
            gpu_display,
            keyboard,
            tablet,
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
                    .load_bytes(GuestPhysAddr(segment.addr), &segment.data)
                    .and_then(|()| {
                        self.bus.load_bytes(
                            GuestPhysAddr(segment.addr + segment.data.len() as u64),
                            &zeros,
                        )
                    })
                    .map_err(|_| {
                        MachineError::Setup(format!("cannot load segment at {:#x}", segment.addr))
                    })?;
            }
        }
        self.bus
            .load_bytes(GuestPhysAddr(self.boot.fdt_addr), &self.boot.fdt)
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
        self.run_watched(limit, None, &mut || None)
    }

    /// Like [`RiscvVirt::run`], also stopping after `max_instructions` (all harts)
    /// or when `watch`, called between instruction slices, returns an outcome.
    pub fn run_watched(
        &mut self,
        limit: Option<Duration>,
        max_instructions: Option<u64>,
        watch: &mut dyn FnMut() -> Option<RunOutcome>,
    ) -> Result<RunOutcome, MachineError> {
        use emu_core::cpu::{self, MachineParts};
        // The time limit covers the whole call, resets included.
        let deadline = limit.map(|l| Instant::now() + l);
        loop {
            let parts = MachineParts {
                bus: &self.bus,
                clock: &self.clock,
                control: &self.control,
            };
            let limits = super::limits_left(deadline, max_instructions);
            let end = if self.threaded(max_instructions) {
                cpu::run_threaded(&mut self.harts, parts, limits, watch).map_err(|e| {
                    MachineError::Setup(format!("cannot start a thread for each hart: {e}"))
                })?
            } else {
                cpu::run_interleaved(&mut self.harts, parts, limits, watch)
            };
            match super::outcome_of(end) {
                Some(outcome) => return Ok(outcome),
                None => {
                    self.control.clear();
                    self.reset()?;
                }
            }
        }
    }

    /// Whether harts run on threads of their own. Deterministic runs keep one
    /// thread (the interleaving is what makes them repeat), and so does a run
    /// with an instruction limit, which then stops at exactly that count. One
    /// hart stays on the calling thread too: with the device work on a thread
    /// of its own it was no faster (Linux, 64 MiB `sha256sum`: 20.5 and 23.3 s
    /// against 18.8 and 20.8 s).
    fn threaded(&self, max_instructions: Option<u64>) -> bool {
        self.harts.len() > 1 && !self.clock.is_instruction_counted() && max_instructions.is_none()
    }

    /// The harts, for a debugger.
    pub fn harts_mut(&mut self) -> &mut [Hart] {
        &mut self.harts
    }

    /// Runs one short slice for a debugger: every hart (`step` = None), or exactly
    /// one instruction of hart `step`; then devices and time, as [`RiscvVirt::run`]
    /// does. Reports a hart's breakpoint or watchpoint, a power-off, or nothing.
    pub fn debug_slice(&mut self, step: Option<usize>) -> Result<DebugEvent, MachineError> {
        let mut event = DebugEvent::Ran;
        let mut all_waiting = step.is_none();
        match step {
            Some(index) => {
                let hart = &mut self.harts[index];
                hart.debug_step();
                event = match hart.take_debug_stop() {
                    Some(stop) => DebugEvent::Stopped { cpu: index, stop },
                    None => DebugEvent::Stepped(index),
                };
            }
            None => {
                for (index, hart) in self.harts.iter_mut().enumerate() {
                    let exit = hart.run(DEBUG_SLICE);
                    if exit != RunExit::WaitForInterrupt || hart.wfi_wakeup_pending() {
                        all_waiting = false;
                    }
                    if exit == RunExit::Debug
                        && let Some(stop) = hart.take_debug_stop()
                    {
                        event = DebugEvent::Stopped { cpu: index, stop };
                        break;
                    }
                }
            }
        }
        if let Some(reason) = self.control.stop_reason() {
            if let Some(off) = super::debug_power_off(reason) {
                return Ok(off);
            }
            self.control.clear();
            self.reset()?;
        }
        super::tick_after_debug_slice(&self.bus, &self.clock, all_waiting);
        Ok(event)
    }

    /// Resets the machine as a reboot does: every device back to power-on, the
    /// images reloaded, the harts at the ROM.
    pub fn reset(&mut self) -> Result<(), MachineError> {
        self.bus.reset_devices();
        self.load_and_reset()
    }

    /// Runs each hart a few more instructions, recording them, for a report of
    /// where the guest was.
    pub fn trace_tail(&mut self, count: usize) -> Vec<(u64, Vec<TraceEntry>)> {
        self.harts
            .iter_mut()
            .map(|hart| {
                let id = hart.state.hart_id;
                let trace = (0..count).map(|_| hart.step_traced()).collect();
                (id, trace)
            })
            .collect()
    }

    /// The harts, for reports and tests.
    pub fn harts(&self) -> &[Hart] {
        &self.harts
    }

    /// Turns on the Cranelift translator for every hart.
    ///
    /// When the host has a core to spare beside the harts' threads, each
    /// hart's code is compiled on a thread of its own while the hart
    /// interprets: a one-hart Linux boot on two host cores went from 7.5 to
    /// 5.6 s. Without a spare core the compile threads only take time from the
    /// harts, which then interpret longer (four harts on two cores, boot plus
    /// four `sha256sum` jobs: 33.5 s compiling on the harts' threads, 37.5 s
    /// with compile threads), so the harts compile on their own threads, as a
    /// deterministic run must too (it repeats exactly).
    pub fn enable_jit(&mut self, threshold: u32) -> Result<(), String> {
        let host_cores = std::thread::available_parallelism().map_or(1, usize::from);
        let background = !self.clock.is_instruction_counted() && self.harts.len() < host_cores;
        for hart in &mut self.harts {
            if background {
                hart.enable_background_jit(threshold)?;
            } else {
                hart.enable_jit(threshold)?;
            }
        }
        Ok(())
    }

    /// Translator statistics summed over the harts, when the JIT is on.
    pub fn jit_stats(&self) -> Option<cpu_riscv::jit::JitStats> {
        let mut total: Option<cpu_riscv::jit::JitStats> = None;
        for stats in self.harts.iter().filter_map(Hart::jit_stats) {
            *total.get_or_insert_with(Default::default) += stats;
        }
        total
    }

    /// Instructions retired by all harts.
    pub fn instructions_retired(&self) -> u64 {
        self.harts.iter().map(|h| h.state.instret).sum()
    }

    /// Traps taken by all harts.
    pub fn traps_taken(&self) -> u64 {
        self.harts.iter().map(|h| h.state.traps).sum()
    }
}

/// Builds riscv-virt for [`super::MACHINES`].
pub fn build_machine(
    config: &MachineConfig,
    console: Console,
    control: Arc<RunControl>,
    demo: &[u8],
) -> Result<Box<dyn Machine>, MachineError> {
    Ok(Box::new(RiscvVirt::build(config, console, control, demo)?))
}

impl Machine for RiscvVirt {
    fn run(
        &mut self,
        limit: Option<Duration>,
        max_instructions: Option<u64>,
        watch: &mut dyn FnMut() -> Option<RunOutcome>,
    ) -> Result<RunOutcome, MachineError> {
        self.run_watched(limit, max_instructions, watch)
    }

    fn reset(&mut self) -> Result<(), MachineError> {
        RiscvVirt::reset(self)
    }

    fn screen_source(&self) -> ScreenSource {
        let (gpu, framebuffer) = (self.gpu_display.clone(), self.framebuffer.clone());
        ScreenSource::new(move || screen_snapshot(&gpu, &framebuffer))
    }

    fn keyboard(&self) -> InputHandle {
        self.keyboard.clone()
    }

    fn tablet(&self) -> InputHandle {
        self.tablet.clone()
    }

    fn device_tree(&self) -> Option<&[u8]> {
        Some(&self.boot.fdt)
    }

    fn enable_jit(&mut self, threshold: u32) -> Result<(), String> {
        RiscvVirt::enable_jit(self, threshold)
    }

    fn instructions_retired(&self) -> u64 {
        RiscvVirt::instructions_retired(self)
    }

    fn traps_taken(&self) -> u64 {
        RiscvVirt::traps_taken(self)
    }

    fn translation_seconds(&self) -> f64 {
        self.jit_stats()
            .map_or(0.0, |jit| jit.compile_time.as_secs_f64())
    }

    fn device_report(&self) -> Vec<String> {
        self.nics.iter().map(NicCounters::line).collect()
    }

    fn jit_report(&self) -> Vec<String> {
        self.jit_stats()
            .map(|jit| vec![jit.to_string()])
            .unwrap_or_default()
    }

    fn where_report(&mut self, count: usize) -> String {
        let mut report = String::new();
        for (id, trace) in self.trace_tail(count) {
            let hart = &self.harts[id as usize];
            report += &format!(
                "  hart {id}: pc {:#x}, {}-mode; next steps:\n",
                hart.state.pc,
                cpu_riscv::csr::privilege_name(hart.state.privilege)
            );
            for entry in trace {
                let mut line = format!(
                    "    {:#014x} [{}]",
                    entry.pc,
                    cpu_riscv::csr::privilege_name(entry.privilege),
                );
                if let Some(insn) = entry.insn {
                    line += &format!(" {insn:?}");
                }
                if let Some(trap) = entry.trap {
                    line += &format!(
                        " trap: {} (cause {:#x}, tval {:#x})",
                        cpu_riscv::trap::cause_name(trap.cause),
                        trap.cause,
                        trap.tval
                    );
                }
                report += &line;
                report += "\n";
            }
        }
        report
    }

    fn cpu_count(&self) -> usize {
        self.harts.len()
    }

    fn debug_cpu(&mut self, index: usize) -> Option<&mut dyn emu_core::debug::DebugCpu> {
        self.harts
            .get_mut(index)
            .map(|hart| hart as &mut dyn emu_core::debug::DebugCpu)
    }

    fn debug_slice(&mut self, step: Option<usize>) -> Result<DebugEvent, MachineError> {
        RiscvVirt::debug_slice(self, step)
    }
}

/// The devices `--device` can add to riscv-virt.
const USER_DEVICES: &[&str] = &[
    "virtio-blk-device",
    "virtio-net-device",
    "virtio-rng-device",
    "virtio-blk-pci",
    "virtio-net-pci",
    "virtio-rng-pci",
];

/// The user's virtio devices in slot order: drives the machine attaches itself
/// (`--drive file=...`), then each `--device`. Unknown devices, options and
/// drive ids are one-line errors.
fn choose_virtio_devices(config: &MachineConfig) -> Result<Vec<UserVirtio>, MachineError> {
    let mut chosen = Vec::new();
    for drive in config.drives.iter().filter(|d| d.attach()) {
        if drive.interface == DriveInterface::Ide {
            return Err(MachineError::Setup(format!(
                "drive {}: riscv-virt has no IDE controller (use if=virtio)",
                drive.file.display()
            )));
        }
        chosen.push(UserVirtio::disk(drive, false)?);
    }
    let mut chooser = VirtioChooser::default();
    for device in &config.devices {
        match chooser.choose(config, device, USER_DEVICES)? {
            Some(user) => chosen.push(user),
            None => return Err(unknown_device("riscv-virt", &device.driver, USER_DEVICES)),
        }
    }
    chooser.check_netdevs_used(config)?;
    Ok(chosen)
}

/// `fw_dynamic_info` magic ("OSBI"), as OpenSBI's fw_dynamic expects.
const FW_DYNAMIC_MAGIC: u64 = 0x4942_534f;
/// fw_dynamic_info version with the boot_hart field.
const FW_DYNAMIC_VERSION: u64 = 2;
/// next_mode value for S-mode.
const NEXT_MODE_S: u64 = 1;

/// The reset vector in the mask ROM, as QEMU's virt board has it: every hart starts
/// at the ROM with a0 = its hart id, a1 = the device tree address and a2 = the
/// address of a `fw_dynamic_info` block (read by firmware such as OpenSBI's
/// fw_dynamic, ignored by bare-metal programs), and jumps to the entry point.
fn reset_vector(entry: u64, fdt_addr: u64, next_stage: Option<u64>, size: u64) -> Box<[u8]> {
    const CODE: [u32; 6] = [
        0x0000_0297, // auipc t0, 0
        0x0282_8613, // addi  a2, t0, 40    (a2: fw_dynamic_info below)
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
    // fw_dynamic_info: magic, version, next_addr, next_mode, options, boot_hart.
    let info = [
        FW_DYNAMIC_MAGIC,
        FW_DYNAMIC_VERSION,
        next_stage.unwrap_or(0),
        NEXT_MODE_S,
        0,
        0,
    ];
    for field in info {
        rom.extend_from_slice(&field.to_le_bytes());
    }
    rom.resize(size as usize, 0);
    rom.into_boxed_slice()
}

/// Where everything goes in RAM and where the harts start.
struct BootPlan {
    images: Vec<ProgramImage>,
    /// Where the reset vector jumps.
    entry: u64,
    /// The kernel's entry when firmware runs first.
    next_stage: Option<u64>,
    fdt: Vec<u8>,
    fdt_addr: u64,
}

impl BootPlan {
    fn new(
        config: &MachineConfig,
        demo: &[u8],
        rng_seed: Vec<u8>,
    ) -> Result<BootPlan, MachineError> {
        let ram_end = RAM_BASE + config.memory;
        let kernel_path = config.kernel.as_deref();
        let name = kernel_path.unwrap_or(Path::new("built-in demo"));
        let kernel_bytes = match kernel_path {
            Some(path) => loader::read_file(path)?,
            None => demo.to_vec(),
        };
        // Firmware: the one named; without --bios, Turing's own SBI for a program
        // that starts in S-mode (a Linux Image, U-Boot's S-mode build: see
        // `loader::start_mode`); bare-metal programs (and `--bios none`) start
        // directly in M-mode.
        let supervisor = loader::start_mode(&kernel_bytes, RAM_BASE + KERNEL_OFFSET_WITH_BIOS)
            == loader::StartMode::Supervisor;
        let bios = match &config.bios {
            Some(BiosChoice::File(path)) => {
                let bytes = loader::read_file(path)?;
                Some((
                    path.clone(),
                    loader::parse_program(path, &bytes, RAM_BASE, RAM_BASE)?,
                ))
            }
            Some(BiosChoice::None) => None,
            None if !supervisor => None,
            None => {
                let path = Path::new("built-in SBI firmware");
                Some((
                    path.to_owned(),
                    loader::parse_program(path, firmware::SBI_FIRMWARE, RAM_BASE, RAM_BASE)?,
                ))
            }
        };
        // Raw code goes to the start of RAM, or above the firmware when there is one.
        let raw_base = if bios.is_some() {
            RAM_BASE + KERNEL_OFFSET_WITH_BIOS
        } else {
            RAM_BASE
        };
        let kernel = loader::parse_program(name, &kernel_bytes, RAM_BASE, raw_base)?;
        kernel.check_fits(name, RAM_BASE, config.memory)?;
        let mut images = Vec::new();
        let (entry, next_stage) = match bios {
            Some((path, image)) => {
                image.check_fits(&path, RAM_BASE, config.memory)?;
                if image.end()
                    > kernel
                        .segments
                        .iter()
                        .map(|s| s.addr)
                        .min()
                        .unwrap_or(u64::MAX)
                {
                    return Err(MachineError::Setup(format!(
                        "firmware {} overlaps the kernel at {:#x}",
                        path.display(),
                        kernel.entry
                    )));
                }
                let entry = image.entry;
                images.push(image);
                (entry, Some(kernel.entry))
            }
            None => (kernel.entry, None),
        };
        images.push(kernel);
        let loaded_end = images
            .iter()
            .map(ProgramImage::end)
            .max()
            .unwrap_or(RAM_BASE);

        // The device tree goes at the top of RAM and the initrd just below it, both
        // above everything loaded (a kernel's bss included).
        let initrd = match &config.initrd {
            Some(path) => Some((
                path,
                std::fs::read(path).map_err(|e| {
                    MachineError::Setup(format!("cannot read initrd {}: {e}", path.display()))
                })?,
            )),
            None => None,
        };
        let fdt_room = 64 * 1024;
        let fdt_addr = (ram_end - fdt_room) & !0xfff;
        let initrd_range = match &initrd {
            Some((path, data)) => {
                let start = fdt_addr.checked_sub(data.len() as u64).map(|a| a & !0xfff);
                match start {
                    Some(start) if start >= loaded_end => Some((start, start + data.len() as u64)),
                    _ => {
                        return Err(MachineError::Setup(format!(
                            "initrd {} ({} bytes) does not fit in guest RAM above the kernel (raise --memory)",
                            path.display(),
                            data.len()
                        )));
                    }
                }
            }
            None => None,
        };
        if fdt_addr < loaded_end {
            return Err(MachineError::Setup(format!(
                "guest RAM ({} bytes) is too small for the program and its device tree (raise --memory)",
                config.memory
            )));
        }
        let mut devices = vec![
            FdtDevice {
                name: "serial",
                compatible: &["ns16550a"],
                base: UART_BASE,
                size: uart16550::SIZE,
                u32_props: vec![("clock-frequency", 3_686_400)],
                str_props: vec![],
                irq: Some(UART_IRQ as u32),
            },
            FdtDevice {
                name: "rtc",
                compatible: &["google,goldfish-rtc"],
                base: RTC_BASE,
                size: goldfish_rtc::SIZE,
                u32_props: vec![],
                str_props: vec![],
                irq: Some(RTC_IRQ as u32),
            },
        ];
        for slot in 0..ALL_VIRTIO_SLOTS {
            devices.push(FdtDevice {
                name: "virtio_mmio",
                compatible: &["virtio,mmio"],
                base: VIRTIO_BASE + slot * VIRTIO_STRIDE,
                size: VIRTIO_STRIDE,
                u32_props: vec![],
                str_props: vec![],
                irq: Some(virtio_irq(slot)),
            });
        }
        devices.push(FdtDevice {
            name: "framebuffer",
            compatible: &["simple-framebuffer"],
            base: FRAMEBUFFER_BASE,
            size: u64::from(FRAMEBUFFER_WIDTH * FRAMEBUFFER_HEIGHT * 4),
            u32_props: vec![
                ("width", FRAMEBUFFER_WIDTH),
                ("height", FRAMEBUFFER_HEIGHT),
                ("stride", FRAMEBUFFER_WIDTH * 4),
            ],
            str_props: vec![("format", "a8r8g8b8")],
            irq: None,
        });
        let fdt = RiscvVirtFdt {
            harts: config.smp,
            ram: (RAM_BASE, config.memory),
            timebase_hz: TIMEBASE_HZ as u32,
            bootargs: config.append.clone().unwrap_or_default(),
            rng_seed: Some(rng_seed),
            initrd: initrd_range,
            plic: (PLIC_BASE, plic::SIZE, plic::SOURCES as u32 - 1),
            console: Some(UART_BASE),
            clint: (CLINT_BASE, clint::SIZE),
            finisher: Some((TEST_BASE, sifive_test::SIZE)),
            devices,
            pci: Some(FdtPciHost {
                ecam: (PCIE_ECAM_BASE, PCIE_ECAM_SIZE),
                pio: (PCIE_PIO_BASE, PCIE_PIO_SIZE),
                mmio32: PCIE_MMIO,
                mmio64: PCIE_MMIO_HIGH,
                intx_base: PCIE_INTX_IRQ,
            }),
        }
        .build()?;
        if fdt.len() as u64 > fdt_room {
            return Err(MachineError::Setup(
                "the device tree is larger than its 64 KiB slot".to_owned(),
            ));
        }
        if let (Some((_, data)), Some((start, _))) = (initrd, initrd_range) {
            images.push(ProgramImage {
                segments: vec![loader::Segment {
                    addr: start,
                    mem_size: data.len() as u64,
                    data,
                }],
                entry: start,
                kind: ImageKind::Raw,
            });
        }
        Ok(BootPlan {
            images,
            entry,
            next_stage,
            fdt,
            fdt_addr,
        })
    }
}
