//! The physical address map.
//!
//! A sorted map of half-open, non-overlapping ranges. Memory has a fast path: RAM
//! and ROM regions are windows onto one [`GuestRam`] backing (each at its own
//! offset into it), and CPUs ask for the backing offset of an address and access
//! the backing directly, so code in ROM is decoded and translated like code in
//! RAM. ROM windows are not writable: stores take the slow path and fault. MMIO
//! regions are dispatched by offset. Accesses that hit nothing return
//! [`BusFault::Unmapped`], which each CPU turns into its own access fault.
//!
//! A [`SwitchableMemory`] region (a PC's shadow RAM) is memory too, each block
//! reading and writing the RAM or the ROM side the chipset chose.
//!
//! Beside the memory map sits a 64 KiB port-I/O space (x86 `in`/`out`, PCI I/O
//! BARs), a second map of the same kind. Ports no range claims go to the
//! background device, if the machine has one (a PC's PCI bus, where I/O BARs
//! and chipset functions decode what the fixed ISA devices leave), and
//! otherwise read as all ones.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::addr::{GuestPhysAddr, PioPort};
use crate::device::{DeviceState, MmioDevice, PioDevice, RunControl, StateError};
use crate::memory::GuestRam;
use crate::switchable::{SwitchableBlock, SwitchableMemory};
use crate::sync::LockRecover;

/// A failed bus access, reported to the guest as an access fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum BusFault {
    /// No region covers the address.
    #[error("no device at this address")]
    Unmapped,
    /// A write to read-only memory.
    #[error("write to read-only memory")]
    ReadOnly,
    /// The device does not support this access width or offset.
    #[error("unsupported access")]
    Unsupported,
}

/// Errors building the address map.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    /// Zero-length or wrapping range.
    #[error("invalid region {name} at {base:#x} with size {size:#x}")]
    InvalidRange {
        /// Region name.
        name: String,
        /// Start address.
        base: u64,
        /// Length.
        size: u64,
    },
    /// The new region overlaps one already mapped.
    #[error("region {name} at {base:#x} overlaps {other}")]
    Overlap {
        /// New region's name.
        name: String,
        /// New region's start.
        base: u64,
        /// The region it collides with.
        other: String,
    },
}

enum RegionKind {
    /// A window onto the memory backing, at this offset into it.
    Memory {
        offset: u64,
        writable: bool,
    },
    Mmio(Mutex<Box<dyn MmioDevice>>),
    /// Blocks switching between RAM and ROM.
    Switchable(Arc<SwitchableMemory>),
}

/// A RAM or ROM region for the fast path: guest `[base, base + size)` is the
/// backing's `[offset, offset + size)`.
#[derive(Clone, Copy, Debug)]
struct MemoryWindow {
    base: u64,
    size: u64,
    offset: u64,
    writable: bool,
}

/// One named, half-open range of a [`RangeMap`].
struct Range<T> {
    name: String,
    base: u64,
    end: u64,
    kind: T,
}

/// Half-open, non-overlapping, named ranges, sorted by base: the memory map and
/// the port space are both one of these.
struct RangeMap<T> {
    ranges: BTreeMap<u64, Range<T>>,
}

impl<T> RangeMap<T> {
    fn new() -> RangeMap<T> {
        RangeMap {
            ranges: BTreeMap::new(),
        }
    }

    /// Adds `[base, base + size)`, refusing empty, wrapping (past `limit`) and
    /// overlapping ranges.
    fn insert(
        &mut self,
        name: &str,
        base: u64,
        size: u64,
        limit: u64,
        kind: T,
    ) -> Result<(), BusError> {
        let end = match base.checked_add(size) {
            Some(end) if size > 0 && end <= limit => end,
            _ => {
                return Err(BusError::InvalidRange {
                    name: name.to_owned(),
                    base,
                    size,
                });
            }
        };
        let overlap = |r: &Range<T>| r.base < end && base < r.end;
        let before = self.ranges.range(..end).next_back().map(|(_, r)| r);
        if let Some(other) = before.filter(|r| overlap(r)) {
            return Err(BusError::Overlap {
                name: name.to_owned(),
                base,
                other: other.name.clone(),
            });
        }
        self.ranges.insert(
            base,
            Range {
                name: name.to_owned(),
                base,
                end,
                kind,
            },
        );
        Ok(())
    }

