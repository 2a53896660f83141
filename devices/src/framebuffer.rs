//! A linear framebuffer for the device tree's `simple-framebuffer` node: the
//! display that needs no driver, always there for firmware, the demo guest and
//! Linux's simpledrm. Pixels are 32-bit `a8r8g8b8` in memory order (B, G, R, A
//! bytes), row after row with no padding.
//!
//! The pixels are guest memory: a window of the machine's memory backing that the
//! machine maps as RAM at the framebuffer's address, so the guest draws with
//! plain stores on the CPUs' fast path (translated code included) instead of a
//! device access per pixel. Being memory, the pixels are saved and restored with
//! the rest of guest memory and keep their contents across a reset, as VRAM does
//! on QEMU; this type only shows them.

use std::sync::Arc;

use emu_core::GuestRam;

use crate::virtio::Display;

/// A framebuffer: `width` x `height` pixels at `offset` into a memory backing.
#[derive(Clone, Debug)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    memory: Arc<GuestRam>,
    offset: u64,
}

/// What a window or a screenshot holds to read the framebuffer: the same thing.
pub type FramebufferHandle = Framebuffer;

/// Why a framebuffer cannot be placed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {width}x{height} framebuffer at offset {offset:#x} does not fit in {len:#x} bytes of memory"
)]
pub struct FramebufferError {
    width: u32,
    height: u32,
    offset: u64,
    len: u64,
}

impl Framebuffer {
    /// Bytes a `width` x `height` framebuffer takes.
    pub fn bytes_for(width: u32, height: u32) -> u64 {
        u64::from(width) * u64::from(height) * 4
    }

    /// A framebuffer whose pixels are `memory[offset..offset + bytes_for(..)]`.
    pub fn in_memory(
        width: u32,
        height: u32,
        memory: Arc<GuestRam>,
        offset: u64,
    ) -> Result<Framebuffer, FramebufferError> {
        let fits = offset
            .checked_add(Framebuffer::bytes_for(width, height))
            .is_some_and(|end| end <= memory.len());
        if !fits {
            return Err(FramebufferError {
                width,
                height,
                offset,
                len: memory.len(),
            });
        }
        Ok(Framebuffer {
            width,
            height,
            memory,
            offset,
        })
    }

    /// Bytes of guest address space it takes.
    pub fn size(&self) -> u64 {
        Framebuffer::bytes_for(self.width, self.height)
    }

    /// A handle to its pixels.
    pub fn handle(&self) -> FramebufferHandle {
        self.clone()
    }

    /// The current image as 0x00RRGGBB pixels.
    pub fn snapshot(&self) -> Display {
        let mut bytes = vec![0u8; self.size() as usize];
        // In range: `in_memory` checked that the pixels lie inside the backing.
        self.memory.read_bytes(self.offset, &mut bytes);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_written_to_memory_show_in_the_snapshot() {
        let memory = Arc::new(GuestRam::new(0x3000).unwrap());
        let fb = Framebuffer::in_memory(4, 2, memory.clone(), 0x1000).unwrap();
        assert_eq!(fb.size(), 32);
        // Pixel (1, 1): B, G, R, A bytes in memory order; alpha is not shown.
        assert!(memory.write_u32(0x1000 + (4 + 1) * 4, 0xff11_2233));
        let shown = fb.handle().snapshot();
        assert_eq!((shown.width, shown.height), (4, 2));
        assert_eq!(shown.pixels[5], 0x0011_2233);
        assert_eq!(shown.pixels.iter().filter(|&&p| p != 0).count(), 1);
    }

    #[test]
    fn a_framebuffer_past_the_end_of_memory_is_refused() {
        let memory = Arc::new(GuestRam::new(0x1000).unwrap());
        let err = Framebuffer::in_memory(33, 32, memory.clone(), 0).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        assert!(Framebuffer::in_memory(16, 16, memory.clone(), 0).is_ok());
        assert!(Framebuffer::in_memory(16, 16, memory, u64::MAX).is_err());
    }
}
