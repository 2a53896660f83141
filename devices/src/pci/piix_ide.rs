//! The PIIX3 IDE function (82371SB function 1, 8086:7010), as QEMU's `pc` has
//! it at 00:01.1: two IDE channels ([`IdeChannel`]) at the legacy ports
//! (primary 0x1F0–0x1F7 and 0x3F6 on ISA IRQ 14, secondary 0x170–0x177 and
//! 0x376 on IRQ 15; programming interface 0x80: both channels in
//! compatibility mode, bus-master capable) and the bus-master DMA registers in
//! the 16-byte I/O BAR 4 (primary at +0, secondary at +8). It has no INTx pin.
//!
//! The legacy ports answer while the command register's I/O space bit and the
//! channel's IDE decode enable (bit 15 of IDETIM, 0x40 primary and 0x42
//! secondary) are both set, as the PIIX datasheet says. Both are 0 at reset;
//! SeaBIOS sets them before it probes (I/O space for every device, IDETIM to
//! 0x8000), and Linux's ata_piix reads IDETIM to skip disabled channels.
//! QEMU decodes its legacy ports whatever the registers say; after SeaBIOS
//! has run the two agree. A machine that boots without firmware can call
//! [`PiixIde::enable_legacy_decode`] to make them decode from power-on.
//! Every other register from 0x40 on is plain read/write storage (timings),
//! as in QEMU.

use serde::{Deserialize, Serialize};

use emu_core::{Device, DeviceState, IrqLine, StateError};

use super::config::{BarKind, PciConfigSpace, PciConfigState, PciIds, command};
use super::i440fx::INTEL_VENDOR_ID;
use super::{PciError, PciFunction, host, ones64, window_offset};
use crate::ide::{IdeChannel, IdeChannelState, IdeDrive};
use crate::state::invalid;
use crate::virtio::GuestMemoryHandle;

/// The 82371SB PIIX3 IDE function's device ID.
pub const PIIX3_IDE_DEVICE_ID: u16 = 0x7010;
/// IDE timing register of the primary channel; bit 15 enables its decode.
pub const IDETIM_PRIMARY: u16 = 0x40;
/// IDE timing register of the secondary channel.
pub const IDETIM_SECONDARY: u16 = 0x42;
/// IDETIM's IDE decode enable bit.
pub const IDETIM_DECODE_ENABLE: u16 = 0x8000;
/// The bus-master BAR.
pub const BMDMA_BAR: usize = 4;
/// Window indexes [`PciFunction::decode_pio`] gives the legacy ports, above
/// the six BARs: primary command block, primary control, secondary command
/// block, secondary control.
pub const PRIMARY_COMMAND_WINDOW: usize = 6;
/// See [`PRIMARY_COMMAND_WINDOW`].
pub const PRIMARY_CONTROL_WINDOW: usize = 7;
/// See [`PRIMARY_COMMAND_WINDOW`].
pub const SECONDARY_COMMAND_WINDOW: usize = 8;
/// See [`PRIMARY_COMMAND_WINDOW`].
pub const SECONDARY_CONTROL_WINDOW: usize = 9;
/// Command block and control ports of the two channels.
pub const LEGACY_PORTS: [(u16, u16); 2] = [(0x1f0, 0x3f6), (0x170, 0x376)];

const KIND: &str = "piix3-ide";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct PiixIdeState {
    config: PciConfigState,
    channels: [IdeChannelState; 2],
}

/// The PIIX3 IDE function with its two channels.
#[derive(Debug)]
pub struct PiixIde {
    config: PciConfigSpace,
    channels: [IdeChannel; 2],
    memory: GuestMemoryHandle,
}

impl PiixIde {
    /// The function at power-on with `drives[channel][unit]` (unit 0 is the
    /// master), raising `irqs` (the primary's, ISA IRQ 14, then the
    /// secondary's, IRQ 15), doing DMA to and from `memory`. Drive serial
    /// numbers count from QM00001 over the present drives, in order.
    pub fn new(
        drives: [[Option<IdeDrive>; 2]; 2],
        irqs: [Box<dyn IrqLine>; 2],
        memory: GuestMemoryHandle,
    ) -> Result<PiixIde, PciError> {
        let mut config = PciConfigSpace::new(PciIds {
            vendor_id: INTEL_VENDOR_ID,
            device_id: PIIX3_IDE_DEVICE_ID,
            class_code: 0x01_0180,
            revision_id: 0,
            subsystem_vendor_id: host::QEMU_SUBSYSTEM_VENDOR_ID,
            subsystem_id: host::QEMU_SUBSYSTEM_ID,
        });
        // Status: fast back-to-back capable, medium DEVSEL timing.
        config.set_initial(0x06, &[0x80, 0x02]);
        config.add_bar(BMDMA_BAR, BarKind::Io, 16)?;
        // Device-specific registers are storage (IDETIM, SIDETIM...).
        config.set_writable(0x40, &[0xff; 0xc0]);
        let [primary, secondary] = drives;
        let [irq0, irq1] = irqs;
        let first = IdeChannel::new(primary, irq0, 1);
        let second_serial = 1 + first.drive_count();
        let second = IdeChannel::new(secondary, irq1, second_serial);
        Ok(PiixIde {
            config,
            channels: [first, second],
            memory,
        })
    }

