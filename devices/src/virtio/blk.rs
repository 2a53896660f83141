//! virtio-blk (VIRTIO 1.x §5.2): a disk backed by a host image file.
//!
//! One request queue, served synchronously on notification. A request is a 16-byte
//! header (type, reserved, sector) at the start of the device-readable bytes, data
//! after it (writes) or at the start of the device-writable bytes (reads), and a
//! status byte at the very end of the device-writable bytes. The layout of those
//! bytes over descriptors is free (VERSION_1 implies ANY_LAYOUT).
//!
//! A chain that cannot hold a request (header shorter than 16 bytes, no writable
//! byte for the status) is a driver error that breaks the device. Requests that are
//! well formed but cannot be served (out of range, partial sectors, a write to a
//! read-only disk, a host I/O error) complete with `VIRTIO_BLK_S_IOERR`; unknown
//! types with `VIRTIO_BLK_S_UNSUPP`.

use std::path::Path;

use emu_core::{DeviceState, StateError};
use serde::{Deserialize, Serialize};

use super::queue::{Chain, QueueAccess};
use super::{
    DEVICE_ID_BLOCK, DeviceError, VIRTIO_RING_F_INDIRECT_DESC, VirtioDevice, VirtioMemory,
    copy_config,
};
use crate::state::invalid;

pub use crate::block::{BlkError, BlockBackend};

/// Bytes per sector, the unit of request offsets and of the capacity.
pub const SECTOR_SIZE: u64 = 512;
/// Length of the GET_ID answer.
pub const ID_BYTES: usize = 20;

const QUEUE_SIZE: u16 = 256;
/// Most data segments per request: the queue minus header and status descriptors.
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// Data moves between the image and guest memory through a buffer this big, so a
/// request of any size costs bounded host memory.
const CHUNK: usize = 64 << 10;
const HEADER_LEN: u64 = 16;
/// Layout version of the saved [`BlkState`].
const STATE_VERSION: u32 = 1;

/// Feature: `seg_max` in the configuration is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// Feature: the disk is read-only.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// Feature: `blk_size` in the configuration is valid.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// Feature: the device handles FLUSH requests.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Request type: read.
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// Request type: write.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// Request type: make earlier writes durable.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// Request type: read the device serial.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// Request status: success.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Request status: the request failed.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Request status: unknown request type.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// The disk's guest-visible state, apart from its backing storage.
///
/// Requests are served synchronously, so none is ever half done between two
/// accesses: queue positions are the transport's, and the disk's contents are the
/// image file's (a host handle, which snapshots leave where it is). Capacity and
/// read-only come from the image and the machine's configuration: a restore checks
/// them rather than taking them, since a snapshot of another disk would not fit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkState {
    /// Size in 512-byte sectors.
    pub capacity: u64,
    /// Whether writes are refused (and VIRTIO_BLK_F_RO offered).
    pub read_only: bool,
    /// The GET_ID answer: the serial, zero-padded.
    pub serial: [u8; ID_BYTES],
}

/// A virtio block device.
pub struct VirtioBlk {
    state: BlkState,
    backend: Box<dyn BlockBackend>,
    /// Staging buffer between the backend and guest memory (`CHUNK` bytes once used).
    buffer: Vec<u8>,
}

impl std::fmt::Debug for VirtioBlk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioBlk")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn serial_bytes(serial: &str) -> [u8; ID_BYTES] {
    let mut bytes = [0u8; ID_BYTES];
    let n = serial.len().min(ID_BYTES);
    bytes[..n].copy_from_slice(&serial.as_bytes()[..n]);
    bytes
}

/// Outcome of one request: its status and the data bytes written for the driver.
type Outcome = Result<(u8, u64), DeviceError>;

