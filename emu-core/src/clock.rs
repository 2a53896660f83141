//! Virtual time.
//!
//! Guest-visible time is counted in ticks of a fixed frequency (10 MHz on
//! riscv-virt, as QEMU's). Normally ticks follow the host's monotonic clock; in
//! instruction-counted mode they advance only with retired guest instructions, so a
//! run is repeatable whatever the host is doing. Idle guests (all CPUs waiting for an
//! interrupt) skip ahead to the next deadline in that mode instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How ticks are derived.
#[derive(Debug)]
enum Source {
    Host {
        start: Instant,
    },
    Instructions {
        per_tick: u64,
        retired: AtomicU64,
        skipped: AtomicU64,
    },
}

/// The machine's clock.
#[derive(Debug)]
pub struct VirtualClock {
    freq_hz: u64,
    source: Source,
}

impl VirtualClock {
    /// A clock following host time at `freq_hz` ticks per second.
    pub fn host(freq_hz: u64) -> VirtualClock {
        VirtualClock {
            freq_hz,
            source: Source::Host {
                start: Instant::now(),
            },
        }
    }

    /// A clock advancing one tick per `per_tick` retired instructions.
    pub fn instruction_counted(freq_hz: u64, per_tick: u64) -> VirtualClock {
        VirtualClock {
            freq_hz,
            source: Source::Instructions {
                per_tick: per_tick.max(1),
                retired: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
            },
        }
    }

    /// Ticks per second.
    pub fn freq_hz(&self) -> u64 {
        self.freq_hz
    }

    /// Whether time follows retired instructions rather than the host.
    pub fn is_instruction_counted(&self) -> bool {
        matches!(self.source, Source::Instructions { .. })
    }

    /// The current time in ticks.
    #[inline]
    pub fn now(&self) -> u64 {
        match &self.source {
            Source::Host { start } => {
                let nanos = start.elapsed().as_nanos();
                (nanos * u128::from(self.freq_hz) / 1_000_000_000) as u64
            }
            Source::Instructions {
                per_tick,
                retired,
                skipped,
            } => retired.load(Ordering::Relaxed) / per_tick + skipped.load(Ordering::Relaxed),
        }
    }

    /// Reports `count` more retired instructions (no effect on a host clock).
    #[inline]
    pub fn retire(&self, count: u64) {
        if let Source::Instructions { retired, .. } = &self.source {
            retired.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Waits until `deadline` (ticks) or at most `max_wait`, for idle CPUs. A host
    /// clock sleeps; an instruction-counted clock jumps straight to the deadline.
    pub fn idle_until(&self, deadline: Option<u64>, max_wait: Duration) {
        let now = self.now();
        match &self.source {
            Source::Host { .. } => {
                let wait = match deadline {
                    Some(d) if d <= now => return,
                    Some(d) => self.ticks_to_duration(d - now).min(max_wait),
                    None => max_wait,
                };
                std::thread::sleep(wait);
            }
            Source::Instructions { skipped, .. } => {
                if let Some(d) = deadline.filter(|&d| d > now) {
                    skipped.fetch_add(d - now, Ordering::Relaxed);
                } else if deadline.is_none() {
                    // Nothing will ever fire by itself; let host input arrive.
                    std::thread::sleep(max_wait);
                }
            }
        }
    }

    /// Converts a tick count to host time.
    pub fn ticks_to_duration(&self, ticks: u64) -> Duration {
        let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(self.freq_hz.max(1));
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_counted_time_follows_retired_instructions() {
        let clock = VirtualClock::instruction_counted(10_000_000, 10);
        assert_eq!(clock.now(), 0);
        clock.retire(95);
        assert_eq!(clock.now(), 9);
        clock.idle_until(Some(100), Duration::from_millis(1));
        assert_eq!(clock.now(), 100);
        // A deadline in the past does not move time backwards.
        clock.idle_until(Some(50), Duration::from_millis(1));
        assert_eq!(clock.now(), 100);
    }

    #[test]
    fn host_time_moves_forward() {
        let clock = VirtualClock::host(10_000_000);
        let a = clock.now();
        clock.idle_until(Some(a + 10_000), Duration::from_millis(50));
        assert!(clock.now() >= a + 10_000);
        assert_eq!(clock.ticks_to_duration(10_000_000), Duration::from_secs(1));
    }
}