    /// The range holding `addr`.
    fn find(&self, addr: u64) -> Option<&Range<T>> {
        self.ranges
            .range(..=addr)
            .next_back()
            .map(|(_, r)| r)
            .filter(|r| addr < r.end)
    }

    fn iter(&self) -> impl Iterator<Item = &Range<T>> {
        self.ranges.values()
    }
}

/// The physical address map of one machine, and its port-I/O space.
pub struct Bus {
    ram: Arc<GuestRam>,
    /// The memory regions, largest first (main RAM is looked at first).
    memory: Vec<MemoryWindow>,
    regions: RangeMap<RegionKind>,
    ports: RangeMap<Mutex<Box<dyn PioDevice>>>,
    /// At most one range covering the whole port space: what `ports` leaves.
    background_ports: RangeMap<Mutex<Box<dyn PioDevice>>>,
    /// Switchable regions, also in `regions`, looked at after `memory`.
    switchable: Vec<Arc<SwitchableMemory>>,
    control: Arc<RunControl>,
}

/// Size of the port-I/O space.
pub const PIO_SPACE: u64 = 0x1_0000;

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for region in self.regions.iter() {
            list.entry(&format_args!(
                "{} [{:#x}, {:#x})",
                region.name, region.base, region.end
            ));
        }
        for range in self.port_devices() {
            list.entry(&format_args!(
                "{} ports [{:#x}, {:#x})",
                range.name, range.base, range.end
            ));
        }
        list.finish()
    }
}

impl MemoryWindow {
    #[inline]
    fn offset_of(&self, addr: u64, len: u64) -> Option<u64> {
        let into = addr.wrapping_sub(self.base);
        (into < self.size && self.size - into >= len).then(|| self.offset + into)
    }
}

impl Bus {
    /// A bus with all of `ram` mapped as RAM at `ram_base`.
    pub fn new(
        ram_base: GuestPhysAddr,
        ram: Arc<GuestRam>,
        control: Arc<RunControl>,
    ) -> Result<Bus, BusError> {
        let len = ram.len();
        let mut bus = Bus::with_backing(ram, control);
        bus.map_ram("ram", ram_base, 0, len)?;
        Ok(bus)
    }

    /// A bus with nothing mapped, whose RAM and ROM regions will be windows onto
    /// `backing` ([`Bus::map_ram`], [`Bus::map_rom`]).
    pub fn with_backing(backing: Arc<GuestRam>, control: Arc<RunControl>) -> Bus {
        Bus {
            ram: backing,
            memory: Vec::new(),
            regions: RangeMap::new(),
            ports: RangeMap::new(),
            background_ports: RangeMap::new(),
            switchable: Vec::new(),
            control,
        }
    }

    fn map_memory(
        &mut self,
        name: &str,
        base: u64,
        offset: u64,
        size: u64,
        writable: bool,
    ) -> Result<(), BusError> {
        let inside = offset
            .checked_add(size)
            .is_some_and(|end| end <= self.ram.len());
        if !inside || !offset.is_multiple_of(crate::memory::PAGE_SIZE) {
            return Err(BusError::InvalidRange {
                name: name.to_owned(),
                base,
                size,
            });
        }
        if let Some(other) = self
            .memory
            .iter()
            .find(|w| w.offset < offset + size && offset < w.offset + w.size)
        {
            return Err(BusError::Overlap {
                name: name.to_owned(),
                base,
                other: format!("the memory at {:#x}", other.base),
            });
        }
        self.insert(name, base, size, RegionKind::Memory { offset, writable })?;
        self.memory.push(MemoryWindow {
            base,
            size,
            offset,
            writable,
        });
        self.memory.sort_by_key(|w| std::cmp::Reverse(w.size));
        Ok(())
    }

    /// Maps the backing's `[offset, offset + size)` as RAM at `base`.
    pub fn map_ram(
        &mut self,
        name: &str,
        base: GuestPhysAddr,
        offset: u64,
        size: u64,
    ) -> Result<(), BusError> {
        self.map_memory(name, base.raw(), offset, size, true)
    }

