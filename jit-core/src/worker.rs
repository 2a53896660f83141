//! A compile thread: translations are compiled off the CPU's thread, which
//! goes on interpreting the code meanwhile (QEMU compiles on the vCPU thread;
//! with the interpreter as a cold tier there is no need to wait).
//!
//! The thread owns the engine's [`CodeModule`]. The CPU's thread sends it
//! translation jobs, closures that emit one translation's IR into the module,
//! and collects the finished entries between guest blocks. Code memory is
//! freed only at a flush, which the CPU's thread asks for from its dispatch
//! loop and waits out, so no translation it may be running is ever freed.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{BlockFn, BlockKey, CodeModule, CodeSpan, Trampoline};

/// Emits one translation into the module and returns its entry.
pub type TranslateFn = Box<dyn FnOnce(&mut CodeModule) -> Result<BlockFn, String> + Send>;

/// What a translation is made from: its key, the guest code it covers (as it
/// was when the job was made) and how many guest instructions it holds.
#[derive(Debug)]
pub struct Translation {
    /// Entry pc and physical page.
    pub key: BlockKey,
    /// The guest bytes, page by page.
    pub spans: Vec<CodeSpan>,
    /// Guest instructions translated (for statistics).
    pub instructions: u64,
}

/// A translation the compile thread finished.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) what: Translation,
    pub(crate) entry: Result<BlockFn, String>,
    pub(crate) compile_time: Duration,
    /// The code memory it lives in (see `CompileWorker::module_generation`).
    pub(crate) module_generation: u64,
    /// The cache's era when the job was sent.
    pub(crate) era: u64,
}

enum Job {
    Translate {
        what: Translation,
        emit: TranslateFn,
        module_generation: u64,
        era: u64,
    },
    /// Frees the code memory and starts afresh; answers with the new
    /// trampoline.
    Flush(Sender<Option<Trampoline>>),
}

/// The CPU thread's handle on its compile thread.
#[derive(Debug)]
pub(crate) struct CompileWorker {
    jobs: Option<Sender<Job>>,
    finished: Receiver<Finished>,
    thread: Option<JoinHandle<()>>,
    trampoline: Option<Trampoline>,
    /// Counts flushes: a translation from an older generation lives in freed
    /// memory and is dropped.
    module_generation: u64,
}

impl CompileWorker {
    /// Starts a compile thread owning `module`.
    pub(crate) fn start(module: CodeModule) -> Result<CompileWorker, String> {
        let trampoline = module.trampoline();
        let (jobs, job_queue) = channel::<Job>();
        let (done, finished) = channel();
        let thread = std::thread::Builder::new()
            .name("turing-jit".into())
            .spawn(move || compile_loop(module, &job_queue, &done))
            .map_err(|e| format!("cannot start the compile thread: {e}"))?;
        Ok(CompileWorker {
            jobs: Some(jobs),
            finished,
            thread: Some(thread),
            trampoline,
            module_generation: 0,
        })
    }

    pub(crate) fn trampoline(&self) -> Option<Trampoline> {
        self.trampoline
    }

    /// Queues a translation; false if the thread is gone.
    pub(crate) fn send(&self, what: Translation, emit: TranslateFn, era: u64) -> bool {
        let job = Job::Translate {
            what,
            emit,
            module_generation: self.module_generation,
            era,
        };
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok())
    }

    /// The next finished translation of the current code memory, if any.
    pub(crate) fn try_finished(&mut self) -> Option<Finished> {
        loop {
            match self.finished.try_recv() {
                Ok(done) if done.module_generation == self.module_generation => return Some(done),
                Ok(_) => continue,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return None,
            }
        }
    }

    /// Frees the code memory and waits for fresh code memory.
    ///
    /// # Safety
    /// As for [`CodeModule::flush`]: no translation of this worker may be
    /// running or be called again.
    pub(crate) unsafe fn flush(&mut self) {
        let (reply, answer) = channel();
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job::Flush(reply)).is_ok());
        self.module_generation += 1;
        self.trampoline = if sent {
            answer.recv().ok().flatten()
        } else {
            None
        };
    }
}

impl Drop for CompileWorker {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its current job.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn compile_loop(mut module: CodeModule, jobs: &Receiver<Job>, done: &Sender<Finished>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Translate {
                what,
                emit,
                module_generation,
                era,
            } => {
                let started = crate::stats::thread_cpu_time();
                let entry = emit(&mut module);
                let finished = Finished {
                    what,
                    entry,
                    compile_time: crate::stats::thread_cpu_time() - started,
                    module_generation,
                    era,
                };
                if done.send(finished).is_err() {
                    return;
                }
            }
            Job::Flush(reply) => {
                // SAFETY: the CPU thread asks for a flush only from its dispatch
                // loop, outside translated code, and drops every entry into the
                // old code memory (its cache is emptied and its chain generation
                // moves on; results of older jobs carry the old module
                // generation and are dropped when they arrive).
                unsafe { module.flush() };
                let _ = reply.send(module.trampoline());
            }
        }
    }
}