impl VirtioBlk {
    /// Opens the image at `path`, locked so that two machines cannot write it at
    /// once: exclusively when writable, shared when `read_only` (several read-only
    /// users may share an image nobody writes). The serial (GET_ID) defaults to the
    /// file name, cut to 20 bytes.
    pub fn open(path: &Path, read_only: bool) -> Result<VirtioBlk, BlkError> {
        let backend = crate::block::open_raw(path, read_only)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(VirtioBlk::with_backend(backend, read_only).with_serial(&name))
    }

    /// A disk over any backend. Its capacity is the backend's length in whole
    /// sectors (a partial last sector is not visible).
    pub fn with_backend(backend: Box<dyn BlockBackend>, read_only: bool) -> VirtioBlk {
        VirtioBlk {
            state: BlkState {
                capacity: backend.len() / SECTOR_SIZE,
                read_only,
                serial: [0; ID_BYTES],
            },
            backend,
            buffer: Vec::new(),
        }
    }

    /// Sets the serial the guest reads with GET_ID (at most 20 bytes are kept).
    pub fn with_serial(mut self, serial: &str) -> VirtioBlk {
        self.state.serial = serial_bytes(serial);
        self
    }

    /// The guest-visible state.
    pub fn state(&self) -> &BlkState {
        &self.state
    }

    /// Byte offset of `sector` when `[sector, sector + len bytes)` is on the disk.
    fn byte_range(&self, sector: u64, len: u64) -> Option<u64> {
        let start = sector.checked_mul(SECTOR_SIZE)?;
        let end = start.checked_add(len)?;
        let size = self.state.capacity.checked_mul(SECTOR_SIZE)?;
        (len.is_multiple_of(SECTOR_SIZE) && end <= size).then_some(start)
    }

    fn staging(&mut self) -> &mut [u8] {
        if self.buffer.len() < CHUNK {
            self.buffer.resize(CHUNK, 0);
        }
        &mut self.buffer
    }

    /// IN: disk to the first `len` writable bytes.
    fn read(&mut self, chain: &Chain, mem: &VirtioMemory, sector: u64, len: u64) -> Outcome {
        let Some(start) = self.byte_range(sector, len) else {
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        };
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            self.staging();
            let buf = &mut self.buffer[..n];
            if let Err(e) = self.backend.read_at(start + done, buf) {
                tracing::warn!("virtio-blk: read at byte {}: {e}", start + done);
                return Ok((VIRTIO_BLK_S_IOERR, done));
            }
            chain.write_at(mem, done, buf)?;
            done += n as u64;
        }
        Ok((VIRTIO_BLK_S_OK, done))
    }

    /// OUT: the `len` readable bytes after the header to the disk.
    fn write(&mut self, chain: &Chain, mem: &VirtioMemory, sector: u64, len: u64) -> Outcome {
        if self.state.read_only {
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        }
        let Some(start) = self.byte_range(sector, len) else {
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        };
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            self.staging();
            let buf = &mut self.buffer[..n];
            chain.read_at(mem, HEADER_LEN + done, buf)?;
            if let Err(e) = self.backend.write_at(start + done, buf) {
                tracing::warn!("virtio-blk: write at byte {}: {e}", start + done);
                return Ok((VIRTIO_BLK_S_IOERR, 0));
            }
            done += n as u64;
        }
        Ok((VIRTIO_BLK_S_OK, 0))
    }

    /// Serves one request; returns the bytes written into the chain (status included).
    fn handle(&mut self, chain: &Chain, mem: &VirtioMemory) -> Result<u32, DeviceError> {
        let readable = chain.readable_len();
        if readable < HEADER_LEN {
            return Err(DeviceError::BadRequest(format!(
                "request header is {readable} bytes, needs {HEADER_LEN}"
            )));
        }
        let writable = chain.writable_len();
        if writable == 0 {
            return Err(DeviceError::BadRequest(
                "request has no writable byte for its status".into(),
            ));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        chain.read_at(mem, 0, &mut header)?;
        let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = header;
        let kind = u32::from_le_bytes([t0, t1, t2, t3]);
        let sector = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        // Data the driver can receive sits before the status byte.
        let room = writable - 1;
        // Data going the wrong way: the device would have to write a buffer the
        // driver made read-only, or read one it made write-only.
        let wrong_way = match kind {
            VIRTIO_BLK_T_IN | VIRTIO_BLK_T_GET_ID => readable > HEADER_LEN,
            VIRTIO_BLK_T_OUT => room > 0,
            _ => false,
        };
        if wrong_way {
            return Err(DeviceError::BadRequest(format!(
                "request type {kind} has {readable} readable and {writable} writable bytes"
            )));
        }
        let (status, written) = match kind {
            VIRTIO_BLK_T_IN => self.read(chain, mem, sector, room)?,
            VIRTIO_BLK_T_OUT => self.write(chain, mem, sector, readable - HEADER_LEN)?,
            VIRTIO_BLK_T_FLUSH => match self.backend.flush() {
                Ok(()) => (VIRTIO_BLK_S_OK, 0),
                Err(e) => {
                    tracing::warn!("virtio-blk: flush: {e}");
                    (VIRTIO_BLK_S_IOERR, 0)
                }
            },
            VIRTIO_BLK_T_GET_ID => {
                let n = room.min(ID_BYTES as u64) as usize;
                let n = chain.write_at(mem, 0, &self.state.serial[..n])?;
                (VIRTIO_BLK_S_OK, n as u64)
            }
            _ => (VIRTIO_BLK_S_UNSUPP, 0),
        };
        chain.write_at(mem, room, &[status])?;
        // `written <= room < writable <= u32::MAX`: a chain carries at most 4 GiB.
        Ok(u32::try_from(written + 1).unwrap_or(u32::MAX))
    }
}

