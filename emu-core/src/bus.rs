//! The physical address map.
//!
//! A sorted map of half-open, non-overlapping ranges. RAM has a fast path (CPUs ask
//! for the RAM offset of an address and access [`GuestRam`] directly); ROM and MMIO
//! regions are dispatched by offset. Accesses that hit nothing return
//! [`BusFault::Unmapped`], which each CPU turns into its own access fault.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::device::{MmioDevice, RunControl};
use crate::memory::GuestRam;

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
    Ram,
    Rom(Box<[u8]>),
    Mmio(Mutex<Box<dyn MmioDevice>>),
}

struct Region {
    name: String,
    base: u64,
    end: u64,
    kind: RegionKind,
}

/// The physical address map of one machine.
pub struct Bus {
    ram_base: u64,
    ram: Arc<GuestRam>,
    regions: BTreeMap<u64, Region>,
    control: Arc<RunControl>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for region in self.regions.values() {
            list.entry(&format_args!(
                "{} [{:#x}, {:#x})",
                region.name, region.base, region.end
            ));
        }
        list.finish()
    }
}

impl Bus {
    /// A bus with `ram` mapped at `ram_base`.
    pub fn new(
        ram_base: u64,
        ram: Arc<GuestRam>,
        control: Arc<RunControl>,
    ) -> Result<Bus, BusError> {
        let mut bus = Bus {
            ram_base,
            ram: ram.clone(),
            regions: BTreeMap::new(),
            control,
        };
        bus.insert("ram", ram_base, ram.len(), RegionKind::Ram)?;
        Ok(bus)
    }

    fn insert(
        &mut self,
        name: &str,
        base: u64,
        size: u64,
        kind: RegionKind,
    ) -> Result<(), BusError> {
        let end = match base.checked_add(size) {
            Some(end) if size > 0 => end,
            _ => {
                return Err(BusError::InvalidRange {
                    name: name.to_owned(),
                    base,
                    size,
                });
            }
        };
        let overlap = |r: &Region| r.base < end && base < r.end;
        let before = self.regions.range(..end).next_back().map(|(_, r)| r);
        if let Some(other) = before.filter(|r| overlap(r)) {
            return Err(BusError::Overlap {
                name: name.to_owned(),
                base,
                other: other.name.clone(),
            });
        }
        self.regions.insert(
            base,
            Region {
                name: name.to_owned(),
                base,
                end,
                kind,
            },
        );
        Ok(())
    }

    /// Maps a device's register window.
    pub fn map_mmio(
        &mut self,
        name: &str,
        base: u64,
        size: u64,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), BusError> {
        self.insert(name, base, size, RegionKind::Mmio(Mutex::new(device)))
    }

    /// Maps read-only memory holding `data`.
    pub fn map_rom(&mut self, name: &str, base: u64, data: Box<[u8]>) -> Result<(), BusError> {
        let size = data.len() as u64;
        self.insert(name, base, size, RegionKind::Rom(data))
    }

    /// Guest RAM.
    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    /// Physical address of the first byte of RAM.
    pub fn ram_base(&self) -> u64 {
        self.ram_base
    }

    /// The machine's run control.
    pub fn control(&self) -> &Arc<RunControl> {
        &self.control
    }

    /// The offset into RAM of `[addr, addr+len)`, when all of it is RAM.
    #[inline]
    pub fn ram_offset(&self, addr: u64, len: u64) -> Option<u64> {
        let offset = addr.wrapping_sub(self.ram_base);
        (offset < self.ram.len() && self.ram.len() - offset >= len).then_some(offset)
    }

    fn region(&self, addr: u64) -> Option<&Region> {
        self.regions
            .range(..=addr)
            .next_back()
            .map(|(_, r)| r)
            .filter(|r| addr < r.end)
    }

