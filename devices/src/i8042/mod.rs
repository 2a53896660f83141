//! The PC's Intel 8042 keyboard controller at ports 0x60 (data) and 0x64
//! (status and command), with a PS/2 keyboard on its first port and a PS/2
//! mouse on its auxiliary port, as on QEMU's `pc` machine.
//!
//! The model follows the 8042 and PS/2 descriptions (IBM's PS/2 technical
//! reference, Microsoft's keyboard scan code specification) and QEMU's
//! `hw/input/pckbd.c` and `hw/input/ps2.c`:
//! - The controller has one output buffer. It holds its own replies (command
//!   byte, self tests, the output port, bytes written with 0xD2/0xD3) ahead of
//!   device data; otherwise it takes the keyboard's next byte, then the
//!   mouse's, each only while that interface's clock is enabled in the
//!   command byte. Status bit 0 says the buffer is full, bit 5 that the byte
//!   came from the mouse.
//! - IRQ 1 is high while the buffer holds a keyboard (or controller) byte and
//!   the command byte enables keyboard interrupts; IRQ 12 likewise for mouse
//!   bytes. Reading port 0x60 drops the line before the next byte moves in, so
//!   each byte is a fresh edge at the edge-triggered i8259.
//! - With translation on (command byte bit 6, which firmware sets), keyboard
//!   bytes pass through the 8042's set 2 to set 1 table on their way in, and a
//!   0xF0 break prefix becomes bit 7 of the byte after it. The keyboard itself
//!   always speaks set 2 (or set 1 if asked).
//! - The output port's bit 0 is the CPU reset line (writing it 0, or pulsing
//!   it with 0xFE, resets the machine through [`RunControl`]) and bit 1 the
//!   A20 gate, an [`A20Gate`] shared with port 0x92.
//!
//! Where the model picks one reading over another:
//! - IRQ 1 ignores the keyboard clock bit (QEMU holds it low while the
//!   keyboard is disabled): here a disabled interface already keeps keyboard
//!   bytes out of the buffer, so the line follows the buffer as the 8042's
//!   output pin does.
//! - The status register's system flag is set by the self test (0xAA) or a
//!   command byte with bit 2 set, and cleared only by a reset, as in QEMU
//!   (SeaBIOS writes command bytes with bit 2 clear after its self test).
//! - The command byte powers on as QEMU's, 0x03: both interrupts enabled,
//!   translation off until firmware turns it on.
//! - Each device keeps at most 16 bytes of keystrokes or movement packets (a
//!   PS/2 keyboard's buffer, and QEMU's limit), with command replies queued
//!   apart and ahead of them. A longer queue would let keys typed during boot
//!   outlast Linux's 16-byte flush, which then reports no controller.
//! - A key sequence or a mouse packet is queued whole or not at all; the
//!   mouse keeps unreported movement in its counters, which saturate (and set
//!   the packet's overflow bit) only when the guest falls behind.
//! - Scan code set 3 can be selected and reported, but keys then still arrive
//!   in set 2.
//!
//! Host input (Linux key codes, relative mouse motion and buttons) enters
//! through [`I8042`], from any thread.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use emu_core::sync::LockRecover;
use emu_core::{Device, DeviceState, IrqLine, PioDevice, RunControl, StateError, StopReason};
use serde::{Deserialize, Serialize};

use crate::pc_ports::A20Gate;
use crate::state::{NoState, invalid};
use crate::virtio::{HostInput, InputHandle, input::ABS_MAX};

#[cfg(test)]
mod tests;

/// The data port.
pub const DATA_PORT: u16 = 0x60;
/// The status (read) and command (write) port.
pub const COMMAND_PORT: u16 = 0x64;
/// Ports in each of the two windows.
pub const PORT_COUNT: u32 = 1;
/// The i8259 input keyboard bytes interrupt on.
pub const KEYBOARD_IRQ: usize = 1;
/// The i8259 input mouse bytes interrupt on.
pub const MOUSE_IRQ: usize = 12;

/// Status: the output buffer holds a byte for the host.
const STATUS_OBF: u8 = 0x01;
/// Status: the system flag (0 at power-on, 1 after a self test).
const STATUS_SYSTEM: u8 = 0x04;
/// Status: the last write went to the command port (else the data port).
const STATUS_COMMAND: u8 = 0x08;
/// Status: the keyboard is not inhibited by the key lock.
const STATUS_UNLOCKED: u8 = 0x10;
/// Status: the byte in the output buffer came from the mouse.
const STATUS_AUX_OBF: u8 = 0x20;

/// Command byte: keyboard bytes interrupt on IRQ 1.
const CB_KBD_INT: u8 = 0x01;
/// Command byte: mouse bytes interrupt on IRQ 12.
const CB_AUX_INT: u8 = 0x02;
/// Command byte: the system flag, copied to the status register.
const CB_SYSTEM: u8 = 0x04;
/// Command byte: the keyboard's clock is held (interface disabled).
const CB_KBD_DISABLED: u8 = 0x10;
/// Command byte: the mouse's clock is held (interface disabled).
const CB_AUX_DISABLED: u8 = 0x20;
/// Command byte: translate keyboard bytes from set 2 to set 1.
const CB_TRANSLATE: u8 = 0x40;
/// The command byte at power-on, as QEMU's: both interrupts enabled.
const CB_POWER_ON: u8 = CB_KBD_INT | CB_AUX_INT;

/// Output port: the CPU reset line (active low).
const OUT_RESET: u8 = 0x01;
/// Output port: the A20 gate.
const OUT_A20: u8 = 0x02;
/// Output port: keyboard output buffer full (the IRQ 1 pin).
const OUT_KBD_OBF: u8 = 0x10;
/// Output port: mouse output buffer full (the IRQ 12 pin).
const OUT_AUX_OBF: u8 = 0x20;
/// The output port at power-on (QEMU's): out of reset, A20 open, and the
/// unused lines high.
const OUT_POWER_ON: u8 = 0xcf;
/// The input port as read with 0xC0: keyboard not inhibited.
const INPUT_PORT: u8 = 0x80;

/// Controller commands 0x20–0x3F read controller RAM (0x20: the command byte).
const CCMD_READ_RAM: u8 = 0x20;
const CCMD_READ_RAM_LAST: u8 = 0x3f;
/// Controller commands 0x60–0x7F write controller RAM with the next data byte.
const CCMD_WRITE_RAM: u8 = 0x60;
const CCMD_WRITE_RAM_LAST: u8 = 0x7f;
const CCMD_PASSWORD_INSTALLED: u8 = 0xa4;
const CCMD_AUX_DISABLE: u8 = 0xa7;
const CCMD_AUX_ENABLE: u8 = 0xa8;
const CCMD_AUX_TEST: u8 = 0xa9;
const CCMD_SELF_TEST: u8 = 0xaa;
const CCMD_KBD_TEST: u8 = 0xab;
const CCMD_KBD_DISABLE: u8 = 0xad;
const CCMD_KBD_ENABLE: u8 = 0xae;
const CCMD_READ_INPUT: u8 = 0xc0;
const CCMD_READ_OUTPUT: u8 = 0xd0;
const CCMD_WRITE_OUTPUT: u8 = 0xd1;
const CCMD_WRITE_KBD_OBUF: u8 = 0xd2;
const CCMD_WRITE_AUX_OBUF: u8 = 0xd3;
const CCMD_WRITE_AUX: u8 = 0xd4;
const CCMD_A20_OFF: u8 = 0xdd;
const CCMD_A20_ON: u8 = 0xdf;
/// Commands 0xF0–0xFF pulse the output port bits 3–0 that are 0 in them.
const CCMD_PULSE: u8 = 0xf0;
/// Self test passed.
const SELF_TEST_OK: u8 = 0x55;
/// Interface test passed.
const INTERFACE_OK: u8 = 0x00;
/// No password installed.
const NO_PASSWORD: u8 = 0xf1;
/// Size of the controller RAM reachable with 0x20/0x60 (byte 0 is the
/// command byte).
const RAM_SIZE: usize = 32;

