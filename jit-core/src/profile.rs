//! Naming translated code for host profilers.
//!
//! With `TURING_PERF_MAP=1` in the environment, every translation is appended to
//! `/tmp/perf-<pid>.map` (the format `perf report` reads for JIT code, as QEMU's
//! `-perfmap`), named by the guest pc it starts at. With `TURING_JIT_LISTING=FILE`,
//! Cranelift's listing of every translation is written to FILE, and with
//! `TURING_JIT_CODE=DIR` each translation's machine code goes to
//! `DIR/guest_<pc>.bin` (for `objdump -D -b binary -mi386:x86-64`), so the
//! addresses `perf script` samples can be read against the code.

use std::fs::File;
use std::io::{BufWriter, Write};

/// Where translations are recorded, when profiling was asked for.
#[derive(Debug)]
pub(crate) struct Profile {
    map: Option<BufWriter<File>>,
    /// The code listing file, when asked for.
    pub(crate) listing: Option<BufWriter<File>>,
    /// Where each translation's machine code is written, when asked for.
    code_dir: Option<std::path::PathBuf>,
}

impl Profile {
    /// The recorder the environment asks for, or `None` (the usual case).
    pub(crate) fn from_env() -> Option<Profile> {
        let map = std::env::var_os("TURING_PERF_MAP")
            .filter(|v| v != "0" && !v.is_empty())
            .and_then(|_| {
                let path = format!("/tmp/perf-{}.map", std::process::id());
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
                match file {
                    Ok(file) => Some(BufWriter::new(file)),
                    Err(e) => {
                        eprintln!("turing: warning: TURING_PERF_MAP: cannot open {path}: {e}");
                        None
                    }
                }
            });
        let listing =
            std::env::var_os("TURING_JIT_LISTING").and_then(|path| match File::create(&path) {
                Ok(file) => Some(BufWriter::new(file)),
                Err(e) => {
                    eprintln!("turing: warning: TURING_JIT_LISTING: cannot create {path:?}: {e}");
                    None
                }
            });
        let code_dir = std::env::var_os("TURING_JIT_CODE").map(std::path::PathBuf::from);
        if let Some(dir) = &code_dir
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            eprintln!("turing: warning: TURING_JIT_CODE: cannot create {dir:?}: {e}");
        }
        (map.is_some() || listing.is_some() || code_dir.is_some()).then_some(Profile {
            map,
            listing,
            code_dir,
        })
    }

    /// Records the translation of the guest code at `guest_pc` (or the entry
    /// trampoline) at host address `entry`, `size` bytes long.
    pub(crate) fn record(
        &mut self,
        entry: *const u8,
        size: u32,
        guest_pc: Option<u64>,
        listing: Option<&str>,
    ) {
        let name = match guest_pc {
            Some(pc) => format!("guest_{pc:#x}"),
            None => "turing_block_trampoline".to_owned(),
        };
        // Profiling output is best effort: a full disk must not stop the guest.
        if let Some(map) = self.map.as_mut() {
            let _ = writeln!(map, "{:x} {size:x} {name}", entry as usize);
            let _ = map.flush();
        }
        if let Some(dir) = &self.code_dir {
            // SAFETY: `entry` is the start of `size` bytes of finalized code that
            // the module keeps mapped (readable and executable) until it is freed,
            // which cannot happen during this call.
            let bytes = unsafe { std::slice::from_raw_parts(entry, size as usize) };
            let _ = std::fs::write(dir.join(format!("{name}.bin")), bytes);
        }
        if let (Some(out), Some(text)) = (self.listing.as_mut(), listing) {
            let _ = writeln!(
                out,
                "{name} at {:#x}, {size} bytes:\n{text}",
                entry as usize
            );
            let _ = out.flush();
        }
    }
}
