//! What every virtio transport does, whatever its register layout (VIRTIO 1.x §2,
//! §3): feature negotiation, the device status and its reset, queue set-up and
//! enabling, running the device on a notified queue, breaking it on a driver error
//! (`DEVICE_NEEDS_RESET`), and saving and restoring all of that with the queues'
//! ring positions.
//!
//! [`VirtioTransportCore`] holds the device model, the transport registers every
//! layout has (feature selectors, queue selector, per-queue size, readiness and
//! ring addresses, status, interrupt status, configuration generation) and the
//! live queues. A register-layout adapter ([`super::VirtioMmio`],
//! [`super::VirtioPci`]) decodes the guest's accesses into calls on it.
//!
//! Interrupts: the core does not signal anything itself. It records what happened
//! ([`TransportEvents`]: buffers used in a queue, a configuration change) and the
//! adapter takes them after each call ([`VirtioTransportCore::take_events`]) and
//! maps them onto its own mechanism: virtio-mmio's InterruptStatus and its level
//! line, virtio-pci's MSI-X vectors or its ISR and INTx.

use std::fmt;

use emu_core::{DeviceState, StateError};
use serde::{Deserialize, Serialize};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestAddress;

use super::memory::GuestMemoryHandle;
use super::queue::QueueAccess;
use super::{
    DEVICE_ID_NONE, INT_CONFIG_CHANGE, INT_USED_BUFFER, VIRTIO_F_VERSION_1, VirtioDevice, status,
};
use crate::state::invalid;

/// The driver-visible registers of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRegs {
    /// Queue size: the size the driver chose.
    pub size: u16,
    /// Whether the queue is enabled (live).
    pub ready: bool,
    /// Guest physical address of the descriptor table.
    pub desc: u64,
    /// Guest physical address of the driver (available) ring.
    pub driver: u64,
    /// Guest physical address of the device (used) ring.
    pub device: u64,
    /// Next available-ring entry the device will take.
    pub next_avail: u16,
    /// Next used-ring entry the device will fill.
    pub next_used: u16,
}

/// The transport registers every layout has, apart from the device and host
/// connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtioTransportState {
    /// Device status (§2.1), including DEVICE_NEEDS_RESET when the device broke.
    pub status: u32,
    /// Device feature word selector.
    pub device_features_sel: u32,
    /// Driver feature word selector.
    pub driver_features_sel: u32,
    /// Features the driver accepted.
    pub driver_features: u64,
    /// Queue selector.
    pub queue_sel: u32,
    /// Interrupt status: [`INT_USED_BUFFER`] and [`INT_CONFIG_CHANGE`] (virtio-mmio's
    /// InterruptStatus, virtio-pci's ISR).
    pub interrupt_status: u32,
    /// Configuration generation.
    pub config_generation: u32,
    /// One entry per queue of the device.
    pub queues: Vec<QueueRegs>,
}

/// What the core raised since its adapter last looked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportEvents {
    /// Queues the device used buffers in, each once, in order.
    pub used_queues: Vec<usize>,
    /// The configuration (or the device status: NEEDS_RESET) changed.
    pub config_changed: bool,
}

impl TransportEvents {
    /// Whether nothing was raised.
    pub fn is_empty(&self) -> bool {
        self.used_queues.is_empty() && !self.config_changed
    }

    /// The events as interrupt status bits ([`INT_USED_BUFFER`],
    /// [`INT_CONFIG_CHANGE`]).
    pub fn interrupt_bits(&self) -> u32 {
        let mut bits = 0;
        if !self.used_queues.is_empty() {
            bits |= INT_USED_BUFFER;
        }
        if self.config_changed {
            bits |= INT_CONFIG_CHANGE;
        }
        bits
    }
}

/// The transport logic shared by virtio-mmio and virtio-pci.
pub struct VirtioTransportCore {
    state: VirtioTransportState,
    device: Box<dyn VirtioDevice>,
    device_features: u64,
    /// The live queues; only those whose registers say `ready` are used.
    queues: Vec<Queue>,
    mem: Option<GuestMemoryHandle>,
    events: TransportEvents,
    /// Whether the device may reach guest memory (PCI bus mastering).
    dma_enabled: bool,
}

impl fmt::Debug for VirtioTransportCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtioTransportCore")
            .field("device", &self.device.name())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A fresh queue of at most `max` entries; a device that declares an invalid maximum
/// (not a power of two up to 32768) gets a queue that can never become ready.
fn new_queue(max: u16) -> Queue {
    Queue::new(max).unwrap_or_default()
}

/// Replaces the low 32 bits of `value`.
pub(crate) fn set_low(value: &mut u64, low: u32) {
    *value = (*value & !0xffff_ffff) | u64::from(low);
}

