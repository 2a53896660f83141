//! `pc`: an x86 PC modelled on QEMU's `pc` machine (i440FX host bridge and
//! PIIX3), so the same firmware and guests run on both.
//!
//! | what | where |
//! |---|---|
//! | RAM | 0 to 640 KiB, 1 MiB up to the PCI hole (3 GiB when RAM reaches 3.5 GiB), the rest from 4 GiB |
//! | BIOS area 0xC0000–0xFFFFF | shadow RAM or ROM block by block, as the i440FX's PAM registers say; the ROM side is zeros with the BIOS's last 128 KiB at its top |
//! | BIOS ROM | its whole image ending at 4 GiB (the reset vector) |
//! | PCI memory | from the end of low RAM to 0xFEC0_0000 |
//! | i8259 pair | ports 0x20, 0xA0, ELCR 0x4D0; to the bootstrap CPU's LINT0 |
//! | I/O APIC (24 pins: the ISA IRQs, IRQ 0 on pin 2) | 0xFEC0_0000 |
//! | local APIC per CPU (`--smp N`, IDs 0 up, TSC-deadline timer) | each CPU's IA32_APIC_BASE, 0xFEE0_0000 |
//! | MSI window (device writes become APIC messages) | 0xFEE0_0000–0xFEEF_FFFF |
//! | i8254 PIT, speaker gate | 0x40, 0x61 |
//! | i8042 keyboard controller, PS/2 keyboard and mouse | 0x60, 0x64, IRQ 1 and 12 |
//! | MC146818 RTC/CMOS | 0x70, IRQ 8 |
//! | POST port | 0x80 |
//! | port A (A20, fast reset) | 0x92 |
//! | COM1 | 0x3F8, IRQ 4 |
//! | debug console | 0x402 (`--debugcon`) |
//! | fw_cfg with DMA | 0x510 |
//! | ACPI GPE0, PCI and CPU hotplug registers (nothing hot-plugged) | 0xAFE0, 0xAE00, 0xAF00 |
//! | PCI configuration, reset control | 0xCF8, 0xCF9 |
//! | VGA memory window | 0xA0000–0xBFFFF (the VGA's) |
//! | PCI devices | 00.0 i440FX, 01.0 PIIX3 (PIRQA–D to the i8259 as firmware routes them), 01.1 PIIX3 IDE (ports 0x1F0/0x3F6 on IRQ 14, 0x170/0x376 on IRQ 15; `--drive` disks and `--cdrom`, an empty CD-ROM drive at index 2 otherwise), 01.3 PIIX4 PM (ACPI PM registers where firmware puts them, SCI on IRQ 9); 02.0 the standard VGA (Bochs VBE, `vgabios-stdvga.bin` as its ROM); from 03.0 the user's `virtio-blk-pci` (or `--drive if=virtio`), `virtio-net-pci` and `virtio-rng-pci`, with MSI-X |
//!
//! Ports nobody claims go to the PCI bus, whose I/O BARs and PMBASE decode
//! them (a PIIX's subtractive decoding, the other way round). The bootstrap
//! CPU starts at the reset vector in the BIOS: by default Debian's SeaBIOS,
//! which logs on the debug console, wakes the other CPUs with INIT and
//! start-up IPIs and lists them in its MADT and MP table. All CPUs run on
//! one host thread, a slice each in turn.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_x86::{Cpu, CpuModel, RunExit};
use devices::apic::{self, ApicBus, IoApic};
use devices::fw_cfg::{self, FwCfg};
use devices::mc146818::pc_layout::PcRamSplit;
use devices::pci::i440fx::{SHADOW_BASE, SHADOW_BLOCK, SHADOW_BLOCKS};
use devices::pci::{I440fx, Piix3, Piix4Pm, PiixIde, PirqRouter, SharedPciHost, StdVga, piix3};
use devices::virtio::{GuestMemoryHandle, InputHandle, VirtioPci};
use devices::{
    A20Gate, AcpiPm, DebugCon, I8042, I8254, I8259, IdeDrive, IsaDebugExit, Mc146818, PortWindow,
    PostPort, ResetControl, SystemControlA, Uart16550, VgaHandle, WithResetControl, acpi_hotplug,
    debugcon, goldfish_rtc, i8042, i8254, i8259, mc146818, pc_ports,
};
use emu_core::config::{
    BiosChoice, DriveInterface, DriveMedia, DriveSpec, MachineConfig, SerialBackend,
};
use emu_core::cpu::{self, MachineParts};
use emu_core::debug::DebugCpu;
use emu_core::switchable::SwitchableBlock;
use emu_core::{
    Bus, GuestPhysAddr, GuestRam, IrqFanout, PioPort, RunControl, StopReason, VirtualClock,
};
use firmware::multiboot::{self, MultibootBoot};
use firmware::x86_linux::{self, LinuxBoot};

use super::virtio_devices::{NicCounters, UserVirtio, VirtioChooser, unknown_device};
use super::{DebugEvent, Machine, MachineError, RunOutcome, ScreenSource};
use crate::console::Console;

