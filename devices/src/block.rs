//! Block storage shared by the disk models (virtio-blk, IDE): the
//! [`BlockBackend`] trait and raw image files opened with [`open_raw`].
//!
//! An image is locked when it is opened, so two machines (or two devices of one
//! machine) cannot write the same image at once: exclusively when writable,
//! shared when read-only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors opening a disk image; each names the file in one line.
#[derive(Debug, Error)]
pub enum BlkError {
    /// The image could not be opened (missing, no permission...).
    #[error("cannot open disk image {}: {source}", .path.display())]
    Open {
        /// The image.
        path: PathBuf,
        /// The host error.
        source: io::Error,
    },
    /// The path names a directory.
    #[error("disk image {} is a directory", .path.display())]
    IsDirectory {
        /// The image.
        path: PathBuf,
    },
    /// Another process (another Turing) holds a conflicting lock on the image.
    #[error("disk image {} is locked by another process", .path.display())]
    Locked {
        /// The image.
        path: PathBuf,
    },
    /// Locking failed for another reason.
    #[error("cannot lock disk image {}: {source}", .path.display())]
    Lock {
        /// The image.
        path: PathBuf,
        /// The host error.
        source: io::Error,
    },
    /// The image size could not be read.
    #[error("cannot read the size of disk image {}: {source}", .path.display())]
    Size {
        /// The image.
        path: PathBuf,
        /// The host error.
        source: io::Error,
    },
}

/// Storage behind a disk model: a raw image today, other formats later.
pub trait BlockBackend: Send {
    /// Size in bytes.
    fn len(&self) -> u64;
    /// Whether the size is zero.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from byte `offset`; `offset + buf.len()` is within `len()`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes `data` at byte `offset`; `offset + data.len()` is within `len()`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> io::Result<()>;
}

/// A raw image file: byte n of the disk is byte n of the file.
#[derive(Debug)]
struct RawFile {
    file: File,
    len: u64,
}

impl BlockBackend for RawFile {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(unix)]
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)
    }

    #[cfg(not(unix))]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::io::Read;
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(buf)
    }

    #[cfg(not(unix))]
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Opens the raw image at `path`, locked so that two users cannot write it at
/// once: exclusively when writable, shared when `read_only` (several read-only
/// users may share an image nobody writes). File systems that cannot lock at
/// all (old NFS, some FUSE) are used unprotected, with a warning.
pub fn open_raw(path: &Path, read_only: bool) -> Result<Box<dyn BlockBackend>, BlkError> {
    let owned = || path.to_path_buf();
    let mut file = OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(path)
        .map_err(|source| BlkError::Open {
            path: owned(),
            source,
        })?;
    let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
    if is_dir {
        return Err(BlkError::IsDirectory { path: owned() });
    }
    let locked = if read_only {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(BlkError::Locked { path: owned() }),
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
            tracing::warn!("disk image {} cannot be locked: {e}", path.display());
        }
        Err(TryLockError::Error(source)) => {
            return Err(BlkError::Lock {
                path: owned(),
                source,
            });
        }
    }
    // Seeking to the end also sizes block devices, whose metadata says 0.
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|source| BlkError::Size {
            path: owned(),
            source,
        })?;
    Ok(Box::new(RawFile { file, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_images_read_write_and_lock() {
        let path = std::env::temp_dir().join(format!("turing-block-{}.img", std::process::id()));
        std::fs::write(&path, [7u8; 1024]).unwrap();
        let mut disk = open_raw(&path, false).unwrap();
        assert_eq!(disk.len(), 1024);
        disk.write_at(512, &[1, 2, 3]).unwrap();
        let mut buf = [0u8; 4];
        disk.read_at(511, &mut buf).unwrap();
        assert_eq!(buf, [7, 1, 2, 3]);
        disk.flush().unwrap();
        assert!(matches!(
            open_raw(&path, true),
            Err(BlkError::Locked { .. })
        ));
        drop(disk);
        let a = open_raw(&path, true).unwrap();
        let b = open_raw(&path, true).unwrap();
        assert!(open_raw(&path, false).is_err());
        drop((a, b));
        let _ = std::fs::remove_file(&path);
    }
}
