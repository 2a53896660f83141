//! Split virtqueues (VIRTIO 1.x §2.7) on top of rust-vmm's `virtio-queue`.
//!
//! The crate walks the available ring and descriptor chains (including indirect
//! tables) with bounds-checked guest memory accesses, but it ends a chain silently
//! on every kind of damage: a loop runs out its time-to-live, a bad `next` index or
//! an unreadable descriptor just stops the iteration. [`QueueAccess::pop`] therefore
//! checks what the crate cannot tell: the chain must end on a descriptor without
//! `NEXT`, every buffer must lie in RAM, and device-readable buffers must come before
//! device-writable ones. A chain that fails any check is a [`QueueError`], which the
//! transport turns into `DEVICE_NEEDS_RESET`.

use thiserror::Error;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use super::memory::{VirtioMemory, note_dma_write};

/// A driver error found in a virtqueue: the device stops until reset.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QueueError {
    /// The available ring could not be read or claims more entries than fit.
    #[error("bad available ring: {0}")]
    AvailRing(String),
    /// The chain's head index is out of range or its first descriptor is unreadable.
    #[error("descriptor chain at head {0} is empty or unreadable")]
    EmptyChain(u16),
    /// The chain loops, links to a bad index, has a bad indirect table or is too long.
    #[error("descriptor chain at head {0} is broken (loop, bad index or bad indirect table)")]
    BrokenChain(u16),
    /// A buffer lies (partly) outside guest RAM.
    #[error("descriptor buffer at {addr:#x} with length {len:#x} is outside RAM")]
    OutOfRange {
        /// Guest physical address of the buffer.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// A device-readable buffer follows a device-writable one.
    #[error("descriptor chain at head {0} has a readable buffer after a writable one")]
    ReadableAfterWritable(u16),
    /// The used ring could not be written.
    #[error("cannot write the used ring: {0}")]
    UsedRing(String),
    /// Copying to or from a buffer failed.
    #[error("guest memory access failed at {0:#x}")]
    Memory(u64),
}

/// One buffer of a descriptor chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescBuf {
    /// Guest physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

/// A validated descriptor chain: its head index and its buffers, split into the
/// device-readable part and the device-writable part, each seen as one byte stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// Index of the head descriptor (what goes into the used ring).
    pub head: u16,
    /// Buffers the device reads, in order.
    pub readable: Vec<DescBuf>,
    /// Buffers the device writes, in order.
    pub writable: Vec<DescBuf>,
}

/// Copies `len` bytes of a stream of buffers starting at stream offset `offset`,
/// calling `copy(guest_addr, range_in_host_buffer)` for each contiguous piece.
/// Returns how many bytes the stream had room for.
fn for_each_piece(
    bufs: &[DescBuf],
    mut offset: u64,
    len: usize,
    mut copy: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), QueueError>,
) -> Result<usize, QueueError> {
    let mut done = 0usize;
    for buf in bufs {
        if done == len {
            break;
        }
        let buf_len = u64::from(buf.len);
        if offset >= buf_len {
            offset -= buf_len;
            continue;
        }
        // Both fit in usize: `buf_len - offset` is at most u32::MAX.
        let n = ((buf_len - offset) as usize).min(len - done);
        let addr = buf
            .addr
            .checked_add(offset)
            .ok_or(QueueError::Memory(buf.addr))?;
        copy(addr, done..done + n)?;
        done += n;
        offset = 0;
    }
    Ok(done)
}