/// The virtio devices `--device` can add: PCI ones only, as on QEMU's pc.
const VIRTIO_DEVICES: &[&str] = &["virtio-blk-pci", "virtio-net-pci", "virtio-rng-pci"];
/// Debian's VGA BIOS for QEMU's standard VGA (package `seabios`).
const VGA_BIOS: &str = "/usr/share/seabios/vgabios-stdvga.bin";
/// Debian's SeaBIOS, the firmware `pc` boots without `--bios`.
pub const DEFAULT_BIOS: &str = "/usr/share/seabios/bios-256k.bin";
/// Where Debian's `qemu-system-data` keeps QEMU's option ROMs: the ones that
/// load a `--kernel` through fw_cfg (DMA) and start it, which SeaBIOS runs as
/// a boot device.
pub const OPTION_ROMS: &str = "/usr/share/qemu";
/// RAM at the top of low memory the firmware keeps for its tables: an initrd
/// goes below it.
const FIRMWARE_RESERVED_TOP: u64 = 0x4_0000;
/// The least RAM the PC takes: SeaBIOS relocates itself and keeps its tables
/// above 1 MiB, and QEMU's `pc` boots it with no less.
const MIN_MEMORY: u64 = 8 << 20;
/// Where the PCI hole ends: the I/O APIC, HPET, local APIC and BIOS live above.
const PCI_HOLE_END: u64 = 0xfec0_0000;
/// Four GiB: the BIOS image ends here, and high RAM starts here.
const FOUR_GIB: u64 = 1 << 32;
/// The legacy VGA window starts here; low RAM ends here.
const LOW_RAM_END: u64 = 0xa_0000;
/// Extended memory starts here.
const HIGH_RAM_START: u64 = 0x10_0000;
/// The BIOS's last bytes appear below 1 MiB, up to this many.
const ISA_BIOS_MAX: u64 = 0x2_0000;
/// The device clock's frequency: nanoseconds.
const CLOCK_HZ: u64 = 1_000_000_000;
/// Guest instructions per nanosecond of virtual time in a deterministic run.
const DETERMINISTIC_INSNS_PER_TICK: u64 = 1;
/// A deterministic run's RTC starts at 2026-01-01T00:00:00Z plus up to a year
/// chosen by the seed.
const DETERMINISTIC_EPOCH_SECONDS: u64 = 1_767_225_600;
/// ISA IRQs of the fixed devices, as on every PC.
const PIT_IRQ: usize = 0;
const COM1_IRQ: usize = 4;
const RTC_IRQ: usize = 8;
/// The I/O APIC pin the PIT reaches (the MADT's interrupt source override
/// for IRQ 0, which fw_cfg tells SeaBIOS to write).
const IO_APIC_PIT_PIN: usize = 2;
/// The most CPUs `--smp` takes: every CPU runs on one host thread in turn,
/// so more only slow the guest down.
const MAX_CPUS: u32 = 16;
/// The PIIX4's SCI, as QEMU wires it.
const SCI_IRQ: usize = 9;
/// The IDE channels' ISA IRQs: primary, secondary.
const IDE_IRQS: [usize; 2] = [14, 15];
/// The PIIX3's slot (function 0 the ISA bridge, 1 IDE, 3 the PM function).
const PIIX_SLOT: u8 = 1;
const PIIX_IDE_FUNCTION: u8 = 1;
const PIIX_PM_FUNCTION: u8 = 3;
/// IDE positions (2 × channel + unit): four drives on two channels.
const IDE_POSITIONS: usize = 4;
/// Where QEMU's pc puts its CD-ROM drive (empty unless `--cdrom`): the
/// secondary channel's master.
const DEFAULT_CDROM_INDEX: usize = 2;
/// Instructions per CPU between looks at the debugger's connection.
const DEBUG_SLICE: u64 = 1 << 12;

/// A built PC.
pub struct Pc {
    cpus: Vec<Cpu>,
    bus: Arc<Bus>,
    clock: Arc<VirtualClock>,
    control: Arc<RunControl>,
    keyboard: InputHandle,
    tablet: InputHandle,
    /// The VGA, which the window and screenshots show.
    vga: VgaHandle,
    /// The user's NICs' counters.
    nics: Vec<NicCounters>,
}

impl std::fmt::Debug for Pc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pc")
            .field("cpus", &self.cpus.len())
            .finish_non_exhaustive()
    }
}

/// Where the memory map puts RAM and the firmware in the one backing.
#[derive(Clone, Copy, Debug)]
struct Layout {
    split: PcRamSplit,
    /// Backing offset of the BIOS image (mapped below 4 GiB).
    bios_offset: u64,
    /// Backing offset of the ROM side of the BIOS area (0xC0000–0xFFFFF).
    shadow_rom_offset: u64,
    /// Bytes in the backing.
    backing: u64,
}

impl Layout {
    fn new(memory: u64, bios_len: u64) -> Layout {
        let page = emu_core::memory::PAGE_SIZE;
        let split = PcRamSplit::for_ram_size(memory);
        let bios_offset = memory.next_multiple_of(page);
        let shadow_rom_offset = (bios_offset + bios_len).next_multiple_of(page);
        Layout {
            split,
            bios_offset,
            shadow_rom_offset,
            backing: shadow_rom_offset + SHADOW_BLOCK * SHADOW_BLOCKS as u64,
        }
    }
}

/// Reads the firmware image: `--bios FILE`, or SeaBIOS from Debian's package.
fn read_bios(choice: Option<&BiosChoice>) -> Result<(PathBuf, Vec<u8>), MachineError> {
    let path = match choice {
        None => {
            let path = PathBuf::from(DEFAULT_BIOS);
            if !path.exists() {
                return Err(MachineError::Setup(format!(
                    "no firmware: {DEFAULT_BIOS} is missing; install Debian's seabios package (cargo xtask setup does) or give --bios FILE"
                )));
            }
            path
        }
        Some(BiosChoice::File(path)) => path.clone(),
        Some(BiosChoice::None) => {
            return Err(MachineError::Setup(
                "--bios none: the pc machine starts in its BIOS; give a firmware file".to_owned(),
            ));
        }
    };
    let data = std::fs::read(&path).map_err(|e| {
        MachineError::Setup(format!("cannot read firmware {}: {e}", path.display()))
    })?;
    // QEMU's rule: the image is whole 64 KiB units, and ends at 4 GiB below
    // the I/O APIC's window.
    if data.is_empty() || data.len() % 0x1_0000 != 0 || data.len() > 16 << 20 {
        return Err(MachineError::Setup(format!(
            "firmware {} is {} bytes: a PC BIOS is a multiple of 64 KiB, at most 16 MiB",
            path.display(),
            data.len()
        )));
    }
    Ok((path, data))
}

