//! MSI-X (PCI Local Bus 3.0 §6.8.2): a table of messages in a memory BAR.
//!
//! A function that signals through MSI-X embeds an [`Msix`]: the capability in its
//! configuration space (table size, where the table and the pending-bit array
//! live, and the enable and function-mask bits software writes), the table of
//! entries (address, data, vector control with its mask bit) and the pending bits.
//! A vector raised while masked, by its own mask bit or the function mask, sets its
//! pending bit; unmasking it delivers the message then.
//!
//! Messages leave through an [`MsiTarget`], passed to each call that may deliver
//! one; `None` (no MSI controller, or bus mastering disabled) loses them, as a write
//! nobody decodes is lost on hardware.

use emu_core::{MsiMessage, MsiTarget};
use serde::{Deserialize, Serialize};

use super::PciError;
use super::config::{BarKind, PciConfigSpace, cap_id};

/// Size of one table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Most vectors a function may have.
pub const MAX_VECTORS: u16 = 2048;

/// Message control bits (the 16-bit word at capability offset 2).
pub mod control {
    /// MSI-X is enabled: the function signals through the table, not INTx.
    pub const ENABLE: u16 = 1 << 15;
    /// Every vector is masked.
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// Table size minus one.
    pub const TABLE_SIZE: u16 = 0x7ff;
}

/// Field offsets inside a table entry.
mod entry {
    pub(super) const ADDRESS_LOW: u64 = 0x0;
    pub(super) const ADDRESS_HIGH: u64 = 0x4;
    pub(super) const DATA: u64 = 0x8;
    pub(super) const VECTOR_CONTROL: u64 = 0xc;
}

/// Vector control bit: the entry is masked.
pub const VECTOR_MASKED: u32 = 1;

/// Offset of message control inside the capability.
const CONTROL: u16 = 2;

/// One table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsixEntry {
    /// Message address.
    pub address: u64,
    /// Message data.
    pub data: u32,
    /// Vector control ([`VECTOR_MASKED`]).
    pub vector_control: u32,
}

impl Default for MsixEntry {
    /// Entries come out of reset masked.
    fn default() -> MsixEntry {
        MsixEntry {
            address: 0,
            data: 0,
            vector_control: VECTOR_MASKED,
        }
    }
}

/// The table and pending bits (the capability's bits are in configuration space).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsixState {
    /// One entry per vector.
    pub entries: Vec<MsixEntry>,
    /// Pending bits, 64 vectors a word.
    pub pending: Vec<u64>,
}

/// Where a structure lives: a BAR and a range in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BarRegion {
    bar: usize,
    offset: u64,
    len: u64,
}

impl BarRegion {
    /// The offset into the region of an access of `size` bytes at `offset` into
    /// BAR `bar`, when it falls inside.
    fn locate(&self, bar: usize, offset: u64, size: u8) -> Option<u64> {
        let at = offset.checked_sub(self.offset)?;
        (bar == self.bar && at.checked_add(u64::from(size))? <= self.len).then_some(at)
    }

    fn overlaps(&self, other: &BarRegion) -> bool {
        self.bar == other.bar
            && self.offset < other.offset + other.len
            && other.offset < self.offset + self.len
    }
}

/// The MSI-X state of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msix {
    state: MsixState,
    capability: u16,
    table: BarRegion,
    pba: BarRegion,
}

