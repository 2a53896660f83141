//! A linear framebuffer for the device tree's `simple-framebuffer` node: the
//! display that needs no driver, always there for firmware, the demo guest and
//! Linux's simpledrm. Pixels are 32-bit `a8r8g8b8` in memory order (B, G, R, A
//! bytes), row after row with no padding.

use std::sync::{Arc, Mutex};

use emu_core::{BusFault, MmioDevice};

use crate::virtio::Display;

/// The framebuffer's pixels, shared with whoever shows or captures them.
#[derive(Clone, Debug)]
pub struct FramebufferHandle {
    width: u32,
    height: u32,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl FramebufferHandle {
    /// The current image as 0x00RRGGBB pixels.
    pub fn snapshot(&self) -> Display {
        let bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        Display {
            width: self.width,
            height: self.height,
            pixels: bytes
                .chunks_exact(4)
                .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
                .collect(),
            frames: 0,
        }
    }
}

/// The framebuffer device.
#[derive(Debug)]
pub struct Framebuffer {
    handle: FramebufferHandle,
}

impl Framebuffer {
    /// A black `width` x `height` framebuffer.
    pub fn new(width: u32, height: u32) -> Framebuffer {
        let size = width as usize * height as usize * 4;
        Framebuffer {
            handle: FramebufferHandle {
                width,
                height,
                bytes: Arc::new(Mutex::new(vec![0; size])),
            },
        }
    }

    /// Bytes of guest address space it takes.
    pub fn size(&self) -> u64 {
        u64::from(self.handle.width) * u64::from(self.handle.height) * 4
    }

    /// A handle to its pixels.
    pub fn handle(&self) -> FramebufferHandle {
        self.handle.clone()
    }
}

impl MmioDevice for Framebuffer {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let bytes = self.handle.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let at = offset as usize;
        let slice = bytes
            .get(at..at + usize::from(size))
            .ok_or(BusFault::Unmapped)?;
        let mut value = [0u8; 8];
        value[..slice.len()].copy_from_slice(slice);
        Ok(u64::from_le_bytes(value))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let mut bytes = self.handle.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let at = offset as usize;
        let slice = bytes
            .get_mut(at..at + usize::from(size))
            .ok_or(BusFault::Unmapped)?;
        slice.copy_from_slice(&value.to_le_bytes()[..usize::from(size)]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_written_show_in_the_snapshot() {
        let mut fb = Framebuffer::new(4, 2);
        assert_eq!(fb.size(), 32);
        // Pixel (1, 1): B, G, R, A = 0x30, 0x20, 0x10, 0xff.
        fb.write(20, 4, 0xff10_2030).unwrap();
        fb.write(0, 8, 0x0000_00ff_0000_ff00).unwrap();
        let shot = fb.handle().snapshot();
        assert_eq!((shot.width, shot.height), (4, 2));
        assert_eq!(shot.pixels[5], 0x10_2030);
        assert_eq!(shot.pixels[0], 0x00_ff00);
        assert_eq!(shot.pixels[1], 0xff);
        assert_eq!(fb.read(20, 4), Ok(0xff10_2030));
        assert!(fb.read(30, 4).is_err(), "past the end");
        assert!(fb.write(32, 1, 0).is_err());
    }
}
