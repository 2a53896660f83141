//! The desktop window: the guest's display drawn with pixels (wgpu), or with
//! softbuffer when no GPU adapter is found, and the host keyboard and pointer fed
//! to the guest's virtio-input devices.
//!
//! The window owns the main thread, as winit requires; the machine runs on its own
//! thread and never waits on drawing. The two share only the display snapshot, the
//! input queues, the run control and a [`MachineStatus`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use devices::virtio::input::{ABS_MAX, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT};
use devices::virtio::{Display, InputHandle};
use emu_core::{RunControl, StopReason};
use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::{ElementState, MouseButton, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::keyboard::{KeyCode, ModifiersState, PhysicalKey};
use winit::window::{CursorGrabMode, Window, WindowId};

use crate::machines::ScreenSource;

/// How often the window looks for a new guest frame (about 30 Hz).
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// The size shown before the guest has a display mode.
const DEFAULT_SIZE: (u32, u32) = (640, 480);

/// Where the guest's display goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DisplayChoice {
    /// A desktop window (the default when a display server is reachable).
    Window,
    /// Headless.
    None,
}

impl DisplayChoice {
    /// The default: a window when `DISPLAY` or `WAYLAND_DISPLAY` names a display
    /// server, headless otherwise.
    pub fn default_for_host() -> DisplayChoice {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if set("DISPLAY") || set("WAYLAND_DISPLAY") {
            DisplayChoice::Window
        } else {
            DisplayChoice::None
        }
    }
}

/// The machine's state as the window shows it, set by the machine thread.
#[derive(Debug, Default)]
pub struct MachineStatus {
    state: AtomicU8,
    pause_requested: AtomicBool,
}

/// What the machine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineState {
    /// Running guest code.
    Running,
    /// Paused from the window (Ctrl+Alt+P).
    Paused,
    /// Powered off or stopped; the window closes.
    Halted,
}

impl MachineStatus {
    /// The current state.
    pub fn state(&self) -> MachineState {
        match self.state.load(Ordering::Acquire) {
            0 => MachineState::Running,
            1 => MachineState::Paused,
            _ => MachineState::Halted,
        }
    }

    /// Records the current state (machine thread).
    pub fn set_state(&self, state: MachineState) {
        let value = match state {
            MachineState::Running => 0,
            MachineState::Paused => 1,
            MachineState::Halted => 2,
        };
        self.state.store(value, Ordering::Release);
    }

    /// Whether the user asked for a pause.
    pub fn pause_requested(&self) -> bool {
        self.pause_requested.load(Ordering::Acquire)
    }

    fn toggle_pause(&self) {
        self.pause_requested.fetch_xor(true, Ordering::AcqRel);
    }
}

/// Everything the window shares with a running machine.
#[derive(Clone, Debug)]
pub struct WindowLink {
    /// The machine model, for the title.
    pub machine: String,
    /// The guest's display.
    pub screen: ScreenSource,
    /// The guest's keyboard.
    pub keyboard: InputHandle,
    /// The guest's absolute pointer.
    pub tablet: InputHandle,
    /// Stops the machine when the window closes.
    pub control: Arc<RunControl>,
    /// Running, paused or halted.
    pub status: Arc<MachineStatus>,
}

/// Messages from the machine thread to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowMessage {
    /// The machine's state changed: update the title.
    StateChanged,
    /// The machine has stopped for good: close the window.
    MachineFinished,
}

/// Tells the window about the machine, from any thread.
#[derive(Clone, Debug)]
pub struct WindowNotifier(EventLoopProxy<WindowMessage>);

impl WindowNotifier {
    /// Sends `message`; a window that is already gone ignores it.
    pub fn send(&self, message: WindowMessage) {
        let _ = self.0.send_event(message);
    }
}

/// The window's event loop, made on the main thread before the machine starts.
#[derive(Debug)]
pub struct Viewer {
    event_loop: EventLoop<WindowMessage>,
}

impl Viewer {
    /// Connects to the display server; Err names why that failed.
    pub fn connect() -> Result<Viewer, String> {
        let event_loop = EventLoop::<WindowMessage>::with_user_event()
            .build()
            .map_err(|e| format!("cannot open a window: {e}"))?;
        Ok(Viewer { event_loop })
    }

    /// A handle the machine thread uses to wake the window.
    pub fn notifier(&self) -> WindowNotifier {
        WindowNotifier(self.event_loop.create_proxy())
    }

