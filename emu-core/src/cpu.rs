//! Running a machine's CPUs: the [`Vcpu`] trait a CPU model implements, and the
//! two ways a machine runs them with its devices.
//!
//! - [`run_threaded`]: every vCPU on its own host thread, as QEMU's MTTCG and
//!   Firecracker do; the calling thread keeps device time (timers, host input)
//!   and the stop conditions. An idle vCPU (WFI, HLT) sleeps until an interrupt
//!   line changes.
//! - [`run_interleaved`]: all vCPUs on the calling thread, a slice of
//!   instructions each in turn, devices between rounds. Runs repeat exactly, so
//!   deterministic mode (virtual time counted in instructions) uses it, and so
//!   does a machine that must stop at an exact instruction count.
//!
//! Nothing here knows the architecture: a RISC-V hart and an x86 CPU run alike.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Bus, RunControl, StopReason, VirtualClock};

/// Instructions a vCPU runs before it looks at the machine again.
pub const SLICE: u64 = 1 << 16;

/// Longest a vCPU or the device loop sleeps without looking around, so host
/// input, stop requests and timers a CPU just programmed are seen promptly.
pub const MAX_IDLE: Duration = Duration::from_millis(5);

/// Longest the device loop of a threaded run waits between device ticks: a
/// timer a vCPU programs while the loop sleeps fires at most this late.
pub const DEVICE_TICK: Duration = Duration::from_micros(500);

/// How a slice of a vCPU's execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceEnd {
    /// It ran its budget (or stopped early for the machine to look around).
    Budget,
    /// It waits for an interrupt (WFI, HLT) and has none to take.
    Idle,
    /// The machine asked to stop (power-off, reset, the host).
    Stopped,
    /// A debugger's breakpoint or watchpoint stopped it.
    Debug,
}

/// A CPU as the machine runs it.
pub trait Vcpu: Send {
    /// Runs up to `budget` instructions.
    fn run_slice(&mut self, budget: u64) -> SliceEnd;
    /// Whether an interrupt is pending that ends an idle wait.
    fn wakeup_pending(&self) -> bool;
    /// Instructions retired plus traps taken so far: what instruction limits
    /// count, so a CPU stuck in a fault loop still reaches its limit.
    fn executed(&self) -> u64;
    /// Instructions per slice: about a millisecond of this CPU's work, so the
    /// machine ticks its devices often enough that a periodic timer's edges
    /// (a PC's PIT at 4 ms) are not lost between two ticks.
    fn slice_len(&self) -> u64 {
        SLICE
    }
}

/// When a run stops by itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLimits {
    /// Host time the run may take.
    pub wall: Option<Duration>,
    /// Instructions (and traps) all vCPUs together may execute; counted from
    /// their totals, not from the start of this run.
    pub executed: Option<u64>,
}

/// Why a run returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd<W> {
    /// Something asked the machine to stop; the machine handles a reset itself.
    Stop(StopReason),
    /// The watch function returned this.
    Watched(W),
    /// The instruction limit was reached.
    InstructionLimit,
    /// The host time limit passed.
    TimedOut,
}

/// The machine's side of a run: its bus (whose devices tick), its clock and its
/// run control.
#[derive(Clone, Copy, Debug)]
pub struct MachineParts<'a> {
    /// The bus whose devices get time.
    pub bus: &'a Bus,
    /// Virtual time.
    pub clock: &'a VirtualClock,
    /// Stop requests and interrupt notifications.
    pub control: &'a RunControl,
}

fn executed_total<V: Vcpu>(vcpus: &[V]) -> u64 {
    vcpus.iter().map(Vcpu::executed).sum()
}