/// Replaces the high 32 bits of `value`.
pub(crate) fn set_high(value: &mut u64, high: u32) {
    *value = (*value & 0xffff_ffff) | (u64::from(high) << 32);
}

impl VirtioTransportCore {
    /// The core for `device`, which reaches guest RAM through `mem` (`None` for a
    /// slot that can never use a queue), at power-on.
    pub fn new(device: Box<dyn VirtioDevice>, mem: Option<GuestMemoryHandle>) -> Self {
        let device_features = if device.device_type() == DEVICE_ID_NONE {
            0
        } else {
            device.features() | VIRTIO_F_VERSION_1
        };
        let mut core = VirtioTransportCore {
            state: VirtioTransportState::default(),
            device,
            device_features,
            queues: Vec::new(),
            mem,
            events: TransportEvents::default(),
            dma_enabled: true,
        };
        core.reset();
        core
    }

    /// The device model.
    pub fn device(&self) -> &dyn VirtioDevice {
        self.device.as_ref()
    }

    /// A copy of the register state, with each queue's ring positions.
    pub fn state(&self) -> VirtioTransportState {
        let mut state = self.state.clone();
        for (regs, queue) in state.queues.iter_mut().zip(&self.queues) {
            regs.next_avail = queue.next_avail();
            regs.next_used = queue.next_used();
        }
        state
    }

    /// Whether the device broke on a driver error and waits for a reset.
    pub fn needs_reset(&self) -> bool {
        self.state.status & status::DEVICE_NEEDS_RESET != 0
    }

    /// Back to the power-on state: what the driver gets by writing 0 to the
    /// device status, and what a machine reset does. The device model is reset
    /// too, the interrupt status cleared and pending events dropped.
    pub fn reset(&mut self) {
        let sizes = self.device.queue_max_sizes().to_vec();
        self.state = VirtioTransportState {
            config_generation: self.state.config_generation,
            queues: sizes
                .iter()
                .map(|&max| QueueRegs {
                    size: max,
                    ..QueueRegs::default()
                })
                .collect(),
            ..VirtioTransportState::default()
        };
        self.queues = sizes.iter().map(|&max| new_queue(max)).collect();
        self.events = TransportEvents::default();
        self.device.reset();
    }

    /// Lets the device reach guest memory or not (PCI bus mastering); while it
    /// cannot, notifications are ignored. On by default.
    pub fn set_dma_enabled(&mut self, enabled: bool) {
        self.dma_enabled = enabled;
    }

    /// Takes the events raised since the last call.
    pub fn take_events(&mut self) -> TransportEvents {
        std::mem::take(&mut self.events)
    }

    /// The interrupt status bits.
    pub fn interrupt_status(&self) -> u32 {
        self.state.interrupt_status
    }

    /// Sets interrupt status bits.
    pub fn raise_interrupt(&mut self, bits: u32) {
        self.state.interrupt_status |= bits;
    }

    /// Clears interrupt status bits (the driver's acknowledgement).
    pub fn ack_interrupt(&mut self, bits: u32) {
        self.state.interrupt_status &= !bits;
    }

    fn used_buffers(&mut self, index: usize) {
        if !self.events.used_queues.contains(&index) {
            self.events.used_queues.push(index);
        }
    }

    /// Marks the device broken (§2.1.2): NEEDS_RESET plus a configuration-change
    /// event; its queues are ignored until the driver resets it.
    fn fail(&mut self, reason: &dyn fmt::Display) {
        if !self.needs_reset() {
            tracing::warn!("{}: {reason}; device needs reset", self.device.name());
        }
        self.state.status |= status::DEVICE_NEEDS_RESET;
        self.events.config_changed = true;
    }

    /// The selected queue's index, when it exists.
    pub fn selected(&self) -> Option<usize> {
        let index = usize::try_from(self.state.queue_sel).ok()?;
        (index < self.state.queues.len()).then_some(index)
    }

    /// The queue selector.
    pub fn queue_sel(&self) -> u32 {
        self.state.queue_sel
    }

    /// Selects a queue (any value; a queue that does not exist reads as absent).
    pub fn set_queue_sel(&mut self, sel: u32) {
        self.state.queue_sel = sel;
    }

    /// Number of queues of the device.
    pub fn num_queues(&self) -> usize {
        self.state.queues.len()
    }

    /// The selected queue's registers.
    pub fn queue(&self) -> Option<&QueueRegs> {
        self.selected().map(|i| &self.state.queues[i])
    }

