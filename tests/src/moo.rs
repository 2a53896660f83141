//! Reading MOO files: the SingleStepTests format of recorded single-instruction
//! CPU tests (`../shared/x86-conformance/80286/moo_format_v1.md`).
//!
//! A file is a list of chunks (4-byte tag, `u32` length, payload); unknown
//! chunks are skipped by their length, as the format asks.

use std::io::Read;
use std::path::Path;

/// The 286's registers in the order of a `REGS` chunk's bitmask.
pub const REGISTERS: [&str; 14] = [
    "ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags",
];

/// Registers and memory at the start or end of a test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MooState {
    /// Register values by [`REGISTERS`] index; `None` where not listed.
    pub regs: [Option<u16>; 14],
    /// (physical address, byte) pairs.
    pub ram: Vec<(u32, u8)>,
}

/// An exception the instruction raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MooException {
    /// Its vector.
    pub vector: u8,
    /// Physical address of the FLAGS word it pushed.
    pub flags_address: u32,
}

/// One recorded test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MooTest {
    /// Its index in the upstream file.
    pub index: u32,
    /// The disassembly.
    pub name: String,
    /// The instruction bytes.
    pub bytes: Vec<u8>,
    /// State before.
    pub initial: MooState,
    /// What changed.
    pub last: MooState,
    /// The exception taken, if any.
    pub exception: Option<MooException>,
    /// The SHA-1 that names the test, as hex.
    pub hash: String,
}

/// What went wrong reading a MOO file.
#[derive(Debug)]
pub struct MooError(pub String);

impl std::fmt::Display for MooError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct Chunks<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<([u8; 4], &'a [u8]), MooError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        if self.data.len() < 8 {
            self.data = &[];
            return Some(Err(MooError("truncated chunk header".into())));
        }
        let tag = [self.data[0], self.data[1], self.data[2], self.data[3]];
        let len =
            u32::from_le_bytes([self.data[4], self.data[5], self.data[6], self.data[7]]) as usize;
        let Some(payload) = self.data.get(8..8 + len) else {
            self.data = &[];
            return Some(Err(MooError(format!(
                "chunk {} runs past the end",
                String::from_utf8_lossy(&tag)
            ))));
        };
        self.data = &self.data[8 + len..];
        Some(Ok((tag, payload)))
    }
}

fn chunks(data: &[u8]) -> Chunks<'_> {
    Chunks { data }
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, MooError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| MooError(format!("truncated field at {at}")))
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, MooError> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| MooError(format!("truncated field at {at}")))
}

/// A `u32` length followed by that many bytes.
fn counted(data: &[u8]) -> Result<&[u8], MooError> {
    let n = u32_at(data, 0)? as usize;
    data.get(4..4 + n)
        .ok_or_else(|| MooError("counted field runs past its chunk".into()))
}

fn parse_state(payload: &[u8]) -> Result<MooState, MooError> {
    let mut state = MooState::default();
    for chunk in chunks(payload) {
        let (tag, data) = chunk?;
        match &tag {
            b"REGS" => {
                let bits = u16_at(data, 0)?;
                let mut at = 2;
                for (i, reg) in state.regs.iter_mut().enumerate() {
                    if bits & (1 << i) != 0 {
                        *reg = Some(u16_at(data, at)?);
                        at += 2;
                    }
                }
            }
            b"RAM " => {
                let n = u32_at(data, 0)? as usize;
                for k in 0..n {
                    let at = 4 + 5 * k;
                    let addr = u32_at(data, at)?;
                    let value = *data
                        .get(at + 4)
                        .ok_or_else(|| MooError("truncated RAM entry".into()))?;
                    state.ram.push((addr, value));
                }
            }
            _ => {}
        }
    }
    Ok(state)
}

fn parse_test(payload: &[u8]) -> Result<MooTest, MooError> {
    let mut test = MooTest {
        index: u32_at(payload, 0)?,
        ..MooTest::default()
    };
    for chunk in chunks(&payload[4..]) {
        let (tag, data) = chunk?;
        match &tag {
            b"NAME" => test.name = String::from_utf8_lossy(counted(data)?).into_owned(),
            b"BYTS" => test.bytes = counted(data)?.to_vec(),
            b"INIT" => test.initial = parse_state(data)?,
            b"FINA" => test.last = parse_state(data)?,
            b"EXCP" => {
                test.exception = Some(MooException {
                    vector: *data
                        .first()
                        .ok_or_else(|| MooError("empty EXCP chunk".into()))?,
                    flags_address: u32_at(data, 1)?,
                })
            }
            b"HASH" => test.hash = data.iter().map(|b| format!("{b:02x}")).collect(),
            _ => {}
        }
    }
    Ok(test)
}

/// Every test in the gzip-compressed MOO file at `path`.
pub fn read_moo_gz(path: &Path) -> Result<Vec<MooTest>, MooError> {
    let file =
        std::fs::File::open(path).map_err(|e| MooError(format!("{}: {e}", path.display())))?;
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut data)
        .map_err(|e| MooError(format!("{}: not gzip: {e}", path.display())))?;
    let mut tests = Vec::new();
    let mut saw_header = false;
    for chunk in chunks(&data) {
        let (tag, payload) = chunk.map_err(|e| MooError(format!("{}: {e}", path.display())))?;
        match &tag {
            b"MOO " => saw_header = true,
            b"TEST" => tests.push(
                parse_test(payload).map_err(|e| MooError(format!("{}: {e}", path.display())))?,
            ),
            _ => {}
        }
    }
    if !saw_header {
        return Err(MooError(format!("{}: no MOO header", path.display())));
    }
    Ok(tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(tag: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = tag.to_vec();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn parses_a_state_and_skips_unknown_chunks() {
        let mut regs = 0b101u16.to_le_bytes().to_vec();
        regs.extend_from_slice(&0x1234u16.to_le_bytes());
        regs.extend_from_slice(&0x5678u16.to_le_bytes());
        let mut ram = 1u32.to_le_bytes().to_vec();
        ram.extend_from_slice(&0x10u32.to_le_bytes());
        ram.push(0xab);
        let mut payload = chunk(b"REGS", &regs);
        payload.extend(chunk(b"ZZZZ", b"ignored"));
        payload.extend(chunk(b"RAM ", &ram));
        let state = parse_state(&payload).unwrap();
        assert_eq!(state.regs[0], Some(0x1234));
        assert_eq!(state.regs[1], None);
        assert_eq!(state.regs[2], Some(0x5678));
        assert_eq!(state.ram, vec![(0x10, 0xab)]);
    }

    #[test]
    fn truncated_chunks_are_errors() {
        let mut bad = chunk(b"REGS", &[1, 0]);
        bad.truncate(9);
        assert!(chunks(&bad).next().unwrap().is_err());
    }
}