    /// Shows the window until the machine finishes or the window fails.
    pub fn run(self, link: WindowLink) -> Result<(), String> {
        let mut app = App {
            link,
            window: None,
            renderer: None,
            shown: Display::default(),
            modifiers: ModifiersState::empty(),
            held: BTreeSet::new(),
            grabbed: false,
            pointer: None,
            failure: None,
            next_frame: Instant::now(),
            closed: false,
        };
        self.event_loop
            .run_app(&mut app)
            .map_err(|e| format!("the window failed: {e}"))?;
        match app.failure {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }
}

/// Why a frame was not drawn.
#[derive(Debug)]
enum DrawError {
    /// wgpu failed (a lost device or surface): softbuffer can take over.
    GpuLost,
    /// The window itself is unusable.
    Fatal(String),
}

/// Draws frames into the window.
enum Renderer {
    /// wgpu through pixels: scaled by the GPU (or lavapipe). The flag is raised by
    /// wgpu's error handler, which would otherwise panic.
    Gpu(Box<pixels::Pixels<'static>>, Arc<AtomicBool>),
    /// softbuffer: scaled on the CPU, works with no GPU driver at all.
    Cpu(Box<softbuffer::Surface<Arc<Window>, Arc<Window>>>),
}

impl Renderer {
    /// pixels when it finds an adapter, else softbuffer (said once, on stderr).
    fn new(window: &Arc<Window>, width: u32, height: u32) -> Result<Renderer, String> {
        let force_cpu = std::env::var("TURING_RENDERER").is_ok_and(|v| v == "softbuffer");
        if !force_cpu {
            let size = window.inner_size();
            let texture =
                pixels::SurfaceTexture::new(size.width.max(1), size.height.max(1), window.clone());
            match pixels::PixelsBuilder::new(width, height, texture)
                .enable_vsync(false)
                .clear_color(pixels::wgpu::Color::BLACK)
                .build()
            {
                Ok(mut gpu) => {
                    gpu.set_scaling_mode(pixels::ScalingMode::Fill);
                    let failed = Arc::new(AtomicBool::new(false));
                    let flag = failed.clone();
                    gpu.device().on_uncaptured_error(Arc::new(move |error| {
                        if !flag.swap(true, Ordering::AcqRel) {
                            eprintln!("turing: the GPU renderer failed: {error}");
                        }
                    }));
                    return Ok(Renderer::Gpu(Box::new(gpu), failed));
                }
                Err(e) => eprintln!(
                    "turing: no GPU adapter for the window ({e}); drawing with softbuffer instead"
                ),
            }
        }
        Renderer::software(window)
    }

    fn software(window: &Arc<Window>) -> Result<Renderer, String> {
        let context = softbuffer::Context::new(window.clone())
            .map_err(|e| format!("cannot draw in the window: {e}"))?;
        let surface = softbuffer::Surface::new(&context, window.clone())
            .map_err(|e| format!("cannot draw in the window: {e}"))?;
        Ok(Renderer::Cpu(Box::new(surface)))
    }

    /// Draws `frame` letterboxed into a `window`-sized surface.
    fn draw(&mut self, frame: &Display, window: PhysicalSize<u32>) -> Result<(), DrawError> {
        let (width, height) = frame_size(frame);
        if let Renderer::Gpu(_, failed) = self
            && failed.load(Ordering::Acquire)
        {
            return Err(DrawError::GpuLost);
        }
        match self {
            Renderer::Gpu(gpu, _) => {
                if gpu.texture().width() != width || gpu.texture().height() != height {
                    gpu.resize_buffer(width, height)
                        .map_err(|_| DrawError::GpuLost)?;
                }
                let bytes = gpu.frame_mut();
                bytes.fill(0);
                for (rgba, &pixel) in bytes.chunks_exact_mut(4).zip(&frame.pixels) {
                    let [b, g, r, _] = pixel.to_le_bytes();
                    rgba.copy_from_slice(&[r, g, b, 0xff]);
                }
                gpu.render().map_err(|_| DrawError::GpuLost)
            }
            Renderer::Cpu(surface) => {
                let (Some(w), Some(h)) = (
                    std::num::NonZeroU32::new(window.width),
                    std::num::NonZeroU32::new(window.height),
                ) else {
                    return Ok(());
                };
                let fatal = |e: softbuffer::SoftBufferError| {
                    DrawError::Fatal(format!("cannot draw the window: {e}"))
                };
                surface.resize(w, h).map_err(fatal)?;
                let mut buffer = surface.buffer_mut().map_err(fatal)?;
                scale_into(frame, &mut buffer, window.width, window.height);
                buffer.present().map_err(fatal)
            }
        }
    }

