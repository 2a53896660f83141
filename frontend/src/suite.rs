//! `turing test`: runs a suite of guest cases headless and reports verdicts.
//!
//! A suite file names machine configurations (the keys of `--config` files) and,
//! per case, a script of steps. Every case runs as its own `turing run` process
//! (so a case that goes wrong cannot disturb the others and its peak memory is its
//! own), with the serial log, the script and the result JSON in the log folder.
//! The whole file is checked before anything runs.
//!
//! ```toml
//! [defaults]                      # machine keys shared by every case
//! kernel = "${TURING_IMAGES}/Image"
//! memory = "512M"
//!
//! [[case]]
//! name = "uname"
//! config = "vm.toml"              # optional: a --config file, relative to the suite
//! machine = { smp = 2 }           # optional: keys overriding defaults and config
//! steps = [
//!   { expect = "~ # ", within = 60 },
//!   { send = "uname -m" },
//!   { expect = "riscv64" },
//! ]
//! ```

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use emu_core::config::{Accel, BiosChoice, MachineConfig, MachineSpec};
use emu_core::sync::LockRecover;
use serde::{Deserialize, Serialize};

use crate::script::StepSpec;

/// Flags of `turing test`.
#[derive(Debug, Default, clap::Args)]
pub struct TestArgs {
    /// The suite file (TOML).
    #[arg(value_name = "SUITE")]
    pub suite: PathBuf,
    /// Cases run at once (default: the host's CPU count).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Folder for each case's serial log, script and result
    /// (default: turing-test-logs/<suite name>).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Run only the cases whose name contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
}

/// The suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    #[serde(default)]
    defaults: MachineSpec,
    #[serde(default)]
    case: Vec<toml::Spanned<CaseFile>>,
}

/// One `[[case]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    config: Option<PathBuf>,
    #[serde(default)]
    machine: MachineSpec,
    #[serde(default)]
    steps: Vec<toml::Spanned<StepSpec>>,
}

/// A checked case, ready to run.
#[derive(Debug)]
pub struct Case {
    /// Its name.
    pub name: String,
    config: MachineConfig,
    steps: Vec<StepSpec>,
}

/// How a case ended.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The case.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Guest instructions retired.
    pub instructions: Option<u64>,
    /// Peak resident memory of the case's process, KiB.
    pub max_rss_kib: Option<u64>,
    /// The run's exit code.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub message: Option<String>,
    /// The serial log.
    pub log: PathBuf,
}

