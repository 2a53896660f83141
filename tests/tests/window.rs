//! The desktop window under a virtual X server (Xvfb): what it shows, read back
//! with `xwd`, and keys typed into it with `xdotool` reaching the guest.
//!
//! pixels draws through Mesa's software Vulkan driver (lavapipe); one test hides
//! that driver to check the softbuffer fallback.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devices::virtio::Display;
use tests::images::{READY_MARKER, debian_images};
use tests::{GuestSession, build_dir, read_png, repo_root, require_tool, turing_command};

const LAVAPIPE: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// An Xvfb server on a free display number, stopped on drop.
struct VirtualDisplay {
    server: Child,
    name: String,
}

impl VirtualDisplay {
    fn start() -> VirtualDisplay {
        use std::io::BufRead;
        require_tool("Xvfb");
        // With -displayfd the server picks a free display number itself and
        // writes it once it accepts connections, so parallel tests never collide.
        let mut server = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut line = String::new();
        let stdout = server.stdout.take().expect("piped stdout");
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let number: u32 = match line.trim().parse() {
            Ok(number) => number,
            Err(_) => {
                let _ = server.kill();
                panic!("Xvfb did not report a display number: {line:?}");
            }
        };
        VirtualDisplay {
            server,
            name: format!(":{number}"),
        }
    }

    fn tool(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("DISPLAY", &self.name);
        command
    }

