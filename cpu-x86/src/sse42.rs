//! SSE4.2's string compares (PCMPESTRI, PCMPESTRM, PCMPISTRI, PCMPISTRM)
//! and CRC32.
//!
//! The string compares follow the SDM's description in three steps: every
//! element of the first operand (the "set", "ranges" or "needle") against
//! every element of the second (the "string"), with elements past either
//! string's length forced true or false as the aggregation says; the
//! aggregation into one bit per string element; and the polarity. The
//! result is then an index or a mask.

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Operand};
use crate::state::flags::{CF, OF, SF, ZF};

/// The result of a string compare: one bit per element of the second
/// operand, and the RFLAGS status bits it sets (AF and PF always clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringMatch {
    /// IntRes2 in the SDM's terms.
    pub result: u16,
    /// CF, ZF, SF and OF as RFLAGS bits.
    pub flags: u64,
}

/// Elements in a register: 16 bytes or 8 words.
fn elements(words: bool) -> usize {
    if words { 8 } else { 16 }
}

/// The length of a string in a register: up to its first null element.
pub fn implicit_length(v: u128, words: bool) -> usize {
    let n = elements(words);
    let bits = 128 / n as u32;
    (0..n)
        .find(|&k| (v >> (bits * k as u32)) as u16 & mask(words) == 0)
        .unwrap_or(n)
}

/// The length an explicit-length form takes from EAX or EDX (RAX or RDX):
/// the absolute value, at most the element count.
pub fn explicit_length(v: i64, words: bool) -> usize {
    v.unsigned_abs().min(elements(words) as u64) as usize
}

fn mask(words: bool) -> u16 {
    if words { 0xffff } else { 0xff }
}

/// Compares the strings `a` (`len_a` elements valid) and `b` (`len_b`) as
/// immediate `imm` says: bits 0–1 the element format (unsigned bytes,
/// unsigned words, signed bytes, signed words), 2–3 the aggregation (equal
/// any, ranges, equal each, equal ordered), 4–5 the polarity.
pub fn compare_strings(a: u128, b: u128, imm: u8, len_a: usize, len_b: usize) -> StringMatch {
    let words = imm & 1 != 0;
    let signed = imm & 2 != 0;
    let n = elements(words);
    let element = |v: u128, k: usize| -> i64 {
        if words {
            let x = (v >> (16 * k)) as u16;
            if signed {
                i64::from(x as i16)
            } else {
                i64::from(x)
            }
        } else {
            let x = (v >> (8 * k)) as u8;
            if signed {
                i64::from(x as i8)
            } else {
                i64::from(x)
            }
        }
    };
    let xa: Vec<i64> = (0..n).map(|k| element(a, k)).collect();
    let xb: Vec<i64> = (0..n).map(|k| element(b, k)).collect();
    let mut aggregate = 0u16;
    for j in 0..n {
        let hit = match (imm >> 2) & 3 {
            // Equal any: string element j is in the set (both valid).
            0 => j < len_b && xa[..len_a].contains(&xb[j]),
            // Ranges: j lies in one of the set's (low, high) pairs; a pair
            // whose high end is past the length does not count.
            1 => {
                j < len_b
                    && (0..n)
                        .step_by(2)
                        .any(|i| i + 1 < len_a && xa[i] <= xb[j] && xb[j] <= xa[i + 1])
            }
            // Equal each: elements pair up; past both lengths they match,
            // past one they do not.
            2 => match (j < len_a, j < len_b) {
                (true, true) => xa[j] == xb[j],
                (false, false) => true,
                _ => false,
            },
            // Equal ordered: the needle `a` starts at j. Needle elements past
            // its length match anything; string elements past its length
            // match nothing valid.
            _ => (0..n - j).all(|i| {
                let k = j + i;
                if i >= len_a {
                    true
                } else {
                    k < len_b && xa[i] == xb[k]
                }
            }),
        };
        if hit {
            aggregate |= 1 << j;
        }
    }
    let all = ((1u32 << n) - 1) as u16;
    let valid_b = ((1u32 << len_b) - 1) as u16;
    let result = match (imm >> 4) & 3 {
        1 => !aggregate & all,
        // Masked negative: only elements inside the string are inverted.
        3 => aggregate ^ valid_b,
        _ => aggregate,
    };
    let mut flags = 0;
    if result != 0 {
        flags |= CF;
    }
    if len_b < n {
        flags |= ZF;
    }
    if len_a < n {
        flags |= SF;
    }
    if result & 1 != 0 {
        flags |= OF;
    }
    StringMatch { result, flags }
}