impl Msix {
    /// Adds an MSI-X capability with `vectors` entries to `config`, with the table
    /// at `table_offset` into BAR `table_bar` and the pending bits at `pba_offset`
    /// into BAR `pba_bar`. Both BARs must already be declared as memory BARs large
    /// enough; offsets are 8-byte aligned and the two structures must not overlap.
    pub fn new(
        config: &mut PciConfigSpace,
        vectors: u16,
        (table_bar, table_offset): (usize, u32),
        (pba_bar, pba_offset): (usize, u32),
    ) -> Result<Msix, PciError> {
        let bad = |reason: &str| PciError::BadMsix(reason.to_owned());
        if vectors == 0 || vectors > MAX_VECTORS {
            return Err(bad("between 1 and 2048 vectors"));
        }
        let table = BarRegion {
            bar: table_bar,
            offset: u64::from(table_offset),
            len: u64::from(vectors) * ENTRY_SIZE,
        };
        let pba = BarRegion {
            bar: pba_bar,
            offset: u64::from(pba_offset),
            len: u64::from(vectors).div_ceil(64) * 8,
        };
        for region in [table, pba] {
            let fits = config.bar(region.bar).is_some_and(|bar| {
                !matches!(bar.kind, BarKind::Io) && region.offset + region.len <= bar.size
            });
            if !fits {
                return Err(bad("table or PBA outside a memory BAR"));
            }
            if !region.offset.is_multiple_of(8) {
                return Err(bad("table or PBA offset not 8-byte aligned"));
            }
        }
        if table.overlaps(&pba) {
            return Err(bad("table and PBA overlap"));
        }
        let mut body = Vec::with_capacity(10);
        body.extend_from_slice(&(vectors - 1).to_le_bytes());
        // BAR indices are below 6 (checked above through `config.bar`).
        body.extend_from_slice(&(table_offset | table_bar as u32).to_le_bytes());
        body.extend_from_slice(&(pba_offset | pba_bar as u32).to_le_bytes());
        let capability = config.add_capability(cap_id::MSIX, &body)?;
        config.set_writable(
            capability + CONTROL,
            &(control::ENABLE | control::FUNCTION_MASK).to_le_bytes(),
        );
        let mut msix = Msix {
            state: MsixState::default(),
            capability,
            table,
            pba,
        };
        msix.reset();
        Ok(msix)
    }

    /// Offset of the capability in configuration space.
    pub fn capability(&self) -> u16 {
        self.capability
    }

    /// Number of vectors.
    pub fn vectors(&self) -> u16 {
        // The table was built with at most MAX_VECTORS entries.
        self.state.entries.len() as u16
    }

    fn control(&self, config: &PciConfigSpace) -> u16 {
        config.get_u16(self.capability + CONTROL)
    }

    /// Whether software enabled MSI-X.
    pub fn enabled(&self, config: &PciConfigSpace) -> bool {
        self.control(config) & control::ENABLE != 0
    }

    /// Whether the function mask is set.
    pub fn function_masked(&self, config: &PciConfigSpace) -> bool {
        self.control(config) & control::FUNCTION_MASK != 0
    }

    fn entry_masked(&self, vector: usize) -> bool {
        self.state
            .entries
            .get(vector)
            .is_none_or(|e| e.vector_control & VECTOR_MASKED != 0)
    }

