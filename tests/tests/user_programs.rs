//! The user-mode compatibility suite: real programs from Debian's riscv64
//! packages (the sysroot `cargo xtask images` builds) doing real tasks under
//! `turing user`, each output compared with an answer worked out on the host
//! with the host's own tools. Every task is a bash script run by the guest's
//! bash, so the programs are started the way a shell starts them (fork, execve
//! re-entering Turing, pipes), and each reports its time on stderr.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::images::debian_images;
use tests::turing_binary;

/// How long one task may take on a loaded two-core machine.
const TASK_LIMIT: Duration = Duration::from_secs(600);

/// Runs `script` with the sysroot's bash under `turing user` in a fresh folder,
/// and checks that its output is `expected`.
fn run_task(name: &str, script: &str, expected: &str) {
    let sysroot = debian_images().sysroot;
    let dir = tests::fresh_dir("user-programs", name);
    let bash = sysroot.join("usr/bin/bash");
    let started = Instant::now();
    let mut child = Command::new(turing_binary())
        .current_dir(&dir)
        .arg("user")
        .arg("-L")
        .arg(&sysroot)
        .args(["--env", "PATH=/usr/bin:/bin", "--env", "LC_ALL=C"])
        .arg("--env")
        .arg(format!("HOME={}", dir.display()))
        .arg("--")
        .arg(&bash)
        .args(["-e", "-o", "pipefail", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start turing user");
    let output = loop {
        if child.try_wait().expect("wait for turing").is_some() {
            break child.wait_with_output().expect("collect output");
        }
        if started.elapsed() > TASK_LIMIT {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "{name}: no result after {TASK_LIMIT:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{name}: {:.2} s", started.elapsed().as_secs_f64());
    assert!(
        output.status.success(),
        "{name}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert_eq!(stdout, expected, "{name}: stderr:\n{stderr}");
    assert!(
        !stderr.contains("unimplemented system call"),
        "{name}: {stderr}"
    );
}

#[test]
fn python3_json_hashes_regexes_and_a_subprocess() {
    run_task(
        "python3",
        r#"python3 -c '
import json, hashlib, re, subprocess
data = [{"n": i, "sq": i * i} for i in range(2000)]
text = json.dumps(data, sort_keys=True)
child = subprocess.run(["echo", "spawned"], capture_output=True, text=True).stdout.strip()
print(hashlib.sha256(text.encode()).hexdigest()[:16], len(re.findall(r"\d+", text)), child)
'"#,
        "fc2c9b26204bae45 4000 spawned\n",
    );
}

#[test]
fn perl_regex_substitution_loop() {
    // The issue's reproducer, a tenth as long.
    run_task(
        "perl",
        r#"perl -e 'for my $i (1..4000){ my $l="id=$i name=user".($i*7%1000)." mail=u$i\@ex".($i%97).".org val=".($i*13%10007); (my $t=$l)=~s/(\d+)/<$1>/g; $n+=length $t } print "$n\n"'"#,
        "232421\n",
    );
}

#[test]
fn bash_pipelines_and_coreutils() {
    run_task(
        "bash-coreutils",
        r#"seq 1 20000 > n.txt
wc -l < n.txt
sha256sum n.txt | cut -c1-16
sort -rn n.txt > sorted.txt
head -n 3 sorted.txt | tr '\n' ' '; echo
seq 1 100 | while read i; do echo $((i * i)); done | sort -n | tail -n 1
cut -c1 n.txt | sort | uniq -c | sort -k2 | head -n 2 | tr -s ' '"#,
        "20000\nf6351f5ead9a700e\n20000 19999 19998 \n10000\n 11111 1\n 1112 2\n",
    );
}

#[test]
fn tar_gzip_xz_and_zstd_round_trips() {
    run_task(
        "archives",
        r#"umask 022
mkdir -p tree/a tree/b
seq 1 3000 > tree/a/numbers
seq 1 50000 > tree/b/more
tar cf tree.tar --sort=name --numeric-owner tree
gzip -9 -k tree.tar
xz -6 -k tree.tar
zstd -q -19 tree.tar -o tree.tar.zst
for unpack in "gzip -dc tree.tar.gz" "xz -dc tree.tar.xz" "zstd -dc tree.tar.zst"; do
    rm -rf out && mkdir out
    $unpack | tar xf - -C out
    sha256sum out/tree/a/numbers | cut -d' ' -f1
    cmp out/tree/b/more tree/b/more
done"#,
        &"2e57c67a8bbe706a08d6638ec67da02b67b3743ae7d35948cbcf8d1f45cae0a5\n".repeat(3),
    );
}

#[test]
fn sqlite3_recursive_query_into_a_database_file() {
    run_task(
        "sqlite3",
        r#"sqlite3 rows.db "create table t(n integer);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 10000)
insert into t select x from c;
create index t_n on t(n);
select count(*), sum(n), max(n * n % 997) from t;""#,
        "10000|50005000|996\n",
    );
}

#[test]
fn git_init_add_commit_and_log() {
    run_task(
        "git",
        r#"export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z
export GIT_AUTHOR_NAME=Turing GIT_AUTHOR_EMAIL=t@example.org
export GIT_COMMITTER_NAME=Turing GIT_COMMITTER_EMAIL=t@example.org
git init -q -b main repo
cd repo
seq 100 > f
mkdir d
seq 50 > d/g
git add .
git commit -qm first
echo x >> f
git commit -qam second
git rev-parse HEAD
git log --oneline | wc -l
git diff HEAD~1 --stat | tail -n 1"#,
        "086b66c99e0aeabaff211537d7ef5c5770c75171\n2\n 1 file changed, 1 insertion(+)\n",
    );
}

#[test]
fn make_with_parallel_jobs_and_gcc_compiling_and_running_c() {
    // make 4.4's jobserver is a FIFO (mknodat); gcc runs cc1, as and ld.
    run_task(
        "make-gcc",
        r#"cat > primes.c <<'EOF'
#include <stdio.h>
int main(void) {
    int count = 0;
    for (int n = 2; n < 10000; n++) {
        int prime = 1;
        for (int d = 2; d * d <= n; d++)
            if (n % d == 0) { prime = 0; break; }
        count += prime;
    }
    printf("primes %d\n", count);
    return 0;
}
EOF
printf 'all: primes a.txt b.txt\nprimes: primes.c\n\tgcc -O2 -o $@ $<\na.txt:\n\techo a > $@\nb.txt:\n\techo b > $@\n' > Makefile
make -s -j4
./primes
cat a.txt b.txt"#,
        "primes 1229\na\nb\n",
    );
}

#[test]
fn lua_tables_and_arithmetic() {
    run_task(
        "lua",
        r#"lua5.4 -e 'local t = {} for i = 1, 100000 do t[#t + 1] = i % 7 end local s = 0 for _, v in ipairs(t) do s = s + v end print(s)'"#,
        "300000\n",
    );
}

#[test]
fn node_crypto_and_json() {
    // V8 generates and rewrites machine code as it runs.
    run_task(
        "node",
        r#"node -e 'const c = require("crypto"); const a = [...Array(10000).keys()].map(x => x * x); console.log(c.createHash("sha256").update(JSON.stringify(a)).digest("hex").slice(0, 16), a.reduce((p, q) => p + q, 0))'"#,
        "b43f761d175c9c5f 333283335000\n",
    );
}

#[test]
fn a_go_program_fzf_filters_its_input() {
    run_task(
        "go-fzf",
        r#"printf 'apple\nbanana\ncherry\ngrape\n' | fzf --filter=an"#,
        "banana\n",
    );
}

#[test]
fn a_rust_program_ripgrep_searches_a_tree() {
    run_task(
        "rust-ripgrep",
        r#"mkdir -p src/a src/b
printf 'fn main() {}\nneedle one\n' > src/a/x.rs
printf 'needle two\nhay\n' > src/b/y.txt
rg -n --sort path needle src"#,
        "src/a/x.rs:2:needle one\nsrc/b/y.txt:1:needle two\n",
    );
}
