//! The core-local interruptor (SiFive CLINT layout): per-hart software interrupt
//! (msip) and timer compare (mtimecmp) registers, and the shared mtime counter.

use std::sync::Arc;

use emu_core::{BusFault, Device, DeviceState, IrqLine, MmioDevice, StateError, VirtualClock};
use serde::{Deserialize, Serialize};

use crate::state::invalid;

/// Size of the register window.
pub const SIZE: u64 = 0x1_0000;
const MSIP: u64 = 0x0;
const MTIMECMP: u64 = 0x4000;
const MTIME: u64 = 0xbff8;

/// Model name in saved states.
const KIND: &str = "clint";
/// Layout version of the saved [`ClintState`].
const VERSION: u32 = 1;

/// The lines of one hart.
#[allow(missing_debug_implementations, reason = "holds only trait objects")]
pub struct ClintHart {
    /// Machine software interrupt line (mip.MSIP).
    pub software: Box<dyn IrqLine>,
    /// Machine timer interrupt line (mip.MTIP).
    pub timer: Box<dyn IrqLine>,
}

/// One hart's registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClintHartState {
    /// The msip bit.
    pub msip: bool,
    /// The timer compare value.
    pub mtimecmp: u64,
}

/// The CLINT's registers, apart from its lines and the machine clock.
///
/// mtime itself is not a register here: it is the machine's [`VirtualClock`] (which
/// the CPUs' `time` CSR reads too) plus `mtime_offset`, which a guest write to mtime
/// sets. The clock is a handle shared with the whole machine, which saves and
/// restores it; the offset is saved relative to it, as QEMU saves `time_delta`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClintState {
    /// mtime minus the machine clock (wrapping); 0 until the guest writes mtime.
    pub mtime_offset: u64,
    /// One entry per hart.
    pub harts: Vec<ClintHartState>,
}

impl ClintState {
    /// The power-on state for `harts` harts: msip clear, mtime following the clock,
    /// and mtimecmp 0, as QEMU's mtimer starts, so the timer interrupt is pending
    /// until software programs a compare value.
    pub fn new(harts: usize) -> ClintState {
        ClintState {
            mtime_offset: 0,
            harts: vec![ClintHartState::default(); harts],
        }
    }
}

/// The CLINT.
pub struct Clint {
    state: ClintState,
    clock: Arc<VirtualClock>,
    /// Each hart's lines, in hart order.
    lines: Vec<ClintHart>,
}