    /// The id of the window whose title matches the regex `title`, waiting for it.
    fn find_window(&self, title: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = self
                .tool("xdotool")
                .args(["search", "--name", title])
                .output()
                .expect("run xdotool");
            let text = String::from_utf8_lossy(&output.stdout);
            if let Some(id) = text.lines().next() {
                return id.trim().to_owned();
            }
            assert!(Instant::now() < deadline, "no window titled {title:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The window's content as (width, height, 0x00RRGGBB pixels), via `xwd`.
    fn capture(&self, window: &str) -> (u32, u32, Vec<u32>) {
        let output = self
            .tool("xwd")
            .args(["-silent", "-id", window])
            .output()
            .expect("run xwd");
        assert!(output.status.success(), "xwd failed");
        parse_xwd(&output.stdout)
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Decodes an X window dump: a big-endian header of 25 CARD32 fields and the
/// window name, a colour map, then the Z-pixmap rows.
fn parse_xwd(bytes: &[u8]) -> (u32, u32, Vec<u32>) {
    let field = |i: usize| u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
    let header_size = field(0) as usize;
    assert_eq!(field(1), 7, "XWD version");
    assert_eq!(field(2), 2, "Z pixmap");
    let (width, height) = (field(4), field(5));
    let byte_order = field(7);
    let bits_per_pixel = field(11);
    let bytes_per_line = field(12) as usize;
    let masks = [field(14), field(15), field(16)];
    let colours = field(19) as usize;
    assert_eq!(bits_per_pixel, 32, "a 24-bit screen stores 32-bit pixels");
    let data = &bytes[header_size + colours * 12..];
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height as usize {
        let row = &data[y * bytes_per_line..];
        for x in 0..width as usize {
            let raw: [u8; 4] = row[x * 4..x * 4 + 4].try_into().unwrap();
            let value = if byte_order == 0 {
                u32::from_le_bytes(raw)
            } else {
                u32::from_be_bytes(raw)
            };
            let channel = |mask: u32| (value & mask) >> mask.trailing_zeros();
            pixels.push((channel(masks[0]) << 16) | (channel(masks[1]) << 8) | channel(masks[2]));
        }
    }
    (width, height, pixels)
}

/// The golden demo screen as 0x00RRGGBB pixels.
fn golden_demo_screen() -> Vec<u32> {
    let (_, _, rgb) = read_png(&repo_root().join("tests/fixtures/demo-screen.png"));
    rgb.chunks_exact(3)
        .map(|p| (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]))
        .collect()
}

/// `turing run --display window ARGS` on `display`, with pixels on lavapipe, or
/// with no Vulkan driver when `vulkan` is false.
fn window_run(display: &VirtualDisplay, args: &[&str], vulkan: bool) -> Command {
    let mut command = turing_command();
    command
        .env("DISPLAY", &display.name)
        .env("WGPU_BACKEND", "vulkan")
        .env(
            "VK_ICD_FILENAMES",
            if vulkan {
                LAVAPIPE
            } else {
                "/nonexistent/no-driver.json"
            },
        )
        .args(["run", "--display", "window"])
        .args(args);
    command
}

/// Captures the window until `check` accepts the capture (the window redraws at
/// about 30 Hz, so the first capture may predate the guest's last drawing).
fn capture_until(
    display: &VirtualDisplay,
    window: &str,
    what: &str,
    check: impl Fn(u32, u32, &[u32]) -> bool,
) -> (u32, u32, Vec<u32>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (width, height, pixels) = display.capture(window);
        if check(width, height, &pixels) {
            return (width, height, pixels);
        }
        if Instant::now() >= deadline {
            let path = build_dir("window").join(format!("{}.png", what.replace(' ', "-")));
            let capture = Display {
                width,
                height,
                pixels,
                frames: 0,
            };
            if let Err(e) = frontend::screenshot::write_png(&path, &capture) {
                eprintln!("cannot keep the last capture: {e}");
            }
            panic!(
                "the window never showed {what} ({width}x{height}); last capture in {}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn demo_window_matches_the_golden_image(vulkan: bool) {
    let display = VirtualDisplay::start();
    let log = build_dir("window").join(format!("demo-stderr-{vulkan}.txt"));
    let mut session = GuestSession::spawn_with_stderr(
        window_run(&display, &["--timeout", "120"], vulkan),
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    session.expect("turing> ", Duration::from_secs(60));
    let window = display.find_window("Turing: riscv-virt");
    let golden = golden_demo_screen();
    capture_until(
        &display,
        &window,
        "the demo's colour bars",
        |w, h, pixels| (w, h) == (640, 480) && pixels == golden.as_slice(),
    );
    // Closing the window powers the machine off: exit code 0.
    let status = display
        .tool("xdotool")
        .args(["windowclose", &window])
        .status()
        .expect("run xdotool");
    assert!(status.success());
    assert_eq!(session.wait(Duration::from_secs(30)), 0);
    let stderr = std::fs::read_to_string(&log).unwrap();
    let fallbacks = stderr.matches("drawing with softbuffer instead").count();
    assert_eq!(fallbacks, usize::from(!vulkan), "stderr:\n{stderr}");
}

#[test]
fn the_window_shows_the_demo_guest_through_pixels() {
    assert!(
        Path::new(LAVAPIPE).exists(),
        "Mesa's lavapipe is not installed"
    );
    demo_window_matches_the_golden_image(true);
}

#[test]
fn without_a_vulkan_driver_the_window_falls_back_to_softbuffer() {
    demo_window_matches_the_golden_image(false);
}

#[test]
fn keys_typed_into_the_window_reach_the_linux_shell_on_the_display() {
    require_tool("xdotool");
    let images = debian_images();
    let display = VirtualDisplay::start();
    let mut command = window_run(
        &display,
        &[
            "--memory",
            "512M",
            "--timeout",
            "300",
            "--append",
            "console=tty0 console=ttyS0",
        ],
        true,
    );
    command
        .arg("--kernel")
        .arg(&images.kernel)
        .arg("--initrd")
        .arg(&images.initramfs);
    let mut session = GuestSession::spawn(command);
    session.expect(READY_MARKER, Duration::from_secs(240));
    session.expect("# ", Duration::from_secs(60));
    // The shell on tty1 (the display) runs what is typed into the window and
    // writes to the serial port. /init starts it in the background, so wait
    // until it holds the terminal: the kernel drops keys for a virtual
    // terminal no process has open.
    session.send_line(
        "until ls -l /proc/[0-9]*/fd/0 2>/dev/null | grep -q tty1; do sleep 0.2; done; \
         echo TTY1-SHELL-$((6*7))",
    );
    session.expect("TTY1-SHELL-42", Duration::from_secs(60));
    let window = display.find_window("Turing: riscv-virt");
    let focus = display
        .tool("xdotool")
        .args(["windowfocus", "--sync", &window])
        .status()
        .expect("run xdotool");
    assert!(focus.success());
    // Typed keys have been lost once on a loaded CI machine for a reason not
    // found; typing the line again is harmless, so try three times and say so
    // in the log.
    let mut ran = false;
    for attempt in 1..=3 {
        let typed = display
            .tool("xdotool")
            .args(["type", "--delay", "40", "echo typed-$((6*7)) > /dev/ttyS0"])
            .status()
            .expect("run xdotool");
        assert!(typed.success());
        // (xdotool types a newline as a key the US layout lacks: press Return.)
        let enter = display
            .tool("xdotool")
            .args(["key", "Return"])
            .status()
            .expect("run xdotool");
        assert!(enter.success());
        if session
            .try_expect("typed-42", Duration::from_secs(30))
            .is_some()
        {
            ran = true;
            break;
        }
        eprintln!("window test: attempt {attempt}: the line typed into the window did not run");
    }
    if !ran {
        session.expect("typed-42", Duration::from_secs(1));
    }
    // The console is on the display: fbcon's text is there, and a pattern the
    // guest writes to the lower half of /dev/fb0 shows pixel for pixel.
    session.send_line(
        "printf '\\033[?25l' > /dev/tty1; \
         head -c 614400 /dev/zero | tr '\\0' '\\377' | dd of=/dev/fb0 bs=2560 seek=240 \
         2>/dev/null; echo FB-DONE-$((6*7))",
    );
    session.expect("FB-DONE-42", Duration::from_secs(60));
    let (_, _, pixels) = capture_until(&display, &window, "the white lower half", |w, h, p| {
        (w, h) == (640, 480) && p[240 * 640..].iter().all(|&v| v == 0x00ff_ffff)
    });
    let lit = pixels[..240 * 640]
        .iter()
        .filter(|&&v| v & 0x00e0_e0e0 != 0)
        .count();
    assert!(
        lit > 1000,
        "no console text in the window ({lit} lit pixels)"
    );
    assert!(lit < 240 * 640 / 2, "the top half is mostly lit: not text");
}
