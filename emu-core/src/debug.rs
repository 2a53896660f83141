//! What a debugger needs of a CPU, whatever its architecture.
//!
//! The gdbstub server in the frontend talks to CPUs only through [`DebugCpu`]:
//! each CPU crate says what its registers are (a gdb target description and
//! the byte layout of gdb's register packets), how to read and write memory as
//! the CPU sees it, and how to set breakpoints and watchpoints. So the server
//! serves a RISC-V hart and an x86 core alike.

/// What a watchpoint watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    /// Loads.
    Read,
    /// Stores.
    Write,
    /// Loads and stores.
    Access,
}

/// Why a CPU stopped for the debugger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugStop {
    /// It reached a breakpoint at this pc (not yet executed).
    Breakpoint(u64),
    /// The instruction at the pc is about to access a watched address.
    Watchpoint {
        /// Load or store.
        kind: WatchKind,
        /// The watched address the access touched.
        addr: u64,
    },
}

/// One CPU as a debugger sees it.
///
/// Registers are numbered and laid out as the CPU's gdb target description
/// ([`DebugCpu::target_xml`]) says: `read_registers` gives gdb's `g` packet
/// (every register in number order, little-endian, each at its described size).
pub trait DebugCpu {
    /// The gdb target description (`target.xml`) of this CPU.
    fn target_xml(&self) -> &'static str;
    /// The program counter (for stop reports).
    fn pc(&self) -> u64;
    /// Every register of the `g` packet, in order.
    fn read_registers(&mut self) -> Vec<u8>;
    /// Writes registers from a `G` packet; a short packet leaves the registers
    /// it does not reach as they were. False when the bytes make no sense.
    fn write_registers(&mut self, bytes: &[u8]) -> bool;
    /// Register `number` (as in the target description), or `None` if there is
    /// no such register or it cannot be read now.
    fn read_register(&mut self, number: usize) -> Option<Vec<u8>>;
    /// Writes register `number`; false when it does not exist or refuses `bytes`.
    fn write_register(&mut self, number: usize, bytes: &[u8]) -> bool;
    /// Reads memory at virtual address `addr` as the CPU would now; returns how
    /// many bytes could be read (stopping at the first unreadable one).
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> usize;
    /// Writes memory at virtual address `addr`; false if any byte is unwritable.
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> bool;
    /// Reads guest-physical memory; returns how many bytes are RAM.
    fn read_physical(&self, addr: u64, buf: &mut [u8]) -> usize;
    /// Stops before executing the instruction at `pc`.
    fn insert_breakpoint(&mut self, pc: u64);
    /// Removes a breakpoint; whether there was one.
    fn remove_breakpoint(&mut self, pc: u64) -> bool;
    /// Stops before an access of `kind` touching `[addr, addr + len)`.
    fn insert_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind);
    /// Removes a watchpoint; whether there was one.
    fn remove_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool;
    /// Forgets every breakpoint and watchpoint (the debugger went away).
    fn clear_debug(&mut self);
    /// Resumes from where the CPU stopped: the instruction at the pc runs without
    /// stopping again for its breakpoint or watchpoint.
    fn resume_from_breakpoint(&mut self);
    /// Monitor commands only this kind of CPU has (`info mmu VA` on RISC-V):
    /// the lines to print, or `None` when `words` is not such a command.
    fn monitor_command(&mut self, words: &[&str]) -> Option<Vec<String>>;
    /// Help lines for [`DebugCpu::monitor_command`]'s commands.
    fn monitor_help(&self) -> Vec<String>;
}

/// Reads `buf` from virtual (or linear) address `addr` a page at a time:
/// `read_page(address, part)` translates one page's address and fills the
/// part of `buf` in that page, false when it cannot. Returns how many bytes
/// were read, stopping at the first page that could not be.
pub fn read_by_pages(
    addr: u64,
    buf: &mut [u8],
    mut read_page: impl FnMut(u64, &mut [u8]) -> bool,
) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let at = addr.wrapping_add(done as u64);
        let chunk = ((4096 - (at & 0xfff)) as usize).min(buf.len() - done);
        if !read_page(at, &mut buf[done..done + chunk]) {
            break;
        }
        done += chunk;
    }
    done
}

/// Plans a write of `len` bytes at virtual (or linear) address `addr`:
/// `translate(address, bytes)` gives the physical address of one page's
/// part if it is memory that can take it. Returns every part's physical
/// address and range of the data, or `None` (write nothing) if one fails.
pub fn plan_write_by_pages(
    addr: u64,
    len: usize,
    mut translate: impl FnMut(u64, usize) -> Option<u64>,
) -> Option<Vec<(u64, std::ops::Range<usize>)>> {
    let mut parts = Vec::new();
    let mut done = 0;
    while done < len {
        let at = addr.wrapping_add(done as u64);
        let chunk = ((4096 - (at & 0xfff)) as usize).min(len - done);
        parts.push((translate(at, chunk)?, done..done + chunk));
        done += chunk;
    }
    Some(parts)
}