/// A PS/2 device's acknowledge.
const ACK: u8 = 0xfa;
/// A PS/2 device's request to send the last byte again (an unknown command
/// or a bad argument).
const RESEND: u8 = 0xfe;
/// Basic assurance test passed (after a reset).
const BAT_OK: u8 = 0xaa;
/// Set 2's break prefix, which translation folds into bit 7.
const BREAK_PREFIX: u8 = 0xf0;
/// Set 2's (and set 1's) extended-key prefix.
const EXTENDED_PREFIX: u8 = 0xe0;
/// Bit 7 marks a set 1 break code.
const SET1_BREAK: u8 = 0x80;

/// Keyboard commands.
const KBD_SET_LEDS: u8 = 0xed;
const KBD_ECHO: u8 = 0xee;
const KBD_SCANCODE_SET: u8 = 0xf0;
const KBD_IDENTIFY: u8 = 0xf2;
const KBD_TYPEMATIC: u8 = 0xf3;
const KBD_ENABLE: u8 = 0xf4;
const KBD_DISABLE: u8 = 0xf5;
const KBD_DEFAULTS: u8 = 0xf6;
/// Set 3 commands that make every key typematic, make/break, make-only or
/// both (no argument): acknowledged and ignored.
const KBD_ALL_KEYS_FIRST: u8 = 0xf7;
const KBD_ALL_KEYS_LAST: u8 = 0xfa;
/// Set 3 commands that set one key's type (one argument): acknowledged and
/// ignored.
const KBD_ONE_KEY_FIRST: u8 = 0xfb;
const KBD_ONE_KEY_LAST: u8 = 0xfd;
const KBD_RESEND: u8 = 0xfe;
const KBD_RESET: u8 = 0xff;
/// A multifunction (MF2) keyboard's identity, as a set 2 keyboard sends it.
const KBD_ID: [u8; 2] = [0xab, 0x83];
/// Typematic rate and delay at power-on: 10.9 characters a second after
/// 500 ms.
const KBD_TYPEMATIC_DEFAULT: u8 = 0x2b;

/// Mouse commands.
const AUX_SCALING_1_1: u8 = 0xe6;
const AUX_SCALING_2_1: u8 = 0xe7;
const AUX_SET_RESOLUTION: u8 = 0xe8;
const AUX_STATUS: u8 = 0xe9;
const AUX_STREAM_MODE: u8 = 0xea;
const AUX_READ_DATA: u8 = 0xeb;
const AUX_RESET_WRAP: u8 = 0xec;
const AUX_WRAP_MODE: u8 = 0xee;
const AUX_REMOTE_MODE: u8 = 0xf0;
const AUX_IDENTIFY: u8 = 0xf2;
const AUX_SAMPLE_RATE: u8 = 0xf3;
const AUX_ENABLE: u8 = 0xf4;
const AUX_DISABLE: u8 = 0xf5;
const AUX_DEFAULTS: u8 = 0xf6;
const AUX_RESEND: u8 = 0xfe;
const AUX_RESET: u8 = 0xff;
/// A standard PS/2 mouse's identity.
const MOUSE_ID_PS2: u8 = 0x00;
/// An IntelliMouse's identity: a fourth packet byte carries the wheel.
const MOUSE_ID_INTELLIMOUSE: u8 = 0x03;
/// The sample rates that switch a mouse to IntelliMouse mode, in order.
const INTELLIMOUSE_KNOCK: [u8; 3] = [200, 100, 80];
/// Sample rates a PS/2 mouse accepts.
const SAMPLE_RATES: [u8; 7] = [10, 20, 40, 60, 80, 100, 200];
const MOUSE_RATE_DEFAULT: u8 = 100;
/// Resolution at power-on: 4 counts per millimetre.
const MOUSE_RESOLUTION_DEFAULT: u8 = 2;
/// Packet byte 0: always set.
const PACKET_ALWAYS_1: u8 = 0x08;
const PACKET_X_SIGN: u8 = 0x10;
const PACKET_Y_SIGN: u8 = 0x20;
const PACKET_X_OVERFLOW: u8 = 0x40;
const PACKET_Y_OVERFLOW: u8 = 0x80;
/// Status byte 1 of 0xE9: remote mode, reporting enabled, 2:1 scaling.
const MOUSE_STATUS_REMOTE: u8 = 0x40;
const MOUSE_STATUS_ENABLED: u8 = 0x20;
const MOUSE_STATUS_SCALING: u8 = 0x10;
/// The movement counters' range (nine bits, two's complement).
const MOTION_MIN: i32 = -256;
const MOTION_MAX: i32 = 255;
/// The wheel byte's range in an IntelliMouse packet.
const WHEEL_MIN: i32 = -8;
const WHEEL_MAX: i32 = 7;

/// Mouse buttons in packet order (byte 0, bits 0–2).
pub const MOUSE_LEFT: u8 = 0x01;
/// Right button.
pub const MOUSE_RIGHT: u8 = 0x02;
/// Middle button.
pub const MOUSE_MIDDLE: u8 = 0x04;
const MOUSE_BUTTONS: u8 = MOUSE_LEFT | MOUSE_RIGHT | MOUSE_MIDDLE;
/// Linux's button codes (`BTN_LEFT`, `BTN_RIGHT`, `BTN_MIDDLE`).
const BTN_LEFT: u16 = 0x110;
const BTN_RIGHT: u16 = 0x111;
const BTN_MIDDLE: u16 = 0x112;

/// Keystrokes or movement a device holds for the controller.
const DATA_LIMIT: usize = 16;
/// Command replies a device holds (the longest reply is four bytes; a guest
/// that sends commands without reading loses the excess).
const REPLY_LIMIT: usize = 16;

/// Model name of the controller's saved state (in the data port's window).
const KIND: &str = "i8042";
/// Layout version of [`I8042State`].
const VERSION: u32 = 1;
/// Model name of the command port's window, which keeps no state of its own.
const COMMAND_KIND: &str = "i8042-command-port";

/// Which device a byte in the output buffer counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The keyboard, or the controller answering a command: status bit 5
    /// clear, IRQ 1.
    Keyboard,
    /// The mouse, or a byte written with 0xD3: status bit 5 set, IRQ 12.
    Mouse,
}

/// A byte of the controller's own, waiting for the output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The byte.
    pub byte: u8,
    /// Whose data it passes for.
    pub source: Source,
}

/// The controller's registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerState {
    /// Controller RAM as commands 0x20–0x3F and 0x60–0x7F reach it; byte 0
    /// is the command byte.
    pub ram: [u8; RAM_SIZE],
    /// The status register's system flag: set by a self test (or a command
    /// byte with bit 2 set), cleared only by a reset.
    pub system_flag: bool,
    /// Whether the last write went to the command port.
    pub last_write_command: bool,
    /// The output port's stored bits (bits 4 and 5 are the buffer's state).
    pub output_port: u8,
    /// A command waiting for its data byte on port 0x60.
    pub pending_command: Option<u8>,
    /// The output buffer's byte; it stays readable once taken.
    pub output: u8,
    /// Whose byte the output buffer holds; `None` when empty.
    pub output_source: Option<Source>,
    /// The controller's own byte waiting for the output buffer.
    pub reply: Option<Reply>,
    /// Translation saw a 0xF0 break prefix: the next byte gets bit 7.
    pub break_pending: bool,
}

