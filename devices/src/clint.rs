//! The core-local interruptor (SiFive CLINT layout): per-hart software interrupt
//! (msip) and timer compare (mtimecmp) registers, and the shared mtime counter.

use std::sync::Arc;

use emu_core::{BusFault, IrqLine, MmioDevice, VirtualClock};

/// Size of the register window.
pub const SIZE: u64 = 0x1_0000;
const MSIP: u64 = 0x0;
const MTIMECMP: u64 = 0x4000;
const MTIME: u64 = 0xbff8;

/// The lines of one hart.
#[allow(missing_debug_implementations, reason = "holds only trait objects")]
pub struct ClintHart {
    /// Machine software interrupt line (mip.MSIP).
    pub software: Box<dyn IrqLine>,
    /// Machine timer interrupt line (mip.MTIP).
    pub timer: Box<dyn IrqLine>,
}

struct HartTimer {
    lines: ClintHart,
    msip: bool,
    mtimecmp: u64,
}

/// The CLINT.
pub struct Clint {
    clock: Arc<VirtualClock>,
    /// Added to the clock to give mtime (mtime is writable).
    mtime_offset: u64,
    harts: Vec<HartTimer>,
}

impl std::fmt::Debug for Clint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clint")
            .field("harts", &self.harts.len())
            .finish()
    }
}

impl Clint {
    /// A CLINT for the given harts' lines.
    pub fn new(clock: Arc<VirtualClock>, harts: Vec<ClintHart>) -> Clint {
        Clint {
            clock,
            mtime_offset: 0,
            harts: harts
                .into_iter()
                .map(|lines| HartTimer {
                    lines,
                    msip: false,
                    // Zero at reset, as on QEMU: the timer interrupt is pending until
                    // software programs a compare value.
                    mtimecmp: 0,
                })
                .collect(),
        }
    }

    fn mtime(&self) -> u64 {
        self.clock.now().wrapping_add(self.mtime_offset)
    }

    /// Drives every timer line for the current time; returns the next deadline in
    /// clock ticks.
    fn update(&mut self) -> Option<u64> {
        let mtime = self.mtime();
        let mut next: Option<u64> = None;
        for hart in &self.harts {
            let fired = mtime >= hart.mtimecmp;
            hart.lines.timer.set_level(fired);
            if !fired {
                let deadline = (hart.mtimecmp - mtime).saturating_add(self.clock.now());
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        next
    }
}

/// Merges a partial write of `size` bytes at byte `shift` into a 64-bit register.
fn merge(old: u64, shift: u64, size: u8, value: u64) -> u64 {
    let mask = if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u64::from(size))) - 1
    };
    (old & !(mask << (8 * shift))) | ((value & mask) << (8 * shift))
}

impl MmioDevice for Clint {
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        let harts = self.harts.len() as u64;
        let value = match offset {
            o if o < MSIP + 4 * harts => {
                u64::from(self.harts[(o / 4) as usize].msip) >> (8 * (o % 4))
            }
            o if (MTIMECMP..MTIMECMP + 8 * harts).contains(&o) => {
                let rel = o - MTIMECMP;
                self.harts[(rel / 8) as usize].mtimecmp >> (8 * (rel % 8))
            }
            o if (MTIME..MTIME + 8).contains(&o) => self.mtime() >> (8 * (o - MTIME)),
            _ => 0,
        };
        let mask = if size >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * u64::from(size))) - 1
        };
        Ok(value & mask)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        let harts = self.harts.len() as u64;
        match offset {
            o if o < MSIP + 4 * harts && o % 4 == 0 => {
                let hart = &mut self.harts[(o / 4) as usize];
                hart.msip = value & 1 != 0;
                hart.lines.software.set_level(hart.msip);
            }
            o if (MTIMECMP..MTIMECMP + 8 * harts).contains(&o) => {
                let rel = o - MTIMECMP;
                let hart = &mut self.harts[(rel / 8) as usize];
                hart.mtimecmp = merge(hart.mtimecmp, rel % 8, size, value);
                self.update();
            }
            o if (MTIME..MTIME + 8).contains(&o) => {
                let new = merge(self.mtime(), o - MTIME, size, value);
                self.mtime_offset = new.wrapping_sub(self.clock.now());
                self.update();
            }
            _ => {}
        }
        Ok(())
    }

    fn tick(&mut self, _now: u64) -> Option<u64> {
        self.update()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestIrq;

    #[test]
    fn timer_fires_at_mtimecmp_and_software_bit_follows_msip() {
        let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
        let (soft, timer) = (TestIrq::default(), TestIrq::default());
        let mut clint = Clint::new(
            clock.clone(),
            vec![ClintHart {
                software: Box::new(soft.clone()),
                timer: Box::new(timer.clone()),
            }],
        );
        clint.write(MTIMECMP, 8, 100).unwrap();
        assert!(!timer.level());
        assert_eq!(clint.tick(0), Some(100));
        clock.retire(100);
        assert_eq!(clint.read(MTIME, 8).unwrap(), 100);
        assert_eq!(clint.tick(100), None);
        assert!(timer.level());
        // Writing the high word only moves the compare value far away again.
        clint.write(MTIMECMP + 4, 4, 1).unwrap();
        assert_eq!(clint.read(MTIMECMP, 8).unwrap(), (1 << 32) | 100);
        assert!(!timer.level());
        clint.write(MSIP, 4, 1).unwrap();
        assert!(soft.level());
        assert_eq!(clint.read(MSIP, 4).unwrap(), 1);
        clint.write(MSIP, 4, 0).unwrap();
        assert!(!soft.level());
    }
}
