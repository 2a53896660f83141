//! Address newtypes, so a guest-physical address cannot pass for a virtual one.

use std::fmt;

/// A guest-physical address: what the bus decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GuestPhysAddr(pub u64);

impl GuestPhysAddr {
    /// The raw address.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// This address plus `offset`, or `None` on overflow.
    pub fn checked_add(self, offset: u64) -> Option<GuestPhysAddr> {
        self.0.checked_add(offset).map(GuestPhysAddr)
    }
}

impl fmt::Display for GuestPhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A port in the 64 KiB I/O port space (x86 `in`/`out`, PCI I/O BARs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PioPort(pub u16);

impl PioPort {
    /// The raw port number.
    pub const fn raw(self) -> u16 {
        self.0
    }
}

impl fmt::Display for PioPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}
