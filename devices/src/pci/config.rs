//! The type-0 configuration space of one PCI function (PCI Local Bus 3.0 §6.1).
//!
//! [`PciConfigSpace`] is what a function model embeds: the 256-byte header and
//! capability area (4 KiB for a PCI Express function reached through ECAM), a mask
//! of the bits the guest may write, a mask of the write-one-to-clear bits, the
//! BARs with their sizes, and a builder for the capability list. Guest accesses go
//! through [`PciConfigSpace::read`] and [`PciConfigSpace::write`], which apply the
//! masks; the model itself changes read-only bits with [`PciConfigSpace::set_bytes`].
//!
//! BAR sizing works the way software expects from hardware: the address bits below
//! the BAR's size are read-only zeros and the type bits are read-only, so writing
//! all ones and reading back yields the size mask. [`PciConfigSpace::decode_mmio`]
//! and [`PciConfigSpace::decode_pio`] answer which BAR (and offset into it) an
//! access hits, honouring the command register's enable bits.

use serde::{Deserialize, Serialize};

use super::PciError;

/// Size of a conventional PCI function's configuration space.
pub const CONFIG_SPACE_SIZE: usize = 0x100;
/// Size of a PCI Express function's configuration space (reached through ECAM).
pub const EXTENDED_CONFIG_SPACE_SIZE: usize = 0x1000;
/// Number of BARs in a type-0 header.
pub const BAR_COUNT: usize = 6;
/// The window index [`PciConfigSpace::decode_mmio`] gives the expansion ROM:
/// the first one above the BARs.
pub const ROM_BAR: usize = BAR_COUNT;
/// The smallest expansion ROM the register can describe: its address bits
/// start at bit 11 (PCI Local Bus 3.0 §6.2.5.2).
pub const MIN_ROM_SIZE: u64 = 0x800;

/// Offsets of the type-0 header registers.
pub mod reg {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits), see [`super::command`].
    pub const COMMAND: u16 = 0x04;
    /// Status register (16 bits), see [`super::status`].
    pub const STATUS: u16 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION_ID: u16 = 0x08;
    /// Programming interface, the low byte of the 24-bit class code.
    pub const CLASS_PROG_IF: u16 = 0x09;
    /// Sub-class, the middle byte of the class code.
    pub const CLASS_SUBCLASS: u16 = 0x0a;
    /// Base class, the high byte of the class code.
    pub const CLASS_BASE: u16 = 0x0b;
    /// Cache line size (8 bits, scratch for software).
    pub const CACHE_LINE_SIZE: u16 = 0x0c;
    /// Latency timer (8 bits, read-only zero here).
    pub const LATENCY_TIMER: u16 = 0x0d;
    /// Header type (8 bits); bit 7 marks a multi-function device.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// BAR 0; BAR n is at `BAR0 + 4 * n`.
    pub const BAR0: u16 = 0x10;
    /// Subsystem vendor ID (16 bits).
    pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
    /// Subsystem ID (16 bits).
    pub const SUBSYSTEM_ID: u16 = 0x2e;
    /// Expansion ROM base address: reads as zero unless the function declared
    /// a ROM with [`super::PciConfigSpace::add_expansion_rom`].
    pub const EXPANSION_ROM: u16 = 0x30;
    /// Offset of the first capability (8 bits), valid when
    /// [`super::status::CAPABILITIES_LIST`] is set.
    pub const CAPABILITIES_POINTER: u16 = 0x34;
    /// Interrupt line (8 bits, scratch for software).
    pub const INTERRUPT_LINE: u16 = 0x3c;
    /// Interrupt pin (8 bits): 0 none, 1 INTA ... 4 INTD.
    pub const INTERRUPT_PIN: u16 = 0x3d;
    /// First byte after the type-0 header, where capabilities start.
    pub const HEADER_END: u16 = 0x40;
}

/// Command register bits.
pub mod command {
    /// The function decodes its I/O BARs.
    pub const IO_SPACE: u16 = 1 << 0;
    /// The function decodes its memory BARs.
    pub const MEMORY_SPACE: u16 = 1 << 1;
    /// The function may master the bus (DMA, MSI writes).
    pub const BUS_MASTER: u16 = 1 << 2;
    /// Parity error response.
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 6;
    /// SERR# enable.
    pub const SERR_ENABLE: u16 = 1 << 8;
    /// The function must not assert its INTx pin.
    pub const INTX_DISABLE: u16 = 1 << 10;
    /// Every bit software may write.
    pub const WRITABLE: u16 =
        IO_SPACE | MEMORY_SPACE | BUS_MASTER | PARITY_ERROR_RESPONSE | SERR_ENABLE | INTX_DISABLE;
}