    fn resize(&mut self, size: PhysicalSize<u32>) {
        if let Renderer::Gpu(gpu, _) = self
            && size.width > 0
            && size.height > 0
        {
            // A failed resize keeps the old surface; the next frame retries.
            let _ = gpu.resize_surface(size.width, size.height);
        }
    }
}

/// The size to show `frame` at: its own, or a default before the guest set a mode.
fn frame_size(frame: &Display) -> (u32, u32) {
    if frame.width == 0
        || frame.height == 0
        || frame.pixels.len() < frame.width as usize * frame.height as usize
    {
        DEFAULT_SIZE
    } else {
        (frame.width, frame.height)
    }
}

/// Where a `guest`-sized image lands in a `window`-sized area: scaled to fit with
/// its aspect ratio kept, centred, black bars around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Left edge in window pixels.
    pub x: f64,
    /// Top edge in window pixels.
    pub y: f64,
    /// Shown width in window pixels.
    pub width: f64,
    /// Shown height in window pixels.
    pub height: f64,
}

impl Letterbox {
    /// Fits `guest` into `window` (both width, height).
    pub fn fit(window: (u32, u32), guest: (u32, u32)) -> Letterbox {
        let (ww, wh) = (f64::from(window.0.max(1)), f64::from(window.1.max(1)));
        let (gw, gh) = (f64::from(guest.0.max(1)), f64::from(guest.1.max(1)));
        let scale = (ww / gw).min(wh / gh);
        let (width, height) = (gw * scale, gh * scale);
        Letterbox {
            x: ((ww - width) / 2.0).floor(),
            y: ((wh - height) / 2.0).floor(),
            width,
            height,
        }
    }

    /// A window position as the tablet's absolute coordinates (0 to ABS_MAX),
    /// clamped to the image.
    pub fn to_tablet(&self, x: f64, y: f64) -> (u32, u32) {
        let unit = |v: f64, start: f64, len: f64| {
            let t = ((v - start) / len.max(1.0)).clamp(0.0, 1.0);
            (t * f64::from(ABS_MAX)).round() as u32
        };
        (unit(x, self.x, self.width), unit(y, self.y, self.height))
    }
}

/// Scales `frame` (nearest neighbour) into `out`, a `width` x `height` 0RGB buffer.
fn scale_into(frame: &Display, out: &mut [u32], width: u32, height: u32) {
    out.fill(0);
    let (gw, gh) = frame_size(frame);
    if frame.pixels.len() < gw as usize * gh as usize {
        return;
    }
    let fit = Letterbox::fit((width, height), (gw, gh));
    let (x0, y0) = (fit.x as u32, fit.y as u32);
    let (sw, sh) = (
        (fit.width as u32).min(width - x0),
        (fit.height as u32).min(height - y0),
    );
    for row in 0..sh {
        let gy = (u64::from(row) * u64::from(gh) / u64::from(sh.max(1))) as usize;
        let source = &frame.pixels[gy * gw as usize..(gy + 1) * gw as usize];
        let start = ((y0 + row) * width + x0) as usize;
        for (col, pixel) in out[start..start + sw as usize].iter_mut().enumerate() {
            let gx = (col as u64 * u64::from(gw) / u64::from(sw.max(1))) as usize;
            *pixel = source[gx];
        }
    }
}

struct App {
    link: WindowLink,
    window: Option<Arc<Window>>,
    renderer: Option<Renderer>,
    /// The frame on screen.
    shown: Display,
    modifiers: ModifiersState,
    /// Guest key codes held down, released if the window loses focus.
    held: BTreeSet<u16>,
    grabbed: bool,
    /// The last pointer position, in window pixels.
    pointer: Option<(f64, f64)>,
    failure: Option<String>,
    next_frame: Instant,
    /// The window was closed; the machine is stopping.
    closed: bool,
}

impl App {
    fn title(&self) -> String {
        let state = match self.link.status.state() {
            MachineState::Running => "running",
            MachineState::Paused => "paused",
            MachineState::Halted => "halted",
        };
        let grab = if self.grabbed {
            " - Ctrl+Alt+G releases the pointer"
        } else {
            ""
        };
        format!("Turing: {} ({state}){grab}", self.link.machine)
    }

