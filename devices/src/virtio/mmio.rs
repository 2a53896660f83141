//! The virtio-mmio transport, version 2 (VIRTIO 1.x §4.2.2).
//!
//! Registers are 32 bits wide and must be accessed as aligned 32-bit words; other
//! accesses to them read 0 and are ignored on write, as QEMU does. Device
//! configuration space, at 0x100, takes any width.
//!
//! This is a register layout over [`VirtioTransportCore`], which does the
//! transport's work (negotiation, status, queues, processing); the layout adds the
//! InterruptStatus register and its level-triggered line.
//!
//! A saved transport ([`emu_core::Device::save_state`]) holds its registers, each
//! queue's ring positions and the device model's own state; a restore rebuilds the
//! live queues from them, so a device saved between two notifications takes up the
//! buffers made available since as if nothing happened.

use std::fmt;

use emu_core::{BusFault, Device, DeviceState, IrqLine, MmioDevice, StateError};
use serde::{Deserialize, Serialize};

use super::memory::GuestMemoryHandle;
use super::queue::QueueAccess;
use super::transport::{VirtioTransportCore, VirtioTransportState};
use super::{DEVICE_ID_NONE, VirtioDevice};
use crate::state::NoState;

pub use super::transport::QueueRegs;

/// Size of a virtio-mmio register window.
pub const MMIO_SIZE: u64 = 0x1000;

/// "virt", little-endian.
const MAGIC: u32 = 0x7472_6976;
const VERSION: u32 = 2;
/// "QEMU", as QEMU reports, so guests treat us the same way.
const VENDOR_ID: u32 = 0x554d_4551;

const MAGIC_VALUE: u64 = 0x000;
const VERSION_REG: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const VENDOR_ID_REG: u64 = 0x00c;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DESC_HIGH: u64 = 0x084;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DRIVER_HIGH: u64 = 0x094;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
const SHM_LEN_LOW: u64 = 0x0b0;
const SHM_BASE_HIGH: u64 = 0x0bc;
const CONFIG_GENERATION: u64 = 0x0fc;
const CONFIG: u64 = 0x100;

/// Layout version of a saved transport (its kind is `virtio-mmio/<device name>`).
const STATE_VERSION: u32 = 1;

/// The transport's register state, apart from the device and host connections:
/// the registers every virtio transport has (virtio-mmio adds none).
pub type VirtioMmioState = VirtioTransportState;

/// What a transport saves: its registers with the queues' ring positions, and
/// the device model's state nested inside. Left out are host handles: the guest
/// memory view, the interrupt line, and the live `virtio_queue::Queue`s, which
/// are rebuilt from the registers.
#[derive(Serialize, Deserialize)]
struct SavedTransport {
    registers: VirtioMmioState,
    device: DeviceState,
}

/// A virtio device behind a virtio-mmio register window.
pub struct VirtioMmio {
    core: VirtioTransportCore,
    irq: Option<Box<dyn IrqLine>>,
    irq_level: bool,
}

impl fmt::Debug for VirtioMmio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtioMmio")
            .field("device", &self.core.device().name())
            .field("state", &self.core.state())
            .finish_non_exhaustive()
    }
}

/// What an empty slot holds: device ID 0, no features, no queues.
struct EmptySlot;

impl VirtioDevice for EmptySlot {
    fn device_type(&self) -> u32 {
        DEVICE_ID_NONE
    }
    fn name(&self) -> &'static str {
        "virtio-empty"
    }
    fn features(&self) -> u64 {
        0
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[]
    }
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn process_queue(
        &mut self,
        _index: usize,
        _queue: &mut QueueAccess<'_>,
    ) -> Result<(), super::DeviceError> {
        Ok(())
    }
    fn save_state(&self) -> DeviceState {
        DeviceState::encode(self.name(), 1, &NoState {})
    }
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let NoState {} = state.decode(self.name(), 1)?;
        Ok(())
    }
}

impl VirtioMmio {
    /// `device` behind a register window; it reaches guest RAM through `mem` and
    /// interrupts the guest through `irq` (level-triggered).
    pub fn new(
        device: Box<dyn VirtioDevice>,
        mem: GuestMemoryHandle,
        irq: Box<dyn IrqLine>,
    ) -> VirtioMmio {
        VirtioMmio::build(device, Some(mem), Some(irq))
    }

