//! virtio-gpu in 2D mode (VIRTIO 1.x §5.7, device ID 16): resources in host
//! memory, guest backing pages, transfers, one scanout, flushes. The displayed
//! image is kept in a [`Display`] that a window or a screenshot reads.
//!
//! Every command is checked before it touches anything: unknown resources,
//! scanouts or formats, rectangles outside their resource, resources over the
//! memory budget and backing outside guest RAM get an error response
//! (`VIRTIO_GPU_RESP_ERR_*`), as the spec asks; only a chain too short to hold a
//! request header breaks the device.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use emu_core::sync::LockRecover;
use emu_core::{DeviceState, StateError};
use serde::{Deserialize, Serialize};
use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use super::queue::{Chain, QueueAccess};
use super::{DeviceError, VIRTIO_RING_F_INDIRECT_DESC, VirtioDevice, VirtioMemory, copy_config};
use crate::state::invalid;

/// virtio-gpu's device ID.
pub const DEVICE_ID_GPU: u32 = 16;

const CMD_GET_DISPLAY_INFO: u32 = 0x0100;
const CMD_RESOURCE_CREATE_2D: u32 = 0x0101;
const CMD_RESOURCE_UNREF: u32 = 0x0102;
const CMD_SET_SCANOUT: u32 = 0x0103;
const CMD_RESOURCE_FLUSH: u32 = 0x0104;
const CMD_TRANSFER_TO_HOST_2D: u32 = 0x0105;
const CMD_RESOURCE_ATTACH_BACKING: u32 = 0x0106;
const CMD_RESOURCE_DETACH_BACKING: u32 = 0x0107;
const CMD_UPDATE_CURSOR: u32 = 0x0300;
const CMD_MOVE_CURSOR: u32 = 0x0301;

const RESP_OK_NODATA: u32 = 0x1100;
const RESP_OK_DISPLAY_INFO: u32 = 0x1101;
const RESP_ERR_UNSPEC: u32 = 0x1200;
const RESP_ERR_OUT_OF_MEMORY: u32 = 0x1201;
const RESP_ERR_INVALID_SCANOUT_ID: u32 = 0x1202;
const RESP_ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
const RESP_ERR_INVALID_PARAMETER: u32 = 0x1205;

const FLAG_FENCE: u32 = 1;
/// Bytes of `virtio_gpu_ctrl_hdr`.
const HEADER: usize = 24;
/// The spec's maximum number of scanouts (the display-info response has 16).
const MAX_SCANOUTS: usize = 16;
/// Backing entries one attach may list.
const MAX_BACKING_ENTRIES: u32 = 16384;
const QUEUE_SIZE: u16 = 256;
/// Layout version of the saved state.
const STATE_VERSION: u32 = 1;

/// The image a guest shows: 0x00RRGGBB pixels, row by row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Display {
    /// Width in pixels (0 when nothing is shown).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` pixels.
    pub pixels: Vec<u32>,
    /// Bumped on every flush, so viewers know when to redraw.
    pub frames: u64,
}

/// A display shared between the device and whoever shows it.
pub type DisplayHandle = Arc<Mutex<Display>>;

/// A 2D resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Resource {
    width: u32,
    height: u32,
    format: u32,
    /// 4 bytes per pixel, in the resource's format.
    #[serde(with = "crate::state::hex_bytes")]
    pixels: Vec<u8>,
    /// Guest memory backing it: (guest physical address, length).
    backing: Vec<(u64, u32)>,
}

impl Resource {
    /// Why this resource, read from a saved state, could not have been created
    /// and attached by a guest, if it could not.
    fn check(&self) -> Result<(), String> {
        if to_rgb(self.format, [0; 4]).is_none() || self.width == 0 || self.height == 0 {
            return Err(format!(
                "{}x{} resource in format {}",
                self.width, self.height, self.format
            ));
        }
        if self.pixels.len() as u64 != u64::from(self.width) * u64::from(self.height) * 4 {
            return Err(format!(
                "{} bytes of pixels for {}x{}",
                self.pixels.len(),
                self.width,
                self.height
            ));
        }
        if self.backing.len() > MAX_BACKING_ENTRIES as usize
            || self
                .backing
                .iter()
                .any(|&(addr, len)| len == 0 || addr.checked_add(u64::from(len)).is_none())
        {
            return Err("bad backing entries".into());
        }
        Ok(())
    }
}

