//! Scripted serial sessions: wait for patterns in the guest's output, type lines,
//! check the exit code. `turing run --expect/--send` and the steps of a `turing
//! test` case both become a [`Script`].
//!
//! The script runs on the machine's own thread between instruction slices, so in a
//! deterministic run the guest receives typed input at the same instruction count
//! every time.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use emu_core::sync::LockRecover;

/// Output kept for matching when no pattern matches it (older bytes are dropped).
const MAX_UNMATCHED: usize = 1 << 20;

/// One step of a script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Wait until `pattern` appears in the output, for at most `within`.
    Expect {
        /// What to wait for.
        pattern: Regex,
        /// Time limit for this step (wall time).
        within: Option<Duration>,
    },
    /// Type this line (a newline is added).
    Send(String),
    /// The guest must power off with this exit code.
    Exit(i32),
}

/// A step as written in a script or suite file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// A regular expression to wait for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// Seconds the expect may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<f64>,
    /// A line to type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// The exit code the guest must end with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
}

impl StepSpec {
    /// The step this describes, or why it is not one.
    pub fn to_step(&self) -> Result<Step, String> {
        match (&self.expect, &self.send, self.exit) {
            (Some(pattern), None, None) => {
                let within = match self.within {
                    Some(s) if !(s.is_finite() && s > 0.0) => {
                        return Err(format!(
                            "invalid within {s}: expected a positive number of seconds"
                        ));
                    }
                    s => s.map(Duration::from_secs_f64),
                };
                Ok(Step::Expect {
                    pattern: compile(pattern)?,
                    within,
                })
            }
            (None, Some(text), None) if self.within.is_none() => Ok(Step::Send(text.clone())),
            (None, None, Some(code)) if self.within.is_none() => Ok(Step::Exit(code)),
            _ => Err(
                "a step needs exactly one of expect (with an optional within), send or exit"
                    .to_owned(),
            ),
        }
    }
}

/// Compiles an expect pattern; the error is one line.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().last().unwrap_or_default().trim().to_owned();
        format!("invalid regex '{pattern}': {last}")
    })
}

/// The script file format of `turing run --script`: `[[step]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    step: Vec<StepSpec>,
}

/// Reads a script file; errors name the file and, where known, the line.
pub fn read_script_file(path: &Path) -> Result<Vec<Step>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read script {}: {e}", path.display()))?;
    let file: ScriptFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => format!("{}:{line}: {}", path.display(), e.message().trim()),
            None => format!("{}: {}", path.display(), e.message().trim()),
        }
    })?;
    file.step
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            spec.to_step()
                .map_err(|e| format!("{}: step {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Guest output captured for a script, written by the console.
#[derive(Clone, Debug, Default)]
pub struct OutputFeed(Arc<Mutex<Vec<u8>>>);

impl OutputFeed {
    /// Appends guest output.
    pub fn push(&self, data: &[u8]) {
        self.0.lock_recover().extend_from_slice(data);
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock_recover())
    }
}

/// Where a script stands after a poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptStatus {
    /// Still waiting for output.
    Running,
    /// Every step is done; the run can stop.
    Finished,
    /// Only the exit step is left: the guest must power off with this code.
    AwaitingExit(i32),
    /// A step's time ran out.
    TimedOut(String),
}

/// A script being played against a running guest.
#[derive(Debug)]
pub struct Script {
    steps: Vec<Step>,
    next: usize,
    unmatched: Vec<u8>,
    feed: OutputFeed,
    input: Sender<u8>,
    step_started: Instant,
}

impl Script {
    /// A script reading output from `feed` and typing into `input`.
    pub fn new(steps: Vec<Step>, feed: OutputFeed, input: Sender<u8>) -> Script {
        Script {
            steps,
            next: 0,
            unmatched: Vec::new(),
            feed,
            input,
            step_started: Instant::now(),
        }
    }

    /// Looks at new output and advances through as many steps as it allows.
    pub fn poll(&mut self) -> ScriptStatus {
        let fresh = self.feed.take();
        self.unmatched.extend_from_slice(&fresh);
        let excess = self.unmatched.len().saturating_sub(MAX_UNMATCHED);
        self.unmatched.drain(..excess);
        loop {
            let Some(step) = self.steps.get(self.next) else {
                return ScriptStatus::Finished;
            };
            match step {
                Step::Expect { pattern, within } => {
                    if let Some(found) = pattern.find(&self.unmatched) {
                        self.unmatched.drain(..found.end());
                    } else if within.is_some_and(|w| self.step_started.elapsed() >= w) {
                        return ScriptStatus::TimedOut(format!(
                            "'{}' did not appear within {} s",
                            pattern.as_str(),
                            within.unwrap_or_default().as_secs_f64()
                        ));
                    } else {
                        return ScriptStatus::Running;
                    }
                }
                Step::Send(text) => {
                    for byte in text.bytes().chain([b'\n']) {
                        // The receiver lives in the UART as long as the machine.
                        let _ = self.input.send(byte);
                    }
                }
                Step::Exit(code) => return ScriptStatus::AwaitingExit(*code),
            }
            self.next += 1;
            self.step_started = Instant::now();
        }
    }

    /// What the script was waiting for, for a failure message.
    pub fn waiting_for(&self) -> Option<String> {
        match self.steps.get(self.next)? {
            Step::Expect { pattern, .. } => Some(format!("'{}'", pattern.as_str())),
            Step::Send(_) => None,
            Step::Exit(code) => Some(format!("power-off with exit code {code}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(p: &str) -> Step {
        Step::Expect {
            pattern: compile(p).unwrap(),
            within: None,
        }
    }

    #[test]
    fn steps_follow_the_output_in_order_and_type_lines() {
        let feed = OutputFeed::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let steps = vec![
            expect("login:"),
            Step::Send("root".into()),
            expect(r"# $"),
            Step::Exit(3),
        ];
        let mut script = Script::new(steps, feed.clone(), tx);
        assert_eq!(script.poll(), ScriptStatus::Running);
        // The prompt pattern must not match output from before the login.
        feed.push(b"# junk\nlog");
        assert_eq!(script.poll(), ScriptStatus::Running);
        feed.push(b"in: ");
        assert_eq!(script.poll(), ScriptStatus::Running);
        assert_eq!(rx.try_iter().collect::<Vec<u8>>(), b"root\n");
        feed.push(b"welcome\n# ");
        assert_eq!(script.poll(), ScriptStatus::AwaitingExit(3));
        assert_eq!(
            script.waiting_for().as_deref(),
            Some("power-off with exit code 3")
        );
    }

    #[test]
    fn an_expect_times_out() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let steps = vec![Step::Expect {
            pattern: compile("never").unwrap(),
            within: Some(Duration::from_millis(1)),
        }];
        let mut script = Script::new(steps, OutputFeed::default(), tx);
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(script.poll(), ScriptStatus::TimedOut(m) if m.contains("never")));
    }

    #[test]
    fn bad_steps_are_refused_with_one_line() {
        let err = compile("(unclosed").unwrap_err();
        assert!(err.starts_with("invalid regex '(unclosed'"), "{err}");
        assert!(!err.contains('\n'));
        let both = StepSpec {
            expect: Some("a".into()),
            within: None,
            send: Some("b".into()),
            exit: None,
        };
        assert!(both.to_step().is_err());
    }
}