    /// Whether `vector`'s pending bit is set.
    pub fn is_pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        self.state
            .pending
            .get(v / 64)
            .is_some_and(|w| w >> (v % 64) & 1 != 0)
    }

    fn set_pending(&mut self, vector: usize, pending: bool) {
        if let Some(word) = self.state.pending.get_mut(vector / 64) {
            let bit = 1u64 << (vector % 64);
            if pending {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// Raises `vector`: delivers its message now, or sets its pending bit while it
    /// is masked. Does nothing when MSI-X is disabled (the function uses INTx
    /// then) or the vector does not exist.
    pub fn notify(&mut self, vector: u16, config: &PciConfigSpace, target: Option<&dyn MsiTarget>) {
        let v = usize::from(vector);
        if !self.enabled(config) || v >= self.state.entries.len() {
            return;
        }
        if self.function_masked(config) || self.entry_masked(v) {
            self.set_pending(v, true);
        } else {
            self.deliver(v, target);
        }
    }

    fn deliver(&mut self, vector: usize, target: Option<&dyn MsiTarget>) {
        self.set_pending(vector, false);
        let Some(entry) = self.state.entries.get(vector) else {
            return;
        };
        let message = MsiMessage {
            address: entry.address,
            data: entry.data,
        };
        if let Some(target) = target {
            // A message nobody accepts is lost, as on hardware.
            target.deliver(message);
        }
    }

    /// Delivers every pending vector that is no longer masked; the function calls
    /// it after each configuration write (the enable or function-mask bit may
    /// have changed).
    pub fn config_written(&mut self, config: &PciConfigSpace, target: Option<&dyn MsiTarget>) {
        if !self.enabled(config) || self.function_masked(config) {
            return;
        }
        for vector in 0..self.state.entries.len() {
            if self.is_pending(vector as u16) && !self.entry_masked(vector) {
                self.deliver(vector, target);
            }
        }
    }

    /// A read of the table or the pending bits: `None` when the access is not
    /// MSI-X's (another register of the same BAR). Accesses are 4 or 8 bytes,
    /// naturally aligned; others read as zero.
    pub fn read(&self, bar: usize, offset: u64, size: u8) -> Option<u64> {
        if let Some(at) = self.table.locate(bar, offset, size) {
            // The table region holds exactly one entry per vector.
            let entry = self.state.entries.get((at / ENTRY_SIZE) as usize)?;
            let field = |f: u64| -> u64 {
                match f {
                    entry::ADDRESS_LOW => entry.address & 0xffff_ffff,
                    entry::ADDRESS_HIGH => entry.address >> 32,
                    entry::DATA => u64::from(entry.data),
                    entry::VECTOR_CONTROL => u64::from(entry.vector_control),
                    _ => 0,
                }
            };
            let f = at % ENTRY_SIZE;
            return Some(match size {
                4 if f.is_multiple_of(4) => field(f),
                8 if f.is_multiple_of(8) => field(f) | field(f + 4) << 32,
                _ => 0,
            });
        }
        let at = self.pba.locate(bar, offset, size)?;
        let word = self.state.pending.get((at / 8) as usize).copied()?;
        Some(match size {
            8 if at.is_multiple_of(8) => word,
            4 if at.is_multiple_of(4) => (word >> (8 * (at % 8))) & 0xffff_ffff,
            _ => 0,
        })
    }

    /// A write to the table (the pending bits are read-only); false when the
    /// access is not MSI-X's. Unmasking an entry delivers its pending message.
    pub fn write(
        &mut self,
        bar: usize,
        offset: u64,
        size: u8,
        value: u64,
        config: &PciConfigSpace,
        target: Option<&dyn MsiTarget>,
    ) -> bool {
        if self.pba.locate(bar, offset, size).is_some() {
            return true;
        }
        let Some(at) = self.table.locate(bar, offset, size) else {
            return false;
        };
        let vector = (at / ENTRY_SIZE) as usize;
        let f = at % ENTRY_SIZE;
        let fields: &[(u64, u32)] = match size {
            4 if f.is_multiple_of(4) => &[(f, value as u32)],
            8 if f.is_multiple_of(8) => &[(f, value as u32), (f + 4, (value >> 32) as u32)],
            _ => &[],
        };
        let Some(entry) = self.state.entries.get_mut(vector) else {
            return true;
        };
        for &(f, v) in fields {
            match f {
                entry::ADDRESS_LOW => {
                    entry.address = (entry.address & !0xffff_ffff) | u64::from(v);
                }
                entry::ADDRESS_HIGH => {
                    entry.address = (entry.address & 0xffff_ffff) | u64::from(v) << 32;
                }
                entry::DATA => entry.data = v,
                // Only the mask bit is defined; the rest is reserved, zero.
                entry::VECTOR_CONTROL => entry.vector_control = v & VECTOR_MASKED,
                _ => {}
            }
        }
        if self.is_pending(vector as u16)
            && !self.entry_masked(vector)
            && self.enabled(config)
            && !self.function_masked(config)
        {
            self.deliver(vector, target);
        }
        true
    }

    /// Back to power-on: every entry cleared and masked, nothing pending. (The
    /// capability's bits go back with the configuration space.)
    pub fn reset(&mut self) {
        let vectors = if self.state.entries.is_empty() {
            (self.table.len / ENTRY_SIZE) as usize
        } else {
            self.state.entries.len()
        };
        self.state = MsixState {
            entries: vec![MsixEntry::default(); vectors],
            pending: vec![0; vectors.div_ceil(64)],
        };
    }

    /// The table and pending bits.
    pub fn state(&self) -> MsixState {
        self.state.clone()
    }

    /// Takes a state saved from a function with as many vectors; on an error
    /// nothing changes.
    pub fn restore(&mut self, state: &MsixState) -> Result<(), String> {
        let vectors = self.state.entries.len();
        if state.entries.len() != vectors || state.pending.len() != vectors.div_ceil(64) {
            return Err(format!(
                "MSI-X state of {} vectors, the function has {vectors}",
                state.entries.len()
            ));
        }
        let stray = state
            .pending
            .last()
            .is_some_and(|w| !vectors.is_multiple_of(64) && w >> (vectors % 64) != 0);
        if stray {
            return Err("pending bits set past the last vector".to_owned());
        }
        self.state = state.clone();
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::pci::config::{PciIds, bar_offset, command};

    /// An MSI target that records what it receives.
    #[derive(Debug, Default)]
    pub(crate) struct RecordingTarget(pub(crate) Mutex<Vec<MsiMessage>>);

    impl RecordingTarget {
        pub(crate) fn take(&self) -> Vec<MsiMessage> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    impl MsiTarget for RecordingTarget {
        fn deliver(&self, message: MsiMessage) -> bool {
            self.0.lock().unwrap().push(message);
            true
        }
    }

    fn setup(vectors: u16) -> (PciConfigSpace, Msix) {
        let mut config = PciConfigSpace::new(PciIds::default());
        config
            .add_bar(
                1,
                BarKind::Memory32 {
                    prefetchable: false,
                },
                0x1000,
            )
            .unwrap();
        let msix = Msix::new(&mut config, vectors, (1, 0), (1, 0x800)).unwrap();
        config.write(bar_offset(1), 4, 0x4000_0000);
        config.write(
            crate::pci::config::reg::COMMAND,
            2,
            u32::from(command::MEMORY_SPACE | command::BUS_MASTER),
        );
        (config, msix)
    }

    fn set_control(config: &mut PciConfigSpace, msix: &Msix, bits: u16) {
        config.write(msix.capability() + 2, 2, u32::from(bits));
    }

    #[test]
    fn capability_describes_the_table() {
        let (mut config, msix) = setup(3);
        let cap = msix.capability();
        assert_eq!(config.read(cap, 1), 0x11);
        assert_eq!(config.read(cap + 2, 2), 2, "table size - 1, disabled");
        assert_eq!(config.read(cap + 4, 4), 1, "table at 0 in BAR 1");
        assert_eq!(config.read(cap + 8, 4), 0x801, "PBA at 0x800 in BAR 1");
        config.write(cap + 2, 2, 0xffff);
        assert_eq!(
            config.read(cap + 2, 2),
            0xc002,
            "only enable and mask write"
        );
        assert!(msix.enabled(&config) && msix.function_masked(&config));
        // Entries come out of reset masked.
        assert_eq!(msix.read(1, 0xc, 4), Some(1));
        assert_eq!(msix.read(1, 0x2c, 4), Some(1));
        assert_eq!(msix.read(1, 0x30, 4), None, "past the table");
        assert_eq!(msix.read(0, 0, 4), None, "another BAR");
        let mut bad = PciConfigSpace::new(PciIds::default());
        assert!(
            Msix::new(&mut bad, 1, (0, 0), (0, 0x800)).is_err(),
            "no BAR"
        );
        bad.add_bar(
            0,
            BarKind::Memory32 {
                prefetchable: false,
            },
            0x1000,
        )
        .unwrap();
        assert!(Msix::new(&mut bad, 0, (0, 0), (0, 0x800)).is_err());
        assert!(
            Msix::new(&mut bad, 200, (0, 0), (0, 0x800)).is_err(),
            "overlap"
        );
        assert!(Msix::new(&mut bad, 4, (0, 4), (0, 0x800)).is_err());
        assert!(Msix::new(&mut bad, 4, (0, 0), (0, 0x1000)).is_err());
    }

    #[test]
    fn table_programming_and_delivery() {
        let (mut config, mut msix) = setup(3);
        let target = RecordingTarget::default();
        assert!(msix.write(1, 0x10, 4, 0xfee0_0000, &config, Some(&target)));
        assert!(msix.write(1, 0x14, 4, 0x1, &config, Some(&target)));
        assert!(msix.write(1, 0x18, 8, 0x41, &config, Some(&target)));
        assert_eq!(msix.read(1, 0x10, 8), Some(0x1_fee0_0000));
        assert_eq!(msix.read(1, 0x18, 8), Some(0x41), "data, unmasked");
        // Disabled: nothing happens and nothing is pending.
        msix.notify(1, &config, Some(&target));
        assert!(target.take().is_empty());
        assert!(!msix.is_pending(1));
        set_control(&mut config, &msix, control::ENABLE);
        msix.notify(1, &config, Some(&target));
        let expected = MsiMessage {
            address: 0x1_fee0_0000,
            data: 0x41,
        };
        assert_eq!(target.take(), vec![expected]);
        // Vectors past the table are ignored; odd accesses read 0.
        msix.notify(7, &config, Some(&target));
        assert_eq!(msix.read(1, 0x12, 4), Some(0));
        assert_eq!(msix.read(1, 0x10, 2), Some(0));
        assert!(target.take().is_empty());
    }

    #[test]
    fn masked_vectors_pend_until_unmasked() {
        let (mut config, mut msix) = setup(70);
        let target = RecordingTarget::default();
        set_control(&mut config, &msix, control::ENABLE);
        // Vector 66: still masked after reset.
        msix.write(1, 66 * 16, 4, 0xfee0_1000, &config, Some(&target));
        msix.write(1, 66 * 16 + 8, 4, 0x66, &config, Some(&target));
        msix.notify(66, &config, Some(&target));
        assert!(target.take().is_empty());
        assert!(msix.is_pending(66));
        assert_eq!(msix.read(1, 0x808, 8), Some(1 << 2), "PBA word 1, bit 2");
        assert_eq!(msix.read(1, 0x808, 4), Some(1 << 2));
        assert_eq!(msix.read(1, 0x80c, 4), Some(0));
        // The PBA is read-only.
        assert!(msix.write(1, 0x808, 8, 0, &config, Some(&target)));
        assert!(msix.is_pending(66));
        // Unmasking the entry delivers once.
        msix.write(1, 66 * 16 + 12, 4, 0, &config, Some(&target));
        let delivered = MsiMessage {
            address: 0xfee0_1000,
            data: 0x66,
        };
        assert_eq!(target.take(), vec![delivered]);
        assert!(!msix.is_pending(66));
        // The function mask holds it back the same way.
        set_control(&mut config, &msix, control::ENABLE | control::FUNCTION_MASK);
        msix.notify(66, &config, Some(&target));
        msix.notify(66, &config, Some(&target));
        assert!(target.take().is_empty());
        set_control(&mut config, &msix, control::ENABLE);
        msix.config_written(&config, Some(&target));
        assert_eq!(target.take(), vec![delivered], "one message for two raises");
        // Without a target (no bus mastering, no controller) the message is lost.
        msix.notify(66, &config, None);
        assert!(!msix.is_pending(66));
    }

    #[test]
    fn reset_and_restore() {
        let (mut config, mut msix) = setup(3);
        let target = RecordingTarget::default();
        set_control(&mut config, &msix, control::ENABLE);
        msix.write(1, 0x20, 4, 0x1234, &config, Some(&target));
        msix.notify(2, &config, Some(&target));
        let saved = msix.state();
        assert!(msix.is_pending(2));
        msix.reset();
        assert!(!msix.is_pending(2));
        assert_eq!(msix.read(1, 0x20, 4), Some(0));
        assert_eq!(msix.read(1, 0x2c, 4), Some(1));
        msix.restore(&saved).unwrap();
        assert_eq!(msix.state(), saved);
        let mut bad = saved.clone();
        bad.entries.pop();
        assert!(msix.restore(&bad).is_err());
        let mut bad = saved.clone();
        bad.pending[0] = 1 << 5;
        assert!(msix.restore(&bad).is_err());
        assert_eq!(msix.state(), saved);
    }
}
