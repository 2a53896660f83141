//! The platform-level interrupt controller (SiFive PLIC layout, as on QEMU's virt
//! board): level-triggered sources with priorities, and per-context enables,
//! thresholds and claim/complete registers. Context 2h is hart h's M-mode, 2h+1 its
//! S-mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use emu_core::{BusFault, Device, DeviceState, IrqLine, MmioDevice, RunControl, StateError};
use serde::{Deserialize, Serialize};

use crate::state::invalid;

/// Size of the register window.
pub const SIZE: u64 = 0x60_0000;
/// Interrupt sources, numbered 1..SOURCES (0 means "none").
pub const SOURCES: usize = 96;
/// 32-bit words of a bit-per-source register.
pub const WORDS: usize = SOURCES / 32;
const PENDING: u64 = 0x1000;
const ENABLE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;
const MAX_PRIORITY: u32 = 7;

/// Model name in saved states.
const KIND: &str = "plic";
/// Layout version of the saved state.
const VERSION: u32 = 1;

/// Source input levels, shared between the PLIC and the lines devices drive.
#[derive(Debug, Default)]
struct Levels {
    bits: [AtomicU32; WORDS],
}

impl Levels {
    fn load(&self) -> [u32; WORDS] {
        std::array::from_fn(|word| self.bits[word].load(Ordering::Acquire))
    }
}

/// An interrupt source line into the PLIC.
#[derive(Debug)]
pub struct PlicSource {
    levels: Arc<Levels>,
    source: usize,
    control: Arc<RunControl>,
}

impl IrqLine for PlicSource {
    fn set_level(&self, high: bool) {
        let (word, bit) = (self.source / 32, 1u32 << (self.source % 32));
        let old = if high {
            self.levels.bits[word].fetch_or(bit, Ordering::AcqRel)
        } else {
            self.levels.bits[word].fetch_and(!bit, Ordering::AcqRel)
        };
        if (old & bit != 0) != high {
            // Tell the machine to re-evaluate interrupt outputs soon.
            self.control.notify_irq();
        }
    }
}

/// The registers of one context (a hart's M or S mode).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlicContextState {
    /// Enable bits, a bit per source (bit 0, the non-source, always clear).
    pub enable: [u32; WORDS],
    /// Priority threshold (0..=7): only sources above it interrupt.
    pub threshold: u32,
}

/// The PLIC's registers, apart from the wires into and out of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlicState {
    /// Priority of each source (0..=7), [`SOURCES`] entries; entry 0 is unused.
    pub priority: Vec<u32>,
    /// Pending bits, latched from the source levels.
    pub pending: [u32; WORDS],
    /// Claimed and not yet completed.
    pub in_flight: [u32; WORDS],
    /// One entry per context, in context order.
    pub contexts: Vec<PlicContextState>,
}

impl PlicState {
    /// The power-on state of a PLIC with `contexts` contexts: every register zero.
    pub fn new(contexts: usize) -> PlicState {
        PlicState {
            priority: vec![0; SOURCES],
            pending: [0; WORDS],
            in_flight: [0; WORDS],
            contexts: vec![PlicContextState::default(); contexts],
        }
    }
}

/// What a PLIC saves: its registers, and the level each source wire was last
/// driven to. The wires belong to the devices driving them, which drive them again
/// when they are restored; saving the levels too keeps the PLIC's own state whole
/// whatever order the devices are restored in.
#[derive(Serialize, Deserialize)]
struct SavedPlic {
    registers: PlicState,
    levels: [u32; WORDS],
}

/// The PLIC.
pub struct Plic {
    state: PlicState,
    /// The source wires (host side: shared with the [`PlicSource`]s devices hold).
    levels: Arc<Levels>,
    control: Arc<RunControl>,
    /// Each context's output line, in context order.
    outputs: Vec<Box<dyn IrqLine>>,
}