    /// An empty slot: reads as a virtio-mmio window with device ID 0.
    pub fn empty() -> VirtioMmio {
        VirtioMmio::build(Box::new(EmptySlot), None, None)
    }

    fn build(
        device: Box<dyn VirtioDevice>,
        mem: Option<GuestMemoryHandle>,
        irq: Option<Box<dyn IrqLine>>,
    ) -> VirtioMmio {
        VirtioMmio {
            core: VirtioTransportCore::new(device, mem),
            irq,
            irq_level: false,
        }
    }

    /// A copy of the register state (with each queue's ring positions).
    pub fn state(&self) -> VirtioMmioState {
        self.core.state()
    }

    /// Whether the device broke on a driver error and waits for a reset.
    pub fn needs_reset(&self) -> bool {
        self.core.needs_reset()
    }

    /// Turns what the core raised into InterruptStatus bits and drives the line
    /// to match them.
    fn sync_irq(&mut self) {
        let events = self.core.take_events();
        self.core.raise_interrupt(events.interrupt_bits());
        let level = self.core.interrupt_status() != 0;
        if level != self.irq_level {
            self.irq_level = level;
            if let Some(irq) = &self.irq {
                irq.set_level(level);
            }
        }
    }

    fn read_register(&self, offset: u64) -> u32 {
        let core = &self.core;
        let queue = core.queue();
        match offset {
            MAGIC_VALUE => MAGIC,
            VERSION_REG => VERSION,
            DEVICE_ID => core.device().device_type(),
            VENDOR_ID_REG => VENDOR_ID,
            DEVICE_FEATURES => core.device_features_word(),
            QUEUE_NUM_MAX => u32::from(core.queue_max_size()),
            QUEUE_NUM => queue.map_or(0, |q| u32::from(q.size)),
            QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready)),
            INTERRUPT_STATUS => core.interrupt_status(),
            STATUS => core.status(),
            QUEUE_DESC_LOW => queue.map_or(0, |q| q.desc as u32),
            QUEUE_DESC_HIGH => queue.map_or(0, |q| (q.desc >> 32) as u32),
            QUEUE_DRIVER_LOW => queue.map_or(0, |q| q.driver as u32),
            QUEUE_DRIVER_HIGH => queue.map_or(0, |q| (q.driver >> 32) as u32),
            QUEUE_DEVICE_LOW => queue.map_or(0, |q| q.device as u32),
            QUEUE_DEVICE_HIGH => queue.map_or(0, |q| (q.device >> 32) as u32),
            // No shared memory regions: their length and base read as all ones.
            SHM_LEN_LOW..=SHM_BASE_HIGH => u32::MAX,
            CONFIG_GENERATION => core.config_generation(),
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        use super::transport::{set_high, set_low};
        let core = &mut self.core;
        match offset {
            DEVICE_FEATURES_SEL => core.set_device_features_sel(value),
            DRIVER_FEATURES => core.write_driver_features(value),
            DRIVER_FEATURES_SEL => core.set_driver_features_sel(value),
            QUEUE_SEL => core.set_queue_sel(value),
            QUEUE_NUM => {
                if let Some(regs) = core.queue_setup() {
                    // An impossible size stays impossible: enabling the queue fails.
                    regs.size = u16::try_from(value).unwrap_or(0);
                }
            }
            QUEUE_READY => core.set_queue_ready(value & 1 != 0),
            // Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index.
            QUEUE_NOTIFY => core.notify(value as usize & 0xffff),
            INTERRUPT_ACK => core.ack_interrupt(value),
            STATUS => core.write_status(value),
            QUEUE_DESC_LOW..=QUEUE_DEVICE_HIGH => {
                let Some(regs) = core.queue_setup() else {
                    return;
                };
                match offset {
                    QUEUE_DESC_LOW => set_low(&mut regs.desc, value),
                    QUEUE_DESC_HIGH => set_high(&mut regs.desc, value),
                    QUEUE_DRIVER_LOW => set_low(&mut regs.driver, value),
                    QUEUE_DRIVER_HIGH => set_high(&mut regs.driver, value),
                    QUEUE_DEVICE_LOW => set_low(&mut regs.device, value),
                    QUEUE_DEVICE_HIGH => set_high(&mut regs.device, value),
                    _ => {}
                }
            }
            // Read-only and unknown registers (SHMSel included) ignore writes.
            _ => {}
        }
    }

    /// Model name in saved states: the transport and the device model behind it,
    /// so a state never restores into a slot holding another kind of device.
    fn kind(&self) -> String {
        format!("virtio-mmio/{}", self.core.device().name())
    }
}