/// Opens an output-only backend (the debug console).
fn open_output(backend: &SerialBackend) -> Result<Box<dyn Write + Send>, MachineError> {
    Ok(match backend {
        SerialBackend::Stdio => Box::new(std::io::stdout()),
        SerialBackend::Null => Box::new(std::io::sink()),
        SerialBackend::File(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    MachineError::Setup(format!(
                        "cannot open debug console file {}: {e}",
                        path.display()
                    ))
                })?,
        ),
    })
}

/// The `etc/e820` file QEMU gives firmware: each RAM range as a 64-bit
/// address, a 64-bit length and a 32-bit type (1, RAM).
fn e820_table(split: PcRamSplit) -> Vec<u8> {
    let mut table = Vec::new();
    let mut entry = |addr: u64, len: u64| {
        table.extend_from_slice(&addr.to_le_bytes());
        table.extend_from_slice(&len.to_le_bytes());
        table.extend_from_slice(&1u32.to_le_bytes());
    };
    entry(0, split.below_4g);
    if split.above_4g > 0 {
        entry(FOUR_GIB, split.above_4g);
    }
    table
}

/// The CPU model `--cpu` names, or the default; `help` lists them.
fn cpu_model(name: Option<&str>) -> Result<CpuModel, MachineError> {
    let names = || {
        CpuModel::ALL
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        None => Ok(CpuModel::DEFAULT),
        Some(name) => CpuModel::by_name(name).ok_or_else(|| {
            MachineError::Setup(format!(
                "unknown CPU model '{name}' for pc (available: {})",
                names()
            ))
        }),
    }
}

/// The IDE drives: `--drive` with `if=ide` or no `if=` at its `index=` or
/// the next free position in command-line order (QEMU's rule), and an empty
/// CD-ROM drive at index 2 when nothing else is there, as QEMU's pc has.
fn ide_drives(config: &MachineConfig) -> Result<[[Option<IdeDrive>; 2]; 2], MachineError> {
    let mut placed: [Option<&DriveSpec>; IDE_POSITIONS] = [None; IDE_POSITIONS];
    let on_ide = config.drives.iter().filter(|d| {
        matches!(
            d.interface,
            DriveInterface::Ide | DriveInterface::MachineDefault
        )
    });
    // Drives with an index first, so the others fill around them.
    let (fixed, free): (Vec<&DriveSpec>, Vec<&DriveSpec>) = on_ide.partition(|d| d.index.is_some());
    for drive in fixed {
        let index = drive.index.unwrap_or_default() as usize;
        let slot = placed.get_mut(index).ok_or_else(|| {
            MachineError::Setup(format!(
                "drive {}: index={index} is beyond the IDE controller's {IDE_POSITIONS} drives",
                drive.file.display()
            ))
        })?;
        if slot.is_some() {
            return Err(MachineError::Setup(format!(
                "drive {}: IDE index {index} is taken by another drive",
                drive.file.display()
            )));
        }
        *slot = Some(drive);
    }
    for drive in free {
        let slot = placed.iter_mut().find(|s| s.is_none()).ok_or_else(|| {
            MachineError::Setup(format!(
                "drive {}: the IDE controller has room for {IDE_POSITIONS} drives",
                drive.file.display()
            ))
        })?;
        *slot = Some(drive);
    }
    let mut drives: [[Option<IdeDrive>; 2]; 2] = Default::default();
    for (index, spec) in placed.iter().enumerate() {
        let open = |spec: &DriveSpec| {
            devices::open_raw(&spec.file, spec.read_only)
                .map_err(|e| MachineError::Setup(e.to_string()))
        };
        drives[index / 2][index % 2] = match spec {
            Some(spec) if spec.media == DriveMedia::Cdrom => {
                Some(IdeDrive::cdrom(Some(open(spec)?)))
            }
            Some(spec) => Some(IdeDrive::disk(open(spec)?, spec.read_only)),
            None if index == DEFAULT_CDROM_INDEX => Some(IdeDrive::cdrom(None)),
            None => None,
        };
    }
    Ok(drives)
}

/// Refuses options the PC cannot take, naming them.
fn check_supported(config: &MachineConfig) -> Result<(), MachineError> {
    if config.kernel.is_none() && (config.initrd.is_some() || config.append.is_some()) {
        return Err(MachineError::Setup(
            "--initrd and --append need --kernel".to_owned(),
        ));
    }
    if config.memory < MIN_MEMORY {
        return Err(MachineError::Setup(format!(
            "--memory {} MiB is too little for the pc machine: SeaBIOS needs at least {} MiB",
            config.memory >> 20,
            MIN_MEMORY >> 20
        )));
    }
    if !(1..=MAX_CPUS).contains(&config.smp) {
        return Err(MachineError::Setup(format!(
            "--smp {}: the pc machine takes 1 to {MAX_CPUS} CPUs",
            config.smp
        )));
    }
    Ok(())
}

