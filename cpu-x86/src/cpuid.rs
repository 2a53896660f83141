//! CPUID: what a model says about itself. It advertises exactly what the
//! interpreter implements, no more: a guest that tests a bit may rely on it.

use crate::model::{CpuModel, Features, Generation, Vendor};

/// Leaf 1 EDX bits.
mod edx1 {
    pub const FPU: u32 = 1 << 0;
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
    pub const MMX: u32 = 1 << 23;
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
}

/// Leaf 1 ECX bits.
mod ecx1 {
    pub const SSE3: u32 = 1 << 0;
    pub const SSSE3: u32 = 1 << 9;
    pub const CX16: u32 = 1 << 13;
    pub const PCID: u32 = 1 << 17;
    pub const SSE4_1: u32 = 1 << 19;
    pub const SSE4_2: u32 = 1 << 20;
    pub const POPCNT: u32 = 1 << 23;
    pub const XSAVE: u32 = 1 << 26;
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// Leaf 7 bits.
mod leaf7 {
    pub const EBX_FSGSBASE: u32 = 1 << 0;
    pub const EBX_BMI1: u32 = 1 << 3;
    pub const EBX_SMEP: u32 = 1 << 7;
    pub const EBX_BMI2: u32 = 1 << 8;
    pub const EBX_INVPCID: u32 = 1 << 10;
    pub const EBX_SMAP: u32 = 1 << 20;
    pub const ECX_UMIP: u32 = 1 << 2;
    pub const ECX_PKU: u32 = 1 << 3;
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
    /// The leaf-1 EDX bits AMD parts repeat here.
    pub const AMD_MIRRORED: u32 = 0x0183_f3ff;
}

const BRAND: &[u8; 48] = b"Turing x86-64 interpreter\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn vendor_string(vendor: Vendor) -> &'static [u8; 12] {
    match vendor {
        Vendor::Intel => b"GenuineIntel",
        Vendor::Amd => b"AuthenticAMD",
    }
}

/// `bit` if the model has `feature`.
fn bit(model: &CpuModel, feature: Features, bit: u32) -> u32 {
    if model.features.has(feature) { bit } else { 0 }
}

/// EAX, EBX, ECX, EDX of CPUID leaf `leaf`, subleaf `sub`, for `model`.
pub fn cpuid(model: &CpuModel, leaf: u32, sub: u32) -> [u32; 4] {
    match model.generation {
        // The 286 has no CPUID (the decoder refuses it); nothing to say.
        Generation::I286 => [0; 4],
        Generation::X86_64 => x86_64(model, leaf, sub),
    }
}

/// Leaf 1's EAX: family, model and stepping in CPUID's split encoding.
fn signature(model: &CpuModel) -> u32 {
    let (family, number, stepping) = model.signature;
    let (family, number, stepping) = (u32::from(family), u32::from(number), u32::from(stepping));
    let (base_family, extended_family) = if family > 15 {
        (15, family - 15)
    } else {
        (family, 0)
    };
    (extended_family << 20)
        | ((number >> 4) << 16)
        | (base_family << 8)
        | ((number & 15) << 4)
        | stepping
}

fn leaf1_edx(model: &CpuModel) -> u32 {
    let paging =
        edx1::PSE | edx1::MSR | edx1::PAE | edx1::MTRR | edx1::PGE | edx1::PAT | edx1::PSE36;
    bit(model, Features::FPU, edx1::FPU)
        | bit(model, Features::TSC, edx1::TSC)
        | bit(model, Features::CX8, edx1::CX8)
        | bit(model, Features::SEP, edx1::SEP)
        | bit(model, Features::CMOV, edx1::CMOV)
        | bit(model, Features::CLFSH, edx1::CLFSH)
        | bit(model, Features::MMX, edx1::MMX)
        | bit(model, Features::FXSR, edx1::FXSR)
        | bit(model, Features::SSE, edx1::SSE)
        | bit(model, Features::SSE2, edx1::SSE2)
        | bit(model, Features::PAGING, paging)
}