    fn update_title(&self) {
        if let Some(window) = &self.window {
            window.set_title(&self.title());
        }
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, message: String) {
        self.failure = Some(message);
        self.link.control.request_stop(StopReason::HostRequest);
        event_loop.exit();
    }

    /// Takes a new snapshot and draws it if it differs from what is shown.
    fn refresh(&mut self, event_loop: &ActiveEventLoop, force: bool) {
        let frame = self.link.screen.snapshot();
        if !force && frame == self.shown {
            return;
        }
        self.shown = frame;
        self.draw(event_loop);
    }

    fn draw(&mut self, event_loop: &ActiveEventLoop) {
        let (Some(window), Some(renderer)) = (&self.window, &mut self.renderer) else {
            return;
        };
        let result = match renderer.draw(&self.shown, window.inner_size()) {
            Ok(()) => Ok(()),
            // wgpu failed mid-run: go on with softbuffer.
            Err(DrawError::GpuLost) => {
                eprintln!("turing: drawing the window with softbuffer from now on");
                Renderer::software(window).and_then(|software| {
                    *renderer = software;
                    renderer
                        .draw(&self.shown, window.inner_size())
                        .map_err(|e| match e {
                            DrawError::Fatal(message) => message,
                            DrawError::GpuLost => "the window cannot be drawn".to_owned(),
                        })
                })
            }
            Err(DrawError::Fatal(message)) => Err(message),
        };
        if let Err(message) = result {
            self.fail(event_loop, message);
        }
    }

    fn letterbox(&self) -> Option<Letterbox> {
        let size = self.window.as_ref()?.inner_size();
        Some(Letterbox::fit(
            (size.width, size.height),
            frame_size(&self.shown),
        ))
    }

    fn set_grab(&mut self, grab: bool) {
        let Some(window) = &self.window else { return };
        if grab {
            let grabbed = window
                .set_cursor_grab(CursorGrabMode::Confined)
                .or_else(|_| window.set_cursor_grab(CursorGrabMode::Locked));
            self.grabbed = grabbed.is_ok();
        } else {
            let _ = window.set_cursor_grab(CursorGrabMode::None);
            self.grabbed = false;
        }
        self.update_title();
    }

    fn key(&mut self, code: KeyCode, pressed: bool) {
        let hotkey = self.modifiers.control_key() && self.modifiers.alt_key();
        if hotkey && pressed {
            match code {
                KeyCode::KeyG => return self.set_grab(false),
                KeyCode::KeyP => {
                    self.link.status.toggle_pause();
                    return;
                }
                _ => {}
            }
        }
        let Some(linux) = linux_key_code(code) else {
            return;
        };
        if pressed {
            self.held.insert(linux);
        } else if !self.held.remove(&linux) {
            // The press went to a hotkey or happened before the window had focus.
            return;
        }
        self.link.keyboard.key(linux, pressed);
    }