impl Device for VirtioMmio {
    /// The transport's power-on reset (Status 0: registers cleared, queues no
    /// longer ready, the line low) and the device model's.
    fn reset(&mut self) {
        self.core.reset();
        self.sync_irq();
    }

    fn save_state(&self) -> DeviceState {
        let saved = SavedTransport {
            registers: self.core.state(),
            device: self.core.save_device(),
        };
        DeviceState::encode(&self.kind(), STATE_VERSION, &saved)
    }

    /// Checks everything before changing anything: the queues must be the
    /// device's, and ready queues must lie in this machine's RAM. The interrupt
    /// line is driven to the restored InterruptStatus.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let kind = self.kind();
        let saved: SavedTransport = state.decode(&kind, STATE_VERSION)?;
        self.core.restore(saved.registers, &saved.device, &kind)?;
        self.irq_level = self.core.interrupt_status() != 0;
        if let Some(irq) = &self.irq {
            irq.set_level(self.irq_level);
        }
        Ok(())
    }
}

fn check_size(size: u8) -> Result<usize, BusFault> {
    match size {
        1 | 2 | 4 | 8 => Ok(usize::from(size)),
        _ => Err(BusFault::Unsupported),
    }
}

impl MmioDevice for VirtioMmio {
    fn tick(&mut self, _now: u64) -> Option<u64> {
        self.core.tick();
        self.sync_irq();
        None
    }

    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let width = check_size(size)?;
        if offset >= CONFIG {
            let mut bytes = [0u8; 8];
            self.core.read_config(offset - CONFIG, &mut bytes[..width]);
            return Ok(u64::from_le_bytes(bytes));
        }
        if width != 4 || !offset.is_multiple_of(4) {
            return Ok(0);
        }
        Ok(u64::from(self.read_register(offset)))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let width = check_size(size)?;
        if offset >= CONFIG {
            let bytes = value.to_le_bytes();
            self.core.write_config(offset - CONFIG, &bytes[..width]);
            return Ok(());
        }
        if width == 4 && offset.is_multiple_of(4) {
            self.write_register(offset, value as u32);
            self.sync_irq();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;
    use crate::virtio::testing::{Driver, TestIrq, copy_memory, test_memory};
    use crate::virtio::{DeviceError, VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC};
    use emu_core::GuestPhysAddr;

    /// A device with two queues that returns every chain with the number of
    /// writable bytes as its length, filling them with 0xaa.
    struct Echo {
        activated: Option<u64>,
        resets: u32,
        config: [u8; 8],
    }

    impl VirtioDevice for Echo {
        fn device_type(&self) -> u32 {
            42
        }
        fn name(&self) -> &'static str {
            "echo"
        }
        fn features(&self) -> u64 {
            VIRTIO_RING_F_INDIRECT_DESC | 1
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &[16, 8]
        }
        fn read_config(&self, offset: u64, data: &mut [u8]) {
            crate::virtio::copy_config(&self.config, offset, data);
        }
        fn write_config(&mut self, offset: u64, data: &[u8]) {
            for (i, b) in data.iter().enumerate() {
                if let Some(slot) = self.config.get_mut(offset as usize + i) {
                    *slot = *b;
                }
            }
        }
        fn activate(&mut self, features: u64) {
            self.activated = Some(features);
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
        fn process_queue(
            &mut self,
            _index: usize,
            queue: &mut QueueAccess<'_>,
        ) -> Result<(), DeviceError> {
            while let Some(chain) = queue.pop()? {
                let len = chain.writable_len() as usize;
                chain.write_at(queue.memory(), 0, &vec![0xaa; len])?;
                queue.add_used(chain.head, len as u32)?;
            }
            Ok(())
        }
        fn save_state(&self) -> DeviceState {
            DeviceState::encode("echo", 1, &(self.activated, self.resets, self.config))
        }
        fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
            (self.activated, self.resets, self.config) = state.decode("echo", 1)?;
            Ok(())
        }
    }

    fn echo() -> Box<Echo> {
        Box::new(Echo {
            activated: None,
            resets: 0,
            config: [1, 2, 3, 4, 5, 6, 7, 8],
        })
    }

