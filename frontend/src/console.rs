//! The host side of the guest's serial console: where output goes, the tail of it
//! kept for reports, and host input (with the terminal in raw mode while a guest
//! owns it, and QEMU's `Ctrl-A x` escape to quit).

use std::collections::VecDeque;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};
use emu_core::config::SerialBackend;
use emu_core::sync::LockRecover;
use emu_core::{RunControl, StopReason};
use nix::sys::termios::{self, SetArg, Termios};

use crate::script::OutputFeed;

/// How many bytes of recent output to keep for reports.
const TAIL_BYTES: usize = 4096;
/// Ctrl-A, the escape prefix (as in QEMU).
const ESCAPE: u8 = 0x01;

/// The last bytes the guest wrote, shared between the UART's writer and the runner.
#[derive(Clone, Debug, Default)]
pub struct SerialTail(Arc<Mutex<VecDeque<u8>>>);

impl SerialTail {
    fn push(&self, data: &[u8]) {
        let mut tail = self.0.lock_recover();
        tail.extend(data);
        let excess = tail.len().saturating_sub(TAIL_BYTES);
        tail.drain(..excess);
    }

    /// The last `n` lines of output (the unfinished last line included).
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let tail = self.0.lock_recover();
        let bytes: Vec<u8> = tail.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text
            .split('\n')
            .map(|l| l.trim_end_matches('\r').to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// A writer that passes output on and remembers its tail.
struct TeeWriter {
    inner: Box<dyn Write + Send>,
    tail: SerialTail,
    script: Option<OutputFeed>,
}

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tail.push(buf);
        if let Some(feed) = &self.script {
            feed.push(buf);
        }
        // A closed output (a pipe whose reader left) must not stop the guest.
        match self.inner.write_all(buf) {
            Ok(()) | Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

/// The console endpoints handed to a machine's UART.
pub struct Console {
    /// Guest output.
    pub output: Box<dyn Write + Send>,
    /// Guest input, if the backend has any.
    pub input: Option<Receiver<u8>>,
    /// Recent output, for reports.
    pub tail: SerialTail,
    /// Types into the guest for a script (which then owns the input).
    pub script_input: Option<Sender<u8>>,
    /// Restores the terminal when dropped.
    _raw: Option<RawTerminal>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// Opens the backend. For stdio on a terminal, the terminal goes into raw mode
    /// until the console is dropped, and `Ctrl-A x` asks `control` to stop. With a
    /// `script` feed, output is also copied there and the script, not the host's
    /// stdin, types into the guest.
    pub fn open(
        backend: &SerialBackend,
        control: Arc<RunControl>,
        script: Option<OutputFeed>,
    ) -> io::Result<Console> {
        let tail = SerialTail::default();
        let (output, mut input, raw): (Box<dyn Write + Send>, _, _) = match backend {
            SerialBackend::Stdio if script.is_some() => {
                (Box::new(io::BufWriter::new(io::stdout())), None, None)
            }
            SerialBackend::Stdio => {
                let raw = RawTerminal::enter();
                let input = spawn_stdin_reader(control, raw.is_some());
                (Box::new(io::BufWriter::new(io::stdout())), Some(input), raw)
            }
            SerialBackend::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot open serial file {}: {e}", path.display()),
                        )
                    })?;
                (Box::new(io::BufWriter::new(file)), None, None)
            }
            SerialBackend::Null => (Box::new(io::sink()), None, None),
        };
        let mut script_input = None;
        if script.is_some() {
            let (tx, rx) = crossbeam_channel::unbounded();
            script_input = Some(tx);
            input = Some(rx);
        }
        Ok(Console {
            output: Box::new(TeeWriter {
                inner: output,
                tail: tail.clone(),
                script,
            }),
            input,
            tail,
            script_input,
            _raw: raw,
        })
    }
}

/// Reads host stdin on its own thread and forwards bytes to the guest.
fn spawn_stdin_reader(control: Arc<RunControl>, terminal: bool) -> Receiver<u8> {
    let (tx, rx): (Sender<u8>, Receiver<u8>) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("stdin".to_owned())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 256];
            let mut escaped = false;
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                for &byte in &buf[..n] {
                    if terminal && escaped {
                        escaped = false;
                        match byte {
                            b'x' | b'X' => {
                                control.request_stop(StopReason::HostRequest);
                                return;
                            }
                            ESCAPE => {}
                            _ => continue,
                        }
                    } else if terminal && byte == ESCAPE {
                        escaped = true;
                        continue;
                    }
                    if tx.send(byte).is_err() {
                        return;
                    }
                }
            }
        })
        .map(|_| ())
        .unwrap_or(());
    rx
}

/// Puts the controlling terminal into raw mode and restores it when dropped.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        let stdin = io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output post-processing so host-side messages still start at column 0.
        raw.output_flags |= termios::OutputFlags::OPOST;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let tail = SerialTail::default();
        let mut tee = TeeWriter {
            inner: Box::new(io::sink()),
            tail: tail.clone(),
            script: None,
        };
        tee.write_all(b"one\r\ntwo\nthree\nfour").unwrap();
        assert_eq!(tail.last_lines(2), vec!["three", "four"]);
        tee.write_all(&vec![b'x'; 5000]).unwrap();
        assert_eq!(tail.last_lines(1)[0].len(), TAIL_BYTES);
    }
}