fn x86_64(model: &CpuModel, leaf: u32, sub: u32) -> [u32; 4] {
    let highest: u32 = match model.vendor {
        Vendor::Intel => 0xb,
        Vendor::Amd => 7,
    };
    const HIGHEST_EXTENDED: u32 = 0x8000_0008;
    let vendor = vendor_string(model.vendor);
    match leaf {
        0 => [
            highest,
            word(&vendor[0..]),
            word(&vendor[8..]),
            word(&vendor[4..]),
        ],
        1 => {
            let ecx = bit(model, Features::SSE3, ecx1::SSE3)
                | bit(model, Features::SSSE3, ecx1::SSSE3)
                | bit(model, Features::CX16, ecx1::CX16)
                | bit(model, Features::SSE4_1, ecx1::SSE4_1)
                | bit(model, Features::SSE4_2, ecx1::SSE4_2)
                | bit(model, Features::POPCNT, ecx1::POPCNT)
                | bit(model, Features::PCID, ecx1::PCID)
                | bit(model, Features::XSAVE, ecx1::XSAVE)
                | ecx1::HYPERVISOR;
            // CLFLUSH line size 8 × 8 bytes; one logical processor.
            let ebx = (8 << 8) | (1 << 16);
            [signature(model), ebx, ecx, leaf1_edx(model)]
        }
        // Cache descriptors: 0xFF says "see leaf 4".
        2 if model.vendor == Vendor::Intel => [0x00ff_0001, 0, 0, 0],
        4 if model.vendor == Vendor::Intel => intel_cache(sub),
        7 if sub == 0 => [
            0,
            bit(model, Features::SMEP, leaf7::EBX_SMEP)
                | bit(model, Features::SMAP, leaf7::EBX_SMAP)
                | bit(model, Features::FSGSBASE, leaf7::EBX_FSGSBASE)
                | bit(model, Features::BMI1, leaf7::EBX_BMI1)
                | bit(model, Features::BMI2, leaf7::EBX_BMI2)
                | bit(model, Features::PCID, leaf7::EBX_INVPCID),
            bit(model, Features::UMIP, leaf7::ECX_UMIP)
                | bit(model, Features::RDPID, leaf7::ECX_RDPID)
                | bit(model, Features::PKU, leaf7::ECX_PKU),
            0,
        ],
        0xd if model.features.has(Features::XSAVE) => crate::xsave::cpuid_leaf(model, sub),
        // Topology: one thread per core, one core per package.
        0xb if model.vendor == Vendor::Intel => match sub {
            0 => [0, 1, 0x100, 0],
            1 => [0, 1, 0x201, 0],
            n => [0, 0, n & 0xff, 0],
        },
        0x8000_0000 => [
            HIGHEST_EXTENDED,
            word(&vendor[0..]),
            word(&vendor[8..]),
            word(&vendor[4..]),
        ],
        0x8000_0001 => {
            let ecx = bit(model, Features::LAHF_LM, ext1::ECX_LAHF)
                | bit(model, Features::LZCNT, ext1::ECX_ABM);
            let mut edx = bit(model, Features::SYSCALL, ext1::EDX_SYSCALL)
                | bit(model, Features::NX, ext1::EDX_NX)
                | bit(model, Features::PAGE1GB, ext1::EDX_PAGE1GB)
                | bit(model, Features::RDTSCP, ext1::EDX_RDTSCP)
                | bit(model, Features::LM, ext1::EDX_LM);
            let mut eax = 0;
            if model.vendor == Vendor::Amd {
                edx |= leaf1_edx(model) & ext1::AMD_MIRRORED;
                eax = signature(model);
            }
            [eax, 0, ecx, edx]
        }
        0x8000_0002..=0x8000_0004 => {
            let at = (leaf - 0x8000_0002) as usize * 16;
            let b = &BRAND[at..at + 16];
            [word(&b[0..]), word(&b[4..]), word(&b[8..]), word(&b[12..])]
        }
        // AMD's L1 (64 KiB data and code, 2-way, 64-byte lines) and L2/L3
        // (512 KiB 16-way; 2 MiB 32-way) descriptions.
        0x8000_0005 if model.vendor == Vendor::Amd => {
            let l1 = (64 << 24) | (2 << 16) | (1 << 8) | 64;
            [0xff20_ff20, 0xff20_ff20, l1, l1]
        }
        0x8000_0006 if model.vendor == Vendor::Amd => [
            0,
            0x4200_4200,
            (512 << 16) | (8 << 12) | 64,
            (4 << 18) | (10 << 12) | 64,
        ],
        0x8000_0008 => [u32::from(model.address_bits) | (48 << 8), 0, 0, 0],
        // Intel parts answer leaves past the highest basic leaf as the
        // highest; in-range leaves without content answer zeros.
        l if l > highest && l < 0x8000_0000 && model.vendor == Vendor::Intel => {
            x86_64(model, highest, sub)
        }
        _ => [0; 4],
    }
}