    /// Reads `size` bytes (1, 2, 4 or 8) at `addr`, little-endian.
    pub fn read(&self, addr: u64, size: u8) -> Result<u64, BusFault> {
        let region = self.region(addr).ok_or(BusFault::Unmapped)?;
        let offset = addr - region.base;
        if region.end - addr < u64::from(size) {
            return Err(BusFault::Unmapped);
        }
        match &region.kind {
            RegionKind::Ram => {
                let value = match size {
                    1 => self.ram.read_u8(offset).map(u64::from),
                    2 => self.ram.read_u16(offset).map(u64::from),
                    4 => self.ram.read_u32(offset).map(u64::from),
                    8 => self.ram.read_u64(offset),
                    _ => None,
                };
                value.ok_or(BusFault::Unsupported)
            }
            RegionKind::Rom(data) => {
                let start = offset as usize;
                let mut bytes = [0u8; 8];
                let n = usize::from(size).min(8);
                bytes[..n].copy_from_slice(&data[start..start + n]);
                Ok(u64::from_le_bytes(bytes))
            }
            RegionKind::Mmio(device) => {
                let mut device = device.lock().unwrap_or_else(|e| e.into_inner());
                device.read(offset, size)
            }
        }
    }

    /// Writes the low `size` bytes of `value` at `addr`, little-endian.
    pub fn write(&self, addr: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let region = self.region(addr).ok_or(BusFault::Unmapped)?;
        let offset = addr - region.base;
        if region.end - addr < u64::from(size) {
            return Err(BusFault::Unmapped);
        }
        match &region.kind {
            RegionKind::Ram => {
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
            RegionKind::Rom(_) => Err(BusFault::ReadOnly),
            RegionKind::Mmio(device) => {
                let mut device = device.lock().unwrap_or_else(|e| e.into_inner());
                device.write(offset, size, value)
            }
        }
    }

    /// Copies `data` into RAM or ROM-free memory at `addr` (for loaders).
    pub fn load_bytes(&self, addr: u64, data: &[u8]) -> Result<(), BusFault> {
        let offset = self
            .ram_offset(addr, data.len() as u64)
            .ok_or(BusFault::Unmapped)?;
        if self.ram.write_bytes(offset, data) {
            Ok(())
        } else {
            Err(BusFault::Unmapped)
        }
    }

    /// Advances every device's time to `now`; returns the earliest next deadline.
    pub fn tick_devices(&self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        for region in self.regions.values() {
            if let RegionKind::Mmio(device) = &region.kind {
                let mut device = device.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(deadline) = device.tick(now) {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                }
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo {
        last: u64,
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
        Bus::new(0x8000_0000, ram, Arc::new(RunControl::new())).unwrap()
    }

    #[test]
    fn dispatches_by_offset_and_rejects_overlap() {
        let mut bus = bus();
        bus.map_mmio("echo", 0x1000, 0x100, Box::new(Echo { last: 0 }))
            .unwrap();
        bus.write(0x1010, 4, 40).unwrap();
        assert_eq!(bus.read(0x1002, 4), Ok(42));
        // Half-open: the end address belongs to nobody.
        assert_eq!(bus.read(0x1100, 4), Err(BusFault::Unmapped));
        let err = bus.map_mmio("late", 0x10ff, 0x10, Box::new(Echo { last: 0 }));
        assert!(matches!(err, Err(BusError::Overlap { .. })));
        let err = bus.map_mmio(
            "inside-ram",
            0x8000_fff0,
            0x1000,
            Box::new(Echo { last: 0 }),
        );
        assert!(matches!(err, Err(BusError::Overlap { .. })));
        assert!(
            bus.map_mmio("adjacent", 0x1100, 0x10, Box::new(Echo { last: 0 }))
                .is_ok()
        );
        assert!(matches!(
            bus.map_mmio("empty", 0x5000, 0, Box::new(Echo { last: 0 })),
            Err(BusError::InvalidRange { .. })
        ));
    }

    #[test]
    fn ram_and_rom() {
        let mut bus = bus();
        bus.map_rom("rom", 0x1000, vec![1, 2, 3, 4].into_boxed_slice())
            .unwrap();
        assert_eq!(bus.read(0x1000, 4), Ok(0x0403_0201));
        assert_eq!(bus.write(0x1000, 1, 9), Err(BusFault::ReadOnly));
        assert_eq!(bus.read(0x1002, 4), Err(BusFault::Unmapped));
        bus.write(0x8000_0008, 8, 0xabcd).unwrap();
        assert_eq!(bus.read(0x8000_0008, 2), Ok(0xabcd));
        assert_eq!(bus.ram_offset(0x8000_fffc, 4), Some(0xfffc));
        assert_eq!(bus.ram_offset(0x8000_fffc, 8), None);
        assert_eq!(bus.ram_offset(0x7fff_ffff, 1), None);
        assert_eq!(bus.read(0x8001_0000, 1), Err(BusFault::Unmapped));
    }
}