    /// Maps read-only memory holding `data` at `base`, kept in the backing at
    /// `offset` (page-aligned, unused by other regions). It is fetched, decoded
    /// and translated like RAM; stores to it fault.
    pub fn map_rom(
        &mut self,
        name: &str,
        base: GuestPhysAddr,
        offset: u64,
        data: &[u8],
    ) -> Result<(), BusError> {
        let size = (data.len() as u64).max(1);
        self.map_memory(name, base.raw(), offset, size, false)?;
        // In range: map_memory checked that `[offset, offset + size)` is backing.
        self.ram.write_bytes(offset, data);
        Ok(())
    }

    /// Maps equal blocks of `block_size` bytes from `base` on, each switching
    /// between the RAM and the ROM at its two backing offsets (page-aligned,
    /// inside the backing). They start reading the ROM and dropping writes; the
    /// returned handle switches them.
    pub fn map_switchable(
        &mut self,
        name: &str,
        base: GuestPhysAddr,
        block_size: u64,
        blocks: &[SwitchableBlock],
    ) -> Result<Arc<SwitchableMemory>, BusError> {
        let invalid = || BusError::InvalidRange {
            name: name.to_owned(),
            base: base.raw(),
            size: block_size * blocks.len() as u64,
        };
        let page = crate::memory::PAGE_SIZE;
        let fits = |offset: u64| {
            offset.is_multiple_of(page)
                && offset
                    .checked_add(block_size)
                    .is_some_and(|end| end <= self.ram.len())
        };
        if block_size == 0
            || !block_size.is_multiple_of(page)
            || !blocks
                .iter()
                .all(|b| fits(b.ram_offset) && fits(b.rom_offset))
        {
            return Err(invalid());
        }
        let memory = Arc::new(SwitchableMemory::new(
            base.raw(),
            block_size,
            blocks,
            self.ram.clone(),
        ));
        self.insert(
            name,
            base.raw(),
            memory.size(),
            RegionKind::Switchable(memory.clone()),
        )?;
        self.switchable.push(memory.clone());
        Ok(memory)
    }

    fn insert(
        &mut self,
        name: &str,
        base: u64,
        size: u64,
        kind: RegionKind,
    ) -> Result<(), BusError> {
        self.regions.insert(name, base, size, u64::MAX, kind)
    }

    /// Maps a device's port range `[base, base + len)`.
    pub fn map_pio(
        &mut self,
        name: &str,
        base: PioPort,
        len: u32,
        device: Box<dyn PioDevice>,
    ) -> Result<(), BusError> {
        self.ports.insert(
            name,
            u64::from(base.raw()),
            u64::from(len),
            PIO_SPACE,
            Mutex::new(device),
        )
    }

    /// Maps the device that answers every port no range of [`Bus::map_pio`]
    /// claims, at its own port numbers (offset = port). One per bus.
    pub fn map_background_pio(
        &mut self,
        name: &str,
        device: Box<dyn PioDevice>,
    ) -> Result<(), BusError> {
        self.background_ports
            .insert(name, 0, PIO_SPACE, PIO_SPACE, Mutex::new(device))
    }

    /// The port range holding `addr`: a claimed one, else the background.
    fn port_range(&self, addr: u64) -> Option<&Range<Mutex<Box<dyn PioDevice>>>> {
        self.ports
            .find(addr)
            .or_else(|| self.background_ports.find(addr))
    }

    /// Every port device, claimed ranges first.
    fn port_devices(&self) -> impl Iterator<Item = &Range<Mutex<Box<dyn PioDevice>>>> {
        self.ports.iter().chain(self.background_ports.iter())
    }

    /// Reads `size` bytes (1, 2 or 4) at `port`. Ports nobody decodes, and accesses
    /// running past the end of a device's range, read as all ones.
    pub fn pio_read(&self, port: PioPort, size: u8) -> u32 {
        let ones = match size {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        };
        let addr = u64::from(port.raw());
        match self.port_range(addr) {
            Some(range) if range.end - addr >= u64::from(size) => {
                let offset = (addr - range.base) as u16;
                range.kind.lock_recover().read(offset, size) & ones
            }
            _ => ones,
        }
    }

