//! `turing user`: riscv64 Linux programs run directly on the host.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use tests::images::debian_images;
use tests::{CROSS_SYSROOT, build_dir, build_linux_program, repo_root, turing_command};

fn turing_user(args: &[&str]) -> Output {
    turing_command()
        .arg("user")
        .args(args)
        .output()
        .expect("run turing user")
}

/// A fresh, empty scratch folder.
fn scratch(name: &str) -> PathBuf {
    tests::fresh_dir("user", name)
}

#[test]
fn debian_busybox_runs_a_script_of_applets_like_the_hosts_busybox() {
    let busybox = debian_images().busybox;
    let script = repo_root().join("tests/fixtures/user/applets.sh");
    let host = std::process::Command::new("busybox")
        .arg("sh")
        .arg(&script)
        .arg(scratch("applets-host"))
        .output()
        .expect("run the host's busybox (cargo xtask setup installs busybox-static)");
    assert!(
        host.status.success(),
        "the script fails on the host's busybox"
    );
    let expected = String::from_utf8_lossy(&host.stdout).into_owned();
    assert!(expected.contains("tar round trip"), "{expected}");
    for accel in ["jit", "interp"] {
        let dir = scratch(&format!("applets-{accel}"));
        let run = turing_user(&[
            "--accel",
            accel,
            busybox.to_str().unwrap(),
            "sh",
            script.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let got = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{accel}: exit {:?}\n{got}\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            got, expected,
            "{accel}: output differs from the host's busybox"
        );
    }
}

/// Builds the check program `source` (tests/guest/user/) and runs it under
/// `turing user --accel accel` in a scratch folder; returns its stderr once it
/// printed "ALL OK" and exited 0.
fn run_check_program(source: &str, flags: &[&str], accel: &str) -> String {
    let program = build_linux_program(
        &repo_root().join("tests/guest/user").join(source),
        "dynamic",
        flags,
    );
    let dir = scratch(&format!("{source}-{accel}"));
    let run = turing_user(&[
        "--accel",
        accel,
        "--sysroot",
        CROSS_SYSROOT,
        program.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(stdout.contains("ALL OK"), "{accel}:\n{stdout}\n{stderr}");
    assert_eq!(run.status.code(), Some(0), "{accel}:\n{stdout}\n{stderr}");
    stderr
}

#[test]
fn a_dynamically_linked_program_passes_its_system_call_checks() {
    let stderr = run_check_program("syscalls.c", &[], "jit");
    // The unimplemented call was reported once, on stderr.
    assert_eq!(
        stderr.matches("unimplemented system call").count(),
        1,
        "{stderr}"
    );
}

/// What real programs found missing: posix_spawn and vfork, clone3 threads,
/// eventfd, FIONBIO, SIGALRM from setitimer, FIFOs, timerfd, signalfd and more,
/// with both engines; calls a kernel may lack answer ENOSYS without a warning.
#[test]
fn processes_timers_and_event_descriptors_work_as_on_linux() {
    for accel in ["jit", "interp"] {
        let stderr = run_check_program("processes.c", &["-pthread"], accel);
        assert!(
            !stderr.contains("unimplemented system call"),
            "{accel}: {stderr}"
        );
    }
}

#[test]
fn exit_codes_and_fatal_signals_pass_through() {
    let busybox = debian_images().busybox;
    let bb = busybox.to_str().unwrap();
    let run = turing_user(&[bb, "sh", "-c", "exit 7"]);
    assert_eq!(run.status.code(), Some(7));
    // A guest killed by a signal ends turing the same way.
    let run = turing_user(&[bb, "sh", "-c", "kill -TERM $$; sleep 5"]);
    assert_eq!(run.status.signal(), Some(15), "{:?}", run.status);
    // argv[0] picks the applet, as with a busybox symlink.
    let run = turing_user(&["--argv0", "echo", bb, "via", "argv0"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "via argv0\n");
    // execve: a riscv64 program re-enters turing user, a host program runs natively.
    let nested = format!("exec {bb} echo nested riscv64");
    let run = turing_user(&[bb, "sh", "-c", &nested]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "nested riscv64\n");
    let run = turing_user(&[bb, "sh", "-c", "exec /bin/uname -m"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{}\n", std::env::consts::ARCH),
        "the host's uname"
    );
    let run = turing_user(&[bb, "uname", "-m"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "riscv64\n");
    // --env sets the guest's environment on top of the host's.
    let run = turing_user(&[
        "--env",
        "GREETING=hi there",
        bb,
        "sh",
        "-c",
        "echo $GREETING",
    ]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hi there\n");
}

#[test]
fn strace_prints_each_system_call() {
    let busybox = debian_images().busybox;
    let run = turing_user(&["--strace", busybox.to_str().unwrap(), "echo", "traced"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "traced\n");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("write(0x1, "), "{stderr}");
    assert!(stderr.contains("= 0x7"), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("exit_group(")),
        "{stderr}"
    );
}

fn assert_refused(args: &[&str], message: &str) {
    let run = turing_user(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
}

#[test]
fn bad_programs_get_one_line_and_exit_code_2() {
    let dir = scratch("bad-elves");
    // Wrong architecture: the host's own x86-64 programs.
    assert_refused(&["/bin/true"], "wrong architecture");
    // Not an ELF at all.
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    assert_refused(&[script.to_str().unwrap()], "not an ELF");
    // Truncated: the first 300 bytes of busybox.
    let whole = std::fs::read(debian_images().busybox).unwrap();
    let cut = dir.join("truncated");
    std::fs::write(&cut, &whole[..300]).unwrap();
    assert_refused(&[cut.to_str().unwrap()], "malformed ELF");
    let cut = dir.join("truncated-segments");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    assert_refused(&[cut.to_str().unwrap()], "truncated");
    // Missing interpreter: a dynamic program with an empty sysroot.
    let program = build_linux_program(
        &repo_root().join("tests/guest/user/syscalls.c"),
        "dynamic",
        &[],
    );
    let empty = scratch("empty-sysroot");
    assert_refused(
        &["-L", empty.to_str().unwrap(), program.to_str().unwrap()],
        "missing interpreter /lib/ld-linux-riscv64-lp64d.so.1",
    );
    // No such file, and a sysroot that is not a folder.
    assert_refused(&["/no/such/program"], "No such file");
    assert_refused(&["-L", "/no/such/root", "/bin/true"], "is not a directory");
}

#[test]
fn the_binfmt_line_registers_riscv64_elf_executables() {
    let run = turing_user(&["--binfmt-line"]);
    assert!(run.status.success());
    let line = String::from_utf8_lossy(&run.stdout);
    let fields: Vec<&str> = line.trim_end().split(':').collect();
    // :name:type:offset:magic:mask:interpreter:flags
    assert_eq!(fields.len(), 8, "{line}");
    assert_eq!(fields[1], "turing-riscv64");
    assert_eq!(fields[2], "M");
    assert!(
        fields[4].ends_with(r"\x02\x00\xf3\x00"),
        "machine 243: {line}"
    );
    assert!(Path::new(fields[6]).ends_with("turing-riscv64"), "{line}");
    assert_eq!(fields[7], "POCF");
    // The interpreter name works as documented: a symlink to turing, called with
    // the program's full path, its argv[0] and its arguments.
    let link = build_dir("user").join("turing-riscv64");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(tests::turing_binary(), &link).unwrap();
    let busybox = debian_images().busybox;
    let run = std::process::Command::new(&link)
        .arg(&busybox)
        .args(["echo", "binfmt", "works"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "binfmt works\n");
}

#[test]
fn threads_futexes_thread_locals_and_signals_work() {
    let program = build_linux_program(
        &repo_root().join("tests/guest/user/threads.c"),
        "pthread",
        &["-pthread"],
    );
    for accel in ["jit", "interp"] {
        let run = turing_user(&[
            "--accel",
            accel,
            "--sysroot",
            CROSS_SYSROOT,
            program.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stdout.contains("ALL OK"), "{accel}:\n{stdout}\n{stderr}");
        assert_eq!(run.status.code(), Some(0), "{accel}:\n{stdout}\n{stderr}");
        assert!(stderr.is_empty(), "{accel}: {stderr}");
    }
}

/// Translated code accesses guest memory directly, the host's page protection
/// standing in for the guest's: code rewritten without a flush still runs new,
/// a handler can resume a faulting loop, and faults without one kill the guest.
#[test]
fn direct_memory_access_keeps_linux_semantics() {
    let program = build_linux_program(
        &repo_root().join("tests/guest/user/memory.c"),
        "static",
        &["-static"],
    );
    let program = program.to_str().unwrap();
    for accel in ["jit", "interp"] {
        for mode in ["code", "resume"] {
            let run = turing_user(&["--accel", accel, program, mode]);
            let stdout = String::from_utf8_lossy(&run.stdout);
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(
                stdout.contains("ALL OK"),
                "{accel} {mode}:\n{stdout}\n{stderr}"
            );
            assert_eq!(run.status.code(), Some(0), "{accel} {mode}: {stderr}");
        }
        for (mode, printed) in [
            ("unmapped", "walking 819208601600\n"),
            ("readonly", "storing 1\n"),
            ("high", "high 819208601600\n"),
            ("top", "top 43\n"),
        ] {
            let run = turing_user(&["--accel", accel, program, mode]);
            let stdout = String::from_utf8_lossy(&run.stdout);
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert_eq!(stdout, printed, "{accel} {mode}: {stderr}");
            assert_eq!(
                run.status.signal(),
                Some(11), // SIGSEGV
                "{accel} {mode}: {:?} {stderr}",
                run.status
            );
        }
    }
}

#[test]
fn debian_coreutils_and_python_run_from_the_project_sysroot() {
    let sysroot = debian_images().sysroot;
    let root = sysroot.to_str().unwrap();
    // coreutils' sort, dynamically linked against the sysroot's libc.
    let input = scratch("sysroot").join("words.txt");
    std::fs::write(&input, "pear\napple\nfig\nbanana\napple\n").unwrap();
    let sort = sysroot.join("usr/bin/sort");
    let run = turing_user(&[
        "-L",
        root,
        sort.to_str().unwrap(),
        "-u",
        input.to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "apple\nbanana\nfig\npear\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // ls lists a folder like the host's ls.
    let ls = sysroot.join("usr/bin/ls");
    let run = turing_user(&[
        "-L",
        root,
        ls.to_str().unwrap(),
        "-1",
        sysroot.join("usr").to_str().unwrap(),
    ]);
    let host = std::process::Command::new("ls")
        .args(["-1"])
        .arg(sysroot.join("usr"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(run.stdout, host.stdout);
    // Python: the interpreter, its standard library and big integers.
    let python = sysroot.join("usr/bin/python3");
    let run = turing_user(&[
        "-L",
        root,
        python.to_str().unwrap(),
        "-c",
        "import sys, os; print(sys.platform, os.uname().machine, 2**100, sorted({3, 1, 2}))",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "linux riscv64 1267650600228229401496703205376 [1, 2, 3]\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