impl VirtioDevice for VirtioBlk {
    fn device_type(&self) -> u32 {
        DEVICE_ID_BLOCK
    }

    fn name(&self) -> &'static str {
        "virtio-blk"
    }

    fn features(&self) -> u64 {
        let read_only = if self.state.read_only {
            VIRTIO_BLK_F_RO
        } else {
            0
        };
        VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_BLK_F_SEG_MAX
            | VIRTIO_BLK_F_BLK_SIZE
            | VIRTIO_BLK_F_FLUSH
            | read_only
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    /// `struct virtio_blk_config` up to `num_queues`: capacity, size_max (0),
    /// seg_max, geometry (0), blk_size, topology (0), writeback (0), num_queues (1).
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 0x24];
        config[0x00..0x08].copy_from_slice(&self.state.capacity.to_le_bytes());
        config[0x0c..0x10].copy_from_slice(&SEG_MAX.to_le_bytes());
        config[0x14..0x18].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        config[0x22..0x24].copy_from_slice(&1u16.to_le_bytes());
        copy_config(&config, offset, data);
    }

    fn process_queue(
        &mut self,
        _index: usize,
        queue: &mut QueueAccess<'_>,
    ) -> Result<(), DeviceError> {
        let mem = queue.memory();
        while let Some(chain) = queue.pop()? {
            let written = self.handle(&chain, mem)?;
            queue.add_used(chain.head, written)?;
        }
        Ok(())
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(self.name(), STATE_VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let restored: BlkState = state.decode(self.name(), STATE_VERSION)?;
        let shape = |s: &BlkState| {
            let access = if s.read_only { "read-only" } else { "writable" };
            format!("a {access} disk of {} sectors", s.capacity)
        };
        if (restored.capacity, restored.read_only) != (self.state.capacity, self.state.read_only) {
            return Err(invalid(
                self.name(),
                format!(
                    "saved from {}, this is {}",
                    shape(&restored),
                    shape(&self.state)
                ),
            ));
        }
        self.state = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::virtio::testing::{Driver, TestIrq, copy_memory, test_memory};
    use crate::virtio::{VIRTIO_F_VERSION_1, VirtioMmio, VirtioRng};
    use emu_core::{Device, GuestRam, MmioDevice};
    use std::sync::Arc;

    /// A temporary image that deletes itself.
    struct TempImage(PathBuf);

    impl TempImage {
        fn new(contents: &[u8]) -> TempImage {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("turing-virtio-blk-{}-{n}.img", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempImage(path)
        }

        fn contents(&self) -> Vec<u8> {
            std::fs::read(&self.0).unwrap()
        }
    }

    impl Drop for TempImage {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Eight sectors; sector n is filled with byte n+1, except byte 0 of each sector
    /// which holds 0xf0 | n.
    fn pattern() -> Vec<u8> {
        let mut data = vec![0u8; 8 * 512];
        for (i, b) in data.iter_mut().enumerate() {
            let sector = (i / 512) as u8;
            *b = if i % 512 == 0 {
                0xf0 | sector
            } else {
                sector + 1
            };
        }
        data
    }

    const HDR: u64 = 0x1_0000;
    const DATA: u64 = 0x2_0000;
    const STATUS: u64 = 0x1_0100;

    fn write_header(ram: &GuestRam, kind: u32, sector: u64) {
        assert!(ram.write_u32(HDR, kind));
        assert!(ram.write_u32(HDR + 4, 0));
        assert!(ram.write_u64(HDR + 8, sector));
        assert!(ram.write_u8(STATUS, 0xff));
    }

    fn setup(image: &TempImage, read_only: bool) -> (Driver, Arc<GuestRam>, TestIrq) {
        let (mem, ram) = test_memory();
        let blk = VirtioBlk::open(&image.0, read_only).unwrap();
        let irq = TestIrq::default();
        let mut driver = Driver::new(
            VirtioMmio::new(Box::new(blk), mem, Box::new(irq.clone())),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH);
        (driver, ram, irq)
    }

    #[test]
    fn config_and_features() {
        let image = TempImage::new(&pattern());
        let (mut driver, _ram, _irq) = setup(&image, false);
        assert_eq!(driver.read(0x008), 2);
        assert_eq!(driver.dev.read(0x100, 8), Ok(8), "capacity in sectors");
        assert_eq!(driver.dev.read(0x10c, 4), Ok(254), "seg_max");
        assert_eq!(driver.dev.read(0x114, 4), Ok(512), "blk_size");
        let features = driver.device_features();
        assert_eq!(features & VIRTIO_BLK_F_RO, 0);
        assert_ne!(features & VIRTIO_BLK_F_FLUSH, 0);
        assert_ne!(features & VIRTIO_F_VERSION_1, 0);
        drop(driver);
        let (mut driver, _ram, _irq) = setup(&image, true);
        assert_ne!(driver.device_features() & VIRTIO_BLK_F_RO, 0);
    }

    #[test]
    fn read_returns_file_bytes() {
        let image = TempImage::new(&pattern());
        let (mut driver, ram, irq) = setup(&image, false);
        write_header(&ram, VIRTIO_BLK_T_IN, 2);
        let head = driver.submit(
            0,
            &[(HDR, 16, false), (DATA, 1024, true), (STATUS, 1, true)],
        );
        assert_eq!(driver.used(0, 0), Some((u32::from(head), 1025)));
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        let mut got = vec![0u8; 1024];
        assert!(ram.read_bytes(DATA, &mut got));
        assert_eq!(got, pattern()[1024..2048]);
        assert!(irq.level());
    }

    #[test]
    fn read_with_any_layout() {
        // Header split over two descriptors; data and status share the last one,
        // and data spans three writable buffers.
        let image = TempImage::new(&pattern());
        let (mut driver, ram, _irq) = setup(&image, false);
        write_header(&ram, VIRTIO_BLK_T_IN, 7);
        driver.submit(
            0,
            &[
                (HDR, 5, false),
                (HDR + 5, 11, false),
                (DATA, 100, true),
                (DATA + 0x1000, 400, true),
                (DATA + 0x2000, 13, true),
            ],
        );
        assert_eq!(driver.used(0, 0).map(|u| u.1), Some(513));
        let mut got = vec![0u8; 512];
        assert!(ram.read_bytes(DATA, &mut got[..100]));
        assert!(ram.read_bytes(DATA + 0x1000, &mut got[100..500]));
        assert!(ram.read_bytes(DATA + 0x2000, &mut got[500..]));
        assert_eq!(got, pattern()[7 * 512..]);
        assert_eq!(ram.read_u8(DATA + 0x2000 + 12), Some(VIRTIO_BLK_S_OK));
    }

    #[test]
    fn large_read_goes_through_in_chunks() {
        let mut data = vec![0u8; 256 << 10];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let image = TempImage::new(&data);
        let (mut driver, ram, _irq) = setup(&image, false);
        write_header(&ram, VIRTIO_BLK_T_IN, 1);
        let len = (256 << 10) - 1024;
        driver.submit(
            0,
            &[(HDR, 16, false), (0x4_0000, len, true), (STATUS, 1, true)],
        );
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        let mut got = vec![0u8; len as usize];
        assert!(ram.read_bytes(0x4_0000, &mut got));
        assert!(got == data[512..512 + len as usize]);
    }

    #[test]
    fn write_changes_the_file_and_flush_succeeds() {
        let image = TempImage::new(&pattern());
        let (mut driver, ram, _irq) = setup(&image, false);
        write_header(&ram, VIRTIO_BLK_T_OUT, 3);
        assert!(ram.write_bytes(DATA, &[0x5a; 512]));
        let head = driver.submit(
            0,
            &[(HDR, 16, false), (DATA, 512, false), (STATUS, 1, true)],
        );
        assert_eq!(driver.used(0, 0), Some((u32::from(head), 1)));
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        write_header(&ram, VIRTIO_BLK_T_FLUSH, 0);
        driver.submit(0, &[(HDR, 16, false), (STATUS, 1, true)]);
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        let mut expected = pattern();
        expected[3 * 512..4 * 512].fill(0x5a);
        assert!(image.contents() == expected);
    }

    #[test]
    fn read_only_disk_refuses_writes_and_keeps_the_file() {
        let image = TempImage::new(&pattern());
        let (mut driver, ram, _irq) = setup(&image, true);
        write_header(&ram, VIRTIO_BLK_T_OUT, 0);
        assert!(ram.write_bytes(DATA, &[0x5a; 512]));
        driver.submit(
            0,
            &[(HDR, 16, false), (DATA, 512, false), (STATUS, 1, true)],
        );
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_IOERR));
        assert!(image.contents() == pattern());
        assert!(!driver.dev.needs_reset());
        // Reads still work.
        write_header(&ram, VIRTIO_BLK_T_IN, 0);
        driver.submit(0, &[(HDR, 16, false), (DATA, 512, true), (STATUS, 1, true)]);
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        assert_eq!(ram.read_u8(DATA), Some(0xf0));
    }

    #[test]
    fn get_id_returns_the_serial() {
        let image = TempImage::new(&pattern());
        let (mem, ram) = test_memory();
        let blk = VirtioBlk::open(&image.0, false)
            .unwrap()
            .with_serial("turing-disk-0");
        let mut driver = Driver::new(
            VirtioMmio::new(Box::new(blk), mem, Box::new(TestIrq::default())),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1);
        write_header(&ram, VIRTIO_BLK_T_GET_ID, 0);
        assert!(ram.write_bytes(DATA, &[0xff; 20]));
        driver.submit(0, &[(HDR, 16, false), (DATA, 20, true), (STATUS, 1, true)]);
        assert_eq!(driver.used(0, 0).map(|u| u.1), Some(21));
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        let mut id = [0u8; 20];
        assert!(ram.read_bytes(DATA, &mut id));
        assert_eq!(&id[..13], b"turing-disk-0");
        assert_eq!(id[13..], [0; 7]);
        // A short buffer gets the first bytes only.
        write_header(&ram, VIRTIO_BLK_T_GET_ID, 0);
        driver.submit(
            0,
            &[(HDR, 16, false), (DATA + 0x100, 6, true), (STATUS, 1, true)],
        );
        assert_eq!(driver.used(0, 1).map(|u| u.1), Some(7));
        let mut short = [0u8; 6];
        assert!(ram.read_bytes(DATA + 0x100, &mut short));
        assert_eq!(&short, b"turing");
    }

    #[test]
    fn out_of_range_and_partial_sector_requests_fail_with_ioerr() {
        let image = TempImage::new(&pattern());
        let (mut driver, ram, _irq) = setup(&image, false);
        let cases = [
            (VIRTIO_BLK_T_IN, 7, 1024),
            (VIRTIO_BLK_T_IN, 8, 512),
            (VIRTIO_BLK_T_IN, u64::MAX / 256, 512),
            (VIRTIO_BLK_T_IN, 0, 100),
            (VIRTIO_BLK_T_OUT, 8, 512),
            (VIRTIO_BLK_T_OUT, 0, 511),
        ];
        for (n, (kind, sector, len)) in cases.into_iter().enumerate() {
            write_header(&ram, kind, sector);
            let data_writable = kind == VIRTIO_BLK_T_IN;
            driver.submit(
                0,
                &[
                    (HDR, 16, false),
                    (DATA, len, data_writable),
                    (STATUS, 1, true),
                ],
            );
            assert_eq!(
                ram.read_u8(STATUS),
                Some(VIRTIO_BLK_S_IOERR),
                "case {kind} {sector} {len}"
            );
            assert_eq!(driver.used_idx(0), n as u16 + 1);
        }
        assert!(image.contents() == pattern());
        assert!(!driver.dev.needs_reset());
    }

    #[test]
    fn unknown_request_types_are_unsupported() {
        let image = TempImage::new(&pattern());
        let (mut driver, ram, _irq) = setup(&image, false);
        for kind in [2, 11, 13, 0xdead] {
            write_header(&ram, kind, 0);
            driver.submit(0, &[(HDR, 16, false), (STATUS, 1, true)]);
            assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_UNSUPP));
        }
        assert!(!driver.dev.needs_reset());
    }

    fn assert_broken(driver: &mut Driver, irq: &TestIrq) {
        assert!(driver.dev.needs_reset());
        assert_ne!(driver.read(0x070) & 0x40, 0);
        assert_ne!(driver.read(0x060) & 2, 0);
        assert!(irq.level());
    }

    #[test]
    fn malformed_requests_break_the_device() {
        let image = TempImage::new(&pattern());
        type Layout = &'static [(u64, u32, bool)];
        const IN: u32 = VIRTIO_BLK_T_IN;
        const OUT: u32 = VIRTIO_BLK_T_OUT;
        let layouts: [(&str, u32, Layout); 10] = [
            (
                "zero-length header",
                IN,
                &[(HDR, 0, false), (STATUS, 1, true)],
            ),
            ("short header", IN, &[(HDR, 8, false), (STATUS, 1, true)]),
            ("no status", IN, &[(HDR, 16, false)]),
            (
                "no status after data",
                OUT,
                &[(HDR, 16, false), (DATA, 512, false)],
            ),
            ("status only", IN, &[(STATUS, 1, true)]),
            (
                "header outside RAM",
                IN,
                &[(0xff_fff8, 16, false), (STATUS, 1, true)],
            ),
            (
                "data outside RAM",
                IN,
                &[(HDR, 16, false), (0x10_0000, 512, true), (STATUS, 1, true)],
            ),
            (
                "read into a read-only buffer",
                IN,
                &[(HDR, 16, false), (DATA, 512, false), (STATUS, 1, true)],
            ),
            (
                "get-id into a read-only buffer",
                VIRTIO_BLK_T_GET_ID,
                &[(HDR, 16, false), (DATA, 20, false), (STATUS, 1, true)],
            ),
            (
                "write from a write-only buffer",
                OUT,
                &[(HDR, 16, false), (DATA, 512, true), (STATUS, 1, true)],
            ),
        ];
        for (what, kind, layout) in layouts {
            let (mut driver, ram, irq) = setup(&image, false);
            write_header(&ram, kind, 0);
            driver.submit(0, layout);
            assert_broken(&mut driver, &irq);
            assert_eq!(driver.used_idx(0), 0, "{what}");
            drop(driver);
        }
        assert!(image.contents() == pattern());
    }

    /// A read request of `sectors` sectors from `sector`, its header at `at`, its
    /// status byte at `at + 0x100` and its data at `data`; made available without
    /// a notification. Returns its head.
    fn offer_read(driver: &mut Driver, ram: &GuestRam, at: u64, sector: u64, data: u64) -> u16 {
        assert!(ram.write_u32(at, VIRTIO_BLK_T_IN));
        assert!(ram.write_u32(at + 4, 0));
        assert!(ram.write_u64(at + 8, sector));
        assert!(ram.write_u8(at + 0x100, 0xff));
        driver.offer(
            0,
            &[(at, 16, false), (data, 512, true), (at + 0x100, 1, true)],
        )
    }

    #[test]
    fn a_disk_restored_mid_transfer_serves_the_waiting_requests() {
        let image = TempImage::new(&pattern());
        // Read-only, so that the original and the restored device share the image.
        let (mut a, ram, irq_a) = setup(&image, true);
        for (n, sector) in [(0u64, 0u64), (1, 1)] {
            offer_read(
                &mut a,
                &ram,
                0x1_0000 + 0x1000 * n,
                sector,
                DATA + 0x1000 * n,
            );
            a.write(0x050, 0);
        }
        let heads = [
            offer_read(&mut a, &ram, 0x1_2000, 5, DATA + 0x2000),
            offer_read(&mut a, &ram, 0x1_3000, 6, DATA + 0x3000),
        ];
        assert_eq!(a.used_idx(0), 2);
        let saved = a.dev.save_state();
        assert_eq!(saved.kind, "virtio-mmio/virtio-blk");

        let (mem_b, ram_b) = copy_memory(&ram);
        let irq_b = TestIrq::default();
        let blk = VirtioBlk::open(&image.0, true).unwrap();
        let mut fresh = VirtioMmio::new(Box::new(blk), mem_b, Box::new(irq_b.clone()));
        fresh.restore_state(&saved).unwrap();
        let mut b = a.fork(fresh, &ram_b);
        assert_eq!(b.dev.save_state(), saved);
        assert_eq!(irq_b.level(), irq_a.level());
        for offset in [0x070, 0x060, 0x038, 0x044] {
            assert_eq!(a.read(offset), b.read(offset), "register {offset:#x}");
        }
        assert_eq!(b.dev.read(0x100, 8), Ok(8), "capacity");

        for (driver, ram) in [(&mut a, &ram), (&mut b, &ram_b)] {
            driver.write(0x064, 1);
            driver.write(0x050, 0);
            assert_eq!(driver.used_idx(0), 4);
            for (n, (&head, sector)) in heads.iter().zip([5usize, 6]).enumerate() {
                assert_eq!(driver.used(0, 2 + n as u16), Some((u32::from(head), 513)));
                let at = 0x1_2000 + 0x1000 * n as u64;
                assert_eq!(ram.read_u8(at + 0x100), Some(VIRTIO_BLK_S_OK));
                let mut got = vec![0u8; 512];
                assert!(ram.read_bytes(DATA + 0x2000 + 0x1000 * n as u64, &mut got));
                assert_eq!(got, pattern()[sector * 512..(sector + 1) * 512]);
            }
        }
        assert_eq!(a.dev.save_state(), b.dev.save_state());
        assert_eq!(irq_a.level(), irq_b.level());
    }

    #[test]
    fn reset_brings_the_disk_back_to_an_unconfigured_device() {
        let image = TempImage::new(&pattern());
        let (mut driver, ram, irq) = setup(&image, false);
        write_header(&ram, VIRTIO_BLK_T_IN, 0);
        driver.submit(0, &[(HDR, 16, false), (DATA, 512, true), (STATUS, 1, true)]);
        assert_eq!(driver.status(), 0xf);
        assert!(irq.level());
        Device::reset(&mut driver.dev);
        assert_eq!(driver.status(), 0);
        assert_eq!(driver.read(0x044), 0, "queue no longer ready");
        assert!(!irq.level());
        // The disk is still there for the next driver.
        driver.init(VIRTIO_F_VERSION_1);
        write_header(&ram, VIRTIO_BLK_T_IN, 3);
        driver.submit(0, &[(HDR, 16, false), (DATA, 512, true), (STATUS, 1, true)]);
        assert_eq!(ram.read_u8(STATUS), Some(VIRTIO_BLK_S_OK));
        assert_eq!(ram.read_u8(DATA), Some(0xf3));
    }

    #[test]
    fn restore_refuses_other_devices_and_other_disks() {
        let image = TempImage::new(&pattern());
        let (mut driver, _ram, _irq) = setup(&image, true);
        crate::testing::assert_refuses_foreign_states(&mut driver.dev);
        let (mem, _) = test_memory();
        let rng = VirtioMmio::new(
            Box::new(VirtioRng::seeded(1)),
            mem,
            Box::new(TestIrq::default()),
        );
        assert!(matches!(
            driver.dev.restore_state(&rng.save_state()),
            Err(StateError::Mismatch { .. })
        ));
        // A snapshot of a bigger disk, straight into the model.
        let mut blk = VirtioBlk::open(&image.0, true).unwrap();
        let bigger = BlkState {
            capacity: 9,
            ..blk.state().clone()
        };
        let state = DeviceState::encode("virtio-blk", STATE_VERSION, &bigger);
        assert!(matches!(
            blk.restore_state(&state),
            Err(StateError::Invalid { .. })
        ));
        let renamed = BlkState {
            serial: serial_bytes("other"),
            ..blk.state().clone()
        };
        blk.restore_state(&DeviceState::encode("virtio-blk", STATE_VERSION, &renamed))
            .unwrap();
        assert_eq!(blk.state(), &renamed, "the serial is the guest's to keep");
    }

    #[test]
    fn open_errors_name_the_file() {
        let missing = std::env::temp_dir().join("turing-no-such-disk.img");
        let err = VirtioBlk::open(&missing, false).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("turing-no-such-disk.img"), "{message}");
        assert!(message.starts_with("cannot open disk image"), "{message}");
        assert!(!message.contains('\n'));

        let dir = VirtioBlk::open(&std::env::temp_dir(), true).unwrap_err();
        assert!(matches!(dir, BlkError::IsDirectory { .. }), "{dir}");
    }

    #[test]
    fn images_are_locked_against_a_second_writer() {
        let image = TempImage::new(&pattern());
        let writer = VirtioBlk::open(&image.0, false).unwrap();
        let err = VirtioBlk::open(&image.0, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "disk image {} is locked by another process",
                image.0.display()
            )
        );
        assert!(
            VirtioBlk::open(&image.0, true).is_err(),
            "no reader beside a writer"
        );
        drop(writer);
        // Readers share; a writer waits until they are gone.
        let reader1 = VirtioBlk::open(&image.0, true).unwrap();
        let reader2 = VirtioBlk::open(&image.0, true).unwrap();
        assert!(matches!(
            VirtioBlk::open(&image.0, false),
            Err(BlkError::Locked { .. })
        ));
        assert_eq!(reader1.state().serial[..6], *b"turing");
        drop((reader1, reader2));
        assert!(VirtioBlk::open(&image.0, false).is_ok());
    }
}