/// The GPU's guest-visible state: what the guest created and where it points
/// the scanout. The image shown is kept apart, in the [`DisplayHandle`] shared
/// with viewers; the scanout size and the memory budget are the machine's
/// configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct GpuState {
    /// Resources by id.
    resources: BTreeMap<u32, Resource>,
    /// The resource on scanout 0 and the part of it shown.
    scanout: Option<(u32, Rect)>,
}

/// What a GPU saves: its state, and the image on the display as of the last
/// flush (the resource may have changed since, without a flush). The display's
/// frame counter is not saved: a restore bumps it, so viewers redraw.
#[derive(Serialize, Deserialize)]
struct SavedGpu {
    state: GpuState,
    shown_width: u32,
    shown_height: u32,
    /// The shown 0x00RRGGBB pixels, little-endian.
    #[serde(with = "crate::state::hex_bytes")]
    shown: Vec<u8>,
}

/// A rectangle from a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Rect {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

impl Rect {
    fn parse(b: &[u8]) -> Rect {
        Rect {
            x: le32(b, 0),
            y: le32(b, 4),
            width: le32(b, 8),
            height: le32(b, 12),
        }
    }

    /// Whether it lies inside a `width` x `height` resource.
    fn fits(&self, width: u32, height: u32) -> bool {
        u64::from(self.x) + u64::from(self.width) <= u64::from(width)
            && u64::from(self.y) + u64::from(self.height) <= u64::from(height)
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

/// Converts one pixel of `format` to 0x00RRGGBB; `None` for unknown formats.
fn to_rgb(format: u32, p: [u8; 4]) -> Option<u32> {
    let rgb = |r: u8, g: u8, b: u8| (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b);
    Some(match format {
        // B8G8R8A8 / B8G8R8X8: bytes B, G, R, A.
        1 | 2 => rgb(p[2], p[1], p[0]),
        // A8R8G8B8 / X8R8G8B8: bytes A, R, G, B.
        3 | 4 => rgb(p[1], p[2], p[3]),
        // R8G8B8A8 / R8G8B8X8: bytes R, G, B, A.
        67 | 134 => rgb(p[0], p[1], p[2]),
        // A8B8G8R8 / X8B8G8R8: bytes A, B, G, R.
        121 | 68 => rgb(p[3], p[2], p[1]),
        _ => return None,
    })
}

/// The virtio-gpu device.
#[derive(Debug)]
pub struct VirtioGpu {
    state: GpuState,
    /// Bytes of all resources together, against `memory_budget`.
    memory_used: u64,
    width: u32,
    height: u32,
    memory_budget: u64,
    display: DisplayHandle,
}

impl VirtioGpu {
    /// A device with one `width` x `height` scanout, allowing resources of up to
    /// `memory_budget` bytes together, showing into `display`.
    pub fn new(width: u32, height: u32, memory_budget: u64, display: DisplayHandle) -> VirtioGpu {
        VirtioGpu {
            state: GpuState::default(),
            memory_used: 0,
            width,
            height,
            memory_budget,
            display,
        }
    }

    fn display(&self) -> MutexGuard<'_, Display> {
        self.display.lock_recover()
    }

    /// Shows nothing (no scanout), telling viewers to redraw.
    fn blank(&self) {
        let mut display = self.display();
        *display = Display {
            frames: display.frames + 1,
            ..Display::default()
        };
    }

    /// Why `saved` cannot be this GPU's state, if it cannot; else the memory its
    /// resources take.
    fn check(&self, saved: &SavedGpu) -> Result<u64, String> {
        let mut used = 0u64;
        for (&id, resource) in &saved.state.resources {
            resource
                .check()
                .map_err(|reason| format!("resource {id}: {reason}"))?;
            used += resource.pixels.len() as u64;
        }
        if saved.state.resources.contains_key(&0) {
            return Err("resource id 0".into());
        }
        if used > self.memory_budget {
            return Err(format!(
                "resources take {used} bytes, the budget is {}",
                self.memory_budget
            ));
        }
        if let Some((id, rect)) = saved.state.scanout {
            let fits = saved.state.resources.get(&id).is_some_and(|r| {
                rect.fits(r.width, r.height) && rect.width != 0 && rect.height != 0
            });
            if !fits {
                return Err(format!("scanout on resource {id} at {rect:?}"));
            }
        }
        let shown = u64::from(saved.shown_width) * u64::from(saved.shown_height) * 4;
        if saved.shown.len() as u64 != shown {
            return Err(format!(
                "{} bytes shown for {}x{}",
                saved.shown.len(),
                saved.shown_width,
                saved.shown_height
            ));
        }
        Ok(used)
    }

    /// Runs one control command; returns the response type and any payload.
    fn command(&mut self, kind: u32, body: &[u8], mem: &VirtioMemory) -> (u32, Vec<u8>) {
        let need = |n: usize| body.len() >= n;
        match kind {
            CMD_GET_DISPLAY_INFO => {
                let mut info = vec![0u8; MAX_SCANOUTS * 24];
                info[8..12].copy_from_slice(&self.width.to_le_bytes());
                info[12..16].copy_from_slice(&self.height.to_le_bytes());
                info[16..20].copy_from_slice(&1u32.to_le_bytes()); // enabled
                (RESP_OK_DISPLAY_INFO, info)
            }
            CMD_RESOURCE_CREATE_2D if need(16) => {
                let (id, format, width, height) =
                    (le32(body, 0), le32(body, 4), le32(body, 8), le32(body, 12));
                (self.create(id, format, width, height), Vec::new())
            }
            CMD_RESOURCE_UNREF if need(4) => {
                let id = le32(body, 0);
                match self.state.resources.remove(&id) {
                    Some(r) => {
                        self.memory_used -= r.pixels.len() as u64;
                        if self.state.scanout.is_some_and(|(on, _)| on == id) {
                            self.state.scanout = None;
                        }
                        (RESP_OK_NODATA, Vec::new())
                    }
                    None => (RESP_ERR_INVALID_RESOURCE_ID, Vec::new()),
                }
            }
            CMD_SET_SCANOUT if need(24) => {
                let rect = Rect::parse(body);
                let (scanout_id, id) = (le32(body, 16), le32(body, 20));
                (self.set_scanout(scanout_id, id, rect), Vec::new())
            }
            CMD_RESOURCE_FLUSH if need(20) => {
                let rect = Rect::parse(body);
                (self.flush(le32(body, 16), rect), Vec::new())
            }
            CMD_TRANSFER_TO_HOST_2D if need(28) => {
                let rect = Rect::parse(body);
                let (offset, id) = (le64(body, 16), le32(body, 24));
                (self.transfer(id, rect, offset, mem), Vec::new())
            }
            CMD_RESOURCE_ATTACH_BACKING if need(8) => {
                let (id, count) = (le32(body, 0), le32(body, 4));
                (self.attach(id, count, &body[8..], mem), Vec::new())
            }
            CMD_RESOURCE_DETACH_BACKING if need(4) => {
                match self.state.resources.get_mut(&le32(body, 0)) {
                    Some(r) => {
                        r.backing.clear();
                        (RESP_OK_NODATA, Vec::new())
                    }
                    None => (RESP_ERR_INVALID_RESOURCE_ID, Vec::new()),
                }
            }
            // Known commands with a body too short to hold their fields.
            CMD_RESOURCE_CREATE_2D
            | CMD_RESOURCE_UNREF
            | CMD_SET_SCANOUT
            | CMD_RESOURCE_FLUSH
            | CMD_TRANSFER_TO_HOST_2D
            | CMD_RESOURCE_ATTACH_BACKING
            | CMD_RESOURCE_DETACH_BACKING => (RESP_ERR_INVALID_PARAMETER, Vec::new()),
            // No cursor plane: accepted and ignored, as drivers expect.
            CMD_UPDATE_CURSOR | CMD_MOVE_CURSOR => (RESP_OK_NODATA, Vec::new()),
            _ => (RESP_ERR_UNSPEC, Vec::new()),
        }
    }

    fn create(&mut self, id: u32, format: u32, width: u32, height: u32) -> u32 {
        if id == 0 || self.state.resources.contains_key(&id) {
            return RESP_ERR_INVALID_RESOURCE_ID;
        }
        if to_rgb(format, [0; 4]).is_none() || width == 0 || height == 0 {
            return RESP_ERR_INVALID_PARAMETER;
        }
        let bytes = u64::from(width) * u64::from(height) * 4;
        if self.memory_used + bytes > self.memory_budget {
            return RESP_ERR_OUT_OF_MEMORY;
        }
        self.memory_used += bytes;
        self.state.resources.insert(
            id,
            Resource {
                width,
                height,
                format,
                pixels: vec![0; bytes as usize],
                backing: Vec::new(),
            },
        );
        RESP_OK_NODATA
    }

    fn attach(&mut self, id: u32, count: u32, entries: &[u8], mem: &VirtioMemory) -> u32 {
        let Some(resource) = self.state.resources.get_mut(&id) else {
            return RESP_ERR_INVALID_RESOURCE_ID;
        };
        if count == 0 || count > MAX_BACKING_ENTRIES || entries.len() < 16 * count as usize {
            return RESP_ERR_INVALID_PARAMETER;
        }
        let mut backing = Vec::with_capacity(count as usize);
        for entry in entries.chunks_exact(16).take(count as usize) {
            let (addr, len) = (le64(entry, 0), le32(entry, 8));
            // Every page must be guest RAM, now rather than at transfer time.
            if len == 0 || !mem.check_range(GuestAddress(addr), len as usize, Permissions::Read) {
                return RESP_ERR_INVALID_PARAMETER;
            }
            backing.push((addr, len));
        }
        resource.backing = backing;
        RESP_OK_NODATA
    }

    fn transfer(&mut self, id: u32, rect: Rect, offset: u64, mem: &VirtioMemory) -> u32 {
        let Some(resource) = self.state.resources.get_mut(&id) else {
            return RESP_ERR_INVALID_RESOURCE_ID;
        };
        if !rect.fits(resource.width, resource.height) || resource.backing.is_empty() {
            return RESP_ERR_INVALID_PARAMETER;
        }
        let stride = u64::from(resource.width) * 4;
        let row_bytes = rect.width as usize * 4;
        let mut row = vec![0u8; row_bytes];
        for line in 0..u64::from(rect.height) {
            let Some(src) = offset.checked_add(line * stride) else {
                return RESP_ERR_INVALID_PARAMETER;
            };
            if !read_backing(&resource.backing, src, &mut row, mem) {
                return RESP_ERR_INVALID_PARAMETER;
            }
            let dst = ((u64::from(rect.y) + line) * stride + u64::from(rect.x) * 4) as usize;
            resource.pixels[dst..dst + row_bytes].copy_from_slice(&row);
        }
        RESP_OK_NODATA
    }

    fn set_scanout(&mut self, scanout_id: u32, id: u32, rect: Rect) -> u32 {
        if scanout_id != 0 {
            return RESP_ERR_INVALID_SCANOUT_ID;
        }
        if id == 0 {
            self.state.scanout = None;
            self.blank();
            return RESP_OK_NODATA;
        }
        let Some(resource) = self.state.resources.get(&id) else {
            return RESP_ERR_INVALID_RESOURCE_ID;
        };
        if !rect.fits(resource.width, resource.height) || rect.width == 0 || rect.height == 0 {
            return RESP_ERR_INVALID_PARAMETER;
        }
        self.state.scanout = Some((id, rect));
        RESP_OK_NODATA
    }

    fn flush(&mut self, id: u32, rect: Rect) -> u32 {
        let Some(resource) = self.state.resources.get(&id) else {
            return RESP_ERR_INVALID_RESOURCE_ID;
        };
        if !rect.fits(resource.width, resource.height) {
            return RESP_ERR_INVALID_PARAMETER;
        }
        let Some((_, view)) = self.state.scanout.filter(|(on, _)| *on == id) else {
            // Flushing a resource nobody shows is allowed and does nothing.
            return RESP_OK_NODATA;
        };
        let mut display = self.display();
        if display.width != view.width || display.height != view.height {
            display.width = view.width;
            display.height = view.height;
            display.pixels = vec![0; view.width as usize * view.height as usize];
        }
        for y in 0..view.height {
            for x in 0..view.width {
                let at = (((view.y + y) * resource.width + view.x + x) * 4) as usize;
                let p = [
                    resource.pixels[at],
                    resource.pixels[at + 1],
                    resource.pixels[at + 2],
                    resource.pixels[at + 3],
                ];
                display.pixels[(y * view.width + x) as usize] =
                    to_rgb(resource.format, p).unwrap_or(0);
            }
        }
        display.frames += 1;
        RESP_OK_NODATA
    }
}

/// Reads `buf.len()` bytes at byte `offset` of a resource's scattered backing.
fn read_backing(backing: &[(u64, u32)], offset: u64, buf: &mut [u8], mem: &VirtioMemory) -> bool {
    let mut skip = offset;
    let mut done = 0usize;
    for &(addr, len) in backing {
        let len = u64::from(len);
        if skip >= len {
            skip -= len;
            continue;
        }
        let take = ((len - skip) as usize).min(buf.len() - done);
        if mem
            .read_slice(&mut buf[done..done + take], GuestAddress(addr + skip))
            .is_err()
        {
            return false;
        }
        done += take;
        skip = 0;
        if done == buf.len() {
            return true;
        }
    }
    false
}

impl VirtioDevice for VirtioGpu {
    fn device_type(&self) -> u32 {
        DEVICE_ID_GPU
    }