    /// Writes the low `size` bytes (1, 2 or 4) of `value` at `port`; writes to
    /// ports nobody decodes are dropped.
    pub fn pio_write(&self, port: PioPort, size: u8, value: u32) {
        let addr = u64::from(port.raw());
        if let Some(range) = self.port_range(addr)
            && range.end - addr >= u64::from(size)
        {
            let offset = (addr - range.base) as u16;
            range.kind.lock_recover().write(offset, size, value);
        }
    }

    /// Maps a device's register window.
    pub fn map_mmio(
        &mut self,
        name: &str,
        base: GuestPhysAddr,
        size: u64,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), BusError> {
        self.insert(name, base.raw(), size, RegionKind::Mmio(Mutex::new(device)))
    }

    /// The memory backing every RAM and ROM region (offsets from
    /// [`Bus::ram_offset`] index it).
    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    /// The machine's run control.
    pub fn control(&self) -> &Arc<RunControl> {
        &self.control
    }

    /// The backing offset of `[addr, addr+len)`, when all of it is in one RAM or
    /// ROM region: for reads and instruction fetch.
    #[inline]
    pub fn ram_offset(&self, addr: GuestPhysAddr, len: u64) -> Option<u64> {
        self.memory
            .iter()
            .find_map(|w| w.offset_of(addr.raw(), len))
            .or_else(|| {
                self.switchable
                    .iter()
                    .find_map(|s| s.read_offset(addr.raw(), len))
            })
    }

    /// The backing offset of `[addr, addr+len)`, when all of it is in one RAM
    /// region: for stores (ROM is not writable).
    #[inline]
    pub fn writable_offset(&self, addr: GuestPhysAddr, len: u64) -> Option<u64> {
        self.memory
            .iter()
            .filter(|w| w.writable)
            .find_map(|w| w.offset_of(addr.raw(), len))
            .or_else(|| {
                self.switchable
                    .iter()
                    .find_map(|s| s.write_offset(addr.raw(), len))
            })
    }

    fn region(&self, addr: u64) -> Option<&Range<RegionKind>> {
        self.regions.find(addr)
    }

    /// Reads `size` bytes (1, 2, 4 or 8) at `addr`, little-endian.
    pub fn read(&self, addr: GuestPhysAddr, size: u8) -> Result<u64, BusFault> {
        let addr = addr.raw();
        let region = self.region(addr).ok_or(BusFault::Unmapped)?;
        let offset = addr - region.base;
        if region.end - addr < u64::from(size) {
            return Err(BusFault::Unmapped);
        }
        match &region.kind {
            RegionKind::Memory { offset: at, .. } => self.read_backing(at + offset, size),
            RegionKind::Switchable(memory) => {
                let at = memory
                    .read_offset(addr, u64::from(size))
                    .ok_or(BusFault::Unsupported)?;
                self.read_backing(at, size)
            }
            RegionKind::Mmio(device) => device.lock_recover().read(offset, size),
        }
    }

    /// Writes the low `size` bytes of `value` at `addr`, little-endian. A write to
    /// RAM here does not tell other CPUs of code it overwrote: a CPU storing through
    /// the bus calls [`GuestRam::note_write`] with its own inbox.
    pub fn write(&self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), BusFault> {
        let addr = addr.raw();
        let region = self.region(addr).ok_or(BusFault::Unmapped)?;
        let offset = addr - region.base;
        if region.end - addr < u64::from(size) {
            return Err(BusFault::Unmapped);
        }
        match &region.kind {
            RegionKind::Memory {
                writable: false, ..
            } => Err(BusFault::ReadOnly),
            RegionKind::Memory { offset: at, .. } => self.write_backing(at + offset, size, value),
            RegionKind::Switchable(memory) => match memory.write_offset(addr, u64::from(size)) {
                Some(at) => self.write_backing(at, size, value),
                None => Err(BusFault::ReadOnly),
            },
            RegionKind::Mmio(device) => device.lock_recover().write(offset, size, value),
        }
    }

