//! The platform-level interrupt controller (SiFive PLIC layout, as on QEMU's virt
//! board): level-triggered sources with priorities, and per-context enables,
//! thresholds and claim/complete registers. Context 2h is hart h's M-mode, 2h+1 its
//! S-mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use emu_core::{BusFault, IrqLine, MmioDevice, RunControl};

/// Size of the register window.
pub const SIZE: u64 = 0x60_0000;
/// Interrupt sources, numbered 1..SOURCES (0 means "none").
pub const SOURCES: usize = 96;
const WORDS: usize = SOURCES / 32;
const PENDING: u64 = 0x1000;
const ENABLE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;
const MAX_PRIORITY: u32 = 7;

/// Source input levels, shared between the PLIC and the lines devices drive.
#[derive(Debug, Default)]
struct Levels {
    bits: [AtomicU32; WORDS],
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

struct Context {
    enable: [u32; WORDS],
    threshold: u32,
    output: Box<dyn IrqLine>,
}

/// The PLIC.
pub struct Plic {
    levels: Arc<Levels>,
    control: Arc<RunControl>,
    priority: [u32; SOURCES],
    pending: [u32; WORDS],
    /// Claimed and not yet completed.
    in_flight: [u32; WORDS],
    contexts: Vec<Context>,
}

impl std::fmt::Debug for Plic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plic")
            .field("contexts", &self.contexts.len())
            .finish_non_exhaustive()
    }
}

impl Plic {
    /// A PLIC whose contexts drive `outputs` (M and S external interrupt lines of
    /// each hart, in context order).
    pub fn new(outputs: Vec<Box<dyn IrqLine>>, control: Arc<RunControl>) -> Plic {
        Plic {
            levels: Arc::new(Levels::default()),
            control,
            priority: [0; SOURCES],
            pending: [0; WORDS],
            in_flight: [0; WORDS],
            contexts: outputs
                .into_iter()
                .map(|output| Context {
                    enable: [0; WORDS],
                    threshold: 0,
                    output,
                })
                .collect(),
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
        for word in 0..WORDS {
            let level = self.levels.bits[word].load(Ordering::Acquire);
            self.pending[word] |= level & !self.in_flight[word];
            // Level-triggered: a source that dropped is no longer pending.
            self.pending[word] &= level;
        }
        for index in 0..self.contexts.len() {
            let active = self.best(index).is_some();
            self.contexts[index].output.set_level(active);
        }
    }

    /// The highest-priority pending, enabled source above the context's threshold.
    fn best(&self, context: usize) -> Option<usize> {
        let ctx = &self.contexts[context];
        let mut best: Option<(u32, usize)> = None;
        for source in 1..SOURCES {
            let (word, bit) = (source / 32, 1u32 << (source % 32));
            if self.pending[word] & ctx.enable[word] & bit == 0 {
                continue;
            }
            let priority = self.priority[source];
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
        self.pending[word] &= !bit;
        self.in_flight[word] |= bit;
        self.update();
        source as u32
    }

    fn complete(&mut self, context: usize, source: u32) {
        let source = source as usize;
        if (1..SOURCES).contains(&source) {
            let (word, bit) = (source / 32, 1u32 << (source % 32));
            if self.contexts[context].enable[word] & bit != 0 {
                self.in_flight[word] &= !bit;
            }
        }
        self.update();
    }
}

impl MmioDevice for Plic {
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, BusFault> {
        self.update();
        let contexts = self.contexts.len() as u64;
        let value = match offset {
            o if o < PENDING => self.priority.get((o / 4) as usize).copied().unwrap_or(0),
            o if o < ENABLE => self
                .pending
                .get(((o - PENDING) / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if o < ENABLE + ENABLE_STRIDE * contexts => {
                let ctx = ((o - ENABLE) / ENABLE_STRIDE) as usize;
                let word = ((o - ENABLE) % ENABLE_STRIDE / 4) as usize;
                self.contexts[ctx].enable.get(word).copied().unwrap_or(0)
            }
            o if (CONTEXT..CONTEXT + CONTEXT_STRIDE * contexts).contains(&o) => {
                let ctx = ((o - CONTEXT) / CONTEXT_STRIDE) as usize;
                match (o - CONTEXT) % CONTEXT_STRIDE {
                    0 => self.contexts[ctx].threshold,
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
        let contexts = self.contexts.len() as u64;
        match offset {
            o if o < PENDING => {
                let source = (o / 4) as usize;
                if (1..SOURCES).contains(&source) {
                    self.priority[source] = value.min(MAX_PRIORITY);
                }
            }
            o if (ENABLE..ENABLE + ENABLE_STRIDE * contexts).contains(&o) => {
                let ctx = ((o - ENABLE) / ENABLE_STRIDE) as usize;
                let word = ((o - ENABLE) % ENABLE_STRIDE / 4) as usize;
                if let Some(slot) = self.contexts[ctx].enable.get_mut(word) {
                    // Source 0 does not exist.
                    *slot = if word == 0 { value & !1 } else { value };
                }
            }
            o if (CONTEXT..CONTEXT + CONTEXT_STRIDE * contexts).contains(&o) => {
                let ctx = ((o - CONTEXT) / CONTEXT_STRIDE) as usize;
                match (o - CONTEXT) % CONTEXT_STRIDE {
                    0 => self.contexts[ctx].threshold = value.min(MAX_PRIORITY),
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
    use crate::testing::TestIrq;

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
}
