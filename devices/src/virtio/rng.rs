//! virtio-rng (VIRTIO 1.x §5.4): fills the driver's buffers with entropy.
//!
//! The bytes come from an [`EntropySource`], the one place where host randomness
//! enters the machine: [`host_entropy`] by default, [`seeded_entropy`] for runs that
//! must repeat byte for byte (deterministic mode, record/replay).

use emu_core::{DeviceState, StateError};

use super::queue::QueueAccess;
use super::{DEVICE_ID_ENTROPY, DeviceError, VIRTIO_RING_F_INDIRECT_DESC, VirtioDevice};
use crate::state::NoState;

/// Where entropy comes from: fills the whole slice every call.
pub type EntropySource = Box<dyn FnMut(&mut [u8]) + Send>;

const QUEUE_SIZE: u16 = 64;
/// Most bytes given per request; the used length tells the driver how many it got,
/// and a bound keeps a huge buffer from stalling the vCPU.
const MAX_PER_REQUEST: usize = 64 << 10;
/// Layout version of the (empty) saved state.
const STATE_VERSION: u32 = 1;

/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64: small, fast and the
/// same on every host, which is all a reproducible guest needs. Not for host crypto.
#[derive(Clone, Debug)]
struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    fn new(seed: u64) -> Xoshiro256 {
        let mut x = seed;
        let mut split_mix = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Xoshiro256 {
            s: [split_mix(), split_mix(), split_mix(), split_mix()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Entropy from the host's random source (`getrandom`). Should that ever fail, the
/// source warns once and goes on with a generator seeded from the clock, so the guest
/// keeps running.
pub fn host_entropy() -> EntropySource {
    let mut fallback: Option<Xoshiro256> = None;
    Box::new(move |buf: &mut [u8]| {
        if fallback.is_none() {
            match getrandom::fill(buf) {
                Ok(()) => return,
                Err(e) => tracing::warn!("host entropy failed ({e}); using a clock-seeded PRNG"),
            }
        }
        let rng = fallback.get_or_insert_with(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Xoshiro256::new(nanos ^ u64::from(std::process::id()) << 32)
        });
        rng.fill(buf);
    })
}

/// A reproducible stream: the same `seed` and the same request sizes give the same
/// bytes on every host.
pub fn seeded_entropy(seed: u64) -> EntropySource {
    let mut rng = Xoshiro256::new(seed);
    Box::new(move |buf: &mut [u8]| rng.fill(buf))
}

/// A virtio entropy device.
///
/// It has no guest-visible state of its own (its queue is the transport's). The
/// entropy source is a host handle: a restored device goes on with its own
/// source, so a seeded stream continues from where that source stands, not from
/// where the saved machine's stood.
pub struct VirtioRng {
    source: EntropySource,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for VirtioRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioRng").finish_non_exhaustive()
    }
}

impl VirtioRng {
    /// A device serving bytes from `source`.
    pub fn new(source: EntropySource) -> VirtioRng {
        VirtioRng {
            source,
            buffer: Vec::new(),
        }
    }

    /// A device serving host entropy.
    pub fn from_host() -> VirtioRng {
        VirtioRng::new(host_entropy())
    }

    /// A device serving the reproducible stream of `seed`.
    pub fn seeded(seed: u64) -> VirtioRng {
        VirtioRng::new(seeded_entropy(seed))
    }
}

impl VirtioDevice for VirtioRng {
    fn device_type(&self) -> u32 {
        DEVICE_ID_ENTROPY
    }

    fn name(&self) -> &'static str {
        "virtio-rng"
    }

    fn features(&self) -> u64 {
        VIRTIO_RING_F_INDIRECT_DESC
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    /// No configuration space.
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn process_queue(
        &mut self,
        _index: usize,
        queue: &mut QueueAccess<'_>,
    ) -> Result<(), DeviceError> {
        let mem = queue.memory();
        while let Some(chain) = queue.pop()? {
            if !chain.readable.is_empty() {
                return Err(DeviceError::BadRequest(
                    "entropy request has device-readable buffers".into(),
                ));
            }
            let n = chain.writable_len().min(MAX_PER_REQUEST as u64) as usize;
            if self.buffer.len() < n {
                self.buffer.resize(n, 0);
            }
            let buf = &mut self.buffer[..n];
            (self.source)(buf);
            let written = chain.write_at(mem, 0, buf)?;
            // `written <= MAX_PER_REQUEST`, far below u32::MAX.
            queue.add_used(chain.head, written as u32)?;
        }
        Ok(())
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(self.name(), STATE_VERSION, &NoState {})
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let NoState {} = state.decode(self.name(), STATE_VERSION)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_refuses_foreign_states;
    use crate::virtio::testing::{Driver, RAM_BASE, TestIrq, copy_memory, test_memory};
    use crate::virtio::{GuestMemoryHandle, VIRTIO_F_VERSION_1, VirtioMmio};
    use emu_core::Device;

    fn driver(rng: VirtioRng) -> (Driver, std::sync::Arc<emu_core::GuestRam>, TestIrq) {
        let (mem, ram) = test_memory();
        let irq = TestIrq::default();
        let mut driver = Driver::new(
            VirtioMmio::new(Box::new(rng), mem, Box::new(irq.clone())),
            &ram,
        );
        driver.init(VIRTIO_F_VERSION_1);
        (driver, ram, irq)
    }

    #[test]
    fn fills_writable_buffers() {
        let (mut driver, ram, irq) = driver(VirtioRng::from_host());
        assert_eq!(driver.read(0x008), 4);
        let head = driver.submit(0, &[(0x1_0000, 64, true), (0x1_1000, 64, true)]);
        assert_eq!(driver.used(0, 0), Some((u32::from(head), 128)));
        assert!(irq.level());
        let mut got = [0u8; 64];
        assert!(ram.read_bytes(0x1_0000, &mut got));
        assert!(
            got.iter().any(|&b| b != 0),
            "64 zero bytes from the host RNG"
        );
        assert!(ram.read_bytes(0x1_1000, &mut got));
        assert!(got.iter().any(|&b| b != 0));
        assert_eq!(ram.read_u8(0x1_0040), Some(0), "nothing past the buffer");
    }

    #[test]
    fn seeded_streams_repeat() {
        let run = |seed| {
            let (mut driver, ram, _irq) = driver(VirtioRng::seeded(seed));
            driver.submit(0, &[(0x1_0000, 13, true)]);
            driver.submit(0, &[(0x1_0100, 40, true)]);
            let mut got = [0u8; 53];
            assert!(ram.read_bytes(0x1_0000, &mut got[..13]));
            assert!(ram.read_bytes(0x1_0100, &mut got[13..]));
            got
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // Pin the stream: a change to the generator changes recorded runs.
        let mut first = [0u8; 8];
        seeded_entropy(0)(&mut first);
        assert_eq!(u64::from_le_bytes(first), 0x99ec_5f36_cb75_f2b4);
    }

    #[test]
    fn huge_buffers_get_a_bounded_answer() {
        let (mut driver, _ram, _irq) = driver(VirtioRng::seeded(1));
        driver.submit(0, &[(0x1_0000, 0x8_0000, true)]);
        assert_eq!(driver.used(0, 0).map(|u| u.1), Some(MAX_PER_REQUEST as u32));
    }

    #[test]
    fn restored_device_serves_the_requests_waiting_in_its_queue() {
        let (mut a, ram, irq_a) = driver(VirtioRng::seeded(1));
        a.submit(0, &[(0x1_0000, 16, true)]);
        assert!(irq_a.level());
        let waiting = a.offer(0, &[(0x1_1000, 24, true)]);
        let saved = a.dev.save_state();
        assert_eq!(saved.kind, "virtio-mmio/virtio-rng");

        // Beside the original, over a copy of its memory.
        let (mem_b, ram_b) = copy_memory(&ram);
        let irq_b = TestIrq::default();
        let mut fresh = VirtioMmio::new(
            Box::new(VirtioRng::seeded(2)),
            mem_b,
            Box::new(irq_b.clone()),
        );
        fresh.restore_state(&saved).unwrap();
        let mut b = a.fork(fresh, &ram_b);
        assert_eq!(b.dev.save_state(), saved);
        assert_eq!(a.read(0x070), b.read(0x070));
        assert_eq!(a.read(0x060), b.read(0x060));
        assert!(irq_b.level());
        for driver in [&mut a, &mut b] {
            driver.write(0x064, 1);
            driver.write(0x050, 0);
            assert_eq!(driver.used(0, 1), Some((u32::from(waiting), 24)));
            driver.submit(0, &[(0x1_2000, 8, true)]);
            assert_eq!(driver.used_idx(0), 3);
        }
        assert_eq!(a.dev.save_state(), b.dev.save_state());
        assert_eq!(irq_a.level(), irq_b.level());
        let mut got = [0u8; 24];
        assert!(ram_b.read_bytes(0x1_1000, &mut got));
        assert!(got.iter().any(|&b| b != 0), "entropy from the new source");

        // In place of a device, over the very same memory (a second view of it).
        let saved = b.dev.save_state();
        let same = GuestMemoryHandle::new(ram_b.clone(), RAM_BASE).unwrap();
        let mut c = b.fork(
            VirtioMmio::new(
                Box::new(VirtioRng::from_host()),
                same,
                Box::new(TestIrq::default()),
            ),
            &ram_b,
        );
        drop(b);
        c.dev.restore_state(&saved).unwrap();
        c.submit(0, &[(0x1_3000, 4, true)]);
        assert_eq!(c.used_idx(0), 4);
        assert_eq!(c.used(0, 3).map(|u| u.1), Some(4));
    }

    #[test]
    fn reset_and_foreign_states() {
        let (mut driver, _ram, irq) = driver(VirtioRng::seeded(1));
        driver.submit(0, &[(0x1_0000, 16, true)]);
        assert_eq!(driver.status(), 0xf);
        Device::reset(&mut driver.dev);
        assert_eq!(driver.status(), 0);
        assert_eq!(driver.read(0x044), 0);
        assert!(!irq.level());
        assert_refuses_foreign_states(&mut driver.dev);
        let mut model = VirtioRng::seeded(1);
        let empty = VirtioMmio::empty().save_state();
        assert!(matches!(
            model.restore_state(&empty),
            Err(StateError::Mismatch { .. })
        ));
    }

    #[test]
    fn readable_buffers_break_the_device() {
        let (mut driver, _ram, irq) = driver(VirtioRng::seeded(1));
        driver.submit(0, &[(0x1_0000, 16, false), (0x1_1000, 16, true)]);
        assert!(driver.dev.needs_reset());
        assert_ne!(driver.read(0x060) & 2, 0);
        assert!(irq.level());
        assert_eq!(driver.used_idx(0), 0);
    }
}