    /// Reads `size` bytes at backing offset `offset`.
    fn read_backing(&self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let value = match size {
            1 => self.ram.read_u8(offset).map(u64::from),
            2 => self.ram.read_u16(offset).map(u64::from),
            4 => self.ram.read_u32(offset).map(u64::from),
            8 => self.ram.read_u64(offset),
            _ => None,
        };
        value.ok_or(BusFault::Unsupported)
    }

    /// Writes the low `size` bytes of `value` at backing offset `offset`.
    fn write_backing(&self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let ok = match size {
            1 => self.ram.write_u8(offset, value as u8),
            2 => self.ram.write_u16(offset, value as u16),
            4 => self.ram.write_u32(offset, value as u32),
            8 => self.ram.write_u64(offset, value),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(BusFault::Unsupported)
        }
    }

    /// Copies `data` into RAM at `addr` (for loaders).
    pub fn load_bytes(&self, addr: GuestPhysAddr, data: &[u8]) -> Result<(), BusFault> {
        let offset = self
            .writable_offset(addr, data.len() as u64)
            .ok_or(BusFault::Unmapped)?;
        if self.ram.write_bytes(offset, data) {
            Ok(())
        } else {
            Err(BusFault::Unmapped)
        }
    }

    /// Advances every device's time to `now`; returns the earliest next deadline.
    pub fn tick_devices(&self, now: u64) -> Option<u64> {
        let mmio = self.regions.iter().filter_map(|r| match &r.kind {
            RegionKind::Mmio(device) => device.lock_recover().tick(now),
            _ => None,
        });
        let pio = self
            .port_devices()
            .filter_map(|r| r.kind.lock_recover().tick(now));
        mmio.chain(pio).min()
    }

    /// Puts every device on the bus back to its power-on state (a machine reset).
    pub fn reset_devices(&self) {
        for region in self.regions.iter() {
            if let RegionKind::Mmio(device) = &region.kind {
                device.lock_recover().reset();
            }
        }
        for range in self.port_devices() {
            range.kind.lock_recover().reset();
        }
    }

    /// The state of every device, each under the name it was mapped with (port
    /// devices' names prefixed with `pio:`), in address order.
    pub fn save_devices(&self) -> Vec<(String, DeviceState)> {
        let mmio = self.regions.iter().filter_map(|r| match &r.kind {
            RegionKind::Mmio(device) => Some((r.name.clone(), device.lock_recover().save_state())),
            _ => None,
        });
        let pio = self.port_devices().map(|r| {
            (
                format!("pio:{}", r.name),
                r.kind.lock_recover().save_state(),
            )
        });
        mmio.chain(pio).collect()
    }