/// Leaf 4 on Intel parts: one cache level per subleaf (L1 data, L1 code,
/// L2, L3), each shared by one thread, then a null entry.
fn intel_cache(sub: u32) -> [u32; 4] {
    // (type: 1 data, 2 code, 3 unified; level; ways; sets)
    let (kind, level, ways, sets) = match sub {
        0 => (1, 1, 8, 64),
        1 => (2, 1, 8, 64),
        2 => (3, 2, 16, 1024),
        3 => (3, 3, 16, 16384),
        _ => return [0; 4],
    };
    let eax = kind | (level << 5) | (1 << 8);
    let ebx = ((ways - 1) << 22) | 63;
    let edx = if level == 3 { 1 << 1 } else { 0 };
    [eax, ebx, sets - 1, edx]
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
        assert_eq!(&vendor, b"GenuineIntel");
        let mut brand = Vec::new();
        for leaf in 0x8000_0002..=0x8000_0004 {
            for r in cpuid(&m, leaf, 0) {
                brand.extend_from_slice(&r.to_le_bytes());
            }
        }
        assert!(brand.starts_with(b"Turing x86-64 interpreter"));
    }

    #[test]
    fn every_x86_64_model_advertises_the_baseline_linux_requires() {
        for m in CpuModel::ALL
            .iter()
            .filter(|m| m.generation == Generation::X86_64)
        {
            assert_ne!(cpuid(m, 0x8000_0001, 0)[3] & ext1::EDX_LM, 0, "{}", m.name);
            let edx = cpuid(m, 1, 0)[3];
            for b in [
                edx1::FPU,
                edx1::CX8,
                edx1::CMOV,
                edx1::FXSR,
                edx1::MMX,
                edx1::SSE,
                edx1::SSE2,
                edx1::PAE,
            ] {
                assert_ne!(edx & b, 0, "{} bit {b:#x}", m.name);
            }
        }
    }

    #[test]
    fn the_amd_model_says_so_and_mirrors_leaf_1() {
        let m = CpuModel::OPTERON;
        let [_, b, c, d] = cpuid(&m, 0, 0);
        let mut vendor = Vec::new();
        for r in [b, d, c] {
            vendor.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&vendor, b"AuthenticAMD");
        assert_eq!(cpuid(&m, 1, 0)[0] >> 8 & 0xf, 15, "family 0x10 is extended");
        assert_eq!(cpuid(&m, 1, 0)[0] >> 20 & 0xff, 1);
        assert_ne!(cpuid(&m, 0x8000_0001, 0)[3] & edx1::FPU, 0);
    }

    #[test]
    fn the_default_lacks_what_max_adds() {
        let (v2, max) = (CpuModel::DEFAULT, CpuModel::MAX);
        assert_eq!(cpuid(&v2, 7, 0)[1] & leaf7::EBX_SMEP, 0);
        assert_ne!(cpuid(&max, 7, 0)[1] & leaf7::EBX_SMEP, 0);
        assert_ne!(cpuid(&v2, 1, 0)[2] & ecx1::SSE4_2, 0);
    }
}