impl Pc {
    /// Builds the machine described by `config` with its serial console on
    /// `console`.
    pub fn build(
        config: &MachineConfig,
        console: Console,
        control: Arc<RunControl>,
    ) -> Result<Pc, MachineError> {
        check_supported(config)?;
        let model = cpu_model(config.cpu.as_deref())?;
        let (_, bios) = read_bios(config.bios.as_ref())?;
        let layout = Layout::new(config.memory, bios.len() as u64);
        let split = layout.split;
        let ram = Arc::new(GuestRam::new(layout.backing)?);
        let clock = Arc::new(if config.deterministic {
            VirtualClock::instruction_counted(CLOCK_HZ, DETERMINISTIC_INSNS_PER_TICK)
        } else {
            VirtualClock::host(CLOCK_HZ)
        });
        let mut bus = Bus::with_backing(ram.clone(), control.clone());
        bus.map_ram("ram (low)", GuestPhysAddr(0), 0, LOW_RAM_END)?;
        bus.map_ram(
            "ram",
            GuestPhysAddr(HIGH_RAM_START),
            HIGH_RAM_START,
            split.below_4g - HIGH_RAM_START,
        )?;
        if split.above_4g > 0 {
            bus.map_ram(
                "ram (above 4 GiB)",
                GuestPhysAddr(FOUR_GIB),
                split.below_4g,
                split.above_4g,
            )?;
        }
        let bios_len = bios.len() as u64;
        bus.map_rom(
            "bios",
            GuestPhysAddr(FOUR_GIB - bios_len),
            layout.bios_offset,
            &bios,
        )?;
        // The ROM side of the BIOS area: zeros (QEMU's pc.rom), with the
        // BIOS's last 128 KiB (or all of a smaller one) ending at 1 MiB.
        let isa_bios = &bios[bios.len() - bios_len.min(ISA_BIOS_MAX) as usize..];
        let shadow_size = SHADOW_BLOCK * SHADOW_BLOCKS as u64;
        ram.write_bytes(
            layout.shadow_rom_offset + shadow_size - isa_bios.len() as u64,
            isa_bios,
        );
        let blocks: Vec<SwitchableBlock> = (0..SHADOW_BLOCKS as u64)
            .map(|k| SwitchableBlock {
                ram_offset: SHADOW_BASE + k * SHADOW_BLOCK,
                rom_offset: layout.shadow_rom_offset + k * SHADOW_BLOCK,
            })
            .collect();
        let shadow = bus.map_switchable(
            "bios area",
            GuestPhysAddr(SHADOW_BASE),
            SHADOW_BLOCK,
            &blocks,
        )?;

        // Interrupts: the i8259 pair and the I/O APIC both take the ISA
        // lines (IRQ 0 on the I/O APIC's pin 2, as the MADT's override
        // says); each CPU's local APIC delivers to it, the bootstrap
        // processor's with the i8259 behind LINT0.
        let pic = Arc::new(I8259::new(control.clone()));
        let apic_bus = ApicBus::new(
            config.smp as usize,
            Some(pic.clone() as Arc<dyn emu_core::InterruptAcknowledge>),
            clock.clone(),
            control.clone(),
        );
        let io_apic = IoApic::new(apic_bus.clone());
        bus.map_mmio(
            "ioapic",
            GuestPhysAddr(apic::IO_APIC_BASE),
            apic::IO_APIC_SIZE,
            Box::new(io_apic.registers()),
        )?;
        bus.map_mmio(
            "apic messages",
            GuestPhysAddr(apic::LOCAL_APIC_BASE),
            apic::MSI_WINDOW_SIZE,
            Box::new(apic_bus.msi_window()),
        )?;
        let isa_irq = |irq: usize| -> Arc<dyn emu_core::IrqLine> {
            let pin = if irq == PIT_IRQ { IO_APIC_PIT_PIN } else { irq };
            Arc::new(IrqFanout(vec![
                pic.input(irq),
                Arc::new(io_apic.input(pin)),
            ]))
        };
        let map_pio = |bus: &mut Bus, name: &str, port: u16, len: u32, device| {
            bus.map_pio(name, PioPort(port), len, device)
        };
        map_pio(
            &mut bus,
            "pic (master)",
            i8259::MASTER_PORT,
            i8259::PORT_COUNT,
            Box::new(pic.master_ports()),
        )?;
        map_pio(
            &mut bus,
            "pic (slave)",
            i8259::SLAVE_PORT,
            i8259::PORT_COUNT,
            Box::new(pic.slave_ports()),
        )?;
        map_pio(
            &mut bus,
            "elcr",
            i8259::ELCR_PORT,
            i8259::PORT_COUNT,
            Box::new(pic.elcr_ports()),
        )?;
        let pit = I8254::new(clock.clone(), isa_irq(PIT_IRQ));
        map_pio(
            &mut bus,
            "pit",
            i8254::PIT_PORT,
            i8254::PIT_PORT_COUNT,
            Box::new(pit.ports()),
        )?;
        map_pio(
            &mut bus,
            "port 61",
            i8254::SPEAKER_PORT,
            i8254::SPEAKER_PORT_COUNT,
            Box::new(pit.speaker_port()),
        )?;
        let mut rtc = Mc146818::new(rtc_time(config, clock.clone()));
        rtc.set_irq(Box::new(isa_irq(RTC_IRQ)));
        rtc.set_pc_memory(split);
        rtc.set_pc_cpu_count(config.smp);
        rtc.set_pc_floppy_drives([None, None]);
        // QEMU's default boot order: disk, floppy, CD-ROM.
        rtc.set_pc_boot_order("cad", true)
            .map_err(|e| MachineError::Setup(e.to_string()))?;
        map_pio(
            &mut bus,
            "rtc",
            mc146818::PORT_BASE,
            u32::from(mc146818::PORT_COUNT),
            Box::new(rtc),
        )?;
        map_pio(
            &mut bus,
            "post",
            0x80,
            1,
            Box::new(PostPort::new(Default::default())),
        )?;
        let a20 = A20Gate::new(true);
        map_pio(
            &mut bus,
            "port a",
            pc_ports::SYSTEM_CONTROL_A_PORT,
            1,
            Box::new(SystemControlA::new(a20.clone(), control.clone())),
        )?;
        let keyboard_controller = I8042::new(
            Box::new(isa_irq(i8042::KEYBOARD_IRQ)),
            Box::new(isa_irq(i8042::MOUSE_IRQ)),
            a20.clone(),
            control.clone(),
        );
        // The window's keys and pointer go to the PS/2 keyboard and mouse.
        let keyboard = InputHandle::default();
        let tablet = InputHandle::default();
        keyboard_controller.connect_host(keyboard.clone(), tablet.clone());
        map_pio(
            &mut bus,
            "i8042 data",
            i8042::DATA_PORT,
            i8042::PORT_COUNT,
            Box::new(keyboard_controller.data_port()),
        )?;
        map_pio(
            &mut bus,
            "i8042 command",
            i8042::COMMAND_PORT,
            i8042::PORT_COUNT,
            Box::new(keyboard_controller.command_port()),
        )?;
        let mut uart = Uart16550::new(console.output, console.input);
        uart.set_irq(Box::new(isa_irq(COM1_IRQ)));
        map_pio(&mut bus, "com1", 0x3f8, 8, Box::new(PortWindow(uart)))?;
        map_pio(
            &mut bus,
            "debugcon",
            debugcon::SEABIOS_PORT,
            1,
            Box::new(DebugCon::new(open_output(&config.debugcon)?)),
        )?;
        let mut user_virtio = config
            .drives
            .iter()
            .filter(|d| d.interface == DriveInterface::Virtio)
            .map(|drive| UserVirtio::disk(drive, true))
            .collect::<Result<Vec<_>, _>>()?;
        let mut chooser = VirtioChooser::default();
        for device in &config.devices {
            if let Some(user) = chooser.choose(config, device, VIRTIO_DEVICES)? {
                user_virtio.push(user);
                continue;
            }
            match device.driver.as_str() {
                "isa-debug-exit" => {
                    device
                        .check_options(&["iobase", "iosize"])
                        .map_err(MachineError::Setup)?;
                    let number = |key: &str, default: u32| -> Result<u32, MachineError> {
                        device.option(key).map_or(Ok(default), |text| {
                            parse_number(text).ok_or_else(|| {
                                MachineError::Setup(format!(
                                    "isa-debug-exit: invalid {key} '{text}'"
                                ))
                            })
                        })
                    };
                    let base = u16::try_from(number("iobase", 0x501)?).map_err(|_| {
                        MachineError::Setup("isa-debug-exit: iobase above 0xffff".to_owned())
                    })?;
                    let size = number("iosize", 2)?;
                    map_pio(
                        &mut bus,
                        "isa-debug-exit",
                        base,
                        size,
                        Box::new(IsaDebugExit::new(control.clone())),
                    )?;
                }
                other => {
                    let available: Vec<&str> = ["isa-debug-exit"]
                        .into_iter()
                        .chain(VIRTIO_DEVICES.iter().copied())
                        .collect();
                    return Err(unknown_device("pc", other, &available));
                }
            }
        }
        chooser.check_netdevs_used(config)?;

        // The PIIX4's hotplug registers, which SeaBIOS's ACPI tables read.
        map_pio(
            &mut bus,
            "acpi gpe0",
            acpi_hotplug::GPE0_PORT,
            acpi_hotplug::GPE0_LEN,
            Box::new(acpi_hotplug::GpeBlock::new()),
        )?;
        map_pio(
            &mut bus,
            "acpi pci hotplug",
            acpi_hotplug::PCI_HOTPLUG_PORT,
            acpi_hotplug::PCI_HOTPLUG_LEN,
            Box::new(acpi_hotplug::PciHotplug),
        )?;
        map_pio(
            &mut bus,
            "acpi cpu hotplug",
            acpi_hotplug::CPU_HOTPLUG_PORT,
            acpi_hotplug::CPU_HOTPLUG_LEN,
            Box::new(acpi_hotplug::CpuHotplug::new(config.smp)),
        )?;

        // fw_cfg: what SeaBIOS learns of the machine.
        let memory = GuestMemoryHandle::with_len(ram.clone(), 0, split.below_4g)
            .map_err(|e| MachineError::Setup(e.to_string()))?;
        let mut fw = FwCfg::new(Some(memory.clone()));
        let cpus = u16::try_from(config.smp).unwrap_or(u16::MAX);
        let fw_err = |e: fw_cfg::FwCfgError| MachineError::Setup(format!("fw_cfg: {e}"));
        fw.set_u64(fw_cfg::key::RAM_SIZE, config.memory)
            .map_err(fw_err)?;
        fw.set_u16(fw_cfg::key::NB_CPUS, cpus).map_err(fw_err)?;
        fw.set_u16(fw_cfg::key::MAX_CPUS, cpus).map_err(fw_err)?;
        fw.set_u16(fw_cfg::key::NOGRAPHIC, 0).map_err(fw_err)?;
        // The PIT reaches the I/O APIC on pin 2: SeaBIOS's MADT says so.
        fw.set_u32(fw_cfg::key::X86_IRQ0_OVERRIDE, 1)
            .map_err(fw_err)?;
        fw.set_u16(fw_cfg::key::BOOT_MENU, 0).map_err(fw_err)?;
        fw.add_file("etc/e820", e820_table(split)).map_err(fw_err)?;
        // QEMU's -boot reboot-timeout default: with no boot device, SeaBIOS
        // waits rather than rebooting after 60 s.
        fw.add_file("etc/boot-fail-wait", u32::MAX.to_le_bytes().to_vec())
            .map_err(fw_err)?;
        if let Some(kernel) = &config.kernel {
            add_kernel(&mut fw, config, kernel, split.below_4g)?;
        }
        map_pio(
            &mut bus,
            "fw_cfg",
            fw_cfg::PORT_BASE,
            u32::from(fw_cfg::PORT_COUNT),
            Box::new(fw),
        )?;

        // PCI: the i440FX at 00.0, the PIIX3 and its PM function at 01.x. The
        // host swizzles INTx as gpex does, `(slot + pin - 1) % 4`; the PIIX
        // wants `(slot + pin - 2) % 4`, so host line k is PIRQ (k + 3) % 4.
        let router = PirqRouter::new((0..piix3::ISA_IRQS).map(isa_irq).collect());
        let intx: [Box<dyn emu_core::IrqLine>; 4] =
            std::array::from_fn(|line| router.pirq_line((line + 3) % 4));
        let mut pci = devices::pci::PciHost::with_host_bridge(
            Box::new(I440fx::with_shadow(shadow)),
            intx,
            Some(apic_bus.clone() as Arc<dyn emu_core::MsiTarget>),
        );
        let pci_error = |e: devices::pci::PciError| MachineError::Setup(e.to_string());
        pci.add_function(PIIX_SLOT, 0, Box::new(Piix3::with_router(router)))
            .map_err(pci_error)?;
        let pm_clock = clock.clone();
        let pm = AcpiPm::new(
            Box::new(move || pm_clock.now()),
            CLOCK_HZ,
            control.clone(),
            Some(Box::new(isa_irq(SCI_IRQ))),
        );
        pci.add_function(PIIX_SLOT, PIIX_PM_FUNCTION, Box::new(Piix4Pm::new(pm)))
            .map_err(pci_error)?;
        let ide = PiixIde::new(
            ide_drives(config)?,
            IDE_IRQS.map(|irq| Box::new(isa_irq(irq)) as Box<dyn emu_core::IrqLine>),
            memory.clone(),
        )
        .map_err(pci_error)?;
        pci.add_function(PIIX_SLOT, PIIX_IDE_FUNCTION, Box::new(ide))
            .map_err(pci_error)?;
        // The VGA at 02.0 as QEMU's `-vga std`, with Debian's VGA BIOS as its
        // option ROM, which SeaBIOS runs; its legacy window at 0xA0000 (its
        // ports come through the PCI bus like any unclaimed port).
        let vga_bios = read_input(
            std::path::Path::new(VGA_BIOS),
            "the VGA BIOS (package seabios)",
        )?;
        let vga_function =
            StdVga::new(vga_bios, devices::vga::DEFAULT_VRAM_SIZE).map_err(pci_error)?;
        let vga = vga_function.handle();
        pci.add(Box::new(vga_function)).map_err(pci_error)?;
        bus.map_mmio(
            "vga window",
            GuestPhysAddr(devices::vga::MEMORY_WINDOW_BASE),
            devices::vga::MEMORY_WINDOW_SIZE,
            Box::new(vga.memory_window()),
        )?;
        // The user's devices take the free slots from 3 in command-line order,
        // as on QEMU's pc without its default NIC. They reach RAM below
        // 4 GiB (DMA above it is not modelled yet), and interrupt through
        // MSI-X to the local APICs or INTx.
        let mut nics = Vec::new();
        for user in &user_virtio {
            let device = user.open(config, &control, &mut nics)?;
            let function = VirtioPci::new(device, memory.clone()).map_err(pci_error)?;
            pci.add(Box::new(function)).map_err(pci_error)?;
        }
        let pci = SharedPciHost::new(pci);
        map_pio(
            &mut bus,
            "pci config",
            pc_ports::PCI_CONFIG_PORT,
            devices::pci::host::CONFIG_PORTS_SIZE,
            Box::new(WithResetControl {
                config: pci
                    .config_ports()
                    .with_lifecycle(devices::pci::host::Lifecycle::Owner),
                reset_control: ResetControl::new(control.clone()),
            }),
        )?;
        bus.map_background_pio("pci i/o", Box::new(pci.pio_ports(0)))?;
        bus.map_mmio(
            "pci memory",
            GuestPhysAddr(split.below_4g),
            PCI_HOLE_END - split.below_4g,
            Box::new(pci.mmio_window(split.below_4g)),
        )?;

        let bus = Arc::new(bus);
        let cpus = apic_bus
            .local_apics()
            .iter()
            .enumerate()
            .map(|(index, local_apic)| {
                let mut cpu = Cpu::new(model, bus.clone());
                cpu.connect_local_apic(local_apic.clone(), index as u8, index == 0);
                let a20 = a20.clone();
                cpu.connect_a20(Arc::new(move || a20.is_open()));
                cpu.connect_time_stamp_clock(clock.clone());
                // The CPUs take turns: a spinning one gives its turn up.
                cpu.set_yield_on_pause(config.smp > 1);
                cpu
            })
            .collect();
        let mut machine = Pc {
            cpus,
            bus,
            clock,
            control,
            keyboard,
            tablet,
            vga,
            nics,
        };
        machine.reset_cpus();
        Ok(machine)
    }

