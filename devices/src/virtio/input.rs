//! virtio-input (VIRTIO 1.x §5.8, device ID 18): a keyboard and an absolute
//! pointer (tablet). The host side pushes Linux input events through an
//! [`InputHandle`]; the device hands them to the driver's event buffers at the
//! transport's next tick, each batch closed by a SYN_REPORT.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use emu_core::sync::LockRecover;
use emu_core::{DeviceState, StateError};
use serde::{Deserialize, Serialize};

use super::queue::QueueAccess;
use super::{DeviceError, VIRTIO_RING_F_INDIRECT_DESC, VirtioDevice, copy_config};
use crate::state::invalid;

/// virtio-input's device ID.
pub const DEVICE_ID_INPUT: u32 = 18;

const CFG_ID_NAME: u8 = 0x01;
const CFG_ID_DEVIDS: u8 = 0x03;
const CFG_PROP_BITS: u8 = 0x10;
const CFG_EV_BITS: u8 = 0x11;
const CFG_ABS_INFO: u8 = 0x12;

/// Linux event types and codes used here.
const EV_SYN: u16 = 0x00;
const EV_KEY: u16 = 0x01;
const EV_ABS: u16 = 0x03;
const SYN_REPORT: u16 = 0;
const ABS_X: u16 = 0;
const ABS_Y: u16 = 1;
/// Mouse buttons, as Linux numbers them.
pub const BTN_LEFT: u16 = 0x110;
/// Right button.
pub const BTN_RIGHT: u16 = 0x111;
/// Middle button.
pub const BTN_MIDDLE: u16 = 0x112;
/// The tablet's axes run from 0 to this value.
pub const ABS_MAX: u32 = 0x7fff;
/// Events kept when the driver takes none (older ones are dropped).
const MAX_QUEUED: usize = 4096;
const QUEUE_SIZE: u16 = 64;
/// Layout version of the saved state.
const STATE_VERSION: u32 = 1;

/// Which input device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputKind {
    /// A keyboard with the Linux key codes 1-248.
    Keyboard,
    /// An absolute pointer with three buttons.
    Tablet,
}

/// An event the host pushed, as a device model other than virtio-input reads
/// it (a PC's PS/2 keyboard and mouse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostInput {
    /// A key or button (a Linux code) went down or up.
    Key {
        /// `KEY_*` or `BTN_*`.
        code: u16,
        /// Down, or up.
        pressed: bool,
    },
    /// The pointer moved to (`x`, `y`), each from 0 to [`ABS_MAX`].
    PointerAt {
        /// Across.
        x: u32,
        /// Down.
        y: u32,
    },
}

/// Where the host pushes events for one device.
#[derive(Clone, Debug, Default)]
pub struct InputHandle(Arc<Mutex<VecDeque<[u8; 8]>>>);

impl InputHandle {
    fn queue(&self) -> MutexGuard<'_, VecDeque<[u8; 8]>> {
        self.0.lock_recover()
    }

    fn push(&self, events: &[(u16, u16, u32)]) {
        let mut queue = self.queue();
        for &(kind, code, value) in events.iter().chain(&[(EV_SYN, SYN_REPORT, 0)]) {
            queue.push_back(InputEvent { kind, code, value }.to_bytes());
        }
        let excess = queue.len().saturating_sub(MAX_QUEUED);
        queue.drain(..excess);
    }

    /// A key (Linux key code) or button went down or up.
    pub fn key(&self, code: u16, pressed: bool) {
        self.push(&[(EV_KEY, code, u32::from(pressed))]);
    }

    /// The pointer moved to (`x`, `y`), each from 0 to [`ABS_MAX`].
    pub fn move_to(&self, x: u32, y: u32) {
        self.push(&[
            (EV_ABS, ABS_X, x.min(ABS_MAX)),
            (EV_ABS, ABS_Y, y.min(ABS_MAX)),
        ]);
    }

    fn is_empty(&self) -> bool {
        self.queue().is_empty()
    }

    /// Takes every event pushed so far, in order, for a device model that is
    /// not virtio-input (which reads the queue itself).
    pub fn take(&self) -> Vec<HostInput> {
        let raw: Vec<[u8; 8]> = self.queue().drain(..).collect();
        let mut taken = Vec::new();
        let (mut x, mut y) = (None, None);
        for event in raw.into_iter().map(InputEvent::from_bytes) {
            match (event.kind, event.code) {
                (EV_KEY, code) => taken.push(HostInput::Key {
                    code,
                    pressed: event.value != 0,
                }),
                (EV_ABS, ABS_X) => x = Some(event.value),
                (EV_ABS, ABS_Y) => y = Some(event.value),
                (EV_SYN, _) => {
                    if let (Some(x), Some(y)) = (x.take(), y.take()) {
                        taken.push(HostInput::PointerAt { x, y });
                    }
                }
                _ => {}
            }
        }
        taken
    }

    fn pop(&self) -> Option<[u8; 8]> {
        self.queue().pop_front()
    }
}