/// Reads and checks a suite: Err is one line naming the file, line and problem.
pub fn load(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read suite {}: {e}", path.display()))?;
    let at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: SuiteFile = toml::from_str(&text).map_err(|e| match e.span() {
        Some(span) => format!(
            "{}:{}: {}",
            path.display(),
            at(span.start),
            e.message().trim()
        ),
        None => format!("{}: {}", path.display(), e.message().trim()),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut defaults = file.defaults;
    defaults
        .locate_files(base)
        .map_err(|e| format!("{}: [defaults]: {e}", path.display()))?;
    if file.case.is_empty() {
        return Err(format!("{}: no [[case]] tables", path.display()));
    }
    let mut names = HashSet::new();
    let mut cases = Vec::new();
    for spanned in file.case {
        let line = at(spanned.span().start);
        let case = spanned.into_inner();
        let here =
            |problem: String| format!("{}:{line}: case '{}': {problem}", path.display(), case.name);
        if case.name.trim().is_empty() || case.name.contains(['/', '\\']) {
            return Err(here(
                "a case needs a name without slashes (it names the log files)".to_owned(),
            ));
        }
        if !names.insert(case.name.clone()) {
            return Err(here("another case has the same name".to_owned()));
        }
        let mut spec = defaults.clone();
        if let Some(config) = &case.config {
            let config_path = base.join(config);
            let from_file =
                MachineSpec::from_file(&config_path).map_err(|e| here(e.to_string()))?;
            spec = spec.overlay(from_file);
        }
        let mut machine = case.machine;
        machine.locate_files(base).map_err(&here)?;
        let config = spec
            .overlay(machine)
            .resolve()
            .map_err(|e| here(e.to_string()))?;
        check_files(&config).map_err(&here)?;
        let mut steps = Vec::new();
        for step in case.steps {
            let step_line = at(step.span().start);
            step.get_ref().to_step().map_err(|e| {
                format!("{}:{step_line}: case '{}': {e}", path.display(), case.name)
            })?;
            steps.push(step.into_inner());
        }
        cases.push(Case {
            name: case.name,
            config,
            steps,
        });
    }
    Ok(cases)
}

/// Every file the machine reads must exist before the suite starts.
fn check_files(config: &MachineConfig) -> Result<(), String> {
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if let Some(kernel) = &config.kernel {
        files.push(("kernel", kernel));
    }
    if let Some(BiosChoice::File(bios)) = &config.bios {
        files.push(("bios", bios));
    }
    if let Some(initrd) = &config.initrd {
        files.push(("initrd", initrd));
    }
    for drive in &config.drives {
        files.push(("drive", &drive.file));
    }
    for (what, file) in files {
        if !file.is_file() {
            return Err(format!("{what} {} does not exist", file.display()));
        }
    }
    Ok(())
}

/// The `turing run` arguments for a case's machine.
fn run_args(config: &MachineConfig) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        "--machine".to_owned(),
        config.machine.clone(),
        "--memory".to_owned(),
        config.memory.to_string(),
        "--smp".to_owned(),
        config.smp.to_string(),
        "--accel".to_owned(),
        match config.accel {
            Accel::Jit => "jit",
            Accel::Interp => "interp",
        }
        .to_owned(),
    ];
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    if let Some(kernel) = &config.kernel {
        flag("kernel", kernel.display().to_string());
    }
    match &config.bios {
        Some(BiosChoice::File(bios)) => flag("bios", bios.display().to_string()),
        Some(BiosChoice::None) => flag("bios", "none".to_owned()),
        None => {}
    }
    if let Some(initrd) = &config.initrd {
        flag("initrd", initrd.display().to_string());
    }
    if let Some(append) = &config.append {
        flag("append", append.clone());
    }
    for drive in &config.drives {
        flag("drive", drive.to_string());
    }
    for device in &config.devices {
        flag("device", device.to_string());
    }
    if let Some(timeout) = config.timeout {
        flag("timeout", timeout.to_string());
    }
    if config.deterministic {
        flag("seed", config.seed.to_string());
    }
    if let Some(max) = config.max_instructions {
        flag("max-instructions", max.to_string());
    }
    args
}

/// The script file format `turing run --script` reads.
#[derive(Serialize)]
struct ScriptOut<'a> {
    step: &'a [StepSpec],
}

/// Runs one case as a child `turing run`; never fails, a problem is a verdict.
fn run_case(turing: &Path, case: &Case, log_dir: &Path) -> CaseResult {
    let log = log_dir.join(format!("{}.log", case.name));
    let script = log_dir.join(format!("{}.script.toml", case.name));
    let result_file = log_dir.join(format!("{}.result.json", case.name));
    let mut result = CaseResult {
        name: case.name.clone(),
        passed: false,
        seconds: 0.0,
        instructions: None,
        max_rss_kib: None,
        exit_code: None,
        message: None,
        log: log.clone(),
    };
    // The serial backend appends: start each run with an empty log.
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&result_file);
    let mut command = Command::new(turing);
    command
        .args(run_args(&case.config))
        .arg("--serial")
        .arg(format!("file:{}", log.display()))
        .arg("--stats-json")
        .arg(&result_file)
        .args(["--display", "none"]);
    if !case.steps.is_empty() {
        let text = match toml::to_string(&ScriptOut { step: &case.steps }) {
            Ok(text) => text,
            Err(e) => {
                result.message = Some(format!("cannot write the script: {e}"));
                return result;
            }
        };
        if let Err(e) = std::fs::write(&script, text) {
            result.message = Some(format!("cannot write {}: {e}", script.display()));
            return result;
        }
        command.arg("--script").arg(&script);
    }
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    result.seconds = started.elapsed().as_secs_f64();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            result.message = Some(format!("cannot start {}: {e}", turing.display()));
            return result;
        }
    };
    result.exit_code = output.status.code();
    let stats: Option<serde_json::Value> = std::fs::read_to_string(&result_file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    if let Some(stats) = &stats {
        result.instructions = stats["instructions"].as_u64();
        result.max_rss_kib = stats["max_rss_kib"].as_u64();
        result.message = stats["message"].as_str().map(str::to_owned);
    }
    result.passed = output.status.success();
    if !result.passed && result.message.is_none() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        result.message = Some(match (last, output.status.code()) {
            (Some(line), _) => line.trim().to_owned(),
            (None, Some(code)) => format!("exit code {code}"),
            (None, None) => "killed by a signal".to_owned(),
        });
    }
    if !result.passed && result.message.is_none() {
        result.message = Some(format!("exit code {}", result.exit_code.unwrap_or(-1)));
    }
    result
}

