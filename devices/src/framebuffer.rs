//! A linear framebuffer for the device tree's `simple-framebuffer` node: the
//! display that needs no driver, always there for firmware, the demo guest and
//! Linux's simpledrm. Pixels are 32-bit `a8r8g8b8` in memory order (B, G, R, A
//! bytes), row after row with no padding.

use std::sync::{Arc, Mutex};

use emu_core::{BusFault, Device, DeviceState, MmioDevice, StateError};
use serde::{Deserialize, Serialize};

use crate::state::invalid;
use crate::virtio::Display;

/// Model name in saved states.
const KIND: &str = "framebuffer";
/// Layout version of the saved [`FramebufferState`].
const VERSION: u32 = 1;

/// The framebuffer's guest-visible state: its pixels (what the guest wrote is
/// what a viewer shows, and what the guest reads back).
///
/// The device does not keep its pixels in this struct but behind the shared
/// [`FramebufferHandle`], so that a window or a screenshot can read them while the
/// guest runs; this struct is their copy for saving and restoring. The size is
/// fixed when the machine is built (it is in the device tree), so a restore only
/// checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FramebufferState {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels, 4 bytes each, row after row (saved as one hex string).
    #[serde(with = "crate::state::hex_bytes")]
    pub bytes: Vec<u8>,
}

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

    fn pixels(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.handle.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Device for Framebuffer {
    /// Every pixel black (all bytes 0), as at power-on.
    fn reset(&mut self) {
        self.pixels().fill(0);
    }

    fn save_state(&self) -> DeviceState {
        let state = FramebufferState {
            width: self.handle.width,
            height: self.handle.height,
            bytes: self.pixels().clone(),
        };
        DeviceState::encode(KIND, VERSION, &state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let restored: FramebufferState = state.decode(KIND, VERSION)?;
        let (width, height) = (self.handle.width, self.handle.height);
        if (restored.width, restored.height) != (width, height) {
            return Err(invalid(
                KIND,
                format!(
                    "saved {}x{}, this framebuffer is {width}x{height}",
                    restored.width, restored.height
                ),
            ));
        }
        let mut pixels = self.pixels();
        if restored.bytes.len() != pixels.len() {
            return Err(invalid(
                KIND,
                format!(
                    "{} bytes of pixels for {width}x{height}",
                    restored.bytes.len()
                ),
            ));
        }
        pixels.copy_from_slice(&restored.bytes);
        Ok(())
    }
}

impl MmioDevice for Framebuffer {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let bytes = self.pixels();
        let at = offset as usize;
        let slice = bytes
            .get(at..at + usize::from(size))
            .ok_or(BusFault::Unmapped)?;
        let mut value = [0u8; 8];
        value[..slice.len()].copy_from_slice(slice);
        Ok(u64::from_le_bytes(value))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let mut bytes = self.pixels();
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
    use crate::testing::assert_refuses_foreign_states;

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

    #[test]
    fn pixels_round_trip_into_a_fresh_framebuffer() {
        let mut a = Framebuffer::new(4, 2);
        a.write(4, 4, 0xff10_2030).unwrap();
        a.write(24, 8, 0x0102_0304_0506_0708).unwrap();
        let mut b = Framebuffer::new(4, 2);
        let saved = a.save_state();
        b.restore_state(&saved).unwrap();
        assert_eq!(b.save_state(), saved);
        assert_eq!(a.read(4, 4), b.read(4, 4));
        assert_eq!(b.read(24, 8), Ok(0x0102_0304_0506_0708));
        assert_eq!(
            b.handle().snapshot(),
            a.handle().snapshot(),
            "viewers see it"
        );
        for fb in [&mut a, &mut b] {
            fb.write(0, 2, 0xbeef).unwrap();
        }
        assert_eq!(a.save_state(), b.save_state());
    }

    #[test]
    fn reset_blacks_the_screen() {
        let mut fb = Framebuffer::new(4, 2);
        let viewer = fb.handle();
        fb.write(20, 4, 0xff10_2030).unwrap();
        fb.reset();
        assert_eq!(fb.read(20, 4), Ok(0));
        assert!(viewer.snapshot().pixels.iter().all(|&p| p == 0));
        assert_eq!(fb.save_state(), Framebuffer::new(4, 2).save_state());
    }

    #[test]
    fn restore_refuses_foreign_states_and_other_sizes() {
        let mut fb = Framebuffer::new(4, 2);
        assert_refuses_foreign_states(&mut fb);
        let other = Framebuffer::new(2, 4).save_state();
        assert!(matches!(
            fb.restore_state(&other),
            Err(StateError::Invalid { .. })
        ));
        let short = FramebufferState {
            width: 4,
            height: 2,
            bytes: vec![0; 31],
        };
        let short = DeviceState::encode(KIND, VERSION, &short);
        assert!(matches!(
            fb.restore_state(&short),
            Err(StateError::Invalid { .. })
        ));
    }
}
