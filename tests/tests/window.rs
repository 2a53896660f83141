//! The desktop window under a virtual X server (Xvfb): what it shows, read back
//! with `xwd`, and keys typed into it with `xdotool` reaching the guest (the
//! RISC-V machine's virtio keyboard, the PC's PS/2 keyboard).
//!
//! pixels draws through Mesa's software Vulkan driver (lavapipe); one test hides
//! that driver to check the softbuffer fallback.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devices::virtio::Display;
use tests::images::{READY_MARKER, debian_images, pc_images};
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

/// Boots Linux in a window with its console on the display and the serial
/// port, and waits until a shell runs on tty1 (the display) as well: that
/// shell runs what is typed into the window and writes to the serial port.
fn linux_on_tty1(
    display: &VirtualDisplay,
    machine: &[&str],
    (kernel, initramfs): (&Path, &Path),
    boot_timeout: Duration,
) -> GuestSession {
    let mut args = machine.to_vec();
    args.extend(["--append", "console=tty0 console=ttyS0"]);
    let mut command = window_run(display, &args, true);
    command
        .arg("--kernel")
        .arg(kernel)
        .arg("--initrd")
        .arg(initramfs);
    let mut session = GuestSession::spawn(command);
    session.expect(READY_MARKER, boot_timeout);
    session.expect("# ", Duration::from_secs(60));
    session.send_line(AWAIT_TTY1_SHELL);
    session.expect("TTY1-SHELL-42", Duration::from_secs(60));
    session
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

/// The line [`type_into_window`] types: its output goes to the serial port,
/// where the test reads [`TYPED_OUTPUT`].
const TYPED_LINE: &str = "echo typed-$((6*7)) > /dev/ttyS0";
/// What [`TYPED_LINE`] prints.
const TYPED_OUTPUT: &str = "typed-42";

/// Focuses `window` and types [`TYPED_LINE`] and Return into it with
/// `xdotool`, for a shell on the guest's display; waits until the guest's
/// serial port shows that the line ran.
fn type_into_window(display: &VirtualDisplay, window: &str, session: &mut GuestSession) {
    let focus = display
        .tool("xdotool")
        .args(["windowfocus", "--sync", window])
        .status()
        .expect("run xdotool");
    assert!(focus.success());
    // Typed keys have been lost once on a loaded CI machine for a reason not
    // found; typing the line again is harmless, so try three times and say so
    // in the log.
    for attempt in 1..=3 {
        let typed = display
            .tool("xdotool")
            .args(["type", "--delay", "40", TYPED_LINE])
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
            .try_expect(TYPED_OUTPUT, Duration::from_secs(30))
            .is_some()
        {
            return;
        }
        eprintln!("window test: attempt {attempt}: the line typed into the window did not run");
        // Whether the keys raised interrupts at all tells the input path
        // from the shell's side.
        session.send_line("cat /proc/interrupts; echo INTERRUPTS-$((6*7))");
        let interrupts = session.expect("INTERRUPTS-42", Duration::from_secs(60));
        eprintln!("window test: the guest's interrupts:\n{interrupts}");
    }
    session.expect(TYPED_OUTPUT, Duration::from_secs(1));
}

/// Shell commands for the serial console that wait until a process holds
/// tty1 (the display's virtual terminal) as its input, then print
/// `TTY1-SHELL-42`. /init starts that shell in the background, and the kernel
/// drops keys for a virtual terminal no process has open.
const AWAIT_TTY1_SHELL: &str = "until ls -l /proc/[0-9]*/fd/0 2>/dev/null | grep -q tty1; \
    do sleep 0.2; done; echo TTY1-SHELL-$((6*7))";

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
    let mut session = linux_on_tty1(
        &display,
        &["--memory", "512M", "--timeout", "300"],
        (&images.kernel, &images.initramfs),
        Duration::from_secs(240),
    );
    let window = display.find_window("Turing: riscv-virt");
    type_into_window(&display, &window, &mut session);
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

/// The 16 colours of the VGA's default palette as SeaBIOS's VGA BIOS and
/// Linux's vgacon set it, 0x00RRGGBB, by attribute colour number: the DAC's
/// 6-bit levels 0x15, 0x2a and 0x3f widened as QEMU's VGA widens them.
const VGA_COLOURS: [u32; 16] = [
    0x000000, 0x0000a8, 0x00a800, 0x00a8a8, 0xa80000, 0xa800a8, 0xa85700, 0xa8a8a8, 0x575757,
    0x5757ff, 0x57ff57, 0x57ffff, 0xff5757, 0xff57ff, 0xffff57, 0xffffff,
];

/// A Linux virtual terminal's text as `/dev/vcsaN` gives it: a header of
/// rows, columns and the cursor's column and row, then a character and an
/// attribute byte a cell.
struct TextScreen {
    rows: usize,
    columns: usize,
    cursor: (usize, usize),
    cells: Vec<(u8, u8)>,
}

impl TextScreen {
    /// Reads the bytes `od -An -v -tx1` printed, as two-digit hex words.
    fn from_od(text: &str) -> TextScreen {
        let bytes: Vec<u8> = text
            .split_whitespace()
            .filter(|word| word.len() == 2)
            .filter_map(|word| u8::from_str_radix(word, 16).ok())
            .collect();
        assert!(bytes.len() >= 4, "no /dev/vcsa header in {text:?}");
        let (rows, columns) = (usize::from(bytes[0]), usize::from(bytes[1]));
        let cells: Vec<(u8, u8)> = bytes[4..].chunks_exact(2).map(|c| (c[0], c[1])).collect();
        assert_eq!(cells.len(), rows * columns, "the cells of {text:?}");
        TextScreen {
            rows,
            columns,
            cursor: (usize::from(bytes[2]), usize::from(bytes[3])),
            cells,
        }
    }

    /// The characters of `row`, as ASCII.
    fn line(&self, row: usize) -> String {
        self.cells[row * self.columns..][..self.columns]
            .iter()
            .map(|&(c, _)| if c.is_ascii_graphic() { c as char } else { ' ' })
            .collect()
    }

    /// The cells (row, column) that `pixels`, a screen of 9×16-dot cells
    /// `width` pixels wide, does not show as this text has them: a blank
    /// glyph all in its background colour, any other in its foreground and
    /// background colours with some foreground, drawn as every other cell of
    /// that character and attribute and unlike any cell of another character
    /// (so text shifted or drawn from the wrong font lines fails too). The
    /// cursor's cell is left out: the cursor blinks.
    fn mismatches(&self, width: usize, pixels: &[u32]) -> Vec<(usize, usize)> {
        let mut wrong = Vec::new();
        let mut glyphs: HashMap<(u8, u8), Vec<u32>> = HashMap::new();
        let mut drawn: HashMap<Vec<u32>, u8> = HashMap::new();
        for row in 0..self.rows {
            for column in 0..self.columns {
                if (column, row) == self.cursor {
                    continue;
                }
                let (character, attribute) = self.cells[row * self.columns + column];
                let foreground = VGA_COLOURS[usize::from(attribute & 0x0f)];
                let background = VGA_COLOURS[usize::from(attribute >> 4)];
                let dots: Vec<u32> = (row * 16..row * 16 + 16)
                    .flat_map(|y| pixels[y * width + column * 9..][..9].to_vec())
                    .collect();
                let blank = matches!(character, 0x00 | b' ' | 0xff);
                let lit = dots.iter().filter(|&&p| p == foreground).count();
                let in_colours = dots.iter().all(|&p| p == foreground || p == background);
                let same_as_before = glyphs
                    .entry((character, attribute))
                    .or_insert_with(|| dots.clone())
                    == &dots;
                let unique = blank || *drawn.entry(dots).or_insert(character) == character;
                if !in_colours || (lit == 0) != blank || !same_as_before || !unique {
                    wrong.push((row, column));
                }
            }
        }
        wrong
    }
}

/// `--machine pc` in a window: Debian's amd64 kernel with its console on the
/// VGA text screen (vgacon) and COM1. A line typed into the window reaches
/// the shell on tty1 through the i8042's PS/2 keyboard and runs; the window
/// then shows tty1 as the guest holds it (`/dev/vcsa1`), cell by cell, the
/// typed line among its text.
#[test]
fn keys_typed_into_the_pc_window_reach_the_shell_on_the_vga_console() {
    require_tool("xdotool");
    let images = pc_images();
    let display = VirtualDisplay::start();
    let started = Instant::now();
    let mut session = linux_on_tty1(
        &display,
        &["--machine", "pc", "--memory", "256M", "--timeout", "2400"],
        (&images.kernel, &images.initramfs),
        Duration::from_secs(1500),
    );
    println!(
        "window test: PC Linux to the tty1 shell in {:?}",
        started.elapsed()
    );
    let window = display.find_window("Turing: pc");
    // The window keeps the size it opened at, before SeaBIOS set a mode; at
    // the 80×25 text mode's own size it shows each dot as one pixel.
    let resized = display
        .tool("xdotool")
        .args(["windowsize", "--sync", &window, "720", "400"])
        .status()
        .expect("run xdotool");
    assert!(resized.success());
    type_into_window(&display, &window, &mut session);
    // Kernel messages would change the screen between the dump and the
    // capture: keep them off the console.
    session.send_line(
        "dmesg -n 1; echo VCSA-$((6*7))-BEGIN; od -An -v -tx1 /dev/vcsa1; echo VCSA-END-$((6*7))",
    );
    session.expect("VCSA-42-BEGIN", Duration::from_secs(60));
    let dump = session.expect("VCSA-END-42", Duration::from_secs(120));
    let screen = TextScreen::from_od(dump.trim_end_matches("VCSA-END-42"));
    assert_eq!((screen.rows, screen.columns), (25, 80), "tty1's size");
    let text: Vec<String> = (0..screen.rows).map(|row| screen.line(row)).collect();
    assert!(
        text.iter().any(|line| line.contains(TYPED_LINE)),
        "the shell on tty1 did not echo the typed line:\n{}",
        text.join("\n")
    );
    capture_until(
        &display,
        &window,
        "tty1's text as /dev/vcsa1 holds it",
        |w, h, pixels| (w, h) == (720, 400) && screen.mismatches(720, pixels).is_empty(),
    );
}