    /// Makes both channels decode from power-on (IDETIM = 0x8000 and the I/O
    /// space bit set at reset), for machines without firmware to do it.
    pub fn enable_legacy_decode(mut self) -> PiixIde {
        let enable = IDETIM_DECODE_ENABLE.to_le_bytes();
        self.config.set_initial(IDETIM_PRIMARY, &enable);
        self.config.set_initial(IDETIM_SECONDARY, &enable);
        let cmd = self.config.command() | command::IO_SPACE;
        self.config.set_initial(0x04, &cmd.to_le_bytes());
        self
    }

    /// Channel `index` (0 primary, 1 secondary), e.g. to change a CD-ROM's
    /// medium with [`IdeChannel::change_medium`].
    pub fn channel_mut(&mut self, index: usize) -> Option<&mut IdeChannel> {
        self.channels.get_mut(index)
    }

    /// Whether channel `index`'s legacy ports decode now.
    pub fn legacy_decode(&self, index: usize) -> bool {
        let idetim = [IDETIM_PRIMARY, IDETIM_SECONDARY];
        idetim.get(index).is_some_and(|&at| {
            self.config.command() & command::IO_SPACE != 0
                && self.config.get_u16(at) & IDETIM_DECODE_ENABLE != 0
        })
    }
}

impl Device for PiixIde {
    fn reset(&mut self) {
        self.config.reset();
        for channel in &mut self.channels {
            channel.reset();
        }
    }

    fn save_state(&self) -> DeviceState {
        let state = PiixIdeState {
            config: self.config.state(),
            channels: [self.channels[0].state(), self.channels[1].state()],
        };
        DeviceState::encode(KIND, VERSION, &state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let state: PiixIdeState = state.decode(KIND, VERSION)?;
        // Check everything before changing anything.
        let mut config = self.config.clone();
        config
            .restore(&state.config)
            .map_err(|reason| invalid(KIND, reason))?;
        for (i, (channel, saved)) in self.channels.iter().zip(&state.channels).enumerate() {
            channel
                .check(saved)
                .map_err(|reason| invalid(KIND, format!("channel {i}: {reason}")))?;
        }
        for (channel, saved) in self.channels.iter_mut().zip(&state.channels) {
            channel.apply(saved);
        }
        self.config = config;
        Ok(())
    }
}

impl PciFunction for PiixIde {
    fn config(&self) -> &PciConfigSpace {
        &self.config
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.config.write(offset, size, value);
    }

    fn decode_pio(&self, port: u64, len: u64) -> Option<(usize, u64)> {
        if let Some(hit) = self.config.decode_pio(port, len) {
            return Some(hit);
        }
        for (index, &(command, control)) in LEGACY_PORTS.iter().enumerate() {
            if !self.legacy_decode(index) {
                continue;
            }
            if let Some(into) = window_offset(port, len, u64::from(command), 8) {
                return Some((PRIMARY_COMMAND_WINDOW + 2 * index, into));
            }
            // One port only: the next one (0x3F7) is the floppy controller's.
            if port == u64::from(control) && len == 1 {
                return Some((PRIMARY_CONTROL_WINDOW + 2 * index, 0));
            }
        }
        None
    }

    fn bar_read(&mut self, bar: usize, offset: u64, size: u8) -> u64 {
        let ones = ones64(size);
        let value = match bar {
            BMDMA_BAR => {
                let channel = (offset >> 3) as usize & 1;
                self.channels[channel].bm_read(offset & 7, size)
            }
            PRIMARY_COMMAND_WINDOW | SECONDARY_COMMAND_WINDOW => {
                self.channels[(bar - PRIMARY_COMMAND_WINDOW) / 2].read(offset, size)
            }
            PRIMARY_CONTROL_WINDOW | SECONDARY_CONTROL_WINDOW => {
                u32::from(self.channels[(bar - PRIMARY_CONTROL_WINDOW) / 2].read_control())
            }
            _ => return ones,
        };
        u64::from(value) & ones
    }

    fn bar_write(&mut self, bar: usize, offset: u64, size: u8, value: u64) {
        let bus_master = self.config.bus_master();
        let value = value as u32;
        match bar {
            BMDMA_BAR => {
                let channel = (offset >> 3) as usize & 1;
                self.channels[channel].bm_write(offset & 7, size, value, &self.memory, bus_master);
            }
            PRIMARY_COMMAND_WINDOW | SECONDARY_COMMAND_WINDOW => {
                let channel = &mut self.channels[(bar - PRIMARY_COMMAND_WINDOW) / 2];
                channel.write_with_dma(offset, size, value, &self.memory, bus_master);
            }
            PRIMARY_CONTROL_WINDOW | SECONDARY_CONTROL_WINDOW => {
                self.channels[(bar - PRIMARY_CONTROL_WINDOW) / 2].write_control(value as u8);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