    /// The selected queue's maximum size (0 when it does not exist).
    pub fn queue_max_size(&self) -> u16 {
        self.selected()
            .and_then(|i| self.device.queue_max_sizes().get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The selected queue's registers, when it exists and is not live yet (the
    /// driver must not change a ready queue).
    pub fn queue_setup(&mut self) -> Option<&mut QueueRegs> {
        let index = self.selected()?;
        let regs = &mut self.state.queues[index];
        (!regs.ready).then_some(regs)
    }

    /// Enables (checking its size and rings, breaking the device if they are
    /// bad) or disables the selected queue.
    pub fn set_queue_ready(&mut self, ready: bool) {
        if let Some(index) = self.selected() {
            if ready {
                self.enable_queue(index);
            } else {
                self.disable_queue(index);
            }
        }
    }

    fn max_size(&self, index: usize) -> u16 {
        self.device
            .queue_max_sizes()
            .get(index)
            .copied()
            .unwrap_or(0)
    }

    fn enable_queue(&mut self, index: usize) {
        let regs = self.state.queues[index].clone();
        if regs.ready {
            return;
        }
        let Some(mem) = &self.mem else {
            return;
        };
        let mut queue = new_queue(self.max_size(index));
        let setup = queue
            .try_set_size(regs.size)
            .and_then(|()| queue.try_set_desc_table_address(GuestAddress(regs.desc)))
            .and_then(|()| queue.try_set_avail_ring_address(GuestAddress(regs.driver)))
            .and_then(|()| queue.try_set_used_ring_address(GuestAddress(regs.device)));
        queue.set_event_idx(false);
        queue.set_ready(true);
        if let Err(e) = setup {
            self.fail(&format_args!("queue {index} set up with {e}"));
            return;
        }
        if !queue.is_valid(mem.memory()) {
            self.fail(&format_args!(
                "queue {index} rings (size {}, at {:#x}/{:#x}/{:#x}) are not in RAM",
                regs.size, regs.desc, regs.driver, regs.device
            ));
            return;
        }
        self.queues[index] = queue;
        self.state.queues[index].ready = true;
    }

    fn disable_queue(&mut self, index: usize) {
        self.queues[index] = new_queue(self.max_size(index));
        self.state.queues[index].ready = false;
    }

    /// A notification of queue `index`: lets the device work on it.
    pub fn notify(&mut self, index: usize) {
        if self.needs_reset()
            || !self.dma_enabled
            || self.state.status & status::DRIVER_OK == 0
            || !self.state.queues.get(index).is_some_and(|q| q.ready)
        {
            return;
        }
        let Some(mem) = &self.mem else {
            return;
        };
        let mut access = QueueAccess::new(&mut self.queues[index], mem.memory());
        let result = self.device.process_queue(index, &mut access);
        if access.used_count() > 0 {
            self.used_buffers(index);
        }
        if let Err(e) = result {
            self.fail(&format_args!("queue {index}: {e}"));
        }
    }

    /// Raises the device's own configuration changes and runs the queues it
    /// has host-side work for (input events, received frames...).
    pub fn tick(&mut self) {
        if self.device.poll_config_change() && self.state.status & status::DRIVER_OK != 0 {
            self.state.config_generation = self.state.config_generation.wrapping_add(1);
            self.events.config_changed = true;
        }
        let pending = self.device.pending_queues();
        for index in 0..32 {
            if pending & (1 << index) != 0 && index < self.queues.len() {
                self.notify(index);
            }
        }
    }

    /// The device feature word selector.
    pub fn device_features_sel(&self) -> u32 {
        self.state.device_features_sel
    }

    /// Selects a device feature word.
    pub fn set_device_features_sel(&mut self, sel: u32) {
        self.state.device_features_sel = sel;
    }

    /// The selected 32 bits of the device's features (0 past the second word).
    pub fn device_features_word(&self) -> u32 {
        match self.state.device_features_sel {
            0 => self.device_features as u32,
            1 => (self.device_features >> 32) as u32,
            _ => 0,
        }
    }

    /// The driver feature word selector.
    pub fn driver_features_sel(&self) -> u32 {
        self.state.driver_features_sel
    }

    /// Selects a driver feature word.
    pub fn set_driver_features_sel(&mut self, sel: u32) {
        self.state.driver_features_sel = sel;
    }

    /// The selected 32 bits of the features the driver wrote.
    pub fn driver_features_word(&self) -> u32 {
        match self.state.driver_features_sel {
            0 => self.state.driver_features as u32,
            1 => (self.state.driver_features >> 32) as u32,
            _ => 0,
        }
    }

    /// Writes the selected 32 bits of the driver's features; frozen once
    /// FEATURES_OK is set.
    pub fn write_driver_features(&mut self, value: u32) {
        if self.state.status & status::FEATURES_OK != 0 {
            return;
        }
        match self.state.driver_features_sel {
            0 => set_low(&mut self.state.driver_features, value),
            1 => set_high(&mut self.state.driver_features, value),
            _ => {}
        }
    }

    fn features_acceptable(&self) -> bool {
        let features = self.state.driver_features;
        features & !self.device_features == 0 && features & VIRTIO_F_VERSION_1 != 0
    }

    /// The device status.
    pub fn status(&self) -> u32 {
        self.state.status
    }

    /// The driver writes the device status: 0 resets, FEATURES_OK is refused for
    /// features the device does not offer (or without VERSION_1), DRIVER_OK
    /// activates the device and runs buffers made available before it.
    pub fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.state.status;
        // NEEDS_RESET belongs to the device: the driver can neither set nor clear it.
        let mut new =
            (value & 0xff & !status::DEVICE_NEEDS_RESET) | (old & status::DEVICE_NEEDS_RESET);
        if new & status::FEATURES_OK != 0
            && old & status::FEATURES_OK == 0
            && !self.features_acceptable()
        {
            // The driver reads the status back and gives up (§3.1.1).
            new &= !status::FEATURES_OK;
        }
        self.state.status = new;
        if new & status::DRIVER_OK != 0 && old & status::DRIVER_OK == 0 {
            if new & status::FEATURES_OK == 0 {
                self.fail(&"DRIVER_OK without FEATURES_OK (legacy driver?)");
                return;
            }
            self.device.activate(self.state.driver_features);
            // Buffers made available before DRIVER_OK are ours now.
            for index in 0..self.state.queues.len() {
                self.notify(index);
            }
        }
    }

    /// The configuration generation.
    pub fn config_generation(&self) -> u32 {
        self.state.config_generation
    }

    /// Reads device configuration space.
    pub fn read_config(&self, offset: u64, data: &mut [u8]) {
        self.device.read_config(offset, data);
    }

    /// Writes device configuration space.
    pub fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.device.write_config(offset, data);
    }