impl ControllerState {
    fn power_on() -> ControllerState {
        let mut ram = [0; RAM_SIZE];
        ram[0] = CB_POWER_ON;
        ControllerState {
            ram,
            system_flag: false,
            last_write_command: true,
            output_port: OUT_POWER_ON,
            pending_command: None,
            output: 0,
            output_source: None,
            reply: None,
            break_pending: false,
        }
    }

    fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    fn status(&self) -> u8 {
        let mut status = STATUS_UNLOCKED;
        if self.output_source.is_some() {
            status |= STATUS_OBF;
        }
        if self.output_source == Some(Source::Mouse) {
            status |= STATUS_AUX_OBF;
        }
        if self.system_flag {
            status |= STATUS_SYSTEM;
        }
        if self.last_write_command {
            status |= STATUS_COMMAND;
        }
        status
    }

    /// The output port as 0xD0 reads it: the stored bits and the buffer's.
    fn output_port(&self) -> u8 {
        let full = match self.output_source {
            Some(Source::Keyboard) => OUT_KBD_OBF,
            Some(Source::Mouse) => OUT_AUX_OBF,
            None => 0,
        };
        (self.output_port & !(OUT_KBD_OBF | OUT_AUX_OBF)) | full
    }

    /// The levels of IRQ 1 and IRQ 12.
    fn irq_levels(&self) -> (bool, bool) {
        let enabled = |bit| self.command_byte() & bit != 0;
        (
            self.output_source == Some(Source::Keyboard) && enabled(CB_KBD_INT),
            self.output_source == Some(Source::Mouse) && enabled(CB_AUX_INT),
        )
    }

    /// The controller's answer to a command (it counts as keyboard data).
    fn answer(&mut self, byte: u8) {
        self.queue_reply(byte, Source::Keyboard);
    }

    fn queue_reply(&mut self, byte: u8, source: Source) {
        // One byte deep, as the 8042's: a second reply before the host
        // took the first replaces it.
        self.reply = Some(Reply { byte, source });
    }

    fn write_ram(&mut self, index: usize, value: u8) {
        if let Some(slot) = self.ram.get_mut(index) {
            *slot = value;
        }
        // Setting the command byte's system flag sets the status bit;
        // clearing it leaves the bit (firmware such as SeaBIOS writes 0
        // there after its self test, and QEMU keeps the bit then too).
        if index == 0 && value & CB_SYSTEM != 0 {
            self.system_flag = true;
        }
    }
}

/// Appends `bytes` to `queue` unless that would pass `limit`: whole
/// sequences or nothing.
fn push_all(queue: &mut VecDeque<u8>, bytes: &[u8], limit: usize) -> bool {
    if queue.len() + bytes.len() > limit {
        return false;
    }
    queue.extend(bytes);
    true
}

/// The PS/2 keyboard's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyboardState {
    /// Command replies, sent ahead of keystrokes.
    pub replies: VecDeque<u8>,
    /// Keystrokes (scan code bytes) not yet sent.
    pub data: VecDeque<u8>,
    /// The last byte sent, for the resend command.
    pub last_sent: u8,
    /// A command waiting for its argument.
    pub expecting: Option<u8>,
    /// Whether key presses are reported.
    pub scanning: bool,
    /// The scan code set selected (1–3).
    pub scancode_set: u8,
    /// Scroll, Num and Caps Lock LEDs (bits 0–2).
    pub leds: u8,
    /// Typematic rate and delay as last set.
    pub typematic: u8,
    /// Modifier keys the host holds down (bits 0–1 left and right Ctrl,
    /// 2–3 Shift, 4–5 Alt), which change the codes of Pause and Print
    /// Screen.
    pub modifiers: u8,
}

/// Modifier bits of [`KeyboardState::modifiers`], and the masks of either
/// side's.
const MOD_LEFT_CTRL: u8 = 0x01;
const MOD_RIGHT_CTRL: u8 = 0x02;
const MOD_LEFT_SHIFT: u8 = 0x04;
const MOD_RIGHT_SHIFT: u8 = 0x08;
const MOD_LEFT_ALT: u8 = 0x10;
const MOD_RIGHT_ALT: u8 = 0x20;
const MOD_CTRL: u8 = MOD_LEFT_CTRL | MOD_RIGHT_CTRL;
const MOD_SHIFT: u8 = MOD_LEFT_SHIFT | MOD_RIGHT_SHIFT;
const MOD_ALT: u8 = MOD_LEFT_ALT | MOD_RIGHT_ALT;

impl KeyboardState {
    fn power_on() -> KeyboardState {
        KeyboardState {
            replies: VecDeque::new(),
            data: VecDeque::new(),
            last_sent: 0,
            expecting: None,
            scanning: true,
            scancode_set: 2,
            leds: 0,
            typematic: KBD_TYPEMATIC_DEFAULT,
            modifiers: 0,
        }
    }

    /// The defaults F5, F6 and FF restore; keystrokes not yet sent are lost.
    fn defaults(&mut self, scanning: bool) {
        self.data.clear();
        self.scanning = scanning;
        self.scancode_set = 2;
        self.leds = 0;
        self.typematic = KBD_TYPEMATIC_DEFAULT;
    }

    fn reply(&mut self, bytes: &[u8]) {
        push_all(&mut self.replies, bytes, REPLY_LIMIT);
    }

    /// The next byte for the controller.
    fn take(&mut self) -> Option<u8> {
        let byte = self.replies.pop_front().or_else(|| self.data.pop_front())?;
        self.last_sent = byte;
        Some(byte)
    }

    /// A byte from the host (port 0x60 with no controller command pending).
    fn write(&mut self, byte: u8) {
        if let Some(command) = self.expecting.take() {
            // A command byte in place of an argument starts that command.
            if byte < KBD_SET_LEDS {
                self.argument(command, byte);
                return;
            }
        }
        match byte {
            KBD_SET_LEDS | KBD_SCANCODE_SET | KBD_TYPEMATIC => {
                self.expecting = Some(byte);
                self.reply(&[ACK]);
            }
            KBD_ONE_KEY_FIRST..=KBD_ONE_KEY_LAST => {
                self.expecting = Some(byte);
                self.reply(&[ACK]);
            }
            KBD_ECHO => self.reply(&[KBD_ECHO]),
            KBD_IDENTIFY => self.reply(&[ACK, KBD_ID[0], KBD_ID[1]]),
            KBD_ENABLE => {
                self.data.clear();
                self.scanning = true;
                self.reply(&[ACK]);
            }
            KBD_DISABLE => {
                self.defaults(false);
                self.reply(&[ACK]);
            }
            KBD_DEFAULTS => {
                self.defaults(true);
                self.reply(&[ACK]);
            }
            KBD_ALL_KEYS_FIRST..=KBD_ALL_KEYS_LAST => self.reply(&[ACK]),
            KBD_RESEND => {
                let last = self.last_sent;
                self.reply(&[last]);
            }
            KBD_RESET => {
                self.defaults(true);
                self.replies.clear();
                self.reply(&[ACK, BAT_OK]);
            }
            _ => self.reply(&[RESEND]),
        }
    }

    fn argument(&mut self, command: u8, value: u8) {
        match command {
            KBD_SET_LEDS => {
                self.leds = value & 0x07;
                self.reply(&[ACK]);
            }
            KBD_TYPEMATIC => {
                self.typematic = value & 0x7f;
                self.reply(&[ACK]);
            }
            KBD_SCANCODE_SET => match value {
                0 => {
                    let set = self.scancode_set;
                    self.reply(&[ACK, set]);
                }
                1..=3 => {
                    self.scancode_set = value;
                    self.reply(&[ACK]);
                }
                _ => self.reply(&[RESEND]),
            },
            // One key's type in set 3: not modelled.
            _ => self.reply(&[ACK]),
        }
    }