    /// Restores states saved by [`Bus::save_devices`] on a bus built the same way.
    /// Every device must be named exactly once; on an error some devices may
    /// already have taken their new state.
    pub fn restore_devices(&self, states: &[(String, DeviceState)]) -> Result<(), StateError> {
        let invalid = |reason: String| StateError::Invalid {
            kind: "machine".to_owned(),
            reason,
        };
        let expected = self.save_devices().len();
        if states.len() != expected {
            return Err(invalid(format!(
                "{} device states for {expected} devices",
                states.len()
            )));
        }
        for (name, state) in states {
            let found = match name.strip_prefix("pio:") {
                Some(port_name) => self
                    .port_devices()
                    .find(|r| r.name == port_name)
                    .map(|r| r.kind.lock_recover().restore_state(state)),
                None => self
                    .regions
                    .iter()
                    .find(|r| r.name == *name)
                    .and_then(|r| match &r.kind {
                        RegionKind::Mmio(device) => {
                            Some(device.lock_recover().restore_state(state))
                        }
                        _ => None,
                    }),
            };
            found.ok_or_else(|| invalid(format!("no device named {name}")))??;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo {
        last: u64,
    }

    impl crate::device::Device for Echo {
        fn reset(&mut self) {
            self.last = 0;
        }
        fn save_state(&self) -> DeviceState {
            DeviceState::encode("echo", 1, &self.last)
        }
        fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
            self.last = state.decode("echo", 1)?;
            Ok(())
        }
    }

    impl MmioDevice for Echo {
        fn read(&mut self, offset: u64, _size: u8) -> Result<u64, BusFault> {
            Ok(self.last + offset)
        }
        fn write(&mut self, _offset: u64, _size: u8, value: u64) -> Result<(), BusFault> {
            self.last = value;
            Ok(())
        }
    }

    fn bus() -> Bus {
        let ram = Arc::new(GuestRam::new(0x10000).unwrap());
        Bus::new(GuestPhysAddr(0x8000_0000), ram, Arc::new(RunControl::new())).unwrap()
    }

    #[test]
    fn dispatches_by_offset_and_rejects_overlap() {
        let mut bus = bus();
        bus.map_mmio(
            "echo",
            GuestPhysAddr(0x1000),
            0x100,
            Box::new(Echo { last: 0 }),
        )
        .unwrap();
        bus.write(GuestPhysAddr(0x1010), 4, 40).unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x1002), 4), Ok(42));
        // Half-open: the end address belongs to nobody.
        assert_eq!(bus.read(GuestPhysAddr(0x1100), 4), Err(BusFault::Unmapped));
        let err = bus.map_mmio(
            "late",
            GuestPhysAddr(0x10ff),
            0x10,
            Box::new(Echo { last: 0 }),
        );
        assert!(matches!(err, Err(BusError::Overlap { .. })));
        let err = bus.map_mmio(
            "inside-ram",
            GuestPhysAddr(0x8000_fff0),
            0x1000,
            Box::new(Echo { last: 0 }),
        );
        assert!(matches!(err, Err(BusError::Overlap { .. })));
        assert!(
            bus.map_mmio(
                "adjacent",
                GuestPhysAddr(0x1100),
                0x10,
                Box::new(Echo { last: 0 })
            )
            .is_ok()
        );
        assert!(matches!(
            bus.map_mmio(
                "empty",
                GuestPhysAddr(0x5000),
                0,
                Box::new(Echo { last: 0 })
            ),
            Err(BusError::InvalidRange { .. })
        ));
    }

    #[test]
    fn ram_and_rom() {
        let mut bus = bus();
        // The test bus's backing is all RAM: ROM needs its own backing room.
        assert!(matches!(
            bus.map_rom("rom", GuestPhysAddr(0x1000), 0x10000, &[1, 2, 3, 4]),
            Err(BusError::InvalidRange { .. })
        ));
        let backing = Arc::new(GuestRam::new(0x12000).unwrap());
        let mut bus = Bus::with_backing(backing, Arc::new(RunControl::new()));
        bus.map_ram("ram", GuestPhysAddr(0x8000_0000), 0, 0x10000)
            .unwrap();
        bus.map_rom("rom", GuestPhysAddr(0x1000), 0x10000, &[1, 2, 3, 4])
            .unwrap();
        assert!(matches!(
            bus.map_rom("again", GuestPhysAddr(0x3000), 0x10000, &[0]),
            Err(BusError::Overlap { .. })
        ));
        assert_eq!(bus.read(GuestPhysAddr(0x1000), 4), Ok(0x0403_0201));
        assert_eq!(
            bus.write(GuestPhysAddr(0x1000), 1, 9),
            Err(BusFault::ReadOnly)
        );
        assert_eq!(bus.read(GuestPhysAddr(0x1002), 4), Err(BusFault::Unmapped));
        // ROM is on the fast path for reads and fetch, never for stores.
        assert_eq!(bus.ram_offset(GuestPhysAddr(0x1001), 2), Some(0x10001));
        assert_eq!(bus.writable_offset(GuestPhysAddr(0x1001), 2), None);
        assert_eq!(
            bus.writable_offset(GuestPhysAddr(0x8000_0010), 8),
            Some(0x10)
        );
        assert!(bus.load_bytes(GuestPhysAddr(0x1000), &[0]).is_err());
        bus.write(GuestPhysAddr(0x8000_0008), 8, 0xabcd).unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x8000_0008), 2), Ok(0xabcd));
        assert_eq!(bus.ram_offset(GuestPhysAddr(0x8000_fffc), 4), Some(0xfffc));
        assert_eq!(bus.ram_offset(GuestPhysAddr(0x8000_fffc), 8), None);
        assert_eq!(bus.ram_offset(GuestPhysAddr(0x7fff_ffff), 1), None);
        assert_eq!(
            bus.read(GuestPhysAddr(0x8001_0000), 1),
            Err(BusFault::Unmapped)
        );
    }

    /// A toy port device: a byte latch at offset 0 and a 16-bit counter at 2 that
    /// counts its own reads.
    #[derive(Default)]
    struct PortToy {
        latch: u8,
        reads: u16,
    }

    impl crate::device::Device for PortToy {
        fn reset(&mut self) {
            *self = PortToy::default();
        }
        fn save_state(&self) -> DeviceState {
            DeviceState::encode("port-toy", 1, &(self.latch, self.reads))
        }
        fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
            (self.latch, self.reads) = state.decode("port-toy", 1)?;
            Ok(())
        }
    }

    impl PioDevice for PortToy {
        fn read(&mut self, offset: u16, size: u8) -> u32 {
            match (offset, size) {
                (0, 1) => u32::from(self.latch),
                (2, 2) => {
                    self.reads += 1;
                    u32::from(self.reads)
                }
                // Undecoded offsets and widths float high.
                _ => u32::MAX,
            }
        }
        fn write(&mut self, offset: u16, size: u8, value: u32) {
            if (offset, size) == (0, 1) {
                self.latch = value as u8;
            }
        }
    }

    #[test]
    fn port_io_dispatches_by_offset_and_floats_high_elsewhere() {
        let mut bus = bus();
        bus.map_pio("toy", PioPort(0x60), 4, Box::new(PortToy::default()))
            .unwrap();
        bus.pio_write(PioPort(0x60), 1, 0x1_5a);
        assert_eq!(bus.pio_read(PioPort(0x60), 1), 0x5a);
        assert_eq!(bus.pio_read(PioPort(0x62), 2), 1);
        assert_eq!(bus.pio_read(PioPort(0x62), 2), 2);
        // Widths are masked: an undecoded word reads 0xffff, not 0xffffffff.
        assert_eq!(bus.pio_read(PioPort(0x61), 2), 0xffff);
        // Nobody at 0x64, and an access running off the end of the range.
        assert_eq!(bus.pio_read(PioPort(0x64), 1), 0xff);
        assert_eq!(bus.pio_read(PioPort(0x63), 4), u32::MAX);
        bus.pio_write(PioPort(0x64), 1, 0);
        // The port space is 64 KiB, separate from memory: port 0x60 is not 0x60.
        assert_eq!(bus.read(GuestPhysAddr(0x60), 1), Err(BusFault::Unmapped));
        assert!(matches!(
            bus.map_pio("late", PioPort(0x63), 2, Box::new(PortToy::default())),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.map_pio("wraps", PioPort(0xffff), 2, Box::new(PortToy::default())),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(
            bus.map_pio("top", PioPort(0xffff), 1, Box::new(PortToy::default()))
                .is_ok()
        );
    }

    #[test]
    fn background_ports_take_what_no_range_claims() {
        let mut bus = bus();
        bus.map_pio("toy", PioPort(0x60), 4, Box::new(PortToy::default()))
            .unwrap();
        bus.map_background_pio("pci", Box::new(PortToy::default()))
            .unwrap();
        // Port 0 of the background device is port 0: its latch.
        bus.pio_write(PioPort(0), 1, 0x33);
        assert_eq!(bus.pio_read(PioPort(0), 1), 0x33);
        // The claimed range keeps its own latch.
        assert_eq!(bus.pio_read(PioPort(0x60), 1), 0);
        assert_eq!(bus.pio_read(PioPort(2), 2), 1);
        assert!(matches!(
            bus.map_background_pio("second", Box::new(PortToy::default())),
            Err(BusError::Overlap { .. })
        ));
        // The background device has a lifecycle like the others.
        let saved = bus.save_devices();
        assert!(saved.iter().any(|(name, _)| name == "pio:pci"));
        bus.reset_devices();
        assert_eq!(bus.pio_read(PioPort(0), 1), 0);
        bus.restore_devices(&saved).unwrap();
        assert_eq!(bus.pio_read(PioPort(0), 1), 0x33);
    }

    #[test]
    fn switchable_blocks_read_and_write_the_side_chosen() {
        use crate::switchable::SwitchMode;
        let page = crate::memory::PAGE_SIZE;
        let ram = Arc::new(GuestRam::new(8 * page).unwrap());
        let mut bus = Bus::with_backing(ram.clone(), Arc::new(RunControl::new()));
        // Two blocks at 0x10000: RAM at offsets 0 and 1 page, ROM at 4 and 5.
        let blocks = [0, 1].map(|k| SwitchableBlock {
            ram_offset: k * page,
            rom_offset: (4 + k) * page,
        });
        let shadow = bus
            .map_switchable("shadow", GuestPhysAddr(0x10000), page, &blocks)
            .unwrap();
        ram.write_bytes(4 * page, &[0xaa; 8]);
        ram.write_bytes(0, &[0x11; 8]);
        let at = GuestPhysAddr(0x10000);
        // Power-on: reads the ROM, writes are dropped.
        assert_eq!(bus.read(at, 1), Ok(0xaa));
        assert_eq!(bus.ram_offset(at, 4), Some(4 * page));
        assert_eq!(bus.writable_offset(at, 4), None);
        assert_eq!(bus.write(at, 1, 0x22), Err(BusFault::ReadOnly));
        // Write RAM while reading ROM: the copy SeaBIOS makes of itself.
        let inbox = ram.watch_code_writes();
        shadow.set_mode(
            0,
            SwitchMode {
                read_ram: false,
                write_ram: true,
            },
        );
        assert!(!inbox.has_pending(), "reads did not change sides");
        bus.write(at, 1, 0x22).unwrap();
        assert_eq!(bus.read(at, 1), Ok(0xaa));
        assert_eq!(bus.writable_offset(at, 1), Some(0));
        // Read RAM: the copy shows, and CPUs drop all their decoded code.
        shadow.set_mode(
            0,
            SwitchMode {
                read_ram: true,
                write_ram: false,
            },
        );
        assert!(inbox.has_pending());
        assert_eq!(inbox.take(), None, "everything is to be dropped");
        assert_eq!(bus.read(at, 2), Ok(0x1122));
        // The second block is untouched; accesses across blocks miss the fast path.
        assert_eq!(
            bus.ram_offset(GuestPhysAddr(0x10000 + page), 1),
            Some(5 * page)
        );
        assert_eq!(bus.ram_offset(GuestPhysAddr(0x10000 + page - 2), 4), None);
        shadow.reset();
        assert_eq!(shadow.mode(0), SwitchMode::default());
        assert_eq!(bus.read(at, 1), Ok(0xaa));
        // Blocks must be page-aligned windows inside the backing.
        let outside = [SwitchableBlock {
            ram_offset: 8 * page,
            rom_offset: 0,
        }];
        assert!(matches!(
            bus.map_switchable("bad", GuestPhysAddr(0x40000), page, &outside),
            Err(BusError::InvalidRange { .. })
        ));
    }

    #[test]
    fn devices_reset_save_and_restore_through_the_bus() {
        let mut bus = bus();
        bus.map_mmio(
            "echo",
            GuestPhysAddr(0x1000),
            0x100,
            Box::new(Echo { last: 0 }),
        )
        .unwrap();
        bus.map_pio("toy", PioPort(0x60), 4, Box::new(PortToy::default()))
            .unwrap();
        bus.write(GuestPhysAddr(0x1000), 4, 40).unwrap();
        bus.pio_write(PioPort(0x60), 1, 7);
        let saved = bus.save_devices();
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[1].0, "pio:toy");
        bus.reset_devices();
        assert_eq!(bus.read(GuestPhysAddr(0x1000), 4), Ok(0));
        assert_eq!(bus.pio_read(PioPort(0x60), 1), 0);
        bus.restore_devices(&saved).unwrap();
        assert_eq!(bus.read(GuestPhysAddr(0x1002), 4), Ok(42));
        assert_eq!(bus.pio_read(PioPort(0x60), 1), 7);
        // A state for another model, or a missing device, is refused by name.
        let mut swapped = saved.clone();
        swapped[0].1 = saved[1].1.clone();
        assert!(matches!(
            bus.restore_devices(&swapped),
            Err(StateError::Mismatch { .. })
        ));
        assert!(bus.restore_devices(&saved[..1]).is_err());
    }
}
