//! Memory whose blocks switch at run time between two backings: a PC chipset's
//! shadow RAM (the i440FX's PAM registers), where each block of the BIOS area
//! reads either RAM or the ROM behind it, and writes either RAM or nothing.
//!
//! The blocks are windows onto the bus's one [`GuestRam`] backing, so code and
//! data in them take the CPUs' fast path like any RAM or ROM; the mode of each
//! block is an atomic, read on every access, so the chipset can switch it from
//! its own thread while CPUs run. A block that starts reading other bytes tells
//! every CPU to drop the code it decoded, as a store to code would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::memory::GuestRam;

/// Where a switchable block's bytes live in the backing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchableBlock {
    /// The backing offset of the block's RAM.
    pub ram_offset: u64,
    /// The backing offset of the ROM behind the block (read-only from the guest).
    pub rom_offset: u64,
}

/// How one block decodes accesses now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchMode {
    /// Reads come from RAM (else from the ROM).
    pub read_ram: bool,
    /// Writes go to RAM (else they are dropped).
    pub write_ram: bool,
}

impl SwitchMode {
    fn bits(self) -> u8 {
        u8::from(self.read_ram) | u8::from(self.write_ram) << 1
    }

    fn from_bits(bits: u8) -> SwitchMode {
        SwitchMode {
            read_ram: bits & 1 != 0,
            write_ram: bits & 2 != 0,
        }
    }
}

/// Equal blocks from `base` on, each switching between its RAM and its ROM.
#[derive(Debug)]
pub struct SwitchableMemory {
    base: u64,
    block_size: u64,
    blocks: Box<[SwitchableBlock]>,
    modes: Box<[AtomicU8]>,
    ram: Arc<GuestRam>,
}

impl SwitchableMemory {
    pub(crate) fn new(
        base: u64,
        block_size: u64,
        blocks: &[SwitchableBlock],
        ram: Arc<GuestRam>,
    ) -> SwitchableMemory {
        SwitchableMemory {
            base,
            block_size,
            blocks: blocks.into(),
            modes: blocks.iter().map(|_| AtomicU8::new(0)).collect(),
            ram,
        }
    }

    /// The first address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The size of each block.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Bytes covered by all blocks.
    pub fn size(&self) -> u64 {
        self.block_size * self.blocks.len() as u64
    }

    /// How block `index` decodes now (reads and writes to the ROM side for an
    /// index out of range).
    pub fn mode(&self, index: usize) -> SwitchMode {
        self.modes.get(index).map_or(SwitchMode::default(), |m| {
            SwitchMode::from_bits(m.load(Ordering::Acquire))
        })
    }

    /// Sets how block `index` decodes. When its reads change sides, every CPU
    /// drops the code it decoded before it runs again. Out-of-range indexes
    /// are ignored.
    pub fn set_mode(&self, index: usize, mode: SwitchMode) {
        let Some(slot) = self.modes.get(index) else {
            return;
        };
        let old = SwitchMode::from_bits(slot.swap(mode.bits(), Ordering::AcqRel));
        if old.read_ram != mode.read_ram {
            self.ram.drop_all_code();
        }
    }

    /// The block and the offset into it of `[addr, addr + len)`, when it lies
    /// inside one block.
    #[inline]
    fn locate(&self, addr: u64, len: u64) -> Option<(usize, u64)> {
        let into = addr.checked_sub(self.base)?;
        let index = usize::try_from(into / self.block_size).ok()?;
        let within = into % self.block_size;
        (index < self.blocks.len() && self.block_size - within >= len).then_some((index, within))
    }

    /// The backing offset a read of `[addr, addr + len)` comes from.
    #[inline]
    pub fn read_offset(&self, addr: u64, len: u64) -> Option<u64> {
        let (index, within) = self.locate(addr, len)?;
        let block = &self.blocks[index];
        Some(if self.mode(index).read_ram {
            block.ram_offset + within
        } else {
            block.rom_offset + within
        })
    }

    /// The backing offset a write of `[addr, addr + len)` goes to; `None` when
    /// it is dropped (the block writes its ROM side) or crosses blocks.
    #[inline]
    pub fn write_offset(&self, addr: u64, len: u64) -> Option<u64> {
        let (index, within) = self.locate(addr, len)?;
        self.mode(index)
            .write_ram
            .then(|| self.blocks[index].ram_offset + within)
    }

    /// Puts every block back to reading and writing its ROM side (power-on).
    pub fn reset(&self) {
        for index in 0..self.modes.len() {
            self.set_mode(index, SwitchMode::default());
        }
    }
}
