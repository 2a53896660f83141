//! The guest's display, headless: `--screenshot` of the built-in demo guest,
//! which draws colour bars on riscv-virt's simple-framebuffer, matches the
//! golden image `tests/fixtures/demo-screen.png` pixel for pixel.

use tests::{build_dir, read_png, repo_root, turing_command};

fn screenshot(name: &str, when: &[&str]) -> std::path::PathBuf {
    let shot = build_dir("display").join(name);
    let _ = std::fs::remove_file(&shot);
    let status = turing_command()
        .args(["run", "--serial", "null", "--timeout", "60", "--screenshot"])
        .arg(&shot)
        .args(when)
        .status()
        .expect("run turing");
    assert!(status.success(), "turing failed taking {name}");
    shot
}

#[test]
fn the_demo_guest_screenshot_matches_the_golden_image() {
    let golden = read_png(&repo_root().join("tests/fixtures/demo-screen.png"));
    for (name, when) in [
        ("after.png", &["--screenshot-after", "turing> "][..]),
        ("at.png", &["--screenshot-at", "1"][..]),
    ] {
        let (width, height, pixels) = read_png(&screenshot(name, when));
        assert_eq!((width, height), (640, 480), "{name}");
        assert!(pixels == golden.2, "{name} differs from the golden image");
    }
    // And the golden image is what the demo means to draw: eight bars.
    let bars = [
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
        [0, 0, 0],
    ];
    for (i, colour) in bars.iter().enumerate() {
        for y in [0usize, 240, 479] {
            let x = i * 80 + 40;
            let at = (y * 640 + x) * 3;
            assert_eq!(&golden.2[at..at + 3], colour, "bar {i} at ({x}, {y})");
        }
    }
}

#[test]
fn screenshot_flags_are_checked() {
    let output = turing_command()
        .args(["run", "--screenshot", "x.png"])
        .output()
        .expect("run turing");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--screenshot needs"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn linux_shows_its_console_and_a_test_pattern_on_the_virtio_gpu_and_finds_the_inputs() {
    let images = tests::images::debian_images();
    let shot = build_dir("display").join("linux.png");
    let _ = std::fs::remove_file(&shot);
    // The kernel console goes to the display (fbcon on virtio-gpu) and the serial
    // port; the shell hides the console's cursor and writes white into the lower
    // half of /dev/fb0.
    let status = turing_command()
        .args([
            "run",
            "--memory",
            "512M",
            "--timeout",
            "240",
            "--serial",
            "null",
        ])
        .arg("--kernel")
        .arg(&images.kernel)
        .arg("--initrd")
        .arg(&images.initramfs)
        .args(["--append", "console=tty0 console=ttyS0"])
        // The keyboard and tablet (virtio-input) are registered with Linux.
        .args(["--expect", "~ # ", "--send"])
        .arg("echo inputs=$(grep -c 'Name=\"Turing' /proc/bus/input/devices)")
        .args(["--expect", "inputs=2", "--send"])
        .arg(
            "printf '\\033[?25l' > /dev/tty0; \
             head -c 614400 /dev/zero | tr '\\0' '\\377' | dd of=/dev/fb0 bs=2560 seek=240 \
             2>/dev/null; sleep 1; echo FB-DONE-$((6*7))",
        )
        .args(["--screenshot-after", "FB-DONE-42", "--screenshot"])
        .arg(&shot)
        .status()
        .expect("run turing");
    assert!(status.success(), "the Linux display run failed");
    let (width, height, rgb) = read_png(&shot);
    assert_eq!((width, height), (640, 480));
    let row = |y: usize| &rgb[y * 640 * 3..(y + 1) * 640 * 3];
    for y in 240..480 {
        assert!(row(y).iter().all(|&b| b == 255), "row {y} is not white");
    }
    // Above it, fbcon has drawn the boot messages: grey text on black.
    let top = &rgb[..240 * 640 * 3];
    let lit = top.chunks(3).filter(|p| p.iter().any(|&b| b > 100)).count();
    assert!(
        lit > 1000,
        "no console text on the display ({lit} lit pixels)"
    );
    assert!(lit < 240 * 640 / 2, "the top half is mostly lit: not text");
}