    /// A host key (Linux key code) went down or up.
    fn key(&mut self, code: u16, pressed: bool) {
        let modifier = match code {
            KEY_LEFTCTRL => MOD_LEFT_CTRL,
            KEY_RIGHTCTRL => MOD_RIGHT_CTRL,
            KEY_LEFTSHIFT => MOD_LEFT_SHIFT,
            KEY_RIGHTSHIFT => MOD_RIGHT_SHIFT,
            KEY_LEFTALT => MOD_LEFT_ALT,
            KEY_RIGHTALT => MOD_RIGHT_ALT,
            _ => 0,
        };
        // Tracked while scanning is off too: the keys stay held meanwhile.
        if pressed {
            self.modifiers |= modifier;
        } else {
            self.modifiers &= !modifier;
        }
        if !self.scanning {
            return;
        }
        let sequence = set2_sequence(code, pressed, self.modifiers);
        let sequence = if self.scancode_set == 1 {
            to_set1(&sequence)
        } else {
            sequence
        };
        // A whole sequence or nothing: half a key confuses every driver.
        push_all(&mut self.data, &sequence, DATA_LIMIT);
    }
}

/// The PS/2 mouse's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MouseState {
    /// Command replies (a read-data packet among them), sent ahead of
    /// stream packets.
    pub replies: VecDeque<u8>,
    /// Stream-mode packets not yet sent.
    pub data: VecDeque<u8>,
    /// The last byte sent, for the resend command.
    pub last_sent: u8,
    /// A command waiting for its argument.
    pub expecting: Option<u8>,
    /// Remote mode (packets only on request) rather than stream mode.
    pub remote: bool,
    /// Data reporting enabled (stream mode sends packets).
    pub reporting: bool,
    /// 2:1 scaling of stream reports.
    pub scaling_2_1: bool,
    /// Resolution code (0–3).
    pub resolution: u8,
    /// Samples a second.
    pub sample_rate: u8,
    /// Wrap (echo) mode.
    pub wrap: bool,
    /// The identity (0 for a PS/2 mouse, 3 for an IntelliMouse).
    pub id: u8,
    /// The latest sample rates set, oldest first, watched for the
    /// IntelliMouse knock.
    pub rate_history: Vec<u8>,
    /// Movement not yet reported, in counts (x right, y up), within the
    /// counters' nine bits.
    pub dx: i32,
    /// Vertical movement (up is positive).
    pub dy: i32,
    /// Wheel movement (toward the user is positive), within -8..=7.
    pub dz: i32,
    /// Horizontal movement was lost since the last report.
    pub overflow_x: bool,
    /// Vertical movement was lost since the last report.
    pub overflow_y: bool,
    /// Buttons the host holds ([`MOUSE_LEFT`] and the others).
    pub buttons: u8,
    /// Buttons as last reported.
    pub reported_buttons: u8,
}

impl MouseState {
    fn power_on() -> MouseState {
        MouseState {
            replies: VecDeque::new(),
            data: VecDeque::new(),
            last_sent: 0,
            expecting: None,
            remote: false,
            reporting: false,
            scaling_2_1: false,
            resolution: MOUSE_RESOLUTION_DEFAULT,
            sample_rate: MOUSE_RATE_DEFAULT,
            wrap: false,
            id: MOUSE_ID_PS2,
            rate_history: Vec::new(),
            dx: 0,
            dy: 0,
            dz: 0,
            overflow_x: false,
            overflow_y: false,
            buttons: 0,
            reported_buttons: 0,
        }
    }

    /// The settings F6 and FF restore (stream mode, reporting off).
    fn defaults(&mut self) {
        self.remote = false;
        self.reporting = false;
        self.scaling_2_1 = false;
        self.resolution = MOUSE_RESOLUTION_DEFAULT;
        self.sample_rate = MOUSE_RATE_DEFAULT;
        self.clear_counters();
    }

    fn clear_counters(&mut self) {
        self.dx = 0;
        self.dy = 0;
        self.dz = 0;
        self.overflow_x = false;
        self.overflow_y = false;
        self.reported_buttons = self.buttons;
    }

    fn reply(&mut self, bytes: &[u8]) {
        push_all(&mut self.replies, bytes, REPLY_LIMIT);
    }

    fn packet_len(&self) -> usize {
        if self.id == MOUSE_ID_INTELLIMOUSE {
            4
        } else {
            3
        }
    }

    /// The next byte for the controller. Taking one may make room for a
    /// report that waited.
    fn take(&mut self) -> Option<u8> {
        let byte = self.replies.pop_front().or_else(|| self.data.pop_front())?;
        self.last_sent = byte;
        self.sync();
        Some(byte)
    }

    /// A byte from the host (through 0xD4).
    fn write(&mut self, byte: u8) {
        if self.wrap && byte != AUX_RESET_WRAP && byte != AUX_RESET {
            self.reply(&[byte]);
            return;
        }
        if let Some(command) = self.expecting.take() {
            self.argument(command, byte);
            return;
        }
        // A command cancels the packets the mouse had not sent yet.
        self.data.clear();
        if byte != AUX_SAMPLE_RATE {
            self.rate_history.clear();
        }
        match byte {
            AUX_SCALING_1_1 => {
                self.scaling_2_1 = false;
                self.reply(&[ACK]);
            }
            AUX_SCALING_2_1 => {
                self.scaling_2_1 = true;
                self.reply(&[ACK]);
            }
            AUX_SET_RESOLUTION | AUX_SAMPLE_RATE => {
                self.expecting = Some(byte);
                self.reply(&[ACK]);
            }
            AUX_STATUS => {
                let status = self.status_byte();
                let (resolution, rate) = (self.resolution, self.sample_rate);
                self.reply(&[ACK, status, resolution, rate]);
            }
            AUX_STREAM_MODE => {
                self.remote = false;
                self.clear_counters();
                self.reply(&[ACK]);
            }
            AUX_READ_DATA => {
                self.reply(&[ACK]);
                let (packet, len) = self.report(false);
                self.reply(&packet[..len]);
            }
            AUX_RESET_WRAP => {
                self.wrap = false;
                self.clear_counters();
                self.reply(&[ACK]);
            }
            AUX_WRAP_MODE => {
                self.wrap = true;
                self.clear_counters();
                self.reply(&[ACK]);
            }
            AUX_REMOTE_MODE => {
                self.remote = true;
                self.clear_counters();
                self.reply(&[ACK]);
            }
            AUX_IDENTIFY => {
                let id = self.id;
                self.reply(&[ACK, id]);
            }
            AUX_ENABLE => {
                self.reporting = true;
                self.clear_counters();
                self.reply(&[ACK]);
            }
            AUX_DISABLE => {
                self.reporting = false;
                self.clear_counters();
                self.reply(&[ACK]);
            }
            AUX_DEFAULTS => {
                self.defaults();
                self.reply(&[ACK]);
            }
            AUX_RESEND => {
                let last = self.last_sent;
                self.reply(&[last]);
            }
            AUX_RESET => {
                self.defaults();
                self.wrap = false;
                self.id = MOUSE_ID_PS2;
                self.replies.clear();
                self.reply(&[ACK, BAT_OK, MOUSE_ID_PS2]);
            }
            _ => self.reply(&[RESEND]),
        }
    }