    fn name(&self) -> &'static str {
        "virtio-gpu"
    }

    fn features(&self) -> u64 {
        VIRTIO_RING_F_INDIRECT_DESC
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    /// events_read, events_clear, num_scanouts = 1, num_capsets = 0.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 16];
        config[8..12].copy_from_slice(&1u32.to_le_bytes());
        copy_config(&config, offset, data);
    }

    /// Every resource destroyed, the scanout off and the display blank (if it
    /// showed anything), as at power-on.
    fn reset(&mut self) {
        self.state = GpuState::default();
        self.memory_used = 0;
        let shows_something = {
            let display = self.display();
            display.width != 0 || !display.pixels.is_empty()
        };
        if shows_something {
            self.blank();
        }
    }

    fn save_state(&self) -> DeviceState {
        let display = self.display();
        let saved = SavedGpu {
            state: self.state.clone(),
            shown_width: display.width,
            shown_height: display.height,
            shown: display
                .pixels
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect(),
        };
        DeviceState::encode(self.name(), STATE_VERSION, &saved)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let saved: SavedGpu = state.decode(self.name(), STATE_VERSION)?;
        let used = self
            .check(&saved)
            .map_err(|reason| invalid(self.name(), reason))?;
        self.state = saved.state;
        self.memory_used = used;
        let mut display = self.display();
        *display = Display {
            width: saved.shown_width,
            height: saved.shown_height,
            pixels: saved
                .shown
                .chunks_exact(4)
                .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
                .collect(),
            frames: display.frames + 1,
        };
        Ok(())
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
}

impl VirtioGpu {
    /// Reads a request from `chain`, runs it and writes the response; returns the
    /// bytes written.
    fn handle(&mut self, chain: &Chain, mem: &VirtioMemory) -> Result<u32, DeviceError> {
        // Requests are small, except attach-backing with its entry list.
        let len = chain
            .readable_len()
            .min(HEADER as u64 + 8 + 16 * u64::from(MAX_BACKING_ENTRIES));
        let mut request = vec![0u8; len as usize];
        let got = chain.read_at(mem, 0, &mut request)?;
        if got < HEADER {
            return Err(DeviceError::BadRequest(format!(
                "virtio-gpu request of {got} bytes has no header"
            )));
        }
        let (kind, flags, fence) = (le32(&request, 0), le32(&request, 4), le64(&request, 8));
        let (response, payload) = self.command(kind, &request[HEADER..got], mem);
        let mut reply = vec![0u8; HEADER];
        reply[0..4].copy_from_slice(&response.to_le_bytes());
        if flags & FLAG_FENCE != 0 {
            // Commands complete before the response, so fences signal at once.
            reply[4..8].copy_from_slice(&FLAG_FENCE.to_le_bytes());
            reply[8..16].copy_from_slice(&fence.to_le_bytes());
        }
        reply.extend_from_slice(&payload);
        let written = chain.write_at(mem, 0, &reply)?;
        Ok(written as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;
    use crate::virtio::testing::{Driver, TestIrq, copy_memory, test_memory};
    use crate::virtio::{VIRTIO_F_VERSION_1, VirtioMmio};
    use emu_core::{Device, MmioDevice};

    const RAM_BASE: u64 = 0x8000_0000;
    const REQ: u64 = 0x1_0000;
    const RESP: u64 = 0x1_8000;
    const FB: u64 = 0x2_0000;

    struct Gpu {
        driver: Driver,
        ram: Arc<emu_core::GuestRam>,
        display: DisplayHandle,
    }

    fn gpu() -> Gpu {
        let (mem, ram) = test_memory();
        let display = DisplayHandle::default();
        let dev = VirtioGpu::new(64, 32, 1 << 20, display.clone());
        let mut driver = Driver::new(
            VirtioMmio::new(Box::new(dev), mem, Box::new(TestIrq::default())),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1);
        Gpu {
            driver,
            ram,
            display,
        }
    }

    impl Gpu {
        /// Sends a control command; returns the response type.
        fn send(&mut self, kind: u32, body: &[u8]) -> u32 {
            let mut request = vec![0u8; HEADER];
            request[0..4].copy_from_slice(&kind.to_le_bytes());
            request.extend_from_slice(body);
            assert!(self.ram.write_bytes(REQ, &request));
            self.driver
                .submit(0, &[(REQ, request.len() as u32, false), (RESP, 512, true)]);
            let mut reply = [0u8; 4];
            assert!(self.ram.read_bytes(RESP, &mut reply));
            u32::from_le_bytes(reply)
        }
    }

    fn words(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn a_driver_shows_an_image() {
        let mut gpu = gpu();
        assert_eq!(gpu.driver.read(0x008), DEVICE_ID_GPU);
        assert_eq!(gpu.send(CMD_GET_DISPLAY_INFO, &[]), RESP_OK_DISPLAY_INFO);
        let mut info = [0u8; 16];
        assert!(gpu.ram.read_bytes(RESP + HEADER as u64, &mut info));
        assert_eq!((le32(&info, 8), le32(&info, 12)), (64, 32));
        // A 4x2 X8R8G8B8 resource backed by guest RAM, two pieces.
        assert_eq!(
            gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 4, 4, 2])),
            RESP_OK_NODATA
        );
        let mut attach = words(&[1, 2]);
        attach.extend((RAM_BASE + FB).to_le_bytes());
        attach.extend(words(&[12, 0]));
        attach.extend((RAM_BASE + FB + 0x100).to_le_bytes());
        attach.extend(words(&[20, 0]));
        assert_eq!(
            gpu.send(CMD_RESOURCE_ATTACH_BACKING, &attach),
            RESP_OK_NODATA
        );
        // Pixels 0..8 as X,R,G,B bytes: (0, i, 2i, 3i).
        let pixels: Vec<u8> = (0..8u8).flat_map(|i| [0, i, 2 * i, 3 * i]).collect();
        assert!(gpu.ram.write_bytes(FB, &pixels[..12]));
        assert!(gpu.ram.write_bytes(FB + 0x100, &pixels[12..]));
        let mut transfer = words(&[0, 0, 4, 2]);
        transfer.extend(0u64.to_le_bytes());
        transfer.extend(words(&[1, 0]));
        assert_eq!(gpu.send(CMD_TRANSFER_TO_HOST_2D, &transfer), RESP_OK_NODATA);
        assert_eq!(
            gpu.send(CMD_SET_SCANOUT, &words(&[0, 0, 4, 2, 0, 1])),
            RESP_OK_NODATA
        );
        assert_eq!(
            gpu.send(CMD_RESOURCE_FLUSH, &words(&[0, 0, 4, 2, 1, 0])),
            RESP_OK_NODATA
        );
        let display = gpu.display.lock().unwrap().clone();
        assert_eq!((display.width, display.height, display.frames), (4, 2, 1));
        let want: Vec<u32> = (0..8u32)
            .map(|i| (i << 16) | ((2 * i) << 8) | (3 * i))
            .collect();
        assert_eq!(display.pixels, want);
    }

