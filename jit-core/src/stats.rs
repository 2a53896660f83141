//! What a translator did, for `--stats`.

use std::time::Duration;

/// Counters reported by `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitStats {
    /// Translations made.
    pub blocks_compiled: u64,
    /// Guest instructions translated.
    pub instructions_compiled: u64,
    /// Time spent in Cranelift.
    pub compile_time: Duration,
    /// Whether that time was spent on compile threads, beside the CPUs.
    pub compiled_in_background: bool,
    /// Translations entered from the dispatch loop.
    pub blocks_run: u64,
    /// Blocks the interpreter ran (cold or untranslatable).
    pub blocks_interpreted: u64,
    /// Translations dropped by stores into their code, fences or breakpoints.
    pub invalidations: u64,
    /// Times the whole code cache was thrown away for being full.
    pub cache_flushes: u64,
    /// Jumps from one translation straight into the next (no dispatch).
    pub chained: u64,
    /// Translations compiled on the compile thread and thrown away on arrival
    /// (their code changed, or the cache was emptied, meanwhile).
    pub discarded: u64,
    /// Times hot code was left cold because the compile thread had enough
    /// queued.
    pub deferred: u64,
}

impl std::fmt::Display for JitStats {
    /// One line for `--stats`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_insn =
            self.compile_time.as_secs_f64() * 1e6 / self.instructions_compiled.max(1) as f64;
        write!(
            f,
            "jit: {} blocks ({} instructions) compiled in {:.3} s{} ({per_insn:.1} µs per guest instruction); {} blocks entered from dispatch and {} by chaining, {} interpreted; {} invalidations, {} cache flushes, {} discarded on arrival, {} deferred",
            self.blocks_compiled,
            self.instructions_compiled,
            self.compile_time.as_secs_f64(),
            if self.compiled_in_background {
                " on compile threads"
            } else {
                ""
            },
            self.blocks_run,
            self.chained,
            self.blocks_interpreted,
            self.invalidations,
            self.cache_flushes,
            self.discarded,
            self.deferred
        )
    }
}

impl std::ops::AddAssign for JitStats {
    fn add_assign(&mut self, other: JitStats) {
        self.blocks_compiled += other.blocks_compiled;
        self.instructions_compiled += other.instructions_compiled;
        self.compile_time += other.compile_time;
        self.compiled_in_background |= other.compiled_in_background;
        self.blocks_run += other.blocks_run;
        self.blocks_interpreted += other.blocks_interpreted;
        self.invalidations += other.invalidations;
        self.cache_flushes += other.cache_flushes;
        self.chained += other.chained;
        self.discarded += other.discarded;
        self.deferred += other.deferred;
    }
}