    fn argument(&mut self, command: u8, value: u8) {
        match command {
            AUX_SET_RESOLUTION if value <= 3 => {
                self.resolution = value;
                self.reply(&[ACK]);
            }
            AUX_SAMPLE_RATE if SAMPLE_RATES.contains(&value) => {
                self.sample_rate = value;
                self.rate_history.push(value);
                let excess = self
                    .rate_history
                    .len()
                    .saturating_sub(INTELLIMOUSE_KNOCK.len());
                self.rate_history.drain(..excess);
                if self.rate_history == INTELLIMOUSE_KNOCK {
                    self.id = MOUSE_ID_INTELLIMOUSE;
                }
                self.reply(&[ACK]);
            }
            _ => {
                self.rate_history.clear();
                self.reply(&[RESEND]);
            }
        }
    }

    /// Byte 1 of the status report: mode, reporting, scaling, and the
    /// buttons (left in bit 2, middle in bit 1, right in bit 0).
    fn status_byte(&self) -> u8 {
        let mut status = 0;
        if self.remote {
            status |= MOUSE_STATUS_REMOTE;
        }
        if self.reporting {
            status |= MOUSE_STATUS_ENABLED;
        }
        if self.scaling_2_1 {
            status |= MOUSE_STATUS_SCALING;
        }
        if self.buttons & MOUSE_LEFT != 0 {
            status |= 0x04;
        }
        if self.buttons & MOUSE_MIDDLE != 0 {
            status |= 0x02;
        }
        if self.buttons & MOUSE_RIGHT != 0 {
            status |= 0x01;
        }
        status
    }

    /// A movement packet from the counters, which start again from zero.
    /// `scaled`: stream reports go through 2:1 scaling when it is on.
    fn report(&mut self, scaled: bool) -> ([u8; 4], usize) {
        let scale = |v: i32| {
            if scaled && self.scaling_2_1 {
                scale_2_1(v)
            } else {
                v
            }
        };
        let (x, over_x) = fit(scale(self.dx), self.overflow_x);
        let (y, over_y) = fit(scale(self.dy), self.overflow_y);
        let mut first = PACKET_ALWAYS_1 | (self.buttons & MOUSE_BUTTONS);
        for (set, bit) in [
            (x < 0, PACKET_X_SIGN),
            (y < 0, PACKET_Y_SIGN),
            (over_x, PACKET_X_OVERFLOW),
            (over_y, PACKET_Y_OVERFLOW),
        ] {
            if set {
                first |= bit;
            }
        }
        let z = self.dz.clamp(WHEEL_MIN, WHEEL_MAX);
        let packet = [first, x as u8, y as u8, z as u8];
        let len = self.packet_len();
        self.clear_counters();
        (packet, len)
    }

    /// Whether movement or a button change waits to be reported.
    fn has_news(&self) -> bool {
        self.dx != 0
            || self.dy != 0
            || self.dz != 0
            || self.overflow_x
            || self.overflow_y
            || self.buttons != self.reported_buttons
    }

    /// Stream mode: reports what waits, if the queue has room for a packet.
    fn sync(&mut self) {
        if self.remote || !self.reporting || self.wrap || !self.has_news() {
            return;
        }
        if self.data.len() + self.packet_len() > DATA_LIMIT {
            return;
        }
        let (packet, len) = self.report(true);
        push_all(&mut self.data, &packet[..len], DATA_LIMIT);
    }

    /// Whether the counters take movement: in remote mode, or streaming.
    fn counting(&self) -> bool {
        self.remote || (self.reporting && !self.wrap)
    }

    /// Adds movement to the counters, saturating them (and noting the
    /// overflow) where the guest fell behind.
    fn count(&mut self, dx: i32, dy: i32, dz: i32) {
        (self.dx, self.overflow_x) = saturate(self.dx, dx, self.overflow_x);
        (self.dy, self.overflow_y) = saturate(self.dy, dy, self.overflow_y);
        if self.id == MOUSE_ID_INTELLIMOUSE {
            self.dz = self.dz.saturating_add(dz).clamp(WHEEL_MIN, WHEEL_MAX);
        }
    }

    /// Host movement in counts (x right, y up, z toward the user), split
    /// into reports a packet can carry while the queue has room.
    fn motion(&mut self, dx: i32, dy: i32, dz: i32) {
        if !self.counting() {
            return;
        }
        // A mouse without a wheel byte has no use for wheel movement.
        let dz = if self.id == MOUSE_ID_INTELLIMOUSE {
            dz
        } else {
            0
        };
        let (mut dx, mut dy, mut dz) = (dx, dy, dz);
        loop {
            let step = (
                dx.clamp(MOTION_MIN, MOTION_MAX),
                dy.clamp(MOTION_MIN, MOTION_MAX),
                dz.clamp(WHEEL_MIN, WHEEL_MAX),
            );
            self.count(step.0, step.1, step.2);
            // Each step is `v` clamped toward zero: no overflow here.
            (dx, dy, dz) = (dx - step.0, dy - step.1, dz - step.2);
            self.sync();
            if (dx, dy, dz) == (0, 0, 0) {
                break;
            }
            if self.has_news() {
                // No room (or remote mode): the rest goes to the counters.
                self.count(dx, dy, dz);
                break;
            }
        }
    }

    fn set_buttons(&mut self, buttons: u8) {
        self.buttons = buttons & MOUSE_BUTTONS;
        self.sync();
    }
}

/// `counter + delta` within the nine-bit range, and whether anything was
/// lost (now or before).
fn saturate(counter: i32, delta: i32, overflow: bool) -> (i32, bool) {
    let sum = counter.saturating_add(delta);
    let fitted = sum.clamp(MOTION_MIN, MOTION_MAX);
    (fitted, overflow || fitted != sum)
}

/// A counter value fitted to nine bits, with its overflow bit.
fn fit(value: i32, overflow: bool) -> (i32, bool) {
    let fitted = value.clamp(MOTION_MIN, MOTION_MAX);
    (fitted, overflow || fitted != value)
}

/// 2:1 scaling as the PS/2 mouse applies it to stream reports.
fn scale_2_1(value: i32) -> i32 {
    let scaled = match value.unsigned_abs() {
        0 => 0,
        1 | 2 => 1,
        3 => 3,
        4 => 6,
        5 => 9,
        n => n.saturating_mul(2).min(i32::MAX.unsigned_abs()),
    };
    let scaled = i32::try_from(scaled).unwrap_or(i32::MAX);
    if value < 0 { -scaled } else { scaled }
}

/// Everything the controller and its two devices hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct I8042State {
    /// The controller.
    pub controller: ControllerState,
    /// The keyboard on its first port.
    pub keyboard: KeyboardState,
    /// The mouse on its auxiliary port.
    pub mouse: MouseState,
}

impl Default for I8042State {
    fn default() -> I8042State {
        I8042State::power_on()
    }
}

impl I8042State {
    /// The power-on state.
    pub fn power_on() -> I8042State {
        I8042State {
            controller: ControllerState::power_on(),
            keyboard: KeyboardState::power_on(),
            mouse: MouseState::power_on(),
        }
    }