    /// Every CPU at the reset vector.
    fn reset_cpus(&mut self) {
        for cpu in &mut self.cpus {
            cpu.reset();
        }
    }

    /// Runs until the guest powers off, a limit passes or the host stops it;
    /// a reset (the guest's or a triple fault) resets every device and CPU
    /// and the run goes on.
    fn run_watched(
        &mut self,
        limit: Option<Duration>,
        max_instructions: Option<u64>,
        watch: &mut dyn FnMut() -> Option<RunOutcome>,
    ) -> Result<RunOutcome, MachineError> {
        let deadline = limit.map(|l| Instant::now() + l);
        loop {
            let parts = MachineParts {
                bus: &self.bus,
                clock: &self.clock,
                control: &self.control,
            };
            let limits = super::limits_left(deadline, max_instructions);
            let end = cpu::run_interleaved(&mut self.cpus, parts, limits, watch);
            match super::outcome_of(end) {
                Some(outcome) => return Ok(outcome),
                None => {
                    self.control.clear();
                    Machine::reset(self)?;
                }
            }
        }
    }
}

/// The RTC's wall clock: the host's, or in a deterministic run a seeded start
/// advancing with virtual time.
fn rtc_time(config: &MachineConfig, clock: Arc<VirtualClock>) -> goldfish_rtc::TimeSource {
    if config.deterministic {
        let start_ns = (DETERMINISTIC_EPOCH_SECONDS + config.seed % (365 * 86_400)) * 1_000_000_000;
        Box::new(move || start_ns + clock.now())
    } else {
        goldfish_rtc::host_time()
    }
}

