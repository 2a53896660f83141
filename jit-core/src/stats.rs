//! What a translator did, for `--stats`.

use std::time::Duration;

/// Counters reported by `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitStats {
    /// Translations made.
    pub blocks_compiled: u64,
    /// Guest instructions translated.
    pub instructions_compiled: u64,
    /// CPU time the compiling thread spent translating (its own CPU time, so
    /// that a busy host does not inflate it).
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

/// The CPU time the calling thread has used so far: what translating costs,
/// whether or not the thread had a core to itself meanwhile.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec, and CLOCK_THREAD_CPUTIME_ID
    // is supported by every Linux the project runs on; on an error the zero
    // it holds makes the measured span zero rather than wrong.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let start = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - start;
        let mut x = 0u64;
        let busy_from = thread_cpu_time();
        while thread_cpu_time() - busy_from < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(slept < Duration::from_millis(20), "sleeping used {slept:?}");
        assert!(x > 0);
    }
}