    /// Moves the next byte into an empty output buffer: the controller's
    /// own first, then the keyboard's, then the mouse's, each device only
    /// while its interface is enabled.
    fn fill(&mut self) {
        let c = &mut self.controller;
        while c.output_source.is_none() {
            let (byte, source) = if let Some(reply) = c.reply.take() {
                (reply.byte, reply.source)
            } else if c.command_byte() & CB_KBD_DISABLED == 0
                && let Some(byte) = self.keyboard.take()
            {
                if c.command_byte() & CB_TRANSLATE == 0 {
                    (byte, Source::Keyboard)
                } else if byte == BREAK_PREFIX {
                    c.break_pending = true;
                    continue;
                } else {
                    let high = if std::mem::take(&mut c.break_pending) {
                        SET1_BREAK
                    } else {
                        0
                    };
                    (translate(byte) | high, Source::Keyboard)
                }
            } else if c.command_byte() & CB_AUX_DISABLED == 0
                && let Some(byte) = self.mouse.take()
            {
                (byte, Source::Mouse)
            } else {
                return;
            };
            c.output = byte;
            c.output_source = Some(source);
        }
    }

    /// Checks what the model relies on in a restored state.
    fn validate(&self) -> Result<(), StateError> {
        let k = &self.keyboard;
        let m = &self.mouse;
        let too_long = |q: &VecDeque<u8>, limit: usize| q.len() > limit;
        if too_long(&k.data, DATA_LIMIT)
            || too_long(&k.replies, REPLY_LIMIT)
            || too_long(&m.data, DATA_LIMIT)
            || too_long(&m.replies, REPLY_LIMIT)
        {
            return Err(invalid(KIND, "a device queue longer than its limit"));
        }
        if !(1..=3).contains(&k.scancode_set) {
            return Err(invalid(KIND, format!("scan code set {}", k.scancode_set)));
        }
        if m.id != MOUSE_ID_PS2 && m.id != MOUSE_ID_INTELLIMOUSE {
            return Err(invalid(KIND, format!("mouse identity {:#x}", m.id)));
        }
        if m.rate_history.len() > INTELLIMOUSE_KNOCK.len()
            || !(MOTION_MIN..=MOTION_MAX).contains(&m.dx)
            || !(MOTION_MIN..=MOTION_MAX).contains(&m.dy)
            || !(WHEEL_MIN..=WHEEL_MAX).contains(&m.dz)
        {
            return Err(invalid(KIND, "mouse counters out of range"));
        }
        Ok(())
    }
}

/// Linux key codes (`input-event-codes.h`) that the keyboard treats apart.
const KEY_LEFTCTRL: u16 = 29;
const KEY_LEFTSHIFT: u16 = 42;
const KEY_RIGHTSHIFT: u16 = 54;
const KEY_LEFTALT: u16 = 56;
const KEY_RIGHTCTRL: u16 = 97;
const KEY_SYSRQ: u16 = 99;
const KEY_RIGHTALT: u16 = 100;
const KEY_PAUSE: u16 = 119;

/// Set 2 make codes of Linux key codes 0–88, the keys of the original
/// 84/101/102-key layouts (0: no key). None of them is extended.
#[rustfmt::skip]
const SET2_BASIC: [u8; 89] = [
    // 0: reserved, Esc, 1–0, -, =, Backspace, Tab
    0x00, 0x76, 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55, 0x66, 0x0d,
    // 16: Q–P, [, ], Enter, left Ctrl, A, S
    0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b, 0x5a, 0x14, 0x1c, 0x1b,
    // 32: D–L, ;, ', `, left Shift, \, Z, X, C, V
    0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52, 0x0e, 0x12, 0x5d, 0x1a, 0x22, 0x21, 0x2a,
    // 48: B, N, M, ",", ., /, right Shift, keypad *, left Alt, Space, Caps Lock, F1–F5
    0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a, 0x59, 0x7c, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0c, 0x03,
    // 64: F6–F10, Num Lock, Scroll Lock, keypad 7, 8, 9, -, 4, 5, 6, +, 1
    0x0b, 0x83, 0x0a, 0x01, 0x09, 0x77, 0x7e, 0x6c, 0x75, 0x7d, 0x7b, 0x6b, 0x73, 0x74, 0x79, 0x69,
    // 80: keypad 2, 3, 0, ., (84, 85: none), 102nd key (<>), F11, F12
    0x72, 0x7a, 0x70, 0x71, 0x00, 0x00, 0x61, 0x78, 0x07,
];

/// A key's set 2 make code: the byte, and whether 0xE0 precedes it.
fn set2_code(key: u16) -> Option<(bool, u8)> {
    if let Some(&code) = SET2_BASIC.get(usize::from(key)) {
        return (code != 0).then_some((false, code));
    }
    let (extended, code) = match key {
        89 => (false, 0x51),  // KEY_RO
        92 => (false, 0x64),  // KEY_HENKAN
        93 => (false, 0x13),  // KEY_KATAKANAHIRAGANA
        94 => (false, 0x67),  // KEY_MUHENKAN
        96 => (true, 0x5a),   // KEY_KPENTER
        97 => (true, 0x14),   // KEY_RIGHTCTRL
        98 => (true, 0x4a),   // KEY_KPSLASH
        100 => (true, 0x11),  // KEY_RIGHTALT
        102 => (true, 0x6c),  // KEY_HOME
        103 => (true, 0x75),  // KEY_UP
        104 => (true, 0x7d),  // KEY_PAGEUP
        105 => (true, 0x6b),  // KEY_LEFT
        106 => (true, 0x74),  // KEY_RIGHT
        107 => (true, 0x69),  // KEY_END
        108 => (true, 0x72),  // KEY_DOWN
        109 => (true, 0x7a),  // KEY_PAGEDOWN
        110 => (true, 0x70),  // KEY_INSERT
        111 => (true, 0x71),  // KEY_DELETE
        113 => (true, 0x23),  // KEY_MUTE
        114 => (true, 0x21),  // KEY_VOLUMEDOWN
        115 => (true, 0x32),  // KEY_VOLUMEUP
        116 => (true, 0x37),  // KEY_POWER
        117 => (false, 0x0f), // KEY_KPEQUAL
        121 => (false, 0x6d), // KEY_KPCOMMA
        124 => (false, 0x6a), // KEY_YEN
        125 => (true, 0x1f),  // KEY_LEFTMETA
        126 => (true, 0x27),  // KEY_RIGHTMETA
        127 => (true, 0x2f),  // KEY_COMPOSE (the menu key)
        142 => (true, 0x3f),  // KEY_SLEEP
        143 => (true, 0x5e),  // KEY_WAKEUP
        163 => (true, 0x4d),  // KEY_NEXTSONG
        164 => (true, 0x34),  // KEY_PLAYPAUSE
        165 => (true, 0x15),  // KEY_PREVIOUSSONG
        166 => (true, 0x3b),  // KEY_STOPCD
        _ => return None,
    };
    Some((extended, code))
}

/// The set 2 bytes a key sends when it goes down or up; empty for keys the
/// keyboard does not have. `modifiers` are the held Ctrl, Shift and Alt.
fn set2_sequence(key: u16, pressed: bool, modifiers: u8) -> Vec<u8> {
    let e0 = EXTENDED_PREFIX;
    let f0 = BREAK_PREFIX;
    match key {
        // Pause sends everything on the press and nothing on the release;
        // with Ctrl it is Break.
        KEY_PAUSE if !pressed => Vec::new(),
        KEY_PAUSE if modifiers & MOD_CTRL != 0 => vec![e0, 0x7e, e0, f0, 0x7e],
        KEY_PAUSE => vec![0xe1, 0x14, 0x77, 0xe1, f0, 0x14, f0, 0x77],
        // Print Screen: SysRq with Alt; alone it also sends a fake left
        // Shift, which Shift or Ctrl held suppress.
        KEY_SYSRQ if modifiers & MOD_ALT != 0 => {
            if pressed {
                vec![0x84]
            } else {
                vec![f0, 0x84]
            }
        }
        KEY_SYSRQ if modifiers & (MOD_SHIFT | MOD_CTRL) != 0 => {
            if pressed {
                vec![e0, 0x7c]
            } else {
                vec![e0, f0, 0x7c]
            }
        }
        KEY_SYSRQ => {
            if pressed {
                vec![e0, 0x12, e0, 0x7c]
            } else {
                vec![e0, f0, 0x7c, e0, f0, 0x12]
            }
        }
        _ => {
            let Some((extended, code)) = set2_code(key) else {
                return Vec::new();
            };
            let mut bytes = Vec::with_capacity(3);
            if extended {
                bytes.push(e0);
            }
            if !pressed {
                bytes.push(f0);
            }
            bytes.push(code);
            bytes
        }
    }
}

