//! Bus-master IDE DMA (SFF-8038i), as the PIIX has it: per channel a command
//! register, a status register and the address of a Physical Region
//! Descriptor table in guest memory.
//!
//! A PRD is two dwords: the physical address of a memory region (bit 0
//! ignored), and its byte count in the low 16 bits (bit 0 ignored, 0 meaning
//! 64 KiB) with End Of Table in bit 31. The device walks the table while it
//! moves data; [`PrdCursor`] does the walking, bounded so a table without an
//! end, or one pointing outside RAM, costs the host a bounded amount of work
//! and fails cleanly.

use serde::{Deserialize, Serialize};
use vm_memory::{Bytes, GuestAddress};

use crate::virtio::memory::note_dma_write;
use crate::virtio::{GuestMemoryHandle, VirtioMemory};

/// Command register: start/stop bus master.
pub const BM_CMD_START: u8 = 0x01;
/// Command register: 1 when the device writes memory (a read from the disk).
pub const BM_CMD_WRITE_MEMORY: u8 = 0x08;
/// Status register: the bus master is active.
pub const BM_STATUS_ACTIVE: u8 = 0x01;
/// Status register: a DMA error (write one to clear).
pub const BM_STATUS_ERROR: u8 = 0x02;
/// Status register: the IDE device raised its interrupt (write one to clear).
pub const BM_STATUS_INTERRUPT: u8 = 0x04;
/// Status register: drive 0 / drive 1 is DMA capable (software's bits).
pub const BM_STATUS_DMA_CAPABLE: u8 = 0x60;

/// Register offsets inside a channel's 8-byte block.
pub const BM_REG_COMMAND: u64 = 0;
/// The status register.
pub const BM_REG_STATUS: u64 = 2;
/// The PRD table address (a dword).
pub const BM_REG_PRD: u64 = 4;

/// Most PRDs walked for one command: a table lives in one 64 KiB region, so no
/// legitimate table has more; a table without EOT stops here.
const MAX_PRDS: u32 = 0x1_0000 / 8;

/// One channel's bus-master registers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmDmaRegs {
    /// Command: start bit and direction.
    pub command: u8,
    /// Status: active, error, interrupt, DMA capable.
    pub status: u8,
    /// Physical address of the PRD table (dword aligned).
    pub prd_table: u32,
}

impl BmDmaRegs {
    /// A register read of `size` bytes at `offset` (0..8) of the channel's block.
    pub fn read(&self, offset: u64, size: u8) -> u32 {
        match (offset, size) {
            (BM_REG_COMMAND, 1) => u32::from(self.command),
            (BM_REG_STATUS, 1) => u32::from(self.status),
            (4..=7, _) => {
                let shift = (offset - BM_REG_PRD) * 8;
                let value = self.prd_table >> shift;
                match size {
                    1 => value & 0xff,
                    2 => value & 0xffff,
                    _ => value,
                }
            }
            (_, 1) => 0xff,
            (_, 2) => 0xffff,
            _ => u32::MAX,
        }
    }

    /// A write to the status register: the capable bits are software's, error
    /// and interrupt clear where `value` has ones, active is the device's.
    pub fn write_status(&mut self, value: u8) {
        let keep =
            self.status & (BM_STATUS_ACTIVE | ((BM_STATUS_ERROR | BM_STATUS_INTERRUPT) & !value));
        self.status = (value & BM_STATUS_DMA_CAPABLE) | keep;
    }

    /// A write of `size` bytes into the PRD address at `offset` (4..8).
    pub fn write_prd(&mut self, offset: u64, size: u8, value: u32) {
        let shift = (offset.saturating_sub(BM_REG_PRD) * 8) as u32;
        let ones: u32 = match size {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        };
        let mask = ones.checked_shl(shift).unwrap_or(0);
        let value = value.checked_shl(shift).unwrap_or(0);
        // The table is dword aligned: the low two bits read as zero.
        self.prd_table = ((self.prd_table & !mask) | (value & mask)) & !3;
    }
}

/// Why a DMA transfer stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// A PRD, or the memory it names, is outside RAM (or bus mastering is off).
    Memory,
    /// The table ended (EOT, or the walk limit) before the transfer did.
    TableShort,
}

/// A position in a PRD table: the current region and the bytes left in it.
#[derive(Debug)]
pub struct PrdCursor<'a> {
    mem: &'a VirtioMemory,
    table: u64,
    index: u32,
    addr: u64,
    left: u32,
    last: bool,
}

impl<'a> PrdCursor<'a> {
    /// A walk of the table at `table` in `mem`.
    pub fn new(mem: &'a GuestMemoryHandle, table: u32) -> PrdCursor<'a> {
        PrdCursor {
            mem: mem.memory(),
            table: u64::from(table),
            index: 0,
            addr: 0,
            left: 0,
            last: false,
        }
    }

    /// The next stretch of the current region, at most `want` bytes.
    fn segment(&mut self, want: usize) -> Result<(u64, usize), DmaError> {
        while self.left == 0 {
            if self.last || self.index >= MAX_PRDS {
                return Err(DmaError::TableShort);
            }
            let at = GuestAddress(self.table + 8 * u64::from(self.index));
            let entry: u64 = self.mem.read_obj(at).map_err(|_| DmaError::Memory)?;
            let entry = u64::from_le(entry);
            self.index += 1;
            self.addr = entry & 0xffff_fffe;
            let count = ((entry >> 32) & 0xfffe) as u32;
            self.left = if count == 0 { 0x1_0000 } else { count };
            self.last = entry & (1 << 63) != 0;
        }
        let n = want.min(self.left as usize);
        Ok((self.addr, n))
    }

    fn advance(&mut self, n: usize) {
        self.addr += n as u64;
        self.left -= n as u32;
    }

    /// Copies `data` into the regions, in order.
    pub fn scatter(&mut self, data: &[u8]) -> Result<(), DmaError> {
        let mut done = 0;
        while done < data.len() {
            let (addr, n) = self.segment(data.len() - done)?;
            self.mem
                .write_slice(&data[done..done + n], GuestAddress(addr))
                .map_err(|_| DmaError::Memory)?;
            note_dma_write(self.mem, addr, n);
            self.advance(n);
            done += n;
        }
        Ok(())
    }

    /// Fills `buf` from the regions, in order.
    pub fn gather(&mut self, buf: &mut [u8]) -> Result<(), DmaError> {
        let mut done = 0;
        while done < buf.len() {
            let (addr, n) = self.segment(buf.len() - done)?;
            self.mem
                .read_slice(&mut buf[done..done + n], GuestAddress(addr))
                .map_err(|_| DmaError::Memory)?;
            self.advance(n);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_behave_as_the_piix_s() {
        let mut bm = BmDmaRegs {
            status: BM_STATUS_ACTIVE | BM_STATUS_ERROR | BM_STATUS_INTERRUPT,
            ..BmDmaRegs::default()
        };
        bm.write_status(0x60 | BM_STATUS_INTERRUPT | BM_STATUS_ACTIVE);
        assert_eq!(bm.status, 0x60 | BM_STATUS_ACTIVE | BM_STATUS_ERROR);
        bm.write_prd(4, 4, 0x1234_5677);
        assert_eq!(bm.prd_table, 0x1234_5674);
        bm.write_prd(6, 2, 0xabcd);
        assert_eq!(bm.read(4, 4), 0xabcd_5674);
        assert_eq!(bm.read(7, 1), 0xab);
        assert_eq!(bm.read(1, 1), 0xff);
        assert_eq!(bm.read(0, 2), 0xffff);
    }
}