/// Runs `turing test`; returns the process exit code (0 all passed, 1 a case
/// failed) or Err(message) for a bad suite or flags.
pub fn test(args: &TestArgs) -> Result<i32, String> {
    let mut cases = load(&args.suite)?;
    if let Some(pattern) = &args.filter {
        cases.retain(|case| case.name.contains(pattern.as_str()));
        if cases.is_empty() {
            return Err(format!("no case name contains '{pattern}'"));
        }
    }
    let jobs = match args.jobs {
        Some(0) => return Err("invalid --jobs 0: expected at least 1".to_owned()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let stem = args
        .suite
        .file_stem()
        .map_or("suite".into(), |s| s.to_string_lossy().into_owned());
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| Path::new("turing-test-logs").join(&stem));
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create log folder {}: {e}", log_dir.display()))?;
    let turing =
        std::env::current_exe().map_err(|e| format!("cannot find the turing executable: {e}"))?;

    let progress = Progress::new(cases.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(cases.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(index) else {
                        break;
                    };
                    progress.started(&case.name);
                    let result = run_case(&turing, case, &log_dir);
                    progress.finished(&result);
                    results.lock_recover()[index] = Some(result);
                }
            });
        }
    });
    progress.done();
    let results: Vec<CaseResult> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let total = started.elapsed();
    print_summary(&results, total);
    if let Some(path) = &args.junit {
        std::fs::write(path, junit_xml(&stem, &results, total))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "suite": stem,
            "passed": results.iter().filter(|r| r.passed).count(),
            "failed": results.iter().filter(|r| !r.passed).count(),
            "seconds": total.as_secs_f64(),
            "cases": results,
        });
        std::fs::write(path, format!("{report:#}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(if results.iter().all(|r| r.passed) {
        0
    } else {
        1
    })
}

/// Live progress: a bar on a terminal, one plain line per finished case otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: AtomicUsize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            done: AtomicUsize::new(0),
        }
    }

    fn started(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("running {name}"));
        }
    }

    fn finished(&self, result: &CaseResult) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let verdict = if result.passed { "pass" } else { "FAIL" };
        let line = format!(
            "[{done}/{}] {}: {verdict} ({:.1} s){}",
            self.total,
            result.name,
            result.seconds,
            result
                .message
                .as_ref()
                .filter(|_| !result.passed)
                .map_or(String::new(), |m| format!(": {m}"))
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(results: &[CaseResult], total: Duration) {
    let width = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:width$}  {:7}  {:>9}  {:>14}  {:>10}",
        "case", "verdict", "time", "instructions", "memory"
    );
    for r in results {
        let instructions = r
            .instructions
            .map_or("-".to_owned(), |n| format!("{:.3} G", n as f64 / 1e9));
        let memory = r
            .max_rss_kib
            .map_or("-".to_owned(), |k| format!("{} MiB", k / 1024));
        let _ = writeln!(
            out,
            "{:width$}  {:7}  {:>7.2} s  {:>14}  {:>10}",
            r.name,
            if r.passed { "pass" } else { "FAIL" },
            r.seconds,
            instructions,
            memory
        );
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    let _ = writeln!(
        out,
        "{} passed, {failed} failed in {:.1} s",
        results.len() - failed,
        total.as_secs_f64()
    );
}