/// One Linux input event (`struct virtio_input_event`) in a saved state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InputEvent {
    kind: u16,
    code: u16,
    value: u32,
}

impl InputEvent {
    fn to_bytes(self) -> [u8; 8] {
        let mut event = [0u8; 8];
        event[0..2].copy_from_slice(&self.kind.to_le_bytes());
        event[2..4].copy_from_slice(&self.code.to_le_bytes());
        event[4..8].copy_from_slice(&self.value.to_le_bytes());
        event
    }

    fn from_bytes(b: [u8; 8]) -> InputEvent {
        InputEvent {
            kind: u16::from_le_bytes([b[0], b[1]]),
            code: u16::from_le_bytes([b[2], b[3]]),
            value: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The device's own registers: the configuration item the driver selected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputState {
    /// `select` of the configuration space.
    pub select: u8,
    /// `subsel` of the configuration space.
    pub subsel: u8,
}

/// What a virtio-input device saves: which device it is (checked on restore), its
/// configuration selection, and the events the host pushed that the driver has not
/// taken yet. Those wait in the [`InputHandle`] shared with the host, but they are
/// the guest's input already: a restore puts them back there, in order.
#[derive(Serialize, Deserialize)]
struct SavedInput {
    kind: InputKind,
    config: InputState,
    pending: Vec<InputEvent>,
}

/// A virtio-input device.
#[derive(Debug)]
pub struct VirtioInput {
    kind: InputKind,
    state: InputState,
    /// Events from the host, shared with it.
    events: InputHandle,
}

impl VirtioInput {
    /// A device of `kind` taking events from `events`.
    pub fn new(kind: InputKind, events: InputHandle) -> VirtioInput {
        VirtioInput {
            kind,
            state: InputState::default(),
            events,
        }
    }

    /// The union part of the configuration for the current select/subsel.
    fn config_data(&self) -> Vec<u8> {
        let bitmap = |bits: &[u16]| {
            let mut map = vec![0u8; 128];
            for &bit in bits {
                map[usize::from(bit / 8)] |= 1 << (bit % 8);
            }
            let used = map.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            map.truncate(used);
            map
        };
        match (self.state.select, self.state.subsel, self.kind) {
            (CFG_ID_NAME, 0, InputKind::Keyboard) => b"Turing keyboard".to_vec(),
            (CFG_ID_NAME, 0, InputKind::Tablet) => b"Turing tablet".to_vec(),
            (CFG_ID_DEVIDS, 0, kind) => {
                // BUS_VIRTUAL, a vendor of our own, product 1 or 2, version 1.
                let product: u16 = if kind == InputKind::Keyboard { 1 } else { 2 };
                [0x06u16, 0x7475, product, 1]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect()
            }
            (CFG_PROP_BITS, 0, _) => Vec::new(),
            (CFG_EV_BITS, sub, InputKind::Keyboard) if u16::from(sub) == EV_KEY => {
                bitmap(&(1..=248).collect::<Vec<u16>>())
            }
            (CFG_EV_BITS, sub, InputKind::Tablet) if u16::from(sub) == EV_KEY => {
                bitmap(&[BTN_LEFT, BTN_RIGHT, BTN_MIDDLE])
            }
            (CFG_EV_BITS, sub, InputKind::Tablet) if u16::from(sub) == EV_ABS => {
                bitmap(&[ABS_X, ABS_Y])
            }
            (CFG_ABS_INFO, sub, InputKind::Tablet)
                if u16::from(sub) == ABS_X || u16::from(sub) == ABS_Y =>
            {
                // min, max, fuzz, flat, res
                [0, ABS_MAX, 0, 0, 0]
                    .iter()
                    .flat_map(|v: &u32| v.to_le_bytes())
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

impl VirtioDevice for VirtioInput {
    fn device_type(&self) -> u32 {
        DEVICE_ID_INPUT
    }

    fn name(&self) -> &'static str {
        "virtio-input"
    }

    fn features(&self) -> u64 {
        VIRTIO_RING_F_INDIRECT_DESC
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    /// select, subsel, size, 5 reserved bytes, then 128 bytes of data.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let payload = self.config_data();
        let mut config = vec![0u8; 8 + 128];
        config[0] = self.state.select;
        config[1] = self.state.subsel;
        config[2] = payload.len() as u8;
        config[8..8 + payload.len()].copy_from_slice(&payload);
        copy_config(&config, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        for (i, &byte) in data.iter().enumerate() {
            match offset + i as u64 {
                0 => self.state.select = byte,
                1 => self.state.subsel = byte,
                _ => {}
            }
        }
    }

    /// Selection back to 0, and events not taken yet dropped: they were meant
    /// for the driver that went away (QEMU drops events the driver has no buffers
    /// for, too).
    fn reset(&mut self) {
        self.state = InputState::default();
        self.events.queue().clear();
    }

    fn save_state(&self) -> DeviceState {
        let saved = SavedInput {
            kind: self.kind,
            config: self.state,
            pending: self
                .events
                .queue()
                .iter()
                .map(|&e| InputEvent::from_bytes(e))
                .collect(),
        };
        DeviceState::encode(self.name(), STATE_VERSION, &saved)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let saved: SavedInput = state.decode(self.name(), STATE_VERSION)?;
        if saved.kind != self.kind {
            return Err(invalid(
                self.name(),
                format!("saved from a {:?}, this is a {:?}", saved.kind, self.kind),
            ));
        }
        if saved.pending.len() > MAX_QUEUED {
            return Err(invalid(
                self.name(),
                format!(
                    "{} pending events, at most {MAX_QUEUED}",
                    saved.pending.len()
                ),
            ));
        }
        self.state = saved.config;
        let mut queue = self.events.queue();
        queue.clear();
        queue.extend(saved.pending.into_iter().map(InputEvent::to_bytes));
        Ok(())
    }

    fn pending_queues(&self) -> u32 {
        u32::from(!self.events.is_empty())
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut QueueAccess<'_>,
    ) -> Result<(), DeviceError> {
        let mem = queue.memory();
        if index == 1 {
            // Status queue (LEDs): read and let go.
            while let Some(chain) = queue.pop()? {
                queue.add_used(chain.head, 0)?;
            }
            return Ok(());
        }
        // Event queue: one event per buffer, while both last.
        while !self.events.is_empty() {
            let Some(chain) = queue.pop()? else {
                break;
            };
            if chain.writable_len() < 8 || !chain.readable.is_empty() {
                return Err(DeviceError::BadRequest(
                    "input event buffer is not 8 device-writable bytes".into(),
                ));
            }
            let Some(event) = self.events.pop() else {
                break;
            };
            chain.write_at(mem, 0, &event)?;
            queue.add_used(chain.head, 8)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;
    use crate::virtio::testing::{Driver, TestIrq, copy_memory, test_memory};
    use crate::virtio::{VIRTIO_F_VERSION_1, VirtioMmio};
    use emu_core::{Device, MmioDevice};

    fn device(kind: InputKind) -> (Driver, Arc<emu_core::GuestRam>, InputHandle) {
        let (mem, ram) = test_memory();
        let events = InputHandle::default();
        let mut driver = Driver::new(
            VirtioMmio::new(
                Box::new(VirtioInput::new(kind, events.clone())),
                mem,
                Box::new(TestIrq::default()),
            ),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1);
        (driver, ram, events)
    }

    /// Selects a configuration item; returns (size, data).
    fn config(driver: &mut Driver, select: u8, subsel: u8) -> (u8, Vec<u8>) {
        driver.dev.write(0x100, 1, u64::from(select)).unwrap();
        driver.dev.write(0x101, 1, u64::from(subsel)).unwrap();
        let size = driver.dev.read(0x102, 1).unwrap() as u8;
        let data = (0..u64::from(size))
            .map(|i| driver.dev.read(0x108 + i, 1).unwrap() as u8)
            .collect();
        (size, data)
    }

    #[test]
    fn the_configuration_describes_each_device() {
        let (mut kbd, _, _) = device(InputKind::Keyboard);
        assert_eq!(kbd.read(0x008), DEVICE_ID_INPUT);
        assert_eq!(config(&mut kbd, CFG_ID_NAME, 0).1, b"Turing keyboard");
        let (size, keys) = config(&mut kbd, CFG_EV_BITS, EV_KEY as u8);
        assert_eq!(size, 32);
        assert_eq!(keys[30] & 1, 1, "KEY_A (30) is set");
        assert_eq!(config(&mut kbd, CFG_EV_BITS, EV_ABS as u8).0, 0);
        let (mut tablet, _, _) = device(InputKind::Tablet);
        let (_, abs) = config(&mut tablet, CFG_EV_BITS, EV_ABS as u8);
        assert_eq!(abs, [0b11]);
        let (_, info) = config(&mut tablet, CFG_ABS_INFO, ABS_Y as u8);
        assert_eq!(le(&info[4..8]), ABS_MAX);
        assert_eq!(
            config(&mut tablet, 0x7f, 0).0,
            0,
            "unknown selects are empty"
        );
    }

    fn le(b: &[u8]) -> u32 {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn host_events_reach_the_driver_with_a_sync() {
        let (mut driver, ram, events) = device(InputKind::Tablet);
        for i in 0..4 {
            driver.submit(0, &[(0x1_0000 + 16 * i, 8, true)]);
        }
        events.move_to(100, 0x9000);
        assert!(driver.used(0, 0).is_none(), "nothing before the tick");
        driver.dev.tick(0);
        let mut got = [0u8; 8];
        let expect: [(u16, u16, u32); 3] =
            [(EV_ABS, ABS_X, 100), (EV_ABS, ABS_Y, ABS_MAX), (0, 0, 0)];
        for (i, (kind, code, value)) in expect.iter().enumerate() {
            assert!(ram.read_bytes(0x1_0000 + 16 * i as u64, &mut got));
            assert_eq!(u16::from_le_bytes([got[0], got[1]]), *kind);
            assert_eq!(u16::from_le_bytes([got[2], got[3]]), *code);
            assert_eq!(le(&got[4..]), *value);
        }
        assert_eq!(driver.used_idx(0), 3);
        // Events wait for buffers: the key fills the last one, its SYN waits
        // until the driver adds another.
        events.key(BTN_LEFT, true);
        driver.dev.tick(0);
        assert_eq!(driver.used_idx(0), 4);
        driver.submit(0, &[(0x1_1000, 8, true)]);
        assert_eq!(driver.used_idx(0), 5);
        assert!(ram.read_bytes(0x1_1000, &mut got));
        assert_eq!(got, [0; 8], "the SYN_REPORT");
    }

    /// The events in the first `n` event buffers the driver gave, at 0x1_0000 + 16i.
    fn delivered(ram: &emu_core::GuestRam, n: u64) -> Vec<[u8; 8]> {
        (0..n)
            .map(|i| {
                let mut event = [0u8; 8];
                assert!(ram.read_bytes(0x1_0000 + 16 * i, &mut event));
                event
            })
            .collect()
    }

    #[test]
    fn selection_and_pending_events_round_trip() {
        let (mut a, ram, events_a) = device(InputKind::Tablet);
        for i in 0..2 {
            a.submit(0, &[(0x1_0000 + 16 * i, 8, true)]);
        }
        events_a.key(BTN_LEFT, true);
        a.dev.tick(0);
        assert_eq!(a.used_idx(0), 2);
        // Three events wait for buffers; the driver looks at the X axis.
        events_a.move_to(5, 6);
        a.dev.tick(0);
        a.dev.write(0x100, 1, u64::from(CFG_ABS_INFO)).unwrap();
        a.dev.write(0x101, 1, u64::from(ABS_X)).unwrap();
        let saved = a.dev.save_state();
        assert_eq!(saved.data["device"]["data"]["pending"][0]["value"], 5);

        let (mem_b, ram_b) = copy_memory(&ram);
        let events_b = InputHandle::default();
        let mut fresh = VirtioMmio::new(
            Box::new(VirtioInput::new(InputKind::Tablet, events_b.clone())),
            mem_b,
            Box::new(TestIrq::default()),
        );
        fresh.restore_state(&saved).unwrap();
        let mut b = a.fork(fresh, &ram_b);
        assert_eq!(b.dev.save_state(), saved);
        for offset in [0x100, 0x101, 0x102, 0x10c] {
            assert_eq!(a.dev.read(offset, 1), b.dev.read(offset, 1), "{offset:#x}");
        }
        assert_eq!(b.dev.read(0x10c, 4), Ok(u64::from(ABS_MAX)));

        for (driver, events) in [(&mut a, &events_a), (&mut b, &events_b)] {
            for i in 2..5 {
                driver.offer(0, &[(0x1_0000 + 16 * i, 8, true)]);
            }
            driver.dev.tick(0);
            assert_eq!(driver.used_idx(0), 5);
            events.key(BTN_LEFT, false);
        }
        assert_eq!(delivered(&ram, 5), delivered(&ram_b, 5));
        assert_eq!(delivered(&ram_b, 5)[2][4..], 5u32.to_le_bytes());
        assert_eq!(a.dev.save_state(), b.dev.save_state());
    }

    #[test]
    fn reset_clears_the_selection_and_stale_events() {
        let (mut driver, _ram, events) = device(InputKind::Keyboard);
        driver.dev.write(0x100, 1, u64::from(CFG_ID_NAME)).unwrap();
        events.key(30, true);
        assert_eq!(driver.dev.read(0x100, 1), Ok(u64::from(CFG_ID_NAME)));
        Device::reset(&mut driver.dev);
        assert_eq!(driver.dev.read(0x100, 1), Ok(0));
        assert_eq!(driver.status(), 0);
        assert!(events.is_empty(), "keys typed for the old driver are gone");
    }

    #[test]
    fn restore_refuses_foreign_states_and_the_other_kind_of_input() {
        let (mut keyboard, _, _) = device(InputKind::Keyboard);
        assert_refuses_foreign_states(&mut keyboard.dev);
        let (tablet, _, _) = device(InputKind::Tablet);
        let before = keyboard.dev.save_state();
        assert!(matches!(
            keyboard.dev.restore_state(&tablet.dev.save_state()),
            Err(StateError::Invalid { .. })
        ));
        assert_eq!(keyboard.dev.save_state(), before);
    }

    #[test]
    fn a_readable_event_buffer_breaks_the_device() {
        let (mut driver, _, events) = device(InputKind::Keyboard);
        driver.submit(0, &[(0x1_0000, 8, false)]);
        events.key(30, true);
        driver.dev.tick(0);
        assert!(driver.dev.needs_reset());
    }
}