impl std::fmt::Debug for Clint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clint")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Clint {
    /// A CLINT for the given harts' lines.
    pub fn new(clock: Arc<VirtualClock>, harts: Vec<ClintHart>) -> Clint {
        Clint {
            state: ClintState::new(harts.len()),
            clock,
            lines: harts,
        }
    }

    fn mtime(&self) -> u64 {
        self.clock.now().wrapping_add(self.state.mtime_offset)
    }

    /// Drives every timer line for the current time; returns the next deadline in
    /// clock ticks.
    fn update(&mut self) -> Option<u64> {
        let mtime = self.mtime();
        let mut next: Option<u64> = None;
        for (hart, lines) in self.state.harts.iter().zip(&self.lines) {
            let fired = mtime >= hart.mtimecmp;
            lines.timer.set_level(fired);
            if !fired {
                let deadline = (hart.mtimecmp - mtime).saturating_add(self.clock.now());
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        next
    }

    /// Drives every line from the state: software lines from msip, timer lines
    /// from mtime and mtimecmp.
    fn drive_all(&mut self) {
        for (hart, lines) in self.state.harts.iter().zip(&self.lines) {
            lines.software.set_level(hart.msip);
        }
        self.update();
    }
}

impl Device for Clint {
    /// msip clear and mtimecmp 0 on every hart (the power-on values), mtime back
    /// to following the machine clock, every line driven to match: software lines
    /// low, timer lines high (mtime >= 0).
    ///
    /// QEMU's mtimer reset instead writes 0 to mtime and keeps mtimecmp (the
    /// ACLINT spec leaves it unknown). mtime stays on the clock here because the
    /// CPUs' `time` CSR reads that clock, and the two must agree: rewinding time is
    /// the machine's business, by resetting its clock.
    fn reset(&mut self) {
        self.state = ClintState::new(self.lines.len());
        self.drive_all();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::encode(KIND, VERSION, &self.state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let restored: ClintState = state.decode(KIND, VERSION)?;
        if restored.harts.len() != self.lines.len() {
            return Err(invalid(
                KIND,
                format!(
                    "{} harts saved, this CLINT has {}",
                    restored.harts.len(),
                    self.lines.len()
                ),
            ));
        }
        self.state = restored;
        self.drive_all();
        Ok(())
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
        let harts = self.state.harts.len() as u64;
        let value = match offset {
            o if o < MSIP + 4 * harts => {
                u64::from(self.state.harts[(o / 4) as usize].msip) >> (8 * (o % 4))
            }
            o if (MTIMECMP..MTIMECMP + 8 * harts).contains(&o) => {
                let rel = o - MTIMECMP;
                self.state.harts[(rel / 8) as usize].mtimecmp >> (8 * (rel % 8))
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
        let harts = self.state.harts.len() as u64;
        match offset {
            o if o < MSIP + 4 * harts && o % 4 == 0 => {
                let index = (o / 4) as usize;
                let msip = value & 1 != 0;
                self.state.harts[index].msip = msip;
                self.lines[index].software.set_level(msip);
            }
            o if (MTIMECMP..MTIMECMP + 8 * harts).contains(&o) => {
                let rel = o - MTIMECMP;
                let hart = &mut self.state.harts[(rel / 8) as usize];
                hart.mtimecmp = merge(hart.mtimecmp, rel % 8, size, value);
                self.update();
            }
            o if (MTIME..MTIME + 8).contains(&o) => {
                let new = merge(self.mtime(), o - MTIME, size, value);
                self.state.mtime_offset = new.wrapping_sub(self.clock.now());
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
    use crate::testing::{TestIrq, assert_refuses_foreign_states};

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

    /// The lines of two harts, as (software, timer) pairs.
    type Lines = [(TestIrq, TestIrq); 2];

    fn clint(clock: &Arc<VirtualClock>) -> (Clint, Lines) {
        let lines: Lines = Default::default();
        let harts = lines
            .iter()
            .map(|(soft, timer)| ClintHart {
                software: Box::new(soft.clone()),
                timer: Box::new(timer.clone()),
            })
            .collect();
        (Clint::new(clock.clone(), harts), lines)
    }

    fn levels(lines: &Lines) -> [(bool, bool); 2] {
        [
            (lines[0].0.level(), lines[0].1.level()),
            (lines[1].0.level(), lines[1].1.level()),
        ]
    }

    #[test]
    fn state_round_trips_into_a_fresh_clint() {
        let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
        let (mut a, lines_a) = clint(&clock);
        clock.retire(10);
        // mtime moved ahead of the clock, two compare values, hart 1's msip set.
        a.write(MTIME, 4, 40).unwrap();
        a.write(MTIMECMP, 8, 100).unwrap();
        a.write(MTIMECMP + 8, 4, 60).unwrap();
        a.write(MTIMECMP + 12, 4, 0).unwrap();
        a.write(MSIP + 4, 4, 1).unwrap();
        assert_eq!(levels(&lines_a), [(false, false), (true, false)]);

        // The fresh CLINT runs on the same machine clock (restored by the machine).
        let (mut b, lines_b) = clint(&clock);
        assert_eq!(levels(&lines_b), [(false, false), (false, false)]);
        let saved = a.save_state();
        b.restore_state(&saved).unwrap();
        assert_eq!(b.save_state(), saved);
        assert_eq!(levels(&lines_b), levels(&lines_a));
        for (offset, size) in [(MTIME, 8), (MTIMECMP, 8), (MTIMECMP + 8, 8), (MSIP + 4, 4)] {
            assert_eq!(a.read(offset, size), b.read(offset, size), "{offset:#x}");
        }
        assert_eq!(b.read(MTIME, 8), Ok(40));

        // Time passes for both: hart 1's compare value is reached, hart 0's not.
        clock.retire(25);
        assert_eq!(a.tick(0), Some(70));
        assert_eq!(b.tick(0), Some(70));
        for dev in [&mut a, &mut b] {
            dev.write(MSIP + 4, 4, 0).unwrap();
            dev.write(MSIP, 4, 1).unwrap();
        }
        assert_eq!(levels(&lines_a), [(true, false), (false, true)]);
        assert_eq!(levels(&lines_b), levels(&lines_a));
        assert_eq!(a.save_state(), b.save_state());
    }

    #[test]
    fn reset_restores_power_on_registers_and_lines() {
        let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
        let (mut clint, lines) = clint(&clock);
        clock.retire(5);
        clint.write(MTIME, 8, 1_000).unwrap();
        clint.write(MTIMECMP, 8, 5_000).unwrap();
        clint.write(MTIMECMP + 8, 8, 5_000).unwrap();
        clint.write(MSIP, 4, 1).unwrap();
        assert_eq!(levels(&lines), [(true, false), (false, false)]);
        clint.reset();
        assert_eq!(clint.read(MSIP, 4), Ok(0));
        assert_eq!(clint.read(MTIMECMP, 8), Ok(0));
        assert_eq!(clint.read(MTIME, 8), Ok(5), "mtime follows the clock again");
        assert_eq!(levels(&lines), [(false, true), (false, true)]);
        assert_eq!(clint.save_state(), self::clint(&clock).0.save_state());
    }

    #[test]
    fn restore_refuses_foreign_states_and_other_hart_counts() {
        let clock = Arc::new(VirtualClock::instruction_counted(10_000_000, 1));
        let (mut two, _lines) = clint(&clock);
        assert_refuses_foreign_states(&mut two);
        let one = DeviceState::encode(KIND, VERSION, &ClintState::new(1));
        assert!(matches!(
            two.restore_state(&one),
            Err(StateError::Invalid { .. })
        ));
    }
}