    #[test]
    fn identification_registers() {
        let (mem, _ram) = test_memory();
        let mut dev = VirtioMmio::new(echo(), mem, Box::new(TestIrq::default()));
        assert_eq!(dev.read(0x000, 4), Ok(0x7472_6976));
        assert_eq!(dev.read(0x004, 4), Ok(2));
        assert_eq!(dev.read(0x008, 4), Ok(42));
        assert_eq!(dev.read(0x00c, 4), Ok(0x554d_4551));
        dev.write(0x014, 4, 0).unwrap();
        assert_eq!(dev.read(0x010, 4), Ok(u64::from(1u32 << 28 | 1)));
        dev.write(0x014, 4, 1).unwrap();
        assert_eq!(dev.read(0x010, 4), Ok(1), "VERSION_1 is offered");
        dev.write(0x014, 4, 2).unwrap();
        assert_eq!(dev.read(0x010, 4), Ok(0));
        dev.write(0x030, 4, 1).unwrap();
        assert_eq!(dev.read(0x034, 4), Ok(8));
        dev.write(0x030, 4, 2).unwrap();
        assert_eq!(dev.read(0x034, 4), Ok(0), "no third queue");
        assert_eq!(dev.read(0x0b0, 4), Ok(0xffff_ffff), "no shared memory");
        assert_eq!(dev.read(0x0fc, 4), Ok(0));
        // Config space at any width, zero past its end.
        assert_eq!(dev.read(0x100, 1), Ok(1));
        assert_eq!(dev.read(0x102, 2), Ok(0x0403));
        assert_eq!(dev.read(0x104, 8), Ok(0x0807_0605));
        dev.write(0x101, 1, 0xee).unwrap();
        assert_eq!(dev.read(0x100, 4), Ok(0x0403_ee01));
        // Registers want aligned 32-bit accesses.
        assert_eq!(dev.read(0x000, 2), Ok(0));
        assert_eq!(dev.read(0x002, 4), Ok(0));
        assert_eq!(dev.read(0x000, 3), Err(BusFault::Unsupported));
    }