/// Status register bits.
pub mod status {
    /// The function's INTx is pending (whether or not INTX_DISABLE masks it).
    pub const INTERRUPT: u16 = 1 << 3;
    /// The capabilities pointer is valid.
    pub const CAPABILITIES_LIST: u16 = 1 << 4;
    /// The error bits, cleared by writing one.
    pub const WRITE_ONE_TO_CLEAR: u16 = 0xf900;
}

/// Capability IDs used here.
pub mod cap_id {
    /// Vendor-specific capability (virtio uses it for its structures).
    pub const VENDOR_SPECIFIC: u8 = 0x09;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// BAR type bits.
const BAR_IO: u32 = 0x1;
const BAR_MEM_64: u32 = 0x4;
const BAR_PREFETCHABLE: u32 = 0x8;
const BAR_IO_ADDRESS_MASK: u64 = !0x3;
const BAR_MEM_ADDRESS_MASK: u64 = !0xf;
/// The expansion ROM register's decode enable bit.
const ROM_ENABLE: u32 = 0x1;
/// The expansion ROM register's address bits.
const ROM_ADDRESS_MASK: u32 = !(MIN_ROM_SIZE as u32 - 1);

/// What a BAR maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BarKind {
    /// I/O ports.
    Io,
    /// Memory below 4 GiB.
    Memory32 {
        /// Reads have no side effects (the OS may map it write-combined).
        prefetchable: bool,
    },
    /// Memory anywhere in 64 bits; takes this BAR and the next.
    Memory64 {
        /// Reads have no side effects.
        prefetchable: bool,
    },
}

impl BarKind {
    fn is_io(self) -> bool {
        self == BarKind::Io
    }
}

/// One BAR a function declares: its kind and size (a power of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// I/O, 32-bit or 64-bit memory.
    pub kind: BarKind,
    /// Size in bytes.
    pub size: u64,
}

/// The IDs in a function's header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciIds {
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// 24-bit class code: base class, sub-class, programming interface.
    pub class_code: u32,
    /// Revision ID.
    pub revision_id: u8,
    /// Subsystem vendor ID.
    pub subsystem_vendor_id: u16,
    /// Subsystem ID.
    pub subsystem_id: u16,
}

/// The guest-visible part of a configuration space: its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciConfigState {
    /// The whole space, 256 or 4096 bytes.
    #[serde(with = "crate::state::hex_bytes")]
    pub bytes: Vec<u8>,
}

/// The configuration space of one function.
///
/// The power-on contents are whatever the builder methods (`new`, [`add_bar`],
/// [`add_capability`], [`set_writable`], [`set_initial`]...) left; [`reset`]
/// returns to them. Masks and BAR sizes are fixed by the model, not state.
///
/// [`add_bar`]: PciConfigSpace::add_bar
/// [`add_capability`]: PciConfigSpace::add_capability
/// [`set_writable`]: PciConfigSpace::set_writable
/// [`set_initial`]: PciConfigSpace::set_initial
/// [`reset`]: PciConfigSpace::reset
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciConfigSpace {
    bytes: Vec<u8>,
    power_on: Vec<u8>,
    /// Bits the guest writes.
    wmask: Vec<u8>,
    /// Bits the guest clears by writing one.
    w1cmask: Vec<u8>,
    /// Read-only bits the model changes at run time (not checked on restore).
    volatile: Vec<u8>,
    bars: [Option<Bar>; BAR_COUNT],
    /// The expansion ROM's size, when the function has one.
    rom_size: Option<u64>,
    /// Where the next capability goes.
    next_capability: u16,
    /// The last capability in the list, whose `next` pointer a new one fills.
    last_capability: Option<u16>,
}

