//! `turing test` end to end: suites of bare-metal and Linux cases, reports, a
//! failing fixture, bad suite files; and deterministic Linux boots compared byte
//! for byte.

use std::path::{Path, PathBuf};
use std::process::Output;

use tests::images::debian_images;
use tests::{build_dir, repo_root, turing_command};

fn turing_test(suite: &Path, name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out = build_dir("suites").join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("report folder");
    let output = turing_command()
        .arg("test")
        .arg(suite)
        .arg("--junit")
        .arg(out.join("junit.xml"))
        .arg("--json")
        .arg(out.join("report.json"))
        .arg("--log-dir")
        .arg(out.join("logs"))
        .args(extra)
        .env("TURING_IMAGES", images_dir())
        .output()
        .expect("run turing test");
    (output, out)
}

fn images_dir() -> PathBuf {
    debian_images()
        .kernel
        .parent()
        .expect("images folder")
        .to_owned()
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("JSON report");
    serde_json::from_str(&text).expect("valid JSON")
}

fn case<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {report}"))
}

#[test]
fn eight_bare_metal_cases_run_in_parallel() {
    let suite = repo_root().join("tests/fixtures/demo-suite.toml");
    let (output, out) = turing_test(&suite, "demo", &["--jobs", "8"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report = report(&out);
    assert_eq!(report["passed"], 8, "{report}");
    for name in [
        "banner",
        "help",
        "info",
        "echo",
        "smp2",
        "interpreter",
        "reboot",
        "deterministic",
    ] {
        let case = case(&report, name);
        assert_eq!(case["passed"], true, "{case}");
        assert!(case["seconds"].as_f64().unwrap() > 0.0, "{case}");
        assert!(case["instructions"].as_u64().unwrap() > 0, "{case}");
        assert!(case["max_rss_kib"].as_u64().unwrap() > 0, "{case}");
        // The summary table has a row per case with its time.
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no summary row for {name}:\n{stdout}"));
        assert!(row.contains("pass") && row.contains(" s "), "{row}");
        assert!(out.join(format!("logs/{name}.log")).is_file());
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("JUnit report");
    assert!(junit.contains("tests=\"8\" failures=\"0\""), "{junit}");
}

#[test]
fn failing_cases_get_failing_verdicts_logs_and_exit_code() {
    let suite = repo_root().join("tests/fixtures/failing-suite.toml");
    let (output, out) = turing_test(&suite, "failing", &["--jobs", "3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 passed, 2 failed"), "{stdout}");
    let report = report(&out);
    assert_eq!(case(&report, "passes")["passed"], true);
    let never = case(&report, "never-prints");
    assert_eq!(never["passed"], false);
    assert_eq!(never["exit_code"], 124);
    assert!(
        never["message"]
            .as_str()
            .unwrap()
            .contains("something else"),
        "{never}"
    );
    let log = std::fs::read_to_string(out.join("logs/never-prints.log")).expect("log");
    assert!(log.contains("turing> echo something"), "{log}");
    let wrong = case(&report, "wrong-exit");
    assert_eq!(wrong["passed"], false);
    assert!(
        wrong["message"].as_str().unwrap().contains("expected 3"),
        "{wrong}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("JUnit report");
    assert!(junit.contains("tests=\"3\" failures=\"2\""), "{junit}");
    assert!(junit.contains("<failure message="), "{junit}");
}

#[test]
fn a_bad_suite_is_rejected_before_anything_runs() {
    let dir = build_dir("suites").join("bad-input");
    std::fs::create_dir_all(&dir).expect("folder");
    let suite = dir.join("bad.toml");
    std::fs::write(
        &suite,
        "[[case]]\nname = \"ok\"\nsteps = [{ expect = \"x\" }]\n\n[[case]]\nname = \"bad\"\nsteps = [\n  { expect = \"[unclosed\" },\n]\n",
    )
    .expect("write suite");
    let (output, out) = turing_test(&suite, "bad", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.toml:8:"), "{stderr}");
    assert!(stderr.contains("invalid regex"), "{stderr}");
    assert!(!out.join("logs/ok.log").exists(), "a case ran");
}

#[test]
fn the_example_linux_suite_passes() {
    let suite = repo_root().join("examples/linux-smoke.toml");
    let (output, out) = turing_test(&suite, "linux", &["--jobs", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("JUnit report");
    assert!(junit.contains("tests=\"3\" failures=\"0\""), "{junit}");
}

/// Boots Linux with `--seed`, reads 16 bytes of /dev/urandom, returns the log.
fn deterministic_boot(accel: &str, seed: u64, name: &str) -> Vec<u8> {
    let images = debian_images();
    let log = build_dir("suites").join(format!("deterministic-{name}.log"));
    let _ = std::fs::remove_file(&log);
    let status = turing_command()
        .args(["run", "--memory", "512M", "--accel", accel, "--seed"])
        .arg(seed.to_string())
        .arg("--kernel")
        .arg(&images.kernel)
        .arg("--initrd")
        .arg(&images.initramfs)
        .args(["--append", "console=ttyS0", "--timeout", "300", "--serial"])
        .arg(format!("file:{}", log.display()))
        .args([
            "--expect",
            "~ # ",
            "--send",
            "head -c 16 /dev/urandom | od -An -tx1",
        ])
        .args(["--expect", "~ # "])
        .status()
        .expect("run turing");
    assert!(status.success(), "deterministic boot {name} failed");
    std::fs::read(&log).expect("serial log")
}

/// The line of random bytes the guest printed.
fn entropy_line(log: &[u8]) -> String {
    let text = String::from_utf8_lossy(log);
    let mut lines = text.lines().skip_while(|l| !l.contains("/dev/urandom"));
    lines.nth(1).unwrap_or_default().trim().to_owned()
}

#[test]
fn deterministic_linux_boots_repeat_byte_for_byte_under_the_jit() {
    let first = deterministic_boot("jit", 1, "jit-a");
    let second = deterministic_boot("jit", 1, "jit-b");
    // printk timestamps included: they come from virtual time.
    assert!(String::from_utf8_lossy(&first).contains("[    0.0"));
    assert!(first == second, "two runs with seed 1 differ");
    let other = deterministic_boot("jit", 2, "jit-seed2");
    let (a, b) = (entropy_line(&first), entropy_line(&other));
    assert_eq!(a.split_whitespace().count(), 16, "{a}");
    assert_ne!(a, b, "seed 2 gave the guest the same entropy as seed 1");
}

#[test]
fn deterministic_linux_boots_repeat_byte_for_byte_under_the_interpreter() {
    let first = deterministic_boot("interp", 5, "interp-a");
    let second = deterministic_boot("interp", 5, "interp-b");
    assert!(first == second, "two interpreter runs with seed 5 differ");
}