/// The PCMPxSTRI index: the lowest set bit of the result, or the highest
/// (immediate bit 6); the element count when there is none.
pub fn index_of(result: u16, imm: u8) -> u32 {
    let n = elements(imm & 1 != 0) as u32;
    if result == 0 {
        n
    } else if imm & 0x40 != 0 {
        15 - result.leading_zeros()
    } else {
        result.trailing_zeros()
    }
}

/// The PCMPxSTRM mask: the result's bits, or (immediate bit 6) each bit
/// widened to a whole element.
pub fn mask_of(result: u16, imm: u8) -> u128 {
    if imm & 0x40 == 0 {
        return u128::from(result);
    }
    let words = imm & 1 != 0;
    let n = elements(words);
    let bits = 128 / n as u32;
    let element = u128::from(mask(words));
    (0..n)
        .filter(|&k| result >> k & 1 != 0)
        .fold(0, |acc, k| acc | (element << (bits * k as u32)))
}

/// CRC-32C (the Castagnoli polynomial, bit-reflected) of the low `bytes`
/// bytes of `data`, continuing from `crc`, with no inversion before or after
/// (as the instruction does).
pub fn crc32c(crc: u32, data: u64, bytes: u8) -> u32 {
    const POLY: u32 = 0x82f6_3b78;
    let mut crc = crc;
    for k in 0..u32::from(bytes) {
        crc ^= u32::from((data >> (8 * k)) as u8);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (POLY & (crc & 1).wrapping_neg());
        }
    }
    crc
}