/// Reads a file named on the command line.
fn read_input(path: &std::path::Path, what: &str) -> Result<Vec<u8>, MachineError> {
    std::fs::read(path)
        .map_err(|e| MachineError::Setup(format!("cannot read {what} {}: {e}", path.display())))
}

/// Reads one of QEMU's option ROMs, naming the package on failure.
fn read_option_rom(path: &str) -> Result<Vec<u8>, MachineError> {
    std::fs::read(path).map_err(|e| {
        MachineError::Setup(format!(
            "cannot read {path} ({e}): install Debian's qemu-system-data package (cargo xtask setup does)"
        ))
    })
}

/// Puts `--kernel` (with `--initrd` and `--append`) into fw_cfg as QEMU's
/// `-kernel` does, with the option ROM that boots it, made first in the boot
/// order: a Linux bzImage through `linuxboot_dma.bin`, a Multiboot kernel
/// through `multiboot_dma.bin`.
fn add_kernel(
    fw: &mut FwCfg,
    config: &MachineConfig,
    kernel: &std::path::Path,
    ram_end: u64,
) -> Result<(), MachineError> {
    let image = read_input(kernel, "kernel")?;
    let append = config.append.as_deref().unwrap_or("");
    let fw_err = |e: fw_cfg::FwCfgError| MachineError::Setup(format!("fw_cfg: {e}"));
    let len = |data: &[u8]| u32::try_from(data.len()).unwrap_or(u32::MAX);
    use fw_cfg::key;
    let rom_name = if x86_linux::is_bzimage(&image) {
        let initrd = config
            .initrd
            .as_deref()
            .map(|path| read_input(path, "initrd"))
            .transpose()?;
        let boot = LinuxBoot::new(
            &image,
            append,
            initrd.as_ref().map(|i| i.len() as u64),
            ram_end,
            FIRMWARE_RESERVED_TOP,
        )
        .map_err(|e| MachineError::Setup(format!("kernel {}: {e}", kernel.display())))?;
        fw.set_u32(key::KERNEL_ADDR, x86_linux::KERNEL_ADDR)
            .map_err(fw_err)?;
        fw.set_u32(key::KERNEL_SIZE, len(&boot.kernel))
            .map_err(fw_err)?;
        fw.set_item(key::KERNEL_DATA, boot.kernel).map_err(fw_err)?;
        fw.set_u32(key::SETUP_ADDR, x86_linux::REAL_MODE_ADDR)
            .map_err(fw_err)?;
        fw.set_u32(key::SETUP_SIZE, len(&boot.setup))
            .map_err(fw_err)?;
        fw.set_item(key::SETUP_DATA, boot.setup).map_err(fw_err)?;
        fw.set_u32(key::CMDLINE_ADDR, x86_linux::CMDLINE_ADDR)
            .map_err(fw_err)?;
        fw.set_u32(key::CMDLINE_SIZE, len(&boot.cmdline))
            .map_err(fw_err)?;
        fw.set_item(key::CMDLINE_DATA, boot.cmdline)
            .map_err(fw_err)?;
        if let (Some(addr), Some(initrd)) = (boot.initrd_addr, initrd) {
            fw.set_u32(key::INITRD_ADDR, addr).map_err(fw_err)?;
            fw.set_u32(key::INITRD_SIZE, len(&initrd)).map_err(fw_err)?;
            fw.set_item(key::INITRD_DATA, initrd).map_err(fw_err)?;
        }
        "linuxboot_dma.bin"
    } else if multiboot::find_header(&image).is_some() {
        // --initrd lists the modules, comma-separated, each a path and
        // then its arguments, as QEMU takes them.
        let modules = match config.initrd.as_deref() {
            None => Vec::new(),
            Some(list) => list
                .to_string_lossy()
                .split(',')
                .map(|text| {
                    let path = text.split(' ').next().unwrap_or(text);
                    Ok(multiboot::Module {
                        cmdline: text.to_owned(),
                        data: read_input(std::path::Path::new(path), "module")?,
                    })
                })
                .collect::<Result<Vec<_>, MachineError>>()?,
        };
        let boot = MultibootBoot::new(&image, &kernel.to_string_lossy(), append, &modules)
            .map_err(|e| MachineError::Setup(format!("kernel {}: {e}", kernel.display())))?;
        fw.set_u32(key::KERNEL_ENTRY, boot.entry).map_err(fw_err)?;
        fw.set_u32(key::KERNEL_ADDR, boot.load_addr)
            .map_err(fw_err)?;
        fw.set_u32(key::KERNEL_SIZE, len(&boot.image))
            .map_err(fw_err)?;
        fw.set_item(key::KERNEL_DATA, boot.image).map_err(fw_err)?;
        fw.set_u32(key::INITRD_ADDR, multiboot::INFO_ADDR)
            .map_err(fw_err)?;
        fw.set_u32(key::INITRD_SIZE, len(&boot.info))
            .map_err(fw_err)?;
        fw.set_item(key::INITRD_DATA, boot.info.to_vec())
            .map_err(fw_err)?;
        "multiboot_dma.bin"
    } else {
        return Err(MachineError::Setup(format!(
            "kernel {}: neither a Linux bzImage nor a Multiboot kernel",
            kernel.display()
        )));
    };
    let rom = read_option_rom(&format!("{OPTION_ROMS}/{rom_name}"))?;
    fw.add_file(&format!("genroms/{rom_name}"), rom)
        .map_err(fw_err)?;
    // Boot the kernel first, as QEMU's -kernel does.
    fw.add_file(
        "bootorder",
        format!("/rom@genroms/{rom_name}\n").into_bytes(),
    )
    .map_err(fw_err)?;
    Ok(())
}