/// Runs `vcpus` in turn on this thread until something stops the machine, a
/// limit passes, or `watch` (called between rounds) returns a value.
pub fn run_interleaved<V: Vcpu, W>(
    vcpus: &mut [V],
    parts: MachineParts<'_>,
    limits: RunLimits,
    watch: &mut dyn FnMut() -> Option<W>,
) -> RunEnd<W> {
    let deadline = limits.wall.map(|l| Instant::now() + l);
    let count = vcpus.len().max(1) as u64;
    loop {
        let mut all_idle = true;
        // Near the instruction limit, run only what is left of it.
        let per_slice = vcpus.iter().map(Vcpu::slice_len).min().unwrap_or(SLICE);
        let slice = limits.executed.map_or(per_slice, |max| {
            let left = max.saturating_sub(executed_total(vcpus));
            left.div_ceil(count).clamp(1, per_slice)
        });
        for vcpu in vcpus.iter_mut() {
            let end = vcpu.run_slice(slice);
            if end != SliceEnd::Idle || vcpu.wakeup_pending() {
                all_idle = false;
            }
            if end == SliceEnd::Stopped {
                break;
            }
        }
        if let Some(reason) = parts.control.stop_reason() {
            return RunEnd::Stop(reason);
        }
        let next = parts.bus.tick_devices(parts.clock.now());
        if all_idle {
            parts.clock.idle_until(next, MAX_IDLE);
            parts.bus.tick_devices(parts.clock.now());
        }
        let limit = limits.executed.unwrap_or(u64::MAX);
        if let Some(end) = end_after_tick(watch, || executed_total(vcpus), limit, deadline) {
            return end;
        }
    }
}

/// What both run loops check after ticking the devices, in this order: a
/// watch value, the instruction limit (`u64::MAX` for none; `executed` is
/// asked only when there is one), the time limit.
fn end_after_tick<W>(
    watch: &mut dyn FnMut() -> Option<W>,
    executed: impl FnOnce() -> u64,
    limit: u64,
    deadline: Option<Instant>,
) -> Option<RunEnd<W>> {
    if let Some(value) = watch() {
        return Some(RunEnd::Watched(value));
    }
    if limit != u64::MAX && executed() >= limit {
        return Some(RunEnd::InstructionLimit);
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(RunEnd::TimedOut);
    }
    None
}

/// Runs each of `vcpus` on its own host thread while this thread ticks the
/// devices, until something stops the machine, a limit passes, or `watch`
/// (called between device ticks) returns a value. Returns when every vCPU
/// thread has given its vCPU back; an instruction limit may be overshot by up
/// to one [`SLICE`] per vCPU.
///
/// Fails only when the host cannot start a thread.
pub fn run_threaded<V: Vcpu, W>(
    vcpus: &mut [V],
    parts: MachineParts<'_>,
    limits: RunLimits,
    watch: &mut dyn FnMut() -> Option<W>,
) -> std::io::Result<RunEnd<W>> {
    let deadline = limits.wall.map(|l| Instant::now() + l);
    let control = parts.control;
    let shared = Shared {
        recall: AtomicBool::new(false),
        executed: AtomicU64::new(executed_total(vcpus)),
        limit: limits.executed.unwrap_or(u64::MAX),
    };
    std::thread::scope(|scope| {
        let mut started = Ok(());
        for (index, vcpu) in vcpus.iter_mut().enumerate() {
            let shared = &shared;
            let spawned = std::thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn_scoped(scope, move || vcpu_thread(vcpu, control, shared));
            if let Err(error) = spawned {
                started = Err(error);
                break;
            }
        }
        let end = match started {
            Ok(()) => Ok(device_loop(parts, &shared, deadline, watch)),
            Err(error) => Err(error),
        };
        shared.recall.store(true, Ordering::SeqCst);
        control.wake_all();
        end
    })
}

/// What the threads of a threaded run share.
struct Shared {
    /// Set when the device loop wants the vCPUs back (a limit, a watch value).
    recall: AtomicBool,
    /// Instructions and traps of all vCPUs.
    executed: AtomicU64,
    /// The instruction limit (`u64::MAX` for none).
    limit: u64,
}