impl std::fmt::Debug for Plic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plic")
            .field("contexts", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

impl Plic {
    /// A PLIC whose contexts drive `outputs` (M and S external interrupt lines of
    /// each hart, in context order).
    pub fn new(outputs: Vec<Box<dyn IrqLine>>, control: Arc<RunControl>) -> Plic {
        Plic {
            state: PlicState::new(outputs.len()),
            levels: Arc::new(Levels::default()),
            control,
            outputs,
        }
    }

    /// The line for source `source` (1..SOURCES).
    pub fn source(&self, source: usize) -> PlicSource {
        assert!(
            (1..SOURCES).contains(&source),
            "PLIC source {source} out of range"
        );
        PlicSource {
            levels: self.levels.clone(),
            source,
            control: self.control.clone(),
        }
    }

    /// Latches levels into pending bits and drives each context's output.
    fn update(&mut self) {
        let levels = self.levels.load();
        for (word, level) in levels.into_iter().enumerate() {
            self.state.pending[word] |= level & !self.state.in_flight[word];
            // Level-triggered: a source that dropped is no longer pending.
            self.state.pending[word] &= level;
        }
        for (index, output) in self.outputs.iter().enumerate() {
            output.set_level(self.best(index).is_some());
        }
    }

    /// The highest-priority pending, enabled source above the context's threshold.
    fn best(&self, context: usize) -> Option<usize> {
        let ctx = &self.state.contexts[context];
        let mut best: Option<(u32, usize)> = None;
        for source in 1..SOURCES {
            let (word, bit) = (source / 32, 1u32 << (source % 32));
            if self.state.pending[word] & ctx.enable[word] & bit == 0 {
                continue;
            }
            let priority = self.state.priority[source];
            if priority > ctx.threshold && best.is_none_or(|(p, _)| priority > p) {
                best = Some((priority, source));
            }
        }
        best.map(|(_, source)| source)
    }

    fn claim(&mut self, context: usize) -> u32 {
        self.update();
        let Some(source) = self.best(context) else {
            return 0;
        };
        let (word, bit) = (source / 32, 1u32 << (source % 32));
        self.state.pending[word] &= !bit;
        self.state.in_flight[word] |= bit;
        self.update();
        source as u32
    }

    fn complete(&mut self, context: usize, source: u32) {
        let source = source as usize;
        if (1..SOURCES).contains(&source) {
            let (word, bit) = (source / 32, 1u32 << (source % 32));
            if self.state.contexts[context].enable[word] & bit != 0 {
                self.state.in_flight[word] &= !bit;
            }
        }
        self.update();
    }

    /// Why `registers` cannot be this PLIC's, if they cannot.
    fn check(&self, registers: &PlicState) -> Result<(), String> {
        if registers.contexts.len() != self.outputs.len() {
            return Err(format!(
                "{} contexts saved, this PLIC has {}",
                registers.contexts.len(),
                self.outputs.len()
            ));
        }
        if registers.priority.len() != SOURCES {
            return Err(format!(
                "{} priorities saved for {SOURCES} sources",
                registers.priority.len()
            ));
        }
        let too_high = |p: &u32| *p > MAX_PRIORITY;
        if registers.priority.iter().any(too_high)
            || registers
                .contexts
                .iter()
                .map(|c| &c.threshold)
                .any(too_high)
        {
            return Err(format!("a priority or threshold above {MAX_PRIORITY}"));
        }
        Ok(())
    }
}

impl Device for Plic {
    /// Every register back to zero (priorities, enables, thresholds, pending and
    /// claimed bits) and every output low. The source wires are the devices' and
    /// stay as driven: a source still high is pending again at the next update.
    fn reset(&mut self) {
        self.state = PlicState::new(self.outputs.len());
        for output in &self.outputs {
            output.set_level(false);
        }
    }

    fn save_state(&self) -> DeviceState {
        let saved = SavedPlic {
            registers: self.state.clone(),
            levels: self.levels.load(),
        };
        DeviceState::encode(KIND, VERSION, &saved)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let saved: SavedPlic = state.decode(KIND, VERSION)?;
        self.check(&saved.registers)
            .map_err(|reason| invalid(KIND, reason))?;
        self.state = saved.registers;
        for (word, level) in saved.levels.into_iter().enumerate() {
            self.levels.bits[word].store(level, Ordering::Release);
        }
        self.control.notify_irq();
        self.update();
        Ok(())
    }
}

impl MmioDevice for Plic {
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, BusFault> {
        self.update();
        let contexts = self.outputs.len() as u64;
        let value = match offset {
            o if o < PENDING => self
                .state
                .priority
                .get((o / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if o < ENABLE => self
                .state
                .pending
                .get(((o - PENDING) / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if o < ENABLE + ENABLE_STRIDE * contexts => {
                let ctx = ((o - ENABLE) / ENABLE_STRIDE) as usize;
                let word = ((o - ENABLE) % ENABLE_STRIDE / 4) as usize;
                self.state.contexts[ctx]
                    .enable
                    .get(word)
                    .copied()
                    .unwrap_or(0)
            }
            o if (CONTEXT..CONTEXT + CONTEXT_STRIDE * contexts).contains(&o) => {
                let ctx = ((o - CONTEXT) / CONTEXT_STRIDE) as usize;
                match (o - CONTEXT) % CONTEXT_STRIDE {
                    0 => self.state.contexts[ctx].threshold,
                    4 => self.claim(ctx),
                    _ => 0,
                }
            }
            _ => 0,
        };
        Ok(u64::from(value))
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) -> Result<(), BusFault> {
        let value = value as u32;
        let contexts = self.outputs.len() as u64;
        match offset {
            o if o < PENDING => {
                let source = (o / 4) as usize;
                if (1..SOURCES).contains(&source) {
                    self.state.priority[source] = value.min(MAX_PRIORITY);
                }
            }
            o if (ENABLE..ENABLE + ENABLE_STRIDE * contexts).contains(&o) => {
                let ctx = ((o - ENABLE) / ENABLE_STRIDE) as usize;
                let word = ((o - ENABLE) % ENABLE_STRIDE / 4) as usize;
                if let Some(slot) = self.state.contexts[ctx].enable.get_mut(word) {
                    // Source 0 does not exist.
                    *slot = if word == 0 { value & !1 } else { value };
                }
            }
            o if (CONTEXT..CONTEXT + CONTEXT_STRIDE * contexts).contains(&o) => {
                let ctx = ((o - CONTEXT) / CONTEXT_STRIDE) as usize;
                match (o - CONTEXT) % CONTEXT_STRIDE {
                    0 => self.state.contexts[ctx].threshold = value.min(MAX_PRIORITY),
                    4 => self.complete(ctx, value),
                    _ => {}
                }
            }
            _ => {}
        }
        self.update();
        Ok(())
    }

    fn tick(&mut self, _now: u64) -> Option<u64> {
        self.update();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestIrq, assert_refuses_foreign_states};

    #[test]
    fn claim_complete_cycle() {
        let out = TestIrq::default();
        let mut plic = Plic::new(vec![Box::new(out.clone())], Arc::new(RunControl::new()));
        let uart = plic.source(10);
        plic.write(4 * 10, 4, 1).unwrap();
        plic.write(ENABLE, 4, 1 << 10).unwrap();
        uart.set_level(true);
        plic.tick(0);
        assert!(out.level());
        assert_eq!(plic.read(PENDING, 4).unwrap(), 1 << 10);
        assert_eq!(plic.read(CONTEXT + 4, 4).unwrap(), 10);
        // Claimed: no longer pending, output drops until completion.
        assert!(!out.level());
        assert_eq!(plic.read(CONTEXT + 4, 4).unwrap(), 0);
        plic.write(CONTEXT + 4, 4, 10).unwrap();
        // Still high after completion: pending again.
        assert!(out.level());
        // A threshold at the source's priority masks it.
        plic.write(CONTEXT, 4, 1).unwrap();
        assert!(!out.level());
        plic.write(CONTEXT, 4, 0).unwrap();
        uart.set_level(false);
        plic.tick(0);
        assert!(!out.level());
    }

    /// A PLIC with two contexts (one hart's M and S modes) and their outputs.
    fn plic() -> (Plic, [TestIrq; 2]) {
        let outs = [TestIrq::default(), TestIrq::default()];
        let lines: Vec<Box<dyn IrqLine>> = outs
            .iter()
            .map(|o| Box::new(o.clone()) as Box<dyn IrqLine>)
            .collect();
        (Plic::new(lines, Arc::new(RunControl::new())), outs)
    }

    const S_CONTEXT: u64 = CONTEXT + CONTEXT_STRIDE;

    /// Sources 10 and 33 at priorities 3 and 5, both enabled in the S context
    /// (threshold 1), 10 also in the M context (threshold 4, which masks it).
    fn program(plic: &mut Plic) {
        plic.write(4 * 10, 4, 3).unwrap();
        plic.write(4 * 33, 4, 5).unwrap();
        plic.write(ENABLE, 4, 1 << 10).unwrap();
        plic.write(ENABLE + ENABLE_STRIDE, 4, 1 << 10).unwrap();
        plic.write(ENABLE + ENABLE_STRIDE + 4, 4, 1 << 1).unwrap();
        plic.write(CONTEXT, 4, 4).unwrap();
        plic.write(S_CONTEXT, 4, 1).unwrap();
    }

    fn levels(outs: &[TestIrq; 2]) -> [bool; 2] {
        [outs[0].level(), outs[1].level()]
    }

    #[test]
    fn state_round_trips_into_a_fresh_plic() {
        let (mut a, outs_a) = plic();
        program(&mut a);
        let (a10, a33) = (a.source(10), a.source(33));
        a10.set_level(true);
        a33.set_level(true);
        // The S context claims 33 (the higher priority); 10 stays pending.
        assert_eq!(a.read(S_CONTEXT + 4, 4), Ok(33));
        assert_eq!(levels(&outs_a), [false, true]);

        let (mut b, outs_b) = plic();
        let saved = a.save_state();
        b.restore_state(&saved).unwrap();
        assert_eq!(b.save_state(), saved);
        assert_eq!(levels(&outs_b), [false, true]);
        for offset in [
            4 * 10,
            4 * 33,
            PENDING,
            PENDING + 4,
            ENABLE + ENABLE_STRIDE + 4,
        ] {
            assert_eq!(a.read(offset, 4), b.read(offset, 4), "offset {offset:#x}");
        }
        assert_eq!(b.read(PENDING, 4), Ok(1 << 10));

        // Both go on identically: complete 33, claim 10, its device drops the line.
        let (b10, b33) = (b.source(10), b.source(33));
        for (plic, line10, line33) in [(&mut a, &a10, &a33), (&mut b, &b10, &b33)] {
            line33.set_level(false);
            plic.write(S_CONTEXT + 4, 4, 33).unwrap();
            assert_eq!(plic.read(S_CONTEXT + 4, 4), Ok(10));
            line10.set_level(false);
            plic.write(S_CONTEXT + 4, 4, 10).unwrap();
        }
        assert_eq!(a.save_state(), b.save_state());
        assert_eq!(levels(&outs_a), levels(&outs_b));
        assert_eq!(levels(&outs_b), [false, false]);
    }

    #[test]
    fn reset_clears_every_register_and_lowers_the_outputs() {
        let (mut plic, outs) = plic();
        program(&mut plic);
        let line = plic.source(33);
        line.set_level(true);
        plic.tick(0);
        assert_eq!(levels(&outs), [false, true]);
        assert_eq!(plic.read(S_CONTEXT, 4), Ok(1));
        plic.reset();
        assert_eq!(levels(&outs), [false, false]);
        let fresh = plic.state.clone();
        assert_eq!(fresh, PlicState::new(2));
        line.set_level(false);
        for offset in [4 * 33, ENABLE + ENABLE_STRIDE + 4, S_CONTEXT, S_CONTEXT + 4] {
            assert_eq!(plic.read(offset, 4), Ok(0), "offset {offset:#x}");
        }
    }

    #[test]
    fn restore_refuses_foreign_and_mismatched_states() {
        let (mut two, _) = plic();
        assert_refuses_foreign_states(&mut two);
        let one = Plic::new(
            vec![Box::new(TestIrq::default())],
            Arc::new(RunControl::new()),
        );
        assert!(matches!(
            two.restore_state(&one.save_state()),
            Err(StateError::Invalid { .. })
        ));
        let mut registers = PlicState::new(2);
        registers.priority[3] = 8;
        let saved = SavedPlic {
            registers,
            levels: [0; WORDS],
        };
        assert!(matches!(
            two.restore_state(&DeviceState::encode(KIND, VERSION, &saved)),
            Err(StateError::Invalid { .. })
        ));
    }
}
