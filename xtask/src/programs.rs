//! `cargo xtask images --programs`: the disk image of the real-program benchmark.
//!
//! An ext4 image holding a Debian riscv64 root with python3, perl, gcc (and libc6-dev),
//! xz, sqlite3 and git, unpacked from Debian's own packages through the same private
//! apt index as the other images (`images`), plus the benchmark's task files from
//! `benches/guest/programs/` under `/bench`. The guest boots the usual kernel and
//! initramfs, mounts the image read-only and runs each task in a chroot
//! (`/bench/run TASK`).
//!
//! The image is kept under `~/.cache/turing/programs/<key>/programs.img`, keyed by the
//! package versions, the task files and [`RECIPE`]; `~/.cache/turing/images/
//! programs.toml` names the newest one. It is big (about 600 MB of files, 130 MB of
//! downloads), so only the benchmark builds it, never the test suite.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::images::{
    Apt, Dirs, Package, build_into, create_dir, dependency_closure, package_lines, run, say,
    set_executable, unpack_packages, write_atomic, write_file,
};

/// Bump when the way the image is made changes.
const RECIPE: u32 = 1;
/// What the tasks run; their dependencies come along.
const PACKAGES: &[&str] = &[
    "dash",
    "coreutils",
    "python3",
    "perl",
    "gcc",
    "libc6-dev",
    "xz-utils",
    "sqlite3",
    "git",
];
/// The task files, relative to the repository.
const TASKS_DIR: &str = "benches/guest/programs";
/// Room left free in the file system beyond what the files take, MiB.
const SPARE_MIB: u64 = 256;

/// Builds the programs image unless it is cached; returns its path.
pub fn build() -> Result<PathBuf, String> {
    let started = Instant::now();
    let dirs = Dirs::new()?;
    let apt = Apt::new(&dirs)?;
    let packages = dependency_closure(&apt, PACKAGES).map_err(|e| {
        format!("the package index cannot resolve the programs ({e}): run `cargo xtask images` first, with TURING_IMAGES_REFRESH=1 if it is stale")
    })?;
    let tasks = task_files()?;
    let key = cache_key(&packages, &tasks);
    let cache = dirs.images.with_file_name("programs");
    create_dir(&cache)?;
    let entry = cache.join(format!("{key:016x}"));
    let image = entry.join("programs.img");
    if !image.is_file() {
        build_into(&entry, |tmp| fill(&apt, &dirs.debs, &packages, &tasks, tmp))?;
        remove_older(&cache, &entry);
    }
    let manifest = format!(
        "# The real-program benchmark's disk image, built by `cargo xtask images --programs`.\n\
         disk = \"{}\"\n",
        image.display()
    );
    let published = dirs.images.join("programs.toml");
    if fs::read_to_string(&published).ok().as_deref() != Some(manifest.as_str()) {
        write_atomic(&published, manifest)?;
    }
    say(format!(
        "programs image ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        image.display()
    ));
    Ok(image)
}

/// The benchmark's task files, as (name, contents), sorted by name.
fn task_files() -> Result<Vec<(String, Vec<u8>)>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(TASKS_DIR);
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let data = fs::read(entry.path())
            .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        files.push((name, data));
    }
    files.sort();
    Ok(files)
}

/// FNV-1a over the recipe, every package's name and version and every task file, so
/// a change to any of them makes a new image. (A hash for a cache folder's name,
/// not for security; a crate would be more than this needs.)
fn cache_key(packages: &[Package], tasks: &[(String, Vec<u8>)]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes.iter().chain([0u8].iter()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&RECIPE.to_le_bytes());
    for package in packages {
        feed(package.name.as_bytes());
        feed(package.version.as_bytes());
    }
    for (name, data) in tasks {
        feed(name.as_bytes());
        feed(data);
    }
    hash
}

/// Unpacks the packages and the tasks into a root and makes `programs.img` of it.
fn fill(
    apt: &Apt,
    debs: &Path,
    packages: &[Package],
    tasks: &[(String, Vec<u8>)],
    out: &Path,
) -> Result<(), String> {
    let step = Instant::now();
    let root = out.join("root");
    unpack_packages(apt, debs, packages, &root)?;
    // Mount points for the chroot, and the users git and python look up.
    for dir in ["proc", "sys", "dev", "tmp", "bench", "root", "etc"] {
        create_dir(&root.join(dir))?;
    }
    write_file(&root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    write_file(&root.join("etc/group"), "root:x:0:\n")?;
    for (name, data) in tasks {
        let path = root.join("bench").join(name);
        write_file(&path, data)?;
        if data.starts_with(b"#!") {
            set_executable(&path)?;
        }
    }
    let list = package_lines(packages);
    write_file(&root.join("bench/packages.txt"), &list)?;
    let used = run(Command::new("du")
        .args(["-s", "--block-size=1M"])
        .arg(&root))?;
    let used_mib: u64 = String::from_utf8_lossy(&used)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("du printed no size")?;
    let image = out.join("programs.img");
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "programs"])
        .args(["-E", "root_owner=0:0", "-d"])
        .arg(&root)
        .arg(&image)
        .arg(format!("{}M", used_mib + used_mib / 4 + SPARE_MIB)))?;
    fs::remove_dir_all(&root).map_err(|e| format!("cannot remove {}: {e}", root.display()))?;
    write_file(&out.join("packages.txt"), list)?;
    say(format!(
        "programs image: {} packages, {used_mib} MiB of files, in {:.1} s",
        packages.len(),
        step.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Removes the cache's other images: each is hundreds of megabytes.
fn remove_older(cache: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path != keep && !name.to_string_lossy().starts_with('.') && path.is_dir() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, version: &str) -> Package {
        Package {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: "riscv64".to_owned(),
        }
    }

    #[test]
    fn the_cache_key_follows_every_version_and_task_file() {
        let packages = vec![package("perl", "5.42.3-1"), package("git", "1:2.55.0-1")];
        let tasks = vec![("run".to_owned(), b"#!/bin/sh\n".to_vec())];
        let key = cache_key(&packages, &tasks);
        assert_eq!(key, cache_key(&packages.clone(), &tasks.clone()));
        let newer = vec![package("perl", "5.42.3-2"), package("git", "1:2.55.0-1")];
        assert_ne!(key, cache_key(&newer, &tasks));
        let edited = vec![("run".to_owned(), b"#!/bin/sh\n\n".to_vec())];
        assert_ne!(key, cache_key(&packages, &edited));
        // Names and contents are kept apart: moving a byte between them counts.
        let shifted = vec![("ru".to_owned(), b"n#!/bin/sh\n".to_vec())];
        assert_ne!(key, cache_key(&packages, &shifted));
    }

    #[test]
    fn the_task_files_are_in_the_repository() {
        let tasks = task_files().expect("task files");
        let names: Vec<&str> = tasks.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"run"), "{names:?}");
        let run = &tasks.iter().find(|(n, _)| n == "run").expect("run").1;
        for task in ["python", "perl", "gcc", "xz", "sqlite3", "git"] {
            assert!(
                String::from_utf8_lossy(run).contains(&format!("\n{task})")),
                "run has no {task} task"
            );
        }
    }
}