impl Cpu {
    /// CRC32 r32/r64, r/m: not an SSE instruction, so CR0 and CR4 do not
    /// gate it. A 64-bit destination gets a zero upper half.
    pub(crate) fn crc32(&mut self, i: &Insn) -> Result<(), Fault> {
        let [dst, src, _] = i.operands;
        let bytes = match src {
            Operand::Gpr { size, .. } | Operand::Mem(size) => size,
            Operand::HighByte(_) => 1,
            _ => return Err(Fault::UD),
        };
        let data = self.read_operand(i, src)?;
        let crc = self.read_operand(i, dst)? as u32;
        self.write_operand(i, dst, u64::from(crc32c(crc, data, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> u128 {
        let mut bytes = [0u8; 16];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        u128::from_le_bytes(bytes)
    }

    fn words(values: &[i16]) -> u128 {
        values
            .iter()
            .enumerate()
            .fold(0, |acc, (k, &v)| acc | (u128::from(v as u16) << (16 * k)))
    }

    /// PCMPISTRx on two texts.
    fn implicit(a: &str, b: &str, imm: u8) -> StringMatch {
        let (a, b) = (text(a), text(b));
        let words = imm & 1 != 0;
        compare_strings(
            a,
            b,
            imm,
            implicit_length(a, words),
            implicit_length(b, words),
        )
    }

    #[test]
    fn equal_any_finds_set_members() {
        let m = implicit("aeiou", "hello world", 0x00);
        assert_eq!(m.result, (1 << 1) | (1 << 4) | (1 << 7));
        assert_eq!(m.flags, CF | ZF | SF);
        assert_eq!(index_of(m.result, 0x00), 1);
        assert_eq!(index_of(m.result, 0x40), 7);
        // Negative polarity: everything else, past the string too.
        let m = implicit("aeiou", "hello world", 0x10);
        assert_eq!(m.result, !((1 << 1) | (1 << 4) | (1 << 7)));
        assert_eq!(m.flags & OF, OF);
        // Masked negative: only inside the string.
        let m = implicit("aeiou", "hello world", 0x30);
        assert_eq!(m.result, 0x7ff & !((1 << 1) | (1 << 4) | (1 << 7)));
        // No match: the index is the element count, CF clear.
        let m = implicit("xyz", "hello", 0x00);
        assert_eq!((m.result, index_of(m.result, 0)), (0, 16));
        assert_eq!(m.flags & CF, 0);
    }

    #[test]
    fn ranges_need_whole_pairs() {
        let m = implicit("az", "Hello1", 0x04);
        assert_eq!(m.result, 0b11110);
        // An odd-length set leaves its last low bound without a high one.
        let m = implicit("azA", "Hello1", 0x04);
        assert_eq!(m.result, 0b11110);
        // Signed words: [-5, 5] holds -5, 0 and 5.
        let a = words(&[-5, 5]);
        let b = words(&[-6, -5, 0, 5, 6]);
        let m = compare_strings(a, b, 0x07, 2, 5);
        assert_eq!(m.result, 0b01110);
        assert_eq!(m.flags, CF | ZF | SF);
        // The same bits unsigned: -5 is 0xfffb, so only 5 and 6 are out.
        let m = compare_strings(a, b, 0x05, 2, 5);
        assert_eq!(m.result, 0b00000);
    }

    #[test]
    fn equal_each_matches_past_both_ends() {
        let m = implicit("abcd", "abxd", 0x08);
        assert_eq!(m.result, 0xfffb);
        assert_eq!(m.flags, CF | ZF | SF | OF);
        // strcmp's mode: negative polarity, the first difference.
        let m = implicit("abcd", "abxd", 0x18);
        assert_eq!(index_of(m.result, 0x18), 2);
        let m = implicit("abcd", "abxd", 0x38);
        assert_eq!(m.result, 0xfff4);
        // Different lengths differ where the shorter one ends.
        let m = implicit("abc", "abcd", 0x18);
        assert_eq!(m.result, 1 << 3);
    }

    #[test]
    fn equal_ordered_finds_substrings() {
        let m = implicit("lo", "hello world", 0x0c);
        assert_eq!(m.result, 1 << 3);
        // A needle running off the string's end does not match there...
        let m = implicit("ldx", "hello world", 0x0c);
        assert_eq!(m.result, 0);
        // ...but a prefix of it at the very end of a full register does.
        let full = text("0123456789abcdef");
        let m = compare_strings(text("fg"), full, 0x0c, 2, 16);
        assert_eq!(m.result, 1 << 15);
        // An empty needle matches everywhere.
        let m = compare_strings(text(""), text("abc"), 0x0c, 0, 3);
        assert_eq!(m.result, 0xffff);
        assert_eq!(m.flags, CF | ZF | SF | OF);
    }

    #[test]
    fn lengths_and_masks() {
        assert_eq!(explicit_length(-3, false), 3);
        assert_eq!(explicit_length(-100, true), 8);
        assert_eq!(explicit_length(i64::MIN, false), 16);
        assert_eq!(implicit_length(text("abc"), false), 3);
        assert_eq!(implicit_length(0x0041_0000_0042, true), 1);
        assert_eq!(implicit_length(u128::MAX, true), 8);
        assert_eq!(mask_of(0b101, 0x00), 0b101);
        assert_eq!(mask_of(0b101, 0x40), 0x00ff_00ff);
        assert_eq!(mask_of(0b10, 0x41), 0xffff_0000);
    }

    #[test]
    fn crc32c_matches_the_check_value() {
        let crc = b"123456789"
            .iter()
            .fold(!0u32, |crc, &b| crc32c(crc, u64::from(b), 1));
        assert_eq!(!crc, 0xe306_9283);
        // Wider operands are their bytes, low first.
        let word = u64::from_le_bytes(*b"12345678");
        let bytewise = b"12345678"
            .iter()
            .fold(!0u32, |crc, &b| crc32c(crc, u64::from(b), 1));
        assert_eq!(crc32c(!0, word, 8), bytewise);
    }
}