/// One vCPU's thread: slices until the machine stops or recalls it; idle, it
/// sleeps until an interrupt line changes.
fn vcpu_thread<V: Vcpu>(vcpu: &mut V, control: &RunControl, shared: &Shared) {
    while !shared.recall.load(Ordering::Acquire) {
        // Read before the slice: a line raised during it ends the wait below.
        let epoch = control.irq_epoch();
        let before = vcpu.executed();
        let slice = vcpu.slice_len();
        let end = vcpu.run_slice(slice);
        let delta = vcpu.executed().wrapping_sub(before);
        let total = shared.executed.fetch_add(delta, Ordering::Relaxed) + delta;
        if total >= shared.limit {
            // The device loop reports the limit; stop everyone now.
            shared.recall.store(true, Ordering::SeqCst);
            control.wake_all();
            return;
        }
        match end {
            SliceEnd::Budget => {}
            SliceEnd::Idle => {
                if !vcpu.wakeup_pending() && !shared.recall.load(Ordering::Acquire) {
                    control.wait_for_irq(epoch, MAX_IDLE);
                }
            }
            SliceEnd::Stopped | SliceEnd::Debug => return,
        }
    }
}

/// The calling thread's part of a threaded run: device time and the stop
/// conditions.
fn device_loop<W>(
    parts: MachineParts<'_>,
    shared: &Shared,
    deadline: Option<Instant>,
    watch: &mut dyn FnMut() -> Option<W>,
) -> RunEnd<W> {
    loop {
        if let Some(reason) = parts.control.stop_reason() {
            return RunEnd::Stop(reason);
        }
        let epoch = parts.control.irq_epoch();
        let next = parts.bus.tick_devices(parts.clock.now());
        let executed = || shared.executed.load(Ordering::Relaxed);
        if let Some(end) = end_after_tick(watch, executed, shared.limit, deadline) {
            return end;
        }
        // Until the next device deadline, at most a tick; an interrupt line
        // changing or a stop request (a vCPU reaching the instruction limit
        // wakes sleepers too) ends the wait early.
        let now = parts.clock.now();
        let wait = match next {
            Some(d) if d <= now => continue,
            Some(d) => parts.clock.ticks_to_duration(d - now).min(DEVICE_TICK),
            None => DEVICE_TICK,
        };
        parts.control.wait_for_irq(epoch, wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GuestRam, StopReason};
    use std::sync::Arc;

    /// A CPU that counts to a goal, idles after it, and powers the machine off
    /// when every counter in `done` reached it.
    struct Counter {
        count: u64,
        goal: u64,
        done: Arc<AtomicU64>,
        harts: u64,
        control: Arc<RunControl>,
        threads: Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
    }

    impl Vcpu for Counter {
        fn run_slice(&mut self, budget: u64) -> SliceEnd {
            self.threads
                .lock()
                .unwrap()
                .push(std::thread::current().id());
            if self.control.stop_requested() {
                return SliceEnd::Stopped;
            }
            if self.count >= self.goal {
                return SliceEnd::Idle;
            }
            self.count = (self.count + budget).min(self.goal);
            if self.count == self.goal && self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.harts
            {
                self.control.request_stop(StopReason::PowerOff(7));
            }
            SliceEnd::Budget
        }

        fn wakeup_pending(&self) -> bool {
            false
        }

        fn executed(&self) -> u64 {
            self.count
        }
    }

    fn machine() -> (Bus, VirtualClock, Arc<RunControl>) {
        let control = Arc::new(RunControl::new());
        let ram = Arc::new(GuestRam::new(4096).unwrap());
        (
            Bus::with_backing(ram, control.clone()),
            VirtualClock::host(10_000_000),
            control,
        )
    }

    fn counters(
        n: u64,
        goal: u64,
        control: &Arc<RunControl>,
    ) -> (
        Vec<Counter>,
        Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
    ) {
        let done = Arc::new(AtomicU64::new(0));
        let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let cpus = (0..n)
            .map(|_| Counter {
                count: 0,
                goal,
                done: done.clone(),
                harts: n,
                control: control.clone(),
                threads: threads.clone(),
            })
            .collect();
        (cpus, threads)
    }

    #[test]
    fn threaded_run_gives_each_vcpu_its_own_thread_and_ends_on_power_off() {
        let (bus, clock, control) = machine();
        let (mut cpus, threads) = counters(4, 10 * SLICE, &control);
        let parts = MachineParts {
            bus: &bus,
            clock: &clock,
            control: &control,
        };
        let end = run_threaded(&mut cpus, parts, RunLimits::default(), &mut || None::<()>)
            .expect("threads start");
        assert_eq!(end, RunEnd::Stop(StopReason::PowerOff(7)));
        assert!(cpus.iter().all(|c| c.count == 10 * SLICE));
        let mut ids = threads.lock().unwrap().clone();
        ids.sort_by_key(|id| format!("{id:?}"));
        ids.dedup();
        assert_eq!(ids.len(), 4, "one host thread per vCPU");
        assert!(!ids.contains(&std::thread::current().id()));
    }

    #[test]
    fn threaded_run_stops_at_an_instruction_limit_and_a_watch_value() {
        let (bus, clock, control) = machine();
        let parts = MachineParts {
            bus: &bus,
            clock: &clock,
            control: &control,
        };
        let (mut cpus, _) = counters(2, u64::MAX, &control);
        let limits = RunLimits {
            wall: None,
            executed: Some(100 * SLICE),
        };
        let end = run_threaded(&mut cpus, parts, limits, &mut || None::<()>).unwrap();
        assert_eq!(end, RunEnd::InstructionLimit);
        let total: u64 = cpus.iter().map(|c| c.count).sum();
        assert!((100 * SLICE..=103 * SLICE).contains(&total), "{total}");
        let mut calls = 0;
        let end = run_threaded(&mut cpus, parts, RunLimits::default(), &mut || {
            calls += 1;
            (calls == 3).then_some("seen")
        })
        .unwrap();
        assert_eq!(end, RunEnd::Watched("seen"));
    }

    #[test]
    fn idle_vcpus_sleep_until_the_time_limit() {
        let (bus, clock, control) = machine();
        let parts = MachineParts {
            bus: &bus,
            clock: &clock,
            control: &control,
        };
        let (mut cpus, threads) = counters(2, 0, &control);
        let limits = RunLimits {
            wall: Some(Duration::from_millis(100)),
            executed: None,
        };
        let end = run_threaded(&mut cpus, parts, limits, &mut || None::<()>).unwrap();
        assert_eq!(end, RunEnd::TimedOut);
        // Idle CPUs wait on the run control rather than spin: a few slices
        // per MAX_IDLE at most, not thousands.
        let slices = threads.lock().unwrap().len() as u128;
        assert!(
            slices < 2 * (100 / MAX_IDLE.as_millis() + 2) * 4,
            "{slices}"
        );
    }

    #[test]
    fn interleaved_run_stops_exactly_at_the_instruction_limit() {
        let (bus, clock, control) = machine();
        let parts = MachineParts {
            bus: &bus,
            clock: &clock,
            control: &control,
        };
        let (mut cpus, threads) = counters(3, u64::MAX, &control);
        let limits = RunLimits {
            wall: None,
            executed: Some(5 * SLICE + 7),
        };
        let end = run_interleaved(&mut cpus, parts, limits, &mut || None::<()>);
        assert_eq!(end, RunEnd::InstructionLimit);
        let total: u64 = cpus.iter().map(|c| c.count).sum();
        assert!((5 * SLICE + 7..5 * SLICE + 10).contains(&total), "{total}");
        let current = std::thread::current().id();
        assert!(threads.lock().unwrap().iter().all(|&id| id == current));
    }
}