/// Escapes text for XML attributes and content.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, which guest output has.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report (the subset CI systems read: one testsuite, a testcase per
/// case, failures with their message and the end of the serial log).
fn junit_xml(suite: &str, results: &[CaseResult], total: Duration) -> String {
    // Written by hand: the format needs a dozen lines, and the JUnit crates would
    // bring an XML stack for them.
    let failed = results.iter().filter(|r| !r.passed).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml += &format!(
        "<testsuites tests=\"{}\" failures=\"{failed}\" time=\"{:.3}\">\n",
        results.len(),
        total.as_secs_f64()
    );
    xml += &format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{:.3}\">\n",
        xml_escape(suite),
        results.len(),
        total.as_secs_f64()
    );
    for r in results {
        xml += &format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            xml_escape(&r.name),
            xml_escape(suite),
            r.seconds
        );
        if r.passed {
            xml += "/>\n";
            continue;
        }
        let log = std::fs::read(&r.log).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        xml += &format!(
            ">\n      <failure message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>\n",
            xml_escape(r.message.as_deref().unwrap_or("failed")),
            xml_escape(&tail.join("\n"))
        );
    }
    xml += "  </testsuite>\n</testsuites>\n";
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_suite(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("turing-suite-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("suite.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.join("prog.elf"), b"not really").unwrap();
        path
    }

    #[test]
    fn a_good_suite_loads_with_defaults_applied() {
        let path = write_suite(
            "good",
            "[defaults]\nkernel = \"prog.elf\"\nbios = \"none\"\nmemory = \"64M\"\n\n\
             [[case]]\nname = \"one\"\nsteps = [{ expect = \"hi\", within = 5 }, { exit = 0 }]\n\n\
             [[case]]\nname = \"two\"\nmachine = { smp = 2, seed = 7 }\n",
        );
        let cases = load(&path).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].config.memory, 64 << 20);
        assert_eq!(cases[1].config.smp, 2);
        assert!(cases[1].config.deterministic);
        assert_eq!(cases[0].steps.len(), 2);
        let args = run_args(&cases[1].config);
        assert!(args.windows(2).any(|w| w == ["--seed", "7"]));
    }

    #[test]
    fn bad_suites_name_the_file_line_and_problem() {
        let cases = [
            (
                "unknown",
                "[[case]]\nname = \"a\"\nkernal = \"x\"\n",
                ":3:",
                "unknown field",
            ),
            (
                "regex",
                "[defaults]\nkernel = \"prog.elf\"\n[[case]]\nname = \"a\"\nsteps = [\n  { expect = \"(\" },\n]\n",
                ":6:",
                "invalid regex",
            ),
            (
                "missing",
                "[[case]]\nname = \"a\"\nkernel = \"nowhere.elf\"\n",
                ":1:",
                "does not exist",
            ),
            (
                "duplicate",
                "[defaults]\nkernel = \"prog.elf\"\n[[case]]\nname = \"a\"\n[[case]]\nname = \"a\"\n",
                ":5:",
                "same name",
            ),
            ("empty", "[defaults]\nmemory = \"64M\"\n", "", "no [[case]]"),
        ];
        for (name, text, line, problem) in cases {
            // Machine keys go in `machine`, not in the case itself.
            let text = text.replace(
                "kernel = \"nowhere.elf\"",
                "machine = { kernel = \"nowhere.elf\" }",
            );
            let path = write_suite(name, &text);
            let err = load(&path).unwrap_err();
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
            assert!(err.contains(line), "{name}: {err}");
            assert!(err.contains(problem), "{name}: {err}");
            assert!(!err.contains('\n'), "{name}: {err}");
        }
    }

    #[test]
    fn junit_escapes_guest_output() {
        let result = CaseResult {
            name: "a<b".into(),
            passed: false,
            seconds: 1.0,
            instructions: None,
            max_rss_kib: None,
            exit_code: Some(1),
            message: Some("got \"x\" & \u{1b}[0m".into()),
            log: PathBuf::from("/nonexistent"),
        };
        let xml = junit_xml("s", &[result], Duration::from_secs(1));
        assert!(xml.contains("name=\"a&lt;b\""));
        assert!(xml.contains("got &quot;x&quot; &amp; [0m"));
        assert!(xml.contains("failures=\"1\""));
    }
}
