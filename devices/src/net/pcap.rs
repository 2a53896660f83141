//! Packet capture in the classic pcap format (what `tcpdump -w` writes and
//! Wireshark and `tcpdump -r` read): a 24-byte file header, then each frame
//! after a 16-byte record header with its host time stamp.
//!
//! Written here rather than with a crate: the format is two fixed headers,
//! and the pcap crates on crates.io either bind libpcap or pull in async
//! runtimes for a writer this small.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use emu_core::sync::LockRecover;

/// The magic of a pcap file with microsecond time stamps, native order.
const MAGIC_MICROSECONDS: u32 = 0xa1b2_c3d4;
/// Link type: Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;
/// Bytes of each frame kept: all of them.
const SNAPLEN: u32 = 262_144;

/// A pcap file being written; shared by both directions of a NIC.
#[derive(Debug)]
pub struct PcapWriter {
    path: PathBuf,
    out: Mutex<Option<BufWriter<File>>>,
}

impl PcapWriter {
    /// Creates (or truncates) `path` and writes the file header. The error
    /// names the file.
    pub fn create(path: &Path) -> Result<PcapWriter, String> {
        let fail = |e: std::io::Error| format!("cannot write capture {}: {e}", path.display());
        let mut out = BufWriter::new(File::create(path).map_err(fail)?);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&MAGIC_MICROSECONDS.to_ne_bytes());
        header.extend_from_slice(&2u16.to_ne_bytes());
        header.extend_from_slice(&4u16.to_ne_bytes());
        header.extend_from_slice(&0i32.to_ne_bytes()); // GMT offset
        header.extend_from_slice(&0u32.to_ne_bytes()); // accuracy
        header.extend_from_slice(&SNAPLEN.to_ne_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&header).map_err(fail)?;
        out.flush().map_err(fail)?;
        Ok(PcapWriter {
            path: path.to_owned(),
            out: Mutex::new(Some(out)),
        })
    }

    /// Appends `frame` with the current time. Each record is flushed, so the
    /// file is whole whenever the process stops. A write error stops the
    /// capture (once, with a warning) and never the machine.
    pub fn record(&self, frame: &[u8]) {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let kept = frame.len().min(SNAPLEN as usize);
        let mut record = Vec::with_capacity(16 + kept);
        record.extend_from_slice(&(since_epoch.as_secs() as u32).to_ne_bytes());
        record.extend_from_slice(&since_epoch.subsec_micros().to_ne_bytes());
        record.extend_from_slice(&(kept as u32).to_ne_bytes());
        record.extend_from_slice(&(frame.len() as u32).to_ne_bytes());
        record.extend_from_slice(&frame[..kept]);
        let mut out = self.out.lock_recover();
        if let Some(writer) = out.as_mut()
            && let Err(error) = writer.write_all(&record).and_then(|()| writer.flush())
        {
            tracing::warn!("capture {} stopped: {error}", self.path.display());
            *out = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_holds_the_header_and_each_frame() {
        let dir = std::env::temp_dir().join(format!("turing-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.pcap");
        let capture = PcapWriter::create(&path).unwrap();
        capture.record(&[0xaa; 60]);
        capture.record(&[0xbb; 1514]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 60 + 16 + 1514);
        let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(word(0), MAGIC_MICROSECONDS);
        assert_eq!(word(20), LINKTYPE_ETHERNET);
        assert_eq!((word(24 + 8), word(24 + 12)), (60, 60));
        assert_eq!(bytes[24 + 16], 0xaa);
        assert_eq!(word(24 + 16 + 60 + 8), 1514);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_capture_in_a_missing_directory_is_a_one_line_error() {
        let error = PcapWriter::create(Path::new("/nonexistent-dir/x.pcap")).unwrap_err();
        assert!(error.starts_with("cannot write capture /nonexistent-dir/x.pcap"));
        assert!(!error.contains('\n'));
    }
}