    /// The device model's saved state.
    pub fn save_device(&self) -> DeviceState {
        self.device.save_state()
    }

    /// The live queue `index` as saved registers describe it: when ready, with its
    /// size, ring addresses and ring positions, checked against guest memory.
    fn rebuild_queue(&self, index: usize, regs: &QueueRegs) -> Result<Queue, String> {
        let mut queue = new_queue(self.max_size(index));
        if !regs.ready {
            return Ok(queue);
        }
        let Some(mem) = &self.mem else {
            return Err(format!("queue {index} is ready in a slot without memory"));
        };
        queue
            .try_set_size(regs.size)
            .and_then(|()| queue.try_set_desc_table_address(GuestAddress(regs.desc)))
            .and_then(|()| queue.try_set_avail_ring_address(GuestAddress(regs.driver)))
            .and_then(|()| queue.try_set_used_ring_address(GuestAddress(regs.device)))
            .map_err(|e| format!("queue {index}: {e}"))?;
        queue.set_event_idx(false);
        queue.set_ready(true);
        queue.set_next_avail(regs.next_avail);
        queue.set_next_used(regs.next_used);
        if !queue.is_valid(mem.memory()) {
            return Err(format!(
                "queue {index} rings (size {}, at {:#x}/{:#x}/{:#x}) are not in RAM",
                regs.size, regs.desc, regs.driver, regs.device
            ));
        }
        Ok(queue)
    }

    /// Checks `registers` and builds the live queues they describe, changing
    /// nothing; `kind` names the transport in errors.
    fn check_restore(
        &self,
        registers: &VirtioTransportState,
        kind: &str,
    ) -> Result<Vec<Queue>, StateError> {
        let expected = self.device.queue_max_sizes().len();
        if registers.queues.len() != expected {
            return Err(invalid(
                kind,
                format!(
                    "{} queues saved, the device has {expected}",
                    registers.queues.len()
                ),
            ));
        }
        registers
            .queues
            .iter()
            .enumerate()
            .map(|(index, regs)| self.rebuild_queue(index, regs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| invalid(kind, reason))
    }

    /// Takes saved registers and device state: the queues must be the device's,
    /// and ready queues must lie in this machine's RAM. Everything is checked
    /// before anything changes.
    pub fn restore(
        &mut self,
        registers: VirtioTransportState,
        device: &DeviceState,
        kind: &str,
    ) -> Result<(), StateError> {
        let queues = self.check_restore(&registers, kind)?;
        self.device.restore_state(device)?;
        self.state = registers;
        self.queues = queues;
        self.events = TransportEvents::default();
        Ok(())
    }
}
