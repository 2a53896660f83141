//! CPUID: what a model says about itself. It advertises exactly what the
//! interpreter implements, no more: a guest that tests a bit may rely on it.

use crate::model::{CpuModel, Generation};

/// Leaf 1 EDX bits.
mod edx1 {
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const CX8: u32 = 1 << 8;
    pub const SEP: u32 = 1 << 11;
    pub const MTRR: u32 = 1 << 12;
    pub const PGE: u32 = 1 << 13;
    pub const CMOV: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const PSE36: u32 = 1 << 17;
    pub const CLFSH: u32 = 1 << 19;
}

/// Leaf 1 ECX bits.
mod ecx1 {
    pub const CX16: u32 = 1 << 13;
    pub const POPCNT: u32 = 1 << 23;
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// Leaf 7 bits.
mod leaf7 {
    pub const EBX_SMEP: u32 = 1 << 7;
    pub const EBX_SMAP: u32 = 1 << 20;
    pub const ECX_UMIP: u32 = 1 << 2;
    pub const ECX_RDPID: u32 = 1 << 22;
}

/// Leaf 0x8000_0001 bits.
mod ext1 {
    pub const ECX_LAHF: u32 = 1 << 0;
    pub const ECX_ABM: u32 = 1 << 5;
    pub const EDX_SYSCALL: u32 = 1 << 11;
    pub const EDX_NX: u32 = 1 << 20;
    pub const EDX_PAGE1GB: u32 = 1 << 26;
    pub const EDX_RDTSCP: u32 = 1 << 27;
    pub const EDX_LM: u32 = 1 << 29;
}

const VENDOR: &[u8; 12] = b"GenuineIntel";
const BRAND: &[u8; 48] = b"Turing x86-64 interpreter\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// EAX, EBX, ECX, EDX of CPUID leaf `leaf`, subleaf `sub`, for `model`.
pub fn cpuid(model: &CpuModel, leaf: u32, sub: u32) -> [u32; 4] {
    match model.generation {
        // The 286 has no CPUID (the decoder refuses it); nothing to say.
        Generation::I286 => [0; 4],
        Generation::X86_64 => max(model, leaf, sub),
    }
}

fn max(model: &CpuModel, leaf: u32, sub: u32) -> [u32; 4] {
    const HIGHEST: u32 = 7;
    const HIGHEST_EXTENDED: u32 = 0x8000_0008;
    match leaf {
        0 => [
            HIGHEST,
            word(&VENDOR[0..]),
            word(&VENDOR[8..]),
            word(&VENDOR[4..]),
        ],
        1 => {
            // Family 6, model 0x55 (a Xeon-class part), stepping 4.
            let signature = (6 << 8) | (5 << 4) | (5 << 16) | 4;
            let edx = edx1::PSE
                | edx1::TSC
                | edx1::MSR
                | edx1::PAE
                | edx1::CX8
                | edx1::SEP
                | edx1::MTRR
                | edx1::PGE
                | edx1::CMOV
                | edx1::PAT
                | edx1::PSE36
                | edx1::CLFSH;
            let ecx = ecx1::CX16 | ecx1::POPCNT | ecx1::HYPERVISOR;
            // CLFLUSH line size 8 × 8 bytes; one logical processor.
            let ebx = (8 << 8) | (1 << 16);
            [signature, ebx, ecx, edx]
        }
        7 if sub == 0 => [
            0,
            leaf7::EBX_SMEP | leaf7::EBX_SMAP,
            leaf7::ECX_UMIP | leaf7::ECX_RDPID,
            0,
        ],
        0x8000_0000 => [HIGHEST_EXTENDED, 0, 0, 0],
        0x8000_0001 => [
            0,
            0,
            ext1::ECX_LAHF | ext1::ECX_ABM,
            ext1::EDX_SYSCALL | ext1::EDX_NX | ext1::EDX_PAGE1GB | ext1::EDX_RDTSCP | ext1::EDX_LM,
        ],
        0x8000_0002..=0x8000_0004 => {
            let at = (leaf - 0x8000_0002) as usize * 16;
            let b = &BRAND[at..at + 16];
            [word(&b[0..]), word(&b[4..]), word(&b[8..]), word(&b[12..])]
        }
        0x8000_0008 => [u32::from(model.address_bits) | (48 << 8), 0, 0, 0],
        // Leaves past the highest answer as the highest basic leaf does, as
        // Intel parts do; leaves in range without content answer zeros.
        l if l > HIGHEST && l < 0x8000_0000 => max(model, HIGHEST, sub),
        _ => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_and_brand_read_back() {
        let m = CpuModel::MAX;
        let [_, b, c, d] = cpuid(&m, 0, 0);
        let mut vendor = Vec::new();
        for r in [b, d, c] {
            vendor.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&vendor, VENDOR);
        let mut brand = Vec::new();
        for leaf in 0x8000_0002..=0x8000_0004 {
            for r in cpuid(&m, leaf, 0) {
                brand.extend_from_slice(&r.to_le_bytes());
            }
        }
        assert!(brand.starts_with(b"Turing x86-64 interpreter"));
    }

    #[test]
    fn advertises_long_mode_and_not_the_fpu() {
        let m = CpuModel::MAX;
        assert_ne!(cpuid(&m, 0x8000_0001, 0)[3] & ext1::EDX_LM, 0);
        // x87 and SSE are not implemented yet, so they are not advertised.
        assert_eq!(cpuid(&m, 1, 0)[3] & 1, 0);
        assert_eq!(cpuid(&m, 1, 0)[3] & (1 << 25), 0);
    }
}