fn ones(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

impl PciConfigSpace {
    /// A conventional (256-byte) configuration space with `ids`, a single-function
    /// type-0 header, no BARs, no capabilities and no interrupt pin.
    pub fn new(ids: PciIds) -> PciConfigSpace {
        PciConfigSpace::with_size(ids, CONFIG_SPACE_SIZE)
    }

    /// A PCI Express (4 KiB) configuration space; the extended part reads as zero
    /// (no extended capabilities).
    pub fn new_extended(ids: PciIds) -> PciConfigSpace {
        PciConfigSpace::with_size(ids, EXTENDED_CONFIG_SPACE_SIZE)
    }

    fn with_size(ids: PciIds, size: usize) -> PciConfigSpace {
        let mut config = PciConfigSpace {
            bytes: vec![0; size],
            power_on: vec![0; size],
            wmask: vec![0; size],
            w1cmask: vec![0; size],
            volatile: vec![0; size],
            bars: [None; BAR_COUNT],
            rom_size: None,
            next_capability: reg::HEADER_END,
            last_capability: None,
        };
        config.set_initial(reg::VENDOR_ID, &ids.vendor_id.to_le_bytes());
        config.set_initial(reg::DEVICE_ID, &ids.device_id.to_le_bytes());
        config.set_initial(reg::REVISION_ID, &[ids.revision_id]);
        config.set_initial(reg::CLASS_PROG_IF, &ids.class_code.to_le_bytes()[..3]);
        config.set_initial(
            reg::SUBSYSTEM_VENDOR_ID,
            &ids.subsystem_vendor_id.to_le_bytes(),
        );
        config.set_initial(reg::SUBSYSTEM_ID, &ids.subsystem_id.to_le_bytes());
        config.set_writable(reg::COMMAND, &command::WRITABLE.to_le_bytes());
        config.set_write_one_to_clear(reg::STATUS, &status::WRITE_ONE_TO_CLEAR.to_le_bytes());
        config.set_volatile(reg::STATUS, &status::INTERRUPT.to_le_bytes());
        config.set_writable(reg::CACHE_LINE_SIZE, &[0xff]);
        config.set_writable(reg::INTERRUPT_LINE, &[0xff]);
        config
    }

    /// Size of the space in bytes (256 or 4096).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a configuration space has at least its header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn range(&self, offset: u16, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::from(offset);
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }

    /// Sets power-on contents (IDs, capability fields, read-only values); bytes
    /// outside the space are ignored.
    pub fn set_initial(&mut self, offset: u16, data: &[u8]) {
        if let Some(range) = self.range(offset, data.len()) {
            self.bytes[range.clone()].copy_from_slice(data);
            self.power_on[range].copy_from_slice(data);
        }
    }

    /// Makes the bits set in `mask` (bytes from `offset`) writable by the guest.
    pub fn set_writable(&mut self, offset: u16, mask: &[u8]) {
        if let Some(range) = self.range(offset, mask.len()) {
            self.wmask[range].copy_from_slice(mask);
        }
    }

    /// Makes the bits set in `mask` write-one-to-clear.
    pub fn set_write_one_to_clear(&mut self, offset: u16, mask: &[u8]) {
        if let Some(range) = self.range(offset, mask.len()) {
            self.w1cmask[range].copy_from_slice(mask);
        }
    }

    /// Marks read-only bits the model changes at run time (an interrupt-pending
    /// flag), so a restore does not insist they match the power-on value.
    pub fn set_volatile(&mut self, offset: u16, mask: &[u8]) {
        if let Some(range) = self.range(offset, mask.len()) {
            self.volatile[range].copy_from_slice(mask);
        }
    }

    /// Sets the interrupt pin: 0 for none, 1 (INTA) to 4 (INTD).
    pub fn set_interrupt_pin(&mut self, pin: u8) {
        self.set_initial(reg::INTERRUPT_PIN, &[pin.min(4)]);
    }

    /// The interrupt pin: 0 for none, 1 (INTA) to 4 (INTD).
    pub fn interrupt_pin(&self) -> u8 {
        self.get_u8(reg::INTERRUPT_PIN)
    }

    /// Declares BAR `index` of `kind` and `size` (a power of two; at least 4 bytes
    /// for I/O and 16 for memory; 32-bit BARs below 4 GiB). A 64-bit BAR takes
    /// `index` and `index + 1`.
    pub fn add_bar(&mut self, index: usize, kind: BarKind, size: u64) -> Result<(), PciError> {
        let bad = |reason: &str| PciError::BadBar {
            index,
            reason: reason.to_owned(),
        };
        let wide = matches!(kind, BarKind::Memory64 { .. });
        let last = if wide { index + 1 } else { index };
        if last >= BAR_COUNT {
            return Err(bad("index out of range"));
        }
        if self.bars[index].is_some() || (wide && self.bars[index + 1].is_some()) {
            return Err(bad("already declared"));
        }
        if index > 0
            && matches!(self.bars[index - 1], Some(b) if matches!(b.kind, BarKind::Memory64 { .. }))
        {
            return Err(bad("taken by the 64-bit BAR below"));
        }
        let (min, max) = match kind {
            BarKind::Io => (4, 1 << 16),
            BarKind::Memory32 { .. } => (16, 1 << 31),
            BarKind::Memory64 { .. } => (16, 1 << 63),
        };
        if !size.is_power_of_two() || size < min || size > max {
            return Err(bad("size is not a power of two in range"));
        }
        let type_bits = match kind {
            BarKind::Io => BAR_IO,
            BarKind::Memory32 { prefetchable } => {
                if prefetchable {
                    BAR_PREFETCHABLE
                } else {
                    0
                }
            }
            BarKind::Memory64 { prefetchable } => {
                BAR_MEM_64 | if prefetchable { BAR_PREFETCHABLE } else { 0 }
            }
        };
        let address_mask = !(size - 1)
            & if kind.is_io() {
                BAR_IO_ADDRESS_MASK
            } else {
                BAR_MEM_ADDRESS_MASK
            };
        let offset = bar_offset(index);
        self.set_initial(offset, &type_bits.to_le_bytes());
        self.set_writable(offset, &(address_mask as u32).to_le_bytes());
        if wide {
            self.set_writable(offset + 4, &((address_mask >> 32) as u32).to_le_bytes());
        }
        self.bars[index] = Some(Bar { kind, size });
        Ok(())
    }

    /// BAR `index` as declared, if any (the upper half of a 64-bit BAR is not one).
    pub fn bar(&self, index: usize) -> Option<Bar> {
        self.bars.get(index).copied().flatten()
    }

    /// The address software programmed into BAR `index` (a port number for I/O
    /// BARs), whether or not decoding is enabled.
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let bar = self.bar(index)?;
        let offset = bar_offset(index);
        let low = u64::from(self.get_u32(offset));
        Some(match bar.kind {
            BarKind::Io => low & BAR_IO_ADDRESS_MASK,
            BarKind::Memory32 { .. } => low & BAR_MEM_ADDRESS_MASK,
            BarKind::Memory64 { .. } => {
                (low & BAR_MEM_ADDRESS_MASK) | u64::from(self.get_u32(offset + 4)) << 32
            }
        })
    }

    /// Where BAR `index` decodes now: `(base, size)` when its space is enabled in
    /// the command register and its address is usable. As in QEMU, a BAR at 0, a
    /// BAR that wraps (the value left by sizing) and a 32-bit BAR reaching 4 GiB
    /// decode nothing.
    pub fn bar_mapping(&self, index: usize) -> Option<(u64, u64)> {
        let bar = self.bar(index)?;
        let enable = if bar.kind.is_io() {
            command::IO_SPACE
        } else {
            command::MEMORY_SPACE
        };
        if self.command() & enable == 0 {
            return None;
        }
        let base = self.bar_address(index)?;
        let last = base.checked_add(bar.size - 1)?;
        let limit = match bar.kind {
            BarKind::Io | BarKind::Memory32 { .. } => u64::from(u32::MAX),
            BarKind::Memory64 { .. } => u64::MAX,
        };
        (base != 0 && last < limit).then_some((base, bar.size))
    }

    /// Declares an expansion ROM of `size` bytes (a power of two from
    /// [`MIN_ROM_SIZE`] to 16 MiB): the register at 0x30 then sizes like a
    /// 32-bit memory BAR, and decodes at [`ROM_BAR`] while its enable bit and
    /// the command register's memory space bit are both set.
    pub fn add_expansion_rom(&mut self, size: u64) -> Result<(), PciError> {
        if self.rom_size.is_some() {
            return Err(PciError::BadBar {
                index: ROM_BAR,
                reason: "already declared".to_owned(),
            });
        }
        if !size.is_power_of_two() || !(MIN_ROM_SIZE..=1 << 24).contains(&size) {
            return Err(PciError::BadBar {
                index: ROM_BAR,
                reason: "expansion ROM size is not a power of two in range".to_owned(),
            });
        }
        // Below 16 MiB: the mask fits in 32 bits.
        let writable = (!(size - 1) as u32 & ROM_ADDRESS_MASK) | ROM_ENABLE;
        self.set_writable(reg::EXPANSION_ROM, &writable.to_le_bytes());
        self.rom_size = Some(size);
        Ok(())
    }

    /// The expansion ROM's size, if the function has one.
    pub fn expansion_rom_size(&self) -> Option<u64> {
        self.rom_size
    }

    /// Where the expansion ROM decodes now: `(base, size)` when its enable bit
    /// and memory decoding are on and its address is usable (not 0, and not
    /// past 4 GiB, as after sizing).
    pub fn expansion_rom_mapping(&self) -> Option<(u64, u64)> {
        let size = self.rom_size?;
        let value = self.get_u32(reg::EXPANSION_ROM);
        if value & ROM_ENABLE == 0 || self.command() & command::MEMORY_SPACE == 0 {
            return None;
        }
        let base = u64::from(value & ROM_ADDRESS_MASK);
        let last = base.checked_add(size - 1)?;
        (base != 0 && last < u64::from(u32::MAX)).then_some((base, size))
    }

    fn decode(&self, io: bool, addr: u64, len: u64) -> Option<(usize, u64)> {
        let within = |index: usize, (base, size): (u64, u64)| {
            let offset = addr.checked_sub(base)?;
            (offset.checked_add(len)? <= size).then_some((index, offset))
        };
        let bars = (0..BAR_COUNT).find_map(|index| {
            if self.bar(index)?.kind.is_io() != io {
                return None;
            }
            within(index, self.bar_mapping(index)?)
        });
        if io {
            return bars;
        }
        bars.or_else(|| within(ROM_BAR, self.expansion_rom_mapping()?))
    }

    /// The memory BAR (or [`ROM_BAR`]) and offset an access of `len` bytes at
    /// `addr` falls in entirely, when memory decoding is enabled.
    pub fn decode_mmio(&self, addr: u64, len: u64) -> Option<(usize, u64)> {
        self.decode(false, addr, len)
    }

    /// The I/O BAR and offset an access of `len` bytes at `port` falls in
    /// entirely, when I/O decoding is enabled.
    pub fn decode_pio(&self, port: u64, len: u64) -> Option<(usize, u64)> {
        self.decode(true, port, len)
    }

    /// Appends a capability with `id` and `body` (the bytes after the ID and next
    /// pointer) to the list; returns its offset. Capabilities are dword-aligned and
    /// live in the first 256 bytes.
    pub fn add_capability(&mut self, id: u8, body: &[u8]) -> Result<u16, PciError> {
        let offset = self.next_capability;
        let len = body.len() + 2;
        let end = usize::from(offset) + len;
        if end > CONFIG_SPACE_SIZE {
            return Err(PciError::CapabilitiesFull { len });
        }
        self.set_initial(offset, &[id, 0]);
        self.set_initial(offset + 2, body);
        // Both fit in u8: capabilities live below 0x100.
        match self.last_capability {
            None => {
                self.set_initial(reg::CAPABILITIES_POINTER, &[offset as u8]);
                let status = self.get_u16(reg::STATUS) | status::CAPABILITIES_LIST;
                self.set_initial(reg::STATUS, &status.to_le_bytes());
            }
            Some(last) => self.set_initial(last + 1, &[offset as u8]),
        }
        self.last_capability = Some(offset);
        self.next_capability = (end as u16).next_multiple_of(4);
        Ok(offset)
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get_u16(reg::COMMAND)
    }

    /// Whether software allowed the function to master the bus (DMA, MSI).
    pub fn bus_master(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// Whether software disabled the function's INTx pin.
    pub fn intx_disabled(&self) -> bool {
        self.command() & command::INTX_DISABLE != 0
    }

    /// Mirrors the function's INTx state in the status register.
    pub fn set_interrupt_status(&mut self, pending: bool) {
        let mut value = self.get_u16(reg::STATUS) & !status::INTERRUPT;
        if pending {
            value |= status::INTERRUPT;
        }
        self.set_bytes(reg::STATUS, &value.to_le_bytes());
    }

    /// A guest read of `size` bytes (1, 2 or 4) at `offset`, little-endian. Bytes
    /// past the end of the space read as all ones, as do other widths.
    pub fn read(&self, offset: u16, size: u8) -> u32 {
        if !matches!(size, 1 | 2 | 4) {
            return u32::MAX;
        }
        let mut value = 0u32;
        for i in 0..size {
            let byte = usize::from(offset)
                .checked_add(usize::from(i))
                .and_then(|at| self.bytes.get(at))
                .copied()
                .unwrap_or(0xff);
            value |= u32::from(byte) << (8 * i);
        }
        value & ones(size)
    }

    /// A guest write of the low `size` bytes (1, 2 or 4) of `value` at `offset`:
    /// only writable bits change, write-one-to-clear bits clear where `value` has
    /// ones, and bytes past the end are dropped.
    pub fn write(&mut self, offset: u16, size: u8, value: u32) {
        if !matches!(size, 1 | 2 | 4) {
            return;
        }
        for (i, new) in value
            .to_le_bytes()
            .into_iter()
            .take(usize::from(size))
            .enumerate()
        {
            let Some(at) = usize::from(offset).checked_add(i) else {
                return;
            };
            if at >= self.bytes.len() {
                return;
            }
            let wmask = self.wmask[at];
            let old = self.bytes[at];
            self.bytes[at] = ((old & !wmask) | (new & wmask)) & !(new & self.w1cmask[at]);
        }
    }

    /// Reads raw bytes at `offset` (zeros past the end).
    pub fn get_bytes(&self, offset: u16, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = usize::from(offset)
                .checked_add(i)
                .and_then(|at| self.bytes.get(at))
                .copied()
                .unwrap_or(0);
        }
    }

    /// Overwrites raw bytes at `offset`, masks aside (the model's own changes);
    /// bytes outside the space are ignored. Reset forgets them.
    pub fn set_bytes(&mut self, offset: u16, data: &[u8]) {
        if let Some(range) = self.range(offset, data.len()) {
            self.bytes[range].copy_from_slice(data);
        }
    }

    /// The byte at `offset` (0 past the end).
    pub fn get_u8(&self, offset: u16) -> u8 {
        let mut b = [0u8; 1];
        self.get_bytes(offset, &mut b);
        b[0]
    }

    /// The 16-bit word at `offset`.
    pub fn get_u16(&self, offset: u16) -> u16 {
        let mut b = [0u8; 2];
        self.get_bytes(offset, &mut b);
        u16::from_le_bytes(b)
    }

    /// The 32-bit word at `offset`.
    pub fn get_u32(&self, offset: u16) -> u32 {
        let mut b = [0u8; 4];
        self.get_bytes(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// Back to the power-on contents: BARs unprogrammed, decoding off, capability
    /// registers as built.
    pub fn reset(&mut self) {
        self.bytes.copy_from_slice(&self.power_on);
    }

    /// The guest-visible state.
    pub fn state(&self) -> PciConfigState {
        PciConfigState {
            bytes: self.bytes.clone(),
        }
    }

    /// Takes `state`, saved from a space built the same way: the size must match,
    /// and so must every read-only bit (IDs, BAR types, capability layout), so a
    /// state can never give a BAR a size or a type its model does not have. On an
    /// error nothing changes.
    pub fn restore(&mut self, state: &PciConfigState) -> Result<(), String> {
        if state.bytes.len() != self.bytes.len() {
            return Err(format!(
                "configuration space of {} bytes saved, the function has {}",
                state.bytes.len(),
                self.bytes.len()
            ));
        }
        let mismatch = (0..self.bytes.len()).find(|&at| {
            let fixed = !(self.wmask[at] | self.w1cmask[at] | self.volatile[at]);
            (state.bytes[at] ^ self.power_on[at]) & fixed != 0
        });
        if let Some(at) = mismatch {
            return Err(format!(
                "read-only configuration byte {at:#x} is {:#04x}, the function has {:#04x}",
                state.bytes[at], self.power_on[at]
            ));
        }
        self.bytes.copy_from_slice(&state.bytes);
        Ok(())
    }
}

/// The configuration offset of BAR `index`.
pub fn bar_offset(index: usize) -> u16 {
    // At most BAR_COUNT + 1, far below u16::MAX.
    reg::BAR0 + 4 * index.min(BAR_COUNT) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PciIds {
        PciIds {
            vendor_id: 0x1234,
            device_id: 0x5678,
            class_code: 0x01_02_03,
            revision_id: 7,
            subsystem_vendor_id: 0xaaaa,
            subsystem_id: 0xbbbb,
        }
    }

    fn sized(config: &mut PciConfigSpace, index: usize) -> u32 {
        let offset = bar_offset(index);
        config.write(offset, 4, u32::MAX);
        config.read(offset, 4)
    }

    #[test]
    fn header_ids_are_read_only() {
        let mut config = PciConfigSpace::new(ids());
        assert_eq!(config.read(reg::VENDOR_ID, 4), 0x5678_1234);
        assert_eq!(config.read(reg::REVISION_ID, 4), 0x0102_0307);
        assert_eq!(config.read(reg::SUBSYSTEM_VENDOR_ID, 4), 0xbbbb_aaaa);
        assert_eq!(config.read(reg::HEADER_TYPE, 1), 0);
        config.write(reg::VENDOR_ID, 4, 0);
        config.write(reg::REVISION_ID, 4, 0);
        assert_eq!(config.read(reg::VENDOR_ID, 2), 0x1234);
        assert_eq!(config.read(reg::CLASS_BASE, 1), 0x01);
        // Only the defined command bits stick; scratch registers are writable.
        config.write(reg::COMMAND, 2, 0xffff);
        assert_eq!(config.read(reg::COMMAND, 2), u32::from(command::WRITABLE));
        config.write(reg::INTERRUPT_LINE, 1, 0x2a);
        assert_eq!(config.read(reg::INTERRUPT_LINE, 1), 0x2a);
        config.write(reg::INTERRUPT_PIN, 1, 3);
        assert_eq!(config.read(reg::INTERRUPT_PIN, 1), 0);
        // Unaligned and odd widths.
        assert_eq!(config.read(reg::VENDOR_ID + 1, 2), 0x7812);
        assert_eq!(config.read(0, 3), u32::MAX);
        // Past the end of a conventional space: all ones.
        assert_eq!(config.read(0xfe, 4), 0xffff_0000);
        assert_eq!(config.read(0x100, 4), u32::MAX);
        config.write(0xffff, 4, 0);
    }

    #[test]
    fn status_error_bits_clear_by_writing_one() {
        let mut config = PciConfigSpace::new(ids());
        config.set_bytes(reg::STATUS, &0x2000u16.to_le_bytes());
        config.set_interrupt_status(true);
        assert_eq!(config.read(reg::STATUS, 2), 0x2008);
        config.write(reg::STATUS, 2, 0x0008);
        assert_eq!(
            config.read(reg::STATUS, 2),
            0x2008,
            "the INTx bit is read-only"
        );
        config.write(reg::STATUS, 2, 0x2000);
        assert_eq!(config.read(reg::STATUS, 2), 0x0008);
    }

    #[test]
    fn bars_size_like_hardware() {
        let mut config = PciConfigSpace::new(ids());
        config.add_bar(0, BarKind::Io, 0x100).unwrap();
        config
            .add_bar(
                1,
                BarKind::Memory32 {
                    prefetchable: false,
                },
                0x1000,
            )
            .unwrap();
        config
            .add_bar(2, BarKind::Memory64 { prefetchable: true }, 0x4000)
            .unwrap();
        config
            .add_bar(
                4,
                BarKind::Memory64 {
                    prefetchable: false,
                },
                1 << 33,
            )
            .unwrap();
        assert_eq!(config.read(bar_offset(0), 4), 1, "I/O type bit");
        assert_eq!(config.read(bar_offset(2), 4), 0xc, "64-bit prefetchable");
        assert_eq!(sized(&mut config, 0), 0xffff_ff01);
        assert_eq!(sized(&mut config, 1), 0xffff_f000);
        assert_eq!(sized(&mut config, 2), 0xffff_c00c);
        assert_eq!(sized(&mut config, 3), 0xffff_ffff, "upper half");
        assert_eq!(
            sized(&mut config, 4),
            0x0000_0004,
            "no address bits below 8 GiB"
        );
        assert_eq!(sized(&mut config, 5), 0xffff_fffe);
        // Programming an address keeps only the bits above the size.
        config.write(bar_offset(1), 4, 0x4000_1234);
        assert_eq!(config.bar_address(1), Some(0x4000_1000));
        config.write(bar_offset(2), 4, 0x0000_8000);
        config.write(bar_offset(3), 4, 0x4);
        assert_eq!(config.bar_address(2), Some(0x4_0000_8000));
        assert_eq!(config.bar(3), None, "the upper half is not a BAR");
        // An unused BAR and the expansion ROM read as zero and ignore writes.
        let mut plain = PciConfigSpace::new(ids());
        assert_eq!(sized(&mut plain, 5), 0);
        plain.write(reg::EXPANSION_ROM, 4, u32::MAX);
        assert_eq!(plain.read(reg::EXPANSION_ROM, 4), 0);
    }

    #[test]
    fn the_expansion_rom_sizes_and_decodes_like_a_bar() {
        let mut config = PciConfigSpace::new(ids());
        config
            .add_bar(
                0,
                BarKind::Memory32 {
                    prefetchable: false,
                },
                0x1000,
            )
            .unwrap();
        assert!(config.add_expansion_rom(0x400).is_err(), "below 2 KiB");
        assert!(config.add_expansion_rom(0x3000).is_err());
        config.add_expansion_rom(0x1_0000).unwrap();
        assert!(config.add_expansion_rom(0x1_0000).is_err());
        assert_eq!(config.expansion_rom_size(), Some(0x1_0000));
        // SeaBIOS sizes with all ones but the enable bit, as Linux does.
        config.write(reg::EXPANSION_ROM, 4, 0xffff_f800);
        assert_eq!(config.read(reg::EXPANSION_ROM, 4), 0xffff_0000);
        config.write(reg::EXPANSION_ROM, 4, 0xfebc_0000 | 1);
        config.write(bar_offset(0), 4, 0xfebd_0000);
        assert_eq!(config.decode_mmio(0xfebc_0010, 4), None, "memory space off");
        config.write(reg::COMMAND, 2, u32::from(command::MEMORY_SPACE));
        assert_eq!(
            config.expansion_rom_mapping(),
            Some((0xfebc_0000, 0x1_0000))
        );
        assert_eq!(config.decode_mmio(0xfebc_0010, 4), Some((ROM_BAR, 0x10)));
        assert_eq!(
            config.decode_mmio(0xfebc_fffe, 4),
            None,
            "runs past the end"
        );
        assert_eq!(config.decode_mmio(0xfebd_0004, 4), Some((0, 4)));
        assert_eq!(config.decode_pio(0xfebc_0010, 1), None);
        // The enable bit alone turns it off; the address stays.
        config.write(reg::EXPANSION_ROM, 4, 0xfebc_0000);
        assert_eq!(config.decode_mmio(0xfebc_0010, 4), None);
        assert_eq!(config.read(reg::EXPANSION_ROM, 4), 0xfebc_0000);
        let saved = config.state();
        config.reset();
        assert_eq!(config.read(reg::EXPANSION_ROM, 4), 0);
        config.restore(&saved).unwrap();
        assert_eq!(config.read(reg::EXPANSION_ROM, 4), 0xfebc_0000);
    }

    #[test]
    fn bad_bar_declarations_are_refused() {
        let mut config = PciConfigSpace::new(ids());
        let mem32 = BarKind::Memory32 {
            prefetchable: false,
        };
        let mem64 = BarKind::Memory64 {
            prefetchable: false,
        };
        assert!(config.add_bar(6, mem32, 0x1000).is_err());
        assert!(config.add_bar(5, mem64, 0x1000).is_err());
        assert!(config.add_bar(0, mem32, 0x1001).is_err());
        assert!(config.add_bar(0, mem32, 8).is_err());
        assert!(config.add_bar(0, BarKind::Io, 2).is_err());
        assert!(config.add_bar(0, mem32, 1 << 32).is_err());
        config.add_bar(0, mem64, 0x1000).unwrap();
        assert!(config.add_bar(1, mem32, 0x1000).is_err());
        assert!(config.add_bar(0, mem32, 0x1000).is_err());
        config.add_bar(2, mem32, 0x1000).unwrap();
        assert!(config.add_bar(1, mem64, 0x1000).is_err());
    }

    #[test]
    fn decoding_follows_the_command_register() {
        let mut config = PciConfigSpace::new(ids());
        config.add_bar(0, BarKind::Io, 0x20).unwrap();
        config
            .add_bar(2, BarKind::Memory64 { prefetchable: true }, 0x4000)
            .unwrap();
        config.write(bar_offset(0), 4, 0x1000);
        config.write(bar_offset(2), 4, 0x4000_0000);
        config.write(bar_offset(3), 4, 0x1);
        assert_eq!(config.decode_mmio(0x1_4000_0010, 4), None, "decoding off");
        assert_eq!(config.decode_pio(0x1004, 2), None);
        config.write(reg::COMMAND, 2, u32::from(command::MEMORY_SPACE));
        assert_eq!(config.decode_mmio(0x1_4000_0010, 4), Some((2, 0x10)));
        assert_eq!(config.decode_mmio(0x1_4000_3ffc, 4), Some((2, 0x3ffc)));
        assert_eq!(
            config.decode_mmio(0x1_4000_3ffe, 4),
            None,
            "runs past the end"
        );
        assert_eq!(config.decode_mmio(0x1_4000_4000, 1), None);
        assert_eq!(config.decode_mmio(0x1000, 1), None, "ports are not memory");
        assert_eq!(config.decode_pio(0x1004, 2), None, "I/O still off");
        config.write(reg::COMMAND, 2, u32::from(command::IO_SPACE));
        assert_eq!(config.decode_pio(0x1004, 2), Some((0, 4)));
        assert_eq!(config.decode_mmio(0x1_4000_0010, 4), None);
        // Sizing leaves a value that decodes nothing; so does address 0.
        config.write(reg::COMMAND, 2, 3);
        sized(&mut config, 2);
        sized(&mut config, 3);
        assert_eq!(config.bar_mapping(2), None);
        config.write(bar_offset(0), 4, 0);
        assert_eq!(config.bar_mapping(0), None);
        assert_eq!(config.decode_pio(0, 1), None);
        assert_eq!(config.decode_mmio(u64::MAX, 8), None);
    }

    #[test]
    fn capabilities_form_a_list() {
        let mut config = PciConfigSpace::new(ids());
        assert_eq!(config.read(reg::STATUS, 2) & 0x10, 0);
        let a = config.add_capability(0x09, &[5, 1, 2]).unwrap();
        let b = config.add_capability(0x11, &[0; 10]).unwrap();
        assert_eq!((a, b), (0x40, 0x48));
        assert_ne!(config.read(reg::STATUS, 2) & 0x10, 0);
        let mut found = Vec::new();
        let mut at = config.read(reg::CAPABILITIES_POINTER, 1) as u16;
        while at != 0 {
            found.push((at, config.read(at, 1)));
            at = config.read(at + 1, 1) as u16;
        }
        assert_eq!(found, vec![(0x40, 0x09), (0x48, 0x11)]);
        assert_eq!(config.read(0x42, 1), 5);
        // The list cannot grow past the conventional space.
        assert!(matches!(
            config.add_capability(0x09, &[0; 200]),
            Err(PciError::CapabilitiesFull { .. })
        ));
        config.add_capability(0x09, &[0; 0xb0 - 0x54 - 2]).unwrap();
    }

    #[test]
    fn reset_and_restore() {
        let mut config = PciConfigSpace::new_extended(ids());
        config
            .add_bar(
                0,
                BarKind::Memory32 {
                    prefetchable: false,
                },
                0x1000,
            )
            .unwrap();
        assert_eq!(config.len(), 4096);
        assert_eq!(config.read(0x100, 4), 0, "no extended capabilities");
        let power_on = config.state();
        config.write(bar_offset(0), 4, 0x4000_0000);
        config.write(reg::COMMAND, 2, 7);
        config.set_interrupt_status(true);
        let saved = config.state();
        config.reset();
        assert_eq!(config.state(), power_on);
        assert_eq!(config.bar_address(0), Some(0));
        assert_eq!(config.command(), 0);
        config.restore(&saved).unwrap();
        assert_eq!(config.bar_mapping(0), Some((0x4000_0000, 0x1000)));
        // A state of another function, or of another size, is refused.
        let mut other = saved.clone();
        other.bytes[0] ^= 1;
        assert!(config.restore(&other).is_err());
        let mut other = saved.clone();
        other.bytes[bar_offset(0) as usize] |= 1;
        assert!(config.restore(&other).is_err(), "a memory BAR turned I/O");
        other.bytes.truncate(256);
        assert!(config.restore(&other).is_err());
        assert_eq!(config.state(), saved);
    }
}