/// The 8042's translation of set 2 bytes 0x00–0x7F to set 1.
#[rustfmt::skip]
const TRANSLATION: [u8; 128] = [
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
];

/// One byte through the 8042's translation. Above 0x7F only F7 (0x83) and
/// SysRq (0x84) change; prefixes, replies (ACK, BAT, echo) pass as they are.
fn translate(byte: u8) -> u8 {
    match byte {
        0x83 => 0x41,
        0x84 => 0x54,
        _ => TRANSLATION.get(usize::from(byte)).copied().unwrap_or(byte),
    }
}

/// A set 2 sequence as set 1: each byte translated, 0xF0 folded into bit 7
/// of the byte after it (what the 8042 does on the way in, and what a
/// keyboard switched to set 1 sends itself).
fn to_set1(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut high = 0;
    for &byte in bytes {
        if byte == BREAK_PREFIX {
            high = SET1_BREAK;
        } else {
            out.push(translate(byte) | high);
            high = 0;
        }
    }
    out
}

/// The controller behind its two port windows.
struct Inner {
    state: I8042State,
    irq1: Box<dyn IrqLine>,
    irq12: Box<dyn IrqLine>,
    /// IRQ 1 and IRQ 12 as last driven.
    levels: (bool, bool),
    a20: A20Gate,
    control: Arc<RunControl>,
    /// Where the host's keys and pointer come from, if connected.
    host: Option<HostSources>,
}

/// The host's keyboard and pointer, drained at each device tick; the pointer
/// gives absolute positions, which the PS/2 mouse reports as movements.
#[derive(Debug)]
struct HostSources {
    keyboard: InputHandle,
    pointer: InputHandle,
    /// The pointer's last position in [`POINTER_WIDTH`] x [`POINTER_HEIGHT`]
    /// units.
    last: Option<(i32, i32)>,
}

/// The screen the host pointer's absolute positions are scaled to before
/// they become movements: a VGA screen's pixels.
const POINTER_WIDTH: i64 = 640;
const POINTER_HEIGHT: i64 = 480;

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8042")
            .field("state", &self.state)
            .field("levels", &self.levels)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn mouse_button(&mut self, code: u16, pressed: bool) {
        let bit = match code {
            BTN_LEFT => MOUSE_LEFT,
            BTN_RIGHT => MOUSE_RIGHT,
            BTN_MIDDLE => MOUSE_MIDDLE,
            _ => return,
        };
        let buttons = self.state.mouse.buttons;
        let buttons = if pressed {
            buttons | bit
        } else {
            buttons & !bit
        };
        self.state.mouse.set_buttons(buttons);
    }

    /// Feeds what the host pushed since the last tick.
    fn take_host_input(&mut self) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        let keys = host.keyboard.take();
        let pointer = host.pointer.take();
        let mut moves = Vec::new();
        let mut buttons = Vec::new();
        for event in pointer {
            match event {
                HostInput::Key { code, pressed } => buttons.push((code, pressed)),
                HostInput::PointerAt { x, y } => {
                    let scale =
                        |v: u32, size: i64| (i64::from(v) * size / i64::from(ABS_MAX)) as i32;
                    let at = (scale(x, POINTER_WIDTH), scale(y, POINTER_HEIGHT));
                    if let Some(last) = host.last {
                        moves.push((at.0 - last.0, at.1 - last.1));
                    }
                    host.last = Some(at);
                }
            }
        }
        for event in keys {
            if let HostInput::Key { code, pressed } = event {
                self.state.keyboard.key(code, pressed);
            }
        }
        for (dx, dy) in moves {
            self.state.mouse.motion(dx, dy.saturating_neg(), 0);
        }
        for (code, pressed) in buttons {
            self.mouse_button(code, pressed);
        }
        self.settle();
    }

    /// Drives the two lines to what the output buffer says; `force` drives
    /// them even where they seem unchanged (after a reset or restore).
    fn drive(&mut self, force: bool) {
        let (kbd, aux) = self.state.controller.irq_levels();
        if force || kbd != self.levels.0 {
            self.irq1.set_level(kbd);
        }
        if force || aux != self.levels.1 {
            self.irq12.set_level(aux);
        }
        self.levels = (kbd, aux);
    }

    /// Fills the output buffer if it can, then drives the lines.
    fn settle(&mut self) {
        self.state.fill();
        self.drive(false);
    }

    fn read_data(&mut self) -> u8 {
        let byte = self.state.controller.output;
        if self.state.controller.output_source.take().is_some() {
            // The line drops before the next byte raises it again.
            self.drive(false);
            self.settle();
        }
        byte
    }

    fn write_data(&mut self, value: u8) {
        let c = &mut self.state.controller;
        c.last_write_command = false;
        match c.pending_command.take() {
            Some(command @ CCMD_WRITE_RAM..=CCMD_WRITE_RAM_LAST) => {
                c.write_ram(usize::from(command - CCMD_WRITE_RAM), value);
            }
            Some(CCMD_WRITE_OUTPUT) => self.write_output_port(value),
            Some(CCMD_WRITE_KBD_OBUF) => c.queue_reply(value, Source::Keyboard),
            Some(CCMD_WRITE_AUX_OBUF) => c.queue_reply(value, Source::Mouse),
            Some(CCMD_WRITE_AUX) => self.state.mouse.write(value),
            Some(_) => {}
            None => self.state.keyboard.write(value),
        }
        self.settle();
    }

    fn write_command(&mut self, command: u8) {
        let c = &mut self.state.controller;
        c.last_write_command = true;
        // A new command abandons one still waiting for its data byte.
        c.pending_command = None;
        match command {
            CCMD_READ_RAM..=CCMD_READ_RAM_LAST => {
                let byte = c.ram[usize::from(command - CCMD_READ_RAM)];
                c.answer(byte);
            }
            CCMD_WRITE_RAM..=CCMD_WRITE_RAM_LAST
            | CCMD_WRITE_OUTPUT
            | CCMD_WRITE_KBD_OBUF
            | CCMD_WRITE_AUX_OBUF
            | CCMD_WRITE_AUX => c.pending_command = Some(command),
            CCMD_PASSWORD_INSTALLED => c.answer(NO_PASSWORD),
            CCMD_AUX_DISABLE => c.ram[0] |= CB_AUX_DISABLED,
            CCMD_AUX_ENABLE => c.ram[0] &= !CB_AUX_DISABLED,
            CCMD_AUX_TEST | CCMD_KBD_TEST => c.answer(INTERFACE_OK),
            CCMD_SELF_TEST => {
                c.system_flag = true;
                c.answer(SELF_TEST_OK);
            }
            CCMD_KBD_DISABLE => c.ram[0] |= CB_KBD_DISABLED,
            CCMD_KBD_ENABLE => c.ram[0] &= !CB_KBD_DISABLED,
            CCMD_READ_INPUT => c.answer(INPUT_PORT),
            CCMD_READ_OUTPUT => {
                let port = c.output_port();
                c.answer(port);
            }
            CCMD_A20_OFF => {
                let port = c.output_port & !OUT_A20;
                self.write_output_port(port);
            }
            CCMD_A20_ON => {
                let port = c.output_port | OUT_A20;
                self.write_output_port(port);
            }
            // Commands 0xF0–0xFF pulse the output port bits 3–0 that are 0 in
            // them; only the reset line does anything.
            CCMD_PULSE.. if command & OUT_RESET == 0 => {
                self.control.request_stop(StopReason::Reset);
            }
            // Other pulses, and vendor commands (version, diagnostics, input
            // port polling): ignored, as QEMU does.
            _ => {}
        }
        self.settle();
    }

    /// A new output port value: bit 1 is the A20 gate, bit 0 low resets.
    fn write_output_port(&mut self, value: u8) {
        self.state.controller.output_port = value;
        self.a20.set(value & OUT_A20 != 0);
        if value & OUT_RESET == 0 {
            self.control.request_stop(StopReason::Reset);
        }
    }
}