/// A number as QEMU's options take it: decimal or 0x-prefixed hexadecimal.
fn parse_number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Builds `pc` for [`super::MACHINES`]. A PC has no built-in demo: it boots
/// its BIOS.
pub fn build_machine(
    config: &MachineConfig,
    console: Console,
    control: Arc<RunControl>,
    _demo: &[u8],
) -> Result<Box<dyn Machine>, MachineError> {
    Ok(Box::new(Pc::build(config, console, control)?))
}

impl Machine for Pc {
    fn device_report(&self) -> Vec<String> {
        self.nics.iter().map(NicCounters::line).collect()
    }

    fn run(
        &mut self,
        limit: Option<Duration>,
        max_instructions: Option<u64>,
        watch: &mut dyn FnMut() -> Option<RunOutcome>,
    ) -> Result<RunOutcome, MachineError> {
        self.run_watched(limit, max_instructions, watch)
    }

    fn reset(&mut self) -> Result<(), MachineError> {
        // RAM keeps its contents over a reset, as on a PC; the chipset's
        // reset puts the BIOS area back to ROM.
        self.bus.reset_devices();
        self.reset_cpus();
        Ok(())
    }

    fn screen_source(&self) -> ScreenSource {
        let vga = self.vga.clone();
        ScreenSource::new(move || vga.snapshot())
    }