    #[test]
    fn works_behind_the_bus() {
        use emu_core::{Bus, RunControl};
        use std::sync::Arc;
        let (mem, ram) = test_memory();
        let mut bus =
            Bus::new(GuestPhysAddr(0x8000_0000), ram, Arc::new(RunControl::new())).unwrap();
        let dev = VirtioMmio::new(echo(), mem, Box::new(TestIrq::default()));
        bus.map_mmio(
            "virtio0",
            GuestPhysAddr(0x1000_1000),
            MMIO_SIZE,
            Box::new(dev),
        )
        .unwrap();
        bus.map_mmio(
            "virtio1",
            GuestPhysAddr(0x1000_2000),
            MMIO_SIZE,
            Box::new(VirtioMmio::empty()),
        )
        .unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x1000_1000), 4), Ok(0x7472_6976));
        assert_eq!(bus.read(GuestPhysAddr(0x1000_1008), 4), Ok(42));
        assert_eq!(bus.read(GuestPhysAddr(0x1000_2008), 4), Ok(0));
        bus.write(GuestPhysAddr(0x1000_1070), 4, 1).unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x1000_1070), 4), Ok(1));
    }

    #[test]
    fn empty_slot_reads_as_device_zero() {
        let mut slot = VirtioMmio::empty();
        assert_eq!(slot.read(0x000, 4), Ok(0x7472_6976));
        assert_eq!(slot.read(0x004, 4), Ok(2));
        assert_eq!(slot.read(0x008, 4), Ok(0));
        assert_eq!(slot.read(0x010, 4), Ok(0));
        assert_eq!(slot.read(0x034, 4), Ok(0));
        // A confused driver cannot make it do anything.
        for (offset, value) in [(0x070, 0xf), (0x044, 1), (0x050, 0), (0x064, 3)] {
            slot.write(offset, 4, value).unwrap();
        }
        assert_eq!(slot.read(0x060, 4), Ok(0));
        assert_eq!(slot.read(0x100, 4), Ok(0));
    }

    #[test]
    fn feature_negotiation_requires_version_1_and_known_bits() {
        let (mem, _ram) = test_memory();
        let mut dev = VirtioMmio::new(echo(), mem, Box::new(TestIrq::default()));
        let negotiate = |dev: &mut VirtioMmio, features: u64| {
            dev.write(0x070, 4, 0).unwrap();
            dev.write(0x070, 4, 3).unwrap();
            dev.write(0x024, 4, 0).unwrap();
            dev.write(0x020, 4, features & 0xffff_ffff).unwrap();
            dev.write(0x024, 4, 1).unwrap();
            dev.write(0x020, 4, features >> 32).unwrap();
            dev.write(0x070, 4, 3 | 8).unwrap();
            dev.read(0x070, 4).unwrap() & 8 != 0
        };
        assert!(!negotiate(&mut dev, 0), "legacy driver refused");
        assert!(
            !negotiate(&mut dev, VIRTIO_F_VERSION_1 | 1 << 5),
            "unknown bit"
        );
        assert!(negotiate(&mut dev, VIRTIO_F_VERSION_1));
        assert!(negotiate(&mut dev, VIRTIO_F_VERSION_1 | 1 | 1 << 28));
        // After FEATURES_OK the driver features are frozen.
        dev.write(0x024, 4, 0).unwrap();
        dev.write(0x020, 4, 0).unwrap();
        assert_eq!(
            dev.state().driver_features,
            VIRTIO_F_VERSION_1 | 1 | 1 << 28
        );
    }

    #[test]
    fn driver_ok_activates_and_status_zero_resets() {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
        driver.init(VIRTIO_F_VERSION_1 | 1);
        assert_eq!(driver.status() & 0xf, 0xf);
        let head = driver.submit(0, &[(0x1_0000, 16, true)]);
        assert_eq!(driver.used(0, 0), Some((u32::from(head), 16)));
        assert!(irq.level());
        driver.write(0x070, 0);
        assert!(!irq.level(), "reset lowers the line");
        assert_eq!(driver.status(), 0);
        assert_eq!(driver.read(0x060), 0);
        assert_eq!(driver.read(0x044), 0, "queues are no longer ready");
        let state = driver.dev.state();
        assert_eq!(state.driver_features, 0);
        assert_eq!(state.queues[0].next_used, 0);
    }

    #[test]
    fn used_ring_and_interrupt_handshake() {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
        driver.init(VIRTIO_F_VERSION_1);
        let a = driver.submit(0, &[(0x1_0000, 4, true), (0x1_0100, 3, true)]);
        assert_eq!(driver.used_idx(0), 1);
        assert_eq!(driver.used(0, 0), Some((u32::from(a), 7)));
        assert_eq!(ram.read_u32(0x1_0000), Some(0xaaaa_aaaa));
        assert_eq!(ram.read_u8(0x1_0102), Some(0xaa));
        assert_eq!(ram.read_u8(0x1_0103), Some(0));
        assert_eq!(driver.read(0x060), 1);
        assert!(irq.level());
        // Acknowledging another bit keeps the line up; acknowledging bit 0 drops it.
        driver.write(0x064, 2);
        assert!(irq.level());
        driver.write(0x064, 1);
        assert!(!irq.level());
        // The second queue works independently.
        let b = driver.submit(1, &[(0x1_0200, 2, true)]);
        assert_eq!(driver.used(1, 0), Some((u32::from(b), 2)));
        assert!(irq.level());
        // A notify with nothing available uses nothing.
        driver.write(0x064, 1);
        driver.write(0x050, 0);
        assert!(!irq.level());
        assert_eq!(driver.used_idx(0), 1);
        // The ring wraps around its size.
        for i in 0..40u16 {
            driver.submit(0, &[(0x1_0000, 1, true)]);
            assert_eq!(driver.used_idx(0), 2 + i);
        }
    }

    #[test]
    fn notify_before_driver_ok_waits_for_it() {
        let (mem, ram) = test_memory();
        let mut driver = Driver::new(
            VirtioMmio::new(echo(), mem, Box::new(TestIrq::default())),
            &ram,
        );
        driver.init_without_driver_ok(VIRTIO_F_VERSION_1);
        driver.submit(0, &[(0x1_0000, 4, true)]);
        assert_eq!(driver.used_idx(0), 0);
        driver.write(0x070, 0xf);
        assert_eq!(driver.used_idx(0), 1);
    }

    fn assert_broken(driver: &mut Driver, irq: &TestIrq) {
        assert!(driver.dev.needs_reset());
        assert_ne!(driver.status() & 0x40, 0, "DEVICE_NEEDS_RESET");
        assert_ne!(driver.read(0x060) & 2, 0, "configuration-change interrupt");
        assert!(irq.level());
    }

    /// Feeds one bad chain (written by `bad`) and checks the device breaks, ignores
    /// further notifications, and works again after a reset.
    fn breaks_on(bad: impl FnOnce(&mut Driver)) {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
        driver.init(VIRTIO_F_VERSION_1 | 1 << 28);
        bad(&mut driver);
        assert_broken(&mut driver, &irq);
        let used = driver.used_idx(0);
        driver.submit(0, &[(0x1_0000, 4, true)]);
        assert_eq!(driver.used_idx(0), used, "a broken device does nothing");
        driver.write(0x070, 0);
        assert!(!irq.level());
        assert_eq!(driver.status(), 0);
        driver.init(VIRTIO_F_VERSION_1);
        driver.submit(0, &[(0x1_0000, 4, true)]);
        assert_eq!(driver.used(0, 0), Some((0, 4)));
    }

    #[test]
    fn buffer_outside_ram_breaks_the_device() {
        breaks_on(|d| {
            d.submit(0, &[(0x7fff_0000u64.wrapping_sub(d.base()), 16, true)]);
        });
        breaks_on(|d| {
            // Starts in RAM, ends past it.
            let end = d.ram_len();
            d.submit(0, &[(end - 8, 16, true)]);
        });
        breaks_on(|d| {
            d.submit(0, &[(u64::MAX - d.base() - 4, 16, true)]);
        });
    }

    #[test]
    fn looping_chain_breaks_the_device() {
        breaks_on(|d| {
            // Descriptor 0 -> 1 -> 0 -> ...
            d.write_desc(0, 0, 0x1_0000, 4, 1 | 2, 1);
            d.write_desc(0, 1, 0x1_0010, 4, 1 | 2, 0);
            d.publish(0, 0);
        });
        breaks_on(|d| {
            // A descriptor that points at itself.
            d.write_desc(0, 3, 0x1_0000, 4, 1 | 2, 3);
            d.publish(0, 3);
        });
    }

    #[test]
    fn bad_indices_break_the_device() {
        breaks_on(|d| {
            // Head index past the table.
            d.publish(0, 16);
        });
        breaks_on(|d| {
            // `next` past the table.
            d.write_desc(0, 0, 0x1_0000, 4, 1 | 2, 99);
            d.publish(0, 0);
        });
        breaks_on(|d| {
            // The driver claims more new entries than the ring holds.
            d.write_avail_idx(0, 17);
            d.write(0x050, 0);
        });
    }

    #[test]
    fn readable_after_writable_breaks_the_device() {
        breaks_on(|d| {
            d.submit(0, &[(0x1_0000, 4, true), (0x1_0010, 4, false)]);
        });
    }

    #[test]
    fn bad_indirect_tables_break_the_device() {
        breaks_on(|d| {
            // Table length not a multiple of 16.
            d.write_desc(0, 0, 0x1_8000, 20, 4, 0);
            d.publish(0, 0);
        });
        breaks_on(|d| {
            // A table whose entry points back at itself.
            d.write_raw_desc(0x1_8000, 0x1_0000, 4, 1 | 2, 0);
            d.write_desc(0, 0, 0x1_8000, 16, 4, 0);
            d.publish(0, 0);
        });
        breaks_on(|d| {
            // A table outside RAM.
            d.write_desc(0, 0, 0x10_0000_0000, 32, 4, 0);
            d.publish(0, 0);
        });
    }

    #[test]
    fn indirect_tables_work() {
        let (mem, ram) = test_memory();
        let mut driver = Driver::new(
            VirtioMmio::new(echo(), mem, Box::new(TestIrq::default())),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1 | 1 << 28);
        driver.write_raw_desc(0x1_8000, 0x1_0000, 4, 1 | 2, 1);
        driver.write_raw_desc(0x1_8010, 0x1_0020, 2, 2, 0);
        driver.write_desc(0, 5, 0x1_8000, 32, 4, 0);
        driver.publish(0, 5);
        assert_eq!(driver.used(0, 0), Some((5, 6)));
        assert_eq!(ram.read_u16(0x1_0020), Some(0xaaaa));
    }

    #[test]
    fn queue_rings_outside_ram_break_the_device() {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
        driver.negotiate(VIRTIO_F_VERSION_1);
        driver.write(0x030, 0);
        driver.write(0x038, 16);
        driver.write(0x080, 0x1000);
        driver.write(0x084, 0);
        driver.write(0x090, 0x8000_2000);
        driver.write(0x0a0, 0x8000_3000);
        driver.write(0x044, 1);
        assert_eq!(driver.read(0x044), 0);
        assert_broken(&mut driver, &irq);
    }

    #[test]
    fn bad_queue_size_or_alignment_breaks_the_device() {
        for (size, desc) in [(12, 0x8000_1000), (32, 0x8000_1000), (16, 0x8000_1004)] {
            let (mem, ram) = test_memory();
            let irq = TestIrq::default();
            let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
            driver.negotiate(VIRTIO_F_VERSION_1);
            driver.write(0x030, 0);
            driver.write(0x038, size);
            driver.write(0x080, desc);
            driver.write(0x090, 0x8000_2000);
            driver.write(0x0a0, 0x8000_3000);
            driver.write(0x044, 1);
            assert_broken(&mut driver, &irq);
        }
    }

    /// The registers a driver reads back, for comparing two transports.
    fn registers(dev: &mut VirtioMmio) -> Vec<u64> {
        let mut values = Vec::new();
        for queue in 0..2 {
            dev.write(QUEUE_SEL, 4, queue).unwrap();
            for offset in [
                QUEUE_NUM,
                QUEUE_READY,
                QUEUE_DESC_LOW,
                QUEUE_DRIVER_LOW,
                QUEUE_DEVICE_LOW,
            ] {
                values.push(dev.read(offset, 4).unwrap());
            }
        }
        for offset in [
            STATUS,
            INTERRUPT_STATUS,
            CONFIG_GENERATION,
            CONFIG,
            CONFIG + 4,
        ] {
            values.push(dev.read(offset, 4).unwrap());
        }
        values
    }

    #[test]
    fn a_transport_restored_mid_transfer_finishes_the_work() {
        let (mem, ram) = test_memory();
        let irq_a = TestIrq::default();
        let mut a = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq_a.clone())), &ram);
        a.init(VIRTIO_F_VERSION_1 | 1);
        a.dev.write(CONFIG + 1, 1, 0xee).unwrap();
        // Two requests served, then two more made available without a notification,
        // and the driver left queue 1 selected.
        a.submit(0, &[(0x1_0000, 4, true)]);
        a.submit(0, &[(0x1_0100, 8, true)]);
        let third = a.offer(0, &[(0x1_0200, 16, true)]);
        let fourth = a.offer(0, &[(0x1_0300, 2, true), (0x1_0400, 3, true)]);
        a.write(QUEUE_SEL, 1);
        assert_eq!(a.used_idx(0), 2);
        assert!(irq_a.level());
        let saved = a.dev.save_state();
        assert_eq!(saved.kind, "virtio-mmio/echo");
        assert_eq!(
            (saved.data["registers"]["queues"][0]["next_avail"]).as_u64(),
            Some(2)
        );

        // A fresh transport and device over a copy of guest memory as it was
        // when saved; the original goes on beside it.
        let (mem_b, ram_b) = copy_memory(&ram);
        let irq_b = TestIrq::default();
        let mut fresh = VirtioMmio::new(echo(), mem_b, Box::new(irq_b.clone()));
        fresh.restore_state(&saved).unwrap();
        let mut b = a.fork(fresh, &ram_b);
        assert_eq!(b.dev.save_state(), saved);
        assert!(irq_b.level(), "the pending interrupt is raised again");
        assert_eq!(b.dev.state().queue_sel, 1);
        assert_eq!(registers(&mut a.dev), registers(&mut b.dev));
        assert_eq!(b.dev.read(CONFIG, 4), Ok(0x0403_ee01));

        for driver in [&mut a, &mut b] {
            driver.write(INTERRUPT_ACK, 1);
            driver.write(QUEUE_NOTIFY, 0);
            assert_eq!(driver.used_idx(0), 4);
            assert_eq!(driver.used(0, 2), Some((u32::from(third), 16)));
            assert_eq!(driver.used(0, 3), Some((u32::from(fourth), 5)));
            // And the queue keeps going from there.
            let fifth = driver.submit(0, &[(0x1_0500, 1, true)]);
            assert_eq!(driver.used(0, 4), Some((u32::from(fifth), 1)));
        }
        assert_eq!(ram_b.read_u32(0x1_0200), Some(0xaaaa_aaaa));
        assert_eq!(ram_b.read_u8(0x1_0402), Some(0xaa));
        assert_eq!(a.dev.save_state(), b.dev.save_state());
        assert_eq!(irq_a.level(), irq_b.level());
        let mut used_a = [0u8; 0x100];
        let mut used_b = [0u8; 0x100];
        assert!(ram.read_bytes(0x3000, &mut used_a));
        assert!(ram_b.read_bytes(0x3000, &mut used_b));
        assert_eq!(used_a, used_b, "the same used rings");
    }

    #[test]
    fn machine_reset_is_the_power_on_reset_of_transport_and_device() {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
        driver.init(VIRTIO_F_VERSION_1);
        driver.submit(0, &[(0x1_0000, 4, true)]);
        driver.write(QUEUE_SEL, 1);
        assert_eq!(driver.status(), 0xf);
        assert!(irq.level());
        let resets = |dev: &VirtioMmio| dev.save_state().data["device"]["data"][1].as_u64();
        let before = resets(&driver.dev);
        Device::reset(&mut driver.dev);
        assert_eq!(resets(&driver.dev), before.map(|n| n + 1), "the model too");
        assert!(!irq.level());
        assert_eq!(driver.status(), 0);
        assert_eq!(driver.read(INTERRUPT_STATUS), 0);
        assert_eq!(driver.read(QUEUE_SEL), 0);
        assert_eq!(driver.read(QUEUE_READY), 0);
        let state = driver.dev.state();
        assert_eq!(state.queues[0].next_used, 0);
        assert_eq!(state.driver_features, 0);
        // A new driver can set it up again from scratch.
        let (mem, ram) = test_memory();
        let mut again = driver.fork(
            VirtioMmio::new(echo(), mem, Box::new(TestIrq::default())),
            &ram,
        );
        again.dev.restore_state(&driver.dev.save_state()).unwrap();
        again.init(VIRTIO_F_VERSION_1);
        again.submit(0, &[(0x1_0000, 4, true)]);
        assert_eq!(again.used(0, 0), Some((0, 4)));
    }

    #[test]
    fn restore_checks_the_model_queues_and_rings_before_changing_anything() {
        let (mem, ram) = test_memory();
        let mut driver = Driver::new(
            VirtioMmio::new(echo(), mem, Box::new(TestIrq::default())),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1);
        assert_refuses_foreign_states(&mut driver.dev);
        // Another device model behind the same transport.
        let empty = VirtioMmio::empty().save_state();
        assert_eq!(empty.kind, "virtio-mmio/virtio-empty");
        assert!(matches!(
            driver.dev.restore_state(&empty),
            Err(StateError::Mismatch { .. })
        ));
        let before = driver.dev.save_state();
        let tampered = |change: &dyn Fn(&mut VirtioMmioState)| {
            let mut saved: SavedTransport =
                before.decode("virtio-mmio/echo", STATE_VERSION).unwrap();
            change(&mut saved.registers);
            DeviceState::encode("virtio-mmio/echo", STATE_VERSION, &saved)
        };
        let bad = [
            tampered(&|r| {
                r.queues.pop();
            }),
            tampered(&|r| r.queues[0].device = 0x10_0000_0000),
            tampered(&|r| r.queues[1].size = 12),
        ];
        for state in bad {
            assert!(matches!(
                driver.dev.restore_state(&state),
                Err(StateError::Invalid { .. })
            ));
            assert_eq!(driver.dev.save_state(), before);
        }
        // A ready queue cannot be restored into an empty slot (no memory).
        let mut slot = VirtioMmio::empty();
        assert_refuses_foreign_states(&mut slot);
        let saved = slot.save_state();
        slot.restore_state(&saved).unwrap();
        Device::reset(&mut slot);
        assert_eq!(slot.save_state(), saved);
    }

    #[test]
    fn device_errors_after_some_work_keep_the_used_entries() {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(VirtioMmio::new(echo(), mem, Box::new(irq.clone())), &ram);
        driver.init(VIRTIO_F_VERSION_1);
        driver.write_desc(0, 0, 0x1_0000, 4, 2, 0);
        driver.write_desc(0, 1, 0x1_0000, 4, 1 | 2, 1);
        driver.add_avail(0, 0);
        driver.add_avail(0, 1);
        driver.write(0x050, 0);
        assert_eq!(driver.used_idx(0), 1);
        assert_eq!(driver.read(0x060), 3);
        assert!(driver.dev.needs_reset());
    }
}