/// The i8042 and its keyboard and mouse: a cloneable handle.
///
/// A machine maps [`I8042::data_port`] at [`DATA_PORT`] and
/// [`I8042::command_port`] at [`COMMAND_PORT`] (each [`PORT_COUNT`] port),
/// and hands host input to [`I8042::key`], [`I8042::mouse_motion`] and
/// [`I8042::mouse_button`], from any thread.
#[derive(Clone, Debug)]
pub struct I8042 {
    inner: Arc<Mutex<Inner>>,
}

impl I8042 {
    /// A controller at power-on, interrupting on `irq1` (keyboard; IRQ 1 of
    /// the i8259 on a PC) and `irq12` (mouse; IRQ 12), driving `a20` (the
    /// gate port 0x92 shares) and asking `control` for resets.
    pub fn new(
        irq1: Box<dyn IrqLine>,
        irq12: Box<dyn IrqLine>,
        a20: A20Gate,
        control: Arc<RunControl>,
    ) -> I8042 {
        let mut inner = Inner {
            state: I8042State::power_on(),
            irq1,
            irq12,
            levels: (false, false),
            a20,
            control,
            host: None,
        };
        inner.drive(true);
        I8042 {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// Port 0x60. Its saved state is the whole controller's (keyboard and
    /// mouse included), and its reset resets them all.
    pub fn data_port(&self) -> I8042Ports {
        self.ports(Window::Data)
    }

    /// Port 0x64 (no state of its own: the data port's window saves it).
    pub fn command_port(&self) -> I8042Ports {
        self.ports(Window::Command)
    }

    fn ports(&self, window: Window) -> I8042Ports {
        I8042Ports {
            inner: self.inner.clone(),
            window,
        }
    }

    /// A host key went down (`pressed`) or up. `code` is a Linux input key
    /// code (`KEY_A` is 30), as the window produces for virtio-input; keys a
    /// PC keyboard lacks are ignored. The keyboard queues the key's scan
    /// codes while scanning is enabled.
    pub fn key(&self, code: u16, pressed: bool) {
        let mut inner = self.inner.lock_recover();
        inner.state.keyboard.key(code, pressed);
        inner.settle();
    }

    /// Takes keys from `keyboard` and pointer moves and buttons from
    /// `pointer` (the handles a window fills) at each device tick, as if
    /// [`I8042::key`], [`I8042::mouse_motion`] and [`I8042::mouse_button`]
    /// were called; absolute pointer positions become movements on a
    /// 640x480 screen.
    pub fn connect_host(&self, keyboard: InputHandle, pointer: InputHandle) {
        self.inner.lock_recover().host = Some(HostSources {
            keyboard,
            pointer,
            last: None,
        });
    }

    /// The host mouse moved by `dx` (right positive) and `dy` (down
    /// positive, as screen coordinates run) and turned its wheel by `wheel`
    /// notches (away from the user positive, as Linux's `REL_WHEEL`).
    /// The mouse reports it in stream mode while reporting is enabled, and
    /// counts it for read-data requests in remote mode; the wheel only once
    /// the guest switched it to IntelliMouse mode.
    pub fn mouse_motion(&self, dx: i32, dy: i32, wheel: i32) {
        let mut inner = self.inner.lock_recover();
        inner
            .state
            .mouse
            .motion(dx, dy.saturating_neg(), wheel.saturating_neg());
        inner.settle();
    }

    /// A host mouse button went down or up: `code` is Linux's `BTN_LEFT`,
    /// `BTN_RIGHT` or `BTN_MIDDLE` (other buttons are ignored).
    pub fn mouse_button(&self, code: u16, pressed: bool) {
        let mut inner = self.inner.lock_recover();
        inner.mouse_button(code, pressed);
        inner.settle();
    }

    /// The keyboard's LEDs as the guest last set them: Scroll Lock in bit 0,
    /// Num Lock in bit 1, Caps Lock in bit 2.
    pub fn keyboard_leds(&self) -> u8 {
        self.inner.lock_recover().state.keyboard.leds
    }

    /// A copy of the controller's, keyboard's and mouse's state.
    pub fn state(&self) -> I8042State {
        self.inner.lock_recover().state.clone()
    }
}

/// Which port an [`I8042Ports`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    Data,
    Command,
}

/// One of the controller's two ports as a [`PioDevice`] of [`PORT_COUNT`]
/// byte-wide port; the bytes of a wider access beyond it float high.
#[derive(Debug)]
pub struct I8042Ports {
    inner: Arc<Mutex<Inner>>,
    window: Window,
}

impl Device for I8042Ports {
    /// The data port's window puts the controller, keyboard and mouse back
    /// to power-on and lowers both lines; the A20 gate is the machine's to
    /// reopen (as with port 0x92). The command port has nothing of its own.
    fn reset(&mut self) {
        if self.window == Window::Data {
            let mut inner = self.inner.lock_recover();
            inner.state = I8042State::power_on();
            inner.drive(true);
        }
    }

    fn save_state(&self) -> DeviceState {
        match self.window {
            Window::Data => DeviceState::encode(KIND, VERSION, &self.inner.lock_recover().state),
            Window::Command => DeviceState::encode(COMMAND_KIND, VERSION, &NoState {}),
        }
    }

    /// Restores the registers and drives the lines to match; the A20 gate
    /// is restored by the machine with the CPU state it belongs to.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        match self.window {
            Window::Data => {
                let restored: I8042State = state.decode(KIND, VERSION)?;
                restored.validate()?;
                let mut inner = self.inner.lock_recover();
                inner.state = restored;
                inner.drive(true);
                Ok(())
            }
            Window::Command => {
                let NoState {} = state.decode(COMMAND_KIND, VERSION)?;
                Ok(())
            }
        }
    }
}

impl PioDevice for I8042Ports {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        let ones = if size >= 4 {
            u32::MAX
        } else {
            (1 << (8 * u32::from(size))) - 1
        };
        if offset != 0 {
            return ones;
        }
        let mut inner = self.inner.lock_recover();
        let byte = match self.window {
            Window::Data => inner.read_data(),
            Window::Command => inner.state.controller.status(),
        };
        (ones & !0xff) | u32::from(byte)
    }

    fn write(&mut self, offset: u16, _size: u8, value: u32) {
        if offset != 0 {
            return;
        }
        let mut inner = self.inner.lock_recover();
        match self.window {
            Window::Data => inner.write_data(value as u8),
            Window::Command => inner.write_command(value as u8),
        }
    }

    /// The data port takes the host's input (the command port leaves it).
    fn tick(&mut self, _now: u64) -> Option<u64> {
        if self.window == Window::Data {
            self.inner.lock_recover().take_host_input();
        }
        None
    }
}