    fn keyboard(&self) -> InputHandle {
        self.keyboard.clone()
    }

    fn tablet(&self) -> InputHandle {
        self.tablet.clone()
    }

    fn device_tree(&self) -> Option<&[u8]> {
        None
    }

    fn enable_jit(&mut self, _threshold: u32) -> Result<(), String> {
        // The x86 CPU has no translator yet: it interprets.
        tracing::info!("pc: the x86 CPU interprets (no JIT yet)");
        Ok(())
    }

    fn instructions_retired(&self) -> u64 {
        self.cpus.iter().map(Cpu::executed).sum()
    }

    fn traps_taken(&self) -> u64 {
        0
    }

    fn where_report(&mut self, _count: usize) -> String {
        let mut report = String::new();
        for (index, cpu) in self.cpus.iter().enumerate() {
            let cs = cpu.state.seg(cpu_x86::SegReg::Cs);
            report += &format!(
                "  cpu {index}: {:04x}:{:x} (linear {:#x}), {}{}\n",
                cs.selector,
                cpu.state.rip,
                cs.base.wrapping_add(cpu.state.rip),
                if cpu.long_mode() {
                    "long mode"
                } else if cpu.real_mode() {
                    "real mode"
                } else {
                    "protected mode"
                },
                if cpu.is_halted() { ", halted" } else { "" },
            );
            if let Some((fault, at)) = cpu.last_exception() {
                report += &format!("    last exception: vector {} at {at:#x}\n", fault.vector);
            }
        }
        report
    }

    fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    fn debug_cpu(&mut self, index: usize) -> Option<&mut dyn DebugCpu> {
        self.cpus.get_mut(index).map(|cpu| cpu as &mut dyn DebugCpu)
    }

    fn debug_slice(&mut self, step: Option<usize>) -> Result<DebugEvent, MachineError> {
        let mut event = DebugEvent::Ran;
        let mut all_halted = step.is_none();
        match step {
            Some(index) => {
                let cpu = self
                    .cpus
                    .get_mut(index)
                    .ok_or_else(|| MachineError::Setup(format!("no cpu {index}")))?;
                if cpu.debug_step() == RunExit::Shutdown {
                    self.control.request_stop(StopReason::Reset);
                }
                event = match cpu.take_debug_stop() {
                    Some(stop) => DebugEvent::Stopped { cpu: index, stop },
                    None => DebugEvent::Stepped(index),
                };
            }
            None => {
                for (index, cpu) in self.cpus.iter_mut().enumerate() {
                    let exit = cpu.run(DEBUG_SLICE);
                    if exit != RunExit::Halted {
                        all_halted = false;
                    }
                    if exit == RunExit::Shutdown {
                        self.control.request_stop(StopReason::Reset);
                    }
                    if exit == RunExit::Debug
                        && let Some(stop) = cpu.take_debug_stop()
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
            Machine::reset(self)?;
        }
        super::tick_after_debug_slice(&self.bus, &self.clock, all_halted);
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e820_lists_ram_below_and_above_4g() {
        let table = e820_table(PcRamSplit::for_ram_size(128 << 20));
        assert_eq!(table.len(), 20);
        assert_eq!(&table[8..16], &(128u64 << 20).to_le_bytes());
        let big = e820_table(PcRamSplit::for_ram_size(4 << 30));
        assert_eq!(big.len(), 40);
        assert_eq!(&big[20..28], &FOUR_GIB.to_le_bytes());
    }

    #[test]
    fn layout_keeps_ram_then_bios_then_the_rom_side() {
        let layout = Layout::new(128 << 20, 256 << 10);
        assert_eq!(layout.bios_offset, 128 << 20);
        assert_eq!(layout.shadow_rom_offset, (128 << 20) + (256 << 10));
        assert_eq!(layout.backing, layout.shadow_rom_offset + (256 << 10));
    }

    #[test]
    fn options_take_qemus_numbers() {
        assert_eq!(parse_number("0xf4"), Some(0xf4));
        assert_eq!(parse_number("4"), Some(4));
        assert_eq!(parse_number("x"), None);
        assert!(cpu_model(Some("nope")).is_err());
        assert_eq!(cpu_model(None).unwrap().name, CpuModel::DEFAULT.name);
    }

    #[test]
    fn a_missing_bios_file_is_named() {
        let choice = BiosChoice::File(PathBuf::from("/nonexistent/bios.bin"));
        let err = read_bios(Some(&choice)).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/bios.bin"), "{err}");
    }
}
