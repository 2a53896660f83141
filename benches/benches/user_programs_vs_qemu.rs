//! Real programs under `turing user` against `qemu-riscv64`: Debian's riscv64
//! python3, perl, lua, sqlite3, xz, zstd, node, ripgrep (Rust) and fzf (Go) from
//! the images' sysroot, each doing a task of a few seconds, on both emulators in
//! one run with the same sysroot; outputs must match. Prints each time, the
//! ratios, their geometric mean and the worst task.
//!
//! Only tasks that stay in one program are timed: `qemu-riscv64 -L` does not
//! apply its sysroot to programs started with execve, so a task that spawns
//! would run host programs under QEMU. (`tests/tests/user_programs.rs` checks
//! those tasks for correctness.)
//!
//! `cargo xtask bench` runs it; `cargo bench -p benches --bench
//! user_programs_vs_qemu [-- --runs N]` alone works too (best of N, default 1).

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::images::debian_images;

/// One timed task: a program of the sysroot and its arguments.
struct Task {
    name: &'static str,
    program: &'static str,
    args: Vec<String>,
}

/// `size` bytes of text-like words and numbers, the same every run.
fn corpus(size: usize) -> PathBuf {
    let path = tests::build_dir("bench").join(format!("corpus-{size}.txt"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == size as u64) {
        return path;
    }
    let words = [
        "riscv", "emulator", "turing", "qemu", "kernel", "page", "fault", "trap",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut text = Vec::with_capacity(size);
    while text.len() < size {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.extend_from_slice(words[(state >> 61) as usize].as_bytes());
        text.push(if state >> 58 & 7 == 0 { b'\n' } else { b' ' });
        if state >> 40 & 0xff < 16 {
            text.extend_from_slice((state >> 32 & 0xffff).to_string().as_bytes());
        }
    }
    text.truncate(size);
    std::fs::write(&path, text).expect("write the corpus");
    path
}

fn tasks(sysroot: &Path) -> Vec<Task> {
    let big = corpus(8 << 20).display().to_string();
    let small = corpus(2 << 20).display().to_string();
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    vec![
        Task {
            name: "python3 json, regex, sha256",
            program: "usr/bin/python3",
            args: s(&[
                "-c",
                "import json, hashlib, re\n\
                 data = [{'n': i, 'sq': i * i, 's': str(i) * 3} for i in range(150000)]\n\
                 text = json.dumps(data, sort_keys=True)\n\
                 back = json.loads(text)\n\
                 print(len(re.findall(r'\\d+', text)), hashlib.sha256(text.encode()).hexdigest()[:16], len(back))",
            ]),
        },
        Task {
            name: "perl regex loop",
            program: "usr/bin/perl",
            args: s(&[
                "-e",
                r#"for my $i (1..40000){ my $l="id=$i name=user".($i*7%1000)." mail=u$i\@ex".($i%97).".org val=".($i*13%10007); (my $t=$l)=~s/(\d+)/<$1>/g; $n+=length $t } print "$n\n""#,
            ]),
        },
        Task {
            name: "lua tables",
            program: "usr/bin/lua5.4",
            args: s(&[
                "-e",
                "local t = {} for i = 1, 3000000 do t[i] = (i * 7) % 1000 end \
                 local s = 0 for _, v in ipairs(t) do s = s + v end \
                 local m = {} for i = 1, 300000 do m['k' .. (i % 5000)] = i end \
                 print(s, #t)",
            ]),
        },
        Task {
            name: "sqlite3 200k rows",
            program: "usr/bin/sqlite3",
            args: s(&[
                ":memory:",
                "create table t(n integer, s text);\
                 with recursive c(x) as (select 1 union all select x + 1 from c where x < 200000)\
                 insert into t select x, hex(x * 7919) from c;\
                 create index t_s on t(s);\
                 select count(*), sum(n), count(distinct substr(s, 1, 3)) from t;",
            ]),
        },
        Task {
            name: "xz -6 of 8 MiB",
            program: "usr/bin/xz",
            args: s(&["-6", "-c", "-T1", &big]),
        },
        Task {
            name: "zstd -19 of 2 MiB",
            program: "usr/bin/zstd",
            args: s(&["-19", "-c", "-q", "--single-thread", &small]),
        },
        Task {
            name: "node json and sort",
            program: "usr/bin/node",
            args: s(&[
                "-e",
                "const a = []; for (let i = 0; i < 300000; i++) a.push({k: (i * 7919) % 100003, v: 'x' + i});\
                 a.sort((p, q) => p.k - q.k); const t = JSON.stringify(a);\
                 console.log(t.length, JSON.parse(t)[12345].v)",
            ]),
        },
        Task {
            name: "ripgrep (Rust) over /usr/lib/python3*",
            program: "usr/bin/rg",
            args: vec![
                "-c".to_owned(),
                "--sort".to_owned(),
                "path".to_owned(),
                "def [a-z_]+\\(self".to_owned(),
                sysroot.join("usr/lib").display().to_string(),
            ],
        },
        Task {
            name: "fzf (Go) filter of 8 MiB",
            program: "usr/bin/fzf",
            args: s(&["--filter=trapfault", "--no-sort"]),
        },
    ]
}

/// Best wall time of `runs` runs and the output's digest (its length and a
/// hash, so big outputs compare cheaply).
fn time(what: &str, runs: usize, make: impl Fn() -> Command) -> (f64, (usize, u64)) {
    let (best, stdout) = benches::best_of(what, runs, make);
    let hash = stdout.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (best, (stdout.len(), hash))
}

fn main() {
    let runs = benches::runs_arg_or(1);
    let sysroot = debian_images().sysroot;
    let turing = benches::turing_binary();
    let corpus = corpus(8 << 20);
    let mut ratios = Vec::new();
    println!("real programs under turing user and qemu-riscv64 (best of {runs}):");
    println!(
        "  {:<38} {:>9} {:>9} {:>7}",
        "task", "turing s", "qemu s", "ratio"
    );
    for task in tasks(&sysroot) {
        let program = sysroot.join(task.program);
        // fzf reads its candidates from stdin: the corpus.
        let stdin = || {
            if task.program.ends_with("fzf") {
                std::process::Stdio::from(std::fs::File::open(&corpus).expect("open the corpus"))
            } else {
                std::process::Stdio::null()
            }
        };
        let (turing_s, turing_out) = time(task.name, runs, || {
            let mut c = Command::new(&turing);
            c.arg("user")
                .arg("-L")
                .arg(&sysroot)
                .arg("--")
                .arg(&program)
                .args(&task.args)
                .stdin(stdin());
            c
        });
        let (qemu_s, qemu_out) = time(task.name, runs, || {
            let mut c = Command::new("qemu-riscv64");
            c.arg("-L")
                .arg(&sysroot)
                .arg(&program)
                .args(&task.args)
                .stdin(stdin());
            c
        });
        assert_eq!(
            turing_out, qemu_out,
            "{}: turing's output differs from qemu's",
            task.name
        );
        let ratio = turing_s / qemu_s;
        println!(
            "  {:<38} {turing_s:9.2} {qemu_s:9.2} {ratio:7.2}",
            task.name
        );
        ratios.push((ratio, task.name));
    }
    let geomean = benches::geomean(&ratios.iter().map(|(r, _)| *r).collect::<Vec<_>>());
    let worst = ratios
        .iter()
        .copied()
        .fold((0.0, ""), |w, r| if r.0 > w.0 { r } else { w });
    println!(
        "  geomean turing/qemu {geomean:.2} (target 0.7); worst {:.2} ({}, target 1.2)",
        worst.0, worst.1
    );
}