    fn release_all(&mut self) {
        for code in std::mem::take(&mut self.held) {
            self.link.keyboard.key(code, false);
        }
    }
}

impl ApplicationHandler<WindowMessage> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() || self.closed {
            return;
        }
        self.shown = self.link.screen.snapshot();
        let (width, height) = frame_size(&self.shown);
        let attributes = Window::default_attributes()
            .with_title(self.title())
            .with_inner_size(PhysicalSize::new(width, height));
        let window = match event_loop.create_window(attributes) {
            Ok(window) => Arc::new(window),
            Err(e) => return self.fail(event_loop, format!("cannot open a window: {e}")),
        };
        match Renderer::new(&window, width, height) {
            Ok(renderer) => self.renderer = Some(renderer),
            Err(message) => return self.fail(event_loop, message),
        }
        self.window = Some(window);
        self.draw(event_loop);
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, message: WindowMessage) {
        self.update_title();
        if message == WindowMessage::MachineFinished {
            event_loop.exit();
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => {
                // Like a power button that cuts power: the machine stops at its
                // next slice and the process exits 0. Nothing is drawn after this.
                self.link.control.request_stop(StopReason::PowerOff(0));
                self.renderer = None;
                self.window = None;
                self.closed = true;
            }
            WindowEvent::Resized(size) => {
                if let Some(renderer) = &mut self.renderer {
                    renderer.resize(size);
                }
                self.draw(event_loop);
            }
            WindowEvent::RedrawRequested => self.draw(event_loop),
            WindowEvent::ModifiersChanged(modifiers) => self.modifiers = modifiers.state(),
            WindowEvent::Focused(false) => self.release_all(),
            WindowEvent::KeyboardInput { event, .. } => {
                if let PhysicalKey::Code(code) = event.physical_key
                    && !event.repeat
                {
                    self.key(code, event.state == ElementState::Pressed);
                }
            }
            WindowEvent::CursorMoved { position, .. } => {
                self.pointer = Some((position.x, position.y));
                if let Some(fit) = self.letterbox() {
                    let (x, y) = fit.to_tablet(position.x, position.y);
                    self.link.tablet.move_to(x, y);
                }
            }
            WindowEvent::MouseInput { state, button, .. } => {
                let pressed = state == ElementState::Pressed;
                if pressed && button == MouseButton::Left && !self.grabbed {
                    self.set_grab(true);
                }
                let code = match button {
                    MouseButton::Left => BTN_LEFT,
                    MouseButton::Right => BTN_RIGHT,
                    MouseButton::Middle => BTN_MIDDLE,
                    _ => return,
                };
                self.link.tablet.key(code, pressed);
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        if now >= self.next_frame {
            self.refresh(event_loop, false);
            self.next_frame = now + FRAME_INTERVAL;
        }
        event_loop.set_control_flow(ControlFlow::WaitUntil(self.next_frame));
    }
}

/// The Linux input event code (`KEY_*`) of a host key, by position on a US
/// keyboard, as virtio-input and evdev expect; `None` for keys Linux has no code
/// for here.
pub fn linux_key_code(code: KeyCode) -> Option<u16> {
    use KeyCode as K;
    Some(match code {
        K::Escape => 1,
        K::Digit1 => 2,
        K::Digit2 => 3,
        K::Digit3 => 4,
        K::Digit4 => 5,
        K::Digit5 => 6,
        K::Digit6 => 7,
        K::Digit7 => 8,
        K::Digit8 => 9,
        K::Digit9 => 10,
        K::Digit0 => 11,
        K::Minus => 12,
        K::Equal => 13,
        K::Backspace => 14,
        K::Tab => 15,
        K::KeyQ => 16,
        K::KeyW => 17,
        K::KeyE => 18,
        K::KeyR => 19,
        K::KeyT => 20,
        K::KeyY => 21,
        K::KeyU => 22,
        K::KeyI => 23,
        K::KeyO => 24,
        K::KeyP => 25,
        K::BracketLeft => 26,
        K::BracketRight => 27,
        K::Enter => 28,
        K::ControlLeft => 29,
        K::KeyA => 30,
        K::KeyS => 31,
        K::KeyD => 32,
        K::KeyF => 33,
        K::KeyG => 34,
        K::KeyH => 35,
        K::KeyJ => 36,
        K::KeyK => 37,
        K::KeyL => 38,
        K::Semicolon => 39,
        K::Quote => 40,
        K::Backquote => 41,
        K::ShiftLeft => 42,
        K::Backslash => 43,
        K::KeyZ => 44,
        K::KeyX => 45,
        K::KeyC => 46,
        K::KeyV => 47,
        K::KeyB => 48,
        K::KeyN => 49,
        K::KeyM => 50,
        K::Comma => 51,
        K::Period => 52,
        K::Slash => 53,
        K::ShiftRight => 54,
        K::NumpadMultiply => 55,
        K::AltLeft => 56,
        K::Space => 57,
        K::CapsLock => 58,
        K::F1 => 59,
        K::F2 => 60,
        K::F3 => 61,
        K::F4 => 62,
        K::F5 => 63,
        K::F6 => 64,
        K::F7 => 65,
        K::F8 => 66,
        K::F9 => 67,
        K::F10 => 68,
        K::NumLock => 69,
        K::ScrollLock => 70,
        K::Numpad7 => 71,
        K::Numpad8 => 72,
        K::Numpad9 => 73,
        K::NumpadSubtract => 74,
        K::Numpad4 => 75,
        K::Numpad5 => 76,
        K::Numpad6 => 77,
        K::NumpadAdd => 78,
        K::Numpad1 => 79,
        K::Numpad2 => 80,
        K::Numpad3 => 81,
        K::Numpad0 => 82,
        K::NumpadDecimal => 83,
        K::IntlBackslash => 86,
        K::F11 => 87,
        K::F12 => 88,
        K::NumpadEnter => 96,
        K::ControlRight => 97,
        K::NumpadDivide => 98,
        K::PrintScreen => 99,
        K::AltRight => 100,
        K::Home => 102,
        K::ArrowUp => 103,
        K::PageUp => 104,
        K::ArrowLeft => 105,
        K::ArrowRight => 106,
        K::End => 107,
        K::ArrowDown => 108,
        K::PageDown => 109,
        K::Insert => 110,
        K::Delete => 111,
        K::AudioVolumeMute => 113,
        K::AudioVolumeDown => 114,
        K::AudioVolumeUp => 115,
        K::Power => 116,
        K::NumpadEqual => 117,
        K::Pause => 119,
        K::NumpadComma => 121,
        K::SuperLeft => 125,
        K::SuperRight => 126,
        K::ContextMenu => 127,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_controls_map_to_linux_codes() {
        assert_eq!(linux_key_code(KeyCode::KeyA), Some(30));
        assert_eq!(linux_key_code(KeyCode::Enter), Some(28));
        assert_eq!(linux_key_code(KeyCode::ShiftLeft), Some(42));
        assert_eq!(linux_key_code(KeyCode::ArrowUp), Some(103));
        assert_eq!(linux_key_code(KeyCode::F12), Some(88));
        assert_eq!(linux_key_code(KeyCode::Fn), None);
    }

    #[test]
    fn no_two_keys_share_a_code() {
        let all = [
            KeyCode::Escape,
            KeyCode::Digit0,
            KeyCode::KeyQ,
            KeyCode::KeyZ,
            KeyCode::Space,
            KeyCode::Numpad0,
            KeyCode::NumpadEnter,
            KeyCode::Enter,
            KeyCode::ControlLeft,
            KeyCode::ControlRight,
            KeyCode::Delete,
            KeyCode::Backspace,
        ];
        let codes: BTreeSet<u16> = all.iter().filter_map(|&k| linux_key_code(k)).collect();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn letterbox_keeps_the_aspect_ratio() {
        // 4:3 in a wide window: bars left and right.
        let fit = Letterbox::fit((1600, 600), (640, 480));
        assert_eq!(
            (fit.x, fit.y, fit.width, fit.height),
            (400.0, 0.0, 800.0, 600.0)
        );
        // In a tall window: bars above and below.
        let fit = Letterbox::fit((640, 1000), (640, 480));
        assert_eq!(
            (fit.x, fit.y, fit.width, fit.height),
            (0.0, 260.0, 640.0, 480.0)
        );
    }

    #[test]
    fn pointer_positions_map_to_tablet_coordinates() {
        let fit = Letterbox::fit((1600, 600), (640, 480));
        assert_eq!(fit.to_tablet(400.0, 0.0), (0, 0));
        assert_eq!(fit.to_tablet(1200.0, 600.0), (ABS_MAX, ABS_MAX));
        assert_eq!(
            fit.to_tablet(800.0, 300.0),
            (ABS_MAX / 2 + 1, ABS_MAX / 2 + 1)
        );
        // Outside the image (on a bar) clamps to its edge.
        assert_eq!(fit.to_tablet(10.0, -5.0), (0, 0));
    }

    #[test]
    fn cpu_scaling_letterboxes_and_doubles_pixels() {
        let frame = Display {
            width: 2,
            height: 1,
            pixels: vec![0x00ff_0000, 0x0000_ff00],
            frames: 1,
        };
        // 2x1 into 4x4: scaled 2x to 4x2, one black row above and below.
        let mut out = vec![0xdead_beef; 16];
        scale_into(&frame, &mut out, 4, 4);
        let red = 0x00ff_0000;
        let green = 0x0000_ff00;
        assert_eq!(
            out,
            [
                0, 0, 0, 0, //
                red, red, green, green, //
                red, red, green, green, //
                0, 0, 0, 0,
            ]
        );
    }

    #[test]
    fn pause_requests_toggle() {
        let status = MachineStatus::default();
        assert_eq!(status.state(), MachineState::Running);
        status.toggle_pause();
        assert!(status.pause_requested());
        status.toggle_pause();
        assert!(!status.pause_requested());
        status.set_state(MachineState::Halted);
        assert_eq!(status.state(), MachineState::Halted);
    }
}