    impl Gpu {
        /// A 4x2 X8R8G8B8 resource 1 backed by guest RAM at FB, with pixel i as
        /// X,R,G,B bytes (0, i + k, 2i, 3i), transferred, on the scanout and flushed.
        fn show(&mut self, k: u8) {
            if !self.driver.dev.save_state().data["device"]["data"]["state"]["resources"]
                .as_object()
                .is_some_and(|r| r.contains_key("1"))
            {
                assert_eq!(
                    self.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 4, 4, 2])),
                    RESP_OK_NODATA
                );
                let mut attach = words(&[1, 1]);
                attach.extend((RAM_BASE + FB).to_le_bytes());
                attach.extend(words(&[32, 0]));
                assert_eq!(
                    self.send(CMD_RESOURCE_ATTACH_BACKING, &attach),
                    RESP_OK_NODATA
                );
                assert_eq!(
                    self.send(CMD_SET_SCANOUT, &words(&[0, 0, 4, 2, 0, 1])),
                    RESP_OK_NODATA
                );
            }
            let pixels: Vec<u8> = (0..8u8).flat_map(|i| [0, i + k, 2 * i, 3 * i]).collect();
            assert!(self.ram.write_bytes(FB, &pixels));
            let mut transfer = words(&[0, 0, 4, 2]);
            transfer.extend(0u64.to_le_bytes());
            transfer.extend(words(&[1, 0]));
            assert_eq!(
                self.send(CMD_TRANSFER_TO_HOST_2D, &transfer),
                RESP_OK_NODATA
            );
            assert_eq!(
                self.send(CMD_RESOURCE_FLUSH, &words(&[0, 0, 4, 2, 1, 0])),
                RESP_OK_NODATA
            );
        }

        fn shown(&self) -> (u32, u32, Vec<u32>) {
            let display = self.display.lock().unwrap();
            (display.width, display.height, display.pixels.clone())
        }
    }

    #[test]
    fn resources_scanout_and_image_round_trip() {
        let mut a = gpu();
        a.show(0);
        // A second resource, created but never shown.
        assert_eq!(
            a.send(CMD_RESOURCE_CREATE_2D, &words(&[7, 67, 2, 2])),
            RESP_OK_NODATA
        );
        let saved = a.driver.dev.save_state();
        assert_eq!(saved.kind, "virtio-mmio/virtio-gpu");

        let (mem_b, ram_b) = copy_memory(&a.ram);
        let display_b = DisplayHandle::default();
        let mut fresh = VirtioMmio::new(
            Box::new(VirtioGpu::new(64, 32, 1 << 20, display_b.clone())),
            mem_b,
            Box::new(TestIrq::default()),
        );
        fresh.restore_state(&saved).unwrap();
        let mut b = Gpu {
            driver: a.driver.fork(fresh, &ram_b),
            ram: ram_b,
            display: display_b,
        };
        assert_eq!(b.driver.dev.save_state(), saved);
        assert_eq!(b.shown(), a.shown(), "the restored display shows the image");
        assert!(b.display.lock().unwrap().frames > 0, "viewers redraw");
        assert_eq!(a.driver.read(0x070), b.driver.read(0x070));
        assert_eq!(a.driver.dev.read(0x108, 4), b.driver.dev.read(0x108, 4));
        // Resource 7 exists in both: creating it again fails the same way.
        for gpu in [&mut a, &mut b] {
            assert_eq!(
                gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[7, 67, 2, 2])),
                RESP_ERR_INVALID_RESOURCE_ID
            );
            gpu.show(9);
        }
        assert_eq!(a.shown(), b.shown());
        assert_eq!(b.shown().2[1], (10 << 16) | (2 << 8) | 3);
        assert_eq!(a.driver.dev.save_state(), b.driver.dev.save_state());
    }

    #[test]
    fn reset_destroys_resources_and_blanks_the_display() {
        let mut gpu = gpu();
        gpu.show(0);
        assert_eq!(gpu.shown().0, 4);
        let frames = gpu.display.lock().unwrap().frames;
        Device::reset(&mut gpu.driver.dev);
        assert_eq!(gpu.driver.status(), 0);
        assert_eq!(gpu.shown(), (0, 0, Vec::new()));
        assert!(gpu.display.lock().unwrap().frames > frames);
        gpu.driver.init(VIRTIO_F_VERSION_1);
        assert_eq!(
            gpu.send(CMD_RESOURCE_FLUSH, &words(&[0, 0, 4, 2, 1, 0])),
            RESP_ERR_INVALID_RESOURCE_ID,
            "resource 1 is gone"
        );
    }

    #[test]
    fn restore_refuses_foreign_and_impossible_states() {
        let mut gpu = gpu();
        gpu.show(0);
        assert_refuses_foreign_states(&mut gpu.driver.dev);
        let mut model = VirtioGpu::new(64, 32, 1 << 20, DisplayHandle::default());
        let good = gpu.driver.dev.save_state().data["device"].clone();
        let good: DeviceState = serde_json::from_value(good).unwrap();
        model.restore_state(&good).unwrap();
        let tampered = |change: &dyn Fn(&mut SavedGpu)| {
            let mut saved: SavedGpu = good.decode("virtio-gpu", STATE_VERSION).unwrap();
            change(&mut saved);
            DeviceState::encode("virtio-gpu", STATE_VERSION, &saved)
        };
        let resource = |s: &SavedGpu| s.state.resources[&1].clone();
        let bad = [
            tampered(&|s| {
                s.state.resources.remove(&1);
            }),
            tampered(&|s| {
                s.state.resources.get_mut(&1).unwrap().pixels.pop();
            }),
            tampered(&|s| s.state.resources.get_mut(&1).unwrap().format = 999),
            tampered(&|s| s.state.resources.get_mut(&1).unwrap().backing = vec![(u64::MAX, 2)]),
            tampered(&|s| {
                s.state.scanout = Some((
                    1,
                    Rect {
                        x: 2,
                        y: 0,
                        width: 4,
                        height: 2,
                    },
                ))
            }),
            tampered(&|s| {
                let big = Resource {
                    width: 1024,
                    height: 1024,
                    pixels: vec![0; 4 << 20],
                    ..resource(s)
                };
                s.state.resources.insert(2, big);
            }),
            tampered(&|s| {
                let copy = resource(s);
                s.state.resources.insert(0, copy);
            }),
            tampered(&|s| s.shown.push(0)),
        ];
        let before = model.save_state();
        for (n, state) in bad.iter().enumerate() {
            assert!(
                matches!(model.restore_state(state), Err(StateError::Invalid { .. })),
                "case {n}"
            );
            assert_eq!(model.save_state(), before);
        }
    }

    #[test]
    fn invalid_requests_get_error_responses_not_panics() {
        let mut gpu = gpu();
        // Unknown format, zero size, over the memory budget, duplicate id.
        assert_eq!(
            gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 999, 4, 4])),
            RESP_ERR_INVALID_PARAMETER
        );
        assert_eq!(
            gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 4, 0, 4])),
            RESP_ERR_INVALID_PARAMETER
        );
        assert_eq!(
            gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 4, 65535, 65535])),
            RESP_ERR_OUT_OF_MEMORY
        );
        assert_eq!(
            gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 4, 8, 8])),
            RESP_OK_NODATA
        );
        assert_eq!(
            gpu.send(CMD_RESOURCE_CREATE_2D, &words(&[1, 4, 8, 8])),
            RESP_ERR_INVALID_RESOURCE_ID
        );
        // Scanout 3 does not exist; resource 9 does not exist; rect too large.
        assert_eq!(
            gpu.send(CMD_SET_SCANOUT, &words(&[0, 0, 8, 8, 3, 1])),
            RESP_ERR_INVALID_SCANOUT_ID
        );
        assert_eq!(
            gpu.send(CMD_SET_SCANOUT, &words(&[0, 0, 8, 8, 0, 9])),
            RESP_ERR_INVALID_RESOURCE_ID
        );
        assert_eq!(
            gpu.send(CMD_SET_SCANOUT, &words(&[4, 4, 8, 8, 0, 1])),
            RESP_ERR_INVALID_PARAMETER
        );
        // Backing outside guest RAM; absurd entry counts.
        let mut attach = words(&[1, 1]);
        attach.extend(0x1_0000_0000u64.to_le_bytes());
        attach.extend(words(&[4096, 0]));
        assert_eq!(
            gpu.send(CMD_RESOURCE_ATTACH_BACKING, &attach),
            RESP_ERR_INVALID_PARAMETER
        );
        assert_eq!(
            gpu.send(CMD_RESOURCE_ATTACH_BACKING, &words(&[1, u32::MAX])),
            RESP_ERR_INVALID_PARAMETER
        );
        // A transfer without backing, or past the resource.
        let mut transfer = words(&[0, 0, 8, 8]);
        transfer.extend(0u64.to_le_bytes());
        transfer.extend(words(&[1, 0]));
        assert_eq!(
            gpu.send(CMD_TRANSFER_TO_HOST_2D, &transfer),
            RESP_ERR_INVALID_PARAMETER
        );
        // Backing too small for the transfer's rows.
        let mut small = words(&[1, 1]);
        small.extend((RAM_BASE + FB).to_le_bytes());
        small.extend(words(&[16, 0]));
        assert_eq!(
            gpu.send(CMD_RESOURCE_ATTACH_BACKING, &small),
            RESP_OK_NODATA
        );
        assert_eq!(
            gpu.send(CMD_TRANSFER_TO_HOST_2D, &transfer),
            RESP_ERR_INVALID_PARAMETER
        );
        let mut huge_offset = words(&[0, 0, 1, 1]);
        huge_offset.extend(u64::MAX.to_le_bytes());
        huge_offset.extend(words(&[1, 0]));
        assert_eq!(
            gpu.send(CMD_TRANSFER_TO_HOST_2D, &huge_offset),
            RESP_ERR_INVALID_PARAMETER
        );
        // Truncated bodies and unknown commands.
        assert_eq!(
            gpu.send(CMD_SET_SCANOUT, &[1, 2]),
            RESP_ERR_INVALID_PARAMETER
        );
        assert_eq!(gpu.send(0x0999, &[]), RESP_ERR_UNSPEC);
        // The device still works.
        assert!(!gpu.driver.dev.needs_reset());
        assert_eq!(
            gpu.send(CMD_RESOURCE_UNREF, &words(&[1, 0])),
            RESP_OK_NODATA
        );
    }

    #[test]
    fn a_request_without_a_header_breaks_only_the_device() {
        let mut gpu = gpu();
        assert!(gpu.ram.write_bytes(REQ, &[1, 2, 3]));
        gpu.driver.submit(0, &[(REQ, 3, false), (RESP, 64, true)]);
        assert!(gpu.driver.dev.needs_reset());
    }
}