impl Chain {
    /// Total bytes in the device-readable buffers.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|b| u64::from(b.len)).sum()
    }

    /// Total bytes in the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|b| u64::from(b.len)).sum()
    }

    /// Reads from the readable stream at `offset` into `buf`; returns the bytes read,
    /// fewer than `buf.len()` when the stream ends first.
    pub fn read_at(
        &self,
        mem: &VirtioMemory,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, QueueError> {
        let len = buf.len();
        for_each_piece(&self.readable, offset, len, |addr, range| {
            mem.read_slice(&mut buf[range], GuestAddress(addr))
                .map_err(|_| QueueError::Memory(addr))
        })
    }

    /// Writes `data` into the writable stream at `offset`; returns the bytes written,
    /// fewer than `data.len()` when the stream ends first.
    pub fn write_at(
        &self,
        mem: &VirtioMemory,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, QueueError> {
        for_each_piece(&self.writable, offset, data.len(), |addr, range| {
            let len = range.len();
            mem.write_slice(&data[range], GuestAddress(addr))
                .map_err(|_| QueueError::Memory(addr))?;
            // The buffer may hold code a CPU decoded (a kernel read from disk).
            note_dma_write(mem, addr, len);
            Ok(())
        })
    }
}

/// One queue as a device sees it while it handles a notification.
#[derive(Debug)]
pub struct QueueAccess<'a> {
    queue: &'a mut Queue,
    mem: &'a VirtioMemory,
    used: u32,
}

impl<'a> QueueAccess<'a> {
    /// Access to `queue`, whose rings live in `mem`.
    pub fn new(queue: &'a mut Queue, mem: &'a VirtioMemory) -> QueueAccess<'a> {
        QueueAccess {
            queue,
            mem,
            used: 0,
        }
    }

    /// Guest memory, for copying buffer contents.
    pub fn memory(&self) -> &'a VirtioMemory {
        self.mem
    }

    /// How many chains were returned through [`QueueAccess::add_used`].
    pub fn used_count(&self) -> u32 {
        self.used
    }

    /// Takes the next available chain, validated; `Ok(None)` when the ring is empty.
    pub fn pop(&mut self) -> Result<Option<Chain>, QueueError> {
        let mut iter = self
            .queue
            .iter(self.mem)
            .map_err(|e| QueueError::AvailRing(e.to_string()))?;
        let Some(descriptors) = iter.next() else {
            return Ok(None);
        };
        let head = descriptors.head_index();
        let mut chain = Chain {
            head,
            ..Chain::default()
        };
        let mut count = 0usize;
        let mut ended = false;
        for desc in descriptors {
            count += 1;
            ended = !desc.has_next();
            let buf = DescBuf {
                addr: desc.addr().0,
                len: desc.len(),
            };
            let access = if desc.is_write_only() {
                Permissions::Write
            } else {
                Permissions::Read
            };
            if !self
                .mem
                .check_range(desc.addr(), desc.len() as usize, access)
            {
                return Err(QueueError::OutOfRange {
                    addr: buf.addr,
                    len: buf.len,
                });
            }
            if desc.is_write_only() {
                chain.writable.push(buf);
            } else if chain.writable.is_empty() {
                chain.readable.push(buf);
            } else {
                return Err(QueueError::ReadableAfterWritable(head));
            }
        }
        if count == 0 {
            return Err(QueueError::EmptyChain(head));
        }
        // The crate stops early (and silently) on loops, bad `next` indices, bad
        // indirect tables and chains over 4 GiB: the last descriptor it gave us then
        // still says NEXT.
        if !ended {
            return Err(QueueError::BrokenChain(head));
        }
        Ok(Some(chain))
    }

    /// Puts the last `count` chains taken by [`QueueAccess::pop`] back in the
    /// available ring, unused: the device found it could not use them yet.
    pub fn give_back(&mut self, count: u16) {
        let next = self.queue.next_avail().wrapping_sub(count);
        self.queue.set_next_avail(next);
    }

    /// Returns a chain to the driver, with `len` bytes written into its buffers.
    pub fn add_used(&mut self, head: u16, len: u32) -> Result<(), QueueError> {
        self.queue
            .add_used(self.mem, head, len)
            .map_err(|e| QueueError::UsedRing(e.to_string()))?;
        self.used += 1;
        Ok(())
    }
}
